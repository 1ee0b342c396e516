"""WSGI middleware (Flask, Django, any PEP 3333 app) with the ASGI middleware's options and
flow (httpcore.py): one check per request, 429 with Retry-After when denied, RateLimit and
RateLimit-Policy on every response, the Decision in `environ["rate_limit.decision"]`.

    from distributed_rate_limiter import DistributedRateLimiter
    from distributed_rate_limiter.wsgi import RateLimitMiddleware

    app.wsgi_app = RateLimitMiddleware(app.wsgi_app, DistributedRateLimiter(), limit="100/minute")  # Flask
    application = RateLimitMiddleware(get_wsgi_application(), DistributedRateLimiter(), ...)     # Django wsgi.py

`key(environ)`, `cost(environ)`, `skip(environ)` take the WSGI environ; `handler(environ,
start_response, decision)` answers a denied request (a WSGI app's return). The namespace is
`METHOD route` with the route template of a Flask app (`/users/<int:uid>`) or a Django project
(`/users/<int:uid>/`), found from the app it wraps; else the raw path. With `lease=True` the
lease is released when the server closes the response (after the last byte is sent, or when
the app raised)."""

from .client import AsyncDistributedRateLimiter
from .errors import ConfigurationError
from .httpcore import RateLimitCore, response_headers, run_sync
from .ip import ip_key

DECISION = "rate_limit.decision"


def client_ip_key(environ):
    """REMOTE_ADDR as a key (IPv6 by /64, as the ASGI middleware), or None when the server gave none."""
    addr = environ.get("REMOTE_ADDR")
    return ip_key(addr) if addr else None


def flask_route(app):
    """A `route(environ)` for a Flask app: the matched rule (`/users/<int:uid>`), or None."""
    def route(environ):
        try:
            rule, _ = app.url_map.bind_to_environ(environ).match(return_rule=True)
        except Exception:  # 404, 405, a redirect: the raw path
            return None
        return rule.rule
    return route


def django_route(environ):
    """The route of the Django URLconf pattern that matches (`/users/<int:uid>/`), or None."""
    from django.urls import Resolver404, resolve

    try:
        return "/" + resolve(environ.get("PATH_INFO", "/")).route
    except Resolver404:
        return None


def route_finder(app):
    """The route reader for the app being wrapped (a Flask app or its wsgi_app, a Django
    WSGIHandler), or None (raw paths)."""
    owner = getattr(app, "__self__", app)
    if hasattr(owner, "url_map") and hasattr(owner, "wsgi_app"):
        return flask_route(owner)
    if type(owner).__module__.startswith("django.core.handlers"):
        return django_route
    return None


def default_handler(environ, start_response, decision):
    """429 with the decision's headers and a plain body."""
    start_response("429 Too Many Requests", response_headers(decision, denied=True)
                   + [("Content-Type", "text/plain; charset=utf-8")])
    return [b"Too Many Requests\n"]


class _Closing:
    """The app's response, with `on_close` run when the server closes it (PEP 3333: always)."""

    def __init__(self, body, on_close):
        self._body = body
        self._on_close = on_close

    def __iter__(self):
        return iter(self._body)

    def close(self):
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._on_close()


class RateLimitMiddleware:
    """`app`: the WSGI app; `limiter`: a DistributedRateLimiter. The other options are the
    ASGI middleware's (middleware.py), with the environ where it takes the scope; `route`
    (environ -> template or None) replaces the template finder chosen from `app`."""

    def __init__(self, app, limiter, *, key=client_ip_key, handler=None, route=None, **options):
        if isinstance(limiter, AsyncDistributedRateLimiter):
            raise ConfigurationError("a WSGI app runs on threads: give it a DistributedRateLimiter, not the "
                                     "asyncio one")
        self.app = app
        self.core = RateLimitCore(limiter, key=key, route=route or route_finder(app), **options)
        self.handler = handler or default_handler

    def __call__(self, environ, start_response):
        core = self.core
        if run_sync(core.skipped(environ)):
            return self.app(environ, start_response)
        d, key = run_sync(core.decide(environ, environ.get("REQUEST_METHOD", "GET"),
                                      environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "/")))
        environ[DECISION] = d
        if not d.allowed:
            return self.handler(environ, start_response, d)
        extra = response_headers(d)

        def start_with_headers(status, headers, exc_info=None):
            return start_response(status, list(headers) + extra, exc_info)

        try:
            body = self.app(environ, start_with_headers)
        except BaseException:
            run_sync(core.release(key, d))
            raise
        if d.lease is None:
            return body
        return _Closing(body, lambda: run_sync(core.release(key, d)))
