"""Issue 19 and 20's key state (id sequence, holds, block and penalty level, leases) through
replication, AOF rewrite, restart, failover and RESTORE: after a random workload of every new
command a replica's keys equal the master's (value digest and absolute expiry), and so do the
keys reloaded from a rewritten AOF (with and without the RDB preamble, so through RL.APPLY's
text forms too); a promoted replica settles the open hold and releases the leases the old
master gave; forged payloads of the new state are refused.

Windows, holds, leases and blocks last an hour or more, so nothing expires during a test."""

import random

import pytest
import redis
from helpers import (HOUR, all_keys, config, replicated, rewrite_aof, rl_info, snapshot, start_pair,
                     wait_synced)
from payload import build_dump, parse_dump

KEYS = [f"k{i}".encode() for i in range(12)]
POLICIES = [
    (10, HOUR),
    (20, HOUR, "SLIDING"),
    (5, HOUR, "PENALTY", HOUR, "MAX", 4 * HOUR),
    (50, HOUR, "AND", 3, 2 * HOUR, "CONCURRENCY"),
    (2, 2 * HOUR, "CONCURRENCY"),
    (30, HOUR, "SLIDING", "AND", 100, 2 * HOUR, "PENALTY", HOUR),
]
INLINE = ("LIMIT", 40, "WINDOW", HOUR)


def random_workload(c, seed, steps=600):
    """Every write issue 19 and 20 added, allowed and denied, on a few keys; errors (a
    settle of an unknown id, RL.ALLOW on a CONCURRENCY key) are part of the mix."""
    rnd = random.Random(seed)
    holds, leases = {}, {}
    for key in KEYS[:8]:
        config(c, key, *rnd.choice(POLICIES))
    for _ in range(steps):
        key = rnd.choice(KEYS)
        op = rnd.randrange(12)
        try:
            if op == 0:
                reply = c.execute_command("RL.RESERVE", key, rnd.randint(1, 6), "HOLD", 2 * HOUR, *INLINE)
                if reply[6] is not None:
                    holds.setdefault(key, []).append(reply[6])
            elif op == 1 and holds.get(key):
                hold = holds[key].pop(rnd.randrange(len(holds[key])))
                c.execute_command("RL.SETTLE", key, hold, rnd.randint(0, 9))
            elif op == 2:
                c.execute_command("RL.REFUND", key, rnd.randint(1, 5), *INLINE)
            elif op == 3:
                c.execute_command("RL.BLOCK", key, rnd.randint(HOUR, 3 * HOUR))
            elif op == 4:
                c.execute_command("RL.UNBLOCK", key)
            elif op in (5, 6):
                reply = c.execute_command("RL.ACQUIRE", key, "LIMIT", 3, "WINDOW", HOUR, "CONCURRENCY")
                if reply[6] is not None:
                    leases.setdefault(key, []).append(reply[6])
            elif op == 7 and leases.get(key):
                c.execute_command("RL.RELEASE", key, leases[key].pop(rnd.randrange(len(leases[key]))))
            elif op == 8 and leases.get(key):
                c.execute_command("RL.RENEW", key, rnd.choice(leases[key]), rnd.randint(HOUR, 2 * HOUR))
            elif op == 9:
                c.execute_command("RL.THROTTLE", key, "COST", rnd.randint(1, 4), *INLINE)
            elif op == 10 and rnd.random() < 0.2:
                c.execute_command("RL.RESET", key)
            elif op == 11:
                config(c, key, *rnd.choice(POLICIES))
        except redis.ResponseError:
            pass
    return holds, leases


@pytest.mark.parametrize("preamble", ["yes", "no"])
def test_replica_and_rewritten_aof_equal_the_master_after_a_random_workload(servers, preamble):
    master, replica = start_pair(servers, master={"appendonly": "yes", "aof_use_rdb_preamble": preamble})
    m, r = master.client(), replica.client()
    random_workload(m, seed=19_20 + (preamble == "yes"))
    replicated(m)
    snap = snapshot(m)
    assert len(snap) >= 8
    assert snapshot(r) == snap
    # Some keys really hold the new state (else the comparison proves little).
    infos = [rl_info(master.port, k) for k in all_keys(m)]
    assert any(i[b"holds"] for i in infos) and any(i[b"leases"] for i in infos)
    assert any(i[b"blocked_ms"] for i in infos)
    rewrite_aof(m)
    master.restart()
    assert snapshot(master.client()) == snap


def test_a_key_of_parts_alone_replicates_and_survives_an_aof_rewrite(servers):
    """RL.BLOCK of an absent key makes a key with no usage and no policy, only a block: its
    RL.APPLY line has an empty body beside PARTS, which replicas refused as an impossible
    state until the codec fuzz target found it (the random workload above rarely blocks a
    key before anything else writes it)."""
    master, replica = start_pair(servers, master={"appendonly": "yes", "aof_use_rdb_preamble": "no"})
    m, r = master.client(), replica.client()
    m.execute_command("RL.BLOCK", "absent", HOUR)
    replicated(m)
    snap = snapshot(m)
    assert snap[b"absent"][1] > 0
    assert snapshot(r) == snap
    assert rl_info(replica.port, "absent")[b"blocked_ms"] > HOUR - 60_000
    rewrite_aof(m)
    master.restart()
    assert snapshot(master.client()) == snap


def test_a_promoted_replica_settles_the_open_hold_and_releases_the_leases(servers):
    master, replica = start_pair(servers)
    m = master.client()
    config(m, "gw", 100, HOUR)
    config(m, "api", 100, HOUR, "AND", 2, HOUR, "CONCURRENCY")
    hold = m.execute_command("RL.RESERVE", "gw", 30)[6]
    leases = [m.execute_command("RL.ACQUIRE", "api")[6] for _ in range(2)]
    assert m.execute_command("RL.ACQUIRE", "api")[0] == 0
    replicated(m)
    master.stop()
    r = replica.client()
    r.replicaof("NO", "ONE")
    assert rl_info(replica.port, "gw")[b"holds"] == 1
    assert r.execute_command("RL.ACQUIRE", "api")[0] == 0, "the leases held on the old master still hold"
    assert r.execute_command("RL.SETTLE", "gw", hold, 10) == -20
    assert rl_info(replica.port, "gw")[b"remaining"] == 90
    assert [r.execute_command("RL.RELEASE", "api", lease) for lease in leases] == [1, 1]
    fresh = r.execute_command("RL.ACQUIRE", "api")[6]
    assert fresh is not None and fresh > max(leases), "ids never go back after a failover"
    # The old master comes back as a replica of the new one and takes its state.
    master.start()
    master.client().replicaof("127.0.0.1", replica.port)
    wait_synced(master)
    replicated(r)
    assert snapshot(master.client()) == snapshot(r)


# --- forged payloads of the new state ---------------------------------------------------


def holds_fields(c):
    """(module id, fields, version) of a configured key with two open holds, and where its
    parts begin: [..., p=2, 0 last_id, 2 n=2, hold, hold]."""
    config(c, "h", 10, HOUR)
    c.execute_command("RL.RESERVE", "h", 2)
    c.execute_command("RL.RESERVE", "h", 3)
    module_id, fields, version = parse_dump(c.dump("h"))
    c.delete("h")
    parts = fields.index(2, 17)  # p, after the policy and has_pending
    assert fields[parts:parts + 2] == [2, 0] and fields[parts + 3:parts + 5] == [2, 2], fields
    return module_id, fields, version, parts


def forge(c, case):
    module_id, f, version, p = holds_fields(c)
    last_id, first, second = p + 2, p + 5, p + 5 + 8  # a hold: id estimate at exp e (ms frac den)
    f = list(f)
    if case == "hold-id-beyond-sequence":
        f[second] = f[last_id] + 1
    elif case == "hold-ids-not-increasing":
        f[second] = f[first]
    elif case == "hold-estimate-zero":
        f[first + 1] = 0
    elif case == "hold-expires-before-taken":
        f[first + 3] = f[first + 2] - 1
    elif case == "hold-longer-than-a-day":
        f[first + 3] = f[first + 2] + 86_400_001
    elif case == "unknown-part-code":
        f[p + 3] = 4
    elif case == "part-twice":
        f[p + 3] = 0
    elif case == "more-parts-than-written":
        f[p] = 3
    elif case == "block-level-above-63":
        f = f[:p] + [3, 0, f[last_id], 1, f[first + 2] + HOUR, 64] + f[p + 3:]
    elif case == "65-holds":
        hold = f[first:first + 8]
        many = []
        for i in range(65):
            many += [f[last_id] - 64 + i] + hold[1:]
        f = f[:p + 3] + [2, 65] + many
    else:
        raise AssertionError(case)
    return build_dump(module_id, f, version)


FORGED = ["hold-id-beyond-sequence", "hold-ids-not-increasing", "hold-estimate-zero",
          "hold-expires-before-taken", "hold-longer-than-a-day", "unknown-part-code", "part-twice",
          "more-parts-than-written", "block-level-above-63", "65-holds"]


def test_the_forging_control_restores(r):
    """The framing of the forgeries with the real fields is accepted."""
    module_id, f, version, _ = holds_fields(r)
    assert r.restore("sane", 0, build_dump(module_id, f, version))
    assert rl_info(r.connection_pool.connection_kwargs["port"], "sane")[b"holds"] == 2


@pytest.mark.parametrize("case", FORGED)
def test_forged_payloads_of_the_new_state_are_refused(r, case):
    payload = forge(r, case)
    with pytest.raises(redis.ResponseError, match="Bad data format"):
        r.restore("forged", 0, payload)
    assert r.ping() and r.exists("forged") == 0
