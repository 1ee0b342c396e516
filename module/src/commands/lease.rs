//! `RL.RELEASE key lease` and `RL.RENEW key lease ms`: give back or extend a lease that
//! `RL.ACQUIRE` took (`rl_core::kinds::concurrency`).
//!
//! `RL.RELEASE` replies 1 if the lease was held (it is removed from every CONCURRENCY limit
//! of the key), 0 if it had expired, was released, or never existed: then nothing is written,
//! and no other holder's slot is ever freed. `RL.RENEW` makes a held lease expire `ms`
//! (1..=4294967295) from now; 1 if renewed, 0 if not held. Neither touches rate limits. A
//! configured key's leases are read under its stored policy (a reconfiguration that changed
//! a limit's kind dropped them).

use super::check::expiry;
use crate::defaults::scale_percent;
use crate::entry::Call;
use crate::ffi::now_ms;
use crate::key::{Effect, Key, New};
use crate::reply;
use rl_core::args::{parse_id, parse_renew};
use rl_core::error::Error;
use rl_core::ops;

pub fn release(call: &Call) -> Result<(), Error> {
    let id = call.parse(|args| match args {
        [id] => parse_id(id, Error::LeaseId),
        _ => Err(Error::WrongArity),
    })?;
    change(call, id, None)
}

pub fn renew(call: &Call) -> Result<(), Error> {
    let (id, ms) = call.parse(parse_renew)?;
    change(call, id, Some(ms))
}

fn change(call: &Call, id: u64, renew_ms: Option<u64>) -> Result<(), Error> {
    let now = now_ms();
    let key = Key::open_write(call.ctx(), call.key());
    let value = key.value()?;
    let Some(v) = &value else {
        reply::integer(call.ctx(), 0);
        return Ok(());
    };
    let mut state = v.state();
    let policy = state.stored.map(|s| s.policy.scaled(scale_percent()));
    if !ops::lease(&mut state, policy.as_ref(), now, id, renew_ms) {
        reply::integer(call.ctx(), 0);
        return Ok(());
    }
    let expiry = match &policy {
        Some(p) => expiry(p, state.as_ref(), state.stored.map(|s| s.idle_ms), now),
        None => super::block::own_expiry(&state, &key, now),
    };
    key.write(value, New::State(&mut state), expiry, &Effect::default())?;
    reply::integer(call.ctx(), 1);
    Ok(())
}
