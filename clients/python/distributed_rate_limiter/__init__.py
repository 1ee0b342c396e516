"""Distributed rate limiting on Redis: the rl module's commands (or, on a server without the
module, the same GCRA as a Lua script) behind the brief's API, with a failure policy.

    from distributed_rate_limiter import DistributedRateLimiter
    limiter = DistributedRateLimiter()
    limiter.configure_rate_limit("user123", limit=10, window_ms=60_000)
    limiter.is_allowed("user123")
"""

from .aio import AsyncDistributedRateLimiter
from .client import DistributedRateLimiter
from .decision import Decision, headers_for
from .errors import CommandError, InvalidArgument, NoRateLimit, RateLimitError, Unavailable
from .gcra import Policy
from .local import LocalLimiter

__all__ = ["AsyncDistributedRateLimiter", "CommandError", "Decision", "DistributedRateLimiter",
           "InvalidArgument", "LocalLimiter", "NoRateLimit", "Policy", "RateLimitError", "Unavailable",
           "headers_for"]
