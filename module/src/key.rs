//! A key opened by a command, and the one way to change it.
//!
//! [`Key::write`] is the only path by which a command stores a state (every check, `RL.CONFIG`,
//! `RL.RESET`, `RL.APPLY`): it stores the value (in place when the layout allows), sets the
//! expiry by the rule the caller names ([`Expiry`]), tells `WATCH` the key changed, and sends
//! the resulting state to replicas and the AOF as `RL.APPLY` (`propagate.rs`, the text from
//! `rl_core::apply`). A new command cannot forget one of the four.
//! [`Key::delete`] is the other change: a replicated `DEL`.
//!
//! The value handle a key gives out ([`ValueRef`]) borrows the key, so the borrow checker
//! keeps it from outliving the key or being used after a write or a delete replaced it.

#![allow(clippy::not_unsafe_ptr_arg_deref)] // Ctx and Str are valid for the callback.

use std::ffi::{c_int, c_longlong, c_void};
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use redis_module::raw;

use crate::ffi::{api, string_bytes, Ctx, Str};
use crate::propagate;
use crate::value::{Change, Value};
use rl_core::apply::{write_line, write_line_of, Line, Record};
use rl_core::error::Error;
use rl_core::policy::MAX_LIMITS;
use rl_core::rdb::compact;
use rl_core::state::State;

/// The module's data type, set once at load.
static TYPE: AtomicPtr<raw::RedisModuleType> = AtomicPtr::new(ptr::null_mut());

pub fn set_type(t: *mut raw::RedisModuleType) {
    TYPE.store(t, Ordering::Relaxed);
}

fn rl_type() -> *mut raw::RedisModuleType {
    TYPE.load(Ordering::Relaxed)
}

/// Which expiry a written state gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// The state's own expiry (`policy::own_expiry`) when it has one; where it has none (a
    /// configured key without IDLE), the key keeps whatever it has: none, or a user's TTL.
    Own(Option<u64>),
    /// Exactly this absolute expiry in Unix ms, or none: `RL.CONFIG` (configuration is not
    /// usage, so it clears a TTL) and `RL.APPLY` (the master's expiry, whatever it is).
    Exactly(Option<u64>),
}

/// What a write stores.
pub enum New<'s> {
    /// The value's own usages were updated in place (a general value, recorded into).
    InPlace,
    /// This whole state (its logs are moved into the value, not copied).
    State(&'s mut State),
}

/// What a write sends to replicas and the AOF besides the state.
#[derive(Clone, Copy, Debug, Default)]
pub struct Effect {
    /// The write sets the stored policy (sent with it).
    pub set_policy: bool,
    /// Per usage, the request recorded in a SLIDING log the replicas hold, sent instead of
    /// the whole log (`apply::Record`).
    pub records: [Option<Record>; MAX_LIMITS],
}

/// A key opened for the current command; closed on drop, on every path.
pub struct Key {
    ctx: Ctx,
    name: Str,
    key: *mut raw::RedisModuleKey,
    writable: bool,
}

/// The value a key holds, borrowed from the key: valid while the key is open and unchanged.
pub struct ValueRef<'k> {
    value: Value,
    _key: PhantomData<&'k Key>,
}

impl Deref for ValueRef<'_> {
    type Target = Value;
    fn deref(&self) -> &Value {
        &self.value
    }
}

impl std::ops::DerefMut for ValueRef<'_> {
    fn deref_mut(&mut self) -> &mut Value {
        &mut self.value
    }
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

    /// The key's name as bytes.
    pub fn name_bytes(&self) -> &[u8] {
        // SAFETY: the name is a command argument, alive for the call (and so for `self`).
        unsafe { string_bytes(self.name) }
    }

    /// The key's absolute expiry in Unix ms, if it has one. An empty key has none, and is not
    /// asked: Redis 8.2's `GetAbsExpire` dereferences the missing value of an empty key
    /// (SIGSEGV: `RL.BLOCK` of an absent key crashed it).
    pub fn expiry(&self) -> Option<u64> {
        if self.key.is_null()
            || api!(RedisModule_KeyType(self.key)) == Some(raw::REDISMODULE_KEYTYPE_EMPTY as c_int)
        {
            return None;
        }
        api!(RedisModule_GetAbsExpire(self.key)).and_then(|ms| u64::try_from(ms).ok())
    }

    /// The key's value (`None`: the key is empty), or `WRONGTYPE` for a key of another type.
    pub fn value(&self) -> Result<Option<ValueRef<'_>>, Error> {
        if self.key.is_null() {
            // Opened read-only, an absent key has no handle at all.
            return if self.writable {
                Err(Error::Internal("OpenKey gave no handle for writing"))
            } else {
                Ok(None)
            };
        }
        let kind = api!(RedisModule_KeyType(self.key)).ok_or(Error::Internal("no KeyType"))?;
        if kind == raw::REDISMODULE_KEYTYPE_EMPTY as c_int {
            return Ok(None);
        }
        if kind != raw::REDISMODULE_KEYTYPE_MODULE as c_int
            || api!(RedisModule_ModuleTypeGetType(self.key)) != Some(rl_type())
        {
            return Err(Error::WrongType);
        }
        let raw_value = api!(RedisModule_ModuleTypeGetValue(self.key)).unwrap_or(ptr::null_mut());
        // SAFETY: a value of our type is a word from Value::into_raw, alive while the key is.
        match unsafe { Value::from_raw(raw_value) } {
            Some(value) => Ok(Some(ValueRef {
                value,
                _key: PhantomData,
            })),
            None => Err(Error::Internal("a ratelimit key holds a null value")),
        }
    }

    /// The one write: stores `new` (in place when the layout allows), applies the expiry rule,
    /// signals the change (`WATCH`) and sends the resulting state to replicas and the AOF as
    /// `RL.APPLY`. `current` is this key's value as read by [`Key::value`] (and, for
    /// [`New::InPlace`], as updated since).
    pub fn write(
        &self,
        current: Option<ValueRef<'_>>,
        new: New,
        expiry: Expiry,
        effect: &Effect,
    ) -> Result<(), Error> {
        // The expiry the key will have, known before the value changes (storing never drops a
        // TTL: a new value goes into an empty key, a replaced one keeps the key's).
        let expire_at = match expiry {
            Expiry::Own(None) => self.expiry(),
            Expiry::Own(Some(at)) | Expiry::Exactly(Some(at)) => Some(at),
            Expiry::Exactly(None) => None,
        };
        let mut line = Line::new();
        // A new state's compact form, computed once for the line and the value.
        let mut new_compact = None;
        match (&new, &current) {
            (New::State(s), _) => {
                let state = s.as_ref();
                new_compact = compact(state);
                write_line_of(
                    state,
                    new_compact,
                    expire_at,
                    effect.set_policy,
                    &effect.records,
                    &mut line,
                );
            }
            (New::InPlace, Some(v)) => write_line(
                v.read().state(),
                expire_at,
                effect.set_policy,
                &effect.records,
                &mut line,
            ),
            (New::InPlace, None) => {
                return Err(Error::Internal("an in-place write on an empty key"))
            }
        }
        match (new, current) {
            (New::InPlace, _) => {}
            (New::State(state), Some(mut v)) => {
                if let Change::Replace(value) = v.value.put(state) {
                    self.replace(value)?;
                }
            }
            (New::State(state), None) => self.set(Value::new_of(state, new_compact))?,
        }
        match expiry {
            Expiry::Own(None) => {}
            _ => self.set_expiry(expire_at),
        }
        api!(RedisModule_SignalModifiedKey(self.ctx, self.name));
        propagate::replicate(self.ctx, self.name, &line);
        Ok(())
    }

    /// Deletes the key, signals the change and sends replicas and the AOF a `DEL` of it.
    pub fn delete(self) {
        api!(RedisModule_DeleteKey(self.key));
        api!(RedisModule_SignalModifiedKey(self.ctx, self.name));
        propagate::del(self.ctx, self.name);
    }

    /// Stores a new value in an empty key.
    fn set(&self, v: Value) -> Result<(), Error> {
        let raw_value = v.into_raw();
        match api!(RedisModule_ModuleTypeSetValue(
            self.key,
            rl_type(),
            raw_value
        )) {
            Some(r) if r == raw::REDISMODULE_OK as c_int => Ok(()),
            _ => {
                // SAFETY: Redis did not take the value.
                unsafe { Value::from_raw(raw_value).map(|v| v.free()) };
                Err(Error::Internal("ModuleTypeSetValue failed"))
            }
        }
    }

    /// Swaps the value of a key that holds ours, keeping its expiry, and frees the old one.
    fn replace(&self, v: Value) -> Result<(), Error> {
        let raw_value = v.into_raw();
        let mut old: *mut c_void = ptr::null_mut();
        match api!(RedisModule_ModuleTypeReplaceValue(
            self.key,
            rl_type(),
            raw_value,
            &mut old
        )) {
            Some(r) if r == raw::REDISMODULE_OK as c_int => {
                // SAFETY: Redis handed the old value back to us.
                unsafe { Value::from_raw(old).map(|v| v.free()) };
                Ok(())
            }
            _ => {
                // SAFETY: Redis did not take the value.
                unsafe { Value::from_raw(raw_value).map(|v| v.free()) };
                Err(Error::Internal("ModuleTypeReplaceValue failed"))
            }
        }
    }

    /// Sets an absolute expiry in Unix ms, or removes the expiry for `None`.
    fn set_expiry(&self, at_ms: Option<u64>) {
        match at_ms.and_then(|ms| c_longlong::try_from(ms).ok()) {
            Some(ms) => api!(RedisModule_SetAbsExpire(self.key, ms)),
            None => api!(RedisModule_SetExpire(
                self.key,
                c_longlong::from(raw::REDISMODULE_NO_EXPIRE)
            )),
        };
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        if !self.key.is_null() {
            api!(RedisModule_CloseKey(self.key));
        }
    }
}
