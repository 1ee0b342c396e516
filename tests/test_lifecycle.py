"""Key lifecycle: usage-only keys expire when their bucket is empty, configured keys stay
(unless IDLE), and idle clients leave no memory behind, through Redis's own active expiry."""

from helpers import HOUR, active_expiry_paused, allow, pexpiretime, server_ms, used_memory
from helpers import wait_until as wait_for


def test_usage_key_expires_when_its_bucket_is_empty(r):
    before = server_ms(r)
    allow(r, "k", "LIMIT", 4, "WINDOW", HOUR)  # T = 900000 ms
    after = server_ms(r)
    assert before + 900_000 <= pexpiretime(r, "k") <= after + 900_000
    allow(r, "k", "LIMIT", 4, "WINDOW", HOUR)
    assert before + 1_800_000 <= pexpiretime(r, "k") <= after + 1_800_000


def test_denied_requests_do_not_touch_the_expiry(r):
    opts = ("LIMIT", 1, "WINDOW", HOUR)
    assert allow(r, "k", *opts) == 1
    expiry = pexpiretime(r, "k")
    for _ in range(5):
        assert allow(r, "k", *opts) == 0
    assert pexpiretime(r, "k") == expiry


def test_configured_key_does_not_expire(r):
    r.execute_command("RL.CONFIG", "k", 10, 1000)
    allow(r, "k")
    assert r.pttl("k") == -1


def test_configuring_a_usage_key_removes_its_expiry(r):
    allow(r, "k", "LIMIT", 10, "WINDOW", HOUR)
    assert r.pttl("k") > 0
    r.execute_command("RL.CONFIG", "k", 10, HOUR)
    assert r.pttl("k") == -1


def test_idle_key_expires_idle_ms_after_last_allowed_request_but_not_before_empty(r):
    before = server_ms(r)
    r.execute_command("RL.CONFIG", "k", 10, HOUR, "IDLE", 5000)
    after = server_ms(r)
    # Empty bucket: forgotten idle_ms after configuration.
    assert before + 5000 <= pexpiretime(r, "k") <= after + 5000
    before = server_ms(r)
    allow(r, "k")  # TAT = now + 360000 > now + 5000: kept until the bucket is empty
    after = server_ms(r)
    assert before + 360_000 <= pexpiretime(r, "k") <= after + 360_000


def test_idle_key_is_forgotten_once_idle(r):
    r.execute_command("RL.CONFIG", "k", 100, 1000, "IDLE", 200)
    allow(r, "k")
    wait_for(lambda: r.exists("k") == 0, what="idle key to expire")


def test_expired_bucket_is_an_empty_bucket(r):
    opts = ("LIMIT", 5, "WINDOW", 250)  # T = 50 ms, full bucket drains in 250 ms
    assert sum(allow(r, "k", *opts) for _ in range(5)) == 5
    wait_for(lambda: r.exists("k") == 0, what="key to expire")
    assert sum(allow(r, "k", *opts) for _ in range(10)) >= 5


def test_idle_clients_are_evicted_and_memory_returns(r):
    """10,000 clients seen once under a 300 ms window: active expiry removes every key
    without any command touching them, and used_memory returns near its baseline.
    Active expiry is paused while the clients arrive, so that all 10,000 keys are counted
    however long the pipeline takes (on a busy machine, longer than the window)."""
    r.config_set("rl.default-limit", 1)
    r.config_set("rl.default-window-ms", 300)
    baseline = used_memory(r)
    with active_expiry_paused(r):
        p = r.pipeline(transaction=False)
        for i in range(10_000):
            p.execute_command("RL.ALLOW", f"client:{i}")
        assert all(p.execute())
        assert r.dbsize() == 10_000
        grown = used_memory(r)
    assert grown > baseline
    wait_for(lambda: r.dbsize() == 0, timeout=30, what="active expiry to remove every client")
    # Within 10% of the growth: what is left is allocator and dict slack, not our values.
    assert used_memory(r) - baseline < (grown - baseline) * 0.1 + 64 * 1024
