//! `RL.INFO key`: a key's policy, where it comes from, and its live state. Read-only.
//!
//! Reply: nil for an absent key; otherwise a map (RESP2: a flat array of names and values):
//! `source` (`stored`: set by RL.CONFIG; `default`: a usage-only key, read under the module
//! default; `none`: a usage-only key and no default), `limit`, `window_ms`, `burst`,
//! `idle_ms`, `shadow` (nil for `none`), `scale_percent`, and, under the scaled policy,
//! `remaining` and `reset_after_ms` (nil for `none`, except `reset_after_ms`, which is the
//! key's own). The policy is picked by the same rule as a check without an inline policy.

use crate::defaults::{default_policy, scale_percent};
use crate::entry::Call;
use crate::error::Error;
use crate::ffi::now_ms;
use crate::key::Key;
use crate::reply;
use crate::resolve::{resolve, Source};
use crate::verdict::remaining;

pub fn info(call: &Call) -> Result<(), Error> {
    let ctx = call.ctx();
    let now = now_ms();
    let key = Key::open_read(ctx, call.key());
    let Some(value) = key.value()? else {
        reply::null(ctx);
        return Ok(());
    };
    let (tat, stored) = (value.tat(), value.stored());
    let scale = scale_percent();
    let resolved = match resolve(None, stored, default_policy(), scale) {
        Ok(r) => Some(r),
        Err(Error::NoPolicy) => None,
        Err(e) => return Err(e),
    };
    // The policy as configured (unscaled): the stored one, or the default.
    let policy = match resolved.map(|r| r.source) {
        Some(Source::Stored) => stored.map(|s| s.policy),
        Some(_) => default_policy()?,
        None => None,
    };
    reply::map(ctx, 9);
    reply::name(ctx, c"source");
    reply::bulk(ctx, resolved.map_or("none", |r| r.source.name()).as_bytes());
    let optional = |name, value: Option<u64>| {
        reply::name(ctx, name);
        match value {
            Some(v) => reply::count(ctx, v),
            None => reply::null(ctx),
        }
    };
    optional(c"limit", policy.map(|p| p.limit()));
    optional(c"window_ms", policy.map(|p| p.window_ms()));
    optional(c"burst", policy.map(|p| p.burst()));
    // A usage-only key under the default policy: no idle time of its own, never a shadow.
    optional(c"idle_ms", policy.map(|_| stored.map_or(0, |s| s.idle_ms)));
    optional(c"shadow", resolved.map(|r| u64::from(r.shadow)));
    optional(c"scale_percent", Some(scale));
    optional(
        c"remaining",
        resolved.map(|r| remaining(&r.policy, tat, now)),
    );
    optional(
        c"reset_after_ms",
        Some(tat.empty_at_ms().saturating_sub(now)),
    );
    Ok(())
}
