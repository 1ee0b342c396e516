//! Specification of the SLIDING kind: table-driven cases, then property tests against an
//! independent model (a plain list of admitted timestamps) and the "at most N in any
//! window" bound checked directly on the admitted requests.

use super::*;
use crate::kinds::KindRules;
use proptest::prelude::*;

fn sliding(limit: u64, window_ms: u64) -> Sliding {
    Sliding::new(limit, window_ms).unwrap()
}

/// Sends one request as the commands do (repair a clock step, decide, record if allowed)
/// and returns whether it passed.
fn send(p: &Sliding, log: &mut Log, now_ms: u64, cost: u64) -> bool {
    p.repair(log, now_ms);
    let ok = decide(p, log, now_ms, cost);
    if ok {
        log.record(p, now_ms, cost);
    }
    ok
}

fn decide(p: &Sliding, log: &Log, now_ms: u64, cost: u64) -> bool {
    p.admit(log, now_ms, cost).is_some()
}

/// Requests in the window `p` reads `log` in, at `now_ms`.
fn used(log: &Log, p: &Sliding, now_ms: u64) -> u64 {
    log.used(p.counting_window(log), now_ms)
}

/// (remaining after, retry, reset after) for a request of `cost`, recorded if it fits.
fn numbers(p: &Sliding, log: &Log, now_ms: u64, cost: u64) -> (u64, Option<u64>, u64) {
    let admit = p.admit(log, now_ms, cost);
    let (remaining, empty_at) = p.after(log, admit.as_ref(), now_ms, cost);
    let retry = match admit {
        Some(()) => None,
        None => p.wait_ms(log, now_ms, cost),
    };
    (remaining, retry, empty_at - now_ms)
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
    assert_eq!(numbers(&p, &log, 20_000, 1).1, Some(61_000 - 20_000));
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
    let log = Log::EMPTY;
    assert!(!decide(&p, &log, 100, 6));
    assert_eq!(numbers(&p, &log, 100, 6), (5, None, 0));
}

#[test]
fn costs_are_counted_by_weight() {
    let p = sliding(10, 1000);
    let mut log = Log::EMPTY;
    assert!(send(&p, &mut log, 0, 7));
    assert!(!send(&p, &mut log, 1, 4));
    assert!(send(&p, &mut log, 1, 3));
    // 7 leave at 1000; then 7 fit again, not 8.
    assert_eq!(numbers(&p, &log, 2, 7).1, Some(998));
    assert!(send(&p, &mut log, 1000, 7));
}

#[test]
fn the_numbers_are_those_of_the_window() {
    let p = sliding(10, 60_000);
    let mut log = Log::EMPTY;
    assert_eq!(numbers(&p, &log, 5000, 1), (9, None, 60_000));
    assert!(send(&p, &mut log, 5000, 1));
    assert_eq!(numbers(&p, &log, 6000, 3), (6, None, 60_000));
    assert!(send(&p, &mut log, 6000, 3));
    assert_eq!(p.after(&log, None, 6000, 0).1, 66_000);
    assert_eq!(
        p.after(&log, None, 66_000, 0).1,
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
    assert_eq!(numbers(&p, &log, back, 1).1, Some(1000));
    assert!(send(&p, &mut log, back + 1000, 1));
    // A step back to 0 and a huge clock do not panic either.
    let _ = send(&p, &mut log, 0, 1);
    let _ = numbers(&p, &log, u64::MAX, 1);
    assert!(send(&p, &mut log, MAX_TAT_MS, 1));
    let _ = numbers(&p, &log, u64::MAX, 1);
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

/// A log holds no slack: 6 bytes per distinct ms it holds, however it grew (no case of key
/// grows over the version before logs were updated in place, issue 17).
#[test]
fn a_log_costs_six_bytes_per_distinct_ms() {
    let p = sliding(100, 60_000);
    let mut log = Log::EMPTY;
    for (i, at) in [1_000u64, 1_000, 1_001, 1_005, 1_005, 2_000, 3_000]
        .iter()
        .enumerate()
    {
        assert!(send(&p, &mut log, *at, 1), "{i}");
    }
    assert_eq!(log.heap_bytes(), 5 * 6);
}

#[test]
fn stored_parts_are_validated() {
    let good = Log::from_parts(100, 60_000, &[(0, 2), (5, 1)]).unwrap();
    assert_eq!(good.parts().collect::<Vec<_>>(), [(0, 2), (5, 1)]);
    assert_eq!(good.window_ms(), 60_000);
    assert_eq!(
        Log::from_parts(0, 5, &[]),
        None,
        "an empty log has no window"
    );
    assert_eq!(
        Log::from_parts(0, 1 << 32, &[(0, 1)]),
        None,
        "a window fits u32"
    );
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
        assert_eq!(Log::from_parts(base, 0, parts), None, "{base} {parts:?}");
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
            prop_assert!(used(&log, &p, now) <= p.limit());
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
        let (remaining, retry, reset) = numbers(&p, &log, now, cost);
        if allowed || cost > p.limit() {
            prop_assert_eq!(retry, None);
        } else {
            let r = retry.unwrap();
            prop_assert!(r >= 1);
            prop_assert!(decide(&p, &log, now + r, cost));
            prop_assert!(!decide(&p, &log, now + r - 1, cost));
        }
        let mut probe = log.clone();
        if allowed {
            send(&p, &mut probe, now, cost);
        }
        for _ in 0..remaining {
            prop_assert!(send(&p, &mut probe, now, 1));
        }
        prop_assert!(!decide(&p, &probe, now, 1));
        // reset_after_ms: from then on the window is empty, a ms earlier it is not.
        let after = if allowed { let mut a = log.clone(); send(&p, &mut a, now, cost); a } else { log.clone() };
        if reset > 0 {
            prop_assert_eq!(used(&after, &p, now + reset), 0);
            prop_assert!(used(&after, &p, now + reset - 1) > 0);
        }
    }

    /// With the clock jumping back and forth: never a panic, never more than `limit` in the
    /// window, the log stays canonical, and one window after any instant the client is free.
    #[test]
    fn survives_clock_steps(p in arb_sliding(), steps in prop::collection::vec((0u64..10_000_000, 1u64..=4), 1..80)) {
        let mut log = Log::EMPTY;
        for (now, cost) in steps {
            send(&p, &mut log, now, cost);
            prop_assert!(used(&log, &p, now) <= p.limit());
            let parts: Vec<_> = log.parts().collect();
            prop_assert_eq!(Log::from_parts(log.base_ms(), log.window_ms(), &parts), Some(log.clone()));
            prop_assert_eq!(used(&log, &p, now + p.window_ms()), 0);
        }
    }
}

#[test]
fn a_log_keeps_the_window_it_was_recorded_under() {
    let p = sliding(1, 1000);
    let mut log = Log::EMPTY;
    assert!(send(&p, &mut log, 0, 1));
    assert_eq!(log.window_ms(), 1000);
    // Read under a longer window two seconds later, the request the old window forgot does
    // not count again (it was not pruned: nothing wrote since).
    let longer = sliding(1, 10_000);
    assert_eq!(used(&log, &longer, 2000), 0);
    assert!(decide(&longer, &log, 2000, 1));
    // While it is live it counts, for as long as its own window holds it.
    assert_eq!(used(&log, &longer, 999), 1);
    // Without a limit, the log knows when it is empty (a usage-only key's expiry).
    assert_eq!(
        <Sliding as KindRules>::own_empty_at_ms(&log, 500),
        Some(1000)
    );
    // Recording under the longer window keeps what counts, under that window from then on.
    let mut l2 = Log::EMPTY;
    assert!(send(&p, &mut l2, 0, 1));
    l2.record(&sliding(5, 10_000), 500, 1);
    assert_eq!(
        (l2.window_ms(), used(&l2, &sliding(5, 10_000), 9_999)),
        (10_000, 2)
    );
    // A log that does not know its window (written before logs kept it) is read with the
    // reader's, and does not know when it is empty on its own.
    let unknown = Log::from_parts(0, 0, &[(0, 1)]).unwrap();
    assert_eq!(used(&unknown, &longer, 2000), 1);
    assert_eq!(<Sliding as KindRules>::own_empty_at_ms(&unknown, 0), None);
}

#[test]
fn carrying_keeps_what_the_old_window_held_under_the_new_one() {
    let mut log = Log::EMPTY;
    let old = sliding(10, 1000);
    assert!(send(&old, &mut log, 0, 2));
    assert!(send(&old, &mut log, 800, 3));
    // At 1500 the first entry has left the old window; the second is carried.
    let grown = sliding(10, 10_000);
    let carried = grown.carry(&log, 1500);
    assert_eq!(
        (carried.window_ms(), used(&carried, &grown, 1500)),
        (10_000, 3)
    );
    // ... and now counts for the new window.
    assert_eq!(used(&carried, &grown, 10_799), 3);
    // Shrinking: what the new window no longer holds is gone.
    let shrunk = sliding(10, 100);
    assert_eq!(used(&shrunk.carry(&log, 850), &shrunk, 850), 3);
    assert!(shrunk.carry(&log, 950).is_empty());
    // To another kind: the requests still inside the old window, at the change.
    assert_eq!(
        <Sliding as KindRules>::export(&log, 1500),
        Carried::Requests(3)
    );
    assert_eq!(<Sliding as KindRules>::export(&log, 1800), Carried::Nothing);
}

#[test]
fn a_gcra_backlog_is_counted_as_the_requests_this_limit_admits_in_it() {
    // 500 ms owed, under 10 per 1000 ms: 5 requests, at the instant of the change.
    let p = sliding(10, 1000);
    let log = p.import(Carried::Until(Tat::new(10_500, 0, 1).unwrap()), 10_000);
    assert_eq!(
        (
            log.base_ms(),
            log.parts().collect::<Vec<_>>(),
            log.window_ms()
        ),
        (10_000, vec![(0, 5)], 1000)
    );
    // Rounded up, at most the limit.
    let log = p.import(Carried::Until(Tat::new(10_000, 1, 3).unwrap()), 10_000);
    assert_eq!(log.parts().collect::<Vec<_>>(), [(0, 1)]);
    let log = p.import(Carried::Until(Tat::new(99_000, 0, 1).unwrap()), 10_000);
    assert_eq!(log.parts().collect::<Vec<_>>(), [(0, 10)]);
    assert!(p
        .import(Carried::Until(Tat::new(9_000, 0, 1).unwrap()), 10_000)
        .is_empty());
    assert_eq!(
        p.import(Carried::Requests(4), 7)
            .parts()
            .collect::<Vec<_>>(),
        [(0, 4)]
    );
}

#[test]
fn a_replica_records_what_the_master_recorded() {
    let p = sliding(5, 1000);
    let (mut master, mut replica) = (Log::EMPTY, Log::EMPTY);
    for (at, cost) in [(0, 1), (10, 2), (1005, 1), (1500, 2)] {
        assert!(send(&p, &mut master, at, cost));
        assert!(replica.record_sent(at, cost, 1000));
        assert_eq!(replica, master);
    }
    // A log written by an older master (no window) stays without one.
    let mut old = Log::from_parts(0, 0, &[(0, 1)]).unwrap();
    assert!(old.record_sent(500, 1, 1000));
    assert_eq!((old.window_ms(), old.len()), (0, 2));
    // Impossible records are refused.
    assert!(!Log::EMPTY.clone().record_sent(0, 0, 1000));
    assert!(!Log::EMPTY.clone().record_sent(0, 1, 0));
    assert!(!Log::EMPTY.clone().record_sent(0, 1001, 1000));
    let mut full = Log::from_parts(0, 1000, &[(0, 1000)]).unwrap();
    assert!(!full.record_sent(1, 1, 1000), "over the bound");
}

#[test]
fn a_usage_of_either_kind_takes_40_bytes() {
    assert_eq!(std::mem::size_of::<Log>(), 40);
    assert_eq!(std::mem::size_of::<crate::kinds::Usage>(), 40);
}
