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
use crate::ffi::{api, from_master_or_loading, run_command, Args, Ctx, Key, Str};
use crate::reply;

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
        key.store(key.bucket()?, state.tat, state.stored)?;
        key.set_expiry(state.expire_at_ms);
        key.signal_modified();
        // A replica with an AOF persists the same absolute state (its own replicas get the
        // master stream as it is).
        api!(RedisModule_ReplicateVerbatim(ctx));
        reply::ok(ctx);
        Ok(())
    })
}
