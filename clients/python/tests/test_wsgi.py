"""The WSGI middleware in a real Flask app served over HTTP by werkzeug's threaded server, on
the module and on the Lua path: statuses, the RateLimit headers on every response and
Retry-After on 429, one bucket per Flask rule, the ASGI middleware's options (key, cost,
skip, handler, name, lease), the failure policy, and exact counts under 50 concurrent
requests. Django through the same middleware: test_django.py."""

import threading
import time
from uuid import uuid4

import pytest

flask = pytest.importorskip("flask")

from conftest import plain_client  # noqa: E402
from distributed_rate_limiter import DistributedRateLimiter  # noqa: E402
from distributed_rate_limiter.wsgi import DECISION, RateLimitMiddleware  # noqa: E402
from test_ops import module_has  # noqa: E402
from web import Served, statuses  # noqa: E402


def flask_app(server, limiter_options=None, gate=None, **middleware):
    app = flask.Flask(__name__)

    @app.route("/")
    @app.route("/users/<int:uid>")
    @app.route("/login", methods=["POST"])
    def hello(uid=None):
        d = flask.request.environ.get(DECISION)
        return f"hello {d.remaining if d else '-'}", 200, {"X-App": "1"}

    @app.route("/slow")
    def slow():
        gate.wait(20)
        return "slow"

    @app.route("/boom")
    def boom():
        raise RuntimeError("the app failed")

    @app.route("/stream")
    def stream():
        return flask.Response((c for c in ("a", "b", "c")))

    options = {"prefix": f"w{uuid4().hex[:8]}:", "timeout_ms": 2000, **(limiter_options or {})}
    limiter = DistributedRateLimiter(plain_client(server.port), **options)
    app.wsgi_app = RateLimitMiddleware(app.wsgi_app, limiter, **middleware)
    app.limiter = limiter
    return app


def test_statuses_and_headers_on_every_response(server):
    with Served(flask_app(server, limit="3/minute")) as web:
        replies = [web.get() for _ in range(4)]
    for i, r in enumerate(replies[:3]):
        assert (r.status, r.body, r.headers["x-app"]) == (200, f"hello {2 - i}".encode(), "1")
        assert r.headers["ratelimit-policy"] == '"default";q=3;w=60'
        assert r.headers["ratelimit"].startswith(f'"default";r={2 - i};t=')
        assert "retry-after" not in r.headers
    r = replies[3]
    assert r.status == 429 and r.body == b"Too Many Requests\n"
    assert r.headers["ratelimit"].startswith('"default";r=0;t=') and 1 <= int(r.headers["retry-after"]) <= 20


def test_counts_are_exact_under_50_concurrent_requests(server):
    app = flask_app(server, limit=10, window_ms=60_000)
    with Served(app) as web:
        replies = web.many(50)
    assert statuses(replies) == [200] * 10 + [429] * 40
    assert {r.headers["ratelimit-policy"] for r in replies} == {'"default";q=10;w=60'}
    s = app.limiter.stats()
    assert s[server.path] + s["cached"] == 50  # decided by Redis or its denials' cache, never locally


def test_one_bucket_per_flask_rule_and_the_key_names_it(server):
    app = flask_app(server, limit=2, window_ms=60_000)
    with Served(app) as web:
        users = [web.get(f"/users/{i}").status for i in range(3)]  # one rule, one bucket
        login = [web.get("/login", method="POST").status for _ in range(3)]
        root = web.get("/").status
    assert users == login == [200, 200, 429] and root == 200
    prefix = app.limiter._engine.o.prefix
    assert plain_client(server.port).exists(f"{prefix}GET /users/<int:uid>:ip:127.0.0.1")


def test_the_asgi_options_key_cost_skip_handler_name(server):
    def api_key(environ):
        return "key:" + environ.get("HTTP_X_API_KEY", "anon")

    def handler(environ, start_response, decision):
        start_response("503 Service Unavailable", [("X-Wait", str(decision.retry_after_ms))])
        return [b"slow down"]

    app = flask_app(server, name="api", key=api_key, cost=lambda e: 2 if e["PATH_INFO"] == "/login" else 1,
                    skip=lambda e: e["PATH_INFO"] == "/stream", handler=handler, limit=3, window_ms=60_000)
    with Served(app) as web:
        assert [web.get("/stream").status for _ in range(5)] == [200] * 5
        assert web.get("/", headers={"X-API-Key": "a"}).status == 200
        assert web.get("/login", method="POST", headers={"X-API-Key": "a"}).status == 200  # cost 2: 3 used
        r = web.get("/users/1", headers={"X-API-Key": "a"})  # one name for every route
        assert (r.status, r.body) == (503, b"slow down") and int(r.headers["x-wait"]) > 0
        assert web.get("/", headers={"X-API-Key": "b"}).status == 200


@pytest.mark.parametrize("on_error, status", [("local", 200), ("deny", 429)])
def test_a_key_function_returning_none_takes_the_failure_policy(server, caplog, on_error, status):
    with caplog.at_level("ERROR", logger="distributed_rate_limiter"):
        with Served(flask_app(server, key=lambda e: None, limit=1, window_ms=60_000,
                              limiter_options={"on_error": on_error})) as web:
            got = [web.get().status for _ in range(3)]
    assert got == [status] * 3
    assert len([r for r in caplog.records if "key function returned None" in r.getMessage()]) == 1


def test_no_error_detail_reaches_a_response(server, caplog):
    prefix = f"app{uuid4().hex[:6]}:"
    plain_client(server.port).hset(f"{prefix}GET /:ip:127.0.0.1", "name", "alice")  # an application's hash
    with caplog.at_level("ERROR", logger="distributed_rate_limiter"):
        with Served(flask_app(server, limit=1, window_ms=60_000, limiter_options={"prefix": prefix})) as web:
            r = web.get()
    assert r.status == 200 and r.body.startswith(b"hello") and b"WRONGTYPE" not in r.body
    assert any("ForeignKey" in rec.getMessage() for rec in caplog.records)


def test_a_wsgi_app_refuses_the_asyncio_limiter_at_construction(server):
    import redis.asyncio

    from distributed_rate_limiter import AsyncDistributedRateLimiter, ConfigurationError

    limiter = AsyncDistributedRateLimiter(redis.asyncio.Redis(port=server.port))
    with pytest.raises(ConfigurationError, match="DistributedRateLimiter, not the asyncio one"):
        RateLimitMiddleware(flask.Flask(__name__).wsgi_app, limiter, limit="1/second")
    with pytest.raises(ConfigurationError, match="unknown option 'limits'"):
        RateLimitMiddleware(flask.Flask(__name__).wsgi_app, DistributedRateLimiter(plain_client(server.port)),
                            limits="1/second")


def test_the_lease_option_holds_a_lease_until_the_response_is_closed(server):
    if server.path == "redis" and not module_has(server.port, 20):
        pytest.skip("this module lacks RL.ACQUIRE (issue 20)")
    gate = threading.Event()
    policy = [{"limit": 100, "window_ms": 60_000}, {"limit": 2, "window_ms": 30_000, "kind": "concurrency"}]
    app = flask_app(server, gate=gate, name="api", lease=True, limit=policy)
    key = "api:ip:127.0.0.1"
    with Served(app) as web:
        slow = [threading.Thread(target=web.get, args=("/slow",)) for _ in range(2)]
        for t in slow:
            t.start()
        deadline = time.monotonic() + 10
        while (app.limiter.info(key) or {}).get("leases") != 2:
            assert time.monotonic() < deadline, "the two slow requests never held their leases"
            time.sleep(0.01)
        r = web.get("/")
        assert r.status == 429 and 25 <= int(r.headers["retry-after"]) <= 30
        gate.set()
        for t in slow:
            t.join(10)
        wait_for_no_leases(app.limiter, key)
        r = web.get("/stream")
        assert (r.status, r.body) == (200, b"abc") and r.headers["ratelimit"].startswith('"l1";r=1;')
        wait_for_no_leases(app.limiter, key)  # released when the server closed the streamed body
        assert web.get("/boom").status == 500
        wait_for_no_leases(app.limiter, key)  # released though the app raised


def wait_for_no_leases(limiter, key):
    deadline = time.monotonic() + 5
    while limiter.info(key)["leases"]:
        assert time.monotonic() < deadline, "a lease outlived its request"
        time.sleep(0.01)
