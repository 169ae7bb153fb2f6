"""The harness itself: PostgresServer runs a private server as the unprivileged
account, and leaves nothing behind; failing tests get the programs' logs printed."""
import os
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap

import pytest

import pgharness



def test_server_runs_as_the_unprivileged_account(postgres, account):
    with open(os.path.join(postgres.datadir, "postmaster.pid")) as pidfile:
        assert int(pidfile.readline()) == postgres.pid, "the process started is the postmaster itself"
    if os.geteuid() == 0:
        assert account.uid != 0
        assert pgharness.proc_ids(postgres.pid, "Uid") == [account.uid] * 4
        assert pgharness.proc_ids(postgres.pid, "Gid") == [account.gid] * 4
        assert pgharness.proc_ids(postgres.pid, "Groups") == []
    else:
        assert pgharness.proc_ids(postgres.pid, "Uid") == [os.geteuid()] * 4
    assert os.stat(postgres.datadir).st_uid == account.uid
    assert postgres.execute("SELECT current_user")[0][0] == "postgres"


def test_server_accepts_queries_and_writes(postgres):
    version = postgres.execute("SELECT version()")[0][0]
    assert version.startswith("PostgreSQL ")
    postgres.execute("CREATE TABLE harness (id integer PRIMARY KEY, note text)")
    postgres.execute("INSERT INTO harness VALUES (%s, %s), (%s, %s)", (1, "one", 2, "two"))
    connection = postgres.connect()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT note FROM harness ORDER BY id")
            assert cursor.fetchall() == [("one",), ("two",)]
    finally:
        connection.close()
    assert postgres.execute("SELECT pg_is_in_recovery()") == [(False,)]


def test_server_uses_its_private_socket_directory_and_port(postgres):
    assert postgres.execute("SHOW port") == [(str(postgres.port),)]
    assert postgres.execute("SHOW unix_socket_directories") == [(postgres.socket_dir,)]
    assert postgres.execute("SHOW listen_addresses") == [("127.0.0.1",)]
    socket_file = os.path.join(postgres.socket_dir, f".s.PGSQL.{postgres.port}")
    assert stat.S_ISSOCK(os.stat(socket_file).st_mode)
    assert os.path.dirname(postgres.socket_dir) == postgres.dir
    connection = postgres.connect(tcp=True)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT host(inet_server_addr()), inet_server_port()")
            assert cursor.fetchone() == ("127.0.0.1", postgres.port)
    finally:
        connection.close()


def test_data_directory_is_under_the_temporary_directory(postgres):
    temporary = os.path.realpath(tempfile.gettempdir())
    assert os.path.realpath(postgres.dir).startswith(temporary + os.sep)
    data_directory = postgres.execute("SHOW data_directory")[0][0]
    assert os.path.realpath(data_directory) == os.path.realpath(postgres.datadir)
    assert os.path.dirname(postgres.datadir) == postgres.dir
    assert postgres.execute("SHOW fsync") == [("off",)]


def test_log_file_records_the_start(postgres):
    assert os.path.isfile(postgres.log)
    assert os.path.dirname(postgres.log) == postgres.dir
    assert "database system is ready to accept connections" in postgres.log_text()


def test_nested_server_is_independent_and_leaves_nothing_behind(postgres, account):
    with pgharness.PostgresServer(account=account, name="nested") as nested:
        assert nested.port != postgres.port
        assert nested.dir != postgres.dir
        nested.execute("CREATE TABLE only_here (id integer)")
        assert nested.execute("SELECT to_regclass('only_here') IS NOT NULL") == [(True,)]
        assert postgres.execute("SELECT to_regclass('only_here') IS NOT NULL") == [(False,)]
        postmaster = nested.pid
        helpers = pgharness.children_of(postmaster)
        assert helpers, "a running postmaster has helper processes (checkpointer, ...)"
        directory = nested.dir
    assert not nested.running
    assert not pgharness.process_alive(postmaster)
    assert [pid for pid in helpers if pgharness.process_alive(pid)] == []
    assert pgharness.group_members(postmaster) == []
    assert not os.path.exists(directory)
    assert postgres.execute("SELECT 1") == [(1,)], "the fixture's server is untouched"


def test_stop_restart_and_kill(postgres):
    postgres.execute("CREATE TABLE kept (id integer)")
    postgres.execute("INSERT INTO kept VALUES (42)")
    assert postgres.stop("fast") == 0
    assert not postgres.running
    postgres.start()
    postgres.wait_ready()
    assert postgres.execute("SELECT id FROM kept") == [(42,)], "the data survives a restart"
    postmaster = postgres.pid
    postgres.kill(signal.SIGKILL)
    assert postgres.wait() == -signal.SIGKILL
    assert not pgharness.process_alive(postmaster)
    postgres.close()
    assert pgharness.group_members(postmaster) == [], "close() leaves no orphaned backend"
    assert not os.path.exists(postgres.dir)


def test_failing_tests_get_the_logs_printed(tmp_workdir):
    """Runs a pytest session whose tests fail on purpose and checks its report shows
    the PostgreSQL and pghad logs of the failed tests."""
    with open(os.path.join(tmp_workdir, "test_fails.py"), "w") as test_file:
        test_file.write(textwrap.dedent("""\
            def test_with_postgres(postgres):
                postgres.execute("SELECT 1")
                assert False, "failing on purpose"

            def test_with_pghad(pghad):
                pghad('clusters = ( { name = "logged"; } );')
                assert False, "failing on purpose"

            def test_passing(postgres):
                assert postgres.execute("SELECT 1") == [(1,)]
            """))
    here = os.path.dirname(os.path.abspath(__file__))
    environment = dict(os.environ, PYTHONDONTWRITEBYTECODE="1",
                       PYTHONPATH=os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")])))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-q", "test_fails.py"],
        cwd=tmp_workdir, env=environment, capture_output=True, text=True, timeout=300)
    report = result.stdout + result.stderr
    assert result.returncode == 1, report
    assert "2 failed, 1 passed" in report
    assert "PostgreSQL log of postgres" in report
    assert "database system is ready to accept connections" in report
    assert "log of pghad" in report
    assert "configuration loaded from" in report
    assert report.count("----- PostgreSQL log of") == 1, "the passing test's log is not printed"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root switches to another account")
def test_work_directories_belong_to_the_account(tmp_workdir, account):
    status = os.stat(tmp_workdir)
    assert (status.st_uid, status.st_gid) == (account.uid, account.gid)
    assert stat.S_IMODE(status.st_mode) == 0o700
    result = pgharness.run_as_user(["touch", os.path.join(tmp_workdir, "written")], account=account)
    assert result.returncode == 0
    assert os.stat(os.path.join(tmp_workdir, "written")).st_uid == account.uid


def _segment_of(server):
    """(key, shmid) of the SysV segment server's postmaster.pid names."""
    named = pgharness.postmaster_shm(os.path.join(server.datadir, "postmaster.pid"))
    assert named is not None, "postmaster.pid names no shared memory segment"
    assert named[0] == server.pid
    return named[1], named[2]


def _assert_in_use(server, key, shmid):
    """server's segment is there, attached, not marked for removal (its key would be 0
    then), and the server answers."""
    segment = pgharness.shm_segments().get(shmid)
    assert segment is not None, f"the running server's segment {shmid} was removed"
    assert segment[0] & 0xFFFFFFFF == key & 0xFFFFFFFF, f"the running server's segment {shmid} was marked for removal"
    assert segment[1] > 0
    assert server.execute("SELECT 1") == [(1,)]


def test_a_killed_servers_shared_memory_goes_with_its_directory(postgres, account):
    """SIGKILL leaves the postmaster's SysV segment behind; removing the directory
    (every fixture's teardown) removes it too, once its orphaned children are gone,
    and leaves the segment of a server still running alone."""
    running_key, running_shmid = _segment_of(postgres)
    workdir = pgharness.make_workdir("pgha-test-", account)
    killed = pgharness.PostgresServer(base_dir=workdir, name="killed", account=account)
    try:
        killed.init()
        killed.start()
        killed.wait_ready()
        key, shmid = _segment_of(killed)
        assert pgharness.shm_segments()[shmid][0] & 0xFFFFFFFF == key & 0xFFFFFFFF
        killed.kill(signal.SIGKILL)  # the postmaster only: its children exit on their own
        killed.wait()
        assert shmid in pgharness.shm_segments(), "a killed postmaster leaves its segment"
        pgharness.remove_tree(workdir)
        assert not os.path.exists(workdir)
        assert shmid not in pgharness.shm_segments(), "the killed server's segment outlived its directory"
        _assert_in_use(postgres, running_key, running_shmid)
    finally:
        killed.close()
        pgharness.remove_tree(workdir)


def test_only_the_segment_a_dead_servers_postmaster_pid_names_is_removed(account):
    """Beside a running server, under the same directory: a dead server's segment is
    kept while its postmaster.pid names another key, removed once the key matches; the
    running server's segment (attached, its postmaster alive) is never touched."""
    workdir = pgharness.make_workdir("pgha-test-", account)
    servers = [pgharness.PostgresServer(base_dir=workdir, name=name, account=account) for name in ("killed", "running")]
    try:
        for server in servers:
            server.init()
            server.start()
            server.wait_ready()
        killed, running = servers
        key, shmid = _segment_of(killed)
        running_key, running_shmid = _segment_of(running)
        killed.kill(signal.SIGKILL)
        killed.wait()
        pgharness.kill_group(killed.pid)
        pgharness.wait_until(lambda: pgharness.shm_segments()[shmid][1] == 0, timeout=60,
                             what="the killed server's segment detached")
        pid_file = os.path.join(killed.datadir, "postmaster.pid")
        with open(pid_file) as lock:
            lines = lock.read().splitlines(keepends=True)
        forged = list(lines)
        forged[6] = f"{(key + 1) & 0xFFFFFFFF:9d} {shmid:9d}\n"
        with open(pid_file, "w") as lock:
            lock.writelines(forged)
        assert pgharness.release_shared_memory_under(workdir) == []
        assert pgharness.shm_segments()[shmid][1] == 0, "a segment of another key was removed"
        _assert_in_use(running, running_key, running_shmid)
        with open(pid_file, "w") as lock:
            lock.writelines(lines)
        assert pgharness.release_shared_memory_under(workdir) == [shmid]
        assert shmid not in pgharness.shm_segments()
        _assert_in_use(running, running_key, running_shmid)
    finally:
        for server in servers:
            server.close()
        pgharness.remove_tree(workdir)
