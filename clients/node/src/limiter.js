'use strict';
// DistributedRateLimiter: the API over the rl module, the Lua fallback when the server has
// no module, and the failure policy when Redis does not answer in time.
//
// Path of one check: validate (InvalidArgument, nothing sent) -> the deny cache (a denial
// still in force answers from memory) -> breaker closed? -> the module (RL.ALLOW /
// RL.THROTTLE / RL.PEEK), or the Lua script once the server said "unknown command" -> on a
// timeout, a connection error or a refusal to write, the failure policy: 'allow', 'deny' or
// 'local' (the same limits in process, at `localShare` of each). Every step of one call
// shares one deadline, `timeoutMs` from its start (the first call included).

const { EventEmitter } = require('events');
const policyOf = require('./policy');
const replies = require('./replies');
const script = require('./script');
const errors = require('./errors');
const { OPS, moduleArgs, luaArgs } = require('./operations');
const { Breaker } = require('./breaker');
const { LocalLimiter } = require('./local');
const { DenyCache } = require('./denycache');
const { Deadlines } = require('./deadline');
const { cancellable, delay } = require('./drivers/base');
const drivers = require('./drivers');
const { resolve: resolveOptions } = require('./options');

const { InvalidArgument, Unavailable, ConfigurationError, RateLimitError, NoRateLimit } = errors;

/** The options of a check without options: no inline policy to parse. */
const NO_OPTIONS = Object.freeze({});
const NO_CHECK = Object.freeze({ cost: 1n, inline: null });
/** How long a limiter trusts "no module here" before asking the module again, in ms. */
const MODULE_RECHECK_MS = 60_000;
/** While Redis has never answered, the warning that checks are decided without it, at most this often (ms). */
const WARN_EVERY_MS = 60_000;
/** waitUntilAllowed's default bound, in ms. */
const WAIT_DEFAULT_MS = 10_000;

class DistributedRateLimiter extends EventEmitter {
  /**
   * new DistributedRateLimiter()                    REDIS_URL, else redis://127.0.0.1:6379
   * new DistributedRateLimiter(url, options?)       redis://, rediss://, redis+cluster://
   * new DistributedRateLimiter(options)             options.url or options.client
   * new DistributedRateLimiter(client, options?)    an ioredis Redis/Cluster or node-redis client/cluster
   */
  constructor(first, second) {
    super();
    let given = second;
    let positional = {};
    if (typeof first === 'string') positional = { url: first };
    else if (drivers.looksLikeClient(first)) positional = { client: first };
    else if (first !== undefined && first !== null) {
      if (second !== undefined) throw new ConfigurationError('DistributedRateLimiter(first, options): first must be a URL string or a Redis client', 'client');
      given = first;
    }
    const o = resolveOptions(given);
    for (const [name, value] of Object.entries(positional)) {
      if (o.url !== undefined || o.client !== undefined) throw new ConfigurationError(`${name} given twice (as an argument and in the options)`, name);
      o[name] = value;
    }
    this.options = o;
    this.prefix = o.prefix;
    this.ownsClient = o.client === undefined;
    this.url = this.ownsClient ? o.url || process.env.REDIS_URL || 'redis://127.0.0.1:6379' : null;
    this.transport = this.ownsClient ? drivers.fromUrl(this.url, o) : drivers.wrap(o.client);
    this.connectionError = null;
    if (this.ownsClient) this.transport.onError((err) => (this.connectionError = err));
    this.share = policyOf.share(o.localShare);
    this.local = new LocalLimiter({ now: o.now ? () => BigInt(o.now()) : undefined, maxKeys: o.localMaxKeys });
    this.denied = new DenyCache({ maxMs: o.denyCacheMaxMs });
    this.breaker = new Breaker({
      threshold: o.breakerFailures,
      cooldownMs: o.breakerCooldownMs,
      now: () => performance.now(), // monotonic: a wall-clock step must not hold the circuit open
      onChange: (from, to) => this.stateChanged(from, to),
    });
    this.deadlines = new Deadlines(timeoutError);
    this.policies = new Map(); // mapKey -> {policy, idleMs, shadow} configured here (LRU, maxPolicies)
    this.useLua = false;
    this.luaSince = 0;
    this.moduleWithPolicy = true; // until the module says it does not know WITHPOLICY
    this.scriptLoads = new Map(); // key -> a SCRIPT LOAD in flight (script.run)
    this.counts = { redis: 0, lua: 0, local: 0, cached: 0, failedOpen: 0, failedClosed: 0, errors: 0, timeouts: 0, reconfigured: 0 };
    this.lastError = null;
    this.everConnected = false;
    this.lastAnswerAt = -Infinity;
    this.warnedAt = -Infinity;
    this.readyPromise = null;
    // Re-check for the module after every reconnect (the server may have changed).
    this.transport.onReady(() => {
      this.useLua = false;
    });
  }

  /**
   * Resolves once Redis has answered (a PING); rejects with Unavailable, the cause attached,
   * when the first connection attempt fails or after connectTimeoutMs.
   */
  ready() {
    if (this.everConnected) return Promise.resolve();
    if (!this.readyPromise) {
      this.readyPromise = this.probe().catch((err) => {
        this.readyPromise = null; // a later ready() tries again
        throw err;
      });
    }
    return this.readyPromise;
  }

  async probe() {
    const until = performance.now() + this.options.connectTimeoutMs;
    const where = this.url ? `at ${drivers.redact(this.url)}` : '(the client given)';
    let failure = null;
    const onError = (err) => (failure = failure || err);
    this.transport.onError(onError);
    try {
      const up = await this.transport.whenReady('', until);
      if (!up) {
        const cause = failure || this.connectionError;
        throw new Unavailable(`Redis ${where} did not answer within ${this.options.connectTimeoutMs} ms${cause ? `: ${cause.message}` : ''}`, { cause });
      }
      const call = this.transport.start('', ['PING']);
      const entry = this.deadlines.add(until, this.options.connectTimeoutMs, call);
      try {
        await call.promise;
      } catch (err) {
        throw new Unavailable(`Redis ${where} did not answer: ${err.message}`, { cause: err });
      } finally {
        this.deadlines.settle(entry);
      }
      this.answered();
    } finally {
      if (typeof this.transport.client.off === 'function') this.transport.client.off('error', onError);
    }
  }

  /**
   * Stores `clientId`'s policy (RL.CONFIG): {limit, windowMs, burst?, kind?, idleMs?, shadow?},
   * a list of up to 4 limits, or {limits, idleMs?, shadow?}. The limiter remembers it: for
   * the local fallback, for headers, and to store it again if Redis loses it.
   */
  async configureRateLimit(clientId, p) {
    const key = this.key(clientId);
    const config = policyOf.configOptions(p);
    const mk = mapKey(key);
    this.remember(mk, config);
    this.denied.forget(mk);
    await this.call({ op: 'configure', key, mk, config, check: false });
  }

  /** One call per request: true if allowed (and counted). Options: {cost?, limit?, windowMs?, burst?, kind?} or {cost?, limits}. */
  isAllowed(clientId, opts = NO_OPTIONS) {
    return this.check(clientId, opts, 'allow');
  }

  /** Decides and counts like isAllowed, with the numbers and ready-to-send HTTP headers. */
  throttle(clientId, opts = NO_OPTIONS) {
    return this.check(clientId, opts, 'throttle');
  }

  /** The same decision for a hypothetical request: nothing is counted. */
  peek(clientId, opts = NO_OPTIONS) {
    return this.check(clientId, opts, 'peek');
  }

  /**
   * Checks until allowed, sleeping exactly each denial's retryAfterMs, never past
   * `timeoutMs` (default 10000): resolves the last decision (allowed, or the denial whose
   * retry would pass the deadline, or one that can never pass).
   */
  async waitUntilAllowed(clientId, opts = {}) {
    const { timeoutMs = WAIT_DEFAULT_MS, ...check } = opts || {};
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 0) throw new InvalidArgument('timeoutMs must be an integer >= 0 (ms)');
    const until = performance.now() + timeoutMs;
    for (;;) {
      const v = await this.throttle(clientId, check);
      if (v.allowed || v.retryAfterMs < 0 || performance.now() + v.retryAfterMs > until) return v;
      await delay(v.retryAfterMs);
    }
  }

  /** Forgets the client's usage, keeps its stored policy; resolves the backlog forgotten, in ms. */
  async reset(clientId) {
    const key = this.key(clientId);
    const mk = mapKey(key);
    this.local.reset(mk);
    this.denied.forget(mk);
    return this.call({ op: 'reset', key, mk, check: false });
  }

  /** The key's policy and state (RL.INFO), or null for an absent key. */
  async info(clientId) {
    const key = this.key(clientId);
    return this.call({ op: 'info', key, mk: mapKey(key), check: false });
  }

  /**
   * Decisions by path (redis, lua, local, cached, failedOpen, failedClosed), transport
   * failures (errors; timeouts), policies stored again after Redis lost them (reconfigured),
   * the breaker's state ('closed', 'open', 'half_open'), the backend ('module', 'lua',
   * 'unknown' before Redis answered) and whether Redis ever answered (everConnected).
   */
  stats() {
    return {
      ...this.counts,
      state: this.breaker.state,
      backend: this.useLua ? 'lua' : this.everConnected ? 'module' : 'unknown',
      everConnected: this.everConnected,
      localKeys: this.local.size,
      lastError: this.lastError ? this.lastError.message : null,
    };
  }

  /** Closes the connection if this limiter opened it (a program that keeps one open never exits). */
  async close() {
    if (this.ownsClient) await this.transport.quit(this.options.connectTimeoutMs).catch(() => {});
  }

  key(clientId) {
    const id = policyOf.clientId(clientId);
    if (!this.prefix) return id;
    return Buffer.isBuffer(id) ? Buffer.concat([Buffer.from(this.prefix), id]) : this.prefix + id;
  }

  /**
   * One check. Resolves a boolean for 'allow' (isAllowed), else the decision. Written with
   * explicit promises, not async/await: each await is a microtask hop, and on loopback the
   * hops were most of what the client added to a call (bench/clients_node.js).
   */
  check(clientId, opts, op) {
    let req;
    try {
      const key = this.key(clientId);
      const { cost, inline } = opts === NO_OPTIONS ? NO_CHECK : policyOf.checkOptions(opts);
      const mk = mapKey(key);
      req = { op, key, mk, cost, inline, check: true, numbers: op !== 'allow' || this.denied.enabled, withPolicy: op !== 'allow' };
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.denied.keys.size > 0) {
      const hit = this.denied.get(req.mk, policyId(req), req.cost);
      if (hit) {
        this.counts.cached += 1;
        return Promise.resolve(op === 'allow' ? false : hit);
      }
    }
    if (!this.breaker.allow()) return Promise.resolve(this.fallback(req));
    return this.call(req);
  }

  /** Sends a request within its deadline and resolves its value; failures go to recover(). */
  call(req) {
    const now = performance.now();
    // Calls without a fallback may wait for a first connection; checks never wait past timeoutMs.
    req.ms = req.check || this.everConnected ? this.options.timeoutMs : Math.max(this.options.timeoutMs, this.options.connectTimeoutMs);
    req.startedAt = now;
    req.until = now + req.ms;
    return this.attempt(req).then(
      (reply) => this.decode(req, reply),
      (err) => this.recover(err, req),
    );
  }

  /** One send of `req` (module command or script) under its deadline: the raw reply, or a LuaReply. */
  attempt(req) {
    const t = this.transport;
    if (this.useLua && performance.now() - this.luaSince > MODULE_RECHECK_MS) this.useLua = false;
    if (req.withPolicy && !this.useLua && !this.moduleWithPolicy) req.withPolicy = false;
    let call;
    if (!t.isReady(req.key)) call = cancellable(this.sendWhenReady(req));
    else if (this.useLua || req.forceLua) call = cancellable(this.runScript(req));
    else call = t.start(req.key, moduleArgs(req));
    const entry = this.deadlines.add(req.until, req.ms, call);
    return call.promise.then(
      (reply) => {
        this.deadlines.settle(entry);
        this.answered();
        return reply;
      },
      (err) => {
        this.deadlines.settle(entry);
        if (t.isReply(err)) {
          // Redis is there (the breaker hears about it once recover() has read the error).
          this.lastAnswerAt = performance.now();
          this.everConnected = true;
        }
        throw err;
      },
    );
  }

  async sendWhenReady(req) {
    if (!(await this.transport.whenReady(req.key, req.until))) {
      throw this.connectionError && !this.transport.isReady(req.key)
        ? new Unavailable(`Redis is not connected: ${this.connectionError.message}`, { cause: this.connectionError })
        : new Unavailable('Redis is not connected');
    }
    if (this.useLua || req.forceLua) return this.runScript(req);
    return this.transport.send(req.key, moduleArgs(req));
  }

  async runScript(req) {
    const argv = luaArgs(req);
    return new LuaReply(await script.run((k, a) => this.transport.send(k, a), req.key, argv, this.scriptLoads, this.transport.nodeOf(req.key)));
  }

  /** A reply as the caller's value: a decision (a boolean for isAllowed) or the operation's value. */
  decode(req, reply) {
    const viaLua = reply instanceof LuaReply;
    const raw = viaLua ? reply.reply : reply;
    const op = OPS[req.op];
    if (!op.check) return op.decode(raw);
    this.counts[viaLua ? 'lua' : 'redis'] += 1;
    if (req.op === 'allow' && !viaLua && !req.numbers) return replies.allowed(raw);
    const r = replies.verdict(raw);
    const v = {
      allowed: r.allowed,
      limit: r.limit,
      remaining: r.remaining,
      retryAfterMs: r.retryAfterMs,
      resetAfterMs: r.resetAfterMs,
      binding: r.binding,
      headers: null,
      path: viaLua ? 'lua' : 'redis',
    };
    v.headers = replies.headers(v, r.policy || this.knownLimits(req));
    if (!v.allowed && this.denied.enabled) this.denied.put(req.mk, policyId(req), req.cost, { ...v, path: 'cached' });
    return req.op === 'allow' ? v.allowed : v;
  }

  /**
   * What a failed send becomes: the Lua path (no module), a retry without WITHPOLICY (an
   * older module), the policy stored again (Redis lost it), an error for the caller (the
   * server refused the call), or the failure policy (no answer, or a refusal to serve).
   */
  async recover(err, req) {
    if (err instanceof RateLimitError && !(err instanceof Unavailable)) throw err; // ours, before sending
    if (this.transport.classify(err) === 'unavailable') return this.unavailable(err, req);
    this.breaker.success(); // an answer: the call was wrong, not the server
    const message = String(err.message);
    if (!this.useLua && /unknown command/i.test(message)) {
      this.useLua = true;
      this.luaSince = performance.now();
      return this.retry(req);
    }
    if (req.withPolicy && !this.useLua && /syntax error/i.test(message)) {
      this.moduleWithPolicy = false;
      req.withPolicy = false;
      return this.retry(req);
    }
    if (!this.useLua && !req.migrated && /^WRONGTYPE/.test(message)) {
      // Perhaps a key the Lua fallback created before the module was loaded: move it over.
      req.migrated = true;
      try {
        await this.migrate(req);
      } catch (e) {
        return this.recover(e, req);
      }
      return this.retry(req);
    }
    const mapped = errors.commandError(err);
    const known = req.check && !req.reconfigured && mapped instanceof NoRateLimit ? this.policies.get(req.mk) : undefined;
    if (known) {
      // Redis lost the policy this limiter stored (a restart without persistence, FLUSHALL,
      // eviction): store it again, once, and check again, within the same deadline.
      req.reconfigured = true;
      try {
        await this.attempt({ op: 'configure', key: req.key, mk: req.mk, config: known, check: false, ms: req.ms, until: req.until });
      } catch (e) {
        return this.recover(e, req);
      }
      this.counts.reconfigured += 1;
      return this.retry(req);
    }
    throw mapped;
  }

  /**
   * A key the Lua fallback created, found by the module (WRONGTYPE): the script exports and
   * deletes it (or refuses it with ForeignKey: it holds someone else's data), and a
   * configured key is stored again with RL.CONFIG. Its usage is not carried over: at most
   * one window of usage is forgotten, once.
   */
  async migrate(req) {
    const step = (op, config) => ({ op, key: req.key, mk: req.mk, config, check: false, ms: req.ms, until: req.until });
    const exportReq = step('export');
    exportReq.forceLua = true;
    const exported = await this.attempt(exportReq);
    const e = exported instanceof LuaReply ? exported.reply : exported;
    if (!Array.isArray(e) || replies.allowed(e[0]) === false) return; // absent, or usage only: starts again
    const limits = replies.verdict([0, 0, 0, 0, 0, 0, 0, e[3]]).policy;
    const policy = policyOf.policy(limits.map((l) => (l.kind === 'sliding' ? { kind: 'sliding', limit: l.limit, windowMs: l.windowMs } : { limit: l.limit, windowMs: l.windowMs, burst: l.burst })));
    const idle = Number(e[1]);
    await this.attempt(step('configure', { policy, idleMs: idle > 0 ? BigInt(idle) : null, shadow: replies.allowed(e[2]) }));
  }

  retry(req) {
    return this.attempt(req).then(
      (reply) => this.decode(req, reply),
      (err) => this.recover(err, req),
    );
  }

  /** No answer: a breaker failure (unless Redis answered other calls meanwhile), then the failure policy. */
  unavailable(err, req) {
    const timedOut = err instanceof Unavailable && err.timeout;
    if (timedOut) this.counts.timeouts += 1;
    this.lastError = err;
    // Many calls in flight on a healthy Redis are an overload, not an outage: it answered
    // other calls while this one waited, so the breaker is not told, and the local limiter
    // (which counts apart from Redis, for outages) does not decide: Redis will still run the
    // command and count it.
    const overload = timedOut && this.lastAnswerAt > req.startedAt;
    if (!overload) {
      this.counts.errors += 1;
      this.breaker.failure();
    }
    if (req.check) return overload ? this.overloaded(req) : this.fallback(req);
    throw err instanceof Unavailable ? err : new Unavailable(`Redis did not answer: ${err.message}`, { cause: err });
  }

  answered() {
    this.lastAnswerAt = performance.now();
    this.everConnected = true;
    this.breaker.success();
  }

  /** 'degraded' when the circuit opens, 'recovered' when a probe succeeds (and onStateChange). */
  stateChanged(from, to) {
    let event = null;
    if (to === 'open' && from === 'closed') event = 'degraded';
    if (to === 'closed') event = 'recovered';
    if (!event) return;
    if (this.options.onStateChange) this.options.onStateChange(event, this.stats());
    this.emit(event, { error: this.lastError, stats: this.stats() });
  }

  /** The policy this process knows for a request's key: configured through this limiter (stored beats inline), else inline. */
  knownPolicy(req) {
    const configured = this.policies.size === 0 ? undefined : this.policies.get(req.mk);
    return configured ? configured.policy : req.inline;
  }

  /** The known policy's limits as [{limit, windowMs}] for headers, or null. */
  knownLimits(req) {
    const p = this.knownPolicy(req);
    return p ? p.limits : null;
  }

  remember(mk, config) {
    this.policies.delete(mk);
    this.policies.set(mk, config);
    if (this.policies.size > this.options.maxPolicies) this.policies.delete(this.policies.keys().next().value);
  }

  /** The failure policy's decision for a check Redis did not answer (a boolean for isAllowed). */
  fallback(req) {
    this.warnWithoutRedis();
    const known = this.knownPolicy(req);
    const onError = this.options.onError;
    let v;
    if (onError === 'local' && known) {
      const r = this.local.check(req.mk, policyOf.scaled(known, this.share), req.cost, req.op === 'peek');
      this.counts.local += 1;
      v = {
        allowed: r.allowed,
        limit: Number(r.limit),
        remaining: Number(r.remaining),
        retryAfterMs: Number(r.retryAfterMs),
        resetAfterMs: Number(r.resetAfterMs),
        binding: r.binding,
        path: 'local',
      };
    } else if (onError === 'deny') {
      this.counts.failedClosed += 1;
      const retry = Math.max(this.breaker.retryInMs(), 1);
      v = { allowed: false, limit: known ? Number(known.limits[0].burst) : 0, remaining: 0, retryAfterMs: retry, resetAfterMs: retry, binding: 0, path: 'failed_closed' };
    } else {
      // 'allow', or 'local' for a key whose policy this process does not know.
      this.counts.failedOpen += 1;
      const burst = known ? Number(known.limits[0].burst) : 0;
      v = { allowed: true, limit: burst, remaining: burst, retryAfterMs: -1, resetAfterMs: 0, binding: 0, path: 'failed_open' };
    }
    if (req.op === 'allow') return v.allowed;
    v.headers = replies.headers(v, known ? known.limits : null);
    return v;
  }

  /**
   * A check that ran out of time while Redis was answering other calls: denied (retry after
   * one timeout), or allowed with onError 'allow'. Never the local limiter, whose count is
   * apart from Redis's: 500 concurrent checks with limit 10 must admit 10, not 10 + 10.
   */
  overloaded(req) {
    const known = this.knownPolicy(req);
    const burst = known ? Number(known.limits[0].burst) : 0;
    let v;
    if (this.options.onError === 'allow') {
      this.counts.failedOpen += 1;
      v = { allowed: true, limit: burst, remaining: burst, retryAfterMs: -1, resetAfterMs: 0, binding: 0, path: 'failed_open' };
    } else {
      this.counts.failedClosed += 1;
      const retry = this.options.timeoutMs;
      v = { allowed: false, limit: burst, remaining: 0, retryAfterMs: retry, resetAfterMs: retry, binding: 0, path: 'failed_closed' };
    }
    if (req.op === 'allow') return v.allowed;
    v.headers = replies.headers(v, known ? known.limits : null);
    return v;
  }

  /** Until Redis has answered once, a warning (at most once a minute) that checks are decided without it. */
  warnWithoutRedis() {
    if (this.everConnected) return;
    const now = performance.now();
    if (now - this.warnedAt < WARN_EVERY_MS) return;
    this.warnedAt = now;
    const where = this.url ? `at ${drivers.redact(this.url)}` : '(the client given)';
    const cause = this.lastError || this.connectionError;
    this.options.logger.warn(
      `distributed-rate-limiter: Redis ${where} has not answered yet${cause ? ` (${cause.message})` : ''}; ` +
        `checks are decided without it (onError '${this.options.onError}') until it does. Check the URL and that Redis is running; await limiter.ready() to fail fast.`,
    );
  }
}

/** A reply from the Lua script (always the numbers), told apart from the module's. */
class LuaReply {
  constructor(reply) {
    this.reply = reply;
  }
}

function timeoutError(ms) {
  const err = new Unavailable(`no answer from Redis within ${ms} ms`);
  err.timeout = true;
  return err;
}

/** The deny cache's policy part of a request: the inline policy, or '' (the stored one). */
function policyId(req) {
  return req.inline ? req.inline.id : '';
}

/** A Map key for a Redis key: Buffers compare by identity, so binary keys become strings. */
function mapKey(key) {
  return typeof key === 'string' ? key : `\0buf:${key.toString('latin1')}`;
}

module.exports = { DistributedRateLimiter, mapKey };
