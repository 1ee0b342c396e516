'use strict';
// The in-process limiter: what `onError: 'local'` decides with while Redis does not answer,
// and a limiter of its own for tests and single-process apps. Same GCRA, same integers,
// state in a Map that forgets a client once its bucket is empty (like the module's expiry).

const gcra = require('./gcra');

/** Sweep empty buckets once the Map has grown by this many entries since the last sweep. */
const SWEEP_EVERY = 10_000;

class LocalLimiter {
  /** @param {{now?: () => bigint}} [opts] now: Unix ms as a BigInt (injected in tests). */
  constructor(opts = {}) {
    this.now = opts.now || (() => BigInt(Date.now()));
    this.tats = new Map();
    this.sweepAt = SWEEP_EVERY;
  }

  /**
   * Decides (and, unless `peek`, counts) a request of `cost` for `key` under `policy`
   * (BigInt fields). Returns gcra.evaluate's verdict.
   */
  check(key, policy, cost, peek = false) {
    const now = this.now();
    const tat = this.tats.get(key) || gcra.EMPTY;
    const v = gcra.evaluate(policy, tat, now, cost);
    if (v.allowed && !peek) {
      this.tats.set(key, v.tat);
      if (this.tats.size >= this.sweepAt) this.sweep(now);
    }
    return v;
  }

  /** Forgets a client's usage; returns the backlog forgotten, in ms (as RL.RESET). */
  reset(key) {
    const tat = this.tats.get(key);
    this.tats.delete(key);
    if (!tat) return 0n;
    const now = this.now();
    const empty = gcra.emptyAtMs(tat);
    return empty > now ? empty - now : 0n;
  }

  clear() {
    this.tats.clear();
    this.sweepAt = SWEEP_EVERY;
  }

  get size() {
    return this.tats.size;
  }

  sweep(now = this.now()) {
    for (const [key, tat] of this.tats) if (gcra.emptyAtMs(tat) <= now) this.tats.delete(key);
    this.sweepAt = this.tats.size + SWEEP_EVERY;
  }
}

module.exports = { LocalLimiter };
