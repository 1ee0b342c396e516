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
(Valkey: COMMAND DOCS with display_text, its COMMAND GETKEYS arity error; Valkey 9: script
errors without the script's SHA; COMMAND INFO lists the ACL categories the module gives its
commands where the server's module API has them: Redis 7.2+ and Valkey, with `@ratelimit`
from Redis 7.4 and Valkey 8), NAME.<flavour>-<X.Y>.out holds that server's whole transcript
from version X.Y on (e.g. NAME.valkey-8.0.out); the server under test uses the file of its
flavour with the highest X.Y it has reached, else NAME.out.

To (re)generate the expected outputs, run with RL_UPDATE_TRANSCRIPTS=1:

    RL_UPDATE_TRANSCRIPTS=1 RL_MODULE=/path/to/librl.so python3 -m pytest -q test_transcripts.py

which rewrites every NAME.out (on Redis 7.0; on another server NAME.<flavour>-<X.Y>.out for
its own version, only where it differs from the file the server would use without it) from
the server's actual answers instead of comparing. Then read the
diff (`git diff tests/transcripts`) and check every changed line by hand before committing.
"""

import difflib
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from server import FLAVOUR, VERSION

DIR = Path(__file__).resolve().parent / "transcripts"
CASES = sorted(DIR.glob("*.cli"))
REDIS_CLI = os.environ.get("REDIS_CLI", "redis-cli")
UPDATE = os.environ.get("RL_UPDATE_TRANSCRIPTS") == "1"
DIRECTIVE = "# redis-cli:"
TIMEOUT_S = 30


def own_name(cli, since):
    return cli.with_suffix(f".{FLAVOUR}-{since[0]}.{since[1]}.out")


def expected_file(cli, below=None):
    """The .out file the server under test answers like: its flavour's NAME.<flavour>-X.Y.out
    with the highest X.Y it has reached (and below `below`, if given), else NAME.out."""
    best = None
    for path in DIR.glob(f"{cli.stem}.{FLAVOUR}-*.out"):
        since = tuple(int(x) for x in path.name[len(f"{cli.stem}.{FLAVOUR}-"):-len(".out")].split("."))
        if since <= VERSION[:2] and (below is None or since < below) and (best is None or since > best[0]):
            best = (since, path)
    return best[1] if best else cli.with_suffix(".out")


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
    assert not [o.name for o in DIR.glob("*.*.out") if "-" not in o.name.split(".")[1]], \
        "per-server files are NAME.<flavour>-<X.Y>.out"
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
    if UPDATE:
        if FLAVOUR == "redis" and VERSION[:2] == (7, 0):
            cli.with_suffix(".out").write_text(proc.stdout)
            return
        own = own_name(cli, VERSION[:2])
        if proc.stdout != expected_file(cli, below=VERSION[:2]).read_text():
            own.write_text(proc.stdout)
        else:
            own.unlink(missing_ok=True)
        return
    out_path = expected_file(cli)
    expected = out_path.read_text()
    if proc.stdout != expected:
        diff = "".join(difflib.unified_diff(
            expected.splitlines(keepends=True), proc.stdout.splitlines(keepends=True),
            fromfile=f"{out_path.name} (expected)", tofile=f"{out_path.name} (actual)"))
        stderr = f"\nredis-cli stderr:\n{proc.stderr}" if proc.stderr else ""
        pytest.fail(f"{cli.name}: redis-cli output differs\n{diff}{stderr}", pytrace=False)
