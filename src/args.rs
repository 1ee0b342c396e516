//! Argument parsing for the commands, on plain byte slices so it can be tested and fuzzed
//! without a server. Each parser takes the arguments after the key.
//!
//! Numbers follow Redis's strict integer syntax (no sign but `-`, no spaces, no leading
//! zeros), and every number is range-checked here: a value that parses is safe to compute with.
//!
//! PURE: no Redis types here.

use crate::error::Error;
use crate::policy::{Policy, StoredPolicy, MAX_COST, MAX_IDLE_MS};

/// Parsed `RL.ALLOW` options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllowArgs {
    /// Requests this call weighs, 1..=MAX_COST.
    pub cost: u64,
    /// `LIMIT l WINDOW w [BURST b]`, used for this call only.
    pub inline: Option<Policy>,
}

/// Parses `[COST n] [LIMIT limit WINDOW window_ms [BURST burst]]`, options in any order.
pub fn parse_allow(args: &[&[u8]]) -> Result<AllowArgs, Error> {
    let mut cost = None;
    let mut limit = None;
    let mut window = None;
    let mut burst = None;
    let mut rest = args;
    while let [name, tail @ ..] = rest {
        let [value, tail @ ..] = tail else {
            return Err(
                if is_option(name, &[b"COST", b"LIMIT", b"WINDOW", b"BURST"]) {
                    Error::MissingValue
                } else {
                    Error::UnknownAllowOption
                },
            );
        };
        let (slot, range) = if name.eq_ignore_ascii_case(b"COST") {
            (&mut cost, Error::CostRange)
        } else if name.eq_ignore_ascii_case(b"LIMIT") {
            (&mut limit, Error::LimitRange)
        } else if name.eq_ignore_ascii_case(b"WINDOW") {
            (&mut window, Error::WindowRange)
        } else if name.eq_ignore_ascii_case(b"BURST") {
            (&mut burst, Error::BurstRange)
        } else {
            return Err(Error::UnknownAllowOption);
        };
        set_once(slot, positive(value, range)?)?;
        rest = tail;
    }
    let cost = cost.unwrap_or(1);
    if cost > MAX_COST {
        return Err(Error::CostRange);
    }
    let inline = match (limit, window, burst) {
        (None, None, None) => None,
        (None, None, Some(_)) => return Err(Error::BurstWithoutLimit),
        (Some(l), Some(w), b) => Some(Policy::new(l, w, b.unwrap_or(0))?),
        _ => return Err(Error::LimitWithoutWindow),
    };
    Ok(AllowArgs { cost, inline })
}

/// Parses `limit window_ms [BURST burst] [IDLE idle_ms] [SHADOW]`.
pub fn parse_config(args: &[&[u8]]) -> Result<StoredPolicy, Error> {
    let [limit, window, options @ ..] = args else {
        return Err(Error::MissingValue);
    };
    let limit = positive(limit, Error::LimitRange)?;
    let window = positive(window, Error::WindowRange)?;
    let mut burst = None;
    let mut idle = None;
    let mut shadow = false;
    let mut rest = options;
    while let [name, tail @ ..] = rest {
        if name.eq_ignore_ascii_case(b"SHADOW") {
            if shadow {
                return Err(Error::RepeatedOption);
            }
            shadow = true;
            rest = tail;
            continue;
        }
        let [value, tail @ ..] = tail else {
            return Err(if is_option(name, &[b"BURST", b"IDLE"]) {
                Error::MissingValue
            } else {
                Error::UnknownConfigOption
            });
        };
        let (slot, range) = if name.eq_ignore_ascii_case(b"BURST") {
            (&mut burst, Error::BurstRange)
        } else if name.eq_ignore_ascii_case(b"IDLE") {
            (&mut idle, Error::IdleRange)
        } else {
            return Err(Error::UnknownConfigOption);
        };
        set_once(slot, positive(value, range)?)?;
        rest = tail;
    }
    let idle = idle.unwrap_or(0);
    if idle > MAX_IDLE_MS {
        return Err(Error::IdleRange);
    }
    let mut stored = StoredPolicy::new(Policy::new(limit, window, burst.unwrap_or(0))?, idle)?;
    stored.shadow = shadow;
    Ok(stored)
}

fn is_option(name: &[u8], options: &[&[u8]]) -> bool {
    options.iter().any(|o| name.eq_ignore_ascii_case(o))
}

fn set_once(slot: &mut Option<u64>, value: u64) -> Result<(), Error> {
    if slot.replace(value).is_some() {
        return Err(Error::RepeatedOption);
    }
    Ok(())
}

/// A strictly positive integer, or `range` (the field's own error) for anything else: zero,
/// negative, not an integer, or too large for `u64`. Callers check their upper bound.
fn positive(bytes: &[u8], range: Error) -> Result<u64, Error> {
    match parse_integer(bytes) {
        Some(Integer::Positive(n)) if n > 0 => Ok(n),
        _ => Err(range),
    }
}

/// An integer in Redis's strict syntax.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Integer {
    Positive(u64),
    Negative,
}

/// Parses `0`, `[-]1-9[0-9]*`; `None` for anything else or for a magnitude beyond `u64`.
pub fn parse_integer(bytes: &[u8]) -> Option<Integer> {
    let (negative, digits) = match bytes {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, bytes),
    };
    match digits {
        [] => return None,
        [b'0'] if !negative => return Some(Integer::Positive(0)),
        [b'0', ..] => return None,
        _ => {}
    }
    let mut n: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if negative {
        Integer::Negative
    } else {
        Integer::Positive(n)
    })
}

#[cfg(test)]
#[path = "args_tests.rs"]
mod tests;
