#!/usr/bin/env bash
# Instruction counts of RL.ALLOW (default policy, inline GCRA, SLIDING at limit 100, two
# limits joined by AND) against SET PX and the GCRA Lua script, under valgrind's callgrind:
# repeatable on a noisy machine where timings are not. Each command gets its own fresh
# server under callgrind, collecting only inside the command's own function (what INFO
# commandstats times: RedisModuleCommandDispatcher, setCommand, evalShaCommand with the
# commands its script calls), and the same redis-benchmark load: N calls over 100k clients
# at -P 16. Two floors (bench/floor/floor.c, a module loaded beside rl) show what any module
# command costs before doing anything (FLOOR.NOOP) and with one RedisModule_Replicate of an
# RL.APPLY line (FLOOR.REPLICATE).
#   bench/profile.sh [N]          default N=30000 (counts per call vary by <1% with N); output
#                                 in bench/out/profile/ or $PROFILE_OUT (summary.txt: name,
#                                 instructions, calls)
# RL_MODULE as for bench/bench.sh. Prints instructions per call and the top functions.
# PROFILE_SERVER=path/valkey-server profiles Valkey instead (bench/servers.py does).
# PROFILE_CASES="rl_allow set_px" profiles only those cases (default: all of them).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
N=${1:-30000}
SERVER=${PROFILE_SERVER:-redis-server}
# The function that runs a module command: Valkey renamed it.
DISPATCHER=RedisModuleCommandDispatcher
"$SERVER" --version | grep -q '^Valkey' && DISPATCHER=ValkeyModuleCommandDispatcher
MODULE=${RL_MODULE:-$ROOT/target/release/librl.so}
OUT=${PROFILE_OUT:-$ROOT/bench/out/profile}
mkdir -p "$OUT"
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }

# The floor module, built against the redismodule.h of the redis-module crate cargo fetched.
FLOOR=$OUT/floor.so
header=$(cargo metadata --format-version 1 --locked 2>/dev/null |
    python3 -c 'import json, sys, pathlib
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == "redis-module":
        print(pathlib.Path(p["manifest_path"]).parent / "src" / "include")' | head -1)
FLOOR_ARGS=()
if [ -n "$header" ] && cc -O2 -shared -fPIC -I"$header" -o "$FLOOR" bench/floor/floor.c; then
    FLOOR_ARGS=(--loadmodule "$FLOOR")
else
    echo "profile: cannot build bench/floor/floor.c (no cc or no redismodule.h): no floors" >&2
fi

profile() {  # name, the command's function in redis-server, then the command
    local name=$1 fn=$2 port pid
    shift 2
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    valgrind --tool=callgrind --trace-children=yes --collect-atstart=no --toggle-collect="$fn" \
        --callgrind-out-file="$OUT/callgrind.$name" \
        "$SERVER" --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --loadmodule "$MODULE" default-limit 100 default-window-ms 60000 "${FLOOR_ARGS[@]}" \
        >"$OUT/valgrind.$name.log" 2>&1 &
    pid=$!
    for _ in $(seq 600); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    local sha
    sha=$(redis-cli -p "$port" script load "$(cat bench/lua/gcra_redis_rate.lua)")
    redis-benchmark -p "$port" -c 50 -n "$N" -r 100000 -P 16 -q "${@/'{sha}'/$sha}" >/dev/null
    kill "$pid"
    wait "$pid" || true
    # Whole outputs to files: `head` on a pipe would end callgrind_annotate with SIGPIPE.
    callgrind_annotate --inclusive=no "$OUT/callgrind.$name" >"$OUT/exclusive.$name.txt" 2>/dev/null
    callgrind_annotate --inclusive=yes "$OUT/callgrind.$name" >"$OUT/inclusive.$name.txt" 2>/dev/null
    local total
    total=$(awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}' "$OUT/exclusive.$name.txt")
    echo "$name $total $N" >>"$OUT/summary.txt"
    echo "== $name: $total instructions in $fn, $((total / N)) per call; top functions (self):"
    sed -n '/file:function/,$p' "$OUT/exclusive.$name.txt" | sed -n 3,22p
}

CASES=${PROFILE_CASES:-"set_px rl_allow rl_allow_inline rl_allow_sliding rl_allow_and gcra_lua floor_noop floor_replicate"}
rm -f "$OUT/summary.txt"
for c in $CASES; do
    case $c in
    set_px) profile set_px setCommand SET 'rl:__rand_int__' 1700000000000 PX 60000 ;;
    rl_allow) profile rl_allow "$DISPATCHER" RL.ALLOW 'rl:__rand_int__' ;;
    rl_allow_inline) profile rl_allow_inline "$DISPATCHER" RL.ALLOW 'rl:__rand_int__' LIMIT 100 WINDOW 60000 ;;
    rl_allow_sliding)
        profile rl_allow_sliding "$DISPATCHER" RL.ALLOW 'rl:__rand_int__' LIMIT 100 WINDOW 60000 SLIDING ;;
    rl_allow_and)
        profile rl_allow_and "$DISPATCHER" RL.ALLOW 'rl:__rand_int__' LIMIT 10 WINDOW 1000 AND LIMIT 1000 WINDOW 86400000 ;;
    gcra_lua) profile gcra_lua evalShaCommand EVALSHA '{sha}' 1 'rl:__rand_int__' 100 100 60 1 ;;
    floor_noop) [ ${#FLOOR_ARGS[@]} -gt 0 ] && profile floor_noop "$DISPATCHER" FLOOR.NOOP 'rl:__rand_int__' ;;
    floor_replicate)
        [ ${#FLOOR_ARGS[@]} -gt 0 ] && profile floor_replicate "$DISPATCHER" FLOOR.REPLICATE 'rl:__rand_int__' ;;
    *) echo "profile: unknown case $c" >&2; exit 1 ;;
    esac
done
echo "callgrind files: $OUT (callgrind_annotate --inclusive=yes FILE for inclusive costs)"
