//! `RL.APPLY key state [POLICY limit window_ms burst idle_ms flags]` (see `effect.rs`):
//! the internal command that carries a key's resulting state to replicas and the AOF.
//!
//! `RL.ALLOW` and `RL.CONFIG` replicate this instead of themselves, because their answers
//! depend on the clock: a replica or an AOF replay running them again at another instant
//! would compute another state. `RL.APPLY` holds absolute values only, so replaying it
//! anywhere, any number of times, yields the same key. It is not a back door: it runs only
//! from the master link or while loading the AOF, and its state is validated like an RDB load.

use std::ffi::c_int;

use crate::effect::parse_apply;
use crate::error::Error;
use crate::ffi::{api, from_master_or_loading, run_command, Args, Ctx, Key, Slot, Str};
use crate::reply;
use crate::value::Bucket;

pub extern "C" fn rl_apply(ctx: Ctx, argv: *mut Str, argc: c_int) -> c_int {
    if argc < 3 {
        return reply::wrong_arity(ctx);
    }
    run_command(ctx, || {
        if !from_master_or_loading(ctx) {
            return Err(Error::ApplyNotAllowed);
        }
        // SAFETY: Redis passes argc valid arguments.
        let args = unsafe { Args::new(argv, argc, 2) }.ok_or(Error::ApplyInvalid)?;
        let state = parse_apply(args.as_slice())?;
        // SAFETY: argc >= 3.
        let key = Key::open_write(ctx, unsafe { *argv.add(1) });
        match (key.slot()?, state.stored) {
            (Slot::Empty, None) => key.set(Bucket::new_usage(state.tat))?,
            (Slot::Empty, Some(s)) => key.set(Bucket::new_configured(state.tat, s))?,
            (Slot::Bucket(b), None) => key.store_tat(Some(b), state.tat)?,
            (Slot::Bucket(mut b), Some(s)) => {
                if b.set_stored(s) {
                    key.store_tat(Some(b), state.tat)?;
                } else {
                    key.replace(Bucket::new_configured(state.tat, s))?;
                }
            }
        }
        key.set_expiry(state.expire_at_ms);
        key.signal_modified();
        // A replica with an AOF persists the same absolute state (its own replicas get the
        // master stream as it is).
        api!(RedisModule_ReplicateVerbatim(ctx));
        reply::ok(ctx);
        Ok(())
    })
}
