"""Writes traces.json: request traces with the module's own answers as expectations.

Each trace configures a policy (RL.CONFIG at offset 0), then sends RL.THROTTLE calls at exact
instants on a module server whose wall clock is frozen by frozenclock.c, so every expected
number is what the module answered at that millisecond. Some steps are placed from the
previous answer (at retry_after_ms - 1 and at retry_after_ms, at reset_after_ms), which
pins the rounding of every figure to the millisecond.

Run from the repository root after building the module (or with RL_MODULE set):
    python3 clients/conformance/generate.py
Every policy stays inside the Lua script's bounds (clients/lua/ratelimit.lua), so the same
file is replayed on the module, the Lua fallback and each client's local limiter.

traces-ops.json (issues 19 and 20) is written the other way round: its steps were written by
hand, with the expectations spec-19-20.md gives ("source": "spec"). When the module has the
commands, this script replays those steps on it (driving it through the Python client, whose
module commands test_engine_ops.py pins) and writes the module's answers as the
expectations ("source": "module"); review the diff: every difference is a place where an
implementation read the spec differently. Without the commands it leaves the file as it is.
"""

import json
import random
import sys
import tempfile

import redis

import reconfiguration
from harness import HERE, Server, build_frozen_clock

OPS_FILE = HERE / "traces-ops.json"

BASE_MS = 1_700_000_000_000  # any instant: decisions depend only on offsets from it


def traces_plan(rng):
    """(name, policy, plan) where plan(step) calls step(t_ms, cost) -> expect, in time order."""

    def brief(step):
        for _ in range(15):
            step(0, 1)
        step(5999, 1)
        step(6000, 1)
        step(6001, 1)

    def steady(step):
        for i in range(12):
            step(i * 100, 1)

    def at_retry(cost_seq):
        def plan(step):
            t = 0
            for cost in cost_seq:
                e = step(t, cost)
                if not e["allowed"] and e["retry_after_ms"] > 0:
                    step(t + e["retry_after_ms"] - 1, cost)
                    t += e["retry_after_ms"]
                    step(t, cost)
        return plan

    def drain(step):
        for _ in range(4):
            e = step(0, 1)
        step(e["reset_after_ms"] - 1, 1)
        t = e["reset_after_ms"] + 3 * 86_400_000
        e = step(t, 2)
        e = step(t, 1)
        step(t + e["reset_after_ms"], 1)

    def random_plan(seed):
        r = random.Random(seed)

        def plan(step):
            t = 0
            for _ in range(40):
                cost = r.choice([1, 1, 1, 2, 3, r.randint(1, 12)])
                e = step(t, cost)
                if not e["allowed"] and e["retry_after_ms"] > 0 and r.random() < 0.5:
                    t += e["retry_after_ms"] - r.choice([0, 1])
                else:
                    t += r.choice([0, 0, 1, r.randint(0, 50), r.randint(0, 2000)])
        return plan

    out = [
        ("brief: 10 per minute, 15 at once", (10, 60_000, 0), brief),
        ("3 per second: a third of a ms carried exactly", (3, 1000, 0), at_retry([1] * 8)),
        ("burst above the limit", (5, 1000, 10), at_retry([1] * 14)),
        ("burst below the limit", (10, 1000, 2), at_retry([1, 1, 1, 1, 2, 2, 1])),
        ("steady trickle under 10 per second", (10, 1000, 0), steady),
        ("costs, one heavier than the burst", (4, 1000, 0), at_retry([3, 2, 5, 1, 4, 4])),
        ("sub-ms interval: 7 per ms", (7, 1, 0), at_retry([1] * 10 + [5, 7, 8, 3])),
        ("a million per second", (1_000_000, 1000, 500), at_retry([100, 300, 200, 5, 1])),
        ("one per day, idle for days", (1, 86_400_000, 0), drain),
        ("odd primes", (999_983, 1_000_003, 17), at_retry([5, 9, 4, 1, 1, 17, 2])),
    ]
    for i in range(6):
        limit = rng.choice([1, 2, 3, 7, 10, 60, 97, 1000, 12345])
        window = rng.choice([1, 3, 100, 1000, 1001, 60_000, 3_600_000])
        burst = rng.choice([0, 0, 1, 2, 5, limit + 3])
        out.append((f"random {i}", (limit, window, burst), random_plan(1000 + i)))

    # SLIDING and sets (issue 18): `limits` instead of `policy`.
    def sliding(limit, window):
        return {"kind": "sliding", "limit": limit, "window_ms": window, "burst": limit}

    def gcra(limit, window, burst=0):
        return {"kind": "gcra", "limit": limit, "window_ms": window, "burst": burst or limit}

    def sliding_brief(step):
        for _ in range(15):
            step(0, 1)
        step(59_999, 1)
        step(60_000, 1)
        step(60_001, 1)

    def spread(step):
        for t in (0, 10, 20, 500, 990, 999, 1000, 1009, 1010, 1011, 1500, 2000, 2010):
            step(t, 1)

    def day_quota(step):
        t = 0
        for _ in range(8):
            e = step(t, 1)
            t += 100 if e["allowed"] else e["retry_after_ms"]
        step(t, 2)
        step(86_400_000 - 1, 1)
        step(86_400_000, 1)
        step(86_400_000 + 400, 1)

    out += [
        ("sliding: 10 per minute, 15 at once", [sliding(10, 60_000)], sliding_brief),
        ("sliding: 3 per second", [sliding(3, 1000)], at_retry([1] * 8)),
        ("sliding: costs, one heavier than the limit", [sliding(4, 1000)], at_retry([3, 2, 5, 1, 4, 4])),
        ("sliding: entries leave the window one by one", [sliding(3, 1000)], spread),
        ("sliding: 1 per ms", [sliding(1, 1)], at_retry([1] * 6 + [2, 1])),
        ("set: 2 per second AND 5 per day, sliding (all-or-nothing)",
         [gcra(2, 1000), sliding(5, 86_400_000)], day_quota),
        ("set: the binding limit changes", [gcra(4, 1000, 6), sliding(3, 400)], at_retry([1] * 12 + [3, 2])),
        ("set: a cost above one limit's capacity", [sliding(10, 1000), gcra(2, 1000)], at_retry([1, 3, 1, 2, 1])),
        ("set: four limits, mixed kinds",
         [gcra(10, 1000), sliding(20, 5000), gcra(50, 60_000, 5), sliding(100, 3_600_000)], at_retry([1] * 16)),
    ]
    for i in range(6):
        limits = []
        for _ in range(rng.choice([1, 2, 2, 3, 4])):
            if rng.random() < 0.5:
                limits.append(sliding(rng.choice([1, 2, 3, 5, 10, 1000]), rng.choice([1, 7, 100, 1000, 60_000])))
            else:
                limit = rng.choice([1, 2, 3, 7, 10, 1000])
                limits.append(gcra(limit, rng.choice([1, 3, 100, 1000, 60_000]), rng.choice([0, 1, 2, limit + 3])))
        out.append((f"random set {i}", limits, random_plan(2000 + i)))
    return out


def policy_args(policy, inline):
    """A (limit, window, burst) tuple or a list of limits as RL.CONFIG's (or, inline, a
    check's LIMIT ... WINDOW ...) arguments."""
    if isinstance(policy, tuple):
        limit, window, burst = policy
        return [limit, window] + (["BURST", burst] if burst else [])
    args = []
    for i, lim in enumerate(policy):
        args += (["AND"] if i else []) + (["LIMIT", lim["limit"], "WINDOW", lim["window_ms"]] if inline
                                          else [lim["limit"], lim["window_ms"]])
        if lim["kind"] == "sliding":
            args.append("SLIDING")
        elif lim["burst"] != lim["limit"]:
            args += ["BURST", lim["burst"]]
    return args


class Recorder:
    """Sends a plan's calls to the module at their instants and records each as a step with
    the module's answer: r(t, cost) a check (RL.THROTTLE), r.peek(t, cost), r.config(t,
    limits), r.info(t), r.reset(t). With `inline`, the key is never configured: every check
    passes the current limits, which r.config replaces."""

    def __init__(self, server, client, key, base, policy, inline=False):
        self.server, self.client, self.key, self.base = server, client, key, base
        self.single = isinstance(policy, tuple)
        self.inline = policy if inline else None
        self.steps = []

    def _at(self, t_ms):
        assert not self.steps or t_ms >= self.steps[-1]["t_ms"], (self.key, t_ms)
        self.server.set_clock(self.base + t_ms)

    def _decision(self, command, t_ms, cost):
        self._at(t_ms)
        extra = policy_args(self.inline, True) if self.inline is not None else []
        a, limit, rem, retry, reset, *binding = self.client.execute_command(command, self.key, "COST", cost, *extra)
        expect = {"allowed": bool(a), "remaining": rem, "retry_after_ms": retry, "reset_after_ms": reset}
        if not self.single:
            expect.update(limit=limit, binding=binding[0] if binding else 0)
        return expect

    def __call__(self, t_ms, cost):
        expect = self._decision("RL.THROTTLE", t_ms, cost)
        self.steps.append({"t_ms": t_ms, "cost": cost, "expect": expect})
        return expect

    def peek(self, t_ms, cost=1):
        expect = self._decision("RL.PEEK", t_ms, cost)
        self.steps.append({"t_ms": t_ms, "op": "peek", "cost": cost, "expect": expect})
        return expect

    def config(self, t_ms, limits):
        self._at(t_ms)
        if self.inline is not None:
            self.inline = limits
        else:
            self.client.execute_command("RL.CONFIG", self.key, *policy_args(limits, False))
        self.steps.append({"t_ms": t_ms, "op": "config", "limits": limits})

    def info(self, t_ms):
        self._at(t_ms)
        raw = self.client.execute_command("RL.INFO", self.key)
        info = None if raw is None else dict(zip(raw[::2], raw[1::2]))
        expect = None if info is None else {"remaining": info[b"remaining"], "reset_after_ms": info[b"reset_after_ms"]}
        self.steps.append({"t_ms": t_ms, "op": "info", "expect": expect})

    def reset(self, t_ms):
        self._at(t_ms)
        self.steps.append({"t_ms": t_ms, "op": "reset", "expect": {"reply": self.client.execute_command("RL.RESET",
                                                                                                     self.key)}})


def generate(server, client):
    plans = [(name, policy, plan, False) for name, policy, plan in traces_plan(random.Random(42))]
    plans += [(name, limits, plan, False) for name, limits, plan in reconfiguration.PLANS]
    plans += [(name, limits, plan, True) for name, limits, plan in reconfiguration.INLINE_PLANS]
    traces = []
    for n, (name, policy, plan, inline) in enumerate(plans):
        key = f"trace:{n}"
        base = BASE_MS + n * 10**9
        server.set_clock(base)
        if not inline:
            client.execute_command("RL.CONFIG", key, *policy_args(policy, False))
        r = Recorder(server, client, key, base, policy, inline)
        plan(r)
        if isinstance(policy, tuple):
            limit, window, burst = policy
            head = {"policy": {"limit": limit, "window_ms": window, "burst": burst or limit}}
        else:
            head = {"limits": policy}
        traces.append({"name": name, **head, **({"inline": True} if inline else {}), "steps": r.steps})
    return traces


def dump(traces):
    """JSON with one step per line: diffs of a regenerated file stay readable."""
    parts = []
    for t in traces:
        steps = ",\n".join("    " + json.dumps(s) for s in t["steps"])
        which = "policy" if "policy" in t else "limits"
        inline = ', "inline": true' if t.get("inline") else ""
        head = f'  {{"name": {json.dumps(t["name"])}, "{which}": {json.dumps(t[which])}{inline}, "steps": ['
        parts.append(f"{head}\n{steps}\n  ]}}")
    return "[\n" + ",\n".join(parts) + "\n]\n"


def module_has_ops(client):
    """Whether the module has the commands of issues 19 (RL.UNBLOCK) and 20 (RL.RELEASE)."""
    for probe in (["RL.UNBLOCK", "probe"], ["RL.RELEASE", "probe", 1]):
        try:
            client.execute_command(*probe)
        except redis.ResponseError as e:
            if "unknown command" in str(e).lower():
                return False
    return True


def regenerate_ops(server, traces, backend="module"):
    """traces-ops.json's steps replayed on the module: its answers become the expectations.
    (`backend`: what must have answered; the tests run this on the Lua script too.)"""
    sys.path.insert(0, str(HERE.parent / "python"))
    from distributed_rate_limiter import DistributedRateLimiter

    import ops_runner
    rl = DistributedRateLimiter(redis.Redis(port=server.port, protocol=2), timeout_ms=5000, deny_cache_max_ms=0)
    out = []
    for n, trace in enumerate(traces):
        observed = ops_runner.replay(trace, rl, f"ops:{n}", server.set_clock, BASE_MS + n * 10**9)
        steps = [{**step, "expect": got} for step, got in observed]
        out.append({**trace, "source": backend, "steps": steps})
    if rl.stats()["backend"] != backend:
        sys.exit(f"generate.py: the ops traces did not run on the {backend}")
    return out


def dump_ops(traces):
    """traces-ops.json in the same one-step-per-line layout."""
    parts = []
    for t in traces:
        head = json.dumps({k: v for k, v in t.items() if k != "steps"})[:-1]
        steps = ",\n".join("    " + json.dumps(s) for s in t["steps"])
        parts.append(f'  {head}, "steps": [\n{steps}\n  ]}}')
    return "[\n" + ",\n".join(parts) + "\n]\n"


def main():
    with tempfile.TemporaryDirectory() as d:
        lib = build_frozen_clock(d)
        if lib is None:
            sys.exit("generate.py needs a C compiler for frozenclock.c")
        server = Server(module=True, frozen_clock=lib)
        server.start()
        try:
            server.set_clock(BASE_MS)
            client = redis.Redis(port=server.port, protocol=2)
            traces = generate(server, client)
            ops = json.loads(OPS_FILE.read_text())
            ops = regenerate_ops(server, ops) if module_has_ops(client) else None
        finally:
            server.cleanup()
    out = HERE / "traces.json"
    out.write_text(dump(traces))
    print(f"{out}: {len(traces)} traces, {sum(len(t['steps']) for t in traces)} steps")
    if ops is None:
        print(f"{OPS_FILE}: left as written from the spec (this module lacks RL.RESERVE/RL.ACQUIRE)")
    else:
        OPS_FILE.write_text(dump_ops(ops))
        print(f"{OPS_FILE}: {len(ops)} traces regenerated from the module")


if __name__ == "__main__":
    main()
