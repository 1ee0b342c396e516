"""`make run` and `make cluster` report success only when the server answering is the one they
started, with the rl module loaded (issue 10, item 8).

A plain redis-server (no module) occupies the port first, as Debian's package does on 6379:
both commands must fail and say that the port belongs to another server, where they used to
print "running" on any PONG. The module is the one under test (RL_MODULE), so nothing is
built, and data goes to a temporary directory (RUN_DIR, CLUSTER_DIR).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from server import MODULE, REDIS_SERVER, ROOT, free_port  # noqa: E402
from helpers import wait_until  # noqa: E402

import redis  # noqa: E402


@pytest.fixture
def plain_server(tmp_path):
    """A redis-server without the module on a free loopback port, stopped by PID."""
    port = free_port()
    proc = subprocess.Popen([REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    c = redis.Redis(port=port, protocol=2)

    def up():
        try:
            return c.ping()
        except redis.ConnectionError:
            return False

    try:
        wait_until(up, 15, "the plain redis-server to answer")
        yield port, proc.pid
    finally:
        proc.kill()
        proc.wait()


def module_names(c):
    """MODULE LIST's names (RESP2: [[b"name", b"rl", ...], ...]; Valkey 9 lists lua too)."""
    return [m[m.index(b"name") + 1] for m in c.execute_command("MODULE", "LIST")]


def make(target, tmp_path, **env):
    env = {**os.environ, "RL_MODULE": str(MODULE), "RUN_DIR": str(tmp_path / "run"),
           "CLUSTER_DIR": str(tmp_path / "cluster"), **{k: str(v) for k, v in env.items()}}
    return subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), target,
                           *[f"{k}={v}" for k, v in env.items() if k in ("PORT", "CLUSTER_PORT")]],
                          env=env, capture_output=True, text=True, timeout=120)


def test_make_run_fails_when_another_server_holds_the_port(plain_server, tmp_path):
    port, pid = plain_server
    p = make("run", tmp_path, PORT=port)
    assert p.returncode != 0, p.stdout + p.stderr
    assert f"port {port} is already in use by a redis-server (pid {pid})" in p.stderr
    assert "running" not in p.stdout
    # The plain server is untouched and still has no rl module.
    assert b"rl" not in module_names(redis.Redis(port=port, protocol=2))


def test_make_cluster_fails_when_another_server_holds_a_port(plain_server, tmp_path):
    port, pid = plain_server
    # The cluster's first port is the busy one; the script must stop before starting nodes.
    p = make("cluster", tmp_path, CLUSTER_PORT=port)
    assert p.returncode != 0, p.stdout + p.stderr
    assert f"port {port} is already in use by a redis-server (pid {pid})" in p.stderr
    assert not list((tmp_path / "cluster").glob("*/redis.pid")), "a node was started"


def test_make_run_starts_checks_and_stops_its_own_server(tmp_path):
    port = free_port()
    try:
        p = make("run", tmp_path, PORT=port)
        assert p.returncode == 0, p.stdout + p.stderr
        pid = int((tmp_path / "run" / f"redis-{port}.pid").read_text())
        assert f"running on 127.0.0.1:{port} (pid {pid}" in p.stdout
        c = redis.Redis(port=port, protocol=2)
        assert c.info("server")["process_id"] == pid
        assert b"rl" in module_names(c)
        again = make("run", tmp_path, PORT=port)
        assert again.returncode == 0 and "already running" in again.stdout, again.stderr
    finally:
        make("stop", tmp_path, PORT=port)
    pidfile = tmp_path / "run" / f"redis-{port}.pid"
    wait_until(lambda: not pidfile.exists(), 20, "the server to stop")


def test_make_run_fails_when_the_module_does_not_load(tmp_path):
    port = free_port()
    p = make("run", tmp_path, PORT=port, RL_MODULE=str(tmp_path / "missing.so"))
    assert p.returncode != 0, p.stdout + p.stderr
    assert f"no redis-server answers on 127.0.0.1:{port}" in p.stderr
    assert "running on" not in p.stdout
