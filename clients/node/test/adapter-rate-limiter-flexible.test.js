'use strict';
// distributed-rate-limiter/rate-limiter-flexible: RateLimiterDRL against RateLimiterRedis's
// documented behaviour (consume, get, delete, penalty, reward, block, blockDuration,
// insuranceLimiter, inMemoryBlockOnConsumed, execEvenly), on the module and the Lua script,
// and in the peer's Express middleware pattern under 50 concurrent requests.

const test = require('node:test');
const assert = require('node:assert/strict');
const express = require('express');
const IoRedis = require('ioredis');
const { RateLimiterMemory, RateLimiterRes, RateLimiterUnion, RateLimiterRedis } = require('rate-limiter-flexible');
const { RateLimiterDRL } = require('../src/adapters/rate-limiter-flexible');
const { ConfigurationError, RateLimitError } = require('../src');
const { BACKENDS, lacking, takesPenalty, withRedis, hit, tally, listen, exitsAlone, TEST_LIMITER } = require('./adapters');

/** Calls of one command the server has executed (INFO commandstats). */
function calls(server, command) {
  const m = new RegExp(`cmdstat_${command.toLowerCase()}:calls=(\\d+)`).exec(server.cli('INFO', 'commandstats'));
  return m ? Number(m[1]) : 0;
}

/** Runs `body(make, redis)` with a connected ioredis storeClient; `make(opts)` builds a RateLimiterDRL on it. */
function withLimiter(backend, body) {
  return withRedis(backend, async (redis) => {
    const storeClient = new IoRedis({ port: redis.port, lazyConnect: true });
    storeClient.on('error', () => {});
    await storeClient.connect();
    try {
      await body((opts) => new RateLimiterDRL({ storeClient, ...TEST_LIMITER, ...opts }), redis, storeClient);
    } finally {
      storeClient.disconnect();
    }
  });
}

/** The promise's rejection (asserting it rejects). */
async function rejection(p) {
  try {
    await p;
  } catch (err) {
    return err;
  }
  return assert.fail('expected a rejection');
}

const near = (ms, want, slack = 2000) => assert.ok(ms > want - slack && ms <= want, `msBeforeNext ${ms}, want about ${want}`);

test('options: RateLimiterRedis\'s are taken, the ones that cannot be honoured are refused with why', () => {
  assert.throws(() => new RateLimiterDRL({ points: 5, duration: 1, customIncrTtlLuaScript: 'return 1' }), /customIncrTtlLuaScript is not supported/);
  assert.throws(() => new RateLimiterDRL({ points: 5, duration: 1, blockOnConsumed: 10 }), /blockOnConsumed is not supported/);
  assert.throws(() => new RateLimiterDRL({ points: 5, duration: 1, inMemoryBlockOnConsumed: 2 }), /greater or equal "points"/);
  assert.throws(() => new RateLimiterDRL({ points: 5, duration: 1, inMemoryBlockDuration: 2 }), /must be set up/);
  assert.throws(() => new RateLimiterDRL({ points: 5, duraton: 1 }), (e) => e instanceof ConfigurationError && /did you mean 'duration'/.test(e.message));
  assert.throws(() => new RateLimiterDRL({ duration: 1 }), /points must be set/);
  assert.throws(() => new RateLimiterDRL({ points: 5, duration: 1, onError: 'local', insuranceLimiter: new RateLimiterMemory({ points: 1, duration: 1 }) }), /not both/);
  const rl = new RateLimiterDRL({ url: 'redis://127.0.0.1:1', points: 5, duration: 1, rejectIfRedisNotReady: true, useRedisPackage: true });
  assert.equal(rl.getKey('u1'), 'rlflx:u1');
  assert.equal(rl.parseKey('rlflx:u1'), 'u1');
  assert.equal(rl.msDuration, 1000);
  assert.equal(rl.policy().policy.kind, 'sliding');
  rl.points = 5000; // changed at run time, as the peer allows
  assert.equal(rl.policy().policy.kind, 'gcra', 'above SLIDING\'s 1000');
  rl.points = 5;
  rl.execEvenly = true;
  assert.equal(rl.policy().policy.kind, 'gcra', 'execEvenly: the leaky bucket');
  const insurance = new RateLimiterMemory({ points: 1, duration: 1 });
  const insured = new RateLimiterDRL({ url: 'redis://127.0.0.1:1', points: 5, duration: 1, blockDuration: 7, insuranceLimiter: insurance });
  assert.equal(insurance.blockDuration, 7, 'as the peer: the insurance takes blockDuration');
  assert.equal(insured.policy().policy.penaltyMs, 7000);
  return Promise.all([rl.close(), insured.close()]);
});

test('a constructor refusing an option leaves no connection behind (the process exits)', async () => {
  const source = `const { RateLimiterDRL } = require(SRC + '/adapters/rate-limiter-flexible');
    for (const bad of [{ points: 0, duration: 1 }, { points: 5, duration: 1, inMemoryBlockOnConsumed: 2 }, { points: 5, duration: -1 }, { points: 5, duration: 1, kind: 'fixed' }]) {
      try { new RateLimiterDRL({ url: 'redis://127.0.0.1:1', ...bad }); } catch (e) { continue; }
      process.exit(2);
    }`;
  assert.equal(await exitsAlone(source), true);
});

for (const backend of BACKENDS) {
  test(`consume (${backend.name}): resolves RateLimiterRes, rejects with one when points run out`, () =>
    withLimiter(backend, async (make, redis) => {
      const rl = make({ points: 3, duration: 60 });
      const got = [];
      for (let i = 0; i < 3; i++) got.push(await rl.consume('u1'));
      assert.ok(got.every((r) => r instanceof RateLimiterRes));
      assert.deepEqual(got.map((r) => [r.remainingPoints, r.consumedPoints, r.isFirstInDuration]), [[2, 1, true], [1, 2, false], [0, 3, false]]);
      got.forEach((r) => near(r.msBeforeNext, 60_000));
      const rej = await rejection(rl.consume('u1'));
      assert.ok(rej instanceof RateLimiterRes && !(rej instanceof Error));
      assert.equal(rej.remainingPoints, 0);
      assert.equal(rej.consumedPoints, 4, 'above points, as the peer\'s');
      near(rej.msBeforeNext, 60_000);
      assert.deepEqual(Object.keys(rej.toJSON()), ['remainingPoints', 'msBeforeNext', 'consumedPoints', 'isFirstInDuration']);
      assert.equal(JSON.parse(String(rej)).consumedPoints, 4);
      const heavy = await rejection(rl.consume('u2', 5));
      assert.ok(heavy instanceof RateLimiterRes && heavy.msBeforeNext >= 0, 'more points than the limit: rejected');
      assert.equal((await rl.consume('u2', 2)).consumedPoints, 2, 'and counted nothing');
      assert.ok(await rejection(rl.consume('u2', 1.5)) instanceof Error, 'decimal points: an Error, as the peer');
      assert.equal(redis.cli('EXISTS', 'rl:rlflx:u1'), '1', 'keys: the limiter prefix, then the peer\'s keyPrefix:key');
    }));

  test(`get and delete (${backend.name})`, () =>
    withLimiter(backend, async (make) => {
      const rl = make({ points: 3, duration: 60 });
      assert.equal(await rl.get('nobody'), null);
      await rl.consume('u1');
      await rl.consume('u1');
      const g = await rl.get('u1');
      assert.deepEqual([g.consumedPoints, g.remainingPoints], [2, 1]);
      await rl.consume('u1');
      assert.ok((await rl.get('u1')).consumedPoints > 3, 'full: more than points, as the peer\'s once a consume is rejected');
      assert.equal(await rl.delete('u1'), true);
      assert.equal(await rl.delete('u1'), false);
      assert.equal(await rl.get('u1'), null);
      assert.equal((await rl.consume('u1')).consumedPoints, 1);
    }));

  test(`reward, penalty (also past the limit) and block (${backend.name})`, async (t) =>
    withLimiter(backend, async (make, redis) => {
      const why = lacking(redis, backend, 'RL.REFUND', 'RL.RESERVE', 'RL.SETTLE', 'RL.BLOCK');
      if (why) return t.skip(why);
      const rl = make({ points: 3, duration: 60 });
      for (let i = 0; i < 3; i++) await rl.consume('u1');
      const rewarded = await rl.reward('u1', 2);
      assert.deepEqual([rewarded.consumedPoints, rewarded.remainingPoints], [1, 2]);
      assert.equal((await rl.reward('u1', 10)).consumedPoints, 0, 'never below nothing consumed');
      const p = await rl.penalty('u2', 2);
      assert.deepEqual([p.consumedPoints, p.remainingPoints], [2, 1]);
      const past = await rl.penalty('u2', 5);
      assert.ok(past.consumedPoints > 3 && past.remainingPoints === 0, `past the limit: ${past}`);
      assert.ok(await rejection(rl.consume('u2')) instanceof RateLimiterRes);
      const b = await rl.block('u3', 10);
      assert.deepEqual(b.toJSON(), { remainingPoints: 0, msBeforeNext: 10_000, consumedPoints: 4, isFirstInDuration: false });
      const blocked = await rejection(rl.consume('u3'));
      near(blocked.msBeforeNext, 10_000);
      assert.equal(await rl.delete('u3'), true, 'a blocked key exists');
      assert.equal((await rl.consume('u3')).consumedPoints, 1);
    }));

  test(`blockDuration: a denial blocks the key for blockDuration (${backend.name})`, async (t) =>
    withLimiter(backend, async (make, redis) => {
      if (!takesPenalty(redis, backend)) return t.skip(lacking(redis, backend, 'RL.BLOCK'));
      const rl = make({ points: 2, duration: 1, blockDuration: 30 });
      await rl.consume('u1');
      await rl.consume('u1');
      await rejection(rl.consume('u1'));
      near((await rejection(rl.consume('u1'))).msBeforeNext, 30_000, 3000);
      const g = await rl.get('u1');
      assert.ok(g.consumedPoints > 2 && g.remainingPoints === 0, `blocked: ${g}`);
      near(g.msBeforeNext, 30_000, 3000);
    }));

  // The peer answers the consume that goes past `points` with the block itself; so does the
  // module (issue 19: "the denial that starts a block already answers so"). The Lua script
  // blocks the key on that denial but answers it with the limit's own retry (under 1 s here).
  test(`blockDuration: the denial that starts the block already tells it (${backend.name})`, async (t) =>
    withLimiter(backend, async (make, redis) => {
      if (!takesPenalty(redis, backend)) return t.skip(lacking(redis, backend, 'RL.BLOCK'));
      const rl = make({ points: 2, duration: 1, blockDuration: 30 });
      await rl.consume('u1');
      await rl.consume('u1');
      near((await rejection(rl.consume('u1'))).msBeforeNext, 30_000);
    }));

  test(`50 concurrent consumes, points 10: exactly 10 resolve (${backend.name})`, () =>
    withLimiter(backend, async (make) => {
      const rl = make({ points: 10, duration: 60 });
      const out = await Promise.allSettled(Array.from({ length: 50 }, () => rl.consume('hot')));
      assert.equal(out.filter((o) => o.status === 'fulfilled').length, 10);
      assert.ok(out.filter((o) => o.status === 'rejected').every((o) => o.reason instanceof RateLimiterRes));
    }));

  test(`the peer's Express middleware, 50 concurrent requests (${backend.name})`, () =>
    withLimiter(backend, async (make) => {
      const rl = make({ points: 10, duration: 60 });
      const app = express();
      app.use((req, res, next) => {
        rl.consume(req.ip)
          .then((r) => {
            res.set('X-RateLimit-Remaining', String(r.remainingPoints));
            next();
          })
          .catch((r) => {
            if (r instanceof Error) return next(r);
            res.set('Retry-After', String(Math.ceil(r.msBeforeNext / 1000)));
            return res.status(429).send('Too Many Requests');
          });
      });
      app.get('/', (req, res) => res.send('ok'));
      const server = await listen(app);
      try {
        const rs = await hit(`${server.url}/`, 50, { concurrent: true });
        assert.deepEqual(tally(rs), { 200: 10, 429: 40 });
        assert.ok(rs.filter((r) => r.status === 429).every((r) => Number(r.headers.get('retry-after')) >= 59));
      } finally {
        await server.close();
      }
    }));

  test(`inMemoryBlockOnConsumed: denials answered from memory until delete (${backend.name})`, () =>
    withLimiter(backend, async (make, redis) => {
      const rl = make({ points: 2, duration: 60, inMemoryBlockOnConsumed: 2 });
      const command = backend.module ? 'rl.throttle' : 'evalsha';
      await rl.consume('u1');
      await rl.consume('u1');
      await rejection(rl.consume('u1'));
      const before = calls(redis, command);
      for (let i = 0; i < 20; i++) near((await rejection(rl.consume('u1'))).msBeforeNext, 60_000);
      assert.equal(calls(redis, command), before, 'no round trip while blocked in memory');
      rl.deleteInMemoryBlockedAll();
      await rejection(rl.consume('u1'));
      assert.equal(calls(redis, command), before + 1);
    }));

  test(`execEvenly: an allowed consume resolves after the peer's delay (${backend.name})`, () =>
    withLimiter(backend, async (make) => {
      const rl = make({ points: 5, duration: 2, execEvenly: true });
      const first = performance.now();
      assert.equal((await rl.consume('u1')).isFirstInDuration, true);
      assert.ok(performance.now() - first < 2000, 'the first in a duration is not delayed');
      const start = performance.now();
      const r = await rl.consume('u1');
      // The peer's formula on this consume's numbers: at least execEvenlyMinDelayMs * consumed = 400 * 2.
      assert.ok(performance.now() - start >= 790, `resolved after ${performance.now() - start} ms`);
      assert.ok(r.msBeforeNext >= 0);
    }));

  test(`RateLimiterUnion of two RateLimiterDRL (${backend.name})`, () =>
    withLimiter(backend, async (make) => {
      const union = new RateLimiterUnion(make({ keyPrefix: 'second', points: 3, duration: 1 }), make({ keyPrefix: 'minute', points: 4, duration: 60 }));
      for (let i = 0; i < 3; i++) await union.consume('u1');
      const rej = await rejection(union.consume('u1'));
      assert.ok(rej.second instanceof RateLimiterRes, 'the per-second limit rejected');
    }));
}

test('a store failure: an Error (not a RateLimiterRes), or the insuranceLimiter decides, as RateLimiterRedis', () =>
  withRedis(BACKENDS[1], async (redis) => {
    const storeClient = new IoRedis({ port: redis.port, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    storeClient.on('error', () => {});
    await storeClient.connect();
    const bare = new RateLimiterDRL({ storeClient, points: 1, duration: 60, timeoutMs: 200 });
    const insured = new RateLimiterDRL({ storeClient, points: 5, duration: 60, timeoutMs: 200, keyPrefix: 'ins', insuranceLimiter: new RateLimiterMemory({ points: 1, duration: 60 }) });
    const peerRedis = new RateLimiterRedis({ storeClient, points: 1, duration: 60 });
    try {
      await bare.consume('u1');
      await redis.kill();
      const err = await rejection(bare.consume('u1'));
      assert.ok(err instanceof Error && !(err instanceof RateLimiterRes), `an Error: ${err}`);
      assert.ok(await rejection(peerRedis.consume('u1')) instanceof Error, 'as the peer itself');
      await rejection(bare.get('u1'));
      await rejection(bare.delete('u1'));
      assert.equal((await insured.consume('u1')).remainingPoints, 0, 'the insurance (1 point) decided');
      assert.ok(await rejection(insured.consume('u1')) instanceof RateLimiterRes);
      assert.equal(await insured.get('u1').then((r) => r.consumedPoints), 2);
    } finally {
      storeClient.disconnect();
    }
  }));

test('set() is refused with why', async () => {
  const rl = new RateLimiterDRL({ url: 'redis://127.0.0.1:1', points: 1, duration: 1 });
  const err = await rejection(rl.set('k', 1, 1));
  assert.ok(err instanceof RateLimitError && /not supported/.test(err.message));
  await rl.close();
});
