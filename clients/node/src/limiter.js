'use strict';
// DistributedRateLimiter: the API over the rl module (engine.js runs every call: the module,
// the Lua fallback when the server has no module, the failure policy when Redis does not
// answer in time). Each method validates its arguments in the caller's words (nothing is
// sent on an InvalidArgument) and hands one request of the operation table to the engine.

const policyOf = require('./policy');
const failure = require('./failure');
const { Engine, mapKey, NO_OPTIONS } = require('./engine');
const { delay } = require('./drivers/base');
const { InvalidArgument, Unavailable, Denied } = require('./errors');

/** waitUntilAllowed's default bound, in ms. */
const WAIT_DEFAULT_MS = 10_000;
const M = policyOf.MESSAGES;
/** A Redis id (reservation or lease): a non-negative integer. A local one: `L` and its digits. */
const LOCAL_ID = /^L([0-9]{1,20})$/;
const REDIS_ID = /^[0-9]{1,20}$/;

class DistributedRateLimiter extends Engine {
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

  /**
   * Stores `clientId`'s policy (RL.CONFIG): {limit, windowMs, burst?, kind?, idleMs?, shadow?,
   * penaltyMs?, penaltyMaxMs?}, a list of up to 4 limits, or {limits, ...}. The limiter
   * remembers it: for the local fallback, for headers, and to store it again if Redis loses it.
   */
  async configureRateLimit(clientId, p) {
    const key = this.key(clientId);
    const config = policyOf.configOptions(p);
    const mk = mapKey(key);
    this.remember(mk, config);
    this.denied.forget(mk);
    // The local limiter carries what it counted to the new policy as of now, as Redis does.
    this.local.configure(mk, policyOf.scaled(config.policy, this.share));
    await this.call({ op: 'configure', key, mk, config, check: false });
  }

  /** One call per request: true if allowed (and counted). Options: {cost?, limit?, windowMs?, burst?, kind?, penaltyMs?, penaltyMaxMs?} or {cost?, limits}. */
  isAllowed(clientId, opts = NO_OPTIONS) {
    return this.check(clientId, opts, 'allow');
  }

  /** Decides and counts like isAllowed, with the numbers and ready-to-send HTTP headers. */
  throttle(clientId, opts = NO_OPTIONS) {
    return this.check(clientId, opts, 'throttle');
  }

  /** The same decision for a hypothetical request (on a CONCURRENCY key: an acquire): nothing is counted. */
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

  /** Forgets the client's usage, holds, leases and block, keeps its stored policy; resolves the backlog forgotten, in ms. */
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
   * Gives back `n` units (1..10^9) on every rate limit of the key's policy (RL.REFUND): for a
   * request that failed or cost less. Never makes room beyond an empty bucket. Resolves the
   * most units any limit gave back (0: nothing was consumed). `opts`: an inline policy for a
   * key without a stored one. Rejects with Unavailable when Redis cannot be reached.
   */
  async refund(clientId, n, opts = NO_OPTIONS) {
    const req = this.checkRequest(clientId, opts, 'refund');
    if (opts.cost !== undefined) throw new InvalidArgument('refund(id, n, options): the units go in n, not in a cost option');
    req.n = policyOf.integer(n, policyOf.MAX_COST, M.refund);
    req.check = false;
    this.denied.forget(req.mk);
    return this.call(req);
  }

  /**
   * Reserves `estimate` units (RL.RESERVE): decided exactly like a throttle at that cost; when
   * allowed the decision's `reservation` holds an id to settle(). `opts`: {holdMs?
   * (1..86400000, default 300000: an unsettled hold stays charged at its estimate), ...an
   * inline policy}.
   */
  reserve(clientId, estimate, opts = NO_OPTIONS) {
    let req;
    try {
      const { holdMs, ...rest } = opts || {};
      if (rest.cost !== undefined) throw new InvalidArgument('reserve(id, estimate, options): the units go in estimate, not in a cost option');
      req = this.checkRequest(clientId, Object.keys(rest).length ? rest : NO_OPTIONS, 'reserve');
      req.cost = policyOf.integer(estimate, policyOf.MAX_COST, M.estimate);
      req.holdMs = holdMs === undefined || holdMs === null ? null : policyOf.holdMs(holdMs);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.decide(req);
  }

  /**
   * Settles a reservation to what the work really cost (RL.SETTLE; 0..10^9): below the
   * estimate gives the difference back (never more than the hold), above charges the excess
   * even into debt (at most one full bucket). Resolves the units charged (> 0) or refunded
   * (< 0). A reservation that expired, was settled or never existed rejects with CommandError.
   * A `null` reservation (none was taken) resolves 0 and sends nothing.
   */
  async settle(clientId, reservation, actual) {
    const key = this.key(clientId);
    const mk = mapKey(key);
    const a = policyOf.integer(actual, policyOf.MAX_COST, M.actual, 0n);
    const id = idOf(reservation, 'reservation');
    if (id === null) return 0;
    this.denied.forget(mk);
    if (id.local !== undefined) return Number(this.local.settle(mk, id.local, a));
    return this.retried({ op: 'settle', key, mk, id: id.redis, actual: a, check: false });
  }

  /** Blocks the key for `ms` (1..10^12) whatever its policy (RL.BLOCK): every check is denied until then. */
  async block(clientId, ms) {
    const key = this.key(clientId);
    const mk = mapKey(key);
    const v = policyOf.integer(ms, policyOf.MAX_BLOCK_MS, M.blockMs);
    this.denied.forget(mk);
    return this.call({ op: 'block', key, mk, blockMs: v, check: false });
  }

  /** Ends the key's block and forgets its penalty level (RL.UNBLOCK): true if it was blocked. */
  async unblock(clientId) {
    const key = this.key(clientId);
    const mk = mapKey(key);
    this.denied.forget(mk);
    return this.call({ op: 'unblock', key, mk, check: false });
  }

  /**
   * Takes a lease (RL.ACQUIRE) on a key with a CONCURRENCY limit: decided over every limit of
   * the key, all or nothing; when allowed the decision's `lease` holds an id to release().
   * `opts`: {cost?, ...an inline policy}.
   */
  acquire(clientId, opts = NO_OPTIONS) {
    return this.check(clientId, opts, 'acquire');
  }

  /** Gives a lease back (RL.RELEASE): true if it was held; false if it had expired, was released, or is null. */
  async release(clientId, lease) {
    const key = this.key(clientId);
    const mk = mapKey(key);
    const id = idOf(lease, 'lease');
    if (id === null) return false;
    this.denied.forget(mk); // a peek's cached denial may be over now
    if (id.local !== undefined) return this.local.release(mk, id.local) === 1n;
    return this.retried({ op: 'release', key, mk, id: id.redis, check: false });
  }

  /** Makes a held lease expire `ms` (1..4294967295) from now (RL.RENEW), for long jobs: true if it was held. */
  async renew(clientId, lease, ms) {
    const key = this.key(clientId);
    const mk = mapKey(key);
    const v = policyOf.integer(ms, policyOf.MAX_LEASE_MS, M.leaseMs);
    const id = idOf(lease, 'lease');
    if (id === null) return false;
    if (id.local !== undefined) return this.local.renew(mk, id.local, v) === 1n;
    return this.retried({ op: 'renew', key, mk, id: id.redis, leaseMs: v, check: false });
  }

  /**
   * Runs `fn(decision)` under a lease and always releases it, also when `fn` throws: resolves
   * what `fn` resolves. A denied lease calls nothing and resolves the denied decision, or
   * rejects with Denied under `rejectOnDeny`. `opts`: {rejectOnDeny?, cost?, ...an inline
   * policy}. A release that cannot reach Redis (retried once) rejects with Unavailable after
   * an `fn` that succeeded; after one that threw, `fn`'s error goes on and the failed release
   * is logged. Either way the lease ends by itself after its windowMs.
   */
  async withLease(clientId, fn, opts = {}) {
    if (typeof fn !== 'function') throw new InvalidArgument('withLease(id, fn, options): fn must be a function');
    const { rejectOnDeny = false, ...acquire } = opts || {};
    const d = await this.acquire(clientId, Object.keys(acquire).length ? acquire : NO_OPTIONS);
    if (!d.allowed) {
      if (rejectOnDeny) throw new Denied(d);
      return d;
    }
    let out;
    try {
      out = await fn(d);
    } catch (err) {
      await this.releaseOrLog(clientId, d.lease);
      throw err;
    }
    await this.release(clientId, d.lease);
    return out;
  }

  /** release(), reporting a failure through the logger instead of throwing it (withLease after fn threw, the middleware). */
  async releaseOrLog(clientId, lease) {
    try {
      await this.release(clientId, lease);
    } catch (err) {
      this.options.logger.warn(`distributed-rate-limiter: lease ${lease} of ${clientId} was not released (${err.message}); it ends by itself after its windowMs`);
    }
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

  /**
   * A call that must not be dropped (settle, release, renew of a Redis id): one more try, with
   * a fresh timeout, after a failure to get an answer; then Unavailable.
   */
  async retried(req) {
    try {
      return await this.call({ ...req });
    } catch (err) {
      if (!(err instanceof Unavailable)) throw err;
    }
    return this.call({ ...req });
  }
}

/**
 * A reservation or lease id as {redis: decimal string} or {local: BigInt} (`L<n>`, from the
 * local limiter), or null for none; InvalidArgument for anything else.
 */
function idOf(id, what) {
  if (id === null || id === undefined) return null;
  if (typeof id === 'number' && Number.isSafeInteger(id) && id >= 0) return { redis: String(id) };
  if (typeof id === 'bigint' && id >= 0n) return { redis: String(id) };
  if (typeof id === 'string') {
    const local = LOCAL_ID.exec(id);
    if (local) return { local: BigInt(local[1]) };
    if (REDIS_ID.test(id)) return { redis: id };
  }
  throw new InvalidArgument(`${what} must be an id from ${what === 'lease' ? 'acquire()' : 'reserve()'}: a non-negative integer, or a string 'L<n>' from the local limiter`);
}

module.exports = { DistributedRateLimiter, mapKey, localId: failure.localId };
