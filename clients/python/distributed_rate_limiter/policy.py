"""Policies as the caller writes them, validated once: one limit or a list of up to four, each
GCRA (`limit` per `window_ms` on average, bursts up to `burst`), SLIDING (at most `limit` in
any `window_ms`) or CONCURRENCY (at most `limit` leases held at once, each living `window_ms`
unless released or renewed), plus the key-level PENALTY. Errors name the caller's argument
(`window_ms`), with the module's bounds. Pure: no I/O."""

from typing import NamedTuple, Optional, Tuple

from .errors import InvalidArgument
from .rates import parse_rates

MAX_LIMIT = 1_000_000_000
MAX_WINDOW_MS = 1_000_000_000_000
MAX_BURST = 1_000_000_000
MAX_COST = 1_000_000_000
MAX_IDLE_MS = MAX_WINDOW_MS
MAX_DRAIN_MS = 10_000_000_000_000
MAX_LIMITS = 4
MAX_SLIDING_LIMIT = 1000
MAX_SLIDING_WINDOW_MS = 2**32 - 1
MAX_PENALTY_MS = 10**12
MAX_HOLD_MS = 86_400_000  # a reservation's hold: 1 ms to 1 day (default 5 minutes)
DEFAULT_HOLD_MS = 300_000
MAX_LEASE_MS = 2**32 - 1  # RL.RENEW's bound, as a CONCURRENCY window's
MAX_BLOCK_MS = 10**12
# The Lua fallback's exact range for GCRA limits (clients/lua/ratelimit.lua): doubles hold
# integers up to 2^53.
LUA_MAX_LIMIT = 1 << 26
LUA_MAX_TOLERANCE = 1 << 51
KINDS = ("gcra", "sliding", "concurrency")
# Kinds whose capacity is a count, not a bucket: no BURST, limit <= 1000, window_ms < 2^32.
COUNTED = ("sliding", "concurrency")


def check_int(name, value, hi, allow_none=False, lo=1):
    """`value` as an int in lo..hi, or InvalidArgument naming `name`."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidArgument(f"{name} must be an integer from {lo} to {hi}")
    return value


class Limit(NamedTuple):
    """One validated limit. `burst` is the bucket (GCRA) or equals `limit` (SLIDING,
    CONCURRENCY: a count, not a bucket)."""

    kind: str
    limit: int
    window_ms: int
    burst: int

    @classmethod
    def of(cls, limit, window_ms, burst=None, kind=None):
        kind = "gcra" if kind is None else kind
        if kind not in KINDS:
            raise InvalidArgument(f"kind must be 'gcra', 'sliding' or 'concurrency', not {kind!r}")
        limit = check_int("limit", limit, MAX_LIMIT)
        window_ms = check_int("window_ms", window_ms, MAX_WINDOW_MS)
        if kind in COUNTED:
            name = kind.upper()
            if burst is not None:
                raise InvalidArgument(f"burst applies to GCRA limits only: a {name} limit's burst is its limit")
            if limit > MAX_SLIDING_LIMIT:
                hint = "use GCRA for more requests per window" if kind == "sliding" else "leases held at once"
                raise InvalidArgument(f"a {name} limit must be an integer from 1 to 1000 ({hint})")
            if window_ms > MAX_SLIDING_WINDOW_MS:
                raise InvalidArgument(f"a {name} window_ms must be an integer from 1 to 4294967295 (about 49 days)")
            return cls(kind, limit, window_ms, limit)
        burst = check_int("burst", burst, MAX_BURST, allow_none=True) or limit
        if burst * window_ms > MAX_DRAIN_MS * limit:
            raise InvalidArgument("burst * window_ms / limit is too large: a full bucket must drain "
                                  "within 10000000000000 ms")
        return cls("gcra", limit, window_ms, burst)

    def fits_lua(self):
        return self.kind in COUNTED or (self.limit <= LUA_MAX_LIMIT
                                         and self.burst * self.window_ms <= LUA_MAX_TOLERANCE)

    def share(self, fraction):
        """This limit with its count (and GCRA burst) scaled by `fraction`, rounded down and at
        least 1, over the same window: what one of several instances enforces locally."""
        limit = max(1, int(self.limit * fraction))
        burst = limit if self.kind in COUNTED else max(1, int(self.burst * fraction))
        return Limit(self.kind, limit, self.window_ms, burst)


Policy = Tuple[Limit, ...]


def _rate_limits(text, burst=None, kind=None):
    """The Limits of a rate string, each `kind` (default GCRA: the same average, a burst of its
    amount); `burst` only for a string of one rate."""
    rates = parse_rates(text)
    if burst is not None and len(rates) > 1:
        raise InvalidArgument(f"burst applies to one limit, and {text!r} has {len(rates)}: write them as dicts")
    return tuple(Limit.of(r.amount, r.window_ms, burst, kind) for r in rates)


def _one(item):
    if isinstance(item, Limit):
        return item
    if isinstance(item, dict):
        unknown = set(item) - {"limit", "window_ms", "burst", "kind"}
        if unknown:
            raise InvalidArgument(f"a limit takes limit, window_ms, burst and kind, not {sorted(unknown)}")
        return Limit.of(item.get("limit"), item.get("window_ms"), item.get("burst"), item.get("kind"))
    raise InvalidArgument(f"a limit is a dict, a Limit or a rate string, not {type(item).__name__}")


def policy_of(limit=None, window_ms=None, burst=None, kind=None, required=False) -> Optional[Policy]:
    """The caller's policy as a tuple of 1 to 4 Limits, or None when none was given:
    `limit=10, window_ms=1000[, burst=, kind=]`, a rate string `limit="10/minute"` or
    `"100 per hour; 1000 per day"` (each GCRA unless `kind` says; rates.py), or
    `limit=[{...}, Limit(...), "10/second", ...]` (dicts, Limits and rate strings), or one dict
    or Limit."""
    if isinstance(limit, str):
        if window_ms is not None:
            raise InvalidArgument(f"a rate string carries its window: pass limit={limit!r} without window_ms")
        return _at_most_four(_rate_limits(limit, burst, kind))
    if isinstance(limit, (list, tuple, dict, Limit)):
        if window_ms is not None or burst is not None or kind is not None:
            raise InvalidArgument("a list of limits takes window_ms, burst and kind inside each limit")
        items = [limit] if isinstance(limit, (dict, Limit)) else list(limit)
        if not items:
            raise InvalidArgument("a policy needs at least one limit")
        return _at_most_four(tuple(x for i in items for x in (_rate_limits(i) if isinstance(i, str) else (_one(i),))))
    if limit is None and window_ms is None:
        if burst is not None or kind is not None:
            raise InvalidArgument("burst and kind need limit and window_ms")
        if required:
            raise InvalidArgument("limit and window_ms are required")
        return None
    if limit is None or window_ms is None:
        raise InvalidArgument("limit and window_ms must be given together")
    return (Limit.of(limit, window_ms, burst, kind),)


def fits_sliding(amount, window_ms):
    return amount <= MAX_SLIDING_LIMIT and window_ms <= MAX_SLIDING_WINDOW_MS


def count_per_window(amount, window_ms):
    """A peer's "`amount` per window" where the peer promises a count per window (a fixed
    window: limits' fixed window and sliding-window counter, django-ratelimit): SLIDING, at
    most `amount` in any window, where SLIDING holds it (amount <= 1000, window < 2^32 ms);
    beyond, GCRA `amount` per window with a burst of `amount` (the same average and burst; at
    most twice `amount` in a span of one window, as a fixed window across its boundary)."""
    return Limit.of(amount, window_ms, kind="sliding" if fits_sliding(amount, window_ms) else "gcra")


def _at_most_four(policy):
    if len(policy) > MAX_LIMITS:
        raise InvalidArgument("too many limits: a key holds at most 4")
    return policy


def check_lua(policy):
    for lim in policy:
        if not lim.fits_lua():
            raise InvalidArgument("policy out of the Lua fallback's exact range (limit <= 67108864 and "
                                  "burst * window_ms <= 2251799813685248): load the rl module for it")
    return policy


class Penalty(NamedTuple):
    """PENALTY ms [MAX max_ms]: a denial while the key is not blocked blocks it for
    `ms * 2^level` ms, at most `max_ms` (level: 0, or the previous one + 1 when the previous
    block ended less than one window ago). Key-level, like idle_ms and shadow, and inline too."""

    ms: int
    max_ms: int

    def length_ms(self, level):
        """The block a penalty at `level` imposes (the shift is capped: max_ms < 2^40)."""
        return min(self.ms << min(level, 64), self.max_ms)


def penalty_of(penalty_ms=None, penalty_max_ms=None) -> Optional[Penalty]:
    """The caller's `penalty_ms=`/`penalty_max_ms=` as a Penalty, or None."""
    if penalty_ms is None:
        if penalty_max_ms is not None:
            raise InvalidArgument("penalty_max_ms needs penalty_ms")
        return None
    ms = check_int("penalty_ms", penalty_ms, MAX_PENALTY_MS)
    if penalty_max_ms is None:
        return Penalty(ms, ms)  # no escalation
    return Penalty(ms, check_int("penalty_max_ms", penalty_max_ms, MAX_PENALTY_MS, lo=ms))


def has_concurrency(policy):
    return policy is not None and any(lim.kind == "concurrency" for lim in policy)


def longest_window_ms(policy):
    return max(lim.window_ms for lim in policy)


class Stored(NamedTuple):
    """What configure_rate_limit stores: the limits, idle_ms (0: never forgotten), shadow and
    the penalty (None: no penalties, the default)."""

    policy: Policy
    idle_ms: int = 0
    shadow: bool = False
    penalty: Optional[Penalty] = None
