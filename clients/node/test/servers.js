'use strict';
// Throwaway redis-servers for the tests: a free loopback port, a temporary directory, the rl
// module (RL_MODULE, default target/release/librl.so) or none (the Lua path), optionally a
// frozen wall clock (clients/conformance/frozenclock.c); always stopped by PID. REDIS_SERVER
// names another server binary (Valkey 9: REDIS_SERVER=/path/to/valkey-server npm test).

const { spawn, execFileSync } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const MODULE = path.resolve(process.env.RL_MODULE || path.join(ROOT, 'target', 'release', 'librl.so'));
// SERVER names a server of the project's test matrix (scripts/servers.sh installs it as
// .deps/SERVER/server: redis-7.0 ... valkey-9.1, or the aliases redis and valkey); unset:
// redis-server on PATH.
// REDIS_SERVER=/path/to/binary overrides both.
const REDIS_SERVER = process.env.REDIS_SERVER ||
  (process.env.SERVER ? path.join(ROOT, '.deps', process.env.SERVER, 'server') : 'redis-server');
/** The binary the tests start (exported for tests that name it). */
const SERVER = REDIS_SERVER;
// RL_NO_MODULE=1: every server starts without the module, so the client takes its Lua path
// where a test would have used the module; SERVED_PATH is the path it then reports.
const NO_MODULE = process.env.RL_NO_MODULE === '1';
const SERVED_PATH = NO_MODULE ? 'lua' : 'redis';

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Two free ports p and p + 10000 (a cluster node and its bus). */
async function freeClusterPort() {
  for (;;) {
    const p = await freePort();
    if (p + 10000 > 65535) continue;
    const ok = await new Promise((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(p + 10000, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (ok) return p;
  }
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function ping(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.setTimeout(500);
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => {
      s.destroy();
      resolve(d.toString().startsWith('+PONG'));
    });
    s.on('error', () => resolve(false));
    s.on('timeout', () => {
      s.destroy();
      resolve(false);
    });
  });
}

/** TIME as a script reads it (EVAL, so with or without the module), in Unix ms. */
function scriptTimeMs(port) {
  const script = "local t = redis.call('TIME') return t[1] * 1000 + math.floor(t[2] / 1000)";
  const args = ['EVAL', script, '0'];
  const request = `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('');
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let reply = '';
    s.setTimeout(10000);
    s.on('connect', () => s.write(request));
    s.on('data', (d) => {
      reply += d.toString();
      if (!reply.endsWith('\r\n')) return;
      s.destroy();
      if (reply[0] === ':') resolve(Number(reply.slice(1).trim()));
      else reject(new Error(`TIME script: ${reply.trim()}`));
    });
    s.on('error', reject);
    s.on('timeout', () => {
      s.destroy();
      reject(new Error('TIME script: no reply'));
    });
  });
}

let frozenSo = null;
/** Compiles frozenclock.c once per test process (removed at exit); its path. */
function frozenClock() {
  if (frozenSo) return frozenSo;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rl-node-clock-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  frozenSo = path.join(dir, 'frozenclock.so');
  // Whichever C compiler is there (deps.sh installs clang, which does not always provide `cc`).
  const cc = ['cc', 'clang', 'gcc'].find((c) => {
    try {
      execFileSync(c, ['--version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  });
  if (!cc) throw new Error('the conformance test needs a C compiler (cc, clang or gcc) for frozenclock.c');
  execFileSync(cc, ['-shared', '-fPIC', '-O2', '-o', frozenSo, path.join(ROOT, 'clients', 'conformance', 'frozenclock.c')]);
  return frozenSo;
}

class Server {
  /** @param {{module?: boolean, frozen?: boolean, port?: number, args?: string[], dir?: string}} opts */
  constructor(opts = {}) {
    this.module = opts.module !== false && !NO_MODULE;
    this.frozen = Boolean(opts.frozen);
    this.port = opts.port;
    this.args = opts.args || [];
    // A given dir (a restart that keeps the data files) belongs to the caller.
    this.ownsDir = !opts.dir;
    this.dir = opts.dir || fs.mkdtempSync(path.join(os.tmpdir(), 'rl-node-'));
    this.clockFile = path.join(this.dir, 'clock');
    this.proc = null;
  }

  async start() {
    this.port = this.port || (await freePort());
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--dir', this.dir, '--logfile', 'redis.log', ...this.args];
    if (this.module) args.push('--loadmodule', MODULE);
    const env = { ...process.env };
    if (this.frozen) {
      env.LD_PRELOAD = frozenClock();
      env.RL_FROZEN_CLOCK_FILE = this.clockFile;
    }
    this.proc = spawn(REDIS_SERVER, args, { cwd: this.dir, env, stdio: 'ignore' });
    const exited = new Promise((resolve) => this.proc.once('exit', resolve));
    this.exited = exited;
    const until = Date.now() + 15000;
    while (Date.now() < until) {
      if (this.proc.exitCode !== null) break;
      if (await ping(this.port)) return this;
      await sleep(20);
    }
    const log = fs.existsSync(path.join(this.dir, 'redis.log')) ? fs.readFileSync(path.join(this.dir, 'redis.log'), 'utf8') : '';
    await this.stop();
    throw new Error(`redis-server on ${this.port} did not start:\n${log.slice(-2000)}`);
  }

  /** Runs redis-cli against this server; its output, trimmed. */
  cli(...args) {
    return execFileSync('redis-cli', ['-p', String(this.port), ...args.map(String)]).toString().trim();
  }

  /**
   * Freezes the server's wall clock at `ms` (Unix ms); needs {frozen: true}. Resolves once a
   * script on the server reads that instant: Valkey 9.1 reads the wall clock less often than
   * once per command, and on a busy machine the next commands after a change still saw the
   * old instant (up to ~20 commands, 16 ms, later).
   */
  async setClock(ms) {
    this.writeClock(ms);
    const until = Date.now() + 30000;
    while ((await scriptTimeMs(this.port)) !== ms) {
      if (Date.now() > until) throw new Error(`the server's clock never showed ${ms}`);
      await sleep(1);
    }
  }

  /**
   * Writes the frozen instant and returns at once, for callers that do not wait for the
   * server to read it (Redis reads its clock on every command; the Valkey tests pass the
   * script its instant instead: test/backends.js).
   */
  writeClock(ms) {
    const tmp = `${this.clockFile}.tmp`;
    fs.writeFileSync(tmp, String(ms));
    fs.renameSync(tmp, this.clockFile); // atomic: the server never reads a half-written file
  }

  signal(sig) {
    if (this.proc && this.proc.exitCode === null) this.proc.kill(sig);
  }

  /** SIGKILL and wait for the exit. */
  async kill() {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode) return;
    this.proc.kill('SIGKILL');
    await this.exited;
  }

  /** Starts again on the same port (an empty server: no persistence). */
  async restart() {
    await this.kill();
    return this.start();
  }

  async stop() {
    if (this.proc && this.proc.exitCode === null && !this.proc.signalCode) {
      this.proc.kill('SIGCONT');
      this.proc.kill('SIGKILL');
      await this.exited;
    }
    if (this.ownsDir) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

module.exports = { Server, freePort, freeClusterPort, sleep, MODULE, SERVER, ROOT, NO_MODULE, SERVED_PATH };

/**
 * A Redis Cluster of `masters` masters (and `replicas` replicas each) on free ports; slots
 * spread by redis-cli --cluster create. Returns {servers, ports, stop()}.
 */
async function startCluster({ module = true, masters = 3, replicas = 0, nodeTimeoutMs = 1000 } = {}) {
  const servers = [];
  try {
    for (let i = 0; i < masters * (1 + replicas); i++) {
      const port = await freeClusterPort();
      // As cluster.conf: replicas sync at once (no 5 s diskless delay), other slots keep serving.
      const s = new Server({ module, port, args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', String(nodeTimeoutMs),
        '--cluster-require-full-coverage', 'no', '--repl-diskless-sync-delay', '0'] });
      servers.push(s);
      await s.start();
    }
    const addrs = servers.map((s) => `127.0.0.1:${s.port}`);
    execFileSync('redis-cli', ['--cluster', 'create', ...addrs, '--cluster-replicas', String(replicas), '--cluster-yes'], { stdio: 'ignore' });
    const until = Date.now() + 20000;
    for (;;) {
      const ok = servers.every((s) => {
        const cli = (...a) => execFileSync('redis-cli', ['-p', String(s.port), ...a]).toString();
        if (!/cluster_state:ok/.test(cli('cluster', 'info'))) return false;
        const repl = cli('info', 'replication');
        return !/role:slave/.test(repl) || /master_link_status:up/.test(repl); // a replica that can take over
      });
      if (ok) break;
      if (Date.now() > until) throw new Error('cluster did not reach cluster_state:ok');
      await sleep(100);
    }
  } catch (err) {
    await Promise.all(servers.map((s) => s.stop()));
    throw err;
  }
  return { servers, ports: servers.map((s) => s.port), stop: () => Promise.all(servers.map((s) => s.stop())) };
}

module.exports.startCluster = startCluster;
