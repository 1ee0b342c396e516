//! `RL.RESET key`: forgets a client's usage and keeps its stored policy.
//!
//! Replies how much usage was forgotten, in ms of backlog (the time the bucket needed to be
//! empty again; 0 when there was none). A usage-only key is deleted, always; a configured key
//! gets an empty bucket and keeps its expiry, except that with IDLE it then expires `idle_ms`
//! from now (also when there was no backlog). Replicated as its effect (`DEL`, or `RL.APPLY`
//! with the empty state).

use crate::entry::Call;
use crate::ffi::now_ms;
use crate::key::{Expiry, Key, Write};
use crate::metrics::RESETS;
use crate::reply;
use rl_core::error::Error;
use rl_core::gcra::Tat;
use rl_core::limits::{self, Usage};
use rl_core::policy::{own_expiry, own_expiry_idle};
use rl_core::state::SetState;

pub fn reset(call: &Call) -> Result<(), Error> {
    let now = now_ms();
    let key = Key::open_write(call.ctx(), call.key());
    let Some(value) = key.value()? else {
        reply::integer(call.ctx(), 0);
        return Ok(());
    };
    if value.is_set() {
        return reset_set(call, key, now);
    }
    let forgotten = value.tat().empty_at_ms().saturating_sub(now);
    match value.stored() {
        // A usage-only key holds nothing but usage: gone, whatever its TTL (a user may have
        // PERSISTed it, or its bucket may empty in this very millisecond).
        None => key.delete(),
        Some(s) => {
            // With IDLE the reset counts as activity (the key then expires idle_ms from
            // now, even when there was no backlog); otherwise the key keeps whatever expiry
            // it has (none, or a user's PEXPIRE).
            let expiry = Expiry::Own(own_expiry(Some(s), Tat::EMPTY.empty_at_ms(), now));
            let w = Write {
                tat: Tat::EMPTY,
                set_policy: None,
                expiry,
            };
            key.write(Some(value), w)?;
        }
    }
    if forgotten > 0 {
        RESETS.incr();
    }
    reply::count(call.ctx(), forgotten);
    Ok(())
}

/// `RL.RESET` on a key with several limits or a SLIDING one, by the same rules: the backlog
/// forgotten is until every limit would have been empty (for a usage-only key, its own
/// expiry, which is that instant).
fn reset_set(call: &Call, key: Key, now: u64) -> Result<(), Error> {
    let Some(value) = key.value()? else {
        reply::integer(call.ctx(), 0);
        return Ok(());
    };
    let state = value.state();
    let forgotten = match &state.stored {
        None => key.expiry().map_or(0, |at| at.saturating_sub(now)),
        Some(s) => limits::empty_at_ms(&s.limits, &state.usage, now).saturating_sub(now),
    };
    match state.stored {
        None => key.delete(),
        Some(s) => {
            let usage = s.limits.as_slice().iter().map(Usage::empty_for).collect();
            let expiry = Expiry::Own(own_expiry_idle(Some(s.idle_ms), now, now));
            let empty = SetState::new(usage, Some(s))
                .ok_or(Error::Internal("empty usages do not match their limits"))?;
            key.write_state(Some(value), empty, false, expiry, &[])?;
        }
    }
    if forgotten > 0 {
        RESETS.incr();
    }
    reply::count(call.ctx(), forgotten);
    Ok(())
}
