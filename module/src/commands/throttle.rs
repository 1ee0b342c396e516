//! `RL.THROTTLE` and `RL.PEEK`: a decision with the numbers a client needs for `Retry-After`
//! and `RateLimit` headers.
//!
//! Reply, in RESP2 an array and in RESP3 a map with these names:
//! `allowed` (1/0), `limit` (the burst capacity), `remaining` (cost-1 requests that would
//! pass now), `retry_after_ms` (-1 when allowed, or when the request is heavier than the
//! burst and can never pass), `reset_after_ms` (until the bucket is empty again).
//! `RL.THROTTLE` decides and consumes exactly like `RL.ALLOW`; `RL.PEEK` answers for a
//! hypothetical request and writes nothing, so it also runs on replicas.
//!
//! Under several limits the numbers are the binding limit's (`limit`, `reset_after_ms`),
//! with the smallest `remaining` and the largest `retry_after_ms` of all, and a sixth field,
//! `binding`: the 0-based index of the limit that bound, in the order the limits were given.

use super::check::{check, Checked};
use crate::entry::Call;
use crate::ffi::{is_resp3, Ctx};
use crate::reply;
use rl_core::error::Error;

pub fn throttle(call: &Call) -> Result<(), Error> {
    reply_verdict(call.ctx(), &check(call, true)?);
    Ok(())
}

pub fn peek(call: &Call) -> Result<(), Error> {
    reply_verdict(call.ctx(), &check(call, false)?);
    Ok(())
}

fn reply_verdict(ctx: Ctx, checked: &Checked) {
    let v = checked.numbers();
    let retry = v
        .retry_after_ms
        .map_or(-1, |ms| i64::try_from(ms).unwrap_or(i64::MAX));
    let binding = v.binding.map(|b| i64::try_from(b).unwrap_or(0));
    let all = [
        (c"allowed", i64::from(checked.told.allowed)),
        (c"limit", i64::try_from(v.limit).unwrap_or(i64::MAX)),
        (c"remaining", i64::try_from(v.remaining).unwrap_or(i64::MAX)),
        (c"retry_after_ms", retry),
        (
            c"reset_after_ms",
            i64::try_from(v.reset_after_ms).unwrap_or(i64::MAX),
        ),
        (c"binding", binding.unwrap_or(0)),
    ];
    let fields = &all[..if binding.is_some() { 6 } else { 5 }];
    if is_resp3(ctx) {
        reply::map(ctx, fields.len());
        for &(name, value) in fields {
            reply::name(ctx, name);
            reply::integer(ctx, value);
        }
    } else {
        reply::array(ctx, fields.len());
        for &(_, value) in fields {
            reply::integer(ctx, value);
        }
    }
}
