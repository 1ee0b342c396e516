"""The engine, sans I/O, on the calls of issues 19 and 20: the exact module commands it sends
(spec-19-20.md: RL.REFUND, RL.RESERVE ... HOLD, RL.SETTLE, RL.BLOCK, RL.UNBLOCK, RL.ACQUIRE,
RL.RELEASE, RL.RENEW, inline CONCURRENCY and PENALTY), how it reads their RESP2 and RESP3
replies, a module that predates them, and the failure policy: local ids under 'local', none
under 'allow'/'deny', settle/release/renew retried once then Unavailable, refund/block/unblock
Unavailable. No module has these commands yet: a fake server answers as the spec says, so the
module path is tested now and against the real module once it exists (test_ops.py)."""

import time
from types import SimpleNamespace

import pytest
import redis

from distributed_rate_limiter import CommandError, DistributedRateLimiter, InvalidArgument, Limit, Unavailable
from distributed_rate_limiter import operations as ops
from distributed_rate_limiter.engine import Engine
from distributed_rate_limiter.options import options_of

GRANT = ("allowed", "limit", "remaining", "retry_after_ms", "reset_after_ms", "binding")


class Fake:
    """A server that answers each command with `answers[name](args)` (a value or an exception
    to raise), recording what it was sent; an engine generator runs against it through the
    sync limiter's own driver."""

    def __init__(self, **answers):
        self.answers = answers
        self.sent = []

    def call(self, key, args, timeout_s):
        self.sent.append(args)
        answer = self.answers.get(args[0], redis.ResponseError("ERR unknown command"))
        answer = answer(args) if callable(answer) else answer
        if isinstance(answer, Exception):
            raise answer
        return answer

    def run(self, gen):
        return DistributedRateLimiter._run(SimpleNamespace(_transport=self), gen)


def grant(values, id_name, resp3):
    """A 7-field reply: RESP2 array, or RESP3 map (bytes keys, as redis-py gives them)."""
    if not resp3:
        return list(values)
    return {name.encode(): v for name, v in zip(GRANT + (id_name,), values)}


def engine(**options):
    options.setdefault("clock", lambda: 1_750_000_000_000)
    return Engine(options_of(options))


@pytest.mark.parametrize("resp3", [False, True], ids=["resp2", "resp3"])
def test_reserve_sends_the_estimate_hold_and_inline_policy_and_reads_the_reservation(resp3):
    fake = Fake(**{"RL.RESERVE": grant([1, 10, 5, -1, 30_000, 0, 1_750_000_000_000_000], "reservation", resp3)})
    e = engine()
    d = fake.run(e.check(ops.RESERVE, e.reserve_request("u", 5, 1000, limit=10, window_ms=60_000, penalty_ms=100,
                                                        penalty_max_ms=800)))
    assert fake.sent == [["RL.RESERVE", b"rl:u", 5, "HOLD", 1000, "LIMIT", 10, "WINDOW", 60_000,
                          "PENALTY", 100, "MAX", 800]]
    assert (d.allowed, d.remaining, d.reset_after_ms, d.reservation, d.lease, d.path) == \
        (True, 5, 30_000, 1_750_000_000_000_000, None, "redis")


@pytest.mark.parametrize("resp3", [False, True], ids=["resp2", "resp3"])
def test_acquire_sends_cost_and_a_concurrency_limit_and_reads_the_lease(resp3):
    fake = Fake(**{"RL.ACQUIRE": grant([0, 2, 0, 800, 900, 1, None], "lease", resp3)})
    e = engine()
    policy = [{"limit": 100, "window_ms": 60_000}, {"limit": 2, "window_ms": 30_000, "kind": "concurrency"}]
    d = fake.run(e.check(ops.ACQUIRE, e.check_request("api", 2, limit=policy)))
    assert fake.sent == [["RL.ACQUIRE", b"rl:api", "COST", 2, "LIMIT", 100, "WINDOW", 60_000, "AND",
                          "LIMIT", 2, "WINDOW", 30_000, "CONCURRENCY"]]
    assert (d.allowed, d.limit, d.retry_after_ms, d.binding, d.lease) == (False, 2, 800, 1, None)
    assert d.headers["RateLimit-Policy"] == '"l0";q=100;w=60, "l1";q=2'  # a lease count has no window


def test_configure_writes_concurrency_and_penalty_as_rl_config_takes_them():
    fake = Fake(**{"RL.CONFIG": b"OK"})
    e = engine()
    fake.run(e.configure(e.config_request("k", [{"limit": 5, "window_ms": 1000}, {"limit": 2, "window_ms": 50,
                                                                                  "kind": "concurrency"}],
                                          idle_ms=9, penalty_ms=1000)))
    assert fake.sent == [["RL.CONFIG", b"rl:k", 5, 1000, "PENALTY", 1000, "IDLE", 9, "AND", 2, 50, "CONCURRENCY"]]


def test_the_other_calls_send_what_the_spec_names_and_read_integers():
    fake = Fake(**{"RL.REFUND": 3, "RL.SETTLE": -2, "RL.BLOCK": b"OK", "RL.UNBLOCK": 1, "RL.RELEASE": 0,
                   "RL.RENEW": 1})
    e = engine()
    assert fake.run(e.refund("u", 3, limit=10, window_ms=1000)) == 3
    assert fake.run(e.settle("u", 17, 0)) == -2
    assert fake.run(e.block("u", 5000)) is None
    assert fake.run(e.unblock("u")) is True
    assert fake.run(e.release("u", 18)) is False
    assert fake.run(e.renew("u", 18, 30_000)) is True
    assert fake.sent == [["RL.REFUND", b"rl:u", 3, "LIMIT", 10, "WINDOW", 1000], ["RL.SETTLE", b"rl:u", 17, 0],
                         ["RL.BLOCK", b"rl:u", 5000], ["RL.UNBLOCK", b"rl:u"], ["RL.RELEASE", b"rl:u", 18],
                         ["RL.RENEW", b"rl:u", 18, 30_000]]


def test_a_module_that_predates_the_commands_is_told_apart_from_no_module():
    typed = Fake(**{"RL.INFO": redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind")})
    with pytest.raises(CommandError, match="predates issue 20"):  # a key of another type: still the module
        typed.run(engine().release("u", 5))
    old = Fake(**{"RL.INFO": None})  # RL.RESERVE unknown, RL.INFO known: an older module
    e = engine()
    with pytest.raises(CommandError, match="RL.REFUND is unknown to the rl module on this server: it predates "
                                           "issue 19"):
        old.run(e.refund("u", 1, limit=1, window_ms=1))
    assert e.backend == "module" and [a[0] for a in old.sent] == ["RL.REFUND", "RL.INFO"]
    plain = Fake(EVALSHA=2)  # no module: the script answers
    e = engine()
    assert plain.run(e.refund("u", 2, limit=5, window_ms=1000)) == 2
    assert e.backend == "lua" and [a[0] for a in plain.sent] == ["RL.REFUND", "RL.INFO", "EVALSHA"]
    assert plain.sent[-1][4:] == ["refund", "", 2, "", "gcra", 5, 1000, 5]


DOWN = redis.ConnectionError("Connection refused")


def test_settle_release_and_renew_are_sent_once_more_then_raise_unavailable():
    for call in (lambda e: e.settle("u", 42, 1), lambda e: e.release("u", 42), lambda e: e.renew("u", 42, 10)):
        fake = Fake(**{c: DOWN for c in ("RL.SETTLE", "RL.RELEASE", "RL.RENEW")})
        e = engine(breaker_failures=10)
        with pytest.raises(Unavailable, match="42: Redis did not answer, twice"):
            fake.run(call(e))
        assert len(fake.sent) == 2 and fake.sent[0] == fake.sent[1]
    ok_second = iter([DOWN, 5])
    fake = Fake(**{"RL.SETTLE": lambda args: next(ok_second)})
    assert fake.run(engine().settle("u", 42, 9)) == 5


def test_refund_block_and_unblock_raise_unavailable_without_redis():
    for call in (lambda e: e.refund("u", 1, limit=1, window_ms=1000), lambda e: e.block("u", 10),
                 lambda e: e.unblock("u")):
        fake = Fake(**{c: DOWN for c in ("RL.REFUND", "RL.BLOCK", "RL.UNBLOCK")})
        with pytest.raises(Unavailable):
            fake.run(call(engine()))
        assert len(fake.sent) == 1


def test_under_local_reservations_and_leases_are_taken_and_given_back_locally_with_local_ids():
    now = [1_750_000_000_000]
    fake = Fake(**{c: DOWN for c in ("RL.RESERVE", "RL.SETTLE", "RL.ACQUIRE", "RL.RELEASE", "RL.RENEW")})
    e = engine(on_error="local", clock=lambda: now[0], breaker_failures=100)
    d = fake.run(e.check(ops.RESERVE, e.reserve_request("u", 4, limit=10, window_ms=60_000)))
    assert (d.path, d.allowed, d.remaining, d.reservation) == ("local", True, 6, f"L{now[0] * 1000}")
    sent = len(fake.sent)
    assert fake.run(e.settle("u", d.reservation, 1)) == -3  # to the local limiter: Redis never asked
    assert len(fake.sent) == sent
    with pytest.raises(CommandError, match="unknown reservation"):
        fake.run(e.settle("u", d.reservation, 1))
    conc = [{"limit": 1, "window_ms": 30_000, "kind": "concurrency"}]
    a = fake.run(e.check(ops.ACQUIRE, e.check_request("w", limit=conc)))
    b = fake.run(e.check(ops.ACQUIRE, e.check_request("w", limit=conc)))
    assert (a.allowed, a.lease, b.allowed, b.lease, b.retry_after_ms) == (True, f"L{now[0] * 1000}", False, None,
                                                                         30_000)
    assert fake.run(e.renew("w", a.lease, 5)) is True
    assert fake.run(e.release("w", a.lease)) is True and fake.run(e.release("w", a.lease)) is False
    assert fake.run(e.check(ops.ACQUIRE, e.check_request("w", limit=conc))).allowed
    assert e.stats()["local"] == 4


@pytest.mark.parametrize("on_error, allowed, path", [("allow", True, "failed_open"), ("deny", False, "failed_closed")])
def test_under_allow_and_deny_reserve_and_acquire_answer_like_a_check_with_no_id(on_error, allowed, path):
    fake = Fake(**{c: DOWN for c in ("RL.RESERVE", "RL.ACQUIRE")})
    e = engine(on_error=on_error)
    r = fake.run(e.check(ops.RESERVE, e.reserve_request("u", 4, limit=10, window_ms=60_000)))
    a = fake.run(e.check(ops.ACQUIRE, e.check_request("u", limit=2, window_ms=100, kind="concurrency")))
    assert (r.allowed, r.path, r.reservation, a.allowed, a.path, a.lease) == (allowed, path, None, allowed, path, None)
    assert fake.run(e.settle("u", None, 3)) == 0 and fake.run(e.release("u", None)) is False  # nothing held


@pytest.mark.parametrize("call, message", [
    (lambda e: e.reserve_request("u", 0), "estimate must be an integer from 1 to 1000000000"),
    (lambda e: e.reserve_request("u", 1, 86_400_001), "hold_ms must be an integer from 1 to 86400000"),
    (lambda e: e.check_request("u", limit=1, window_ms=1, penalty_ms=0), "penalty_ms must be an integer from 1"),
    (lambda e: e.check_request("u", limit=1, window_ms=1, penalty_ms=5, penalty_max_ms=4),
     "penalty_max_ms must be an integer from 5 to 1000000000000"),
    (lambda e: e.check_request("u", limit=1, window_ms=1, penalty_max_ms=4), "penalty_max_ms needs penalty_ms"),
    (lambda e: e.check_request("u", penalty_ms=4), "penalty_ms needs limit and window_ms"),
    (lambda e: e.check_request("u", limti=4), "unknown argument 'limti'"),
    (lambda e: e.check_request("u", limit=1001, window_ms=1, kind="concurrency"), "a CONCURRENCY limit must be"),
    (lambda e: e.check_request("u", limit=2, window_ms=2**32, kind="concurrency"), "a CONCURRENCY window_ms must be"),
    (lambda e: e.check_request("u", limit=2, window_ms=5, burst=3, kind="concurrency"), "burst applies to GCRA"),
    (lambda e: Fake().run(e.refund("u", 0)), "n must be an integer from 1 to 1000000000"),
    (lambda e: Fake().run(e.settle("u", 5, -1)), "actual must be an integer from 0 to 1000000000"),
    (lambda e: Fake().run(e.settle("u", "x5", 1)), "reservation must be what the call that took it returned"),
    (lambda e: Fake().run(e.release("u", 0)), "lease must be what the call that took it returned"),
    (lambda e: Fake().run(e.renew("u", 5, 0)), "ms must be an integer from 1 to 4294967295"),
    (lambda e: Fake().run(e.block("u", 10**12 + 1)), "ms must be an integer from 1 to 1000000000000"),
])
def test_bad_arguments_of_the_new_calls_are_refused_in_the_callers_words(call, message):
    with pytest.raises(InvalidArgument, match=message):
        call(engine())


def test_a_policy_takes_the_concurrency_kind_and_scales_it_like_sliding():
    assert Limit.of(7, 30_000, kind="concurrency").share(0.5) == Limit("concurrency", 3, 30_000, 3)
    assert Limit.of(1, 30_000, kind="concurrency").share(0.1) == Limit("concurrency", 1, 30_000, 1)


@pytest.mark.parametrize("on_error, allowed, path", [("local", False, "failed_closed"), ("deny", False, "failed_closed"),
                                                     ("allow", True, "failed_open")])
def test_an_overloaded_decision_is_never_decided_by_the_local_limiter(on_error, allowed, path):
    """The clients' overload rule (clients/README.md): a decision that ran out of time while
    Redis answered other calls, or that waited for a pooled connection past its deadline, may
    still run in Redis and count there: 'local' refuses it like 'deny' (for timeout_ms), not
    the local limiter, whose count is apart from Redis's; no breaker failure; no id."""
    from distributed_rate_limiter.redispy import PoolBusy
    e = engine(on_error=on_error, timeout_ms=40)
    e.remember(*(lambda r: (r.key, r.stored))(e.config_request("u", 10, 1000)))

    def answered_others(args):  # another call's reply arrived while this one waited
        e._last_reply = time.monotonic() + 1
        return redis.TimeoutError("Timeout reading from socket")

    fake = Fake(**{"RL.THROTTLE": answered_others, "RL.RESERVE": PoolBusy("pool"), "RL.ACQUIRE": answered_others})
    for d in (fake.run(e.check(ops.THROTTLE, e.check_request("u"))),
              fake.run(e.check(ops.RESERVE, e.reserve_request("u", 2))),
              fake.run(e.check(ops.ACQUIRE, e.check_request("u")))):
        assert (d.allowed, d.path, d.limit, d.reservation, d.lease) == (allowed, path, 10, None, None)
        assert (d.remaining, d.retry_after_ms, d.reset_after_ms) == ((10, -1, 0) if allowed else (0, 40, 40))
    s = e.stats()
    assert (s["local"], s["errors"], s["timeouts"], s["state"], len(e.local)) == (0, 0, 3, "closed", 0)


def test_a_real_outage_still_takes_the_local_limiter_under_local():
    e = engine(on_error="local", breaker_failures=100)
    fake = Fake(**{"RL.THROTTLE": DOWN})
    d = fake.run(e.check(ops.THROTTLE, e.check_request("u", limit=10, window_ms=1000)))
    assert (d.path, d.allowed, d.remaining) == ("local", True, 9) and e.stats()["errors"] == 1


def test_settle_release_and_renew_ask_redis_even_while_the_breaker_is_open():
    e = engine(breaker_failures=1, breaker_cooldown_ms=60_000)
    with pytest.raises(Unavailable):
        Fake(**{"RL.REFUND": DOWN}).run(e.refund("u", 1, limit=1, window_ms=1000))
    assert e.stats()["state"] == "open"
    fake = Fake(**{"RL.RELEASE": 1})
    assert fake.run(e.release("u", 7)) is True and e.stats()["state"] == "closed"


def test_a_module_older_than_withpolicy_is_asked_once_then_told_the_policy_the_client_knows():
    """RL.THROTTLE ... WITHPOLICY answered with a syntax error (a module before issue 17):
    sent again without it, and never asked again; the headers tell the policy this process
    knows, without w= when it knows none."""
    def throttle(args):
        if "WITHPOLICY" in args:
            return redis.ResponseError("syntax error: RL.THROTTLE and RL.PEEK take the options COST, LIMIT, "
                                       "WINDOW and BURST")
        return [1, 100, 99, -1, 10]
    fake = Fake(**{"RL.THROTTLE": throttle})
    e = engine()
    d = fake.run(e.check(ops.THROTTLE, e.check_request("u", limit=100, window_ms=1000)))
    assert (d.allowed, d.path, e.withpolicy) == (True, "redis", False)
    assert d.headers["RateLimit-Policy"] == '"default";q=100;w=1'
    fake.sent.clear()
    d = fake.run(e.check(ops.THROTTLE, e.check_request("u")))
    assert [len(a) for a in fake.sent] == [2] and "WITHPOLICY" not in fake.sent[0]
    assert d.headers["RateLimit-Policy"] == '"default";q=100'  # the policy is not known here
