//! `RL.ALLOW key [COST n] [LIMIT limit WINDOW window_ms [BURST burst]]`: one call per request.
//!
//! Replies 1 (allowed) or 0 (denied), a boolean in RESP3. The hot path: parse without
//! allocating, read the clock once, open the key once, decide, update the value in place,
//! and replicate the resulting state (never the command, whose answer depends on the clock).
//! A denied request writes, expires and replicates nothing.

use std::ffi::c_int;

use super::check::check;
use crate::ffi::{run_command, Ctx, Str};
use crate::reply;

pub extern "C" fn rl_allow(ctx: Ctx, argv: *mut Str, argc: c_int) -> c_int {
    if argc < 2 {
        return reply::wrong_arity(ctx);
    }
    run_command(ctx, || {
        let checked = check(ctx, argv, argc, true)?;
        reply::boolean(ctx, checked.allowed());
        Ok(())
    })
}
