use super::*;
use crate::gcra::replay;
use proptest::prelude::*;

fn policy(limit: u64, window_ms: u64, burst: u64) -> Policy {
    Policy::new(limit, window_ms, burst).unwrap()
}

#[test]
fn an_idle_client_has_its_whole_burst_remaining() {
    let v = evaluate(&policy(10, 60_000, 0), Tat::EMPTY, 1_000_000, 1);
    assert!(matches!(v.decision, Decision::Allowed(_)));
    assert_eq!(
        (v.limit, v.remaining, v.retry_after_ms, v.reset_after_ms),
        (10, 9, None, 6000)
    );
}

#[test]
fn an_exhausted_client_is_told_when_to_retry() {
    let p = policy(10, 60_000, 0);
    let mut tat = Tat::EMPTY;
    for _ in 0..10 {
        if let Decision::Allowed(t) = decide(&p, tat, 0, 1) {
            tat = t;
        }
    }
    let v = evaluate(&p, tat, 1000, 1);
    assert_eq!(v.decision, Decision::Denied);
    // The next slot opens 6000 ms after the first request, i.e. 5000 ms from now.
    assert_eq!(
        (v.remaining, v.retry_after_ms, v.reset_after_ms),
        (0, Some(5000), 59_000)
    );
}

#[test]
fn retry_after_rounds_a_fractional_interval_up() {
    // 3 per second, burst 1: T = 333.33.. ms; the retry is at ceil(333.33..) = 334 ms.
    let p = policy(3, 1000, 1);
    let Decision::Allowed(tat) = decide(&p, Tat::EMPTY, 0, 1) else {
        panic!()
    };
    let v = evaluate(&p, tat, 0, 1);
    assert_eq!(v.retry_after_ms, Some(334));
    assert_eq!(v.reset_after_ms, 334);
}

#[test]
fn a_request_heavier_than_the_burst_has_no_retry_time() {
    let v = evaluate(&policy(10, 1000, 5), Tat::EMPTY, 0, 6);
    assert_eq!(v.decision, Decision::Denied);
    assert_eq!(
        (v.remaining, v.retry_after_ms, v.reset_after_ms),
        (5, None, 0)
    );
}

fn arb_policy() -> impl Strategy<Value = Policy> {
    (1u64..=50, 1u64..=5000, 0u64..=20)
        .prop_filter_map("valid", |(l, w, b)| Policy::new(l, w, b).ok())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// The retry time is exact: at now + retry_after_ms the same request passes, one ms
    /// earlier it does not.
    #[test]
    fn retry_after_is_exact(
        p in arb_policy(),
        trace in prop::collection::vec((0u64..300, 1u64..=3), 1..40),
        cost in 1u64..=20,
    ) {
        let (tat, now) = replay(&p, 10_000, &trace, |_, _, _, _| Ok::<(), TestCaseError>(()))?;
        let v = evaluate(&p, tat, now, cost);
        match (v.decision, v.retry_after_ms) {
            (Decision::Denied, Some(r)) => {
                prop_assert!(r >= 1);
                prop_assert!(matches!(decide(&p, tat, now + r, cost), Decision::Allowed(_)));
                prop_assert_eq!(decide(&p, tat, now + r - 1, cost), Decision::Denied);
            }
            (Decision::Denied, None) => prop_assert!(cost > p.burst()),
            (Decision::Allowed(_), r) => prop_assert_eq!(r, None),
        }
    }

    /// `remaining` cost-1 requests pass right now, and one more does not.
    #[test]
    fn remaining_is_exact(
        p in arb_policy(),
        trace in prop::collection::vec((0u64..300, 1u64..=3), 1..40),
    ) {
        let (tat, now) = replay(&p, 10_000, &trace, |_, _, _, _| Ok::<(), TestCaseError>(()))?;
        let v = evaluate(&p, tat, now, 1);
        let mut after = match v.decision { Decision::Allowed(t) => t, Decision::Denied => tat };
        for _ in 0..v.remaining {
            match decide(&p, after, now, 1) {
                Decision::Allowed(t) => after = t,
                Decision::Denied => prop_assert!(false, "fewer than remaining passed"),
            }
        }
        prop_assert_eq!(decide(&p, after, now, 1), Decision::Denied);
        // reset_after_ms is when the bucket is empty: the TAT, rounded up.
        prop_assert_eq!(v.reset_after_ms, match v.decision {
            Decision::Allowed(t) => t.empty_at_ms().saturating_sub(now),
            Decision::Denied => tat.empty_at_ms().saturating_sub(now),
        });
    }
}

proptest! {
    /// Whatever the clock did before (a TAT up to a day ahead), a denied client is told to
    /// wait at most one full drain plus the request itself, and that retry passes.
    #[test]
    fn no_retry_is_longer_than_a_full_drain(p in arb_policy(), ahead in 0u64..86_400_000, cost in 1u64..=5) {
        let now = 1_700_000_000_000u64;
        let tat = Tat::new(now + ahead, 0, 1).unwrap();
        let v = evaluate(&p, tat, now, cost);
        let drain = (p.burst() + cost) * p.window_ms() / p.limit() + 1;
        if let Some(r) = v.retry_after_ms {
            prop_assert!(r <= drain, "{} > {}", r, drain);
            // The denial stored its repair, if any (see check.rs): the retry passes against it.
            let repaired = tat.repair(&p, now).unwrap_or(tat);
            prop_assert!(matches!(decide(&p, repaired, now + r, cost), Decision::Allowed(_)));
        }
        prop_assert!(v.reset_after_ms <= p.burst() * p.window_ms() / p.limit() + 1);
    }
}
