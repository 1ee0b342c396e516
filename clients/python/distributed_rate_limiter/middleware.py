"""ASGI middleware (Starlette, FastAPI, any ASGI 3 app): one check per HTTP request, 429 with
Retry-After when denied, RateLimit and RateLimit-Policy on every response, the Decision in
`request.state.rate_limit` (scope["state"]["rate_limit"]).

    app.add_middleware(RateLimitMiddleware, limiter=AsyncDistributedRateLimiter(...),
                       limit=100, window_ms=60_000)          # or limit="100/minute"

With `lease=True` each request holds a lease for its whole length instead (acquire before the
app, release when it has answered or raised: a policy with a CONCURRENCY limit, e.g.
`limit=[{"limit": 100, "window_ms": 60_000}, {"limit": 2, "window_ms": 30_000, "kind":
"concurrency"}]`); a worker that dies mid-request frees its slot when the lease expires.

Each request is counted under `<limiter prefix><name>:<client key>`: `name` is this
instance's `name` option, else the matched route as `METHOD path-template` (`GET
/users/{id}`; the raw path when the app has no router), so two routes never share a bucket
unless they are given the same name. The options and the flow are httpcore.py's, shared with
the WSGI middleware (wsgi.py)."""

from .httpcore import RateLimitCore, response_headers, run_async
from .ip import client_ip_key

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


def _raw(headers):
    return [(k.lower().encode(), v.encode()) for k, v in headers]


async def default_handler(scope, receive, send, decision):
    """429 with the decision's headers and a plain body."""
    await send({"type": "http.response.start", "status": 429,
                "headers": _raw(response_headers(decision, denied=True))
                + [(b"content-type", b"text/plain; charset=utf-8")]})
    await send({"type": "http.response.body", "body": b"Too Many Requests\n"})


class RateLimitMiddleware:
    """`limiter`: an AsyncDistributedRateLimiter (a sync DistributedRateLimiter works too, at
    the cost of blocking the event loop for the call). `name`: this instance's namespace
    (default: the route). `key(scope) -> str | None` picks the client (default: its IP,
    IPv6 by /64); `cost(scope) -> int`; `skip(scope) -> bool` (sync or async) lets a request
    through unchecked; `handler(scope, receive, send, decision)` answers a denied request
    (default: 429). `limit`/`window_ms`/`burst`/`kind`/`penalty_ms`/`penalty_max_ms`: the
    inline policy (one limit, a rate string like "100/minute", or a list of up to 4 as
    `limit=[...]`) for keys without a stored one. `lease=True`: hold a lease
    (acquire/release) for the request's length."""

    def __init__(self, app, limiter, *, key=client_ip_key, handler=None, **options):
        self.app = app
        self.core = RateLimitCore(limiter, key=key, route=route_template, **options)
        self.handler = handler or default_handler

    async def __call__(self, scope, receive, send):
        core = self.core
        if scope["type"] != "http" or await run_async(core.skipped(scope)):
            return await self.app(scope, receive, send)
        d, key = await run_async(core.decide(scope, scope.get("method", "GET"), scope.get("path", "/")))
        scope.setdefault("state", {})["rate_limit"] = d
        if not d.allowed:
            return await self.handler(scope, receive, send, d)
        extra = _raw(response_headers(d))

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:  # the app answered, raised, or the client went away: the slot comes back now
            await run_async(core.release(key, d))
