"""Bytes per key of every kind of key, for two builds of the module side by side (issue 17:
"no case grows"). About half a minute.

    python3 bench/bytes.py --before /path/old/librl.so --after target/release/librl.so

Each case creates KEYS keys through the commands (the state each command leaves, at one
instant: a SLIDING log holds its requests in one ms) on a fresh server per case and module, then
reports the used_memory delta per key and MEMORY USAGE of one key. Prints a markdown table.
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
KEYS = 10_000

# name: (RL.CONFIG arguments after the key or None, RL.ALLOW arguments after the key, calls)
CASES = {
    "usage-only, default policy (one GCRA limit)": (None, [], 1),
    "usage-only, inline GCRA whose fraction needs 16 bytes (limit 1021)":
        (None, ["LIMIT", 1021, "WINDOW", 1021 * 86_400_000 + 11], 1),
    "configured, one GCRA limit": ([100, 60_000], [], 1),
    "configured, one GCRA limit with IDLE": ([100, 60_000, "IDLE", HOUR], [], 1),
    "usage-only, SLIDING limit 10, 10 requests": (None, ["LIMIT", 10, "WINDOW", HOUR, "SLIDING"], 10),
    "usage-only, SLIDING limit 100, 100 requests":
        (None, ["LIMIT", 100, "WINDOW", HOUR, "SLIDING"], 100),
    "configured, SLIDING limit 10, 10 requests": ([10, HOUR, "SLIDING"], [], 10),
    "usage-only, two GCRA limits (AND)":
        (None, ["LIMIT", 10, "WINDOW", 1000, "AND", "LIMIT", 1000, "WINDOW", 86_400_000], 1),
    "configured, two GCRA limits (AND)": ([10, 1000, "AND", 1000, 86_400_000], [], 1),
    "configured, GCRA AND SLIDING, 5 requests":
        ([10, 1000, "AND", 1000, 86_400_000, "SLIDING"], [], 5),
    "configured, four limits": ([10, 1000, "AND", 100, 60_000, "AND", 1000, HOUR, "AND", 10_000,
                                 86_400_000], [], 1),
}


def measure(s, config, allow, calls):
    c = s.client()
    c.flushall()
    base = c.info("memory")["used_memory"]
    for first in range(0, KEYS, 500):
        p = c.pipeline(transaction=False)
        for i in range(first, min(first + 500, KEYS)):
            key = f"rl:{i:012d}"
            if config is not None:
                p.execute_command("RL.CONFIG", key, *config)
            for _ in range(calls):
                p.execute_command("RL.ALLOW", key, *allow)
        p.execute()
    delta = c.info("memory")["used_memory"] - base
    return delta / KEYS, c.memory_usage("rl:000000000042", samples=0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", required=True)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp())
    got = {}
    started = time.time()
    for n, (name, case) in enumerate(CASES.items()):
        for label, module in (("before", args.before), ("after", args.after)):
            # A fresh server per case: the delta then includes the same hash table growth.
            harness._tests.MODULE = Path(module).resolve()  # render_config reads it
            s = harness.BenchServer(work / f"{label}{n}", pin=False,
                                    **{"rl.default-limit": 100,
                                       "rl.default-window-ms": 60_000}).start()
            try:
                got[(name, label)] = measure(s, *case)
            finally:
                s.stop()
    print(f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}, {KEYS} keys per "
          f"case (keys `rl:` + 12 digits), before: `{Path(args.before).name}`, after: "
          f"`{Path(args.after).name}`.\n")
    print("| key | bytes per key before | after | MEMORY USAGE before | after |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in CASES:
        (b, bm), (a, am) = got[(name, "before")], got[(name, "after")]
        print(f"| {name} | {b:.0f} | {a:.0f} | {bm} | {am} |")


if __name__ == "__main__":
    main()
