#!/usr/bin/env python3
"""The test node agent: plays kubelet (and the volume provisioner) for one namespace of
a bare kube-apiserver, running each pod's command as a local process.

    node-agent.py --kubeconfig FILE --namespace NS --root DIR --entrypoint PATH --user USER
                  [--node NAME] [--ip-base 127.0.X] [--command NAME=PATH]... [--log FILE]
                  [--interval SECONDS] [--lease-interval SECONDS] [--pod-ip ADDRESS] [--select KEY=VALUE]...
                  [--service-host HOST --service-port PORT]

What it does (the contract between pghad, the pods, pgha-entrypoint and this agent):
- binds each new pod of NS (no node yet) to --node, so that deletion is graceful;
- gives each pod its own loopback address 127.0.X.Y (X random per agent unless
  --ip-base says), so every pod can listen on the same port;
- volumes: persistentVolumeClaim -> ROOT/volumes/NS/CLAIM (kept when the pod goes,
  removed when the claim is deleted; the pod stays Pending while the claim does not
  exist, and the claim is marked Bound when a pod first uses it); secret -> a
  directory with the keys as files (defaultMode, owned by USER); configMap likewise;
  emptyDir -> a directory of the pod. No mount namespaces: every env value and
  argument that starts with a volume's mountPath is rewritten to the local directory;
- env: value (with $(VAR) references), valueFrom.fieldRef (status.podIP, metadata.name,
  metadata.namespace, metadata.uid, spec.nodeName, status.hostIP, metadata.labels[..],
  metadata.annotations[..]), secretKeyRef, configMapKeyRef; plus PGHA_SOCKET_DIR, a
  short private directory, HOSTNAME, HOME (the pod's directory) and this agent's PATH;
  and as a kubelet does, KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT (this
  agent's API server);
- projected volumes as a kubelet makes them: serviceAccountToken (a TokenRequest for
  the pod's serviceAccountName, bound to the pod; not renewed: tests are shorter than
  its life), configMap and downwardAPI items; the volume mounted at the service account's
  standard path (/var/run/secrets/kubernetes.io/serviceaccount) is also named by
  PGHA_K8S_SERVICEACCOUNT_DIR, since there is no mount namespace to put it there;
- terminationMessagePath: a file of the pod's directory, named by
  PGHA_TERMINATION_MESSAGE_PATH; what the process wrote there (4096 bytes at most) becomes
  state.terminated.message when it exits, as a kubelet reports it;
- plays the root-ca-cert-publisher: makes the configMap kube-root-ca.crt (the API
  server's CA) in its namespace when it is missing;
- command[0] "pgha-entrypoint" -> --entrypoint (other names: --command NAME=PATH, or an
  absolute path); run as USER (setpriv when the agent is root) in a session of its own,
  in ROOT/pods/NS_NAME_UID (removed when the pod is), output to ROOT/logs/NS_NAME_UID.log
  (kept);
- pods/status: Running with podIP/podIPs when started; Ready (and containerStatuses[0]
  .ready) while the readinessProbe's tcpSocket port accepts connections on the pod's
  address (no probe: ready when started); Succeeded/Failed when the process exits,
  with state.terminated.exitCode (128+N when killed by signal N). restartPolicy is
  taken as Never whatever it says;
- deletion: deletionTimestamp set -> SIGTERM to the process group, SIGKILL when the
  grace period is over, then DELETE with gracePeriodSeconds=0 (uid precondition); pod
  gone (deleted with grace 0) -> SIGKILL to the group at once. Pods are keyed by uid;
- claims being deleted lose their kubernetes.io/pvc-protection finalizer once no live
  pod of the namespace uses them (the controller that would do it does not run).
A node of several (tests/k8s/nodes.py runs each agent in a network namespace of its own):
- --select KEY=VALUE (repeatable): binds only the new pods whose labels all match, as a
  scheduler would with a node affinity (a member's local volume is on one node); pods
  bound to another node are left alone either way;
- --pod-ip ADDRESS: every pod gets that address (the node's, as with hostNetwork), and
  it is also the pods' hostIP;
- --service-host/--service-port: what the pods get as KUBERNETES_SERVICE_HOST and _PORT
  instead of this agent's own API server, so that the agent's way to the API server can
  be cut while its pods keep theirs (a partitioned kubelet).
The node itself, as a kubelet keeps it: the Node object --node (made when missing) with a
Ready condition True, and its Lease in kube-node-lease (same name) renewed (spec.renewTime)
every --lease-interval seconds (1 s) after a complete turn, so that a renewal always comes
after the turn that killed the pods gone from the API server; cut from the API server, the
agent renews nothing. "node lease renewed" is logged at the first renewal, the first
after a failed turn, one that comes late (a turn held up by a request that hung), and the
first after a pod gone from the API server was killed (back from a cut, the first renewal
may come before that kill: a test orders its kill, a renewal, and the new pod by these).
Lists the namespace's pods every --interval (0.15 s) and at once on any event of a watch.
After each complete turn it writes how many it has completed to ROOT/turns, so that a test
can wait for a turn that began after something it did (a pod that should stay Pending does
so only once the agent has looked at it again).
SIGTERM or SIGINT: kills every pod's processes and exits. Logs what it does to --log.
"""
import argparse
import datetime
import importlib.util
import os
import pwd
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # the source tree may be read-only (make distcheck)
_spec = importlib.util.spec_from_file_location("pgha_kube_env", os.path.join(HERE, "kube-env.py"))
kube_env = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kube_env)
KubeError = kube_env.KubeError
# the integration tests' harness, for release_shared_memory_under: a volume or a pod
# directory removed after its PostgreSQL was SIGKILLed must not leave its segment
_spec = importlib.util.spec_from_file_location("pgharness", os.path.join(HERE, os.pardir, "integration", "pgharness.py"))
pgharness = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pgharness)
resource_path = kube_env.resource_path

PVC_PROTECTION = "kubernetes.io/pvc-protection"
SERVICE_ACCOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_now():
    """A MicroTime, as a kubelet writes its Lease's renewTime."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Log:
    def __init__(self, path):
        self.out = open(path, "a", buffering=1) if path else sys.stderr
        self.lock = threading.Lock()

    def __call__(self, message):
        stamp = datetime.datetime.now().strftime("%H:%M:%S.%f")[:-3]
        with self.lock:
            self.out.write(f"{stamp} {message}\n")


class User:
    """Who runs the pods: uid, gid, and whether the agent must switch to them."""

    def __init__(self, name):
        entry = pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
        self.name, self.uid, self.gid = entry.pw_name, entry.pw_uid, entry.pw_gid
        self.switch = os.geteuid() != self.uid
        if self.switch and os.geteuid() != 0:
            raise SystemExit(f"node-agent: only root can run pods as {name}")

    def command(self, argv):
        if not self.switch:
            return argv
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups",
                "--pdeathsig=KILL", "--"] + argv

    def chown(self, path):
        if self.switch:
            os.chown(path, self.uid, self.gid, follow_symlinks=False)


class NotReady(Exception):
    """The pod cannot start yet (a claim, a secret, a key is missing): it stays Pending."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason
        self.message = message


class PodFailed(Exception):
    """The pod can never start as specified (no command, an unsupported volume)."""


class Pod:
    """One pod (one uid) this agent handles, from binding to its removal."""

    def __init__(self, agent, pod):
        self.agent = agent
        self.uid = pod["metadata"]["uid"]
        self.name = pod["metadata"]["name"]
        self.pod = pod
        self.state = "new"          # new, pending, running, terminated, gone
        self.process = None
        self.ip = None
        self.pending_message = None
        self.ready = False
        self.probe_failures = 0
        self.next_probe = 0.0
        self.started_at = None
        self.terminating = False
        self.kill_deadline = None
        self.directory = os.path.join(agent.root, "pods", f"{agent.namespace}_{self.name}_{self.uid}")
        self.log_path = os.path.join(agent.root, "logs", f"{agent.namespace}_{self.name}_{self.uid}.log")
        self.socket_dir = None
        self.claims = []
        self.next_attempt = 0.0
        self.termination_path = None

    # ---- API ----

    @property
    def path(self):
        return resource_path("pods", self.name, self.agent.namespace)

    def write_status(self, status):
        try:
            self.agent.api.patch(self.path + "/status", {"metadata": {"uid": self.uid}, "status": status})
        except KubeError as error:
            # gone, or replaced by a pod of the same name (another uid)
            if error.status not in (404, 409, 422):
                raise
            self.agent.log(f"{self.name}: status not written ({error.status} {error.reason})")

    def conditions(self, ready):
        value = "True" if ready else "False"
        stamp = now()
        return [{"type": "Initialized", "status": "True", "lastTransitionTime": stamp},
                {"type": "Ready", "status": value, "lastTransitionTime": stamp},
                {"type": "ContainersReady", "status": value, "lastTransitionTime": stamp},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp}]

    def container(self):
        return self.pod["spec"]["containers"][0]

    def container_status(self, state, ready=False):
        container = self.container()
        return [{"name": container["name"], "image": container.get("image", ""), "imageID": "",
                 "containerID": f"pgha-agent://{self.process.pid}" if self.process else "",
                 "ready": ready, "started": "running" in state, "restartCount": 0, "state": state}]

    # ---- starting ----

    def try_start(self):
        """Starts the pod if everything it needs exists; else keeps it Pending, saying why."""
        if time.monotonic() < self.next_attempt:
            return
        self.next_attempt = time.monotonic() + 0.5
        try:
            argv, environment = self.prepare()
        except NotReady as why:
            if why.message != self.pending_message:
                self.pending_message = why.message
                self.agent.log(f"{self.name}: pending: {why.message}")
                self.write_status({
                    "phase": "Pending", "hostIP": self.agent.host_ip,
                    "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": now()}],
                    "containerStatuses": self.container_status(
                        {"waiting": {"reason": why.reason, "message": why.message}})})
            self.state = "pending"
            return
        except PodFailed as why:
            self.agent.log(f"{self.name}: cannot run: {why}")
            self.state = "terminated"
            self.write_status({"phase": "Failed", "reason": "UnsupportedPod", "message": str(why),
                               "conditions": self.conditions(False)})
            return
        log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(self.agent.user.command(argv), env=environment, cwd=self.directory,
                                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        except OSError as error:
            self.agent.log(f"{self.name}: cannot run {argv[0]}: {error}")
            self.state = "terminated"
            self.write_status({"phase": "Failed", "reason": "StartError", "message": str(error),
                               "conditions": self.conditions(False)})
            return
        finally:
            log.close()
        self.state = "running"
        self.started_at = now()
        self.agent.log(f"{self.name}: started pid {self.process.pid} at {self.ip}: {' '.join(argv)}")
        probe = self.container().get("readinessProbe")
        self.ready = not probe
        self.write_status({
            "phase": "Running", "hostIP": self.agent.host_ip, "podIP": self.ip, "podIPs": [{"ip": self.ip}],
            "startTime": self.started_at, "conditions": self.conditions(self.ready),
            "containerStatuses": self.container_status({"running": {"startedAt": self.started_at}}, self.ready)})
        for claim in self.claims:
            self.agent.claim_used(claim)

    def prepare(self):
        """(argv, environment) of the pod's process, its directories made; NotReady or
        PodFailed when it cannot start."""
        agent = self.agent
        spec = self.pod["spec"]
        containers = spec.get("containers") or []
        if not containers:
            raise PodFailed("no container")
        if len(containers) > 1 or spec.get("initContainers"):
            agent.log(f"{self.name}: only the first container runs here")
        container = containers[0]
        command = list(container.get("command") or []) + list(container.get("args") or [])
        if not command:
            raise PodFailed("the container has no command (images' entrypoints are not known here)")
        program = agent.commands.get(command[0])
        if program is None:
            if not os.path.isabs(command[0]):
                raise PodFailed(f"no local program for command {command[0]!r} (--command NAME=PATH)")
            program = command[0]

        # everything the pod needs, before any directory is made
        volumes = {}
        self.claims = []
        for volume in spec.get("volumes") or []:
            name = volume["name"]
            if "persistentVolumeClaim" in volume:
                claim_name = volume["persistentVolumeClaim"]["claimName"]
                claim = agent.claims.get(claim_name)
                if claim is None:
                    raise NotReady("ContainerCreating", f'persistentvolumeclaim "{claim_name}" not found')
                if claim["metadata"].get("deletionTimestamp"):
                    raise NotReady("ContainerCreating", f'persistentvolumeclaim "{claim_name}" is being deleted')
                volumes[name] = ("claim", claim)
                self.claims.append(claim_name)
            elif "secret" in volume or "configMap" in volume:
                kind = "secrets" if "secret" in volume else "configmaps"
                source = volume.get("secret") or volume.get("configMap")
                object_name = source.get("secretName") or source.get("name")
                obj = self.fetch(kind, object_name)
                if obj is None:
                    if source.get("optional"):
                        volumes[name] = ("files", {}, source)
                        continue
                    raise NotReady("ContainerCreating", f'{kind[:-1]} "{object_name}" not found')
                if kind == "secrets":
                    files = {key: kube_env.base64.b64decode(value) for key, value in (obj.get("data") or {}).items()}
                else:
                    files = {key: value.encode() for key, value in (obj.get("data") or {}).items()}
                volumes[name] = ("files", files, source)
            elif "emptyDir" in volume:
                volumes[name] = ("empty",)
            elif "projected" in volume:
                volumes[name] = ("files", self.projected(volume["projected"]), volume["projected"])
            else:
                raise PodFailed(f"volume {name}: only persistentVolumeClaim, secret, configMap and emptyDir")

        if self.ip is None:
            self.ip = agent.next_ip()

        # directories
        os.makedirs(self.directory, exist_ok=True)
        self.agent.user.chown(self.directory)
        os.chmod(self.directory, 0o700)
        local = {}
        for name, volume in volumes.items():
            if volume[0] == "claim":
                local[name] = agent.claim_dir(volume[1])
            elif volume[0] == "files":
                directory = os.path.join(self.directory, "volumes", name)
                if os.path.isdir(directory):
                    shutil.rmtree(directory)
                os.makedirs(directory)
                mode = volume[2].get("defaultMode", 0o644)
                items = volume[2].get("items")
                wanted = {item["key"]: (item["path"], item.get("mode", mode)) for item in items} if items else \
                    {key: (key, mode) for key in volume[1]}
                for key, (relative, file_mode) in wanted.items():
                    if key not in volume[1]:
                        raise NotReady("CreateContainerConfigError", f'volume {name}: no key "{key}"')
                    target = os.path.join(directory, relative)
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    with open(target, "wb") as out:
                        out.write(volume[1][key])
                    os.chmod(target, file_mode)
                for root, directories, files in os.walk(directory):
                    for entry in [root] + [os.path.join(root, file) for file in files]:
                        self.agent.user.chown(entry)
                os.chmod(directory, 0o700)
                local[name] = directory
            else:
                directory = os.path.join(self.directory, "volumes", name)
                os.makedirs(directory, exist_ok=True)
                self.agent.user.chown(directory)
                local[name] = directory

        mounts = []
        for mount in container.get("volumeMounts") or []:
            if mount["name"] not in local:
                raise PodFailed(f"volumeMount of unknown volume {mount['name']}")
            path = local[mount["name"]]
            if mount.get("subPath"):
                path = os.path.join(path, mount["subPath"])
                os.makedirs(path, exist_ok=True)
                self.agent.user.chown(path)
            mounts.append((mount["mountPath"].rstrip("/") or "/", path))
        mounts.sort(key=lambda pair: len(pair[0]), reverse=True)

        def rewrite(value):
            for mount_path, path in mounts:
                if value == mount_path or value.startswith(mount_path + "/"):
                    return path + value[len(mount_path):]
            return value

        if self.socket_dir is None:
            self.socket_dir = tempfile.mkdtemp(prefix="pgha-s", dir="/tmp")
            self.agent.user.chown(self.socket_dir)
        environment = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
                       "HOSTNAME": self.name, "HOME": self.directory, "PGHA_SOCKET_DIR": self.socket_dir,
                       "KUBERNETES_SERVICE_HOST": agent.service_host, "KUBERNETES_SERVICE_PORT": str(agent.service_port)}
        for mount_path, path in mounts:
            if mount_path == SERVICE_ACCOUNT_PATH:
                environment["PGHA_K8S_SERVICEACCOUNT_DIR"] = path
        # the container's terminationMessagePath, an empty file of the pod's directory
        self.termination_path = os.path.join(self.directory, "termination-log")
        with open(self.termination_path, "wb"):
            pass
        self.agent.user.chown(self.termination_path)
        environment["PGHA_TERMINATION_MESSAGE_PATH"] = self.termination_path
        for variable in container.get("env") or []:
            if "valueFrom" in variable:
                value = self.value_from(variable["valueFrom"], variable["name"])
                if value is None:
                    continue
            else:
                value = expand(variable.get("value", ""), environment)
            environment[variable["name"]] = rewrite(value)
        argv = [program] + [rewrite(expand(argument, environment)) for argument in command[1:]]
        return argv, environment

    def projected(self, projected):
        """The files of a projected volume: {path: bytes}; NotReady while a source is missing."""
        files = {}
        for source in projected.get("sources") or []:
            if "serviceAccountToken" in source:
                token = source["serviceAccountToken"]
                account = self.pod["spec"].get("serviceAccountName") or "default"
                request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                           "spec": {"expirationSeconds": token.get("expirationSeconds", 3607),
                                    "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": self.name,
                                                       "uid": self.uid}}}
                if token.get("audience"):
                    request["spec"]["audiences"] = [token["audience"]]
                try:
                    answer = self.agent.api.create(
                        resource_path("serviceaccounts", account, self.agent.namespace, "token"), request)
                except KubeError as error:
                    raise NotReady("ContainerCreating", f"token of service account {account}: {error.status} "
                                   f"{error.reason}")
                files[token["path"]] = answer["status"]["token"].encode()
            elif "configMap" in source:
                reference = source["configMap"]
                obj = self.fetch("configmaps", reference["name"])
                if obj is None:
                    raise NotReady("ContainerCreating", f'configmap "{reference["name"]}" not found')
                data = obj.get("data") or {}
                for item in reference.get("items") or [{"key": key, "path": key} for key in data]:
                    if item["key"] not in data:
                        raise NotReady("ContainerCreating", f'configmap "{reference["name"]}" has no "{item["key"]}"')
                    files[item["path"]] = data[item["key"]].encode()
            elif "downwardAPI" in source:
                for item in source["downwardAPI"].get("items") or []:
                    files[item["path"]] = self.value_from({"fieldRef": item["fieldRef"]}, item["path"]).encode()
            else:
                raise PodFailed(f"projected source {sorted(source)} is not supported")
        return files

    def fetch(self, kind, name):
        return self.agent.api.get_or_none(resource_path(kind, name, self.agent.namespace))

    def value_from(self, source, variable):
        metadata = self.pod["metadata"]
        if "fieldRef" in source:
            field = source["fieldRef"]["fieldPath"]
            simple = {"status.podIP": self.ip, "status.hostIP": self.agent.host_ip, "metadata.name": self.name,
                      "metadata.namespace": self.agent.namespace, "metadata.uid": self.uid,
                      "spec.nodeName": self.agent.node, "status.podIPs": self.ip,
                      "spec.serviceAccountName": self.pod["spec"].get("serviceAccountName", "")}
            if field in simple:
                return simple[field]
            match = re.fullmatch(r"metadata\.(labels|annotations)\['([^']*)'\]", field)
            if match:
                return (metadata.get(match.group(1)) or {}).get(match.group(2), "")
            raise PodFailed(f"env {variable}: fieldPath {field} is not supported")
        for key, kind in (("secretKeyRef", "secrets"), ("configMapKeyRef", "configmaps")):
            if key in source:
                reference = source[key]
                obj = self.fetch(kind, reference["name"])
                data = (obj or {}).get("data") or {}
                if reference["key"] not in data:
                    if reference.get("optional"):
                        return None
                    what = f'{kind[:-1]} "{reference["name"]}"' + (f' has no key "{reference["key"]}"' if obj else " not found")
                    raise NotReady("CreateContainerConfigError", f"env {variable}: {what}")
                value = data[reference["key"]]
                return kube_env.base64.b64decode(value).decode() if kind == "secrets" else value
        raise PodFailed(f"env {variable}: unsupported valueFrom {sorted(source)}")

    # ---- running ----

    def probe(self):
        """Checks readiness (tcpSocket probe) and writes it when it changes."""
        if self.state != "running" or self.terminating:
            return
        probe = self.container().get("readinessProbe")
        if not probe:
            return
        moment = time.monotonic()
        if moment < self.next_probe:
            return
        # not ready yet: check at every turn; ready: once a second
        self.next_probe = moment + (1.0 if self.ready else 0.0)
        tcp = probe.get("tcpSocket")
        if tcp is None:
            ok = True  # exec and httpGet probes are not run here
        else:
            port = tcp["port"]
            if isinstance(port, str) and not port.isdigit():
                port = next((p["containerPort"] for p in self.container().get("ports") or []
                             if p.get("name") == port), None)
            try:
                with socket.create_connection((tcp.get("host") or self.ip, int(port)), timeout=0.1):
                    ok = True
            except (OSError, TypeError, ValueError):
                ok = False
        if ok:
            self.probe_failures = 0
        else:
            self.probe_failures += 1
        ready = ok or (self.ready and self.probe_failures < probe.get("failureThreshold", 3))
        if ready != self.ready:
            self.ready = ready
            self.agent.log(f"{self.name}: {'ready' if ready else 'not ready'}")
            self.write_status({"conditions": self.conditions(ready), "containerStatuses": self.container_status(
                {"running": {"startedAt": self.started_at}}, ready)})

    def check_exit(self):
        """Notices the process's exit: kills what is left of its group, writes the status."""
        if self.state != "running" or self.process.poll() is None:
            return False
        code = self.process.returncode
        self.kill_group(signal.SIGKILL)
        exit_code = 128 - code if code < 0 else code
        terminated = {"exitCode": exit_code, "reason": "Completed" if code == 0 else "Error",
                      "startedAt": self.started_at, "finishedAt": now()}
        if code < 0:
            terminated["signal"] = -code
        message = self.termination_message()
        if message:
            terminated["message"] = message
        self.state = "terminated"
        self.ready = False
        self.agent.log(f"{self.name}: pid {self.process.pid} exited with {exit_code}")
        self.write_status({"phase": "Succeeded" if code == 0 else "Failed", "podIP": self.ip,
                           "podIPs": [{"ip": self.ip}], "conditions": self.conditions(False),
                           "containerStatuses": self.container_status({"terminated": terminated})})
        return True

    def termination_message(self):
        """What the container wrote at its terminationMessagePath, as a kubelet reads it
        (policy File: at most 4096 bytes)."""
        try:
            with open(self.termination_path, "rb") as file:
                return file.read(4096).decode("utf-8", "replace")
        except (OSError, AttributeError):
            return ""

    def kill_group(self, signum):
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    # ---- deletion ----

    def terminate(self, pod):
        """deletionTimestamp is set: SIGTERM now, SIGKILL after the grace period, then
        the final DELETE."""
        self.pod = pod
        if not self.terminating:
            self.terminating = True
            grace = grace_was(pod)
            self.deletion_seen = time.monotonic()
            self.kill_deadline = self.deletion_seen + grace
            # grace 0 (seen between the API server's marking and its removal of the
            # pod): killed at once, as when the pod is found gone
            if self.state == "running" and grace > 0:
                self.agent.log(f"{self.name}: deleted (grace {grace} s): SIGTERM to group {self.process.pid}")
                self.kill_group(signal.SIGTERM)
        else:
            # a later delete may shorten the grace period
            self.kill_deadline = min(self.kill_deadline, self.deletion_seen + grace_was(pod))
        if self.state == "running":
            self.check_exit()
        if self.state == "running" and time.monotonic() >= self.kill_deadline:
            self.agent.log(f"{self.name}: {'grace period over' if grace_was(pod) else 'deleted (grace 0)'}: "
                           f"SIGKILL to group {self.process.pid}")
            self.kill_group(signal.SIGKILL)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.agent.log(f"{self.name}: pid {self.process.pid} survives SIGKILL")
                return
            self.check_exit()
        if self.state != "running":
            try:
                self.agent.api.delete(self.path, grace_period=0, uid=self.uid, missing_ok=True)
                self.agent.log(f"{self.name}: removed")
            except KubeError as error:
                if error.status != 409:  # 409: a newer pod of the same name
                    raise
            self.gone()

    def gone(self):
        """The pod object is gone: kill at once whatever still runs, remove its directories
        (its claims' directories stay)."""
        if self.state == "gone":
            return
        if self.state == "running":
            self.agent.log(f"{self.name}: gone: SIGKILL to group {self.process.pid}")
            self.agent.killed_since_renewal = True
            self.kill_group(signal.SIGKILL)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.agent.log(f"{self.name}: pid {self.process.pid} survives SIGKILL")
        if self.process is not None:
            self.kill_group(signal.SIGKILL)
        self.state = "gone"
        remove_directory(self.directory)
        if self.socket_dir:
            shutil.rmtree(self.socket_dir, ignore_errors=True)


def remove_directory(directory):
    """shutil.rmtree(directory, ignore_errors=True), after removing the SysV shared memory
    of the dead PostgreSQL servers that ran in it (bounded: the loop must go on)."""
    if os.path.isdir(directory):
        pgharness.release_shared_memory_under(directory, timeout=5)
    shutil.rmtree(directory, ignore_errors=True)


def grace_was(pod):
    return pod["metadata"].get("deletionGracePeriodSeconds") or 0


def expand(value, environment):
    """Kubernetes' $(VAR) expansion: known variables replaced, $$ an escaped $."""
    def replace(match):
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return environment.get(name, match.group(0))
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", replace, value)


class Agent:
    def __init__(self, options):
        self.api = kube_env.Api.from_kubeconfig(options.kubeconfig, timeout=10)
        self.namespace = options.namespace
        self.root = os.path.abspath(options.root)
        self.node = options.node or f"pgha-test-node-{self.namespace}"
        self.user = User(options.user)
        self.log = Log(options.log)
        self.interval = options.interval
        self.lease_interval = options.lease_interval
        self.lease_renewed = None  # monotonic: the last renewal; None: none yet, or the last failed
        self.killed_since_renewal = False  # a pod gone from the API server was killed since the last renewal
        self.commands = {"pgha-entrypoint": os.path.abspath(options.entrypoint)}
        for item in options.command or []:
            name, _, path = item.partition("=")
            self.commands[name] = os.path.abspath(path)
        base = options.ip_base or f"127.0.{random.randint(1, 250)}"
        octets = [int(part) for part in base.split(".")]
        if len(octets) != 3 or octets[0] != 127 or not all(0 <= part <= 255 for part in octets):
            raise SystemExit(f"node-agent: --ip-base {base}: want 127.X.Y")
        self.ip_network = octets
        self.pod_ip = options.pod_ip
        self.host_ip = options.pod_ip or "127.0.0.1"
        self.service_host = options.service_host or self.api.host
        self.service_port = options.service_port or self.api.port
        self.select = dict(item.partition("=")[::2] for item in options.select or [])
        self.ip_host = 0
        self.pods = {}
        self.claims = {}
        self.stopping = False
        self.wake = threading.Event()
        for directory in (self.root, os.path.join(self.root, "pods"), os.path.join(self.root, "logs"),
                          os.path.join(self.root, "volumes"),
                          os.path.join(self.root, "volumes", self.namespace)):
            os.makedirs(directory, exist_ok=True)
            os.chmod(directory, 0o755)

    # ---- addresses and claims ----

    def next_ip(self):
        """A loopback address no pod of this agent had before (--pod-ip: that one)."""
        if self.pod_ip:
            return self.pod_ip
        self.ip_host += 1
        if self.ip_host > 254:
            self.ip_host = 1
            self.ip_network[2] = self.ip_network[2] % 254 + 1
        return ".".join(str(part) for part in self.ip_network + [self.ip_host])

    def claim_dir(self, claim):
        """The directory of a claim: made for it, emptied when the claim of this name
        is a new object (another uid) than the one the directory was made for."""
        name = claim["metadata"]["name"]
        directory = os.path.join(self.root, "volumes", self.namespace, name)
        marker = os.path.join(self.root, "volumes", self.namespace, f".{name}.uid")
        uid = claim["metadata"]["uid"]
        try:
            with open(marker) as source:
                previous = source.read().strip()
        except FileNotFoundError:
            previous = None
        if previous != uid:
            if os.path.exists(directory):
                self.log(f"claim {name}: a new claim (uid {uid}): its directory starts empty")
                pgharness.release_shared_memory_under(directory, timeout=5)
                shutil.rmtree(directory)
            with open(marker, "w") as out:
                out.write(uid + "\n")
        if not os.path.isdir(directory):
            os.makedirs(directory)
            os.chmod(directory, 0o700)
            self.user.chown(directory)
        return directory

    def claim_used(self, name):
        """Plays the provisioner: a claim a running pod uses is Bound, with the size asked."""
        claim = self.claims.get(name)
        if claim is None or (claim.get("status") or {}).get("phase") == "Bound":
            return
        spec = claim.get("spec") or {}
        status = {"phase": "Bound", "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                  "capacity": ((spec.get("resources") or {}).get("requests") or {})}
        try:
            self.api.patch(resource_path("persistentvolumeclaims", name, self.namespace, "status"),
                           {"metadata": {"uid": claim["metadata"]["uid"]}, "status": status})
            self.log(f"claim {name}: Bound")
        except KubeError as error:
            self.log(f"claim {name}: status not written ({error.status} {error.reason})")

    def release_claims(self, pods):
        """Plays the pvc-protection controller, and removes the directories of claims that
        are gone."""
        in_use = set()
        for pod in pods:
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            for volume in pod["spec"].get("volumes") or []:
                if "persistentVolumeClaim" in volume:
                    in_use.add(volume["persistentVolumeClaim"]["claimName"])
        for name, claim in self.claims.items():
            metadata = claim["metadata"]
            finalizers = metadata.get("finalizers") or []
            if metadata.get("deletionTimestamp") and PVC_PROTECTION in finalizers and name not in in_use:
                try:
                    self.api.patch(resource_path("persistentvolumeclaims", name, self.namespace), {
                        "metadata": {"uid": metadata["uid"], "resourceVersion": metadata["resourceVersion"],
                                     "finalizers": [f for f in finalizers if f != PVC_PROTECTION]}})
                    self.log(f"claim {name}: deleted and unused: finalizer {PVC_PROTECTION} removed")
                except KubeError as error:
                    if error.status not in (404, 409):
                        raise
        directory = os.path.join(self.root, "volumes", self.namespace)
        for entry in os.listdir(directory):
            if entry.startswith("."):
                continue
            if entry not in self.claims and entry not in in_use:
                self.log(f"claim {entry}: deleted: its directory is removed")
                remove_directory(os.path.join(directory, entry))
                try:
                    os.unlink(os.path.join(directory, f".{entry}.uid"))
                except FileNotFoundError:
                    pass

    # ---- the loop ----

    def bind(self, pod):
        name = pod["metadata"]["name"]
        try:
            self.api.create(resource_path("pods", name, self.namespace, "binding"), {
                "apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": name, "uid": pod["metadata"]["uid"]},
                "target": {"apiVersion": "v1", "kind": "Node", "name": self.node}})
            self.log(f"{name}: bound to {self.node} (uid {pod['metadata']['uid']})")
            return True
        except KubeError as error:
            if error.status in (404, 409):
                self.log(f"{name}: not bound ({error.status} {error.reason})")
                return False
            raise

    def selects(self, pod):
        """Whether this node takes a new pod: its labels match every --select."""
        labels = pod["metadata"].get("labels") or {}
        return all(labels.get(key) == value for key, value in self.select.items())

    def turn(self):
        pods = self.api.list(resource_path("pods", namespace=self.namespace))
        self.claims = {claim["metadata"]["name"]: claim
                       for claim in self.api.list(resource_path("persistentvolumeclaims", namespace=self.namespace))}
        present = {pod["metadata"]["uid"]: pod for pod in pods}
        # vanished first: a pod deleted with grace 0 is killed at once
        for uid, record in list(self.pods.items()):
            if uid not in present:
                if record.state != "gone":
                    self.log(f"{record.name}: deleted (uid {uid})")
                record.gone()
                del self.pods[uid]
        for uid, pod in present.items():
            node = pod["spec"].get("nodeName")
            if node and node != self.node:
                continue
            record = self.pods.get(uid)
            if record is None:
                if not node and not self.selects(pod):
                    continue
                if not node and not pod["metadata"].get("deletionTimestamp"):
                    if not self.bind(pod):
                        continue
                record = self.pods[uid] = Pod(self, pod)
            if record.state == "gone":
                continue
            if pod["metadata"].get("deletionTimestamp"):
                record.terminate(pod)
                continue
            record.pod = pod
            if record.state in ("new", "pending"):
                record.try_start()
            elif record.state == "running":
                if not record.check_exit():
                    record.probe()
        self.release_claims(pods)

    def watcher(self):
        """Wakes the loop at once on any change of the namespace's pods."""
        api = kube_env.Api.from_kubeconfig(self.kubeconfig_path, timeout=10)
        path = resource_path("pods", namespace=self.namespace)
        while not self.stopping:
            try:
                for _ in api.watch(path, timeout_seconds=30):
                    self.wake.set()
                    if self.stopping:
                        return
            except Exception as error:  # the loop's polling still runs
                if not self.stopping:
                    self.log(f"watch: {error}")
                time.sleep(1)

    def publish_root_ca(self):
        """Plays the root-ca-cert-publisher: kube-root-ca.crt with the API server's CA."""
        if self.api.get_or_none(resource_path("configmaps", "kube-root-ca.crt", self.namespace)) is not None:
            return
        certificates = self.api.context.get_ca_certs(binary_form=True)
        pem = "".join(ssl.DER_cert_to_PEM_cert(der) for der in certificates)
        try:
            self.api.create(resource_path("configmaps", namespace=self.namespace),
                            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-root-ca.crt"},
                             "data": {"ca.crt": pem}})
            self.log("configmap kube-root-ca.crt published")
        except KubeError as error:
            if error.status != 409:
                raise

    def register_node(self):
        """The Node object (made when missing), Ready."""
        path = resource_path("nodes", self.node)
        try:
            self.api.create(resource_path("nodes"), {"apiVersion": "v1", "kind": "Node",
                                                     "metadata": {"name": self.node}})
        except KubeError as error:
            if error.status != 409:
                raise
        stamp = now()
        self.api.patch(path + "/status", {"status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "the node agent runs",
             "lastHeartbeatTime": stamp, "lastTransitionTime": stamp}]}})
        self.log(f"node {self.node} registered, Ready")

    def renew_lease(self):
        """The node's Lease in kube-node-lease, renewed once due (made when missing)."""
        if self.lease_renewed is not None and time.monotonic() - self.lease_renewed < self.lease_interval:
            return
        path = resource_path("leases", self.node, "kube-node-lease")
        # taken before the renewal: a kill while it is on its way waits for the next one
        killed, self.killed_since_renewal = self.killed_since_renewal, False
        try:
            try:
                self.api.patch(path, {"spec": {"renewTime": micro_now()}})
            except KubeError as error:
                if error.status != 404:
                    raise
                self.api.create(resource_path("leases", namespace="kube-node-lease"), {
                    "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": self.node},
                    "spec": {"holderIdentity": self.node, "leaseDurationSeconds": 40, "renewTime": micro_now()}})
        except Exception as error:
            if self.lease_renewed is not None:
                self.log(f"node lease not renewed: {type(error).__name__}: {error}")
            self.lease_renewed = None
            self.killed_since_renewal = self.killed_since_renewal or killed
            raise
        renewed = time.monotonic()
        if self.lease_renewed is None:
            self.log("node lease renewed")
        elif renewed - self.lease_renewed > max(3 * self.lease_interval, 2):
            self.log(f"node lease renewed ({renewed - self.lease_renewed:.1f} s after the last renewal)")
        elif killed:
            self.log("node lease renewed (the first renewal since a pod gone from the API server was killed)")
        self.lease_renewed = renewed

    def run(self, kubeconfig_path):
        self.kubeconfig_path = kubeconfig_path
        self.register_node()
        self.publish_root_ca()
        threading.Thread(target=self.watcher, daemon=True).start()
        self.log(f"watching namespace {self.namespace} of {self.api.server} as node {self.node}; "
                 f"pods run as {self.user.name}, addresses {'.'.join(map(str, self.ip_network))}.*")
        failures = 0
        turns = 0
        while not self.stopping:
            try:
                self.turn()
                self.renew_lease()
                failures = 0
                turns += 1
                self.record_turns(turns)
            except Exception as error:
                self.lease_renewed = None  # renewed at the first turn that completes again
                failures += 1
                if failures <= 3 or failures % 50 == 0:
                    self.log(f"turn failed ({failures}): {type(error).__name__}: {error}")
            self.wake.wait(self.interval)
            self.wake.clear()
        self.shutdown()

    def record_turns(self, turns):
        """ROOT/turns := turns, replaced whole (a reader never sees half of it)."""
        path = os.path.join(self.root, "turns")
        with open(path + ".new", "w") as out:
            out.write(f"{turns}\n")
        os.replace(path + ".new", path)

    def shutdown(self):
        for record in self.pods.values():
            if record.state == "running":
                self.log(f"{record.name}: agent stops: SIGKILL to group {record.process.pid}")
                record.kill_group(signal.SIGKILL)
        for record in self.pods.values():
            if record.process is not None:
                try:
                    record.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            if record.socket_dir:
                shutil.rmtree(record.socket_dir, ignore_errors=True)
        self.log("stopped")


def main(argv=None):
    parser = argparse.ArgumentParser(description="the test node agent: plays kubelet for one namespace")
    parser.add_argument("--kubeconfig", required=True, help="credentials that may bind pods and write their status")
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--root", required=True, help="directory for volumes (ROOT/volumes/NS/CLAIM) and pods")
    parser.add_argument("--entrypoint", required=True, help="the program that runs for command pgha-entrypoint")
    parser.add_argument("--user", required=True, help="the account the pods run as (name or uid)")
    parser.add_argument("--node", help="the node name pods are bound to (default pgha-test-node-NS)")
    parser.add_argument("--ip-base", help="pods get 127.X.Y.1, .2...: give 127.X.Y (default 127.0.<random>)")
    parser.add_argument("--command", action="append", metavar="NAME=PATH", help="another command's local program")
    parser.add_argument("--log", help="log file (default: stderr)")
    parser.add_argument("--interval", type=float, default=0.15, help="seconds between two lists of the pods")
    parser.add_argument("--lease-interval", type=float, default=1.0,
                        help="seconds between two renewals of the node's Lease in kube-node-lease")
    parser.add_argument("--pod-ip", help="every pod gets this address (the node's), also as hostIP")
    parser.add_argument("--select", action="append", metavar="KEY=VALUE",
                        help="bind only new pods with this label (repeatable: all must match)")
    parser.add_argument("--service-host", help="KUBERNETES_SERVICE_HOST for the pods (default: this agent's server)")
    parser.add_argument("--service-port", type=int, help="KUBERNETES_SERVICE_PORT for the pods")
    options = parser.parse_args(argv)
    agent = Agent(options)

    def stop(signum, frame):
        agent.stopping = True
        agent.wake.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    agent.run(options.kubeconfig)
    return 0


if __name__ == "__main__":
    sys.exit(main())
