"""Issue 20's integration tests through the Python client: 50 concurrent workers on a limit
of 2 (a probe never sees more than 2 live leases, and no more than 2 workers are ever inside
at once), and workers SIGKILLed while holding leases (their slots come back when the leases
expire, not before, and without anyone's help). On the Lua path, and on the module path when
RL_MODULE names a module with RL.ACQUIRE."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from uuid import uuid4

import pytest

from conftest import plain_client
from distributed_rate_limiter import DistributedRateLimiter
from test_ops import module_has

PACKAGE = Path(__file__).resolve().parents[1]
WORKERS, LIMIT = 50, 2


@pytest.fixture
def lease_server(server):
    if server.path == "redis" and not module_has(server.port, 20):
        pytest.skip("this module lacks RL.ACQUIRE (issue 20)")
    return server


def test_50_concurrent_workers_on_a_limit_of_2_never_exceed_it(lease_server):
    prefix = f"w50:{uuid4().hex}:"
    rl = DistributedRateLimiter(plain_client(lease_server.port, max_connections=60), timeout_ms=5000, prefix=prefix)
    rl.configure_rate_limit("job", LIMIT, 30_000, kind="concurrency")
    probe = DistributedRateLimiter(plain_client(lease_server.port), timeout_ms=5000, prefix=prefix)
    inside, most, done, errors = [0], [0], threading.Event(), []
    lock = threading.Lock()
    seen = []

    def worker():
        try:
            for _ in range(4):
                while True:
                    with rl.lease("job") as d:
                        if d.allowed:
                            with lock:
                                inside[0] += 1
                                most[0] = max(most[0], inside[0])
                            time.sleep(0.002)
                            with lock:
                                inside[0] -= 1
                            break
                    time.sleep(0.001)
        except Exception as e:  # reported below: a worker must not die quietly
            errors.append(e)

    def watch():
        while not done.is_set():
            seen.append((probe.info("job") or {}).get("leases", 0))

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    watcher = threading.Thread(target=watch)
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    done.set()
    watcher.join(10)
    assert errors == [] and not any(t.is_alive() for t in threads)
    assert most[0] == LIMIT and max(seen) <= LIMIT and len(seen) > 10
    assert probe.info("job")["leases"] == 0  # every lease given back


WORKER = """
import sys, time
sys.path.insert(0, {package!r})
from distributed_rate_limiter import DistributedRateLimiter
rl = DistributedRateLimiter("redis://127.0.0.1:{port}", prefix={prefix!r}, timeout_ms=5000)
d = rl.acquire("job")
print(d.allowed, d.lease, time.time(), flush=True)
time.sleep(3600)
"""


def test_workers_killed_while_holding_leases_give_their_slots_back_when_the_leases_expire(lease_server):
    lease_ms = 1500
    prefix = f"kill:{uuid4().hex}:"
    rl = DistributedRateLimiter(plain_client(lease_server.port), timeout_ms=5000, prefix=prefix)
    rl.configure_rate_limit("job", LIMIT, lease_ms, kind="concurrency")
    procs, took = [], []
    try:
        for _ in range(LIMIT):
            p = subprocess.Popen([sys.executable, "-c", WORKER.format(package=str(PACKAGE), port=lease_server.port,
                                                                      prefix=prefix)],
                                 stdout=subprocess.PIPE, text=True)
            procs.append(p)
            allowed, lease, at = p.stdout.readline().split()
            assert allowed == "True" and lease.isdigit()
            took.append(float(at))
        for p in procs:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(10)
        denied = rl.acquire("job")
        assert not denied.allowed and 0 < denied.retry_after_ms <= lease_ms
        while True:
            d = rl.acquire("job")
            if d.allowed:
                back = time.time()
                break
            time.sleep(0.01)
            assert time.time() < max(took) + lease_ms / 1000 + 10, "the dead workers' slots never came back"
        # Not before the first dead worker's lease expired (its acquire returned at took[0],
        # so the server took it no later; 50 ms of clock reading slack).
        assert back >= took[0] + lease_ms / 1000 - 0.05
        assert rl.release("job", d.lease)
        while rl.info("job")["leases"]:  # the second dead worker's lease, a little later
            assert time.time() < max(took) + lease_ms / 1000 + 10
            time.sleep(0.01)
        assert [rl.acquire("job").allowed for _ in range(LIMIT + 1)] == [True] * LIMIT + [False]
    finally:
        for p in procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(10)
