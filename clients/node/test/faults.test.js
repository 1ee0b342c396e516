'use strict';
// Faults, for each onError: the server killed (SIGKILL), frozen (SIGSTOP: the timeout path)
// and brought back. Asserts: no check waits longer than the timeout plus a margin; 'deny'
// admits nothing, 'allow' everything, 'local' at most its share; nothing waits in the
// client library's offline queue; one 'degraded' and one 'recovered' event per outage;
// checks return to Redis within the breaker's cool-down (plus the client's reconnect delay)
// once the server is back.

const test = require('node:test');
const assert = require('node:assert/strict');
const IoRedis = require('ioredis');
const { createClient } = require('redis');
const { DistributedRateLimiter } = require('../src');
const { Server, sleep, NO_MODULE, SERVED_PATH } = require('./servers');

const TIMEOUT_MS = 50;
const COOLDOWN_MS = 300;
/** Scheduling slack on a shared, loaded machine; the point is "bounded", not "fast". */
const MARGIN_MS = 250;
const CHECKS = 30;
const POLICY = { limit: 10, windowMs: 60000 }; // burst 10; the local share 0.5 gives 5
const SHARE = 0.5;

// The user's own clients, with their libraries' defaults (offline queue on), reconnecting
// every 50 ms so that "back within the cool-down" measures the limiter, not the backoff.
const MAKERS = {
  ioredis: async (port) => {
    const c = new IoRedis({ port, protocol: 2, retryStrategy: () => 50, lazyConnect: true });
    c.on('error', () => {});
    await c.connect();
    return { client: c, queued: () => c.offlineQueue.length, close: () => c.disconnect() };
  },
  'node-redis': async (port) => {
    const c = createClient({ socket: { port, host: '127.0.0.1', reconnectStrategy: () => 50 }, RESP: 3 });
    c.on('error', () => {});
    await c.connect();
    return { client: c, queued: () => 0, close: () => c.destroy() };
  },
};

/** CHECKS checks during an outage: how many passed, by which path, and the slowest one. */
async function during(rl, key) {
  let admitted = 0;
  let slowest = 0;
  const paths = new Set();
  for (let i = 0; i < CHECKS; i++) {
    const t0 = performance.now();
    const v = await rl.throttle(key, POLICY);
    slowest = Math.max(slowest, performance.now() - t0);
    if (v.allowed) admitted++;
    paths.add(v.path);
    await sleep(5);
  }
  return { admitted, slowest, paths: [...paths].sort() };
}

/** Ms until a check is decided by Redis again. */
async function backToRedis(rl, key) {
  const t0 = Date.now();
  while (Date.now() - t0 < 10000) {
    if ((await rl.throttle(key, POLICY)).path === SERVED_PATH) return Date.now() - t0;
    await sleep(10);
  }
  throw new Error('checks never returned to Redis');
}

/** stats() keys are camelCase; paths are the same words in both clients. */
const STAT = { failed_open: 'failedOpen', failed_closed: 'failedClosed', local: 'local' };

const EXPECT = {
  allow: { admitted: CHECKS, path: 'failed_open' },
  deny: { admitted: 0, path: 'failed_closed' },
  local: { admitted: 5, path: 'local' }, // floor(burst 10 * share 0.5); the local rate is 1 per 12 s
};

for (const [lib, make] of Object.entries(MAKERS)) {
  for (const onError of ['allow', 'deny', 'local']) {
    test(`${lib}, onError '${onError}': SIGKILL, restart, SIGSTOP, SIGCONT`, async () => {
      const server = await new Server().start();
      const { client, queued, close } = await make(server.port);
      const events = [];
      const rl = new DistributedRateLimiter(client, {
        onError, timeoutMs: TIMEOUT_MS, breakerFailures: 3, breakerCooldownMs: COOLDOWN_MS, localShare: SHARE,
      });
      rl.on('degraded', () => events.push('degraded'));
      rl.on('recovered', () => events.push('recovered'));
      try {
        assert.equal((await rl.throttle('k', POLICY)).path, SERVED_PATH);

        for (const fault of ['SIGKILL', 'SIGSTOP']) {
          if (fault === 'SIGKILL') await server.kill();
          else server.signal('SIGSTOP');
          const got = await during(rl, `${fault}:k`);
          assert.ok(got.slowest <= TIMEOUT_MS + MARGIN_MS, `${fault}: a check waited ${got.slowest.toFixed(0)} ms`);
          assert.deepEqual(got.paths, [EXPECT[onError].path], fault);
          assert.equal(got.admitted, EXPECT[onError].admitted, `${fault}: admitted`);
          // Only a check already on the wire when the connection dropped may wait there (ioredis
          // resends those after reconnecting, per its maxRetriesPerRequest); none of the later ones.
          assert.ok(queued() <= 1, `${queued()} commands in the offline queue`);
          assert.equal(rl.stats().state, 'open');

          if (fault === 'SIGKILL') await server.start(); // same port, empty
          else server.signal('SIGCONT');
          const ms = await backToRedis(rl, `${fault}:k`);
          assert.ok(ms <= COOLDOWN_MS + 50 + MARGIN_MS * 2, `${fault}: back to Redis after ${ms} ms`);
        }
        assert.deepEqual(events, ['degraded', 'recovered', 'degraded', 'recovered']);
        const s = rl.stats();
        assert.ok(s.errors >= 6, `errors ${s.errors}`);
        assert.ok(s.timeouts >= 1, 'the SIGSTOP path is the timeout');
        // The outages' checks, and those made while waiting for Redis to come back.
        assert.ok(s[STAT[EXPECT[onError].path]] >= CHECKS * 2);
      } finally {
        await close();
        await server.stop();
      }
    });
  }
}

test("'local' without a known policy fails open, counted as such", async () => {
  const server = await new Server().start();
  const { client, close } = await MAKERS.ioredis(server.port);
  try {
    const rl = new DistributedRateLimiter(client, { timeoutMs: TIMEOUT_MS });
    await server.kill();
    const v = await rl.throttle('unknown');
    assert.deepEqual([v.allowed, v.path, rl.stats().failedOpen], [true, 'failed_open', 1]);
  } finally {
    await close();
    await server.stop();
  }
});

test('the module is looked for again after a reconnect: Lua -> module -> Lua across restarts', { skip: NO_MODULE && 'needs the module (RL_NO_MODULE=1)' }, async () => {
  const plain = await new Server({ module: false }).start();
  const { client, close } = await MAKERS.ioredis(plain.port);
  const rl = new DistributedRateLimiter(client, { timeoutMs: TIMEOUT_MS, breakerCooldownMs: COOLDOWN_MS });
  const withModule = new Server({ module: true, port: plain.port });
  try {
    assert.equal((await rl.throttle('k', POLICY)).path, 'lua');
    await plain.kill();
    await withModule.start();
    assert.ok((await backToRedis(rl, 'k')) <= COOLDOWN_MS + 50 + MARGIN_MS * 2);
    assert.equal(rl.stats().backend, 'module');
    await withModule.kill();
    await plain.start();
    const t0 = Date.now();
    let v;
    do v = await rl.throttle('k', POLICY);
    while (v.path !== 'lua' && Date.now() - t0 < 5000);
    assert.equal(v.path, 'lua');
  } finally {
    await close();
    await plain.stop();
    await withModule.stop();
  }
});
