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
const START_MS = 1_764_000_000_000;

/** A trace's policy in this client's words: one limit (`policy`) or a list (`limits`). */
function policyOfTrace(t) {
  if (t.policy) return { limit: t.policy.limit, windowMs: t.policy.window_ms, burst: t.policy.burst };
  return t.limits.map((l) => (l.kind === 'sliding' ? { kind: 'sliding', limit: l.limit, windowMs: l.window_ms } : { limit: l.limit, windowMs: l.window_ms, burst: l.burst }));
}

function expected(t, step) {
  const e = step.expect;
  return {
    allowed: e.allowed,
    limit: e.limit === undefined ? t.policy.burst : e.limit,
    remaining: e.remaining,
    retryAfterMs: e.retry_after_ms,
    resetAfterMs: e.reset_after_ms,
    binding: e.binding === undefined ? 0 : e.binding,
  };
}

function numbers(v) {
  return { allowed: v.allowed, limit: Number(v.limit), remaining: Number(v.remaining), retryAfterMs: Number(v.retryAfterMs), resetAfterMs: Number(v.resetAfterMs), binding: v.binding };
}

test('the traces are there and non-trivial, SLIDING and sets included', () => {
  assert.ok(TRACES.length >= 10);
  assert.ok(TRACES.some((t) => t.limits && t.limits.length === 1 && t.limits[0].kind === 'sliding'), 'SLIDING alone');
  assert.ok(TRACES.some((t) => t.limits && t.limits.length === 4 && new Set(t.limits.map((l) => l.kind)).size === 2), 'four limits of mixed kinds');
  const denials = TRACES.flatMap((t) => t.steps).filter((s) => !s.expect.allowed);
  assert.ok(denials.length > 10);
});

test('conformance: the local limiter (injected clock)', () => {
  for (const t of TRACES) {
    const clock = { ms: BigInt(START_MS) };
    const local = new LocalLimiter({ now: () => clock.ms });
    const pol = policyOf.policy(policyOfTrace(t));
    t.steps.forEach((step, i) => {
      clock.ms = BigInt(START_MS + step.t_ms);
      const v = local.check('k', pol, BigInt(step.cost));
      assert.deepEqual(numbers(v), expected(t, step), `${t.name}, step ${i}`);
    });
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
      for (const [n, t] of TRACES.entries()) {
        const id = `trace:${n}`;
        await at(START_MS);
        await rl.configureRateLimit(id, policyOfTrace(t));
        for (const [i, step] of t.steps.entries()) {
          await at(START_MS + step.t_ms);
          const v = await rl.throttle(id, { cost: step.cost });
          assert.equal(v.path, backend === 'module' ? 'redis' : 'lua');
          assert.deepEqual(numbers(v), expected(t, step), `${t.name}, step ${i}`);
        }
      }
      const s = rl.stats();
      assert.equal(s.errors, 0);
      assert.equal(s.local, 0);
    } finally {
      client.disconnect();
      await server.stop();
    }
  });
}
