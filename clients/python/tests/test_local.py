"""The pure parts: the local limiter against the shared traces (injected clock), validation
in this API's words, the breaker, headers, the deny cache and the client-address key."""

import json
from pathlib import Path

import pytest

from distributed_rate_limiter import InvalidArgument, Limit, LocalLimiter, headers_for
from distributed_rate_limiter.denycache import DenyCache
from distributed_rate_limiter.engine import Engine
from distributed_rate_limiter.failure import Breaker
from distributed_rate_limiter.ip import client_ip_key, ip_key
from distributed_rate_limiter.options import options_of
from distributed_rate_limiter.policy import check_lua
import traces_runner
from test_conformance import TRACES
from trace_backends import LocalBackend

IP_KEYS = json.loads((Path(__file__).resolve().parents[2] / "conformance" / "ip_keys.json").read_text())


@pytest.mark.parametrize("trace", TRACES, ids=[t["name"] for t in TRACES])
def test_local_limiter_replays_every_trace_exactly(trace):
    now = [0]
    observed = traces_runner.replay(trace, LocalBackend(lambda: now[0]), "k", lambda ms: now.__setitem__(0, ms),
                                    1_700_000_000_000)
    assert traces_runner.mismatches(trace, observed) == []


def test_the_local_limiter_keeps_sliding_and_set_usage_across_kinds_like_the_module():
    """A policy that changes kind carries usage over as time (limits.rs): 5 used of a
    SLIDING 5/min read under GCRA 5/min owes the whole minute."""
    now = [1_000_000]
    local = LocalLimiter(clock=lambda: now[0])
    sliding = (Limit.of(5, 60_000, kind="sliding"),)
    assert [local.check("k", sliding).allowed for _ in range(6)] == [True] * 5 + [False]
    gcra = (Limit.of(5, 60_000),)
    d = local.check("k", gcra)
    assert (d.allowed, d.retry_after_ms) == (False, 12_000)


def make_engine(**options):
    return Engine(options_of(options))


@pytest.mark.parametrize("call, message", [
    (lambda e: e.check_request(""), "client id must be a non-empty string"),
    (lambda e: e.check_request("k", cost=0), "cost must be an integer from 1 to 1000000000"),
    (lambda e: e.check_request("k", cost=1.5), "cost must be an integer from 1 to 1000000000"),
    (lambda e: e.check_request("k", limit=0, window_ms=1), "limit must be an integer from 1 to 1000000000"),
    (lambda e: e.check_request("k", limit=-3, window_ms=1), "limit must be an integer from 1 to 1000000000"),
    (lambda e: e.check_request("k", limit=1, window_ms=10**12 + 1),
     "window_ms must be an integer from 1 to 1000000000000"),
    (lambda e: e.check_request("k", limit=1, window_ms=1, burst=10**9 + 1),
     "burst must be an integer from 1 to 1000000000"),
    (lambda e: e.check_request("k", limit=1), "limit and window_ms must be given together"),
    (lambda e: e.check_request("k", burst=3), "burst and kind need limit and window_ms"),
    (lambda e: e.check_request("k", limit=1, window_ms=10**12, burst=1000), "burst * window_ms / limit is too large"),
    (lambda e: e.check_request("k", limit=1, window_ms=1000, kind="fixed"), "kind must be 'gcra', 'sliding' or 'concurrency'"),
    (lambda e: e.check_request("k", limit=1001, window_ms=1000, kind="sliding"), "a SLIDING limit must be"),
    (lambda e: e.check_request("k", limit=10, window_ms=2**32, kind="sliding"), "a SLIDING window_ms must be"),
    (lambda e: e.check_request("k", limit=10, window_ms=1000, burst=5, kind="sliding"),
     "burst applies to GCRA limits only"),
    (lambda e: e.check_request("k", limit=[{"limit": 1, "window_ms": 1}] * 5), "too many limits"),
    (lambda e: e.check_request("k", limit=[{"limit": 1, "windowMs": 1}]), "a limit takes limit, window_ms"),
    (lambda e: e.check_request("k", limit=[], window_ms=None), "at least one limit"),
    (lambda e: e.config_request("k", 1, 1, idle_ms=0), "idle_ms must be an integer from 1 to 1000000000000"),
    (lambda e: e.config_request("k", True, 1), "limit must be an integer from 1 to 1000000000"),
    (lambda e: e.config_request("k"), "limit and window_ms are required"),
])
def test_bad_arguments_are_refused_in_the_callers_words(call, message):
    with pytest.raises(InvalidArgument, match=message.replace("*", r"\*")):
        call(make_engine())
    assert issubclass(InvalidArgument, ValueError)


def test_a_policy_is_one_limit_or_a_list_of_dicts_or_limits():
    e = make_engine()
    one = e.check_request("k", limit=10, window_ms=1000, kind="sliding").inline
    assert one == (Limit("sliding", 10, 1000, 10),)
    mixed = e.check_request("k", limit=[{"limit": 10, "window_ms": 1000}, Limit.of(5, 60_000, kind="sliding")])
    assert mixed.inline == (Limit("gcra", 10, 1000, 10), Limit("sliding", 5, 60_000, 5))


def test_lua_bound_is_checked_exactly_at_its_edges():
    assert Limit.of(1 << 26, 1000).fits_lua()
    assert not Limit.of((1 << 26) + 1, 1000).fits_lua()
    assert Limit.of(1000, 1 << 31, 1 << 20).fits_lua()  # burst * window = 2^51
    assert not Limit.of(1000, (1 << 31) + 1, 1 << 20).fits_lua()
    with pytest.raises(InvalidArgument, match="Lua fallback's exact range"):
        check_lua((Limit.of(10**9, 1000),))


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


def test_headers_name_every_limit_with_q_its_limit_and_the_binding_one():
    one = (Limit.of(10, 60_000, burst=20),)
    assert headers_for(True, 20, 9, -1, 6000, 0, one) == {
        "RateLimit-Policy": '"default";q=10;w=60', "RateLimit": '"default";r=9;t=6'}  # q is the limit
    two = (Limit.of(10, 1000), Limit.of(1000, 86_400_000, kind="sliding"))
    h = headers_for(False, 1000, 0, 1, 999, 1, two)
    assert h == {"RateLimit-Policy": '"l0";q=10;w=1, "l1";q=1000;w=86400', "RateLimit": '"l1";r=0;t=1',
                 "Retry-After": "1"}
    # The binding item's t is its own limit's reset, not the key's (a day, under l1): l0's
    # 10 per second with 9 left empties within 100 ms; l1 with 999 left within its window.
    assert headers_for(True, 10, 9, -1, 86_399_994, 0, two)["RateLimit"] == '"l0";r=9;t=1'
    assert headers_for(True, 1000, 0, -1, 86_399_994, 1, two)["RateLimit"] == '"l1";r=0;t=86400'
    assert headers_for(True, 10, 2, -1, 86_399_994, 0, two)["RateLimit"] == '"l0";r=2;t=1'  # 800 ms
    assert "Retry-After" not in headers_for(False, 3, 0, -1, 0)  # heavier than the bucket: never
    assert headers_for(True, 5, 4, -1, 1)["RateLimit-Policy"] == '"default";q=5'  # policy unknown: no w=


def test_deny_cache_remembers_until_retry_or_its_bound_and_forgets_on_request():
    c = DenyCache(max_ms=1000)
    c.put(("k", None, 1), "d", 300, 0)
    assert c.get(("k", None, 1), 299) == ("d", 299)
    assert c.get(("k", None, 1), 300) is None  # retry_after_ms has passed
    c.put(("k", None, 1), "d", 5000, 0)
    assert c.get(("k", None, 1), 999) is not None and c.get(("k", None, 1), 1000) is None  # the bound
    c.put(("k", None, 1), "d", 5000, 0)
    assert c.get(("k", None, 2), 1) is None  # another cost is another request
    c.forget("k")
    assert c.get(("k", None, 1), 1) is None
    off = DenyCache(max_ms=0)
    off.put(("k", None, 1), "d", 300, 0)
    assert off.get(("k", None, 1), 1) is None


@pytest.mark.parametrize("case", IP_KEYS, ids=[c["addr"] for c in IP_KEYS])
def test_client_address_keys_follow_the_shared_table(case):
    assert ip_key(case["addr"]) == case["key"], case["why"]
    assert client_ip_key({"client": (case["addr"], 1234)}) == case["key"]
    assert client_ip_key({"client": None}) is None


def test_local_share_rounds_down_and_keeps_at_least_one():
    assert Limit.of(10, 60_000, 4).share(0.5) == Limit("gcra", 5, 60_000, 2)
    assert Limit.of(10, 60_000, 4).share(0.01) == Limit("gcra", 1, 60_000, 1)
    assert Limit.of(10, 60_000, kind="sliding").share(0.5) == Limit("sliding", 5, 60_000, 5)
