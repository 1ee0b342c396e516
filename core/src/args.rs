//! The argument parsers, on plain byte slices so they can be tested and fuzzed without a
//! server: one for a request (`RL.ALLOW`, `RL.THROTTLE`, `RL.PEEK`) and one for `RL.CONFIG`.
//! Each takes the arguments after the key, and reads a policy of one to four limits of any
//! kind (the kinds' keywords come from their registry, `kinds::Kind`).
//!
//! Numbers follow Redis's strict integer syntax (no sign but `-`, no spaces, no leading
//! zeros), and every number is range-checked here: a value that parses is safe to compute
//! with. Options are case-insensitive and may come in any order within a limit.
//!
//! PURE: no Redis types here.

use crate::error::Error;
use crate::kinds::{Kind, Limit};
use crate::parts::{MAX_BLOCK_MS, MAX_HOLD_MS, MAX_UNITS};
use crate::policy::{Penalty, Policy, Stored, MAX_COST, MAX_IDLE_MS, MAX_LIMITS};

/// Which command a request's options are for: each takes its own options (`COST`,
/// `WITHPOLICY`, `HOLD`) besides an inline policy, and names them in its syntax error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// `RL.ALLOW`: `COST`.
    Allow,
    /// `RL.THROTTLE` and `RL.PEEK`: `COST`, `WITHPOLICY`.
    Throttle,
    /// `RL.ACQUIRE`: `COST`.
    Acquire,
    /// `RL.RESERVE` (after its estimate): `HOLD`.
    Reserve,
    /// `RL.REFUND` (after its `n`): an inline policy only.
    Refund,
}

/// A parsed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// Requests this call weighs, 1..=MAX_COST (`RL.RESERVE`: the estimate; `RL.REFUND`: the
    /// units to give back).
    pub cost: u64,
    /// The call's own limits, used when the key has no stored policy, never stored.
    pub inline: Option<Policy>,
    /// `WITHPOLICY`: the reply also tells the policy that was enforced.
    pub with_policy: bool,
    /// The inline policy's `PENALTY`, if any.
    pub penalty: Option<Penalty>,
    /// `RL.RESERVE`'s `HOLD`, if given.
    pub hold_ms: Option<u64>,
}

impl Request {
    /// A call with no options: cost 1, no inline policy.
    pub const PLAIN: Request = Request {
        cost: 1,
        inline: None,
        with_policy: false,
        penalty: None,
        hold_ms: None,
    };
}

/// Parses `[COST n] [WITHPOLICY] [LIMIT l WINDOW w [BURST b] [KIND]] [PENALTY ms [MAX m]]
/// [AND LIMIT l WINDOW w ...]`: up to [`MAX_LIMITS`] limits joined by `AND`, options in any
/// order within a limit; `COST` (and `WITHPOLICY`) and `PENALTY` (the key's) may stand in
/// any of them, once.
#[inline]
pub fn parse_request(args: &[&[u8]], command: Command) -> Result<Request, Error> {
    if args.is_empty() {
        return Ok(Request::PLAIN);
    }
    parse_options(args, command)
}

/// `RL.RESERVE key estimate [HOLD ms] [inline policy]`: the estimate is the request's cost.
pub fn parse_reserve(args: &[&[u8]]) -> Result<Request, Error> {
    let [estimate, rest @ ..] = args else {
        return Err(Error::WrongArity);
    };
    let estimate = positive(estimate, Error::EstimateRange)?;
    if estimate > MAX_UNITS {
        return Err(Error::EstimateRange);
    }
    let mut request = parse_request(rest, Command::Reserve)?;
    request.cost = estimate;
    Ok(request)
}

/// `RL.REFUND key n [inline policy]`: `n` is in `cost`.
pub fn parse_refund(args: &[&[u8]]) -> Result<Request, Error> {
    let [n, rest @ ..] = args else {
        return Err(Error::WrongArity);
    };
    let n = positive(n, Error::RefundRange)?;
    if n > MAX_UNITS {
        return Err(Error::RefundRange);
    }
    let mut request = parse_request(rest, Command::Refund)?;
    request.cost = n;
    Ok(request)
}

/// An id (`RL.SETTLE`'s reservation, `RL.RELEASE`'s and `RL.RENEW`'s lease): any integer from
/// 0 (an id no key issued is simply unknown), else `error`.
pub fn parse_id(arg: &[u8], error: Error) -> Result<u64, Error> {
    natural(arg).ok_or(error)
}

/// `RL.SETTLE key id actual`: the id and the actual units (0..=10^9).
pub fn parse_settle(args: &[&[u8]]) -> Result<(u64, u64), Error> {
    let [id, actual] = args else {
        return Err(Error::WrongArity);
    };
    let id = parse_id(id, Error::ReservationId)?;
    let actual = natural(actual)
        .filter(|a| *a <= MAX_UNITS)
        .ok_or(Error::ActualRange)?;
    Ok((id, actual))
}

/// `RL.BLOCK key ms` (1..=10^12).
pub fn parse_block(args: &[&[u8]]) -> Result<u64, Error> {
    let [ms] = args else {
        return Err(Error::WrongArity);
    };
    let ms = positive(ms, Error::BlockRange)?;
    (ms <= MAX_BLOCK_MS).then_some(ms).ok_or(Error::BlockRange)
}

/// `RL.RENEW key lease ms`: the lease and its new lifetime (1..=2^32-1).
pub fn parse_renew(args: &[&[u8]]) -> Result<(u64, u64), Error> {
    let [id, ms] = args else {
        return Err(Error::WrongArity);
    };
    let id = parse_id(id, Error::LeaseId)?;
    let ms = positive(ms, Error::RenewRange)?;
    let max = crate::kinds::concurrency::MAX_LEASE_MS;
    (ms <= max).then_some((id, ms)).ok_or(Error::RenewRange)
}

/// [`parse_request`] of a call with options.
fn parse_options(args: &[&[u8]], command: Command) -> Result<Request, Error> {
    let mut request = Request::PLAIN;
    let mut cost = 0;
    let mut hold = 0;
    let mut current = LimitArgs::default();
    let mut joined = false;
    let mut rest = args;
    while let [name, tail @ ..] = rest {
        rest = tail;
        let word = Word::of(name);
        let slot = match word {
            Word::Cost if command.takes_cost() => &mut cost,
            Word::Hold if command == Command::Reserve => &mut hold,
            Word::Penalty => {
                rest = parse_penalty(tail, &mut request.penalty)?;
                continue;
            }
            Word::Limit => &mut current.limit,
            Word::Window => &mut current.window,
            Word::Burst => &mut current.burst,
            Word::And => {
                push(&mut request.inline, current.complete_before_and()?)?;
                if request.inline.is_some_and(|p| p.len() >= MAX_LIMITS) {
                    // An `AND` after the last limit a key may hold is already one too many:
                    // said at once, whatever follows (and however many arguments follow).
                    return Err(Error::TooManyLimits);
                }
                current = LimitArgs::default();
                joined = true;
                continue;
            }
            Word::Kind(kind) => {
                current.set_kind(kind)?;
                continue;
            }
            Word::WithPolicy if command == Command::Throttle => {
                if request.with_policy {
                    return Err(Error::RepeatedOption);
                }
                request.with_policy = true;
                continue;
            }
            _ => return Err(unknown(name, unknown_option(command))),
        };
        let [value, tail @ ..] = tail else {
            return Err(Error::MissingValue);
        };
        rest = tail;
        let range = match word {
            Word::Cost => Error::CostRange,
            Word::Hold => Error::HoldRange,
            Word::Limit => Error::LimitRange,
            Word::Window => Error::WindowRange,
            _ => Error::BurstRange,
        };
        set_once(slot, positive(value, range)?)?;
    }
    if cost > MAX_COST {
        return Err(Error::CostRange);
    }
    if cost > 0 {
        request.cost = cost;
    }
    if hold > MAX_HOLD_MS {
        return Err(Error::HoldRange);
    }
    request.hold_ms = (hold > 0).then_some(hold);
    if joined {
        push(&mut request.inline, current.complete_before_and()?)?;
    } else if !current.is_empty() {
        push(&mut request.inline, current.complete()?)?;
    }
    if request.penalty.is_some() && request.inline.is_none() {
        return Err(Error::PenaltyWithoutLimit);
    }
    Ok(request)
}

impl Command {
    fn takes_cost(self) -> bool {
        matches!(self, Command::Allow | Command::Throttle | Command::Acquire)
    }
}

/// `PENALTY ms [MAX max_ms]` after its keyword (`tail`), into `slot` (given once); returns
/// what follows it.
fn parse_penalty<'a, 'b>(
    tail: &'a [&'b [u8]],
    slot: &mut Option<Penalty>,
) -> Result<&'a [&'b [u8]], Error> {
    if slot.is_some() {
        return Err(Error::RepeatedOption);
    }
    let [ms, rest @ ..] = tail else {
        return Err(Error::MissingValue);
    };
    let ms = positive(ms, Error::PenaltyRange)?;
    let (max, rest) = match rest {
        [kw, rest @ ..] if Word::of(kw) == Word::Max => {
            let [max, rest @ ..] = rest else {
                return Err(Error::MissingValue);
            };
            (Some(positive(max, Error::PenaltyMaxRange)?), rest)
        }
        _ => (None, rest),
    };
    *slot = Some(Penalty::new(ms, max)?);
    Ok(rest)
}

/// The error for an unknown option of a request.
fn unknown_option(command: Command) -> Error {
    match command {
        Command::Allow => Error::UnknownAllowOption,
        Command::Throttle => Error::UnknownCheckOption,
        Command::Acquire => Error::UnknownAcquireOption,
        Command::Reserve => Error::UnknownReserveOption,
        Command::Refund => Error::UnknownRefundOption,
    }
}

/// Adds `limit` to the policy being read (the first limit starts it).
fn push(policy: &mut Option<Policy>, limit: Limit) -> Result<(), Error> {
    match policy {
        Some(p) => p.push(limit),
        None => {
            *policy = Some(Policy::single(limit));
            Ok(())
        }
    }
}

/// Parses `limit window_ms [BURST b] [KIND] [IDLE ms] [SHADOW] [AND limit window_ms [BURST b]
/// [KIND] ...]`: up to [`MAX_LIMITS`] limits joined by `AND`, each with its own burst and
/// kind; `IDLE` and `SHADOW` are the key's and may stand after any limit, once.
pub fn parse_config(args: &[&[u8]]) -> Result<Stored, Error> {
    let mut idle = 0;
    let mut shadow = false;
    let mut penalty = None;
    let mut policy: Option<Policy> = None;
    let mut rest = args;
    loop {
        let [limit, window, tail @ ..] = rest else {
            return Err(if policy.is_none() {
                Error::MissingValue
            } else {
                Error::AndWithoutPolicy
            });
        };
        if policy.is_some() && (Word::of(limit) == Word::And || Word::of(window) == Word::And) {
            return Err(Error::AndWithoutPolicy);
        }
        let mut current = LimitArgs {
            limit: positive(limit, Error::LimitRange)?,
            window: positive(window, Error::WindowRange)?,
            ..LimitArgs::default()
        };
        rest = tail;
        let mut and_follows = false;
        while let [name, tail @ ..] = rest {
            rest = tail;
            let word = Word::of(name);
            let slot = match word {
                Word::Burst => &mut current.burst,
                Word::Idle => &mut idle,
                Word::And => {
                    and_follows = true;
                    break;
                }
                Word::Shadow => {
                    if shadow {
                        return Err(Error::RepeatedOption);
                    }
                    shadow = true;
                    continue;
                }
                Word::Penalty => {
                    rest = parse_penalty(tail, &mut penalty)?;
                    continue;
                }
                Word::Kind(kind) => {
                    current.set_kind(kind)?;
                    continue;
                }
                _ => return Err(unknown(name, Error::UnknownConfigOption)),
            };
            let [value, tail @ ..] = tail else {
                return Err(Error::MissingValue);
            };
            rest = tail;
            let range = match word {
                Word::Burst => Error::BurstRange,
                _ => Error::IdleRange,
            };
            set_once(slot, positive(value, range)?)?;
        }
        push(&mut policy, current.complete()?)?;
        if !and_follows {
            break;
        }
        if policy.is_some_and(|p| p.len() >= MAX_LIMITS) {
            return Err(Error::TooManyLimits);
        }
    }
    if idle > MAX_IDLE_MS {
        return Err(Error::IdleRange);
    }
    Ok(Stored::new(policy.ok_or(Error::MissingValue)?, idle, shadow)?.with_penalty(penalty))
}

/// An argument that is a keyword of either parser, recognised with at most one
/// case-insensitive comparison (by its length and first letter) plus the kinds' keywords.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Word {
    And,
    Cost,
    Limit,
    Window,
    Burst,
    Idle,
    Shadow,
    WithPolicy,
    Penalty,
    Max,
    Hold,
    Kind(Kind),
    Other,
}

impl Word {
    #[inline]
    fn of(name: &[u8]) -> Word {
        const AND: u128 = folded_const(b"and");
        const COST: u128 = folded_const(b"cost");
        const LIMIT: u128 = folded_const(b"limit");
        const WINDOW: u128 = folded_const(b"window");
        const BURST: u128 = folded_const(b"burst");
        const IDLE: u128 = folded_const(b"idle");
        const SHADOW: u128 = folded_const(b"shadow");
        const WITHPOLICY: u128 = folded_const(b"withpolicy");
        const PENALTY: u128 = folded_const(b"penalty");
        const MAX: u128 = folded_const(b"max");
        const HOLD: u128 = folded_const(b"hold");
        let Some(f) = folded(name) else {
            return Word::Other;
        };
        // At most three comparisons: by length first.
        let word = match name.len() {
            3 if f == AND => Word::And,
            3 if f == MAX => Word::Max,
            4 if f == COST => Word::Cost,
            4 if f == IDLE => Word::Idle,
            4 if f == HOLD => Word::Hold,
            7 if f == PENALTY => Word::Penalty,
            5 if f == LIMIT => Word::Limit,
            5 if f == BURST => Word::Burst,
            6 if f == WINDOW => Word::Window,
            6 if f == SHADOW => Word::Shadow,
            10 if f == WITHPOLICY => Word::WithPolicy,
            _ => Word::Other,
        };
        match word {
            Word::Other => Kind::from_folded(f).map_or(Word::Other, Word::Kind),
            w => w,
        }
    }
}

/// A word of up to 15 bytes as one number, each byte with bit 5 set (which lowercases an
/// ASCII letter and turns no other byte into one), and its length in the top byte: two words
/// are equal case-insensitively, when one is a keyword (all letters), iff their numbers are.
/// `None` for a longer word (no keyword is).
#[inline]
pub(crate) fn folded(name: &[u8]) -> Option<u128> {
    let len = name.len();
    // The bytes in order, zero-padded, read as at most two overlapping loads (no copy of a
    // variable length): the last load's bytes already read by the first are shifted out.
    let bytes = match len {
        0 => 0,
        1..=3 => name
            .iter()
            .rev()
            .fold(0u128, |v, &b| (v << 8) | u128::from(b)),
        4..=8 => {
            let first = name
                .first_chunk::<4>()
                .map_or(0, |c| u32::from_le_bytes(*c));
            let last = name.last_chunk::<4>().map_or(0, |c| u32::from_le_bytes(*c));
            let tail = u64::from(last) >> (8 * (8 - len)); // bytes 4..len
            u128::from(u64::from(first) | (tail << 32))
        }
        9..=15 => {
            let first = name
                .first_chunk::<8>()
                .map_or(0, |c| u64::from_le_bytes(*c));
            let last = name.last_chunk::<8>().map_or(0, |c| u64::from_le_bytes(*c));
            let tail = last >> (8 * (16 - len)); // bytes 8..len
            u128::from(first) | (u128::from(tail) << 64)
        }
        _ => return None,
    };
    Some(bytes | FOLD.get(len).copied().unwrap_or(0))
}

/// Per word length: bit 5 of its bytes, and the length in the top byte (a table, so folding
/// a word costs one load for both).
const FOLD: [u128; 16] = {
    const BIT_5: u128 = 0x2020_2020_2020_2020_2020_2020_2020_2020;
    let mut table = [0u128; 16];
    let mut len = 1;
    while len < 16 {
        table[len] = (BIT_5 >> (8 * (16 - len))) | ((len as u128) << 120);
        len += 1;
    }
    table
};

/// [`folded`] of a keyword, at compile time.
pub(crate) const fn folded_const(word: &[u8]) -> u128 {
    let mut buf = [0u8; 16];
    let mut i = 0;
    while i < word.len() && i < 15 {
        buf[i] = word[i] | 0x20;
        i += 1;
    }
    buf[15] = word.len() as u8;
    u128::from_le_bytes(buf)
}

/// The error for an unknown word: `UnknownKind` when it names a rate-limiting algorithm
/// (`FIXED`, `TOKEN-BUCKET`, `SLIDING-LOG`, ...), so that the reply says which kinds exist;
/// otherwise the command's own unknown-option error.
fn unknown(name: &[u8], otherwise: Error) -> Error {
    const ALGORITHMS: [&[u8]; 4] = [b"FIXED", b"TOKEN", b"LEAKY", b"BUCKET"];
    let names_one = ALGORITHMS
        .iter()
        .copied()
        .chain(Kind::ALL.iter().map(|k| k.keyword()))
        .any(|a| name.windows(a.len()).any(|w| w.eq_ignore_ascii_case(a)));
    if names_one {
        Error::UnknownKind
    } else {
        otherwise
    }
}

/// The options of one limit while it is being read; 0: not given (every value is positive).
#[derive(Clone, Copy, Debug, Default)]
struct LimitArgs {
    limit: u64,
    window: u64,
    burst: u64,
    kind: Option<Kind>,
}

impl LimitArgs {
    fn is_empty(&self) -> bool {
        self.limit == 0 && self.window == 0 && self.burst == 0 && self.kind.is_none()
    }

    fn set_kind(&mut self, kind: Kind) -> Result<(), Error> {
        if self.kind.replace(kind).is_some() {
            return Err(Error::KindTwice);
        }
        Ok(())
    }

    /// The limit, validated by its kind (GCRA when none is named).
    fn complete(self) -> Result<Limit, Error> {
        match (self.limit, self.window, self.burst) {
            (0, 0, 1..) => Err(Error::BurstWithoutLimit),
            (0, _, _) | (_, 0, _) => Err(Error::LimitWithoutWindow),
            (limit, window, burst) => Limit::from_options(
                self.kind.unwrap_or(Kind::Gcra),
                limit,
                window,
                (burst > 0).then_some(burst),
            ),
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

/// Sets an option given once (0: not yet given).
fn set_once(slot: &mut u64, value: u64) -> Result<(), Error> {
    if *slot != 0 {
        return Err(Error::RepeatedOption);
    }
    *slot = value;
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
    // Up to 19 digits cannot overflow u64; only a 20-digit number needs checked arithmetic.
    let mut n: u64 = 0;
    if digits.len() <= 19 {
        for &d in digits {
            let d = d.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            n = n.wrapping_mul(10).wrapping_add(u64::from(d)); // < 10^19: never wraps
        }
    } else {
        for &d in digits {
            if !d.is_ascii_digit() {
                return None;
            }
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        }
    }
    Some(if negative {
        Integer::Negative
    } else {
        Integer::Positive(n)
    })
}

/// A non-negative integer in Redis's strict syntax (for stored and replicated fields).
pub fn natural(b: &[u8]) -> Option<u64> {
    match parse_integer(b)? {
        Integer::Positive(v) => Some(v),
        Integer::Negative => None,
    }
}

#[cfg(test)]
#[path = "args_tests.rs"]
mod tests;
