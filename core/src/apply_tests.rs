//! `RL.APPLY`'s text: version 1's form exactly as before, the set form with what issue 17
//! adds (a log's window, a pending change), round trips of every state the commands reach,
//! a replica that records what the master recorded ending with the master's state, and
//! refusal of everything no command writes.

use super::*;
use crate::decide::{decide, numbers};
use crate::kinds::gcra::MAX_LIMIT;
use crate::state::{request, view};
use proptest::prelude::*;

fn args(a: &[&str]) -> Vec<Vec<u8>> {
    a.iter().map(|s| s.as_bytes().to_vec()).collect()
}

fn parse(a: &[&str]) -> Result<Apply, Error> {
    let v = args(a);
    let refs: Vec<&[u8]> = v.iter().map(|x| x.as_slice()).collect();
    parse_apply(&refs)
}

/// The arguments of a written line, as a replica receives them.
fn line_args(line: &Line) -> Vec<Vec<u8>> {
    let mut v = vec![line.state.as_bytes().to_vec()];
    match &line.extra {
        Extra::Nothing => {}
        Extra::Policy(p) => {
            v.push(b"POLICY".to_vec());
            v.extend(p.iter().map(|f| f.to_string().into_bytes()));
        }
        Extra::Limits(l) => {
            v.push(b"LIMITS".to_vec());
            v.push(l.as_bytes().to_vec());
        }
    }
    // The key-level parts go last, as module/src/propagate.rs sends them.
    if let Some(p) = &line.parts {
        v.push(b"PARTS".to_vec());
        v.push(p.as_bytes().to_vec());
    }
    v
}

/// The line written for a state.
fn write_line(
    state: StateRef<'_>,
    expire_at_ms: Option<u64>,
    set_policy: bool,
    records: &[Option<Record>],
) -> Line {
    let mut line = Line::new();
    super::write_line(state, expire_at_ms, set_policy, records, &mut line);
    line
}

fn received(line: &Line) -> Apply {
    let v = line_args(line);
    let refs: Vec<&[u8]> = v.iter().map(|x| x.as_slice()).collect();
    parse_apply(&refs).expect("a written line reads back")
}

fn text(line: &Line) -> String {
    line_args(line)
        .iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn sliding(l: u64, w: u64) -> Limit {
    Limit::Sliding(Sliding::new(l, w).unwrap())
}

fn gcra(l: u64, w: u64, b: u64) -> Limit {
    Limit::Gcra(Gcra::new(l, w, b).unwrap())
}

#[test]
fn version_1_reads_the_three_forms_of_state() {
    let got = parse(&["1700000000000+2/3@1700000000001"]).unwrap();
    assert_eq!(
        got.usages,
        vec![Sent::Whole(
            Usage::Gcra(Tat::new(1_700_000_000_000, 2, 3).unwrap()),
            None
        )]
    );
    assert_eq!(got.expire_at_ms, Some(1_700_000_000_001));
    let got = parse(&["1700000000000"]).unwrap();
    assert_eq!(got.expire_at_ms, None);
    let got = parse(&["0@5"]).unwrap();
    assert_eq!(
        (got.usages[0].clone(), got.expire_at_ms),
        (Sent::Whole(Usage::Gcra(Tat::EMPTY), None), Some(5))
    );
    // Written by version 1 without reducing the fraction: read as the same instant.
    let got = parse(&["3295995102866+500/1000@3295995102867"]).unwrap();
    assert_eq!(
        got.usages[0],
        Sent::Whole(
            Usage::Gcra(Tat::new(3_295_995_102_866, 1, 2).unwrap()),
            None
        )
    );
}

#[test]
fn version_1_reads_a_policy_with_its_shadow_flag() {
    let s = parse(&["5", "POLICY", "10", "1000", "20", "0", "1"])
        .unwrap()
        .stored
        .unwrap();
    assert_eq!(
        (s.policy, s.shadow),
        (Policy::single(gcra(10, 1000, 20)), true)
    );
}

#[test]
fn version_1_refuses_anything_the_commands_cannot_produce() {
    let bad: [&[&str]; 15] = [
        &["1+3/3"],          // frac >= den
        &["1+0/5"],          // a zero fraction is written without "+"
        &["1+1/0"],          // den 0
        &["1+1/1000000001"], // den above MAX_LIMIT
        &["-1"],             // negative
        &["1@0"],            // expiry 0
        &["1@"],
        &["1+1"],
        &["1+/2"],
        &["01"],                                       // not Redis integer syntax
        &["1152921504606846977"],                      // TAT past 2^60
        &["1", "POLICY", "10", "1000", "0", "0", "0"], // burst 0
        &["1", "POLICY", "10", "1000", "5", "0", "2"], // unknown flag
        &["1", "NOPE", "10", "1000", "5", "0", "0"],
        &["1", "2", "3", "4"], // the old four-number form
    ];
    for b in bad {
        assert_eq!(parse(b), Err(Error::ApplyInvalid), "{b:?}");
    }
    assert_eq!(parse(&[]), Err(Error::WrongArity));
    // Any expiry Redis can hold (a user's PEXPIREAT on a configured key), and no more.
    assert_eq!(
        parse(&["5@9223372036854775807"]).unwrap().expire_at_ms,
        Some(i64::MAX as u64)
    );
    assert_eq!(parse(&["5@9223372036854775808"]), Err(Error::ApplyInvalid));
}

#[test]
fn version_1_is_written_as_before_copying_the_expirys_digits() {
    let mut usages = Usages::new();
    usages.push(Usage::Gcra(Tat::new(1_700_000_000_123, 0, 1).unwrap()));
    let state = State::new(usages, None, None, None).unwrap();
    assert_eq!(
        text(&write_line(
            state.as_ref(),
            Some(1_700_000_000_123),
            false,
            &[]
        )),
        "1700000000123@1700000000123"
    );
    assert_eq!(
        text(&write_line(state.as_ref(), Some(5), false, &[])),
        "1700000000123@5"
    );
    let mut usages = Usages::new();
    usages.push(Usage::Gcra(Tat::new(7, 1, 3).unwrap()));
    let s = Stored::new(Policy::single(gcra(3, 1000, 0)), 0, true).unwrap();
    let state = State::new(usages, Some(s), None, None).unwrap();
    assert_eq!(
        text(&write_line(state.as_ref(), Some(8), true, &[])),
        "7+1/3@8 POLICY 3 1000 3 0 1"
    );
    assert_eq!(text(&write_line(state.as_ref(), None, false, &[])), "7+1/3");
}

#[test]
fn the_set_form_round_trips_with_windows_and_pending_changes() {
    let p = Policy::new(&[sliding(10, 60_000), gcra(1000, 86_400_000, 0)]).unwrap();
    let s = Stored::new(p, 5000, true).unwrap();
    let mut state = State::configure(None, s, 1_700_000_000_000);
    for (t, c) in [(0, 3), (250, 1), (250, 2)] {
        request(&mut state, &p, 1_700_000_000_000 + t, c);
    }
    let line = write_line(state.as_ref(), Some(1_700_000_060_250), true, &[]);
    assert_eq!(text(&line), "S1700000000000x3:250x3,1700000518400@1700000060250 LIMITS s10:60000,g1000:86400000:1000;5000;1");
    assert_eq!(received(&line).state(None), Some(state.clone()));
    // A usage-only log writes its window; a pending change its instant.
    let u = Policy::single(sliding(5, 1000));
    let mut usage_only = State::new(Usages::empty_for(&u), None, None, None).unwrap();
    request(&mut usage_only, &u, 100, 2);
    let line = write_line(usage_only.as_ref(), Some(1100), false, &[]);
    assert_eq!(text(&line), "S100x2w1000@1100");
    assert_eq!(received(&line).state(None), Some(usage_only));
    let changed = State::configure(
        Some(state),
        Stored::new(Policy::single(gcra(1, 1000, 0)), 0, false).unwrap(),
        1_700_000_001_000,
    );
    let line = write_line(changed.as_ref(), None, true, &[]);
    assert_eq!(
        text(&line),
        "S1700000000000x3:250x3w60000,1700000518400~1700000001000 LIMITS g1:1000:1;0;0"
    );
    assert_eq!(received(&line).state(None), Some(changed));
}

#[test]
fn the_set_form_refuses_what_no_command_writes() {
    let bad: [(&str, Option<&str>); 20] = [
        ("100", Some("g10:1000:10;0;0")), // version 1's form only
        ("S,S,S,S,S", None),              // five usages
        ("S5x0", None),                   // an empty entry
        ("S5x1:0x1", None),               // offsets not increasing
        ("S5x1@0", None),                 // expiry 0
        ("100+2/4,S", None),              // a TAT not in lowest terms
        ("100+0/4,S", None),              // a zero fraction is written without "+"
        ("S", Some("s10:1000;0;4")),      // unknown flag
        ("S", Some("s1001:1000;0;0")),    // over the SLIDING bound
        ("S", Some("s10:1000:10;0;0")),   // a SLIDING spec has no burst
        ("S", Some("s10:1000;0")),        // missing flags
        ("S", Some("x10:1000;0;0")),      // unknown kind
        ("S01x1", None),                  // not Redis integer syntax
        ("Sw5", None),                    // an empty log has no window
        ("S5x1w", None),                  // a window with no number
        ("S5x1w4294967296", None),        // a window past u32
        ("R5x1w1000~7", None),            // records are not sent with a pending change
        ("S~", None),                     // a pending mark with no instant
        ("S5x1~1152921504606846977", Some("s10:1000;0;0")), // pending past the bound
        ("R5x1w1000", Some("s10:1000;0;0")), // records are not sent with the limits
    ];
    for (state, limits) in bad {
        let mut a = vec![state];
        if let Some(l) = limits {
            a.extend(["LIMITS", l]);
        }
        assert_eq!(parse(&a), Err(Error::ApplyInvalid), "{state} {limits:?}");
    }
    // Readable, but no state a command leaves: kinds that do not match the stored limits
    // (nothing pending), a window written where it is implied, a record without a log.
    let s = |t: &str, l: &str| parse(&[t, "LIMITS", l]).unwrap().state(None);
    assert_eq!(s("S", "g10:1000:10;0;0"), None);
    assert_eq!(s("S5x1w1000", "s10:1000;0;0"), None);
    assert_eq!(s("S,S", "s10:1000;0;0"), None);
    assert_eq!(s("100+1/3,S@5", "g10:1000:10;0;0"), None);
    assert_eq!(parse(&["R5x1w1000,1"]).unwrap().state(None), None);
}

#[test]
fn records_are_checked() {
    for b in [
        "R1x0w5",
        "R1x1001w5",
        "R1x1w0",
        "R1x1w4294967296",
        "R1w5x1",
        "R1x1",
        "R01x1w5",
        "Rx1w5",
    ] {
        assert_eq!(parse(&[b]), Err(Error::ApplyInvalid), "{b}");
    }
    let ok = parse(&["R1700000000000x2w60000,100@5"]).unwrap();
    assert_eq!(
        ok.usages[0],
        Sent::Record(Record {
            at_ms: 1_700_000_000_000,
            cost: 2,
            window_ms: 60_000
        })
    );
}

fn arb_limit() -> impl Strategy<Value = Limit> {
    prop_oneof![
        (1u64..=20, 1u64..=5000, 0u64..=20).prop_filter_map("valid", |(l, w, b)| Gcra::new(
            l, w, b
        )
        .ok()
        .map(Limit::Gcra)),
        (1u64..=20, 1u64..=5000).prop_map(|(l, w)| sliding(l, w)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Whatever a master does (requests, clock steps, reconfigurations), the lines it writes
    /// take a replica holding its previous state to its new one, byte for byte: a whole state
    /// after a change, records of what an allowed request recorded otherwise.
    #[test]
    fn a_replica_ends_with_the_masters_state(
        set in prop::collection::vec(arb_limit(), 1..=MAX_LIMITS),
        stored_key in any::<bool>(),
        steps in prop::collection::vec((prop_oneof![Just(0u64), 0u64..400, 0u64..5000], 1u64..=3, any::<bool>(), prop::option::of(prop::collection::vec(arb_limit(), 1..=MAX_LIMITS))), 1..50),
    ) {
        let mut p = Policy::new(&set).unwrap();
        let mut now = 1_700_000_000_000u64;
        let mut master = if stored_key {
            State::configure(None, Stored::new(p, 0, false).unwrap(), now)
        } else {
            State::new(Usages::empty_for(&p), None, None, None).unwrap()
        };
        let mut replica = master.clone();
        for (gap, cost, back, change) in steps {
            now = if back { now.saturating_sub(gap) } else { now + gap };
            if let (Some(limits), true) = (change, stored_key) {
                p = Policy::new(&limits).unwrap();
                master = State::configure(Some(master), Stored::new(p, 0, false).unwrap(), now);
                let line = write_line(master.as_ref(), None, true, &[]);
                replica = received(&line).state(Some(replica.as_ref())).unwrap();
                prop_assert_eq!(&replica, &master);
                continue;
            }
            // Records only where the master writes in place (the usages read as recorded).
            let native = matches!(view(&p, &master.usages, master.pending_at_ms, now), crate::state::View::Recorded(_));
            let mut records = [None; MAX_LIMITS];
            for ((l, u), r) in p.limits().iter().zip(master.usages.iter()).zip(records.iter_mut()) {
                if let (Limit::Sliding(s), Usage::Sliding(log)) = (l, u) {
                    if native && (log.window_ms() != 0 || log.is_empty()) {
                        *r = Some(Record { at_ms: now, cost, window_ms: s.window_ms() });
                    }
                }
            }
            let (d, written) = request(&mut master, &p, now, cost);
            if !written {
                continue;
            }
            let line = write_line(master.as_ref(), Some(now + 1), false, if d.allowed { &records } else { &[] });
            replica = received(&line).state(Some(replica.as_ref())).unwrap();
            prop_assert_eq!(&replica, &master);
        }
    }

    #[test]
    fn parsing_is_total(
        state in prop::collection::vec(prop_oneof![Just(b'S'), Just(b'R'), Just(b'x'), Just(b'w'), Just(b'~'), Just(b':'), Just(b','), Just(b'@'), Just(b'+'), Just(b'/'), b'0'..=b'9', any::<u8>()], 0..40),
        limits in prop::option::of(prop::collection::vec(prop_oneof![Just(b'g'), Just(b's'), Just(b':'), Just(b';'), Just(b','), b'0'..=b'9'], 0..30)),
    ) {
        let mut a: Vec<&[u8]> = vec![&state];
        if let Some(l) = &limits {
            a.extend([b"LIMITS".as_slice(), l]);
        }
        if let Ok(apply) = parse_apply(&a) {
            let _ = apply.state(None);
        }
    }

    /// A single GCRA state's text reads back exactly.
    #[test]
    fn version_1_round_trips(ms in 0u64..=crate::kinds::gcra::MAX_TAT_MS, den in 1u64..=MAX_LIMIT, seed in any::<u64>(), exp in prop::option::of(1u64..=MAX_EXPIRE_AT_MS)) {
        let tat = Tat::new(ms, seed % den, den).unwrap().reduced();
        let mut usages = Usages::new();
        usages.push(Usage::Gcra(tat));
        let state = State::new(usages, None, None, None).unwrap();
        let line = write_line(state.as_ref(), exp, false, &[]);
        let got = received(&line);
        prop_assert_eq!(got.expire_at_ms, exp);
        prop_assert_eq!(got.state(None), Some(state));
    }
}

#[test]
fn numbers_read_the_same_after_a_replica_applies_a_line() {
    // A replica's RL.PEEK answers as the master's.
    let p = Policy::new(&[sliding(3, 1000), gcra(5, 1000, 0)]).unwrap();
    let mut master = State::new(Usages::empty_for(&p), None, None, None).unwrap();
    request(&mut master, &p, 10, 2);
    let replica = received(&write_line(master.as_ref(), Some(1010), false, &[]))
        .state(None)
        .unwrap();
    let peek = |s: &State| {
        let v = view(&p, &s.usages, None, 20);
        numbers(
            &p,
            v.as_slice(),
            Some(&decide(&p, v.as_slice(), 20, 1)),
            20,
            1,
        )
    };
    assert_eq!(peek(&replica), peek(&master));
}

#[test]
fn a_key_of_parts_alone_reads_back() {
    // RL.BLOCK of an absent key: no usage, no policy, a block (the codec fuzz target found
    // that replicas refused its line, an empty body, as an impossible state).
    let mut state = State::usage_only(crate::state::Usages::new());
    crate::ops::block(&mut state, 1_700_000_000_000, 60_000);
    let line = write_line(state.as_ref(), Some(1_700_000_060_000), false, &[]);
    assert_eq!(received(&line).state(None), Some(state.clone()));
    // An empty body without parts is still no state any command writes.
    assert!(parse(&["@1700000060000"]).is_err());
    assert!(parse(&["~0"]).is_err());
}
