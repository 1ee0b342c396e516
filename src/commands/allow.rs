//! `RL.ALLOW key [COST n] [LIMIT limit WINDOW window_ms [BURST burst]]`: one call per request.
//!
//! Replies 1 (allowed) or 0 (denied), a boolean in RESP3. The hot path: parse without
//! allocating, read the clock once, open the key once, decide, update the value in place,
//! and replicate the resulting state (never the command, whose answer depends on the clock).
//! A denied request writes, expires and replicates nothing.

use std::ffi::c_int;

use crate::args::parse_allow;
use crate::bucket::{decide, Decision, Tat};
use crate::defaults::default_policy;
use crate::error::Error;
use crate::ffi::{now_ms, reply_bool, run_command, wrong_arity, Args, Ctx, Key, Slot, Str};
use crate::value::Bucket;

pub extern "C" fn rl_allow(ctx: Ctx, argv: *mut Str, argc: c_int) -> c_int {
    if argc < 2 {
        return wrong_arity(ctx);
    }
    run_command(ctx, || {
        // SAFETY: Redis passes argc valid arguments.
        let args = unsafe { Args::new(argv, argc, 2) }.ok_or(Error::TooManyArguments)?;
        let request = parse_allow(args.as_slice())?;
        let now = now_ms();
        // SAFETY: argc >= 2.
        let key = Key::open_write(ctx, unsafe { *argv.add(1) });
        let (bucket, tat, stored) = match key.slot()? {
            Slot::Empty => (None, Tat::EMPTY, None),
            Slot::Bucket(b) => {
                let (tat, stored) = (b.tat(), b.stored());
                (Some(b), tat, stored)
            }
        };
        let policy = match (request.inline, stored) {
            (Some(p), _) => p,
            (None, Some(s)) => s.policy,
            (None, None) => default_policy()?.ok_or(Error::NoPolicy)?,
        };
        let Decision::Allowed(new_tat) = decide(&policy, tat, now, request.cost) else {
            reply_bool(ctx, false);
            return Ok(());
        };
        match bucket {
            Some(mut b) => b.set_tat(new_tat),
            None => key.set(Bucket::new_usage(new_tat))?,
        }
        // A usage-only key lives until its bucket is empty; a configured one only with IDLE.
        let expire_at = match stored {
            None => Some(new_tat.empty_at_ms()),
            Some(s) if s.idle_ms > 0 => {
                Some(new_tat.empty_at_ms().max(now.saturating_add(s.idle_ms)))
            }
            Some(_) => None,
        };
        if expire_at.is_some() {
            key.set_expiry(expire_at);
        }
        key.signal_modified();
        key.replicate(new_tat, expire_at.unwrap_or(0), None);
        reply_bool(ctx, true);
        Ok(())
    })
}
