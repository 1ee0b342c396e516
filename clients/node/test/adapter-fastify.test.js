'use strict';
// distributed-rate-limiter/fastify: @fastify/rate-limit's store contract (new Store(options),
// incr, read, child) through a real Fastify app over HTTP, on the module and the Lua script.

const test = require('node:test');
const assert = require('node:assert/strict');
const Fastify = require('fastify');
const rateLimit = require('@fastify/rate-limit');
const { fastifyStore } = require('../src/adapters/fastify');
const { DistributedRateLimiter, ConfigurationError } = require('../src');
const { BACKENDS, takesPenalty, lacking, withRedis, hit, tally, exitsAlone, withExample, QUIET, TEST_LIMITER } = require('./adapters');

/** A Fastify app on a free loopback port with the plugin and `routes`; {url, close()}. */
async function app(pluginOptions, routes = (f) => f.get('/ok', async () => ({ ok: true }))) {
  const f = Fastify();
  await f.register(rateLimit, { keyGenerator: (req) => req.headers['x-client'] || req.ip, ...pluginOptions });
  routes(f);
  const address = await f.listen({ port: 0, host: '127.0.0.1' });
  return { url: address, close: () => f.close() };
}

/** Runs `body(Store, redis)` with a store class on a fresh server, the app and the limiter always closed. */
function withStore(backend, body, own = {}) {
  return withRedis(backend, async (redis) => {
    const Store = fastifyStore({ url: `redis://127.0.0.1:${redis.port}`, ...TEST_LIMITER, ...own });
    try {
      await body(Store, redis);
    } finally {
      await Store.close();
    }
  });
}

test('options: the limiter\'s own, refused by name; what cannot be honoured refused with why', async () => {
  assert.throws(() => fastifyStore({ urll: 'redis://x' }), (e) => e instanceof ConfigurationError && /did you mean 'url'/.test(e.message));
  assert.throws(() => fastifyStore({ kind: 'fixed' }), ConfigurationError);
  const limiter = new DistributedRateLimiter('redis://127.0.0.1:1', { logger: QUIET });
  const Store = fastifyStore({ limiter });
  assert.equal(Store.limiter, limiter);
  assert.throws(() => new Store({ exponentialBackoff: true }), /exponentialBackoff is not supported/);
  assert.throws(() => new Store({ ban: 2 }), /ban >= 1 is not supported/);
  new Store({ ban: 0 });
  new Store({ ban: -1 });
  const root = new Store({});
  assert.equal(root.child({ routeInfo: { method: 'GET', url: '/a' } }).id('k'), 'frl:GET/a-k');
  await Store.close(); // the limiter is the caller's
  assert.equal(limiter.transport.connected !== undefined, true);
  await limiter.close();
  const source = `const { fastifyStore } = require(SRC + '/adapters/fastify');
    try { fastifyStore({ url: 'redis://127.0.0.1:1', kind: 'fixed' }); process.exit(2); } catch (e) {}`;
  assert.equal(await exitsAlone(source), true, 'a refused option leaves no connection behind');
});

for (const backend of BACKENDS) {
  test(`Fastify (${backend.name}): status codes and the plugin's headers`, () =>
    withStore(backend, async (Store, redis) => {
      const server = await app({ max: 3, timeWindow: 60_000, store: Store });
      try {
        const rs = await hit(`${server.url}/ok`, 4, { headers: { 'x-client': 'alice' } });
        assert.deepEqual(rs.map((r) => r.status), [200, 200, 200, 429]);
        assert.deepEqual(rs.map((r) => r.headers.get('x-ratelimit-limit')), ['3', '3', '3', '3']);
        assert.deepEqual(rs.map((r) => r.headers.get('x-ratelimit-remaining')), ['2', '1', '0', '0']);
        assert.ok(rs.slice(0, 3).every((r) => Number(r.headers.get('x-ratelimit-reset')) === 60), 'reset: when the key is empty again');
        const retry = Number(rs[3].headers.get('retry-after'));
        assert.ok(retry >= 59 && retry <= 60, `Retry-After ${retry}: the first request leaves the window in 60 s`);
        assert.equal(JSON.parse(rs[3].body).statusCode, 429);
        assert.equal(redis.cli('EXISTS', 'rl:frl:alice'), '1', 'keys: the limiter prefix, then frl:');
      } finally {
        await server.close();
      }
    }));

  test(`Fastify (${backend.name}): 50 concurrent requests, max 10: exactly 10 pass`, () =>
    withStore(backend, async (Store) => {
      const server = await app({ max: 10, timeWindow: '1 minute', store: Store });
      try {
        const rs = await hit(`${server.url}/ok`, 50, { concurrent: true, headers: { 'x-client': 'bob' } });
        assert.deepEqual(tally(rs), { 200: 10, 429: 40 });
        assert.ok(rs.filter((r) => r.status === 429).every((r) => Number(r.headers.get('retry-after')) >= 59));
      } finally {
        await server.close();
      }
    }));

  test(`Fastify (${backend.name}): a route's own limit (child) has its own keys; max as a function; read`, () =>
    withStore(backend, async (Store) => {
      let peeked = null;
      const server = await app({ global: false, store: Store }, (f) => {
        f.get('/a', { config: { rateLimit: { max: 2, timeWindow: 60_000 } } }, async () => 'a');
        f.get('/b', { config: { rateLimit: { max: async (req) => (req.headers['x-plan'] === 'pro' ? 3 : 1), timeWindow: 60_000 } } }, async () => 'b');
        const check = f.createRateLimit({ max: 2, timeWindow: 60_000 });
        f.get('/peek', async (req) => {
          peeked = await check(req, { increment: false });
          return 'peek';
        });
      });
      try {
        const h = { 'x-client': 'carol' };
        assert.deepEqual((await hit(`${server.url}/a`, 3, { headers: h })).map((r) => r.status), [200, 200, 429]);
        assert.deepEqual((await hit(`${server.url}/b`, 2, { headers: h })).map((r) => r.status), [200, 429], '/b: its own bucket');
        assert.deepEqual((await hit(`${server.url}/b`, 3, { headers: { ...h, 'x-client': 'dan', 'x-plan': 'pro' } })).map((r) => r.status), [200, 200, 200]);
        await hit(`${server.url}/peek`, 2, { headers: h });
        assert.equal(peeked.remaining, 2, 'read counts nothing');
        assert.equal(peeked.isExceeded, false);
      } finally {
        await server.close();
      }
    }));

  // The Lua script answers the denial that starts a block with the window's retry, and the
  // limiter's deny cache then repeats that answer (test/adapter-rate-limiter-flexible.test.js).
  test(`Fastify (${backend.name}): continueExceeding blocks the key for a timeWindow from the denial`, async (t) =>
    withStore(backend, async (Store, redis) => {
      if (!takesPenalty(redis, backend)) return t.skip(lacking(redis, backend, 'RL.BLOCK'));
      const server = await app({ max: 1, timeWindow: 4000, continueExceeding: true, store: Store });
      try {
        const h = { 'x-client': 'erin' };
        const first = performance.now();
        assert.equal((await hit(`${server.url}/ok`, 1, { headers: h }))[0].status, 200);
        await new Promise((r) => setTimeout(r, 2000));
        // The window alone would let the next request in when the first leaves it (<= 2 s from
        // now); the block lasts a timeWindow (4 s) from the denial that starts it.
        await hit(`${server.url}/ok`, 1, { headers: h }); // the denial that starts the block
        const [blocked] = await hit(`${server.url}/ok`, 1, { headers: h });
        assert.ok(performance.now() - first < 4000, 'the machine was too slow for this test\'s timing');
        assert.equal(blocked.status, 429);
        assert.ok(Number(blocked.headers.get('retry-after')) >= 3, `Retry-After ${blocked.headers.get('retry-after')}: the block, not the window`);
      } finally {
        await server.close();
      }
    }));

  test(`examples/fastify.js runs (${backend.name}): 10 per minute, then 429`, () =>
    withRedis(backend, (redis) =>
      withExample('fastify.js', redis, async (url) => {
        const rs = await hit(`${url}/`, 12);
        assert.deepEqual(tally(rs), { 200: 10, 429: 2 });
        const login = await Promise.all(Array.from({ length: 5 }, () => fetch(`${url}/login`, { method: 'POST' }).then((r) => r.status)));
        assert.deepEqual(login.sort(), [200, 200, 200, 429, 429]);
      })));
}
