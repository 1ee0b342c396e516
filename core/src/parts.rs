//! A key's key-level parts, beside the usage of each limit: the id sequence that reservations
//! and leases share, the open holds of reservations, the block with its penalty level, and,
//! on a key with no stored policy, the limits its holds were reserved under.
//!
//! **Ids.** Unique per key, strictly increasing, never reused while the key lives: a key with
//! no sequence yet issues `now_ms * 1000` first, every next id is `max(last + 1, now_ms *
//! 1000)`. So ids also increase across a key's lives (deleted and re-created) unless more than
//! 1000 were issued in one ms or the clock stepped back, and they stay below 2^53 (exact in
//! JavaScript) until the year 2255. Replies carry them as integers, so they stop at
//! [`MAX_ID`].
//!
//! **Holds.** A reservation counts its estimate like a check of that cost and keeps a hold:
//! its id, estimate, instant, expiry and, per GCRA limit, `end`: the limit's TAT right after
//! the reserve (the instant its estimate is owed until). Settling below the estimate gives
//! back only what of the hold has not drained yet (`end` minus now, at most the estimate's
//! time), moves the ends of the holds reserved after it as far, and keeps every end at or
//! before its limit's TAT: so reserve-then-settle equals one check at the actual cost, and no
//! interleaving gives back units that already drained. A hold that expires unsettled stays
//! charged at its estimate (the work probably happened). At most [`MAX_HOLDS`] are open.
//!
//! **Blocks.** A block denies every check until its end. Its level is kept after it ends: a
//! penalty that follows within the policy's longest window of that end doubles (`ms *
//! 2^level`, at most `max_ms`). `RL.UNBLOCK` and `RL.RESET` forget both.
//!
//! PURE: no Redis types here.

use crate::kinds::gcra::{Tat, MAX_TAT_MS};
pub use crate::policy::Penalty;
use crate::policy::{Policy, MAX_LIMITS};

/// Most open holds a key keeps (a reserve beyond them is an error, and counts nothing).
pub const MAX_HOLDS: usize = 64;
/// How long a hold lives unless settled, when `HOLD` is not given, in ms (5 minutes).
pub const DEFAULT_HOLD_MS: u64 = 300_000;
/// Longest `HOLD`, in ms (one day).
pub const MAX_HOLD_MS: u64 = 86_400_000;
/// Largest estimate, actual or refund: the largest cost.
pub const MAX_UNITS: u64 = crate::policy::MAX_COST;
/// Largest id: replies carry ids as signed 64-bit integers.
pub const MAX_ID: u64 = i64::MAX as u64;
/// Longest `RL.BLOCK` and `PENALTY`, in ms (10^12, about 31.7 years).
pub const MAX_BLOCK_MS: u64 = 1_000_000_000_000;
/// Highest penalty level (the duration has long reached `MAX` by then).
pub const MAX_LEVEL: u8 = 63;
/// Latest block end a state may hold: a block set at the latest instant a decision takes.
pub const MAX_BLOCK_UNTIL_MS: u64 = MAX_TAT_MS + MAX_BLOCK_MS;

/// An open reservation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hold {
    pub id: u64,
    /// The units it counted, 1..=[`MAX_UNITS`].
    pub estimate: u64,
    /// When it was reserved (a SLIDING limit gives a settle's refund back from its entry then).
    pub at_ms: u64,
    /// It is open while `now < expires_at_ms`.
    pub expires_at_ms: u64,
    /// Per limit position, a GCRA limit's TAT right after the reserve, kept at or before the
    /// TAT since ([`Tat::EMPTY`] where the limit keeps none: nothing of the hold is given back
    /// there but from its own record).
    pub ends: [Tat; MAX_LIMITS],
}

impl Hold {
    pub fn is_open(&self, now_ms: u64) -> bool {
        now_ms < self.expires_at_ms
    }

    /// The ends up to the last that is not empty: the form it is stored and sent in.
    pub fn written_ends(&self) -> &[Tat] {
        let n = self
            .ends
            .iter()
            .rposition(|e| *e != Tat::EMPTY)
            .map_or(0, |i| i + 1);
        self.ends.get(..n).unwrap_or(&[])
    }

    /// A hold from its stored fields, or `None` if no reserve could have made it: an estimate
    /// out of range, an expiry not within [`MAX_HOLD_MS`] after its instant, an instant past
    /// [`MAX_TAT_MS`], more than [`MAX_LIMITS`] ends or a last one that is empty, an end not in
    /// lowest terms.
    pub fn from_parts(
        id: u64,
        estimate: u64,
        at_ms: u64,
        expires_at_ms: u64,
        ends: &[Tat],
    ) -> Option<Hold> {
        let valid = id <= MAX_ID
            && (1..=MAX_UNITS).contains(&estimate)
            && at_ms <= MAX_TAT_MS
            && expires_at_ms > at_ms
            && expires_at_ms - at_ms <= MAX_HOLD_MS
            && ends.len() <= MAX_LIMITS
            && ends.last().is_none_or(|e| *e != Tat::EMPTY)
            && ends.iter().all(|e| *e == e.reduced());
        if !valid {
            return None;
        }
        let mut all = [Tat::EMPTY; MAX_LIMITS];
        for (slot, e) in all.iter_mut().zip(ends) {
            *slot = *e;
        }
        Some(Hold {
            id,
            estimate,
            at_ms,
            expires_at_ms,
            ends: all,
        })
    }
}

/// A block: every check is denied while `now < until_ms`; `level` is kept after it ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    pub until_ms: u64,
    pub level: u8,
}

impl Block {
    /// A block from its stored fields, or `None` past the bounds a command can reach.
    pub fn new(until_ms: u64, level: u64) -> Option<Block> {
        let level = u8::try_from(level).ok().filter(|l| *l <= MAX_LEVEL)?;
        (until_ms <= MAX_BLOCK_UNTIL_MS).then_some(Block { until_ms, level })
    }

    pub fn is_on(&self, now_ms: u64) -> bool {
        now_ms < self.until_ms
    }
}

/// The key-level parts of a key's state. A key that has none holds no `Parts` at all (the
/// common case costs nothing).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Parts {
    /// The last id issued (reservations and leases).
    pub last_id: Option<u64>,
    pub block: Option<Block>,
    /// Open holds (and expired ones not yet pruned), in the order of their ids.
    pub holds: Vec<Hold>,
    /// On a key with no stored policy and open holds: the limits they were reserved under, as
    /// given (unscaled), which `RL.SETTLE` settles under.
    pub reserved_under: Option<Policy>,
}

impl Parts {
    pub fn is_empty(&self) -> bool {
        self.last_id.is_none()
            && self.block.is_none()
            && self.holds.is_empty()
            && self.reserved_under.is_none()
    }

    /// The end of the block, if the key is blocked at `now_ms`.
    pub fn blocked_until(&self, now_ms: u64) -> Option<u64> {
        self.block.filter(|b| b.is_on(now_ms)).map(|b| b.until_ms)
    }

    /// The holds open at `now_ms`.
    pub fn open_holds(&self, now_ms: u64) -> impl Iterator<Item = &Hold> {
        self.holds.iter().filter(move |h| h.is_open(now_ms))
    }

    /// The next id at `now_ms`, or `None` once the sequence has reached [`MAX_ID`].
    pub fn next_id(&self, now_ms: u64) -> Option<u64> {
        let first = now_ms.checked_mul(1000)?;
        let next = match self.last_id {
            None => first,
            Some(last) => last.checked_add(1)?.max(first),
        };
        (next <= MAX_ID).then_some(next)
    }

    /// Drops the holds that have expired at `now_ms`, and the limits they were reserved under
    /// once none is left (what every write of the key does first).
    pub fn prune(&mut self, now_ms: u64) {
        self.holds.retain(|h| h.is_open(now_ms));
        if self.holds.is_empty() {
            self.reserved_under = None;
        }
    }

    /// Bytes held on the heap besides the box itself (`MEMORY USAGE`).
    pub fn heap_bytes(&self) -> usize {
        self.holds.capacity() * std::mem::size_of::<Hold>()
    }

    /// Whether the parts are ones a command could leave on a key (`configured`: it stores a
    /// policy): ids within bounds and below the last issued, holds in id order, at most
    /// [`MAX_HOLDS`], the limits they were reserved under exactly when the key stores none and
    /// holds some, and not empty (a key without parts holds none).
    pub fn is_valid(&self, configured: bool) -> bool {
        let ids_ok = match self.last_id {
            None => self.holds.is_empty(),
            Some(last) => {
                last <= MAX_ID
                    && self.holds.windows(2).all(|w| match w {
                        [a, b] => a.id < b.id,
                        _ => true,
                    })
                    && self.holds.last().is_none_or(|h| h.id <= last)
            }
        };
        ids_ok
            && self.holds.len() <= MAX_HOLDS
            && self.reserved_under.is_some() == (!configured && !self.holds.is_empty())
            && !self.is_empty()
    }
}

/// The block a penalty starts at `now_ms` on a key whose last block (over by now) was
/// `previous`: its level is one more than the previous one's when that ended less than
/// `window_ms` (the policy's longest window) ago, else 0; it lasts `ms * 2^level`, at most
/// `max_ms`.
pub fn penalize(penalty: Penalty, previous: Option<Block>, window_ms: u64, now_ms: u64) -> Block {
    let level = match previous {
        Some(b) if now_ms.saturating_sub(b.until_ms) < window_ms => {
            b.level.saturating_add(1).min(MAX_LEVEL)
        }
        _ => 0,
    };
    Block {
        until_ms: block_end(now_ms, penalty.duration_ms(level)),
        level,
    }
}

/// `now_ms + ms`, never past the latest end a state may hold.
pub fn block_end(now_ms: u64, ms: u64) -> u64 {
    now_ms.saturating_add(ms).min(MAX_BLOCK_UNTIL_MS)
}

#[cfg(test)]
#[path = "parts_tests.rs"]
mod tests;
