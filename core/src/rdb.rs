//! The persisted form of a key's state: the unsigned fields RDB (and so `DUMP`, `RESTORE`,
//! `MIGRATE`) stores and `DEBUG DIGEST-VALUE` hashes, and their validation on the way back in.
//!
//! One state has one encoding, the oldest that can hold it, so files and digests of what
//! older versions could hold do not change:
//!
//! ```text
//! version 1   tat_ms frac den 0                                  one GCRA limit, usage only
//!             tat_ms frac den 1  limit window_ms burst idle flags     ... configured
//! version 2   0 0 1 2  n usage*n  has_policy [limit*n idle flags]    several limits or SLIDING
//! version 3   0 0 1 3  n usage*n  has_policy [m limit*m idle flags  anything else: a log that
//!             [penalty_ms max_ms]]  has_pending [at_ms]              knows its window where it
//!             p part*p                                               is not implied, a pending
//!                                                                    reconfiguration, leases,
//!                                                                    a penalty, key-level parts
//! usage:      0 tat_ms frac den             GCRA (the TAT in lowest terms)
//!             1 base_ms m (offset count)*m  SLIDING, its window implied
//!             2 window_ms base_ms m (offset count)*m   SLIDING (version 3)
//!             3 m (id cost expires_at_ms)*m            CONCURRENCY: its leases (version 3)
//! limit:      0 limit window_ms burst       GCRA
//!             1 limit window_ms limit       SLIDING (its burst is its limit)
//!             2 limit window_ms limit       CONCURRENCY (likewise; version 3)
//! part:       0 last_id                     the id sequence
//!             1 until_ms level              the block (kept after its end, for its level)
//!             2 n (id estimate at_ms expires_at_ms e (ms frac den)*e)*n   open holds, each
//!                                           with the ends of its GCRA limits
//!             3 m limit*m                   the limits a key with no policy reserved under
//! ```
//!
//! A SLIDING log's window is *implied* when it is the window of the stored SLIDING limit at
//! its position (a configured key), or unknown (a usage-only key's log written before logs
//! kept their window). Flags bit 2 (`FLAG_PENALTY`) says that the stored `PENALTY` follows.
//! Parts are written in the order of their codes, each at most once, holds only when there
//! are some (issues 19 and 20 added leases, penalties and parts to version 3, which had
//! written and accepted 0 parts until then: a module of before refuses such a key rather
//! than dropping what it cannot read). The first four fields of versions 2 and 3 are an
//! empty TAT and a kind, so that a reader of version 1 sees a kind it refuses.
//!
//! Decoding accepts exactly what the commands write, through the constructors the commands
//! use: an unknown version or kind, an impossible value, a non-canonical form or leftover
//! fields are refused rather than trusted. The one exception is kept from version 1: its
//! forms accept a TAT not in lowest terms, and load it reduced.
//!
//! PURE: no Redis types here.

use crate::kinds::concurrency::{Concurrency, Leases, MAX_CONCURRENCY_LIMIT};
use crate::kinds::gcra::{Gcra, Tat};
use crate::kinds::sliding::{Log, Sliding, MAX_SLIDING_LIMIT};
use crate::kinds::{Limit, Usage};
use crate::parts::{Block, Hold, Parts, MAX_HOLDS};
use crate::policy::{Policy, Stored, MAX_LIMITS};
use crate::state::{is_native, State, StateRef, Usages, MAX_USAGES};

/// The encoding version this code writes (it reads 1 to 3).
pub const ENCODING_VERSION: u64 = 3;

const KIND_USAGE: u64 = 0;
const KIND_CONFIGURED: u64 = 1;
const KIND_SET: u64 = 2;
const KIND_GENERAL: u64 = 3;
const USAGE_GCRA: u64 = 0;
const USAGE_SLIDING: u64 = 1;
const USAGE_SLIDING_WINDOW: u64 = 2;
const USAGE_CONCURRENCY: u64 = 3;
const LIMIT_GCRA: u64 = 0;
const LIMIT_SLIDING: u64 = 1;
const LIMIT_CONCURRENCY: u64 = 2;
const PART_SEQUENCE: u64 = 0;
const PART_BLOCK: u64 = 1;
const PART_HOLDS: u64 = 2;
const PART_RESERVED_UNDER: u64 = 3;

/// Version 1's form of a state: one GCRA usage, and the one GCRA limit stored, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compact {
    pub tat: Tat,
    pub stored: Option<CompactStored>,
}

/// One GCRA limit as `RL.CONFIG` stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactStored {
    pub gcra: Gcra,
    pub idle_ms: u64,
    pub flags: u64,
}

/// Version 1's form of a state, when it has one: one GCRA usage, nothing pending, no
/// key-level parts, and no stored policy or a single GCRA one without a penalty. Such a state
/// is always kept, written and sent so.
#[inline]
pub fn compact(state: StateRef<'_>) -> Option<Compact> {
    let ([Usage::Gcra(tat)], None, None) = (state.usages, state.pending_at_ms, state.parts) else {
        return None;
    };
    let stored = match state.stored {
        None => None,
        Some(s) if s.penalty().is_some() => return None,
        Some(s) => Some(CompactStored {
            gcra: s.policy.single_gcra()?,
            idle_ms: s.idle_ms,
            flags: s.flags(),
        }),
    };
    Some(Compact { tat: *tat, stored })
}

/// The window a log at `position` is read with when its own is not written: the stored
/// SLIDING limit's there, or unknown.
fn implied_window(stored: Option<&Stored>, position: usize) -> u64 {
    match stored.and_then(|s| s.policy.limits().get(position)) {
        Some(Limit::Sliding(l)) => l.window_ms(),
        _ => 0,
    }
}

/// Whether a log at `position` is written without its window (its window is implied).
fn window_implied(log: &Log, stored: Option<&Stored>, position: usize) -> bool {
    log.is_empty() || log.window_ms() == implied_window(stored, position)
}

/// Whether a state is in version 2's form: nothing pending, its usages native to its stored
/// limits (or usage-only), every log's window implied, and nothing version 2 did not have
/// (leases, a penalty, key-level parts).
fn has_version_2_form(state: StateRef<'_>) -> bool {
    let native = state
        .stored
        .is_none_or(|s| is_native(&s.policy, state.usages));
    let old_policy = state.stored.is_none_or(|s| {
        s.penalty().is_none() && s.policy.limits().iter().all(|l| !l.takes_leases())
    });
    state.pending_at_ms.is_none()
        && state.parts.is_none()
        && native
        && old_policy
        && !state.usages.is_empty()
        && state.usages.iter().enumerate().all(|(i, u)| match u {
            Usage::Sliding(log) => window_implied(log, state.stored, i),
            Usage::Gcra(_) => true,
            Usage::Concurrency(_) => false,
        })
}

/// The fields of `state`, in order.
pub fn encode(state: StateRef<'_>) -> Vec<u64> {
    if let Some(Compact { tat, stored }) = compact(state) {
        let mut f = vec![tat.ms(), tat.frac(), tat.den()];
        match stored {
            None => f.push(KIND_USAGE),
            Some(c) => f.extend([
                KIND_CONFIGURED,
                c.gcra.limit(),
                c.gcra.window_ms(),
                c.gcra.burst(),
                c.idle_ms,
                c.flags,
            ]),
        }
        return f;
    }
    let v2 = has_version_2_form(state);
    let stored = state.stored;
    let mut f = vec![0, 0, 1, if v2 { KIND_SET } else { KIND_GENERAL }];
    f.push(state.usages.len() as u64);
    for (i, u) in state.usages.iter().enumerate() {
        match u {
            Usage::Gcra(t) => f.extend([USAGE_GCRA, t.ms(), t.frac(), t.den()]),
            Usage::Sliding(log) => {
                if window_implied(log, stored, i) {
                    f.push(USAGE_SLIDING);
                } else {
                    f.extend([USAGE_SLIDING_WINDOW, log.window_ms()]);
                }
                f.extend([log.base_ms(), log.len() as u64]);
                for (offset, count) in log.parts() {
                    f.extend([offset, count]);
                }
            }
            Usage::Concurrency(leases) => {
                f.extend([USAGE_CONCURRENCY, leases.len() as u64]);
                for (id, cost, expires_at_ms) in leases.parts() {
                    f.extend([id, cost, expires_at_ms]);
                }
            }
        }
    }
    match stored {
        None => f.push(0),
        Some(s) => {
            f.push(1);
            if !v2 {
                f.push(s.policy.len() as u64);
            }
            for l in s.policy.limits() {
                f.extend(limit_fields(l));
            }
            f.extend([s.idle_ms, s.flags()]);
            if let Some(p) = s.penalty() {
                f.extend([p.ms, p.max_ms]);
            }
        }
    }
    if !v2 {
        match state.pending_at_ms {
            None => f.push(0),
            Some(at) => f.extend([1, at]),
        }
        encode_parts(state.parts, &mut f);
    }
    f
}

/// The key-level parts: their count, then each in the order of its code.
fn encode_parts(parts: Option<&Parts>, f: &mut Vec<u64>) {
    let Some(p) = parts else {
        f.push(0);
        return;
    };
    let count = [
        p.last_id.is_some(),
        p.block.is_some(),
        !p.holds.is_empty(),
        p.reserved_under.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    f.push(count as u64);
    if let Some(id) = p.last_id {
        f.extend([PART_SEQUENCE, id]);
    }
    if let Some(b) = p.block {
        f.extend([PART_BLOCK, b.until_ms, u64::from(b.level)]);
    }
    if !p.holds.is_empty() {
        f.extend([PART_HOLDS, p.holds.len() as u64]);
        for h in &p.holds {
            let ends = h.written_ends();
            f.extend([
                h.id,
                h.estimate,
                h.at_ms,
                h.expires_at_ms,
                ends.len() as u64,
            ]);
            for e in ends {
                f.extend([e.ms(), e.frac(), e.den()]);
            }
        }
    }
    if let Some(policy) = p.reserved_under {
        f.extend([PART_RESERVED_UNDER, policy.len() as u64]);
        for l in policy.limits() {
            f.extend(limit_fields(l));
        }
    }
}

fn limit_fields(l: &Limit) -> [u64; 4] {
    match l {
        Limit::Gcra(g) => [LIMIT_GCRA, g.limit(), g.window_ms(), g.burst()],
        Limit::Sliding(s) => [LIMIT_SLIDING, s.limit(), s.window_ms(), s.limit()],
        Limit::Concurrency(c) => [LIMIT_CONCURRENCY, c.limit(), c.window_ms(), c.limit()],
    }
}

/// A limit from its four fields, through the constructors the commands use (`general`:
/// version 3, which has CONCURRENCY).
fn limit_from_fields([kind, limit, window_ms, burst]: [u64; 4], general: bool) -> Option<Limit> {
    match kind {
        // A stored burst is never 0 (0 would mean "same as limit" to Gcra::new).
        LIMIT_GCRA if burst > 0 => Gcra::new(limit, window_ms, burst).ok().map(Limit::Gcra),
        LIMIT_SLIDING if burst == limit => Sliding::new(limit, window_ms).ok().map(Limit::Sliding),
        LIMIT_CONCURRENCY if burst == limit && general => Concurrency::new(limit, window_ms)
            .ok()
            .map(Limit::Concurrency),
        _ => None,
    }
}

/// `m limit*m`: a policy of 1 to [`MAX_LIMITS`] limits.
fn decode_policy(read: &mut impl FnMut() -> Option<u64>, m: u64, general: bool) -> Option<Policy> {
    if m == 0 || m > MAX_LIMITS as u64 {
        return None;
    }
    let mut limits = Vec::with_capacity(m as usize);
    for _ in 0..m {
        limits.push(limit_from_fields(
            [read()?, read()?, read()?, read()?],
            general,
        )?);
    }
    Policy::new(&limits).ok()
}

/// The key-level parts after their count: each code at most once, in increasing order.
fn decode_parts(read: &mut impl FnMut() -> Option<u64>) -> Option<Option<Box<Parts>>> {
    let count = read()?;
    if count == 0 {
        return Some(None);
    }
    if count > 4 {
        return None;
    }
    let mut parts = Parts::default();
    let mut previous = None;
    for _ in 0..count {
        let code = read()?;
        if previous.is_some_and(|p| code <= p) {
            return None;
        }
        previous = Some(code);
        match code {
            PART_SEQUENCE => parts.last_id = Some(read()?),
            PART_BLOCK => parts.block = Some(Block::new(read()?, read()?)?),
            PART_HOLDS => {
                let n = read()?;
                if n == 0 || n > MAX_HOLDS as u64 {
                    return None;
                }
                for _ in 0..n {
                    let [id, estimate, at_ms, expires_at_ms, e] =
                        [read()?, read()?, read()?, read()?, read()?];
                    if e > MAX_LIMITS as u64 {
                        return None;
                    }
                    let mut ends = Vec::with_capacity(e as usize);
                    for _ in 0..e {
                        ends.push(Tat::new(read()?, read()?, read()?)?);
                    }
                    parts
                        .holds
                        .push(Hold::from_parts(id, estimate, at_ms, expires_at_ms, &ends)?);
                }
            }
            PART_RESERVED_UNDER => {
                let m = read()?;
                parts.reserved_under = Some(decode_policy(read, m, true)?);
            }
            _ => return None,
        }
    }
    Some(Some(Box::new(parts)))
}

/// Reads a state of encoding version `encver` field by field (`None`: the input failed,
/// ended, or holds a state the commands cannot produce, or in a form they do not write).
pub fn decode(encver: u64, mut read: impl FnMut() -> Option<u64>) -> Option<State> {
    if !(1..=ENCODING_VERSION).contains(&encver) {
        return None;
    }
    let head = [read()?, read()?, read()?, read()?];
    match head[3] {
        KIND_USAGE | KIND_CONFIGURED => {
            // Version 1's forms read as version-1 modules read them: a TAT not in lowest terms
            // (which no module wrote, but a RESTORE payload can hold, and tests/ forge) loads
            // in lowest terms, the one form it is then written, digested and sent in.
            let tat = Tat::new(head[0], head[1], head[2])?.reduced();
            let stored = if head[3] == KIND_CONFIGURED {
                let [limit, window, burst, idle, flags] =
                    [read()?, read()?, read()?, read()?, read()?];
                if burst == 0 {
                    return None;
                }
                let g = Gcra::new(limit, window, burst).ok()?;
                Some(Stored::from_parts(
                    Policy::single(Limit::Gcra(g)),
                    idle,
                    flags,
                    None,
                )?)
            } else {
                None
            };
            let mut usages = Usages::new();
            usages.push(Usage::Gcra(tat));
            State::new(usages, stored, None, None)
        }
        KIND_SET if encver >= 2 && head[..3] == [0, 0, 1] => {
            let state = decode_set(&mut read, false)?;
            // One GCRA limit has version 1's form, and only that form.
            (compact(state.as_ref()).is_none() && has_version_2_form(state.as_ref()))
                .then_some(state)
        }
        KIND_GENERAL if encver >= 3 && head[..3] == [0, 0, 1] => {
            let state = decode_set(&mut read, true)?;
            (compact(state.as_ref()).is_none() && !has_version_2_form(state.as_ref()))
                .then_some(state)
        }
        _ => None,
    }
}

/// The body of versions 2 and 3 (`general`: version 3's fields).
fn decode_set(read: &mut impl FnMut() -> Option<u64>, general: bool) -> Option<State> {
    let n = read()?;
    if n > MAX_USAGES as u64 || (!general && n == 0) {
        return None;
    }
    // Windows are implied by the stored limits, which come after: keep each log's own, if written.
    let mut raw: Vec<(Usage, Option<u64>)> = Vec::with_capacity(n as usize);
    for _ in 0..n {
        raw.push(match read()? {
            USAGE_GCRA => {
                let tat = Tat::new(read()?, read()?, read()?)?;
                (tat == tat.reduced()).then_some((Usage::Gcra(tat), None))?
            }
            code @ (USAGE_SLIDING | USAGE_SLIDING_WINDOW) => {
                let explicit = code == USAGE_SLIDING_WINDOW;
                if explicit && !general {
                    return None;
                }
                let window = if explicit { read()? } else { 0 };
                let base = read()?;
                let m = read()?;
                if m > MAX_SLIDING_LIMIT {
                    return None;
                }
                let mut parts = Vec::with_capacity(m as usize);
                for _ in 0..m {
                    parts.push((read()?, read()?));
                }
                // A log with no entries has no window to write.
                if explicit && parts.is_empty() {
                    return None;
                }
                let log = Log::from_parts(base, window, &parts)?;
                (Usage::Sliding(log), explicit.then_some(window))
            }
            USAGE_CONCURRENCY if general => {
                let m = read()?;
                if m > MAX_CONCURRENCY_LIMIT {
                    return None;
                }
                let mut parts = Vec::with_capacity(m as usize);
                for _ in 0..m {
                    parts.push((read()?, read()?, read()?));
                }
                (Usage::Concurrency(Leases::from_parts(&parts)?), None)
            }
            _ => return None,
        });
    }
    let stored = match read()? {
        0 => None,
        1 => {
            let m = if general { read()? } else { n };
            let policy = decode_policy(read, m, general)?;
            let (idle_ms, flags) = (read()?, read()?);
            let penalty = if general && flags & crate::policy::FLAG_PENALTY != 0 {
                Some((read()?, read()?))
            } else {
                None
            };
            Some(Stored::from_parts(policy, idle_ms, flags, penalty)?)
        }
        _ => return None,
    };
    let (pending, parts) = if general {
        let pending = match read()? {
            0 => None,
            1 => Some(read()?),
            _ => return None,
        };
        (pending, decode_parts(read)?)
    } else {
        (None, None)
    };
    let mut usages = Usages::new();
    for (i, (u, own)) in raw.into_iter().enumerate() {
        let implied = implied_window(stored.as_ref(), i);
        let u = match (u, own) {
            (Usage::Sliding(log), None) => Usage::Sliding(log.with_window(implied)),
            // Written only when it differs from the implied one (one form per state).
            (Usage::Sliding(log), Some(w)) if w != implied => Usage::Sliding(log),
            (Usage::Gcra(t), _) => Usage::Gcra(t),
            (Usage::Concurrency(l), _) => Usage::Concurrency(l),
            _ => return None,
        };
        usages.push(u);
    }
    State::new(usages, stored, pending, parts)
}

#[cfg(test)]
#[path = "rdb_tests.rs"]
mod tests;
