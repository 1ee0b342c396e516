'use strict';
// Issue 18, "Why" 1, 11 and 12: construction that cannot be misread, the first check within
// its timeout, errors in the caller's words, optional peers, and the package as npm packs it
// (its README snippet run as written, in CommonJS, exiting by itself).

const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync, execFile } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const IoRedis = require('ioredis');
const { DistributedRateLimiter, ConfigurationError, InvalidArgument, Unavailable, RateLimitError } = require('../src');
const { Server, freePort } = require('./servers');

const PKG = path.join(__dirname, '..');
/** Scheduling slack on a shared, loaded machine: "bounded", not "fast". */
const MARGIN_MS = 150;

/** A logger that keeps what it is told. */
function recorder() {
  const lines = [];
  return { lines, warn: (m) => lines.push(m), error: (m) => lines.push(m) };
}

test('1: a URL is used, not ignored; misspelt options are refused, naming the option', async () => {
  const server = await new Server().start();
  // A generous timeout: this is about where calls go, and on a busy machine the first check
  // (WITHPOLICY refused by an older module, then sent again) can outlast the default 50 ms.
  const rl = new DistributedRateLimiter(`redis://127.0.0.1:${server.port}`, { timeoutMs: 5000 });
  try {
    await rl.ready();
    const v = await rl.throttle('u', { limit: 5, windowMs: 60000 });
    assert.equal(v.path, 'redis');
    assert.equal(server.cli('EXISTS', 'rl:u'), '1', 'the key is on the server the URL names, under the default prefix rl:');
    assert.equal(rl.stats().everConnected, true);
  } finally {
    await rl.close();
    await server.stop();
  }
  assert.throws(() => new DistributedRateLimiter({ url: 'redis://127.0.0.1:1', timeout: 200 }), (err) => {
    assert.ok(err instanceof ConfigurationError && err instanceof RateLimitError);
    assert.equal(err.option, 'timeout');
    assert.match(err.message, /unknown option 'timeout' \(did you mean 'timeoutMs'\?\)/);
    return true;
  });
  assert.throws(() => new DistributedRateLimiter('http://example.com'), { name: 'ConfigurationError', option: 'url' });
  assert.throws(() => new DistributedRateLimiter('redis://127.0.0.1:1', { prefix: 'a{b' }), { name: 'ConfigurationError', option: 'prefix' });
  assert.throws(() => new DistributedRateLimiter('redis://127.0.0.1:1', { url: 'redis://127.0.0.1:2' }), { name: 'ConfigurationError', option: 'url' });
});

test('1: nothing listening: ready() rejects with Unavailable at once; one warning, stats say Redis was never reached', async () => {
  const port = await freePort();
  const logger = recorder();
  const rl = new DistributedRateLimiter(`redis://127.0.0.1:${port}`, { logger });
  try {
    const t0 = performance.now();
    await assert.rejects(rl.ready(), (err) => err instanceof Unavailable && /ECONNREFUSED|did not answer/.test(err.message) && err.cause !== undefined);
    assert.ok(performance.now() - t0 < 1000, 'the first failed attempt rejects, not the connect timeout');
    for (let i = 0; i < 5; i++) await rl.isAllowed('u', { limit: 1, windowMs: 60000 });
    assert.equal(logger.lines.length, 1, 'one warning, not one per check');
    assert.match(logger.lines[0], new RegExp(`Redis at redis://127.0.0.1:${port} has not answered yet`));
    const s = rl.stats();
    assert.deepEqual([s.everConnected, s.backend, s.local], [false, 'unknown', 5]);
  } finally {
    await rl.close();
  }
});

test('11: the first check against a closed port returns within its timeout, not connectTimeoutMs', async () => {
  const port = await freePort();
  const rl = new DistributedRateLimiter(`redis://127.0.0.1:${port}`, { timeoutMs: 50, connectTimeoutMs: 5000, logger: recorder() });
  try {
    const t0 = performance.now();
    const v = await rl.throttle('u', { limit: 1, windowMs: 60000 });
    const ms = performance.now() - t0;
    assert.equal(v.path, 'local');
    assert.ok(ms <= 50 + MARGIN_MS, `the first check took ${ms.toFixed(0)} ms`);
  } finally {
    await rl.close();
  }
  // A frozen server: the connection is accepted, nothing answers.
  const server = await new Server().start();
  server.signal('SIGSTOP');
  const frozen = new DistributedRateLimiter(`redis://127.0.0.1:${server.port}`, { timeoutMs: 50, connectTimeoutMs: 5000, logger: recorder() });
  try {
    const t0 = performance.now();
    await frozen.isAllowed('u', { limit: 1, windowMs: 60000 });
    assert.ok(performance.now() - t0 <= 50 + MARGIN_MS);
  } finally {
    await frozen.close();
    await server.stop();
  }
});

test("12: errors in the caller's words, in one tree", async () => {
  const fake = { status: 'ready', call: async () => 1, on() {} };
  const rl = new DistributedRateLimiter(fake);
  await assert.rejects(rl.isAllowed('k', { limit: 10, windowMs: 0 }), { name: 'InvalidArgument', message: 'windowMs must be an integer from 1 to 1000000000000' });
  await assert.rejects(rl.configureRateLimit('k', [{ limit: 1, windowMs: 1000 }, { limit: 5000, windowMs: 1000, kind: 'sliding' }]), {
    message: "limits[1]: a 'sliding' limit must be an integer from 1 to 1000 (use 'gcra' for more requests per window)",
  });
  await assert.rejects(rl.configureRateLimit('k', { limit: 1, windowMs: 1000, idleMs: -1 }), { message: 'idleMs must be an integer from 1 to 1000000000000' });
  const { RateLimitArgumentError, RateLimitTimeoutError } = require('../src');
  assert.equal(RateLimitArgumentError, InvalidArgument, 'the 0.1 name is an alias');
  assert.equal(RateLimitTimeoutError, Unavailable);
});

/** `npm pack` into a fresh directory: the tarball's file list and an install of it (no client library). */
function packed() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rl-node-pack-'));
  const out = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', dir], { cwd: PKG, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
  const tarball = path.join(dir, out[0].filename);
  const into = path.join(dir, 'app', 'node_modules', 'distributed-rate-limiter');
  fs.mkdirSync(into, { recursive: true });
  execFileSync('tar', ['xzf', tarball, '-C', into, '--strip-components=1']);
  return { dir, app: path.join(dir, 'app'), files: out[0].files.map((f) => f.path).sort() };
}

function run(file, env, cwd) {
  return new Promise((resolve) => {
    execFile(process.execPath, [file], { cwd, env: { ...process.env, ...env }, timeout: 20000 }, (err, stdout, stderr) => resolve({ err, stdout, stderr }));
  });
}

test('12: npm pack ships the code, the types, the Lua script and no tests; both client libraries are optional peers', async () => {
  const { dir, app, files } = packed();
  try {
    for (const f of ['README.md', 'index.d.ts', 'express.d.ts', 'lua/ratelimit.lua', 'package.json', 'src/index.js', 'src/express.js', 'src/drivers/ioredis.js', 'src/drivers/node-redis.js']) {
      assert.ok(files.includes(f), `${f} is packed`);
    }
    assert.deepEqual(files.filter((f) => /^(test|scripts|examples|node_modules)\//.test(f)), []);
    const shipped = fs.readFileSync(path.join(app, 'node_modules', 'distributed-rate-limiter', 'lua', 'ratelimit.lua'), 'utf8');
    assert.equal(shipped, fs.readFileSync(path.join(PKG, '..', 'lua', 'ratelimit.lua'), 'utf8'), 'the packed script is the shared one');
    const pkg = JSON.parse(fs.readFileSync(path.join(PKG, 'package.json'), 'utf8'));
    // Every peer is optional: the two client libraries and the frameworks the adapters plug into.
    assert.ok(pkg.peerDependencies.ioredis && pkg.peerDependencies.redis);
    assert.deepEqual(Object.keys(pkg.peerDependenciesMeta).sort(), Object.keys(pkg.peerDependencies).sort());
    assert.ok(Object.values(pkg.peerDependenciesMeta).every((m) => m.optional === true));

    // Installed without ioredis or redis: a URL gets a clear error naming what to install.
    fs.writeFileSync(path.join(app, 'main.js'), "const { DistributedRateLimiter } = require('distributed-rate-limiter');\ntry { new DistributedRateLimiter('redis://127.0.0.1:6379'); } catch (e) { console.log(e.name, e.message); }\n");
    const r = await run(path.join(app, 'main.js'), {}, app);
    assert.match(r.stdout, /^ConfigurationError .*npm install ioredis \(or npm install redis\)/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** The README's first ```js block, as written. */
function readmeSnippet() {
  const readme = fs.readFileSync(path.join(PKG, 'README.md'), 'utf8');
  return /```js\n([\s\S]*?)```/.exec(readme)[1];
}

for (const module of [true, false]) {
  test(`12: the README snippet runs as written (CommonJS) and exits by itself (${module ? 'module' : 'Lua'})`, async () => {
    const server = await new Server({ module }).start();
    const { dir, app } = packed();
    try {
      // The application's own ioredis, as `npm install distributed-rate-limiter ioredis` gives it.
      fs.symlinkSync(path.join(PKG, 'node_modules', 'ioredis'), path.join(app, 'node_modules', 'ioredis'));
      fs.writeFileSync(path.join(app, 'snippet.js'), readmeSnippet());
      const r = await run(path.join(app, 'snippet.js'), { REDIS_URL: `redis://127.0.0.1:${server.port}` }, app);
      assert.equal(r.err, null, `exit: ${r.err && r.err.message}\n${r.stderr}`);
      const want = Array.from({ length: 15 }, (_, i) => `Request ${i + 1} from user123: ${i < 10}`);
      assert.deepEqual(r.stdout.trim().split('\n'), want);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      await server.stop();
    }
  });
}

test('the constructor forms: (), (url, options), (options), (client, options)', async () => {
  const server = await new Server().start();
  const client = new IoRedis({ port: server.port });
  const saved = process.env.REDIS_URL;
  process.env.REDIS_URL = `redis://127.0.0.1:${server.port}`;
  const made = [
    new DistributedRateLimiter(),
    new DistributedRateLimiter(`redis://127.0.0.1:${server.port}`, { timeoutMs: 1000 }),
    new DistributedRateLimiter({ url: `redis://127.0.0.1:${server.port}`, driver: 'redis' }),
    new DistributedRateLimiter({ client }),
    new DistributedRateLimiter(client, { prefix: 'x:' }),
  ];
  try {
    for (const rl of made) {
      await rl.ready();
      assert.equal((await rl.throttle('c', { limit: 100, windowMs: 1000 })).path, 'redis');
    }
  } finally {
    if (saved === undefined) delete process.env.REDIS_URL;
    else process.env.REDIS_URL = saved;
    await Promise.all(made.map((rl) => rl.close()));
    client.disconnect();
    await server.stop();
  }
});
