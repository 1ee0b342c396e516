"""Routing: every keyed client sends RL.* to the master that owns the key's slot.

The module declares its key at position 1 (COMMAND INFO), so Redis Cluster checks the slot
of RL.CONFIG/RL.ALLOW like any keyed command and answers MOVED elsewhere; redis-cli -c follows
the redirection, and redis-py's RedisCluster computes the slot itself from COMMAND's key
positions and never needs one. Clients are spread over every master.
"""

import subprocess

import pytest
import redis
from redis.crc import key_slot
from redis.exceptions import MovedError

from cluster_harness import REDIS_CLI

LONG_WINDOW_MS = 600_000  # T >= 120 s for the limits below: nothing refills during a test


def moved_count(node):
    return node.client().info("errorstats").get("errorstat_MOVED", {}).get("count", 0)


def reset_stats(cluster):
    for n in cluster.live():
        n.client().config_resetstat()


def test_redis_cli_c_follows_moved_to_every_master(cluster):
    masters = cluster.masters()
    keys = cluster.spread_keys(2, "cli")
    for owner, owned in keys.items():
        entry = next(m for m in masters if m is not owner)  # always a wrong first node
        for key in owned:
            script = f"RL.CONFIG {key} 3 {LONG_WINDOW_MS}\n" + f"RL.ALLOW {key}\n" * 4 + f"TYPE {key}\n"
            out = subprocess.run([REDIS_CLI, "-c", "-p", str(entry.port)], input=script,
                                 capture_output=True, text=True, timeout=30, check=True).stdout
            lines = [ln for ln in out.splitlines() if not ln.startswith("-> Redirected")]
            assert lines == ["OK", "1", "1", "1", "0", "ratelimit"], out
            assert f"located at 127.0.0.1:{owner.port}" in out
            assert owner.client().exists(key) == 1
    # One-shot invocations too (the form scripts use); the key is already exhausted.
    owner, owned = next(iter(keys.items()))
    entry = next(m for m in masters if m is not owner)
    out = subprocess.run([REDIS_CLI, "-c", "-p", str(entry.port), "RL.ALLOW", owned[0]],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    assert out.strip() == "0"


def test_plain_client_on_the_wrong_node_gets_moved(cluster):
    keys = cluster.spread_keys(1, "moved")
    masters = cluster.masters()
    for owner, (key,) in keys.items():
        wrong = next(m for m in masters if m is not owner)
        with pytest.raises(MovedError, match=rf"^{key_slot(key.encode())} 127.0.0.1:{owner.port}$"):
            wrong.client().execute_command("RL.ALLOW", key, "LIMIT", 10, "WINDOW", 1000)
        assert owner.client().execute_command("RL.ALLOW", key, "LIMIT", 10, "WINDOW", 1000) == 1


def test_rediscluster_single_calls_reach_every_master_without_redirects(cluster):
    rc = cluster.client()
    keys = cluster.spread_keys(20, "single")
    reset_stats(cluster)
    for owned in keys.values():
        for key in owned:
            assert rc.execute_command("RL.CONFIG", key, 5, LONG_WINDOW_MS) in (b"OK", "OK", True)
            got = [rc.execute_command("RL.ALLOW", key) for _ in range(6)]
            assert got == [1, 1, 1, 1, 1, 0], key
    for owner, owned in keys.items():
        c = owner.client()
        assert all(c.exists(k) for k in owned)
        calls = c.info("commandstats")["cmdstat_rl.allow"]["calls"]
        assert calls == 6 * len(owned), f"{owner} served {calls} RL.ALLOW"
    assert sum(moved_count(n) for n in cluster.live()) == 0, "RedisCluster needed a redirect"
    rc.close()


def test_rediscluster_pipeline_groups_calls_by_master(cluster):
    rc = cluster.client()
    keys = cluster.spread_keys(30, "pipe")
    flat = [k for owned in keys.values() for k in owned]
    reset_stats(cluster)
    pipe = rc.pipeline()
    for key in flat:
        pipe.execute_command("RL.CONFIG", key, 2, LONG_WINDOW_MS, "BURST", 2)
        for _ in range(3):
            pipe.execute_command("RL.ALLOW", key)
    replies = pipe.execute()
    assert len(replies) == 4 * len(flat)
    for i, key in enumerate(flat):
        assert replies[4 * i + 1:4 * i + 4] == [1, 1, 0], key
    for owner, owned in keys.items():
        assert owner.client().info("commandstats")["cmdstat_rl.allow"]["calls"] == 3 * len(owned)
    assert sum(moved_count(n) for n in cluster.live()) == 0
    rc.close()


def test_rediscluster_resp3_replies_booleans(cluster):
    rc = cluster.client(protocol=3)
    for owned in cluster.spread_keys(1, "resp3").values():
        key = owned[0]
        assert rc.execute_command("RL.ALLOW", key, "LIMIT", 1, "WINDOW", LONG_WINDOW_MS) is True
        assert rc.execute_command("RL.ALLOW", key, "LIMIT", 1, "WINDOW", LONG_WINDOW_MS) is False
    rc.close()


def test_hash_tags_keep_related_keys_on_one_slot(cluster):
    """Keys that share a {tag} share a slot, so one node can run them together (MULTI);
    keys of different slots cannot be combined on one node."""
    tagged = ["{user42}:read", "{user42}:write", "{user42}:upload"]
    slots = {key_slot(k.encode()) for k in tagged}
    assert slots == {key_slot(b"user42")}
    owner = cluster.owner(tagged[0])
    c = owner.client()
    pipe = c.pipeline(transaction=True)
    for k in tagged:
        pipe.execute_command("RL.ALLOW", k, "LIMIT", 1, "WINDOW", LONG_WINDOW_MS)
    assert pipe.execute() == [1, 1, 1]
    # Two untagged keys of different slots on the same master: refused as a transaction.
    ks = cluster.spread_keys(2, "untagged")[owner]
    assert key_slot(ks[0].encode()) != key_slot(ks[1].encode())
    pipe = c.pipeline(transaction=True)
    for k in ks:
        pipe.execute_command("RL.ALLOW", k, "LIMIT", 1, "WINDOW", LONG_WINDOW_MS)
    with pytest.raises(redis.ResponseError, match="don.t hash to the same slot"):
        pipe.execute()
