"""Replays traces-ops.json (the operations of issues 19 and 20) through anything with the
Python client's methods: DistributedRateLimiter (module or Lua path), the local limiter behind
an adapter (clients/python/tests/test_conformance_ops.py), and generate.py, which drives the
module through the Python client to regenerate the expectations. Format: README.md."""

INFO_FIELDS = ("blocked_ms", "penalty_level", "holds", "held", "next_hold_expiry_ms", "leases")
DECISION_FIELDS = ("allowed", "limit", "remaining", "retry_after_ms", "reset_after_ms", "binding")


def limits_arg(limits):
    """A trace's limits as configure_rate_limit takes them (no burst for SLIDING/CONCURRENCY)."""
    return [{k: v for k, v in lim.items() if k != "burst" or lim["kind"] == "gcra"} for lim in limits]


def penalty_args(penalty):
    return {"penalty_ms": penalty["ms"], "penalty_max_ms": penalty["max_ms"]} if penalty else {}


def error_text(e):
    """An error reply as a trace records it: its words before the first colon."""
    return str(e).split(":")[0]


def observe(backend, key, step, ids, base_id):
    """What `step` answers, in the shape of its `expect`. `ids[i]`: the id step i issued."""
    op, cost = step["op"], step.get("cost", 1)

    def ref():
        return ids[step["ref"]] if "ref" in step else base_id + step["id"]

    try:
        if op == "config":
            backend.configure_rate_limit(key, limits_arg(step["limits"]), **penalty_args(step.get("penalty")))
            return {"reply": "OK"}
        if op in ("throttle", "peek", "reserve", "acquire"):
            if op == "reserve":
                d = backend.reserve(key, cost, step.get("hold_ms"))
            elif op == "acquire":
                d = backend.acquire(key, cost)
            else:
                d = getattr(backend, op)(key, cost=cost)
            out = {f: getattr(d, f) for f in DECISION_FIELDS}
            if op in ("reserve", "acquire"):
                issued = d.reservation if op == "reserve" else d.lease
                ids[step["i"]] = issued
                out["id"] = None if issued is None else issued - base_id
            return out
        if op == "settle":
            return {"reply": backend.settle(key, ref(), step["actual"])}
        if op == "refund":
            return {"reply": backend.refund(key, cost)}
        if op == "release":
            return {"reply": int(backend.release(key, ref()))}
        if op == "renew":
            return {"reply": int(backend.renew(key, ref(), step["ms"]))}
        if op == "block":
            backend.block(key, step["ms"])
            return {"reply": "OK"}
        if op == "unblock":
            return {"reply": int(backend.unblock(key))}
        if op == "reset":
            return {"reply": backend.reset(key)}
        if op == "info":
            info = backend.info(key) or {}
            return {f: info.get(f) for f in step["expect"]} if "expect" in step else \
                {f: info.get(f) for f in INFO_FIELDS}
    except Exception as e:  # an error reply is an expectation like any other
        return {"error": error_text(e)}
    raise ValueError(f"unknown op {op!r} in a trace")


def replay(trace, backend, key, set_clock, base_ms):
    """[(step, observed)] for every step of `trace`, the key configured at offset 0 with the
    trace's limits (and penalty). `set_clock(ms)` moves the clock the backend decides by."""
    set_clock(base_ms)
    backend.configure_rate_limit(key, limits_arg(trace["limits"]), **penalty_args(trace.get("penalty")))
    ids, out = {}, []
    for i, step in enumerate(trace["steps"]):
        set_clock(base_ms + step["t_ms"])
        out.append((step, observe(backend, key, {**step, "i": i}, ids, base_ms * 1000)))
    return out


def mismatches(trace, observed):
    return [(trace["name"], i, step, got) for i, (step, got) in enumerate(observed) if got != step["expect"]]
