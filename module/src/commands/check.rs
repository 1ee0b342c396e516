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
use rl_core::state::{is_native, view, State, StateRef, Usages};

/// What `RL.THROTTLE` and `RL.PEEK` reply besides the decision (filled by [`check`] for
/// them only: `RL.ALLOW` replies a boolean and computes none of it).
pub struct Reply {
    pub numbers: Numbers,
    pub resolved: Resolved,
    /// `WITHPOLICY` was given.
    pub with_policy: bool,
}

/// Decides the request in `call`; with `consume`, counts it and writes the new state. For
/// `Command::Throttle`, also sets `numbers`.
pub fn check(
    call: &Call,
    command: Command,
    consume: bool,
    numbers_out: &mut Option<Reply>,
) -> Result<Told, Error> {
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
    let policy = &resolved.policy;
    // The usages the policy reads: a general value's own when it reads them as recorded
    // (then a write updates them in place), else the state a write would store, built once
    // (carried, copied from a compact layout, or empty for a new key).
    let general = value.as_ref().is_some_and(|v| v.is_general());
    let mut owned = match state {
        Some(s) if general && s.pending_at_ms.is_none() && is_native(policy, s.usages) => None,
        Some(s) => Some(State {
            usages: view(policy, s.usages, s.pending_at_ms, now).into_usages(),
            stored: s.stored.copied(),
            pending_at_ms: None,
        }),
        None => Some(State {
            usages: Usages::empty_for(policy),
            stored: None,
            pending_at_ms: None,
        }),
    };
    let usages = match (&owned, state) {
        (Some(o), _) => &o.usages[..],
        (None, Some(s)) => s.usages,
        (None, None) => &[][..],
    };
    let decision = decide(policy, usages, now, cost);
    let told = tell(&resolved, decision.allowed);
    if command == Command::Throttle {
        let mut n = numbers(policy, usages, Some(&decision), now, cost);
        if told.shadow_denied {
            n.retry_after_ms = None;
        }
        *numbers_out = Some(Reply {
            numbers: n,
            resolved,
            with_policy: request.with_policy,
        });
    }
    if !consume {
        return Ok(told);
    }
    metrics::record(resolved.source, told.allowed, told.shadow_denied);
    if !decision.allowed {
        denied(call, &key, told, now);
    }
    // A denial writes nothing, except the repair of state left ahead by a clock step.
    if !decision.allowed && !decide::needs_repair(policy, usages, now) {
        return Ok(told);
    }
    let idle_ms = stored.map(|s| s.idle_ms);
    let mut effect = Effect::default();
    if owned.is_none() && decision.allowed {
        effect.records = records(policy, usages, now, cost);
    }
    drop(read);
    match &mut owned {
        Some(state) => {
            update(policy, &mut state.usages, &decision, now, cost);
            let expiry = expiry(policy, state.as_ref(), idle_ms, now);
            key.write(value, New::State(state), expiry, &effect)?;
        }
        None => {
            let Some(usages) = value.as_mut().and_then(|v| v.usages_mut()) else {
                return Err(Error::Internal("no usages to write in place"));
            };
            update(policy, usages, &decision, now, cost);
            let expiry = match value.as_ref() {
                Some(v) => expiry(policy, v.read().state(), idle_ms, now),
                None => Expiry::Own(None),
            };
            key.write(value, New::InPlace, expiry, &effect)?;
        }
    }
    Ok(told)
}

/// Records an allowed request, or stores the repair a denial reads.
#[inline]
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

/// The expiry a written state calls for: a usage-only key's when its usage as recorded is
/// empty; a configured key's with IDLE `idle_ms` from now, never before every limit is empty
/// (computed only then); a configured key's without IDLE none of its own.
fn expiry(policy: &Policy, state: StateRef<'_>, idle_ms: Option<u64>, now: u64) -> Expiry {
    let under_policy = || {
        policy
            .limits()
            .iter()
            .zip(state.usages)
            .map(|(l, u)| l.after(u, None, now, 0).1)
            .fold(now, u64::max)
    };
    let empty_at = match idle_ms {
        None => state
            .usages
            .iter()
            .map(|u| u.own_empty_at_ms(now))
            .try_fold(now, |at, own| own.map(|o| at.max(o)))
            .unwrap_or_else(under_policy),
        Some(0) => now,
        Some(_) => under_policy(),
    };
    Expiry::Own(own_expiry(idle_ms, empty_at, now))
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
