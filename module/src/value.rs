//! In-memory layout of a `ratelimit` value, kept as small as the data allows.
//!
//! Redis keeps one pointer-sized word per module value and hands it back to our callbacks;
//! it never dereferences it. Four layouts share that word:
//!
//! - **Inline** (most keys): a usage-only TAT packed into the word itself, tagged by its low
//!   bit (heap pointers are 8-aligned, so theirs is 0): `[ms:44][frac:9][den:9][tag:1]`.
//!   It fits whenever the TAT, in lowest terms, has a denominator below 512 (always when
//!   `window_ms / limit` is a whole number of ms, and for any limit below 512) and lies
//!   before 2^44 ms (year 2527). No allocation at all: a new client costs only Redis's own
//!   per-key structures.
//! - **Usage** (16 bytes): a usage-only TAT that does not fit inline.
//! - **Configured** (48 bytes): a key written by `RL.CONFIG`: a `Usage` followed by its
//!   policy. The top bit of the stored denominator (at most 10^9 < 2^30) marks it.
//! - **Set** (48 bytes, plus its usages and logs): every other key, one with several limits or
//!   a SLIDING one ([`SetState`]): a `Usage` header marked by bit 30 of its denominator,
//!   the usages, and the stored limits (boxed: usage-only keys, the many, do not pay for
//!   them). The three layouts above stay what they were, so a single-GCRA key costs and runs
//!   exactly as before.
//!
//! TATs are stored in lowest terms ([`Tat::reduced`]), so a state has one representation on
//! every server. Every value made here is counted in `live_buckets` (`INFO rl`) until freed.
//! A [`Value`] is the word itself; heap layouts keep the pointer's full provenance, and only
//! this file allocates, frees or casts it.

use std::ffi::c_void;
use std::mem::size_of;
use std::ptr::{self, NonNull};
use std::sync::atomic::Ordering;

use crate::metrics::LIVE_BUCKETS;
use rl_core::gcra::Tat;
use rl_core::limits::{StoredLimits, Usage as LimitUsage};
use rl_core::policy::StoredPolicy;
use rl_core::state::SetState;

#[cfg(not(target_pointer_width = "64"))]
compile_error!("the inline layout packs a TAT into a 64-bit module value word");

/// Top bit of `den_flags`: the allocation is a [`Configured`].
const CONFIGURED: u32 = 1 << 31;
/// Bit 30 of `den_flags`: the allocation is a [`Set`].
const SET: u32 = 1 << 30;

const INLINE_TAG: u64 = 1;
const INLINE_FIELD_BITS: u32 = 9;
const INLINE_FIELD_MASK: u64 = (1 << INLINE_FIELD_BITS) - 1;
const INLINE_MS_LIMIT: u64 = 1 << 44;

/// A TAT with the allocation's kind folded into its denominator.
#[repr(C)]
pub struct Usage {
    ms: u64,
    frac: u32,
    den_flags: u32,
}

/// A key written by `RL.CONFIG`.
#[repr(C)]
pub struct Configured {
    usage: Usage,
    stored: StoredPolicy,
}

/// A key with several limits or a SLIDING one.
#[repr(C)]
pub struct Set {
    /// Marks the layout (`den_flags` has [`SET`]); its TAT is unused.
    head: Usage,
    usage: Vec<LimitUsage>,
    stored: Option<Box<StoredLimits>>,
}

impl Usage {
    fn new(tat: Tat, flags: u32) -> Usage {
        // Tat guarantees frac < den <= 10^9, so both fit in u32 and den leaves the top bit free.
        Usage {
            ms: tat.ms(),
            frac: u32::try_from(tat.frac()).unwrap_or(0),
            den_flags: u32::try_from(tat.den()).unwrap_or(1) | flags,
        }
    }

    fn tat(&self) -> Tat {
        let den = u64::from(self.den_flags & !(CONFIGURED | SET));
        // Always valid: only `Usage::new` writes these fields, from a valid Tat.
        Tat::new(self.ms, u64::from(self.frac), den).unwrap_or(Tat::EMPTY)
    }
}

/// The word for a reduced TAT, if it fits inline.
fn encode_inline(tat: Tat) -> Option<u64> {
    if tat.ms() >= INLINE_MS_LIMIT || tat.den() > INLINE_FIELD_MASK {
        return None;
    }
    let fields = (tat.frac() << INLINE_FIELD_BITS) | tat.den();
    Some((tat.ms() << (2 * INLINE_FIELD_BITS + 1)) | (fields << 1) | INLINE_TAG)
}

fn decode_inline(word: u64) -> Tat {
    let den = (word >> 1) & INLINE_FIELD_MASK;
    let frac = (word >> (INLINE_FIELD_BITS + 1)) & INLINE_FIELD_MASK;
    let ms = word >> (2 * INLINE_FIELD_BITS + 1);
    // Always valid: only encode_inline makes these words, from a valid Tat.
    Tat::new(ms, frac, den).unwrap_or(Tat::EMPTY)
}

enum Repr {
    Inline(Tat),
    Usage(NonNull<Usage>),
    Configured(NonNull<Configured>),
    Set(NonNull<Set>),
}

/// One `ratelimit` value: the word Redis stores for the key.
pub struct Value(NonNull<c_void>);

/// How a key takes a new state, decided by [`Value::change`] and carried out by `key.rs`.
pub enum Change {
    /// The current value was updated in place.
    InPlace,
    /// Swap this new value in (Redis hands back the old one, which is then freed).
    Replace(Value),
    /// The key was empty: set this new value.
    Create(Value),
}

impl Value {
    /// A new usage-only value: inline when it fits.
    pub fn new_usage(tat: Tat) -> Value {
        LIVE_BUCKETS.fetch_add(1, Ordering::Relaxed);
        let tat = tat.reduced();
        if let Some(word) = encode_inline(tat).and_then(|w| usize::try_from(w).ok()) {
            // A tagged word, never dereferenced; never null since its tag bit is 1.
            if let Some(p) = NonNull::new(ptr::without_provenance_mut(word)) {
                return Value(p);
            }
        }
        Value(NonNull::from(Box::leak(Box::new(Usage::new(tat, 0)))).cast())
    }

    /// A new value holding a policy.
    pub fn new_configured(tat: Tat, stored: StoredPolicy) -> Value {
        LIVE_BUCKETS.fetch_add(1, Ordering::Relaxed);
        let b = Box::new(Configured {
            usage: Usage::new(tat.reduced(), CONFIGURED),
            stored,
        });
        Value(NonNull::from(Box::leak(b)).cast())
    }

    /// Makes a key whose value is `current` (`None`: empty) hold `tat` and, when given, the
    /// policy `set_policy` (`None` keeps the policy a configured value has). In place when
    /// the layout allows; otherwise a new value: an inline value cannot change in place, a
    /// usage value moves to the smallest layout that fits, and a usage-only value has no
    /// room for a policy.
    pub fn change(
        current: Option<&mut Value>,
        tat: Tat,
        set_policy: Option<StoredPolicy>,
    ) -> Change {
        let Some(v) = current else {
            return Change::Create(match set_policy {
                Some(s) => Value::new_configured(tat, s),
                None => Value::new_usage(tat),
            });
        };
        if let Some(s) = set_policy {
            if !v.set_stored(s) {
                return Change::Replace(Value::new_configured(tat, s));
            }
        }
        match v.with_tat(tat) {
            Some(new) => Change::Replace(new),
            None => Change::InPlace,
        }
    }

    /// Adopts a word that Redis handed back; not owned: it is freed only through `free`.
    ///
    /// # Safety
    /// `p` must be null or a word returned by [`Value::into_raw`] and not yet freed, and
    /// the returned handle must not outlive the key's value (`key.rs` ties it to the key).
    pub unsafe fn from_raw(p: *mut c_void) -> Option<Value> {
        NonNull::new(p).map(Value)
    }

    /// The word to hand to Redis; the value now belongs to the key.
    pub fn into_raw(self) -> *mut c_void {
        self.0.as_ptr()
    }

    fn repr(&self) -> Repr {
        let word = self.0.as_ptr().addr() as u64;
        if word & INLINE_TAG != 0 {
            return Repr::Inline(decode_inline(word));
        }
        let usage = self.0.cast::<Usage>();
        // SAFETY: an untagged word is a live Usage, or a live Configured or Set starting with one.
        let flags = unsafe { usage.as_ref().den_flags };
        if flags & CONFIGURED != 0 {
            Repr::Configured(self.0.cast())
        } else if flags & SET != 0 {
            Repr::Set(self.0.cast())
        } else {
            Repr::Usage(usage)
        }
    }

    /// The TAT of a single-GCRA key. A [`Value::is_set`] key has none (it reads as empty):
    /// read it with [`Value::state`].
    pub fn tat(&self) -> Tat {
        match self.repr() {
            Repr::Inline(tat) => tat,
            // SAFETY: repr() checked the layout.
            Repr::Usage(u) => unsafe { u.as_ref().tat() },
            Repr::Configured(c) => unsafe { c.as_ref().usage.tat() },
            Repr::Set(_) => Tat::EMPTY,
        }
    }

    /// A key with several limits or a SLIDING one: its state is read with [`Value::state`],
    /// never with [`Value::tat`] and [`Value::stored`].
    pub fn is_set(&self) -> bool {
        matches!(self.repr(), Repr::Set(_))
    }

    /// The whole state, whatever the layout (allocates: for the commands on sets and the
    /// type callbacks, not the single-GCRA path).
    pub fn state(&self) -> SetState {
        match self.repr() {
            // SAFETY: repr() checked the layout.
            Repr::Set(v) => unsafe {
                let v = v.as_ref();
                SetState {
                    usage: v.usage.clone(),
                    stored: v.stored.as_deref().copied(),
                }
            },
            _ => SetState::from_legacy(self.tat(), self.stored()),
        }
    }

    /// A new value for `state`: a single-GCRA state takes the layouts above.
    pub fn new_state(state: SetState) -> Value {
        if let Some((tat, stored)) = state.legacy() {
            return match stored {
                Some(s) => Value::new_configured(tat, s),
                None => Value::new_usage(tat),
            };
        }
        LIVE_BUCKETS.fetch_add(1, Ordering::Relaxed);
        let b = Box::new(Set {
            head: Usage {
                ms: 0,
                frac: 0,
                den_flags: 1 | SET,
            },
            usage: state.usage,
            stored: state.stored.map(Box::new),
        });
        Value(NonNull::from(Box::leak(b)).cast())
    }

    /// Makes a key whose value is `current` (`None`: empty) hold the whole `state`: in place
    /// when both are sets, a new value otherwise (which also moves a key between the
    /// single-GCRA layouts and this one as its limits change).
    pub fn change_state(current: Option<&mut Value>, state: SetState) -> Change {
        let Some(v) = current else {
            return Change::Create(Value::new_state(state));
        };
        match v.repr() {
            Repr::Set(mut s) if state.legacy().is_none() => {
                // SAFETY: repr() checked the layout; the header is left as it is.
                let s = unsafe { s.as_mut() };
                s.usage = state.usage;
                s.stored = state.stored.map(Box::new);
                Change::InPlace
            }
            _ => Change::Replace(Value::new_state(state)),
        }
    }

    /// Records a new TAT. Heap values are updated in place (`None`); an inline value cannot
    /// be, and a usage value moves to the smallest layout that fits, so then the new value
    /// is returned for the caller to swap in (which frees this one).
    #[must_use]
    fn with_tat(&mut self, tat: Tat) -> Option<Value> {
        let tat = tat.reduced();
        match self.repr() {
            Repr::Configured(mut c) => {
                // SAFETY: repr() checked the layout; the kind bit is set again.
                unsafe { c.as_mut().usage = Usage::new(tat, CONFIGURED) };
                None
            }
            Repr::Usage(mut u) if encode_inline(tat).is_none() => {
                // SAFETY: repr() checked the layout.
                unsafe { *u.as_mut() = Usage::new(tat, 0) };
                None
            }
            Repr::Usage(_) | Repr::Inline(_) | Repr::Set(_) => Some(Value::new_usage(tat)),
        }
    }

    /// The stored policy, for a key written by `RL.CONFIG`.
    pub fn stored(&self) -> Option<StoredPolicy> {
        match self.repr() {
            // SAFETY: repr() checked the layout.
            Repr::Configured(c) => Some(unsafe { c.as_ref().stored }),
            _ => None,
        }
    }

    /// Replaces the stored policy in place; `false` for a usage-only value, which has no room
    /// for one (the caller swaps in a `new_configured` value instead).
    fn set_stored(&mut self, stored: StoredPolicy) -> bool {
        match self.repr() {
            Repr::Configured(mut c) => {
                // SAFETY: repr() checked the layout.
                unsafe { c.as_mut().stored = stored };
                true
            }
            _ => false,
        }
    }

    /// Bytes this value allocated, for `MEMORY USAGE`.
    pub fn mem_usage(&self) -> usize {
        match self.repr() {
            Repr::Inline(_) => 0,
            Repr::Usage(_) => size_of::<Usage>(),
            Repr::Configured(_) => size_of::<Configured>(),
            // SAFETY: repr() checked the layout.
            Repr::Set(s) => unsafe {
                let s = s.as_ref();
                let logs: usize = s
                    .usage
                    .iter()
                    .map(|u| match u {
                        LimitUsage::Sliding(log) => log.heap_bytes(),
                        LimitUsage::Gcra(_) => 0,
                    })
                    .sum();
                size_of::<Set>()
                    + s.usage.capacity() * size_of::<LimitUsage>()
                    + s.stored.as_ref().map_or(0, |_| size_of::<StoredLimits>())
                    + logs
            },
        }
    }

    /// A deep copy, for `COPY`.
    pub fn duplicate(&self) -> Value {
        if self.is_set() {
            return Value::new_state(self.state());
        }
        match self.stored() {
            Some(stored) => Value::new_configured(self.tat(), stored),
            None => Value::new_usage(self.tat()),
        }
    }

    /// Frees the value.
    ///
    /// # Safety
    /// The value must no longer be reachable from Redis.
    pub unsafe fn free(self) {
        LIVE_BUCKETS.fetch_sub(1, Ordering::Relaxed);
        match self.repr() {
            Repr::Inline(_) => {}
            Repr::Usage(u) => drop(Box::from_raw(u.as_ptr())),
            Repr::Configured(c) => drop(Box::from_raw(c.as_ptr())),
            Repr::Set(v) => drop(Box::from_raw(v.as_ptr())),
        }
    }
}

#[cfg(test)]
#[path = "value_tests.rs"]
mod tests;
