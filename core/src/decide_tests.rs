//! Specification of the decision over a policy and of its numbers: table cases, then
//! property tests of the all-or-nothing rule against independent per-limit models, and of
//! the exactness of every number (a retry at `retry_after_ms` passes and a ms earlier does
//! not; `remaining` requests pass and one more does not; `reset_after_ms` is when every limit
//! is empty).

use super::*;
use crate::kinds::gcra::{Gcra, Tat};
use crate::kinds::sliding::{Log, Sliding};
use crate::kinds::{KindRules, Limit};
use crate::state::Usages;
use proptest::prelude::*;

fn gcra(limit: u64, window_ms: u64, burst: u64) -> Limit {
    Limit::Gcra(Gcra::new(limit, window_ms, burst).unwrap())
}

fn sliding(limit: u64, window_ms: u64) -> Limit {
    Limit::Sliding(Sliding::new(limit, window_ms).unwrap())
}

fn set(limits: &[Limit]) -> Policy {
    Policy::new(limits).unwrap()
}

/// One request as `RL.THROTTLE` takes it: decide, the numbers, and record if allowed (or
/// store the repair a denial reads).
fn step(p: &Policy, usages: &mut Usages, now: u64, cost: u64) -> Numbers {
    let d = decide(p, usages, now, cost);
    let n = numbers(p, usages, Some(&d), now, cost);
    if d.allowed {
        record(p, usages, &d, now, cost);
    } else {
        repair(p, usages, now);
    }
    n
}

#[test]
fn ten_per_second_and_twenty_per_minute() {
    let p = set(&[sliding(10, 1000), sliding(20, 60_000)]);
    let mut u = Usages::empty_for(&p);
    let t0 = 1_000_000;
    for _ in 0..10 {
        assert!(step(&p, &mut u, t0, 1).allowed);
    }
    // The per-second limit binds first...
    let o = step(&p, &mut u, t0 + 10, 1);
    assert_eq!(
        (o.allowed, o.binding, o.limit, o.remaining, o.retry_after_ms),
        (false, 0, 10, 0, Some(990))
    );
    for _ in 0..10 {
        assert!(step(&p, &mut u, t0 + 1000, 1).allowed);
    }
    // ...then the per-minute one, told with its own wait; reset is until both are empty.
    let o = step(&p, &mut u, t0 + 2000, 1);
    assert_eq!(
        (
            o.allowed,
            o.binding,
            o.limit,
            o.remaining,
            o.retry_after_ms,
            o.reset_after_ms
        ),
        (false, 1, 20, 0, Some(58_000), 59_000)
    );
    assert!(step(&p, &mut u, t0 + 60_000, 1).allowed);
}

#[test]
fn a_denial_consumes_nothing_in_any_limit() {
    // The GCRA limit admits, the SLIDING one denies: neither records.
    let p = set(&[gcra(100, 1000, 0), sliding(1, 1000)]);
    let mut u = Usages::empty_for(&p);
    assert!(step(&p, &mut u, 0, 1).allowed);
    let before = u.clone();
    let o = step(&p, &mut u, 5, 1);
    assert!(!o.allowed);
    assert_eq!(u, before);
    assert_eq!((o.each[0].wait_ms, o.each[1].wait_ms), (Some(0), Some(995)));
    assert_eq!((o.remaining, o.each[0].remaining), (0, 99));
}

#[test]
fn the_binding_limit_is_the_longest_wait_or_the_fewest_left() {
    let p = set(&[gcra(10, 1000, 0), gcra(5, 1000, 0), sliding(8, 100)]);
    let mut u = Usages::empty_for(&p);
    let o = step(&p, &mut u, 0, 1);
    assert_eq!((o.allowed, o.binding, o.remaining), (true, 1, 4));
    for _ in 0..4 {
        step(&p, &mut u, 0, 1);
    }
    // GCRA 5/s needs 200 ms; the others admit.
    let o = step(&p, &mut u, 0, 1);
    assert_eq!(
        (o.allowed, o.binding, o.retry_after_ms),
        (false, 1, Some(200))
    );
    // A cost above a limit's capacity never passes: that limit binds (the first such), with
    // no retry time.
    let o = step(&p, &mut u, 0, 9);
    assert_eq!((o.allowed, o.binding, o.retry_after_ms), (false, 1, None));
    let o = step(&p, &mut u, 5000, 9);
    assert_eq!((o.allowed, o.binding, o.retry_after_ms), (false, 1, None));
}

#[test]
fn on_a_tie_the_first_limit_given_binds() {
    // Allowed with the same remaining in both: the first.
    let p = set(&[gcra(5, 1000, 0), sliding(5, 1000)]);
    let mut u = Usages::empty_for(&p);
    let o = step(&p, &mut u, 0, 1);
    assert_eq!((o.binding, o.remaining), (0, 4));
    // Denied with the same wait in both (both full, both free again at the same instant).
    let p = set(&[sliding(1, 1000), sliding(1, 1000), gcra(1, 1000, 1)]);
    let mut u = Usages::empty_for(&p);
    assert!(step(&p, &mut u, 0, 1).allowed);
    let o = step(&p, &mut u, 0, 1);
    assert_eq!(
        (o.allowed, o.binding, o.retry_after_ms),
        (false, 0, Some(1000))
    );
    assert_eq!(
        o.each[..3].iter().map(|e| e.wait_ms).collect::<Vec<_>>(),
        [Some(1000); 3]
    );
}

#[test]
fn reset_after_ms_is_until_every_limit_is_empty() {
    // The binding limit is the per-second one; the daily one empties much later.
    let p = set(&[gcra(1, 1000, 1), gcra(10, 86_400_000, 10)]);
    let mut u = Usages::empty_for(&p);
    let o = step(&p, &mut u, 0, 1);
    assert_eq!(
        (
            o.binding,
            o.each[0].reset_after_ms,
            o.each[1].reset_after_ms
        ),
        (0, 1000, 8_640_000)
    );
    assert_eq!(o.reset_after_ms, 8_640_000);
    // With no request (RL.INFO): the same reset, and the top level is the largest.
    let i = numbers(&p, &u, None, 10, 0);
    assert_eq!(
        i.reset_after_ms,
        i.each[..2].iter().map(|e| e.reset_after_ms).max().unwrap()
    );
    assert_eq!(
        (i.each[0].remaining, i.each[1].remaining, i.remaining),
        (0, 9, 0)
    );
}

#[test]
fn a_clock_step_back_is_repaired_even_when_denied() {
    let p = set(&[sliding(1, 1000)]);
    let mut u = Usages::empty_for(&p);
    assert!(step(&p, &mut u, 50_000, 1).allowed);
    assert!(needs_repair(&p, &u, 10_000));
    let o = step(&p, &mut u, 10_000, 1);
    assert!(!o.allowed && !needs_repair(&p, &u, 10_000));
    assert_eq!(o.retry_after_ms, Some(1000));
    assert!(step(&p, &mut u, 11_000, 1).allowed);
}

#[test]
fn a_gcra_tat_far_ahead_is_read_and_stored_as_one_full_bucket() {
    // 1 per second, burst 2: a full bucket is 2000 ms. A TAT an hour ahead (the clock
    // stepped back) reads as now + 2000 ms, and the denial stores that repair.
    let p = set(&[gcra(1, 1000, 2), sliding(5, 1000)]);
    let now = 10_000_000;
    let mut u = Usages::empty_for(&p);
    u[0] = crate::kinds::Usage::Gcra(Tat::new(now + 3_600_000, 0, 1).unwrap());
    let o = step(&p, &mut u, now, 1);
    assert!(!o.allowed);
    assert_eq!(o.retry_after_ms, Some(1000));
    assert_eq!(
        u[0],
        crate::kinds::Usage::Gcra(Tat::new(now + 2000, 0, 1).unwrap())
    );
    assert!(step(&p, &mut u, now + 1000, 1).allowed);
}

#[test]
fn one_gcra_limit_tells_what_the_bucket_says() {
    let p = set(&[gcra(10, 60_000, 0)]);
    let mut u = Usages::empty_for(&p);
    let o = step(&p, &mut u, 1_000_000, 1);
    assert_eq!(
        (
            o.allowed,
            o.limit,
            o.remaining,
            o.retry_after_ms,
            o.reset_after_ms
        ),
        (true, 10, 9, None, 6000)
    );
    for _ in 0..9 {
        step(&p, &mut u, 1_000_000, 1);
    }
    // The next slot opens 6000 ms after the first request, i.e. 5000 ms from 1000 ms on.
    let o = step(&p, &mut u, 1_001_000, 1);
    assert_eq!(
        (o.allowed, o.remaining, o.retry_after_ms, o.reset_after_ms),
        (false, 0, Some(5000), 59_000)
    );
    // 3 per second, burst 1: T = 333.33.. ms; the retry is at ceil(333.33..) = 334 ms.
    let p = set(&[gcra(3, 1000, 1)]);
    let mut u = Usages::empty_for(&p);
    step(&p, &mut u, 0, 1);
    let o = step(&p, &mut u, 0, 1);
    assert_eq!((o.retry_after_ms, o.reset_after_ms), (Some(334), 334));
    // Heavier than the burst: never, so no retry time, and nothing owed.
    let p = set(&[gcra(10, 1000, 5)]);
    let o = step(&p, &mut Usages::empty_for(&p), 0, 6);
    assert_eq!(
        (o.allowed, o.remaining, o.retry_after_ms, o.reset_after_ms),
        (false, 5, None, 0)
    );
}

fn arb_limit() -> impl Strategy<Value = Limit> {
    prop_oneof![
        (1u64..=10, 1u64..=2000, 0u64..=10).prop_filter_map("valid", |(l, w, b)| Gcra::new(
            l, w, b
        )
        .ok()
        .map(Limit::Gcra)),
        (1u64..=10, 1u64..=2000).prop_map(|(l, w)| sliding(l, w)),
    ]
}

fn arb_policy() -> impl Strategy<Value = Policy> {
    prop::collection::vec(arb_limit(), 1..=MAX_LIMITS).prop_map(|v| set(&v))
}

fn arb_trace() -> impl Strategy<Value = Vec<(u64, u64)>> {
    prop::collection::vec(
        (prop_oneof![Just(0u64), 0u64..100, 0u64..3000], 1u64..=4),
        1..80,
    )
}

/// Independent per-limit state: a GCRA TAT, or a plain list of admitted instants.
#[derive(Clone)]
enum Own {
    Gcra(Gcra, Tat),
    Sliding(Sliding, Vec<(u64, u64)>),
}

impl Own {
    fn admits(&self, now: u64, cost: u64) -> bool {
        match self {
            Own::Gcra(p, tat) => p.decide(*tat, now, cost).is_some(),
            Own::Sliding(s, list) => {
                let used: u64 = list
                    .iter()
                    .filter(|(t, _)| t + s.window_ms() > now)
                    .map(|(_, c)| c)
                    .sum();
                used + cost <= s.limit()
            }
        }
    }

    fn take(&mut self, now: u64, cost: u64) {
        match self {
            Own::Gcra(p, tat) => {
                if let Some(t) = p.decide(*tat, now, cost) {
                    *tat = t;
                }
            }
            Own::Sliding(_, list) => list.push((now, cost)),
        }
    }
}

fn models(p: &Policy) -> Vec<Own> {
    p.limits()
        .iter()
        .map(|l| match l {
            Limit::Gcra(g) => Own::Gcra(*g, Tat::EMPTY),
            Limit::Sliding(s) => Own::Sliding(*s, Vec::new()),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// A request passes iff every limit, modelled on its own, admits it; a denied request
    /// leaves every limit's usage exactly as it was.
    #[test]
    fn all_or_nothing(p in arb_policy(), trace in arb_trace()) {
        let (mut u, mut own, mut now) = (Usages::empty_for(&p), models(&p), 1_000_000u64);
        for (gap, cost) in trace {
            now += gap;
            let want = own.iter().all(|m| m.admits(now, cost));
            let before = u.clone();
            let o = step(&p, &mut u, now, cost);
            prop_assert_eq!(o.allowed, want);
            if want {
                own.iter_mut().for_each(|m| m.take(now, cost));
            } else {
                prop_assert_eq!(&u, &before);
            }
        }
    }

    /// For every policy: at `now + retry_after_ms` the same request passes, one ms earlier it
    /// does not; `remaining` cost-1 requests pass now and one more does not; at `now +
    /// reset_after_ms` every limit is empty (a full capacity passes) and a ms earlier not.
    #[test]
    fn the_numbers_are_exact(p in arb_policy(), trace in arb_trace(), cost in 1u64..=12) {
        let (mut u, mut now) = (Usages::empty_for(&p), 1_000u64);
        for (gap, c) in trace {
            now += gap;
            step(&p, &mut u, now, c);
        }
        let d = decide(&p, &u, now, cost);
        let o = numbers(&p, &u, Some(&d), now, cost);
        if !o.allowed {
            match o.retry_after_ms {
                None => prop_assert!(p.limits().iter().any(|l| cost > l.capacity())),
                Some(r) => {
                    prop_assert!(r >= 1);
                    prop_assert!(decide(&p, &u, now + r, cost).allowed);
                    prop_assert!(!decide(&p, &u, now + r - 1, cost).allowed);
                }
            }
        }
        let mut probe = u.clone();
        if d.allowed {
            record(&p, &mut probe, &d, now, cost);
        }
        for _ in 0..o.remaining {
            prop_assert!(step(&p, &mut probe, now, 1).allowed);
        }
        prop_assert!(!decide(&p, &probe, now, 1).allowed);
        // Empty: every limit is back to what an unused key has.
        let mut after = u.clone();
        if d.allowed {
            record(&p, &mut after, &d, now, cost);
        }
        let empty = numbers(&p, &Usages::empty_for(&p), None, now + o.reset_after_ms, 0);
        let at_reset = numbers(&p, &after, None, now + o.reset_after_ms, 0);
        prop_assert_eq!(at_reset.each, empty.each);
        if o.reset_after_ms > 0 {
            let before = numbers(&p, &after, None, now + o.reset_after_ms - 1, 0);
            prop_assert!(before.each[..p.len()].iter().any(|e| e.reset_after_ms > 0));
        }
    }

    /// RL.PEEK is RL.THROTTLE without the write: the numbers of a hypothetical request are
    /// those the real one gets at that instant, and its retry holds without any write.
    #[test]
    fn peek_tells_what_throttle_would(p in arb_policy(), trace in arb_trace(), cost in 1u64..=6) {
        let (mut u, mut now) = (Usages::empty_for(&p), 1_000u64);
        for (gap, c) in trace {
            now += gap;
            step(&p, &mut u, now, c);
        }
        let peeked = numbers(&p, &u, Some(&decide(&p, &u, now, cost)), now, cost);
        let mut real = u.clone();
        prop_assert_eq!(peeked, step(&p, &mut real, now, cost));
        if let Some(r) = peeked.retry_after_ms {
            prop_assert!(decide(&p, &u, now + r, cost).allowed);
        }
    }

    /// Whatever the clock did before (a GCRA TAT up to a day ahead), a denied client is told
    /// to wait at most one full drain plus the request itself, and that retry passes.
    #[test]
    fn no_retry_is_longer_than_a_full_drain(l in 1u64..=50, w in 1u64..=5000, b in 0u64..=20, ahead in 0u64..86_400_000, cost in 1u64..=5) {
        let g = Gcra::new(l, w, b).unwrap();
        let p = set(&[Limit::Gcra(g)]);
        let now = 1_700_000_000_000u64;
        let mut u = Usages::empty_for(&p);
        u[0] = crate::kinds::Usage::Gcra(Tat::new(now + ahead, 0, 1).unwrap());
        let before = u.clone();
        let o = step(&p, &mut u, now, cost);
        let drain = (g.burst() + cost) * g.window_ms() / g.limit() + 1;
        if let Some(r) = o.retry_after_ms {
            prop_assert!(r <= drain, "{} > {}", r, drain);
            // Against the repair the denial stored, the retry passes. (Read without it, a TAT
            // more than a full bucket ahead is read as one full bucket from each instant:
            // this is why a denial stores the repair.)
            prop_assert!(decide(&p, &u, now + r, cost).allowed);
            prop_assert!(ahead <= g.burst() * g.window_ms() / g.limit() || u != before);
        }
        prop_assert!(o.reset_after_ms <= g.burst() * g.window_ms() / g.limit() + 1);
    }

    /// A policy of one GCRA limit decides exactly as the bucket alone does, and keeps the
    /// same TAT.
    #[test]
    fn one_gcra_limit_is_the_bucket(l in 1u64..=10, w in 1u64..=2000, b in 0u64..=10, trace in arb_trace()) {
        let g = Gcra::new(l, w, b).unwrap();
        let p = set(&[Limit::Gcra(g)]);
        let (mut u, mut tat, mut now) = (Usages::empty_for(&p), Tat::EMPTY, 1_000u64);
        for (gap, cost) in trace {
            now += gap;
            let alone = g.decide(tat, now, cost);
            if let Some(t) = alone {
                tat = t.reduced();
            }
            let o = step(&p, &mut u, now, cost);
            prop_assert_eq!(o.allowed, alone.is_some());
            prop_assert_eq!(o.remaining, g.remaining(tat, now));
            prop_assert_eq!(&u[..], &[crate::kinds::Usage::Gcra(tat)][..]);
        }
    }
}

#[test]
fn an_empty_log_is_what_a_sliding_limit_starts_with() {
    let s = Sliding::new(3, 1000).unwrap();
    assert_eq!(<Sliding as KindRules>::empty(), Log::EMPTY);
    assert_eq!(
        Limit::Sliding(s).empty(),
        crate::kinds::Usage::Sliding(Log::EMPTY)
    );
}
