//! Specification of the CONCURRENCY kind: table cases, then property tests that never more
//! than `limit` leases (by cost) are live at any instant, against a plain list of live leases,
//! and that releases of expired or foreign ids free nothing.

use super::*;
use crate::kinds::KindRules;
use proptest::prelude::*;

fn conc(limit: u64, window_ms: u64) -> Concurrency {
    Concurrency::new(limit, window_ms).unwrap()
}

/// An acquire as the commands take it: admitted, then recorded with `id`.
fn acquire(c: &Concurrency, leases: &mut Leases, now: u64, cost: u64, id: u64) -> bool {
    match c.admit(leases, now, cost) {
        Some(a) => {
            c.record(leases, Concurrency::admit_with_id(a, id), now, cost);
            true
        }
        None => false,
    }
}

#[test]
fn two_in_flight_then_the_third_waits_for_the_first_to_expire() {
    let c = conc(2, 30_000);
    let mut l = Leases::EMPTY;
    assert!(acquire(&c, &mut l, 1000, 1, 1));
    assert!(acquire(&c, &mut l, 1010, 1, 2));
    assert!(!acquire(&c, &mut l, 1020, 1, 3));
    assert_eq!(c.wait_ms(&l, 1020, 1), Some(29_980));
    assert_eq!(c.after(&l, None, 1020, 1), (0, 31_010));
    // A release makes room at once; the lease is gone.
    assert!(l.release(1, 1020));
    assert!(!l.release(1, 1020), "a second release frees nothing");
    assert!(acquire(&c, &mut l, 1020, 1, 3));
    // Expiry heals a slot nobody released.
    assert!(!acquire(&c, &mut l, 31_009, 1, 4));
    assert!(acquire(&c, &mut l, 31_010, 1, 4));
}

#[test]
fn a_release_of_an_expired_lease_frees_nothing_even_when_its_slot_was_taken_again() {
    // litellm #36541: a release after a lease expired freed a newer holder's slot.
    let c = conc(1, 100);
    let mut l = Leases::EMPTY;
    assert!(acquire(&c, &mut l, 0, 1, 1));
    assert!(acquire(&c, &mut l, 100, 1, 2), "the first expired at 100");
    assert!(!l.release(1, 150));
    assert_eq!(l.held(150), 1);
    assert!(!acquire(&c, &mut l, 150, 1, 3));
}

#[test]
fn costs_count_by_weight_and_a_cost_above_the_limit_never_fits() {
    let c = conc(5, 1000);
    let mut l = Leases::EMPTY;
    assert!(acquire(&c, &mut l, 0, 3, 1));
    assert!(!acquire(&c, &mut l, 0, 3, 2));
    assert_eq!(c.wait_ms(&l, 0, 3), Some(1000));
    assert_eq!(c.wait_ms(&l, 0, 6), None);
    assert!(acquire(&c, &mut l, 0, 2, 2));
    assert_eq!(c.after(&l, None, 0, 1).0, 0);
}

#[test]
fn the_retry_is_when_enough_leases_expire_for_the_cost() {
    let c = conc(3, 1000);
    let mut l = Leases::EMPTY;
    assert!(acquire(&c, &mut l, 0, 1, 1));
    assert!(acquire(&c, &mut l, 100, 1, 2));
    assert!(acquire(&c, &mut l, 200, 1, 3));
    assert_eq!(c.wait_ms(&l, 300, 1), Some(700));
    assert_eq!(c.wait_ms(&l, 300, 2), Some(800));
    assert_eq!(c.wait_ms(&l, 300, 3), Some(900));
}

#[test]
fn renew_extends_a_live_lease_only() {
    let c = conc(1, 100);
    let mut l = Leases::EMPTY;
    assert!(acquire(&c, &mut l, 0, 1, 7));
    assert!(l.renew(7, 50, 1000));
    assert_eq!(l.next_expiry_ms(50), Some(1050));
    assert!(!l.renew(8, 50, 1000), "a foreign id");
    assert!(!l.renew(7, 1050, 1000), "expired");
    assert_eq!(l.held(1050), 0);
}

#[test]
fn bounds_are_checked_with_specific_errors() {
    assert_eq!(Concurrency::new(0, 1), Err(Error::LimitRange));
    assert_eq!(Concurrency::new(1001, 1), Err(Error::ConcurrencyLimitRange));
    assert_eq!(Concurrency::new(1, 0), Err(Error::WindowRange));
    assert_eq!(
        Concurrency::new(1, 1 << 32),
        Err(Error::ConcurrencyWindowRange)
    );
    assert_eq!(
        Concurrency::from_options(1, 1, Some(1)),
        Err(Error::ConcurrencyBurst)
    );
    assert!(Concurrency::new(1000, u32::MAX as u64).is_ok());
}

#[test]
fn scaling_rounds_the_count_down_within_the_bound_and_keeps_the_lease_time() {
    let c = conc(10, 5000);
    assert_eq!(c.scaled(50), conc(5, 5000));
    assert_eq!(c.scaled(1), conc(1, 5000));
    assert_eq!(conc(900, 5000).scaled(200), conc(1000, 5000));
}

#[test]
fn leases_carry_within_the_kind_and_never_to_another() {
    let c = conc(2, 1000);
    let mut l = Leases::EMPTY;
    assert!(acquire(&c, &mut l, 0, 1, 1));
    assert!(acquire(&c, &mut l, 500, 1, 2));
    // Lowered to 1: both stay until they end, no new lease until they fit.
    let lowered = conc(1, 9000);
    let carried = lowered.carry(&l, 600);
    assert_eq!(carried.held(600), 2);
    assert_eq!(lowered.admit(&carried, 600, 1), None);
    assert_eq!(lowered.wait_ms(&carried, 600, 1), Some(900));
    // Nothing expired is carried.
    assert_eq!(lowered.carry(&l, 1200).held(1200), 1);
    assert_eq!(Concurrency::export(&l, 600), Carried::Nothing);
    assert_eq!(c.import(Carried::Requests(5), 600), Leases::EMPTY);
}

#[test]
fn stored_parts_are_validated() {
    let ok = Leases::from_parts(&[(1, 1, 10), (2, 999, 20)]).unwrap();
    assert_eq!(ok.parts().collect::<Vec<_>>(), [(1, 1, 10), (2, 999, 20)]);
    assert_eq!(Leases::from_parts(&[]), Some(Leases::EMPTY));
    for bad in [
        vec![(2, 1, 10), (1, 1, 10)],
        vec![(1, 1, 10), (1, 1, 10)],
        vec![(1, 0, 10)],
        vec![(1, 1000, 10), (2, 1, 10)],
        vec![(1, 1, MAX_EXPIRES_AT_MS + 1)],
        vec![(MAX_ID + 1, 1, 10)],
    ] {
        assert_eq!(Leases::from_parts(&bad), None, "{bad:?}");
    }
}

#[test]
fn a_lease_takes_24_bytes_and_a_usage_stays_40() {
    assert_eq!(std::mem::size_of::<Lease>(), 24);
    assert_eq!(std::mem::size_of::<crate::kinds::Usage>(), 40);
    assert_eq!(std::mem::size_of::<crate::kinds::Limit>(), 16);
}

/// What a trace step does: acquire (cost), release (the n-th id issued so far, maybe one
/// that expired or was released, maybe one never issued), renew, or let time pass.
#[derive(Clone, Debug)]
enum Step {
    Acquire(u64),
    Release(usize),
    Renew(usize, u64),
}

fn arb_steps() -> impl Strategy<Value = Vec<(u64, Step)>> {
    let step = prop_oneof![
        (1u64..=4).prop_map(Step::Acquire),
        (0usize..40).prop_map(Step::Release),
        (0usize..40, 1u64..3000).prop_map(|(i, ms)| Step::Renew(i, ms)),
    ];
    prop::collection::vec((0u64..700, step), 1..120)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// At every instant at most `limit` (by cost) is held, exactly as a plain list of live
    /// leases (id, cost, expiry) says; a release or renew of an expired, released or unknown
    /// id changes nothing.
    #[test]
    fn never_more_than_limit_live_and_foreign_releases_free_nothing(
        limit in 1u64..=6, window in 1u64..2000, steps in arb_steps()
    ) {
        let c = conc(limit, window);
        let mut leases = Leases::EMPTY;
        let mut model: Vec<(u64, u64, u64)> = Vec::new(); // (id, cost, expires)
        let mut issued = Vec::new();
        let mut now = 1_000_000u64;
        for (gap, step) in steps {
            now += gap;
            model.retain(|l| l.2 > now);
            let held: u64 = model.iter().map(|l| l.1).sum();
            prop_assert!(held <= limit);
            prop_assert_eq!(leases.held(now), held);
            match step {
                Step::Acquire(cost) => {
                    let id = issued.len() as u64 + 1;
                    let fits = held + cost <= limit;
                    prop_assert_eq!(acquire(&c, &mut leases, now, cost, id), fits);
                    if fits {
                        model.push((id, cost, now + window));
                        issued.push(id);
                    }
                }
                Step::Release(i) => {
                    let id = issued.get(i).copied().unwrap_or(999_999);
                    let live = model.iter().any(|l| l.0 == id);
                    let before = leases.held(now);
                    prop_assert_eq!(leases.release(id, now), live);
                    model.retain(|l| l.0 != id);
                    if !live {
                        prop_assert_eq!(leases.held(now), before);
                    }
                }
                Step::Renew(i, ms) => {
                    let id = issued.get(i).copied().unwrap_or(999_999);
                    let live = model.iter().any(|l| l.0 == id);
                    prop_assert_eq!(leases.renew(id, now, ms), live);
                    for l in model.iter_mut().filter(|l| l.0 == id) {
                        l.2 = now + ms;
                    }
                }
            }
            let mut got: Vec<_> = leases.live(now).map(|l| (l.id, l.cost(), l.expires_at_ms)).collect();
            let mut want = model.clone();
            got.sort_unstable();
            want.sort_unstable();
            prop_assert_eq!(got, want);
        }
    }

    /// The retry told to a denied acquire is exact: with no release in between, the same
    /// acquire passes `retry` ms later and not a millisecond earlier.
    #[test]
    fn the_retry_is_exact(
        limit in 1u64..=6, window in 1u64..2000, steps in arb_steps(), cost in 1u64..=6
    ) {
        let c = conc(limit, window);
        let mut leases = Leases::EMPTY;
        let mut now = 1_000_000u64;
        let mut id = 0;
        for (gap, step) in steps {
            now += gap;
            if let Step::Acquire(k) = step {
                id += 1;
                acquire(&c, &mut leases, now, k, id);
            }
            if c.admit(&leases, now, cost).is_some() {
                continue;
            }
            match c.wait_ms(&leases, now, cost) {
                None => prop_assert!(cost > limit),
                Some(w) => {
                    prop_assert!(w >= 1);
                    prop_assert!(c.admit(&leases, now + w, cost).is_some());
                    prop_assert!(c.admit(&leases, now + w - 1, cost).is_none());
                }
            }
        }
    }
}
