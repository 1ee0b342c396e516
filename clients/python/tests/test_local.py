"""The pure parts: the local GCRA against the shared traces (injected clock), validation
with the module's wording, the breaker, headers, and the middleware's default key."""

import json
from pathlib import Path

import pytest

from distributed_rate_limiter import InvalidArgument, LocalLimiter, Policy, headers_for
from distributed_rate_limiter.core import LimiterCore
from distributed_rate_limiter.failure import Breaker
from distributed_rate_limiter.middleware import client_ip_key

TRACES = json.loads((Path(__file__).resolve().parents[2] / "conformance" / "traces.json").read_text())


@pytest.mark.parametrize("trace", TRACES, ids=[t["name"] for t in TRACES])
def test_local_limiter_replays_every_trace_exactly(trace):
    now = [1_700_000_000_000]
    local = LocalLimiter(clock=lambda: now[0])
    p = trace["policy"]
    policy = Policy.of(p["limit"], p["window_ms"], p["burst"])
    start = now[0]
    for step in trace["steps"]:
        now[0] = start + step["t_ms"]
        v = local.check("k", policy, step["cost"])
        got = {"allowed": v.allowed, "remaining": v.remaining, "retry_after_ms": v.retry_after_ms,
               "reset_after_ms": v.reset_after_ms}
        assert got == step["expect"], step


@pytest.mark.parametrize("call, message", [
    (lambda c: c.request(""), "client id must be a non-empty string"),
    (lambda c: c.request("k", cost=0), "cost must be an integer from 1 to 1000000000"),
    (lambda c: c.request("k", cost=1.5), "cost must be an integer from 1 to 1000000000"),
    (lambda c: c.request("k", limit=0, window_ms=1), "limit must be an integer from 1 to 1000000000"),
    (lambda c: c.request("k", limit=-3, window_ms=1), "limit must be an integer from 1 to 1000000000"),
    (lambda c: c.request("k", limit=1, window_ms=10**12 + 1), "window_ms must be an integer from 1 to 1000000000000"),
    (lambda c: c.request("k", limit=1, window_ms=1, burst=10**9 + 1), "burst must be an integer from 1 to 1000000000"),
    (lambda c: c.request("k", limit=1), "LIMIT and WINDOW must be given together"),
    (lambda c: c.request("k", burst=3), "BURST needs LIMIT and WINDOW"),
    (lambda c: c.request("k", limit=1, window_ms=10**12, burst=1000), "burst * window_ms / limit is too large"),
    (lambda c: c.config_args("k", 1, 1, idle_ms=0), "idle_ms must be an integer from 1 to 1000000000000"),
    (lambda c: c.config_args("k", True, 1), "limit must be an integer from 1 to 1000000000"),
])
def test_bad_arguments_are_refused_with_the_modules_wording(call, message):
    with pytest.raises(InvalidArgument, match=message.replace("*", r"\*")):
        call(LimiterCore())


def test_lua_bound_is_checked_exactly_at_its_edges():
    assert Policy.of(1 << 26, 1000).fits_lua()
    assert not Policy.of((1 << 26) + 1, 1000).fits_lua()
    assert Policy.of(1000, 1 << 31, 1 << 20).fits_lua()  # burst * window = 2^51
    assert not Policy.of(1000, (1 << 31) + 1, 1 << 20).fits_lua()
    with pytest.raises(InvalidArgument, match="Lua fallback's exact range"):
        Policy.of(10**9, 1000).check_lua()


def test_breaker_opens_after_n_failures_probes_after_the_cooldown_and_recovers():
    now, events = [0], []
    b = Breaker(failures=3, cooldown_ms=1000, on_change=events.append, clock=lambda: now[0])
    for _ in range(2):
        assert b.admit()
        b.failure()
    assert b.state == "closed"
    b.failure()
    assert (b.state, events) == ("open", ["degraded"])
    assert not b.admit()
    now[0] = 999
    assert not b.admit() and b.retry_after_ms() == 1
    now[0] = 1000
    assert b.admit() and b.state == "half_open"
    assert not b.admit()  # one probe at a time
    b.failure()  # the probe failed: another full cool-down
    assert b.state == "open" and not b.admit()
    now[0] = 2000
    assert b.admit()
    b.success()
    assert (b.state, events) == ("closed", ["degraded", "recovered"])


def test_a_half_open_breaker_whose_probe_never_asked_lets_the_next_call_probe():
    now = [0]
    b = Breaker(failures=1, cooldown_ms=100, clock=lambda: now[0])
    b.failure()
    now[0] = 100
    assert b.admit()
    b.abort()
    assert b.admit()


def test_headers_follow_the_readme_recipe():
    assert headers_for(True, 10, 9, -1, 6000, 60_000) == {
        "RateLimit-Policy": '"default";q=10;w=60', "RateLimit": '"default";r=9;t=6'}
    h = headers_for(False, 3, 0, 1, 999, 1000)
    assert h["Retry-After"] == "1" and h["RateLimit"] == '"default";r=0;t=1'
    assert "Retry-After" not in headers_for(False, 3, 0, -1, 0)  # heavier than the bucket: never
    assert headers_for(True, 5, 4, -1, 1)["RateLimit-Policy"] == '"default";q=5'


@pytest.mark.parametrize("host, key", [
    ("203.0.113.7", "ip:203.0.113.7"),
    ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "ip:2001:db8:1:2::/64"),
    ("2001:db8:1:2::1", "ip:2001:db8:1:2::/64"),
    ("::ffff:203.0.113.7", "ip:203.0.113.7"),
    ("unix-socket", "ip:unix-socket"),
])
def test_default_key_is_the_client_ip_with_ipv6_grouped_by_64(host, key):
    assert client_ip_key({"client": (host, 1234)}) == key
    assert client_ip_key({"client": None}) is None


def test_local_share_rounds_down_and_keeps_at_least_one():
    p = Policy.of(10, 60_000, 4)
    assert p.share(0.5) == Policy(5, 60_000, 2)
    assert p.share(0.01) == Policy(1, 60_000, 1)
