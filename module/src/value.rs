//! In-memory layout of a `ratelimit` value, kept as small as the data allows.
//!
//! Redis keeps one pointer-sized word per module value and hands it back to our callbacks;
//! it never dereferences it. Four layouts share that word, chosen from the state alone (one
//! pipeline writes them all: `Key::write` with a [`State`], or in place):
//!
//! - **Inline** (most keys): a usage-only key of one GCRA limit, its TAT packed into the word
//!   itself, tagged by its low bit (heap pointers are 8-aligned, so theirs is 0):
//!   `[ms:44][frac:9][den:9][tag:1]`. It fits whenever the TAT, in lowest terms, has a
//!   denominator below 512 (always when `window_ms / limit` is a whole number of ms, and for
//!   any limit below 512) and lies before 2^44 ms (year 2527). No allocation at all.
//! - **Usage** (16 bytes): such a TAT that does not fit inline.
//! - **Configured** (48 bytes): one GCRA limit stored by `RL.CONFIG`: a `Usage` followed by
//!   its policy. The top bit of the stored denominator (at most 10^9 < 2^30) marks it.
//! - **General** (32 bytes and 40 per usage, in one allocation, plus the usages' logs and
//!   leases, a stored policy and key-level parts): every other state (several limits, SLIDING
//!   or CONCURRENCY limits, a pending reconfiguration, a penalty, holds, a block, an id
//!   sequence). A header marked by bit 30 of its denominator word, holding the pending instant
//!   and the number of usages, then the usages, updated in place (a log grows in its own
//!   buffer); the stored policy and the key-level parts boxed, so the many keys that have
//!   neither do not pay for them.
//!
//! TATs are stored in lowest terms, so a state has one representation on every server. Every
//! value made here is counted in `live_buckets` (`INFO rl`) until freed. A [`Value`] is the
//! word itself; heap layouts keep the pointer's full provenance, and only this file
//! allocates, frees or casts it.

use std::alloc::Layout;
use std::ffi::c_void;
use std::mem::size_of;
use std::ptr::{self, NonNull};
use std::sync::atomic::Ordering;

use crate::metrics::LIVE_BUCKETS;
use rl_core::kinds::gcra::{Gcra, Tat};
use rl_core::kinds::{Limit, Usage as CoreUsage};
use rl_core::parts::Parts;
use rl_core::policy::{PenaltyField, Policy, Stored, FLAG_SHADOW};
use rl_core::rdb::{compact, Compact, CompactStored};
use rl_core::state::{State, StateRef};

#[cfg(not(target_pointer_width = "64"))]
compile_error!("the inline layout packs a TAT into a 64-bit module value word");

/// Top bit of `den_flags`: the allocation is a [`Configured`].
const CONFIGURED: u32 = 1 << 31;
/// Bit 30 of `den_flags`: the allocation is a [`General`].
const GENERAL: u32 = 1 << 30;
/// Bit 0 of a [`General`]'s `den_flags` (its head holds no TAT, so no denominator): a
/// reconfiguration is pending, since `head.ms`.
const PENDING: u32 = 1;

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

/// One GCRA limit as `RL.CONFIG` stores it, in 32 bytes.
#[derive(Clone, Copy)]
#[repr(C)]
struct OneLimit {
    gcra: Gcra,
    idle_ms: u64,
    shadow: bool,
}

/// A key of one GCRA limit written by `RL.CONFIG`.
#[repr(C)]
pub struct Configured {
    usage: Usage,
    stored: OneLimit,
}

/// Every other state: this header, then `head.frac` usages in the same allocation (one
/// allocation per key whatever its number of limits; see [`General::layout`]).
#[repr(C)]
pub struct General {
    /// Marks the layout (`den_flags` has [`GENERAL`]); `ms` is the pending instant when
    /// `den_flags` has [`PENDING`]; `frac` is the number of usages (at most four).
    head: Usage,
    stored: Option<Box<Stored>>,
    parts: Option<Box<Parts>>,
}

impl General {
    /// The allocation of a header with `len` usages after it (their alignment is the header's).
    fn layout(len: usize) -> Option<Layout> {
        let usages = Layout::array::<CoreUsage>(len).ok()?;
        let (layout, offset) = Layout::new::<General>().extend(usages).ok()?;
        (offset == size_of::<General>()).then(|| layout.pad_to_align())
    }

    /// How many usages follow the header.
    fn len(&self) -> usize {
        self.head.frac as usize
    }

    /// The usages after the header.
    fn usages(&self) -> &[CoreUsage] {
        // SAFETY: `new_general` wrote `len` initialised usages right after the header, and
        // they live as long as the header.
        unsafe {
            let first = ptr::from_ref(self).add(1).cast::<CoreUsage>();
            std::slice::from_raw_parts(first, self.len())
        }
    }

    fn usages_mut(&mut self) -> &mut [CoreUsage] {
        // SAFETY: as in `usages`, and `&mut self` borrows the whole allocation.
        unsafe {
            let first = ptr::from_mut(self).add(1).cast::<CoreUsage>();
            std::slice::from_raw_parts_mut(first, self.len())
        }
    }

    fn set_pending(&mut self, pending_at_ms: Option<u64>) {
        self.head.ms = pending_at_ms.unwrap_or(0);
        self.head.den_flags = GENERAL | if pending_at_ms.is_some() { PENDING } else { 0 };
    }
}

impl Usage {
    fn new(tat: Tat, flags: u32) -> Usage {
        // Tat guarantees frac < den <= 10^9, so both fit in u32 and den leaves the top bits free.
        Usage {
            ms: tat.ms(),
            frac: u32::try_from(tat.frac()).unwrap_or(0),
            den_flags: u32::try_from(tat.den()).unwrap_or(1) | flags,
        }
    }

    fn tat(&self) -> Tat {
        let den = u64::from(self.den_flags & !(CONFIGURED | GENERAL));
        // Always valid: only `Usage::new` writes these fields, from a valid Tat.
        Tat::new(self.ms, u64::from(self.frac), den).unwrap_or(Tat::EMPTY)
    }
}

impl From<CompactStored> for OneLimit {
    fn from(c: CompactStored) -> OneLimit {
        OneLimit {
            gcra: c.gcra,
            idle_ms: c.idle_ms,
            shadow: c.flags & FLAG_SHADOW != 0,
        }
    }
}

impl OneLimit {
    fn stored(&self) -> Stored {
        Stored {
            policy: Policy::single(Limit::Gcra(self.gcra)),
            idle_ms: self.idle_ms,
            shadow: self.shadow,
            penalty: PenaltyField::NONE,
        }
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
    General(NonNull<General>),
}

/// One `ratelimit` value: the word Redis stores for the key.
pub struct Value(NonNull<c_void>);

/// How a key takes a new state, decided by [`Value::put`] and carried out by `key.rs`.
pub enum Change {
    /// The current value was updated in place.
    InPlace,
    /// Swap this new value in (Redis hands back the old one, which is then freed).
    Replace(Value),
}

/// A value's state, borrowed: the compact layouts' one usage and policy are unpacked onto
/// the stack (no allocation), a general value's parts are borrowed.
pub struct Read<'v> {
    one: [CoreUsage; 1],
    one_stored: Option<Stored>,
    general: Option<&'v General>,
}

impl Read<'_> {
    pub fn state(&self) -> StateRef<'_> {
        match self.general {
            Some(g) => StateRef {
                usages: g.usages(),
                stored: g.stored.as_deref(),
                pending_at_ms: (g.head.den_flags & PENDING != 0).then_some(g.head.ms),
                parts: g.parts.as_deref(),
            },
            None => StateRef {
                usages: &self.one,
                stored: self.one_stored.as_ref(),
                pending_at_ms: None,
                parts: None,
            },
        }
    }
}

impl Value {
    /// A new value holding `state`, in the smallest layout that holds it (a general state's
    /// logs are moved into it, leaving `state`'s usages empty).
    pub fn new(state: &mut State) -> Value {
        let c = compact(state.as_ref());
        Value::new_of(state, c)
    }

    /// [`Value::new`] for a caller that has computed the state's [`compact`] form.
    #[inline]
    pub fn new_of(state: &mut State, compact: Option<Compact>) -> Value {
        LIVE_BUCKETS.fetch_add(1, Ordering::Relaxed);
        match compact {
            Some(Compact { tat, stored: None }) => Value::usage(tat),
            Some(Compact {
                tat,
                stored: Some(c),
            }) => {
                let b = Box::new(Configured {
                    usage: Usage::new(tat.reduced(), CONFIGURED),
                    stored: OneLimit::from(c),
                });
                Value(NonNull::from(Box::leak(b)).cast())
            }
            None => Value::general(state),
        }
    }

    /// A usage-only value of one GCRA limit: inline when it fits (not counted: callers count).
    fn usage(tat: Tat) -> Value {
        let tat = tat.reduced();
        if let Some(word) = encode_inline(tat).and_then(|w| usize::try_from(w).ok()) {
            // A tagged word, never dereferenced; never null since its tag bit is 1.
            if let Some(p) = NonNull::new(ptr::without_provenance_mut(word)) {
                return Value(p);
            }
        }
        Value(NonNull::from(Box::leak(Box::new(Usage::new(tat, 0)))).cast())
    }

    /// A general value holding `state` (its usages are moved in, leaving `state`'s empty).
    fn general(state: &mut State) -> Value {
        let all = state.usages.len();
        // At most four usages: the layout always exists (without it, none would be kept).
        let (layout, len) = match General::layout(all) {
            Some(layout) => (layout, all),
            None => (Layout::new::<General>(), 0),
        };
        // SAFETY: the layout has a non-zero size (the header); an allocation failure aborts
        // like any allocation in the module (Redis's allocator).
        let raw = unsafe { std::alloc::alloc(layout) }.cast::<General>();
        let Some(header) = NonNull::new(raw) else {
            std::alloc::handle_alloc_error(layout)
        };
        let mut general = General {
            head: Usage {
                ms: 0,
                // At most four.
                frac: u32::try_from(len).unwrap_or(0),
                den_flags: GENERAL,
            },
            stored: state.stored.map(Box::new),
            parts: state.parts.take(),
        };
        general.set_pending(state.pending_at_ms);
        // SAFETY: the allocation holds the header and `len` usages after it (`General::layout`),
        // and `state.usages` holds at least `len` initialised usages, which are moved (bitwise)
        // into it: the originals are then forgotten, never dropped, so each is owned once.
        // (Moved one by one through the array's iterator, they cost about 60 instructions more
        // per write of a general value: the copies and the drop of the iterator's remainder.)
        unsafe {
            header.as_ptr().write(general);
            let first = header.as_ptr().add(1).cast::<CoreUsage>();
            ptr::copy_nonoverlapping(state.usages.as_ptr(), first, len);
        }
        let moved = state.usages.take();
        if len == all {
            std::mem::forget(moved);
        }
        Value(header.cast())
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
        // SAFETY: an untagged word is a live Usage, or a live Configured or General starting with one.
        let flags = unsafe { usage.as_ref().den_flags };
        if flags & CONFIGURED != 0 {
            Repr::Configured(self.0.cast())
        } else if flags & GENERAL != 0 {
            Repr::General(self.0.cast())
        } else {
            Repr::Usage(usage)
        }
    }

    /// The value's state, borrowed (see [`Read`]).
    pub fn read(&self) -> Read<'_> {
        match self.repr() {
            Repr::Inline(tat) => Read {
                one: [CoreUsage::Gcra(tat)],
                one_stored: None,
                general: None,
            },
            // SAFETY (all three): repr() checked the layout; the borrow is tied to `self`.
            Repr::Usage(u) => Read {
                one: [CoreUsage::Gcra(unsafe { u.as_ref() }.tat())],
                one_stored: None,
                general: None,
            },
            Repr::Configured(c) => {
                let c = unsafe { c.as_ref() };
                Read {
                    one: [CoreUsage::Gcra(c.usage.tat())],
                    one_stored: Some(c.stored.stored()),
                    general: None,
                }
            }
            Repr::General(g) => Read {
                one: [CoreUsage::Gcra(Tat::EMPTY)],
                one_stored: None,
                general: Some(unsafe { g.as_ref() }),
            },
        }
    }

    /// A general value's usages, to update in place (`None` for the compact layouts, whose
    /// one usage is unpacked by [`Value::read`] and written back by [`Value::put`]).
    pub fn usages_mut(&mut self) -> Option<&mut [CoreUsage]> {
        match self.repr() {
            // SAFETY: repr() checked the layout; the borrow is tied to `self`.
            Repr::General(mut g) => Some(unsafe { g.as_mut().usages_mut() }),
            _ => None,
        }
    }

    /// A general value's usages and key-level parts, to update in place (`None` for the
    /// compact layouts, which have no parts).
    pub fn usages_and_parts_mut(&mut self) -> Option<(&mut [CoreUsage], &mut Option<Box<Parts>>)> {
        match self.repr() {
            // SAFETY: repr() checked the layout; the allocation holds the header and `len`
            // initialised usages right after it (`Value::general`), which do not overlap the
            // header's `parts`; both borrows are tied to `self`.
            Repr::General(g) => unsafe {
                let header = g.as_ptr();
                let first = header.add(1).cast::<CoreUsage>();
                let usages = std::slice::from_raw_parts_mut(first, (*header).len());
                Some((usages, &mut (*header).parts))
            },
            _ => None,
        }
    }

    /// Whether the value is in the general layout (its replicas hold its logs as a set).
    pub fn is_general(&self) -> bool {
        matches!(self.repr(), Repr::General(_))
    }

    /// Makes this value hold `state`: in place when the layout allows; otherwise a new value
    /// for the caller to swap in (an inline value cannot change in place, a usage value moves
    /// to the smallest layout that fits, and the layout follows the state's shape).
    pub fn put(&mut self, state: &mut State) -> Change {
        match (self.repr(), compact(state.as_ref())) {
            (
                Repr::Configured(mut c),
                Some(Compact {
                    tat,
                    stored: Some(s),
                }),
            ) => {
                // SAFETY: repr() checked the layout.
                let c = unsafe { c.as_mut() };
                c.usage = Usage::new(tat.reduced(), CONFIGURED);
                c.stored = OneLimit::from(s);
                Change::InPlace
            }
            (Repr::Usage(mut u), Some(Compact { tat, stored: None }))
                if encode_inline(tat.reduced()).is_none() =>
            {
                // SAFETY: repr() checked the layout.
                unsafe { *u.as_mut() = Usage::new(tat.reduced(), 0) };
                Change::InPlace
            }
            (Repr::General(mut g), None) if unsafe { g.as_ref() }.len() == state.usages.len() => {
                // SAFETY: repr() checked the layout; same number of usages: swapped in place
                // (the old ones go to `state`, which drops them).
                let g = unsafe { g.as_mut() };
                for (slot, u) in g.usages_mut().iter_mut().zip(state.usages.iter_mut()) {
                    std::mem::swap(slot, u);
                }
                match (&mut g.stored, state.stored) {
                    (Some(old), Some(new)) => **old = new,
                    (slot, new) => *slot = new.map(Box::new),
                }
                std::mem::swap(&mut g.parts, &mut state.parts);
                g.set_pending(state.pending_at_ms);
                Change::InPlace
            }
            _ => Change::Replace(Value::new(state)),
        }
    }

    /// The whole state, owned (allocates for logs: for the type callbacks, not the hot path).
    pub fn state(&self) -> State {
        self.read().state().to_state()
    }

    /// Bytes this value allocated, for `MEMORY USAGE`.
    pub fn mem_usage(&self) -> usize {
        match self.repr() {
            Repr::Inline(_) => 0,
            Repr::Usage(_) => size_of::<Usage>(),
            Repr::Configured(_) => size_of::<Configured>(),
            // SAFETY: repr() checked the layout.
            Repr::General(g) => unsafe {
                let g = g.as_ref();
                General::layout(g.len()).map_or(0, |l| l.size())
                    + g.usages().iter().map(CoreUsage::heap_bytes).sum::<usize>()
                    + g.stored.as_ref().map_or(0, |_| size_of::<Stored>())
                    + g.parts
                        .as_ref()
                        .map_or(0, |p| size_of::<Parts>() + p.heap_bytes())
            },
        }
    }

    /// A deep copy, for `COPY`.
    pub fn duplicate(&self) -> Value {
        Value::new(&mut self.state())
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
            Repr::General(g) => {
                let len = g.as_ref().len();
                let usages = g.as_ptr().add(1).cast::<CoreUsage>();
                for i in 0..len {
                    ptr::drop_in_place(usages.add(i));
                }
                ptr::drop_in_place(g.as_ptr());
                let layout = General::layout(len).unwrap_or(Layout::new::<General>());
                std::alloc::dealloc(g.as_ptr().cast(), layout);
            }
        }
    }
}

#[cfg(test)]
#[path = "value_tests.rs"]
mod tests;
