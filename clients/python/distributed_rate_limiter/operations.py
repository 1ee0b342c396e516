"""The operation table: for each operation, the module command, the Lua script's operation,
how its arguments are written for each, and how its reply is read. The engine runs every
operation through one flow; adding one is one entry here plus its branch in
clients/lua/ratelimit.lua. Pure: no I/O."""

import hashlib
from importlib import resources
from typing import Callable, NamedTuple, Optional

from .policy import Limit, Penalty, Policy, Stored, check_lua

LUA_SOURCE = resources.files(__package__).joinpath("ratelimit.lua").read_text()
LUA_SHA = hashlib.sha1(LUA_SOURCE.encode()).hexdigest()
CHECK_FIELDS = ("allowed", "limit", "remaining", "retry_after_ms", "reset_after_ms", "binding", "source", "limits")


class Request(NamedTuple):
    """One validated call: the full key and what the operation needs."""

    key: bytes
    cost: int = 1  # a check's or acquire's cost, a reserve's estimate, a refund's n
    inline: Optional[Policy] = None  # the inline policy (not sent for a key this limiter configured)
    stored: Optional[Stored] = None  # configure's policy
    penalty: Optional[Penalty] = None  # the inline policy's PENALTY
    ident: Optional[int] = None  # the reservation or lease Redis issued
    ms: Optional[int] = None  # a reserve's HOLD, a block's or a renewal's length
    actual: Optional[int] = None  # what a settle settles to


class Operation(NamedTuple):
    name: str
    module: str  # the RL.* command
    lua: str  # the script's operation
    check: bool  # a decision: the failure policy applies; else Unavailable is raised
    mode: Optional[str]  # a decision's mode in the local limiter (keystate.MODES)
    withpolicy: bool  # asks for the enforced policy (module WITHPOLICY, Lua "withpolicy")
    module_args: Callable  # (req, withpolicy) -> list
    lua_args: Callable  # (req, withpolicy) -> ARGV after the key
    policy: bool = False  # takes the key's policy (stored, else inline): re-configured when lost
    retried: bool = False  # changes what an id holds: sent once more when Redis did not answer
    since: Optional[int] = None  # the issue that added the command (an older module lacks it)
    reply: str = "raw"  # how the engine reads it: raw, decision or grant


KIND_WORDS = {"sliding": ["SLIDING"], "concurrency": ["CONCURRENCY"]}


def _module_limits(policy, inline, penalty=None):
    """LIMIT l WINDOW w [BURST b] [SLIDING|CONCURRENCY] [PENALTY ms [MAX m]] [AND ...]
    (RL.CONFIG: l w ...); the PENALTY, a key-level option, right after the first limit."""
    out = []
    for i, lim in enumerate(policy):
        if i:
            out.append("AND")
        out += ["LIMIT", lim.limit, "WINDOW", lim.window_ms] if inline else [lim.limit, lim.window_ms]
        if lim.kind in KIND_WORDS:
            out += KIND_WORDS[lim.kind]
        elif lim.burst != lim.limit:
            out += ["BURST", lim.burst]
        if i == 0 and penalty is not None:
            out += ["PENALTY", penalty.ms] + (["MAX", penalty.max_ms] if penalty.max_ms != penalty.ms else [])
    return out


def _lua_limits(policy, penalty=None):
    out = []
    for i, lim in enumerate(check_lua(policy)):
        out += [lim.kind, lim.limit, lim.window_ms, lim.burst if lim.kind == "gcra" else ""]
        if i == 0 and penalty is not None:
            out += ["penalty", penalty.ms, penalty.max_ms, ""]
    return out


def _inline_module(req):
    return _module_limits(req.inline, True, req.penalty) if req.inline else []


def _inline_lua(req):
    return _lua_limits(req.inline, req.penalty) if req.inline else []


def _check_module(command):
    def args(req, withpolicy):
        out = [command, req.key] + (["WITHPOLICY"] if withpolicy else [])
        if req.cost != 1:
            out += ["COST", req.cost]
        return out + _inline_module(req)
    return args


def _check_lua(op):
    def args(req, withpolicy):
        return [op, "", req.cost, "withpolicy" if withpolicy else ""] + _inline_lua(req)
    return args


def _config_module(req, _):
    s = req.stored
    first, rest = _module_limits(s.policy[:1], False, s.penalty), _module_limits(s.policy[1:], False)
    extra = (["IDLE", s.idle_ms] if s.idle_ms else []) + (["SHADOW"] if s.shadow else [])
    return ["RL.CONFIG", req.key] + first + extra + (["AND"] + rest if rest else [])


def _config_lua(req, _):
    s = req.stored
    return ["config", "", s.idle_ms, int(s.shadow)] + _lua_limits(s.policy, s.penalty)


def _plain(command, op):
    return (lambda req, _: [command, req.key]), (lambda req, _: [op, ""])


def _acquire_module(req, _):
    return ["RL.ACQUIRE", req.key] + (["COST", req.cost] if req.cost != 1 else []) + _inline_module(req)


def _reserve_module(req, _):
    return ["RL.RESERVE", req.key, req.cost] + (["HOLD", req.ms] if req.ms else []) + _inline_module(req)


THROTTLE = Operation("throttle", "RL.THROTTLE", "check", True, "throttle", True,
                     _check_module("RL.THROTTLE"), _check_lua("check"), policy=True, reply="decision")
PEEK = Operation("peek", "RL.PEEK", "peek", True, "peek", True, _check_module("RL.PEEK"), _check_lua("peek"),
                 policy=True, reply="decision")
CONFIGURE = Operation("configure", "RL.CONFIG", "config", False, None, False, _config_module, _config_lua)
RESET = Operation("reset", "RL.RESET", "reset", False, None, False, *_plain("RL.RESET", "reset"))
INFO = Operation("info", "RL.INFO", "info", False, None, False, *_plain("RL.INFO", "info"))
# Issue 19: refunds, reservations that settle, blocks.
REFUND = Operation("refund", "RL.REFUND", "refund", False, None, False,
                   lambda req, _: ["RL.REFUND", req.key, req.cost] + _inline_module(req),
                   lambda req, _: ["refund", "", req.cost, ""] + _inline_lua(req), policy=True, since=19)
RESERVE = Operation("reserve", "RL.RESERVE", "reserve", True, "reserve", False, _reserve_module,
                    lambda req, _: ["reserve", "", req.cost, req.ms or ""] + _inline_lua(req),
                    policy=True, since=19, reply="grant")
SETTLE = Operation("settle", "RL.SETTLE", "settle", False, None, False,
                   lambda req, _: ["RL.SETTLE", req.key, req.ident, req.actual],
                   lambda req, _: ["settle", "", req.ident, req.actual], retried=True, since=19)
BLOCK = Operation("block", "RL.BLOCK", "block", False, None, False, lambda req, _: ["RL.BLOCK", req.key, req.ms],
                  lambda req, _: ["block", "", req.ms], since=19)
UNBLOCK = Operation("unblock", "RL.UNBLOCK", "unblock", False, None, False, *_plain("RL.UNBLOCK", "unblock"),
                    since=19)
# Issue 20: leases.
ACQUIRE = Operation("acquire", "RL.ACQUIRE", "acquire", True, "acquire", False, _acquire_module,
                    lambda req, _: ["acquire", "", req.cost, ""] + _inline_lua(req), policy=True, since=20,
                    reply="grant")
RELEASE = Operation("release", "RL.RELEASE", "release", False, None, False,
                    lambda req, _: ["RL.RELEASE", req.key, req.ident],
                    lambda req, _: ["release", "", req.ident], retried=True, since=20)
RENEW = Operation("renew", "RL.RENEW", "renew", False, None, False,
                  lambda req, _: ["RL.RENEW", req.key, req.ident, req.ms],
                  lambda req, _: ["renew", "", req.ident, req.ms], retried=True, since=20)
# Lua only: reads a key the script wrote and deletes it (moving it to the module).
EXPORT = Operation("export", "", "export", False, None, False, None, lambda req, _: ["export", ""])
OPERATIONS = {op.name: op for op in (THROTTLE, PEEK, CONFIGURE, RESET, INFO, REFUND, RESERVE, SETTLE, BLOCK, UNBLOCK,
                                     ACQUIRE, RELEASE, RENEW, EXPORT)}


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


def grant_reply(raw, id_name):
    """RL.RESERVE/RL.ACQUIRE (RESP2 7 fields, or a RESP3 map whose 7th is `reservation` or
    `lease`) or the script's: (CheckReply, the id or None)."""
    v = [_field(raw, name, i) for i, name in enumerate(CHECK_FIELDS[:6] + (id_name,))]
    r = CheckReply(bool(v[0]), int(v[1]), int(v[2]), int(v[3]), int(v[4]), int(v[5] or 0), None, None)
    return r, (int(v[6]) if v[6] is not None else None)


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
    penalty = Penalty(int(raw[4][0]), int(raw[4][1])) if len(raw) > 4 and raw[4] else None
    return Stored(policy_of_reply(raw[3]), int(raw[1]), bool(int(raw[2])), penalty)
