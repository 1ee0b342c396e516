'use strict';
// The Express middleware over real HTTP, and the brief's example as a user runs it.

const test = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('child_process');
const path = require('path');
const express = require('express');
const IoRedis = require('ioredis');
const { DistributedRateLimiter } = require('../src');
const { rateLimit } = require('../src/express');
const { Server } = require('./servers');

function listen(app, host) {
  return new Promise((resolve) => {
    const server = app.listen(0, host, () => resolve(server));
  });
}

async function get(server, host, headers = {}) {
  const { port } = server.address();
  const url = host.includes(':') ? `http://[${host}]:${port}/` : `http://${host}:${port}/`;
  const res = await fetch(url, { headers });
  await res.text();
  return res;
}

test('express middleware: headers on every response, 429 with Retry-After when denied', async () => {
  const redis = await new Server().start();
  const client = new IoRedis({ port: redis.port, protocol: 2 });
  client.on('error', () => {}); // the outage below
  const rl = new DistributedRateLimiter(client, { timeoutMs: 2000, prefix: 'http:', denyCacheMaxMs: 0 });
  const app = express();
  app.get('/', rateLimit(rl, { limit: 3, windowMs: 60000 }), (req, res) => res.send('ok'));
  const byKey = express();
  byKey.get('/', rateLimit(rl, { key: (req) => `api:${req.get('x-api-key')}`, limit: 3, windowMs: 60000, cost: 4 }), (req, res) => res.send('ok'));
  const servers = [];
  try {
    for (const host of ['127.0.0.1', '::1']) {
      const server = await listen(app, host);
      servers.push(server);
      const statuses = [];
      for (let i = 0; i < 4; i++) {
        const res = await get(server, host);
        statuses.push(res.status);
        assert.equal(res.headers.get('ratelimit-policy'), '"default";q=3;w=60');
        assert.equal(res.headers.get('ratelimit'), `"default";r=${Math.max(2 - i, 0)};t=${i < 3 ? 20 * (i + 1) : 60}`);
        assert.equal(res.headers.get('retry-after'), i < 3 ? null : '20');
      }
      assert.deepEqual(statuses, [200, 200, 200, 429]);
    }
    // IPv4 keyed by address, IPv6 by its /64.
    assert.equal(await client.exists('http:GET /:ip:127.0.0.1'), 1);
    assert.equal(await client.exists('http:GET /:ip:::/64'), 1);

    // A user-supplied key; a request heavier than the bucket gets 429 without Retry-After.
    const server = await listen(byKey, '127.0.0.1');
    servers.push(server);
    const res = await get(server, '127.0.0.1', { 'x-api-key': 'abc' });
    assert.equal(res.status, 429);
    assert.equal(res.headers.get('retry-after'), null);
    assert.equal(res.headers.get('ratelimit'), '"default";r=3;t=0');
    assert.equal(await client.exists('http:GET /:api:abc'), 0, 'a denied request writes nothing');

    // Redis gone: the local limiter answers, with the same headers, and nothing hangs.
    const local = await listen(express().get('/', rateLimit(new DistributedRateLimiter(client, { timeoutMs: 50 }), { limit: 1, windowMs: 60000 }), (req, res) => res.send('ok')), '127.0.0.1');
    servers.push(local);
    await redis.kill();
    const during = [];
    for (let i = 0; i < 3; i++) during.push(await get(local, '127.0.0.1'));
    assert.deepEqual(during.map((r) => r.status), [200, 429, 429]);
    const retry = Number(during[1].headers.get('retry-after'));
    assert.ok(retry > 0 && retry <= 60, `Retry-After ${retry}`);
    assert.equal(during[0].headers.get('ratelimit-policy'), '"default";q=1;w=60');
  } finally {
    servers.forEach((s) => s.close());
    client.disconnect();
    await redis.stop();
  }
});

function runExample(port) {
  return new Promise((resolve, reject) => {
    execFile('node', [path.join(__dirname, '..', 'examples', 'brief.js')], { env: { ...process.env, REDIS_URL: `redis://127.0.0.1:${port}` }, timeout: 20000 }, (err, stdout) =>
      err ? reject(err) : resolve(stdout),
    );
  });
}

for (const module of [true, false]) {
  test(`the brief's example prints ten true and five false (${module ? 'module' : 'Lua'})`, async () => {
    const redis = await new Server({ module }).start();
    try {
      const want = Array.from({ length: 15 }, (_, i) => `Request ${i + 1} from user123: ${i < 10}`);
      assert.deepEqual((await runExample(redis.port)).trim().split('\n'), want);
      assert.deepEqual((await runExample(redis.port)).trim().split('\n'), want, 'and again, at once');
    } finally {
      await redis.stop();
    }
  });
}
