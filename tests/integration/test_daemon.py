"""pghad as a running daemon, run as the unprivileged test account: start, the loop,
reloads (applied, rejected, refused, queued), stopping, the service manager's
notifications and watchdog, and refusing to start (as root, or with an invalid
configuration)."""
import errno
import os
import re
import signal
import subprocess
import time

import pytest

import pgharness

EXIT_PERMISSION = 77
EXIT_CONFIG = 78


def daemon_config(workdir, clusters=("alpha",), state_dir="state", loop_interval_ms=100, cluster_lines=()):
    """A configuration whose directories and socket lie in workdir, with debug logging,
    the named clusters on ports that do not overlap, and cluster_lines added to the
    first cluster."""
    daemon_lines = [
        f'  state_dir = "{os.path.join(workdir, state_dir)}";',
        f'  control_socket = "{os.path.join(workdir, "pghad.sock")}";',
        f"  loop_interval_ms = {loop_interval_ms};",
        '  log_level = "debug";',
    ]
    cluster_blocks = []
    for index, name in enumerate(clusters):
        lines = [f'    name = "{name}";', f"    port = {6000 + 10 * index};"]
        if index == 0:
            lines += [f"    {line}" for line in cluster_lines]
        cluster_blocks.append("  {\n" + "\n".join(lines) + "\n  }")
    return "\n".join([
        "daemon:",
        "{",
        *daemon_lines,
        "};",
        "",
        "platform:",
        "{",
        '  type = "local";',
        f'  local: {{ base_dir = "{os.path.join(workdir, "clusters")}"; }};',
        "};",
        "",
        "clusters =",
        "(",
        ",\n".join(cluster_blocks),
        ");",
        "",
    ])


def broken_config(workdir):
    """A configuration with two mistakes; returns (text, [(line, message), ...])."""
    text = daemon_config(workdir, loop_interval_ms=50, cluster_lines=["replica = 2;"])
    return text, [
        (line_of(text, "loop_interval_ms = 50"), "daemon.loop_interval_ms must be between 100 and 60000 (got 50)"),
        (line_of(text, "replica = 2"), 'unknown option "replica" in cluster "alpha" (did you mean "replicas"?)'),
    ]


def line_of(text, needle):
    """The number (from 1) of the first line of text containing needle."""
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number
    raise ValueError(f"{needle!r} not in the configuration")



def monotonic_usec():
    """CLOCK_MONOTONIC in microseconds, the clock of MONOTONIC_USEC."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


@pytest.mark.skipif(os.geteuid() != 0, reason="only meaningful when the tests run as root")
def test_refuses_to_run_as_root(tmp_workdir):
    path = os.path.join(tmp_workdir, "pghad.conf")
    with open(path, "w") as conf:
        conf.write(daemon_config(tmp_workdir))
    result = subprocess.run([pgharness.built_program("pghad"), "-c", path], env=pgharness.child_environment(),
                            capture_output=True, text=True, timeout=10)
    assert result.returncode == EXIT_PERMISSION
    assert "pghad must not run as root" in result.stderr
    assert "configuration loaded" not in result.stderr


def test_starts_as_the_account_and_iterates(pghad, tmp_workdir, account):
    daemon = pghad(daemon_config(tmp_workdir))
    assert pgharness.proc_ids(daemon.pid, "Uid") == [account.uid] * 4
    assert pgharness.proc_ids(daemon.pid, "Gid") == [account.gid] * 4
    log = daemon.log_text()
    assert f"INFO: configuration loaded from {daemon.config_path}: 1 cluster on the local platform" in log
    assert "INFO: pghad running: loop every 100 ms" in log
    daemon.wait_for_log(r"DEBUG: loop iteration 1$")
    daemon.wait_for_log(r"DEBUG: loop iteration 3$")
    assert daemon.running


def test_reload_applies_a_valid_change(pghad, tmp_workdir):
    daemon = pghad(daemon_config(tmp_workdir))
    mark = daemon.log_mark()
    daemon.write_config(daemon_config(tmp_workdir, clusters=("alpha", "beta")))
    daemon.reload()
    daemon.wait_for_log(f"NOTICE: configuration reloaded from {daemon.config_path}: 2 clusters$", since=mark)
    assert f"INFO: reloading the configuration from {daemon.config_path}" in daemon.log_text(mark)
    assert "ERROR" not in daemon.log_text(mark)
    after_reload = daemon.log_mark()
    daemon.wait_for_log(r"loop iteration \d+$", since=after_reload)
    assert daemon.running


def test_reload_keeps_the_configuration_when_the_file_is_broken(pghad, tmp_workdir):
    daemon = pghad(daemon_config(tmp_workdir))
    text, mistakes = broken_config(tmp_workdir)
    mark = daemon.log_mark()
    daemon.write_config(text)
    daemon.reload()
    daemon.wait_for_log(f"ERROR: 2 errors in {daemon.config_path}: keeping the current configuration$", since=mark)
    log = daemon.log_text(mark)
    for line, message in mistakes:
        assert f"ERROR: {daemon.config_path}:{line}: {message}\n" in log
    assert "configuration reloaded" not in log
    assert daemon.running
    daemon.wait_for_log(r"loop iteration \d+$", since=daemon.log_mark())

    mark = daemon.log_mark()
    daemon.write_config(daemon_config(tmp_workdir, clusters=("alpha", "beta", "gamma")))
    daemon.reload()
    daemon.wait_for_log(f"NOTICE: configuration reloaded from {daemon.config_path}: 3 clusters$", since=mark)


def test_reload_refuses_to_change_the_state_directory(pghad, tmp_workdir):
    daemon = pghad(daemon_config(tmp_workdir))
    old = os.path.join(tmp_workdir, "state")
    new = os.path.join(tmp_workdir, "elsewhere")
    # the refused change comes with an acceptable one, which must not be applied alone
    text = daemon_config(tmp_workdir, clusters=("alpha", "beta"), state_dir="elsewhere")
    mark = daemon.log_mark()
    daemon.write_config(text)
    daemon.reload()
    daemon.wait_for_log(f"ERROR: 1 error in {daemon.config_path}: keeping the current configuration$", since=mark)
    line = line_of(text, "state_dir")
    assert (f'ERROR: {daemon.config_path}:{line}: daemon.state_dir cannot change while pghad runs '
            f'("{old}", now "{new}"): restart pghad to apply it\n') in daemon.log_text(mark)
    assert "configuration reloaded" not in daemon.log_text(mark)
    assert daemon.running
    daemon.wait_for_log(r"loop iteration \d+$", since=daemon.log_mark())

    mark = daemon.log_mark()
    daemon.write_config(daemon_config(tmp_workdir, clusters=("alpha", "beta")))
    daemon.reload()
    daemon.wait_for_log(f"NOTICE: configuration reloaded from {daemon.config_path}: 2 clusters$", since=mark)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stops_on_signal(pghad, tmp_workdir, signum):
    daemon = pghad(daemon_config(tmp_workdir))
    mark = daemon.log_mark()
    assert daemon.stop(signum) == 0
    # the signal is named either way: "SIGTERM" or "Terminated"
    named = f"({re.escape(signum.name)}|{re.escape(signal.strsignal(signum))})"
    assert re.search(f"NOTICE: received {named}: stopping pghad \\(PostgreSQL keeps running\\)$",
                     daemon.log_text(mark), re.MULTILINE)


def statuses(messages):
    """The STATUS= values among messages, in order."""
    return [message.get("STATUS") for message in messages if "STATUS" in message]


def reload_messages(manager, seen):
    """The messages of one reload, from RELOADING=1 to READY=1, after checking that only
    the STATUS= updates of loop iterations came before it. Everything received is added
    to seen."""
    before = manager.wait_for("RELOADING", "1")
    seen += before
    assert all(set(message.fields) == {"STATUS"} for message in before[:-1]), before
    during = manager.wait_for("READY", "1")
    seen += during
    return before[-1:] + during


def test_notifies_the_service_manager(pghad, tmp_workdir, account):
    with pgharness.NotifySocket(os.path.join(tmp_workdir, "notify.sock"), account) as manager:
        daemon = pghad(daemon_config(tmp_workdir), env=manager.environment(), wait_running=False)
        seen = []

        # ready once the configuration is loaded and one iteration is done: its status, then READY=1
        messages = manager.wait_for("READY", "1")
        seen += messages
        assert "DEBUG: loop iteration 1\n" in daemon.log_text()
        assert len(messages) == 2 and messages[1].text == "READY=1", messages
        # the first iteration found nothing yet: alpha's 3 members are still to be made
        assert messages[0].get("STATUS").startswith("alpha: no primary, 0/2 standbys streaming"), messages
        assert all((message.pid, message.uid) == (daemon.pid, account.uid) for message in messages)

        # a good reload: RELOADING=1 with the time, the new status, READY=1, nothing else
        before = monotonic_usec()
        daemon.write_config(daemon_config(tmp_workdir, clusters=("alpha", "beta")))
        daemon.reload()
        messages = reload_messages(manager, seen)
        after = monotonic_usec()
        assert [set(message.fields) for message in messages] == [{"RELOADING", "MONOTONIC_USEC"}, {"STATUS"},
                                                                 {"READY"}]
        assert messages[0].get("RELOADING") == "1"
        assert before <= int(messages[0].get("MONOTONIC_USEC")) <= after
        # the observations were of the old configuration: the next iteration makes new ones
        assert statuses(messages) == ["alpha: not observed yet; beta: not observed yet"]

        # an iteration then reports what it observed, once, as the status changes
        messages = manager.wait_for("STATUS")
        seen += messages
        assert re.match(r"^alpha: (no )?primary.*; beta: (no )?primary", messages[-1].get("STATUS")), messages

        # a bad reload: the same sequence, with the first error in the status
        text, mistakes = broken_config(tmp_workdir)
        daemon.write_config(text)
        daemon.reload()
        messages = reload_messages(manager, seen)
        assert [set(message.fields) for message in messages] == [{"RELOADING", "MONOTONIC_USEC"}, {"STATUS"},
                                                                 {"READY"}]
        line, error = mistakes[0]
        rejected = f"config rejected: {daemon.config_path}:{line}: {error}; "
        assert statuses(messages)[0].startswith(rejected + "alpha: "), messages
        assert "; beta: " in statuses(messages)[0]
        # the rejection stays in the status line of the iterations that follow
        messages = manager.wait_for("STATUS")
        seen += messages
        assert messages[-1].get("STATUS").startswith(rejected), messages

        # the next good reload clears the rejection
        daemon.write_config(daemon_config(tmp_workdir, clusters=("alpha",)))
        daemon.reload()
        messages = reload_messages(manager, seen)
        assert statuses(messages) == ["alpha: not observed yet"]

        daemon.send_signal(signal.SIGTERM)
        messages = manager.wait_for("STOPPING", "1")
        seen += messages
        assert messages[-1].text == "STOPPING=1"
        assert messages[-1].pid == daemon.pid
        assert daemon.wait() == 0
        # without WATCHDOG_USEC, no ping at all
        assert not [message for message in seen if "WATCHDOG" in message]
        assert all(message.pid == daemon.pid for message in seen)


def receive_for(manager, seconds):
    """Every message that arrives within seconds."""
    messages = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            messages.append(manager.receive(left))
        except AssertionError:
            break
    return messages


def pings(messages):
    return [message for message in messages if message.get("WATCHDOG") == "1"]


def test_watchdog_is_fed_by_loop_iterations(pghad, tmp_workdir, account):
    stall = os.path.join(tmp_workdir, "stall")
    with pgharness.NotifySocket(os.path.join(tmp_workdir, "notify.sock"), account) as manager:
        environment = {**manager.environment(), "WATCHDOG_USEC": "1000000", "PGHA_TEST_STALL_FILE": stall}
        daemon = pghad(daemon_config(tmp_workdir), env=environment, wait_running=False)
        manager.wait_for("READY", "1")
        daemon.wait_for_log(r"INFO: watchdog: WATCHDOG=1 every 500 ms while the loop iterates$")

        # the loop runs: a ping every half second
        received = pings(receive_for(manager, 2.2))
        assert 3 <= len(received) <= 5, received
        assert all(message.text == "WATCHDOG=1" and message.pid == daemon.pid for message in received)

        # the loop hangs (the test hook blocks the next iteration): no more pings
        mark = daemon.log_mark()
        open(stall, "w").close()
        daemon.wait_for_log(f"WARNING: test hook: {re.escape(stall)} exists, the loop stalls in the iteration",
                            since=mark)
        receive_for(manager, 0.05)  # what was sent before the stall began
        assert receive_for(manager, 2.5) == []
        assert daemon.running

        # the hang ends: iterations and pings resume
        os.unlink(stall)
        manager.wait_for("WATCHDOG", "1", timeout=3)
        daemon.wait_for_log("WARNING: test hook: .* removed, the iteration goes on", since=mark)


def test_watchdog_pings_between_iterations_longer_than_it(pghad, tmp_workdir, account):
    # an iteration every 3 s, a watchdog of 1 s: waiting for the next iteration is not a hang
    with pgharness.NotifySocket(os.path.join(tmp_workdir, "notify.sock"), account) as manager:
        environment = {**manager.environment(), "WATCHDOG_USEC": "1000000"}
        daemon = pghad(daemon_config(tmp_workdir, loop_interval_ms=3000), env=environment, wait_running=False)
        manager.wait_for("READY", "1")
        mark = daemon.log_mark()
        received = pings(receive_for(manager, 4))
        assert len(received) >= 6, received
        assert len(re.findall(r"loop iteration \d+$", daemon.log_text(mark), re.MULTILINE)) <= 2
        assert "not feeding the watchdog" not in daemon.log_text()


def test_watchdog_of_another_process_is_ignored(pghad, tmp_workdir, account):
    # WATCHDOG_PID names the process systemd watches; a pghad that inherited the variables
    # from another service must not ping on its behalf
    with pgharness.NotifySocket(os.path.join(tmp_workdir, "notify.sock"), account) as manager:
        environment = {**manager.environment(), "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}
        daemon = pghad(daemon_config(tmp_workdir), env=environment, wait_running=False)
        manager.wait_for("READY", "1")
        assert pings(receive_for(manager, 1.5)) == []
        assert "watchdog" not in daemon.log_text()


def test_a_sighup_during_a_reload_is_queued(pghad, tmp_workdir, account):
    stall = os.path.join(tmp_workdir, "stall")
    with pgharness.NotifySocket(os.path.join(tmp_workdir, "notify.sock"), account) as manager:
        environment = {**manager.environment(), "PGHA_TEST_STALL_FILE": stall}
        daemon = pghad(daemon_config(tmp_workdir), env=environment, wait_running=False)
        manager.wait_for("READY", "1")
        seen = []

        # the first reload reads two clusters, then hangs before applying them
        open(stall, "w").close()
        mark = daemon.log_mark()
        daemon.write_config(daemon_config(tmp_workdir, clusters=("alpha", "beta")))
        daemon.reload()
        seen += manager.wait_for("RELOADING", "1")
        daemon.wait_for_log("WARNING: test hook: .* exists, the loop stalls in the reload", since=mark)

        # a second SIGHUP, for a third cluster, arrives during it
        daemon.write_config(daemon_config(tmp_workdir, clusters=("alpha", "beta", "gamma")))
        daemon.reload()
        assert receive_for(manager, 0.5) == []
        os.unlink(stall)

        # the first reload finishes, then the second one runs: both are reported
        first = manager.wait_for("READY", "1")
        assert statuses(first) == ["alpha: not observed yet; beta: not observed yet"]
        second = reload_messages(manager, seen)
        assert "MONOTONIC_USEC" in second[0]
        assert statuses(second) == ["alpha: not observed yet; beta: not observed yet; gamma: not observed yet"]
        log = daemon.log_text(mark)
        assert log.count("NOTICE: configuration reloaded from") == 2
        assert "NOTICE: configuration reloaded from {}: 3 clusters".format(daemon.config_path) in log


def test_invalid_configuration_at_start_exits_78(pghad, tmp_workdir):
    text, mistakes = broken_config(tmp_workdir)
    daemon = pghad(text, wait_running=False)
    assert daemon.wait() == EXIT_CONFIG
    log = daemon.log_text()
    for line, message in mistakes:
        assert f"ERROR: {daemon.config_path}:{line}: {message}\n" in log
    assert f"ERROR: {daemon.config_path}: 2 errors, not starting\n" in log
    assert "pghad running" not in log


def test_missing_configuration_at_start_exits_78(tmp_workdir, account):
    daemon = pgharness.Pghad(tmp_workdir, "", account=account)
    os.unlink(daemon.config_path)
    with daemon:
        assert daemon.wait() == EXIT_CONFIG
    log = daemon.log_text()
    assert f"ERROR: {daemon.config_path}: cannot read the configuration: {os.strerror(errno.ENOENT)}\n" in log
    assert f"ERROR: {daemon.config_path}: 1 error, not starting\n" in log
