"""pghad run the way systemd runs it, on real local clusters: with a notification
socket and a watchdog, the PostgreSQL servers it starts inherit none of the service
manager's variables, and STATUS= tells the cluster's roles and synchronous state; with
stderr connected to the journal, it logs there with priorities and cluster and member
fields."""
import os
import signal
import socket
import subprocess
import time

import pytest

import pgharness

# What systemd gives a Type=notify service with WatchdogSec=, and what no program pghad
# starts may see: a postgres that used NOTIFY_SOCKET could get pghad's unit declared
# ready, reloading or stopped (it happened to Patroni).
SERVICE_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def config_text(workdir, port, name="svc", replicas=2, synchronous='method = "first"; number = 1;'):
    return f"""
daemon: {{
  state_dir = "{workdir}/state";
  control_socket = "{workdir}/pghad.sock";
  loop_interval_ms = 200;
  log_level = "debug";
}};
platform: {{ local: {{ base_dir = "{workdir}/clusters"; }}; }};
clusters = ( {{
  name = "{name}";
  replicas = {replicas};
  port = {port};
  synchronous = {{ {synchronous} }};
}} );
"""


def environ(pid):
    """The environment a process started with, from /proc/PID/environ, as a dict."""
    with open(f"/proc/{pid}/environ", "rb") as variables:
        entries = variables.read().split(b"\0")
    return dict(entry.decode(errors="replace").split("=", 1) for entry in entries if b"=" in entry)


def postmaster_pid(workdir, member):
    with open(os.path.join(workdir, "clusters", "svc", member, "data", "postmaster.pid")) as pid_file:
        return int(pid_file.readline())


def wait_for_status(manager, wanted, timeout):
    """Receives notifications until a STATUS= equals wanted; returns it. Fails with the
    last status seen when none does within timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            message = manager.receive(max(0.01, deadline - time.monotonic()))
        except AssertionError:
            break
        if "STATUS" in message:
            last = message.get("STATUS")
            if last == wanted:
                return last
    raise AssertionError(f"no STATUS={wanted!r} within {timeout} s; the last one was {last!r}")


def test_postgres_inherits_no_service_manager_variables(pghad, tmp_workdir, account):
    port = pgharness.free_port_range(2)
    with pgharness.NotifySocket(os.path.join(tmp_workdir, "notify.sock"), account) as manager:
        environment = {
            **manager.environment(),
            "WATCHDOG_USEC": "30000000",
            # systemd names pghad itself; its pid is unknown before it starts, and only the
            # variable's presence matters here
            "WATCHDOG_PID": str(os.getpid()),
            "PGHA_TEST_INITDB_NOSYNC": "1",
        }
        daemon = pghad(config_text(tmp_workdir, port), env=environment, wait_running=False)

        # the primary and its synchronous standby, as the status line reports them
        wait_for_status(manager, "svc: primary svc-0, 1/1 standbys streaming, 1 synchronous (first 1)", timeout=120)

        # pghad itself has the variables (so they were there to inherit) ...
        own = environ(daemon.pid)
        assert all(name in own for name in SERVICE_VARIABLES), sorted(own)
        # ... and neither postmaster does: svc-0 started after initdb, svc-1 after pg_basebackup
        for member in ("svc-0", "svc-1"):
            pid = postmaster_pid(tmp_workdir, member)
            assert pgharness.process_alive(pid)
            inherited = environ(pid)
            assert [name for name in SERVICE_VARIABLES if name in inherited] == [], (member, sorted(inherited))
            assert not [name for name in inherited if name.startswith("PGHA_TEST_")], (member, sorted(inherited))
            # the check reads a real environment: the locale the harness gives pghad got through
            assert inherited.get("LC_ALL") == "C", (member, sorted(inherited))


def journal_entries(journal, until, timeout=60):
    """The entries (dicts of fields) sent to journal, in order, up to the first for which
    until(entry) is true; fails with what came when none does within timeout seconds."""
    entries = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        journal.settimeout(left)
        try:
            data = journal.recv(65536)
        except socket.timeout:
            break
        # the native protocol: one NAME=value per line (values here have no newline)
        entries.append(dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line))
        if until(entries[-1]):
            return entries
    raise AssertionError(f"the awaited journal entry did not come within {timeout} s; came: {entries}")


@pytest.mark.skipif(os.geteuid() != 0, reason="a private /run for the journal's socket needs root")
def test_logs_to_the_journal_with_priorities_and_fields(tmp_workdir, account):
    # pghad sends to journald's fixed socket, /run/systemd/journal/socket: it runs in a
    # mount namespace of its own where that directory is one of the test's
    directory = os.path.join(tmp_workdir, "journal")
    os.mkdir(directory)
    account.chown(directory)
    journal = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    journal.bind(os.path.join(directory, "socket"))
    account.chown(os.path.join(directory, "socket"))
    config = os.path.join(tmp_workdir, "pghad.conf")
    with open(config, "w") as conf:
        conf.write(config_text(tmp_workdir, pgharness.free_port_range(1), name="solo", replicas=1,
                                 synchronous='method = "off";'))
    account.chown(config)
    binary = pgharness.install_program("pghad", os.path.join(tmp_workdir, "bin"), account)
    log_path = os.path.join(tmp_workdir, "pghad.log")
    mount = ('mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal && '
             'mount --bind "$0" /run/systemd/journal && exec "$@"')
    with open(log_path, "w") as log:
        account.chown(log_path)
        stream = os.fstat(log.fileno())
        # systemd's JOURNAL_STREAM names the stream it gave the service as stderr
        environment = pgharness.child_environment({"JOURNAL_STREAM": f"{stream.st_dev}:{stream.st_ino}",
                                                   "PGHA_TEST_INITDB_NOSYNC": "1"})
        daemon = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", mount, directory]
            + account.command([binary, "-c", config]),
            env=environment, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd="/", start_new_session=True)
    try:
        # up to the first action on a member (debug and info entries come before it)
        entries = journal_entries(journal, lambda entry: entry.get("MESSAGE", "").startswith("[solo-0] initialize:"))
        loaded = [entry for entry in entries if entry.get("MESSAGE", "").startswith("configuration loaded from")]
        assert loaded and loaded[0]["PRIORITY"] == "6" and loaded[0]["SYSLOG_IDENTIFIER"] == "pghad", entries
        assert "PGHA_CLUSTER" not in loaded[0]
        # what pghad does to a member carries the cluster and the member
        initialize = [entry for entry in entries if entry.get("MESSAGE", "").startswith("[solo-0] initialize:")]
        assert initialize, entries
        assert (initialize[0]["PRIORITY"], initialize[0]["PGHA_CLUSTER"], initialize[0]["PGHA_MEMBER"]) == \
            ("5", "solo", "solo-0")
        assert {entry["PRIORITY"] for entry in entries} >= {"5", "6", "7"}

        # errors at priority 3: a reload of a broken file
        with open(config, "a") as conf:
            conf.write("clusters = 7;\n")
        daemon.send_signal(signal.SIGHUP)
        # up to the last entry of the rejected reload
        errors = [entry for entry in journal_entries(journal, lambda entry: "keeping the current configuration"
                                                     in entry.get("MESSAGE", ""))
                  if entry["PRIORITY"] == "3"]
        assert any(entry["MESSAGE"].startswith(f"{config}:") for entry in errors), errors
        assert any("keeping the current configuration" in entry["MESSAGE"] for entry in errors), errors
        assert daemon.poll() is None
        # nothing went to stderr meanwhile
        with open(log_path) as log:
            assert log.read() == ""
    finally:
        journal.close()
        daemon.terminate()
        daemon.wait(10)
        pgharness.stop_postmasters_under(tmp_workdir)
