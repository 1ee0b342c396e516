"""The brief's example in Python: after `make run` (or on a plain redis-server, through the
Lua fallback) it prints ten True and five False, and exits. REDIS_URL picks another server."""

from distributed_rate_limiter import DistributedRateLimiter

rate_limiter = DistributedRateLimiter()  # REDIS_URL, else redis://127.0.0.1:6379
rate_limiter.reset("user123")  # a fresh start on every run
rate_limiter.configure_rate_limit("user123", limit=10, window_ms=60000)
for i in range(15):
    print(f"Request {i + 1} from user123: {rate_limiter.is_allowed('user123')}")
rate_limiter.close()
