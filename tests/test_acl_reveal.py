"""What each command reveals, and to whom (issue 10 items 2 and 3; issue 13 item 2).

A command whose reply tells anything about a key's usage declares read access to it (the
ACCESS key-spec flag), so that a write-only user (`%W~pattern`) gets NOPERM; RL.TOP lists a
key only to a user who may read the whole key. On servers with the ACL-category API (Redis
7.2+, Valkey) the commands carry standard categories and `@ratelimit`; on Redis 7.0 they
carry none and are granted by name.
"""

import pytest
import redis

from helpers import HOUR, allow, config
from server import FLAVOUR, VERSION

# Commands whose reply reveals usage, and those whose reply does not (with arguments).
REVEALING = [("RL.ALLOW", ()), ("RL.THROTTLE", ()), ("RL.PEEK", ()), ("RL.INFO", ()),
             ("RL.RESET", ())]
SILENT = [("RL.CONFIG", (10, HOUR))]


def user(server, name, *rules):
    c = server.client()
    c.execute_command("ACL", "SETUSER", name, "reset", "on", "nopass", *rules)
    return server.client(username=name, password="x")


def test_a_write_only_user_learns_nothing_of_a_keys_usage(server, r):
    """%W~secret:* +@all: every command that would tell usage is NOPERM (RL.RESET replied the
    backlog before); RL.CONFIG, which replies OK, is allowed."""
    config(r, "secret:1", 10, HOUR)
    for _ in range(3):
        allow(r, "secret:1")
    w = user(server, "writer", "%W~secret:*", "+@all",
             *[f"+{name.lower()}" for name, _ in REVEALING + SILENT])
    for name, args in REVEALING:
        with pytest.raises(redis.exceptions.NoPermissionError):
            w.execute_command(name, "secret:1", *args)
    for name, args in SILENT:
        assert w.execute_command(name, "secret:1", *args) == b"OK"
    # Nothing of it was counted or reset.
    assert r.execute_command("RL.PEEK", "secret:1")[2] == 6


def test_every_command_that_replies_usage_declares_read_access(r):
    """COMMAND INFO: the key spec of each revealing command has the access flag."""
    for name, _ in REVEALING:
        info = r.execute_command("COMMAND", "INFO", name)[name.lower()]
        spec = info["key_specifications"][0]
        flags = spec[spec.index(b"flags") + 1]
        assert b"access" in flags, (name, flags)


def test_rl_top_lists_nothing_of_a_key_the_user_may_not_read_whole(server, r):
    """A key longer than 256 bytes whose prefix a user's pattern covers but whose whole name
    it does not: never listed (RL.INFO on it is NOPERM for that user too). Keys longer than
    1024 bytes are not tracked at all."""
    victim = "victim:" + "A" * 244 + ":read:SECRET"
    readable = "mine:" + "B" * 300 + ":read"
    huge = "huge:" + "C" * 2000 + ":read"
    for key in (victim, readable, huge):
        for _ in range(3):
            allow(r, key, "LIMIT", 1, "WINDOW", HOUR)
    u = user(server, "reader", "~*:read", "+rl.top", "+rl.info")
    with pytest.raises(redis.exceptions.NoPermissionError):
        u.execute_command("RL.INFO", victim)
    listed = [e[0] for e in u.execute_command("RL.TOP", 128)]
    assert listed == [readable.encode()], [k[:40] for k in listed]
    # The default user (all keys) sees the two tracked keys, whole.
    everyone = sorted(e[0] for e in r.execute_command("RL.TOP", 128))
    assert everyone == sorted([victim.encode(), readable.encode()])


NEW_ACL_API = FLAVOUR == "valkey" or VERSION >= (7, 2)


@pytest.mark.skipif(not NEW_ACL_API, reason="Redis 7.0 has no ACL categories for module commands")
def test_commands_carry_acl_categories_on_servers_that_have_them(server, r):
    """+@ratelimit grants every RL.* command; +@read grants RL.PEEK and RL.INFO but not
    RL.ALLOW; +@write grants RL.ALLOW."""
    config(r, "k", 10, HOUR)
    rl = user(server, "rl", "~*", "+@ratelimit")
    for name, args in REVEALING + SILENT:
        rl.execute_command(name, "k", *args)
    reader = user(server, "reader2", "~*", "+@read")
    reader.execute_command("RL.PEEK", "k")
    reader.execute_command("RL.INFO", "k")
    with pytest.raises(redis.exceptions.NoPermissionError):
        reader.execute_command("RL.ALLOW", "k")
    writer = user(server, "writer2", "~*", "+@write")
    assert writer.execute_command("RL.ALLOW", "k") == 1
    cats = r.execute_command("ACL", "CAT", "ratelimit")
    assert {b"rl.allow", b"rl.throttle", b"rl.peek", b"rl.info", b"rl.config", b"rl.reset",
            b"rl.top"} <= set(cats), cats


@pytest.mark.skipif(NEW_ACL_API, reason="servers with ACL categories for modules: see above")
def test_on_redis_7_0_the_commands_are_granted_by_name(server, r):
    """Redis 7.0 gives module commands no categories: +@write does not include RL.ALLOW, and
    +rl.allow grants it."""
    writer = user(server, "writer3", "~*", "+@write")
    with pytest.raises(redis.exceptions.NoPermissionError):
        writer.execute_command("RL.ALLOW", "k", "LIMIT", 1, "WINDOW", HOUR)
    named = user(server, "named", "~*", "+rl.allow")
    assert named.execute_command("RL.ALLOW", "k", "LIMIT", 1, "WINDOW", HOUR) == 1


def test_loading_logs_no_warning(servers):
    """Under loglevel warning, a server that loads the module logs nothing from it (the
    crate's defrag-callback warning is gone: the module has its own OnLoad)."""
    s = servers(loglevel="warning")
    assert s.client().execute_command("RL.ALLOW", "k", "LIMIT", 1, "WINDOW", 1000) == 1
    assert "<rl>" not in s.log, s.log
