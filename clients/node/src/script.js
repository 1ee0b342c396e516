'use strict';
// The no-module fallback: the shared GCRA script clients/lua/ratelimit.lua (its header holds
// the ARGV layout and the bounds of Lua's exact range), run with EVALSHA and reloaded with
// EVAL when the server answers NOSCRIPT (a restart, SCRIPT FLUSH, another cluster node).

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

// A packed copy (npm pack copies it next to src/) first, then the repository's shared file.
const CANDIDATES = [path.join(__dirname, '..', 'lua', 'ratelimit.lua'), path.join(__dirname, '..', '..', 'lua', 'ratelimit.lua')];

let cached = null;

/** {source, sha} of ratelimit.lua, read once. */
function load() {
  if (cached) return cached;
  const file = CANDIDATES.find((f) => fs.existsSync(f));
  if (!file) throw new Error(`ratelimit.lua not found (looked in ${CANDIDATES.join(', ')})`);
  const source = fs.readFileSync(file, 'utf8');
  cached = { source, sha: crypto.createHash('sha1').update(source).digest('hex') };
  return cached;
}

/** ARGV for a check or peek: op, now ("" = server clock), cost, inline limit/window/burst or "". */
function checkArgs(op, cost, inline) {
  if (!inline) return [op, '', String(cost), '', '', ''];
  return [op, '', String(cost), String(inline.limit), String(inline.windowMs), String(inline.burst)];
}

function configArgs(pol, idleMs, shadow) {
  return ['config', '', String(pol.limit), String(pol.windowMs), String(pol.burst), idleMs === null ? '0' : String(idleMs), shadow ? '1' : '0'];
}

/**
 * Runs the script for `key` through `send(key, args)`: EVALSHA, then EVAL on NOSCRIPT.
 */
async function run(send, key, argv) {
  const { source, sha } = load();
  try {
    return await send(key, ['EVALSHA', sha, '1', key, ...argv]);
  } catch (err) {
    if (!/^NOSCRIPT/.test(err && err.message)) throw err;
    return send(key, ['EVAL', source, '1', key, ...argv]);
  }
}

module.exports = { load, run, checkArgs, configArgs };
