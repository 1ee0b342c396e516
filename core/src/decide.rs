//! The decision over a policy of one to four limits, all-or-nothing, and the numbers a
//! client is told (`RL.THROTTLE`, `RL.PEEK`, `RL.INFO` all use [`numbers`]).
//!
//! A request passes iff every limit admits it; then each limit records it. If any limit
//! denies, no limit records anything: a denial consumes nothing anywhere, so a client held
//! back by its daily quota does not also burn its per-second allowance. A policy of one GCRA
//! limit is this same path with one limit.
//!
//! The numbers, all exact and in whole ms rounded up:
//! - `remaining`: the fewest cost-1 requests any limit would still admit, after the request.
//! - `retry_after_ms`: when denied, the time until every limit admits the same request (the
//!   largest of the limits' own waits: each limit's admission only becomes easier as time
//!   passes); none when allowed, or when the cost is above some limit's capacity.
//! - `reset_after_ms`: the time until every limit is empty (the largest of the limits').
//! - `binding`: the limit the client is told about (`limit` is its capacity): when denied,
//!   the first limit that can never admit the cost, else the one with the longest wait;
//!   when allowed, the one with the fewest requests left; on a tie, the first given.
//!
//! PURE: no Redis types here.

use crate::kinds::{Admit, Usage};
use crate::policy::{Policy, MAX_LIMITS};

/// A decision: whether the request passes, and what each limit records if it does.
#[derive(Clone, Copy, Debug)]
pub struct Decision {
    pub allowed: bool,
    /// Each limit's admission, in the policy's order (`None`: that limit denies).
    admits: [Option<Admit>; MAX_LIMITS],
}

impl Decision {
    /// The same decision, denied (a blocked key's: nothing is recorded, and the numbers are
    /// those of a denial).
    pub fn denied(&self) -> Decision {
        Decision {
            allowed: false,
            admits: self.admits,
        }
    }

    /// The same decision, recording the lease `id` in every limit that takes leases.
    pub fn with_lease(mut self, id: u64) -> Decision {
        for a in self.admits.iter_mut().flatten() {
            *a = a.with_id(id);
        }
        self
    }

    /// What limit `i` records, when the request is allowed.
    fn admitted(&self, i: usize) -> Option<&Admit> {
        if self.allowed {
            self.admits.get(i).and_then(Option::as_ref)
        } else {
            None
        }
    }
}

/// Decides a request of `cost` at `now_ms` on `usages`, one per limit of `policy`, each of
/// its limit's kind (a usage that does not fit its limit denies). Changes nothing.
#[inline]
pub fn decide(policy: &Policy, usages: &[Usage], now_ms: u64, cost: u64) -> Decision {
    let mut admits = [None; MAX_LIMITS];
    let mut allowed = usages.len() == policy.len();
    for ((limit, usage), slot) in policy.limits().iter().zip(usages).zip(admits.iter_mut()) {
        *slot = limit.admit(usage, now_ms, cost);
        allowed &= slot.is_some();
    }
    Decision { allowed, admits }
}

/// Records an allowed request in every limit's usage, in place (nothing when denied).
#[inline(always)]
pub fn record(policy: &Policy, usages: &mut [Usage], decision: &Decision, now_ms: u64, cost: u64) {
    if !decision.allowed {
        return;
    }
    for ((limit, usage), admit) in policy
        .limits()
        .iter()
        .zip(usages.iter_mut())
        .zip(&decision.admits)
    {
        if let Some(a) = *admit {
            limit.record(usage, a, now_ms, cost);
        }
    }
}

/// Whether [`repair`] would change anything: state ahead of now (a clock that stepped back).
#[inline]
pub fn needs_repair(policy: &Policy, usages: &[Usage], now_ms: u64) -> bool {
    policy
        .limits()
        .iter()
        .zip(usages)
        .any(|(limit, usage)| limit.needs_repair(usage, now_ms))
}

/// Stores what a decision reads when the server clock stepped back (a TAT more than a full
/// bucket ahead, SLIDING entries in the future): the one write a denial makes. `true` if
/// anything changed.
#[inline]
pub fn repair(policy: &Policy, usages: &mut [Usage], now_ms: u64) -> bool {
    let mut changed = false;
    for (limit, usage) in policy.limits().iter().zip(usages.iter_mut()) {
        changed |= limit.repair(usage, now_ms);
    }
    changed
}

/// One limit's numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LimitNumbers {
    /// Cost-1 requests at once from idle (GCRA: the burst; SLIDING: the limit).
    pub capacity: u64,
    /// Cost-1 requests it would still admit, after the request.
    pub remaining: u64,
    /// Ms until it is empty, after the request.
    pub reset_after_ms: u64,
    /// Ms until it admits the request: 0 if it does now, `None` if it never can.
    pub wait_ms: Option<u64>,
}

/// The numbers behind a decision (or, with no request, behind a key's state).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Numbers {
    pub allowed: bool,
    pub binding: usize,
    /// The binding limit's capacity.
    pub limit: u64,
    pub remaining: u64,
    pub retry_after_ms: Option<u64>,
    pub reset_after_ms: u64,
    /// Each limit's own numbers, the first [`Policy::len`] used.
    pub each: [LimitNumbers; MAX_LIMITS],
}

/// The one numbers function: for a request of `cost` decided as `decision` on `usages` (as
/// they were before it was recorded), or for no request at all (`None`: what `RL.INFO`
/// shows), at `now_ms`.
pub fn numbers(
    policy: &Policy,
    usages: &[Usage],
    decision: Option<&Decision>,
    now_ms: u64,
    cost: u64,
) -> Numbers {
    let allowed = decision.is_some_and(|d| d.allowed);
    let mut each = [LimitNumbers::default(); MAX_LIMITS];
    for (i, ((limit, usage), out)) in policy
        .limits()
        .iter()
        .zip(usages)
        .zip(each.iter_mut())
        .enumerate()
    {
        let admitted = decision.and_then(|d| d.admitted(i));
        let (remaining, empty_at) = limit.after(usage, admitted, now_ms, cost);
        *out = LimitNumbers {
            capacity: limit.capacity(),
            remaining,
            reset_after_ms: empty_at.saturating_sub(now_ms),
            wait_ms: match decision {
                Some(d) if !d.allowed => limit.wait_ms(usage, now_ms, cost),
                _ => Some(0),
            },
        };
    }
    let used = each.get(..policy.len()).unwrap_or(&[]);
    let never = used.iter().position(|n| n.wait_ms.is_none());
    let binding = if decision.is_some() && !allowed {
        // The first limit that can never admit the cost, else the longest wait (first on a tie).
        never.unwrap_or_else(|| first_max(used.iter().map(|n| n.wait_ms.unwrap_or(0))))
    } else {
        // The fewest requests left (first on a tie).
        first_max(used.iter().map(|n| u64::MAX - n.remaining))
    };
    let retry_after_ms = match decision {
        Some(d) if !d.allowed && never.is_none() => Some(
            used.iter()
                .filter_map(|n| n.wait_ms)
                .max()
                .unwrap_or(0)
                .max(1),
        ),
        _ => None,
    };
    Numbers {
        allowed,
        binding,
        limit: used.get(binding).map_or(0, |n| n.capacity),
        remaining: used.iter().map(|n| n.remaining).min().unwrap_or(0),
        retry_after_ms,
        reset_after_ms: used.iter().map(|n| n.reset_after_ms).max().unwrap_or(0),
        each,
    }
}

/// The numbers of a check on a key blocked until `until_ms` (or on the denial that starts
/// the block): denied, `remaining` 0, `retry_after_ms` the later of the block's end and the
/// request's own retry under its limits at that instant (so a client that retries then is
/// not denied again for its limits; none when its cost can never fit), `reset_after_ms` the
/// later of the block's end and the limits' own reset. Nothing is recorded: `decision` is
/// read as denied.
pub fn blocked_numbers(
    policy: &Policy,
    usages: &[Usage],
    decision: &Decision,
    now_ms: u64,
    cost: u64,
    until_ms: u64,
) -> Numbers {
    let block_ms = until_ms.saturating_sub(now_ms);
    let mut n = numbers(policy, usages, Some(&decision.denied()), now_ms, cost);
    n.allowed = false;
    n.remaining = 0;
    n.retry_after_ms = n.retry_after_ms.map(|r| r.max(block_ms));
    n.reset_after_ms = n.reset_after_ms.max(block_ms);
    n
}

/// The index of the first largest value.
fn first_max(values: impl Iterator<Item = u64>) -> usize {
    let mut best = (0, None);
    for (i, v) in values.enumerate() {
        if best.1.is_none_or(|b| v > b) {
            best = (i, Some(v));
        }
    }
    best.0
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
