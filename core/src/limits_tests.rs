//! Specification of several limits per key: table cases, then property tests of the
//! all-or-nothing rule against independent per-limit models, and of the exact numbers.

use super::*;
use proptest::prelude::*;

fn gcra(limit: u64, window_ms: u64, burst: u64) -> Limit {
    Limit::Gcra(Policy::new(limit, window_ms, burst).unwrap())
}

fn sliding(limit: u64, window_ms: u64) -> Limit {
    Limit::Sliding(Sliding::new(limit, window_ms).unwrap())
}

fn set(limits: &[Limit]) -> Limits {
    Limits::new(limits).unwrap()
}

#[test]
fn a_set_holds_one_to_four_limits() {
    let l = sliding(1, 1);
    assert_eq!(Limits::new(&[]), Err(Error::MissingValue));
    assert_eq!(Limits::new(&[l; 5]), Err(Error::TooManyLimits));
    assert_eq!(Limits::new(&[l; 4]).unwrap().len(), 4);
    let p = Policy::new(5, 1000, 0).unwrap();
    assert_eq!(Limits::single(p).single_gcra(), Some(p));
    assert_eq!(set(&[Limit::Gcra(p), l]).single_gcra(), None);
    assert_eq!(set(&[l]).single_gcra(), None);
}

#[test]
fn ten_per_second_and_twenty_per_minute() {
    let limits = set(&[sliding(10, 1000), sliding(20, 60_000)]);
    let mut usage = Vec::new();
    let t0 = 1_000_000;
    for _ in 0..10 {
        assert!(decide(&limits, &mut usage, t0, 1).allowed);
    }
    // The per-second limit binds first...
    let o = decide(&limits, &mut usage, t0 + 10, 1);
    assert_eq!(
        (o.allowed, o.binding, o.limit, o.remaining, o.retry_after_ms),
        (false, 0, 10, 0, Some(990))
    );
    for _ in 0..10 {
        assert!(decide(&limits, &mut usage, t0 + 1000, 1).allowed);
    }
    // ...then the per-minute one, which is told with its own wait and reset.
    let o = decide(&limits, &mut usage, t0 + 2000, 1);
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
    assert!(decide(&limits, &mut usage, t0 + 60_000, 1).allowed);
}

#[test]
fn a_denial_consumes_nothing_in_any_limit() {
    // The GCRA limit admits, the SLIDING one denies: neither records.
    let limits = set(&[gcra(100, 1000, 0), sliding(1, 1000)]);
    let mut usage = Vec::new();
    assert!(decide(&limits, &mut usage, 0, 1).allowed);
    let before = usage.clone();
    let o = decide(&limits, &mut usage, 5, 1);
    assert!(!o.allowed && !o.repaired);
    assert_eq!(usage, before);
    assert_eq!((o.each[0].allowed, o.each[1].allowed), (true, false));
    assert_eq!(o.remaining, 0);
    assert_eq!(o.each[0].remaining, 99);
}

#[test]
fn the_binding_limit_is_the_longest_wait_or_the_fewest_left() {
    let limits = set(&[gcra(10, 1000, 0), gcra(5, 1000, 0), sliding(8, 100)]);
    let mut usage = Vec::new();
    let o = decide(&limits, &mut usage, 0, 1);
    assert_eq!((o.allowed, o.binding, o.remaining), (true, 1, 4));
    for _ in 0..4 {
        decide(&limits, &mut usage, 0, 1);
    }
    // GCRA 5/s needs 200 ms; the others admit.
    let o = decide(&limits, &mut usage, 0, 1);
    assert_eq!(
        (o.allowed, o.binding, o.retry_after_ms),
        (false, 1, Some(200))
    );
    // A cost above a limit's capacity never passes: that limit binds (the first such), with
    // no retry time.
    let o = decide(&limits, &mut usage, 0, 9);
    assert_eq!((o.allowed, o.binding, o.retry_after_ms), (false, 1, None));
    let o = decide(&limits, &mut usage, 5000, 9);
    assert_eq!((o.allowed, o.binding, o.retry_after_ms), (false, 1, None));
}

#[test]
fn usage_follows_the_set_position_by_position() {
    let now = 10_000;
    let mut usage = vec![Usage::Gcra(Tat::new(now + 500, 0, 1).unwrap())];
    // Same kind: kept. A new limit starts empty.
    let limits = set(&[gcra(2, 1000, 0), sliding(3, 1000)]);
    assert!(align(&limits, &mut usage, now));
    assert_eq!(usage[0], Usage::Gcra(Tat::new(now + 500, 0, 1).unwrap()));
    assert_eq!(usage[1], Usage::Sliding(Log::EMPTY));
    assert!(!align(&limits, &mut usage, now));
    // Fewer limits: the rest is dropped.
    assert!(align(&set(&[gcra(2, 1000, 0)]), &mut usage, now));
    assert_eq!(usage.len(), 1);
}

#[test]
fn a_gcra_backlog_becomes_a_share_of_the_sliding_window_that_leaves_with_it() {
    // 500 ms owed under a 1000 ms window of 10: 5 requests, leaving at now + 500.
    let now = 10_000;
    let tat = Usage::Gcra(Tat::new(now + 500, 0, 1).unwrap());
    let s = Sliding::new(10, 1000).unwrap();
    let Usage::Sliding(log) = tat.carried_to(&Limit::Sliding(s), now) else {
        panic!()
    };
    assert_eq!(log.used(&s, now), 5);
    assert_eq!(log.empty_at_ms(&s, now), now + 500);
    // A backlog longer than the window: the whole limit, for one window from now.
    let tat = Usage::Gcra(Tat::new(now + 5000, 0, 1).unwrap());
    let Usage::Sliding(log) = tat.carried_to(&Limit::Sliding(s), now) else {
        panic!()
    };
    assert_eq!(
        (log.used(&s, now), log.empty_at_ms(&s, now)),
        (10, now + 1000)
    );
    // An empty bucket: an empty log.
    let tat = Usage::Gcra(Tat::new(now, 0, 1).unwrap());
    assert_eq!(
        tat.carried_to(&Limit::Sliding(s), now),
        Usage::Sliding(Log::EMPTY)
    );
}

#[test]
fn a_sliding_log_is_replayed_into_a_gcra_bucket() {
    let s = Sliding::new(10, 1000).unwrap();
    let mut log = Log::EMPTY;
    log.record(&s, 1000, 3);
    log.record(&s, 1100, 2);
    // 10 per 1000 ms: T = 100 ms. 3 at 1000 -> TAT 1300; 2 at 1100 -> 1500.
    let p = Policy::new(10, 1000, 0).unwrap();
    assert_eq!(
        Usage::Sliding(log).carried_to(&Limit::Gcra(p), 1200),
        Usage::Gcra(Tat::new(1500, 0, 1).unwrap())
    );
}

#[test]
fn a_clock_step_back_is_repaired_even_when_denied() {
    let limits = set(&[sliding(1, 1000)]);
    let mut usage = Vec::new();
    assert!(decide(&limits, &mut usage, 50_000, 1).allowed);
    let o = decide(&limits, &mut usage, 10_000, 1);
    assert!(!o.allowed && o.repaired);
    assert_eq!(o.retry_after_ms, Some(1000));
    assert!(decide(&limits, &mut usage, 11_000, 1).allowed);
}

#[test]
fn a_gcra_tat_far_ahead_is_read_and_stored_as_one_full_bucket() {
    // 1 per second, burst 2: a full bucket is 2000 ms. A TAT an hour ahead (the clock
    // stepped back) reads as now + 2000 ms, and the denial stores that repair.
    let limits = set(&[gcra(1, 1000, 2), sliding(5, 1000)]);
    let now = 10_000_000;
    let mut usage = vec![
        Usage::Gcra(Tat::new(now + 3_600_000, 0, 1).unwrap()),
        Usage::Sliding(Log::EMPTY),
    ];
    let o = decide(&limits, &mut usage, now, 1);
    assert!(!o.allowed && o.repaired);
    assert_eq!(o.retry_after_ms, Some(1000));
    assert_eq!(usage[0], Usage::Gcra(Tat::new(now + 2000, 0, 1).unwrap()));
    assert!(decide(&limits, &mut usage, now + 1000, 1).allowed);
}

#[test]
fn scaling_scales_every_limit() {
    let limits = set(&[gcra(10, 1000, 0), sliding(10, 1000)]).scaled(50);
    assert_eq!(
        limits.as_slice(),
        &[
            Limit::Gcra(Policy::new(10, 1000, 0).unwrap().scaled(50)),
            sliding(5, 1000)
        ]
    );
}

fn arb_limit() -> impl Strategy<Value = Limit> {
    prop_oneof![
        (1u64..=10, 1u64..=2000, 0u64..=10).prop_filter_map("valid", |(l, w, b)| Policy::new(
            l, w, b
        )
        .ok()
        .map(Limit::Gcra)),
        (1u64..=10, 1u64..=2000).prop_map(|(l, w)| sliding(l, w)),
    ]
}

fn arb_limits() -> impl Strategy<Value = Limits> {
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
    Gcra(Policy, Tat),
    Sliding(Sliding, Vec<(u64, u64)>),
}

impl Own {
    fn admits(&self, now: u64, cost: u64) -> bool {
        match self {
            Own::Gcra(p, tat) => {
                matches!(gcra::decide(p, *tat, now, cost), gcra::Decision::Allowed(_))
            }
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
                if let gcra::Decision::Allowed(t) = gcra::decide(p, *tat, now, cost) {
                    *tat = t;
                }
            }
            Own::Sliding(_, list) => list.push((now, cost)),
        }
    }
}

fn models(limits: &Limits) -> Vec<Own> {
    limits
        .as_slice()
        .iter()
        .map(|l| match l {
            Limit::Gcra(p) => Own::Gcra(*p, Tat::EMPTY),
            Limit::Sliding(s) => Own::Sliding(*s, Vec::new()),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// A request passes iff every limit, modelled on its own, admits it; a denied request
    /// leaves every limit's usage exactly as it was.
    #[test]
    fn all_or_nothing(limits in arb_limits(), trace in arb_trace()) {
        let (mut usage, mut own, mut now) = (Vec::new(), models(&limits), 1_000_000u64);
        for (gap, cost) in trace {
            now += gap;
            let want = own.iter().all(|m| m.admits(now, cost));
            let before = usage.clone();
            let o = decide(&limits, &mut usage, now, cost);
            prop_assert_eq!(o.allowed, want);
            if want {
                own.iter_mut().for_each(|m| m.take(now, cost));
            } else if !before.is_empty() {
                prop_assert_eq!(&usage, &before);
            }
        }
    }

    /// For every set: at `now + retry_after_ms` the same request passes, one ms earlier it
    /// does not; `remaining` cost-1 requests pass now and one more does not.
    #[test]
    fn the_set_numbers_are_exact(limits in arb_limits(), trace in arb_trace(), cost in 1u64..=12) {
        let (mut usage, mut now) = (Vec::new(), 1_000u64);
        for (gap, c) in trace {
            now += gap;
            decide(&limits, &mut usage, now, c);
        }
        let mut probe = usage.clone();
        let o = decide(&limits, &mut probe, now, cost);
        if !o.allowed {
            match o.retry_after_ms {
                None => prop_assert!(limits.as_slice().iter().any(|l| cost > l.capacity())),
                Some(r) => {
                    prop_assert!(r >= 1);
                    prop_assert!(decide(&limits, &mut usage.clone(), now + r, cost).allowed);
                    prop_assert!(!decide(&limits, &mut usage.clone(), now + r - 1, cost).allowed);
                }
            }
            prop_assert_eq!(&probe, &usage);
        }
        let left = o.remaining;
        for _ in 0..left {
            prop_assert!(decide(&limits, &mut probe, now, 1).allowed);
        }
        prop_assert!(!decide(&limits, &mut probe, now, 1).allowed);
    }

    /// A set of one GCRA policy decides and explains exactly as the single-policy code does.
    #[test]
    fn one_gcra_limit_is_the_old_behaviour(l in 1u64..=10, w in 1u64..=2000, b in 0u64..=10, trace in arb_trace()) {
        let p = Policy::new(l, w, b).unwrap();
        let limits = Limits::single(p);
        let (mut usage, mut tat, mut now) = (Vec::new(), Tat::EMPTY, 1_000u64);
        for (gap, cost) in trace {
            now += gap;
            let v = verdict::evaluate(&p, tat, now, cost);
            if let gcra::Decision::Allowed(t) = v.decision { tat = t.reduced(); }
            let o = decide(&limits, &mut usage, now, cost);
            prop_assert_eq!(
                (o.allowed, o.limit, o.remaining, o.retry_after_ms, o.reset_after_ms, o.empty_at_ms.max(now)),
                (matches!(v.decision, gcra::Decision::Allowed(_)), v.limit, v.remaining, v.retry_after_ms, v.reset_after_ms, tat.empty_at_ms().max(now))
            );
            prop_assert_eq!(&usage, &vec![Usage::Gcra(tat)]);
        }
    }
}
