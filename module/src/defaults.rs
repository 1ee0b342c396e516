//! The module-wide default policy, from the `rl.default-*` configs.
//!
//! The three configs are settable one at a time (in `redis.conf`, as `loadmodule` arguments
//! or with `CONFIG SET`), so a combination may be briefly or permanently invalid (a bucket
//! that would take centuries to drain). Each is range-checked by Redis on set; the
//! combination is validated when a call falls back to it, which costs two comparisons.

use std::sync::atomic::{AtomicI64, Ordering};

use rl_core::error::Error;
use rl_core::kinds::gcra::Gcra;
use rl_core::kinds::Limit;
use rl_core::policy::Policy;

/// `rl.default-limit`: requests per window; 0 means no default policy.
pub static DEFAULT_LIMIT: AtomicI64 = AtomicI64::new(0);
/// `rl.default-window-ms`: window length in ms.
pub static DEFAULT_WINDOW_MS: AtomicI64 = AtomicI64::new(DEFAULT_WINDOW_MS_INITIAL);
/// `rl.default-burst`: bucket size in requests; 0 means the same as the limit.
pub static DEFAULT_BURST: AtomicI64 = AtomicI64::new(0);

/// Requests per second unless configured otherwise.
pub const DEFAULT_WINDOW_MS_INITIAL: i64 = 1000;

/// The default policy, `None` when `rl.default-limit` is 0.
pub fn default_policy() -> Result<Option<Policy>, Error> {
    let read = |v: &AtomicI64| u64::try_from(v.load(Ordering::Relaxed)).unwrap_or(0);
    let limit = read(&DEFAULT_LIMIT);
    if limit == 0 {
        return Ok(None);
    }
    Gcra::new(limit, read(&DEFAULT_WINDOW_MS), read(&DEFAULT_BURST))
        .map(|g| Some(Policy::single(Limit::Gcra(g))))
        .map_err(|_| Error::DefaultInvalid)
}

/// `rl.scale-percent`: every policy's rate and burst, scaled at decision time (100: as
/// configured). The operator's switch to tighten or relax all limits at once.
pub static SCALE_PERCENT: AtomicI64 = AtomicI64::new(100);

/// The current scale, in percent.
pub fn scale_percent() -> u64 {
    u64::try_from(SCALE_PERCENT.load(Ordering::Relaxed)).unwrap_or(100)
}
