"""Rate strings wherever Python takes a policy: read as `limits.parse_many` reads them (checked
against it when it is installed), plus django-ratelimit's one-letter units; several limits
decided all-or-nothing; through the limiter on the module and the Lua path."""

from uuid import uuid4

import pytest

from distributed_rate_limiter import InvalidArgument, Limit
from distributed_rate_limiter.policy import policy_of
from distributed_rate_limiter.rates import Rate, parse_rates
from test_calls import Sync

MIN = 60_000

READ_AS = [
    ("10/minute", [(10, MIN)]),
    ("10 per minute", [(10, MIN)]),
    ("10 / minute", [(10, MIN)]),
    ("10/5 minutes", [(10, 5 * MIN)]),
    ("10 per 5 minutes", [(10, 5 * MIN)]),
    ("1/second", [(1, 1000)]),
    ("2/hours", [(2, 3_600_000)]),
    ("3 per day", [(3, 86_400_000)]),
    ("100 per hour; 1000 per day", [(100, 3_600_000), (1000, 86_400_000)]),
    ("1/second, 5/minute", [(1, 1000), (5, MIN)]),
    ("1/second|5/minute", [(1, 1000), (5, MIN)]),
    ("4/month", [(4, 30 * 86_400_000)]),
    ("1/year", [(1, 360 * 86_400_000)]),
    ("10/MINUTE", [(10, MIN)]),
]
SHORT = [("5/m", [(5, MIN)]), ("100/5m", [(100, 5 * MIN)]), ("1/s; 2/h, 3/d", [(1, 1000), (2, 3_600_000),
                                                                            (3, 86_400_000)])]


@pytest.mark.parametrize("text, rates", READ_AS + SHORT)
def test_reads_rate_strings(text, rates):
    assert parse_rates(text) == tuple(Rate(*r) for r in rates)


@pytest.mark.parametrize("text, rates", READ_AS)
def test_reads_them_as_limits_does(text, rates):
    limits = pytest.importorskip("limits")
    theirs = [(item.amount, item.get_expiry() * 1000) for item in limits.parse_many(text)]
    assert theirs == rates


@pytest.mark.parametrize("text", ["", "10", "ten/minute", "10/fortnight", "10/minute;", "/minute", "10//minute",
                                  None, 10])
def test_refuses_what_it_cannot_read(text):
    with pytest.raises(InvalidArgument):
        parse_rates(text)


def test_a_rate_string_is_a_policy_gcra_unless_kind_says():
    assert policy_of("10/minute") == (Limit("gcra", 10, MIN, 10),)
    assert policy_of("10/minute", kind="sliding") == (Limit("sliding", 10, MIN, 10),)
    assert policy_of("10/minute", burst=20) == (Limit("gcra", 10, MIN, 20),)
    assert policy_of(["10/second", {"limit": 2, "window_ms": 30_000, "kind": "concurrency"}]) == (
        Limit("gcra", 10, 1000, 10), Limit("concurrency", 2, 30_000, 2))
    assert policy_of("100 per hour; 1000 per day") == (Limit("gcra", 100, 3_600_000, 100),
                                                       Limit("gcra", 1000, 86_400_000, 1000))


@pytest.mark.parametrize("kw, says", [
    (dict(limit="10/minute", window_ms=1000), "carries its window"),
    (dict(limit="1/s; 2/m", burst=5), "burst applies to one limit"),
    (dict(limit="1/s; 1/m; 1/h; 1/d; 1/month"), "at most 4"),
    (dict(limit="0/minute"), "limit must be an integer from 1"),
    (dict(limit="2000/minute", kind="sliding"), "from 1 to 1000"),
])
def test_bad_rate_policies_name_the_problem(kw, says):
    with pytest.raises(InvalidArgument, match=says):
        policy_of(**kw)


def test_rate_strings_through_the_limiter(server):
    rl = Sync(server.port, 2, prefix=f"rates:{uuid4().hex}:")
    assert [rl.is_allowed("inline", limit="2/minute") for _ in range(3)] == [True, True, False]
    # Several limits, all-or-nothing: the hourly one binds after 3.
    d = [rl.throttle("two", limit="3 per hour; 100 per day") for _ in range(4)]
    assert [x.allowed for x in d] == [True, True, True, False]
    assert d[-1].binding == 0 and d[-1].path == server.path
    assert d[-1].headers["RateLimit-Policy"] == '"l0";q=3;w=3600, "l1";q=100;w=86400'
    rl.configure_rate_limit("stored", "1/second; 5/minute", kind="sliding")
    info = rl.info("stored")
    assert [(x["kind"], int(x["limit"]), int(x["window_ms"])) for x in info["limits"]] == [
        ("sliding", 1, 1000), ("sliding", 5, MIN)]
