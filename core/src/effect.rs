//! The effect `RL.ALLOW`, `RL.CONFIG` and `RL.RESET` send to replicas and the AOF, and the
//! internal command that applies it: `RL.APPLY key state [POLICY limit window_ms burst
//! idle_ms flags]`.
//!
//! `state` is one argument, `<tat_ms>[+<frac>/<den>][@<expire_at_ms>]`: the TAT as an exact
//! fraction of a ms and the key's absolute expiry, if any (`1764287000123+1/3@1764287000124`).
//! One argument because every argument of a replicated command costs Redis an object to
//! build and free on the hot path (four numeric arguments doubled `RL.ALLOW`'s cost); text
//! because an AOF should stay readable. It is written into a stack buffer, with no allocation.
//!
//! Parsing is as strict as an RDB load: whatever arrives from the replication link or an AOF
//! must describe a state the commands could have produced.
//!
//! PURE: no Redis types here.

use crate::args::{parse_integer, Integer};
use crate::error::Error;
use crate::gcra::Tat;
use crate::policy::StoredPolicy;

/// Latest expiry `RL.APPLY` accepts, in Unix ms: any that Redis can hold. Not only a TAT or
/// an idle deadline: a configured key without IDLE keeps a user's TTL (`PEXPIREAT k
/// 9223372036854775807`, `RESTORE ... ABSTTL`), and whatever the master stores, its
/// replicas and its AOF must accept.
pub const MAX_EXPIRE_AT_MS: u64 = i64::MAX as u64;

/// The state carried by `RL.APPLY`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Apply {
    pub tat: Tat,
    /// Absolute expiry in Unix ms; `None`: the key has none.
    pub expire_at_ms: Option<u64>,
    /// Present when the policy is set too.
    pub stored: Option<StoredPolicy>,
}

/// Parses the arguments after the key.
pub fn parse_apply(args: &[&[u8]]) -> Result<Apply, Error> {
    let (state, policy) = match args {
        // Redis checks the registered arity (-3) for clients, but Redis 7.0's AOF loader
        // does not: a line with no state gets the arity error Redis itself would give.
        [] => return Err(Error::WrongArity),
        [state] => (state, None),
        [state, kw, limit, window, burst, idle, flags] if kw.eq_ignore_ascii_case(b"POLICY") => {
            (state, Some([limit, window, burst, idle, flags]))
        }
        _ => return Err(Error::ApplyInvalid),
    };
    let (tat, expire_at_ms) = parse_state(state).ok_or(Error::ApplyInvalid)?;
    let stored = match policy {
        None => None,
        Some(fields) => {
            let mut v = [0u64; 5];
            for (slot, f) in v.iter_mut().zip(fields) {
                *slot = natural(f).ok_or(Error::ApplyInvalid)?;
            }
            Some(StoredPolicy::from_fields(v).ok_or(Error::ApplyInvalid)?)
        }
    };
    Ok(Apply {
        tat,
        expire_at_ms,
        stored,
    })
}

/// `<tat_ms>[+<frac>/<den>][@<expire_at_ms>]`.
fn parse_state(s: &[u8]) -> Option<(Tat, Option<u64>)> {
    let (tat, expire) = split_expiry(s)?;
    Some((parse_tat(tat)?, expire))
}

/// A state's text and its `@<expire_at_ms>`, if any: any expiry Redis can hold (1 to
/// [`MAX_EXPIRE_AT_MS`]). Shared with the set form (`state.rs`).
pub(crate) fn split_expiry(s: &[u8]) -> Option<(&[u8], Option<u64>)> {
    match s.iter().position(|&b| b == b'@') {
        None => Some((s, None)),
        Some(i) => {
            let e = natural(&s[i + 1..])?;
            (1..=MAX_EXPIRE_AT_MS)
                .contains(&e)
                .then_some((&s[..i], Some(e)))
        }
    }
}

/// `<tat_ms>[+<frac>/<den>]`, as [`StateText`] writes it (a fraction is never 0: that form
/// has no `+`). Shared with the set form (`state.rs`).
pub(crate) fn parse_tat(s: &[u8]) -> Option<Tat> {
    match s.iter().position(|&b| b == b'+') {
        None => Tat::new(natural(s)?, 0, 1),
        Some(i) => {
            let fraction = &s[i + 1..];
            let slash = fraction.iter().position(|&b| b == b'/')?;
            let frac = natural(&fraction[..slash])?;
            if frac == 0 {
                return None;
            }
            Tat::new(natural(&s[..i])?, frac, natural(&fraction[slash + 1..])?)
        }
    }
}

/// A non-negative integer in Redis's strict syntax.
pub(crate) fn natural(b: &[u8]) -> Option<u64> {
    match parse_integer(b)? {
        Integer::Positive(v) => Some(v),
        Integer::Negative => None,
    }
}

/// A state's text in a stack buffer (at most 20 + 1 + 10 + 1 + 10 + 1 + 20 bytes).
pub struct StateText {
    buf: [u8; 64],
    len: usize,
}

impl StateText {
    pub fn new(tat: Tat, expire_at_ms: Option<u64>) -> StateText {
        let mut t = StateText {
            buf: [0; 64],
            len: 0,
        };
        t.number(tat.ms());
        if tat.frac() > 0 {
            t.byte(b'+');
            t.number(tat.frac());
            t.byte(b'/');
            t.number(tat.den());
        }
        if let Some(e) = expire_at_ms {
            t.byte(b'@');
            t.number(e);
        }
        t
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn byte(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    /// Decimal digits, two at a time from a table: this runs on every replicated request.
    fn number(&mut self, mut v: u64) {
        const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
            2021222324252627282930313233343536373839\
            4041424344454647484950515253545556575859\
            6061626364656667686970717273747576777879\
            8081828384858687888990919293949596979899";
        let mut tmp = [0u8; 20];
        let mut i = tmp.len();
        while v >= 100 {
            // v % 100 < 100: the cast cannot truncate.
            let pair = 2 * (v % 100) as usize;
            v /= 100;
            i -= 2;
            tmp[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        }
        if v >= 10 {
            let pair = 2 * v as usize;
            i -= 2;
            tmp[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        } else {
            i -= 1;
            tmp[i] = b'0' + v as u8;
        }
        let digits = &tmp[i..];
        if let Some(dst) = self.buf.get_mut(self.len..self.len + digits.len()) {
            dst.copy_from_slice(digits);
            self.len += digits.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gcra::MAX_TAT_MS;
    use crate::policy::{Policy, MAX_LIMIT};
    use proptest::prelude::*;

    fn apply(a: &[&str]) -> Result<Apply, Error> {
        let v: Vec<&[u8]> = a.iter().map(|s| s.as_bytes()).collect();
        parse_apply(&v)
    }

    #[test]
    fn reads_the_three_forms_of_state() {
        let got = apply(&["1700000000000+2/3@1700000000001"]).unwrap();
        assert_eq!(got.tat, Tat::new(1_700_000_000_000, 2, 3).unwrap());
        assert_eq!(got.expire_at_ms, Some(1_700_000_000_001));
        let got = apply(&["1700000000000"]).unwrap();
        assert_eq!(
            (got.tat, got.expire_at_ms),
            (Tat::new(1_700_000_000_000, 0, 1).unwrap(), None)
        );
        let got = apply(&["0@5"]).unwrap();
        assert_eq!((got.tat, got.expire_at_ms), (Tat::EMPTY, Some(5)));
    }

    #[test]
    fn reads_a_policy_with_its_shadow_flag() {
        let stored = apply(&["5", "POLICY", "10", "1000", "20", "0", "1"])
            .unwrap()
            .stored
            .unwrap();
        assert_eq!(
            (stored.policy, stored.shadow),
            (Policy::new(10, 1000, 20).unwrap(), true)
        );
    }

    #[test]
    fn refuses_anything_the_commands_cannot_produce() {
        let bad: [&[&str]; 16] = [
            &["1+3/3"],          // frac >= den
            &["1+0/5"],          // a zero fraction is written without "+"
            &["1+1/0"],          // den 0
            &["1+1/1000000001"], // den above MAX_LIMIT
            &["-1"],             // negative
            &["1@0"],            // expiry 0
            &["1@"],
            &["1+1"],
            &["1+/2"],
            &["01"], // not Redis integer syntax
            &["1 "],
            &["1152921504606846977"],                      // TAT past 2^60
            &["1", "POLICY", "10", "1000", "0", "0", "0"], // burst 0
            &["1", "POLICY", "10", "1000", "5", "0", "2"], // unknown flag
            &["1", "NOPE", "10", "1000", "5", "0", "0"],
            &["1", "2", "3", "4"], // the old four-number form
        ];
        for b in bad {
            assert_eq!(apply(b), Err(Error::ApplyInvalid), "{b:?}");
        }
    }

    #[test]
    fn a_line_without_a_state_is_an_arity_error() {
        assert_eq!(apply(&[]), Err(Error::WrongArity));
    }

    #[test]
    fn accepts_any_expiry_redis_can_hold() {
        // A user's PEXPIREAT on a configured key, kept by RL.ALLOW and RL.RESET.
        let got = apply(&["5@9223372036854775807"]).unwrap();
        assert_eq!(got.expire_at_ms, Some(i64::MAX as u64));
        assert_eq!(apply(&["5@9223372036854775808"]), Err(Error::ApplyInvalid));
        assert_eq!(apply(&["5@0"]), Err(Error::ApplyInvalid));
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        for v in [0u64, 7, 10, 99, 100, 101, 1_700_000_000_123, u64::MAX] {
            let t = StateText::new(Tat::new(v.min(MAX_TAT_MS), 0, 1).unwrap(), Some(v.max(1)));
            let want = format!("{}@{}", v.min(MAX_TAT_MS), v.max(1));
            assert_eq!(t.as_bytes(), want.as_bytes());
        }
    }

    proptest! {
        /// Every state the module writes reads back exactly.
        #[test]
        fn text_round_trips(ms in 0u64..=MAX_TAT_MS, den in 1u64..=MAX_LIMIT, seed in any::<u64>(), exp in prop::option::of(1u64..=MAX_EXPIRE_AT_MS)) {
            let tat = Tat::new(ms, seed % den, den).unwrap().reduced();
            let text = StateText::new(tat, exp);
            prop_assert!(text.as_bytes().len() <= 64);
            prop_assert_eq!(parse_state(text.as_bytes()), Some((tat, exp)));
        }

        #[test]
        fn parsing_is_total(bytes in prop::collection::vec(prop_oneof![Just(b'+'), Just(b'/'), Just(b'@'), b'0'..=b'9', any::<u8>()], 0..48)) {
            let _ = parse_state(&bytes);
        }
    }
}
