"""pghactl against a running pghad over the control socket: status (table and JSON),
reload that applies or refuses a file and shows every error, one pghad per socket,
a stale socket left by a crash, and a daemon that is not there."""
import json
import os
import socket
import stat

import pgharness
from test_daemon import broken_config, daemon_config

EXIT_FAILURE = 1
EXIT_CONFIG = 78


def pghactl(workdir, account, *arguments):
    """Runs pghactl as the test account with the daemon's configuration of workdir."""
    binary = pgharness.install_program("pghactl", os.path.join(workdir, "bin"), account)
    return pgharness.run_as_user([binary, "-c", os.path.join(workdir, "pghad.conf"), *arguments],
                                 account=account, capture_output=True, text=True, timeout=30)


def request(socket_path, line):
    """Sends one raw line to the control socket and returns the answer line, decoded."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(10)
        connection.connect(socket_path)
        connection.sendall(line.encode() + b"\n")
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = connection.recv(4096)
            assert chunk, "pghad closed the connection without answering"
            answer += chunk
    return json.loads(answer)


def test_status_shows_the_running_configuration(pghad, tmp_workdir, account):
    daemon = pghad(daemon_config(tmp_workdir, clusters=("alpha", "beta")))

    table = pghactl(tmp_workdir, account, "status")
    assert table.returncode == 0, table.stderr
    assert f"(pid {daemon.pid})" in table.stdout
    lines = {line.split()[0]: line.split() for line in table.stdout.splitlines() if line[:5] in ("alpha", "beta ")}
    assert lines["alpha"][1:3] == ["3", "6000"]
    assert lines["beta"][1:3] == ["3", "6010"]
    assert "rejected" not in table.stdout

    answer = pghactl(tmp_workdir, account, "status", "--json")
    assert answer.returncode == 0, answer.stderr
    status = json.loads(answer.stdout)
    assert status["ok"] is True
    assert status["pid"] == daemon.pid
    assert status["config"] == daemon.config_path
    assert status["reload_errors"] == []
    assert [cluster["name"] for cluster in status["clusters"]] == ["alpha", "beta"]
    assert status["clusters"][0]["synchronous"] == {"method": "any", "number": 1, "required": True}


def test_socket_is_private_to_the_daemon_user_and_group(pghad, tmp_workdir):
    pghad(daemon_config(tmp_workdir))
    mode = os.stat(os.path.join(tmp_workdir, "pghad.sock")).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o660


def test_reload_reports_every_error_and_keeps_the_configuration(pghad, tmp_workdir, account):
    daemon = pghad(daemon_config(tmp_workdir))
    text, expected = broken_config(tmp_workdir)
    daemon.write_config(text)

    refused = pghactl(tmp_workdir, account, "reload")
    assert refused.returncode == EXIT_CONFIG
    for line, message in expected:
        assert f"{daemon.config_path}:{line}: {message}" in refused.stderr
    assert daemon.running

    status = pghactl(tmp_workdir, account, "status")
    assert "the last reload was rejected; pghad runs the previous configuration" in status.stdout
    for line, message in expected:
        assert f"{daemon.config_path}:{line}: {message}" in status.stdout
    as_json = json.loads(pghactl(tmp_workdir, account, "status", "--json").stdout)
    assert len(as_json["reload_errors"]) == len(expected)
    assert [cluster["name"] for cluster in as_json["clusters"]] == ["alpha"]

    daemon.write_config(daemon_config(tmp_workdir, clusters=("alpha", "gamma")))
    applied = pghactl(tmp_workdir, account, "reload")
    assert applied.returncode == 0, applied.stderr
    assert "configuration reloaded" in applied.stdout
    as_json = json.loads(pghactl(tmp_workdir, account, "status", "--json").stdout)
    assert as_json["reload_errors"] == []
    assert [cluster["name"] for cluster in as_json["clusters"]] == ["alpha", "gamma"]


def test_reload_with_an_unreadable_configuration_uses_the_given_socket(pghad, tmp_workdir, account):
    """A broken file must not keep the operator from reaching pghad: --socket does."""
    daemon = pghad(daemon_config(tmp_workdir))
    daemon.write_config("clusters = ( { name = ; } );\n")
    binary = pgharness.install_program("pghactl", os.path.join(tmp_workdir, "bin"), account)
    refused = pgharness.run_as_user([binary, "-s", os.path.join(tmp_workdir, "pghad.sock"), "reload"],
                                    account=account, capture_output=True, text=True, timeout=30)
    assert refused.returncode == EXIT_CONFIG
    assert f"{daemon.config_path}:1: syntax error" in refused.stderr


def test_a_second_pghad_on_the_same_socket_refuses_to_start(pghad, tmp_workdir, account):
    first = pghad(daemon_config(tmp_workdir))
    second = pghad(daemon_config(tmp_workdir), name="second", wait_running=False)
    assert second.wait(timeout=10) == EXIT_FAILURE
    assert "another pghad is running" in second.log_text()
    assert first.running
    assert pghactl(tmp_workdir, account, "status").returncode == 0


def test_a_socket_left_by_a_crash_is_replaced(pghad, tmp_workdir, account):
    crashed = pghad(daemon_config(tmp_workdir))
    crashed.crash()
    assert os.path.exists(os.path.join(tmp_workdir, "pghad.sock")), "SIGKILL leaves the socket behind"

    restarted = pghad(daemon_config(tmp_workdir), name="restarted")
    status = json.loads(pghactl(tmp_workdir, account, "status", "--json").stdout)
    assert status["pid"] == restarted.pid


def test_socket_is_removed_when_pghad_stops(pghad, tmp_workdir):
    daemon = pghad(daemon_config(tmp_workdir))
    assert daemon.stop() == 0
    assert not os.path.exists(os.path.join(tmp_workdir, "pghad.sock"))


def test_requests_that_are_not_commands_are_answered_with_an_error(pghad, tmp_workdir):
    pghad(daemon_config(tmp_workdir))
    path = os.path.join(tmp_workdir, "pghad.sock")
    assert request(path, "not json") == {"ok": False, "error": "a request is one JSON object per line"}
    assert request(path, '{"command": "explode"}') == {"ok": False, "error": "unknown command: explode"}
    assert request(path, '{"verb": "status"}')["ok"] is False
    assert request(path, '{"command": "status"}')["ok"] is True


def test_a_member_that_does_not_exist_is_named_in_the_refusal(pghad, tmp_workdir, account):
    """Issue 18: the refusal of a mistyped member read a vararg never passed and came out
    as "cannot encode the reply"; pghactl prints pghad's reason as pghad gave it."""
    pghad(daemon_config(tmp_workdir, clusters=("alpha", "beta")))
    reason = "nope is not a member of alpha (its members are alpha-0, alpha-1 and alpha-2)"
    for command in ("failover", "switchover"):
        result = pghactl(tmp_workdir, account, command, "alpha", "--to", "nope")
        assert result.returncode == EXIT_FAILURE
        assert result.stderr == f"pghactl: {command} refused: {reason}\n"
        assert request(os.path.join(tmp_workdir, "pghad.sock"),
                       json.dumps({"command": command, "cluster": "alpha", "to": "nope"})) == {
            "ok": False, "error": reason}
    result = pghactl(tmp_workdir, account, "failover", "beta", "--to", "alpha-1", "--force")
    assert result.stderr == ("pghactl: failover refused: alpha-1 is not a member of beta "
                             "(its members are beta-0, beta-1 and beta-2)\n")
    result = pghactl(tmp_workdir, account, "pause", "nosuch")
    assert (result.returncode, result.stderr) == (EXIT_FAILURE, "pghactl: pause refused: no cluster named nosuch\n")


def test_requests_with_fields_of_the_wrong_type_are_refused(pghad, tmp_workdir):
    pghad(daemon_config(tmp_workdir))
    path = os.path.join(tmp_workdir, "pghad.sock")
    assert request(path, '{"command": "failover", "cluster": "alpha", "to": 1}') == {
        "ok": False, "error": '"to" must be a string'}
    assert request(path, '{"command": "pause", "cluster": ["alpha"]}') == {
        "ok": False, "error": '"cluster" must be a string'}
    assert request(path, '{"command": "plan", "file": "/dev/null"}') == {
        "ok": False, "error": "/dev/null is not a regular file"}
    assert request(path, '{"command": "status"}')["ok"] is True


def test_pghactl_without_a_daemon_fails_clearly(tmp_workdir, account):
    with open(os.path.join(tmp_workdir, "pghad.conf"), "w") as config:
        config.write(daemon_config(tmp_workdir))
    result = pghactl(tmp_workdir, account, "status")
    assert result.returncode == EXIT_FAILURE
    assert "cannot connect to pghad at" in result.stderr
    assert "is pghad running?" in result.stderr
