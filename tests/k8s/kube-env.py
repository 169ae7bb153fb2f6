#!/usr/bin/env python3
"""A real Kubernetes API server for pgha's tests: a module and a command.

As a module (load it by path, its name has a hyphen; tests/integration/conftest.py does):

    kube = start(apiserver=PATH)   # etcd + kube-apiserver on loopback, or the cluster of
                                   # $PGHA_TEST_KUBECONFIG when set (then nothing is started)
    kube.api                       # Api with admin rights
    kube.kubeconfig                # the admin kubeconfig's path
    ns = kube.new_namespace()      # a fresh namespace (never reuse one: nothing finalizes
                                   # a deleted namespace on a bare API server)
    path = kube.apply_rbac(ns)     # contrib/kubernetes/rbac.yaml in ns; a kubeconfig of
                                   # the ServiceAccount pgha with a TokenRequest token
    agent = kube.start_agent(ns, root, entrypoint, user)   # tests/k8s/node-agent.py
    kube.close()

Only the Python standard library: the API is spoken with http.client and ssl, the
kubeconfigs are written as block-style YAML by a small emitter, and the YAML read
(kubeconfigs, contrib/kubernetes/rbac.yaml) is parsed by a small parser of the block
subset those files use. Everything started is stopped at exit (atexit, and the processes die with
this one through PR_SET_PDEATHSIG).

As a command:
    kube-env.py start [--apiserver PATH] [--dir DIR]
        starts a cluster, prints the admin kubeconfig's path, runs until SIGINT/SIGTERM
    kube-env.py run [--apiserver PATH] -- COMMAND...
        runs COMMAND with PGHA_TEST_KUBECONFIG and KUBECONFIG set to a fresh cluster's
        admin kubeconfig, then stops the cluster (e.g. run -- make check: every test
        file then shares one API server)
    kube-env.py rbac --kubeconfig ADMIN NAMESPACE
        applies rbac.yaml in NAMESPACE (made when missing), prints the pgha kubeconfig
"""
import argparse
import atexit
import base64
import ctypes
import glob
import http.client
import itertools
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import ssl
import string
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
TOP_SRCDIR = os.path.dirname(os.path.dirname(HERE))
RBAC_FILE = os.path.join(TOP_SRCDIR, "contrib", "kubernetes", "rbac.yaml")
NODE_AGENT = os.path.join(HERE, "node-agent.py")
BUILD_SCRIPT = os.path.join(HERE, "build-apiserver")
DEFAULT_CACHE = "/var/cache/pgha-test"


class KubeError(RuntimeError):
    """An API request answered with an HTTP error: status (403, 404, 409...), reason
    (the Status object's reason: Forbidden, NotFound, Conflict, AlreadyExists...) and
    the answer's body (a dict when it was JSON)."""

    def __init__(self, method, path, status, body):
        self.method = method
        self.path = path
        self.status = status
        self.body = body
        if isinstance(body, dict):
            self.reason = body.get("reason", "")
            message = body.get("message", "")
        else:
            self.reason = ""
            message = str(body)[:500]
        super().__init__(f"{method} {path}: {status} {self.reason}: {message}")


class SetupError(RuntimeError):
    """The test cluster could not be started (a program is missing, a server did not start)."""


# ---- a little YAML: the block subset of kubeconfigs and manifests ----

_KEY = re.compile(r"""^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s#'"\[\]{},:-][^:#]*?|-[^\s:#][^:#]*?)\s*:(?:\s+|$)(.*)$""")


def _strip_comment(text):
    """text without a trailing comment (a # after a space, outside quotes)."""
    quote = None
    for index, char in enumerate(text):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or text[index - 1] in " \t"):
            return text[:index].rstrip()
    return text.rstrip()


def _scalar(text):
    text = text.strip()
    if text.startswith("[") or text.startswith("{"):
        value, rest = _flow(text, 0)
        if text[rest:].strip():
            raise ValueError(f"YAML: trailing text after {text!r}")
        return value
    if text.startswith('"'):
        return json.loads(text)
    if text.startswith("'"):
        return text[1:-1].replace("''", "'")
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if re.fullmatch(r"[-+]?[0-9]+", text):
        return int(text)
    if re.fullmatch(r"[-+]?([0-9]*\.[0-9]+|[0-9]+\.[0-9]*)([eE][-+]?[0-9]+)?", text):
        return float(text)
    return text


def _flow(text, index):
    """A flow collection ([a, b] or {k: v}) from text[index]; (value, index after it)."""
    opener = text[index]
    closer = "]" if opener == "[" else "}"
    items = [] if opener == "[" else {}
    index += 1
    while True:
        while index < len(text) and text[index] in " ,":
            index += 1
        if index >= len(text):
            raise ValueError(f"YAML: unterminated {opener} in {text!r}")
        if text[index] == closer:
            return items, index + 1
        if text[index] in "[{":
            value, index = _flow(text, index)
        else:
            start = index
            quote = None
            while index < len(text):
                char = text[index]
                if quote:
                    if char == quote:
                        quote = None
                elif char in "'\"":
                    quote = char
                elif char in ",]}":
                    break
                index += 1
            value = text[start:index].strip()
            if opener == "{":
                key, _, rest = value.partition(":")
                items[_scalar(key)] = _scalar(rest)
                continue
            value = _scalar(value)
        items.append(value)


def _block(lines, index, indent):
    """The node whose first line is lines[index] (at indent): (value, next index)."""
    text = lines[index][1]
    if text == "-" or text.startswith("- "):
        return _sequence(lines, index, indent)
    if _KEY.match(text):
        return _mapping(lines, index, indent)
    return _scalar(text), index + 1


def _sequence(lines, index, indent):
    items = []
    while index < len(lines) and lines[index][0] == indent and (
            lines[index][1] == "-" or lines[index][1].startswith("- ")):
        rest = lines[index][1][1:].lstrip()
        if not rest:
            index += 1
            if index < len(lines) and lines[index][0] > indent:
                value, index = _block(lines, index, lines[index][0])
            else:
                value = None
        else:
            # "- key: value" starts a mapping whose keys line up with "key"
            inner = indent + len(lines[index][1]) - len(rest)
            lines[index] = (inner, rest)
            value, index = _block(lines, index, inner)
        items.append(value)
    return items, index


def _mapping(lines, index, indent):
    mapping = {}
    while index < len(lines) and lines[index][0] == indent:
        match = _KEY.match(lines[index][1])
        if not match:
            raise ValueError(f"YAML: expected a key at {lines[index][1]!r}")
        key = _scalar(match.group(1))
        rest = match.group(2).strip()
        index += 1
        if rest in ("|", "|-", ">", ">-"):
            block = []
            while index < len(lines) and lines[index][0] > indent:
                block.append(lines[index][1])
                index += 1
            joined = ("\n" if rest[0] == "|" else " ").join(block)
            value = joined if rest.endswith("-") else joined + "\n"
        elif rest:
            value = _scalar(rest)
        elif index < len(lines) and (lines[index][0] > indent or (
                lines[index][0] == indent and (lines[index][1] == "-" or lines[index][1].startswith("- ")))):
            value, index = _block(lines, index, lines[index][0])
        else:
            value = None
        mapping[key] = value
    return mapping, index


def parse_yaml(text):
    """The documents of a YAML text (JSON is YAML too), as a list; empty documents left
    out. Only the subset manifests and kubeconfigs use: block mappings and sequences,
    flow collections of scalars, plain and quoted scalars, | and > blocks (whose
    relative indentation is not kept)."""
    stripped = text.strip()
    if stripped.startswith("{") or stripped.startswith("["):
        try:
            return [json.loads(stripped)]
        except ValueError:
            pass
    documents = []
    current = []
    for raw in text.splitlines() + ["---"]:
        if re.match(r"^(---|\.\.\.)(\s|$)", raw):
            if current:
                value, index = _block(current, 0, current[0][0])
                if index != len(current):
                    raise ValueError(f"YAML: cannot parse from {current[index][1]!r}")
                documents.append(value)
            current = []
            continue
        if "\t" in raw[:len(raw) - len(raw.lstrip())]:
            raise ValueError("YAML: tabs in indentation")
        line = _strip_comment(raw)
        if line.strip():
            current.append((len(line) - len(line.lstrip(" ")), line.strip()))
    return documents


def to_yaml(value, indent=0):
    """value (dicts, lists, strings, numbers, booleans, None) as block-style YAML, the
    way kubectl writes kubeconfigs (readers of a YAML subset expect that, not JSON);
    strings double-quoted."""
    pad = " " * indent
    if isinstance(value, dict) and value:
        lines = []
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{key}:\n" + to_yaml(item, indent + 2))
            else:
                lines.append(f"{pad}{key}: {to_yaml(item).strip()}\n")
        return "".join(lines)
    if isinstance(value, list) and value:
        lines = []
        for item in value:
            text = to_yaml(item, indent + 2)
            lines.append(f"{pad}- {text[indent + 2:]}" if isinstance(item, (dict, list)) and item
                         else f"{pad}- {text.strip()}\n")
        return "".join(lines)
    if isinstance(value, dict):
        return "{}\n"
    if isinstance(value, list):
        return "[]\n"
    return json.dumps(value) + "\n"


# ---- the API ----

# Where each resource lives: the group's path prefix, and whether it is namespaced.
_RESOURCES = {
    "namespaces": ("/api/v1", False),
    "nodes": ("/api/v1", False),
    "persistentvolumes": ("/api/v1", False),
    "leases": ("/apis/coordination.k8s.io/v1", True),
    "roles": ("/apis/rbac.authorization.k8s.io/v1", True),
    "rolebindings": ("/apis/rbac.authorization.k8s.io/v1", True),
    "clusterroles": ("/apis/rbac.authorization.k8s.io/v1", False),
    "clusterrolebindings": ("/apis/rbac.authorization.k8s.io/v1", False),
    "storageclasses": ("/apis/storage.k8s.io/v1", False),
}
_PLURALS = {"Endpoints": "endpoints"}


def plural(kind):
    """The resource name of a kind: Pod -> pods, StorageClass -> storageclasses."""
    if kind in _PLURALS:
        return _PLURALS[kind]
    lower = kind.lower()
    return lower + ("es" if lower.endswith("s") else "s")


def resource_path(resource, name=None, namespace=None, subresource=None):
    """The API path of a resource (plural name: "pods", "leases"...), of one object when
    name is given, of its subresource ("status", "binding", "token")."""
    prefix, namespaced = _RESOURCES.get(resource, ("/api/v1", True))
    path = prefix
    if namespaced and namespace:
        path += "/namespaces/" + urllib.parse.quote(namespace, safe="")
    path += "/" + resource
    if name is not None:
        path += "/" + urllib.parse.quote(name, safe="")
    if subresource:
        path += "/" + subresource
    return path


def _temporary_file(data, suffix):
    handle, path = tempfile.mkstemp(prefix="pgha-kube-", suffix=suffix)
    with os.fdopen(handle, "wb") as out:
        out.write(data)
    atexit.register(lambda: os.path.exists(path) and os.unlink(path))
    return path


class Api:
    """A small client of the Kubernetes API: JSON in and out, a bearer token or a client
    certificate, the cluster's CA. One kept-alive connection per thread. Methods take
    API paths (see resource_path) and raise KubeError on HTTP errors."""

    def __init__(self, server, ca_file=None, ca_data=None, token=None, cert_file=None,
                 key_file=None, namespace="default", insecure=False, timeout=15):
        parts = urllib.parse.urlsplit(server)
        if parts.scheme != "https":
            raise ValueError(f"only https API servers are supported, not {server}")
        self.server = server
        self.host = parts.hostname
        self.port = parts.port or 443
        self.prefix = parts.path.rstrip("/")
        self.token = token
        self.namespace = namespace
        self.timeout = timeout
        if insecure:
            self.context = ssl._create_unverified_context()
        else:
            self.context = ssl.create_default_context(cafile=ca_file, cadata=ca_data)
        if cert_file:
            self.context.load_cert_chain(cert_file, key_file)
        self._local = threading.local()

    @classmethod
    def from_kubeconfig(cls, path, context=None, **kwargs):
        """An Api from a kubeconfig file (JSON or YAML): its current (or the named)
        context's cluster, user and namespace. Token, token file, client certificate and
        key, CA: as files or inline data."""
        with open(path) as source:
            config = parse_yaml(source.read())[0]
        base = os.path.dirname(os.path.abspath(path))

        def named(section, name):
            for entry in config.get(section) or []:
                if entry.get("name") == name:
                    return entry
            raise ValueError(f"{path}: no {section[:-1]} named {name!r}")

        context = named("contexts", context or config.get("current-context"))["context"]
        cluster = named("clusters", context["cluster"])["cluster"]
        user = named("users", context["user"])["user"] if context.get("user") else {}

        def local(file):
            return file if os.path.isabs(file) else os.path.join(base, file)

        options = {"namespace": context.get("namespace") or "default"}
        if cluster.get("certificate-authority-data"):
            options["ca_data"] = base64.b64decode(cluster["certificate-authority-data"]).decode()
        elif cluster.get("certificate-authority"):
            options["ca_file"] = local(cluster["certificate-authority"])
        options["insecure"] = bool(cluster.get("insecure-skip-tls-verify"))
        if user.get("token"):
            options["token"] = user["token"]
        elif user.get("tokenFile"):
            with open(local(user["tokenFile"])) as token:
                options["token"] = token.read().strip()
        if user.get("client-certificate-data"):
            options["cert_file"] = _temporary_file(base64.b64decode(user["client-certificate-data"]), ".crt")
        elif user.get("client-certificate"):
            options["cert_file"] = local(user["client-certificate"])
        if user.get("client-key-data"):
            options["key_file"] = _temporary_file(base64.b64decode(user["client-key-data"]), ".key")
        elif user.get("client-key"):
            options["key_file"] = local(user["client-key"])
        options.update(kwargs)
        return cls(cluster["server"], **options)

    def _connection(self):
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPSConnection(self.host, self.port, context=self.context,
                                                     timeout=self.timeout)
            self._local.connection = connection
        return connection

    def _headers(self, content_type=None):
        headers = {"Accept": "application/json", "User-Agent": "pgha-tests"}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    @staticmethod
    def _url(prefix, path, query):
        query = {key: value for key, value in (query or {}).items() if value is not None}
        return prefix + path + ("?" + urllib.parse.urlencode(query) if query else "")

    def request(self, method, path, body=None, content_type="application/json", query=None):
        """One request; the answer's JSON (None when empty). KubeError on status >= 400."""
        url = self._url(self.prefix, path, query)
        data = None if body is None else json.dumps(body).encode()
        headers = self._headers(content_type if data is not None else None)
        for attempt in (1, 2):
            reused = getattr(self._local, "connection", None) is not None
            connection = self._connection()
            try:
                connection.request(method, url, body=data, headers=headers)
                response = connection.getresponse()
                raw = response.read()
                break
            except (http.client.HTTPException, OSError):
                connection.close()
                self._local.connection = None
                # a kept-alive connection the server closed: once more on a new one
                if attempt == 2 or not reused:
                    raise
        try:
            answer = json.loads(raw) if raw else None
        except ValueError:
            answer = raw.decode(errors="replace")
        if response.status >= 400:
            raise KubeError(method, path, response.status, answer)
        return answer

    def get(self, path, **query):
        """GET path; query parameters as keywords (labelSelector="a=b")."""
        return self.request("GET", path, query=query)

    def get_or_none(self, path):
        """GET path, or None when it is not found (404)."""
        try:
            return self.get(path)
        except KubeError as error:
            if error.status == 404:
                return None
            raise

    def list(self, path, label_selector=None, field_selector=None):
        """The items of a list (GET of a collection)."""
        answer = self.get(path, labelSelector=label_selector, fieldSelector=field_selector)
        return answer.get("items") or []

    def create(self, path, obj):
        """POST obj to a collection (or a subresource such as binding or token)."""
        return self.request("POST", path, obj)

    def put(self, path, obj):
        """PUT: replace obj; 409 when its metadata.resourceVersion is stale."""
        return self.request("PUT", path, obj)

    def patch(self, path, obj, patch_type="merge"):
        """PATCH with a JSON merge patch ("merge"), a strategic merge patch ("strategic")
        or a JSON patch ("json", obj a list of operations)."""
        content_type = {"merge": "application/merge-patch+json",
                        "strategic": "application/strategic-merge-patch+json",
                        "json": "application/json-patch+json"}[patch_type]
        return self.request("PATCH", path, obj, content_type=content_type)

    def delete(self, path, grace_period=None, uid=None, resource_version=None, propagation=None,
               missing_ok=False):
        """DELETE with DeleteOptions: gracePeriodSeconds, preconditions (uid,
        resourceVersion), propagationPolicy. None when missing_ok and it is not found."""
        options = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if grace_period is not None:
            options["gracePeriodSeconds"] = grace_period
        preconditions = {key: value for key, value in (("uid", uid), ("resourceVersion", resource_version))
                         if value is not None}
        if preconditions:
            options["preconditions"] = preconditions
        if propagation:
            options["propagationPolicy"] = propagation
        try:
            return self.request("DELETE", path, options)
        except KubeError as error:
            if missing_ok and error.status == 404:
                return None
            raise

    def watch(self, path, resource_version=None, timeout_seconds=60, label_selector=None):
        """Events of a watch on a collection, as (type, object), on a connection of its
        own, until the server ends it (timeout_seconds) or the caller stops iterating."""
        query = {"watch": "1", "resourceVersion": resource_version, "timeoutSeconds": timeout_seconds,
                 "allowWatchBookmarks": "true", "labelSelector": label_selector}
        connection = http.client.HTTPSConnection(self.host, self.port, context=self.context,
                                                 timeout=timeout_seconds + 10)
        try:
            connection.request("GET", self._url(self.prefix, path, query), headers=self._headers())
            response = connection.getresponse()
            if response.status >= 400:
                raw = response.read()
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
                raise KubeError("GET", path + " (watch)", response.status, body)
            while True:
                line = response.readline()
                if not line:
                    return
                if line.strip():
                    event = json.loads(line)
                    yield event.get("type"), event.get("object")
        finally:
            connection.close()

    def close(self):
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def apply(self, obj, namespace=None):
        """Creates obj (a manifest as a dict), or replaces it when it exists. Namespaced
        objects go to namespace (default: their own, else this client's)."""
        resource = plural(obj["kind"])
        metadata = obj.setdefault("metadata", {})
        if _RESOURCES.get(resource, ("", True))[1]:
            metadata["namespace"] = namespace or metadata.get("namespace") or self.namespace
        collection = resource_path(resource, namespace=metadata.get("namespace"))
        if obj["apiVersion"] != "v1":
            collection = "/apis/" + obj["apiVersion"] + collection.split("/v1", 1)[1]
        try:
            return self.create(collection, obj)
        except KubeError as error:
            if error.status != 409:
                raise
        path = collection + "/" + urllib.parse.quote(metadata["name"], safe="")
        current = self.get(path)
        metadata["resourceVersion"] = current["metadata"]["resourceVersion"]
        return self.put(path, obj)


# ---- kubeconfigs ----

def write_kubeconfig(path, server, ca_pem, namespace="default", token=None, cert_pem=None, key_pem=None,
                     user="pgha-test", mode=0o600):
    """Writes a self-contained kubeconfig (YAML; CA, token, certificate inline) at path."""
    credentials = {}
    if token:
        credentials["token"] = token
    if cert_pem:
        credentials["client-certificate-data"] = base64.b64encode(cert_pem.encode()).decode()
        credentials["client-key-data"] = base64.b64encode(key_pem.encode()).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "pgha-test", "cluster": {
            "server": server, "certificate-authority-data": base64.b64encode(ca_pem.encode()).decode()}}],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": "pgha-test", "context": {"cluster": "pgha-test", "user": user,
                                                        "namespace": namespace}}],
        "current-context": "pgha-test",
        "preferences": {},
    }
    temporary = path + ".tmp"
    with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "w") as out:
        out.write(to_yaml(config))
    os.chmod(temporary, mode)
    os.replace(temporary, path)
    return path


def _ca_pem_of(api):
    """The PEM of the CA an Api trusts (for kubeconfigs made from it)."""
    certificates = api.context.get_ca_certs(binary_form=True)
    return "".join(ssl.DER_cert_to_PEM_cert(der) for der in certificates)


# ---- the cluster ----

class Kube:
    """A cluster the tests use, reached through an admin kubeconfig: this base class
    starts nothing (PGHA_TEST_KUBECONFIG); LocalKube starts etcd and kube-apiserver."""

    def __init__(self, kubeconfig, workdir=None):
        self.kubeconfig = kubeconfig
        self.api = Api.from_kubeconfig(kubeconfig)
        self.server = self.api.server
        self._own_workdir = workdir is None
        self.workdir = workdir or _make_workdir()
        self.namespaces = []
        self.agents = []
        self._counter = itertools.count(1)
        self._delete_namespaces = True

    @property
    def ca_pem(self):
        return _ca_pem_of(self.api)

    def new_namespace(self, prefix="pgha-t"):
        """Creates a namespace with a fresh name (prefix, a counter, random letters) and
        returns its name. Never reuse one: nothing finalizes a deleted namespace."""
        suffix = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(5))
        name = f"{prefix}{next(self._counter)}-{suffix}"
        self.api.create("/api/v1/namespaces", {
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {"pgha.io/test": "true"}}})
        self.namespaces.append(name)
        return name

    def apply_rbac(self, namespace, rbac_file=RBAC_FILE, path=None, owner=None, expiration=86400):
        """Applies rbac_file's objects (ServiceAccount, Role, RoleBinding) in namespace and
        returns the path of a kubeconfig (at path, default in the work directory) whose
        user is that ServiceAccount, with a token from the TokenRequest API. The file is
        self-contained and readable by all (0644), or owned by owner (uid, gid) at 0600."""
        with open(rbac_file) as source:
            documents = parse_yaml(source.read())
        account = None
        # objects outside the namespace (cluster-wide, or in kube-node-lease) are shared by
        # every test's namespace: each gets its own, named after it
        outside = {(obj["kind"], obj["metadata"]["name"]) for obj in documents
                   if not _RESOURCES.get(plural(obj["kind"]), ("", True))[1]
                   or obj["metadata"].get("namespace", "default") != "default"}
        for obj in documents:
            metadata = obj.setdefault("metadata", {})
            if (obj["kind"], metadata["name"]) in outside:
                metadata["name"] = f"{metadata['name']}-{namespace}"
            else:
                metadata["namespace"] = namespace
            reference = obj.get("roleRef")
            if reference and (reference["kind"], reference["name"]) in outside:
                reference["name"] = f"{reference['name']}-{namespace}"
            if obj["kind"] == "ServiceAccount":
                account = metadata["name"]
            for subject in obj.get("subjects") or []:
                if subject.get("kind") == "ServiceAccount":
                    subject["namespace"] = namespace
            self.api.apply(obj, metadata.get("namespace") or namespace)
        if account is None:
            raise SetupError(f"{rbac_file} defines no ServiceAccount")
        answer = self.api.create(resource_path("serviceaccounts", account, namespace, "token"), {
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": expiration}})
        token = answer["status"]["token"]
        path = path or os.path.join(self.workdir, f"kubeconfig-{namespace}-{account}")
        write_kubeconfig(path, self.server, self.ca_pem, namespace=namespace, token=token,
                         user=f"system:serviceaccount:{namespace}:{account}",
                         mode=0o600 if owner else 0o644)
        if owner:
            os.chown(path, *owner)
        return path

    def start_agent(self, namespace, root, entrypoint, user, log=None, kubeconfig=None, extra_args=(), wrapper=()):
        """Starts tests/k8s/node-agent.py for namespace (see AgentProcess), its argv after
        wrapper (e.g. nsenter into a node's network namespace); on a real node
        (tests/k8s/real-node sets PGHA_REAL_NODE_DIR) its kubelet runs the pods instead,
        and a RealNodeAgent stands for the agent."""
        if os.environ.get("PGHA_REAL_NODE_DIR"):
            agent = RealNodeAgent(self, namespace, root, log)
            self.agents.append(agent)
            return agent
        agent = AgentProcess(kubeconfig or self.kubeconfig, namespace, root, entrypoint, user, log, extra_args, wrapper)
        self.agents.append(agent)
        return agent

    def close(self, remove_workdir=True):
        for agent in self.agents:
            agent.stop()
        self.agents = []
        if self._delete_namespaces:
            for name in self.namespaces:
                try:
                    self.api.delete(resource_path("namespaces", name), missing_ok=True)
                except (KubeError, OSError):
                    pass
        self.namespaces = []
        self.api.close()
        if self._own_workdir and remove_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def _make_workdir():
    """A private directory, on /dev/shm when it can be (etcd's data is written there),
    that other users may traverse (0711) to read the kubeconfigs made for them."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    path = tempfile.mkdtemp(prefix="pgha-kube-", dir=base)
    os.chmod(path, 0o711)
    return path


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _die_with_parent():
    """preexec_fn: the child gets SIGTERM when this process dies (PR_SET_PDEATHSIG)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def _tail(path, lines=60):
    try:
        with open(path, errors="replace") as source:
            return "".join(source.readlines()[-lines:])
    except OSError:
        return ""


def _openssl(*args, cwd):
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SetupError(f"openssl {' '.join(args)} failed: {result.stderr.strip()}")


def find_apiserver():
    """The kube-apiserver to run: $PGHA_KUBE_APISERVER, else the newest one cached by
    tests/k8s/build-apiserver, else None."""
    wanted = os.environ.get("PGHA_KUBE_APISERVER")
    if wanted:
        return wanted
    cache = os.environ.get("PGHA_KUBE_CACHE", DEFAULT_CACHE)
    found = [path for path in glob.glob(os.path.join(cache, "kube-apiserver", "*", "kube-apiserver"))
             if os.access(path, os.X_OK)]
    return max(found, key=os.path.getmtime) if found else None


def build_apiserver():
    """Runs tests/k8s/build-apiserver (at once when cached; minutes and root otherwise);
    (path or None, its stderr's tail)."""
    result = subprocess.run([BUILD_SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = result.stdout.strip().splitlines()
    if result.returncode == 0 and lines and os.access(lines[-1], os.X_OK):
        return lines[-1], ""
    return None, "\n".join(result.stderr.strip().splitlines()[-5:])


class LocalKube(Kube):
    """etcd and kube-apiserver on loopback at free ports, their data and certificates in
    a directory on /dev/shm; an admin (system:masters) token; stopped by close() or at
    exit. server, kubeconfig (admin, token), cert_kubeconfig (admin, client certificate),
    api, ca_file, workdir, started_seconds (how long the start took)."""

    def __init__(self, apiserver, etcd=None, workdir=None, timeout=90):
        self.apiserver_binary = apiserver
        self.etcd_binary = etcd or shutil.which("etcd") or "/usr/bin/etcd"
        self._own_workdir = workdir is None
        self.workdir = workdir or _make_workdir()
        os.makedirs(self.workdir, exist_ok=True)
        self.processes = []
        atexit.register(self.close)
        begun = time.monotonic()
        try:
            self._start(timeout)
        except BaseException:
            self.close()
            raise
        self.started_seconds = time.monotonic() - begun
        workdir_owned = self._own_workdir
        super().__init__(self.kubeconfig, self.workdir)
        self._own_workdir = workdir_owned
        # etcd is thrown away: deleting namespaces would only leave them Terminating
        self._delete_namespaces = False

    def _file(self, name):
        return os.path.join(self.workdir, name)

    def _certificates(self):
        for program in ("openssl",):
            if shutil.which(program) is None:
                raise SetupError(f"{program} is not installed (tests/k8s/build-apiserver installs it)")
        cwd = self.workdir
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "3650",
                 "-subj", "/CN=pgha-test-ca", cwd=cwd)
        # 198.18.0.1: where the test nodes (network namespaces, tests/k8s/nodes.py) reach it
        names = ["IP:127.0.0.1", "IP:10.0.0.1", "IP:198.18.0.1", "DNS:localhost", "DNS:kubernetes", "DNS:kubernetes.default",
                 "DNS:kubernetes.default.svc", "DNS:kubernetes.default.svc.cluster.local"]
        with open(self._file("server.ext"), "w") as ext:
            ext.write("subjectAltName=" + ",".join(names) + "\n"
                      "extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n")
        with open(self._file("client.ext"), "w") as ext:
            ext.write("extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n")
        for name, subject, ext in (("server", "/CN=kube-apiserver", "server.ext"),
                                   ("admin", "/O=system:masters/CN=pgha-admin", "client.ext")):
            _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=cwd)
            _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                     "-CAcreateserial", "-days", "3650", "-out", f"{name}.crt", "-extfile", ext, cwd=cwd)
        _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "sa.key", cwd=cwd)
        for key in glob.glob(os.path.join(cwd, "*.key")):
            os.chmod(key, 0o600)
        self.admin_token = secrets.token_hex(24)
        with open(os.open(self._file("tokens.csv"), os.O_WRONLY | os.O_CREAT, 0o600), "w") as tokens:
            tokens.write(f'{self.admin_token},pgha-admin,pgha-admin,"system:masters"\n')

    def _spawn(self, name, argv):
        log = open(self._file(name + ".log"), "ab")
        try:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                       cwd=self.workdir, start_new_session=True, preexec_fn=_die_with_parent)
        finally:
            log.close()
        process.name = name
        self.processes.append(process)
        return process

    def _wait(self, process, what, check, deadline):
        while True:
            if process.poll() is not None:
                raise SetupError(f"{process.name} exited with {process.returncode} before {what}:\n"
                                 + _tail(self._file(process.name + ".log")))
            try:
                if check():
                    return
            except (OSError, http.client.HTTPException, KubeError):
                pass
            if time.monotonic() > deadline:
                raise SetupError(f"{process.name} not {what} in time:\n" + _tail(self._file(process.name + ".log")))
            time.sleep(0.1)

    def _start(self, timeout):
        if not (self.apiserver_binary and os.access(self.apiserver_binary, os.X_OK)):
            raise SetupError(f"no kube-apiserver at {self.apiserver_binary!r} (tests/k8s/build-apiserver builds one)")
        if not os.access(self.etcd_binary, os.X_OK):
            raise SetupError("etcd is not installed (Debian's etcd-server; tests/k8s/build-apiserver installs it)")
        deadline = time.monotonic() + timeout
        self._certificates()
        etcd_port, peer_port, port = free_port(), free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        etcd = self._spawn("etcd", [
            self.etcd_binary, "--name", "pgha-test", "--data-dir", self._file("etcd"),
            "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
            "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
            "--initial-cluster", f"pgha-test={peer_url}", "--initial-cluster-state", "new",
            "--logger", "zap", "--log-level", "warn"])

        def etcd_healthy():
            connection = http.client.HTTPConnection("127.0.0.1", etcd_port, timeout=2)
            try:
                connection.request("GET", "/health")
                return json.loads(connection.getresponse().read()).get("health") == "true"
            finally:
                connection.close()

        self._wait(etcd, "healthy", etcd_healthy, deadline)
        self.server = f"https://127.0.0.1:{port}"
        apiserver = self._spawn("kube-apiserver", [
            self.apiserver_binary,
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1", f"--secure-port={port}",
            "--advertise-address=127.0.0.1",
            "--endpoint-reconciler-type=none",
            f"--tls-cert-file={self._file('server.crt')}", f"--tls-private-key-file={self._file('server.key')}",
            f"--client-ca-file={self._file('ca.crt')}",
            f"--token-auth-file={self._file('tokens.csv')}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={self._file('sa.key')}",
            f"--service-account-signing-key-file={self._file('sa.key')}",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--authorization-mode=RBAC",
            "--disable-admission-plugins=ServiceAccount",
            "--profiling=false",
            "--logtostderr=true", "--v=1"])
        with open(self._file("ca.crt")) as ca:
            self.ca_pem_text = ca.read()
        with open(self._file("admin.crt")) as cert, open(self._file("admin.key")) as key:
            admin_cert, admin_key = cert.read(), key.read()
        self.ca_file = self._file("ca.crt")
        self.kubeconfig = write_kubeconfig(self._file("admin.kubeconfig"), self.server, self.ca_pem_text,
                                           token=self.admin_token, user="pgha-admin")
        self.cert_kubeconfig = write_kubeconfig(self._file("admin-cert.kubeconfig"), self.server,
                                                self.ca_pem_text, cert_pem=admin_cert, key_pem=admin_key,
                                                user="pgha-admin-cert")
        probe = Api.from_kubeconfig(self.kubeconfig, timeout=5)
        try:
            self._wait(apiserver, "ready (/readyz)", lambda: probe.request("GET", "/readyz") is not None, deadline)
            # the namespace "default" is made by a bootstrap controller /readyz does not wait for
            self._wait(apiserver, "done making namespace default",
                       lambda: probe.get_or_none("/api/v1/namespaces/default") is not None, deadline)
        finally:
            probe.close()

    def log_report(self, lines=60):
        """The tails of etcd's and the API server's logs."""
        return "".join(f"----- {process.name} (last {lines} lines) -----\n" + _tail(self._file(process.name + ".log"), lines)
                       for process in self.processes)

    def close(self):
        if getattr(self, "api", None) is not None:
            Kube.close(self, remove_workdir=False)
            self.api = None
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.processes = []
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def start(apiserver=None, timeout=90):
    """The test cluster: the one of $PGHA_TEST_KUBECONFIG if set (nothing started), else
    a LocalKube running apiserver (default: find_apiserver())."""
    external = os.environ.get("PGHA_TEST_KUBECONFIG")
    if external:
        return Kube(external)
    apiserver = apiserver or find_apiserver()
    if not apiserver:
        raise SetupError("no kube-apiserver: run tests/k8s/build-apiserver or set PGHA_KUBE_APISERVER")
    return LocalKube(apiserver, timeout=timeout)


# ---- the node agent, as a process ----

class AgentProcess:
    """tests/k8s/node-agent.py running for one namespace, with root as its directory
    (volumes under root/volumes/NAMESPACE/CLAIM, pods under root/pods/, their output
    under root/logs/), its log at log (default root/agent.log). stop() ends it, which kills its pods' processes."""

    def __init__(self, kubeconfig, namespace, root, entrypoint, user, log=None, extra_args=(), wrapper=()):
        self.namespace = namespace
        self.root = root
        self.log_path = log or os.path.join(root, "agent.log")
        os.makedirs(root, exist_ok=True)
        argv = [*wrapper, sys.executable, NODE_AGENT, "--kubeconfig", kubeconfig, "--namespace", namespace,
                "--root", root, "--entrypoint", entrypoint, "--user", str(user), "--log", self.log_path,
                *extra_args]
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True,
                                        preexec_fn=_die_with_parent)
        atexit.register(self.stop)
        deadline = time.monotonic() + 15
        while "watching" not in self.log_text():
            if self.process.poll() is not None:
                raise SetupError(f"node-agent exited with {self.process.returncode}:\n{self.log_text()}")
            if time.monotonic() > deadline:
                raise SetupError(f"node-agent did not start:\n{self.log_text()}")
            time.sleep(0.05)

    def volume_dir(self, claim):
        """The directory that stands for PersistentVolumeClaim claim."""
        return os.path.join(self.root, "volumes", self.namespace, claim)

    def pod_logs(self, name=None):
        """The output files of the pods named name (all pods when None), one per uid
        (kept after the pod is gone), oldest first."""
        pattern = f"{self.namespace}_{name}_*.log" if name else f"{self.namespace}_*.log"
        return sorted(glob.glob(os.path.join(self.root, "logs", pattern)), key=os.path.getmtime)

    def pod_log(self, name):
        """The output of the newest pod named name ("" if none)."""
        logs = self.pod_logs(name)
        return _tail(logs[-1], 10 ** 6) if logs else ""

    def log_text(self):
        return _tail(self.log_path, 10 ** 6)

    def turns(self):
        """How many turns (list the pods, act on each) the agent has completed."""
        try:
            with open(os.path.join(self.root, "turns")) as source:
                return int(source.read())
        except FileNotFoundError:
            return 0

    def wait_for_a_turn(self, timeout=30):
        """Waits until a turn that began after this call is complete: the agent has looked
        at every pod and claim since. The turn under way when called may have begun before."""
        begun = self.turns()
        deadline = time.monotonic() + timeout
        while self.turns() < begun + 2:
            if self.process.poll() is not None:
                raise SetupError(f"node-agent exited with {self.process.returncode}:\n{self.log_text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"node agent: no complete turn within {timeout} s")
            time.sleep(0.02)

    def log_report(self, lines=100):
        return f"----- node agent {self.namespace} (last {lines} lines) -----\n" + _tail(self.log_path, lines)

    def running(self):
        return self.process.poll() is None

    def stop(self, timeout=15):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class RealNodeAgent:
    """What a test sees of the node on a real node (tests/k8s/real-node): kubelet runs the
    pods, so there is no agent process; the pods' output comes from the API (pods/log),
    and a turn is a pass of the API server's watch cache (a list answered after this call)."""

    def __init__(self, kube, namespace, root, log=None):
        self.kube = kube
        self.namespace = namespace
        self.root = root
        self.log_path = log or os.path.join(root, "agent.log")
        os.makedirs(root, exist_ok=True)
        with open(self.log_path, "a") as out:
            out.write(f"real node: kubelet runs the pods of {namespace}\n")
        self.stopped = False

    def volume_dir(self, claim):
        """The local directory of the PersistentVolume bound to claim (None if unbound)."""
        obj = self.kube.api.get_or_none(resource_path("persistentvolumeclaims", claim, self.namespace))
        volume = obj and (obj.get("spec") or {}).get("volumeName")
        if not volume:
            return None
        return self.kube.api.get(resource_path("persistentvolumes", volume))["spec"]["local"]["path"]

    def pod_logs(self, name=None):
        return [name] if name else []

    def pod_log(self, name):
        try:
            answer = self.kube.api.request("GET", resource_path("pods", name, self.namespace, "log"))
        except (KubeError, OSError):
            return ""
        return answer if isinstance(answer, str) else json.dumps(answer)

    def log_text(self):
        return _tail(self.log_path, 10 ** 6)

    def turns(self):
        return 0

    def wait_for_a_turn(self, timeout=30):
        self.kube.api.list(resource_path("pods", namespace=self.namespace))

    def log_report(self, lines=100):
        return f"----- real node {self.namespace} -----\n"

    def running(self):
        return True

    def stop(self, timeout=15):
        """The test is over: its namespace is deleted, so that kubelet stops its pods now
        (as the node agent kills its pods' processes) rather than when the test file
        ends; a suite's worth of clusters left running would starve the later tests."""
        if not self.stopped:
            self.stopped = True
            try:
                self.kube.api.delete(resource_path("namespaces", self.namespace), missing_ok=True)
            except (KubeError, OSError):
                pass


# ---- command line ----

def _main(argv=None):
    parser = argparse.ArgumentParser(description="a real kube-apiserver (and etcd) for pgha's tests")
    commands = parser.add_subparsers(dest="command", required=True)
    start_command = commands.add_parser("start", help="start a cluster, print its admin kubeconfig, run until stopped")
    start_command.add_argument("--apiserver", help="the kube-apiserver binary (default: the cached build)")
    start_command.add_argument("--dir", help="directory for data, certificates and kubeconfigs (kept)")
    run_command = commands.add_parser("run", help="run a command against a fresh cluster")
    run_command.add_argument("--apiserver")
    run_command.add_argument("argv", nargs=argparse.REMAINDER)
    rbac_command = commands.add_parser("rbac", help="apply rbac.yaml in a namespace, print the pgha kubeconfig")
    rbac_command.add_argument("--kubeconfig", required=True, help="an admin kubeconfig")
    rbac_command.add_argument("--output", help="where to write the kubeconfig")
    rbac_command.add_argument("namespace")
    options = parser.parse_args(argv)

    def stop_on(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop_on)
    try:
        if options.command == "rbac":
            kube = Kube(options.kubeconfig, workdir=os.path.dirname(os.path.abspath(options.kubeconfig)))
            kube._delete_namespaces = False
            if kube.api.get_or_none(resource_path("namespaces", options.namespace)) is None:
                kube.api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                       "metadata": {"name": options.namespace}})
            print(kube.apply_rbac(options.namespace, path=options.output))
            return 0
        if options.command == "start":
            workdir = os.path.abspath(options.dir) if options.dir else None
            kube = LocalKube(options.apiserver or find_apiserver(), workdir=workdir)
            print(f"kube-env: API server {kube.server} ready in {kube.started_seconds:.1f} s; "
                  f"stop with Ctrl-C or SIGTERM (pid {os.getpid()})", file=sys.stderr)
            print(kube.kubeconfig, flush=True)
            try:
                while True:
                    signal.pause()
            finally:
                kube.close()
        command = options.argv[1:] if options.argv[:1] == ["--"] else options.argv
        if not command:
            parser.error("run needs a command")
        kube = LocalKube(options.apiserver or find_apiserver())
        try:
            environment = dict(os.environ, PGHA_TEST_KUBECONFIG=kube.kubeconfig, KUBECONFIG=kube.kubeconfig)
            return subprocess.call(command, env=environment)
        finally:
            kube.close()
    except KeyboardInterrupt:
        return 130
    except (SetupError, KubeError) as error:
        print(f"kube-env: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(_main())
