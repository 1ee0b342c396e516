"""What every check returns, whatever path decided it, and the HTTP headers it implies."""

from dataclasses import dataclass, field

# Which path took a decision (the keys of stats()["decisions"]).
PATHS = ("redis", "lua", "local", "failed_open", "failed_closed")


def _ceil_s(ms):
    return -(-ms // 1000)


def headers_for(allowed, limit, remaining, retry_after_ms, reset_after_ms, window_ms=None):
    """RateLimit / RateLimit-Policy (draft-ietf-httpapi-ratelimit-headers) and Retry-After
    (RFC 9110, whole seconds rounded up), as the top-level README's "HTTP headers" recipe.
    `w=` only when the window is known."""
    policy = f'"default";q={limit}' + (f";w={_ceil_s(window_ms)}" if window_ms else "")
    h = {"RateLimit-Policy": policy,
         "RateLimit": f'"default";r={remaining};t={_ceil_s(reset_after_ms)}'}
    if not allowed and retry_after_ms >= 0:
        h["Retry-After"] = str(_ceil_s(retry_after_ms))
    return h


@dataclass(frozen=True)
class Decision:
    """A check's answer. `limit` is the bucket's capacity (the policy's burst); retry_after_ms
    is -1 when allowed or when the request can never pass; `path` says who decided."""

    allowed: bool
    limit: int
    remaining: int
    retry_after_ms: int
    reset_after_ms: int
    path: str = "redis"
    headers: dict = field(default_factory=dict)

    def __bool__(self):
        return self.allowed

    @classmethod
    def of(cls, allowed, limit, remaining, retry_after_ms, reset_after_ms, path, window_ms=None):
        return cls(bool(allowed), limit, remaining, retry_after_ms, reset_after_ms, path,
                   headers_for(allowed, limit, remaining, retry_after_ms, reset_after_ms, window_ms))
