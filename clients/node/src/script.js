'use strict';
// The no-module fallback: the shared script clients/lua/ratelimit.lua (its header documents
// KEYS and ARGV), run with EVALSHA and reloaded with EVAL when the server answers NOSCRIPT (a
// restart, SCRIPT FLUSH, another cluster node).

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { InvalidArgument } = require('./errors');

// A packed copy (npm pack copies it next to src/) first, then the repository's shared file.
const CANDIDATES = [path.join(__dirname, '..', 'lua', 'ratelimit.lua'), path.join(__dirname, '..', '..', 'lua', 'ratelimit.lua')];

let cached = null;

/** {source, sha} of ratelimit.lua, read once. */
function load() {
  if (cached) return cached;
  const file = CANDIDATES.find((f) => fs.existsSync(f));
  if (!file) throw new Error(`ratelimit.lua not found (looked in ${CANDIDATES.join(', ')})`);
  const source = fs.readFileSync(file, 'utf8');
  cached = { source, sha: crypto.createHash('sha1').update(source).digest('hex'), file };
  return cached;
}

/** Lua numbers are doubles: the script is exact only within this range (clients/README.md). */
const LUA_MAX_LIMIT = 2n ** 26n;
const LUA_MAX_TOLERANCE = 2n ** 51n;
const LUA_RANGE =
  "policy out of the Lua fallback's exact range (limit <= 67108864 and burst * windowMs <= 2251799813685248): load the rl module for it";

/** The policy, if the Lua script can hold it exactly; else InvalidArgument, before sending. */
function inRange(pol) {
  for (const l of pol.limits) {
    if (l.kind === 'gcra' && (l.limit > LUA_MAX_LIMIT || l.burst * l.windowMs > LUA_MAX_TOLERANCE)) throw new InvalidArgument(LUA_RANGE);
  }
  return pol;
}

/**
 * A policy as the script's LIMITs: kind, limit, window_ms, burst ("" for SLIDING and
 * CONCURRENCY), per limit; then its penalty as one more group of 4: "penalty", ms, max_ms, "".
 */
function limitArgs(pol) {
  const args = [];
  for (const l of inRange(pol).limits) args.push(l.kind, String(l.limit), String(l.windowMs), l.kind === 'gcra' ? String(l.burst) : '');
  if (pol.penalty) args.push('penalty', String(pol.penalty.ms), String(pol.penalty.maxMs), '');
  return args;
}

/** ARGV for a check or peek: op, now ("" = server clock), cost, "withpolicy" or "", the inline policy (none: nothing). */
function checkArgs(op, cost, inline, withPolicy) {
  const args = [op, '', String(cost), withPolicy ? 'withpolicy' : ''];
  if (inline) args.push(...limitArgs(inline));
  return args;
}

/** ARGV for config: idle_ms ("0": none), shadow, the policy. */
function configArgs(pol, idleMs, shadow) {
  return ['config', '', idleMs === null ? '0' : String(idleMs), shadow ? '1' : '0', ...limitArgs(pol)];
}

/** ARGV of an operation without arguments (reset, info, export). */
function plainArgs(op) {
  return [op, ''];
}

/** ARGV of any other operation: op, now (""), its arguments, then the inline policy if any. */
function opArgs(op, args, inline) {
  const out = [op, '', ...args];
  if (inline) out.push(...limitArgs(inline));
  return out;
}

/**
 * Runs the script for `key` through `send(key, args)`: EVALSHA, and on NOSCRIPT one SCRIPT
 * LOAD shared by every call to the same node that got NOSCRIPT meanwhile (`loads`: a Map, so
 * a burst of checks on a fresh server sends the source once, not once per check), then
 * EVALSHA again.
 */
async function run(send, key, argv, loads, node = '') {
  const { source, sha } = load();
  const args = ['EVALSHA', sha, '1', key, ...argv];
  try {
    return await send(key, args);
  } catch (err) {
    if (!/^NOSCRIPT/.test(err && err.message)) throw err;
  }
  // In a cluster each node needs the script: one load at a time per node (`node`).
  let loading = loads.get(node);
  if (!loading) {
    loading = Promise.resolve(send(key, ['SCRIPT', 'LOAD', source])).finally(() => loads.delete(node));
    loads.set(node, loading);
  }
  await loading;
  return send(key, args);
}

module.exports = { load, run, checkArgs, configArgs, plainArgs, opArgs, inRange, LUA_RANGE };
