//! The decision shared by `RL.ALLOW`, `RL.THROTTLE` and `RL.PEEK`: parse, read the clock
//! once, open the key once, resolve the policy, decide, and (unless peeking) commit.
//!
//! Two paths. A key of one GCRA limit, called with today's syntax, takes the original one
//! (`gcra::decide` on the TAT, the one-word value): nothing is added to it. A key with
//! several limits or a SLIDING one, or a call with `AND`/`SLIDING`/`GCRA`, takes the set path
//! (`limits::decide` on the key's whole state), which a single GCRA limit also passes through
//! unchanged (property-tested in `limits_tests.rs`).

use crate::defaults::{default_policy, scale_percent};
use crate::entry::Call;
use crate::ffi::{notify, now_ms};
use crate::key::{Expiry, Key, Write};
use crate::metrics;
use rl_core::args::{parse_allow, parse_allow_set};
use rl_core::error::Error;
use rl_core::gcra::{decide, Decision, Tat};
use rl_core::limits::{self, Limit, Limits, Outcome};
use rl_core::policy::{own_expiry, own_expiry_idle};
use rl_core::resolve::{resolve, resolve_set, tell, tell_set, Resolved, ResolvedSet, Told};
use rl_core::state::{Record, SetState};
use rl_core::verdict::explain;

/// What was decided, on which path.
pub enum Decided {
    /// One GCRA limit: the TAT before the decision.
    Single {
        resolved: Resolved,
        tat: Tat,
        decision: Decision,
    },
    /// Several limits or SLIDING ones (boxed: the single path stays small).
    Set(Box<SetDecided>),
}

pub struct SetDecided {
    pub resolved: ResolvedSet,
    pub outcome: Outcome,
}

/// A decision and what it was taken on.
pub struct Checked {
    pub decided: Decided,
    pub told: Told,
    pub now_ms: u64,
    pub cost: u64,
}

/// The numbers `RL.THROTTLE` and `RL.PEEK` reply.
pub struct Numbers {
    pub limit: u64,
    pub remaining: u64,
    pub retry_after_ms: Option<u64>,
    pub reset_after_ms: u64,
    /// Which limit bound (0-based, in the order given), when there are several.
    pub binding: Option<usize>,
}

impl Checked {
    /// The numbers for `RL.THROTTLE`/`RL.PEEK`; a shadow denial reads as allowed.
    pub fn numbers(&self) -> Numbers {
        let mut n = match &self.decided {
            Decided::Single {
                resolved,
                tat,
                decision,
            } => {
                let v = explain(&resolved.policy, *tat, self.now_ms, self.cost, *decision);
                Numbers {
                    limit: v.limit,
                    remaining: v.remaining,
                    retry_after_ms: v.retry_after_ms,
                    reset_after_ms: v.reset_after_ms,
                    binding: None,
                }
            }
            Decided::Set(set) => Numbers {
                limit: set.outcome.limit,
                remaining: set.outcome.remaining,
                retry_after_ms: set.outcome.retry_after_ms,
                reset_after_ms: set.outcome.reset_after_ms,
                binding: (set.resolved.limits.len() > 1).then_some(set.outcome.binding),
            },
        };
        if self.told.shadow_denied {
            n.retry_after_ms = None;
        }
        n
    }
}

/// Decides the request in `call` (`key [COST n] [LIMIT l WINDOW w [BURST b] [GCRA|SLIDING]]
/// [AND ...]`); with `consume`, counts it and writes the new state.
pub fn check(call: &Call, consume: bool) -> Result<Checked, Error> {
    let args = call.args()?;
    let single = parse_allow(args);
    // Only a call today's parser refuses is read with the set syntax (errors come first).
    let set_request = match single {
        Ok(_) => None,
        Err(_) => Some(parse_allow_set(args)?),
    };
    let now = now_ms();
    let key = if consume {
        Key::open_write(call.ctx(), call.key())
    } else {
        Key::open_read(call.ctx(), call.key())
    };
    let value = key.value()?;
    let (cost, inline) = match (single, set_request) {
        (Ok(request), _) if !value.as_ref().is_some_and(|v| v.is_set()) => {
            return check_single(
                call,
                &key,
                value,
                request.cost,
                request.inline,
                now,
                consume,
            );
        }
        (Ok(request), _) => (request.cost, request.inline.map(Limits::single)),
        (Err(_), Some(request)) => (request.cost, request.inline),
        (Err(e), None) => return Err(e),
    };
    let state = value.as_ref().map(|v| v.state());
    let stored = state.as_ref().and_then(|s| s.stored);
    let resolved = resolve_set(inline, stored, default_policy, scale_percent())?;
    let mut usage = state.map(|s| s.usage).unwrap_or_default();
    // Replicas hold this key's logs when it already is a set of these kinds: an allowed
    // request then sends each SLIDING log's new request, not the whole log.
    let records_apply =
        value.as_ref().is_some_and(|v| v.is_set()) && limits::fits(&resolved.limits, &usage);
    let outcome = limits::decide(&resolved.limits, &mut usage, now, cost);
    let told = tell_set(&resolved, outcome.allowed);
    if consume {
        metrics::record(resolved.source, told.allowed, told.shadow_denied);
        // A denial writes nothing, except the repair of a SLIDING log after a clock step.
        if outcome.allowed || outcome.repaired {
            let idle = stored.map(|s| s.idle_ms);
            let expiry = Expiry::Own(own_expiry_idle(idle, outcome.empty_at_ms, now));
            let new_state = SetState::new(usage, stored).ok_or(Error::Internal(
                "a decision left a state that cannot be stored",
            ))?;
            let records: Vec<Option<Record>> = resolved
                .limits
                .as_slice()
                .iter()
                .map(|l| match l {
                    Limit::Sliding(s) if records_apply && outcome.allowed => Some(Record {
                        at_ms: now,
                        cost,
                        window_ms: s.window_ms(),
                    }),
                    _ => None,
                })
                .collect();
            key.write_state(value, new_state, false, expiry, &records)?;
        }
        if !outcome.allowed {
            denied(call, &key, told, now);
        }
    }
    Ok(Checked {
        decided: Decided::Set(Box::new(SetDecided { resolved, outcome })),
        told,
        now_ms: now,
        cost,
    })
}

/// The original path: one GCRA limit on a key that is not a set.
fn check_single(
    call: &Call,
    key: &Key,
    value: Option<crate::key::ValueRef<'_>>,
    cost: u64,
    inline: Option<rl_core::policy::Policy>,
    now: u64,
    consume: bool,
) -> Result<Checked, Error> {
    let (tat, stored) = value
        .as_ref()
        .map_or((Tat::EMPTY, None), |v| (v.tat(), v.stored()));
    let resolved = resolve(inline, stored, default_policy, scale_percent())?;
    let decision = decide(&resolved.policy, tat, now, cost);
    let told = tell(&resolved, decision);
    if consume {
        metrics::record(resolved.source, told.allowed, told.shadow_denied);
        match decision {
            Decision::Allowed(new_tat) => {
                let expiry = Expiry::Own(own_expiry(stored, new_tat.empty_at_ms(), now));
                key.write(
                    value,
                    Write {
                        tat: new_tat,
                        set_policy: None,
                        expiry,
                    },
                )?;
            }
            Decision::Denied => {
                denied(call, key, told, now);
                // Except a repair: a TAT more than a full bucket ahead (the clock stepped
                // back) is stored as the full bucket the decision read, so the client
                // drains from now instead of waiting for the old clock.
                if let Some(repaired) = tat.repair(&resolved.policy, now) {
                    let expiry = Expiry::Own(own_expiry(stored, repaired.empty_at_ms(), now));
                    let w = Write {
                        tat: repaired,
                        set_policy: None,
                        expiry,
                    };
                    key.write(value, w)?;
                }
            }
        }
    }
    Ok(Checked {
        decided: Decided::Single {
            resolved,
            tat,
            decision,
        },
        told,
        now_ms: now,
        cost,
    })
}

/// A denial writes nothing; it is published (when the operator enabled module keyspace
/// events) and, unless a shadow policy allowed it, counted for RL.TOP.
fn denied(call: &Call, key: &Key, told: Told, now: u64) {
    if told.shadow_denied {
        notify(call.ctx(), c"rl.shadow-denied", key.name());
    } else {
        notify(call.ctx(), c"rl.denied", key.name());
        metrics::record_denied_key(key.name_bytes(), now);
    }
}
