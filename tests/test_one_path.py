"""Issue 17 end to end: reconfiguration carries exactly the usage still live under the old
limits, reports agree with each other and with the key's TTL, and every documented error is
the one a client gets. Each test is one example from the issue (written to fail on the module
before it) or one of the rules decided where the README was silent.

The server runs under the clock shim (cluster/clockshift.c) in its live mode, so a test steps
its clock instead of sleeping: "30 s later" is one write to the shift file. The exact
arithmetic is property-tested on the pure core (core/src/state_tests.rs,
core/src/decide_tests.rs)."""

import pytest
import redis

from helpers import HOUR, allow, at_once, config, ms, peek, rl_info, server_ms, throttle, wait_until

NAMES = ("allowed", "limit", "remaining", "retry_after_ms", "reset_after_ms", "binding")


@pytest.fixture(scope="module")
def stepped(tmp_path_factory, clockshift):
    """One server whose clock the tests step: `at(ms)` moves it `ms` past where it started
    (the shift is relative to the real clock, which keeps running)."""
    from server import RedisServer
    d = tmp_path_factory.mktemp("stepped")
    shift = d / "shift"
    shift.write_text("0")
    s = RedisServer(d / "server")
    s.env = {"LD_PRELOAD": str(clockshift), "RL_CLOCK_SHIFT_FILE": str(shift)}
    s.start()
    yield s, shift
    s.stop()


@pytest.fixture
def clock(stepped):
    """(client, at): `at(offset_ms)` sets the server's clock to `offset_ms` after the test's
    start (plus the little real time that passes, which the tests allow for with windows of
    a second or more between the instants they compare)."""
    s, shift = stepped
    c = s.client()
    c.execute_command("FLUSHALL", "SYNC")
    c.config_set("rl.scale-percent", 100)
    shift.write_text("0")
    start = server_ms(c)

    def at(offset):
        target = start + offset
        shift.write_text(str(target - (server_ms(c) - int(shift.read_text()))))
        wait_until(lambda: server_ms(c) >= target, what="the clock to step")
    yield c, at
    shift.write_text("0")
    c.close()


def named(reply):
    return dict(zip(NAMES, reply))


# --- the examples of the issue ---------------------------------------------------------------


def test_a_round_trip_through_gcra_changes_nothing(clock):
    c, at = clock
    config(c, "k", 10, 60_000, "SLIDING")
    assert [allow(c, "k") for _ in range(5)] == [1] * 5
    assert named(c.execute_command("RL.PEEK", "k"))["remaining"] == 4
    at(30_000)
    # Both at one instant (MULTI): the round trip composes to nothing.
    at_once(c, ("RL.CONFIG", "k", 10, 60_000), ("RL.CONFIG", "k", 10, 60_000, "SLIDING"))
    assert named(c.execute_command("RL.PEEK", "k"))["remaining"] == 4
    # At most 10 in any minute: 5 more now, not 10.
    assert sum(allow(c, "k") for _ in range(15)) == 5


def test_requests_the_window_left_behind_are_never_carried(clock):
    c, at = clock
    for key, extra in (("plain", False), ("pruned", True)):
        at(0)
        config(c, key, 10, 60_000, "SLIDING")
        assert named(c.execute_command("RL.THROTTLE", key, "COST", 10))["allowed"] == 1
        if extra:
            at(61_000)
            assert allow(c, key) == 1  # prunes the first ten, and is itself live at 120 s
    at(120_000)
    got = {}
    for key in ("plain", "pruned"):
        config(c, key, 9, 6_545_900)
        got[key] = named(c.execute_command("RL.THROTTLE", key))
    # Nothing that had left the window counts; the request at 61 s counts once.
    assert got["plain"]["allowed"] == 1 and got["pruned"]["allowed"] == 1
    assert got["pruned"]["remaining"] == got["plain"]["remaining"] - 1


def test_a_longer_window_revives_nothing_the_old_one_forgot(clock):
    c, at = clock
    config(c, "k", 1, 1000, "SLIDING")
    assert allow(c, "k") == 1
    at(2000)
    config(c, "k", 1, 10_000, "SLIDING")
    assert named(c.execute_command("RL.THROTTLE", "k"))["allowed"] == 1


@pytest.mark.parametrize("policy", [("LIMIT", 10, "WINDOW", 60_000, "SLIDING"),
                                    ("LIMIT", 10, "WINDOW", 60_000, "AND", "LIMIT", 100, "WINDOW", HOUR)])
def test_a_usage_only_keys_reset_is_its_ttl_and_what_reset_forgets(clock, policy):
    c, _ = clock
    for _ in range(5):
        assert allow(c, "k", *policy) == 1
    t0, info, pttl, t1 = at_once(c, ("TIME",), ("RL.INFO", "k"), ("PTTL", "k"), ("TIME",))
    info = dict(zip(info[::2], info[1::2]))
    # Read at two instants within [t0, t1]: they differ by no more than the time between.
    assert 0 <= info[b"reset_after_ms"] - pttl <= ms(t1) - ms(t0)
    assert pttl > 59_000
    # After PERSIST the key still knows its backlog: RL.RESET forgets what RL.INFO showed.
    c.persist("k")
    t0, info, forgotten, t1 = at_once(c, ("TIME",), ("RL.INFO", "k"), ("RL.RESET", "k"), ("TIME",))
    shown = dict(zip(info[::2], info[1::2]))[b"reset_after_ms"]
    assert 0 <= shown - forgotten <= ms(t1) - ms(t0) and forgotten > 59_000
    assert not c.exists("k")


def test_reset_after_ms_is_until_every_limit_is_empty(clock):
    c, _ = clock
    config(c, "k", 10, 1000, "AND", 100, 60_000)
    for _ in range(3):
        allow(c, "k")
    t0, v, info, t1 = at_once(c, ("TIME",), ("RL.PEEK", "k"), ("RL.INFO", "k"), ("TIME",))
    v, info = named(v), dict(zip(info[::2], info[1::2]))
    each = [dict(zip(m[::2], m[1::2]))[b"reset_after_ms"] for m in info[b"limits"]]
    # The binding limit is the per-second one; reset is the per-minute one's (RL.PEEK's after
    # one more request: 600 ms more of it).
    assert v["binding"] == 0 and info[b"reset_after_ms"] == max(each) == each[1]
    assert 0 <= v["reset_after_ms"] - 600 - info[b"reset_after_ms"] <= ms(t1) - ms(t0)
    assert v["reset_after_ms"] > 2000


def test_info_does_not_mix_clamped_and_stored_values(clock):
    c, _ = clock
    config(c, "k", 10, HOUR, "AND", 100, HOUR)
    assert named(c.execute_command("RL.THROTTLE", "k", "COST", 10))["allowed"] == 1
    # Tightened below the backlog: read as one full bucket, everywhere.
    config(c, "k", 10, 60_000, "AND", 100, HOUR)
    info = rl_info(c.connection_pool.connection_kwargs["port"], "k")
    each = [dict(zip(m[::2], m[1::2]))[b"reset_after_ms"] for m in info[b"limits"]]
    assert info[b"reset_after_ms"] == max(each)
    assert each[0] <= 60_000


def test_the_retry_peek_tells_after_a_tightening_holds(clock):
    c, at = clock
    config(c, "k", 10, 60_000)
    assert named(c.execute_command("RL.THROTTLE", "k", "COST", 10))["allowed"] == 1
    config(c, "k", 10, 6000)
    t0, peeked, thr, t1 = at_once(c, ("TIME",), ("RL.PEEK", "k"), ("RL.PEEK", "k"), ("TIME",))
    peeked = named(peeked)
    assert peeked["allowed"] == 0 and 0 < peeked["retry_after_ms"] <= 600
    # Without any write in between, the advertised retry passes.
    at(ms(t1) - ms(t0) + 600 + 5)
    assert allow(c, "k") == 1


def test_peek_tells_what_throttle_would(clock):
    c, _ = clock
    config(c, "k", 3, HOUR, "SLIDING", "AND", 2, 1000)
    for cost in (1, 1, 2, 1):
        peeked, thrown = at_once(c, ("RL.PEEK", "k", "COST", cost), ("RL.THROTTLE", "k", "COST", cost))
        assert peeked == thrown


def test_five_inline_limits_are_the_documented_error(r):
    limit = ["LIMIT", 1, "WINDOW", 60_000, "BURST", 1, "GCRA"]
    args = ["COST", 1] + limit + sum((["AND"] + limit for _ in range(4)), [])
    for command in ("RL.ALLOW", "RL.THROTTLE", "RL.PEEK"):
        with pytest.raises(redis.ResponseError, match="^too many limits: a key holds at most 4"):
            r.execute_command(command, "k", *args)
    assert not r.exists("k")


# --- the rules decided where the README was silent -------------------------------------------


def test_on_a_tie_the_first_limit_given_binds(r):
    config(r, "k", 5, HOUR, "AND", 5, HOUR, "SLIDING")
    assert named(r.execute_command("RL.THROTTLE", "k"))["binding"] == 0
    config(r, "d", 1, HOUR, "SLIDING", "AND", 1, HOUR, "SLIDING")
    allow(r, "d")
    v = named(r.execute_command("RL.THROTTLE", "d"))
    assert (v["allowed"], v["binding"]) == (0, 0)


def test_scale_percent_scales_a_sliding_count_and_keeps_its_window(r):
    config(r, "k", 10, HOUR, "SLIDING")
    r.config_set("rl.scale-percent", 50)
    try:
        v = named(r.execute_command("RL.THROTTLE", "k", "WITHPOLICY"))
        assert (v["limit"], v["remaining"]) == (5, 4)
        assert r.execute_command("RL.PEEK", "k", "WITHPOLICY")[7] == [[b"sliding", 5, HOUR, 5]]
        r.config_set("rl.scale-percent", 1)
        assert named(r.execute_command("RL.PEEK", "k"))["limit"] == 1
    finally:
        r.config_set("rl.scale-percent", 100)


def test_a_usage_only_key_read_under_another_kind(clock):
    c, at = clock
    gcra = ("LIMIT", 10, "WINDOW", 60_000)
    sliding = ("LIMIT", 10, "WINDOW", 60_000, "SLIDING")
    assert allow(c, "k", *gcra, "COST", 4) == 1
    # Read under SLIDING, the 24 s of backlog are the 4 requests that limit admits in them.
    assert peek(c, "k", *sliding)["remaining"] == 5
    # RL.INFO shows the usage as recorded, and it still expires with its own backlog.
    info = rl_info(c.connection_pool.connection_kwargs["port"], "k")
    assert info[b"source"] == b"none" and info[b"reset_after_ms"] <= 24_000
    at(30_000)
    # The GCRA backlog has drained: under SLIDING nothing is carried any more.
    assert peek(c, "k", *sliding)["remaining"] == 9


# --- WITHPOLICY (for the clients' RateLimit-Policy headers, issue 18) -----------------------


def test_withpolicy_tells_the_enforced_policy_in_resp2(r):
    config(r, "k", 10, HOUR, "SLIDING", "AND", 100, 60_000, "BURST", 20)
    # The stored policy beats the inline one the call brings, and the reply says so.
    reply = r.execute_command("RL.THROTTLE", "k", "LIMIT", 5, "WINDOW", 1000, "WITHPOLICY")
    assert len(reply) == 8
    allowed, limit, remaining, retry, reset, binding, source, limits = reply
    assert (allowed, retry, source) == (1, -1, b"stored")
    assert limits == [[b"sliding", 10, HOUR, 10], [b"gcra", 100, 60_000, 20]]
    assert (limit, remaining, binding) == (10, 9, 0)
    # One limit: binding is there, 0. Inline and default sources.
    reply = r.execute_command("RL.PEEK", "u", "LIMIT", 5, "WINDOW", 1000, "WITHPOLICY")
    assert reply[5:] == [0, b"inline", [[b"gcra", 5, 1000, 5]]]
    r.config_set("rl.default-limit", 7)
    r.config_set("rl.default-window-ms", 2000)
    assert r.execute_command("RL.PEEK", "d", "WITHPOLICY")[5:] == [0, b"default", [[b"gcra", 7, 2000, 7]]]
    # As enforced: after rl.scale-percent.
    r.config_set("rl.scale-percent", 50)
    try:
        assert r.execute_command("RL.PEEK", "d", "WITHPOLICY")[7] == [[b"gcra", 7, 4000, 3]]
    finally:
        r.config_set("rl.scale-percent", 100)
    # Without WITHPOLICY the replies keep their shapes; RL.ALLOW does not take it.
    assert len(r.execute_command("RL.PEEK", "u", "LIMIT", 5, "WINDOW", 1000)) == 5
    with pytest.raises(redis.ResponseError, match="RL.ALLOW takes the options"):
        r.execute_command("RL.ALLOW", "k", "WITHPOLICY")
    with pytest.raises(redis.ResponseError, match="RL.THROTTLE and RL.PEEK take the options"):
        r.execute_command("RL.PEEK", "k", "NOPE")


def test_withpolicy_in_resp3_is_a_map_with_limit_maps(server):
    c = server.client(protocol=3)
    c.execute_command("FLUSHALL", "SYNC")
    config(c, "k", 10, HOUR, "SLIDING", "AND", 100, 60_000, "BURST", 20)
    got = c.execute_command("RL.THROTTLE", "k", "WITHPOLICY")
    assert [k.decode() for k in got] == list(NAMES) + ["source", "limits"]
    assert (got[b"allowed"], got[b"remaining"], got[b"binding"], got[b"source"]) == (1, 9, 0, b"stored")
    assert [{k.decode(): v for k, v in m.items()} for m in got[b"limits"]] == [
        {"kind": b"sliding", "limit": 10, "window_ms": HOUR, "burst": 10},
        {"kind": b"gcra", "limit": 100, "window_ms": 60_000, "burst": 20},
    ]
    c.close()


# --- replicas and the AOF after random workloads with reconfigurations -----------------------


def test_replicas_and_aof_restarts_end_identical_after_random_reconfigurations(servers):
    """A random workload of checks (inline and stored), reconfigurations between kinds and
    numbers of limits (several within one MULTI: pending changes), resets and PERSIST on a
    master with a replica and an AOF: the replica, and the master restarted from its AOF,
    hold the same bytes (DEBUG DIGEST-VALUE) and expiries."""
    import random
    from helpers import replicated, snapshot
    m, rep = start_pair_with_aof(servers)
    mc = m.client()
    rng = random.Random(17)
    limits = [("10", "60000"), ("3", "1000", "SLIDING"), ("100", str(HOUR), "BURST", "20"),
              ("5", str(HOUR), "SLIDING"), ("1", "500")]

    def policy():
        chosen = rng.sample(limits, rng.randint(1, 3))
        return [a for i, l in enumerate(chosen) for a in (["AND"] if i else []) + list(l)]

    def inline():
        chosen = rng.sample(limits, rng.randint(1, 2))
        out = []
        for i, l in enumerate(chosen):
            out += (["AND"] if i else []) + ["LIMIT", l[0], "WINDOW", l[1]] + list(l[2:])
        return out

    keys = [f"k{i}" for i in range(12)]
    for _ in range(600):
        k, roll = rng.choice(keys), rng.random()
        if roll < 0.45:
            mc.execute_command(rng.choice(["RL.ALLOW", "RL.THROTTLE"]), k, "COST", rng.randint(1, 3), *inline())
        elif roll < 0.6:
            try:
                mc.execute_command("RL.CONFIG", k, *policy())
            except redis.ResponseError:
                pass  # a key holding a kind the new limit rejects the burst of, etc.
        elif roll < 0.7:
            at_once(mc, ("RL.CONFIG", k, *policy()), ("RL.CONFIG", k, *policy()))
        elif roll < 0.75:
            mc.execute_command("RL.RESET", k)
        elif roll < 0.78:
            mc.persist(k)
        else:
            mc.execute_command("RL.ALLOW", k, *inline())
    replicated(mc)
    want = snapshot(mc, keys)
    assert snapshot(rep.client(), keys) == want
    m.restart()
    assert snapshot(m.client(), keys) == want


def start_pair_with_aof(servers):
    from helpers import start_pair
    return start_pair(servers, master={"appendonly": "yes", "appendfsync": "always"})
