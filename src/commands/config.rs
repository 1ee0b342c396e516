//! `RL.CONFIG key limit window_ms [BURST burst] [IDLE idle_ms] [SHADOW]`: stores a client's
//! policy. With SHADOW the policy only observes: see `StoredPolicy::shadow`.
//!
//! The key keeps whatever the client has used (its TAT): a new or changed policy never hands
//! out a fresh burst. A configured key does not expire unless `IDLE` is given; then it is
//! forgotten `idle_ms` after its last allowed request, and never before its bucket is empty.

use std::ffi::c_int;

use crate::args::parse_config;
use crate::error::Error;
use crate::ffi::{now_ms, run_command, Args, Ctx, Key, Str};
use crate::gcra::Tat;
use crate::metrics::CONFIGS;
use crate::policy::own_expiry;
use crate::reply;

pub extern "C" fn rl_config(ctx: Ctx, argv: *mut Str, argc: c_int) -> c_int {
    if argc < 4 {
        return reply::wrong_arity(ctx);
    }
    run_command(ctx, || {
        // SAFETY: Redis passes argc valid arguments.
        let args = unsafe { Args::new(argv, argc, 2) }.ok_or(Error::TooManyArguments)?;
        let stored = parse_config(args.as_slice())?;
        let now = now_ms();
        // SAFETY: argc >= 4.
        let key = Key::open_write(ctx, unsafe { *argv.add(1) });
        let bucket = key.bucket()?;
        let tat = bucket.as_ref().map_or(Tat::EMPTY, |b| b.tat());
        key.store(bucket, tat, Some(stored))?;
        // Configuration does not expire without IDLE: RL.CONFIG removes any expiry.
        let expire_at = own_expiry(Some(stored), tat.empty_at_ms(), now);
        key.set_expiry(expire_at);
        key.signal_modified();
        key.replicate(tat, expire_at, Some(stored));
        CONFIGS.incr();
        reply::ok(ctx);
        Ok(())
    })
}
