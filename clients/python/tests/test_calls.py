"""Every call of both limiters (sync and asyncio) on a server with the module and on a plain
one (the Lua path), over RESP2 and RESP3: the same answers and the same shapes."""

import asyncio
from uuid import uuid4

import pytest
import redis.asyncio

from conftest import plain_client
from distributed_rate_limiter import (AsyncDistributedRateLimiter, Decision, DistributedRateLimiter,
                                      ForeignKey, InvalidArgument, NoRateLimit)
from distributed_rate_limiter.operations import LUA_SHA, LUA_SOURCE


class Sync:
    """Calls the sync limiter through the same interface as the async one."""

    def __init__(self, port, protocol, **kw):
        self.limiter = DistributedRateLimiter(plain_client(port, protocol), timeout_ms=2000, **kw)

    def __getattr__(self, name):
        return getattr(self.limiter, name)


class Async:
    """The asyncio limiter, each call run to completion on one private event loop."""

    def __init__(self, port, protocol, **kw):
        self.loop = asyncio.new_event_loop()
        client = redis.asyncio.Redis(host="127.0.0.1", port=port, protocol=protocol)
        self.limiter = AsyncDistributedRateLimiter(client, timeout_ms=2000, **kw)

    def __getattr__(self, name):
        attr = getattr(self.limiter, name)
        if name == "stats":
            return attr
        return lambda *a, **kw: self.loop.run_until_complete(attr(*a, **kw))


@pytest.fixture(params=[(Sync, 2), (Sync, 3), (Async, 2), (Async, 3)], ids=["sync-resp2", "sync-resp3",
                                                                           "async-resp2", "async-resp3"])
def make_limiter(request, server):
    kind, protocol = request.param
    return lambda **kw: kind(server.port, protocol, **kw)


def test_the_brief_ten_true_then_five_false(make_limiter, server):
    rl = make_limiter(prefix=f"brief:{uuid4().hex}:")
    rl.configure_rate_limit("user123", 10, 60_000)
    assert [rl.is_allowed("user123") for _ in range(15)] == [True] * 10 + [False] * 5
    stats = rl.stats()
    assert (stats[server.path], stats["cached"]) == (11, 4)  # the 12th to 15th from the deny cache
    assert stats["backend"] == ("lua" if server.path == "lua" else "module")


def test_throttle_and_peek_give_the_numbers_and_headers(make_limiter, server):
    rl = make_limiter(prefix=f"th:{uuid4().hex}:")
    rl.configure_rate_limit("u", 2, 60_000)
    p = rl.peek("u")
    assert (p.allowed, p.limit, p.remaining, p.retry_after_ms, p.reset_after_ms) == (True, 2, 1, -1, 30_000)
    d1, d2, d3 = rl.throttle("u"), rl.throttle("u"), rl.throttle("u")
    assert isinstance(d1, Decision) and d1.path == server.path
    assert (d1.remaining, d2.remaining, d3.allowed) == (1, 0, False)
    assert 29_000 <= d3.retry_after_ms <= 30_000 and 59_000 <= d3.reset_after_ms <= 60_000
    assert d3.headers["RateLimit-Policy"] == '"default";q=2;w=60'
    assert d3.headers["Retry-After"] == "30" and d3.headers["RateLimit"].startswith('"default";r=0;t=')
    assert "Retry-After" not in d2.headers
    heavy = rl.throttle("u", cost=3)
    assert (heavy.allowed, heavy.retry_after_ms) == (False, -1) and "Retry-After" not in heavy.headers


def test_inline_policy_cost_and_precedence(make_limiter):
    rl = make_limiter(prefix=f"in:{uuid4().hex}:")
    assert [rl.is_allowed("s", limit=3, window_ms=60_000) for _ in range(4)] == [True, True, True, False]
    assert rl.throttle("c", cost=4, limit=5, window_ms=60_000).remaining == 1
    assert not rl.is_allowed("c", cost=2, limit=5, window_ms=60_000)
    assert rl.throttle("b", limit=1, window_ms=60_000, burst=3).limit == 3


def test_reset_forgets_usage_and_keeps_the_policy(make_limiter):
    rl = make_limiter(prefix=f"rs:{uuid4().hex}:")
    rl.configure_rate_limit("u", 1, 60_000)
    assert rl.is_allowed("u") and not rl.is_allowed("u")
    assert 59_000 <= rl.reset("u") <= 60_000
    assert rl.is_allowed("u")
    assert rl.reset("absent") == 0


def test_info_reports_the_policy_and_state(make_limiter):
    rl = make_limiter(prefix=f"if:{uuid4().hex}:")
    assert rl.info("absent") is None
    rl.configure_rate_limit("u", 10, 60_000, burst=5, idle_ms=3_600_000)
    rl.is_allowed("u")
    info = rl.info("u")
    assert (info["source"], info["limit"], info["window_ms"], info["burst"], info["idle_ms"]) == (
        "stored", 10, 60_000, 5, 3_600_000)
    assert info["remaining"] == 4 and 5_000 <= info["reset_after_ms"] <= 6_000


def test_shadow_policy_allows_and_counts(make_limiter):
    rl = make_limiter(prefix=f"sh:{uuid4().hex}:")
    rl.configure_rate_limit("u", 1, 60_000, shadow=True)
    assert [rl.is_allowed("u") for _ in range(3)] == [True] * 3
    assert rl.throttle("u").remaining == 0


def test_errors_are_typed_and_the_servers_answers_do_not_trip_the_breaker(make_limiter, server):
    rl = make_limiter(prefix=f"er:{uuid4().hex}:", breaker_failures=1)
    with pytest.raises(NoRateLimit, match="no rate limit for key"):
        rl.is_allowed("nopolicy")
    with pytest.raises(InvalidArgument, match="limit must be an integer"):
        rl.is_allowed("x", limit=0, window_ms=1000)
    plain_client(server.port).set(rl.limiter._engine.prefix + b"str", "v")
    with pytest.raises(ForeignKey, match="not a rate limit of this client"):
        rl.is_allowed("str", limit=1, window_ms=1000)
    assert rl.stats()["state"] == "closed" and rl.stats()["errors"] == 0


def test_the_lua_bound_is_refused_before_sending_only_on_the_lua_path(make_limiter, server):
    rl = make_limiter(prefix=f"lb:{uuid4().hex}:")
    rl.is_allowed("warm", limit=1, window_ms=1000)  # detects the path
    if server.path == "lua":
        with pytest.raises(InvalidArgument, match="exact range"):
            rl.is_allowed("big", limit=10**9, window_ms=1000)
        with pytest.raises(InvalidArgument, match="exact range"):
            rl.configure_rate_limit("big", 10**9, 1000)
    else:
        assert rl.is_allowed("big", limit=10**9, window_ms=1000)


def test_bad_input_sends_nothing(server):
    r = plain_client(server.port)
    rl = DistributedRateLimiter(plain_client(server.port), timeout_ms=2000)
    r.config_resetstat()
    for bad in [dict(cost=0), dict(cost=-1), dict(limit=1), dict(limit=1.5, window_ms=1)]:
        with pytest.raises(InvalidArgument):
            rl.is_allowed("k", **bad)
    with pytest.raises(InvalidArgument):
        rl.is_allowed("")
    assert not any(k.startswith(("cmdstat_rl", "cmdstat_evalsha")) for k in r.info("commandstats"))


def test_lua_script_is_reloaded_after_script_flush(make_server):
    server = make_server(module=False)
    rl = DistributedRateLimiter(plain_client(server.port), timeout_ms=2000)
    assert rl.is_allowed("k", limit=5, window_ms=1000)
    plain_client(server.port).script_flush()
    assert rl.is_allowed("k", limit=5, window_ms=1000)
    assert plain_client(server.port).script_exists(LUA_SHA) == [True]
    assert LUA_SOURCE.startswith("--[[")


def test_usage_only_lua_key_expires_when_its_bucket_is_empty(make_server):
    server = make_server(module=False)
    r = plain_client(server.port)
    rl = DistributedRateLimiter(r, timeout_ms=2000)
    rl.is_allowed("k", limit=10, window_ms=60_000)
    assert 5_900 <= r.pttl("rl:k") <= 6_000  # the default prefix
    rl.configure_rate_limit("c", 10, 60_000)
    rl.is_allowed("c")
    assert r.pttl("rl:c") == -1  # configuration does not expire without IDLE


def test_module_is_detected_again_after_a_reconnect(make_server):
    """A plain server replaced by one with the module on the same port: after the breaker's
    cool-down the limiter probes, re-detects and uses RL.* again."""
    server = make_server(module=False)
    rl = DistributedRateLimiter(plain_client(server.port, socket_connect_timeout=1), timeout_ms=500,
                                breaker_failures=1, breaker_cooldown_ms=100)
    assert rl.throttle("k", limit=5, window_ms=1000).path == "lua"
    server.stop()
    assert rl.throttle("k", limit=5, window_ms=1000).path == "local"
    server.module = True
    server.start()
    paths = set()
    for _ in range(200):
        paths.add(rl.throttle("k", limit=5, window_ms=100_000).path)
        if "redis" in paths:
            break
        asyncio.run(asyncio.sleep(0.02))
    assert "redis" in paths and rl.stats()["backend"] == "module"


def test_threads_sharing_one_limiter_count_every_request_once(server):
    """8 threads, 50 checks each, one key of 100 per minute: exactly 100 pass."""
    import threading
    rl = DistributedRateLimiter(plain_client(server.port), timeout_ms=2000)
    rl.configure_rate_limit("shared", 100, 60_000)
    results = []

    def worker():
        results.extend(rl.is_allowed("shared") for _ in range(50))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (len(results), sum(results)) == (400, 100), rl.stats()
    assert rl.stats()["errors"] == 0


@pytest.mark.parametrize("protocol", [2, 3])
def test_clients_that_decode_responses_get_the_same_shapes(server, protocol):
    rl = DistributedRateLimiter(plain_client(server.port, protocol, decode_responses=True), timeout_ms=2000)
    rl.configure_rate_limit(f"dec{protocol}", 2, 60_000)
    d = rl.throttle(f"dec{protocol}")
    assert (d.allowed, d.limit, d.remaining) == (True, 2, 1)
    assert rl.info(f"dec{protocol}")["source"] == "stored"


def test_the_brief_example_prints_ten_true_then_five_false(server):
    """examples/brief.py as a user runs it (REDIS_URL), on the module and on a plain server."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    here = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, str(here / "examples" / "brief.py")], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "REDIS_URL": f"redis://127.0.0.1:{server.port}",
                                          "PYTHONPATH": str(here)})
    lines = out.stdout.splitlines()
    assert lines == [f"Request {i + 1} from user123: {i < 10}" for i in range(15)], out.stderr


def test_stored_policy_beats_inline(make_limiter, server):
    """Issue 11's order on every path (module and Lua): an operator's RL.CONFIG wins over a
    caller's inline policy."""
    rl = make_limiter(prefix=f"pr:{uuid4().hex}:")
    rl.configure_rate_limit("u", 1, 60_000)
    got = [rl.is_allowed("u", limit=100, window_ms=60_000) for _ in range(3)]
    assert got == [True, False, False]


def test_local_fallback_also_prefers_the_stored_policy():
    from distributed_rate_limiter import operations as ops
    from distributed_rate_limiter.engine import Engine
    from distributed_rate_limiter.options import options_of
    e = Engine(options_of({"on_error": "local"}))
    e.remember(*_one(e.config_request("u", 1, 60_000)))
    req = e.check_request("u", limit=100, window_ms=60_000)
    assert [e._fallback(req, ops.THROTTLE, None).allowed for _ in range(3)] == [True, False, False]


def _one(req):
    return req.key, req.stored
