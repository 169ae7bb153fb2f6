#!/usr/bin/env python3
"""pghad deployed as users deploy it, on a real node (run it under tests/k8s/real-node,
with the member and pghad images imported):

    tests/k8s/real-node run --image MEMBER.oci.tar --image PGHAD.oci.tar -- tests/k8s/pghad-in-cluster.py

contrib/kubernetes/rbac.yaml and pghad.yaml are applied as they are in a fresh namespace,
changed only where their comments say a user changes them (the namespace, the images,
and the storage class and size for this node). Then, checked through the API and through
the Services' ClusterIPs, as applications connect:
  1. two pghad pods run with the ServiceAccount's token from the pod, one holds the Lease,
     and they create a healthy 3-member cluster (a primary, two streaming standbys);
  2. a deleted standby pod comes back and streams again;
  3. the pghad pod that holds the Lease is deleted: the other takes the Lease over;
  4. three times, the primary's pod is deleted: orders-rw reaches a new primary, with
     every commit acknowledged through its ClusterIP by bench/failover-writer
     ($FAILOVER_WRITER, when set), and the old primary comes back as a standby.
Prints TAP, with the times measured as comments.
"""
import base64
import copy
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import time

import psycopg2
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.dont_write_bytecode = True
_spec = importlib.util.spec_from_file_location("pgha_kube_env", os.path.join(HERE, "kube-env.py"))
kube_env = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kube_env)

MEMBER_IMAGE = "pgha.test/postgres:15"
PGHAD_IMAGE = "pgha.test/pghad:test"
CLUSTER = "orders"

count = 0
failed = 0


def check(description, ok, detail=""):
    global count, failed
    count += 1
    if ok:
        print(f"ok {count} - {description}", flush=True)
    else:
        failed += 1
        print(f"not ok {count} - {description}", flush=True)
        for line in str(detail).splitlines():
            print(f"# {line}", flush=True)
    return ok


def note(text):
    print(f"# {text}", flush=True)


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception as error:  # the event is not there yet
            last = error
            value = None
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"waited {timeout} s for {what} (last error: {last})")


class Deployment:
    def __init__(self, kube):
        self.kube = kube
        self.api = kube.api
        self.namespace = kube.new_namespace("pgha-incluster")
        kube.apply_rbac(self.namespace)
        with open(os.path.join(TOP, "contrib", "kubernetes", "pghad.yaml")) as source:
            self.documents = [document for document in yaml.safe_load_all(source) if document]

    def apply(self):
        for document in copy.deepcopy(self.documents):
            document["metadata"]["namespace"] = self.namespace
            if document["kind"] == "ConfigMap":
                text = document["data"]["pgha.conf"]
                for old, new in (('namespace = "default"', f'namespace = "{self.namespace}"'),
                                 ('image = "registry.example.com/pgha/postgres:0.1.0"', f'image = "{MEMBER_IMAGE}"'),
                                 ('size = "10Gi"; storage_class = ""', 'size = "1Gi"; storage_class = "pgha-test"')):
                    if old not in text:
                        raise SystemExit(f"pghad.yaml's pgha.conf no longer has {old!r}")
                    text = text.replace(old, new)
                document["data"]["pgha.conf"] = text
            if document["kind"] == "Deployment":
                document["spec"]["template"]["spec"]["containers"][0]["image"] = PGHAD_IMAGE
            self.api.apply(document, self.namespace)

    def path(self, kind, name=None):
        return kube_env.resource_path(kind, name, self.namespace)

    def pods(self, selector):
        return [pod for pod in self.api.list(self.path("pods"), label_selector=selector)
                if not pod["metadata"].get("deletionTimestamp")]

    def pghad_pods(self):
        return [pod for pod in self.pods("app.kubernetes.io/component=pghad")
                if (pod.get("status") or {}).get("phase") == "Running"]

    def lease_holder(self):
        lease = self.api.get_or_none(f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases/pgha-{CLUSTER}")
        return lease and lease["spec"].get("holderIdentity")

    def cluster_ip(self, service):
        return self.api.get(self.path("services", service))["spec"]["clusterIP"]

    def password(self):
        secret = self.api.get(self.path("secrets", f"pgha-{CLUSTER}"))
        return base64.b64decode(secret["data"]["superuser-password"]).decode()

    def sql(self, service, statement, timeout=3):
        """statement through the Service's ClusterIP, as the superuser."""
        with psycopg2.connect(host=self.cluster_ip(service), port=5432, user="postgres", dbname="postgres",
                              password=self.password(), connect_timeout=timeout) as connection:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(statement)
                return cursor.fetchall() if cursor.description else None

    def healthy(self):
        """True once the primary behind orders-rw has two streaming standbys, both in its
        synchronous list's pool, and every member pod is Ready."""
        members = self.pods(f"app=postgres,cluster={CLUSTER}")
        if len(members) != 3 or not all(
                any(c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions", []))
                for pod in members):
            return False
        rows = self.sql(f"{CLUSTER}-rw", "SELECT pg_is_in_recovery(), (SELECT count(*) FROM pg_stat_replication "
                                         "WHERE state = 'streaming' AND sync_state IN ('quorum', 'sync'))")
        return rows == [(False, 2)]

    def primary_member(self):
        return self.sql(f"{CLUSTER}-rw", "SHOW cluster_name")[0][0]


WRITER = os.environ.get("FAILOVER_WRITER")


class Writer:
    """bench/failover-writer committing through orders-rw's ClusterIP, with a passfile."""

    def __init__(self, deployment):
        self.directory = tempfile.mkdtemp(prefix="pgha-writer-")
        passfile = os.path.join(self.directory, "pgpass")
        with open(os.open(passfile, os.O_WRONLY | os.O_CREAT, 0o600), "w") as out:
            out.write(f"*:*:*:postgres:{deployment.password()}\n")
        self.out = os.path.join(self.directory, "writer.log")
        conninfo = (f"host={deployment.cluster_ip(f'{CLUSTER}-rw')} port=5432 user=postgres dbname=postgres "
                    f"passfile={passfile}")
        self.process = subprocess.Popen([WRITER, "--out", self.out, "--interval-ms", "5", "--connect", conninfo],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def acknowledged(self):
        """{id: monotonic ns} of the commits acknowledged so far."""
        acks = {}
        try:
            with open(self.out) as log:
                for line in log:
                    fields = line.split()
                    if len(fields) >= 4 and fields[0] == "ack":
                        acks[int(fields[1])] = int(fields[3])
        except FileNotFoundError:
            pass
        return acks

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=15)


def main():
    kube = kube_env.Kube(os.environ["PGHA_TEST_KUBECONFIG"])
    deployment = Deployment(kube)
    note(f"namespace {deployment.namespace}")
    started = time.monotonic()
    deployment.apply()

    try:
        wait_until(lambda: len(deployment.pghad_pods()) == 2, 120, "two pghad pods running")
        check("the Deployment runs two pghad pods", True)
        holder = wait_until(deployment.lease_holder, 120, "a Lease holder")
        names = [pod["metadata"]["name"] for pod in deployment.pghad_pods()]
        check("one pghad pod holds the Lease, under its pod's name", holder in names, f"{holder} not in {names}")
        pod = deployment.pghad_pods()[0]
        mounts = [mount["mountPath"] for mount in pod["spec"]["containers"][0].get("volumeMounts", [])]
        check("pghad's pods have the ServiceAccount's token mounted by Kubernetes",
              "/var/run/secrets/kubernetes.io/serviceaccount" in mounts
              and pod["spec"].get("serviceAccountName") == "pgha", mounts)
        wait_until(deployment.healthy, 240, "a healthy cluster")
        note(f"empty namespace to a healthy 3-member cluster (pghad in the cluster): {time.monotonic() - started:.1f} s")
        check("pghad in the cluster creates a healthy 3-member cluster, reached through orders-rw", True)
        primary = deployment.primary_member()
        check("orders-rw reaches the primary orders-0", primary == "orders-0", primary)
        deployment.sql(f"{CLUSTER}-rw", "CREATE TABLE kept (v int); INSERT INTO kept VALUES (1)")

        # 2. a deleted standby pod
        deleted = time.monotonic()
        uid = deployment.api.get(deployment.path("pods", "postgres-orders-2"))["metadata"]["uid"]
        deployment.api.delete(deployment.path("pods", "postgres-orders-2"))
        wait_until(lambda: (deployment.api.get_or_none(deployment.path("pods", "postgres-orders-2")) or
                            {"metadata": {"uid": uid}})["metadata"]["uid"] != uid, 120, "a new pod for orders-2")
        wait_until(deployment.healthy, 180, "the cluster healthy again")
        note(f"deleted standby pod back and streaming: {time.monotonic() - deleted:.1f} s")
        check("a deleted standby pod comes back and streams again", True)

        # 3. the acting pghad's pod
        holder = deployment.lease_holder()
        deployment.api.delete(deployment.path("pods", holder))
        deleted = time.monotonic()
        other = wait_until(lambda: (lambda h: h if h and h != holder else None)(deployment.lease_holder()), 120,
                           "another pghad taking the Lease over")
        note(f"Lease taken over by {other} {time.monotonic() - deleted:.1f} s after {holder}'s pod was deleted")
        check("when the acting pghad's pod goes, another pghad takes the Lease over", True)

        # 4. the primary's pod, under the new acting pghad, three times, with a writer
        # committing through orders-rw's ClusterIP when bench/failover-writer is built
        wait_until(deployment.healthy, 120, "a healthy cluster under the new pghad")
        deployment.sql(f"{CLUSTER}-rw", "INSERT INTO kept SELECT generate_series(2, 100)")
        for run in (1, 2, 3):
            old = deployment.primary_member()
            writer = Writer(deployment) if WRITER else None
            if writer:
                wait_until(lambda: len(writer.acknowledged()) > 50, 30, "the writer's first commits")
            deleted_ns = time.monotonic_ns()
            deployment.api.delete(deployment.path("pods", f"postgres-{old}"))
            new_primary = wait_until(lambda: (lambda m: m if m != old else None)(deployment.primary_member()),
                                     180, "orders-rw reaching a new primary")
            reached = (time.monotonic_ns() - deleted_ns) / 1e9
            if writer:
                wait_until(lambda: len([t for t in writer.acknowledged().values() if t > deleted_ns]) > 50, 60,
                           "commits through orders-rw after the delete")
                writer.stop()
                after = sorted(t for t in writer.acknowledged().values() if t > deleted_ns)
                before = [t for t in writer.acknowledged().values() if t <= deleted_ns]
                acknowledged = set(writer.acknowledged())
                rows = {row[0] for row in deployment.sql(f"{CLUSTER}-rw", "SELECT id FROM failover_writer")}
                lost = acknowledged - rows
                # the old primary's sessions go on during its pod's grace until pghad cuts
                # them: the outage is the longest gap between two acknowledged commits
                times = [max(before)] + after
                gap = max(later - earlier for earlier, later in zip(times, times[1:]))
                note(f"run {run}: {old}'s pod deleted; through orders-rw's ClusterIP the writer's longest "
                     f"gap between two commits (RTO) {gap / 1e9:.2f} s; {len(acknowledged)} acknowledged, "
                     f"{len(lost)} lost; a new connection reaches {new_primary} after {reached:.2f} s")
                check(f"run {run}: no commit acknowledged through orders-rw is lost when {old}'s pod is deleted",
                      not lost, f"{len(lost)} lost")
            else:
                note(f"run {run}: orders-rw reaches {new_primary} {reached:.2f} s after {old}'s pod was deleted")
            rows = deployment.sql(f"{CLUSTER}-rw", "SELECT count(*) FROM kept")
            check(f"run {run}: after {old}'s pod is deleted, orders-rw reaches the new primary {new_primary} "
                  "with every row", rows == [(100,)], rows)
            wait_until(deployment.healthy, 240, f"the cluster healthy again with {old} a standby")
            check(f"run {run}: {old} comes back as a standby", True)
    except AssertionError as error:
        check("the steps above", False, error)
        # pghad's pods, then the members' (what pgha-entrypoint said), each log's end
        for selector, lines in (("app.kubernetes.io/name=pgha", 200), ("app=postgres", 40)):
            for pod in deployment.pods(selector):
                name = pod["metadata"]["name"]
                note(f"----- {name} -----")
                try:
                    log = deployment.api.request("GET", deployment.path("pods", name) + "/log")
                    for line in str(log).splitlines()[-lines:]:
                        note(line)
                except kube_env.KubeError as failure:
                    note(str(failure))
    print(f"1..{count}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
