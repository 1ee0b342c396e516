"""Throwaway redis-servers for the client tests and the trace generator.

A server here runs on a free loopback port in its own temporary directory, with or without
the module (RL_MODULE, default target/release/librl.so), optionally under frozenclock.c so
that its wall clock reads whatever instant the test sets; it is always stopped by PID.
Deliberately independent of redis.conf: a plain server (the Lua path) must not see the
module's `rl.*` settings.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
MODULE = Path(os.environ.get("RL_MODULE", ROOT / "target" / "release" / "librl.so")).resolve()
# The server: SERVER names one of the project's test matrix (scripts/servers.sh installs it
# as .deps/SERVER/server: redis-7.0 ... valkey-9.1, or the aliases redis and valkey);
# REDIS_SERVER, a binary's path, overrides it; neither: redis-server on PATH.
SERVER = os.environ.get("SERVER", "")
REDIS_SERVER = os.environ.get("REDIS_SERVER") or (str(ROOT / ".deps" / SERVER / "server") if SERVER else "redis-server")
# RL_NO_MODULE=1: every server starts without the module, so that the clients take their
# Lua path wherever a test would have used the module (scripts/test.sh runs the conformance
# and fault tests so on each server of the matrix).
NO_MODULE = os.environ.get("RL_NO_MODULE") == "1"
# The path a client reports for a check on a server started "with the module".
SERVED_PATH = "lua" if NO_MODULE else "redis"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_frozen_clock(out_dir):
    """Compiles frozenclock.c into out_dir; returns the .so path, or None without a compiler."""
    cc = shutil.which("cc") or shutil.which("clang") or shutil.which("gcc")
    if cc is None:
        return None
    out = Path(out_dir) / "frozenclock.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(out), str(HERE / "frozenclock.c")], check=True)
    return out


class Server:
    """One redis-server. `module`: load the rl module; `frozen_clock`: path of frozenclock.so
    (then `set_clock(ms)` freezes the server's wall clock at that Unix ms)."""

    def __init__(self, module=True, frozen_clock=None, port=None, extra=()):
        self.module = module and not NO_MODULE
        self.frozen_clock = frozen_clock
        self.port = port
        self.extra = list(extra)
        self.dir = Path(tempfile.mkdtemp(prefix="rl-client-"))
        self.clock_file = self.dir / "clock"
        self.proc = None

    def start(self, timeout=15):
        self.port = self.port or free_port()
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.dir), "--logfile", "redis.log",
                "--enable-debug-command", "yes", *self.extra]
        if self.module:
            args += ["--loadmodule", str(MODULE)]
        env = dict(os.environ)
        if self.frozen_clock:
            env["LD_PRELOAD"] = str(self.frozen_clock)
            env["RL_FROZEN_CLOCK_FILE"] = str(self.clock_file)
        self.proc = subprocess.Popen(args, cwd=self.dir, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        log = (self.dir / "redis.log").read_text(errors="replace") if (self.dir / "redis.log").exists() else ""
        self.stop()
        raise RuntimeError(f"redis-server did not start on {self.port}:\n{log[-2000:]}")

    def set_clock(self, ms, timeout=30):
        """Freezes the server's wall clock at Unix `ms` (needs frozen_clock); returns once a
        script on the server reads that instant. Valkey 9.1 reads the wall clock less often
        than once per command: on a busy machine, the next commands after a change still saw
        the old instant (up to ~20 commands, 16 ms, later)."""
        tmp = self.clock_file.with_suffix(".tmp")
        tmp.write_text(str(int(ms)))
        tmp.replace(self.clock_file)  # atomic: the server never reads a half-written file
        deadline = time.monotonic() + timeout
        while self.script_time_ms() != int(ms):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server's clock never showed {ms}")
            time.sleep(0.001)

    def script_time_ms(self):
        """TIME as a script reads it (EVAL, so with or without the module), in Unix ms."""
        script = b"local t = redis.call('TIME') return t[1] * 1000 + math.floor(t[2] / 1000)"
        command = [b"EVAL", script, b"0"]
        request = b"*%d\r\n" % len(command) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in command)
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(request)
            reply = b""
            while not reply.endswith(b"\r\n"):
                chunk = s.recv(64)
                if not chunk:
                    break
                reply += chunk
        assert reply.startswith(b":"), reply
        return int(reply[1:].strip())

    def send(self, sig):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a frozen (SIGSTOP) server cannot exit
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self):
        self.stop(signal.SIGKILL)

    def restart(self):
        """Starts again on the same port and directory (after stop or kill)."""
        self.stop()
        return self.start()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
