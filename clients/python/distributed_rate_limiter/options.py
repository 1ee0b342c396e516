"""The limiter's options, checked once at construction: an unknown name or a bad value raises
ConfigurationError naming the option (with a "did you mean" for a near miss), so a misspelt
`timeout=200` cannot be silently ignored."""

import difflib
from dataclasses import dataclass, fields
from typing import Callable, Optional

from .errors import ConfigurationError
from .local import wall_clock_ms

ON_ERROR = ("allow", "deny", "local")


@dataclass(frozen=True)
class Options:
    prefix: str = "rl:"  # every key is prefix + id, on every path (module, Lua, local)
    on_error: str = "local"  # what a check answers when Redis does not: allow, deny, local
    local_share: float = 1.0  # the local limiter enforces this share of each limit
    timeout_ms: int = 50  # a check never waits longer, the first one included
    connect_timeout_ms: int = 1000  # ready(); and configure/reset/info wait max(timeout, this)
    breaker_failures: int = 3  # consecutive failures that open the circuit
    breaker_cooldown_ms: int = 1000  # while open, Redis is not asked; then one call probes
    on_state_change: Optional[Callable] = None  # called with 'degraded' / 'recovered'
    deny_cache_max_ms: int = 1000  # how long a denial may be answered from memory; 0: off
    max_policies: int = 100_000  # policies remembered for re-configuring after data loss (LRU)
    max_local_keys: int = 100_000  # usages the local limiter and the deny cache keep (LRU)
    clock: Callable = wall_clock_ms  # Unix ms, for the local limiter and the deny cache (tests)
    telemetry: object = None  # OpenTelemetry: None automatic, False off, or {meter_provider, tracer_provider}


NAMES = tuple(f.name for f in fields(Options))


def _int(name, value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigurationError(f"{name} must be an integer from {lo} to {hi}, not {value!r}")


def check_prefix(prefix):
    if isinstance(prefix, bytes):
        prefix = prefix.decode("utf-8", "surrogateescape")
    if not isinstance(prefix, str):
        raise ConfigurationError(f"prefix must be a string, not {type(prefix).__name__}")
    if "{" in prefix or "}" in prefix:
        # Only a whole hash tag: "{tenant}:" routes every key of the limiter to one slot.
        o, c = prefix.find("{"), prefix.find("}")
        if not (prefix.count("{") == prefix.count("}") == 1 and o < c - 1):
            raise ConfigurationError(f"prefix {prefix!r}: a brace is allowed only as one whole hash tag, "
                                     "like 'rl:{tenant}:'")
    return prefix


def options_of(given):
    """Options from the constructor's keyword arguments."""
    unknown = [k for k in given if k not in NAMES]
    if unknown:
        k = unknown[0]
        near = difflib.get_close_matches(k, NAMES, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else f"; the options are {', '.join(NAMES)}"
        raise ConfigurationError(f"unknown option {k!r}{hint}")
    o = Options(**given)
    check_prefix(o.prefix)
    if o.on_error not in ON_ERROR:
        raise ConfigurationError(f"on_error must be one of {ON_ERROR}, not {o.on_error!r}")
    if isinstance(o.local_share, bool) or not isinstance(o.local_share, (int, float)) or not 0 < o.local_share <= 1:
        raise ConfigurationError(f"local_share must be a number in (0, 1], not {o.local_share!r}")
    _int("timeout_ms", o.timeout_ms, 1, 60_000)
    _int("connect_timeout_ms", o.connect_timeout_ms, 1, 600_000)
    _int("breaker_failures", o.breaker_failures, 1, 1_000_000)
    _int("breaker_cooldown_ms", o.breaker_cooldown_ms, 0, 3_600_000)
    _int("deny_cache_max_ms", o.deny_cache_max_ms, 0, 3_600_000)
    _int("max_policies", o.max_policies, 1, 10**9)
    _int("max_local_keys", o.max_local_keys, 1, 10**9)
    for name in ("on_state_change", "clock"):
        v = getattr(o, name)
        if v is not None and not callable(v):
            raise ConfigurationError(f"{name} must be callable")
    return o
