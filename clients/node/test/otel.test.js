'use strict';
// OpenTelemetry (src/telemetry.js; names in clients/README.md): the SDK's metric reader and
// in-memory span exporter see every metric and span attribute with its value, on the module
// and the Lua path; without a provider or without the package the engine keeps its plain check.

const test = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('child_process');
const path = require('path');
const api = require('@opentelemetry/api');
const { MeterProvider, MetricReader } = require('@opentelemetry/sdk-metrics');
const { TracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace');
const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks');
const { DistributedRateLimiter, ConfigurationError } = require('../src');
const { Engine } = require('../src/engine');
const { BACKENDS, withRedis, QUIET } = require('./adapters');

class Reader extends MetricReader {
  async onForceFlush() {}
  async onShutdown() {}
}

/** {name: [{attributes, value}]} of everything the reader collects now. */
async function collect(reader) {
  const { resourceMetrics } = await reader.collect();
  const out = {};
  for (const scope of resourceMetrics.scopeMetrics) {
    assert.equal(scope.scope.name, 'distributed-rate-limiter');
    for (const m of scope.metrics) {
      out[m.descriptor.name] = { unit: m.descriptor.unit, points: m.dataPoints.map((p) => ({ attributes: p.attributes, value: p.value })) };
    }
  }
  return out;
}

/** The value of the point with exactly `attributes` (0 when absent). */
function valueOf(metric, attributes) {
  const p = metric.points.find((x) => JSON.stringify(Object.entries(x.attributes).sort()) === JSON.stringify(Object.entries(attributes).sort()));
  return p ? p.value : 0;
}

function providers() {
  const reader = new Reader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  return { reader, meterProvider, exporter, tracerProvider };
}

api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());

test('the option: false or {meterProvider, tracerProvider}; anything else refused', () => {
  assert.throws(() => new DistributedRateLimiter('redis://127.0.0.1:1', { telemetry: true }), ConfigurationError);
  assert.throws(() => new DistributedRateLimiter('redis://127.0.0.1:1', { telemetry: { meter: 1 } }), /takes meterProvider and tracerProvider/);
  const off = new DistributedRateLimiter('redis://127.0.0.1:1', { telemetry: false, logger: QUIET });
  assert.equal(off.telemetry, null);
  assert.equal(Object.prototype.hasOwnProperty.call(off, 'check'), false, 'the plain check');
  return off.close();
});

for (const backend of BACKENDS) {
  test(`decisions, durations, the degraded gauge and the active span's attributes (${backend.name})`, () =>
    withRedis(backend, async (redis) => {
      const p = providers();
      const rl = new DistributedRateLimiter(`redis://127.0.0.1:${redis.port}`, { timeoutMs: 10_000, logger: QUIET, telemetry: { meterProvider: p.meterProvider, tracerProvider: p.tracerProvider } });
      const served = backend.module ? 'redis' : 'lua';
      try {
        const policy = { limit: 3, windowMs: 60_000 };
        const tracer = p.tracerProvider.getTracer('test');
        await tracer.startActiveSpan('request', async (span) => {
          for (let i = 0; i < 3; i++) await rl.throttle('k', policy);
          await rl.throttle('k', policy); // denied by Redis
          span.end();
        });
        assert.equal(await rl.isAllowed('k', policy), false, 'isAllowed: a boolean still (the deny cache answered)');
        await rl.peek('other', policy);
        const m = await collect(p.reader);
        const d = m['rate_limit.decisions'];
        assert.equal(d.unit, '{decision}');
        assert.equal(valueOf(d, { 'rate_limit.decision': 'allowed', 'rate_limit.path': served, 'rate_limit.operation': 'check' }), 3);
        assert.equal(valueOf(d, { 'rate_limit.decision': 'denied', 'rate_limit.path': served, 'rate_limit.operation': 'check' }), 1);
        assert.equal(valueOf(d, { 'rate_limit.decision': 'denied', 'rate_limit.path': 'cached', 'rate_limit.operation': 'check' }), 1);
        assert.equal(valueOf(d, { 'rate_limit.decision': 'allowed', 'rate_limit.path': served, 'rate_limit.operation': 'peek' }), 1);
        const h = m['rate_limit.check.duration'];
        assert.equal(h.unit, 's');
        const checks = valueOf(h, { 'rate_limit.path': served, 'rate_limit.operation': 'check' });
        assert.equal(checks.count, 4);
        assert.ok(checks.sum > 0 && checks.max < 10, `durations in seconds: ${checks.sum}`);
        assert.equal(m['rate_limit.degraded'].points[0].value, 0);
        assert.equal(m['rate_limit.failures'], undefined, 'no failure recorded');
        await p.tracerProvider.forceFlush();
        const [span] = p.exporter.getFinishedSpans();
        assert.equal(p.exporter.getFinishedSpans().length, 1, 'no span of the limiter\'s own');
        assert.deepEqual(span.attributes, {
          'rate_limit.decision': 'denied',
          'rate_limit.path': served,
          'rate_limit.limit': 3,
          'rate_limit.remaining': 0,
          'rate_limit.retry_after_ms': span.attributes['rate_limit.retry_after_ms'],
          'rate_limit.binding': 0,
        });
        const retry = span.attributes['rate_limit.retry_after_ms'];
        assert.ok(retry > 15_000 && retry <= 20_000, `GCRA 3 per minute: one request every 20 s (${retry})`);
      } finally {
        await rl.close();
      }
    }));
}

test('failures and the degraded gauge while Redis is away; local decisions', () =>
  withRedis(BACKENDS[1], async (redis) => {
    const p = providers();
    const rl = new DistributedRateLimiter(`redis://127.0.0.1:${redis.port}`, { timeoutMs: 200, breakerFailures: 1, breakerCooldownMs: 60_000, logger: QUIET, telemetry: { meterProvider: p.meterProvider } });
    try {
      await rl.throttle('k', { limit: 3, windowMs: 60_000 });
      await redis.kill();
      const d = await rl.throttle('k', { limit: 3, windowMs: 60_000 });
      assert.equal(d.path, 'local');
      await assert.rejects(rl.configureRateLimit('c', { limit: 1, windowMs: 1000 }));
      const m = await collect(p.reader);
      assert.equal(valueOf(m['rate_limit.failures'], { 'rate_limit.operation': 'check' }), 1);
      assert.equal(valueOf(m['rate_limit.failures'], { 'rate_limit.operation': 'configure' }), 1, 'a call without a fallback too');
      assert.equal(valueOf(m['rate_limit.decisions'], { 'rate_limit.decision': 'allowed', 'rate_limit.path': 'local', 'rate_limit.operation': 'check' }), 1);
      assert.equal(m['rate_limit.degraded'].points[0].value, 1, 'the breaker is open');
    } finally {
      await rl.close();
    }
  }));

/** Runs `source` in a fresh Node process (in test/); resolves its stdout, rejecting on a non-zero exit. */
function inProcess(source) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', source], { cwd: __dirname, timeout: 30_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout.trim())));
  });
}

const SRC = JSON.stringify(path.resolve(__dirname, '..', 'src'));

test('automatic: no provider set, the plain check (no wrapper, no extra work per call)', async () => {
  const out = await inProcess(`
    const { DistributedRateLimiter } = require(${SRC});
    const rl = new DistributedRateLimiter('redis://127.0.0.1:1', { logger: { warn() {}, error() {} } });
    console.log(rl.telemetry === null && !Object.prototype.hasOwnProperty.call(rl, 'check'));
    rl.close();`);
  assert.equal(out, 'true');
  // The plain check is the engine's own method, shared by every limiter.
  assert.equal(typeof Engine.prototype.check, 'function');
});

test('automatic: the package missing, nothing imported and the plain check', async () => {
  const out = await inProcess(`
    const Module = require('module');
    const resolve = Module._resolveFilename;
    Module._resolveFilename = function (request, ...rest) {
      if (request.startsWith('@opentelemetry/')) { const e = new Error('Cannot find module ' + request); e.code = 'MODULE_NOT_FOUND'; throw e; }
      return resolve.call(this, request, ...rest);
    };
    const { DistributedRateLimiter } = require(${SRC});
    const rl = new DistributedRateLimiter('redis://127.0.0.1:1', { logger: { warn() {}, error() {} } });
    const imported = Object.keys(require.cache).some((f) => f.includes('@opentelemetry'));
    let refused = false;
    try { new DistributedRateLimiter('redis://127.0.0.1:1', { telemetry: { meterProvider: {} } }); } catch (e) { refused = /not installed/.test(e.message); }
    console.log(rl.telemetry === null && !imported && refused && !Object.prototype.hasOwnProperty.call(rl, 'check'));
    rl.close();`);
  assert.equal(out, 'true');
});

test('automatic: a global meter provider set before the limiter is made is recorded to', async () => {
  const out = await inProcess(`
    const api = require('@opentelemetry/api');
    const { MeterProvider } = require('@opentelemetry/sdk-metrics');
    api.metrics.setGlobalMeterProvider(new MeterProvider());
    const { DistributedRateLimiter } = require(${SRC});
    const rl = new DistributedRateLimiter('redis://127.0.0.1:1', { logger: { warn() {}, error() {} } });
    console.log(rl.telemetry !== null && Object.prototype.hasOwnProperty.call(rl, 'check'));
    rl.close();`);
  assert.equal(out, 'true');
});
