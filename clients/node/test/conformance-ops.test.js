'use strict';
// clients/conformance/traces-ops.json (the operations of issues 19 and 20: refunds,
// reservations, penalties, blocks, leases, the id sequence) replayed on the local limiter
// (injected clock) and through this client on the Lua script and on the module (frozen server
// clock), as clients/conformance/ops_runner.py replays them for Python: every reply must match.
// A trace marked "source": "spec" was written by hand from the spec until a module had the
// commands; generate.py then rewrites its expectations from the module.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { LocalLimiter } = require('../src');
const policyOf = require('../src/policy');
const { ROOT } = require('./servers');
const { open, START_MS } = require('./backends');

const TRACES = JSON.parse(fs.readFileSync(path.join(ROOT, 'clients', 'conformance', 'traces-ops.json'), 'utf8'));
const INFO_FIELDS = ['blocked_ms', 'penalty_level', 'holds', 'held', 'next_hold_expiry_ms', 'leases'];
const INFO_NAMES = { blocked_ms: 'blockedMs', penalty_level: 'penaltyLevel', holds: 'holds', held: 'held', next_hold_expiry_ms: 'nextHoldExpiryMs', leases: 'leases' };
const COMMANDS = ['RL.REFUND', 'RL.RESERVE', 'RL.SETTLE', 'RL.BLOCK', 'RL.UNBLOCK', 'RL.ACQUIRE', 'RL.RELEASE', 'RL.RENEW'];

/** A trace's limits and penalty in this client's words. */
function policyArg(limits, penalty) {
  const list = limits.map((l) => (l.kind === 'gcra' ? { limit: l.limit, windowMs: l.window_ms, burst: l.burst } : { kind: l.kind, limit: l.limit, windowMs: l.window_ms }));
  return penalty ? { limits: list, penaltyMs: penalty.ms, penaltyMaxMs: penalty.max_ms } : { limits: list };
}

function decision(d) {
  const n = (x) => (typeof x === 'bigint' ? Number(x) : x);
  return { allowed: d.allowed, limit: n(d.limit), remaining: n(d.remaining), retry_after_ms: n(d.retryAfterMs), reset_after_ms: n(d.resetAfterMs), binding: d.binding };
}

/** An error as a trace records it: its words before the first colon, without the ERR prefix. */
function errorText(err) {
  return String(err.message).replace(/^ERR /, '').split(':')[0];
}

/** The local limiter behind the client's method names (ids as BigInt offsets from base). */
function localBackend(clock) {
  const local = new LocalLimiter({ now: () => clock.ms });
  let pol = null;
  const grant = (r) => ({ ...r, issued: r.id });
  return {
    configure: (key, p) => {
      pol = policyOf.configOptions(p).policy;
      local.configure(key, pol); // stored, as RL.CONFIG: it beats what a check brings
    },
    check: (key, op, cost, holdMs) => grant(local.check(key, pol, BigInt(cost), op, holdMs ? { holdMs: BigInt(holdMs) } : {})),
    settle: (key, id, actual) => Number(local.settle(key, BigInt(id), BigInt(actual))),
    refund: (key, n) => Number(local.refund(key, pol, BigInt(n))),
    release: (key, id) => Number(local.release(key, BigInt(id))),
    renew: (key, id, ms) => Number(local.renew(key, BigInt(id), BigInt(ms))),
    block: (key, ms) => local.block(key, BigInt(ms)),
    unblock: (key) => Number(local.unblock(key)),
    reset: (key) => Number(local.reset(key)),
    info: (key) => {
      const s = local.summary(key);
      return Object.fromEntries(INFO_FIELDS.map((f) => [f, typeof s[INFO_NAMES[f]] === 'bigint' ? Number(s[INFO_NAMES[f]]) : s[INFO_NAMES[f]]]));
    },
  };
}

/** The client (module or Lua path) behind the same names. */
function clientBackend(rl) {
  return {
    configure: (key, p) => rl.configureRateLimit(key, p),
    check: async (key, op, cost, holdMs) => {
      if (op === 'reserve') {
        const d = await rl.reserve(key, cost, holdMs ? { holdMs } : undefined);
        return { ...d, issued: d.reservation };
      }
      if (op === 'acquire') {
        const d = await rl.acquire(key, { cost });
        return { ...d, issued: d.lease };
      }
      return rl[op](key, { cost });
    },
    settle: (key, id, actual) => rl.settle(key, id, actual),
    refund: (key, n) => rl.refund(key, n),
    release: async (key, id) => Number(await rl.release(key, id)),
    renew: async (key, id, ms) => Number(await rl.renew(key, id, ms)),
    block: (key, ms) => rl.block(key, ms),
    unblock: async (key) => Number(await rl.unblock(key)),
    reset: (key) => rl.reset(key),
    info: async (key) => {
      const i = (await rl.info(key)) || {};
      return Object.fromEntries(INFO_FIELDS.map((f) => [f, i[INFO_NAMES[f]] === undefined ? null : i[INFO_NAMES[f]]]));
    },
  };
}

/** What `step` answers, in the shape of its `expect` (ops_runner.observe). */
async function observe(b, key, step, ids, baseId) {
  const ref = () => (step.ref !== undefined ? ids[step.ref] : baseId + BigInt(step.id));
  const asId = (x) => (x === null || x === undefined ? x : typeof x === 'bigint' ? x : BigInt(x));
  try {
    switch (step.op) {
      case 'config':
        await b.configure(key, policyArg(step.limits, step.penalty));
        return { reply: 'OK' };
      case 'throttle':
      case 'peek':
      case 'reserve':
      case 'acquire': {
        const d = await b.check(key, step.op, step.cost === undefined ? 1 : step.cost, step.hold_ms);
        const out = decision(d);
        if (step.op === 'reserve' || step.op === 'acquire') {
          ids[step.i] = asId(d.issued);
          out.id = d.issued === null ? null : Number(asId(d.issued) - baseId);
        }
        return out;
      }
      case 'settle':
        return { reply: await b.settle(key, ref(), step.actual) };
      case 'refund':
        return { reply: await b.refund(key, step.cost === undefined ? 1 : step.cost) };
      case 'release':
        return { reply: await b.release(key, ref()) };
      case 'renew':
        return { reply: await b.renew(key, ref(), step.ms) };
      case 'block':
        await b.block(key, step.ms);
        return { reply: 'OK' };
      case 'unblock':
        return { reply: await b.unblock(key) };
      case 'reset':
        return { reply: await b.reset(key) };
      case 'info': {
        const info = await b.info(key);
        return Object.fromEntries(Object.keys(step.expect).map((f) => [f, info[f]]));
      }
      default:
        throw new Error(`unknown op ${step.op}`);
    }
  } catch (err) {
    if (err.code === 'ERR_ASSERTION') throw err;
    return { error: errorText(err) };
  }
}

async function replay(trace, b, key, setClock) {
  setClock(START_MS);
  await b.configure(key, policyArg(trace.limits, trace.penalty));
  const ids = {};
  const baseId = BigInt(START_MS) * 1000n;
  for (const [i, step] of trace.steps.entries()) {
    setClock(START_MS + step.t_ms);
    const got = await observe(b, key, { ...step, i }, ids, baseId);
    // Ids the client hands out are Numbers (the module's, the script's): compare as numbers.
    if (got.id !== undefined && got.id !== null) got.id = Number(got.id);
    assert.deepEqual(got, step.expect, `${trace.name}, step ${i} (${step.op} at ${step.t_ms} ms)`);
  }
}

test('the operation traces are there and cover every operation', () => {
  const ops = new Set(TRACES.flatMap((t) => t.steps.map((s) => s.op)));
  for (const op of ['throttle', 'peek', 'reserve', 'settle', 'refund', 'acquire', 'release', 'renew', 'block', 'unblock', 'reset', 'config', 'info']) assert.ok(ops.has(op), op);
  assert.ok(TRACES.some((t) => t.penalty));
});

test('operation traces: the local limiter (injected clock)', async () => {
  for (const [n, t] of TRACES.entries()) {
    const clock = { ms: 0n };
    await replay(t, localBackend(clock), `k${n}`, (ms) => (clock.ms = BigInt(ms)));
  }
});

for (const name of ['module', 'lua']) {
  test(`operation traces: ${name} through the client (frozen server clock)`, async (t) => {
    const b = await open(name);
    try {
      const why = b.missing(...COMMANDS);
      if (why) return t.skip(why);
      for (const [n, trace] of TRACES.entries()) await replay(trace, clientBackend(b.rl), `ops:${n}`, b.setClock);
      const s = b.rl.stats();
      assert.equal(s.errors, 0);
      assert.equal(s.local, 0);
    } finally {
      await b.stop();
    }
  });
}
