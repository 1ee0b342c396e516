"""scripts/soak.py --smoke (about 20 s): the soak keeps working in CI, and on this build it
passes: no unexpected error, flat memory, and the replica's digest equal to the master's."""

import os
import subprocess
import sys

from server import MODULE, ROOT


def test_soak_smoke_passes():
    """Runs the soak as a subprocess with the module under test; its exit status is the
    verdict, its summary is printed on failure."""
    env = {**os.environ, "RL_MODULE": str(MODULE)}
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "soak.py"), "--smoke"], env=env,
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "RESULT: PASS" in out and "replica DEBUG DIGEST after settling: equal" in out, out[-6000:]
