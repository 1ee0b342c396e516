//! `RL.BLOCK key ms` and `RL.UNBLOCK key`: an operator's block, and its end.
//!
//! `RL.BLOCK` blocks the key until `now + ms` (1..=10^12), replacing any block whatever the
//! policy, and keeps the penalty level; a key that does not exist becomes a usage-only key
//! that expires at the block's end. Replies OK. While blocked, every check is denied and
//! counts nothing (`rl_core::ops`).
//!
//! `RL.UNBLOCK` ends the block and resets the penalty level; replies 1 if the key was
//! blocked, else 0 (and writes nothing). Whoever may call it can lift a limit: grant
//! applications that face users `+rl.allow` only.

use super::check::expiry;
use crate::defaults::scale_percent;
use crate::entry::Call;
use crate::ffi::now_ms;
use crate::key::{Effect, Expiry, Key, New};
use crate::reply;
use rl_core::args::parse_block;
use rl_core::error::Error;
use rl_core::ops;
use rl_core::state::{State, Usages};

pub fn block(call: &Call) -> Result<(), Error> {
    let ms = call.parse(parse_block)?;
    let now = now_ms();
    let key = Key::open_write(call.ctx(), call.key());
    let value = key.value()?;
    let mut state = match &value {
        Some(v) => v.state(),
        None => State::usage_only(Usages::new()),
    };
    ops::block(&mut state, now, ms);
    let expiry = write_expiry(&state, &key, now);
    key.write(value, New::State(&mut state), expiry, &Effect::default())?;
    reply::ok(call.ctx());
    Ok(())
}

pub fn unblock(call: &Call) -> Result<(), Error> {
    let now = now_ms();
    let key = Key::open_write(call.ctx(), call.key());
    let value = key.value()?;
    let Some(v) = &value else {
        reply::integer(call.ctx(), 0);
        return Ok(());
    };
    let mut state = v.state();
    if !ops::unblock(&mut state, now) {
        reply::integer(call.ctx(), 0);
        return Ok(());
    }
    if state.usages.is_empty() && state.parts.is_none() && state.stored.is_none() {
        // A key that held nothing but the block.
        key.delete();
    } else {
        let expiry = write_expiry(&state, &key, now);
        key.write(value, New::State(&mut state), expiry, &Effect::default())?;
    }
    reply::integer(call.ctx(), 1);
    Ok(())
}

/// The expiry of a write that changes no usage: under the stored policy for a configured key,
/// else the key's own.
fn write_expiry(state: &State, key: &Key, now: u64) -> Expiry {
    match &state.stored {
        Some(s) => expiry(
            &s.policy.scaled(scale_percent()),
            state.as_ref(),
            Some(s.idle_ms),
            now,
        ),
        None => own_expiry(state, key, now),
    }
}

/// A usage-only key's own expiry: when its usage as recorded is empty (the key's current
/// expiry for a usage that does not know: a SLIDING log kept before logs knew their window),
/// its holds have expired and its block has ended.
pub fn own_expiry(state: &State, key: &Key, now: u64) -> Expiry {
    let usage = state.own_empty_at_ms(now, key.expiry().unwrap_or(now));
    Expiry::Own(Some(
        usage.max(ops::parts_live_until(state.parts.as_deref(), now)),
    ))
}
