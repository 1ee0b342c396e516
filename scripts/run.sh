#!/usr/bin/env bash
# Builds the module and starts a local redis-server with it, in the background, from the
# project's redis.conf. Data (RDB, AOF, log) goes to .run/ in the repository.
#   PORT=6380 scripts/run.sh      another port
#   scripts/run.sh stop           stops the server this script started (by its pidfile)
# RL_MODULE=another librl.so (then nothing is built); RUN_DIR=another data directory.
# It fails, saying why, unless the server answering on PORT is the one it started (by pid)
# and has the rl module loaded: another redis-server on the port (Debian's package starts one
# on 6379) answers PING too, and then ours has failed to bind and exited.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PORT=${PORT:-6379}
RUN_DIR=${RUN_DIR:-$ROOT/.run}
MODULE=${RL_MODULE:-$ROOT/target/release/librl.so}
PIDFILE="$RUN_DIR/redis-$PORT.pid"
LOG="$RUN_DIR/redis-$PORT.log"
ANOTHER="stop it (Debian's own: systemctl stop redis-server) or use another port: make run PORT=6380"

our_pid() { cat "$PIDFILE" 2>/dev/null || true; }
ours_alive() { local pid; pid=$(our_pid); [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }
# The pid of whatever redis-server answers on PORT (empty: nothing does).
answering_pid() {
    redis-cli -p "$PORT" info server 2>/dev/null | tr -d '\r' | awk -F: '$1 == "process_id" {print $2}'
}

# Succeeds if the server on PORT is ours and has the module; otherwise says why.
check_ours() {
    local pid
    pid=$(answering_pid)
    if [ -z "$pid" ]; then
        echo "run: no redis-server answers on 127.0.0.1:$PORT; see $LOG" >&2
        return 1
    fi
    if [ "$pid" != "$(our_pid)" ]; then
        echo "run: port $PORT is served by another redis-server (pid $pid), not the one this" \
            "script started; $ANOTHER" >&2
        return 1
    fi
    if ! redis-cli -p "$PORT" module list 2>/dev/null | tr -d '\r' | grep -qx rl; then
        echo "run: the redis-server on port $PORT (pid $pid) has no rl module loaded; see $LOG" >&2
        return 1
    fi
}

if [ "${1:-}" = "stop" ]; then
    if ours_alive; then
        redis-cli -p "$PORT" shutdown >/dev/null 2>&1 || kill "$(our_pid)"
        echo "stopped redis-server on port $PORT"
    else
        echo "no redis-server started by this script on port $PORT"
    fi
    exit 0
fi

if ours_alive; then
    check_ours || exit 1
    echo "already running on port $PORT (pid $(our_pid)); 'make stop' stops it"
    exit 0
fi
# Checked before building: nothing started here could serve this port.
if [ -n "$(answering_pid)" ]; then
    echo "run: port $PORT is already in use by a redis-server (pid $(answering_pid)) that this" \
        "script did not start; $ANOTHER" >&2
    exit 1
fi

scripts/deps.sh
[ -n "${RL_MODULE:-}" ] || cargo build --release
mkdir -p "$RUN_DIR"
rm -f "$PIDFILE"  # a stale one would name some other process
# redis.conf with the module's absolute path: relative paths would resolve against `dir`.
sed -e "s|^loadmodule .*|loadmodule $MODULE|" redis.conf >"$RUN_DIR/redis.conf"
cat >>"$RUN_DIR/redis.conf" <<CONF
# scripts/run.sh
port $PORT
dir $RUN_DIR
daemonize yes
pidfile $PIDFILE
logfile $LOG
CONF
redis-server "$RUN_DIR/redis.conf"
# Redis writes its pidfile before it first answers, so once PING works the pid is there.
for _ in $(seq 50); do
    redis-cli -p "$PORT" ping >/dev/null 2>&1 && break
    [ -f "$PIDFILE" ] && ! ours_alive && break  # it exited (a module that fails to load)
    sleep 0.1
done
if ! check_ours; then
    echo "run: redis-server with the rl module did not start on port $PORT; last lines of $LOG:" >&2
    tail -20 "$LOG" >&2 || true
    exit 1
fi
cat <<MSG
redis-server with the rl module is running on 127.0.0.1:$PORT (pid $(our_pid); data and log in $RUN_DIR).
Connect:   redis-cli -p $PORT
Try:       RL.CONFIG user123 10 60000
           RL.ALLOW user123
Stop:      make stop
MSG
