"""Integration-test harness for pgha: real PostgreSQL servers and real pghad processes.

Everything here runs PostgreSQL and pghad as an unprivileged account, because both
refuse to run as root and CI runs as root. The account is chosen once (see
default_account); when the tests do not run as root they run as themselves.

Every process started here is put in a session (and process group) of its own, so
it never sees a terminal's signals and its leftovers can be found and killed. Every
directory is a fresh one under the system's temporary directory, owned by the
account, and removed when its owner is closed.
"""
import functools
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

import psycopg2

# Environment variables that must not reach the programs under test: a service
# manager's (this harness stands in for one when a test asks), a journal stream that
# would divert pghad's log away from its log file, and libpq's defaults.
_SERVICE_MANAGER_VARIABLES = (
    "NOTIFY_SOCKET", "JOURNAL_STREAM", "WATCHDOG_USEC", "WATCHDOG_PID",
    "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "INVOCATION_ID",
)

# How PostgreSQL's postmaster is asked to stop, by pg_ctl's names for the modes.
_STOP_SIGNALS = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}

LOG_TAIL_LINES = 300


class HarnessError(RuntimeError):
    """A program the harness runs could not be set up (initdb failed, a server did not start)."""


# ---- the unprivileged account ----

class Account:
    """The account that runs PostgreSQL and pghad: name, uid, gid, and whether the
    harness must switch to it (it runs as root) or already is it."""

    def __init__(self, entry, switch):
        self.name = entry.pw_name
        self.uid = entry.pw_uid
        self.gid = entry.pw_gid
        self.switch = switch

    def command(self, argv):
        """argv, prefixed with setpriv when the harness must switch to this account.
        setpriv execs the program, so the process id is the program's own."""
        argv = [os.fspath(arg) for arg in argv]
        if not self.switch:
            return argv
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", "--"] + argv

    def chown(self, path):
        """Gives path (recursively, if a directory) to this account; nothing to do when
        the harness already runs as it."""
        if not self.switch:
            return
        os.chown(path, self.uid, self.gid, follow_symlinks=False)
        if os.path.isdir(path) and not os.path.islink(path):
            for root, directories, files in os.walk(path):
                for name in directories + files:
                    os.chown(os.path.join(root, name), self.uid, self.gid, follow_symlinks=False)

    def __repr__(self):
        return f"Account({self.name!r}, uid={self.uid}, gid={self.gid}, switch={self.switch})"


@functools.lru_cache(maxsize=None)
def default_account():
    """The account the tests run programs as. As root: $PGHA_TEST_USER (a name or a
    uid) if set, else "postgres" if it exists, else "nobody". Otherwise: the current
    user, whatever $PGHA_TEST_USER says (only root can switch)."""
    if os.geteuid() != 0:
        return Account(pwd.getpwuid(os.geteuid()), switch=False)
    if shutil.which("setpriv") is None:
        raise HarnessError("running as root needs setpriv (util-linux) to drop privileges")
    wanted = os.environ.get("PGHA_TEST_USER")
    candidates = [wanted] if wanted else ["postgres", "nobody"]
    for candidate in candidates:
        try:
            entry = pwd.getpwuid(int(candidate)) if candidate.isdigit() else pwd.getpwnam(candidate)
        except KeyError:
            continue
        if entry.pw_uid == 0:
            raise HarnessError(f"PGHA_TEST_USER={wanted} is root; PostgreSQL and pghad refuse to run as root")
        return Account(entry, switch=True)
    raise HarnessError(f"no account to run the tests as (tried {', '.join(candidates)})")


def child_environment(extra=None):
    """The environment for a program under test: ours without service-manager and libpq
    variables, in the C locale so that messages are predictable, plus extra."""
    environment = {
        name: value for name, value in os.environ.items()
        if name not in _SERVICE_MANAGER_VARIABLES and not name.startswith("PG")
    }
    environment["LC_ALL"] = "C"
    environment.update(extra or {})
    return environment


def run_as_user(argv, account=None, env=None, cwd="/", **kwargs):
    """subprocess.run of argv as the test account, in the test environment plus env.
    The working directory defaults to "/": the build tree may not be readable by the
    account."""
    account = account or default_account()
    return subprocess.run(account.command(argv), env=child_environment(env), cwd=cwd,
                          stdin=subprocess.DEVNULL, **kwargs)


def popen_as_user(argv, account=None, env=None, cwd="/", wrapper=(), **kwargs):
    """subprocess.Popen of argv as the test account, in a new session (so a group
    of its own), in the test environment plus env; after wrapper, run as root (e.g.
    nsenter into a network namespace, which then execs the rest: same pid)."""
    account = account or default_account()
    return subprocess.Popen([*wrapper, *account.command(argv)], env=child_environment(env), cwd=cwd,
                            stdin=subprocess.DEVNULL, start_new_session=True, **kwargs)


# ---- directories, ports, binaries ----

def make_workdir(prefix="pgha-test-", account=None):
    """A new empty directory under the system's temporary directory, owned by the
    test account and private to it (mode 0700)."""
    path = tempfile.mkdtemp(prefix=prefix)
    (account or default_account()).chown(path)
    return path


def remove_tree(path):
    """Removes a directory made by make_workdir (or any directory a test made), if it
    is still there, after the shared memory its killed servers left behind (see
    release_shared_memory_under): every test directory goes through here."""
    if os.path.lexists(path):
        release_shared_memory_under(path)
        shutil.rmtree(path)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def free_port_range(count, attempts=200):
    """A first port such that it and the count - 1 after it are all free on 127.0.0.1
    right now (local members listen on consecutive ports)."""
    import random
    # Below the kernel's ephemeral range: an outgoing connection (a probe, a
    # client, another suite's) never takes one of these ports between our check
    # and the postmaster's bind.
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
            ephemeral_low = int(ports.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    low, high = 10000, max(ephemeral_low, 10000 + 100 * count)
    for _ in range(attempts):
        first = random.randrange(low, high - count)
        probes = []
        try:
            for port in range(first, first + count):
                probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                probes.append(probe)
                probe.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
    raise HarnessError(f"no {count} consecutive free ports found")


def _version_key(path):
    return tuple(int(number) for number in re.findall(r"\d+", path))


@functools.lru_cache(maxsize=None)
def postgres_bindir():
    """The directory of PostgreSQL's server programs: pg_config --bindir if it has
    them, else the newest /usr/lib/postgresql/VERSION/bin; None if there is none."""
    candidates = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if result.returncode == 0:
            candidates.append(result.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    for directory in candidates:
        if all(os.access(os.path.join(directory, program), os.X_OK) for program in ("postgres", "initdb")):
            return directory
    return None


def built_program(name):
    """The path of a built pgha program from the environment make check sets:
    $PGHAD for pghad, $PGHACTL for pghactl."""
    variable = name.upper()
    path = os.environ.get(variable)
    if not path:
        raise HarnessError(f"${variable} is not set: run the tests through make check or set it")
    return path


def install_program(name, directory, account=None):
    """Copies the built program name into directory (created if needed), owned by the
    test account: the build tree may be unreadable by it. Returns the copy's path."""
    account = account or default_account()
    os.makedirs(directory, exist_ok=True)
    account.chown(directory)
    target = os.path.join(directory, name)
    if not os.path.exists(target):
        shutil.copy2(built_program(name), target)
        account.chown(target)
    return target


# ---- processes ----

def _live_process(pid):
    """(parent, process group) of pid from /proc, or None if it has exited (a zombie
    has exited)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state, parent, group = stat.read().rsplit(")", 1)[1].split()[:3]
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None if state in ("Z", "X") else (int(parent), int(group))


def process_state(pid):
    """The state letter of pid in /proc (R, S, T, Z...), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def _live_processes():
    """{pid: (parent, process group)} of every live process."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            found = _live_process(int(entry))
            if found:
                table[int(entry)] = found
    return table


def proc_ids(pid, field):
    """The values of a Uid:, Gid: or Groups: line of /proc/PID/status, as integers."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return [int(value) for value in line.split()[1:]]
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def process_alive(pid):
    """True while pid is a process that has not exited."""
    return _live_process(pid) is not None


def group_members(pgid):
    """The live processes of process group pgid."""
    return [pid for pid, (_, group) in _live_processes().items() if group == pgid]


def children_of(pid):
    """The live processes whose parent is pid."""
    return [child for child, (parent, _) in _live_processes().items() if parent == pid]


def kill_group(pgid, timeout=10):
    """SIGKILLs every live process of group pgid and waits until none is left."""
    deadline = time.monotonic() + timeout
    while True:
        members = group_members(pgid)
        if not members:
            return
        if time.monotonic() > deadline:
            raise HarnessError(f"processes {members} of group {pgid} survive SIGKILL")
        for pid in members:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


def stop_postmasters_under(directory, timeout=60):
    """Stops (SIGQUIT) every postmaster whose postmaster.pid lies under directory and
    waits for each to exit: pghad never stops PostgreSQL, so a test that let pghad
    create members stops them itself, after pghad, before removing the directory."""
    postmasters = []
    for pid_file in glob.glob(os.path.join(directory, "**", "postmaster.pid"), recursive=True):
        try:
            with open(pid_file) as pid_lines:
                pid = int(pid_lines.readline())
            os.kill(pid, signal.SIGQUIT)
            postmasters.append(pid)
        except (OSError, ValueError):
            pass
    for pid in postmasters:
        wait_until(lambda: not process_alive(pid), timeout=timeout, what=f"postmaster {pid} to exit")


def wait_until(condition, timeout=10, interval=0.05, what="the condition"):
    """Polls condition() until it returns something true, and returns that; raises
    AssertionError naming what was awaited if timeout seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        time.sleep(interval)


def _tail(path, lines=LOG_TAIL_LINES):
    try:
        with open(path, errors="replace") as log:
            text = log.read()
    except FileNotFoundError:
        return f"({path} does not exist)\n"
    kept = text.splitlines(keepends=True)[-lines:]
    return "".join(kept) or "(empty)\n"


def log_report(title, path):
    """A printable block: title, then the last lines of the log file at path."""
    return f"----- {title}: {path} (last {LOG_TAIL_LINES} lines) -----\n{_tail(path)}----- end of {title} -----\n"


def member_logs_report(workdir):
    """The tails of every member's postgresql.log under workdir, ready to print:
    what a failed wait for a healthy cluster needs beside pghad's log."""
    logs = sorted(glob.glob(os.path.join(workdir, "**", "postgresql.log"), recursive=True))
    return "".join(log_report("PostgreSQL log", path) for path in logs)


# ---- SysV shared memory of killed servers ----

# A postmaster keeps a small SysV shared memory segment, its key and id on line 7 of
# postmaster.pid ("     KEY     SHMID"). It removes the segment when it stops, and
# the next postmaster on the same data directory removes the one a killed predecessor
# left; a server SIGKILLed whose directory is then deleted leaves it forever, and
# enough of them (SHMMNI, 4096) make every initdb on the machine fail with "could not
# create shared memory segment: No space left on device".

_IPC_RMID = 0


def shm_segments():
    """{shmid: (key, processes attached, owner uid)} of every SysV shared memory
    segment of this IPC namespace, from /proc/sysvipc/shm (the key as the kernel
    prints it: a signed 32-bit number)."""
    segments = {}
    with open("/proc/sysvipc/shm") as table:
        header = table.readline().split()
        for line in table:
            fields = dict(zip(header, line.split()))
            segments[int(fields["shmid"])] = (int(fields["key"]), int(fields["nattch"]), int(fields["uid"]))
    return segments


def postmaster_shm(pid_file):
    """(postmaster pid, key, shmid) from a postmaster.pid, or None when it names no
    segment (not written yet, or not a lock file). A single-user backend writes its
    pid negated."""
    try:
        with open(pid_file) as lock:
            lines = lock.read().splitlines()
        key, shmid = (int(value) for value in lines[6].split())
        return abs(int(lines[0])), key, shmid
    except (OSError, ValueError, IndexError):
        return None


def _remove_segment(shmid):
    """shmctl(shmid, IPC_RMID): True if removed, False if it was gone or not ours."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.shmctl(ctypes.c_int(shmid), ctypes.c_int(_IPC_RMID), None) == 0


def release_shared_memory_under(directory, timeout=30):
    """Removes the SysV shared memory segment of every postmaster.pid under directory
    (symbolic links not followed) whose server is dead: only a segment that still has
    the id and the key written there, the owner of the file, and no process attached.
    A segment attached to anything, or whose postmaster still runs, or that is not the
    one the file names, is left alone. While the postmaster is dead but processes are
    still attached (its children, which exit when they notice), waits for them up to
    timeout seconds in all, then leaves the segment. Returns the ids removed."""
    pending = {}
    for root, _, files in os.walk(directory):
        if "postmaster.pid" not in files:
            continue
        pid_file = os.path.join(root, "postmaster.pid")
        named = postmaster_shm(pid_file)
        try:
            owner = os.lstat(pid_file).st_uid
        except OSError:
            continue
        if named is not None:
            pid, key, shmid = named
            pending[shmid] = (pid, key & 0xFFFFFFFF, owner)
    removed = []
    deadline = time.monotonic() + timeout
    while pending:
        segments = shm_segments()
        for shmid, (pid, key, owner) in list(pending.items()):
            segment = segments.get(shmid)
            if segment is None or segment[0] & 0xFFFFFFFF != key or segment[2] != owner or process_alive(pid):
                del pending[shmid]  # gone, somebody else's, or in use
            elif segment[1] == 0:
                del pending[shmid]
                if _remove_segment(shmid):
                    removed.append(shmid)
        if not pending:
            break
        if time.monotonic() > deadline:
            print(f"pgharness: shared memory segments {sorted(pending)} of dead postmasters under {directory} "
                  f"still attached after {timeout} s: left in place", file=sys.stderr)
            break
        time.sleep(0.05)
    return removed


# ---- PostgreSQL ----

class _LoggedProcess:
    """A process a test started (self.process, a Popen or None): its pid, whether it
    runs, and what happens when its with-block ends: its log printed if the block
    raised, then close(). Subclasses provide log_report() and close()."""

    @property
    def pid(self):
        """The process id (the postmaster's, pghad's), or None if never started."""
        return self.process.pid if self.process else None

    @property
    def running(self):
        """True while the process started by start() has not exited."""
        return self.process is not None and self.process.poll() is None

    def __exit__(self, exc_type, exc_value, traceback):
        if exc_type is not None:
            print(self.log_report(), file=sys.stderr)
        self.close()


class PostgresServer(_LoggedProcess):
    """One PostgreSQL server for a test: its own directory (data directory, socket
    directory, log), port and postmaster, run as the test account.

    Used as a context manager it is initialized, started and ready inside the block
    and stopped and removed after it, its log printed to stderr if the block raised.
    Without one: init(), start(), wait_ready() ... close().
    """

    SUPERUSER = "postgres"

    def __init__(self, base_dir=None, name="postgres", settings=None, account=None, bindir=None):
        """Makes the server's directory: a new temporary one, or base_dir/name. The
        directory belongs to the server and close() removes it. settings are added
        to postgresql.conf over the harness's own."""
        self.account = account or default_account()
        self.bindir = bindir or postgres_bindir()
        if not self.bindir:
            raise HarnessError("PostgreSQL's server programs are not installed")
        self.name = name
        if base_dir is None:
            self.dir = make_workdir(f"pgha-{name}-", self.account)
        else:
            self.dir = os.path.join(base_dir, name)
            os.mkdir(self.dir, 0o700)
            self.account.chown(self.dir)
        self.datadir = os.path.join(self.dir, "data")
        self.socket_dir = os.path.join(self.dir, "socket")
        self.log = os.path.join(self.dir, "postgres.log")
        os.mkdir(self.socket_dir, 0o700)
        self.account.chown(self.socket_dir)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.settings = {
            "listen_addresses": self.host,
            "port": self.port,
            "unix_socket_directories": self.socket_dir,
            "fsync": "off",
            "logging_collector": "off",
            "log_line_prefix": "%m [%p] ",
            **(settings or {}),
        }
        self.process = None

    def program(self, name):
        """The path of one of PostgreSQL's programs."""
        return os.path.join(self.bindir, name)

    def init(self):
        """Runs initdb (trust authentication, superuser "postgres", C locale, no sync)
        and appends the harness's settings to postgresql.conf."""
        result = run_as_user(
            [self.program("initdb"), "-D", self.datadir, "--nosync", "-A", "trust", "-U", self.SUPERUSER,
             "-E", "UTF8", "--locale=C", "--no-instructions"],
            account=self.account, cwd=self.dir, capture_output=True, text=True)
        if result.returncode != 0:
            raise HarnessError(f"initdb exited with {result.returncode}:\n{result.stdout}{result.stderr}")
        with open(os.path.join(self.datadir, "postgresql.conf"), "a") as conf:
            conf.write("\n# added by pgharness\n")
            for name, value in self.settings.items():
                conf.write("{} = '{}'\n".format(name, str(value).replace("'", "''")))

    def start(self):
        """Starts the postmaster as the test account, its output appended to the log."""
        if self.running:
            raise HarnessError(f"{self.name} is already running (pid {self.pid})")
        with open(self.log, "a") as log:
            self.account.chown(self.log)
            self.process = popen_as_user([self.program("postgres"), "-D", self.datadir], account=self.account,
                                         cwd=self.dir, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout=30):
        """Waits until the server accepts connections on its socket; raises HarnessError
        with the log's tail if it exits or is not ready in time."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise HarnessError(f"{self.name} is not running (exit status {code})\n"
                                   + log_report("PostgreSQL log", self.log))
            try:
                self.connect(connect_timeout=5).close()
                return
            except psycopg2.OperationalError as error:
                if time.monotonic() > deadline:
                    raise HarnessError(f"{self.name} not ready after {timeout} s: {error}\n"
                                       + log_report("PostgreSQL log", self.log)) from error
            time.sleep(0.1)

    def connect(self, dbname="postgres", tcp=False, **kwargs):
        """A psycopg2 connection in autocommit mode, as the superuser, over the private
        Unix socket or, with tcp, over TCP to 127.0.0.1."""
        connection = psycopg2.connect(host=self.host if tcp else self.socket_dir, port=self.port,
                                      user=self.SUPERUSER, dbname=dbname, **kwargs)
        connection.autocommit = True
        return connection

    def execute(self, sql, params=None):
        """Runs one statement on a new connection; returns its rows, or None if it
        returns none."""
        connection = self.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall() if cursor.description is not None else None
        finally:
            connection.close()

    def stop(self, mode="fast", timeout=60):
        """Stops the postmaster the way pg_ctl's mode does (smart, fast or immediate)
        and waits for it; returns its exit status."""
        self.process.send_signal(_STOP_SIGNALS[mode])
        return self.wait(timeout)

    def kill(self, signum=signal.SIGKILL):
        """Sends signum to the postmaster (only), as a crash or an operator would."""
        self.process.send_signal(signum)

    def wait(self, timeout=60):
        """Waits for the postmaster to exit and returns its exit status."""
        return self.process.wait(timeout)

    def log_text(self):
        """Everything the server has logged so far."""
        with open(self.log, errors="replace") as log:
            return log.read()

    def log_report(self):
        """The tail of the server's log, ready to print."""
        return log_report(f"PostgreSQL log of {self.name}", self.log)

    def close(self):
        """Stops the server (fast, then SIGKILL), kills any process left in its group
        and removes its directory."""
        if self.process is not None:
            if self.process.poll() is None:
                try:
                    self.stop("fast", timeout=30)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            kill_group(self.process.pid)
        remove_tree(self.dir)

    def __enter__(self):
        try:
            self.init()
            self.start()
            self.wait_ready()
        except BaseException:
            print(self.log_report(), file=sys.stderr)
            self.close()
            raise
        return self

# ---- pghad ----

class Pghad(_LoggedProcess):
    """One pghad process for a test, run as the test account from a copy of the built
    binary, with its configuration file and log (stdout and stderr) in workdir.

    Used as a context manager it is started inside the block (not waited for) and
    killed after it, its log printed to stderr if the block raised.
    """

    def __init__(self, workdir, config_text, name="pghad", env=None, account=None, wrapper=()):
        """Installs the binary in workdir/bin and writes the configuration to
        workdir/NAME.conf. env is added to the test environment of the process; wrapper
        runs before it (nsenter into a network namespace)."""
        self.account = account or default_account()
        self.wrapper = list(wrapper)
        self.dir = workdir
        self.name = name
        self.binary = install_program("pghad", os.path.join(workdir, "bin"), self.account)
        self.config_path = os.path.join(workdir, f"{name}.conf")
        self.log = os.path.join(workdir, f"{name}.log")
        self.env = dict(env or {})
        self.process = None
        self.write_config(config_text)

    def write_config(self, text):
        """Replaces the configuration file at once (write, then rename), so that a
        reload never reads half of it."""
        temporary = self.config_path + ".new"
        with open(temporary, "w") as conf:
            conf.write(text)
        self.account.chown(temporary)
        os.replace(temporary, self.config_path)

    def start(self):
        """Starts pghad -c CONFIG as the test account, appending its output to the log."""
        if self.running:
            raise HarnessError(f"{self.name} is already running (pid {self.pid})")
        with open(self.log, "a") as log:
            self.account.chown(self.log)
            self.process = popen_as_user([self.binary, "-c", self.config_path], account=self.account,
                                         env=self.env, cwd=self.dir, stdout=log, stderr=subprocess.STDOUT,
                                         wrapper=self.wrapper)

    def wait_running(self, timeout=10):
        """Waits until pghad has loaded its configuration and entered its loop (from
        then on it handles SIGHUP, SIGTERM and SIGINT)."""
        return self.wait_for_log(r"pghad running: loop every \d+ ms", timeout)

    def send_signal(self, signum):
        """Sends signum to pghad."""
        self.process.send_signal(signum)

    def reload(self):
        """Asks pghad to reload its configuration (SIGHUP)."""
        self.send_signal(signal.SIGHUP)

    def stop(self, signum=signal.SIGTERM, timeout=10):
        """Asks pghad to stop (SIGTERM unless told) and returns its exit status."""
        self.send_signal(signum)
        return self.wait(timeout)

    def crash(self, timeout=10):
        """Kills pghad (SIGKILL) as a crash would, then the programs it was running
        (initdb, pg_basebackup: process groups of their own), as systemd kills the rest of
        the unit's control group; nothing of it then still writes under the directory.
        Stopped first, so that it starts no program between the two. Returns its status."""
        self.send_signal(signal.SIGSTOP)
        wait_until(lambda: process_state(self.process.pid) in ("T", None), timeout=timeout, what=f"{self.name} stopped")
        groups = {_live_process(child)[1] for child in children_of(self.process.pid) if _live_process(child)}
        self.send_signal(signal.SIGKILL)
        status = self.wait(timeout)
        for group in groups:
            kill_group(group, timeout)
        return status

    def wait(self, timeout=10):
        """Waits for pghad to exit and returns its exit status."""
        return self.process.wait(timeout)

    def log_mark(self):
        """The log's current length: pass it as since= to look only at what follows."""
        try:
            return os.path.getsize(self.log)
        except FileNotFoundError:
            return 0

    def log_text(self, since=0):
        """What pghad has logged, from offset since."""
        try:
            with open(self.log, "rb") as log:
                log.seek(since)
                return log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, pattern, timeout=10, since=0):
        """Polls the log (from offset since) until the regular expression pattern
        matches a part of it, and returns the match. Raises AssertionError if it does
        not within timeout seconds, or as soon as pghad has exited without logging it."""
        regex = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            exited = self.process is None or self.process.poll() is not None
            match = regex.search(self.log_text(since))
            if match:
                return match
            if exited:
                code = None if self.process is None else self.process.returncode
                raise AssertionError(f"{self.name} exited (status {code}) without logging /{pattern}/")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not log /{pattern}/ within {timeout} s")
            time.sleep(0.05)

    def log_report(self):
        """The tail of pghad's log, ready to print."""
        return log_report(f"log of {self.name}", self.log)

    def close(self):
        """Kills pghad and anything left in its process group, if still running."""
        if self.process is None:
            return
        if self.process.poll() is None:
            # SIGTERM first: pghad then cancels the programs it runs (initdb,
            # pg_basebackup), which live in process groups of their own
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        kill_group(self.process.pid)

    def __enter__(self):
        self.start()
        return self

# ---- the service manager's notification socket ----

class NotifyMessage:
    """One sd_notify datagram: its fields (NAME=value lines, in order) and the
    sender's credentials as the kernel reports them."""

    def __init__(self, text, pid, uid, gid):
        self.text = text
        self.fields = dict(line.split("=", 1) for line in text.split("\n") if "=" in line)
        self.pid = pid
        self.uid = uid
        self.gid = gid

    def __contains__(self, name):
        return name in self.fields

    def get(self, name, default=None):
        """The value of field name, or default."""
        return self.fields.get(name, default)

    def __repr__(self):
        return f"NotifyMessage({self.text!r}, pid={self.pid})"


class NotifySocket:
    """An AF_UNIX datagram socket standing in for systemd's NOTIFY_SOCKET: pass
    environment() to the program and read what it sends with wait_for()."""

    def __init__(self, path, account=None):
        """Binds the socket at path (which must not exist) and gives it to the test
        account, so that the unprivileged program may send to it."""
        self.path = path
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(path)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        (account or default_account()).chown(path)

    def environment(self):
        """The environment variable that points a program at this socket."""
        return {"NOTIFY_SOCKET": self.path}

    def receive(self, timeout=10):
        """The next datagram, as a NotifyMessage; raises AssertionError after timeout."""
        self.socket.settimeout(timeout)
        try:
            data, ancillary, _, _ = self.socket.recvmsg(4096, socket.CMSG_SPACE(struct.calcsize("iII")))
        except socket.timeout:
            raise AssertionError(f"no notification within {timeout} s") from None
        pid = uid = gid = None
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid, uid, gid = struct.unpack("iII", payload[:struct.calcsize("iII")])
        return NotifyMessage(data.decode(), pid, uid, gid)

    def wait_for(self, name, value=None, timeout=10):
        """Receives until a message has field name (equal to value, if given); returns
        every message received meanwhile, the matching one last."""
        deadline = time.monotonic() + timeout
        messages = []
        while True:
            message = self.receive(max(0.01, deadline - time.monotonic()))
            messages.append(message)
            if name in message and (value is None or message.get(name) == value):
                return messages

    def close(self):
        """Closes and unlinks the socket."""
        self.socket.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self.close()


def assert_cut_before_promotion(log, promoted, standbys):
    """pghad's log (from a mark before the fault) shows every standby cut from the old
    primary before the promotion of promoted was decided."""
    promotion = log.index(f"[{promoted}] promote")
    for member in standbys:
        assert -1 < log.find(f"[{member}] cut") < promotion, f"{member} was not cut before the choice"
