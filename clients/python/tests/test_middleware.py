"""The ASGI middleware in a real Starlette app served by uvicorn, over real HTTP: statuses,
RateLimit / RateLimit-Policy on every response, Retry-After on 429, the default key (client
IP, IPv6 by /64) and a custom one; on the module and on the Lua path."""

import asyncio
import http.client
import socket
import threading
import time

import pytest

uvicorn = pytest.importorskip("uvicorn")
starlette = pytest.importorskip("starlette")
from starlette.applications import Starlette  # noqa: E402
from starlette.responses import PlainTextResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

import redis.asyncio  # noqa: E402

from conftest import plain_client  # noqa: E402
from distributed_rate_limiter import AsyncDistributedRateLimiter  # noqa: E402
from distributed_rate_limiter.middleware import RateLimitMiddleware  # noqa: E402


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class App:
    """uvicorn serving a Starlette app with the middleware, on its own thread and loop."""

    def __init__(self, redis_port, host="127.0.0.1", **middleware):
        async def hello(request):
            return PlainTextResponse("hello", headers={"X-App": "1"})

        limiter = AsyncDistributedRateLimiter(redis.asyncio.Redis(port=redis_port, protocol=3),
                                              timeout_ms=2000)
        app = Starlette(routes=[Route("/", hello)])
        app.add_middleware(RateLimitMiddleware, limiter=limiter, **middleware)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.host, self.port = host, free_port(family, host)
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=self.port, log_level="warning",
                                                    lifespan="off"))
        self.thread = threading.Thread(target=asyncio.run, args=(self.server.serve(),), daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)

    def get(self, path="/", headers=None):
        c = http.client.HTTPConnection(self.host, self.port, timeout=10)
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body


def test_default_key_limits_by_client_ip_with_headers_on_every_response(server):
    with App(server.port, limit=3, window_ms=60_000) as app:
        replies = [app.get() for _ in range(4)]
    for i, (status, h, body) in enumerate(replies[:3]):
        assert (status, body, h["x-app"]) == (200, b"hello", "1")
        assert h["ratelimit-policy"] == '"default";q=3;w=60'
        assert h["ratelimit"].startswith(f'"default";r={2 - i};t=')
        assert "retry-after" not in h
    status, h, _ = replies[3]
    assert status == 429
    assert h["ratelimit"].startswith('"default";r=0;t=')
    assert 1 <= int(h["retry-after"]) <= 20
    assert plain_client(server.port).exists("ip:127.0.0.1")


def test_custom_key_and_stored_policy(server):
    plain = plain_client(server.port)
    plain.delete("key:alpha", "key:beta")

    def api_key(scope):
        return "key:" + dict(scope["headers"]).get(b"x-api-key", b"anon").decode()

    with App(server.port, key=api_key, limit=1, window_ms=60_000) as app:
        assert app.get(headers={"X-API-Key": "alpha"})[0] == 200
        assert app.get(headers={"X-API-Key": "alpha"})[0] == 429
        assert app.get(headers={"X-API-Key": "beta"})[0] == 200


def test_ipv6_clients_are_grouped_by_64(server):
    try:
        free_port(socket.AF_INET6, "::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    with App(server.port, host="::1", limit=2, window_ms=60_000) as app:
        assert [app.get()[0] for _ in range(3)] == [200, 200, 429]
    assert plain_client(server.port).exists("ip:::/64")
