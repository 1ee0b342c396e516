"""Issue 19's RL.REFUND, RL.RESERVE and RL.SETTLE through a real server: replies (RESP2 and
RESP3), errors, refunds bounded by live usage, reserve + settle in both directions, the debt
cap, unknown/expired/settled ids, expired holds staying charged, the 64-hold bound, RL.INFO's
hold fields, and that a change of nothing writes nothing (rdb_changes_since_last_save).

Windows are an hour unless a test waits for an expiry, so no refill lands during a test."""

import re

import pytest
import redis
from helpers import HOUR, at_once, config, peek, rl_info, server_ms, throttle, wait_until

RESERVE_FIELDS = ("allowed", "limit", "remaining", "retry_after_ms", "reset_after_ms", "binding",
                  "reservation")
UNKNOWN = "unknown reservation: it expired, was settled, or was never issued"
TOO_MANY = "too many open reservations: a key holds at most 64 (settle them or let them expire)"


def reserve(c, key, *args):
    reply = c.execute_command("RL.RESERVE", key, *args)
    assert isinstance(reply, list) and len(reply) == 7, reply
    return dict(zip(RESERVE_FIELDS, reply))


def changes(c):
    """Writes since the last save: a command that changes nothing leaves it as it was."""
    return c.info("persistence")["rdb_changes_since_last_save"]


def left(c, key):
    """RL.INFO's `remaining` (RL.PEEK's counts its own hypothetical request)."""
    return rl_info(c.connection_pool.connection_kwargs["port"], key)[b"remaining"]


def info(server, key):
    return rl_info(server.port, key, text=True)


# --- RL.REFUND ----------------------------------------------------------------------------


def test_refund_gives_back_at_most_the_live_usage_on_gcra(r):
    config(r, "k", 10, HOUR)
    assert throttle(r, "k", "COST", 3)["remaining"] == 7
    assert r.execute_command("RL.REFUND", "k", 2) == 2
    assert left(r, "k") == 9
    # Only 1 unit is still live: 5 asked, 1 given back, never room beyond an empty bucket.
    assert r.execute_command("RL.REFUND", "k", 5) == 1
    assert left(r, "k") == 10
    before = changes(r)
    assert r.execute_command("RL.REFUND", "k", 5) == 0
    assert changes(r) == before, "a refund of nothing writes nothing"


def test_refund_on_sliding_removes_the_most_recent_entries(r):
    config(r, "s", 5, HOUR, "SLIDING")
    throttle(r, "s", "COST", 2)
    throttle(r, "s", "COST", 2)
    assert r.execute_command("RL.REFUND", "s", 3) == 3
    assert left(r, "s") == 4
    assert r.execute_command("RL.REFUND", "s", 9) == 1
    assert left(r, "s") == 5


def test_refund_needs_a_policy_and_refunding_an_absent_key_creates_nothing(r):
    with pytest.raises(redis.ResponseError, match="no rate limit for key"):
        r.execute_command("RL.REFUND", "absent", 1)
    assert r.execute_command("RL.REFUND", "absent", 1, "LIMIT", 5, "WINDOW", HOUR) == 0
    assert r.exists("absent") == 0
    for n in (0, -1, 10**9 + 1, "x"):
        with pytest.raises(redis.ResponseError, match="n must be an integer from 1 to 1000000000"):
            r.execute_command("RL.REFUND", "absent", n, "LIMIT", 5, "WINDOW", HOUR)


def test_refund_of_an_inline_usage_key_uses_the_inline_policy(r):
    throttle(r, "u", "COST", 4, "LIMIT", 10, "WINDOW", HOUR)
    assert r.execute_command("RL.REFUND", "u", 10, "LIMIT", 10, "WINDOW", HOUR) == 4
    assert peek(r, "u", "LIMIT", 10, "WINDOW", HOUR)["remaining"] == 9


# --- RL.RESERVE / RL.SETTLE ---------------------------------------------------------------


def test_reserve_replies_like_throttle_with_a_reservation_id(r):
    config(r, "k", 10, HOUR)
    config(r, "twin", 10, HOUR)
    got, want = at_once(r, ("RL.RESERVE", "k", 4), ("RL.THROTTLE", "twin", "COST", 4))
    assert got[:5] == want and got[5] == 0
    t = server_ms(r)
    assert isinstance(got[6], int) and got[6] <= t * 1000 + 999
    # Ids strictly increase; a denied reserve counts nothing and has no id.
    second = reserve(r, "k", 6)
    assert second["allowed"] == 1 and second["reservation"] > got[6]
    denied = reserve(r, "k", 1)
    assert denied["allowed"] == 0 and denied["reservation"] is None
    assert rl_info(r.connection_pool.connection_kwargs["port"], "k")[b"holds"] == 2


def test_reserve_in_resp3_is_a_map_with_the_reservation(server):
    c = server.client(protocol=3)
    c.execute_command("FLUSHALL", "SYNC")
    reply = c.execute_command("RL.RESERVE", "k", 2, "LIMIT", 10, "WINDOW", HOUR)
    assert isinstance(reply, dict)
    assert [k.decode() for k in reply] == list(RESERVE_FIELDS)
    assert reply[b"allowed"] in (1, True) and isinstance(reply[b"reservation"], int)
    denied = c.execute_command("RL.RESERVE", "k", 11, "LIMIT", 10, "WINDOW", HOUR)
    assert denied[b"reservation"] is None
    c.close()


def test_settle_below_the_estimate_refunds_the_difference_and_above_charges(r):
    config(r, "k", 10, HOUR)
    hold = reserve(r, "k", 6)["reservation"]
    assert r.execute_command("RL.SETTLE", "k", hold, 2) == -4
    assert left(r, "k") == 8
    hold = reserve(r, "k", 2)["reservation"]
    assert r.execute_command("RL.SETTLE", "k", hold, 5) == 3
    assert left(r, "k") == 3
    hold = reserve(r, "k", 3)["reservation"]
    assert r.execute_command("RL.SETTLE", "k", hold, 3) == 0
    assert left(r, "k") == 0


def test_reserve_then_settle_equals_one_check_at_the_actual_cost(r):
    for kind in ("GCRA", "SLIDING"):
        a, b = f"a:{kind}", f"b:{kind}"
        config(r, a, 10, HOUR, kind)
        config(r, b, 10, HOUR, kind)
        throttle(r, a, "COST", 2)
        throttle(r, b, "COST", 2)
        hold = reserve(r, a, 7)["reservation"]
        r.execute_command("RL.SETTLE", a, hold, 3)
        throttle(r, b, "COST", 3)
        pa, pb = at_once(r, ("RL.PEEK", a), ("RL.PEEK", b))
        assert pa[:3] == pb[:3], kind
        # The reset differs by at most the ms between the two requests (same refill).
        assert abs(pa[4] - pb[4]) <= 1000, (pa, pb)


def test_settle_above_charges_even_into_debt_capped_at_one_bucket(r):
    config(r, "k", 10, HOUR)
    hold = reserve(r, "k", 1)["reservation"]
    # Settling is not a request that can be denied: the whole excess is reported...
    assert r.execute_command("RL.SETTLE", "k", hold, 10**9) == 10**9 - 1
    p = peek(r, "k")
    # ... and the debt stops at one full bucket beyond now: one unit (HOUR/10) to wait.
    assert p["allowed"] == 0 and p["remaining"] == 0
    assert 0 < p["retry_after_ms"] <= HOUR // 10
    assert HOUR - 1000 <= p["reset_after_ms"] <= HOUR


def test_sliding_settle_refunds_only_the_holds_own_entry(r):
    config(r, "s", 10, HOUR, "SLIDING")
    hold = reserve(r, "s", 3)["reservation"]
    throttle(r, "s", "COST", 4)
    # Give back 100 asked: only the hold's 3 units, never the other request's 4.
    assert r.execute_command("RL.SETTLE", "s", hold, 0) == -3
    assert left(r, "s") == 6


def test_unknown_settled_and_expired_ids_are_errors(r):
    config(r, "k", 10, HOUR)
    with pytest.raises(redis.ResponseError, match=UNKNOWN):
        r.execute_command("RL.SETTLE", "k", 12345, 1)
    with pytest.raises(redis.ResponseError, match=UNKNOWN):
        r.execute_command("RL.SETTLE", "absent", 12345, 1)
    hold = reserve(r, "k", 2)["reservation"]
    assert r.execute_command("RL.SETTLE", "k", hold, 1) == -1
    before = changes(r)
    with pytest.raises(redis.ResponseError, match=UNKNOWN):
        r.execute_command("RL.SETTLE", "k", hold, 1)
    assert changes(r) == before, "a retried settle changes nothing"
    for actual in (-1, 10**9 + 1):
        with pytest.raises(redis.ResponseError, match="actual"):
            r.execute_command("RL.SETTLE", "k", hold, actual)


def test_an_expired_hold_stays_charged_and_cannot_be_settled(r, server):
    config(r, "k", 10, HOUR)
    at = server_ms(r)
    hold = reserve(r, "k", 4, "HOLD", 50)["reservation"]
    wait_until(lambda: server_ms(r) >= at + 200, what="the hold to expire")
    assert info(server, "k")["holds"] == 0
    with pytest.raises(redis.ResponseError, match=UNKNOWN):
        r.execute_command("RL.SETTLE", "k", hold, 0)
    assert left(r, "k") == 6, "the expired hold keeps its estimate charged"


def test_hold_bounds_and_the_64_hold_limit(r, server):
    for hold in (0, 86_400_001, -5):
        with pytest.raises(redis.ResponseError, match="HOLD must be an integer from 1 to 86400000"):
            r.execute_command("RL.RESERVE", "k", 1, "HOLD", hold, "LIMIT", 1000, "WINDOW", HOUR)
    config(r, "k", 1000, HOUR)
    for _ in range(64):
        assert reserve(r, "k", 1)["allowed"] == 1
    before = left(r, "k")
    with pytest.raises(redis.ResponseError, match=re.escape(TOO_MANY)):
        r.execute_command("RL.RESERVE", "k", 1)
    assert left(r, "k") == before, "the refused reserve counted nothing"
    i = info(server, "k")
    assert (i["holds"], i["held"]) == (64, 64)
    assert 0 < i["next_hold_expiry_ms"] <= 300_000


def test_info_shows_the_holds(r, server):
    config(r, "k", 100, HOUR)
    assert info(server, "k")["next_hold_expiry_ms"] is None
    _, _, i = at_once(r, ("RL.RESERVE", "k", 5, "HOLD", 10_000), ("RL.RESERVE", "k", 7),
                      ("RL.INFO", "k"))
    i = dict(zip(i[::2], i[1::2]))
    assert (i[b"holds"], i[b"held"]) == (2, 12)
    # Read in the same MULTI, at most a few ms after the hold was taken.
    assert 10_000 - 1000 < i[b"next_hold_expiry_ms"] <= 10_000


def test_reset_forgets_holds_and_keeps_the_id_sequence(r, server):
    config(r, "k", 5, HOUR)
    first = reserve(r, "k", 2)["reservation"]
    assert r.execute_command("RL.RESET", "k") > 0
    assert info(server, "k")["holds"] == 0 and left(r, "k") == 5
    with pytest.raises(redis.ResponseError, match=UNKNOWN):
        r.execute_command("RL.SETTLE", "k", first, 0)
    assert reserve(r, "k", 2)["reservation"] > first, "ids never go back"
