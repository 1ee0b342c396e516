"""A `limits` storage whose decisions are the rl module's (or the Lua script's, or the local
limiter's under the failure policy): flask-limiter's and slowapi's `@limiter.limit("10/minute")`
decide through it with `storage_uri="drl://host:6379"`.

    import distributed_rate_limiter.limits_storage  # registers drl:// with limits
    limiter = Limiter(get_remote_address, app=app, storage_uri="drl://127.0.0.1:6379")

`limits` finds a storage by the URI scheme its class declares (STORAGE_SCHEME, registered by
its metaclass when the class is defined), so this module must be imported once before the
storage is made. Schemes: drl:// (redis://), drls:// (rediss://), drl+unix:///path,
drl+cluster:// and drls+cluster:// (a Redis Cluster, any node). Storage options
(flask-limiter's RATELIMIT_STORAGE_OPTIONS, slowapi's storage_options) are the limiter's
(`prefix`, default 'rl:limits:'; `on_error`, `timeout_ms`, ...), or `limiter=` an existing
DistributedRateLimiter.

The strategies of `limits` ask a storage for counters; here every answer is a decision of the
module on the key `prefix + limits' key`, with the limit read from that key (limits writes
`.../<amount>/<multiples>/<granularity>` at its end) or passed by the strategy:

- fixed-window and sliding-window-counter: SLIDING `amount` per window (at most that many in
  any window: never the fixed window's double burst across a boundary, and exact where the
  counter approximates) when it fits SLIDING (amount <= 1000, window < 2^32 ms, about 49
  days); beyond, GCRA `amount` per window, burst `amount`: the same average and burst, at most
  2 x amount in any span of one window as a fixed window allows, but refilled one request
  every window/amount rather than all at the window's end.
- moving-window: SLIDING (the peer's promise is an exact count in any window); beyond
  SLIDING's bounds the call is refused (InvalidArgument): a moving window is never silently
  weakened.

The counters handed back are what make each strategy's comparison say the module's decision:
`incr` is the count after the hit (a denied hit is not counted by the module; its count is
reported as limits would, over the limit), `get` the amount minus what remains. Reset times:
when the next request passes (exhausted), else when the limit is whole again (fixed window),
or when its oldest entry leaves (moving window, sliding-window counter)."""

import time
from typing import NamedTuple

import redis
from limits.storage import MovingWindowSupport, SlidingWindowCounterSupport, Storage

from .client import DistributedRateLimiter
from .errors import InvalidArgument, RateLimitError
from .policy import MAX_SLIDING_LIMIT, Limit, count_per_window, fits_sliding
from .rates import UNIT_MS

DEFAULT_PREFIX = "rl:limits:"
SCHEMES = {"drl": "redis", "drls": "rediss", "drl+unix": "unix", "drl+cluster": "redis+cluster",
           "drls+cluster": "rediss+cluster"}


def redis_url(uri):
    """The redis-py URL of a drl URI (drl://h:p/0 -> redis://h:p/0)."""
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme not in SCHEMES:
        raise InvalidArgument(f"{uri!r}: a drl storage URI starts with one of "
                              f"{', '.join(s + '://' for s in SCHEMES)}")
    return f"{SCHEMES[scheme]}://{rest}"


def item_of_key(key):
    """(amount, window_ms) from the end of a key that limits' RateLimitItem.key_for wrote."""
    parts = key.rsplit("/", 3)
    if len(parts) == 4 and parts[1].isdigit() and parts[2].isdigit() and parts[3] in UNIT_MS:
        return int(parts[1]), int(parts[2]) * UNIT_MS[parts[3]]
    raise InvalidArgument(f"{key!r} is not a key of limits' RateLimitItem.key_for (…/<amount>/<multiples>/"
                          "<granularity>): this storage reads the limit from it")


def counted_policy(amount, window_ms):
    """Fixed window and sliding-window counter: SLIDING where it fits, else GCRA."""
    return {"limit": count_per_window(amount, window_ms)}


def moving_policy(amount, window_ms):
    if not fits_sliding(amount, window_ms):
        raise InvalidArgument(f"a moving window of {amount} per {window_ms} ms: limits' moving window is exact and "
                              f"the module's exact SLIDING holds at most {MAX_SLIDING_LIMIT} per window of less than "
                              "2^32 ms; use the fixed-window or sliding-window-counter strategy (GCRA beyond those "
                              "bounds) for this limit")
    return {"limit": Limit.of(amount, window_ms, kind="sliding")}


class Usage(NamedTuple):
    used: int  # units counted now (the limit minus what remains)
    exhausted: bool  # a request of cost 1 is denied now
    next_free_ms: int  # until one more unit fits (exhausted: the next request passes)
    whole_ms: int  # until the limit is whole again


class DistributedRateLimiterStorage(Storage, MovingWindowSupport, SlidingWindowCounterSupport):
    """limits' storage over a DistributedRateLimiter (see the module's doc)."""

    STORAGE_SCHEME = list(SCHEMES)
    DEPENDENCIES = ["redis"]

    def __init__(self, uri="drl://", limiter=None, wrap_exceptions=False, **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions)
        if limiter is None:
            url = redis_url(uri)
            limiter = DistributedRateLimiter(None if url.endswith("://") else url,
                                             **{"prefix": DEFAULT_PREFIX, **options})
        elif options:
            raise InvalidArgument(f"options {sorted(options)} are the limiter's: give them to it, not with limiter=")
        self.limiter = limiter

    @property
    def base_exceptions(self):
        return (RateLimitError, redis.RedisError)

    # --- fixed window ----------------------------------------------------------------------

    def incr(self, key, expiry, amount=1):
        limit, window_ms = item_of_key(key)
        d = self.limiter.throttle(key, cost=amount, **counted_policy(limit, window_ms))
        used = max(limit - d.remaining, 0)
        return min(used, limit) if d.allowed else max(used + amount, limit + 1)

    def get(self, key):
        limit, window_ms = item_of_key(key)
        return self._usage(key, limit, counted_policy(limit, window_ms), detail=False).used

    def get_expiry(self, key):
        """When the next request passes (exhausted), else when the limit is whole again."""
        limit, window_ms = item_of_key(key)
        u = self._usage(key, limit, counted_policy(limit, window_ms))
        return time.time() + (u.next_free_ms if u.exhausted else u.whole_ms) / 1000

    # --- moving window ---------------------------------------------------------------------

    def acquire_entry(self, key, limit, expiry, amount=1):
        return self.limiter.throttle(key, cost=amount, **moving_policy(limit, expiry * 1000)).allowed

    def get_moving_window(self, key, limit, expiry):
        now = time.time()
        u = self._usage(key, limit, moving_policy(limit, expiry * 1000))
        if not u.used:
            return now, 0
        return now + u.next_free_ms / 1000 - expiry, u.used

    # --- sliding window counter -------------------------------------------------------------

    def acquire_sliding_window_entry(self, key, limit, expiry, amount=1):
        return self.limiter.throttle(key, cost=amount, **counted_policy(limit, expiry * 1000)).allowed

    def get_sliding_window(self, key, expiry):
        """(previous count, its ttl, current count, its ttl): the module's usage as a current
        window alone, whose ttl is when its next unit frees (the strategy's reset time)."""
        limit, window_ms = item_of_key(key)
        u = self._usage(key, limit, counted_policy(limit, window_ms))
        if not u.used:
            return 0, 0.0, 0, 0.0
        # The strategy takes the ttl modulo the window: keep a full window's ttl below it.
        return 0, 0.0, u.used, min(u.next_free_ms / 1000, expiry * (1 - 1e-9))

    def clear_sliding_window(self, key, expiry):
        self.clear(key)

    def _usage(self, key, limit, policy, detail=True):
        """The key's usage now, by peeks (which count nothing). A peek answers for a request
        made now: when allowed, its `remaining` is what would be left after it, so one is
        added back; when denied, nothing is counted and `reset_after_ms` is the current time
        until the limit is whole again. With `detail`, a second peek, of one more than
        remains (partly used), says when the oldest unit leaves: that request passes exactly
        then."""
        d = self.limiter.peek(key, **policy)
        remaining = d.remaining + 1 if d.allowed else d.remaining
        used = max(limit - remaining, 0)
        if not detail or not used:
            return Usage(used, not d.allowed, 0, 0)
        if d.allowed:
            d = self.limiter.peek(key, cost=min(remaining + 1, limit), **policy)
        next_free = d.retry_after_ms if d.retry_after_ms >= 0 else d.reset_after_ms
        return Usage(used, remaining == 0, next_free, d.reset_after_ms)

    # --- admin -------------------------------------------------------------------------------

    def clear(self, key):
        self.limiter.reset(key)

    def reset(self):
        """RL.RESET on every key under this storage's prefix (a usage-only key is deleted, a
        configured one keeps its policy); returns how many."""
        prefix = self.limiter._engine.prefix
        pattern = prefix.replace(b"\\", b"\\\\").replace(b"*", b"\\*").replace(b"?", b"\\?").replace(b"[", b"\\[")
        n = 0
        for key in list(self.limiter.client.scan_iter(match=pattern + b"*", count=1000)):
            self.limiter.reset(key[len(prefix):])
            n += 1
        return n

    def check(self):
        try:
            return self.limiter.ready()
        except RateLimitError:
            return False
