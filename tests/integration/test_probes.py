"""pghad's probes on real PostgreSQL: one kept connection per member, whose backend serves
probe after probe, made again at once when the server ends it; the settings, costly to
read, read every 60 s or when something shows they may have changed; a postmaster that
serves no new connection found though its backends answer."""
import glob
import os
import re
import shlex
import signal
import sys
import time

import pytest

import freezer
import pgharness
from test_cluster import (config_text, current_postmaster, daemon_status, healthy, iteration_mark, members,
                          postmaster_pid, sql, start_healthy, status, stop_everything)


def after_next_iteration(workdir):
    """Returns once pghad has completed an iteration begun after this call."""
    mark = iteration_mark(workdir)
    pgharness.wait_until(lambda: daemon_status(workdir)["iterations"] > mark + 1, timeout=30,
                         what=f"an iteration after {mark}")


def probe_backends(workdir, account, port):
    """(pid, backend_start, state_change) of each backend serving pghad's probes: its
    state changes as it answers a probe, and a ping too (a Sync alone, no statement)."""
    text = sql(workdir, account, port, "test-0",
               "SELECT pid, backend_start, state_change FROM pg_stat_activity "
               "WHERE application_name = 'pghad' ORDER BY pid")
    return [tuple(line.split("|")) for line in text.splitlines() if line]


def test_one_backend_serves_every_probe_and_a_terminated_one_is_replaced(pghad, tmp_workdir, account):
    port = pgharness.free_port_range(2)
    text = config_text(tmp_workdir, port, replicas=1).replace('method = "any"; number = 1;', 'method = "off";')
    daemon = pghad(text, env={"PGHA_TEST_INITDB_NOSYNC": "1"})
    pgharness.wait_until(lambda: healthy(tmp_workdir, replicas=1), timeout=120, what="a healthy 1-member cluster")
    try:
        seen = []
        # at least 10 iterations, and until the backend answered three times (probed every
        # few seconds at rest; in between, seen waiting in /proc, it is not even pinged)
        while len(seen) < 10 or len({state_change for _, _, state_change in seen}) < 3:
            assert len(seen) < 200, f"test-0's backend answered too rarely: {seen}"
            after_next_iteration(tmp_workdir)
            backends = probe_backends(tmp_workdir, account, port)
            assert len(backends) == 1, f"pghad's probe connections to test-0: {backends}"
            seen.append(backends[0])
        pids = {(pid, started) for pid, started, _ in seen}
        assert len(pids) == 1, f"probes of test-0 over {len(seen)} iterations came from backends {sorted(pids)}"
        ((old_pid, _),) = pids

        mark = iteration_mark(tmp_workdir)
        log_mark = daemon.log_mark()
        assert sql(tmp_workdir, account, port, "test-0", f"SELECT pg_terminate_backend({old_pid})") == "t"

        def new_backend():
            backends = probe_backends(tmp_workdir, account, port)
            return backends if backends and all(pid != old_pid for pid, _, _ in backends) else None
        backends = pgharness.wait_until(new_backend, timeout=30, what="pghad connecting test-0 again")
        assert len(backends) == 1, backends
        # the probe that found its connection ended made a new one at once: no status of an
        # iteration after the termination shows test-0 unreachable, and the new backend stays
        for _ in range(5):
            after_next_iteration(tmp_workdir)
            reply = daemon_status(tmp_workdir)
            assert reply["iterations"] > mark
            member = members(reply["clusters"][0])["test-0"]
            assert member["role"] == "primary" and member["state"] == "running", member
        assert [pid for pid, _, _ in probe_backends(tmp_workdir, account, port)] == [backends[0][0]]
        assert "probe failed" not in daemon.log_text(log_mark), daemon.log_text(log_mark)
    finally:
        stop_everything(tmp_workdir, daemon)


def start_one_member(pghad, workdir, port):
    text = config_text(workdir, port, replicas=1).replace('method = "any"; number = 1;', 'method = "off";')
    daemon = pghad(text, env={"PGHA_TEST_INITDB_NOSYNC": "1"})
    pgharness.wait_until(lambda: healthy(workdir, replicas=1), timeout=120, what="a healthy 1-member cluster")
    return daemon


SETTINGS_READ = r"\[test-0\] reading its settings: "


def test_settings_are_read_now_and_then_and_an_alter_system_behind_pghads_back_is_still_reset(
        pghad, tmp_workdir, account):
    """pg_settings and pg_file_settings (which parses the configuration files) cost ten
    times the rest of a probe: they are not read at every probe. An ALTER SYSTEM without
    a reload is still found at once: the probe reads postgresql.auto.conf's digest, not its
    settings (read every 5 minutes otherwise, longer than this test waits)."""
    port = pgharness.free_port_range(2)
    daemon = start_one_member(pghad, tmp_workdir, port)
    try:
        mark = iteration_mark(tmp_workdir)
        log_mark = daemon.log_mark()
        pgharness.wait_until(lambda: daemon_status(tmp_workdir)["iterations"] > mark + 21, timeout=120,
                             what="20 iterations")
        # each of those iterations probed test-0; at most a few read its settings: one per
        # period of 60 s, and 20 iterations would need 30 s each to reach 10 periods
        reads = re.findall(SETTINGS_READ + r".*", daemon.log_text(log_mark))
        assert len(reads) < 10, f"test-0's settings read {len(reads)} times in 20 iterations: {reads}"

        log_mark = daemon.log_mark()
        # primary_slot_name is one of pgha's: an override of it is reset. No reload: only
        # the digest of postgresql.auto.conf can show it
        sql(tmp_workdir, account, port, "test-0", "ALTER SYSTEM SET primary_slot_name = 'behind_pghads_back'")
        reset = daemon.wait_for_log(r"\[test-0\] reset-overrides: ALTER SYSTEM overrides primary_slot_name",
                                    timeout=90, since=log_mark)
        before = daemon.log_text(log_mark)[:reset.start()]
        assert re.search(SETTINGS_READ + "its postgresql.auto.conf changed", before), before
        pgharness.wait_until(
            lambda: sql(tmp_workdir, account, port, "test-0",
                        "SELECT count(*) FROM pg_file_settings WHERE sourcefile LIKE '%postgresql.auto.conf'") == "0",
            timeout=60, what="postgresql.auto.conf emptied")
    except BaseException:
        print(daemon.log_report(), file=sys.stderr)
        raise
    finally:
        stop_everything(tmp_workdir, daemon)


def test_a_reload_behind_pghads_back_has_its_settings_read_at_once_and_acted_on(pghad, tmp_workdir, account):
    """A reload shows in the probe (pg_conf_load_time): the settings are read again in
    the same observation, and a setting waiting for a restart is applied by one."""
    port = pgharness.free_port_range(2)
    daemon = start_one_member(pghad, tmp_workdir, port)
    try:
        postmaster = postmaster_pid(tmp_workdir, "test-0")
        log_mark = daemon.log_mark()
        sql(tmp_workdir, account, port, "test-0", "ALTER SYSTEM SET max_prepared_transactions = 7")
        sql(tmp_workdir, account, port, "test-0", "SELECT pg_reload_conf()")
        restart = daemon.wait_for_log(r"\[test-0\] restart: test-0, the primary, waits for a restart", timeout=90,
                                      since=log_mark)
        before = daemon.log_text(log_mark)[:restart.start()]
        # read because of the reload, or (once in many iterations) because their period
        # ended with it
        assert re.search(SETTINGS_READ + "(it reloaded its configuration|their period passed)", before), before
        # (refused while it restarts)
        pgharness.wait_until(lambda: sql(tmp_workdir, account, port, "test-0", "SHOW max_prepared_transactions",
                                         check=False) == "7",
                             timeout=90, what="test-0 restarted with max_prepared_transactions = 7")
        assert postmaster_pid(tmp_workdir, "test-0") != postmaster
        # once restarted, nothing is pending: no second restart
        after = daemon.log_mark()
        mark = iteration_mark(tmp_workdir)
        pgharness.wait_until(lambda: daemon_status(tmp_workdir)["iterations"] > mark + 5, timeout=60,
                             what="5 iterations")
        assert not re.search(r"\[test-0\] restart: ", daemon.log_text(after)), daemon.log_text(after)
    except BaseException:
        print(daemon.log_report(), file=sys.stderr)
        raise
    finally:
        stop_everything(tmp_workdir, daemon)


def healthy_with_one_probe_backend(pghad, workdir, account):
    """pghad and the postmaster of test-0, the primary of a healthy 3-member cluster, once
    one backend serves pghad's probes of it: the kept connection whose answers must not
    hide a postmaster that hangs."""
    from test_failover import REPLICAS, failover_config
    port = pgharness.free_port_range(REPLICAS + 1)
    daemon = start_healthy(pghad, workdir, failover_config(workdir, port))
    try:
        pgharness.wait_until(lambda: len(probe_backends(workdir, account, port)) == 1, timeout=30,
                             what="one backend serving pghad's probes of test-0")
    except BaseException:
        stop_everything(workdir, daemon)
        raise
    return daemon, postmaster_pid(workdir, "test-0")


def failed_over_from_test_0(workdir):
    """Waits for another member to be the primary, with both others streaming from it."""
    from test_failover import converged
    state = pgharness.wait_until(lambda: converged(workdir, "test-0"), timeout=90,
                                 what="a new primary with both others streaming from it")
    assert "test-0" not in [m["name"] for m in state["members"] if m["role"] == "primary"]


def test_a_primary_whose_postmaster_alone_is_stopped_is_unreachable_and_failed_over(pghad, tmp_workdir, account):
    """SIGSTOP to the primary's postmaster only: its backends, the kept probe connection's
    included, go on answering, but no new connection is served. On the local platform
    pghad sees the stopped process in /proc, counts it unreachable from that iteration
    on, and fails over."""
    daemon, postmaster = healthy_with_one_probe_backend(pghad, tmp_workdir, account)
    try:
        mark = daemon.log_mark()
        os.kill(postmaster, signal.SIGSTOP)
        # its backend would answer: its postmaster's state says it serves nothing new
        daemon.wait_for_log(rf"test-0, the primary, has not answered for \d+ ms \(its postmaster \(pid {postmaster}\) "
                            r"is stopped \(state T: a signal or a debugger\): it serves no new connection\)",
                            timeout=90, since=mark)
        failed_over_from_test_0(tmp_workdir)
    except BaseException:
        print(daemon.log_report(), file=sys.stderr)
        raise
    finally:
        try:
            os.kill(postmaster, signal.SIGCONT)
        except ProcessLookupError:
            pass
        stop_everything(tmp_workdir, daemon)


def process_state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def test_a_primary_whose_postmaster_alone_is_frozen_is_found_by_a_new_connection(
        pghad, tmp_workdir, account):
    """The primary's postmaster alone frozen (cgroup freezer): its process state is not
    'stopped', and its backends, the kept probe connection's included, go on answering.
    Not asleep (S) as at rest either: its postmaster is asked for a new connection beside
    the kept one, which is not served, and pghad counts the primary unreachable and fails
    over."""
    daemon, postmaster = healthy_with_one_probe_backend(pghad, tmp_workdir, account)
    try:
        mark = daemon.log_mark()
        with freezer.Frozen([postmaster]):
            assert process_state(postmaster) != "T"
            # found by the connection beside the kept one (the probes after it make new
            # ones, which time out connecting)
            daemon.wait_for_log(r"test-0, the primary, has not answered for \d+ ms \(no answer within \d+ ms "
                                r"\(connecting: the postmaster accepts no connection\)\)", timeout=90, since=mark)
            # and failed: its processes are killed, its postmaster once thawed
            daemon.wait_for_log(r"\[test-0\] fence: test-0 has not answered for \d+ ms", timeout=90, since=mark)
        failed_over_from_test_0(tmp_workdir)
        # a frozen process is not a stopped one
        assert "is stopped (state" not in daemon.log_text(mark)
    except BaseException:
        print(daemon.log_report(), file=sys.stderr)
        raise
    finally:
        stop_everything(tmp_workdir, daemon)


def test_a_primary_whose_postmaster_sleeps_stuck_in_a_signal_handler_is_found_at_once(pghad, tmp_workdir, account):
    """The primary's postmaster asleep (S) but not in its loop: stuck in its SIGHUP
    handler, which (in PostgreSQL 15) reads the configuration files there, opening a FIFO
    that no one writes, as one deadlocked in a handler would sleep on a lock. Its backends
    go on answering. Asleep in select, as at rest, its postmaster is asked for a new
    connection only every 5 minutes; asleep elsewhere, at every probe: pghad finds that it
    serves none, and fails over (with the 5 minute period, the test times out)."""
    daemon, postmaster = healthy_with_one_probe_backend(pghad, tmp_workdir, account)
    data = os.path.join(tmp_workdir, "clusters", "test", "test-0", "data")
    fifo = os.path.join(tmp_workdir, "hang.conf")
    try:
        # at rest, asleep in its loop: checked now and then
        pgharness.wait_until(lambda: members(status(tmp_workdir))["test-0"]["postmaster_check_ms"] == 300000,
                             timeout=30, what="test-0's postmaster seen asleep waiting for connections")
        os.mkfifo(fifo)
        os.chown(fifo, account.uid, account.gid)
        with open(os.path.join(data, "postgresql.conf"), "a") as conf:
            conf.write(f"include_if_exists '{fifo}'\n")
        mark = daemon.log_mark()
        os.kill(postmaster, signal.SIGHUP)
        pgharness.wait_until(lambda: process_state(postmaster) == "S" and
                             not open(f"/proc/{postmaster}/wchan").read().startswith(("poll_schedule_timeout",
                                                                                       "do_select")),
                             timeout=30, what="test-0's postmaster asleep opening the FIFO")
        daemon.wait_for_log(r"test-0, the primary, has not answered for \d+ ms \(no answer within \d+ ms "
                            r"\(connecting: the postmaster accepts no connection\)\)", timeout=90, since=mark)
        daemon.wait_for_log(r"\[test-0\] fence: test-0 has not answered for \d+ ms", timeout=90, since=mark)
        # an empty file in its place: the member started again reads it at once
        with open(fifo + ".empty", "w"):
            pass
        os.chmod(fifo + ".empty", 0o644)
        os.rename(fifo + ".empty", fifo)
        failed_over_from_test_0(tmp_workdir)
    except BaseException:
        print(daemon.log_report(), file=sys.stderr)
        raise
    finally:
        if os.path.exists(fifo):
            # a writer frees an open of the FIFO still waiting (which reads nothing)
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
            os.unlink(fifo)
        stop_everything(tmp_workdir, daemon)


def connections_received(workdir):
    with open(os.path.join(workdir, "clusters", "test", "test-0", "postgresql.log"), errors="replace") as f:
        return len(re.findall(r"LOG:  connection received: ", f.read()))


def test_the_postmaster_of_a_member_seen_in_proc_is_asked_for_a_connection_only_now_and_then(
        pghad, tmp_workdir, account):
    """Each connection beside the kept one forks a child of the postmaster, which cost the
    member more than the probe: on the local platform, which sees the postmaster's process,
    it is made every 30 s while the postmaster sleeps, not at every probe. log_connections
    logs each one it receives."""
    port = pgharness.free_port_range(2)
    text = config_text(tmp_workdir, port, replicas=1,
                       parameters={"log_connections": "true"}).replace('method = "any"; number = 1;', 'method = "off";')
    daemon = pghad(text, env={"PGHA_TEST_INITDB_NOSYNC": "1"})
    pgharness.wait_until(lambda: healthy(tmp_workdir, replicas=1), timeout=120, what="a healthy 1-member cluster")
    try:
        pgharness.wait_until(lambda: sql(tmp_workdir, account, port, "test-0", "SHOW log_connections") == "on",
                             timeout=60, what="log_connections on")
        # nothing but pghad connects to test-0 over these iterations (the status is read
        # from pghad's socket)
        mark = iteration_mark(tmp_workdir)
        before = connections_received(tmp_workdir)
        pgharness.wait_until(lambda: daemon_status(tmp_workdir)["iterations"] > mark + 21, timeout=120,
                             what="20 iterations")
        received = connections_received(tmp_workdir) - before
        # 20 probes; without the period, one connection beside each
        assert received < 5, f"test-0's postmaster received {received} connections in 20 iterations"
        # and the log does show a connection made
        sql(tmp_workdir, account, port, "test-0", "SELECT 1")
        pgharness.wait_until(lambda: connections_received(tmp_workdir) > before + received, timeout=30,
                             what="psql's connection in test-0's log")
    except BaseException:
        print(daemon.log_report(), file=sys.stderr)
        raise
    finally:
        stop_everything(tmp_workdir, daemon)


def probe_start(workdir, account, port, member):
    """When the backend serving pghad's probes of member last began one (its query_start)."""
    index = int(member.split("-")[1])
    return sql(workdir, account, port + index, member,
               "SELECT query_start FROM pg_stat_activity WHERE application_name = 'pghad'")


def probe_seen(workdir, account, port, member):
    """What the backend serving pghad's probes of member last answered, and when: (its
    state_change, "probe" or "ping" or the start of the statement's text). A ping, a Sync
    alone, starts no statement: the backend's state changes (it answers) long after its
    last statement (the probe an iteration or more before) began; a statement's answer
    follows its start within milliseconds."""
    index = int(member.split("-")[1])
    answered, pinged, text = sql(workdir, account, port + index, member,
                                 "SELECT state_change::text || '|' || "
                                 "coalesce((state_change > query_start + interval '250 ms')::text, 'true') "
                                 "|| '|' || left(query, 40) FROM pg_stat_activity "
                                 "WHERE application_name = 'pghad'").strip().split("|", 2)
    if pinged == "true":
        return answered, "ping"
    probe = text.startswith(("SELECT pg_is_in_recovery(),", "WITH pgha_settings AS"))
    return answered, "probe" if probe else text


def test_a_standby_at_rest_is_probed_now_and_then_and_one_that_fails_is_still_acted_on(pghad, tmp_workdir, account):
    """Each probe costs a member the wake-up of its backend, and more: the primary of a
    cluster at rest is probed every few seconds, and in between its backend, seen in
    /proc asleep waiting for pghad's next message, would answer a ping at once: it is not
    pinged (one stopped is: a Sync alone, which a hang would stop as it would the probe).
    What its last probe listed of its standbys, streaming and answering, stands in
    meanwhile; its standbys are probed every 30 s only, each probe of the primary listing
    them letting them rest on. A standby frozen, or killed, at rest is still found and
    acted on."""
    from test_failover import REPLICAS, fault_freeze
    port = pgharness.free_port_range(REPLICAS + 1)
    daemon = start_healthy(pghad, tmp_workdir, config_text(tmp_workdir, port))
    try:
        samples = []
        for _ in range(20):
            after_next_iteration(tmp_workdir)
            samples.append((probe_seen(tmp_workdir, account, port, "test-0"),
                            probe_start(tmp_workdir, account, port, "test-1")))
        primary = [start for (start, _), _ in samples]
        standby = [s for _, s in samples]
        # each sample follows a completed iteration: the primary, its backend seen waiting,
        # answered at a few of them only (probed every few seconds, not pinged in between)
        assert len(set(primary)) <= len(primary) // 2, f"the primary asked at most iterations: {samples}"
        assert all(what in ("ping", "probe") for (_, what), _ in samples), samples
        # and is probed again, at rest, within the rest period: the age of its last probe,
        # which grows in between, drops
        ages = []

        def probed_again():
            ages.append(members(status(tmp_workdir))["test-0"]["probe_age_ms"])
            return len(ages) > 1 and ages[-1] < ages[-2]
        pgharness.wait_until(probed_again, timeout=30, what="the primary probed again at rest")
        assert max(ages) > 0, ages
        # the standby, at rest, mostly not probed either
        assert len(set(standby)) <= len(standby) // 2, f"test-1's probes over 20 iterations began at {standby}"
        assert all(members(status(tmp_workdir))[name]["probe_age_ms"] is not None
                   for name in ("test-0", "test-1", "test-2"))
        # a standby rests across the primary's probes: its last probe gets older than the
        # primary's rest period (5 s) while the primary's is younger, the cluster healthy
        def standby_rests_on():
            seen = status(tmp_workdir)
            ages = {name: member["probe_age_ms"] for name, member in members(seen).items()}
            return healthy(tmp_workdir) and ages["test-1"] > 6000 and ages["test-0"] < ages["test-1"] - 5000
        pgharness.wait_until(standby_rests_on, timeout=40, what="test-1 resting across its primary's probes")

        # frozen at rest: its primary hears from it no more, and its own probe times out
        mark = iteration_mark(tmp_workdir)
        with fault_freeze(tmp_workdir, "test-1"):
            seen = pgharness.wait_until(
                lambda: (members(status(tmp_workdir, after=mark) or {"members": []}).get("test-1") or {})
                .get("state") == "unreachable" and status(tmp_workdir), timeout=60, what="test-1 seen unreachable")
            assert members(seen)["test-0"]["role"] == "primary"
        pgharness.wait_until(lambda: healthy(tmp_workdir), timeout=60, what="test-1 streaming again once thawed")

        # killed at rest: its postmaster gone is seen from the platform, and it is started again
        for _ in range(3):
            after_next_iteration(tmp_workdir)
        killed = postmaster_pid(tmp_workdir, "test-1")
        os.kill(killed, signal.SIGKILL)
        pgharness.wait_until(lambda: current_postmaster(tmp_workdir, "test-1") not in (None, killed)
                             and healthy(tmp_workdir), timeout=90, what="test-1 started again and streaming")

        # the backend serving the primary's probes hung at rest (stopped: not seen waiting
        # any more) is pinged, and does not answer its ping, a Sync alone on its kept
        # connection, any more than it would a probe (a hung postmaster, seen in /proc, has
        # it probed rather than pinged). Stopped soon after a probe (the next one is due
        # about 4 s after), it is pinged at the next iteration; answering again, on a new
        # connection, it stays the primary.
        def soon_after_a_probe():
            return healthy(tmp_workdir) and members(status(tmp_workdir))["test-0"]["probe_age_ms"] < 2000
        pgharness.wait_until(soon_after_a_probe, timeout=90, what="test-0 at rest, soon after a probe")
        (backend,) = probe_backends(tmp_workdir, account, port)
        log_mark = daemon.log_mark()
        os.kill(int(backend[0]), signal.SIGSTOP)
        try:
            daemon.wait_for_log(r"\[test-1\] probing it after all: the primary did not answer its ping", timeout=30,
                                since=log_mark)
        finally:
            os.kill(int(backend[0]), signal.SIGCONT)
        # logged once the standbys woken are answered too
        daemon.wait_for_log(r"\[test-0\] probe failed: no answer within \d+ ms \(waiting for the query\)", timeout=10,
                            since=log_mark)
        pgharness.wait_until(lambda: healthy(tmp_workdir), timeout=30, what="the cluster whole, test-0 its primary")
        assert members(status(tmp_workdir))["test-0"]["role"] == "primary"
    except BaseException:
        print(daemon.log_report(), file=sys.stderr)
        raise
    finally:
        stop_everything(tmp_workdir, daemon)


def test_the_primary_at_rest_has_light_probes_and_a_full_one_every_30_s(pghad, tmp_workdir, account):
    """The primary of a cluster at rest is probed lightly in between its full probes (its
    position and its standbys' replies, at a third of the cost), and in full at least
    every 30 s: what only the full probe reads, such as its replication role, is seen
    then, and acted on."""
    port = pgharness.free_port_range(4)
    daemon = start_healthy(pghad, tmp_workdir, config_text(tmp_workdir, port))
    try:
        def last_statement():
            return sql(tmp_workdir, account, port, "test-0",
                       "SELECT left(query, 60) FROM pg_stat_activity WHERE application_name = 'pghad'")
        kinds = []

        def light_then_full():
            text = last_statement()
            kind = ("light" if text.startswith("SELECT pg_is_in_recovery(), NULL,")
                    else "full" if text.startswith(("SELECT pg_is_in_recovery(), (SELECT", "WITH pgha_settings"))
                    else text)
            if not kinds or kinds[-1] != kind:
                kinds.append(kind)
            return "light" in kinds and "full" in kinds[kinds.index("light"):] and healthy(tmp_workdir)
        pgharness.wait_until(light_then_full, timeout=90, what="test-0 probed lightly, then in full")
        assert set(kinds) <= {"light", "full"}, kinds

        # the role broken at rest is not read by the light probes, but by the next full one
        mark = daemon.log_mark()
        sql(tmp_workdir, account, port, "test-0", "ALTER ROLE pgha_replicator NOLOGIN")
        daemon.wait_for_log(r"\[test-0\] alter-replication-role: ", timeout=60, since=mark)
        pgharness.wait_until(lambda: sql(tmp_workdir, account, port, "test-0",
                                         "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'pgha_replicator'") == "t",
                             timeout=30, what="the replication role usable again")
        pgharness.wait_until(lambda: healthy(tmp_workdir), timeout=30, what="the cluster healthy")
    except BaseException:
        print(daemon.log_report(), file=sys.stderr)
        raise
    finally:
        stop_everything(tmp_workdir, daemon)


def test_a_resting_standby_whose_connection_closes_while_its_cluster_is_observed_stays_observed(
        pghad, tmp_workdir, account):
    """A standby at rest keeps its connection watched through its cluster's observation
    (no epoll_ctl for it at every iteration), so the server's close of it can be heard
    while the observation is under way: the standby is then observed as it rests, as if
    the close came just after, and probed on a new connection at the next iteration. It
    is never shown unreachable, nor its probe failed."""
    port = pgharness.free_port_range(4)
    stall = os.path.join(tmp_workdir, "stall")
    daemon = pghad(config_text(tmp_workdir, port),
                   env={"PGHA_TEST_INITDB_NOSYNC": "1", "PGHA_TEST_STALL_FILE": stall})
    try:
        pgharness.wait_until(lambda: healthy(tmp_workdir), timeout=120, what="a healthy 3-member cluster")
        for attempt in range(3):
            # test-1 at rest: probed once on its connection, well within its rest period
            def resting():
                seen = healthy(tmp_workdir)
                age = seen and members(seen)["test-1"]["probe_age_ms"]
                return age is not None and 1500 < age < 20000
            pgharness.wait_until(resting, timeout=60, what="test-1 at rest")
            (backend,) = [int(pid) for pid in sql(tmp_workdir, account, port + 1, "test-1",
                                                   "SELECT pid FROM pg_stat_activity "
                                                   "WHERE application_name = 'pghad'").split()]
            ((primary_backend, _, _),) = probe_backends(tmp_workdir, account, port)
            # the loop stalls before its next iteration, whose observation of test-1 finds
            # the connection's end waiting, with the primary's ping out: the backend that
            # answers it is stopped until the close is heard (and, if the test is slower
            # than the ping's deadline, the standbys are probed after all)
            log_mark = daemon.log_mark()
            mark = iteration_mark(tmp_workdir)
            open(stall, "w").close()
            daemon.wait_for_log(r"test hook: .* exists, the loop stalls in the iteration", since=log_mark)
            assert sql(tmp_workdir, account, port + 1, "test-1", f"SELECT pg_terminate_backend({backend})") == "t"
            pgharness.wait_until(lambda: sql(tmp_workdir, account, port + 1, "test-1",
                                             f"SELECT count(*) FROM pg_stat_activity WHERE pid = {backend}") == "0",
                                 timeout=10, what=f"test-1's backend {backend} ended")
            os.kill(int(primary_backend), signal.SIGSTOP)
            try:
                os.unlink(stall)
                daemon.wait_for_log(r"test-1: the server closed pghad's probe connection: iterating now", timeout=10,
                                    since=log_mark)
            finally:
                os.kill(int(primary_backend), signal.SIGCONT)

            # every iteration since shows test-1 streaming, until it is probed on a new backend
            def new_backend():
                seen = status(tmp_workdir, after=mark)
                if seen is None:
                    return None
                assert members(seen)["test-1"]["state"] == "streaming", members(seen)["test-1"]
                pids = sql(tmp_workdir, account, port + 1, "test-1",
                           "SELECT pid FROM pg_stat_activity WHERE application_name = 'pghad'").split()
                return pids and int(pids[0]) != backend and healthy(tmp_workdir)
            pgharness.wait_until(new_backend, timeout=30, what="test-1 probed on a new connection")
            text = daemon.log_text(log_mark)
            assert "[test-1] probe failed" not in text, text
    except BaseException:
        print(daemon.log_report(), file=sys.stderr)
        raise
    finally:
        if os.path.exists(stall):
            os.unlink(stall)
        stop_everything(tmp_workdir, daemon)


FAKETIME_LIBRARY = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def skewed_bindir(workdir, member, offset):
    """A bindir for pghad: PostgreSQL's programs, but member's postgres runs with its
    clock off by offset (libfaketime, "+120s" or "-60s"; the monotonic clock left
    alone). A test script, not pgha's: pgha runs programs with an argv, never a shell."""
    library = next((path for path in [FAKETIME_LIBRARY] + sorted(
        glob.glob("/usr/lib/*/faketime/libfaketime.so.1")) if os.path.exists(path)), None)
    assert library, "libfaketime is missing: scripts/install-deps test installs the faketime package"
    real = pgharness.postgres_bindir()
    bindir = os.path.join(workdir, "bin")
    os.makedirs(bindir)
    for name in os.listdir(real):
        if name != "postgres":
            os.symlink(os.path.join(real, name), os.path.join(bindir, name))
    wrapper = os.path.join(bindir, "postgres")
    with open(wrapper, "w") as out:
        out.write(f"""#!/bin/sh
case "$*" in
*/{member}/*) export LD_PRELOAD={shlex.quote(library)} FAKETIME={shlex.quote(offset)} DONT_FAKE_MONOTONIC=1 ;;
esac
exec {shlex.quote(os.path.join(real, "postgres"))} "$@"
""")
    os.chmod(wrapper, 0o755)
    os.chmod(bindir, 0o755)
    return bindir


def member_clock(workdir, account, port, member):
    """now() minus the test's clock, in seconds, as member's backend gives it."""
    index = int(member.split("-")[1])
    return float(sql(workdir, account, port + index, member,
                     f"SELECT extract(epoch FROM clock_timestamp()) - {time.time()}"))


@pytest.mark.parametrize("offset", ["+60s", "-120s"])
def test_a_primary_whose_clock_disagrees_with_its_standbys_judges_them_by_pghads_clock(pghad, tmp_workdir, account,
                                                                                        offset):
    """How long ago a standby last answered its primary is the primary's clock minus the
    standby's stamp (pg_stat_replication.reply_time): with the primary's clock a minute
    ahead, standbys that answer looked silent for ever, never listed; with it two minutes
    behind, one cut off looked answering for two minutes, listed past wal_sender_timeout
    (60 s). pghad corrects that age for the offset its own successive probes of the
    primary prove: ahead, the cluster is healthy, both standbys listed; behind, test-1
    frozen leaves the list while its primary still lists it streaming, as with agreeing
    clocks. (The primary's clock is set off, with libfaketime: that of a standby's WAL
    receiver, which stamps the replies, cannot be.)"""
    from test_failover import REPLICAS, fault_freeze
    port = pgharness.free_port_range(REPLICAS + 1)
    bindir = skewed_bindir(tmp_workdir, "test-0", offset)
    text = config_text(tmp_workdir, port).replace('base_dir = ', f'bindir = "{bindir}"; base_dir = ')
    daemon = start_healthy(pghad, tmp_workdir, text)
    frozen = None
    try:
        skew = member_clock(tmp_workdir, account, port, "test-0") - member_clock(tmp_workdir, account, port, "test-1")
        assert abs(skew - int(offset[:-1])) < 10, f"test-0's clock is {skew:.1f} s off test-1's, not {offset}"
        assert members(status(tmp_workdir))["test-0"]["role"] == "primary"
        ages = sql(tmp_workdir, account, port, "test-0",
                   "SELECT min(extract(epoch FROM clock_timestamp() - reply_time)) FROM pg_stat_replication")
        assert abs(float(ages) - int(offset[:-1])) < 10, f"the replies' ages by test-0's clock: {ages}"
        seen = members(status(tmp_workdir))
        for name in ("test-1", "test-2"):
            assert seen[name]["state"] == "streaming" and seen[name]["reply_age_ms"] <= 5000, seen[name]
        assert sql(tmp_workdir, account, port, "test-0", "SHOW synchronous_standby_names") == \
            'ANY 1 ("test-1", "test-2")'
        if offset.startswith("-"):
            mark = daemon.log_mark()
            frozen = fault_freeze(tmp_workdir, "test-1")
            daemon.wait_for_log(r"set-synchronous: .* call for 'ANY 1 \(\"test-2\"\)'", timeout=50, since=mark)
            still = sql(tmp_workdir, account, port, "test-0",
                        "SELECT state FROM pg_stat_replication WHERE application_name = 'test-1'")
            assert still == "streaming", f"the primary no longer lists test-1 streaming ({still!r}): not seen early"
            frozen.thaw()
            frozen = None
            pgharness.wait_until(lambda: healthy(tmp_workdir), timeout=60, what="test-1 streaming and listed again")
    except BaseException:
        print(daemon.log_report(), file=sys.stderr)
        raise
    finally:
        if frozen:
            frozen.thaw()
        stop_everything(tmp_workdir, daemon)
