"""Fixtures for the Redis Cluster tests: clusters of real nodes on free loopback ports (see
cluster_harness.py), always killed at teardown, even when a test fails; and `figures`, which prints and keeps what a test measured."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster_harness import Cluster  # noqa: E402


@pytest.fixture
def make_cluster(tmp_path):
    """A factory: `make_cluster(masters=3, replicas=1, **overrides)` starts a cluster."""
    started = []

    def make(**kw):
        c = Cluster(tmp_path / f"cluster{len(started)}", **kw)
        started.append(c)  # before start(): a half-formed cluster is stopped too
        return c.start()

    yield make
    for c in started:
        c.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One 3-master, 3-replica cluster shared by a module's tests that break nothing."""
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield c.start()
    finally:
        c.stop()


@pytest.fixture
def figures(request, tmp_path, record_property):
    """`figures(name, value, unit)`: prints a measured figure, records it as a JUnit property,
    and appends it to figures.txt in the test's directory (and to $RL_FIGURES if set)."""
    def note(name, value, unit=""):
        line = f"{request.node.name}: {name} = {value} {unit}".rstrip()
        print(line)
        record_property(name, f"{value} {unit}".rstrip())
        with open(tmp_path / "figures.txt", "a") as f:
            f.write(line + "\n")
        if os.environ.get("RL_FIGURES"):
            with open(os.environ["RL_FIGURES"], "a") as f:
                f.write(line + "\n")

    return note
