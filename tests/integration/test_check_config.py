"""pghad --check-config and pghactl check: a valid file gets a summary and exit 0,
an invalid one every mistake as FILE:LINE: message and exit 78 (EX_CONFIG); the
other informational options of pghad. Checking needs no privileges, so these run as
whoever runs the tests (root in CI)."""
import errno
import os
import re
import subprocess
import textwrap

import pytest

import pgharness

EXIT_USAGE = 64
EXIT_CONFIG = 78

# Three independent mistakes, each on a known line.
THREE_MISTAKES = textwrap.dedent("""\
    daemon:
    {
      loop_interval_ms = 5;
      log_levle = "debug";
    };

    clusters =
    (
      { name = "test"; port = 6000; },
      { name = "test"; port = 7000; }
    );
    """)

MINIMAL = 'clusters = ( { name = "alpha"; } );\n'

SYNTAX_ERROR = textwrap.dedent("""\
    daemon:
    {
      loop_interval_ms = ;
    };
    """)


def run(argv, cwd=None):
    """Runs a program to completion and returns its CompletedProcess, text captured."""
    return subprocess.run(argv, cwd=cwd, env=pgharness.child_environment(), capture_output=True, text=True,
                          timeout=60)


@pytest.fixture(params=["pghad", "pghactl"])
def check(request):
    """check(path, cwd=None) runs the configuration check of pghad (--check-config -c
    PATH) or of pghactl (check PATH); every test using it runs with both."""
    if request.param == "pghad":
        return lambda path, cwd=None: run([pgharness.built_program("pghad"), "--check-config", "-c", path], cwd)
    return lambda path, cwd=None: run([pgharness.built_program("pghactl"), "check", path], cwd)


def write(directory, name, text):
    """Writes text to directory/name and returns the path."""
    path = os.path.join(directory, name)
    with open(path, "w") as conf:
        conf.write(text)
    return path


def package_version():
    """PACKAGE_VERSION from the build's autoconfig.h."""
    with open(os.path.join(os.environ.get("top_builddir", "."), "autoconfig.h")) as header:
        return re.search(r'#define PACKAGE_VERSION "([^"]*)"', header.read()).group(1)


def test_sample_configuration_is_valid(check):
    sample = os.path.join(os.environ.get("top_builddir", "."), "etc", "pgha.conf")
    assert os.path.isfile(sample), f"{sample} is built by make"
    result = check(sample)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert re.match(re.escape(sample) + r": valid; platform local \(data under /[^)]*\), \d+ clusters?\n",
                    result.stdout)


def test_minimal_configuration_is_valid_with_defaults(check, tmp_workdir):
    path = write(tmp_workdir, "minimal.conf", MINIMAL)
    result = check(path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{path}: valid; platform local")
    assert lines[0].endswith(", 1 cluster")
    assert lines[1] == ("  alpha: 3 members, port 5432-5434, synchronous ANY 1 (required), "
                        "automatic failover after 1500 ms, 0 parameters")


def test_every_mistake_is_reported_with_its_line(check, tmp_workdir):
    path = write(tmp_workdir, "three.conf", THREE_MISTAKES)
    result = check(path)
    assert result.returncode == EXIT_CONFIG
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{path}:3: daemon.loop_interval_ms must be between 100 and 60000 (got 5)",
        f'{path}:4: unknown option "daemon.log_levle" in the configuration (did you mean "daemon.log_level"?)',
        f'{path}:10: duplicate cluster name "test" (first defined at {path}:9)',
        f"{path}: 3 errors",
    ]


def test_messages_name_the_file_as_given(check, tmp_workdir):
    write(tmp_workdir, "three.conf", THREE_MISTAKES)
    result = check("three.conf", cwd=tmp_workdir)
    assert result.returncode == EXIT_CONFIG
    assert result.stderr.splitlines()[0].startswith("three.conf:3: daemon.loop_interval_ms must be")
    assert result.stderr.splitlines()[-1] == "three.conf: 3 errors"


def test_syntax_error_is_reported_with_its_line(check, tmp_workdir):
    path = write(tmp_workdir, "syntax.conf", SYNTAX_ERROR)
    result = check(path)
    assert result.returncode == EXIT_CONFIG
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert re.fullmatch(re.escape(path) + r":3: .*syntax error.*", lines[0])
    assert lines[-1] == f"{path}: 1 error"


# Custom parameters (prefix.name) are written as a group named for their prefix.
PREFIXES = textwrap.dedent("""\
    defaults: { postgresql = { parameters = { auto_explain = { log_min_duration = "1s"; }; }; }; };
    clusters =
    (
      { name = "alpha"; postgresql = { parameters = {
          pg_stat_statements = { track = "all"; };
          auto-explain = { log_analyze = true; };
          auto_explain = {
            log = { min_duration = 5; };
          };
      }; }; }
    );
    """)


def test_a_bad_parameter_prefix_is_reported_with_its_line(check, tmp_workdir):
    path = write(tmp_workdir, "prefixes.conf", PREFIXES)
    result = check(path)
    assert result.returncode == EXIT_CONFIG
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f'{path}:6: clusters.postgresql.parameters: "auto-explain" is not a parameter prefix: it must be an '
        "identifier (letters, digits and '_', not starting with a digit, at most 63 bytes)",
        f"{path}:8: clusters.postgresql.parameters.auto_explain.log: a PostgreSQL parameter name has one dot at "
        "most (prefix.name), so a prefix group cannot hold another group",
        f"{path}: 2 errors",
    ]
    fixed = PREFIXES.replace("auto-explain", "auto_explain_x").replace("log = { min_duration = 5; };", "")
    result = check(write(tmp_workdir, "fixed.conf", fixed))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].endswith(", 3 parameters")


def test_missing_file_is_reported_with_the_reason(check, tmp_workdir):
    path = os.path.join(tmp_workdir, "absent.conf")
    result = check(path)
    assert result.returncode == EXIT_CONFIG
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{path}: cannot read the configuration: {os.strerror(errno.ENOENT)}",
        f"{path}: 1 error",
    ]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a file the account cannot read")
def test_unreadable_file_is_reported_with_the_reason(tmp_workdir, account):
    path = write(tmp_workdir, "private.conf", MINIMAL)
    os.chown(path, 0, 0)
    os.chmod(path, 0o600)
    result = pgharness.run_as_user([pgharness.install_program("pghad", os.path.join(tmp_workdir, "bin"), account),
                                    "--check-config", "-c", path], account=account, capture_output=True, text=True,
                                   timeout=60)
    assert result.returncode == EXIT_CONFIG
    assert result.stderr.splitlines()[0] == f"{path}: cannot read the configuration: {os.strerror(errno.EACCES)}"


def test_pghactl_checks_the_file_given_with_c(tmp_workdir):
    good = write(tmp_workdir, "good.conf", MINIMAL)
    bad = write(tmp_workdir, "bad.conf", THREE_MISTAKES)
    pghactl = pgharness.built_program("pghactl")
    assert run([pghactl, "-c", good, "check"]).returncode == 0
    result = run([pghactl, "-c", bad, "check"])
    assert result.returncode == EXIT_CONFIG
    assert result.stderr.splitlines()[-1] == f"{bad}: 3 errors"


def test_describe_config_lists_every_option():
    result = run([pgharness.built_program("pghad"), "--describe-config"])
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert rows and all(len(row) == 6 for row in rows), "path, type, default, range, reload, doc"
    options = {row[0]: row for row in rows}
    assert options["daemon.loop_interval_ms"][1:5] == ["integer", "500", "100..60000", "reload"]
    assert options["daemon.state_dir"][4] == "restart"
    assert options["daemon.log_level"][1:3] == ["enum", "info"]
    assert options["clusters.name"][2] == "(required)"
    assert options["clusters.members.priority"][1] == "integer"
    assert all(row[5] for row in rows), "every option is documented"


def test_describe_failover_prints_the_table():
    result = run([pgharness.built_program("pghad"), "--describe-failover"])
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert rows and all(len(row) == 4 and all(row) for row in rows), "phase, condition, action, comment"
    assert rows[0][0] == "idle" and rows[-1][0] == "promote"
    assert ["idle", "always", "begin_failover"] in [row[:3] for row in rows]
    assert "(unnamed)" not in result.stdout


@pytest.mark.parametrize("program", ["pghad", "pghactl"])
def test_version(program):
    for flag in ("--version", "-V"):
        result = run([pgharness.built_program(program), flag])
        assert result.returncode == 0
        assert result.stdout == f"{program} (pgha) {package_version()}\n"


@pytest.mark.parametrize("argv, message", [
    (["--no-such-flag"], "unrecognized option '--no-such-flag'"),
    (["-c"], "option requires an argument -- 'c'"),
    (["stray-argument"], 'pghad: unexpected argument "stray-argument"'),
], ids=["unknown-flag", "missing-argument", "stray-argument"])
def test_pghad_command_line_errors_exit_64(argv, message):
    result = run([pgharness.built_program("pghad")] + argv)
    assert result.returncode == EXIT_USAGE
    assert message in result.stderr
    assert "Usage: pghad" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("argv, pattern", [
    (["--no-such-flag"], r"unrecognized option '--no-such-flag'"),
    (["frobnicate"], r"unknown command.*frobnicate"),
    ([], r"^Usage: pghactl"),
], ids=["unknown-flag", "unknown-command", "no-command"])
def test_pghactl_command_line_errors_exit_64(argv, pattern):
    result = run([pgharness.built_program("pghactl")] + argv)
    assert result.returncode == EXIT_USAGE
    assert re.search(pattern, result.stderr, re.MULTILINE)
    assert "Usage: pghactl" in result.stderr
    assert result.stdout == ""
