"""What pghad tells the operator, on real PostgreSQL: metrics in Prometheus's text format
(checked with promtool) during a failover, a history that lists a failover and a
switchover with their durations and outlives a restart of pghad, a status in which every
member shows the timeline it is on and old events their age, and a clone's progress."""
import os
import re
import shutil
import subprocess

import pytest

import pgharness
from test_cluster import config_text, healthy, iteration_mark, members, postmaster_pid, status, stop_everything
from test_failover import converged, failover_config, pghactl, REPLICAS


def promtool():
    program = shutil.which("promtool")
    if program is None:
        pytest.fail("promtool is not installed: run scripts/install-deps test (Debian's prometheus package)")
    return program


def check_metrics(workdir, text):
    """promtool check metrics on text: no error, no lint complaint."""
    path = os.path.join(workdir, "metrics-checked.prom")
    with open(path, "w") as out:
        out.write(text)
    with open(path) as given:
        result = subprocess.run([promtool(), "check", "metrics"], stdin=given, capture_output=True, text=True,
                                timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr + "\n" + text
    assert result.stdout.strip() == "" and result.stderr.strip() == "", result.stdout + result.stderr


def sample(text, name, **labels):
    """The value of the sample of metric name with exactly labels, or None."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        assert match, f"not a sample line: {line!r}"
        if match.group(1) != name:
            continue
        found = dict(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if found == {key: str(value) for key, value in labels.items()}:
            return float(match.group(3))
    return None


def metrics(workdir, account):
    result = pghactl(workdir, account, "metrics")
    assert result.returncode == 0, result.stderr
    return result.stdout


def history(workdir, account, *arguments):
    result = pghactl(workdir, account, "history", *arguments)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def cluster(pghad, tmp_workdir, account):
    port = pgharness.free_port_range(REPLICAS + 1)
    text = failover_config(tmp_workdir, port).replace(
        'log_level = "info";', f'log_level = "info";\n  metrics_file = "{tmp_workdir}/pgha.prom";')
    daemon = pghad(text, env={"PGHA_TEST_INITDB_NOSYNC": "1"})
    pgharness.wait_until(lambda: healthy(tmp_workdir), timeout=120, what="a healthy 3-member cluster")
    yield daemon, port, text
    stop_everything(tmp_workdir, daemon)


def test_metrics_history_and_timelines_across_a_failover_a_switchover_and_a_restart(cluster, pghad, tmp_workdir,
                                                                                      account):
    daemon, port, text = cluster
    before = metrics(tmp_workdir, account)
    check_metrics(tmp_workdir, before)
    assert sample(before, "pgha_member_role", cluster="test", member="test-0", role="primary") == 1
    assert sample(before, "pgha_failovers_total", cluster="test", kind="automatic", outcome="completed") == 0
    assert sample(before, "pgha_cluster_members_up", cluster="test") == 3

    os.kill(postmaster_pid(tmp_workdir, "test-0"), 9)
    state = pgharness.wait_until(lambda: converged(tmp_workdir, "test-0"), timeout=90,
                                 what="a new primary with both others streaming from it")
    new_primary = [m["name"] for m in state["members"] if m["role"] == "primary"][0]
    after = metrics(tmp_workdir, account)
    check_metrics(tmp_workdir, after)
    assert sample(after, "pgha_failovers_total", cluster="test", kind="automatic", outcome="completed") == 1
    assert sample(after, "pgha_member_role", cluster="test", member=new_primary, role="primary") == 1
    assert sample(after, "pgha_member_role", cluster="test", member="test-0", role="primary") == 0
    assert sample(after, "pgha_member_timeline", cluster="test", member=new_primary) == 2
    assert sample(after, "pgha_last_failover_duration_seconds", cluster="test", kind="automatic",
                  outcome="completed") > 0
    assert sample(after, "pgha_cluster_primary", cluster="test", member=new_primary) == 1
    # the file node_exporter reads says the same, and passes promtool too
    with open(os.path.join(tmp_workdir, "pgha.prom")) as written:
        check_metrics(tmp_workdir, written.read())

    # a switchover to the third member: its progress lines are never empty
    target = [name for name in ("test-1", "test-2") if name != new_primary][0]
    result = pghactl(tmp_workdir, account, "switchover", "test", "--to", target)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not [line for line in result.stdout.splitlines() if re.fullmatch(r"\w+: *", line)], result.stdout
    mark = iteration_mark(tmp_workdir)

    def all_on_timeline_3():
        cluster_status = converged(tmp_workdir, new_primary, after=mark)
        if cluster_status is None or members(cluster_status)[target]["role"] != "primary":
            return None
        timelines = {name: member["timeline"] for name, member in members(cluster_status).items()}
        return cluster_status if set(timelines.values()) == {3} else None

    # every member on the switchover's new timeline: the standbys show the one they receive
    pgharness.wait_until(all_on_timeline_3, timeout=60, what="every member on timeline 3 in status")
    shown = pghactl(tmp_workdir, account, "status")
    assert shown.returncode == 0, shown.stderr
    lines = {line.split()[0]: line for line in shown.stdout.splitlines() if line.startswith("test-")}
    for name, line in lines.items():
        assert line.split()[4] == "3", shown.stdout
    # old events show their age, and none reads as a current error
    assert re.search(r"\d+ s ago: ", shown.stdout), shown.stdout
    assert "ERROR now" not in shown.stdout, shown.stdout

    def listed(text):
        entries = [line for line in text.splitlines()[1:]]
        failover = [line for line in entries if " failover " in f" {line} " and "completed" in line]
        switchover = [line for line in entries if " switchover " in line and "completed" in line]
        return failover, switchover

    failover, switchover = listed(history(tmp_workdir, account))
    assert len(failover) == 1 and new_primary in failover[0], failover
    assert len(switchover) == 1 and target in switchover[0], switchover
    assert re.search(r" \d+ ms | \d+\.\d s ", failover[0]) and re.search(r" \d+ ms | \d+\.\d s ", switchover[0])
    as_json = pghactl(tmp_workdir, account, "history", "test", "--json")
    assert as_json.returncode == 0, as_json.stderr
    import json
    entries = json.loads(as_json.stdout)
    kinds = [(entry["kind"], entry["outcome"]) for entry in entries]
    assert ("failover", "completed") in kinds and ("switchover", "completed") in kinds, kinds
    assert all(entry["duration_ms"] > 0 for entry in entries if entry["kind"] in ("failover", "switchover"))
    # the rewind or restart of the old primary is in the history too
    assert any(entry["member"] == "test-0" and entry["kind"] in ("rewind", "start", "restart") for entry in entries), \
        kinds

    # a new pghad reads the history the old one kept
    daemon.stop()
    again = pghad(text, name="pghad-again", env={"PGHA_TEST_INITDB_NOSYNC": "1"})
    failover_again, switchover_again = listed(history(tmp_workdir, account))
    assert failover_again == failover and switchover_again == switchover
    # its counters start afresh: a Prometheus counter may reset with the process
    check_metrics(tmp_workdir, metrics(tmp_workdir, account))
    again.stop()


def test_a_throttled_clone_shows_its_progress_in_status(pghad, tmp_workdir, account):
    port = pgharness.free_port_range(REPLICAS + 1)
    # one member first (asynchronous: there is no standby), then a second one, cloned
    text = config_text(tmp_workdir, port, replicas=1, method="off")
    daemon = pghad(text, env={"PGHA_TEST_INITDB_NOSYNC": "1", "PGHA_TEST_CLONE_MAX_RATE": "1M"})
    try:
        pgharness.wait_until(lambda: healthy(tmp_workdir, replicas=1), timeout=120, what="a primary")
        # without a FILE, plan and check take the file pghad runs, asked over its socket
        # (pghactl's default file does not exist here)
        config = os.path.join(tmp_workdir, "pghad.conf")
        daemon.write_config(config_text(tmp_workdir, port, replicas=2))
        plan = pghactl(tmp_workdir, account, "plan")
        assert plan.returncode == 0, plan.stdout + plan.stderr
        assert plan.stdout.startswith(f"what reloading {config} would do"), plan.stdout
        assert "test-1" in plan.stdout, plan.stdout
        check = pghactl(tmp_workdir, account, "check")
        assert check.returncode == 0, check.stdout + check.stderr
        assert "test" in check.stdout and "no pghad answers" not in check.stderr, check.stdout + check.stderr
        # the copy lasts more than 20 s at 1 MB/s: an empty cluster's files weigh more than 20 MB
        daemon.reload()

        def cloning():
            member = members(status(tmp_workdir)).get("test-1")
            clone = member and member.get("clone")
            return clone if clone and clone["total_bytes"] and 0 < clone["percent"] < 100 else None

        clone = pgharness.wait_until(cloning, timeout=60, what="test-1's clone in progress in status")
        assert clone["streamed_bytes"] < clone["total_bytes"]
        # the copy's WAL stream is not test-1: synchronous_standby_names must not count it
        copying = status(tmp_workdir)
        if members(copying)["test-1"].get("clone"):
            assert members(copying)["test-1"]["sync_state"] == "", members(copying)["test-1"]
        shown = pghactl(tmp_workdir, account, "status")
        assert re.search(r"test-1 .*cloning: \d+% of \d+\.\d MB", shown.stdout), shown.stdout
        pgharness.wait_until(lambda: healthy(tmp_workdir, replicas=2), timeout=180, what="test-1 streaming")
        entries = history(tmp_workdir, account, "test")
        assert re.search(r"test-1 +clone +completed", entries), entries
    finally:
        stop_everything(tmp_workdir, daemon)
