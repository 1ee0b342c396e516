"""Django through its real request path (WSGIHandler served over HTTP by werkzeug's threaded
server), on the module and on the Lua path: the django-ratelimit-shaped decorator (block,
request.limited, method, key kinds, several rates, 403 as django-ratelimit by default and 429
with Retry-After under RatelimitMiddleware or RATELIMIT_VIEW), and the WSGI middleware with
Django's route names; exact counts under 50 concurrent requests."""

from uuid import uuid4

import pytest

django = pytest.importorskip("django")

from django.conf import settings  # noqa: E402

if not settings.configured:
    settings.configure(DEBUG=False, ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__, SECRET_KEY="test", MIDDLEWARE=[],
                       INSTALLED_APPS=[], USE_TZ=True)
    django.setup()

from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402

from conftest import plain_client  # noqa: E402
from distributed_rate_limiter import DistributedRateLimiter  # noqa: E402
from distributed_rate_limiter.django import Ratelimited, ratelimit  # noqa: E402
from distributed_rate_limiter.wsgi import RateLimitMiddleware  # noqa: E402
from web import Served, statuses  # noqa: E402

MIDDLEWARE = "distributed_rate_limiter.django.RatelimitMiddleware"


@ratelimit(key="ip", rate="3/m")
def blocked(request):
    return HttpResponse(f"hello {request.rate_limit.remaining}")


@ratelimit(key="ip", rate="2/m", block=False)
def annotated(request):
    return HttpResponse("limited" if request.limited else "ok")


@ratelimit(key="header:x-api-key", rate="2/m", method=ratelimit.UNSAFE)
def unsafe(request):
    return HttpResponse("ok")


@ratelimit(key=lambda group, request: request.GET.get("u", "anon"), rate="2/s; 3/m")
def several(request):
    return HttpResponse("ok")


@ratelimit(group="shared", key="ip", rate=(10, 60))
def many(request):
    return HttpResponse("ok")


def user(request, uid):
    return HttpResponse(f"user {uid}")


def ratelimited_view(request, exception):
    return HttpResponse(f"custom {exception.decision.retry_after_ms > 0}", status=429)


urlpatterns = [path("blocked", blocked), path("annotated", annotated), path("unsafe", unsafe),
               path("several", several), path("many", many), path("users/<int:uid>/", user)]


@pytest.fixture
def limiter(server):
    rl = DistributedRateLimiter(plain_client(server.port), prefix=f"dj{uuid4().hex[:8]}:", timeout_ms=2000)
    settings.DISTRIBUTED_RATE_LIMITER = rl
    yield rl
    del settings.DISTRIBUTED_RATE_LIMITER


def django_app(middleware=()):
    settings.MIDDLEWARE = list(middleware)
    return WSGIHandler()  # reads MIDDLEWARE now


def test_block_raises_ratelimited_a_403_as_django_ratelimit(limiter, server):
    with Served(django_app()) as web:
        replies = [web.get("/blocked") for _ in range(4)]
    assert [r.status for r in replies] == [200, 200, 200, 403]
    assert [r.body for r in replies[:3]] == [b"hello 2", b"hello 1", b"hello 0"]
    assert issubclass(Ratelimited, django.core.exceptions.PermissionDenied)
    assert limiter.stats()[server.path] == 4


def test_the_middleware_answers_429_with_retry_after_and_the_headers(limiter):
    with Served(django_app([MIDDLEWARE])) as web:
        replies = [web.get("/blocked") for _ in range(4)]
    r = replies[3]
    assert r.status == 429 and r.body == b"Too Many Requests\n"
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert r.headers["ratelimit-policy"] == '"default";q=3;w=60' and r.headers["ratelimit"].startswith(
        '"default";r=0;')


def test_ratelimit_view_answers_as_django_ratelimit_s_setting_says(limiter):
    settings.RATELIMIT_VIEW = f"{__name__}.ratelimited_view"
    try:
        with Served(django_app([MIDDLEWARE])) as web:
            replies = [web.get("/blocked") for _ in range(4)]
    finally:
        del settings.RATELIMIT_VIEW
    assert (replies[3].status, replies[3].body) == (429, b"custom True")


def test_block_false_annotates_request_limited(limiter):
    with Served(django_app()) as web:
        assert [web.get("/annotated").body for _ in range(3)] == [b"ok", b"ok", b"limited"]


def test_method_and_key_kinds(limiter):
    with Served(django_app([MIDDLEWARE])) as web:
        assert [web.get("/unsafe").status for _ in range(4)] == [200] * 4  # GET: not limited
        posts = [web.get("/unsafe", method="POST", headers={"X-API-Key": "a"}).status for _ in range(3)]
        other = web.get("/unsafe", method="POST", headers={"X-API-Key": "b"}).status
    assert posts == [200, 200, 429] and other == 200


def test_several_rates_are_decided_all_or_nothing(limiter):
    with Served(django_app([MIDDLEWARE])) as web:
        got = [web.get("/several?u=x").status for _ in range(3)]
        r = web.get("/several?u=y")
    assert got == [200, 200, 429] and r.status == 200
    assert r.headers.get("ratelimit") is None  # the decorator answers only denials


def test_counts_are_exact_under_50_concurrent_requests(limiter, server):
    with Served(django_app([MIDDLEWARE])) as web:
        replies = web.many(50, "/many")
    assert statuses(replies) == [200] * 10 + [429] * 40
    s = limiter.stats()
    assert s[server.path] + s["cached"] == 50


def test_the_wsgi_middleware_names_buckets_by_django_route(limiter, server):
    app = RateLimitMiddleware(django_app(), limiter, limit="2/minute")
    with Served(app) as web:
        got = [web.get(f"/users/{i}/").status for i in range(3)]
        r = web.get("/annotated")
    assert got == [200, 200, 429] and r.status == 200 and r.headers["ratelimit"].startswith('"default";r=1;')
    assert plain_client(server.port).exists(f"{limiter._engine.o.prefix}GET /users/<int:uid>/:ip:127.0.0.1")


def test_the_wsgi_middleware_under_50_concurrent_requests(limiter):
    with Served(RateLimitMiddleware(django_app(), limiter, limit=10, window_ms=60_000)) as web:
        replies = web.many(50, "/users/1/")
    assert statuses(replies) == [200] * 10 + [429] * 40
    assert all("ratelimit" in r.headers for r in replies)
