"""COMMAND INFO and COMMAND DOCS of issue 19 and 20's commands tell the truth: the arity each
accepts (one argument fewer is the server's arity error), its flags (write, fast; deny-oom on
those that can grow a key), its one key at position 1, its arguments by name and token (a call
using every documented argument is accepted), and its ACL categories where the server lets a
module set them (Redis 7.2+, Valkey; @ratelimit from Redis 7.4 and Valkey 8)."""

import pytest
import redis
from helpers import HOUR, pairs, raw_command, says

# name -> (arity, deny-oom, argument names in COMMAND DOCS, a call with every argument)
INLINE = ["inline-policy", "kind", "penalty", "and-limit"]
EVERY_LIMIT = ["LIMIT", 10, "WINDOW", HOUR, "BURST", 10, "GCRA", "PENALTY", 100, "MAX", 200,
               "AND", "LIMIT", 100, "WINDOW", HOUR, "SLIDING"]
COMMANDS = {
    "rl.refund": (-3, False, ["key", "n", *INLINE], ["RL.REFUND", "k", 1, *EVERY_LIMIT]),
    "rl.reserve": (-3, True, ["key", "estimate", "hold_ms", *INLINE],
                   ["RL.RESERVE", "k", 1, "HOLD", 1000, *EVERY_LIMIT]),
    "rl.settle": (4, False, ["key", "reservation", "actual"], None),
    "rl.block": (3, True, ["key", "ms"], ["RL.BLOCK", "b", 1000]),
    "rl.unblock": (2, False, ["key"], ["RL.UNBLOCK", "b"]),
    "rl.acquire": (-2, True, ["key", "cost", *INLINE],
                   ["RL.ACQUIRE", "c", "COST", 1, "LIMIT", 2, "WINDOW", HOUR, "CONCURRENCY", "PENALTY", 100,
                    "MAX", 200, "AND", "LIMIT", 10, "WINDOW", HOUR, "BURST", 10, "GCRA"]),
    "rl.release": (3, False, ["key", "lease"], ["RL.RELEASE", "c", 1]),
    "rl.renew": (4, False, ["key", "lease", "ms"], ["RL.RENEW", "c", 1, 1000]),
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_info_and_docs_are_truthful(r, name):
    arity, deny_oom, arg_names, call = COMMANDS[name]
    (info,) = raw_command(r, "COMMAND", "INFO", name)
    assert info[0] == name.encode() and info[1] == arity
    flags = set(info[2])
    assert {b"write", b"fast", b"module"} <= flags
    assert (b"denyoom" in flags) == deny_oom
    assert info[3:6] == [1, 1, 1], "one key, at position 1"
    categories = {c.lstrip(b"@") for c in info[6]}
    if says("acl_categories"):
        assert {b"write", b"fast"} <= categories
        if says("module_acl_category"):
            assert b"ratelimit" in categories
    doc = pairs(pairs(raw_command(r, "COMMAND", "DOCS", name))[name.encode()])
    assert doc[b"summary"] and doc[b"complexity"] and doc[b"module"] == b"rl"
    assert [pairs(a)[b"name"].decode() for a in doc[b"arguments"]] == arg_names
    # The arity is what the command accepts: one argument fewer is the server's error.
    short = abs(arity) - 1
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        r.execute_command(name.upper(), *["k", 1, 1][:short - 1])
    if call:
        reply = r.execute_command(*call)
        assert reply is not None


def test_settle_with_every_argument(r):
    hold = r.execute_command("RL.RESERVE", "k", 2, "LIMIT", 10, "WINDOW", HOUR)[6]
    assert r.execute_command("RL.SETTLE", "k", hold, 1) == -1
