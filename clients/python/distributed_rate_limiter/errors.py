"""The limiter's errors, the same names as the Node client's:

    RateLimitError
    ├── ConfigurationError   bad options or URL at construction (names the option)
    ├── InvalidArgument      a bad argument to a call, in this API's words (also a ValueError)
    ├── CommandError         the server refused the call
    │   ├── NoRateLimit      the key has no stored policy and the call gave none
    │   └── ForeignKey       the key holds data this limiter did not create
    ├── Unavailable          no answer in time, or the circuit is open, for a call with no
    │                        fallback (configure, reset, info, ready, refund, block, unblock;
    │                        settle, release and renew after one retry)
    └── Denied               lease(raise_on_deny=True) was denied (`.decision` says why)

Checks (throttle, peek, reserve, acquire) never raise Unavailable: the failure policy
(`on_error`) decides them."""


class RateLimitError(Exception):
    """Base class of every error this package raises."""


class ConfigurationError(RateLimitError):
    """Bad options or URL given to the constructor."""


class InvalidArgument(RateLimitError, ValueError):
    """A bad argument, refused before anything is sent."""


class CommandError(RateLimitError):
    """The server refused the call."""


class NoRateLimit(CommandError):
    """The key has no stored policy and the call gave none."""


class ForeignKey(CommandError):
    """The key exists and is not a rate limit of this client (an application's hash, say):
    the Lua fallback never writes to it, and the module path does not convert it."""


class Unavailable(RateLimitError):
    """Redis did not answer in time (or the circuit is open) and the call has no fallback."""


class Denied(RateLimitError):
    """A lease asked for with raise_on_deny=True was denied; `decision` has the numbers."""

    def __init__(self, decision):
        super().__init__(f"denied: retry after {decision.retry_after_ms} ms")
        self.decision = decision


FOREIGN_KEY_REPLY = "key is not a rate limit of this client"


def answer_error(text):
    """A server's error reply (its text) as this package's typed error."""
    if text.startswith("no rate limit"):
        return NoRateLimit(text)
    if text.startswith(FOREIGN_KEY_REPLY) or text.startswith("WRONGTYPE"):
        return ForeignKey(text)
    if text.startswith(("policy out of the Lua", "limit must", "window_ms must", "burst must", "cost must",
                        "idle_ms must", "burst * window_ms", "a SLIDING", "a CONCURRENCY", "BURST applies",
                        "too many limits", "estimate must", "n must", "actual must", "ms must", "HOLD must",
                        "PENALTY", "reservation must", "lease must")):
        return InvalidArgument(text)
    return CommandError(text)
