"""partition_measure: a pytest plugin (pytest -p partition_measure) that bench/partition loads
to measure tests d, e and f of tests/integration/test_k8s_partition.py without changing them.

Around each of those tests it records when the test touched the network (it wraps the
methods of the test's nodes.Network), samples both pghad's status (every 0.2 s, over their
control sockets) and the member pods (every 0.5 s, from the API server) on threads of its
own, and once the test has run (passed or failed) computes, from the writers' logs
(bench/failover-writer: monotonic ns), pghad's logs (UTC wall clock, ms; converted with
the offset between the two clocks read at the fault) and those samples, the measurements
bench/partition tabulates. It appends them as one JSON line to $PGHA_PARTITION_RESULTS,
and copies the logs (pghad, node agents, writers) to $PGHA_PARTITION_LOGS/<fault>-<time>/
when that is set. A test that failed before healing is healed here, so that lost commits
are counted on the final primary all the same.

With $PGHA_PARTITION_HOLD_E > 0, test e's heal waits until the Lease holder's status shows
a synchronous list without the isolated standby, at most that many seconds: the test heals
as soon as it has seen commits go on, before the list could change.

The functions above the plugin's hooks are pure: they read text and lists, not servers.
"""
import datetime
import json
import os
import re
import shutil
import threading
import time

FAULTS = {"test_d_lease_holder_node_isolated": "d", "test_e_synchronous_standby_node_isolated": "e",
          "test_f_flapping_partitions": "f"}
# decide.c's action_type_names: the lines "[member] verb: reason" pghad logs for each action
ACTIONS = ("initialize", "move-aside", "clone", "start", "stop", "create-replication-role", "alter-replication-role",
           "create-slot", "drop-slot", "follow", "set-synchronous", "configure", "restart", "reset-overrides",
           "fence", "promote", "rejoin", "cut")
LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) UTC \S+ (\w+): (.*)$")
ACTION = re.compile(r"^\[(?P<member>[^\]]+-\d+)\] (?P<verb>" + "|".join(re.escape(verb) for verb in ACTIONS)
                    + r")(?: \S+)?: ")
ACQUIRED = re.compile(r"lease \S+ (?:taken|created) by \S+: acting on the cluster")
LOST = re.compile(r"lease \S+ lost \((?:expired (?P<expired>\d+) ms ago)?.*\): not acting on the cluster")


# ---- pure functions ----

def log_lines(text, offset_ns):
    """pghad's log as (monotonic ns, message): offset_ns is wall clock minus monotonic."""
    lines = []
    for raw in text.splitlines():
        match = LINE.match(raw)
        if not match:
            continue
        wall = datetime.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S.%f").replace(
            tzinfo=datetime.timezone.utc)
        wall_ns = int(wall.timestamp()) * 1_000_000_000 + wall.microsecond * 1000
        lines.append((wall_ns - offset_ns, match.group(3)))
    return lines


def actions(lines, since_ns):
    """(ns, member, verb) of the actions logged from since_ns on."""
    found = []
    for at, message in lines:
        match = ACTION.match(message)
        if at >= since_ns and match:
            found.append((at, match.group("member"), match.group("verb")))
    return found


def holding_intervals(lines, held_at_start, start_ns, end_ns, valid=False):
    """[(from, to)] when this pghad held the Lease by its own log (acquired .. lost); valid:
    until its validity ended instead, by its own clock, which a line "lost (expired N ms
    ago ...)" gives (pghad acts only while the Lease is valid, with a margin)."""
    intervals, since = [], start_ns if held_at_start else None
    for at, message in lines:
        if at < start_ns or at > end_ns:
            continue
        lost = LOST.search(message)
        if ACQUIRED.search(message) and since is None:
            since = at
        elif lost and since is not None:
            expired = int(lost.group("expired")) * 1_000_000 if valid and lost.group("expired") else 0
            intervals.append((since, max(since, at - expired)))
            since = None
    if since is not None:
        intervals.append((since, end_ns))
    return intervals


def most_at_once(interval_lists):
    """The largest number of intervals (one list per pghad) that overlap at one instant."""
    points = sorted([(start, 1) for intervals in interval_lists for start, _ in intervals]
                    + [(end, -1) for intervals in interval_lists for _, end in intervals],
                    key=lambda point: (point[0], point[1]))
    count = best = 0
    for _, step in points:
        count += step
        best = max(best, count)
    return best


def acks_by_member(events, member_of_index):
    """[(ns, member)] of a writer's ack lines (ack ID INDEX NS)."""
    return [(int(fields[3]), member_of_index(int(fields[2]))) for fields in events if fields[0] == "ack"]


def acked_by_another(acks, promotions, first_primary, since_ns):
    """Acks from since_ns on by a member that was not the primary at that moment: the
    primary is first_primary until the first promotion logged, then the member of the
    latest one ("promote" lines, the wall-clock ms of the line's start)."""
    promotions = sorted(promotions)
    count = 0
    for at, member in acks:
        if at < since_ns:
            continue
        primary = first_primary
        for promoted_at, promoted in promotions:
            if promoted_at <= at:
                primary = promoted
        if member != primary:
            count += 1
    return count


def longest_gap(times, since_ns):
    """The longest time between two successive acks from the last one before since_ns on
    (None with fewer than two)."""
    times = sorted(times)
    before = [at for at in times if at < since_ns]
    kept = ([before[-1]] if before else []) + [at for at in times if at >= since_ns]
    if len(kept) < 2:
        return None
    return max(b - a for a, b in zip(kept, kept[1:]))


def primary_changes(connected, since_ns):
    """How many times the writer found a different member primary after since_ns
    ("connected INDEX NS" lines)."""
    changes, current = 0, None
    for fields in connected:
        index, at = int(fields[1]), int(fields[2])
        if at >= since_ns and current is not None and index != current:
            changes += 1
        current = index
    return changes


def partitions(calls, since_ns):
    """How many partitions the calls (ns, method, arguments) made from since_ns on: the
    calls between two heals make one (a cut from both pghad is two calls)."""
    count, healed = 0, True
    for at, method, _ in calls:
        if at < since_ns:
            continue
        if method == "heal":
            healed = True
        elif healed:
            count += 1
            healed = False
    return count


def seconds(ns):
    return None if ns is None else round(ns / 1e9, 3)


# ---- sampling while the test runs ----

class Sampler:
    """Threads that sample each pghad's status and the member pods until stopped."""

    def __init__(self, cluster, status):
        self.cluster = cluster
        self.status = status
        self.stopping = threading.Event()
        self.statuses = []  # (ns, pghad, status or None)
        self.pods = []  # (ns, {pod name: (member, uid)})
        self.threads = [threading.Thread(target=self._statuses, args=(name,), daemon=True)
                        for name in cluster.daemons]
        self.threads.append(threading.Thread(target=self._pods, daemon=True))
        for thread in self.threads:
            thread.start()

    def _statuses(self, name):
        while not self.stopping.wait(0.2):
            try:
                reply = self.status(self.cluster.workdir, name)
            except Exception:  # a pghad that does not answer is sampled as None
                reply = None
            self.statuses.append((time.monotonic_ns(), name, reply))

    def _pods(self):
        while not self.stopping.wait(0.5):
            try:
                pods = {pod["metadata"]["name"]: (pod["metadata"].get("labels", {}).get("member"),
                                                  pod["metadata"]["uid"])
                        for pod in self.cluster.api.list(self.cluster.path("pods"), label_selector="app=postgres")}
            except Exception:
                continue
            self.pods.append((time.monotonic_ns(), pods))

    def stop(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=15)


class Observer:
    """What one test did and saw: its Run, its network calls, the samples."""

    def __init__(self, module, fault):
        self.module = module
        self.fault = fault
        self.hold_s = float(os.environ.get("PGHA_PARTITION_HOLD_E", "0"))
        self.held = False
        self.runs = []
        self.network_calls = []  # (ns, method, node names)
        self.sampler = None
        self.offset_ns = None
        self.initial_pods = None
        self.patched = []

    def patch(self, owner, name, wrapper):
        original = getattr(owner, name)
        self.patched.append((owner, name, original))
        setattr(owner, name, wrapper(original))

    def restore(self):
        for owner, name, original in reversed(self.patched):
            setattr(owner, name, original)
        self.patched = []
        if self.sampler:
            self.sampler.stop()


def install(observer, cluster):
    module = observer.module

    def on_init(original):
        def init(run, *args, **kwargs):
            original(run, *args, **kwargs)
            observer.runs.append(run)
        return init

    def on_fault(original):
        def fault(run, action):
            observer.offset_ns = time.time_ns() - time.monotonic_ns()
            observer.initial_pods = {name: uid for name, (_, uid) in _pods(cluster).items()}
            observer.sampler = Sampler(cluster, module.status)
            return original(run, action)
        return fault

    observer.patch(module.Run, "__init__", on_init)
    observer.patch(module.Run, "fault", on_fault)
    network = cluster.network
    for method in ("isolate", "cut", "cut_from_api", "heal"):
        def wrapper(original, method=method):
            def call(*args, **kwargs):
                if method == "heal" and observer.fault == "e" and observer.hold_s > 0:
                    hold(observer)
                observer.network_calls.append((time.monotonic_ns(), method,
                                               [getattr(arg, "name", None) for arg in args]))
                return original(*args, **kwargs)
            return call
        observer.patch(network, method, wrapper)


def hold(observer):
    """Fault e: before the test's heal, keeps the standby isolated until the Lease holder's
    status shows a synchronous list without it, at most observer.hold_s seconds (the
    primary's walsender keeps it "streaming" until wal_sender_timeout)."""
    standby = next((f"test-{args[0][1:]}" for _, method, args in observer.network_calls if method == "isolate"), None)
    if standby is None or observer.sampler is None or observer.held:
        return
    observer.held = True
    deadline = time.monotonic() + observer.hold_s
    while time.monotonic() < deadline:
        latest = [reply for _, _, reply in observer.sampler.statuses[-4:]
                  if reply and reply["clusters"][0]["lease"]["held"]]
        if latest and f'"{standby}"' not in (latest[-1]["clusters"][0].get("synchronous_standby_names") or ""):
            time.sleep(1)  # a moment under the new list
            return
        time.sleep(0.2)


def _pods(cluster):
    return {pod["metadata"]["name"]: (pod["metadata"].get("labels", {}).get("member"), pod["metadata"]["uid"])
            for pod in cluster.api.list(cluster.path("pods"), label_selector="app=postgres")}


# ---- after the test ----

def settle(cluster, module, timeout=120):
    """Heals the network and waits for a healthy cluster (a test that failed early left it
    partitioned); True when there is one primary and every standby streams."""
    cluster.network.heal()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cluster.healthy() is not None and len(cluster.primaries()) == 1:
                return True
        except Exception:
            pass
        time.sleep(0.5)
    return False


def measure(fault, observer, cluster, passed):
    run = observer.runs[-1]
    module = observer.module
    fault_ns = run.fault_ns
    end_ns = time.monotonic_ns()
    if observer.sampler:
        observer.sampler.stop()
    run.stop()  # idempotent: the test stopped its writers already unless it failed early
    healthy_at_end = settle(cluster, module)
    primaries = cluster.primaries()
    final = primaries[0] if len(primaries) == 1 else None

    writers = [run.writer, *run.sides]
    old_index = int(run.old.rsplit("-", 1)[1])

    def beside(writer):
        """The member a writer beside a member writes to (the old primary's, or side_writer_N)."""
        if writer is run.side:
            return run.old
        return f"test-{writer.table.rsplit('_', 1)[1]}"

    lost, unreadable = 0, False
    for writer in writers:
        try:
            rows = {row[0] for row in cluster.sql(final, f"SELECT id FROM {writer.table}")} if final else set()
        except Exception:
            rows, unreadable = set(), True
        lost += len(writer.acknowledged() - rows)

    offset = observer.offset_ns
    logs = {name: log_lines(daemon.log_text(run.marks.get(name, 0)), offset)
            for name, daemon in cluster.daemons.items()}
    all_actions = sorted(action for name in logs for action in actions(logs[name], fault_ns))
    promotions = [(at, member) for at, member, verb in all_actions if verb == "promote"]
    acks = acks_by_member(run.writer.events("ack"), lambda index: f"test-{index}")
    for writer in run.sides:
        acks += acks_by_member(writer.events("ack"), lambda index, writer=writer: beside(writer))
    gap = longest_gap([at for at, _ in acks_by_member(run.writer.events("ack"), str)], fault_ns)
    result = {"fault": fault, "passed": passed, "lost": lost, "lost_unreadable": unreadable,
              "acked_after_promotion": acked_by_another(acks, promotions, run.old, fault_ns),
              "failovers": len(promotions),
              "primary_changes": primary_changes(run.writer.events("connected"), fault_ns),
              "longest_gap_s": seconds(gap), "acknowledged": len(run.writer.acknowledged()),
              "final_primary": final, "healthy_at_end": healthy_at_end and final is not None,
              "old_primary": run.old, "old_index": old_index}
    statuses = observer.sampler.statuses if observer.sampler else []
    heals = [at for at, method, _ in observer.network_calls if method == "heal" and at > fault_ns]

    if fault == "d":
        # the test sets run.holder to the other pghad before healing: the isolated one is
        # the pghad whose node the fault isolated
        isolated = next((args[0] for at, method, args in observer.network_calls
                         if method == "isolate" and at >= fault_ns), None)
        old_holder = next(name for name, node in cluster.daemon_nodes.items() if node.name == isolated) \
            if isolated else run.holder
        other = next(name for name in cluster.daemons if name != old_holder)
        taken = next((at for at, message in logs[other] if at >= fault_ns and ACQUIRED.search(message)), None)
        lost_at = next((at for at, message in logs[old_holder] if at >= fault_ns and LOST.search(message)), None)
        intervals = [holding_intervals(logs[old_holder], True, fault_ns, end_ns),
                     holding_intervals(logs[other], False, fault_ns, end_ns)]
        validity = [holding_intervals(logs[old_holder], True, fault_ns, end_ns, valid=True),
                    holding_intervals(logs[other], False, fault_ns, end_ns, valid=True)]
        old_actions = [action for action in actions(logs[old_holder], fault_ns)]
        acting = {other} if taken is not None else set()
        if old_actions and (taken is None or any(at >= taken for at, _, _ in old_actions)):
            acting.add(old_holder)
        sampled_held = 0
        by_time = {}
        for at, name, reply in statuses:
            by_time.setdefault(round(at / 2e8), {})[name] = bool(
                reply and reply["clusters"][0]["lease"]["held"])
        if by_time:
            sampled_held = max(sum(held.values()) for held in by_time.values())
        duplicates = 0
        new_uids = set()
        for _, pods in observer.sampler.pods if observer.sampler else []:
            members = [member for member, _ in pods.values()]
            duplicates = max(duplicates, sum(members.count(member) - 1 for member in set(members)))
            new_uids |= {uid for _, uid in pods.values()} - set((observer.initial_pods or {}).values())
        result.update({"old_holder": old_holder, "takeover_s": seconds(taken - fault_ns) if taken else None,
                       "holders_at_once_log": most_at_once(intervals), "holders_at_once_status": sampled_held,
                       "valid_at_once": most_at_once(validity),
                       "old_holder_expired_s": seconds(validity[0][-1][1] - fault_ns) if validity[0] else None,
                       "old_holder_actions": len(old_actions), "actors_at_once": len(acting),
                       "duplicate_pods": duplicates, "new_pods": len(new_uids),
                       "old_holder_lost_s": seconds(lost_at - fault_ns) if lost_at else None})
    elif fault == "e":
        isolated = next((args[0] for at, method, args in observer.network_calls
                         if method == "isolate" and at >= fault_ns), None)
        standby = f"test-{isolated[1:]}" if isolated else None
        quoted = f'"{standby}"'
        heal_ns = heals[-1] if heals else None
        dropped = rejoined = None
        lists = []
        for at, name, reply in sorted(statuses, key=lambda sample: sample[0]):
            if not reply or at < fault_ns:
                continue
            state = reply["clusters"][0]
            if not state["lease"]["held"]:
                continue
            names = state.get("synchronous_standby_names") or ""
            if heal_ns is None or at < heal_ns:
                if names not in lists:
                    lists.append(names)
                if dropped is None and quoted not in names:
                    dropped = at
            elif rejoined is None:
                member = next((m for m in state["members"] if m["name"] == standby), None)
                if member and member["state"] == "streaming" and quoted in names:
                    rejoined = at
        sets = [(at, verb) for at, member, verb in all_actions if verb == "set-synchronous"]
        result.update({"standby": standby, "sync_dropped_s": seconds(dropped - fault_ns) if dropped else None,
                       "sync_lists_during_fault": lists, "set_synchronous_actions": len(sets),
                       "rejoined_s": seconds(rejoined - heal_ns) if rejoined and heal_ns else None,
                       "rejoined": rejoined is not None,
                       "held_s": seconds(heal_ns - fault_ns) if heal_ns else None})
    elif fault == "f":
        result.update({"faults_injected": partitions(observer.network_calls, fault_ns),
                       "promoted": [member for _, member in promotions],
                       "seed": int(os.environ.get("PGHA_PARTITION_SEED", "20261203")),
                       "end_ok": healthy_at_end and final is not None and lost == 0})
    return result


def keep_logs(fault, cluster, run):
    base = os.environ.get("PGHA_PARTITION_LOGS")
    if not base:
        return None
    target = os.path.join(base, f"{fault}-{datetime.datetime.now().strftime('%H%M%S')}")
    os.makedirs(target, exist_ok=True)
    for name, daemon in cluster.daemons.items():
        shutil.copy(daemon.log, os.path.join(target, f"pghad-{name}.log"))
    for entry in os.listdir(cluster.workdir):
        if entry.startswith(("agent-", "writer-")) and entry.endswith(".log"):
            shutil.copy(os.path.join(cluster.workdir, entry), os.path.join(target, entry))
    return target


# ---- pytest hooks ----

try:
    import pytest
except ImportError:  # the pure functions above are usable without pytest
    pytest = None

if pytest is not None:
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(item):
        fault = FAULTS.get(item.name)
        cluster = item.funcargs.get("cluster") if fault else None
        if cluster is None:
            yield
            return
        observer = Observer(item.module, fault)
        install(observer, cluster)
        outcome = yield
        passed = outcome.excinfo is None
        try:
            observer.restore()
            if not observer.runs or observer.runs[-1].fault_ns is None:
                return
            result = measure(fault, observer, cluster, passed)
            result["logs"] = keep_logs(fault, cluster, observer.runs[-1])
            if not passed:
                result["error"] = str(outcome.excinfo[1]).splitlines()[0][:300] if str(outcome.excinfo[1]) else \
                    outcome.excinfo[0].__name__
            path = os.environ.get("PGHA_PARTITION_RESULTS")
            if path:
                with open(path, "a") as out:
                    out.write(json.dumps(result) + "\n")
            print(f"partition_measure: {json.dumps(result)}")
        finally:
            observer.restore()
