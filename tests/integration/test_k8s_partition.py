"""Network partitions on Kubernetes: 3 members on 3 nodes, 2 pghad on 2 other nodes and
the clients on a sixth, each node a network namespace (tests/k8s/nodes.py), the real API
server over a bridge, partitions as nftables rules. A writer on the clients' node commits
to whichever member is primary; a second writer, on the old primary's node, commits to it
alone and records what it gets acknowledged. Each test ends with the same checks: no
acknowledged commit missing on the final primary (so nothing the old primary acknowledged
after the promotion, which would be on a fork), the candidate chosen only after the
standbys were cut, and after healing: one primary, every standby streaming, the old
primary rejoined."""
import base64
import importlib.util
import os
import signal
import subprocess
import sys
import time
import urllib.parse

import psycopg2
import pytest

import pgharness
from conftest import has_failed
from test_k8s import REPLICAS, k8s_config, status

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("pgha_nodes", os.path.join(HERE, "..", "k8s", "nodes.py"))
nodes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nodes)

pytestmark = pytest.mark.skipif(bool(os.environ.get("PGHA_REAL_NODE_DIR")),
                                reason="the nodes are network namespaces of the test node agent")

DAEMONS = ("first", "second")


def rewrite_server(path, old, new, out):
    """A copy of kubeconfig path at out, its server old replaced by new."""
    with open(path) as source:
        text = source.read()
    assert old in text, f"{path} does not name {old}"
    with open(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as target:
        target.write(text.replace(old, new))
    return out


class Writer:
    """bench/failover-writer on a node, committing to table through whichever of the
    addresses is primary; its log records every acknowledged commit (monotonic ns)."""

    def __init__(self, cluster, node, addresses, table):
        self.out = os.path.join(cluster.workdir, f"writer-{table}.log")
        self.table = table
        argv = [pgharness.built_program("failover_writer"), "--out", self.out, "--interval-ms", "5",
                "--table", table]
        for address in addresses:
            argv += ["--connect", cluster.conninfo(address)]
        open(self.out, "w").close()
        cluster.account.chown(self.out)
        self.process = pgharness.popen_as_user(argv, account=cluster.account, stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL, wrapper=node.wrapper())

    def events(self, kind):
        with open(self.out) as log:
            return [fields for fields in (line.split() for line in log) if fields and fields[0] == kind]

    def acknowledged(self):
        return {int(fields[1]) for fields in self.events("ack")}

    def acknowledged_after(self, monotonic_ns):
        return {int(fields[1]) for fields in self.events("ack") if int(fields[3]) > monotonic_ns}

    def last_ack_ns(self):
        acks = self.events("ack")
        return int(acks[-1][3]) if acks else None

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class PartitionCluster:
    """A namespace of the API server, its nodes (m0..m2 for the members, p0 and p1 for the
    pghad, c for the clients), a node agent per member node and the pghad."""

    def __init__(self, kube, workdir, account, entrypoint, network):
        self.kube = kube
        self.api = kube.api
        self.workdir = workdir
        self.account = account
        self.network = network
        self.namespace = kube.new_namespace()
        api_url, agent_url = network.proxy(kube.server)
        kubeconfig = kube.apply_rbac(self.namespace, owner=(account.uid, account.gid))
        self.kubeconfig = rewrite_server(kubeconfig, kube.server, api_url, os.path.join(workdir, "pghad.kubeconfig"))
        os.chown(self.kubeconfig, account.uid, account.gid)
        agent_kubeconfig = rewrite_server(kube.kubeconfig, kube.server, agent_url,
                                          os.path.join(workdir, "agent.kubeconfig"))
        self.port = 5432
        self.member_nodes = [network.add_node(f"m{index}") for index in range(REPLICAS)]
        self.daemon_nodes = {name: network.add_node(f"p{index}") for index, name in enumerate(DAEMONS)}
        self.client = network.add_node("c")
        self.agents = []
        for index, node in enumerate(self.member_nodes):
            root = os.path.join(workdir, f"node-m{index}")
            os.makedirs(root, exist_ok=True)
            self.agents.append(kube.start_agent(
                self.namespace, root, entrypoint, account.name, log=os.path.join(workdir, f"agent-m{index}.log"),
                kubeconfig=agent_kubeconfig, wrapper=node.wrapper(),
                extra_args=["--node", f"node-m{index}", "--select", f"member=test-{index}", "--pod-ip", node.address,
                            "--service-host", nodes.HUB_ADDRESS, "--service-port", str(nodes.API_PORT)]))
        self.daemons = {}
        self._passfile = None

    def start_daemon(self, name, lease_seconds=4, isolation_seconds=4):
        daemon = pgharness.Pghad(self.workdir, k8s_config(self.workdir, self.namespace, self.kubeconfig, self.port,
                                                          lease_seconds, name=name,
                                                          isolation_seconds=isolation_seconds),
                                 name=name, env={"PGHA_IDENTITY": name}, account=self.account,
                                 wrapper=self.daemon_nodes[name].wrapper())
        daemon.start()
        daemon.wait_running()
        self.daemons[name] = daemon
        return daemon

    def path(self, kind, name=None):
        base = f"/api/v1/namespaces/{self.namespace}/{kind}"
        return f"{base}/{name}" if name else base

    def pods(self):
        return {pod["metadata"]["name"]: pod for pod in self.api.list(self.path("pods"), label_selector="app=postgres")}

    def passfile(self):
        if self._passfile:
            return self._passfile
        secret = self.api.get(self.path("secrets", "pgha-test"))
        password = base64.b64decode(secret["data"]["superuser-password"]).decode()
        self._passfile = os.path.join(self.workdir, "superuser.pgpass")
        with open(self._passfile, "w") as out:
            out.write(f"*:*:*:postgres:{password}\n")
        os.chmod(self._passfile, 0o600)
        self.account.chown(self._passfile)
        return self._passfile

    def address(self, member):
        return self.member_nodes[int(member.rsplit("-", 1)[1])].address

    def conninfo(self, address):
        return f"host={address} port={self.port} user=postgres dbname=postgres passfile={self.passfile()}"

    def sql(self, member, statement, node=None, check=True):
        """statement on member from node (default: the clients' node); None (check
        false) when it does not answer."""
        def run():
            try:
                with psycopg2.connect(self.conninfo(self.address(member)), connect_timeout=2,
                                      options="-c statement_timeout=5000") as connection:
                    connection.autocommit = True
                    with connection.cursor() as cursor:
                        cursor.execute(statement)
                        return cursor.fetchall() if cursor.description else None
            except psycopg2.Error:
                if check:
                    raise
                return None
        return (node or self.client).run_here(run)

    def holder(self):
        """The pghad holding the cluster's Lease, None while none does."""
        for name in self.daemons:
            try:
                if status(self.workdir, name)["clusters"][0]["lease"]["held"]:
                    return name
            except (OSError, KeyError, IndexError, ValueError):
                continue
        return None

    def healthy(self, after=None):
        """The holder's status once there is one primary and every other member streams
        from it in its synchronous list (with after: from an iteration after that mark)."""
        name = self.holder()
        if name is None:
            return None
        reply = status(self.workdir, name)
        if after is not None and reply["iterations"] <= after.get(name, 0):
            return None
        cluster = reply["clusters"][0]
        members = {member["name"]: member for member in cluster["members"]}
        if len(members) < REPLICAS:
            return None
        if [member["role"] for member in members.values()].count("primary") != 1:
            return None
        for member in members.values():
            if member["role"] != "primary" and (member["state"] != "streaming"
                                                or member["sync_state"] not in ("quorum", "sync")):
                return None
        return name, cluster, members

    def wait_healthy(self, timeout=180, after=None):
        return pgharness.wait_until(lambda: self.healthy(after), timeout=timeout, interval=0.5,
                                    what="a healthy cluster")

    def iteration_marks(self):
        return {name: status(self.workdir, name)["iterations"] for name, daemon in self.daemons.items()
                if daemon.running}

    def rw_member(self):
        pods = self.api.list(self.path("pods"), label_selector="app=postgres,cluster=test,role=primary")
        return [pod["metadata"]["labels"]["member"] for pod in pods if not pod["metadata"].get("deletionTimestamp")]

    def primaries(self):
        """The members that answer, from the clients' node, as read-write."""
        return [f"test-{index}" for index in range(REPLICAS)
                if self.sql(f"test-{index}", "SELECT pg_is_in_recovery()", check=False) == [(False,)]]

    def log_report(self):
        parts = [daemon.log_report() for daemon in self.daemons.values()]
        for index in range(REPLICAS):
            parts.append(pgharness.log_report(f"node agent m{index}", os.path.join(self.workdir, f"agent-m{index}.log")))
        for node in self.network.nodes.values():
            parts.append(f"----- nft {node.name} -----\n{node.rules()}")
        return "\n".join(parts)

    def close(self):
        for daemon in self.daemons.values():
            if daemon.running:
                daemon.stop(signal.SIGKILL)
        for agent in self.agents:
            agent.stop()
        pgharness.stop_postmasters_under(self.workdir)


@pytest.fixture
def cluster(request, kube, tmp_workdir, account):
    if urllib.parse.urlsplit(kube.server).hostname != "127.0.0.1":
        pytest.skip("the nodes reach the API server through a forwarder to a kube-apiserver on loopback")
    entrypoint = pgharness.install_program("pgha_entrypoint", os.path.join(tmp_workdir, "bin"), account)
    network = nodes.Network()
    made = None
    try:
        made = PartitionCluster(kube, tmp_workdir, account, entrypoint, network)
        yield made
    finally:
        if made is not None:
            if has_failed(request):
                print(made.log_report(), file=sys.stderr)
            made.close()
        network.close()


class Run:
    """One partition run: the cluster healthy, both writers committing, then the fault."""

    def __init__(self, cluster):
        self.cluster = cluster
        for name in DAEMONS:
            cluster.start_daemon(name)
        self.holder, _, members = cluster.wait_healthy()
        self.old = next(name for name, member in members.items() if member["role"] == "primary")
        self.old_node = cluster.member_nodes[int(self.old.rsplit("-", 1)[1])]
        addresses = [node.address for node in cluster.member_nodes]
        self.writer = Writer(cluster, cluster.client, addresses, "failover_writer")
        self.side = Writer(cluster, self.old_node, [self.old_node.address], "side_writer")
        pgharness.wait_until(lambda: len(self.writer.acknowledged()) > 50 and len(self.side.acknowledged()) > 20,
                             timeout=60, what="both writers' first commits")
        self.old_uid = cluster.pods()[f"postgres-{self.old}"]["metadata"]["uid"]
        self.marks = {name: daemon.log_mark() for name, daemon in cluster.daemons.items()}
        self.fault_ns = None

    def fault(self, action):
        self.fault_ns = time.monotonic_ns()
        action()

    def wait_promotion(self, timeout=90):
        """Waits until another member answers read-write and the writer commits there;
        returns it. self.promoted_ns: when the writer found it (the promotion is earlier)."""
        cluster = self.cluster

        def promoted():
            connected = [fields for fields in self.writer.events("connected") if int(fields[2]) > self.fault_ns]
            for fields in connected:
                member = f"test-{fields[1]}"
                if member != self.old:
                    return member, int(fields[2])
            return None

        self.new, self.promoted_ns = pgharness.wait_until(promoted, timeout=timeout, interval=0.1,
                                                          what="the writer committing on a new primary")
        before = len(self.writer.acknowledged())
        pgharness.wait_until(lambda: len(self.writer.acknowledged()) > before + 50, timeout=60,
                             what="commits on the new primary")
        print(f"writer on the new primary {self.new} {(self.promoted_ns - self.fault_ns) / 1e9:.2f} s "
              f"after the fault", file=sys.stderr)
        return self.new

    def wait_old_refuses(self, timeout=60):
        """Waits until the old primary, seen from its own node, takes no write (stopped,
        or read-only); returns the seconds since the fault."""
        cluster = self.cluster
        pgharness.wait_until(
            lambda: cluster.sql(self.old, "SELECT pg_is_in_recovery()", node=self.old_node, check=False) != [(False,)],
            timeout=timeout, interval=0.1, what=f"the old primary {self.old} refusing writes")
        elapsed = (time.monotonic_ns() - self.fault_ns) / 1e9
        print(f"old primary refuses writes {elapsed:.2f} s after the fault", file=sys.stderr)
        return elapsed

    def heal_and_check(self):
        cluster = self.cluster
        marks = cluster.iteration_marks()
        cluster.network.heal()
        # after healing: one primary, every standby streaming, the old primary rejoined
        holder, _, members = cluster.wait_healthy(after=marks)
        before = len(self.writer.acknowledged())
        pgharness.wait_until(lambda: len(self.writer.acknowledged()) > before + 20, timeout=60,
                             what="commits after the heal")
        self.writer.stop()
        self.side.stop()
        assert members[self.old]["role"] == "replica" and members[self.old]["state"] == "streaming", members
        assert members[self.new]["role"] == "primary", members
        assert cluster.primaries() == [self.new]
        assert cluster.rw_member() == [self.new]
        # no acknowledged commit missing on the final primary
        rows = {row[0] for row in cluster.sql(self.new, "SELECT id FROM failover_writer")}
        lost = self.writer.acknowledged() - rows
        side_rows = {row[0] for row in cluster.sql(self.new, "SELECT id FROM side_writer")}
        side_lost = self.side.acknowledged() - side_rows
        # nothing acknowledged by the old primary after the promotion was seen (any ack
        # after the actual promotion would be on a fork, so counted as lost above)
        after = self.side.acknowledged_after(self.promoted_ns)
        last = self.side.last_ack_ns()
        print(f"acknowledged: writer {len(self.writer.acknowledged())}, old primary's side "
              f"{len(self.side.acknowledged())}; its last ack {(last - self.fault_ns) / 1e9:.2f} s after the fault",
              file=sys.stderr)
        assert not lost, f"{len(lost)} acknowledged commits lost"
        assert not side_lost, f"{len(side_lost)} commits the old primary acknowledged are lost"
        assert not after, f"{len(after)} commits acknowledged by the old primary after the promotion"
        # the candidate was chosen only after the standbys were cut from the old primary
        daemon = cluster.daemons[self.holder]
        standbys = [f"test-{index}" for index in range(REPLICAS) if f"test-{index}" != self.old]
        pgharness.assert_cut_before_promotion(daemon.log_text(self.marks[self.holder]), self.new, standbys)
        return holder

    def stop(self):
        self.writer.stop()
        self.side.stop()


def partition_run(cluster, fault, during=None):
    """fault(run) starts the partition; during(run), if given, runs once the promotion
    is done and the old primary refuses writes, before the heal."""
    run = Run(cluster)
    try:
        run.fault(lambda: fault(run))
        run.wait_promotion()
        run.wait_old_refuses()
        if during:
            during(run)
        run.heal_and_check()
    finally:
        run.stop()
    return run


def test_b_pghad_cut_from_the_primary_only(cluster):
    """Both pghad lose the primary; the standbys and the clients still reach it."""
    def fault(run):
        for node in cluster.daemon_nodes.values():
            cluster.network.cut(node, run.old_node)

    partition_run(cluster, fault)


def test_c_primary_node_cut_from_the_api_server_and_pghad(cluster):
    """The primary's node hears nothing from the API server (its kubelet never hears the
    deletion, its pod's pgha-entrypoint never sees it) and pghad cannot reach it; the
    standbys and the clients still reach it. The member is not created again while its
    old pod may run; it stops itself (isolated from the API server, its standbys cut)."""
    def fault(run):
        cluster.network.cut_from_api(run.old_node)
        for node in cluster.daemon_nodes.values():
            cluster.network.cut(node, run.old_node)

    def during(run):
        # a few iterations after the promotion, each of which could have created the old
        # member again: its pod is still the old one, being deleted, nothing started
        holder = run.holder
        seen = status(cluster.workdir, holder)["iterations"]
        pgharness.wait_until(lambda: status(cluster.workdir, holder)["iterations"] >= seen + 3, timeout=30,
                             what="three more iterations")
        pod = cluster.pods().get(f"postgres-{run.old}")
        assert pod is not None and pod["metadata"]["uid"] == run.old_uid and pod["metadata"].get("deletionTimestamp")
        log = cluster.daemons[holder].log_text(run.marks[holder])
        for action in ("start", "clone", "rejoin"):
            assert f"[{run.old}] {action}" not in log, log

    run = partition_run(cluster, fault, during)
    # the old pod was removed (its kubelet heard the deletion after the heal) before the
    # member's new pod was bound
    agent_log = open(os.path.join(cluster.workdir, f"agent-m{run.old.rsplit('-', 1)[1]}.log")).read()
    removed = agent_log.index(f"postgres-{run.old}: removed")
    assert agent_log.index(f"postgres-{run.old}: bound to", removed) > removed


def test_a_primary_node_isolated(cluster):
    """The primary's node is cut from everything: API server, pghad, standbys, clients."""
    def fault(run):
        cluster.network.isolate(run.old_node)

    partition_run(cluster, fault)
