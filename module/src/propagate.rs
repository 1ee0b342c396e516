//! Sends a key's resulting state to replicas and the AOF (`Replicate`), or to a rewritten AOF
//! (`EmitAOF`), as `RL.APPLY key ...`, and deletions as `DEL`.
//!
//! What is sent is defined in `rl_core::apply` (the text of either form); this file only
//! hands it to the two variadic C functions, with no allocation: each text is one buffer
//! argument ('b'), the cheapest kind for Redis to build, and version 1's policy fields are
//! integers ('l').

#![allow(clippy::not_unsafe_ptr_arg_deref)] // Ctx, Str and the AOF handle are valid for the callback.

use std::ffi::{c_char, c_longlong};

use redis_module::raw;

use crate::ffi::{Ctx, Str};
use rl_core::apply::{Extra, Line};

/// An integer argument for the `l` format; every field we send is far below `i64::MAX`.
fn ll(v: u64) -> c_longlong {
    c_longlong::try_from(v).unwrap_or(c_longlong::MAX)
}

/// Calls `$send` (`Replicate` or `EmitAOF`) with `RL.APPLY`'s arguments for `$line`.
macro_rules! send_line {
    ($send:expr, $target:expr, $name:expr, $line:expr) => {{
        let cmd = c"rl.apply".as_ptr();
        let buf = |b: &[u8]| (b.as_ptr().cast::<c_char>(), b.len());
        let (sp, sl) = buf($line.state.as_bytes());
        match &$line.extra {
            Extra::Nothing => $send($target, cmd, c"sb".as_ptr(), $name, sp, sl),
            Extra::Policy(p) => {
                let [limit, window, burst, idle, flags] = p.map(ll);
                let fmt = c"sbclllll".as_ptr();
                let kw = c"POLICY".as_ptr();
                $send(
                    $target, cmd, fmt, $name, sp, sl, kw, limit, window, burst, idle, flags,
                )
            }
            Extra::Limits(l) => {
                let (lp, ll) = buf(l.as_bytes());
                let kw = c"LIMITS".as_ptr();
                $send($target, cmd, c"sbcb".as_ptr(), $name, sp, sl, kw, lp, ll)
            }
        }
    }};
}

/// Sends the key's new state (with its absolute expiry) to replicas and the AOF.
pub fn replicate(ctx: Ctx, name: Str, line: &Line) {
    // SAFETY: send_line passes arguments that match its format strings.
    if let Some(replicate) = unsafe { raw::RedisModule_Replicate } {
        unsafe { send_line!(replicate, ctx, name, line) };
    }
}

/// Writes one key's full state to a rewritten AOF (Redis adds its expiry after it).
pub fn rewrite(aof: *mut raw::RedisModuleIO, name: Str, line: &Line) {
    // SAFETY: send_line passes arguments that match its format strings.
    if let Some(emit) = unsafe { raw::RedisModule_EmitAOF } {
        unsafe { send_line!(emit, aof, name, line) };
    }
}

/// Sends replicas and the AOF a `DEL` of the key.
pub fn del(ctx: Ctx, name: Str) {
    // SAFETY: "s" matches the one RedisModuleString argument.
    unsafe {
        if let Some(replicate) = raw::RedisModule_Replicate {
            replicate(ctx, c"DEL".as_ptr(), c"s".as_ptr(), name);
        }
    }
}
