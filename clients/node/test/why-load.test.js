'use strict';
// Issue 18, "Why" 4, 8 and 14: overload is not an outage, every refusal to write takes the
// failure policy, floods are answered from the deny cache; and waitUntilAllowed.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const IoRedis = require('ioredis');
const { createClient } = require('redis');
const { DistributedRateLimiter } = require('../src');
const { Server, sleep } = require('./servers');

const quiet = { warn() {}, error() {} };

/** Calls of one command the server has executed (INFO commandstats). */
function calls(server, command) {
  const m = new RegExp(`cmdstat_${command.toLowerCase()}:calls=(\\d+)`).exec(server.cli('INFO', 'commandstats'));
  return m ? Number(m[1]) : 0;
}

const CONNECTIONS = {
  ioredis: (port) => new IoRedis({ port }),
  'node-redis': async (port) => {
    const c = createClient({ socket: { port, host: '127.0.0.1' } });
    c.on('error', () => {});
    await c.connect();
    return c;
  },
};

for (const [lib, connect] of Object.entries(CONNECTIONS)) {
  for (const module of [true, false]) {
    test(`4: 500 concurrent checks, limit 10, healthy Redis: exactly 10 admitted (${lib}, ${module ? 'module' : 'Lua'}, default timeout)`, async () => {
      const server = await new Server({ module }).start();
      const client = await connect(server.port);
      const rl = new DistributedRateLimiter(client, { logger: quiet }); // timeoutMs 50
      try {
        await rl.ready();
        await rl.configureRateLimit('hot', { limit: 10, windowMs: 60000 });
        const got = await Promise.all(Array.from({ length: 500 }, () => rl.isAllowed('hot')));
        assert.equal(got.filter(Boolean).length, 10, JSON.stringify(rl.stats()));
        // Calls that time out while Redis answers others are an overload: no breaker failure,
        // and never the local limiter (which would admit 10 more). Only calls that saw no
        // answer at all within their timeout (the process descheduled on a busy machine)
        // count as failures: from here they cannot be told from a frozen server.
        assert.equal(rl.stats().state, 'closed', `the breaker is closed: ${JSON.stringify(rl.stats())}`);
      } finally {
        await (client.disconnect ? client.disconnect() : client.destroy());
        await server.stop();
      }
    });
  }
}

test('a fresh limiter on a server without the module: 50 first checks at once all move to the script', async () => {
  const server = await new Server({ module: false }).start();
  const rl = new DistributedRateLimiter(`redis://127.0.0.1:${server.port}`, { timeoutMs: 10_000, logger: quiet });
  try {
    // Each of them was sent as RL.THROTTLE before the first "unknown command" came back: each
    // must switch to the script, none may throw it (it did when the switch was read from the
    // limiter's flag, already set by the first one, instead of from the call's own path).
    const got = await Promise.all(Array.from({ length: 50 }, () => rl.throttle('first', { limit: 10, windowMs: 60000 })));
    assert.equal(got.filter((d) => d.allowed).length, 10);
    assert.ok(got.every((d) => d.path === 'lua'));
  } finally {
    await rl.close();
    await server.stop();
  }
});

/** Puts a server into a state where it refuses writes with `code`. */
const REFUSALS = {
  MISCONF: async (server) => {
    // A failed background save (the RDB file cannot be renamed into place) stops writes.
    fs.mkdirSync(path.join(server.dir, 'dump.rdb'));
    server.cli('CONFIG', 'SET', 'stop-writes-on-bgsave-error', 'yes');
    server.cli('CONFIG', 'SET', 'save', '3600 1'); // MISCONF needs save points
    server.cli('BGSAVE');
    for (let i = 0; i < 200 && !/rdb_last_bgsave_status:err/.test(server.cli('INFO', 'persistence')); i++) await sleep(25);
  },
  NOREPLICAS: async (server) => server.cli('CONFIG', 'SET', 'min-replicas-to-write', '1'),
  READONLY: async (server) => server.cli('REPLICAOF', '127.0.0.1', '1'),
  OOM: async (server) => server.cli('CONFIG', 'SET', 'maxmemory', '1'),
};

for (const module of [true, false]) {
  for (const [code, refuse] of Object.entries(REFUSALS)) {
    test(`8: ${code} takes the failure policy, like a timeout (${module ? 'module' : 'Lua'})`, async () => {
      const server = await new Server({ module }).start();
      const client = new IoRedis({ port: server.port });
      const rl = new DistributedRateLimiter(client, { timeoutMs: 2000, logger: quiet, denyCacheMaxMs: 0 });
      try {
        await rl.configureRateLimit('k', { limit: 2, windowMs: 60000 });
        assert.equal(await rl.isAllowed('k'), true);
        await refuse(server);
        const got = [];
        for (let i = 0; i < 3; i++) got.push(await rl.throttle('k'));
        assert.deepEqual(got.map((v) => [v.path, v.allowed]), [['local', true], ['local', true], ['local', false]], `${code}: ${rl.stats().lastError}`);
        assert.match(rl.stats().lastError, new RegExp(code));
        assert.equal(rl.stats().state, 'open', 'refusals count toward the breaker');
      } finally {
        client.disconnect();
        await server.stop();
      }
    });
  }
}

test('14: a flood on a denied key is answered from memory until retry_after_ms (at most denyCacheMaxMs)', async () => {
  const server = await new Server().start();
  const client = new IoRedis({ port: server.port });
  const rl = new DistributedRateLimiter(client, { timeoutMs: 2000, denyCacheMaxMs: 1000 });
  try {
    await rl.configureRateLimit('spam', { limit: 1, windowMs: 60000 });
    assert.equal(await rl.isAllowed('spam'), true);
    const t0 = performance.now();
    const first = await rl.throttle('spam');
    const before = calls(server, 'rl.throttle');
    assert.deepEqual([first.allowed, first.path], [false, 'redis']);
    let last;
    for (let i = 0; i < 200; i++) last = await rl.throttle('spam');
    assert.equal(last.path, 'cached');
    assert.equal(await rl.isAllowed('spam'), false);
    const elapsed = performance.now() - t0;
    assert.ok(last.retryAfterMs <= first.retryAfterMs && last.retryAfterMs >= first.retryAfterMs - elapsed - 1, 're-aged to now');
    assert.equal(last.headers['Retry-After'], String(Math.ceil(last.retryAfterMs / 1000)));
    if (elapsed < 1000) assert.equal(calls(server, 'rl.throttle') - before, 0, 'no round trip while the denial holds');
    assert.equal(rl.stats().cached, 201);
    // A lighter request is not answered from a heavier one's denial; another policy neither.
    await rl.configureRateLimit('heavy', { limit: 5, windowMs: 60000 });
    assert.equal((await rl.throttle('heavy', { cost: 6 })).path, 'redis');
    assert.equal((await rl.throttle('heavy', { cost: 4 })).allowed, true);
    // This limiter's own reset forgets the denial at once; an admin's reset is seen within denyCacheMaxMs.
    await rl.reset('spam');
    assert.deepEqual([(await rl.throttle('spam')).allowed, (await rl.throttle('spam')).path], [true, 'redis']);
    assert.equal((await rl.throttle('spam')).path, 'cached');
    server.cli('RL.RESET', 'rl:spam');
    assert.equal((await rl.throttle('spam')).path, 'cached', 'not seen yet');
    await sleep(1100); // timers may fire a fraction of a ms early
    assert.equal((await rl.throttle('spam')).allowed, true, 'seen within denyCacheMaxMs');
    // Configuring forgets it too.
    assert.equal((await rl.throttle('spam')).path, 'redis');
    assert.equal((await rl.throttle('spam')).path, 'cached');
    await rl.configureRateLimit('spam', { limit: 100, windowMs: 60000 });
    assert.equal((await rl.throttle('spam')).path, 'redis');
  } finally {
    client.disconnect();
    await server.stop();
  }
});

test('waitUntilAllowed sleeps the exact retry time, never past its deadline', async () => {
  const server = await new Server().start();
  const client = new IoRedis({ port: server.port });
  const rl = new DistributedRateLimiter(client, { timeoutMs: 2000 });
  try {
    await rl.configureRateLimit('w', { limit: 1, windowMs: 300 });
    assert.equal(await rl.isAllowed('w'), true);
    let t0 = performance.now();
    const ok = await rl.waitUntilAllowed('w', { timeoutMs: 2000 });
    let ms = performance.now() - t0;
    assert.equal(ok.allowed, true);
    assert.ok(ms >= 250 && ms < 300 + 250, `waited ${ms.toFixed(0)} ms for a 300 ms slot`);
    t0 = performance.now();
    const no = await rl.waitUntilAllowed('w', { timeoutMs: 100 });
    ms = performance.now() - t0;
    assert.equal(no.allowed, false);
    assert.ok(ms < 100, 'a retry past the deadline is not slept on');
    const never = await rl.waitUntilAllowed('w', { cost: 2, timeoutMs: 5000 });
    assert.deepEqual([never.allowed, never.retryAfterMs], [false, -1]);
  } finally {
    client.disconnect();
    await server.stop();
  }
});
