"""Faults for each on_error: the server killed (SIGKILL) then restarted, and frozen (SIGSTOP,
the timeout path) then resumed. Asserts: no call waits longer than the timeout plus a
margin, 'deny' admits nothing, 'allow' admits everything, 'local' admits at most its share,
and checks go back to Redis within the breaker's cool-down once it answers again."""

import asyncio
import signal
import time

import pytest
import redis.asyncio

from conftest import plain_client
from harness import SERVED_PATH
from distributed_rate_limiter import AsyncDistributedRateLimiter, DistributedRateLimiter, Unavailable

TIMEOUT_MS = 50
COOLDOWN_MS = 300
# Scheduling slack on a loaded 2-core machine, on top of the timeout (s). A hang would be
# seconds (redis-py's default retries and backoff) or forever (a frozen server).
MARGIN_S = 0.4
# Recovery includes reconnecting (a new TCP connection and redis-py's handshake) after the
# cool-down: more slack, still far below "never" or a redis-py backoff of seconds.
RECOVERY_S = COOLDOWN_MS / 1000 + TIMEOUT_MS / 1000 + 1.0
CALLS = 30
LIMIT = 10  # per minute; with local_share 0.5 the local limiter allows 5


def make_limiter(port, on_error, events=None, cls=DistributedRateLimiter, client=None):
    client = client or plain_client(port, socket_timeout=None)  # the user's: no timeout at all
    return cls(client, on_error=on_error, timeout_ms=TIMEOUT_MS, breaker_failures=3,
               breaker_cooldown_ms=COOLDOWN_MS, local_share=0.5,
               on_state_change=events.append if events is not None else None)


def outage(call):
    """CALLS checks during the outage: (admitted, longest wait in s, paths)."""
    admitted, longest, paths = 0, 0.0, set()
    for _ in range(CALLS):
        t0 = time.monotonic()
        d = call()
        longest = max(longest, time.monotonic() - t0)
        admitted += d.allowed
        paths.add(d.path)
        time.sleep(0.01)
    return admitted, longest, paths


def back_to_redis(call):
    """Seconds from now until a check is decided by Redis again."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < 10:
        if call().path == SERVED_PATH:
            return time.monotonic() - t0
        time.sleep(0.005)
    raise AssertionError("checks never went back to Redis")


EXPECTED = {"allow": (CALLS, {"failed_open"}), "deny": (0, {"failed_closed"}), "local": (LIMIT // 2, {"local"})}


@pytest.mark.parametrize("fault", ["kill-restart", "stop-cont"])
@pytest.mark.parametrize("on_error", ["allow", "deny", "local"])
def test_failure_policy(make_server, on_error, fault):
    server = make_server(module=True)
    events = []
    rl = make_limiter(server.port, on_error, events)
    rl.configure_rate_limit("u", LIMIT, 60_000)
    assert rl.throttle("other", limit=LIMIT, window_ms=60_000).path == SERVED_PATH

    server.kill() if fault == "kill-restart" else server.send(signal.SIGSTOP)
    admitted, longest, paths = outage(lambda: rl.throttle("u"))
    want_admitted, want_paths = EXPECTED[on_error]
    assert paths == want_paths
    d = rl.throttle("u")  # headers still go out while Redis is down
    assert d.headers["RateLimit-Policy"] == f'"default";q={LIMIT if on_error != "local" else LIMIT // 2};w=60'
    assert ("Retry-After" in d.headers) == (on_error != "allow")
    assert admitted == want_admitted
    assert longest <= TIMEOUT_MS / 1000 + MARGIN_S, longest
    s = rl.stats()
    assert s["state"] in ("open", "half_open") and events == ["degraded"]
    assert s["errors"] >= 3 and (fault != "stop-cont" or s["timeouts"] >= 1)
    t0 = time.monotonic()
    with pytest.raises(Unavailable):  # no fallback for configuration: an error, still bounded
        rl.configure_rate_limit("u", LIMIT, 60_000)
    assert time.monotonic() - t0 <= 1.0 + MARGIN_S  # configuration waits up to max(timeout, 1 s)

    # A restart without persistence (these servers save nothing) forgets the stored policy:
    # the recovery checks carry an inline one.
    server.restart() if fault == "kill-restart" else server.send(signal.SIGCONT)
    recovery = back_to_redis(lambda: rl.throttle("u", limit=LIMIT, window_ms=60_000))
    print(f"{on_error} {fault}: longest wait {longest * 1000:.0f} ms, back to Redis {recovery * 1000:.0f} ms "
          f"after it answered again")
    assert recovery <= RECOVERY_S
    assert events == ["degraded", "recovered"] and rl.stats()["state"] == "closed"


def test_asyncio_limiter_is_bounded_on_a_frozen_server_and_recovers(make_server):
    server = make_server(module=True)

    async def scenario():
        client = redis.asyncio.Redis(host="127.0.0.1", port=server.port, protocol=2)
        rl = make_limiter(server.port, "local", cls=AsyncDistributedRateLimiter, client=client)
        await rl.configure_rate_limit("u", LIMIT, 60_000)
        server.send(signal.SIGSTOP)
        admitted, longest = 0, 0.0
        for _ in range(CALLS):
            t0 = time.monotonic()
            admitted += await rl.is_allowed("u")
            longest = max(longest, time.monotonic() - t0)
            await asyncio.sleep(0.01)
        server.send(signal.SIGCONT)
        t0 = time.monotonic()
        while (await rl.throttle("u")).path != SERVED_PATH:
            assert time.monotonic() - t0 < 10
            await asyncio.sleep(0.005)
        return admitted, longest, time.monotonic() - t0, rl.stats()

    admitted, longest, recovery, stats = asyncio.run(scenario())
    assert admitted == LIMIT // 2 and stats["local"] >= CALLS  # + the recovery polls
    assert longest <= TIMEOUT_MS / 1000 + MARGIN_S
    print(f"asyncio stop-cont: longest wait {longest * 1000:.0f} ms, back to Redis {recovery * 1000:.0f} ms")
    assert recovery <= RECOVERY_S


def test_lua_path_survives_a_restart_and_is_detected_again(make_server):
    server = make_server(module=False)
    rl = make_limiter(server.port, "deny")
    rl.configure_rate_limit("u", LIMIT, 60_000)
    assert rl.throttle("u").path == "lua"
    server.kill()
    admitted, longest, paths = outage(lambda: rl.throttle("u"))
    assert (admitted, paths) == (0, {"failed_closed"}) and longest <= TIMEOUT_MS / 1000 + MARGIN_S
    server.restart()  # empty: no script cached, no data (save is off)
    t0 = time.monotonic()
    while rl.throttle("u", limit=LIMIT, window_ms=60_000).path != "lua":
        assert time.monotonic() - t0 < RECOVERY_S
        time.sleep(0.005)
