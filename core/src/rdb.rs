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
//! version 3   0 0 1 3  n usage*n  has_policy [m limit*m idle flags]  anything else: a log that
//!             has_pending [at_ms]  parts                             knows its window where it
//!                                                                    is not implied, a pending
//!                                                                    reconfiguration
//! usage:      0 tat_ms frac den             GCRA (the TAT in lowest terms)
//!             1 base_ms m (offset count)*m  SLIDING, its window implied
//!             2 window_ms base_ms m (offset count)*m   SLIDING (version 3)
//! limit:      0 limit window_ms burst       GCRA
//!             1 limit window_ms limit       SLIDING (its burst is its limit)
//! ```
//!
//! A SLIDING log's window is *implied* when it is the window of the stored SLIDING limit at
//! its position (a configured key), or unknown (a usage-only key's log written before logs
//! kept their window). `parts` counts the key-level parts a later version adds (holds,
//! blocks); this one writes and accepts 0. The first four fields of versions 2 and 3 are an
//! empty TAT and a kind, so that a reader of version 1 sees a kind it refuses.
//!
//! Decoding accepts exactly what the commands write, through the constructors the commands
//! use: an unknown version or kind, an impossible value, a non-canonical form or leftover
//! fields are refused rather than trusted. The one exception is kept from version 1: its
//! forms accept a TAT not in lowest terms, and load it reduced.
//!
//! PURE: no Redis types here.

use crate::kinds::gcra::{Gcra, Tat};
use crate::kinds::sliding::{Log, Sliding, MAX_SLIDING_LIMIT};
use crate::kinds::{Limit, Usage};
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
const LIMIT_GCRA: u64 = 0;
const LIMIT_SLIDING: u64 = 1;

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

/// Version 1's form of a state, when it has one: one GCRA usage, nothing pending, and no
/// stored policy or a single GCRA one. Such a state is always kept, written and sent so.
pub fn compact(state: StateRef<'_>) -> Option<Compact> {
    let ([Usage::Gcra(tat)], None) = (state.usages, state.pending_at_ms) else {
        return None;
    };
    let stored = match state.stored {
        None => None,
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
/// limits (or usage-only), every log's window implied.
fn has_version_2_form(state: StateRef<'_>) -> bool {
    let native = state
        .stored
        .is_none_or(|s| is_native(&s.policy, state.usages));
    state.pending_at_ms.is_none()
        && native
        && state.usages.iter().enumerate().all(|(i, u)| match u {
            Usage::Sliding(log) => window_implied(log, state.stored, i),
            _ => true,
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
        }
    }
    if !v2 {
        match state.pending_at_ms {
            None => f.push(0),
            Some(at) => f.extend([1, at]),
        }
        f.push(0); // key-level parts
    }
    f
}

fn limit_fields(l: &Limit) -> [u64; 4] {
    match l {
        Limit::Gcra(g) => [LIMIT_GCRA, g.limit(), g.window_ms(), g.burst()],
        Limit::Sliding(s) => [LIMIT_SLIDING, s.limit(), s.window_ms(), s.limit()],
    }
}

/// A limit from its four fields, through the constructors the commands use.
fn limit_from_fields([kind, limit, window_ms, burst]: [u64; 4]) -> Option<Limit> {
    match kind {
        // A stored burst is never 0 (0 would mean "same as limit" to Gcra::new).
        LIMIT_GCRA if burst > 0 => Gcra::new(limit, window_ms, burst).ok().map(Limit::Gcra),
        LIMIT_SLIDING if burst == limit => Sliding::new(limit, window_ms).ok().map(Limit::Sliding),
        _ => None,
    }
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
                )?)
            } else {
                None
            };
            let mut usages = Usages::new();
            usages.push(Usage::Gcra(tat));
            State::new(usages, stored, None)
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
            _ => return None,
        });
    }
    let stored = match read()? {
        0 => None,
        1 => {
            let m = if general { read()? } else { n };
            if m == 0 || m > MAX_LIMITS as u64 {
                return None;
            }
            let mut limits = Vec::with_capacity(m as usize);
            for _ in 0..m {
                limits.push(limit_from_fields([read()?, read()?, read()?, read()?])?);
            }
            let (idle_ms, flags) = (read()?, read()?);
            Some(Stored::from_parts(
                Policy::new(&limits).ok()?,
                idle_ms,
                flags,
            )?)
        }
        _ => return None,
    };
    let pending = if general {
        let pending = match read()? {
            0 => None,
            1 => Some(read()?),
            _ => return None,
        };
        // No key-level parts exist in this version.
        if read()? != 0 {
            return None;
        }
        pending
    } else {
        None
    };
    let mut usages = Usages::new();
    for (i, (u, own)) in raw.into_iter().enumerate() {
        let implied = implied_window(stored.as_ref(), i);
        let u = match (u, own) {
            (Usage::Sliding(log), None) => Usage::Sliding(log.with_window(implied)),
            // Written only when it differs from the implied one (one form per state).
            (Usage::Sliding(log), Some(w)) if w != implied => Usage::Sliding(log),
            (Usage::Gcra(t), _) => Usage::Gcra(t),
            _ => return None,
        };
        usages.push(u);
    }
    State::new(usages, stored, pending)
}

#[cfg(test)]
#[path = "rdb_tests.rs"]
mod tests;
