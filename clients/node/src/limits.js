'use strict';
// Several limits on one key, decided all-or-nothing, as the module does (src/limits.rs): a
// request passes iff every limit admits it, and then each records it; a denial records
// nothing anywhere. The reply describes the binding limit: when denied, the one waited for
// longest (the first on a tie), or one the cost can never pass; when allowed, the one with
// the fewest requests left (the first on a tie). `remaining` is the smallest of all.
//
// A usage is {kind: 'gcra', tat} or {kind: 'sliding', log}; `usage` is an array, one per
// limit by position. PURE: no I/O, no clock (`nowMs` is a BigInt parameter).

const gcra = require('./gcra');
const sliding = require('./sliding');

function emptyFor(limit) {
  return limit.kind === 'sliding' ? { kind: 'sliding', log: sliding.EMPTY } : { kind: 'gcra', tat: gcra.EMPTY };
}

/**
 * A usage carried over to a limit of the other kind, never into more room than the time
 * still owed: SLIDING -> GCRA replays the live requests into the bucket; GCRA -> SLIDING
 * turns the backlog into the same share of the window's limit (rounded up, at most the
 * limit), one entry that leaves the window when the bucket would have been empty.
 */
function carriedTo(usage, limit, nowMs) {
  if (usage.kind === limit.kind) return usage;
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
 * BigInt). Returns {allowed, binding, limit, remaining, retryAfterMs (-1: allowed or never),
 * resetAfterMs, emptyAtMs, usage (the usage to store; the repaired one when denied)}.
 */
function decide(limits, usage, nowMs, cost) {
  const u = align(limits, usage, nowMs).map((x, i) => {
    if (x.kind === 'sliding') return { kind: 'sliding', log: sliding.clampFuture(x.log, nowMs) };
    return { kind: 'gcra', tat: gcra.clamped(limits[i], x.tat, nowMs) };
  });
  const next = limits.map((l, i) => (l.kind === 'gcra' ? gcra.decide(l, u[i].tat, nowMs, cost) : null));
  const admits = limits.map((l, i) => (l.kind === 'gcra' ? next[i] !== null : sliding.decide(l, u[i].log, nowMs, cost)));
  const allowed = admits.every(Boolean);
  let emptyAt = nowMs;
  const each = limits.map((l, i) => {
    let v;
    if (l.kind === 'gcra') {
      v = gcra.explain(l, u[i].tat, nowMs, cost, allowed ? next[i] : null);
      if (allowed) u[i] = { kind: 'gcra', tat: next[i] };
      const e = gcra.emptyAtMs(u[i].tat);
      if (e > emptyAt) emptyAt = e;
    } else {
      if (allowed) u[i] = { kind: 'sliding', log: sliding.record(l, u[i].log, nowMs, cost) };
      v = sliding.explain(l, u[i].log, u[i].log, nowMs, cost, admits[i]);
      const e = sliding.emptyAtMs(l, u[i].log, nowMs);
      if (e > emptyAt) emptyAt = e;
    }
    return { limit: v.limit, remaining: v.remaining, retryAfterMs: admits[i] ? -1n : v.retryAfterMs, resetAfterMs: v.resetAfterMs };
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
    limit: each[binding].limit,
    remaining,
    retryAfterMs: allowed || never >= 0 ? -1n : each[binding].retryAfterMs,
    resetAfterMs: each[binding].resetAfterMs,
    emptyAtMs: emptyAt,
    usage: u,
  };
}

module.exports = { decide, align, carriedTo, emptyFor };
