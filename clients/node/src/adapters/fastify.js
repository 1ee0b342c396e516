'use strict';
// `distributed-rate-limiter/fastify`: a store for @fastify/rate-limit (10 and 11).
//
//   await fastify.register(require('@fastify/rate-limit'), {
//     max: 100, timeWindow: '1 minute',
//     store: fastifyStore({ url: 'redis://localhost:6379' }),
//   });
//
// @fastify/rate-limit makes its store with `new Store(pluginOptions)`, asks it
// `incr(key, cb, timeWindow, max)` per request (and `read` for `{increment: false}`), and
// denies when the `current` it gets is above `max`; a route with its own `config.rateLimit`
// gets `store.child(routeOptions)`. fastifyStore(options) returns that class, bound to one
// limiter. Here the module decides `max` per `timeWindow` (SLIDING, or GCRA above SLIDING's
// bounds; `kind` chooses), both read per request (so `max` and `timeWindow` as functions
// work), and the decision is told as a count: allowed, what the key holds (1..max); denied,
// max + 1, with `ttl` the ms until the request would pass (Retry-After). A denied request
// counts nothing (the plugin's stores count it).
//
// `continueExceeding` (a request while limited restarts the window) becomes the module's
// PENALTY of one `timeWindow`: a denial blocks the key for timeWindow, but requests during
// the block do not extend it. `exponentialBackoff` and `ban` > 0 count denials, which nothing
// counts here: refused with why.

const { ConfigurationError } = require('../errors');
const { limiterFrom, checkKind, windowLimit, countOf } = require('./common');

/** The store's keys: `<limiter prefix>frl:<route>key` (route: `METHOD/url-` for a route's own limit). */
const NAMESPACE = 'frl:';
const OWN = ['kind'];

/** The plugin's options that cannot be honoured, and why. */
function refuse(params) {
  if (!params) return;
  if (params.exponentialBackoff === true) {
    throw new ConfigurationError('distributed-rate-limiter/fastify: exponentialBackoff is not supported: it lengthens the window with each denied request, and denied requests count nothing here (continueExceeding, a block of one timeWindow, is)', 'exponentialBackoff');
  }
  if (Number.isFinite(params.ban) && params.ban >= 1) {
    throw new ConfigurationError('distributed-rate-limiter/fastify: ban >= 1 is not supported: it counts denied requests, which count nothing here (ban: 0, a 403 from the first denial, is)', 'ban');
  }
}

class FastifyRateLimitStore {
  /** @param {{limiter, kind}} shared  @param {object} params the plugin's (or a route's) options  @param {string} route */
  constructor(shared, params, route) {
    refuse(params);
    this.shared = shared;
    this.route = route;
    this.continueExceeding = Boolean(params && params.continueExceeding);
  }

  get limiter() {
    return this.shared.limiter;
  }

  policy(timeWindow, max) {
    const one = windowLimit(max, timeWindow, this.shared.kind);
    return this.continueExceeding ? { ...one, penaltyMs: one.windowMs } : one;
  }

  id(key) {
    return NAMESPACE + this.route + key;
  }

  /** Counts a request (RL.THROTTLE): cb(null, {current, ttl}); current > max means denied. */
  incr(key, cb, timeWindow, max) {
    this.decide('throttle', key, timeWindow, max, false).then((r) => cb(null, r), (err) => cb(err, null));
  }

  /** The key's count without counting (RL.PEEK): cb(null, {current, ttl}), {0, 0} for a key that holds nothing. */
  read(key, cb, timeWindow, max) {
    this.decide('peek', key, timeWindow, max, true).then((r) => cb(null, r), (err) => cb(err, null));
  }

  async decide(op, key, timeWindow, max, peeked) {
    // max 0 denies every request (as the plugin's stores): nothing to ask Redis.
    if (max === 0) return { current: peeked ? 0 : 1, ttl: peeked ? 0 : timeWindow };
    const d = await this.limiter[op](this.id(key), this.policy(timeWindow, max));
    const c = countOf(d, max, peeked);
    return { current: c.hits, ttl: peeked && c.hits === 0 ? 0 : c.ms };
  }

  /** A route's own limit: its own keys (`METHOD/url-`), the same limiter. */
  child(routeOptions) {
    const info = (routeOptions && routeOptions.routeInfo) || {};
    const route = info.method || info.url ? `${info.method}${info.url}-` : '';
    return new FastifyRateLimitStore(this.shared, routeOptions, this.route + route);
  }
}

/**
 * The `store` option of @fastify/rate-limit: a class bound to one limiter, made from the
 * limiter's own options (`url` or `client`, `prefix`, `onError`, ...; closed by the class's
 * `close()`) or `{ limiter }` (yours), plus `kind` ('auto' | 'sliding' | 'gcra').
 */
function fastifyStore(options = {}) {
  const { limiter, owned, own } = limiterFrom(options, OWN, 'fastifyStore', (o) => checkKind(o.kind, 'fastifyStore'));
  const shared = { limiter, kind: checkKind(own.kind, 'fastifyStore') };
  class Store extends FastifyRateLimitStore {
    constructor(params) {
      super(shared, params, '');
    }

    static get limiter() {
      return limiter;
    }

    /** Closes the connection made for this store (none when given a limiter or a client). */
    static async close() {
      if (owned) await limiter.close();
    }
  }
  return Store;
}

module.exports = { fastifyStore, FastifyRateLimitStore };
