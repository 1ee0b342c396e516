//! CONCURRENCY: at most `limit` leases (by cost) held at once, each living `window_ms` unless
//! it is released or renewed first.
//!
//! Where GCRA and SLIDING count requests that were made, this kind counts work that is still
//! going on: "at most 2 requests in flight per tenant" (Stripe's concurrent requests limiter).
//! A request takes a lease (`RL.ACQUIRE`) and gives it back when it ends (`RL.RELEASE`). A
//! lease is `{id, cost, expires_at_ms}`; it is live while `now < expires_at_ms`, so a worker
//! that dies holding one gives its slot back by itself when the lease expires: nobody has to
//! notice the crash, and a counter's lost decrement cannot leak a slot forever. A release
//! names its lease's id, so it can never free another holder's slot, and a release of a lease
//! that has already expired frees nothing (the bug of a counter: it would free a newer
//! holder's slot). `RL.RENEW` extends a live lease for long work.
//!
//! Admission: a request of cost `n` fits iff the live leases' cost plus `n` is at most
//! `limit`. It is decided with the key's other limits, all-or-nothing (a request denied by a
//! rate limit takes no lease; one denied here counts nothing there). When it does not fit,
//! `retry_after_ms` is the time until enough held leases expire for `n` to fit (the earliest
//! expiry, for `n = 1`): a release may make room sooner, which no one can promise.
//!
//! Expiries are absolute Unix ms: if the server clock steps back they are further away, each
//! at most its own lease time from when it was taken or renewed (nothing to repair).
//!
//! Memory: a lease takes 24 bytes (id, expiry, cost), and a limit holds at most `limit`
//! (1000) of them: the cost of every live lease counted at most `limit` when it was taken.
//!
//! Reconfiguration: a CONCURRENCY limit carries its live leases to a CONCURRENCY limit at the
//! same position (they stay until they expire or are released, even over a lowered limit,
//! which admits no new lease until they fit); a change to or from another kind starts the new
//! limit empty (a lease is not a request, nor a request a lease: a new contract).
//!
//! PURE: no Redis types here.

use super::gcra::{Tat, MAX_TAT_MS};
use super::{Carried, Kind, KindRules};
use crate::error::Error;
use crate::parts::{Hold, MAX_ID};

/// Most leases (by cost) a CONCURRENCY limit admits at once.
pub const MAX_CONCURRENCY_LIMIT: u64 = 1000;
/// Longest lease, in ms (2^32 - 1, about 49.7 days), also for `RL.RENEW`.
pub const MAX_LEASE_MS: u64 = u32::MAX as u64;
/// Latest expiry a lease may hold: one taken or renewed at the latest instant a decision takes.
pub const MAX_EXPIRES_AT_MS: u64 = MAX_TAT_MS + MAX_LEASE_MS;

/// A valid CONCURRENCY limit: `1 <= limit <= 1000` leases, each living `1 <= window_ms <=
/// 2^32 - 1` ms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Concurrency {
    limit: u32,
    window_ms: u32,
}

impl Concurrency {
    /// Validates a limit. Zero is the general range error of each field; a value within the
    /// general range but over this kind's bound gets its own error.
    pub fn new(limit: u64, window_ms: u64) -> Result<Concurrency, Error> {
        if limit == 0 {
            return Err(Error::LimitRange);
        }
        if limit > MAX_CONCURRENCY_LIMIT {
            return Err(Error::ConcurrencyLimitRange);
        }
        if window_ms == 0 {
            return Err(Error::WindowRange);
        }
        match (u32::try_from(limit), u32::try_from(window_ms)) {
            (Ok(limit), Ok(window_ms)) => Ok(Concurrency { limit, window_ms }),
            _ => Err(Error::ConcurrencyWindowRange),
        }
    }

    /// Leases (by cost) held at once.
    pub fn limit(&self) -> u64 {
        u64::from(self.limit)
    }

    /// How long a lease lives unless released or renewed, in ms.
    pub fn window_ms(&self) -> u64 {
        u64::from(self.window_ms)
    }

    /// This limit under `rl.scale-percent`: the count scaled and rounded down (at least 1, at
    /// most [`MAX_CONCURRENCY_LIMIT`]), the lease time unchanged.
    pub fn scaled(&self, percent: u64) -> Concurrency {
        let percent = percent.clamp(
            crate::policy::MIN_SCALE_PERCENT,
            crate::policy::MAX_SCALE_PERCENT,
        );
        let limit = (self.limit() * percent / 100).clamp(1, MAX_CONCURRENCY_LIMIT);
        Concurrency {
            limit: u32::try_from(limit).unwrap_or(self.limit),
            window_ms: self.window_ms,
        }
    }
}

/// One lease: its id (shared by every CONCURRENCY limit of the key that recorded it), when it
/// expires, and its cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    pub id: u64,
    pub expires_at_ms: u64,
    cost: u16,
}

impl Lease {
    pub fn cost(&self) -> u64 {
        u64::from(self.cost)
    }

    pub fn is_live(&self, now_ms: u64) -> bool {
        now_ms < self.expires_at_ms
    }
}

/// The leases of one CONCURRENCY limit, in the order of their ids (the order they were taken).
/// Every state has one representation: master, replica and RDB hold the same leases.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Leases {
    items: Vec<Lease>,
}

impl Leases {
    /// No lease.
    pub const EMPTY: Leases = Leases { items: Vec::new() };

    /// Leases from their stored `(id, cost, expires_at_ms)`, or `None` if no command could
    /// have written them: ids strictly increasing and at most [`MAX_ID`], each cost from 1 and
    /// all of them together at most [`MAX_CONCURRENCY_LIMIT`], expiries at most
    /// [`MAX_EXPIRES_AT_MS`].
    pub fn from_parts(parts: &[(u64, u64, u64)]) -> Option<Leases> {
        if parts.len() as u64 > MAX_CONCURRENCY_LIMIT {
            return None;
        }
        let mut items = Vec::with_capacity(parts.len());
        let mut total = 0u64;
        let mut previous = None;
        for &(id, cost, expires_at_ms) in parts {
            let valid = previous.is_none_or(|p| id > p)
                && id <= MAX_ID
                && cost >= 1
                && expires_at_ms <= MAX_EXPIRES_AT_MS;
            if !valid {
                return None;
            }
            total = total.checked_add(cost)?;
            items.push(Lease {
                id,
                expires_at_ms,
                cost: u16::try_from(cost).ok()?,
            });
            previous = Some(id);
        }
        (total <= MAX_CONCURRENCY_LIMIT).then_some(Leases { items })
    }

    /// The stored parts, `(id, cost, expires_at_ms)`: what [`Leases::from_parts`] reads.
    pub fn parts(&self) -> impl Iterator<Item = (u64, u64, u64)> + '_ {
        self.items.iter().map(|l| (l.id, l.cost(), l.expires_at_ms))
    }

    /// Every lease, live or not yet pruned.
    pub fn all(&self) -> &[Lease] {
        &self.items
    }

    /// The leases live at `now_ms`.
    pub fn live(&self, now_ms: u64) -> impl Iterator<Item = &Lease> {
        self.items.iter().filter(move |l| l.is_live(now_ms))
    }

    /// The cost of the leases live at `now_ms`.
    pub fn held(&self, now_ms: u64) -> u64 {
        self.live(now_ms).map(Lease::cost).sum()
    }

    /// When the first live lease expires, if any.
    pub fn next_expiry_ms(&self, now_ms: u64) -> Option<u64> {
        self.live(now_ms).map(|l| l.expires_at_ms).min()
    }

    /// When the last live lease expires (`now_ms` if none is live).
    pub fn empty_at_ms(&self, now_ms: u64) -> u64 {
        self.live(now_ms)
            .map(|l| l.expires_at_ms)
            .fold(now_ms, u64::max)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Drops the leases that have expired at `now_ms`; whether any was.
    fn prune(&mut self, now_ms: u64) -> bool {
        let before = self.items.len();
        self.items.retain(|l| l.is_live(now_ms));
        self.items.len() != before
    }

    /// `RL.RELEASE`: removes lease `id` if it is live at `now_ms` (and every expired lease
    /// with it); whether it was live. A release of an expired or unknown id frees nothing.
    pub fn release(&mut self, id: u64, now_ms: u64) -> bool {
        let held = self.items.iter().any(|l| l.id == id && l.is_live(now_ms));
        if held {
            self.items.retain(|l| l.id != id);
            self.prune(now_ms);
        }
        held
    }

    /// `RL.RENEW`: lease `id`, if live at `now_ms`, then expires at `now_ms + ms` (expired
    /// leases are dropped with it); whether it was live.
    pub fn renew(&mut self, id: u64, now_ms: u64, ms: u64) -> bool {
        if now_ms > MAX_TAT_MS || ms > MAX_LEASE_MS {
            return false;
        }
        let Some(lease) = self
            .items
            .iter_mut()
            .find(|l| l.id == id && l.is_live(now_ms))
        else {
            return false;
        };
        lease.expires_at_ms = now_ms + ms;
        self.prune(now_ms);
        true
    }

    /// The earliest instant from which `cost` more fits under `limit`, as leases expire in
    /// order of their expiry (`now_ms` if it fits now; `None` if it never can).
    fn fits_at(&self, limit: u64, now_ms: u64, cost: u64) -> Option<u64> {
        if cost > limit {
            return None;
        }
        let mut rest = self.held(now_ms);
        if rest + cost <= limit {
            return Some(now_ms);
        }
        let mut expiries: Vec<(u64, u64)> = self
            .live(now_ms)
            .map(|l| (l.expires_at_ms, l.cost()))
            .collect();
        expiries.sort_unstable();
        for (at, c) in expiries {
            rest -= c;
            if rest + cost <= limit {
                return Some(at);
            }
        }
        // Unreachable: with cost <= limit, every lease expiring makes room.
        Some(now_ms)
    }
}

impl KindRules for Concurrency {
    type Usage = Leases;
    /// The lease's id, set once the request is allowed (`Admit::with_id`).
    type Admit = u64;
    const KIND: Kind = Kind::Concurrency;
    const LEASES: bool = true;

    fn from_options(limit: u64, window_ms: u64, burst: Option<u64>) -> Result<Concurrency, Error> {
        if burst.is_some() {
            return Err(Error::ConcurrencyBurst);
        }
        Concurrency::new(limit, window_ms)
    }

    fn limit(&self) -> u64 {
        self.limit()
    }

    fn window_ms(&self) -> u64 {
        self.window_ms()
    }

    fn capacity(&self) -> u64 {
        self.limit()
    }

    fn scaled(&self, percent: u64) -> Concurrency {
        Concurrency::scaled(self, percent)
    }

    fn empty() -> Leases {
        Leases::EMPTY
    }

    /// Whether a lease of `cost` fits: the live leases plus this one at most `limit`. Like the
    /// other kinds, a request after [`MAX_TAT_MS`] is denied.
    fn admit(&self, leases: &Leases, now_ms: u64, cost: u64) -> Option<u64> {
        let fits = cost <= self.limit()
            && now_ms <= MAX_TAT_MS
            && leases.held(now_ms) + cost <= self.limit();
        fits.then_some(0)
    }

    fn admit_with_id(_a: u64, id: u64) -> u64 {
        id
    }

    /// Drops expired leases and records the new one, expiring one lease time from now.
    fn record(&self, leases: &mut Leases, id: u64, now_ms: u64, cost: u64) {
        leases.prune(now_ms);
        leases.items.push(Lease {
            id,
            expires_at_ms: now_ms + self.window_ms(),
            cost: u16::try_from(cost).unwrap_or(u16::MAX),
        });
    }

    fn repair(&self, _leases: &mut Leases, _now_ms: u64) -> bool {
        false
    }

    fn needs_repair(&self, _leases: &Leases, _now_ms: u64) -> bool {
        false
    }

    /// `remaining`: leases of cost 1 that could still be taken (0 over a lowered limit);
    /// empty when the last live lease expires.
    fn after(&self, leases: &Leases, admitted: Option<&u64>, now_ms: u64, cost: u64) -> (u64, u64) {
        let held = leases.held(now_ms);
        match admitted {
            Some(_) => (
                self.limit().saturating_sub(held + cost),
                leases.empty_at_ms(now_ms).max(now_ms + self.window_ms()),
            ),
            None => (
                self.limit().saturating_sub(held),
                leases.empty_at_ms(now_ms),
            ),
        }
    }

    /// Until enough held leases expire for `cost` to fit (the earliest expiry, for cost 1).
    fn wait_ms(&self, leases: &Leases, now_ms: u64, cost: u64) -> Option<u64> {
        let at = leases.fits_at(self.limit(), now_ms, cost)?;
        Some(if at == now_ms {
            0
        } else {
            (at - now_ms).max(1)
        })
    }

    fn own_empty_at_ms(leases: &Leases, now_ms: u64) -> Option<u64> {
        Some(leases.empty_at_ms(now_ms))
    }

    /// The leases live at the change, kept as they are (their expiries are their own).
    fn carry(&self, leases: &Leases, at_ms: u64) -> Leases {
        let mut out = leases.clone();
        out.prune(at_ms);
        out
    }

    /// A lease is not a request: nothing carries to another kind.
    fn export(_leases: &Leases, _at_ms: u64) -> Carried {
        Carried::Nothing
    }

    /// Nor a request a lease: a limit that becomes CONCURRENCY starts with none held.
    fn import(&self, _c: Carried, _at_ms: u64) -> Leases {
        Leases::EMPTY
    }

    fn usage_window_ms(_leases: &Leases) -> Option<u64> {
        None
    }

    fn heap_bytes(leases: &Leases) -> usize {
        leases.items.capacity() * std::mem::size_of::<Lease>()
    }

    /// A lease is given back with `RL.RELEASE`, not refunded.
    fn refund(&self, _leases: &mut Leases, _now_ms: u64, _n: u64) -> u64 {
        0
    }

    /// A settle charges rate limits only.
    fn charge(&self, _leases: &mut Leases, _now_ms: u64, _n: u64) {}

    fn hold_end(_leases: &Leases) -> Option<Tat> {
        None
    }

    fn refund_hold(
        &self,
        _leases: &mut Leases,
        _now_ms: u64,
        _n: u64,
        _holds: &mut [Hold],
        _this: usize,
        _position: usize,
    ) -> u64 {
        0
    }
}

#[cfg(test)]
#[path = "concurrency_tests.rs"]
mod tests;
