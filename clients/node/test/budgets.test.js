'use strict';
// Issue 19 through the client, on the module, the Lua script and the local limiter (the
// same numbers on each, at frozen instants): refund, reserve/settle with holds, penalties,
// block/unblock, and what each does under the failure policy (spec-19-20.md, "Clients").

const test = require('node:test');
const assert = require('node:assert/strict');
const { DistributedRateLimiter, CommandError, Unavailable, InvalidArgument } = require('../src');
const { onEach, open, START_MS, QUIET } = require('./backends');
const { freePort } = require('./servers');

const T = (ms) => START_MS + ms;

test('refund gives back what was consumed, never more, and 0 for a key with no usage', async (t) => {
  await onEach(t, ['RL.REFUND'], async (b) => {
    const { rl } = b;
    await b.configure('r', { limit: 10, windowMs: 60000 });
    if (b.name === 'local') {
      // Redis unreachable: a refund has no fallback (spec: Unavailable), and nothing is given back locally.
      await rl.throttle('r', { cost: 5 });
      await assert.rejects(rl.refund('r', 3), Unavailable);
      assert.equal((await rl.peek('r')).remaining, 4); // peek: what would remain after one more
      return;
    }
    assert.equal(await rl.refund('r', 3), 0); // nothing consumed: nothing given, nothing written
    assert.equal((await rl.throttle('r', { cost: 5 })).remaining, 5);
    assert.equal(await rl.refund('r', 3), 3);
    assert.equal((await rl.peek('r')).remaining, 7); // peek: what would remain after one more
    assert.equal(await rl.refund('r', 100), 2); // only what is still owed
    assert.equal((await rl.peek('r')).remaining, 9); // never room beyond an empty bucket
    // A usage-only key refunds under the inline policy its checks use.
    await rl.throttle('u', { limit: 3, windowMs: 1000, kind: 'sliding', cost: 2 });
    assert.equal(await rl.refund('u', 5, { limit: 3, windowMs: 1000, kind: 'sliding' }), 2);
    await assert.rejects(rl.refund('u', 0), InvalidArgument);
  });
});

test('reserve is a throttle at the estimate that holds an id; settle gives back or charges the difference', async (t) => {
  await onEach(t, ['RL.RESERVE', 'RL.SETTLE'], async (b) => {
    const { rl } = b;
    await b.configure('tokens', { limit: 10, windowMs: 60000 });
    const r = await rl.reserve('tokens', 4);
    assert.equal(r.allowed, true);
    assert.equal(r.path, b.path);
    assert.equal(r.remaining, 6);
    assert.equal(r.retryAfterMs, -1);
    if (b.name === 'local') assert.match(r.reservation, /^L\d+$/);
    else assert.equal(r.reservation, START_MS * 1000); // the first id of a key: now_ms * 1000
    assert.equal(await rl.settle('tokens', r.reservation, 1), -3); // 3 back
    assert.equal((await rl.peek('tokens')).remaining, 8); // 1 used, and peek's own
    await assert.rejects(rl.settle('tokens', r.reservation, 1), { name: 'CommandError', message: /unknown reservation: it expired, was settled, or was never issued/ });

    const big = await rl.reserve('tokens', 2);
    assert.equal(await rl.settle('tokens', big.reservation, 500), 498); // charged into debt
    const d = await rl.throttle('tokens');
    assert.equal(d.allowed, false); // in debt: one full bucket beyond now (10 units of 6 s)
    assert.equal(d.retryAfterMs, 6000);
    assert.equal((await rl.reserve('tokens', 1)).reservation, null); // denied: no hold
  });
});

test('a hold that expires unsettled stays charged; a 65th open hold is refused', async (t) => {
  await onEach(t, ['RL.RESERVE', 'RL.SETTLE'], async (b) => {
    const { rl } = b;
    await b.configure('h', { limit: 100, windowMs: 100000 }); // 1 unit per second
    const r = await rl.reserve('h', 30, { holdMs: 1000 });
    b.setClock(T(1000));
    await assert.rejects(rl.settle('h', r.reservation, 0), /unknown reservation/);
    assert.equal((await rl.peek('h')).remaining, 70); // 30 charged, 1 s drained, peek's own: the work probably happened
    for (let i = 0; i < 63; i++) assert.equal((await rl.reserve('h', 1)).allowed, true);
    const last = await rl.reserve('h', 1);
    await assert.rejects(rl.reserve('h', 1), { name: 'CommandError', message: /too many open reservations: a key holds at most 64/ });
    assert.equal(await rl.settle('h', last.reservation, 1), 0);
    assert.equal((await rl.reserve('h', 1)).allowed, true); // one settled: room for one more
    await assert.rejects(rl.reserve('h', 1, { holdMs: 86400001 }), { name: 'InvalidArgument', message: /holdMs must be an integer from 1 to 86400000/ });
  });
});

test('a penalty blocks on a denial, doubles within a window of the last block, and says when it ends', async (t) => {
  await onEach(t, ['RL.BLOCK'], async (b) => {
    const { rl } = b;
    await b.configure('login', { limit: 1, windowMs: 1000, penaltyMs: 100, penaltyMaxMs: 350 });
    assert.equal((await rl.throttle('login')).allowed, true);
    // The denial that blocks tells the block it starts, and a blocked check retries when both
    // the block (100 ms) and its own limit (1000 ms) let it: max of the two (spec decision 1).
    const first = await rl.throttle('login');
    assert.deepEqual([first.allowed, first.remaining, first.retryAfterMs], [false, 0, 1000]);
    b.setClock(T(40));
    const blocked = await rl.throttle('login');
    assert.deepEqual([blocked.allowed, blocked.remaining, blocked.retryAfterMs], [false, 0, 960]);
    assert.equal(blocked.headers['Retry-After'], '1');
    b.setClock(T(100)); // the block is over, the request still does not fit: blocked twice as long
    assert.equal((await rl.throttle('login')).allowed, false);
    b.setClock(T(101)); // blocked until T(300); its limit admits it at T(1000)
    assert.equal((await rl.throttle('login')).retryAfterMs, 899);
    if (b.name !== 'local') {
      const info = await rl.info('login');
      assert.deepEqual([info.blockedMs, info.penaltyLevel], [199, 1]);
    }
    // Penalties are opt-in: the same denials without penaltyMs block nothing.
    await b.configure('plain', { limit: 1, windowMs: 1000 });
    await rl.throttle('plain');
    await rl.throttle('plain');
    b.setClock(T(1101));
    assert.equal((await rl.throttle('plain')).allowed, true);
  });
});

test('block and unblock, whatever the policy; a blocked key counts nothing', async (t) => {
  await onEach(t, ['RL.BLOCK', 'RL.UNBLOCK'], async (b) => {
    const { rl } = b;
    await b.configure('b', { limit: 5, windowMs: 1000 });
    if (b.name === 'local') {
      await assert.rejects(rl.block('b', 5000), Unavailable);
      await assert.rejects(rl.unblock('b'), Unavailable);
      return;
    }
    assert.equal(await rl.block('b', 5000), undefined);
    for (let i = 0; i < 3; i++) {
      const d = await rl.throttle('b');
      assert.deepEqual([d.allowed, d.remaining, d.retryAfterMs], [false, 0, 5000]);
    }
    assert.equal((await rl.info('b')).blockedMs, 5000);
    assert.equal(await rl.unblock('b'), true);
    assert.equal(await rl.unblock('b'), false);
    assert.equal((await rl.throttle('b')).remaining, 4); // the blocked checks counted nothing
    await rl.block('nopolicy', 1000); // a key without a policy: usage-only, gone when the block ends
    assert.equal((await rl.info('nopolicy')).blockedMs, 1000);
    await assert.rejects(rl.block('b', 0), { name: 'InvalidArgument', message: 'ms must be an integer from 1 to 1000000000000' });
  });
});

test("failure policy: 'allow' and 'deny' take no reservation; 'local' takes a local one, settled locally", async () => {
  const port = await freePort(); // nothing listens
  const make = (onError) => new DistributedRateLimiter(`redis://127.0.0.1:${port}`, { onError, timeoutMs: 50, connectTimeoutMs: 50, logger: QUIET });
  const allow = make('allow');
  const a = await allow.reserve('x', 5, { limit: 10, windowMs: 1000 });
  assert.deepEqual([a.allowed, a.reservation, a.path], [true, null, 'failed_open']);
  assert.equal(await allow.settle('x', a.reservation, 3), 0); // nothing held: nothing sent
  const deny = make('deny');
  const d = await deny.reserve('x', 5, { limit: 10, windowMs: 1000 });
  assert.deepEqual([d.allowed, d.reservation, d.path], [false, null, 'failed_closed']);
  const local = make('local');
  const l = await local.reserve('x', 5, { limit: 10, windowMs: 1000 });
  assert.deepEqual([l.allowed, l.path], [true, 'local']);
  assert.match(l.reservation, /^L\d+$/);
  assert.equal(await local.settle('x', l.reservation, 2), -3);
  await assert.rejects(local.settle('x', l.reservation, 2), CommandError);
  await assert.rejects(local.settle('x', 'nonsense', 2), InvalidArgument);
  await Promise.all([allow.close(), deny.close(), local.close()]);
});

test('a settle that cannot reach Redis is retried once, then Unavailable; never dropped', async () => {
  const b = await open('lua', { frozen: false, timeoutMs: 200 });
  try {
    const { rl } = b;
    await rl.configureRateLimit('s', { limit: 10, windowMs: 60000 });
    const r = await rl.reserve('s', 4);
    // The first send of each settle fails as a dropped connection would.
    const start = rl.transport.start.bind(rl.transport);
    const send = rl.transport.send.bind(rl.transport);
    let failures = 1;
    let sends = 0;
    const failing = (fn) => (key, args) => {
      if (args.includes('settle') || args.includes('RL.SETTLE')) {
        sends += 1;
        if (failures > 0) {
          failures -= 1;
          return fn === start ? { promise: Promise.reject(new Error('connection lost')), reject() {} } : Promise.reject(new Error('connection lost'));
        }
      }
      return fn(key, args);
    };
    rl.transport.start = failing(start);
    rl.transport.send = failing(send);
    assert.equal(await rl.settle('s', r.reservation, 1), -3); // the retry went through
    assert.equal(sends, 2);
    const again = await rl.reserve('s', 4);
    failures = 2;
    sends = 0;
    await assert.rejects(rl.settle('s', again.reservation, 1), Unavailable);
    assert.equal(sends, 2); // one try and one retry, then reported
    assert.equal(await rl.settle('s', again.reservation, 1), -3); // the hold was still there
  } finally {
    await b.stop();
  }
});

test('a module older than these commands is a clear error, never a switch to the Lua script', async (t) => {
  const b = await open('module', { frozen: false });
  try {
    if (!b.missing('RL.RESERVE')) return t.skip('the module has RL.RESERVE');
    const { rl } = b;
    await rl.configureRateLimit('old', { limit: 10, windowMs: 60000 });
    // The script would write a hash that the module's commands then meet (WRONGTYPE).
    await assert.rejects(rl.reserve('old', 1), { name: 'CommandError', message: /the rl module on this server has no RL.RESERVE: load a newer module/ });
    await assert.rejects(rl.acquire('old'), /has no RL.ACQUIRE/);
    assert.equal(await rl.isAllowed('old'), true); // checks still go to the module
    assert.deepEqual([rl.stats().backend, rl.stats().lua, rl.stats().errors], ['module', 0, 0]);
    assert.equal(b.server.cli('TYPE', 'rl:old'), 'ratelimit');
  } finally {
    await b.stop();
  }
});
