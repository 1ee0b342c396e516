'use strict';
// The circuit breaker: after `threshold` consecutive failures, stop asking Redis for
// `cooldownMs`; then let one call through as a probe. The probe's success closes the
// breaker; its failure opens it for another cool-down. While open (or while the probe is in
// flight) every check takes the failure policy at once, without touching the network.
//
// PURE: time is injected (`now`, ms).

class Breaker {
  /** onChange(from, to): called on every change of state ('closed', 'open', 'half_open'). */
  constructor({ threshold, cooldownMs, now, onChange = () => {} }) {
    this.threshold = threshold;
    this.cooldownMs = cooldownMs;
    this.now = now;
    this.onChange = onChange;
    this.state = 'closed';
    this.failures = 0;
    this.openUntil = 0;
  }

  /** Whether this call may go to Redis; moves an expired open breaker to half-open (the probe). */
  allow() {
    if (this.state === 'closed') return true;
    if (this.state === 'open' && this.now() >= this.openUntil) {
      this.move('half_open');
      return true;
    }
    return false;
  }

  /** Ms until the next probe (0 when closed). */
  retryInMs() {
    if (this.state === 'closed') return 0;
    return Math.max(this.openUntil - this.now(), 0);
  }

  success() {
    this.failures = 0;
    if (this.state !== 'closed') this.move('closed');
  }

  failure() {
    this.failures += 1;
    if (this.state === 'half_open' || (this.state === 'closed' && this.failures >= this.threshold)) {
      this.openUntil = this.now() + this.cooldownMs;
      this.move('open');
    }
  }

  move(to) {
    const from = this.state;
    this.state = to;
    this.onChange(from, to);
  }
}

module.exports = { Breaker };
