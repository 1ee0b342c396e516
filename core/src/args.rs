//! Argument parsing for the commands, on plain byte slices so it can be tested and fuzzed
//! without a server. Each parser takes the arguments after the key.
//!
//! Numbers follow Redis's strict integer syntax (no sign but `-`, no spaces, no leading
//! zeros), and every number is range-checked here: a value that parses is safe to compute with.
//!
//! PURE: no Redis types here.

use crate::error::Error;
use crate::limits::{Limit, Limits, StoredLimits, MAX_LIMITS};
use crate::policy::{Policy, StoredPolicy, MAX_COST, MAX_IDLE_MS};
use crate::sliding::Sliding;

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

/// Parsed `RL.ALLOW` options with the kinds and `AND` of several limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllowSet {
    /// Requests this call weighs, 1..=MAX_COST.
    pub cost: u64,
    /// This call's limits, used for this call only (and only when the key has no stored one).
    pub inline: Option<Limits>,
}

/// Parses `[COST n] [LIMIT l WINDOW w [BURST b] [GCRA|SLIDING]] [AND LIMIT l WINDOW w ...]`:
/// the options of [`parse_allow`], a kind per limit, and up to [`MAX_LIMITS`] limits joined
/// by `AND`. Options are in any order within a limit; `COST` may stand in any of them, once.
/// Without `AND`, `SLIDING` or `GCRA` it accepts and answers exactly what [`parse_allow`] does.
pub fn parse_allow_set(args: &[&[u8]]) -> Result<AllowSet, Error> {
    let mut cost = None;
    let mut found = Found::default();
    let mut current = LimitArgs::default();
    let mut joined = false;
    let mut rest = args;
    while let [name, tail @ ..] = rest {
        rest = tail;
        if name.eq_ignore_ascii_case(b"AND") {
            found.push(current.complete_before_and()?)?;
            current = LimitArgs::default();
            joined = true;
            continue;
        }
        if let Some(kind) = kind_of(name) {
            current.set_kind(kind)?;
            continue;
        }
        let [value, tail @ ..] = tail else {
            return Err(
                if is_option(name, &[b"COST", b"LIMIT", b"WINDOW", b"BURST"]) {
                    Error::MissingValue
                } else {
                    unknown(name, Error::UnknownAllowOption)
                },
            );
        };
        rest = tail;
        let (slot, range) = if name.eq_ignore_ascii_case(b"COST") {
            (&mut cost, Error::CostRange)
        } else if name.eq_ignore_ascii_case(b"LIMIT") {
            (&mut current.limit, Error::LimitRange)
        } else if name.eq_ignore_ascii_case(b"WINDOW") {
            (&mut current.window, Error::WindowRange)
        } else if name.eq_ignore_ascii_case(b"BURST") {
            (&mut current.burst, Error::BurstRange)
        } else {
            return Err(unknown(name, Error::UnknownAllowOption));
        };
        set_once(slot, positive(value, range)?)?;
    }
    let cost = cost.unwrap_or(1);
    if cost > MAX_COST {
        return Err(Error::CostRange);
    }
    if joined {
        found.push(current.complete_before_and()?)?;
    } else if !current.is_empty() {
        found.push(current.complete()?)?;
    }
    Ok(AllowSet {
        cost,
        inline: found.limits()?,
    })
}

/// Parses `limit window_ms [BURST b] [GCRA|SLIDING] [IDLE ms] [SHADOW] [AND limit window_ms
/// [BURST b] [GCRA|SLIDING] ...]`: up to [`MAX_LIMITS`] limits joined by `AND`, each with its
/// own burst and kind; `IDLE` and `SHADOW` are the key's and may stand after any limit, once.
/// Without `AND`, `SLIDING` or `GCRA` it accepts and answers exactly what [`parse_config`] does.
pub fn parse_config_set(args: &[&[u8]]) -> Result<StoredLimits, Error> {
    let mut idle = None;
    let mut shadow = false;
    let mut found = Found::default();
    let mut rest = args;
    loop {
        let [limit, window, tail @ ..] = rest else {
            return Err(if found.len == 0 {
                Error::MissingValue
            } else {
                Error::AndWithoutPolicy
            });
        };
        if found.len > 0 && (is_option(limit, &[b"AND"]) || is_option(window, &[b"AND"])) {
            return Err(Error::AndWithoutPolicy);
        }
        let mut current = LimitArgs {
            limit: Some(positive(limit, Error::LimitRange)?),
            window: Some(positive(window, Error::WindowRange)?),
            ..LimitArgs::default()
        };
        rest = tail;
        let mut and_follows = false;
        while let [name, tail @ ..] = rest {
            rest = tail;
            if name.eq_ignore_ascii_case(b"AND") {
                and_follows = true;
                break;
            }
            if name.eq_ignore_ascii_case(b"SHADOW") {
                if shadow {
                    return Err(Error::RepeatedOption);
                }
                shadow = true;
                continue;
            }
            if let Some(kind) = kind_of(name) {
                current.set_kind(kind)?;
                continue;
            }
            let [value, tail @ ..] = tail else {
                return Err(if is_option(name, &[b"BURST", b"IDLE"]) {
                    Error::MissingValue
                } else {
                    unknown(name, Error::UnknownConfigOption)
                });
            };
            rest = tail;
            let (slot, range) = if name.eq_ignore_ascii_case(b"BURST") {
                (&mut current.burst, Error::BurstRange)
            } else if name.eq_ignore_ascii_case(b"IDLE") {
                (&mut idle, Error::IdleRange)
            } else {
                return Err(unknown(name, Error::UnknownConfigOption));
            };
            set_once(slot, positive(value, range)?)?;
        }
        found.push(current.complete()?)?;
        if !and_follows {
            break;
        }
    }
    let idle_ms = idle.unwrap_or(0);
    if idle_ms > MAX_IDLE_MS {
        return Err(Error::IdleRange);
    }
    let limits = found.limits()?.ok_or(Error::MissingValue)?;
    Ok(StoredLimits {
        limits,
        idle_ms,
        shadow,
    })
}

/// A limit's kind keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Gcra,
    Sliding,
}

fn kind_of(name: &[u8]) -> Option<Kind> {
    if name.eq_ignore_ascii_case(b"GCRA") {
        Some(Kind::Gcra)
    } else if name.eq_ignore_ascii_case(b"SLIDING") {
        Some(Kind::Sliding)
    } else {
        None
    }
}

/// The error for an unknown word: `UnknownKind` when it names a rate-limiting algorithm
/// (`FIXED`, `TOKEN-BUCKET`, `SLIDING-LOG`, ...), so that the reply says which kinds exist;
/// otherwise the command's own unknown-option error.
fn unknown(name: &[u8], otherwise: Error) -> Error {
    const ALGORITHMS: [&[u8]; 6] = [b"FIXED", b"TOKEN", b"LEAKY", b"BUCKET", b"SLIDING", b"GCRA"];
    let names_one = ALGORITHMS
        .iter()
        .any(|a| name.windows(a.len()).any(|w| w.eq_ignore_ascii_case(a)));
    if names_one {
        Error::UnknownKind
    } else {
        otherwise
    }
}

/// The options of one limit while it is being read.
#[derive(Clone, Copy, Debug, Default)]
struct LimitArgs {
    limit: Option<u64>,
    window: Option<u64>,
    burst: Option<u64>,
    kind: Option<Kind>,
}

impl LimitArgs {
    fn is_empty(&self) -> bool {
        self.limit.is_none() && self.window.is_none() && self.burst.is_none() && self.kind.is_none()
    }

    fn set_kind(&mut self, kind: Kind) -> Result<(), Error> {
        if self.kind.replace(kind).is_some() {
            return Err(Error::KindTwice);
        }
        Ok(())
    }

    /// The limit, validated for its kind.
    fn complete(self) -> Result<Limit, Error> {
        let (limit, window) = match (self.limit, self.window, self.burst) {
            (Some(l), Some(w), _) => (l, w),
            (None, None, Some(_)) => return Err(Error::BurstWithoutLimit),
            _ => return Err(Error::LimitWithoutWindow),
        };
        match self.kind.unwrap_or(Kind::Gcra) {
            Kind::Gcra => Ok(Limit::Gcra(Policy::new(
                limit,
                window,
                self.burst.unwrap_or(0),
            )?)),
            Kind::Sliding if self.burst.is_some() => Err(Error::SlidingBurst),
            Kind::Sliding => Ok(Limit::Sliding(Sliding::new(limit, window)?)),
        }
    }

    /// A limit that `AND` joins: one with nothing at all is the dangling `AND`'s error.
    fn complete_before_and(self) -> Result<Limit, Error> {
        if self.is_empty() {
            return Err(Error::AndWithoutPolicy);
        }
        self.complete()
    }
}

/// The limits read so far, at most [`MAX_LIMITS`].
#[derive(Default)]
struct Found {
    items: [Option<Limit>; MAX_LIMITS],
    len: usize,
}

impl Found {
    fn push(&mut self, limit: Limit) -> Result<(), Error> {
        let slot = self.items.get_mut(self.len).ok_or(Error::TooManyLimits)?;
        *slot = Some(limit);
        self.len += 1;
        Ok(())
    }

    fn limits(&self) -> Result<Option<Limits>, Error> {
        if self.len == 0 {
            return Ok(None);
        }
        let mut all = [self.items[0].ok_or(Error::MissingValue)?; MAX_LIMITS];
        for (slot, item) in all.iter_mut().zip(&self.items[..self.len]) {
            *slot = item.ok_or(Error::MissingValue)?;
        }
        Limits::new(&all[..self.len]).map(Some)
    }
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
