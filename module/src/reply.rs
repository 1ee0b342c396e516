//! Replies, without allocating: static messages and integers straight to the client buffer.

#![allow(clippy::not_unsafe_ptr_arg_deref)] // Ctx is valid for the callback, by contract.

use std::ffi::{c_int, c_long, c_longlong, CStr};

use redis_module::raw;

use crate::ffi::{api, Ctx};
use crate::metrics::ERRORS;
use rl_core::error::Error;
use rl_core::policy::Policy;

pub fn error(ctx: Ctx, e: Error) {
    if e == Error::WrongArity {
        wrong_arity(ctx);
        return;
    }
    ERRORS.incr();
    api!(RedisModule_ReplyWithError(ctx, e.message().as_ptr()));
}

pub fn boolean(ctx: Ctx, b: bool) {
    api!(RedisModule_ReplyWithBool(ctx, c_int::from(b)));
}

pub fn ok(ctx: Ctx) {
    api!(RedisModule_ReplyWithSimpleString(ctx, c"OK".as_ptr()));
}

pub fn integer(ctx: Ctx, v: i64) {
    api!(RedisModule_ReplyWithLongLong(ctx, c_longlong::from(v)));
}

/// An unsigned count, saturated to the protocol's signed 64 bits.
pub fn count(ctx: Ctx, v: u64) {
    integer(ctx, i64::try_from(v).unwrap_or(i64::MAX));
}

pub fn null(ctx: Ctx) {
    api!(RedisModule_ReplyWithNull(ctx));
}

pub fn bulk(ctx: Ctx, bytes: &[u8]) {
    api!(RedisModule_ReplyWithStringBuffer(
        ctx,
        bytes.as_ptr().cast(),
        bytes.len()
    ));
}

pub fn array(ctx: Ctx, len: usize) {
    api!(RedisModule_ReplyWithArray(
        ctx,
        c_long::try_from(len).unwrap_or(0)
    ));
}

/// A map of `len` pairs: a RESP3 map, or a flat array of names and values in RESP2.
pub fn map(ctx: Ctx, len: usize) {
    api!(RedisModule_ReplyWithMap(
        ctx,
        c_long::try_from(len).unwrap_or(0)
    ));
}

/// A map key.
pub fn name(ctx: Ctx, name: &'static CStr) {
    bulk(ctx, name.to_bytes());
}

/// A map entry whose value is a count, or nil when there is none.
pub fn field(ctx: Ctx, name: &'static CStr, value: Option<u64>) {
    self::name(ctx, name);
    match value {
        Some(v) => count(ctx, v),
        None => null(ctx),
    }
}

pub fn wrong_arity(ctx: Ctx) -> c_int {
    ERRORS.incr();
    api!(RedisModule_WrongArity(ctx));
    raw::REDISMODULE_OK as c_int
}

/// A policy's limits as enforced: one `[kind, limit, window_ms, burst]` per limit (RESP3: a
/// map with those names).
pub fn limits(ctx: Ctx, policy: &Policy, resp3: bool) {
    array(ctx, policy.len());
    for l in policy.limits() {
        if resp3 {
            map(ctx, 4);
            name(ctx, c"kind");
        } else {
            array(ctx, 4);
        }
        bulk(ctx, l.kind().label().as_bytes());
        for (field, v) in [
            (c"limit", l.limit()),
            (c"window_ms", l.window_ms()),
            (c"burst", l.capacity()),
        ] {
            if resp3 {
                name(ctx, field);
            }
            count(ctx, v);
        }
    }
}
