'use strict';
// The in-process limiter: what `onError: 'local'` decides with while Redis does not answer,
// and a limiter of its own for tests and single-process apps. The module's semantics exactly
// (GCRA, SLIDING, sets of up to 4, all-or-nothing; src/limits.js), in BigInt integers.
//
// State is a Map from key to the usage of its limits. It is bounded: once it holds `maxKeys`
// keys the least recently used is forgotten (a forgotten client starts again with a full
// bucket, as after an idle period), and keys whose every limit is empty are swept as the
// module's keys expire. It is never cleared on its own: an instance that used its share in
// one outage does not get it again in the next one within the window.

const limitsOf = require('./limits');

/** Sweep empty usages once the Map has grown by this many entries since the last sweep. */
const SWEEP_EVERY = 10_000;
const DEFAULT_MAX_KEYS = 100_000;

/** A policy {limits, id}, or one GCRA limit {limit, windowMs, burst} (0.1's form). */
function limitsIn(policy) {
  if (policy.limits) return policy.limits;
  return [{ kind: 'gcra', limit: policy.limit, windowMs: policy.windowMs, burst: policy.burst }];
}

/** Whether `usage` already has one usage of the right kind per limit (nothing to carry over). */
function fits(limits, usage) {
  return usage.length === limits.length && limits.every((l, i) => usage[i].kind === l.kind);
}

class LocalLimiter {
  /** @param {{now?: () => bigint, maxKeys?: number}} [opts] now: Unix ms as a BigInt (injected in tests). */
  constructor(opts = {}) {
    this.now = opts.now || (() => BigInt(Date.now()));
    this.maxKeys = opts.maxKeys || DEFAULT_MAX_KEYS;
    this.usages = new Map(); // key -> {usage, emptyAtMs}
    this.sweepAt = SWEEP_EVERY;
  }

  /**
   * Decides (and, unless `peek`, counts) a request of `cost` (BigInt) for `key` under
   * `policy`. Returns {allowed, binding, limit, remaining, retryAfterMs, resetAfterMs} (BigInts
   * but `allowed` and `binding`).
   */
  check(key, policy, cost, peek = false) {
    const now = this.now();
    const limits = limitsIn(policy);
    const held = this.usages.get(key);
    const before = held ? held.usage : [];
    const o = limitsOf.decide(limits, before, now, cost);
    if (!peek && (o.allowed || (held && fits(limits, before)))) {
      // A denial stores only a clock repair; carrying usage over to new kinds waits for an admission.
      this.usages.delete(key);
      this.usages.set(key, { usage: o.usage, emptyAtMs: o.emptyAtMs });
      if (this.usages.size > this.maxKeys) this.usages.delete(this.usages.keys().next().value);
      if (this.usages.size >= this.sweepAt) this.sweep(now);
    }
    return { allowed: o.allowed, binding: o.binding, limit: o.limit, remaining: o.remaining, retryAfterMs: o.retryAfterMs, resetAfterMs: o.resetAfterMs };
  }

  /** Forgets a client's usage; returns the backlog forgotten, in ms (as RL.RESET). */
  reset(key) {
    const held = this.usages.get(key);
    this.usages.delete(key);
    if (!held) return 0n;
    const now = this.now();
    return held.emptyAtMs > now ? held.emptyAtMs - now : 0n;
  }

  clear() {
    this.usages.clear();
    this.sweepAt = SWEEP_EVERY;
  }

  get size() {
    return this.usages.size;
  }

  sweep(now = this.now()) {
    for (const [key, held] of this.usages) if (held.emptyAtMs <= now) this.usages.delete(key);
    this.sweepAt = this.usages.size + SWEEP_EVERY;
  }
}

module.exports = { LocalLimiter };
