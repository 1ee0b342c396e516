'use strict';
// DistributedRateLimiter: the brief's API over the rl module, the Lua fallback when the
// server has no module, and a failure policy when Redis does not answer in time.
//
// Path of one check: validate (typed error, nothing sent) -> breaker closed? -> the module
// (RL.ALLOW / RL.THROTTLE / RL.PEEK), or the Lua script once the server said "unknown
// command" -> on a timeout or a connection error, the failure policy: 'allow', 'deny' or
// 'local' (the same GCRA in process, at `localShare` of each limit).

const { EventEmitter } = require('events');
const policyOf = require('./policy');
const replies = require('./replies');
const script = require('./script');
const { Breaker } = require('./breaker');
const { LocalLimiter } = require('./local');
const { wrap, cancellable } = require('./transport');
const { Deadlines } = require('./deadline');

const ON_ERROR = ['allow', 'deny', 'local'];
/** The options of a check without options: no inline policy to parse. */
const NO_OPTIONS = Object.freeze({});

/** Server errors that say "not available right now" (the failure policy applies), not "wrong call". */
const UNAVAILABLE = /^(LOADING|BUSY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|READONLY|OOM|MOVED|ASK|NOREPLICAS)\b/;

/** Redis did not answer within the call's timeout. */
class RateLimitTimeoutError extends Error {
  constructor(ms) {
    super(`no answer from Redis within ${ms} ms`);
    this.name = 'RateLimitTimeoutError';
  }
}

/** An error reply from the server (ioredis ReplyError, node-redis ErrorReply and subclasses), not a transport failure. */
function isServerError(err) {
  for (let p = err && Object.getPrototypeOf(err); p && p !== Error.prototype; p = Object.getPrototypeOf(p)) {
    const name = p.constructor && p.constructor.name;
    if (name === 'ReplyError' || name === 'ErrorReply') return true;
  }
  return false;
}

/**
 * ioredis, from this package's dependencies or else from the application's: `npm install
 * ./clients/node` links this directory, and a linked package resolves from its real path.
 */
function loadIoRedis() {
  const from = [__dirname, process.cwd(), ...(require.main ? require.main.paths : [])];
  for (const dir of from) {
    try {
      return require(require.resolve('ioredis', { paths: [dir] }));
    } catch {
      // next place
    }
  }
  throw new Error('DistributedRateLimiter(): install ioredis (npm install ioredis), or pass your own ioredis/node-redis client');
}

function defaultClient() {
  const url = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
  const IoRedis = loadIoRedis();
  // Fail fast while disconnected: no offline queue, no per-request retries; reconnects continue.
  return new IoRedis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 0 });
}

class DistributedRateLimiter extends EventEmitter {
  /**
   * new DistributedRateLimiter()                     REDIS_URL or 127.0.0.1:6379 (ioredis)
   * new DistributedRateLimiter(client, options)      an ioredis Redis/Cluster or node-redis client/cluster
   * new DistributedRateLimiter(options)              options.client, or the default connection
   */
  constructor(client, options) {
    super();
    if (client && options === undefined && !looksLikeClient(client)) {
      options = client;
      client = options.client;
    }
    const o = { ...DEFAULTS, ...(options || {}) };
    if (!ON_ERROR.includes(o.onError)) throw new policyOf.RateLimitArgumentError(`onError must be one of ${ON_ERROR.join(', ')}`);
    for (const f of ['timeoutMs', 'connectTimeoutMs', 'breakerFailures', 'breakerCooldownMs']) {
      if (!Number.isSafeInteger(o[f]) || o[f] < 1) throw new policyOf.RateLimitArgumentError(`${f} must be a positive integer`);
    }
    this.options = o;
    this.prefix = o.prefix;
    this.ownsClient = !client;
    this.transport = wrap(client || defaultClient());
    if (this.ownsClient) this.transport.client.on('error', () => {}); // failures surface per call
    this.share = policyOf.share(o.localShare);
    this.local = new LocalLimiter({ now: o.now ? () => BigInt(o.now()) : undefined });
    this.breaker = new Breaker({
      threshold: o.breakerFailures,
      cooldownMs: o.breakerCooldownMs,
      now: () => performance.now(), // monotonic: a wall-clock step must not hold the circuit open
      onChange: (from, to) => this.stateChanged(from, to),
    });
    this.deadlines = new Deadlines(timeoutError);
    this.policies = new Map(); // key -> policy stored by configureRateLimit (for 'local' and headers)
    this.useLua = false;
    this.luaSince = 0;
    this.counts = { redis: 0, lua: 0, local: 0, failedOpen: 0, failedClosed: 0, errors: 0, timeouts: 0 };
    this.lastError = null;
    // A client not connected yet (ours, or one just created): the first call may wait for it.
    this.answered = this.transport.connected();
    // Re-check for the module after every reconnect (the server may have changed).
    this.transport.onReady(() => {
      this.useLua = false;
    });
  }

  /** Stores `clientId`'s policy (RL.CONFIG): {limit, windowMs, burst?, idleMs?, shadow?}. */
  async configureRateLimit(clientId, p) {
    const key = this.key(clientId);
    const pol = policyOf.policy(p || {});
    const idle = policyOf.idleMs(p.idleMs);
    this.policies.set(mapKey(key), pol);
    const args = ['RL.CONFIG', key, String(pol.limit), String(pol.windowMs), 'BURST', String(pol.burst)];
    if (idle !== null) args.push('IDLE', String(idle));
    if (p.shadow) args.push('SHADOW');
    await this.remote(key, args, () => script.configArgs(luaRange(pol), idle, Boolean(p.shadow)));
  }

  /** One call per request: true if allowed (and counted). Options: {cost?, limit?, windowMs?, burst?}. */
  isAllowed(clientId, opts = NO_OPTIONS) {
    return this.check(clientId, opts, 'allow');
  }

  /** Decides and counts like isAllowed, with the numbers and ready-to-send HTTP headers. */
  throttle(clientId, opts = NO_OPTIONS) {
    return this.check(clientId, opts, 'throttle');
  }

  /** The same reply for a hypothetical request: nothing is counted. */
  peek(clientId, opts = NO_OPTIONS) {
    return this.check(clientId, opts, 'peek');
  }

  /** Forgets the client's usage, keeps its stored policy; resolves the backlog forgotten, in ms. */
  async reset(clientId) {
    const key = this.key(clientId);
    this.local.reset(mapKey(key));
    return Number(await this.remote(key, ['RL.RESET', key], () => ['reset', '']));
  }

  /** The key's policy and state (RL.INFO), or null for an absent key. */
  async info(clientId) {
    const key = this.key(clientId);
    return replies.info(await this.remote(key, ['RL.INFO', key], () => ['info', '']));
  }

  /**
   * Decisions by path (redis, lua, local, failedOpen, failedClosed), transport failures
   * (errors, of which timeouts), the breaker's state ('closed', 'open', 'half_open').
   */
  stats() {
    return {
      ...this.counts,
      state: this.breaker.state,
      backend: this.useLua ? 'lua' : 'module',
      localKeys: this.local.size,
      lastError: this.lastError ? this.lastError.message : null,
    };
  }

  /** Closes the connection if this limiter opened it. */
  async close() {
    if (this.ownsClient) await this.transport.quit().catch(() => {});
  }

  key(clientId) {
    const id = policyOf.clientId(clientId);
    if (!this.prefix) return id;
    return Buffer.isBuffer(id) ? Buffer.concat([Buffer.from(this.prefix), id]) : this.prefix + id;
  }

  /**
   * One check. Resolves a boolean for 'allow' (isAllowed), else the verdict. Written with
   * explicit promises, not async/await: each await is a microtask hop, and on loopback the
   * hops were most of what the client added to a call (bench/clients_node.js).
   */
  check(clientId, opts, kind) {
    let key;
    let cost;
    let inline;
    try {
      key = this.key(clientId);
      cost = opts.cost === undefined ? 1n : policyOf.cost(opts.cost);
      inline = opts === NO_OPTIONS ? null : policyOf.inlinePolicy(opts);
    } catch (err) {
      return Promise.reject(err);
    }
    if (!this.breaker.allow()) return Promise.resolve(this.fallback(key, cost, inline, kind));
    const args = [kind === 'allow' ? 'RL.ALLOW' : kind === 'throttle' ? 'RL.THROTTLE' : 'RL.PEEK', key];
    if (cost !== 1n) args.push('COST', String(cost));
    if (inline) args.push('LIMIT', String(inline.limit), 'WINDOW', String(inline.windowMs), 'BURST', String(inline.burst));
    const luaArgs = () => script.checkArgs(kind === 'peek' ? 'peek' : 'check', cost, inline && luaRange(inline));
    return this.remote(key, args, luaArgs, (reply) => this.decided(reply, kind, key, inline), () => this.fallback(key, cost, inline, kind));
  }

  /** The policy this process knows for a key: configured through this limiter, else inline. */
  known(key, inline) {
    return this.policies.size === 0 ? inline : this.policies.get(mapKey(key)) || inline;
  }

  decided(reply, kind, key, inline) {
    const viaLua = reply instanceof LuaReply;
    this.counts[viaLua ? 'lua' : 'redis'] += 1;
    if (kind === 'allow') return viaLua ? replies.verdict(reply.reply).allowed : replies.allowed(reply);
    const v = replies.verdict(viaLua ? reply.reply : reply);
    v.headers = replies.headers(v, this.known(key, inline));
    v.path = viaLua ? 'lua' : 'redis';
    return v;
  }

  /**
   * Sends a command (or, on a server without the module, the Lua script) within the timeout,
   * and resolves with `answer(reply)` (reply: the raw reply, or a LuaReply when the script
   * answered). A failure to reach Redis resolves with `unavailable()` when given (the failure
   * policy) and is thrown otherwise. Server errors about the call itself are always thrown.
   */
  remote(key, args, luaArgv, answer = unwrap, unavailable = null) {
    // Until the first answer or failure, a call may also wait for the first connection.
    const ms = this.answered || this.counts.errors > 0 ? this.options.timeoutMs : Math.max(this.options.timeoutMs, this.options.connectTimeoutMs);
    const call = this.start(key, args, luaArgv, ms);
    const entry = this.deadlines.add(ms, call);
    return call.promise.then(
      (reply) => {
        this.deadlines.settle(entry);
        this.succeeded();
        return answer(reply);
      },
      (err) => {
        this.deadlines.settle(entry);
        return this.remoteFailed(err, key, args, luaArgv, answer, unavailable);
      },
    );
  }

  /** What a failed remote call becomes: the Lua path, an error for the caller, or the failure policy. */
  remoteFailed(err, key, args, luaArgv, answer, unavailable) {
    if (isServerError(err) && /unknown command/i.test(err.message) && !this.useLua) {
      // No module on this server: the same GCRA as a script (a fresh deadline, once).
      this.useLua = true;
      this.luaSince = performance.now();
      return this.remote(key, args, luaArgv, answer, unavailable);
    }
    if (err instanceof policyOf.RateLimitArgumentError || (isServerError(err) && !UNAVAILABLE.test(err.message))) {
      this.succeeded(); // Redis answered: the call was wrong, not the server
      throw err;
    }
    this.failed(err);
    if (unavailable) return unavailable();
    throw err;
  }

  /**
   * The hot path sends at once (an ioredis Command is its own cancellable call); a connection
   * not ready yet, or the Lua path, go the long way. Returns {promise, reject(err)}.
   */
  start(key, args, luaArgv, ms) {
    const t = this.transport;
    if (this.useLua && performance.now() - this.luaSince > MODULE_RECHECK_MS) this.useLua = false;
    if (!t.isReady(key)) return cancellable(this.sendWhenReady(key, args, luaArgv, ms));
    if (this.useLua) return cancellable(this.runScript(key, luaArgv));
    return t.start(key, args);
  }

  async sendWhenReady(key, args, luaArgv, ms) {
    if (!(await this.transport.whenReady(key, ms))) throw new Error('Redis connection not ready');
    if (this.useLua) return this.runScript(key, luaArgv);
    return this.transport.send(key, args);
  }

  async runScript(key, luaArgv) {
    const t = this.transport;
    return new LuaReply(await script.run((k, a) => t.send(k, a), key, luaArgv()));
  }

  succeeded() {
    this.answered = true;
    this.breaker.success();
  }

  failed(err) {
    this.counts.errors += 1;
    if (err instanceof RateLimitTimeoutError) this.counts.timeouts += 1;
    this.lastError = err;
    this.breaker.failure();
  }

  /** 'degraded' when the circuit opens, 'recovered' when a probe succeeds (and onStateChange). */
  stateChanged(from, to) {
    let event = null;
    if (to === 'open' && from === 'closed') event = 'degraded';
    if (to === 'closed') {
      event = 'recovered';
      this.local.clear(); // Redis holds the truth again
    }
    if (!event) return;
    if (this.options.onStateChange) this.options.onStateChange(event, this.stats());
    this.emit(event, { error: this.lastError, stats: this.stats() });
  }

  /** The failure policy's decision for a check Redis did not answer (a boolean for 'allow'). */
  fallback(key, cost, inline, kind) {
    const known = this.known(key, inline);
    let v;
    if (this.options.onError === 'local' && known) {
      const pol = policyOf.scaled(known, this.share);
      const r = this.local.check(mapKey(key), pol, cost, kind === 'peek');
      this.counts.local += 1;
      v = {
        allowed: r.allowed,
        limit: Number(r.limit),
        remaining: Number(r.remaining),
        retryAfterMs: Number(r.retryAfterMs),
        resetAfterMs: Number(r.resetAfterMs),
        path: 'local',
      };
    } else if (this.options.onError === 'deny') {
      this.counts.failedClosed += 1;
      const retry = Math.max(this.breaker.retryInMs(), 1);
      v = { allowed: false, limit: known ? Number(known.burst) : 0, remaining: 0, retryAfterMs: retry, resetAfterMs: retry, path: 'failedClosed' };
    } else {
      // 'allow', or 'local' for a key whose policy this process does not know.
      this.counts.failedOpen += 1;
      const burst = known ? Number(known.burst) : 0;
      v = { allowed: true, limit: burst, remaining: burst, retryAfterMs: -1, resetAfterMs: 0, path: 'failedOpen' };
    }
    if (kind === 'allow') return v.allowed;
    v.headers = replies.headers(v, known);
    return v;
  }
}

/** A reply from the Lua script (always the numbers), told apart from the module's. */
class LuaReply {
  constructor(reply) {
    this.reply = reply;
  }
}

function unwrap(reply) {
  return reply instanceof LuaReply ? reply.reply : reply;
}

function timeoutError(ms) {
  return new RateLimitTimeoutError(ms);
}

/** How long a limiter trusts "no module here" before asking the module again, in ms. */
const MODULE_RECHECK_MS = 60_000;

const DEFAULTS = {
  prefix: '',
  onError: 'local',
  timeoutMs: 50,
  connectTimeoutMs: 1000,
  breakerFailures: 3,
  breakerCooldownMs: 1000,
  localShare: 1,
  now: undefined,
  onStateChange: undefined,
};

/** Lua numbers are doubles: the script is exact only within this range (clients/README.md). */
const LUA_MAX_LIMIT = 2n ** 26n;
const LUA_MAX_TOLERANCE = 2n ** 51n;
const LUA_RANGE =
  "policy out of the Lua fallback's exact range (limit <= 67108864 and burst * window_ms <= 2251799813685248): load the rl module for it";

/** The policy, if the Lua script can hold it exactly; else the typed error, before sending. */
function luaRange(pol) {
  if (pol.limit > LUA_MAX_LIMIT || pol.burst * pol.windowMs > LUA_MAX_TOLERANCE) throw new policyOf.RateLimitArgumentError(LUA_RANGE);
  return pol;
}

/** A Map key for a Redis key: Buffers compare by identity, so binary keys become strings. */
function mapKey(key) {
  return typeof key === 'string' ? key : `\0buf:${key.toString('latin1')}`;
}

function looksLikeClient(x) {
  return typeof x.call === 'function' || typeof x.sendCommand === 'function';
}

module.exports = { DistributedRateLimiter, RateLimitTimeoutError, DEFAULTS };
