'use strict';
// `distributed-rate-limiter/express-rate-limit`: a Store for express-rate-limit 7 and 8.
//
//   app.use(rateLimit({ windowMs: 60_000, limit: 100, store: new DistributedRateLimiterStore({ url }) }));
//
// express-rate-limit counts and decides itself: `increment(key)` returns {totalHits,
// resetTime} and the request is denied when totalHits > limit. Here the module decides (at
// most `limit` in any `windowMs`: SLIDING, or GCRA above SLIDING's bounds; `kind` chooses)
// and its decision is told as a count: allowed, what the key holds (1..limit); denied,
// limit + 1 with `resetTime` when the request would pass (so Retry-After is exact). A denied
// request counts nothing, where express-rate-limit's MemoryStore counts it too: totalHits
// never goes past limit + 1.
//
// decrement(key) (skipFailedRequests / skipSuccessfulRequests) gives the unit back (a
// refund). express-rate-limit also decrements requests it denied (a 429 is a failed request),
// which counted nothing here: the store remembers, per key, its denials whose decrement may
// still come (in this process: the decrement comes from the process that incremented) and
// such a decrement gives nothing back. Without that, each 429 would refund an admitted
// request and a client could pass every other request.

const { ConfigurationError } = require('../errors');
const { limiterFrom, checkKind, windowLimit, countOf, resetMatching } = require('./common');

/** This store's keys: `<limiter prefix>erl:<key>`. */
const NAMESPACE = 'erl:';
/**
 * How long a denial waits for its decrement, at least, in ms. express-rate-limit 8 sends no
 * decrement after the returned resetTime; 7 sends it whenever the response ends. A 429 ends at
 * once, so this only bounds a slow handler's; a stale entry can only withhold one refund.
 */
const DENIAL_GRACE_MS = 5_000;
/** Keys whose pending denials are remembered (least recently denied first out). */
const MAX_LEDGER_KEYS = 100_000;
/** Full key prefixes in use in this process, with their policies: two stores sharing one would share buckets. */
const inUse = new Map();

/**
 * Per key, the denials whose decrement may still come (each with the instant after which it
 * cannot). `take` consumes the one that expires first: the decrements of denials are
 * interchangeable, and keeping the later ones keeps those most likely still to come.
 */
class DenialLedger {
  constructor(maxKeys = MAX_LEDGER_KEYS) {
    this.maxKeys = maxKeys;
    this.keys = new Map(); // key -> sorted array of expiry instants (ms)
  }

  add(key, untilMs) {
    const list = this.keys.get(key) || [];
    this.keys.delete(key);
    let i = list.length;
    while (i > 0 && list[i - 1] > untilMs) i -= 1;
    list.splice(i, 0, untilMs);
    this.keys.set(key, list);
    if (this.keys.size > this.maxKeys) this.keys.delete(this.keys.keys().next().value);
  }

  /** True if a denial of `key` was pending at `nowMs` (it is now settled): its decrement gives nothing back. */
  take(key, nowMs) {
    const list = this.keys.get(key);
    if (!list) return false;
    while (list.length && list[0] <= nowMs) list.shift();
    const taken = list.length > 0;
    if (taken) list.shift();
    if (list.length === 0) this.keys.delete(key);
    return taken;
  }

  forget(key) {
    this.keys.delete(key);
  }

  clear() {
    this.keys.clear();
  }
}

class DistributedRateLimiterStore {
  /**
   * @param {object} [options] the limiter's own options (url | client, prefix, onError,
   * timeoutMs, ...) or {limiter}; and `kind` ('auto' | 'sliding' | 'gcra'), `limit` and
   * `windowMs` (default: express-rate-limit's, from init()).
   */
  constructor(options = {}) {
    const { limiter, owned, own } = limiterFrom(options, ['kind', 'limit', 'windowMs'], 'DistributedRateLimiterStore', (o) => {
      checkKind(o.kind, 'DistributedRateLimiterStore');
      if (o.limit !== undefined) checkLimit(o.limit);
    });
    this.limiter = limiter;
    this.owned = owned;
    this.kind = checkKind(own.kind, 'DistributedRateLimiterStore');
    this.given = { limit: own.limit, windowMs: own.windowMs };
    /** express-rate-limit reads these: keys are prefixed (per limiter prefix) and shared by every instance. */
    this.prefix = limiter.prefix + NAMESPACE;
    this.localKeys = false;
    this.policy = null;
    this.limit = null;
    this.windowMs = null;
    this.trackDenials = false;
    this.ledger = new DenialLedger();
    if (own.limit !== undefined && own.windowMs !== undefined) this.setPolicy(own.limit, own.windowMs);
  }

  /**
   * Called by express-rate-limit with its options: the policy is its `limit` per `windowMs`
   * (unless given to the constructor). A `limit` function (a limit per request) cannot be
   * honoured by a store that decides: give the store its own `limit`.
   */
  init(options) {
    const limit = this.given.limit !== undefined ? this.given.limit : options.limit !== undefined ? options.limit : options.max;
    const windowMs = this.given.windowMs !== undefined ? this.given.windowMs : options.windowMs;
    if (typeof limit === 'function') {
      throw new ConfigurationError('DistributedRateLimiterStore: express-rate-limit\'s limit is a function; this store decides in Redis and needs one policy: give the store its own { limit } (or configure the keys with configureRateLimit)', 'limit');
    }
    this.setPolicy(limit, windowMs);
    this.trackDenials = Boolean(options.skipFailedRequests || options.skipSuccessfulRequests);
    const shared = inUse.get(this.prefix);
    if (shared !== undefined && shared !== this.policyText) {
      (this.limiter.options.logger || console).warn(`distributed-rate-limiter/express-rate-limit: two stores share the keys under '${this.prefix}' with different policies (${shared}; ${this.policyText}): their requests share one bucket. Give each rate limiter its own prefix.`);
    }
    inUse.set(this.prefix, this.policyText);
  }

  setPolicy(limit, windowMs) {
    checkLimit(limit);
    const one = windowLimit(limit, windowMs, this.kind);
    this.limit = limit;
    this.windowMs = one.windowMs;
    // limit 0 denies everything (express-rate-limit 7 and 8): nothing to ask Redis.
    this.policy = limit === 0 ? null : one;
    this.policyText = `${limit} per ${one.windowMs} ms`;
  }

  id(key) {
    return NAMESPACE + key;
  }

  ready() {
    if (this.limit === null) throw new ConfigurationError('DistributedRateLimiterStore: init() was not called: pass the store to express-rate-limit, or give it { limit, windowMs }', 'limit');
  }

  /** Counts a request (RL.THROTTLE): {totalHits, resetTime}; totalHits > limit means denied. */
  async increment(key) {
    this.ready();
    if (this.policy === null) return { totalHits: 1, resetTime: new Date(Date.now() + this.windowMs) };
    const d = await this.limiter.throttle(this.id(key), this.policy);
    const c = countOf(d, this.limit);
    const now = Date.now();
    if (!d.allowed && this.trackDenials) this.ledger.add(key, now + Math.max(c.ms, DENIAL_GRACE_MS));
    return { totalHits: c.hits, resetTime: new Date(now + c.ms) };
  }

  /** Gives back the unit of a request that is not to count (a refund), or nothing for a request that was denied. */
  async decrement(key) {
    this.ready();
    if (this.ledger.take(key, Date.now()) || this.policy === null) return;
    await this.limiter.refund(this.id(key), 1, this.policy);
  }

  /** The key's count without counting (RL.PEEK): {totalHits, resetTime}, or undefined when it holds nothing. */
  async get(key) {
    this.ready();
    if (this.policy === null) return undefined;
    const d = await this.limiter.peek(this.id(key), this.policy);
    const c = countOf(d, this.limit, true);
    if (c.hits === 0) return undefined;
    return { totalHits: c.hits, resetTime: new Date(Date.now() + c.ms) };
  }

  /** Forgets the key's usage (RL.RESET). */
  async resetKey(key) {
    this.ledger.forget(key);
    await this.limiter.reset(this.id(key));
  }

  /**
   * Forgets every key of this store's prefix: SCAN on every master and a reset per key (an
   * admin call: it reads the keyspace). Keys counted while it runs may be kept.
   */
  async resetAll() {
    this.ledger.clear();
    await resetMatching(this.limiter, NAMESPACE);
  }

  /** Closes the connection the store opened (none when given a limiter or a client). */
  async shutdown() {
    if (this.owned) await this.limiter.close();
  }
}

function checkLimit(limit) {
  if (!Number.isSafeInteger(limit) || limit < 0) throw new ConfigurationError(`DistributedRateLimiterStore: limit must be an integer >= 0, got ${limit}`, 'limit');
}

module.exports = { DistributedRateLimiterStore, DenialLedger };
