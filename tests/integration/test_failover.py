"""Failover, switchover and rejoin on real PostgreSQL, with a writer committing one row
per transaction during each fault: every acknowledged commit must be on the new
primary, and there must never be two primaries."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import pgharness
from test_cluster import config_text, healthy, members, postmaster_pid, sql, status, stop_everything

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
        try:
            if probe(workdir, account, port + index, member, "SELECT pg_is_in_recovery()") == "f":
                found.append(member)
        except (subprocess.TimeoutExpired, AssertionError):
            pass
    return found


def probe(workdir, account, port, member, statement, timeout=3):
    """Like sql(), but bounded and without failing the test: None when the member does not answer."""
    psql = os.path.join(pgharness.postgres_bindir(), "psql")
    result = pgharness.run_as_user(
        [psql, "-X", "-A", "-t", "-h", os.path.join(workdir, "clusters", "test", member), "-p", str(port),
         "-U", account.name, "-d", "postgres", "-c", statement],
        account=account, capture_output=True, text=True, timeout=timeout,
        env={"PGCONNECT_TIMEOUT": "2"})
    return result.stdout.strip() if result.returncode == 0 else None


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
    moment at which two of them said they were not."""

    def __init__(self, workdir, account, port):
        super().__init__(daemon=True)
        self.workdir, self.account, self.port = workdir, account, port
        self.stopping = threading.Event()
        self.several = []

    def run(self):
        while not self.stopping.is_set():
            found = primaries(self.workdir, self.account, self.port)
            if len(found) > 1:
                self.several.append(found)

    def stop(self):
        self.stopping.set()
        self.join(timeout=30)


def converged(workdir, old_primary):
    """The status once a member other than old_primary is primary and the other two
    stream from it, all on the same timeline; else None."""
    cluster = status(workdir)
    by_name = members(cluster)
    primary = [name for name, member in by_name.items() if member["role"] == "primary"]
    if len(primary) != 1 or primary[0] == old_primary or cluster["failover"]["under_way"] is not None:
        return None
    standbys = [name for name in by_name if name != primary[0]]
    if any(by_name[name]["state"] != "streaming" for name in standbys):
        return None
    return cluster


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
    daemon = pghad(failover_config(tmp_workdir, port), env={"PGHA_TEST_INITDB_NOSYNC": "1"})
    try:
        pgharness.wait_until(lambda: healthy(tmp_workdir), timeout=120, what="a healthy 3-member cluster")
    except BaseException:
        print(daemon.log_report(), file=sys.stderr)
        raise
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


def resume(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


@pytest.mark.parametrize("fault", ["kill", "hang", "immediate"])
def test_failover_loses_no_acknowledged_commit(cluster, tmp_workdir, account, fault):
    daemon, port = cluster
    writer = Writer(tmp_workdir, account, port)
    watcher = PrimaryWatcher(tmp_workdir, account, port)
    stopped = []
    try:
        pgharness.wait_until(lambda: len(writer.acknowledged()) > 50, timeout=30, what="the writer committing")
        watcher.start()
        if fault == "kill":
            fault_kill(tmp_workdir, "test-0")
        elif fault == "immediate":
            fault_immediate(tmp_workdir, "test-0", account)
        else:
            stopped = fault_hang(tmp_workdir, "test-0")
        state = pgharness.wait_until(lambda: converged(tmp_workdir, "test-0"), timeout=90,
                                     what="a new primary with both others streaming from it")
        resume(stopped)
        new_primary = [m["name"] for m in state["members"] if m["role"] == "primary"][0]
        before = len(writer.acknowledged())
        pgharness.wait_until(lambda: len(writer.acknowledged()) > before + 20, timeout=30,
                             what="the writer committing on the new primary")
        # after the hung primary resumes, it must not come back as a primary
        time.sleep(1)
        writer.stop()
        watcher.stop()
        assert watcher.several == [], f"two primaries at once: {watcher.several[:3]}"
        assert primaries(tmp_workdir, account, port) == [new_primary]
        state = pgharness.wait_until(lambda: converged(tmp_workdir, "test-0"), timeout=60,
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
        print(daemon.log_report(), file=sys.stderr)
        raise
    finally:
        resume(stopped)
        writer.stop()
        watcher.stop()
