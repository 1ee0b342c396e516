"""OpenTelemetry, optional (the `telemetry` option; names in clients/README.md, the same as the
Node client's): what the limiter records when `opentelemetry-api` is installed and a meter or
tracer provider is set when the limiter is made (or passed as the option):

- counter `rate_limit.decisions` ({decision}): `rate_limit.decision` allowed|denied,
  `rate_limit.path` redis|lua|local|cached|failed_open|failed_closed, `rate_limit.operation`
  check|peek|reserve|acquire;
- histogram `rate_limit.check.duration` (s): `rate_limit.path`, `rate_limit.operation`, from
  the call to its decision;
- observable gauge `rate_limit.degraded` (1): 1 while the breaker is not closed, else 0;
- counter `rate_limit.failures` ({failure}): each call that Redis did not answer (timeout,
  connection error, a refusal to serve), `rate_limit.operation`;
- on the active span, if it is recording (never a span of its own): `rate_limit.decision`,
  `rate_limit.path`, `rate_limit.limit`, `rate_limit.remaining`, `rate_limit.retry_after_ms`,
  `rate_limit.binding`.

Nothing here imports opentelemetry until a limiter is made with telemetry possible; without
it (or with `telemetry=False`) the engine runs its plain methods: no extra work per call."""

from .errors import ConfigurationError

SCOPE = "distributed-rate-limiter"
OPERATION = {"throttle": "check"}  # the engine's names where the shared ones differ
# Checks take 0.1-1 ms on a healthy Redis, up to timeout_ms (50 ms by default) when they wait.
BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
# The API's stand-ins while no SDK is set (the meter one is private, so it is named here).
UNSET = ("_ProxyMeterProvider", "ProxyMeterProvider", "NoOpMeterProvider", "ProxyTracerProvider",
         "NoOpTracerProvider")


def _version():
    try:
        from importlib.metadata import version

        return version("distributed-rate-limiter")
    except Exception:  # run from a checkout
        return None


def telemetry_of(option, breaker):
    """The Telemetry for the `telemetry` option (None: automatic; False: off; or a dict with
    `meter_provider` and/or `tracer_provider`), or None when nothing is to be recorded."""
    if option is False:
        return None
    if option is not None and not isinstance(option, dict):
        raise ConfigurationError(f"telemetry must be None, False or a dict of meter_provider/tracer_provider, "
                                 f"not {option!r}")
    unknown = set(option or {}) - {"meter_provider", "tracer_provider"}
    if unknown:
        raise ConfigurationError(f"telemetry takes meter_provider and tracer_provider, not {sorted(unknown)}")
    try:
        from opentelemetry import metrics, trace
    except ImportError:
        if option:
            raise ConfigurationError("telemetry providers were given but opentelemetry-api is not installed "
                                     "(pip install 'distributed-rate-limiter[otel]')") from None
        return None
    if option:
        mp, tp = option.get("meter_provider"), option.get("tracer_provider")
    else:
        mp, tp = metrics.get_meter_provider(), trace.get_tracer_provider()
        mp = None if type(mp).__name__ in UNSET else mp
        tp = None if type(tp).__name__ in UNSET else tp
    if mp is None and tp is None:
        return None
    return Telemetry(mp, tp is not None, breaker, trace)


def _histogram(meter):
    kw = dict(unit="s", description="time from a call to its decision")
    try:
        return meter.create_histogram("rate_limit.check.duration", explicit_bucket_boundaries_advisory=BUCKETS_S,
                                      **kw)
    except TypeError:  # opentelemetry-api before 1.23 takes no bucket advice
        return meter.create_histogram("rate_limit.check.duration", **kw)


class Telemetry:
    def __init__(self, meter_provider, spans, breaker, trace):
        self._trace = trace if spans else None
        self._decisions = self._duration = self._failures = None
        if meter_provider is not None:
            meter = meter_provider.get_meter(SCOPE, _version())
            self._decisions = meter.create_counter("rate_limit.decisions", unit="{decision}",
                                                   description="rate limit decisions by outcome and path")
            self._duration = _histogram(meter)
            self._failures = meter.create_counter("rate_limit.failures", unit="{failure}",
                                                  description="calls that Redis did not answer")

            def degraded(_options):
                from opentelemetry.metrics import Observation

                return [Observation(0 if breaker.state == "closed" else 1)]

            meter.create_observable_gauge("rate_limit.degraded", callbacks=[degraded], unit="1",
                                          description="1 while the circuit breaker is open")

    def decided(self, op_name, d, seconds):
        operation = OPERATION.get(op_name, op_name)
        if self._decisions is not None:
            self._decisions.add(1, {"rate_limit.decision": "allowed" if d.allowed else "denied",
                                    "rate_limit.path": d.path, "rate_limit.operation": operation})
            self._duration.record(seconds, {"rate_limit.path": d.path, "rate_limit.operation": operation})
        if self._trace is not None:
            span = self._trace.get_current_span()
            if span.is_recording():
                span.set_attributes({"rate_limit.decision": "allowed" if d.allowed else "denied",
                                     "rate_limit.path": d.path, "rate_limit.limit": d.limit,
                                     "rate_limit.remaining": d.remaining,
                                     "rate_limit.retry_after_ms": d.retry_after_ms, "rate_limit.binding": d.binding})

    def failed(self, op_name):
        if self._failures is not None:
            self._failures.add(1, {"rate_limit.operation": OPERATION.get(op_name, op_name)})
