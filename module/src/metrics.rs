//! Live counters for `INFO rl`, and the denied-clients sketch behind `RL.TOP`.
//!
//! Commands run on Redis's main thread only, so the per-call counters are bumped with a plain
//! load and store (no locked read-modify-write on the hot path). `live_buckets` is the
//! exception: values are also freed by Redis's lazy-free thread (`FLUSHALL ASYNC`, `UNLINK`),
//! so it is a true atomic.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

use rl_core::resolve::Source;
use rl_core::topk::TopK;

/// A counter written by the main thread only.
pub struct Counter(AtomicU64);

impl Counter {
    const fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }

    pub fn incr(&self) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Allowed checks, by policy source.
pub static ALLOWED: [Counter; 3] = [Counter::new(), Counter::new(), Counter::new()];
/// Denied checks (not counting shadow denials, which were allowed), by policy source.
pub static DENIED: [Counter; 3] = [Counter::new(), Counter::new(), Counter::new()];
/// Checks a shadow policy would have denied (they were allowed).
pub static SHADOW_DENIED: Counter = Counter::new();
/// Calls of any `RL.*` command answered with an error.
pub static ERRORS: Counter = Counter::new();
/// `RL.CONFIG` calls that stored a policy.
pub static CONFIGS: Counter = Counter::new();
/// `RL.RESET` calls that forgot some usage.
pub static RESETS: Counter = Counter::new();
/// `ratelimit` values alive in this server's memory (all databases).
pub static LIVE_BUCKETS: AtomicI64 = AtomicI64::new(0);

/// The heavy hitters among denied clients.
pub static TOP_DENIED: LazyLock<Mutex<TopK>> = LazyLock::new(|| Mutex::new(TopK::new()));

/// Records a decision's outcome; `shadow_denied` for a denial a shadow policy turned into an
/// allow.
pub fn record(source: Source, allowed: bool, shadow_denied: bool) {
    if shadow_denied {
        SHADOW_DENIED.incr();
    }
    if allowed {
        ALLOWED[source as usize].incr();
    } else {
        DENIED[source as usize].incr();
    }
}

/// Counts a denial of `key` for `RL.TOP`.
pub fn record_denied_key(key: &[u8], now_ms: u64) {
    // A poisoned lock only means a panic elsewhere; the sketch itself is still consistent.
    let mut top = TOP_DENIED.lock().unwrap_or_else(|e| e.into_inner());
    top.record(key, now_ms);
}

/// The `INFO rl` fields (Redis prefixes each name with `rl_`), in order.
pub fn info_fields(scale_percent: u64) -> Vec<(String, i64)> {
    let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let sum = |cs: &[Counter; 3]| cs.iter().map(Counter::get).fold(0u64, u64::wrapping_add);
    let mut fields = vec![
        ("checks_allowed".to_string(), clamp(sum(&ALLOWED))),
        ("checks_denied".to_string(), clamp(sum(&DENIED))),
    ];
    for s in Source::ALL {
        fields.push((
            format!("checks_allowed_{}", s.name()),
            clamp(ALLOWED[s as usize].get()),
        ));
        fields.push((
            format!("checks_denied_{}", s.name()),
            clamp(DENIED[s as usize].get()),
        ));
    }
    let top_tracked = TOP_DENIED.lock().map_or(0, |t| t.len());
    fields.extend([
        (
            "checks_shadow_denied".to_string(),
            clamp(SHADOW_DENIED.get()),
        ),
        ("errors".to_string(), clamp(ERRORS.get())),
        ("configs_written".to_string(), clamp(CONFIGS.get())),
        ("resets".to_string(), clamp(RESETS.get())),
        (
            "live_buckets".to_string(),
            LIVE_BUCKETS.load(Ordering::Relaxed),
        ),
        (
            "top_tracked".to_string(),
            i64::try_from(top_tracked).unwrap_or(0),
        ),
        ("scale_percent".to_string(), clamp(scale_percent)),
    ]);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_lists_totals_then_sources_then_the_rest() {
        record(Source::Stored, true, false);
        record(Source::Default, false, false);
        record(Source::Stored, true, true);
        let f = info_fields(100);
        let names: Vec<&str> = f.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names[..4],
            [
                "checks_allowed",
                "checks_denied",
                "checks_allowed_inline",
                "checks_denied_inline"
            ]
        );
        assert!(names.contains(&"live_buckets") && names.contains(&"checks_shadow_denied"));
        let get = |n: &str| f.iter().find(|(k, _)| k == n).unwrap().1;
        assert!(get("checks_allowed") >= 2 && get("checks_allowed_stored") >= 2);
        assert!(get("checks_denied_default") >= 1 && get("checks_shadow_denied") >= 1);
        assert_eq!(get("scale_percent"), 100);
    }
}
