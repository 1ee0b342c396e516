'use strict';
// One shape for every reply, whatever the protocol and the client library:
//   RESP2 arrays [allowed, limit, remaining, retry_after_ms, reset_after_ms];
//   RESP3 maps as plain objects (node-redis, ioredis replyMapping 'resp3') or Map instances;
//   RESP3 maps flattened into [name, value, ...] arrays (ioredis 6's default 'legacy' mapping);
//   booleans (RESP3 true/false) or integers 1/0; Buffers or strings for names.
//
// PURE: no I/O.

const VERDICT_FIELDS = ['allowed', 'limit', 'remaining', 'retry_after_ms', 'reset_after_ms'];

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

/** A verdict reply (RL.THROTTLE, RL.PEEK, the Lua script) as {allowed, limit, remaining, retryAfterMs, resetAfterMs}. */
function verdict(reply) {
  let values;
  // Positional (RESP2) when the first element is a number; named (a flattened map) otherwise.
  if (Array.isArray(reply) && (typeof reply[0] === 'number' || typeof reply[0] === 'bigint')) values = reply;
  else {
    const o = toObject(reply);
    values = VERDICT_FIELDS.map((f) => o[f]);
  }
  return {
    allowed: num(values[0]) === 1,
    limit: num(values[1]),
    remaining: num(values[2]),
    retryAfterMs: num(values[3]),
    resetAfterMs: num(values[4]),
  };
}

/** RL.INFO's reply as {source, limit, windowMs, burst, idleMs, shadow, scalePercent, remaining, resetAfterMs}, or null. */
function info(reply) {
  const o = toObject(reply);
  if (o === null) return null;
  const shadow = num(o.shadow);
  return {
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
}

/** RL.ALLOW's reply: 1/0 or RESP3 true/false. */
function allowed(reply) {
  return reply === true || num(reply) === 1;
}

function ceilSeconds(ms) {
  return Math.ceil(ms / 1000);
}

/**
 * Ready-to-send header values for a verdict (README "HTTP headers from RL.THROTTLE"):
 * RateLimit and RateLimit-Policy always (w= only when the policy's window is known here),
 * Retry-After when the request was denied and can pass later.
 */
function headers(v, policy) {
  const h = { RateLimit: `"default";r=${v.remaining};t=${ceilSeconds(v.resetAfterMs)}` };
  h['RateLimit-Policy'] = policy ? `"default";q=${policy.limit};w=${ceilSeconds(Number(policy.windowMs))}` : `"default";q=${v.limit}`;
  if (!v.allowed && v.retryAfterMs >= 0) h['Retry-After'] = String(ceilSeconds(v.retryAfterMs));
  return h;
}

module.exports = { verdict, info, allowed, headers, toObject, text };
