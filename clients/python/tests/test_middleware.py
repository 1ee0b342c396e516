"""The ASGI middleware in a real Starlette app served by uvicorn, over real HTTP: statuses,
RateLimit / RateLimit-Policy on every response, Retry-After on 429, the default key (client
IP, IPv6 by /64) and a custom one, one namespace per route, skip, a handler, and no error
detail in any response; on the module and on the Lua path."""

import asyncio
import http.client
import socket
import threading
import time
from uuid import uuid4

import pytest

uvicorn = pytest.importorskip("uvicorn")
starlette = pytest.importorskip("starlette")
from starlette.applications import Starlette  # noqa: E402
from starlette.responses import PlainTextResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

import redis.asyncio  # noqa: E402

from conftest import plain_client  # noqa: E402
from distributed_rate_limiter import AsyncDistributedRateLimiter, DistributedRateLimiter  # noqa: E402
from distributed_rate_limiter.middleware import RateLimitMiddleware  # noqa: E402
from test_ops import module_has  # noqa: E402


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class App:
    """uvicorn serving a Starlette app with the middleware, on its own thread and loop."""

    def __init__(self, redis_port, host="127.0.0.1", debug=False, limiter_options=None, gate=None, **middleware):
        async def hello(request):
            d = getattr(request.state, "rate_limit", None)  # None: skipped
            return PlainTextResponse(f"hello {d.remaining if d else '-'}", headers={"X-App": "1"})

        async def slow(request):  # answers once the test opens the gate
            while not gate.is_set():
                await asyncio.sleep(0.01)
            return await hello(request)

        async def boom(request):
            raise RuntimeError("the app failed")

        options = {"prefix": f"t{uuid4().hex[:8]}:", **(limiter_options or {})}  # a namespace per test
        self.limiter = AsyncDistributedRateLimiter(redis.asyncio.Redis(port=redis_port, protocol=3),
                                                   timeout_ms=2000, **options)
        app = Starlette(debug=debug, routes=[Route("/", hello), Route("/login", hello, methods=["POST"]),
                                             Route("/api", hello), Route("/users/{uid}", hello),
                                             Route("/slow", slow), Route("/boom", boom)])
        app.add_middleware(RateLimitMiddleware, limiter=self.limiter, **middleware)
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

    def get(self, path="/", headers=None, method="GET"):
        c = http.client.HTTPConnection(self.host, self.port, timeout=10)
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body


def test_default_key_limits_by_client_ip_with_headers_on_every_response(server):
    with App(server.port, limit=3, window_ms=60_000, limiter_options={"prefix": "rl:"}) as app:
        plain_client(server.port).delete("rl:GET /:ip:127.0.0.1")
        replies = [app.get() for _ in range(4)]
    for i, (status, h, body) in enumerate(replies[:3]):
        assert (status, body, h["x-app"]) == (200, f"hello {2 - i}".encode(), "1")  # request.state.rate_limit
        assert h["ratelimit-policy"] == '"default";q=3;w=60'
        assert h["ratelimit"].startswith(f'"default";r={2 - i};t=')
        assert "retry-after" not in h
    status, h, _ = replies[3]
    assert status == 429
    assert h["ratelimit"].startswith('"default";r=0;t=')
    assert 1 <= int(h["retry-after"]) <= 20
    assert plain_client(server.port).exists("rl:GET /:ip:127.0.0.1")  # prefix, route, client


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
    with App(server.port, host="::1", limit=2, window_ms=60_000, limiter_options={"prefix": "rl:"}) as app:
        assert [app.get()[0] for _ in range(3)] == [200, 200, 429]
    assert plain_client(server.port).exists("rl:GET /:ip:::/64")


def test_each_route_has_its_own_bucket_unless_given_one_name(server):
    """Issue 18, item 2: six POST /login at 5/min made GET /api answer 429 for a minute."""
    with App(server.port, limit=5, window_ms=60_000) as app:
        logins = [app.get("/login", method="POST")[0] for _ in range(6)]
        api = app.get("/api")[0]
        users = [app.get(f"/users/{i}")[0] for i in range(6)]  # one template, one bucket
    assert logins == [200] * 5 + [429] and api == 200
    assert users == [200] * 5 + [429]
    with App(server.port, name="shared", limit=2, window_ms=60_000) as app:
        assert [app.get("/api")[0], app.get("/")[0], app.get("/api")[0]] == [200, 200, 429]


def test_skip_and_a_custom_handler(server):
    async def handler(scope, receive, send, decision):
        await send({"type": "http.response.start", "status": 503, "headers": [(b"x-wait", str(
            decision.retry_after_ms).encode())]})
        await send({"type": "http.response.body", "body": b"slow down"})

    skip = lambda scope: scope["path"] == "/api"  # noqa: E731
    with App(server.port, limit=1, window_ms=60_000, skip=skip, handler=handler) as app:
        assert [app.get("/api")[0] for _ in range(3)] == [200] * 3
        assert app.get("/")[0] == 200
        status, h, body = app.get("/")
    assert (status, body) == (503, b"slow down") and int(h["x-wait"]) > 0


@pytest.mark.parametrize("on_error, status", [("local", 200), ("deny", 429)])
def test_a_key_function_returning_none_logs_once_and_takes_the_failure_policy(server, caplog, on_error, status):
    """Issue 18, item 7: a request without the keyed header got a 500."""
    def api_key(scope):
        v = dict(scope["headers"]).get(b"x-api-key")
        return v.decode() if v else None

    with caplog.at_level("ERROR", logger="distributed_rate_limiter"):
        with App(server.port, key=api_key, limit=1, window_ms=60_000,
                 limiter_options={"on_error": on_error}) as app:
            got = [app.get()[0] for _ in range(3)]
    assert got == [status] * 3
    lines = [r for r in caplog.records if "key function returned None" in r.getMessage()]
    assert len(lines) == 1


def test_no_error_detail_reaches_a_response_even_in_debug_mode(server, caplog):
    """Issue 18, item 7: a key holding another type answered a 500 page with the stack trace
    and the key's type. Now it is logged and the failure policy decides."""
    plain_client(server.port).hset("app:GET /:ip:127.0.0.1", "name", "alice")  # an application's hash
    with caplog.at_level("ERROR", logger="distributed_rate_limiter"):
        with App(server.port, debug=True, limit=1, window_ms=60_000, limiter_options={"prefix": "app:"}) as app:
            status, h, body = app.get()
    assert status == 200 and body.startswith(b"hello")
    assert b"WRONGTYPE" not in body and b"Traceback" not in body and b"hash" not in body
    assert any("ForeignKey" in r.getMessage() for r in caplog.records)
    assert plain_client(server.port).hgetall("app:GET /:ip:127.0.0.1") == {b"name": b"alice"}  # untouched
    assert plain_client(server.port).ttl("app:GET /:ip:127.0.0.1") == -1


def test_the_lease_option_holds_a_lease_for_each_request_and_gives_it_back_when_it_ends(server):
    """Issue 20: 'a middleware option that holds a lease for the length of an HTTP request'.
    Two slow requests hold both slots, a third is refused with Retry-After, and the slots come
    back as soon as the requests end (not when the leases would expire), also after an error."""
    if server.path == "redis" and not module_has(server.port, 20):
        pytest.skip("this module lacks RL.ACQUIRE (issue 20)")
    gate = threading.Event()
    policy = [{"limit": 100, "window_ms": 60_000}, {"limit": 2, "window_ms": 30_000, "kind": "concurrency"}]
    with App(server.port, gate=gate, name="api", lease=True, limit=policy) as app:
        probe = DistributedRateLimiter(plain_client(server.port), prefix=app.limiter._engine.o.prefix)
        key = "api:ip:127.0.0.1"
        slow = [threading.Thread(target=app.get, args=("/slow",)) for _ in range(2)]
        for t in slow:
            t.start()
        deadline = time.monotonic() + 10
        while (probe.info(key) or {}).get("leases") != 2:
            assert time.monotonic() < deadline, "the two slow requests never held their leases"
            time.sleep(0.01)
        status, h, _ = app.get("/")
        assert status == 429 and 25 <= int(h["retry-after"]) <= 30
        assert h["ratelimit"].startswith('"l1";r=0;') and h["ratelimit-policy"] == '"l0";q=100;w=60, "l1";q=2'
        gate.set()
        for t in slow:
            t.join(10)
        wait_for_no_leases(probe, key)  # released just after each response went out
        status, h, _ = app.get("/")
        assert status == 200 and h["ratelimit"].startswith('"l1";r=1;')  # the response's own lease is held
        assert app.get("/boom")[0] == 500
        wait_for_no_leases(probe, key)  # released though the app raised


def wait_for_no_leases(probe, key):
    """Seconds at most, never the 30 s a lease would live."""
    deadline = time.monotonic() + 5
    while probe.info(key)["leases"]:
        assert time.monotonic() < deadline, "a lease outlived its request"
        time.sleep(0.01)
