"""The wheel ships a real copy of the shared Lua script (no symlink: a copied package must
import), byte for byte the one in clients/lua, and nothing but the package; the README's
snippet runs as written and exits."""

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent.parent
SHARED = HERE.parent / "lua" / "ratelimit.lua"
PACKAGED = HERE / "distributed_rate_limiter" / "ratelimit.lua"


def test_the_packaged_lua_script_is_a_real_copy_of_the_shared_one():
    """Edit clients/lua/ratelimit.lua, then `cp clients/lua/ratelimit.lua
    clients/python/distributed_rate_limiter/`: this test fails until both are the same."""
    assert not PACKAGED.is_symlink()
    assert PACKAGED.read_bytes() == SHARED.read_bytes()


def test_pip_wheel_contents_and_an_install_from_it(tmp_path):
    out = tmp_path / "wheel"
    # Build isolation fetches setuptools (and wheel) from PyPI, as a user's pip does.
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(HERE)],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    if p.returncode != 0 and any(s in p.stderr for s in ("NewConnectionError", "Could not find a version",
                                                         "Temporary failure in name resolution")):
        pytest.skip(f"pip cannot reach PyPI for the build backend: {p.stderr[-300:]}")
    assert p.returncode == 0, p.stderr
    (wheel,) = out.glob("distributed_rate_limiter-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        package = {n for n in names if not n.startswith("distributed_rate_limiter-")}
        assert z.read("distributed_rate_limiter/ratelimit.lua") == SHARED.read_bytes()
    expected = {f"distributed_rate_limiter/{f.name}" for f in (HERE / "distributed_rate_limiter").iterdir()
                if f.suffix in (".py", ".lua")}
    assert package == expected
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    code = "import distributed_rate_limiter as d; print(len(d.operations.LUA_SOURCE) > 0)"
    run = subprocess.run([sys.executable, "-c", "import distributed_rate_limiter.operations\n" + code], cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(site)}, capture_output=True, text=True, timeout=60)
    assert run.stdout.strip() == "True", run.stderr


def test_the_readme_snippet_runs_as_written_and_exits(server):
    """The first ```python block of clients/python/README.md, with REDIS_URL set: ten True,
    then five False, and the process exits by itself."""
    readme = (HERE / "README.md").read_text()
    snippet = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    run = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "REDIS_URL": f"redis://127.0.0.1:{server.port}",
                              "PYTHONPATH": str(HERE)})
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [f"Request {i + 1} from user123: {i < 10}" for i in range(15)]
