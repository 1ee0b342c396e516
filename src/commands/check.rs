//! The decision shared by `RL.ALLOW`, `RL.THROTTLE` and `RL.PEEK`: parse, read the clock
//! once, open the key once, pick the policy, decide, and (unless peeking) commit.

use crate::args::parse_allow;
use crate::defaults::{default_policy, scale_percent};
use crate::error::Error;
use crate::ffi::{notify, now_ms, string_bytes, Args, Ctx, Key, Str};
use crate::gcra::{decide, Decision, Tat};
use crate::metrics::{self, Source};
use crate::policy::{own_expiry, Policy, StoredPolicy};
use crate::value::Value;
use crate::verdict::{explain, Verdict};

/// A decision and what it was taken on.
pub struct Checked {
    pub policy: Policy,
    /// The TAT before the decision.
    pub tat: Tat,
    pub decision: Decision,
    pub now_ms: u64,
    pub cost: u64,
    /// A shadow policy denied the request, which was allowed.
    pub shadow_denied: bool,
}

impl Checked {
    /// What the client is told: allowed, unless denied by a policy that is not a shadow.
    pub fn allowed(&self) -> bool {
        matches!(self.decision, Decision::Allowed(_)) || self.shadow_denied
    }

    /// The numbers for `RL.THROTTLE`/`RL.PEEK`; a shadow denial reads as allowed.
    pub fn verdict(&self) -> Verdict {
        let mut v = explain(
            &self.policy,
            self.tat,
            self.now_ms,
            self.cost,
            self.decision,
        );
        if self.shadow_denied {
            v.retry_after_ms = None;
        }
        v
    }
}

/// The policy for a call: inline, else stored, else the module default; scaled by
/// `rl.scale-percent`.
pub fn resolve(
    inline: Option<Policy>,
    stored: Option<StoredPolicy>,
) -> Result<(Policy, Source), Error> {
    let (policy, source) = match (inline, stored) {
        (Some(p), _) => (p, Source::Inline),
        (None, Some(s)) => (s.policy, Source::Stored),
        (None, None) => (default_policy()?.ok_or(Error::NoPolicy)?, Source::Default),
    };
    Ok((policy.scaled(scale_percent()), source))
}

/// Decides the request in `argv` (`key [COST n] [LIMIT l WINDOW w [BURST b]]`); with
/// `consume`, counts it, stores the new state, expires and replicates it.
pub fn check(
    ctx: Ctx,
    argv: *mut Str,
    argc: std::ffi::c_int,
    consume: bool,
) -> Result<Checked, Error> {
    // SAFETY: Redis passes argc valid arguments; callers checked argc >= 2.
    let args = unsafe { Args::new(argv, argc, 2) }.ok_or(Error::TooManyArguments)?;
    let request = parse_allow(args.as_slice())?;
    let now = now_ms();
    // SAFETY: argc >= 2.
    let name = unsafe { *argv.add(1) };
    let key = if consume {
        Key::open_write(ctx, name)
    } else {
        Key::open_read(ctx, name)
    };
    let bucket = key.bucket()?;
    let (tat, stored) = bucket
        .as_ref()
        .map_or((Tat::EMPTY, None), |b| (b.tat(), b.stored()));
    let (policy, source) = resolve(request.inline, stored)?;
    let decision = decide(&policy, tat, now, request.cost);
    let shadow_denied = decision == Decision::Denied
        && source == Source::Stored
        && stored.is_some_and(|s| s.shadow);
    let checked = Checked {
        policy,
        tat,
        decision,
        now_ms: now,
        cost: request.cost,
        shadow_denied,
    };
    if consume {
        metrics::record(source, checked.allowed(), shadow_denied);
        match decision {
            Decision::Allowed(new_tat) => commit(&key, bucket, stored, new_tat, now)?,
            Decision::Denied => denied(ctx, &key, shadow_denied, now),
        }
    }
    Ok(checked)
}

/// Stores an allowed request's new TAT, sets the expiry, and replicates the state.
fn commit(
    key: &Key,
    bucket: Option<Value>,
    stored: Option<StoredPolicy>,
    new_tat: Tat,
    now: u64,
) -> Result<(), Error> {
    key.store(bucket, new_tat, None)?;
    let expire_at = key.settle_expiry(own_expiry(stored, new_tat.empty_at_ms(), now));
    key.signal_modified();
    key.replicate(new_tat, expire_at, None);
    Ok(())
}

/// A denial writes nothing; it is published (if the operator enabled module keyspace events)
/// and, unless a shadow policy allowed it, counted for `RL.TOP`.
fn denied(ctx: Ctx, key: &Key, shadow: bool, now: u64) {
    if shadow {
        notify(ctx, c"rl.shadow-denied", key.name());
    } else {
        notify(ctx, c"rl.denied", key.name());
        // SAFETY: the key name is a command argument, alive for the call.
        metrics::record_denied_key(unsafe { string_bytes(key.name()) }, now);
    }
}
