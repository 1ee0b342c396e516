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
echo "== clients/node (node --test: module, Lua, cluster, faults, middleware; Node 20+)"
clients/node/scripts/test.sh
echo "== clients/python (pytest: module, Lua fallback, faults, cluster, middleware)"
python3 -m pytest clients/python/tests -q
# The whole pytest suite on each server of the matrix (Redis 7.0, Valkey 9); SERVER=redis or
# SERVER=valkey runs it on one. Both run even if the first fails; the run fails if either did.
failed=()
for server in ${SERVER:-redis valkey}; do
    echo "== pytest on $server (integration tests against real servers: SERVER=$server)"
    SERVER=$server python3 -m pytest tests "$@" || failed+=("$server")
done
if ((${#failed[@]})); then
    echo "== pytest failed on: ${failed[*]}" >&2
    exit 1
fi
