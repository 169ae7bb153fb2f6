"""pghad on the kubernetes platform, through a real API server: pghad (with the RBAC of
contrib/kubernetes, not an admin) -> kube-apiserver -> the test node agent -> pgha-entrypoint
-> real PostgreSQL. Each test has its own namespace."""
import base64
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import psycopg2
import pytest

import pgharness
from conftest import has_failed, kube_env
from test_control import request

REPLICAS = 3
IMAGE = "pgha.test/postgres:15"


def agent_only(why):
    """Skips a test that reaches into the test node agent (its processes, its directories)
    on a real node (tests/k8s/real-node), where kubelet runs the pods."""
    return pytest.mark.skipif(bool(os.environ.get("PGHA_REAL_NODE_DIR")), reason=why)


def real_node_only(why):
    """Runs a test only on a real node (tests/k8s/real-node), where kubelet and containerd
    run the pods in real containers."""
    return pytest.mark.skipif(not os.environ.get("PGHA_REAL_NODE_DIR"), reason=why)


def k8s_config(workdir, namespace, kubeconfig, port, lease_seconds=4, replicas=REPLICAS, name="pghad", parameters="",
               cluster_extra="", isolation_seconds=10, loop_interval_ms=300):
    return f"""
daemon: {{
  state_dir = "{workdir}/{name}-state";
  control_socket = "{workdir}/{name}.sock";
  loop_interval_ms = {loop_interval_ms};
  log_level = "info";
}};
platform: {{
  type = "kubernetes";
  kubernetes: {{ namespace = "{namespace}"; kubeconfig = "{kubeconfig}"; image = "{IMAGE}";
                lease_seconds = {lease_seconds}; isolation_seconds = {isolation_seconds}; }};
}};
clusters = ( {{
  name = "test";
  replicas = {replicas};
  port = {port};
  synchronous = {{ method = "{"any" if replicas > 1 else "off"}"; number = 1; }};
  volume = {{ size = "1Gi"; storage_class = "pgha-test"; }};
  postgresql = {{ parameters = {{ {parameters} }}; }};
  {cluster_extra}
}} );
"""


def control(workdir, command, name="pghad"):
    """One request on the control socket of pghad name."""
    return request(os.path.join(workdir, f"{name}.sock"), json.dumps(command))


def status(workdir, name="pghad"):
    return control(workdir, {"command": "status"}, name)


class Cluster:
    """One namespace, its node agent, and the pghad daemons acting on it."""

    def __init__(self, kube, workdir, account, entrypoint):
        self.kube = kube
        self.api = kube.api
        self.workdir = workdir
        self.account = account
        self.namespace = kube.new_namespace()
        self.kubeconfig = kube.apply_rbac(self.namespace, owner=(account.uid, account.gid))
        self.port = pgharness.free_port()
        root = os.path.join(workdir, "node")
        os.makedirs(root, exist_ok=True)
        self.agent = kube.start_agent(self.namespace, root, entrypoint, account.name,
                                      log=os.path.join(workdir, "agent.log"))
        self.daemons = {}
        self._passfile = None

    def start_daemon(self, name="pghad", lease_seconds=4, env=None, cluster_extra="", replicas=REPLICAS,
                     isolation_seconds=10, loop_interval_ms=300, parameters=""):
        daemon = pgharness.Pghad(self.workdir, k8s_config(self.workdir, self.namespace, self.kubeconfig, self.port,
                                                          lease_seconds, name=name, cluster_extra=cluster_extra,
                                                          parameters=parameters,
                                                          replicas=replicas, isolation_seconds=isolation_seconds,
                                                          loop_interval_ms=loop_interval_ms),
                                 name=name, env={"PGHA_IDENTITY": name, **(env or {})}, account=self.account)
        daemon.start()
        daemon.wait_running()
        self.daemons[name] = daemon
        return daemon

    def path(self, kind, name=None):
        base = f"/api/v1/namespaces/{self.namespace}/{kind}"
        return f"{base}/{name}" if name else base

    def pods(self):
        return {pod["metadata"]["name"]: pod for pod in self.api.list(self.path("pods"), label_selector="app=postgres")}

    def claims(self):
        return {claim["metadata"]["name"]: claim for claim in self.api.list(self.path("persistentvolumeclaims"))}

    def services(self):
        return {service["metadata"]["name"]: service for service in self.api.list(self.path("services"))}

    def passfile(self):
        """A passfile with the superuser password from the cluster's Secret."""
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
        pod = self.pods().get(f"postgres-{member}")
        return pod and pod.get("status", {}).get("podIP")

    def conninfo(self, address):
        return f"host={address} port={self.port} user=postgres dbname=postgres passfile={self.passfile()}"

    def sql(self, member, statement, address=None, check=True):
        """statement on member over TCP as the superuser; None (check false) when it does not answer."""
        try:
            address = address or self.address(member)
            with psycopg2.connect(self.conninfo(address), connect_timeout=3) as connection:
                connection.autocommit = True
                with connection.cursor() as cursor:
                    cursor.execute(statement)
                    return cursor.fetchall() if cursor.description else None
        except (psycopg2.Error, TypeError):
            if check:
                raise
            return None

    def member_state(self, name="pghad", after=None):
        """(cluster status, its members by name), or None with after while the status is
        not taken after that iteration_mark()."""
        reply = status(self.workdir, name)
        if after is not None and reply["iterations"] <= after:
            return None
        cluster = reply["clusters"][0]
        return cluster, {member["name"]: member for member in cluster["members"]}

    def iteration_mark(self, name="pghad"):
        """pghad name's loop iterations begun: a status whose "iterations" (those whose every
        cluster's turn is complete) counts more is of an observation made after this call."""
        return status(self.workdir, name)["iterations_begun"]

    def healthy(self, name="pghad", after=None):
        """The status once there is one primary and every other member streams from it in its
        synchronous list, else None; with after, only in a status taken after that
        iteration_mark()."""
        state = self.member_state(name, after)
        if state is None:
            return None
        cluster, members = state
        if len(members) < REPLICAS:
            return None
        primaries = [member for member in members.values() if member["role"] == "primary"]
        if len(primaries) != 1:
            return None
        for member in members.values():
            if member["role"] != "primary" and (member["state"] != "streaming"
                                                or member["sync_state"] not in ("quorum", "sync")):
                return None
        return cluster

    def wait_healthy(self, timeout=120, name="pghad", after=None):
        return pgharness.wait_until(lambda: self.healthy(name, after), timeout=timeout, interval=0.5,
                                    what="a healthy cluster on kubernetes")

    def rw_member(self):
        """The member the test-rw Service selects: the one pod its selector matches."""
        selector = self.services()["test-rw"]["spec"]["selector"]
        text = ",".join(f"{key}={value}" for key, value in sorted(selector.items()))
        pods = [pod for pod in self.api.list(self.path("pods"), label_selector=text)
                if not pod["metadata"].get("deletionTimestamp")]
        return [pod["metadata"]["labels"]["member"] for pod in pods]

    def close(self):
        for daemon in self.daemons.values():
            if daemon.running:
                daemon.stop(signal.SIGKILL)
        self.agent.stop()
        pgharness.stop_postmasters_under(self.workdir)


@pytest.fixture
def k8s(request, kube, tmp_workdir, account):
    """A namespace with the RBAC of contrib/kubernetes, a node agent running pods'
    pgha-entrypoint as the test account, and the pghad started in it (killed after)."""
    entrypoint = pgharness.install_program("pgha_entrypoint", os.path.join(tmp_workdir, "bin"), account)
    cluster = Cluster(kube, tmp_workdir, account, entrypoint)
    try:
        yield cluster
    finally:
        if has_failed(request):
            for daemon in cluster.daemons.values():
                print(daemon.log_report(), file=sys.stderr)
            print(pgharness.log_report("node agent", os.path.join(tmp_workdir, "agent.log")), file=sys.stderr)
        cluster.close()


def test_three_members_from_an_empty_namespace(k8s):
    started = time.monotonic()
    k8s.start_daemon()
    cluster = k8s.wait_healthy()
    # for the record (bench/real-node collects it): timings are not assertions
    print(f"empty namespace to healthy cluster: {time.monotonic() - started:.2f} s "
          f"({'real node' if os.environ.get('PGHA_REAL_NODE_DIR') else 'test node agent'})", file=sys.stderr)

    pods = k8s.pods()
    assert sorted(pods) == ["postgres-test-0", "postgres-test-1", "postgres-test-2"]
    for index in range(REPLICAS):
        labels = pods[f"postgres-test-{index}"]["metadata"]["labels"]
        assert labels["app"] == "postgres" and labels["cluster"] == "test" and labels["member"] == f"test-{index}"
        assert labels["app.kubernetes.io/managed-by"] == "pgha"
        assert labels["role"] == ("primary" if index == 0 else "replica")
        assert labels["master"] == ("true" if index == 0 else "false")
    primary_only = k8s.api.list(k8s.path("pods"), label_selector="app=postgres,cluster=test,master=true")
    assert [pod["metadata"]["name"] for pod in primary_only] == ["postgres-test-0"]

    claims = k8s.claims()
    assert sorted(claims) == ["pgdata-postgres-test-0", "pgdata-postgres-test-1", "pgdata-postgres-test-2"]
    for claim in claims.values():
        assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
        assert claim["spec"]["storageClassName"] == "pgha-test"
        assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    services = k8s.services()
    assert services["test-rw"]["spec"]["selector"] == {"app": "postgres", "cluster": "test", "role": "primary"}
    assert services["test-ro"]["spec"]["selector"] == {"app": "postgres", "cluster": "test", "role": "replica"}
    assert services["test-rw"]["spec"]["ports"][0]["port"] == k8s.port

    assert cluster["synchronous_standby_names"] == 'ANY 1 ("test-1", "test-2")'
    assert k8s.sql("test-0", "SHOW synchronous_standby_names") == [('ANY 1 ("test-1", "test-2")',)]
    streaming = k8s.sql("test-0", "SELECT application_name, state FROM pg_stat_replication ORDER BY 1")
    assert streaming == [("test-1", "streaming"), ("test-2", "streaming")]

    # a commit on the member test-rw selects is visible on a replica
    assert k8s.rw_member() == ["test-0"]
    k8s.sql("test-0", "CREATE TABLE seen (v text); INSERT INTO seen VALUES ('through test-rw')")
    pgharness.wait_until(lambda: k8s.sql("test-2", "SELECT v FROM seen", check=False) == [("through test-rw",)],
                         timeout=10, what="the row on test-2")

    # the daemon ran with the namespace's ServiceAccount, and reports its requests
    # in a steady state: several iterations after the one that saw the cluster healthy
    settled = k8s.iteration_mark()
    pgharness.wait_until(lambda: k8s.iteration_mark() >= settled + 5, timeout=30, what="5 more loop iterations")
    reply = status(k8s.workdir)
    print(f"steady state: {reply['kubernetes']['requests_per_iteration']} requests in the last iteration, "
          f"{reply['kubernetes']['requests_total']} in {reply['iterations']} iterations", file=sys.stderr)
    assert reply["kubernetes"]["namespace"] == k8s.namespace
    # watches, not lists, and the Lease renewed on its own timer: few requests, if any
    assert reply["kubernetes"]["requests_per_iteration"] <= 12, reply["kubernetes"]


def test_a_prefixed_parameter_reaches_every_member_by_alter_system(k8s):
    """A module's parameter, written as a group named for its prefix, reaches every member
    through ALTER SYSTEM and a reload. auto_explain is not loaded, and PostgreSQL 15's ALTER
    SYSTEM refuses a name its session does not know: pghad writes it from a session that
    sets it as it starts, where it is a placeholder, so SHOW gives its text unchanged."""
    daemon = k8s.start_daemon()
    k8s.wait_healthy()
    daemon.write_config(k8s_config(k8s.workdir, k8s.namespace, k8s.kubeconfig, k8s.port,
                                   parameters='auto_explain = { log_min_duration = "1000ms"; };'))
    daemon.reload()
    members = [f"test-{index}" for index in range(REPLICAS)]
    pgharness.wait_until(
        lambda: all(k8s.sql(member, "SHOW auto_explain.log_min_duration", check=False) == [("1000ms",)]
                    for member in members),
        timeout=60, interval=0.5, what="auto_explain.log_min_duration on every member")
    for member in members:
        assert k8s.sql(member, "SELECT sourcefile FROM pg_file_settings WHERE name = 'auto_explain.log_min_duration'")[0][0] \
            .endswith("/postgresql.auto.conf")


def test_the_parameters_of_a_member_change_over_one_connection(k8s):
    """A change of several parameters runs on one connection per member: the resets, the
    sets and the reload are statements of one backend (one session id in the member's log),
    and only a prefixed name its session refuses is written from a second one that sets it
    as it starts."""
    logging = 'log_statement = "all"; log_connections = "on"; log_line_prefix = "[%c %a] ";'
    daemon = k8s.start_daemon(parameters=logging + ' work_mem = "5MB";')
    k8s.wait_healthy()
    member = "test-0"
    pgharness.wait_until(lambda: k8s.sql(member, "SHOW log_line_prefix", check=False) == [("[%c %a] ",)],
                         timeout=60, interval=0.5, what="the log settings on test-0")
    daemon.write_config(k8s_config(k8s.workdir, k8s.namespace, k8s.kubeconfig, k8s.port,
                                   parameters=logging + ' maintenance_work_mem = "77MB"; temp_buffers = "3MB";'
                                   ' effective_cache_size = "333MB"; auto_explain = { log_min_duration = "1234ms"; };'))
    daemon.reload()
    wanted = {"work_mem": "4MB", "maintenance_work_mem": "77MB", "temp_buffers": "3MB",
              "effective_cache_size": "333MB", "auto_explain.log_min_duration": "1234ms"}
    pgharness.wait_until(
        lambda: all(k8s.sql(member, f"SHOW {name}", check=False) == [(value,)] for name, value in wanted.items()),
        timeout=60, interval=0.5, what="the new parameters on test-0")
    # pghad's kept connections are "pghad", one for a single request "pgha"
    statement = re.compile(r"\[(\S+) pghad?\] LOG:  (?:statement|execute <unnamed>): (.*)")
    pod = k8s.pods()[f"postgres-{member}"]

    def change():
        """{session id: its statements} of the sessions that wrote the new parameters or
        reloaded after them, once that reload is in the log."""
        lines = [found.groups() for found in map(statement.search, pod_log(k8s, pod).splitlines()) if found]
        changes = [n for n, (_, text) in enumerate(lines)
                   if "77MB" in text or "1234ms" in text or 'RESET "work_mem"' in text]
        reloads = [n for n, (_, text) in enumerate(lines) if changes and n > changes[0] and "pg_reload_conf" in text]
        if not reloads:
            return None
        sessions = {}
        for n in changes + reloads[:1]:
            sessions.setdefault(lines[n][0], None)
        return {session: [text for owner, text in lines if owner == session] for session in sessions}

    sessions = pgharness.wait_until(change, timeout=60, interval=0.5, what="the change in test-0's log")
    print(sessions, file=sys.stderr)
    log = pod_log(k8s, pod).splitlines()
    first = next(n for n, line in enumerate(log) if 'RESET "work_mem"' in line)
    last = next(n for n, line in enumerate(log) if n > first and "pg_reload_conf" in line)
    print("\n".join(log[first:last + 1]), file=sys.stderr)
    # one session for all of it, and one for the prefixed name alone
    assert len(sessions) == 2, sessions
    main = next(session for session, lines in sessions.items() if any("pg_reload_conf" in line for line in lines))
    statements = [line for line in sessions[main] if line.startswith("ALTER SYSTEM") or "pg_reload_conf" in line]
    # in order: the reset, the sets (the prefixed one refused here; those unchanged too), then the reload
    assert statements[0] == 'ALTER SYSTEM RESET "work_mem"', statements
    assert {'ALTER SYSTEM SET "auto_explain.log_min_duration" = \'1234ms\'',
            'ALTER SYSTEM SET "effective_cache_size" = \'333MB\'',
            'ALTER SYSTEM SET "maintenance_work_mem" = \'77MB\'',
            'ALTER SYSTEM SET "temp_buffers" = \'3MB\''} <= set(statements[1:-1]), statements
    assert all(line.startswith("ALTER SYSTEM SET ") for line in statements[1:-1]), statements
    assert statements[-1] == "SELECT pg_catalog.pg_reload_conf()", statements
    # pghad authenticated no other backend on test-0 meanwhile than the one for the prefixed
    # name; the pod's own fence watch (pgha-entrypoint, also "pgha") may have
    authorized = {found.group(1) for found in (re.search(r"\[(\S+) .*connection authorized: .*application_name=pghad?$",
                                                         line) for line in log[first:last + 1]) if found}

    def executed():
        """{session: its statements} once each backend authorized meanwhile has sent one."""
        statements = {}
        for found in filter(None, map(statement.search, pod_log(k8s, pod).splitlines())):
            statements.setdefault(found.group(1), []).append(found.group(2))
        return statements if authorized <= set(statements) else None

    executed = pgharness.wait_until(executed, timeout=30, interval=0.5, what="a statement from every new backend")
    watch = {session for session in authorized
             if all("pg_is_in_recovery()" in text and "reply_time" in text
                                              for text in executed[session])}
    assert authorized - watch == set(sessions) - {main}, (authorized, watch, sessions)
    other = next(lines for session, lines in sessions.items() if session != main)
    assert [line for line in other if line.startswith("ALTER SYSTEM")] == \
        ['ALTER SYSTEM SET "auto_explain.log_min_duration" = \'1234ms\''], other


def test_a_deleted_standby_pod_comes_back_with_its_claim(k8s):
    k8s.start_daemon()
    k8s.wait_healthy()
    before = k8s.pods()["postgres-test-2"]["metadata"]["uid"]
    claim = k8s.claims()["pgdata-postgres-test-2"]["metadata"]["uid"]
    k8s.sql("test-0", "CREATE TABLE kept (v int); INSERT INTO kept VALUES (1)")

    k8s.api.delete(k8s.path("pods", "postgres-test-2"))
    pgharness.wait_until(lambda: k8s.pods().get("postgres-test-2", {}).get("metadata", {}).get("uid", before) != before,
                         timeout=60, what="a new pod for test-2")
    k8s.wait_healthy()
    assert k8s.claims()["pgdata-postgres-test-2"]["metadata"]["uid"] == claim
    assert k8s.sql("test-2", "SELECT v FROM kept") == [(1,)]
    # it started from its volume: no second clone
    assert "clone test-2" not in k8s.daemons["pghad"].log_text().split("delete", 1)[-1]


class Writer:
    """bench/failover-writer committing to whichever of the given addresses is primary."""

    def __init__(self, k8s, addresses):
        self.out = os.path.join(k8s.workdir, "writer.log")
        argv = [pgharness.built_program("failover_writer"), "--out", self.out, "--interval-ms", "5"]
        for address in addresses:
            argv += ["--connect", k8s.conninfo(address)]
        open(self.out, "w").close()
        k8s.account.chown(self.out)
        self.process = pgharness.popen_as_user(argv, account=k8s.account, stdout=subprocess.DEVNULL,
                                               stderr=subprocess.PIPE)

    def acknowledged(self):
        with open(self.out) as log:
            return [int(fields[1]) for fields in (line.split() for line in log) if fields and fields[0] == "ack"]

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=15)


def test_deleting_the_primary_pod_fails_over_without_losing_commits(k8s):
    daemon = k8s.start_daemon()
    k8s.wait_healthy()
    mark = daemon.log_mark()
    addresses = [k8s.address(f"test-{index}") for index in range(REPLICAS)]
    writer = Writer(k8s, addresses)
    try:
        pgharness.wait_until(lambda: len(writer.acknowledged()) > 50, timeout=20, what="the writer's first commits")
        deleted = time.monotonic()
        k8s.api.delete(k8s.path("pods", "postgres-test-0"))
        pgharness.wait_until(lambda: k8s.rw_member() in (["test-1"], ["test-2"]), timeout=60,
                             what="test-rw selecting a new primary")
        # for the record (timings are benchmarks, not assertions)
        print(f"test-rw selects {k8s.rw_member()} {time.monotonic() - deleted:.2f} s after the delete",
              file=sys.stderr)
        before = len(writer.acknowledged())
        pgharness.wait_until(lambda: len(writer.acknowledged()) > before + 50, timeout=30,
                             what="commits on the new primary")
    finally:
        writer.stop()
    new_primary = k8s.rw_member()[0]
    # a deleted pod is not a stopped container: both standbys were cut from test-0
    # (primary_conninfo '' and no WAL receiver left) before the candidate was chosen
    pgharness.assert_cut_before_promotion(daemon.log_text(mark), new_primary, ("test-1", "test-2"))
    acknowledged = set(writer.acknowledged())
    rows = {row[0] for row in k8s.sql(new_primary, "SELECT id FROM failover_writer")}
    assert acknowledged - rows == set(), f"{len(acknowledged - rows)} acknowledged commits lost"

    # the old primary comes back as a standby of the new one, and only one primary remains
    cluster = k8s.wait_healthy(timeout=120)
    members = {member["name"]: member for member in cluster["members"]}
    assert members[new_primary]["role"] == "primary"
    assert members["test-0"]["role"] == "replica" and members["test-0"]["state"] == "streaming"
    assert k8s.sql("test-0", "SELECT pg_is_in_recovery()") == [(True,)]
    assert k8s.rw_member() == [new_primary]
    assert cluster["failover"]["last"], cluster["failover"]
    # each standby's WAL receiver, pointed by pghad or by the entrypoint, gives a silent
    # primary up within 10 s
    for name in members:
        if name != new_primary:
            ((conninfo,),) = k8s.sql(name, "SELECT conninfo FROM pg_stat_wal_receiver")
            assert re.search(r"tcp_user_timeout='?10000\b", conninfo) and re.search(r"keepalives_idle='?5\b", conninfo), \
                (name, conninfo)

    # what kubectl get events shows: the failover on the new primary's pod, by pghad
    def failover_event():
        events = k8s.api.list(k8s.path("events"),
                              field_selector=f"involvedObject.name=postgres-{new_primary}")
        return [event for event in events if event["reason"] == "Failover"] or None

    event = pgharness.wait_until(failover_event, timeout=30, what="a Failover event on the new primary's pod")[0]
    assert event["type"] == "Normal" and event["source"]["component"] == "pghad", event
    assert "failover completed in" in event["message"], event
    assert event["involvedObject"]["kind"] == "Pod"
    history = pghactl(k8s, "history", "test", "--json")
    assert history.returncode == 0, history.stderr
    kinds = [(entry["kind"], entry["outcome"], entry["member"]) for entry in json.loads(history.stdout)]
    assert ("failover", "completed", new_primary) in kinds, kinds
    # the metrics count it, and count the API requests by verb and code
    metrics = pghactl(k8s, "metrics")
    assert metrics.returncode == 0, metrics.stderr
    assert f'pgha_member_role{{cluster="test",member="{new_primary}",role="primary"}} 1' in metrics.stdout
    assert 'pgha_failovers_total{cluster="test",kind="automatic",outcome="completed"} 1' in metrics.stdout
    assert 'pgha_kubernetes_api_requests_total{verb="POST",code="201"}' in metrics.stdout
    assert 'pgha_cluster_lease_held{cluster="test"} 1' in metrics.stdout
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed: run scripts/install-deps test (Debian's prometheus package)"
    checked = subprocess.run([promtool, "check", "metrics"], input=metrics.stdout, capture_output=True, text=True,
                             timeout=60)
    assert checked.returncode == 0 and not checked.stdout.strip(), checked.stdout + checked.stderr


def write_gap(writer, since_ns):
    """The longest time without an acknowledged commit, from the last one before since_ns
    (time.monotonic_ns()) on, in seconds."""
    times = []
    with open(writer.out) as log:
        for fields in (line.split() for line in log):
            if fields and fields[0] == "ack":
                times.append(int(fields[3]))
    times.sort()
    before = [ns for ns in times if ns < since_ns]
    window = before[-1:] + [ns for ns in times if ns >= since_ns]
    return max((later - earlier for earlier, later in zip(window, window[1:])), default=0) / 1e9


def test_switchover_to_a_named_member_loses_nothing_and_the_old_primary_streams_from_it(k8s):
    """pghactl switchover on kubernetes, a writer committing all along: pghad records the
    switchover on the Lease; test-0's self-fence watch reads it there and shuts test-0 down
    cleanly (a fast shutdown, not its pod's deletion, which is an immediate one); its
    container ends with pg_control's shutdown checkpoint in its termination message, and
    test-2 is promoted only once it has received that checkpoint. test-0 then rejoins as a
    standby of test-2."""
    daemon = k8s.start_daemon()
    k8s.wait_healthy()
    assert k8s.rw_member() == ["test-0"]
    old_pod = k8s.pods()["postgres-test-0"]
    mark = daemon.log_mark()
    addresses = [k8s.address(f"test-{index}") for index in range(REPLICAS)]
    writer = Writer(k8s, addresses)
    try:
        pgharness.wait_until(lambda: len(writer.acknowledged()) > 50, timeout=20, what="the writer's first commits")
        asked = time.monotonic_ns()
        result = pghactl(k8s, "switchover", "test", "--to", "test-2")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "switchover from test-0 to test-2 completed" in result.stdout, result.stdout
        pgharness.wait_until(lambda: k8s.rw_member() == ["test-2"], timeout=60, what="test-rw selecting test-2")
        before = len(writer.acknowledged())
        pgharness.wait_until(lambda: len(writer.acknowledged()) > before + 50, timeout=30,
                             what="commits on test-2")
    finally:
        writer.stop()
    gap = write_gap(writer, asked)
    # for the record (timings are benchmarks, not assertions: bench/k8s-switchover)
    print(f"switchover write gap: {gap:.3f} s", file=sys.stderr)
    if os.environ.get("PGHA_BENCH_SWITCHOVER"):
        took = re.search(r"completed in (\d+) ms", result.stdout)
        with open(os.environ["PGHA_BENCH_SWITCHOVER"], "a") as out:
            out.write(json.dumps({"gap_s": round(gap, 3), "completed_ms": int(took.group(1)) if took else None})
                      + "\n")
    acknowledged = set(writer.acknowledged())
    rows = {row[0] for row in k8s.sql("test-2", "SELECT id FROM failover_writer")}
    assert acknowledged - rows == set(), f"{len(acknowledged - rows)} acknowledged commits lost"

    # test-0 was shut down cleanly by its own pod, not deleted: its container ended by
    # itself, with its shutdown checkpoint in the termination message pghad waited on
    log = daemon.log_text(mark)
    assert "[test-0] switchover: its self-fence watch shuts it down cleanly" in log, log
    assert "[test-0] fence" not in log and "fencing" not in log, log
    if not os.environ.get("PGHA_REAL_NODE_DIR"):  # the node agent keeps the ended pod's output
        old_log = pod_log(k8s, old_pod)
        assert "self-fence: PostgreSQL shuts down cleanly now" in old_log, old_log
        assert "switchover: clean shutdown of PostgreSQL (SIGINT" in old_log, old_log
        assert "received SIGTERM" not in old_log.split("switchover: clean shutdown")[0], old_log
        assert re.search(r"termination message: pgha-entrypoint pg_control: state=shut-down checkpoint=\S+ "
                         r"timeline=1", old_log), old_log

    # the old primary rejoins streaming from test-2, its history not rewound away
    cluster = k8s.wait_healthy(timeout=120, after=k8s.iteration_mark())
    members = {member["name"]: member for member in cluster["members"]}
    assert members["test-2"]["role"] == "primary"
    assert members["test-0"]["role"] == "replica" and members["test-0"]["state"] == "streaming"
    pgharness.wait_until(
        lambda: k8s.sql("test-2", "SELECT state FROM pg_stat_replication WHERE application_name = 'test-0'",
                        check=False) == [("streaming",)],
        timeout=60, what="test-0 streaming from test-2")
    assert k8s.sql("test-0", "SELECT pg_is_in_recovery()") == [(True,)]
    assert k8s.rw_member() == ["test-2"]
    assert "switchover from test-0 to test-2 completed" in cluster["failover"]["last"], cluster["failover"]
    assert "moved aside" not in daemon.log_text(mark)


@agent_only("stops the target's WAL receiver by the pid PostgreSQL reports, a container's pid on a real node")
def test_a_switchover_whose_target_does_not_receive_the_shutdown_checkpoint_is_abandoned(k8s):
    """test-2's WAL receiver is frozen (SIGSTOP): test-0 shuts down cleanly for the
    switchover, but its WAL sender gives test-2 up (wal_sender_timeout) and test-2 never
    receives the shutdown checkpoint. test-2 is never promoted: the switchover is abandoned
    and test-0 runs as the primary again."""
    # long enough for the request to be checked while test-2 still counts as synchronous
    # (its sender waits that long for it), short enough to end test-0's shutdown before
    # the switchover's 30 s
    daemon = k8s.start_daemon(parameters='wal_sender_timeout = "15s";')
    k8s.wait_healthy()
    pgharness.wait_until(lambda: k8s.sql("test-0", "SHOW wal_sender_timeout", check=False) == [("15s",)], timeout=60,
                         what="wal_sender_timeout applied on test-0")

    def settled_receiver():
        """test-2's WAL receiver, once the same one streams across a whole iteration: the
        first healthy status may precede pghad rewriting test-2's settings, which restarts
        its receiver (the switchover would then find it catching up, not synchronous)."""
        before = k8s.sql("test-2", "SELECT pid FROM pg_stat_wal_receiver", check=False)
        k8s.wait_healthy(after=k8s.iteration_mark())
        after = k8s.sql("test-2", "SELECT pid FROM pg_stat_wal_receiver", check=False)
        return before[0][0] if before and before == after else None
    receiver = pgharness.wait_until(settled_receiver, timeout=120, what="test-2's WAL receiver settled")
    old_pod = k8s.pods()["postgres-test-0"]
    mark = daemon.log_mark()
    os.kill(receiver, signal.SIGSTOP)
    try:
        k8s.sql("test-0", "CREATE TABLE t (v text); INSERT INTO t VALUES ('acknowledged by test-1')")
        result = pghactl(k8s, "switchover", "test", "--to", "test-2")
        assert result.returncode == 1, result.stdout + result.stderr
        assert "abandoned" in result.stdout + result.stderr, result.stdout + result.stderr
    finally:
        os.kill(receiver, signal.SIGCONT)
    log = daemon.log_text(mark)
    assert "[test-2] promote" not in log, log
    assert "switchover from test-0 abandoned" in log, log
    # test-0 did shut down cleanly (not fenced), then was started again in a new pod
    assert "[test-0] switchover: its self-fence watch shuts it down cleanly" in log, log
    assert "[test-0] fence" not in log, log
    assert "PostgreSQL (pid" in pod_log(k8s, old_pod) and "shut down cleanly for a switchover" in pod_log(k8s, old_pod)
    daemon.wait_for_log(r"\[test-0\] start", timeout=60, since=mark)
    # test-0 runs as the primary again, and the cluster heals around it
    cluster = k8s.wait_healthy(timeout=120, after=k8s.iteration_mark())
    members = {member["name"]: member for member in cluster["members"]}
    assert members["test-0"]["role"] == "primary", members
    assert k8s.rw_member() == ["test-0"]
    assert k8s.sql("test-0", "SELECT v FROM t") == [("acknowledged by test-1",)]


@agent_only("removes a WAL segment from the member's volume directory on the agent's node")
def test_a_member_whose_rewind_fails_is_moved_aside_in_its_volume_and_cloned_again(k8s):
    """test-0, the primary, loses the WAL segment of its latest checkpoint (the standbys
    have it); its pod is then deleted: a failover. Its rejoin's pg_rewind cannot recover it
    (the segment is gone), so pgha-entrypoint moves its data directory aside within the
    volume, clones the new primary again, and pghad's status and history say so."""
    daemon = k8s.start_daemon()
    k8s.wait_healthy()
    old_pod = k8s.pods()["postgres-test-0"]
    claim = k8s.claims()["pgdata-postgres-test-0"]["metadata"]["name"]
    volume = os.path.join(k8s.workdir, "node", "volumes", k8s.namespace, claim)
    data = os.path.join(volume, "pgdata")
    k8s.sql("test-0", "CREATE TABLE t (v text); INSERT INTO t VALUES ('before')")
    k8s.sql("test-0", "CHECKPOINT")
    segment = k8s.sql("test-0", "SELECT pg_walfile_name(checkpoint_lsn) FROM pg_control_checkpoint()")[0][0]
    # the checkpoint's segment is no longer the one written: the standbys received it all
    k8s.sql("test-0", "SELECT pg_switch_wal()")
    k8s.sql("test-0", "INSERT INTO t VALUES ('after the switch')")
    for member in ("test-1", "test-2"):
        pgharness.wait_until(lambda: k8s.sql(member, "SELECT count(*) FROM t", check=False) == [(2,)], timeout=30,
                             what=f"both rows on {member}")
    os.unlink(os.path.join(data, "pg_wal", segment))
    mark = daemon.log_mark()
    k8s.api.delete(k8s.path("pods", "postgres-test-0"))

    daemon.wait_for_log(r"\[test-0\] rejoin failed: its data directory is kept as ", timeout=180, since=mark)
    cluster = k8s.wait_healthy(timeout=180, after=k8s.iteration_mark())
    # the status says what pgha-entrypoint did, and where the old data is (its volume claim
    # keeps it: the member's last event is soon another)
    event = {member["name"]: member for member in cluster["members"]}["test-0"]["kept_aside"]
    match = re.search(r"its data directory is kept as (\S+) in its volume and it was copied again from the "
                      r"primary at \S+, since pg_rewind exited with status 1", event)
    assert match, event
    assert all(member["kept_aside"] == "" for member in cluster["members"] if member["name"] != "test-0")
    shown = pghactl(k8s, "status", "--json")
    assert shown.returncode == 0 and "kept as" in shown.stdout, shown.stdout + shown.stderr
    new_primary = k8s.rw_member()[0]
    assert new_primary in ("test-1", "test-2")
    members = {member["name"]: member for member in cluster["members"]}
    assert members["test-0"]["role"] == "replica" and members["test-0"]["state"] == "streaming"
    assert k8s.sql("test-0", "SELECT count(*) FROM t") == [(2,)]
    # the old data is still in the volume, beside the new copy, whole: the removed
    # segment alone is missing
    kept = [name for name in os.listdir(volume) if name.startswith("pgdata.unusable.")]
    assert len(kept) == 1, os.listdir(volume)
    assert match.group(1) == os.path.join("/pgdata", kept[0]) or match.group(1).endswith("/" + kept[0]), (event, kept)
    kept_path = os.path.join(volume, kept[0])
    assert os.path.isfile(os.path.join(kept_path, "PG_VERSION"))
    assert os.path.isfile(os.path.join(kept_path, "global", "pg_control"))
    assert not os.path.exists(os.path.join(kept_path, "pg_wal", segment))
    assert os.path.isfile(os.path.join(data, "PG_VERSION"))
    rejoin_pod = k8s.pods()["postgres-test-0"]
    assert rejoin_pod["metadata"]["uid"] != old_pod["metadata"]["uid"]
    rejoin_log = pod_log(k8s, rejoin_pod)
    assert "pg_rewind failed: PGDATA" in rejoin_log and "is kept as" in rejoin_log, rejoin_log
    # the history keeps it too
    history = pghactl(k8s, "history", "test", "--json")
    assert history.returncode == 0, history.stderr
    entries = [entry for entry in json.loads(history.stdout) if entry["member"] == "test-0"]
    assert any("kept as" in json.dumps(entry) for entry in entries), entries


@agent_only("stops the postmaster by the pid in the agent's volume directory")
def test_a_short_blip_of_the_primary_keeps_its_route(k8s):
    """The primary stops answering for less than failover.timeout_ms (its postmaster
    frozen): its pod stays role=primary, selected by test-rw, all along; routes follow
    the failover when it begins, not a probe that failed."""
    daemon = k8s.start_daemon(cluster_extra="failover = { timeout_ms = 30000; };")
    k8s.wait_healthy()
    primary = k8s.rw_member()[0]
    claim = k8s.claims()[f"pgdata-postgres-{primary}"]["metadata"]["name"]
    with open(os.path.join(k8s.workdir, "node", "volumes", k8s.namespace, claim, "pgdata", "postmaster.pid")) as pid_file:
        postmaster = int(pid_file.readline())
    mark = daemon.log_mark()
    os.kill(postmaster, signal.SIGSTOP)
    try:
        pgharness.wait_until(lambda: k8s.member_state()[1][primary]["state"] == "unreachable", timeout=30,
                             what=f"pghad to find {primary} unreachable")
        # several iterations with it unreachable, each of which could have relabelled it
        seen = k8s.iteration_mark()
        pgharness.wait_until(lambda: k8s.iteration_mark() >= seen + 3, timeout=30, what="three more iterations")
        assert k8s.member_state()[1][primary]["state"] == "unreachable"
        assert k8s.rw_member() == [primary]
        assert k8s.pods()[f"postgres-{primary}"]["metadata"]["labels"]["role"] == "primary"
    finally:
        os.kill(postmaster, signal.SIGCONT)
    k8s.wait_healthy(after=k8s.iteration_mark())
    assert k8s.rw_member() == [primary]
    log = daemon.log_text(mark)
    assert "pod labelled" not in log and "fence" not in log, log


@agent_only("freezes the node agent's process")
def test_a_member_is_not_created_again_while_its_old_pod_may_run(k8s):
    """The node agent (kubelet) is frozen: it hears no deletion, and the primary's
    container runs on. The failover does not wait for it (the cut protects the
    candidates), but the old member is not created again on its volume while its pod is
    not reported gone; once the kubelet is back, it stops the container, removes the pod,
    and only then the member comes back as a standby."""
    daemon = k8s.start_daemon()
    k8s.wait_healthy()
    old_primary = k8s.rw_member()[0]
    old_pod = k8s.pods()[f"postgres-{old_primary}"]
    old_uid = old_pod["metadata"]["uid"]
    old_address = old_pod["status"]["podIP"]
    mark = daemon.log_mark()
    os.kill(k8s.agent.process.pid, signal.SIGSTOP)
    try:
        k8s.api.delete(k8s.path("pods", f"postgres-{old_primary}"))
        new_primary = pgharness.wait_until(
            lambda: next((name for name in (k8s.rw_member() or []) if name != old_primary), None), timeout=60,
            what="test-rw selecting a new primary while the old pod's kubelet hears nothing")
        # a few iterations more: each could have created the old member again
        seen = k8s.iteration_mark()
        pgharness.wait_until(lambda: k8s.iteration_mark() >= seen + 3, timeout=30, what="three more iterations")
        pod = k8s.pods().get(f"postgres-{old_primary}")
        assert pod is not None and pod["metadata"]["uid"] == old_uid and pod["metadata"].get("deletionTimestamp")
        # no kubelet stopped its container, as on a node cut off: the cut kept it from the
        # others, and its own pgha-entrypoint, seeing the deletion, stopped PostgreSQL
        pgharness.wait_until(lambda: "PostgreSQL stopped" in pod_log(k8s, old_pod), timeout=30,
                             what="the old primary stopping itself")
        assert "its pod is being deleted" in pod_log(k8s, old_pod)
        assert "received SIGTERM" not in pod_log(k8s, old_pod)
        assert k8s.sql(old_primary, "SELECT 1", address=old_address, check=False) is None
        log = daemon.log_text(mark)
        assert f"[{old_primary}] clone" not in log and f"[{old_primary}] rejoin" not in log
        assert f"[{old_primary}] start" not in log, log
    finally:
        os.kill(k8s.agent.process.pid, signal.SIGCONT)
    # the kubelet is back: the container stops, the pod goes, then the member comes back
    cluster = k8s.wait_healthy(timeout=120, after=k8s.iteration_mark())
    assert k8s.rw_member() == [new_primary]
    pod = k8s.pods()[f"postgres-{old_primary}"]
    assert pod["metadata"]["uid"] != old_uid
    assert {member["name"]: member["role"] for member in cluster["members"]}[old_primary] == "replica"
    agent_log = k8s.agent.log_text()
    removed = agent_log.index(f"postgres-{old_primary}: removed")
    assert agent_log.index(f"postgres-{old_primary}: bound to", removed) > removed


def pghactl(k8s, *arguments, name="pghad", timeout=150):
    """pghactl on the control socket of pghad name, as the test account."""
    program = pgharness.install_program("pghactl", os.path.join(k8s.workdir, "bin"), k8s.account)
    return pgharness.run_as_user([program, "-s", os.path.join(k8s.workdir, f"{name}.sock"), *arguments],
                                 account=k8s.account, capture_output=True, text=True, timeout=timeout)


@agent_only("signals a WAL sender by the pid PostgreSQL reports, a container's pid on a real node")
def test_a_diverged_standby_is_rewound_in_a_new_pod_and_streams_again(k8s):
    """test-0's WAL sender to test-2 stops (SIGSTOP) while test-1 acknowledges every
    commit; the operator forces a failover to test-2, behind: test-1, still running, now
    holds WAL past the point where test-2's timeline forked off. pghad must never list it,
    delete its pod, and create it again with PGHA_REWIND=1, so that pgha-entrypoint
    rewinds it although it has standby.signal; it then streams from test-2.

    The sender is stopped rather than test-2's receiver: what a sender wrote before it
    stopped is delivered, and it sends nothing after, whereas a receiver stopped in the
    middle of reading would, once continued, still read the WAL queued in its socket
    (test-2 would not be behind at all). pghad's cut ends test-2's receiver as usual
    (nothing to continue by hand), and the fence's SIGKILL of test-0's pod ends the sender."""
    daemon = k8s.start_daemon()
    k8s.wait_healthy()
    k8s.sql("test-0", "CREATE TABLE t (v text); INSERT INTO t VALUES ('common')")
    for member in ("test-1", "test-2"):
        pgharness.wait_until(lambda: k8s.sql(member, "SELECT count(*) FROM t", check=False) == [(1,)], timeout=30,
                             what=f"the common row on {member}")
    sender = k8s.sql("test-0", "SELECT pid FROM pg_stat_replication WHERE application_name = 'test-2' "
                               "AND state = 'streaming'")[0][0]
    stopped = []
    try:
        os.kill(sender, signal.SIGSTOP)
        stopped.append(sender)
        # each commit waits for one of ANY 1 ("test-1", "test-2"): test-1 acknowledges
        for _ in range(20):
            k8s.sql("test-0", "INSERT INTO t VALUES ('old timeline only')")
        pgharness.wait_until(lambda: k8s.sql("test-1", "SELECT count(*) FROM t") == [(21,)], timeout=30,
                             what="test-1 to replay the commits test-2 never receives")
        assert k8s.sql("test-2", "SELECT count(*) FROM t") == [(1,)]
        uid = k8s.pods()["postgres-test-1"]["metadata"]["uid"]
        mark = daemon.log_mark()
        result = pghactl(k8s, "failover", "test", "--to", "test-2", "--force")
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass  # the fence killed it

    daemon.wait_for_log(r"\[test-1\] rejoin test-2: test-1 diverged", timeout=60, since=mark)
    daemon.wait_for_log(r"\[test-1\] rejoin (finished|failed)", timeout=180, since=mark)
    # streaming from test-2, in a status taken after the rejoin ended
    pgharness.wait_until(
        lambda: k8s.sql("test-2", "SELECT state FROM pg_stat_replication WHERE application_name = 'test-1'",
                        check=False) == [("streaming",)],
        timeout=60, what="test-1 streaming from test-2")
    cluster = k8s.wait_healthy(timeout=180, after=k8s.iteration_mark())
    members = {member["name"]: member for member in cluster["members"]}
    assert members["test-2"]["role"] == "primary"
    assert members["test-1"]["role"] == "replica" and members["test-1"]["state"] == "streaming"
    primaries = [index for index in range(REPLICAS)
                 if k8s.sql(f"test-{index}", "SELECT pg_is_in_recovery()") == [(False,)]]
    assert primaries == [2]

    log = daemon.log_text(mark)
    # rewound in a new pod told to, not moved aside: its own last rows are gone
    assert "[test-1] rejoin finished: rewound with pg_rewind from the primary at " in log, log
    pod = k8s.pods()["postgres-test-1"]
    assert pod["metadata"]["uid"] != uid
    assert {"name": "PGHA_REWIND", "value": "1"} in pod["spec"]["containers"][0]["env"]
    assert k8s.sql("test-1", "SELECT count(*) FROM t WHERE v = 'old timeline only'") == [(0,)]
    assert k8s.sql("test-1", "SELECT received_tli FROM pg_stat_wal_receiver") == [(2,)]
    # from the failover until pghad saw test-1 diverged and began its rewind, no list
    # test-2 was given named it: not the one before its promotion, nor those after. (The
    # rewound pod may stream, and be listed, before "rejoin finished" is logged.)
    promoted = log.index("[test-2] promoted")
    rewound = log.index("[test-1] rejoin test-2")
    assert promoted < rewound
    lists = []
    for line in log[:rewound].splitlines():
        if "[test-2] set-synchronous" in line and "call for" in line:
            lists.append(line.split("call for", 1)[1])
        elif "[test-2] set-synchronous" in line and "before its promotion" in line:
            lists.append(line.split("gets synchronous_standby_names =", 1)[1].split("before its promotion")[0])
    assert lists, log
    for listed in lists:
        assert '"test-1"' not in listed, listed
    assert members["test-1"]["sync_state"] in ("quorum", "sync")


def test_only_the_lease_holder_acts_and_another_takes_over(k8s):
    first = k8s.start_daemon("first", lease_seconds=4)
    second = k8s.start_daemon("second", lease_seconds=4)
    k8s.wait_healthy(name="first")
    leases = {name: status(k8s.workdir, name)["clusters"][0]["lease"] for name in ("first", "second")}
    holders = [name for name, lease in leases.items() if lease["held"]]
    assert len(holders) == 1, leases
    holder = holders[0]
    other = "second" if holder == "first" else "first"
    assert leases[other]["holder"] == holder
    assert "not acting" in status(k8s.workdir, other)["clusters"][0]["waiting"]
    uids = {name: pod["metadata"]["uid"] for name, pod in k8s.pods().items()}

    killed = time.monotonic()
    k8s.daemons[holder].stop(signal.SIGKILL)
    pgharness.wait_until(lambda: status(k8s.workdir, other)["clusters"][0]["lease"]["held"], timeout=20,
                         what=f"{other} taking the lease over")
    took = time.monotonic() - killed
    # the lease is 4 s: taken over after it, within it plus one renewal and an iteration
    assert took < 4 + 0.8 + 1.5, took
    lease = k8s.api.get(f"/apis/coordination.k8s.io/v1/namespaces/{k8s.namespace}/leases/pgha-test")
    assert lease["spec"]["holderIdentity"] == other
    # healthy as the new holder sees it once it acts, not in a view from before the takeover
    # (it observed all along)
    k8s.wait_healthy(name=other, after=k8s.iteration_mark(other))
    assert {name: pod["metadata"]["uid"] for name, pod in k8s.pods().items()} == uids
    primaries = [member for member in range(REPLICAS)
                 if k8s.sql(f"test-{member}", "SELECT pg_is_in_recovery()") == [(False,)]]
    assert primaries == [0]
    del first, second


# what pghad logs before it carries out an action: "[cluster-N] NAME: reason"
ACTION_NAMES = ("initialize", "move-aside", "clone", "start", "stop", "restart", "create-replication-role",
                "alter-replication-role", "create-slot", "drop-slot", "follow", "set-synchronous", "configure",
                "reset-overrides", "rejoin", "cut", "fence", "promote")


def test_a_holder_stopped_past_its_lease_takes_no_action_when_resumed(k8s):
    """The holder decides a failover, records it, and is frozen (SIGSTOP) right before the
    promotion, past its Lease: the other pghad takes the cluster over and finishes the
    failover. Resumed, the first carries out nothing of what it had decided, moves no
    label, and says why."""
    first = k8s.start_daemon("first", lease_seconds=4, env={"PGHA_TEST_STOP_BEFORE": "promote"})
    k8s.wait_healthy(name="first")
    second = k8s.start_daemon("second", lease_seconds=4)
    pgharness.wait_until(lambda: status(k8s.workdir, "second")["clusters"][0]["lease"]["holder"] == "first",
                         timeout=20, what="second to see first holding the lease")
    old_primary = k8s.rw_member()[0]

    # the primary's pod goes: first fails over, records the promotion, and stops before it
    k8s.api.delete(k8s.path("pods", f"postgres-{old_primary}"))
    first.wait_for_log(r"PGHA_TEST_STOP_BEFORE=promote: stopping with SIGSTOP", timeout=60)
    pgharness.wait_until(lambda: pgharness.process_state(first.process.pid) == "T", timeout=10, what="first to be stopped")
    stopped = time.monotonic()
    second.wait_for_log(r"lease pgha-test taken by second", timeout=30)
    took = time.monotonic() - stopped
    # the other finishes the failover from the intent on the Lease
    second.wait_for_log(r"\] promote: ", timeout=60)
    new_primary = pgharness.wait_until(
        lambda: next((name for name, member in (k8s.member_state("second") or ({}, {}))[1].items()
                      if member["role"] == "primary"), None), timeout=60, what="a new primary seen by second")

    mark = first.log_mark()
    os.kill(first.process.pid, signal.SIGCONT)
    refusal = first.wait_for_log(r"WARNING: \[test\] not acting on cluster test: the lease expired (\d+) ms ago",
                                 timeout=30, since=mark)
    first.wait_for_log(r"lease pgha-test lost \(held by another pghad\)", timeout=30, since=mark)
    print(f"second took the lease {took:.2f} s after first stopped; first resumed {refusal.group(1)} ms past "
          "its lease", file=sys.stderr)
    after = first.log_text(mark)
    actions = [line for line in after.splitlines()
               if any(f"] {name}: " in line for name in ACTION_NAMES) or "pod labelled" in line
               or "fenced" in line or "deleted" in line]
    assert actions == [], after
    assert "resumed before promote" in after
    # nothing it had decided happened behind the new holder's back
    assert status(k8s.workdir, "first")["clusters"][0]["lease"]["held"] is False
    lease = k8s.api.get(f"/apis/coordination.k8s.io/v1/namespaces/{k8s.namespace}/leases/pgha-test")
    assert lease["spec"]["holderIdentity"] == "second"
    cluster = k8s.wait_healthy(name="second", timeout=120)
    primaries = [member["name"] for member in cluster["members"] if member["role"] == "primary"]
    assert primaries == [new_primary]


def test_a_lease_changed_behind_the_holder_is_reread_not_overwritten(k8s):
    daemon = k8s.start_daemon("first", lease_seconds=6)
    k8s.wait_healthy(name="first")
    path = f"/apis/coordination.k8s.io/v1/namespaces/{k8s.namespace}/leases/pgha-test"
    lease = k8s.api.get(path)
    state = json.loads(lease["metadata"]["annotations"]["pgha.io/state"])
    state["last_failover"] = "written by an intruder"
    # someone else takes the Lease: it now has a newer resourceVersion than the holder read
    lease["spec"]["holderIdentity"] = "intruder"
    lease["metadata"]["annotations"]["pgha.io/state"] = json.dumps(state)
    mark = daemon.log_mark()
    k8s.api.put(path, lease)
    # a state change asked now is written on the condition of the version the daemon
    # read: refused (409, or the re-read shows another holder), never written over
    answer = control(k8s.workdir, {"command": "pause", "cluster": "test"}, "first")
    assert answer["ok"] is False, answer
    daemon.wait_for_log(r"lease pgha-test lost", timeout=10, since=mark)
    assert status(k8s.workdir, "first")["clusters"][0]["lease"]["held"] is False
    after = k8s.api.get(path)
    assert after["spec"]["holderIdentity"] == "intruder"
    assert json.loads(after["metadata"]["annotations"]["pgha.io/state"]) == state
    # the intruder never renews: after the whole duration the daemon takes the Lease back
    # and goes on from the state the intruder left, not from its own older copy
    daemon.wait_for_log(r"lease pgha-test taken by first", timeout=20, since=mark)
    # taken by the renewal timer, between iterations: the next one loads the state
    taken = k8s.iteration_mark("first")
    reply = pgharness.wait_until(lambda: k8s.member_state("first", after=taken), timeout=10,
                                 what="an iteration after the takeover")[0]
    assert reply["failover"]["last"] == "written by an intruder"
    assert reply["failover"]["paused"] is False


def test_scale_remove_recreate_and_purge_keep_data_until_asked(k8s):
    daemon = k8s.start_daemon()
    k8s.wait_healthy()
    k8s.sql("test-0", "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
    claims = {name: claim["metadata"]["uid"] for name, claim in k8s.claims().items()}

    # down to 2: test-2 leaves the synchronous list, its pod goes, its claim stays
    daemon.write_config(k8s_config(k8s.workdir, k8s.namespace, k8s.kubeconfig, k8s.port, replicas=2))
    daemon.reload()
    pgharness.wait_until(lambda: "postgres-test-2" not in k8s.pods(), timeout=60, what="test-2's pod deleted")
    assert k8s.sql("test-0", "SHOW synchronous_standby_names") == [('ANY 1 ("test-1")',)]
    assert {name: claim["metadata"]["uid"] for name, claim in k8s.claims().items()} == claims

    # the block removed: pods and Services go, claims stay
    daemon.write_config(k8s_config(k8s.workdir, k8s.namespace, k8s.kubeconfig, k8s.port).split("clusters =")[0]
                        + "clusters = ( );\n")
    daemon.reload()
    pgharness.wait_until(lambda: not k8s.pods(), timeout=60, what="every pod deleted")
    pgharness.wait_until(lambda: not [name for name in k8s.services() if name.startswith("test-")], timeout=30,
                         what="the Services deleted")
    assert {name: claim["metadata"]["uid"] for name, claim in k8s.claims().items()} == claims

    # created again: the same claims, the same data, no initdb
    daemon.write_config(k8s_config(k8s.workdir, k8s.namespace, k8s.kubeconfig, k8s.port))
    mark = daemon.log_mark()
    daemon.reload()
    # until pghad has applied the reload its status names no cluster at all
    daemon.wait_for_log(r"configuration reloaded from .*: 1 cluster$", timeout=30, since=mark)
    k8s.wait_healthy()
    assert k8s.sql("test-0", "SELECT v FROM kept") == [(42,)]
    assert k8s.sql("test-2", "SELECT v FROM kept") == [(42,)]
    assert "] initialize:" not in daemon.log_text(mark) and "] clone " not in daemon.log_text(mark)
    assert {name: claim["metadata"]["uid"] for name, claim in k8s.claims().items()} == claims

    # purge: refused while configured, then with the confirmation it deletes the claims
    refused = control(k8s.workdir, {"command": "purge", "cluster": "test", "confirm": "test"})
    assert refused["ok"] is False and "configuration" in refused["error"]
    daemon.write_config(k8s_config(k8s.workdir, k8s.namespace, k8s.kubeconfig, k8s.port).split("clusters =")[0]
                        + "clusters = ( );\n")
    daemon.reload()
    pgharness.wait_until(lambda: not k8s.pods(), timeout=60, what="every pod deleted")
    assert control(k8s.workdir, {"command": "purge", "cluster": "test"})["ok"] is False  # no confirmation
    done = control(k8s.workdir, {"command": "purge", "cluster": "test", "confirm": "test"})
    assert done["ok"] is True, done
    # deleted: without a controller-manager the pvc-protection finalizer keeps them listed,
    # marked for deletion, as a real cluster does until no pod uses them
    assert all(claim["metadata"].get("deletionTimestamp") for claim in k8s.claims().values())
    assert k8s.api.get_or_none(k8s.path("secrets", "pgha-test")) is None
    assert k8s.api.get_or_none(k8s.path("serviceaccounts", "pgha-test-member")) is None
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{k8s.namespace}"
    assert k8s.api.get_or_none(f"{rbac}/roles/pgha-test-member") is None
    assert k8s.api.get_or_none(f"{rbac}/rolebindings/pgha-test-member") is None


def test_a_report_query_holding_replay_does_not_keep_a_standby_streaming_from_the_old_primary(k8s):
    """A report query on test-1 holds its replay (a lock the primary took conflicts with
    it, and with max_standby_streaming_delay = -1 PostgreSQL waits for ever). A changed
    primary_conninfo is then not read by test-1's startup process, and its WAL receiver
    would go on confirming the old primary's commits: the cut must reach it anyway, and
    be confirmed, before the candidate is chosen."""
    daemon = k8s.start_daemon()
    k8s.wait_healthy()
    # PostgreSQL would cancel the report query after 30 s: here nothing but pghad can end it
    settings = psycopg2.connect(k8s.conninfo(k8s.address("test-1")), connect_timeout=3)
    settings.autocommit = True
    with settings.cursor() as cursor:
        cursor.execute("ALTER SYSTEM SET max_standby_streaming_delay = -1")
        cursor.execute("SELECT pg_reload_conf()")
    settings.close()
    k8s.sql("test-0", "CREATE TABLE report (id int)")
    pgharness.wait_until(lambda: k8s.sql("test-1", "SELECT to_regclass('report') IS NOT NULL", check=False) == [(True,)],
                         timeout=30, what="test-1 replaying the table")
    report = psycopg2.connect(k8s.conninfo(k8s.address("test-1")), connect_timeout=3)
    addresses = [k8s.address(f"test-{index}") for index in range(REPLICAS)]
    writer = Writer(k8s, addresses)
    try:
        cursor = report.cursor()
        cursor.execute("SELECT count(*) FROM report")  # a transaction holding its lock on report
        pgharness.wait_until(lambda: len(writer.acknowledged()) > 50, timeout=20, what="the writer's first commits")
        k8s.sql("test-0", "BEGIN; LOCK TABLE report IN ACCESS EXCLUSIVE MODE; COMMIT")
        pgharness.wait_until(lambda: k8s.sql("test-1", "SELECT wait_event_type FROM pg_stat_activity "
                                                       "WHERE backend_type = 'startup'") == [("Lock",)],
                             timeout=30, what="test-1's replay held by the report query")
        mark = daemon.log_mark()
        k8s.api.delete(k8s.path("pods", "postgres-test-0"))
        pgharness.wait_until(lambda: k8s.rw_member() in (["test-1"], ["test-2"]), timeout=60,
                             what="test-rw selecting a new primary")
        before = len(writer.acknowledged())
        pgharness.wait_until(lambda: len(writer.acknowledged()) > before + 50, timeout=30,
                             what="commits on the new primary")
    finally:
        writer.stop()
    new_primary = k8s.rw_member()[0]
    pgharness.assert_cut_before_promotion(daemon.log_text(mark), new_primary, ("test-1", "test-2"))
    # with max_standby_streaming_delay = -1 only pghad's cut can have ended the report session
    with pytest.raises(psycopg2.OperationalError):
        cursor.execute("SELECT 1")
    report.close()
    acknowledged = set(writer.acknowledged())
    rows = {row[0] for row in k8s.sql(new_primary, "SELECT id FROM failover_writer")}
    assert acknowledged - rows == set(), f"{len(acknowledged - rows)} acknowledged commits lost"
    cluster = k8s.wait_healthy(timeout=120)
    assert [m["name"] for m in cluster["members"] if m["role"] == "primary"] == [new_primary]


# ---- the self-fence: a deposed or isolated primary stops taking writes by itself ----

def pod_log(k8s, pod):
    """The output of pod's pgha-entrypoint, as the node agent keeps it (on a real node,
    from the API: kubelet's log of the container)."""
    name, uid = pod["metadata"]["name"], pod["metadata"]["uid"]
    if os.environ.get("PGHA_REAL_NODE_DIR"):
        return k8s.agent.pod_log(name)
    with open(os.path.join(k8s.workdir, "node", "logs", f"{k8s.namespace}_{name}_{uid}.log"), errors="replace") as log:
        return log.read()


def commits(k8s, address):
    """True once the server at address has committed a write (None while it cannot)."""
    try:
        with psycopg2.connect(k8s.conninfo(address), connect_timeout=3) as connection:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute("CREATE TABLE IF NOT EXISTS self_fence_probe (at timestamptz)")
                cursor.execute("INSERT INTO self_fence_probe VALUES (now())")
        return True
    except psycopg2.Error:
        return None


def refuses_writes_after(k8s, address, trigger, what, timeout=60):
    """Waits until the server at address no longer commits a write; returns the seconds
    since trigger (a monotonic time), printed for the record."""
    pgharness.wait_until(lambda: not commits(k8s, address), timeout=timeout, interval=0.05, what=what)
    elapsed = time.monotonic() - trigger
    print(f"{what}: {elapsed:.2f} s", file=sys.stderr)
    return elapsed


def primary_pod(k8s):
    name = k8s.rw_member()[0]
    return name, k8s.pods()[f"postgres-{name}"]


def test_a_primary_whose_lease_names_another_primary_stops_itself(k8s):
    """pghad is gone (killed), the cluster's state on the Lease is changed to name another
    member as the primary: the old primary's own pgha-entrypoint stops PostgreSQL; its
    standbys, which the Lease does not concern, run on."""
    daemon = k8s.start_daemon()
    k8s.wait_healthy()
    name, pod = primary_pod(k8s)
    address = pod["status"]["podIP"]
    assert commits(k8s, address)
    # the member's own token reads its pod and the Lease, and nothing else
    if os.environ.get("PGHA_REAL_NODE_DIR"):
        # where kubelet projects it (the test runs in the node's mount namespace)
        token_path = os.path.join(os.environ["PGHA_REAL_NODE_DIR"], "kubelet", "pods", pod["metadata"]["uid"],
                                  "volumes", "kubernetes.io~projected", "service-account", "token")
    else:
        token_path = os.path.join(k8s.workdir, "node", "pods",
                                  f"{k8s.namespace}_{pod['metadata']['name']}_{pod['metadata']['uid']}", "volumes",
                                  "service-account", "token")
    with open(token_path) as token_file:
        member_api = kube_env.Api(k8s.api.server, ca_data=k8s.kube.ca_pem, token=token_file.read().strip())
    assert member_api.get(k8s.path("pods", pod["metadata"]["name"]))["metadata"]["uid"] == pod["metadata"]["uid"]
    member_api.get(f"/apis/coordination.k8s.io/v1/namespaces/{k8s.namespace}/leases/pgha-test")
    for forbidden in (lambda: member_api.get(k8s.path("secrets", "pgha-test")),
                      lambda: member_api.list(k8s.path("pods")),
                      lambda: member_api.patch(k8s.path("pods", pod["metadata"]["name"]), {"metadata": {}})):
        with pytest.raises(kube_env.KubeError) as denied:
            forbidden()
        assert denied.value.status == 403
    member_api.close()
    daemon.stop(signal.SIGKILL)
    lease_path = f"/apis/coordination.k8s.io/v1/namespaces/{k8s.namespace}/leases/pgha-test"
    lease = k8s.api.get(lease_path)
    state = json.loads(lease["metadata"]["annotations"]["pgha.io/state"])
    index = int(name.rsplit("-", 1)[1])
    other = (index + 1) % REPLICAS
    state["primary"] = other
    k8s.api.patch(lease_path, {"metadata": {"annotations": {"pgha.io/state": json.dumps(state)},
                                            "resourceVersion": lease["metadata"]["resourceVersion"]}})
    refuses_writes_after(k8s, address, time.monotonic(), "the deposed primary refuses writes after the Lease's change")
    pgharness.wait_until(lambda: "PostgreSQL stopped" in pod_log(k8s, pod), timeout=30,
                         what="the supervisor's account of the stop")
    log = pod_log(k8s, pod)
    assert f"the cluster's state on the Lease names member {other} as the primary" in log, log
    assert "self-fence: immediate shutdown of PostgreSQL" in log, log
    for member in range(REPLICAS):
        if member != index:
            assert k8s.sql(f"test-{member}", "SELECT pg_is_in_recovery()") == [(True,)]


@agent_only("freezes the node agent's process")
def test_a_primary_whose_pod_is_deleted_stops_itself_though_its_kubelet_never_acts(k8s):
    """The node agent (kubelet) is frozen and pghad gone: the primary's pod gets a
    deletionTimestamp that no kubelet acts on. pgha-entrypoint sees it and stops
    PostgreSQL itself."""
    daemon = k8s.start_daemon()
    k8s.wait_healthy()
    name, pod = primary_pod(k8s)
    address = pod["status"]["podIP"]
    daemon.stop(signal.SIGKILL)
    os.kill(k8s.agent.process.pid, signal.SIGSTOP)
    try:
        k8s.api.delete(k8s.path("pods", f"postgres-{name}"), grace_period=30)
        deleted = time.monotonic()
        assert k8s.pods()[f"postgres-{name}"]["metadata"].get("deletionTimestamp")
        refuses_writes_after(k8s, address, deleted, "the deleted primary refuses writes, its kubelet frozen")
        pgharness.wait_until(lambda: "PostgreSQL stopped" in pod_log(k8s, pod), timeout=30,
                             what="the supervisor's account of the stop")
        log = pod_log(k8s, pod)
        assert "its pod is being deleted (deletionTimestamp set)" in log, log
        # the kubelet never acted: no SIGTERM reached the container
        assert "received SIGTERM" not in log, log
    finally:
        os.kill(k8s.agent.process.pid, signal.SIGCONT)


def apiserver_process(kube):
    process = next((process for process in getattr(kube, "processes", []) if process.name == "kube-apiserver"), None)
    if process is None:
        pytest.skip("the API server is not one these tests started (PGHA_TEST_KUBECONFIG): it cannot be frozen")
    return process


ISOLATION_SECONDS = 3


def test_an_isolated_primary_without_standbys_stops_itself(k8s):
    """A single member: the API server is frozen (SIGSTOP), so the primary reaches neither
    it nor any standby; it stops after the isolation timeout."""
    apiserver = apiserver_process(k8s.kube)
    k8s.start_daemon(replicas=1, isolation_seconds=ISOLATION_SECONDS)
    pod = pgharness.wait_until(lambda: "test-rw" in k8s.services() and k8s.rw_member() == ["test-0"] and
                               k8s.address("test-0") and k8s.pods()["postgres-test-0"], timeout=120,
                               what="test-0 selected by test-rw")
    address = pod["status"]["podIP"]
    pgharness.wait_until(lambda: commits(k8s, address), timeout=60, what="test-0 taking writes")
    pgharness.wait_until(lambda: "runs as the primary (the API server answers)" in pod_log(k8s, pod), timeout=30,
                         what="the watch's first round as the primary")
    os.kill(apiserver.pid, signal.SIGSTOP)
    frozen = time.monotonic()
    try:
        print(f"API server frozen at {datetime.datetime.now().strftime('%H:%M:%S.%f')[:-3]}", file=sys.stderr)
        elapsed = refuses_writes_after(k8s, address, frozen, "the isolated primary refuses writes after the API server froze")
    finally:
        os.kill(apiserver.pid, signal.SIGCONT)
    log = pod_log(k8s, pod)
    print("".join(line for line in log.splitlines(True) if "self-fence" in line or "stopped" in line), file=sys.stderr)
    found = re.search(r"reached neither the API server nor any streaming standby for (\d+) ms", log)
    assert found, log
    # never before the timeout, counted from the start of the last request that was answered
    assert int(found.group(1)) >= ISOLATION_SECONDS * 1000, found.group(0)
    assert elapsed > 0


def test_an_isolated_primary_with_a_streaming_standby_keeps_running(k8s):
    """Two members: the API server is frozen, but the standby still streams from the
    primary, which therefore is not isolated and keeps taking writes past the timeout."""
    apiserver = apiserver_process(k8s.kube)
    k8s.start_daemon(replicas=2, isolation_seconds=ISOLATION_SECONDS)

    def streaming():
        state = k8s.member_state()
        members = state[1] if state else {}
        return len(members) == 2 and any(m["role"] == "replica" and m["state"] == "streaming"
                                         for m in members.values()) and "test-rw" in k8s.services() and k8s.rw_member()
    pgharness.wait_until(streaming, timeout=120, what="a primary and a streaming standby")
    name, pod = primary_pod(k8s)
    address = pod["status"]["podIP"]
    pgharness.wait_until(lambda: "runs as the primary (the API server answers)" in pod_log(k8s, pod), timeout=30,
                         what="the watch's first round as the primary")
    assert commits(k8s, address)
    os.kill(apiserver.pid, signal.SIGSTOP)
    try:
        pgharness.wait_until(lambda: "standby streams from this primary: it keeps running" in pod_log(k8s, pod),
                             timeout=60, what="the watch past the isolation timeout with a standby streaming")
        assert commits(k8s, address)
        assert "must stop" not in pod_log(k8s, pod)
    finally:
        os.kill(apiserver.pid, signal.SIGCONT)
    assert commits(k8s, address)


def test_a_holder_whose_loop_is_slower_than_its_lease_keeps_it_by_its_renewal_timer(k8s):
    """The holder's loop runs every 6 s, its Lease lasts 4 s (renewed every 0.8 s): renewed
    only from the loop, it would lapse between two iterations and the other pghad, which
    watches it, would take it over. Its own timer renews it between iterations."""
    slow = k8s.start_daemon("slow", lease_seconds=4, replicas=1, loop_interval_ms=6000)
    pgharness.wait_until(lambda: status(k8s.workdir, "slow")["clusters"][0]["lease"]["held"], timeout=30,
                         what="the slow pghad holding the lease")
    other = k8s.start_daemon("other", lease_seconds=4, replicas=1)
    pgharness.wait_until(lambda: status(k8s.workdir, "other")["clusters"][0]["lease"]["holder"] == "slow",
                         timeout=30, what="the other pghad seeing the slow one hold the lease")
    mark = other.log_mark()
    # three of the slow pghad's iterations: more than four Lease durations
    seen = k8s.iteration_mark("slow")
    pgharness.wait_until(lambda: k8s.iteration_mark("slow") >= seen + 3, timeout=60, interval=0.5,
                         what="three more iterations of the slow pghad")
    lease = k8s.api.get(f"/apis/coordination.k8s.io/v1/namespaces/{k8s.namespace}/leases/pgha-test")
    assert lease["spec"]["holderIdentity"] == "slow", lease["spec"]
    assert lease["spec"].get("leaseTransitions", 0) == 0, lease["spec"]
    assert "taken by other" not in other.log_text(mark)
    assert status(k8s.workdir, "slow")["clusters"][0]["lease"]["held"]


def verb_counts(reply):
    """The requests pghad made so far, by verb (all answers together)."""
    counts = {}
    for entry in reply["kubernetes"]["api_requests"]:
        counts[entry["verb"]] = counts.get(entry["verb"], 0) + entry["count"]
    return counts


def test_at_steady_state_only_the_lease_is_renewed(k8s):
    """Pods, claims and Services come from watches resumed from their resourceVersion:
    once the cluster is healthy and nothing changes, over 60 s pghad makes no list, no
    get, nothing but the Lease's renewals (PUT, every lease_seconds/5), and its status
    says so, in its counters and its rates by verb."""
    k8s.start_daemon()
    k8s.wait_healthy()

    def settled():
        before = verb_counts(status(k8s.workdir))
        mark = k8s.iteration_mark()
        pgharness.wait_until(lambda: k8s.iteration_mark() >= mark + 10, timeout=30, what="10 more iterations")
        after = verb_counts(status(k8s.workdir))
        return after if all(after.get(verb, 0) == before.get(verb, 0) for verb in after if verb != "PUT") else None
    start = pgharness.wait_until(settled, timeout=120, interval=0.1, what="10 iterations with no request but PUT")
    begun = time.monotonic()
    # the minute is the measure asked for, not a wait for an event: the status is read all along
    while time.monotonic() - begun < 60:
        assert k8s.healthy() is not None
        time.sleep(2)
    reply = status(k8s.workdir)
    end = verb_counts(reply)
    seconds = time.monotonic() - begun
    delta = {verb: end.get(verb, 0) - start.get(verb, 0) for verb in set(start) | set(end)}
    print(f"steady state over {seconds:.1f} s: {delta}; rates {reply['kubernetes']['requests_per_second']}",
          file=sys.stderr)
    assert {verb: count for verb, count in delta.items() if count and verb != "PUT"} == {}, delta
    # renewed every 0.8 s (lease_seconds 4), checked every 0.4 s
    assert seconds / 1.3 <= delta.get("PUT", 0) <= seconds / 0.8 + 2, delta
    rates = reply["kubernetes"]["requests_per_second"]
    assert rates["seconds"] >= 50 and rates["LIST"] == 0 and rates["GET"] == 0 and rates["WATCH"] == 0, rates
    assert 0.5 <= rates["PUT"] <= 1.3, rates


@agent_only("kills a standby's postmaster by the pid in the agent's volume directory")
def test_a_frozen_api_server_holds_up_no_iteration(k8s):
    """The API server is frozen (SIGSTOP) for 30 s: iterations go on at their pace (none
    waits on it beyond a small budget), the members are probed, a standby killed
    meanwhile is noticed at the next iteration, and the holder stops acting once its
    Lease is over, which it cannot renew. Resumed, the API server sees pghad take its
    Lease again and bring the standby back; the watches sent before the freeze are made
    again from their resourceVersion (their connection lived, a stream may not have)."""
    apiserver = apiserver_process(k8s.kube)
    daemon = k8s.start_daemon()
    k8s.wait_healthy()
    primary = k8s.rw_member()[0]
    standby, other = [f"test-{index}" for index in range(REPLICAS) if f"test-{index}" != primary]
    claim = f"pgdata-postgres-{standby}"
    with open(os.path.join(k8s.workdir, "node", "volumes", k8s.namespace, claim, "pgdata", "postmaster.pid")) as pid_file:
        postmaster = int(pid_file.readline())
    mark = daemon.log_mark()
    samples = []
    os.kill(apiserver.pid, signal.SIGSTOP)
    frozen = time.monotonic()
    try:
        # a few iterations into the freeze: the client has seen it does not answer
        seen = k8s.iteration_mark()
        pgharness.wait_until(lambda: k8s.iteration_mark() >= seen + 3, timeout=10, what="3 iterations, frozen")
        killed = k8s.iteration_mark()
        os.kill(postmaster, signal.SIGKILL)
        # the iteration under way may have probed it before: the one after notices it
        state = pgharness.wait_until(lambda: k8s.member_state(after=killed + 1), timeout=10,
                                     what="2 iterations after the kill")
        assert state[1][standby]["state"] != "streaming", state[1][standby]
        while time.monotonic() - frozen < 30:
            samples.append((time.monotonic(), k8s.iteration_mark()))
            time.sleep(0.2)
        # probes went on all along: the primary and the other standby as they are
        _, members = k8s.member_state()
        assert members[primary]["role"] == "primary" and members[primary]["state"] == "running", members[primary]
        assert members[other]["state"] == "streaming", members[other]
        assert members[standby]["state"] != "streaming", members[standby]
        log = daemon.log_text(mark)
        # the standby's restart was decided; the Lease, not renewed, forbade it
        assert re.search(r"not acting on cluster test: the lease (expired|expires)", log), log
        assert status(k8s.workdir)["clusters"][0]["lease"]["held"] is False
    finally:
        os.kill(apiserver.pid, signal.SIGCONT)
    thawed = time.monotonic()
    daemon.wait_for_log(r"lease pgha-test taken by pghad", timeout=30, since=mark)
    daemon.wait_for_log(r"kubernetes: the API server answers again: watching pods again from where it was",
                        timeout=30, since=mark)
    k8s.wait_healthy(after=k8s.iteration_mark(), timeout=120)
    # the longest time with no iteration completed, frozen: 300 ms apart, each short
    longest, run = 0.0, 0.0
    for earlier, later in zip(samples, samples[1:]):
        run = run + later[0] - earlier[0] if later[1] == earlier[1] else 0.0
        longest = max(longest, run)
    iterations = samples[-1][1] - samples[0][1]
    span = samples[-1][0] - samples[0][0]
    print(f"frozen {thawed - frozen:.1f} s: {iterations} iterations in {span:.1f} s, longest stretch without one "
          f"{longest:.2f} s", file=sys.stderr)
    assert longest < 3.0, f"no iteration for {longest:.2f} s while the API server was frozen"
    assert iterations >= span / 1.5, f"{iterations} iterations in {span:.1f} s"


# ---- what only a real node does: kubelet, containerd and their containers ----

class PodRecorder:
    """Every state of the namespace's member pods, as a watch delivers it, from now on:
    (type, name, uid, the pod) in order; a watch misses no state a poll could."""

    def __init__(self, k8s):
        self.k8s = k8s
        self.events = []
        self.stopped = threading.Event()
        self.error = None
        listed = k8s.api.get(k8s.path("pods"), labelSelector="app=postgres")
        self.resource_version = listed["metadata"]["resourceVersion"]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            while not self.stopped.is_set():
                for kind, pod in self.k8s.api.watch(self.k8s.path("pods"), resource_version=self.resource_version,
                                                    timeout_seconds=5, label_selector="app=postgres"):
                    if kind == "ERROR":
                        raise RuntimeError(f"the pods' watch ended: {pod}")
                    self.resource_version = pod["metadata"]["resourceVersion"]
                    if kind != "BOOKMARK":
                        self.events.append((kind, pod["metadata"]["name"], pod["metadata"]["uid"], pod))
                    if self.stopped.is_set():
                        return
        except Exception as error:  # reported by stop()
            self.error = error

    def stop(self):
        self.stopped.set()
        self.thread.join(timeout=30)
        assert self.error is None, f"the pods' watch failed: {self.error!r}"

    def of(self, uid):
        return [(kind, pod) for kind, _, seen, pod in self.events if seen == uid]

    def first(self, uid, condition):
        """The index in events and the pod of uid's first state that meets condition, or None."""
        for index, (kind, _, seen, pod) in enumerate(self.events):
            if seen == uid and condition(kind, pod):
                return index, pod
        return None


def terminated(pod):
    """The member container's terminated state in pod's status, or None. kubelet 1.20 may
    report it as the last state, reason ContainerStatusUnknown, when the container was
    gone before it read its exit (exit code 137 then stands for "unknown")."""
    for container in (pod.get("status") or {}).get("containerStatuses") or []:
        if container["name"] == "postgres" or len(pod["status"]["containerStatuses"]) == 1:
            return ((container.get("state") or {}).get("terminated")
                    or (container.get("lastState") or {}).get("terminated"))
    return None


def ctr(*arguments):
    """ctr on the real node's containerd, in the namespace kubelet uses."""
    socket = os.path.join(os.environ["PGHA_REAL_NODE_DIR"], "containerd", "containerd.sock")
    result = subprocess.run(["ctr", "--address", socket, "-n", "k8s.io", *arguments], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, f"ctr {' '.join(arguments)}: {result.stderr}"
    return result.stdout


def host_postmaster(container):
    """The host pid of the postmaster in container: among its task's processes, the
    postgres whose parent is the container's first process (pgha-entrypoint)."""
    pids = [int(line.split()[0]) for line in ctr("task", "ps", container).splitlines()[1:] if line.strip()]
    init = int(ctr("task", "ls").split(container, 1)[1].split()[0])
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/comm") as comm:
                name = comm.read().strip()
        except OSError:
            continue
        if name == "postgres" and int(fields[1]) == init:
            return pid
    raise AssertionError(f"no postmaster among the processes {pids} of container {container} (init {init})")


@real_node_only("kills a container through containerd, on a real node")
@pytest.mark.parametrize("how", ["runtime", "host"])
def test_the_primary_container_killed_on_the_node_fails_over_and_its_pod_is_replaced(k8s, how):
    """The primary's container is killed under kubelet: by the runtime (ctr task kill -s
    SIGKILL, as an OOM kill or a crashed runtime would) or its postmaster alone killed from
    the host. pgha's pods have restartPolicy Never: kubelet does not start the container
    again, the pod ends Failed, pghad fails over and makes a new pod for the member, which
    comes back as a standby. The writer commits through test-rw's ClusterIP and loses none
    of its acknowledged commits."""
    daemon = k8s.start_daemon()
    k8s.wait_healthy()
    mark = daemon.log_mark()
    primary = k8s.rw_member()[0]
    old = k8s.pods()[f"postgres-{primary}"]
    assert old["spec"]["restartPolicy"] == "Never"
    container = old["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
    cluster_ip = k8s.services()["test-rw"]["spec"]["clusterIP"]
    recorder = PodRecorder(k8s)
    writer = Writer(k8s, [cluster_ip])
    try:
        pgharness.wait_until(lambda: len(writer.acknowledged()) > 50, timeout=30,
                             what="the writer's first commits through test-rw's ClusterIP")
        killed = time.monotonic()
        if how == "runtime":
            ctr("task", "kill", "-s", "SIGKILL", container)
        else:
            os.kill(host_postmaster(container), signal.SIGKILL)
        pgharness.wait_until(lambda: k8s.rw_member() not in ([], [primary]), timeout=90,
                             what="test-rw selecting a new primary")
        print(f"container killed ({how}): test-rw selects {k8s.rw_member()} "
              f"{time.monotonic() - killed:.2f} s after", file=sys.stderr)
        before = len(writer.acknowledged())
        pgharness.wait_until(lambda: len(writer.acknowledged()) > before + 50, timeout=60,
                             what="commits on the new primary through the ClusterIP")
    finally:
        writer.stop()
    new_primary = k8s.rw_member()[0]
    acknowledged = set(writer.acknowledged())
    rows = {row[0] for row in k8s.sql(new_primary, "SELECT id FROM failover_writer")}
    assert acknowledged - rows == set(), f"{len(acknowledged - rows)} acknowledged commits lost"

    # the member comes back, in a new pod, as a standby of the new primary
    uid = old["metadata"]["uid"]
    pgharness.wait_until(lambda: k8s.pods().get(f"postgres-{primary}", {}).get("metadata", {}).get("uid", uid) != uid,
                         timeout=120, what=f"a new pod for {primary}")
    cluster = k8s.wait_healthy(timeout=180)
    members = {member["name"]: member for member in cluster["members"]}
    assert members[primary]["role"] == "replica" and members[primary]["state"] == "streaming", members[primary]
    recorder.stop()

    # what kubelet reported of the old pod: its container ended, killed, and was never
    # started again (restartPolicy Never); the pod Failed, and it went before its
    # replacement came
    ended = recorder.first(uid, lambda kind, pod: terminated(pod) is not None)
    assert ended, f"kubelet never reported the container of {primary} ended: {recorder.of(uid)}"
    state = terminated(ended[1])
    if how == "runtime":
        assert state["exitCode"] == 128 + signal.SIGKILL, state
    else:
        assert state["exitCode"] != 0, state
    statuses = [pod["status"].get("containerStatuses", [{}])[0] for _, pod in recorder.of(uid)]
    assert all(status.get("restartCount", 0) == 0 for status in statuses), statuses
    failed = recorder.first(uid, lambda kind, pod: pod["status"].get("phase") == "Failed")
    assert failed, [pod["status"].get("phase") for _, pod in recorder.of(uid)]
    gone = recorder.first(uid, lambda kind, pod: kind == "DELETED")
    new_uid = k8s.pods()[f"postgres-{primary}"]["metadata"]["uid"]
    added = recorder.first(new_uid, lambda kind, pod: kind == "ADDED")
    assert gone and added and gone[0] < added[0], "the new pod came before the old one was gone"
    assert cluster["failover"]["last"], cluster["failover"]
    assert "failover" in daemon.log_text(mark)


@real_node_only("kubelet stops the container within the pod's termination grace, on a real node")
def test_a_deleted_pod_is_stopped_within_the_grace_pgha_sets_and_made_again_after(k8s):
    """A member pod deleted as kubectl delete does (no grace given: the pod's own, which
    pghad sets): it stays, Terminating, with that grace; kubelet sends SIGTERM, which
    pgha-entrypoint makes an immediate shutdown, so the container ends by itself (not
    SIGKILLed when the grace runs out); only then does the pod go, and only after that is
    the member's new pod made, on the same claim."""
    k8s.start_daemon()
    k8s.wait_healthy()
    k8s.sql(k8s.rw_member()[0], "CREATE TABLE kept (v int); INSERT INTO kept VALUES (1)")
    member = next(name for name in (f"test-{index}" for index in range(REPLICAS)) if name not in k8s.rw_member())
    old = k8s.pods()[f"postgres-{member}"]
    uid = old["metadata"]["uid"]
    grace = old["spec"]["terminationGracePeriodSeconds"]
    assert 0 < grace < 30, f"pghad sets a short termination grace, not the default 30 s: {grace}"
    recorder = PodRecorder(k8s)
    deleted = time.monotonic()
    k8s.api.delete(k8s.path("pods", f"postgres-{member}"))
    pgharness.wait_until(lambda: k8s.pods().get(f"postgres-{member}", {}).get("metadata", {}).get("uid", uid) != uid,
                         timeout=120, what=f"a new pod for {member}")
    k8s.wait_healthy(timeout=180)
    assert k8s.sql(member, "SELECT v FROM kept") == [(1,)]
    recorder.stop()

    terminating = recorder.first(uid, lambda kind, pod: pod["metadata"].get("deletionTimestamp"))
    assert terminating, recorder.of(uid)
    assert terminating[1]["metadata"]["deletionGracePeriodSeconds"] == grace, terminating[1]["metadata"]
    ended = recorder.first(uid, lambda kind, pod: terminated(pod) is not None)
    assert ended, f"kubelet never reported the container ended: {[pod['status'] for _, pod in recorder.of(uid)]}"
    state = terminated(ended[1])
    # SIGKILL at the grace's end would be 137 (unless kubelet lost the exit: then 137 says
    # nothing, and the order of events below is what is checked)
    if state.get("reason") != "ContainerStatusUnknown":
        assert state["exitCode"] != 128 + signal.SIGKILL, state
    assert terminating[0] < ended[0], "the container ended before the pod was deleted"
    gone = recorder.first(uid, lambda kind, pod: kind == "DELETED")
    added = recorder.first(k8s.pods()[f"postgres-{member}"]["metadata"]["uid"], lambda kind, pod: kind == "ADDED")
    assert gone and added and ended[0] <= gone[0] < added[0], "the new pod came before the old one was gone"
    print(f"{member}'s container ended {state['reason']} (exit {state['exitCode']}) within its grace of {grace} s; "
          f"healthy again {time.monotonic() - deleted:.1f} s after the delete", file=sys.stderr)
