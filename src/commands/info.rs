//! `RL.INFO key`: a key's policy, where it comes from, and its live state. Read-only.
//!
//! Reply: nil for an absent key; otherwise a map (RESP2: a flat array of names and values):
//! `source` (`stored`: set by RL.CONFIG; `default`: a usage-only key, read under the module
//! default; `none`: a usage-only key and no default), `limit`, `window_ms`, `burst`,
//! `idle_ms`, `shadow` (nil for `none`), `scale_percent`, and, under the scaled policy,
//! `remaining` and `reset_after_ms` (nil for `none`, except `reset_after_ms`, which is the
//! key's own).

use std::ffi::c_int;

use crate::defaults::{default_policy, scale_percent};
use crate::ffi::{now_ms, run_command, Ctx, Key, Str};
use crate::gcra::Tat;
use crate::policy::{Policy, StoredPolicy};
use crate::reply;
use crate::verdict::remaining;

pub extern "C" fn rl_info(ctx: Ctx, argv: *mut Str, argc: c_int) -> c_int {
    if argc != 2 {
        return reply::wrong_arity(ctx);
    }
    run_command(ctx, || {
        let now = now_ms();
        // SAFETY: argc == 2.
        let key = Key::open_read(ctx, unsafe { *argv.add(1) });
        let Some(b) = key.bucket()? else {
            reply::null(ctx);
            return Ok(());
        };
        let (tat, stored) = (b.tat(), b.stored());
        let (source, policy) = match stored {
            Some(s) => (c"stored", Some(s)),
            None => match default_policy()? {
                Some(p) => (c"default", StoredPolicy::new(p, 0).ok()),
                None => (c"none", None),
            },
        };
        reply_info(ctx, source, policy, tat, now);
        Ok(())
    })
}

fn reply_info(
    ctx: Ctx,
    source: &'static std::ffi::CStr,
    stored: Option<StoredPolicy>,
    tat: Tat,
    now: u64,
) {
    let scale = scale_percent();
    reply::map(ctx, 9);
    reply::name(ctx, c"source");
    reply::name(ctx, source);
    let optional = |name, value: Option<u64>| {
        reply::name(ctx, name);
        match value {
            Some(v) => reply::count(ctx, v),
            None => reply::null(ctx),
        }
    };
    let policy = stored.map(|s| s.policy);
    optional(c"limit", policy.map(|p| p.limit()));
    optional(c"window_ms", policy.map(|p| p.window_ms()));
    optional(c"burst", policy.map(|p| p.burst()));
    optional(c"idle_ms", stored.map(|s| s.idle_ms));
    optional(c"shadow", stored.map(|s| u64::from(s.shadow)));
    optional(c"scale_percent", Some(scale));
    let remaining = policy.map(|p: Policy| remaining(&p.scaled(scale), tat, now));
    optional(c"remaining", remaining);
    optional(
        c"reset_after_ms",
        Some(tat.empty_at_ms().saturating_sub(now)),
    );
}
