"""Test nodes as network namespaces, the API server over a bridge, and partitions as
nftables rules: the network of tests/integration/test_k8s_partition.py.

    network = Network()                     # a hub namespace with a bridge, 198.18.0.1/24
    proxy = network.proxy(kube.server)      # the API server, reached at 198.18.0.1:6443
                                            # (pods, pghad) and 198.18.0.1:6444 (node agents)
    node = network.add_node("n0")           # a namespace on the bridge, 198.18.0.10
    node.command(argv)                      # argv run in the node's namespace (nsenter)
    node.executor()                         # a thread in the node's namespace (psycopg2 there)
    network.isolate(node)                   # nothing in or out of its eth0
    network.cut(a, b)                       # a and b do not hear each other
    network.cut_from_api(node, agent_only)  # the node (or its agent alone) from the API server
    network.heal()                          # every rule removed
    network.close()                         # namespaces deleted, proxy stopped

Addresses are from the benchmarking range 198.18.0.0/15 and live only in namespaces made
here (the root namespace gets none, and nothing is routed out): no packet leaves the
machine. Namespace names carry this process's pid and random letters, so that tests that
run at the same time never meet. A rule drops packets; connections already open hang
until their own timeouts, as across a real partition. Needs root, ip (iproute2), nft
(nftables) and nsenter (util-linux).
"""
import concurrent.futures
import ctypes
import os
import random
import select
import shutil
import socket
import string
import subprocess
import threading

HUB_ADDRESS = "198.18.0.1"
PREFIX = 24
API_PORT = 6443        # for pods and pghad
AGENT_API_PORT = 6444  # for node agents only: cut it to cut a kubelet alone
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def missing_programs():
    """The programs this module needs that are not installed (empty when all are)."""
    return [program for program in ("ip", "nft", "nsenter") if shutil.which(program) is None]


def _run(*argv, check=True, stdin=None):
    result = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {result.returncode}: {result.stderr.strip()}")
    return result


def enter(namespace):
    """Moves the calling thread (only it) into network namespace namespace."""
    fd = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"setns {namespace}: {os.strerror(error)}")
    finally:
        os.close(fd)


class Node:
    """One network namespace on the bridge, with its own address and nftables table."""

    def __init__(self, network, name, address):
        self.network = network
        self.name = name
        self.namespace = f"{network.tag}-{name}"
        self.address = address
        self._executor = None

    def wrapper(self):
        """The argv prefix that runs a program in this node's namespace."""
        return ["nsenter", f"--net=/run/netns/{self.namespace}", "--"]

    def command(self, argv):
        return self.wrapper() + list(argv)

    def executor(self):
        """A single thread in this node's namespace: submit() runs calls there (sockets
        made by them belong to the namespace)."""
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, initializer=enter, initargs=(self.namespace,))
        return self._executor

    def run_here(self, function, *args, **kwargs):
        return self.executor().submit(function, *args, **kwargs).result()

    def nft(self, script):
        _run("ip", "netns", "exec", self.namespace, "nft", "-f", "-", stdin=script)

    def drop(self, match):
        """Drops the packets that match (an nft match expression) in and out: match is
        written for the way out ("ip daddr X"), its mirror for the way in ("ip saddr X")."""
        mirrored = (match.replace("daddr", "\0").replace("saddr", "daddr").replace("\0", "saddr")
                    .replace("dport", "\0").replace("sport", "dport").replace("\0", "sport")
                    .replace("oifname", "iifname"))
        self.nft(f"add rule inet pgha output {match} drop\nadd rule inet pgha input {mirrored} drop\n")

    def flush(self):
        self.nft("flush chain inet pgha input\nflush chain inet pgha output\n")

    def rules(self):
        return _run("ip", "netns", "exec", self.namespace, "nft", "list", "table", "inet", "pgha").stdout

    def close(self):
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None


class Network:
    def __init__(self):
        missing = missing_programs()
        if missing:
            raise RuntimeError(f"not installed: {', '.join(missing)} (scripts/install-deps test)")
        letters = "".join(random.choice(string.ascii_lowercase) for _ in range(4))
        self.tag = f"pgha{os.getpid()}{letters}"
        self.hub = f"{self.tag}-hub"
        self.nodes = {}
        self.proxies = []
        self.namespaces = []
        self._add_namespace(self.hub)
        _run("ip", "-n", self.hub, "link", "add", "br0", "type", "bridge")
        _run("ip", "-n", self.hub, "addr", "add", f"{HUB_ADDRESS}/{PREFIX}", "dev", "br0")
        _run("ip", "-n", self.hub, "link", "set", "br0", "up")

    def _add_namespace(self, name):
        _run("ip", "netns", "add", name)
        self.namespaces.append(name)
        _run("ip", "-n", name, "link", "set", "lo", "up")

    def add_node(self, name):
        """A new node namespace: eth0 on the hub's bridge, address 198.18.0.(10 + n)."""
        address = f"198.18.0.{10 + len(self.nodes)}"
        node = Node(self, name, address)
        self._add_namespace(node.namespace)
        port = f"v{len(self.nodes)}"
        _run("ip", "-n", self.hub, "link", "add", port, "type", "veth", "peer", "name", "eth0",
             "netns", node.namespace)
        _run("ip", "-n", self.hub, "link", "set", port, "master", "br0", "up")
        _run("ip", "-n", node.namespace, "addr", "add", f"{address}/{PREFIX}", "dev", "eth0")
        _run("ip", "-n", node.namespace, "link", "set", "eth0", "up")
        node.nft("add table inet pgha\n"
                 "add chain inet pgha input { type filter hook input priority 0; policy accept; }\n"
                 "add chain inet pgha output { type filter hook output priority 0; policy accept; }\n")
        self.nodes[name] = node
        return node

    def proxy(self, server):
        """Forwards HUB_ADDRESS:API_PORT and :AGENT_API_PORT, in the hub, to server
        (https://HOST:PORT in this process's namespace). Returns the two servers' URLs."""
        host, port = server.split("//", 1)[1].rsplit(":", 1)
        for listen_port in (API_PORT, AGENT_API_PORT):
            self.proxies.append(_Proxy(self.hub, listen_port, host.strip("[]"), int(port)))
        return f"https://{HUB_ADDRESS}:{API_PORT}", f"https://{HUB_ADDRESS}:{AGENT_API_PORT}"

    # ---- partitions ----

    def isolate(self, node):
        """Nothing in or out of node's eth0 (its own address still answers inside)."""
        node.drop('oifname "eth0"')

    def cut(self, a, b):
        """a and b do not hear each other (both keep everything else)."""
        a.drop(f"ip daddr {b.address}")
        b.drop(f"ip daddr {a.address}")

    def cut_from_api(self, node, agent_only=False):
        """node cannot reach the API server (agent_only: its node agent alone cannot;
        its pods still can)."""
        ports = [AGENT_API_PORT] if agent_only else [API_PORT, AGENT_API_PORT]
        for port in ports:
            node.drop(f"ip daddr {HUB_ADDRESS} tcp dport {port}")

    def heal(self):
        for node in self.nodes.values():
            node.flush()

    def close(self):
        for proxy in self.proxies:
            proxy.close()
        for node in self.nodes.values():
            node.close()
        for name in reversed(self.namespaces):
            _run("ip", "netns", "del", name, check=False)
        self.namespaces = []


class _Proxy:
    """A TCP forwarder listening in namespace (made by a thread that enters it), connecting
    from this process's own namespace."""

    def __init__(self, namespace, port, upstream_host, upstream_port):
        self.upstream = (upstream_host, upstream_port)
        self.stopping = False
        made = {}

        def listen():
            try:
                enter(namespace)
                server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                server.bind((HUB_ADDRESS, port))
                server.listen(128)
                made["socket"] = server
            except OSError as error:
                made["error"] = error

        thread = threading.Thread(target=listen)  # ends, and its namespace with it
        thread.start()
        thread.join()
        if "error" in made:
            raise made["error"]
        self.server = made["socket"]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        try:
            upstream = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        sockets = [client, upstream]
        try:
            while not self.stopping:
                readable, _, _ = select.select(sockets, [], [], 1.0)
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    (upstream if source is client else client).sendall(data)
        except OSError:
            pass
        finally:
            client.close()
            upstream.close()

    def close(self):
        self.stopping = True
        try:
            self.server.close()
        except OSError:
            pass
