//! `RL.INFO key`: a key's policy, where it comes from, and its live state. Read-only.
//!
//! Reply: nil for an absent key; otherwise a map (RESP2: a flat array of names and values):
//! `source` (`stored`: set by RL.CONFIG; `default`: a usage-only key, read under the module
//! default; `none`: a usage-only key and no default), `limit`, `window_ms`, `burst`,
//! `idle_ms`, `shadow` (nil for `none`), `scale_percent`, and, under the scaled policy,
//! `remaining` and `reset_after_ms` (nil for `none`, except `reset_after_ms`, which is the
//! key's own). The policy is picked by the same rule as a check without an inline policy.
//!
//! A key with several limits or a SLIDING one has two more fields: `kind` (`gcra` or
//! `sliding`, of the first limit, whose `limit`/`window_ms`/`burst` the top level shows) and
//! `limits`, one map per limit in order (`kind limit window_ms burst remaining
//! reset_after_ms`); the top-level `remaining` is then the smallest and `reset_after_ms` the
//! time until every limit is empty.

use crate::defaults::{default_policy, scale_percent};
use crate::entry::Call;
use crate::ffi::now_ms;
use crate::ffi::Ctx;
use crate::key::Key;
use crate::reply;
use rl_core::error::Error;
use rl_core::limits::{self, Limit};
use rl_core::resolve::{resolve, resolve_set, Source};
use rl_core::state::SetState;
use rl_core::verdict::remaining;

pub fn info(call: &Call) -> Result<(), Error> {
    let ctx = call.ctx();
    let now = now_ms();
    let key = Key::open_read(ctx, call.key());
    let Some(value) = key.value()? else {
        reply::null(ctx);
        return Ok(());
    };
    if value.is_set() {
        let state = value.state();
        return info_set(ctx, state, now);
    }
    let (tat, stored) = (value.tat(), value.stored());
    let scale = scale_percent();
    let resolved = match resolve(None, stored, default_policy, scale) {
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
    let optional = |name, value| reply::field(ctx, name, value);
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

fn info_set(ctx: Ctx, state: SetState, now: u64) -> Result<(), Error> {
    let scale = scale_percent();
    let resolved = match resolve_set(None, state.stored, default_policy, scale) {
        Ok(r) => Some(r),
        Err(Error::NoPolicy) => None,
        Err(e) => return Err(e),
    };
    // The limits as configured (unscaled) and, under the scaled ones, the live numbers.
    let configured = match resolved.map(|r| r.source) {
        Some(Source::Stored) => state.stored.map(|s| s.limits),
        Some(_) => default_policy()?.map(limits::Limits::single),
        None => None,
    };
    let status = resolved.map(|r| limits::status(&r.limits, &state.usage, now));
    let first = configured.and_then(|c| c.as_slice().first().copied());
    reply::map(ctx, 11);
    reply::name(ctx, c"source");
    reply::bulk(ctx, resolved.map_or("none", |r| r.source.name()).as_bytes());
    let optional = |name, value| reply::field(ctx, name, value);
    optional(c"limit", first.map(|l| limit_of(&l)));
    optional(c"window_ms", first.map(|l| window_of(&l)));
    optional(c"burst", first.map(|l| l.capacity()));
    optional(
        c"idle_ms",
        configured.map(|_| state.stored.map_or(0, |s| s.idle_ms)),
    );
    optional(c"shadow", resolved.map(|r| u64::from(r.shadow)));
    optional(c"scale_percent", Some(scale));
    optional(c"remaining", status.map(|s| s.remaining));
    // A usage-only set has no limits of its own to time it by: its key expires when it is empty.
    let empty_at = match &resolved {
        Some(r) => limits::empty_at_ms(&r.limits, &state.usage, now),
        None => now,
    };
    optional(c"reset_after_ms", Some(empty_at.saturating_sub(now)));
    reply::name(ctx, c"kind");
    match first {
        Some(l) => reply::bulk(ctx, kind_of(&l)),
        None => reply::null(ctx),
    }
    reply::name(ctx, c"limits");
    let (Some(c), Some(status)) = (configured, status) else {
        reply::null(ctx);
        return Ok(());
    };
    reply::array(ctx, c.len());
    for (i, l) in c.as_slice().iter().enumerate() {
        reply::map(ctx, 6);
        reply::name(ctx, c"kind");
        reply::bulk(ctx, kind_of(l));
        for (name, v) in [
            (c"limit", limit_of(l)),
            (c"window_ms", window_of(l)),
            (c"burst", l.capacity()),
            (c"remaining", status.each[i].remaining),
            (c"reset_after_ms", status.each[i].reset_after_ms),
        ] {
            reply::name(ctx, name);
            reply::count(ctx, v);
        }
    }
    Ok(())
}

fn kind_of(l: &Limit) -> &'static [u8] {
    match l {
        Limit::Gcra(_) => b"gcra",
        Limit::Sliding(_) => b"sliding",
    }
}

fn limit_of(l: &Limit) -> u64 {
    match l {
        Limit::Gcra(p) => p.limit(),
        Limit::Sliding(s) => s.limit(),
    }
}

fn window_of(l: &Limit) -> u64 {
    match l {
        Limit::Gcra(p) => p.window_ms(),
        Limit::Sliding(s) => s.window_ms(),
    }
}
