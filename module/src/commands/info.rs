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
//! `reset_after_ms` (when it empties), the rest nil. A CONCURRENCY limit's map has two more
//! fields: `held` (the cost of its live leases) and `next_expiry_ms` (until the first of them
//! expires; nil if none).
//!
//! Every key then has the fields of issues 19 and 20, last: `blocked_ms` (until the block
//! ends; 0 if not blocked), `penalty_level`, `penalty_ms` and `penalty_max_ms` (the stored
//! PENALTY; nil without), `holds` (open holds), `held` (the sum of their estimates),
//! `next_hold_expiry_ms` (until the first open hold expires; nil if none) and `leases` (live
//! leases, each counted once however many CONCURRENCY limits hold it).

use crate::defaults::{default_policy, scale_percent};
use crate::entry::Call;
use crate::ffi::{now_ms, Ctx};
use crate::key::Key;
use crate::reply;
use rl_core::error::Error;
use rl_core::kinds::{Limit, Usage};
use rl_core::policy::Policy;
use rl_core::resolve::Source;
use rl_core::state::{status, view, StateRef, Status};

/// The fields every key has after its policy and usage (issues 19 and 20).
const KEY_LEVEL_FIELDS: usize = 8;

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
    reply::map(ctx, KEY_LEVEL_FIELDS + if compact { 9 } else { 11 });
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
    if !compact {
        usage_fields(ctx, state, configured, &status, now, key.expiry());
    }
    key_level_fields(ctx, state, now);
    Ok(())
}

/// `kind` and `limits`.
fn usage_fields(
    ctx: Ctx,
    state: StateRef<'_>,
    configured: Option<Policy>,
    status: &Status,
    now: u64,
    expiry: Option<u64>,
) {
    let stored = state.stored;
    let first = configured.and_then(|p| p.limits().first().copied());
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
            let seen = view(&s.policy, state.usages, state.pending_at_ms, now);
            for ((l, each), u) in s.policy.limits().iter().zip(n.each).zip(seen.as_slice()) {
                limit_map(ctx, l, u, Some((each.remaining, each.reset_after_ms)), now);
            }
        }
        _ => {
            reply::array(ctx, state.usages.len());
            for u in state.usages {
                usage_map(ctx, u, now, expiry);
            }
        }
    }
}

/// The fields of issues 19 and 20: the block, the penalty, holds and leases.
fn key_level_fields(ctx: Ctx, state: StateRef<'_>, now: u64) {
    let parts = state.parts;
    let blocked = parts
        .and_then(|p| p.blocked_until(now))
        .map_or(0, |until| until - now);
    let penalty = state.stored.and_then(|s| s.penalty());
    let open = || parts.into_iter().flat_map(move |p| p.open_holds(now));
    // The leases of the usages as the stored policy reads them: a reconfiguration to another
    // kind, pending until the key's next write, has already dropped its CONCURRENCY leases.
    let seen = state
        .stored
        .map(|s| view(&s.policy, state.usages, state.pending_at_ms, now));
    let usages = seen.as_ref().map_or(state.usages, |v| v.as_slice());
    let mut leases: Vec<u64> = usages
        .iter()
        .flat_map(|u| match u {
            Usage::Concurrency(l) => Some(l.live(now).map(|x| x.id)),
            _ => None,
        })
        .flatten()
        .collect();
    leases.sort_unstable();
    leases.dedup();
    for (name, v) in [
        (c"blocked_ms", Some(blocked)),
        (
            c"penalty_level",
            Some(
                parts
                    .and_then(|p| p.block)
                    .map_or(0, |b| u64::from(b.level)),
            ),
        ),
        (c"penalty_ms", penalty.map(|p| p.ms)),
        (c"penalty_max_ms", penalty.map(|p| p.max_ms)),
        (c"holds", Some(open().count() as u64)),
        (c"held", Some(open().map(|h| h.estimate).sum())),
        (
            c"next_hold_expiry_ms",
            open().map(|h| h.expires_at_ms - now).min(),
        ),
        (c"leases", Some(leases.len() as u64)),
    ] {
        reply::field(ctx, name, v);
    }
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

fn limit_map(ctx: Ctx, l: &Limit, u: &Usage, numbers: Option<(u64, u64)>, now: u64) {
    reply::map(ctx, 6 + lease_field_count(u));
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
    lease_fields(ctx, u, now);
}

/// How many fields [`lease_fields`] adds for a usage.
fn lease_field_count(u: &Usage) -> usize {
    if matches!(u, Usage::Concurrency(_)) {
        2
    } else {
        0
    }
}

/// A CONCURRENCY limit's `held` and `next_expiry_ms`.
fn lease_fields(ctx: Ctx, u: &Usage, now: u64) {
    if let Usage::Concurrency(l) = u {
        reply::field(ctx, c"held", Some(l.held(now)));
        reply::field(
            ctx,
            c"next_expiry_ms",
            l.next_expiry_ms(now).map(|at| at - now),
        );
    }
}

/// A usage-only key's usage, as recorded.
fn usage_map(ctx: Ctx, u: &Usage, now: u64, expire_at: Option<u64>) {
    reply::map(ctx, 6 + lease_field_count(u));
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
    lease_fields(ctx, u, now);
}
