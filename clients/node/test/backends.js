'use strict';
// The three paths a call can take, behind one interface, for tests that must hold on each:
//   module  a server with the rl module (RL_MODULE), its wall clock frozen (frozenclock.c)
//   lua     a server without it: the shared script, the same frozen clock
//   local   onError 'local' with nothing listening: the local limiter, an injected clock
// Each gives {name, rl, path, setClock(ms), configure(id, policy), stop(), server?}. A path
// that lacks what a test needs (a module older than issues 19 and 20, a script without the
// operation) is reported by `missing(...)` so the test is skipped, never passed blindly.

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
  if (frozen) server.setClock(START_MS);
  const rl = new DistributedRateLimiter(`redis://127.0.0.1:${server.port}`, { timeoutMs: 5000, denyCacheMaxMs: 0, logger: QUIET, ...options });
  return {
    name,
    rl,
    server,
    path: PATHS[name],
    setClock: (ms) => server.setClock(ms),
    configure: (id, p) => rl.configureRateLimit(id, p),
    /** Why this backend cannot run a test needing `commands` (e.g. 'RL.ACQUIRE'), or null. */
    missing: (...commands) => {
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

module.exports = { open, onEach, START_MS, BACKENDS, PATHS, QUIET };
