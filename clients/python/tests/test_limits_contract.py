"""limits' own storage tests, from its PyPI source distribution, run against the drl storage:
on the module, on the Lua path and on a Redis Cluster (drl+cluster://).

The sdist of the installed limits (`pip download --no-binary :all: limits==<version>`) is
cached in .deps/; its tests/ are copied into a temporary directory with
limits_contract/sandbox_conftest.py as their conftest.py (drl as the only storage), and run
in a pytest of their own. Every test that applies must pass; the ones that do not apply are
listed in DOES_NOT_APPLY with why, and must fail (so a change that makes one pass is seen)."""

import json
import os
import shutil
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

limits = pytest.importorskip("limits")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
VERSION = limits.__version__
CACHE = ROOT / ".deps" / f"limits-{VERSION}-sdist"

# The storage tests of limits that apply to any storage that supports its three strategies.
RUN = ["tests/test_storage.py::TestConcreteStorages", "tests/test_strategy.py"]
DOES_NOT_APPLY = {
    "test_strategy.py::TestSlidingWindow::test_sliding_window_counter_previous_window":
        "tests the counter's weighted approximation (hits of the previous window still count, decaying over the "
        "next one); the drl storage decides a sliding-window counter with SLIDING, exactly: hits older than one "
        "window no longer count",
    "test_strategy.py::TestMovingWindow::test_moving_window_huge_cost":
        "a moving window of 1,000,000 per 2 s: limits' moving window is exact and the module's exact SLIDING holds "
        "at most 1000 per window, so the storage refuses it (InvalidArgument) instead of weakening it to GCRA",
}
NOT_RUN = {
    "tests/test_storage.py::TestBaseStorage": "tests limits' storage registry with storages the test defines",
    "tests/test_storage.py::TestStorageErrors": "tests limits' error wrapping with a storage the test defines",
    "tests/storage/test_redis.py": "reads limits' own Redis key format (a string counter at key_prefix:key)",
    "tests/storage/test_memory.py": "limits' in-memory storage",
    "tests/test_storage_schema.py, test_limits.py, test_limit_granularities.py, test_ratelimit_parser.py, "
    "test_utils.py": "limits' own URI, item and parser code, no storage",
    "tests/aio/": "the limits.aio storages: the drl storage is sync (flask-limiter and slowapi use limits' sync "
                  "API)",
    "tests/benchmarks/": "benchmarks, not a contract",
}


def sdist_tests():
    """limits' tests/ from its sdist, fetched once into .deps/."""
    tests = CACHE / f"limits-{VERSION}" / "tests"
    if not tests.is_dir():
        shutil.rmtree(CACHE, ignore_errors=True)
        CACHE.mkdir(parents=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                        f"limits=={VERSION}", "-d", str(CACHE)], check=True, timeout=300)
        with tarfile.open(next(CACHE.glob("limits-*.tar.gz"))) as tar:
            tar.extractall(CACHE, members=[m for m in tar.getmembers() if "/tests/" in m.name])
    return tests


def run_contract(tmp_path, uri, flush_ports):
    sandbox = tmp_path / "contract"
    shutil.copytree(sdist_tests(), sandbox / "tests")
    shutil.copy(HERE / "limits_contract" / "sandbox_conftest.py", sandbox / "tests" / "conftest.py")
    # tests/utils.py names limits' docker fixtures through pytest-lazy-fixtures at import; the
    # conftest replaces those parameters, so a stand-in for `lf` is enough.
    (sandbox / "pytest_lazy_fixtures.py").write_text("def lf(name):\n    return name\n")
    (sandbox / "pytest.ini").write_text("[pytest]\n")
    env = {**os.environ, "DRL_URI": uri, "DRL_FLUSH_PORTS": ",".join(map(str, flush_ports)),
           "PYTHONPATH": os.pathsep.join([str(HERE.parent), str(sandbox), os.environ.get("PYTHONPATH", "")])}
    report = sandbox / "report.xml"
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", "pytest.ini",
                        f"--junitxml={report}", *RUN], cwd=sandbox, env=env, capture_output=True, text=True,
                       timeout=600)
    outcomes = {}
    for case in ET.parse(report).iter("testcase"):
        name = f"{case.get('classname').split('.', 1)[1].replace('.', '.py::', 1)}::{case.get('name')}"
        failed = case.find("failure") is not None or case.find("error") is not None
        outcomes[name] = "skipped" if case.find("skipped") is not None else "failed" if failed else "passed"
    return outcomes, p.stdout[-6000:]


def check(outcomes, log):
    assert outcomes, log
    base = {name.split("[")[0]: o for name, o in outcomes.items()}
    wrong = {n: o for n, o in base.items() if (o == "failed") != (n in DOES_NOT_APPLY) or o == "skipped"}
    assert not wrong, f"{json.dumps(wrong, indent=1)}\n{log}"
    passed = sum(o == "passed" for o in base.values())
    print(f"limits {VERSION} storage tests on drl: {passed} passed, {len(DOES_NOT_APPLY)} do not apply")


def test_limits_storage_tests_pass_on_drl(server, tmp_path):
    outcomes, log = run_contract(tmp_path, f"drl://127.0.0.1:{server.port}", [server.port])
    check(outcomes, log)
    assert len(outcomes) == 27


def test_limits_storage_tests_pass_on_drl_cluster(tmp_path, tmp_path_factory):
    sys.path.insert(0, str(ROOT / "tests" / "cluster"))
    from cluster_harness import Cluster

    cluster = Cluster(tmp_path_factory.mktemp("cluster"), masters=3, replicas=0)
    try:
        cluster.start()
        ports = [n.port for n in cluster.masters()]
        outcomes, log = run_contract(tmp_path, f"drl+cluster://127.0.0.1:{ports[0]}", ports)
    finally:
        cluster.stop()
    check(outcomes, log)
