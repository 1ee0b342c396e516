"""redis-cli transcripts: each tests/transcripts/NAME.cli is fed to `redis-cli` on stdin and its
stdout must equal NAME.out byte for byte.

A .cli file holds one command per line. Lines starting with `#` are comments and blank lines
are ignored (the runner strips them: redis-cli would send them as commands). A first line
`# redis-cli: ARGS` gives extra redis-cli arguments, e.g. `# redis-cli: -3` for RESP3.
Every transcript starts with FLUSHALL; before each one the runner also resets the rl.default-*
configs (limit 0, window 1000 ms, burst 0) and maxmemory (0), so transcripts do not depend on
their order. Transcripts must be deterministic: windows of 60000 ms or more, so that no
request is refilled while a transcript runs, and no TTL values (check ranges in Lua instead).

NAME.out is what Redis 7.0 answers. Where another server words its own replies differently
(Valkey: COMMAND DOCS with display_text, its COMMAND GETKEYS arity error, script errors
without the script's SHA; and COMMAND INFO lists the ACL categories the module gives its
commands where the server's module API has them: 7.2+ and Valkey), NAME.<flavour>.out (e.g. NAME.valkey.out) holds that server's
whole transcript; it is used on that server (SERVER=valkey) instead of NAME.out.

To (re)generate the expected outputs, run with RL_UPDATE_TRANSCRIPTS=1:

    RL_UPDATE_TRANSCRIPTS=1 RL_MODULE=/path/to/librl.so python3 -m pytest -q test_transcripts.py

which rewrites every NAME.out (on Redis; NAME.<flavour>.out on another server, only where it
differs from NAME.out) from the server's actual answers instead of comparing. Then read the
diff (`git diff tests/transcripts`) and check every changed line by hand before committing.
"""

import difflib
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from server import FLAVOUR

DIR = Path(__file__).resolve().parent / "transcripts"
CASES = sorted(DIR.glob("*.cli"))
REDIS_CLI = os.environ.get("REDIS_CLI", "redis-cli")
UPDATE = os.environ.get("RL_UPDATE_TRANSCRIPTS") == "1"
DIRECTIVE = "# redis-cli:"
TIMEOUT_S = 30


def parse(cli_path):
    """(extra redis-cli arguments, stdin text) of a .cli file."""
    lines = cli_path.read_text().splitlines()
    args = []
    if lines and lines[0].startswith(DIRECTIVE):
        args = shlex.split(lines[0][len(DIRECTIVE):])
        lines = lines[1:]
    commands = [l for l in lines if l.strip() and not l.lstrip().startswith("#")]
    return args, "".join(l + "\n" for l in commands)


def run_cli(port, args, stdin):
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDISCLI_")}
    # No user preferences or history: the output must not depend on the machine.
    env.update(REDISCLI_RCFILE=os.devnull, REDISCLI_HISTFILE=os.devnull)
    return subprocess.run([REDIS_CLI, "-h", "127.0.0.1", "-p", str(port), *args],
                          input=stdin, capture_output=True, text=True, timeout=TIMEOUT_S, env=env)


def test_every_transcript_is_well_formed():
    assert CASES, f"no transcripts in {DIR}"
    for cli in CASES:
        _, stdin = parse(cli)
        first = stdin.split("\n", 1)[0]
        assert first.upper() == "FLUSHALL", f"{cli.name}: the first command must be FLUSHALL"
        if not UPDATE:
            assert cli.with_suffix(".out").exists(), f"{cli.name}: no .out (run with RL_UPDATE_TRANSCRIPTS=1)"
    orphans = [o.name for o in DIR.glob("*.out") if not (DIR / (o.name.split(".")[0] + ".cli")).exists()]
    assert not orphans, f".out files without a .cli: {orphans}"


@pytest.mark.parametrize("cli", CASES, ids=[c.stem for c in CASES])
def test_transcript(server, cli):
    c = server.client()
    try:
        c.flushall()
        c.config_set("rl.default-limit", 0)
        c.config_set("rl.default-window-ms", 1000)
        c.config_set("rl.default-burst", 0)
        c.config_set("maxmemory", 0)
    finally:
        c.close()
    args, stdin = parse(cli)
    proc = run_cli(server.port, args, stdin)
    assert proc.returncode == 0, f"redis-cli exited {proc.returncode}; stderr:\n{proc.stderr}"
    out_path = cli.with_suffix(".out")
    own = cli.with_suffix(f".{FLAVOUR}.out")  # this server's own wording, if it differs
    if UPDATE:
        if FLAVOUR == "redis":
            out_path.write_text(proc.stdout)
        elif proc.stdout != out_path.read_text():
            own.write_text(proc.stdout)
        else:
            own.unlink(missing_ok=True)
        return
    if FLAVOUR != "redis" and own.exists():
        out_path = own
    expected = out_path.read_text()
    if proc.stdout != expected:
        diff = "".join(difflib.unified_diff(
            expected.splitlines(keepends=True), proc.stdout.splitlines(keepends=True),
            fromfile=f"{out_path.name} (expected)", tofile=f"{out_path.name} (actual)"))
        stderr = f"\nredis-cli stderr:\n{proc.stderr}" if proc.stderr else ""
        pytest.fail(f"{cli.name}: redis-cli output differs\n{diff}{stderr}", pytrace=False)
