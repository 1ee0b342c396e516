'use strict';
// Per-call timeouts without a timer per call: every pending call is in one Set, and one
// interval (every TICK_MS while anything is pending, unref'd) expires those past their
// deadline. A call therefore times out between `ms` and `ms + TICK_MS` after it started; a
// timer per call (setTimeout + clearTimeout + Promise.race) cost more than the rest of the
// client on the hot path (bench/clients_node.js). Monotonic time: a step of the wall clock
// must not make a call wait for hours.

/** Resolution of the timeouts, in ms. */
const TICK_MS = 5;

class Deadlines {
  /** @param {(ms: number) => Error} timeoutError the error an expired call is rejected with */
  constructor(timeoutError) {
    this.timeoutError = timeoutError;
    this.pending = new Set();
    this.timer = null;
  }

  /** Registers a call ({reject(err)}): rejected once `ms` have passed, unless settle() came first. */
  add(ms, call) {
    const entry = { at: performance.now() + ms, ms, call };
    this.pending.add(entry);
    if (this.timer === null) {
      this.timer = setInterval(() => this.tick(), TICK_MS);
      this.timer.unref();
    }
    return entry;
  }

  /** Forgets a call that has settled. */
  settle(entry) {
    this.pending.delete(entry);
  }

  tick() {
    const now = performance.now();
    for (const e of this.pending) {
      if (e.at <= now) {
        this.pending.delete(e);
        e.call.reject(this.timeoutError(e.ms));
      }
    }
    if (this.pending.size === 0) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }
}

module.exports = { Deadlines, TICK_MS };
