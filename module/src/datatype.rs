//! The `ratelimit` Redis data type: persistence (RDB, AOF rewrite), `MEMORY USAGE`,
//! `DEBUG DIGEST-VALUE`, `COPY` and freeing.
//!
//! The fields and their validation are in `codec.rs` (encoding version 1, one GCRA limit)
//! and `state.rs` (version 2: version 1 plus keys with several limits or SLIDING logs): a
//! corrupt file or a forged `RESTORE` payload is refused instead of producing a value with
//! impossible state. `DUMP`/`RESTORE` and `MIGRATE` use this same encoding; files and
//! payloads written by version 1 still load.

use std::ffi::{c_int, c_longlong, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use redis_module::{native_types::RedisType, raw};

use crate::ffi::api;
use crate::propagate;
use crate::value::Value;
use rl_core::codec;
use rl_core::state;

/// Bumped whenever the RDB layout changes; older versions stay loadable.
const ENCODING_VERSION: c_int = 2;

pub static RL_TYPE: RedisType = RedisType::new(
    "ratelimit",
    ENCODING_VERSION,
    raw::RedisModuleTypeMethods {
        version: raw::REDISMODULE_TYPE_METHOD_VERSION as u64,
        rdb_load: Some(rdb_load),
        rdb_save: Some(rdb_save),
        aof_rewrite: Some(aof_rewrite),
        mem_usage: Some(mem_usage),
        digest: Some(digest),
        free: Some(free),
        aux_load: None,
        aux_save: None,
        aux_save_triggers: 0,
        free_effort: None,
        unlink: None,
        copy: Some(copy),
        defrag: None,
        mem_usage2: None,
        free_effort2: None,
        unlink2: None,
        copy2: None,
        aux_save2: None,
    },
);

/// Runs a type callback; a panic (a bug) yields `fallback` instead of aborting the server.
fn guarded<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// A handle on a value Redis passes to a callback (not owned: it is freed only in `free`).
///
/// # Safety
/// `value` must be a live value of this type.
unsafe fn bucket(value: *const c_void) -> Option<Value> {
    Value::from_raw(value.cast_mut())
}

extern "C" fn rdb_load(rdb: *mut raw::RedisModuleIO, encver: c_int) -> *mut c_void {
    guarded(ptr::null_mut(), || {
        load_value(rdb, encver).map_or(ptr::null_mut(), Value::into_raw)
    })
}

fn load_value(rdb: *mut raw::RedisModuleIO, encver: c_int) -> Option<Value> {
    let read = || -> Option<u64> {
        let v = api!(RedisModule_LoadUnsigned(rdb))?;
        match api!(RedisModule_IsIOError(rdb)) {
            Some(0) => Some(v),
            _ => None,
        }
    };
    match encver {
        1 => Some(match codec::decode(read)? {
            (tat, None) => Value::new_usage(tat),
            (tat, Some(stored)) => Value::new_configured(tat, stored),
        }),
        2 => Some(Value::new_state(state::decode(read)?)),
        _ => None,
    }
}

extern "C" fn rdb_save(rdb: *mut raw::RedisModuleIO, value: *mut c_void) {
    guarded((), || {
        // SAFETY: Redis passes a live value of this type.
        let Some(b) = (unsafe { bucket(value) }) else {
            return;
        };
        if b.is_set() {
            for f in state::encode(&b.state()) {
                api!(RedisModule_SaveUnsigned(rdb, f));
            }
            return;
        }
        let (fields, n) = codec::encode(b.tat(), b.stored());
        for f in &fields[..n] {
            api!(RedisModule_SaveUnsigned(rdb, *f));
        }
    })
}

extern "C" fn aof_rewrite(
    aof: *mut raw::RedisModuleIO,
    key: *mut raw::RedisModuleString,
    value: *mut c_void,
) {
    guarded((), || {
        // SAFETY: Redis passes a live value of this type.
        let Some(b) = (unsafe { bucket(value) }) else {
            return;
        };
        if b.is_set() {
            let (text, limits) = state::apply_text(&b.state(), None, true, &[]);
            propagate::rewrite_set(aof, key, &text, limits.as_deref());
        } else {
            propagate::rewrite(aof, key, b.tat(), b.stored());
        }
    })
}

extern "C" fn mem_usage(value: *const c_void) -> usize {
    // SAFETY: Redis passes a live value of this type.
    guarded(0, || unsafe { bucket(value) }.map_or(0, |b| b.mem_usage()))
}

extern "C" fn digest(md: *mut raw::RedisModuleDigest, value: *mut c_void) {
    guarded((), || {
        // SAFETY: Redis passes a live value of this type.
        let Some(b) = (unsafe { bucket(value) }) else {
            return;
        };
        // All nine fields, zero-padded, so both kinds of one GCRA limit hash the same way; a
        // set hashes its version-2 fields.
        let fields = if b.is_set() {
            state::encode(&b.state())
        } else {
            codec::encode(b.tat(), b.stored()).0.to_vec()
        };
        for f in fields {
            api!(RedisModule_DigestAddLongLong(
                md,
                c_longlong::try_from(f).unwrap_or(-1)
            ));
        }
        api!(RedisModule_DigestEndSequence(md));
    })
}

extern "C" fn free(value: *mut c_void) {
    guarded((), || {
        // SAFETY: Redis frees a value it no longer references.
        if let Some(b) = unsafe { Value::from_raw(value) } {
            unsafe { b.free() };
        }
    })
}

extern "C" fn copy(
    _from: *mut raw::RedisModuleString,
    _to: *mut raw::RedisModuleString,
    value: *const c_void,
) -> *mut c_void {
    guarded(ptr::null_mut(), || {
        // SAFETY: Redis passes a live value of this type.
        unsafe { bucket(value) }.map_or(ptr::null_mut(), |b| b.duplicate().into_raw())
    })
}
