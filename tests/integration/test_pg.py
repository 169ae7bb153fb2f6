"""src/pg.c against real servers: requests to several servers run concurrently under
one deadline, so a hung (SIGSTOPped) or absent server never keeps the answers of the
others from arriving, and every outcome is reported."""
import os
import signal
import subprocess

import pgharness


def probe(timeout_ms, sql, *targets):
    """Runs tests/pg-probe and returns {target: (outcome, value or reason)}."""
    result = subprocess.run([os.environ["PG_PROBE"], str(timeout_ms), pgharness.PostgresServer.SUPERUSER, sql,
                             *targets], capture_output=True, text=True, timeout=60, check=True)
    outcomes = {}
    for line in result.stdout.splitlines():
        target, outcome, detail = line.split("\t", 2)
        outcomes[target] = (outcome, detail)
    return outcomes


def address(server):
    return f"{server.host}:{server.port}"


def test_queries_reach_every_server(postgres, tmp_workdir, account):
    with pgharness.PostgresServer(account=account, name="second") as second:
        outcomes = probe(5000, "SELECT current_setting('port')", address(postgres), address(second),
                         f"{postgres.socket_dir}:{postgres.port}")
    assert outcomes[address(postgres)] == ("ok", str(postgres.port))
    assert outcomes[address(second)] == ("ok", str(second.port))
    assert outcomes[f"{postgres.socket_dir}:{postgres.port}"] == ("ok", str(postgres.port)), "a socket directory is a host"


def test_a_hung_server_times_out_and_does_not_hold_back_the_others(postgres, account):
    with pgharness.PostgresServer(account=account, name="hung") as hung:
        os.kill(hung.pid, signal.SIGSTOP)
        try:
            outcomes = probe(1500, "SELECT 42", address(hung), address(postgres))
        finally:
            os.kill(hung.pid, signal.SIGCONT)
        assert outcomes[address(postgres)] == ("ok", "42")
        outcome, reason = outcomes[address(hung)]
        assert outcome == "timeout"
        assert reason.startswith("no answer within 1500 ms")
        # once resumed, the same server answers again
        assert probe(5000, "SELECT 42", address(hung))[address(hung)] == ("ok", "42")


def test_a_hung_backend_times_out_after_connecting(postgres):
    """The server accepts the connection but the query never finishes: the request
    is abandoned at the deadline, and the server stops the statement by itself soon
    after (statement_timeout a second past the deadline)."""
    outcomes = probe(1500, "SELECT pg_sleep(30)", address(postgres))
    assert outcomes[address(postgres)] == ("timeout", "no answer within 1500 ms (waiting for the query)")
    pgharness.wait_until(lambda: "canceling statement due to statement timeout" in postgres.log_text(),
                         timeout=20, what="the server to cancel the abandoned statement")


def test_errors_are_reported_with_their_reason(postgres):
    port = pgharness.free_port()
    outcomes = probe(5000, "SELECT nonsense FROM nowhere", address(postgres), f"127.0.0.1:{port}")
    outcome, reason = outcomes[address(postgres)]
    assert outcome == "error" and 'relation "nowhere" does not exist' in reason
    outcome, reason = outcomes[f"127.0.0.1:{port}"]
    assert outcome == "error" and reason.startswith("cannot connect: ") and "\n" not in reason


def test_the_probe_is_recognisable_on_the_server(postgres):
    outcomes = probe(5000, "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()",
                     address(postgres))
    assert outcomes[address(postgres)] == ("ok", "pgha")


def test_a_named_statement_is_prepared_once_per_kept_connection_and_executed_after(postgres):
    """A named statement on a kept connection is prepared by its first run and only
    executed by the next ones: the server counts the executions of one statement, on one
    backend."""
    sql = ("SELECT pg_backend_pid() || ':' || (SELECT generic_plans + custom_plans FROM pg_prepared_statements "
           "WHERE name = 'pgha_test')")
    result = subprocess.run([os.environ["PG_PROBE"], "5000", pgharness.PostgresServer.SUPERUSER, sql, address(postgres)],
                            capture_output=True, text=True, timeout=60, check=True,
                            env={**os.environ, "PG_PROBE_STATEMENT": "pgha_test", "PG_PROBE_RUNS": "3"})
    runs = [line.split("\t", 2) for line in result.stdout.splitlines()]
    assert [outcome for _, outcome, _ in runs] == ["ok"] * 3, runs
    backends = {value.split(":")[0] for _, _, value in runs}
    assert len(backends) == 1, runs
    assert [value.split(":")[1] for _, _, value in runs] == ["1", "2", "3"], runs


def probe_runs(sql, runs, target, env, timeout_ms=5000):
    """Starts tests/pg-probe with a kept connection to target for runs runs; returns it
    (its lines come one run at a time: PG_PROBE_PAUSE_MS in env paces them)."""
    return subprocess.Popen([os.environ["PG_PROBE"], str(timeout_ms), pgharness.PostgresServer.SUPERUSER, sql, target],
                            stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PG_PROBE_STATEMENT": "pgha_test", "PG_PROBE_RUNS": str(runs), **env})


def test_a_sync_alone_answers_and_leaves_the_kept_connection_to_the_next_statement(postgres):
    """A Sync alone (the ping of a primary at rest) is answered on the kept connection,
    and the statements after it run on the same backend, prepared once."""
    sql = ("SELECT pg_backend_pid() || ':' || (SELECT generic_plans + custom_plans FROM pg_prepared_statements "
           "WHERE name = 'pgha_test')")
    result = subprocess.run([os.environ["PG_PROBE"], "5000", pgharness.PostgresServer.SUPERUSER, sql, address(postgres)],
                            capture_output=True, text=True, timeout=60, check=True,
                            env={**os.environ, "PG_PROBE_STATEMENT": "pgha_test", "PG_PROBE_RUNS": "5",
                                 "PG_PROBE_SYNC": "1"})
    runs = [line.split("\t", 2) for line in result.stdout.splitlines()]
    assert [(outcome, value if value == "sync" else value.split(":")[1]) for _, outcome, value in runs] == [
        ("ok", "sync"), ("ok", "1"), ("ok", "sync"), ("ok", "2"), ("ok", "sync")], runs
    assert len({value.split(":")[0] for _, _, value in runs if value != "sync"}) == 1, runs


def sync_after_backend(postgres, runs, to_backend):
    """Runs a Sync, a statement that tells its backend's pid, then (after to_backend(pid))
    a Sync again and, for runs 4, a statement again, on one kept connection; returns the
    lines of the runs and the pid."""
    process = probe_runs("SELECT pg_backend_pid()", runs, address(postgres),
                         {"PG_PROBE_SYNC": "1", "PG_PROBE_PAUSE_MS": "1500"}, timeout_ms=1000)
    try:
        lines = [process.stdout.readline().rstrip("\n").split("\t", 2) for _ in range(2)]
        assert [outcome for _, outcome, _ in lines] == ["ok", "ok"], lines
        pid = int(lines[1][2])
        to_backend(pid)
        lines += [line.rstrip("\n").split("\t", 2) for line in process.stdout]
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return lines, pid


def test_a_sync_alone_to_a_hung_backend_times_out(postgres):
    """A hung (SIGSTOPped) backend does not answer a Sync: the request times out, as a
    statement would."""
    stopped = []

    def stop(pid):
        os.kill(pid, signal.SIGSTOP)
        stopped.append(pid)
    try:
        lines, _ = sync_after_backend(postgres, 3, stop)
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
    assert lines[2][1:] == ["timeout", "no answer within 1000 ms (waiting for the query)"], lines


def test_a_sync_alone_on_a_terminated_backend_runs_again_on_a_new_connection(postgres):
    """A kept connection whose backend was terminated meanwhile: the Sync runs again once
    on a new connection (within the same deadline), and the statement after it there."""
    lines, pid = sync_after_backend(postgres, 4, lambda pid: postgres.execute("SELECT pg_terminate_backend(%s)", (pid,)))
    assert [outcome for _, outcome, _ in lines] == ["ok"] * 4, lines
    assert lines[2][2] == "sync"
    assert int(lines[3][2]) != pid, lines
