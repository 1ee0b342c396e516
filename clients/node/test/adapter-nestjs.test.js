'use strict';
// distributed-rate-limiter/nestjs: @nestjs/throttler's ThrottlerStorage contract (increment ->
// {totalHits, timeToExpire, isBlocked, timeToBlockExpire}) through a real NestJS app
// (ThrottlerGuard as APP_GUARD, over HTTP), on the module and the Lua script.

require('reflect-metadata');
const test = require('node:test');
const assert = require('node:assert/strict');
const { Module, Controller, Get } = require('@nestjs/common');
const { APP_GUARD, NestFactory } = require('@nestjs/core');
const { ThrottlerModule, ThrottlerGuard, Throttle } = require('@nestjs/throttler');
const { DistributedThrottlerStorage } = require('../src/adapters/nestjs');
const { DistributedRateLimiter, ConfigurationError } = require('../src');
const { BACKENDS, takesPenalty, lacking, withRedis, hit, tally, exitsAlone, withExample, QUIET, TEST_LIMITER } = require('./adapters');

/** A NestJS app with ThrottlerGuard over `throttlers` and `storage`: GET / and GET /strict (its own limit). {url, app}. */
async function nestApp(throttlers, storage) {
  class AppController {
    root() {
      return 'ok';
    }

    strict() {
      return 'strict';
    }
  }
  const method = (name) => Object.getOwnPropertyDescriptor(AppController.prototype, name);
  Get()(AppController.prototype, 'root', method('root'));
  Get('strict')(AppController.prototype, 'strict', method('strict'));
  Throttle({ default: { limit: 1, ttl: 60_000 } })(AppController.prototype, 'strict', method('strict'));
  Controller()(AppController);
  class AppModule {}
  Module({
    imports: [ThrottlerModule.forRoot({ throttlers, storage, getTracker: (req) => req.headers['x-client'] || req.ip })],
    controllers: [AppController],
    providers: [{ provide: APP_GUARD, useClass: ThrottlerGuard }],
  })(AppModule);
  const app = await NestFactory.create(AppModule, { logger: false });
  await app.listen(0, '127.0.0.1');
  return { url: await app.getUrl(), app };
}

/** Runs `body(storage, redis)` with a storage on a fresh server; the storage always closed. */
function withStorage(backend, body) {
  return withRedis(backend, async (redis) => {
    const storage = new DistributedThrottlerStorage({ url: `redis://127.0.0.1:${redis.port}`, ...TEST_LIMITER });
    try {
      await body(storage, redis);
    } finally {
      await storage.onApplicationShutdown();
    }
  });
}

test('options: the limiter\'s own, refused by name; a limiter given is left open', async () => {
  assert.throws(() => new DistributedThrottlerStorage({ urll: 'redis://x' }), (e) => e instanceof ConfigurationError && /did you mean 'url'/.test(e.message));
  assert.throws(() => new DistributedThrottlerStorage({ kind: 'fixed' }), ConfigurationError);
  const limiter = new DistributedRateLimiter('redis://127.0.0.1:1', { logger: QUIET });
  const storage = new DistributedThrottlerStorage({ limiter });
  assert.equal(storage.limiter, limiter);
  assert.deepEqual(await storage.increment('k', 1000, 0, 1000, 'default'), { totalHits: 1, timeToExpire: 1, isBlocked: true, timeToBlockExpire: 1 }, 'limit 0 denies, without Redis');
  await storage.onApplicationShutdown();
  await limiter.close();
  const source = `const { DistributedThrottlerStorage } = require(SRC + '/adapters/nestjs');
    try { new DistributedThrottlerStorage({ url: 'redis://127.0.0.1:1', kind: 'fixed' }); process.exit(2); } catch (e) {}`;
  assert.equal(await exitsAlone(source), true, 'a refused option leaves no connection behind');
});

for (const backend of BACKENDS) {
  test(`ThrottlerStorage contract (${backend.name}): the records, in the peer's seconds`, () =>
    withStorage(backend, async (storage, redis) => {
      const got = [];
      for (let i = 0; i < 3; i++) got.push(await storage.increment('k', 60_000, 2, 60_000, 'default'));
      assert.deepEqual(got.map((r) => [r.totalHits, r.isBlocked, r.timeToBlockExpire]), [[1, false, 0], [2, false, 0], [3, true, 60]]);
      assert.deepEqual(got.map((r) => r.timeToExpire), [60, 60, 60]);
      assert.equal(redis.cli('EXISTS', 'rl:nest:k'), '1', 'keys: the limiter prefix, then nest:');
    }));

  test(`NestJS (${backend.name}): status codes, ThrottlerGuard's headers, a route's own limit`, () =>
    withStorage(backend, async (storage) => {
      const { url, app } = await nestApp([{ ttl: 60_000, limit: 3 }], storage);
      try {
        const h = { 'x-client': 'alice' };
        const rs = await hit(`${url}/`, 4, { headers: h });
        assert.deepEqual(rs.map((r) => r.status), [200, 200, 200, 429]);
        assert.deepEqual(rs.slice(0, 3).map((r) => r.headers.get('x-ratelimit-remaining')), ['2', '1', '0']);
        assert.deepEqual(rs.slice(0, 3).map((r) => r.headers.get('x-ratelimit-limit')), ['3', '3', '3']);
        assert.ok(rs.slice(0, 3).every((r) => Number(r.headers.get('x-ratelimit-reset')) === 60));
        const retry = Number(rs[3].headers.get('retry-after'));
        assert.ok(retry >= 59 && retry <= 60, `Retry-After ${retry}`);
        assert.equal(JSON.parse(rs[3].body).statusCode, 429);
        assert.deepEqual((await hit(`${url}/strict`, 2, { headers: h })).map((r) => r.status), [200, 429], '@Throttle: its own limit and key');
      } finally {
        await app.close();
      }
    }));

  test(`NestJS (${backend.name}): 50 concurrent requests, limit 10: exactly 10 pass`, () =>
    withStorage(backend, async (storage) => {
      const { url, app } = await nestApp([{ ttl: 60_000, limit: 10 }], storage);
      try {
        const rs = await hit(`${url}/`, 50, { concurrent: true, headers: { 'x-client': 'bob' } });
        assert.deepEqual(tally(rs), { 200: 10, 429: 40 });
        assert.ok(rs.filter((r) => r.status === 429).every((r) => Number(r.headers.get('retry-after')) >= 59));
      } finally {
        await app.close();
      }
    }));

  test(`NestJS (${backend.name}): two named throttlers, both decided`, () =>
    withStorage(backend, async (storage) => {
      const { url, app } = await nestApp([{ name: 'short', ttl: 1000, limit: 100 }, { name: 'long', ttl: 60_000, limit: 2 }], storage);
      try {
        const rs = await hit(`${url}/`, 3, { headers: { 'x-client': 'carol' } });
        assert.deepEqual(rs.map((r) => r.status), [200, 200, 429]);
        assert.equal(rs[0].headers.get('x-ratelimit-remaining-short'), '99');
        assert.equal(rs[1].headers.get('x-ratelimit-remaining-long'), '0');
        assert.ok(Number(rs[2].headers.get('retry-after-long')) >= 59);
      } finally {
        await app.close();
      }
    }));

  // The Lua script answers the denial that starts a block with the window's retry, and the
  // limiter's deny cache then repeats that answer (test/adapter-rate-limiter-flexible.test.js).
  test(`NestJS (${backend.name}): a blockDuration other than ttl blocks the key for blockDuration`, async (t) =>
    withStorage(backend, async (storage, redis) => {
      if (!takesPenalty(redis, backend)) return t.skip(lacking(redis, backend, 'RL.BLOCK'));
      const { url, app } = await nestApp([{ ttl: 1000, limit: 1, blockDuration: 30_000 }], storage);
      try {
        const h = { 'x-client': 'dave' };
        assert.deepEqual((await hit(`${url}/`, 3, { headers: h })).map((r) => r.status), [200, 429, 429]);
        const rs = await hit(`${url}/`, 1, { headers: h });
        assert.equal(rs[0].status, 429);
        assert.ok(Number(rs[0].headers.get('retry-after')) >= 25, `Retry-After ${rs[0].headers.get('retry-after')}: the block, not the 1 s window`);
      } finally {
        await app.close();
      }
    }));

  test(`examples/nestjs.js runs (${backend.name}): 10 per minute, 3 on /login, then 429`, () =>
    withRedis(backend, (redis) =>
      withExample('nestjs.js', redis, async (url) => {
        assert.deepEqual(tally(await hit(`${url}/`, 12)), { 200: 10, 429: 2 });
        const login = await Promise.all(Array.from({ length: 5 }, () => fetch(`${url}/login`, { method: 'POST' }).then((r) => r.status)));
        assert.deepEqual(login.sort(), [201, 201, 201, 429, 429]);
      })));
}

test('the storage closes the connection it made when the app closes', () =>
  withRedis(BACKENDS[1], async (redis) => {
    const storage = new DistributedThrottlerStorage({ url: `redis://127.0.0.1:${redis.port}`, ...TEST_LIMITER });
    const { app } = await nestApp([{ ttl: 60_000, limit: 3 }], storage);
    await storage.limiter.ready();
    assert.equal(storage.limiter.transport.connected(), true);
    await app.close();
    // QUIT has been answered; the socket closes a moment later.
    const until = Date.now() + 10_000;
    while (storage.limiter.transport.connected() && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    assert.equal(storage.limiter.transport.connected(), false);
  }));
