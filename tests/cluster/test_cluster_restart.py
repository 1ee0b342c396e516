"""Restart from disk: a shard whose master and replica are both killed with SIGKILL (so that
nothing can take over) comes back from the master's own AOF with the same buckets, to the
value digest, and the same absolute expiries, to the millisecond; every client then gets
exactly the requests it had left. Its replica, restarted afterwards, resyncs to the same.

The test uses `appendfsync always` so that not even an OS crash could lose a write; with the
shipped `everysec`, an OS crash or power loss can lose up to about a second of writes (see
docs/cluster.md, "Restart from disk").
"""

import time

from helpers import HOUR  # no bucket refills during the test
PER_KIND = 4  # keys of each kind on each master

# (name, RL.CONFIG arguments or None, RL.ALLOW options, requests used, requests of that
# cost left)
KINDS = [
    ("cfg-half", (10, HOUR), (), 4, 6),
    ("cfg-idle", (5, HOUR, "BURST", 8, "IDLE", 2 * HOUR), ("COST", 3), 1, 1),  # 5 of 8: one of cost 3
    ("cfg-exhausted", (3, HOUR), (), 3, 0),
    ("use-inline", None, ("LIMIT", 10, "WINDOW", HOUR), 3, 7),
    ("use-fraction", None, ("LIMIT", 7, "WINDOW", HOUR), 1, 6),  # T = 3600000/7 ms
    ("use-exhausted", None, ("LIMIT", 2, "WINDOW", HOUR), 2, 0),
]


def populate(rc, keys):
    """Gives every key a kind, in turn; returns {key: kind}."""
    kinds = {}
    for i, key in enumerate(keys):
        kind = KINDS[i % len(KINDS)]
        name, cfg, opts, used, _ = kind
        if cfg:
            assert rc.execute_command("RL.CONFIG", key, *cfg) in (b"OK", "OK", True)
        for _ in range(used):
            assert rc.execute_command("RL.ALLOW", key, *opts) == 1, key
        kinds[key] = kind
    return kinds


def snapshot(node, keys):
    """{key: (value digest, absolute expiry in ms or -1)} as `node` has them."""
    c = node.client(single_connection_client=True)
    c.execute_command("READONLY")  # a replica answers keyed reads instead of MOVED
    return {k: (c.execute_command("DEBUG", "DIGEST-VALUE", k)[0],
                c.execute_command("PEXPIRETIME", k)) for k in keys}


def test_shard_restarted_from_its_aof_has_the_same_buckets_and_expiries(make_cluster, figures):
    cluster = make_cluster(appendonly="yes", appendfsync="always")
    keys = cluster.spread_keys(PER_KIND * len(KINDS), "disk")
    rc = cluster.client()
    kinds = populate(rc, [k for ks in keys.values() for k in ks])
    victim = cluster.masters()[0]
    (replica,) = cluster.replicas_of(victim)
    own = keys[victim]
    before = snapshot(victim, own)
    assert sum(1 for _, exp in before.values() if exp > 0) >= 2 * PER_KIND, "no expiring keys"

    replica.kill()  # first, so that nothing is promoted: the shard is simply gone
    killed_at = time.monotonic()
    victim.kill()
    victim.start()  # same port, directory, nodes.conf and AOF
    cluster.wait_healthy()  # the other nodes see it serve its slots again
    back_s = time.monotonic() - killed_at

    after = snapshot(victim, own)
    assert after == before, {k: (before[k], after[k]) for k in own if before[k] != after[k]}
    figures("restart_time", round(back_s, 3), "s (SIGKILL of the shard to all slots served)")
    figures("keys_compared", len(own), "digest and PEXPIRETIME identical after the restart")

    replica.start()
    cluster.wait_healthy()
    assert snapshot(replica, own) == before

    rc = cluster.client()
    for key, (name, _, opts, _, left) in kinds.items():
        got = [rc.execute_command("RL.ALLOW", key, *opts) for _ in range(left + 1)]
        assert got == [1] * left + [0], (key, name)
