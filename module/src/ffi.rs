//! The thin layer over the raw Redis module API: calling an API pointer, reading strings,
//! the clock and the context flags, publishing events, ACL checks and logging.
//!
//! The crate's safe wrappers allocate per call (a `Vec` of arguments, owned strings for
//! replication); the hot path goes through here instead, where nothing allocates. Every API
//! pointer is an `Option` filled in by Redis at load: [`check_api`] refuses to load when a
//! required one is missing, and the wrappers below still never unwrap, so a missing one
//! cannot panic. Keys are in `key.rs`, command entry in `entry.rs`, effects in `propagate.rs`.

// `Ctx`, `Str` and key handles come from Redis and are valid for the current callback by the
// module API's contract; that is the one assumption this file makes about raw pointers.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use std::ffi::{c_int, CStr, CString};

use redis_module::raw;

pub type Ctx = *mut raw::RedisModuleCtx;
pub type Str = *mut raw::RedisModuleString;

/// Calls a Redis API function pointer; `None` if this server lacks it.
macro_rules! api {
    ($f:ident ( $($arg:expr),* $(,)? )) => {
        // SAFETY: the pointer was set by Redis at load; arguments are the caller's duty.
        unsafe { redis_module::raw::$f.map(|f| f($($arg),*)) }
    };
}
pub(crate) use api;

/// Declares the APIs the module calls and checks them at load. A unit test reads every
/// source file and fails if it calls an API that is in neither list, so the lists cannot
/// drift from the code.
macro_rules! apis {
    (required: [$($req:ident),* $(,)?], optional: [$($opt:ident),* $(,)?]) => {
        /// APIs without which the module refuses to load (all exist since Redis 7.0).
        pub const REQUIRED_APIS: &[&str] = &[$(stringify!($req)),*];
        /// APIs used only when the server has them (newer servers), detected at load.
        pub const OPTIONAL_APIS: &[&str] = &[$(stringify!($opt)),*];

        /// The first required API this server lacks.
        fn missing_api() -> Option<&'static str> {
            // Each pointer is copied out of the table Redis filled at load, never borrowed.
            $(if unsafe { raw::$req }.is_none() {
                return Some(stringify!($req));
            })*
            None
        }
    };
}

apis! {
    required: [
        RedisModule_Milliseconds, RedisModule_StringPtrLen, RedisModule_OpenKey,
        RedisModule_CloseKey, RedisModule_KeyType, RedisModule_ModuleTypeGetType,
        RedisModule_ModuleTypeGetValue, RedisModule_ModuleTypeSetValue,
        RedisModule_ModuleTypeReplaceValue, RedisModule_SetAbsExpire, RedisModule_SetExpire,
        RedisModule_GetAbsExpire, RedisModule_Replicate, RedisModule_ReplyWithBool,
        RedisModule_ReplyWithError, RedisModule_ReplyWithSimpleString, RedisModule_WrongArity,
        RedisModule_GetContextFlags, RedisModule_SignalModifiedKey,
        RedisModule_SetModuleOptions, RedisModule_CreateCommand, RedisModule_GetCommand,
        RedisModule_SetCommandInfo, RedisModule_EmitAOF, RedisModule_IsIOError,
        RedisModule_LoadUnsigned, RedisModule_SaveUnsigned, RedisModule_DigestAddLongLong,
        RedisModule_DigestEndSequence, RedisModule_DeleteKey, RedisModule_GetCurrentUserName,
        RedisModule_GetModuleUserFromUserName, RedisModule_ACLCheckKeyPermissions,
        RedisModule_FreeModuleUser, RedisModule_CreateString, RedisModule_FreeString,
        RedisModule_GetNotifyKeyspaceEvents, RedisModule_NotifyKeyspaceEvent,
        RedisModule_ReplyWithMap, RedisModule_ReplyWithArray, RedisModule_ReplyWithLongLong,
        RedisModule_ReplyWithNull, RedisModule_ReplyWithStringBuffer, RedisModule_Log,
        RedisModule_LoadConfigs, RedisModule_InfoAddSection,
        RedisModule_InfoAddFieldLongLong, RedisModule_RegisterInfoFunc,
        // Called by the redis-module crate for us: configs and the data type.
        RedisModule_RegisterNumericConfig, RedisModule_CreateDataType,
    ],
    optional: [
        // 7.2+: ACL categories for module commands.
        RedisModule_SetCommandACLCategories,
        // 7.4+ / Valkey 8+: a category of the module's own.
        RedisModule_AddACLCategory,
    ]
}

/// Whether this server has every required API; logs the first missing one as a warning
/// (so that it shows under `loglevel warning`).
pub fn check_api(ctx: Ctx) -> bool {
    match missing_api() {
        None => true,
        Some(name) => {
            log_warning(
                ctx,
                &format!(
                    "rl: Redis 7.0 or later is required (this server lacks {name}); not loading"
                ),
            );
            false
        }
    }
}

/// Whether the server has an optional API (see [`OPTIONAL_APIS`]).
pub fn has_acl_categories() -> bool {
    { unsafe { raw::RedisModule_SetCommandACLCategories } }.is_some()
}

/// Logs a line at `warning` level, which shows under every `loglevel`. Redis prefixes it
/// with the module's name when `ctx` is the module's context; with a null one it still logs.
pub fn log_warning(ctx: Ctx, msg: &str) {
    log(ctx, c"warning", msg);
}

/// Logs a line at `notice` level.
pub fn log_notice(ctx: Ctx, msg: &str) {
    log(ctx, c"notice", msg);
}

fn log(ctx: Ctx, level: &CStr, msg: &str) {
    // A message with a NUL in it is cut there rather than dropped.
    let msg = CString::new(msg.split('\0').next().unwrap_or_default()).unwrap_or_default();
    // SAFETY: "%s" matches the one C string argument.
    unsafe {
        if let Some(log) = raw::RedisModule_Log {
            log(ctx, level.as_ptr(), c"%s".as_ptr(), msg.as_ptr());
        }
    }
}

/// The bytes of a Redis string (binary-safe).
///
/// # Safety
/// `s` must be a valid Redis string that outlives `'a`.
pub unsafe fn string_bytes<'a>(s: Str) -> &'a [u8] {
    let mut len = 0usize;
    match api!(RedisModule_StringPtrLen(s, &mut len)) {
        Some(p) if !p.is_null() => std::slice::from_raw_parts(p.cast::<u8>(), len),
        _ => &[],
    }
}

/// The server clock in Unix ms, read once per command; a clock before 1970 reads as 0.
pub fn now_ms() -> u64 {
    api!(RedisModule_Milliseconds())
        .and_then(|ms| u64::try_from(ms).ok())
        .unwrap_or(0)
}

fn context_flags(ctx: Ctx) -> c_int {
    api!(RedisModule_GetContextFlags(ctx)).unwrap_or(0)
}

/// Whether this call comes from the master link or from loading the AOF.
pub fn from_master_or_loading(ctx: Ctx) -> bool {
    let mask =
        (raw::REDISMODULE_CTX_FLAGS_REPLICATED | raw::REDISMODULE_CTX_FLAGS_LOADING) as c_int;
    context_flags(ctx) & mask != 0
}

/// Whether the calling client speaks RESP3 (after `HELLO 3`).
pub fn is_resp3(ctx: Ctx) -> bool {
    context_flags(ctx) & raw::REDISMODULE_CTX_FLAGS_RESP3 as c_int != 0
}

/// Publishes a module keyspace event (`notify-keyspace-events` with `d`, e.g. `Kd` or `Ed`)
/// if, and only if, the operator enabled that class: otherwise it costs one flag check.
pub fn notify(ctx: Ctx, event: &'static CStr, key: Str) {
    let module = raw::REDISMODULE_NOTIFY_MODULE as c_int;
    if api!(RedisModule_GetNotifyKeyspaceEvents()).is_some_and(|f| f & module != 0) {
        api!(RedisModule_NotifyKeyspaceEvent(
            ctx,
            module,
            event.as_ptr(),
            key
        ));
    }
}

/// The calling user, for commands that reveal key names they were not given (`RL.TOP`):
/// ACL key patterns only guard the keys in a command's arguments.
pub struct CallerAcl {
    ctx: Ctx,
    user: *mut raw::RedisModuleUser,
}

impl CallerAcl {
    /// `None` when the caller's user cannot be found (then reveal nothing).
    pub fn new(ctx: Ctx) -> Option<CallerAcl> {
        let name = api!(RedisModule_GetCurrentUserName(ctx)).filter(|n| !n.is_null())?;
        let user = api!(RedisModule_GetModuleUserFromUserName(name));
        api!(RedisModule_FreeString(ctx, name));
        let user = user.filter(|u| !u.is_null())?;
        Some(CallerAcl { ctx, user })
    }

    /// Whether the caller may read `key`.
    pub fn may_read(&self, key: &[u8]) -> bool {
        let Some(s) = api!(RedisModule_CreateString(
            self.ctx,
            key.as_ptr().cast(),
            key.len()
        ))
        .filter(|s| !s.is_null()) else {
            return false;
        };
        let access = raw::REDISMODULE_CMD_KEY_ACCESS as c_int;
        let ok = api!(RedisModule_ACLCheckKeyPermissions(self.user, s, access))
            == Some(raw::REDISMODULE_OK as c_int);
        api!(RedisModule_FreeString(self.ctx, s));
        ok
    }
}

impl Drop for CallerAcl {
    fn drop(&mut self) {
        api!(RedisModule_FreeModuleUser(self.user));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `RedisModule_*` API named in the sources is declared in one of the lists, so a
    /// server that lacks a required one refuses the module at load instead of failing later.
    #[test]
    fn every_api_the_sources_call_is_declared() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
        let mut files = vec![];
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                files.extend(std::fs::read_dir(p).unwrap().map(|e| e.unwrap().path()));
            } else {
                files.push(p);
            }
        }
        let mut undeclared = vec![];
        for f in files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "rs"))
        {
            let text = std::fs::read_to_string(f).unwrap();
            for (i, _) in text.match_indices("RedisModule_") {
                let name: String = text[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                // Type names (RedisModuleCtx) have no underscore; constants are upper case.
                let declared = REQUIRED_APIS.contains(&name.as_str())
                    || OPTIONAL_APIS.contains(&name.as_str());
                // Export_RedisModule_Init fills the table; OnLoad is ours.
                let ours = name == "RedisModule_OnLoad" || text[..i].ends_with("Export_");
                if !declared && !ours && name != "RedisModule_" {
                    undeclared.push(format!("{}: {name}", f.display()));
                }
            }
        }
        assert!(undeclared.is_empty(), "undeclared APIs: {undeclared:?}");
    }
}
