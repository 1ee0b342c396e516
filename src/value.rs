//! In-memory layout of a `ratelimit` value, kept as small as the data allows.
//!
//! Most keys only hold usage: a client seen under the default or an inline policy. They are
//! a 16-byte [`Usage`] (the TAT). Keys written by `RL.CONFIG` also hold their policy: a
//! [`Configured`], whose first field is the same `Usage`. The two are told apart by the top
//! bit of the stored denominator (a denominator is a limit, at most 10^9 < 2^30), so the
//! common case pays 16 bytes instead of the 40 a single struct with an optional policy would
//! take after allocator rounding (48 with the shadow flag), and one pointer serves as the Redis module value.
//!
//! Every value made here is counted in `live_buckets` (`INFO rl`) until it is freed.
//!
//! A [`Bucket`] is the raw module-value pointer; it keeps the pointer's full provenance (no
//! `&Usage` is ever widened back to a `Configured`), and only this file allocates, frees or
//! casts it.

use std::ffi::c_void;
use std::mem::size_of;
use std::ptr::NonNull;
use std::sync::atomic::Ordering;

use crate::bucket::Tat;
use crate::metrics::LIVE_BUCKETS;
use crate::policy::StoredPolicy;

/// Top bit of `den_flags`: the allocation is a [`Configured`].
const CONFIGURED: u32 = 1 << 31;

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
        let den = u64::from(self.den_flags & !CONFIGURED);
        // Always valid: only `Usage::new` writes these fields, from a valid Tat.
        Tat::new(self.ms, u64::from(self.frac), den).unwrap_or(Tat::EMPTY)
    }
}

/// One `ratelimit` value, as the pointer Redis stores for the key.
pub struct Bucket(NonNull<Usage>);

impl Bucket {
    /// A new usage-only value.
    pub fn new_usage(tat: Tat) -> Bucket {
        LIVE_BUCKETS.fetch_add(1, Ordering::Relaxed);
        let b = Box::new(Usage::new(tat, 0));
        Bucket(NonNull::from(Box::leak(b)))
    }

    /// A new value holding a policy.
    pub fn new_configured(tat: Tat, stored: StoredPolicy) -> Bucket {
        LIVE_BUCKETS.fetch_add(1, Ordering::Relaxed);
        let b = Box::new(Configured {
            usage: Usage::new(tat, CONFIGURED),
            stored,
        });
        Bucket(NonNull::from(Box::leak(b)).cast())
    }

    /// Adopts a pointer that Redis handed back.
    ///
    /// # Safety
    /// `p` must be null or a pointer returned by [`Bucket::into_raw`] and not yet freed, and
    /// the returned handle must not outlive the key's value.
    pub unsafe fn from_raw(p: *mut c_void) -> Option<Bucket> {
        NonNull::new(p.cast::<Usage>()).map(Bucket)
    }

    /// The pointer to hand to Redis; the allocation now belongs to the key.
    pub fn into_raw(self) -> *mut c_void {
        self.0.as_ptr().cast()
    }

    fn is_configured(&self) -> bool {
        // SAFETY: the pointer is a live Usage or a live Configured starting with one.
        unsafe { self.0.as_ref().den_flags & CONFIGURED != 0 }
    }

    fn configured(&self) -> Option<NonNull<Configured>> {
        self.is_configured().then(|| self.0.cast::<Configured>())
    }

    pub fn tat(&self) -> Tat {
        // SAFETY: see is_configured.
        unsafe { self.0.as_ref().tat() }
    }

    pub fn set_tat(&mut self, tat: Tat) {
        // SAFETY: see is_configured; the kind bit is carried over unchanged.
        unsafe {
            let u = self.0.as_mut();
            *u = Usage::new(tat, u.den_flags & CONFIGURED);
        }
    }

    /// The stored policy, for a key written by `RL.CONFIG`.
    pub fn stored(&self) -> Option<StoredPolicy> {
        // SAFETY: the flag says the allocation is a Configured.
        self.configured().map(|c| unsafe { c.as_ref().stored })
    }

    /// Replaces the stored policy in place; `false` for a usage-only value, which has no room
    /// for one (the caller swaps in a `new_configured` value instead).
    pub fn set_stored(&mut self, stored: StoredPolicy) -> bool {
        match self.configured() {
            Some(mut c) => {
                // SAFETY: the flag says the allocation is a Configured.
                unsafe { c.as_mut().stored = stored };
                true
            }
            None => false,
        }
    }

    /// Bytes this value allocated, for `MEMORY USAGE`.
    pub fn mem_usage(&self) -> usize {
        if self.is_configured() {
            size_of::<Configured>()
        } else {
            size_of::<Usage>()
        }
    }

    /// A deep copy, for `COPY`.
    pub fn duplicate(&self) -> Bucket {
        match self.stored() {
            Some(stored) => Bucket::new_configured(self.tat(), stored),
            None => Bucket::new_usage(self.tat()),
        }
    }

    /// Frees the allocation.
    ///
    /// # Safety
    /// The value must no longer be reachable from Redis.
    pub unsafe fn free(self) {
        LIVE_BUCKETS.fetch_sub(1, Ordering::Relaxed);
        if let Some(c) = self.configured() {
            drop(Box::from_raw(c.as_ptr()));
        } else {
            drop(Box::from_raw(self.0.as_ptr()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;

    fn stored() -> StoredPolicy {
        StoredPolicy::new(Policy::new(10, 60_000, 20).unwrap(), 5000).unwrap()
    }

    #[test]
    fn usage_only_values_take_sixteen_bytes() {
        assert_eq!(size_of::<Usage>(), 16);
        let b = Bucket::new_usage(Tat::EMPTY);
        assert_eq!(b.mem_usage(), 16);
        unsafe { b.free() };
    }

    #[test]
    fn both_kinds_keep_their_tat_and_policy() {
        let tat = Tat::new(1_700_000_000_123, 7, 9).unwrap();
        let mut u = Bucket::new_usage(tat);
        let mut c = Bucket::new_configured(tat, stored());
        assert_eq!((u.tat(), u.stored()), (tat, None));
        assert_eq!((c.tat(), c.stored()), (tat, Some(stored())));
        let later = Tat::new(1_800_000_000_000, 0, 1_000_000_000).unwrap();
        u.set_tat(later);
        c.set_tat(later);
        assert_eq!((u.tat(), u.stored()), (later, None));
        assert_eq!((c.tat(), c.stored()), (later, Some(stored())));
        assert!(!u.set_stored(stored()));
        let other = StoredPolicy::new(Policy::new(1, 1, 1).unwrap(), 0).unwrap();
        assert!(c.set_stored(other));
        assert_eq!(c.stored(), Some(other));
        unsafe {
            u.free();
            c.free();
        }
    }

    #[test]
    fn duplicate_is_deep_and_round_trips_through_raw() {
        let c = Bucket::new_configured(Tat::new(5, 1, 2).unwrap(), stored());
        let raw = c.duplicate().into_raw();
        let d = unsafe { Bucket::from_raw(raw) }.unwrap();
        assert_eq!((d.tat(), d.stored()), (c.tat(), c.stored()));
        assert_ne!(raw, c.0.as_ptr().cast());
        unsafe {
            c.free();
            d.free();
        }
        assert!(unsafe { Bucket::from_raw(std::ptr::null_mut()) }.is_none());
    }
}
