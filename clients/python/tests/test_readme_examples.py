"""The Python examples of clients/README.md run as written ("Token budgets", "Login
protection", "Stripe-style ..."), with the application's own functions (count_tokens, a
provider, check_password, do_work) stubbed, and behave as the README says. On the Lua path,
and on the module path when the module has the commands."""

import re
from pathlib import Path
from types import SimpleNamespace
from uuid import uuid4

import pytest

from conftest import plain_client
from distributed_rate_limiter import DistributedRateLimiter
from test_ops import module_has

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def example(heading):
    """The first ```python block after `### <heading>`."""
    section = README.split(f"### {heading}", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture
def limiter(server):
    if server.path == "redis" and not (module_has(server.port, 19) and module_has(server.port, 20)):
        pytest.skip("this module lacks the commands of issues 19 and 20")
    return DistributedRateLimiter(plain_client(server.port), timeout_ms=2000, deny_cache_max_ms=0,
                                  prefix=f"readme:{uuid4().hex}:")


class TooManyTokens(Exception):
    pass


def test_token_budgets_reserve_stream_and_settle_to_the_reported_usage(limiter):
    reported = {"total": 0}

    def stream(prompt, max_tokens):
        for n in range(1, reported["total"] + 1):
            yield SimpleNamespace(text=f"t{n} ", usage=SimpleNamespace(total_tokens=n))

    env = {"limiter": limiter, "count_tokens": lambda prompt: len(prompt.split()), "TooManyTokens": TooManyTokens,
           "provider": SimpleNamespace(stream=stream)}
    exec(example("Token budgets"), env)
    reported["total"] = 1_000
    text = "".join(env["complete"]("acme", "a prompt of six words here", 60_000))
    assert text.startswith("t1 t2 ") and limiter.info("tenant:acme")["holds"] == 0
    # Settled to the 1,000 reported (the bucket drains 1.67 tokens a ms meanwhile).
    assert 99_000 <= limiter.info("tenant:acme")["remaining"] <= 99_900
    reported["total"] = 30_000
    stream_ = env["complete"]("acme", "another prompt", 98_000)  # reserves 98,002
    next(stream_)
    assert limiter.info("tenant:acme")["remaining"] < 2_000
    stream_.close()  # the caller stopped reading after one chunk: settled to 1 token
    assert 98_999 <= limiter.info("tenant:acme")["remaining"] <= 99_900
    with pytest.raises(TooManyTokens):
        next(env["complete"]("acme", "x", 100_000))


def test_login_protection_blocks_after_five_failures_and_a_success_does_not_count(limiter):
    env = {"limiter": limiter, "check_password": lambda user, password: password == "right"}
    exec(example("Login protection"), env)
    login = env["login"]
    assert [login("ann", "right")[0] for _ in range(10)] == [200] * 10  # successes are refunded
    assert [login("bob", "wrong")[0] for _ in range(5)] == [401] * 5
    status, headers = login("bob", "right")
    assert status == 429 and int(headers["Retry-After"]) > 0
    info = limiter.info("login:bob")
    assert 0 < info["blocked_ms"] <= 60_000 and info["penalty_level"] == 0
    assert limiter.unblock("login:bob")


def test_stripe_style_two_in_flight_and_a_hundred_a_minute(limiter):
    env = {"limiter": limiter}
    exec(example("Stripe-style: 100 a minute and 2 in flight per API key"), env)
    handle = env["handle"]

    def do_work(request):  # each request makes the next one while it is still in flight
        if request == "first":
            return handle("k1", "second")
        if request == "second":
            return handle("k1", "third")
        return "done"

    env["do_work"] = do_work
    status, (status2, (status3, headers)) = handle("k1", "first")
    assert (status, status2, status3) == (200, 200, 429) and "Retry-After" in headers
    assert limiter.info("api:k1")["leases"] == 0  # every lease given back
    assert [handle("k2", "x")[0] for _ in range(101)] == [200] * 100 + [429]  # the minute's quota
