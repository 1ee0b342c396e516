"""The approaches compared: each is what a user could run instead of RL.ALLOW, written by us
for this comparison after its published design.

Every candidate gets the same policy (100 requests per 60,000 ms, bursts of 100; the sliding
log also at 10) and the same key names: `rl:` + redis-benchmark's 12-digit __rand_int__,
15 bytes (`rl:000000012345`). INCR and SET ... PX are not rate limiters: they are the floor,
what Redis itself pays for one write, and for one write with an expiry.
"""

from dataclasses import dataclass
from pathlib import Path

LUA = Path(__file__).resolve().parent / "lua"
LIMIT, WINDOW_MS = 100, 60_000
KEY = "rl:__rand_int__"
# The module default every benchmark server starts with: the same policy as everyone's.
SERVER_CONFIG = {"rl.default-limit": LIMIT, "rl.default-window-ms": WINDOW_MS}


def key(i):
    """The name redis-benchmark gives client i."""
    return f"rl:{i:012d}"


@dataclass
class Candidate:
    name: str
    label: str
    # redis-benchmark's command; "{sha:x}" is replaced by the SHA1 of bench/lua/x.lua.
    command: list
    # INFO commandstats entry whose usec_per_call is this candidate's server-side cost.
    stat: str
    # The memory phase: commands that bring client `i` to its limit (what a heavy user's
    # key holds); None when `fill_script` does it server-side.
    fill: object = None
    fill_script: tuple = ()
    # Before each throughput run: configure every client (stored policies only).
    configure: bool = False


def _rl_allow(*extra):
    return ["RL.ALLOW", KEY, *extra]


CANDIDATES = [
    Candidate("rl_stored", "RL.ALLOW, stored policy (RL.CONFIG)", _rl_allow(), "rl.allow",
              fill=lambda i: [["RL.CONFIG", key(i), LIMIT, WINDOW_MS],
                              ["RL.ALLOW", key(i), "COST", LIMIT]],
              configure=True),
    Candidate("rl_default", "RL.ALLOW, default policy (rl.default-limit)", _rl_allow(),
              "rl.allow", fill=lambda i: [["RL.ALLOW", key(i), "COST", LIMIT]]),
    Candidate("rl_inline", "RL.ALLOW, inline policy (LIMIT/WINDOW)",
              _rl_allow("LIMIT", str(LIMIT), "WINDOW", str(WINDOW_MS)), "rl.allow",
              fill=lambda i: [["RL.ALLOW", key(i), "COST", LIMIT, "LIMIT", LIMIT,
                               "WINDOW", WINDOW_MS]]),
    # A 13-digit value, a millisecond timestamp: the native form of one 64-bit state.
    Candidate("set_px", "SET k v PX 60000 (floor: write + expiry)",
              ["SET", KEY, "1700000000000", "PX", str(WINDOW_MS)], "set",
              fill=lambda i: [["SET", key(i), "1700000000000", "PX", WINDOW_MS]]),
    Candidate("incr", "INCR k (floor: write)", ["INCR", KEY], "incr",
              fill=lambda i: [["INCR", key(i)]]),
    # redis_rate's arguments: burst, rate, period in seconds, cost.
    Candidate("gcra_lua", "GCRA Lua script (go-redis/redis_rate), EVALSHA",
              ["EVALSHA", "{sha:gcra_redis_rate}", "1", KEY, str(LIMIT), str(LIMIT),
               str(WINDOW_MS // 1000), "1"], "evalsha",
              fill=lambda i: [["EVALSHA", "{sha:gcra_redis_rate}", 1, key(i), LIMIT, LIMIT,
                               WINDOW_MS // 1000, LIMIT]]),
    Candidate("log10", "sliding-window log (sorted set), limit 10, EVALSHA",
              ["EVALSHA", "{sha:sliding_log}", "1", KEY, "10", str(WINDOW_MS)], "evalsha",
              fill_script=("fill_sliding_log", 10)),
    Candidate("log100", "sliding-window log (sorted set), limit 100, EVALSHA",
              ["EVALSHA", "{sha:sliding_log}", "1", KEY, str(LIMIT), str(WINDOW_MS)],
              "evalsha", fill_script=("fill_sliding_log", LIMIT)),
    Candidate("fixed", "fixed-window counter (INCR + PEXPIRE), EVALSHA",
              ["EVALSHA", "{sha:fixed_window}", "1", KEY, str(LIMIT), str(WINDOW_MS)],
              "evalsha",
              fill=lambda i: [["EVALSHA", "{sha:fixed_window}", 1, key(i), LIMIT, WINDOW_MS]]),
]

SCRIPTS = ["gcra_redis_rate", "sliding_log", "fixed_window", "fill_sliding_log"]


def load_scripts(client):
    """SCRIPT LOADs every script; returns name -> SHA1. FLUSHALL keeps them."""
    return {name: client.script_load((LUA / f"{name}.lua").read_text()) for name in SCRIPTS}


def resolve(args, shas):
    """`args` with each "{sha:x}" replaced by the script's SHA1."""
    out = []
    for a in args:
        if isinstance(a, str) and a.startswith("{sha:"):
            a = shas[a[5:-1]]
        out.append(a)
    return out
