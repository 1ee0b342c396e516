"""The calls of issues 19 and 20 through both limiters (sync and asyncio), over RESP2 and
RESP3, on the Lua path and on the module path (skipped, after checking the client's answer to
a module that predates them, until RL_MODULE names a module with the commands:
/work/prebuilt/librl-19.so, -20.so or -next.so). Each test is a rule of spec-19-20.md's
client section or of the issues' client items."""

import asyncio
import time
from uuid import uuid4

import pytest
import redis
import redis.asyncio

from conftest import plain_client
from distributed_rate_limiter import (AsyncDistributedRateLimiter, CommandError, Denied, DistributedRateLimiter,
                                      NoRateLimit)
from test_calls import Async, Sync

CONC = {"limit": 2, "window_ms": 30_000, "kind": "concurrency"}


PROBES = {19: ("RL.UNBLOCK", "probe"), 20: ("RL.RELEASE", "probe", 1)}  # each writes nothing


def module_has(port, issue):
    try:
        plain_client(port).execute_command(*PROBES[issue])
    except redis.ResponseError as e:
        if "unknown command" in str(e).lower():
            return False
    return True


@pytest.fixture
def ops_server(server, request):
    """The server; on the module path, skipped unless the module has the commands of the
    issue the test is marked with (pytest.mark.issue(19) or (20); default both)."""
    marker = request.node.get_closest_marker("issue")
    for issue in marker.args if marker else (19, 20):
        if server.path == "redis" and not module_has(server.port, issue):
            pytest.skip(f"this module lacks the commands of issue {issue} (test_a_module_that_predates_them "
                        "checks the client's answer); set RL_MODULE to one that has them")
    return server


@pytest.fixture(params=[(Sync, 2), (Sync, 3), (Async, 2), (Async, 3)], ids=["sync-resp2", "sync-resp3",
                                                                           "async-resp2", "async-resp3"])
def make_rl(request, ops_server):
    kind, protocol = request.param
    return lambda **kw: kind(ops_server.port, protocol, prefix=f"ops:{uuid4().hex}:", **kw)


@pytest.fixture
def rl(make_rl):
    return make_rl()


def test_a_module_that_predates_them_is_named_and_nothing_falls_back_to_lua(server):
    if server.path != "redis" or module_has(server.port, 19) or module_has(server.port, 20):
        pytest.skip("needs a module without the commands of issues 19 and 20")
    rl = Sync(server.port, 2, prefix=f"old:{uuid4().hex}:")
    assert rl.throttle("k", limit=1, window_ms=1000).path == "redis"
    with pytest.raises(CommandError, match="RL.RESERVE is unknown to the rl module on this server: it predates "
                                           "issue 19; upgrade the module"):
        rl.reserve("k", 1, limit=1, window_ms=1000)
    with pytest.raises(CommandError, match="RL.ACQUIRE .* predates issue 20"):
        rl.acquire("k", limit=1, window_ms=1000, kind="concurrency")
    assert rl.stats()["backend"] == "module" and rl.throttle("k", limit=1, window_ms=1000).path == "redis"


@pytest.mark.issue(19)
def test_refund_gives_back_what_was_counted_and_never_room_beyond_an_empty_bucket(rl, ops_server):
    policy = {"limit": 10, "window_ms": 60_000}
    for _ in range(3):
        rl.throttle("u", **policy)
    assert rl.peek("u", **policy).remaining == 6  # what one more request would leave
    assert rl.refund("u", 2, **policy) == 2
    assert rl.peek("u", **policy).remaining == 8
    assert rl.refund("u", 50, **policy) == 1  # only what is still counted
    assert rl.peek("u", **policy).remaining == 9
    assert rl.refund("u", 5, **policy) == 0  # an empty bucket: nothing to give back, nothing written
    assert rl.refund("never-seen", 5, **policy) == 0 and rl.info("never-seen") is None
    with pytest.raises(NoRateLimit):
        rl.refund("no-policy", 1)


@pytest.mark.issue(19)
def test_reserve_then_settle_below_and_above_the_estimate(rl, ops_server):
    policy = {"limit": 100, "window_ms": 60_000}
    d = rl.reserve("tok", 40, **policy)
    assert d.allowed and d.remaining == 60 and isinstance(d.reservation, int) and d.lease is None
    assert d.path == ops_server.path
    info = rl.info("tok")
    assert (info["holds"], info["held"]) == (1, 40) and 0 < info["next_hold_expiry_ms"] <= 300_000
    assert rl.settle("tok", d.reservation, 25) == -15  # the unused part of the estimate comes back
    assert rl.peek("tok", **policy).remaining == 74  # 25 counted, and the peeked request
    with pytest.raises(CommandError, match="unknown reservation: it expired, was settled, or was never issued"):
        rl.settle("tok", d.reservation, 25)  # a retried settle is visible and harmless
    e = rl.reserve("tok", 10, hold_ms=60_000, **policy)
    assert e.reservation > d.reservation  # ids only increase
    assert rl.settle("tok", e.reservation, 500) == 490  # charged into debt, whatever it does to admission
    debt = rl.throttle("tok", **policy)
    assert not debt.allowed and debt.remaining == 0 and debt.retry_after_ms > 0
    assert rl.info("tok")["holds"] == 0


@pytest.mark.issue(19)
def test_a_denied_reserve_holds_nothing_and_settling_none_does_nothing(rl, ops_server):
    d = rl.reserve("small", 5, limit=3, window_ms=60_000)
    assert (d.allowed, d.reservation, d.retry_after_ms) == (False, None, -1)
    assert rl.settle("small", d.reservation, 9) == 0
    assert rl.info("small") is None


@pytest.mark.issue(19)
def test_a_hold_left_unsettled_expires_and_stays_charged_at_its_estimate(rl, ops_server):
    policy = {"limit": 10, "window_ms": 600_000}
    d = rl.reserve("forgot", 6, hold_ms=150, **policy)
    deadline = time.monotonic() + 10
    while rl.info("forgot")["holds"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert rl.info("forgot")["holds"] == 0
    with pytest.raises(CommandError, match="unknown reservation"):
        rl.settle("forgot", d.reservation, 0)
    assert rl.peek("forgot", **policy).remaining == 3  # still charged: the work probably happened


@pytest.mark.issue(19)
def test_block_denies_every_check_and_unblock_ends_it(rl, ops_server):
    policy = {"limit": 5, "window_ms": 1000}
    rl.block("b", 60_000)
    d = rl.throttle("b", **policy)
    assert (d.allowed, d.remaining) == (False, 0) and 59_000 < d.retry_after_ms <= 60_000
    assert d.headers["Retry-After"] == "60"
    assert not rl.reserve("b", 1, **policy).allowed
    assert 59_000 < rl.info("b")["blocked_ms"] <= 60_000
    assert rl.unblock("b") is True and rl.unblock("b") is False
    assert rl.throttle("b", **policy).allowed


@pytest.mark.issue(19)
def test_penalty_blocks_after_a_denial_and_doubles_while_denials_continue(make_rl, ops_server):
    # Without the deny cache: it answers a flood from memory (the limit's own retry_after_ms,
    # 60 s here, longer than the block), so such denials never reach Redis to escalate.
    rl = make_rl(deny_cache_max_ms=0)
    rl.configure_rate_limit("login", 1, 60_000, penalty_ms=200, penalty_max_ms=100_000)
    assert rl.throttle("login").allowed
    first = rl.throttle("login")
    assert not first.allowed and rl.info("login")["penalty_level"] == 0
    blocked = rl.throttle("login")
    # Retry when both the block (200 ms) and the limit's own wait (a minute) are over.
    assert not blocked.allowed and blocked.remaining == 0 and 59_000 < blocked.retry_after_ms <= 60_000
    assert 0 < rl.info("login")["blocked_ms"] <= 200
    deadline = time.monotonic() + 10
    while rl.info("login")["blocked_ms"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not rl.throttle("login").allowed  # denied again within a window of the block's end
    info = rl.info("login")  # the doubled length itself, to the ms: the traces (frozen clock)
    assert info["penalty_level"] == 1 and 0 < info["blocked_ms"] <= 400
    assert rl.unblock("login") and rl.info("login")["penalty_level"] == 0


@pytest.mark.issue(19, 20)
def test_leases_admit_at_most_the_limit_and_release_and_renew_only_what_is_held(rl, ops_server):
    rl.configure_rate_limit("w", 2, 30_000, kind="concurrency")
    a, b, c = (rl.acquire("w") for _ in range(3))
    assert (a.allowed, b.allowed, c.allowed) == (True, True, False)
    assert a.lease < b.lease and c.lease is None and c.remaining == 0 and 29_000 < c.retry_after_ms <= 30_000
    assert rl.peek("w").allowed is False  # peek answers for a hypothetical acquire
    info = rl.info("w")
    assert info["leases"] == 2 and info["limits"][0]["held"] == 2 and info["limits"][0]["next_expiry_ms"] > 0
    assert rl.renew("w", a.lease, 100_000) is True
    assert rl.release("w", a.lease) is True
    assert rl.release("w", a.lease) is False  # already released: frees nothing
    assert rl.renew("w", a.lease, 10) is False
    assert rl.release("w", b.lease + 1000) is False  # never issued
    assert rl.acquire("w").allowed and not rl.acquire("w").allowed
    with pytest.raises(CommandError, match="this key has a CONCURRENCY limit: take a lease with RL.ACQUIRE"):
        rl.throttle("w")
    with pytest.raises(CommandError, match="CONCURRENCY limit"):
        rl.reserve("inline", 1, **CONC)


@pytest.mark.issue(20)
def test_an_acquire_counts_on_the_rate_limits_too_all_or_nothing(rl, ops_server):
    rl.configure_rate_limit("stripe", [{"limit": 3, "window_ms": 60_000}, CONC])
    a = rl.acquire("stripe")
    rl.release("stripe", a.lease)
    b = rl.acquire("stripe")
    c = rl.acquire("stripe")
    d = rl.acquire("stripe")  # the leases are full: nothing counted on the rate limit
    assert (b.allowed, c.allowed, d.allowed, d.binding) == (True, True, False, 1)
    rl.release("stripe", b.lease)
    rl.release("stripe", c.lease)
    assert rl.info("stripe")["limits"][0]["remaining"] == 0  # 3 acquires counted, the denied one not
    e = rl.acquire("stripe")
    assert (e.allowed, e.binding, e.lease) == (False, 0, None)
    assert rl.info("stripe")["leases"] == 0


def released(info):
    """Nothing left on a usage-only key once its last lease is released: gone, or (the module
    and the script give such a key an expiry of now, which Redis keeps until that ms is over)
    one that holds no lease and resets in 0 ms."""
    return info is None or (info["leases"] == 0 and info["reset_after_ms"] == 0 and info["holds"] == 0)


@pytest.mark.issue(20)
def test_the_sync_lease_always_releases_and_a_denial_is_a_decision(ops_server):
    rl = DistributedRateLimiter(plain_client(ops_server.port), timeout_ms=2000, prefix=f"cm:{uuid4().hex}:")
    with rl.lease("job", **CONC) as d:
        assert d.allowed and rl.info("job")["leases"] == 1
    assert released(rl.info("job"))  # released: nothing left
    with pytest.raises(ZeroDivisionError):
        with rl.lease("job", **CONC):
            1 / 0
    assert released(rl.info("job"))
    with rl.lease("job", cost=2, **CONC):
        with rl.lease("job", **CONC) as denied:
            assert (denied.allowed, denied.lease) == (False, None) and denied.retry_after_ms > 0
        with pytest.raises(Denied) as e:
            with rl.lease("job", raise_on_deny=True, **CONC):
                pytest.fail("the body of a denied lease ran")
        assert e.value.decision.retry_after_ms > 0
    assert released(rl.info("job"))


@pytest.mark.issue(20)
def test_the_asyncio_lease_always_releases_also_when_cancelled(ops_server):
    async def main():
        client = redis.asyncio.Redis(host="127.0.0.1", port=ops_server.port)
        rl = AsyncDistributedRateLimiter(client, timeout_ms=2000, prefix=f"acm:{uuid4().hex}:")
        async with rl.lease("job", **CONC) as d:
            assert d.allowed and (await rl.info("job"))["leases"] == 1
        assert released(await rl.info("job"))
        started = asyncio.Event()

        async def worker():
            async with rl.lease("job", **CONC):
                started.set()
                await asyncio.sleep(60)

        task = asyncio.ensure_future(worker())
        await started.wait()
        assert (await rl.info("job"))["leases"] == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert released(await rl.info("job"))
        with pytest.raises(TypeError, match="use 'async with'"):
            with rl.lease("job", **CONC):
                pass
        await client.aclose()

    asyncio.run(main())


@pytest.mark.issue(19)
def test_at_most_64_open_reservations_then_an_error_that_says_so(ops_server):
    rl = Sync(ops_server.port, 2, prefix=f"h64:{uuid4().hex}:")
    for _ in range(64):
        assert rl.reserve("k", 1, limit=1000, window_ms=1000).reservation
    with pytest.raises(CommandError, match="too many open reservations: a key holds at most 64"):
        rl.reserve("k", 1, limit=1000, window_ms=1000)
    assert rl.info("k")["holds"] == 64


@pytest.mark.issue(19)
def test_an_acl_user_allowed_checks_only_cannot_refund_or_unblock(ops_server):
    """Whoever may send RL.REFUND or RL.UNBLOCK can lift its own limit: an application user
    with the check commands only is refused them (NOPERM, a CommandError). The Lua path
    cannot be split this way (one EVALSHA), as clients/README.md says."""
    if ops_server.path != "redis":
        pytest.skip("ACL tells commands apart on the module path only")
    admin = plain_client(ops_server.port)
    user = f"app{uuid4().hex[:8]}"
    admin.execute_command("ACL", "SETUSER", user, "on", ">pw", "~*", "+ping", "+rl.throttle", "+rl.peek")
    rl = DistributedRateLimiter(plain_client(ops_server.port, username=user, password="pw"), timeout_ms=2000,
                                prefix=f"acl:{uuid4().hex}:")
    assert rl.throttle("k", limit=1, window_ms=60_000).allowed
    assert not rl.throttle("k", limit=1, window_ms=60_000).allowed
    for call in (lambda: rl.refund("k", 1, limit=1, window_ms=60_000), lambda: rl.unblock("k")):
        with pytest.raises(CommandError, match="no permissions"):
            call()
