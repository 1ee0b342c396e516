//! `RL.APPLY key state [POLICY limit window_ms burst idle_ms flags]` (see `effect.rs`):
//! the internal command that carries a key's resulting state to replicas and the AOF.
//!
//! `RL.ALLOW` and `RL.CONFIG` replicate this instead of themselves, because their answers
//! depend on the clock: a replica or an AOF replay running them again at another instant
//! would compute another state. `RL.APPLY` holds absolute values only, so replaying it
//! anywhere, any number of times, yields the same key. It is not a back door: it runs only
//! from the master link or while loading the AOF, and its state is validated like an RDB load.
//! A replica with an AOF persists the same state, through the same write as the master.

use crate::entry::Call;
use crate::ffi::from_master_or_loading;
use crate::key::{Expiry, Key, Write};
use crate::reply;
use rl_core::effect::parse_apply;
use rl_core::error::Error;
use rl_core::limits::Usage;
use rl_core::state::{is_set_form, parse_apply_set, SetState};

pub fn apply(call: &Call) -> Result<(), Error> {
    if !from_master_or_loading(call.ctx()) {
        return Err(Error::ApplyNotAllowed);
    }
    let args = call.args().map_err(|_| Error::ApplyInvalid)?;
    if is_set_form(args) {
        return apply_set(call, args);
    }
    let state = parse_apply(args)?;
    let key = Key::open_write(call.ctx(), call.key());
    let value = key.value()?;
    key.write(
        value,
        Write {
            tat: state.tat,
            set_policy: state.stored,
            expiry: Expiry::Exactly(state.expire_at_ms),
        },
    )?;
    reply::ok(call.ctx());
    Ok(())
}

/// The set form (`state.rs`): the whole state of a key with several limits or a SLIDING one.
/// Without `LIMITS` the key keeps the limits it has, which the usages must match.
fn apply_set(call: &Call, args: &[&[u8]]) -> Result<(), Error> {
    let applied = parse_apply_set(args).ok_or(Error::ApplyInvalid)?;
    let key = Key::open_write(call.ctx(), call.key());
    let value = key.value()?;
    let set_policy = applied.stored.is_some();
    let current = value.as_ref().map(|v| v.state());
    let stored = match applied.stored {
        Some(s) => Some(s),
        None => current.as_ref().and_then(|c| c.stored),
    };
    // A request to record goes into the log this key holds at that position.
    let mut usage = applied.usage;
    for (i, record) in applied.records.iter().enumerate() {
        let Some(record) = record else { continue };
        let Some(Usage::Sliding(log)) = current.as_ref().and_then(|c| c.usage.get(i)) else {
            return Err(Error::ApplyInvalid);
        };
        let mut log = log.clone();
        if !record.apply(&mut log) {
            return Err(Error::ApplyInvalid);
        }
        // parse_apply_set gives one usage per record; refused rather than trusted.
        let Some(slot) = usage.get_mut(i) else {
            return Err(Error::ApplyInvalid);
        };
        *slot = Usage::Sliding(log);
    }
    let state = SetState::new(usage, stored).ok_or(Error::ApplyInvalid)?;
    // Chained replicas and this replica's AOF hold the same logs: the same records.
    let expiry = Expiry::Exactly(applied.expire_at_ms);
    key.write_state(value, state, set_policy, expiry, &applied.records)?;
    reply::ok(call.ctx());
    Ok(())
}
