'use strict';
// The in-process limiter: what `onError: 'local'` decides with while Redis does not answer,
// and a limiter of its own for tests and single-process apps. The module's semantics exactly
// (keystate.js over limits.js: GCRA, SLIDING, CONCURRENCY leases, sets of up to 4 decided
// all-or-nothing, refunds, reservations, penalties and blocks), in BigInt integers.
//
// State is a Map from key to its key state. It is bounded: once it holds `maxKeys` keys the
// least recently used is forgotten (a forgotten client starts again from empty, as after an
// idle period; its open holds and leases go with it), and keys that would have expired in
// the module (every limit empty, every hold and lease expired, no block) are swept. It is
// never cleared on its own: an instance that used its share in one outage does not get it
// again in the next one within the window, and a lease or reservation taken locally is
// released or settled locally.

const keystate = require('./keystate');

/** Sweep expired states once the Map has grown by this many entries since the last sweep. */
const SWEEP_EVERY = 10_000;
const DEFAULT_MAX_KEYS = 100_000;
const MODES = ['throttle', 'peek', 'reserve', 'acquire'];

/** A policy {limits, penalty?}, or one GCRA limit {limit, windowMs, burst} (0.1's form). */
function policyIn(policy) {
  if (policy.limits) return policy;
  return { limits: [{ kind: 'gcra', limit: policy.limit, windowMs: policy.windowMs, burst: policy.burst }], penalty: null };
}

class LocalLimiter {
  /** @param {{now?: () => bigint, maxKeys?: number}} [opts] now: Unix ms as a BigInt (injected in tests). */
  constructor(opts = {}) {
    this.now = opts.now || (() => BigInt(Date.now()));
    this.maxKeys = opts.maxKeys || DEFAULT_MAX_KEYS;
    this.states = new Map(); // key -> {state, expiresAtMs}
    this.sweepAt = SWEEP_EVERY;
  }

  /**
   * `key`'s state; EMPTY for none, or for one the module would have let expire by now (a key
   * without a stored policy whose usage, holds, leases and block were all over before now): a
   * clock that steps back afterwards does not bring it back.
   */
  get(key, now) {
    const held = this.states.get(key);
    if (!held) return keystate.EMPTY;
    if (held.expiresAtMs !== null && held.expiresAtMs < now) {
      this.states.delete(key); // Redis: expired once now > the expiry
      return keystate.EMPTY;
    }
    return held.state;
  }

  /** op(state, now) -> {reply, state | null}: runs it on `key`'s state and keeps what it writes. */
  apply(key, op) {
    const now = this.now();
    const r = op(this.get(key, now), now);
    if (r.state !== null) {
      this.states.delete(key);
      this.states.set(key, { state: r.state, expiresAtMs: keystate.expiresAtMs(r.state, now) });
      if (this.states.size > this.maxKeys) this.states.delete(this.states.keys().next().value);
      if (this.states.size >= this.sweepAt) this.sweep(now);
    }
    return r.reply;
  }

  /**
   * Stores `policy` for `key` as RL.CONFIG does: it beats the policy a check brings, and the
   * usage is carried to it as of now (a chain of changes within one ms reads as the last one).
   */
  configure(key, policy) {
    this.apply(key, (s, now) => ({ reply: null, state: keystate.configure(s, policyIn(policy), now) }));
  }

  /**
   * Decides a request of `cost` (BigInt) for `key` under `policy`. `mode`: 'throttle' (counts
   * when allowed; `false` too), 'peek' (counts nothing; `true` too), 'reserve' (cost is the
   * estimate; `id` is the reservation) or 'acquire' (`id` is the lease). Returns {allowed,
   * binding, limit, remaining, retryAfterMs, resetAfterMs, id} (BigInts but `allowed`,
   * `binding`; `id` null unless a reservation or lease was taken). `options`: {shadow,
   * holdMs} (BigInt ms; default 300000).
   */
  check(key, policy, cost, mode = 'throttle', options = {}) {
    const m = mode === true ? 'peek' : mode === false ? 'throttle' : mode;
    if (!MODES.includes(m)) throw new TypeError(`mode must be one of ${MODES.join(', ')}`);
    return this.apply(key, (s, now) => keystate.check(policy ? policyIn(policy) : null, s, now, cost, m, options));
  }

  /** Gives back `n` units on every rate limit; returns the most any limit gave back. */
  refund(key, policy, n) {
    return this.apply(key, (s, now) => keystate.refund(policyIn(policy), s, now, n));
  }

  /** Settles reservation `id` to `actual`, under the key's configured policy, else its last write's: units charged (> 0) or refunded (< 0). */
  settle(key, id, actual) {
    return this.apply(key, (s, now) => keystate.settle(s, now, id, actual));
  }

  /** 1n if lease `id` was held (now released), else 0n. */
  release(key, id) {
    return this.apply(key, (s, now) => keystate.release(s, now, id));
  }

  /** 1n if lease `id` was held (it now expires `ms` from now), else 0n. */
  renew(key, id, ms) {
    return this.apply(key, (s, now) => keystate.renew(s, now, id, ms));
  }

  block(key, ms) {
    this.apply(key, (s, now) => keystate.block(s, now, ms));
  }

  /** 1n if `key` was blocked (the block and its level are gone), else 0n. */
  unblock(key) {
    return this.apply(key, (s, now) => keystate.unblock(s, now));
  }

  /** RL.INFO's fields of issues 19 and 20 for `key`. */
  summary(key) {
    return this.apply(key, (s, now) => ({ reply: keystate.summary(s, now), state: null }));
  }

  /**
   * What RL.INFO tells of `key`'s state: {remaining (under its configured policy; null
   * without one), resetAfterMs, and the fields of issues 19 and 20}; null for no key.
   */
  info(key) {
    return this.apply(key, (s, now) => ({
      reply: s === keystate.EMPTY ? null : { remaining: keystate.remaining(s, now), resetAfterMs: keystate.resetAfterMs(s, now), ...keystate.summary(s, now) },
      state: null,
    }));
  }

  /**
   * As RL.RESET: returns the ms of backlog forgotten. A configured key forgets usage, holds,
   * leases and the block and keeps its policy and id sequence; any other is forgotten whole.
   */
  reset(key) {
    const now = this.now();
    const state = this.get(key, now);
    this.states.delete(key);
    if (state === keystate.EMPTY) return 0n;
    const r = keystate.reset(state, now);
    if (r.state !== null) this.states.set(key, { state: r.state, expiresAtMs: null });
    return r.reply;
  }

  clear() {
    this.states.clear();
    this.sweepAt = SWEEP_EVERY;
  }

  get size() {
    return this.states.size;
  }

  /** Drops states the module would have let expire (a usage-only key whose every part is over). */
  sweep(now = this.now()) {
    for (const [key, held] of this.states) if (held.expiresAtMs !== null && held.expiresAtMs < now) this.states.delete(key);
    this.sweepAt = this.states.size + SWEEP_EVERY;
  }
}

module.exports = { LocalLimiter };
