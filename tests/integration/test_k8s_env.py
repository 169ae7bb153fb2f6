"""The Kubernetes test environment itself: a real kube-apiserver (tests/k8s/kube-env.py),
the RBAC of contrib/kubernetes/rbac.yaml, and the node agent (tests/k8s/node-agent.py)
playing kubelet with a stand-in for pgha-entrypoint that serves the port, records its
environment, and says when it gets SIGTERM."""
import json
import os
import socket
import stat
import subprocess
import textwrap
import time

import pytest

import pgharness
from conftest import kube_env

KubeError = kube_env.KubeError
path_of = kube_env.resource_path

# Stands in for pgha-entrypoint: records its pid, its child's, its process group and
# environment next to PGDATA (in the claim's directory), then serves PGHA_PORT on
# PGHA_LISTEN. FAKE_MODE: serve (SIGTERM: exit 0), ignore-term (SIGTERM ignored),
# exit (exits with FAKE_EXIT at once).
FAKE_ENTRYPOINT = textwrap.dedent("""\
    #!/usr/bin/python3
    import json, os, signal, socket, subprocess, sys
    state = os.path.dirname(os.environ["PGDATA"])
    mode = os.environ.get("FAKE_MODE", "serve")
    child = subprocess.Popen(["sleep", "1000"])
    record = {"pid": os.getpid(), "child": child.pid, "pgid": os.getpgrp(), "sid": os.getsid(0),
              "uid": os.getuid(), "env": dict(os.environ)}
    with open(os.path.join(state, "record.json.tmp"), "w") as out:
        json.dump(record, out)
    os.rename(os.path.join(state, "record.json.tmp"), os.path.join(state, "record.json"))
    if mode == "exit":
        child.kill()
        sys.exit(int(os.environ["FAKE_EXIT"]))
    def on_term(signum, frame):
        with open(os.path.join(state, "sigterm"), "w") as out:
            out.write(str(os.getpid()))
        if mode != "ignore-term":
            child.kill()
            os._exit(0)
    signal.signal(signal.SIGTERM, on_term)
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((os.environ["PGHA_LISTEN"], int(os.environ["PGHA_PORT"])))
    server.listen(16)
    while True:
        connection, _ = server.accept()
        connection.close()
    """)


@pytest.fixture
def fake_entrypoint(tmp_workdir, account):
    path = os.path.join(tmp_workdir, "fake-entrypoint")
    with open(path, "w") as out:
        out.write(FAKE_ENTRYPOINT)
    os.chmod(path, 0o755)
    account.chown(path)
    return path


@pytest.fixture
def cluster(kube, kube_namespace, node_agent, fake_entrypoint):
    """A namespace with the Secret of cluster "test" and a node agent running the fake
    entrypoint: (api, namespace, agent)."""
    kube.api.create(path_of("secrets", namespace=kube_namespace), {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pgha-test"},
        "stringData": {"superuser-password": "s3cret", "replication-password": "r3pl"}})
    agent = node_agent(kube_namespace, fake_entrypoint)
    return kube.api, kube_namespace, agent


def claim(name, size="1Gi"):
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}},
                     "storageClassName": "pgha-test"}}


def member_pod(name, claim_name, port, env=()):
    """A pod as the contract describes a member's, with extra env entries."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "postgres", "cluster": "test"}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "postgres", "image": "pgha-test:1", "command": ["pgha-entrypoint"],
                "ports": [{"containerPort": port, "name": "postgresql"}],
                "readinessProbe": {"tcpSocket": {"port": "postgresql"}, "periodSeconds": 1},
                "env": [
                    {"name": "PGHA_CLUSTER", "value": "test"},
                    {"name": "PGHA_MEMBER", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "PGHA_PORT", "value": str(port)},
                    {"name": "PGHA_LISTEN", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "PGHA_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                    {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
                    {"name": "PGHA_SECRETS_DIR", "value": "/etc/pgha/secrets"},
                    {"name": "SUPERUSER_PASSWORD", "valueFrom": {
                        "secretKeyRef": {"name": "pgha-test", "key": "superuser-password"}}},
                    {"name": "PGHA_DATA_URL", "value": "file://$(PGDATA)"},
                    *env],
                "volumeMounts": [{"name": "pgdata", "mountPath": "/var/lib/postgresql/data"},
                                 {"name": "secrets", "mountPath": "/etc/pgha/secrets", "readOnly": True}]}],
            "volumes": [{"name": "pgdata", "persistentVolumeClaim": {"claimName": claim_name}},
                        {"name": "secrets", "secret": {"secretName": "pgha-test", "defaultMode": 0o400}}]}}


def wait_pod(api, namespace, name, condition, what, timeout=10):
    """Waits until condition(pod) holds for pod name; returns the pod."""
    found = {}

    def check():
        found["pod"] = api.get_or_none(path_of("pods", name, namespace))
        return found["pod"] is not None and condition(found["pod"])

    pgharness.wait_until(check, timeout=timeout, what=f"pod {name} {what} (last seen: {found.get('pod')})")
    return found["pod"]


def is_ready(pod):
    conditions = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions") or []}
    return pod["status"].get("phase") == "Running" and conditions.get("Ready") == "True"


def record_of(agent, claim_name, timeout=10):
    """What the fake entrypoint of the pod using claim_name recorded."""
    path = os.path.join(agent.volume_dir(claim_name), "record.json")
    pgharness.wait_until(lambda: os.path.exists(path), timeout=timeout, what=f"{path} written")
    with open(path) as source:
        return json.load(source)


def start_member(api, namespace, agent, name="postgres-test-0", env=()):
    """A claim and a ready member pod using it: (pod, the fake's record)."""
    claim_name = "pgdata-" + name
    api.create(path_of("persistentvolumeclaims", namespace=namespace), claim(claim_name))
    port = pgharness.free_port()
    api.create(path_of("pods", namespace=namespace), member_pod(name, claim_name, port, env))
    pod = wait_pod(api, namespace, name, is_ready, "ready")
    return pod, record_of(agent, claim_name)


def test_apiserver_serves_the_api(kube):
    version = kube.api.get("/version")
    assert version["major"] == "1"
    if isinstance(kube, kube_env.LocalKube):
        assert version["gitVersion"].startswith("v1.20.")
        assert kube.started_seconds < 60
        # the admin client certificate works as well as the token
        by_cert = kube_env.Api.from_kubeconfig(kube.cert_kubeconfig)
        assert by_cert.token is None
        assert any(item["metadata"]["name"] == "default" for item in by_cert.list("/api/v1/namespaces"))
        by_cert.close()
    assert kube.api.request("GET", "/readyz") == "ok"
    groups = [group["name"] for group in kube.api.get("/apis")["groups"]]
    assert "coordination.k8s.io" in groups
    with pytest.raises(KubeError) as bad_token:
        kube_env.Api(kube.server, ca_data=kube.ca_pem, token="not-a-token").get("/api/v1/namespaces")
    assert bad_token.value.status == 401


def test_namespaces_are_fresh(kube):
    first, second = kube.new_namespace(), kube.new_namespace()
    assert first != second
    for name in (first, second):
        assert kube.api.get(path_of("namespaces", name))["status"]["phase"] == "Active"


def test_stale_resource_version_conflicts(kube, kube_namespace):
    api = kube.api
    leases = path_of("leases", namespace=kube_namespace)
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "pgha-test"},
             "spec": {"holderIdentity": "a", "leaseDurationSeconds": 10}}
    created = api.create(leases, lease)
    with pytest.raises(KubeError) as twice:
        api.create(leases, lease)
    assert (twice.value.status, twice.value.reason) == (409, "AlreadyExists")

    created["spec"]["holderIdentity"] = "b"
    updated = api.put(leases + "/pgha-test", created)
    assert updated["spec"]["holderIdentity"] == "b"
    assert updated["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]
    created["spec"]["holderIdentity"] = "c"  # still the first resourceVersion: stale
    with pytest.raises(KubeError) as stale:
        api.put(leases + "/pgha-test", created)
    assert (stale.value.status, stale.value.reason) == (409, "Conflict")
    assert api.get(leases + "/pgha-test")["spec"]["holderIdentity"] == "b"


def test_rbac_yaml_grants_exactly_what_pghad_needs():
    with open(kube_env.RBAC_FILE) as source:
        documents = kube_env.parse_yaml(source.read())
    # in the namespace: the ServiceAccount, its Role and RoleBinding; outside it, get on
    # Nodes (a ClusterRole) and on the kubelets' Leases (a Role in kube-node-lease)
    kinds = {(document["kind"], document["metadata"].get("namespace")): document for document in documents}
    assert sorted(kinds) == [("ClusterRole", None), ("ClusterRoleBinding", None), ("Role", "default"),
                             ("Role", "kube-node-lease"), ("RoleBinding", "default"),
                             ("RoleBinding", "kube-node-lease"), ("ServiceAccount", "default")]
    subjects = [{"kind": "ServiceAccount", "name": "pgha", "namespace": "default"}]

    def grants(role):
        return {(rule["apiGroups"][0], resource): sorted(rule["verbs"])
                for rule in role["rules"] for resource in rule["resources"]}
    assert grants(kinds["ClusterRole", None]) == {("", "nodes"): ["get"]}
    assert grants(kinds["Role", "kube-node-lease"]) == {("coordination.k8s.io", "leases"): ["get"]}
    for role, binding in ((("ClusterRole", None), ("ClusterRoleBinding", None)),
                          (("Role", "kube-node-lease"), ("RoleBinding", "kube-node-lease"))):
        assert kinds[binding]["roleRef"]["kind"] == role[0]
        assert kinds[binding]["roleRef"]["name"] == kinds[role]["metadata"]["name"]
        assert kinds[binding]["subjects"] == subjects
    kinds = {kind: document for (kind, namespace), document in kinds.items() if namespace == "default"}
    granted = grants(kinds["Role"])
    assert granted == {
        ("", "pods"): sorted(["get", "list", "watch", "create", "delete", "patch"]),
        ("", "persistentvolumeclaims"): sorted(["get", "list", "watch", "create", "delete", "patch"]),
        ("", "services"): sorted(["get", "list", "watch", "create", "update", "patch", "delete"]),
        ("", "secrets"): sorted(["get", "create", "delete"]),
        ("coordination.k8s.io", "leases"): sorted(["get", "list", "watch", "create", "update", "patch", "delete"]),
        ("", "events"): ["create"],
        # the members' own ServiceAccount, Role and RoleBinding (the self-fence)
        ("", "serviceaccounts"): sorted(["get", "create", "delete"]),
        ("rbac.authorization.k8s.io", "roles"): sorted(["get", "create", "delete"]),
        ("rbac.authorization.k8s.io", "rolebindings"): sorted(["get", "create", "delete"]),
    }
    binding = kinds["RoleBinding"]
    assert binding["roleRef"]["name"] == kinds["Role"]["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "pgha", "namespace": "default"}]


def test_contrib_example_configuration_is_valid():
    example = os.path.join(os.path.dirname(kube_env.RBAC_FILE), "pgha.conf")
    result = subprocess.run([pgharness.built_program("pghad"), "--check-config", "-c", example],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "platform kubernetes" in result.stdout


def test_rbac_kubeconfig_is_the_service_account(kube, kube_namespace, account):
    path = kube.apply_rbac(kube_namespace)
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == 0o644
    # the daemon's account can read it
    result = pgharness.run_as_user(["cat", path], account=account, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    # block-style YAML, as kubectl writes it: what pghad's kubeconfig reader expects
    with open(path) as source:
        text = source.read()
    assert text.startswith("apiVersion: ") and "current-context: " in text
    api = kube_env.Api.from_kubeconfig(path)
    assert api.namespace == kube_namespace
    assert api.token and api.token != getattr(kube, "admin_token", None)

    # allowed by the Role
    assert api.list(path_of("pods", namespace=kube_namespace)) == []
    api.create(path_of("secrets", namespace=kube_namespace), {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pgha-test"}, "stringData": {"k": "v"}})
    assert api.get(path_of("secrets", "pgha-test", kube_namespace))["data"]["k"] == "dg=="
    api.create(path_of("leases", namespace=kube_namespace), {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "pgha-test"}})
    api.create(path_of("services", namespace=kube_namespace), {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "test-rw"},
        "spec": {"selector": {"app": "postgres"}, "ports": [{"port": 5432, "targetPort": 5432}]}})

    # outside the namespace, only get on a Node and on a kubelet's Lease (404: none here)
    for path in ("/api/v1/nodes/no-such-node", path_of("leases", "no-such-node", "kube-node-lease")):
        with pytest.raises(KubeError) as missing:
            api.get(path)
        assert missing.value.status == 404, missing.value

    # not allowed
    forbidden = [
        lambda: api.list("/api/v1/nodes"),
        lambda: api.list(path_of("leases", namespace="kube-node-lease")),
        lambda: api.create(path_of("leases", namespace="kube-node-lease"), {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "n"}}),
        lambda: api.list(path_of("secrets", namespace=kube_namespace)),
        lambda: api.list(path_of("serviceaccounts", namespace=kube_namespace)),
        lambda: api.create(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{kube_namespace}/roles", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "wider"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]}),
        lambda: api.put(path_of("secrets", "pgha-test", kube_namespace), {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pgha-test"}}),
        lambda: api.list(path_of("pods", namespace="default")),
        lambda: api.create(path_of("pods", "x", kube_namespace, "binding"), {
            "apiVersion": "v1", "kind": "Binding", "metadata": {"name": "x"},
            "target": {"apiVersion": "v1", "kind": "Node", "name": "n"}}),
    ]
    for attempt in forbidden:
        with pytest.raises(KubeError) as denied:
            attempt()
        assert denied.value.status == 403, denied.value
    api.close()


def test_member_pod_runs_as_the_contract_says(cluster, account):
    api, namespace, agent = cluster
    pod, record = start_member(api, namespace, agent)
    status = pod["status"]
    ip = status["podIP"]
    assert ip.startswith("127.") and ip != "127.0.0.1"
    assert status["podIPs"] == [{"ip": ip}]
    assert pod["spec"]["nodeName"]
    assert status["containerStatuses"][0]["ready"] is True
    assert "running" in status["containerStatuses"][0]["state"]

    # the port answers on the pod's own address
    with socket.create_connection((ip, int(record["env"]["PGHA_PORT"])), timeout=2):
        pass
    # as the test account, in a session of its own
    assert record["uid"] == account.uid
    assert record["pgid"] == record["pid"] == record["sid"]
    environment = record["env"]
    volume = agent.volume_dir("pgdata-postgres-test-0")
    assert environment["PGDATA"] == volume + "/pgdata"
    assert environment["PGHA_DATA_URL"] == "file://" + volume + "/pgdata"
    assert environment["PGHA_LISTEN"] == ip
    assert environment["PGHA_MEMBER"] == "postgres-test-0"
    assert environment["PGHA_NAMESPACE"] == namespace
    assert environment["SUPERUSER_PASSWORD"] == "s3cret"
    assert environment["HOSTNAME"] == "postgres-test-0"
    socket_dir = environment["PGHA_SOCKET_DIR"]
    assert os.path.isdir(socket_dir) and len(socket_dir) < 40
    assert os.stat(socket_dir).st_uid == account.uid
    secrets_dir = environment["PGHA_SECRETS_DIR"]
    assert secrets_dir != "/etc/pgha/secrets"
    assert sorted(os.listdir(secrets_dir)) == ["replication-password", "superuser-password"]
    for name in os.listdir(secrets_dir):
        info = os.stat(os.path.join(secrets_dir, name))
        assert stat.S_IMODE(info.st_mode) == 0o400 and info.st_uid == account.uid
    with open(os.path.join(secrets_dir, "replication-password")) as secret:
        assert secret.read() == "r3pl"
    assert stat.S_IMODE(os.stat(volume).st_mode) == 0o700 and os.stat(volume).st_uid == account.uid
    # the claim is bound, as a provisioner would
    claim_status = api.get(path_of("persistentvolumeclaims", "pgdata-postgres-test-0", namespace))["status"]
    assert claim_status["phase"] == "Bound" and claim_status["capacity"] == {"storage": "1Gi"}

    # a second member gets an address of its own, on the same port
    port = int(environment["PGHA_PORT"])
    api.create(path_of("persistentvolumeclaims", namespace=namespace), claim("pgdata-postgres-test-1"))
    api.create(path_of("pods", namespace=namespace), member_pod("postgres-test-1", "pgdata-postgres-test-1", port))
    second = wait_pod(api, namespace, "postgres-test-1", is_ready, "ready")
    assert second["status"]["podIP"] not in (ip, "127.0.0.1")


def test_delete_with_grace_zero_kills_at_once(cluster):
    api, namespace, agent = cluster
    _, record = start_member(api, namespace, agent, env=[{"name": "FAKE_MODE", "value": "ignore-term"}])
    assert pgharness.process_alive(record["pid"]) and pgharness.process_alive(record["child"])
    begun = time.monotonic()
    api.delete(path_of("pods", "postgres-test-0", namespace), grace_period=0)
    pgharness.wait_until(lambda: not pgharness.process_alive(record["pid"])
                         and not pgharness.process_alive(record["child"]),
                         timeout=1.0, interval=0.01, what="the pod's processes killed")
    elapsed = time.monotonic() - begun
    assert elapsed < 1.0, elapsed
    assert api.get_or_none(path_of("pods", "postgres-test-0", namespace)) is None
    assert not os.path.exists(os.path.join(agent.volume_dir("pgdata-postgres-test-0"), "sigterm"))
    # the claim's directory stays
    assert os.path.exists(os.path.join(agent.volume_dir("pgdata-postgres-test-0"), "record.json"))


def test_graceful_delete_sends_sigterm_then_removes_the_pod(cluster):
    api, namespace, agent = cluster
    pod, record = start_member(api, namespace, agent)
    volume = agent.volume_dir("pgdata-postgres-test-0")
    begun = time.monotonic()
    api.delete(path_of("pods", "postgres-test-0", namespace), grace_period=30)
    pgharness.wait_until(lambda: api.get_or_none(path_of("pods", "postgres-test-0", namespace)) is None,
                         timeout=10, what="the pod removed by the agent")
    assert time.monotonic() - begun < 10  # the process exited on SIGTERM: no waiting for the 30 s
    with open(os.path.join(volume, "sigterm")) as marker:
        assert int(marker.read()) == record["pid"]
    assert not pgharness.process_alive(record["pid"]) and not pgharness.process_alive(record["child"])
    assert os.path.isdir(volume)
    assert f"postgres-test-0: deleted (grace 30 s): SIGTERM" in agent.log_text()

    # a new pod of the same name is a new pod: a new uid, a new address, the same data
    os.unlink(os.path.join(volume, "record.json"))
    port = int(record["env"]["PGHA_PORT"])
    api.create(path_of("pods", namespace=namespace), member_pod("postgres-test-0", "pgdata-postgres-test-0", port))
    again = wait_pod(api, namespace, "postgres-test-0", is_ready, "ready again")
    assert again["metadata"]["uid"] != pod["metadata"]["uid"]
    assert again["status"]["podIP"] != pod["status"]["podIP"]
    assert record_of(agent, "pgdata-postgres-test-0")["pid"] != record["pid"]
    assert os.path.exists(os.path.join(volume, "sigterm"))
    assert len(agent.pod_logs("postgres-test-0")) == 2


def test_graceful_delete_kills_after_the_grace_period(cluster):
    api, namespace, agent = cluster
    _, record = start_member(api, namespace, agent, env=[{"name": "FAKE_MODE", "value": "ignore-term"}])
    begun = time.monotonic()
    api.delete(path_of("pods", "postgres-test-0", namespace), grace_period=2)
    pgharness.wait_until(lambda: os.path.exists(os.path.join(agent.volume_dir("pgdata-postgres-test-0"), "sigterm")),
                         timeout=2, what="SIGTERM received")
    pod = api.get(path_of("pods", "postgres-test-0", namespace))
    assert pod["metadata"]["deletionTimestamp"] and pgharness.process_alive(record["pid"])
    pgharness.wait_until(lambda: api.get_or_none(path_of("pods", "postgres-test-0", namespace)) is None,
                         timeout=10, what="the pod removed after its grace period")
    assert 2 <= time.monotonic() - begun < 6
    assert not pgharness.process_alive(record["pid"]) and not pgharness.process_alive(record["child"])
    assert "grace period over: SIGKILL" in agent.log_text()


def test_pod_waits_for_its_claim(cluster):
    api, namespace, agent = cluster
    port = pgharness.free_port()
    api.create(path_of("pods", namespace=namespace), member_pod("postgres-test-0", "pgdata-postgres-test-0", port))
    pod = wait_pod(api, namespace, "postgres-test-0",
                   lambda p: "waiting" in ((p["status"].get("containerStatuses") or [{}])[0].get("state") or {}),
                   "waiting")
    agent.wait_for_a_turn()  # it looked again, and still waits
    pod = api.get(path_of("pods", "postgres-test-0", namespace))
    assert pod["status"]["phase"] == "Pending" and "podIP" not in pod["status"]
    assert "pgdata-postgres-test-0" in pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
    assert not os.path.exists(agent.volume_dir("pgdata-postgres-test-0"))

    api.create(path_of("persistentvolumeclaims", namespace=namespace), claim("pgdata-postgres-test-0"))
    wait_pod(api, namespace, "postgres-test-0", is_ready, "ready once its claim exists")
    assert record_of(agent, "pgdata-postgres-test-0")["env"]["PGHA_PORT"] == str(port)


@pytest.mark.parametrize("code, phase", [(3, "Failed"), (0, "Succeeded")])
def test_exited_container_ends_the_pod(cluster, code, phase):
    api, namespace, agent = cluster
    api.create(path_of("persistentvolumeclaims", namespace=namespace), claim("pgdata-postgres-test-0"))
    api.create(path_of("pods", namespace=namespace), member_pod(
        "postgres-test-0", "pgdata-postgres-test-0", pgharness.free_port(),
        env=[{"name": "FAKE_MODE", "value": "exit"}, {"name": "FAKE_EXIT", "value": str(code)}]))
    pod = wait_pod(api, namespace, "postgres-test-0", lambda p: p["status"].get("phase") == phase, phase)
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == code
    assert pod["status"]["containerStatuses"][0]["ready"] is False
    agent.wait_for_a_turn()  # looked at again: never restarted
    assert api.get(path_of("pods", "postgres-test-0", namespace))["status"]["phase"] == phase
    assert agent.log_text().count("postgres-test-0: started") == 1
    # the pod goes when deleted, even gracefully, as nothing runs
    api.delete(path_of("pods", "postgres-test-0", namespace), grace_period=30)
    pgharness.wait_until(lambda: api.get_or_none(path_of("pods", "postgres-test-0", namespace)) is None,
                         timeout=5, what="the ended pod removed")


def test_deleted_claim_loses_its_data(cluster):
    api, namespace, agent = cluster
    start_member(api, namespace, agent)
    claims = path_of("persistentvolumeclaims", namespace=namespace)
    volume = agent.volume_dir("pgdata-postgres-test-0")
    api.delete(claims + "/pgdata-postgres-test-0")
    # in use: protected, as the pvc-protection controller would keep it, once the agent
    # has seen it deleted
    agent.wait_for_a_turn()
    assert api.get(claims + "/pgdata-postgres-test-0")["metadata"]["deletionTimestamp"]
    assert os.path.exists(os.path.join(volume, "record.json"))
    api.delete(path_of("pods", "postgres-test-0", namespace), grace_period=0)
    pgharness.wait_until(lambda: api.get_or_none(claims + "/pgdata-postgres-test-0") is None,
                         timeout=5, what="the claim removed once unused")
    pgharness.wait_until(lambda: not os.path.exists(volume), timeout=5, what="its directory removed")
