"""`make cluster` works: scripts/cluster.sh (what `make cluster`, `cluster-status` and
`cluster-stop` run) starts a 3-master, 3-replica cluster with the module, serves RL.* through
redis-cli -c, stops, and comes back from its files with the same state; `clean` removes it.

It runs on free ports and in a temporary directory (CLUSTER_DIR), with the module under test
(RL_MODULE), so it never touches a developer's own .cluster/.
"""

import os
import random
import signal
import socket
import subprocess

import pytest

from cluster_harness import ROOT
from helpers import HOUR
from server import MODULE

NODES = 6


def free_base():
    """A base port p with p..p+5 and their bus ports p+10000.. all free on 127.0.0.1, below
    Linux's ephemeral range (32768 up), where a client's socket could take one meanwhile."""
    for _ in range(100):
        base = random.randrange(20000, 32768 - 10000 - NODES)
        try:
            socks = []
            for p in [*range(base, base + NODES), *range(base + 10000, base + 10000 + NODES)]:
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range")


@pytest.fixture
def script(tmp_path):
    env = {**os.environ, "CLUSTER_DIR": str(tmp_path / "cluster"), "PORT": str(free_base()),
           "MASTERS": "3", "REPLICAS": "1", "NODE_TIMEOUT": "2000", "RL_MODULE": str(MODULE)}

    def run(*args):
        p = subprocess.run([str(ROOT / "scripts" / "cluster.sh"), *args], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=180)
        assert p.returncode == 0, p.stdout + p.stderr
        return p.stdout

    run.port = int(env["PORT"])
    yield run
    subprocess.run([str(ROOT / "scripts" / "cluster.sh"), "clean"], env=env, timeout=120,
                   capture_output=True)
    for pidfile in (tmp_path / "cluster").glob("*/redis.pid"):  # if clean itself failed
        try:
            os.kill(int(pidfile.read_text()), signal.SIGKILL)
        except (OSError, ValueError):
            pass


def cli(port, *args):
    return subprocess.run(["redis-cli", "-c", "-p", str(port), *map(str, args)], capture_output=True,
                          text=True, timeout=30, check=True).stdout.strip()


def test_cluster_script_starts_serves_stops_and_restarts(script):
    port = script.port
    out = script("start")
    assert f"redis-cli -c -p {port}" in out
    status = script("status")
    assert "cluster_state:ok" in status
    assert status.count(": running") == NODES
    assert "[OK] All 16384 slots covered." in status
    assert cli(port, "CONFIG", "GET", "cluster-node-timeout").split() == ["cluster-node-timeout", "2000"]
    assert cli(port, "CONFIG", "GET", "cluster-require-full-coverage").split()[-1] == "no"

    keys = [f"script:{i}" for i in range(12)]  # spread over the three masters
    for k in keys:
        assert cli(port, "RL.CONFIG", k, 3, HOUR) == "OK"
        assert [cli(port + 5, "RL.ALLOW", k) for _ in range(2)] == ["1", "1"]

    assert "stopped node" in script("stop")
    assert script("status").count(": stopped") == NODES
    out = script("start")
    assert "already formed" in out
    # Back from its AOF: each client has exactly one request left.
    for k in keys:
        assert [cli(port, "RL.ALLOW", k) for _ in range(2)] == ["1", "0"], k
