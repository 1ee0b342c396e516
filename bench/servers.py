"""The headline comparison on each server: RL.ALLOW against SET PX (and INCR, the GCRA Lua
script) on several servers, one run per server, side by side.

    python3 bench/servers.py [--smoke] [--profile-only] [--servers NAMES] [--out DIR] [--splice RESULTS_MD]

Servers: names of the test matrix (scripts/servers.sh installs each as .deps/NAME/server),
by default Redis 7.0 and Valkey 9.1; `--profile-only` (make bench-servers, on every server
of the matrix) counts instructions under callgrind and times nothing. They start from the
project's redis.conf with the module,
persistence off, pinned like bench/run.py's server, and both stay up for the whole run; the
repeats alternate between them (Redis then Valkey, then Valkey then Redis, ...) so that a
neighbour's burst on this shared machine lands on both. Cases are bench/run.py's 100k-client
ones, at -P 16 and -P 1. Then bench/profile.sh counts instructions per call on each server
under callgrind: the one figure a neighbour's load cannot move.

Writes DIR/servers.json. `section(raw)` is the markdown bench/report.py appends to
results.md; --splice puts it into an existing results.md in place of the previous one (a run
of this phase alone: `bench/bench.sh --servers`).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from candidates import CANDIDATES, LIMIT, SERVER_CONFIG, WINDOW_MS, load_scripts, resolve
from harness import PINNED, ROOT, BenchServer, benchmark, usec_per_call
from run import configure_all, flush, log, machine

NAMES = ["rl_stored", "rl_default", "rl_inline", "set_px", "incr", "gcra_lua"]
CANDS = [c for c in CANDIDATES if c.name in NAMES]
# profile: calls under callgrind per command (instructions per call vary by <1% with it).
FULL = {"repeats": 5, "clients": 100_000, "requests_p16": 200_000, "requests_p1": 60_000,
        "profile": 10_000}
# `bench.sh --servers`: fewer and shorter cases, about 90 s in all on this shared machine.
QUICK = {**FULL, "repeats": 3, "requests_p16": 100_000, "requests_p1": 20_000}
SMOKE = {"repeats": 1, "clients": 1000, "requests_p16": 2000, "requests_p1": 1000, "profile": 300}
BEGIN = "<!-- servers: written by bench/servers.py, do not edit -->"
END = "<!-- /servers -->"


MATRIX = ["redis-7.0", "redis-7.2", "redis-7.4", "redis-8.2", "valkey-8.0", "valkey-8.1", "valkey-9.1"]


def launcher(name):
    """.deps/NAME/server, installed by scripts/servers.sh if missing."""
    path = ROOT / ".deps" / name / "server"
    if not path.exists():
        subprocess.run([str(ROOT / "scripts" / "servers.sh"), name], check=True)
    return str(path)


def describe(client):
    info = client.info("server")
    name = "Valkey" if "valkey_version" in info else "Redis"
    version = info.get("valkey_version", info["redis_version"])
    return {"server": f"{name} {version}", "allocator": client.info("memory").get("mem_allocator")}


def run_case(server, client, shas, cand, pipeline, cfg):
    flush(client)
    if cand.configure:
        configure_all(client, cfg["clients"])
        client.config_resetstat()
    requests = cfg["requests_p16"] if pipeline == 16 else cfg["requests_p1"]
    r = benchmark(server.port, resolve(cand.command, shas), requests=requests,
                  keyspace=cfg["clients"], pipeline=pipeline)
    r.update(cand=cand.name, pipeline=pipeline, usec=usec_per_call(client, cand.stat))
    return r


def measure(binaries, cfg, workdir, timed=True):
    """Starts each server; runs the timed cases (unless not `timed`); their metadata and rows."""
    servers, rows = [], []
    try:
        for i, binary in enumerate(binaries):
            s = BenchServer(Path(workdir) / f"s{i}", binary=binary, **SERVER_CONFIG).start()
            servers.append(s)
            s.meta = {**describe(s.client()), "binary": os.path.relpath(binary, ROOT)}
            log(f"{s.meta['server']} ({s.meta['allocator']}) on port {s.port}")
        meta = machine(servers[0].client())
        for rep in range(cfg["repeats"] if timed else 0):
            for s in (servers if rep % 2 == 0 else servers[::-1]):
                client, shas = s.client(), load_scripts(s.client())
                for pipeline in (16, 1):
                    for cand in (CANDS if rep % 2 == 0 else CANDS[::-1]):
                        r = run_case(s, client, shas, cand, pipeline, cfg)
                        r.update(server=s.meta["server"], rep=rep)
                        rows.append(r)
                        log(f"{s.meta['server']:13} {cand.name:10} -P {pipeline:2} rep {rep}: "
                            f"{r['usec']:.3f} us/call {r['rps']:.0f} req/s")
                client.close()
        return meta, [s.meta for s in servers], rows
    finally:
        for s in servers:
            s.stop()


def profile(binary, calls, out):
    """Instructions per call of RL.ALLOW, SET PX and the GCRA script on `binary`, from
    bench/profile.sh: {name: instructions per call}."""
    env = {**os.environ, "PROFILE_SERVER": binary, "PROFILE_OUT": str(out)}
    subprocess.run([str(ROOT / "bench" / "profile.sh"), str(calls)], env=env, check=True,
                   stdout=subprocess.DEVNULL, timeout=1800)
    return {name: int(total) / int(n) for name, total, n in
            (line.split() for line in (out / "summary.txt").read_text().splitlines())}


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def section(raw):
    """The markdown of one run: one table per pipeline depth, a column group per server."""
    servers = [s["server"] for s in raw["servers"]]
    cfg, meta = raw["config"], raw["meta"]
    label = {c.name: c.label for c in CANDS}
    out = [BEGIN, "## The same benchmark on each server", ""]
    if raw["smoke"]:
        out += ["**Smoke run: the figures below are too small to mean anything.**", ""]
    timed = (f"runs `-r {cfg['clients']:,}` at `-n {cfg['requests_p16']:,} -P 16` and "
             f"`-n {cfg['requests_p1']:,} -P 1`, {cfg['repeats']} repeats alternating between "
             "the servers. µs per call: median (min-max) of INFO commandstats' usec_per_call; "
             "× SET PX: the median of each repeat's ratio; req/s: median. Compare each server's "
             "ratio to SET PX; the absolute figures also differ by allocator:")
    counted = ("is counted under callgrind only (no timings: instruction counts are what a "
               "neighbour's load on this shared machine cannot move):")
    out += [f"`bench/servers.py` ({raw['how']}), {meta['date']}, {meta['seconds']} s, repository at "
            f"commit {meta['commit']}, pinned: {PINNED}; load average {meta['load_start']} at the "
            f"start, {meta['load_end']} at the end. Each server loads the same module file and "
            f"config ({LIMIT} requests per {WINDOW_MS} ms, persistence off) and "
            + (timed if raw["rows"] else counted), ""]
    out += [f"- {s['server']}: `{s['binary']}`, allocator {s['allocator']}" for s in raw["servers"]]
    if raw.get("missing"):
        out += [f"- not run: {raw['missing']}"]
    for pipeline in (16, 1) if raw["rows"] else ():
        head = " | ".join(f"{s} µs per call | × SET PX | {s} req/s" for s in servers)
        out += ["", f"**{cfg['clients']:,} clients, -P {pipeline}**", "", f"| approach | {head} |",
                "| --- |" + " ---: | ---: | ---: |" * len(servers)]
        for c in NAMES:
            cells = []
            for s in servers:
                pick = [r for r in raw["rows"] if r["server"] == s and r["pipeline"] == pipeline]
                us = [r["usec"] for r in pick if r["cand"] == c and r["usec"] is not None]
                # The ratio of each repeat (SET PX ran seconds apart on the same server), then
                # the median: a neighbour's burst moves both figures of a repeat alike.
                floor = {r["rep"]: r["usec"] for r in pick if r["cand"] == "set_px"}
                ratios = [r["usec"] / floor[r["rep"]] for r in pick
                          if r["cand"] == c and r["usec"] and floor.get(r["rep"])]
                rps = med([r["rps"] for r in pick if r["cand"] == c])
                cells += [f"{med(us):.2f} ({min(us):.2f}-{max(us):.2f})" if us else "-",
                          f"{med(ratios):.2f}" if ratios else "-",
                          f"{rps:,.0f}" if rps else "-"]
            out.append(f"| {label[c]} | " + " | ".join(cells) + " |")
    if raw.get("profile"):
        out += ["", f"**Instructions per call** (valgrind's callgrind, bench/profile.sh: "
                f"{cfg['profile']:,} calls over 100,000 clients at -P 16, counted inside the "
                "command's own function as INFO commandstats times it; `RL.ALLOW` under the "
                "default policy)", "",
                "| server | `RL.ALLOW` | `SET k v PX 60000` | RL.ALLOW × SET PX | GCRA Lua script | Lua × SET PX |",
                "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for s in servers:
            per = raw["profile"].get(s, {})
            floor = per.get("set_px")

            def cell(name):
                return f"{per[name]:,.0f}" if name in per else "-"

            def ratio(name):
                return f"{per[name] / floor:.2f}" if name in per and floor else "-"

            out.append(f"| {s} | {cell('rl_allow')} | {cell('set_px')} | {ratio('rl_allow')} | "
                       f"{cell('gcra_lua')} | {ratio('gcra_lua')} |")
        # Issue 17's cases, as ratios to SET PX on each server (one column per server).
        names = {"rl_allow": label["rl_default"],
                 "rl_allow_inline": label["rl_inline"],
                 "rl_allow_sliding": "RL.ALLOW, SLIDING limit of 100 per 60000 ms (inline)",
                 "rl_allow_and": "RL.ALLOW, two GCRA limits joined by AND (inline)",
                 "floor_noop": "a module command that does nothing (bench/floor)",
                 "floor_replicate": "a module command that only calls RedisModule_Replicate"}
        present = [n for n in names if any(n in raw["profile"].get(s, {}) for s in servers)]
        if present:
            out += ["", "**× SET PX per case and server**", "",
                    "| approach | " + " | ".join(servers) + " |", "| --- |" + " ---: |" * len(servers)]
            for name in present:
                cells = []
                for s in servers:
                    per = raw["profile"].get(s, {})
                    cells.append(f"{per[name] / per['set_px']:.2f}" if name in per and per.get("set_px") else "-")
                out.append(f"| {names[name]} | " + " | ".join(cells) + " |")
            # Issue 17's target: each case's ratio on another server within 0.1 of the first server's.
            base = raw["profile"].get(servers[0], {})
            for s in servers[1:]:
                other = raw["profile"].get(s, {})
                gaps = [f"{names[n]}: {other[n] / other['set_px'] - base[n] / base['set_px']:+.2f}"
                        for n in ("rl_allow", "rl_allow_sliding", "rl_allow_and")
                        if n in base and n in other and base.get("set_px") and other.get("set_px")]
                if gaps:
                    out.append(f"- {s}'s ratio minus {servers[0]}'s (target: within 0.1): " + "; ".join(gaps) + ".")
    return "\n".join(out + [END]) + "\n"


def splice(md_path, text):
    """Replaces the previous section in results.md (or appends one)."""
    md = Path(md_path).read_text()
    if BEGIN in md and END in md:
        md = md[:md.index(BEGIN)] + text.rstrip("\n") + md[md.index(END) + len(END):]
    else:
        md = md.rstrip("\n") + "\n\n" + text
    Path(md_path).write_text(md)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny run, seconds (CI)")
    ap.add_argument("--quick", action="store_true", help="3 shorter repeats")
    ap.add_argument("--profile-only", action="store_true",
                    help="callgrind only, no timings (make bench-servers; default: every server of the matrix)")
    ap.add_argument("--servers", help="comma-separated names of the matrix (scripts/servers.sh --list)")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "out"))
    ap.add_argument("--splice", metavar="RESULTS_MD", help="put the section into this file")
    args = ap.parse_args()
    cfg = SMOKE if args.smoke else QUICK if args.quick else FULL
    names = args.servers.split(",") if args.servers else (MATRIX if args.profile_only else ["redis-7.0", "valkey-9.1"])
    binaries, missing = [launcher(n) for n in names], None
    started = time.monotonic()
    load_start = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="rl-bench-servers-") as d:
        meta, servers, rows = measure(binaries, cfg, d, timed=not args.profile_only)
    # Smoke runs profile only where valgrind is installed (bench.sh's rule for profile.sh).
    prof = {}
    if not args.smoke or shutil.which("valgrind"):
        out = Path(args.out)
        for s in servers:
            log(f"{s['server']}: instructions per call under callgrind ({cfg['profile']:,} calls each)")
            prof[s["server"]] = profile(str(ROOT / s["binary"]), cfg["profile"], out / "profile" / s["server"].replace(" ", "-"))
    meta.update(seconds=round(time.monotonic() - started), load_start=load_start,
                load_end=" / ".join(f"{x:.1f}" for x in os.getloadavg()))
    how = ("smoke" if args.smoke else "`make bench-servers`: instructions only" if args.profile_only
           else "3 shorter repeats" if args.quick else "`make bench`")
    raw = {"meta": meta, "config": cfg, "smoke": args.smoke, "how": how, "servers": servers,
           "missing": missing, "rows": rows, "profile": prof}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "servers.json").write_text(json.dumps(raw, indent=1))
    if args.splice:
        splice(args.splice, section(raw))
    log(f"wrote {out / 'servers.json'}" + (f" and the section of {args.splice}" if args.splice else ""))


if __name__ == "__main__":
    main()
