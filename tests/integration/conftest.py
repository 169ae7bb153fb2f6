"""pytest fixtures of pgha's integration tests, built on pgharness.

Logs of the programs a test ran (PostgreSQL's, pghad's) are printed to stderr in the
test's teardown when it failed, so pytest shows them under the failure.
"""
import importlib.util
import os
import shutil
import sys
import tempfile

import pytest

import fakeapi
import pgharness


def _load_kube_env():
    """tests/k8s/kube-env.py, loaded by path (its name is not a module name)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "k8s", "kube-env.py")
    spec = importlib.util.spec_from_file_location("pgha_kube_env", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


kube_env = _load_kube_env()


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


@pytest.fixture(scope="module")
def pki():
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made with
    openssl (fakeapi.make_pki), for a FakeAPI over TLS."""
    if not shutil.which("openssl"):
        pytest.fail("openssl is not installed (Debian package openssl)")
    directory = tempfile.mkdtemp(prefix="pgha-test-pki-")
    fakeapi.make_pki(directory)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


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


# ---- Kubernetes: a real kube-apiserver, a test node agent ----

@pytest.fixture(scope="session")
def kube():
    """The Kubernetes cluster of the tests (tests/k8s/kube-env.py), started once per
    pytest run: the one of $PGHA_TEST_KUBECONFIG if set, else etcd and kube-apiserver on
    loopback ($PGHA_KUBE_APISERVER, else the binary tests/k8s/build-apiserver cached,
    building it if it can). Skipped only when there is neither a cluster nor a binary,
    nor a way to build one; a binary that does not start fails. .api is an admin
    kube_env.Api, .kubeconfig the admin kubeconfig."""
    if not os.environ.get("PGHA_TEST_KUBECONFIG") and kube_env.find_apiserver() is None:
        built, why = kube_env.build_apiserver()
        if built is None:
            pytest.skip("no Kubernetes API server: tests/k8s/build-apiserver could not build one "
                        f"({why or 'no reason given'}), and PGHA_TEST_KUBECONFIG is not set")
        os.environ["PGHA_KUBE_APISERVER"] = built
    try:
        cluster = kube_env.start()
    except kube_env.SetupError as error:
        pytest.fail(f"the Kubernetes API server did not start: {error}")
    yield cluster
    cluster.close()


@pytest.fixture
def kube_namespace(kube):
    """A fresh namespace of the kube cluster, for this test only."""
    return kube.new_namespace()


def default_entrypoint():
    """pgha-entrypoint as built: $PGHA_ENTRYPOINT, else src/pgha-entrypoint of the build tree."""
    return os.environ.get("PGHA_ENTRYPOINT") or os.path.join(
        os.path.abspath(os.environ.get("top_builddir", ".")), "src", "pgha-entrypoint")


@pytest.fixture
def node_agent(request, kube, account):
    """A factory: node_agent(namespace, entrypoint=None, extra_args=()) starts
    tests/k8s/node-agent.py for namespace, running pods as the test account with
    command pgha-entrypoint mapped to entrypoint (default: default_entrypoint()). Returns
    a kube_env.AgentProcess (.root, .volume_dir(claim), .pod_log(name), .pod_logs(),
    .log_text()).
    Every agent is stopped afterwards (its pods' processes die with it), its log and
    its pods' output printed if the test failed."""
    agents = []

    def start(namespace, entrypoint=None, extra_args=()):
        root = pgharness.make_workdir("pgha-node-", account)
        agent = kube.start_agent(namespace, root, entrypoint or default_entrypoint(), account.uid,
                                 extra_args=extra_args)
        agents.append(agent)
        return agent

    yield start
    failed = has_failed(request)
    for agent in agents:
        agent.stop()
        if failed:
            print(agent.log_report(), file=sys.stderr)
            for log in agent.pod_logs():
                print(pgharness.log_report(f"pod {os.path.basename(log)[:-4]}", log), file=sys.stderr)
        pgharness.remove_tree(agent.root)
    if failed and hasattr(kube, "log_report"):
        print(kube.log_report(30), file=sys.stderr)
