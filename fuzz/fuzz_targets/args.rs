//! Fuzzes the argument parsers with arbitrary argument vectors: they must never panic, and
//! whatever they accept must be within every documented bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rl_core::args::{parse_allow, parse_allow_set, parse_config, parse_config_set};
use rl_core::limits::MAX_LIMITS;
use rl_core::effect::{parse_apply, MAX_EXPIRE_AT_MS};
use rl_core::policy::{MAX_BURST, MAX_COST, MAX_IDLE_MS, MAX_LIMIT, MAX_WINDOW_MS};

fuzz_target!(|data: &[u8]| {
    // Arguments are separated by 0x00, so they can hold any other byte (CR, LF, UTF-8 or not).
    let args: Vec<&[u8]> = data.split(|b| *b == 0).collect();
    if let Ok(a) = parse_allow(&args) {
        assert!((1..=MAX_COST).contains(&a.cost));
        if let Some(p) = a.inline {
            assert!(p.limit() <= MAX_LIMIT && p.window_ms() <= MAX_WINDOW_MS && p.burst() <= MAX_BURST);
        }
    }
    if let Ok(s) = parse_config(&args) {
        assert!(s.idle_ms <= MAX_IDLE_MS && s.policy.limit() >= 1 && s.policy.burst() >= 1);
    }
    // The set syntax: at most MAX_LIMITS limits, and without AND/GCRA/SLIDING exactly what
    // the single-policy parsers answer.
    match (parse_allow(&args), parse_allow_set(&args)) {
        (Ok(old), new) => assert_eq!(new.map(|n| (n.cost, n.inline)), Ok((old.cost, old.inline.map(rl::limits::Limits::single)))),
        (Err(_), Ok(n)) => assert!(n.inline.is_none_or(|l| (1..=MAX_LIMITS).contains(&l.len()))),
        (Err(_), Err(_)) => {}
    }
    if let Ok(s) = parse_config_set(&args) {
        assert!((1..=MAX_LIMITS).contains(&s.limits.len()) && s.idle_ms <= MAX_IDLE_MS);
    }
    if let Ok(a) = parse_apply(&args) {
        assert!(a.expire_at_ms.is_none_or(|e| e <= MAX_EXPIRE_AT_MS) && a.tat.frac() < a.tat.den());
    }
});
