"""pghad keeping a synchronous cluster on the local platform, on real PostgreSQL:
creation from nothing, healing a killed or lost standby, adopting running members
after a restart of pghad, and scaling by reload."""
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

import pgharness

REPLICAS = 3


def config_text(workdir, port, replicas=REPLICAS, number=1, method="any", loop_interval_ms=200, parameters=None):
    parameter_lines = "".join(f"{name} = {value}; " for name, value in (parameters or {}).items())
    return f"""
daemon: {{
  state_dir = "{workdir}/state";
  control_socket = "{workdir}/pghad.sock";
  loop_interval_ms = {loop_interval_ms};
  log_level = "debug";
}};
platform: {{ local: {{ base_dir = "{workdir}/clusters"; }}; }};
clusters = ( {{
  name = "test";
  replicas = {replicas};
  port = {port};
  synchronous = {{ method = "{method}"; number = {number}; }};
  postgresql = {{ parameters = {{ {parameter_lines}}}; }};
}} );
"""


def daemon_status(workdir):
    """The running pghad's whole status reply, over its control socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(15)
        connection.connect(os.path.join(workdir, "pghad.sock"))
        connection.sendall(b'{"command": "status"}\n')
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = connection.recv(65536)
            assert chunk, "pghad closed the control connection"
            answer += chunk
    return json.loads(answer)


def iteration_mark(workdir):
    """How many loop iterations pghad has begun now: pass it as after= to look only at a
    status taken after this call. A status's "iterations" counts those whose every
    cluster's turn is complete, so one that counts more than the mark shows observations
    made after the mark was read; one that counts as many may be the view of an
    iteration that began before a fault the test has just caused."""
    return daemon_status(workdir)["iterations_begun"]


def status(workdir, after=None):
    """The running pghad's status of cluster test; with after (an iteration_mark()), None
    while the status is of an iteration that began before the mark."""
    reply = daemon_status(workdir)
    if after is not None and reply["iterations"] <= after:
        return None
    return reply["clusters"][0]


def members(cluster_status):
    return {member["name"]: member for member in cluster_status["members"]}


def healthy(workdir, replicas=REPLICAS, after=None):
    """The status once the cluster has one primary (test-0) and replicas - 1 streaming
    standbys that are all in the synchronous list, else None; with after, only in a
    status taken after that iteration_mark()."""
    cluster = status(workdir, after)
    if cluster is None:
        return None
    by_name = members(cluster)
    expected = [f"test-{index}" for index in range(replicas)]
    if any(name not in by_name for name in expected):
        return None
    if by_name["test-0"]["role"] != "primary":
        return None
    standbys = expected[1:]
    if any(by_name[name]["state"] != "streaming" or by_name[name]["sync_state"] not in ("quorum", "sync")
           for name in standbys):
        return None
    return cluster


@contextlib.contextmanager
def held_still(daemon):
    """pghad stopped (SIGSTOP) for the block, so that a fault made of several steps (a
    kill, then a directory replaced) reaches it whole: it cannot restart a member on
    the old directory between two steps."""
    os.kill(daemon.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(daemon.pid, signal.SIGCONT)


def postmaster_pid(workdir, member):
    with open(os.path.join(workdir, "clusters", "test", member, "data", "postmaster.pid")) as pid_file:
        return int(pid_file.readline())


def current_postmaster(workdir, member):
    """postmaster_pid(), or None while there is no pid file (pghad removes a stale one)."""
    try:
        return postmaster_pid(workdir, member)
    except (FileNotFoundError, ValueError):
        return None


def sql(workdir, account, port, member, statement, check=True, timeout=60):
    """Runs statement on a member with psql as the test account (PostgreSQL's superuser
    there, by peer authentication on the member's socket) and returns its output. With
    check false, a member that fails or does not answer within timeout gives None."""
    psql = os.path.join(pgharness.postgres_bindir(), "psql")
    argv = [psql, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", os.path.join(workdir, "clusters", "test", member),
            "-p", str(port), "-U", account.name, "-d", "postgres", "-c", statement]
    try:
        result = pgharness.run_as_user(argv, account=account, capture_output=True, text=True, timeout=timeout,
                                       env={"PGCONNECT_TIMEOUT": str(max(2, timeout))})
    except subprocess.TimeoutExpired:
        if check:
            raise
        return None
    if not check and result.returncode != 0:
        return None
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture
def cluster(pghad, tmp_workdir, account):
    """A pghad keeping cluster test (3 members, ANY 1) from an empty base directory,
    waited for until healthy. Yields (daemon, base port)."""
    port = pgharness.free_port_range(REPLICAS + 1)
    daemon = start_healthy(pghad, tmp_workdir, config_text(tmp_workdir, port))
    yield daemon, port
    stop_everything(tmp_workdir, daemon)


def start_healthy(pghad, workdir, text):
    """Starts pghad on text and waits until cluster test is healthy."""
    daemon = pghad(text, env={"PGHA_TEST_INITDB_NOSYNC": "1"})
    try:
        pgharness.wait_until(lambda: healthy(workdir), timeout=120, what="a healthy 3-member cluster")
    except BaseException:
        # a failed setup shows no teardown output: say here what pghad did
        print(daemon.log_report(), file=sys.stderr)
        print(pgharness.member_logs_report(workdir), file=sys.stderr)
        raise
    return daemon


def stop_everything(workdir, *daemons):
    """Stops every pghad (which would start the members again), then the members."""
    for daemon in daemons:
        if daemon.running:
            daemon.stop()
    pgharness.stop_postmasters_under(workdir)


def test_a_new_cluster_replicates_synchronously(cluster, tmp_workdir, account):
    daemon, port = cluster
    state = healthy(tmp_workdir)
    assert state["synchronous_standby_names"] == 'ANY 1 ("test-1", "test-2")'
    assert sql(tmp_workdir, account, port, "test-0", "SHOW synchronous_standby_names") == 'ANY 1 ("test-1", "test-2")'
    assert [members(state)[name]["role"] for name in ("test-0", "test-1", "test-2")] == ["primary", "replica", "replica"]

    sql(tmp_workdir, account, port, "test-0", "CREATE TABLE acknowledged (id int); INSERT INTO acknowledged VALUES (42)")
    for index in (1, 2):
        pgharness.wait_until(
            lambda: sql(tmp_workdir, account, port + index, f"test-{index}",
                        "SELECT count(*) FROM pg_catalog.pg_tables WHERE tablename = 'acknowledged'") == "1"
            and sql(tmp_workdir, account, port + index, f"test-{index}", "SELECT id FROM acknowledged") == "42",
            timeout=30, what=f"the commit on test-{index}")
        assert sql(tmp_workdir, account, port + index, f"test-{index}", "SELECT pg_is_in_recovery()") == "t"
    # standbys replicate as pgha's role with their member name, through their own slot
    rows = sql(tmp_workdir, account, port, "test-0",
               "SELECT application_name || ':' || usename FROM pg_stat_replication ORDER BY 1")
    assert rows.splitlines() == ["test-1:pgha_replicator", "test-2:pgha_replicator"]
    slots = sql(tmp_workdir, account, port, "test-0",
                "SELECT slot_name || ':' || active FROM pg_replication_slots ORDER BY 1")
    assert slots.splitlines() == ["test_1:true", "test_2:true"]
    # the replication password is kept private to pghad's user and never logged
    secret = os.path.join(tmp_workdir, "state", "test", "replication.password")
    assert oct(os.stat(secret).st_mode & 0o777) == "0o600"
    with open(secret) as password_file:
        logged = password_file.read().strip() in daemon.log_text()
    assert not logged, "pghad's log holds the replication password"  # and the failure does not print it
    # the operator's view: one line per member
    pghactl = pgharness.install_program("pghactl", os.path.join(tmp_workdir, "bin"), account)
    table = pgharness.run_as_user([pghactl, "-s", os.path.join(tmp_workdir, "pghad.sock"), "status"], account=account,
                                  capture_output=True, text=True, timeout=30).stdout
    rows = {line.split()[0]: line.split() for line in table.splitlines() if line.startswith("test-")}
    assert rows["test-0"][1:4] == [str(port), "primary", "running"]
    assert rows["test-1"][1:4] == [str(port + 1), "replica", "streaming"]
    assert "quorum" in rows["test-2"]
    assert """synchronous_standby_names = 'ANY 1 ("test-1", "test-2")'""" in table
    # data checksums are on, and the settings pgha owns live in its own file
    assert sql(tmp_workdir, account, port, "test-0", "SHOW data_checksums") == "on"
    assert sql(tmp_workdir, account, port + 1, "test-1", "SELECT sourcefile FROM pg_settings WHERE name = 'primary_conninfo'") \
        .endswith("/test-1/data/pgha-standby.conf")
    # and its WAL receiver gives a silent primary up within 10 s (keepalives, TCP user timeout)
    conninfo = sql(tmp_workdir, account, port + 1, "test-1", "SELECT conninfo FROM pg_stat_wal_receiver")
    assert re.search(r"tcp_user_timeout='?10000\b", conninfo) and re.search(r"keepalives_idle='?5\b", conninfo), conninfo


def test_a_killed_standby_is_restarted_and_listed_again(cluster, tmp_workdir, account):
    daemon, port = cluster
    primary = postmaster_pid(tmp_workdir, "test-0")
    killed = postmaster_pid(tmp_workdir, "test-1")
    os.kill(killed, signal.SIGKILL)
    pgharness.wait_until(lambda: current_postmaster(tmp_workdir, "test-1") not in (None, killed) and healthy(tmp_workdir),
                         timeout=120, what="test-1 running, streaming and listed again")
    assert postmaster_pid(tmp_workdir, "test-0") == primary, "the primary was not touched"
    assert healthy(tmp_workdir)["synchronous_standby_names"] == 'ANY 1 ("test-1", "test-2")'


def test_a_lost_standby_directory_is_cloned_again(cluster, tmp_workdir, account):
    daemon, port = cluster
    primary = postmaster_pid(tmp_workdir, "test-0")
    mark = daemon.log_mark()
    killed = postmaster_pid(tmp_workdir, "test-2")
    with held_still(daemon):
        os.kill(killed, signal.SIGKILL)
        pgharness.wait_until(lambda: not pgharness.process_alive(killed), timeout=30, what="test-2's postmaster gone")
        pgharness.remove_tree(os.path.join(tmp_workdir, "clusters", "test", "test-2", "data"))
    daemon.wait_for_log(r"\[test-2\] clone test-0: test-2 has no data directory", timeout=60, since=mark)
    pgharness.wait_until(lambda: healthy(tmp_workdir), timeout=120, what="test-2 cloned and streaming again")
    assert postmaster_pid(tmp_workdir, "test-0") == primary, "the primary was not touched"


def test_an_unusable_directory_is_moved_aside_never_deleted(cluster, tmp_workdir, account):
    daemon, port = cluster
    member_dir = os.path.join(tmp_workdir, "clusters", "test", "test-2")
    killed = postmaster_pid(tmp_workdir, "test-2")
    mark = daemon.log_mark()
    with held_still(daemon):
        os.kill(killed, signal.SIGKILL)
        pgharness.wait_until(lambda: not pgharness.process_alive(killed), timeout=30, what="test-2's postmaster gone")
        # replace the data directory by one that is not a data directory
        data = os.path.join(member_dir, "data")
        pgharness.remove_tree(data)
        os.mkdir(data, 0o700)
        with open(os.path.join(data, "precious.txt"), "w") as precious:
            precious.write("not PostgreSQL's, but somebody's")
        account.chown(data)
    # the event itself, not the status (which shows the view of the iteration before)
    moved = daemon.wait_for_log(r"\[test-2\] unusable data directory kept as (\S+)", timeout=60, since=mark)
    daemon.wait_for_log(r"\[test-2\] clone", timeout=60, since=mark)
    pgharness.wait_until(lambda: healthy(tmp_workdir), timeout=120, what="test-2 cloned again")
    kept = [name for name in os.listdir(member_dir) if name.startswith("data.unusable.")]
    assert len(kept) == 1
    assert moved.group(1) == os.path.join(member_dir, kept[0])
    # status shows where, as it does on Kubernetes (kept_aside), and nothing for the others
    def kept_aside_shown():
        by_name = members(status(tmp_workdir))
        return by_name if by_name["test-2"]["kept_aside"] else None

    shown = pgharness.wait_until(kept_aside_shown, timeout=30, what="kept_aside in status")
    assert shown["test-2"]["kept_aside"] == moved.group(1)
    assert shown["test-0"]["kept_aside"] == "" and shown["test-1"]["kept_aside"] == ""
    with open(os.path.join(member_dir, kept[0], "precious.txt")) as precious:
        assert precious.read() == "not PostgreSQL's, but somebody's"


def trusted_unchanged(workdir, path):
    """Once pghad may trust that path did not change since it last looked (its identity:
    a file changed within the second before it was looked at is looked at again): its
    last change a second and a half old, and an iteration begun after that complete."""
    pgharness.wait_until(lambda: time.time() - os.stat(path).st_ctime > 1.5, timeout=30,
                         what=f"{path} unchanged for 1.5 s")
    mark = iteration_mark(workdir)
    pgharness.wait_until(lambda: status(workdir, after=mark), timeout=30, what="an iteration after that")


def edit_in_place(path, old, new):
    """Replaces old by new (of the same length) in path, in place, its modification time
    set back: only its change time tells."""
    assert len(old) == len(new)
    before = os.stat(path)
    with open(path, "rb") as f:
        text = f.read()
    assert old in text, text
    with open(path, "r+b") as f:
        f.write(text.replace(old, new, 1))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)


def test_a_state_file_edited_by_hand_is_read_again_even_with_its_size_and_time_kept(cluster, tmp_workdir, account):
    """The state file is the truth, but pghad reads it again only once it changed (its
    inode, size, modification and change times) since pghad last read or wrote it: an
    edit in place to the same size, whose modification time is then set back, still
    changes its change time, and pghad follows it (here: automatic failover paused)."""
    from test_failover import pghactl
    daemon, port = cluster
    path = os.path.join(tmp_workdir, "state", "test", "state.json")
    assert status(tmp_workdir)["failover"]["paused"] is False
    trusted_unchanged(tmp_workdir, path)
    edit_in_place(path, b'"paused": false', b'"paused": true ')
    pgharness.wait_until(lambda: status(tmp_workdir)["failover"]["paused"] is True, timeout=30,
                         what="the state file's pause followed")
    result = pghactl(tmp_workdir, account, "resume")
    assert result.returncode == 0, result.stderr
    pgharness.wait_until(lambda: status(tmp_workdir)["failover"]["paused"] is False, timeout=30,
                         what="resumed")


def test_a_pgha_conf_edited_by_hand_is_rewritten_even_with_its_size_and_time_kept(cluster, tmp_workdir, account):
    """pghad reads a member's pgha.conf again only once the file changed (its inode, size,
    modification and change times): an edit in place to the same size, whose modification
    time is then set back, still changes its change time, and pghad rewrites it."""
    daemon, port = cluster
    path = os.path.join(tmp_workdir, "clusters", "test", "test-1", "data", "pgha.conf")
    with open(path, "rb") as conf:
        written = conf.read()
    trusted_unchanged(tmp_workdir, path)
    mark = daemon.log_mark()
    edit_in_place(path, b"# Written by pghad", b"# Written by PGHAD")

    def rewritten():
        with open(path, "rb") as conf:
            return conf.read() == written

    pgharness.wait_until(rewritten, timeout=30, what="pgha.conf of test-1 rewritten")
    daemon.wait_for_log(r"\[test-1\] configure", timeout=30, since=mark)


def test_pghad_stopping_never_stops_postgresql_and_a_new_one_adopts(cluster, pghad, tmp_workdir, account):
    daemon, port = cluster
    before = {f"test-{i}": postmaster_pid(tmp_workdir, f"test-{i}") for i in range(REPLICAS)}
    assert daemon.stop() == 0
    assert all(pgharness.process_alive(pid) for pid in before.values()), "SIGTERM to pghad stopped PostgreSQL"

    again = pghad(config_text(tmp_workdir, port), name="again", env={"PGHA_TEST_INITDB_NOSYNC": "1"})
    request_stop = again.stop
    mark = again.log_mark()
    # several loops later, the same postmasters run and nothing was started or cloned
    again.wait_for_log(r"loop iteration 10\b", timeout=30, since=mark)
    assert healthy(tmp_workdir)
    assert {name: postmaster_pid(tmp_workdir, name) for name in before} == before
    assert not any(action in again.log_text(mark) for action in ("] start:", "] clone", "] initialize:"))
    request_stop()


def test_a_pghad_frozen_while_its_probes_are_out_counts_nothing_against_the_members(cluster, pghad, tmp_workdir,
                                                                                   account):
    """pghad frozen right after sending its probes (its machine paused, a debugger, a
    starved CPU) for twice the failover timeout: the members answered meanwhile, and once
    it resumes it reads those answers rather than count its own absence as theirs. Before,
    every probe of that round failed ("no answer within 750 ms"), each member counted as
    not answering since before the freeze, and a primary whose standbys answered first
    could be failed over (seen in bench/scale)."""
    daemon, port = cluster
    before = {f"test-{i}": postmaster_pid(tmp_workdir, f"test-{i}") for i in range(REPLICAS)}
    assert daemon.stop() == 0
    again = pghad(config_text(tmp_workdir, port), name="again",
                  env={"PGHA_TEST_INITDB_NOSYNC": "1", "PGHA_TEST_STOP_BEFORE": "probe-answers"})
    request_stop = again.stop
    # its first probes: it may stop before the fixture hands it over, so its whole log counts
    again.wait_for_log(r"PGHA_TEST_STOP_BEFORE=probe-answers: stopping with SIGSTOP", timeout=30)
    pgharness.wait_until(lambda: pgharness.process_state(again.process.pid) == "T", timeout=10,
                         what="pghad stopped")
    time.sleep(3.0)  # the fault itself: frozen for twice failover.timeout_ms (1500 ms)
    os.kill(again.process.pid, signal.SIGCONT)
    again.wait_for_log(r"loop iteration 10\b", timeout=30)
    log = again.log_text()
    assert "probe failed" not in log, log
    assert "a query deadline passed" in log, log
    assert not any(action in log for action in ("] fence:", "] cut:", "] promote:", "] start:")), log
    assert healthy(tmp_workdir)
    assert {name: postmaster_pid(tmp_workdir, name) for name in before} == before
    request_stop()


def test_replicas_up_and_down_by_reload(cluster, tmp_workdir, account):
    daemon, port = cluster
    daemon.write_config(config_text(tmp_workdir, port, replicas=4))
    daemon.reload()
    pgharness.wait_until(lambda: healthy(tmp_workdir, replicas=4), timeout=120, what="test-3 added and listed")
    assert healthy(tmp_workdir, replicas=4)["synchronous_standby_names"] == 'ANY 1 ("test-1", "test-2", "test-3")'
    test_3 = postmaster_pid(tmp_workdir, "test-3")

    mark = daemon.log_mark()
    daemon.write_config(config_text(tmp_workdir, port, replicas=3))
    daemon.reload()
    pgharness.wait_until(lambda: not pgharness.process_alive(test_3), timeout=60, what="test-3 stopped")
    log = daemon.log_text(mark)
    unlisted = log.index("set-synchronous")
    stopped = log.index("[test-3] stop")
    assert unlisted < stopped, "test-3 left the synchronous list before it was stopped"
    assert os.path.isdir(os.path.join(tmp_workdir, "clusters", "test", "test-3", "data")), "its data is kept"
    pgharness.wait_until(lambda: (healthy(tmp_workdir) or {}).get("synchronous_standby_names") == 'ANY 1 ("test-1", "test-2")',
                         timeout=30, what="the list back to two names")
    pgharness.wait_until(lambda: "test_3" not in sql(tmp_workdir, account, port, "test-0",
                                                     "SELECT string_agg(slot_name, ',') FROM pg_replication_slots"),
                         timeout=30, what="test-3's slot dropped")


def test_synchronous_number_changes_within_a_loop(cluster, tmp_workdir, account):
    import re
    daemon, port = cluster
    mark = daemon.log_mark()
    daemon.write_config(config_text(tmp_workdir, port, number=2))
    daemon.reload()
    # the first iteration after the reload sets the new list
    daemon.wait_for_log(r"set-synchronous: .*ANY 2", timeout=30, since=mark)
    after_reload = daemon.log_text(mark).split("configuration reloaded", 1)[1]
    iterations_before_the_change = re.findall(r"loop iteration \d+", after_reload.split("set-synchronous", 1)[0])
    assert len(iterations_before_the_change) == 1, iterations_before_the_change
    pgharness.wait_until(lambda: (healthy(tmp_workdir) or {}).get("synchronous_standby_names") == 'ANY 2 ("test-1", "test-2")',
                         timeout=30, what="ANY 2")
    daemon.write_config(config_text(tmp_workdir, port, method="first", number=1))
    daemon.reload()
    pgharness.wait_until(
        lambda: sql(tmp_workdir, account, port, "test-0", "SHOW synchronous_standby_names") == 'FIRST 1 ("test-1", "test-2")',
        timeout=30, what="FIRST 1")


def test_a_removed_cluster_is_stopped_and_kept_until_purged(cluster, tmp_workdir, account):
    daemon, port = cluster
    pids = [postmaster_pid(tmp_workdir, f"test-{index}") for index in range(REPLICAS)]
    cluster_dir = os.path.join(tmp_workdir, "clusters", "test")
    pghactl = pgharness.install_program("pghactl", os.path.join(tmp_workdir, "bin"), account)

    def purge(*arguments):
        return pgharness.run_as_user([pghactl, "-s", os.path.join(tmp_workdir, "pghad.sock"), "purge", *arguments],
                                     account=account, capture_output=True, text=True, timeout=30)

    refused = purge("test", "--confirm", "test")
    assert refused.returncode == 1 and "is in the configuration" in refused.stderr

    text = config_text(tmp_workdir, port)
    daemon.write_config(text[:text.index("clusters =")] + "clusters = ( );\n")
    mark = daemon.log_mark()
    daemon.reload()
    pgharness.wait_until(lambda: not any(pgharness.process_alive(pid) for pid in pids), timeout=60,
                         what="every member of the removed cluster stopped")
    log = daemon.log_text(mark)
    assert log.index("stopping test-0:") < log.index("stopping test-1:"), "the primary stops first"
    assert all(os.path.isfile(os.path.join(cluster_dir, f"test-{index}", "data", "PG_VERSION"))
               for index in range(REPLICAS)), "the data is kept"

    without_flag = purge("test")
    assert without_flag.returncode == 64 and "name the cluster twice" in without_flag.stderr
    mismatched = purge("test", "--confirm", "tset")
    assert mismatched.returncode == 64
    assert os.path.isdir(cluster_dir), "a refused purge deletes nothing"

    # the same cluster added back reuses its data: the same database, no initdb
    daemon.write_config(text)
    mark = daemon.log_mark()
    daemon.reload()
    # until pghad has applied the reload its status names no cluster at all
    daemon.wait_for_log(r"configuration reloaded from .*: 1 cluster$", timeout=30, since=mark)
    pgharness.wait_until(lambda: healthy(tmp_workdir), timeout=120, what="the re-added cluster healthy")
    log = daemon.log_text(mark)
    assert "plan:   added back: its members start from the data kept for them" in log
    assert "] initialize:" not in log and "] clone" not in log

    daemon.write_config(text[:text.index("clusters =")] + "clusters = ( );\n")
    daemon.reload()
    pgharness.wait_until(lambda: not os.path.exists(os.path.join(cluster_dir, "test-0", "data", "postmaster.pid")),
                         timeout=60, what="the members stopped again")
    pgharness.wait_until(lambda: purge("test", "--confirm", "test").returncode == 0, timeout=60,
                         what="the purge to be accepted once nothing runs")
    assert not os.path.exists(cluster_dir)
    assert not os.path.exists(os.path.join(tmp_workdir, "state", "test"))


def restarts_in(log):
    """The members restarted, in the order pghad restarted them."""
    import re
    return re.findall(r"\[(test-\d)\] restart: ", log)


def settled_everywhere(workdir, account, port, name, value):
    """True once every member runs name = value with no restart pending; a member that
    is restarting does not answer, which is not settled yet."""
    try:
        return all(sql(workdir, account, port + index, f"test-{index}",
                       f"SELECT current_setting('{name}') || ':' || "
                       "(SELECT count(*) FROM pg_settings WHERE pending_restart)") == f"{value}:0"
                   for index in range(REPLICAS))
    except AssertionError:
        return False


def test_a_reload_level_parameter_is_applied_without_restart(cluster, tmp_workdir, account):
    daemon, port = cluster
    pids = [postmaster_pid(tmp_workdir, f"test-{index}") for index in range(REPLICAS)]
    daemon.write_config(config_text(tmp_workdir, port, parameters={"work_mem": '"6MB"'}))
    daemon.reload()
    pgharness.wait_until(lambda: settled_everywhere(tmp_workdir, account, port, "work_mem", "6MB"), timeout=60,
                         what="work_mem = 6MB everywhere")
    assert [postmaster_pid(tmp_workdir, f"test-{index}") for index in range(REPLICAS)] == pids


def test_restart_parameters_are_applied_in_the_safe_order(cluster, tmp_workdir, account):
    daemon, port = cluster
    # raising a hot-standby-sensitive setting: standbys first, the primary last
    mark = daemon.log_mark()
    daemon.write_config(config_text(tmp_workdir, port, parameters={"max_connections": 150}))
    daemon.reload()
    pgharness.wait_until(lambda: settled_everywhere(tmp_workdir, account, port, "max_connections", "150"),
                         timeout=180, what="max_connections = 150 everywhere, nothing pending")
    assert restarts_in(daemon.log_text(mark)) == ["test-1", "test-2", "test-0"]
    # the status of the iteration that restarted test-0 showed the cluster healthy still
    restarted = iteration_mark(tmp_workdir)
    pgharness.wait_until(lambda: healthy(tmp_workdir, after=restarted), timeout=60,
                         what="the cluster healthy after the restarts")

    # lowering it: the primary first, or its standbys could not run
    mark = daemon.log_mark()
    daemon.write_config(config_text(tmp_workdir, port, parameters={"max_connections": 90}))
    daemon.reload()
    pgharness.wait_until(lambda: settled_everywhere(tmp_workdir, account, port, "max_connections", "90"),
                         timeout=180, what="max_connections = 90 everywhere, nothing pending")
    restarts = restarts_in(daemon.log_text(mark))
    assert restarts[0] == "test-0" and restarts.count("test-0") == 1, restarts
    assert set(restarts[1:]) == {"test-1", "test-2"}, restarts
    restarted = iteration_mark(tmp_workdir)
    pgharness.wait_until(lambda: healthy(tmp_workdir, after=restarted), timeout=60,
                         what="the cluster healthy after the restarts")


def test_routes_lead_to_the_primary_and_to_a_standby(cluster, tmp_workdir, account):
    import psycopg2
    daemon, port = cluster
    pghactl = pgharness.install_program("pghactl", os.path.join(tmp_workdir, "bin"), account)
    uris = pgharness.run_as_user([pghactl, "-c", daemon.config_path, "uri", "test"], account=account,
                                 capture_output=True, text=True, timeout=30)
    assert uris.returncode == 0, uris.stderr
    read_write, read_only = uris.stdout.split()
    hosts = ",".join(f"127.0.0.1:{port + index}" for index in range(REPLICAS))
    assert read_write == f"postgresql://{hosts}/postgres?target_session_attrs=read-write&connect_timeout=3"
    assert read_only == f"postgresql://{hosts}/postgres?target_session_attrs=prefer-standby&connect_timeout=3"

    # clients authenticate on TCP: give the test's role a password to follow the routes with
    sql(tmp_workdir, account, port, "test-0", f"ALTER ROLE \"{account.name}\" PASSWORD 'route-test'")
    for uri, in_recovery in ((read_write, False), (read_only, True)):
        connection = psycopg2.connect(uri, user=account.name, password="route-test")
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_is_in_recovery()")
                assert cursor.fetchone()[0] is in_recovery, uri
        finally:
            connection.close()

    service_file = os.path.join(tmp_workdir, "state", "pg_service.conf")
    assert oct(os.stat(service_file).st_mode & 0o777) == "0o644"
    assert oct(os.stat(os.path.join(tmp_workdir, "state")).st_mode & 0o777) == "0o755"
    assert oct(os.stat(os.path.join(tmp_workdir, "state", "test")).st_mode & 0o777) == "0o700"
    with open(service_file) as services:
        text = services.read()
    assert "[test-rw]" in text and "[test-ro]" in text
    assert f"port={','.join(str(port + index) for index in range(REPLICAS))}" in text
    # libpq follows the service to the primary
    env = dict(os.environ, PGSERVICEFILE=service_file)
    psql = os.path.join(pgharness.postgres_bindir(), "psql")
    result = subprocess.run([psql, "-X", "-A", "-t", "-c", "SELECT pg_is_in_recovery()",
                             f"service=test-rw user={account.name} password=route-test"],
                            env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "f"

    # pghad compares the file with the configuration only when either may have changed:
    # one deleted, or edited by hand (even keeping its size), is written again
    def holds(expected):
        try:
            with open(service_file) as services:
                return services.read() == expected
        except FileNotFoundError:
            return False
    os.unlink(service_file)
    pgharness.wait_until(lambda: holds(text), timeout=30, what="the deleted service file written again")
    with open(service_file, "r+") as services:
        services.write("X")
    assert not holds(text)
    pgharness.wait_until(lambda: holds(text), timeout=30, what="the edited service file written again")


def test_plan_shows_what_a_reload_would_do_and_changes_nothing(cluster, tmp_workdir, account):
    daemon, port = cluster
    pids = [postmaster_pid(tmp_workdir, f"test-{index}") for index in range(REPLICAS)]
    edited = config_text(tmp_workdir, port, replicas=4, parameters={"shared_buffers": '"256MB"', "work_mem": '"8MB"'})
    edited = edited.replace("  replicas = 4;", "  replicas = 4;\n  failover = { timeout_ms = 10; };")
    error_line = edited.splitlines().index("  failover = { timeout_ms = 10; };") + 1
    path = os.path.join(tmp_workdir, "edited.conf")
    with open(path, "w") as edited_file:
        edited_file.write(edited)
    account.chown(path)
    pghactl = pgharness.install_program("pghactl", os.path.join(tmp_workdir, "bin"), account)
    plan = pgharness.run_as_user([pghactl, "-s", os.path.join(tmp_workdir, "pghad.sock"), "plan", path],
                                 account=account, capture_output=True, text=True, timeout=30)
    assert plan.returncode == 78, plan.stderr
    lines = plan.stdout.splitlines()
    assert "  add member test-3: cloned from the primary, listed as synchronous once it streams" in lines
    assert "  parameter shared_buffers = '256MB' (new): needs a restart: test-1, test-2 one at a time, then test-0" \
        in lines
    assert "  parameter work_mem = '8MB' (new): applied by reload" in lines
    assert f"  {path}:{error_line}: clusters.failover.timeout_ms must be between 500 and 600000 (got 10)" in lines

    # nothing changed: same postmasters, same settings, no new member, a few loops later
    mark = daemon.log_mark()
    daemon.wait_for_log(r"loop iteration \d+", timeout=10, since=mark)
    daemon.wait_for_log(r"loop iteration \d+", timeout=10, since=daemon.log_mark())
    assert [postmaster_pid(tmp_workdir, f"test-{index}") for index in range(REPLICAS)] == pids
    assert sql(tmp_workdir, account, port, "test-0", "SHOW shared_buffers") == "128MB"
    assert sql(tmp_workdir, account, port, "test-0", "SHOW work_mem") == "4MB"
    assert not os.path.exists(os.path.join(tmp_workdir, "clusters", "test", "test-3"))

    # the reload of a valid version logs the same plan before carrying it out
    daemon.write_config(config_text(tmp_workdir, port, parameters={"work_mem": '"8MB"'}))
    mark = daemon.log_mark()
    daemon.reload()
    daemon.wait_for_log(r"plan:   parameter work_mem = '8MB' \(new\): applied by reload", timeout=10, since=mark)


def plan_of(workdir, account, text):
    """pghactl plan's lines for a configuration text, asked of the running pghad."""
    path = os.path.join(workdir, "planned.conf")
    with open(path, "w") as planned:
        planned.write(text)
    account.chown(path)
    pghactl = pgharness.install_program("pghactl", os.path.join(workdir, "bin"), account)
    plan = pgharness.run_as_user([pghactl, "-s", os.path.join(workdir, "pghad.sock"), "plan", path],
                                 account=account, capture_output=True, text=True, timeout=30)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    return plan.stdout.splitlines()


def test_a_prefixed_parameter_reaches_every_member_by_reload(cluster, tmp_workdir, account):
    """auto_explain.log_min_duration, written as a group named for its prefix, reaches SHOW
    on every member after a reload, with no restart. session_preload_libraries loads
    auto_explain into every new session, so SHOW gives the value as the module read it
    (1000ms shows as 1s) rather than a placeholder's unchecked text, and the plan, whose
    query runs in such a session too, knows the module's own parameters."""
    daemon, port = cluster
    pids = [postmaster_pid(tmp_workdir, f"test-{index}") for index in range(REPLICAS)]
    wanted = config_text(tmp_workdir, port, parameters={"session_preload_libraries": '"auto_explain"',
                                                        "auto_explain": '{ log_min_duration = "1000ms"; }'})
    lines = plan_of(tmp_workdir, account, wanted)
    assert "  parameter session_preload_libraries = 'auto_explain' (new): applied by reload" in lines, lines
    assert ("  parameter auto_explain.log_min_duration = '1000ms' (new): applied by reload as a placeholder: no "
            "module loaded on test-0 defines auto_explain.*; the one that does checks the value when it is loaded "
            "(shared_preload_libraries, session_preload_libraries or LOAD)") in lines, lines

    daemon.write_config(wanted)
    daemon.reload()
    query = "SELECT current_setting('auto_explain.log_min_duration') || ' ' || source || ' ' || sourcefile " \
            "FROM pg_settings WHERE name = 'auto_explain.log_min_duration'"
    pgharness.wait_until(
        lambda: all((sql(tmp_workdir, account, port + index, f"test-{index}", query, check=False) or "")
                    .startswith("1s configuration file ") for index in range(REPLICAS)),
        timeout=60, what="auto_explain.log_min_duration = 1s on every member")
    for index in range(REPLICAS):
        member = f"test-{index}"
        assert sql(tmp_workdir, account, port + index, member, "SHOW auto_explain.log_min_duration") == "1s"
        assert sql(tmp_workdir, account, port + index, member, query).endswith(f"/{member}/data/pgha.conf")
    assert [postmaster_pid(tmp_workdir, f"test-{index}") for index in range(REPLICAS)] == pids

    # the module loaded in the plan's session: its parameter by its context, a misspelt one caught
    lines = plan_of(tmp_workdir, account, config_text(
        tmp_workdir, port, parameters={"session_preload_libraries": '"auto_explain"',
                                       "auto_explain": '{ log_min_duration = "2s"; log_min_durration = 5; }'}))
    assert "  parameter auto_explain.log_min_duration = '2s' (was '1000ms'): applied by reload" in lines, lines
    assert ("  parameter auto_explain.log_min_durration = '5' (new): the module loaded on test-0 under auto_explain "
            "defines no such parameter: PostgreSQL ignores it, with a warning in its log") in lines, lines


def test_alter_system_over_pgha_settings_is_reset(cluster, tmp_workdir, account):
    """postgresql.auto.conf is read after pgha's files: an ALTER SYSTEM of the synchronous
    list would silently make commits asynchronous. pghad resets it."""
    daemon, port = cluster
    mark = daemon.log_mark()
    # held still until the override runs: else the list "back" could be the one never left
    # (pg_reload_conf() only signals the postmaster) and the reset still to come
    with held_still(daemon):
        sql(tmp_workdir, account, port, "test-0", "ALTER SYSTEM SET synchronous_standby_names = ''")
        sql(tmp_workdir, account, port, "test-0", "SELECT pg_reload_conf()")
        pgharness.wait_until(lambda: sql(tmp_workdir, account, port, "test-0", "SHOW synchronous_standby_names") == "",
                             timeout=30, what="the override in effect")
    daemon.wait_for_log(r"\[test-0\] reset-overrides: ALTER SYSTEM overrides synchronous_standby_names", timeout=30,
                        since=mark)
    pgharness.wait_until(
        lambda: sql(tmp_workdir, account, port, "test-0", "SHOW synchronous_standby_names") == 'ANY 1 ("test-1", "test-2")',
        timeout=30, what="the synchronous list back")
    assert sql(tmp_workdir, account, port, "test-0",
               "SELECT count(*) FROM pg_file_settings WHERE sourcefile LIKE '%postgresql.auto.conf'") == "0"


def read_from(path, since=0):
    """The text of a log file from offset since ("" while it does not exist)."""
    try:
        with open(path, "rb") as log:
            log.seek(since)
            return log.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


@pytest.fixture
def cluster_logging_ddl(pghad, tmp_workdir, account):
    """cluster, with log_statement = 'ddl' on every member: each CREATE or ALTER ROLE
    pghad sends reaches the members' logs, whether it succeeds or fails."""
    port = pgharness.free_port_range(REPLICAS + 1)
    daemon = start_healthy(pghad, tmp_workdir, config_text(tmp_workdir, port, parameters={"log_statement": '"ddl"'}))
    yield daemon, port
    stop_everything(tmp_workdir, daemon)


def test_the_replication_password_never_reaches_a_log_and_a_broken_role_is_repaired(cluster_logging_ddl, tmp_workdir,
                                                                                     account):
    """pghad sends its replication role's password as a SCRAM verifier, never as text:
    PostgreSQL logs a failed statement with its error (and every DDL statement here), and
    a role that exists without REPLICATION or LOGIN made CREATE ROLE fail, and log the
    password, once per iteration."""
    import re
    import psycopg2
    daemon, port = cluster_logging_ddl
    with open(os.path.join(tmp_workdir, "state", "test", "replication.password")) as password_file:
        password = password_file.read().strip()
    assert password
    member_logs = [os.path.join(tmp_workdir, "clusters", "test", f"test-{index}", "postgresql.log")
                   for index in range(REPLICAS)]
    assert all(os.path.isfile(path) for path in member_logs)

    for broken in ("NOREPLICATION", "NOLOGIN"):
        mark = daemon.log_mark()
        primary_mark = os.path.getsize(member_logs[0])
        sql(tmp_workdir, account, port, "test-0", f"ALTER ROLE pgha_replicator {broken}")
        # at rest, the primary's replication role is read by its full probe, at most 30 s
        # after the last one (its light probes in between do not read it)
        attempt = daemon.wait_for_log(r"\[test-0\] (create|alter)-replication-role: .*", timeout=60, since=mark)
        # the statement as test-0 logged it, whether it succeeded (log_statement; pghad's
        # statements come by the extended protocol) or failed (the statement of its error)
        statement = re.compile(r"(?:execute <unnamed>|STATEMENT): +(?:CREATE|ALTER) ROLE pgha_replicator .*PASSWORD.*")
        logged = pgharness.wait_until(lambda: statement.search(read_from(member_logs[0], primary_mark)), timeout=30,
                                      what=f"test-0's log of pghad's repair of the role ({broken})")
        # a few more iterations, each of which would repeat an attempt that failed
        attempted = iteration_mark(tmp_workdir)
        pgharness.wait_until(lambda: iteration_mark(tmp_workdir) >= attempted + 3, timeout=30,
                             what="3 more loop iterations")
        for path in member_logs + [daemon.log]:
            # not "assert password not in ...": a failure would print the password
            holds_it = password in read_from(path)
            assert not holds_it, f"{path} holds the replication password ({broken})"
        assert "PASSWORD 'SCRAM-SHA-256$4096:" in logged.group(0), logged.group(0)

        # the role exists: altered, not created again, and only once
        assert attempt.group(1) == "alter", attempt.group(0)
        assert len(re.findall(r"\[test-0\] alter-replication-role: ", daemon.log_text(mark))) == 1
        assert sql(tmp_workdir, account, port, "test-0",
                   "SELECT rolreplication AND rolcanlogin AND rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid "
                   "WHERE rolname = 'pgha_replicator'") == "t"
        # and the verifier is the one of the password the standbys use
        connection = psycopg2.connect(host="127.0.0.1", port=port, dbname="postgres", user="pgha_replicator",
                                      password=password, connect_timeout=10)
        connection.close()
