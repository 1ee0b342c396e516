#!/usr/bin/env bash
# The integration suite (tests/: pytest, whole) on a machine kept busy: two CPU hogs
# (`sh -c 'while :; do :; done'`, one per core of a 2-core machine) run for the whole suite,
# started here and stopped here by PID, on success, failure or interrupt. A test that
# passes only on an idle machine fails here.
#   scripts/test-busy.sh                    Redis 7.0, then Valkey 9.1 (one of each family)
#   SERVER=redis-8.2 scripts/test-busy.sh   one server; extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
case ${SERVER:-} in redis) SERVER=redis-7.0 ;; valkey) SERVER=valkey-9.1 ;; esac
SERVERS=${SERVER:-redis-7.0 valkey-9.1}
# shellcheck disable=SC2086 # one name a word
scripts/servers.sh $SERVERS

hogs=()
# (Under set -e a failing kill or wait here would replace the run's exit status.)
stop_hogs() {
    if ((${#hogs[@]})); then
        kill "${hogs[@]}" 2>/dev/null || true
        wait "${hogs[@]}" 2>/dev/null || true
    fi
    hogs=()
}
trap stop_hogs EXIT
trap 'exit 130' INT TERM
for _ in 1 2; do
    sh -c 'while :; do :; done' &
    hogs+=($!)
done
echo "test-busy: CPU hogs running, pids ${hogs[*]}"

failed=()
for server in $SERVERS; do
    t0=$SECONDS
    echo "== pytest on $server with two CPU hogs"
    SERVER=$server python3 -m pytest tests -q "$@" || failed+=("$server")
    echo "== $server: $((SECONDS - t0)) s"
done
if ((${#failed[@]})); then
    echo "== test-busy failed on: ${failed[*]}" >&2
    exit 1
fi
