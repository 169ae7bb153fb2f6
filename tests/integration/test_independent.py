"""One pghad, two clusters acted on independently: a hung member of one cluster delays only
that cluster's turns, never another's failover."""
import os
import re
import signal

import freezer
import pgharness
from test_cluster import daemon_status, members, stop_everything

REPLICAS = 3
# cluster a waits long for its hung member (half its failover timeout, at most 5 s), so
# that a failover of b paced by a's probes would show several of a's probe deadlines
A_TIMEOUT_MS = 10000
A_PROBE_MS = 5000


def two_clusters(workdir, port):
    return f"""
daemon: {{
  state_dir = "{workdir}/state";
  control_socket = "{workdir}/pghad.sock";
  loop_interval_ms = 200;
  log_level = "debug";
}};
platform: {{ local: {{ base_dir = "{workdir}/clusters"; }}; }};
clusters = (
  {{ name = "a"; replicas = {REPLICAS}; port = {port};
     synchronous = {{ method = "any"; number = 1; }};
     failover = {{ timeout_ms = {A_TIMEOUT_MS}; }}; }},
  {{ name = "b"; replicas = {REPLICAS}; port = {port + REPLICAS};
     synchronous = {{ method = "any"; number = 1; }}; }}
);
"""


def cluster_status(workdir, name):
    return next(cluster for cluster in daemon_status(workdir)["clusters"] if cluster["name"] == name)


def healthy(workdir, name, primary=None):
    """The cluster's status once it has one primary (primary, when given, else any) and
    every other member streams synchronously from it, no failover under way; else None."""
    cluster = cluster_status(workdir, name)
    by_name = members(cluster)
    primaries = [member for member, state in by_name.items() if state["role"] == "primary"]
    if len(primaries) != 1 or (primary and primaries[0] != primary) or len(by_name) != REPLICAS:
        return None
    if cluster["failover"]["under_way"] is not None:
        return None
    if any(state["state"] != "streaming" or state["sync_state"] not in ("quorum", "sync")
           for member, state in by_name.items() if member != primaries[0]):
        return None
    return cluster


def data_dir(workdir, member):
    cluster = member.rsplit("-", 1)[0]
    return os.path.realpath(os.path.join(workdir, "clusters", cluster, member, "data"))


def postmaster(workdir, member):
    with open(os.path.join(data_dir(workdir, member), "postmaster.pid")) as pid_file:
        return int(pid_file.readline())


def member_processes(workdir, member):
    """Every process whose working directory is the member's data directory."""
    data = data_dir(workdir, member)
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/cwd") == data:
                    found.append(int(entry))
            except OSError:
                pass
    return found


LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC \S+ (\w+): (\[\S+\] )*(.*)$")


def events(text):
    """(kind, line) of the lines that matter here, in the log's order: "a-timeout" when a
    probe of cluster a's hung member passed its deadline, "b-failover" for each step of
    cluster b's failover."""
    found = []
    for line in text.splitlines():
        if "[a-1]" in line and "probe failed: no answer within" in line:
            found.append(("a-timeout", line))
        elif "[b]" in line and "failover: " in line:
            found.append(("b-failover", line))
    return found


def test_a_hung_member_of_one_cluster_does_not_slow_another_clusters_failover(pghad, tmp_workdir, account):
    port = pgharness.free_port_range(2 * REPLICAS + 1)
    daemon = pghad(two_clusters(tmp_workdir, port), env={"PGHA_TEST_INITDB_NOSYNC": "1"})
    hung = None
    try:
        for name in ("a", "b"):
            pgharness.wait_until(lambda: healthy(tmp_workdir, name, f"{name}-0"), timeout=180,
                                 what=f"cluster {name} healthy")
        # a-1 hangs: a's turns now each wait for its probe's deadline. Frozen, not
        # stopped: pghad sees a stopped postmaster in /proc and does not wait for it
        processes = member_processes(tmp_workdir, "a-1")
        assert processes, "no process of a-1"
        hung = freezer.Frozen(processes)
        pgharness.wait_until(lambda: members(cluster_status(tmp_workdir, "a"))["a-1"]["state"] == "unreachable",
                             timeout=60, what="a-1 unreachable in status")
        # b's primary is killed while a's probe of a-1 is under way
        mark = daemon.log_mark()
        os.kill(postmaster(tmp_workdir, "b-0"), signal.SIGKILL)
        def failed_over():
            cluster = healthy(tmp_workdir, "b")
            return cluster if cluster and cluster["known_primary"] not in ("", "b-0") else None
        pgharness.wait_until(failed_over, timeout=120, what="cluster b failed over and healthy")
        text = daemon.log_text(mark)
        # b's primary, one of the two watched, was seen dying at once: through its pidfd,
        # or through pghad's probe connection its backend closed on its way out, whichever
        # of the two the loop took in first (both are in the same wake-up; CI saw each)
        assert ("a primary's postmaster exited: iterating now" in text or
                "b-0: the server closed pghad's probe connection: iterating now" in text), text
        seen = events(text)
        steps = [line for kind, line in seen if kind == "b-failover"]
        assert len(steps) >= 2, f"b's failover steps in the log:\n{text}"
        first = next(i for i, (kind, _) in enumerate(seen) if kind == "b-failover")
        last = max(i for i, (kind, _) in enumerate(seen) if kind == "b-failover")
        # b's steps follow each other as b's members answer: a's probe deadline (a turn of
        # a) passes at most once during the whole of b's failover, where one deadline
        # between each two steps is what pacing b by a's probes would show
        interleaved = [line for kind, line in seen[first:last + 1] if kind == "a-timeout"]
        assert len(interleaved) <= 1, ("b's failover waited for a's hung member:\n" +
                                       "\n".join(line for _, line in seen[first:last + 1]))
        # and a still sees its member hung, on its own deadline
        pgharness.wait_until(lambda: f"probe failed: no answer within {A_PROBE_MS} ms" in daemon.log_text(mark),
                             timeout=60, what="a's probe of a-1 timing out on a's own deadline")
    finally:
        if hung:
            hung.thaw()
        stop_everything(tmp_workdir, daemon)


def data_jobs_config(workdir, port, clusters):
    blocks = ",\n".join(f"""  {{ name = "{name}"; replicas = 2; port = {port + 2 * index};
     synchronous = {{ method = "any"; number = 1; }}; }}""" for index, name in enumerate(clusters))
    return f"""
daemon: {{
  state_dir = "{workdir}/state";
  control_socket = "{workdir}/pghad.sock";
  loop_interval_ms = 200;
  log_level = "debug";
  max_data_jobs = 1;
}};
platform: {{ local: {{ base_dir = "{workdir}/clusters"; }}; }};
clusters = (
{blocks}
);
"""


# "[c1-0] initialize: why", "[c1-1] clone c1-0: why" begin a data job (not "initialize
# queued: ..."); "[c1-0] initialize finished in N ms" or "... failed: why" end it
JOB = re.compile(r"\[(?P<member>[a-z0-9]+-\d+)\] (?:(?P<begin>initialize|clone [a-z0-9]+-\d+): "
                 r"|(?P<end>initialize|clone) (?:finished in|failed))")


def test_data_jobs_across_clusters_never_exceed_the_limit_and_status_shows_the_queue(pghad, tmp_workdir, account):
    """Three new clusters of two members with daemon.max_data_jobs = 1: three initdb and
    three clones, one after the other, never two at once (pghad's log, which one thread
    writes in order), while status and pghactl status show the others queued."""
    clusters = ("c1", "c2", "c3")
    port = pgharness.free_port_range(2 * len(clusters) + 1)
    # throttled clones last long enough for status to show what waits behind one
    daemon = pghad(data_jobs_config(tmp_workdir, port, clusters),
                   env={"PGHA_TEST_INITDB_NOSYNC": "1", "PGHA_TEST_CLONE_MAX_RATE": "8M"})
    pghactl = pgharness.install_program("pghactl", os.path.join(tmp_workdir, "bin"), account)
    try:
        samples = []

        def queue_seen():
            jobs = daemon_status(tmp_workdir)["data_jobs"]
            samples.append(jobs)
            return jobs if jobs["queued"] else None
        jobs = pgharness.wait_until(queue_seen, timeout=120, what="a data job queued in status")
        assert jobs["limit"] == 1 and len(jobs["running"]) <= 1, jobs
        table = pgharness.run_as_user([pghactl, "-s", os.path.join(tmp_workdir, "pghad.sock"), "status"],
                                      account=account, capture_output=True, text=True, timeout=30).stdout
        line = next((line for line in table.splitlines() if line.startswith("data jobs: ")), None)
        assert line and "(at most 1)" in line and "; queued: " in line, table

        def all_streaming():
            reply = daemon_status(tmp_workdir)
            samples.append(reply["data_jobs"])
            for cluster in reply["clusters"]:
                by_name = members(cluster)
                if len(by_name) != 2 or by_name[f"{cluster['name']}-1"]["state"] != "streaming":
                    return None
            return reply
        reply = pgharness.wait_until(all_streaming, timeout=300, what="every cluster's standby streaming")
        assert not reply["data_jobs"]["running"] and not reply["data_jobs"]["queued"], reply["data_jobs"]
        assert all(len(sample["running"]) <= 1 for sample in samples), [s for s in samples if len(s["running"]) > 1]

        running, begun, most = set(), [], 0
        for line in daemon.log_text().splitlines():
            match = JOB.search(line)
            if not match:
                continue
            if match["begin"]:
                running.add(match["member"])
                begun.append((match["begin"].split()[0], match["member"]))
                most = max(most, len(running))
            else:
                running.discard(match["member"])
        assert sorted(begun) == sorted([("initialize", f"{name}-0") for name in clusters] +
                                       [("clone", f"{name}-1") for name in clusters]), begun
        assert most == 1, f"{most} data jobs at once: {begun}"
        assert "queued: 1 data job running (daemon.max_data_jobs = 1)" in daemon.log_text()
    finally:
        stop_everything(tmp_workdir, daemon)
