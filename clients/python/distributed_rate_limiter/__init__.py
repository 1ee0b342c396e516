"""Distributed rate limiting on Redis: the rl module's commands (or, on a server without the
module, the same limits as a Lua script) behind one API, sync and asyncio, with a failure
policy, a deny cache and policies that survive Redis losing data; refunds, reservations that
settle, penalties and blocks, and concurrency limits with leases.

    from distributed_rate_limiter import DistributedRateLimiter
    limiter = DistributedRateLimiter("redis://127.0.0.1:6379")
    limiter.configure_rate_limit("user123", limit=10, window_ms=60_000)
    limiter.is_allowed("user123")
"""

from .client import AsyncDistributedRateLimiter, DistributedRateLimiter
from .decision import Decision, headers_for
from .errors import (CommandError, ConfigurationError, Denied, ForeignKey, InvalidArgument, NoRateLimit,
                     RateLimitError, Unavailable)
from .local import LocalLimiter
from .policy import Limit

__all__ = ["AsyncDistributedRateLimiter", "CommandError", "ConfigurationError", "Decision", "Denied",
           "DistributedRateLimiter", "ForeignKey", "InvalidArgument", "Limit", "LocalLimiter", "NoRateLimit",
           "RateLimitError", "Unavailable", "headers_for"]
