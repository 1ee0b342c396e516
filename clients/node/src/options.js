'use strict';
// The limiter's options: one table (name, default, check), so the list cannot drift from
// what is validated, and unknown names are refused with the closest known one.
//
// PURE: no I/O.

const { ConfigurationError } = require('./errors');
const { closest } = require('./policy');

const ON_ERROR = ['allow', 'deny', 'local'];

function positiveInteger(v) {
  return Number.isSafeInteger(v) && v >= 1;
}

/** name -> [default, check(value) -> true | message]. */
const OPTIONS = {
  url: [undefined, (v) => typeof v === 'string' || 'a Redis URL string'],
  client: [undefined, (v) => (v !== null && typeof v === 'object') || 'an ioredis or node-redis client'],
  driver: [undefined, (v) => ['ioredis', 'redis'].includes(v) || "'ioredis' or 'redis'"],
  prefix: ['rl:', (v) => (typeof v === 'string' && prefixOk(v)) || "a string without '{' or '}' unless it is a whole hash tag ('{tenant}:')"],
  onError: ['local', (v) => ON_ERROR.includes(v) || `one of ${ON_ERROR.join(', ')}`],
  localShare: [1, (v) => (typeof v === 'number' && v > 0 && v <= 1) || 'a number in (0, 1]'],
  timeoutMs: [50, (v) => positiveInteger(v) || 'a positive integer (ms)'],
  connectTimeoutMs: [1000, (v) => positiveInteger(v) || 'a positive integer (ms)'],
  breakerFailures: [3, (v) => positiveInteger(v) || 'a positive integer'],
  breakerCooldownMs: [1000, (v) => positiveInteger(v) || 'a positive integer (ms)'],
  denyCacheMaxMs: [1000, (v) => (Number.isSafeInteger(v) && v >= 0) || 'an integer >= 0 (ms; 0 turns the deny cache off)'],
  maxPolicies: [100_000, (v) => positiveInteger(v) || 'a positive integer'],
  localMaxKeys: [100_000, (v) => positiveInteger(v) || 'a positive integer'],
  logger: [console, (v) => (v && typeof v.warn === 'function') || 'an object with warn() and error() (console by default)'],
  onStateChange: [undefined, (v) => typeof v === 'function' || 'a function (event, stats)'],
  now: [undefined, (v) => typeof v === 'function' || 'a function returning Unix ms'],
  // OpenTelemetry (telemetry.js): omitted, automatic; false, off; or the providers to record to.
  telemetry: [undefined, (v) => v === false || (v !== null && typeof v === 'object' && !Array.isArray(v)) || 'false or {meterProvider, tracerProvider}'],
};

/** A prefix may hold a hash tag only as a whole `{...}` (so keys still hash on it). */
function prefixOk(p) {
  if (!/[{}]/.test(p)) return true;
  return /^[^{}]*\{[^{}]+\}[^{}]*$/.test(p);
}

/** The options with defaults filled in; ConfigurationError naming the first bad or unknown one. */
function resolve(given) {
  if (given !== undefined && (given === null || typeof given !== 'object' || Array.isArray(given))) {
    throw new ConfigurationError('options must be an object', 'options');
  }
  const o = {};
  for (const [name, value] of Object.entries(given || {})) {
    if (!(name in OPTIONS)) {
      const near = closest(name, Object.keys(OPTIONS));
      throw new ConfigurationError(`unknown option '${name}'${near ? ` (did you mean '${near}'?)` : ''}; known: ${Object.keys(OPTIONS).join(', ')}`, name);
    }
    if (value === undefined) continue;
    const ok = OPTIONS[name][1](value);
    if (ok !== true) throw new ConfigurationError(`option ${name} must be ${ok}`, name);
    o[name] = value;
  }
  for (const [name, [dflt]] of Object.entries(OPTIONS)) if (!(name in o)) o[name] = dflt;
  if (o.url !== undefined && o.client !== undefined) throw new ConfigurationError('give url or client, not both', 'url');
  return o;
}

module.exports = { OPTIONS, resolve, prefixOk };
