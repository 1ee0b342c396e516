'use strict';
// `distributed-rate-limiter/rate-limiter-flexible`: RateLimiterDRL, RateLimiterRedis's options
// and methods over the limiter, so that the migration is one line:
//
//   - const limiter = new RateLimiterRedis({ storeClient: redis, points: 10, duration: 1 });
//   + const limiter = new RateLimiterDRL({ storeClient: redis, points: 10, duration: 1 });
//
// It resolves and rejects as the peer does: consume() resolves a RateLimiterRes, rejects with
// a RateLimiterRes when there are not enough points, and rejects with an Error when Redis does
// not answer (or asks `insuranceLimiter`). With rate-limiter-flexible installed its own
// RateLimiterRes and RateLimiterCompatibleAbstract are used: `instanceof` checks and the
// peer's wrappers (RateLimiterUnion, RateLimiterQueue, BurstyRateLimiter, ...) keep working.
//
// `points` per `duration` is the module's SLIDING limit (at most `points` in ANY `duration`:
// the peer's fixed window admits up to twice that around a window's edge) when it fits
// SLIDING's bounds (points <= 1000, duration <= 2^32 - 1 ms), else GCRA; `execEvenly` is GCRA
// (the leaky bucket it imitates) plus the peer's delay; `kind` chooses. `blockDuration` is the
// module's penalty (a denial blocks the key for blockDuration). `inMemoryBlockOnConsumed` is
// the limiter's deny cache. A denied consume counts nothing (the peer counts it), so the
// numbers of a RateLimiterRes are told in the peer's arithmetic: a rejection's consumedPoints
// is what the key holds plus the points asked (above `points`, as the peer's), and get()
// tells more than `points` as soon as a consume would be rejected.

const { ConfigurationError, RateLimitError, Unavailable } = require('../errors');
const { integer, MAX_COST, MAX_BLOCK_MS, MAX_WINDOW_MS } = require('../policy');
const { limiterFrom, checkKind, windowLimit } = require('./common');

let peer = null;
try {
  peer = require('rate-limiter-flexible');
} catch {
  peer = null; // optional: the same shapes without it
}

/** The peer's result, or one of the same shape when the peer is not installed. */
const RateLimiterRes = peer ? peer.RateLimiterRes : class RateLimiterRes {
  constructor(remainingPoints = 0, msBeforeNext = 0, consumedPoints = 0, isFirstInDuration = false) {
    this.remainingPoints = remainingPoints;
    this.msBeforeNext = msBeforeNext;
    this.consumedPoints = consumedPoints;
    this.isFirstInDuration = Boolean(isFirstInDuration);
  }

  toJSON() {
    return { remainingPoints: this.remainingPoints, msBeforeNext: this.msBeforeNext, consumedPoints: this.consumedPoints, isFirstInDuration: this.isFirstInDuration };
  }

  toString() {
    return JSON.stringify(this.toJSON());
  }

  [Symbol.for('nodejs.util.inspect.custom')]() {
    return this.toJSON();
  }
};
const Base = peer ? peer.RateLimiterCompatibleAbstract : class {};

/** RateLimiterRedis's options taken here (the storeClient is the limiter's `client`). */
const PEER_OPTIONS = ['storeClient', 'keyPrefix', 'points', 'duration', 'blockDuration', 'execEvenly', 'execEvenlyMinDelayMs', 'inMemoryBlockOnConsumed', 'inMemoryBlockDuration', 'insuranceLimiter'];
/** Options of RateLimiterRedis that mean nothing here: the module never queues, and the driver is found from the client. */
const IGNORED = ['rejectIfRedisNotReady', 'useRedisPackage', 'useRedis3AndLowerPackage', 'storeType'];
/** Options that cannot be honoured, and why. */
const REFUSED = {
  customIncrTtlLuaScript: 'the module (or the shared Lua fallback) decides: a script of your own has no place here',
  blockOnConsumed: 'a denied consume counts nothing here, so a key never reaches a count above points: use blockDuration (a block from the first denial)',
};
/** Decisions taken without Redis: a store failure for the peer (an Error, or the insuranceLimiter). */
const OUTAGE = new Set(['failed_open', 'failed_closed', 'local']);
/** duration 0 (the peer's "never expires"): the longest window the module takes, 10^12 ms (about 31 years). */
const FOREVER_MS = Number(MAX_WINDOW_MS);
/** A penalty's hold (reserve, then settle at once): charged at its 1 unit if the settle is lost. */
const PENALTY_HOLD_MS = 60_000;

class RateLimiterDRL extends Base {
  /**
   * RateLimiterRedis's options (storeClient, keyPrefix, points, duration, blockDuration,
   * execEvenly, execEvenlyMinDelayMs, inMemoryBlockOnConsumed, inMemoryBlockDuration,
   * insuranceLimiter), plus `kind` ('auto' | 'sliding' | 'gcra') and the limiter's own
   * options (url, prefix, timeoutMs, onError, ...) or {limiter}. Without `onError`, a
   * request Redis did not decide rejects with an Error or goes to `insuranceLimiter`, as in
   * the peer; with it, the limiter's failure policy decides.
   */
  constructor(opts = {}) {
    super();
    const options = { ...(opts || {}) };
    for (const [name, why] of Object.entries(REFUSED)) {
      if (options[name] !== undefined && options[name] !== 0) throw new ConfigurationError(`RateLimiterDRL: ${name} is not supported: ${why}`, name);
    }
    for (const name of IGNORED) delete options[name];
    if (options.storeClient !== undefined) {
      if (options.client !== undefined) throw new ConfigurationError('RateLimiterDRL: give storeClient or client, not both', 'client');
      options.client = options.storeClient;
    }
    delete options.storeClient;
    const ownsFailures = options.onError !== undefined;
    const memoryBlock = options.inMemoryBlockOnConsumed !== undefined || options.inMemoryBlockDuration !== undefined;
    if (!options.limiter) {
      // The peer asks its store every time unless inMemoryBlockOnConsumed: the deny cache off by default.
      if (options.denyCacheMaxMs === undefined) options.denyCacheMaxMs = denyCacheMs(options);
      if (!ownsFailures) options.onError = 'deny'; // outages become Errors here, never local decisions
    } else if (memoryBlock) {
      throw new ConfigurationError('RateLimiterDRL: inMemoryBlockOnConsumed is the limiter\'s deny cache: set denyCacheMaxMs on the limiter you give', 'inMemoryBlockOnConsumed');
    }
    const names = [...PEER_OPTIONS.filter((n) => n !== 'storeClient'), 'kind'];
    const { limiter, owned, own } = limiterFrom(options, names, 'RateLimiterDRL', (o) => checkOptions(o, !ownsFailures));
    this.limiter = limiter;
    this.owned = owned;
    this.peerFailures = !ownsFailures;
    this.kind = checkKind(own.kind, 'RateLimiterDRL');
    this.keyPrefix = own.keyPrefix === undefined ? 'rlflx' : own.keyPrefix;
    this.points = own.points;
    this.duration = own.duration;
    this.blockDuration = own.blockDuration;
    this.execEvenly = own.execEvenly;
    this.execEvenlyMinDelayMs = own.execEvenlyMinDelayMs;
    this.inMemoryBlockOnConsumed = own.inMemoryBlockOnConsumed ? Number(own.inMemoryBlockOnConsumed) : 0;
    this.inMemoryBlockDuration = own.inMemoryBlockDuration ? Number(own.inMemoryBlockDuration) : 0;
    this.insuranceLimiter = own.insuranceLimiter;
    this.warned = new Set();
    this.cached = { key: null, policy: null, plain: null };
  }

  get points() {
    return this._points;
  }

  set points(value) {
    this._points = checkPoints(value);
  }

  get duration() {
    return this._duration;
  }

  set duration(value) {
    this._duration = checkDuration(value);
  }

  get msDuration() {
    return this.duration * 1000;
  }

  get blockDuration() {
    return this._blockDuration;
  }

  set blockDuration(value) {
    this._blockDuration = checkBlockDuration(value);
  }

  get msBlockDuration() {
    return this.blockDuration * 1000;
  }

  get execEvenly() {
    return this._execEvenly;
  }

  set execEvenly(value) {
    this._execEvenly = Boolean(value);
  }

  get execEvenlyMinDelayMs() {
    return this._execEvenlyMinDelayMs === undefined ? Math.ceil(this.msDuration / this.points) : this._execEvenlyMinDelayMs;
  }

  set execEvenlyMinDelayMs(value) {
    this._execEvenlyMinDelayMs = value;
  }

  get keyPrefix() {
    return this._keyPrefix;
  }

  set keyPrefix(value) {
    this._keyPrefix = value;
  }

  get insuranceLimiter() {
    return this._insuranceLimiter;
  }

  /** As the peer: the insurance limiter takes this one's blockDuration and execEvenly. */
  set insuranceLimiter(value) {
    this._insuranceLimiter = checkInsurance(value);
    if (value) {
      value.blockDuration = this.blockDuration;
      value.execEvenly = this.execEvenly;
    }
  }

  /** The key as the peer names it: `keyPrefix:key` (the limiter adds its own prefix in Redis). */
  getKey(key) {
    return this.keyPrefix.length > 0 ? `${this.keyPrefix}:${key}` : String(key);
  }

  parseKey(rlKey) {
    return this.keyPrefix.length > 0 ? rlKey.substring(this.keyPrefix.length + 1) : rlKey;
  }

  /**
   * The limit of the current points, duration and blockDuration (the peer lets them change at
   * run time): {policy, plain} (plain: without the penalty, for a penalty's own reserve).
   */
  policy() {
    const key = `${this.points}:${this.duration}:${this.blockDuration}:${this.execEvenly}`;
    if (this.cached.key === key) return this.cached;
    const forever = this.duration === 0;
    const kind = this.kind !== 'auto' ? this.kind : forever || this.execEvenly ? 'gcra' : 'auto';
    const plain = windowLimit(this.points, forever ? FOREVER_MS : this.msDuration, kind);
    const policy = this.blockDuration > 0 ? { ...plain, penaltyMs: Math.min(Math.ceil(this.msBlockDuration), Number(MAX_BLOCK_MS)) } : plain;
    this.cached = { key, policy, plain };
    return this.cached;
  }

  /**
   * Consumes `points` (RL.THROTTLE, cost = points): resolves a RateLimiterRes; rejects with one
   * when there are not enough points (nothing is counted then), with an Error when Redis did
   * not decide (or what insuranceLimiter.consume gives).
   */
  async consume(key, pointsToConsume = 1, options = {}) {
    const args = [key, pointsToConsume, options];
    let d;
    try {
      const cost = points(pointsToConsume);
      this.ignoredOptions(options);
      d = await this.limiter.throttle(this.getKey(key), { cost, ...this.policy().policy });
      this.answered(d);
    } catch (err) {
      return this.insured(err, 'consume', args);
    }
    const res = rateLimiterRes(d, Number(pointsToConsume));
    if (!d.allowed) throw res;
    return this.evenly(res);
  }

  /**
   * Adds `points` whatever the limit (a failed login, say): reserves 1 and settles it to
   * `points`, which charges the rest even past the limit, at most one full window's worth
   * (the module's debt bound). On a key that is already full nothing more is charged. Resolves
   * the key's RateLimiterRes afterwards.
   */
  async penalty(key, pointsToAdd = 1, options = {}) {
    const args = [key, pointsToAdd, options];
    try {
      const n = points(pointsToAdd);
      const id = this.getKey(key);
      const { plain, policy } = this.policy();
      const r = await this.limiter.reserve(id, 1, { ...plain, holdMs: PENALTY_HOLD_MS });
      this.answered(r);
      if (r.allowed && r.reservation !== null) await this.limiter.settle(id, r.reservation, n);
      return await this.read(id, policy, false);
    } catch (err) {
      return this.insured(err, 'penalty', args);
    }
  }

  /** Gives `points` back (RL.REFUND), never below nothing consumed; resolves the key's RateLimiterRes afterwards. */
  async reward(key, pointsToGive = 1, options = {}) {
    const args = [key, pointsToGive, options];
    try {
      const n = points(pointsToGive);
      const id = this.getKey(key);
      const { policy } = this.policy();
      await this.limiter.refund(id, n, policy);
      return await this.read(id, policy, false);
    } catch (err) {
      return this.insured(err, 'reward', args);
    }
  }

  /** The key's RateLimiterRes without consuming (RL.PEEK), or null when it holds nothing. */
  async get(key, options = {}) {
    try {
      return await this.read(this.getKey(key), this.policy().policy, true);
    } catch (err) {
      return this.insured(err, 'get', [key, options]);
    }
  }

  /** Blocks the key for `secDuration` seconds (RL.BLOCK; 0: for good, 10^12 ms). */
  async block(key, secDuration, options = {}) {
    try {
      const ms = secDuration > 0 ? Math.min(Math.ceil(secDuration * 1000), Number(MAX_BLOCK_MS)) : Number(MAX_BLOCK_MS);
      await this.limiter.block(this.getKey(key), ms);
      return new RateLimiterRes(0, secDuration > 0 ? ms : -1, this.points + 1);
    } catch (err) {
      return this.insured(err, 'block', [key, secDuration, options]);
    }
  }

  /**
   * Forgets the key (RL.RESET: usage and block): true if it existed, as the peer's DEL. Asked
   * with RL.INFO first: RL.RESET replies the backlog it forgot, 0 for a key that is only
   * blocked or has drained.
   */
  async delete(key, options = {}) {
    try {
      const id = this.getKey(key);
      const existed = (await this.limiter.info(id)) !== null;
      await this.limiter.reset(id);
      return existed;
    } catch (err) {
      return this.insured(err, 'delete', [key, options]);
    }
  }

  /**
   * Not supported: the peer's set() writes a count with a TTL of its own; here a key's usage
   * drains by its policy and cannot be written. Rejects with a RateLimitError saying so.
   */
  set() {
    return Promise.reject(new RateLimitError('RateLimiterDRL.set() is not supported: a key\'s usage drains by its policy and cannot be written; use penalty(), reward(), block() or delete()'));
  }

  /** Forgets this limiter's in-memory blocks (the deny cache's entries of its keys). */
  deleteInMemoryBlockedAll() {
    const prefix = this.limiter.prefix + (this.keyPrefix ? `${this.keyPrefix}:` : '');
    for (const k of [...this.limiter.denied.keys.keys()]) if (k.startsWith(prefix)) this.limiter.denied.forget(k);
  }

  /** Closes the connection this limiter opened (none when given a storeClient or a limiter). */
  async close() {
    if (this.owned) await this.limiter.close();
  }

  /** A RateLimiterRes of the key as it is (RL.PEEK), or null when `orNull` and it holds nothing. */
  async read(id, policy, orNull) {
    const d = await this.limiter.peek(id, policy);
    this.answered(d);
    const limit = d.limit;
    if (!d.allowed) return new RateLimiterRes(0, d.retryAfterMs >= 0 ? d.retryAfterMs : d.resetAfterMs, limit + 1);
    // A peek's remaining is after the request it asks about.
    const held = Math.max(limit - d.remaining - 1, 0);
    if (orNull && held === 0) return null;
    return new RateLimiterRes(limit - held, d.resetAfterMs, held);
  }

  /** A decision Redis did not take is a store failure for the peer (unless onError was given). */
  answered(d) {
    if (this.peerFailures && OUTAGE.has(d.path)) {
      throw new Unavailable(`Redis did not decide (${d.path}): ${this.limiter.lastError ? this.limiter.lastError.message : 'no answer in time'}`, { cause: this.limiter.lastError || undefined });
    }
  }

  /** An error: to insuranceLimiter[fn] when there is one (as the peer), else rejected. */
  insured(err, fn, args) {
    if (err instanceof RateLimiterRes || !this.insuranceLimiter) throw err;
    return this.insuranceLimiter[fn](...args);
  }

  /** The peer's execEvenly: an allowed consume resolves after a delay that spreads the rest over the window. */
  evenly(res) {
    if (!this.execEvenly || res.msBeforeNext <= 0 || res.isFirstInDuration) return res;
    let delay = Math.ceil(res.msBeforeNext / (res.remainingPoints + 2));
    if (delay < this.execEvenlyMinDelayMs) delay = res.consumedPoints * this.execEvenlyMinDelayMs;
    res.msBeforeNext = Math.max(res.msBeforeNext - delay, 0);
    return new Promise((resolve) => setTimeout(resolve, delay, res));
  }

  /** Per-call options of the peer this adapter does not take: logged once each (never thrown from a request). */
  ignoredOptions(options) {
    if (!options || options.customDuration === undefined || this.warned.has('customDuration')) return;
    this.warned.add('customDuration');
    (this.limiter.options.logger || console).warn('distributed-rate-limiter/rate-limiter-flexible: consume(..., {customDuration}) is ignored: a key keeps the duration of its limiter (make a RateLimiterDRL with that duration)');
  }
}

function checkPoints(value) {
  if (!Number.isSafeInteger(value) || value < 1) throw new ConfigurationError('RateLimiterDRL: points must be set and must be an integer >= 1', 'points');
  return value;
}

function checkDuration(value) {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new ConfigurationError('RateLimiterDRL: duration must be set and must be a finite, non-negative number', 'duration');
  return value;
}

function checkBlockDuration(value) {
  const v = value === undefined ? 0 : value;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new ConfigurationError('RateLimiterDRL: blockDuration must be a non-negative number of seconds', 'blockDuration');
  return v;
}

function checkInsurance(value) {
  if (value !== undefined && (value === null || typeof value.consume !== 'function')) throw new ConfigurationError('RateLimiterDRL: insuranceLimiter must be a rate-limiter-flexible limiter', 'insuranceLimiter');
  return value;
}

/** The peer's options checked before a limiter is made (the peer's own messages where it has them). */
function checkOptions(o, peerFailures) {
  checkKind(o.kind, 'RateLimiterDRL');
  if (o.keyPrefix !== undefined && typeof o.keyPrefix !== 'string') throw new ConfigurationError('RateLimiterDRL: keyPrefix must be a string', 'keyPrefix');
  checkPoints(o.points);
  checkDuration(o.duration);
  checkBlockDuration(o.blockDuration);
  checkInsurance(o.insuranceLimiter);
  const onConsumed = o.inMemoryBlockOnConsumed ? Number(o.inMemoryBlockOnConsumed) : 0;
  if (onConsumed > 0 && onConsumed < o.points) throw new ConfigurationError('RateLimiterDRL: inMemoryBlockOnConsumed option must be greater or equal "points" option', 'inMemoryBlockOnConsumed');
  if (o.inMemoryBlockDuration > 0 && onConsumed === 0) throw new ConfigurationError('RateLimiterDRL: inMemoryBlockOnConsumed option must be set up', 'inMemoryBlockDuration');
  if (o.insuranceLimiter !== undefined && !peerFailures) throw new ConfigurationError('RateLimiterDRL: give insuranceLimiter or onError, not both: both decide when Redis does not', 'insuranceLimiter');
}

/** A number of points as the limiter's cost (the peer's rule: integers only; here 1..10^9). */
function points(value) {
  if (typeof value === 'number' && !Number.isInteger(value)) throw new RateLimitError('Consuming decimal number of points is not supported by this package');
  return integer(value, MAX_COST, 'points must be an integer from 1 to 1000000000');
}

/**
 * A decision as a RateLimiterRes in the peer's arithmetic: allowed, what the key holds (first
 * in duration when that is just this request); denied, what it holds plus the points asked
 * (the peer counts rejected points too), 0 remaining, and the ms until the request would pass
 * (until the key is empty when it never can).
 */
function rateLimiterRes(d, asked) {
  const held = Math.max(d.limit - d.remaining, 0);
  if (d.allowed) return new RateLimiterRes(d.remaining, d.resetAfterMs, held, held === asked);
  return new RateLimiterRes(0, d.retryAfterMs >= 0 ? d.retryAfterMs : d.resetAfterMs, held + asked, false);
}

/** The deny cache of a limiter made here: the peer's in-memory block (0: off, as its default). */
function denyCacheMs(options) {
  if (!options.inMemoryBlockOnConsumed) return 0;
  // inMemoryBlockDuration 0: "for msBeforeNext", i.e. as long as the denial stands.
  return options.inMemoryBlockDuration > 0 ? Math.ceil(options.inMemoryBlockDuration * 1000) : Number.MAX_SAFE_INTEGER;
}

module.exports = { RateLimiterDRL, RateLimiterRes, rateLimiterRes };
