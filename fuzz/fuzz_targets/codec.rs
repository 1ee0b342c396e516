//! Fuzzes decoding a stored value (what RDB, RESTORE and MIGRATE feed `rdb_load`) and then
//! using it: decoding must never panic, an accepted state must re-encode to the same fields,
//! survive every in-memory layout, and decide, explain and scale without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rl_core::gcra::decide;
use rl_core::codec::{decode, encode};
use rl_core::policy::Policy;
use rl_core::verdict::evaluate;

fn word(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b[..bytes.len()].copy_from_slice(bytes);
    u64::from_le_bytes(b)
}

fuzz_target!(|data: &[u8]| {
    let mut fields = data.chunks(8).map(word);
    let Some((tat, stored)) = decode(|| fields.next()) else {
        return;
    };
    let (f, n) = encode(tat, stored);
    let mut again = f[..n].iter().copied();
    assert_eq!(decode(|| again.next()), Some((tat, stored)));

    // Use the state with the trailing bytes as the clock, cost and scale.
    let (now, cost, scale) = (word(data.get(72..80).unwrap_or(&[])), word(data.get(80..88).unwrap_or(&[])), word(data.get(88..96).unwrap_or(&[])));
    let policy = stored.map_or_else(|| Policy::new(1 + tat.den() % 1000, 1 + now % 100_000, 0), |s| Ok(s.policy));
    if let Ok(p) = policy {
        let p = p.scaled(scale % 1001);
        let _ = decide(&p, tat, now, cost);
        let v = evaluate(&p, tat, now, cost.max(1));
        assert!(v.remaining <= p.burst());
    }
});
