'use strict';
// The operation table: for each call of the API, the module command, the Lua script's
// operation, and how a reply becomes the caller's value. Adding an operation (issue 19's
// refund, issue 20's acquire) is one entry here plus its Lua branch and its local rule.
//
// A request is {op, key, cost, inline, withPolicy, config}: `inline` a policy or null,
// `config` {policy, idleMs, shadow} for configure.
//
// PURE: no I/O.

const policyOf = require('./policy');
const replies = require('./replies');
const script = require('./script');

const OPS = {
  /** isAllowed: RL.ALLOW; RL.THROTTLE when the deny cache needs the retry time. */
  allow: {
    check: true,
    counts: true,
    command: (req) => (req.numbers ? 'RL.THROTTLE' : 'RL.ALLOW'),
    lua: 'check',
  },
  throttle: { check: true, counts: true, command: () => 'RL.THROTTLE', lua: 'check' },
  peek: { check: true, counts: false, command: () => 'RL.PEEK', lua: 'peek' },
  configure: { command: () => 'RL.CONFIG', lua: 'config', decode: () => undefined },
  reset: { command: () => 'RL.RESET', lua: 'reset', decode: (r) => Number(r) },
  info: { command: () => 'RL.INFO', lua: 'info', decode: (r) => replies.info(r) },
  /** Lua only: a key's policy, read and deleted, to move it to the module (limiter.migrate). */
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
  if (!op.check) return args;
  if (req.cost !== 1n) args.push('COST', String(req.cost));
  if (req.inline) args.push(...policyOf.inlineArgs(req.inline));
  if (req.withPolicy && args[0] !== 'RL.ALLOW') args.push('WITHPOLICY');
  return args;
}

/** The Lua script's ARGV for a request. */
function luaArgs(req) {
  const op = OPS[req.op];
  if (op.check) return script.checkArgs(op.lua, req.cost, req.inline, req.withPolicy);
  if (req.op === 'configure') return script.configArgs(req.config.policy, req.config.idleMs, req.config.shadow);
  return script.plainArgs(op.lua);
}

module.exports = { OPS, moduleArgs, luaArgs };
