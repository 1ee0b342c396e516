//! GCRA: the leaky bucket as a meter, in exact integer arithmetic.
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
//! integer `window_ms`. No rounding happens while the limit stays the same, so nothing drifts
//! however long a client lives. When the limit changes, the stored fraction is rounded up to
//! the new unit: at most one unit later, never earlier, so a change never gives more room.
//!
//! A legitimate TAT is never more than one full bucket (`burst * T`) after now. One further
//! ahead was written before the server clock stepped back, or under a larger bucket (a
//! tightened limit or `rl.scale-percent`): a decision reads it as exactly one full bucket
//! ([`Tat::clamped`]), and a denied request stores that (the one write a denial makes: a
//! repair), so no client waits longer than one full drain. A reconfiguration anchors that
//! reading at its own instant ([`Gcra::carry`]).
//!
//! Usage carried from another kind: a backlog is time, so a GCRA usage is carried as the
//! instant it is owed until; requests carried from elsewhere are owed from the instant of the
//! change, `T` each.
//!
//! PURE: no Redis types here.

use std::num::NonZeroU32;

use super::{Carried, Kind, KindRules};
use crate::error::Error;

/// Most requests per window (10^9): a billion requests per millisecond is beyond any server.
pub const MAX_LIMIT: u64 = 1_000_000_000;
/// Longest window, in ms (10^12 ms, about 31.7 years).
pub const MAX_WINDOW_MS: u64 = 1_000_000_000_000;
/// Largest bucket, in requests.
pub const MAX_BURST: u64 = 1_000_000_000;
/// Longest time a full bucket may take to drain (`burst * window_ms / limit`), in ms
/// (10^13 ms, about 317 years). Keeps every theoretical arrival time far inside `u64`.
pub const MAX_DRAIN_MS: u64 = 10_000_000_000_000;
/// Latest TAT a bucket may hold, in Unix ms (2^60 ms is about 36 million years). Bounds
/// every stored instant so that `ms + 1` and the unit conversions can never overflow.
pub const MAX_TAT_MS: u64 = 1 << 60;

/// A valid GCRA limit: `limit` requests per `window_ms` on average, bursts up to `burst`.
/// Every field is within its bound, none is zero, and a full bucket drains within
/// [`MAX_DRAIN_MS`].
///
/// `limit` is never zero, and says so in its type: a [`Limit`](crate::kinds::Limit) of any
/// kind then fits in 16 bytes (the other kinds' data around that field), so a policy of four
/// is 72 bytes, held inline and in a configured key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gcra {
    limit: NonZeroU32,
    burst: u32,
    window_ms: u64,
}

impl Gcra {
    /// Validates a limit; `burst` 0 means "same as `limit`".
    #[inline]
    pub fn new(limit: u64, window_ms: u64, burst: u64) -> Result<Gcra, Error> {
        if limit == 0 || limit > MAX_LIMIT {
            return Err(Error::LimitRange);
        }
        if window_ms == 0 || window_ms > MAX_WINDOW_MS {
            return Err(Error::WindowRange);
        }
        if burst > MAX_BURST {
            return Err(Error::BurstRange);
        }
        let burst = if burst == 0 { limit } else { burst };
        // Drain time of a full bucket, compared without dividing.
        if u128::from(burst) * u128::from(window_ms) > u128::from(MAX_DRAIN_MS) * u128::from(limit)
        {
            return Err(Error::DrainTooLong);
        }
        match (
            u32::try_from(limit).ok().and_then(NonZeroU32::new),
            u32::try_from(burst),
        ) {
            (Some(limit), Ok(burst)) => Ok(Gcra {
                limit,
                burst,
                window_ms,
            }),
            _ => Err(Error::LimitRange),
        }
    }

    /// Requests per window.
    #[inline]
    pub fn limit(&self) -> u64 {
        u64::from(self.limit.get())
    }

    /// Window length in ms.
    #[inline]
    pub fn window_ms(&self) -> u64 {
        self.window_ms
    }

    /// Bucket size in requests: how many may pass at once from idle.
    #[inline]
    pub fn burst(&self) -> u64 {
        u64::from(self.burst)
    }

    /// `burst * T` in units of `1/limit` ms.
    #[inline]
    fn tolerance(&self) -> u128 {
        u128::from(self.burst) * u128::from(self.window_ms)
    }

    /// Decides a request of `cost` at `now_ms` against a bucket at `tat`: the new TAT if it
    /// fits, `None` if not. Total for every input: all arithmetic is in `u128`, and a TAT that
    /// would pass [`MAX_TAT_MS`] is denied rather than stored.
    #[inline]
    pub fn decide(&self, tat: Tat, now_ms: u64, cost: u64) -> Option<Tat> {
        let limit = self.limit();
        let tolerance = self.tolerance();
        let now = u128::from(now_ms) * u128::from(limit);
        // A TAT more than a full bucket ahead of now is read as a full bucket.
        let start = tat.in_units(limit).min(now + tolerance).max(now);
        let new_tat = start + u128::from(cost) * u128::from(self.window_ms);
        if new_tat - now > tolerance {
            return None;
        }
        Tat::from_units(new_tat, limit)
    }

    /// How many cost-1 requests would pass at `now_ms` against a bucket at `tat`: `k` pass
    /// while backlog + k*T <= burst*T.
    pub fn remaining(&self, tat: Tat, now_ms: u64) -> u64 {
        let limit = self.limit();
        let now = u128::from(now_ms) * u128::from(limit);
        let backlog = tat
            .in_units(limit)
            .min(now + self.tolerance())
            .saturating_sub(now);
        clamp_u64(self.tolerance().saturating_sub(backlog) / u128::from(self.window_ms))
    }

    /// Ms until a request of `cost` fits (0: it fits now), or `None` if it never can (its
    /// cost is above the burst). Rounded up to whole ms: at `now + wait` it fits, a ms earlier
    /// it does not.
    pub fn wait_ms(&self, tat: Tat, now_ms: u64, cost: u64) -> Option<u64> {
        if cost > self.burst() {
            return None;
        }
        let limit = self.limit();
        let tat = tat.clamped(self, now_ms);
        // The first whole ms t with tat + cost*T - t <= burst*T (all in 1/limit-ms units).
        let needed = (tat.in_units(limit) + u128::from(cost) * u128::from(self.window_ms))
            .saturating_sub(self.tolerance());
        let at_ms = needed.div_ceil(u128::from(limit));
        Some(clamp_u64(at_ms.saturating_sub(u128::from(now_ms))))
    }

    /// Unix ms from which the bucket is empty, as this limit reads it (never before `now_ms`).
    #[inline]
    pub fn empty_at_ms(&self, tat: Tat, now_ms: u64) -> u64 {
        tat.clamped(self, now_ms).empty_at_ms().max(now_ms)
    }

    /// This limit under `rl.scale-percent`, applied at decision time.
    ///
    /// The rate is scaled exactly (`limit * p` per `window * q`, with `p/q` the reduced
    /// percentage) when that fits the bounds, otherwise by stretching the window, rounded up:
    /// either way never faster than asked. The burst is rounded down, and is at least 1.
    pub fn scaled(&self, percent: u64) -> Gcra {
        let percent = percent.clamp(
            crate::policy::MIN_SCALE_PERCENT,
            crate::policy::MAX_SCALE_PERCENT,
        );
        if percent == 100 {
            return *self;
        }
        let g = gcd(percent, 100);
        let (num, den) = (percent / g, 100 / g);
        let burst = (self.burst() * percent / 100).clamp(1, MAX_BURST);
        let burst = u32::try_from(burst).unwrap_or(u32::MAX);
        let limit = self.limit() * num;
        let window_ms = self.window_ms * den;
        if limit <= MAX_LIMIT && window_ms <= MAX_WINDOW_MS {
            return Gcra {
                limit: u32::try_from(limit)
                    .ok()
                    .and_then(NonZeroU32::new)
                    .unwrap_or(self.limit),
                burst,
                window_ms,
            };
        }
        // window * 100 / percent, rounded up; at most 10^12 * 100 (fits u64).
        Gcra {
            limit: self.limit,
            burst,
            window_ms: (self.window_ms * 100).div_ceil(percent),
        }
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn clamp_u64(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

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

    /// A TAT from its parts, or `None` if they are not a fraction within bounds. Used for
    /// every state that comes from outside (RDB, `RESTORE`, the replication link).
    #[inline]
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
    #[inline]
    pub fn ms(&self) -> u64 {
        self.ms
    }

    /// Numerator of the sub-millisecond part.
    #[inline]
    pub fn frac(&self) -> u64 {
        u64::from(self.frac)
    }

    /// Denominator of the sub-millisecond part: the limit of the policy that wrote it.
    #[inline]
    pub fn den(&self) -> u64 {
        u64::from(self.den)
    }

    /// The same instant with its fraction in lowest terms (`frac` 0 has `den` 1). Values are
    /// stored in this form, so the same state has one representation everywhere (master,
    /// replica, RDB) and most TATs fit in a single machine word. Exact: a reduced denominator
    /// divides the original, so reading it back in the original units involves no rounding.
    #[inline]
    pub fn reduced(&self) -> Tat {
        if self.frac == 0 {
            return Tat {
                ms: self.ms,
                frac: 0,
                den: 1,
            };
        }
        let g = gcd(u64::from(self.frac), u64::from(self.den));
        // g >= 1 since frac > 0, and g divides both.
        Tat {
            ms: self.ms,
            frac: u32::try_from(u64::from(self.frac) / g).unwrap_or(0),
            den: u32::try_from(u64::from(self.den) / g).unwrap_or(1),
        }
    }

    /// The first whole millisecond at or after the TAT: from then on the bucket is empty,
    /// so this is when a usage-only key may expire.
    #[inline]
    pub fn empty_at_ms(&self) -> u64 {
        // ms <= 2^60: no overflow.
        self.ms + u64::from(self.frac > 0)
    }

    /// The TAT in units of `1/limit` ms, rounded up when `limit` is not its own denominator.
    #[inline]
    pub(crate) fn in_units(&self, limit: u64) -> u128 {
        let whole = u128::from(self.ms) * u128::from(limit);
        if self.frac == 0 || u64::from(self.den) == limit {
            return whole + u128::from(self.frac);
        }
        // ceil(frac * limit / den), den >= 1 by construction: in u64, as both are below 2^30.
        whole + u128::from((u64::from(self.frac) * limit).div_ceil(u64::from(self.den)))
    }

    /// This TAT as a decision under `gcra` at `now_ms` reads it: never more than one full
    /// bucket (`burst * T`) after `now_ms`.
    #[inline]
    pub fn clamped(self, gcra: &Gcra, now_ms: u64) -> Tat {
        let limit = gcra.limit();
        let cap = u128::from(now_ms) * u128::from(limit) + gcra.tolerance();
        if self.in_units(limit) <= cap {
            return self;
        }
        Tat::from_units(cap, limit).unwrap_or(self)
    }

    /// A TAT from units of `1/limit` ms, or `None` past [`MAX_TAT_MS`].
    #[inline]
    pub(crate) fn from_units(units: u128, limit: u64) -> Option<Tat> {
        if limit == 0 {
            return None;
        }
        // Most instants in most units fit 64 bits, where division is one instruction.
        if let Ok(u) = u64::try_from(units) {
            return Tat::new(u / limit, u % limit, limit);
        }
        let l = u128::from(limit);
        let ms = u64::try_from(units / l).ok()?;
        Tat::new(ms, u64::try_from(units % l).ok()?, limit)
    }

    /// The later of two instants (exactly, whatever their denominators).
    fn max(self, other: Tat) -> Tat {
        let (a, b) = (
            u128::from(self.ms) * u128::from(self.den) * u128::from(other.den)
                + u128::from(self.frac) * u128::from(other.den),
            u128::from(other.ms) * u128::from(self.den) * u128::from(other.den)
                + u128::from(other.frac) * u128::from(self.den),
        );
        if a >= b {
            self
        } else {
            other
        }
    }
}

impl KindRules for Gcra {
    type Usage = Tat;
    type Admit = Tat;
    const KIND: Kind = Kind::Gcra;

    fn from_options(limit: u64, window_ms: u64, burst: Option<u64>) -> Result<Gcra, Error> {
        Gcra::new(limit, window_ms, burst.unwrap_or(0))
    }

    #[inline]
    fn limit(&self) -> u64 {
        self.limit()
    }

    #[inline]
    fn window_ms(&self) -> u64 {
        self.window_ms
    }

    fn capacity(&self) -> u64 {
        self.burst()
    }

    fn scaled(&self, percent: u64) -> Gcra {
        Gcra::scaled(self, percent)
    }

    #[inline]
    fn empty() -> Tat {
        Tat::EMPTY
    }

    #[inline]
    fn admit(&self, tat: &Tat, now_ms: u64, cost: u64) -> Option<Tat> {
        self.decide(*tat, now_ms, cost)
    }

    #[inline]
    fn record(&self, tat: &mut Tat, next: Tat, _now_ms: u64, _cost: u64) {
        *tat = next.reduced();
    }

    #[inline]
    fn repair(&self, tat: &mut Tat, now_ms: u64) -> bool {
        let clamped = tat.clamped(self, now_ms);
        if clamped == *tat {
            return false;
        }
        *tat = clamped.reduced();
        true
    }

    #[inline]
    fn needs_repair(&self, tat: &Tat, now_ms: u64) -> bool {
        tat.clamped(self, now_ms) != *tat
    }

    fn after(&self, tat: &Tat, admitted: Option<&Tat>, now_ms: u64, _cost: u64) -> (u64, u64) {
        let tat = admitted.copied().unwrap_or(*tat);
        (self.remaining(tat, now_ms), self.empty_at_ms(tat, now_ms))
    }

    fn wait_ms(&self, tat: &Tat, now_ms: u64, cost: u64) -> Option<u64> {
        Gcra::wait_ms(self, *tat, now_ms, cost)
    }

    #[inline]
    fn own_empty_at_ms(tat: &Tat, _now_ms: u64) -> Option<u64> {
        Some(tat.empty_at_ms())
    }

    fn carry(&self, tat: &Tat, at_ms: u64) -> Tat {
        // Kept as time (a backlog owed until the TAT), read from the change on as at most
        // one full bucket of this limit.
        tat.clamped(self, at_ms).reduced()
    }

    fn export(tat: &Tat, at_ms: u64) -> Carried {
        if tat.empty_at_ms() <= at_ms {
            return Carried::Nothing;
        }
        Carried::Until(*tat)
    }

    fn import(&self, carried: Carried, at_ms: u64) -> Tat {
        match carried {
            Carried::Nothing => Tat::EMPTY,
            Carried::Until(t) => self.carry(&t, at_ms),
            Carried::Requests(n) => {
                // Owed from the change: at + n*T, at most one full bucket.
                let units = u128::from(at_ms) * u128::from(self.limit())
                    + u128::from(n) * u128::from(self.window_ms);
                let units =
                    units.min(u128::from(at_ms) * u128::from(self.limit()) + self.tolerance());
                Tat::from_units(units, self.limit()).map_or(Tat::EMPTY, |t| t.reduced())
            }
        }
    }

    fn usage_window_ms(_tat: &Tat) -> Option<u64> {
        None
    }

    fn heap_bytes(_tat: &Tat) -> usize {
        0
    }
}

impl Tat {
    /// The instant a carried usage is owed until, as a TAT (for other kinds' imports):
    /// `(whole ms, numerator, denominator)` exactly.
    pub fn parts(&self) -> (u64, u64, u64) {
        (self.ms(), self.frac(), self.den())
    }

    /// The later of this TAT and `other`.
    pub fn later(self, other: Tat) -> Tat {
        self.max(other)
    }
}

/// Replays a trace of `(gap_ms, cost)` requests from `start_ms` on an empty bucket: each
/// request is decided at the previous instant plus its gap, `seen(now, cost, tat_before,
/// decision)` is called, and an allowed one is counted. Returns the final TAT and instant.
/// The one trace loop the property tests share.
#[cfg(test)]
pub(crate) fn replay<E>(
    p: &Gcra,
    start_ms: u64,
    trace: &[(u64, u64)],
    mut seen: impl FnMut(u64, u64, Tat, Option<Tat>) -> Result<(), E>,
) -> Result<(Tat, u64), E> {
    let (mut tat, mut now) = (Tat::EMPTY, start_ms);
    for &(gap, cost) in trace {
        now += gap;
        let d = p.decide(tat, now, cost);
        seen(now, cost, tat, d)?;
        if let Some(t) = d {
            tat = t;
        }
    }
    Ok((tat, now))
}

#[cfg(test)]
#[path = "gcra_tests.rs"]
mod tests;
