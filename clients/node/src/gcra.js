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

module.exports = { EMPTY, decide, explain, evaluate, remaining, emptyAtMs, inUnits, fromUnits, clamped };
