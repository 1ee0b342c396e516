'use strict';
// One shape for every reply, whatever the protocol and the client library:
//   RESP2 arrays [allowed, limit, remaining, retry_after_ms, reset_after_ms, binding?,
//   source?, limits?] (binding for a set of limits; source and limits with WITHPOLICY);
//   RESP3 maps as plain objects (node-redis, ioredis replyMapping 'resp3') or Map instances;
//   RESP3 maps flattened into [name, value, ...] arrays (ioredis 6's default 'legacy' mapping);
//   booleans (RESP3 true/false) or integers 1/0; Buffers or strings for names.
//
// PURE: no I/O.

/** The six numbers every decision reply starts with, by their names in a RESP3 map. */
const DECISION_FIELDS = ['allowed', 'limit', 'remaining', 'retry_after_ms', 'reset_after_ms', 'binding'];
const VERDICT_FIELDS = [...DECISION_FIELDS, 'source', 'limits'];

function text(v) {
  return Buffer.isBuffer(v) ? v.toString() : String(v);
}

function num(v) {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'bigint') return Number(v);
  return Number(text(v));
}

/** A map reply, in any of its forms, as a plain object with string keys; null stays null. */
function toObject(reply) {
  if (reply === null || reply === undefined) return null;
  if (reply instanceof Map) {
    const o = {};
    for (const [k, v] of reply) o[text(k)] = v;
    return o;
  }
  if (Array.isArray(reply)) {
    const o = {};
    for (let i = 0; i + 1 < reply.length; i += 2) o[text(reply[i])] = reply[i + 1];
    return o;
  }
  return reply;
}

/** WITHPOLICY's `limits`: one [kind, limit, window_ms, burst] (or a map of those) per limit. */
function limitsOf(v) {
  if (!Array.isArray(v)) return null;
  return v.map((l) => {
    const o = Array.isArray(l) && l.length === 4 && text(l[0]) !== 'kind' ? { kind: l[0], limit: l[1], window_ms: l[2], burst: l[3] } : toObject(l);
    return { kind: text(o.kind).toLowerCase(), limit: num(o.limit), windowMs: num(o.window_ms), burst: num(o.burst) };
  });
}

/** A reply's values in the order of `names`: positional (RESP2) when its first element is a number, named (a map, or a flattened one) otherwise. */
function valuesOf(reply, names) {
  if (Array.isArray(reply) && (typeof reply[0] === 'number' || typeof reply[0] === 'bigint')) return reply;
  const o = toObject(reply);
  return names.map((f) => o[f]);
}

/** {allowed, limit, remaining, retryAfterMs, resetAfterMs, binding} from a reply's values. */
function decisionOf(values) {
  const binding = num(values[5]);
  return {
    allowed: num(values[0]) === 1,
    limit: num(values[1]),
    remaining: num(values[2]),
    retryAfterMs: num(values[3]),
    resetAfterMs: num(values[4]),
    binding: binding === null ? 0 : binding,
  };
}

/**
 * A verdict reply (RL.THROTTLE, RL.PEEK, the Lua script) as {allowed, limit, remaining,
 * retryAfterMs, resetAfterMs, binding, source, policy} (source and policy null unless the
 * reply carried them).
 */
function verdict(reply) {
  const values = valuesOf(reply, VERDICT_FIELDS);
  const d = decisionOf(values);
  d.source = values[6] === undefined || values[6] === null ? null : text(values[6]);
  d.policy = limitsOf(values[7]);
  return d;
}

/**
 * RL.RESERVE's or RL.ACQUIRE's reply (7 fields: RESP2 an array, RESP3 a map whose 7th is
 * named `name`, 'reservation' or 'lease') as {allowed, limit, remaining, retryAfterMs,
 * resetAfterMs, binding, id}; `id` a Number (ids stay below 2^53 until the year 2255) or null.
 */
function grant(reply, name) {
  const values = valuesOf(reply, [...DECISION_FIELDS, name]);
  const d = decisionOf(values);
  d.id = values[6] === null || values[6] === undefined ? null : num(values[6]);
  return d;
}

/** Issue 19/20's key-level fields of RL.INFO, by their names in the reply. */
const INFO_FIELDS = { blocked_ms: 'blockedMs', penalty_level: 'penaltyLevel', penalty_ms: 'penaltyMs', penalty_max_ms: 'penaltyMaxMs', holds: 'holds', held: 'held', next_hold_expiry_ms: 'nextHoldExpiryMs', leases: 'leases' };

/**
 * RL.INFO's reply as {source, limit, windowMs, burst, idleMs, shadow, scalePercent, remaining,
 * resetAfterMs, kind?, limits?, blockedMs?, penaltyLevel?, penaltyMs?, penaltyMaxMs?, holds?, held?, nextHoldExpiryMs?,
 * leases?}, or null (the newer fields when the server tells them).
 */
function info(reply) {
  const o = toObject(reply);
  if (o === null) return null;
  const shadow = num(o.shadow);
  const out = {
    source: o.source === null || o.source === undefined ? null : text(o.source),
    limit: num(o.limit),
    windowMs: num(o.window_ms),
    burst: num(o.burst),
    idleMs: num(o.idle_ms),
    shadow: shadow === null ? null : shadow === 1,
    scalePercent: num(o.scale_percent),
    remaining: num(o.remaining),
    resetAfterMs: num(o.reset_after_ms),
  };
  if (o.kind !== undefined && o.kind !== null) out.kind = text(o.kind);
  if (Array.isArray(o.limits)) {
    out.limits = o.limits.map((l) => {
      const m = toObject(l);
      const one = { kind: text(m.kind), limit: num(m.limit), windowMs: num(m.window_ms), burst: num(m.burst), remaining: num(m.remaining), resetAfterMs: num(m.reset_after_ms) };
      if (m.held !== undefined) one.held = num(m.held);
      if (m.next_expiry_ms !== undefined) one.nextExpiryMs = num(m.next_expiry_ms);
      return one;
    });
  }
  for (const [name, field] of Object.entries(INFO_FIELDS)) if (o[name] !== undefined) out[field] = num(o[name]);
  return out;
}

/** RL.ALLOW's reply: 1/0 or RESP3 true/false. */
function allowed(reply) {
  return reply === true || num(reply) === 1;
}

function ceilSeconds(ms) {
  return Math.ceil(Number(ms) / 1000);
}

/** The name of limit `i` of `n` in the headers: `default` for one limit, `l0`, `l1`, ... for several. */
function limitName(i, n) {
  return n > 1 ? `l${i}` : 'default';
}

/**
 * Ready-to-send header values for a decision (clients/README.md, "Headers"):
 * `RateLimit-Policy` has one item per limit of `limits` (the enforced policy, [{kind, limit,
 * windowMs}], or null when unknown: then one item with the reply's limit and no w=);
 * `RateLimit` describes the binding limit; `Retry-After` when denied and the request can
 * pass later.
 */
/**
 * The `t` of a RateLimit item for limit `l`: when that limit alone is empty again, at most.
 * A reply's resetAfterMs is until *every* limit is empty (the module's since issue 17), which
 * under a day-long limit beside a per-second one would tell the per-second item a day.
 * `remaining` is at most this limit's own, so a GCRA bucket holds at most (burst - remaining)
 * emission intervals of backlog (an upper bound, exact within one interval); a SLIDING window
 * is empty one window after its last entry. Never more than resetAfterMs (exact for one limit).
 */
function ownResetBoundMs(l, remaining, resetAfterMs) {
  let bound;
  if (l.kind === 'sliding') bound = Number(l.windowMs);
  else if (l.kind === 'concurrency') return resetAfterMs; // a lease can be renewed past its window
  else bound = Math.ceil((Math.max(Number(l.burst === undefined ? l.limit : l.burst) - remaining, 0) * Number(l.windowMs)) / Number(l.limit));
  return Math.min(resetAfterMs, bound);
}

function headers(v, limits) {
  const n = limits ? limits.length : 1;
  const binding = limits && v.binding < n ? v.binding : 0;
  const reset = limits ? ownResetBoundMs(limits[binding], Number(v.remaining), Number(v.resetAfterMs)) : v.resetAfterMs;
  const h = { RateLimit: `"${limitName(binding, n)}";r=${v.remaining};t=${ceilSeconds(reset)}` };
  // A CONCURRENCY limit has no window of requests, only a lease's life: `q=` alone.
  h['RateLimit-Policy'] = limits
    ? limits.map((l, i) => `"${limitName(i, n)}";q=${l.limit}${l.kind === 'concurrency' ? '' : `;w=${ceilSeconds(l.windowMs)}`}`).join(', ')
    : `"default";q=${v.limit}`;
  if (!v.allowed && v.retryAfterMs >= 0) h['Retry-After'] = String(ceilSeconds(v.retryAfterMs));
  return h;
}

module.exports = { verdict, grant, info, allowed, headers, ownResetBoundMs, toObject, text, limitName };
