//! The clients with the most denied requests lately: a Space-Saving heavy-hitter sketch in
//! fixed memory.
//!
//! Space-Saving (Metwally et al., 2005) keeps `k` counters. A key already counted gets +1; a
//! new key, when all counters are taken, replaces the key with the smallest count `m` and
//! starts at `m + 1`, remembering `m` as its possible overcount (`error`). Guarantees, for a
//! stream of `N` denials: every key denied more than `N / k` times is in the table, and each
//! reported count is at most `error` above the true count, with `error <= N / k`.
//!
//! "Lately": every [`HALF_LIFE_MS`] all counts and errors are halved, so a client that stops
//! being denied fades out within minutes; the bounds above then hold for the decayed counts.
//! Memory is bounded whatever the traffic: at most `k` keys of at most [`MAX_KEY_BYTES`] each.
//! Longer keys are not tracked at all: `RL.TOP` shows a key only to a user who may read it,
//! and that can be checked only on the whole key, never on a prefix (a prefix a user may read
//! can belong to a key the user may not).
//!
//! PURE: no Redis types here; time is a parameter.

use std::collections::HashMap;

/// Counters kept.
pub const CAPACITY: usize = 128;
/// Longest key tracked, in bytes (at most 128 KiB of keys in all).
pub const MAX_KEY_BYTES: usize = 1024;
/// Counts halve every minute.
pub const HALF_LIFE_MS: u64 = 60_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: Box<[u8]>,
    /// Denials counted, an overestimate by at most `error`.
    pub count: u64,
    pub error: u64,
}

#[derive(Debug, Default)]
pub struct TopK {
    entries: Vec<Entry>,
    index: HashMap<Box<[u8]>, usize>,
    /// Start of the current half-life period, in Unix ms.
    period_start_ms: u64,
}

impl TopK {
    pub fn new() -> TopK {
        TopK::default()
    }

    /// Counts one denial of `key` at `now_ms`.
    pub fn record(&mut self, key: &[u8], now_ms: u64) {
        self.decay(now_ms);
        if key.len() > MAX_KEY_BYTES {
            return;
        }
        if let Some(&i) = self.index.get(key) {
            self.entries[i].count = self.entries[i].count.saturating_add(1);
            return;
        }
        let entry = |error: u64| Entry {
            key: key.into(),
            count: error.saturating_add(1),
            error,
        };
        if self.entries.len() < CAPACITY {
            self.index.insert(key.into(), self.entries.len());
            self.entries.push(entry(0));
            return;
        }
        let Some((min_i, min_count)) = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (i, e.count))
            .min_by_key(|&(_, c)| c)
        else {
            return;
        };
        self.index.remove(&self.entries[min_i].key);
        self.index.insert(key.into(), min_i);
        self.entries[min_i] = entry(min_count);
    }

    /// The `n` keys with the highest counts, highest first (ties by key, for stable output).
    pub fn top(&mut self, n: usize, now_ms: u64) -> Vec<Entry> {
        self.decay(now_ms);
        let mut all = self.entries.clone();
        all.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
        all.truncate(n);
        all
    }

    /// How many keys are tracked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Halves every count once per elapsed half-life; drops keys that reach zero.
    fn decay(&mut self, now_ms: u64) {
        if self.period_start_ms == 0 || now_ms < self.period_start_ms {
            self.period_start_ms = now_ms;
            return;
        }
        let periods = (now_ms - self.period_start_ms) / HALF_LIFE_MS;
        if periods == 0 {
            return;
        }
        self.period_start_ms += periods * HALF_LIFE_MS;
        let shift = u32::try_from(periods).unwrap_or(64).min(63);
        for e in &mut self.entries {
            e.count >>= shift;
            e.error >>= shift;
        }
        self.entries.retain(|e| e.count > 0);
        self.index = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.key.clone(), i))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: u64 = 1_700_000_000_000;

    #[test]
    fn counts_exactly_while_there_is_room() {
        let mut t = TopK::new();
        for (key, n) in [(&b"a"[..], 5), (b"b", 3), (b"c", 8)] {
            for _ in 0..n {
                t.record(key, T0);
            }
        }
        let top = t.top(2, T0);
        assert_eq!(
            top.iter()
                .map(|e| (&*e.key, e.count, e.error))
                .collect::<Vec<_>>(),
            [(&b"c"[..], 8, 0), (b"a", 5, 0)]
        );
    }

    #[test]
    fn a_new_key_replaces_the_smallest_and_inherits_its_count_as_error() {
        let mut t = TopK::new();
        for i in 0..CAPACITY {
            for _ in 0..2 {
                t.record(format!("k{i}").as_bytes(), T0);
            }
        }
        t.record(b"k0", T0); // k0 now 3; every other key has 2
        t.record(b"new", T0);
        assert_eq!(t.len(), CAPACITY);
        let new = t
            .top(CAPACITY, T0)
            .into_iter()
            .find(|e| &*e.key == b"new")
            .unwrap();
        assert_eq!((new.count, new.error), (3, 2));
    }

    #[test]
    fn counts_halve_every_half_life_and_vanish() {
        let mut t = TopK::new();
        for _ in 0..8 {
            t.record(b"x", T0);
        }
        assert_eq!(t.top(1, T0 + HALF_LIFE_MS)[0].count, 4);
        assert_eq!(t.top(1, T0 + 3 * HALF_LIFE_MS)[0].count, 1);
        assert!(t.top(1, T0 + 4 * HALF_LIFE_MS).is_empty());
        t.record(b"y", T0 + 4 * HALF_LIFE_MS);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn keys_up_to_the_bound_are_kept_whole_and_longer_ones_not_at_all() {
        let mut t = TopK::new();
        t.record(&[7u8; MAX_KEY_BYTES], T0);
        t.record(&[8u8; MAX_KEY_BYTES + 1], T0);
        let top = t.top(CAPACITY, T0);
        assert_eq!(top.len(), 1);
        assert_eq!(&*top[0].key, &[7u8; MAX_KEY_BYTES][..]);
    }

    proptest! {
        /// Every key denied more than N/k times is reported, with a count within its error
        /// of the truth (no decay: all at one instant).
        #[test]
        fn space_saving_bounds_hold(stream in prop::collection::vec(0u16..400, 1..5000)) {
            let mut t = TopK::new();
            let mut truth: HashMap<u16, u64> = HashMap::new();
            for k in &stream {
                t.record(&k.to_be_bytes(), T0);
                *truth.entry(*k).or_default() += 1;
            }
            let n = stream.len() as u64;
            let table = t.top(CAPACITY, T0);
            for e in &table {
                let real = truth[&u16::from_be_bytes([e.key[0], e.key[1]])];
                prop_assert!(e.count >= real && e.count - e.error <= real);
                prop_assert!(e.error <= n / CAPACITY as u64);
            }
            for (k, real) in truth {
                if real > n / CAPACITY as u64 {
                    prop_assert!(table.iter().any(|e| *e.key == k.to_be_bytes()), "heavy key {} missing", k);
                }
            }
        }
    }
}
