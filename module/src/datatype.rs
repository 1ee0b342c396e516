//! The `ratelimit` Redis data type: persistence (RDB, AOF rewrite), `MEMORY USAGE`,
//! `DEBUG DIGEST-VALUE`, `COPY` and freeing.
//!
//! The fields and their validation are in `rl_core::rdb` (encoding version 3, which writes
//! every state that versions 1 and 2 could hold exactly as they did): a corrupt file or a
//! forged `RESTORE` payload is refused instead of producing a value with impossible state.
//! `DUMP`/`RESTORE` and `MIGRATE` use this same encoding; files and payloads written by
//! versions 1 and 2 still load.

use std::ffi::{c_int, c_longlong, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use redis_module::{native_types::RedisType, raw};

use crate::ffi::api;
use crate::propagate;
use crate::value::Value;
use rl_core::apply::{write_line, Line};
use rl_core::rdb;

/// Bumped whenever the RDB layout changes; older versions stay loadable.
const ENCODING_VERSION: c_int = rdb::ENCODING_VERSION as c_int;
/// Fields of a configured key in version 1, to which a usage-only one is padded for digests.
const VERSION_1_FIELDS: usize = 9;

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
    let mut state = rdb::decode(u64::try_from(encver).ok()?, read)?;
    Some(Value::new(&mut state))
}

extern "C" fn rdb_save(rdb: *mut raw::RedisModuleIO, value: *mut c_void) {
    guarded((), || {
        // SAFETY: Redis passes a live value of this type.
        let Some(b) = (unsafe { bucket(value) }) else {
            return;
        };
        for f in rdb::encode(b.read().state()) {
            api!(RedisModule_SaveUnsigned(rdb, f));
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
        let mut line = Line::new();
        write_line(b.read().state(), None, true, &[], &mut line);
        propagate::rewrite(aof, key, &line);
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
        // The RDB fields; version 1's padded to nine, so both kinds of one GCRA limit hash the
        // same way (and as they always have).
        let mut fields = rdb::encode(b.read().state());
        if fields.len() < VERSION_1_FIELDS && fields.get(3).is_some_and(|&kind| kind < 2) {
            fields.resize(VERSION_1_FIELDS, 0);
        }
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
