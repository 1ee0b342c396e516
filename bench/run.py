"""Runs every measurement of the benchmark and writes them, raw, to OUT/raw.json.

    python3 bench/run.py [--smoke] [--out DIR]

Phases, each case repeated (5 times, memory and cluster 3) and interleaved (repeat 1 of every
candidate, then repeat 2, in reverse order, ...) on one throwaway server, with FLUSHALL and CONFIG RESETSTAT before each:
  1. throughput: each candidate under redis-benchmark, with 100,000 distinct clients
     (-r 100000) and with one hot client (-r 1), pipelined (-P 16) and not (-P 1): server-side
     usec_per_call (INFO commandstats), requests/s, and latency percentiles;
  2. memory: 100,000 clients each brought to its limit, used_memory delta / clients, and
     MEMORY USAGE of one;
  3. cluster: aggregate checks/s of 1, 2, 3 masters (bench/cluster.py).
bench/report.py turns raw.json into results.md and the chart.
"""

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from candidates import CANDIDATES, LIMIT, SERVER_CONFIG, WINDOW_MS, key, load_scripts, resolve
from harness import PINNED, ROOT, BenchServer, benchmark, usec_per_call
import cluster

# Throughput cases get 5 short repeats rather than 3 long ones: on a shared machine a median
# of 5 shrugs off a neighbour's burst better. Memory figures are exact (3 repeats show it).
FULL = {"repeats": 5, "memory_repeats": 3, "cluster_repeats": 3, "clients": 100_000,
        "requests_p16": 200_000, "requests_p1": 60_000, "masters": [1, 2, 3],
        "cluster_requests": 1_000_000}
# Seconds, for CI: every code path once, on figures too small to mean anything.
SMOKE = {"repeats": 1, "memory_repeats": 1, "cluster_repeats": 1, "clients": 1000,
         "requests_p16": 2000, "requests_p1": 1000, "masters": [1], "cluster_requests": 2000}
BATCH = 2000  # clients per pipeline in the memory phase and when configuring


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def flush(client):
    client.flushall()
    client.config_resetstat()


def configure_all(client, n):
    """RL.CONFIG for every client, for the stored-policy candidate."""
    for start in range(0, n, BATCH):
        p = client.pipeline(transaction=False)
        for i in range(start, min(n, start + BATCH)):
            p.execute_command("RL.CONFIG", key(i), LIMIT, WINDOW_MS)
        p.execute()


def rl_counts(client):
    info = client.info("rl")
    return info.get("rl_checks_allowed", 0), info.get("rl_checks_denied", 0)


def throughput(server, client, shas, cfg):
    modes = [("100k", cfg["clients"], 16, cfg["requests_p16"]),
             ("100k", cfg["clients"], 1, cfg["requests_p1"]),
             ("hot", 1, 16, cfg["requests_p16"]),
             ("hot", 1, 1, cfg["requests_p1"])]
    rows = []
    for rep in range(cfg["repeats"]):
        order = CANDIDATES if rep % 2 == 0 else CANDIDATES[::-1]
        for mode, keyspace, pipeline, requests in modes:
            for cand in order:
                flush(client)
                if cand.configure:
                    configure_all(client, cfg["clients"])
                    client.config_resetstat()
                before = rl_counts(client)
                r = benchmark(server.port, resolve(cand.command, shas), requests=requests,
                              keyspace=keyspace, pipeline=pipeline)
                allowed, denied = (a - b for a, b in zip(rl_counts(client), before))
                r.update(cand=cand.name, mode=mode, pipeline=pipeline, rep=rep,
                         usec=usec_per_call(client, cand.stat),
                         denied=denied / (allowed + denied) if allowed + denied else None)
                rows.append(r)
                log(f"{cand.name:10} {mode:4} -P {pipeline:2} rep {rep}: "
                    f"{r['usec']:.3f} us/call {r['rps']:.0f} req/s")
    return rows


def used_memory(client):
    return client.info("memory")["used_memory"]


def memory_case(server, measure_client, shas, cand, n):
    """Bytes per client after bringing n clients to their limit, and MEMORY USAGE of one."""
    flush(measure_client)
    time.sleep(0.2)
    base = used_memory(measure_client)
    # A client of its own, closed before measuring: its buffers are not the clients' keys.
    c = server.client()
    if cand.fill_script:
        script, limit = cand.fill_script
        for start in range(0, n, BATCH):
            c.evalsha(shas[script], 0, start, min(n, start + BATCH) - 1, limit,
                      SERVER_CONFIG["rl.default-window-ms"])
    else:
        for start in range(0, n, BATCH):
            p = c.pipeline(transaction=False)
            for i in range(start, min(n, start + BATCH)):
                for cmd in cand.fill(i):
                    p.execute_command(*resolve(cmd, shas))
            p.execute()
    c.close()
    time.sleep(0.5)  # let serverCron finish any dict rehash (which holds two tables)
    keys = measure_client.dbsize()
    delta = used_memory(measure_client) - base
    return {"cand": cand.name, "clients": n, "keys": keys, "bytes_per_client": delta / n,
            "memory_usage": measure_client.memory_usage(key(min(42, n - 1)), samples=0)}


def log_check(measure_client, shas, limit):
    """MEMORY USAGE of a log filled by `limit` real EVALSHA calls, to compare with the
    server-side filler's."""
    k = "rl:999999999999"
    for _ in range(limit):
        measure_client.evalsha(shas["sliding_log"], 1, k, limit,
                               SERVER_CONFIG["rl.default-window-ms"])
    return {"limit": limit, "entries": measure_client.zcard(k),
            "memory_usage": measure_client.memory_usage(k, samples=0)}


def memory(server, client, shas, cfg):
    rows, checks = [], []
    for rep in range(cfg["memory_repeats"]):
        for cand in (CANDIDATES if rep % 2 == 0 else CANDIDATES[::-1]):
            r = memory_case(server, client, shas, cand, cfg["clients"])
            r["rep"] = rep
            if cand.fill_script and rep == 0:
                checks.append({**log_check(client, shas, cand.fill_script[1]),
                               "filler_memory_usage": r["memory_usage"]})
            rows.append(r)
            log(f"{cand.name:10} memory rep {rep}: {r['bytes_per_client']:.1f} B/client "
                f"(MEMORY USAGE {r['memory_usage']}, {r['keys']} keys)")
    return rows, checks


def machine(client):
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    info = client.info("server")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    # Which build was measured: bench.sh records the commit it built (librl.so.build); a
    # module given with RL_MODULE is named by its file only.
    so = Path(os.environ.get("RL_MODULE", ROOT / "target" / "release" / "librl.so"))
    build = Path(f"{so}.build")
    facts = dict(line.split(" ", 1) for line in build.read_text().splitlines()
                 if " " in line) if build.exists() else {}
    built = facts.get("built") or time.strftime('%Y-%m-%d %H:%M %Z',
                                                time.localtime(so.stat().st_mtime))
    origin = (f"built from commit {facts['commit']}"
              + (" with uncommitted changes" if facts.get("tree") == "modified" else "")
              if "commit" in facts else "commit unknown (given with RL_MODULE)")
    module = (f"{so.name} (sha256 {hashlib.sha256(so.read_bytes()).hexdigest()[:12]}), "
              f"{origin}, {built}")
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
            "redis": info["redis_version"],
            "allocator": client.info("memory").get("mem_allocator"),
            "commit": commit, "pinned": PINNED, "load_start": os.getloadavg(),
            "date": time.strftime("%Y-%m-%d %H:%M %Z"),
            "module": module}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny run, seconds (CI)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out"))
    args = ap.parse_args()
    cfg = SMOKE if args.smoke else FULL
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rl-bench-") as d:
        server = BenchServer(d, **SERVER_CONFIG).start()
        try:
            client = server.client()
            shas = load_scripts(client)
            meta = {**machine(client), "config": cfg, "smoke": args.smoke,
                    "commands": {c.name: " ".join(c.command) for c in CANDIDATES}}
            log(f"server on port {server.port}, pinned={PINNED}")
            rows = throughput(server, client, shas, cfg)
            mem, checks = memory(server, client, shas, cfg)
        finally:
            server.stop()
        clus = cluster.measure(cfg["masters"], d, requests=cfg["cluster_requests"],
                               keyspace=cfg["clients"], repeats=cfg["cluster_repeats"],
                               log=log)
    meta["seconds"] = round(time.monotonic() - started)
    meta["load_end"] = os.getloadavg()
    raw = {"meta": meta, "throughput": rows, "memory": mem, "log_check": checks,
           "cluster": clus}
    (out / "raw.json").write_text(json.dumps(raw, indent=1))
    log(f"wrote {out / 'raw.json'} in {meta['seconds']} s")


if __name__ == "__main__":
    sys.exit(main())
