"""Issue 18, items 4, 8 and 9: overload is not an outage, every refusal to write takes the
failure policy, and the local limiter keeps its state across outages."""

import asyncio
import os
import shutil
import socket
import tempfile
import threading
import time
from uuid import uuid4

import pytest
import redis.asyncio

from conftest import plain_client
from distributed_rate_limiter import AsyncDistributedRateLimiter, DistributedRateLimiter

CONCURRENT, LIMIT = 500, 10
# The calls wait for a pooled connection within their timeout; 5 s is far more than 500
# calls need even on a busy machine, and the point is that waiting is not a failure.
PATIENT_MS = 5000


def test_item4_asyncio_500_concurrent_checks_limit_10_admit_exactly_10(server):
    async def main():
        client = redis.asyncio.Redis(host="127.0.0.1", port=server.port)  # redis.asyncio's pool: 100
        rl = AsyncDistributedRateLimiter(client, timeout_ms=PATIENT_MS, prefix=f"c4:{uuid4().hex}:")
        results = await asyncio.gather(*[rl.is_allowed("k", limit=LIMIT, window_ms=60_000)
                                         for _ in range(CONCURRENT)])
        await client.aclose()
        return results, rl.stats()

    results, stats = asyncio.run(main())
    assert sum(results) == LIMIT, stats
    assert stats["state"] == "closed" and stats["errors"] == 0 and stats["local"] == 0


def test_item4_sync_500_threads_limit_10_admit_exactly_10(server):
    rl = DistributedRateLimiter(plain_client(server.port, max_connections=50), timeout_ms=PATIENT_MS,
                                prefix=f"c4s:{uuid4().hex}:")
    start = threading.Barrier(CONCURRENT)
    results = []

    def worker():
        start.wait()
        results.append(rl.is_allowed("k", limit=LIMIT, window_ms=60_000))

    threads = [threading.Thread(target=worker) for _ in range(CONCURRENT)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = rl.stats()
    assert (len(results), sum(results)) == (CONCURRENT, LIMIT), stats
    assert stats["state"] == "closed" and stats["errors"] == 0 and stats["local"] == 0


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def refuse_writes(r, how, server):
    """Makes the server refuse writes the way `how` names; returns how to undo it."""
    if how == "NOREPLICAS":
        r.config_set("min-replicas-to-write", 1)
        return lambda: r.config_set("min-replicas-to-write", 0)
    if how == "READONLY":
        r.replicaof("127.0.0.1", closed_port())
        return lambda: r.replicaof("NO", "ONE")
    if how == "OOM":
        r.config_set("maxmemory", 1)
        return lambda: r.config_set("maxmemory", 0)
    # MISCONF: a background save that fails (its directory is gone) stops writes.
    gone = tempfile.mkdtemp()
    r.config_set("dir", gone)
    shutil.rmtree(gone)
    r.bgsave()
    deadline = time.monotonic() + 10
    while r.info("persistence")["rdb_last_bgsave_status"] != "err":
        assert time.monotonic() < deadline
        time.sleep(0.02)

    def undo():
        os.makedirs(gone)
        r.config_set("dir", str(server.dir))
        r.bgsave()
        while r.info("persistence")["rdb_last_bgsave_status"] != "ok":
            time.sleep(0.02)
    return undo


@pytest.mark.parametrize("module", [True, False], ids=["module", "lua"])
@pytest.mark.parametrize("how", ["MISCONF", "NOREPLICAS", "READONLY", "OOM"])
def test_item8_every_refusal_to_write_takes_the_failure_policy(make_server, module, how):
    from distributed_rate_limiter import Unavailable
    server = make_server(module=module, extra=["--enable-protected-configs", "yes", "--save", "3600 1"])
    r = plain_client(server.port)
    rl = DistributedRateLimiter(plain_client(server.port), timeout_ms=2000, breaker_cooldown_ms=100,
                                local_share=0.5)
    rl.configure_rate_limit("u", 4, 60_000)
    assert rl.throttle("u").path == ("redis" if module else "lua")
    undo = refuse_writes(r, how, server)
    decisions = [rl.throttle("u") for _ in range(4)]  # never an exception
    assert {d.path for d in decisions} == {"local"}
    assert [d.allowed for d in decisions] == [True, True, False, False]  # half of 4, locally
    assert rl.stats()["errors"] >= 1 and rl.stats()["state"] in ("open", "half_open")
    with pytest.raises(Unavailable):
        rl.configure_rate_limit("u", 4, 60_000)  # no fallback for configuration
    undo()
    deadline = time.monotonic() + 10
    while rl.throttle("u").path == "local":
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_item9_the_local_limiter_keeps_its_state_across_outages(make_server):
    """Limit 5 per 10 minutes, two outages: local admits 5 in all, not 5 per outage."""
    server = make_server(module=True)
    rl = DistributedRateLimiter(plain_client(server.port), timeout_ms=200, breaker_failures=1,
                                breaker_cooldown_ms=50)
    rl.configure_rate_limit("u", 5, 600_000)
    admitted = 0
    for outage in range(2):
        server.kill()
        admitted += sum(rl.is_allowed("u") for _ in range(8))
        server.restart()
        deadline = time.monotonic() + 10
        while rl.throttle("u", cost=1000).path != "redis":  # heavier than the limit: counts nothing
            assert time.monotonic() < deadline
            time.sleep(0.02)
    assert admitted == 5


def test_a_burst_that_meets_noscript_loads_the_script_once(make_server):
    """500 concurrent checks on a server that lost its scripts: one SCRIPT LOAD, not 500
    copies of the 24 KB source, and exactly the limit admitted."""
    server = make_server(module=False)

    async def main():
        client = redis.asyncio.Redis(host="127.0.0.1", port=server.port)
        rl = AsyncDistributedRateLimiter(client, timeout_ms=PATIENT_MS)
        await rl.is_allowed("warm", limit=1, window_ms=1000)
        await client.script_flush()
        await client.config_resetstat()
        results = await asyncio.gather(*[rl.is_allowed("k", limit=LIMIT, window_ms=60_000)
                                         for _ in range(CONCURRENT)])
        stats = await client.info("commandstats")
        await client.aclose()
        return results, stats

    results, stats = asyncio.run(main())
    assert sum(results) == LIMIT
    assert stats["cmdstat_script|load"]["calls"] <= 2 and "cmdstat_eval" not in stats
