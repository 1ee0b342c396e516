'use strict';
// Up to four limits on one key decided all-or-nothing, exactly as the module does
// (core/src/decide.rs and core/src/state.rs; clients/python/.../limits.py is the same rules).
// A request passes iff every limit admits it, and then each records it; a denial records
// nothing anywhere. The numbers, all exact: `remaining` the fewest cost-1 requests any limit
// still admits, `retryAfterMs` the largest wait (-1 when allowed, or when the cost is above
// some limit's capacity), `resetAfterMs` the time until every limit is empty, and `binding`:
// when denied, the first limit the cost can never pass, else the one waited for longest; when
// allowed, the one with the fewest requests left; on a tie, the first given.
//
// A usage is {kind: 'gcra', tat}, {kind: 'sliding', log, windowMs} or {kind: 'concurrency',
// leases}, as recorded by the policy that last wrote it. A policy reads it as recorded when it
// is native (one usage per limit, each of its limit's kind) and nothing is pending; otherwise
// carried to the policy as of an instant (a pending reconfiguration's, or now for a key
// without a stored policy), position by position: kept by its kind's rule when the kind is
// the same, else what was still live under the old limit then, imported by the new one; a
// limit added at the end starts empty. PURE: no I/O, no clock (`nowMs` is a BigInt).

const gcra = require('./gcra');
const sliding = require('./sliding');
const concurrency = require('./concurrency');

const KINDS = { gcra: gcra.KIND, sliding: sliding.KIND, concurrency: concurrency.KIND };

function emptyFor(limit) {
  return KINDS[limit.kind].EMPTY;
}

function isNative(limits, usage) {
  return usage.length === limits.length && limits.every((l, i) => usage[i].kind === l.kind);
}

/** `usage` carried to `limits` at `atMs` (state.rs, carried). */
function carried(limits, usage, atMs) {
  return limits.map((l, i) => {
    const k = KINDS[l.kind];
    const u = usage[i];
    if (!u) return k.EMPTY;
    if (u.kind === l.kind) return k.carry(l, u, atMs);
    return k.import(l, KINDS[u.kind].export(u, atMs), atMs);
  });
}

/** The usage `limits` read at nowMs: as recorded, or carried (state.rs, view). */
function view(limits, usage, pendingAtMs, nowMs) {
  if (pendingAtMs === null && isNative(limits, usage)) return usage;
  return carried(limits, usage, pendingAtMs === null ? nowMs : pendingAtMs);
}

/** Kept for callers that read usage under a policy now: view() with nothing pending. */
function align(limits, usage, nowMs) {
  return view(limits, usage, null, nowMs);
}

/** SLIDING logs that do not know their window get the one of the limit that recorded them. */
function stampWindows(limits, usage) {
  return usage.map((u, i) => {
    const l = limits[i];
    return l && u.kind === 'sliding' && u.windowMs === 0n && u.log.length && l.kind === 'sliding' ? sliding.of(u.log, l.windowMs) : u;
  });
}

function sameTat(a, b) {
  return a.ms === b.ms && a.frac === b.frac && a.den === b.den;
}

function sameUsage(a, b) {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'gcra') return sameTat(a.tat, b.tat);
  if (a.kind === 'sliding') return a.windowMs === b.windowMs && a.log.length === b.log.length && a.log.every(([t, c], i) => t === b.log[i][0] && c === b.log[i][1]);
  return a.leases.length === b.leases.length && a.leases.every((x, i) => x.id === b.leases[i].id && x.cost === b.leases[i].cost && x.expiresAtMs === b.leases[i].expiresAtMs);
}

/**
 * {usage, pendingAtMs} that storing `limits` at nowMs leaves (State::configure): the usage as
 * recorded is kept and carried on every read as of the change; a second change within the
 * same ms carries from the usage before the first, so a chain of them reads as the last one.
 */
function configured(stored, usage, pendingAtMs, limits, nowMs) {
  let raw = usage;
  if (pendingAtMs !== null && pendingAtMs === nowMs) {
    // the chain composes: carried from before the first change of this ms
  } else if (pendingAtMs !== null && stored !== null) raw = carried(stored, raw, pendingAtMs);
  else if (stored !== null) raw = stampWindows(stored, raw);
  if (raw.length === 0) return { usage: limits.map(emptyFor), pendingAtMs: null };
  const again = carried(limits, raw, nowMs);
  const pending = !isNative(limits, raw) || again.some((u, i) => !sameUsage(u, raw[i]));
  return { usage: raw, pendingAtMs: pending ? nowMs : null };
}

/** Each limit's admission (null: it denies), on usage the limits read. */
function admitAll(limits, usage, nowMs, cost) {
  return limits.map((l, i) => KINDS[l.kind].admit(l, usage[i], nowMs, cost));
}

function allowedBy(admits) {
  return admits.every((a) => a !== null);
}

/** The usage after an allowed request; every CONCURRENCY limit records lease `leaseId`. */
function record(limits, usage, admits, nowMs, cost, leaseId) {
  return limits.map((l, i) => KINDS[l.kind].record(l, usage[i], admits[i], nowMs, cost, leaseId));
}

/** {usage as decisions read it after a clock step back, moved: whether anything did}. */
function repair(limits, usage, nowMs) {
  const out = limits.map((l, i) => KINDS[l.kind].repair(l, usage[i], nowMs));
  return { usage: out, moved: out.some((u, i) => u !== usage[i]) };
}

/**
 * The one numbers function (decide.rs, numbers): for a request of `cost` decided as `admits`
 * on `usage` (before it was recorded), or for no request (admits null: what RL.INFO shows).
 * `denied`: told as a denial whatever the limits say (a blocked key). {allowed, binding,
 * limit, remaining, retryAfterMs, resetAfterMs, each: [[remaining, resetAfterMs]]}.
 */
function numbers(limits, usage, admits, nowMs, cost, denied = false) {
  const ok = admits !== null && allowedBy(admits) && !denied;
  const each = [];
  const waits = [];
  limits.forEach((l, i) => {
    const k = KINDS[l.kind];
    const [r, e] = k.after(l, usage[i], ok ? admits[i] : null, nowMs, cost);
    each.push([r, e > nowMs ? e - nowMs : 0n]);
    waits.push(admits !== null && !ok ? k.waitMs(l, usage[i], nowMs, cost) : 0n);
  });
  let remaining = each[0][0];
  let lowest = 0;
  each.forEach(([r], i) => {
    if (r < remaining) [remaining, lowest] = [r, i];
  });
  let reset = 0n;
  for (const [, e] of each) if (e > reset) reset = e;
  const never = waits.findIndex((w) => w === null);
  let binding = lowest;
  let retry = -1n;
  if (admits !== null && !ok) {
    if (never >= 0) binding = never;
    else {
      binding = 0;
      waits.forEach((w, i) => {
        if (w > waits[binding]) binding = i;
      });
      retry = waits[binding] > 1n ? waits[binding] : 1n;
    }
  }
  return { allowed: ok, binding, limit: limits[binding].burst, remaining, retryAfterMs: retry, resetAfterMs: reset, each };
}

/** The first ms from which the usage as recorded is empty; `fallback` for a log that does not know its window. */
function ownEmptyAt(usage, nowMs, fallback) {
  let at = nowMs;
  for (const u of usage) {
    const e = KINDS[u.kind].ownEmptyAt(u, nowMs);
    const v = e === null ? fallback : e;
    if (v > at) at = v;
  }
  return at;
}

/** {usage, given: the most units any limit gave back} after giving back `n` on every rate limit (RL.REFUND). */
function refund(limits, usage, nowMs, n) {
  let given = 0n;
  const out = limits.map((l, i) => {
    const r = KINDS[l.kind].refund(l, usage[i], nowMs, n);
    if (r.given > given) given = r.given;
    return r.usage;
  });
  return { usage: out, given };
}

/** The usage after charging `units` on every rate limit whatever it does to admission (a settle above its estimate). */
function charge(limits, usage, nowMs, units) {
  return limits.map((l, i) => KINDS[l.kind].charge(l, usage[i], nowMs, units));
}

module.exports = { KINDS, emptyFor, isNative, carried, view, align, configured, admitAll, allowedBy, record, repair, numbers, ownEmptyAt, refund, charge, sameUsage };
