//! The one pipeline of `RL.ALLOW`, `RL.THROTTLE` and `RL.PEEK`: parse once, read the clock
//! once, open the key once, resolve the policy, read the key's usage under it, decide over
//! every limit, and (unless peeking) write: in place when the key's usage is read as
//! recorded, else the whole state. A key of one GCRA limit takes this same path with one
//! limit; the value layer keeps its compact layouts.

use crate::defaults::{default_policy, scale_percent};
use crate::entry::Call;
use crate::ffi::{notify, now_ms};
use crate::key::{Effect, Expiry, Key, New};
use crate::metrics;
use rl_core::apply::Record;
use rl_core::args::{parse_request, Command};
use rl_core::decide::{self, decide, numbers, Numbers};
use rl_core::error::Error;
use rl_core::kinds::{Limit, Usage};
use rl_core::policy::{own_expiry, Policy, MAX_LIMITS};
use rl_core::resolve::{resolve, tell, Resolved, Told};
use rl_core::state::{view, State, StateRef};

/// A decision, with the numbers when the command replies them.
pub struct Checked {
    pub told: Told,
    pub resolved: Resolved,
    /// `RL.THROTTLE`/`RL.PEEK`'s numbers (`None` for `RL.ALLOW`, which replies a boolean).
    pub numbers: Option<Numbers>,
    /// `WITHPOLICY` was given.
    pub with_policy: bool,
}

/// Decides the request in `call`; with `consume`, counts it and writes the new state.
pub fn check(call: &Call, command: Command, consume: bool) -> Result<Checked, Error> {
    let request = call.parse(|args| parse_request(args, command))?;
    let (cost, now) = (request.cost, now_ms());
    let key = if consume {
        Key::open_write(call.ctx(), call.key())
    } else {
        Key::open_read(call.ctx(), call.key())
    };
    let mut value = key.value()?;
    let read = value.as_ref().map(|v| v.read());
    let state = read.as_ref().map(|r| r.state());
    let stored = state.and_then(|s| s.stored);
    let resolved = resolve(
        stored,
        request.inline.as_ref(),
        default_policy,
        scale_percent(),
    )?;
    let policy = resolved.policy;
    let (usages, pending) = state.map_or((&[][..], None), |s| (s.usages, s.pending_at_ms));
    let seen = view(&policy, usages, pending, now);
    let decision = decide(&policy, seen.as_slice(), now, cost);
    let told = tell(&resolved, decision.allowed);
    let numbers = (command == Command::Throttle).then(|| {
        let mut n = numbers(&policy, seen.as_slice(), Some(&decision), now, cost);
        if told.shadow_denied {
            n.retry_after_ms = None;
        }
        n
    });
    let checked = Checked {
        told,
        resolved,
        numbers,
        with_policy: request.with_policy,
    };
    if !consume {
        return Ok(checked);
    }
    metrics::record(resolved.source, told.allowed, told.shadow_denied);
    if !decision.allowed {
        denied(call, &key, told, now);
    }
    // A denial writes nothing, except the repair of state left ahead by a clock step.
    if !decision.allowed && !decide::needs_repair(&policy, seen.as_slice(), now) {
        return Ok(checked);
    }
    let idle_ms = stored.map(|s| s.idle_ms);
    let stored = stored.copied();
    let in_place = !seen.is_carried() && value.as_ref().is_some_and(|v| v.is_general());
    let mut effect = Effect::default();
    if in_place && decision.allowed {
        effect.records = records(&policy, seen.as_slice(), now, cost);
    }
    let mut owned = (!in_place).then(|| seen.into_usages());
    drop(read);
    let new = match (&mut owned, value.as_mut().and_then(|v| v.usages_mut())) {
        (None, Some(usages)) => {
            update(&policy, usages, &decision, now, cost);
            New::InPlace
        }
        (Some(usages), _) => {
            update(&policy, usages, &decision, now, cost);
            let usages = owned.take().unwrap_or_default();
            New::State(State::new(usages, stored, None).ok_or(Error::Internal(
                "a decision left a state that cannot be stored",
            ))?)
        }
        (None, None) => return Err(Error::Internal("no usages to write in place")),
    };
    let empty_at = match (&new, &value) {
        (New::State(s), _) => empty_at(&policy, s.as_ref(), now),
        (New::InPlace, Some(v)) => empty_at(&policy, v.read().state(), now),
        (New::InPlace, None) => now,
    };
    let expiry = Expiry::Own(own_expiry(idle_ms, empty_at, now));
    key.write(value, new, expiry, &effect)?;
    Ok(checked)
}

/// Records an allowed request, or stores the repair a denial reads.
fn update(policy: &Policy, usages: &mut [Usage], d: &decide::Decision, now: u64, cost: u64) {
    if d.allowed {
        decide::record(policy, usages, d, now, cost);
    } else {
        decide::repair(policy, usages, now);
    }
}

/// The requests an allowed check records in SLIDING logs that the replicas hold as they are
/// (a log that knows its window, or an empty one): sent instead of the whole logs.
fn records(policy: &Policy, usages: &[Usage], now: u64, cost: u64) -> [Option<Record>; MAX_LIMITS] {
    let mut out = [None; MAX_LIMITS];
    for ((limit, usage), slot) in policy.limits().iter().zip(usages).zip(out.iter_mut()) {
        if let (Limit::Sliding(s), Usage::Sliding(log)) = (limit, usage) {
            if log.window_ms() != 0 || log.is_empty() {
                *slot = Some(Record {
                    at_ms: now,
                    cost,
                    window_ms: s.window_ms(),
                });
            }
        }
    }
    out
}

/// Unix ms from which the written state is empty: as recorded for a usage-only key (its
/// expiry), under the policy for a configured one (never expired before).
fn empty_at(policy: &Policy, state: StateRef<'_>, now: u64) -> u64 {
    let under_policy = policy
        .limits()
        .iter()
        .zip(state.usages)
        .map(|(l, u)| l.after(u, None, now, 0).1)
        .fold(now, u64::max);
    match state.stored {
        None => state.own_empty_at_ms(now, under_policy),
        Some(_) => under_policy,
    }
}

/// A denial is published (when the operator enabled module keyspace events) and, unless a
/// shadow policy allowed it, counted for RL.TOP.
fn denied(call: &Call, key: &Key, told: Told, now: u64) {
    if told.shadow_denied {
        notify(call.ctx(), c"rl.shadow-denied", key.name());
    } else {
        notify(call.ctx(), c"rl.denied", key.name());
        metrics::record_denied_key(key.name_bytes(), now);
    }
}
