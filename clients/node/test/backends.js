'use strict';
// The three paths a call can take, behind one interface, for tests that must hold on each:
//   module  a server with the rl module (RL_MODULE), its wall clock frozen (frozenclock.c)
//   lua     a server without it: the shared script, the same frozen clock
//   local   onError 'local' with nothing listening: the local limiter, an injected clock
// Each gives {name, rl, path, setClock(ms), configure(id, policy), stop(), server?}. A path
// that lacks what a test needs (a module older than issues 19 and 20, a script without the
// operation) is reported by `missing(...)` so the test is skipped, never passed blindly.
//
// Valkey 9 under frozenclock.c now and then decides on the instant of an earlier command (it
// does not read the clock afresh for every one), so there the script gets each instant through
// its test-only now_ms argument (ARGV[2]) written into every EVALSHA, as the Python tests do,
// and the module's frozen-clock tests are skipped (no argument carries a module's clock).

const fs = require('fs');
const path = require('path');
const { DistributedRateLimiter, Unavailable } = require('../src');
const { Server, freePort, ROOT } = require('./servers');

const START_MS = 1_764_000_000_000;
const BACKENDS = ['module', 'lua', 'local'];
const PATHS = { module: 'redis', lua: 'lua', local: 'local' };
const QUIET = { warn() {}, error() {} };

/** The module commands and the script operations a test may need. */
const SCRIPT = fs.readFileSync(path.join(ROOT, 'clients', 'lua', 'ratelimit.lua'), 'utf8');

/**
 * Opens a backend. `options` go to the limiter; `frozen: false` runs the server on the real
 * clock (tests of real concurrency and expiry).
 */
async function open(name, { frozen = true, ...options } = {}) {
  if (name === 'local') {
    const clock = { ms: START_MS };
    const port = await freePort(); // nothing listens there
    const rl = new DistributedRateLimiter(`redis://127.0.0.1:${port}`, {
      onError: 'local',
      now: () => clock.ms,
      timeoutMs: 100,
      connectTimeoutMs: 100,
      logger: QUIET,
      ...options,
    });
    return {
      name,
      rl,
      path: 'local',
      setClock: (ms) => (clock.ms = ms),
      // The policy is remembered here even though Redis cannot store it: the local limiter uses it.
      configure: (id, p) => rl.configureRateLimit(id, p).catch((err) => {
        if (!(err instanceof Unavailable)) throw err;
      }),
      missing: () => null,
      stop: () => rl.close(),
    };
  }
  const server = await new Server({ module: name === 'module', frozen }).start();
  if (frozen) server.writeClock(START_MS);
  const rl = new DistributedRateLimiter(`redis://127.0.0.1:${server.port}`, { timeoutMs: 5000, denyCacheMaxMs: 0, logger: QUIET, ...options });
  const clock = { ms: START_MS };
  const valkey = isValkey(server);
  if (frozen && valkey && name === 'lua') atInstants(rl, clock);
  return {
    name,
    rl,
    server,
    path: PATHS[name],
    setClock: (ms) => {
      clock.ms = ms;
      server.writeClock(ms);
    },
    configure: (id, p) => rl.configureRateLimit(id, p),
    /** Why this backend cannot run a test needing `commands` (e.g. 'RL.ACQUIRE'), or null. */
    missing: (...commands) => {
      if (frozen && valkey && name === 'module') return "Valkey's clock cannot be frozen for a module's commands (frozenclock.c): the module's frozen-instant tests run on Redis";
      for (const c of commands) {
        if (name === 'module' && !server.cli('COMMAND', 'INFO', c).toLowerCase().includes(c.toLowerCase())) return `the module (${process.env.RL_MODULE || 'target/release/librl.so'}) has no ${c}`;
        const op = c.replace(/^RL\./, '').toLowerCase();
        if (name === 'lua' && !new RegExp(`^\\s+${op} = `, 'm').test(SCRIPT)) return `ratelimit.lua has no ${op} operation`;
      }
      return null;
    },
    stop: async () => {
      await rl.close();
      await server.stop();
    },
  };
}

/** Whether a started server is Valkey (INFO server's server_name, Valkey 8 and later). */
function isValkey(server) {
  return /server_name:valkey/.test(server.cli('INFO', 'server'));
}

/** Every EVALSHA `rl` sends decides at `clock.ms` (the script's test-only ARGV[2]), not at the server's clock. */
function atInstants(rl, clock) {
  const send = rl.transport.send.bind(rl.transport);
  rl.transport.send = (key, args) => send(key, args[0] === 'EVALSHA' ? [...args.slice(0, 5), String(clock.ms), ...args.slice(6)] : args);
}

/**
 * Runs `body(b)` on each backend as a subtest of `t`, skipping (with the reason) a backend
 * that lacks one of `commands`.
 */
async function onEach(t, commands, body, names = BACKENDS, options = {}) {
  for (const name of names) {
    await t.test(name, async (st) => {
      const b = await open(name, options);
      try {
        const why = b.missing(...commands);
        if (why) {
          st.skip(why);
          return;
        }
        await body(b);
      } finally {
        await b.stop();
      }
    });
  }
}

module.exports = { open, onEach, isValkey, atInstants, START_MS, BACKENDS, PATHS, QUIET };
