'use strict';
// OpenTelemetry, optional (the `telemetry` option; names in clients/README.md, the same as the
// Python client's): what the limiter records when @opentelemetry/api is installed and a meter
// or tracer provider is set when the limiter is made (or passed as the option):
//
// - counter `rate_limit.decisions` ({decision}): `rate_limit.decision` allowed|denied,
//   `rate_limit.path` redis|lua|local|cached|failed_open|failed_closed, `rate_limit.operation`
//   check|peek|reserve|acquire;
// - histogram `rate_limit.check.duration` (s): `rate_limit.path`, `rate_limit.operation`, from
//   the call to its decision;
// - observable gauge `rate_limit.degraded` (1): 1 while the breaker is not closed, else 0;
// - counter `rate_limit.failures` ({failure}): each call Redis did not answer (timeout,
//   connection error, a refusal to serve), `rate_limit.operation`;
// - on the active span, if it is recording (never a span of its own): `rate_limit.decision`,
//   `rate_limit.path`, `rate_limit.limit`, `rate_limit.remaining`, `rate_limit.retry_after_ms`,
//   `rate_limit.binding`.
//
// Nothing here is required until a limiter is made with telemetry possible; without the
// package, a provider or with `telemetry: false`, the engine keeps its plain check: no extra
// work per call. With telemetry on, isAllowed sends what throttle sends (it needs the
// decision's path and numbers) and resolves its boolean.

const { ConfigurationError } = require('./errors');

const SCOPE = 'distributed-rate-limiter';
/** The engine's operation names where the shared ones differ. */
const OPERATION = { throttle: 'check', allow: 'check' };
/** Checks take 0.1-1 ms on a healthy Redis, up to timeoutMs (50 ms by default) when they wait; in s. */
const BUCKETS_S = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
/** The API's stand-ins while no SDK is set. */
const UNSET = new Set(['NoopMeterProvider', 'NoopTracerProvider']);

function version() {
  try {
    return require('../package.json').version;
  } catch {
    return undefined;
  }
}

/** The API package, or null when it is not installed. */
function loadApi() {
  try {
    return require('@opentelemetry/api');
  } catch {
    return null;
  }
}

/**
 * The Telemetry for the `telemetry` option (undefined: automatic; false: off; or
 * {meterProvider, tracerProvider}), or null when nothing is to be recorded. `breakerState()`:
 * the circuit breaker's state, read by the degraded gauge.
 */
function telemetryOf(option, breakerState) {
  if (option === false) return null;
  if (option !== undefined && (option === null || typeof option !== 'object' || Array.isArray(option))) {
    throw new ConfigurationError('option telemetry must be false or {meterProvider, tracerProvider}', 'telemetry');
  }
  const unknown = Object.keys(option || {}).filter((k) => k !== 'meterProvider' && k !== 'tracerProvider');
  if (unknown.length) throw new ConfigurationError(`option telemetry takes meterProvider and tracerProvider, not ${unknown.join(', ')}`, 'telemetry');
  const api = loadApi();
  if (api === null) {
    if (option) throw new ConfigurationError('telemetry providers were given but @opentelemetry/api is not installed (npm install @opentelemetry/api)', 'telemetry');
    return null;
  }
  let mp;
  let tp;
  if (option) {
    mp = option.meterProvider || null;
    tp = option.tracerProvider || null;
  } else {
    mp = api.metrics.getMeterProvider();
    tp = api.trace.getTracerProvider();
    if (mp && UNSET.has(mp.constructor.name)) mp = null;
    const delegate = tp && typeof tp.getDelegate === 'function' ? tp.getDelegate() : tp;
    if (!delegate || UNSET.has(delegate.constructor.name)) tp = null;
  }
  if (!mp && !tp) return null;
  return new Telemetry(api, mp, Boolean(tp), breakerState);
}

class Telemetry {
  constructor(api, meterProvider, spans, breakerState) {
    this.api = api;
    this.spans = spans;
    this.decisions = null;
    this.duration = null;
    this.failures = null;
    if (meterProvider) {
      const meter = meterProvider.getMeter(SCOPE, version());
      this.decisions = meter.createCounter('rate_limit.decisions', { unit: '{decision}', description: 'rate limit decisions by outcome and path' });
      this.duration = meter.createHistogram('rate_limit.check.duration', { unit: 's', description: 'time from a call to its decision', advice: { explicitBucketBoundaries: BUCKETS_S } });
      this.failures = meter.createCounter('rate_limit.failures', { unit: '{failure}', description: 'calls that Redis did not answer' });
      const degraded = meter.createObservableGauge('rate_limit.degraded', { unit: '1', description: '1 while the circuit breaker is open' });
      degraded.addCallback((result) => result.observe(breakerState() === 'closed' ? 0 : 1));
    }
  }

  /** A decision of operation `op` that took `seconds`: the counter, the histogram and the active span. */
  decided(op, d, seconds) {
    const operation = OPERATION[op] || op;
    const decision = d.allowed ? 'allowed' : 'denied';
    if (this.decisions !== null) {
      this.decisions.add(1, { 'rate_limit.decision': decision, 'rate_limit.path': d.path, 'rate_limit.operation': operation });
      this.duration.record(seconds, { 'rate_limit.path': d.path, 'rate_limit.operation': operation });
    }
    if (this.spans) {
      const span = this.api.trace.getActiveSpan();
      if (span && span.isRecording()) {
        span.setAttributes({
          'rate_limit.decision': decision,
          'rate_limit.path': d.path,
          'rate_limit.limit': d.limit,
          'rate_limit.remaining': d.remaining,
          'rate_limit.retry_after_ms': d.retryAfterMs,
          'rate_limit.binding': d.binding,
        });
      }
    }
  }

  /** A call of operation `op` that Redis did not answer. */
  failed(op) {
    if (this.failures !== null) this.failures.add(1, { 'rate_limit.operation': OPERATION[op] || op });
  }

  /**
   * The engine's check, observed: `check(clientId, opts, op)` resolving a decision (isAllowed
   * runs as throttle and resolves its boolean); argument errors are not recorded.
   */
  observe(check) {
    return (clientId, opts, op) => {
      const started = performance.now();
      const asked = op === 'allow' ? 'throttle' : op;
      return check(clientId, opts, asked).then((d) => {
        this.decided(op, d, (performance.now() - started) / 1000);
        return op === 'allow' ? d.allowed : d;
      });
    };
  }
}

module.exports = { telemetryOf, Telemetry, SCOPE };
