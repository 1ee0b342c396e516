//! `RL.THROTTLE` and `RL.PEEK`: a decision with the numbers a client needs for `Retry-After`
//! and `RateLimit` headers.
//!
//! Reply, in RESP2 an array and in RESP3 a map with these names:
//! `allowed` (1/0), `limit` (the burst capacity), `remaining` (cost-1 requests that would
//! pass now), `retry_after_ms` (-1 when allowed, or when the request is heavier than the
//! burst and can never pass), `reset_after_ms` (until the bucket is empty again).
//! `RL.THROTTLE` decides and consumes exactly like `RL.ALLOW`; `RL.PEEK` answers for a
//! hypothetical request and writes nothing, so it also runs on replicas.

use std::ffi::c_int;

use super::check::{check, Checked};
use crate::ffi::{is_resp3, run_command, Ctx, Str};
use crate::reply;

pub extern "C" fn rl_throttle(ctx: Ctx, argv: *mut Str, argc: c_int) -> c_int {
    run(ctx, argv, argc, true)
}

pub extern "C" fn rl_peek(ctx: Ctx, argv: *mut Str, argc: c_int) -> c_int {
    run(ctx, argv, argc, false)
}

fn run(ctx: Ctx, argv: *mut Str, argc: c_int, consume: bool) -> c_int {
    if argc < 2 {
        return reply::wrong_arity(ctx);
    }
    run_command(ctx, || {
        let checked = check(ctx, argv, argc, consume)?;
        reply_verdict(ctx, &checked);
        Ok(())
    })
}

fn reply_verdict(ctx: Ctx, checked: &Checked) {
    let v = checked.verdict();
    let retry = v
        .retry_after_ms
        .map_or(-1, |ms| i64::try_from(ms).unwrap_or(i64::MAX));
    let fields = [
        (c"allowed", i64::from(checked.allowed())),
        (c"limit", i64::try_from(v.limit).unwrap_or(i64::MAX)),
        (c"remaining", i64::try_from(v.remaining).unwrap_or(i64::MAX)),
        (c"retry_after_ms", retry),
        (
            c"reset_after_ms",
            i64::try_from(v.reset_after_ms).unwrap_or(i64::MAX),
        ),
    ];
    if is_resp3(ctx) {
        reply::map(ctx, fields.len());
        for (name, value) in fields {
            reply::name(ctx, name);
            reply::integer(ctx, value);
        }
    } else {
        reply::array(ctx, fields.len());
        for (_, value) in fields {
            reply::integer(ctx, value);
        }
    }
}
