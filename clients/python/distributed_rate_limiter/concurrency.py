"""CONCURRENCY, a semaphore with leases that heal themselves (spec-19-20.md, issue 20): at most
`limit` (by cost) leases held at once. A lease is (id, cost, expires_at_ms), live while
now < expires_at_ms; it ends when released, or by itself `window_ms` after it was taken (or
renewed), so a worker that dies holding one gives its slot back without anyone's help. An
expiry is absolute Unix ms: a clock that steps back only makes it further away.

A usage is Leases; the functions below the line are the interface every kind offers to
limits.py. A lease is not a request: a change to or from another kind starts empty (a new
contract), and one at the same position keeps the live leases. Time is a parameter.
Pure: no I/O."""

from typing import NamedTuple, Tuple


class Lease(NamedTuple):
    id: int
    cost: int
    expires_at_ms: int


class Leases(NamedTuple):
    """A CONCURRENCY limit's usage: its leases, oldest first (a wrapper, so that it is never
    mistaken for a SLIDING log)."""

    items: Tuple[Lease, ...] = ()


EMPTY = Leases()


def live(leases, now_ms):
    return tuple(x for x in leases.items if x.expires_at_ms > now_ms)


def held(leases, now_ms):
    return sum(x.cost for x in live(leases, now_ms))


def _last_expiry(leases, now_ms):
    return max((x.expires_at_ms for x in live(leases, now_ms)), default=now_ms)


# --- the interface of a kind (limits.py) ---------------------------------------------------

def admit(lim, leases, now_ms, cost):
    return True if cost <= lim.limit and held(leases, now_ms) + cost <= lim.limit else None


def record(lim, leases, admitted, now_ms, cost, lease_id=None):
    """The leases after taking one of `cost` that lives `window_ms`."""
    return Leases(live(leases, now_ms) + (Lease(lease_id, cost, now_ms + lim.window_ms),))


def repair(lim, leases, now_ms):
    return leases  # expiries are absolute: nothing to read differently


def after(lim, leases, admitted, now_ms, cost):
    """(leases of cost 1 that could still be taken, when the last lease expires)."""
    h = held(leases, now_ms)
    if admitted is not None:
        return max(lim.limit - h - cost, 0), max(_last_expiry(leases, now_ms), now_ms + lim.window_ms)
    return max(lim.limit - h, 0), _last_expiry(leases, now_ms)


def wait_ms(lim, leases, now_ms, cost):
    """Ms until enough held leases expire for `cost` to fit (for cost 1: the earliest
    expiry); 0 when it fits now; None when it never can (cost > limit)."""
    if cost > lim.limit:
        return None
    current = live(leases, now_ms)
    left = sum(x.cost for x in current)
    if left + cost <= lim.limit:
        return 0
    for x in sorted(current, key=lambda x: x.expires_at_ms):
        left -= x.cost
        if left + cost <= lim.limit:
            return max(x.expires_at_ms - now_ms, 1)
    return 1


def own_empty_at(leases, now_ms):
    return _last_expiry(leases, now_ms)


def window_of(leases):
    return None


def carry(lim, leases, at_ms):
    return Leases(live(leases, at_ms))


def export(leases, at_ms):
    return None  # leases are not requests


def import_(lim, carried, at_ms):
    return EMPTY


def refund(lim, leases, now_ms, n, at_ms=None):
    return leases, 0  # a lease is given back with release, not refunded


def charge(lim, leases, now_ms, units):
    return leases  # a settle charges rate limits only


# --- RL.RELEASE and RL.RENEW -----------------------------------------------------------------

def release(leases, now_ms, lease_id):
    """(leases without `lease_id`, whether it was live)."""
    current = live(leases, now_ms)
    rest = tuple(x for x in current if x.id != lease_id)
    return Leases(rest), len(rest) != len(current)


def renew(leases, now_ms, lease_id, ms):
    """(leases with `lease_id` expiring at now + ms, whether it was live)."""
    current = live(leases, now_ms)
    out = tuple(x._replace(expires_at_ms=now_ms + ms) if x.id == lease_id else x for x in current)
    return Leases(out), any(x.id == lease_id for x in current)
