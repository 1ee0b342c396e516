"""GCRA, the leaky bucket as a meter, exactly as the module decides it (src/gcra.rs and
src/verdict.rs): the theoretical arrival time (TAT) is `ms + frac/den` Unix ms, decisions are
integers in units of 1/limit ms (Python's ints are unbounded: no range to watch), and a TAT
more than one full bucket ahead of now (the clock stepped back) is read as one full bucket.
Time is a parameter. Pure: no I/O."""

from typing import NamedTuple


class Tat(NamedTuple):
    """Exactly `ms + frac/den` Unix ms, 0 <= frac < den. (Named tuples: the local limiter
    builds a few per decision, and frozen dataclasses cost 3x more.)"""

    ms: int = 0
    frac: int = 0
    den: int = 1

    def in_units(self, limit):
        """The TAT in units of 1/limit ms, rounded up when `limit` is not its denominator."""
        if self.den == limit:
            return self.ms * limit + self.frac
        return self.ms * limit + -(-self.frac * limit // self.den)

    @classmethod
    def from_units(cls, units, limit):
        ms, frac = divmod(units, limit)
        return cls(ms, frac, limit)

    def empty_at_ms(self):
        return self.ms + (1 if self.frac else 0)


EMPTY = Tat()


def clamped(lim, tat, now_ms):
    """`tat` as a decision reads it: never more than one full bucket after now."""
    cap = now_ms * lim.limit + lim.burst * lim.window_ms
    if tat.in_units(lim.limit) <= cap:
        return tat
    return Tat.from_units(cap, lim.limit)


def admits(lim, tat, now_ms, cost):
    """The TAT after a request of `cost` at now_ms, or None when it does not fit."""
    now = now_ms * lim.limit
    tolerance = lim.burst * lim.window_ms
    start = max(min(tat.in_units(lim.limit), now + tolerance), now)
    new = start + cost * lim.window_ms
    return Tat.from_units(new, lim.limit) if new - now <= tolerance else None


def remaining(lim, tat, now_ms):
    """Cost-1 requests that would pass at now_ms: k pass while backlog + k*T <= burst*T."""
    tolerance = lim.burst * lim.window_ms
    backlog = max(clamped(lim, tat, now_ms).in_units(lim.limit) - now_ms * lim.limit, 0)
    return max(tolerance - backlog, 0) // lim.window_ms


def retry_after_ms(lim, tat, now_ms, cost):
    """Ms until a denied request of `cost` passes; -1 when it never can (cost > burst)."""
    if cost > lim.burst:
        return -1
    needed = max(clamped(lim, tat, now_ms).in_units(lim.limit) + cost * lim.window_ms
                 - lim.burst * lim.window_ms, 0)
    return max(-(-needed // lim.limit) - now_ms, 1)


# The interface every kind offers to limits.py (its registry), in units of this kind.

def repair(lim, tat, now_ms):
    """(the TAT as decisions read it, whether that differs from the stored one)."""
    c = clamped(lim, tat, now_ms)
    return c, c != tat


def fits(lim, tat, now_ms, cost):
    return admits(lim, tat, now_ms, cost) is not None


def counted(lim, tat, now_ms, cost, lease_id=None):
    """The TAT after admitting `cost` (call only when it fits)."""
    return admits(lim, tat, now_ms, cost)


def reset_after_ms(lim, tat, now_ms):
    return max(tat.empty_at_ms() - now_ms, 0)


def empty_at_ms(lim, tat, now_ms):
    return tat.empty_at_ms()


def _backlog(lim, tat, now_ms):
    """The backlog at now_ms in 1/limit-ms units (0 for an empty bucket), read as a decision
    reads it (at most one full bucket)."""
    return max(clamped(lim, tat, now_ms).in_units(lim.limit) - now_ms * lim.limit, 0)


def refund(lim, tat, now_ms, n, at_ms=None):
    """(TAT, units given back) after giving back `n` units: TAT := max(now, TAT - n*T), and
    given back min(n, ceil((TAT - now) / T)). Never makes room beyond an empty bucket."""
    backlog = _backlog(lim, tat, now_ms)
    if backlog == 0:
        return tat, 0
    given = min(n, -(-backlog // lim.window_ms))
    return Tat.from_units(now_ms * lim.limit + max(backlog - n * lim.window_ms, 0), lim.limit), given


def charge(lim, tat, now_ms, units):
    """The TAT after charging `units` whatever it does to admission (a settle above its
    estimate): TAT := min(max(TAT, now) + units*T, now + burst*T), so a debt is at most one
    full bucket beyond now."""
    backlog = min(_backlog(lim, tat, now_ms) + units * lim.window_ms, lim.burst * lim.window_ms)
    return Tat.from_units(now_ms * lim.limit + backlog, lim.limit)
