"""Bytes per key of issue 19 and 20's state: a configured key with 0, 1 and 64 open holds, a
block, and CONCURRENCY keys holding 1, 2, 100 and 1000 leases (the most a limit admits). A few
seconds per case.

    python3 bench/bytes_ops.py [--module target/release/librl.so]

Each case creates KEYS keys through the commands on a fresh server and reports the
used_memory delta per key and MEMORY USAGE of one key. Prints a markdown table.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import harness  # noqa: E402

HOUR = 3_600_000
KEYS = 1000

# name: (RL.CONFIG arguments after the key, [command after the key] * how many)
CASES = {
    "configured GCRA 1000/h, no hold": ([1000, HOUR], []),
    "configured GCRA 1000/h, 1 open hold": ([1000, HOUR], [("RL.RESERVE", 1)]),
    "configured GCRA 1000/h, 64 open holds": ([1000, HOUR], [("RL.RESERVE", 1)] * 64),
    "configured GCRA 1000/h, blocked (RL.BLOCK)": ([1000, HOUR], [("RL.BLOCK", HOUR)]),
    "CONCURRENCY limit 2, 1 lease": ([2, HOUR, "CONCURRENCY"], [("RL.ACQUIRE",)]),
    "CONCURRENCY limit 2, 2 leases": ([2, HOUR, "CONCURRENCY"], [("RL.ACQUIRE",)] * 2),
    "CONCURRENCY limit 100, 100 leases": ([100, HOUR, "CONCURRENCY"], [("RL.ACQUIRE",)] * 100),
    "CONCURRENCY limit 1000, 1000 leases": ([1000, HOUR, "CONCURRENCY"], [("RL.ACQUIRE",)] * 1000),
    "100/min AND 2 CONCURRENCY, 2 leases":
        ([100, 60_000, "AND", 2, HOUR, "CONCURRENCY"], [("RL.ACQUIRE",)] * 2),
}


def measure(s, config, calls, keys):
    c = s.client()
    c.flushall()
    base = c.info("memory")["used_memory"]
    for first in range(0, keys, 50):
        p = c.pipeline(transaction=False)
        for i in range(first, min(first + 50, keys)):
            key = f"rl:{i:012d}"
            p.execute_command("RL.CONFIG", key, *config)
            for name, *args in calls:
                p.execute_command(name, key, *args)
        p.execute()
    delta = c.info("memory")["used_memory"] - base
    return delta / keys, c.memory_usage("rl:000000000042", samples=0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--module", default=str(HERE.parent / "target" / "release" / "librl.so"))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp())
    started = time.time()
    rows = []
    harness._tests.MODULE = Path(args.module).resolve()  # render_config reads it
    for n, (name, (config, calls)) in enumerate(CASES.items()):
        s = harness.BenchServer(work / f"s{n}", pin=False).start()
        try:
            keys = KEYS if len(calls) < 100 else 100  # 1000 keys of 1000 leases would be slow
            rows.append((name, keys, *measure(s, config, calls, keys)))
        finally:
            s.stop()
    print(f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}, module "
          f"`{Path(args.module).name}`.\n")
    print("| key | keys | bytes per key | MEMORY USAGE |")
    print("| --- | ---: | ---: | ---: |")
    for name, keys, per_key, usage in rows:
        print(f"| {name} | {keys} | {per_key:.0f} | {usage} |")


if __name__ == "__main__":
    main()
