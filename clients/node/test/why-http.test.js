'use strict';
// Issue 18, "Why" 2, 7 and 10 over real HTTP (Express): routes in their own namespaces, no
// error detail in any response, headers that tell the truth, one IP key in both clients.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const express = require('express');
const IoRedis = require('ioredis');
const { DistributedRateLimiter, ipKey } = require('../src');
const { rateLimit } = require('../src/express');
const { Server, ROOT } = require('./servers');

function recorder() {
  const lines = [];
  return { lines, warn: (m) => lines.push(m), error: (m) => lines.push(m) };
}

async function serve(app, f) {
  const server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  try {
    return await f(async (method, url, headers = {}) => {
      const res = await fetch(`http://127.0.0.1:${server.address().port}${url}`, { method, headers });
      return { status: res.status, headers: res.headers, body: await res.text() };
    });
  } finally {
    server.close();
  }
}

test('2: six POST /login at 5/min do not make GET /api (100/min) answer 429', async () => {
  const redis = await new Server().start();
  const client = new IoRedis({ port: redis.port });
  const rl = new DistributedRateLimiter(client, { timeoutMs: 2000 });
  const app = express();
  app.post('/login', rateLimit(rl, { limit: 5, windowMs: 60000 }), (req, res) => res.send('ok'));
  app.get('/api', rateLimit(rl, { limit: 100, windowMs: 60000 }), (req, res) => res.send(req.rateLimit.key));
  const named = express.Router();
  named.get('/a', rateLimit(rl, { name: 'shared', limit: 1, windowMs: 60000 }), (req, res) => res.send('a'));
  named.get('/b', rateLimit(rl, { name: 'shared', limit: 1, windowMs: 60000 }), (req, res) => res.send('b'));
  app.use('/named', named);
  try {
    await serve(app, async (req) => {
      const login = [];
      for (let i = 0; i < 6; i++) login.push((await req('POST', '/login')).status);
      assert.deepEqual(login, [200, 200, 200, 200, 200, 429]);
      const api = await req('GET', '/api');
      assert.equal(api.status, 200);
      assert.equal(api.body, 'GET /api:ip:127.0.0.1', 'the namespace is the method and the route');
      assert.equal(redis.cli('EXISTS', 'rl:POST /login:ip:127.0.0.1'), '1');
      // The same explicit name: one bucket for both routes.
      assert.deepEqual([(await req('GET', '/named/a')).status, (await req('GET', '/named/b')).status], [200, 429]);
    });
  } finally {
    client.disconnect();
    await redis.stop();
  }
});

for (const env of ['development', 'production']) {
  test(`7: a refused check and a missing key never become a 500 or show error detail (NODE_ENV=${env})`, async () => {
    const saved = process.env.NODE_ENV;
    process.env.NODE_ENV = env;
    const redis = await new Server().start();
    const client = new IoRedis({ port: redis.port });
    const logger = recorder();
    const rl = new DistributedRateLimiter(client, { timeoutMs: 2000, logger, prefix: '' });
    const strict = new DistributedRateLimiter(client, { timeoutMs: 2000, logger, prefix: '', onError: 'deny' });
    const app = express();
    app.set('env', env);
    const byKey = { key: (req) => req.get('x-api-key'), limit: 5, windowMs: 60000, name: 'api' };
    app.get('/open', rateLimit(rl, byKey), (req, res) => res.send('ok'));
    app.get('/strict', rateLimit(strict, byKey), (req, res) => res.send('ok'));
    app.get('/skip', rateLimit(rl, { ...byKey, skip: (req) => req.get('x-internal') === '1' }), (req, res) => res.send(String(req.rateLimit === undefined)));
    const handled = rateLimit(rl, { limit: 1, windowMs: 60000, name: 'h', handler: (req, res) => res.status(503).json({ retryInS: Math.ceil(req.rateLimit.decision.retryAfterMs / 1000) }) });
    app.get('/handled', handled, (req, res) => res.send('ok'));
    try {
      redis.cli('SET', 'api:abc', 'an application string'); // the key the middleware will use
      await serve(app, async (req) => {
        for (const url of ['/open', '/strict']) {
          const wrongType = await req('GET', url, { 'x-api-key': 'abc' });
          const noKey = await req('GET', url);
          for (const r of [wrongType, noKey]) {
            assert.ok(r.status === 200 || r.status === 429, `${url}: status ${r.status}`);
            assert.doesNotMatch(r.body, /Error|WRONGTYPE|ForeignKey|at .*\.js|string/);
          }
          assert.equal(noKey.status, url === '/open' ? 200 : 429, 'the failure policy');
        }
        assert.equal(redis.cli('GET', 'api:abc'), 'an application string');
        assert.equal((await req('GET', '/skip', { 'x-internal': '1' })).body, 'true', 'skipped: not counted, no req.rateLimit');
        assert.equal((await req('GET', '/handled')).status, 200);
        const h = await req('GET', '/handled');
        assert.equal(h.status, 503);
        assert.ok(JSON.parse(h.body).retryInS >= 59);
      });
      assert.ok(logger.lines.some((l) => /the key function returned undefined/.test(l)), 'a missing key is logged');
      assert.ok(logger.lines.some((l) => /key is not a rate limit of this client|WRONGTYPE/.test(l)), 'the refusal is logged');
      assert.equal(new Set(logger.lines).size, logger.lines.length, 'each once');
    } finally {
      process.env.NODE_ENV = saved;
      client.disconnect();
      await redis.stop();
    }
  });
}

test("10: RateLimit-Policy is the enforced policy's, q=<limit>, one item per limit", async () => {
  const redis = await new Server().start();
  const client = new IoRedis({ port: redis.port });
  const rl = new DistributedRateLimiter(client, { timeoutMs: 2000 });
  try {
    // A stored 1/60 s beats the inline 100/1 s: the header says so.
    await rl.configureRateLimit('stored', { limit: 1, windowMs: 60000 });
    const v = await rl.throttle('stored', { limit: 100, windowMs: 1000 });
    assert.equal(v.headers['RateLimit-Policy'], '"default";q=1;w=60');
    // q is the limit, not the burst.
    await rl.configureRateLimit('burst', { limit: 10, windowMs: 60000, burst: 20 });
    assert.equal((await rl.throttle('burst')).headers['RateLimit-Policy'], '"default";q=10;w=60');
    await rl.configureRateLimit('two', [{ limit: 10, windowMs: 1000 }, { limit: 1000, windowMs: 86_400_000, kind: 'sliding' }]);
    assert.equal((await rl.throttle('two')).headers['RateLimit-Policy'], '"l0";q=10;w=1, "l1";q=1000;w=86400');
  } finally {
    client.disconnect();
    await redis.stop();
  }
});

for (const module of [true, false]) {
  test(`10: an operator's stored policy shows in the headers of a limiter that never configured it (${module ? 'module, WITHPOLICY or not' : 'Lua, withpolicy'})`, async () => {
    const redis = await new Server({ module }).start();
    const client = new IoRedis({ port: redis.port });
    const operator = new DistributedRateLimiter(client, { timeoutMs: 2000 });
    const app = new DistributedRateLimiter(client, { timeoutMs: 2000 });
    try {
      await operator.configureRateLimit('abuser', { limit: 1, windowMs: 60000 });
      const v = await app.throttle('abuser', { limit: 100, windowMs: 1000 });
      const withPolicy = !module || app.moduleWithPolicy;
      // Without WITHPOLICY (an older module) the client can only tell the policy it knows.
      assert.equal(v.headers['RateLimit-Policy'], withPolicy ? '"default";q=1;w=60' : '"default";q=100;w=1');
      assert.equal(app.stats().errors, 0);
    } finally {
      client.disconnect();
      await redis.stop();
    }
  });
}

test('10: one IP key in both clients (clients/conformance/ip_keys.json)', () => {
  const table = JSON.parse(fs.readFileSync(path.join(ROOT, 'clients', 'conformance', 'ip_keys.json'), 'utf8'));
  assert.ok(table.length >= 10);
  for (const { addr, key, why } of table) assert.equal(ipKey(addr), key, `${addr}: ${why}`);
});
