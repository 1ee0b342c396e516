"""`pip install ./clients/python` ships the shared Lua script (a symlink in the source tree)
as package data, byte for byte."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent.parent


def test_pip_install_from_the_clone_includes_the_lua_script(tmp_path):
    target = tmp_path / "site"
    # From a copy of the clone's layout (the symlink points at ../../lua), so the in-tree
    # build leaves nothing in the working tree.
    clone = tmp_path / "clone" / "clients"
    shutil.copytree(HERE, clone / "python", symlinks=True,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests"))
    shutil.copytree(HERE.parent / "lua", clone / "lua")
    # Build isolation fetches setuptools from PyPI, as a user's pip does.
    p = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                        str(clone / "python")], capture_output=True, text=True, timeout=300)
    if p.returncode != 0 and any(s in p.stderr for s in ("NewConnectionError", "Could not find a version",
                                                         "Temporary failure in name resolution")):
        pytest.skip(f"pip cannot reach PyPI for the build backend: {p.stderr[-300:]}")
    assert p.returncode == 0, p.stderr
    installed = target / "distributed_rate_limiter" / "ratelimit.lua"
    assert not installed.is_symlink()
    assert installed.read_bytes() == (HERE.parent / "lua" / "ratelimit.lua").read_bytes()
    code = "import distributed_rate_limiter as d; print(d.DistributedRateLimiter.__module__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(target)},
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "distributed_rate_limiter.client", out.stderr
