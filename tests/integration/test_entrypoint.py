"""pgha-entrypoint against real PostgreSQL: a bootstrap primary, a standby that waits for
its primary and clones it, a refused directory, a restart as is, and a former primary
rewound into a standby; the passwords never seen on a command line, in an
environment or in a log; and the self-fence of a primary whose standby's clock is off.

Each member is run the way the test node agent runs a pod: the built program as the
unprivileged test account, in a session of its own, with the pod's environment (the
volume, the secrets directory, the socket directory rewritten to local directories) and
its output (the container's log) in a file. Members listen on 127.0.0.1, each on a port
of its own.
"""
import os
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time

import psycopg2
import pytest

import pgharness
from fakeapi import FakeAPI

# Passwords with what a password file must escape (':' and '\'), a quote and a blank,
# plus a random part that nothing else could contain.
SUPERUSER_PASSWORD = "Sup3r:se\\cret 'pw' " + secrets.token_hex(8)
REPLICATION_PASSWORD = "Repl:i\\cat ion " + secrets.token_hex(8)
PASSWORDS = (SUPERUSER_PASSWORD, REPLICATION_PASSWORD)

EXIT_DATA = 65
EXIT_PERMISSION = 77
EXIT_CONFIG = 78
EXIT_POSTGRESQL = 79


def entrypoint_binary():
    """The built pgha-entrypoint: $PGHA_ENTRYPOINT under make check, else the build tree's."""
    path = os.environ.get("PGHA_ENTRYPOINT") or os.path.join(os.environ.get("top_builddir", "."), "src",
                                                              "pgha-entrypoint")
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is not built: run make, or set PGHA_ENTRYPOINT")
    return os.path.abspath(path)


class Member:
    """One member pod: its volume (PGDATA is a subdirectory of it, as in the contract), its
    secrets and socket directories, and the pgha-entrypoint process that becomes its
    postmaster."""

    def __init__(self, workdir, account, binary, name, port):
        self.account = account
        self.binary = binary
        self.name = name
        self.port = port
        self.dir = os.path.join(workdir, name)
        self.volume = os.path.join(self.dir, "volume")
        self.data = os.path.join(self.volume, "pgdata")
        self.secrets_dir = os.path.join(self.dir, "secrets")
        self.socket_dir = os.path.join(self.dir, "socket")
        self.log = os.path.join(self.dir, "container.log")
        for directory in (self.dir, self.volume, self.secrets_dir, self.socket_dir):
            os.mkdir(directory, 0o700)
        for key, password in (("superuser-password", SUPERUSER_PASSWORD),
                              ("replication-password", REPLICATION_PASSWORD)):
            path = os.path.join(self.secrets_dir, key)
            with open(path, "w") as secret:
                secret.write(password)
            os.chmod(path, 0o400)
        account.chown(self.dir)
        self.process = None

    def environment(self, role, **extra):
        """The pod's environment (contract: pgha-entrypoint), local directories instead of mounts."""
        environment = {
            "PGDATA": self.data, "PGHA_CLUSTER": "test", "PGHA_MEMBER": self.name, "PGHA_ROLE": role,
            "PGHA_PORT": str(self.port), "PGHA_LISTEN": "127.0.0.1", "PGHA_SECRETS_DIR": self.secrets_dir,
            "PGHA_SOCKET_DIR": self.socket_dir, "PGHA_TEST_INITDB_NOSYNC": "1",
        }
        environment.update({key: str(value) for key, value in extra.items()})
        return environment

    def start(self, role, **extra):
        """Starts pgha-entrypoint as the pod's command, its output appended to the log."""
        with open(self.log, "a") as log:
            self.account.chown(self.log)
            self.process = pgharness.popen_as_user([self.binary], account=self.account,
                                                   env=self.environment(role, **extra), stdout=log,
                                                   stderr=subprocess.STDOUT)
        return self.process

    def run(self, role, timeout=60, **extra):
        """Runs pgha-entrypoint to its end (for the cases where it does not become postgres)."""
        self.start(role, **extra)
        return self.process.wait(timeout)

    def log_text(self):
        try:
            with open(self.log, errors="replace") as log:
                return log.read()
        except FileNotFoundError:
            return ""

    def log_mark(self):
        """The log's length so far: pass it as since= to look only at what follows."""
        return len(self.log_text())

    def wait_for_log(self, pattern, timeout=30, since=0):
        """Waits until the log (from offset since) matches the regular expression; returns the match."""
        regex = re.compile(pattern, re.MULTILINE)
        return pgharness.wait_until(lambda: regex.search(self.log_text()[since:]), timeout=timeout,
                                    what=f"/{pattern}/ in the log of {self.name}")

    def connect(self, user="postgres", password=SUPERUSER_PASSWORD, **kwargs):
        """A connection over TCP, with a password: as clients and pghad connect."""
        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user=user, password=password,
                                      dbname="postgres", connect_timeout=5, **kwargs)
        connection.autocommit = True
        return connection

    def sql(self, statement, params=None):
        """The rows of one statement (None when it returns none)."""
        connection = self.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement, params)
                return cursor.fetchall() if cursor.description is not None else None
        finally:
            connection.close()

    def value(self, statement, params=None):
        return self.sql(statement, params)[0][0]

    def wait_ready(self, timeout=60):
        """Waits until the member accepts password logins over TCP; fails at once if the
        entrypoint (or the postgres it became) exited."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited with status {self.process.returncode}\n"
                                     + self.log_report())
            try:
                self.connect().close()
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{self.name} not ready after {timeout} s\n" + self.log_report())
            time.sleep(0.1)

    def postmaster_pid(self):
        with open(os.path.join(self.data, "postmaster.pid")) as pid_file:
            return int(pid_file.readline())

    def parent_of(self, pid):
        with open(f"/proc/{pid}/stat") as stat_file:
            return int(stat_file.read().rsplit(")", 1)[1].split()[1])

    def supervised(self):
        """Whether the postmaster runs as the child of the entrypoint, which stays the
        container's main process."""
        return self.postmaster_pid() != self.process.pid and self.parent_of(self.postmaster_pid()) == self.process.pid

    def stop(self, timeout=60):
        """Fast shutdown of the postmaster, as pg_ctl stop -m fast in the container would
        ask it (the container's own stop signals are an immediate shutdown); the
        entrypoint's status."""
        os.kill(self.postmaster_pid(), signal.SIGINT)
        return self.process.wait(timeout)

    def log_report(self):
        return pgharness.log_report(f"container log of {self.name}", self.log)

    def close(self):
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                self.stop(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        pgharness.kill_group(self.process.pid)


class ProcessWatcher(threading.Thread):
    """Reads, every few milliseconds, the command line and the environment of every
    process of the members' sessions (the entrypoint, the programs it runs, the postgres
    it becomes and its children), as anybody on the machine could, and remembers them."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sessions = set()
        self.seen = {}  # pid -> (command line, environment), the last read
        self.stopping = threading.Event()

    def watch(self, pid):
        self.sessions.add(pid)

    def run(self):
        while not self.stopping.is_set():
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry}/stat") as stat_file:
                        session = int(stat_file.read().rsplit(")", 1)[1].split()[3])
                    if session not in self.sessions:
                        continue
                    with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                        command = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
                    with open(f"/proc/{entry}/environ", "rb") as environ:
                        environment = environ.read().replace(b"\0", b"\n").decode(errors="replace")
                except (OSError, IndexError, ValueError):
                    continue
                if command:
                    self.seen.setdefault(int(entry), []).append((command, environment))
            time.sleep(0.005)

    def commands(self):
        return [command for reads in self.seen.values() for command, _ in reads]

    def stop(self):
        self.stopping.set()
        self.join()


class Cluster:
    """The members of one test (member(name) -> Member, each on a free port), started
    under the eye of a ProcessWatcher."""

    def __init__(self, workdir, account, binary):
        self.workdir = workdir
        self.account = account
        self.binary = binary
        self.watcher = ProcessWatcher()
        self.watcher.start()
        self.members = []

    def member(self, name):
        member = Member(self.workdir, self.account, self.binary, name, pgharness.free_port())
        self.members.append(member)
        return member

    def start(self, member, role, **extra):
        process = member.start(role, **extra)
        self.watcher.watch(process.pid)
        return process

    def run(self, member, role, timeout=60, **extra):
        """Runs the entrypoint to its end (when it does not become postgres); its status."""
        self.start(member, role, **extra)
        return member.process.wait(timeout)

    def check_secrets(self):
        """(f): no password in any command line or environment seen, nor in any log."""
        for pid, reads in self.watcher.seen.items():
            for command, environment in reads:
                for password in PASSWORDS:
                    assert password not in command, f"a password in the command line of {pid}: {command}"
                    assert password not in environment, f"a password in the environment of {pid}"
        for member in self.members:
            text = member.log_text()
            for password in PASSWORDS:
                # nor its random part alone, however it was quoted or escaped
                assert password not in text and password[-16:] not in text, \
                    f"a password in the log of {member.name}"

    def commands(self):
        return self.watcher.commands()

    def close(self, failed):
        self.watcher.stop()
        for member in self.members:
            if failed:
                print(member.log_report(), file=sys.stderr)
            member.close()


@pytest.fixture
def cluster(request, tmp_workdir, account):
    """A Cluster in tmp_workdir; every member is stopped afterwards, its log printed if
    the test failed."""
    members = Cluster(tmp_workdir, account, install_binary(tmp_workdir, account))
    yield members
    members.close(any(getattr(getattr(request.node, f"rep_{when}", None), "failed", False)
                      for when in ("setup", "call")))


def install_binary(workdir, account):
    """A copy of the built program the test account can run (the build tree may be unreadable)."""
    directory = os.path.join(workdir, "bin")
    os.makedirs(directory, exist_ok=True)
    target = os.path.join(directory, "pgha-entrypoint")
    shutil.copy2(entrypoint_binary(), target)
    account.chown(directory)
    return target


def create_replication(primary, *slots):
    """What pghad does on a new primary: the replication role with its password (sent as
    its SCRAM verifier, as pghad sends it), and a slot per standby."""
    connection = primary.connect()
    try:
        verifier = psycopg2.extensions.encrypt_password(REPLICATION_PASSWORD, "pgha_replicator", connection,
                                                        "scram-sha-256")
    finally:
        connection.close()
    primary.sql("CREATE ROLE pgha_replicator WITH LOGIN REPLICATION PASSWORD %s", (verifier,))
    for slot in slots:
        primary.sql("SELECT pg_create_physical_replication_slot(%s)", (slot,))


def wait_streaming(primary, standby_name, slot=None, timeout=60, replacing=None):
    """Waits until primary sends WAL to standby_name (its application_name), through slot if
    given; returns the pid of the WAL sender. replacing: the pid of a WAL sender that served
    the standby before it restarted, which does not count (the primary may not have seen
    the old connection end yet)."""
    def streaming():
        rows = primary.sql("SELECT pid, state FROM pg_stat_replication WHERE application_name = %s",
                           (standby_name,))
        rows = [row for row in rows or [] if row[0] != replacing and row[1] == "streaming"]
        if not rows:
            return None
        if slot and not primary.value("SELECT active_pid = %s FROM pg_replication_slots WHERE slot_name = %s",
                                      (rows[0][0], slot)):
            return None
        return rows[0][0]
    return pgharness.wait_until(streaming, timeout=timeout, interval=0.2, what=f"{standby_name} to stream")


def bootstrap(cluster, name="test-0", empty_directory=False):
    """A new cluster's first member, ready; PGDATA made empty first if asked (else missing)."""
    primary = cluster.member(name)
    if empty_directory:
        os.mkdir(primary.data, 0o755)
        primary.account.chown(primary.data)
    cluster.start(primary, "primary", PGHA_BOOTSTRAP=1)
    primary.wait_ready()
    return primary


def snapshot(path):
    """Every name under path with its type, mode, size, modification time and content."""
    found = {}
    for root, directories, files in os.walk(path):
        for name in directories + files:
            full = os.path.join(root, name)
            status = os.lstat(full)
            content = None
            if stat.S_ISREG(status.st_mode):
                with open(full, "rb") as file:
                    content = file.read()
            found[os.path.relpath(full, path)] = (status.st_mode, status.st_size, status.st_mtime_ns, content)
    return found


# ---- (a) bootstrap ----

def test_bootstrap_initializes_and_becomes_postgres(cluster):
    # an empty PGDATA counts as none: the volume's directory may be made in advance
    primary = bootstrap(cluster, empty_directory=True)
    log = primary.log_text()
    assert "is empty and this member bootstraps the cluster (PGHA_ROLE=primary, PGHA_BOOTSTRAP=1): initdb" in log
    assert stat.S_IMODE(os.stat(primary.data).st_mode) == 0o700
    assert "initdb finished" in log

    # the entrypoint runs the postmaster as its child, no shell or wrapper between
    assert primary.supervised()
    with open(f"/proc/{primary.postmaster_pid()}/cmdline", "rb") as cmdline:
        assert cmdline.read().split(b"\0")[1:3] == [b"-D", primary.data.encode()]

    settings = dict(primary.sql("SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", ([
        "listen_addresses", "port", "unix_socket_directories", "cluster_name", "hot_standby", "wal_level",
        "wal_log_hints", "max_wal_senders", "max_replication_slots", "wal_keep_size", "data_checksums",
        "password_encryption"],)))
    assert settings["listen_addresses"] == "127.0.0.1"
    assert settings["port"] == str(primary.port)
    assert settings["unix_socket_directories"] == primary.socket_dir
    assert settings["cluster_name"] == "test-0"
    assert settings["hot_standby"] == "on"
    assert settings["wal_level"] == "replica"
    assert settings["wal_log_hints"] == "on"
    assert int(settings["max_wal_senders"]) >= 10 and int(settings["max_replication_slots"]) >= 10
    assert int(settings["wal_keep_size"]) > 0
    assert settings["data_checksums"] == "on"
    assert settings["password_encryption"] == "scram-sha-256"
    assert primary.value("SELECT rolpassword LIKE 'SCRAM-SHA-256$%%' FROM pg_authid WHERE rolname = 'postgres'")

    rules = primary.sql("SELECT type, database, user_name, address, auth_method, error FROM pg_hba_file_rules")
    assert ("local", ["all"], ["all"], None, "peer", None) in rules
    assert ("host", ["all"], ["all"], "all", "scram-sha-256", None) in rules
    assert ("host", ["replication"], ["all"], "all", "scram-sha-256", None) in rules
    assert all(rule[4] != "trust" for rule in rules)
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        primary.connect(password="wrong")

    # the password file: beside PGDATA, not in it, readable by its owner alone
    passfile = primary.data + ".pgpass"
    assert stat.S_IMODE(os.stat(passfile).st_mode) == 0o600
    assert not os.path.exists(os.path.join(primary.data, ".pgpass"))
    # no temporary directory is left beside PGDATA
    assert sorted(os.listdir(primary.volume)) == ["pgdata", "pgdata.pgpass"]
    cluster.check_secrets()
    assert any("initdb" in command for command in cluster.commands()), "initdb was not seen running"


def test_environment_mistakes_are_reported_and_nothing_is_done(cluster):
    member = cluster.member("test-0")
    status = cluster.run(member, "primary", PGHA_MEMBER="", PGDATA="relative/pgdata", PGHA_PORT="99999")
    log = member.log_text()
    assert status == EXIT_CONFIG, log
    assert "PGHA_MEMBER is not set" in log
    assert "PGDATA=relative/pgdata is not an absolute path" in log
    assert "PGHA_PORT=99999 is not a whole number from 1 to 65535" in log
    assert os.listdir(member.volume) == []

    status = cluster.run(member, "standby")
    assert status == EXIT_CONFIG
    assert "PGHA_ROLE=standby needs PGHA_PRIMARY_HOST" in member.log_text()

    os.unlink(os.path.join(member.secrets_dir, "replication-password"))
    status = cluster.run(member, "primary", PGHA_BOOTSTRAP=1)
    assert status == EXIT_CONFIG
    assert re.search(r"cannot read the secret replication-password in .* \(No such file", member.log_text())
    assert os.listdir(member.volume) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can try to run it as root")
def test_refuses_to_run_as_root(cluster, tmp_workdir):
    member = cluster.member("test-0")
    result = subprocess.run([install_binary(tmp_workdir, pgharness.default_account())],
                            env=pgharness.child_environment(member.environment("primary", PGHA_BOOTSTRAP=1)),
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert result.returncode == EXIT_PERMISSION
    assert "must not run as root" in result.stderr
    assert os.listdir(member.volume) == []


# ---- (b) clone ----

def test_standby_waits_for_its_primary_then_clones_it(cluster):
    primary = cluster.member("test-0")
    standby = cluster.member("test-1")
    # the standby first: no primary anywhere yet
    cluster.start(standby, "standby", PGHA_PRIMARY_HOST="127.0.0.1", PGHA_PRIMARY_PORT=primary.port,
                  PGHA_SLOT="test_1", PGHA_WAIT_TIMEOUT=120)
    standby.wait_for_log(r"waiting for the primary \(attempt 3,")
    assert not os.path.exists(standby.data)

    cluster.start(primary, "primary", PGHA_BOOTSTRAP=1)
    primary.wait_ready()
    create_replication(primary, "test_1")
    primary.sql("CREATE TABLE t (v text)")
    primary.sql("INSERT INTO t VALUES ('before the copy')")

    standby.wait_ready(timeout=90)
    wait_streaming(primary, "test-1", slot="test_1")
    primary.sql("INSERT INTO t VALUES ('after the copy')")
    pgharness.wait_until(lambda: standby.value("SELECT count(*) FROM t") == 2, timeout=30,
                         what="the standby to replay the second row")

    log = standby.log_text()
    # a bounded back-off, logged: 0.5 s doubling to at most 5 s
    delays = [float(delay) for delay in re.findall(r"next attempt in ([0-9.]+) s", log)]
    assert delays[:3] == [0.5, 1.0, 2.0], delays
    assert max(delays) <= 5.0
    assert "the primary is 127.0.0.1:" in log and "pg_basebackup finished" in log
    assert standby.supervised()
    assert standby.value("SELECT pg_is_in_recovery()")
    assert standby.value("SELECT status FROM pg_stat_wal_receiver") == "streaming"
    assert standby.value("SHOW primary_slot_name") == "test_1"
    conninfo = standby.value("SHOW primary_conninfo")
    assert "application_name='test-1'" in conninfo and "user='pgha_replicator'" in conninfo
    assert os.path.exists(os.path.join(standby.data, "standby.signal"))
    assert sorted(os.listdir(standby.volume)) == ["pgdata", "pgdata.pgpass"]
    cluster.check_secrets()
    assert any("pg_basebackup" in command for command in cluster.commands()), \
        "pg_basebackup was not seen running"


def test_waiting_is_bounded_and_stoppable(cluster):
    standby = cluster.member("test-1")
    nowhere = pgharness.free_port()
    started = time.monotonic()
    status = cluster.run(standby, "standby", PGHA_PRIMARY_HOST="127.0.0.1", PGHA_PRIMARY_PORT=nowhere,
                         PGHA_WAIT_TIMEOUT=3)
    assert status == EXIT_POSTGRESQL, standby.log_text()
    assert time.monotonic() - started < 15
    assert "no primary ready after 3 s (PGHA_WAIT_TIMEOUT)" in standby.log_text()
    assert os.listdir(standby.volume) == ["pgdata.pgpass"]

    # a pod deleted while it waits stops at once, not at the end of the wait
    mark = standby.log_mark()
    cluster.start(standby, "standby", PGHA_PRIMARY_HOST="127.0.0.1", PGHA_PRIMARY_PORT=nowhere)
    standby.wait_for_log(r"waiting for the primary \(attempt 2,", since=mark)
    standby.process.send_signal(signal.SIGTERM)
    assert standby.process.wait(10) == 128 + signal.SIGTERM
    assert "received SIGTERM before PostgreSQL started" in standby.log_text()


# ---- (c) refusal ----

def test_refuses_a_directory_that_is_not_postgresql(cluster):
    member = cluster.member("test-0")
    os.mkdir(member.data, 0o700)
    with open(os.path.join(member.data, "notes.txt"), "w") as notes:
        notes.write("somebody's data\n")
    os.mkdir(os.path.join(member.data, "photos"))
    with open(os.path.join(member.data, ".hidden"), "w") as hidden:
        hidden.write("x")
    member.account.chown(member.data)
    before = snapshot(member.volume)

    status = cluster.run(member, "primary", PGHA_BOOTSTRAP=1)
    assert status == EXIT_DATA
    assert (f"PGDATA {member.data} holds 3 entries but no PG_VERSION: not a PostgreSQL data directory; "
            "pgha-entrypoint does not touch it") in member.log_text()
    assert snapshot(member.volume) == before

    status = cluster.run(member, "standby", PGHA_PRIMARY_HOST="127.0.0.1")
    assert status == EXIT_DATA
    assert snapshot(member.volume) == before

    # PG_VERSION alone (an interrupted copy, say) is not enough either
    with open(os.path.join(member.data, "PG_VERSION"), "w") as version:
        version.write("15\n")
    member.account.chown(member.data)
    before = snapshot(member.volume)
    assert cluster.run(member, "primary", PGHA_BOOTSTRAP=1) == EXIT_DATA
    assert "holds PG_VERSION but no global/pg_control" in member.log_text()
    assert snapshot(member.volume) == before


# ---- (d) restart as is ----

def test_restarts_as_is(cluster):
    primary = bootstrap(cluster)
    standby = cluster.member("test-1")
    create_replication(primary, "test_1")
    cluster.start(standby, "standby", PGHA_PRIMARY_HOST="127.0.0.1", PGHA_PRIMARY_PORT=primary.port,
                  PGHA_SLOT="test_1")
    standby.wait_ready()
    sender = wait_streaming(primary, "test-1", slot="test_1")
    primary.sql("CREATE TABLE t AS SELECT 1 AS v")
    pgharness.wait_until(lambda: standby.value("SELECT count(*) FROM pg_class WHERE relname = 't'") == 1,
                         timeout=30, what="the table on the standby")
    identity = standby.value("SELECT system_identifier FROM pg_control_system()")

    assert standby.stop() == 0
    mark = standby.log_mark()
    # the pod again, the programs named by PGHA_BINDIR this time
    cluster.start(standby, "standby", PGHA_PRIMARY_HOST="127.0.0.1", PGHA_PRIMARY_PORT=primary.port,
                  PGHA_SLOT="test_1", PGHA_BINDIR=pgharness.postgres_bindir())
    standby.wait_ready()
    wait_streaming(primary, "test-1", slot="test_1", replacing=sender)
    log = standby.log_text()[mark:]
    assert "holds a standby's data directory (standby.signal): starting it as it is" in log
    assert "pg_basebackup" not in log and "pg_rewind" not in log
    assert standby.value("SELECT system_identifier FROM pg_control_system()") == identity
    assert standby.value("SELECT count(*) FROM t") == 1
    assert standby.supervised()

    # the primary as well: its data kept, never initialized again although PGHA_BOOTSTRAP=1
    assert primary.stop() == 0
    mark = primary.log_mark()
    cluster.start(primary, "primary", PGHA_BOOTSTRAP=1)
    primary.wait_ready()
    assert "starting it as it is" in primary.log_text()[mark:]
    assert "initdb" not in primary.log_text()[mark:]
    assert primary.value("SELECT count(*) FROM t") == 1
    cluster.check_secrets()


# ---- (e) rejoin ----

@pytest.mark.parametrize("end", ["shut down", "killed"])
def test_former_primary_is_rewound_and_follows_the_new_one(cluster, end):
    """The old primary shut down cleanly, or killed (then pg_rewind recovers it first)."""
    old = bootstrap(cluster, "test-0")
    new = cluster.member("test-1")
    create_replication(old, "test_1")
    old.sql("CREATE TABLE t (v text)")
    old.sql("INSERT INTO t VALUES ('common')")
    cluster.start(new, "standby", PGHA_PRIMARY_HOST="127.0.0.1", PGHA_PRIMARY_PORT=old.port, PGHA_SLOT="test_1")
    new.wait_ready()
    wait_streaming(old, "test-1", slot="test_1")
    pgharness.wait_until(lambda: new.value("SELECT count(*) FROM t") == 1, timeout=30, what="the common row")

    # a failover the old primary did not hear of: it goes on taking writes that the new
    # primary never gets, so the two histories diverge
    assert new.value("SELECT pg_promote(true, 60)")
    old.sql("INSERT INTO t SELECT 'old primary only' FROM generate_series(1, 1000)")
    if end == "killed":
        pgharness.kill_group(old.process.pid)
        old.process.wait(10)
    else:
        old.sql("CHECKPOINT")
        assert old.stop() == 0
    new.sql("INSERT INTO t VALUES ('new primary')")
    new.sql("SELECT pg_create_physical_replication_slot('test_0')")

    mark = old.log_mark()
    cluster.start(old, "standby", PGHA_PRIMARY_HOST="127.0.0.1", PGHA_PRIMARY_PORT=new.port, PGHA_SLOT="test_0")
    old.wait_ready(timeout=90)
    wait_streaming(new, "test-0", slot="test_0")
    log = old.log_text()[mark:]
    assert "former primary (no standby.signal) and PGHA_ROLE=standby: pg_rewind" in log
    assert "pg_rewind: servers diverged at WAL location" in log and "pg_rewind finished" in log
    if end == "killed":
        assert "for target server to complete crash recovery" in log
    assert old.value("SELECT pg_is_in_recovery()")
    new.sql("INSERT INTO t VALUES ('after the rejoin')")
    pgharness.wait_until(
        lambda: sorted(row[0] for row in old.sql("SELECT DISTINCT v FROM t")) == [
            "after the rejoin", "common", "new primary"],
        timeout=30, what="the rewound member to hold the new primary's rows and not its own")
    assert old.supervised()
    assert old.value("SELECT received_tli FROM pg_stat_wal_receiver") == 2
    cluster.check_secrets()
    commands = cluster.commands()
    assert any("initdb" in command for command in commands)
    assert any("pg_basebackup" in command for command in commands)


@pytest.mark.parametrize("end", ["shut down", "deleted"])
def test_diverged_standby_is_rewound_when_asked(cluster, end):
    """A standby whose WAL went past the point where the new primary's timeline forked off
    (test-2 received what test-1, promoted later, never did) keeps its standby.signal;
    with PGHA_REWIND=1 it is rewound all the same, and follows the new primary. Stopped
    cleanly, or as its pod's deletion stops it (SIGTERM: an immediate shutdown), after
    which pg_rewind first recovers it in single-user mode, where standby mode is refused."""
    old = bootstrap(cluster, "test-0")
    behind, ahead = cluster.member("test-1"), cluster.member("test-2")
    create_replication(old, "test_1", "test_2")
    old.sql("CREATE TABLE t (v text)")
    old.sql("INSERT INTO t VALUES ('common')")
    for member, slot in ((behind, "test_1"), (ahead, "test_2")):
        cluster.start(member, "standby", PGHA_PRIMARY_HOST="127.0.0.1", PGHA_PRIMARY_PORT=old.port, PGHA_SLOT=slot)
        member.wait_ready()
        wait_streaming(old, member.name, slot=slot)
        pgharness.wait_until(lambda: member.value("SELECT count(*) FROM t") == 1, timeout=30,
                             what=f"the common row on {member.name}")

    # test-1 stops; test-2 goes on receiving what it never will
    assert behind.stop() == 0
    old.sql("INSERT INTO t SELECT 'old timeline only' FROM generate_series(1, 1000)")
    end = old.value("SELECT pg_current_wal_lsn()::text")
    pgharness.wait_until(lambda: ahead.value("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (end,)),
                         timeout=30, what="test-2 to replay the old primary's last rows")
    if end == "deleted":
        ahead.process.send_signal(signal.SIGTERM)
        assert ahead.process.wait(60) == 0
    else:
        assert ahead.stop() == 0
    assert old.stop() == 0

    # test-1, behind, becomes the primary: its new timeline forks off before test-2's WAL ends
    cluster.start(behind, "primary")
    behind.wait_ready()
    assert behind.value("SELECT pg_promote(true, 60)")
    behind.sql("INSERT INTO t VALUES ('new primary')")
    behind.sql("CHECKPOINT")  # pg_rewind reads the primary's timeline in its pg_control
    behind.sql("SELECT pg_create_physical_replication_slot('test_2')")

    mark = ahead.log_mark()
    cluster.start(ahead, "standby", PGHA_PRIMARY_HOST="127.0.0.1", PGHA_PRIMARY_PORT=behind.port,
                  PGHA_SLOT="test_2", PGHA_REWIND=1)
    ahead.wait_ready(timeout=90)
    wait_streaming(behind, "test-2", slot="test_2")
    log = ahead.log_text()[mark:]
    assert "standby's data directory (standby.signal) whose WAL pghad found diverged" in log
    assert "pg_rewind: servers diverged at WAL location" in log and "pg_rewind finished" in log
    assert ahead.value("SELECT pg_is_in_recovery()")
    behind.sql("INSERT INTO t VALUES ('after the rewind')")
    pgharness.wait_until(
        lambda: sorted(row[0] for row in ahead.sql("SELECT DISTINCT v FROM t")) == [
            "after the rewind", "common", "new primary"],
        timeout=30, what="the rewound standby to hold the new primary's rows and not the old timeline's")
    assert ahead.value("SELECT received_tli FROM pg_stat_wal_receiver") == 2
    assert ahead.supervised()
    with open(ahead.data + ".rejoin") as account:
        assert account.read() == f"rewound: rewound with pg_rewind from the primary at 127.0.0.1:{behind.port}\n"
    assert not [name for name in os.listdir(ahead.volume) if ".unusable." in name]
    cluster.check_secrets()


def test_a_standby_pg_rewind_refuses_is_moved_aside_and_copied_again(cluster):
    """pg_rewind fails (here: the volume holds a standby of another cluster): the directory
    is kept aside in the volume, never deleted, the primary is copied again, and the
    account pghad reads says so."""
    primary = bootstrap(cluster, "test-0")
    create_replication(primary, "test_1")
    primary.sql("CREATE TABLE t AS SELECT 'the primary''s' AS v")
    stranger = bootstrap(cluster, "other")
    stranger.sql("CREATE TABLE mine AS SELECT 'kept' AS v")
    stranger_identity = stranger.value("SELECT system_identifier FROM pg_control_system()")
    assert stranger.stop() == 0
    standby = cluster.member("test-1")
    os.rename(stranger.data, standby.data)
    signal_file = os.path.join(standby.data, "standby.signal")
    open(signal_file, "w").close()
    standby.account.chown(signal_file)
    # an account left by an earlier rejoin does not pass for this one's
    with open(standby.data + ".rejoin", "w") as stale:
        stale.write("rewound: long ago\n")
    standby.account.chown(standby.data + ".rejoin")

    cluster.start(standby, "standby", PGHA_PRIMARY_HOST="127.0.0.1", PGHA_PRIMARY_PORT=primary.port,
                  PGHA_SLOT="test_1", PGHA_REWIND=1)
    standby.wait_ready(timeout=90)
    wait_streaming(primary, "test-1", slot="test_1")
    log = standby.log_text()
    assert "source and target clusters are from different systems" in log
    kept = [name for name in os.listdir(standby.volume) if name.startswith("pgdata.unusable.")]
    assert len(kept) == 1, os.listdir(standby.volume)
    kept_path = os.path.join(standby.volume, kept[0])
    assert f"pg_rewind failed: PGDATA {standby.data} is kept as {kept_path}" in log
    assert "pg_basebackup finished" in log
    # what was there is all there, untouched by the copy
    assert os.path.exists(os.path.join(kept_path, "PG_VERSION"))
    assert os.path.exists(os.path.join(kept_path, "standby.signal"))
    assert standby.value("SELECT v FROM t") == "the primary's"
    assert standby.value("SELECT system_identifier FROM pg_control_system()") == \
        primary.value("SELECT system_identifier FROM pg_control_system()") != stranger_identity
    assert standby.value("SELECT pg_is_in_recovery()")
    with open(standby.data + ".rejoin") as account:
        text = account.read()
    assert text.startswith(f"moved-aside: its data directory is kept as {kept_path} in its volume and it was copied "
                           f"again from the primary at 127.0.0.1:{primary.port}, since pg_rewind exited with "
                           f"status 1: "), text
    cluster.check_secrets()


# ---- (f) the supervisor: the container's stop signal stops PostgreSQL at once ----

def live(pid):
    """Whether pid is a process that has not ended (a zombie has)."""
    try:
        with open(f"/proc/{pid}/stat") as stat_file:
            return stat_file.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_sigterm_is_an_immediate_shutdown_even_with_sessions_writing(cluster):
    """kubelet's SIGTERM at a pod's deletion (a fence) reaches the entrypoint, which stays
    the container's main process: PostgreSQL gets an immediate shutdown, not the smart
    one postgres itself makes of SIGTERM, which would wait for every session while they
    go on committing. Nothing of it is left running once the entrypoint has exited."""
    primary = bootstrap(cluster)
    assert primary.supervised()
    primary.sql("CREATE TABLE t (id bigint PRIMARY KEY)")

    # the other signals reach postgres as they are: SIGHUP reloads
    mark = primary.log_mark()
    primary.process.send_signal(signal.SIGHUP)
    primary.wait_for_log(r"received SIGHUP, reloading configuration files", since=mark)

    # an open transaction that has written, an idle session (a smart shutdown waits for
    # both), and a writer committing one row at a time, recording what was acknowledged
    open_transaction = primary.connect()
    open_transaction.autocommit = False
    open_transaction.cursor().execute("INSERT INTO t VALUES (-1)")
    idle = primary.connect()
    acknowledged = []
    writer_error = []
    writing = threading.Event()

    def write():
        connection = primary.connect()
        try:
            with connection.cursor() as cursor:
                for next_id in range(1, 10 ** 9):
                    cursor.execute("INSERT INTO t VALUES (%s)", (next_id,))
                    acknowledged.append(next_id)
                    if next_id == 50:
                        writing.set()
        except psycopg2.Error as error:
            writer_error.append(error)
        finally:
            writing.set()
            try:
                connection.close()
            except psycopg2.Error:
                pass

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    assert writing.wait(60) and not writer_error, writer_error
    postmaster = primary.postmaster_pid()
    backends = [row[0] for row in primary.sql("SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid()")]
    assert len(backends) >= 3  # the three sessions, and PostgreSQL's own processes

    mark = primary.log_mark()
    sent = time.monotonic()
    primary.process.send_signal(signal.SIGTERM)
    status = primary.process.wait(60)
    elapsed = time.monotonic() - sent
    writer.join(60)
    log = primary.log_text()[mark:]
    print(f"SIGTERM to the entrypoint -> entrypoint exited: {elapsed:.3f} s", file=sys.stderr)
    assert f"received SIGTERM: immediate shutdown of PostgreSQL (SIGQUIT to pid {postmaster})" in log, log
    assert "received immediate shutdown request" in log, log
    assert "PostgreSQL stopped" in log and "after SIGTERM" in log, log
    assert status == 0, log  # the postmaster's own status after an immediate shutdown
    assert writer_error, "the writer went on committing"
    assert not live(postmaster) and not [pid for pid in backends if live(pid)]
    with pytest.raises(psycopg2.Error):
        open_transaction.commit()
    for connection in (open_transaction, idle):
        try:
            connection.close()
        except psycopg2.Error:
            pass

    # it was not shut down cleanly; what was acknowledged is there, the open transaction is not
    mark = primary.log_mark()
    cluster.start(primary, "primary")
    primary.wait_ready()
    assert "not properly shut down; automatic recovery in progress" in primary.log_text()[mark:]
    rows = {row[0] for row in primary.sql("SELECT id FROM t")}
    assert -1 not in rows
    assert set(acknowledged) <= rows
    # at most the commit in flight when the signal came is there without its acknowledgement
    assert len(rows - set(acknowledged)) <= 1


def test_postmaster_killed_ends_the_container_and_nothing_is_left(cluster):
    """The postmaster killed (the OOM killer, say): the entrypoint ends with its status
    (128 + 9, as kubelet reports it), and none of its processes outlives it."""
    primary = bootstrap(cluster)
    session = primary.connect()
    postmaster = primary.postmaster_pid()
    children = [row[0] for row in primary.sql("SELECT pid FROM pg_stat_activity")]
    os.kill(postmaster, signal.SIGKILL)
    status = primary.process.wait(60)
    assert status == 128 + signal.SIGKILL, primary.log_text()
    assert "PostgreSQL (pid" in primary.log_text() and "ended with status 137" in primary.log_text()
    assert not [pid for pid in children if live(pid)]
    try:
        session.close()
    except psycopg2.Error:
        pass


# ---- the self-fence and the standbys' clocks ----

ISOLATION_SECONDS = 3
NAMESPACE_PODS = "/api/v1/namespaces/databases/pods"


def self_fence_environment(member, index, api, pki):
    """The environment that turns member's self-fence on against api (a FakeAPI over TLS
    with pki's certificate): a service account directory (the CA, a token, the
    namespace), the member's pod and the cluster's Lease, both stored in api, the Lease
    with no state yet (no primary named: this one may run)."""
    directory = os.path.join(member.dir, "serviceaccount")
    os.mkdir(directory, 0o700)
    shutil.copy(os.path.join(pki, "ca.crt"), directory)
    for name, text in (("namespace", "databases"), ("token", "member-token")):
        with open(os.path.join(directory, name), "w") as file:
            file.write(text)
    member.account.chown(directory)
    pod = f"postgres-{member.name}"
    api.put_object(f"{NAMESPACE_PODS}/{pod}", {"metadata": {"name": pod, "namespace": "databases"}})
    api.put_object("/apis/coordination.k8s.io/v1/namespaces/databases/leases/pgha-test",
                   {"metadata": {"name": "pgha-test", "namespace": "databases"}, "spec": {}})
    return {"PGHA_K8S_SERVICEACCOUNT_DIR": directory, "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": api.port, "PGHA_LEASE": "pgha-test", "PGHA_POD_NAME": pod,
            "PGHA_MEMBER_INDEX": index, "PGHA_ISOLATION_TIMEOUT": ISOLATION_SECONDS}


def skew_standby_clocks(primary, seconds):
    """Makes the standbys' replies read on primary as if their clocks ran seconds ahead
    (behind when negative): pg_stat_replication, for the superuser whose connections the
    self-fence makes, is a view of the real one whose reply_time (stamped by the
    standby's clock) is moved by that much. libfaketime cannot skew a real standby's
    replies on PostgreSQL 15: its postmaster forks the WAL receiver from a signal handler
    run inside select(), which libfaketime wraps with its faking turned off, so the WAL
    receiver inherits real time."""
    primary.sql("CREATE SCHEMA skewed_clock")
    primary.sql("CREATE VIEW skewed_clock.pg_stat_replication AS SELECT pid, application_name, state,"
                " reply_time + make_interval(secs => %s) AS reply_time FROM pg_catalog.pg_stat_replication",
                (seconds,))
    primary.sql("ALTER ROLE postgres SET search_path = skewed_clock, pg_catalog, public")


@pytest.mark.parametrize("skew", [60, -60])
def test_the_self_fence_trusts_no_standby_clock(cluster, pki, skew):
    """The only standby's replies read as stamped by a clock 60 s ahead of the primary's,
    or behind. With the API server answering no more, the standby streaming keeps the
    primary running past the isolation timeout (counted from reply_time aged by the
    primary's clock, it never counted). Its WAL receiver then frozen (its WAL sender
    stays "streaming" until wal_sender_timeout, its reply_time frozen), the primary
    stops after the isolation timeout, as with clocks that agree, not a minute late."""
    with FakeAPI(tls={"certificate": f"{pki}/server.crt", "key": f"{pki}/server.key"}) as api:
        primary = cluster.member("test-0")
        standby = cluster.member("test-1")
        cluster.start(primary, "primary", PGHA_BOOTSTRAP=1, **self_fence_environment(primary, 0, api, pki))
        primary.wait_ready()
        create_replication(primary, "test_1")
        cluster.start(standby, "standby", PGHA_PRIMARY_HOST="127.0.0.1", PGHA_PRIMARY_PORT=primary.port,
                      PGHA_SLOT="test_1")
        standby.wait_ready(timeout=90)
        wait_streaming(primary, "test-1", slot="test_1")
        skew_standby_clocks(primary, skew)
        ahead = float(primary.value("SELECT extract(epoch FROM reply_time - clock_timestamp()) FROM pg_stat_replication"))
        assert abs(ahead - skew) < 5, f"the standby's replies read {ahead:.1f} s ahead, {skew} s wanted"
        primary.wait_for_log(r"self-fence: this member runs as the primary \(the API server answers\)")

        mark = primary.log_mark()
        api.inject("GET", f"{NAMESPACE_PODS}/postgres-test-0", 500, times=10**6)
        primary.wait_for_log(r"self-fence: no answer from the API server for \d+ ms, but 1 standby streams from "
                             r"this primary: it keeps running", since=mark, timeout=30)
        # a few rounds more, each of which would stop it if the standby did not count
        time.sleep(ISOLATION_SECONDS)
        assert primary.process.poll() is None, primary.log_report()
        assert "must stop" not in primary.log_text()[mark:], primary.log_report()
        primary.sql("CREATE TABLE still_primary ()")

        receiver = standby.value("SELECT pid FROM pg_stat_wal_receiver")
        os.kill(receiver, signal.SIGSTOP)
        try:
            frozen = time.monotonic()
            primary.process.wait(60)
            elapsed = time.monotonic() - frozen
        finally:
            os.kill(receiver, signal.SIGCONT)
    print(f"standby clock {skew:+d} s: the primary stopped {elapsed:.2f} s after its standby froze", file=sys.stderr)
    log = primary.log_text()[mark:]
    found = re.search(r"self-fence: PostgreSQL must stop now: it has reached neither the API server nor any "
                      r"streaming standby for (\d+) ms", log)
    assert found, primary.log_report()
    assert int(found.group(1)) >= ISOLATION_SECONDS * 1000, found.group(0)
    assert "self-fence: immediate shutdown of PostgreSQL" in log, primary.log_report()
    # the standby counted reached at most two rounds before its last answer, one round
    # to see the timeout: never the minute its clock is off
    assert elapsed < ISOLATION_SECONDS + 10, f"stopped {elapsed:.2f} s after the standby froze"
