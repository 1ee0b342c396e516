"""Up to four limits on one key decided all-or-nothing, exactly as the module does
(src/limits.rs): a request passes iff every limit admits it, and then each records it; a
denial records nothing anywhere. The reply names the binding limit: when denied, the one
waited for longest (or the first whose capacity is below the cost); when allowed, the one
with the fewest requests left. Usage per limit is a gcra.Tat or a sliding log; a limit that
changes kind carries its usage over as time still owed. Time is a parameter. Pure: no I/O."""

from typing import NamedTuple, Optional, Tuple

from . import gcra, sliding
from .gcra import Tat


class Outcome(NamedTuple):
    allowed: bool
    binding: int
    limit: int  # the binding limit's capacity
    remaining: int  # the fewest cost-1 requests any limit still admits
    retry_after_ms: int  # -1: allowed, or never (a cost above some limit's capacity)
    reset_after_ms: int  # until the binding limit is empty
    usage: Optional[tuple]  # the usage to store, or None: nothing changed that must be kept


def empty_usage(lim):
    return gcra.EMPTY if lim.kind == "gcra" else sliding.EMPTY


def carried_to(u, lim, now_ms):
    """A usage carried over to `lim` (limits.rs, Usage::carried_to)."""
    is_tat = isinstance(u, Tat)
    if is_tat == (lim.kind == "gcra"):
        return u
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
    at = now_ms
    for lim, u in zip(policy, usage):
        at = max(at, u.empty_at_ms() if isinstance(u, Tat) else sliding.empty_at_ms(lim, u, now_ms))
    return at


def decide(policy, usage, now_ms, cost, consume=True) -> Outcome:
    usage = list(align(policy, usage, now_ms))
    repaired = False
    for i, lim in enumerate(policy):
        if lim.kind == "gcra":
            c = gcra.clamped(lim, usage[i], now_ms)
            if c != usage[i]:
                usage[i], repaired = c, True
        else:
            usage[i], moved = sliding.clamp_future(usage[i], now_ms)
            repaired = repaired or moved
    after = [gcra.admits(lim, u, now_ms, cost) if lim.kind == "gcra" else sliding.admits(lim, u, now_ms, cost)
             for lim, u in zip(policy, usage)]
    admitted = [a is not None and a is not False for a in after]
    allowed = all(admitted)
    new, remaining, reset, retry = [], [], [], []
    for i, lim in enumerate(policy):
        u = usage[i]
        if lim.kind == "gcra":
            n = after[i] if allowed else u
            remaining.append(gcra.remaining(lim, n, now_ms))
            reset.append(max(n.empty_at_ms() - now_ms, 0))
            retry.append(-1 if admitted[i] else gcra.retry_after_ms(lim, u, now_ms, cost))
        else:
            n = sliding.record(lim, u, now_ms, cost) if allowed else u
            remaining.append(max(lim.limit - sliding.used(lim, n, now_ms), 0))
            reset.append(sliding.empty_at_ms(lim, n, now_ms) - now_ms)
            retry.append(-1 if admitted[i] else sliding.retry_after_ms(lim, u, now_ms, cost))
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
