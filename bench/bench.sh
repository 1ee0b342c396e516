#!/usr/bin/env bash
# One command for every benchmark figure (make bench / make bench-smoke):
#   bench/bench.sh            full run (about 15 minutes on 2 cores): bench/results.md, bench/chart.png
#   bench/bench.sh --smoke    seconds, every code path once (CI): bench/out/smoke/results.md, .png
#   bench/bench.sh --servers  instructions per call of RL.ALLOW vs SET PX under callgrind on every
#                             server of the test matrix (bench/servers.py --profile-only; servers
#                             from scripts/servers.sh), into bench/results.md in place of the last
# RL_MODULE=/path/librl.so benchmarks that module file (default: target/release/librl.so,
# built first; results.md then names the commit it was built from, in librl.so.build).
# Installs matplotlib (pip) when it is missing; scripts/servers.sh installs the servers
# bench/servers.py runs (Redis 7.0 and Valkey 9.1 in a full run). Raw data: bench/out/.
# The first run also compiles the micro-benchmark into target/bench/ (a few minutes, once).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SMOKE=""
[ "${1:-}" = "--smoke" ] && SMOKE="--smoke"
SERVERS_ONLY=""
[ "${1:-}" = "--servers" ] && SERVERS_ONLY=1

scripts/deps.sh --python
python3 -c "import matplotlib" 2>/dev/null || {
    echo "bench: installing matplotlib (pip)"
    python3 -m pip install -q matplotlib 2>/dev/null ||
        python3 -m pip install -q --break-system-packages matplotlib
}
command -v taskset >/dev/null || echo "bench: no taskset: server and load generator not pinned"

if [ -z "${RL_MODULE:-}" ]; then
    # Built now (a no-op when up to date), so the figures describe the checked-out module.
    cargo build --release
    # A copy: a rebuild during the run must not change the module under the benchmark.
    mkdir -p bench/out
    cp target/release/librl.so bench/out/librl.so
    # What it was built from, for results.md (bench/run.py reads it): the commit, whether the
    # module's sources differed from it, and when.
    {
        echo "commit $(git rev-parse --short HEAD)"
        if git status --porcelain -- core module Cargo.toml Cargo.lock | grep -q .; then
            echo "tree modified"
        else
            echo "tree clean"
        fi
        echo "built $(date -u '+%Y-%m-%d %H:%M UTC')"
    } >bench/out/librl.so.build
    export RL_MODULE=$ROOT/bench/out/librl.so
fi

if [ -n "$SERVERS_ONLY" ]; then
    echo "== callgrind on each server of the matrix: RL.ALLOW vs SET PX"
    (cd bench && python3 servers.py --profile-only --out "$ROOT/bench/out/servers" --splice "$ROOT/bench/results.md")
    exit 0
fi

# A smoke run keeps its data apart: it must never replace a full run's raw data.
if [ -n "$SMOKE" ]; then
    OUT=bench/out/smoke MD=bench/out/smoke/results.md PNG=bench/out/smoke/chart.png ITERS=20000
else
    OUT=bench/out MD=bench/results.md PNG=bench/chart.png ITERS=10000000
fi
mkdir -p "$OUT"
export PROFILE_OUT=$ROOT/$OUT/profile

# The pure core's micro-benchmark (its own target directory: a bench build must not touch
# target/release/librl.so, the module the servers load).
echo "== micro-benchmark: core/benches/decide.rs"
DECIDE_ITERS=$ITERS CARGO_TARGET_DIR=target/bench \
    cargo bench --quiet -p rl-core --bench decide | tee "$OUT/decide.txt"

# Instruction counts: the one cost figure that the neighbours' load cannot move.
if [ -z "$SMOKE" ]; then
    echo "== callgrind: RL.ALLOW vs SET PX"
    bench/profile.sh 30000
elif command -v valgrind >/dev/null; then
    bench/profile.sh 300
else
    rm -f "$PROFILE_OUT/summary.txt"  # no stale profile in this run's report
fi

echo "== redis-benchmark runs"
(cd bench && python3 run.py $SMOKE --out "$ROOT/$OUT")
echo "== redis-benchmark on each server (Redis, Valkey)"
(cd bench && python3 servers.py $SMOKE --out "$ROOT/$OUT")
(cd bench && python3 report.py "$ROOT/$OUT" "$ROOT/$MD" "$ROOT/$PNG")
