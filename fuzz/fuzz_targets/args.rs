//! Fuzzes the one request parser and the one RL.CONFIG parser, and RL.APPLY's parser, with
//! arbitrary argument vectors: they must never panic, and whatever they accept must be within
//! every documented bound (the parsers of issues 19 and 20's commands too).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rl_core::apply::{parse_apply, MAX_EXPIRE_AT_MS};
use rl_core::args::{
    parse_block, parse_config, parse_refund, parse_renew, parse_request, parse_reserve, parse_settle, Command,
};
use rl_core::kinds::gcra::{MAX_BURST, MAX_LIMIT, MAX_WINDOW_MS};
use rl_core::policy::{Policy, MAX_COST, MAX_IDLE_MS, MAX_LIMITS};

fn within_bounds(p: &Policy) {
    assert!((1..=MAX_LIMITS).contains(&p.len()));
    for l in p.limits() {
        assert!(l.limit() <= MAX_LIMIT && l.window_ms() <= MAX_WINDOW_MS && l.capacity() <= MAX_BURST);
    }
}

fuzz_target!(|data: &[u8]| {
    // Arguments are separated by 0x00, so they can hold any other byte (CR, LF, UTF-8 or not).
    let args: Vec<&[u8]> = data.split(|b| *b == 0).collect();
    // Issues 19 and 20's parsers: never a panic, and inline policies within bounds.
    for parsed in [parse_reserve(&args), parse_refund(&args), parse_request(&args, Command::Acquire)] {
        if let Ok(r) = parsed {
            assert!((1..=MAX_COST).contains(&r.cost));
            if let Some(p) = r.inline {
                within_bounds(&p);
            }
        }
    }
    if let Ok(ms) = parse_block(&args) {
        assert!((1..=1_000_000_000_000).contains(&ms));
    }
    let _ = (parse_settle(&args), parse_renew(&args));
    for command in [Command::Allow, Command::Throttle] {
        if let Ok(r) = parse_request(&args, command) {
            assert!((1..=MAX_COST).contains(&r.cost));
            assert!(!r.with_policy || command == Command::Throttle);
            if let Some(p) = r.inline {
                within_bounds(&p);
            }
        }
    }
    if let Ok(s) = parse_config(&args) {
        within_bounds(&s.policy);
        assert!(s.idle_ms <= MAX_IDLE_MS);
    }
    if let Ok(a) = parse_apply(&args) {
        assert!(a.expire_at_ms.is_none_or(|e| (1..=MAX_EXPIRE_AT_MS).contains(&e)));
        // No usage only beside parts: a key of parts alone (RL.BLOCK of an absent key).
        assert!(a.usages.len() <= MAX_LIMITS && (!a.usages.is_empty() || a.parts.is_some()));
        let _ = a.state(None);
    }
});
