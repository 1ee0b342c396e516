"""Fixtures: real redis-servers on free loopback ports (with and without the module, with a
frozen clock for the traces), a 3-master cluster, all stopped by PID at teardown.

The package is imported from this checkout (clients/python), the server helpers from
clients/conformance/harness.py and the cluster from tests/cluster/cluster_harness.py.
"""

import sys
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

HERE = Path(__file__).resolve().parent
CLIENTS = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(CLIENTS / "conformance"))

from harness import Server, build_frozen_clock  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "issue(*numbers): needs the module commands of these issues (19, 20) "
                                       "on the module path; skipped on a module without them")


def plain_client(port, protocol=2, **kw):
    """A redis-py client as an application would make one, but with no silent retries."""
    kw.setdefault("socket_timeout", 5)
    return redis.Redis(host="127.0.0.1", port=port, protocol=protocol, retry=Retry(NoBackoff(), 0), **kw)


@pytest.fixture(scope="session")
def frozen_clock(tmp_path_factory):
    lib = build_frozen_clock(tmp_path_factory.mktemp("frozenclock"))
    if lib is None:
        pytest.skip("no C compiler for frozenclock.c")
    return lib


@pytest.fixture
def make_server():
    """A factory: make_server(module=True, frozen_clock=None) starts a fresh server."""
    started = []

    def make(**kw):
        s = Server(**kw)
        started.append(s)
        return s.start()

    yield make
    for s in started:
        s.cleanup()


@pytest.fixture(scope="module", params=["module", "lua"])
def server(request):
    """One server per test module and path: with the module, or plain (the Lua path)."""
    s = Server(module=request.param == "module").start()
    s.path = "redis" if request.param == "module" else "lua"
    try:
        yield s
    finally:
        s.cleanup()
