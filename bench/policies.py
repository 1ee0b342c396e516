"""Issue 11's figures in one short run (about a minute): what SLIDING limits and sets of
limits cost per RL.ALLOW and per client, and that the single-GCRA RL.ALLOW did not change.

    python3 bench/policies.py --before /path/old/librl.so --after target/release/librl.so

Throughput: redis-benchmark (50 clients, -P 16) on one server per module, server µs per
call from INFO commandstats, interleaved repeats (median). Memory: N usage-only clients per
case, used_memory delta / N and MEMORY USAGE of one. A SLIDING log's size depends on how many
distinct milliseconds it holds: "worst" gives each of the `limit` requests its own ms (a
state written through RESTORE, as the commands would leave it), "one ms" puts them all in one.
The ZSET is bench/lua's sliding log filled as bench/run.py fills it. Prints a markdown table.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import harness  # noqa: E402
from payload import build_dump, parse_dump  # noqa: E402

HOUR = 3_600_000
KEYS = 10_000


def server(module, workdir):
    harness._tests.MODULE = Path(module).resolve()  # render_config reads it
    return harness.BenchServer(workdir).start()


def usec(s, command, stat, requests, keyspace=KEYS):
    c = s.client()
    c.flushall()
    if "<sha>" in command:
        sha = c.script_load(LUA)
        command = [sha if a == "<sha>" else a for a in command]
    c.config_resetstat()
    harness.benchmark(s.port, command, requests=requests, keyspace=keyspace, pipeline=16)
    return harness.usec_per_call(c, stat)


THROUGHPUT = {
    "RL.ALLOW, one GCRA limit, inline (10 per hour)":
        (["RL.ALLOW", "rl:__rand_int__", "LIMIT", "10", "WINDOW", str(HOUR)], "rl.allow"),
    "RL.ALLOW, SLIDING limit 10 per second, inline":
        (["RL.ALLOW", "rl:__rand_int__", "LIMIT", "10", "WINDOW", "1000", "SLIDING"], "rl.allow"),
    "RL.ALLOW, SLIDING limit 100 per second, inline":
        (["RL.ALLOW", "rl:__rand_int__", "LIMIT", "100", "WINDOW", "1000", "SLIDING"], "rl.allow"),
    "RL.ALLOW, 2 limits (10/s GCRA AND 1000/day SLIDING), inline":
        (["RL.ALLOW", "rl:__rand_int__", "LIMIT", "10", "WINDOW", "1000", "AND", "LIMIT", "1000",
          "WINDOW", "86400000", "SLIDING"], "rl.allow"),
    "SET k v PX 60000 (floor)": (["SET", "rl:__rand_int__", "v", "PX", "60000"], "set"),
}
LUA = (HERE / "lua" / "sliding_log.lua").read_text()
for limit in (10, 100):
    THROUGHPUT[f"Lua sliding log (ZSET), limit {limit} per second, EVALSHA"] = (
        ["EVALSHA", "<sha>", "1", "rl:__rand_int__", str(limit), "1000"], "evalsha")
NEW_ONLY = {k for k in THROUGHPUT if "SLIDING" in k or "Lua" in k}


def memory_sliding(s, limit, distinct, n=KEYS):
    """Bytes per usage-only SLIDING client holding `limit` requests (each in its own ms if
    `distinct`, else all in one), via RESTORE of the state the commands leave."""
    c = s.client()
    c.flushall()
    c.execute_command("RL.ALLOW", "probe", "LIMIT", limit, "WINDOW", HOUR, "SLIDING")
    module_id, _, version = parse_dump(c.dump("probe"))
    c.delete("probe")
    now = int(time.time() * 1000)
    if distinct:
        entries = [f for j in range(limit) for f in (j, 1)]
        fields = [0, 0, 1, 2, 1, 1, now - limit, limit, *entries, 0]
    else:
        fields = [0, 0, 1, 2, 1, 1, now, 1, 0, limit, 0]
    payload = build_dump(module_id, fields, version)
    base = c.info("memory")["used_memory"]
    p = c.pipeline(transaction=False)
    for i in range(n):
        p.restore(f"rl:{i:012d}", HOUR, payload)
    p.execute()
    delta = c.info("memory")["used_memory"] - base
    return delta / n, c.memory_usage("rl:000000000042", samples=0)


def memory_zset(s, limit, n=KEYS):
    c = s.client()
    c.flushall()
    fill = (HERE / "lua" / "fill_sliding_log.lua").read_text()
    base = c.info("memory")["used_memory"]
    for first in range(0, n, 1000):
        c.eval(fill, 0, first, min(first + 999, n - 1), limit, HOUR)
    delta = c.info("memory")["used_memory"] - base
    return delta / n, c.memory_usage("rl:000000000042", samples=0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True, help="the module before issue 11")
    ap.add_argument("--after", required=True, help="the module with issue 11")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--requests", type=int, default=200_000)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp())
    before = server(args.before, work / "before")
    after = server(args.after, work / "after")
    started = time.time()
    try:
        got = {}
        for _ in range(args.repeats):
            for name, (command, stat) in THROUGHPUT.items():
                for label, s in (("before", before), ("after", after)):
                    if label == "before" and name in NEW_ONLY:
                        continue
                    got.setdefault((name, label), []).append(usec(s, command, stat, args.requests))
        mem = {}
        for limit in (10, 100):
            mem[f"SLIDING limit {limit}, each request in its own ms"] = memory_sliding(after, limit, True)
            mem[f"SLIDING limit {limit}, all in one ms"] = memory_sliding(after, limit, False)
            mem[f"Lua sliding log (ZSET), limit {limit}"] = memory_zset(after, limit)
    finally:
        before.stop()
        after.stop()
    set_us = statistics.median(got[("SET k v PX 60000 (floor)", "after")])
    print(f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}, "
          f"{time.time() - started:.0f} s, {args.repeats} interleaved repeats of "
          f"{args.requests} requests, {KEYS} keys, 50 clients, -P 16; median server µs per call.\n")
    print("| command | before (µs) | after (µs) | after × SET PX |")
    print("| --- | ---: | ---: | ---: |")
    for name in THROUGHPUT:
        b = got.get((name, "before"))
        a = statistics.median(got[(name, "after")])
        bs = f"{statistics.median(b):.2f}" if b else "-"
        print(f"| {name} | {bs} | {a:.2f} | {a / set_us:.2f} |")
    print("\n| client state | bytes per client (used_memory) | MEMORY USAGE of one |")
    print("| --- | ---: | ---: |")
    for name, (per, one) in mem.items():
        print(f"| {name} | {per:,.0f} | {one:,} |")


if __name__ == "__main__":
    main()
