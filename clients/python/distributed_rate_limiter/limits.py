"""Up to four limits on one key decided all-or-nothing, exactly as the module does
(src/limits.rs): a request passes iff every limit admits it, and then each records it; a
denial records nothing anywhere. The reply names the binding limit: when denied, the one
waited for longest (or the first whose capacity is below the cost); when allowed, the one
with the fewest requests left. Usage per limit is a gcra.Tat, a sliding log or
concurrency.Leases; a limit that changes between GCRA and SLIDING carries its usage over as
time still owed, and a change to or from CONCURRENCY starts empty (a new contract). Each kind
is one module with the same functions (KINDS); nothing here asks which kind it holds.
Time is a parameter. Pure: no I/O."""

from typing import NamedTuple, Optional, Tuple

from . import concurrency, gcra, sliding
from .concurrency import Leases
from .gcra import Tat

KINDS = {"gcra": gcra, "sliding": sliding, "concurrency": concurrency}


class Outcome(NamedTuple):
    allowed: bool
    binding: int
    limit: int  # the binding limit's capacity
    remaining: int  # the fewest cost-1 requests any limit still admits
    retry_after_ms: int  # -1: allowed, or never (a cost above some limit's capacity)
    reset_after_ms: int  # until the binding limit is empty
    usage: Optional[tuple]  # the usage to store, or None: nothing changed that must be kept


def kind_of(usage):
    if isinstance(usage, Tat):
        return "gcra"
    return "concurrency" if isinstance(usage, Leases) else "sliding"


def empty_usage(lim):
    return KINDS[lim.kind].EMPTY


def carried_to(u, lim, now_ms):
    """A usage carried over to `lim` (limits.rs, Usage::carried_to)."""
    was = kind_of(u)
    if was == lim.kind:
        return u
    if "concurrency" in (was, lim.kind):
        return empty_usage(lim)  # leases are not requests: a kind change is a new contract
    if lim.kind == "gcra":  # SLIDING -> GCRA: the requests replayed into the bucket
        units = 0
        for at, count in u:
            units = max(units, min(at, now_ms) * lim.limit) + count * lim.window_ms
        return Tat.from_units(units, lim.limit)
    empty_at = u.empty_at_ms()  # GCRA -> SLIDING: the backlog as a share of the window
    if empty_at <= now_ms:
        return sliding.EMPTY
    count = min(-(-(empty_at - now_ms) * lim.limit // lim.window_ms), lim.limit)
    return (((min(max(empty_at - lim.window_ms, 0), now_ms)), count),)


def align(policy, usage, now_ms) -> Tuple:
    usage = tuple(usage or ())
    return tuple(carried_to(usage[i], lim, now_ms) if i < len(usage) else empty_usage(lim)
                 for i, lim in enumerate(policy))


def empty_at_ms(policy, usage, now_ms):
    """The first ms from which every limit is empty (every lease expired)."""
    return max([now_ms] + [KINDS[lim.kind].empty_at_ms(lim, u, now_ms) for lim, u in zip(policy, usage)])


def decide(policy, usage, now_ms, cost, consume=True, lease_id=None) -> Outcome:
    """One request of `cost`; when allowed, each CONCURRENCY limit records a lease `lease_id`."""
    usage = list(align(policy, usage, now_ms))
    repaired = False
    for i, lim in enumerate(policy):
        usage[i], moved = KINDS[lim.kind].repair(lim, usage[i], now_ms)
        repaired = repaired or moved
    admitted = [KINDS[lim.kind].fits(lim, u, now_ms, cost) for lim, u in zip(policy, usage)]
    allowed = all(admitted)
    new, remaining, reset, retry = [], [], [], []
    for i, lim in enumerate(policy):
        k, u = KINDS[lim.kind], usage[i]
        n = k.counted(lim, u, now_ms, cost, lease_id) if allowed else u
        remaining.append(k.remaining(lim, n, now_ms))
        reset.append(k.reset_after_ms(lim, n, now_ms))
        retry.append(-1 if admitted[i] else k.retry_after_ms(lim, u, now_ms, cost))
        new.append(n)
    never = next((i for i, lim in enumerate(policy) if cost > lim.burst), None)
    if allowed:
        binding = min(range(len(policy)), key=lambda i: remaining[i])
    elif never is not None:
        binding = never
    else:
        binding = max((i for i in range(len(policy)) if not admitted[i]), key=lambda i: (retry[i], -i))
    return Outcome(allowed, binding, policy[binding].burst, min(remaining),
                   retry[binding] if not allowed and never is None else -1, reset[binding],
                   tuple(new) if consume and (allowed or repaired) else None)


def refund(policy, usage, now_ms, n, at_ms=None):
    """(usage, the most units any limit gave back) after giving back `n` on every rate limit
    (RL.REFUND; with `at_ms`, a settle below its estimate: a SLIDING limit gives back only
    from the entry recorded at that instant). CONCURRENCY limits give nothing back."""
    usage = align(policy, usage, now_ms)
    out, most = [], 0
    for lim, u in zip(policy, usage):
        u, given = KINDS[lim.kind].refund(lim, u, now_ms, n, at_ms)
        out.append(u)
        most = max(most, given)
    return tuple(out), most


def charge(policy, usage, now_ms, units):
    """The usage after charging `units` on every rate limit whatever it does to admission (a
    settle above its estimate), each debt capped at one full bucket or window."""
    return tuple(KINDS[lim.kind].charge(lim, u, now_ms, units) for lim, u in zip(policy, align(policy, usage, now_ms)))
