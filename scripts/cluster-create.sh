#!/usr/bin/env bash
# Forms a Redis Cluster from running, empty nodes with `redis-cli --cluster create`, once:
# nodes that already serve slots are left as they are. Shared by scripts/cluster.sh (local
# nodes on loopback) and the docker compose init step (nodes named by service).
#   scripts/cluster-create.sh REPLICAS HOST:PORT...
# Host names are resolved to addresses first: Redis 7.0's CLUSTER MEET takes addresses only.
set -euo pipefail

replicas=$1
shift
wait_s=${WAIT_S:-60}

nodes=()
for node in "$@"; do
    host=${node%:*}
    port=${node##*:}
    if ! [[ $host =~ ^[0-9.]+$ ]]; then
        addr=""
        for _ in $(seq $((wait_s * 10))); do
            addr=$(getent hosts "$host" | awk '{print $1; exit}') && [ -n "$addr" ] && break
            sleep 0.1
        done
        [ -n "$addr" ] || { echo "cluster-create: cannot resolve $host" >&2; exit 1; }
        host=$addr
    fi
    for _ in $(seq $((wait_s * 10))); do
        redis-cli -h "$host" -p "$port" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    redis-cli -h "$host" -p "$port" ping >/dev/null 2>&1 ||
        { echo "cluster-create: $node does not answer" >&2; exit 1; }
    nodes+=("$host:$port")
done

first=${nodes[0]}
assigned=$(redis-cli -h "${first%:*}" -p "${first##*:}" cluster info |
    tr -d '\r' | awk -F: '$1 == "cluster_slots_assigned" {print $2}')
if [ "${assigned:-0}" != 0 ]; then
    echo "cluster-create: the cluster is already formed ($assigned slots assigned)"
    exit 0
fi
redis-cli --cluster create "${nodes[@]}" --cluster-replicas "$replicas" --cluster-yes
