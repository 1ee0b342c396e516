'use strict';
// Per-call timeouts without a timer per call: every pending call is in one Set, and one
// interval (every TICK_MS while anything is pending, unref'd) expires those past their
// deadline. A call therefore times out between `ms` and `ms + TICK_MS` after it started; a
// timer per call (setTimeout + clearTimeout + Promise.race) cost more than the rest of the
// client on the hot path (bench/clients_node.js).

/** Resolution of the timeouts, in ms. */
const TICK_MS = 5;

class Deadlines {
  constructor() {
    this.pending = new Set();
    this.timer = null;
  }

  /** Registers a call: `expire()` runs once `ms` have passed, unless settle() came first. */
  add(ms, expire) {
    const entry = { at: Date.now() + ms, expire };
    this.pending.add(entry);
    if (this.timer === null) {
      this.timer = setInterval(() => this.tick(), TICK_MS);
      this.timer.unref();
    }
    return entry;
  }

  /** True if the call was still pending (its answer counts), false if it had expired. */
  settle(entry) {
    return this.pending.delete(entry);
  }

  tick() {
    const now = Date.now();
    for (const e of this.pending) {
      if (e.at <= now) {
        this.pending.delete(e);
        e.expire();
      }
    }
    if (this.pending.size === 0) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }
}

module.exports = { Deadlines, TICK_MS };
