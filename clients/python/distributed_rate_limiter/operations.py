"""The operation table: for each operation, the module command, the Lua script's operation,
how its arguments are written for each, and how its reply is read. The engine runs every
operation through one flow; adding one (issues 19 and 20: refund, acquire, ...) is one entry
here plus its branch in clients/lua/ratelimit.lua. Pure: no I/O."""

import hashlib
from importlib import resources
from typing import Callable, NamedTuple, Optional

from .policy import Limit, Policy, Stored, check_lua

LUA_SOURCE = resources.files(__package__).joinpath("ratelimit.lua").read_text()
LUA_SHA = hashlib.sha1(LUA_SOURCE.encode()).hexdigest()
CHECK_FIELDS = ("allowed", "limit", "remaining", "retry_after_ms", "reset_after_ms", "binding", "source", "limits")


class Request(NamedTuple):
    """One validated call: the full key and what the operation needs."""

    key: bytes
    cost: int = 1
    inline: Optional[Policy] = None  # a check's inline policy (not sent for a key this limiter configured)
    stored: Optional[Stored] = None  # configure's policy


class Operation(NamedTuple):
    name: str
    module: str  # the RL.* command
    lua: str  # the script's operation
    check: bool  # a decision: the failure policy and the deny cache apply; else Unavailable is raised
    consume: bool  # counts the request (the local limiter too)
    withpolicy: bool  # asks for the enforced policy (module WITHPOLICY, Lua "withpolicy")
    module_args: Callable  # (req, withpolicy) -> list
    lua_args: Callable  # (req, withpolicy) -> ARGV after the key


def _module_limits(policy, inline):
    out = []
    for i, lim in enumerate(policy):
        if i:
            out.append("AND")
        out += ["LIMIT", lim.limit, "WINDOW", lim.window_ms] if inline else [lim.limit, lim.window_ms]
        if lim.kind == "sliding":
            out.append("SLIDING")
        elif lim.burst != lim.limit:
            out += ["BURST", lim.burst]
    return out


def _lua_limits(policy):
    out = []
    for lim in check_lua(policy):
        out += [lim.kind, lim.limit, lim.window_ms, "" if lim.kind == "sliding" else lim.burst]
    return out


def _check_module(command):
    def args(req, withpolicy):
        out = [command, req.key] + (["WITHPOLICY"] if withpolicy else [])
        if req.cost != 1:
            out += ["COST", req.cost]
        return out + (_module_limits(req.inline, True) if req.inline else [])
    return args


def _check_lua(op):
    def args(req, withpolicy):
        return [op, "", req.cost, "withpolicy" if withpolicy else ""] + (_lua_limits(req.inline) if req.inline else [])
    return args


def _config_module(req, _):
    s = req.stored
    first, rest = _module_limits(s.policy[:1], False), _module_limits(s.policy[1:], False)
    extra = (["IDLE", s.idle_ms] if s.idle_ms else []) + (["SHADOW"] if s.shadow else [])
    return ["RL.CONFIG", req.key] + first + extra + (["AND"] + rest if rest else [])


def _config_lua(req, _):
    s = req.stored
    return ["config", "", s.idle_ms, int(s.shadow)] + _lua_limits(s.policy)


def _plain(command, op):
    return (lambda req, _: [command, req.key]), (lambda req, _: [op, ""])


THROTTLE = Operation("throttle", "RL.THROTTLE", "check", True, True, True,
                     _check_module("RL.THROTTLE"), _check_lua("check"))
PEEK = Operation("peek", "RL.PEEK", "peek", True, False, True, _check_module("RL.PEEK"), _check_lua("peek"))
CONFIGURE = Operation("configure", "RL.CONFIG", "config", False, False, False, _config_module, _config_lua)
RESET = Operation("reset", "RL.RESET", "reset", False, False, False, *_plain("RL.RESET", "reset"))
INFO = Operation("info", "RL.INFO", "info", False, False, False, *_plain("RL.INFO", "info"))
# Lua only: reads a key the script wrote and deletes it (moving it to the module).
EXPORT = Operation("export", "", "export", False, False, False, None, lambda req, _: ["export", ""])
OPERATIONS = {op.name: op for op in (THROTTLE, PEEK, CONFIGURE, RESET, INFO, EXPORT)}


def lua_command(req, argv):
    """EVALSHA of the shared script on req.key (the engine loads it on NOSCRIPT)."""
    return ["EVALSHA", LUA_SHA, 1, req.key] + argv


# --- replies ---------------------------------------------------------------------------------

def text(v):
    return v.decode() if isinstance(v, bytes) else v


def _field(raw, name, index):
    if isinstance(raw, dict):
        v = raw.get(name)
        return raw.get(name.encode()) if v is None else v
    return raw[index] if index < len(raw) else None


def policy_of_reply(limits) -> Optional[Policy]:
    """The `limits` of a WITHPOLICY reply ([kind, limit, window_ms, burst] or maps) as Limits."""
    if not limits:
        return None
    out = []
    for item in limits:
        if isinstance(item, dict):
            item = [_field(item, f, 0) for f in ("kind", "limit", "window_ms", "burst")]
        out.append(Limit(text(item[0]), int(item[1]), int(item[2]), int(item[3])))
    return tuple(out)


class CheckReply(NamedTuple):
    allowed: bool
    limit: int
    remaining: int
    retry_after_ms: int
    reset_after_ms: int
    binding: int
    source: Optional[str]  # with WITHPOLICY: stored, inline or default
    policy: Optional[Policy]  # with WITHPOLICY: the enforced limits


def check_reply(raw) -> CheckReply:
    """RL.THROTTLE/RL.PEEK (RESP2 list or RESP3 map, 5, 6 or 8 fields) or the script's check."""
    v = [_field(raw, name, i) for i, name in enumerate(CHECK_FIELDS)]
    return CheckReply(bool(v[0]), int(v[1]), int(v[2]), int(v[3]), int(v[4]), int(v[5] or 0),
                      text(v[6]) if v[6] is not None else None, policy_of_reply(v[7]))


def pairs(raw):
    """RL.INFO's reply (RESP3 map, or RESP2/Lua flat list) as {str: value}, nested limits too."""
    if raw is None:
        return None
    items = raw.items() if isinstance(raw, dict) else zip(raw[::2], raw[1::2])
    out = {}
    for k, v in items:
        k = text(k)
        out[k] = [pairs(x) for x in v] if k == "limits" and v is not None else text(v)
    return out


def export_reply(raw) -> Optional[Stored]:
    """The script's export: None for an absent or usage-only key, else its stored policy."""
    if raw is None or not int(raw[0]):
        return None
    return Stored(policy_of_reply(raw[3]), int(raw[1]), bool(int(raw[2])))
