"""Replication of the `ratelimit` type by effect, with a real replica: RL.ALLOW and RL.CONFIG
reach the replica only as RL.APPLY (absolute state), so the replica's keys equal the
master's to the digest and to the millisecond of their expiry, whatever the clock did in
between; denied requests send nothing; expiries come from the master; RL.APPLY is refused
from normal clients; a replica restarted by full resync or from its own AOF has the same keys.

Every policy that must not change during a test has an emission interval of at least 360 s.
"""

import socket

import pytest
import redis
from helpers import (HOUR, MASTER, all_keys, attach, calls, command_stats, config, pexpiretime, replicated, snapshot,
                     start_pair, wait_synced, wait_until)
from helpers import allow as rl_allow
from resp import encode

# Masters start full syncs at once (the default waits 5 s for more replicas).
# --- helpers ---------------------------------------------------------------------------


def allow(c, key, *options):
    """RL.ALLOW as a bool, so that a run of decisions compares to [True, ..., False]."""
    return bool(rl_allow(c, key, *options))


def assert_same_data(master_client, replica_client):
    snap = snapshot(master_client)
    assert snap, "nothing to compare"
    assert snapshot(replica_client) == snap
    assert (replica_client.execute_command("DEBUG", "DIGEST")
            == master_client.execute_command("DEBUG", "DIGEST"))


def rewrite_done(c):
    p = c.info("persistence")
    return p["aof_rewrite_in_progress"] == 0 and p["aof_rewrite_scheduled"] == 0


def workload(c):
    """A mix of every write the module does, allowed and denied; returns the number of
    state changes (each one RL.APPLY)."""
    changes = 0

    def ok(result):
        nonlocal changes
        assert result
        changes += 1

    def denied(result):
        assert not result

    # RL.CONFIG: plain, with BURST, with IDLE, over an existing usage key, and reconfigured.
    config(c, b"cfg:plain", 10, HOUR)
    config(c, b"cfg:burst", 4, HOUR, "BURST", 9)
    config(c, b"cfg:idle", 5, HOUR, "BURST", 8, "IDLE", 2 * HOUR)
    changes += 3
    for _ in range(4):
        ok(allow(c, b"cfg:plain"))
    ok(allow(c, b"cfg:burst", "COST", 9))
    denied(allow(c, b"cfg:burst"))
    ok(allow(c, b"cfg:idle", "COST", 3))
    denied(allow(c, b"cfg:idle", "COST", 6))
    ok(allow(c, b"cfg:was-usage", "LIMIT", 7, "WINDOW", HOUR))
    config(c, b"cfg:was-usage", 3, HOUR, "IDLE", HOUR)  # new limit; TAT kept in sevenths
    changes += 1
    config(c, b"cfg:idle-dropped", 2, HOUR, "IDLE", HOUR)
    config(c, b"cfg:idle-dropped", 2, HOUR)  # no IDLE any more: no expiry
    changes += 2
    # Usage-only keys: inline policy (with COST and BURST), default policy.
    for _ in range(3):
        ok(allow(c, b"use:inline", "LIMIT", 10, "WINDOW", HOUR))
    ok(allow(c, b"use:cost", "COST", 5, "LIMIT", 4, "WINDOW", HOUR, "BURST", 6))
    denied(allow(c, b"use:cost", "COST", 2, "LIMIT", 4, "WINDOW", HOUR, "BURST", 6))
    denied(allow(c, b"use:never", "COST", 3, "LIMIT", 2, "WINDOW", HOUR))
    c.config_set("rl.default-limit", 6)
    c.config_set("rl.default-window-ms", HOUR)
    for _ in range(6):
        ok(allow(c, b"use:default"))
    denied(allow(c, b"use:default"))
    ok(allow(c, b"\xff\x00k", "LIMIT", 7, "WINDOW", HOUR))
    # An inline policy on a configured key uses that policy, and keeps the stored one.
    ok(allow(c, b"cfg:plain", "LIMIT", 3, "WINDOW", HOUR))
    return changes


WORKLOAD_KEYS = sorted([b"cfg:plain", b"cfg:burst", b"cfg:idle", b"cfg:was-usage",
                        b"cfg:idle-dropped", b"use:inline", b"use:cost", b"use:default",
                        b"\xff\x00k"])


def raw_first_line(port, *args):
    """Sends one command over a plain socket and returns the first line of the reply, so
    that the error prefix is seen exactly as Redis sends it."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(encode(*args))
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(4096)
            assert chunk, "connection closed"
            buf += chunk
    return buf.split(b"\r\n", 1)[0]


# --- tests -------------------------------------------------------------------------------


def test_replica_keys_equal_the_masters_to_digest_and_expiry(servers):
    """After RL.CONFIG (with and without IDLE, with BURST) and allowed and denied RL.ALLOW
    (COST, inline and default policy, which only the master has), every key on the replica
    has the master's value digest and absolute expiry."""
    master, replica = start_pair(servers)
    m, r = master.client(), replica.client()
    workload(m)
    replicated(m)
    assert all_keys(m) == WORKLOAD_KEYS
    assert_same_data(m, r)
    # The replica's own default policy (none) played no part.
    assert r.config_get("rl.default-limit") == {"rl.default-limit": "0"}


def test_promoted_replica_grants_exactly_what_the_master_had_left(servers):
    """After a failover (REPLICAOF NO ONE) the former replica decides like the master would
    have: exhausted clients stay denied, half-used ones get exactly their remaining requests."""
    master, replica = start_pair(servers)
    m, r = master.client(), replica.client()
    workload(m)
    replicated(m)
    master.stop()
    r.replicaof("NO", "ONE")
    inline = ("LIMIT", 10, "WINDOW", HOUR)
    cost = ("LIMIT", 4, "WINDOW", HOUR, "BURST", 6)
    default = ("LIMIT", 6, "WINDOW", HOUR)  # the master's default policy, given inline
    for key, options, remaining in [(b"cfg:burst", (), 0), (b"cfg:idle", (), 5),
                                    (b"cfg:idle-dropped", (), 2), (b"use:inline", inline, 7),
                                    (b"use:cost", cost, 1), (b"use:default", default, 0),
                                    (b"\xff\x00k", ("LIMIT", 7, "WINDOW", HOUR), 6)]:
        got = [allow(r, key, *options) for _ in range(remaining + 1)]
        assert got == [True] * remaining + [False], key


def test_replica_executes_only_rl_apply_one_per_state_change(servers):
    """The replica's command stats show no RL.ALLOW and no RL.CONFIG, and exactly one
    RL.APPLY per allowed request or configuration on the master."""
    master, replica = start_pair(servers)
    m, r = master.client(), replica.client()
    changes = workload(m)
    replicated(m)
    assert calls(r, "rl.allow") == 0
    assert calls(r, "rl.config") == 0
    assert calls(r, "rl.apply") == changes
    assert calls(m, "rl.apply") == 0


def test_denied_request_propagates_nothing(servers):
    """A denied RL.ALLOW sends nothing: the master's replication offset does not move and
    the replica runs nothing; an allowed one (the control) moves both."""
    # No replica PINGs from the master during the test, which would move the offset too.
    master, replica = start_pair(
        servers, master={"repl_ping_replica_period": 3600, "repl_timeout": 3600},
        replica={"repl_timeout": 3600})
    m, r = master.client(), replica.client()
    config(m, b"k", 2, HOUR)
    assert allow(m, b"k", "COST", 2)
    replicated(m)
    # (A WAIT that blocks also sends REPLCONF GETACK down the link: read the offset after
    # it, and use no WAIT until the check.)
    offset = m.info("replication")["master_repl_offset"]
    applies = calls(r, "rl.apply")
    kept = snapshot(m)
    for options in [(), ("COST", 5), ("LIMIT", 1, "WINDOW", HOUR, "COST", 2)]:
        assert not allow(m, b"k", *options)
    assert not allow(m, b"fresh", "COST", 3, "LIMIT", 1, "WINDOW", HOUR)
    assert m.info("replication")["master_repl_offset"] == offset
    wait_until(lambda: r.info("replication")["slave_repl_offset"] >= offset,
               what="the replica to reach the master's offset")
    assert r.info("replication")["slave_repl_offset"] == offset
    assert calls(r, "rl.apply") == applies
    assert snapshot(m) == snapshot(r) == kept
    # Control: an allowed request moves the offset and reaches the replica.
    assert allow(m, b"other", "LIMIT", 1, "WINDOW", HOUR)
    replicated(m)
    assert m.info("replication")["master_repl_offset"] > offset
    assert calls(r, "rl.apply") == applies + 1


def test_short_lived_keys_expire_on_the_master_and_the_expiry_reaches_the_replica(servers):
    """Keys that RL.ALLOW (LIMIT 1 WINDOW 300) or RL.CONFIG ... IDLE 300 create expire by
    themselves on the master, which sends their deletion: the replica, which never expires
    keys on its own, ends up empty too."""
    master, replica = start_pair(servers)
    m, r = master.client(), replica.client()
    n = 20
    for i in range(n):
        assert allow(m, f"short:{i}", "LIMIT", 1, "WINDOW", 300)
    config(m, b"short:idle", 1, 300, "IDLE", 300)
    replicated(m)
    assert calls(r, "rl.apply") == n + 1  # every key reached the replica
    wait_until(lambda: m.dbsize() == 0, timeout=20, what="the master to expire the keys")
    wait_until(lambda: r.dbsize() == 0, timeout=20, what="the replica to get the deletions")
    assert m.info("stats")["expired_keys"] == n + 1
    assert calls(r, "del") + calls(r, "unlink") == n + 1


def test_rl_apply_is_refused_from_normal_clients_of_master_and_replica(servers):
    """RL.APPLY from a normal client fails and creates nothing: on the master with the
    module's error (also through MULTI/EXEC and a script), on a read-only replica with
    READONLY, and on a writable replica with the module's error."""
    master, replica = start_pair(servers)
    m, r = master.client(), replica.client()
    apply = ("RL.APPLY", "k", 1_800_000_000_000, 0, 1, 0)
    with_policy = apply + ("POLICY", 10, HOUR, 10, 0, 0)
    for args in (apply, with_policy):
        line = raw_first_line(master.port, *args)
        assert line.startswith(b"-ERR RL.APPLY is internal"), line
        with pytest.raises(redis.ResponseError, match="^RL.APPLY is internal"):
            m.execute_command(*args)
    with pytest.raises(redis.ResponseError, match="RL.APPLY is internal"):
        m.eval("return redis.call('RL.APPLY', KEYS[1], 1800000000000, 0, 1, 0)", 1, "k")
    tx = m.pipeline(transaction=True)
    tx.execute_command(*apply)
    results = tx.execute(raise_on_error=False)
    assert isinstance(results[0], redis.ResponseError)
    assert "RL.APPLY is internal" in str(results[0])
    assert raw_first_line(replica.port, *apply).startswith(b"-READONLY")
    r.config_set("replica-read-only", "no")
    try:
        assert raw_first_line(replica.port, *apply).startswith(b"-ERR RL.APPLY is internal")
    finally:
        r.config_set("replica-read-only", "yes")
    replicated(m)
    assert m.dbsize() == 0 and r.dbsize() == 0
    assert calls(m, "rl.apply") == calls(r, "rl.apply") == 0
    # What ran was refused: the master's tries and the writable replica's one all failed.
    assert command_stats(m, "rl.apply")["failed_calls"] == 6  # 2 raw, 2 client, EVAL, EXEC
    assert command_stats(r, "rl.apply")["failed_calls"] == 1


@pytest.mark.parametrize("resync", ["full", "partial"])
def test_restarted_replica_resyncs_to_the_same_digests(servers, resync):
    """A restarted replica ends with the master's digests, including the writes made while
    it was down: "full" starts it with nothing on disk, so it loads the master's RDB again;
    "partial" lets it load the copy of that RDB it saved at its first sync, then catch up
    from the master's backlog (RL.APPLY on top of an RDB-loaded dataset)."""
    master, replica = start_pair(servers)
    m = master.client()
    workload(m)
    replicated(m)
    before = m.info("stats")
    replica.stop()
    if resync == "full":
        (replica.dir / "dump.rdb").unlink()
    for _ in range(2):
        assert allow(m, b"while-down", "LIMIT", 5, "WINDOW", HOUR)
    assert allow(m, b"use:inline", "LIMIT", 10, "WINDOW", HOUR)
    config(m, b"cfg:plain", 20, HOUR, "IDLE", HOUR)
    replica.restart(replicaof=f"127.0.0.1 {master.port}")
    wait_synced(replica)
    replicated(m)
    after = m.info("stats")
    if resync == "full":
        assert after["sync_full"] == before["sync_full"] + 1
    else:
        assert after["sync_full"] == before["sync_full"]
        assert after["sync_partial_ok"] == before["sync_partial_ok"] + 1
    assert_same_data(m, replica.client())


def test_replica_aof_restarted_standalone_has_the_masters_digests(servers):
    """A replica with its own AOF logs the master's RL.APPLY stream (never RL.ALLOW or
    RL.CONFIG), one entry per change; restarted on its own from that AOF, it has the
    master's digests and expiries."""
    master = servers("master", **MASTER)
    replica = servers("replica", appendonly="yes", appendfsync="always")
    m, r = master.client(), replica.client()
    config(m, b"before-sync", 3, HOUR)  # reaches the replica in the full sync (AOF base)
    assert allow(m, b"before-sync")
    attach(replica, master)
    # After its sync the replica rewrites its AOF from the loaded data; let that finish.
    wait_until(lambda: rewrite_done(r), what="the replica's AOF rewrite after its sync")
    applies = calls(r, "rl.apply")
    workload(m)
    replicated(m)
    assert_same_data(m, r)
    expected = snapshot(m)
    aof_dir = replica.dir / "appendonlydir"
    incr = b"".join(p.read_bytes() for p in aof_dir.glob("*.incr.aof")).lower()
    assert incr.count(b"rl.apply") == calls(r, "rl.apply") - applies > 0
    assert b"rl.allow" not in incr and b"rl.config" not in incr
    wait_until(lambda: rewrite_done(r), what="no AOF rewrite in progress")
    master.stop()
    replica.restart()  # REPLICAOF was a command: it comes back as a standalone master
    r = replica.client()
    assert r.info("replication")["role"] == "master"
    assert snapshot(r) == expected


def test_replica_keeps_a_user_ttl_on_a_configured_key_after_rl_allow(servers):
    """A TTL set by the user (PEXPIRE) on a configured key without IDLE is still there on
    the master after RL.ALLOW; the replica must have the same expiry."""
    master, replica = start_pair(servers)
    m, r = master.client(), replica.client()
    config(m, b"k", 10, HOUR)
    m.pexpire(b"k", 2 * HOUR)
    assert allow(m, b"k")
    replicated(m)
    assert pexpiretime(m, b"k") > 0
    assert snapshot(r) == snapshot(m)
