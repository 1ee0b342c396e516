use super::*;
use proptest::prelude::*;
use rl_core::policy::{Policy, MAX_LIMIT};
use rl_core::state::SetState;

fn stored() -> StoredPolicy {
    StoredPolicy::new(Policy::new(10, 60_000, 20).unwrap(), 5000).unwrap()
}

fn is_inline(b: &Value) -> bool {
    matches!(b.repr(), Repr::Inline(_))
}

#[test]
fn whole_millisecond_tats_are_inline_and_allocate_nothing() {
    // 10 per minute: T = 6000 ms, so every TAT is whole ms and reduces to den 1.
    let b = Value::new_usage(Tat::new(1_700_000_006_000, 0, 10).unwrap());
    assert!(is_inline(&b));
    assert_eq!(b.mem_usage(), 0);
    assert_eq!(b.tat(), Tat::new(1_700_000_006_000, 0, 1).unwrap());
    unsafe { b.free() };
}

#[test]
fn fractions_with_small_denominators_are_inline_too() {
    let tat = Tat::new(1_700_000_000_333, 1, 3).unwrap();
    let b = Value::new_usage(tat);
    assert!(is_inline(&b));
    assert_eq!(b.tat(), tat);
    unsafe { b.free() };
}

#[test]
fn large_denominators_and_far_instants_take_sixteen_bytes() {
    assert_eq!(size_of::<Usage>(), 16);
    for tat in [
        Tat::new(5, 1, 1021).unwrap(),
        Tat::new(INLINE_MS_LIMIT, 0, 1).unwrap(),
    ] {
        let b = Value::new_usage(tat);
        assert!(!is_inline(&b));
        assert_eq!((b.mem_usage(), b.tat()), (16, tat));
        unsafe { b.free() };
    }
}

#[test]
fn configured_values_keep_their_tat_and_policy() {
    let tat = Tat::new(1_700_000_000_123, 7, 9).unwrap();
    let mut c = Value::new_configured(tat, stored());
    assert_eq!(
        (c.tat(), c.stored(), c.mem_usage()),
        (tat, Some(stored()), size_of::<Configured>())
    );
    let later = Tat::new(1_800_000_000_000, 1, MAX_LIMIT).unwrap();
    assert!(
        c.with_tat(later).is_none(),
        "configured values update in place"
    );
    assert_eq!((c.tat(), c.stored()), (later, Some(stored())));
    let other = StoredPolicy::new(Policy::new(1, 1, 1).unwrap(), 0).unwrap();
    assert!(c.set_stored(other));
    assert_eq!(c.stored(), Some(other));
    unsafe { c.free() };
}

#[test]
fn usage_values_move_to_the_smallest_layout_that_fits() {
    let mut boxed = Value::new_usage(Tat::new(5, 1, 1021).unwrap());
    assert!(
        boxed.with_tat(Tat::new(6, 2, 1021).unwrap()).is_none(),
        "still boxed: in place"
    );
    let inline = boxed
        .with_tat(Tat::new(7, 0, 1021).unwrap())
        .expect("fits inline now");
    assert!(is_inline(&inline));
    let mut inline2 = Value::new_usage(Tat::new(8, 0, 1).unwrap());
    let back = inline2
        .with_tat(Tat::new(9, 5, 1021).unwrap())
        .expect("inline never changes in place");
    assert!(!is_inline(&back) && back.tat() == Tat::new(9, 5, 1021).unwrap());
    assert!(inline.stored().is_none());
    unsafe {
        for b in [boxed, inline, inline2, back] {
            b.free();
        }
    }
}

#[test]
fn duplicate_is_deep_and_round_trips_through_raw() {
    let c = Value::new_configured(Tat::new(5, 1, 2).unwrap(), stored());
    let raw = c.duplicate().into_raw();
    let d = unsafe { Value::from_raw(raw) }.unwrap();
    assert_eq!((d.tat(), d.stored()), (c.tat(), c.stored()));
    assert_ne!(raw, c.0.as_ptr());
    unsafe {
        c.free();
        d.free();
    }
    assert!(unsafe { Value::from_raw(std::ptr::null_mut()) }.is_none());
}

proptest! {
    /// Any valid TAT survives every layout exactly (as its reduced form).
    #[test]
    fn every_tat_round_trips(ms in 0u64..(1 << 60), den in 1u64..=MAX_LIMIT, frac_seed in any::<u64>()) {
        let tat = Tat::new(ms, frac_seed % den, den).unwrap();
        let b = Value::new_usage(tat);
        prop_assert_eq!(b.tat(), tat.reduced());
        let c = Value::new_configured(tat, stored());
        prop_assert_eq!(c.tat(), tat.reduced());
        unsafe { b.free(); c.free(); }
    }
}

mod sets {
    use super::*;
    use rl_core::limits::{Limit, Limits, StoredLimits, Usage as U};
    use rl_core::sliding::{Log, Sliding};

    fn sliding_state(stored: bool) -> SetState {
        let s = Sliding::new(10, 60_000).unwrap();
        let mut log = Log::EMPTY;
        log.record(&s, 1_700_000_000_000, 3);
        log.record(&s, 1_700_000_000_250, 1);
        let limits = Limits::new(&[Limit::Sliding(s)]).unwrap();
        SetState::new(
            vec![U::Sliding(log)],
            stored.then_some(StoredLimits {
                limits,
                idle_ms: 0,
                shadow: false,
            }),
        )
        .unwrap()
    }

    #[test]
    fn a_set_keeps_its_whole_state_and_copies_deeply() {
        for stored in [false, true] {
            let state = sliding_state(stored);
            let v = Value::new_state(state.clone());
            assert!(v.is_set());
            assert_eq!(v.state(), state);
            assert_eq!((v.tat(), v.stored()), (Tat::EMPTY, None));
            let copy = v.duplicate();
            assert_eq!(copy.state(), state);
            // 48-byte header, one usage, two 6-byte entries, and the boxed limits if stored.
            assert_eq!(size_of::<Set>(), 48);
            assert!(v.mem_usage() >= 48 + 12);
            unsafe { v.free() };
            unsafe { copy.free() };
        }
    }

    #[test]
    fn a_single_gcra_state_takes_the_compact_layouts() {
        let tat = Tat::new(1_700_000_006_000, 0, 1).unwrap();
        let v = Value::new_state(SetState::from_legacy(tat, None));
        assert!(is_inline(&v) && !v.is_set());
        let c = Value::new_state(SetState::from_legacy(tat, Some(stored())));
        assert_eq!((c.tat(), c.stored()), (tat, Some(stored())));
        unsafe { v.free() };
        unsafe { c.free() };
    }

    #[test]
    fn change_state_moves_between_layouts_and_updates_sets_in_place() {
        let tat = Tat::new(1_700_000_006_000, 0, 1).unwrap();
        let mut v = Value::new_usage(tat);
        let Change::Replace(mut set) = Value::change_state(Some(&mut v), sliding_state(false))
        else {
            panic!("an inline value cannot hold a set")
        };
        unsafe { v.free() };
        assert!(matches!(
            Value::change_state(Some(&mut set), sliding_state(true)),
            Change::InPlace
        ));
        assert_eq!(set.state(), sliding_state(true));
        let Change::Replace(back) =
            Value::change_state(Some(&mut set), SetState::from_legacy(tat, None))
        else {
            panic!("a set back to one GCRA limit takes the compact layout")
        };
        assert!(is_inline(&back));
        unsafe { set.free() };
        unsafe { back.free() };
        let Change::Create(new) = Value::change_state(None, sliding_state(false)) else {
            panic!()
        };
        unsafe { new.free() };
    }
}
