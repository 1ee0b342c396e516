"""Adapters through which clients/conformance/traces_runner.py replays traces.json: the
Python client (on the module or the Lua script), the Lua script called directly with the
instant as its test-only now_ms argument, and the local limiter on an injected clock."""

from ops_runner import limits_arg

from distributed_rate_limiter import LocalLimiter
from distributed_rate_limiter.operations import LUA_SOURCE
from distributed_rate_limiter.policy import policy_of

FIELDS = ("allowed", "limit", "remaining", "retry_after_ms", "reset_after_ms", "binding")


def numbers(d):
    return {f: getattr(d, f) for f in FIELDS}


def lua_limits(limits):
    return [x for lim in limits for x in (lim["kind"], lim["limit"], lim["window_ms"],
                                           lim["burst"] if lim["kind"] == "gcra" else "")]


class ClientBackend:
    def __init__(self, rl):
        self.rl = rl

    def configure(self, key, limits):
        self.rl.configure_rate_limit(key, limits_arg(limits))

    def check(self, key, cost, inline, peek):
        policy = {"limit": limits_arg(inline)} if inline else {}
        return numbers((self.rl.peek if peek else self.rl.throttle)(key, cost=cost, **policy))

    def info(self, key):
        return self.rl.info(key)

    def reset(self, key):
        return self.rl.reset(key)


class ScriptBackend:
    """ratelimit.lua by EVALSHA, deciding at `now` (set_clock) rather than the server's clock."""

    def __init__(self, client):
        self.r = client
        self.sha = client.script_load(LUA_SOURCE)
        self.now = None

    def set_clock(self, ms):
        self.now = ms

    def _call(self, key, *args):
        return self.r.evalsha(self.sha, 1, key, args[0], self.now, *args[1:])

    def configure(self, key, limits):
        self._call(key, "config", 0, 0, *lua_limits(limits))

    def check(self, key, cost, inline, peek):
        a, limit, rem, retry, reset, *binding = self._call(key, "peek" if peek else "check", cost, "",
                                                            *lua_limits(inline or []))
        return {"allowed": bool(a), "limit": limit, "remaining": rem, "retry_after_ms": retry,
                "reset_after_ms": reset, "binding": binding[0] if binding else 0}

    def info(self, key):
        raw = self._call(key, "info")
        return None if raw is None else {k.decode(): v for k, v in zip(raw[::2], raw[1::2])}

    def reset(self, key):
        return self._call(key, "reset")


class LocalBackend:
    def __init__(self, clock):
        self.local = LocalLimiter(clock=clock)

    def configure(self, key, limits):
        self.local.configure(key, policy_of(limits_arg(limits)))

    def check(self, key, cost, inline, peek):
        policy = policy_of(limits_arg(inline)) if inline else None
        return numbers(self.local.check(key, policy, cost, "peek" if peek else "throttle"))

    def info(self, key):
        return self.local.info(key)

    def reset(self, key):
        return self.local.reset(key)
