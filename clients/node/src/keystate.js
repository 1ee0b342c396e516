'use strict';
// A key's whole state and every operation on it, as the module keeps it (issues 19 and 20,
// fixed in spec-19-20.md): the usage of each limit (limits.js), the open holds of
// reservations, the block with its penalty level, and the last id issued. Each operation is
// a pure function (policy, state, nowMs, arguments) -> {reply, state}, `state` null when
// nothing is to be written. The local limiter runs them; clients/lua/ratelimit.lua and the
// Python client's keystate.py are the same rules, and the conformance traces hold all of
// them to the module's numbers.
//
// A state is {usage: [...], holds: [{id, estimate, atMs, expiresAtMs}], block: {untilMs,
// level} | null, lastId: BigInt | null, policy: the policy of the last write | null}, every
// number a BigInt. PURE: no I/O, no clock.

const limitsOf = require('./limits');
const concurrency = require('./concurrency');
const { CommandError, NoRateLimit } = require('./errors');
const { hasConcurrency, longestWindowMs, penaltyLengthMs, DEFAULT_HOLD_MS } = require('./policy');

/** At most this many open holds per key. */
const MAX_HOLDS = 64;
const MESSAGES = {
  tooManyHolds: 'too many open reservations: a key holds at most 64 (settle them or let them expire)',
  unknownReservation: 'unknown reservation: it expired, was settled, or was never issued',
  concurrencyKey: 'this key has a CONCURRENCY limit: take a lease with RL.ACQUIRE and give it back with RL.RELEASE',
  noPolicy: 'no rate limit for key: configure it or pass an inline policy',
};

const EMPTY = Object.freeze({ usage: Object.freeze([]), holds: Object.freeze([]), block: null, lastId: null, policy: null });

function with_(state, changes) {
  return Object.freeze({ ...state, ...changes });
}

/**
 * Reservations and leases share one id sequence per key: strictly increasing, never reused,
 * `nowMs * 1000` or more (so ids also increase across a key's lives).
 */
function nextId(state, nowMs) {
  const floor = nowMs * 1000n;
  if (state.lastId === null) return floor;
  return state.lastId + 1n > floor ? state.lastId + 1n : floor;
}

function openHolds(state, nowMs) {
  return state.holds.filter((h) => h.expiresAtMs > nowMs);
}

function blockedUntil(state, nowMs) {
  const b = state.block;
  return b !== null && b.untilMs > nowMs ? b.untilMs : null;
}

/**
 * RL.THROTTLE (and RL.ALLOW), RL.PEEK, RL.RESERVE (cost = the estimate) or RL.ACQUIRE, by
 * `mode`. Returns {reply: {allowed, limit, remaining, retryAfterMs, resetAfterMs, binding,
 * id (the reservation or lease, or null)}, state}. Throws CommandError for a rate check on a
 * CONCURRENCY key and for a 65th open hold (nothing counted).
 */
function check(policy, state, nowMs, cost, mode = 'throttle', { shadow = false, holdMs = DEFAULT_HOLD_MS } = {}) {
  const leased = hasConcurrency(policy);
  if (leased && (mode === 'throttle' || mode === 'reserve')) throw new CommandError(MESSAGES.concurrencyKey);
  const holds = openHolds(state, nowMs);
  if (mode === 'reserve' && holds.length >= MAX_HOLDS) throw new CommandError(MESSAGES.tooManyHolds);
  const consume = mode !== 'peek';
  const leaseId = mode === 'acquire' && leased ? nextId(state, nowMs) : null;
  const o = limitsOf.decide(policy.limits, state.usage, nowMs, cost, leaseId);
  const until = blockedUntil(state, nowMs);
  if (until !== null) {
    // Blocked: denied with the time to the block's end; counts nothing, extends nothing.
    const reply = { allowed: shadow, limit: o.limit, remaining: 0n, retryAfterMs: shadow ? -1n : until - nowMs, resetAfterMs: o.resetAfterMs, binding: o.binding, id: null };
    return { reply, state: null };
  }
  const reply = {
    allowed: o.allowed || shadow,
    limit: o.limit,
    remaining: o.remaining,
    retryAfterMs: shadow ? -1n : o.retryAfterMs,
    resetAfterMs: o.resetAfterMs,
    binding: o.binding,
    id: null,
  };
  if (o.allowed) {
    if (!consume) return { reply, state: null };
    let next = with_(state, { usage: o.usage, holds, policy });
    if (mode === 'reserve') {
      const id = nextId(state, nowMs);
      next = with_(next, { holds: [...holds, Object.freeze({ id, estimate: cost, atMs: nowMs, expiresAtMs: nowMs + holdMs })], lastId: id });
      reply.id = id;
    } else if (leaseId !== null) {
      next = with_(next, { lastId: leaseId });
      reply.id = leaseId;
    }
    return { reply, state: next };
  }
  const repaired = o.repaired ? with_(state, { usage: o.usage, holds, policy }) : null;
  if (shadow || !consume || !policy.penalty) return { reply, state: repaired };
  // A denial of a key that is not blocked blocks it for ms * 2^level (at most maxMs), the
  // level one more than the last block's when that ended less than one (longest) window ago.
  // The denial itself answers as any denial; the checks after it see the block.
  const prev = state.block;
  const level = prev !== null && nowMs - prev.untilMs < longestWindowMs(policy) ? prev.level + 1 : 0;
  const block = Object.freeze({ untilMs: nowMs + penaltyLengthMs(policy.penalty, level), level });
  return { reply, state: with_(repaired || with_(state, { holds, policy }), { block }) };
}

/** RL.REFUND: {reply: the most units any limit gave back, state}; 0 writes nothing. */
function refund(policy, state, nowMs, n) {
  const r = limitsOf.refund(policy.limits, state.usage, nowMs, n);
  if (r.given === 0n) return { reply: 0n, state: null };
  return { reply: r.given, state: with_(state, { usage: r.usage, holds: openHolds(state, nowMs), policy }) };
}

/**
 * RL.SETTLE: {reply: units charged, or refunded as a negative number, state}. `policy` is
 * the one the key's last write was decided under (the local limiter has no other).
 */
function settle(policy, state, nowMs, id, actual) {
  const holds = openHolds(state, nowMs);
  const hold = holds.find((h) => h.id === id);
  if (!hold) throw new CommandError(MESSAGES.unknownReservation);
  const d = actual - hold.estimate;
  if (d !== 0n && !policy) throw new NoRateLimit(MESSAGES.noPolicy);
  let usage = state.usage;
  let reply = d;
  if (d < 0n) {
    // Never more than the hold: a SLIDING limit gives back only from the hold's own entry.
    const r = limitsOf.refund(policy.limits, usage, nowMs, -d, hold.atMs);
    usage = r.usage;
    reply = -r.given;
  } else if (d > 0n) {
    usage = limitsOf.charge(policy.limits, usage, nowMs, d); // settling cannot be denied
  }
  return { reply, state: with_(state, { usage, holds: holds.filter((h) => h !== hold) }) };
}

/** RL.BLOCK: blocked until now + ms whatever was there (the level is kept). */
function block(state, nowMs, ms) {
  const level = state.block ? state.block.level : 0;
  return { reply: 'OK', state: with_(state, { block: Object.freeze({ untilMs: nowMs + ms, level }), holds: openHolds(state, nowMs) }) };
}

/** RL.UNBLOCK: 1 (the block and its level gone) if blocked, else 0 and nothing written. */
function unblock(state, nowMs) {
  if (blockedUntil(state, nowMs) === null) return { reply: 0n, state: null };
  return { reply: 1n, state: with_(state, { block: null, holds: openHolds(state, nowMs) }) };
}

function leases(state, nowMs, change) {
  let hit = false;
  const usage = state.usage.map((u) => {
    if (u.kind !== 'concurrency') return u;
    const r = change(u);
    hit = hit || r.found;
    return r.usage;
  });
  if (!hit) return { reply: 0n, state: null };
  return { reply: 1n, state: with_(state, { usage, holds: openHolds(state, nowMs) }) };
}

/** RL.RELEASE: 1 if lease `id` was held (now gone from every CONCURRENCY limit), else 0. */
function release(state, nowMs, id) {
  return leases(state, nowMs, (u) => concurrency.release(u, nowMs, id));
}

/** RL.RENEW: 1 if lease `id` was held (it now expires at now + ms), else 0. */
function renew(state, nowMs, id, ms) {
  return leases(state, nowMs, (u) => concurrency.renew(u, nowMs, id, ms));
}

/** RL.RESET: usage, holds, leases and the block forgotten; the id sequence kept. */
function reset(state) {
  return with_(EMPTY, { lastId: state.lastId });
}

/** RL.INFO's key-level fields of issues 19 and 20. */
function summary(state, nowMs) {
  const holds = openHolds(state, nowMs);
  const until = blockedUntil(state, nowMs);
  const ids = new Set();
  for (const u of state.usage) if (u.kind === 'concurrency') for (const x of concurrency.live(u, nowMs)) ids.add(x.id);
  let held = 0n;
  let next = null;
  for (const h of holds) {
    held += h.estimate;
    if (next === null || h.expiresAtMs < next) next = h.expiresAtMs;
  }
  return {
    blockedMs: until === null ? 0n : until - nowMs,
    penaltyLevel: state.block ? state.block.level : 0,
    holds: holds.length,
    held,
    nextHoldExpiryMs: next === null ? null : next - nowMs,
    leases: ids.size,
  };
}

/** When a key without a stored policy may go: every limit empty, every hold and lease expired, the block over. */
function expiresAtMs(state, nowMs) {
  let at = state.policy ? limitsOf.emptyAtMs(state.policy.limits, state.usage, nowMs) : nowMs;
  for (const h of openHolds(state, nowMs)) if (h.expiresAtMs > at) at = h.expiresAtMs;
  const until = blockedUntil(state, nowMs);
  return until !== null && until > at ? until : at;
}

module.exports = { EMPTY, MAX_HOLDS, MESSAGES, nextId, openHolds, blockedUntil, check, refund, settle, block, unblock, release, renew, reset, summary, expiresAtMs };
