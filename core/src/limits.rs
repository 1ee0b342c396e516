//! Several limits on one key, decided all-or-nothing: "10 per second AND 1000 per day".
//!
//! A key holds up to [`MAX_LIMITS`] limits, each GCRA ([`crate::gcra`]) or SLIDING
//! ([`crate::sliding`]), and one usage per limit. A request passes iff every limit admits it;
//! then each limit records it. If any limit denies, no limit records anything: a denial
//! consumes nothing anywhere, so a client held back by its daily quota does not also burn its
//! per-second allowance.
//!
//! The client is told about the *binding* limit: when denied, the one it must wait longest
//! for (its `retry_after_ms` is the set's, exact because each limit's admission only becomes
//! easier as time passes, so the request passes at the latest of the limits' retry instants);
//! when allowed, the one with the fewest requests left.
//!
//! PURE: no Redis types here.

use crate::error::Error;
use crate::gcra::{self, Tat, MAX_TAT_MS};
use crate::policy::{Policy, StoredPolicy, FLAG_SHADOW};
use crate::sliding::{self, Log, Numbers, Sliding};
use crate::verdict;

/// Most limits one key holds. Small and fixed: the set lives inline (no allocation to parse
/// it) and every request checks each one.
pub const MAX_LIMITS: usize = 4;

/// One limit of a set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// `limit` per `window_ms` on average, bursts up to `burst` (the leaky bucket).
    Gcra(Policy),
    /// At most `limit` in any `window_ms`.
    Sliding(Sliding),
}

impl Limit {
    /// How many cost-1 requests pass at once from idle (GCRA: the burst; SLIDING: the limit).
    pub fn capacity(&self) -> u64 {
        match self {
            Limit::Gcra(p) => p.burst(),
            Limit::Sliding(s) => s.limit(),
        }
    }

    /// This limit under `rl.scale-percent` (see each kind's `scaled`).
    pub fn scaled(&self, percent: u64) -> Limit {
        match self {
            Limit::Gcra(p) => Limit::Gcra(p.scaled(percent)),
            Limit::Sliding(s) => Limit::Sliding(s.scaled(percent)),
        }
    }
}

/// 1 to [`MAX_LIMITS`] limits, in the order they were given.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    items: [Limit; MAX_LIMITS],
    len: usize,
}

/// Two sets are equal when they hold the same limits (the unused slots do not count).
impl PartialEq for Limits {
    fn eq(&self, other: &Limits) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Limits {}

impl Limits {
    /// A set from its limits: at least one, at most [`MAX_LIMITS`].
    pub fn new(limits: &[Limit]) -> Result<Limits, Error> {
        let (&first, _) = limits.split_first().ok_or(Error::MissingValue)?;
        if limits.len() > MAX_LIMITS {
            return Err(Error::TooManyLimits);
        }
        let mut items = [first; MAX_LIMITS];
        items[..limits.len()].copy_from_slice(limits);
        Ok(Limits {
            items,
            len: limits.len(),
        })
    }

    /// The set of one GCRA policy: what every key held before several limits existed.
    pub fn single(policy: Policy) -> Limits {
        Limits {
            items: [Limit::Gcra(policy); MAX_LIMITS],
            len: 1,
        }
    }

    pub fn as_slice(&self) -> &[Limit] {
        &self.items[..self.len]
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The one GCRA policy of a single-limit set: the case that keeps the compact one-word
    /// value and the original fast path.
    pub fn single_gcra(&self) -> Option<Policy> {
        match self.as_slice() {
            [Limit::Gcra(p)] => Some(*p),
            _ => None,
        }
    }

    /// Every limit under `rl.scale-percent`.
    pub fn scaled(&self, percent: u64) -> Limits {
        let mut out = *self;
        for l in &mut out.items[..self.len] {
            *l = l.scaled(percent);
        }
        out
    }
}

/// What `RL.CONFIG` stores in a key: its limits, how long an idle client is remembered and
/// whether the set only observes (the same meaning as [`StoredPolicy`]'s fields, for the whole
/// set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredLimits {
    pub limits: Limits,
    pub idle_ms: u64,
    pub shadow: bool,
}

impl StoredLimits {
    /// The stored policy of a single-GCRA set: the form that keeps today's value layout,
    /// RDB encoding and `RL.APPLY` text.
    pub fn single_gcra(&self) -> Option<StoredPolicy> {
        let policy = self.limits.single_gcra()?;
        Some(StoredPolicy {
            policy,
            idle_ms: self.idle_ms,
            shadow: self.shadow,
        })
    }

    pub fn from_single(stored: StoredPolicy) -> StoredLimits {
        StoredLimits {
            limits: Limits::single(stored.policy),
            idle_ms: stored.idle_ms,
            shadow: stored.shadow,
        }
    }

    /// The flags as stored (the same bits as [`StoredPolicy::flags`]).
    pub fn flags(&self) -> u64 {
        if self.shadow {
            FLAG_SHADOW
        } else {
            0
        }
    }
}

/// What one limit has used: a GCRA instant or a SLIDING log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Usage {
    Gcra(Tat),
    Sliding(Log),
}

impl Usage {
    /// The usage of a client that has made no request under `limit`.
    pub fn empty_for(limit: &Limit) -> Usage {
        match limit {
            Limit::Gcra(_) => Usage::Gcra(Tat::EMPTY),
            Limit::Sliding(_) => Usage::Sliding(Log::EMPTY),
        }
    }

    fn fits(&self, limit: &Limit) -> bool {
        matches!(
            (self, limit),
            (Usage::Gcra(_), Limit::Gcra(_)) | (Usage::Sliding(_), Limit::Sliding(_))
        )
    }

    /// This usage carried over to `limit` at `now_ms`, keeping usage as time as a
    /// reconfiguration always has: the same kind keeps its state (GCRA its TAT, SLIDING its
    /// log); a change of kind converts it, never into more room than the time still owed.
    ///
    /// - SLIDING -> GCRA: the live requests are replayed into the bucket, each at its instant.
    /// - GCRA -> SLIDING: the backlog (`TAT - now`) becomes the same share of the new window's
    ///   limit (rounded up, at most the limit), as one entry that leaves the window when the
    ///   bucket would have been empty (or one window from now, if the backlog is longer).
    pub fn carried_to(&self, limit: &Limit, now_ms: u64) -> Usage {
        match (self, limit) {
            (Usage::Sliding(log), Limit::Gcra(p)) => {
                let l = u128::from(p.limit());
                let mut units = 0u128;
                for (t, c) in log.entries_until(now_ms) {
                    units =
                        units.max(u128::from(t) * l) + u128::from(c) * u128::from(p.window_ms());
                }
                let cap = u128::from(MAX_TAT_MS) * l;
                let units = units.min(cap);
                let tat = Tat::new(
                    u64::try_from(units / l).unwrap_or(MAX_TAT_MS),
                    u64::try_from(units % l).unwrap_or(0),
                    p.limit(),
                )
                .unwrap_or(Tat::EMPTY);
                Usage::Gcra(tat.reduced())
            }
            (Usage::Gcra(tat), Limit::Sliding(s)) => {
                let empty_at = tat.empty_at_ms();
                if empty_at <= now_ms {
                    return Usage::Sliding(Log::EMPTY);
                }
                let backlog = u128::from(empty_at - now_ms);
                let share = (backlog * u128::from(s.limit())).div_ceil(u128::from(s.window_ms()));
                let count = u64::try_from(share).unwrap_or(u64::MAX).min(s.limit());
                let at = empty_at.saturating_sub(s.window_ms()).min(now_ms);
                Usage::Sliding(Log::single(at, count).unwrap_or(Log::EMPTY))
            }
            (same, _) => same.clone(),
        }
    }
}

/// `usage` made to match `limits` position by position: a usage of the right kind is kept,
/// one of the other kind is carried over ([`Usage::carried_to`]), a missing one starts
/// empty, and usages past the last limit are dropped. Returns whether anything changed.
/// Whether `usage` already matches `limits` position by position (so [`align`] would change
/// nothing).
pub fn fits(limits: &Limits, usage: &[Usage]) -> bool {
    usage.len() == limits.len() && limits.as_slice().iter().zip(usage).all(|(l, u)| u.fits(l))
}

/// Unix ms from which every usage is empty under `limits` (aligned), for a key's expiry.
pub fn empty_at_ms(limits: &Limits, usage: &[Usage], now_ms: u64) -> u64 {
    limits
        .as_slice()
        .iter()
        .zip(usage)
        .map(|(l, u)| match (l, u) {
            (Limit::Sliding(s), Usage::Sliding(log)) => log.empty_at_ms(s, now_ms),
            (_, Usage::Gcra(t)) => t.empty_at_ms(),
            (Limit::Gcra(_), Usage::Sliding(log)) => {
                log.entries_until(now_ms).last().map_or(now_ms, |(t, _)| t)
            }
        })
        .fold(now_ms, u64::max)
}

pub fn align(limits: &Limits, usage: &mut Vec<Usage>, now_ms: u64) -> bool {
    let mut changed = usage.len() != limits.len();
    usage.truncate(limits.len());
    for (i, limit) in limits.as_slice().iter().enumerate() {
        match usage.get_mut(i) {
            Some(u) if u.fits(limit) => {}
            Some(u) => {
                *u = u.carried_to(limit, now_ms);
                changed = true;
            }
            None => usage.push(Usage::empty_for(limit)),
        }
    }
    changed
}

/// The outcome of one request against a set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub allowed: bool,
    /// Index of the binding limit: when denied, the one waited for longest (or one that can
    /// never admit this cost); when allowed, the one with the fewest requests left (the first
    /// on a tie).
    pub binding: usize,
    /// The binding limit's capacity (cost-1 requests at once from idle).
    pub limit: u64,
    /// The fewest cost-1 requests any limit would still admit right now.
    pub remaining: u64,
    /// Ms until this same request passes every limit; `None` when allowed, or when its cost
    /// is above some limit's capacity so it never can.
    pub retry_after_ms: Option<u64>,
    /// Ms until the binding limit is empty again.
    pub reset_after_ms: u64,
    /// Unix ms from which every limit is empty: when a usage-only key may expire.
    pub empty_at_ms: u64,
    /// The state changed although nothing was admitted (a SLIDING log repaired after the
    /// clock stepped back): the caller should store it.
    pub repaired: bool,
    /// Each limit's own numbers, the first [`Limits::len`] used: `allowed` says whether that
    /// limit alone admits the request, and `retry_after_ms` is `None` when it does.
    pub each: [Numbers; MAX_LIMITS],
}

/// Decides a request of `cost` at `now_ms` against every limit of `limits`, recording it in
/// `usage` iff all of them admit it. `usage` is first aligned to `limits` ([`align`]).
pub fn decide(limits: &Limits, usage: &mut Vec<Usage>, now_ms: u64, cost: u64) -> Outcome {
    // Aligning is not stored on a denial (the next call aligns the same way); a clock repair is.
    align(limits, usage, now_ms);
    // A clock that stepped back leaves state ahead of now: a SLIDING entry in the future is
    // read as now, a TAT more than a full bucket ahead as one full bucket (`Tat::repair`).
    let mut repaired = false;
    for (limit, u) in limits.as_slice().iter().zip(usage.iter_mut()) {
        match (limit, u) {
            (Limit::Sliding(_), Usage::Sliding(log)) => repaired |= log.clamp_future(now_ms),
            (Limit::Gcra(p), Usage::Gcra(tat)) => {
                if let Some(r) = tat.repair(p, now_ms) {
                    *tat = r;
                    repaired = true;
                }
            }
            _ => {}
        }
    }
    let mut admits = [false; MAX_LIMITS];
    let mut next_tat = [Tat::EMPTY; MAX_LIMITS];
    for (i, (limit, u)) in limits.as_slice().iter().zip(usage.iter()).enumerate() {
        admits[i] = match (limit, u) {
            (Limit::Gcra(p), Usage::Gcra(tat)) => match gcra::decide(p, *tat, now_ms, cost) {
                gcra::Decision::Allowed(t) => {
                    next_tat[i] = t;
                    true
                }
                gcra::Decision::Denied => false,
            },
            (Limit::Sliding(s), Usage::Sliding(log)) => sliding::decide(s, log, now_ms, cost),
            _ => false, // unreachable after align
        };
    }
    let n = limits.len();
    let allowed = admits[..n].iter().all(|&a| a);
    let mut each = [Numbers {
        allowed,
        limit: 0,
        remaining: 0,
        retry_after_ms: None,
        reset_after_ms: 0,
    }; MAX_LIMITS];
    let mut empty_at_ms = now_ms;
    for (i, (limit, u)) in limits.as_slice().iter().zip(usage.iter_mut()).enumerate() {
        let own = match (limit, u) {
            (Limit::Gcra(p), Usage::Gcra(tat)) => {
                let decision = if allowed {
                    gcra::Decision::Allowed(next_tat[i])
                } else {
                    gcra::Decision::Denied
                };
                let v = verdict::explain(p, *tat, now_ms, cost, decision);
                if allowed {
                    *tat = next_tat[i].reduced();
                }
                empty_at_ms = empty_at_ms.max(tat.empty_at_ms());
                Numbers {
                    allowed: admits[i],
                    limit: v.limit,
                    remaining: v.remaining,
                    retry_after_ms: if admits[i] { None } else { v.retry_after_ms },
                    reset_after_ms: v.reset_after_ms,
                }
            }
            (Limit::Sliding(s), Usage::Sliding(log)) => {
                // When allowed, the retry time (the only use of the log before) is None.
                if allowed {
                    log.record(s, now_ms, cost);
                }
                let v = sliding::explain(s, log, log, now_ms, cost, admits[i]);
                empty_at_ms = empty_at_ms.max(log.empty_at_ms(s, now_ms));
                v
            }
            _ => each[i],
        };
        each[i] = own;
    }
    let never = (0..n).find(|&i| cost > limits.as_slice()[i].capacity());
    let binding = if allowed {
        (0..n).min_by_key(|&i| each[i].remaining).unwrap_or(0)
    } else if let Some(i) = never {
        i
    } else {
        // The first of the denying limits with the longest wait.
        (0..n)
            .filter(|&i| !admits[i])
            .max_by_key(|&i| (each[i].retry_after_ms, std::cmp::Reverse(i)))
            .unwrap_or(0)
    };
    Outcome {
        allowed,
        binding,
        limit: each[binding].limit,
        remaining: each[..n].iter().map(|v| v.remaining).min().unwrap_or(0),
        retry_after_ms: if allowed || never.is_some() {
            None
        } else {
            each[binding].retry_after_ms
        },
        reset_after_ms: each[binding].reset_after_ms,
        empty_at_ms,
        repaired: repaired && !allowed,
        each,
    }
}

/// The numbers of a key right now, for `RL.INFO`: [`decide`] on a copy, for a request no
/// limit can admit (so nothing is recorded and every limit reports its current state).
pub fn status(limits: &Limits, usage: &[Usage], now_ms: u64) -> Outcome {
    let mut copy = usage.to_vec();
    decide(limits, &mut copy, now_ms, u64::MAX)
}

#[cfg(test)]
#[path = "limits_tests.rs"]
mod tests;
