'use strict';
// A key's whole state and every operation on it, as the module keeps it (issue 17's one
// pipeline, core/src/state.rs; issues 19 and 20 as fixed in spec-19-20.md): the usage of each
// limit as recorded (limits.js), the stored policy and the instant of a reconfiguration not
// written yet, the open holds of reservations, the block with its penalty level, and the last
// id issued. Each operation is a pure function (..., state, nowMs, arguments) -> {reply,
// state}, `state` null when nothing is to be written. The local limiter runs them;
// clients/lua/ratelimit.lua and the Python client's keystate.py are the same rules, and the
// conformance traces hold all of them to the module's numbers.
//
// A state is {usage: [...], holds: [{id, estimate, atMs, expiresAtMs, ends}], block:
// {untilMs, level} | null, lastId, policy: the policy of the last write of a key without a
// stored one | null, stored: the configured policy | null, pendingAtMs}, every number a
// BigInt. A hold's `ends`: per limit, the GCRA bucket's TAT right after the reserve (null for
// other kinds), so that a settle never gives back units of the hold that already drained.
// PURE: no I/O, no clock.

const limitsOf = require('./limits');
const concurrency = require('./concurrency');
const gcra = require('./gcra');
const sliding = require('./sliding');
const { CommandError, NoRateLimit } = require('./errors');
const { hasConcurrency, longestWindowMs, penaltyLengthMs, DEFAULT_HOLD_MS } = require('./policy');

/** At most this many open holds per key. */
const MAX_HOLDS = 64;
/** The penalty level stops here (the duration saturates at maxMs long before). */
const MAX_LEVEL = 63;
const MESSAGES = {
  tooManyHolds: 'too many open reservations: a key holds at most 64 (settle them or let them expire)',
  unknownReservation: 'unknown reservation: it expired, was settled, or was never issued',
  concurrencyKey: 'this key has a CONCURRENCY limit: take a lease with RL.ACQUIRE and give it back with RL.RELEASE',
  noPolicy: 'no rate limit for key: configure it or pass an inline policy',
};

const EMPTY = Object.freeze({ usage: Object.freeze([]), holds: Object.freeze([]), block: null, lastId: null, policy: null, stored: null, pendingAtMs: null });

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

/** The usage `limits` read (limits.view): carried as of a pending reconfiguration. */
function seen(limits, state, nowMs) {
  return limitsOf.view(limits, state.usage, state.pendingAtMs, nowMs);
}

/** Every hold's GCRA end at most its bucket's TAT (after a change that lowered it). */
function endsWithin(limits, usage, holds) {
  return holds.map((h) => {
    const ends = (h.ends || []).map((end, i) => {
      const l = limits[i];
      if (end === null || !l || l.kind !== 'gcra' || !usage[i] || usage[i].kind !== 'gcra') return end;
      return gcra.inUnits(end, l.limit) > gcra.inUnits(usage[i].tat, l.limit) ? usage[i].tat : end;
    });
    return Object.freeze({ ...h, ends });
  });
}

/** The state after a write under `pol`: the usage stored in its form, expired holds pruned, and (a key without a stored policy) the policy remembered. */
function written(state, pol, usage, holds) {
  return with_(state, { usage, pendingAtMs: null, holds: endsWithin(pol.limits, usage, holds), policy: state.stored ? null : pol });
}

/** RL.CONFIG: stores `pol`, keeping what the client used (carried on every read as of now), the holds, the block and the id sequence. */
function configure(state, pol, nowMs) {
  const c = limitsOf.configured(state.stored ? state.stored.limits : null, state.usage, state.pendingAtMs, pol.limits, nowMs);
  return with_(state, { usage: c.usage, pendingAtMs: c.pendingAtMs, stored: pol, policy: null });
}

/**
 * A blocked check (also the denial that starts a penalty): denied, remaining 0, told to retry
 * when both the block has ended and its limits admit it (-1: never), reset when both the
 * block and every limit are over.
 */
function blockedNumbers(n, untilMs, nowMs) {
  const blockMs = untilMs - nowMs;
  const retry = n.retryAfterMs < 0n ? -1n : n.retryAfterMs > blockMs ? n.retryAfterMs : blockMs;
  return { allowed: false, limit: n.limit, remaining: 0n, retryAfterMs: retry, resetAfterMs: n.resetAfterMs > blockMs ? n.resetAfterMs : blockMs, binding: n.binding, id: null };
}

/**
 * RL.THROTTLE (and RL.ALLOW), RL.PEEK, RL.RESERVE (cost = the estimate) or RL.ACQUIRE, by
 * `mode`, under the key's stored policy, else `policy`. Returns {reply: {allowed, limit,
 * remaining, retryAfterMs, resetAfterMs, binding, id (the reservation or lease, or null)},
 * state}. Throws CommandError for a rate check on a CONCURRENCY key and for a 65th open hold.
 */
function check(policy, state, nowMs, cost, mode = 'throttle', { shadow = false, holdMs = DEFAULT_HOLD_MS } = {}) {
  const pol = state.stored || policy;
  if (!pol) throw new NoRateLimit(MESSAGES.noPolicy);
  const leased = hasConcurrency(pol);
  if (leased && (mode === 'throttle' || mode === 'reserve')) throw new CommandError(MESSAGES.concurrencyKey);
  const holds = openHolds(state, nowMs);
  if (mode === 'reserve' && holds.length >= MAX_HOLDS) throw new CommandError(MESSAGES.tooManyHolds);
  let usage = seen(pol.limits, state, nowMs);
  const admits = limitsOf.admitAll(pol.limits, usage, nowMs, cost);
  const until = blockedUntil(state, nowMs);
  if (until !== null) {
    // Counts nothing, extends nothing; a shadow key is told allowed.
    const g = blockedNumbers(limitsOf.numbers(pol.limits, usage, admits, nowMs, cost, true), until, nowMs);
    return { reply: shadow ? { ...g, allowed: true, retryAfterMs: -1n } : g, state: null };
  }
  const n = limitsOf.numbers(pol.limits, usage, admits, nowMs, cost);
  const consume = mode !== 'peek';
  if (n.allowed) {
    const reply = { allowed: true, limit: n.limit, remaining: n.remaining, retryAfterMs: -1n, resetAfterMs: n.resetAfterMs, binding: n.binding, id: null };
    if (!consume) return { reply, state: null };
    const leaseId = mode === 'acquire' && leased ? nextId(state, nowMs) : null;
    usage = limitsOf.record(pol.limits, usage, admits, nowMs, cost, leaseId);
    let next = written(state, pol, usage, holds);
    if (mode === 'reserve') {
      const id = nextId(state, nowMs);
      const ends = usage.map((u) => (u.kind === 'gcra' ? u.tat : null));
      next = with_(next, { holds: [...next.holds, Object.freeze({ id, estimate: cost, atMs: nowMs, expiresAtMs: nowMs + holdMs, ends })], lastId: id });
      reply.id = id;
    } else if (leaseId !== null) {
      next = with_(next, { lastId: leaseId });
      reply.id = leaseId;
    }
    return { reply, state: next };
  }
  const reply = { allowed: shadow, limit: n.limit, remaining: n.remaining, retryAfterMs: shadow ? -1n : n.retryAfterMs, resetAfterMs: n.resetAfterMs, binding: n.binding, id: null };
  if (!consume) return { reply, state: null };
  const r = limitsOf.repair(pol.limits, usage, nowMs);
  if (shadow || !pol.penalty) return { reply, state: r.moved ? written(state, pol, r.usage, holds) : null };
  // A denial of a key that is not blocked blocks it: ms * 2^level, at most maxMs, the level
  // one more than the last block's if that ended less than one (longest) window ago. It tells
  // the truth about the block it starts.
  const prev = state.block;
  const level = prev !== null && nowMs - prev.untilMs < longestWindowMs(pol) ? Math.min(prev.level + 1, MAX_LEVEL) : 0;
  const block = Object.freeze({ untilMs: nowMs + penaltyLengthMs(pol.penalty, level), level });
  return { reply: blockedNumbers(n, block.untilMs, nowMs), state: with_(written(state, pol, r.usage, holds), { block }) };
}

/** RL.REFUND: {reply: the most units any limit gave back, state}; 0 writes nothing. */
function refund(policy, state, nowMs, n) {
  const pol = state.stored || policy;
  const r = limitsOf.refund(pol.limits, seen(pol.limits, state, nowMs), nowMs, n);
  if (r.given === 0n) return { reply: 0n, state: null };
  return { reply: r.given, state: written(state, pol, r.usage, openHolds(state, nowMs)) };
}

/**
 * {usage, others, given} after a settle gives back `units` of `hold`: a GCRA limit only what
 * of the hold has not drained (moving later holds' ends earlier by as much), a SLIDING one
 * only from the hold's own entry.
 */
function settleRefund(limits, usage, nowMs, hold, units, others) {
  let most = 0n;
  others = [...others];
  const out = limits.map((l, i) => {
    let u = usage[i];
    let given = 0n;
    if (l.kind === 'gcra') {
      const end = hold.ends && i < hold.ends.length ? hold.ends[i] : null;
      if (end !== null) {
        const r = gcra.settleRefund(l, u.tat, nowMs, units, end, hold.estimate);
        if (r.g > 0n) u = Object.freeze({ kind: 'gcra', tat: r.tat });
        given = (r.g + l.windowMs - 1n) / l.windowMs;
        const mine = gcra.inUnits(end, l.limit);
        others = others.map((h) => {
          const e = h.ends && i < h.ends.length ? h.ends[i] : null;
          if (r.g === 0n || e === null || gcra.inUnits(e, l.limit) <= mine) return h;
          const ends = [...h.ends];
          ends[i] = gcra.lowest(gcra.inUnits(e, l.limit) - r.g, l.limit);
          return Object.freeze({ ...h, ends });
        });
      }
    } else if (l.kind === 'sliding') {
      const r = sliding.KIND.refund(l, u, nowMs, units, hold.atMs);
      u = r.usage;
      given = r.given;
    }
    if (given > most) most = given;
    return u;
  });
  return { usage: out, others, given: most };
}

/**
 * RL.SETTLE: {reply: units charged, or given back as a negative number, state}, under the
 * key's stored policy, else the policy of its last write.
 */
function settle(state, nowMs, id, actual) {
  const pol = state.stored || state.policy;
  const holds = openHolds(state, nowMs);
  const hold = holds.find((h) => h.id === id);
  if (!hold) throw new CommandError(MESSAGES.unknownReservation);
  const d = actual - hold.estimate;
  if (d !== 0n && !pol) throw new NoRateLimit(MESSAGES.noPolicy);
  const rest = holds.filter((h) => h !== hold);
  if (d === 0n) return { reply: 0n, state: with_(state, { holds: rest }) };
  const usage = seen(pol.limits, state, nowMs);
  if (d < 0n) {
    // Never more than the hold.
    const r = settleRefund(pol.limits, usage, nowMs, hold, -d, rest);
    return { reply: -r.given, state: written(state, pol, r.usage, r.others) };
  }
  // Settling is not a request that can be denied: the excess is charged as asked.
  return { reply: d, state: written(state, pol, limitsOf.charge(pol.limits, usage, nowMs, d), rest) };
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

/** What RL.INFO shows as remaining: cost-1 requests that would pass now under the stored policy; null without one. */
function remaining(state, nowMs) {
  if (!state.stored) return null;
  return limitsOf.numbers(state.stored.limits, seen(state.stored.limits, state, nowMs), null, nowMs, 0n).remaining;
}

/** What RL.INFO shows as reset_after_ms (and RL.RESET replies): until every stored limit is empty; without a stored policy, until the usage as recorded is. */
function resetAfterMs(state, nowMs) {
  if (state.stored) return limitsOf.numbers(state.stored.limits, seen(state.stored.limits, state, nowMs), null, nowMs, 0n).resetAfterMs;
  return limitsOf.ownEmptyAt(state.usage, nowMs, nowMs) - nowMs;
}

/**
 * RL.RESET: {reply: ms of backlog forgotten, state: the state after it, null for a key
 * without a stored policy, which is deleted with its id sequence}. A configured key forgets
 * usage, holds, leases, block and penalty level, and keeps its policy and id sequence.
 */
function reset(state, nowMs) {
  const forgotten = resetAfterMs(state, nowMs);
  if (!state.stored) return { reply: forgotten, state: null };
  return { reply: forgotten, state: with_(EMPTY, { usage: state.stored.limits.map(limitsOf.emptyFor), lastId: state.lastId, stored: state.stored }) };
}

function liveLeaseIds(state, nowMs) {
  const ids = new Set();
  for (const u of state.usage) if (u.kind === 'concurrency') for (const x of concurrency.live(u, nowMs)) ids.add(x.id);
  return ids;
}

/** RL.INFO's key-level fields of issues 19 and 20. */
function summary(state, nowMs) {
  const holds = openHolds(state, nowMs);
  const until = blockedUntil(state, nowMs);
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
    leases: liveLeaseIds(state, nowMs).size,
  };
}

/**
 * When a key without a stored policy may go: its usage as recorded empty, every hold and
 * lease expired, the block over; null for a configured key (configuration does not expire).
 */
function expiresAtMs(state, nowMs) {
  if (state.stored) return null;
  let at = limitsOf.ownEmptyAt(state.usage, nowMs, nowMs);
  for (const h of openHolds(state, nowMs)) if (h.expiresAtMs > at) at = h.expiresAtMs;
  const until = blockedUntil(state, nowMs);
  return until !== null && until > at ? until : at;
}

module.exports = { EMPTY, MAX_HOLDS, MAX_LEVEL, MESSAGES, nextId, openHolds, blockedUntil, seen, configure, check, refund, settle, block, unblock, release, renew, remaining, resetAfterMs, reset, summary, expiresAtMs };
