"""What the limiter knows about redis-py, in one place: how its errors are read, and how a
URL becomes a client. Both drivers (sync and asyncio) use it.

Failures of the transport, and refusals to write, take the failure policy alike (and count
toward the breaker): timeouts, connection errors and these error replies:"""

import asyncio
from urllib.parse import urlsplit

import redis
from redis.exceptions import MaxConnectionsError, NoScriptError

from .errors import ConfigurationError, answer_error

UNAVAILABLE_REPLIES = ("LOADING", "BUSY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "READONLY", "MISCONF",
                       "NOREPLICAS", "OOM")
# redis-py strips the code of these replies from the message and raises its own class.
_UNAVAILABLE_CLASSES = (redis.ConnectionError, redis.TimeoutError, OSError, TimeoutError, asyncio.TimeoutError,
                        redis.exceptions.ClusterError, redis.exceptions.ClusterDownError,
                        redis.exceptions.TryAgainError, redis.exceptions.ReadOnlyError,
                        redis.exceptions.OutOfMemoryError, redis.exceptions.SlotNotCoveredError)
TIMEOUTS = (redis.TimeoutError, TimeoutError, asyncio.TimeoutError)


class PoolBusy(Exception):
    """Every pooled connection stayed in use until the call's deadline. Overload, not an
    outage: the call takes the failure policy but the breaker is not told."""


# What a driver hands the engine for an exception (see classify).
UNAVAILABLE, BUSY, UNKNOWN_COMMAND, NOSCRIPT, ANSWER = "unavailable", "busy", "unknown_command", "noscript", "answer"


def classify(err):
    """One of UNAVAILABLE, BUSY, UNKNOWN_COMMAND, NOSCRIPT, ANSWER; None for an exception
    that is not Redis's (a bug: raised as it is)."""
    if isinstance(err, (PoolBusy, MaxConnectionsError)):
        return BUSY
    if isinstance(err, NoScriptError):
        return NOSCRIPT
    if isinstance(err, _UNAVAILABLE_CLASSES):
        return UNAVAILABLE
    if isinstance(err, redis.ResponseError):
        text = str(err)
        if text.startswith(UNAVAILABLE_REPLIES):
            return UNAVAILABLE
        if "unknown command" in text.lower():
            return UNKNOWN_COMMAND
        return ANSWER
    if isinstance(err, redis.RedisError):
        return UNAVAILABLE
    return None


def as_answer(err):
    """A server's refusal as this package's typed error."""
    return answer_error(str(err))


SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster")


def client_from_url(url, asyncio_=False):
    """A redis-py client for `url`: redis://, rediss://, unix://, or redis+cluster:// and
    rediss+cluster:// for a Redis Cluster (any node's address)."""
    if not isinstance(url, str):
        raise ConfigurationError(f"url must be a string like redis://host:6379, not {type(url).__name__}")
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise ConfigurationError(f"url {url!r}: the scheme must be one of {', '.join(s + '://' for s in SCHEMES)}")
    if scheme.endswith("+cluster"):
        url = url.replace("+cluster", "", 1)
        cls = redis.asyncio.RedisCluster if asyncio_ else redis.cluster.RedisCluster
        return cls.from_url(url)
    cls = redis.asyncio.Redis if asyncio_ else redis.Redis
    return cls.from_url(url)
