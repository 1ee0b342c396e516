"""Replays traces.json (format in README.md) through a backend: the Python client on the
module or the Lua script, the script called directly, or the local limiter, each behind a
small adapter with these methods:

    configure(key, limits)                  RL.CONFIG with the trace's limits (dicts)
    check(key, cost, inline, peek) -> dict  RL.THROTTLE (peek: RL.PEEK) with the inline limits,
                                            or None: allowed, limit, remaining,
                                            retry_after_ms, reset_after_ms, binding
    info(key) -> dict or None               RL.INFO's remaining and reset_after_ms
    reset(key) -> int                       RL.RESET's reply

A step is a check unless its `op` says otherwise (peek, config, info, reset). A trace with
`"inline": true` never configures its key: each check passes the current limits, which a
config step replaces."""


def trace_limits(trace):
    """A trace's policy as a list of limits: `limits`, or the one GCRA limit of `policy`."""
    if "policy" in trace:
        p = trace["policy"]
        return [{"kind": "gcra", "limit": p["limit"], "window_ms": p["window_ms"], "burst": p["burst"]}]
    return trace["limits"]


def observe(trace, step, backend, key, inline):
    """What `step` answers, in the shape of its `expect` (None for a config step)."""
    op = step.get("op", "throttle")
    if op == "config":
        if not trace.get("inline"):
            backend.configure(key, step["limits"])
        return None
    if op in ("throttle", "peek"):
        got = backend.check(key, step["cost"], inline, op == "peek")
        fields = ("allowed", "remaining", "retry_after_ms", "reset_after_ms")
        if "limits" in trace:
            fields += ("limit", "binding")
        return {f: got[f] for f in fields}
    if op == "info":
        info = backend.info(key)
        return None if info is None else {"remaining": info["remaining"], "reset_after_ms": info["reset_after_ms"]}
    if op == "reset":
        return {"reply": backend.reset(key)}
    raise ValueError(f"unknown op {op!r} in a trace")


def replay(trace, backend, key, set_clock, base_ms):
    """[(step, observed)] for every step of `trace`; `set_clock(ms)` moves the clock the
    backend decides by."""
    set_clock(base_ms)
    inline = trace_limits(trace) if trace.get("inline") else None
    if inline is None:
        backend.configure(key, trace_limits(trace))
    out = []
    for step in trace["steps"]:
        set_clock(base_ms + step["t_ms"])
        out.append((step, observe(trace, step, backend, key, inline)))
        if step.get("op") == "config" and inline is not None:
            inline = step["limits"]
    return out


def mismatches(trace, observed):
    return [(trace["name"], i, step, got) for i, (step, got) in enumerate(observed)
            if step.get("op") != "config" and got != step["expect"]]
