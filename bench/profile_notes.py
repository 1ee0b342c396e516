"""The callgrind section of results.md, from bench/profile.sh's files: instructions per call of
RL.ALLOW and SET PX, where they go, and what that says about the hot path.
"""

import re
from pathlib import Path

LINE = re.compile(r"^\s*([\d,]+) \([^)]*\)\s+(\S+?):(.+?) \[(.+)\]\s*$")
# Inclusive costs worth reading, per command: the module's steps and Redis's own.
INCLUSIVE = {
    "rl_allow": ["rl::commands::check::check", "rl_core::args::parse_request",
                 "rl::key::Key::write", "rl_core::apply::write_line", "RM_Replicate",
                 "moduleCreateArgvFromUserFormat", "lookupCommandByCString",
                 "RM_ModuleTypeSetValue", "RM_SetAbsExpire", "RM_OpenKey", "RM_ReplyWithBool"],
    "set_px": ["setGenericCommand", "setKey", "setExpire", "rewriteClientCommandVector",
               "lookupKeyWrite", "tryObjectEncoding"],
    # call'2: the commands the script calls; __vfprintf_internal: Lua numbers to strings.
    "gcra_lua": ["evalGenericCommand", "luaCallFunction", "lua_pcall", "scriptCall", "call'2",
                 "setCommand", "__vfprintf_internal"],
}
TITLE = {"rl_allow": "RL.ALLOW rl:__rand_int__",
         "rl_allow_inline": "RL.ALLOW rl:__rand_int__ LIMIT 100 WINDOW 60000",
         "rl_allow_sliding": "RL.ALLOW rl:__rand_int__ LIMIT 100 WINDOW 60000 SLIDING",
         "rl_allow_and": "RL.ALLOW rl:__rand_int__ LIMIT 10 WINDOW 1000 AND LIMIT 1000 WINDOW 86400000",
         "set_px": "SET rl:__rand_int__ 1700000000000 PX 60000",
         "gcra_lua": "EVALSHA <gcra_redis_rate> 1 rl:__rand_int__ 100 100 60 1",
         "floor_noop": "FLOOR.NOOP rl:__rand_int__ (a module command that does nothing)",
         "floor_replicate": "FLOOR.REPLICATE rl:__rand_int__ (one RedisModule_Replicate of an RL.APPLY line)"}
# The cases of the summary table, in order; the ones with a breakdown below it; issue 17's
# targets in instructions per call over SET PX's.
NAMES = ["rl_allow", "rl_allow_inline", "rl_allow_sliding", "rl_allow_and", "set_px", "gcra_lua",
         "floor_noop", "floor_replicate"]
DETAILED = ["rl_allow", "set_px", "gcra_lua"]
TARGETS = {"rl_allow": 1.25, "rl_allow_sliding": 1.5, "rl_allow_and": 1.5}


def _functions(path):
    """[(instructions, function, object)] in callgrind_annotate's order."""
    out = []
    for line in path.read_text(errors="replace").splitlines():
        m = LINE.match(line)
        if m:
            obj = Path(m.group(4)).name
            # Debian ships redis-server as a link to the one redis-check-rdb binary.
            obj = "redis-server" if obj == "redis-check-rdb" else obj
            out.append((int(m.group(1).replace(",", "")), m.group(3), obj))
    return out


class Profile:
    def __init__(self, d, totals):
        self.dir, self.totals = d, totals
        self.calls = next(iter(totals.values()))[1]

    def per_call(self, name):
        total, calls = self.totals[name]
        return total / calls

    def ratio(self, other="set_px"):
        """RL.ALLOW's instructions per call over `other`'s."""
        return self.per_call("rl_allow") / self.per_call(other)

    def has(self, name):
        return name in self.totals

    def top(self, name, n):
        return _functions(self.dir / f"exclusive.{name}.txt")[:n]

    def own(self, name):
        """Instructions per call in the module's own code (exclusive, in librl*), or None."""
        if not name.startswith("rl_"):
            return None
        mine = sum(ir for ir, _, obj in _functions(self.dir / f"exclusive.{name}.txt")
                   if obj.startswith("librl"))
        return mine / self.calls

    def inclusive(self, name):
        found = {f: ir for ir, f, _ in _functions(self.dir / f"inclusive.{name}.txt")}
        return [(f, found[f]) for f in INCLUSIVE[name] if f in found]


def load(d):
    summary = Path(d) / "summary.txt"
    if not summary.exists():
        return None
    totals = {}
    for line in summary.read_text().splitlines():
        name, total, calls = line.split()
        totals[name] = (int(total), int(calls))
    return Profile(Path(d), totals) if {"rl_allow", "set_px"} <= totals.keys() else None


def markdown(p):
    if p is None:
        return "## Where the instructions go (callgrind)\n\nNot run (`make bench-profile`)."
    parts = ["## Where the instructions go (callgrind)", "",
             f"`bench/profile.sh`: each command on its own redis-server under "
             f"`valgrind --tool=callgrind --toggle-collect=<the command's function>` "
             f"(`RedisModuleCommandDispatcher`, `setCommand`, `evalShaCommand`), so only what "
             f"INFO commandstats times is counted, with the commands a script calls; "
             f"{p.calls:,} calls over 100k clients at -P 16. Instruction counts do not move "
             f"with the machine's load. *Module's own*: the instructions in the module's own "
             f"code (functions in librl); the rest is Redis's, and moves by about ±150 per "
             f"call from run to run (its hash tables' incremental rehashing). The floors are "
             f"commands of a C module loaded beside it (`bench/floor/floor.c`).", "",
             "| command | instructions per call | × SET PX | module's own | target |",
             "| --- | ---: | ---: | ---: | --- |"]
    names = [n for n in NAMES if p.has(n)]
    for name in names:
        own = p.own(name)
        target = TARGETS.get(name)
        ratio = p.per_call(name) / p.per_call("set_px")
        verdict = (f"≤ {target}×: {'met' if ratio <= target else '**missed**'}"
                   if target else "")
        parts.append(f"| `{TITLE[name]}` | {p.per_call(name):,.0f} | {ratio:.2f} | "
                     f"{f'{own:,.0f}' if own is not None else '-'} | {verdict} |")
    for name in [n for n in DETAILED if p.has(n)]:
        parts += ["", f"**{TITLE[name]}**: inclusive instructions per call of its main steps", "",
                  "| function | per call | share |", "| --- | ---: | ---: |"]
        for f, ir in p.inclusive(name):
            parts.append(f"| `{f}` | {ir / p.calls:,.0f} | {ir / p.totals[name][0]:.1%} |")
        parts += ["", "Top functions by own (exclusive) instructions:", "",
                  "| function | object | per call | share |", "| --- | --- | ---: | ---: |"]
        for ir, f, obj in p.top(name, 15):
            parts.append(f"| `{f}` | {obj} | {ir / p.calls:,.0f} | {ir / p.totals[name][0]:.1%} |")
    return "\n".join(parts)
