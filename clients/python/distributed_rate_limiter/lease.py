"""`with limiter.lease(id) as decision:` / `async with`: a lease held for the body's length.

The lease is always released, also when the body raises or (asyncio) is cancelled. A denied
acquire is a Decision the body can see, not an exception (unless raise_on_deny=True: then
Denied). A release that cannot reach Redis (retried once) raises Unavailable after a body that
succeeded; after a body that raised, the body's exception goes on and the failed release is
logged: either way the lease ends by itself after its window_ms."""

import inspect
import logging

from .errors import Denied

log = logging.getLogger("distributed_rate_limiter")


class Lease:
    def __init__(self, limiter, client_id, cost, raise_on_deny, policy):
        self._limiter = limiter
        self._id = client_id
        self._cost = cost
        self._raise_on_deny = raise_on_deny
        self._policy = policy
        self.decision = None

    def _entered(self, d):
        self.decision = d
        if self._raise_on_deny and not d.allowed:
            raise Denied(d)
        return d

    def _release_failed(self, body_failed, err):
        if not body_failed:
            return False  # raised by the caller: the release's own error
        log.warning("distributed_rate_limiter: lease %s of %r not released (%s); it ends by itself after its "
                    "window_ms", self.decision.lease, self._id, err)
        return True

    def __enter__(self):
        d = self._limiter.acquire(self._id, self._cost, **self._policy)
        if inspect.isawaitable(d):
            d.close()
            raise TypeError("the asyncio limiter's lease() is an async context manager: use 'async with'")
        return self._entered(d)

    def __exit__(self, exc_type, exc, tb):
        if self.decision is not None and self.decision.lease is not None:
            try:
                self._limiter.release(self._id, self.decision.lease)
            except Exception as e:
                if not self._release_failed(exc_type is not None, e):
                    raise
        return False

    async def __aenter__(self):
        return self._entered(await self._limiter.acquire(self._id, self._cost, **self._policy))

    async def __aexit__(self, exc_type, exc, tb):
        if self.decision is not None and self.decision.lease is not None:
            try:
                await self._limiter.release(self._id, self.decision.lease)
            except Exception as e:
                if not self._release_failed(exc_type is not None, e):
                    raise
        return False
