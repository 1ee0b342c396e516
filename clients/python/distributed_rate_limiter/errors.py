"""The limiter's errors. Answers are raised to the caller; transport failures are not
(they go through the failure policy) except from calls that have no safe default
(configure, reset, info), which raise `Unavailable`."""

import asyncio

import redis


class RateLimitError(Exception):
    """Base class of every error this package raises."""


class InvalidArgument(RateLimitError, ValueError):
    """A bad argument, refused before anything is sent, with the module's wording."""


class CommandError(RateLimitError):
    """The server refused the call (e.g. `no rate limit for key`, WRONGTYPE)."""


class NoRateLimit(CommandError):
    """The key has no stored policy and the call gave none."""


class Unavailable(RateLimitError):
    """Redis did not answer in time (or the circuit is open) and the call has no fallback."""


# Failures of the transport or of the server's availability: these trip the breaker. Any
# other error reply is an answer (the server is alive) and is raised as a CommandError.
TRANSPORT_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError, TimeoutError, asyncio.TimeoutError,
                    redis.exceptions.ClusterError, redis.exceptions.ClusterDownError,
                    redis.exceptions.TryAgainError, redis.exceptions.ReadOnlyError,
                    redis.exceptions.OutOfMemoryError, redis.exceptions.SlotNotCoveredError)
_TRANSPORT_PREFIXES = ("LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "READONLY", "OOM", "BUSY ")


def is_transport(err):
    if isinstance(err, TRANSPORT_ERRORS):
        return True
    return isinstance(err, redis.ResponseError) and str(err).startswith(_TRANSPORT_PREFIXES)


def command_error(err):
    """A server error reply as this package's typed error."""
    text = str(err)
    if text.startswith("no rate limit"):
        return NoRateLimit(text)
    if text.startswith(("policy out of the Lua", "limit must", "window_ms must", "burst must",
                        "cost must", "idle_ms must", "burst * window_ms")):
        return InvalidArgument(text)
    return CommandError(text)
