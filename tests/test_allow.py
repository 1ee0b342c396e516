"""RL.ALLOW and RL.CONFIG semantics against a real server: the GCRA contract, policy
precedence, COST, refill, RESP3, binary keys, WATCH, and concurrency on one key."""

import threading
import time

import pytest
import redis
from helpers import HOUR, allow, at_once, config, ms, server_ms


def count_allowed(r, key, n, *opts):
    return sum(allow(r, key, *opts) for _ in range(n))


def test_the_brief_example_allows_ten_then_denies_five(r):
    assert config(r, "user123", 10, 60000) == b"OK"
    assert [allow(r, "user123") for _ in range(15)] == [1] * 10 + [0] * 5


def test_clients_are_independent(r):
    config(r, "a", 3, HOUR)
    config(r, "b", 3, HOUR)
    assert count_allowed(r, "a", 10) == 3
    assert count_allowed(r, "b", 10) == 3
    assert allow(r, "c", "LIMIT", 1, "WINDOW", HOUR) == 1


def test_burst_sets_how_many_pass_at_once(r):
    config(r, "k", 10, HOUR, "BURST", 4)
    assert count_allowed(r, "k", 10) == 4


def test_cost_weighs_a_request_as_n(r):
    config(r, "k", 10, HOUR)
    assert allow(r, "k", "COST", 7) == 1
    assert allow(r, "k", "COST", 4) == 0  # 7 + 4 > 10, and the denial counts for nothing
    assert allow(r, "k", "COST", 3) == 1
    assert allow(r, "k") == 0


def test_a_request_heavier_than_the_burst_never_passes(r):
    config(r, "k", 10, HOUR, "BURST", 5)
    assert allow(r, "k", "COST", 6) == 0
    assert count_allowed(r, "k", 10) == 5  # the heavy request consumed nothing


def test_default_policy_applies_to_unconfigured_keys(r):
    with pytest.raises(redis.ResponseError, match="no rate limit for key"):
        allow(r, "anon")
    r.config_set("rl.default-limit", 5)
    r.config_set("rl.default-window-ms", HOUR)
    assert count_allowed(r, "anon", 10) == 5
    r.config_set("rl.default-burst", 8)
    assert count_allowed(r, "anon2", 10) == 8


def test_policy_precedence_is_stored_then_inline_then_default(r):
    r.config_set("rl.default-limit", 100)
    r.config_set("rl.default-window-ms", HOUR)
    config(r, "k", 2, HOUR)
    # Stored beats default.
    assert count_allowed(r, "k", 5) == 2
    # Stored beats inline (issue 11): a looser inline policy cannot lift the operator's limit.
    assert allow(r, "k", "LIMIT", 10, "WINDOW", HOUR, "BURST", 20) == 0
    assert allow(r, "k") == 0
    # Inline beats default, for a key nobody configured.
    assert count_allowed(r, "fresh", 5, "LIMIT", 3, "WINDOW", HOUR) == 3


def test_inline_policy_works_without_any_stored_state(r):
    opts = ("LIMIT", 3, "WINDOW", HOUR, "BURST", 2)
    assert count_allowed(r, "k", 5, *opts) == 2
    assert r.type("k") == b"ratelimit"


def test_reconfiguring_keeps_usage(r):
    config(r, "k", 3, 60000)
    assert count_allowed(r, "k", 3) == 3
    # Usage is kept as time: the TAT is one full window ahead, so under 5 per minute (burst 5,
    # 12 s per request, 60 s tolerance) the next request would need 72 s: denied.
    config(r, "k", 5, 60000)
    assert allow(r, "k") == 0
    # Re-sending the same policy grants nothing either.
    config(r, "k", 3, 60000)
    assert allow(r, "k") == 0


def test_configuring_a_used_key_keeps_its_usage(r):
    opts = ("LIMIT", 3, "WINDOW", HOUR)
    assert count_allowed(r, "k", 3, *opts) == 3
    config(r, "k", 3, HOUR)
    assert allow(r, "k") == 0


def test_tat_is_exact_to_the_millisecond(r):
    """A usage key's expiry is its TAT: k requests from idle at server time t0 expire at
    exactly t0 + k*T (T = 3600000/7 ms, rounded up once, at the end)."""
    before = server_ms(r)
    for _ in range(5):
        assert allow(r, "k", "LIMIT", 7, "WINDOW", HOUR) == 1
    after = server_ms(r)
    expire_at = r.execute_command("PEXPIRETIME", "k")
    five_intervals = -(-5 * HOUR // 7)  # ceil(5 * 3600000 / 7)
    assert before + five_intervals <= expire_at <= after + five_intervals


def test_bucket_refills_one_request_per_interval(r):
    """2 per second, burst 1: T = 500 ms. The next request passes once the server clock
    reaches the key's TAT (one interval after the first), and not before."""
    opts = ("LIMIT", 2, "WINDOW", 1000, "BURST", 1)
    assert allow(r, "k", *opts) == 1
    tat = r.execute_command("PEXPIRETIME", "k")
    deadline = time.monotonic() + 10
    while allow(r, "k", *opts) == 0:
        # Denied: so the server clock was still before the TAT when it decided.
        assert time.monotonic() < deadline, "never refilled"
        time.sleep(0.01)
    assert server_ms(r) >= tat
    # Exactly one slot opened: the next request is denied unless the server's clock read
    # for it had reached the slot after that (TAT + 500 ms; TIME in the same MULTI, after
    # it, bounds that read from above however long the machine stalled before it).
    allowed, t = at_once(r, ("RL.ALLOW", "k", *opts), ("TIME",))
    if ms(t) < tat + 500:
        assert allowed == 0


def test_resp2_clients_get_integers_and_resp3_clients_booleans(server):
    c2, c3 = server.client(protocol=2), server.client(protocol=3)
    c2.flushall()
    config(c2, "k", 2, HOUR)
    assert allow(c2, "k") == 1 and type(allow(c3, "k")) is bool
    assert allow(c2, "k") == 0 and allow(c2, "k") is not False
    assert allow(c3, "k") is False
    config(c2, "j", 1, HOUR)
    assert allow(c3, "j") is True
    c2.close()
    c3.close()


def test_binary_and_non_utf8_keys_work(r):
    keys = [b"\xff\xfe\x00bin", b"", b"\r\n*1\r\n", "ключ".encode()]
    for k in keys:
        assert count_allowed(r, k, 3, "LIMIT", 2, "WINDOW", HOUR) == 2
    assert r.dbsize() == len(keys)


def test_denied_request_does_not_abort_a_watch_but_an_allowed_one_does(r):
    config(r, "k", 1, HOUR)
    assert allow(r, "k") == 1
    with r.pipeline() as p:
        p.watch("k")
        assert allow(r, "k") == 0  # denied: the key did not change
        p.multi()
        p.ping()
        assert p.execute() == [True]
    config(r, "k2", 5, HOUR)
    with r.pipeline() as p:
        p.watch("k2")
        assert allow(r, "k2") == 1
        p.multi()
        p.ping()
        with pytest.raises(redis.WatchError):
            p.execute()


def test_concurrent_clients_on_one_key_get_exactly_burst(server):
    """40 connections hammer one key: exactly `burst` requests pass, no more, no less."""
    c = server.client()
    c.flushall()
    config(c, "hot", 250, HOUR)
    allowed = []
    start = threading.Barrier(40)

    def worker():
        w = server.client()
        start.wait()
        allowed.append(sum(allow(w, "hot") for _ in range(25)))
        w.close()

    threads = [threading.Thread(target=worker) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed) == 250
    assert allow(c, "hot") == 0
    c.close()


def test_pipelined_calls_are_decided_in_order(r):
    config(r, "k", 4, HOUR)
    p = r.pipeline(transaction=False)
    for _ in range(6):
        p.execute_command("RL.ALLOW", "k")
    assert p.execute() == [1, 1, 1, 1, 0, 0]


def test_rl_allow_inside_multi_and_lua(r):
    config(r, "k", 2, HOUR)
    with r.pipeline(transaction=True) as p:
        for _ in range(3):
            p.execute_command("RL.ALLOW", "k")
        assert p.execute() == [1, 1, 0]
    config(r, "j", 1, HOUR)
    script = "return {redis.call('RL.ALLOW', KEYS[1]), redis.call('RL.ALLOW', KEYS[1])}"
    assert r.eval(script, 1, "j") == [1, 0]
