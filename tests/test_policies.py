"""Issue 11 end to end: the SLIDING kind, several limits per key (all-or-nothing), stored
beats inline, and their persistence and replication (RDB v2 with v1 files still loading,
RL.APPLY's set form, DUMP/RESTORE, COPY, AOF rewrite, a real replica).

The exact arithmetic (retry at `retry_after_ms` passes, a ms earlier does not; "at most N in
any window" on random traces) is property-tested on the pure core (core/src/sliding_tests.rs,
core/src/limits_tests.rs); these tests check what only a server shows, without timing asserts:
every window is an hour unless a test waits for one to pass, and then it polls."""

import json
import shutil
from pathlib import Path

import pytest
import redis

from helpers import (HOUR, all_aof_bytes, allow, at_once, config, digest, pexpiretime, rewrite_aof, rl_info,
                     start_pair, replicated, wait_until)
from payload import build_dump, parse_dump

FIXTURES = Path(__file__).resolve().parent / "fixtures"
NAMES = ("allowed", "limit", "remaining", "retry_after_ms", "reset_after_ms", "binding")


def throttle(c, key, *opts, command="RL.THROTTLE"):
    """RL.THROTTLE/RL.PEEK as a dict: 5 fields, 6 (`binding`) under several limits."""
    return verdict(c.execute_command(command, key, *opts))


def verdict(reply):
    """An RL.THROTTLE/RL.PEEK reply as a dict (see `throttle`)."""
    if isinstance(reply, dict):
        return {k.decode(): v for k, v in reply.items()}
    assert len(reply) in (5, 6), reply
    return dict(zip(NAMES, reply))


def info(server, key):
    return rl_info(server.port, key, text=True)


# --- the SLIDING kind ---------------------------------------------------------------------


def test_the_brief_example_under_sliding(r):
    config(r, "user123", 10, 60000, "SLIDING")
    assert [allow(r, "user123") for _ in range(15)] == [1] * 10 + [0] * 5
    v = throttle(r, "user123")
    # The 11th passes when the 1st leaves the window: at most 60 s from now.
    assert v["allowed"] == 0 and v["remaining"] == 0 and 0 < v["retry_after_ms"] <= 60000
    assert v["limit"] == 10 and v["reset_after_ms"] <= 60000


def test_the_11th_passes_when_the_1st_leaves_the_window(r):
    config(r, "k", 3, 400, "SLIDING")
    # At one instant (one MULTI), so that no request leaves the 400 ms window in between.
    *allowed, v = at_once(r, *[("RL.ALLOW", "k")] * 4, ("RL.THROTTLE", "k"))
    assert allowed == [1, 1, 1, 0]
    retry = verdict(v)["retry_after_ms"]
    assert 0 < retry <= 400
    # Denials change nothing: once the window has moved past the first, exactly 3 pass again.
    wait_until(lambda: throttle(r, "k", command="RL.PEEK")["allowed"] == 1, timeout=10)
    assert at_once(r, *[("RL.ALLOW", "k")] * 4) == [1, 1, 1, 0]


def test_inline_sliding_keys_expire_when_their_window_is_empty(r):
    opts = ("LIMIT", 2, "WINDOW", HOUR, "SLIDING")
    assert [allow(r, "u", *opts) for _ in range(3)] == [1, 1, 0]
    v = throttle(r, "u", *opts, command="RL.PEEK")
    assert (v["allowed"], v["limit"], v["remaining"]) == (0, 2, 0)
    # A usage-only key lives exactly until its newest entry leaves the window.
    assert abs(r.pttl("u") - v["reset_after_ms"]) <= 1000
    assert info(_server(r), "u")["source"] == "none"


def _server(r):
    """The server object behind a client of the shared server (for rl_info)."""

    class S:
        port = r.connection_pool.connection_kwargs["port"]

    return S


def test_a_request_heavier_than_a_sliding_limit_never_passes(r):
    config(r, "k", 5, HOUR, "SLIDING")
    v = throttle(r, "k", "COST", 6)
    assert (v["allowed"], v["remaining"], v["retry_after_ms"]) == (0, 5, -1)
    assert throttle(r, "k", "COST", 5)["allowed"] == 1


def test_resp3_replies_name_the_binding_limit(server):
    c = server.client(protocol=3)
    c.flushall()
    config(c, "k", 2, HOUR, "SLIDING", "AND", 100, HOUR)
    assert c.execute_command("RL.ALLOW", "k") is True
    v = c.execute_command("RL.THROTTLE", "k")
    assert [k.decode() for k in v] == list(NAMES)
    v = {k.decode(): x for k, x in v.items()}
    assert (v["allowed"], v["limit"], v["remaining"], v["binding"]) == (1, 2, 0, 0)
    assert c.execute_command("RL.ALLOW", "k") is False
    one = c.execute_command("RL.THROTTLE", "k", "LIMIT", 1, "WINDOW", 1)  # stored wins
    assert list(one)[-1] == b"binding"
    c.flushall()
    config(c, "single", 2, HOUR, "SLIDING")
    assert [k.decode() for k in c.execute_command("RL.PEEK", "single")] == list(NAMES[:5])
    c.close()


# --- several limits per key ---------------------------------------------------------------


def test_ten_per_second_and_a_daily_quota(r):
    config(r, "k", 10, 1000, "SLIDING", "AND", 15, HOUR * 24)
    *allowed, v = at_once(r, *[("RL.ALLOW", "k")] * 11, ("RL.THROTTLE", "k"))
    assert allowed == [1] * 10 + [0]
    v = verdict(v)
    assert (v["allowed"], v["binding"], v["limit"], v["remaining"]) == (0, 0, 10, 0)
    assert 0 < v["retry_after_ms"] <= 1000
    # Once the per-second limit has room for 5 again, the daily quota binds.
    wait_until(lambda: throttle(r, "k", "COST", 5, command="RL.PEEK")["allowed"] == 1, timeout=10)
    assert [allow(r, "k") for _ in range(6)] == [1] * 5 + [0]
    v = throttle(r, "k", command="RL.PEEK")
    assert (v["allowed"], v["binding"], v["limit"], v["remaining"]) == (0, 1, 15, 0)
    assert v["retry_after_ms"] > 1000


def test_a_denial_consumes_nothing_in_any_limit(r):
    config(r, "k", 5, HOUR, "SLIDING", "AND", 3, HOUR)
    assert [allow(r, "k") for _ in range(5)] == [1, 1, 1, 0, 0]
    assert throttle(r, "k", "COST", 2)["allowed"] == 0
    limits = info(_server(r), "k")["limits"]
    # The SLIDING limit admitted the denied requests on its own, yet recorded none of them.
    assert [l[b"remaining"] if isinstance(l, dict) else dict(zip(l[::2], l[1::2]))[b"remaining"]
            for l in limits] == [2, 0]


def test_rl_info_lists_every_limit(r):
    # A minute's window: the request stays in it for the rest of the test, however slow.
    config(r, "k", 10, 60_000, "SLIDING", "IDLE", HOUR, "AND", 1000, HOUR, "BURST", 50)
    allow(r, "k", "COST", 4)
    got = info(_server(r), "k")
    assert (got["source"], got["kind"], got["limit"], got["window_ms"], got["burst"]) == (
        "stored", "sliding", 10, 60_000, 10)
    assert (got["idle_ms"], got["shadow"], got["remaining"]) == (HOUR, 0, 6)
    limits = [dict(zip(l[::2], l[1::2])) for l in got["limits"]]
    assert [(l[b"kind"], l[b"limit"], l[b"window_ms"], l[b"burst"], l[b"remaining"]) for l in limits] == [
        (b"sliding", 10, 60_000, 10, 6), (b"gcra", 1000, HOUR, 50, 46)]


def test_reconfiguring_keeps_usage_across_kinds(r):
    config(r, "k", 10, HOUR)  # GCRA
    allow(r, "k", "COST", 7)
    config(r, "k", 10, HOUR, "SLIDING")  # a change of kind carries the backlog over
    assert throttle(r, "k", command="RL.PEEK")["remaining"] == 2
    config(r, "k", 10, HOUR, "SLIDING", "AND", 5, HOUR)  # an added limit starts empty
    assert [throttle(r, "k", command="RL.PEEK")[f] for f in ("remaining", "binding")] == [2, 0]
    # Back to one GCRA limit (and its one-word layout): the 7 requests still inside the
    # window are carried as 7 requests owed from the change, so 3 remain (2 after this one).
    # (Before issue 17 they were replayed at the instants they stood at, and leaked 3 of 7
    # on the way: a round trip gave room back.)
    config(r, "k", 10, HOUR)
    assert throttle(r, "k", command="RL.PEEK")["remaining"] == 2
    # RL.CONFIG records the change; the next write stores the carried usage, in the one-word
    # layout again (until then the key's size depends on whether the changes above fell in
    # one millisecond, which compose, or in several).
    assert allow(r, "k") == 1
    assert throttle(r, "k", command="RL.PEEK")["remaining"] == 1
    assert r.execute_command("MEMORY", "USAGE", "k") < 200


def test_reset_forgets_every_limit(r):
    config(r, "k", 2, HOUR, "SLIDING", "AND", 2, HOUR)
    allow(r, "k")
    assert 0 < r.execute_command("RL.RESET", "k") <= HOUR
    assert throttle(r, "k", command="RL.PEEK")["remaining"] == 1
    assert r.execute_command("RL.RESET", "k") == 0
    allow(r, "u", "LIMIT", 2, "WINDOW", HOUR, "SLIDING")
    assert r.execute_command("RL.RESET", "u") > 0 and not r.exists("u")


def test_shadow_applies_to_the_whole_set(r):
    config(r, "k", 1, HOUR, "SLIDING", "AND", 5, HOUR, "SHADOW")
    assert [allow(r, "k") for _ in range(3)] == [1, 1, 1]
    assert r.info("rl")["rl_checks_shadow_denied"] >= 2


# --- stored beats inline ------------------------------------------------------------------


@pytest.mark.parametrize("inline", [("LIMIT", 100, "WINDOW", 1000),
                                    ("LIMIT", 100, "WINDOW", 1000, "SLIDING"),
                                    ("LIMIT", 100, "WINDOW", 1000, "AND", "LIMIT", 100, "WINDOW", 10)])
def test_the_operators_stored_policy_beats_an_inline_one(r, inline):
    config(r, "abuser", 1, HOUR)
    assert [allow(r, "abuser", *inline) for _ in range(3)] == [1, 0, 0]
    # Without a stored policy, the inline one applies.
    assert allow(r, "fresh", *inline) == 1


def test_inline_beats_the_default(r):
    r.config_set("rl.default-limit", 1)
    assert [allow(r, "k", "LIMIT", 3, "WINDOW", HOUR, "SLIDING") for _ in range(4)] == [1, 1, 1, 0]


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (("10", "1000", "FIXED"), "unknown limit kind"),
    (("1", "1", "AND", "2", "2", "AND", "3", "3", "AND", "4", "4", "AND", "5", "5"), "too many limits"),
    (("1001", "1000", "SLIDING"), "a SLIDING limit must be an integer from 1 to 1000"),
    (("10", "4294967296", "SLIDING"), "a SLIDING window_ms must be"),
    (("10", "1000", "SLIDING", "BURST", "5"), "BURST applies to GCRA limits only"),
    (("10", "1000", "AND"), "AND joins two limits"),
    (("10", "1000", "SLIDING", "GCRA"), "a limit takes one kind"),
])
def test_bad_configs_get_specific_errors_and_change_nothing(r, args, message):
    config(r, "k", 7, HOUR)
    allow(r, "k")
    before = digest(r, "k")
    with pytest.raises(redis.ResponseError, match=message):
        r.execute_command("RL.CONFIG", "k", *args)
    with pytest.raises(redis.ResponseError, match=message):
        r.execute_command("RL.CONFIG", "new", *args)
    assert digest(r, "k") == before and not r.exists("new")


def test_bad_inline_sets_get_specific_errors(r):
    with pytest.raises(redis.ResponseError, match="AND joins two limits"):
        allow(r, "k", "LIMIT", 1, "WINDOW", 1, "AND")
    with pytest.raises(redis.ResponseError, match="unknown limit kind"):
        allow(r, "k", "LIMIT", 1, "WINDOW", 1, "TOKEN-BUCKET")
    assert not r.exists("k")


# --- persistence and replication ----------------------------------------------------------


def set_keys(c):
    """One key of each new shape, with some usage."""
    config(c, "sliding", 10, HOUR, "SLIDING")
    config(c, "multi", 10, HOUR, "SLIDING", "IDLE", HOUR, "AND", 100, HOUR, "BURST", 20, "SHADOW")
    for i in range(3):
        allow(c, "sliding", "COST", i + 1)
        allow(c, "multi")
        allow(c, "usage", "LIMIT", 5, "WINDOW", HOUR, "SLIDING", "AND", "LIMIT", 7, "WINDOW", HOUR)
    return ["sliding", "multi", "usage"]


def states(c, keys):
    return {k: (digest(c, k), pexpiretime(c, k)) for k in keys}


def test_debug_reload_dump_restore_and_copy_keep_sets_exactly(r):
    keys = set_keys(r)
    before = states(r, keys)
    r.execute_command("DEBUG", "RELOAD")
    assert states(r, keys) == before
    for k in keys:
        payload = r.dump(k)
        # Kind 2 (version 2's sets) or 3 (since issue 17: a usage-only log that keeps its window).
        assert parse_dump(payload)[1][3] in (2, 3)
        # DEBUG DIGEST-VALUE mixes in whether the key has a TTL: restore it with one.
        r.restore(k + "-copy", max(r.pttl(k), 0), payload)
        assert digest(r, k + "-copy") == before[k][0]
        assert r.copy(k, k + "-copied")
        assert digest(r, k + "-copied") == before[k][0]


def test_forged_set_payloads_are_refused(r):
    config(r, "k", 3, HOUR, "SLIDING")
    allow(r, "k")
    module_id, fields, version = parse_dump(r.dump("k"))
    assert fields[:5] == [0, 0, 1, 2, 1]
    for bad in (fields[:-1], fields + [0], [1] + fields[1:], fields[:5] + [7] + fields[6:],
                fields[:-4] + [1, 0, 3, HOUR, 3, 0, 0]):  # a GCRA limit over a SLIDING log
        with pytest.raises(redis.ResponseError, match="Bad data format"):
            r.restore("forged", 0, build_dump(module_id, bad, version))
    assert not r.exists("forged")


def test_a_replica_and_an_aof_rewrite_hold_the_same_sets(servers):
    m, rep = start_pair(servers, master={"appendonly": "yes"})
    mc = m.client()
    keys = set_keys(mc)
    mc.execute_command("RL.RESET", "sliding")
    allow(mc, "sliding")
    replicated(mc)
    want = states(mc, keys)
    assert states(rep.client(), keys) == want
    rewrite_aof(mc)
    # After the rewrite, more writes go to the incremental AOF as RL.APPLY's set form.
    config(mc, "sliding", 10, HOUR, "SLIDING", "AND", 3, HOUR)
    allow(mc, "sliding", "COST", 2)
    allow(mc, "usage", "LIMIT", 5, "WINDOW", HOUR, "SLIDING", "AND", "LIMIT", 7, "WINDOW", HOUR)
    replicated(mc)
    want = states(mc, keys)
    assert states(rep.client(), keys) == want
    m.restart()
    assert states(m.client(), keys) == want


def test_an_allowed_request_sends_only_what_it_recorded(servers):
    """A key whose replicas hold its SLIDING log gets `R<at>x<cost>w<window>` per allowed
    request, not the whole log: the AOF grows by about as much as for a GCRA key, and the
    replica (which records it in its own log) stays identical."""
    m, rep = start_pair(servers, master={"appendonly": "yes"})
    mc = m.client()
    config(mc, "k", 1000, HOUR, "SLIDING", "AND", 1000, HOUR)
    allow(mc, "k")
    before = len(all_aof_bytes(m))
    for i in range(300):
        allow(mc, "k", "COST", 1 + i % 3)
    grown = len(all_aof_bytes(m)) - before
    assert grown < 300 * 200, grown  # a whole log of hundreds of entries would be KBs each
    replicated(mc)
    assert states(rep.client(), ["k"]) == states(mc, ["k"])
    m.restart()
    assert states(m.client(), ["k"]) == states(rep.client(), ["k"])


def test_migrate_moves_sets_exactly(r, servers):
    keys = set_keys(r)
    want = states(r, keys)
    target = servers("target")
    assert r.migrate("127.0.0.1", target.port, keys, 0, 10_000) in (b"OK", "OK", True)
    got = states(target.client(), keys)
    assert r.dbsize() == 0 and {k: d for k, (d, _) in got.items()} == {k: d for k, (d, _) in want.items()}
    # Expiries travel as a TTL: the same instant or a little later, never earlier.
    for k, (_, exp) in want.items():
        assert got[k][1] == exp == -1 or exp <= got[k][1] <= exp + 30_000, k


def test_rl_info_of_a_set_in_resp3(server):
    c = server.client(protocol=3)
    c.flushall()
    config(c, "k", 5, HOUR, "SLIDING", "AND", 9, HOUR)
    c.execute_command("RL.ALLOW", "k", "COST", 2)
    got = c.execute_command("RL.INFO", "k")
    assert (got[b"kind"], got[b"remaining"]) == (b"sliding", 3)
    assert [(l[b"kind"], l[b"remaining"]) for l in got[b"limits"]] == [(b"sliding", 3), (b"gcra", 7)]
    c.close()


@pytest.mark.parametrize("source", ["rdb", "aof"])
def test_version_1_files_load_and_decide_identically(servers, tmp_path, source):
    """v1.rdb/v1.aof were written by the module before encoding version 2
    (tests/fixtures/make_v1.py); every key reads back with the same digest and answers."""
    expected = json.loads((FIXTURES / "v1.json").read_text())
    work = tmp_path / "v1"
    work.mkdir(exist_ok=True)
    if source == "rdb":
        shutil.copy(FIXTURES / "v1.rdb", work / "dump.rdb")
        s = servers("v1")
    else:
        d = work / "appendonlydir"
        d.mkdir()
        shutil.copy(FIXTURES / "v1.aof", d / "appendonly.aof.1.incr.aof")
        (d / "appendonly.aof.manifest").write_text("file appendonly.aof.1.incr.aof seq 1 type i\n")
        s = servers("v1", appendonly="yes")
    c = s.client()
    peek_under = {"usage-inline": ("LIMIT", 1, "WINDOW", 10**12, "BURST", 10),
                  "usage-heap": ("LIMIT", 1000, "WINDOW", 10**12 - 1, "BURST", 2000)}
    for key, want in expected.items():
        assert digest(c, key) == want["digest"].encode(), key
        got = rl_info(s.port, key, text=True)
        got.pop("reset_after_ms")
        assert got == want["info"], key
        assert c.execute_command("RL.PEEK", key, *peek_under.get(key, ()))[:3] == want["peek"], key
        assert (c.pttl(key) > 0) == want["has_ttl"], key
