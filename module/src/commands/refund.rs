//! `RL.REFUND key n [inline policy as RL.ALLOW]`: gives back `n` units (1..=10^9) on every
//! limit of the key's policy, each at most its live usage: a GCRA limit's TAT goes back
//! `n*T` but never before now, a SLIDING limit loses its most recent live entries first, a
//! CONCURRENCY limit gives nothing back (a lease is given back with `RL.RELEASE`).
//!
//! The policy is resolved like a check's (stored, else inline, else default, else the
//! no-policy error): a GCRA unit is `window_ms / limit`, so a refund needs the limits. Replies
//! the most units any limit gave back: 0 means nothing changed, and then nothing is written.
//!
//! Whoever may call it can lift its own limit: grant applications that face users
//! `+rl.allow` only (README, "Token budgets").

use super::check::expiry;
use crate::defaults::{default_policy, scale_percent};
use crate::entry::Call;
use crate::ffi::now_ms;
use crate::key::{Effect, Key, New};
use crate::reply;
use rl_core::args::parse_refund;
use rl_core::error::Error;
use rl_core::ops;
use rl_core::resolve::resolve;
use rl_core::state::{State, Usages};

pub fn refund(call: &Call) -> Result<(), Error> {
    let request = call.parse(parse_refund)?;
    let now = now_ms();
    let key = Key::open_write(call.ctx(), call.key());
    let value = key.value()?;
    let mut state = match &value {
        Some(v) => v.state(),
        None => State::usage_only(Usages::new()),
    };
    let resolved = resolve(
        state.stored.as_ref(),
        request.inline.as_ref(),
        default_policy,
        scale_percent(),
    )?;
    let policy = resolved.policy;
    let given = match value {
        None => 0,
        Some(_) => ops::refund(&mut state, &policy, now, request.cost),
    };
    if given > 0 {
        let idle_ms = state.stored.map(|s| s.idle_ms);
        let expiry = expiry(&policy, state.as_ref(), idle_ms, now);
        key.write(value, New::State(&mut state), expiry, &Effect::default())?;
    }
    reply::count(call.ctx(), given);
    Ok(())
}
