"""Under maxmemory: with noeviction the module's writes (RL.ALLOW, RL.THROTTLE, RL.CONFIG are
`deny-oom`) get Redis's OOM error and change nothing, while reads (RL.PEEK, RL.INFO) go on;
with a volatile-* policy only usage keys (which carry a TTL) are evicted and every stored
policy (no TTL) survives; with allkeys-* stored policies are evicted like any key.

Every window here is an hour or more, so no key expires during a test: whatever disappears
was evicted.
"""

import pytest
import redis

from helpers import HOUR, pipelined, rl_info, snapshot
from helpers import used_memory as used

OOM = redis.exceptions.OutOfMemoryError


def evicted(c):
    return c.info("stats")["evicted_keys"]


def count(c, pattern):
    """Keys matching `pattern` (SCAN may return a key twice while the table resizes)."""
    return len(set(c.scan_iter(match=pattern, count=1000)))


def run(c, calls):
    """Pipelines `calls`; returns the replies (errors as values)."""
    return pipelined(c, calls, raise_on_error=False)


def populate(c, policies, usage):
    """`policies` stored policies cfg:<n> (no TTL, some used) and `usage` usage-only keys
    u:<n> (TTL), inline and boxed, plus keys of other types."""
    calls = [("RL.CONFIG", f"cfg:{n}", 10, HOUR, "BURST", 20) for n in range(policies)]
    calls += [("RL.ALLOW", f"cfg:{n}", "COST", 3) for n in range(0, policies, 2)]
    calls += [("RL.ALLOW", f"u:{n}", "LIMIT", 1021 if n % 4 == 0 else 10, "WINDOW", HOUR)
              for n in range(usage)]
    assert not [x for x in run(c, calls) if isinstance(x, Exception)]
    c.set("other:string", "v" * 100)
    c.rpush("other:list", *range(50))
    return sorted(set(c.scan_iter(count=1000)))


@pytest.fixture
def server_under(servers):
    def start(policy):
        s = servers(maxmemory_policy=policy, maxmemory_samples=5)
        return s, s.client()
    return start


def test_noeviction_writes_get_oom_nothing_is_lost_and_reads_still_answer(server_under, capsys):
    """maxmemory set 128 KB above the current usage: new clients fill it until RL.ALLOW gets
    the OOM error. From then on (maxmemory held below the usage, so that no shrinking
    buffer lets a call slip through) every RL.ALLOW, RL.THROTTLE and RL.CONFIG, on new and
    existing keys, gets OutOfMemoryError; every key that existed is still there with the
    same digest and expiry; RL.PEEK and RL.INFO answer; nothing was evicted."""
    s, c = server_under("noeviction")
    keys = populate(c, 1000, 2000)
    before = snapshot(c, keys)
    start = used(c)
    c.config_set("maxmemory", start + 128 * 1024)
    accepted, n = 0, 0
    while True:
        try:
            c.execute_command("RL.ALLOW", f"new:{n}", "LIMIT", 10, "WINDOW", HOUR)
            accepted += 1
            n += 1
        except OOM:
            break
        assert n < 100_000, "never reached maxmemory"
    at_oom = used(c)
    c.config_set("maxmemory", min(at_oom, used(c)) - 256 * 1024)
    writes = [("RL.ALLOW", f"fresh:{n}", "LIMIT", 10, "WINDOW", HOUR) for n in range(200)]
    writes += [("RL.ALLOW", k) for k in keys if k.startswith(b"cfg:")][:100]
    writes += [("RL.ALLOW", k, "LIMIT", 10, "WINDOW", HOUR) for k in keys if k.startswith(b"u:")][:100]
    writes += [("RL.THROTTLE", k) for k in keys if k.startswith(b"cfg:")][:100]
    writes += [("RL.CONFIG", k, 5, HOUR) for k in keys[:100] if not k.startswith(b"other")]
    writes += [("RL.CONFIG", f"fresh-cfg:{n}", 5, HOUR) for n in range(100)]
    replies = run(c, writes)
    assert all(isinstance(x, OOM) for x in replies), [x for x in replies if not isinstance(x, OOM)][:3]
    assert snapshot(c, keys) == before
    assert c.exists(*[f"fresh:{n}" for n in range(200)], *[f"fresh-cfg:{n}" for n in range(100)]) == 0
    peeks = run(c, [("RL.PEEK", k) for k in keys if k.startswith(b"cfg:")])
    assert all(isinstance(x, list) and len(x) == 5 for x in peeks)
    assert rl_info(s.port, "cfg:0")[b"limit"] == 10 and rl_info(s.port, "u:0")[b"source"] == b"none"
    assert evicted(c) == 0
    with capsys.disabled():
        print(f"\nnoeviction: used_memory {start} -> maxmemory {start + 128 * 1024}; {accepted} new "
              f"clients accepted, then OOM at used_memory {at_oom}; {len(replies)} writes over the "
              f"limit, all OOM; {len(keys)} keys unchanged; evicted 0")


@pytest.mark.parametrize("policy", ["volatile-lru", "volatile-ttl"])
def test_volatile_policies_evict_only_usage_keys_and_keep_every_stored_policy(server_under, policy,
                                                                              capsys):
    """3,000 stored policies (no TTL) and 5,000 usage keys (TTL) fill memory to 2 MB below
    maxmemory; then 40,000 new clients push far past it. Redis evicts only keys with a TTL:
    usage keys (and keys configured with IDLE, which carry one too). Every stored policy
    survives with its digest, and the new clients are served, not refused."""
    s, c = server_under(policy)
    keys = populate(c, 3000, 5000)
    policies = [k for k in keys if k.startswith(b"cfg:")]
    before = snapshot(c, policies)
    c.config_set("maxmemory", used(c) + 2 * 1024 * 1024)
    replies = run(c, [("RL.ALLOW", f"push:{n}", "LIMIT", 10, "WINDOW", HOUR) for n in range(40_000)])
    refused = sum(isinstance(x, Exception) for x in replies)
    usage_left = count(c, "u:*")
    pushed_left = count(c, "push:*")
    with capsys.disabled():
        print(f"\n{policy}: maxmemory {c.config_get('maxmemory')['maxmemory']}, used_memory {used(c)}, "
              f"evicted {evicted(c)}; usage keys left {usage_left}/5000, new clients left "
              f"{pushed_left}/40000 ({refused} refused); stored policies left "
              f"{count(c, 'cfg:*')}/3000")
    assert evicted(c) > 10_000 and refused == 0
    assert snapshot(c, policies) == before
    assert c.exists("other:string", "other:list") == 2  # no TTL either


def test_allkeys_lru_evicts_stored_policies_too(server_under, capsys):
    """With allkeys-lru (or allkeys-lfu, allkeys-random) Redis may evict any key, stored
    policies included: a client whose policy was evicted then falls back to the default
    policy (or gets the no-policy error). Use a volatile-* policy, or noeviction, on a
    server that holds policies. This test shows it happen: pushing 40,000 new clients past
    maxmemory evicts some of the 3,000 stored policies."""
    s, c = server_under("allkeys-lru")
    populate(c, 3000, 5000)
    c.config_set("maxmemory", used(c) + 2 * 1024 * 1024)
    run(c, [("RL.ALLOW", f"push:{n}", "LIMIT", 10, "WINDOW", HOUR) for n in range(40_000)])
    left = count(c, "cfg:*")
    with capsys.disabled():
        print(f"\nallkeys-lru: evicted {evicted(c)}; stored policies left {left}/3000")
    assert evicted(c) > 10_000 and left < 3000
    with pytest.raises(redis.ResponseError, match="no rate limit for key"):
        c.execute_command("RL.ALLOW", next(f"cfg:{n}" for n in range(3000) if not c.exists(f"cfg:{n}")))
