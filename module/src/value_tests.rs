use super::*;
use proptest::prelude::*;
use rl_core::kinds::gcra::MAX_LIMIT;
use rl_core::kinds::sliding::Sliding;
use rl_core::kinds::Usage as U;
use rl_core::state::{request, Usages};

fn one_gcra() -> Policy {
    Policy::single(Limit::Gcra(Gcra::new(10, 60_000, 20).unwrap()))
}

fn configured_policy() -> Stored {
    Stored::new(one_gcra(), 5000, false).unwrap()
}

fn usage_state(tat: Tat) -> State {
    let mut u = Usages::new();
    u.push(U::Gcra(tat));
    State::new(u, None, None).unwrap()
}

fn configured_state(tat: Tat) -> State {
    let mut u = Usages::new();
    u.push(U::Gcra(tat));
    State::new(u, Some(configured_policy()), None).unwrap()
}

fn tat_of(v: &Value) -> Tat {
    match v.read().state().usages {
        [U::Gcra(t)] => *t,
        other => panic!("not one GCRA usage: {other:?}"),
    }
}

fn is_inline(b: &Value) -> bool {
    matches!(b.repr(), Repr::Inline(_))
}

#[test]
fn whole_millisecond_tats_are_inline_and_allocate_nothing() {
    // 10 per minute: T = 6000 ms, so every TAT is whole ms and reduces to den 1.
    let b = Value::new(&mut usage_state(
        Tat::new(1_700_000_006_000, 0, 10).unwrap(),
    ));
    assert!(is_inline(&b));
    assert_eq!(b.mem_usage(), 0);
    assert_eq!(tat_of(&b), Tat::new(1_700_000_006_000, 0, 1).unwrap());
    unsafe { b.free() };
}

#[test]
fn fractions_with_small_denominators_are_inline_too() {
    let tat = Tat::new(1_700_000_000_333, 1, 3).unwrap();
    let b = Value::new(&mut usage_state(tat));
    assert!(is_inline(&b));
    assert_eq!(tat_of(&b), tat);
    unsafe { b.free() };
}

#[test]
fn large_denominators_and_far_instants_take_sixteen_bytes() {
    assert_eq!(size_of::<Usage>(), 16);
    for tat in [
        Tat::new(5, 1, 1021).unwrap(),
        Tat::new(INLINE_MS_LIMIT, 0, 1).unwrap(),
    ] {
        let b = Value::new(&mut usage_state(tat));
        assert!(!is_inline(&b));
        assert_eq!((b.mem_usage(), tat_of(&b)), (16, tat));
        unsafe { b.free() };
    }
}

#[test]
fn configured_values_take_48_bytes_and_update_in_place() {
    assert_eq!(size_of::<Configured>(), 48);
    let tat = Tat::new(1_700_000_000_123, 7, 9).unwrap();
    let mut c = Value::new(&mut configured_state(tat));
    assert_eq!(c.mem_usage(), 48);
    assert_eq!(c.state(), configured_state(tat));
    let later = Tat::new(1_800_000_000_000, 1, MAX_LIMIT).unwrap();
    assert!(matches!(
        c.put(&mut configured_state(later)),
        Change::InPlace
    ));
    assert_eq!(c.state(), configured_state(later));
    unsafe { c.free() };
}

#[test]
fn usage_values_move_to_the_smallest_layout_that_fits() {
    let mut boxed = Value::new(&mut usage_state(Tat::new(5, 1, 1021).unwrap()));
    assert!(matches!(
        boxed.put(&mut usage_state(Tat::new(6, 2, 1021).unwrap())),
        Change::InPlace
    ));
    let Change::Replace(inline) = boxed.put(&mut usage_state(Tat::new(7, 0, 1021).unwrap())) else {
        panic!("fits inline now")
    };
    assert!(is_inline(&inline));
    let mut inline2 = Value::new(&mut usage_state(Tat::new(8, 0, 1).unwrap()));
    let Change::Replace(back) = inline2.put(&mut usage_state(Tat::new(9, 5, 1021).unwrap())) else {
        panic!("inline never changes in place")
    };
    assert!(!is_inline(&back) && tat_of(&back) == Tat::new(9, 5, 1021).unwrap());
    unsafe {
        for b in [boxed, inline, inline2, back] {
            b.free();
        }
    }
}

#[test]
fn duplicate_is_deep_and_round_trips_through_raw() {
    let c = Value::new(&mut configured_state(Tat::new(5, 1, 2).unwrap()));
    let raw = c.duplicate().into_raw();
    let d = unsafe { Value::from_raw(raw) }.unwrap();
    assert_eq!(d.state(), c.state());
    assert_ne!(raw, c.0.as_ptr());
    unsafe {
        c.free();
        d.free();
    }
    assert!(unsafe { Value::from_raw(std::ptr::null_mut()) }.is_none());
}

proptest! {
    /// Any valid TAT survives every compact layout exactly (as its reduced form).
    #[test]
    fn every_tat_round_trips(ms in 0u64..(1 << 60), den in 1u64..=MAX_LIMIT, frac_seed in any::<u64>()) {
        let tat = Tat::new(ms, frac_seed % den, den).unwrap();
        let b = Value::new(&mut usage_state(tat));
        prop_assert_eq!(tat_of(&b), tat.reduced());
        let c = Value::new(&mut configured_state(tat));
        prop_assert_eq!(tat_of(&c), tat.reduced());
        unsafe { b.free(); c.free(); }
    }
}

fn sliding_state(stored: bool) -> State {
    let s = Policy::single(Limit::Sliding(Sliding::new(10, 60_000).unwrap()));
    let mut state = match stored {
        true => State::configure(None, Stored::new(s, 0, false).unwrap(), 1_700_000_000_000),
        false => State::new(Usages::empty_for(&s), None, None).unwrap(),
    };
    request(&mut state, &s, 1_700_000_000_000, 3);
    request(&mut state, &s, 1_700_000_000_250, 1);
    state
}

#[test]
fn a_general_value_keeps_its_whole_state_and_copies_deeply() {
    // A 32-byte header and 40 bytes per usage in one allocation (was 48, plus 40 per usage in
    // a second one), the stored policy boxed.
    assert_eq!(size_of::<General>(), 32);
    assert_eq!(General::layout(1).unwrap().size(), 72);
    for stored in [false, true] {
        let state = sliding_state(stored);
        let v = Value::new(&mut state.clone());
        assert!(v.is_general());
        assert_eq!(v.state(), state);
        let copy = v.duplicate();
        assert_eq!(copy.state(), state);
        // The header, one usage, two 6-byte entries, and the boxed policy if stored.
        assert!(v.mem_usage() >= 32 + size_of::<U>() + 12);
        unsafe { v.free() };
        unsafe { copy.free() };
    }
}

#[test]
fn a_pending_reconfiguration_is_kept_in_the_header() {
    let state = sliding_state(true);
    let changed = State::configure(Some(state), configured_policy(), 1_700_000_001_000);
    assert_eq!(changed.pending_at_ms, Some(1_700_000_001_000));
    let v = Value::new(&mut changed.clone());
    assert!(
        v.is_general(),
        "a GCRA limit over a SLIDING log is no compact layout"
    );
    assert_eq!(v.state(), changed);
    unsafe { v.free() };
}

#[test]
fn put_moves_between_layouts_and_updates_general_values_in_place() {
    let tat = Tat::new(1_700_000_006_000, 0, 1).unwrap();
    let mut v = Value::new(&mut usage_state(tat));
    let Change::Replace(mut general) = v.put(&mut sliding_state(false)) else {
        panic!("an inline value cannot hold a log")
    };
    unsafe { v.free() };
    assert!(matches!(
        general.put(&mut sliding_state(true)),
        Change::InPlace
    ));
    assert_eq!(general.state(), sliding_state(true));
    let Change::Replace(back) = general.put(&mut usage_state(tat)) else {
        panic!("one GCRA limit takes the compact layout")
    };
    assert!(is_inline(&back));
    unsafe { general.free() };
    unsafe { back.free() };
}

#[test]
fn usages_update_in_place_in_a_general_value() {
    let mut v = Value::new(&mut sliding_state(false));
    let p = Policy::single(Limit::Sliding(Sliding::new(10, 60_000).unwrap()));
    let before = v.mem_usage();
    let mut expected = sliding_state(false);
    request(&mut expected, &p, 1_700_000_000_500, 2);
    let usages = v.usages_mut().unwrap();
    let d = rl_core::decide::decide(&p, usages, 1_700_000_000_500, 2);
    rl_core::decide::record(&p, usages, &d, 1_700_000_000_500, 2);
    assert_eq!(v.state(), expected);
    assert!(v.mem_usage() >= before);
    unsafe { v.free() };
}
