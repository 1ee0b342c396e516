//! Specification of issues 19 and 20 on a key's state: refunds, reservations that settle,
//! penalties and blocks, leases. Table cases from the issues and spec-19-20.md, then the
//! property tests the issues ask for: refunds are bounded; reserve-then-settle equals one
//! check at the actual cost; any interleaving of reserves, settles and expiries admits at
//! most the policy's bound plus the settled excess; penalties double up to their cap; never
//! more than `limit` leases; acquires all-or-nothing with GCRA and SLIDING limits.

use super::*;
use crate::kinds::concurrency::Concurrency;
use crate::kinds::gcra::Gcra;
use crate::kinds::sliding::Sliding;
use crate::kinds::Limit;
use crate::parts::MAX_HOLDS;
use crate::policy::Stored;
use crate::state::Usages;
use proptest::prelude::*;

const T0: u64 = 1_700_000_000_000;

fn gcra(limit: u64, window_ms: u64, burst: u64) -> Limit {
    Limit::Gcra(Gcra::new(limit, window_ms, burst).unwrap())
}

fn sliding(limit: u64, window_ms: u64) -> Limit {
    Limit::Sliding(Sliding::new(limit, window_ms).unwrap())
}

fn conc(limit: u64, window_ms: u64) -> Limit {
    Limit::Concurrency(Concurrency::new(limit, window_ms).unwrap())
}

fn policy(limits: &[Limit]) -> Policy {
    Policy::new(limits).unwrap()
}

/// A configured key.
fn key(p: &Policy) -> State {
    State::configure(None, Stored::new(*p, 0, false).unwrap(), T0)
}

/// A check, as RL.THROTTLE takes it: (allowed as told, the numbers).
fn throttle(s: &mut State, p: &Policy, now: u64, cost: u64) -> (bool, Numbers) {
    let (e, n, _) = check(s, p, &Op::Check, now, cost, false, None).unwrap();
    (e.allowed(), n)
}

fn allow(s: &mut State, p: &Policy, now: u64, cost: u64) -> bool {
    throttle(s, p, now, cost).0
}

/// RL.RESERVE: the hold's id when allowed.
fn reserve(s: &mut State, p: &Policy, now: u64, estimate: u64) -> Option<u64> {
    let op = Op::Reserve {
        hold_ms: 300_000,
        under: None,
    };
    check(s, p, &op, now, estimate, false, None).unwrap().2.id
}

/// RL.ACQUIRE: the lease's id when allowed.
fn acquire(s: &mut State, p: &Policy, now: u64, cost: u64) -> (bool, Option<u64>) {
    let (e, _, c) = check(s, p, &Op::Acquire, now, cost, false, None).unwrap();
    (e.allowed(), c.id)
}

/// How many cost-1 requests pass in a row at each probe (each on the state the previous left).
fn admitted(mut s: State, p: &Policy, probes: &[u64]) -> Vec<u64> {
    probes
        .iter()
        .map(|&t| {
            let mut n = 0;
            while n < 3000 && allow(&mut s, p, t, 1) {
                n += 1;
            }
            n
        })
        .collect()
}

#[test]
fn a_settle_never_gives_back_what_already_drained() {
    // spec-19-20.md, decision 2: hold 10 from empty (B = 10), 9 more at 9T, settle 0 at 9T.
    // The plain rule (TAT - n*T) gave back the 9 drained units and let 10 more pass: 19 in one
    // instant. Only the undrained unit comes back.
    let p = policy(&[gcra(10, 10_000, 10)]); // T = 1000 ms
    let mut s = key(&p);
    let id = reserve(&mut s, &p, T0, 10).unwrap();
    for _ in 0..9 {
        assert!(allow(&mut s, &p, T0 + 9000, 1));
    }
    assert!(!allow(&mut s, &p, T0 + 9000, 1));
    assert_eq!(settle(&mut s, Some(&p), T0 + 9000, id, 0), Ok(-1));
    assert_eq!(admitted(s, &p, &[T0 + 9000]), [1]);
}

#[test]
fn a_settle_gives_back_the_difference_or_charges_the_excess() {
    let p = policy(&[gcra(10, 10_000, 10)]);
    let mut s = key(&p);
    let a = reserve(&mut s, &p, T0, 6).unwrap();
    assert_eq!(settle(&mut s, Some(&p), T0, a, 2), Ok(-4));
    assert_eq!(admitted(s.clone(), &p, &[T0]), [8]);
    let b = reserve(&mut s, &p, T0, 3).unwrap();
    assert_eq!(settle(&mut s, Some(&p), T0, b, 3), Ok(0));
    let c = reserve(&mut s, &p, T0, 1).unwrap();
    // Over the estimate: charged whatever it does to admission, at most one full bucket.
    assert_eq!(settle(&mut s, Some(&p), T0, c, 500), Ok(499));
    let (allowed, n) = throttle(&mut s, &p, T0, 1);
    assert!(!allowed);
    assert_eq!(
        n.retry_after_ms,
        Some(1000),
        "in debt up to a full bucket, no more"
    );
}

#[test]
fn an_unknown_expired_or_settled_reservation_is_an_error() {
    let p = policy(&[gcra(10, 1000, 10)]);
    let mut s = key(&p);
    let id = reserve(&mut s, &p, T0, 2).unwrap();
    assert_eq!(
        settle(&mut s, Some(&p), T0, id + 1, 0),
        Err(Error::UnknownReservation)
    );
    assert_eq!(settle(&mut s, Some(&p), T0, id, 1), Ok(-1));
    assert_eq!(
        settle(&mut s, Some(&p), T0, id, 1),
        Err(Error::UnknownReservation)
    );
    let late = reserve(&mut s, &p, T0, 1).unwrap();
    let expired = T0 + 300_000;
    assert_eq!(
        settle(&mut s, Some(&p), expired, late, 0),
        Err(Error::UnknownReservation)
    );
}

#[test]
fn a_hold_that_expires_unsettled_stays_charged() {
    let p = policy(&[sliding(5, 3_600_000)]);
    let mut s = key(&p);
    reserve(&mut s, &p, T0, 4).unwrap();
    // Expired: it can no longer be settled, and its 4 still count.
    assert_eq!(admitted(s, &p, &[T0 + 300_001]), [1]);
}

#[test]
fn a_key_keeps_at_most_64_open_holds() {
    let p = policy(&[gcra(1000, 1000, 1000)]);
    let mut s = key(&p);
    for _ in 0..MAX_HOLDS {
        assert!(reserve(&mut s, &p, T0, 1).is_some());
    }
    let before = s.clone();
    let op = Op::Reserve {
        hold_ms: 1000,
        under: None,
    };
    assert_eq!(
        check(&mut s, &p, &op, T0, 1, false, None).unwrap_err(),
        Error::TooManyHolds
    );
    assert_eq!(s, before, "nothing counted");
    // Once one is settled (or expires) there is room again.
    let first = s.parts.as_ref().unwrap().holds[0].id;
    settle(&mut s, Some(&p), T0, first, 1).unwrap();
    assert!(reserve(&mut s, &p, T0, 1).is_some());
}

#[test]
fn a_sliding_limit_gives_a_settle_back_only_from_the_hold_s_own_entry() {
    let p = policy(&[sliding(10, 60_000)]);
    let mut s = key(&p);
    let id = reserve(&mut s, &p, T0, 4).unwrap();
    for _ in 0..3 {
        assert!(allow(&mut s, &p, T0 + 10, 1));
    }
    // Refunds 3 from the hold's entry, never from the requests at T0 + 10.
    assert_eq!(settle(&mut s, Some(&p), T0 + 20, id, 1), Ok(-3));
    assert_eq!(admitted(s.clone(), &p, &[T0 + 20]), [6]);
    // Once the hold's entry has left the window, nothing is given back.
    let id = reserve(&mut s, &p, T0 + 30, 2).unwrap();
    let mut later = s.clone();
    assert_eq!(settle(&mut later, Some(&p), T0 + 60_030, id, 0), Ok(0));
}

#[test]
fn refunds_give_back_live_usage_only() {
    // The conformance trace's first refund case (clients/conformance/traces-ops.json).
    let p = policy(&[gcra(10, 1000, 10)]);
    let mut s = key(&p);
    for _ in 0..3 {
        assert!(allow(&mut s, &p, 0, 1));
    }
    assert_eq!(refund(&mut s, &p, 50, 2), 2);
    // As RL.PEEK tells it (after a hypothetical request): 8 left, empty in 150 ms.
    let (_, n) = throttle(&mut s.clone(), &p, 50, 1);
    assert_eq!((n.remaining, n.reset_after_ms), (8, 150));
    assert_eq!(refund(&mut s, &p, 50, 5), 1);
    let before = s.clone();
    assert_eq!(refund(&mut s, &p, 50, 5), 0);
    assert_eq!(s, before, "nothing given back, nothing written");
    // SLIDING: the most recent entries first.
    let p = policy(&[sliding(5, 1000)]);
    let mut s = key(&p);
    assert!(allow(&mut s, &p, 0, 2));
    assert!(allow(&mut s, &p, 10, 2));
    assert_eq!(refund(&mut s, &p, 20, 3), 3);
    assert_eq!(refund(&mut s, &p, 20, 4), 1);
    assert_eq!(refund(&mut s, &p, 20, 1), 0);
    // CONCURRENCY gives nothing back; the reply is the most any limit gave.
    let p = policy(&[gcra(4, 1000, 4), sliding(3, 1000), conc(2, 5000)]);
    let mut s = key(&p);
    assert!(acquire(&mut s, &p, 0, 1).0);
    assert!(acquire(&mut s, &p, 0, 1).0);
    assert_eq!(refund(&mut s, &p, 0, 5), 2);
    assert!(!acquire(&mut s, &p, 0, 1).0, "the leases are still held");
}

#[test]
fn a_penalty_blocks_and_tells_the_block_and_a_blocked_key_counts_nothing() {
    let p = policy(&[gcra(2, 1000, 2)]);
    let rule = PenaltyRule {
        penalty: Penalty::new(5000, Some(20_000)).unwrap(),
        escalation_ms: 1000,
    };
    let mut s = key(&p);
    let go = |s: &mut State, now: u64| check(s, &p, &Op::Check, now, 1, false, Some(rule)).unwrap();
    assert!(go(&mut s, T0).0.allowed());
    assert!(go(&mut s, T0).0.allowed());
    // The denial that starts the penalty is told the block (decision 1): the later of the
    // block's end and its own retry.
    let (e, n, c) = go(&mut s, T0);
    assert!(!e.allowed() && c.changed);
    assert_eq!(
        (n.remaining, n.retry_after_ms, n.reset_after_ms),
        (0, Some(5000), 5000)
    );
    // Blocked: denied even where the limits admit, nothing counted, nothing extended.
    let before = s.clone();
    let (e, n, c) = go(&mut s, T0 + 2000);
    assert!(!e.allowed() && !c.changed && e.decision.allowed);
    assert_eq!(
        (n.remaining, n.retry_after_ms, n.reset_after_ms),
        (0, Some(3000), 3000)
    );
    assert_eq!(s, before);
    // A denial within one window of the end doubles; a later one starts over.
    go(&mut s, T0 + 5000);
    go(&mut s, T0 + 5000);
    let (_, n, _) = go(&mut s, T0 + 5000);
    assert_eq!(n.retry_after_ms, Some(10_000));
    assert_eq!(s.parts.as_ref().unwrap().block.unwrap().level, 1);
    go(&mut s, T0 + 15_000 + 1000);
    go(&mut s, T0 + 15_000 + 1000);
    let (_, n, _) = go(&mut s, T0 + 15_000 + 1000);
    assert_eq!(n.retry_after_ms, Some(5000));
}

#[test]
fn a_blocked_check_is_told_its_own_retry_when_later_and_never_when_it_cannot_fit() {
    let p = policy(&[sliding(1, 60_000)]);
    let mut s = key(&p);
    assert!(allow(&mut s, &p, T0, 1));
    block(&mut s, T0, 1000);
    let (allowed, n) = throttle(&mut s, &p, T0 + 10, 1);
    assert!(!allowed);
    assert_eq!((n.retry_after_ms, n.reset_after_ms), (Some(59_990), 59_990));
    let (_, n) = throttle(&mut s, &p, T0 + 10, 2);
    assert_eq!(n.retry_after_ms, None, "a cost that can never fit");
}

#[test]
fn a_shadow_policy_never_penalizes_and_is_told_allowed_while_blocked() {
    let p = policy(&[gcra(1, 1000, 1)]);
    let rule = PenaltyRule {
        penalty: Penalty::new(5000, None).unwrap(),
        escalation_ms: 1000,
    };
    let mut s = key(&p);
    assert!(check(&mut s, &p, &Op::Check, T0, 1, true, Some(rule))
        .unwrap()
        .0
        .allowed());
    let (e, _, c) = check(&mut s, &p, &Op::Check, T0, 1, true, Some(rule)).unwrap();
    assert!(e.starts.is_none() && !c.changed);
    block(&mut s, T0, 10_000);
    let (e, _, _) = check(&mut s, &p, &Op::Check, T0 + 5000, 1, true, None).unwrap();
    // Not allowed by the rules; resolve::tell turns it into a shadow denial.
    assert!(!e.allowed() && e.decision.allowed);
}

#[test]
fn block_keeps_the_level_and_unblock_forgets_it() {
    let p = policy(&[gcra(1, 1000, 1)]);
    let mut s = key(&p);
    s.parts = Some(Box::new(Parts {
        block: Some(Block {
            until_ms: T0,
            level: 3,
        }),
        ..Parts::default()
    }));
    block(&mut s, T0, 500);
    assert_eq!(
        s.parts.as_ref().unwrap().block,
        Some(Block {
            until_ms: T0 + 500,
            level: 3
        })
    );
    assert!(!allow(&mut s, &p, T0 + 499, 1));
    assert!(unblock(&mut s, T0 + 10));
    assert!(s.parts.is_none());
    assert!(!unblock(&mut s, T0 + 10), "not blocked: nothing to do");
    assert!(allow(&mut s, &p, T0 + 10, 1));
}

#[test]
fn a_key_with_a_concurrency_limit_is_acquired_not_checked_or_reserved() {
    let p = policy(&[gcra(10, 1000, 10), conc(1, 1000)]);
    let mut s = key(&p);
    assert_eq!(
        check(&mut s, &p, &Op::Check, T0, 1, false, None).unwrap_err(),
        Error::Leased
    );
    let op = Op::Reserve {
        hold_ms: 1,
        under: None,
    };
    assert_eq!(
        check(&mut s, &p, &op, T0, 1, false, None).unwrap_err(),
        Error::Leased
    );
    // RL.PEEK answers for a hypothetical acquire.
    assert!(check(&mut s, &p, &Op::Peek, T0, 1, false, None)
        .unwrap()
        .0
        .allowed());
    let (ok, id) = acquire(&mut s, &p, T0, 1);
    assert!(ok && id == Some(T0 * 1000));
    // Denied by the lease: the rate limit counts nothing either.
    assert_eq!(acquire(&mut s, &p, T0, 1), (false, None));
    let p2 = policy(&[gcra(10, 1000, 10)]);
    let mut s2 = key(&p2);
    // Without a CONCURRENCY limit: a plain check, no lease.
    assert_eq!(acquire(&mut s2, &p2, T0, 1), (true, None));
}

#[test]
fn reservations_and_leases_share_one_sequence_that_survives_reset() {
    let p = policy(&[gcra(100, 1000, 100)]);
    let mut s = key(&p);
    let a = reserve(&mut s, &p, T0, 1).unwrap();
    let b = reserve(&mut s, &p, T0, 1).unwrap();
    assert_eq!((a, b), (T0 * 1000, T0 * 1000 + 1));
    let stored = s.stored.unwrap();
    let mut s = State::reset(stored, s.parts.as_ref().and_then(|x| x.last_id));
    assert_eq!(reserve(&mut s, &p, T0, 1), Some(T0 * 1000 + 2));
}

/// Limits of one kind each for the property tests (small, so traces reach their bounds).
fn arb_rate_limit() -> impl Strategy<Value = Limit> {
    prop_oneof![
        (1u64..=10, 1u64..=2000, 1u64..=10).prop_filter_map("valid", |(l, w, b)| Gcra::new(
            l, w, b
        )
        .ok()
        .map(Limit::Gcra)),
        (1u64..=10, 1u64..=2000).prop_map(|(l, w)| sliding(l, w)),
    ]
}

fn arb_rate_policy() -> impl Strategy<Value = Policy> {
    prop::collection::vec(arb_rate_limit(), 1..=3).prop_map(|v| policy(&v))
}

fn arb_trace() -> impl Strategy<Value = Vec<(u64, u64)>> {
    prop::collection::vec(
        (prop_oneof![Just(0u64), 0u64..100, 0u64..3000], 1u64..=4),
        0..40,
    )
}

/// A key after a trace of checks; the instant of its last request.
fn after_trace(p: &Policy, trace: &[(u64, u64)]) -> (State, u64) {
    let mut s = key(p);
    let mut now = T0;
    for &(gap, cost) in trace {
        now += gap;
        allow(&mut s, p, now, cost);
    }
    (s, now)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// A refund gives back at most `n`, at most what is live, never room beyond an empty
    /// limit: after it, the room grows by no more than it gave back, no limit holds more room
    /// than its capacity, and over a trace everything given back was admitted first.
    #[test]
    fn refunds_are_bounded(
        p in arb_rate_policy(), trace in arb_trace(),
        refunds in prop::collection::vec((0u64..500, 1u64..=6), 1..10)
    ) {
        let (mut s, mut now) = after_trace(&p, &trace);
        let admitted_total: u64 = trace.iter().map(|t| t.1).sum();
        let mut given_total = 0;
        for (gap, n) in refunds {
            now += gap;
            let room = |s: &State| {
                let (_, numbers) = throttle(&mut s.clone(), &p, now, 1);
                numbers.each.iter().take(p.len()).map(|e| e.remaining + u64::from(numbers.allowed)).collect::<Vec<_>>()
            };
            let before = room(&s);
            let given = refund(&mut s, &p, now, n);
            let after = room(&s);
            prop_assert!(given <= n);
            given_total += given;
            for ((b, a), l) in before.iter().zip(&after).zip(p.limits()) {
                prop_assert!(a <= &l.capacity(), "room beyond an empty limit");
                prop_assert!(a.saturating_sub(*b) <= given, "more room than given back");
            }
        }
        prop_assert!(given_total <= admitted_total);
    }

    /// Reserving an estimate and settling to the actual units, with nothing else in between,
    /// leaves the key as one check at the actual cost at the reserve would have: exactly, as
    /// every later request sees it. (Above the estimate, at the same instant, when that check
    /// would have been allowed.)
    #[test]
    fn reserve_then_settle_equals_one_check_at_the_actual_cost(
        p in arb_rate_policy(), trace in arb_trace(),
        estimate in 1u64..=8, actual in 0u64..=10, gap in prop_oneof![Just(0u64), 0u64..5000]
    ) {
        let (s, now) = after_trace(&p, &trace);
        let mut reserved = s.clone();
        let Some(id) = reserve(&mut reserved, &p, now, estimate) else {
            return Ok(());
        };
        let gap = if actual > estimate { 0 } else { gap };
        let at = now + gap;
        settle(&mut reserved, Some(&p), at, id, actual).unwrap();
        let mut checked = s;
        if actual > 0 && !allow(&mut checked, &p, now, actual) {
            return Ok(());
        }
        let probes = [at, at + 1, at + 500, at + 2500];
        prop_assert_eq!(admitted(reserved, &p, &probes), admitted(checked, &p, &probes));
    }
}

/// One operation of an interleaving on a single rate limit.
#[derive(Clone, Debug)]
enum Step {
    Check(u64),
    Reserve(u64),
    /// Settle the n-th reservation made so far (if open) to this actual.
    Settle(usize, u64),
}

fn arb_steps() -> impl Strategy<Value = Vec<(u64, Step)>> {
    let step = prop_oneof![
        (1u64..=3).prop_map(Step::Check),
        (1u64..=5).prop_map(Step::Reserve),
        (0usize..30, 0u64..=7).prop_map(|(i, a)| Step::Settle(i, a)),
    ];
    prop::collection::vec(
        (prop_oneof![Just(0u64), 0u64..300, 0u64..2000], step),
        1..90,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Any interleaving of checks, reserves, settles (below, at or above the estimate) and
    /// expiries admits at most the policy's bound plus the settled excess, in every interval:
    /// counting each request at its instant (a reservation as the units it settled to, or its
    /// estimate if it expired), at most `burst + floor(len / T)` for GCRA and `limit` within
    /// one window for SLIDING, plus what settles charged beyond their estimates.
    #[test]
    fn interleavings_admit_at_most_the_bound_plus_the_settled_excess(
        l in arb_rate_limit(), hold_ms in 1u64..3000, steps in arb_steps()
    ) {
        let p = Policy::single(l);
        let mut s = key(&p);
        let mut now = T0;
        // (instant, units) of every admitted request; reservations: (index into events, id, estimate).
        let mut events: Vec<(u64, u64)> = Vec::new();
        let mut holds: Vec<(usize, u64, u64)> = Vec::new();
        let mut excess = 0;
        for (gap, step) in steps {
            now += gap;
            match step {
                Step::Check(cost) => {
                    if allow(&mut s, &p, now, cost) {
                        events.push((now, cost));
                    }
                }
                Step::Reserve(estimate) => {
                    let op = Op::Reserve { hold_ms, under: None };
                    if let Some(id) = check(&mut s, &p, &op, now, estimate, false, None).unwrap().2.id {
                        events.push((now, estimate));
                        holds.push((events.len() - 1, id, estimate));
                    }
                }
                Step::Settle(i, actual) => {
                    let Some(&(at, id, estimate)) = holds.get(i) else { continue };
                    if let Ok(reply) = settle(&mut s, Some(&p), now, id, actual) {
                        events[at].1 = actual.min(estimate);
                        excess += actual.saturating_sub(estimate);
                        prop_assert!(reply == 0 || (reply < 0) == (actual < estimate));
                    }
                }
            }
        }
        for (i, &(a, _)) in events.iter().enumerate() {
            for &(b, _) in &events[i..] {
                let used: u64 = events.iter().filter(|e| e.0 >= a && e.0 <= b).map(|e| e.1).sum();
                let bound = match l {
                    Limit::Gcra(g) => g.burst() + (b - a) * g.limit() / g.window_ms(),
                    Limit::Sliding(sl) if b - a < sl.window_ms() => sl.limit(),
                    _ => u64::MAX,
                };
                prop_assert!(used <= bound.saturating_add(excess),
                    "{used} units in [{a}, {b}], bound {bound} + excess {excess}");
            }
        }
    }

    /// A key with a penalty blocks on each denial that is not blocked, for `ms * 2^level`
    /// capped at `max_ms`, the level one more than the last when that ended less than one
    /// window ago; a blocked key admits nothing, whatever its limits say.
    #[test]
    fn penalties_double_within_a_window_up_to_their_cap(
        limit in 1u64..=3, window in 1u64..2000, ms in 1u64..500, max in 0u64..4000,
        trace in prop::collection::vec(prop_oneof![Just(0u64), 0u64..300, 0u64..3000], 1..80)
    ) {
        let p = policy(&[gcra(limit, window, limit)]);
        let rule = PenaltyRule { penalty: Penalty::new(ms, Some(ms + max)).unwrap(), escalation_ms: window };
        let mut s = key(&p);
        let mut model: Option<Block> = None;
        let mut now = T0;
        for gap in trace {
            now += gap;
            let (e, n, _) = check(&mut s, &p, &Op::Check, now, 1, false, Some(rule)).unwrap();
            let blocked = model.is_some_and(|b| now < b.until_ms);
            if blocked {
                prop_assert!(!e.allowed());
                prop_assert!(n.retry_after_ms.unwrap() >= model.unwrap().until_ms - now);
            } else if !e.allowed() {
                let level = match model {
                    Some(b) if now - b.until_ms < window => (b.level + 1).min(63),
                    _ => 0,
                };
                let d = (u128::from(ms) << level).min(u128::from(ms + max)) as u64;
                model = Some(Block { until_ms: now + d, level });
            }
            prop_assert_eq!(s.parts.as_ref().and_then(|x| x.block), model);
        }
    }

    /// Acquires on a CONCURRENCY limit joined with rate limits: all or nothing, against each
    /// limit on its own; never more than `limit` leases live; a release of an expired or
    /// unknown lease frees nothing.
    #[test]
    fn acquires_are_all_or_nothing_and_never_exceed_the_limit(
        c_limit in 1u64..=4, c_window in 1u64..3000, others in prop::collection::vec(arb_rate_limit(), 1..=2),
        steps in prop::collection::vec((prop_oneof![Just(0u64), 0u64..400], prop_oneof![
            (1u64..=3).prop_map(|c| (true, c as usize)), (0usize..20).prop_map(|i| (false, i))]), 1..80)
    ) {
        let mut limits = vec![conc(c_limit, c_window)];
        limits.extend(others);
        let p = policy(&limits);
        let mut s = key(&p);
        let mut now = T0;
        let mut ids = Vec::new();
        for (gap, (is_acquire, n)) in steps {
            now += gap;
            let live = |s: &State| match &s.usages[0] {
                Usage::Concurrency(l) => l.held(now),
                _ => u64::MAX,
            };
            let before = s.clone();
            if is_acquire {
                let cost = n as u64;
                // Each limit on its own: the decision on the usage it alone holds.
                let alone: Vec<bool> = p.limits().iter().zip(before.usages.iter())
                    .map(|(l, u)| l.admit(u, now, cost).is_some()).collect();
                let (ok, id) = acquire(&mut s, &p, now, cost);
                prop_assert_eq!(ok, alone.iter().all(|a| *a));
                if ok {
                    ids.push(id.unwrap());
                } else {
                    prop_assert_eq!(&s, &before, "a denied acquire changes nothing anywhere");
                }
            } else {
                let id = ids.get(n).copied().unwrap_or(1);
                let held = match &before.usages[0] {
                    Usage::Concurrency(l) => l.live(now).any(|x| x.id == id),
                    _ => false,
                };
                prop_assert_eq!(lease(&mut s, Some(&p), now, id, None), held);
                if !held {
                    prop_assert_eq!(&s, &before);
                }
            }
            prop_assert!(live(&s) <= c_limit);
        }
    }
}

#[test]
fn usages_of_a_key_of_parts_alone_are_empty() {
    // RL.BLOCK on a key that had no usage.
    let mut s = State::usage_only(Usages::new());
    block(&mut s, T0, 1000);
    assert!(State::new(s.usages.clone(), None, None, s.parts.clone()).is_some());
    assert_eq!(parts_live_until(s.parts.as_deref(), T0), T0 + 1000);
}
