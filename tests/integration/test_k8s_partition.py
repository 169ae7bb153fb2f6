"""Network partitions on Kubernetes: 3 members on 3 nodes, 2 pghad on 2 other nodes and
the clients on a sixth, each node a network namespace (tests/k8s/nodes.py), the real API
server over a bridge, partitions as nftables rules. A writer on the clients' node commits
to whichever member is primary; a second writer, on the old primary's node, commits to it
alone and records what it gets acknowledged. Each test ends with the same checks: no
acknowledged commit missing on the final primary (so nothing the old primary acknowledged
after the promotion, which would be on a fork), the candidate chosen only after the
standbys were cut, and after healing: one primary, every standby streaming, the old
primary rejoined. The tests of pods deleted at once (grace 0) on a node whose agent is cut
check that a member is made again only once its old pod is gone from its node."""
import base64
import importlib.util
import json
import os
import random
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

    def start_daemon(self, name, lease_seconds=4, isolation_seconds=4, env=None):
        daemon = pgharness.Pghad(self.workdir, k8s_config(self.workdir, self.namespace, self.kubeconfig, self.port,
                                                          lease_seconds, name=name,
                                                          isolation_seconds=isolation_seconds),
                                 name=name, env={"PGHA_IDENTITY": name, **(env or {})}, account=self.account,
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

    def healthy(self, after=None, name=None):
        """The holder's (or name's) status once there is one primary and every other member
        streams from it in its synchronous list (with after: from an iteration after that
        mark)."""
        name = name or self.holder()
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
        """Each pghad's completed iterations; one cut off from the API server may be in a
        request long enough not to answer: it is left out (any later status will do)."""
        marks = {}
        for name, daemon in self.daemons.items():
            try:
                marks[name] = status(self.workdir, name)["iterations"]
            except OSError:
                pass
        return marks

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

    def __init__(self, cluster, beside_every_member=False):
        self.cluster = cluster
        for name in DAEMONS:
            cluster.start_daemon(name)
        self.holder, _, members = cluster.wait_healthy()
        self.old = next(name for name, member in members.items() if member["role"] == "primary")
        self.old_node = cluster.member_nodes[int(self.old.rsplit("-", 1)[1])]
        addresses = [node.address for node in cluster.member_nodes]
        self.writer = Writer(cluster, cluster.client, addresses, "failover_writer")
        self.side = Writer(cluster, self.old_node, [self.old_node.address], "side_writer")
        self.sides = [self.side]
        if beside_every_member:
            # one more beside each standby, committing whenever it is primary
            for index, node in enumerate(cluster.member_nodes):
                if node is not self.old_node:
                    self.sides.append(Writer(cluster, node, [node.address], f"side_writer_{index}"))
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

    def heal_and_check(self, failover=True):
        """Heals the partition and makes the end checks; failover false: the fault was
        not one to fail over for (the primary stays)."""
        cluster = self.cluster
        if not failover:
            self.new, self.promoted_ns = self.old, None
        marks = cluster.iteration_marks()
        cluster.network.heal()
        # after healing: one primary, every standby streaming, the old primary rejoined
        holder, _, members = cluster.wait_healthy(after=marks)
        before = len(self.writer.acknowledged())
        pgharness.wait_until(lambda: len(self.writer.acknowledged()) > before + 20, timeout=60,
                             what="commits after the heal")
        self.stop()
        final = next(name for name, member in members.items() if member["role"] == "primary")
        if failover is not None:
            assert final == self.new, members
        assert cluster.primaries() == [final]
        assert cluster.rw_member() == [final]
        # no acknowledged commit missing on the final primary: the writer's, and those of
        # the writers beside the members (a commit the old primary acknowledged after the
        # promotion would be on a fork, so missing)
        for writer in [self.writer, *self.sides]:
            if not writer.acknowledged():
                # a writer beside a member that was never primary while it ran made no
                # table (it creates it on the first primary it reaches): nothing to lose
                print(f"{writer.table}: nothing acknowledged", file=sys.stderr)
                continue
            rows = {row[0] for row in cluster.sql(final, f"SELECT id FROM {writer.table}")}
            lost = writer.acknowledged() - rows
            last = writer.last_ack_ns()
            print(f"{writer.table}: {len(writer.acknowledged())} acknowledged, {len(lost)} lost; last ack "
                  f"{(last - self.fault_ns) / 1e9:.2f} s after the fault", file=sys.stderr)
            assert not lost, f"{writer.table}: {len(lost)} acknowledged commits lost"
        if failover:
            # nothing acknowledged by the old primary after the promotion was seen
            after = self.side.acknowledged_after(self.promoted_ns)
            assert not after, f"{len(after)} commits acknowledged by the old primary after the promotion"
            # the candidate was chosen only after the standbys were cut from the old primary
            daemon = cluster.daemons[self.holder]
            standbys = [f"test-{index}" for index in range(REPLICAS) if f"test-{index}" != self.old]
            pgharness.assert_cut_before_promotion(daemon.log_text(self.marks[self.holder]), self.new, standbys)
        elif failover is False:
            assert members[self.old]["role"] == "primary", members
        return holder, members

    def stop(self):
        for writer in [self.writer, *self.sides]:
            writer.stop()


def partition_run(cluster, fault, name, during=None):
    """fault(run) starts the partition; during(run), if given, runs once the promotion
    is done and the old primary refuses writes, before the heal. With
    PGHA_PARTITION_RESULTS set (bench/partition), appends the run's measurements to that
    file as a JSON line, before the checks (a failed check is recorded too)."""
    run = Run(cluster)
    try:
        run.fault(lambda: fault(run))
        run.wait_promotion()
        refuses = run.wait_old_refuses()
        if during:
            during(run)
        try:
            holder, members = run.heal_and_check()
        finally:
            record(run, name, refuses)
        assert members[run.old]["role"] == "replica" and members[run.old]["state"] == "streaming", members
    finally:
        run.stop()
    return run


def record(run, name, refuses):
    """The run's measurements for bench/partition: RTO (the fault to the writer's first
    commit acknowledged by the new primary), acknowledged commits missing on the final
    primary, commits the old primary acknowledged after the writer found the new one, and
    when the old primary refused writes (seen from its own node, polled every 0.1 s)."""
    path = os.environ.get("PGHA_PARTITION_RESULTS")
    if not path:
        return
    old_index = run.old.rsplit("-", 1)[1]
    acks = [int(fields[3]) for fields in run.writer.events("ack")
            if int(fields[3]) > run.fault_ns and fields[2] != old_index]
    rows = {}
    for writer in [run.writer, *run.sides]:
        try:
            rows[writer.table] = {row[0] for row in run.cluster.sql(run.new, f"SELECT id FROM {writer.table}")}
        except psycopg2.Error:
            rows[writer.table] = set()
    lost = sum(len(writer.acknowledged() - rows[writer.table]) for writer in [run.writer, *run.sides])
    result = {"fault": name, "rto_s": (acks[0] - run.fault_ns) / 1e9 if acks else None, "lost": lost,
              "acked_after_promotion": len(run.side.acknowledged_after(run.promoted_ns)),
              "refuses_s": refuses, "acknowledged": len(run.writer.acknowledged())}
    with open(path, "a") as out:
        out.write(json.dumps(result) + "\n")


def test_b_pghad_cut_from_the_primary_only(cluster):
    """Both pghad lose the primary; the standbys and the clients still reach it."""
    def fault(run):
        for node in cluster.daemon_nodes.values():
            cluster.network.cut(node, run.old_node)

    partition_run(cluster, fault, "b: pghad cut from the primary")


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

    run = partition_run(cluster, fault, "c: primary's node cut from the API server and pghad", during)
    # the old pod was removed (its kubelet heard the deletion after the heal) before the
    # member's new pod was bound
    agent_log = open(os.path.join(cluster.workdir, f"agent-m{run.old.rsplit('-', 1)[1]}.log")).read()
    removed = agent_log.index(f"postgres-{run.old}: removed")
    assert agent_log.index(f"postgres-{run.old}: bound to", removed) > removed


def test_a_primary_node_isolated(cluster):
    """The primary's node is cut from everything: API server, pghad, standbys, clients."""
    def fault(run):
        cluster.network.isolate(run.old_node)

    partition_run(cluster, fault, "a: primary's node isolated")


def test_d_lease_holder_node_isolated(cluster):
    """The node of the pghad holding the Lease is cut from everything: the other pghad
    takes the Lease over and acts; the isolated one takes no destructive action, no pod
    is made twice, the primary stays."""
    run = Run(cluster)
    try:
        holder, other = run.holder, next(name for name in DAEMONS if name != run.holder)
        uids = {name: pod["metadata"]["uid"] for name, pod in cluster.pods().items()}
        run.fault(lambda: cluster.network.isolate(cluster.daemon_nodes[holder]))
        pgharness.wait_until(lambda: status(cluster.workdir, other)["clusters"][0]["lease"]["held"], timeout=60,
                             what=f"{other} taking the Lease over")
        print(f"{other} holds the Lease {(time.monotonic_ns() - run.fault_ns) / 1e9:.2f} s after the fault",
              file=sys.stderr)
        # the new holder acts: healthy as it sees it in an iteration after the takeover
        marks = cluster.iteration_marks()
        pgharness.wait_until(lambda: cluster.healthy(marks, name=other), timeout=60,
                             what=f"a healthy cluster as {other} sees it")
        before = len(run.writer.acknowledged())
        pgharness.wait_until(lambda: len(run.writer.acknowledged()) > before + 50, timeout=60,
                             what="commits while the old holder is isolated")
        # the isolated pghad says why it does not act, and reports the Lease as not held
        cluster.daemons[holder].wait_for_log(r"lease pgha-test lost \(.*\): not acting on the cluster",
                                             timeout=60, since=run.marks[holder])
        assert status(cluster.workdir, holder)["clusters"][0]["lease"]["held"] is False
        assert {name: pod["metadata"]["uid"] for name, pod in cluster.pods().items()} == uids
        run.holder = other
        run.heal_and_check(failover=False)
        log = cluster.daemons[holder].log_text(run.marks[holder])
        for action in ("fence", "promote", "cut", "follow", "rejoin", "clone", "start"):
            assert f"] {action}:" not in log, log
        leases = [status(cluster.workdir, name)["clusters"][0]["lease"]["held"] for name in DAEMONS]
        assert leases.count(True) == 1, leases
        assert {name: pod["metadata"]["uid"] for name, pod in cluster.pods().items()} == uids
    finally:
        run.stop()


def test_e_synchronous_standby_node_isolated(cluster):
    """A synchronous standby's node is cut from everything: commits go on (ANY 1 of 2),
    the primary stays, and after healing the standby streams and is in the list again."""
    run = Run(cluster)
    try:
        holder = run.holder
        standby = next(index for index, node in enumerate(cluster.member_nodes) if node is not run.old_node)
        run.fault(lambda: cluster.network.isolate(cluster.member_nodes[standby]))
        pgharness.wait_until(
            lambda: status(cluster.workdir, run.holder)["clusters"][0]["members"][standby]["state"] != "streaming",
            timeout=60, what=f"pghad seeing test-{standby} gone")
        before = len(run.writer.acknowledged())
        pgharness.wait_until(lambda: len(run.writer.acknowledged()) > before + 100, timeout=60,
                             what="commits while a synchronous standby is isolated")
        names = status(cluster.workdir, run.holder)["clusters"][0]["synchronous_standby_names"]
        print(f"synchronous_standby_names while test-{standby} is isolated: {names}", file=sys.stderr)
        run.heal_and_check(failover=False)
        cluster_status = status(cluster.workdir, holder)["clusters"][0]
        for index in range(REPLICAS):
            if f"test-{index}" != run.old:
                assert f'"test-{index}"' in cluster_status["synchronous_standby_names"], cluster_status
    finally:
        run.stop()


def test_f_flapping_partitions(cluster):
    """A random partition every few seconds for 60 s (seeded: PGHA_PARTITION_SEED), then
    healed: every commit any writer got acknowledged is on the final primary, which is the
    only one, and every other member streams from it."""
    seed = int(os.environ.get("PGHA_PARTITION_SEED", "20261203"))
    rng = random.Random(seed)
    network = cluster.network
    run = Run(cluster, beside_every_member=True)
    members = cluster.member_nodes
    daemons = list(cluster.daemon_nodes.values())
    faults = [("isolate", lambda node: network.isolate(node), members + daemons),
              ("cut from pghad", lambda node: [network.cut(daemon, node) for daemon in daemons], members),
              ("cut from the API server and pghad",
               lambda node: (network.cut_from_api(node), [network.cut(daemon, node) for daemon in daemons]), members),
              ("agent cut from the API server", lambda node: network.cut_from_api(node, agent_only=True), members)]
    try:
        run.fault(lambda: None)
        end = time.monotonic() + 60
        print(f"seed {seed}", file=sys.stderr)
        while time.monotonic() < end:
            network.heal()
            what, action, targets = rng.choice(faults)
            node = rng.choice(targets)
            print(f"{(time.monotonic_ns() - run.fault_ns) / 1e9:6.2f} s: {what}: {node.name}", file=sys.stderr)
            action(node)
            time.sleep(rng.uniform(2, 6))  # the schedule of the faults, not a wait for a state
        run.heal_and_check(failover=None)
    finally:
        run.stop()


def may_patch_claim(cluster, claim):
    """Whether the API server, asked now, lets pghad's ServiceAccount patch claim."""
    review = cluster.api.create("/apis/authorization.k8s.io/v1/subjectaccessreviews", {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": f"system:serviceaccount:{cluster.namespace}:pgha",
                 "groups": ["system:serviceaccounts", f"system:serviceaccounts:{cluster.namespace}",
                            "system:authenticated"],
                 "resourceAttributes": {"namespace": cluster.namespace, "verb": "patch",
                                        "resource": "persistentvolumeclaims", "name": claim}}})
    return review["status"].get("allowed", False)


def wait_agent_cut(agent, agent_mark):
    """Waits until agent has failed a turn since agent_mark (its requests time out after
    10 s). A turn that read the pods before the cut then ended, and no later turn can
    complete before the heal: the first one that does reads the pods as they are after
    it. (Healed sooner, the turn under way at the cut could complete with the pods read
    before it, and see the old pod's container exited by itself, fenced, rather than
    the pod gone.)"""
    pgharness.wait_until(lambda: "turn failed" in agent.log_text()[agent_mark:], timeout=60,
                         what="the agent failing a turn, cut from the API server")


def agent_order(agent_log, pod_name, node_name, new_uid):
    """As the node agent logged it: the old pod's processes killed once it heard the
    deletion, its node Lease renewed after, and only then the member's new pod bound;
    prints the seconds between the kill and the binding."""
    killed = agent_log.index(f"{pod_name}: gone: SIGKILL")
    renewed = agent_log.index("node lease renewed", killed)
    bound = agent_log.index(f"{pod_name}: bound to {node_name} (uid {new_uid})")
    assert killed < renewed < bound, agent_log

    def stamp(position):
        clock = agent_log[agent_log.rindex("\n", 0, position) + 1:].split(" ", 1)[0]
        hours, minutes, seconds = clock.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    print(f"{pod_name}: old pod killed, new pod bound {stamp(bound) - stamp(killed):.2f} s later", file=sys.stderr)


def test_a_standby_pod_deleted_at_once_on_a_node_cut_off_is_made_again_only_once_its_node_is_back(cluster):
    """A standby's node agent is cut from the API server (a partitioned kubelet), then its
    pod is deleted at once (grace 0, as kubectl delete --force): the pod leaves the API
    server while its postgres runs on, on its volume. pghad does not make the member again
    meanwhile (its claim's pgha.io/pod annotation names the pod and node; the node's Lease
    is not renewed), however many turns it takes; after healing, the agent kills the old
    postgres, renews its Lease, and only then is the member made again: it streams."""
    run = Run(cluster)
    try:
        index = next(index for index, node in enumerate(cluster.member_nodes) if node is not run.old_node)
        member, agent, node = f"test-{index}", cluster.agents[index], cluster.member_nodes[index]
        pod_name, claim = f"postgres-{member}", f"pgdata-postgres-{member}"
        pod = cluster.pods()[pod_name]
        uid, node_name = pod["metadata"]["uid"], pod["spec"]["nodeName"]

        def recorded():
            annotations = cluster.api.get(cluster.path("persistentvolumeclaims", claim))["metadata"].get(
                "annotations") or {}
            return json.loads(annotations["pgha.io/pod"]) if "pgha.io/pod" in annotations else None
        # the claim names the pod running on its node
        pgharness.wait_until(lambda: recorded() == {"node": node_name, "pod": pod_name, "uid": uid}, timeout=30,
                             what=f"claim {claim} naming pod {pod_name} on {node_name}")
        with open(os.path.join(agent.volume_dir(claim), "pgdata", "postmaster.pid")) as pid_file:
            postmaster = int(pid_file.readline())
        assert pgharness.process_alive(postmaster)
        holder = cluster.daemons[run.holder]
        mark = holder.log_mark()
        agent_mark = len(agent.log_text())

        def fault():
            cluster.network.cut_from_api(node, agent_only=True)
            cluster.api.delete(cluster.path("pods", pod_name), grace_period=0, uid=uid)
        run.fault(fault)
        holder.wait_for_log(rf"\[{member}\] pod {pod_name} \(uid {uid}\) left the API server but may still run on "
                            rf"node {node_name}", timeout=30, since=mark)
        # pghad looks again, turn after turn, and makes nothing on the claim: no pod, the
        # member running for it (its status says why), the old postgres alive
        seen = status(cluster.workdir, run.holder)["iterations"]
        pgharness.wait_until(lambda: status(cluster.workdir, run.holder)["iterations"] >= seen + 5, timeout=30,
                             what="five more iterations")
        assert pod_name not in cluster.pods()
        assert pgharness.process_alive(postmaster)
        error = next(item for item in status(cluster.workdir, run.holder)["clusters"][0]["members"]
                     if item["name"] == member)["error"]
        assert "may still run on its node" in error and node_name in error, error
        log = holder.log_text(mark)
        for action in ("start", "clone", "rejoin"):
            assert f"[{member}] {action}" not in log, log
        assert recorded() == {"node": node_name, "pod": pod_name, "uid": uid}
        # the agent's requests time out (10 s): it says it is cut, and pghad still waits
        wait_agent_cut(agent, agent_mark)
        assert pod_name not in cluster.pods()
        assert pgharness.process_alive(postmaster)

        waited = (time.monotonic_ns() - run.fault_ns) / 1e9
        marks = cluster.iteration_marks()
        cluster.network.heal()
        healed = time.monotonic_ns()
        holder.wait_for_log(rf"\[{member}\] pod {pod_name} \(uid {uid}\) is gone from node {node_name}: node "
                            rf"{node_name} is Ready and renewed its Lease 2 times", timeout=60, since=mark)
        gone = (time.monotonic_ns() - healed) / 1e9
        _, _, members = cluster.wait_healthy(after=marks)
        print(f"{member} waited {waited:.2f} s cut off; gone {gone:.2f} s after the heal, streaming again "
              f"{(time.monotonic_ns() - healed) / 1e9:.2f} s after", file=sys.stderr)
        assert members[member]["state"] == "streaming", members
        assert not pgharness.process_alive(postmaster)
        new_uid = cluster.pods()[pod_name]["metadata"]["uid"]
        assert new_uid != uid
        pgharness.wait_until(lambda: recorded() == {"node": node_name, "pod": pod_name, "uid": new_uid}, timeout=30,
                             what=f"claim {claim} naming the new pod")
        agent_order(agent.log_text()[agent_mark:], pod_name, node_name, new_uid)
        run.heal_and_check(failover=False)
    finally:
        run.stop()


def test_a_primary_pod_deleted_at_once_on_a_node_cut_off_fails_over_and_is_made_again_only_once_its_node_is_back(
        cluster):
    """The primary's node agent is cut from the API server, then the primary's pod is
    deleted at once (grace 0): pghad fails over (0 acknowledged commits lost), and does not
    make the old member again while its pod may still run on its node, however many turns
    it takes; after the heal, only once the agent killed what was left of it and renewed
    its node Lease: the old primary then rejoins and streams."""
    marks = {}

    def fault(run):
        index = int(run.old.rsplit("-", 1)[1])
        marks["agent"] = len(cluster.agents[index].log_text())
        marks["node"] = cluster.pods()[f"postgres-{run.old}"]["spec"]["nodeName"]
        cluster.network.cut_from_api(run.old_node, agent_only=True)
        cluster.api.delete(cluster.path("pods", f"postgres-{run.old}"), grace_period=0, uid=run.old_uid)

    def during(run):
        holder = cluster.daemons[run.holder]
        holder.wait_for_log(rf"\[{run.old}\] pod postgres-{run.old} \(uid {run.old_uid}\) left the API server but "
                            rf"may still run on node {marks['node']}", timeout=30, since=run.marks[run.holder])
        seen = status(cluster.workdir, run.holder)["iterations"]
        pgharness.wait_until(lambda: status(cluster.workdir, run.holder)["iterations"] >= seen + 5, timeout=30,
                             what="five more iterations")
        wait_agent_cut(cluster.agents[int(run.old.rsplit("-", 1)[1])], marks["agent"])
        assert f"postgres-{run.old}" not in cluster.pods()
        log = holder.log_text(run.marks[run.holder])
        for action in ("start", "clone", "rejoin"):
            assert f"[{run.old}] {action}" not in log, log

    run = partition_run(cluster, fault, "primary's pod deleted at once, its node agent cut from the API server", during)
    index = int(run.old.rsplit("-", 1)[1])
    new_uid = cluster.pods()[f"postgres-{run.old}"]["metadata"]["uid"]
    agent_order(cluster.agents[index].log_text()[marks["agent"]:], f"postgres-{run.old}", marks["node"], new_uid)
    cluster.daemons[run.holder].wait_for_log(
        rf"\[{run.old}\] pod postgres-{run.old} \(uid {run.old_uid}\) is gone from node {marks['node']}: node "
        rf"{marks['node']} is Ready and renewed its Lease 2 times", timeout=5, since=run.marks[run.holder])


def test_a_pod_deleted_at_once_before_pghad_recorded_it_is_recorded_from_the_deletion_seen(cluster):
    """As test_a_standby_pod_deleted_at_once..., but the claim does not record the pod yet
    when it is deleted (as if the pod had just started): pghad's Role loses the patch of
    claims, the annotation is removed, and the pod is deleted only once the holder has
    tried to record it again and been refused (so it has seen the claim without it). The
    watch's deletion event, which shows the pod bound and running, is then enough: pghad
    does not make the member again while it may run, records the pod on the claim once it
    may, and makes the member again once its node is back.

    (Both pghad frozen while the annotation is removed and the pod deleted is not this
    case: a pghad may then take in the deletion, and act, before the claim's change, which
    is an operator removing the annotation of a deleted pod, and is obeyed.)"""
    def delete(holder, pod_name, uid):
        cluster.api.delete(cluster.path("pods", pod_name), grace_period=0, uid=uid)
    deleted_before_recorded(cluster, {name: None for name in DAEMONS}, delete)


def test_a_pod_deleted_at_once_while_the_watch_was_away_is_remembered_from_the_list_made_again(cluster):
    """As test_a_pod_deleted_at_once_before_pghad_recorded_it..., but no watch event ever
    tells pghad of the deletion: pghad is cut from the API server when the pod is deleted,
    and after the heal its watch of pods, made again from where it was, is told 410 Gone
    (too old to resume, as after a cut longer than the API server's history: the test hook
    PGHA_TEST_EXPIRE_WATCH_FILE asks from a version long forgotten) and lists again. The
    pod missing from that list is taken as deleted as the watch last saw it, bound and
    running: the rest goes as when the deletion is seen. One pghad only: a second one
    would hear the deletion through its own watch."""
    expire = os.path.join(cluster.workdir, "expire-watch")

    def delete(holder, pod_name, uid):
        daemon, node = cluster.daemons[holder], cluster.daemon_nodes[holder]
        mark = daemon.log_mark()
        cluster.network.cut_from_api(node)
        daemon.wait_for_log(r"kubernetes: watching pods: ", timeout=60, since=mark)
        # the watch of pods is over: the deletion can reach pghad only through what it lists
        cluster.api.delete(cluster.path("pods", pod_name), grace_period=0, uid=uid)
        with open(expire, "w") as out:
            out.write("pods\n")
        cluster.account.chown(expire)
        # pghad makes a watch again only when none is in flight: from now on it only lists
        daemon.wait_for_log(r"test hook: PGHA_TEST_EXPIRE_WATCH_FILE says pods: the watch of pods is taken as told "
                            r"410 Gone", timeout=30, since=mark)
        daemon.wait_for_log(r"kubernetes: the watch of pods is too old to resume \(410 Gone\): listing again",
                            timeout=5, since=mark)
        assert not os.path.exists(expire)
        node.flush()
        member = pod_name.split("-", 1)[1]
        daemon.wait_for_log(rf"\[{member}\] pod {pod_name} \(uid {uid}\) left the API server unseen: not in the list "
                            r"made again after the watch was too old to resume \(410 Gone\); taken as deleted as last "
                            r"seen \(it may still run on its node\)", timeout=60, since=mark)
    deleted_before_recorded(cluster, {"first": {"PGHA_TEST_EXPIRE_WATCH_FILE": expire}}, delete)


def deleted_before_recorded(cluster, daemons, delete):
    """The daemons (name: env) started, the cluster healthy, a standby's node agent cut
    from the API server and pghad refused the patch of claims, its claim's annotation
    removed; once the holder has tried to record the pod again and been refused,
    delete(holder, pod, uid) deletes the pod at once. pghad must then say it may still
    run, not make the member again, record the deleted pod on the claim once it may, and
    make the member again only once its node is back."""
    for name, env in daemons.items():
        cluster.start_daemon(name, env=env)
    holder_name, _, _ = cluster.wait_healthy()
    holder = cluster.daemons[holder_name]
    primary = cluster.rw_member()
    index = next(index for index in range(REPLICAS) if [f"test-{index}"] != primary)
    member, agent, node = f"test-{index}", cluster.agents[index], cluster.member_nodes[index]
    pod_name, claim = f"postgres-{member}", f"pgdata-postgres-{member}"
    pod = cluster.pods()[pod_name]
    uid, node_name = pod["metadata"]["uid"], pod["spec"]["nodeName"]
    record = {"node": node_name, "pod": pod_name, "uid": uid}

    def recorded():
        annotations = cluster.api.get(cluster.path("persistentvolumeclaims", claim))["metadata"].get(
            "annotations") or {}
        return json.loads(annotations["pgha.io/pod"]) if "pgha.io/pod" in annotations else None
    pgharness.wait_until(lambda: recorded() == record, timeout=30, what=f"claim {claim} naming pod {pod_name}")
    with open(os.path.join(agent.volume_dir(claim), "pgdata", "postmaster.pid")) as pid_file:
        postmaster = int(pid_file.readline())
    mark = holder.log_mark()
    agent_mark = len(agent.log_text())
    cluster.network.cut_from_api(node, agent_only=True)
    role_path = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{cluster.namespace}/roles/pgha"
    rules = cluster.api.get(role_path)["rules"]

    def claims_patchable(patchable):
        for rule in rules:
            if "persistentvolumeclaims" in rule["resources"]:
                rule["verbs"] = [verb for verb in rule["verbs"] if verb != "patch"] + (["patch"] if patchable else [])
        cluster.api.patch(role_path, {"rules": rules})
        # the API server authorizes from its own cache of Roles: asked as pghad's account
        pgharness.wait_until(lambda: may_patch_claim(cluster, claim) == patchable, timeout=30,
                             what=f"the patch of claims {'allowed' if patchable else 'refused'} to pghad")
    claims_patchable(False)
    try:
        cluster.api.patch(cluster.path("persistentvolumeclaims", claim),
                          {"metadata": {"annotations": {"pgha.io/pod": None}}})
        holder.wait_for_log(rf"\[{member}\] PATCH \S*/persistentvolumeclaims/{claim}: 403", timeout=30, since=mark)
        delete(holder_name, pod_name, uid)
        holder.wait_for_log(rf"\[{member}\] pod {pod_name} \(uid {uid}\) left the API server but may still run "
                            rf"on node {node_name}", timeout=30, since=mark)
        assert recorded() is None
    finally:
        claims_patchable(True)
    # the pod is gone from the API server: only the deletion seen can have told pghad
    pgharness.wait_until(lambda: recorded() == record, timeout=30, what=f"claim {claim} naming the deleted pod again")
    seen = status(cluster.workdir, holder_name)["iterations"]
    pgharness.wait_until(lambda: status(cluster.workdir, holder_name)["iterations"] >= seen + 5, timeout=30,
                         what="five more iterations")
    assert pod_name not in cluster.pods()
    assert pgharness.process_alive(postmaster)
    log = holder.log_text(mark)
    for action in ("start", "clone", "rejoin"):
        assert f"[{member}] {action}" not in log, log

    wait_agent_cut(agent, agent_mark)
    marks = cluster.iteration_marks()
    cluster.network.heal()
    holder.wait_for_log(rf"\[{member}\] pod {pod_name} \(uid {uid}\) is gone from node {node_name}", timeout=60,
                        since=mark)
    _, _, members = cluster.wait_healthy(after=marks)
    assert members[member]["state"] == "streaming", members
    new_uid = cluster.pods()[pod_name]["metadata"]["uid"]
    assert new_uid != uid
    agent_order(agent.log_text()[agent_mark:], pod_name, node_name, new_uid)
