#!/usr/bin/env bash
# Builds the module and starts a local redis-server with it, in the background, from the
# project's redis.conf. Data (RDB, AOF, log) goes to .run/ in the repository.
#   PORT=6380 scripts/run.sh      another port
#   scripts/run.sh stop           stops the server this script started (by its pidfile)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PORT=${PORT:-6379}
RUN_DIR="$ROOT/.run"
PIDFILE="$RUN_DIR/redis-$PORT.pid"

if [ "${1:-}" = "stop" ]; then
    if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
        redis-cli -p "$PORT" shutdown >/dev/null 2>&1 || kill "$(cat "$PIDFILE")"
        echo "stopped redis-server on port $PORT"
    else
        echo "no redis-server started by this script on port $PORT"
    fi
    exit 0
fi

scripts/deps.sh
cargo build --release
mkdir -p "$RUN_DIR"
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "already running on port $PORT (pid $(cat "$PIDFILE")); 'make stop' stops it"
    exit 0
fi
# redis.conf with the module's absolute path: relative paths would resolve against `dir`.
sed -e "s|^loadmodule .*|loadmodule $ROOT/target/release/librl.so|" redis.conf >"$RUN_DIR/redis.conf"
cat >>"$RUN_DIR/redis.conf" <<CONF
# scripts/run.sh
port $PORT
dir $RUN_DIR
daemonize yes
pidfile $PIDFILE
logfile $RUN_DIR/redis-$PORT.log
CONF
redis-server "$RUN_DIR/redis.conf"
for _ in $(seq 50); do
    redis-cli -p "$PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
done
if ! redis-cli -p "$PORT" ping >/dev/null 2>&1; then
    echo "redis-server did not start; see $RUN_DIR/redis-$PORT.log" >&2
    tail -20 "$RUN_DIR/redis-$PORT.log" >&2
    exit 1
fi
cat <<MSG
redis-server with the rl module is running on 127.0.0.1:$PORT (data and log in .run/).
Connect:   redis-cli -p $PORT
Try:       RL.CONFIG user123 10 60000
           RL.ALLOW user123
Stop:      make stop
MSG
