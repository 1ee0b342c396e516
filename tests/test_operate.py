"""The commands a client and an operator use around RL.ALLOW: RL.THROTTLE and RL.PEEK (the
numbers behind a decision, exact to the millisecond), RL.INFO, RL.RESET, and the command
metadata of all the new commands. (INFO rl, events, RL.TOP, rl.scale-percent and SHADOW
policies are in test_metrics.py.)

Timing checks never assume how long a step takes: a decision is bracketed by two TIME calls
pipelined around it, so the server decided it at an instant in [before, after], and the
checks hold for every instant in that range. Policies that must not refill during a test have
an emission interval of at least 360 s.

RL.INFO replies are read over a plain socket (helpers.rl_info, resp.py), so that a malformed
reply fails at once with what was received instead of hanging a redis-py client.
"""

import time

import pytest
import redis
from helpers import (FIELDS, HOUR, bracketed, calls, config, digest, ms, pairs, peek, pexpiretime, raw_command,
                     replicated, restore_shadow, rl_info, rl_stats, server_ms, snapshot, start_pair, throttle,
                     verdict, wait_until)

INFO_FIELDS = ("source", "limit", "window_ms", "burst", "idle_ms", "shadow", "scale_percent",
               "remaining", "reset_after_ms")


# --- RL.THROTTLE -------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 3])
def test_throttle_replies_allowed_limit_remaining_retry_and_reset(server, r, protocol):
    """RESP2 gets [allowed, limit, remaining, retry_after_ms, reset_after_ms], RESP3 a map of
    those names. 10 per hour, burst 4 (T = 360 s): the numbers are exact, retry_after_ms is
    -1 when allowed and for a request heavier than the burst, and a usage-only key's
    PEXPIRETIME is the decision's instant plus reset_after_ms."""
    c = server.client(protocol=protocol)
    p = ("LIMIT", 10, "WINDOW", HOUR, "BURST", 4)
    raw = c.execute_command("RL.THROTTLE", "u", *p)
    assert isinstance(raw, dict if protocol == 3 else list)
    assert verdict(raw) == dict(zip(FIELDS, [1, 4, 3, -1, 360_000]))

    before, raw, after = bracketed(c, "RL.THROTTLE", "u", "COST", 2, *p)
    v = verdict(raw)
    assert (v["allowed"], v["limit"], v["remaining"], v["retry_after_ms"]) == (1, 4, 1, -1)
    tat = pexpiretime(c, "u")
    assert before <= tat - v["reset_after_ms"] <= after

    # Denied: 3 of 4 used; COST 2 fits once one interval has leaked, at TAT - 2T.
    before, raw, after = bracketed(c, "RL.THROTTLE", "u", "COST", 2, *p)
    v = verdict(raw)
    assert (v["allowed"], v["limit"], v["remaining"]) == (0, 4, 1)
    assert before <= (tat - 2 * 360_000) - v["retry_after_ms"] <= after
    assert before <= tat - v["reset_after_ms"] <= after

    # Heavier than the burst: can never pass, so no retry time.
    v = throttle(c, "u", "COST", 5, *p)
    assert (v["allowed"], v["limit"], v["remaining"], v["retry_after_ms"]) == (0, 4, 1, -1)
    assert pexpiretime(c, "u") == tat  # denials wrote nothing
    v = throttle(c, "u", *p)
    assert (v["allowed"], v["remaining"], v["retry_after_ms"]) == (1, 0, -1)
    c.close()


def test_retry_after_is_exact_to_the_millisecond(r):
    """2 per second, burst 3 (T = 500 ms), full bucket: a COST 2 request fits from TAT - T.
    Every denial says exactly how far that instant is from when it was decided, and the
    same request, re-asked with RL.PEEK until it passes, is denied before that instant and
    allowed from it on."""
    p = ("LIMIT", 2, "WINDOW", 1000, "BURST", 3)
    for attempt in range(10):  # a busy machine may stall a whole second more than once
        key = f"k{attempt}"
        assert [throttle(r, key, *p)["allowed"] for _ in range(3)] == [1, 1, 1]
        target = pexpiretime(r, key) - 500
        before, raw, after = bracketed(r, "RL.THROTTLE", key, "COST", 2, *p)
        if verdict(raw)["allowed"] == 0:
            break  # else the machine stalled for a whole second: try again
    else:
        pytest.fail("a full bucket let a COST 2 request through ten times")
    assert before <= target - verdict(raw)["retry_after_ms"] <= after
    deadline = time.monotonic() + 15
    while True:
        before, raw, after = bracketed(r, "RL.PEEK", key, "COST", 2, *p)
        v = verdict(raw)
        if v["allowed"]:
            assert after >= target and v["retry_after_ms"] == -1
            break
        assert before < target, "denied although the server clock had reached the instant"
        assert before <= target - v["retry_after_ms"] <= after and v["retry_after_ms"] >= 1
        assert time.monotonic() < deadline, "never allowed"
        time.sleep(0.005)
    assert throttle(r, key, "COST", 2, *p)["allowed"] == 1


def test_waiting_retry_after_ms_lets_the_same_request_pass(r):
    """4 per second, burst 1 (T = 250 ms): a denied request re-asked at once is told about
    the same wait; once retry_after_ms has passed on the server's clock, it passes."""
    p = ("LIMIT", 4, "WINDOW", 1000, "BURST", 1)
    for attempt in range(10):  # a busy machine may stall 250 ms more than once
        pipe = r.pipeline(transaction=False)
        for _ in range(3):
            pipe.execute_command("RL.THROTTLE", f"k{attempt}", *p)
        pipe.time()
        *replies, decided_by = pipe.execute()
        allowed, first, again = map(verdict, replies)
        if allowed["allowed"] == 1 and first["allowed"] == again["allowed"] == 0:
            break  # else the server stalled for 250 ms inside the pipeline: try again
    else:
        pytest.fail("a burst of 1 let two back-to-back requests through ten times")
    assert 1 <= again["retry_after_ms"] <= first["retry_after_ms"] <= 250
    # Waited on the server's clock: the wait counts from the denial's instant (at most
    # `decided_by`), on the clock that decides.
    wait_until(lambda: server_ms(r) >= ms(decided_by) + again["retry_after_ms"],
               what="retry_after_ms to pass")
    assert throttle(r, f"k{attempt}", *p)["allowed"] == 1


def test_throttle_decides_and_consumes_exactly_like_allow(r):
    """The same requests on two keys, one through RL.ALLOW, one through RL.THROTTLE, under
    inline, stored and default policies, are allowed and denied alike and leave the keys
    with the same policy and usage."""
    r.config_set("rl.default-limit", 5)
    r.config_set("rl.default-window-ms", HOUR)
    config(r, "a:stored", 6, HOUR, "BURST", 7)
    config(r, "b:stored", 6, HOUR, "BURST", 7)
    costs = [1, 3, 2, 4, 1, 1, 2, 1]
    for suffix, opts in [("inline", ("LIMIT", 5, "WINDOW", HOUR, "BURST", 6)),
                         ("stored", ()), ("default", ())]:
        a = [r.execute_command("RL.ALLOW", f"a:{suffix}", "COST", n, *opts) for n in costs]
        b = [throttle(r, f"b:{suffix}", "COST", n, *opts)["allowed"] for n in costs]
        assert a == b and 0 < sum(a) < len(a), suffix
        # Same usage: the TATs differ only by when the first request came.
        ia, ib = (r.execute_command("RL.PEEK", f"{x}:{suffix}", *opts) for x in "ab")
        assert ia[:3] == ib[:3] and abs(ia[4] - ib[4]) < 5000


# --- RL.PEEK -----------------------------------------------------------------------------


def test_peek_answers_for_a_hypothetical_request_and_writes_nothing(r):
    """RL.PEEK replies what RL.THROTTLE would, and changes nothing: not the value (digest),
    the expiry, the key count, the module's counters, or a WATCH on the key."""
    config(r, "k", 10, HOUR, "BURST", 4, "IDLE", 2 * HOUR)
    assert throttle(r, "k", "COST", 3)["allowed"] == 1
    kept = (r.execute_command("DEBUG", "DIGEST"), digest(r, "k"), pexpiretime(r, "k"),
            r.dbsize())
    checks = {k: v for k, v in rl_stats(r).items() if k.startswith("rl_checks")}
    with r.pipeline() as w:
        w.watch("k")
        assert peek(r, "k")["allowed"] == 1
        v = peek(r, "k", "COST", 2)
        assert (v["allowed"], v["limit"], v["remaining"]) == (0, 4, 1)
        assert 0 < v["retry_after_ms"] <= 360_000
        assert peek(r, "k", "COST", 5)["retry_after_ms"] == -1
        # The stored policy applies whatever the call passes (stored beats inline).
        assert peek(r, "k", "LIMIT", 100, "WINDOW", HOUR, "COST", 5)["retry_after_ms"] == -1
        w.multi()
        w.ping()
        assert w.execute() == [True]  # the WATCH saw no change
    assert (r.execute_command("DEBUG", "DIGEST"), digest(r, "k"), pexpiretime(r, "k"),
            r.dbsize()) == kept
    assert {k: v for k, v in rl_stats(r).items() if k.startswith("rl_checks")} == checks
    # What it foretold happens: the one request left passes, the next is denied.
    predicted = peek(r, "k")
    got = throttle(r, "k")
    assert (got["allowed"], got["remaining"]) == (predicted["allowed"], predicted["remaining"])
    assert throttle(r, "k")["allowed"] == 0


def test_peek_on_an_absent_key_answers_for_an_empty_bucket_and_creates_nothing(r):
    """An absent key is an empty bucket: RL.PEEK answers for it under the inline or default
    policy (or errors without any), and creates no key."""
    live = rl_stats(r)["rl_live_buckets"]
    assert peek(r, "absent", "LIMIT", 10, "WINDOW", HOUR, "BURST", 3) == dict(
        zip(FIELDS, [1, 3, 2, -1, 360_000]))
    with pytest.raises(redis.ResponseError, match="no rate limit for key"):
        peek(r, "absent")
    r.config_set("rl.default-limit", 5)
    assert peek(r, "absent", "COST", 2)["remaining"] == 3
    assert r.dbsize() == 0 and rl_stats(r)["rl_live_buckets"] == live


def test_peek_works_on_a_read_only_replica(servers):
    """RL.PEEK is read-only: a read-only replica answers it as its master does and stays
    equal to it, while RL.THROTTLE there is refused."""
    master, replica = start_pair(servers)
    m, rc = master.client(), replica.client()
    config(m, "cfg", 10, HOUR, "BURST", 4)
    assert throttle(m, "cfg", "COST", 3)["allowed"] == 1
    assert throttle(m, "use", "LIMIT", 10, "WINDOW", HOUR)["allowed"] == 1
    replicated(m)
    kept = snapshot(rc)
    for key, opts in [("cfg", ()), ("cfg", ("COST", 2)), ("use", ("LIMIT", 10, "WINDOW", HOUR))]:
        on_master, on_replica = peek(m, key, *opts), peek(rc, key, *opts)
        assert on_replica["allowed"] == on_master["allowed"]
        assert on_replica["remaining"] == on_master["remaining"]
        assert abs(on_replica["reset_after_ms"] - on_master["reset_after_ms"]) < 5000
    assert snapshot(rc) == kept == snapshot(m)
    with pytest.raises(redis.exceptions.ReadOnlyError):
        throttle(rc, "use", "LIMIT", 10, "WINDOW", HOUR)


# --- RL.INFO -----------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 3])
def test_info_of_an_absent_key_is_nil(server, r, protocol):
    """RL.INFO on an absent key is nil (RESP2 and RESP3) and creates nothing."""
    assert rl_info(server.port, "absent", protocol=protocol, text=True) is None
    assert r.dbsize() == 0


@pytest.mark.parametrize("protocol", [2, 3])
def test_info_shows_the_policy_its_source_and_the_live_state(server, r, protocol):
    """RL.INFO is a map (RESP2: a flat array) of source, limit, window_ms, burst, idle_ms,
    shadow, scale_percent, remaining, reset_after_ms, for a stored policy, a SHADOW one,
    and a usage-only key with and without a default policy."""
    config(r, "cfg", 10, HOUR, "BURST", 4, "IDLE", 2 * HOUR)
    assert throttle(r, "cfg", "COST", 3)["allowed"] == 1
    restore_shadow(r, "sh", 2, HOUR)
    assert throttle(r, "use", "LIMIT", 10, "WINDOW", HOUR)["allowed"] == 1

    info = rl_info(server.port, "cfg", protocol=protocol, text=True)
    assert list(info) == list(INFO_FIELDS)
    assert 1_080_000 - 10_000 < info.pop("reset_after_ms") <= 1_080_000
    assert info == {"source": "stored", "limit": 10, "window_ms": HOUR, "burst": 4,
                    "idle_ms": 2 * HOUR, "shadow": 0, "scale_percent": 100, "remaining": 1}
    assert rl_info(server.port, "sh", protocol=protocol, text=True) == {
        "source": "stored", "limit": 2, "window_ms": HOUR, "burst": 2, "idle_ms": 0,
        "shadow": 1, "scale_percent": 100, "remaining": 2, "reset_after_ms": 0}
    info = rl_info(server.port, "use", protocol=protocol, text=True)
    assert 360_000 - 10_000 < info.pop("reset_after_ms") <= 360_000
    assert info == {"source": "none", "limit": None, "window_ms": None, "burst": None,
                    "idle_ms": None, "shadow": None, "scale_percent": 100, "remaining": None}
    r.config_set("rl.default-limit", 5)
    info = rl_info(server.port, "use", protocol=protocol, text=True)
    info.pop("reset_after_ms")
    assert info == {"source": "default", "limit": 5, "window_ms": 1000, "burst": 5,
                    "idle_ms": 0, "shadow": 0, "scale_percent": 100, "remaining": 0}


def test_info_shows_the_scale_and_remaining_under_the_scaled_policy(server, r):
    """At rl.scale-percent 50 a stored 10 per hour, burst 4, is shown as stored, with
    scale_percent 50 and `remaining` counted in the scaled bucket of 2."""
    config(r, "cfg", 10, HOUR, "BURST", 4)
    r.config_set("rl.scale-percent", 50)
    info = rl_info(server.port, "cfg", text=True)
    assert (info["limit"], info["burst"], info["scale_percent"], info["remaining"]) == (10, 4, 50, 2)
    assert throttle(r, "cfg")["allowed"] == 1
    assert rl_info(server.port, "cfg", text=True)["remaining"] == 1


# --- RL.RESET ----------------------------------------------------------------------------


def test_reset_forgets_usage_and_keeps_the_stored_policy(r):
    """On a configured key RL.RESET replies the backlog it forgot (to the ms), empties the
    bucket (a full burst passes again, then the stored policy denies), restarts the IDLE
    expiry from now, and counts in rl_resets; a key with nothing to forget replies 0."""
    config(r, "k", 10, HOUR, "BURST", 4, "IDLE", 5000)
    assert throttle(r, "k", "COST", 3)["allowed"] == 1
    tat = pexpiretime(r, "k")  # the TAT: it is later than now + IDLE
    resets = rl_stats(r)["rl_resets"]
    before, forgotten, after = bracketed(r, "RL.RESET", "k")
    assert before <= tat - forgotten <= after
    assert before + 5000 <= pexpiretime(r, "k") <= after + 5000
    assert rl_stats(r)["rl_resets"] == resets + 1
    assert [throttle(r, "k")["allowed"] for _ in range(5)] == [1, 1, 1, 1, 0]
    config(r, "fresh", 10, HOUR)
    assert r.execute_command("RL.RESET", "fresh") == 0
    assert r.execute_command("RL.RESET", "absent") == 0
    assert r.exists("fresh") == 1 and rl_stats(r)["rl_resets"] == resets + 1


def test_reset_deletes_a_usage_only_key(r):
    """A usage-only key has nothing to keep: RL.RESET deletes it (and its bucket), replying
    the backlog forgotten; another type's key is refused with WRONGTYPE."""
    p = ("LIMIT", 10, "WINDOW", HOUR)
    assert throttle(r, "u", "COST", 2, *p)["allowed"] == 1
    tat = pexpiretime(r, "u")
    live = rl_stats(r)["rl_live_buckets"]
    before, forgotten, after = bracketed(r, "RL.RESET", "u")
    assert before <= tat - forgotten <= after and forgotten > 700_000
    assert r.exists("u") == 0 and rl_stats(r)["rl_live_buckets"] == live - 1
    assert throttle(r, "u", "COST", 10, *p)["allowed"] == 1  # a full bucket again
    r.set("s", "x")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.execute_command("RL.RESET", "s")


def test_reset_replicates_as_its_effect(servers):
    """RL.RESET reaches the replica as what it did (DEL, or RL.APPLY with the empty bucket
    and new expiry), never as RL.RESET: the replica ends with the master's digests and
    expiries."""
    master, replica = start_pair(servers)
    m, rc = master.client(), replica.client()
    config(m, "cfg:idle", 10, HOUR, "BURST", 4, "IDLE", HOUR)
    config(m, "cfg:plain", 5, HOUR)
    for key, opts in [("cfg:idle", ("COST", 3)), ("cfg:plain", ()),
                      ("use", ("LIMIT", 10, "WINDOW", HOUR))]:
        assert throttle(m, key, *opts)["allowed"] == 1
    replicated(m)
    for key in ("cfg:idle", "cfg:plain", "use", "absent"):
        m.execute_command("RL.RESET", key)
    replicated(m)
    assert sorted(m.keys()) == [b"cfg:idle", b"cfg:plain"]
    assert snapshot(rc) == snapshot(m)
    assert rc.execute_command("DEBUG", "DIGEST") == m.execute_command("DEBUG", "DIGEST")
    assert calls(rc, "rl.reset") == 0 and calls(m, "rl.reset") == 4
    assert calls(rc, "del") == 1
    assert rc.info("rl")["rl_live_buckets"] == 2


# --- command metadata --------------------------------------------------------------------


def test_command_info_gives_flags_arity_and_key_positions(r):
    """COMMAND INFO: flags, arity, first/last/step key, and key-spec flags, as clients, ACLs
    and Cluster routing rely on; RL.TOP is keyless."""
    names = ("rl.throttle", "rl.peek", "rl.info", "rl.reset", "rl.top")
    info = {c[0].decode(): c for c in raw_command(r, "COMMAND", "INFO", *names)}
    expected = {
        # name: (arity, must have, must not have, key positions, key-spec flags)
        "rl.throttle": (-2, {"write", "denyoom", "fast"}, {"readonly"}, (1, 1, 1),
                        {"RW", "access", "update"}),
        "rl.peek": (-2, {"readonly", "fast"}, {"write", "denyoom"}, (1, 1, 1), {"RO", "access"}),
        "rl.info": (2, {"readonly", "fast"}, {"write", "denyoom"}, (1, 1, 1), {"RO", "access"}),
        # access: RL.RESET's reply (the backlog) tells usage (tests/test_acl_reveal.py).
        "rl.reset": (2, {"write", "fast"}, {"readonly", "denyoom"}, (1, 1, 1),
                     {"RW", "access", "delete"}),
        "rl.top": (-1, {"readonly"}, {"write", "denyoom"}, (0, 0, 0), None),
    }
    for name, (arity, has, lacks, keys, spec_flags) in expected.items():
        cmd = info[name]
        flags = {f.decode() for f in cmd[2]}
        assert cmd[1] == arity and has <= flags and not lacks & flags, (name, cmd)
        assert tuple(cmd[3:6]) == keys, name
        specs = cmd[8]
        if spec_flags is None:
            assert specs == [], name
        else:
            assert len(specs) == 1 and {f.decode() for f in pairs(specs[0])[b"flags"]} == spec_flags
    assert r.command_getkeys("RL.THROTTLE", "user:1", "COST", 2) == ["user:1"]
    assert r.command_getkeys("RL.PEEK", "user:2") == ["user:2"]
    with pytest.raises(redis.ResponseError, match="no key arguments"):
        r.command_getkeys("RL.TOP", 5)


def test_command_docs_describe_the_new_commands(r):
    """COMMAND DOCS: a summary, the module, and every argument: THROTTLE and PEEK take
    RL.ALLOW's and WITHPOLICY, INFO and RESET a key, TOP an optional count; RL.CONFIG lists
    SHADOW."""
    names = ("rl.throttle", "rl.peek", "rl.info", "rl.reset", "rl.top", "rl.config")
    docs = {k.decode(): pairs(v) for k, v in pairs(raw_command(r, "COMMAND", "DOCS", *names)).items()}
    assert set(docs) == set(names)
    for name, doc in docs.items():
        assert doc[b"summary"] and doc[b"module"] == b"rl" and doc[b"complexity"], name
    args = {n: [pairs(a) for a in d[b"arguments"]] for n, d in docs.items()}
    for name in ("rl.throttle", "rl.peek"):
        # key, COST, the inline limit, its kind (GCRA|SLIDING), more limits after AND,
        # WITHPOLICY (issue 17).
        assert [a.get(b"token") for a in args[name]] == [None, b"COST", None, None, b"AND", b"WITHPOLICY"]
        assert (args[name][5][b"type"], args[name][5][b"flags"]) == (b"pure-token", [b"optional"])
        inline = [pairs(a) for a in args[name][2][b"arguments"]]
        assert [a[b"token"] for a in inline] == [b"LIMIT", b"WINDOW", b"BURST"]
        kinds = [pairs(a)[b"token"] for a in args[name][3][b"arguments"]]
        assert (args[name][3][b"type"], kinds) == (b"oneof", [b"GCRA", b"SLIDING"])
        assert b"multiple_token" in args[name][4][b"flags"]
    for name in ("rl.info", "rl.reset"):
        assert [(a[b"name"], a[b"type"]) for a in args[name]] == [(b"key", b"key")]
    (count,) = args["rl.top"]
    assert (count[b"name"], count[b"type"], count[b"flags"]) == (b"count", b"integer", [b"optional"])
    shadow, more = args["rl.config"][-2:]
    assert (shadow[b"token"], shadow[b"type"], shadow[b"flags"]) == (b"SHADOW", b"pure-token", [b"optional"])
    assert (more[b"token"], more[b"type"]) == (b"AND", b"block")
