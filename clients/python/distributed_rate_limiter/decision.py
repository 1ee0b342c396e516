"""What every check returns, whatever path decided it, and the HTTP headers it implies."""

from dataclasses import dataclass
from functools import cached_property
from typing import Optional, Union

# Which path took a decision (counted by stats()).
PATHS = ("redis", "lua", "local", "cached", "failed_open", "failed_closed")


def _ceil_s(ms):
    return -(-ms // 1000)


def own_reset_bound_ms(lim, remaining, reset_after_ms):
    """The `t` of a RateLimit item for limit `lim`: when that limit alone is empty again, at
    most. Every path replies `reset_after_ms` until *every* limit is empty (the module's,
    since issue 17), which under a day-long limit beside a per-second one would tell the
    per-second item a day. `remaining` is at most this limit's own, so a GCRA bucket holds at
    most (burst - remaining) emission intervals of backlog (an upper bound, exact within one
    interval); a SLIDING window is empty one window after its last entry. Never more than
    `reset_after_ms` (exact for a key with one limit)."""
    if lim.kind == "gcra":
        bound = -(-max(lim.burst - remaining, 0) * lim.window_ms // lim.limit)
    elif lim.kind == "sliding":
        bound = lim.window_ms
    else:  # a lease can be renewed past its window: only the key's own number holds
        return reset_after_ms
    return min(reset_after_ms, bound)


def headers_for(allowed, limit, remaining, retry_after_ms, reset_after_ms, binding=0, policy=None):
    """RateLimit-Policy, RateLimit (draft-ietf-httpapi-ratelimit-headers) and Retry-After
    (RFC 9110, whole seconds rounded up). `policy`: the enforced limits (a tuple of Limit),
    one policy item each (`default` for one limit, `l0`, `l1`, ... for several), with
    `q=<limit>;w=<window in s>` (a CONCURRENCY limit has no window of requests, only a
    lease's lifetime: `q=<leases>` alone); None when the client does not know it: then one
    item, `q=<limit>` of the reply and no `w=`. The RateLimit item describes the binding
    limit, its `t` that limit's own reset (own_reset_bound_ms)."""
    if policy:
        names = ["default"] if len(policy) == 1 else [f"l{i}" for i in range(len(policy))]
        items = [f'"{n}";q={lim.limit}' + ("" if lim.kind == "concurrency" else f";w={_ceil_s(lim.window_ms)}")
                 for n, lim in zip(names, policy)]
        binding = binding if binding < len(names) else 0
        name = names[binding]
        reset_after_ms = own_reset_bound_ms(policy[binding], remaining, reset_after_ms)
    else:
        items, name = [f'"default";q={limit}'], "default"
    h = {"RateLimit-Policy": ", ".join(items),
         "RateLimit": f'"{name}";r={remaining};t={_ceil_s(reset_after_ms)}'}
    if not allowed and retry_after_ms >= 0:
        h["Retry-After"] = str(_ceil_s(retry_after_ms))
    return h


@dataclass(frozen=True)
class Decision:
    """A check's answer. `limit` is the binding limit's capacity (a GCRA burst, a SLIDING
    limit); `retry_after_ms` is -1 when allowed or when the request can never pass;
    `binding` the 0-based index of the limit that decided (0 for one limit); `path` says who
    decided: redis (the module), lua, local, cached (the deny cache), failed_open,
    failed_closed; `policy` the enforced limits when known (a tuple of Limit), else None.
    `reservation` (reserve) and `lease` (acquire): the id to settle or release, None when
    nothing was taken; an int from Redis, or a string 'L<n>' from the local limiter."""

    allowed: bool
    limit: int
    remaining: int
    retry_after_ms: int
    reset_after_ms: int
    path: str = "redis"
    binding: int = 0
    policy: Optional[tuple] = None
    reservation: Union[int, str, None] = None
    lease: Union[int, str, None] = None

    def __bool__(self):
        return self.allowed

    @cached_property
    def headers(self):
        """RateLimit-Policy, RateLimit and (when denied) Retry-After, built on first use (a
        plain is_allowed never pays for them)."""
        return headers_for(self.allowed, self.limit, self.remaining, self.retry_after_ms, self.reset_after_ms,
                           self.binding, self.policy)

    @classmethod
    def of(cls, allowed, limit, remaining, retry_after_ms, reset_after_ms, path, binding=0, policy=None,
           reservation=None, lease=None):
        return cls(bool(allowed), limit, remaining, retry_after_ms, reset_after_ms, path, binding, policy,
                   reservation, lease)
