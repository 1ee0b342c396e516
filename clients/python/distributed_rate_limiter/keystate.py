"""A key's whole state and every operation on it, as the module keeps it (issue 17's one
pipeline, core/src/state.rs; issues 19 and 20 as fixed in spec-19-20.md): the usage of each
limit as recorded (limits.py), the stored policy and the instant of a reconfiguration not
written yet, the open holds of reservations, the block with its penalty level, and the last
id issued. Each operation is a pure function (state, now_ms, arguments) -> (reply, the new
state or None when nothing is to be written). The local limiter runs them;
clients/lua/ratelimit.lua and clients/node/src/keystate.js are the same rules, and the
conformance traces hold all of them to the module's numbers. Pure: no I/O."""

from typing import NamedTuple, Optional, Tuple

from . import concurrency, gcra, limits, sliding
from .concurrency import Leases
from .errors import CommandError, NoRateLimit
from .gcra import Tat
from .policy import DEFAULT_HOLD_MS, has_concurrency, longest_window_ms

MAX_HOLDS = 64
MAX_LEVEL = 63
TOO_MANY_HOLDS = "too many open reservations: a key holds at most 64 (settle them or let them expire)"
UNKNOWN_RESERVATION = "unknown reservation: it expired, was settled, or was never issued"
CONCURRENCY_KEY = ("this key has a CONCURRENCY limit: take a lease with RL.ACQUIRE and give it back with "
                   "RL.RELEASE")
NO_POLICY = "no rate limit for key: RL.CONFIG it, pass LIMIT and WINDOW, or set rl.default-limit"
MODES = ("throttle", "peek", "reserve", "acquire")


class Hold(NamedTuple):
    """A reservation's hold: its estimate is counted; settled, or charged as it is once it
    expires (the work probably happened). `ends`: per limit, the GCRA bucket's TAT right
    after the reserve (None for other kinds), so that a settle never gives back units of the
    hold that have already drained."""

    id: int
    estimate: int
    at_ms: int
    expires_at_ms: int
    ends: tuple = ()


class Block(NamedTuple):
    """Blocked while now < until_ms; `level` is kept after it ends, so that a penalty within
    one window of that end doubles."""

    until_ms: int
    level: int


class KeyState(NamedTuple):
    usage: tuple = ()  # one per limit, as the policy that last wrote it recorded it (limits.py)
    holds: Tuple[Hold, ...] = ()
    block: Optional[Block] = None
    last_id: Optional[int] = None
    policy: Optional[tuple] = None  # a key without a stored policy: the limits of its last write
    stored: Optional[tuple] = None  # the configured limits (configure); they beat a call's
    pending_at_ms: Optional[int] = None  # a reconfiguration the usage has not been written under


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


def seen(policy, state, now_ms):
    """The usage `policy` reads (limits.view): carried as of a pending reconfiguration."""
    return limits.view(policy, state.usage, state.pending_at_ms, now_ms)


def _ends_within(policy, usage, holds):
    """Every hold's GCRA end at most its bucket's TAT (after a change that lowered it)."""
    out = []
    for h in holds:
        ends = list(h.ends)
        for i, end in enumerate(ends):
            if end is not None and i < len(policy) and policy[i].kind == "gcra" and isinstance(usage[i], Tat) \
                    and end.in_units(policy[i].limit) > usage[i].in_units(policy[i].limit):
                ends[i] = usage[i]
        out.append(h._replace(ends=tuple(ends)))
    return tuple(out)


def _written(state, policy, usage, holds):
    """The state after a write under `policy`: the usage stored in its form (nothing pending),
    expired holds pruned, and (a key without a stored policy) the limits remembered."""
    return state._replace(usage=usage, pending_at_ms=None, holds=_ends_within(policy, usage, holds),
                          policy=None if state.stored else policy)


def configure(state, policy, now_ms):
    """RL.CONFIG: stores `policy`, keeping what the client used (carried on every read as of
    now, written by the next write), the holds, the block and the id sequence."""
    usage, pending = limits.configured(state.stored, state.usage, state.pending_at_ms, policy, now_ms)
    return state._replace(usage=usage, pending_at_ms=pending, stored=tuple(policy), policy=None)


def _blocked_numbers(n, until, now_ms):
    """A blocked check (also the denial that starts a penalty): denied, remaining 0, told to
    retry when both the block has ended and its limits admit it (-1: never), reset when both
    the block and every limit are over."""
    block_ms = until - now_ms
    retry = -1 if n.retry_after_ms < 0 else max(block_ms, n.retry_after_ms)
    return Grant(False, n.limit, 0, retry, max(block_ms, n.reset_after_ms), n.binding)


def check(policy, state, now_ms, cost, mode="throttle", penalty=None, shadow=False, hold_ms=DEFAULT_HOLD_MS):
    """RL.THROTTLE (and RL.ALLOW), RL.PEEK, RL.RESERVE (cost = the estimate) or RL.ACQUIRE, by
    `mode`, under the key's stored policy, else `policy`."""
    policy = state.stored or policy
    leased = has_concurrency(policy)
    if leased and mode in ("throttle", "reserve"):
        raise CommandError(CONCURRENCY_KEY)
    holds = open_holds(state, now_ms)
    if mode == "reserve" and len(holds) >= MAX_HOLDS:
        raise CommandError(TOO_MANY_HOLDS)
    usage = seen(policy, state, now_ms)
    admits = limits.decide(policy, usage, now_ms, cost)
    until = blocked_until(state, now_ms)
    if until is not None:  # counts nothing, extends nothing; a shadow key is told allowed
        g = _blocked_numbers(limits.numbers(policy, usage, admits, now_ms, cost, denied=True), until, now_ms)
        return (g._replace(allowed=True, retry_after_ms=-1) if shadow else g), None
    n = limits.numbers(policy, usage, admits, now_ms, cost)
    consume = mode != "peek"
    if n.allowed:
        grant = Grant(True, n.limit, n.remaining, -1, n.reset_after_ms, n.binding)
        if not consume:
            return grant, None
        lease_id = next_id(state, now_ms) if mode == "acquire" and leased else None
        usage = limits.record(policy, usage, admits, now_ms, cost, lease_id)
        new = _written(state, policy, usage, holds)
        if mode == "reserve":
            rid = next_id(state, now_ms)
            ends = tuple(u if isinstance(u, Tat) else None for u in usage)
            new = new._replace(holds=new.holds + (Hold(rid, cost, now_ms, now_ms + hold_ms, ends),), last_id=rid)
            grant = grant._replace(id=rid)
        elif lease_id is not None:
            new, grant = new._replace(last_id=lease_id), grant._replace(id=lease_id)
        return grant, new
    grant = Grant(shadow, n.limit, n.remaining, -1 if shadow else n.retry_after_ms, n.reset_after_ms, n.binding)
    if not consume:
        return grant, None
    repaired, moved = limits.repair(policy, usage, now_ms)
    if shadow or penalty is None:  # a denial writes nothing but a clock repair
        return grant, _written(state, policy, repaired, holds) if moved else None
    # A denial of a key that is not blocked blocks it: ms * 2^level, at most max_ms, the level
    # one more than the last block's if that ended less than one (longest) window ago. It
    # tells the truth about the block it starts.
    prev = state.block
    level = min(prev.level + 1, MAX_LEVEL) if prev is not None and now_ms - prev.until_ms < longest_window_ms(policy) \
        else 0
    block = Block(now_ms + penalty.length_ms(level), level)
    return _blocked_numbers(n, block.until_ms, now_ms), _written(state, policy, repaired, holds)._replace(block=block)


def refund(policy, state, now_ms, n):
    """RL.REFUND: (the most units any limit gave back, new state); 0 writes nothing."""
    policy = state.stored or policy
    usage, given = limits.refund(policy, seen(policy, state, now_ms), now_ms, n)
    if not given:
        return 0, None
    return given, _written(state, policy, usage, open_holds(state, now_ms))


def _settle_refund(policy, usage, now_ms, hold, units, others):
    """(usage, other holds, the most units any limit gave back) after a settle gives back
    `units` of `hold`: a GCRA limit only what of the hold has not drained (moving later
    holds' ends earlier by as much), a SLIDING one only from the hold's own entry."""
    out, most, others = [], 0, list(others)
    for i, (lim, u) in enumerate(zip(policy, usage)):
        given = 0
        if lim.kind == "gcra":
            end = hold.ends[i] if i < len(hold.ends) else None
            if end is not None:
                u, g = gcra.settle_refund(lim, u, now_ms, units, end, hold.estimate)
                given = -(-g // lim.window_ms)
                mine = end.in_units(lim.limit)
                for k, h in enumerate(others):
                    e = h.ends[i] if i < len(h.ends) else None
                    if g and e is not None and e.in_units(lim.limit) > mine:
                        ends = list(h.ends)
                        ends[i] = Tat.from_units(e.in_units(lim.limit) - g, lim.limit)
                        others[k] = h._replace(ends=tuple(ends))
        elif lim.kind == "sliding":
            u, given = sliding.refund(lim, u, now_ms, units, at_ms=hold.at_ms)
        out.append(u)
        most = max(most, given)
    return tuple(out), tuple(others), most


def settle(state, now_ms, rid, actual):
    """RL.SETTLE: (units charged, or given back as a negative number; new state), under the
    key's stored policy, else the limits of its last write."""
    policy = state.stored or state.policy
    holds = open_holds(state, now_ms)
    hold = next((h for h in holds if h.id == rid), None)
    if hold is None:
        raise CommandError(UNKNOWN_RESERVATION)
    d = actual - hold.estimate
    if d and policy is None:
        raise NoRateLimit(NO_POLICY)
    rest = tuple(h for h in holds if h.id != rid)
    if d == 0:
        return 0, state._replace(holds=rest)
    usage = seen(policy, state, now_ms)
    if d < 0:  # never more than the hold
        usage, rest, given = _settle_refund(policy, usage, now_ms, hold, -d, rest)
        return -given, _written(state, policy, usage, rest)
    # Settling is not a request that can be denied: the excess is charged as asked.
    return d, _written(state, policy, limits.charge(policy, usage, now_ms, d), rest)


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


def remaining(state, now_ms):
    """What RL.INFO shows as remaining: cost-1 requests that would pass now under the stored
    policy; None for a key without one."""
    if not state.stored:
        return None
    return limits.numbers(state.stored, seen(state.stored, state, now_ms), None, now_ms, 0).remaining


def reset_after_ms(state, now_ms):
    """What RL.INFO shows as reset_after_ms (and RL.RESET replies): until every stored limit
    is empty; for a key without a stored policy, until its usage as recorded is."""
    if state.stored:
        return limits.numbers(state.stored, seen(state.stored, state, now_ms), None, now_ms, 0).reset_after_ms
    return limits.own_empty_at(state.usage, now_ms, now_ms) - now_ms


def reset(state, now_ms):
    """RL.RESET: (ms of backlog forgotten, the state after it, None for a key without a stored
    policy, which is deleted with its id sequence). A configured key forgets its usage, holds,
    leases, block and penalty level, and keeps its policy and id sequence."""
    forgotten = reset_after_ms(state, now_ms)
    if not state.stored:
        return forgotten, None
    empty = tuple(limits.empty_usage(lim) for lim in state.stored)
    return forgotten, KeyState(usage=empty, last_id=state.last_id, stored=state.stored)


def live_lease_ids(state, now_ms):
    return {x.id for u in state.usage if isinstance(u, Leases) for x in concurrency.live(u, now_ms)}


def summary(state, now_ms):
    """RL.INFO's key-level fields of issues 19 and 20."""
    holds = open_holds(state, now_ms)
    until = blocked_until(state, now_ms)
    return {"blocked_ms": until - now_ms if until is not None else 0,
            "penalty_level": state.block.level if state.block else 0,
            "holds": len(holds), "held": sum(h.estimate for h in holds),
            "next_hold_expiry_ms": min(h.expires_at_ms for h in holds) - now_ms if holds else None,
            "leases": len(live_lease_ids(state, now_ms))}


def expires_at_ms(state, now_ms):
    """When a key without a stored policy may go: its usage as recorded empty, every hold and
    lease expired, the block over; None for a configured key (configuration does not expire)."""
    if state.stored:
        return None
    at = max([limits.own_empty_at(state.usage, now_ms, now_ms)] + [h.expires_at_ms for h in open_holds(state, now_ms)])
    until = blocked_until(state, now_ms)
    return max(at, until) if until is not None else at
