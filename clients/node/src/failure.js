'use strict';
// The decisions taken without Redis (clients/README.md, "Failure policy"):
//
// - An outage (no answer, a refusal to serve or write, the circuit open): `onError` decides.
//   'local': the local limiter, at `localShare` of the policy this process knows (configured
//   here, else the call's inline one), shadow and penalties included; reserve and acquire
//   take a local reservation or lease, whose id is the string `L<n>` (never confused with
//   Redis's integer ids) and is settled or released locally. 'deny': denied until the next
//   probe (`failed_closed`). 'allow', or 'local' for a key whose policy is unknown: allowed
//   with the whole bucket (`failed_open`). Reserve and acquire then hold nothing: their
//   reservation or lease is null.
// - An overload (the call ran out of time while Redis answered others): never the local
//   limiter, whose count is apart from Redis's while Redis may still count the call. Denied
//   for one timeout, or allowed under onError 'allow'.

const policyOf = require('./policy');
const replies = require('./replies');
const { OPS } = require('./operations');

/** The id a local reservation or lease is handed out as. */
function localId(id) {
  return id === null ? null : `L${id}`;
}

/** A decision as the caller gets it: a boolean for isAllowed, else with headers (and the grant's id). */
function finish(req, v, known, id = null) {
  if (req.op === 'allow') return v.allowed;
  v.headers = replies.headers(v, known ? known.limits : null);
  const grant = OPS[req.op].grant;
  if (grant) v[grant] = id;
  return v;
}

function failedOpen(engine, known) {
  engine.counts.failedOpen += 1;
  const burst = known ? Number(known.limits[0].burst) : 0;
  return { allowed: true, limit: burst, remaining: burst, retryAfterMs: -1, resetAfterMs: 0, binding: 0, path: 'failed_open' };
}

function failedClosed(engine, known, retry) {
  engine.counts.failedClosed += 1;
  return { allowed: false, limit: known ? Number(known.limits[0].burst) : 0, remaining: 0, retryAfterMs: retry, resetAfterMs: retry, binding: 0, path: 'failed_closed' };
}

/** The failure policy's decision for a check Redis did not answer. Throws the local limiter's CommandError. */
function fallback(engine, req) {
  engine.warnWithoutRedis();
  const config = engine.knownConfig(req);
  const known = config ? config.policy : null;
  const onError = engine.options.onError;
  if (onError === 'local' && known) {
    const options = { shadow: Boolean(config.shadow), holdMs: req.holdMs === null || req.holdMs === undefined ? policyOf.DEFAULT_HOLD_MS : req.holdMs };
    const r = engine.local.check(req.mk, policyOf.scaled(known, engine.share), req.cost, OPS[req.op].mode, options);
    engine.counts.local += 1;
    const v = {
      allowed: r.allowed,
      limit: Number(r.limit),
      remaining: Number(r.remaining),
      retryAfterMs: Number(r.retryAfterMs),
      resetAfterMs: Number(r.resetAfterMs),
      binding: r.binding,
      path: 'local',
    };
    return finish(req, v, known, localId(r.id));
  }
  if (onError === 'deny') return finish(req, failedClosed(engine, known, Math.max(engine.breaker.retryInMs(), 1)), known);
  return finish(req, failedOpen(engine, known), known);
}

/**
 * A check that ran out of time while Redis was answering other calls: denied (retry after
 * one timeout), or allowed with onError 'allow'. Never the local limiter: 500 concurrent
 * checks with limit 10 must admit 10, not 10 + 10.
 */
function overloaded(engine, req) {
  const config = engine.knownConfig(req);
  const known = config ? config.policy : null;
  if (engine.options.onError === 'allow') return finish(req, failedOpen(engine, known), known);
  return finish(req, failedClosed(engine, known, engine.options.timeoutMs), known);
}

module.exports = { fallback, overloaded, finish, localId };
