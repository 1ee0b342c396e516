//! A key opened by a command, and the one way to change it.
//!
//! [`Key::write`] is the only path by which a command stores a state: it stores the value
//! (in place when the layout allows), sets the expiry by the rule the caller names
//! ([`Expiry`]), tells `WATCH` the key changed, and sends the resulting state to replicas
//! and the AOF as `RL.APPLY` (`propagate.rs`). A new command cannot forget one of the four.
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
use rl_core::error::Error;
use rl_core::gcra::Tat;
use rl_core::policy::StoredPolicy;
use rl_core::state::{self, SetState};

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

/// A state to write: the TAT, and the stored policy when it is set by this write (`None`
/// keeps the policy a configured key has).
#[derive(Clone, Copy, Debug)]
pub struct Write {
    pub tat: Tat,
    pub set_policy: Option<StoredPolicy>,
    pub expiry: Expiry,
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

    /// The key's absolute expiry in Unix ms, if it has one.
    pub fn expiry(&self) -> Option<u64> {
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

    /// Stores `w`, applies its expiry rule, signals the change and replicates the result;
    /// `current` is this key's value as read by [`Key::value`].
    pub fn write(&self, current: Option<ValueRef<'_>>, w: Write) -> Result<(), Error> {
        let mut current = current.map(|r| r.value);
        match Value::change(current.as_mut(), w.tat, w.set_policy) {
            Change::InPlace => {}
            Change::Replace(new) => self.replace(new)?,
            Change::Create(new) => self.set(new)?,
        }
        let expire_at = self.apply_expiry(w.expiry);
        api!(RedisModule_SignalModifiedKey(self.ctx, self.name));
        propagate::apply(self.ctx, self.name, w.tat, expire_at, w.set_policy);
        Ok(())
    }

    /// [`Key::write`] for a whole state, of any shape (several limits, SLIDING logs, or a
    /// single GCRA limit, which keeps its compact layout and its version-1 `RL.APPLY`).
    /// `set_policy`: this write sets the stored limits (they are replicated with it).
    ///
    /// `records[i]`: the request usage `i` (a SLIDING log the replicas hold) just recorded, sent
    /// instead of the whole log (`state::Record`); ignored whenever the whole state is sent.
    pub fn write_state(
        &self,
        current: Option<ValueRef<'_>>,
        state: SetState,
        set_policy: bool,
        expiry: Expiry,
        records: &[Option<state::Record>],
    ) -> Result<(), Error> {
        if let Some((tat, stored)) = state.legacy() {
            // A key moving from a set to one GCRA limit gets a new value with the whole state.
            let from_set = current.as_ref().is_some_and(|v| v.is_set());
            let set_policy = (set_policy || from_set).then_some(stored).flatten();
            if from_set {
                let mut current = current.map(|r| r.value);
                if let Change::Replace(new) = Value::change_state(current.as_mut(), state) {
                    self.replace(new)?;
                }
                let expire_at = self.apply_expiry(expiry);
                api!(RedisModule_SignalModifiedKey(self.ctx, self.name));
                propagate::apply(self.ctx, self.name, tat, expire_at, set_policy);
                return Ok(());
            }
            return self.write(
                current,
                Write {
                    tat,
                    set_policy,
                    expiry,
                },
            );
        }
        let mut current_value = current.map(|r| r.value);
        // Replicas get the limits whenever this write sets them, and whenever the key was not
        // a set before (so a replica never has to combine a set's usages with another layout).
        let send_policy = set_policy || current_value.as_ref().is_none_or(|v| !v.is_set());
        let records = if send_policy { &[][..] } else { records };
        let (mut text, policy) = state::apply_text(&state, None, send_policy, records);
        match Value::change_state(current_value.as_mut(), state) {
            Change::InPlace => {}
            Change::Replace(new) => self.replace(new)?,
            Change::Create(new) => self.set(new)?,
        }
        let expire_at = self.apply_expiry(expiry);
        if let Some(at) = expire_at {
            state::append_expiry(&mut text, at);
        }
        api!(RedisModule_SignalModifiedKey(self.ctx, self.name));
        propagate::apply_set(self.ctx, self.name, &text, policy.as_deref());
        Ok(())
    }

    /// Applies an expiry rule and returns the key's resulting absolute expiry.
    fn apply_expiry(&self, expiry: Expiry) -> Option<u64> {
        match expiry {
            Expiry::Own(None) => self.expiry(),
            Expiry::Own(Some(at)) | Expiry::Exactly(Some(at)) => {
                self.set_expiry(Some(at));
                Some(at)
            }
            Expiry::Exactly(None) => {
                self.set_expiry(None);
                None
            }
        }
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
