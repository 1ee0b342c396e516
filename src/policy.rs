//! A rate-limit policy, validated once so that the hot path can trust it.
//!
//! A policy says "at most `limit` requests per `window_ms` milliseconds, with room for a burst of
//! `burst` requests". Every bound below is chosen so that no computation in [`crate::bucket`]
//! can overflow 128-bit integers and every instant it produces fits in a `u64` of milliseconds:
//! a value outside them is refused here, with a message that names the bound, and never
//! reaches the decision.
//!
//! PURE: no Redis types here.

use crate::error::Error;

/// Most requests per window (10^9): a billion requests per millisecond is beyond any server.
pub const MAX_LIMIT: u64 = 1_000_000_000;
/// Longest window, in ms (10^12 ms, about 31.7 years).
pub const MAX_WINDOW_MS: u64 = 1_000_000_000_000;
/// Largest bucket, in requests.
pub const MAX_BURST: u64 = 1_000_000_000;
/// Heaviest single request, in requests; a cost above the policy's burst is valid and denied.
pub const MAX_COST: u64 = 1_000_000_000;
/// Longest idle time before a configured key is forgotten, in ms.
pub const MAX_IDLE_MS: u64 = MAX_WINDOW_MS;
/// Longest time a full bucket may take to drain (`burst * window_ms / limit`), in ms
/// (10^13 ms, about 317 years). Keeps every theoretical arrival time far inside `u64`.
pub const MAX_DRAIN_MS: u64 = 10_000_000_000_000;

/// A valid `limit` / `window_ms` / `burst` triple: every field is within its bound, none is
/// zero, and a full bucket drains within [`MAX_DRAIN_MS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    limit: u32,
    burst: u32,
    window_ms: u64,
}

impl Policy {
    /// Validates a policy; `burst` 0 means "same as `limit`".
    pub fn new(limit: u64, window_ms: u64, burst: u64) -> Result<Policy, Error> {
        if limit == 0 || limit > MAX_LIMIT {
            return Err(Error::LimitRange);
        }
        if window_ms == 0 || window_ms > MAX_WINDOW_MS {
            return Err(Error::WindowRange);
        }
        if burst > MAX_BURST {
            return Err(Error::BurstRange);
        }
        let burst = if burst == 0 { limit } else { burst };
        // Drain time of a full bucket, compared without dividing: burst * window_ms <= MAX_DRAIN_MS * limit.
        if u128::from(burst) * u128::from(window_ms) > u128::from(MAX_DRAIN_MS) * u128::from(limit)
        {
            return Err(Error::DrainTooLong);
        }
        // Both fit: each is at most 10^9 < 2^32.
        match (u32::try_from(limit), u32::try_from(burst)) {
            (Ok(limit), Ok(burst)) => Ok(Policy {
                limit,
                burst,
                window_ms,
            }),
            _ => Err(Error::LimitRange),
        }
    }

    /// Requests per window.
    pub fn limit(&self) -> u64 {
        u64::from(self.limit)
    }

    /// Window length in ms.
    pub fn window_ms(&self) -> u64 {
        self.window_ms
    }

    /// Bucket size in requests: how many may pass at once from idle.
    pub fn burst(&self) -> u64 {
        u64::from(self.burst)
    }
}

/// What `RL.CONFIG` stores in a key: the policy and how long an idle client is remembered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredPolicy {
    pub policy: Policy,
    /// 0: the key never expires; otherwise it expires `idle_ms` after the last allowed request,
    /// but never before its bucket is empty.
    pub idle_ms: u64,
}

impl StoredPolicy {
    pub fn new(policy: Policy, idle_ms: u64) -> Result<StoredPolicy, Error> {
        if idle_ms > MAX_IDLE_MS {
            return Err(Error::IdleRange);
        }
        Ok(StoredPolicy { policy, idle_ms })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_zero_means_limit() {
        let p = Policy::new(10, 60_000, 0).unwrap();
        assert_eq!((p.limit(), p.window_ms(), p.burst()), (10, 60_000, 10));
    }

    #[test]
    fn accepts_every_bound_at_its_edge() {
        assert!(Policy::new(MAX_LIMIT, 1, MAX_BURST).is_ok());
        assert!(Policy::new(1, MAX_WINDOW_MS, 10).is_ok());
        assert!(Policy::new(1, 1, 1).is_ok());
    }

    #[test]
    fn rejects_zero_and_out_of_range_fields() {
        let cases = [
            (0, 1, 1, Error::LimitRange),
            (MAX_LIMIT + 1, 1, 1, Error::LimitRange),
            (1, 0, 1, Error::WindowRange),
            (1, MAX_WINDOW_MS + 1, 1, Error::WindowRange),
            (1, 1, MAX_BURST + 1, Error::BurstRange),
        ];
        for (limit, window, burst, err) in cases {
            assert_eq!(
                Policy::new(limit, window, burst),
                Err(err),
                "{limit} {window} {burst}"
            );
        }
    }

    #[test]
    fn rejects_a_bucket_that_would_take_centuries_to_drain() {
        // 1000 requests at one per 10^12 ms: 10^15 ms to drain.
        assert_eq!(
            Policy::new(1, MAX_WINDOW_MS, 1000),
            Err(Error::DrainTooLong)
        );
        // Exactly MAX_DRAIN_MS is fine.
        assert!(Policy::new(1, MAX_WINDOW_MS, 10).is_ok());
    }

    #[test]
    fn idle_is_bounded() {
        let p = Policy::new(1, 1, 1).unwrap();
        assert!(StoredPolicy::new(p, MAX_IDLE_MS).is_ok());
        assert_eq!(StoredPolicy::new(p, MAX_IDLE_MS + 1), Err(Error::IdleRange));
    }
}
