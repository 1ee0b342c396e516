'use strict';
// The operation table: for each call of the API, the module command, the Lua script's
// operation, their arguments, and how a reply becomes the caller's value. Adding an
// operation is one entry here plus its Lua branch and its local rule (keystate.js).
//
// A request is {op, key, mk, ...} with, by operation: `cost` and `inline` (a policy or null)
// for checks (reserve: `cost` is the estimate, `holdMs` the hold or null) and refunds (`n`),
// `config` {policy, idleMs, shadow} for configure, `id` (a decimal string) for settle,
// release and renew, `actual` for settle, `blockMs` for block, `leaseMs` for renew (`ms`,
// `until` and `startedAt` are the engine's: the call's deadline).
//
// Flags: `withPolicy`: asks the module (WITHPOLICY) and the script for the enforced policy;
// `check`: a decision (the failure policy decides when Redis cannot; else Unavailable);
// `inline`: takes an inline policy (not sent for a key this limiter configured, so that a lost
// policy shows); `cached`: the deny cache answers repeated denials; `grant`: the reply's 7th
// field names the reservation or lease; `mode`: the local limiter's mode; `newer`: a command of
// issues 19 and 20, which an older module does not know (then it is an error, not the Lua path).
//
// PURE: no I/O.

const policyOf = require('./policy');
const replies = require('./replies');
const script = require('./script');

const toNumber = (r) => Number(r);
const toBoolean = (r) => replies.allowed(r);

const OPS = {
  /** isAllowed: RL.ALLOW; RL.THROTTLE when the deny cache needs the retry time. */
  allow: { check: true, inline: true, cached: true, mode: 'throttle', command: (req) => (req.numbers ? 'RL.THROTTLE' : 'RL.ALLOW'), lua: 'check' },
  throttle: { check: true, withPolicy: true, inline: true, cached: true, mode: 'throttle', command: () => 'RL.THROTTLE', lua: 'check' },
  peek: { check: true, withPolicy: true, inline: true, cached: true, mode: 'peek', command: () => 'RL.PEEK', lua: 'peek' },
  /**
   * RL.RESERVE key estimate [HOLD ms] [inline]: a throttle at the estimate that records a hold.
   * Not cached (as in the Python client): a reservation comes from the store that settles it.
   */
  reserve: {
    newer: true,
    check: true,
    inline: true,
    grant: 'reservation',
    mode: 'reserve',
    command: () => 'RL.RESERVE',
    lua: 'reserve',
    args: (req) => (req.holdMs === null ? [String(req.cost)] : [String(req.cost), 'HOLD', String(req.holdMs)]),
    luaArgs: (req) => [String(req.cost), req.holdMs === null ? '' : String(req.holdMs)],
  },
  /** RL.ACQUIRE key [COST n] [inline]: never cached, a release frees a slot before retry_after_ms. */
  acquire: { check: true, newer: true, inline: true, grant: 'lease', mode: 'acquire', command: () => 'RL.ACQUIRE', lua: 'acquire' },
  configure: { command: () => 'RL.CONFIG', lua: 'config', decode: () => undefined },
  reset: { command: () => 'RL.RESET', lua: 'reset', decode: toNumber },
  info: { command: () => 'RL.INFO', lua: 'info', decode: (r) => replies.info(r) },
  refund: { newer: true, inline: true, command: () => 'RL.REFUND', lua: 'refund', args: (req) => [String(req.n)], luaArgs: (req) => [String(req.n), ''], decode: toNumber },
  settle: { newer: true, command: () => 'RL.SETTLE', lua: 'settle', args: (req) => [req.id, String(req.actual)], decode: toNumber },
  block: { newer: true, command: () => 'RL.BLOCK', lua: 'block', args: (req) => [String(req.blockMs)], decode: () => undefined },
  unblock: { newer: true, command: () => 'RL.UNBLOCK', lua: 'unblock', decode: toBoolean },
  release: { newer: true, command: () => 'RL.RELEASE', lua: 'release', args: (req) => [req.id], decode: toBoolean },
  renew: { newer: true, command: () => 'RL.RENEW', lua: 'renew', args: (req) => [req.id, String(req.leaseMs)], decode: toBoolean },
  /** Lua only: a key's policy, read and deleted, to move it to the module (engine.migrate). */
  export: { command: null, lua: 'export' },
};

/** The module command for a request: [name, key, ...arguments]. */
function moduleArgs(req) {
  const op = OPS[req.op];
  const args = [op.command(req), req.key];
  if (req.op === 'configure') {
    args.push(...policyOf.configArgs(req.config.policy, req.config.idleMs, req.config.shadow));
    return args;
  }
  if (op.args) args.push(...op.args(req));
  if (op.check && !op.args && req.cost !== 1n) args.push('COST', String(req.cost));
  if (op.inline && req.inline) args.push(...policyOf.inlineArgs(req.inline));
  if (req.withPolicy && args[0] !== 'RL.ALLOW') args.push('WITHPOLICY');
  return args;
}

/** The Lua script's ARGV for a request (clients/lua/ratelimit.lua's header). */
function luaArgs(req) {
  const op = OPS[req.op];
  if (req.op === 'configure') return script.configArgs(req.config.policy, req.config.idleMs, req.config.shadow);
  if (op.check && !op.luaArgs) return script.checkArgs(op.lua, req.cost, req.inline, req.withPolicy);
  const args = op.luaArgs ? op.luaArgs(req) : op.args ? op.args(req) : [];
  return script.opArgs(op.lua, args, op.inline ? req.inline : null);
}

module.exports = { OPS, moduleArgs, luaArgs };
