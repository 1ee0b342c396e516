//! A policy: one to four limits of any kind, decided together, all-or-nothing; and what
//! `RL.CONFIG` stores in a key (a policy, how long an idle client is remembered, whether the
//! policy only observes).
//!
//! A policy is held inline (no allocation to parse, resolve or scale it) and is valid by
//! construction: each limit was validated by its kind, and there are 1 to [`MAX_LIMITS`].
//!
//! PURE: no Redis types here.

use crate::error::Error;
use crate::kinds::gcra::Gcra;
use crate::kinds::Limit;

/// Most limits one key holds. Small and fixed: the policy lives inline and every request
/// checks each one.
pub const MAX_LIMITS: usize = 4;
/// Heaviest single request, in requests; a cost above a limit's capacity is valid and denied.
pub const MAX_COST: u64 = 1_000_000_000;
/// Longest idle time before a configured key is forgotten, in ms.
pub const MAX_IDLE_MS: u64 = crate::kinds::gcra::MAX_WINDOW_MS;
/// Smallest and largest `rl.scale-percent`.
pub const MIN_SCALE_PERCENT: u64 = 1;
pub const MAX_SCALE_PERCENT: u64 = 1000;

/// 1 to [`MAX_LIMITS`] limits, in the order they were given.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    items: [Limit; MAX_LIMITS],
    len: u8,
}

/// Two policies are equal when they hold the same limits (the unused slots do not count).
impl PartialEq for Policy {
    fn eq(&self, other: &Policy) -> bool {
        self.limits() == other.limits()
    }
}

impl Eq for Policy {}

impl Policy {
    /// A policy from its limits: at least one, at most [`MAX_LIMITS`].
    pub fn new(limits: &[Limit]) -> Result<Policy, Error> {
        let (&first, _) = limits.split_first().ok_or(Error::MissingValue)?;
        if limits.len() > MAX_LIMITS {
            return Err(Error::TooManyLimits);
        }
        let mut items = [first; MAX_LIMITS];
        for (slot, l) in items.iter_mut().zip(limits) {
            *slot = *l;
        }
        Ok(Policy {
            items,
            len: u8::try_from(limits.len()).unwrap_or(1),
        })
    }

    /// Adds a limit after the others (a parser building a policy in place).
    #[inline]
    pub fn push(&mut self, limit: Limit) -> Result<(), Error> {
        let slot = self
            .items
            .get_mut(usize::from(self.len))
            .ok_or(Error::TooManyLimits)?;
        *slot = limit;
        self.len += 1;
        Ok(())
    }

    /// The policy of one limit.
    #[inline]
    pub fn single(limit: Limit) -> Policy {
        Policy {
            items: [limit; MAX_LIMITS],
            len: 1,
        }
    }

    #[inline]
    pub fn limits(&self) -> &[Limit] {
        self.items.get(..usize::from(self.len)).unwrap_or(&[])
    }

    #[inline]
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The one GCRA limit of a policy of one: the case with the compact value layouts.
    #[inline]
    pub fn single_gcra(&self) -> Option<Gcra> {
        match self.limits() {
            [Limit::Gcra(g)] => Some(*g),
            _ => None,
        }
    }

    /// The longest window of its limits, in ms (a CONCURRENCY limit's lease lifetime
    /// included): how long after a block's end a penalty still escalates.
    pub fn longest_window_ms(&self) -> u64 {
        self.limits()
            .iter()
            .map(Limit::window_ms)
            .max()
            .unwrap_or(0)
    }

    /// Whether a limit of the policy takes leases (CONCURRENCY): then its requests are
    /// `RL.ACQUIRE`s, and `RL.ALLOW`, `RL.THROTTLE` and `RL.RESERVE` are refused.
    #[inline]
    pub fn takes_leases(&self) -> bool {
        self.limits().iter().any(Limit::takes_leases)
    }

    /// Every limit under `rl.scale-percent`.
    #[inline]
    pub fn scaled(&self, percent: u64) -> Policy {
        if percent == 100 {
            return *self;
        }
        self.scaled_by(percent)
    }

    /// [`Policy::scaled`] at another percentage than 100 (kept out of line: the common
    /// case is a copy).
    fn scaled_by(&self, percent: u64) -> Policy {
        let mut out = *self;
        for l in out.items.iter_mut().take(usize::from(self.len)) {
            *l = l.scaled(percent);
        }
        out
    }
}

/// Longest `PENALTY` and its `MAX`, in ms (10^12, about 31.7 years; under 2^40).
pub const MAX_PENALTY_MS: u64 = 1_000_000_000_000;

/// `PENALTY ms [MAX max_ms]` (a key's, like IDLE and SHADOW; on `RL.CONFIG` and inline): a
/// denial of a key that is not blocked blocks it for `ms * 2^level`, at most `max_ms`, where
/// the level grows by one for each penalty that follows within the policy's longest window
/// of the last block's end (`parts.rs`). `1 <= ms <= max_ms <= 10^12`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Penalty {
    pub ms: u64,
    pub max_ms: u64,
}

impl Penalty {
    /// A penalty of `ms`, escalating up to `max_ms` (`None`: `ms`, no escalation).
    pub fn new(ms: u64, max_ms: Option<u64>) -> Result<Penalty, Error> {
        if !(1..=MAX_PENALTY_MS).contains(&ms) {
            return Err(Error::PenaltyRange);
        }
        let max_ms = max_ms.unwrap_or(ms);
        if !(ms..=MAX_PENALTY_MS).contains(&max_ms) {
            return Err(Error::PenaltyMaxRange);
        }
        Ok(Penalty { ms, max_ms })
    }

    /// `ms * 2^level`, at most `max_ms`.
    pub fn duration_ms(&self, level: u8) -> u64 {
        let doubled = 1u64
            .checked_shl(u32::from(level))
            .and_then(|f| self.ms.checked_mul(f));
        doubled.map_or(self.max_ms, |d| d.min(self.max_ms))
    }
}

/// A key's penalty as stored: both values in 40 bits each, in 10 bytes of alignment 1, so that
/// [`Stored`] stays 88 bytes (what a configured key allocates for it, as before penalties);
/// `ms` 0: none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PenaltyField([u8; 10]);

impl PenaltyField {
    pub const NONE: PenaltyField = PenaltyField([0; 10]);

    pub fn new(p: Option<Penalty>) -> PenaltyField {
        let Some(p) = p else {
            return PenaltyField::NONE;
        };
        let mut b = [0u8; 10];
        // Both at most 10^12 < 2^40: five bytes each, little-endian.
        for (dst, v) in [(0, p.ms), (5, p.max_ms)] {
            if let Some(d) = b.get_mut(dst..dst + 5) {
                d.copy_from_slice(v.to_le_bytes().get(..5).unwrap_or(&[0; 5]));
            }
        }
        PenaltyField(b)
    }

    pub fn get(&self) -> Option<Penalty> {
        let read = |at: usize| {
            let mut w = [0u8; 8];
            if let (Some(d), Some(s)) = (w.get_mut(..5), self.0.get(at..at + 5)) {
                d.copy_from_slice(s);
            }
            u64::from_le_bytes(w)
        };
        let ms = read(0);
        (ms > 0).then(|| Penalty {
            ms,
            max_ms: read(5),
        })
    }
}

/// What `RL.CONFIG` stores in a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stored {
    pub policy: Policy,
    /// 0: the key never expires; otherwise it expires `idle_ms` after the last allowed request,
    /// but never before every limit is empty.
    pub idle_ms: u64,
    /// Shadow mode: requests are evaluated and counted as usual, but a request the policy
    /// would deny is allowed (and, as a denial would, leaves the usage unchanged).
    pub shadow: bool,
    /// `PENALTY`, if any (see [`Stored::penalty`]).
    pub penalty: PenaltyField,
}

/// Bits of the stored `flags` field (RDB and `RL.APPLY`).
pub const FLAG_SHADOW: u64 = 1;
/// The stored policy has a `PENALTY`, whose two values follow the flags (version 3 only).
pub const FLAG_PENALTY: u64 = 2;
const KNOWN_FLAGS: u64 = FLAG_SHADOW | FLAG_PENALTY;

impl Stored {
    pub fn new(policy: Policy, idle_ms: u64, shadow: bool) -> Result<Stored, Error> {
        if idle_ms > MAX_IDLE_MS {
            return Err(Error::IdleRange);
        }
        Ok(Stored {
            policy,
            idle_ms,
            shadow,
            penalty: PenaltyField::NONE,
        })
    }

    /// The same, with `penalty`.
    pub fn with_penalty(mut self, penalty: Option<Penalty>) -> Stored {
        self.penalty = PenaltyField::new(penalty);
        self
    }

    pub fn penalty(&self) -> Option<Penalty> {
        self.penalty.get()
    }

    /// The flags as stored; see [`FLAG_SHADOW`] and [`FLAG_PENALTY`].
    pub fn flags(&self) -> u64 {
        let shadow = if self.shadow { FLAG_SHADOW } else { 0 };
        let penalty = if self.penalty().is_some() {
            FLAG_PENALTY
        } else {
            0
        };
        shadow | penalty
    }

    /// A stored policy from its parts as stored, or `None` if no `RL.CONFIG` could have
    /// written them (an idle time out of range, a flag this version does not know, a penalty
    /// out of range, or one that its flag does not announce).
    pub fn from_parts(
        policy: Policy,
        idle_ms: u64,
        flags: u64,
        penalty: Option<(u64, u64)>,
    ) -> Option<Stored> {
        if flags & !KNOWN_FLAGS != 0 || (flags & FLAG_PENALTY != 0) != penalty.is_some() {
            return None;
        }
        let penalty = match penalty {
            None => None,
            Some((ms, max_ms)) => Some(Penalty::new(ms, Some(max_ms)).ok()?),
        };
        Stored::new(policy, idle_ms, flags & FLAG_SHADOW != 0)
            .ok()
            .map(|s| s.with_penalty(penalty))
    }
}

/// The names of version 1's stored fields, in the one order that its RDB encoding,
/// `RL.APPLY`'s `POLICY` block and its `COMMAND DOCS` use.
pub const FIELD_NAMES: [&std::ffi::CStr; 5] =
    [c"limit", c"window_ms", c"burst", c"idle_ms", c"flags"];

/// The expiry a key's own state calls for, in Unix ms: a usage-only key (`idle_ms` None)
/// lives until its usage is empty; a configured one with IDLE until `idle_ms` after
/// `now_ms`, but never before every limit is empty; a configured one without IDLE has none of
/// its own.
#[inline]
pub fn own_expiry(idle_ms: Option<u64>, empty_at_ms: u64, now_ms: u64) -> Option<u64> {
    match idle_ms {
        None => Some(empty_at_ms),
        Some(idle) if idle > 0 => Some(empty_at_ms.max(now_ms.saturating_add(idle))),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::sliding::Sliding;

    fn g(limit: u64) -> Limit {
        Limit::Gcra(Gcra::new(limit, 1000, 0).unwrap())
    }

    #[test]
    fn a_policy_holds_one_to_four_limits() {
        assert_eq!(Policy::new(&[]), Err(Error::MissingValue));
        assert_eq!(Policy::new(&[g(1); 5]), Err(Error::TooManyLimits));
        let p = Policy::new(&[g(1), g(2)]).unwrap();
        assert_eq!(p.limits(), &[g(1), g(2)]);
        assert_eq!(p.single_gcra(), None);
        assert_eq!(
            Policy::single(g(3)).single_gcra(),
            Some(Gcra::new(3, 1000, 0).unwrap())
        );
    }

    #[test]
    fn equality_ignores_the_unused_slots() {
        let a = Policy::new(&[g(1)]).unwrap();
        let mut b = Policy::new(&[g(1), g(2)]).unwrap();
        b.len = 1;
        assert_eq!(a, b);
    }

    #[test]
    fn scaling_scales_every_limit() {
        let s = Limit::Sliding(Sliding::new(10, 1000).unwrap());
        let p = Policy::new(&[g(10), s]).unwrap().scaled(50);
        assert_eq!(p.limits()[0].capacity(), 5);
        assert_eq!(p.limits()[1].capacity(), 5);
        assert_eq!(Policy::single(g(7)).scaled(100), Policy::single(g(7)));
    }

    #[test]
    fn unknown_flags_and_idle_out_of_range_are_refused() {
        let p = Policy::single(g(1));
        assert!(Stored::from_parts(p, 0, FLAG_SHADOW, None).is_some_and(|s| s.shadow));
        assert_eq!(Stored::from_parts(p, 0, 2, None), None);
        assert_eq!(Stored::from_parts(p, MAX_IDLE_MS + 1, 0, None), None);
        assert_eq!(
            Stored::new(p, MAX_IDLE_MS + 1, false),
            Err(Error::IdleRange)
        );
    }

    #[test]
    fn own_expiry_is_when_the_usage_empties_or_the_client_has_been_idle() {
        assert_eq!(own_expiry(None, 2000, 1000), Some(2000));
        assert_eq!(own_expiry(Some(500), 2000, 1000), Some(2000));
        assert_eq!(own_expiry(Some(500), 1200, 1000), Some(1500));
        assert_eq!(own_expiry(Some(0), 2000, 1000), None);
    }
}
