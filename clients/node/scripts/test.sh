#!/usr/bin/env bash
# The Node client's tests, as `make test` runs them (scripts/test.sh): Node.js 20 or later
# (ioredis 6 and node-redis 6 need it), `npm ci` from package-lock.json, then every test file
# under node --test, one file at a time (the fault tests time calls; files run side by side
# would slow each other on a small machine). Fails on the first missing piece, loudly.
# The tests start their own redis-servers; RL_MODULE (default target/release/librl.so).
set -euo pipefail
cd "$(dirname "$0")/.."

node_ok() {
    command -v node >/dev/null && [ "$(node -p 'process.versions.node.split(".")[0]')" -ge 20 ]
}

if ! command -v npm >/dev/null; then
    echo "clients/node: installing nodejs and npm (apt)"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi
if ! node_ok; then
    # Debian 12 ships Node 18: take Node 20 from the npm registry (package `node`) into .node/.
    echo "clients/node: node $(node --version 2>/dev/null || echo missing) is too old; installing Node 20 into clients/node/.node (npm)"
    npm install --no-save --no-audit --no-fund --prefix .node node@20 >/dev/null
    export PATH="$PWD/.node/node_modules/.bin:$PATH"
    node_ok || { echo "clients/node: could not get Node.js 20+" >&2; exit 1; }
fi

npm ci --no-audit --no-fund --loglevel=error
npm test
