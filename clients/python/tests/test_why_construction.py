"""Issue 18, items 1 and 11: construction that cannot be misread, and a first check that
never waits past its timeout. Imports are inside the tests so that each fails on its own
behaviour when run against an older client."""

import logging
import socket
import time

import pytest

from conftest import plain_client
from distributed_rate_limiter import AsyncDistributedRateLimiter, DistributedRateLimiter

# Scheduling slack on a loaded 2-core machine on top of a 50 ms timeout (s); a connect
# timeout would be 1 s, a hang forever.
MARGIN_S = 0.3


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def test_item1_a_url_is_used_not_ignored(server):
    r = plain_client(server.port)
    r.config_resetstat()
    rl = DistributedRateLimiter(f"redis://127.0.0.1:{server.port}", timeout_ms=2000)
    d = rl.throttle("url", limit=5, window_ms=60_000)
    assert d.path == server.path and rl.stats()["ever_connected"]
    calls = r.info("commandstats")
    assert any(k in calls for k in ("cmdstat_rl.throttle", "cmdstat_evalsha", "cmdstat_eval"))
    rl.close()
    from_url = DistributedRateLimiter.from_url(f"redis://127.0.0.1:{server.port}", timeout_ms=2000)
    assert from_url.throttle("url", limit=5, window_ms=60_000).remaining == 3
    from_url.close()


def test_item1_misspelt_options_are_refused_by_name():
    from distributed_rate_limiter import ConfigurationError
    with pytest.raises(ConfigurationError, match="unknown option 'timeout'.*did you mean 'timeout_ms'"):
        DistributedRateLimiter("redis://127.0.0.1:1", timeout=200)
    with pytest.raises(ConfigurationError, match="unknown option 'onError'"):
        AsyncDistributedRateLimiter("redis://127.0.0.1:1", onError="deny")
    with pytest.raises(ConfigurationError, match="on_error"):
        DistributedRateLimiter("redis://127.0.0.1:1", on_error="fail")
    with pytest.raises(ConfigurationError, match="url"):
        DistributedRateLimiter("http://127.0.0.1:6379")
    with pytest.raises(ConfigurationError, match="prefix"):
        DistributedRateLimiter("redis://127.0.0.1:1", prefix="rl:{")
    DistributedRateLimiter("redis://127.0.0.1:1", prefix="rl:{tenant}:")  # a whole hash tag is fine


def test_item1_nothing_listening_warns_once_and_ready_says_so(caplog):
    from distributed_rate_limiter import Unavailable
    rl = DistributedRateLimiter(f"redis://127.0.0.1:{closed_port()}", timeout_ms=50, connect_timeout_ms=300)
    with caplog.at_level(logging.WARNING, logger="distributed_rate_limiter"):
        decisions = [rl.throttle("u", limit=5, window_ms=60_000) for _ in range(20)]
    assert {d.path for d in decisions} == {"local"}
    warnings = [r for r in caplog.records if "has not answered yet" in r.getMessage()]
    assert len(warnings) == 1  # one, not one per check (then at most one a minute)
    assert rl.stats()["ever_connected"] is False
    t0 = time.monotonic()
    with pytest.raises(Unavailable) as e:
        rl.ready()
    assert time.monotonic() - t0 <= 0.3 + MARGIN_S * 3
    assert e.value.__cause__ is not None  # the connection error, attached


def test_ready_resolves_once_redis_answers(server):
    rl = DistributedRateLimiter(f"redis://127.0.0.1:{server.port}")
    assert rl.ready() is True and rl.stats()["ever_connected"]

    async def main():
        a = AsyncDistributedRateLimiter(f"redis://127.0.0.1:{server.port}")
        ok = await a.ready()
        await a.close()
        return ok

    import asyncio
    assert asyncio.run(main()) is True


@pytest.mark.parametrize("cls", [DistributedRateLimiter, AsyncDistributedRateLimiter])
def test_item11_the_first_check_against_a_closed_port_waits_at_most_its_timeout(cls):
    rl = cls(f"redis://127.0.0.1:{closed_port()}", timeout_ms=50, breaker_failures=100)

    def first():
        t0 = time.monotonic()
        d = rl.throttle("u", limit=5, window_ms=60_000)
        if cls is AsyncDistributedRateLimiter:
            import asyncio
            d = asyncio.run(d)
        return d, time.monotonic() - t0

    d, took = first()
    assert d.path == "local" and took <= 0.05 + MARGIN_S, took
