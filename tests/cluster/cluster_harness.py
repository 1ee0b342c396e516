"""A real Redis Cluster for the cluster tests, built on tests/server.py.

Every node is a `server.RedisServer` (the project's redis.conf with the module's absolute
path and the test overrides) plus the project's cluster.conf, on a fixed loopback port pair
(client port and cluster bus port, both picked free) so that a node killed and restarted
from its files comes back where the others expect it. The cluster is formed the documented
way, with `redis-cli --cluster create`, and every node is always stopped by PID.
"""

import os
import subprocess
import sys
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot
from redis.retry import Retry

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import wait_until  # noqa: E402
from server import REDIS_SERVER, ROOT, RedisServer, free_port, render_config  # noqa: E402

REDIS_CLI = os.environ.get("REDIS_CLI", "redis-cli")
SLOTS = 16384

# Short enough that a failover takes a couple of seconds, long enough that a loaded 2-core
# machine running six servers and the test never misses pings for this long (ms).
TEST_NODE_TIMEOUT_MS = 1000


def cluster_conf_overrides():
    """cluster.conf's settings as overrides (name -> value), so tests run what ships."""
    out = {}
    for line in (ROOT / "cluster.conf").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition(" ")
            out[name] = value.strip()
    return out


def no_retry_client(port, **kw):
    """A plain client of one node: RESP2, and no silent retry (a retried RL.ALLOW would
    count twice)."""
    kw.setdefault("socket_timeout", 10)
    kw.setdefault("socket_connect_timeout", 2)
    return redis.Redis(host="127.0.0.1", port=port, protocol=2, retry=Retry(NoBackoff(), 0), **kw)


class Node(RedisServer):
    """A cluster node: fixed ports, optional extra environment (e.g. a shifted clock)."""

    def __init__(self, workdir, port, bus_port, node_timeout_ms, env=None, **overrides):
        settings = {**cluster_conf_overrides(), "cluster-node-timeout": node_timeout_ms,
                    "cluster-port": bus_port, **overrides}
        super().__init__(workdir, **settings)
        self.port = port
        self.bus_port = bus_port
        self.env = env or {}

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout=30):
        conf = self.dir / "redis.conf"
        render_config(conf, {**self.overrides, "port": self.port, "dir": self.dir,
                             "logfile": "redis.log"}, self.module_args)
        self.proc = subprocess.Popen([REDIS_SERVER, str(conf)], cwd=self.dir,
                                     env={**os.environ, **self.env},
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        if not self._wait_ready(timeout):
            self.stop()
            raise RuntimeError(f"node on port {self.port} did not start; log:\n{self.log[-3000:]}")
        return self

    def client(self, **kw):
        return no_retry_client(self.port, **kw)

    def node_id(self):
        return self.client().execute_command("CLUSTER", "MYID").decode()

    def addr(self):
        return f"127.0.0.1:{self.port}"

    def __repr__(self):
        return f"Node({self.port})"


def parse_cluster_nodes(text):
    """CLUSTER NODES -> {id: {port, flags, master, slots}}; slots as (first, last) ranges,
    migrating/importing markers left out."""
    view = {}
    for line in text.strip().splitlines():
        f = line.split()
        addr = f[1].split("@")[0]
        slots = []
        for s in f[8:]:
            if s.startswith("["):
                continue
            a, _, b = s.partition("-")
            slots.append((int(a), int(b or a)))
        view[f[0]] = {"port": int(addr.rsplit(":", 1)[1]), "flags": set(f[2].split(",")),
                      "master": None if f[3] == "-" else f[3], "slots": slots}
    return view


class Cluster:
    """`masters` shards of one master and `replicas` replicas each, formed with redis-cli."""

    def __init__(self, workdir, masters=3, replicas=1, node_timeout_ms=TEST_NODE_TIMEOUT_MS,
                 node_env=None, **overrides):
        self.dir = Path(workdir)
        self.masters_count = masters
        self.replicas_per_master = replicas
        self.node_timeout_ms = node_timeout_ms
        self.node_env = node_env or {}  # node index -> extra environment
        self.overrides = overrides
        self.nodes = []
        self._ports = set()

    # --- lifecycle -----------------------------------------------------------------------

    def _pick_port(self):
        while True:
            p = free_port()
            if p not in self._ports:
                self._ports.add(p)
                return p

    def add_node(self, env=None, **overrides):
        """Starts one more node (not yet part of the cluster)."""
        i = len(self.nodes)
        node = Node(self.dir / f"node{i}", self._pick_port(), self._pick_port(),
                    self.node_timeout_ms, env=env, **{**self.overrides, **overrides})
        self.nodes.append(node)
        return node.start()

    def start(self):
        for i in range(self.masters_count * (1 + self.replicas_per_master)):
            self.add_node(env=self.node_env.get(i))
        self.cli("--cluster", "create", *[n.addr() for n in self.nodes],
                 "--cluster-replicas", str(self.replicas_per_master), "--cluster-yes",
                 timeout=120)
        self.wait_healthy()
        return self

    def stop(self):
        for n in self.nodes:
            n.kill()  # state is thrown away with the temporary directory: no need to save

    # --- redis-cli -------------------------------------------------------------------------

    def move_slots(self, command_line, entry, timeout=300, attempts=3):
        """`redis-cli --cluster reshard|rebalance ...`, run again after `--cluster fix` when a
        slot move failed with NOREPLICAS: Valkey 8+ has a master wait for its replicas to
        acknowledge `CLUSTER SETSLOT` (2 s by default), which Debian's redis-cli 7.0 cannot
        lengthen, and on a busy machine a replica sometimes takes longer (make test-busy, Valkey
        9.1). The move itself is the tool's; what the tests check is the keys' state after it.
        `command_line()` gives each attempt's arguments (a reshard moves what is left)."""
        for attempt in range(1, attempts + 1):
            args = [str(a) for a in command_line()]
            p = subprocess.run([REDIS_CLI, *args], capture_output=True, text=True, timeout=timeout)
            if p.returncode == 0:
                return p.stdout
            if "NOREPLICAS" not in p.stdout + p.stderr or attempt == attempts:
                raise AssertionError(f"redis-cli {' '.join(args)} failed "
                                     f"({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
            self.cli("--cluster", "fix", entry.addr(), "--cluster-yes", timeout=timeout)
            self.wait_healthy()

    def cli(self, *args, timeout=60, check=True):
        p = subprocess.run([REDIS_CLI, *map(str, args)], capture_output=True, text=True,
                           timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"redis-cli {' '.join(map(str, args))} failed "
                                 f"({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
        return p.stdout

    # --- topology --------------------------------------------------------------------------

    def live(self):
        return [n for n in self.nodes if n.running]

    def by_port(self, port):
        return next(n for n in self.nodes if n.port == port)

    def view(self, node=None):
        """The cluster as `node` (default: the first live node) sees it."""
        node = node or self.live()[0]
        return parse_cluster_nodes(node.client().execute_command("CLUSTER", "NODES").decode())

    def masters(self):
        """Live masters that own slots, in port order."""
        view = self.view()
        return sorted((self.by_port(v["port"]) for v in view.values()
                       if "master" in v["flags"] and v["slots"] and "fail" not in v["flags"]),
                      key=lambda n: n.port)

    def replicas_of(self, master):
        view = self.view()
        mid = next(i for i, v in view.items() if v["port"] == master.port)
        return [self.by_port(v["port"]) for v in view.values() if v["master"] == mid]

    def slot_owners(self, node=None):
        """A list of SLOTS ports: the master that serves each slot according to `node`
        (None: nobody)."""
        owners = [None] * SLOTS
        for v in self.view(node).values():
            if "master" in v["flags"]:
                for a, b in v["slots"]:
                    owners[a:b + 1] = [v["port"]] * (b - a + 1)
        return owners

    @staticmethod
    def slot_of(key):
        return key_slot(key.encode() if isinstance(key, str) else key)

    def owner(self, key):
        return self.by_port(self.slot_owners()[self.slot_of(key)])

    def spread_keys(self, per_master, prefix):
        """{master: [keys]}: `per_master` keys on every master, so clients cover every shard."""
        owners = self.slot_owners()
        out = {m: [] for m in self.masters()}
        i = 0
        while any(len(ks) < per_master for ks in out.values()):
            key = f"{prefix}:{i}"
            m = self.by_port(owners[key_slot(key.encode())])
            if len(out[m]) < per_master:
                out[m].append(key)
            i += 1
        return out

    # --- health ----------------------------------------------------------------------------

    def _healthy(self):
        try:
            slot_map = roles = None
            for n in self.live():
                c = n.client()
                info = c.execute_command("CLUSTER", "INFO").decode()
                fields = dict(line.split(":", 1) for line in info.split() if ":" in line)
                if fields["cluster_state"] != "ok" or fields["cluster_slots_ok"] != str(SLOTS):
                    return False
                if int(fields["cluster_known_nodes"]) != len(self.nodes):
                    return False
                repl = c.info("replication")
                if repl["role"] == "slave" and (repl["master_link_status"] != "up"
                                                or repl["master_sync_in_progress"]):
                    return False
                # Every node must also know who replicates whom (gossip carries it after
                # the replica has already synced): tests pick failover candidates from it.
                view = self.view(n)
                node_roles = {i: v["master"] for i, v in view.items() if "fail" not in v["flags"]}
                owners = self.slot_owners(n)
                if slot_map is None:
                    slot_map, roles = owners, node_roles
                elif owners != slot_map or node_roles != roles:
                    return False
            return True
        except (redis.RedisError, KeyError, StopIteration):
            return False

    def wait_healthy(self, timeout=60):
        """Every live node: state ok, all slots served, replicas in sync, and the same slot
        map and replica relations in every node's view."""
        wait_until(self._healthy, timeout, "the cluster to be healthy and in agreement", 0.1)

    def wait_failover(self, dead, candidates, timeout=60, interval=0.02):
        """After the master `dead` was killed: waits until one of `candidates` (its replicas,
        taken before the kill) is a master and every live node maps all of `dead`'s former
        slots to a live master; returns the promoted node."""
        assert candidates, f"{dead} had no replica to promote"

        def promoted():
            try:
                for r in candidates:
                    if not r.running or r.client().info("replication")["role"] != "master":
                        continue
                    for n in self.live():
                        owners = self.slot_owners(n)
                        if dead.port in owners or None in owners:
                            return None
                    return r
            except redis.RedisError:
                return None
            return None

        return wait_until(promoted, timeout, f"a replica of {dead} to take over its slots", interval)

    # --- clients ---------------------------------------------------------------------------

    def client(self, **kw):
        """redis-py's RedisCluster, started from every live node; RESP2 unless `protocol` is
        given, and no retries (a retried RL.ALLOW would count twice)."""
        kw.setdefault("socket_timeout", 10)
        kw.setdefault("socket_connect_timeout", 2)
        kw.setdefault("protocol", 2)
        return RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", n.port) for n in self.live()],
                            retry=Retry(NoBackoff(), 0), **kw)
