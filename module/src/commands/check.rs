//! The one pipeline of every check: `RL.ALLOW`, `RL.THROTTLE`, `RL.PEEK`, `RL.RESERVE` and
//! `RL.ACQUIRE`. Parse once, read the clock once, open the key once, resolve the policy,
//! read the key's usage under it, decide over every limit and the key's block
//! (`rl_core::ops`), and (unless peeking) write: in place when the key's usage is read as
//! recorded, else the whole state. A key of one GCRA limit takes this same path with one
//! limit; the value layer keeps its compact layouts, which hold no key-level parts, so such a
//! key pays for blocks, holds and leases only a test that it has none.

use crate::defaults::{default_policy, scale_percent};
use crate::entry::Call;
use crate::ffi::{notify, now_ms};
use crate::key::{Effect, Expiry, Key, New};
use crate::metrics;
use rl_core::apply::Record;
use rl_core::args::{parse_request, parse_reserve, Command, Request};
use rl_core::decide::{self, Numbers};
use rl_core::error::Error;
use rl_core::kinds::{Limit, Usage};
use rl_core::ops::{self, admissible, commit, evaluate, tell_numbers, Op, PenaltyRule};
use rl_core::parts::DEFAULT_HOLD_MS;
use rl_core::policy::{own_expiry, Policy, Stored, MAX_LIMITS};
use rl_core::resolve::{resolve, tell, Resolved, Source, Told};
use rl_core::state::{discard, is_native, view, State, StateRef, Usages};

/// Which check a call is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    Allow,
    Throttle,
    Peek,
    Reserve,
    Acquire,
}

/// What the checks other than `RL.ALLOW` reply besides the decision (filled by [`check`] for
/// them only: `RL.ALLOW` replies a boolean and computes none of it).
pub struct Reply {
    pub numbers: Numbers,
    pub resolved: Resolved,
    /// `WITHPOLICY` was given.
    pub with_policy: bool,
    /// The reservation or lease taken (`RL.RESERVE`, `RL.ACQUIRE`).
    pub id: Option<u64>,
}

/// Decides the check in `call`; unless peeking, counts it and writes the new state. For every
/// check but `RL.ALLOW`, also sets `out`.
///
/// Inlined into each command, so that `which` is a constant there and each keeps only its own
/// branches: `RL.ALLOW`'s path lost about 40 to 55 instructions of tests and register spills
/// (callgrind).
#[inline(always)]
pub fn check(call: &Call, which: Which, out: &mut Option<Reply>) -> Result<Told, Error> {
    let request = match which {
        // Most calls give no options: the plain request, which `parse_request` returns for
        // them, without the copies of it through two Results (about 30 instructions).
        Which::Allow | Which::Throttle | Which::Peek | Which::Acquire if call.is_bare() => {
            Request::PLAIN
        }
        Which::Allow => call.parse(|args| parse_request(args, Command::Allow))?,
        Which::Throttle | Which::Peek => {
            call.parse(|args| parse_request(args, Command::Throttle))?
        }
        Which::Acquire => call.parse(|args| parse_request(args, Command::Acquire))?,
        Which::Reserve => call.parse(parse_reserve)?,
    };
    let consume = which != Which::Peek;
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
    let parts = state.and_then(|s| s.parts);
    let resolved = resolve(
        stored,
        request.inline.as_ref(),
        default_policy,
        scale_percent(),
    )?;
    let policy = &resolved.policy;
    let op = match which {
        Which::Allow | Which::Throttle => Op::Check,
        Which::Peek => Op::Peek,
        Which::Acquire => Op::Acquire,
        Which::Reserve => Op::Reserve {
            hold_ms: request.hold_ms.unwrap_or(DEFAULT_HOLD_MS),
            under: unscaled(&resolved, stored, &request).filter(|_| stored.is_none()),
        },
    };
    admissible(&op, policy, parts, now)?;
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
            parts: s.parts.map(|p| Box::new(p.clone())),
        }),
        None => Some(State::usage_only(Usages::empty_for(policy))),
    };
    let usages = match (&owned, state) {
        (Some(o), _) => &o.usages[..],
        (None, Some(s)) => s.usages,
        (None, None) => &[][..],
    };
    let e = evaluate(policy, usages, parts, now, cost, resolved.shadow, || {
        penalty_rule(&resolved, stored, &request)
    });
    let told = tell(&resolved, e.allowed());
    if which != Which::Allow {
        let mut n = tell_numbers(policy, usages, &e, now, cost);
        if told.shadow_denied {
            n.retry_after_ms = None;
        }
        *out = Some(Reply {
            numbers: n,
            resolved,
            with_policy: request.with_policy,
            id: None,
        });
    }
    if !consume {
        return Ok(told);
    }
    metrics::record(resolved.source, told.allowed, told.shadow_denied);
    if !e.allowed() {
        denied(call, &key, told, now);
        // A denial writes nothing but the penalty it starts or the repair of state left
        // ahead by a clock step; a blocked check nothing at all.
        let writes = e.blocked_until.is_none()
            && (e.starts.is_some() || decide::needs_repair(policy, usages, now));
        if !writes {
            return Ok(told);
        }
    }
    let idle_ms = stored.map(|s| s.idle_ms);
    let mut effect = Effect::default();
    if owned.is_none() && e.allowed() {
        effect.records = records(policy, usages, now, cost);
    }
    drop(read);
    let committed = match &mut owned {
        Some(state) => {
            let c = commit(
                &op,
                policy,
                &mut state.usages,
                &mut state.parts,
                &e,
                now,
                cost,
            )?;
            let expiry = expiry(policy, state.as_ref(), idle_ms, now);
            key.write(value, New::State(state), expiry, &effect)?;
            c
        }
        None => {
            let Some((usages, parts)) = value.as_mut().and_then(|v| v.usages_and_parts_mut())
            else {
                return Err(Error::Internal("no usages to write in place"));
            };
            let c = commit(&op, policy, usages, parts, &e, now, cost)?;
            let expiry = match value.as_ref() {
                Some(v) => expiry(policy, v.read().state(), idle_ms, now),
                None => Expiry::Own(None),
            };
            key.write(value, New::InPlace, expiry, &effect)?;
            c
        }
    };
    if let Some(reply) = out {
        reply.id = committed.id;
    }
    discard(owned);
    Ok(told)
}

/// The policy a call is decided under, as given (before `rl.scale-percent`): the stored one,
/// the call's inline one, or the default.
fn unscaled(resolved: &Resolved, stored: Option<&Stored>, request: &Request) -> Option<Policy> {
    match resolved.source {
        Source::Stored => stored.map(|s| s.policy),
        Source::Inline => request.inline,
        Source::Default => default_policy().ok().flatten(),
    }
}

/// The penalty of the policy that decides (the stored one's, or the inline one's), with the
/// window it escalates within: the longest of that policy's windows, as given.
fn penalty_rule(
    resolved: &Resolved,
    stored: Option<&Stored>,
    request: &Request,
) -> Option<PenaltyRule> {
    let penalty = match resolved.source {
        Source::Stored => stored.and_then(Stored::penalty),
        Source::Inline => request.penalty,
        Source::Default => None,
    }?;
    let escalation_ms = unscaled(resolved, stored, request).map_or(0, |p| p.longest_window_ms());
    Some(PenaltyRule {
        penalty,
        escalation_ms,
    })
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
/// empty, its holds have expired and its block has ended; a configured key's with IDLE
/// `idle_ms` from now, never before every limit is empty (computed only then), nor before
/// its holds expire or its block ends; a configured key's without IDLE none of its own.
pub fn expiry(policy: &Policy, state: StateRef<'_>, idle_ms: Option<u64>, now: u64) -> Expiry {
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
    let empty_at = match state.parts {
        None => empty_at,
        Some(p) => empty_at.max(ops::parts_live_until(Some(p), now)),
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
