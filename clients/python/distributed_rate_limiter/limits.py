"""Up to four limits on one key decided all-or-nothing, exactly as the module does
(core/src/decide.rs and core/src/state.rs). A request passes iff every limit admits it, and
then each records it; a denial records nothing anywhere. The numbers, all exact:
`remaining` the fewest cost-1 requests any limit still admits, `retry_after_ms` the largest
wait (-1 when allowed, or when the cost is above some limit's capacity), `reset_after_ms` the
time until every limit is empty, and `binding`: when denied, the first limit the cost can
never pass, else the one waited for longest; when allowed, the one with the fewest requests
left; on a tie, the first given.

Usage per limit is a gcra.Tat, a sliding.Log or concurrency.Leases, as recorded by the policy
that last wrote it. A policy reads it as recorded when it is native (one usage per limit,
each of its limit's kind) and nothing is pending; otherwise carried to the policy as of an
instant (a pending reconfiguration's, or now for a key without a stored policy), position
by position: kept by its kind's rule when the kind is the same, else what was still live
under the old limit then, imported by the new one; a limit added at the end starts empty.
Each kind is one module with the same functions (KINDS). Time is a parameter. Pure: no I/O."""

from typing import NamedTuple, Optional, Tuple

from . import concurrency, gcra, sliding
from .concurrency import Leases
from .gcra import Tat
from .sliding import Log

KINDS = {"gcra": gcra, "sliding": sliding, "concurrency": concurrency}
USAGE_KINDS = {Tat: "gcra", Log: "sliding", Leases: "concurrency"}


class Numbers(NamedTuple):
    allowed: bool
    binding: int
    limit: int  # the binding limit's capacity
    remaining: int
    retry_after_ms: int  # -1: allowed, or never (a cost above some limit's capacity)
    reset_after_ms: int  # until every limit is empty
    each: Tuple  # per limit: (remaining, reset_after_ms)


def kind_of(usage):
    return USAGE_KINDS[type(usage)]


def empty_usage(lim):
    return KINDS[lim.kind].EMPTY


def is_native(policy, usage):
    return len(usage) == len(policy) and all(kind_of(u) == lim.kind for lim, u in zip(policy, usage))


def carried(policy, usage, at_ms):
    """`usage` carried to `policy` at `at_ms` (state.rs, carried)."""
    out = []
    for i, lim in enumerate(policy):
        k = KINDS[lim.kind]
        if i >= len(usage):
            out.append(k.EMPTY)
        elif kind_of(usage[i]) == lim.kind:
            out.append(k.carry(lim, usage[i], at_ms))
        else:
            out.append(k.import_(lim, KINDS[kind_of(usage[i])].export(usage[i], at_ms), at_ms))
    return tuple(out)


def view(policy, usage, pending_at_ms, now_ms):
    """The usage `policy` reads at now_ms: as recorded, or carried (state.rs, view)."""
    usage = tuple(usage or ())
    if pending_at_ms is None and is_native(policy, usage):
        return usage
    return carried(policy, usage, now_ms if pending_at_ms is None else pending_at_ms)


def stamp_windows(policy, usage):
    """SLIDING logs that do not know their window get the one of the limit that recorded them."""
    return tuple(sliding.of(u.entries, lim.window_ms) if isinstance(u, Log) and u.window_ms == 0 and u.entries
                 and lim.kind == "sliding" else u for lim, u in zip(policy, usage)) + tuple(usage[len(policy):])


def configured(stored, usage, pending_at_ms, new_policy, now_ms):
    """(usage, pending_at_ms) that storing `new_policy` at now_ms leaves (State::configure):
    the usage as recorded is kept and carried on every read as of the change; a second change
    within the same ms carries from the usage before the first, so a chain of them reads as
    the last one alone."""
    raw = tuple(usage or ())
    if pending_at_ms is not None and pending_at_ms == now_ms:
        pass
    elif pending_at_ms is not None and stored is not None:
        raw = carried(stored, raw, pending_at_ms)
    elif stored is not None:
        raw = stamp_windows(stored, raw)
    if not raw:
        return tuple(empty_usage(lim) for lim in new_policy), None
    pending = not is_native(new_policy, raw) or carried(new_policy, raw, now_ms) != raw
    return raw, (now_ms if pending else None)


def decide(policy, usage, now_ms, cost):
    """Each limit's admission (None: it denies), on usage the policy reads."""
    return [KINDS[lim.kind].admit(lim, u, now_ms, cost) for lim, u in zip(policy, usage)]


def allowed(admits):
    return all(a is not None for a in admits)


def record(policy, usage, admits, now_ms, cost, lease_id=None):
    """The usage after an allowed request; every CONCURRENCY limit records lease `lease_id`."""
    return tuple(KINDS[lim.kind].record(lim, u, a, now_ms, cost, lease_id)
                 for lim, u, a in zip(policy, usage, admits))


def repair(policy, usage, now_ms):
    """(usage as decisions read it after a clock step back, whether anything moved)."""
    out = tuple(KINDS[lim.kind].repair(lim, u, now_ms) for lim, u in zip(policy, usage))
    return out, any(a is not b for a, b in zip(out, usage))


def numbers(policy, usage, admits, now_ms, cost, denied=False) -> Numbers:
    """The one numbers function (decide.rs, numbers): for a request of `cost` decided as
    `admits` on `usage` (before it was recorded), or for no request (admits None: what
    RL.INFO shows). `denied`: told as a denial whatever the limits say (a blocked key)."""
    ok = admits is not None and allowed(admits) and not denied
    each, waits = [], []
    for i, (lim, u) in enumerate(zip(policy, usage)):
        k = KINDS[lim.kind]
        each.append(k.after(lim, u, admits[i] if ok else None, now_ms, cost))
        waits.append(k.wait_ms(lim, u, now_ms, cost) if admits is not None and not ok else 0)
    remaining = [r for r, _ in each]
    resets = [max(e - now_ms, 0) for _, e in each]
    never = next((i for i, w in enumerate(waits) if w is None), None)
    if admits is not None and not ok:
        binding = never if never is not None else waits.index(max(waits))
        retry = -1 if never is not None else max(max(waits), 1)
    else:
        binding, retry = remaining.index(min(remaining)), -1
    return Numbers(ok, binding, policy[binding].burst, min(remaining), retry, max(resets),
                   tuple(zip(remaining, resets)))


def own_empty_at(usage, now_ms, fallback):
    """The first ms from which the usage as recorded is empty (a key without a stored policy
    expires then); `fallback` for a log that does not know its window."""
    at = now_ms
    for u in usage:
        e = KINDS[kind_of(u)].own_empty_at(u, now_ms)
        at = max(at, fallback if e is None else e)
    return at


def refund(policy, usage, now_ms, n):
    """(usage, the most units any limit gave back) after giving back `n` on every rate limit
    (RL.REFUND). CONCURRENCY limits give nothing back."""
    out, most = [], 0
    for lim, u in zip(policy, usage):
        u, given = KINDS[lim.kind].refund(lim, u, now_ms, n)
        out.append(u)
        most = max(most, given)
    return tuple(out), most


def charge(policy, usage, now_ms, units):
    """The usage after charging `units` on every rate limit whatever it does to admission (a
    settle above its estimate), each debt capped at one full bucket or window."""
    return tuple(KINDS[lim.kind].charge(lim, u, now_ms, units) for lim, u in zip(policy, usage))

