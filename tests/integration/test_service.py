"""pghad run the way systemd runs it, with a notification socket and a watchdog, on a
real two-member local cluster: the PostgreSQL servers it starts inherit none of the
service manager's variables, and STATUS= tells the cluster's roles and synchronous
state."""
import os
import time

import pgharness

# What systemd gives a Type=notify service with WatchdogSec=, and what no program pghad
# starts may see: a postgres that used NOTIFY_SOCKET could get pghad's unit declared
# ready, reloading or stopped (it happened to Patroni).
SERVICE_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def config_text(workdir, port):
    return f"""
daemon: {{
  state_dir = "{workdir}/state";
  control_socket = "{workdir}/pghad.sock";
  loop_interval_ms = 200;
  log_level = "debug";
}};
platform: {{ local: {{ base_dir = "{workdir}/clusters"; }}; }};
clusters = ( {{
  name = "svc";
  replicas = 2;
  port = {port};
  synchronous = {{ method = "first"; number = 1; }};
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
