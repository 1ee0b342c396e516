//! Specification of the two parsers: table-driven cases (every error the README documents),
//! the kinds and `AND`, `WITHPOLICY`, and property tests: total on arbitrary bytes, and every
//! call of the syntax before several limits answered exactly as before (a reference copy of
//! the old single-limit parsers is kept here for that).

use super::*;
use crate::kinds::gcra::{Gcra, MAX_BURST};
use crate::kinds::sliding::Sliding;
use proptest::prelude::*;

fn allow(args: &[&str]) -> Result<Request, Error> {
    let v: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    parse_request(&v, Command::Allow)
}

fn throttle(args: &[&str]) -> Result<Request, Error> {
    let v: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    parse_request(&v, Command::Throttle)
}

fn config(args: &[&str]) -> Result<Stored, Error> {
    let v: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    parse_config(&v)
}

fn gcra(l: u64, w: u64, b: u64) -> Limit {
    Limit::Gcra(Gcra::new(l, w, b).unwrap())
}

fn sliding(l: u64, w: u64) -> Limit {
    Limit::Sliding(Sliding::new(l, w).unwrap())
}

fn single(l: u64, w: u64, b: u64) -> Policy {
    Policy::single(gcra(l, w, b))
}
#[test]
fn integers_follow_redis_syntax() {
    let cases: &[(&str, Option<Integer>)] = &[
        ("0", Some(Integer::Positive(0))),
        ("7", Some(Integer::Positive(7))),
        ("18446744073709551615", Some(Integer::Positive(u64::MAX))),
        ("18446744073709551616", None),
        ("-3", Some(Integer::Negative)),
        ("-0", None),
        ("007", None),
        ("+7", None),
        (" 7", None),
        ("7 ", None),
        ("7.0", None),
        ("1e3", None),
        ("", None),
        ("-", None),
    ];
    for (text, want) in cases {
        assert_eq!(parse_integer(text.as_bytes()), *want, "{text:?}");
    }
}

#[test]
fn allow_defaults_to_cost_one_and_no_inline_policy() {
    assert_eq!(
        allow(&[]),
        Ok(Request {
            cost: 1,
            inline: None,
            with_policy: false,
            penalty: None,
            hold_ms: None,
        })
    );
}

#[test]
fn allow_reads_options_in_any_order_and_any_case() {
    let got = allow(&["burst", "5", "Window", "1000", "COST", "2", "limit", "3"]).unwrap();
    assert_eq!(got.cost, 2);
    assert_eq!(got.inline, Some(single(3, 1000, 5)));
}
#[test]
fn allow_rejects_bad_calls_with_the_matching_error() {
    let cases: &[(&[&str], Error)] = &[
        (&["COST", "0"], Error::CostRange),
        (&["COST", "-1"], Error::CostRange),
        (&["COST", "x"], Error::CostRange),
        (&["COST", "1000000001"], Error::CostRange),
        (&["COST", "99999999999999999999999"], Error::CostRange),
        (&["COST"], Error::MissingValue),
        (&["COST", "1", "COST", "2"], Error::RepeatedOption),
        (&["FOO", "1"], Error::UnknownAllowOption),
        (&["FOO"], Error::UnknownAllowOption),
        (&["LIMIT", "10"], Error::LimitWithoutWindow),
        (&["WINDOW", "10"], Error::LimitWithoutWindow),
        (&["BURST", "10"], Error::BurstWithoutLimit),
        (&["LIMIT", "0", "WINDOW", "10"], Error::LimitRange),
        (&["LIMIT", "10", "WINDOW", "0"], Error::WindowRange),
        (
            &["LIMIT", "10", "WINDOW", "10", "BURST", "0"],
            Error::BurstRange,
        ),
        (
            &["LIMIT", "1", "WINDOW", "1000000000000", "BURST", "1000"],
            Error::DrainTooLong,
        ),
        (
            &["LIMIT", "1", "WINDOW", "1", "LIMIT", "1"],
            Error::RepeatedOption,
        ),
    ];
    for (args, want) in cases {
        assert_eq!(allow(args), Err(*want), "{args:?}");
    }
}

#[test]
fn config_reads_policy_burst_and_idle() {
    let got = config(&["10", "60000", "IDLE", "5000", "burst", "20"]).unwrap();
    assert_eq!(got.policy, single(10, 60_000, 20));
    assert_eq!(got.idle_ms, 5000);
    assert_eq!(config(&["10", "60000"]).unwrap().idle_ms, 0);
    assert!(!config(&["10", "60000"]).unwrap().shadow);
    assert!(
        config(&["10", "60000", "shadow", "IDLE", "5"])
            .unwrap()
            .shadow
    );
    assert!(
        config(&["10", "60000", "IDLE", "5", "SHADOW"])
            .unwrap()
            .shadow
    );
}

#[test]
fn config_rejects_bad_calls_with_the_matching_error() {
    let big = (MAX_BURST + 1).to_string();
    let cases: &[(&[&str], Error)] = &[
        (&["0", "1000"], Error::LimitRange),
        (&["-5", "1000"], Error::LimitRange),
        (&["ten", "1000"], Error::LimitRange),
        (&["10", "0"], Error::WindowRange),
        (&["10", "1.5"], Error::WindowRange),
        (&["10", "1000", "BURST", "0"], Error::BurstRange),
        (&["10", "1000", "BURST", &big], Error::BurstRange),
        (&["10", "1000", "IDLE", "0"], Error::IdleRange),
        (&["10", "1000", "IDLE", "1000000000001"], Error::IdleRange),
        (&["10", "1000", "IDLE"], Error::MissingValue),
        (
            &["10", "1000", "IDLE", "1", "IDLE", "2"],
            Error::RepeatedOption,
        ),
        (&["10", "1000", "COST", "1"], Error::UnknownConfigOption),
        (&["10", "1000", "SHADOW", "SHADOW"], Error::RepeatedOption),
        (&["10", "1000", "extra"], Error::UnknownConfigOption),
        (&["10"], Error::MissingValue),
    ];
    for (args, want) in cases {
        assert_eq!(config(args), Err(*want), "{args:?}");
    }
}

proptest! {
    #[test]
    fn parsers_are_total_on_arbitrary_bytes(args in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..24), 0..10)) {
        let v: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
        let _ = parse_request(&v, Command::Allow);
        let _ = parse_request(&v, Command::Throttle);
        let _ = parse_config(&v);
    }

    #[test]
    fn every_u64_round_trips(n in any::<u64>()) {
        prop_assert_eq!(parse_integer(n.to_string().as_bytes()), Some(Integer::Positive(n)));
    }

    /// Strings of digits (and a stray byte) around the 19- and 20-digit boundary parse as
    /// the standard library parses them, under Redis's stricter syntax.
    #[test]
    fn digit_strings_parse_as_the_standard_library_does(
        digits in "-?[0-9]{1,21}[0-9a/:]?",
    ) {
        let strict = !digits.trim_start_matches('-').starts_with('0') || digits == "0";
        let want = match digits.parse::<i128>() {
            // A magnitude beyond u64 is refused whatever its sign.
            Ok(v) if strict && v < 0 && !digits.starts_with("-0") => {
                u64::try_from(-v).ok().map(|_| Integer::Negative)
            }
            Ok(v) if strict && v >= 0 && !digits.starts_with('-') => u64::try_from(v).ok().map(Integer::Positive),
            _ => None,
        };
        prop_assert_eq!(parse_integer(digits.as_bytes()), want, "{:?}", digits);
    }
}

#[test]
fn config_set_reads_kinds_and_limits_joined_by_and() {
    let cases: &[(&[&str], &[Limit], u64, bool)] = &[
        (&["10", "1000"], &[gcra(10, 1000, 0)], 0, false),
        (&["10", "1000", "gcra"], &[gcra(10, 1000, 0)], 0, false),
        (&["10", "1000", "SLIDING"], &[sliding(10, 1000)], 0, false),
        (
            &["10", "1000", "AND", "1000", "86400000"],
            &[gcra(10, 1000, 0), gcra(1000, 86_400_000, 0)],
            0,
            false,
        ),
        (
            &[
                "10", "1000", "sliding", "IDLE", "5", "and", "1000", "86400000", "BURST", "50",
                "SHADOW",
            ],
            &[sliding(10, 1000), gcra(1000, 86_400_000, 50)],
            5,
            true,
        ),
        (
            &[
                "1", "1", "AND", "2", "2", "SLIDING", "AND", "3", "3", "AND", "4", "4",
            ],
            &[gcra(1, 1, 0), sliding(2, 2), gcra(3, 3, 0), gcra(4, 4, 0)],
            0,
            false,
        ),
    ];
    for (args, limits, idle, shadow) in cases {
        let got = config(args).unwrap();
        assert_eq!(got.policy.limits(), *limits, "{args:?}");
        assert_eq!((got.idle_ms, got.shadow), (*idle, *shadow), "{args:?}");
    }
}

#[test]
fn config_set_rejects_bad_calls_with_specific_errors() {
    let cases: &[(&[&str], Error)] = &[
        (&["10", "1000", "AND"], Error::AndWithoutPolicy),
        (&["10", "1000", "AND", "5"], Error::AndWithoutPolicy),
        (
            &["10", "1000", "AND", "AND", "5", "5"],
            Error::AndWithoutPolicy,
        ),
        (&["10", "1000", "AND", "5", "AND"], Error::AndWithoutPolicy),
        (
            &[
                "1", "1", "AND", "2", "2", "AND", "3", "3", "AND", "4", "4", "AND", "5", "5",
            ],
            Error::TooManyLimits,
        ),
        (&["1001", "1000", "SLIDING"], Error::SlidingLimitRange),
        (&["10", "4294967296", "SLIDING"], Error::SlidingWindowRange),
        (
            &["10", "1000", "SLIDING", "BURST", "5"],
            Error::SlidingBurst,
        ),
        (&["10", "1000", "SLIDING", "GCRA"], Error::KindTwice),
        (&["10", "1000", "SLIDING", "SLIDING"], Error::KindTwice),
        (&["10", "1000", "FIXED"], Error::UnknownKind),
        (&["10", "1000", "token-bucket"], Error::UnknownKind),
        (&["10", "1000", "Sliding-Log"], Error::UnknownKind),
        (
            &["10", "1000", "IDLE", "5", "AND", "1", "1", "IDLE", "5"],
            Error::RepeatedOption,
        ),
        (
            &["10", "1000", "SHADOW", "AND", "1", "1", "SHADOW"],
            Error::RepeatedOption,
        ),
        (&["10", "1000", "AND", "0", "5"], Error::LimitRange),
        (&["10", "1000", "AND", "5", "0"], Error::WindowRange),
        (
            &["10", "1000", "AND", "5", "5", "BURST"],
            Error::MissingValue,
        ),
        (
            &["10", "1000", "AND", "1", "1000000000000", "BURST", "1000"],
            Error::DrainTooLong,
        ),
    ];
    for (args, want) in cases {
        assert_eq!(config(args), Err(*want), "{args:?}");
    }
}

#[test]
fn allow_set_reads_inline_kinds_and_limits_joined_by_and() {
    let got = allow(&["LIMIT", "10", "WINDOW", "1000", "SLIDING", "COST", "2"]).unwrap();
    assert_eq!(
        (got.cost, got.inline.unwrap().limits()),
        (2, [sliding(10, 1000)].as_slice())
    );
    let got = allow(&[
        "LIMIT", "10", "WINDOW", "1000", "AND", "sliding", "window", "86400000", "limit", "1000",
        "COST", "3",
    ])
    .unwrap();
    assert_eq!(got.cost, 3);
    assert_eq!(
        got.inline.unwrap().limits(),
        [gcra(10, 1000, 0), sliding(1000, 86_400_000)].as_slice()
    );
    assert_eq!(
        allow(&["COST", "4"]).unwrap(),
        Request {
            cost: 4,
            inline: None,
            with_policy: false,
            penalty: None,
            hold_ms: None,
        }
    );
}

#[test]
fn allow_set_rejects_bad_calls_with_specific_errors() {
    let cases: &[(&[&str], Error)] = &[
        (
            &["LIMIT", "1", "WINDOW", "1", "AND"],
            Error::AndWithoutPolicy,
        ),
        (
            &["AND", "LIMIT", "1", "WINDOW", "1"],
            Error::AndWithoutPolicy,
        ),
        (
            &["COST", "2", "AND", "LIMIT", "1", "WINDOW", "1"],
            Error::AndWithoutPolicy,
        ),
        (
            &["LIMIT", "1", "WINDOW", "1", "AND", "COST", "2"],
            Error::AndWithoutPolicy,
        ),
        (
            &["LIMIT", "1", "WINDOW", "1", "AND", "LIMIT", "2"],
            Error::LimitWithoutWindow,
        ),
        (
            &["LIMIT", "1", "WINDOW", "1", "AND", "BURST", "2"],
            Error::BurstWithoutLimit,
        ),
        (&["SLIDING"], Error::LimitWithoutWindow),
        (
            &["LIMIT", "5000", "WINDOW", "1", "SLIDING"],
            Error::SlidingLimitRange,
        ),
        (
            &["LIMIT", "5", "WINDOW", "1", "SLIDING", "BURST", "5"],
            Error::SlidingBurst,
        ),
        (
            &["LIMIT", "5", "WINDOW", "1", "GCRA", "SLIDING"],
            Error::KindTwice,
        ),
        (&["LIMIT", "5", "WINDOW", "1", "FIXED"], Error::UnknownKind),
        (
            &["LIMIT", "5", "WINDOW", "1", "TOKENBUCKET", "1"],
            Error::UnknownKind,
        ),
        (&["COST", "1", "AND", "COST", "2"], Error::AndWithoutPolicy),
        (
            &[
                "LIMIT", "1", "WINDOW", "1", "COST", "1", "AND", "LIMIT", "1", "WINDOW", "1",
                "COST", "2",
            ],
            Error::RepeatedOption,
        ),
        (
            &[
                "LIMIT", "1", "WINDOW", "1", "AND", "LIMIT", "1", "WINDOW", "1", "AND", "LIMIT",
                "1", "WINDOW", "1", "AND", "LIMIT", "1", "WINDOW", "1", "AND", "LIMIT", "1",
                "WINDOW", "1",
            ],
            Error::TooManyLimits,
        ),
    ];
    for (args, want) in cases {
        assert_eq!(allow(args), Err(*want), "{args:?}");
    }
}

#[test]
fn withpolicy_is_an_option_of_throttle_and_peek_only() {
    let got = throttle(&["WITHPOLICY", "LIMIT", "1", "WINDOW", "1000", "withpolicy"]);
    assert_eq!(got, Err(Error::RepeatedOption));
    let got = throttle(&["LIMIT", "1", "WINDOW", "1000", "WithPolicy", "COST", "2"]).unwrap();
    assert_eq!(
        (got.cost, got.with_policy, got.inline),
        (2, true, Some(single(1, 1000, 0)))
    );
    assert_eq!(allow(&["WITHPOLICY"]), Err(Error::UnknownAllowOption));
    assert_eq!(throttle(&["NOPE"]), Err(Error::UnknownCheckOption));
    assert_eq!(throttle(&["NOPE", "1"]), Err(Error::UnknownCheckOption));
}

#[test]
fn a_fifth_limit_is_refused_as_soon_as_it_is_joined() {
    let limit = ["LIMIT", "1", "WINDOW", "60000", "BURST", "1", "GCRA"];
    let mut five: Vec<&str> = vec!["COST", "1"];
    for i in 0..5 {
        if i > 0 {
            five.push("AND");
        }
        five.extend(limit);
    }
    assert_eq!(allow(&five), Err(Error::TooManyLimits));
    // The longest valid call: four limits with every option, COST and WITHPOLICY.
    let longest: Vec<&str> = five[..2 + 4 * 7 + 3]
        .iter()
        .copied()
        .chain(["WITHPOLICY"])
        .collect();
    assert_eq!(longest.len(), 34);
    assert!(throttle(&longest).is_ok());
    // Whatever follows the fourth AND.
    let mut junk = five[..2 + 4 * 7 + 3].to_vec();
    junk.extend(["AND", "FOO"]);
    assert_eq!(allow(&junk), Err(Error::TooManyLimits));
    let c = [
        "1", "1", "AND", "2", "2", "AND", "3", "3", "AND", "4", "4", "AND", "x",
    ];
    assert_eq!(config(&c), Err(Error::TooManyLimits));
}

/// The parsers as they were before several limits (issue 11): the reference every old call
/// must still be answered by, exactly.
mod before {
    use super::super::positive;
    use crate::error::Error;
    use crate::kinds::gcra::Gcra;
    use crate::kinds::Limit;
    use crate::policy::{Policy, Stored, MAX_COST, MAX_IDLE_MS};

    fn set_once(slot: &mut Option<u64>, value: u64) -> Result<(), Error> {
        if slot.replace(value).is_some() {
            return Err(Error::RepeatedOption);
        }
        Ok(())
    }

    fn is_option(name: &[u8], options: &[&[u8]]) -> bool {
        options.iter().any(|o| name.eq_ignore_ascii_case(o))
    }

    pub fn parse_allow(args: &[&[u8]]) -> Result<(u64, Option<Policy>), Error> {
        let (mut cost, mut limit, mut window, mut burst) = (None, None, None, None);
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
            (Some(l), Some(w), b) => Some(Policy::single(Limit::Gcra(Gcra::new(
                l,
                w,
                b.unwrap_or(0),
            )?))),
            _ => return Err(Error::LimitWithoutWindow),
        };
        Ok((cost, inline))
    }

    pub fn parse_config(args: &[&[u8]]) -> Result<Stored, Error> {
        let [limit, window, options @ ..] = args else {
            return Err(Error::MissingValue);
        };
        let limit = positive(limit, Error::LimitRange)?;
        let window = positive(window, Error::WindowRange)?;
        let (mut burst, mut idle, mut shadow) = (None, None, false);
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
        let g = Gcra::new(limit, window, burst.unwrap_or(0))?;
        Stored::new(Policy::single(Limit::Gcra(g)), idle, shadow)
    }
}

/// Words of the old syntax (and numbers) from which the equivalence tests build calls.
fn old_words() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(
        prop_oneof![
            prop::sample::select(vec![
                "COST", "LIMIT", "WINDOW", "BURST", "IDLE", "SHADOW", "limit", "FOO"
            ])
            .prop_map(String::from),
            prop::sample::select(vec![
                "0",
                "1",
                "7",
                "1000",
                "-1",
                "x",
                "1000000000000",
                "99999999999"
            ])
            .prop_map(String::from),
        ],
        0..9,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Without the new words the parsers accept and answer exactly what the old ones did:
    /// every existing call keeps its meaning and its error.
    #[test]
    fn the_parsers_answer_every_old_call_as_before(words in old_words()) {
        let args: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        let new = parse_request(&args, Command::Allow).map(|r| (r.cost, r.inline));
        prop_assert_eq!(before::parse_allow(&args), new);
        prop_assert_eq!(before::parse_config(&args), parse_config(&args));
    }

    #[test]
    fn the_new_parsers_are_total(args in prop::collection::vec(prop_oneof![
        prop::sample::select(vec!["AND", "SLIDING", "GCRA", "LIMIT", "WINDOW", "BURST", "COST", "IDLE", "SHADOW", "WITHPOLICY", "1", "10", "1000"]).prop_map(|s| s.as_bytes().to_vec()),
        prop::collection::vec(any::<u8>(), 0..8),
    ], 0..16)) {
        let v: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
        if let Ok(a) = parse_request(&v, Command::Throttle) {
            prop_assert!(a.inline.is_none_or(|l| (1..=MAX_LIMITS).contains(&l.len())));
        }
        if let Ok(c) = parse_config(&v) {
            prop_assert!((1..=MAX_LIMITS).contains(&c.policy.len()));
        }
    }
}

const KEYWORDS: [&str; 10] = [
    "and",
    "cost",
    "limit",
    "window",
    "burst",
    "idle",
    "shadow",
    "withpolicy",
    "gcra",
    "sliding",
];

/// A keyword in random case, sometimes with one byte changed, cut or extended.
fn near_keyword() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(KEYWORDS.to_vec()),
        prop::collection::vec(any::<bool>(), 10),
        any::<u8>(),
        0usize..12,
        0u8..4,
    )
        .prop_map(|(k, upper, byte, at, change)| {
            let mut w: Vec<u8> = k
                .bytes()
                .zip(upper)
                .map(|(b, u)| if u { b.to_ascii_uppercase() } else { b })
                .collect();
            match change {
                1 if at < w.len() => w[at] = byte,
                2 => w.truncate(at),
                3 => w.push(byte),
                _ => {}
            }
            w
        })
}

proptest! {
    /// Folding a word for the keyword lookup is a case-insensitive comparison with every
    /// keyword, whatever the bytes.
    #[test]
    fn folded_words_compare_as_case_insensitive_keywords(word in prop_oneof![near_keyword(), prop::collection::vec(any::<u8>(), 0..18)]) {
        for keyword in KEYWORDS {
            let same = word.eq_ignore_ascii_case(keyword.as_bytes());
            prop_assert_eq!(folded(&word) == Some(folded_const(keyword.as_bytes())), same, "{:?} {}", word, keyword);
        }
    }
}

proptest! {
    /// The two overlapping loads of [`folded`] read a word exactly as copying it into a
    /// zero-padded buffer does (what the folding is defined as).
    #[test]
    fn folded_reads_a_word_as_a_padded_buffer(word in prop::collection::vec(any::<u8>(), 0..18)) {
        let want = (word.len() < 16).then(|| {
            let mut buf = [0u8; 16];
            buf[..word.len()].copy_from_slice(&word);
            for b in &mut buf[..word.len()] {
                *b |= 0x20;
            }
            buf[15] = word.len() as u8;
            u128::from_le_bytes(buf)
        });
        prop_assert_eq!(folded(&word), want);
    }
}

/// The module answers a call with no options with `Request::PLAIN` without parsing: it must be
/// what every check's parser returns for no arguments.
#[test]
fn no_options_is_the_plain_request() {
    for command in [Command::Allow, Command::Throttle, Command::Acquire] {
        assert_eq!(parse_request(&[], command), Ok(Request::PLAIN));
    }
    assert_eq!(Request::PLAIN.cost, 1);
    assert_eq!(Request::PLAIN.inline, None);
}
