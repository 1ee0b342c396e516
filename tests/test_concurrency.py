"""Issue 20's CONCURRENCY kind through a real server: RL.ACQUIRE / RL.RELEASE / RL.RENEW
replies and errors, releases of foreign or expired leases freeing nothing, RL.ALLOW /
RL.THROTTLE / RL.RESERVE refused on such a key, RL.PEEK for a hypothetical acquire,
all-or-nothing with rate limits, 50 concurrent workers at limit 2 never holding more than 2,
and SIGKILLed workers' slots coming back after the lease's lifetime (polled, not slept)."""

import os
import signal
import subprocess
import sys
import threading

import pytest
import redis
from helpers import HOUR, at_once, config, rl_info, server_ms, wait_until

ACQUIRE_FIELDS = ("allowed", "limit", "remaining", "retry_after_ms", "reset_after_ms", "binding", "lease")
NEEDS_ACQUIRE = "this key has a CONCURRENCY limit: take a lease with RL.ACQUIRE and give it back with RL.RELEASE"


def acquire(c, key, *args):
    reply = c.execute_command("RL.ACQUIRE", key, *args)
    assert isinstance(reply, list) and len(reply) == 7, reply
    return dict(zip(ACQUIRE_FIELDS, reply))


def info(c, key):
    return rl_info(c.connection_pool.connection_kwargs["port"], key)


def test_acquire_release_and_renew(r):
    config(r, "c", 2, HOUR, "CONCURRENCY")
    a = acquire(r, "c")
    assert (a["allowed"], a["limit"], a["remaining"], a["retry_after_ms"], a["binding"]) == (1, 2, 1, -1, 0)
    b = acquire(r, "c")
    assert b["lease"] > a["lease"] and b["remaining"] == 0
    denied = acquire(r, "c")
    assert denied["allowed"] == 0 and denied["lease"] is None and denied["remaining"] == 0
    assert 0 < denied["retry_after_ms"] <= HOUR
    i = info(r, "c")
    assert i[b"leases"] == 2 and i[b"limits"][0][i[b"limits"][0].index(b"held") + 1] == 2
    assert r.execute_command("RL.RELEASE", "c", a["lease"]) == 1
    assert r.execute_command("RL.RELEASE", "c", a["lease"]) == 0, "a second release frees nothing"
    assert r.execute_command("RL.RENEW", "c", b["lease"], 10) == 1
    assert r.execute_command("RL.RENEW", "c", a["lease"], 10) == 0
    assert acquire(r, "c")["allowed"] == 1


def test_a_foreign_or_expired_release_frees_nothing(r):
    config(r, "c", 1, 100, "CONCURRENCY")
    t0 = server_ms(r)
    old = acquire(r, "c")["lease"]
    wait_until(lambda: server_ms(r) >= t0 + 150, what="the lease to expire")
    new = acquire(r, "c")
    assert new["allowed"] == 1 and new["lease"] > old
    before = r.execute_command("DEBUG", "DIGEST-VALUE", "c")
    # The old holder's late release, a made-up id and another key's id free nothing.
    got = at_once(r, ("RL.RELEASE", "c", old), ("RL.RELEASE", "c", new["lease"] + 1),
                  ("RL.RELEASE", "c", 1), ("RL.ACQUIRE", "c"))
    assert got[:3] == [0, 0, 0] and got[3][0] == 0, got
    assert r.execute_command("DEBUG", "DIGEST-VALUE", "c") == before


def test_check_commands_are_refused_and_peek_answers_for_an_acquire(r):
    config(r, "c", 1, HOUR, "CONCURRENCY")
    for cmd in (("RL.ALLOW", "c"), ("RL.THROTTLE", "c"), ("RL.RESERVE", "c", 1)):
        with pytest.raises(redis.ResponseError, match=NEEDS_ACQUIRE):
            r.execute_command(*cmd)
    with pytest.raises(redis.ResponseError, match=NEEDS_ACQUIRE):
        r.execute_command("RL.ALLOW", "inline", "LIMIT", 1, "WINDOW", 1000, "CONCURRENCY")
    assert r.execute_command("RL.PEEK", "c")[:3] == [1, 1, 0]
    acquire(r, "c")
    assert r.execute_command("RL.PEEK", "c")[0] == 0


def test_acquire_without_a_concurrency_limit_counts_and_has_no_lease(r):
    got = acquire(r, "plain", "LIMIT", 2, "WINDOW", HOUR)
    assert got["allowed"] == 1 and got["lease"] is None and got["remaining"] == 1


def test_all_or_nothing_with_rate_limits(r):
    for kind in ("GCRA", "SLIDING"):
        key = f"both:{kind}"
        config(r, key, 3, HOUR, kind, "AND", 2, HOUR, "CONCURRENCY")
        a, b = acquire(r, key), acquire(r, key)
        # The concurrency limit denies: the rate limit counts nothing.
        denied = acquire(r, key)
        assert denied["allowed"] == 0 and denied["binding"] == 1
        rate = info(r, key)[b"limits"][0]
        assert rate[rate.index(b"remaining") + 1] == 1
        r.execute_command("RL.RELEASE", key, a["lease"])
        assert acquire(r, key)["allowed"] == 1
        r.execute_command("RL.RELEASE", key, b["lease"])
        # Now the rate limit (3 per hour, all used) denies: no lease is taken.
        denied = acquire(r, key)
        assert denied["allowed"] == 0 and denied["binding"] == 0 and denied["lease"] is None
        assert info(r, key)[b"leases"] == 1


def test_cost_and_lease_bounds(r):
    config(r, "c", 3, HOUR, "CONCURRENCY")
    assert acquire(r, "c", "COST", 2)["remaining"] == 1
    assert acquire(r, "c", "COST", 2)["allowed"] == 0
    never = acquire(r, "c", "COST", 4)
    assert never["allowed"] == 0 and never["retry_after_ms"] == -1
    with pytest.raises(redis.ResponseError):
        r.execute_command("RL.CONFIG", "big", 1001, HOUR, "CONCURRENCY")
    with pytest.raises(redis.ResponseError):
        r.execute_command("RL.CONFIG", "burst", 2, HOUR, "BURST", 3, "CONCURRENCY")
    for ms in (0, 4294967296):
        with pytest.raises(redis.ResponseError):
            r.execute_command("RL.RENEW", "c", 1, ms)


def test_fifty_workers_at_limit_two_never_hold_more_than_two(r, server):
    config(r, "pool", 2, HOUR, "CONCURRENCY")
    live, most, lock, errors = set(), 0, threading.Lock(), []

    def worker():
        c = server.client()
        try:
            for _ in range(20):
                got = acquire(c, "pool")
                if not got["allowed"]:
                    continue
                nonlocal most
                with lock:
                    live.add(got["lease"])
                    most = max(most, len(live))
                held = info(c, "pool")[b"leases"]
                if held > 2:
                    errors.append(held)
                with lock:
                    live.discard(got["lease"])
                assert c.execute_command("RL.RELEASE", "pool", got["lease"]) == 1
        except Exception as e:  # noqa: BLE001 -- reported below
            errors.append(e)
        finally:
            c.close()

    threads = [threading.Thread(target=worker) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors[:5]
    assert 1 <= most <= 2
    assert info(r, "pool")[b"leases"] == 0


HOLDER = """
import sys, redis
c = redis.Redis(port=int(sys.argv[1]), protocol=2)
reply = c.execute_command("RL.ACQUIRE", "jobs")
print(reply[0], flush=True)
sys.stdin.read()
"""


def test_sigkilled_workers_slots_come_back_after_the_lease_lifetime(r, server):
    lease_ms = 1500
    config(r, "jobs", 2, lease_ms, "CONCURRENCY")
    t0 = server_ms(r)
    procs = [subprocess.Popen([sys.executable, "-c", HOLDER, str(server.port)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        assert [p.stdout.readline().strip() for p in procs] == ["1", "1"]
        for p in procs:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(timeout=30)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)
    # The dead workers' leases still hold their slots until they expire ...
    denied = acquire(r, "jobs")
    assert denied["allowed"] == 0 or server_ms(r) >= t0 + lease_ms
    # ... and come back by themselves: no release ever came.
    got = wait_until(lambda: (a := acquire(r, "jobs"))["allowed"] and a, timeout=60,
                     what="a dead worker's slot to come back", interval=0.05)
    assert server_ms(r) >= t0 + lease_ms
    assert got["lease"] is not None


def test_an_expired_lease_key_expires_by_itself(r):
    r.execute_command("RL.ACQUIRE", "short", "LIMIT", 1, "WINDOW", 100, "CONCURRENCY")
    wait_until(lambda: r.exists("short") == 0, what="the usage-only lease key to expire")


def test_reconfiguration_carries_leases_to_a_concurrency_limit_and_a_kind_change_drops_them(r):
    config(r, "t", 3, HOUR, "CONCURRENCY")
    held = acquire(r, "t", "COST", 2)["lease"]
    # Lowered below what is held: the lease stays, new acquires see the new limit.
    config(r, "t", 1, HOUR, "CONCURRENCY")
    assert acquire(r, "t")["allowed"] == 0
    assert r.execute_command("RL.RELEASE", "t", held) == 1
    assert acquire(r, "t")["allowed"] == 1
    # To another kind: a new contract, the leases are gone.
    config(r, "k", 2, HOUR, "CONCURRENCY")
    old = acquire(r, "k")["lease"]
    config(r, "k", 2, HOUR)
    assert info(r, "k")[b"leases"] == 0, "already dropped, before the key's next write"
    assert r.execute_command("RL.RELEASE", "k", old) == 0
    assert r.execute_command("RL.THROTTLE", "k")[:3] == [1, 2, 1]
    assert info(r, "k")[b"leases"] == 0
    assert r.execute_command("RL.RELEASE", "k", old) == 0
