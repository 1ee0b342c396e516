"""The module's GCRA in pure Python, exact to the unit of 1/limit ms: validation with the
module's own wording, the decision, and the numbers behind it. Used by the in-process
limiter (`on_error='local'`) and to validate every call before anything is sent.

A port of src/bucket.rs and src/verdict.rs: the theoretical arrival time (TAT) is kept as
`ms + frac/den` Unix ms, and a request of cost n at `now_ms` passes iff
`max(TAT, now) + n*T - now <= burst*T` with `T = window_ms / limit`, all in integers (Python's
are unbounded, so no bound is needed here). Time is a parameter.
"""

from dataclasses import dataclass
from typing import NamedTuple

from .errors import InvalidArgument

MAX_LIMIT = 1_000_000_000
MAX_WINDOW_MS = 1_000_000_000_000
MAX_BURST = 1_000_000_000
MAX_COST = 1_000_000_000
MAX_IDLE_MS = MAX_WINDOW_MS
MAX_DRAIN_MS = 10_000_000_000_000
# The Lua fallback's exact range (clients/lua/ratelimit.lua): doubles hold integers to 2^53.
LUA_MAX_LIMIT = 1 << 26
LUA_MAX_TOLERANCE = 1 << 51

_RANGE = "{} must be an integer from 1 to {}"


def check_int(name, value, hi, allow_none=False):
    """`value` as an int in 1..hi, or InvalidArgument with the module's message."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hi:
        raise InvalidArgument(_RANGE.format(name, hi))
    return value


@dataclass(frozen=True)
class Policy:
    """A validated policy: `limit` per `window_ms`, a bucket of `burst` requests."""

    limit: int
    window_ms: int
    burst: int

    @classmethod
    def of(cls, limit, window_ms, burst=None):
        limit = check_int("limit", limit, MAX_LIMIT)
        window_ms = check_int("window_ms", window_ms, MAX_WINDOW_MS)
        burst = check_int("burst", burst, MAX_BURST, allow_none=True) or limit
        if burst * window_ms > MAX_DRAIN_MS * limit:
            raise InvalidArgument("burst * window_ms / limit is too large: a full bucket must drain "
                                  "within 10000000000000 ms")
        return cls(limit, window_ms, burst)

    def fits_lua(self):
        return self.limit <= LUA_MAX_LIMIT and self.burst * self.window_ms <= LUA_MAX_TOLERANCE

    def check_lua(self):
        if not self.fits_lua():
            raise InvalidArgument("policy out of the Lua fallback's exact range (limit <= 67108864 and "
                                  "burst * window_ms <= 2251799813685248): load the rl module for it")
        return self

    def share(self, fraction):
        """This policy with limit and burst scaled by `fraction` (0 < fraction <= 1), rounded
        down and at least 1, over the same window: what one of several instances enforces."""
        return Policy(max(1, int(self.limit * fraction)), self.window_ms, max(1, int(self.burst * fraction)))


class Tat(NamedTuple):
    """Theoretical arrival time: exactly `ms + frac/den` Unix ms, 0 <= frac < den. (Named
    tuples: the local limiter builds two per decision, and frozen dataclasses cost 3x more.)"""

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


class Verdict(NamedTuple):
    """One decision with its numbers, as RL.THROTTLE replies them."""

    allowed: bool
    limit: int
    remaining: int
    retry_after_ms: int  # -1: allowed, or never (cost > burst)
    reset_after_ms: int
    tat: Tat  # the bucket after the decision


def remaining(policy, tat, now_ms):
    """Cost-1 requests that would pass at now_ms: k pass while backlog + k*T <= burst*T."""
    tolerance = policy.burst * policy.window_ms
    backlog = max(tat.in_units(policy.limit) - now_ms * policy.limit, 0)
    return max(tolerance - backlog, 0) // policy.window_ms


def evaluate(policy, tat, now_ms, cost, shadow=False):
    """Decides a request of `cost` at `now_ms` against a bucket at `tat` (module semantics,
    shadow included: a shadow denial reads as allowed and changes nothing)."""
    limit, interval = policy.limit, policy.window_ms
    tolerance = policy.burst * interval
    now = now_ms * limit
    start = max(tat.in_units(limit), now)
    new_tat = start + cost * interval
    allowed = new_tat - now <= tolerance
    after = Tat.from_units(new_tat, limit) if allowed else tat
    retry = -1
    if not allowed and cost <= policy.burst and not shadow:
        needed = max(tat.in_units(limit) + cost * interval - tolerance, 0)
        retry = max(-(-needed // limit) - now_ms, 1)
    return Verdict(allowed or shadow, policy.burst, remaining(policy, after, now_ms), retry,
                   max(after.empty_at_ms() - now_ms, 0), after)
