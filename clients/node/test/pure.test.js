'use strict';
// The pure parts without a server: the local GCRA, validation with the module's wording,
// cluster slots, reply normalisation, client IP keys, headers, the breaker.

const test = require('node:test');
const assert = require('node:assert/strict');
const { LocalLimiter, InvalidArgument, ConfigurationError, DistributedRateLimiter, keySlot, ipKey } = require('../src');
const policyOf = require('../src/policy');
const replies = require('../src/replies');
const { Breaker } = require('../src/breaker');
const failure = require('../src/failure');
const { LocalLimiter: Local } = require('../src/local');

function clock(start = 1_700_000_000_000n) {
  const c = { t: start, now: () => c.t };
  return c;
}

test('the brief on the local limiter: ten allowed, five denied, the 11th 6 s after the 1st', () => {
  const c = clock();
  const l = new LocalLimiter({ now: c.now });
  const p = policyOf.policy({ limit: 10, windowMs: 60000 });
  const got = [];
  for (let i = 0; i < 15; i++) got.push(l.check('user123', p, 1n).allowed);
  assert.deepEqual(got, [...Array(10).fill(true), ...Array(5).fill(false)]);
  const denied = l.check('user123', p, 1n);
  assert.equal(denied.retryAfterMs, 6000n);
  c.t += 5999n;
  assert.equal(l.check('user123', p, 1n).allowed, false);
  c.t += 1n;
  assert.equal(l.check('user123', p, 1n).allowed, true);
});

test('3 per second stays exactly 3 per 1000 ms over a long run (no drift)', () => {
  const c = clock();
  const l = new LocalLimiter({ now: c.now });
  const p = policyOf.policy({ limit: 3, windowMs: 1000 });
  let allowed = 0;
  for (let ms = 0; ms < 300_000; ms++) {
    if (l.check('k', p, 1n).allowed) allowed++;
    c.t += 1n;
  }
  // The burst of 3, then the n-th more at ceil(n * 1000 / 3) ms: n <= 899 before 300000 ms.
  // A limiter that rounded T to 333 ms would admit 903.
  assert.equal(allowed, 902);
});

test('a request heavier than the burst is denied with retry -1; peek counts nothing', () => {
  const l = new LocalLimiter({ now: clock().now });
  const p = policyOf.policy({ limit: 5, windowMs: 1000 });
  const v = l.check('k', p, 6n);
  assert.equal(v.allowed, false);
  assert.equal(v.retryAfterMs, -1n);
  assert.equal(l.check('k', p, 5n, true).allowed, true);
  assert.equal(l.check('k', p, 5n).remaining, 0n);
  assert.equal(l.reset('k') > 0n, true);
  assert.equal(l.check('k', p, 5n).allowed, true);
});

test('bad input is a typed error with the module\'s wording', () => {
  const cases = [
    [{ limit: 0, windowMs: 1 }, 'limit must be an integer from 1 to 1000000000'],
    [{ limit: 1.5, windowMs: 1 }, 'limit must be an integer from 1 to 1000000000'],
    [{ limit: 1e10, windowMs: 1 }, 'limit must be an integer from 1 to 1000000000'],
    [{ limit: '10', windowMs: -1 }, 'windowMs must be an integer from 1 to 1000000000000'],
    [{ limit: 1, windowMs: 1, burst: 0 }, 'burst must be an integer from 1 to 1000000000'],
    [{ limit: 1, windowMs: 1e12, burst: 1000 }, 'burst * windowMs / limit is too large: a full bucket must drain within 10000000000000 ms'],
  ];
  for (const [p, message] of cases) assert.throws(() => policyOf.policy(p), { name: 'InvalidArgument', message });
  assert.throws(() => policyOf.cost(0), { message: 'cost must be an integer from 1 to 1000000000' });
  assert.throws(() => policyOf.checkOptions({ limit: 5 }), { message: 'limit and windowMs must be given together' });
  assert.throws(() => policyOf.checkOptions({ burst: 5 }), { message: 'burst and kind need limit and windowMs' });
  assert.throws(() => policyOf.checkOptions({ window: 5 }), { message: /unknown option 'window' \(did you mean 'windowMs'\?\)/ });
  assert.throws(() => policyOf.clientId(''), InvalidArgument);
});

test('cluster slots: CRC16 XMODEM with hash tags', () => {
  assert.equal(keySlot('123456789'), 0x31c3 & 0x3fff);
  assert.equal(keySlot('foo'), 12182);
  assert.equal(keySlot('{user1000}.following'), keySlot('{user1000}.followers'));
  assert.equal(keySlot('foo{}{bar}'), keySlot('foo{}{bar}'.replace('', ''))); // empty tag: whole key
  assert.notEqual(keySlot('foo{}{bar}'), keySlot('bar'));
  assert.equal(keySlot('foo{{bar}}zap'), keySlot('{bar'));
  assert.equal(keySlot(Buffer.from('foo')), 12182);
});

test('replies: RESP2 arrays, RESP3 maps, Map objects and flattened maps give one shape', () => {
  const want = { allowed: false, limit: 10, remaining: 0, retryAfterMs: 5000, resetAfterMs: 59000, binding: 0, source: null, policy: null };
  const forms = [
    [0, 10, 0, 5000, 59000],
    { allowed: 0, limit: 10, remaining: 0, retry_after_ms: 5000, reset_after_ms: 59000 },
    new Map(Object.entries({ allowed: 0, limit: 10, remaining: 0, retry_after_ms: 5000, reset_after_ms: 59000 })),
    ['allowed', 0, 'limit', 10, 'remaining', 0, 'retry_after_ms', 5000, 'reset_after_ms', 59000],
    [Buffer.from('allowed'), 0, Buffer.from('limit'), 10, 'remaining', '0', 'retry_after_ms', 5000, 'reset_after_ms', 59000],
  ];
  for (const f of forms) assert.deepEqual(replies.verdict(f), want);
  assert.equal(replies.allowed(true), true);
  assert.equal(replies.allowed(1), true);
  assert.equal(replies.allowed(0), false);
  assert.equal(replies.info(null), null);
});

test('RL.RESERVE/RL.ACQUIRE replies: 7 fields in RESP2, maps in RESP3, the id nil when denied', () => {
  const id = 1_764_000_000_000_000;
  const want = { allowed: true, limit: 10, remaining: 6, retryAfterMs: -1, resetAfterMs: 24000, binding: 0, id };
  const forms = [
    [1, 10, 6, -1, 24000, 0, id],
    { allowed: true, limit: 10, remaining: 6, retry_after_ms: -1, reset_after_ms: 24000, binding: 0, reservation: id },
    new Map(Object.entries({ allowed: 1, limit: 10, remaining: 6, retry_after_ms: -1, reset_after_ms: 24000, binding: 0, reservation: id })),
    ['allowed', 1, 'limit', 10, 'remaining', 6, 'retry_after_ms', -1, 'reset_after_ms', 24000, 'binding', 0, 'reservation', id],
  ];
  for (const f of forms) assert.deepEqual(replies.grant(f, 'reservation'), want);
  assert.equal(replies.grant([0, 2, 0, 800, 900, 1, null], 'lease').id, null);
  assert.equal(replies.grant({ allowed: false, limit: 2, remaining: 0, retry_after_ms: 800, reset_after_ms: 900, binding: 1, lease: null }, 'lease').id, null);
  assert.equal(replies.grant(['allowed', 1, 'limit', 2, 'remaining', 1, 'retry_after_ms', -1, 'reset_after_ms', 30000, 'binding', 0, 'lease', String(id)], 'lease').id, id);
});

test("RL.INFO's fields of issues 19 and 20, flat (RESP2) and nested (RESP3)", () => {
  const flat = ['source', 'stored', 'limit', 2, 'window_ms', 30000, 'burst', 2, 'kind', 'concurrency', 'blocked_ms', 0, 'penalty_level', 1, 'holds', 2, 'held', 7, 'next_hold_expiry_ms', null, 'leases', 1,
    'limits', [['kind', 'concurrency', 'limit', 2, 'window_ms', 30000, 'burst', 2, 'remaining', 1, 'reset_after_ms', 30000, 'held', 1, 'next_expiry_ms', 30000]]];
  const i = replies.info(flat);
  assert.deepEqual([i.kind, i.blockedMs, i.penaltyLevel, i.holds, i.held, i.nextHoldExpiryMs, i.leases], ['concurrency', 0, 1, 2, 7, null, 1]);
  assert.deepEqual([i.limits[0].held, i.limits[0].nextExpiryMs], [1, 30000]);
  const old = replies.info(['source', 'stored', 'limit', 10, 'window_ms', 1000, 'burst', 10]);
  assert.equal('blockedMs' in old, false); // an older server tells nothing: nothing is made up
});

test('headers: RateLimit always, RateLimit-Policy always (w= when the window is known), Retry-After when denied', () => {
  const p = policyOf.policy({ limit: 10, windowMs: 60000 }).limits;
  assert.deepEqual(replies.headers({ allowed: false, remaining: 0, retryAfterMs: 5001, resetAfterMs: 59000 }, p), {
    RateLimit: '"default";r=0;t=59',
    'RateLimit-Policy': '"default";q=10;w=60',
    'Retry-After': '6',
  });
  assert.deepEqual(replies.headers({ allowed: false, limit: 5, remaining: 0, retryAfterMs: -1, resetAfterMs: 1 }, null), {
    RateLimit: '"default";r=0;t=1',
    'RateLimit-Policy': '"default";q=5',
  });
});

test("headers: the binding item's t is its own limit's reset, not the key's (until every limit is empty)", () => {
  const p = policyOf.policy([{ limit: 10, windowMs: 1000 }, { kind: 'sliding', limit: 1000, windowMs: 86_400_000 }]).limits;
  const h = (binding, remaining) => replies.headers({ allowed: true, remaining, retryAfterMs: -1, resetAfterMs: 86_399_994, binding }, p).RateLimit;
  assert.equal(h(0, 9), '"l0";r=9;t=1'); // 10 per second with 9 left: empty within 100 ms
  assert.equal(h(0, 2), '"l0";r=2;t=1'); // 800 ms
  assert.equal(h(1, 0), '"l1";r=0;t=86400');
  const one = policyOf.policy({ limit: 10, windowMs: 60000 }).limits;
  assert.equal(replies.headers({ allowed: true, remaining: 9, retryAfterMs: -1, resetAfterMs: 6000 }, one).RateLimit, '"default";r=9;t=6');
});

test('headers: a CONCURRENCY limit is q=<leases> alone (no window of requests)', () => {
  const p = policyOf.policy([{ limit: 100, windowMs: 60000 }, { kind: 'concurrency', limit: 2, windowMs: 30000 }]).limits;
  assert.equal(replies.headers({ allowed: true, remaining: 1, retryAfterMs: -1, resetAfterMs: 30000, binding: 1 }, p)['RateLimit-Policy'], '"l0";q=100;w=60, "l1";q=2');
});

test('client IP keys: IPv4 as is, IPv4-mapped as IPv4, IPv6 grouped by /64', () => {
  assert.equal(ipKey('203.0.113.7'), 'ip:203.0.113.7');
  assert.equal(ipKey('::ffff:203.0.113.7'), 'ip:203.0.113.7');
  assert.equal(ipKey('2001:db8:1:2:aaaa::1'), 'ip:2001:db8:1:2::/64');
  assert.equal(ipKey('2001:0db8:0001:0002:ffff:0:0:9'), 'ip:2001:db8:1:2::/64');
  assert.equal(ipKey('2001:db8::1'), 'ip:2001:db8::/64');
  assert.equal(ipKey('::1'), 'ip:::/64');
  assert.equal(ipKey('fe80::1%eth0'), 'ip:fe80::/64');
});

test('the local share scales rate and burst exactly', () => {
  const p = policyOf.policy({ limit: 10, windowMs: 1000, burst: 10 });
  const s = policyOf.scaled(p, policyOf.share(1 / 3)).limits[0];
  assert.equal(s.burst, 3n);
  // 1/3 of 10 per second: 10 per 3 s, exactly (rounded 1/3 -> 333333/1000000).
  assert.equal(Number(s.limit) / Number(s.windowMs), (10 * 333333) / (1000 * 1000000));
});

test('the breaker opens after N failures, probes after the cool-down, closes on success', () => {
  let t = 0;
  const changes = [];
  const b = new Breaker({ threshold: 3, cooldownMs: 100, now: () => t, onChange: (from, to) => changes.push(`${from}>${to}`) });
  b.failure();
  b.failure();
  assert.equal(b.allow(), true);
  b.failure();
  assert.equal(b.allow(), false);
  t = 100;
  assert.equal(b.allow(), true); // the probe
  assert.equal(b.allow(), false); // one probe at a time
  b.failure();
  assert.equal(b.state, 'open');
  t = 200;
  assert.equal(b.allow(), true);
  b.success();
  assert.equal(b.state, 'closed');
  assert.deepEqual(changes, ['closed>open', 'open>half_open', 'half_open>open', 'open>half_open', 'half_open>closed']);
});

test('options are validated; a client object is recognised by duck typing', () => {
  assert.throws(() => new DistributedRateLimiter({ call() {}, status: 'ready' }, { onError: 'maybe' }), { name: 'ConfigurationError', option: 'onError' });
  assert.throws(() => new DistributedRateLimiter({ call() {}, status: 'ready' }, { timeoutMs: 0 }), ConfigurationError);
  assert.throws(() => new DistributedRateLimiter({ client: {} }), { name: 'ConfigurationError', option: 'client' });
});

test('an overloaded reserve or acquire is never decided locally: denied with no id (allowed under allow)', () => {
  const known = policyOf.policy({ limit: 10, windowMs: 1000 });
  const engine = (onError) => ({
    options: { onError, timeoutMs: 50 },
    counts: { failedOpen: 0, failedClosed: 0, local: 0 },
    local: new Local(),
    knownConfig: () => ({ policy: known, shadow: false }),
  });
  for (const [op, field] of [['reserve', 'reservation'], ['acquire', 'lease']]) {
    const e = engine('local');
    const v = failure.overloaded(e, { op, mk: 'k', cost: 1n, holdMs: null });
    assert.deepEqual([v.allowed, v[field], v.path, v.retryAfterMs, v.limit], [false, null, 'failed_closed', 50, 10]);
    assert.equal(e.local.size, 0);
    const a = failure.overloaded(engine('allow'), { op, mk: 'k', cost: 1n, holdMs: null });
    assert.deepEqual([a.allowed, a[field], a.path], [true, null, 'failed_open']);
  }
});
