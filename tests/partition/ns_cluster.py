"""A 3-master, 3-replica Redis Cluster whose nodes each live in their own network namespace
(netns.py), at their own address, all on port 6379 (bus 16379), so that a partition cuts
real links between them.

Each node runs the project's redis.conf with the module under test and cluster.conf, as
tests/cluster does, plus its address and the test's overrides; the cluster is formed with
`redis-cli --cluster create`, run in the admin host's namespace. Every node is stopped by PID.
"""

import subprocess
import sys
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "cluster"))
from server import BASE_OVERRIDES, REDIS_SERVER, render_config  # noqa: E402
from cluster_harness import REDIS_CLI, SLOTS, cluster_conf_overrides  # noqa: E402
from helpers import wait_until  # noqa: E402

PORT = 6379
BUS_PORT = 16379


def client(addr, **kw):
    """A client of the node at `addr`: RESP2, no silent retry (a retried RL.ALLOW would count
    twice). Use it only in the thread of the namespace it was created in."""
    kw.setdefault("socket_timeout", 10)
    kw.setdefault("socket_connect_timeout", 2)
    return redis.Redis(host=addr, port=PORT, protocol=2, retry=Retry(NoBackoff(), 0), **kw)


def cluster_nodes(addr):
    """CLUSTER NODES of the node at `addr` -> {address: {id, flags, master_id, slots}}."""
    c = client(addr)
    try:
        text = c.execute_command("CLUSTER", "NODES").decode()
    finally:
        c.close()
    view = {}
    for line in text.strip().splitlines():
        f = line.split()
        slots = [tuple(map(int, (s.split("-") * 2)[:2])) for s in f[8:] if not s.startswith("[")]
        view[f[1].split(":")[0]] = {"id": f[0], "flags": set(f[2].split(",")),
                                    "master": None if f[3] == "-" else f[3], "slots": slots}
    return view


class Node:
    def __init__(self, host, workdir, node_timeout_ms, overrides):
        self.host = host
        self.addr = host.addr
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.settings = {**BASE_OVERRIDES, **cluster_conf_overrides(),
                         "cluster-node-timeout": node_timeout_ms, "bind": self.addr,
                         # The namespaces are private: no one else can connect.
                         "protected-mode": "no", "port": PORT, "cluster-port": BUS_PORT,
                         "dir": self.dir, "logfile": "redis.log", **overrides}
        self.proc = None

    def start(self):
        conf = self.dir / "redis.conf"
        render_config(conf, self.settings)
        self.proc = self.host.popen([REDIS_SERVER, conf], cwd=self.dir,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        return self

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    @property
    def log(self):
        p = self.dir / "redis.log"
        return p.read_text(errors="replace")[-3000:] if p.exists() else ""

    def __repr__(self):
        return f"Node({self.host.name}, {self.addr})"


class NsCluster:
    """Nodes n0..n5 on `net`; `admin` is the host whose namespace runs redis-cli and the
    health checks (it must be on the majority side of any partition)."""

    def __init__(self, net, workdir, admin, node_timeout_ms, masters=3, replicas=1, **overrides):
        self.net = net
        self.admin = admin
        self.nodes = []
        for i in range(masters * (1 + replicas)):
            host = net.add_host(f"n{i}")
            self.nodes.append(Node(host, Path(workdir) / f"n{i}", node_timeout_ms, overrides))
        self.replicas = replicas

    def start(self):
        for n in self.nodes:
            n.start()
        for n in self.nodes:
            def up(n=n):
                if n.proc.poll() is not None:
                    raise AssertionError(f"{n} exited at start; log:\n{n.log}")
                try:
                    return self.admin.run(lambda: client(n.addr).ping())
                except redis.RedisError:
                    return False
            wait_until(up, 30, f"{n} to answer", 0.05)
        p = self.admin.popen([REDIS_CLI, "--cluster", "create",
                              *[f"{n.addr}:{PORT}" for n in self.nodes],
                              "--cluster-replicas", self.replicas, "--cluster-yes"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0, out[-3000:]
        self.wait_healthy()
        return self

    def stop(self):
        for n in self.nodes:
            n.kill()

    def by_addr(self, addr):
        return next(n for n in self.nodes if n.addr == addr)

    def view(self):
        return self.admin.run(cluster_nodes, self.nodes[0].addr)

    def shard(self, index=0):
        """(master, its replicas, the master's slot ranges) of the index-th master by address."""
        view = self.view()
        masters = sorted((a for a, v in view.items() if "master" in v["flags"] and v["slots"]),
                         key=lambda a: int(a.rsplit(".", 1)[1]))
        m = masters[index]
        rs = sorted(a for a, v in view.items() if v["master"] == view[m]["id"])
        return self.by_addr(m), [self.by_addr(r) for r in rs], view[m]["slots"]

    def role(self, node):
        """The role `node` reports itself ("master" or "slave"), asked from the admin host."""
        def ask():
            c = client(node.addr, socket_timeout=2)
            try:
                return c.info("replication")["role"]
            finally:
                c.close()
        return self.admin.run(ask)

    def _healthy(self):
        views = []
        for n in self.nodes:
            c = client(n.addr, socket_timeout=2)
            try:
                info = c.execute_command("CLUSTER", "INFO").decode()
                fields = dict(line.split(":", 1) for line in info.split() if ":" in line)
                if (fields["cluster_state"] != "ok" or fields["cluster_slots_ok"] != str(SLOTS)
                        or int(fields["cluster_known_nodes"]) != len(self.nodes)):
                    return False
                repl = c.info("replication")
                if repl["role"] == "slave" and (repl["master_link_status"] != "up"
                                                or repl["master_sync_in_progress"]):
                    return False
            finally:
                c.close()
            view = cluster_nodes(n.addr)
            if any(v["flags"] & {"fail", "fail?"} for v in view.values()):
                return False
            views.append({a: (v["master"], v["slots"]) for a, v in view.items()})
        return all(v == views[0] for v in views)

    def wait_healthy(self, timeout=90):
        """Every node: state ok, all slots served, replicas in sync, no node flagged failing,
        and the same slot map and replica relations in every node's view."""
        def healthy():
            try:
                return self.admin.run(self._healthy)
            except (redis.RedisError, KeyError, StopIteration):
                return False
        started = time.monotonic()
        wait_until(healthy, timeout, "the cluster to be healthy and in agreement", 0.1)
        return time.monotonic() - started
