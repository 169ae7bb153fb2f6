"""Processes hung without a signal: the cgroup freezer stops them where they are, as a
process stuck in the kernel would be. /proc shows them asleep (D or S), never stopped
(T, which pghad on the local platform reads as hung at once), and they answer nothing:
a probe of a frozen member waits for its deadline. Used by tests and by bench/scale."""
import errno
import os
import time

CGROUP_ROOT = "/sys/fs/cgroup"
FREEZER_V1 = os.path.join(CGROUP_ROOT, "freezer")


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def _read(path):
    with open(path) as f:
        return f.read()


def _wait(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout} s for {what}")
        time.sleep(0.05)


def available():
    """Why the freezer cannot be used here, or None when it can."""
    v2 = os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers"))
    root = CGROUP_ROOT if v2 else FREEZER_V1
    if not os.access(os.path.join(root, "cgroup.procs"), os.W_OK):
        return f"no cgroup freezer to write at {root}"
    return None


class Frozen:
    """The processes given (each alone: their children are not moved) frozen in a new
    cgroup until thaw(); usable as a context manager."""

    def __init__(self, pids, name="pgha-test"):
        why = available()
        if why:
            raise OSError(why)
        self.v2 = os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers"))
        self.root = CGROUP_ROOT if self.v2 else FREEZER_V1
        self.pids = list(pids)
        self.group = os.path.join(self.root, f"{name}-{os.getpid()}-{self.pids[0] if self.pids else 0}")
        os.mkdir(self.group)
        try:
            for pid in self.pids:
                try:
                    _write(os.path.join(self.group, "cgroup.procs"), str(pid))
                except ProcessLookupError:
                    pass
            if self.v2:
                _write(os.path.join(self.group, "cgroup.freeze"), "1")
                _wait(lambda: "frozen 1" in _read(os.path.join(self.group, "cgroup.events")), 30, "frozen")
            else:
                _write(os.path.join(self.group, "freezer.state"), "FROZEN")
                _wait(lambda: _read(os.path.join(self.group, "freezer.state")).strip() == "FROZEN", 30, "frozen")
        except BaseException:
            self.thaw()
            raise

    def thaw(self):
        """Thaws them, puts them back where cgroups start, and removes the group (once)."""
        if self.group is None:
            return
        _write(os.path.join(self.group, "cgroup.freeze" if self.v2 else "freezer.state"),
               "0" if self.v2 else "THAWED")

        def removed():
            # those given, and any child one of them forked before it froze (in the
            # group by birth): back where cgroups start
            for pid in _read(os.path.join(self.group, "cgroup.procs")).split():
                try:
                    _write(os.path.join(self.root, "cgroup.procs"), pid)
                except OSError:
                    pass  # exiting
            try:
                os.rmdir(self.group)
                return True
            except OSError as error:
                if error.errno != errno.EBUSY:
                    raise
                return False  # a process still exiting in it
        _wait(removed, 30, f"{self.group} removed")
        self.group = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.thaw()
        return False
