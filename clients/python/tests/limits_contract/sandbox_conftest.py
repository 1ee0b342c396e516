"""Replaces the conftest.py of limits' own test suite (copied from its sdist by
test_limits_contract.py) so that its storage tests run against the drl storage only: every
class parametrized over limits' storages gets one parameter, drl, on the server the outer
test started (DRL_URI), and each test starts from an empty server (DRL_FLUSH_PORTS), as
limits' fixtures flush theirs."""

import os

import pytest
import redis

from distributed_rate_limiter.limits_storage import DistributedRateLimiterStorage

URI = os.environ["DRL_URI"]
# The test machine is shared: a check may wait up to 2 s instead of the default 50 ms.
OPTIONS = {"timeout_ms": 2000}
STORAGES = {
    "uri, args, fixture": [pytest.param(URI, OPTIONS, None, id="drl")],
    "uri, args, expected_instance, fixture": [pytest.param(URI, OPTIONS, DistributedRateLimiterStorage, None,
                                                           id="drl")],
}


def pytest_pycollect_makeitem(collector, name, obj):
    """Swaps limits' storage parameters (docker services) for drl, before the class is collected."""
    marks = getattr(obj, "pytestmark", None)
    if isinstance(obj, type) and marks:
        obj.pytestmark = [pytest.mark.parametrize(m.args[0], STORAGES[m.args[0]]).mark
                          if m.name == "parametrize" and m.args[0] in STORAGES else m for m in marks]


@pytest.fixture(autouse=True)
def empty_server():
    for port in os.environ["DRL_FLUSH_PORTS"].split(","):
        redis.Redis(port=int(port)).flushall()
