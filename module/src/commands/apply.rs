//! `RL.APPLY key ...` (`rl_core::apply`): the internal command that carries a key's resulting
//! state to replicas and the AOF.
//!
//! Every write replicates this instead of its command, because a check's answer depends on
//! the clock: a replica or an AOF replay running it again at another instant would compute
//! another state. `RL.APPLY` holds absolute values only, so replaying it anywhere, any number
//! of times in order, yields the same key. It is not a back door: it runs only from the master
//! link or while loading the AOF, and its state is validated like an RDB load. It writes
//! through the same `Key::write` as the master, so a replica with an AOF or its own replicas
//! get the same line.

use crate::entry::Call;
use crate::ffi::from_master_or_loading;
use crate::key::{Effect, Expiry, Key, New};
use crate::reply;
use rl_core::apply::{parse_apply, Sent};
use rl_core::error::Error;

pub fn apply(call: &Call) -> Result<(), Error> {
    if !from_master_or_loading(call.ctx()) {
        return Err(Error::ApplyNotAllowed);
    }
    let line = call.parse(parse_apply)?;
    let key = Key::open_write(call.ctx(), call.key());
    let value = key.value()?;
    let mut state = {
        let read = value.as_ref().map(|v| v.read());
        line.state(read.as_ref().map(|r| r.state()))
    }
    .ok_or(Error::ApplyInvalid)?;
    let mut effect = Effect {
        set_policy: line.stored.is_some(),
        ..Effect::default()
    };
    // Chained replicas and this replica's AOF hold the same logs: the same records.
    for (slot, sent) in effect.records.iter_mut().zip(&line.usages) {
        if let Sent::Record(r) = sent {
            *slot = Some(*r);
        }
    }
    key.write(
        value,
        New::State(&mut state),
        Expiry::Exactly(line.expire_at_ms),
        &effect,
    )?;
    reply::ok(call.ctx());
    Ok(())
}
