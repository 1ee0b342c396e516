//! Specification of the SLIDING kind: table-driven cases, then property tests against an
//! independent model (a plain list of admitted timestamps) and the "at most N in any
//! window" bound checked directly on the admitted requests.

use super::*;
use proptest::prelude::*;

fn sliding(limit: u64, window_ms: u64) -> Sliding {
    Sliding::new(limit, window_ms).unwrap()
}

/// Sends one request as the commands do (repair a clock step, decide, record if allowed)
/// and returns whether it passed.
fn send(p: &Sliding, log: &mut Log, now_ms: u64, cost: u64) -> bool {
    log.clamp_future(now_ms);
    let ok = decide(p, log, now_ms, cost);
    if ok {
        log.record(p, now_ms, cost);
    }
    ok
}

#[test]
fn the_brief_example_allows_ten_then_denies_five_and_the_eleventh_waits_one_window() {
    let p = sliding(10, 60_000);
    let t0 = 1_700_000_000_000;
    let mut log = Log::EMPTY;
    let replies: Vec<bool> = (0..15).map(|_| send(&p, &mut log, t0, 1)).collect();
    assert_eq!(replies, [[true; 10].as_slice(), &[false; 5]].concat());
    assert_eq!(log.len(), 1, "one entry per distinct ms");
    assert!(!send(&p, &mut log, t0 + 59_999, 1));
    assert!(send(&p, &mut log, t0 + 60_000, 1));
}

#[test]
fn the_eleventh_passes_exactly_one_window_after_the_first() {
    // Ten requests spread over 9 s: the 11th waits for the 1st to leave the window.
    let p = sliding(10, 60_000);
    let mut log = Log::EMPTY;
    for i in 0..10 {
        assert!(send(&p, &mut log, 1000 + i * 1000, 1));
    }
    let v = explain(&p, &log, &log, 20_000, 1, false);
    assert_eq!(v.retry_after_ms, Some(61_000 - 20_000));
    assert!(!send(&p, &mut log, 60_999, 1));
    assert!(send(&p, &mut log, 61_000, 1));
    assert!(!send(&p, &mut log, 61_000, 1));
    assert!(send(&p, &mut log, 62_000, 1));
}

#[test]
fn unlike_gcra_no_more_than_limit_pass_in_any_window() {
    // The report: GCRA 10 per 1000 ms admits 19 in the first 1000 ms; SLIDING admits 10.
    let p = sliding(10, 1000);
    let mut log = Log::EMPTY;
    let passed = (0..1000).filter(|&t| send(&p, &mut log, t, 1)).count();
    assert_eq!(passed, 10);
}

#[test]
fn a_denied_request_changes_nothing() {
    let p = sliding(2, 1000);
    let mut log = Log::EMPTY;
    assert!(send(&p, &mut log, 10, 2));
    let before = log.clone();
    assert!(!send(&p, &mut log, 500, 1));
    assert_eq!(log, before);
}

#[test]
fn a_request_heavier_than_the_limit_never_passes_and_has_no_retry() {
    let p = sliding(5, 1000);
    let mut log = Log::EMPTY;
    let v = evaluate(&p, &mut log, 100, 6);
    assert_eq!(
        (v.allowed, v.remaining, v.retry_after_ms, v.reset_after_ms),
        (false, 5, None, 0)
    );
    assert!(log.is_empty());
}

#[test]
fn costs_are_counted_by_weight() {
    let p = sliding(10, 1000);
    let mut log = Log::EMPTY;
    assert!(send(&p, &mut log, 0, 7));
    assert!(!send(&p, &mut log, 1, 4));
    assert!(send(&p, &mut log, 1, 3));
    // 7 leave at 1000; then 7 fit again, not 8.
    let v = explain(&p, &log, &log, 2, 7, false);
    assert_eq!(v.retry_after_ms, Some(998));
    assert!(send(&p, &mut log, 1000, 7));
}

#[test]
fn the_numbers_are_those_of_the_window() {
    let p = sliding(10, 60_000);
    let mut log = Log::EMPTY;
    let v = evaluate(&p, &mut log, 5000, 1);
    assert_eq!(
        (
            v.allowed,
            v.limit,
            v.remaining,
            v.retry_after_ms,
            v.reset_after_ms
        ),
        (true, 10, 9, None, 60_000)
    );
    let v = evaluate(&p, &mut log, 6000, 3);
    assert_eq!((v.remaining, v.reset_after_ms), (6, 60_000));
    assert_eq!(log.empty_at_ms(&p, 6000), 66_000);
    assert_eq!(
        log.empty_at_ms(&p, 66_000),
        66_000,
        "nothing live: empty now"
    );
}

#[test]
fn a_clock_step_back_neither_panics_nor_locks_the_client_out() {
    let p = sliding(3, 1000);
    let mut log = Log::EMPTY;
    for _ in 0..3 {
        assert!(send(&p, &mut log, 1_000_000, 1));
    }
    // The clock steps back an hour: the future entries count as "now", and the client is
    // free again one window after the step, not an hour and a window later.
    let back = 1_000_000 - 3_600_000 / 1000;
    assert!(!send(&p, &mut log, back, 1));
    assert_eq!(
        explain(&p, &log, &log, back, 1, false).retry_after_ms,
        Some(1000)
    );
    assert!(send(&p, &mut log, back + 1000, 1));
    // A step back to 0 and a huge clock do not panic either.
    let _ = evaluate(&p, &mut log, 0, 1);
    let _ = evaluate(&p, &mut log, u64::MAX, 1);
    assert!(send(&p, &mut log, MAX_TAT_MS, 1));
    let _ = evaluate(&p, &mut log, u64::MAX, 1);
    assert!(!send(&p, &mut log, MAX_TAT_MS + 1, 1));
}

#[test]
fn bounds_are_checked_with_specific_errors() {
    assert_eq!(Sliding::new(0, 1), Err(Error::LimitRange));
    assert_eq!(Sliding::new(1001, 1), Err(Error::SlidingLimitRange));
    assert_eq!(Sliding::new(1, 0), Err(Error::WindowRange));
    assert_eq!(
        Sliding::new(1, MAX_SLIDING_WINDOW_MS + 1),
        Err(Error::SlidingWindowRange)
    );
    assert!(Sliding::new(MAX_SLIDING_LIMIT, MAX_SLIDING_WINDOW_MS).is_ok());
}

#[test]
fn scaling_rounds_the_count_down_within_the_bound() {
    assert_eq!(sliding(10, 1000).scaled(50), sliding(5, 1000));
    assert_eq!(sliding(10, 1000).scaled(1), sliding(1, 1000));
    assert_eq!(sliding(600, 1000).scaled(1000), sliding(1000, 1000));
    assert_eq!(sliding(7, 1000).scaled(100), sliding(7, 1000));
}

#[test]
fn an_entry_takes_six_bytes() {
    assert_eq!(std::mem::size_of::<Entry>(), 6);
}

#[test]
fn stored_parts_are_validated() {
    let good = Log::from_parts(100, &[(0, 2), (5, 1)]).unwrap();
    assert_eq!(good.parts().collect::<Vec<_>>(), [(0, 2), (5, 1)]);
    let bad: [(u64, &[(u64, u64)]); 8] = [
        (5, &[]),                        // an empty log has base 0
        (0, &[(1, 1)]),                  // the first entry is the base
        (0, &[(0, 1), (0, 1)]),          // offsets strictly increase
        (0, &[(0, 0)]),                  // no empty entry
        (0, &[(0, 1001)]),               // over the bound
        (0, &[(0, 600), (1, 401)]),      // total over the bound
        (0, &[(0, 1), (1 << 32, 1)]),    // offset past u32
        (MAX_TAT_MS, &[(0, 1), (1, 1)]), // past the latest instant
    ];
    for (base, parts) in bad {
        assert_eq!(Log::from_parts(base, parts), None, "{base} {parts:?}");
    }
}

fn arb_sliding() -> impl Strategy<Value = Sliding> {
    (1u64..=12, 1u64..=2000).prop_map(|(l, w)| sliding(l, w))
}

/// A trace of `(gap_ms, cost)` requests.
fn arb_trace() -> impl Strategy<Value = Vec<(u64, u64)>> {
    prop::collection::vec(
        (prop_oneof![Just(0u64), 0u64..50, 0u64..3000], 1u64..=4),
        1..120,
    )
}

/// The independent model: every admitted request's instant and cost, in a plain list.
#[derive(Default)]
struct Model {
    admitted: Vec<(u64, u64)>,
}

impl Model {
    fn send(&mut self, p: &Sliding, now: u64, cost: u64) -> bool {
        let w = p.window_ms();
        let used: u64 = self
            .admitted
            .iter()
            .filter(|(t, _)| *t + w > now)
            .map(|(_, c)| c)
            .sum();
        let ok = used + cost <= p.limit();
        if ok {
            self.admitted.push((now, cost));
        }
        ok
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Request by request, the log decides what the list of timestamps decides.
    #[test]
    fn matches_a_list_of_admitted_timestamps(p in arb_sliding(), trace in arb_trace()) {
        let (mut log, mut model, mut now) = (Log::EMPTY, Model::default(), 1_000_000u64);
        for (gap, cost) in trace {
            now += gap;
            prop_assert_eq!(send(&p, &mut log, now, cost), model.send(&p, now, cost));
            prop_assert!(log.used(&p, now) <= p.limit());
        }
    }

    /// Whatever the trace, no interval of `window_ms` holds more than `limit` admitted (by
    /// cost): checked for every interval that starts at an admitted request, which are the
    /// fullest ones.
    #[test]
    fn at_most_limit_in_any_window(p in arb_sliding(), trace in arb_trace()) {
        let (mut log, mut now, mut admitted) = (Log::EMPTY, 5_000u64, Vec::new());
        for (gap, cost) in trace {
            now += gap;
            if send(&p, &mut log, now, cost) {
                admitted.push((now, cost));
            }
        }
        for &(start, _) in &admitted {
            let inside: u64 = admitted
                .iter()
                .filter(|(t, _)| *t >= start && *t < start + p.window_ms())
                .map(|(_, c)| c)
                .sum();
            prop_assert!(inside <= p.limit(), "{} in [{}, +{})", inside, start, p.window_ms());
        }
    }

    /// At `now + retry_after_ms` the same request passes, one ms earlier it does not; and
    /// `remaining` cost-1 requests pass right now, one more does not.
    #[test]
    fn retry_after_and_remaining_are_exact(p in arb_sliding(), trace in arb_trace(), cost in 1u64..=14) {
        let (mut log, mut now) = (Log::EMPTY, 1_000u64);
        for (gap, c) in trace {
            now += gap;
            send(&p, &mut log, now, c);
        }
        let allowed = decide(&p, &log, now, cost);
        let v = explain(&p, &log, &log, now, cost, allowed);
        if allowed {
            prop_assert_eq!(v.retry_after_ms, None);
        } else if cost > p.limit() {
            prop_assert_eq!(v.retry_after_ms, None);
        } else {
            let r = v.retry_after_ms.unwrap();
            prop_assert!(r >= 1);
            prop_assert!(decide(&p, &log, now + r, cost));
            prop_assert!(!decide(&p, &log, now + r - 1, cost));
        }
        let mut probe = log.clone();
        for _ in 0..v.remaining {
            prop_assert!(send(&p, &mut probe, now, 1));
        }
        prop_assert!(!decide(&p, &probe, now, 1));
        // reset_after_ms: from then on the window is empty, a ms earlier it is not.
        if v.reset_after_ms > 0 {
            prop_assert_eq!(log.used(&p, now + v.reset_after_ms), 0);
            prop_assert!(log.used(&p, now + v.reset_after_ms - 1) > 0);
        }
    }

    /// With the clock jumping back and forth: never a panic, never more than `limit` in the
    /// window, the log stays canonical, and one window after any instant the client is free.
    #[test]
    fn survives_clock_steps(p in arb_sliding(), steps in prop::collection::vec((0u64..10_000_000, 1u64..=4), 1..80)) {
        let mut log = Log::EMPTY;
        for (now, cost) in steps {
            send(&p, &mut log, now, cost);
            prop_assert!(log.used(&p, now) <= p.limit());
            let parts: Vec<_> = log.parts().collect();
            prop_assert_eq!(Log::from_parts(log.base_ms(), &parts), Some(log.clone()));
            prop_assert_eq!(log.used(&p, now + p.window_ms()), 0);
        }
    }
}
