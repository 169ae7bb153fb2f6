"""Failover, switchover and rejoin on real PostgreSQL, with a writer committing one row
per transaction during each fault: every acknowledged commit must be on the new
primary, and there must never be two primaries."""
import bisect
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

import freezer
import pgharness
from test_cluster import (config_text, healthy, iteration_mark, members, postmaster_pid, sql, start_healthy, status,
                          stop_everything)

REPLICAS = 3


def failover_config(workdir, port, extra=""):
    """Cluster test, 3 members, ANY 1, with pgha's default failover settings."""
    text = config_text(workdir, port).replace('log_level = "debug";', 'log_level = "info";')
    return text.replace('synchronous = { method = "any"; number = 1; };',
                        'synchronous = { method = "any"; number = 1; };' + extra)


def primaries(workdir, account, port):
    """The members that accept writes, asked of PostgreSQL itself (not of pghad)."""
    found = []
    for index in range(REPLICAS):
        member = f"test-{index}"
        if probe(workdir, account, port + index, member, "SELECT pg_is_in_recovery()") == "f":
            found.append(member)
    return found


def probe(workdir, account, port, member, statement):
    """sql(), bounded to 3 s and without failing the test: None when the member does not answer."""
    return sql(workdir, account, port, member, statement, check=False, timeout=3)


class Writer:
    """bench/failover-writer committing one row per transaction to whichever member is
    primary, recording each acknowledged id."""

    def __init__(self, workdir, account, port):
        self.out = os.path.join(workdir, "writer.log")
        argv = [pgharness.built_program("failover_writer"), "--out", self.out, "--interval-ms", "5", "--table", "failover_writer"]
        for index in range(REPLICAS):
            argv += ["--connect", f"host={os.path.join(workdir, 'clusters', 'test', f'test-{index}')} "
                                  f"port={port + index} dbname=postgres user={account.name}"]
        open(self.out, "w").close()
        account.chown(self.out)
        self.process = pgharness.popen_as_user(argv, account=account, stdout=subprocess.DEVNULL,
                                               stderr=subprocess.PIPE)

    def events(self):
        with open(self.out) as log:
            return [line.split() for line in log if line.strip()]

    def acknowledged(self):
        return [int(fields[1]) for fields in self.events() if fields[0] == "ack"]

    def acknowledged_by(self, index, after_ns=0):
        return [int(fields[1]) for fields in self.events()
                if fields[0] == "ack" and int(fields[2]) == index and int(fields[3]) > after_ns]

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class PrimaryWatcher(threading.Thread):
    """Asks every member, over and over, whether it is in recovery, and remembers any
    moment at which two of them were surely read-write at once.

    A round asks the members one after another, so two 'not in recovery' answers in one
    round are not proof: under load the old primary's answer may come from before its
    clean shutdown and the new one's from after its promotion, with none at once. What
    is proof: B answered 'not in recovery' twice in a row (nothing else from B between:
    it was read-write all along, since nothing makes a member read-write, then not, then
    read-write again in a second), and A was asked and answered 'not in recovery' within
    that span."""

    def __init__(self, workdir, account, port):
        super().__init__(daemon=True)
        self.workdir, self.account, self.port = workdir, account, port
        self.stopping = threading.Event()
        self.answers = {f"test-{index}": [] for index in range(REPLICAS)}  # (asked, answered, read-write)
        self.rounds = 0  # rounds completed: each asked every member

    def run(self):
        while not self.stopping.is_set():
            for index in range(REPLICAS):
                member = f"test-{index}"
                asked = time.monotonic()
                answer = probe(self.workdir, self.account, self.port + index, member, "SELECT pg_is_in_recovery()")
                self.answers[member].append((asked, time.monotonic(), answer == "f"))
            self.rounds += 1

    @property
    def several(self):
        """Each [B, A] such that A was read-write within a span in which B surely was."""
        found = []
        for holder, answers in self.answers.items():
            # in time order and apart: at most the one starting last before an answer holds it
            spans = [(earlier[1], later[0]) for earlier, later in zip(answers, answers[1:]) if earlier[2] and later[2]]
            starts = [start for start, _ in spans]
            for other, other_answers in self.answers.items():
                def within(asked, answered):
                    at = bisect.bisect_right(starts, asked) - 1
                    return at >= 0 and answered <= spans[at][1]
                if other != holder and any(within(asked, answered) for asked, answered, writable in other_answers
                                           if writable):
                    found.append([holder, other])
        return found

    def wait_for_a_round(self):
        """Waits until a round that began after this call is complete: every member was
        asked since."""
        begun = self.rounds
        pgharness.wait_until(lambda: self.rounds >= begun + 2, timeout=60, what="the watcher asking every member")

    def stop(self):
        self.stopping.set()
        self.join(timeout=30)


def converged(workdir, old_primary, after=None):
    """The status once a member other than old_primary is primary and the other two
    stream from it, all on the same timeline; else None. With after, only in a status
    taken after that iteration_mark()."""
    cluster = status(workdir, after)
    if cluster is None:
        return None
    by_name = members(cluster)
    primary = [name for name, member in by_name.items() if member["role"] == "primary"]
    if len(primary) != 1 or primary[0] == old_primary or cluster["failover"]["under_way"] is not None:
        return None
    standbys = [name for name in by_name if name != primary[0]]
    if any(by_name[name]["state"] != "streaming" for name in standbys):
        return None
    return cluster


def failed_over(workdir, old_primary):
    """The status once a member other than old_primary is primary and no failover is
    under way; else None."""
    cluster = status(workdir)
    if cluster is None or cluster["failover"]["under_way"] is not None:
        return None
    primary = [name for name, member in members(cluster).items() if member["role"] == "primary"]
    return cluster if len(primary) == 1 and primary[0] != old_primary else None


def check_no_commit_lost(workdir, account, port, writer, new_primary):
    index = int(new_primary.split("-")[1])
    acknowledged = writer.acknowledged()
    assert len(acknowledged) > 50, "the writer committed too little to prove anything"
    present = set(int(row) for row in sql(workdir, account, port + index, new_primary,
                                          "SELECT id FROM failover_writer").split())
    missing = [id for id in acknowledged if id not in present]
    assert missing == [], f"acknowledged commits missing on {new_primary}: {missing[:20]}"
    return len(acknowledged)


@pytest.fixture
def cluster(pghad, tmp_workdir, account):
    port = pgharness.free_port_range(REPLICAS + 1)
    daemon = start_healthy(pghad, tmp_workdir, failover_config(tmp_workdir, port))
    yield daemon, port
    stop_everything(tmp_workdir, daemon)


def fault_kill(workdir, member):
    os.kill(postmaster_pid(workdir, member), signal.SIGKILL)


def fault_immediate(workdir, member, account):
    pg_ctl = os.path.join(pgharness.postgres_bindir(), "pg_ctl")
    result = pgharness.run_as_user([pg_ctl, "stop", "-m", "immediate", "-D",
                                    os.path.join(workdir, "clusters", "test", member, "data")],
                                   account=account, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def member_processes(workdir, member):
    """Every process whose working directory is the member's data directory."""
    data = os.path.realpath(os.path.join(workdir, "clusters", "test", member, "data"))
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/cwd") == data:
                    found.append(int(entry))
            except OSError:
                pass
    return found


def fault_hang(workdir, member):
    """SIGSTOP to the postmaster and all its processes; returns them for SIGCONT."""
    stopped = member_processes(workdir, member)
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)
    return stopped


def fault_freeze(workdir, member):
    """The postmaster and all its processes frozen (cgroup freezer): hung, as SIGSTOP
    leaves them, but not shown stopped in /proc, so only the probe's deadline finds it."""
    return freezer.Frozen(member_processes(workdir, member))


def resume(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


@pytest.mark.parametrize("fault", ["kill", "hang", "freeze", "immediate"])
def test_failover_loses_no_acknowledged_commit(cluster, tmp_workdir, account, fault):
    daemon, port = cluster
    writer = Writer(tmp_workdir, account, port)
    watcher = PrimaryWatcher(tmp_workdir, account, port)
    stopped = []
    frozen = None
    try:
        pgharness.wait_until(lambda: len(writer.acknowledged()) > 50, timeout=30, what="the writer committing")
        watcher.start()
        if fault == "kill":
            fault_kill(tmp_workdir, "test-0")
        elif fault == "immediate":
            fault_immediate(tmp_workdir, "test-0", account)
        elif fault == "freeze":
            frozen = fault_freeze(tmp_workdir, "test-0")
            stopped = frozen.pids
        else:
            stopped = fault_hang(tmp_workdir, "test-0")
        if frozen:
            # killed, its processes cannot end while frozen: the failover does not wait
            # for that end (nothing of it runs again), its rejoin does
            state = pgharness.wait_until(lambda: failed_over(tmp_workdir, "test-0"), timeout=90,
                                        what="a new primary while test-0 is frozen")
            assert [pid for pid in stopped if pgharness.process_alive(pid)], "test-0's processes ended frozen"
            # and it is no longer probed (each probe would wait for its deadline)
            assert "is killed but cannot end yet (state D" in members(state)["test-0"]["error"], state
            frozen.thaw()
        state = pgharness.wait_until(lambda: converged(tmp_workdir, "test-0"), timeout=90,
                                     what="a new primary with both others streaming from it")
        resume(stopped)
        # each hang found its own way: a stopped postmaster by its state in /proc, a frozen
        # one by the probe's deadline
        found = {"hang": r"its postmaster \(pid \d+\) is stopped", "freeze": r"no answer within \d+ ms"}.get(fault)
        if found:
            assert re.search(r"\[test-0\] fence: test-0 has not answered for \d+ ms \(" + found, daemon.log_text()), \
                daemon.log_text()
        new_primary = [m["name"] for m in state["members"] if m["role"] == "primary"][0]
        resumed = iteration_mark(tmp_workdir)
        before = len(writer.acknowledged())
        pgharness.wait_until(lambda: len(writer.acknowledged()) > before + 20, timeout=30,
                             what="the writer committing on the new primary")
        # after the hung primary resumes, it must not come back as a primary: none of its
        # processes is left (fencing killed them), and the watcher asked every member again
        pgharness.wait_until(lambda: not [pid for pid in stopped if pgharness.process_alive(pid)], timeout=30,
                             what="every process of the hung primary gone")
        watcher.wait_for_a_round()
        writer.stop()
        watcher.stop()
        assert watcher.several == [], f"two primaries at once: {watcher.several[:3]}"
        assert primaries(tmp_workdir, account, port) == [new_primary]
        state = pgharness.wait_until(lambda: converged(tmp_workdir, "test-0", after=resumed), timeout=60,
                                     what="all members streaming from the new primary")
        assert "completed" in state["failover"]["last"], state["failover"]
        check_no_commit_lost(tmp_workdir, account, port, writer, new_primary)
        # the state file remembers the new primary and no failover under way
        with open(os.path.join(tmp_workdir, "state", "test", "state.json")) as state_file:
            remembered = json.load(state_file)
        assert remembered["primary"] == int(new_primary.split("-")[1])
        assert "failover" not in remembered
    except BaseException:
        resume(stopped)
        if frozen:
            frozen.thaw()
        print(daemon.log_report(), file=sys.stderr)
        raise
    finally:
        resume(stopped)
        if frozen:
            frozen.thaw()
        writer.stop()
        watcher.stop()


def pghactl(workdir, account, *arguments, timeout=150):
    program = pgharness.install_program("pghactl", os.path.join(workdir, "bin"), account)
    return pgharness.run_as_user([program, "-s", os.path.join(workdir, "pghad.sock"), *arguments], account=account,
                                 capture_output=True, text=True, timeout=timeout)


def test_switchover_to_a_named_member_loses_nothing_and_the_old_primary_streams(cluster, tmp_workdir, account):
    daemon, port = cluster
    writer = Writer(tmp_workdir, account, port)
    watcher = PrimaryWatcher(tmp_workdir, account, port)
    try:
        pgharness.wait_until(lambda: len(writer.acknowledged()) > 50, timeout=30, what="the writer committing")
        watcher.start()
        result = pghactl(tmp_workdir, account, "switchover", "test", "--to", "test-2")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "switchover from test-0 to test-2 completed" in result.stdout, result.stdout
        state = pgharness.wait_until(lambda: converged(tmp_workdir, "test-0"), timeout=60,
                                     what="test-0 and test-1 streaming from test-2")
        assert members(state)["test-2"]["role"] == "primary"
        assert members(state)["test-0"]["role"] == "replica" and members(state)["test-0"]["state"] == "streaming"
        before = len(writer.acknowledged())
        pgharness.wait_until(lambda: len(writer.acknowledged()) > before + 20, timeout=30,
                             what="the writer committing on test-2")
        writer.stop()
        watcher.stop()
        assert watcher.several == [], f"two primaries at once: {watcher.several[:3]}"
        check_no_commit_lost(tmp_workdir, account, port, writer, "test-2")
        # the old primary's history was not rewound away: it is a plain standby of test-2
        assert probe(tmp_workdir, account, port, "test-0", "SELECT pg_is_in_recovery()") == "t"
        # the route to the primary follows it: libpq's service test-rw now reaches test-2
        sql(tmp_workdir, account, port + 2, "test-2", f"ALTER ROLE \"{account.name}\" PASSWORD 'route-test'")
        env = dict(os.environ, PGSERVICEFILE=os.path.join(tmp_workdir, "state", "pg_service.conf"))
        psql = os.path.join(pgharness.postgres_bindir(), "psql")
        result = subprocess.run([psql, "-X", "-A", "-t", "-c", "SELECT current_setting('port')",
                                 f"service=test-rw user={account.name} password=route-test"],
                                env=env, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == str(port + 2)
    finally:
        writer.stop()
        watcher.stop()


def test_switchover_to_a_member_commits_do_not_wait_for_is_refused(pghad, tmp_workdir, account):
    port = pgharness.free_port_range(REPLICAS + 1)
    text = failover_config(tmp_workdir, port).replace('method = "any"', 'method = "first"')
    daemon = pghad(text, env={"PGHA_TEST_INITDB_NOSYNC": "1"})
    # FIRST 1 ("test-1", "test-2"): test-2 is only a potential synchronous standby
    def first_healthy():
        by_name = members(status(tmp_workdir))
        return (len(by_name) == 3 and by_name["test-0"]["role"] == "primary"
                and all(by_name[name]["state"] == "streaming" for name in ("test-1", "test-2"))
                and by_name["test-1"]["sync_state"] == "sync" and by_name["test-2"]["sync_state"] == "potential")

    pgharness.wait_until(first_healthy, timeout=120, what="a healthy FIRST 1 cluster")
    result = pghactl(tmp_workdir, account, "switchover", "test", "--to", "test-2")
    assert result.returncode != 0
    assert "test-2 is not a synchronous standby" in result.stderr and "potential" in result.stderr, result.stderr
    # the refusal is the outcome: pghactl says nothing of having waited for one
    assert "no outcome" not in result.stderr, result.stderr
    # seen by an iteration after the refusal, not in the view the refusal was decided from
    refused = iteration_mark(tmp_workdir)
    after_refusal = pgharness.wait_until(lambda: status(tmp_workdir, after=refused), timeout=30,
                                         what="a status after the refusal")
    assert members(after_refusal)["test-0"]["role"] == "primary"
    result = pghactl(tmp_workdir, account, "switchover", "test", "--to", "test-1")
    assert result.returncode == 0, result.stdout + result.stderr
    pgharness.wait_until(lambda: converged(tmp_workdir, "test-0"), timeout=60, what="test-1 primary, others streaming")
    assert members(status(tmp_workdir))["test-1"]["role"] == "primary"


def test_pause_holds_failover_and_names_the_candidate_then_resume_fails_over(cluster, tmp_workdir, account):
    daemon, port = cluster
    writer = Writer(tmp_workdir, account, port)
    try:
        pgharness.wait_until(lambda: len(writer.acknowledged()) > 50, timeout=30, what="the writer committing")
        result = pghactl(tmp_workdir, account, "pause", "test")
        assert result.returncode == 0 and "test: automatic failover paused" in result.stdout, result.stderr
        fault_kill(tmp_workdir, "test-0")
        waiting = pgharness.wait_until(lambda: "would fail over to" in status(tmp_workdir)["waiting"]
                                       and status(tmp_workdir)["waiting"], timeout=30, what="the paused verdict")
        assert "automatic failover is paused" in waiting and "would fail over to test-" in waiting, waiting
        # the verdict is final (a killed primary has failed at once), and each iteration
        # would act on it: several more iterations promote nothing, and the old primary
        # stays down
        verdict = iteration_mark(tmp_workdir)
        held = pgharness.wait_until(lambda: status(tmp_workdir, after=verdict + 2), timeout=30,
                                    what="3 iterations after the paused verdict")
        assert "would fail over to test-" in held["waiting"], held["waiting"]
        assert primaries(tmp_workdir, account, port) == []
        assert status(tmp_workdir)["failover"]["paused"] is True
        table = pghactl(tmp_workdir, account, "status").stdout
        assert "automatic failover is paused" in table and "would fail over to" in table, table
        result = pghactl(tmp_workdir, account, "resume")
        assert result.returncode == 0 and "test: automatic failover resumed" in result.stdout, result.stderr
        state = pgharness.wait_until(lambda: converged(tmp_workdir, "test-0"), timeout=60,
                                     what="the failover after resume")
        new_primary = [m["name"] for m in state["members"] if m["role"] == "primary"][0]
        before = len(writer.acknowledged())
        pgharness.wait_until(lambda: len(writer.acknowledged()) > before + 20, timeout=30,
                             what="the writer committing on the new primary")
        writer.stop()
        check_no_commit_lost(tmp_workdir, account, port, writer, new_primary)
    finally:
        writer.stop()


def test_pghad_killed_right_after_recording_a_promotion_finishes_it_when_restarted(pghad, tmp_workdir, account):
    port = pgharness.free_port_range(REPLICAS + 1)
    text = failover_config(tmp_workdir, port)
    first = pghad(text, env={"PGHA_TEST_INITDB_NOSYNC": "1", "PGHA_TEST_CRASH_AFTER_INTENT": "promote"})
    pgharness.wait_until(lambda: healthy(tmp_workdir), timeout=120, what="a healthy 3-member cluster")
    writer = Writer(tmp_workdir, account, port)
    try:
        pgharness.wait_until(lambda: len(writer.acknowledged()) > 50, timeout=30, what="the writer committing")
        fault_kill(tmp_workdir, "test-0")
        first.wait(timeout=30)
        assert first.process.returncode == -signal.SIGKILL
        with open(os.path.join(tmp_workdir, "state", "test", "state.json")) as state_file:
            intent = json.load(state_file)["failover"]
        assert intent["phase"] == "promote" and intent["from"] == 0 and intent["to"] in (1, 2), intent
        # killed before promoting: no member is primary, and none becomes one on its own
        # once its WAL receiver has lost the old primary
        pgharness.wait_until(lambda: all(probe(tmp_workdir, account, port + index, f"test-{index}",
                                               "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'")
                                         == "0" for index in (1, 2)),
                             timeout=30, what="both standbys no longer streaming from the killed primary")
        assert primaries(tmp_workdir, account, port) == []
        second = pghad(text, name="pghad-again")
        state = pgharness.wait_until(lambda: converged(tmp_workdir, "test-0"), timeout=60,
                                     what="the restarted pghad finishing the failover")
        new_primary = f"test-{intent['to']}"
        assert members(state)[new_primary]["role"] == "primary"
        assert primaries(tmp_workdir, account, port) == [new_primary]
        before = len(writer.acknowledged())
        pgharness.wait_until(lambda: len(writer.acknowledged()) > before + 20, timeout=30,
                             what="the writer committing on the new primary")
        writer.stop()
        check_no_commit_lost(tmp_workdir, account, port, writer, new_primary)
        assert second.running
    finally:
        writer.stop()


def test_no_promotion_when_every_standby_is_unreachable_and_status_says_why(cluster, tmp_workdir, account):
    daemon, port = cluster
    stopped = []
    try:
        stopped = fault_hang(tmp_workdir, "test-1") + fault_hang(tmp_workdir, "test-2")
        stopped += fault_hang(tmp_workdir, "test-0")
        waiting = pgharness.wait_until(lambda: "not failing over" in status(tmp_workdir)["waiting"]
                                       and status(tmp_workdir)["waiting"], timeout=30, what="the refusal")
        assert "test-0 failed" in waiting and "needs 2 of its members answering" in waiting, waiting
        assert "test-1" in waiting and "test-2" in waiting, waiting
        # decided again twice more, from observations made after the refusal was seen
        refused = iteration_mark(tmp_workdir)
        later = pgharness.wait_until(lambda: status(tmp_workdir, after=refused + 1), timeout=60,
                                     what="2 iterations after the refusal")
        assert later["failover"]["under_way"] is None
        assert status(tmp_workdir)["failover"]["under_way"] is None
        resume(stopped)
        stopped = []
        state = pgharness.wait_until(lambda: healthy(tmp_workdir), timeout=60, what="the cluster as it was")
        assert members(state)["test-0"]["role"] == "primary"
        assert "not failing over" in daemon.log_text()
    finally:
        resume(stopped)


def wal_receiver(workdir, account, port, member):
    """The pid of a standby's WAL receiver."""
    index = int(member.split("-")[1])
    pid = pgharness.wait_until(lambda: sql(workdir, account, port + index, member,
                                           "SELECT pid FROM pg_stat_wal_receiver"),
                               timeout=30, what=f"{member}'s WAL receiver")
    return int(pid)


@pytest.fixture
def cluster_slow_replies(pghad, tmp_workdir, account):
    """cluster, with standbys that answer their primary only every 60 s when no WAL
    comes (wal_receiver_status_interval): pghad counts one that stops answering as
    streaming for five intervals, not 5 s."""
    port = pgharness.free_port_range(REPLICAS + 1)
    text = failover_config(tmp_workdir, port).replace("parameters = { };",
                                                      'parameters = { wal_receiver_status_interval = "60s"; };')
    daemon = start_healthy(pghad, tmp_workdir, text)
    yield daemon, port
    stop_everything(tmp_workdir, daemon)


def test_a_stopped_receiver_a_blip_then_a_dead_primary_lose_nothing(cluster_slow_replies, tmp_workdir, account):
    """The audit's sequence on real PostgreSQL (issue 12): test-1's WAL receiver stops
    (SIGSTOP) and it falls behind; then test-2, which acknowledged every commit since,
    blips (its walsender ends and its receiver is held); the primary still sees test-1
    as streaming, so pghad lists test-1 alone; then the primary is killed. The list
    before must stay in the failover pool, both standbys must be cut before the choice,
    and test-2 must be promoted: promoting test-1 would lose what test-2 acknowledged.
    (pghad stops counting a standby that stopped answering after five of its status
    intervals: with 60 s ones, test-1 still counts as streaming however slowly this
    sequence runs, as a standby that falls behind but still answers would.)"""
    daemon, port = cluster_slow_replies
    writer = Writer(tmp_workdir, account, port)
    watcher = PrimaryWatcher(tmp_workdir, account, port)
    held = []
    try:
        pgharness.wait_until(lambda: len(writer.acknowledged()) > 50, timeout=30, what="the writer committing")
        receivers = {member: wal_receiver(tmp_workdir, account, port, member) for member in ("test-1", "test-2")}
        watcher.start()
        os.kill(receivers["test-1"], signal.SIGSTOP)
        held.append(receivers["test-1"])
        before = len(writer.acknowledged())
        pgharness.wait_until(lambda: len(writer.acknowledged()) > before + 100, timeout=30,
                             what="commits acknowledged through test-2 alone")
        mark = daemon.log_mark()
        os.kill(receivers["test-2"], signal.SIGSTOP)
        held.append(receivers["test-2"])
        sql(tmp_workdir, account, port, "test-0",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_replication WHERE application_name = 'test-2'")
        daemon.wait_for_log(r"set-synchronous: .* call for 'ANY 1 \(\"test-1\"\)'", timeout=30, since=mark)
        fault_kill(tmp_workdir, "test-0")
        state = pgharness.wait_until(lambda: converged(tmp_workdir, "test-0"), timeout=90,
                                     what="a new primary with both others streaming from it")
        assert members(state)["test-2"]["role"] == "primary", \
            f"test-1, behind, was promoted: {state['failover']['last']}"
        pgharness.assert_cut_before_promotion(daemon.log_text(mark), "test-2", ("test-1", "test-2"))
        before = len(writer.acknowledged())
        pgharness.wait_until(lambda: len(writer.acknowledged()) > before + 20, timeout=30,
                             what="the writer committing on test-2")
        writer.stop()
        watcher.stop()
        assert watcher.several == [], f"two primaries at once: {watcher.several[:3]}"
        assert primaries(tmp_workdir, account, port) == ["test-2"]
        check_no_commit_lost(tmp_workdir, account, port, writer, "test-2")
    except BaseException:
        print(daemon.log_report(), file=sys.stderr)
        raise
    finally:
        resume(held)
        writer.stop()
        watcher.stop()


@pytest.mark.parametrize("fault", ["receiver", "freeze"])
def test_a_standby_cut_off_leaves_the_synchronous_list_long_before_wal_sender_timeout(cluster, tmp_workdir, account,
                                                                                      fault):
    """Fault e: a standby cut off (its WAL receiver stopped, or the whole member frozen)
    stays "streaming" in its primary's pg_stat_replication until wal_sender_timeout (60 s),
    but answers no more. pghad stops counting it once its last answer is older than five
    status intervals (1 s each): the list changes while the primary still lists it
    streaming, and the standby is listed again once it answers again."""
    daemon, port = cluster
    held, frozen = [], None
    try:
        mark = daemon.log_mark()
        if fault == "receiver":
            receiver = wal_receiver(tmp_workdir, account, port, "test-1")
            os.kill(receiver, signal.SIGSTOP)
            held.append(receiver)
        else:
            frozen = fault_freeze(tmp_workdir, "test-1")
        daemon.wait_for_log(r"set-synchronous: .* call for 'ANY 1 \(\"test-2\"\)'", timeout=50, since=mark)
        # before wal_sender_timeout: pghad did not wait for the walsender to end
        still = sql(tmp_workdir, account, port, "test-0",
                    "SELECT state FROM pg_stat_replication WHERE application_name = 'test-1'")
        assert still == "streaming", f"the primary no longer lists test-1 streaming ({still!r}): not seen early"
        pgharness.wait_until(lambda: sql(tmp_workdir, account, port, "test-0", "SHOW synchronous_standby_names")
                             == 'ANY 1 ("test-2")', timeout=30, what="the primary running the list without test-1")
        if fault == "receiver":
            # it answers pghad itself and says it streams: the status tells the truth
            after = iteration_mark(tmp_workdir)
            seen = pgharness.wait_until(lambda: (status(tmp_workdir, after=after) or {}).get("members"), timeout=30,
                                        what="a status after the change")
            test_1 = {member["name"]: member for member in seen}["test-1"]
            assert test_1["state"] == "not answering its primary", test_1
            assert test_1["reply_age_ms"] > 5000, test_1
        mark = daemon.log_mark()
        resume(held)
        held = []
        if frozen:
            frozen.thaw()
            frozen = None
        daemon.wait_for_log(r"set-synchronous: .* call for 'ANY 1 \(\"test-1\", \"test-2\"\)'", timeout=60,
                            since=mark)
        pgharness.wait_until(lambda: healthy(tmp_workdir), timeout=60, what="test-1 streaming and listed again")
    except BaseException:
        print(daemon.log_report(), file=sys.stderr)
        raise
    finally:
        resume(held)
        if frozen:
            frozen.thaw()


def test_a_diverged_standby_is_rewound_streams_again_and_is_not_listed_meanwhile(cluster, tmp_workdir, account):
    """test-2's WAL receiver stops while test-1 acknowledges every commit; the operator
    forces a failover to test-2, behind: test-1 now holds WAL past the point where
    test-2's new timeline forked off. It must be seen as diverged, never listed, rewound
    and streaming again from test-2."""
    daemon, port = cluster
    writer = Writer(tmp_workdir, account, port)
    held = []
    try:
        pgharness.wait_until(lambda: len(writer.acknowledged()) > 50, timeout=30, what="the writer committing")
        receiver = wal_receiver(tmp_workdir, account, port, "test-2")
        os.kill(receiver, signal.SIGSTOP)
        held.append(receiver)
        before = len(writer.acknowledged())
        pgharness.wait_until(lambda: len(writer.acknowledged()) > before + 100, timeout=30,
                             what="commits acknowledged through test-1 alone")
        mark = daemon.log_mark()
        result = pghactl(tmp_workdir, account, "failover", "test", "--to", "test-2", "--force")
        assert result.returncode == 0, result.stdout + result.stderr
        writer.stop()
        daemon.wait_for_log(r"\[test-1\] rejoin test-2: test-1 diverged", timeout=60, since=mark)
        state = pgharness.wait_until(lambda: converged(tmp_workdir, "test-0"), timeout=120,
                                     what="test-1 rewound and streaming from test-2")
        assert members(state)["test-2"]["role"] == "primary"
        assert members(state)["test-1"]["state"] == "streaming"
        log = daemon.log_text(mark)
        promoted = log.index("[test-2] promoted")
        rewound = log.index("[test-1] rejoin finished")
        # from the promotion until test-1 was rewound, no list test-2 was given named it
        for line in log[promoted:rewound].splitlines():
            if "set-synchronous" in line and "call for" in line:
                assert '"test-1"' not in line.split("call for", 1)[1], line
        assert '"test-1"' not in members(state)["test-2"].get("synchronous_standby_names", "") or \
            members(state)["test-1"]["state"] == "streaming"
        assert primaries(tmp_workdir, account, port) == ["test-2"]
    except BaseException:
        print(daemon.log_report(), file=sys.stderr)
        raise
    finally:
        resume(held)
        writer.stop()


def test_a_report_query_holding_replay_neither_keeps_a_standby_receiving_nor_holds_the_promotion(
        cluster, tmp_workdir, account):
    """A report query on test-1 holds its replay (a lock the primary took conflicts with
    it, and with max_standby_streaming_delay = -1 PostgreSQL waits for ever). The cut must
    end its WAL receiver anyway and be confirmed before the choice, and end the session,
    so that whichever standby is chosen can be promoted."""
    daemon, port = cluster
    sql(tmp_workdir, account, port + 1, "test-1", "ALTER SYSTEM SET max_standby_streaming_delay = -1")
    sql(tmp_workdir, account, port + 1, "test-1", "SELECT pg_reload_conf()")
    sql(tmp_workdir, account, port, "test-0", "CREATE TABLE report (id int)")
    pgharness.wait_until(lambda: sql(tmp_workdir, account, port + 1, "test-1",
                                     "SELECT to_regclass('report') IS NOT NULL") == "t",
                         timeout=30, what="test-1 replaying the table")
    psql = os.path.join(pgharness.postgres_bindir(), "psql")
    report = subprocess.Popen(account.command([psql, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h",
                                               os.path.join(tmp_workdir, "clusters", "test", "test-1"),
                                               "-p", str(port + 1), "-U", account.name, "-d", "postgres"]),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd="/", start_new_session=True)
    writer = Writer(tmp_workdir, account, port)
    watcher = PrimaryWatcher(tmp_workdir, account, port)
    try:
        report.stdin.write("BEGIN;\nSELECT 'report:' || count(*) FROM report;\n")
        report.stdin.flush()
        assert report.stdout.readline().strip() == "BEGIN"
        assert report.stdout.readline().strip() == "report:0"
        pgharness.wait_until(lambda: len(writer.acknowledged()) > 50, timeout=30, what="the writer committing")
        watcher.start()
        sql(tmp_workdir, account, port, "test-0", "BEGIN; LOCK TABLE report IN ACCESS EXCLUSIVE MODE; COMMIT")
        pgharness.wait_until(lambda: sql(tmp_workdir, account, port + 1, "test-1",
                                         "SELECT wait_event_type FROM pg_stat_activity WHERE backend_type = 'startup'")
                             == "Lock", timeout=30, what="test-1's replay held by the report query")
        mark = daemon.log_mark()
        fault_kill(tmp_workdir, "test-0")
        state = pgharness.wait_until(lambda: converged(tmp_workdir, "test-0"), timeout=90,
                                     what="a new primary with both others streaming from it")
        new_primary = [m["name"] for m in state["members"] if m["role"] == "primary"][0]
        pgharness.assert_cut_before_promotion(daemon.log_text(mark), new_primary, ("test-1", "test-2"))
        # with max_standby_streaming_delay = -1 only pghad's cut can have ended the session
        report.stdin.write("SELECT 'still here';\n")
        report.stdin.close()
        assert report.wait(timeout=30) != 0 and "still here" not in report.stdout.read()
        before = len(writer.acknowledged())
        pgharness.wait_until(lambda: len(writer.acknowledged()) > before + 20, timeout=30,
                             what="the writer committing on the new primary")
        writer.stop()
        watcher.stop()
        assert watcher.several == [], f"two primaries at once: {watcher.several[:3]}"
        check_no_commit_lost(tmp_workdir, account, port, writer, new_primary)
    except BaseException:
        print(daemon.log_report(), file=sys.stderr)
        raise
    finally:
        if report.poll() is None:
            report.kill()
        writer.stop()
        watcher.stop()
