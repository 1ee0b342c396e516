//! `RL.RESET key`: forgets a client's usage and keeps its stored policy.
//!
//! Replies how much usage was forgotten, in ms of backlog (the time the bucket needed to be
//! empty again; 0 when there was none). A usage-only key is deleted; a configured key gets an
//! empty bucket and keeps its expiry, except that with IDLE it then expires `idle_ms` from now. Replicated as its effect
//! (`DEL`, or `RL.APPLY` with the empty state).

use std::ffi::c_int;

use crate::ffi::{now_ms, run_command, Ctx, Key, Str};
use crate::gcra::Tat;
use crate::metrics::RESETS;
use crate::policy::own_expiry;
use crate::reply;

pub extern "C" fn rl_reset(ctx: Ctx, argv: *mut Str, argc: c_int) -> c_int {
    if argc != 2 {
        return reply::wrong_arity(ctx);
    }
    run_command(ctx, || {
        let now = now_ms();
        // SAFETY: argc == 2.
        let key = Key::open_write(ctx, unsafe { *argv.add(1) });
        let Some(b) = key.bucket()? else {
            reply::integer(ctx, 0);
            return Ok(());
        };
        let forgotten = b.tat().empty_at_ms().saturating_sub(now);
        if forgotten == 0 {
            reply::integer(ctx, 0);
            return Ok(());
        }
        match b.stored() {
            None => key.delete_replicated(),
            Some(s) => {
                key.store(Some(b), Tat::EMPTY, None)?;
                // With IDLE the reset counts as activity; otherwise the key keeps whatever
                // expiry it has (none, or a user's PEXPIRE).
                let expire_at =
                    key.settle_expiry(own_expiry(Some(s), Tat::EMPTY.empty_at_ms(), now));
                key.replicate(Tat::EMPTY, expire_at, None);
            }
        }
        key.signal_modified();
        RESETS.incr();
        reply::count(ctx, forgotten);
        Ok(())
    })
}
