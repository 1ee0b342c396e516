//! Specification of the GCRA decision: table-driven cases, then property tests against an
//! independent reference model (an exact token bucket).

use super::*;
use crate::kinds::KindRules;
use crate::policy::MAX_COST;
use proptest::prelude::*;

fn policy(limit: u64, window_ms: u64, burst: u64) -> Gcra {
    Gcra::new(limit, window_ms, burst).unwrap()
}

fn decide(p: &Gcra, tat: Tat, now_ms: u64, cost: u64) -> Option<Tat> {
    p.decide(tat, now_ms, cost)
}

/// The TAT a denial stores instead of `tat` (a repair), if any.
fn repair(tat: Tat, p: &Gcra, now_ms: u64) -> Option<Tat> {
    let mut t = tat;
    KindRules::repair(p, &mut t, now_ms).then_some(t)
}

/// Sends `n` requests of cost 1 at `now_ms`, returns how many passed and the final TAT.
fn burst_at(p: &Gcra, mut tat: Tat, now_ms: u64, n: u32) -> (u32, Tat) {
    let mut passed = 0;
    for _ in 0..n {
        if let Some(t) = decide(p, tat, now_ms, 1) {
            tat = t;
            passed += 1;
        }
    }
    (passed, tat)
}

#[test]
fn the_brief_example_allows_ten_then_denies_five() {
    let p = policy(10, 60_000, 0);
    let now = 1_700_000_000_000;
    let mut tat = Tat::EMPTY;
    let mut replies = Vec::new();
    for _ in 0..15 {
        match decide(&p, tat, now, 1) {
            Some(t) => {
                tat = t;
                replies.push(true);
            }
            None => replies.push(false),
        }
    }
    assert_eq!(replies, [[true; 10].as_slice(), &[false; 5]].concat());
    // Ten requests of 6000 ms each: the bucket is empty again one window later.
    assert_eq!(tat.empty_at_ms(), now + 60_000);
}

#[test]
fn from_idle_exactly_burst_pass_then_one_per_interval() {
    // 3 per second, burst 5: T = 333.33.. ms.
    let p = policy(3, 1000, 5);
    let t0 = 1_000_000;
    let (passed, tat) = burst_at(&p, Tat::EMPTY, t0, 20);
    assert_eq!(passed, 5);
    // The next slot opens at t0 + T = t0 + 333.33.. ms, i.e. at the whole ms t0 + 334.
    assert_eq!(decide(&p, tat, t0 + 333, 1), None);
    let Some(tat) = decide(&p, tat, t0 + 334, 1) else {
        panic!("a slot is open one interval later")
    };
    assert_eq!(decide(&p, tat, t0 + 334, 1), None);
    // Three intervals are exactly 1000 ms: no drift from the 1/3 ms fractions.
    let (passed, _) = burst_at(&p, tat, t0 + 1000, 10);
    assert_eq!(passed, 2);
}

#[test]
fn denied_request_changes_nothing() {
    let p = policy(1, 1000, 1);
    let Some(tat) = decide(&p, Tat::EMPTY, 5000, 1) else {
        panic!()
    };
    assert_eq!(decide(&p, tat, 5500, 1), None);
    // Still the same TAT, so it passes exactly at 6000.
    assert!(decide(&p, tat, 6000, 1).is_some());
}

#[test]
fn rejects_request_larger_than_burst_even_when_idle() {
    let p = policy(10, 1000, 4);
    assert_eq!(decide(&p, Tat::EMPTY, 1_000_000, 5), None);
    assert!(decide(&p, Tat::EMPTY, 1_000_000, 4).is_some());
}

#[test]
fn cost_weighs_as_n_requests() {
    let p = policy(10, 1000, 10);
    let Some(tat) = decide(&p, Tat::EMPTY, 0, 7) else {
        panic!()
    };
    assert_eq!((tat.ms(), tat.frac()), (700, 0));
    assert_eq!(decide(&p, tat, 0, 4), None);
    assert!(decide(&p, tat, 0, 3).is_some());
}

#[test]
fn bucket_empties_at_its_tat() {
    let p = policy(3, 1000, 3);
    let (_, tat) = burst_at(&p, Tat::EMPTY, 10_000, 1);
    // 333.33.. ms after 10_000: empty from the first whole ms after it.
    assert_eq!((tat.ms(), tat.frac(), tat.den()), (10_333, 1, 3));
    assert_eq!(tat.empty_at_ms(), 10_334);
}

#[test]
fn reconfiguration_rounds_usage_up_never_down() {
    // A TAT of 10_000 + 1/3 ms read under a limit of 2 (half-ms units) becomes 10_000.5.
    let tat = Tat::new(10_000, 1, 3).unwrap();
    let p = policy(2, 1, 1); // T = 0.5 ms, tolerance 0.5 ms
                             // At 10_000 the backlog is 0.5 ms (rounded up from 1/3): a request would need 1 ms.
    assert_eq!(decide(&p, tat, 10_000, 1), None);
    assert!(decide(&p, tat, 10_001, 1).is_some());
}

#[test]
fn clock_going_backwards_grants_nothing_extra() {
    let p = policy(1, 1000, 1);
    let Some(tat) = decide(&p, Tat::EMPTY, 50_000, 1) else {
        panic!()
    };
    assert_eq!(decide(&p, tat, 10_000, 1), None);
}

#[test]
fn a_clock_step_back_costs_at_most_one_full_drain() {
    // 10 per second, burst 10: a full drain is 1000 ms.
    let p = policy(10, 1000, 10);
    let day = 86_400_000;
    let t0 = 1_700_000_000_000;
    // The clock jumps a day ahead, the client empties its bucket, the clock comes back.
    let (n, tat) = burst_at(&p, Tat::EMPTY, t0 + day, 20);
    assert_eq!(n, 10);
    // Back at t0 the TAT reads as one full bucket ahead: denied, and the caller stores the
    // clamped TAT (a repair), so the client drains from there.
    assert_eq!(decide(&p, tat, t0, 1), None);
    let repaired = repair(tat, &p, t0).unwrap();
    assert_eq!(repaired, Tat::new(t0 + 1000, 0, 1).unwrap());
    assert_eq!(decide(&p, repaired, t0 + 99, 1), None);
    assert!(decide(&p, repaired, t0 + 100, 1).is_some());
    // A TAT within one full bucket of now is left alone.
    let near = Tat::new(t0 + 999, 3, 10).unwrap();
    assert_eq!(near.clamped(&p, t0), near);
    assert_eq!(repair(near, &p, t0), None);
}

#[test]
fn extreme_inputs_are_denied_not_overflowed() {
    let p = policy(MAX_LIMIT, 1, MAX_BURST);
    assert!(decide(&p, Tat::EMPTY, 0, MAX_COST).is_some());
    assert_eq!(decide(&p, Tat::EMPTY, u64::MAX, 1), None);
    assert_eq!(decide(&p, Tat::EMPTY, 0, u64::MAX), None);
    let slow = policy(1, MAX_WINDOW_MS, 10);
    let far = Tat::new(MAX_TAT_MS, 0, 1).unwrap();
    assert_eq!(decide(&slow, far, MAX_TAT_MS - 1, 1), None);
}

#[test]
fn reduced_keeps_the_instant_and_lowers_the_terms() {
    let t = Tat::new(7, 6, 10).unwrap().reduced();
    assert_eq!((t.ms(), t.frac(), t.den()), (7, 3, 5));
    let t = Tat::new(7, 0, 1000).unwrap().reduced();
    assert_eq!((t.ms(), t.frac(), t.den()), (7, 0, 1));
    let t = Tat::new(7, 999_999_999, MAX_LIMIT).unwrap().reduced();
    assert_eq!((t.frac(), t.den()), (999_999_999, MAX_LIMIT));
}

#[test]
fn tat_new_rejects_impossible_parts() {
    assert!(Tat::new(0, 0, 0).is_none());
    assert!(Tat::new(0, 3, 3).is_none());
    assert!(Tat::new(0, 0, MAX_LIMIT + 1).is_none());
    assert!(Tat::new(MAX_TAT_MS + 1, 0, 1).is_none());
    assert!(Tat::new(MAX_TAT_MS, 2, 3).is_some());
}

/// Reference model: a token bucket holding `tokens / window_ms` requests, refilled by
/// `limit` tokens per elapsed ms, capped at `burst * window_ms`. Equivalent to GCRA by
/// construction, written without TATs.
struct TokenBucket {
    tokens: u128,
    last_ms: Option<u64>,
}

impl TokenBucket {
    fn request(&mut self, p: &Gcra, now_ms: u64, cost: u64) -> bool {
        let cap = u128::from(p.burst()) * u128::from(p.window_ms());
        self.tokens = match self.last_ms {
            None => cap,
            Some(last) => {
                let elapsed = u128::from(now_ms.saturating_sub(last));
                (self.tokens + elapsed * u128::from(p.limit())).min(cap)
            }
        };
        self.last_ms = Some(self.last_ms.map_or(now_ms, |l| l.max(now_ms)));
        let need = u128::from(cost) * u128::from(p.window_ms());
        if self.tokens >= need {
            self.tokens -= need;
            true
        } else {
            false
        }
    }
}

fn arb_policy() -> impl Strategy<Value = Gcra> {
    (1u64..=50, 1u64..=5000, 0u64..=60)
        .prop_filter_map("valid", |(l, w, b)| Gcra::new(l, w, b).ok())
}

/// A trace: gaps between requests (ms, often zero) and their costs.
fn arb_trace() -> impl Strategy<Value = Vec<(u64, u64)>> {
    prop::collection::vec(
        (prop_oneof![Just(0u64), 0u64..50, 0u64..5000], 1u64..=4),
        1..300,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Storing a TAT reduced never changes a decision.
    #[test]
    fn reduced_tat_decides_the_same(p in arb_policy(), trace in arb_trace()) {
        replay(&p, 1_700_000_000_000, &trace, |now, cost, tat, full| {
            prop_assert_eq!(full, decide(&p, tat.reduced(), now, cost));
            Ok(())
        })?;
    }

    #[test]
    fn matches_the_token_bucket_model(p in arb_policy(), trace in arb_trace()) {
        let mut model = TokenBucket { tokens: 0, last_ms: None };
        replay(&p, 1_700_000_000_000, &trace, |now, cost, _, d| {
            let got = d.is_some();
            prop_assert_eq!(got, model.request(&p, now, cost), "at {} cost {}", now, cost);
            Ok(())
        })?;
    }

    #[test]
    fn never_exceeds_burst_plus_rate_times_interval(p in arb_policy(), trace in arb_trace()) {
        let mut passed: Vec<(u64, u64)> = Vec::new();
        replay(&p, 0, &trace, |now, cost, _, d| {
            if d.is_some() { passed.push((now, cost)); }
            Ok::<(), TestCaseError>(())
        })?;
        // Over [t_i, t_j]: sum of costs <= burst + floor((t_j - t_i) / T).
        for i in 0..passed.len() {
            let mut sum = 0u64;
            for &(t_j, c) in &passed[i..] {
                sum += c;
                let refill = (t_j - passed[i].0) * p.limit() / p.window_ms();
                prop_assert!(sum <= p.burst() + refill, "{} > {} + {}", sum, p.burst(), refill);
            }
        }
    }

    #[test]
    fn changing_the_limit_never_allows_earlier(
        p in arb_policy(), q in arb_policy(), trace in arb_trace(), probe in 0u64..100_000
    ) {
        // Usage written under p, then read under q, is never less than the exact rational.
        let (tat, now) = replay(&p, 0, &trace, |_, _, _, _| Ok::<(), TestCaseError>(()))?;
        let at = now + probe;
        if decide(&q, tat, at, 1).is_some() {
            // Exact: (tat - at) backlog plus one interval of q within q's tolerance.
            let backlog_num = (i128::from(tat.ms()) - i128::from(at)) * i128::from(tat.den()) + i128::from(tat.frac());
            let backlog = backlog_num.max(0); // in units of 1/den ms
            let lhs = backlog * i128::from(q.limit()) + i128::from(q.window_ms()) * i128::from(tat.den());
            let rhs = i128::from(q.burst()) * i128::from(q.window_ms()) * i128::from(tat.den());
            prop_assert!(lhs <= rhs);
        }
    }
}
