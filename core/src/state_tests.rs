//! Specification of reconfiguration and reporting: the rules of `state.rs`, each as a table
//! case from the examples and as a property over random histories and random
//! reconfigurations, checked against what a client can observe (decisions and numbers).

use super::*;
use crate::decide::{decide, numbers};
use crate::kinds::gcra::{Gcra, Tat};
use crate::kinds::sliding::{Log, Sliding};
use crate::kinds::Limit;
use crate::policy::Stored;
use proptest::prelude::*;

fn gcra(limit: u64, window_ms: u64, burst: u64) -> Limit {
    Limit::Gcra(Gcra::new(limit, window_ms, burst).unwrap())
}

fn sliding(limit: u64, window_ms: u64) -> Limit {
    Limit::Sliding(Sliding::new(limit, window_ms).unwrap())
}

fn stored(limits: &[Limit]) -> Stored {
    Stored::new(Policy::new(limits).unwrap(), 0, false).unwrap()
}

/// A configured key: `RL.CONFIG` at `at`, then each `(gap, cost)` request after it.
fn configured(limits: &[Limit], at: u64, trace: &[(u64, u64)]) -> (State, u64) {
    let s = stored(limits);
    let mut state = State::configure(None, s, at);
    let mut now = at;
    for &(gap, cost) in trace {
        now += gap;
        request(&mut state, &s.policy, now, cost);
    }
    (state, now)
}

/// `RL.PEEK`'s remaining and `RL.THROTTLE`'s allowed for a request of `cost` at `now`.
fn peek(state: &State, now: u64, cost: u64) -> (bool, u64) {
    let p = state.stored.unwrap().policy;
    let v = state.view(&p, now);
    let d = decide(&p, v.as_slice(), now, cost);
    let n = numbers(&p, v.as_slice(), Some(&d), now, cost);
    (d.allowed, n.remaining)
}

/// How many cost-1 requests pass in a row at each instant of `probes` (each on the state the
/// previous ones left): what a client can get out of a state from then on.
fn admitted(mut state: State, probes: &[u64]) -> Vec<u64> {
    let p = state.stored.unwrap().policy;
    probes
        .iter()
        .map(|&t| {
            let mut n = 0;
            while n < 2000 && request(&mut state, &p, t, 1).0.allowed {
                n += 1;
            }
            n
        })
        .collect()
}

#[test]
fn a_round_trip_through_another_kind_changes_nothing() {
    // The first example: SLIDING 10/min, five requests, 30 s later GCRA and back.
    let s = [sliding(10, 60_000)];
    let (state, _) = configured(&s, 0, &[(0, 1); 5]);
    assert_eq!(peek(&state, 30_000, 1), (true, 4));
    let there = State::configure(Some(state.clone()), stored(&[gcra(10, 60_000, 0)]), 30_000);
    let back = State::configure(Some(there), stored(&s), 30_000);
    assert_eq!(back, state, "the same state: nothing was carried at all");
    assert_eq!(peek(&back, 30_000, 1), (true, 4));
    // So 5 more pass within the minute, not 10.
    assert_eq!(admitted(back, &[30_000, 59_999, 60_000]), [5, 0, 5]);
}

#[test]
fn only_what_is_live_under_the_old_limit_is_carried() {
    // The second example: a full SLIDING window at 0, GCRA at 120 s. The requests
    // left the window at 60 s; whether or not a later request pruned them, none is carried.
    let s = [sliding(10, 60_000)];
    let g = stored(&[gcra(9, 6_545_900, 0)]);
    let (plain, _) = configured(&s, 0, &[(0, 10)]);
    let (pruned, _) = configured(&s, 0, &[(0, 10), (61_000, 1)]);
    let a = State::configure(Some(plain), g, 120_000);
    let b = State::configure(Some(pruned), g, 120_000);
    assert_eq!(peek(&a, 120_000, 1), (true, 8));
    // The extra request at 61 s is live, and costs its own share: one request, no more.
    assert_eq!(peek(&b, 120_000, 1), (true, 7));
}

#[test]
fn a_longer_window_revives_nothing_the_old_one_forgot() {
    // The third example: 1 per second, one request at 0; at 2 s, 1 per 10 s.
    let (state, _) = configured(&[sliding(1, 1000)], 0, &[(0, 1)]);
    let longer = State::configure(Some(state), stored(&[sliding(1, 10_000)]), 2000);
    assert_eq!(peek(&longer, 2000, 1), (true, 0));
    // A request still live at the change is carried, and counts under the new window.
    let (state, _) = configured(&[sliding(1, 1000)], 0, &[(0, 1)]);
    let longer = State::configure(Some(state), stored(&[sliding(1, 10_000)]), 500);
    assert!(!peek(&longer, 500, 1).0);
    assert!(!peek(&longer, 9999, 1).0);
    assert!(peek(&longer, 10_000, 1).0);
}

#[test]
fn a_tightened_gcra_limit_reads_at_most_one_full_bucket_from_the_change() {
    // 10 per minute, all used; then 10 per 6 s: the backlog of 60 s reads as one full
    // bucket (6 s) from the change, so the retry advertised then holds without any write.
    let (before, _) = configured(&[gcra(10, 60_000, 0)], 0, &[(0, 10)]);
    let tight = stored(&[gcra(10, 6000, 0)]);
    let state = State::configure(Some(before.clone()), tight, 0);
    let p = tight.policy;
    let v = state.view(&p, 0);
    let d = decide(&p, v.as_slice(), 0, 1);
    let n = numbers(&p, v.as_slice(), Some(&d), 0, 1);
    assert_eq!((d.allowed, n.retry_after_ms), (false, Some(600)));
    assert!(peek(&state, 600, 1).0, "the retry told at the change holds");
    // And a round trip at the same instant gives the whole backlog back.
    let back = State::configure(Some(state), stored(&[gcra(10, 60_000, 0)]), 0);
    assert_eq!(back, before);
    assert!(!peek(&back, 5999, 1).0);
}

#[test]
fn a_usage_only_key_knows_when_it_is_empty() {
    // Recorded under an inline SLIDING limit: its own reset is its window after the last
    // request, without the policy (what RL.INFO and RL.RESET tell, also after PERSIST).
    let p = Policy::new(&[sliding(10, 60_000)]).unwrap();
    let mut state = State::new(Usages::empty_for(&p), None, None).unwrap();
    for t in [0, 10, 20] {
        request(&mut state, &p, t, 1);
    }
    assert_eq!(state.own_empty_at_ms(30, 0), 60_020);
    let s = status(
        state.as_ref(),
        Some(&Policy::single(gcra(100, 1000, 0))),
        30,
        None,
    );
    assert_eq!(s.reset_after_ms, 59_990);
    // Two GCRA limits: until both are empty.
    let p = Policy::new(&[gcra(10, 60_000, 0), gcra(100, 3_600_000, 0)]).unwrap();
    let mut state = State::new(Usages::empty_for(&p), None, None).unwrap();
    request(&mut state, &p, 0, 5);
    assert_eq!(
        status(state.as_ref(), None, 0, None).reset_after_ms,
        180_000
    );
}

#[test]
fn states_the_commands_cannot_hold_are_refused() {
    let p = Policy::new(&[gcra(1, 1000, 0), sliding(2, 1000)]).unwrap();
    let s = Stored::new(p, 0, false).unwrap();
    assert!(
        State::new(Usages::new(), None, None).is_none(),
        "a usage-only key has usage"
    );
    assert!(
        State::new(Usages::empty_for(&p), None, Some(5)).is_none(),
        "pending needs a policy"
    );
    assert!(State::new(
        Usages::empty_for(&Policy::single(gcra(1, 1, 0))),
        Some(s),
        None
    )
    .is_none());
    assert!(State::new(
        Usages::empty_for(&Policy::single(gcra(1, 1, 0))),
        Some(s),
        Some(5)
    )
    .is_some());
    assert!(State::new(Usages::empty_for(&p), Some(s), None).is_some());
}

fn arb_limit() -> impl Strategy<Value = Limit> {
    prop_oneof![
        (1u64..=8, 1u64..=3000, 0u64..=8).prop_filter_map("valid", |(l, w, b)| Gcra::new(l, w, b)
            .ok()
            .map(Limit::Gcra)),
        (1u64..=8, 1u64..=3000).prop_map(|(l, w)| sliding(l, w)),
    ]
}

fn arb_stored() -> impl Strategy<Value = Stored> {
    prop::collection::vec(arb_limit(), 1..=3).prop_map(|v| stored(&v))
}

fn arb_trace() -> impl Strategy<Value = Vec<(u64, u64)>> {
    prop::collection::vec(
        (prop_oneof![Just(0u64), 0u64..200, 0u64..2000], 1u64..=3),
        0..30,
    )
}

fn arb_probes() -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(0u64..4000, 1..8).prop_map(|mut v| {
        v.sort_unstable();
        v
    })
}

/// The same state with everything that is no longer live at `at` dropped (expired GCRA
/// backlogs emptied, log entries outside their own window removed): what a prune by some
/// later request would have left.
fn pruned(state: &State, at: u64) -> State {
    let mut out = state.clone();
    let p = state.stored.unwrap().policy;
    for (u, l) in out.usages.iter_mut().zip(p.limits()) {
        match (u, l) {
            (Usage::Gcra(t), _) if t.empty_at_ms() <= at => *t = Tat::EMPTY,
            (Usage::Sliding(log), Limit::Sliding(s)) => {
                let window = match log.window_ms() {
                    0 => s.window_ms(),
                    w => w,
                };
                let parts: Vec<(u64, u64)> = log
                    .parts()
                    .map(|(o, c)| (log.base_ms() + o, c))
                    .filter(|&(t, _)| t + window > at)
                    .collect();
                let base = parts.first().map_or(0, |p| p.0);
                let rel: Vec<(u64, u64)> = parts.iter().map(|&(t, c)| (t - base, c)).collect();
                *log = Log::from_parts(base, log.window_ms(), &rel).unwrap_or_default();
            }
            _ => {}
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    /// Any sequence of reconfigurations within one instant reads exactly as the last one
    /// alone, from the usage before the first: so a round trip changes nothing, and no such
    /// sequence gives more room than its start had.
    #[test]
    fn reconfigurations_at_one_instant_compose(
        start in arb_stored(), trace in arb_trace(), chain in prop::collection::vec(arb_stored(), 1..5), probes in arb_probes()
    ) {
        let (state, now) = configured(start.policy.limits(), 0, &trace);
        let mut chained = state.clone();
        for s in &chain {
            chained = State::configure(Some(chained), *s, now);
        }
        let last = *chain.last().unwrap();
        let direct = State::configure(Some(state.clone()), last, now);
        let at: Vec<u64> = probes.iter().map(|p| now + p).collect();
        prop_assert_eq!(admitted(chained.clone(), &at), admitted(direct, &at));
        // Back to the start: exactly as before.
        let back = State::configure(Some(chained), start, now);
        prop_assert_eq!(admitted(back, &at), admitted(state, &at));
    }

    /// What had expired under the old limit at the change never counts, whether or not
    /// anything pruned it: the same history, pruned or not, reads the same after any change.
    #[test]
    fn nothing_expired_is_carried(
        start in arb_stored(), trace in arb_trace(), next in arb_stored(), wait in 0u64..3000, probes in arb_probes()
    ) {
        let (state, now) = configured(start.policy.limits(), 0, &trace);
        let at = now + wait;
        let a = State::configure(Some(state.clone()), next, at);
        let b = State::configure(Some(pruned(&state, at)), next, at);
        let probes: Vec<u64> = probes.iter().map(|p| at + p).collect();
        prop_assert_eq!(admitted(a, &probes), admitted(b, &probes));
    }

    /// More past usage never gives more room after a change: a history with more requests
    /// (the same, and then some more at its last instant) leaves no more remaining at any
    /// later instant, whatever the new limits.
    #[test]
    fn more_usage_never_gives_more_room(
        start in arb_stored(), trace in arb_trace(), extra in prop::collection::vec(1u64..=3, 1..6),
        next in arb_stored(), wait in 0u64..3000, probes in arb_probes()
    ) {
        let (less, now) = configured(start.policy.limits(), 0, &trace);
        let mut more = less.clone();
        for cost in extra {
            request(&mut more, &start.policy, now, cost);
        }
        let at = now + wait;
        let more = State::configure(Some(more), next, at);
        let less = State::configure(Some(less), next, at);
        for p in probes {
            prop_assert!(peek(&more, at + p, 1).1 <= peek(&less, at + p, 1).1, "at +{}", p);
        }
    }

    /// Reconfigurations at different instants each carry what was live at their own instant:
    /// reading after the second is reading the first's result, as of the second.
    #[test]
    fn changes_at_different_instants_carry_from_each_instant(
        start in arb_stored(), trace in arb_trace(), first in arb_stored(), second in arb_stored(),
        gap in 1u64..3000, probes in arb_probes()
    ) {
        let (state, now) = configured(start.policy.limits(), 0, &trace);
        let once = State::configure(Some(state), first, now);
        // The first change, written (as any request would write it) ...
        let mut written = once.clone();
        written.usages = once.view(&first.policy, now).into_usages();
        written.pending_at_ms = None;
        let a = State::configure(Some(once), second, now + gap);
        let b = State::configure(Some(written), second, now + gap);
        let probes: Vec<u64> = probes.iter().map(|p| now + gap + p).collect();
        prop_assert_eq!(admitted(a, &probes), admitted(b, &probes));
    }

    /// A usage-only key's reset is when its usage as recorded is empty, which is its expiry
    /// (what the module sets): under any reading policy, and also when nothing reads it.
    #[test]
    fn a_usage_only_keys_reset_is_its_own_expiry(policy in arb_stored(), trace in arb_trace(), probe in 0u64..5000) {
        let p = policy.policy;
        let mut state = State::new(Usages::empty_for(&p), None, None).unwrap();
        let mut now = 0;
        for (gap, cost) in trace {
            now += gap;
            request(&mut state, &p, now, cost);
        }
        let expiry = state.own_empty_at_ms(now, now);
        let at = now + probe;
        for reading in [None, Some(&p), Some(&Policy::single(gcra(3, 1000, 0)))] {
            prop_assert_eq!(status(state.as_ref(), reading, at, None).reset_after_ms, expiry.saturating_sub(at));
        }
    }
}

/// Whatever the clock, a reconfiguration leaves a state that loads back (found by the codec
/// fuzz target with a clock past the last storable instant).
#[test]
fn a_reconfiguration_at_any_clock_leaves_a_valid_state() {
    let g = Limit::Gcra(Gcra::new(10, 1000, 0).unwrap());
    let sl = Limit::Sliding(Sliding::new(10, 1000).unwrap());
    for now in [
        0,
        1_700_000_000_000,
        crate::kinds::gcra::MAX_TAT_MS,
        u64::MAX,
    ] {
        let mut s = State::configure(None, Stored::new(Policy::single(sl), 0, false).unwrap(), 0);
        request(&mut s, &Policy::single(sl), 0, 5);
        // Another kind: the change is pending until the next write.
        let s = State::configure(
            Some(s),
            Stored::new(Policy::single(g), 0, false).unwrap(),
            now,
        );
        assert!(s.pending_at_ms.is_some());
        assert!(
            State::new(s.usages.clone(), s.stored, s.pending_at_ms).is_some(),
            "{now}"
        );
    }
}
