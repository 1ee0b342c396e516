'use strict';
// Shared by the adapter tests: a redis-server with the module or without it (the Lua path),
// an HTTP server on a free loopback port, and many requests at once.

const { execFile, spawn } = require('child_process');
const path = require('path');
const { Server } = require('./servers');

/** The two ways the adapters reach Redis: the module (RL_MODULE) and the Lua script. */
const BACKENDS = [
  { name: 'module', module: true },
  { name: 'lua', module: false },
];

/** Why `server` cannot run a test needing `commands` (the module predates them), or null. */
function lacking(server, backend, ...commands) {
  if (!backend.module) return null;
  for (const c of commands) {
    if (!server.cli('COMMAND', 'INFO', c).toLowerCase().includes(c.toLowerCase())) return `the module (${process.env.RL_MODULE || 'target/release/librl.so'}) has no ${c}`;
  }
  return null;
}

/** Whether the module on `server` takes a policy's PENALTY (issue 19); the script always does. */
function takesPenalty(server, backend) {
  return lacking(server, backend, 'RL.BLOCK') === null;
}

/** Runs `body(server)` against a fresh redis-server for `backend`, always stopped. */
async function withRedis(backend, body) {
  const server = await new Server({ module: backend.module }).start();
  try {
    return await body(server);
  } finally {
    await server.stop();
  }
}

/** `n` GETs of `url` (all at once with `concurrent`), in order; each {status, headers, body}. */
async function hit(url, n, { concurrent = false, headers = {} } = {}) {
  const one = async () => {
    const res = await fetch(url, { headers });
    return { status: res.status, headers: res.headers, body: await res.text() };
  };
  if (concurrent) return Promise.all(Array.from({ length: n }, one));
  const out = [];
  for (let i = 0; i < n; i++) out.push(await one());
  return out;
}

/** How many of `responses` have each status: {200: n, 429: m}. */
function tally(responses) {
  const t = {};
  for (const r of responses) t[r.status] = (t[r.status] || 0) + 1;
  return t;
}

/** Listens on a free loopback port: {url, close()}. `listenable` is an http.Server or an Express app. */
function listen(app) {
  return new Promise((resolve) => {
    const server = app.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({ url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(r)) });
    });
  });
}

/**
 * Whether a Node process that runs `source` (CommonJS, `SRC` is clients/node/src) exits by
 * itself within `ms`: a limiter left connecting (or reconnecting) keeps a process alive.
 */
function exitsAlone(source, ms = 30_000) {
  const code = `const SRC = ${JSON.stringify(path.resolve(__dirname, '..', 'src'))};\n${source}`;
  return new Promise((resolve) => {
    execFile(process.execPath, ['-e', code], { timeout: ms }, (err) => resolve(!err || !err.killed));
  });
}

/**
 * Runs examples/`name` against `redis` on a free port until `body(url)` settles, then stops it
 * (SIGTERM, by its PID) and waits for it to exit. The example prints `listening on <url>`.
 */
async function withExample(name, redis, body) {
  const file = path.resolve(__dirname, '..', 'examples', name);
  const child = spawn(process.execPath, [file], { env: { ...process.env, REDIS_URL: `redis://127.0.0.1:${redis.port}`, PORT: '0' }, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    const url = await new Promise((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m) resolve(m[1]);
      });
      exited.then((code) => reject(new Error(`examples/${name} exited (${code}) before listening: ${out}`)));
    });
    return await body(url);
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

/** Limiter options for tests on a busy shared machine: no check runs out of time, no log noise. */
const QUIET = { warn() {}, error() {} };
const TEST_LIMITER = { timeoutMs: 10_000, logger: QUIET };

module.exports = { BACKENDS, lacking, takesPenalty, withRedis, hit, tally, listen, exitsAlone, withExample, QUIET, TEST_LIMITER };
