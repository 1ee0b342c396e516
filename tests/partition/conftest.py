"""Fixtures for the partition tests: a private network of namespaces (skipped, saying why,
where namespaces are unavailable), always deleted with every process in it, even when a
test fails; and `figures`, which prints and keeps what a test measured."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import netns  # noqa: E402


@pytest.fixture
def net():
    reason = netns.unavailable()
    if reason:
        pytest.skip(reason)
    n = netns.Network()
    try:
        yield n
    finally:
        n.close()


@pytest.fixture
def figures(request, tmp_path, record_property):
    """`figures(name, value, unit)`: prints a measured figure, records it as a JUnit property,
    and appends it to figures.txt in the test's directory (and to $RL_FIGURES if set)."""
    def note(name, value, unit=""):
        line = f"{request.node.name}: {name} = {value} {unit}".rstrip()
        print(line)
        record_property(name, f"{value} {unit}".rstrip())
        for path in [tmp_path / "figures.txt", os.environ.get("RL_FIGURES")]:
            if path:
                with open(path, "a") as f:
                    f.write(line + "\n")

    return note
