"""Turns bench/run.py's raw.json (and the micro-benchmark's output) into results.md and a
chart of cost per call and bytes per client per approach.

    python3 bench/report.py OUT_DIR OUT_MD OUT_PNG

OUT_DIR holds raw.json (bench/run.py), decide.txt (core/benches/decide.rs) and profile/
(bench/profile.sh), the last two optional.

Every figure is the median over the repeats of one run; the range (min-max) is shown where it
tells how noisy the machine was.
"""

import statistics
import sys
from pathlib import Path

from candidates import CANDIDATES, LIMIT, WINDOW_MS
from memory_notes import breakdown_md
import profile_notes
import servers

LABEL = {c.name: c.label for c in CANDIDATES}
ORDER = [c.name for c in CANDIDATES]
SHORT = {"rl_stored": "RL.ALLOW stored", "rl_default": "RL.ALLOW default",
         "rl_inline": "RL.ALLOW inline", "set_px": "SET PX (floor)", "incr": "INCR (floor)",
         "gcra_lua": "GCRA Lua (redis_rate)", "log10": "sliding log, limit 10",
         "log100": "sliding log, limit 100", "fixed": "fixed window (Lua)"}
CASES = [("100k", 16), ("100k", 1), ("hot", 16), ("hot", 1)]
CASE_TITLE = {("100k", 16): "100k clients, -P 16", ("100k", 1): "100k clients, -P 1",
              ("hot", 16): "1 hot client, -P 16", ("hot", 1): "1 hot client, -P 1"}
TARGET_SET_RATIO, TARGET_LUA_FACTOR, TARGET_BYTES = 1.25, 3.0, 145


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def pick(rows, field, **where):
    return [r[field] for r in rows if all(r[k] == v for k, v in where.items())]


def fmt(v, nd=2):
    if v is None:
        return "-"
    return f"{v:,.{nd}f}" if isinstance(v, float) else f"{v:,}"


def with_range(values, nd=2):
    m = med(values)
    if m is None:
        return "-"
    if len(values) < 2:
        return fmt(m, nd)
    return f"{fmt(m, nd)} ({fmt(min(values), nd)}-{fmt(max(values), nd)})"


def yesno(ok):
    return "**met**" if ok else "**missed**"


class Report:
    def __init__(self, raw, decide_txt, prof):
        self.raw, self.meta, self.decide, self.prof = raw, raw["meta"], decide_txt, prof
        self.tp, self.mem = raw["throughput"], raw["memory"]
        self.usec = {(c, m, p): med(pick(self.tp, "usec", cand=c, mode=m, pipeline=p))
                     for c in ORDER for m, p in CASES}
        self.bytes = {c: med(pick(self.mem, "bytes_per_client", cand=c)) for c in ORDER}

    def headline(self):
        set_us = self.usec[("set_px", "100k", 16)]
        rows = ["| approach | server µs per call (100k clients, -P 16) | × SET PX | "
                "checks/s (100k clients, -P 16) | bytes per tracked client |",
                "| --- | ---: | ---: | ---: | ---: |"]
        for c in ORDER:
            us = self.usec[(c, "100k", 16)]
            ratio = f"{us / set_us:.2f}" if us and set_us else "-"
            rps = med(pick(self.tp, "rps", cand=c, mode="100k", pipeline=16))
            rows.append(f"| {LABEL[c]} | {fmt(us)} | {ratio} | {fmt(rps, 0)} | "
                        f"{fmt(self.bytes[c], 0)} |")
        return "\n".join(rows)

    def targets(self):
        set_us = self.usec[("set_px", "100k", 16)]
        lua_us = self.usec[("gcra_lua", "100k", 16)]
        rows = ["| target | measured | |", "| --- | --- | --- |"]
        for c in ("rl_default", "rl_stored", "rl_inline"):
            us = self.usec[(c, "100k", 16)]
            if us and set_us:
                rows.append(f"| {LABEL[c]}: µs per call ≤ {TARGET_SET_RATIO}× SET PX "
                            f"(100k clients, -P 16) | {us / set_us:.2f}× ({fmt(us)} vs "
                            f"{fmt(set_us)} µs) | {yesno(us / set_us <= TARGET_SET_RATIO)} |")
        for c in ("rl_default", "rl_stored", "rl_inline"):
            us = self.usec[(c, "100k", 16)]
            if us and lua_us:
                rows.append(f"| {LABEL[c]}: ≥ {TARGET_LUA_FACTOR:.0f}× cheaper than the GCRA "
                            f"Lua script | {lua_us / us:.1f}× cheaper ({fmt(us)} vs "
                            f"{fmt(lua_us)} µs) | {yesno(lua_us / us >= TARGET_LUA_FACTOR)} |")
        if self.prof:
            rows.append(f"| the SET PX target in instructions (callgrind, {self.prof.calls:,} calls each) | "
                        f"{self.prof.ratio():.2f}× ({self.prof.per_call('rl_allow'):,.0f} vs "
                        f"{self.prof.per_call('set_px'):,.0f} per call) | "
                        f"{yesno(self.prof.ratio() <= TARGET_SET_RATIO)} |")
        if self.prof and self.prof.has("gcra_lua"):
            factor = 1 / self.prof.ratio("gcra_lua")
            rows.append(f"| the GCRA target in instructions (callgrind) | {factor:.1f}× fewer "
                        f"({self.prof.per_call('rl_allow'):,.0f} vs "
                        f"{self.prof.per_call('gcra_lua'):,.0f} per call) | "
                        f"{yesno(factor >= TARGET_LUA_FACTOR)} |")
        b = self.bytes["rl_default"]
        if b:
            rows.append(f"| bytes per tracked client, default policy ≤ {TARGET_BYTES} | "
                        f"{b:.0f} B | {yesno(b <= TARGET_BYTES)} |")
        return "\n".join(rows)

    def case_table(self, field, nd, title):
        head = " | ".join(CASE_TITLE[k] for k in CASES)
        rows = [f"| {title} | {head} |", "| --- |" + " ---: |" * len(CASES)]
        for c in ORDER:
            cells = [with_range(pick(self.tp, field, cand=c, mode=m, pipeline=p), nd)
                     for m, p in CASES]
            rows.append(f"| {LABEL[c]} | " + " | ".join(cells) + " |")
        return "\n".join(rows)

    def latency(self):
        rows = ["| approach | 100k clients: p50 / p99 / p99.9 (ms) | 1 hot client: p50 / p99 "
                "/ p99.9 (ms) | RL.ALLOW denied, hot client |", "| --- | ---: | ---: | ---: |"]
        for c in ORDER:
            cells = []
            for mode in ("100k", "hot"):
                cells.append(" / ".join(fmt(med(pick(self.tp, f, cand=c, mode=mode,
                                                     pipeline=1)), 3)
                                        for f in ("p50_ms", "p99_ms", "p999_ms")))
            denied = med(pick(self.tp, "denied", cand=c, mode="hot", pipeline=16))
            cells.append("-" if denied is None else f"{denied:.1%}")
            rows.append(f"| {LABEL[c]} | " + " | ".join(cells) + " |")
        return "\n".join(rows)

    def memory(self):
        rows = ["| approach | bytes per client (used_memory delta / clients) | MEMORY USAGE "
                "of one key | keys |", "| --- | ---: | ---: | ---: |"]
        for c in ORDER:
            rows.append(f"| {LABEL[c]} | {with_range(pick(self.mem, 'bytes_per_client', cand=c), 1)}"
                        f" | {fmt(med(pick(self.mem, 'memory_usage', cand=c)), 0)} | "
                        f"{fmt(med(pick(self.mem, 'keys', cand=c)), 0)} |")
        for chk in self.raw["log_check"]:
            rows.append("")
            rows.append(f"Sliding log at limit {chk['limit']}: a key filled by {chk['limit']} "
                        f"real EVALSHA calls has MEMORY USAGE {chk['memory_usage']} B "
                        f"({chk['entries']} entries); one filled by the server-side filler, "
                        f"{chk['filler_memory_usage']} B.")
        return "\n".join(rows)

    def cluster(self):
        rows = self.raw["cluster"]
        if not rows:
            return "No cluster figure in this run."
        one = {c: med(pick(rows, "rps", masters=1, cand=c)) for c in ("rl_default", "set_px")}
        out = ["| masters | RL.ALLOW checks/s (all masters) | × 1 master | SET PX writes/s | "
               "× 1 master |", "| ---: | ---: | ---: | ---: | ---: |"]
        for m in sorted({r["masters"] for r in rows}):
            cells = []
            for c in ("rl_default", "set_px"):
                v = med(pick(rows, "rps", masters=m, cand=c))
                cells += [fmt(v, 0), f"{v / one[c]:.2f}" if v and one[c] else "-"]
            out.append(f"| {m} | " + " | ".join(cells) + " |")
        return "\n".join(out)

    def markdown(self):
        m, cfg = self.meta, self.meta["config"]
        cmds = "\n".join(f"| {LABEL[c]} | `{m['commands'][c]}` |" for c in ORDER)
        return TEMPLATE.format(
            m=m, cfg=cfg, limit=LIMIT,
            load_start=" / ".join(f"{x:.1f}" for x in m.get("load_start", [])),
            load_end=" / ".join(f"{x:.1f}" for x in m.get("load_end", [])), window=WINDOW_MS, headline=self.headline(),
            targets=self.targets(), cmds=cmds,
            usec=self.case_table("usec", 2, "server µs per call"),
            rps=self.case_table("rps", 0, "requests/s"), latency=self.latency(),
            memory=self.memory(), cluster=self.cluster(),
            breakdown=breakdown_md(self.bytes.get("rl_default"), self.bytes.get("set_px")),
            decide=self.decide.strip() or "(not run)",
            profile=profile_notes.markdown(self.prof),
            smoke="\n**Smoke run: the figures below are too small to mean anything.**\n"
            if m["smoke"] else "")

    def chart(self, path):
        import matplotlib
        import matplotlib.ticker
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        names = [c for c in ORDER if self.usec[(c, "100k", 16)] is not None]
        labels = [SHORT[c] for c in names]
        colors = ["tab:blue" if c.startswith("rl_") else "tab:gray" for c in names]
        fig, (a, b) = plt.subplots(1, 2, figsize=(13, 5.5), sharey=True)
        us = [self.usec[(c, "100k", 16)] for c in names]
        a.barh(labels, us, color=colors)
        a.set_xlabel("server-side µs per call (INFO commandstats), 100k clients, -P 16")
        for y, v in enumerate(us):
            a.text(v, y, f" {v:.2f}", va="center", fontsize=8)
        by = [self.bytes[c] or 0 for c in names]
        b.barh(labels, by, color=colors)
        b.set_xscale("log")
        b.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        b.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        b.set_xlabel("bytes per tracked client (used_memory delta / 100k), log scale")
        for y, v in enumerate(by):
            b.text(v, y, f" {v:.0f}", va="center", fontsize=8)
        a.invert_yaxis()
        fig.suptitle(f"Cost per rate-limit check and memory per client: Redis {self.meta['redis']}"
                     f", {self.meta['cores']} cores, medians of {self.meta['config']['repeats']} runs")
        fig.tight_layout()
        fig.savefig(path, dpi=110)


TEMPLATE = """# Benchmarks: RL.ALLOW against the alternatives

Written by `make bench` (`bench/bench.sh`: `bench/run.py`, then `bench/report.py`); do not
edit by hand. Every figure is a median over interleaved repeats ({cfg[repeats]} for throughput and
latency, {cfg[memory_repeats]} for memory and the cluster) of one run on one server; a range in
brackets is min-max. Compare ratios within this file, not with figures
from another machine or run.
{smoke}
| machine | |
| --- | --- |
| CPU | {m[cpu]}, {m[cores]} cores (shared, noisy) |
| kernel | {m[kernel]} |
| Redis | {m[redis]}, {m[allocator]} |
| module | {m[module]}; repository at commit {m[commit]} |
| pinning | server on core 0, redis-benchmark on core 1: {m[pinned]} |
| run | {m[date]}, {m[seconds]} s; load average (1/5/15 min) {load_start} at the start, {load_end} at the end |

![cost per call and bytes per client](chart.png)

## Headline

{headline}

## Targets (goals, not tests)

{targets}

## What was run

- One redis-server with the module, persistence off (no AOF, no RDB): every candidate's
  in-memory cost, and none pays for a write(2). FLUSHALL and CONFIG RESETSTAT before each
  case; scripts loaded once with SCRIPT LOAD and called with EVALSHA.
- The same policy for every approach: {limit} requests per {window} ms, burst {limit} (the
  module's default, `rl.default-limit {limit}`, `rl.default-window-ms {window}`); the sliding
  log also at limit 10.
- The same keys for every approach: `rl:__rand_int__`, which redis-benchmark turns into
  `rl:` + 12 digits (15 bytes). 100k clients: `-r {cfg[clients]}`; one hot client: `-r 1`
  (every request on `rl:000000000000`).
- redis-benchmark, one thread, `-c 50`, `-n {cfg[requests_p16]}` at `-P 16` and
  `-n {cfg[requests_p1]}` at `-P 1`. For example:
  `taskset -c 1 redis-benchmark -h 127.0.0.1 -p PORT -c 50 -n {cfg[requests_p16]} -r {cfg[clients]} -P 16 RL.ALLOW rl:__rand_int__`.
- Cost per call: `usec_per_call` of the command in INFO commandstats (`rl.allow`, `set`,
  `incr`, `evalsha`: a script's figure includes the commands it calls). It is the time inside
  the command, without reading the request or writing the reply, so it is what the choice of
  approach changes and is stable on a noisy machine; requests/s and latencies include
  everything and move with the neighbours' load.
- A hot client is denied once its bucket is full: from then on RL.ALLOW, the GCRA script, the
  logs and the fixed window answer "denied" and write nothing, while INCR and SET still write.
- With 100k clients, each client gets a few requests per run, all allowed (every check
  writes). An RL.ALLOW key expires when its bucket is empty again (600 ms per request here),
  so many checks create their key anew: that is the module's design (idle clients cost
  nothing), and it is included in the cost.

| approach | command |
| --- | --- |
{cmds}

The scripts are in `bench/lua/`: `gcra_redis_rate.lua` (go-redis/redis_rate's `allowN`, logic
verbatim), `sliding_log.lua`, `fixed_window.lua`.

## Server-side cost per call (µs, INFO commandstats)

{usec}

## Requests per second (redis-benchmark)

{rps}

## Latency at -P 1 (redis-benchmark, 50 connections)

p99.9 is the value at the first step of redis-benchmark's HDR percentile distribution at or
above 99.9%.

{latency}

## Memory per tracked client

{cfg[clients]} distinct clients created per approach after FLUSHALL, each brought to its limit
as a heavy user would be (RL.ALLOW with `COST {limit}`, the GCRA script with cost {limit}, each
sliding log filled with 10 or 100 entries), then the `used_memory` delta divided by the
clients. It includes Redis's hash tables (main dict and expires dict: 131,072 slots of 8
bytes each for 100k keys). MEMORY USAGE leaves out the expires entry, those tables and, for a
module key, the robj and the moduleValue wrapper. INCR's and the fixed window's counters are
integers below 10,000, which Redis shares (no allocation for the value); a stored policy
(RL.CONFIG) has no TTL, so no expires entry, but a 48-byte value instead of 16.

{memory}

{breakdown}

## Cluster: aggregate checks per second

RL.ALLOW (default policy) and SET PX against a local Redis Cluster of 1, 2 and 3 masters, no
replicas, `redis-benchmark --cluster -c 50 -P 16 -n {cfg[cluster_requests]} -r {cfg[clients]}` (1
master: a plain benchmark, as `--cluster` refuses a 1-node cluster), keys `rl:{{tag}}:__rand_int__`.
**This machine has {m[cores]} cores**, shared by all the masters and the load generator, none
pinned: capacity cannot grow beyond about {m[cores]} cores' worth, so this shows the overhead
and the limit of sharding on this box, not the scaling of one core per master.

{cluster}

{profile}

## The pure decision (`core/benches/decide.rs`)

`cargo bench -p rl-core --bench decide`: ns per call of the pure pipeline
(`decide::decide` and `decide::record` over a policy, with `decide::numbers` where
`RL.THROTTLE` needs them), no Redis.

```
{decide}
```
"""


def demoted(text):
    """A markdown file's headings one level down, to stand as a section of results.md."""
    return "\n".join("#" + line if line.startswith("#") else line for line in text.splitlines()) + "\n"


def main():
    import json
    out_dir, out_md, out_png = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    raw = json.loads((out_dir / "raw.json").read_text())
    decide = out_dir / "decide.txt"
    rep = Report(raw, decide.read_text() if decide.exists() else "",
                 profile_notes.load(out_dir / "profile"))
    md = rep.markdown()
    if (out_dir / "servers.json").exists():  # bench/servers.py: the table on Redis and Valkey
        raw_servers = json.loads((out_dir / "servers.json").read_text())
        md = md.rstrip("\n") + "\n\n" + servers.section(raw_servers)
    # Sections measured by their own scripts (bench/policies.py, bench/bytes.py, the
    # clients' benchmarks), kept in their own files so that a rerun does not drop them.
    for extra in ("policies.md", "bytes.md", "clients.md"):
        path = Path(__file__).with_name(extra)
        if path.exists():
            md = md.rstrip("\n") + "\n\n" + demoted(path.read_text())
    Path(out_md).write_text(md)
    rep.chart(out_png)
    print(f"wrote {out_md} and {out_png}")


if __name__ == "__main__":
    main()
