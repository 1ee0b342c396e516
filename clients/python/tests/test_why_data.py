"""Issue 18, items 3, 5 and 6: policies that survive Redis losing data, a Lua fallback that
never touches a key it did not create, and keys that keep working when the module appears
or goes away."""

import time
from uuid import uuid4

import pytest

from conftest import plain_client
from distributed_rate_limiter import DistributedRateLimiter


def limiter(port, **kw):
    return DistributedRateLimiter(plain_client(port), timeout_ms=2000, **kw)


def test_item3_a_flushall_does_not_lose_this_limiters_policy(server):
    rl = limiter(server.port, prefix=f"p3:{uuid4().hex}:")
    rl.configure_rate_limit("u", 2, 60_000)
    assert rl.is_allowed("u")
    plain_client(server.port).flushall()
    got = [rl.is_allowed("u") for _ in range(3)]  # no NoRateLimit reaches the app
    assert got == [True, True, False]
    assert rl.stats()["reconfigured"] == 1
    assert rl.info("u")["limit"] == 2


def test_item3_inline_callers_are_reconfigured_too_and_an_operators_policy_still_wins(server):
    rl = limiter(server.port, prefix=f"p3i:{uuid4().hex}:")
    rl.configure_rate_limit("u", 1, 60_000)
    plain_client(server.port).flushall()
    # The app passes a looser inline policy on every call: the policy it configured holds.
    assert [rl.is_allowed("u", limit=100, window_ms=60_000) for _ in range(2)] == [True, False]
    operator = limiter(server.port, prefix=rl._engine.prefix.decode())
    # Stored by someone else: it wins, and is not re-configured. (Usage is kept as time: the
    # minute owed is half of this bucket, so 3 of 6 are left.)
    operator.configure_rate_limit("u", 6, 120_000)
    assert [rl.is_allowed("u") for _ in range(4)] == [True, True, True, False]
    assert rl.stats()["reconfigured"] == 1


def test_item3_a_restart_without_persistence_does_not_lose_it(make_server):
    server = make_server(module=True)
    rl = limiter(server.port, breaker_cooldown_ms=50)
    rl.configure_rate_limit("u", 2, 60_000)
    server.restart()  # these servers persist nothing
    deadline = time.monotonic() + 10
    while rl.throttle("u").path != "redis":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert rl.info("u")["limit"] == 2 and rl.stats()["reconfigured"] >= 1


@pytest.fixture
def app_hash(server):
    """An application's hash with a TTL, where a client id points with prefix ''."""
    r = plain_client(server.port)
    key = f"user:{uuid4().hex}"
    r.hset(key, "name", "alice")
    r.expire(key, 3600)
    yield r, key
    r.delete(key)


def test_item5_no_path_writes_into_an_application_key(server, app_hash):
    from distributed_rate_limiter import ForeignKey
    r, key = app_hash
    rl = limiter(server.port, prefix="")  # the old default: ids name application keys
    with pytest.raises(ForeignKey):
        rl.throttle(key, limit=5, window_ms=1000)
    with pytest.raises(ForeignKey):
        rl.peek(key, limit=5, window_ms=1000)
    with pytest.raises(ForeignKey):
        rl.configure_rate_limit(key, 5, 1000)
    with pytest.raises(ForeignKey):
        rl.reset(key)
    with pytest.raises(ForeignKey):
        rl.info(key)
    assert r.hgetall(key) == {b"name": b"alice"} and 3500 < r.ttl(key) <= 3600
    assert rl.stats()["state"] == "closed"  # an answer, not an outage


def test_item5_the_default_prefix_keeps_ids_out_of_the_applications_keys(server, app_hash):
    r, key = app_hash
    rl = limiter(server.port)
    assert rl.throttle(key, limit=5, window_ms=1000).allowed
    assert r.hgetall(key) == {b"name": b"alice"} and r.exists(f"rl:{key}")


def test_item5_hash_tags_still_route(server):
    rl = limiter(server.port, prefix="rl:{tenant}:")
    assert rl.throttle("u", limit=5, window_ms=1000).allowed
    assert plain_client(server.port).exists("rl:{tenant}:u")


def test_item6_a_key_configured_through_lua_keeps_working_once_the_module_appears(make_server):
    server = make_server(module=False, extra=["--appendonly", "yes"])
    rl = limiter(server.port)
    rl.configure_rate_limit("u", [{"limit": 3, "window_ms": 60_000},
                                  {"limit": 5, "window_ms": 3_600_000, "kind": "sliding"}], idle_ms=86_400_000)
    assert rl.throttle("u").path == "lua"
    rl.throttle("usage-only", limit=2, window_ms=60_000)
    server.stop()
    server.module = True
    server.start()  # the same data directory: the AOF brings the script's hashes back
    assert plain_client(server.port).type("rl:u") == b"hash"
    other = limiter(server.port)  # a process that never saw the policy: it comes from the key
    d = other.throttle("u")
    assert d.path == "redis" and d.limit == 3 and d.binding == 0
    info = other.info("u")
    assert [(x["kind"], x["limit"]) for x in info["limits"]] == [("gcra", 3), ("sliding", 5)]
    assert info["idle_ms"] == 86_400_000
    assert other.throttle("usage-only", limit=2, window_ms=60_000).allowed  # starts again
    assert plain_client(server.port).type("rl:u") == b"ratelimit"


def test_item6_a_key_configured_through_the_module_keeps_working_when_it_goes_away(make_server):
    server = make_server(module=True)
    rl = limiter(server.port, breaker_cooldown_ms=50)
    rl.configure_rate_limit("u", 2, 60_000, kind="sliding")
    assert rl.throttle("u").path == "redis"
    server.stop()
    server.module = False
    server.start()  # a server without the module cannot hold its keys: the policy is re-sent
    deadline = time.monotonic() + 10
    decisions = []
    while not decisions or decisions[-1].path != "lua":
        assert time.monotonic() < deadline
        decisions.append(rl.throttle("u"))
        time.sleep(0.02)
    assert [rl.throttle("u").allowed for _ in range(2)] == [True, False]
    assert rl.info("u")["kind"] == "sliding"
