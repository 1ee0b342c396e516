"""OpenTelemetry through the SDK's in-memory metric reader and span exporter, on the module and
on the Lua path: the metric and attribute names of clients/README.md and their values; the
automatic mode (a global provider set first); and, without the API package or a provider,
no import and the plain check (no extra work per call)."""

import json
import os
import subprocess
import sys
from pathlib import Path
from uuid import uuid4

import pytest

pytest.importorskip("opentelemetry.sdk")
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

from conftest import plain_client  # noqa: E402
from distributed_rate_limiter import ConfigurationError, DistributedRateLimiter  # noqa: E402
from distributed_rate_limiter.engine import Engine  # noqa: E402
from test_calls import Async  # noqa: E402

PACKAGE = Path(__file__).resolve().parents[1]


def sdk():
    reader, spans = InMemoryMetricReader(), InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(spans))
    return reader, MeterProvider(metric_readers=[reader]), spans, tp


def points(reader):
    """{metric name: [(attributes, value or (count, sum))]}"""
    out = {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            assert sm.scope.name == "distributed-rate-limiter"
            for m in sm.metrics:
                out[m.name] = (m.unit, [(dict(p.attributes), getattr(p, "value", None) if hasattr(p, "value")
                                         else (p.count, p.sum)) for p in m.data.data_points])
    return out


def test_decisions_durations_and_span_attributes(server):
    reader, mp, spans, tp = sdk()
    rl = DistributedRateLimiter(plain_client(server.port), prefix=f"ot{uuid4().hex[:8]}:", timeout_ms=2000,
                                telemetry={"meter_provider": mp, "tracer_provider": tp})
    with tp.get_tracer("app").start_as_current_span("request"):
        got = [rl.throttle("k", limit=2, window_ms=60_000) for _ in range(4)]
    rl.peek("k", limit=2, window_ms=60_000, cost=1)
    assert [d.path for d in got] == [server.path] * 3 + ["cached"]
    m = points(reader)
    unit, decisions = m["rate_limit.decisions"]
    assert unit == "{decision}"
    count = {(a["rate_limit.decision"], a["rate_limit.path"], a["rate_limit.operation"]): v for a, v in decisions}
    assert count == {("allowed", server.path, "check"): 2, ("denied", server.path, "check"): 1,
                     ("denied", "cached", "check"): 1, ("denied", "cached", "peek"): 1}
    unit, durations = m["rate_limit.check.duration"]
    assert unit == "s"
    by = {(a["rate_limit.path"], a["rate_limit.operation"]): v for a, v in durations}
    assert by[(server.path, "check")][0] == 3 and 0 < by[(server.path, "check")][1] < 6  # 3 calls, seconds
    assert m["rate_limit.degraded"] == ("1", [({}, 0)])
    assert "rate_limit.failures" not in m or all(v == 0 for _, v in m["rate_limit.failures"][1])
    (span,) = spans.get_finished_spans()
    assert dict(span.attributes) == {"rate_limit.decision": "denied", "rate_limit.path": "cached",
                                     "rate_limit.limit": 2, "rate_limit.remaining": 0,
                                     "rate_limit.retry_after_ms": got[3].retry_after_ms, "rate_limit.binding": 0}
    assert got[3].retry_after_ms > 0


def test_failures_the_degraded_gauge_and_the_failure_policy_paths():
    reader, mp, spans, tp = sdk()
    rl = DistributedRateLimiter("redis://127.0.0.1:1", telemetry={"meter_provider": mp}, breaker_failures=2)
    got = [rl.throttle("k", limit=1, window_ms=60_000).path for _ in range(3)]
    assert got == ["local"] * 3
    m = points(reader)
    assert m["rate_limit.failures"] == ("{failure}", [({"rate_limit.operation": "check"}, 2)])  # then the breaker
    count = {(a["rate_limit.decision"], a["rate_limit.path"]): v for a, v in m["rate_limit.decisions"][1]}
    assert count == {("allowed", "local"): 1, ("denied", "local"): 2}
    assert m["rate_limit.degraded"][1] == [({}, 1)]
    assert spans.get_finished_spans() == ()  # no span of its own


def test_the_asyncio_limiter_records_the_same(server):
    reader, mp, _, _ = sdk()
    rl = Async(server.port, 3, prefix=f"ot{uuid4().hex[:8]}:", telemetry={"meter_provider": mp})
    assert rl.throttle("k", limit=1, window_ms=60_000).allowed and not rl.peek("k", limit=1, window_ms=60_000)
    count = {(a["rate_limit.decision"], a["rate_limit.operation"]): v
             for a, v in points(reader)["rate_limit.decisions"][1]}
    assert count == {("allowed", "check"): 1, ("denied", "peek"): 1}


def test_bad_telemetry_options_are_refused():
    with pytest.raises(ConfigurationError, match="meter_provider and tracer_provider"):
        DistributedRateLimiter("redis://127.0.0.1:1", telemetry={"meter": 1})
    with pytest.raises(ConfigurationError, match="telemetry must be"):
        DistributedRateLimiter("redis://127.0.0.1:1", telemetry="on")


PROBE = r"""
import json, sys
block = sys.argv[1] == "block"
if block:  # as if opentelemetry were not installed
    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name == "opentelemetry" or name.startswith("opentelemetry."):
                raise ImportError(name)
    sys.meta_path.insert(0, Blocker())
if sys.argv[1] == "global":
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
import redis  # redis-py 8 itself imports opentelemetry when it is installed: not counted here
before = {m for m in sys.modules if m.startswith("opentelemetry")}
from distributed_rate_limiter import DistributedRateLimiter
kw = {"telemetry": False} if sys.argv[1] == "off" else {}
rl = DistributedRateLimiter("redis://127.0.0.1:1", breaker_failures=1, **kw)
rl.throttle("k", limit=1, window_ms=1000)
ours = {m for m in sys.modules if m.startswith("opentelemetry")} - before
out = {"imported": bool(ours), "observed": "check" in vars(rl._engine)}
if sys.argv[1] == "global":
    out["recorded"] = [m.name for rm in reader.get_metrics_data().resource_metrics
                       for sm in rm.scope_metrics for m in sm.metrics]
print(json.dumps(out))
"""


@pytest.mark.parametrize("mode, expect", [
    ("block", {"imported": False, "observed": False}),  # the API package is not installed
    ("off", {"imported": False, "observed": False}),  # telemetry=False: not even looked for
    ("unset", {"observed": False}),  # installed, no provider set: the plain check
    ("global", {"observed": True,
                "recorded": ["rate_limit.decisions", "rate_limit.check.duration", "rate_limit.failures",
                             "rate_limit.degraded"]}),
])
def test_automatic_mode_and_nothing_without_the_package_or_a_provider(mode, expect):
    p = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(PACKAGE)})
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    if mode in ("unset", "global"):
        del got["imported"]  # the API is looked up (redis-py may have imported it already)
        expect = {k: v for k, v in expect.items() if k != "imported"}
    if "recorded" in got:
        got["recorded"] = sorted(got["recorded"])
        expect = {**expect, "recorded": sorted(expect["recorded"])}
    assert got == expect
    if not expect["observed"]:
        assert Engine.check is not Engine._check_observed
