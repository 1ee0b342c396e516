'use strict';
// What the framework adapters share (each adapter is a leaf over DistributedRateLimiter: no
// second engine, the peer's quirks kept in its own file):
//
// - the limiter an adapter runs on: one given (`limiter`, the caller's; never closed here) or
//   one made from the limiter's own options (url | client, prefix, onError, timeoutMs, ...),
//   closed by the adapter's shutdown; unknown option names refused with the closest one;
// - the policy of a peer's "N per window": SLIDING (at most N in ANY window, never more than
//   the peers' fixed windows, which admit up to 2N around a window's edge) when it fits the
//   module's SLIDING bounds, else GCRA (N per window on average, bursts of N), or as chosen;
// - a decision as a fixed-window peer's count (`hits` > limit means denied; `ms` until the
//   count goes down: the retry time of a denial, the reset time of an allowance);
// - every key of one Redis (SCAN on each master), for the peers' "reset everything".
//
// Keys: `<limiter prefix><adapter namespace><peer key>`; the namespace keeps an adapter's keys
// apart from another store's keys of the same name (rate-limit-redis's default prefix is
// also `rl:`: its string keys would otherwise be refused as foreign data).

const { DistributedRateLimiter } = require('../limiter');
const { ConfigurationError } = require('../errors');
const { OPTIONS: LIMITER_OPTIONS } = require('../options');
const { closest, MAX_SLIDING_LIMIT } = require('../policy');

/** A SLIDING limit's longest window, in ms (2^32 - 1). */
const MAX_SLIDING_WINDOW_MS = 4_294_967_295;
const KINDS = ['auto', 'sliding', 'gcra'];
/** SCAN's COUNT hint: keys looked at per round trip. */
const SCAN_COUNT = '1000';

/**
 * The limiter of an adapter from its options: {limiter, owned, own}. `own` holds the adapter's
 * own options (names in `ownNames`); every other name must be the limiter's. `limiter` (an
 * instance) excludes the limiter's options: they are the caller's to set on it. `check(own)`
 * throws for a bad option of the adapter's before a limiter is made (one made and then
 * abandoned by a throwing constructor would keep reconnecting, and the process alive).
 */
function limiterFrom(options, ownNames, where, check = () => {}) {
  if (options !== undefined && (options === null || typeof options !== 'object' || Array.isArray(options))) {
    throw new ConfigurationError(`${where}: options must be an object`, 'options');
  }
  const own = {};
  const rest = {};
  let limiter = null;
  for (const [name, value] of Object.entries(options || {})) {
    if (value === undefined) continue;
    if (name === 'limiter') limiter = value;
    else if (ownNames.includes(name)) own[name] = value;
    else if (name in LIMITER_OPTIONS) rest[name] = value;
    else {
      const known = ['limiter', ...ownNames, ...Object.keys(LIMITER_OPTIONS)];
      const near = closest(name, known);
      throw new ConfigurationError(`${where}: unknown option '${name}'${near ? ` (did you mean '${near}'?)` : ''}; known: ${known.join(', ')}`, name);
    }
  }
  check(own);
  if (limiter !== null) {
    if (!(limiter instanceof DistributedRateLimiter)) throw new ConfigurationError(`${where}: limiter must be a DistributedRateLimiter`, 'limiter');
    const given = Object.keys(rest);
    if (given.length) throw new ConfigurationError(`${where}: ${given.join(', ')} belong to the limiter given: set them where it is made`, given[0]);
    return { limiter, owned: false, own };
  }
  return { limiter: new DistributedRateLimiter(rest), owned: true, own };
}

function checkKind(kind, where) {
  if (kind === undefined) return 'auto';
  if (!KINDS.includes(kind)) throw new ConfigurationError(`${where}: kind must be one of ${KINDS.join(', ')}`, 'kind');
  return kind;
}

/**
 * A peer's "`limit` per `windowMs`" as one limit {limit, windowMs, kind}: `kind` 'auto' is
 * SLIDING when limit <= 1000 and windowMs <= 2^32 - 1 (the module's SLIDING bounds), else
 * GCRA with burst = limit. A fractional window is rounded up (never a shorter window).
 */
function windowLimit(limit, windowMs, kind) {
  const w = Number.isFinite(windowMs) ? Math.ceil(windowMs) : windowMs;
  const fits = limit <= Number(MAX_SLIDING_LIMIT) && w <= MAX_SLIDING_WINDOW_MS;
  return { limit, windowMs: w, kind: kind === 'auto' ? (fits ? 'sliding' : 'gcra') : kind };
}

/**
 * A decision as a fixed-window peer's count, for a peer whose limit is `limit`: {hits, ms}.
 * Allowed: what the key holds (at least 1: this request; at most `limit`, so the peer never
 * denies what was counted), and `ms` until it is empty. Denied (a denied request counts
 * nothing): `limit + 1`, and `ms` until the request would pass (its reset when it never can).
 * A peek (`peeked`: its `remaining` is after the request it asks about) tells what the key
 * holds, 0..limit: `limit` when a request would not fit.
 */
function countOf(d, limit, peeked = false) {
  if (!d.allowed) return { hits: peeked ? limit : limit + 1, ms: d.retryAfterMs >= 0 ? d.retryAfterMs : d.resetAfterMs };
  const used = Math.min(Math.max(d.limit - d.remaining - (peeked ? 1 : 0), 0), limit);
  return { hits: peeked ? used : Math.max(used, 1), ms: d.resetAfterMs };
}

/** A glob-safe pattern for SCAN MATCH: every key starting with `prefix`. */
function prefixPattern(prefix) {
  return `${prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}*`;
}

/**
 * Resets (RL.RESET, or the script's reset) every key of `limiter` whose id starts with
 * `idPrefix`: SCAN on every master, then one reset per key found, and the same keys of the
 * local limiter. Keys written during the scan may be missed (SCAN returns every key that
 * existed for its whole length). Resolves the number of keys reset.
 */
async function resetMatching(limiter, idPrefix) {
  const keyPrefix = limiter.prefix + idPrefix;
  let n = 0;
  for (const send of await limiter.transport.masters()) {
    let cursor = '0';
    do {
      const reply = await send(['SCAN', cursor, 'MATCH', prefixPattern(keyPrefix), 'COUNT', SCAN_COUNT]);
      cursor = String(reply[0]);
      for (const key of reply[1]) {
        await limiter.reset(String(key).slice(limiter.prefix.length));
        n += 1;
      }
    } while (cursor !== '0');
  }
  for (const mk of [...limiter.local.states.keys()]) if (mk.startsWith(keyPrefix)) limiter.local.reset(mk);
  return n;
}

module.exports = { limiterFrom, checkKind, windowLimit, countOf, resetMatching, prefixPattern, MAX_SLIDING_WINDOW_MS };
