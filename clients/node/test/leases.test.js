'use strict';
// Issue 20 through the client, on the module, the Lua script and the local limiter: the
// CONCURRENCY kind, acquire/release/renew, all-or-nothing with rate limits, withLease, the
// Express lease option, and leases that heal when their holder dies.

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('child_process');
const path = require('path');
const express = require('express');
const { DistributedRateLimiter, CommandError, Denied } = require('../src');
const { rateLimit } = require('../src/express');
const { onEach, open, START_MS, BACKENDS, QUIET } = require('./backends');
const { freePort, sleep } = require('./servers');

const T = (ms) => START_MS + ms;
const TWO = { kind: 'concurrency', limit: 2, windowMs: 30000 };

test('acquire takes a lease until released, renewed or expired; a denial waits for the earliest expiry', async (t) => {
  await onEach(t, ['RL.ACQUIRE', 'RL.RELEASE', 'RL.RENEW'], async (b) => {
    const { rl } = b;
    await b.configure('c', TWO);
    const a = await rl.acquire('c');
    assert.deepEqual([a.allowed, a.remaining, a.path], [true, 1, b.path]);
    if (b.name === 'local') assert.match(a.lease, /^L\d+$/);
    else assert.equal(a.lease, START_MS * 1000);
    b.setClock(T(1000));
    const second = await rl.acquire('c');
    assert.equal(second.allowed, true);
    b.setClock(T(2000));
    const third = await rl.acquire('c');
    assert.deepEqual([third.allowed, third.lease, third.remaining, third.retryAfterMs, third.resetAfterMs], [false, null, 0, 28000, 29000]);
    assert.equal(third.headers['Retry-After'], '28');
    assert.equal(await rl.release('c', a.lease), true);
    assert.equal(await rl.release('c', a.lease), false); // already released: frees nothing
    const fourth = await rl.acquire('c');
    assert.equal(fourth.allowed, true);
    b.setClock(T(30000));
    assert.equal(await rl.renew('c', second.lease, 10000), true); // expires at 40000 now
    b.setClock(T(31500));
    assert.equal((await rl.acquire('c')).allowed, false); // second (renewed) and fourth are held
    b.setClock(T(40000));
    assert.equal(await rl.renew('c', second.lease, 10000), false); // expired: not held
    assert.equal(await rl.release('c', second.lease), false);
    assert.equal((await rl.acquire('c')).allowed, true);
    assert.equal(await rl.release('c', null), false); // nothing taken: nothing sent
    if (b.name !== 'local') assert.equal((await rl.info('c')).leases, 1);
  });
});

test('an acquire counts on every rate limit of the key, or on none', async (t) => {
  await onEach(t, ['RL.ACQUIRE', 'RL.RELEASE'], async (b) => {
    const { rl } = b;
    await b.configure('s', [{ limit: 3, windowMs: 60000 }, { kind: 'concurrency', limit: 1, windowMs: 30000 }]);
    const a = await rl.acquire('s');
    assert.deepEqual([a.allowed, a.binding], [true, 1]);
    const denied = await rl.acquire('s'); // the lease is missing: the rate limit counts nothing
    assert.deepEqual([denied.allowed, denied.binding, denied.retryAfterMs], [false, 1, 30000]);
    await rl.release('s', a.lease);
    assert.equal((await rl.acquire('s')).allowed, true);
    const peek = await rl.peek('s'); // peek answers for an acquire
    assert.equal(peek.allowed, false);
    await assert.rejects(rl.throttle('s'), { name: 'CommandError', message: /this key has a CONCURRENCY limit: take a lease with RL.ACQUIRE/ });
    await assert.rejects(rl.isAllowed('s'), CommandError);
    if (!b.missing('RL.RESERVE')) await assert.rejects(rl.reserve('s', 1), /CONCURRENCY limit/);
  });
});

test('withLease releases after the work, also when it throws; a denial calls nothing', async (t) => {
  await onEach(t, ['RL.ACQUIRE', 'RL.RELEASE'], async (b) => {
    const { rl } = b;
    await b.configure('w', { kind: 'concurrency', limit: 1, windowMs: 30000 });
    assert.equal(await rl.withLease('w', async (d) => `ran with ${typeof d.lease}`), `ran with ${b.name === 'local' ? 'string' : 'number'}`);
    await assert.rejects(rl.withLease('w', () => {
      throw new Error('boom');
    }), /boom/);
    let inner;
    const nested = await rl.withLease('w', async () => {
      inner = await rl.withLease('w', () => assert.fail('a denied lease runs nothing'));
      await assert.rejects(rl.withLease('w', () => 1, { rejectOnDeny: true }), (err) => err instanceof Denied && err.decision.allowed === false);
      return 'outer';
    });
    assert.equal(nested, 'outer');
    assert.deepEqual([inner.allowed, inner.lease], [false, null]);
    assert.equal((await rl.acquire('w')).allowed, true); // every lease above was given back
  });
});

test('withLease: a release that cannot reach Redis rejects after work that succeeded, and is logged after work that threw', async () => {
  const warnings = [];
  const b = await open('lua', { frozen: false, timeoutMs: 200, logger: { warn: (m) => warnings.push(m), error() {} } });
  try {
    const { rl } = b;
    await rl.configureRateLimit('f', { kind: 'concurrency', limit: 5, windowMs: 60000 });
    const send = rl.transport.send.bind(rl.transport);
    let releases = 0;
    rl.transport.send = (key, args) => {
      if (args.includes('release')) {
        releases += 1;
        return Promise.reject(new Error('connection lost'));
      }
      return send(key, args);
    };
    await assert.rejects(rl.withLease('f', () => 'worked'), { name: 'Unavailable' });
    assert.equal(releases, 2); // tried, retried, reported
    await assert.rejects(rl.withLease('f', () => {
      throw new Error('the work failed');
    }), /the work failed/);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /was not released .*ends by itself after its windowMs/);
  } finally {
    await b.stop();
  }
});

test('50 concurrent workers under a limit of 2 never hold more than 2 leases', async (t) => {
  const servers = BACKENDS.filter((n) => n !== 'local');
  await onEach(t, ['RL.ACQUIRE', 'RL.RELEASE'], async (b) => {
    await b.rl.configureRateLimit('pool', { kind: 'concurrency', limit: 2, windowMs: 60000 });
    let inside = 0;
    let most = 0;
    let ran = 0;
    const work = async () => {
      for (;;) {
        const out = await b.rl.withLease('pool', async () => {
          inside += 1;
          most = Math.max(most, inside);
          await sleep(2);
          inside -= 1;
          ran += 1;
          return 'done';
        });
        if (out === 'done') return;
        await sleep(1);
      }
    };
    await Promise.all(Array.from({ length: 50 }, work));
    assert.equal(ran, 50);
    assert.equal(most, 2);
    assert.equal((await b.rl.info('pool')).leases, 0);
  }, servers, { frozen: false });
});

test('a worker killed while holding leases gives them back once they expire', async (t) => {
  const servers = BACKENDS.filter((n) => n !== 'local');
  await onEach(t, ['RL.ACQUIRE'], async (b) => {
    const leaseMs = 1500;
    await b.rl.configureRateLimit('job', { kind: 'concurrency', limit: 2, windowMs: leaseMs });
    const worker = spawn(process.execPath, ['-e', `
      const { DistributedRateLimiter } = require(${JSON.stringify(path.join(__dirname, '..', 'src'))});
      const rl = new DistributedRateLimiter('redis://127.0.0.1:${b.server.port}', { timeoutMs: 5000 });
      (async () => {
        for (let i = 0; i < 2; i++) if (!(await rl.acquire('job')).allowed) process.exit(3);
        console.log('holding');
        setInterval(() => {}, 1000);
      })();`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((resolve, reject) => {
      worker.stdout.once('data', resolve);
      worker.once('exit', (code) => reject(new Error(`worker exited ${code}`)));
    });
    const killedAt = Date.now();
    worker.kill('SIGKILL');
    const denied = await b.rl.acquire('job');
    assert.equal(denied.allowed, false);
    assert.ok(denied.retryAfterMs > 0 && denied.retryAfterMs <= leaseMs);
    await sleep(denied.retryAfterMs);
    let d = await b.rl.acquire('job');
    while (!d.allowed && Date.now() - killedAt < leaseMs + 5000) {
      await sleep(Math.max(d.retryAfterMs, 1));
      d = await b.rl.acquire('job');
    }
    assert.equal(d.allowed, true, "the dead worker's slots came back");
    assert.ok(Date.now() - killedAt >= denied.retryAfterMs - 5);
  }, servers, { frozen: false });
});

test("failure policy: 'local' takes local leases and releases them locally; 'allow' takes none", async () => {
  const port = await freePort(); // nothing listens
  const local = new DistributedRateLimiter(`redis://127.0.0.1:${port}`, { onError: 'local', timeoutMs: 50, connectTimeoutMs: 50, logger: QUIET });
  const pol = { limits: [TWO] };
  const a = await local.acquire('x', pol);
  const b = await local.acquire('x', pol);
  assert.deepEqual([a.path, (await local.acquire('x', pol)).allowed], ['local', false]);
  assert.equal(await local.release('x', a.lease), true);
  assert.equal(await local.renew('x', b.lease, 1000), true);
  assert.equal((await local.acquire('x', pol)).allowed, true);
  const allow = new DistributedRateLimiter(`redis://127.0.0.1:${port}`, { onError: 'allow', timeoutMs: 50, connectTimeoutMs: 50, logger: QUIET });
  const f = await allow.acquire('x', pol);
  assert.deepEqual([f.allowed, f.lease, f.path], [true, null, 'failed_open']);
  assert.equal(await allow.withLease('x', (d) => d.path, pol), 'failed_open');
  await Promise.all([local.close(), allow.close()]);
});

test('express: a lease held for the length of each request, released on finish and on close', async (t) => {
  await onEach(t, ['RL.ACQUIRE', 'RL.RELEASE'], async (b) => {
    const { rl } = b;
    await b.configure('slow:tenant', { kind: 'concurrency', limit: 1, windowMs: 60000 });
    const gates = [];
    const app = express();
    app.get('/slow', rateLimit(rl, { name: 'slow', key: () => 'tenant', lease: true }), (req, res) => {
      gates.push(() => res.end('done'));
    });
    app.get('/fast', rateLimit(rl, { name: 'slow', key: () => 'tenant', lease: true }), (req, res) => res.end('ok'));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const url = `http://127.0.0.1:${server.address().port}`;
    try {
      const first = fetch(`${url}/slow`);
      while (gates.length === 0) await sleep(5);
      const busy = await fetch(`${url}/fast`);
      assert.equal(busy.status, 429); // the slow request holds the one lease
      gates.shift()();
      assert.equal(await (await first).text(), 'done');
      await eventually(async () => (await fetch(`${url}/fast`)).status === 200);
      // A client that goes away mid-request: the lease comes back on 'close'.
      const aborted = new AbortController();
      fetch(`${url}/slow`, { signal: aborted.signal }).catch(() => {});
      while (gates.length === 0) await sleep(5);
      aborted.abort();
      await eventually(async () => (await fetch(`${url}/fast`)).status === 200);
      gates.shift()();
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});

/** Polls `check` (async, true when done) for up to 5 s. */
async function eventually(check) {
  const until = Date.now() + 5000;
  while (Date.now() < until) {
    if (await check()) return;
    await sleep(10);
  }
  assert.fail('condition not reached within 5 s');
}
