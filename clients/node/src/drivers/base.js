'use strict';
// The thin layer over the user's Redis client: send one command for one key, straight to the
// node that owns the key, say whether that can happen right now without queueing, and tell a
// server's answer from a failure to get one. One subclass per client library
// (drivers/ioredis.js, drivers/node-redis.js); none of them imports its library.
//
// Never queue while disconnected: a check that cannot be sent now fails at once (or after
// waiting, bounded by the caller's deadline, for a connection being made), so the library's
// offline queue never holds a decision for seconds.

/** How often a not-yet-ready connection is polled while a call waits for it, in ms. */
const READY_POLL_MS = 5;

/**
 * Server replies that mean "not available right now" or "refusing to write": the failure
 * policy applies, as to a timeout, and the breaker counts them (clients/README.md lists them).
 */
const REFUSALS = /^(LOADING|BUSY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|READONLY|MISCONF|NOREPLICAS|OOM|MOVED|ASK)\b/;

function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

class Transport {
  constructor(client) {
    this.client = client;
  }

  /** True when the client is connected (for a cluster: to the cluster). */
  connected() {
    return false;
  }

  /** True when a command for `key` would go on the wire now, not into an offline queue. */
  isReady(_key) {
    return false;
  }

  /** True while the client is between connections (a failed attempt, waiting to retry): no point waiting. */
  isDown() {
    return false;
  }

  /** Resolves true as soon as `key`'s node is ready, false at `until` (performance.now() ms) or when the client is down. */
  async whenReady(key, until) {
    this.connect(key);
    while (!this.isReady(key)) {
      const left = until - performance.now();
      if (left <= 0 || this.isDown()) {
        // One turn of the event loop first: a caller that loops on checks must not starve
        // the reconnection it is waiting for.
        await new Promise((resolve) => setImmediate(resolve));
        return this.isReady(key);
      }
      await delay(Math.min(READY_POLL_MS, left));
    }
    return true;
  }

  /** Starts connecting a client (or `key`'s node) that was created lazily; never throws. */
  connect(_key) {}

  /** Calls `fn` whenever the client (re)connects. */
  onReady(fn) {
    if (typeof this.client.on === 'function') this.client.on('ready', fn);
  }

  /** Calls `fn(err)` on the client's connection errors. */
  onError(fn) {
    if (typeof this.client.on === 'function') this.client.on('error', fn);
  }

  /** Whether `err` is the server's error reply (an answer), not a failure to get one. */
  isReply(_err) {
    return false;
  }

  /**
   * 'answer': the server refused this call (a wrong call: thrown to the caller, the breaker
   * untouched); 'unavailable': no answer, or a refusal to serve or write right now (the
   * failure policy, and a breaker failure).
   */
  classify(err) {
    if (!this.isReply(err)) return 'unavailable';
    return REFUSALS.test(String(err.message)) ? 'unavailable' : 'answer';
  }

  /** Which server `key` goes to, as a Map key (standalone: one server). */
  nodeOf(_key) {
    return '';
  }

  /**
   * One sender `(args) => Promise<reply>` per master (standalone: the one server), for
   * commands that concern every key of a node (SCAN).
   */
  async masters() {
    return [(args) => this.send('', args)];
  }

  /** Sends `args` (command name first) for `key`; resolves with the raw reply. */
  send(_key, _args) {
    throw new Error('not implemented');
  }

  /**
   * Sends like send() and returns {promise, reject(err)}: reject() settles the promise at
   * once (a timeout) whatever the server does later.
   */
  start(key, args) {
    return cancellable(this.send(key, args));
  }

  /**
   * Closes a connection the limiter opened: QUIT when connected (bounded by `ms`: a frozen
   * server never answers it), then drop the socket and stop reconnecting, so the process can
   * exit whatever state the connection is in.
   */
  async quit(ms = 1000) {
    if (this.connected()) {
      let timer;
      const bound = new Promise((resolve) => {
        timer = setTimeout(resolve, ms);
      });
      await Promise.race([Promise.resolve(this.gracefulQuit()).catch(() => {}), bound]);
      clearTimeout(timer);
    }
    this.drop();
  }

  gracefulQuit() {
    return this.client.quit();
  }

  /** Closes at once, without waiting for the server. */
  drop() {
    if (typeof this.client.disconnect === 'function') this.client.disconnect();
  }
}

/** {promise, reject}: `promise` follows `p` unless reject() settles it first. */
function cancellable(p) {
  const c = { promise: null, reject: null };
  c.promise = new Promise((resolve, reject) => {
    c.reject = reject;
    p.then(resolve, reject);
  });
  return c;
}

/** Whether some class in `err`'s prototype chain is named `name` (no import of the library). */
function isA(err, name) {
  for (let p = err && Object.getPrototypeOf(err); p && p !== Error.prototype; p = Object.getPrototypeOf(p)) {
    if (p.constructor && p.constructor.name === name) return true;
  }
  return false;
}

module.exports = { Transport, cancellable, isA, REFUSALS, delay };
