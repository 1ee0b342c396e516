'use strict';
const { DistributedRateLimiter } = require('./limiter');
const errors = require('./errors');
const { LocalLimiter } = require('./local');
const { ipKey } = require('./ip');
const { keySlot } = require('./slot');

module.exports = {
  DistributedRateLimiter,
  LocalLimiter,
  ipKey,
  keySlot,
  RateLimitError: errors.RateLimitError,
  ConfigurationError: errors.ConfigurationError,
  InvalidArgument: errors.InvalidArgument,
  CommandError: errors.CommandError,
  NoRateLimit: errors.NoRateLimit,
  ForeignKey: errors.ForeignKey,
  Unavailable: errors.Unavailable,
  Denied: errors.Denied,
  RateLimitArgumentError: errors.RateLimitArgumentError,
  RateLimitTimeoutError: errors.RateLimitTimeoutError,
};

// Deprecated since 0.2: the middleware lives at `distributed-rate-limiter/express`.
Object.defineProperty(module.exports, 'rateLimit', {
  enumerable: false,
  get: () => require('./express').rateLimit,
});
