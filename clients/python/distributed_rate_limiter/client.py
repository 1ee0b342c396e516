"""DistributedRateLimiter: the brief's API over redis-py's `Redis` or `RedisCluster`.

    limiter = DistributedRateLimiter()            # REDIS_URL, else 127.0.0.1:6379
    limiter.configure_rate_limit("user123", limit=10, window_ms=60_000)
    limiter.is_allowed("user123")                 # True ten times, then False

Each call is one command to the key's owner (RL.* with the module; the shared Lua script
without it), within `timeout_ms`; when Redis fails, `on_error` decides (see clients/README.md).
"""

import hashlib
import os
import time

import redis

from .core import LUA_SOURCE, LimiterCore, Unreachable
from .errors import Unavailable
from .transport import Transport

LUA_SHA = hashlib.sha1(LUA_SOURCE.encode()).hexdigest()


def default_url():
    return os.environ.get("REDIS_URL", "redis://127.0.0.1:6379")


def is_unknown_command(err):
    return isinstance(err, redis.ResponseError) and "unknown command" in str(err).lower()


def config_command(key, policy, burst, idle, shadow):
    args = ["RL.CONFIG", key, policy.limit, policy.window_ms]
    if burst is not None:
        args += ["BURST", policy.burst]
    if idle:
        args += ["IDLE", idle]
    if shadow:
        args.append("SHADOW")
    return args


class DistributedRateLimiter:
    """A rate limiter over the user's redis-py client (no pool of its own). Options: see
    LimiterCore and clients/README.md ("Failure policy")."""

    def __init__(self, client=None, **options):
        self.client = client if client is not None else redis.Redis.from_url(default_url())
        self._core = LimiterCore(**options)
        self._core.lua_sha = LUA_SHA
        self._transport = Transport(self.client)

    # --- the brief's API -----------------------------------------------------------------

    def configure_rate_limit(self, client_id, limit, window_ms, *, burst=None, idle_ms=None, shadow=False):
        """Stores the client's policy (RL.CONFIG): `limit` requests per `window_ms`."""
        core = self._core
        key, policy, idle, shadow = core.config_args(client_id, limit, window_ms, burst, idle_ms, shadow)
        core.remember(key, policy, shadow)
        self._required(key, config_command(key, policy, burst, idle, shadow),
                       lambda: core.lua_args(key, *core.lua_config(policy, idle, shadow)))

    def is_allowed(self, client_id, *, cost=1, limit=None, window_ms=None, burst=None):
        """True if the request passes (and is counted)."""
        core = self._core
        req = core.request(client_id, cost, limit, window_ms, burst)
        try:
            raw, path = self._execute(req.key, core.module_check("RL.ALLOW", req),
                                      lambda: core.lua_check("check", req))
        except Unreachable:
            return core.fallback(req).allowed
        core.stats_.decided(path)
        return core.allowed(raw)

    def throttle(self, client_id, *, cost=1, limit=None, window_ms=None, burst=None):
        """Decides and counts like is_allowed, with the numbers and headers (a Decision)."""
        return self._check("RL.THROTTLE", "check", True, client_id, cost, limit, window_ms, burst)

    def peek(self, client_id, *, cost=1, limit=None, window_ms=None, burst=None):
        """The Decision a request would get now; counts nothing."""
        return self._check("RL.PEEK", "peek", False, client_id, cost, limit, window_ms, burst)

    def reset(self, client_id):
        """Forgets the client's usage, keeps its policy; returns the backlog forgotten (ms)."""
        key = self._core.key(client_id)
        self._core.local.reset(key)
        return int(self._required(key, ["RL.RESET", key], lambda: self._core.lua_args(key, "reset")))

    def info(self, client_id):
        """The key's policy and state as a dict (RL.INFO), or None for an absent key."""
        key = self._core.key(client_id)
        raw = self._required(key, ["RL.INFO", key], lambda: self._core.lua_args(key, "info"))
        return self._core.info_dict(raw)

    def stats(self):
        """Decisions by path, transport errors, timeouts, breaker state and server mode."""
        return self._core.stats()

    # --- plumbing ------------------------------------------------------------------------

    def _check(self, command, op, consume, client_id, cost, limit, window_ms, burst):
        core = self._core
        req = core.request(client_id, cost, limit, window_ms, burst)
        try:
            raw, path = self._execute(req.key, core.module_check(command, req), lambda: core.lua_check(op, req))
        except Unreachable:
            return core.fallback(req, consume)
        core.stats_.decided(path)
        return core.decision(raw, path, req)

    def _required(self, key, module_args, lua_args):
        try:
            return self._execute(key, module_args, lua_args, self._core.admin_timeout_s)[0]
        except Unreachable as e:
            raise Unavailable(str(e.__cause__ or "circuit open: Redis is not asked during the cool-down")) from None

    def _execute(self, key, module_args, lua_args, timeout_s=None):
        """(raw reply, path) from Redis, through the breaker. Raises Unreachable for
        transport failures, typed errors for answers."""
        core = self._core
        if not core.breaker.admit():
            raise Unreachable()
        try:
            reply = self._send(key, module_args, lua_args, timeout_s or core.timeout_s)
        except (redis.RedisError, OSError) as e:
            raise core.settle_error(e) from e
        except BaseException:
            core.breaker.abort()
            raise
        core.breaker.success()
        return reply

    def _send(self, key, module_args, lua_args, timeout_s):
        core, t = self._core, self._transport
        deadline = time.monotonic() + timeout_s

        def left():  # one deadline for detection, NOSCRIPT reload and the call itself
            return max(deadline - time.monotonic(), 0.0005)

        if core.mode != "lua":
            try:
                reply = t.call(key, module_args, left())
                core.mode = "module"
                return reply, "redis"
            except redis.ResponseError as e:
                if not is_unknown_command(e):
                    raise
                core.mode = "lua"
        args = lua_args()
        try:
            return t.call(key, args, left()), "lua"
        except redis.exceptions.NoScriptError:
            t.call(key, ["SCRIPT", "LOAD", LUA_SOURCE], left())
            return t.call(key, args, left()), "lua"
