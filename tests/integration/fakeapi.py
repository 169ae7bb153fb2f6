"""A fake Kubernetes API server for the tests of src/k8s.c: namespaced and cluster-scoped
objects kept in memory, with resourceVersion and uid preconditions, merge patches, label
selectors and Status errors as the real one answers them. It records every request
(method, path, query, headers, body, the client's port and certificate) and can be told
to answer the next requests to a path with a canned status.

HTTP/1.1 with keep-alive, over plain TCP or TLS (optionally asking for a client
certificate). Runs in a thread of the test process.
"""
import copy
import http.server
import json
import os
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
import uuid


def status_body(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


def merge_patch(target, patch):
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def selector_matches(selector, labels):
    """Equality-based selectors: k=v, k==v, k!=v, k, !k, joined by commas."""
    for term in filter(None, (part.strip() for part in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


def split_path(path):
    """(collection, name) of an API path: /api/v1/namespaces/NS/pods/NAME gives
    (/api/v1/namespaces/NS/pods, NAME); a collection's name is None."""
    parts = path.strip("/").split("/")
    prefix = 2 if parts[0] == "api" else 3
    rest = parts[prefix:]
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        size = 3
    else:
        size = 1
    if len(rest) == size:
        return path.rstrip("/"), None
    return "/" + "/".join(parts[:prefix + size]), rest[size] if len(rest) > size else None


def make_pki(directory):
    """A CA (ca.crt), a server certificate for 127.0.0.1 (server.crt, server.key) and a
    client certificate (client.crt, client.key: CN pgha-robot) in directory, made with openssl."""
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=pgha test CA")
    for name, subject, extension in (("server", "/CN=fake-apiserver", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
                                     ("client", "/CN=pgha-robot", "extendedKeyUsage=clientAuth")):
        openssl("req", "-new", *curve, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject)
        with open(os.path.join(directory, f"{name}.ext"), "w") as ext:
            ext.write(extension + "\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext")


class FakeAPI:
    def __init__(self, tls=None):
        """tls: None for plain HTTP, else {"certificate": PEM file, "key": PEM file,
        "client_ca": PEM file or None (ask for a client certificate signed by it)}."""
        self.objects = {}
        self.requests = []
        self.injected = []
        self.version = 100
        self.lock = threading.Lock()
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):
                pass

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                certificate = None
                if isinstance(self.connection, ssl.SSLSocket):
                    peer = self.connection.getpeercert()
                    if peer:
                        certificate = dict(item for entry in peer["subject"] for item in entry).get("commonName")
                code, answer, *extra = api.handle(self.command, self.path, dict(self.headers.items()), body,
                                                  self.client_address[1], certificate)
                payload = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(code)
                self.send_header("Content-Type",
                                 "text/plain" if isinstance(answer, bytes) else "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in (extra[0] if extra else {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls["certificate"], tls["key"])
            if tls.get("client_ca"):
                context.load_verify_locations(tls["client_ca"])
                context.verify_mode = ssl.CERT_OPTIONAL
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def inject(self, method, path, code, answer=None, times=1, headers=None):
        """The next `times` requests METHOD path (without query) get code and answer (a
        JSON value, or bytes sent as text/plain), with headers (a dict) besides, instead
        of what the store would say."""
        if answer is None:
            answer = status_body(code, "Injected", f"injected {code}")
        with self.lock:
            self.injected.append({"method": method, "path": path, "code": code, "answer": answer, "times": times,
                                  "headers": headers or {}})

    def put_object(self, path, obj):
        """Stores obj at path as if it had been created."""
        with self.lock:
            self.version += 1
            obj = copy.deepcopy(obj)
            metadata = obj.setdefault("metadata", {})
            metadata.setdefault("uid", str(uuid.uuid4()))
            metadata["resourceVersion"] = str(self.version)
            self.objects[path] = obj
            return copy.deepcopy(obj)

    def handle(self, method, raw_path, headers, body, client_port, certificate):
        parsed = urllib.parse.urlsplit(raw_path)
        path = parsed.path
        query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        try:
            decoded = json.loads(body) if body else None
        except ValueError:
            decoded = "not JSON"
        with self.lock:
            self.requests.append({"method": method, "path": path, "query": parsed.query, "headers": headers,
                                  "body": decoded, "client_port": client_port, "certificate": certificate,
                                  "monotonic": time.monotonic()})
            for rule in self.injected:
                if rule["method"] == method and rule["path"] == path and rule["times"] > 0:
                    rule["times"] -= 1
                    return rule["code"], rule["answer"], rule["headers"]
            return self.serve(method, path, query, headers, decoded)

    def serve(self, method, path, query, headers, body):
        collection, name = split_path(path)
        kind = collection.rsplit("/", 1)[-1]
        if method == "GET" and name is None:
            selector = query.get("labelSelector", [""])[0]
            items = [copy.deepcopy(obj) for key, obj in sorted(self.objects.items())
                     if split_path(key)[0] == collection
                     and selector_matches(selector, obj["metadata"].get("labels", {}))]
            return 200, {"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": str(self.version)},
                         "items": items}
        if method == "POST" and name is None:
            if not isinstance(body, dict) or not body.get("metadata", {}).get("name"):
                return 422, status_body(422, "Invalid", f"{kind} is invalid: metadata.name: Required value")
            target = f"{collection}/{body['metadata']['name']}"
            if target in self.objects:
                return 409, status_body(409, "AlreadyExists", f'{kind} "{body["metadata"]["name"]}" already exists')
            self.version += 1
            obj = copy.deepcopy(body)
            obj["metadata"].update({"uid": str(uuid.uuid4()), "resourceVersion": str(self.version)})
            self.objects[target] = obj
            return 201, copy.deepcopy(obj)
        if name is None:
            return 405, status_body(405, "MethodNotAllowed", "the server does not allow this method")
        current = self.objects.get(path)
        if current is None:
            return 404, status_body(404, "NotFound", f'{kind} "{name}" not found')
        conflict = status_body(409, "Conflict", f'Operation cannot be fulfilled on {kind} "{name}": the object has '
                               'been modified; please apply your changes to the latest version and try again')
        if method == "GET":
            return 200, copy.deepcopy(current)
        if method == "PUT":
            wanted = (body.get("metadata") or {}).get("resourceVersion")
            if wanted and wanted != current["metadata"]["resourceVersion"]:
                return 409, conflict
            self.version += 1
            obj = copy.deepcopy(body)
            obj["metadata"].update({"uid": current["metadata"]["uid"], "resourceVersion": str(self.version)})
            self.objects[path] = obj
            return 200, copy.deepcopy(obj)
        if method == "PATCH":
            if headers.get("Content-Type") != "application/merge-patch+json":
                return 415, status_body(415, "UnsupportedMediaType",
                                        f"the body of the request was in an unknown format - accepted media types "
                                        f"include: application/merge-patch+json; got {headers.get('Content-Type')}")
            wanted = (body.get("metadata") or {}).get("resourceVersion")
            if wanted and wanted != current["metadata"]["resourceVersion"]:
                return 409, conflict
            self.version += 1
            obj = merge_patch(current, body)
            obj["metadata"].update({"uid": current["metadata"]["uid"], "resourceVersion": str(self.version)})
            self.objects[path] = obj
            return 200, copy.deepcopy(obj)
        if method == "DELETE":
            uid = ((body or {}).get("preconditions") or {}).get("uid")
            if uid and uid != current["metadata"]["uid"]:
                return 409, status_body(409, "Conflict", f'Operation cannot be fulfilled on {kind} "{name}": '
                                        f'Precondition failed: UID in precondition: {uid}, UID in object meta: '
                                        f'{current["metadata"]["uid"]}')
            del self.objects[path]
            return 200, copy.deepcopy(current)
        return 405, status_body(405, "MethodNotAllowed", "the server does not allow this method")


class SilentServer:
    """Accepts TCP connections (the kernel completes them) and never answers."""

    def __init__(self):
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.socket.close()
