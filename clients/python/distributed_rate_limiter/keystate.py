"""A key's whole state and every operation on it, as the module keeps it (issues 19 and 20,
fixed in spec-19-20.md): the usage of each limit (limits.py), the open holds of reservations,
the block with its penalty level, and the last id issued. Each operation is a pure function
(policy, state, now_ms, arguments) -> (reply, the new state or None when nothing is to be
written). The local limiter runs them; clients/lua/ratelimit.lua is the same rules in Lua,
and the conformance traces hold both to the module's numbers. Pure: no I/O."""

from typing import NamedTuple, Optional, Tuple

from . import concurrency, limits
from .concurrency import Leases
from .errors import CommandError, NoRateLimit
from .policy import DEFAULT_HOLD_MS, has_concurrency, longest_window_ms

MAX_HOLDS = 64
TOO_MANY_HOLDS = "too many open reservations: a key holds at most 64 (settle them or let them expire)"
UNKNOWN_RESERVATION = "unknown reservation: it expired, was settled, or was never issued"
CONCURRENCY_KEY = ("this key has a CONCURRENCY limit: take a lease with RL.ACQUIRE and give it back with "
                   "RL.RELEASE")
NO_POLICY = "no rate limit for key: RL.CONFIG it, pass LIMIT and WINDOW, or set rl.default-limit"
MODES = ("throttle", "peek", "reserve", "acquire")


class Hold(NamedTuple):
    """A reservation's hold: its estimate is counted; settled, or charged as it is once it
    expires (the work probably happened)."""

    id: int
    estimate: int
    at_ms: int
    expires_at_ms: int


class Block(NamedTuple):
    """Blocked while now < until_ms; `level` is kept after it ends, so that a penalty within
    one window of that end doubles."""

    until_ms: int
    level: int


class KeyState(NamedTuple):
    usage: tuple = ()  # one per limit (limits.py)
    holds: Tuple[Hold, ...] = ()
    block: Optional[Block] = None
    last_id: Optional[int] = None
    policy: Optional[tuple] = None  # the limits of the last write: a settle's, when none is stored


EMPTY = KeyState()


class Grant(NamedTuple):
    """A check's numbers, and the id of the reservation or lease it took (None if none)."""

    allowed: bool
    limit: int
    remaining: int
    retry_after_ms: int
    reset_after_ms: int
    binding: int
    id: Optional[int] = None


def next_id(state, now_ms):
    """Ids of reservations and leases share one sequence per key: strictly increasing, never
    reused, `now_ms * 1000` or more (so they increase across a key's lives too)."""
    return now_ms * 1000 if state.last_id is None else max(state.last_id + 1, now_ms * 1000)


def open_holds(state, now_ms):
    return tuple(h for h in state.holds if h.expires_at_ms > now_ms)


def blocked_until(state, now_ms):
    b = state.block
    return b.until_ms if b is not None and b.until_ms > now_ms else None


def check(policy, state, now_ms, cost, mode="throttle", penalty=None, shadow=False, hold_ms=DEFAULT_HOLD_MS):
    """RL.THROTTLE (and RL.ALLOW), RL.PEEK, RL.RESERVE (cost = the estimate) or RL.ACQUIRE."""
    leased = has_concurrency(policy)
    if leased and mode in ("throttle", "reserve"):
        raise CommandError(CONCURRENCY_KEY)
    holds = open_holds(state, now_ms)
    if mode == "reserve" and len(holds) >= MAX_HOLDS:
        raise CommandError(TOO_MANY_HOLDS)
    consume = mode != "peek"
    lease_id = next_id(state, now_ms) if mode == "acquire" and leased else None
    o = limits.decide(policy, state.usage, now_ms, cost, consume, lease_id or 0)
    until = blocked_until(state, now_ms)
    if until is not None:  # the decision's numbers, denied: counts nothing, extends nothing
        return Grant(shadow, o.limit, 0, -1 if shadow else until - now_ms, o.reset_after_ms, o.binding), None
    grant = Grant(o.allowed or shadow, o.limit, o.remaining, -1 if shadow else o.retry_after_ms,
                  o.reset_after_ms, o.binding)
    if o.allowed:
        if not consume:
            return grant, None
        new = state._replace(usage=o.usage, holds=holds, policy=policy)
        if mode == "reserve":
            rid = next_id(state, now_ms)
            new = new._replace(holds=holds + (Hold(rid, cost, now_ms, now_ms + hold_ms),), last_id=rid)
            grant = grant._replace(id=rid)
        elif lease_id is not None:
            new, grant = new._replace(last_id=lease_id), grant._replace(id=lease_id)
        return grant, new
    repaired = state._replace(usage=o.usage, holds=holds, policy=policy) if o.usage is not None else None
    if shadow or not consume or penalty is None:
        return grant, repaired
    # A denial of a key that is not blocked blocks it: ms * 2^level, at most max_ms, the
    # level one more than the last block's if that ended less than one (longest) window ago.
    # The denial itself answers as any denial; the checks after it see the block.
    prev = state.block
    level = prev.level + 1 if prev is not None and now_ms - prev.until_ms < longest_window_ms(policy) else 0
    new = repaired or state._replace(holds=holds, policy=policy)
    return grant, new._replace(block=Block(now_ms + penalty.length_ms(level), level))


def refund(policy, state, now_ms, n):
    """RL.REFUND: (the most units any limit gave back, new state); 0 writes nothing."""
    usage, given = limits.refund(policy, state.usage, now_ms, n)
    if not given:
        return 0, None
    return given, state._replace(usage=usage, holds=open_holds(state, now_ms), policy=policy)


def settle(policy, state, now_ms, rid, actual):
    """RL.SETTLE: (units charged, or refunded as a negative number; new state). `policy` is
    the key's stored one, else the one its last write was decided under."""
    hold = next((h for h in open_holds(state, now_ms) if h.id == rid), None)
    if hold is None:
        raise CommandError(UNKNOWN_RESERVATION)
    d = actual - hold.estimate
    if d and policy is None:
        raise NoRateLimit(NO_POLICY)
    usage, reply = state.usage, d
    if d < 0:  # never more than the hold: a SLIDING limit gives back only from its own entry
        usage, given = limits.refund(policy, usage, now_ms, -d, at_ms=hold.at_ms)
        reply = -given
    elif d > 0:  # settling is not a request that can be denied
        usage = limits.charge(policy, usage, now_ms, d)
    holds = tuple(h for h in open_holds(state, now_ms) if h.id != rid)
    return reply, state._replace(usage=usage, holds=holds)


def block(state, now_ms, ms):
    """RL.BLOCK: blocked until now + ms, whatever was there (the level is kept)."""
    return state._replace(block=Block(now_ms + ms, state.block.level if state.block else 0),
                          holds=open_holds(state, now_ms))


def unblock(state, now_ms):
    """RL.UNBLOCK: (1, the block and its level gone) if blocked, else (0, None)."""
    if blocked_until(state, now_ms) is None:
        return 0, None
    return 1, state._replace(block=None, holds=open_holds(state, now_ms))


def _leases(state, now_ms, change):
    out, hit = [], False
    for u in state.usage:
        if isinstance(u, Leases):
            u, found = change(u)
            hit = hit or found
        out.append(u)
    if not hit:
        return 0, None
    return 1, state._replace(usage=tuple(out), holds=open_holds(state, now_ms))


def release(state, now_ms, lease_id):
    """RL.RELEASE: 1 if `lease_id` was held (now gone from every CONCURRENCY limit), else 0."""
    return _leases(state, now_ms, lambda u: concurrency.release(u, now_ms, lease_id))


def renew(state, now_ms, lease_id, ms):
    """RL.RENEW: 1 if `lease_id` was held (it now expires at now + ms), else 0."""
    return _leases(state, now_ms, lambda u: concurrency.renew(u, now_ms, lease_id, ms))


def reset(state, now_ms, policy=None):
    """RL.RESET: (ms of backlog forgotten: until every limit of `policy` would have been
    empty; the state with usage, holds, leases and the block forgotten, the id sequence kept)."""
    policy = policy or state.policy
    forgotten = limits.empty_at_ms(policy, limits.align(policy, state.usage, now_ms), now_ms) - now_ms if policy else 0
    return forgotten, KeyState(last_id=state.last_id)


def live_lease_ids(state, now_ms):
    return {x.id for u in state.usage if isinstance(u, Leases) for x in concurrency.live(u, now_ms)}


def summary(state, now_ms):
    """RL.INFO's key-level fields of issues 19 and 20."""
    holds = open_holds(state, now_ms)
    until = blocked_until(state, now_ms)
    lease_ids = live_lease_ids(state, now_ms)
    return {"blocked_ms": until - now_ms if until is not None else 0,
            "penalty_level": state.block.level if state.block else 0,
            "holds": len(holds), "held": sum(h.estimate for h in holds),
            "next_hold_expiry_ms": min(h.expires_at_ms for h in holds) - now_ms if holds else None,
            "leases": len(lease_ids)}


def expires_at_ms(policy, state, now_ms):
    """When a key without a stored policy may go: every limit empty, every hold and lease
    expired, the block over."""
    at = limits.empty_at_ms(policy, limits.align(policy, state.usage, now_ms), now_ms) if policy else now_ms
    at = max([at] + [h.expires_at_ms for h in open_holds(state, now_ms)])
    until = blocked_until(state, now_ms)
    return max(at, until) if until is not None else at
