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
//! `RL.THROTTLE` would answer at that instant, and writes nothing, so it also runs on replicas.

use super::check::{check, Reply};
use crate::entry::Call;
use crate::ffi::{is_resp3, Ctx};
use crate::reply;
use rl_core::args::Command;
use rl_core::error::Error;
use rl_core::resolve::Told;

pub fn throttle(call: &Call) -> Result<(), Error> {
    tell(call, true)
}

pub fn peek(call: &Call) -> Result<(), Error> {
    tell(call, false)
}

fn tell(call: &Call, consume: bool) -> Result<(), Error> {
    let mut checked = None;
    let told = check(call, Command::Throttle, consume, &mut checked)?;
    let Some(checked) = checked else {
        return Err(Error::Internal("no numbers for RL.THROTTLE"));
    };
    reply_verdict(call.ctx(), told, &checked);
    Ok(())
}

fn reply_verdict(ctx: Ctx, told: Told, checked: &Reply) {
    let v = checked.numbers;
    let several = checked.resolved.policy.len() > 1;
    let retry = v
        .retry_after_ms
        .map_or(-1, |ms| i64::try_from(ms).unwrap_or(i64::MAX));
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let all = [
        (c"allowed", i64::from(told.allowed)),
        (c"limit", count(v.limit)),
        (c"remaining", count(v.remaining)),
        (c"retry_after_ms", retry),
        (c"reset_after_ms", count(v.reset_after_ms)),
        (c"binding", count(v.binding as u64)),
    ];
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
