#!/usr/bin/env bash
# Runs every check and test: format, lints, Rust unit and property tests, then the clients'
# tests and the Python integration and redis-cli transcript tests against real servers that
# the tests start on free loopback ports, on every server of the matrix (scripts/servers.sh).
# Installs what is missing first. Extra arguments go to pytest.
#   SERVER=redis-8.2 scripts/test.sh     the server stages on that server only
# Each stage's time is printed at the end (the README's figures come from these lines).
set -euo pipefail
cd "$(dirname "$0")/.."

# The matrix. MAIN servers run the whole pytest suite; the others all of it but the tests
# marked main_servers (clusters, partitions, exporter, soak: tests/conftest.py).
MAIN="redis-7.0 redis-8.2 valkey-9.1"
ALL="redis-7.0 redis-7.2 redis-7.4 redis-8.2 valkey-8.0 valkey-8.1 valkey-9.1"
case ${SERVER:-} in redis) SERVER=redis-7.0 ;; valkey) SERVER=valkey-9.1 ;; esac
SERVERS=${SERVER:-$ALL}

# CARGO_LOCK=/path: the stages that build with cargo (cargo itself, fuzz, bench) hold that
# lock file (flock) while they run, for a machine where no two cargo builds may run at once.
locked() {
    if [ -n "${CARGO_LOCK:-}" ]; then flock "$CARGO_LOCK" "$@"; else "$@"; fi
}

timings=()
failed=()
# stage NAME COMMAND...: runs it, keeps its time; a failing stage fails the run at the end
# (so that one server's failure does not hide another's), except where set -e stops first.
stage() {
    local name=$1 t0=$SECONDS rc=0
    shift
    echo "== $name"
    "$@" || rc=$?
    timings+=("$(printf '%6ds  %s%s' $((SECONDS - t0)) "$name" "$([ $rc = 0 ] || echo '  FAILED')")")
    [ $rc = 0 ] || failed+=("$name")
}

report() {
    echo "== stage times (s)"
    printf '%s\n' "${timings[@]}"
    echo "$(printf '%6ds' "$SECONDS")  total"
}
trap report EXIT

stage "install (scripts/deps.sh, scripts/servers.sh)" bash -c 'scripts/deps.sh --python && scripts/servers.sh'
stage "cargo fmt --check" locked cargo fmt --check
stage "cargo clippy" locked cargo clippy --all-targets -- -D warnings
stage "cargo test (unit and property tests)" locked cargo test
stage "cargo build --release" locked cargo build --release
((${#failed[@]} == 0)) || { echo "== failed: ${failed[*]}" >&2; exit 1; }
stage "docker files (offline: compose config, hadolint, COPY sources, node start)" scripts/check-docker.sh
stage "fuzz: a short run of each target (FUZZ_SECONDS=600 for a long one)" \
    locked env FUZZ_SECONDS="${FUZZ_SECONDS:-10}" scripts/fuzz.sh
stage "benchmarks, smoke mode (keeps bench/ working; figures are not checked)" locked bench/bench.sh --smoke
stage "clients/node (node --test: module, Lua, cluster, faults, middleware; Node 20+)" clients/node/scripts/test.sh
stage "clients/python (pytest: module, Lua fallback, faults, cluster, middleware)" \
    python3 -m pytest clients/python/tests -q

# The clients' Lua fallback on each server: the conformance traces and the fault tests with
# no module loaded (RL_NO_MODULE=1; tests that need the module skip or are deselected).
lua_fallback() {
    # The Node that clients/node/scripts/test.sh chose (it installs Node 20 there if needed).
    local PATH=$PWD/clients/node/.node/node_modules/.bin:$PATH
    SERVER=$1 RL_NO_MODULE=1 python3 -m pytest -q -k "not module" \
        clients/python/tests/test_conformance.py clients/python/tests/test_faults.py &&
        (cd clients/node && SERVER=$1 RL_NO_MODULE=1 node --test test/conformance.test.js test/faults.test.js)
}
for server in $SERVERS; do
    stage "clients' Lua fallback on $server (conformance and fault tests, no module)" lua_fallback "$server"
done

# The pytest suite on each server of the matrix. Every server runs even if one fails.
for server in $SERVERS; do
    if [[ " $MAIN " == *" $server "* ]]; then
        stage "pytest on $server (the whole suite)" env SERVER="$server" python3 -m pytest tests -q "$@"
    else
        stage "pytest on $server (all but the main_servers tests)" \
            env SERVER="$server" python3 -m pytest tests -q -m "not main_servers" "$@"
    fi
done

if ((${#failed[@]})); then
    echo "== failed: ${failed[*]}" >&2
    exit 1
fi
