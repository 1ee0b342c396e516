"""DistributedRateLimiter and AsyncDistributedRateLimiter: the public API, written once.

Each method builds a generator of the engine (engine.py: all the logic) and hands it to the
class's driver: the sync one runs it on the calling thread, the asyncio one in a coroutine.
So every method of AsyncDistributedRateLimiter returns an awaitable, with the same signature.

    limiter = DistributedRateLimiter("redis://localhost:6379")   # or a redis-py client
    limiter.configure_rate_limit("user123", limit=10, window_ms=60_000)
    limiter.is_allowed("user123")                 # True ten times, then False
"""

import asyncio
import os
import time

import redis
import redis.asyncio
import redis.cluster

from . import operations as ops
from .aio import AsyncTransport
from .engine import Engine, Sleep
from .errors import ConfigurationError
from .lease import Lease
from .options import options_of
from .redispy import client_from_url
from .transport import Transport

DEFAULT_URL = "redis://127.0.0.1:6379"


def _lazy(make):
    """A generator that builds its operation when first run (so that argument errors surface
    where the call is awaited, in both drivers)."""
    return (yield from make())


def _then(gen, f):
    return f((yield from gen))


class _Limiter:
    _ASYNC = False
    _CLIENTS = ()

    def __init__(self, url_or_client=None, **options):
        self._engine = Engine(options_of(options))
        if url_or_client is None:
            url_or_client = os.environ.get("REDIS_URL") or DEFAULT_URL
        self._owns_client = isinstance(url_or_client, str)
        if self._owns_client:
            url_or_client = client_from_url(url_or_client, asyncio_=self._ASYNC)
        elif not isinstance(url_or_client, self._CLIENTS):
            names = " or ".join(f"{c.__module__}.{c.__name__}" for c in self._CLIENTS)
            raise ConfigurationError(f"url_or_client must be a redis:// URL or a {names}, "
                                     f"not {type(url_or_client).__name__}")
        self.client = url_or_client

    @classmethod
    def from_url(cls, url, **options):
        """The limiter over a client of its own for `url` (closed by close())."""
        return cls(url, **options)

    # --- the API (each returns an awaitable in AsyncDistributedRateLimiter) -------------------

    def configure_rate_limit(self, client_id, limit=None, window_ms=None, *, burst=None, kind=None, idle_ms=None,
                             shadow=False, penalty_ms=None, penalty_max_ms=None):
        """Stores the client's policy (RL.CONFIG): `limit` requests per `window_ms` (GCRA by
        default, kind='sliding' for at most `limit` in any window, kind='concurrency' for at
        most `limit` leases held at once, each living `window_ms`), or a list of up to 4
        limits decided all-or-nothing. `penalty_ms` (opt-in): a denial blocks the key that
        long, doubling up to `penalty_max_ms` when denials come back within a window.
        Remembered, and sent again if Redis loses it."""
        e = self._engine
        return self._run(_lazy(lambda: e.configure(
            e.config_request(client_id, limit, window_ms, burst, kind, idle_ms, shadow, penalty_ms, penalty_max_ms))))

    def throttle(self, client_id, *, cost=1, **policy):
        """Decides and counts a request: a Decision with the numbers and headers. The inline
        policy (`limit`, `window_ms`, `burst`, `kind`, `penalty_ms`, `penalty_max_ms`, the
        shapes of configure_rate_limit) applies to keys nobody configured."""
        e = self._engine
        return self._run(_lazy(lambda: e.check(ops.THROTTLE, e.check_request(client_id, cost, **policy))))

    def is_allowed(self, client_id, *, cost=1, **policy):
        """True if the request passes (and is counted)."""
        e = self._engine
        return self._run(_then(_lazy(lambda: e.check(ops.THROTTLE, e.check_request(client_id, cost, **policy))),
                               lambda d: d.allowed))

    def peek(self, client_id, *, cost=1, **policy):
        """The Decision a request (on a key with a CONCURRENCY limit: an acquire) would get
        now; counts nothing."""
        e = self._engine
        return self._run(_lazy(lambda: e.check(ops.PEEK, e.check_request(client_id, cost, **policy))))

    def wait_until_allowed(self, client_id, *, timeout_ms, cost=1, **policy):
        """Checks; when denied, sleeps exactly retry_after_ms and checks again, never past
        timeout_ms. Returns the last Decision (allowed, or the denial that would outlast it)."""
        e = self._engine
        return self._run(_lazy(lambda: e.wait_until_allowed(e.check_request(client_id, cost, **policy), timeout_ms)))

    def refund(self, client_id, n, **policy):
        """Gives back `n` units on every rate limit of the key (RL.REFUND), never making room
        beyond an empty bucket; returns the most units any limit gave back (0: nothing)."""
        return self._run(self._engine.refund(client_id, n, **policy))

    def reserve(self, client_id, estimate, hold_ms=None, **policy):
        """Decided and counted like throttle(cost=estimate); when allowed the Decision's
        `reservation` holds it until settle() (or for `hold_ms`, default 5 minutes, after which
        it stays charged at the estimate)."""
        e = self._engine
        return self._run(_lazy(lambda: e.check(ops.RESERVE, e.reserve_request(client_id, estimate, hold_ms,
                                                                               **policy))))

    def settle(self, client_id, reservation, actual):
        """Settles a reservation at the `actual` cost: gives back the difference below the
        estimate (never more than the hold), charges the excess above it even into debt (at
        most one full bucket). Returns the units charged (> 0) or given back (< 0). A
        reservation of None does nothing (returns 0)."""
        return self._run(self._engine.settle(client_id, reservation, actual))

    def block(self, client_id, ms):
        """Blocks the key for `ms` (RL.BLOCK): every check is denied until then."""
        return self._run(self._engine.block(client_id, ms))

    def unblock(self, client_id):
        """Ends the key's block and forgets its penalty level; True if it was blocked."""
        return self._run(self._engine.unblock(client_id))

    def acquire(self, client_id, cost=1, **policy):
        """Takes a lease of `cost` on the key's CONCURRENCY limits (counting the request on
        its rate limits, all or nothing): a Decision whose `lease` is to be released (None
        when denied). The lease ends by itself after the limit's window_ms unless renewed."""
        e = self._engine
        return self._run(_lazy(lambda: e.check(ops.ACQUIRE, e.check_request(client_id, cost, **policy))))

    def release(self, client_id, lease):
        """Gives a lease back: True if it was held (False: it had expired or was released). A
        lease of None does nothing."""
        return self._run(self._engine.release(client_id, lease))

    def renew(self, client_id, lease, ms):
        """Keeps a held lease for `ms` more from now; True if it was held."""
        return self._run(self._engine.renew(client_id, lease, ms))

    def lease(self, client_id, cost=1, *, raise_on_deny=False, **policy):
        """`with limiter.lease(id, ...) as decision:` (`async with` on the asyncio limiter):
        acquires, runs the body and always releases, also when the body raises. A denied
        acquire is a Decision the body sees (`decision.allowed` False), unless
        raise_on_deny=True: then Denied is raised and the body does not run."""
        return Lease(self, client_id, cost, raise_on_deny, policy)

    def reset(self, client_id):
        """Forgets the client's usage, keeps its policy; returns the backlog forgotten (ms)."""
        e = self._engine
        return self._run(_lazy(lambda: e.reset(e.check_request(client_id))))

    def info(self, client_id):
        """The key's policy and state as a dict (RL.INFO), or None for an absent key."""
        e = self._engine
        return self._run(_lazy(lambda: e.info(e.check_request(client_id))))

    def ready(self, timeout_ms=None):
        """Returns once Redis answered (a PING); raises Unavailable, with the cause, when it
        does not within `timeout_ms` (default: the connect_timeout_ms option)."""
        return self._run(_lazy(lambda: self._engine.ready(timeout_ms)))

    def stats(self):
        """Decisions by path (redis, lua, local, cached, failed_open, failed_closed), errors,
        timeouts, reconfigured, the breaker state, the backend and ever_connected."""
        return self._engine.stats()


class DistributedRateLimiter(_Limiter):
    """A rate limiter over a redis-py `Redis` or `RedisCluster` (yours, or one it makes from a
    URL). Options: see options.py and clients/README.md."""

    _CLIENTS = (redis.Redis, redis.cluster.RedisCluster)

    def __init__(self, url_or_client=None, **options):
        super().__init__(url_or_client, **options)
        self._transport = Transport(self.client)

    def _run(self, gen):
        reply = err = None
        while True:
            try:
                step = gen.send(reply) if err is None else gen.throw(err)
            except StopIteration as stop:
                return stop.value
            reply = err = None
            try:
                if isinstance(step, Sleep):
                    time.sleep(step.seconds)
                else:
                    reply = self._transport.call(step.key, step.args, step.timeout_s)
            except Exception as e:  # handed to the engine, which decides
                err = e

    def close(self):
        """Closes the client if this limiter made it (from a URL)."""
        if self._owns_client:
            self.client.close()


class AsyncDistributedRateLimiter(_Limiter):
    """The same limiter over `redis.asyncio.Redis` or `RedisCluster`: every method but
    stats() returns an awaitable."""

    _ASYNC = True
    _CLIENTS = (redis.asyncio.Redis, redis.asyncio.RedisCluster)

    def __init__(self, url_or_client=None, **options):
        super().__init__(url_or_client, **options)
        self._transport = AsyncTransport(self.client)

    async def _run(self, gen):
        reply = err = None
        while True:
            try:
                step = gen.send(reply) if err is None else gen.throw(err)
            except StopIteration as stop:
                return stop.value
            reply = err = None
            try:
                if isinstance(step, Sleep):
                    await asyncio.sleep(step.seconds)
                else:
                    reply = await self._transport.call(step.key, step.args, step.timeout_s)
            except Exception as e:  # handed to the engine, which decides
                err = e

    async def close(self):
        """Closes the client if this limiter made it (from a URL)."""
        if self._owns_client:
            await self._transport.close()

