"""Instructions per pair under callgrind, and bytes per key, for issue 19 and 20's pairs
against the usual Lua recipes (a few minutes):

- RL.RESERVE + RL.SETTLE against the same pair as two Lua scripts over a hash (a GCRA TAT, a
  sequence and one field per open hold);
- RL.ACQUIRE + RL.RELEASE against the sorted-set semaphore (a script that drops expired
  members, counts, and ZADDs with the expiry as score; release is ZREM).

    python3 bench/ops_profile.py [--module target/release/librl.so] [--pairs 5000]

Each case runs on its own redis-server under callgrind collecting only inside the commands'
own functions (the module dispatcher, EVALSHA with the commands its script calls, ZREM), as
bench/profile.sh does. The client sends each batch of 100 first halves (on 100 keys) in one
pipeline, then the 100 second halves with the ids the first replied. Prints a markdown table.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

HERE = Path(__file__).resolve().parent
COLLECT = ["RedisModuleCommandDispatcher", "evalShaCommand", "zremCommand"]
WINDOW = 60_000
BATCH = 100

RESERVE_LUA = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local limit, window, cost, hold = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local period = window / limit
local tat = math.max(tonumber(redis.call('HGET', KEYS[1], 'tat') or now), now)
local new = tat + cost * period
if new - now > window then return {0, false} end
local id = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('HSET', KEYS[1], 'tat', new, 'h' .. id, cost .. ':' .. (now + hold))
redis.call('PEXPIRE', KEYS[1], math.max(math.ceil(new - now), hold))
return {1, id}
"""

SETTLE_LUA = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local limit, window, id, actual = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local h = redis.call('HGET', KEYS[1], 'h' .. id)
if not h then return redis.error_reply('unknown reservation') end
local estimate, expires = string.match(h, '^(%d+):(%d+)$')
if tonumber(expires) <= now then return redis.error_reply('unknown reservation') end
redis.call('HDEL', KEYS[1], 'h' .. id)
local period = window / limit
local tat = math.max(tonumber(redis.call('HGET', KEYS[1], 'tat') or now), now)
local d = actual - tonumber(estimate)
if d < 0 then tat = math.max(now, tat + d * period) else tat = math.min(tat + d * period, now + window) end
redis.call('HSET', KEYS[1], 'tat', tat)
return d
"""

ACQUIRE_LUA = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local limit, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[3])
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Profiled:
    """redis-server with the module under callgrind, stopped by PID."""

    def __init__(self, module, out):
        self.port, self.out = free_port(), out
        toggles = [f"--toggle-collect={fn}" for fn in COLLECT]
        self.proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--collect-atstart=no", *toggles,
             f"--callgrind-out-file={out}", "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--loadmodule", module],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.c = redis.Redis(port=self.port, protocol=2)
        deadline = time.monotonic() + 120
        while True:
            try:
                self.c.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise
                time.sleep(0.2)

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=300)

    def instructions(self):
        text = subprocess.run(["callgrind_annotate", "--inclusive=no", self.out], capture_output=True,
                              text=True).stdout
        for line in text.splitlines():
            if "PROGRAM TOTALS" in line:
                return int(line.split()[0].replace(",", ""))
        raise RuntimeError(f"no totals in {self.out}")


def pairs(c, first, second, n):
    """Runs n pairs: `first(p, key)` queued for BATCH keys, then `second(p, key, reply)`."""
    done = 0
    while done < n:
        keys = [f"rl:{(done + i) % 1000}" for i in range(BATCH)]
        p = c.pipeline(transaction=False)
        for k in keys:
            first(p, k)
        replies = p.execute()
        p = c.pipeline(transaction=False)
        for k, reply in zip(keys, replies):
            second(p, k, reply)
        p.execute()
        done += BATCH


def cases(c):
    reserve_sha, settle_sha = c.script_load(RESERVE_LUA), c.script_load(SETTLE_LUA)
    acquire_sha = c.script_load(ACQUIRE_LUA)
    inline = ("LIMIT", 1_000_000, "WINDOW", WINDOW)
    return {
        "RL.RESERVE + RL.SETTLE": (
            lambda p, k: p.execute_command("RL.RESERVE", k, 5, *inline),
            lambda p, k, r: p.execute_command("RL.SETTLE", k, r[6], 3),
            lambda c: c.execute_command("RL.RESERVE", "one", 5, *inline)),
        "Lua over a hash: reserve + settle (EVALSHA x2)": (
            lambda p, k: p.evalsha(reserve_sha, 1, k, 1_000_000, WINDOW, 5, 300_000),
            lambda p, k, r: p.evalsha(settle_sha, 1, k, 1_000_000, WINDOW, r[1], 3),
            lambda c: c.evalsha(reserve_sha, 1, "one", 1_000_000, WINDOW, 5, 300_000)),
        "RL.ACQUIRE + RL.RELEASE (CONCURRENCY 2)": (
            lambda p, k: p.execute_command("RL.ACQUIRE", k, "LIMIT", 2, "WINDOW", WINDOW, "CONCURRENCY"),
            lambda p, k, r: p.execute_command("RL.RELEASE", k, r[6]),
            lambda c: [c.execute_command("RL.ACQUIRE", "one", "LIMIT", 2, "WINDOW", WINDOW, "CONCURRENCY")
                       for _ in range(2)]),
        "sorted-set semaphore: acquire (EVALSHA) + ZREM": (
            lambda p, k: p.evalsha(acquire_sha, 1, k, 2, WINDOW, f"{k}:worker"),
            lambda p, k, r: p.zrem(k, f"{k}:worker"),
            lambda c: [c.evalsha(acquire_sha, 1, "one", 2, WINDOW, f"worker-{i}-1f0e3dad99908345f7439f8ffabdffc4")
                       for i in range(2)]),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--module", default=str(HERE.parent / "target" / "release" / "librl.so"))
    ap.add_argument("--pairs", type=int, default=5000)
    args = ap.parse_args()
    module = str(Path(args.module).resolve())
    work = Path(tempfile.mkdtemp())
    rows = []
    for i in range(4):
        s = Profiled(module, str(work / f"callgrind.{i}"))
        try:
            name, (first, second, one) = list(cases(s.c).items())[i]
            pairs(s.c, first, second, args.pairs)
            one(s.c)  # one key holding one open hold (or both leases), for MEMORY USAGE
            usage = s.c.memory_usage("one", samples=0)
        finally:
            s.stop()
        rows.append((name, s.instructions() / args.pairs, usage))
    print(f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, module `{Path(module).name}`, "
          f"{args.pairs} pairs per case on 1000 keys, batches of {BATCH}.\n")
    print("| pair | instructions per pair | MEMORY USAGE of a key holding it (1 hold / 2 leases) |")
    print("| --- | ---: | ---: |")
    for name, per_pair, usage in rows:
        print(f"| {name} | {per_pair:,.0f} | {usage} |")


if __name__ == "__main__":
    sys.exit(main())
