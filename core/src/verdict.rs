//! The numbers behind a decision, for `RL.THROTTLE`, `RL.PEEK` and `RL.INFO`: what a client
//! needs for `Retry-After` and `RateLimit` headers.
//!
//! Everything is exact integer arithmetic in the same units as [`crate::gcra`] (1/limit ms),
//! rounded once, up, to whole milliseconds: a retry at `now + retry_after_ms` passes and one
//! a millisecond earlier does not.
//!
//! PURE: no Redis types here.

use crate::gcra::{decide, Decision, Tat};
use crate::policy::Policy;

/// A decision with its numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Decision,
    /// The bucket's capacity in cost-1 requests (the policy's burst).
    pub limit: u64,
    /// How many cost-1 requests would pass right now, after this one.
    pub remaining: u64,
    /// Ms until this same request would pass; `None` when it was allowed, or when it can never
    /// pass because its cost exceeds the burst.
    pub retry_after_ms: Option<u64>,
    /// Ms until the bucket is empty again (0 when it already is).
    pub reset_after_ms: u64,
}

/// Decides like [`decide`] and adds the numbers, for the state after the decision.
pub fn evaluate(policy: &Policy, tat: Tat, now_ms: u64, cost: u64) -> Verdict {
    explain(policy, tat, now_ms, cost, decide(policy, tat, now_ms, cost))
}

/// The numbers for a `decision` already taken by [`decide`] on the same inputs.
pub fn explain(policy: &Policy, tat: Tat, now_ms: u64, cost: u64, decision: Decision) -> Verdict {
    let tat = tat.clamped(policy, now_ms);
    let after = match decision {
        Decision::Allowed(t) => t,
        Decision::Denied => tat,
    };
    let limit = u128::from(policy.limit());
    let interval = u128::from(policy.window_ms());
    let tolerance = u128::from(policy.burst()) * interval;
    let retry_after_ms = match decision {
        Decision::Allowed(_) => None,
        Decision::Denied if u128::from(cost) > u128::from(policy.burst()) => None,
        Decision::Denied => {
            // The first whole ms t with tat + cost*T - t <= burst*T, i.e.
            // t >= (tat + cost*T - burst*T) / limit (all in 1/limit-ms units).
            let needed = (tat.in_units(policy.limit()) + u128::from(cost) * interval)
                .saturating_sub(tolerance);
            let at_ms = needed.div_ceil(limit);
            Some(clamp_u64(at_ms.saturating_sub(u128::from(now_ms)).max(1)))
        }
    };
    Verdict {
        decision,
        limit: policy.burst(),
        remaining: remaining(policy, after, now_ms),
        retry_after_ms,
        reset_after_ms: after.empty_at_ms().saturating_sub(now_ms),
    }
}

/// How many cost-1 requests would pass at `now_ms` against a bucket at `tat`: `k` pass while
/// backlog + k*T <= burst*T.
pub fn remaining(policy: &Policy, tat: Tat, now_ms: u64) -> u64 {
    let tat = tat.clamped(policy, now_ms);
    let interval = u128::from(policy.window_ms());
    let tolerance = u128::from(policy.burst()) * interval;
    let now = u128::from(now_ms) * u128::from(policy.limit());
    let backlog = tat.in_units(policy.limit()).saturating_sub(now);
    clamp_u64(tolerance.saturating_sub(backlog) / interval)
}

fn clamp_u64(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

#[cfg(test)]
#[path = "verdict_tests.rs"]
mod tests;
