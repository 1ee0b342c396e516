//! Sends a key's resulting state to replicas and the AOF (`Replicate`), or to a rewritten AOF
//! (`EmitAOF`), as `RL.APPLY key state [POLICY fields...]`, and deletions as `DEL`.
//!
//! What is sent is defined in `effect.rs` (the state's text) and `policy.rs` (the policy's
//! fields, in their one order); this file only hands them to the two variadic C functions,
//! with no allocation: the state is one buffer argument ('b'), the cheapest kind for Redis
//! to build, and the policy fields are integers ('l').

#![allow(clippy::not_unsafe_ptr_arg_deref)] // Ctx, Str and the AOF handle are valid for the callback.

use std::ffi::{c_char, c_longlong};

use redis_module::raw;

use crate::ffi::{Ctx, Str};
use rl_core::effect::StateText;
use rl_core::gcra::Tat;
use rl_core::policy::StoredPolicy;

/// An integer argument for the `l` format; every field we send is far below `i64::MAX`.
fn ll(v: u64) -> c_longlong {
    c_longlong::try_from(v).unwrap_or(c_longlong::MAX)
}

/// Calls `$send` (`Replicate` or `EmitAOF`) with `RL.APPLY`'s arguments.
macro_rules! send_apply {
    ($send:expr, $target:expr, $name:expr, $tat:expr, $expire_at_ms:expr, $policy:expr) => {{
        let text = StateText::new($tat, $expire_at_ms);
        let (state, len) = (
            text.as_bytes().as_ptr().cast::<c_char>(),
            text.as_bytes().len(),
        );
        let cmd = c"rl.apply".as_ptr();
        match $policy {
            None => $send($target, cmd, c"sb".as_ptr(), $name, state, len),
            Some(p) => {
                let [limit, window, burst, idle, flags] = StoredPolicy::fields(&p).map(ll);
                let fmt = c"sbclllll".as_ptr();
                let kw = c"POLICY".as_ptr();
                $send(
                    $target, cmd, fmt, $name, state, len, kw, limit, window, burst, idle, flags,
                )
            }
        }
    }};
}

/// Sends the key's new state, with its absolute expiry (`None`: none), to replicas and the
/// AOF; with the policy when this write set it.
pub fn apply(
    ctx: Ctx,
    name: Str,
    tat: Tat,
    expire_at_ms: Option<u64>,
    policy: Option<StoredPolicy>,
) {
    // SAFETY: send_apply passes arguments that match its format strings.
    if let Some(replicate) = unsafe { raw::RedisModule_Replicate } {
        unsafe { send_apply!(replicate, ctx, name, tat, expire_at_ms, policy) };
    }
}

/// Calls `$send` (`Replicate` or `EmitAOF`) with the set form of `RL.APPLY`:
/// `key <state> [LIMITS <limits>]`, both texts as buffers ('b').
macro_rules! send_set {
    ($send:expr, $target:expr, $name:expr, $state:expr, $limits:expr) => {{
        let cmd = c"rl.apply".as_ptr();
        let (sp, sl) = ($state.as_ptr().cast::<c_char>(), $state.len());
        match $limits {
            None => {
                $send($target, cmd, c"sb".as_ptr(), $name, sp, sl);
            }
            Some(l) => {
                let (lp, ll) = (l.as_ptr().cast::<c_char>(), l.len());
                let kw = c"LIMITS".as_ptr();
                $send($target, cmd, c"sbcb".as_ptr(), $name, sp, sl, kw, lp, ll);
            }
        }
    }};
}

/// Sends a set's new state (`state.rs`'s text, with its expiry) to replicas and the AOF, with
/// its limits' text when given.
pub fn apply_set(ctx: Ctx, name: Str, state: &[u8], limits: Option<&[u8]>) {
    // SAFETY: send_set passes arguments that match its format strings.
    if let Some(replicate) = unsafe { raw::RedisModule_Replicate } {
        unsafe { send_set!(replicate, ctx, name, state, limits) };
    }
}

/// Writes one set's full state to a rewritten AOF (Redis adds its expiry after it).
pub fn rewrite_set(aof: *mut raw::RedisModuleIO, name: Str, state: &[u8], limits: Option<&[u8]>) {
    // SAFETY: send_set passes arguments that match its format strings.
    if let Some(emit) = unsafe { raw::RedisModule_EmitAOF } {
        unsafe { send_set!(emit, aof, name, state, limits) };
    }
}

/// Writes one key's full state to a rewritten AOF (Redis adds its expiry after it).
pub fn rewrite(aof: *mut raw::RedisModuleIO, name: Str, tat: Tat, policy: Option<StoredPolicy>) {
    // SAFETY: send_apply passes arguments that match its format strings.
    if let Some(emit) = unsafe { raw::RedisModule_EmitAOF } {
        unsafe { send_apply!(emit, aof, name, tat, None::<u64>, policy) };
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
