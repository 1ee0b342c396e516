'use strict';
// The module's SLIDING window (src/sliding.rs): at most `limit` requests (by cost) in any
// interval of `window_ms`, exactly, kept as a log of admitted requests, one entry per
// distinct ms with a count.
//
// A request at `now` sees the window (now - window_ms, now]: an entry at `t` counts while
// t > now - window_ms. It passes iff the live entries plus its cost fit in `limit`; a denied
// request changes nothing. An entry later than now (the clock stepped back) is read as now.
//
// A log is a frozen array of [instantMs, count] (BigInt), oldest first. PURE: no I/O, no clock.

const EMPTY = Object.freeze([]);
/** Latest instant a log may hold (as MAX_TAT_MS in the module). */
const MAX_MS = 1n << 60n;

/** Entries as seen at `nowMs` that are still in the window, oldest first. */
function live(limit, log, nowMs) {
  const out = [];
  for (const [t, c] of log) {
    const at = t < nowMs ? t : nowMs;
    if (at + limit.windowMs > nowMs) out.push([at, c]);
  }
  return out;
}

function used(limit, log, nowMs) {
  let n = 0n;
  for (const [, c] of live(limit, log, nowMs)) n += c;
  return n;
}

/** The first ms from which the window holds nothing (nowMs if it already holds nothing). */
function emptyAtMs(limit, log, nowMs) {
  const l = live(limit, log, nowMs);
  return l.length === 0 ? nowMs : l[l.length - 1][0] + limit.windowMs;
}

/** Entries in the future moved to now and merged; the same log (===) if none was. */
function clampFuture(log, nowMs) {
  if (log.length === 0 || log[log.length - 1][0] <= nowMs) return log;
  return merge(log.map(([t, c]) => [t < nowMs ? t : nowMs, c]));
}

function merge(parts) {
  const out = [];
  for (const [t, c] of parts) {
    const last = out[out.length - 1];
    if (last && last[0] === t) out[out.length - 1] = [t, last[1] + c];
    else out.push([t, c]);
  }
  return Object.freeze(out);
}

function decide(limit, log, nowMs, cost) {
  return cost <= limit.limit && nowMs <= MAX_MS && used(limit, log, nowMs) + cost <= limit.limit;
}

/** The log after admitting `cost` at `nowMs`: what left the window dropped. */
function record(limit, log, nowMs, cost) {
  return merge([...live(limit, log, nowMs), [nowMs, cost]]);
}

/**
 * The numbers of a decision (`allowed`, taken by decide() on `before`), with `after` the log
 * after it: a denied request passes once enough of the oldest live entries have left, at
 * the first entry e_k such that what is newer plus `cost` fits, exactly at e_k + window_ms.
 */
function explain(limit, before, after, nowMs, cost, allowed) {
  let retryAfterMs = -1n;
  if (!allowed && cost <= limit.limit) {
    let rest = used(limit, before, nowMs);
    for (const [t, c] of live(limit, before, nowMs)) {
      rest -= c;
      if (rest + cost <= limit.limit) {
        const wait = t + limit.windowMs - nowMs;
        retryAfterMs = wait > 1n ? wait : 1n;
        break;
      }
    }
  }
  const u = used(limit, after, nowMs);
  return {
    allowed,
    limit: limit.limit,
    remaining: limit.limit > u ? limit.limit - u : 0n,
    retryAfterMs,
    resetAfterMs: emptyAtMs(limit, after, nowMs) - nowMs,
  };
}

/** Ms until a denied request of `cost` passes (explain's rule alone); -1 when it never can. */
function retryAfterMs(limit, log, nowMs, cost) {
  return cost > limit.limit ? -1n : explain(limit, log, log, nowMs, cost, false).retryAfterMs;
}

/**
 * Gives back up to `n` units from the most recent live entries first (RL.REFUND); with
 * `atMs` (a settle below its estimate) only from the entry recorded at that instant, if it
 * is still live: never more than the hold. Returns {log, given}.
 */
function refund(limit, log, nowMs, n, atMs) {
  const entries = live(limit, log, nowMs);
  const at = atMs === undefined || atMs === null ? null : atMs < nowMs ? atMs : nowMs;
  let given = 0n;
  for (let i = entries.length - 1; i >= 0 && given < n; i--) {
    const [t, c] = entries[i];
    if (at !== null && t !== at) continue;
    const take = n - given < c ? n - given : c;
    entries[i] = [t, c - take];
    given += take;
  }
  if (given === 0n) return { log, given };
  return { log: merge(entries.filter(([, c]) => c > 0n)), given };
}

/**
 * Records `units` at now whatever it does to admission (a settle above its estimate), then
 * keeps at most `limit` units live, dropping the oldest excess: a debt of one full window.
 */
function charge(limit, log, nowMs, units) {
  const entries = record(limit, log, nowMs, units).map(([t, c]) => [t, c]);
  let excess = -limit.limit;
  for (const [, c] of entries) excess += c;
  for (const e of entries) {
    if (excess <= 0n) break;
    const take = excess < e[1] ? excess : e[1];
    e[1] -= take;
    excess -= take;
  }
  return merge(entries.filter(([, c]) => c > 0n));
}

// The interface every kind offers to limits.js, on a usage {kind: 'sliding', log}.
const usage = (log) => ({ kind: 'sliding', log });
const KIND = {
  EMPTY: Object.freeze(usage(EMPTY)),
  repair: (_l, u, nowMs) => {
    const c = clampFuture(u.log, nowMs);
    return c === u.log ? u : usage(c);
  },
  fits: (l, u, nowMs, cost) => decide(l, u.log, nowMs, cost),
  counted: (l, u, nowMs, cost) => usage(record(l, u.log, nowMs, cost)),
  remaining: (l, u, nowMs) => {
    const n = used(l, u.log, nowMs);
    return l.limit > n ? l.limit - n : 0n;
  },
  emptyAtMs: (l, u, nowMs) => emptyAtMs(l, u.log, nowMs),
  resetAfterMs: (l, u, nowMs) => emptyAtMs(l, u.log, nowMs) - nowMs,
  retryAfterMs: (l, u, nowMs, cost) => retryAfterMs(l, u.log, nowMs, cost),
  refund: (l, u, nowMs, n, atMs) => {
    const r = refund(l, u.log, nowMs, n, atMs);
    return { usage: r.given === 0n ? u : usage(r.log), given: r.given };
  },
  charge: (l, u, nowMs, units) => usage(charge(l, u.log, nowMs, units)),
};

module.exports = { EMPTY, KIND, live, used, emptyAtMs, clampFuture, decide, record, explain, refund, charge, retryAfterMs };
