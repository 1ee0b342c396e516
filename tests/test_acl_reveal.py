"""What each command reveals, and to whom (issue 10 items 2 and 3; issue 13 item 2).

A command whose reply tells anything about a key's usage declares read access to it (the
ACCESS key-spec flag), so that a write-only user (`%W~pattern`) gets NOPERM; RL.TOP lists a
key only to a user who may read the whole key. On servers with the ACL-category API (Redis
7.2+, Valkey) the commands carry standard categories, and `@ratelimit` where the server lets
a module add a category (Redis 7.4+, Valkey 8+); on Redis 7.0 they carry none and are
granted by name.
"""

import pytest
import redis

from helpers import HOUR, allow, config, says

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


def user_named(server, name, *rules):
    return user(server, name, "~*", *rules)


@pytest.mark.skipif(not says("acl_categories"),
                    reason="needs RedisModule_SetCommandACLCategories (Redis 7.2+, Valkey)")
def test_commands_carry_the_standard_acl_categories(server, r):
    """+@read grants RL.PEEK and RL.INFO but not RL.ALLOW; +@write grants RL.ALLOW; +@fast
    grants RL.ALLOW but not RL.CONFIG (slow: it parses and stores a policy)."""
    config(r, "k", 10, HOUR)
    reader = user_named(server, "reader2", "+@read")
    reader.execute_command("RL.PEEK", "k")
    reader.execute_command("RL.INFO", "k")
    with pytest.raises(redis.exceptions.NoPermissionError):
        reader.execute_command("RL.ALLOW", "k")
    writer = user_named(server, "writer2", "+@write")
    assert writer.execute_command("RL.ALLOW", "k") == 1
    fast = user_named(server, "fast2", "+@fast")
    assert fast.execute_command("RL.ALLOW", "k") == 1
    with pytest.raises(redis.exceptions.NoPermissionError):
        fast.execute_command("RL.CONFIG", "k", 10, HOUR)
    for category, command in (("read", b"rl.peek"), ("write", b"rl.allow"), ("fast", b"rl.allow")):
        listed = command in r.execute_command("ACL", "CAT", category)
        assert listed == says("acl_cat_lists_module_commands"), (category, command)


@pytest.mark.skipif(not says("module_acl_category"),
                    reason="needs RedisModule_AddACLCategory (Redis 7.4+, Valkey 8+)")
def test_ratelimit_category_grants_every_command(server, r):
    """+@ratelimit grants every RL.* command, and ACL CAT ratelimit lists them where the
    server's ACL CAT lists module commands at all."""
    config(r, "k", 10, HOUR)
    rl = user_named(server, "rl", "+@ratelimit")
    for name, args in REVEALING + SILENT:
        rl.execute_command(name, "k", *args)
    cats = set(r.execute_command("ACL", "CAT", "ratelimit"))
    if says("acl_cat_lists_module_commands"):
        assert {b"rl.allow", b"rl.throttle", b"rl.peek", b"rl.info", b"rl.config", b"rl.reset",
                b"rl.top"} <= cats, cats
    else:
        assert cats == set(), cats


@pytest.mark.skipif(says("module_acl_category"),
                    reason="servers with RedisModule_AddACLCategory have @ratelimit: see above")
def test_without_a_module_category_ratelimit_is_unknown(server):
    """Redis 7.0 and 7.2 cannot add a category: +@ratelimit is refused, the commands are
    granted by name (or, on 7.2, by the standard categories)."""
    with pytest.raises(redis.exceptions.ResponseError, match="Unknown command or category"):
        user_named(server, "rl0", "+@ratelimit")


@pytest.mark.skipif(says("acl_categories"),
                    reason="Redis 7.0 only: later servers have RedisModule_SetCommandACLCategories")
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
