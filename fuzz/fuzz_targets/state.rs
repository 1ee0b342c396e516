//! Fuzzes version 2 of the stored value and the set form of `RL.APPLY` (keys with several
//! limits or SLIDING logs): decoding must never panic; an accepted state must re-encode to
//! the same fields, survive the value layouts, read back from its `RL.APPLY` text, and decide
//! and explain without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rl_core::limits::{decide, status, Limits};
use rl_core::policy::Policy;
use rl_core::state::{apply_text, decode, encode, is_set_form, parse_apply_set};

/// Fields biased towards the small numbers the format is made of: a byte below 0xF0 is that
/// number, anything else starts a full little-endian word.
fn fields(data: &[u8]) -> Vec<u64> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < data.len() {
        if data[i] < 0xF0 {
            out.push(u64::from(data[i]));
            i += 1;
        } else {
            let mut b = [0u8; 8];
            let end = (i + 9).min(data.len());
            b[..end - i - 1].copy_from_slice(&data[i + 1..end]);
            out.push(u64::from_le_bytes(b));
            i = end;
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    // The same bytes as RL.APPLY arguments (0x00-separated): total, and bounded if accepted.
    let args: Vec<&[u8]> = data.split(|b| *b == 0).collect();
    let _ = is_set_form(&args);
    if let Some(a) = parse_apply_set(&args) {
        assert!((1..=4).contains(&a.usage.len()));
    }

    let all = fields(data);
    let mut it = all.iter().copied();
    let Some(state) = decode(|| it.next()) else {
        return;
    };
    let used = all.len() - it.count();
    assert_eq!(encode(&state), all[..used].to_vec());

    if state.legacy().is_none() {
        let (text, limits) = apply_text(&state, Some(1), true, &[]);
        let mut args: Vec<&[u8]> = vec![&text];
        if let Some(l) = &limits {
            args.extend([b"LIMITS".as_slice(), l]);
        }
        let back = parse_apply_set(&args).expect("a written state reads back");
        assert_eq!((back.usage, back.stored), (state.usage.clone(), state.stored));
    }

    // Decide under the stored limits, or a default one, at a clock taken from the input.
    let now = all.last().copied().unwrap_or(0);
    let limits = state
        .stored
        .map(|s| s.limits)
        .unwrap_or_else(|| Limits::single(Policy::new(10, 1000, 0).expect("valid")));
    let mut usage = state.usage.clone();
    let before = status(&limits, &usage, now);
    let o = decide(&limits, &mut usage, now, 1 + now % 20);
    assert!(o.binding < limits.len() && before.binding < limits.len());
});
