use super::*;
use crate::policy::MAX_BURST;
use proptest::prelude::*;

fn allow(args: &[&str]) -> Result<AllowArgs, Error> {
    let v: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    parse_allow(&v)
}

fn config(args: &[&str]) -> Result<StoredPolicy, Error> {
    let v: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    parse_config(&v)
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
        Ok(AllowArgs {
            cost: 1,
            inline: None
        })
    );
}

#[test]
fn allow_reads_options_in_any_order_and_any_case() {
    let got = allow(&["burst", "5", "Window", "1000", "COST", "2", "limit", "3"]).unwrap();
    assert_eq!(got.cost, 2);
    assert_eq!(got.inline, Some(Policy::new(3, 1000, 5).unwrap()));
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
    assert_eq!(got.policy, Policy::new(10, 60_000, 20).unwrap());
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
        let _ = parse_allow(&v);
        let _ = parse_config(&v);
    }

    #[test]
    fn every_u64_round_trips(n in any::<u64>()) {
        prop_assert_eq!(parse_integer(n.to_string().as_bytes()), Some(Integer::Positive(n)));
    }
}
