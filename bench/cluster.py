"""Aggregate checks per second of a local Redis Cluster of 1, 2 and 3 masters.

Each node is a benchmark server (bench/harness.py: redis.conf, persistence off, the
candidates' default policy) with cluster mode on, formed here with CLUSTER MEET and
ADDSLOTSRANGE (16384 slots split evenly). The project's scripts/cluster.sh is not used:
it forms clusters with `redis-cli --cluster create`, which refuses fewer than 3 masters.
redis-benchmark --cluster (one thread: --threads 1) spreads its 50 connections over the masters and puts each key in a
slot of its connection's master (`{tag}` in the key name). It refuses a 1-node cluster, which
is benchmarked as a plain server (there `{tag}` stays as is: every key in slot of "tag", on the
one master that holds all slots).

Neither the nodes nor the load generator are pinned: on a 2-core machine, N masters and the
load generator share those 2 cores, so capacity cannot grow past about 2 cores' worth
whatever N is. The figure shows the scaling a cluster gets on this machine, not on one core
per master.
"""

import time
from pathlib import Path

from candidates import SERVER_CONFIG, WINDOW_MS
from harness import BenchServer, benchmark, free_port

SLOTS = 16384
# {tag} becomes a 5-byte hash tag of the connection's master: rl:{06S}:000000012345.
COMMANDS = {
    "rl_default": ["RL.ALLOW", "rl:{tag}:__rand_int__"],
    "set_px": ["SET", "rl:{tag}:__rand_int__", "1700000000000", "PX", str(WINDOW_MS)],
}


def start_cluster(workdir, masters):
    """Starts `masters` cluster nodes and assigns them every slot; returns the servers."""
    nodes = []
    try:
        for i in range(masters):
            # The bus port is set explicitly: port + 10000 may be past 65535.
            nodes.append(BenchServer(Path(workdir) / str(i), pin=False, **SERVER_CONFIG,
                                     **{"cluster-enabled": "yes",
                                        "cluster-config-file": "nodes.conf",
                                        "cluster-port": free_port()}).start())
        first = nodes[0].client()
        for n in nodes[1:]:
            first.execute_command("CLUSTER", "MEET", "127.0.0.1", n.port,
                                  n.overrides["cluster-port"])
        for i, n in enumerate(nodes):
            lo, hi = SLOTS * i // masters, SLOTS * (i + 1) // masters - 1
            n.client().execute_command("CLUSTER", "ADDSLOTSRANGE", lo, hi)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            infos = [n.client().execute_command("CLUSTER", "INFO") for n in nodes]
            if all(b"cluster_state:ok" in i and f"cluster_known_nodes:{masters}".encode() in i
                   for i in infos):
                return nodes
            time.sleep(0.1)
        raise RuntimeError("the benchmark cluster did not reach cluster_state:ok")
    except BaseException:
        for n in nodes:
            n.stop()
        raise


def measure(masters_list, workdir, *, requests, keyspace, repeats, log=print):
    """[{masters, cand, rep, rps}]: -P 16, 50 connections, keys over `keyspace` clients."""
    rows = []
    for masters in masters_list:
        nodes = start_cluster(Path(workdir) / f"cluster{masters}", masters)
        try:
            for rep in range(repeats):
                for cand, command in COMMANDS.items():
                    for n in nodes:
                        n.client().flushall()
                    # Timed here: redis-benchmark's own figure in cluster mode moves in steps
                    # of its 250 ms progress timer, a quarter of a one-second run.
                    start = time.monotonic()
                    benchmark(nodes[0].port, command, requests=requests, keyspace=keyspace,
                              pipeline=16, cluster=masters > 1, pin=False)
                    rps = requests / (time.monotonic() - start)
                    rows.append({"masters": masters, "cand": cand, "rep": rep, "rps": rps})
                    log(f"cluster masters={masters} {cand:10} rep {rep}: {rps:.0f} req/s")
        finally:
            for n in nodes:
                n.stop()
    return rows
