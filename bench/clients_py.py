"""The Python client's cost, three figures (issue 12):

1. client-observed latency of `is_allowed` against the raw `RL.THROTTLE` it sends, on the
   same redis-py client and connection, over loopback, interleaved so both see the same noise (p50/p99, us);
2. server time per call of the module (`rl.throttle`) against the Lua fallback (`evalsha`),
   from INFO commandstats, for the same checks through the client (us per call);
3. the local limiter's cost per decision (ns), in-process.

    RL_MODULE=target/release/librl.so python3 bench/clients_py.py [--calls N] [--smoke]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "clients" / "python"))
sys.path.insert(0, str(ROOT / "clients" / "conformance"))

import redis  # noqa: E402
from redis.backoff import NoBackoff  # noqa: E402
from redis.retry import Retry  # noqa: E402

from distributed_rate_limiter import DistributedRateLimiter, Limit, LocalLimiter  # noqa: E402
from harness import Server  # noqa: E402

KEYS = 1000  # distinct clients, each with room for every call (no denials)


def pct(samples, q):
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))]


def client_latency(port, calls):
    r = redis.Redis(port=port, protocol=2, retry=Retry(NoBackoff(), 0))
    limiter = DistributedRateLimiter(r, timeout_ms=1000)
    raw_ns, lib_ns = [], []
    for i in range(calls):
        k = f"lat:{i % KEYS}"
        t0 = time.perf_counter_ns()
        r.execute_command("RL.THROTTLE", f"rl:{k}", "LIMIT", 10**9, "WINDOW", 1000)  # what is_allowed sends
        t1 = time.perf_counter_ns()
        limiter.is_allowed(k, limit=10**9, window_ms=1000)
        t2 = time.perf_counter_ns()
        if i >= calls // 10:  # warm-up excluded
            raw_ns.append(t1 - t0)
            lib_ns.append(t2 - t1)
    assert r.connection_pool._created_connections == 1  # one connection for both
    return raw_ns, lib_ns


def server_usec(server, calls, command):
    r = redis.Redis(port=server.port, protocol=2)
    limiter = DistributedRateLimiter(r, timeout_ms=1000)
    limiter.is_allowed("warm", limit=10, window_ms=1000)
    r.config_resetstat()
    for i in range(calls):
        limiter.is_allowed(f"srv:{i % KEYS}", limit=10**6, window_ms=1000)
    stats = r.info("commandstats")[f"cmdstat_{command}"]
    return stats["usec_per_call"], stats["calls"]


def local_ns(decisions):
    now = [1_700_000_000_000]
    local = LocalLimiter(clock=lambda: now[0])
    policy = (Limit.of(3, 1000, 10),)
    keys = [f"k{i}" for i in range(KEYS)]
    t0 = time.perf_counter_ns()
    for i in range(decisions):
        now[0] += 1
        local.check(keys[i % KEYS], policy)
    return (time.perf_counter_ns() - t0) / decisions


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--smoke", action="store_true", help="a few hundred calls: checks it runs")
    args = ap.parse_args()
    calls = 300 if args.smoke else args.calls

    module = Server(module=True).start()
    plain = Server(module=False).start()
    try:
        raw, lib = client_latency(module.port, calls)
        p50r, p50l = statistics.median(raw) / 1000, statistics.median(lib) / 1000
        print(f"client latency over loopback, {len(raw)} calls each (us): "
              f"raw RL.THROTTLE p50 {p50r:.1f} p99 {pct(raw, 0.99) / 1000:.1f}; "
              f"is_allowed p50 {p50l:.1f} p99 {pct(lib, 0.99) / 1000:.1f}; "
              f"client adds {100 * (p50l - p50r) / p50r:+.1f}% to p50")
        mod_us, mod_calls = server_usec(module, calls, "rl.throttle")
        lua_us, lua_calls = server_usec(plain, calls, "evalsha")
        print(f"server time per check (INFO commandstats): module rl.throttle {mod_us:.2f} us "
              f"({mod_calls} calls), Lua fallback evalsha {lua_us:.2f} us ({lua_calls} calls), "
              f"{lua_us / mod_us:.1f}x")
    finally:
        module.cleanup()
        plain.cleanup()
    print(f"local limiter: {local_ns(calls * 5):.0f} ns per decision ({KEYS} keys, exact GCRA in Python)")


if __name__ == "__main__":
    main()
