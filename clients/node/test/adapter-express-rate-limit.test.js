'use strict';
// distributed-rate-limiter/express-rate-limit: the Store contract of express-rate-limit 7 and
// 8 (init, increment, decrement, get, resetKey, resetAll, prefix, localKeys) and the
// middleware's real request path over Express, on the module and on the Lua script.

const test = require('node:test');
const assert = require('node:assert/strict');
const express = require('express');
const { DistributedRateLimiterStore, DenialLedger } = require('../src/adapters/express-rate-limit');
const { DistributedRateLimiter, ConfigurationError } = require('../src');
const { BACKENDS, lacking, withRedis, hit, tally, listen, exitsAlone, QUIET, TEST_LIMITER } = require('./adapters');

const PEERS = [
  { name: 'express-rate-limit 8', lib: require('express-rate-limit'), headers: 'draft-8' },
  { name: 'express-rate-limit 7', lib: require('express-rate-limit-7'), headers: 'draft-7' },
];

const byHeader = (req) => req.get('x-client') || 'anonymous';

/** An app with one rate limiter in front of /ok (200) and /fail (500). */
function app(peer, store, options = {}) {
  const a = express();
  a.use(peer.lib.rateLimit({ windowMs: 60_000, limit: 3, standardHeaders: peer.headers, legacyHeaders: true, keyGenerator: byHeader, store, ...options }));
  a.get('/ok', (req, res) => res.json({ resetTime: req.rateLimit.resetTime instanceof Date, used: req.rateLimit.used }));
  a.get('/fail', (req, res) => res.status(500).send('failed'));
  return a;
}

test('the denial ledger: a denial\'s decrement gives nothing back, the earliest-expiring pending one first', () => {
  const l = new DenialLedger();
  assert.equal(l.take('k', 0), false, 'nothing pending: a refund');
  l.add('k', 100);
  l.add('k', 50);
  assert.equal(l.take('k', 10), true);
  assert.equal(l.take('k', 10), true);
  assert.equal(l.take('k', 10), false);
  l.add('k', 20);
  assert.equal(l.take('k', 20), false, 'expired: its decrement can no longer come');
  l.add('a', 5);
  l.forget('a');
  assert.equal(l.take('a', 0), false);
  const small = new DenialLedger(2);
  small.add('x', 9);
  small.add('y', 9);
  small.add('z', 9);
  assert.equal(small.keys.size, 2, 'bounded: the least recently denied key goes first');
  assert.equal(small.take('x', 0), false);
});

test('options: refused by name, a limiter given or made, limit functions refused with why', () => {
  assert.throws(() => new DistributedRateLimiterStore({ urll: 'redis://x' }), (e) => e instanceof ConfigurationError && /did you mean 'url'/.test(e.message));
  assert.throws(() => new DistributedRateLimiterStore({ kind: 'fixed' }), ConfigurationError);
  const rl = new DistributedRateLimiter('redis://127.0.0.1:1', { logger: QUIET });
  assert.throws(() => new DistributedRateLimiterStore({ limiter: rl, timeoutMs: 5 }), /belong to the limiter given/);
  const store = new DistributedRateLimiterStore({ limiter: rl });
  assert.equal(store.prefix, 'rl:erl:');
  assert.equal(store.localKeys, false);
  assert.throws(() => store.init({ limit: () => 5, windowMs: 1000 }), /limit is a function/);
  assert.equal(new DistributedRateLimiterStore({ limiter: rl, limit: 5, windowMs: 1000 }).policy.kind, 'sliding');
  assert.equal(new DistributedRateLimiterStore({ limiter: rl, limit: 5000, windowMs: 1000 }).policy.kind, 'gcra', 'above SLIDING\'s 1000');
  assert.equal(new DistributedRateLimiterStore({ limiter: rl, limit: 5, windowMs: 1000, kind: 'gcra' }).policy.kind, 'gcra');
  return rl.close();
});

test('a constructor refusing an option leaves no connection behind (the process exits)', async () => {
  const source = `const { DistributedRateLimiterStore } = require(SRC + '/adapters/express-rate-limit');
    for (const bad of [{ kind: 'fixed' }, { limit: -1, windowMs: 1000 }]) {
      try { new DistributedRateLimiterStore({ url: 'redis://127.0.0.1:1', ...bad }); } catch (e) { continue; }
      process.exit(2);
    }`;
  assert.equal(await exitsAlone(source), true);
});

for (const backend of BACKENDS) {
  for (const peer of PEERS) {
    test(`${peer.name} over Express (${backend.name}): status codes, headers, a Date resetTime`, () =>
      withRedis(backend, async (redis) => {
        redis.cli('SET', 'rl:alice', 'a leftover of rate-limit-redis'); // its default prefix: never touched
        const store = new DistributedRateLimiterStore({ url: `redis://127.0.0.1:${redis.port}`, ...TEST_LIMITER });
        const server = await listen(app(peer, store));
        try {
          const rs = await hit(`${server.url}/ok`, 4, { headers: { 'x-client': 'alice' } });
          assert.deepEqual(rs.map((r) => r.status), [200, 200, 200, 429]);
          assert.deepEqual(rs.map((r) => r.headers.get('x-ratelimit-remaining')), ['2', '1', '0', '0']);
          assert.deepEqual(rs.slice(0, 3).map((r) => JSON.parse(r.body)), [1, 2, 3].map((used) => ({ resetTime: true, used })));
          const retry = Number(rs[3].headers.get('retry-after'));
          assert.ok(retry >= 59 && retry <= 60, `Retry-After ${retry}: the first request leaves the window in 60 s`);
          assert.equal(rs[0].headers.get('retry-after'), null);
          const standard = peer.headers === 'draft-8' ? /r=0; t=(59|60)/ : /remaining=0, reset=(59|60)/;
          assert.match(rs[3].headers.get('ratelimit'), standard);
          assert.equal(redis.cli('GET', 'rl:alice'), 'a leftover of rate-limit-redis');
          assert.equal(redis.cli('EXISTS', 'rl:erl:alice'), '1');
        } finally {
          await server.close();
          await store.shutdown();
        }
      }));

    test(`${peer.name} over Express (${backend.name}): 50 concurrent requests, limit 10: exactly 10 pass`, () =>
      withRedis(backend, async (redis) => {
        const store = new DistributedRateLimiterStore({ url: `redis://127.0.0.1:${redis.port}`, ...TEST_LIMITER });
        const server = await listen(app(peer, store, { limit: 10 }));
        try {
          const rs = await hit(`${server.url}/ok`, 50, { concurrent: true, headers: { 'x-client': 'bob' } });
          assert.deepEqual(tally(rs), { 200: 10, 429: 40 });
          assert.equal((await store.get('bob')).totalHits, 10);
          assert.ok(rs.filter((r) => r.status === 429).every((r) => Number(r.headers.get('retry-after')) > 0));
        } finally {
          await server.close();
          await store.shutdown();
        }
      }));

    test(`${peer.name} over Express (${backend.name}): skipFailedRequests gives failed requests back, never denied ones`, async (t) =>
      withRedis(backend, async (redis) => {
        const why = lacking(redis, backend, 'RL.REFUND');
        if (why) return t.skip(why);
        const store = new DistributedRateLimiterStore({ url: `redis://127.0.0.1:${redis.port}`, ...TEST_LIMITER });
        const server = await listen(app(peer, store, { limit: 2, skipFailedRequests: true }));
        const headers = { 'x-client': 'carol' };
        try {
          assert.deepEqual((await hit(`${server.url}/fail`, 5, { headers })).map((r) => r.status), [500, 500, 500, 500, 500]);
          await settled(store, 'carol', undefined);
          assert.deepEqual((await hit(`${server.url}/ok`, 2, { headers })).map((r) => r.status), [200, 200]);
          // Each 429 is a failed request that express-rate-limit decrements: it counted nothing.
          assert.deepEqual((await hit(`${server.url}/ok`, 6, { headers })).map((r) => r.status), [429, 429, 429, 429, 429, 429]);
          await settled(store, 'carol', 2);
          assert.equal(store.ledger.keys.size, 0, 'every denial\'s decrement came');
          // 50 at once, half failing: the failed ones come back, the denied ones give nothing.
          const mixed = await Promise.all(Array.from({ length: 50 }, (_, i) => hit(`${server.url}/${i % 2 ? 'ok' : 'fail'}`, 1, { headers: { 'x-client': 'dave' } })));
          const ok = mixed.flat().filter((r) => r.status === 200).length;
          assert.ok(ok <= 2, `${ok} successes admitted, at most 2`);
          await settled(store, 'dave', ok);
        } finally {
          await server.close();
          await store.shutdown();
        }
      }));

    test(`${peer.name} over Express (${backend.name}): skipSuccessfulRequests gives successful requests back`, async (t) =>
      withRedis(backend, async (redis) => {
        const why = lacking(redis, backend, 'RL.REFUND');
        if (why) return t.skip(why);
        const store = new DistributedRateLimiterStore({ url: `redis://127.0.0.1:${redis.port}`, ...TEST_LIMITER });
        const server = await listen(app(peer, store, { limit: 2, skipSuccessfulRequests: true }));
        const headers = { 'x-client': 'erin' };
        try {
          assert.deepEqual((await hit(`${server.url}/ok`, 5, { headers })).map((r) => r.status), [200, 200, 200, 200, 200]);
          await settled(store, 'erin', undefined);
          assert.deepEqual((await hit(`${server.url}/fail`, 3, { headers })).map((r) => r.status), [500, 500, 429]);
          await settled(store, 'erin', 2);
        } finally {
          await server.close();
          await store.shutdown();
        }
      }));
  }

  test(`the Store contract (${backend.name}): increment, decrement, get, resetKey, resetAll`, async (t) =>
    withRedis(backend, async (redis) => {
      const limiter = new DistributedRateLimiter(`redis://127.0.0.1:${redis.port}`, TEST_LIMITER);
      const store = new DistributedRateLimiterStore({ limiter });
      store.init({ limit: 3, windowMs: 60_000 });
      try {
        const first = await store.increment('k');
        assert.equal(first.totalHits, 1);
        assert.ok(first.resetTime instanceof Date);
        const ahead = first.resetTime.getTime() - Date.now();
        assert.ok(ahead > 55_000 && ahead <= 60_000, `resetTime ${ahead} ms ahead`);
        assert.equal((await store.increment('k')).totalHits, 2);
        assert.equal((await store.get('k')).totalHits, 2);
        assert.equal(await store.get('nobody'), undefined);
        assert.equal((await store.increment('k')).totalHits, 3);
        const denied = await store.increment('k');
        assert.equal(denied.totalHits, 4, 'over the limit: limit + 1');
        assert.ok(denied.resetTime.getTime() - Date.now() > 55_000, 'when the request would pass');
        assert.equal((await store.get('k')).totalHits, 3, 'a denied request counts nothing');
        if (!lacking(redis, backend, 'RL.REFUND')) {
          await store.decrement('k');
          await store.decrement('k');
          assert.equal((await store.get('k')).totalHits, 1, 'decrement twice');
          assert.equal((await store.increment('k')).totalHits, 2);
        } else t.diagnostic(`decrement not run: ${lacking(redis, backend, 'RL.REFUND')}`);
        await store.resetKey('k');
        assert.equal(await store.get('k'), undefined);
        assert.equal((await store.increment('k')).totalHits, 1);
        for (const k of ['a', 'b', 'c*', 'd?[x]']) await store.increment(k);
        await limiter.throttle('elsewhere', { limit: 1, windowMs: 60_000 }); // not this store's
        await store.resetAll();
        for (const k of ['k', 'a', 'b', 'c*', 'd?[x]']) assert.equal(await store.get(k), undefined, k);
        assert.equal(redis.cli('EXISTS', 'rl:elsewhere'), '1', 'resetAll touches only the store\'s keys');
      } finally {
        await store.shutdown(); // the limiter is the caller's: left open
        assert.equal(limiter.transport.connected(), true);
        await limiter.close();
      }
    }));
}

/** Waits until the store's count for `key` is `want` (undefined: nothing held): decrements run after the response. */
async function settled(store, key, want) {
  const until = Date.now() + 10_000;
  for (;;) {
    const got = await store.get(key);
    const hits = got === undefined ? undefined : got.totalHits;
    if (hits === want) return;
    if (Date.now() > until) assert.fail(`count of ${key}: ${hits}, want ${want}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
