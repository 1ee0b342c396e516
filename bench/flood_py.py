"""The flood benchmark for the Python client (issue 18, item 14): one limiter instance
hammering one denied key for a fixed time, with the deny cache (default, 1 s) and without it
(deny_cache_max_ms=0), on the module and on the Lua path. Reports the checks made, the Redis
calls the server received (INFO commandstats) and the client-side p50/p99 per check.

    RL_MODULE=target/release/librl.so python3 bench/flood_py.py [--seconds 10] [--out bench/flood_py.md]
"""

import argparse
import datetime
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "clients" / "python"))
sys.path.insert(0, str(ROOT / "clients" / "conformance"))

import redis  # noqa: E402

from distributed_rate_limiter import DistributedRateLimiter  # noqa: E402
from harness import Server  # noqa: E402


def pct(samples, q):
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))]


def flood(port, seconds, deny_cache_max_ms):
    """(checks, Redis calls, p50 us, p99 us, admitted) for `seconds` of is_allowed on one
    key of 1 per minute, its one request already used."""
    r = redis.Redis(port=port, protocol=2)
    rl = DistributedRateLimiter(r, timeout_ms=1000, deny_cache_max_ms=deny_cache_max_ms,
                                prefix=f"flood{deny_cache_max_ms}:")
    rl.configure_rate_limit("spammer", 1, 60_000)
    rl.is_allowed("spammer")
    r.config_resetstat()
    samples, admitted = [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.perf_counter_ns()
        admitted += rl.is_allowed("spammer")
        samples.append(time.perf_counter_ns() - t0)
    calls = sum(v["calls"] for k, v in r.info("commandstats").items()
                if k.startswith(("cmdstat_rl.", "cmdstat_evalsha", "cmdstat_eval")))
    return len(samples), calls, statistics.median(samples) / 1000, pct(samples, 0.99) / 1000, admitted


def commit():
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--out", help="also write the table to this Markdown file")
    args = ap.parse_args()
    rows = []
    for module in (True, False):
        server = Server(module=module).start()
        try:
            for cache_ms in (1000, 0):
                checks, calls, p50, p99, admitted = flood(server.port, args.seconds, cache_ms)
                rows.append((("module" if module else "Lua"), cache_ms, checks, calls, p50, p99, admitted))
                print(rows[-1], flush=True)
        finally:
            server.cleanup()
    head = (f"Flood on one denied key (1 per minute), one Python limiter, {args.seconds:.0f} s each; commit "
            f"{commit()}, {datetime.date.today()}, redis-py {redis.__version__}, `python3 bench/flood_py.py`.\n\n"
            "| path | deny cache | checks | Redis calls received | checks per Redis call | p50 µs | p99 µs |"
            " admitted |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
    lines = [f"| {p} | {'%d ms' % c if c else 'off'} | {n} | {k} | {n / max(k, 1):.0f} | {a:.1f} | {b:.1f} | {adm} |"
             for p, c, n, k, a, b, adm in rows]
    table = head + "\n".join(lines) + "\n"
    print(table)
    if args.out:
        Path(args.out).write_text("# The Python client under a flood (issue 18)\n\n" + table)


if __name__ == "__main__":
    main()
