//! The thin layer over the raw Redis module API that the commands and type callbacks share.
//!
//! The crate's safe wrappers allocate per call (a `Vec` of arguments, owned strings for
//! replication); the hot path goes through here instead, where nothing allocates. Every API
//! pointer is an `Option` filled in by Redis at load: [`check_api`] refuses to load when one
//! is missing, and the wrappers below still never unwrap, so a missing one cannot panic.

// `Ctx`, `Str` and key handles come from Redis and are valid for the current callback by the
// module API's contract; that is the one assumption this file makes about raw pointers.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use std::ffi::{c_char, c_int, c_longlong, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use redis_module::raw;

use crate::effect::StateText;
use crate::error::Error;
use crate::gcra::Tat;
use crate::policy::StoredPolicy;
use crate::value::Value;

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

/// Fails module loading, with a log line, when the server lacks an API the module calls.
pub fn check_api(ctx: Ctx) -> bool {
    // Each pointer is copied out (not borrowed) of the table Redis filled at load.
    let present = [
        { unsafe { raw::RedisModule_Milliseconds } }.is_some(),
        { unsafe { raw::RedisModule_StringPtrLen } }.is_some(),
        { unsafe { raw::RedisModule_OpenKey } }.is_some(),
        { unsafe { raw::RedisModule_CloseKey } }.is_some(),
        { unsafe { raw::RedisModule_KeyType } }.is_some(),
        { unsafe { raw::RedisModule_ModuleTypeGetType } }.is_some(),
        { unsafe { raw::RedisModule_ModuleTypeGetValue } }.is_some(),
        { unsafe { raw::RedisModule_ModuleTypeSetValue } }.is_some(),
        { unsafe { raw::RedisModule_ModuleTypeReplaceValue } }.is_some(),
        { unsafe { raw::RedisModule_SetAbsExpire } }.is_some(),
        { unsafe { raw::RedisModule_SetExpire } }.is_some(),
        { unsafe { raw::RedisModule_Replicate } }.is_some(),
        { unsafe { raw::RedisModule_ReplicateVerbatim } }.is_some(),
        { unsafe { raw::RedisModule_ReplyWithBool } }.is_some(),
        { unsafe { raw::RedisModule_ReplyWithError } }.is_some(),
        { unsafe { raw::RedisModule_ReplyWithSimpleString } }.is_some(),
        { unsafe { raw::RedisModule_WrongArity } }.is_some(),
        { unsafe { raw::RedisModule_GetContextFlags } }.is_some(),
        { unsafe { raw::RedisModule_SignalModifiedKey } }.is_some(),
        { unsafe { raw::RedisModule_SetModuleOptions } }.is_some(),
        { unsafe { raw::RedisModule_CreateCommand } }.is_some(),
        { unsafe { raw::RedisModule_GetCommand } }.is_some(),
        { unsafe { raw::RedisModule_SetCommandInfo } }.is_some(),
        { unsafe { raw::RedisModule_EmitAOF } }.is_some(),
        { unsafe { raw::RedisModule_IsIOError } }.is_some(),
        { unsafe { raw::RedisModule_LoadUnsigned } }.is_some(),
        { unsafe { raw::RedisModule_SaveUnsigned } }.is_some(),
        { unsafe { raw::RedisModule_DigestAddLongLong } }.is_some(),
        { unsafe { raw::RedisModule_DigestEndSequence } }.is_some(),
        { unsafe { raw::RedisModule_DeleteKey } }.is_some(),
        { unsafe { raw::RedisModule_GetCurrentUserName } }.is_some(),
        { unsafe { raw::RedisModule_GetModuleUserFromUserName } }.is_some(),
        { unsafe { raw::RedisModule_ACLCheckKeyPermissions } }.is_some(),
        { unsafe { raw::RedisModule_FreeModuleUser } }.is_some(),
        { unsafe { raw::RedisModule_CreateString } }.is_some(),
        { unsafe { raw::RedisModule_FreeString } }.is_some(),
        { unsafe { raw::RedisModule_GetAbsExpire } }.is_some(),
        { unsafe { raw::RedisModule_GetNotifyKeyspaceEvents } }.is_some(),
        { unsafe { raw::RedisModule_NotifyKeyspaceEvent } }.is_some(),
        { unsafe { raw::RedisModule_ReplyWithMap } }.is_some(),
        { unsafe { raw::RedisModule_ReplyWithArray } }.is_some(),
        { unsafe { raw::RedisModule_ReplyWithLongLong } }.is_some(),
        { unsafe { raw::RedisModule_ReplyWithNull } }.is_some(),
        { unsafe { raw::RedisModule_ReplyWithStringBuffer } }.is_some(),
    ];
    let ok = present.iter().all(|p| *p);
    if !ok {
        raw::redis_log(ctx, "rl: this Redis lacks a module API the rl module needs (Redis 7.0 or later is required)");
    }
    ok
}

/// Runs a command body, turning an `Err` into its error reply and a panic (a bug) into an
/// error reply instead of an aborted server.
pub fn run_command(ctx: Ctx, body: impl FnOnce() -> Result<(), Error>) -> c_int {
    let result = catch_unwind(AssertUnwindSafe(body)).unwrap_or(Err(Error::Internal));
    if let Err(e) = result {
        crate::reply::error(ctx, e);
    }
    raw::REDISMODULE_OK as c_int
}

/// Most arguments any of our commands accepts (`RL.APPLY`, with its policy, takes 12).
pub const MAX_ARGS: usize = 16;

/// A command's arguments as byte slices in a fixed array: no allocation.
pub struct Args<'a> {
    buf: [&'a [u8]; MAX_ARGS],
    len: usize,
}

impl<'a> Args<'a> {
    /// Arguments `from..argc`; `None` when there are more than [`MAX_ARGS`].
    ///
    /// # Safety
    /// `argv` must hold `argc` valid strings that outlive `'a` (true for a command's argv).
    pub unsafe fn new(argv: *mut Str, argc: c_int, from: usize) -> Option<Args<'a>> {
        let argc = usize::try_from(argc).ok()?;
        let mut args = Args {
            buf: [&[]; MAX_ARGS],
            len: argc.saturating_sub(from),
        };
        if args.len > MAX_ARGS {
            return None;
        }
        for i in from..argc {
            args.buf[i - from] = string_bytes(*argv.add(i));
        }
        Some(args)
    }

    pub fn as_slice(&self) -> &[&'a [u8]] {
        &self.buf[..self.len]
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

/// Whether this call comes from the master link or from loading the AOF.
pub fn from_master_or_loading(ctx: Ctx) -> bool {
    let mask =
        (raw::REDISMODULE_CTX_FLAGS_REPLICATED | raw::REDISMODULE_CTX_FLAGS_LOADING) as c_int;
    api!(RedisModule_GetContextFlags(ctx)).is_some_and(|f| f & mask != 0)
}

/// Publishes a module keyspace event (`notify-keyspace-events` with `d`, e.g. `Kd` or `Ed`)
/// if, and only if, the operator enabled that class: otherwise it costs one flag check.
pub fn notify(ctx: Ctx, event: &'static std::ffi::CStr, key: Str) {
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

/// Whether the calling client speaks RESP3 (after `HELLO 3`).
pub fn is_resp3(ctx: Ctx) -> bool {
    let resp3 = raw::REDISMODULE_CTX_FLAGS_RESP3 as c_int;
    api!(RedisModule_GetContextFlags(ctx)).is_some_and(|f| f & resp3 != 0)
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

/// The module's data type, set once at load.
static TYPE: AtomicPtr<raw::RedisModuleType> = AtomicPtr::new(ptr::null_mut());

pub fn set_type(t: *mut raw::RedisModuleType) {
    TYPE.store(t, Ordering::Relaxed);
}

fn rl_type() -> *mut raw::RedisModuleType {
    TYPE.load(Ordering::Relaxed)
}

/// A key opened for writing; closed on drop, on every path.
pub struct Key {
    ctx: Ctx,
    name: Str,
    key: *mut raw::RedisModuleKey,
    writable: bool,
}

impl Key {
    pub fn open_write(ctx: Ctx, name: Str) -> Key {
        Key::open(ctx, name, raw::REDISMODULE_READ | raw::REDISMODULE_WRITE)
    }

    /// For read-only commands (`RL.PEEK`, `RL.INFO`), which also run on replicas.
    pub fn open_read(ctx: Ctx, name: Str) -> Key {
        Key::open(ctx, name, raw::REDISMODULE_READ)
    }

    fn open(ctx: Ctx, name: Str, mode: u32) -> Key {
        let key = api!(RedisModule_OpenKey(ctx, name, mode as c_int)).unwrap_or(ptr::null_mut());
        let writable = mode & raw::REDISMODULE_WRITE != 0;
        Key {
            ctx,
            name,
            key,
            writable,
        }
    }

    /// The key's name, as given by the client.
    pub fn name(&self) -> Str {
        self.name
    }

    /// The key's absolute expiry in Unix ms, if it has one.
    pub fn expiry(&self) -> Option<u64> {
        api!(RedisModule_GetAbsExpire(self.key)).and_then(|ms| u64::try_from(ms).ok())
    }

    /// The key's value (`None`: the key is empty), or `WRONGTYPE` for a key of another type.
    pub fn bucket(&self) -> Result<Option<Value>, Error> {
        if self.key.is_null() {
            // Opened read-only, an absent key has no handle at all.
            return if self.writable {
                Err(Error::Internal)
            } else {
                Ok(None)
            };
        }
        let kind = api!(RedisModule_KeyType(self.key)).ok_or(Error::Internal)?;
        if kind == raw::REDISMODULE_KEYTYPE_EMPTY as c_int {
            return Ok(None);
        }
        if kind != raw::REDISMODULE_KEYTYPE_MODULE as c_int
            || api!(RedisModule_ModuleTypeGetType(self.key)) != Some(rl_type())
        {
            return Err(Error::WrongType);
        }
        let value = api!(RedisModule_ModuleTypeGetValue(self.key)).unwrap_or(ptr::null_mut());
        // SAFETY: a value of our type is a pointer from Value::into_raw.
        unsafe { Value::from_raw(value) }
            .map(Some)
            .ok_or(Error::Internal)
    }

    /// Stores a new value in an empty key.
    pub fn set(&self, b: Value) -> Result<(), Error> {
        let raw_value = b.into_raw();
        match api!(RedisModule_ModuleTypeSetValue(
            self.key,
            rl_type(),
            raw_value
        )) {
            Some(r) if r == raw::REDISMODULE_OK as c_int => Ok(()),
            _ => {
                // SAFETY: Redis did not take the value.
                unsafe { Value::from_raw(raw_value).map(|b| b.free()) };
                Err(Error::Internal)
            }
        }
    }

    /// Swaps the value of a key that holds ours, keeping its expiry, and frees the old one.
    pub fn replace(&self, b: Value) -> Result<(), Error> {
        let raw_value = b.into_raw();
        let mut old: *mut c_void = ptr::null_mut();
        match api!(RedisModule_ModuleTypeReplaceValue(
            self.key,
            rl_type(),
            raw_value,
            &mut old
        )) {
            Some(r) if r == raw::REDISMODULE_OK as c_int => {
                // SAFETY: Redis handed the old value back to us.
                unsafe { Value::from_raw(old).map(|b| b.free()) };
                Ok(())
            }
            _ => {
                // SAFETY: Redis did not take the value.
                unsafe { Value::from_raw(raw_value).map(|b| b.free()) };
                Err(Error::Internal)
            }
        }
    }

    /// Makes this key hold `tat` and, when given, the `stored` policy (`None` keeps the
    /// policy a configured key has). In place when the value allows it; otherwise a new value
    /// is swapped in (an inline value cannot change in place, a usage-only one has no room for
    /// a policy), or set when the key was empty (`bucket` None).
    pub fn store(
        &self,
        bucket: Option<Value>,
        tat: Tat,
        stored: Option<StoredPolicy>,
    ) -> Result<(), Error> {
        let Some(mut b) = bucket else {
            return self.set(match stored {
                Some(s) => Value::new_configured(tat, s),
                None => Value::new_usage(tat),
            });
        };
        if let Some(s) = stored {
            if !b.set_stored(s) {
                return self.replace(Value::new_configured(tat, s));
            }
        }
        match b.with_tat(tat) {
            Some(new) => self.replace(new),
            None => Ok(()),
        }
    }

    /// Applies the expiry a key's state calls for (`own`, see `policy::own_expiry`); with
    /// none, the key keeps whatever it has (a user's PEXPIRE). Returns the key's absolute
    /// expiry afterwards, which is what replicas must get.
    pub fn settle_expiry(&self, own: Option<u64>) -> Option<u64> {
        match own {
            Some(at) => {
                self.set_expiry(Some(at));
                Some(at)
            }
            None => self.expiry(),
        }
    }

    /// Deletes the key and sends replicas and the AOF a `DEL` of it.
    pub fn delete_replicated(&self) {
        api!(RedisModule_DeleteKey(self.key));
        // SAFETY: "s" matches the one RedisModuleString argument.
        unsafe {
            if let Some(replicate) = raw::RedisModule_Replicate {
                replicate(self.ctx, c"DEL".as_ptr(), c"s".as_ptr(), self.name);
            }
        }
    }

    /// Sets an absolute expiry in Unix ms, or removes the expiry for `None`.
    pub fn set_expiry(&self, at_ms: Option<u64>) {
        match at_ms.and_then(|ms| c_longlong::try_from(ms).ok()) {
            Some(ms) => api!(RedisModule_SetAbsExpire(self.key, ms)),
            None => api!(RedisModule_SetExpire(
                self.key,
                c_longlong::from(raw::REDISMODULE_NO_EXPIRE)
            )),
        };
    }

    /// Tells `WATCH` and client-side caching that the key changed. Needed because the module
    /// turns off the implicit signal, which would also fire for denied requests.
    pub fn signal_modified(&self) {
        api!(RedisModule_SignalModifiedKey(self.ctx, self.name));
    }

    /// Sends the key's new state, with its absolute expiry (`None`: none), to replicas and
    /// the AOF as `RL.APPLY`; with the policy when it changed.
    pub fn replicate(&self, tat: Tat, expire_at_ms: Option<u64>, stored: Option<StoredPolicy>) {
        replicate_apply(self.ctx, self.name, tat, expire_at_ms, stored);
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        if !self.key.is_null() {
            api!(RedisModule_CloseKey(self.key));
        }
    }
}

/// An integer argument for the `l` format of `Replicate`/`EmitAOF`; every value we send is
/// a bound far below `i64::MAX`.
fn ll(v: u64) -> c_longlong {
    c_longlong::try_from(v).unwrap_or(c_longlong::MAX)
}

/// Sends `RL.APPLY key state [POLICY limit window_ms burst idle_ms flags]` (see `effect.rs`)
/// through `Replicate` (replicas and AOF) or `EmitAOF` (AOF rewrite): two variadic C
/// functions that take the same format. The state is one buffer argument ('b'), the cheapest
/// kind for Redis to build.
macro_rules! send_apply {
    ($send:expr, $target:expr, $name:expr, $tat:expr, $expire_at_ms:expr, $stored:expr) => {{
        let text = StateText::new($tat, $expire_at_ms);
        let (state, len) = (
            text.as_bytes().as_ptr().cast::<c_char>(),
            text.as_bytes().len(),
        );
        let cmd = c"rl.apply".as_ptr();
        match $stored {
            None => $send($target, cmd, c"sb".as_ptr(), $name, state, len),
            Some(s) => {
                let p = &s.policy;
                let (limit, window, burst) = (ll(p.limit()), ll(p.window_ms()), ll(p.burst()));
                let policy = c"POLICY".as_ptr();
                let (idle, flags) = (ll(s.idle_ms), ll(s.flags()));
                let fmt = c"sbclllll".as_ptr();
                $send(
                    $target, cmd, fmt, $name, state, len, policy, limit, window, burst, idle, flags,
                )
            }
        }
    }};
}

fn replicate_apply(
    ctx: Ctx,
    name: Str,
    tat: Tat,
    expire_at_ms: Option<u64>,
    stored: Option<StoredPolicy>,
) {
    // SAFETY: send_apply passes arguments that match its format strings.
    if let Some(replicate) = unsafe { raw::RedisModule_Replicate } {
        unsafe { send_apply!(replicate, ctx, name, tat, expire_at_ms, stored) };
    }
}

/// Writes one key's full state to a rewritten AOF as `RL.APPLY` (Redis adds its expiry).
pub fn emit_aof(aof: *mut raw::RedisModuleIO, name: Str, tat: Tat, stored: Option<StoredPolicy>) {
    // SAFETY: send_apply passes arguments that match its format strings.
    if let Some(emit) = unsafe { raw::RedisModule_EmitAOF } {
        unsafe { send_apply!(emit, aof, name, tat, None, stored) };
    }
}
