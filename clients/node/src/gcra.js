'use strict';
// The module's GCRA (src/gcra.rs, src/verdict.rs), in exact integers (BigInt), for the
// in-process limiter.
//
// The bucket stores one instant, its theoretical arrival time (TAT), kept as the exact
// fraction `ms + frac/den` where `den` is the limit of the policy that wrote it. Decisions
// are taken in units of 1/limit ms, where the emission interval T = window_ms / limit is the
// integer `window_ms`:
//
//   allowed  <=>  max(TAT, now) + cost*T - now <= burst*T      then  TAT := max(TAT, now) + cost*T
//
// A denied request changes nothing. A TAT more than a full bucket ahead of now (written
// before the clock stepped back) is read as one full bucket. Time is a parameter (`nowMs`,
// Unix ms as a BigInt). No floating point anywhere.
//
// PURE: no I/O, no clock.

/** The empty bucket: long past. */
const EMPTY = Object.freeze({ ms: 0n, frac: 0n, den: 1n });

function ceilDiv(a, b) {
  return (a + b - 1n) / b;
}

/** The TAT in units of 1/limit ms, rounded up when `limit` is not its own denominator. */
function inUnits(tat, limit) {
  const whole = tat.ms * limit;
  if (tat.den === limit) return whole + tat.frac;
  return whole + ceilDiv(tat.frac * limit, tat.den);
}

function fromUnits(units, limit) {
  return { ms: units / limit, frac: units % limit, den: limit };
}

/** The first whole ms at or after the TAT: the bucket is empty from then on. */
function emptyAtMs(tat) {
  return tat.ms + (tat.frac > 0n ? 1n : 0n);
}

/** The TAT as a decision at `nowMs` reads it: never more than one full bucket ahead. */
function clamped(policy, tat, nowMs) {
  const cap = nowMs * policy.limit + policy.burst * policy.windowMs;
  return inUnits(tat, policy.limit) <= cap ? tat : fromUnits(cap, policy.limit);
}

/**
 * Decides a request of `cost` at `nowMs` against a bucket at `tat` under `policy`
 * ({limit, windowMs, burst} as BigInt). Returns the bucket's new TAT, or null when denied.
 */
function decide(policy, tat, nowMs, cost) {
  const { limit, windowMs: interval, burst } = policy;
  const tolerance = burst * interval;
  const now = nowMs * limit;
  const held = inUnits(clamped(policy, tat, nowMs), limit);
  const start = held > now ? held : now;
  const next = start + cost * interval;
  if (next - now > tolerance) return null;
  return fromUnits(next, limit);
}

/** Cost-1 requests that would pass at `nowMs` against a bucket at `tat`. */
function remaining(policy, tat, nowMs) {
  const interval = policy.windowMs;
  const tolerance = policy.burst * interval;
  const now = nowMs * policy.limit;
  const held = inUnits(clamped(policy, tat, nowMs), policy.limit);
  const backlog = held > now ? held - now : 0n;
  return tolerance > backlog ? (tolerance - backlog) / interval : 0n;
}

/**
 * The numbers of a decision already taken (`next`: decide()'s result on the same inputs),
 * as RL.THROTTLE gives them: {allowed, tat (after), limit, remaining, retryAfterMs (-1 when
 * allowed or never), resetAfterMs}, every number a BigInt.
 */
function explain(policy, tat, nowMs, cost, next) {
  const before = clamped(policy, tat, nowMs);
  const after = next || before;
  let retryAfterMs = -1n;
  if (!next && cost <= policy.burst) {
    // The first whole ms t with tat + cost*T - t <= burst*T (in 1/limit ms units).
    const needed = inUnits(before, policy.limit) + cost * policy.windowMs - policy.burst * policy.windowMs;
    const atMs = needed > 0n ? ceilDiv(needed, policy.limit) : 0n;
    const wait = atMs - nowMs;
    retryAfterMs = wait > 1n ? wait : 1n;
  }
  const empty = emptyAtMs(after);
  return {
    allowed: next !== null,
    tat: after,
    limit: policy.burst,
    remaining: remaining(policy, after, nowMs),
    retryAfterMs,
    resetAfterMs: empty > nowMs ? empty - nowMs : 0n,
  };
}

/** decide() and explain() in one: one request against one bucket. */
function evaluate(policy, tat, nowMs, cost) {
  return explain(policy, tat, nowMs, cost, decide(policy, tat, nowMs, cost));
}

/** The backlog at `nowMs` in 1/limit-ms units, as a decision reads it (at most one full bucket; 0 when empty). */
function backlog(policy, tat, nowMs) {
  const b = inUnits(clamped(policy, tat, nowMs), policy.limit) - nowMs * policy.limit;
  return b > 0n ? b : 0n;
}

/**
 * Gives back `n` units (RL.REFUND): TAT := max(now, TAT - n*T), given back min(n, ceil((TAT -
 * now) / T)). Never makes room beyond an empty bucket. Returns {tat, given}.
 */
function refund(policy, tat, nowMs, n) {
  const b = backlog(policy, tat, nowMs);
  if (b === 0n) return { tat, given: 0n };
  const owed = ceilDiv(b, policy.windowMs);
  const left = b - n * policy.windowMs;
  return { tat: fromUnits(nowMs * policy.limit + (left > 0n ? left : 0n), policy.limit), given: n < owed ? n : owed };
}

/**
 * Charges `units` whatever it does to admission (a settle above its estimate): TAT :=
 * min(max(TAT, now) + units*T, now + burst*T), a debt of at most one full bucket beyond now.
 */
function charge(policy, tat, nowMs, units) {
  const full = policy.burst * policy.windowMs;
  const b = backlog(policy, tat, nowMs) + units * policy.windowMs;
  return fromUnits(nowMs * policy.limit + (b < full ? b : full), policy.limit);
}

/** Ms until a denied request of `cost` passes: the first whole ms t with TAT + cost*T - t <= burst*T; -1 never. */
function retryAfterMs(policy, tat, nowMs, cost) {
  if (cost > policy.burst) return -1n;
  const needed = inUnits(clamped(policy, tat, nowMs), policy.limit) + cost * policy.windowMs - policy.burst * policy.windowMs;
  const wait = (needed > 0n ? ceilDiv(needed, policy.limit) : 0n) - nowMs;
  return wait > 1n ? wait : 1n;
}

function gcd(a, b) {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/** A TAT in lowest terms (as the module stores it, so that equal instants compare equal). */
function lowest(units, limit) {
  const frac = units % limit;
  if (frac === 0n) return Object.freeze({ ms: units / limit, frac: 0n, den: 1n });
  const g = gcd(frac, limit);
  return Object.freeze({ ms: units / limit, frac: frac / g, den: limit / g });
}

function clampedLowest(l, tat, nowMs) {
  const cap = nowMs * l.limit + l.burst * l.windowMs;
  return inUnits(tat, l.limit) <= cap ? tat : lowest(cap, l.limit);
}

/**
 * A settle giving back `units` of a hold of `estimate` whose bucket ended at `end` right
 * after its reserve: g = min(units*T, end - max(now, end - estimate*T)) (in 1/limit ms, 0 if
 * negative), so units of the hold that already drained are never given back. {tat, g}.
 */
function settleRefund(l, tat, nowMs, units, end, estimate) {
  const e = inUnits(end, l.limit);
  const now = nowMs * l.limit;
  const start = e - estimate * l.windowMs;
  let g = e - (now > start ? now : start);
  if (units * l.windowMs < g) g = units * l.windowMs;
  if (g < 0n) g = 0n;
  const t = inUnits(clampedLowest(l, tat, nowMs), l.limit);
  const owed = t > now ? t - now : 0n;
  if (owed < g) g = owed;
  if (g === 0n) return { tat, g: 0n };
  return { tat: lowest(t - g, l.limit), g };
}

// The interface every kind offers to limits.js (clients/python/.../gcra.py's), on a usage
// {kind: 'gcra', tat}, each taking the limit first.
const usage = (tat) => Object.freeze({ kind: 'gcra', tat });
const max = (a, b) => (a > b ? a : b);
const KIND = {
  EMPTY: usage(EMPTY),
  /** The TAT after a request of `cost`, or null when it does not fit. */
  admit: (l, u, nowMs, cost) => {
    const now = nowMs * l.limit;
    const next = now + backlog(l, u.tat, nowMs) + cost * l.windowMs;
    return next - now <= l.burst * l.windowMs ? usage(lowest(next, l.limit)) : null;
  },
  record: (_l, _u, admitted) => admitted,
  repair: (l, u, nowMs) => {
    const c = clampedLowest(l, u.tat, nowMs);
    return c === u.tat ? u : usage(c);
  },
  /** [cost-1 requests still passing, the ms from which the bucket is empty] after a request. */
  after: (l, u, admitted, nowMs) => {
    const tat = (admitted || u).tat;
    return [remaining(l, tat, nowMs), max(emptyAtMs(clampedLowest(l, tat, nowMs)), nowMs)];
  },
  /** Ms until a request of `cost` fits (0: now), null when it never can. */
  waitMs: (l, u, nowMs, cost) => {
    if (cost > l.burst) return null;
    const needed = max(inUnits(clampedLowest(l, u.tat, nowMs), l.limit) + cost * l.windowMs - l.burst * l.windowMs, 0n);
    return max(ceilDiv(needed, l.limit) - nowMs, 0n);
  },
  ownEmptyAt: (u) => emptyAtMs(u.tat),
  windowOf: () => null,
  /** Under this (changed) GCRA limit from atMs: the same backlog as time, at most one full bucket. */
  carry: (l, u, atMs) => usage(clampedLowest(l, u.tat, atMs)),
  /** What is still owed at atMs, for a limit of another kind: ['until', tat] or null. */
  export: (u, atMs) => (emptyAtMs(u.tat) > atMs ? ['until', u.tat] : null),
  import: (l, carried, atMs) => {
    if (carried === null) return KIND.EMPTY;
    const [what, value] = carried;
    if (what === 'until') return usage(clampedLowest(l, value, atMs));
    if (what === 'requests') {
      const full = l.burst * l.windowMs;
      const owed = value * l.windowMs;
      return usage(lowest(atMs * l.limit + (owed < full ? owed : full), l.limit));
    }
    return KIND.EMPTY;
  },
  refund: (l, u, nowMs, n) => {
    const b = backlog(l, u.tat, nowMs);
    if (b === 0n) return { usage: u, given: 0n };
    const owed = ceilDiv(b, l.windowMs);
    const left = b - n * l.windowMs;
    return { usage: usage(lowest(nowMs * l.limit + (left > 0n ? left : 0n), l.limit)), given: n < owed ? n : owed };
  },
  charge: (l, u, nowMs, units) => {
    const full = l.burst * l.windowMs;
    const b = backlog(l, u.tat, nowMs) + units * l.windowMs;
    return usage(lowest(nowMs * l.limit + (b < full ? b : full), l.limit));
  },
};

module.exports = { EMPTY, KIND, decide, explain, evaluate, remaining, emptyAtMs, inUnits, fromUnits, lowest, clamped, refund, charge, retryAfterMs, settleRefund, backlog };
