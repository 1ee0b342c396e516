"""flask-limiter (Flask over werkzeug's threaded server) and slowapi (FastAPI over uvicorn)
with `storage_uri="drl://..."`: their decorators decide through the module (or the Lua path),
each limits strategy, their headers and 429s, exact counts under 50 concurrent requests, and
the keys in Redis being the module's (or the script's)."""

from uuid import uuid4

import pytest

import distributed_rate_limiter.limits_storage  # noqa: F401  (registers drl:// with limits)
from conftest import plain_client
from web import Served, statuses

STRATEGIES = ["fixed-window", "moving-window", "sliding-window-counter"]


def stored_type(server):
    """What the decisions leave in Redis: the module's type, or the Lua script's hash."""
    return b"ratelimit" if server.path == "redis" else b"hash"


def check_keys(server, prefix):
    plain = plain_client(server.port)
    keys = plain.keys(f"{prefix}*")
    assert keys and {plain.type(k) for k in keys} == {stored_type(server)}, keys
    return keys


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_flask_limiter_decides_through_drl(server, strategy):
    flask = pytest.importorskip("flask")
    flask_limiter = pytest.importorskip("flask_limiter")
    from flask_limiter.util import get_remote_address

    prefix = f"fl{uuid4().hex[:8]}:"
    app = flask.Flask(__name__)
    limiter = flask_limiter.Limiter(get_remote_address, app=app, storage_uri=f"drl://127.0.0.1:{server.port}",
                                    storage_options={"prefix": prefix, "timeout_ms": 2000}, strategy=strategy,
                                    headers_enabled=True)

    @app.route("/")
    @limiter.limit("10/minute")
    def index():
        return "ok"

    @app.route("/two")
    @limiter.limit("2 per minute; 100/hour")
    def two():
        return "ok"

    with Served(app) as web:
        replies = web.many(50)
        serial = [web.get("/two") for _ in range(3)]
    assert statuses(replies) == [200] * 10 + [429] * 40
    for r in replies:
        assert r.headers["x-ratelimit-limit"] == "10"
        assert 0 <= int(r.headers["x-ratelimit-remaining"]) <= 9
    denied = [r for r in replies if r.status == 429]
    assert all(0 <= int(r.headers["retry-after"]) <= 60 for r in denied)
    assert [r.status for r in serial] == [200, 200, 429]
    assert [r.headers["x-ratelimit-remaining"] for r in serial] == ["1", "0", "0"]
    assert int(serial[2].headers["retry-after"]) >= 55  # the 2/minute limit binds: its oldest hit leaves in ~60 s
    check_keys(server, prefix)
    stats = limiter.storage.limiter.stats()
    assert stats["local"] == stats["failed_open"] == stats["failed_closed"] == 0


def test_slowapi_decides_through_drl(server):
    pytest.importorskip("fastapi")
    slowapi = pytest.importorskip("slowapi")
    from fastapi import FastAPI, Request
    from fastapi.responses import PlainTextResponse
    from slowapi.errors import RateLimitExceeded
    from slowapi.util import get_remote_address

    prefix = f"sa{uuid4().hex[:8]}:"
    limiter = slowapi.Limiter(key_func=get_remote_address, storage_uri=f"drl://127.0.0.1:{server.port}",
                              storage_options={"prefix": prefix, "timeout_ms": 2000}, headers_enabled=True)
    app = FastAPI()
    app.state.limiter = limiter
    app.add_exception_handler(RateLimitExceeded, slowapi._rate_limit_exceeded_handler)

    @app.get("/")
    @limiter.limit("10/minute")
    async def index(request: Request):
        return PlainTextResponse("ok")

    with Served(app, asgi=True) as web:
        replies = web.many(50)
    assert statuses(replies) == [200] * 10 + [429] * 40
    assert {r.headers["x-ratelimit-limit"] for r in replies} == {"10"}
    assert all(1 <= int(r.headers["retry-after"]) <= 60 for r in replies if r.status == 429)
    check_keys(server, prefix)


def test_the_drl_schemes_name_redis_py_urls_and_the_storage_refuses_what_it_cannot_read():
    from distributed_rate_limiter import InvalidArgument
    from distributed_rate_limiter.limits_storage import item_of_key, redis_url

    assert redis_url("drl://h:6379/0") == "redis://h:6379/0"
    assert redis_url("drl+cluster://h:7000") == "redis+cluster://h:7000"  # drl+cluster: test_limits_contract.py
    assert redis_url("drls://h:6380/1") == "rediss://h:6380/1"
    assert redis_url("drl+unix:///tmp/r.sock") == "unix:///tmp/r.sock"
    assert item_of_key("LIMITER/127.0.0.1/index/10/5/minute") == (10, 300_000)
    with pytest.raises(InvalidArgument, match="key_for"):
        item_of_key("mykey")
    with pytest.raises(InvalidArgument, match="drl storage URI"):
        redis_url("redis://h")


def test_beyond_sliding_bounds_a_fixed_window_is_gcra_and_a_moving_window_is_refused(server):
    from limits import parse
    from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

    from distributed_rate_limiter import DistributedRateLimiter, InvalidArgument
    from distributed_rate_limiter.limits_storage import DistributedRateLimiterStorage

    rl = DistributedRateLimiter(plain_client(server.port), prefix=f"big{uuid4().hex[:8]}:", timeout_ms=2000)
    storage = DistributedRateLimiterStorage(limiter=rl)
    big = parse("2000/minute")
    fixed = FixedWindowRateLimiter(storage)
    assert fixed.hit(big, "a", cost=2000) and not fixed.hit(big, "a")
    assert rl.info(big.key_for("a")) is not None
    with pytest.raises(InvalidArgument, match="moving window of 2000 per 60000 ms"):
        MovingWindowRateLimiter(storage).hit(big, "b")
    with pytest.raises(InvalidArgument, match="the limiter's"):
        DistributedRateLimiterStorage(limiter=rl, prefix="x:")
