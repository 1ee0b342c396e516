"""GCRA, the leaky bucket as a meter, exactly as the module decides it (core/src/kinds/gcra.rs):
the theoretical arrival time (TAT) is `ms + frac/den` Unix ms, decisions are integers in units
of 1/limit ms (Python's ints are unbounded: no range to watch), and a TAT more than one full
bucket ahead of now (the clock stepped back, or a tightened limit) is read as one full bucket.

A usage is a Tat; the functions below the line are the interface every kind offers to
limits.py (the module's KindRules), each taking the limit first. Time is a parameter.
Pure: no I/O."""

from math import gcd
from typing import NamedTuple


class Tat(NamedTuple):
    """Exactly `ms + frac/den` Unix ms, 0 <= frac < den, kept in lowest terms (as the module
    stores it, so that equal instants are equal tuples). (Named tuples: the local limiter
    builds a few per decision, and frozen dataclasses cost 3x more.)"""

    ms: int = 0
    frac: int = 0
    den: int = 1

    def in_units(self, limit):
        """The TAT in units of 1/limit ms, rounded up when it is not a whole number of them."""
        if self.den == limit:
            return self.ms * limit + self.frac
        return self.ms * limit + -(-self.frac * limit // self.den)

    @classmethod
    def from_units(cls, units, limit):
        ms, frac = divmod(units, limit)
        if frac == 0:
            return cls(ms, 0, 1)
        g = gcd(frac, limit)
        return cls(ms, frac // g, limit // g)

    def empty_at_ms(self):
        """The first whole ms at or after the TAT: the bucket is empty from then on."""
        return self.ms + (1 if self.frac else 0)


EMPTY = Tat()


def tolerance(lim):
    """burst * T, in units of 1/limit ms."""
    return lim.burst * lim.window_ms


def clamped(lim, tat, now_ms):
    """`tat` as a decision at now_ms reads it: never more than one full bucket after now."""
    cap = now_ms * lim.limit + tolerance(lim)
    if tat.in_units(lim.limit) <= cap:
        return tat
    return Tat.from_units(cap, lim.limit)


def backlog(lim, tat, now_ms):
    """The backlog at now_ms in 1/limit-ms units (0 for an empty bucket), as decisions read it."""
    return max(clamped(lim, tat, now_ms).in_units(lim.limit) - now_ms * lim.limit, 0)


def remaining(lim, tat, now_ms):
    """Cost-1 requests that would pass at now_ms: k pass while backlog + k*T <= burst*T."""
    return max(tolerance(lim) - backlog(lim, tat, now_ms), 0) // lim.window_ms


# --- the interface of a kind (limits.py) ---------------------------------------------------

def admit(lim, tat, now_ms, cost):
    """The TAT after a request of `cost` at now_ms, or None when it does not fit."""
    now = now_ms * lim.limit
    new = now + backlog(lim, tat, now_ms) + cost * lim.window_ms
    return Tat.from_units(new, lim.limit) if new - now <= tolerance(lim) else None


def record(lim, tat, admitted, now_ms, cost, lease_id=None):
    return admitted


def repair(lim, tat, now_ms):
    """The TAT a denial stores after the clock stepped back (the same object if nothing moved)."""
    return clamped(lim, tat, now_ms)


def after(lim, tat, admitted, now_ms, cost):
    """(cost-1 requests still passing, the ms from which the bucket is empty) after a request
    (recorded if `admitted`)."""
    tat = admitted if admitted is not None else tat
    return remaining(lim, tat, now_ms), max(clamped(lim, tat, now_ms).empty_at_ms(), now_ms)


def wait_ms(lim, tat, now_ms, cost):
    """Ms until a request of `cost` fits (0: now), None when it never can (cost > burst)."""
    if cost > lim.burst:
        return None
    needed = max(clamped(lim, tat, now_ms).in_units(lim.limit) + cost * lim.window_ms - tolerance(lim), 0)
    return max(-(-needed // lim.limit) - now_ms, 0)


def own_empty_at(tat, now_ms):
    return tat.empty_at_ms()


def window_of(tat):
    return None


def carry(lim, tat, at_ms):
    """A GCRA usage under this (changed) GCRA limit from `at_ms`: the same backlog as time, at
    most one full bucket of this limit from then."""
    return clamped(lim, tat, at_ms)


def export(tat, at_ms):
    """What is still owed at `at_ms`, for a limit of another kind: ('until', tat) or None."""
    return ("until", tat) if tat.empty_at_ms() > at_ms else None


def import_(lim, carried, at_ms):
    """A TAT holding what another kind carried at `at_ms`: n requests owed from then, T each,
    at most one full bucket."""
    if carried is None:
        return EMPTY
    what, value = carried
    if what == "until":
        return carry(lim, value, at_ms)
    if what == "requests":
        units = at_ms * lim.limit + min(value * lim.window_ms, tolerance(lim))
        return Tat.from_units(units, lim.limit)
    return EMPTY


# --- issue 19: refunds and settles ---------------------------------------------------------

def refund(lim, tat, now_ms, n, at_ms=None):
    """(TAT, units given back) after giving back `n` units: TAT := max(now, TAT - n*T), given
    back min(n, ceil((TAT - now) / T)). Never makes room beyond an empty bucket."""
    b = backlog(lim, tat, now_ms)
    if b == 0:
        return tat, 0
    given = min(n, -(-b // lim.window_ms))
    return Tat.from_units(now_ms * lim.limit + max(b - n * lim.window_ms, 0), lim.limit), given


def settle_refund(lim, tat, now_ms, units, end, estimate):
    """A settle giving back `units` of a hold of `estimate` whose bucket ended at `end` right
    after its reserve: g = min(units*T, end - max(now, end - estimate*T)) (in 1/limit ms, 0 if
    negative), so units of the hold that already drained are never given back. Returns
    (TAT - g, g)."""
    e = end.in_units(lim.limit)
    now = now_ms * lim.limit
    g = max(min(units * lim.window_ms, e - max(now, e - estimate * lim.window_ms)), 0)
    t = clamped(lim, tat, now_ms).in_units(lim.limit)
    g = min(g, max(t - now, 0))
    if g == 0:
        return tat, 0
    return Tat.from_units(t - g, lim.limit), g


def charge(lim, tat, now_ms, units):
    """The TAT after charging `units` whatever it does to admission (a settle above its
    estimate): TAT := min(max(TAT, now) + units*T, now + burst*T), so a debt is at most one
    full bucket beyond now."""
    b = min(backlog(lim, tat, now_ms) + units * lim.window_ms, tolerance(lim))
    return Tat.from_units(now_ms * lim.limit + b, lim.limit)
