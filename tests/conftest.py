"""Fixtures: every test module gets its own fresh server; tests that need more start them
through `servers`, which stops all of them afterwards, even when a test fails."""

import shutil
import subprocess
from pathlib import Path

import pytest

from server import FLAVOUR, MODULE, REDIS_SERVER, VERSION, RedisServer


# The tests that scripts/test.sh runs only on the matrix's main servers (Redis 7.0, Redis 8.2,
# Valkey 9.1): clusters, network partitions, the exporter with Prometheus, the soak (issue 22:
# they are the slowest part of the suite, and `make test` must fit in 45 minutes on 2 cores).
# Marked `main_servers`, so that `-m "not main_servers"` leaves them out; paths relative to
# tests/.
MAIN_SERVERS_ONLY = ("cluster/", "partition/", "test_exporter.py", "test_soak_smoke.py")


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).resolve().parent
    for item in items:
        rel = Path(str(item.fspath)).resolve().relative_to(here).as_posix()
        if rel.startswith(MAIN_SERVERS_ONLY):
            item.add_marker(pytest.mark.main_servers)


def pytest_report_header(config):
    return f"server: {FLAVOUR} {'.'.join(map(str, VERSION))} ({REDIS_SERVER}); module: {MODULE}"


def pytest_sessionstart(session):
    if not MODULE.exists():
        pytest.exit(f"module not built: {MODULE} (run `make test`, which builds it)", returncode=2)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield s
    s.stop()


@pytest.fixture
def r(server):
    """A client of the module's server, on an empty database with no default policy, no
    scaling and no keyspace events."""
    c = server.client()
    # SYNC: every value is freed before the test (Valkey's FLUSHALL is lazy by default).
    c.execute_command("FLUSHALL", "SYNC")
    c.config_set("rl.default-limit", 0)
    c.config_set("rl.default-window-ms", 1000)
    c.config_set("rl.default-burst", 0)
    c.config_set("rl.scale-percent", 100)
    c.config_set("notify-keyspace-events", "")
    yield c
    c.close()


@pytest.fixture
def servers(tmp_path):
    """A factory of extra servers: `servers(**overrides)` starts one; all stop at teardown."""
    started = []

    def start(name=None, module_args=(), **overrides):
        s = RedisServer(tmp_path / (name or f"s{len(started)}"), module_args, **overrides)
        started.append(s)
        return s.start()

    yield start
    for s in started:
        s.stop()


@pytest.fixture(autouse=True)
def operator_settings_restored(request):
    """After a test on the module's shared server, puts back the settings a test may change
    outside the `r` fixture (which resets them before each test that uses it)."""
    yield
    if "server" in request.fixturenames:
        c = request.getfixturevalue("server").client()
        c.config_set("rl.scale-percent", 100)
        c.config_set("notify-keyspace-events", "")
        c.close()


@pytest.fixture(scope="session")
def clockshift(tmp_path_factory):
    """Path of the LD_PRELOAD clock-shift library (cluster/clockshift.c), compiled for this
    run: RL_CLOCK_SHIFT_MS shifts a server's wall clock, RL_CLOCK_SHIFT_FILE steps it live."""
    cc = shutil.which("cc") or shutil.which("clang") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (cc, clang or gcc) to build clockshift.c")
    out = tmp_path_factory.mktemp("clockshift") / "clockshift.so"
    src = Path(__file__).resolve().parent / "cluster" / "clockshift.c"
    subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(out), str(src)], check=True)
    return out
