'use strict';
// `distributed-rate-limiter/nestjs`: a ThrottlerStorage for @nestjs/throttler 5 and 6.
//
//   ThrottlerModule.forRoot({
//     throttlers: [{ ttl: 60_000, limit: 10 }],
//     storage: new DistributedThrottlerStorage({ url: 'redis://localhost:6379' }),
//   })
//
// ThrottlerGuard asks `increment(key, ttl, limit, blockDuration, throttlerName)` per request
// and throttler (ms; the key already names the throttler) and answers 429 when the record
// says `isBlocked`. Here the module decides `limit` per `ttl` (SLIDING, or GCRA above
// SLIDING's bounds; `kind` chooses) and its decision becomes the record: allowed, what the
// key holds (`totalHits` 1..limit) and `timeToExpire` (s) until it is empty; denied,
// `totalHits` limit + 1, `isBlocked`, and `timeToBlockExpire` (s, the Retry-After) until the
// request would pass. A denied request counts nothing (the peer's storage counts it).
//
// `blockDuration` (the guard's default: `ttl`): equal to `ttl`, a denial lasts until the
// request fits the window again (at most `ttl`: the peer blocks for the whole `ttl`); any
// other value is the module's PENALTY: a denial blocks the key for blockDuration.

const { limiterFrom, checkKind, windowLimit, countOf } = require('./common');

/** This storage's keys: `<limiter prefix>nest:<the guard's key>`. */
const NAMESPACE = 'nest:';

class DistributedThrottlerStorage {
  /**
   * The limiter's own options (`url` or `client`, `prefix`, `onError`, ...; the limiter made
   * here is closed on the application's shutdown) or `{ limiter }` (yours), plus `kind`
   * ('auto' | 'sliding' | 'gcra').
   */
  constructor(options = {}) {
    const { limiter, owned, own } = limiterFrom(options, ['kind'], 'DistributedThrottlerStorage', (o) => checkKind(o.kind, 'DistributedThrottlerStorage'));
    this.limiter = limiter;
    this.owned = owned;
    this.kind = checkKind(own.kind, 'DistributedThrottlerStorage');
  }

  /** One request of `key` under `limit` per `ttl` ms (RL.THROTTLE): a ThrottlerStorageRecord. */
  async increment(key, ttl, limit, blockDuration, _throttlerName) {
    const ttlMs = Math.max(Math.ceil(ttl), 1);
    // limit 0 denies every request (as the peer's storage): nothing to ask Redis.
    if (limit === 0) return record(false, 1, ttlMs, ttlMs);
    const one = windowLimit(limit, ttlMs, this.kind);
    const policy = blockDuration > 0 && blockDuration !== ttl ? { ...one, penaltyMs: Math.ceil(blockDuration) } : one;
    const d = await this.limiter.throttle(NAMESPACE + key, policy);
    const c = countOf(d, limit);
    return record(d.allowed, c.hits, d.resetAfterMs, c.ms);
  }

  /** Closes the connection made here (none when given a limiter or a client); Nest calls it on app.close(). */
  async onApplicationShutdown() {
    if (this.owned) await this.limiter.close();
  }
}

/** A ThrottlerStorageRecord; the peer's times are whole seconds, rounded up. */
function record(allowed, hits, resetMs, retryMs) {
  const s = (ms) => Math.max(Math.ceil(ms / 1000), 0);
  return { totalHits: hits, timeToExpire: s(resetMs), isBlocked: !allowed, timeToBlockExpire: allowed ? 0 : s(retryMs) };
}

module.exports = { DistributedThrottlerStorage };
