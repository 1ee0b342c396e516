'use strict';
// Every call of the API on a standalone server, with the module and without it (the Lua
// path), through ioredis and node-redis in RESP2 and RESP3: the same answers everywhere.

const test = require('node:test');
const assert = require('node:assert/strict');
const IoRedis = require('ioredis');
const { DistributedRateLimiter, RateLimitArgumentError } = require('../src');
const { Server } = require('./servers');
const { STANDALONE, close } = require('./clients');

const TEN_TRUE_FIVE_FALSE = [...Array(10).fill(true), ...Array(5).fill(false)];

for (const backend of ['module', 'lua']) {
  test(`every call, ${backend}`, async (t) => {
    const server = await new Server({ module: backend === 'module' }).start();
    const raw = new IoRedis({ port: server.port, protocol: 2 });
    const path = backend === 'module' ? 'redis' : 'lua';
    try {
      for (const [name, make] of Object.entries(STANDALONE)) {
        await t.test(name, async () => {
          const client = await make(server.port);
          const p = `${name}:`;
          // A generous timeout: this test is about answers, not about failing over.
          const rl = new DistributedRateLimiter(client, { timeoutMs: 2000, prefix: p, denyCacheMaxMs: 0 });
          try {
            await rl.configureRateLimit('user123', { limit: 10, windowMs: 60000 });
            const got = [];
            for (let i = 0; i < 15; i++) got.push(await rl.isAllowed('user123'));
            assert.deepEqual(got, TEN_TRUE_FIVE_FALSE, 'the brief');
            assert.equal(await raw.exists(`${p}user123`), 1, 'the key carries the prefix');

            const denied = await rl.throttle('user123');
            assert.equal(denied.allowed, false);
            assert.equal(denied.limit, 10);
            assert.equal(denied.remaining, 0);
            assert.ok(denied.retryAfterMs > 5000 && denied.retryAfterMs <= 6000, `retry ${denied.retryAfterMs}`);
            assert.ok(denied.resetAfterMs > 59000 && denied.resetAfterMs <= 60000);
            assert.equal(denied.headers['Retry-After'], '6');
            assert.equal(denied.headers['RateLimit-Policy'], '"default";q=10;w=60');
            assert.equal(denied.headers.RateLimit, '"default";r=0;t=60');
            assert.equal(denied.path, path);

            const info = await rl.info('user123');
            assert.deepEqual(
              { source: info.source, limit: info.limit, windowMs: info.windowMs, burst: info.burst, remaining: info.remaining },
              { source: 'stored', limit: 10, windowMs: 60000, burst: 10, remaining: 0 },
            );
            assert.equal(await rl.info('nobody'), null);

            const forgotten = await rl.reset('user123');
            assert.ok(forgotten > 59000 && forgotten <= 60000, `reset ${forgotten}`);
            assert.equal(await rl.isAllowed('user123', { cost: 10 }), true, 'a whole bucket after the reset');
            assert.equal(await rl.isAllowed('user123', { cost: 11 }), false);
            assert.equal((await rl.throttle('user123', { cost: 11 })).retryAfterMs, -1, 'heavier than the burst: never');

            // Inline policies, for stateless apps; peek counts nothing.
            const inline = { limit: 2, windowMs: 1000 };
            assert.equal((await rl.peek('inline', inline)).remaining, 1); // as if this request passed
            assert.equal((await rl.peek('inline', inline)).remaining, 1); // as if this request passed
            assert.deepEqual([await rl.isAllowed('inline', inline), await rl.isAllowed('inline', inline), await rl.isAllowed('inline', inline)], [true, true, false]);
            const burst = await rl.throttle('burst', { limit: 1, windowMs: 1000, burst: 3, cost: 3 });
            assert.deepEqual([burst.allowed, burst.limit, burst.remaining], [true, 3, 0]);

            // Answers that are errors are thrown and never trip the breaker.
            await assert.rejects(rl.isAllowed('no-policy'), /no rate limit for key/);
            await raw.set(`${p}a-string`, 'x');
            await assert.rejects(rl.isAllowed('a-string', inline), { name: 'ForeignKey' });
            assert.equal(await raw.get(`${p}a-string`), 'x', 'a foreign key is left as it was');
            assert.deepEqual([rl.stats().errors, rl.stats().state], [0, 'closed']);
            assert.equal(rl.stats()[path] > 20, true);
          } finally {
            await close(client);
          }
        });
      }

      await t.test('policies beyond Lua\'s exact range', async () => {
        const rl = new DistributedRateLimiter(raw, { timeoutMs: 2000 });
        const huge = { limit: 2 ** 27, windowMs: 1000 };
        if (backend === 'module') {
          assert.equal(await rl.isAllowed('huge', huge), true);
        } else {
          await assert.rejects(rl.isAllowed('huge', huge), { name: 'InvalidArgument', message: /Lua fallback's exact range/ });
          await assert.rejects(rl.configureRateLimit('huge', { limit: 1, windowMs: 1e12, burst: 10000 }), RateLimitArgumentError);
        }
        assert.equal(rl.stats().errors, 0);
      });
    } finally {
      raw.disconnect();
      await server.stop();
    }
  });
}

test('bad input is refused before anything is sent', async () => {
  const sent = [];
  const fake = { status: 'ready', call: async (...a) => sent.push(a), on() {} };
  const rl = new DistributedRateLimiter(fake);
  const bad = [
    () => rl.isAllowed(''),
    () => rl.isAllowed('k', { cost: 0 }),
    () => rl.isAllowed('k', { cost: 1.5 }),
    () => rl.isAllowed('k', { limit: 10 }),
    () => rl.isAllowed('k', { limit: -1, windowMs: 1000 }),
    () => rl.throttle('k', { limit: 10, windowMs: 1000, burst: 2 ** 31 }),
    () => rl.configureRateLimit('k', { limit: 10, windowMs: 0 }),
    () => rl.configureRateLimit('k', { limit: 10, windowMs: 1000, idleMs: 0 }),
    () => rl.peek(null),
  ];
  for (const f of bad) await assert.rejects(f(), RateLimitArgumentError);
  assert.deepEqual(sent, []);
});

for (const backend of ['module', 'lua']) {
  test(`every call of issues 19 and 20, ${backend}, each client library and protocol`, async (t) => {
    const server = await new Server({ module: backend === 'module' }).start();
    const path = backend === 'module' ? 'redis' : 'lua';
    try {
      if (backend === 'module' && !server.cli('COMMAND', 'INFO', 'RL.ACQUIRE').toLowerCase().includes('rl.acquire')) {
        t.skip('the module has no RL.ACQUIRE');
        return;
      }
      for (const [name, make] of Object.entries(STANDALONE)) {
        await t.test(name, async () => {
          const client = await make(server.port);
          const rl = new DistributedRateLimiter(client, { timeoutMs: 2000, prefix: `${name}:`, denyCacheMaxMs: 0 });
          try {
            await rl.configureRateLimit('t', { limit: 10, windowMs: 60000, penaltyMs: 60000 });
            const r = await rl.reserve('t', 4, { holdMs: 60000 });
            assert.deepEqual([r.allowed, r.remaining, r.path, typeof r.reservation], [true, 6, path, 'number']);
            assert.equal(await rl.settle('t', r.reservation, 1), -3);
            assert.equal(await rl.refund('t', 1), 1);
            assert.equal((await rl.reserve('t', 11)).reservation, null); // denied, and now blocked (PENALTY)
            const blocked = await rl.throttle('t');
            assert.deepEqual([blocked.allowed, blocked.remaining], [false, 0]);
            assert.ok(blocked.retryAfterMs > 59000 && blocked.retryAfterMs <= 60000, `retry ${blocked.retryAfterMs}`);
            const info = await rl.info('t');
            assert.deepEqual([info.holds, info.penaltyLevel, info.blockedMs > 59000], [0, 0, true]);
            assert.equal(await rl.unblock('t'), true);
            assert.equal(await rl.block('t', 1000), undefined);

            await rl.configureRateLimit('c', [{ limit: 100, windowMs: 60000 }, { kind: 'concurrency', limit: 1, windowMs: 30000 }]);
            const a = await rl.acquire('c');
            assert.deepEqual([a.allowed, a.binding, typeof a.lease], [true, 1, 'number']);
            const no = await rl.acquire('c');
            assert.deepEqual([no.allowed, no.lease], [false, null]);
            assert.ok(no.retryAfterMs > 29000 && no.retryAfterMs <= 30000);
            assert.equal(no.headers['RateLimit-Policy'], '"l0";q=100;w=60, "l1";q=1');
            assert.equal(await rl.renew('c', a.lease, 5000), true);
            assert.equal((await rl.info('c')).leases, 1);
            assert.equal(await rl.release('c', a.lease), true);
            assert.equal(await rl.release('c', a.lease), false);
            await assert.rejects(rl.isAllowed('c'), { name: 'CommandError', message: /RL.ACQUIRE/ });
            assert.deepEqual([rl.stats().errors, rl.stats().state], [0, 'closed']);
          } finally {
            await close(client);
          }
        });
      }
    } finally {
      await server.stop();
    }
  });
}
