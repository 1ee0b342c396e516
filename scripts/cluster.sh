#!/usr/bin/env bash
# A local Redis Cluster of the module on loopback: MASTERS masters with REPLICAS replicas
# each, on ports PORT .. PORT+N-1 (cluster bus: port + 10000). Every node runs the project's
# redis.conf plus cluster.conf (module path, port and data directory made its own); data,
# logs and nodes.conf go to .cluster/<port>/ in the repository.
#   scripts/cluster.sh start     builds the module if missing, starts the nodes, forms the cluster;
#                                fails, saying why, if a port is answered by another server or
#                                a node runs without the rl module
#   scripts/cluster.sh status    which nodes run, the cluster's state and its slots (redis-cli --cluster check)
#   scripts/cluster.sh stop      stops the nodes (data kept: `start` brings the same cluster back)
#   scripts/cluster.sh clean     stops the nodes and deletes .cluster/
# Settings: PORT=7000 MASTERS=3 REPLICAS=1 NODE_TIMEOUT=5000 (ms), saved at the first start:
# stop, status and later starts use the saved ones until `clean`. RL_MODULE=another librl.so.
# Needs free ports PORT..PORT+N-1 and PORT+10000..PORT+10000+N-1 on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DIR=${CLUSTER_DIR:-$ROOT/.cluster}  # another directory: for the test that runs this script
MODULE=${RL_MODULE:-$ROOT/target/release/librl.so}  # as in tests/server.py
SAVED="$DIR/settings"
cmd=${1:-start}

if [ -f "$SAVED" ]; then
    asked=("${PORT:-}" "${MASTERS:-}" "${REPLICAS:-}" "${NODE_TIMEOUT:-}")
    # shellcheck source=/dev/null
    . "$SAVED"
    saved=("$PORT" "$MASTERS" "$REPLICAS" "$NODE_TIMEOUT")
    for i in 0 1 2 3; do
        if [ "$cmd" = start ] && [ -n "${asked[$i]}" ] && [ "${asked[$i]}" != "${saved[$i]}" ]; then
            echo "cluster: using the cluster already in $DIR (PORT=$PORT MASTERS=$MASTERS" \
                "REPLICAS=$REPLICAS NODE_TIMEOUT=$NODE_TIMEOUT); 'scripts/cluster.sh clean'" \
                "first to start one with other settings" >&2
            break
        fi
    done
fi
PORT=${PORT:-7000}
MASTERS=${MASTERS:-3}
REPLICAS=${REPLICAS:-1}
NODE_TIMEOUT=${NODE_TIMEOUT:-5000}
N=$((MASTERS * (1 + REPLICAS)))
PORTS=$(seq "$PORT" $((PORT + N - 1)))

pid_of() { cat "$DIR/$1/redis.pid" 2>/dev/null || true; }
running() { local pid; pid=$(pid_of "$1"); [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }
# The pid of whatever redis-server answers on port $1 (empty: nothing does).
answering_pid() {
    redis-cli -p "$1" info server 2>/dev/null | tr -d '\r' | awk -F: '$1 == "process_id" {print $2}'
}
# Any PONG is not enough: another redis-server on the port (Debian's package starts one on
# 6379) answers while our node failed to bind and exited. Succeeds if the server on port $1
# is the node this script started (by pid) with the rl module loaded; otherwise says why.
check_node() {
    local pid
    pid=$(answering_pid "$1")
    if [ -z "$pid" ]; then
        echo "cluster: node $1 did not start; last lines of $DIR/$1/redis.log:" >&2
        tail -5 "$DIR/$1/redis.log" >&2 || true
        return 1
    fi
    if [ "$pid" != "$(pid_of "$1")" ]; then
        echo "cluster: port $1 is served by another redis-server (pid $pid), not the node this" \
            "script started; stop it or pick other ports: make cluster CLUSTER_PORT=7100" >&2
        return 1
    fi
    if ! redis-cli -p "$1" module list 2>/dev/null | tr -d '\r' | grep -qx rl; then
        echo "cluster: node $1 (pid $pid) has no rl module loaded; see $DIR/$1/redis.log" >&2
        return 1
    fi
}

stop() {
    for p in $PORTS; do
        if running "$p"; then
            local pid
            pid=$(pid_of "$p")
            redis-cli -p "$p" shutdown >/dev/null 2>&1 || kill "$pid"
            # Redis deletes its pidfile as it exits (a zombie may linger until reaped).
            for _ in $(seq 100); do running "$p" || break; sleep 0.1; done
            echo "stopped node $p"
        fi
    done
}

status() {
    local up=0 first=""
    for p in $PORTS; do
        if running "$p"; then
            up=$((up + 1))
            first=${first:-$p}
            echo "node $p: running (pid $(pid_of "$p")), $(redis-cli -p "$p" role | head -1)"
        else
            echo "node $p: stopped"
        fi
    done
    [ -n "$first" ] || { echo "no node is running ('make cluster' starts them)"; return 0; }
    redis-cli -p "$first" cluster info | tr -d '\r' |
        grep -E '^cluster_(state|slots_assigned|slots_ok|slots_fail|known_nodes|size):'
    redis-cli --cluster check "127.0.0.1:$first" || true
    [ "$up" -eq "$N" ] || echo "$((N - up)) of $N nodes are down"
}

start() {
    scripts/deps.sh
    # Built only when missing, so that `start` never rebuilds under a running cluster.
    [ -f "$MODULE" ] || cargo build --release
    mkdir -p "$DIR"
    [ -f "$SAVED" ] || printf 'PORT=%s\nMASTERS=%s\nREPLICAS=%s\nNODE_TIMEOUT=%s\n' \
        "$PORT" "$MASTERS" "$REPLICAS" "$NODE_TIMEOUT" >"$SAVED"
    local addrs=()
    for p in $PORTS; do
        running "$p" && continue
        if [ -n "$(answering_pid "$p")" ]; then
            echo "cluster: port $p is already in use by a redis-server (pid $(answering_pid "$p"))" \
                "that this script did not start; stop it or pick other ports:" \
                "make cluster CLUSTER_PORT=7100" >&2
            exit 1
        fi
    done
    for p in $PORTS; do
        addrs+=("127.0.0.1:$p")
        running "$p" && continue
        rm -f "$DIR/$p/redis.pid"  # a stale one would name some other process
        mkdir -p "$DIR/$p"
        # redis.conf with the module's absolute path (relative paths resolve against `dir`),
        # then cluster.conf, then what is this node's own.
        {
            sed -e "s|^loadmodule .*|loadmodule $MODULE|" redis.conf
            echo
            cat cluster.conf
            cat <<CONF

# scripts/cluster.sh
port $p
dir $DIR/$p
cluster-node-timeout $NODE_TIMEOUT
daemonize yes
pidfile $DIR/$p/redis.pid
logfile $DIR/$p/redis.log
CONF
        } >"$DIR/$p/redis.conf"
        redis-server "$DIR/$p/redis.conf"
    done
    for p in $PORTS; do
        for _ in $(seq 100); do
            redis-cli -p "$p" ping >/dev/null 2>&1 && break
            sleep 0.1
        done
        check_node "$p" || exit 1
    done
    scripts/cluster-create.sh "$REPLICAS" "${addrs[@]}"
    # Every node must say ok: after a restart each one rejoins on its own (a master waits up
    # to a few node timeouts before it serves again), and until then it answers CLUSTERDOWN.
    local ok=0
    for _ in $(seq 600); do
        ok=0
        for p in $PORTS; do
            redis-cli -p "$p" cluster info 2>/dev/null | grep -q '^cluster_state:ok' && ok=$((ok + 1))
        done
        [ "$ok" -eq "$N" ] && break
        sleep 0.1
    done
    if [ "$ok" -ne "$N" ]; then
        echo "cluster: $((N - ok)) node(s) not in state ok after 60 s; see $DIR/*/redis.log" \
            "and 'make cluster-status'" >&2
        exit 1
    fi
    cat <<MSG
Redis Cluster with the rl module: $MASTERS masters, $REPLICAS replica(s) each, on
127.0.0.1:$PORT-$((PORT + N - 1)) (data and logs in .cluster/).
Connect:   redis-cli -c -p $PORT          (-c follows MOVED to the key's master)
Try:       RL.CONFIG user123 10 60000
           RL.ALLOW user123
State:     make cluster-status
Stop:      make cluster-stop               (keeps the data; 'scripts/cluster.sh clean' deletes it)
MSG
}

case "$cmd" in
start) start ;;
stop) stop ;;
status) status ;;
clean) stop; rm -rf "$DIR"; echo "deleted $DIR" ;;
*) echo "usage: scripts/cluster.sh start|stop|status|clean" >&2; exit 2 ;;
esac
