'use strict';
// The engine under DistributedRateLimiter (limiter.js, the API): one flow for every
// operation of the table (operations.js) over the module, the Lua fallback when the server
// has no module, and the failure policy (failure.js) when Redis does not answer in time.
//
// Path of one check: validate (InvalidArgument, nothing sent) -> the deny cache (a denial
// still in force answers from memory) -> breaker closed? -> the module (RL.ALLOW /
// RL.THROTTLE / RL.PEEK / RL.RESERVE / RL.ACQUIRE), or the Lua script once the server said
// "unknown command" -> on a timeout, a connection error or a refusal to write, the failure
// policy: 'allow', 'deny' or 'local' (the same limits in process, at `localShare` of each).
// Every step of one call shares one deadline, `timeoutMs` from its start (the first call
// included). Other operations take the same path without the deny cache, the breaker and
// the failure policy: they reject with Unavailable.

const { EventEmitter } = require('events');
const policyOf = require('./policy');
const replies = require('./replies');
const script = require('./script');
const errors = require('./errors');
const failure = require('./failure');
const { OPS, moduleArgs, luaArgs } = require('./operations');
const { Breaker } = require('./breaker');
const { LocalLimiter } = require('./local');
const { DenyCache } = require('./denycache');
const { Deadlines } = require('./deadline');
const { cancellable } = require('./drivers/base');
const drivers = require('./drivers');
const { resolve: resolveOptions } = require('./options');
const { telemetryOf } = require('./telemetry');

const { Unavailable, ConfigurationError, RateLimitError, NoRateLimit } = errors;

/** The options of a check without options: no inline policy to parse. */
const NO_OPTIONS = Object.freeze({});
const NO_CHECK = Object.freeze({ cost: 1n, inline: null });
/** How long a limiter trusts "no module here" before asking the module again, in ms. */
const MODULE_RECHECK_MS = 60_000;
/** While Redis has never answered, the warning that checks are decided without it, at most this often (ms). */
const WARN_EVERY_MS = 60_000;

class Engine extends EventEmitter {
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
    // OpenTelemetry (telemetry.js), before any connection (it may refuse the option): when it
    // records, checks run through the observed check; otherwise the plain one, no extra work.
    this.telemetry = telemetryOf(o.telemetry, () => this.breaker.state);
    if (this.telemetry !== null) this.check = this.telemetry.observe(this.check.bind(this));
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

  key(clientId) {
    const id = policyOf.clientId(clientId);
    if (!this.prefix) return id;
    return Buffer.isBuffer(id) ? Buffer.concat([Buffer.from(this.prefix), id]) : this.prefix + id;
  }

  /**
   * A check's request ({op, key, mk, cost, inline, ...}) from the caller's options; throws
   * InvalidArgument. A key this limiter configured is checked without its inline policy, so
   * that a lost policy shows (and is stored again) instead of the inline one taking over.
   */
  checkRequest(clientId, opts, op) {
    const key = this.key(clientId);
    const { cost, inline } = opts === NO_OPTIONS ? NO_CHECK : policyOf.checkOptions(opts);
    const mk = mapKey(key);
    const configured = inline !== null && this.policies.size > 0 && this.policies.has(mk);
    return { op, key, mk, cost, inline: configured ? null : inline, check: true, numbers: op !== 'allow' || this.denied.enabled, withPolicy: Boolean(OPS[op].withPolicy) };
  }

  /** One check, from the caller's options: a boolean for 'allow' (isAllowed), else the decision. */
  check(clientId, opts, op) {
    let req;
    try {
      req = this.checkRequest(clientId, opts, op);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.decide(req);
  }

  /**
   * One check's request through the deny cache, the breaker and Redis. Written with explicit
   * promises, not async/await: each await is a microtask hop, and on loopback the hops were
   * most of what the client added to a call (bench/clients_node.js).
   */
  decide(req) {
    if (OPS[req.op].cached && this.denied.keys.size > 0) {
      const hit = this.denied.get(req.mk, policyId(req), req.cost);
      if (hit) {
        this.counts.cached += 1;
        return Promise.resolve(req.op === 'allow' ? false : hit);
      }
    }
    if (!this.breaker.allow()) return this.fallback(req);
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
    else if (this.viaScript(req)) call = cancellable(this.runScript(req));
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
    if (this.viaScript(req)) return this.runScript(req);
    return this.transport.send(req.key, moduleArgs(req));
  }

  /**
   * Whether `req` goes to the Lua script now, remembered on it: its error is read by the path
   * it took, not by the path later calls take (many calls in flight when the module turns
   * out to be missing: each of them switches, none throws "unknown command").
   */
  viaScript(req) {
    req.viaLua = this.useLua || Boolean(req.forceLua);
    return req.viaLua;
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
    if (req.op === 'allow' && !viaLua && !req.numbers) {
      this.counts.redis += 1;
      return replies.allowed(raw);
    }
    const r = op.grant ? replies.grant(raw, op.grant) : replies.verdict(raw);
    const configured = req.withPolicy && !req.reconfigured && r.source !== null && r.source !== 'stored' ? this.policies.get(req.mk) : undefined;
    // Redis lost this limiter's policy and decided with another (a server default).
    if (configured) return this.reconfigure(req, configured);
    this.counts[viaLua ? 'lua' : 'redis'] += 1;
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
    if (op.grant) v[op.grant] = r.id;
    if (!v.allowed && op.cached && this.denied.enabled) this.denied.put(req.mk, policyId(req), req.cost, { ...v, path: 'cached' });
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
    if (!req.viaLua && /unknown command/i.test(message)) {
      // A module older than this command must not send the key to the Lua script: the
      // script's hash would then meet the module's commands (WRONGTYPE) and lose its state.
      if (OPS[req.op].newer) {
        let loaded;
        try {
          loaded = await this.moduleLoaded(req);
        } catch (e) {
          return this.recover(e, req);
        }
        if (loaded) throw new errors.CommandError(`the rl module on this server has no ${OPS[req.op].command(req)}: load a newer module (it came with issues 19 and 20)`, { cause: err });
      }
      this.useLua = true;
      this.luaSince = performance.now();
      return this.retry(req);
    }
    if (req.withPolicy && !req.viaLua && /syntax error/i.test(message)) {
      this.moduleWithPolicy = false;
      req.withPolicy = false;
      return this.retry(req);
    }
    if (!req.viaLua && !req.migrated && /^WRONGTYPE/.test(message)) {
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
    const known = OPS[req.op].inline && !req.reconfigured && mapped instanceof NoRateLimit ? this.policies.get(req.mk) : undefined;
    if (known) return this.reconfigure(req, known);
    throw mapped;
  }

  /** Whether the rl module answers on `req`'s node (RL.INFO of the key, within the call's deadline). */
  async moduleLoaded(req) {
    try {
      await this.attempt({ op: 'info', key: req.key, mk: req.mk, check: false, ms: req.ms, until: req.until });
      return true;
    } catch (err) {
      if (this.transport.classify(err) === 'unavailable') throw err;
      return !/unknown command/i.test(String(err.message));
    }
  }

  /**
   * Redis lost the policy this limiter stored (a restart without persistence, FLUSHALL,
   * eviction): store it again, once, and repeat the call, within the same deadline.
   */
  async reconfigure(req, known) {
    req.reconfigured = true;
    try {
      await this.attempt({ op: 'configure', key: req.key, mk: req.mk, config: known, check: false, ms: req.ms, until: req.until });
    } catch (e) {
      return this.recover(e, req);
    }
    this.counts.reconfigured += 1;
    return this.retry(req);
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
    const pol = policyOf.policy(limits.map((l) => (l.kind === 'gcra' ? { limit: l.limit, windowMs: l.windowMs, burst: l.burst } : { kind: l.kind, limit: l.limit, windowMs: l.windowMs })));
    const penalty = Array.isArray(e[4]) && e[4].length === 2 ? policyOf.penaltyOf({ penaltyMs: Number(e[4][0]), penaltyMaxMs: Number(e[4][1]) }) : null;
    const policy = penalty ? policyOf.fromLimits(pol.limits, penalty) : pol;
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
    if (this.telemetry !== null) this.telemetry.failed(req.op);
    if (!overload) {
      this.counts.errors += 1;
      this.breaker.failure();
    }
    if (req.check) return overload ? failure.overloaded(this, req) : this.fallback(req);
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

  /** What this process knows of a request's key: configured here ({policy, idleMs, shadow}; stored beats inline), else the inline policy, else null. */
  knownConfig(req) {
    const configured = this.policies.size === 0 ? undefined : this.policies.get(req.mk);
    if (configured) return configured;
    return req.inline ? { policy: req.inline, idleMs: null, shadow: false } : null;
  }

  /** The known policy's limits as [{limit, windowMs}] for headers, or null. */
  knownLimits(req) {
    const c = this.knownConfig(req);
    return c ? c.policy.limits : null;
  }

  remember(mk, config) {
    this.policies.delete(mk);
    this.policies.set(mk, config);
    if (this.policies.size > this.options.maxPolicies) this.policies.delete(this.policies.keys().next().value);
  }

  /** The failure policy's decision (failure.js), as a promise: the local limiter may refuse the call. */
  fallback(req) {
    try {
      return Promise.resolve(failure.fallback(this, req));
    } catch (err) {
      return Promise.reject(err);
    }
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

module.exports = { Engine, mapKey, NO_OPTIONS };
