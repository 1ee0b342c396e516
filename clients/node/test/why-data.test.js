'use strict';
// Issue 18, "Why" 3, 5, 6, 9 and 13: policies that survive Redis losing data, a Lua fallback
// that never touches a key it did not create, keys that move between the Lua path and the
// module, local state kept across outages, SLIDING and sets on every path.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const IoRedis = require('ioredis');
const { DistributedRateLimiter } = require('../src');
const { Server, sleep } = require('./servers');

const quiet = { warn() {}, error() {} };

/** A limiter on its own ioredis connection that reconnects quickly (tests restart servers). */
function limiter(port, options = {}) {
  const client = new IoRedis({ port, protocol: 2, retryStrategy: () => 20 });
  client.on('error', () => {});
  const rl = new DistributedRateLimiter(client, { timeoutMs: 1000, breakerCooldownMs: 100, denyCacheMaxMs: 0, logger: quiet, ...options });
  return { rl, client };
}

async function until(what, f, ms = 5000) {
  const t0 = Date.now();
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

for (const module of [true, false]) {
  const path_ = module ? 'redis' : 'lua';
  test(`3: a policy configured here survives FLUSHALL and a restart without persistence (${module ? 'module' : 'Lua'})`, async () => {
    const server = await new Server({ module }).start();
    const { rl, client } = limiter(server.port);
    try {
      await rl.configureRateLimit('k', { limit: 2, windowMs: 60000 });
      assert.equal(await rl.isAllowed('k'), true);
      server.cli('FLUSHALL');
      // No error reaches the app: the policy is stored again and the check retried.
      assert.deepEqual([await rl.isAllowed('k'), await rl.isAllowed('k'), await rl.isAllowed('k')], [true, true, false]);
      assert.equal(rl.stats().reconfigured, 1);
      await server.restart();
      const v = await until('Redis back', async () => {
        const d = await rl.throttle('k');
        return d.path === path_ ? d : null;
      });
      assert.equal(v.allowed, true);
      assert.equal((await rl.info('k')).source, 'stored');
      assert.equal(rl.stats().reconfigured, 2);
      // An operator's stored policy still wins over the one this limiter remembers.
      server.cli('DEL', 'rl:k');
      const { rl: operator, client: c2 } = limiter(server.port);
      await operator.configureRateLimit('k', { limit: 1, windowMs: 60000 });
      assert.deepEqual([await rl.isAllowed('k'), await rl.isAllowed('k')], [true, false]);
      c2.disconnect();
    } finally {
      client.disconnect();
      await server.stop();
    }
  });
}

test('5: the Lua fallback never touches a key it did not create', async () => {
  const server = await new Server({ module: false }).start();
  const { rl, client } = limiter(server.port, { prefix: '' }); // no namespace: ids can name application keys
  try {
    server.cli('HSET', 'user:42', 'name', 'alice');
    server.cli('SET', 'session:1', 'x');
    for (const call of [() => rl.isAllowed('user:42', { limit: 5, windowMs: 1000 }), () => rl.reset('user:42'), () => rl.configureRateLimit('user:42', { limit: 5, windowMs: 1000 }), () => rl.info('user:42'), () => rl.peek('session:1', { limit: 1, windowMs: 1 })]) {
      await assert.rejects(call(), { name: 'ForeignKey', message: /key is not a rate limit of this client/ });
    }
    assert.deepEqual(await client.hgetall('user:42'), { name: 'alice' }, 'the hash is unchanged');
    assert.equal(await client.pttl('user:42'), -1, 'and has no TTL');
    assert.equal(await client.get('session:1'), 'x');
    // With the default prefix, the same id is another key.
    const { rl: safe, client: c2 } = limiter(server.port);
    assert.equal(await safe.isAllowed('user:42', { limit: 5, windowMs: 1000 }), true);
    assert.equal(await client.exists('rl:user:42'), 1);
    c2.disconnect();
  } finally {
    client.disconnect();
    await server.stop();
  }
});

test('6: a key configured on the Lua path keeps working when the module appears, and back', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rl-node-migrate-'));
  const plain = await new Server({ module: false, dir }).start();
  const { rl, client } = limiter(plain.port);
  const withModule = new Server({ module: true, dir, port: plain.port });
  try {
    await rl.configureRateLimit('k', { limit: 3, windowMs: 60000, idleMs: 3_600_000 });
    assert.equal((await rl.throttle('k')).path, 'lua');
    plain.cli('SAVE'); // the Lua hash is on disk; the server comes back with the module
    await plain.kill();
    await withModule.start();
    // A second limiter that never configured it: the key itself carries the policy over.
    const { rl: other, client: c2 } = limiter(withModule.port);
    const got = [];
    for (let i = 0; i < 4; i++) got.push(await other.throttle('k'));
    assert.deepEqual(got.map((v) => [v.path, v.allowed]), [['redis', true], ['redis', true], ['redis', true], ['redis', false]]);
    const info = await other.info('k');
    assert.deepEqual([info.source, info.limit, info.windowMs, info.idleMs], ['stored', 3, 60000, 3_600_000]);
    c2.disconnect();
    // The module goes away (its keys cannot load without it): the Lua path stores the policy again.
    await until('module path', async () => (await rl.throttle('k')).path === 'redis');
    await withModule.kill();
    fs.rmSync(path.join(dir, 'dump.rdb'), { force: true });
    await plain.start();
    const back = await until('Lua path', async () => {
      const v = await rl.throttle('k');
      return v.path === 'lua' ? v : null;
    });
    assert.equal(back.limit, 3);
    assert.ok(rl.stats().reconfigured >= 1);
  } finally {
    client.disconnect();
    await plain.stop();
    await withModule.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('9: the local limiter keeps its state across outages (5 per 10 min, two outages: 5 in all)', async () => {
  const server = await new Server().start();
  const { rl, client } = limiter(server.port, { timeoutMs: 50 });
  try {
    await rl.configureRateLimit('k', { limit: 5, windowMs: 600_000 });
    let local = 0;
    for (let outage = 0; outage < 2; outage++) {
      server.signal('SIGSTOP'); // Redis keeps its data: only the local limiter's memory is tested
      for (let i = 0; i < 10; i++) {
        const v = await rl.throttle('k');
        if (v.path === 'local' && v.allowed) local++;
        await sleep(5);
      }
      server.signal('SIGCONT');
      await until('recovery', async () => (await rl.peek('k')).path === 'redis');
    }
    assert.equal(local, 5);
  } finally {
    client.disconnect();
    await server.stop();
  }
});

for (const module of [true, false]) {
  test(`13: SLIDING and sets of limits through the client (${module ? 'module' : 'Lua'}), with the binding limit`, async () => {
    const server = await new Server({ module }).start();
    const { rl, client } = limiter(server.port, { timeoutMs: 2000 });
    try {
      await rl.configureRateLimit('s', { limit: 3, windowMs: 60000, kind: 'sliding' });
      const s = [];
      for (let i = 0; i < 4; i++) s.push(await rl.throttle('s'));
      assert.deepEqual(s.map((v) => v.allowed), [true, true, true, false]);
      assert.ok(s[3].retryAfterMs > 59000 && s[3].retryAfterMs <= 60000, 'the 4th passes when the 1st leaves the window');
      assert.equal(s[3].headers['RateLimit-Policy'], '"default";q=3;w=60');

      // 2 per second AND 3 per minute (SLIDING): the minute binds on the 4th second.
      await rl.configureRateLimit('set', [{ limit: 2, windowMs: 1000 }, { limit: 3, windowMs: 60000, kind: 'sliding' }]);
      const a = [await rl.throttle('set'), await rl.throttle('set'), await rl.throttle('set')];
      assert.deepEqual(a.map((v) => [v.allowed, v.binding]), [[true, 0], [true, 0], [false, 0]]);
      assert.equal(a[0].headers['RateLimit-Policy'], '"l0";q=2;w=1, "l1";q=3;w=60');
      await sleep(a[2].retryAfterMs);
      const b = await rl.throttle('set');
      assert.deepEqual([b.allowed, b.binding, b.remaining], [true, 0, 0], 'both have none left: the first binds');
      const c = await rl.throttle('set');
      assert.deepEqual([c.allowed, c.binding], [false, 1]);
      assert.match(c.headers.RateLimit, /^"l1";r=0;t=\d+$/);
      // Inline sets, for keys nobody configured.
      const inline = [{ limit: 1, windowMs: 60000, kind: 'sliding' }, { limit: 10, windowMs: 1000 }];
      assert.deepEqual([await rl.isAllowed('i', inline), await rl.isAllowed('i', { cost: 1, limits: inline })], [true, false]);
      assert.equal(rl.stats().errors, 0);
    } finally {
      client.disconnect();
      await server.stop();
    }
  });
}

test('13: SLIDING and sets in the local limiter when Redis is away', async () => {
  const server = await new Server().start();
  const { rl, client } = limiter(server.port, { timeoutMs: 50 });
  try {
    await rl.configureRateLimit('set', [{ limit: 5, windowMs: 1000 }, { limit: 2, windowMs: 60000, kind: 'sliding' }]);
    await server.kill();
    const got = [];
    for (let i = 0; i < 3; i++) got.push(await rl.throttle('set'));
    assert.deepEqual(got.map((v) => [v.path, v.allowed, v.binding]), [['local', true, 1], ['local', true, 1], ['local', false, 1]]);
  } finally {
    client.disconnect();
    await server.stop();
  }
});
