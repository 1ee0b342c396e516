'use strict';
const { DistributedRateLimiter, RateLimitTimeoutError } = require('./limiter');
const { RateLimitArgumentError } = require('./policy');
const { LocalLimiter } = require('./local');
const { rateLimit, ipKey } = require('./middleware');
const { keySlot } = require('./slot');

module.exports = { DistributedRateLimiter, RateLimitArgumentError, RateLimitTimeoutError, LocalLimiter, rateLimit, ipKey, keySlot };
