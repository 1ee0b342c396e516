'use strict';
// Several limits on one key, decided all-or-nothing, as the module does (src/limits.rs): a
// request passes iff every limit admits it, and then each records it; a denial records
// nothing anywhere. The reply describes the binding limit: when denied, the one waited for
// longest (the first on a tie), or one the cost can never pass; when allowed, the one with
// the fewest requests left (the first on a tie). `remaining` is the smallest of all.
//
// A usage is {kind: 'gcra', tat}, {kind: 'sliding', log} or {kind: 'concurrency', leases};
// `usage` is an array, one per limit by position. Each kind is one module offering the same
// functions (KINDS): nothing here asks which kind it holds but the carry-over between kinds.
// PURE: no I/O, no clock (`nowMs` is a BigInt parameter).

const gcra = require('./gcra');
const sliding = require('./sliding');
const concurrency = require('./concurrency');

const KINDS = { gcra: gcra.KIND, sliding: sliding.KIND, concurrency: concurrency.KIND };

function emptyFor(limit) {
  return KINDS[limit.kind].EMPTY;
}

/**
 * A usage carried over to a limit of the other kind, never into more room than the time
 * still owed: SLIDING -> GCRA replays the live requests into the bucket; GCRA -> SLIDING
 * turns the backlog into the same share of the window's limit (rounded up, at most the
 * limit), one entry that leaves the window when the bucket would have been empty. A change
 * to or from CONCURRENCY starts empty: leases are not requests (a new contract).
 */
function carriedTo(usage, limit, nowMs) {
  if (usage.kind === limit.kind) return usage;
  if (usage.kind === 'concurrency' || limit.kind === 'concurrency') return emptyFor(limit);
  if (limit.kind === 'gcra') {
    let units = 0n;
    for (const [t, c] of usage.log) {
      const at = t < nowMs ? t : nowMs;
      const start = at * limit.limit;
      units = (units > start ? units : start) + c * limit.windowMs;
    }
    return { kind: 'gcra', tat: gcra.fromUnits(units, limit.limit) };
  }
  const emptyAt = gcra.emptyAtMs(usage.tat);
  if (emptyAt <= nowMs) return { kind: 'sliding', log: sliding.EMPTY };
  const share = ((emptyAt - nowMs) * limit.limit + limit.windowMs - 1n) / limit.windowMs;
  const count = share < limit.limit ? share : limit.limit;
  const back = emptyAt - limit.windowMs;
  const at = back < nowMs ? (back > 0n ? back : 0n) : nowMs;
  return { kind: 'sliding', log: Object.freeze([[at, count]]) };
}

/** `usage` matched to `limits` position by position (a new array). */
function align(limits, usage, nowMs) {
  return limits.map((l, i) => (usage[i] ? carriedTo(usage[i], l, nowMs) : emptyFor(l)));
}

/**
 * Decides a request of `cost` at `nowMs` against `limits` ({kind, limit, windowMs, burst},
 * BigInt); when allowed, every CONCURRENCY limit records a lease `leaseId`. Returns {allowed,
 * binding, limit, remaining, retryAfterMs (-1: allowed or never), resetAfterMs, emptyAtMs,
 * usage (after an admission; else the repaired one), repaired (whether a denial changed the
 * stored usage: a clock repair)}.
 */
function decide(limits, usage, nowMs, cost, leaseId) {
  // A denial stores only a clock repair; carrying usage over to new kinds waits for an admission.
  let repaired = false;
  const same = usage.length === limits.length && limits.every((l, i) => usage[i].kind === l.kind);
  const u = align(limits, usage, nowMs).map((x, i) => {
    const r = KINDS[limits[i].kind].repair(limits[i], x, nowMs);
    if (same && r !== x) repaired = true;
    return r;
  });
  const admits = limits.map((l, i) => KINDS[l.kind].fits(l, u[i], nowMs, cost));
  const allowed = admits.every(Boolean);
  let emptyAt = nowMs;
  const each = limits.map((l, i) => {
    const k = KINDS[l.kind];
    const retryAfterMs = admits[i] ? -1n : k.retryAfterMs(l, u[i], nowMs, cost);
    if (allowed) u[i] = k.counted(l, u[i], nowMs, cost, leaseId);
    const e = k.emptyAtMs(l, u[i], nowMs);
    if (e > emptyAt) emptyAt = e;
    return { remaining: k.remaining(l, u[i], nowMs), retryAfterMs, resetAfterMs: k.resetAfterMs(l, u[i], nowMs) };
  });
  const never = limits.findIndex((l) => cost > l.burst);
  let binding = 0;
  if (allowed) {
    for (let i = 1; i < each.length; i++) if (each[i].remaining < each[binding].remaining) binding = i;
  } else if (never >= 0) {
    binding = never;
  } else {
    binding = -1;
    for (let i = 0; i < each.length; i++) {
      if (admits[i]) continue;
      if (binding < 0 || each[i].retryAfterMs > each[binding].retryAfterMs) binding = i;
    }
  }
  let remaining = each[0].remaining;
  for (const e of each) if (e.remaining < remaining) remaining = e.remaining;
  return {
    allowed,
    binding,
    limit: limits[binding].burst,
    remaining,
    retryAfterMs: allowed || never >= 0 ? -1n : each[binding].retryAfterMs,
    resetAfterMs: each[binding].resetAfterMs,
    emptyAtMs: emptyAt,
    usage: u,
    repaired,
  };
}

/**
 * Gives back `n` on every rate limit (RL.REFUND; with `atMs`, a settle below its estimate:
 * a SLIDING limit gives back only from the entry recorded at that instant). CONCURRENCY
 * limits give nothing back. Returns {usage, given: the most units any limit gave back}.
 */
function refund(limits, usage, nowMs, n, atMs) {
  let given = 0n;
  const out = align(limits, usage, nowMs).map((x, i) => {
    const l = limits[i];
    const r = KINDS[l.kind].refund(l, KINDS[l.kind].repair(l, x, nowMs), nowMs, n, atMs);
    if (r.given > given) given = r.given;
    return r.usage;
  });
  return { usage: out, given };
}

/** The usage after charging `units` on every rate limit whatever it does to admission (a settle above its estimate). */
function charge(limits, usage, nowMs, units) {
  return align(limits, usage, nowMs).map((x, i) => {
    const l = limits[i];
    return KINDS[l.kind].charge(l, KINDS[l.kind].repair(l, x, nowMs), nowMs, units);
  });
}

/** The first ms from which every limit is empty (every lease expired). */
function emptyAtMs(limits, usage, nowMs) {
  let at = nowMs;
  align(limits, usage, nowMs).forEach((x, i) => {
    const e = KINDS[limits[i].kind].emptyAtMs(limits[i], x, nowMs);
    if (e > at) at = e;
  });
  return at;
}

module.exports = { KINDS, decide, refund, charge, emptyAtMs, align, carriedTo, emptyFor };
