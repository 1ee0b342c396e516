"""The throwaway redis-server of a benchmark run, and how redis-benchmark is called on it.

The server starts from the project's redis.conf, rendered by the test harness
(tests/server.py), with persistence off: the figures are the in-memory cost of a check, the
same for every candidate (AOF would add the same write(2) per write command to all of them).
Where the machine has two cores or more, the server is pinned to core 0 and the load
generator to core 1, so that they do not take turns on one core.
"""

import importlib.util
import os
import re
import subprocess
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent


def _test_harness():
    """tests/server.py, the one place that renders redis.conf for a throwaway server; it
    reads the module's path from RL_MODULE when imported."""
    spec = importlib.util.spec_from_file_location("rl_test_server", ROOT / "tests" / "server.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_tests = _test_harness()
free_port, render_config = _tests.free_port, _tests.render_config

PINNED = len(os.sched_getaffinity(0)) >= 2
SERVER_CPU = ["taskset", "-c", "0"] if PINNED else []
CLIENT_CPU = ["taskset", "-c", "1"] if PINNED else []


class BenchServer:
    """One pinned redis-server with the module, in `workdir`, stopped by PID."""

    def __init__(self, workdir, pin=True, binary="redis-server", **overrides):
        self.dir = Path(workdir)
        self.binary = binary  # redis-server, or valkey-server (bench/servers.py)
        self.cpu = SERVER_CPU if pin else []
        self.dir.mkdir(parents=True, exist_ok=True)
        self.overrides = {
            "bind": "127.0.0.1",
            "daemonize": "no",
            "appendonly": "no",
            "save": '""',
            **overrides,
        }
        self.port = None
        self.proc = None

    def start(self):
        self.port = self.port or free_port()
        conf = self.dir / "redis.conf"
        render_config(conf, {**self.overrides, "port": self.port, "dir": self.dir,
                             "logfile": "redis.log"})
        self.proc = subprocess.Popen([*self.cpu, self.binary, str(conf)], cwd=self.dir,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return self
            except redis.ConnectionError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not start: see {self.dir / 'redis.log'}")

    def client(self):
        return redis.Redis(host="127.0.0.1", port=self.port, protocol=2, socket_timeout=120)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def benchmark(port, command, *, requests, keyspace, pipeline, clients=50, cluster=False,
              pin=True):
    """Runs redis-benchmark (one thread) and returns requests/s and latency percentiles (ms).

    `keyspace` is redis-benchmark's -r: __rand_int__ becomes a 12-digit number below it.
    """
    argv = [*(CLIENT_CPU if pin else []), "redis-benchmark", "-h", "127.0.0.1", "-p", str(port),
            "-c", str(clients), "-n", str(requests), "-r", str(keyspace), "-P", str(pipeline)]
    if cluster:
        # --cluster would start one thread per master: the load generator stays one thread.
        argv += ["--cluster", "--threads", "1"]
    out = subprocess.run([*argv, *command], capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"redis-benchmark failed: {out.stderr[-2000:]}")
    return parse_benchmark(out.stdout.replace("\r", "\n"))


def parse_benchmark(text):
    """Requests/s, and p50/p99/p99.9 in ms from the HDR percentile distribution.

    redis-benchmark prints the distribution at halving steps (50, 75, ..., 99.902%, ...): the
    value at the first step at or above 99.9% is p99.9 at the histogram's resolution.
    """
    rps = re.search(r"throughput summary: ([\d.]+) requests per second", text)
    if rps is None:
        raise RuntimeError(f"no throughput in redis-benchmark output: {text[-1500:]}")
    dist = text.split("Latency by percentile distribution:")[-1].split("Cumulative")[0]
    steps = [(float(p), float(v)) for p, v in
             re.findall(r"^\s*([\d.]+)% <= ([\d.]+) milliseconds", dist, re.M)]

    def at(pct):
        return next((v for p, v in steps if p >= pct), steps[-1][1] if steps else None)

    return {"rps": float(rps.group(1)), "p50_ms": at(50.0), "p99_ms": at(99.0),
            "p999_ms": at(99.9)}


def usec_per_call(client, stat):
    """Server-side µs per call of one command, from INFO commandstats (since RESETSTAT)."""
    entry = client.info("commandstats").get(f"cmdstat_{stat}")
    return None if entry is None else float(entry["usec_per_call"])
