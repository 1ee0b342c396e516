'use strict';
// The pure rules of issues 19 and 20 (src/keystate.js over src/limits.js: what the local
// limiter runs): the issues' property tests, each against a simple model, on seeded random
// traces (a failure names its seed), plus the spec's worked rules as table tests. The same
// cases as clients/python/tests/test_keystate.py. Time is a parameter: no server, no sleep.

const test = require('node:test');
const assert = require('node:assert/strict');
const ks = require('../src/keystate');
const limitsOf = require('../src/limits');
const concurrency = require('../src/concurrency');
const sliding = require('../src/sliding');
const gcra = require('../src/gcra');
const policyOf = require('../src/policy');
const { CommandError, NoRateLimit } = require('../src/errors');

const T0 = 1_750_000_000_000n;

/** A policy of the given limits ({limit, windowMs, burst?, kind?} in Numbers), with an optional penalty [ms, maxMs]. */
function pol(limits, penalty) {
  const p = policyOf.policy(limits);
  return penalty ? policyOf.fromLimits(p.limits, Object.freeze({ ms: BigInt(penalty[0]), maxMs: BigInt(penalty[1]) })) : p;
}

function run(policy, state, now, cost, mode = 'throttle', options) {
  const r = ks.check(policy, state, now, BigInt(cost), mode, options);
  return [r.reply, r.state || state];
}

/** Seeded random numbers (mulberry32), so a failing case can be replayed. */
function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: (xs) => xs[Math.floor(next() * xs.length)],
    bool: () => next() < 0.5,
  };
}

function property(runs, fn) {
  for (let seed = 1; seed <= runs; seed++) {
    try {
      fn(rng(seed));
    } catch (err) {
      err.message = `seed ${seed}: ${err.message}`;
      throw err;
    }
  }
}

const WINDOWS = [1, 7, 100, 1000, 60000];
const GAPS = [0, 0, 1, 3, 50, 400, 999, 5000, 70000];

function rateLimit(r) {
  const limit = r.int(1, 10);
  const windowMs = r.pick(WINDOWS);
  return r.bool() ? { limit, windowMs, burst: limit + r.int(0, 5) } : { kind: 'sliding', limit, windowMs };
}

function concLimit(r) {
  return { kind: 'concurrency', limit: r.int(1, 5), windowMs: r.pick([1, 50, 1000, 30000]) };
}

/** Usage as decisions see it at `now`: a TAT no earlier than now, live window entries, live leases. */
function norm(policy, usage, now) {
  return limitsOf.align(policy.limits, usage, now).map((u, i) => {
    const l = policy.limits[i];
    if (l.kind === 'gcra') {
      const units = gcra.inUnits(u.tat, l.limit);
      return units > now * l.limit ? units : now * l.limit;
    }
    if (l.kind === 'sliding') return sliding.live(l, u.log, now);
    return concurrency.live(u, now);
  });
}

/** How many cost-1 requests pass at `now`, one after another. */
function burstAtOnce(policy, state, now) {
  let n = 0;
  while (n < 2000) {
    const [g, s] = run(policy, state, now, 1);
    if (!g.allowed) return n;
    state = s;
    n += 1;
  }
  return n;
}

// --- issue 19: refunds -------------------------------------------------------------------

test('refunds never exceed what was consumed nor make room beyond an empty bucket', () => {
  property(300, (r) => {
    const l = rateLimit(r);
    const p = pol(l);
    let state = ks.EMPTY;
    let now = T0;
    const consumed = [];
    for (let i = r.int(0, 20); i > 0; i--) {
      now += BigInt(r.pick(GAPS));
      const cost = r.int(1, 4);
      const [g, s] = run(p, state, now, cost);
      state = s;
      if (g.allowed) consumed.push([now, cost]);
    }
    now += BigInt(r.pick(GAPS));
    const n = BigInt(r.int(1, 30));
    const live = consumed.filter(([at]) => l.kind !== 'sliding' || at + BigInt(l.windowMs) > now).reduce((a, [, c]) => a + BigInt(c), 0n);
    const { reply: given, state: next } = ks.refund(p, state, now, n);
    assert.ok(given >= 0n && given <= (n < live ? n : live), `gave ${given} of ${live} consumed`);
    assert.equal(next === null, given === 0n);
    assert.ok(burstAtOnce(p, next || state, now) <= Number(p.limits[0].burst));
  });
});

test('a refund gives back whole units of the bucket and the newest window entries first', () => {
  const g = pol({ limit: 10, windowMs: 1000 }); // T = 100 ms
  const [, s] = run(g, ks.EMPTY, T0, 5); // TAT = now + 500
  assert.equal(ks.refund(g, s, T0 + 150n, 10n).reply, 4n); // ceil(350 / 100): whole units still owed
  assert.deepEqual(ks.refund(g, s, T0 + 500n, 1n), { reply: 0n, state: null }); // nothing owed: nothing written
  const w = pol({ kind: 'sliding', limit: 5, windowMs: 1000 });
  let [, t] = run(w, ks.EMPTY, T0, 2);
  [, t] = run(w, t, T0 + 10n, 2);
  const r = ks.refund(w, t, T0 + 20n, 3n);
  assert.equal(r.reply, 3n);
  assert.deepEqual(r.state.usage[0].log, [[T0, 1n]]); // newest first: both of t+10, one of t
});

test('a refund skips CONCURRENCY limits, and an absent key gives back nothing', () => {
  const p = pol([{ limit: 3, windowMs: 1000 }, { kind: 'concurrency', limit: 2, windowMs: 30000 }]);
  const [, s] = run(p, ks.EMPTY, T0, 1, 'acquire');
  const r = ks.refund(p, s, T0, 5n);
  assert.equal(r.reply, 1n);
  assert.equal(r.state.usage[1], s.usage[1]);
  assert.deepEqual(ks.refund(p, ks.EMPTY, T0, 5n), { reply: 0n, state: null });
});

// --- issue 19: reservations ----------------------------------------------------------------

test('a reserve then its settle equals one check at the actual cost', () => {
  property(300, (r) => {
    const p = pol(rateLimit(r));
    let state = ks.EMPTY;
    let now = T0;
    for (let i = r.int(0, 12); i > 0; i--) {
      now += BigInt(r.pick(GAPS));
      [, state] = run(p, state, now, r.int(1, 3));
    }
    now += BigInt(r.pick(GAPS));
    const estimate = r.int(1, 8);
    const actual = r.int(0, 8);
    const [g, reserved] = run(p, state, now, estimate, 'reserve');
    const [direct, checked] = actual ? run(p, state, now, actual) : [null, state];
    if (!g.allowed || (direct && !direct.allowed)) return; // the rule is about two admitted paths
    const settled = ks.settle(reserved, now, g.id, BigInt(actual));
    assert.equal(settled.reply, BigInt(actual - estimate));
    assert.deepEqual(norm(p, settled.state.usage, now), norm(p, checked.usage, now));
    assert.deepEqual(settled.state.holds, []);
  });
});

test('reserves, settles and expiries never admit more than the bound', () => {
  // What reservations admitted inside any span, counted at min(estimate, what was settled),
  // stays within the policy's bound for that span (the settled excess is charged on top and
  // only ever denies more). A settle never gives back units of its hold that already drained
  // (GCRA: each hold's `end`; SLIDING: only the hold's own entry), so the bound holds exactly,
  // with nothing added for earlier holds.
  property(500, (r) => {
    const l = rateLimit(r);
    const p = pol(l);
    const holdMs = BigInt(r.pick([1, 100, 5000]));
    let state = ks.EMPTY;
    let now = T0;
    const admitted = []; // [at, estimate, final]
    const open = [];
    for (let i = r.int(0, 25); i > 0; i--) {
      now += BigInt(r.pick(GAPS));
      const estimate = r.int(1, 6);
      const actual = r.int(0, 9);
      if (open.length && r.int(0, 2) < 2) {
        const [rec, id] = open.shift();
        try {
          const s = ks.settle(state, now, id, BigInt(actual));
          state = s.state;
          rec[2] = Math.min(actual, rec[1]);
        } catch (err) {
          assert.ok(err instanceof CommandError);
          assert.ok(rec[0] + holdMs <= now, 'only an expired hold is unknown');
        }
      }
      const plain = r.int(0, 3) === 0; // plain checks between them
      const [g, s] = run(p, state, now, estimate, plain ? 'throttle' : 'reserve', { holdMs });
      state = s;
      if (g.allowed) {
        const rec = [now, estimate, estimate];
        admitted.push(rec);
        if (!plain) open.push([rec, g.id]);
      }
    }
    for (const [start] of admitted) {
      if (l.kind === 'sliding') {
        const span = admitted.filter(([at]) => start <= at && at < start + BigInt(l.windowMs)).reduce((a, x) => a + x[2], 0);
        assert.ok(span <= l.limit);
        continue;
      }
      for (const [end] of admitted) {
        if (end < start) continue;
        const span = admitted.filter(([at]) => start <= at && at <= end).reduce((a, x) => a + BigInt(x[2]), 0n);
        const grown = ((end - start) * BigInt(l.limit)) / BigInt(l.windowMs);
        assert.ok(span <= BigInt(l.burst) + grown);
      }
    }
  });
});

test("a settle never gives back what of its hold already drained (the spec's example)", () => {
  // A hold of 10 from empty (B = 10, T = 100 ms), 9 more at 9T, a settle of 0 at 9T: giving
  // back TAT - 10T would let 10 more pass at once (19 in one instant); only the one unit of
  // the hold still owed comes back.
  const g = pol({ limit: 10, windowMs: 1000 });
  let [r, s] = run(g, ks.EMPTY, T0, 10, 'reserve');
  let d;
  [d, s] = run(g, s, T0 + 900n, 9);
  assert.equal(d.allowed, true);
  const settled = ks.settle(s, T0 + 900n, r.id, 0n);
  assert.equal(settled.reply, -1n);
  assert.equal(burstAtOnce(g, settled.state, T0 + 900n), 1);
  // A later hold's end moves earlier by what an earlier one gave back.
  let a;
  let b;
  [a, s] = run(g, ks.EMPTY, T0, 4, 'reserve');
  [b, s] = run(g, s, T0 + 200n, 4, 'reserve'); // TAT T0 + 800: a ends at 400, b at 800
  const first = ks.settle(s, T0 + 300n, a.id, 0n);
  assert.equal(first.reply, -1n); // 100 ms of a left: 1 unit
  assert.deepEqual(first.state.holds[0].ends[0], gcra.lowest((T0 + 700n) * 10n, 10n));
  const second = ks.settle(first.state, T0 + 300n, b.id, 0n);
  assert.equal(second.reply, -4n);
  assert.equal(burstAtOnce(g, second.state, T0 + 300n), 10);
});

test('a settle charges into debt capped at one bucket, and a key in debt denies', () => {
  const g = pol({ limit: 10, windowMs: 1000 });
  const [r, s0] = run(g, ks.EMPTY, T0, 2, 'reserve');
  const { reply, state: s } = ks.settle(s0, T0, r.id, 500n);
  assert.equal(reply, 498n); // charged whatever it does to admission
  assert.equal(gcra.inUnits(s.usage[0].tat, 10n), T0 * 10n + 10n * 1000n); // one full bucket beyond now
  const [d] = run(g, s, T0 + 99n, 1);
  assert.deepEqual([d.allowed, d.retryAfterMs], [false, 1n]);
  assert.equal(run(g, s, T0 + 100n, 1)[0].allowed, true);
  const w = pol({ kind: 'sliding', limit: 3, windowMs: 1000 });
  const [rw, sw] = run(w, ks.EMPTY, T0, 1, 'reserve');
  const settled = ks.settle(sw, T0 + 10n, rw.id, 9n);
  assert.deepEqual(settled.state.usage[0].log, [[T0 + 10n, 3n]]); // at most `limit` live: the oldest dropped
});

test('a settle below the estimate gives back only from its own SLIDING entry', () => {
  const w = pol({ kind: 'sliding', limit: 10, windowMs: 1000 });
  let [r, s] = run(w, ks.EMPTY, T0, 4, 'reserve');
  [, s] = run(w, s, T0 + 5n, 3);
  const a = ks.settle(s, T0 + 6n, r.id, 0n);
  assert.equal(a.reply, -4n);
  assert.deepEqual(a.state.usage[0].log, [[T0 + 5n, 3n]]);
  [r, s] = run(w, a.state, T0 + 7n, 2, 'reserve');
  s = ks.refund(w, s, T0 + 8n, 2n).state; // someone refunded the entry away meanwhile
  assert.equal(ks.settle(s, T0 + 9n, r.id, 0n).reply, 0n); // nothing left at its instant: nothing else
});

test('a settle of an unknown, expired or settled reservation is an error that says so', () => {
  const g = pol({ limit: 10, windowMs: 1000 });
  const [r, s] = run(g, ks.EMPTY, T0, 1, 'reserve', { holdMs: 100n });
  const settled = ks.settle(s, T0 + 1n, r.id, 1n).state;
  for (const [state, now, id] of [[settled, T0 + 2n, r.id], [s, T0 + 100n, r.id], [s, T0, r.id + 1n]]) {
    assert.throws(() => ks.settle(state, now, id, 1n), { name: 'CommandError', message: ks.MESSAGES.unknownReservation });
  }
  assert.deepEqual(s.holds[0], { id: r.id, estimate: 1n, atMs: T0, expiresAtMs: T0 + 100n, ends: [s.usage[0].tat] });
  assert.equal(ks.settle(s, T0 + 99n, r.id, 1n).reply, 0n);
});

test('an expired hold stays charged at its estimate and is pruned on the next write', () => {
  const g = pol({ limit: 2, windowMs: 60000 });
  let [, s] = run(g, ks.EMPTY, T0, 2, 'reserve', { holdMs: 10n });
  let d;
  [d, s] = run(g, s, T0 + 20n, 1);
  assert.equal(d.allowed, false);
  [, s] = run(g, s, T0 + 30000n, 1);
  assert.deepEqual(s.holds, []);
});

test('at most 64 open holds: a 65th reserve is an error and counts nothing', () => {
  const g = pol({ limit: 1000, windowMs: 1000 });
  let s = ks.EMPTY;
  for (let i = 0; i < 64; i++) [, s] = run(g, s, T0, 1, 'reserve', { holdMs: 50n });
  assert.throws(() => ks.check(g, s, T0, 1n, 'reserve'), { name: 'CommandError', message: /^too many open reservations: a key holds at most 64/ });
  assert.equal(run(g, s, T0 + 50n, 1, 'reserve')[0].allowed, true); // the old ones expired
});

test('ids are now * 1000, then strictly increasing across reservations and leases', () => {
  const p = pol([{ limit: 100, windowMs: 1000 }, { kind: 'concurrency', limit: 10, windowMs: 1000 }]);
  const g = pol({ limit: 100, windowMs: 1000 });
  const ids = [];
  let s = ks.EMPTY;
  let x;
  [x, s] = run(g, s, T0, 1, 'reserve');
  ids.push(x.id);
  [x, s] = run(g, s, T0, 1, 'reserve');
  ids.push(x.id);
  [x, s] = run(p, s, T0 - 5n, 1, 'acquire'); // the clock stepped back
  ids.push(x.id);
  [x, s] = run(p, s, T0 + 1n, 1, 'acquire');
  ids.push(x.id);
  assert.deepEqual(ids, [T0 * 1000n, T0 * 1000n + 1n, T0 * 1000n + 2n, (T0 + 1n) * 1000n]);
  assert.equal(ks.reset(s, T0 + 1n).state, null); // a usage-only key goes, its id sequence with it
  const c = ks.configure(s, g, T0 + 1n);
  assert.equal(ks.reset(c, T0 + 1n).state.lastId, x.id); // a configured key keeps it
});

test('a settle without a policy raises NoRateLimit unless it changes nothing', () => {
  const g = pol({ limit: 10, windowMs: 1000 });
  const [r, reserved] = run(g, ks.EMPTY, T0, 3, 'reserve');
  const s = { ...reserved, policy: null };
  assert.throws(() => ks.settle(s, T0, r.id, 1n), NoRateLimit);
  assert.equal(ks.settle(s, T0, r.id, 3n).reply, 0n);
});

// --- issue 19: penalties and blocks --------------------------------------------------------

test('penalties double within one window of the last block and stop at the max', () => {
  property(100, (r) => {
    const ms = r.int(1, 5000);
    const factor = r.int(1, 100);
    const window = 1e9; // one request per window: every denial below is within a window of the last block
    const p = pol({ limit: 1, windowMs: window }, [ms, ms * factor]);
    let [, s] = run(p, ks.EMPTY, T0, 1);
    let now = T0;
    const denials = r.int(1, 12);
    for (let level = 0; level < denials; level++) {
      let d;
      [d, s] = run(p, s, now, 1);
      const length = BigInt(Math.min(ms * 2 ** level, ms * factor));
      assert.equal(d.allowed, false);
      assert.deepEqual(s.block, { untilMs: now + length, level });
      // The denial tells the block it starts: retry when both it and the limit are over.
      const own = T0 + BigInt(window) - now;
      assert.deepEqual([d.remaining, d.retryAfterMs], [0n, length > own ? length : own]);
      const blocked = ks.check(p, s, now + length - 1n, 1n);
      const left = own - length + 1n;
      assert.deepEqual([blocked.reply.allowed, blocked.reply.retryAfterMs, blocked.reply.remaining, blocked.state], [false, left > 1n ? left : 1n, 0n, null]);
      now += length;
    }
    now = T0 + 2n * BigInt(window); // quiet for a whole window after the last block: level 0 again
    let g;
    [g, s] = run(p, s, now, 1);
    assert.equal(g.allowed, true);
    [, s] = run(p, s, now, 1);
    assert.deepEqual(s.block, { untilMs: now + BigInt(ms), level: 0 });
  });
});

test('the penalty doubling table, and level 0 again after a quiet window', () => {
  const p = pol({ limit: 1, windowMs: 1000 }, [100, 350]);
  let [, s] = run(p, ks.EMPTY, T0, 1);
  const seen = [];
  let now = T0;
  let d;
  for (let i = 0; i < 4; i++) {
    [d, s] = run(p, s, now, 1);
    seen.push([s.block.level, s.block.untilMs - now, d.retryAfterMs]);
    now = s.block.untilMs;
  }
  assert.deepEqual(seen, [[0, 100n, 1000n], [1, 200n, 900n], [2, 350n, 700n], [3, 350n, 350n]]);
  now += 1000n; // a whole window after the last block ended: the level starts again
  [, s] = run(p, s, now, 1);
  [, s] = run(p, s, now, 1);
  assert.deepEqual(s.block, { untilMs: now + 100n, level: 0 });
});

test('shadow and peek never block, and a shadow key passes a block', () => {
  const p = pol({ limit: 1, windowMs: 1000 }, [100, 100]);
  const [, s] = run(p, ks.EMPTY, T0, 1);
  assert.equal(ks.check(p, s, T0, 1n, 'peek').state, null);
  const sh = ks.check(p, s, T0, 1n, 'throttle', { shadow: true });
  assert.equal(sh.reply.allowed, true);
  assert.equal(sh.state, null);
  const b = ks.block(s, T0, 50n).state;
  const g = ks.check(p, b, T0 + 1n, 1n, 'throttle', { shadow: true }).reply;
  assert.deepEqual([g.allowed, g.retryAfterMs, g.remaining], [true, -1n, 0n]);
});

test('a block replaces the block; unblock ends it and forgets the level', () => {
  const p = pol({ limit: 5, windowMs: 1000 });
  let s = ks.block(ks.EMPTY, T0, 10000n).state;
  s = ks.block(s, T0, 20n).state; // shorter replaces longer
  const g = ks.check(p, s, T0 + 5n, 1n).reply;
  // The limits admit it and hold nothing: the block's end is both the retry and the reset.
  assert.deepEqual([g.allowed, g.retryAfterMs, g.remaining, g.resetAfterMs], [false, 15n, 0n, 15n]);
  assert.equal(ks.check(p, s, T0 + 20n, 1n).reply.allowed, true);
  assert.deepEqual(ks.unblock(s, T0 + 20n), { reply: 0n, state: null }); // not blocked any more: writes nothing
  s = { ...s, block: { untilMs: T0 + 100n, level: 3 } };
  const u = ks.unblock(s, T0 + 5n);
  assert.equal(u.reply, 1n);
  assert.equal(u.state.block, null);
});

// --- issue 20: leases ------------------------------------------------------------------------

test('never more than `limit` live, and releases of expired or foreign ids free nothing', () => {
  property(300, (r) => {
    const l = concLimit(r);
    const p = pol(l);
    let state = ks.EMPTY;
    let now = T0;
    const model = new Map(); // id -> [cost, expiresAt]
    const ids = [];
    for (let i = r.int(0, 40); i > 0; i--) {
      now += BigInt(r.pick(GAPS));
      const op = r.pick(['acquire', 'acquire', 'release', 'renew', 'foreign']);
      const cost = r.int(1, 3);
      const live = new Map([...model].filter(([, v]) => v[1] > now));
      const heldNow = [...live.values()].reduce((a, v) => a + v[0], 0);
      if (op === 'acquire') {
        let g;
        [g, state] = run(p, state, now, cost, 'acquire');
        assert.equal(g.allowed, heldNow + cost <= l.limit);
        if (g.allowed) {
          model.set(g.id, [cost, now + BigInt(l.windowMs)]);
          ids.push(g.id);
        } else assert.equal(g.id, null);
      } else if ((op === 'release' || op === 'renew') && ids.length) {
        const id = r.pick(ids);
        const res = op === 'release' ? ks.release(state, now, id) : ks.renew(state, now, id, 100n);
        if (live.has(id)) {
          if (op === 'release') model.delete(id);
          else model.set(id, [live.get(id)[0], now + 100n]);
        }
        assert.equal(res.reply, live.has(id) ? 1n : 0n);
        assert.equal(res.state === null, !live.has(id));
        state = res.state || state;
      } else if (op === 'foreign') {
        assert.deepEqual(ks.release(state, now, now * 1000n + 999_999n), { reply: 0n, state: null });
      }
      const held = state.usage.length ? Number(concurrency.held(state.usage[0], now)) : 0;
      const want = [...model.values()].filter((v) => v[1] > now).reduce((a, v) => a + v[0], 0);
      assert.equal(held, want);
      assert.ok(held <= l.limit);
    }
  });
});

test('an acquire is all-or-nothing with GCRA and SLIDING limits', () => {
  // Each rate limit fed alone with exactly the admitted acquires must agree with the set: an
  // acquire passes iff every limit admits it, and counts everywhere or nowhere.
  property(300, (r) => {
    const rate = Array.from({ length: r.int(1, 2) }, () => rateLimit(r));
    const c = concLimit(r);
    const p = pol([...rate, c]);
    const alone = rate.map((l) => [pol(l), ks.EMPTY]);
    let state = ks.EMPTY;
    let now = T0;
    const leases = [];
    for (let i = r.int(0, 30); i > 0; i--) {
      now += BigInt(r.pick(GAPS));
      const cost = r.int(1, 3);
      if (r.bool() && leases.length) state = ks.release(state, now, leases.shift()).state || state;
      const got = ks.check(p, state, now, BigInt(cost), 'acquire');
      const fits = alone.map(([ap, as]) => ks.check(ap, as, now, BigInt(cost), 'peek').reply.allowed);
      const live = state.usage.length ? Number(concurrency.held(state.usage[rate.length], now)) : 0;
      assert.equal(got.reply.allowed, fits.every(Boolean) && live + cost <= c.limit);
      if (got.reply.allowed) {
        for (const a of alone) a[1] = run(a[0], a[1], now, cost)[1];
        leases.push(got.reply.id);
      } else if (got.state) {
        assert.deepEqual(norm(p, got.state.usage, now), norm(p, state.usage, now));
      }
      state = got.state || state;
      rate.forEach((l, j) => {
        const one = pol(l);
        assert.deepEqual(norm(one, state.usage.slice(j, j + 1), now), norm(one, alone[j][1].usage, now));
      });
    }
  });
});

test('a denied acquire waits for enough leases to expire, and tells what is held', () => {
  const p = pol({ kind: 'concurrency', limit: 3, windowMs: 1000 });
  let [, s] = run(p, ks.EMPTY, T0, 1, 'acquire');
  [, s] = run(p, s, T0 + 100n, 2, 'acquire');
  const [d] = run(p, s, T0 + 200n, 1, 'acquire');
  assert.deepEqual([d.allowed, d.remaining, d.retryAfterMs, d.resetAfterMs], [false, 0n, 800n, 900n]);
  assert.equal(run(p, s, T0 + 200n, 3, 'acquire')[0].retryAfterMs, 900n); // both must go for 3 to fit
  assert.equal(run(p, s, T0 + 200n, 4, 'acquire')[0].retryAfterMs, -1n); // never
  assert.equal(ks.summary(s, T0 + 200n).leases, 2);
  assert.throws(() => ks.check(p, s, T0, 1n, 'throttle'), { name: 'CommandError', message: /^this key has a CONCURRENCY limit: take a lease with RL.ACQUIRE/ });
  assert.throws(() => ks.check(p, s, T0, 1n, 'reserve'), /CONCURRENCY limit/);
  assert.deepEqual(ks.check(p, s, T0 + 200n, 1n, 'peek').reply, d);
});

test('a lease is released or renewed in every CONCURRENCY limit with one id', () => {
  const p = pol([{ kind: 'concurrency', limit: 2, windowMs: 1000 }, { kind: 'concurrency', limit: 5, windowMs: 100 }]);
  const [a, s] = run(p, ks.EMPTY, T0, 1, 'acquire');
  assert.deepEqual(s.usage.map((u) => u.leases[0].expiresAtMs), [T0 + 1000n, T0 + 100n]);
  assert.equal(ks.renew(s, T0 + 150n, a.id, 10n).state.usage[0].leases[0].expiresAtMs, T0 + 160n); // live in one
  assert.deepEqual(ks.renew(s, T0 + 1000n, a.id, 10n), { reply: 0n, state: null });
  const rel = ks.release(s, T0 + 50n, a.id);
  assert.equal(rel.reply, 1n);
  assert.ok(rel.state.usage.every((u) => u.leases.length === 0));
});

test('a reconfiguration carries leases at the same position and drops them on a kind change', () => {
  const two = pol({ kind: 'concurrency', limit: 2, windowMs: 1000 });
  const [, s] = run(two, ks.EMPTY, T0, 2, 'acquire');
  const one = pol({ kind: 'concurrency', limit: 1, windowMs: 5000 });
  const [d] = run(one, s, T0 + 1n, 1, 'acquire');
  assert.deepEqual([d.allowed, d.retryAfterMs], [false, 999n]); // kept, over the lowered limit
  assert.equal(run(pol({ limit: 1, windowMs: 5000 }), s, T0 + 1n, 1)[0].allowed, true); // another kind: a new contract
});

test('a usage-only key lives until its last limit, hold, lease or block is over', () => {
  const g = pol([{ limit: 10, windowMs: 1000 }, { kind: 'concurrency', limit: 2, windowMs: 30000 }]);
  const [, s] = run(g, ks.EMPTY, T0, 1, 'acquire');
  assert.equal(ks.expiresAtMs(s, T0), T0 + 30000n);
  const r = pol({ limit: 10, windowMs: 1000 });
  const [, h] = run(r, ks.EMPTY, T0, 1, 'reserve', { holdMs: 5000n });
  assert.equal(ks.expiresAtMs(h, T0), T0 + 5000n);
  assert.equal(ks.expiresAtMs(ks.block(ks.EMPTY, T0, 7000n).state, T0), T0 + 7000n);
});
