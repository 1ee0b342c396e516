'use strict';
// Express middleware (`distributed-rate-limiter/express`), with express-rate-limit's
// conventions: `skip`, `handler`, `req.rateLimit`. One throttle per request, `RateLimit` and
// `RateLimit-Policy` headers on every response, 429 with `Retry-After` when denied. With
// `lease: true` (a key with a CONCURRENCY limit) it acquires a lease instead and holds it
// for the request's length: released once, on the response's `finish` or `close`.
//
// Each middleware has its own namespace, so two routes never share a bucket unless given the
// same `name`: the key is `<prefix><name>:<client key>`, with `name` the explicit option,
// else `METHOD baseUrl+route` (`req.route.path` when mounted on a route, else the raw path).
//
// Nothing about an error reaches the response, whatever NODE_ENV is: a failing limiter or a
// key function that returns nothing is logged (once per kind of problem) and the request
// takes the limiter's failure policy (onError 'deny': 429; otherwise it passes).

const { ipKey } = require('./ip');
const { InvalidArgument, ConfigurationError } = require('./errors');
const { unknownFields } = require('./policy');

const POLICY = ['cost', 'limit', 'windowMs', 'burst', 'kind', 'limits', 'penaltyMs', 'penaltyMaxMs'];
const OPTIONS = ['name', 'key', 'skip', 'handler', 'statusCode', 'message', 'lease', ...POLICY];

function defaultKey(req) {
  return ipKey(req.ip || (req.socket && req.socket.remoteAddress));
}

/** The route's name: `METHOD baseUrl + route path` (the raw path when no route matched yet). */
function routeName(req) {
  return `${req.method} ${req.baseUrl || ''}${req.route ? req.route.path : req.path}`;
}

function defaultHandler(req, res, _next, options) {
  res.statusCode = options.statusCode;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.end(options.message);
}

/**
 * rateLimit(limiter, {name?, key?, skip?, handler?, statusCode?, message?, lease?, cost?,
 * limit?, windowMs?, burst?, kind?, limits?, penaltyMs?, penaltyMaxMs?}).
 * lease: true to hold a lease (acquire) for the request's length instead of a throttle.
 * key(req): the client id (may be async; default: the client IP, IPv6 grouped by /64).
 * skip(req, res): true to let the request through uncounted (may be async).
 * handler(req, res, next, options): answers a denied request (default: statusCode and message).
 * limit/windowMs/burst/kind or limits: an inline policy for keys without a stored one.
 */
function rateLimit(limiter, options = {}) {
  const unknown = unknownFields(options, OPTIONS, 'option');
  if (unknown) throw new ConfigurationError(`rateLimit(): ${unknown}`, 'options');
  const o = { statusCode: 429, message: 'Too Many Requests\n', handler: defaultHandler, ...options };
  const key = o.key || defaultKey;
  const check = {};
  for (const f of POLICY) if (o[f] !== undefined) check[f] = o[f];
  if (o.lease !== undefined && typeof o.lease !== 'boolean') throw new ConfigurationError('rateLimit(): lease must be true or false', 'lease');
  const logged = new Set();
  const logOnce = (what, message) => {
    if (logged.has(what)) return;
    logged.add(what);
    (limiter.options.logger || console).error(`distributed-rate-limiter/express: ${message}`);
  };

  /** The failure policy for a request the limiter could not decide (a boolean: may it pass?). */
  const failurePolicy = () => {
    const pass = limiter.options.onError !== 'deny';
    limiter.counts[pass ? 'failedOpen' : 'failedClosed'] += 1;
    return pass;
  };

  return async function rateLimitMiddleware(req, res, next) {
    let id;
    let v;
    try {
      if (o.skip && (await o.skip(req, res))) return next();
      const clientKey = await key(req);
      if (clientKey === undefined || clientKey === null || clientKey === '') {
        logOnce('key', `the key function returned ${JSON.stringify(clientKey)} for ${req.method} ${req.originalUrl || req.url}; such requests take the failure policy (onError '${limiter.options.onError}')`);
        return failurePolicy() ? next() : o.handler(req, res, next, o);
      }
      id = `${o.name || routeName(req)}:${clientKey}`;
      v = await (o.lease ? limiter.acquire(id, check) : limiter.throttle(id, check));
    } catch (err) {
      logOnce(err instanceof InvalidArgument ? 'argument' : `error:${err.name}`, `a check failed, and requests take the failure policy (onError '${limiter.options.onError}'): ${err.message}`);
      return failurePolicy() ? next() : o.handler(req, res, next, o);
    }
    for (const [name, value] of Object.entries(v.headers)) res.setHeader(name, value);
    req.rateLimit = {
      limit: v.limit,
      used: Math.max(v.limit - v.remaining, 0),
      remaining: v.remaining,
      resetTime: new Date(Date.now() + v.resetAfterMs),
      key: id,
      decision: v,
    };
    if (o.lease && v.allowed) holdFor(limiter, res, id, v.lease);
    if (v.allowed) return next();
    return o.handler(req, res, next, o);
  };
}

/** Releases `lease` once the response ends (`finish`) or its connection closes first (`close`). */
function holdFor(limiter, res, id, lease) {
  if (lease === null || lease === undefined) return;
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    limiter.releaseOrLog(id, lease);
  };
  res.once('finish', release);
  res.once('close', release);
}

module.exports = { rateLimit, routeName };
