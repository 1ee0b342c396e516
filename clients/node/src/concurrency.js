'use strict';
// CONCURRENCY (spec-19-20.md, issue 20): a semaphore whose leases heal themselves. At most
// `limit` (by cost) leases are held at once; a lease {id, cost, expiresAtMs} is live while
// now < expiresAtMs and ends when released, or by itself `windowMs` after it was taken (or
// renewed): a worker that dies holding one gives its slot back without anyone's help. An
// expiry is absolute Unix ms, so a clock that steps back only makes it further away.
//
// A usage is {kind: 'concurrency', leases} with `leases` a frozen array, oldest first. The
// functions are the interface every kind offers to limits.js. PURE: no I/O, no clock.

const EMPTY = Object.freeze({ kind: 'concurrency', leases: Object.freeze([]) });

function of(leases) {
  return Object.freeze({ kind: 'concurrency', leases: Object.freeze(leases) });
}

function live(usage, nowMs) {
  return usage.leases.filter((x) => x.expiresAtMs > nowMs);
}

function held(usage, nowMs) {
  let n = 0n;
  for (const x of live(usage, nowMs)) n += x.cost;
  return n;
}

/** Expiries are absolute: nothing reads differently after a clock step. */
function repair(_limit, usage) {
  return usage;
}

function fits(limit, usage, nowMs, cost) {
  return cost <= limit.limit && held(usage, nowMs) + cost <= limit.limit;
}

/** The leases after taking one of `cost` with id `leaseId`, living windowMs (only when it fits). */
function counted(limit, usage, nowMs, cost, leaseId) {
  return of([...live(usage, nowMs), Object.freeze({ id: leaseId, cost, expiresAtMs: nowMs + limit.windowMs })]);
}

/** Leases of cost 1 that could be taken now (0, not negative, over a lowered limit). */
function remaining(limit, usage, nowMs) {
  const h = held(usage, nowMs);
  return limit.limit > h ? limit.limit - h : 0n;
}

/** The first ms at which every lease has expired (nowMs when none is held). */
function emptyAtMs(_limit, usage, nowMs) {
  let at = nowMs;
  for (const x of live(usage, nowMs)) if (x.expiresAtMs > at) at = x.expiresAtMs;
  return at;
}

function resetAfterMs(limit, usage, nowMs) {
  return emptyAtMs(limit, usage, nowMs) - nowMs;
}

/** Ms until enough held leases expire for `cost` to fit (cost 1: the earliest expiry); -1 never. */
function retryAfterMs(limit, usage, nowMs, cost) {
  if (cost > limit.limit) return -1n;
  const current = live(usage, nowMs).sort((a, b) => (a.expiresAtMs < b.expiresAtMs ? -1 : a.expiresAtMs > b.expiresAtMs ? 1 : 0));
  let left = 0n;
  for (const x of current) left += x.cost;
  for (const x of current) {
    left -= x.cost;
    if (left + cost <= limit.limit) {
      const wait = x.expiresAtMs - nowMs;
      return wait > 1n ? wait : 1n;
    }
  }
  return 1n; // unreachable for a denied request of cost <= limit
}

/** A lease is given back with release, not refunded. */
function refund(_limit, usage) {
  return { usage, given: 0n };
}

/** A settle charges rate limits only. */
function charge(_limit, usage) {
  return usage;
}

/** {usage without `id`, whether it was live}. */
function release(usage, nowMs, id) {
  const current = live(usage, nowMs);
  const rest = current.filter((x) => x.id !== id);
  return { usage: of(rest), found: rest.length !== current.length };
}

/** {usage with `id` expiring at nowMs + ms, whether it was live}. */
function renew(usage, nowMs, id, ms) {
  let found = false;
  const out = live(usage, nowMs).map((x) => {
    if (x.id !== id) return x;
    found = true;
    return Object.freeze({ id: x.id, cost: x.cost, expiresAtMs: nowMs + ms });
  });
  return { usage: of(out), found };
}

const max = (a, b) => (a > b ? a : b);
// The interface every kind offers to limits.js (clients/python/.../concurrency.py's). A lease
// is not a request: a change to or from another kind starts empty (a new contract), and one
// at the same position keeps the live leases.
const KIND = {
  EMPTY,
  admit: (l, u, nowMs, cost) => (fits(l, u, nowMs, cost) ? true : null),
  record: (l, u, _admitted, nowMs, cost, leaseId) => counted(l, u, nowMs, cost, leaseId),
  repair,
  /** [leases of cost 1 that could still be taken, when the last lease expires]. */
  after: (l, u, admitted, nowMs, cost) => {
    const h = held(u, nowMs);
    if (admitted !== null) return [max(l.limit - h - cost, 0n), max(emptyAtMs(l, u, nowMs), nowMs + l.windowMs)];
    return [max(l.limit - h, 0n), emptyAtMs(l, u, nowMs)];
  },
  waitMs: (l, u, nowMs, cost) => {
    if (cost > l.limit) return null;
    if (fits(l, u, nowMs, cost)) return 0n;
    return retryAfterMs(l, u, nowMs, cost);
  },
  ownEmptyAt: (u, nowMs) => emptyAtMs(null, u, nowMs),
  windowOf: () => null,
  carry: (_l, u, atMs) => of(live(u, atMs)),
  export: () => null,
  import: () => EMPTY,
  refund,
  charge,
};

module.exports = { KIND, EMPTY, live, held, repair, fits, counted, remaining, emptyAtMs, resetAfterMs, retryAfterMs, refund, charge, release, renew };
