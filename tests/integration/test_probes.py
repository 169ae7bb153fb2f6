"""pghad's probes on real PostgreSQL: one kept connection per member, whose backend serves
probe after probe, made again at once when the server ends it."""
import os
import signal
import sys

import pgharness
from test_cluster import (config_text, daemon_status, healthy, iteration_mark, members, postmaster_pid, sql,
                          start_healthy, stop_everything)


def after_next_iteration(workdir):
    """Returns once pghad has completed an iteration begun after this call."""
    mark = iteration_mark(workdir)
    pgharness.wait_until(lambda: daemon_status(workdir)["iterations"] > mark + 1, timeout=30,
                         what=f"an iteration after {mark}")


def probe_backends(workdir, account, port):
    """(pid, backend_start, query_start) of each backend serving pghad's probes."""
    text = sql(workdir, account, port, "test-0",
               "SELECT pid, backend_start, query_start FROM pg_stat_activity "
               "WHERE application_name = 'pghad' ORDER BY pid")
    return [tuple(line.split("|")) for line in text.splitlines() if line]


def test_one_backend_serves_every_probe_and_a_terminated_one_is_replaced(pghad, tmp_workdir, account):
    port = pgharness.free_port_range(2)
    text = config_text(tmp_workdir, port, replicas=1).replace('method = "any"; number = 1;', 'method = "off";')
    daemon = pghad(text, env={"PGHA_TEST_INITDB_NOSYNC": "1"})
    pgharness.wait_until(lambda: healthy(tmp_workdir, replicas=1), timeout=120, what="a healthy 1-member cluster")
    try:
        seen = []
        for _ in range(10):
            after_next_iteration(tmp_workdir)
            backends = probe_backends(tmp_workdir, account, port)
            assert len(backends) == 1, f"pghad's probe connections to test-0: {backends}"
            seen.append(backends[0])
        pids = {(pid, started) for pid, started, _ in seen}
        assert len(pids) == 1, f"probes of test-0 over 10 iterations came from backends {sorted(pids)}"
        # each sample follows a completed iteration: each saw a later probe on that backend
        queries = [query_start for _, _, query_start in seen]
        assert len(set(queries)) == len(queries), f"the same probe seen twice: {queries}"
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


def test_a_primary_whose_postmaster_alone_is_frozen_is_unreachable_and_failed_over(pghad, tmp_workdir, account):
    """SIGSTOP to the primary's postmaster only: its backends, the kept probe connection's
    included, go on answering, but no new connection is served. pghad counts it
    unreachable, as when each probe made a new connection, and fails over."""
    from test_failover import REPLICAS, converged, failover_config
    port = pgharness.free_port_range(REPLICAS + 1)
    daemon = start_healthy(pghad, tmp_workdir, failover_config(tmp_workdir, port))
    postmaster = postmaster_pid(tmp_workdir, "test-0")
    try:
        # the kept connection's backend serves the probes: it is what must not hide the hang
        pgharness.wait_until(lambda: len(probe_backends(tmp_workdir, account, port)) == 1, timeout=30,
                             what="one backend serving pghad's probes of test-0")
        mark = daemon.log_mark()
        os.kill(postmaster, signal.SIGSTOP)
        # its backend answered: the connection beside it to its postmaster did not
        daemon.wait_for_log(r"test-0, the primary, has not answered for \d+ ms \(no answer within \d+ ms "
                            r"\(connecting: the postmaster accepts no connection\)\)", timeout=90, since=mark)
        state = pgharness.wait_until(lambda: converged(tmp_workdir, "test-0"), timeout=90,
                                     what="a new primary with both others streaming from it")
        assert "test-0" not in [m["name"] for m in state["members"] if m["role"] == "primary"]
    except BaseException:
        print(daemon.log_report(), file=sys.stderr)
        raise
    finally:
        try:
            os.kill(postmaster, signal.SIGCONT)
        except ProcessLookupError:
            pass
        stop_everything(tmp_workdir, daemon)
