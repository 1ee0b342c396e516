"""Files written by the version-2 module load and decide identically (issue 17).

tests/fixtures/v2.rdb and v2.aof were written by the module before issue 17
(tests/fixtures/make_v2.py): keys with several limits and SLIDING logs in RDB encoding
version 2, and RL.APPLY's set form in the AOF (whole states, LIMITS, and R-records). Their
SLIDING windows last at most 49 days, so the server runs with its clock set back to the
instant the fixture was written (the clock shim, cluster/clockshift.c); every window is at
least an hour, so each key must answer what it answered then. (Version 1's files:
test_policies.py.)"""

import json
import shutil
import time
from pathlib import Path

import pytest

from helpers import digest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXPECTED = json.loads((FIXTURES / "v2.json").read_text())
PEEK = {
    "sliding-usage": ("LIMIT", 10, "WINDOW", 4_294_967_295, "SLIDING"),
    "set-usage": ("LIMIT", 10, "WINDOW", 10**12, "BURST", 20, "AND", "LIMIT", 5, "WINDOW",
                  4_294_967_295, "SLIDING"),
    "gcra-pair-usage": ("LIMIT", 1000, "WINDOW", 10**12 - 1, "BURST", 2000, "AND", "LIMIT", 7,
                        "WINDOW", 10**12),
}


def plain(v):
    """An RL.INFO value as make_v2.py recorded it (clock-dependent fields left out)."""
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, list):
        return [{k.decode(): plain(x) for k, x in zip(m[::2], m[1::2]) if k != b"reset_after_ms"}
                for m in v]
    return v


@pytest.fixture
def at_fixture_time(servers, clockshift):
    """Starts a server on the fixture's files, its clock at the instant they were written."""
    def start(source):
        s = servers("v2", appendonly="yes" if source == "aof" else "no")
        s.stop()
        if source == "rdb":
            shutil.copy(FIXTURES / "v2.rdb", s.dir / "dump.rdb")
        else:
            d = s.dir / "appendonlydir"
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir()
            shutil.copy(FIXTURES / "v2.aof", d / "appendonly.aof.1.incr.aof")
            (d / "appendonly.aof.manifest").write_text("file appendonly.aof.1.incr.aof seq 1 type i\n")
        shift = EXPECTED["written_at_ms"] - int(time.time() * 1000)
        s.env = {"LD_PRELOAD": str(clockshift), "RL_CLOCK_SHIFT_MS": str(shift)}
        return s.start()
    return start


@pytest.mark.parametrize("source", ["rdb", "aof"])
def test_version_2_files_load_and_decide_identically(at_fixture_time, source):
    s = at_fixture_time(source)
    c = s.client()
    assert sorted(k.decode() for k in c.keys()) == sorted(EXPECTED["keys"])
    for key, want in EXPECTED["keys"].items():
        assert digest(c, key) == want["digest"].encode(), key
        peek = c.execute_command("RL.PEEK", key, *PEEK.get(key, ()))
        assert [v for i, v in enumerate(peek) if i not in (3, 4)] == want["peek"], key
        assert (c.pttl(key) > 0) == want["has_ttl"], key
        if "info" in want:
            info = c.execute_command("RL.INFO", key)
            got = {k.decode(): plain(v) for k, v in zip(info[::2], info[1::2]) if k != b"reset_after_ms"}
            assert got == want["info"], key
