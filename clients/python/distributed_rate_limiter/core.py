"""What the sync and asyncio limiters share: validation, the commands each path sends, reply
normalisation (RESP2 lists, RESP3 maps and booleans, Lua arrays) and the failure policy's
decisions. No I/O here."""

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from importlib import resources
from typing import Optional

from .decision import Decision
import redis
from redis.exceptions import MaxConnectionsError

from .errors import InvalidArgument, command_error, is_transport
from .failure import Breaker, Stats
from .gcra import MAX_COST, MAX_IDLE_MS, Policy, check_int
from .local import LocalLimiter, wall_clock_ms

ON_ERROR = ("allow", "deny", "local")
LUA_SOURCE = resources.files(__package__).joinpath("ratelimit.lua").read_text()
THROTTLE_FIELDS = ("allowed", "limit", "remaining", "retry_after_ms", "reset_after_ms")


class Unreachable(Exception):
    """Redis was not asked (circuit open) or did not answer; the failure policy decides."""


@dataclass(frozen=True)
class Request:
    """A validated check: the full key, its cost and the inline policy (or None)."""

    key: bytes
    cost: int
    inline: Optional[Policy]


def _text(v):
    return v.decode() if isinstance(v, bytes) else v


def _pairs_to_dict(raw):
    """RL.INFO's reply (RESP3 map, or RESP2/Lua flat list) as {str: value}."""
    if raw is None:
        return None
    items = raw.items() if isinstance(raw, dict) else zip(raw[::2], raw[1::2])
    return {_text(k): _text(v) for k, v in items}


class LimiterCore:
    """Options, state and decisions common to DistributedRateLimiter and its asyncio twin."""

    def __init__(self, prefix="", on_error="local", local_share=1.0, timeout_ms=50,
                 breaker_failures=3, breaker_cooldown_ms=1000, on_state_change=None,
                 local_clock=wall_clock_ms, max_local_keys=100_000):
        if on_error not in ON_ERROR:
            raise InvalidArgument(f"on_error must be one of {ON_ERROR}")
        if not 0 < local_share <= 1:
            raise InvalidArgument("local_share must be in (0, 1]")
        if not 0 < timeout_ms <= 60_000:
            raise InvalidArgument("timeout_ms must be in (0, 60000]")
        self.prefix = prefix.encode() if isinstance(prefix, str) else bytes(prefix)
        self.on_error = on_error
        self.local_share = local_share
        self.timeout_s = timeout_ms / 1000
        # configure/reset/info have no fallback and are not on a request's path: they may
        # wait for a first connection on a loaded machine (at least 1 s).
        self.admin_timeout_s = max(self.timeout_s, 1.0)
        self.breaker = Breaker(breaker_failures, breaker_cooldown_ms, on_state_change)
        self.stats_ = Stats()
        self.local = LocalLimiter(local_clock, max_local_keys)
        # Policies this limiter configured, so that the local limiter and the headers know
        # them (key -> (Policy, shadow)); bounded like the local table.
        self.policies = OrderedDict()
        self.max_policies = max_local_keys
        # None: not known yet (or a reconnect since); "module" or "lua".
        self.mode = None
        self.lua_sha = None

    # --- validation ----------------------------------------------------------------------

    def key(self, client_id):
        if isinstance(client_id, str):
            client_id = client_id.encode()
        if not isinstance(client_id, (bytes, bytearray)) or not client_id:
            raise InvalidArgument("client id must be a non-empty string")
        return self.prefix + bytes(client_id)

    def request(self, client_id, cost=1, limit=None, window_ms=None, burst=None):
        key = self.key(client_id)
        check_int("cost", cost, MAX_COST)
        if limit is None and window_ms is None:
            if burst is not None:
                raise InvalidArgument("BURST needs LIMIT and WINDOW")
            return Request(key, cost, None)
        if limit is None or window_ms is None:
            raise InvalidArgument("LIMIT and WINDOW must be given together")
        return Request(key, cost, Policy.of(limit, window_ms, burst))

    def config_args(self, client_id, limit, window_ms, burst=None, idle_ms=None, shadow=False):
        """(key, Policy, idle_ms, shadow) validated for configure_rate_limit."""
        key = self.key(client_id)
        policy = Policy.of(limit, window_ms, burst)
        idle = check_int("idle_ms", idle_ms, MAX_IDLE_MS, allow_none=True) or 0
        return key, policy, idle, bool(shadow)

    def remember(self, key, policy, shadow=False):
        self.policies[key] = (policy, shadow)
        self.policies.move_to_end(key)
        if len(self.policies) > self.max_policies:
            self.policies.popitem(last=False)

    def known_policy(self, req):
        """(Policy, shadow) for `req` as this process knows it: stored, else inline, else None."""
        stored = self.policies.get(req.key)
        if stored is not None:
            return stored
        return (req.inline, False) if req.inline is not None else (None, False)

    # --- commands ------------------------------------------------------------------------

    @staticmethod
    def module_check(command, req):
        args = [command, req.key]
        if req.cost != 1:
            args += ["COST", req.cost]
        if req.inline is not None:
            p = req.inline
            args += ["LIMIT", p.limit, "WINDOW", p.window_ms]
            if p.burst != p.limit:
                args += ["BURST", p.burst]
        return args

    def lua_args(self, key, op, *argv):
        return ["EVALSHA", self.lua_sha, 1, key, op, "", *argv]

    def lua_check(self, op, req):
        p = req.inline
        if p is not None and req.key not in self.policies:
            p.check_lua()
        inline = ["gcra", p.limit, p.window_ms, p.burst] if p is not None else []
        return self.lua_args(req.key, op, req.cost, "", *inline)

    @staticmethod
    def lua_config(policy, idle, shadow):
        policy.check_lua()
        return ["config", idle, int(shadow), "gcra", policy.limit, policy.window_ms, policy.burst]

    # --- replies -------------------------------------------------------------------------

    def decision(self, raw, path, req):
        """RL.THROTTLE/RL.PEEK (RESP2 list or RESP3 map) or the Lua check reply."""
        if isinstance(raw, dict):
            raw = [raw.get(f, raw.get(f.encode())) for f in THROTTLE_FIELDS]
        allowed, limit, remaining, retry, reset = raw
        policy, _ = self.known_policy(req)
        window = policy.window_ms if policy is not None else None
        return Decision.of(bool(allowed), int(limit), int(remaining), int(retry), int(reset), path, window)

    @staticmethod
    def allowed(raw):
        """RL.ALLOW's 1/0 (RESP3: true/false) or the Lua check reply."""
        if isinstance(raw, (list, tuple)):
            return bool(raw[0])
        return bool(raw)

    info_dict = staticmethod(_pairs_to_dict)

    # --- the failure policy --------------------------------------------------------------

    def fallback(self, req, consume=True):
        """The decision when Redis cannot be asked, by `on_error`; counted in stats."""
        policy, shadow = self.known_policy(req)
        if self.on_error == "local" and policy is not None:
            local = policy.share(self.local_share)
            v = self.local.check(req.key, local, req.cost, consume, shadow)
            self.stats_.decided("local")
            return Decision.of(v.allowed, v.limit, v.remaining, v.retry_after_ms, v.reset_after_ms,
                               "local", local.window_ms)
        # Without Redis the numbers are a guess; as the Node client does: denied until the
        # next probe, or allowed with the whole bucket. Headers are sent either way.
        limit = policy.burst if policy is not None else 0
        window = policy.window_ms if policy is not None else None
        if self.on_error == "deny":
            self.stats_.decided("failed_closed")
            retry = max(self.breaker.retry_after_ms(), 1)
            return Decision.of(False, limit, 0, retry, retry, "failed_closed", window)
        # 'allow', or 'local' for a key whose policy this process has never seen.
        self.stats_.decided("failed_open")
        return Decision.of(True, limit, limit, -1, 0, "failed_open", window)

    def settle_error(self, err):
        """Books a failed call (breaker, stats, module re-detection) and returns what to
        raise: Unreachable for the failure policy, or the server's answer as a typed error."""
        if isinstance(err, MaxConnectionsError):
            # The application's pool is exhausted (redis.asyncio's default is 100): this
            # call falls back, but Redis is not failing, so the breaker stays as it is.
            self.breaker.abort()
            self.stats_.error()
            return Unreachable()
        if is_transport(err):
            self.breaker.failure()
            self.stats_.error(timeout=isinstance(err, (redis.TimeoutError, TimeoutError, asyncio.TimeoutError)))
            self.mode = None  # re-detect the module after a reconnect
            return Unreachable()
        self.breaker.success()  # an answer: the server is alive
        return command_error(err)

    def stats(self):
        s = self.stats_.snapshot()
        s["state"] = self.breaker.state
        s["mode"] = self.mode
        return s
