"""ASGI middleware (Starlette, FastAPI, any ASGI 3 app): one check per HTTP request, 429 with
Retry-After when denied, RateLimit and RateLimit-Policy headers on every response.

    app.add_middleware(RateLimitMiddleware, limiter=AsyncDistributedRateLimiter(...),
                       limit=100, window_ms=60_000)          # FastAPI / Starlette
    app = RateLimitMiddleware(app, limiter=..., key=lambda scope: ...)   # plain ASGI
"""

import inspect
import ipaddress


def client_ip_key(scope):
    """The client's address; IPv6 grouped by /64 (one host usually owns a whole /64, so
    per-address keys would let it rotate through 2^64 identities). None: not limited."""
    client = scope.get("client")
    if not client:
        return None
    host = client[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return f"ip:{host}"
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return f"ip:{ip.ipv4_mapped}"
    if ip.version == 6:
        return f"ip:{ipaddress.ip_network(f'{ip}/64', strict=False)}"
    return f"ip:{ip}"


class RateLimitMiddleware:
    """`limiter`: an AsyncDistributedRateLimiter (a sync DistributedRateLimiter works too, at
    the cost of blocking the event loop for the call). `key(scope) -> str | None` picks the
    client (None: not limited); `cost(scope) -> int`; `limit`/`window_ms`/`burst`: an inline
    policy for keys without a stored one."""

    def __init__(self, app, limiter, key=client_ip_key, cost=None, limit=None, window_ms=None, burst=None,
                 status_denied=429):
        self.app = app
        self.limiter = limiter
        self.key = key
        self.cost = cost
        self.policy = {"limit": limit, "window_ms": window_ms, "burst": burst}
        self.status_denied = status_denied

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        key = self.key(scope)
        if inspect.isawaitable(key):
            key = await key
        if key is None:
            return await self.app(scope, receive, send)
        cost = self.cost(scope) if self.cost else 1
        d = self.limiter.throttle(key, cost=cost, **self.policy)
        if inspect.isawaitable(d):
            d = await d
        headers = [(k.lower().encode(), v.encode()) for k, v in d.headers.items()]
        if not d.allowed:
            await send({"type": "http.response.start", "status": self.status_denied,
                        "headers": headers + [(b"content-type", b"text/plain; charset=utf-8")]})
            await send({"type": "http.response.body", "body": b"Too Many Requests\n"})
            return
        extra = [h for h in headers if h[0] != b"retry-after"]

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        await self.app(scope, receive, send_with_headers)
