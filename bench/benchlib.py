"""benchlib: what the benchmarks in bench/ share: the account that runs pghad, processes read
from /proc, pghad's status over its control socket, one pghad in a temporary directory
with its complete cleanup, the failover writer's log, and the description of the machine.

Python 3, standard library only. A script in bench/ imports it as `import benchlib`
(Python puts the script's own directory first on sys.path).
"""
import glob
import json
import os
import platform
import pwd
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

# what must not reach pghad: a service manager's variables and libpq's defaults
SERVICE_MANAGER_VARIABLES = ("NOTIFY_SOCKET", "JOURNAL_STREAM", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS",
                             "LISTEN_PID", "LISTEN_FDNAMES", "INVOCATION_ID")

TOP = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


class Interrupted(BaseException):
    """SIGINT, SIGTERM or SIGHUP received: stop measuring, clean up, exit."""


def on_signal(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


def catch_signals():
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)


# ---- the account that runs pghad ----

class Account:
    """Who runs pghad: the current user, or (as root) $PGHA_TEST_USER / postgres via setpriv."""

    def __init__(self):
        if os.geteuid() != 0:
            entry = pwd.getpwuid(os.geteuid())
            self.switch = False
        else:
            if shutil.which("setpriv") is None:
                raise BenchError("running as root needs setpriv (util-linux) to run pghad as an unprivileged account")
            wanted = os.environ.get("PGHA_TEST_USER", "postgres")
            try:
                entry = pwd.getpwuid(int(wanted)) if wanted.isdigit() else pwd.getpwnam(wanted)
            except KeyError:
                raise BenchError(f"no account {wanted!r} to run pghad as (set PGHA_TEST_USER)") from None
            if entry.pw_uid == 0:
                raise BenchError(f"PGHA_TEST_USER={wanted} is root; pghad and PostgreSQL refuse to run as root")
            self.switch = True
        self.name, self.uid, self.gid = entry.pw_name, entry.pw_uid, entry.pw_gid

    def command(self, argv):
        if not self.switch:
            return list(argv)
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", "--"] + list(argv)

    def chown(self, path):
        if self.switch:
            os.chown(path, self.uid, self.gid, follow_symlinks=False)


def environment(**extra):
    env = {name: value for name, value in os.environ.items()
           if name not in SERVICE_MANAGER_VARIABLES and not name.startswith("PG")}
    env["LC_ALL"] = "C"
    env.update(extra)
    return env


# ---- processes, from /proc ----

def proc_stat(pid):
    """The fields of /proc/PID/stat after the command, from the state on (None when gone):
    [0] state, [1] parent, [11] utime, [12] stime, [13] cutime, [14] cstime (clock ticks)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def all_proc_stats():
    """{pid: proc_stat(pid)} of every process that could be read."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = proc_stat(int(entry))
            if fields is not None:
                found[int(entry)] = fields
    return found


def alive(pid):
    """True while pid is a process that has not exited (a zombie has)."""
    fields = proc_stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as command:
            return command.read().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


def children(pid):
    """The live processes whose parent is pid."""
    return [child for child, fields in all_proc_stats().items()
            if fields[1] == str(pid) and fields[0] not in ("Z", "X")]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError(f"no VmRSS in /proc/{pid}/status")


def cpu_ticks(pid, waited_children=False):
    """utime + stime of pid (and with waited_children, + cutime + cstime), in clock ticks."""
    fields = proc_stat(pid)
    if fields is None:
        raise BenchError(f"process {pid} is gone")
    return sum(int(value) for value in fields[11:15 if waited_children else 13])


def wait_gone(pids, timeout):
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return [pid for pid in pids if alive(pid)]
        time.sleep(0.05)
    return []


def processes_under(directory):
    """Live processes whose command line names something under directory."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid() and directory + "/" in cmdline(int(entry)) \
                and alive(int(entry)):
            found.append(int(entry))
    return found


def signal_all(pids, signum):
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def stop_tree(pid):
    """SIGSTOP to pid, then to its children until none is left running; the pids stopped."""
    os.kill(pid, signal.SIGSTOP)
    stopped = [pid]
    for _ in range(10):
        more = [child for child in children(pid) if child not in stopped]
        if not more:
            break
        signal_all(more, signal.SIGSTOP)
        stopped += more
    return stopped


# ---- pghad's status ----

def status_reply(sock, timeout=5):
    """pghad's whole status reply, over its control socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(timeout)
        connection.connect(sock)
        connection.sendall(b'{"command": "status"}\n')
        chunks = []
        while not chunks or not chunks[-1].endswith(b"\n"):
            chunk = connection.recv(1 << 20)
            if not chunk:
                raise ConnectionError("pghad closed the control connection")
            chunks.append(chunk)
    return json.loads(b"".join(chunks))


def streaming_synchronously(member):
    return member.get("state") == "streaming" and member.get("sync_state") in ("quorum", "sync")


def healthy_primary(cluster, members, ignoring=()):
    """The name of the primary when the cluster has its members, exactly one of them is
    primary and every other, but those ignored, streams from it and is synchronous; else None."""
    listed = cluster.get("members", [])
    if len(listed) < members:
        return None
    primaries = [member["name"] for member in listed if member.get("role") == "primary"]
    if len(primaries) != 1:
        return None
    others = [member for member in listed if member["name"] != primaries[0] and member["name"] not in ignoring]
    return primaries[0] if all(streaming_synchronously(member) for member in others) else None


def describe(cluster):
    """One line: each member's role, state and synchronous state."""
    return ", ".join(f"{member['name']} {member.get('role')}/{member.get('state')}"
                     + (f"/{member['sync_state']}" if member.get("sync_state") else "")
                     for member in cluster.get("members", [])) or "no members"


def ephemeral_low():
    """Where the kernel's ephemeral ports begin (outgoing connections take their local
    port from there on)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
            return int(ports.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port_range(count):
    """A first port such that it and the count - 1 after it are free on 127.0.0.1, below
    the ephemeral range: with hundreds of members, one's replication connection took the
    port a member was to listen on as its own local port, and that member never started."""
    low = 10000
    high = max(ephemeral_low(), low + 2 * count)
    for _ in range(200):
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
    raise BenchError(f"no {count} consecutive free ports found")


def tail(path, lines=40):
    try:
        with open(path, errors="replace") as log:
            return "".join(log.readlines()[-lines:])
    except FileNotFoundError:
        return "(no log)\n"


# ---- one pghad in a temporary directory ----

class Pghad:
    """One pghad on an empty directory the account owns, with the binaries copied there:
    prepare(config) writes the configuration, start() runs pghad, close() stops it and
    everything it started and removes the directory."""

    def __init__(self, account, programs, name="pghad"):
        """programs: the binaries to copy, {name: path}; self.bin[name] is the copy."""
        self.account = account
        self.name = name
        self.process = None
        self.others = []      # (name, Popen) to stop before pghad
        self.stopped = []     # pids SIGSTOPped, resumed by close()
        self.workdir = tempfile.mkdtemp(prefix="pgha-bench-")
        account.chown(self.workdir)
        bindir = os.path.join(self.workdir, "bin")
        os.mkdir(bindir)
        account.chown(bindir)
        self.bin = {}
        for key, program in programs.items():
            target = os.path.join(bindir, os.path.basename(program))
            shutil.copy2(program, target)
            account.chown(target)
            self.bin[key] = target
        self.sock = os.path.join(self.workdir, "pghad.sock")
        self.log = os.path.join(self.workdir, "pghad.log")
        self.config = os.path.join(self.workdir, "pgha.conf")
        self.base_dir = os.path.join(self.workdir, "clusters")
        self.state_dir = os.path.join(self.workdir, "state")

    def write_config(self, text):
        with open(self.config, "w") as conf:
            conf.write(text)
        self.account.chown(self.config)

    def start(self, env):
        with open(self.log, "w") as log:
            self.account.chown(self.log)
            self.started = time.monotonic()
            self.process = subprocess.Popen(
                self.account.command([self.bin["pghad"], "-c", self.config]), env=env,
                cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)

    def failure(self, what, kind=BenchError):
        return kind(f"{what}\n----- last lines of pghad's log ({self.log}) -----\n{tail(self.log)}"
                    f"----- end of pghad's log -----")

    def check_running(self, when):
        if self.process.poll() is not None:
            raise self.failure(f"pghad exited with status {self.process.returncode} {when}")

    def status(self):
        """(status reply, None) or (None, why there is none)."""
        try:
            return status_reply(self.sock), None
        except (OSError, ValueError) as error:
            return None, f"status: {error}"

    def bindir(self):
        """The PostgreSQL programs pghad uses (it logs their directory)."""
        found = re.search(r"PostgreSQL programs in (\S+);", tail(self.log, 10000))
        if not found:
            raise BenchError(f"pghad's log does not say where the PostgreSQL programs are ({self.log})")
        return found.group(1)

    def postgres_version(self):
        try:
            result = subprocess.run([os.path.join(self.bindir(), "postgres"), "--version"], capture_output=True,
                                    text=True, stdin=subprocess.DEVNULL)
        except (BenchError, OSError):
            return None
        return result.stdout.strip() or None

    def pghactl_status(self):
        result = subprocess.run(self.account.command([self.bin["pghactl"], "-s", self.sock, "status"]),
                                capture_output=True, text=True, cwd="/", env=environment(),
                                stdin=subprocess.DEVNULL, timeout=30)
        return result.stdout + result.stderr

    # the local platform's layout: member i of cluster C in base_dir/C/C-i, its Unix
    # socket in that directory, its data in data/, its port the cluster's port + i
    def member_directory(self, cluster, index):
        return os.path.join(self.base_dir, cluster, f"{cluster}-{index}")

    def data_directory(self, cluster, index):
        return os.path.join(self.member_directory(cluster, index), "data")

    def postmaster(self, cluster, index):
        """The pid of the postmaster of member index of cluster, from its postmaster.pid."""
        data = self.data_directory(cluster, index)
        try:
            with open(os.path.join(data, "postmaster.pid")) as lines:
                pid = int(lines.readline())
        except (OSError, ValueError) as error:
            raise BenchError(f"no postmaster for {cluster}-{index}: {error}") from None
        # the file may name a pid reused since
        if data not in cmdline(pid) or not alive(pid):
            raise BenchError(f"the postmaster {pid} of {cluster}-{index} is not running")
        return pid

    def postmasters(self):
        """{data directory: pid} of the live postmasters under the directory."""
        found = {}
        for pid_file in glob.glob(os.path.join(self.workdir, "**", "postmaster.pid"), recursive=True):
            try:
                with open(pid_file) as lines:
                    pid = int(lines.readline())
            except (OSError, ValueError):
                continue
            # only a postmaster of this directory (the file may name a reused pid)
            if os.path.dirname(pid_file) in cmdline(pid) and alive(pid):
                found[os.path.dirname(pid_file)] = pid
        return found

    def resume(self):
        """SIGCONT to whatever was SIGSTOPped (self.stopped)."""
        if self.stopped:
            signal_all(self.stopped, signal.SIGCONT)
            self.stopped = []

    def close(self):
        """Resumes what was stopped, stops the other programs and pghad (SIGTERM), then every
        postmaster under the directory (SIGQUIT), then anything else still running from it
        (SIGKILL), and removes the directory. Each step runs even when one before it failed:
        no postmaster may outlive the run. Returns the problems met."""
        problems = []
        for step in (self.resume, self.stop_programs, self.stop_postmasters, self.kill_strays, self.remove):
            try:
                problems += step() or []
            except Exception as error:
                problems.append(f"{step.__name__}: {error!r}")
        return problems

    def stop_programs(self):
        problems = []
        for name, process in self.others + [("pghad", self.process)]:
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    problems.append(f"{name} ignored SIGTERM for 15 s: killed")
                    process.kill()
                    process.wait()
        return problems

    def stop_postmasters(self):
        postmasters = list(self.postmasters().values())
        signal_all(postmasters, signal.SIGQUIT)
        left = wait_gone(postmasters, 60)
        return [f"postmasters {left} survived SIGQUIT for 60 s: killed"] if left else []

    def kill_strays(self):
        problems = []
        for _ in range(3):
            stray = processes_under(self.workdir)
            if not stray:
                break
            problems.append(f"killed processes still running from {self.workdir}: {stray}")
            signal_all(stray, signal.SIGKILL)
            wait_gone(stray, 10)
        return problems

    def remove(self):
        shutil.rmtree(self.workdir, ignore_errors=True)
        return [f"could not remove {self.workdir}"] if os.path.exists(self.workdir) else []

    def keep_log(self, path):
        try:
            shutil.copyfile(self.log, path)
        except OSError as error:
            return [f"cannot keep pghad's log: {error}"]
        return []


def close_quietly(run, program):
    """run.close() with a second Ctrl-C ignored (every wait in it is bounded); its problems printed."""
    import sys
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for problem in run.close():
            print(f"{program}: cleanup: {problem}", file=sys.stderr)
    finally:
        signal.signal(signal.SIGINT, previous)


# ---- the failover writer's log (bench/failover-writer.c) ----

def parse_writer_log(text):
    """The writer's events: ("ack"|"unknown", id, member, ns) and ("connected"|"disconnected",
    None, member, ns). Lines of other kinds are skipped, as the format asks."""
    events = []
    for line in text.splitlines():
        words = line.split(" ", 4)
        try:
            if words[0] in ("ack", "unknown") and len(words) >= 4:
                events.append((words[0], int(words[1]), int(words[2]), int(words[3])))
            elif words[0] in ("connected", "disconnected") and len(words) >= 3:
                events.append((words[0], None, int(words[1]), int(words[2])))
        except ValueError:
            raise BenchError(f"the writer wrote a line that is not of its format: {line!r}") from None
    return events


def first_ack_elsewhere(events, fault_ns, old_index):
    """Seconds from fault_ns to the first acknowledged write on a member other than
    old_index at or after it; None without one."""
    after = [ns for kind, _, member, ns in events if kind == "ack" and member != old_index and ns >= fault_ns]
    return (min(after) - fault_ns) / 1e9 if after else None


# ---- describing the machine and the programs ----

def version_of(argv):
    try:
        result = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (result.stdout.strip() or result.stderr.strip()).splitlines()[0] if result.returncode == 0 else None


def source_revision(pghad):
    """The git commit of the tree pghad was built in, if it is one, marked when it has changes."""
    try:
        commit = subprocess.run(["git", "-C", TOP, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=30)
        changes = subprocess.run(["git", "-C", TOP, "status", "--porcelain", "--untracked-files=no"],
                                 capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if commit.returncode != 0 or not os.path.realpath(pghad).startswith(TOP + os.sep):
        return None
    return commit.stdout.strip() + (" with uncommitted changes" if changes.stdout.strip() else "")


def processors():
    counted = version_of(["nproc"]) or str(len(os.sched_getaffinity(0)))
    model = None
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{counted} processors (nproc)" + (f", {model}" if model else "") + f", {platform.machine()}"


def machine():
    return f"{processors()}, Linux {platform.release()}"


def described_defaults(pghad):
    """{option: default} from pghad --describe-config."""
    described = subprocess.run([pghad, "--describe-config"], capture_output=True, text=True,
                               stdin=subprocess.DEVNULL).stdout
    return {line.split("\t")[0]: line.split("\t")[2] for line in described.splitlines() if line.count("\t") >= 2}


def default_build_dir():
    """The source tree when pgha was built in it, else its build/ (scripts/test's)."""
    return TOP if os.access(os.path.join(TOP, "src", "pghad"), os.X_OK) else os.path.join(TOP, "build")


def text_table(headers, rows, left=()):
    """Columns padded to their widest cell; the columns named in left read from the left."""
    table = [headers] + rows
    widths = [max(len(row[column]) for row in table) for column in range(len(headers))]
    lefts = [header in left for header in headers]
    return "\n".join("  ".join(cell.ljust(width) if is_left else cell.rjust(width)
                               for cell, width, is_left in zip(row, widths, lefts)).rstrip()
                     for row in table) + "\n"


def markdown_table(headers, rows, left=()):
    text = ["| " + " | ".join(headers) + " |",
            "| " + " | ".join("---" if header in left else "---:" for header in headers) + " |"]
    for row in rows:
        text.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    return text
