"""The limiter as sans-IO logic: every operation is a generator that yields what it needs
done (`Send` a command to the key's owner, `Sleep`) and gets back the raw reply, or the
exception, from a driver (client.py: one sync, one asyncio). Everything else is here, once:
module or Lua, NOSCRIPT, WITHPOLICY on an older module, re-configuring a policy Redis lost,
moving a Lua key to the module, the breaker, the failure policy (local ids for reservations
and leases taken locally), the deny cache and stats.

One check is one `Send` on the hot path; the others happen once per event (a lost policy, a
migration, the first call after a restart) and share the check's deadline."""

import logging
import threading
import time
from collections import OrderedDict
from typing import NamedTuple, Optional

from . import operations as ops
from .decision import Decision
from .denycache import DenyCache
from .errors import CommandError, ForeignKey, InvalidArgument, NoRateLimit, Unavailable
from .failure import Breaker, Stats
from .local import LocalLimiter
from .operations import Request
from .otel import telemetry_of
from .policy import (DEFAULT_HOLD_MS, MAX_BLOCK_MS, MAX_COST, MAX_HOLD_MS, MAX_IDLE_MS, MAX_LEASE_MS, Penalty,
                     Stored, check_int, penalty_of, policy_of)
from .redispy import ANSWER, BUSY, NOSCRIPT, TIMEOUTS, UNAVAILABLE, UNKNOWN_COMMAND, as_answer, classify

log = logging.getLogger("distributed_rate_limiter")
WARN_EVERY_S = 60


class Send(NamedTuple):
    key: bytes
    args: list
    timeout_s: float


class Sleep(NamedTuple):
    seconds: float


class _Unreachable(Exception):
    """Redis was not asked (circuit open) or did not answer: the failure policy decides."""

    def __init__(self, cause=None, outage=True):
        super().__init__(cause)
        self.cause = cause
        self.outage = outage  # False: overload (a pool wait), not a Redis failure


def _answer_kind(e):
    """What Redis answered with the exception `e` (classify's ANSWER, UNKNOWN_COMMAND,
    NOSCRIPT). A transport failure raises _Unreachable (BUSY, a pool wait that ran out, is
    overload, not an outage); an exception that is not Redis's is raised as it is (a bug)."""
    kind = classify(e)
    if kind is None:
        raise e
    if kind in (UNAVAILABLE, BUSY):
        raise _Unreachable(e, outage=kind == UNAVAILABLE) from None
    return kind


class _WrongType(Exception):
    """The module found a key of another type: maybe one the Lua script wrote."""


class Known(NamedTuple):
    """A key's policy as this process knows it."""

    policy: Optional[tuple]
    shadow: bool = False
    penalty: Optional[Penalty] = None


POLICY_WORDS = ("limit", "window_ms", "burst", "kind", "penalty_ms", "penalty_max_ms")
ID_NAMES = {"reserve": "reservation", "acquire": "lease"}  # the id a decision carries
MAX_ID = 2**63 - 1


def local_id(n):
    """A reservation or lease the local limiter issued: a string, never mistaken for Redis's."""
    return f"L{n}"


class Engine:
    def __init__(self, options):
        self.o = options
        self.prefix = options.prefix.encode("utf-8", "surrogateescape") if isinstance(options.prefix, str) \
            else bytes(options.prefix)
        self.timeout_s = options.timeout_ms / 1000
        self.admin_timeout_s = max(options.timeout_ms, options.connect_timeout_ms) / 1000
        self.breaker = Breaker(options.breaker_failures, options.breaker_cooldown_ms, self._state_changed)
        self.stats_ = Stats()
        self.local = LocalLimiter(options.clock, options.max_local_keys)
        self.deny = DenyCache(options.deny_cache_max_ms, options.max_local_keys)
        self.policies = OrderedDict()  # key -> Stored, configured through this limiter (LRU)
        self._policies_lock = threading.Lock()
        self.backend = None  # None: not known (or a reconnect since); "module" or "lua"
        self.withpolicy = None  # does the module take WITHPOLICY? None: not known yet
        self.ever_connected = False
        self._last_reply = 0.0  # monotonic s of the latest reply of any call
        self._script_loading = 0.0  # monotonic s until which a SCRIPT LOAD is in flight
        self._warned_at = None
        # OpenTelemetry (otel.py): when it records, decisions run through the observed check;
        # else the plain one, with nothing added per call.
        self.telemetry = telemetry_of(options.telemetry, self.breaker)
        if self.telemetry is not None:
            self.check = self._check_observed

    # --- requests ------------------------------------------------------------------------

    def key(self, client_id):
        if isinstance(client_id, str):
            client_id = client_id.encode()
        if not isinstance(client_id, (bytes, bytearray)) or not client_id:
            raise InvalidArgument("client id must be a non-empty string")
        return self.prefix + bytes(client_id)

    def check_request(self, client_id, cost=1, name="cost", **policy):
        """A call with an amount (`name`: cost, estimate, n) and an inline policy, given as the
        keywords limit, window_ms, burst, kind (or limit=[...]), penalty_ms, penalty_max_ms."""
        unknown = [k for k in policy if k not in POLICY_WORDS]
        if unknown:
            raise InvalidArgument(f"unknown argument {unknown[0]!r}: a policy takes {', '.join(POLICY_WORDS)}")
        check_int(name, cost, MAX_COST)
        inline = policy_of(policy.get("limit"), policy.get("window_ms"), policy.get("burst"), policy.get("kind"))
        penalty = penalty_of(policy.get("penalty_ms"), policy.get("penalty_max_ms"))
        if penalty is not None and inline is None:
            raise InvalidArgument("penalty_ms needs limit and window_ms (or configure it with the policy)")
        return Request(self.key(client_id), cost, inline, penalty=penalty)

    def config_request(self, client_id, limit=None, window_ms=None, burst=None, kind=None, idle_ms=None, shadow=False,
                       penalty_ms=None, penalty_max_ms=None):
        policy = policy_of(limit, window_ms, burst, kind, required=True)
        idle = check_int("idle_ms", idle_ms, MAX_IDLE_MS, allow_none=True) or 0
        stored = Stored(policy, idle, bool(shadow), penalty_of(penalty_ms, penalty_max_ms))
        return Request(self.key(client_id), stored=stored)

    def known_policy(self, req):
        """The policy as this process knows it: configured here, else inline, else None."""
        stored = self.policies.get(req.key)
        if stored is not None:
            return Known(stored.policy, stored.shadow, stored.penalty)
        return Known(req.inline, False, req.penalty)

    def remember(self, key, stored):
        with self._policies_lock:
            self.policies[key] = stored
            self.policies.move_to_end(key)
            if len(self.policies) > self.o.max_policies:
                self.policies.popitem(last=False)

    # --- operations (generators run by a driver) --------------------------------------------

    def _check_observed(self, op, req):
        """check(), its decision and duration recorded (and set on the active span)."""
        started = time.perf_counter()
        d = yield from Engine.check(self, op, req)
        self.telemetry.decided(op.name, d, time.perf_counter() - started)
        return d

    def check(self, op, req):
        """throttle, peek, reserve, acquire: a Decision, whatever happens to Redis. Only
        throttle and peek use the deny cache: a reservation or lease must come from the
        store that will settle or release it, and a release elsewhere frees a slot long
        before a denied acquire's retry_after_ms."""
        cached = op.reply == "decision"
        ident = (req.key, req.inline, req.penalty, req.cost)
        now = self.o.clock()
        hit = self.deny.get(ident, now) if cached else None
        if hit is not None:
            (d, policy), elapsed = hit
            self.stats_.count("cached")
            retry = max(d.retry_after_ms - elapsed, 1) if d.retry_after_ms >= 0 else -1
            return Decision.of(False, d.limit, d.remaining, retry, max(d.reset_after_ms - elapsed, 0), "cached",
                               d.binding, policy)
        try:
            raw, path = yield from self._call(op, req, self.timeout_s)
        except _Unreachable as u:
            if not u.outage:
                return self._overloaded(req)
            return self._fallback(req, op, u.cause)
        issued = {}
        if op.reply == "grant":
            r, ident_ = ops.grant_reply(raw, ID_NAMES[op.name])
            issued[ID_NAMES[op.name]] = ident_
        else:
            r = ops.check_reply(raw)
        policy = r.policy or self.known_policy(req).policy
        d = Decision.of(r.allowed, r.limit, r.remaining, r.retry_after_ms, r.reset_after_ms, path, r.binding,
                        policy, **issued)
        self.stats_.count(path)
        if cached and not d.allowed:
            self.deny.put(ident, (d, policy), d.retry_after_ms, now)
        return d

    def reserve_request(self, client_id, estimate, hold_ms=None, **policy):
        req = self.check_request(client_id, estimate, "estimate", **policy)
        return req._replace(ms=check_int("hold_ms", hold_ms, MAX_HOLD_MS, allow_none=True))

    def refund(self, client_id, n, **policy):
        req = self.check_request(client_id, n, "n", **policy)
        self.deny.forget(req.key)
        return int((yield from self._required(ops.REFUND, req)))

    def block(self, client_id, ms):
        req = Request(self.key(client_id), ms=check_int("ms", ms, MAX_BLOCK_MS))
        yield from self._required(ops.BLOCK, req)

    def unblock(self, client_id):
        req = Request(self.key(client_id))
        self.deny.forget(req.key)
        return bool(int((yield from self._required(ops.UNBLOCK, req))))

    def settle(self, client_id, reservation, actual):
        """Units charged (> 0) or given back (< 0); 0 for a reservation of None (nothing was
        held: decided without Redis under 'allow', or a shadow key's)."""
        check_int("actual", actual, MAX_COST, lo=0)
        req = Request(self.key(client_id), actual=actual)
        return int((yield from self._by_id(ops.SETTLE, req, "reservation", reservation,
                                           lambda n: self.local.settle(req.key, n, actual))) or 0)

    def release(self, client_id, lease):
        req = Request(self.key(client_id))
        return bool((yield from self._by_id(ops.RELEASE, req, "lease", lease,
                                            lambda n: self.local.release(req.key, n))))

    def renew(self, client_id, lease, ms):
        req = Request(self.key(client_id), ms=check_int("ms", ms, MAX_LEASE_MS))
        return bool((yield from self._by_id(ops.RENEW, req, "lease", lease,
                                            lambda n: self.local.renew(req.key, n, ms))))

    def _by_id(self, op, req, what, ref, local):
        """settle, release, renew of what reserve()/acquire() returned: None does nothing, a
        local id ('L<n>') goes to the local limiter that issued it, one Redis issued goes to
        Redis, sent once more if Redis does not answer, and then Unavailable (never dropped
        in silence; a settle retried after its first attempt did land answers 'unknown
        reservation')."""
        if ref is None:
            return None
        if isinstance(ref, str) and ref[:1] == "L" and ref[1:].isdigit():
            if op is not ops.RENEW:
                self.deny.forget(req.key)
            return local(int(ref[1:]))
        if isinstance(ref, bool) or not isinstance(ref, int) or not 1 <= ref <= MAX_ID:
            raise InvalidArgument(f"{what} must be what the call that took it returned: an integer id, or "
                                  f"'L<n>' for one decided locally, not {ref!r}")
        req = req._replace(ident=ref)
        if op is not ops.RENEW:
            self.deny.forget(req.key)
        # Asked even while the breaker is open (the retry is the point), each try within a
        # check's timeout once Redis has answered: a release ends a request.
        timeout_s = self.timeout_s if self.ever_connected else self.admin_timeout_s
        cause = None
        for _ in range(2):
            try:
                raw, _ = yield from self._call(op, req, timeout_s, force=True)
                return raw
            except _Unreachable as u:
                cause = u.cause or cause
        raise Unavailable(f"{op.name} of {what} {ref}: Redis did not answer, twice "
                          f"({cause or 'the circuit is open'})") from cause

    def configure(self, req):
        self.remember(req.key, req.stored)
        self.deny.forget(req.key)
        # The local limiter carries what it counted to the new policy as of now, as Redis does.
        self.local.configure(req.key, self._share(req.stored.policy))
        yield from self._required(ops.CONFIGURE, req)

    def reset(self, req):
        self.local.reset(req.key)
        self.deny.forget(req.key)
        return int((yield from self._required(ops.RESET, req)))

    def info(self, req):
        return ops.pairs((yield from self._required(ops.INFO, req)))

    def wait_until_allowed(self, req, timeout_ms):
        """Checks, sleeps exactly retry_after_ms, checks again; never past the deadline."""
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            d = yield from self.check(ops.THROTTLE, req)
            if d.allowed or d.retry_after_ms < 0 or time.monotonic() + d.retry_after_ms / 1000 > deadline:
                return d
            yield Sleep(d.retry_after_ms / 1000)

    def ready(self, timeout_ms=None):
        """Resolves once Redis answers a PING; raises Unavailable (with the cause) if not."""
        timeout_s = (timeout_ms or self.o.connect_timeout_ms) / 1000
        try:
            yield Send(self.prefix, ["PING"], timeout_s)
        except Exception as e:
            if classify(e) is None:
                raise
            raise Unavailable(f"Redis did not answer within {timeout_s * 1000:.0f} ms: {e}") from e
        self._answered()
        return True

    # --- the flow --------------------------------------------------------------------------

    def _required(self, op, req):
        """An operation with no fallback: its reply, or Unavailable."""
        try:
            raw, _ = yield from self._call(op, req, self.admin_timeout_s)
        except _Unreachable as u:
            cause = u.cause or "the circuit is open: Redis is not asked during the cool-down"
            raise Unavailable(f"{op.name}: {cause}") from u.cause
        return raw

    def _call(self, op, req, timeout_s, force=False):
        """(raw reply, path) through the breaker (`force`: asked even while it is open);
        _Unreachable when Redis cannot answer."""
        if not self.breaker.admit() and not force:
            raise _Unreachable()
        started = time.monotonic()
        deadline = started + timeout_s
        try:
            return (yield from self._ask(op, req, deadline))
        except _Unreachable as u:
            if u.outage and isinstance(u.cause, TIMEOUTS) and self._last_reply > started:
                # Many calls in flight on a healthy Redis: it answered others while this one
                # waited. Overload, not an outage: the breaker is not told.
                u.outage = False
            if u.cause is not None and self.telemetry is not None:
                self.telemetry.failed(op.name)
            if u.outage:
                self.breaker.failure()
                self.backend = None  # re-detect the module after a reconnect
                self.stats_.count("errors")
            else:
                self.breaker.abort()
            if u.cause is not None and (isinstance(u.cause, TIMEOUTS) or not u.outage):
                self.stats_.count("timeouts")
            raise
        except BaseException:
            self.breaker.abort()  # a no-op after an answer (the breaker closed on it)
            raise

    def _ask(self, op, req, deadline):
        """The operation's reply, re-configuring a policy Redis lost (once) and moving a key
        the Lua script wrote to the module (once)."""
        stored = self.policies.get(req.key) if op.policy else None
        if stored is not None and req.inline is not None:
            req = req._replace(inline=None)  # its stored policy is known: losing it must show
        reconfigured = migrated = False
        while True:
            try:
                raw, path, sent_withpolicy = yield from self._send(op, req, deadline)
            except NoRateLimit:
                if stored is None or reconfigured:
                    raise
            except _WrongType:
                if migrated:
                    raise ForeignKey("key holds a value of another type") from None
                migrated = True
                yield from self._migrate(req.key, deadline)
                continue
            else:
                lost = sent_withpolicy and stored is not None and ops.check_reply(raw).source != "stored"
                if not lost or reconfigured:
                    return raw, path
            # Redis lost this limiter's policy (a restart without persistence, FLUSHALL, an
            # eviction, the module gone): configure it again and repeat the check, once.
            reconfigured = True
            yield from self._send(ops.CONFIGURE, Request(req.key, stored=stored), deadline)
            self.stats_.count("reconfigured")

    def _migrate(self, key, deadline):
        """The module is loaded and `key` holds a hash the Lua script wrote: the script hands
        over its policy and deletes it, and RL.CONFIG stores the policy (usage is not carried:
        at most one window of it is forgotten). A key the script did not write: ForeignKey."""
        raw, _, _ = yield from self._send(ops.EXPORT, Request(key), deadline, lua=True)
        stored = ops.export_reply(raw)
        if stored is not None:
            yield from self._send(ops.CONFIGURE, Request(key, stored=stored), deadline)

    def _send(self, op, req, deadline, lua=False):
        """(raw, path, withpolicy sent) for one operation: module, or the Lua script when the
        server has no module; NOSCRIPT and an older module's refusal of WITHPOLICY handled."""
        while True:
            use_lua = lua or self.backend == "lua"
            withpolicy = op.withpolicy and (use_lua or self.withpolicy is not False)
            if use_lua:
                args = ops.lua_command(req, op.lua_args(req, withpolicy))
            else:
                args = op.module_args(req, withpolicy)
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Unreachable(TimeoutError(f"{op.name}: out of time"))
            try:
                raw = yield Send(req.key, args, left)
            except Exception as e:
                kind = _answer_kind(e)
                # Redis answered; but only the operation's final answer closes the breaker (a
                # refusal to write on the Lua path follows an 'unknown command' every time).
                self.ever_connected, self._last_reply = True, time.monotonic()
                if kind == UNKNOWN_COMMAND and not use_lua:
                    if op.since is not None and (yield from self._module_loaded(req.key, deadline)):
                        self._answered()
                        raise CommandError(f"{op.module} is unknown to the rl module on this server: it predates "
                                           f"issue {op.since}; upgrade the module") from None
                    self.backend = "lua"
                    continue
                if kind == NOSCRIPT:
                    yield from self._load_script(req.key, deadline)
                    continue
                if kind == ANSWER and not use_lua:
                    text = str(e)
                    if withpolicy and text.startswith("syntax error"):
                        self.withpolicy = False  # a module older than WITHPOLICY
                        continue
                    if text.startswith("WRONGTYPE"):
                        raise _WrongType() from None
                self._answered()
                raise as_answer(e) from None
            self._answered()
            if not use_lua:
                self.backend = "module"
                if withpolicy:
                    self.withpolicy = True
            return raw, "lua" if use_lua else "redis", withpolicy

    def _module_loaded(self, key, deadline):
        """After 'unknown command' for a command newer than the rest: is the module there
        (older), or no module at all (the Lua script takes over)? RL.INFO tells."""
        try:
            yield Send(key, ["RL.INFO", key], max(deadline - time.monotonic(), 0.0001))
        except Exception as e:
            if _answer_kind(e) == UNKNOWN_COMMAND:
                return False
            # any other answer (WRONGTYPE, a syntax error): the module is there
        self.backend = "module"
        return True

    def _load_script(self, key, deadline):
        """After NOSCRIPT (a restart, SCRIPT FLUSH, another cluster node): one SCRIPT LOAD at
        a time, on the key's node; a burst of calls waits for it in 1 ms steps rather than
        sending the 24 KB source each (then retries EVALSHA, and loads it itself if that node
        still lacks it)."""
        now = time.monotonic()
        if now < self._script_loading:
            yield Sleep(min(0.001, max(deadline - now, 0)))
            return
        self._script_loading = deadline
        try:
            yield Send(key, ["SCRIPT", "LOAD", ops.LUA_SOURCE], max(deadline - now, 0.0001))
        except Exception as e:
            _answer_kind(e)
            raise
        finally:
            self._script_loading = 0.0

    def _answered(self):
        self.ever_connected, self._last_reply = True, time.monotonic()
        self.breaker.success()

    # --- without Redis -----------------------------------------------------------------------

    def _fallback(self, req, op, cause, warn=True):
        """The decision when Redis cannot be asked, by on_error; counted in stats. Under
        'local', a reservation or lease is taken by the local limiter, with a local id."""
        if warn:
            self._warn(cause)
        policy, shadow, penalty = self.known_policy(req)
        if self.o.on_error == "local" and policy is not None:
            share = self._share(policy)
            g = self.local.check(req.key, share, req.cost, op.mode, penalty, shadow, req.ms or DEFAULT_HOLD_MS)
            self.stats_.count("local")
            issued = {ID_NAMES[op.name]: local_id(g.id)} if g.id is not None else {}
            return Decision.of(g.allowed, g.limit, g.remaining, g.retry_after_ms, g.reset_after_ms, "local",
                               g.binding, share, **issued)
        # Without Redis the numbers are a guess: denied until the next probe, or allowed with
        # the whole bucket. Headers go out either way.
        limit = policy[0].burst if policy else 0
        if self.o.on_error == "deny":
            self.stats_.count("failed_closed")
            retry = max(self.breaker.retry_after_ms(), 1)
            return Decision.of(False, limit, 0, retry, retry, "failed_closed", 0, policy)
        self.stats_.count("failed_open")  # 'allow', or 'local' for a key whose policy is unknown
        return Decision.of(True, limit, limit, -1, 0, "failed_open", 0, policy)

    def _share(self, policy):
        """`policy` as this instance enforces it alone (local_share of each limit)."""
        return tuple(lim.share(self.o.local_share) for lim in policy)

    def _overloaded(self, req):
        """A decision that ran out of time while Redis answered other calls (or waited past
        its deadline for a pooled connection): overload, not an outage. Never decided by the
        local limiter, whatever on_error says: the command may still run in Redis and count
        there, and the local count is apart from Redis's (500 concurrent checks with limit 10
        admitted 20 in the Node client when such checks went local). 'allow' lets it through;
        'deny' and 'local' refuse it for timeout_ms. No reservation or lease."""
        policy = self.known_policy(req).policy
        limit = policy[0].burst if policy else 0
        if self.o.on_error == "allow":
            self.stats_.count("failed_open")
            return Decision.of(True, limit, limit, -1, 0, "failed_open", 0, policy)
        self.stats_.count("failed_closed")
        wait = self.o.timeout_ms
        return Decision.of(False, limit, 0, wait, wait, "failed_closed", 0, policy)

    def unkeyed_decision(self):
        """The failure policy for a request that cannot be keyed (middleware whose key function
        returned None, or whose check failed): 'deny' refuses it, 'allow' and 'local' (which has
        no key to count under) let it through."""
        return self._fallback(Request(b""), ops.PEEK, None, warn=False)

    def _warn(self, cause):
        """Until Redis has answered once, one warning a minute at most: a wrong URL must not
        go unnoticed while every check is decided without Redis."""
        if self.ever_connected:
            return
        now = time.monotonic()
        if self._warned_at is not None and now - self._warned_at < WARN_EVERY_S:
            return
        self._warned_at = now
        log.warning("distributed_rate_limiter: Redis has not answered yet (%s); checks are decided by "
                    "on_error=%r without it", cause or "circuit open", self.o.on_error)

    def _state_changed(self, event):
        if event == "degraded":
            log.warning("distributed_rate_limiter: Redis is failing; checks are decided by on_error=%r",
                        self.o.on_error)
        else:
            log.info("distributed_rate_limiter: Redis answers again")
        if self.o.on_state_change is not None:
            self.o.on_state_change(event)

    def stats(self):
        s = self.stats_.snapshot()
        s.update(state=self.breaker.state, backend=self.backend or "unknown", ever_connected=self.ever_connected)
        return s
