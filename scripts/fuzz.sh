#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer via cargo-fuzz) of the pure core's code that reads
# untrusted input: `args` the one request parser, the one RL.CONFIG parser and RL.APPLY's
# (every client and replication byte); `codec` the one decoder of stored values at every
# encoding version (every RDB, RESTORE and MIGRATE payload), and what is then done with them.
# Runs each target for FUZZ_SECONDS (default 60).
#
# cargo-fuzz needs nightly-only compiler flags (-Zsanitizer); this machine has one stable
# toolchain, so RUSTC_BOOTSTRAP=1 unlocks them for the fuzz build only. A crash leaves its
# input in fuzz/artifacts/<target>/: turn it into a unit test, then fix.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
for target in args codec; do
    echo "== fuzz $target for ${SECONDS_PER_TARGET}s"
    cargo fuzz run -O "$target" -- -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 2>&1 |
        grep -E "^(Done|stat::number_of_executed_units|stat::new_units_added)|panicked|ERROR|SUMMARY" || true
    # libFuzzer exits non-zero on a crash; pipefail would hide nothing, but be explicit.
    if ls "artifacts/$target"/crash-* >/dev/null 2>&1; then
        echo "fuzz: $target crashed; inputs in fuzz/artifacts/$target/" >&2
        exit 1
    fi
done
