'use strict';
// The deny cache: floods answered without a round trip. A check that Redis denied with
// `retryAfterMs = r` cannot pass for r ms (nothing this client or any other does makes
// room sooner, short of an admin reset), so the same key under the same policy is answered
// from memory until min(r, maxMs), with the numbers re-aged to now. A lighter request (a
// smaller cost) still goes to Redis: it may fit. Bounded: the least recently denied key is
// forgotten first. Monotonic time (performance.now(), ms).
//
// The trade-off (clients/node/README.md): a reset or reconfiguration made elsewhere (an
// admin's RL.RESET) is seen within maxMs; this limiter's own reset and configureRateLimit
// forget the key at once.

const DEFAULT_MAX_KEYS = 10_000;

class DenyCache {
  /** @param {{maxMs: number, maxKeys?: number, now?: () => number}} opts */
  constructor({ maxMs, maxKeys = DEFAULT_MAX_KEYS, now = () => performance.now() }) {
    this.maxMs = maxMs;
    this.maxKeys = maxKeys;
    this.now = now;
    this.keys = new Map(); // key -> Map(policyId -> {until, at, cost, v})
  }

  get enabled() {
    return this.maxMs > 0;
  }

  /** The cached denial for this check, re-aged to now (a new object), or null. */
  get(key, policyId, cost) {
    const byPolicy = this.keys.get(key);
    if (!byPolicy) return null;
    const e = byPolicy.get(policyId);
    if (!e) return null;
    const now = this.now();
    if (now >= e.until) {
      byPolicy.delete(policyId);
      if (byPolicy.size === 0) this.keys.delete(key);
      return null;
    }
    if (cost < e.cost) return null;
    const elapsed = Math.floor(now - e.at);
    return {
      ...e.v,
      retryAfterMs: Math.max(e.v.retryAfterMs - elapsed, 1),
      resetAfterMs: Math.max(e.v.resetAfterMs - elapsed, 0),
    };
  }

  /** Remembers a denial `v` (a decision with retryAfterMs >= 0) of a request of `cost`. */
  put(key, policyId, cost, v) {
    if (!this.enabled || v.allowed || !(v.retryAfterMs > 0)) return;
    const now = this.now();
    let byPolicy = this.keys.get(key);
    if (byPolicy) this.keys.delete(key);
    else byPolicy = new Map();
    this.keys.set(key, byPolicy);
    byPolicy.set(policyId, { until: now + Math.min(v.retryAfterMs, this.maxMs), at: now, cost, v });
    if (this.keys.size > this.maxKeys) this.keys.delete(this.keys.keys().next().value);
  }

  /** Forgets every denial of `key` (this limiter's own reset or configure). */
  forget(key) {
    this.keys.delete(key);
  }
}

module.exports = { DenyCache };
