"""src/k8s.c against a fake API server (fakeapi.py): each outcome of a request, the
409 retry of k8s_update, the time limit, the token file's rotation, TLS with the
service account's CA or a kubeconfig's inline certificates, and that tokens never
reach the client's output."""
import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from fakeapi import FakeAPI, SilentServer

PODS = "/api/v1/namespaces/default/pods"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/db/leases"


def client_program():
    program = os.environ.get("K8S_CLIENT")
    if not program:
        program = os.path.join(os.environ.get("top_builddir", "."), "tests", "k8s-client")
    return os.path.abspath(program)


class Client:
    """A running tests/k8s-client: call(...) sends one command and returns its answer."""

    def __init__(self, workdir, kubeconfig=None, env=None, timeout_ms=None, connect_timeout_ms=None,
                 expected_exit=0):
        self.expected_exit = expected_exit
        argv = [client_program()]
        if kubeconfig:
            argv += ["--kubeconfig", kubeconfig]
        if timeout_ms:
            argv += ["--timeout-ms", str(timeout_ms)]
        if connect_timeout_ms:
            argv += ["--connect-timeout-ms", str(connect_timeout_ms)]
        environment = {key: value for key, value in os.environ.items()
                       if not key.startswith("KUBERNETES_") and key != "PGHA_K8S_SERVICEACCOUNT_DIR"}
        environment.update(env or {})
        self.stderr_path = os.path.join(workdir, f"k8s-client-{time.monotonic_ns()}.stderr")
        self.stderr = open(self.stderr_path, "w")
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                        text=True, env=environment)

    def call(self, *command):
        self.process.stdin.write(json.dumps(list(command)) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, f"k8s-client ended: {self.output()[1]}"
        return json.loads(line)

    def first_line(self):
        return json.loads(self.process.stdout.readline())

    def output(self):
        """Closes the client and returns (rest of stdout, stderr)."""
        if self.process.poll() is None:
            self.process.stdin.close()
        rest = self.process.stdout.read()
        self.process.wait(timeout=10)
        self.stderr.close()
        with open(self.stderr_path) as stderr:
            return rest, stderr.read()

    def close(self):
        """Ends the client as its input ends, and returns its exit status (under
        sanitizers, a leak or an error report makes it non-zero)."""
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.stderr.close()
        return self.process.returncode


@pytest.fixture
def workdir():
    path = tempfile.mkdtemp(prefix="pgha-test-k8s-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def clients(workdir):
    started = []

    def start(**kwargs):
        client = Client(workdir, **kwargs)
        started.append(client)
        return client

    yield start
    for client in started:
        status = client.close()
        if status != client.expected_exit:
            with open(client.stderr_path) as stderr:
                pytest.fail(f"k8s-client exited with {status}: {stderr.read()[-3000:]}")


def write(path, text, mode=0o600):
    with open(path, "w") as file:
        file.write(text)
    os.chmod(path, mode)
    return path


def kubeconfig(workdir, server, user=None, cluster_extra=None, namespace=None, name="config"):
    """A kubeconfig in kubectl's layout: one cluster, one context, one user."""
    lines = ["apiVersion: v1", "clusters:", "- cluster:", f"    server: {server}"]
    lines += [f"    {key}: {value}" for key, value in (cluster_extra or {}).items()]
    lines += ["  name: fake", "contexts:", "- context:", "    cluster: fake"]
    if namespace:
        lines.append(f"    namespace: {namespace}")
    lines += ["    user: robot", "  name: fake", "current-context: fake", "kind: Config", "preferences: {}",
              "users:", "- name: robot"]
    if user:
        lines += ["  user:"] + [f"    {key}: {value}" for key, value in user.items()]
    else:
        lines.append("  user: {}")
    return write(os.path.join(workdir, name), "\n".join(lines) + "\n")


def pod(name, **labels):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "postgres", "image": "postgres:15"}]}}


@pytest.fixture
def api():
    with FakeAPI() as server:
        yield server


def test_create_get_list_replace_patch_delete(api, clients, workdir):
    token = write(os.path.join(workdir, "token"), "crud-token\n")
    client = clients(kubeconfig=kubeconfig(workdir, api.url, user={"tokenFile": token}, namespace="db"))
    assert client.call("info") == {"server": api.url, "namespace": "db", "requests": 0}

    created = client.call("create", PODS, pod("postgres-test-0", app="postgres", cluster="test"))
    assert created["status"] == 201 and "why" not in created
    assert created["object"]["metadata"]["name"] == "postgres-test-0"
    uid = created["object"]["metadata"]["uid"]
    again = client.call("create", PODS, pod("postgres-test-0"))
    assert again["status"] == 409 and "object" not in again
    assert again["why"] == f'POST {PODS}: 409 Conflict: pods "postgres-test-0" already exists'
    client.call("create", PODS, pod("postgres-other-0", app="postgres", cluster="other"))

    got = client.call("get", f"{PODS}/postgres-test-0")
    assert got["status"] == 200 and got["object"]["metadata"]["uid"] == uid
    missing = client.call("get", f"{PODS}/nope")
    assert missing["status"] == 404 and "object" not in missing
    assert missing["why"] == f'GET {PODS}/nope: 404 Not Found: pods "nope" not found'

    listed = client.call("list", PODS, "app=postgres,cluster=test", None)
    assert listed["status"] == 200
    assert [item["metadata"]["name"] for item in listed["items"]] == ["postgres-test-0"]
    assert listed["list_version"] == str(api.version)
    everything = client.call("list", PODS, None, None)
    assert len(everything["items"]) == 2 and api.requests[-1]["query"] == ""

    stale = dict(got["object"])
    replaced = client.call("replace", f"{PODS}/postgres-test-0",
                           {**got["object"], "metadata": {**got["object"]["metadata"], "labels": {"role": "primary"}}})
    assert replaced["status"] == 200 and replaced["object"]["metadata"]["labels"] == {"role": "primary"}
    conflict = client.call("replace", f"{PODS}/postgres-test-0", stale)
    assert conflict["status"] == 409 and "the object has been modified" in conflict["why"]
    assert conflict["why"].startswith(f"PUT {PODS}/postgres-test-0: 409 Conflict: Operation cannot be fulfilled")

    version = replaced["object"]["metadata"]["resourceVersion"]
    patched = client.call("patch", f"{PODS}/postgres-test-0", {"metadata": {"labels": {"master": "true"}}}, version)
    assert patched["status"] == 200 and patched["object"]["metadata"]["labels"] == {"role": "primary",
                                                                                    "master": "true"}
    assert api.requests[-1]["headers"]["Content-Type"] == "application/merge-patch+json"
    assert api.requests[-1]["body"]["metadata"]["resourceVersion"] == version, "the precondition is sent"
    stale_patch = client.call("patch", f"{PODS}/postgres-test-0", {"metadata": {"labels": {"x": "y"}}}, version)
    assert stale_patch["status"] == 409
    blind = client.call("patch", f"{PODS}/postgres-test-0", {"metadata": {"labels": {"master": None}}}, None)
    assert blind["status"] == 200 and "master" not in blind["object"]["metadata"]["labels"]
    assert "resourceVersion" not in api.requests[-1]["body"]["metadata"]

    wrong_uid = client.call("delete", f"{PODS}/postgres-test-0", 0, "another-uid")
    assert wrong_uid["status"] == 409 and "Precondition failed" in wrong_uid["why"]
    deleted = client.call("delete", f"{PODS}/postgres-test-0", 0, uid)
    assert deleted["status"] == 200
    assert api.requests[-1]["body"] == {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                                        "preconditions": {"uid": uid}}
    gone = client.call("delete", f"{PODS}/postgres-test-0", -1, None)
    assert gone["status"] == 404 and gone["why"] == f'DELETE {PODS}/postgres-test-0: 404 Not Found: pods ' \
                                                    '"postgres-test-0" not found'
    assert api.requests[-1]["body"] == {"apiVersion": "v1", "kind": "DeleteOptions"}, "-1: the object's own grace"

    assert client.call("info")["requests"] == len(api.requests)
    assert {request["headers"]["Authorization"] for request in api.requests} == {"Bearer crud-token"}
    assert {request["headers"]["Accept"] for request in api.requests} == {"application/json"}
    assert len({request["client_port"] for request in api.requests}) == 1, "one connection for every request"


def test_label_selector_and_resource_version_are_escaped(api, clients, workdir):
    client = clients(kubeconfig=kubeconfig(workdir, api.url))
    listed = client.call("list", LEASES, "app=postgres,cluster in (a b),!gone", "0")
    assert listed["status"] == 200 and listed["items"] == []
    assert api.requests[-1]["path"] == LEASES
    assert api.requests[-1]["query"] == \
        "labelSelector=app%3Dpostgres%2Ccluster%20in%20%28a%20b%29%2C%21gone&resourceVersion=0"
    assert "Authorization" not in api.requests[-1]["headers"], "a user without a token sends none"
    client.call("list", LEASES + "?limit=5", "a=b", None)
    assert api.requests[-1]["query"] == "limit=5&labelSelector=a%3Db"


def test_update_retries_after_a_conflict(api, clients, workdir):
    client = clients(kubeconfig=kubeconfig(workdir, api.url))
    lease = api.put_object(f"{LEASES}/pgha-test", {"metadata": {"name": "pgha-test", "annotations": {"a": "1"}},
                                                   "spec": {"holderIdentity": "one"}})
    api.inject("PUT", f"{LEASES}/pgha-test", 409, {"kind": "Status", "code": 409, "reason": "Conflict",
                                                   "message": "the object has been modified"})
    updated = client.call("update", f"{LEASES}/pgha-test", {"spec": {"holderIdentity": "two"}}, 3)
    assert updated["status"] == 200, updated
    assert updated["object"]["spec"]["holderIdentity"] == "two"
    assert updated["object"]["metadata"]["annotations"] == {"a": "1"}
    assert [(request["method"], request["body"] and request["body"]["metadata"]["resourceVersion"])
            for request in api.requests] == [("GET", None), ("PUT", lease["metadata"]["resourceVersion"]),
                                             ("GET", None), ("PUT", lease["metadata"]["resourceVersion"])]
    assert updated["requests"] == 4

    api.inject("PUT", f"{LEASES}/pgha-test", 409, times=5)
    exhausted = client.call("update", f"{LEASES}/pgha-test", {"spec": {"holderIdentity": "three"}}, 2)
    assert exhausted["status"] == 409 and "object" not in exhausted
    assert exhausted["why"] == f"PUT {LEASES}/pgha-test: 409 Conflict: injected 409 (gave up after 2 attempts)"
    assert exhausted["requests"] == 8

    gave_up = client.call("update", f"{LEASES}/pgha-test", None, 3)
    assert gave_up["status"] == 0 and gave_up["why"] == "nothing to change"
    assert gave_up["object"]["spec"]["holderIdentity"] == "two", "the object as read"
    assert api.requests[-1]["method"] == "GET"

    missing = client.call("update", f"{LEASES}/nope", {"spec": {}}, 3)
    assert missing["status"] == 404 and missing["requests"] == 10


def test_errors_without_a_status_body(api, clients, workdir):
    client = clients(kubeconfig=kubeconfig(workdir, api.url))
    # a 503 is tried again (4 attempts in all, test_429_and_503_are_honoured), then handed over
    api.inject("GET", f"{PODS}/x", 503, b"upstream connect error\n", times=4)
    answer = client.call("get", f"{PODS}/x")
    assert answer["status"] == 503 and answer["why"] == f"GET {PODS}/x: 503 Service Unavailable: upstream connect error"
    api.inject("GET", f"{PODS}/x", 200, b"<html>a login page</html>")
    answer = client.call("get", f"{PODS}/x")
    assert answer["status"] == -1 and "200 OK, but the reply is not a JSON object" in answer["why"]
    api.inject("GET", PODS, 200, {"kind": "PodList", "items": "nonsense"})
    assert client.call("list", PODS, None, None)["status"] == -1
    raw = client.call("request", "GET", f"{PODS}/y", None, None)
    assert raw["status"] == 404 and raw["object"]["reason"] == "NotFound", "k8s_request hands over the Status"


def test_429_and_503_are_honoured(api, clients, workdir):
    """A 429 with Retry-After: the client sends nothing before it is over, then the same
    request again; a 503 without one: a back-off doubling from 250 ms; a wait longer
    than the request's time makes it give up at once, and the next request waits too."""
    api.put_object(f"{PODS}/x", pod("x"))
    client = clients(kubeconfig=kubeconfig(workdir, api.url), timeout_ms=5000)
    api.inject("GET", f"{PODS}/x", 429, headers={"Retry-After": "2"})
    answer = client.call("get", f"{PODS}/x")
    assert answer["status"] == 200 and answer["object"]["metadata"]["name"] == "x"
    sent = [request["monotonic"] for request in api.requests if request["path"] == f"{PODS}/x"]
    assert len(sent) == 2 and answer["requests"] == 2
    assert sent[1] - sent[0] >= 2.0, f"sent again {sent[1] - sent[0]:.3f} s after a Retry-After of 2 s"

    api.inject("GET", f"{PODS}/x", 503, times=3)
    before = len(api.requests)
    answer = client.call("get", f"{PODS}/x")
    assert answer["status"] == 200
    sent = [request["monotonic"] for request in api.requests[before:]]
    gaps = [later - earlier for earlier, later in zip(sent, sent[1:])]
    assert len(sent) == 4, "3 answers of 503, then the one that succeeds"
    for gap, wait in zip(gaps, (0.25, 0.5, 1.0)):
        assert gap >= wait, f"waited {gaps} after 503s, at least 0.25, 0.5, 1 s expected"

    # the API server asks for more than the request's time: it gives up at once, with the
    # answer, and a request made meanwhile is not sent
    api.inject("GET", f"{PODS}/x", 429, headers={"Retry-After": "60"})
    before = len(api.requests)
    answer = client.call("get", f"{PODS}/x")
    assert answer["status"] == 429 and "Retry-After 10 s" in answer["why"], answer
    assert answer["elapsed_ms"] < 2000
    answer = client.call("get", f"{PODS}/x")
    assert answer["status"] == -1 and "the API server asked for no request" in answer["why"], answer
    assert len(api.requests) == before + 1, "nothing sent while the API server asked to wait"


def test_a_watch_hands_over_each_line(api, clients, workdir):
    """k8s_stream: each line of the body, a JSON object, handed over as it comes (a line
    that is not JSON skipped), the end with the answer's status; a 410 ends it as such."""
    client = clients(kubeconfig=kubeconfig(workdir, api.url))
    events = [{"type": "ADDED", "object": pod("a")}, {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "7"}}},
              {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}]
    body = "".join(json.dumps(event) + "\n" for event in events[:2]) + "not json\n" + json.dumps(events[2]) + "\n"
    api.inject("GET", PODS, 200, body.encode())
    answer = client.call("stream", f"{PODS}?watch=1&resourceVersion=5")
    assert answer["status"] == 200 and answer["lines"] == events, answer
    assert api.requests[-1]["query"] == "watch=1&resourceVersion=5"
    api.inject("GET", PODS, 410)
    answer = client.call("stream", f"{PODS}?watch=1&resourceVersion=1")
    assert answer["status"] == 410 and "410 Gone" in answer["why"], answer
    counts = client.call("info")
    assert counts["requests"] == 2


def test_a_silent_server_times_out_within_the_limit(clients, workdir):
    with SilentServer() as silent:
        client = clients(kubeconfig=kubeconfig(workdir, silent.url), timeout_ms=700, connect_timeout_ms=500)
        started = time.monotonic()
        answer = client.call("get", f"{PODS}/x")
        elapsed = time.monotonic() - started
    assert answer["status"] == -1
    assert answer["why"].startswith(f"GET {PODS}/x: no answer from {silent.url}: ")
    assert "timed out" in answer["why"].lower()
    assert 0.6 <= elapsed < 2.0, f"took {elapsed:.2f} s for a limit of 0.7 s"
    assert answer["requests"] == 1


def test_the_token_file_is_re_read_when_it_changes(api, clients, workdir):
    first, second, third = "first-token.aaaaaaaa", "second-token.bbbbbbbb", "third-token.cccccccc"
    token = write(os.path.join(workdir, "token"), first + "\n")
    client = clients(kubeconfig=kubeconfig(workdir, api.url, user={"tokenFile": "token", "token": "unused-token"}))
    assert client.call("get", f"{PODS}/a")["status"] == 404
    write(token, second + "\n")   # rewritten in place: same inode
    assert client.call("get", f"{PODS}/a")["status"] == 404
    assert client.call("get", f"{PODS}/a")["status"] == 404
    # kubelet's way: a new file takes the old one's name
    write(token + ".new", third + "\n")
    os.rename(token + ".new", token)
    api.inject("GET", f"{PODS}/a", 401, {"kind": "Status", "code": 401, "message": "Unauthorized"})
    unauthorized = client.call("get", f"{PODS}/a")
    assert unauthorized["status"] == 401 and unauthorized["why"] == f"GET {PODS}/a: 401 Unauthorized: Unauthorized"
    # a rotation caught half way keeps the token read before
    os.unlink(token)
    assert client.call("get", f"{PODS}/a")["status"] == 404
    assert [request["headers"]["Authorization"] for request in api.requests] == \
        [f"Bearer {first}", f"Bearer {second}", f"Bearer {second}", f"Bearer {third}", f"Bearer {third}"]
    stdout, stderr = client.output()
    assert "cannot read the token file" in stderr, "the failed re-read is logged"
    assert "GET /api/v1/namespaces/default/pods/a: 404" in stderr, "requests are logged at debug level"
    for secret in (first, second, third, "unused-token"):
        assert secret not in stderr and secret not in stdout


def test_proxy_variables_do_not_apply(api, clients, workdir):
    with SilentServer() as proxy:
        env = {name: proxy.url for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "ALL_PROXY")}
        client = clients(kubeconfig=kubeconfig(workdir, api.url), env=env, timeout_ms=2000)
        assert client.call("get", f"{PODS}/x")["status"] == 404


def test_a_client_that_cannot_be_made_says_why(clients, workdir):
    path = kubeconfig(workdir, "https://127.0.0.1:1")
    text = open(path).read().replace("user: robot", "user: ghost", 1)
    write(path, text)
    client = clients(kubeconfig=path, expected_exit=1)
    assert client.first_line() == {"error": f"kubeconfig {path}: context fake names user ghost, which the file "
                                            "does not define"}
    assert client.process.wait(timeout=10) == 1
    outside = clients(expected_exit=1)
    assert "KUBERNETES_SERVICE_HOST" in outside.first_line()["error"]


# ---- TLS ----

@pytest.fixture
def tls_api(pki):
    with FakeAPI(tls={"certificate": f"{pki}/server.crt", "key": f"{pki}/server.key",
                      "client_ca": f"{pki}/ca.crt"}) as server:
        yield server


def base64_of(path):
    import base64
    with open(path, "rb") as file:
        return base64.b64encode(file.read()).decode()


def test_in_cluster_with_the_service_account(tls_api, pki, clients, workdir):
    account = os.path.join(workdir, "serviceaccount")
    os.mkdir(account)
    shutil.copy(f"{pki}/ca.crt", f"{account}/ca.crt")
    write(f"{account}/namespace", "databases")
    write(f"{account}/token", "sa-token-one\n")
    env = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(tls_api.port),
           "PGHA_K8S_SERVICEACCOUNT_DIR": account}
    client = clients(env=env)
    assert client.call("info") == {"server": f"https://127.0.0.1:{tls_api.port}", "namespace": "databases",
                                   "requests": 0}
    created = client.call("create", "/api/v1/namespaces/databases/pods", pod("p"))
    assert created["status"] == 201, created
    # kubelet swaps the ..data symlink; a rename has the same effect on the token's path
    write(f"{account}/token.new", "sa-token-two\n")
    os.rename(f"{account}/token.new", f"{account}/token")
    assert client.call("get", "/api/v1/namespaces/databases/pods/p")["status"] == 200
    assert [request["headers"]["Authorization"] for request in tls_api.requests] == \
        ["Bearer sa-token-one", "Bearer sa-token-two"]
    assert {request["certificate"] for request in tls_api.requests} == {None}, "no client certificate"
    stdout, stderr = client.output()
    assert "sa-token" not in stdout + stderr


def test_kubeconfig_with_inline_certificates(tls_api, pki, clients, workdir):
    path = kubeconfig(workdir, tls_api.url,
                      cluster_extra={"certificate-authority-data": base64_of(f"{pki}/ca.crt")},
                      user={"client-certificate-data": base64_of(f"{pki}/client.crt"),
                            "client-key-data": base64_of(f"{pki}/client.key")})
    client = clients(kubeconfig=path)
    answer = client.call("get", f"{PODS}/x")
    assert answer["status"] == 404, answer
    assert tls_api.requests[-1]["certificate"] == "pgha-robot", "the client certificate from the kubeconfig"
    assert "Authorization" not in tls_api.requests[-1]["headers"]


def test_kubeconfig_with_certificate_files(tls_api, pki, clients, workdir):
    shutil.copy(f"{pki}/ca.crt", f"{workdir}/ca.crt")
    path = kubeconfig(workdir, tls_api.url, cluster_extra={"certificate-authority": "ca.crt"},
                      user={"client-certificate": f"{pki}/client.crt", "client-key": f"{pki}/client.key"})
    client = clients(kubeconfig=path)
    assert client.call("get", f"{PODS}/x")["status"] == 404
    assert tls_api.requests[-1]["certificate"] == "pgha-robot"


def test_tls_is_verified(tls_api, pki, clients, workdir):
    untrusted = clients(kubeconfig=kubeconfig(workdir, tls_api.url, name="untrusted"))
    answer = untrusted.call("get", f"{PODS}/x")
    assert answer["status"] == -1 and "certificate" in answer["why"].lower(), answer
    by_name = clients(kubeconfig=kubeconfig(workdir, f"https://localhost:{tls_api.port}", name="by-name",
                                            cluster_extra={"certificate-authority": f"{pki}/ca.crt"}))
    assert by_name.call("get", f"{PODS}/x")["status"] == 404, "a name the certificate holds"
    insecure = clients(kubeconfig=kubeconfig(workdir, tls_api.url, name="insecure",
                                             cluster_extra={"insecure-skip-tls-verify": "true"}))
    assert insecure.call("get", f"{PODS}/x")["status"] == 404
