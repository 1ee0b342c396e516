'use strict';
// Validation of everything a caller passes, before anything is sent, with the module's
// bounds (src/policy.rs, src/sliding.rs, src/limits.rs) in the caller's own words:
// `windowMs`, not the module's `window_ms`.
//
// A policy is one limit or a list of 1 to 4, decided all-or-nothing:
//   {limit, windowMs, burst?, kind?: 'gcra' | 'sliding' | 'concurrency'}
// plus the key-level penalty {penaltyMs, penaltyMaxMs?} (issue 19), and becomes a frozen
// {limits: [{kind, limit, windowMs, burst}], penalty: {ms, maxMs} | null, id} of BigInts,
// where `id` is a canonical text (equal policies, equal ids) for maps and caches.
//
// PURE: no I/O.

const { InvalidArgument } = require('./errors');

const MAX_LIMIT = 1_000_000_000n;
const MAX_WINDOW_MS = 1_000_000_000_000n;
const MAX_BURST = 1_000_000_000n;
const MAX_COST = 1_000_000_000n;
const MAX_IDLE_MS = MAX_WINDOW_MS;
/** A full GCRA bucket must drain within this many ms (about 317 years). */
const MAX_DRAIN_MS = 10_000_000_000_000n;
/**
 * SLIDING keeps a log of up to `limit` entries, CONCURRENCY up to `limit` leases: at most
 * 1000, windows (a lease's life) up to 2^32-1 ms.
 */
const MAX_SLIDING_LIMIT = 1000n;
const MAX_SLIDING_WINDOW_MS = 4_294_967_295n;
/** Most limits one key holds. */
const MAX_LIMITS = 4;
const KINDS = ['gcra', 'sliding', 'concurrency'];
/** Kinds whose capacity is a count, not a bucket: no burst, limit <= 1000, windowMs < 2^32. */
const COUNTED = ['sliding', 'concurrency'];
/** Issue 19's bounds: a penalty or block up to 10^12 ms, a hold 1 ms to 1 day (default 5 min). */
const MAX_PENALTY_MS = 1_000_000_000_000n;
const MAX_BLOCK_MS = MAX_PENALTY_MS;
const MAX_HOLD_MS = 86_400_000n;
const DEFAULT_HOLD_MS = 300_000n;
/** RL.RENEW's bound, as a CONCURRENCY window's. */
const MAX_LEASE_MS = MAX_SLIDING_WINDOW_MS;

const MESSAGES = {
  limit: 'limit must be an integer from 1 to 1000000000',
  windowMs: 'windowMs must be an integer from 1 to 1000000000000',
  burst: 'burst must be an integer from 1 to 1000000000',
  cost: 'cost must be an integer from 1 to 1000000000',
  idleMs: 'idleMs must be an integer from 1 to 1000000000000',
  drain: 'burst * windowMs / limit is too large: a full bucket must drain within 10000000000000 ms',
  kind: "kind must be 'gcra', 'sliding' or 'concurrency'",
  slidingLimit: "a 'sliding' limit must be an integer from 1 to 1000 (use 'gcra' for more requests per window)",
  concurrencyLimit: "a 'concurrency' limit must be an integer from 1 to 1000 (leases held at once)",
  slidingWindow: "a 'sliding' windowMs must be an integer from 1 to 4294967295 (about 49 days)",
  concurrencyWindow: "a 'concurrency' windowMs (a lease's life) must be an integer from 1 to 4294967295 (about 49 days)",
  slidingBurst: "burst applies to 'gcra' limits only: a 'sliding' limit's burst is its limit",
  concurrencyBurst: "burst applies to 'gcra' limits only: a 'concurrency' limit's burst is its limit",
  penaltyMs: 'penaltyMs must be an integer from 1 to 1000000000000',
  penaltyMaxMs: 'penaltyMaxMs must be an integer from penaltyMs to 1000000000000',
  penaltyMaxWithout: 'penaltyMaxMs needs penaltyMs',
  penaltyWithoutLimit: 'penaltyMs goes with an inline policy (limit and windowMs, or limits); a stored policy takes it from configureRateLimit',
  holdMs: 'holdMs must be an integer from 1 to 86400000 (1 day)',
  blockMs: 'ms must be an integer from 1 to 1000000000000',
  leaseMs: 'ms must be an integer from 1 to 4294967295',
  refund: 'n must be an integer from 1 to 1000000000',
  estimate: 'estimate must be an integer from 1 to 1000000000',
  actual: 'actual must be an integer from 0 to 1000000000',
  count: 'a policy is one limit or a list of 1 to 4 limits',
  limitWithoutWindow: 'limit and windowMs must be given together',
  burstWithoutLimit: 'burst and kind need limit and windowMs',
  clientId: 'clientId must be a non-empty string or Buffer',
};

/** The fields of one limit, of a check's options, and of configureRateLimit's policy. */
const LIMIT_FIELDS = ['limit', 'windowMs', 'burst', 'kind'];
const PENALTY_FIELDS = ['penaltyMs', 'penaltyMaxMs'];
const CHECK_FIELDS = ['cost', 'limits', ...LIMIT_FIELDS, ...PENALTY_FIELDS];
const CONFIG_FIELDS = ['limits', 'idleMs', 'shadow', ...LIMIT_FIELDS, ...PENALTY_FIELDS];

/** An integer field within min..max (default 1..max) as a BigInt (Numbers must be safe integers). */
function integer(value, max, message, min = 1n) {
  let v;
  if (typeof value === 'bigint') v = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) v = BigInt(value);
  else if (typeof value === 'string' && /^[0-9]{1,20}$/.test(value)) v = BigInt(value);
  else throw new InvalidArgument(message);
  if (v < min || v > max) throw new InvalidArgument(message);
  return v;
}

function clientId(id) {
  if ((typeof id === 'string' || Buffer.isBuffer(id)) && id.length > 0) return id;
  throw new InvalidArgument(MESSAGES.clientId);
}

/** The closest of `names` to `word`, if close enough to be a likely typo, else null. */
function closest(word, names) {
  let best = null;
  let bestDistance = Infinity;
  for (const n of names) {
    const d = editDistance(word.toLowerCase(), n.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [n, d];
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : null;
}

function editDistance(a, b) {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row.push(Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = row;
  }
  return prev[b.length];
}

/** "unknown option 'x' (did you mean 'y'?)": the names of `obj` outside `allowed`, or null. */
function unknownFields(obj, allowed, what) {
  const bad = Object.keys(obj).filter((k) => !allowed.includes(k) && obj[k] !== undefined);
  if (bad.length === 0) return null;
  const parts = bad.map((k) => {
    const near = closest(k, allowed);
    return near ? `'${k}' (did you mean '${near}'?)` : `'${k}'`;
  });
  return `unknown ${what}${bad.length > 1 ? 's' : ''} ${parts.join(', ')}; known: ${allowed.join(', ')}`;
}

/** One limit {limit, windowMs, burst?, kind?} as {kind, limit, windowMs, burst} (BigInt). */
function oneLimit(p, where) {
  const at = (m) => (where ? `${where}: ${m}` : m);
  if (p === null || typeof p !== 'object' || Array.isArray(p)) throw new InvalidArgument(at('a limit is an object {limit, windowMs, burst?, kind?}'));
  const unknown = unknownFields(p, LIMIT_FIELDS, 'field');
  if (unknown) throw new InvalidArgument(at(unknown));
  const kind = p.kind === undefined || p.kind === null ? 'gcra' : p.kind;
  if (!KINDS.includes(kind)) throw new InvalidArgument(at(MESSAGES.kind));
  if (p.limit === undefined || p.windowMs === undefined) throw new InvalidArgument(at(MESSAGES.limitWithoutWindow));
  const hasBurst = p.burst !== undefined && p.burst !== null;
  if (COUNTED.includes(kind)) {
    const sliding = kind === 'sliding';
    if (hasBurst) throw new InvalidArgument(at(sliding ? MESSAGES.slidingBurst : MESSAGES.concurrencyBurst));
    const limit = integer(p.limit, MAX_LIMIT, at(MESSAGES.limit));
    if (limit > MAX_SLIDING_LIMIT) throw new InvalidArgument(at(sliding ? MESSAGES.slidingLimit : MESSAGES.concurrencyLimit));
    const windowMs = integer(p.windowMs, MAX_WINDOW_MS, at(MESSAGES.windowMs));
    if (windowMs > MAX_SLIDING_WINDOW_MS) throw new InvalidArgument(at(sliding ? MESSAGES.slidingWindow : MESSAGES.concurrencyWindow));
    return Object.freeze({ kind, limit, windowMs, burst: limit });
  }
  const limit = integer(p.limit, MAX_LIMIT, at(MESSAGES.limit));
  const windowMs = integer(p.windowMs, MAX_WINDOW_MS, at(MESSAGES.windowMs));
  const burst = hasBurst ? integer(p.burst, MAX_BURST, at(MESSAGES.burst)) : limit;
  if (burst * windowMs > MAX_DRAIN_MS * limit) throw new InvalidArgument(at(MESSAGES.drain));
  return Object.freeze({ kind, limit, windowMs, burst });
}

/**
 * The canonical text of a policy: `g:limit:windowMs:burst`, `s:limit:windowMs` or
 * `c:limit:windowMs` per limit, joined by `,`, then `;p:ms:maxMs` for a penalty.
 */
function idOf(limits, penalty) {
  const text = limits.map((l) => (l.kind === 'gcra' ? `g:${l.limit}:${l.windowMs}:${l.burst}` : `${l.kind[0]}:${l.limit}:${l.windowMs}`)).join(',');
  return penalty ? `${text};p:${penalty.ms}:${penalty.maxMs}` : text;
}

function fromLimits(limits, penalty = null) {
  return Object.freeze({ limits: Object.freeze(limits), penalty, id: idOf(limits, penalty) });
}

/** {penaltyMs, penaltyMaxMs?} as {ms, maxMs} (BigInt; maxMs defaults to ms: no escalation), or null. */
function penaltyOf(o) {
  const ms = o.penaltyMs;
  const max = o.penaltyMaxMs;
  if (ms === undefined || ms === null) {
    if (max !== undefined && max !== null) throw new InvalidArgument(MESSAGES.penaltyMaxWithout);
    return null;
  }
  const v = integer(ms, MAX_PENALTY_MS, MESSAGES.penaltyMs);
  const m = max === undefined || max === null ? v : integer(max, MAX_PENALTY_MS, MESSAGES.penaltyMaxMs, v);
  return Object.freeze({ ms: v, maxMs: m });
}

/** The block a penalty at `level` imposes: ms * 2^level, at most maxMs. */
function penaltyLengthMs(penalty, level) {
  const shift = level < 64 ? BigInt(level) : 64n;
  const d = penalty.ms << shift;
  return d < penalty.maxMs ? d : penalty.maxMs;
}

/** Whether a policy has a CONCURRENCY limit (checks must take a lease: acquire). */
function hasConcurrency(pol) {
  return Boolean(pol) && pol.limits.some((l) => l.kind === 'concurrency');
}

/** The longest window of a policy, in ms (a penalty escalates within it). */
function longestWindowMs(pol) {
  if (pol.longestMs !== undefined) return pol.longestMs;
  let w = 0n;
  for (const l of pol.limits) if (l.windowMs > w) w = l.windowMs;
  return w;
}

/**
 * A policy from one limit, a list of limits, or {limits: [...]}. Throws InvalidArgument in
 * the caller's words, naming the limit's index in a list.
 */
function policy(p) {
  if (Array.isArray(p)) {
    if (p.length < 1 || p.length > MAX_LIMITS) throw new InvalidArgument(MESSAGES.count);
    return fromLimits(p.map((l, i) => oneLimit(l, p.length > 1 ? `limits[${i}]` : '')));
  }
  if (p && typeof p === 'object' && p.limits !== undefined) return policy(p.limits);
  return fromLimits([oneLimit(p, '')]);
}

/**
 * A check's options: {cost?, limit?, windowMs?, burst?, kind?} or {cost?, limits: [...]},
 * or a list of limits. Returns {cost (BigInt), inline (a policy or null)}.
 */
function checkOptions(opts) {
  if (Array.isArray(opts)) return { cost: 1n, inline: policy(opts) };
  if (opts === null || typeof opts !== 'object') throw new InvalidArgument('the options of a check are an object {cost?, limit?, windowMs?, burst?, kind?} or {cost?, limits}');
  const unknown = unknownFields(opts, CHECK_FIELDS, 'option');
  if (unknown) throw new InvalidArgument(unknown);
  const c = opts.cost === undefined ? 1n : cost(opts.cost);
  const penalty = penaltyOf(opts);
  if (opts.limits !== undefined) return { cost: c, inline: withPenalty(policy(opts.limits), penalty) };
  const hasLimit = opts.limit !== undefined;
  if (hasLimit !== (opts.windowMs !== undefined)) throw new InvalidArgument(MESSAGES.limitWithoutWindow);
  if (!hasLimit) {
    if (opts.burst !== undefined || opts.kind !== undefined) throw new InvalidArgument(MESSAGES.burstWithoutLimit);
    if (penalty) throw new InvalidArgument(MESSAGES.penaltyWithoutLimit);
    return { cost: c, inline: null };
  }
  return { cost: c, inline: fromLimits([oneLimit({ limit: opts.limit, windowMs: opts.windowMs, burst: opts.burst, kind: opts.kind }, '')], penalty) };
}

function withPenalty(pol, penalty) {
  return penalty ? fromLimits(pol.limits, penalty) : pol;
}

/** configureRateLimit's argument: a policy plus {idleMs?, shadow?, penaltyMs?, penaltyMaxMs?} (on the object form). */
function configOptions(p) {
  if (p && typeof p === 'object' && !Array.isArray(p)) {
    const unknown = unknownFields(p, CONFIG_FIELDS, 'field');
    if (unknown) throw new InvalidArgument(unknown);
    const { idleMs: idle, shadow, penaltyMs, penaltyMaxMs, ...rest } = p;
    const pol = withPenalty(policy(rest.limits !== undefined ? rest.limits : rest), penaltyOf({ penaltyMs, penaltyMaxMs }));
    return { policy: pol, idleMs: idleMs(idle), shadow: Boolean(shadow) };
  }
  return { policy: policy(p), idleMs: null, shadow: false };
}

function cost(value) {
  return value === undefined ? 1n : integer(value, MAX_COST, MESSAGES.cost);
}

function idleMs(value) {
  return value === undefined || value === null ? null : integer(value, MAX_IDLE_MS, MESSAGES.idleMs);
}

/** reserve()'s holdMs: 1..86400000, default 300000 (5 minutes). */
function holdMs(value) {
  return value === undefined || value === null ? DEFAULT_HOLD_MS : integer(value, MAX_HOLD_MS, MESSAGES.holdMs);
}

/** A limit's kind word after its numbers: BURST b (GCRA), SLIDING or CONCURRENCY. */
function kindArgs(l) {
  return l.kind === 'gcra' ? ['BURST', String(l.burst)] : [l.kind.toUpperCase()];
}

/** PENALTY ms [MAX max_ms] (MAX only when it escalates). */
function penaltyArgs(pol) {
  const p = pol.penalty;
  if (!p) return [];
  return p.maxMs === p.ms ? ['PENALTY', String(p.ms)] : ['PENALTY', String(p.ms), 'MAX', String(p.maxMs)];
}

/** A policy as the module's inline words: LIMIT l WINDOW w [BURST b | SLIDING | CONCURRENCY] [AND ...] [PENALTY ms [MAX m]]. */
function inlineArgs(pol) {
  const args = [];
  pol.limits.forEach((l, i) => {
    if (i > 0) args.push('AND');
    args.push('LIMIT', String(l.limit), 'WINDOW', String(l.windowMs), ...kindArgs(l));
  });
  return [...args, ...penaltyArgs(pol)];
}

/** RL.CONFIG's arguments after the key: l w [BURST b | SLIDING | CONCURRENCY] [AND l w ...] [PENALTY ms [MAX m]] [IDLE i] [SHADOW]. */
function configArgs(pol, idle, shadow) {
  const args = [];
  pol.limits.forEach((l, i) => {
    if (i > 0) args.push('AND');
    args.push(String(l.limit), String(l.windowMs), ...kindArgs(l));
  });
  args.push(...penaltyArgs(pol));
  if (idle !== null) args.push('IDLE', String(idle));
  if (shadow) args.push('SHADOW');
  return args;
}

/**
 * The local share of a policy: `share` (0 < share <= 1, e.g. 1 / number of app instances)
 * of each limit. GCRA: the rate limit/windowMs times p/q exactly, (limit*p)/(windowMs*q),
 * and the burst rounded down, at least 1. SLIDING and CONCURRENCY: the count rounded down, at
 * least 1, the window unchanged. The penalty is kept, and escalates within the unscaled
 * policy's longest window (`longestMs`).
 */
function scaled(pol, share) {
  if (share.p === share.q) return pol;
  const limits = pol.limits.map((l) => {
    if (COUNTED.includes(l.kind)) {
      const limit = (l.limit * share.p) / share.q;
      const n = limit < 1n ? 1n : limit;
      return Object.freeze({ kind: l.kind, limit: n, windowMs: l.windowMs, burst: n });
    }
    const burst = (l.burst * share.p) / share.q;
    return Object.freeze({ kind: 'gcra', limit: l.limit * share.p, windowMs: l.windowMs * share.q, burst: burst < 1n ? 1n : burst });
  });
  return Object.freeze({ ...fromLimits(limits, pol.penalty), longestMs: longestWindowMs(pol) });
}

/** A share in (0, 1] as an exact fraction {p, q} with q = 10^6 before reduction. */
function share(value) {
  let p = BigInt(Math.max(1, Math.round(value * 1e6)));
  let q = 1_000_000n;
  let a = p;
  let b = q;
  while (b) [a, b] = [b, a % b];
  p /= a;
  q /= a;
  return { p, q };
}

module.exports = {
  MAX_LIMIT,
  MAX_WINDOW_MS,
  MAX_BURST,
  MAX_COST,
  MAX_LIMITS,
  MAX_SLIDING_LIMIT,
  MAX_BLOCK_MS,
  MAX_LEASE_MS,
  MAX_HOLD_MS,
  DEFAULT_HOLD_MS,
  MESSAGES,
  integer,
  clientId,
  policy,
  fromLimits,
  penaltyOf,
  penaltyLengthMs,
  hasConcurrency,
  longestWindowMs,
  holdMs,
  checkOptions,
  configOptions,
  cost,
  idleMs,
  inlineArgs,
  configArgs,
  scaled,
  share,
  closest,
  unknownFields,
};
