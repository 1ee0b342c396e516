'use strict';
// The shared traces (clients/conformance/traces.json) replayed through this client on the
// module and on the Lua script (servers whose wall clock is frozen at each step's instant by
// frozenclock.c), and on the local limiter with an injected clock: every number must match.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const IoRedis = require('ioredis');
const { DistributedRateLimiter, LocalLimiter } = require('../src');
const policyOf = require('../src/policy');
const { Server, ROOT, NO_MODULE } = require('./servers');
const { isValkey, atInstants } = require('./backends');

const TRACES = JSON.parse(fs.readFileSync(path.join(ROOT, 'clients', 'conformance', 'traces.json'), 'utf8'));
const START_MS = 2_000_000_000_000; // later than today: a usage-only key expires by the server clock

/** A trace's policy in this client's words: one limit (`policy`) or a list (`limits`). */
function policyOfTrace(t) {
  if (t.policy) return { limit: t.policy.limit, windowMs: t.policy.window_ms, burst: t.policy.burst };
  return t.limits.map((l) => (l.kind === 'sliding' ? { kind: 'sliding', limit: l.limit, windowMs: l.window_ms } : { limit: l.limit, windowMs: l.window_ms, burst: l.burst }));
}

/** A trace's limits in this client's words (a config step's too). */
function policyOfLimits(limits) {
  return limits.map((l) => (l.kind === 'sliding' ? { kind: 'sliding', limit: l.limit, windowMs: l.window_ms } : { limit: l.limit, windowMs: l.window_ms, burst: l.burst }));
}

/** What a step's `expect` holds, in the trace's names (clients/conformance/traces_runner.py). */
function observedOf(t, step, got) {
  const op = step.op || 'throttle';
  if (op === 'info') return got === null ? null : { remaining: got.remaining === null ? null : Number(got.remaining), reset_after_ms: Number(got.resetAfterMs) };
  if (op === 'reset') return { reply: Number(got) };
  const o = { allowed: got.allowed, remaining: Number(got.remaining), retry_after_ms: Number(got.retryAfterMs), reset_after_ms: Number(got.resetAfterMs) };
  if (t.limits) Object.assign(o, { limit: Number(got.limit), binding: got.binding });
  else assert.equal(Number(got.limit), t.policy.burst);
  return o;
}

/**
 * Replays every step of trace `t` through `backend` ({configure(limits), check(cost, inline,
 * peek), info(), reset()}, all maybe async) with `at(ms)` moving the clock; asserts each.
 */
async function replay(t, backend, at) {
  await at(START_MS);
  let inline = t.inline ? policyOfTrace(t) : null;
  if (!inline) await backend.configure(policyOfTrace(t));
  for (const [i, step] of t.steps.entries()) {
    await at(START_MS + step.t_ms);
    const op = step.op || 'throttle';
    if (op === 'config') {
      if (inline) inline = policyOfLimits(step.limits);
      else await backend.configure(policyOfLimits(step.limits));
      continue;
    }
    let got;
    if (op === 'throttle' || op === 'peek') got = await backend.check(BigInt(step.cost), inline, op === 'peek');
    else if (op === 'info') got = await backend.info();
    else got = await backend.reset();
    assert.deepEqual(observedOf(t, step, got), step.expect, `${t.name}, step ${i} (${op})`);
  }
}

test('the traces are there and non-trivial, SLIDING and sets included', () => {
  assert.ok(TRACES.length >= 10);
  assert.ok(TRACES.some((t) => t.limits && t.limits.length === 1 && t.limits[0].kind === 'sliding'), 'SLIDING alone');
  assert.ok(TRACES.some((t) => t.limits && t.limits.length === 4 && new Set(t.limits.map((l) => l.kind)).size === 2), 'four limits of mixed kinds');
  const denials = TRACES.flatMap((t) => t.steps).filter((s) => s.expect && s.expect.allowed === false);
  assert.ok(denials.length > 10);
});

test('conformance: the local limiter (injected clock)', async () => {
  for (const t of TRACES) {
    const clock = { ms: BigInt(START_MS) };
    const local = new LocalLimiter({ now: () => clock.ms });
    const backend = {
      configure: (p) => local.configure('k', policyOf.policy(p)),
      check: (cost, inline, peek) => local.check('k', inline ? policyOf.policy(inline) : null, cost, peek ? 'peek' : 'throttle'),
      info: () => local.info('k'),
      reset: () => local.reset('k'),
    };
    await replay(t, backend, (ms) => (clock.ms = BigInt(ms)));
  }
});

for (const backend of ['module', 'lua']) {
  const skip = NO_MODULE && backend === 'module' && 'needs the module (RL_NO_MODULE=1)';
  test(`conformance: ${backend} through the client (frozen server clock)`, { skip }, async (tt) => {
    const server = await new Server({ module: backend === 'module', frozen: true }).start();
    const client = new IoRedis({ port: server.port, protocol: 2, lazyConnect: true });
    await client.connect();
    try {
      const valkey = isValkey(server);
      if (valkey && backend === 'module') return tt.skip("Valkey's clock cannot be frozen for a module's commands (frozenclock.c)");
      // Generous timeout: a decision must never fall back to the local limiter here.
      const rl = new DistributedRateLimiter(client, { timeoutMs: 5000, denyCacheMaxMs: 0 });
      const clock = { ms: START_MS };
      if (valkey) atInstants(rl, clock); // Valkey: the script's test-only now_ms (test/backends.js)
      const at = async (ms) => {
        clock.ms = ms;
        await server.setClock(ms);
      };
      let decisions = 0;
      for (const [n, t] of TRACES.entries()) {
        const id = `trace:${n}`;
        const through = {
          configure: (p) => rl.configureRateLimit(id, p),
          check: async (cost, inline, peek) => {
            const v = await (peek ? rl.peek(id, { cost, ...(inline ? { limits: inline } : {}) }) : rl.throttle(id, { cost, ...(inline ? { limits: inline } : {}) }));
            assert.equal(v.path, backend === 'module' ? 'redis' : 'lua');
            decisions += 1;
            return v;
          },
          info: () => rl.info(id),
          reset: () => rl.reset(id),
        };
        await replay(t, through, at);
      }
      if (backend === 'module') assert.equal(rl.stats().redis, decisions);
      const s = rl.stats();
      assert.equal(s.errors, 0);
      assert.equal(s.local, 0);
    } finally {
      client.disconnect();
      await server.stop();
    }
  });
}
