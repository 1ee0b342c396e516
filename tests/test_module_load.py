"""Loading the module: where its configs come from, what it refuses, and the command
metadata (flags, key positions, arity, docs) that clients, ACLs and Cluster rely on."""

import pytest
import redis

from helpers import HOUR, pairs, raw_command
from server import DROP

# Without redis.conf's own rl.* lines, which would override module arguments.
NO_RL_LINES = {"rl.default-limit": DROP, "rl.default-window-ms": DROP, "rl.default-burst": DROP}


def test_module_arguments_set_the_default_policy(servers):
    s = servers(module_args=["default-limit", 10, "default-window-ms", 60000], **NO_RL_LINES)
    c = s.client()
    assert c.config_get("rl.*") == {
        "rl.default-limit": "10", "rl.default-window-ms": "60000", "rl.default-burst": "0",
        "rl.scale-percent": "100",
    }
    assert sum(c.execute_command("RL.ALLOW", "anon") for _ in range(15)) == 10


def test_redis_conf_lines_set_the_default_policy(servers):
    """The project's redis.conf ships a default policy of 100 per second."""
    s = servers(**{"rl.default-limit": None})  # None: no test override, redis.conf's line
    c = s.client()
    assert c.config_get("rl.default-limit") == {"rl.default-limit": "100"}
    assert c.config_get("rl.default-window-ms") == {"rl.default-window-ms": "1000"}
    assert sum(c.execute_command("RL.ALLOW", "anon") for _ in range(150)) >= 100


@pytest.mark.parametrize("args", [["default-limit"], ["no-such-option", 1], ["default-limit", "x"],
                                  ["default-limit", -1], ["default-window-ms", 0]])
def test_bad_module_arguments_refuse_to_load(servers, args):
    with pytest.raises(RuntimeError, match="did not start"):
        servers(module_args=args, **NO_RL_LINES)


def test_runtime_config_changes_apply_immediately(r):
    r.config_set("rl.default-limit", 2)
    r.config_set("rl.default-window-ms", HOUR)
    assert [r.execute_command("RL.ALLOW", "a") for _ in range(3)] == [1, 1, 0]


def test_command_info_tells_the_truth(r):
    info = {c[0]: c for c in raw_command(r, "COMMAND", "INFO", "rl.allow", "rl.config", "rl.apply")}
    allow, config, apply = info[b"rl.allow"], info[b"rl.config"], info[b"rl.apply"]
    assert allow[1] == -2 and config[1] == -4 and apply[1] == -3
    assert set(allow[2]) >= {b"write", b"denyoom", b"fast"}
    assert set(config[2]) >= {b"write", b"denyoom"} and b"fast" not in config[2]
    for cmd in (allow, config, apply):
        assert tuple(cmd[3:6]) == (1, 1, 1)


def test_command_getkeys_finds_the_key(r):
    assert r.command_getkeys("RL.ALLOW", "user:1", "COST", 2) == ["user:1"]
    assert r.command_getkeys("RL.CONFIG", "user:2", 10, 1000, "IDLE", 5) == ["user:2"]


def test_command_docs_describe_every_argument(r):
    docs = pairs(raw_command(r, "COMMAND", "DOCS", "rl.allow", "rl.config"))
    for name in (b"rl.allow", b"rl.config"):
        doc = pairs(docs[name])
        assert doc[b"summary"] and doc[b"complexity"] == b"O(1)" and doc[b"module"] == b"rl"
        assert pairs(doc[b"arguments"][0])[b"name"] == b"key"
    allow_args = [pairs(a) for a in pairs(docs[b"rl.allow"])[b"arguments"]]
    # key, COST, the inline limit, its kind (GCRA|SLIDING|CONCURRENCY), PENALTY (issues 19
    # and 20), more limits after AND (issue 11).
    assert [a.get(b"token") for a in allow_args] == [None, b"COST", None, None, b"PENALTY", b"AND"]
    kinds = [pairs(a)[b"token"] for a in allow_args[3][b"arguments"]]
    assert kinds == [b"GCRA", b"SLIDING", b"CONCURRENCY"]
    penalty = [pairs(a) for a in allow_args[4][b"arguments"]]
    assert [(a[b"name"], a.get(b"token")) for a in penalty] == [(b"ms", None), (b"max_ms", b"MAX")]
    inline = [pairs(a) for a in allow_args[2][b"arguments"]]
    assert [a[b"token"] for a in inline] == [b"LIMIT", b"WINDOW", b"BURST"]
    config_args = [pairs(a) for a in pairs(docs[b"rl.config"])[b"arguments"]]
    assert [a[b"name"] for a in config_args] == [b"key", b"limit", b"window_ms", b"burst", b"kind", b"idle_ms",
                                                 b"shadow", b"penalty", b"and-limit"]


def test_acl_key_patterns_apply_to_rl_commands(server, r):
    r.acl_setuser("limited", enabled=True, nopass=True, keys=["rl:*"], commands=["+rl.allow", "+rl.config"])
    u = server.client(username="limited", password="")
    try:
        assert u.execute_command("RL.CONFIG", "rl:ok", 5, HOUR) == b"OK"
        assert u.execute_command("RL.ALLOW", "rl:ok") == 1
        with pytest.raises(redis.exceptions.NoPermissionError):
            u.execute_command("RL.ALLOW", "other", "LIMIT", 1, "WINDOW", 1000)
        assert r.exists("other") == 0
    finally:
        u.close()
        r.acl_deluser("limited")
