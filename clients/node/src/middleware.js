'use strict';
// HTTP middleware for Express (and plain node:http handlers with a `next`): one throttle per
// request, RateLimit and RateLimit-Policy headers on every response, 429 with Retry-After
// when denied. A request heavier than the whole bucket (it can never pass) gets 429 without
// Retry-After.

/** `a.b.c.d` for IPv4 (also IPv4-mapped IPv6); the /64 network `x:x:x:x::/64` for IPv6. */
function ipKey(address) {
  if (!address) return 'ip:unknown';
  let a = String(address);
  const zone = a.indexOf('%');
  if (zone >= 0) a = a.slice(0, zone);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  if (mapped) return `ip:${mapped[1]}`;
  if (!a.includes(':')) return `ip:${a}`;
  return `ip:${ipv6Prefix64(a)}`;
}

/** The first four 16-bit groups of an IPv6 address, normalised, as `x:x:x:x::/64`. */
function ipv6Prefix64(a) {
  let [head, tail] = a.split('::');
  let groups = head ? head.split(':') : [];
  if (tail !== undefined) {
    const rest = tail ? tail.split(':') : [];
    // An embedded IPv4 tail (::a.b.c.d) counts as two groups.
    const width = rest.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0);
    groups = groups.concat(Array(Math.max(8 - groups.length - width, 0)).fill('0'), rest);
  }
  const four = groups.slice(0, 4).map((g) => (parseInt(g, 16) || 0).toString(16));
  while (four.length < 4) four.push('0');
  return `${four.join(':')}::/64`;
}

function defaultKey(req) {
  return ipKey(req.ip || (req.socket && req.socket.remoteAddress));
}

/**
 * rateLimit(limiter, {key?, cost?, limit?, windowMs?, burst?, statusCode?, message?})
 * key(req): the client id (may be async; default: client IP, IPv6 grouped by /64).
 * limit/windowMs/burst: an inline policy for keys without a stored one.
 */
function rateLimit(limiter, options = {}) {
  const key = options.key || defaultKey;
  const statusCode = options.statusCode || 429;
  const message = options.message || 'Too Many Requests\n';
  const call = {};
  for (const f of ['cost', 'limit', 'windowMs', 'burst']) if (options[f] !== undefined) call[f] = options[f];
  return async function rateLimitMiddleware(req, res, next) {
    let v;
    try {
      v = await limiter.throttle(await key(req), call);
    } catch (err) {
      return next(err);
    }
    for (const [name, value] of Object.entries(v.headers)) res.setHeader(name, value);
    if (v.allowed) return next();
    res.statusCode = statusCode;
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.end(message);
  };
}

module.exports = { rateLimit, ipKey };
