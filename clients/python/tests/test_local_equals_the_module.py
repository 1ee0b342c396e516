"""The local limiter against the module on random histories: the same calls at the same
instants (the module under a frozen clock, the local limiter on an injected one) must give the
same numbers. Configured keys get reconfigurations between kinds, counts and windows, chains
of them within one millisecond (which compose) and at different instants (each carrying what
was live at its own); keys without a stored policy get a different inline policy from call to
call, and the clock steps back. Compared: RL.THROTTLE and RL.PEEK (every field), RL.INFO's
remaining and reset_after_ms, and RL.RESET's reply."""

import random

import pytest

from conftest import plain_client
from distributed_rate_limiter import Limit, LocalLimiter
from test_conformance import module_limits, random_limits

BASE_MS = 1_790_000_000_000


def as_policy(limits):
    return tuple(Limit.of(limit, window, burst, kind) if kind == "gcra" else Limit.of(limit, window, kind=kind)
                 for kind, limit, window, burst in limits)


def local_info(local, key):
    """(remaining, reset_after_ms) as RL.INFO would show them for the local key (None: absent)."""
    info = local.info(key)
    return None if info is None else (info["remaining"], info["reset_after_ms"])


def module_info(client, key):
    info = client.execute_command("RL.INFO", key)
    if info is None:
        return None
    info = dict(zip(info[::2], info[1::2]))
    return info[b"remaining"], info[b"reset_after_ms"]


@pytest.mark.parametrize("inline", [False, True], ids=["configured", "inline"])
def test_the_local_limiter_equals_the_module_on_random_histories(make_server, frozen_clock, inline):
    server = make_server(module=True, frozen_clock=frozen_clock)
    mod = plain_client(server.port)
    clock = [BASE_MS]
    local = LocalLimiter(clock=lambda: clock[0])
    rng = random.Random(31 if inline else 32)
    mismatches, steps = [], 0
    for n in range(40):
        now = BASE_MS + n * 10**9
        key, limits = f"k{n}", random_limits(rng)

        def at(t):
            server.set_clock(t)
            clock[0] = t

        def configure():
            mod.execute_command("RL.CONFIG", key, *module_limits(limits, False))
            local.configure(key, as_policy(limits))

        if not inline:
            at(now)
            configure()
        for step in range(30):
            r = rng.random()
            if r < 0.12:
                limits = random_limits(rng)
                if not inline:
                    at(now)
                    configure()
                    if rng.random() < 0.5:  # a chain within the same millisecond
                        limits = random_limits(rng)
                        configure()
                if rng.random() < 0.5:
                    now += rng.choice([1, rng.randint(0, 2000), rng.randint(0, 70_000)])
                continue
            if inline and r < 0.16:
                now -= rng.randint(0, 100_000)  # the clock steps back
                continue
            at(now)
            steps += 1
            cost = rng.choice([1, 1, 1, 2, 3, rng.randint(1, 12)])
            op = rng.choice(["throttle"] * 4 + ["peek", "info"])
            if op == "info":
                a, b = module_info(mod, key), local_info(local, key)
            else:
                extra = module_limits(limits, True) if inline else []
                a = mod.execute_command(f"RL.{op.upper()}", key, "COST", cost, *extra)[:6]
                g = local.check(key, as_policy(limits), cost, op)
                b = [int(g.allowed), g.limit, g.remaining, g.retry_after_ms, g.reset_after_ms, g.binding][:len(a)]
            if a != b:
                mismatches.append((n, step, limits, op, cost, a, b))
            if op == "throttle" and a[3] > 0 and rng.random() < 0.5:
                now += a[3] - rng.choice([0, 1])
            else:
                now += rng.choice([0, 0, 1, rng.randint(0, 50), rng.randint(0, 2000), rng.randint(0, 70_000)])
        if rng.random() < 0.3:
            at(now)
            a, b = mod.execute_command("RL.RESET", key), local.reset(key)
            if a != b:
                mismatches.append((n, "reset", a, b))
    assert steps > 900
    for m in mismatches[:15]:
        print("MISMATCH", m)
    assert mismatches == []
