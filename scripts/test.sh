#!/usr/bin/env bash
# Runs every check and test: format, lints, Rust unit and property tests, then the Python
# integration and redis-cli transcript tests against real redis-servers that the tests start
# on free loopback ports. Installs what is missing first. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh --python
echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy"
cargo clippy --all-targets -- -D warnings
echo "== cargo test (unit and property tests)"
cargo test
echo "== cargo build --release"
cargo build --release
echo "== docker files (offline: compose config, hadolint, COPY sources, node start)"
scripts/check-docker.sh
echo "== fuzz: a short run of each target (scripts/fuzz.sh; FUZZ_SECONDS=600 for a long one)"
FUZZ_SECONDS=${FUZZ_SECONDS:-10} scripts/fuzz.sh
echo "== benchmarks, smoke mode (keeps bench/ working; figures are not checked)"
bench/bench.sh --smoke
echo "== pytest (integration tests against real redis-servers)"
python3 -m pytest tests "$@"
