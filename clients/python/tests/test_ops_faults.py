"""The failure policy of the calls of issues 19 and 20 against a real server that is killed
(SIGKILL) and restarted (spec-19-20.md, "Clients"): under 'local', reserve and acquire decide
locally with ids 'L<n>' that go back to the local limiter, also after Redis is back; under
'allow'/'deny' they answer like a check with no id; a settle, release or renew of an id Redis
issued is sent once more, then raises Unavailable; refund, block and unblock raise
Unavailable. On the Lua path, and on the module path with a module that has the commands."""

import time
from uuid import uuid4

import pytest

from conftest import plain_client
from distributed_rate_limiter import DistributedRateLimiter, Unavailable
from test_ops import module_has

POLICY = {"limit": 10, "window_ms": 60_000}
CONC = {"limit": 1, "window_ms": 60_000, "kind": "concurrency"}


@pytest.fixture(params=[True, False], ids=["module", "lua"])
def dying(request, make_server):
    s = make_server(module=request.param)
    if request.param and not (module_has(s.port, 19) and module_has(s.port, 20)):
        pytest.skip("this module lacks the commands of issues 19 and 20")
    return s


def limiter(server, on_error="local"):
    return DistributedRateLimiter(plain_client(server.port, socket_timeout=None), on_error=on_error,
                                  timeout_ms=200, connect_timeout_ms=200, breaker_failures=2,
                                  breaker_cooldown_ms=100, prefix=f"f:{uuid4().hex}:")


def test_under_local_reservations_and_leases_are_local_and_go_back_to_the_local_limiter(dying):
    rl = limiter(dying)
    rl.configure_rate_limit("conc", **CONC)
    dying.kill()
    r = rl.reserve("tok", 4, **POLICY)
    a = rl.acquire("conc")
    b = rl.acquire("conc")
    assert (r.path, r.allowed, a.path, a.allowed, b.allowed) == ("local", True, "local", True, False)
    assert isinstance(r.reservation, str) and r.reservation.startswith("L") and a.lease.startswith("L")
    assert rl.settle("tok", r.reservation, 1) == -3
    dying.restart()
    deadline = time.monotonic() + 10
    while rl.throttle("other", **POLICY).path != ("redis" if dying.module else "lua"):
        assert time.monotonic() < deadline, "Redis never answered again"
        time.sleep(0.05)
    before = release_calls(dying)
    assert rl.release("conc", a.lease) is True  # to the local limiter that issued it, not to Redis
    assert rl.release("conc", a.lease) is False
    assert release_calls(dying) == before
    live = rl.acquire("conc")
    assert live.path in ("redis", "lua") and isinstance(live.lease, int)


def release_calls(server):
    """How many RL.RELEASE or EVALSHA calls the server has answered."""
    stats = plain_client(server.port).info("commandstats")
    return {k: v["calls"] for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_rl.release")}


@pytest.mark.parametrize("on_error, allowed, path", [("allow", True, "failed_open"), ("deny", False, "failed_closed")])
def test_under_allow_and_deny_reserve_and_acquire_answer_like_a_check_with_no_id(dying, on_error, allowed, path):
    rl = limiter(dying, on_error)
    dying.kill()
    r, a = rl.reserve("tok", 4, **POLICY), rl.acquire("conc", **CONC)
    assert (r.allowed, r.path, r.reservation) == (allowed, path, None)
    assert (a.allowed, a.path, a.lease) == (allowed, path, None)
    assert rl.settle("tok", r.reservation, 2) == 0 and rl.release("conc", a.lease) is False  # nothing was held


def test_a_settle_release_or_renew_that_cannot_reach_redis_is_sent_twice_then_raises(dying):
    rl = limiter(dying)
    r = rl.reserve("tok", 4, **POLICY)
    a = rl.acquire("conc", **CONC)
    assert isinstance(r.reservation, int) and isinstance(a.lease, int)
    dying.kill()
    errors = rl.stats()["errors"]
    for call in (lambda: rl.settle("tok", r.reservation, 1), lambda: rl.release("conc", a.lease),
                 lambda: rl.renew("conc", a.lease, 1000)):
        with pytest.raises(Unavailable, match="Redis did not answer, twice"):
            call()
    assert rl.stats()["errors"] - errors >= 2  # the first call's two attempts both reached the dead server
    for call in (lambda: rl.refund("tok", 1, **POLICY), lambda: rl.block("tok", 10), lambda: rl.unblock("tok")):
        with pytest.raises(Unavailable):
            call()
    dying.restart()  # nothing persisted (--save ""): the hold and the lease are gone with the data
    deadline = time.monotonic() + 10
    while True:
        try:
            rl.release("conc", a.lease)
            break
        except Unavailable:
            assert time.monotonic() < deadline
            time.sleep(0.05)
