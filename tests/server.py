"""Start and stop real redis-servers with the module, for the integration tests.

Each server gets a free loopback port and its own temporary directory, starts from the
project's redis.conf (with the module's absolute path and the test's overrides), and is
always stopped by PID, never by name.
"""

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

ROOT = Path(__file__).resolve().parent.parent
MODULE = Path(os.environ.get("RL_MODULE", ROOT / "target" / "release" / "librl.so")).resolve()
# SERVER picks the server the whole suite runs on, by its name in the matrix
# (scripts/servers.sh installs each into .deps/NAME/, run through .deps/NAME/server):
# redis-7.0, redis-7.2, redis-7.4, redis-8.2, valkey-8.0, valkey-8.1, valkey-9.1, or the
# aliases redis (redis-7.0) and valkey (valkey-9.1). Unset: redis-server on PATH (Debian's
# 7.0). REDIS_SERVER, a binary's path, overrides both.
SERVER = os.environ.get("SERVER", "")


def _server_binary():
    if os.environ.get("REDIS_SERVER"):
        return os.environ["REDIS_SERVER"]
    if not SERVER:
        return "redis-server"
    launcher = ROOT / ".deps" / SERVER / "server"
    if not os.access(launcher, os.X_OK):
        raise SystemExit(f"SERVER={SERVER}: {launcher} is missing: run scripts/servers.sh {SERVER} "
                         f"(names: scripts/servers.sh --list, or redis/valkey)")
    return str(launcher)


REDIS_SERVER = _server_binary()


def _flavour():
    """("redis" or "valkey", (major, minor, patch)) of REDIS_SERVER, from its --version:
    "Redis server v=7.0.15 ..." or "Valkey server v=9.1.2 ..."."""
    try:
        out = subprocess.run([REDIS_SERVER, "--version"], capture_output=True, text=True,
                             timeout=30).stdout
    except OSError as e:
        raise SystemExit(f"cannot run {REDIS_SERVER}: {e}") from None
    m = re.match(r"(\w+) server v=(\d+)\.(\d+)\.(\d+)", out)
    if not m:
        raise SystemExit(f"{REDIS_SERVER} --version: unexpected {out!r}")
    return m.group(1).lower(), tuple(int(x) for x in m.groups()[1:])


# The server the suite runs on: tests that check a server's own wording look it up in
# helpers.WORDING by these.
FLAVOUR, VERSION = _flavour()

# An override value that removes a setting from redis.conf as well (None: keep redis.conf's).
DROP = object()

# What every test server overrides in redis.conf: its own place, and no default policy so
# that a key without one is an error unless a test sets rl.default-limit.
BASE_OVERRIDES = {
    "bind": "127.0.0.1",
    "daemonize": "no",
    "enable-debug-command": "yes",
    "rl.default-limit": "0",
    "appendonly": "no",
    "save": '""',
}


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def render_config(path, overrides, module_args=()):
    """Writes redis.conf with the module's absolute path (and arguments) and `overrides`
    appended."""
    text = (ROOT / "redis.conf").read_text()
    line = " ".join(["loadmodule", str(MODULE), *map(str, module_args)])
    text = re.sub(r"(?m)^loadmodule\s+\S+", lambda _: line, text)
    for k in [k for k, v in overrides.items() if v is DROP]:
        text = re.sub(rf"(?m)^{re.escape(k)}\s.*$", "", text)
    lines = [f"{k} {v}" for k, v in overrides.items() if v is not None and v is not DROP]
    path.write_text(text + "\n# test overrides\n" + "\n".join(lines) + "\n")


def stop_process(proc, sig=signal.SIGTERM, timeout=20):
    """Stops a process this suite started, by PID: `sig`, then SIGKILL after `timeout` s."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class RedisServer:
    """One redis-server process; `overrides` are redis.conf lines (name -> value)."""

    def __init__(self, workdir, module_args=(), **overrides):
        self.dir = Path(workdir)
        self.module_args = module_args
        self.dir.mkdir(parents=True, exist_ok=True)
        self.overrides = {**BASE_OVERRIDES, **{k.replace("_", "-"): v for k, v in overrides.items()}}
        self.port = None
        self.proc = None
        # Extra environment for the process (e.g. LD_PRELOAD of the clock shim).
        self.env = {}

    @property
    def log(self):
        p = self.dir / "redis.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def start(self, timeout=15):
        for _ in range(3):
            self.port = free_port()
            conf = self.dir / "redis.conf"
            render_config(conf, {**self.overrides, "port": self.port, "dir": self.dir, "logfile": "redis.log"},
                          self.module_args)
            self.proc = subprocess.Popen([REDIS_SERVER, str(conf)], cwd=self.dir,
                                         env={**os.environ, **self.env},
                                         stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            if self._wait_ready(timeout):
                return self
            self.stop()
        raise RuntimeError(f"redis-server did not start; log:\n{self.log[-3000:]}")

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                c = self.client()
                # A server still loading its AOF/RDB answers PING with -LOADING.
                if c.ping() and c.info("persistence").get("loading") == 0:
                    return True
            except (redis.ConnectionError, redis.BusyLoadingError, redis.ResponseError):
                pass
            time.sleep(0.05)
        return False

    def client(self, **kw):
        kw.setdefault("socket_timeout", 30)
        # No silent retries: redis-py 8 retries by default, which would resend a
        # non-idempotent RL.ALLOW and wait seconds on a server a test has stopped.
        kw.setdefault("retry", Retry(NoBackoff(), 0))
        # RESP2 unless a test asks for RESP3 (redis-py 8 defaults to 3): the replies most
        # clients see; RESP3 is tested explicitly.
        kw.setdefault("protocol", 2)
        return redis.Redis(host="127.0.0.1", port=self.port, **kw)

    def stop(self, sig=signal.SIGTERM):
        """Stops the server by PID (SIGTERM saves per config; SIGKILL does not)."""
        stop_process(self.proc, sig)
        self.proc = None

    def kill(self):
        self.stop(signal.SIGKILL)

    def restart(self, **overrides):
        """Stops the server and starts it again on the same directory (its RDB/AOF)."""
        self.stop()
        self.overrides.update({k.replace("_", "-"): v for k, v in overrides.items()})
        return self.start()
