"""ASGI middleware (Starlette, FastAPI, any ASGI 3 app): one check per HTTP request, 429 with
Retry-After when denied, RateLimit and RateLimit-Policy on every response, the Decision in
`request.state.rate_limit` (scope["state"]["rate_limit"]).

    app.add_middleware(RateLimitMiddleware, limiter=AsyncDistributedRateLimiter(...),
                       limit=100, window_ms=60_000)          # FastAPI / Starlette

With `lease=True` each request holds a lease for its whole length instead (acquire before the
app, release when it has answered or raised: a policy with a CONCURRENCY limit, e.g.
`limit=[{"limit": 100, "window_ms": 60_000}, {"limit": 2, "window_ms": 30_000, "kind":
"concurrency"}]`); a worker that dies mid-request frees its slot when the lease expires.

Each request is counted under `<limiter prefix><name>:<client key>`: `name` is this
instance's `name` option, else the matched route as `METHOD path-template` (`GET
/users/{id}`; the raw path when the app has no router), so two routes never share a bucket
unless they are given the same name. No error detail ever reaches a response: a key
function that returns None, or a limiter error, is logged (once a minute) and the request
takes the limiter's failure policy (`on_error`: 'deny' answers 429, else it passes).
"""

import inspect
import logging
import time

from .ip import client_ip_key

log = logging.getLogger("distributed_rate_limiter")
LOG_EVERY_S = 60

try:
    from starlette.routing import Match, Mount
except ImportError:  # a plain ASGI app: raw paths
    Match = Mount = None


def route_template(scope, routes=None, prefix=""):
    """The path template of the route that will serve `scope` (Starlette/FastAPI), else None."""
    if Match is None:
        return None
    if routes is None:
        app = scope.get("app")
        routes = getattr(getattr(app, "router", None), "routes", None) or getattr(app, "routes", None)
        if not routes:
            return None
    for route in routes:
        try:
            match, child = route.matches(scope)
        except Exception:
            continue
        if match != Match.FULL:
            continue
        path = getattr(route, "path", "")
        if isinstance(route, Mount) and getattr(route, "routes", None):
            inner = route_template({**scope, **child}, route.routes, prefix + path)
            return inner if inner is not None else prefix + path
        return prefix + path
    return None


async def _maybe_await(v):
    return await v if inspect.isawaitable(v) else v


async def default_handler(scope, receive, send, decision):
    """429 with the decision's headers and a plain body."""
    headers = [(k.lower().encode(), v.encode()) for k, v in decision.headers.items()]
    await send({"type": "http.response.start", "status": 429,
                "headers": headers + [(b"content-type", b"text/plain; charset=utf-8")]})
    await send({"type": "http.response.body", "body": b"Too Many Requests\n"})


class RateLimitMiddleware:
    """`limiter`: an AsyncDistributedRateLimiter (a sync DistributedRateLimiter works too, at
    the cost of blocking the event loop for the call). `name`: this instance's namespace
    (default: the route). `key(scope) -> str | None` picks the client (default: its IP,
    IPv6 by /64); `cost(scope) -> int`; `skip(scope) -> bool` (sync or async) lets a request
    through unchecked; `handler(scope, receive, send, decision)` answers a denied request
    (default: 429). `limit`/`window_ms`/`burst`/`kind`/`penalty_ms`/`penalty_max_ms`: the
    inline policy (one limit, or a list of up to 4 as `limit=[...]`) for keys without a
    stored one. `lease=True`: hold a lease (acquire/release) for the request's length."""

    def __init__(self, app, limiter, *, name=None, key=client_ip_key, cost=None, skip=None, handler=None,
                 limit=None, window_ms=None, burst=None, kind=None, penalty_ms=None, penalty_max_ms=None,
                 lease=False):
        self.app = app
        self.limiter = limiter
        self.name = name
        self.key = key
        self.cost = cost
        self.skip = skip
        self.handler = handler or default_handler
        self.lease = lease
        self.policy = {k: v for k, v in (("limit", limit), ("window_ms", window_ms), ("burst", burst),
                                         ("kind", kind), ("penalty_ms", penalty_ms),
                                         ("penalty_max_ms", penalty_max_ms)) if v is not None}
        self._logged = {}  # what -> monotonic s of the last log line

    def _log(self, what, message, exc_info=None):
        now = time.monotonic()
        if now - self._logged.get(what, -LOG_EVERY_S) >= LOG_EVERY_S:
            self._logged[what] = now
            log.error("RateLimitMiddleware: %s", message, exc_info=exc_info)

    def _namespace(self, scope):
        if self.name is not None:
            return self.name
        return f"{scope.get('method', 'GET')} {route_template(scope) or scope.get('path', '/')}"

    async def _decide(self, scope):
        """(the decision or None, the key it was counted under)."""
        client = await _maybe_await(self.key(scope))
        if client is None:
            self._log("key", "the key function returned None: a configuration error; the request takes "
                             "the failure policy (on_error)")
            return None, None
        cost = await _maybe_await(self.cost(scope)) if self.cost else 1
        key = f"{self._namespace(scope)}:{client}"
        try:
            if self.lease:
                return await _maybe_await(self.limiter.acquire(key, cost, **self.policy)), key
            return await _maybe_await(self.limiter.throttle(key, cost=cost, **self.policy)), key
        except Exception as e:  # never a 500 with details: logged, and the failure policy decides
            self._log(type(e).__name__, f"the check failed ({type(e).__name__}: {e}); the request takes the "
                                        "failure policy (on_error)", exc_info=e)
            return None, key

    async def _release(self, key, lease):
        try:
            await _maybe_await(self.limiter.release(key, lease))
        except Exception as e:  # the response is gone: logged; the lease ends by itself
            self._log("release", f"a lease was not released ({type(e).__name__}: {e}); it ends by itself "
                                 "after its window_ms", exc_info=e)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or (self.skip is not None and await _maybe_await(self.skip(scope))):
            return await self.app(scope, receive, send)
        d, key = await self._decide(scope)
        if d is None:
            d = self.limiter._engine.unkeyed_decision()
        scope.setdefault("state", {})["rate_limit"] = d
        if not d.allowed:
            return await self.handler(scope, receive, send, d)
        extra = [(k.lower().encode(), v.encode()) for k, v in d.headers.items() if k != "Retry-After"]

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:  # the app answered, raised, or the client went away: the slot comes back now
            if d.lease is not None:
                await self._release(key, d.lease)
