//! The decision shared by `RL.ALLOW`, `RL.THROTTLE` and `RL.PEEK`: parse, read the clock
//! once, open the key once, resolve the policy, decide, and (unless peeking) commit.

use crate::args::parse_allow;
use crate::defaults::{default_policy, scale_percent};
use crate::entry::Call;
use crate::error::Error;
use crate::ffi::{notify, now_ms};
use crate::gcra::{decide, Decision, Tat};
use crate::key::{Expiry, Key, Write};
use crate::metrics;
use crate::policy::own_expiry;
use crate::resolve::{resolve, tell, Resolved, Told};
use crate::verdict::{explain, Verdict};

/// A decision and what it was taken on.
pub struct Checked {
    pub resolved: Resolved,
    /// The TAT before the decision.
    pub tat: Tat,
    pub decision: Decision,
    pub told: Told,
    pub now_ms: u64,
    pub cost: u64,
}

impl Checked {
    /// The numbers for `RL.THROTTLE`/`RL.PEEK`; a shadow denial reads as allowed.
    pub fn verdict(&self) -> Verdict {
        let p = &self.resolved.policy;
        let mut v = explain(p, self.tat, self.now_ms, self.cost, self.decision);
        if self.told.shadow_denied {
            v.retry_after_ms = None;
        }
        v
    }
}

/// Decides the request in `call` (`key [COST n] [LIMIT l WINDOW w [BURST b]]`); with
/// `consume`, counts it and writes the new state.
pub fn check(call: &Call, consume: bool) -> Result<Checked, Error> {
    let request = parse_allow(call.args()?)?;
    let now = now_ms();
    let key = if consume {
        Key::open_write(call.ctx(), call.key())
    } else {
        Key::open_read(call.ctx(), call.key())
    };
    let value = key.value()?;
    let (tat, stored) = value
        .as_ref()
        .map_or((Tat::EMPTY, None), |v| (v.tat(), v.stored()));
    let resolved = resolve(request.inline, stored, default_policy(), scale_percent())?;
    let decision = decide(&resolved.policy, tat, now, request.cost);
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
            // A denial writes nothing; it is published (when the operator enabled module
            // keyspace events) and, unless a shadow policy allowed it, counted for RL.TOP.
            Decision::Denied => {
                let event = if told.shadow_denied {
                    c"rl.shadow-denied"
                } else {
                    metrics::record_denied_key(key.name_bytes(), now);
                    c"rl.denied"
                };
                notify(call.ctx(), event, key.name());
                // Except a repair: a TAT more than a full bucket ahead (the clock stepped
                // back) is stored as the full bucket the decision read, so the client
                // drains from now instead of waiting for the old clock.
                let clamped = tat.clamped(&resolved.policy, now);
                if clamped != tat {
                    let expiry = Expiry::Own(own_expiry(stored, clamped.empty_at_ms(), now));
                    let w = Write {
                        tat: clamped,
                        set_policy: None,
                        expiry,
                    };
                    key.write(value, w)?;
                }
            }
        }
    }
    Ok(Checked {
        resolved,
        tat,
        decision,
        told,
        now_ms: now,
        cost: request.cost,
    })
}
