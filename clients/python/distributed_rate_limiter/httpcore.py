"""What the HTTP middlewares share, written once: their options, how a request is keyed,
counted (a check, or a lease held for the request's length) and logged, for ASGI
(middleware.py) and WSGI (wsgi.py) alike. Each step is a generator that yields what the
caller's functions and the limiter return (a value, or an awaitable from the asyncio limiter
or an async key function) and gets it back resolved: `run_sync` resolves on the calling
thread, `run_async` awaits. `request` is whatever the adapter hands the user's functions (an
ASGI scope, a WSGI environ).

Each request is counted under `<limiter prefix><name>:<client key>`: `name` is the `name`
option, else `METHOD route` (the route template the adapter finds, else the raw path). No
error detail reaches a response: a key function that returns None, or a limiter error, is
logged (once a minute per kind) and the request takes the limiter's failure policy."""

import inspect
import logging
import time

from .errors import ConfigurationError

log = logging.getLogger("distributed_rate_limiter")
LOG_EVERY_S = 60
POLICY_WORDS = ("limit", "window_ms", "burst", "kind", "penalty_ms", "penalty_max_ms")


def run_sync(gen):
    """Runs a core step where everything is sync (a DistributedRateLimiter, sync functions)."""
    value = err = None
    while True:
        try:
            step = gen.send(value) if err is None else gen.throw(err)
        except StopIteration as stop:
            return stop.value
        value = err = None
        if inspect.isawaitable(step):
            if inspect.iscoroutine(step):
                step.close()  # never awaited: no "coroutine was never awaited" warning
            err = TypeError("a WSGI app needs a sync DistributedRateLimiter and sync functions: got an awaitable")
        else:
            value = step


async def run_async(gen):
    """Runs a core step, awaiting what is awaitable (AsyncDistributedRateLimiter, async functions)."""
    value = err = None
    while True:
        try:
            step = gen.send(value) if err is None else gen.throw(err)
        except StopIteration as stop:
            return stop.value
        value = err = None
        try:
            value = await step if inspect.isawaitable(step) else step
        except Exception as e:  # handed to the step, which decides
            err = e


class RateLimitCore:
    """The options every middleware takes (see middleware.py), checked once."""

    def __init__(self, limiter, *, name=None, key, cost=None, skip=None, lease=False, route=None, **policy):
        unknown = [k for k in policy if k not in POLICY_WORDS]
        if unknown:
            raise ConfigurationError(f"unknown option {unknown[0]!r}: the middleware takes name, key, cost, skip, "
                                     f"handler, lease and the policy ({', '.join(POLICY_WORDS)})")
        self.limiter = limiter
        self.name = name
        self.key = key
        self.cost = cost
        self.skip = skip
        self.lease = lease
        self.route = route  # (request) -> 'METHOD template' or None
        self.policy = {k: v for k, v in policy.items() if v is not None}
        self._logged = {}  # what -> monotonic s of the last log line

    def _log(self, what, message, exc_info=None):
        now = time.monotonic()
        if now - self._logged.get(what, -LOG_EVERY_S) >= LOG_EVERY_S:
            self._logged[what] = now
            log.error("RateLimitMiddleware: %s", message, exc_info=exc_info)

    def skipped(self, request):
        return (yield self.skip(request)) if self.skip is not None else False

    def decide(self, request, method, path):
        """(the Decision, the key it was counted under or None). Never raises for a limiter
        error: the failure policy decides (as for a key function that returned None)."""
        client = yield self.key(request)
        if client is None:
            self._log("key", "the key function returned None: a configuration error; the request takes "
                             "the failure policy (on_error)")
            return self.limiter._engine.unkeyed_decision(), None
        cost = (yield self.cost(request)) if self.cost else 1
        name = self.name if self.name is not None else f"{method} {(self.route and self.route(request)) or path}"
        key = f"{name}:{client}"
        try:
            if self.lease:
                d = yield self.limiter.acquire(key, cost, **self.policy)
            else:
                d = yield self.limiter.throttle(key, cost=cost, **self.policy)
        except Exception as e:  # never a 500 with details: logged, and the failure policy decides
            self._log(type(e).__name__, f"the check failed ({type(e).__name__}: {e}); the request takes the "
                                        "failure policy (on_error)", exc_info=e)
            return self.limiter._engine.unkeyed_decision(), key
        return d, key

    def release(self, key, decision):
        """Gives back the request's lease, if it holds one; a failure is logged (the lease
        ends by itself after its window_ms)."""
        if decision.lease is None:
            return
        try:
            yield self.limiter.release(key, decision.lease)
        except Exception as e:  # the response is gone: logged
            self._log("release", f"a lease was not released ({type(e).__name__}: {e}); it ends by itself "
                                 "after its window_ms", exc_info=e)


def response_headers(decision, denied=False):
    """(name, value) pairs: RateLimit and RateLimit-Policy, and Retry-After on a denial."""
    return [(k, v) for k, v in decision.headers.items() if denied or k != "Retry-After"]
