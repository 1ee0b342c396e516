"""The operator's switches: rl.scale-percent (every policy's rate and burst, scaled at
decision time without rewriting keys or forgetting usage) and SHADOW policies (evaluated and
counted, never enforced), including their persistence and replication."""

import pytest
import redis
from helpers import (HOUR, MASTER, config, digest, events_until, replicated, restore_shadow, rl_stats,
                     snapshot, start_pair, subscribe, throttle, wait_synced, wait_until)


# --- rl.scale-percent --------------------------------------------------------------------


def test_scale_percent_scales_a_stored_policy_without_rewriting_it(r):
    """At 50 a stored 10 per hour lets 5 pass from idle (THROTTLE shows a bucket of 5);
    changing the setting rewrites no key and dirties nothing."""
    config(r, "k", 10, HOUR)
    kept = (digest(r, "k"), r.info("persistence")["rdb_changes_since_last_save"])
    r.config_set("rl.scale-percent", 50)
    assert (digest(r, "k"), r.info("persistence")["rdb_changes_since_last_save"]) == kept
    assert rl_stats(r)["rl_scale_percent"] == 50
    got = [throttle(r, "k") for _ in range(6)]
    assert [v["allowed"] for v in got] == [1] * 5 + [0]
    assert {v["limit"] for v in got} == {5}


def test_scaling_back_up_makes_requests_cheaper_but_returns_no_burst(r):
    """Usage is kept as time (the TAT), which drains at the same speed at any scale: 5 of a
    stored 10 per hour used at 50% are 1 h of backlog, the whole bucket at 100% too, so
    nothing passes at once; but at 100% the next request needs one 6-minute interval to
    drain instead of the two it needs at 50%."""
    config(r, "k", 10, HOUR)
    r.config_set("rl.scale-percent", 50)
    assert sum(throttle(r, "k")["allowed"] for _ in range(6)) == 5
    at_half = throttle(r, "k")
    r.config_set("rl.scale-percent", 100)
    at_full = throttle(r, "k")
    assert at_half["allowed"] == at_full["allowed"] == 0
    interval = HOUR // 10
    assert 2 * interval - 5000 <= at_half["retry_after_ms"] <= 2 * interval
    assert interval - 5000 <= at_full["retry_after_ms"] <= interval


def test_changing_the_scale_never_hands_out_a_fresh_burst(r):
    """Usage is kept across scale changes: a client that used its whole bucket at 100% is
    still denied at 50%, at 1000% and back at 100%."""
    config(r, "k", 10, HOUR)
    assert sum(throttle(r, "k")["allowed"] for _ in range(10)) == 10
    for percent in (50, 1000, 100):
        r.config_set("rl.scale-percent", percent)
        assert throttle(r, "k")["allowed"] == 0, percent


def test_scale_percent_applies_to_default_and_inline_policies(r):
    """Default and inline policies are scaled too, up and down; the burst rounds down but
    never below 1."""
    r.config_set("rl.default-limit", 10)
    r.config_set("rl.default-window-ms", HOUR)
    inline = ("LIMIT", 4, "WINDOW", HOUR)
    for percent, default_passes, inline_passes in [(50, 5, 2), (1000, 100, 40), (1, 1, 1)]:
        r.flushall()
        r.config_set("rl.scale-percent", percent)
        assert sum(throttle(r, "d")["allowed"] for _ in range(default_passes + 2)) == default_passes
        assert sum(throttle(r, "i", *inline)["allowed"] for _ in range(inline_passes + 2)) == inline_passes
        assert throttle(r, "x", *inline)["limit"] == inline_passes


def test_scale_percent_accepts_1_to_1000_only(r):
    """CONFIG SET rl.scale-percent refuses 0, 1001, negatives and non-numbers, and takes
    the bounds 1 and 1000."""
    for bad in (0, 1001, -5, "x"):
        with pytest.raises(redis.ResponseError):
            r.config_set("rl.scale-percent", bad)
    for good in (1, 1000, 100):
        r.config_set("rl.scale-percent", good)
        assert r.config_get("rl.scale-percent") == {"rl.scale-percent": str(good)}


# --- SHADOW policies ---------------------------------------------------------------------


def test_config_stores_a_shadow_policy(r):
    """RL.CONFIG ... SHADOW (with BURST and IDLE, in any order) stores the policy with the
    shadow flag: the same value as a shadow key loaded from a payload."""
    config(r, "a", 2, HOUR, "SHADOW")
    restore_shadow(r, "b", 2, HOUR)
    assert digest(r, "a") == digest(r, "b")
    config(r, "c", 2, HOUR, "SHADOW", "BURST", 3, "IDLE", 5000)
    config(r, "d", 2, HOUR, "BURST", 3, "SHADOW", "IDLE", 5000)
    assert digest(r, "c") == digest(r, "d")
    assert [throttle(r, "a")["allowed"] for _ in range(4)] == [1] * 4


def test_a_shadow_policy_always_allows_but_counts_and_publishes_its_denials(server, r):
    """Requests a SHADOW policy would deny are allowed (retry_after_ms -1), leave the bucket
    as it was, count in rl_checks_shadow_denied (not rl_checks_denied, not RL.TOP), and are
    published as rl.shadow-denied, not rl.denied."""
    key = b"shadowed"  # a name no other test denies, so it must not be in RL.TOP
    restore_shadow(r, key, 2, HOUR)
    r.config_set("notify-keyspace-events", "Ed")
    sub = subscribe(server, "__keyevent@0__:rl.*")
    before = rl_stats(r)
    got = [throttle(r, key) for _ in range(2)]
    assert [v["allowed"] for v in got] == [1, 1]
    kept = (digest(r, key), r.execute_command("DEBUG", "DIGEST"))
    got = [throttle(r, key) for _ in range(3)] + [
        r.execute_command("RL.ALLOW", key), throttle(r, key, "COST", 9)]
    assert [g if isinstance(g, int) else g["allowed"] for g in got] == [1] * 5
    assert all(g["retry_after_ms"] == -1 and g["remaining"] == 0 for g in got if isinstance(g, dict))
    assert (digest(r, key), r.execute_command("DEBUG", "DIGEST")) == kept
    after = rl_stats(r)
    assert after["rl_checks_shadow_denied"] - before["rl_checks_shadow_denied"] == 5
    assert after["rl_checks_denied"] == before["rl_checks_denied"]
    assert after["rl_checks_allowed_stored"] - before["rl_checks_allowed_stored"] == 7
    assert key not in [entry[0] for entry in r.execute_command("RL.TOP", 128)]
    assert r.execute_command("RL.ALLOW", "sentinel", "COST", 2, "LIMIT", 1, "WINDOW", 1000) == 0
    assert events_until(sub, b"sentinel") == [(b"__keyevent@0__:rl.shadow-denied", key)] * 5
    sub.close()


def test_reconfiguring_without_shadow_enforces_the_policy(r):
    """The same policy stored again without SHADOW denies what the shadow let through,
    keeping the usage counted so far."""
    restore_shadow(r, "sh", 3, HOUR)
    assert sum(throttle(r, "sh")["allowed"] for _ in range(2)) == 2
    config(r, "sh", 3, HOUR)
    assert [throttle(r, "sh")["allowed"] for _ in range(3)] == [1, 0, 0]


def test_a_shadow_policy_survives_debug_reload(r):
    """Saved and loaded through RDB, a shadow key keeps its flag (same digest, still
    allows past its burst)."""
    restore_shadow(r, "sh", 2, HOUR, "BURST", 3)
    assert sum(throttle(r, "sh")["allowed"] for _ in range(3)) == 3
    kept = digest(r, "sh")
    assert r.execute_command("DEBUG", "RELOAD") in (b"OK", True)
    assert digest(r, "sh") == kept
    shadow = rl_stats(r)["rl_checks_shadow_denied"]
    assert throttle(r, "sh")["allowed"] == 1
    assert rl_stats(r)["rl_checks_shadow_denied"] == shadow + 1


def test_a_shadow_policy_survives_an_aof_rewrite_and_restart(servers):
    """A server whose AOF was rewritten without an RDB preamble comes back with its shadow
    key, flag included."""
    s = servers(appendonly="yes", aof_use_rdb_preamble="no", appendfsync="always")
    c = s.client()
    restore_shadow(c, "sh", 2, HOUR)
    kept = digest(c, "sh")
    c.bgrewriteaof()
    wait_until(lambda: (p := c.info("persistence"))["aof_rewrite_in_progress"] == 0
               and p["aof_rewrite_scheduled"] == 0, what="the AOF rewrite")
    s.restart()
    c = s.client()
    assert c.exists("sh") == 1 and digest(c, "sh") == kept


def test_a_shadow_key_reaches_a_replica_with_its_flag(servers):
    """A shadow key sent in the full sync and one created after it reach the replica with
    the master's digest; shadow-allowed and shadow-denied requests keep them equal."""
    master = servers("master", **MASTER)
    replica = servers("replica")
    m, rc = master.client(), replica.client()
    restore_shadow(m, "sh:before", 2, HOUR)
    rc.replicaof("127.0.0.1", master.port)
    wait_synced(replica)
    restore_shadow(m, "sh:after", 2, HOUR)
    for key in ("sh:before", "sh:after"):
        assert [throttle(m, key)["allowed"] for _ in range(3)] == [1, 1, 1]
    replicated(m)
    assert snapshot(rc) == snapshot(m) and len(snapshot(m)) == 2


def test_rl_config_shadow_replicates(servers):
    """A policy stored with RL.CONFIG ... SHADOW on the master is on the replica, flag
    included, and usage counted under it stays equal."""
    master, replica = start_pair(servers)
    m, rc = master.client(), replica.client()
    config(m, "sh", 2, HOUR, "SHADOW")
    assert [throttle(m, "sh")["allowed"] for _ in range(3)] == [1, 1, 1]
    replicated(m)
    assert snapshot(rc) == snapshot(m)
    stats = rc.info("commandstats").get("cmdstat_rl.apply", {})
    assert stats.get("failed_calls", 0) == 0


