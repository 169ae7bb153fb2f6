"""pytest fixtures of pgha's integration tests, built on pgharness.

Logs of the programs a test ran (PostgreSQL's, pghad's) are printed to stderr in the
test's teardown when it failed, so pytest shows them under the failure.
"""
import sys

import pytest

import pgharness


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keeps each phase's report on the test item (item.rep_setup, item.rep_call) so
    that fixtures can tell in their teardown whether the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def has_failed(request):
    """True when the setup or the body of the requesting test failed."""
    return any(getattr(getattr(request.node, f"rep_{when}", None), "failed", False) for when in ("setup", "call"))


@pytest.fixture(scope="session")
def account():
    """The unprivileged account PostgreSQL and pghad run as (see pgharness.default_account)."""
    return pgharness.default_account()


@pytest.fixture
def tmp_workdir(account):
    """A fresh directory under /tmp owned by the test account, removed afterwards."""
    path = pgharness.make_workdir("pgha-test-", account)
    yield path
    pgharness.remove_tree(path)


@pytest.fixture
def postgres(request, account):
    """A started, ready PostgreSQL server in a directory of its own; stopped and
    removed afterwards, its log printed if the test failed."""
    # a missing PostgreSQL fails rather than skips: a suite that silently skips its
    # real-server tests would pass while proving nothing
    if pgharness.postgres_bindir() is None:
        pytest.fail("PostgreSQL's server programs (initdb, postgres) are not installed: "
                    "run scripts/install-deps test")
    with pgharness.PostgresServer(account=account) as server:
        yield server
        if has_failed(request):
            print(server.log_report(), file=sys.stderr)


@pytest.fixture
def pghad(request, tmp_workdir, account):
    """A factory: pghad(config_text, name="pghad", env=None, wait_running=True) starts
    a pghad in tmp_workdir and returns its pgharness.Pghad, after it entered its loop
    unless wait_running is false. Every pghad started is killed afterwards, its log
    printed if the test failed."""
    daemons = []

    def start(config_text, name="pghad", env=None, wait_running=True):
        daemon = pgharness.Pghad(tmp_workdir, config_text, name=name, env=env, account=account)
        daemons.append(daemon)
        daemon.start()
        if wait_running:
            daemon.wait_running()
        return daemon

    yield start
    failed = has_failed(request)
    for daemon in daemons:
        if failed:
            print(daemon.log_report(), file=sys.stderr)
        daemon.close()
    pgharness.stop_postmasters_under(tmp_workdir)
