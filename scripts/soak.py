#!/usr/bin/env python3
"""A bounded soak of the module on loopback: a master and a replica started by the test
harness (tests/server.py) in a temporary directory, many client threads sending a mixed
stream of RL.ALLOW (default, stored and inline policies, COST), RL.THROTTLE, RL.PEEK,
RL.CONFIG, RL.RESET and RL.INFO over 12,000 keys whose short windows make them churn and
expire, and a sampler that records used_memory, DBSIZE, ops/s and rl_live_buckets.

It passes when: no call got an unexpected error, memory is flat (the last third's mean of
used_memory net of client buffers, the replication backlog and the live keys within
--flat-percent of the middle third's), and once writes stop and expiry has settled
the replica's DEBUG DIGEST equals the master's. Exit status 0 on success, 1 on failure.

    scripts/soak.py              # 5 minutes
    scripts/soak.py --seconds 60
    scripts/soak.py --smoke      # about 20 s, for CI (tests/test_soak_smoke.py)

RL.INFO goes through a reader that does not trust a reply's declared length
(tests/resp.py's RawConnection): a reply that announces more elements than it sends
is counted as an error instead of hanging the client.
"""

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import redis  # noqa: E402

from helpers import HOUR  # noqa: E402
from resp import RawConnection  # noqa: E402
from server import RedisServer  # noqa: E402

# Key spaces: short-lived ones churn (they expire within ~3 s of their last write); p:* (stored
# policies without IDLE) and l:* (hour-long windows) outlive the run and are compared.
USAGE, DEFAULT, IDLE, POLICY, LONG = 8000, 2000, 1000, 500, 500
SHORT_PREFIXES = ("u:", "d:", "c:")


def key(rng):
    r = rng.random()
    if r < 0.55:
        return f"u:{rng.randrange(USAGE)}"
    if r < 0.70:
        return f"d:{rng.randrange(DEFAULT)}"
    if r < 0.85:
        return f"c:{rng.randrange(IDLE)}"
    if r < 0.95:
        return f"p:{rng.randrange(POLICY)}"
    return f"l:{rng.randrange(LONG)}"


def inline(rng, k):
    """The inline policy a key is used with: short windows, except l:* (an hour); limit 1021
    over 2000 ms gives a TAT fraction with a large denominator (heap layout)."""
    if k.startswith("l:"):
        return ["LIMIT", 10, "WINDOW", HOUR]
    if k.startswith("u:"):
        limit, window = rng.choice([(5, 200), (10, 1000), (1021, 2000), (3, 1000)])
        return ["LIMIT", limit, "WINDOW", window]
    return []


def operation(rng):
    k, r = key(rng), rng.random()
    cost = ["COST", rng.randint(1, 3)] if rng.random() < 0.2 else []
    if k[0] in "cp" and r < 0.08:
        idle = ["IDLE", rng.randint(1000, 2000)] if k.startswith("c:") else []
        return ["RL.CONFIG", k, rng.choice([10, 20, 7]), rng.choice([1000, 2000]), *idle]
    if r < 0.60:
        return ["RL.ALLOW", k, *cost, *inline(rng, k)]
    if r < 0.80:
        return ["RL.THROTTLE", k, *cost, *inline(rng, k)]
    if r < 0.95:
        return ["RL.PEEK", k, *inline(rng, k)]
    return ["RL.RESET", k]


class Soak:
    def __init__(self, master, replica, threads, seconds, interval, batch):
        self.master, self.replica = master, replica
        self.threads, self.seconds, self.interval, self.batch = threads, seconds, interval, batch
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ops, self.by_command, self.errors = 0, Counter(), Counter()
        self.samples = []

    def record(self, calls, replies):
        with self.lock:
            self.ops += len(calls)
            for call, reply in zip(calls, replies):
                self.by_command[call[0]] += 1
                if isinstance(reply, Exception):
                    self.errors[f"{call[0]}: {type(reply).__name__}: {str(reply)[:80]}"] += 1

    def client(self, seed):
        rng = random.Random(seed)
        c = self.master.client(socket_timeout=60)
        raw = RawConnection(self.master.port, timeout=60)
        try:
            while not self.stop.is_set():
                calls = [operation(rng) for _ in range(self.batch)]
                p = c.pipeline(transaction=False)
                for call in calls:
                    p.execute_command(*call)
                try:
                    replies = p.execute(raise_on_error=False)
                except redis.RedisError as e:  # a connection-level failure: always unexpected
                    replies = [e] * len(calls)
                self.record(calls, replies)
                if rng.random() < 0.2:
                    k = key(rng)
                    reply, declared, sent = raw.call("RL.INFO", k)
                    if declared != sent:
                        reply = ValueError(f"announced {declared} elements, sent {sent}")
                    self.record([["RL.INFO", k]], [reply])
        except Exception as e:  # noqa: BLE001 - counted as a failure
            with self.lock:
                self.errors[f"client thread died: {type(e).__name__}: {e}"[:120]] += 1
        finally:
            c.close()
            raw.close()

    def sample(self, m, r, started):
        tx = m.pipeline(transaction=True)  # one instant: keys churn by thousands per second
        tx.info("memory")
        tx.info("rl")
        tx.info("replication")
        tx.dbsize()
        mem, rl, repl, dbsize = tx.execute()
        lag = repl["master_repl_offset"] - repl.get("slave0", {}).get("offset", 0)
        with self.lock:
            ops = self.ops
        self.samples.append({
            "t": time.monotonic() - started, "ops": ops, "used_memory": mem["used_memory"],
            "clients_memory": mem["mem_clients_normal"] + mem["mem_clients_slaves"],
            # The replication backlog fills up to repl-backlog-size (1 MB on Redis 7.0, 10 MB
            # on Valkey) as writes flow: a buffer of fixed size, not the data set's growth.
            "backlog_memory": mem["mem_replication_backlog"],
            "dbsize": dbsize, "live": rl["rl_live_buckets"], "replica_dbsize": r.dbsize(),
            "lag": lag})

    def run(self):
        m, r = self.master.client(), self.replica.client()
        workers = [threading.Thread(target=self.client, args=(n,), daemon=True)
                   for n in range(self.threads)]
        started = time.monotonic()
        for w in workers:
            w.start()
        self.sample(m, r, started)
        while time.monotonic() - started < self.seconds:
            time.sleep(min(self.interval, max(0.0, self.seconds - (time.monotonic() - started))))
            self.sample(m, r, started)
        self.stop.set()
        for w in workers:
            w.join(120)
        return m, r


def settle_and_compare(m, r, timeout=120):
    """Digests after writes have stopped and expiry has settled.

    A replica never expires keys by itself: it waits for the master's DEL, and DEBUG DIGEST
    covers every key it stores, logically expired or not. While the master still holds
    short-lived keys that are due but not yet removed by active expiry, the two digests may
    differ for that reason alone. So: wait until no short-lived key (u:, d:, c:; all due
    within ~3 s of the last write) is left on the master (SCAN also expires due keys it
    meets, which propagates their DELs), WAIT for the replica to acknowledge everything,
    then compare. What remains is p:* (stored policies, no expiry) and l:* (hour windows,
    an absolute expiry carried by RL.APPLY): the same on both sides, to the digest."""
    deadline = time.monotonic() + timeout
    while any(k.startswith(tuple(p.encode() for p in SHORT_PREFIXES))
              for k in m.scan_iter(count=1000)):
        if time.monotonic() > deadline:
            return False, "short-lived keys never expired on the master"
        time.sleep(0.5)
    while m.wait(1, 5000) < 1:
        if time.monotonic() > deadline:
            return False, "the replica never acknowledged"
    while True:
        same = (m.execute_command("DEBUG", "DIGEST") == r.execute_command("DEBUG", "DIGEST")
                and m.dbsize() == r.dbsize())
        # Every key is a ratelimit value, and every value is in a key.
        live = [c.info("rl")["rl_live_buckets"] for c in (m, r)]
        same = same and live == [m.dbsize(), r.dbsize()]
        if same or time.monotonic() > deadline:
            return same, (f"{m.dbsize()} keys and {live[0]} live buckets on the master, "
                          f"{r.dbsize()} and {live[1]} on the replica")
        time.sleep(0.5)  # the last DELs may still be in flight after WAIT


def thirds(values):
    n = len(values) // 3
    return statistics.mean(values[n:2 * n]), statistics.mean(values[2 * n:])


def net_of_keys(data, keys):
    """`data` less what the live keys explain: the bytes per key are the least-squares slope
    of data against the key count over the run. How many keys are live depends on how fast
    the clients run (short windows churn), and so on how busy the machine is; a leak grows
    with the calls made, whatever the key count. (bytes per key, adjusted data)"""
    mean_keys, mean_data = statistics.mean(keys), statistics.mean(data)
    spread = sum((k - mean_keys) ** 2 for k in keys)
    covariance = sum((k - mean_keys) * (d - mean_data) for k, d in zip(keys, data))
    per_key = max(0.0, covariance / spread) if spread else 0.0
    return per_key, [d - per_key * (k - mean_keys) for d, k in zip(data, keys)]


def report(soak, digest_ok, digest_note, flat_percent):
    s = soak.samples
    print(f"\n{'t (s)':>7} {'ops/s':>8} {'used_memory':>12} {'clients mem':>12} {'backlog':>9} {'dbsize':>7} "
          f"{'live':>7} {'replica':>7} {'lag (B)':>8}")
    for prev, cur in zip(s, s[1:]):
        rate = (cur["ops"] - prev["ops"]) / max(cur["t"] - prev["t"], 1e-9)
        print(f"{cur['t']:7.1f} {rate:8.0f} {cur['used_memory']:12d} {cur['clients_memory']:12d} {cur['backlog_memory']:9d} "
              f"{cur['dbsize']:7d} {cur['live']:7d} {cur['replica_dbsize']:7d} {cur['lag']:8d}")
    memory = [x["used_memory"] for x in s[1:]]
    data = [x["used_memory"] - x["clients_memory"] - x["backlog_memory"] for x in s[1:]]
    per_key, net = net_of_keys(data, [x["dbsize"] for x in s[1:]])
    mid, last = thirds(memory)
    data_mid, data_last = thirds(data)
    net_mid, net_last = thirds(net)
    drift = (last - mid) / mid * 100
    data_drift = (data_last - data_mid) / data_mid * 100
    net_drift = (net_last - net_mid) / net_mid * 100
    elapsed = s[-1]["t"] - s[0]["t"]
    failures = []
    if soak.errors:
        failures.append("unexpected errors")
    if abs(net_drift) > flat_percent:
        failures.append(f"memory not flat ({net_drift:+.1f}% > {flat_percent}%)")
    if not digest_ok:
        failures.append("replica digest differs")
    print(f"\nops: {soak.ops} in {elapsed:.0f} s ({soak.ops / elapsed:.0f}/s): "
          + ", ".join(f"{k} {v}" for k, v in sorted(soak.by_command.items())))
    print(f"unexpected errors: {sum(soak.errors.values())}")
    for what, n in soak.errors.most_common(10):
        print(f"  {n:8d}  {what}")
    print(f"used_memory: min {min(memory)}, max {max(memory)}; mean of middle third {mid:.0f}, of "
          f"last third {last:.0f} ({drift:+.1f}%)")
    print(f"replication backlog: max {max(x['backlog_memory'] for x in s[1:])}")
    print(f"used_memory without client buffers and backlog: min {min(data)}, max {max(data)}; middle third "
          f"{data_mid:.0f}, last third {data_last:.0f} ({data_drift:+.1f}%)")
    print(f"... and without the live keys ({per_key:.0f} bytes per key): middle third {net_mid:.0f}, last third "
          f"{net_last:.0f} ({net_drift:+.1f}%, limit ±{flat_percent}%)")
    print(f"dbsize: min {min(x['dbsize'] for x in s[1:])}, max {max(x['dbsize'] for x in s[1:])}; "
          f"rl_live_buckets max {max(x['live'] for x in s)}")
    print(f"replica DEBUG DIGEST after settling: {'equal' if digest_ok else 'DIFFERENT'} "
          f"({digest_note})")
    print("RESULT: " + ("PASS" if not failures else "FAIL: " + "; ".join(failures)))
    return not failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--smoke", action="store_true", help="a ~20 s run for CI")
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--batch", type=int, default=20, help="calls per pipeline")
    ap.add_argument("--flat-percent", type=float, default=10.0)
    args = ap.parse_args()
    if args.smoke:
        args.seconds, args.interval, args.threads = 20, 2.0, 8
    workdir = Path(tempfile.mkdtemp(prefix="rl-soak-"))
    master = RedisServer(workdir / "master", repl_diskless_sync_delay=0)
    replica = RedisServer(workdir / "replica")
    ok = False
    try:
        master.start()
        replica.start()
        m, r = master.client(), replica.client()
        m.config_set("rl.default-limit", 20)
        m.config_set("rl.default-window-ms", 1000)
        r.replicaof("127.0.0.1", master.port)
        deadline = time.monotonic() + 60
        while r.info("replication").get("master_link_status") != "up":
            assert time.monotonic() < deadline, "the replica did not connect"
            time.sleep(0.1)
        print(f"soak: {args.seconds:.0f} s, {args.threads} threads, master :{master.port}, "
              f"replica :{replica.port}, {USAGE + DEFAULT + IDLE + POLICY + LONG} keys, dir {workdir}")
        soak = Soak(master, replica, args.threads, args.seconds, args.interval, args.batch)
        m, r = soak.run()
        digest_ok, note = settle_and_compare(m, r)
        ok = report(soak, digest_ok, note, args.flat_percent)
    finally:
        replica.stop()
        master.stop()
        if ok:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"logs kept in {workdir}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
