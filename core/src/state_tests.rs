//! The version-2 encoding and the set form of `RL.APPLY`: round trips of every state the
//! commands produce, version-1 compatibility, and refusal of everything else.

use super::*;
use crate::effect::MAX_EXPIRE_AT_MS;
use crate::limits;
use crate::policy::MAX_LIMIT;
use proptest::prelude::*;

fn decode_all(fields: &[u64]) -> Option<SetState> {
    let mut it = fields.iter().copied();
    let got = decode(|| it.next());
    // Every field is consumed by an accepted state.
    got.filter(|_| it.next().is_none())
}

fn apply_args(state: &[u8], limits: Option<&[u8]>) -> Option<ApplySet> {
    match limits {
        None => parse_apply_set(&[state]),
        Some(l) => parse_apply_set(&[state, b"LIMITS", l]),
    }
}

fn sliding(l: u64, w: u64) -> Limit {
    Limit::Sliding(Sliding::new(l, w).unwrap())
}

fn gcra(l: u64, w: u64, b: u64) -> Limit {
    Limit::Gcra(Policy::new(l, w, b).unwrap())
}

/// A state as the commands build it: a trace of requests against a set.
fn traced(
    set: &[Limit],
    trace: &[(u64, u64)],
    stored: bool,
    idle_ms: u64,
    shadow: bool,
) -> SetState {
    let limits = Limits::new(set).unwrap();
    let mut usage = Vec::new();
    let mut now = 1_700_000_000_000;
    limits::align(&limits, &mut usage, now);
    for &(gap, cost) in trace {
        now += gap;
        limits::decide(&limits, &mut usage, now, cost);
    }
    let stored = stored.then_some(StoredLimits {
        limits,
        idle_ms,
        shadow,
    });
    SetState::new(usage, stored).unwrap()
}

#[test]
fn a_single_gcra_key_keeps_version_1s_fields() {
    let tat = Tat::new(1_700_000_000_000, 1, 3).unwrap();
    let stored = StoredPolicy::from_fields([10, 1000, 20, 5, 1]).unwrap();
    for s in [None, Some(stored)] {
        let state = SetState::from_legacy(tat, s);
        let (f, n) = codec::encode(tat, s);
        assert_eq!(encode(&state), f[..n].to_vec());
        assert_eq!(decode_all(&f[..n]), Some(state));
    }
}

#[test]
fn a_set_round_trips_through_rdb_fields_and_apply_text() {
    let state = traced(
        &[sliding(10, 60_000), gcra(1000, 86_400_000, 0)],
        &[(0, 3), (250, 1), (0, 2)],
        true,
        5000,
        true,
    );
    let f = encode(&state);
    assert_eq!(&f[..5], &[0, 0, 1, KIND_SET, 2]);
    assert_eq!(decode_all(&f), Some(state.clone()));
    let (text, policy) = apply_text(&state, Some(1_700_000_060_250), true, &[]);
    assert_eq!(
        std::str::from_utf8(&text).unwrap(),
        "S1700000000000x3:250x3,1700000518400@1700000060250"
    );
    assert_eq!(
        std::str::from_utf8(policy.as_deref().unwrap()).unwrap(),
        "s10:60000,g1000:86400000:1000;5000;1"
    );
    let got = apply_args(&text, policy.as_deref()).unwrap();
    assert_eq!(
        (got.usage, got.stored, got.expire_at_ms),
        (state.usage, state.stored, Some(1_700_000_060_250))
    );
}

#[test]
fn decoding_refuses_what_no_command_writes() {
    let log = [1, 100, 2, 0, 3, 7, 1]; // SLIDING usage: base 100, (0,3), (7,1)
    let with = |tail: &[u64]| [&[0, 0, 1, KIND_SET, 1][..], &log, tail].concat();
    assert!(decode_all(&with(&[0])).is_some());
    assert!(decode_all(&with(&[1, 1, 10, 1000, 10, 0, 0])).is_some());
    let bad: Vec<(Vec<u64>, &str)> = vec![
        (
            [&[5, 0, 1, KIND_SET, 1][..], &log, &[0]].concat(),
            "a non-empty TAT before kind 2",
        ),
        ([&[0, 0, 1, KIND_SET, 0][..], &[0]].concat(), "no usage"),
        (
            [
                &[0, 0, 1, KIND_SET, 5][..],
                &log,
                &log,
                &log,
                &log,
                &log,
                &[0],
            ]
            .concat(),
            "five usages",
        ),
        (
            vec![0, 0, 1, KIND_SET, 1, 0, 100, 0, 1, 0],
            "one GCRA usage: version 1's form only",
        ),
        (
            vec![0, 0, 1, KIND_SET, 1, 0, 100, 2, 4, 0],
            "a TAT not in lowest terms",
        ),
        (
            vec![0, 0, 1, KIND_SET, 1, 2, 100, 0],
            "an unknown usage kind",
        ),
        (
            with(&[1, 0, 10, 1000, 10, 0, 0]),
            "a GCRA limit over a SLIDING usage",
        ),
        (
            with(&[1, 1, 10, 1000, 9, 0, 0]),
            "a SLIDING burst other than its limit",
        ),
        (
            with(&[1, 1, 1001, 1000, 1001, 0, 0]),
            "a SLIDING limit over its bound",
        ),
        (with(&[1, 1, 10, 1000, 10, 0, 2]), "an unknown flag"),
        (with(&[2]), "has_policy 2"),
        (with(&[]), "cut short"),
        (
            vec![0, 0, 1, KIND_SET, 1, 1, 100, 1, 5, 1, 0],
            "a first offset other than 0",
        ),
        (
            vec![0, 0, 1, KIND_SET, 1, 1, 100, 1, 0, 0, 0],
            "an empty entry",
        ),
        (
            vec![0, 0, 1, KIND_SET, 1, 1, 100, 2, 0, 1, 0, 1, 0],
            "offsets not increasing",
        ),
        (
            vec![0, 0, 1, KIND_SET, 1, 1, 5, 0, 0],
            "an empty log with a base",
        ),
        (
            vec![0, 0, 1, KIND_SET, 1, 1, 0, 1001],
            "more entries than the bound",
        ),
    ];
    for (f, why) in bad {
        assert_eq!(decode_all(&f), None, "{why}: {f:?}");
    }
}

#[test]
fn apply_refuses_what_no_command_writes() {
    let bad: [(&str, Option<&str>); 16] = [
        ("100", None),                    // version 1's form, not the set form
        ("100", Some("g10:1000:10;0;0")), // likewise with its policy
        ("S,S,S,S,S", None),              // five usages
        ("S5x0", None),                   // an empty entry
        ("S5x1:0x1", None),               // offsets not increasing
        ("S5x1@0", None),                 // expiry 0
        ("100+2/4,S", None),              // a TAT not in lowest terms
        ("100+0/4,S", None),              // a zero fraction is written without "+"
        ("S", Some("g10:1000:10;0;0")),   // kinds do not match
        ("S", Some("s10:1000;0;4")),      // unknown flag
        ("S", Some("s1001:1000;0;0")),    // over the SLIDING bound
        ("S", Some("s10:1000:10;0;0")),   // a SLIDING spec has no burst
        ("S", Some("s10:1000;0")),        // missing flags
        ("S,S", Some("s10:1000;0;0")),    // fewer limits than usages
        ("S", Some("x10:1000;0;0")),      // unknown kind
        ("S01x1", None),                  // not Redis integer syntax
    ];
    for (state, limits) in bad {
        assert_eq!(
            apply_args(state.as_bytes(), limits.map(str::as_bytes)),
            None,
            "{state} {limits:?}"
        );
    }
    assert!(
        is_set_form(&[b"S"]) && is_set_form(&[b"1,2"]) && is_set_form(&[b"1", b"limits", b"x"])
    );
    assert!(
        !is_set_form(&[b"1"]) && !is_set_form(&[b"1", b"POLICY", b"1", b"1", b"1", b"0", b"0"])
    );
}

fn arb_limit() -> impl Strategy<Value = Limit> {
    prop_oneof![
        (1u64..=20, 1u64..=5000, 0u64..=20).prop_filter_map("valid", |(l, w, b)| Policy::new(
            l, w, b
        )
        .ok()
        .map(Limit::Gcra)),
        (1u64..=20, 1u64..=5000).prop_map(|(l, w)| sliding(l, w)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Every state the commands reach reads back exactly, from RDB fields and from the
    /// `RL.APPLY` text (a single GCRA limit in version 1's form, which `effect.rs` carries).
    #[test]
    fn every_reachable_state_round_trips(
        set in prop::collection::vec(arb_limit(), 1..=MAX_LIMITS),
        trace in prop::collection::vec((prop_oneof![Just(0u64), 0u64..400], 1u64..=3), 0..40),
        stored in any::<bool>(),
        idle in prop_oneof![Just(0u64), 1u64..100_000],
        shadow in any::<bool>(),
        expire in prop::option::of(1u64..=MAX_EXPIRE_AT_MS),
    ) {
        let state = traced(&set, &trace, stored, idle, shadow);
        prop_assert_eq!(decode_all(&encode(&state)), Some(state.clone()));
        if state.legacy().is_none() {
            let (text, policy) = apply_text(&state, expire, true, &[]);
            prop_assert!(is_set_form(&[&text]) || policy.is_some());
            let got = apply_args(&text, policy.as_deref()).unwrap();
            prop_assert_eq!((got.usage, got.stored, got.expire_at_ms), (state.usage, state.stored, expire));
        }
    }

    /// Decoding is total on arbitrary fields and canonical: what it accepts re-encodes to
    /// the same fields.
    #[test]
    fn decode_is_total_and_canonical(fields in prop::collection::vec(prop_oneof![any::<u64>(), 0u64..6, Just(KIND_SET), Just(MAX_LIMIT)], 0..30)) {
        let mut it = fields.iter().copied();
        if let Some(state) = decode(|| it.next()) {
            let used = fields.len() - it.count();
            prop_assert_eq!(encode(&state), fields[..used].to_vec());
        }
    }

    #[test]
    fn apply_parsing_is_total(state in prop::collection::vec(prop_oneof![Just(b'S'), Just(b'x'), Just(b':'), Just(b','), Just(b'@'), Just(b'+'), Just(b'/'), b'0'..=b'9', any::<u8>()], 0..40),
                              limits in prop::option::of(prop::collection::vec(prop_oneof![Just(b'g'), Just(b's'), Just(b':'), Just(b';'), Just(b','), b'0'..=b'9'], 0..30))) {
        let _ = apply_args(&state, limits.as_deref());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// What a replica does with the records of an allowed request (through the text) gives
    /// exactly the master's new state, request after request, clock steps included.
    #[test]
    fn records_replay_the_masters_logs(
        set in prop::collection::vec(arb_limit(), 1..=MAX_LIMITS),
        trace in prop::collection::vec((prop_oneof![Just(0u64), 0u64..400, 0u64..5000], 1u64..=3, any::<bool>()), 1..60),
    ) {
        let limits = Limits::new(&set).unwrap();
        let mut now = 1_700_000_000_000u64;
        let mut master = Vec::new();
        limits::align(&limits, &mut master, now);
        let mut replica = master.clone();
        for (gap, cost, back) in trace {
            now = if back { now.saturating_sub(gap) } else { now + gap };
            let o = limits::decide(&limits, &mut master, now, cost);
            if !o.allowed {
                if o.repaired {
                    replica = master.clone(); // a repair is sent whole
                }
                continue;
            }
            let records: Vec<Option<Record>> = limits
                .as_slice()
                .iter()
                .map(|l| match l {
                    Limit::Sliding(s) => Some(Record { at_ms: now, cost, window_ms: s.window_ms() }),
                    Limit::Gcra(_) => None,
                })
                .collect();
            let state = SetState::new(master.clone(), None).unwrap();
            let (text, _) = apply_text(&state, None, false, &records);
            if state.legacy().is_some() {
                replica = master.clone(); // version 1's form: always whole
                continue;
            }
            let got = parse_apply_set(&[&text]).unwrap();
            let mut next = got.usage.clone();
            for (i, r) in got.records.iter().enumerate() {
                if let (Some(r), Usage::Sliding(log)) = (r, &replica[i]) {
                    let mut log = log.clone();
                    prop_assert!(r.apply(&mut log));
                    next[i] = Usage::Sliding(log);
                }
            }
            replica = next;
            prop_assert_eq!(&replica, &master);
        }
    }
}

#[test]
fn records_are_checked() {
    let bad = [
        "R1x0w5",
        "R1x1001w5",
        "R1x1w0",
        "R1x1w4294967296",
        "R1w5x1",
        "R1x1",
        "R01x1w5",
        "Rx1w5",
    ];
    for b in bad {
        assert_eq!(parse_apply_set(&[b.as_bytes()]), None, "{b}");
    }
    let ok = parse_apply_set(&[b"R1700000000000x2w60000,100@5"]).unwrap();
    assert_eq!(
        ok.records[0],
        Some(Record {
            at_ms: 1_700_000_000_000,
            cost: 2,
            window_ms: 60_000
        })
    );
    assert_eq!(ok.records[1], None);
    // Not with LIMITS: a write that sets the limits is whole.
    assert_eq!(parse_apply_set(&[b"R1x1w5", b"LIMITS", b"s10:5;0;0"]), None);
    // A record that would overfill a log is refused by the replica.
    let mut log = Log::from_parts(100, &[(0, 1000)]).unwrap();
    assert!(!Record {
        at_ms: 101,
        cost: 1,
        window_ms: 1000
    }
    .apply(&mut log));
}
