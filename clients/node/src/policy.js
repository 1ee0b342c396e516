'use strict';
// Validation of everything a caller passes, before anything is sent: the module's bounds
// (src/policy.rs) and its own error wording (src/error.rs, without the "ERR " prefix).
//
// PURE: no I/O.

const MAX_LIMIT = 1_000_000_000n;
const MAX_WINDOW_MS = 1_000_000_000_000n;
const MAX_BURST = 1_000_000_000n;
const MAX_COST = 1_000_000_000n;
const MAX_IDLE_MS = MAX_WINDOW_MS;
/** A full bucket must drain within this many ms (about 317 years). */
const MAX_DRAIN_MS = 10_000_000_000_000n;

const MESSAGES = {
  limit: 'limit must be an integer from 1 to 1000000000',
  windowMs: 'window_ms must be an integer from 1 to 1000000000000',
  burst: 'burst must be an integer from 1 to 1000000000',
  cost: 'cost must be an integer from 1 to 1000000000',
  idleMs: 'idle_ms must be an integer from 1 to 1000000000000',
  drain: 'burst * window_ms / limit is too large: a full bucket must drain within 10000000000000 ms',
  noPolicy: 'no rate limit for key: RL.CONFIG it, pass LIMIT and WINDOW, or set rl.default-limit',
  limitWithoutWindow: 'LIMIT and WINDOW must be given together',
  burstWithoutLimit: 'BURST needs LIMIT and WINDOW',
  clientId: 'clientId must be a non-empty string or Buffer',
};

/** Bad input from the caller, raised before anything is sent. `message` is the module's. */
class RateLimitArgumentError extends TypeError {
  constructor(message) {
    super(message);
    this.name = 'RateLimitArgumentError';
  }
}

/** An integer field within 1..max as a BigInt (Numbers must be safe integers). */
function integer(value, max, message) {
  let v;
  if (typeof value === 'bigint') v = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) v = BigInt(value);
  else if (typeof value === 'string' && /^[0-9]{1,20}$/.test(value)) v = BigInt(value);
  else throw new RateLimitArgumentError(message);
  if (v < 1n || v > max) throw new RateLimitArgumentError(message);
  return v;
}

function clientId(id) {
  if ((typeof id === 'string' || Buffer.isBuffer(id)) && id.length > 0) return id;
  throw new RateLimitArgumentError(MESSAGES.clientId);
}

/**
 * A policy {limit, windowMs, burst} of BigInts from the caller's {limit, windowMs, burst?}
 * (burst defaults to limit). Throws RateLimitArgumentError with the module's wording.
 */
function policy(p) {
  const limit = integer(p.limit, MAX_LIMIT, MESSAGES.limit);
  const windowMs = integer(p.windowMs, MAX_WINDOW_MS, MESSAGES.windowMs);
  const burst = p.burst === undefined || p.burst === null ? limit : integer(p.burst, MAX_BURST, MESSAGES.burst);
  if (burst * windowMs > MAX_DRAIN_MS * limit) throw new RateLimitArgumentError(MESSAGES.drain);
  return Object.freeze({ limit, windowMs, burst });
}

/** The inline policy of a check's options, or null; the same rules as the module's parser. */
function inlinePolicy(opts) {
  const hasLimit = opts.limit !== undefined;
  const hasWindow = opts.windowMs !== undefined;
  if (hasLimit !== hasWindow) throw new RateLimitArgumentError(MESSAGES.limitWithoutWindow);
  if (!hasLimit) {
    if (opts.burst !== undefined) throw new RateLimitArgumentError(MESSAGES.burstWithoutLimit);
    return null;
  }
  return policy(opts);
}

function cost(value) {
  return value === undefined ? 1n : integer(value, MAX_COST, MESSAGES.cost);
}

function idleMs(value) {
  return value === undefined || value === null ? null : integer(value, MAX_IDLE_MS, MESSAGES.idleMs);
}

/**
 * The local share of a policy: `share` (0 < share <= 1, e.g. 1 / number of app instances)
 * of its rate and of its burst, exactly: the rate limit/window_ms times p/q becomes
 * (limit*p)/(window_ms*q); the burst is rounded down, and is at least 1.
 */
function scaled(pol, share) {
  if (share.p === share.q) return pol;
  const limit = pol.limit * share.p;
  const windowMs = pol.windowMs * share.q;
  let burst = (pol.burst * share.p) / share.q;
  if (burst < 1n) burst = 1n;
  return Object.freeze({ limit, windowMs, burst });
}

/** A share in (0, 1] as an exact fraction {p, q} with q = 10^6 before reduction. */
function share(value) {
  if (typeof value !== 'number' || !(value > 0 && value <= 1)) {
    throw new RateLimitArgumentError('localShare must be a number in (0, 1]');
  }
  let p = BigInt(Math.max(1, Math.round(value * 1e6)));
  let q = 1_000_000n;
  let a = p;
  let b = q;
  while (b) [a, b] = [b, a % b];
  p /= a;
  q /= a;
  return { p, q };
}

module.exports = {
  MAX_LIMIT,
  MAX_WINDOW_MS,
  MAX_BURST,
  MAX_COST,
  MESSAGES,
  RateLimitArgumentError,
  clientId,
  policy,
  inlinePolicy,
  cost,
  idleMs,
  scaled,
  share,
};
