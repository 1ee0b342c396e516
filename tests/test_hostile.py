"""Hostile clients: thousands of random RL.* calls (random command, arity 0..20, numbers at
and beyond every bound, option names in any case, empty, 1 MB, non-UTF-8 and CR/LF/NUL
arguments, keys of every type) never break the server: every reply is a well-formed reply
or a Redis error, the connection stays in sync, a failed call changes nothing, keys of
other types are never touched, and failed calls do not grow memory.

The CI run is bounded (200 examples of 10 to 40 calls); `RL_HOSTILE_PROFILE=long` (5,000
examples) or `RL_HOSTILE_EXAMPLES=<n>` make a long run: `pytest tests/test_hostile.py -s`.

Replies are read with resp.py's `raw_call`, which does not trust a reply's declared length:
an earlier build announced more RL.INFO fields than it sent, which hangs an ordinary client
(see the regression test at the end).
"""

import os
import random
import time
from collections import Counter

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import DAY, HOUR, lowest_memory, rl_info, snapshot
from payload import parse_dump
from resp import raw_call
# Profiles: "ci" (the default, well under a minute) and "long"; RL_HOSTILE_PROFILE picks one,
# RL_HOSTILE_EXAMPLES overrides its number of examples.
settings.register_profile("rl-hostile-ci", max_examples=200, deadline=None, database=None,
                          print_blob=True, suppress_health_check=list(HealthCheck))
settings.register_profile("rl-hostile-long", settings.get_profile("rl-hostile-ci"), max_examples=5000)
HOSTILE = settings(settings.get_profile("rl-hostile-" + os.environ.get("RL_HOSTILE_PROFILE", "ci")))
if "RL_HOSTILE_EXAMPLES" in os.environ:
    HOSTILE = settings(HOSTILE, max_examples=int(os.environ["RL_HOSTILE_EXAMPLES"]))
EXAMPLES = HOSTILE.max_examples

COMMANDS = ["RL.ALLOW", "RL.CONFIG", "RL.THROTTLE", "RL.PEEK", "RL.INFO", "RL.RESET", "RL.TOP",
            "RL.APPLY"]
OPTIONS = ["COST", "LIMIT", "WINDOW", "BURST", "IDLE", "SHADOW", "POLICY"]
NUMBERS = [b"0", b"1", b"-1", b"2", b"10", b"1021", b"3600000", b"1000000000", b"1000000001",
           b"1000000000000", b"1000000000001", b"10000000000000", b"10000000000001",
           b"1152921504606846976", b"1152921504606846977", b"9223372036854775807",
           b"9223372036854775808", b"18446744073709551615", b"18446744073709551616",
           b"99999999999999999999999", b"-0", b"007", b"+5", b"1e3", b"1.5", b" 5", b"5 ", b"0x10"]
HUGE = b"h" * (1 << 20)
ODD = [b"", b"\xff\xfe\x80", b"\xc3\x28", b"\r\n", b"\x00", b"1\x00", b"a\r\nPING\r\n",
       b"*1\r\n$4\r\nPING\r\n", b"-ERR x", "é".encode(), b"\t"]
OTHER_TYPES = {b"o:string": "string", b"o:list": "list", b"o:hash": "hash", b"o:set": "set",
               b"o:zset": "zset", b"o:stream": "stream"}
INTERNAL = "internal error in the rl module"


# --- the data every hostile call must leave alone ------------------------------------------


def make_sentinels(c):
    """Ratelimit keys of every layout, none of which expires for days (an expiry during an
    example would look like a change); returns {key: (payload, pexpiretime)} to restore
    them before each example."""
    c.flushall()
    for _ in range(3):
        c.execute_command("RL.ALLOW", b"s:inline", "LIMIT", 10, "WINDOW", 10 * DAY)
    # T = (1021 days + 11 ms) / 1021: a TAT fraction with denominator 1021, a heap value.
    c.execute_command("RL.ALLOW", b"s:boxed", "LIMIT", 1021, "WINDOW", 1021 * DAY + 11)
    c.execute_command("RL.CONFIG", b"s:cfg", 10, HOUR)
    c.execute_command("RL.ALLOW", b"s:cfg")
    c.execute_command("RL.CONFIG", b"s:idle", 5, HOUR, "BURST", 8, "IDLE", 10 * DAY)
    c.execute_command("RL.ALLOW", b"s:idle", "COST", 3)
    c.execute_command("RL.CONFIG", b"s:exhausted", 2, HOUR)
    c.execute_command("RL.ALLOW", b"s:exhausted", "COST", 2)
    c.execute_command("RL.CONFIG", b"s:bounds", 10**9, 10**4, "BURST", 10**9, "IDLE", 10**12)
    c.execute_command("RL.ALLOW", b"\xff\x00s:binary", "LIMIT", 7, "WINDOW", 10 * DAY)
    c.execute_command("RL.CONFIG", b"s:shadow", 3, HOUR, "SHADOW")
    c.execute_command("RL.ALLOW", b"s:shadow", "COST", 2)
    sentinels = {k: (c.dump(k), c.execute_command("PEXPIRETIME", k)) for k in sorted(c.scan_iter())}
    assert len(sentinels) == 8 and all(exp == -1 or exp > time.time() * 1000 + DAY / 2
                                       for _, exp in sentinels.values()), sentinels
    assert parse_dump(sentinels[b"s:boxed"][0])[1][2] == 1021
    assert parse_dump(sentinels[b"s:shadow"][0])[1][-1] == 1  # flags: SHADOW
    return sentinels


def make_other_types(c):
    c.set(b"o:string", b"v")
    c.rpush(b"o:list", b"a", b"b")
    c.hset(b"o:hash", b"f", b"1")
    c.sadd(b"o:set", b"m")
    c.zadd(b"o:zset", {b"m": 1.5})
    c.xadd(b"o:stream", {b"f": b"v"}, id="1-1")


def restore_all(c, sentinels):
    p = c.pipeline(transaction=False)
    p.flushall()
    for key, (payload, exp) in sentinels.items():
        if exp == -1:
            p.restore(key, 0, payload)
        else:
            p.restore(key, exp, payload, absttl=True)
    p.execute()
    make_other_types(c)


# --- strategies ----------------------------------------------------------------------------


def any_case(word):
    return st.lists(st.booleans(), min_size=len(word), max_size=len(word)).map(
        lambda lower: "".join(ch.lower() if f else ch for ch, f in zip(word, lower)).encode())


def keys_strategy(sentinels):
    fresh = st.integers(0, 20).map(lambda i: b"n:%d" % i)
    return st.one_of(st.sampled_from(sorted(sentinels)), st.sampled_from(sorted(OTHER_TYPES)),
                     fresh, st.binary(max_size=8), st.sampled_from([b"", HUGE, b"\r\n\x00"]))


def calls_strategy(sentinels):
    """Lists of (command, args): half free-form token soup, half shaped like the command's
    syntax with numbers drawn from valid edges and from beyond every bound."""
    option = st.sampled_from(OPTIONS).flatmap(any_case)
    number = st.one_of(st.sampled_from(NUMBERS), st.integers(-2**66, 2**66).map(b"%d".__mod__),
                       st.integers(1, 3 * HOUR).map(b"%d".__mod__))
    fair = st.one_of(st.sampled_from([b"1", b"2", b"7", b"10", b"1021", b"60000", b"3600000",
                                      b"1000000000", b"1000000000000"]),
                     st.integers(1, 10**6).map(b"%d".__mod__), number)
    odd = st.integers(0, 3 * len(ODD)).map(lambda i: ODD[i] if i < len(ODD) else
                                           (HUGE if i == len(ODD) else b"%d" % i))
    key = keys_strategy(sentinels)
    single = st.one_of(number, option, odd, key).map(lambda t: [t])
    pair = st.tuples(option, number).map(list)
    rest = st.lists(st.one_of(pair, pair, single), max_size=10).map(lambda ps: sum(ps, []))
    soup = st.one_of(st.just([]), st.tuples(key, rest).map(lambda kr: ([kr[0]] + kr[1])[:20]),
                     st.lists(st.one_of(number, option, odd), max_size=20))
    soup_call = st.tuples(st.sampled_from(COMMANDS).flatmap(any_case), soup)

    def opt(word, value=fair):
        return st.one_of(st.just([]), st.tuples(any_case(word), value).map(list))

    def call(name, *parts):
        return st.tuples(any_case(name), st.tuples(*parts).map(
            lambda ps: [x for p in ps for x in (p if isinstance(p, list) else [p])]))

    inline = st.one_of(st.just([]), st.tuples(any_case("LIMIT"), fair, any_case("WINDOW"), fair,
                                              opt("BURST")).map(lambda t: [*t[:4], *t[4]]))
    shaped = st.one_of(
        call("RL.ALLOW", key, opt("COST"), inline),
        call("RL.THROTTLE", key, opt("COST"), inline),
        call("RL.PEEK", key, opt("COST"), inline),
        call("RL.CONFIG", key, fair, fair, opt("BURST"), opt("IDLE"),
             st.one_of(st.just([]), any_case("SHADOW").map(lambda s: [s]))),
        call("RL.INFO", key), call("RL.RESET", key),
        call("RL.TOP", st.one_of(st.just([]), fair.map(lambda n: [n]))),
        call("RL.APPLY", key, fair, fair, fair, fair,
             st.one_of(st.just([]), st.tuples(any_case("POLICY"), fair, fair, fair, fair,
                                               st.sampled_from([b"0", b"1", b"2", b"4"])).map(list))),
    )
    return st.lists(st.one_of(soup_call, shaped), min_size=10, max_size=40)


# (rl.default-limit, rl.default-window-ms, rl.default-burst, rl.scale-percent, protocol)
ENVIRONMENTS = st.tuples(st.sampled_from([0, 1, 100, 10**9]), st.sampled_from([1, 1000, 10**12]),
                         st.sampled_from([0, 1, 10**9]), st.sampled_from([1, 50, 100, 333, 1000]),
                         st.sampled_from([2, 3]))


# --- the checks ----------------------------------------------------------------------------


THROTTLE_FIELDS = [b"allowed", b"limit", b"remaining", b"retry_after_ms", b"reset_after_ms"]


def check_reply(name, args, reply):
    """A successful reply has the shape the README documents for its command (RESP2, or
    RESP3: booleans and maps)."""
    ints = lambda xs: all(isinstance(x, int) for x in xs)  # noqa: E731
    if name == "RL.ALLOW":
        assert reply in (0, 1)  # True/False in RESP3
    elif name in ("RL.THROTTLE", "RL.PEEK"):
        if isinstance(reply, dict):
            assert list(reply) == THROTTLE_FIELDS, reply
            reply = list(reply.values())
        assert isinstance(reply, list) and len(reply) == 5 and ints(reply), reply
        allowed, limit, remaining, retry, reset = reply
        assert allowed in (0, 1) and limit >= 1 and remaining >= 0 and retry >= -1 and reset >= 0
    elif name == "RL.CONFIG":
        assert reply in (b"OK", True)
    elif name == "RL.RESET":
        assert isinstance(reply, int) and reply >= 0
    elif name == "RL.TOP":
        assert isinstance(reply, list) and len(reply) <= 128
        assert all(isinstance(e[0], bytes) and ints(e[1:]) and len(e) == 3 for e in reply), reply
    elif name == "RL.INFO":
        # 9 fields, or 11 with `kind` and `limits` (several limits, SLIDING, a pending change).
        assert reply is None or (isinstance(reply, list) and len(reply) in (18, 22)), reply
    else:
        pytest.fail(f"RL.APPLY from a client succeeded: {args[:6]!r}")


class Hostile:
    """Sends calls and checks each one; counts what happened."""

    def __init__(self, server, sentinels):
        self.server, self.sentinels = server, sentinels
        self.c = server.client()
        self.clients = {2: self.c, 3: server.client(protocol=3)}
        self.protocol = 2
        self.stats = Counter()
        self.watched = []

    def start_example(self):
        """Restores the sentinels; each is watched until a call on it succeeds (then it may
        legitimately change, or expire, for the rest of the example)."""
        restore_all(self.c, self.sentinels)
        self.watched = sorted(self.sentinels) + sorted(OTHER_TYPES)

    def send(self, name, args):
        upper = name.decode().upper()
        if upper == "RL.INFO":
            reply, declared, sent = raw_call(self.server.port, name, *args)
            assert declared == sent, f"RL.INFO {args[:2]!r} announced {declared} elements, sent {sent}"
        else:
            try:
                reply = self.clients[self.protocol].execute_command(name, *args)
            except redis.ResponseError as e:
                reply = e
        return upper, reply

    def one(self, name, args):
        keyed = bool(args) and name.upper() not in (b"RL.TOP",)
        target = args[0] if keyed else None
        watched = self.watched
        before = snapshot(self.c, watched)
        existed = target is not None and self.c.exists(target)
        upper, reply = self.send(name, args)
        self.stats["calls"] += 1
        assert self.c.ping() and self.clients[3].ping(), "server down"
        after = snapshot(self.c, watched)
        if isinstance(reply, redis.ResponseError):
            self.stats["errors"] += 1
            self.stats["error: " + str(reply).removeprefix("ERR ")[:60]] += 1
            assert INTERNAL not in str(reply), (name, args[:4], reply)
            assert after == before, f"failed call {name!r} {args[:4]!r} changed data"
            if target is not None and not existed:
                assert not self.c.exists(target), f"failed call created {target[:40]!r}"
        else:
            self.stats["replies"] += 1
            check_reply(upper, args, reply)
            for key in watched:
                if key != target:
                    assert after[key] == before[key], f"{name!r} on {target!r} changed {key!r}"
            if target in OTHER_TYPES:
                pytest.fail(f"{name!r} succeeded on a {OTHER_TYPES[target]} key")
            if target in self.sentinels and target in watched:
                self.watched = [k for k in watched if k != target]


@pytest.fixture(scope="module")
def hostile(server):
    c = server.client()
    h = Hostile(server, make_sentinels(c))
    yield h
    c.config_set("rl.scale-percent", 100)
    c.close()


def test_random_rl_calls_get_a_reply_or_an_error_and_change_nothing_when_they_fail(hostile, capsys):
    """Thousands of random calls: each gets a well-formed reply or an error, the server
    answers PING on the same connection after each, a failed call leaves every ratelimit
    sentinel (digest and absolute expiry) and every key of another type as it was and
    creates no key, and a successful call changes at most its own key."""

    @HOSTILE
    @given(environment=ENVIRONMENTS, calls=calls_strategy(hostile.sentinels))
    def run(environment, calls):
        limit, window, burst, scale, hostile.protocol = environment
        hostile.start_example()
        for name, value in (("rl.default-limit", limit), ("rl.default-window-ms", window),
                            ("rl.default-burst", burst), ("rl.scale-percent", scale)):
            hostile.c.config_set(name, value)
        for name, args in calls:
            hostile.one(name, args)

    run()
    s = hostile.stats
    with capsys.disabled():
        print(f"\nhostile calls sent: {s['calls']}, errors received: {s['errors']}, "
              f"replies: {s['replies']}")
        for what, n in sorted(s.items()):
            if what.startswith("error:"):
                print(f"  {n:6d}  {what}")
    assert s["calls"] >= EXAMPLES and s["errors"] > 0 and s["replies"] > 0


def failing_calls(rng, n):
    """`n` calls that must fail (bad numbers, unknown options, wrong types, arity,
    RL.APPLY), a few of them with 1 MB arguments."""
    bad_count = [b"0", b"-1", b"-0", b"007", b"+5", b"1e3", b"1.5", b" 5", b"5 ", b"0x10",
                 b"18446744073709551616", b"99999999999999999999999", b"", b"x", b"\xff"]
    too_big = [b"1000000000001", b"10000000000000", b"9223372036854775808", b"18446744073709551615"]
    bad = bad_count + too_big
    other = sorted(OTHER_TYPES)
    makers = [
        lambda: ["RL.ALLOW", rng.choice([b"k", b"\xff"]), rng.choice(["COST", "cost"]),
                 rng.choice(bad + [b"1000000001"])],
        lambda: ["RL.ALLOW", b"k", "LIMIT", rng.choice(bad + [b"1000000001"]), "WINDOW", 1000],
        lambda: ["RL.THROTTLE", b"k", rng.choice(ODD), b"1"],
        lambda: ["RL.PEEK", rng.choice(other), "LIMIT", 1, "WINDOW", 1],
        lambda: ["RL.CONFIG", b"k", rng.choice(bad), 1000],
        lambda: ["RL.CONFIG", b"k", 10, 1000, rng.choice(["IDLE", "BURST", "idle"]), rng.choice(bad)],
        lambda: ["RL.CONFIG", rng.choice(other), 10, 1000],
        lambda: ["RL.RESET", rng.choice(other)],
        lambda: ["RL.INFO", rng.choice(other)],
        lambda: ["RL.TOP", rng.choice(bad_count)],
        lambda: ["RL.APPLY", b"k", 1, 0, 1, 0, *rng.choice([[], ["POLICY", 1, 1, 1, 0, 0]])],
        lambda: [rng.choice(COMMANDS)] + [b"COST", b"1"] * 9,
        lambda: [rng.choice(["RL.ALLOW", "RL.PEEK", "RL.CONFIG", "RL.INFO", "RL.RESET"])],
    ]
    calls = [rng.choice(makers)() for _ in range(n)]
    huge = [["RL.ALLOW", HUGE, "COST", b"0"], ["RL.CONFIG", b"k", HUGE, 1000],
            ["RL.THROTTLE", b"k", HUGE, b"1"], ["RL.TOP", HUGE], ["RL.PEEK", b"o:list", HUGE]]
    return calls[:n - len(huge)] + huge


def test_failed_calls_do_not_grow_memory(server, capsys):
    """20,000 failing calls (after a warm-up round of the same calls) leave used_memory
    where it was, within 64 KB: an error allocates nothing that outlives the call."""
    c = server.client()
    c.flushall()
    make_other_types(c)
    calls = failing_calls(random.Random(6), 2000)

    def round_():
        p = c.pipeline(transaction=False)
        for call in calls:
            p.execute_command(*call)
        replies = p.execute(raise_on_error=False)
        assert all(isinstance(x, redis.ResponseError) for x in replies), [
            (call[:3], x) for call, x in zip(calls, replies) if not isinstance(x, Exception)][:3]
        assert c.ping()

    round_()
    errors_before = c.info("rl")["rl_errors"]
    before = lowest_memory(c, 3)
    for _ in range(10):
        round_()
    errors = c.info("rl")["rl_errors"] - errors_before
    # Polls: the query buffer that held the 1 MB arguments is shrunk by serverCron.
    deadline = time.monotonic() + 30
    while (after := lowest_memory(c, 1)) - before >= 64 * 1024 and time.monotonic() < deadline:
        pass
    with capsys.disabled():
        print(f"\nfailing calls: {10 * len(calls)}, rl_errors +{errors}, used_memory {before} -> "
              f"{after} ({after - before:+d} bytes)")
    assert errors >= 5 * len(calls)  # arity errors that Redis answers itself are not counted
    assert after - before < 64 * 1024


# --- regressions -----------------------------------------------------------------------------


def test_rl_info_reply_announces_as_many_fields_as_it_sends(r, server):
    """Found by this file on an earlier build (fixed in 751f850): RL.INFO announced 10 fields
    (RESP2 *20) and sent 9, so redis-cli and redis-py waited forever for the rest and the
    connection fell out of sync. Checked here byte for byte, for both kinds of key and nil."""
    r.execute_command("RL.CONFIG", "k", 10, 1000, "SHADOW")
    r.execute_command("RL.ALLOW", "u", "LIMIT", 10, "WINDOW", HOUR)
    for key in ("k", "u", "absent"):
        reply, declared, sent = raw_call(server.port, "RL.INFO", key)
        assert declared == sent, (key, declared, sent, reply)
    assert rl_info(server.port, "absent") is None
    assert r.execute_command("RL.INFO", "k")[:4] == [b"source", b"stored", b"limit", 10]
