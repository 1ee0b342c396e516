//! `RL.RESET key`: forgets a client's usage and keeps its stored policy.
//!
//! Replies how much usage was forgotten, in ms: the `reset_after_ms` that `RL.INFO` showed at
//! that instant (the time until every limit would have been empty; 0 when there was none). A
//! usage-only key is deleted, always; a configured key gets empty usages and keeps its expiry,
//! except that with IDLE it then expires `idle_ms` from now (also when there was no backlog).
//! Replicated as its effect (`DEL`, or `RL.APPLY` with the empty state).

use super::info::status_of;
use crate::entry::Call;
use crate::ffi::now_ms;
use crate::key::{Effect, Expiry, Key, New};
use crate::metrics::RESETS;
use crate::reply;
use rl_core::error::Error;
use rl_core::policy::own_expiry;
use rl_core::state::State;

pub fn reset(call: &Call) -> Result<(), Error> {
    let now = now_ms();
    let key = Key::open_write(call.ctx(), call.key());
    let Some(value) = key.value()? else {
        reply::integer(call.ctx(), 0);
        return Ok(());
    };
    let (forgotten, stored) = {
        let read = value.read();
        let state = read.state();
        let status = status_of(state, &key, now)?;
        (status.reset_after_ms, state.stored.copied())
    };
    match stored {
        // A usage-only key holds nothing but usage: gone, whatever its TTL (a user may have
        // PERSISTed it, or its usage may empty in this very millisecond).
        None => key.delete(),
        Some(s) => {
            // With IDLE the reset counts as activity; otherwise the key keeps its expiry.
            let expiry = Expiry::Own(own_expiry(Some(s.idle_ms), now, now));
            key.write(
                Some(value),
                New::State(&mut State::reset(s)),
                expiry,
                &Effect::default(),
            )?;
        }
    }
    if forgotten > 0 {
        RESETS.incr();
    }
    reply::count(call.ctx(), forgotten);
    Ok(())
}
