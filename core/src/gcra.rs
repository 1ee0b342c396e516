//! The leaky bucket as a meter (GCRA), in exact integer arithmetic.
//!
//! Think of each client as a bucket that leaks one request every emission interval
//! `T = window_ms / limit` and holds at most `burst` requests. Rather than store a level and
//! a timestamp, GCRA stores one instant: the theoretical arrival time (TAT), when the bucket
//! would be empty again. A request of cost `n` at `now` fits iff, after adding it, the bucket
//! would take no longer than a full bucket to drain:
//!
//! ```text
//! allowed  <=>  max(TAT, now) + n*T - now <= burst*T        then  TAT := max(TAT, now) + n*T
//! ```
//!
//! A denied request changes nothing. An absent key is an empty bucket (any TAT <= now).
//!
//! `T` is rarely a whole number of milliseconds (10 per minute is 6000 ms, 3 per second is
//! 333.33.. ms), so the TAT is an exact fraction `ms + frac/den` with `den` the limit of the
//! policy that wrote it, and the decision is taken in units of `1/limit` ms where `T` is the
//! integer `window_ms`. No rounding happens while the policy stays the same, so nothing
//! drifts however long a client lives. When the limit changes, the stored fraction is
//! rounded up to the new unit: at most one unit later, never earlier, so a reconfiguration
//! never gives a client more room.
//!
//! Time is a parameter (`now_ms`, Unix milliseconds): the caller reads the clock once. A
//! clock that steps forward and back again can leave a TAT far ahead of now; a decision
//! reads any TAT more than one full bucket ahead as exactly one full bucket ahead
//! ([`Tat::clamped`]), and a denied request stores that clamped TAT (the one write a denial
//! makes: a repair), so no clock step makes a client wait longer than one full drain.
//!
//! PURE: no Redis types here.

use crate::policy::{Policy, MAX_LIMIT};

/// Latest TAT a bucket may hold, in Unix ms (2^60 ms is about 36 million years). Bounds
/// every stored instant so that `ms + 1` and the unit conversions can never overflow.
pub const MAX_TAT_MS: u64 = 1 << 60;

/// Theoretical arrival time: exactly `ms + frac / den` milliseconds since the Unix epoch,
/// with `1 <= den <= MAX_LIMIT` and `frac < den`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tat {
    ms: u64,
    frac: u32,
    den: u32,
}

impl Tat {
    /// The TAT of an empty bucket: long past.
    pub const EMPTY: Tat = Tat {
        ms: 0,
        frac: 0,
        den: 1,
    };

    /// A TAT from its parts, or `None` if they are not a normalised fraction within bounds.
    /// Used for every state that comes from outside (RDB, `RESTORE`, the replication link).
    pub fn new(ms: u64, frac: u64, den: u64) -> Option<Tat> {
        if ms > MAX_TAT_MS || den == 0 || den > MAX_LIMIT || frac >= den {
            return None;
        }
        Some(Tat {
            ms,
            frac: u32::try_from(frac).ok()?,
            den: u32::try_from(den).ok()?,
        })
    }

    /// Whole milliseconds of the TAT.
    pub fn ms(&self) -> u64 {
        self.ms
    }

    /// Numerator of the sub-millisecond part.
    pub fn frac(&self) -> u64 {
        u64::from(self.frac)
    }

    /// Denominator of the sub-millisecond part: the limit of the policy that wrote it.
    pub fn den(&self) -> u64 {
        u64::from(self.den)
    }

    /// The same instant with its fraction in lowest terms (`frac` 0 has `den` 1). Values are
    /// stored in this form, so the same state has one representation everywhere (master,
    /// replica, RDB) and most TATs fit in a single machine word (see `value.rs`). Exact: a
    /// reduced denominator divides the original, so reading it back in the original units
    /// involves no rounding.
    pub fn reduced(&self) -> Tat {
        if self.frac == 0 {
            return Tat {
                ms: self.ms,
                frac: 0,
                den: 1,
            };
        }
        let (mut a, mut b) = (self.frac, self.den);
        while b != 0 {
            (a, b) = (b, a % b);
        }
        // a = gcd(frac, den) >= 1 since frac > 0.
        Tat {
            ms: self.ms,
            frac: self.frac / a,
            den: self.den / a,
        }
    }

    /// The first whole millisecond at or after the TAT: from then on the bucket is empty,
    /// so this is when a usage-only key may expire.
    pub fn empty_at_ms(&self) -> u64 {
        // ms <= 2^60: no overflow.
        self.ms + u64::from(self.frac > 0)
    }

    /// The TAT in units of `1/limit` ms, rounded up when `limit` is not its own denominator.
    pub(crate) fn in_units(&self, limit: u64) -> u128 {
        let same_unit = u64::from(self.den) == limit;
        let limit = u128::from(limit);
        let whole = u128::from(self.ms) * limit;
        if same_unit {
            return whole + u128::from(self.frac);
        }
        // ceil(frac * limit / den); den >= 1 by construction.
        whole + (u128::from(self.frac) * limit).div_ceil(u128::from(self.den))
    }

    /// This TAT as a decision under `policy` at `now_ms` reads it: never more than one full
    /// bucket (`burst * T`) after `now_ms`. A legitimate TAT never is: a later one was
    /// written before the server clock stepped back (or under a larger bucket), and the
    /// client owes at most a full drain from now.
    pub fn clamped(self, policy: &Policy, now_ms: u64) -> Tat {
        let limit = policy.limit();
        let cap = u128::from(now_ms) * u128::from(limit)
            + u128::from(policy.burst()) * u128::from(policy.window_ms());
        if self.in_units(limit) <= cap {
            return self;
        }
        Tat::from_units(cap, limit).unwrap_or(self)
    }

    /// The TAT a denial stores instead of this one (in lowest terms), when this one is more
    /// than a full bucket after `now_ms`: the one repair a denial makes, so that a client
    /// drains from now instead of waiting for a clock that stepped back. `None`: keep it.
    pub fn repair(self, policy: &Policy, now_ms: u64) -> Option<Tat> {
        let clamped = self.clamped(policy, now_ms);
        (clamped != self).then(|| clamped.reduced())
    }

    /// A TAT from units of `1/limit` ms, or `None` past [`MAX_TAT_MS`].
    fn from_units(units: u128, limit: u64) -> Option<Tat> {
        let l = u128::from(limit);
        let ms = u64::try_from(units / l).ok()?;
        Tat::new(ms, u64::try_from(units % l).ok()?, limit)
    }
}

/// The outcome of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The request passes; the bucket's new TAT.
    Allowed(Tat),
    /// The request does not fit; the bucket is unchanged.
    Denied,
}

/// Decides a request of `cost` requests arriving at `now_ms` against a bucket at `tat`.
///
/// Total for every input: all arithmetic is in `u128`, where the largest product
/// (`u64::MAX * MAX_LIMIT` or `u64::MAX * MAX_WINDOW_MS`) fits with room to spare, and a TAT
/// that would pass [`MAX_TAT_MS`] is denied rather than stored.
pub fn decide(policy: &Policy, tat: Tat, now_ms: u64, cost: u64) -> Decision {
    let limit = policy.limit();
    let interval = u128::from(policy.window_ms()); // T, in units of 1/limit ms
    let tolerance = u128::from(policy.burst()) * interval; // burst * T
    let now = u128::from(now_ms) * u128::from(limit);
    // A TAT more than a full bucket ahead of now was written before the clock stepped back:
    // read as a full bucket, so no step locks a client out for longer than one full drain.
    let start = tat.in_units(limit).min(now + tolerance).max(now);
    let new_tat = start + u128::from(cost) * interval;
    if new_tat - now > tolerance {
        return Decision::Denied;
    }
    match Tat::from_units(new_tat, limit) {
        Some(t) => Decision::Allowed(t),
        None => Decision::Denied,
    }
}

/// Replays a trace of `(gap_ms, cost)` requests from `start_ms` on an empty bucket: each
/// request is decided at the previous instant plus its gap, `seen(now, cost, tat_before,
/// decision)` is called, and an allowed one is counted. Returns the final TAT and instant.
/// The one trace loop the property tests share.
#[cfg(test)]
pub(crate) fn replay<E>(
    p: &Policy,
    start_ms: u64,
    trace: &[(u64, u64)],
    mut seen: impl FnMut(u64, u64, Tat, Decision) -> Result<(), E>,
) -> Result<(Tat, u64), E> {
    let (mut tat, mut now) = (Tat::EMPTY, start_ms);
    for &(gap, cost) in trace {
        now += gap;
        let d = decide(p, tat, now, cost);
        seen(now, cost, tat, d)?;
        if let Decision::Allowed(t) = d {
            tat = t;
        }
    }
    Ok((tat, now))
}

#[cfg(test)]
#[path = "gcra_tests.rs"]
mod tests;
