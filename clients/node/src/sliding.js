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

// The interface every kind offers to limits.js (clients/python/.../sliding.py's). A usage is
// {kind: 'sliding', log, windowMs}: the log and the window of the limit that recorded it (0n:
// unknown; an empty log always has 0n). An entry counts while it is inside both that window
// and the window of the limit reading it, so a request the old window had forgotten is never
// revived by a longer one, and a key knows when it is empty without its policy.
const of = (log, windowMs) => Object.freeze({ kind: 'sliding', log: Object.freeze(log), windowMs: log.length ? windowMs : 0n });
const win = (w) => ({ windowMs: w });
const max = (a, b) => (a > b ? a : b);
/** The window the log's entries count in under `l`: its own, or the log's when shorter. */
const counting = (l, u) => (u.windowMs && u.windowMs < l.windowMs ? u.windowMs : l.windowMs);
function mergedNonZero(parts) {
  return merge(parts.filter(([, c]) => c !== 0n));
}
function sum(entries) {
  let n = 0n;
  for (const [, c] of entries) n += c;
  return n;
}
const KIND = {
  EMPTY: of([], 0n),
  admit: (l, u, nowMs, cost) => (cost <= l.limit && used(win(counting(l, u)), u.log, nowMs) + cost <= l.limit ? true : null),
  /** The log after admitting `cost` at now: what no longer counts dropped, recorded under this limit's window. */
  record: (l, u, _admitted, nowMs, cost) => of(mergedNonZero([...live(win(counting(l, u)), u.log, nowMs), [nowMs, cost]]), l.windowMs),
  repair: (_l, u, nowMs) => {
    const c = clampFuture(u.log, nowMs);
    return c === u.log ? u : of(c, u.windowMs);
  },
  after: (l, u, admitted, nowMs, cost) => {
    const w = counting(l, u);
    const n = used(win(w), u.log, nowMs);
    if (admitted !== null) return [max(l.limit - n - cost, 0n), nowMs + l.windowMs];
    return [max(l.limit - n, 0n), emptyAtMs(win(w), u.log, nowMs)];
  },
  waitMs: (l, u, nowMs, cost) => {
    if (cost > l.limit) return null;
    const w = counting(l, u);
    const entries = live(win(w), u.log, nowMs);
    let rest = sum(entries);
    if (rest + cost <= l.limit) return 0n;
    for (const [at, c] of entries) {
      rest -= c;
      if (rest + cost <= l.limit) return max(at + w - nowMs, 1n);
    }
    return w;
  },
  ownEmptyAt: (u, nowMs) => {
    if (u.windowMs === 0n) return u.log.length ? null : nowMs;
    return emptyAtMs(win(u.windowMs), u.log, nowMs);
  },
  windowOf: (u) => u.windowMs || null,
  carry: (l, u, atMs) => {
    const cutoff = atMs - counting(l, u);
    return of(u.log.filter(([t]) => t > cutoff), l.windowMs);
  },
  export: (u, atMs) => {
    const n = u.windowMs === 0n ? sum(u.log) : used(win(u.windowMs), u.log, atMs);
    return n ? ['requests', n] : null;
  },
  import: (l, carried, atMs) => {
    let count = 0n;
    if (carried !== null) {
      const [what, value] = carried;
      if (what === 'requests') count = value;
      else if (value.ms > atMs || (value.ms === atMs && value.frac !== 0n)) {
        const backlog = (value.ms - atMs) * value.den + value.frac;
        const d = value.den * l.windowMs;
        count = (backlog * l.limit + d - 1n) / d;
      }
    }
    if (count > l.limit) count = l.limit;
    return count ? of([[atMs, count]], l.windowMs) : KIND.EMPTY;
  },
  refund: (l, u, nowMs, n, atMs) => {
    const entries = live(win(counting(l, u)), u.log, nowMs);
    const at = atMs === undefined || atMs === null ? null : atMs < nowMs ? atMs : nowMs;
    let given = 0n;
    for (let i = entries.length - 1; i >= 0 && given < n; i--) {
      const [t, c] = entries[i];
      if (at !== null && t !== at) continue;
      const take = n - given < c ? n - given : c;
      entries[i] = [t, c - take];
      given += take;
    }
    if (given === 0n) return { usage: u, given };
    return { usage: of(mergedNonZero(entries), u.windowMs), given };
  },
  charge: (l, u, nowMs, units) => {
    const entries = KIND.record(l, u, true, nowMs, units).log.map(([t, c]) => [t, c]);
    let excess = sum(entries) - l.limit;
    for (const e of entries) {
      if (excess <= 0n) break;
      const take = excess < e[1] ? excess : e[1];
      e[1] -= take;
      excess -= take;
    }
    return of(mergedNonZero(entries), l.windowMs);
  },
};

module.exports = { EMPTY, KIND, of, live, used, emptyAtMs, clampFuture, decide, record, explain, refund, charge, retryAfterMs };
