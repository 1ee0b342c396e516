"""Whatever the master stores, its replicas and its AOF accept (issue 10, item 1), and replicas
load diskless, asynchronously (item 9).

A configured key without IDLE keeps a user's TTL through RL.ALLOW and RL.RESET, however far
away it is (PEXPIREAT at 2^63-1 ms, EXPIRE in 2*10^15 s, RESTORE ... ABSTTL). The state
replicated as RL.APPLY then carries that expiry: every route it takes (a replica, the AOF,
a rewritten AOF, a server that panics on any propagation error) must take it whole.
"""

import pytest

from helpers import (HOUR, MASTER, allow, config, digest, pexpiretime, rewrite_aof, replicated,
                     snapshot, start_pair, wait_synced)

FAR = 2**63 - 1  # ms: the latest absolute expiry Redis can hold


def far_expiry_keys(c):
    """Configured keys with very long user expiries, each used and reset in a way that
    replicates its state with that expiry; returns their names."""
    config(c, "pexpireat", 10, HOUR)
    assert c.execute_command("PEXPIREAT", "pexpireat", FAR) == 1
    config(c, "expire", 10, HOUR)
    assert c.execute_command("EXPIRE", "expire", 2_000_000_000_000_000) == 1
    config(c, "restored", 10, HOUR)
    payload = c.dump("restored")
    c.delete("restored")
    c.execute_command("RESTORE", "restored", FAR, payload, "ABSTTL")
    for key in ("pexpireat", "expire", "restored"):
        for _ in range(4):
            assert allow(c, key) == 1
    config(c, "reset", 10, HOUR)
    assert c.execute_command("PEXPIREAT", "reset", FAR) == 1
    for _ in range(3):
        allow(c, "reset")
    assert c.execute_command("RL.RESET", "reset") > 0
    return ["pexpireat", "expire", "restored", "reset"]


@pytest.mark.parametrize("behavior", ["ignore", "panic-on-replicas"])
def test_a_replica_takes_states_with_any_expiry(servers, behavior):
    """The replica ends with the master's digests and expiries, and (with
    panic-on-replicas) is still running: it refused nothing."""
    master, replica = start_pair(servers, replica={"propagation_error_behavior": behavior})
    m, r = master.client(), replica.client()
    keys = far_expiry_keys(m)
    replicated(m)
    assert snapshot(r, keys) == snapshot(m, keys)
    assert r.ping() and "sending an error" not in replica.log
    # Promoted, the replica would not hand out a fresh burst: the key is as used there.
    remaining = [c.execute_command("RL.PEEK", "pexpireat")[2] for c in (m, r)]
    assert remaining == [5, 5], remaining  # 10 - 4 used - the peeked request


@pytest.mark.parametrize("rewrite", [False, True], ids=["aof", "rewritten-aof"])
def test_a_master_restarts_from_its_own_aof_with_any_expiry(servers, rewrite):
    """Restarted from its AOF (also after BGREWRITEAOF), with propagation-error-behavior
    panic (any refused AOF line would abort the load), the master has every key back."""
    s = servers(appendonly="yes", propagation_error_behavior="panic")
    c = s.client()
    keys = far_expiry_keys(c)
    if rewrite:
        rewrite_aof(c)
        # Used again after the rewrite: the increment part of the AOF carries states too.
        allow(c, "expire")
    before = snapshot(c, keys)
    s.restart()
    c = s.client()
    assert snapshot(c, keys) == before
    assert pexpiretime(c, "pexpireat") == FAR
    assert "sending an error" not in s.log


def test_replicas_load_diskless_and_asynchronously(servers):
    """With repl-diskless-load swapdb, a replica loads the master's RDB from the socket into a
    second dataset while it keeps serving the old one: the module declares that it can
    (no "Skipping diskless-load ... modules" line), and the replica ends equal to the
    master."""
    master = servers("master", repl_diskless_sync="yes", **MASTER)
    m = master.client()
    for i in range(50):
        config(m, f"cfg:{i}", 10, HOUR, "IDLE", HOUR)
        allow(m, f"cfg:{i}")
        allow(m, f"use:{i}", "LIMIT", 10, "WINDOW", HOUR)
    replica = servers("replica", repl_diskless_load="swapdb")
    replica.client().replicaof("127.0.0.1", master.port)
    wait_synced(replica)
    r = replica.client()
    assert "Skipping diskless-load" not in replica.log, replica.log[-2000:]
    # The async path: loaded beside the old dataset, then swapped in (Redis and Valkey alike).
    assert "Swapping active DB with loaded DB" in replica.log, replica.log[-2000:]
    keys = sorted(m.scan_iter())
    assert len(keys) == 100
    assert {k: digest(r, k) for k in keys} == {k: digest(m, k) for k in keys}
