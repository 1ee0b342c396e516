//! `RL.APPLY key state [POLICY limit window_ms burst idle_ms flags]` (see `effect.rs`):
//! the internal command that carries a key's resulting state to replicas and the AOF.
//!
//! `RL.ALLOW` and `RL.CONFIG` replicate this instead of themselves, because their answers
//! depend on the clock: a replica or an AOF replay running them again at another instant
//! would compute another state. `RL.APPLY` holds absolute values only, so replaying it
//! anywhere, any number of times, yields the same key. It is not a back door: it runs only
//! from the master link or while loading the AOF, and its state is validated like an RDB load.
//! A replica with an AOF persists the same state, through the same write as the master.

use crate::effect::parse_apply;
use crate::entry::Call;
use crate::error::Error;
use crate::ffi::from_master_or_loading;
use crate::key::{Expiry, Key, Write};
use crate::reply;

pub fn apply(call: &Call) -> Result<(), Error> {
    if !from_master_or_loading(call.ctx()) {
        return Err(Error::ApplyNotAllowed);
    }
    let args = call.args().map_err(|_| Error::ApplyInvalid)?;
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
