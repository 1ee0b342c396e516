//! Specification of the key-level parts: the id sequence, the penalty's doubling and cap, and
//! what a stored part must be to load.

use super::*;
use crate::kinds::gcra::Gcra;
use crate::kinds::Limit;
use proptest::prelude::*;

fn with_last(last: Option<u64>) -> Parts {
    Parts {
        last_id: last,
        ..Parts::default()
    }
}

#[test]
fn ids_start_at_now_times_1000_and_strictly_increase() {
    assert_eq!(
        with_last(None).next_id(1_700_000_000_000),
        Some(1_700_000_000_000_000)
    );
    // More than one in a millisecond: the next one up.
    assert_eq!(
        with_last(Some(1_700_000_000_000_000)).next_id(1_700_000_000_000),
        Some(1_700_000_000_000_001)
    );
    // A later millisecond starts at its own thousand.
    assert_eq!(
        with_last(Some(1_700_000_000_000_005)).next_id(1_700_000_000_001),
        Some(1_700_000_000_001_000)
    );
    // The clock stepped back: still after the last.
    assert_eq!(
        with_last(Some(1_700_000_000_000_005)).next_id(1_600_000_000_000),
        Some(1_700_000_000_000_006)
    );
    // Below 2^53 (exact in JavaScript) until the year 2255.
    let year_2255_ms = 9_007_199_254_740;
    assert!(with_last(None).next_id(year_2255_ms).unwrap() < 1 << 53);
    // The sequence ends at the largest id a reply can carry.
    assert_eq!(with_last(Some(MAX_ID)).next_id(0), None);
    assert_eq!(with_last(None).next_id(u64::MAX / 10), None);
}

#[test]
fn a_penalty_doubles_within_a_window_of_the_last_end_up_to_its_max() {
    let p = Penalty::new(1000, Some(5000)).unwrap();
    let w = 60_000;
    let first = penalize(p, None, w, 10_000);
    assert_eq!(
        first,
        Block {
            until_ms: 11_000,
            level: 0
        }
    );
    // Within one window of its end: doubled, then doubled, then capped.
    let second = penalize(p, Some(first), w, 11_000 + w - 1);
    assert_eq!(
        (second.level, second.until_ms - (11_000 + w - 1)),
        (1, 2000)
    );
    let third = penalize(p, Some(second), w, second.until_ms);
    assert_eq!((third.level, third.until_ms - second.until_ms), (2, 4000));
    let fourth = penalize(p, Some(third), w, third.until_ms + 5);
    assert_eq!(
        (fourth.level, fourth.until_ms - third.until_ms - 5),
        (3, 5000)
    );
    // A window or more after the last end: back to the start.
    let later = penalize(p, Some(fourth), w, fourth.until_ms + w);
    assert_eq!(
        (later.level, later.until_ms - fourth.until_ms - w),
        (0, 1000)
    );
}

#[test]
fn without_max_a_penalty_does_not_escalate_and_levels_stop_at_63() {
    let p = Penalty::new(700, None).unwrap();
    assert_eq!(p.max_ms, 700);
    assert_eq!(p.duration_ms(5), 700);
    let big = Penalty::new(1, Some(MAX_BLOCK_MS)).unwrap();
    assert_eq!(big.duration_ms(39), 1 << 39);
    assert_eq!(big.duration_ms(40), MAX_BLOCK_MS);
    assert_eq!(big.duration_ms(63), MAX_BLOCK_MS);
    let top = Block {
        until_ms: 0,
        level: MAX_LEVEL,
    };
    assert_eq!(penalize(big, Some(top), 10, 5).level, MAX_LEVEL);
}

#[test]
fn penalty_bounds_are_checked() {
    use crate::error::Error;
    assert_eq!(Penalty::new(0, None), Err(Error::PenaltyRange));
    assert_eq!(
        Penalty::new(MAX_BLOCK_MS + 1, None),
        Err(Error::PenaltyRange)
    );
    assert_eq!(Penalty::new(10, Some(9)), Err(Error::PenaltyMaxRange));
    assert_eq!(
        Penalty::new(10, Some(MAX_BLOCK_MS + 1)),
        Err(Error::PenaltyMaxRange)
    );
    assert!(Penalty::new(MAX_BLOCK_MS, Some(MAX_BLOCK_MS)).is_ok());
}

#[test]
fn a_block_end_never_passes_what_a_state_may_hold() {
    assert_eq!(block_end(u64::MAX, 5), MAX_BLOCK_UNTIL_MS);
    assert!(Block::new(MAX_BLOCK_UNTIL_MS, 63).is_some());
    assert!(Block::new(MAX_BLOCK_UNTIL_MS + 1, 0).is_none());
    assert!(Block::new(5, 64).is_none());
}

#[test]
fn stored_holds_are_validated() {
    let end = Tat::new(1005, 1, 3).unwrap();
    assert!(Hold::from_parts(1, 5, 1000, 1001, &[end]).is_some());
    assert!(Hold::from_parts(1, 5, 1000, 1000 + MAX_HOLD_MS, &[]).is_some());
    for bad in [
        Hold::from_parts(1, 0, 1000, 1001, &[]),
        Hold::from_parts(1, MAX_UNITS + 1, 1000, 1001, &[]),
        Hold::from_parts(1, 5, 1000, 1000, &[]),
        Hold::from_parts(1, 5, 1000, 1001 + MAX_HOLD_MS, &[]),
        Hold::from_parts(MAX_ID + 1, 5, 1000, 1001, &[]),
        Hold::from_parts(1, 5, 1000, 1001, &[end, Tat::EMPTY]),
        Hold::from_parts(1, 5, 1000, 1001, &[Tat::new(1, 2, 4).unwrap()]),
        Hold::from_parts(1, 5, 1000, 1001, &[end; 5]),
    ] {
        assert!(bad.is_none());
    }
}

#[test]
fn parts_are_valid_only_as_a_command_leaves_them() {
    let hold = |id| Hold::from_parts(id, 1, 0, 10, &[]).unwrap();
    let under = Policy::single(Limit::Gcra(Gcra::new(1, 1, 0).unwrap()));
    let ok = Parts {
        last_id: Some(5),
        holds: vec![hold(3), hold(5)],
        reserved_under: Some(under),
        ..Parts::default()
    };
    assert!(ok.is_valid(false));
    // A configured key settles under its own policy: it keeps no limits of its holds.
    assert!(!ok.is_valid(true));
    let configured = Parts {
        reserved_under: None,
        ..ok.clone()
    };
    assert!(configured.is_valid(true));
    assert!(
        !configured.is_valid(false),
        "a usage-only key with holds needs their limits"
    );
    for bad in [
        Parts {
            holds: vec![hold(5), hold(3)],
            ..ok.clone()
        },
        Parts {
            holds: vec![hold(3), hold(3)],
            ..ok.clone()
        },
        Parts {
            last_id: Some(4),
            ..ok.clone()
        },
        Parts {
            last_id: None,
            ..ok.clone()
        },
        Parts {
            holds: vec![],
            ..ok.clone()
        },
        Parts {
            holds: (1..=65).map(hold).collect(),
            last_id: Some(65),
            ..ok.clone()
        },
        Parts::default(),
    ] {
        assert!(!bad.is_valid(false), "{bad:?}");
    }
}

proptest! {
    /// Ids issued at any instants (the clock may step back) strictly increase, and every one
    /// is at least its instant times 1000.
    #[test]
    fn ids_strictly_increase_whatever_the_clock(instants in prop::collection::vec(0u64..4_000_000_000_000, 1..200)) {
        let mut p = Parts::default();
        for now in instants {
            let id = p.next_id(now).unwrap();
            prop_assert!(p.last_id.is_none_or(|last| id > last));
            prop_assert!(id >= now * 1000);
            p.last_id = Some(id);
        }
    }

    /// The duration is ms * 2^level until it reaches max_ms, then max_ms, and never shrinks
    /// as the level grows.
    #[test]
    fn doubling_is_capped_and_monotone(ms in 1u64..1_000_000, extra in 0u64..100_000_000, level in 0u8..=63) {
        let p = Penalty::new(ms, Some(ms + extra)).unwrap();
        let d = p.duration_ms(level);
        let exact = u128::from(ms) << level;
        prop_assert_eq!(u128::from(d), exact.min(u128::from(ms + extra)));
        if level > 0 {
            prop_assert!(p.duration_ms(level - 1) <= d);
        }
    }
}
