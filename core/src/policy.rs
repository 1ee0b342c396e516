//! A rate-limit policy, validated once so that the hot path can trust it.
//!
//! A policy says "at most `limit` requests per `window_ms` milliseconds, with room for a burst of
//! `burst` requests". Every bound below is chosen so that no computation in [`crate::gcra`]
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

/// The expiry a key's own state calls for, in Unix ms: a usage-only key (`stored` None) lives
/// until its bucket is empty; a configured one with IDLE until `idle_ms` after `now_ms`, but
/// never before its bucket is empty; a configured one without IDLE has none of its own.
pub fn own_expiry(stored: Option<StoredPolicy>, empty_at_ms: u64, now_ms: u64) -> Option<u64> {
    own_expiry_idle(stored.map(|s| s.idle_ms), empty_at_ms, now_ms)
}

/// [`own_expiry`] by the stored idle time alone (`None`: usage-only), for any kind of key:
/// `empty_at_ms` is when every limit of the key is empty.
pub fn own_expiry_idle(idle_ms: Option<u64>, empty_at_ms: u64, now_ms: u64) -> Option<u64> {
    match idle_ms {
        None => Some(empty_at_ms),
        Some(idle) if idle > 0 => Some(empty_at_ms.max(now_ms.saturating_add(idle))),
        Some(_) => None,
    }
}

/// Smallest and largest `rl.scale-percent`.
pub const MIN_SCALE_PERCENT: u64 = 1;
pub const MAX_SCALE_PERCENT: u64 = 1000;

impl Policy {
    /// This policy with its rate and burst multiplied by `percent / 100`, the operator's
    /// `rl.scale-percent` switch, applied at decision time.
    ///
    /// The rate is scaled exactly (`limit * p` per `window * q`, with `p/q` the reduced
    /// percentage) when that fits the bounds, otherwise by stretching the window, rounded up:
    /// either way never faster than asked. The burst is rounded down, and at least 1.
    pub fn scaled(&self, percent: u64) -> Policy {
        let percent = percent.clamp(MIN_SCALE_PERCENT, MAX_SCALE_PERCENT);
        if percent == 100 {
            return *self;
        }
        let g = gcd(percent, 100);
        let (num, den) = (percent / g, 100 / g);
        let burst = (self.burst() * percent / 100).clamp(1, MAX_BURST);
        let burst = u32::try_from(burst).unwrap_or(u32::MAX);
        let limit = self.limit() * num;
        let window_ms = self.window_ms * den;
        if limit <= MAX_LIMIT && window_ms <= MAX_WINDOW_MS {
            return Policy {
                limit: u32::try_from(limit).unwrap_or(self.limit),
                burst,
                window_ms,
            };
        }
        // window * 100 / percent, rounded up; at most 10^12 * 100 (fits u64).
        Policy {
            limit: self.limit,
            burst,
            window_ms: (self.window_ms * 100).div_ceil(percent),
        }
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// What `RL.CONFIG` stores in a key: the policy, how long an idle client is remembered, and
/// whether the policy only observes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredPolicy {
    pub policy: Policy,
    /// 0: the key never expires; otherwise it expires `idle_ms` after the last allowed request,
    /// but never before its bucket is empty.
    pub idle_ms: u64,
    /// Shadow mode: requests are evaluated and counted as usual, but a request the policy
    /// would deny is allowed (and, as a denial would, leaves the bucket unchanged).
    pub shadow: bool,
}

/// Bits of the stored `flags` field (RDB and `RL.APPLY`).
pub const FLAG_SHADOW: u64 = 1;
const KNOWN_FLAGS: u64 = FLAG_SHADOW;

impl StoredPolicy {
    pub fn new(policy: Policy, idle_ms: u64) -> Result<StoredPolicy, Error> {
        if idle_ms > MAX_IDLE_MS {
            return Err(Error::IdleRange);
        }
        Ok(StoredPolicy {
            policy,
            idle_ms,
            shadow: false,
        })
    }

    /// The flags as stored; see [`FLAG_SHADOW`].
    pub fn flags(&self) -> u64 {
        if self.shadow {
            FLAG_SHADOW
        } else {
            0
        }
    }

    /// Sets the flags from their stored form; `false` for a bit this version does not know.
    pub fn set_flags(&mut self, flags: u64) -> bool {
        if flags & !KNOWN_FLAGS != 0 {
            return false;
        }
        self.shadow = flags & FLAG_SHADOW != 0;
        true
    }

    /// The policy as fields, in the order of [`FIELD_NAMES`].
    pub fn fields(&self) -> [u64; 5] {
        let p = &self.policy;
        [
            p.limit(),
            p.window_ms(),
            p.burst(),
            self.idle_ms,
            self.flags(),
        ]
    }

    /// A stored policy from its fields (in the order of [`FIELD_NAMES`]), or `None` if no
    /// `RL.CONFIG` could have written them. Every state from outside (RDB, `RESTORE`, the
    /// replication link, the AOF) comes through here.
    pub fn from_fields(
        [limit, window_ms, burst, idle_ms, flags]: [u64; 5],
    ) -> Option<StoredPolicy> {
        // A stored burst is never 0 (0 would mean "same as limit" to Policy::new).
        if burst == 0 {
            return None;
        }
        let mut stored =
            StoredPolicy::new(Policy::new(limit, window_ms, burst).ok()?, idle_ms).ok()?;
        stored.set_flags(flags).then_some(stored)
    }
}

/// The names of a stored policy's fields, in the one order that the RDB encoding,
/// `RL.APPLY`'s `POLICY` block and its `COMMAND DOCS` use.
pub const FIELD_NAMES: [&std::ffi::CStr; 5] =
    [c"limit", c"window_ms", c"burst", c"idle_ms", c"flags"];

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
    fn scaling_by_100_percent_changes_nothing() {
        let p = Policy::new(7, 1000, 3).unwrap();
        assert_eq!(p.scaled(100), p);
    }

    #[test]
    fn scaling_is_exact_when_it_fits() {
        // Half of 10/s is 10 per 2 s (exactly 5/s), burst 10 -> 5.
        let p = Policy::new(10, 1000, 0).unwrap().scaled(50);
        assert_eq!((p.limit(), p.window_ms(), p.burst()), (10, 2000, 5));
        // 33% of 3/s: 99 per 100 s.
        let p = Policy::new(3, 1000, 0).unwrap().scaled(33);
        assert_eq!((p.limit(), p.window_ms(), p.burst()), (99, 100_000, 1));
        let p = Policy::new(10, 1000, 0).unwrap().scaled(250);
        assert_eq!((p.limit(), p.window_ms(), p.burst()), (50, 2000, 25));
    }

    #[test]
    fn scaling_past_the_bounds_rounds_the_rate_down() {
        // 10^9 * 33 does not fit: keep the limit, stretch the window (rounded up).
        let p = Policy::new(MAX_LIMIT, 1000, 0).unwrap().scaled(33);
        assert_eq!(
            (p.limit(), p.window_ms(), p.burst()),
            (MAX_LIMIT, 3031, 330_000_000)
        );
        let p = Policy::new(1, MAX_WINDOW_MS, 0).unwrap().scaled(1);
        assert_eq!(
            (p.limit(), p.window_ms(), p.burst()),
            (1, MAX_WINDOW_MS * 100, 1)
        );
    }

    #[test]
    fn shadow_flag_round_trips_and_unknown_bits_are_refused() {
        let mut s = StoredPolicy::new(Policy::new(1, 1, 1).unwrap(), 0).unwrap();
        assert_eq!(s.flags(), 0);
        assert!(s.set_flags(FLAG_SHADOW));
        assert!(s.shadow && s.flags() == FLAG_SHADOW);
        assert!(!s.set_flags(2));
    }

    #[test]
    fn own_expiry_is_when_the_bucket_empties_or_the_client_has_been_idle() {
        let p = Policy::new(1, 1, 1).unwrap();
        let idle = StoredPolicy::new(p, 500).unwrap();
        let plain = StoredPolicy::new(p, 0).unwrap();
        assert_eq!(own_expiry(None, 2000, 1000), Some(2000));
        assert_eq!(own_expiry(Some(idle), 2000, 1000), Some(2000));
        assert_eq!(own_expiry(Some(idle), 1200, 1000), Some(1500));
        assert_eq!(own_expiry(Some(plain), 2000, 1000), None);
    }

    #[test]
    fn idle_is_bounded() {
        let p = Policy::new(1, 1, 1).unwrap();
        assert!(StoredPolicy::new(p, MAX_IDLE_MS).is_ok());
        assert_eq!(StoredPolicy::new(p, MAX_IDLE_MS + 1), Err(Error::IdleRange));
    }
}
