"""Issue 19's penalties and RL.BLOCK / RL.UNBLOCK through a real server: PENALTY ms [MAX]
doubling within one window of the last block's end and capped, blocked checks counting
nothing with the spec's numbers (decision 1), shadow keys never penalized, RL.BLOCK's
usage-only key expiring at the block's end, UNBLOCK's 1/0, and the ACL advice: a user granted
`+rl.allow` only cannot refund, settle or unblock.

A denying request and the RL.INFO that reads the block it started run in one MULTI, so the
block's length is read right after it began however busy the machine is (the module reads the
clock per command, so the MULTI's commands may be 1 ms apart: `near`)."""

import re

import pytest
import redis
from helpers import HOUR, at_once, config, pexpiretime, rl_info, server_ms, throttle, wait_until

NOPERM = redis.exceptions.NoPermissionError


def left(c, key):
    return rl_info(c.connection_pool.connection_kwargs["port"], key)[b"remaining"]


def deny_and_info(r, key, *opts):
    """(RL.THROTTLE's reply, RL.INFO as a dict) at one instant."""
    reply, info = at_once(r, ("RL.THROTTLE", key, *opts), ("RL.INFO", key))
    return reply, dict(zip(info[::2], info[1::2]))


def near(got, want, slack=50):
    """A length in ms read just after it started: `want`, or up to `slack` ms less."""
    return want - slack < got <= want


def block_of(info):
    return info[b"blocked_ms"], info[b"penalty_level"]


def changes(c):
    return c.info("persistence")["rdb_changes_since_last_save"]


def test_penalty_doubles_within_a_window_and_stops_at_max(r):
    # 1 per hour: every request after the first is denied for the whole test.
    config(r, "login", 1, HOUR, "PENALTY", 100, "MAX", 400)
    assert throttle(r, "login")["allowed"] == 1
    for level, d in enumerate((100, 200, 400, 400)):
        reply, info = deny_and_info(r, "login")
        assert reply[0] == 0 and reply[2] == 0
        assert info[b"penalty_level"] == level and near(info[b"blocked_ms"], d), (block_of(info), d)
        # Decision 1: the retry is the later of the block's end and the request's own retry.
        assert reply[3] == max(d, reply[3]) and reply[3] > HOUR - 60_000
        assert (info[b"penalty_ms"], info[b"penalty_max_ms"]) == (100, 400)
        wait_until(lambda: rl_info(r.connection_pool.connection_kwargs["port"], "login")[b"blocked_ms"] == 0,
                   what="the block to end")


def test_a_blocked_key_denies_counting_nothing_and_unblock_resets_the_level(r):
    config(r, "k", 10, HOUR)
    throttle(r, "k", "COST", 3)
    assert r.execute_command("RL.BLOCK", "k", HOUR) == b"OK"
    before = r.execute_command("DEBUG", "DIGEST-VALUE", "k")
    for cmd in (("RL.THROTTLE", "k"), ("RL.ALLOW", "k"), ("RL.RESERVE", "k", 1)):
        reply = r.execute_command(*cmd)
        if isinstance(reply, list):
            assert reply[0] == 0 and reply[2] == 0 and reply[3] > HOUR - 60_000, (cmd, reply)
        else:
            assert reply == 0
    assert r.execute_command("DEBUG", "DIGEST-VALUE", "k") == before, "a blocked check counts nothing"
    peeked = r.execute_command("RL.PEEK", "k")
    assert peeked[0] == 0 and peeked[2] == 0
    assert r.execute_command("RL.UNBLOCK", "k") == 1
    before = changes(r)
    assert r.execute_command("RL.UNBLOCK", "k") == 0
    assert changes(r) == before, "unblocking an unblocked key writes nothing"
    assert left(r, "k") == 7


def test_block_keeps_the_penalty_level_and_unblock_resets_it(r, server):
    config(r, "p", 1, HOUR, "PENALTY", 50, "MAX", 10_000)
    throttle(r, "p")
    _, info = deny_and_info(r, "p")
    assert info[b"penalty_level"] == 0
    _, info = at_once(r, ("RL.BLOCK", "p", 30), ("RL.INFO", "p"))
    info = dict(zip(info[::2], info[1::2]))
    assert info[b"penalty_level"] == 0 and near(info[b"blocked_ms"], 30, 20), block_of(info)
    wait_until(lambda: rl_info(server.port, "p")[b"blocked_ms"] == 0, what="the block to end")
    _, info = deny_and_info(r, "p")
    assert info[b"penalty_level"] == 1 and near(info[b"blocked_ms"], 100), "the level was kept"
    assert r.execute_command("RL.UNBLOCK", "p") == 1
    assert rl_info(server.port, "p")[b"penalty_level"] == 0
    _, info = deny_and_info(r, "p")
    assert info[b"penalty_level"] == 0 and near(info[b"blocked_ms"], 50, 40), block_of(info)


def test_block_of_a_key_without_policy_expires_with_the_block(r):
    t0 = server_ms(r)
    assert r.execute_command("RL.BLOCK", "nobody", 200) == b"OK"
    t1 = server_ms(r)
    assert t0 + 200 <= pexpiretime(r, "nobody") <= t1 + 200
    denied = r.execute_command("RL.THROTTLE", "nobody", "LIMIT", 5, "WINDOW", HOUR)
    assert denied[0] == 0
    wait_until(lambda: r.exists("nobody") == 0, what="the blocked key to expire")
    assert r.execute_command("RL.THROTTLE", "nobody", "LIMIT", 5, "WINDOW", HOUR)[0] == 1


def test_a_shadow_key_is_never_penalized_and_answers_allowed_while_blocked(r):
    config(r, "sh", 1, HOUR, "SHADOW", "PENALTY", 1000)
    throttle(r, "sh")
    reply, info = deny_and_info(r, "sh")
    assert reply[0] == 1 and info[b"blocked_ms"] == 0
    r.execute_command("RL.BLOCK", "sh", HOUR)
    assert throttle(r, "sh")["allowed"] == 1


def test_penalties_are_opt_in(r):
    config(r, "plain", 1, HOUR)
    throttle(r, "plain")
    _, info = deny_and_info(r, "plain")
    assert info[b"blocked_ms"] == 0 and info[b"penalty_ms"] is None


def test_inline_penalty_and_errors(r):
    reply = r.execute_command("RL.THROTTLE", "in", "COST", 2, "LIMIT", 1, "WINDOW", HOUR, "PENALTY", 5000)
    assert reply[0] == 0 and reply[3] == -1, "a cost that can never fit is -1 even when it blocks"
    assert 0 < rl_info(r.connection_pool.connection_kwargs["port"], "in")[b"blocked_ms"] <= 5000
    for bad in (("PENALTY", 0), ("PENALTY", 10**12 + 1), ("PENALTY", 100, "MAX", 99),
                ("PENALTY", 100, "MAX", 10**12 + 1)):
        with pytest.raises(redis.ResponseError):
            r.execute_command("RL.CONFIG", "bad", 1, HOUR, *bad)
    for ms in (0, -1, 10**12 + 1, "x"):
        with pytest.raises(redis.ResponseError):
            r.execute_command("RL.BLOCK", "bad", ms)
    assert r.exists("bad") == 0
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        r.execute_command("RL.UNBLOCK", "a", "b")


def test_a_user_granted_only_rl_allow_cannot_refund_settle_or_unblock(server, r):
    """The README's advice for apps that face users: `+rl.allow` only. RL.REFUND, RL.SETTLE,
    RL.UNBLOCK (which can lift a limit) and RL.BLOCK are refused with NOPERM."""
    config(r, "acct", 2, HOUR)
    hold = r.execute_command("RL.RESERVE", "acct", 1)[6]
    r.execute_command("RL.BLOCK", "acct", HOUR)
    before = r.execute_command("DEBUG", "DIGEST-VALUE", "acct")
    r.execute_command("ACL", "SETUSER", "app", "reset", "on", "nopass", "~*", "+rl.allow")
    try:
        u = server.client(username="app", password="x")
        for call in (("RL.REFUND", "acct", 1), ("RL.SETTLE", "acct", hold, 0), ("RL.UNBLOCK", "acct"),
                     ("RL.BLOCK", "acct", 1)):
            with pytest.raises(NOPERM, match=re.escape(f"'{call[0].lower()}' command")):
                u.execute_command(*call)
        assert u.execute_command("RL.ALLOW", "acct") == 0, "still blocked"
        assert r.execute_command("DEBUG", "DIGEST-VALUE", "acct") == before
        u.close()
    finally:
        r.acl_deluser("app")
