//! `RL.THROTTLE` and `RL.PEEK`: a decision with the numbers a client needs for `Retry-After`
//! and `RateLimit` headers.
//!
//! Reply, in RESP2 an array and in RESP3 a map with these names: `allowed` (1/0), `limit`
//! (the binding limit's capacity), `remaining` (cost-1 requests that would pass now, the
//! fewest of any limit), `retry_after_ms` (-1 when allowed, or when the request is heavier
//! than some limit's capacity and can never pass), `reset_after_ms` (until every limit is
//! empty again), and, under several limits, `binding` (the 0-based index of the limit that
//! bound). With `WITHPOLICY`, always eight fields: those six (`binding` 0 for one limit),
//! `source` (`stored`, `inline` or `default`) and `limits`, one `[kind, limit, window_ms,
//! burst]` per limit as enforced (after `rl.scale-percent`); in RESP3 `limits` is a list of
//! maps with those names.
//!
//! `RL.THROTTLE` decides and consumes exactly like `RL.ALLOW`; `RL.PEEK` answers what
//! `RL.THROTTLE` would answer at that instant (on a key with a CONCURRENCY limit, what
//! `RL.ACQUIRE` would), and writes nothing, so it also runs on replicas.
//!
//! `RL.RESERVE key estimate [HOLD ms] [inline policy]` and `RL.ACQUIRE key [COST n] [inline
//! policy]` decide and count like `RL.THROTTLE` and always reply seven fields: the six above
//! (`binding` 0 for one limit) and the id of the hold (`reservation`) or lease (`lease`) they
//! took, nil when denied (and for an acquire whose policy has no CONCURRENCY limit).

use super::check::{check, Reply, Which};
use crate::entry::Call;
use crate::ffi::{is_resp3, Ctx};
use crate::reply;
use rl_core::error::Error;
use rl_core::resolve::Told;

pub fn throttle(call: &Call) -> Result<(), Error> {
    tell(call, Which::Throttle)
}

pub fn peek(call: &Call) -> Result<(), Error> {
    tell(call, Which::Peek)
}

pub fn reserve(call: &Call) -> Result<(), Error> {
    tell(call, Which::Reserve)
}

pub fn acquire(call: &Call) -> Result<(), Error> {
    tell(call, Which::Acquire)
}

fn tell(call: &Call, which: Which) -> Result<(), Error> {
    let mut checked = None;
    let told = check(call, which, &mut checked)?;
    let Some(checked) = checked else {
        return Err(Error::Internal("no numbers for a check"));
    };
    match which {
        Which::Reserve => reply_grant(call.ctx(), told, &checked, c"reservation"),
        Which::Acquire => reply_grant(call.ctx(), told, &checked, c"lease"),
        _ => reply_verdict(call.ctx(), told, &checked),
    }
    Ok(())
}

/// The six numbers of a decision, by name.
fn fields(told: Told, checked: &Reply) -> [(&'static std::ffi::CStr, i64); 6] {
    let v = checked.numbers;
    let retry = v
        .retry_after_ms
        .map_or(-1, |ms| i64::try_from(ms).unwrap_or(i64::MAX));
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    [
        (c"allowed", i64::from(told.allowed)),
        (c"limit", count(v.limit)),
        (c"remaining", count(v.remaining)),
        (c"retry_after_ms", retry),
        (c"reset_after_ms", count(v.reset_after_ms)),
        (c"binding", count(v.binding as u64)),
    ]
}

/// `RL.RESERVE`'s and `RL.ACQUIRE`'s seven fields, the last the id `name`d.
fn reply_grant(ctx: Ctx, told: Told, checked: &Reply, name: &'static std::ffi::CStr) {
    let resp3 = is_resp3(ctx);
    if resp3 {
        reply::map(ctx, 7);
    } else {
        reply::array(ctx, 7);
    }
    for (field, value) in fields(told, checked) {
        if resp3 {
            reply::name(ctx, field);
        }
        reply::integer(ctx, value);
    }
    if resp3 {
        reply::name(ctx, name);
    }
    match checked.id {
        Some(id) => reply::count(ctx, id),
        None => reply::null(ctx),
    }
}

fn reply_verdict(ctx: Ctx, told: Told, checked: &Reply) {
    let several = checked.resolved.policy.len() > 1;
    let all = fields(told, checked);
    let numbers = &all[..if several || checked.with_policy { 6 } else { 5 }];
    let resp3 = is_resp3(ctx);
    let len = numbers.len() + if checked.with_policy { 2 } else { 0 };
    if resp3 {
        reply::map(ctx, len);
    } else {
        reply::array(ctx, len);
    }
    for &(name, value) in numbers {
        if resp3 {
            reply::name(ctx, name);
        }
        reply::integer(ctx, value);
    }
    if checked.with_policy {
        if resp3 {
            reply::name(ctx, c"source");
        }
        reply::bulk(ctx, checked.resolved.source.name().as_bytes());
        if resp3 {
            reply::name(ctx, c"limits");
        }
        reply::limits(ctx, &checked.resolved.policy, resp3);
    }
}
