"""Every malformed call gets a Redis-style error, leaves data untouched, and the server
stays up."""

import pytest
import redis
from helpers import HOUR
HUGE = "99999999999999999999999"

ALLOW_ERRORS = [
    (["COST", "0"], "cost must be an integer from 1 to 1000000000"),
    (["COST", "-1"], "cost must be an integer"),
    (["COST", "1.5"], "cost must be an integer"),
    (["COST", "abc"], "cost must be an integer"),
    (["COST", HUGE], "cost must be an integer"),
    (["COST", "1000000001"], "cost must be an integer"),
    (["COST", ""], "cost must be an integer"),
    (["COST", " 1"], "cost must be an integer"),
    (["COST"], "missing its value"),
    (["COST", "1", "COST", "1"], "more than once"),
    (["NOPE", "1"], "RL.ALLOW takes the options"),
    (["NOPE"], "RL.ALLOW takes the options"),
    (["LIMIT", "10"], "LIMIT and WINDOW must be given together"),
    (["WINDOW", "10"], "LIMIT and WINDOW must be given together"),
    (["BURST", "10"], "BURST needs LIMIT and WINDOW"),
    (["LIMIT", "0", "WINDOW", "1000"], "limit must be an integer from 1 to 1000000000"),
    (["LIMIT", "-3", "WINDOW", "1000"], "limit must be an integer"),
    (["LIMIT", "1000000001", "WINDOW", "1000"], "limit must be an integer"),
    (["LIMIT", "10", "WINDOW", "0"], "window_ms must be an integer from 1 to 1000000000000"),
    (["LIMIT", "10", "WINDOW", HUGE], "window_ms must be an integer"),
    (["LIMIT", "10", "WINDOW", "1000", "BURST", "0"], "burst must be an integer"),
    (["LIMIT", "10", "WINDOW", "1000", "BURST", "x"], "burst must be an integer"),
    (["LIMIT", "1", "WINDOW", "1000000000000", "BURST", "1000"], "a full bucket must drain within"),
]

CONFIG_ERRORS = [
    (["0", "1000"], "limit must be an integer from 1 to 1000000000"),
    (["-1", "1000"], "limit must be an integer"),
    (["ten", "1000"], "limit must be an integer"),
    ([HUGE, "1000"], "limit must be an integer"),
    (["10", "0"], "window_ms must be an integer"),
    (["10", "1e3"], "window_ms must be an integer"),
    (["10", "1000000000001"], "window_ms must be an integer"),
    (["10", "1000", "BURST", "0"], "burst must be an integer"),
    (["10", "1000", "BURST", "1000000001"], "burst must be an integer"),
    (["10", "1000", "IDLE", "0"], "idle_ms must be an integer"),
    (["10", "1000", "IDLE", "-5"], "idle_ms must be an integer"),
    (["10", "1000", "IDLE", HUGE], "idle_ms must be an integer"),
    (["10", "1000", "IDLE"], "missing its value"),
    (["10", "1000", "BURST", "5", "BURST", "5"], "more than once"),
    (["10", "1000", "COST", "1"], "RL.CONFIG takes the options"),
    (["10", "1000", "extra"], "RL.CONFIG takes the options"),
    (["1", "1000000000000", "BURST", "100"], "a full bucket must drain within"),
]


@pytest.fixture
def state(r):
    """A configured key and a usage key whose digests must survive every failed call."""
    r.execute_command("RL.CONFIG", "k", 10, HOUR)
    r.execute_command("RL.ALLOW", "k")
    r.execute_command("RL.ALLOW", "u", "LIMIT", 5, "WINDOW", HOUR)
    before = r.execute_command("DEBUG", "DIGEST-VALUE", "k", "u")
    yield r
    assert r.execute_command("DEBUG", "DIGEST-VALUE", "k", "u") == before
    assert r.ping()


@pytest.mark.parametrize("opts,message", ALLOW_ERRORS, ids=[" ".join(o) or "empty" for o, _ in ALLOW_ERRORS])
def test_rl_allow_rejects(state, opts, message):
    for key in ("k", "u", "new"):
        with pytest.raises(redis.ResponseError, match=message):
            state.execute_command("RL.ALLOW", key, *opts)
    assert state.exists("new") == 0


@pytest.mark.parametrize("args,message", CONFIG_ERRORS, ids=[" ".join(a) for a, _ in CONFIG_ERRORS])
def test_rl_config_rejects(state, args, message):
    for key in ("k", "u", "new"):
        with pytest.raises(redis.ResponseError, match=message):
            state.execute_command("RL.CONFIG", key, *args)
    assert state.exists("new") == 0


@pytest.mark.parametrize("call", [["RL.ALLOW"], ["RL.CONFIG"], ["RL.CONFIG", "k"], ["RL.CONFIG", "k", "10"]])
def test_wrong_arity(state, call):
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        state.execute_command(*call)


def test_no_policy_is_an_error_that_says_what_to_do(r):
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command("RL.ALLOW", "anon")
    assert str(e.value) == (
        "no rate limit for key: RL.CONFIG it, pass LIMIT and WINDOW, or set rl.default-limit"
    )
    assert r.exists("anon") == 0


def test_an_impossible_default_combination_is_reported(r):
    r.config_set("rl.default-limit", 1)
    r.config_set("rl.default-window-ms", 1_000_000_000_000)
    r.config_set("rl.default-burst", 1_000_000)
    with pytest.raises(redis.ResponseError, match="default policy is invalid"):
        r.execute_command("RL.ALLOW", "anon")


@pytest.mark.parametrize("name,value", [
    ("rl.default-limit", "-1"), ("rl.default-limit", "1000000001"), ("rl.default-limit", "x"),
    ("rl.default-window-ms", "0"), ("rl.default-burst", "-1"),
])
def test_configs_reject_out_of_range_values(r, name, value):
    with pytest.raises(redis.ResponseError):
        r.config_set(name, value)


def test_other_types_get_wrongtype_and_stay_intact(r):
    r.set("s", "v")
    r.lpush("l", 1)
    r.hset("h", "f", 1)
    for key in ("s", "l", "h"):
        for call in (["RL.ALLOW", key, "LIMIT", 1, "WINDOW", 1000], ["RL.CONFIG", key, 1, 1000]):
            with pytest.raises(redis.ResponseError, match="^WRONGTYPE Operation against a key holding the wrong kind of value$"):
                r.execute_command(*call)
    assert r.get("s") == b"v" and r.lrange("l", 0, -1) == [b"1"] and r.hgetall("h") == {b"f": b"1"}


def test_rl_apply_is_refused_from_clients(state):
    for args in (["k", 1, 0, 1, 0], ["new", 1, 0, 1, 0, "POLICY", 1, 1, 1, 0, 0]):
        with pytest.raises(redis.ResponseError, match="RL.APPLY is internal"):
            state.execute_command("RL.APPLY", *args)
    with pytest.raises(redis.ResponseError, match="RL.APPLY is internal"):
        state.eval("return redis.call('RL.APPLY', KEYS[1], 1, 0, 1, 0)", 1, "new")
    assert state.exists("new") == 0


def test_too_many_arguments_are_an_error_not_a_crash(state):
    with pytest.raises(redis.ResponseError):
        state.execute_command("RL.ALLOW", "k", *(["COST", "1"] * 20))
    with pytest.raises(redis.ResponseError):
        state.execute_command("RL.CONFIG", "k", 1, 1, *(["IDLE", "1"] * 20))
