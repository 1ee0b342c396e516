'use strict';
// Per-call deadlines without a timer per call: every pending call is in one Set, and one
// interval (every TICK_MS while anything is pending, unref'd) expires those past their
// deadline. A call therefore times out between its deadline and TICK_MS after it; a timer
// per call (setTimeout + clearTimeout + Promise.race) cost more than the rest of the client
// on the hot path (bench/clients_node.js). Monotonic time (performance.now(), ms): a step of
// the wall clock must not make a call wait for hours.
//
// Expiry runs in a setImmediate after the tick, that is after the event loop's poll phase:
// when the process was descheduled past some deadlines (a busy machine), replies already
// waiting in the socket are read first, and a call whose answer arrived in time is not
// failed for the process's own delay.

/** Resolution of the timeouts, in ms. */
const TICK_MS = 5;

class Deadlines {
  /** @param {(ms: number) => Error} timeoutError the error an expired call is rejected with */
  constructor(timeoutError) {
    this.timeoutError = timeoutError;
    this.pending = new Set();
    this.timer = null;
  }

  /** Registers a call ({reject(err)}): rejected once performance.now() passes `at`, unless settle() came first. */
  add(at, ms, call) {
    const entry = { at, ms, call };
    this.pending.add(entry);
    if (this.timer === null) {
      this.timer = setInterval(() => setImmediate(() => this.expire()), TICK_MS);
      this.timer.unref();
    }
    return entry;
  }

  /** Forgets a call that has settled. */
  settle(entry) {
    this.pending.delete(entry);
  }

  expire() {
    const now = performance.now();
    for (const e of this.pending) {
      if (e.at <= now) {
        this.pending.delete(e);
        e.call.reject(this.timeoutError(e.ms));
      }
    }
    if (this.pending.size === 0 && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }
}

module.exports = { Deadlines, TICK_MS };
