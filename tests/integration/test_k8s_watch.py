"""pghad's watches of the API server when the path to it goes silent: pghad alone in a
network namespace (tests/k8s/nodes.py), the real API server reached over the hub's
forwarder, the path cut by an nftables rule that drops packets (no reset, as across a
real partition). The watches are noticed dead within seconds (TCP keepalives and
TCP_USER_TIMEOUT on the API client's connections), not after their own timeout (240 s
plus a margin), and after the heal pghad's view has what changed during the cut."""
import os
import signal
import sys
import time
import urllib.parse

import pytest

import pgharness
from conftest import has_failed
from test_k8s import k8s_config, status
from test_k8s_partition import nodes, rewrite_server

pytestmark = pytest.mark.skipif(bool(os.environ.get("PGHA_REAL_NODE_DIR")),
                                reason="pghad runs in a network namespace of the test")

KEPT_ASIDE = "pgha.io/kept-aside"
CLAIM = "pgdata-postgres-test-0"


class Alone:
    """A namespace of the API server and one pghad, in a node of its own, acting on a
    one-member cluster whose pod never runs (no node agent): its claim is what the test
    changes, and status shows it (kept_aside) as pghad's watch of claims last saw it."""

    def __init__(self, kube, workdir, account, network):
        self.api = kube.api
        self.workdir = workdir
        self.network = network
        self.namespace = kube.new_namespace()
        api_url, _ = network.proxy(kube.server)
        kubeconfig = kube.apply_rbac(self.namespace, owner=(account.uid, account.gid))
        kubeconfig = rewrite_server(kubeconfig, kube.server, api_url, os.path.join(workdir, "pghad.kubeconfig"))
        os.chown(kubeconfig, account.uid, account.gid)
        self.node = network.add_node("p0")
        self.daemon = pgharness.Pghad(workdir, k8s_config(workdir, self.namespace, kubeconfig, 5432, replicas=1),
                                      env={"PGHA_IDENTITY": "pghad"}, account=account, wrapper=self.node.wrapper())
        self.daemon.start()
        self.daemon.wait_running()

    def annotate_claim(self, value):
        self.api.patch(f"/api/v1/namespaces/{self.namespace}/persistentvolumeclaims/{CLAIM}",
                       {"metadata": {"annotations": {KEPT_ASIDE: value}}})

    def kept_aside(self):
        """test-0's kept_aside as pghad's status shows it (None while it does not answer)."""
        try:
            members = status(self.workdir)["clusters"][0]["members"]
        except (OSError, KeyError, IndexError, ValueError):
            return None
        return {member["name"]: member for member in members}.get("test-0", {}).get("kept_aside")

    def wait_kept_aside(self, value, timeout):
        pgharness.wait_until(lambda: self.kept_aside() == value, timeout=timeout, interval=0.2,
                             what=f"status showing kept_aside {value!r}")


@pytest.fixture
def alone(request, kube, tmp_workdir, account):
    if urllib.parse.urlsplit(kube.server).hostname != "127.0.0.1":
        pytest.skip("pghad reaches the API server through a forwarder to a kube-apiserver on loopback")
    network = nodes.Network()
    made = None
    try:
        made = Alone(kube, tmp_workdir, account, network)
        yield made
    finally:
        if made is not None:
            if has_failed(request):
                print(made.daemon.log_report(), file=sys.stderr)
            if made.daemon.running:
                made.daemon.stop(signal.SIGKILL)
        network.close()


def test_a_watch_on_a_silent_connection_is_noticed_and_made_again_after_the_heal(alone):
    # the claim pghad made, and its watch of claims showing a change of it
    pgharness.wait_until(lambda: alone.api.get_or_none(
        f"/api/v1/namespaces/{alone.namespace}/persistentvolumeclaims/{CLAIM}"), timeout=60,
        what=f"pghad creating {CLAIM}")
    alone.annotate_claim("before the cut")
    alone.wait_kept_aside("before the cut", timeout=30)

    mark = alone.daemon.log_mark()
    cut = time.monotonic()
    alone.network.cut_from_api(alone.node)
    # without keepalives the watches would wait for their own end, 270 s away: 60 s is a
    # generous bound for a few seconds, not a measure
    alone.daemon.wait_for_log(r"kubernetes: watching (pods|persistentvolumeclaims|services|leases): ", timeout=60,
                              since=mark)
    print(f"a watch ended {time.monotonic() - cut:.1f} s after the cut", file=sys.stderr)
    alone.daemon.wait_for_log(r"kubernetes: watching persistentvolumeclaims: ", timeout=60, since=mark)
    # a change pghad cannot hear of while cut
    alone.annotate_claim("during the cut")
    assert alone.kept_aside() in ("before the cut", None)

    heal = alone.daemon.log_mark()
    alone.network.heal()
    alone.daemon.wait_for_log(r"kubernetes: watching persistentvolumeclaims again", timeout=60, since=heal)
    alone.wait_kept_aside("during the cut", timeout=30)
    # and the watch goes on after the list: a change after the heal is seen too
    alone.annotate_claim("after the heal")
    alone.wait_kept_aside("after the heal", timeout=30)
