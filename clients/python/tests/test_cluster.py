"""A real 3-master, 3-replica cluster (tests/cluster/cluster_harness.py, with the module):
every check goes straight to the key's owner (per-node INFO commandstats and errorstats: no
MOVED, nothing on other nodes), with redis-py's RedisCluster and its asyncio twin over RESP2
and RESP3; and a master's failover under each on_error."""

import asyncio
import sys
import time
from pathlib import Path

import pytest
import redis.asyncio.cluster
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "cluster"))
from cluster_harness import Cluster  # noqa: E402

from distributed_rate_limiter import AsyncDistributedRateLimiter, DistributedRateLimiter  # noqa: E402

PER_MASTER = 5
CALLS = 4


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield c.start()
    finally:
        c.stop()


def sync_client(cluster, protocol):
    return RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", n.port) for n in cluster.live()],
                        protocol=protocol, retry=Retry(NoBackoff(), 0), socket_timeout=5)


# The keys here are chosen per master, so no prefix; and every call must reach Redis (the
# counts below are per-node commandstats), so no deny cache.
EXACT = {"prefix": "", "deny_cache_max_ms": 0}


def async_client(cluster, protocol):
    nodes = [redis.asyncio.cluster.ClusterNode("127.0.0.1", n.port) for n in cluster.live()]
    return redis.asyncio.RedisCluster(startup_nodes=nodes, protocol=protocol, socket_timeout=5)


def node_stats(node):
    c = node.client()
    cmd = c.info("commandstats")
    err = c.info("errorstats")
    rl = {k[len("cmdstat_"):]: v for k, v in cmd.items() if k.startswith("cmdstat_rl.")}
    return rl, err


def reset_stats(cluster):
    for n in cluster.live():
        n.client().config_resetstat()


def calls_by_node(cluster):
    out = {}
    for m in cluster.masters():
        rl, err = node_stats(m)
        out[m] = (sum(v["calls"] for v in rl.values()),
                  sum(v.get("rejected_calls", 0) + v.get("failed_calls", 0) for v in rl.values()),
                  err.get("errorstat_MOVED", {}).get("count", 0) + err.get("errorstat_ASK", {}).get("count", 0))
    return out


def promoted(cluster, key, replicas, timeout=10):
    """True once the promoted replica's own view says it (one of `replicas`) serves `key`:
    asked of a replica, never of the old master, which may be frozen, and polled, since
    a check may reach the new owner before this node's view has caught up."""
    ports = {r.port for r in replicas}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for r in replicas:
            try:
                if cluster.slot_owners(r)[cluster.slot_of(key)] in ports:
                    return True
            except redis.exceptions.RedisError:
                pass
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_every_call_goes_straight_to_the_owner(cluster, flavour, protocol):
    keys = cluster.spread_keys(PER_MASTER, f"{flavour}{protocol}")
    reset_stats(cluster)

    def run(rl_call):
        for master, ks in keys.items():
            for k in ks:
                rl_call("configure_rate_limit", k, 3, 60_000)
                got = [rl_call("is_allowed", k) for _ in range(CALLS)]
                assert got == [True, True, True, False]
                d = rl_call("throttle", k)
                assert (d.allowed, d.limit, d.path) == (False, 3, "redis")
                assert rl_call("peek", k).remaining == 0
                assert rl_call("info", k)["limit"] == 3
                assert rl_call("reset", k) > 0

    if flavour == "sync":
        rl = DistributedRateLimiter(sync_client(cluster, protocol), timeout_ms=2000, **EXACT)
        run(lambda name, *a: getattr(rl, name)(*a))
    else:
        async def main():
            rl = AsyncDistributedRateLimiter(async_client(cluster, protocol), timeout_ms=2000, **EXACT)
            loop_calls = []
            for master, ks in keys.items():
                for k in ks:
                    await rl.configure_rate_limit(k, 3, 60_000)
                    loop_calls.append([await rl.is_allowed(k) for _ in range(CALLS)])
                    d = await rl.throttle(k)
                    assert (d.allowed, d.limit, d.path) == (False, 3, "redis")
                    assert (await rl.peek(k)).remaining == 0
                    assert (await rl.info(k))["limit"] == 3
                    assert await rl.reset(k) > 0
            await rl.client.aclose()
            return loop_calls

        assert all(c == [True, True, True, False] for c in asyncio.run(main()))

    per_key = 1 + CALLS + 1 + 1 + 1 + 1  # config, allows, throttle, peek, info, reset
    by_node = calls_by_node(cluster)
    for master, (calls, rejected, redirects) in by_node.items():
        assert (calls - rejected, redirects) == (PER_MASTER * per_key, 0), master
    # At most one refusal in all: a module older than WITHPOLICY refuses the first check
    # that asks for it, and the limiter stops asking (none once the module has it).
    assert sum(rejected for _, rejected, _ in by_node.values()) <= 1


def test_a_redirect_would_show_in_these_stats(cluster):
    """Control for the assertion above: a call sent to the wrong master is counted."""
    key = "control"
    other = next(m for m in cluster.masters() if m != cluster.owner(key))
    reset_stats(cluster)
    with pytest.raises(redis.exceptions.ResponseError):  # MovedError in redis-py 6+
        other.client().execute_command("RL.ALLOW", key, "LIMIT", 1, "WINDOW", 1000)
    assert calls_by_node(cluster)[other][2] == 1


@pytest.mark.parametrize("on_error, fault", [("allow", "kill"), ("deny", "kill"), ("local", "kill"),
                                             ("local", "stop")])
def test_failover_of_the_keys_master(tmp_path, on_error, fault):
    """The owner of a key is killed (or frozen): checks stay bounded and follow on_error while
    the replica takes over (node timeout 1 s), then go back to Redis on the promoted node."""
    import signal
    cluster, master = Cluster(tmp_path / "c"), None
    try:
        cluster.start()
        key = "failover-user"
        events = []
        rl = DistributedRateLimiter(sync_client(cluster, 2), on_error=on_error, timeout_ms=50, prefix="",
                                    breaker_failures=3, breaker_cooldown_ms=200, local_share=0.5,
                                    on_state_change=events.append)
        rl.configure_rate_limit(key, 1000, 60_000)
        master = cluster.owner(key)
        replicas = cluster.replicas_of(master)
        assert rl.throttle(key).path == "redis"
        master.kill() if fault == "kill" else master.proc.send_signal(signal.SIGSTOP)
        longest, paths, admitted, checks = 0.0, set(), 0, 0
        t_kill = time.monotonic()
        while time.monotonic() - t_kill < 30:
            t0 = time.monotonic()
            d = rl.throttle(key, limit=1000, window_ms=60_000)
            longest = max(longest, time.monotonic() - t0)
            if d.path == "redis":
                break
            paths.add(d.path)
            admitted += d.allowed
            checks += 1
            time.sleep(0.01)
        else:
            raise AssertionError(f"never back to Redis; stats {rl.stats()}")
        recovered_after = time.monotonic() - t_kill
        print(f"failover[{on_error}-{fault}]: back to redis after {recovered_after:.2f} s, {checks} checks "
              f"during it, longest {longest * 1000:.0f} ms")
        assert promoted(cluster, key, replicas)
        assert longest <= 0.05 + 0.5
        assert paths == {"allow": {"failed_open"}, "deny": {"failed_closed"}, "local": {"local"}}[on_error]
        assert admitted == {"allow": checks, "deny": 0, "local": min(checks, 500)}[on_error]
        assert events[:1] == ["degraded"] and events[-1] == "recovered"
    finally:
        if fault == "stop" and master is not None and master.proc is not None:
            master.proc.send_signal(signal.SIGCONT)
        cluster.stop()


def test_lua_path_goes_straight_to_the_owner_and_loads_the_script_on_each_node(cluster):
    """The fallback's routing, on this cluster (the path is forced: its nodes have the
    module): EVALSHA to the owner, NOSCRIPT answered by SCRIPT LOAD on that node."""
    keys = cluster.spread_keys(3, "lua")
    for n in cluster.live():
        n.client().script_flush()
    reset_stats(cluster)
    rl = DistributedRateLimiter(sync_client(cluster, 3), timeout_ms=2000, **EXACT)
    rl._engine.backend = "lua"
    for ks in keys.values():
        for k in ks:
            rl.configure_rate_limit(k, 2, 60_000)
            assert [rl.throttle(k).allowed for _ in range(3)] == [True, True, False]
    assert rl.stats()["lua"] == 9 * 3 and rl.stats()["backend"] == "lua"
    for master in cluster.masters():
        c = master.client()
        cmd, err = c.info("commandstats"), c.info("errorstats")
        evalsha = cmd["cmdstat_evalsha"]
        assert (evalsha["calls"], evalsha.get("failed_calls", 0)) == (3 * 4 + 1, 1)  # 4 per key + one NOSCRIPT
        assert cmd["cmdstat_script|load"]["calls"] == 1 and "cmdstat_eval" not in cmd
        assert "errorstat_MOVED" not in err and "errorstat_ASK" not in err


@pytest.mark.parametrize("fault", ["kill", "stop"])
def test_asyncio_cluster_failover_with_the_local_policy(tmp_path, fault):
    """The asyncio cluster client through a failover; 'stop' freezes the master (SIGSTOP):
    every check then waits for the timeout until the breaker opens."""
    import signal
    cluster, master = Cluster(tmp_path / "c"), None
    try:
        cluster.start()
        key = "async-failover-user"
        master = cluster.owner(key)
        replicas = cluster.replicas_of(master)

        async def main():
            rl = AsyncDistributedRateLimiter(async_client(cluster, 2), timeout_ms=50, prefix="", breaker_failures=3,
                                             breaker_cooldown_ms=200, local_share=0.5)
            await rl.configure_rate_limit(key, 20, 60_000)
            assert (await rl.throttle(key)).path == "redis"
            master.kill() if fault == "kill" else master.proc.send_signal(signal.SIGSTOP)
            longest, paths, admitted, checks = 0.0, set(), 0, 0
            t_kill = time.monotonic()
            while time.monotonic() - t_kill < 30:
                t0 = time.monotonic()
                d = await rl.throttle(key, limit=20, window_ms=60_000)
                longest = max(longest, time.monotonic() - t0)
                if d.path == "redis":
                    break
                paths.add(d.path)
                admitted += d.allowed
                checks += 1
                await asyncio.sleep(0.01)
            else:
                raise AssertionError(f"never back to Redis: {rl.stats()}")
            await rl.client.aclose()
            return checks, admitted, paths, longest, time.monotonic() - t_kill

        checks, admitted, paths, longest, back = asyncio.run(main())
        print(f"async failover[{fault}]: back to redis after {back:.2f} s, {checks} checks, "
              f"longest {longest * 1000:.0f} ms, {admitted} admitted locally")
        assert promoted(cluster, key, replicas)
        # The local share of 20 per minute is 10 per minute: a burst of 10, then one per 6 s.
        assert paths == {"local"} and admitted <= 10 + int(back * 1000) // 6000
        assert longest <= 0.05 + 0.5
    finally:
        if fault == "stop" and master is not None and master.proc is not None:
            master.proc.send_signal(signal.SIGCONT)
        cluster.stop()
