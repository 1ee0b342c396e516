'use strict';
// The error tree, with the same class names as the Python client (clients/README.md):
//
//   RateLimitError
//   ├── ConfigurationError   bad options or URL at construction; names the option
//   ├── InvalidArgument      a bad argument to a call, in the caller's words (windowMs)
//   ├── CommandError         the server refused the call
//   │   ├── NoRateLimit      no stored, inline or default policy for the key
//   │   └── ForeignKey       the key holds data this client did not create
//   ├── Unavailable          no answer in time, or the circuit is open, for a call with no
//   │                        fallback (configure, reset, info, refund, block, unblock; settle,
//   │                        release, renew after one retry) and for ready()'s rejection
//   └── Denied               withLease(..., {rejectOnDeny: true}) was denied; `decision` says why
//
// PURE: no I/O.

class RateLimitError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = this.constructor.name;
  }
}

class ConfigurationError extends RateLimitError {
  /** @param {string} message @param {string} [option] the option (or argument) at fault */
  constructor(message, option) {
    super(message);
    this.option = option;
  }
}

class InvalidArgument extends RateLimitError {}

/** A refusal from the server; `cause` is the client library's error reply. */
class CommandError extends RateLimitError {}

class NoRateLimit extends CommandError {}

class ForeignKey extends CommandError {}

/** Redis did not answer in time (or the circuit is open); `cause` says why when known. */
class Unavailable extends RateLimitError {}

/** A denial raised as an error, where the caller asked for one (withLease's rejectOnDeny). */
class Denied extends RateLimitError {
  /** @param {object} decision the denied decision (retryAfterMs says when to try again) */
  constructor(decision) {
    super(`denied: retry after ${decision.retryAfterMs} ms (path ${decision.path})`);
    this.decision = decision;
  }
}

/** The Lua script's refusal of a key it did not create (clients/lua/ratelimit.lua). */
const FOREIGN_KEY = /key is not a rate limit of this client/;
const NO_RATE_LIMIT = /^(ERR )?no rate limit for key/;

/**
 * A server error reply as the error the caller gets: NoRateLimit, ForeignKey or
 * CommandError, each with the library's error as `cause`.
 */
function commandError(err) {
  const message = String((err && err.message) || err);
  if (NO_RATE_LIMIT.test(message)) return new NoRateLimit(message, { cause: err });
  if (FOREIGN_KEY.test(message)) return new ForeignKey(message, { cause: err });
  return new CommandError(message, { cause: err });
}

module.exports = {
  RateLimitError,
  ConfigurationError,
  InvalidArgument,
  CommandError,
  NoRateLimit,
  ForeignKey,
  Unavailable,
  Denied,
  commandError,
  // Deprecated names of 0.1 (clients/node/README.md, "Changes").
  RateLimitArgumentError: InvalidArgument,
  RateLimitTimeoutError: Unavailable,
};
