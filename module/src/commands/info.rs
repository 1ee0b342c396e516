//! `RL.INFO key`: a key's policy, where it comes from, and its live state. Read-only.
//!
//! Reply: nil for an absent key; otherwise a map (RESP2: a flat array of names and values):
//! `source` (`stored`: set by RL.CONFIG; `default`: a usage-only key, read under the module
//! default; `none`: a usage-only key and no default), `limit`, `window_ms`, `burst`,
//! `idle_ms`, `shadow` (nil for `none`), `scale_percent`, `remaining` (under the scaled
//! policy; nil for `none`) and `reset_after_ms`: the time until every limit is empty (a
//! usage-only key: until its usage as recorded is, which is its PTTL, also after `PERSIST`).
//! `RL.RESET` replies this `reset_after_ms`.
//!
//! A key with several limits, a SLIDING one or a pending reconfiguration has two more fields:
//! `kind` and `limits`. A configured key lists its stored limits (`kind limit window_ms burst
//! remaining reset_after_ms`, `remaining` and `reset_after_ms` under the scaled limits); the
//! top level shows the first limit, the fewest `remaining` and the largest `reset_after_ms`.
//! A usage-only key lists its usages as recorded: `kind`, `window_ms` (a SLIDING log's) and
//! `reset_after_ms` (when it empties), the rest nil.

use crate::defaults::{default_policy, scale_percent};
use crate::entry::Call;
use crate::ffi::{now_ms, Ctx};
use crate::key::Key;
use crate::reply;
use rl_core::error::Error;
use rl_core::kinds::{Limit, Usage};
use rl_core::policy::Policy;
use rl_core::resolve::Source;
use rl_core::state::{status, StateRef, Status};

pub fn info(call: &Call) -> Result<(), Error> {
    let ctx = call.ctx();
    let now = now_ms();
    let key = Key::open_read(ctx, call.key());
    let Some(value) = key.value()? else {
        reply::null(ctx);
        return Ok(());
    };
    let read = value.read();
    let state = read.state();
    let (configured, source) = policy_of(state)?;
    let scale = scale_percent();
    let status = status(
        state,
        configured.map(|p| p.scaled(scale)).as_ref(),
        now,
        key.expiry(),
    );
    let compact = !value.is_general();
    let first = configured.and_then(|p| p.limits().first().copied());
    reply::map(ctx, if compact { 9 } else { 11 });
    reply::name(ctx, c"source");
    reply::bulk(ctx, source.map_or("none", Source::name).as_bytes());
    let optional = |name, value| reply::field(ctx, name, value);
    optional(c"limit", first.map(|l| l.limit()));
    optional(c"window_ms", first.map(|l| l.window_ms()));
    optional(c"burst", first.map(|l| l.capacity()));
    let stored = state.stored;
    optional(c"idle_ms", first.map(|_| stored.map_or(0, |s| s.idle_ms)));
    optional(
        c"shadow",
        first.map(|_| u64::from(stored.is_some_and(|s| s.shadow))),
    );
    optional(c"scale_percent", Some(scale));
    optional(c"remaining", status.numbers.map(|n| n.remaining));
    optional(c"reset_after_ms", Some(status.reset_after_ms));
    if compact {
        return Ok(());
    }
    reply::name(ctx, c"kind");
    let kind = match (stored, first) {
        (Some(_), Some(l)) => Some(l.kind()),
        _ => state.usages.first().map(Usage::kind),
    };
    match kind {
        Some(k) => reply::bulk(ctx, k.label().as_bytes()),
        None => reply::null(ctx),
    }
    reply::name(ctx, c"limits");
    match (stored, status.numbers) {
        (Some(s), Some(n)) => {
            reply::array(ctx, s.policy.len());
            for (l, each) in s.policy.limits().iter().zip(n.each) {
                limit_map(ctx, l, Some((each.remaining, each.reset_after_ms)));
            }
        }
        _ => {
            reply::array(ctx, state.usages.len());
            for u in state.usages {
                usage_map(ctx, u, now, key.expiry());
            }
        }
    }
    Ok(())
}

/// The policy `RL.INFO` reads a key under (as configured, unscaled) and where it comes from:
/// the stored one, else the module default, else none.
fn policy_of(state: StateRef<'_>) -> Result<(Option<Policy>, Option<Source>), Error> {
    if let Some(s) = state.stored {
        return Ok((Some(s.policy), Some(Source::Stored)));
    }
    Ok(match default_policy()? {
        Some(p) => (Some(p), Some(Source::Default)),
        None => (None, None),
    })
}

/// The status `RL.INFO` shows (and `RL.RESET` replies) for a key's state at `now`.
pub fn status_of(state: StateRef<'_>, key: &Key, now: u64) -> Result<Status, Error> {
    let (policy, _) = policy_of(state)?;
    let policy = policy.map(|p| p.scaled(scale_percent()));
    Ok(status(state, policy.as_ref(), now, key.expiry()))
}

fn limit_map(ctx: Ctx, l: &Limit, numbers: Option<(u64, u64)>) {
    reply::map(ctx, 6);
    reply::name(ctx, c"kind");
    reply::bulk(ctx, l.kind().label().as_bytes());
    for (name, v) in [
        (c"limit", Some(l.limit())),
        (c"window_ms", Some(l.window_ms())),
        (c"burst", Some(l.capacity())),
        (c"remaining", numbers.map(|n| n.0)),
        (c"reset_after_ms", numbers.map(|n| n.1)),
    ] {
        reply::field(ctx, name, v);
    }
}

/// A usage-only key's usage, as recorded.
fn usage_map(ctx: Ctx, u: &Usage, now: u64, expire_at: Option<u64>) {
    reply::map(ctx, 6);
    reply::name(ctx, c"kind");
    reply::bulk(ctx, u.kind().label().as_bytes());
    let window = u.window_ms();
    let empty_at = u.own_empty_at_ms(now).or(expire_at).unwrap_or(now);
    for (name, v) in [
        (c"limit", None),
        (c"window_ms", window),
        (c"burst", None),
        (c"remaining", None),
        (c"reset_after_ms", Some(empty_at.saturating_sub(now))),
    ] {
        reply::field(ctx, name, v);
    }
}
