//! `RL.SETTLE key reservation actual`: closes an open hold with the units the work actually
//! used (0..=10^9), under the key's stored policy, else the limits it was reserved under.
//!
//! Below the estimate the difference is given back, but never more than the hold, and never
//! what of it has already drained (`rl_core::parts`); above it the excess is charged on every
//! rate limit whatever that does to admission (a key in debt denies until it has drained; the
//! debt is at most one full bucket beyond now). Replies the signed units: minus the most any
//! limit gave back, plus the excess, or 0. A hold that expired, was settled or was never
//! issued is the error `unknown reservation` (so a retried settle is visible and harmless).

use super::check::expiry;
use crate::defaults::scale_percent;
use crate::entry::Call;
use crate::ffi::now_ms;
use crate::key::{Effect, Key, New};
use crate::reply;
use rl_core::args::parse_settle;
use rl_core::error::Error;
use rl_core::ops;

pub fn settle(call: &Call) -> Result<(), Error> {
    let (id, actual) = call.parse(parse_settle)?;
    let now = now_ms();
    let key = Key::open_write(call.ctx(), call.key());
    let value = key.value()?;
    let Some(v) = &value else {
        return Err(Error::UnknownReservation);
    };
    let mut state = v.state();
    let scale = scale_percent();
    let policy = match (&state.stored, state.parts.as_deref()) {
        (Some(s), _) => Some(s.policy.scaled(scale)),
        (None, Some(p)) => p.reserved_under.map(|q| q.scaled(scale)),
        (None, None) => None,
    };
    let reply = ops::settle(&mut state, policy.as_ref(), now, id, actual)?;
    let idle_ms = state.stored.map(|s| s.idle_ms);
    let expiry = match &policy {
        Some(p) => expiry(p, state.as_ref(), idle_ms, now),
        None => super::block::own_expiry(&state, &key, now),
    };
    key.write(value, New::State(&mut state), expiry, &Effect::default())?;
    reply::integer(call.ctx(), reply);
    Ok(())
}
