//! Fuzzes the argument parsers with arbitrary argument vectors: they must never panic, and
//! whatever they accept must be within every documented bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rl::args::{parse_allow, parse_config};
use rl::effect::{parse_apply, MAX_EXPIRE_AT_MS};
use rl::policy::{MAX_BURST, MAX_COST, MAX_IDLE_MS, MAX_LIMIT, MAX_WINDOW_MS};

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
    if let Ok(a) = parse_apply(&args) {
        assert!(a.expire_at_ms.is_none_or(|e| e <= MAX_EXPIRE_AT_MS) && a.tat.frac() < a.tat.den());
    }
});
