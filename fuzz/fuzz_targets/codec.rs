//! Fuzzes the one decoder of stored values (what RDB, RESTORE and MIGRATE feed `rdb_load`), at
//! every encoding version, and then uses what it accepts: decoding must never panic, an
//! accepted state must re-encode to the same fields, read back from its `RL.APPLY` text, and
//! decide, record, reconfigure and explain without panicking; then every operation of issues
//! 19 and 20 (reserve, acquire, refund, settle, block, renew, unblock) leaves a state that
//! loads back as itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rl_core::apply::{parse_apply, write_line, Extra, Line};
use rl_core::decide::{decide, numbers};
use rl_core::kinds::gcra::{Gcra, Tat};
use rl_core::kinds::Limit;
use rl_core::policy::{Policy, Stored};
use rl_core::ops::{block, check, lease, refund, settle, unblock, Op};
use rl_core::rdb::{decode, encode, ENCODING_VERSION};
use rl_core::state::{request, status, State};

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

fn args(line: &Line) -> Vec<Vec<u8>> {
    let mut v = vec![line.state.as_bytes().to_vec()];
    match &line.extra {
        Extra::Nothing => {}
        Extra::Policy(p) => {
            v.push(b"POLICY".to_vec());
            v.extend(p.iter().map(|f| f.to_string().into_bytes()));
        }
        Extra::Limits(l) => {
            v.push(b"LIMITS".to_vec());
            v.push(l.as_bytes().to_vec());
        }
    }
    // The key-level parts go last, as module/src/propagate.rs sends them.
    if let Some(p) = &line.parts {
        v.push(b"PARTS".to_vec());
        v.push(p.as_bytes().to_vec());
    }
    v
}

fuzz_target!(|data: &[u8]| {
    let Some((&encver, rest)) = data.split_first() else {
        return;
    };
    let all = fields(rest);
    let mut it = all.iter().copied();
    let Some(state) = decode(u64::from(encver % 5), || it.next()) else {
        return;
    };
    let used = all.len() - it.count();
    // It re-encodes to the fields it was read from (version 1's forms with the TAT in lowest
    // terms: they also accept another, and load it reduced).
    let mut read = all[..used].to_vec();
    if read.get(3).is_some_and(|&k| k <= 1) {
        if let Some(t) = Tat::new(read[0], read[1], read[2]).map(|t| t.reduced()) {
            read[..3].copy_from_slice(&[t.ms(), t.frac(), t.den()]);
        }
    }
    assert_eq!(encode(state.as_ref()), read);

    // Its RL.APPLY text (with the policy) reads back as the same state.
    let mut line = Line::new();
    write_line(state.as_ref(), Some(1), true, &[], &mut line);
    let a = args(&line);
    let refs: Vec<&[u8]> = a.iter().map(|x| x.as_slice()).collect();
    let back = parse_apply(&refs).expect("a written line reads back");
    assert_eq!(back.state(None), Some(state.clone()));

    // Decide under the stored policy, or a default one, at a clock taken from the input.
    let now = all.last().copied().unwrap_or(0);
    let policy = state
        .stored
        .map(|s| s.policy)
        .unwrap_or_else(|| Policy::single(Limit::Gcra(Gcra::new(10, 1000, 0).expect("valid"))));
    let seen = state.view(&policy, now);
    let d = decide(&policy, seen.as_slice(), now, 1 + now % 20);
    let n = numbers(&policy, seen.as_slice(), Some(&d), now, 1 + now % 20);
    assert!(n.binding < policy.len());
    let _ = status(state.as_ref(), Some(&policy), now, None);
    // A check as RL.ALLOW takes it, then a reconfiguration. Not on a policy with a
    // CONCURRENCY limit: RL.ALLOW refuses those keys (RL.ACQUIRE takes a lease with an id from
    // the key's sequence, below), and `request` would record a lease no sequence issued.
    let mut after = state.clone();
    if !policy.limits().iter().any(|l| matches!(l, Limit::Concurrency(_))) {
        request(&mut after, &policy.scaled(now % 1001), now, 1 + now % 7);
    }
    let stored = Stored::new(Policy::single(Limit::Gcra(Gcra::new(3, 1000, 0).expect("valid"))), 0, false).expect("valid");
    let changed = State::configure(Some(after), stored, now);
    assert!(State::new(
        changed.usages.clone(),
        changed.stored,
        changed.pending_at_ms,
        changed.parts.clone()
    )
    .is_some());

    // Issues 19 and 20: every operation on the key-level parts, at the input's clock, keeps
    // a state that encodes and decodes back to itself (what a write stores is loadable).
    let mut s = state.clone();
    let reserve = Op::Reserve {
        hold_ms: 1 + now % 86_400_000,
        under: None,
    };
    let held = check(&mut s, &policy, &reserve, now, 1 + now % 9, false, None)
        .ok()
        .and_then(|(_, _, c)| c.id);
    let _ = check(&mut s, &policy, &Op::Acquire, now, 1, now % 2 == 0, None);
    let _ = refund(&mut s, &policy, now, 1 + now % 5);
    if let Some(id) = held.or_else(|| s.parts.as_ref().and_then(|p| p.holds.first().map(|h| h.id))) {
        let _ = settle(&mut s, Some(&policy), now, id, now % 13);
    }
    block(&mut s, now, 1 + now % 1000);
    let _ = lease(&mut s, Some(&policy), now, now, Some(1 + now % 1000));
    let _ = unblock(&mut s, now.saturating_add(1));
    // A state left with nothing (RL.UNBLOCK of a key of parts alone) is not stored: the
    // module deletes the key (module/src/commands/block.rs).
    if s.usages.is_empty() && s.stored.is_none() && s.parts.is_none() {
        return;
    }
    let fields = encode(s.as_ref());
    let mut again = fields.iter().copied();
    let back = decode(ENCODING_VERSION, || again.next());
    assert_eq!(back, Some(s), "an operation left a state that does not load back");
});
