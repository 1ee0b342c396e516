//! The sliding window as a log: at most `limit` requests (by cost) in any interval of
//! `window_ms` milliseconds, exactly.
//!
//! Where GCRA says "`limit` per window on average, bursts up to `burst`", this kind says what
//! most people mean by "10 per minute": whichever minute you look at, at most 10 got through.
//! The whole limit is available at once (the brief's example still answers ten 1s then five
//! 0s), and the 11th request passes exactly `window_ms` after the 1st, when the 1st leaves
//! the window. The price is memory: the log keeps when each admitted request arrived, one
//! entry per distinct millisecond with a count, so it grows with `limit` where GCRA keeps one
//! number.
//!
//! A request at `now` sees the window `(now - window_ms, now]`: an entry at `t` still counts
//! while `t > now - window_ms`. It is admitted iff the live entries plus its cost fit in
//! `limit`; a denied request changes nothing.
//!
//! Clock steps: a legitimate entry is never later than `now`, so an entry in the future (the
//! server clock stepped back) is read as if it were at `now`. The client is then held to the
//! limit for at most one window from the step, never locked out longer, and nothing panics.
//!
//! Time is a parameter (`now_ms`, Unix milliseconds): the caller reads the clock once.
//!
//! PURE: no Redis types here.

use crate::error::Error;
use crate::gcra::MAX_TAT_MS;

/// Most requests a SLIDING limit admits per window (1000). The log keeps up to `limit`
/// entries: 6 bytes each in memory (at most 6 KB per limit), each decision scans it, and
/// whenever a log is sent whole (RDB, a new replica, `RL.CONFIG`, an AOF rewrite) it is up
/// to about 16 KB of text. Past a thousand requests per window the log costs more than it is
/// worth: GCRA keeps one number for any rate.
pub const MAX_SLIDING_LIMIT: u64 = 1000;
/// Longest SLIDING window, in ms (2^32 - 1, about 49.7 days): entries are stored as `u32`
/// offsets from the oldest live one, which is always less than a window older than the newest.
pub const MAX_SLIDING_WINDOW_MS: u64 = u32::MAX as u64;

/// A valid SLIDING limit: `1 <= limit <= MAX_SLIDING_LIMIT`, `1 <= window_ms <= MAX_SLIDING_WINDOW_MS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sliding {
    limit: u32,
    window_ms: u32,
}

impl Sliding {
    /// Validates a SLIDING limit. Zero is the general range error of each field (as for
    /// GCRA); a value within the general range but over this kind's bound gets its own error.
    pub fn new(limit: u64, window_ms: u64) -> Result<Sliding, Error> {
        if limit == 0 {
            return Err(Error::LimitRange);
        }
        if limit > MAX_SLIDING_LIMIT {
            return Err(Error::SlidingLimitRange);
        }
        if window_ms == 0 {
            return Err(Error::WindowRange);
        }
        match (u32::try_from(limit), u32::try_from(window_ms)) {
            (Ok(limit), Ok(window_ms)) => Ok(Sliding { limit, window_ms }),
            _ => Err(Error::SlidingWindowRange),
        }
    }

    /// Requests (by cost) admitted in any window.
    pub fn limit(&self) -> u64 {
        u64::from(self.limit)
    }

    /// The window, in ms.
    pub fn window_ms(&self) -> u64 {
        u64::from(self.window_ms)
    }

    /// This limit under `rl.scale-percent`: the count scaled and rounded down (at least 1, at
    /// most [`MAX_SLIDING_LIMIT`], which bounds the log), the window unchanged.
    pub fn scaled(&self, percent: u64) -> Sliding {
        let percent = percent.clamp(
            crate::policy::MIN_SCALE_PERCENT,
            crate::policy::MAX_SCALE_PERCENT,
        );
        let limit = (self.limit() * percent / 100).clamp(1, MAX_SLIDING_LIMIT);
        Sliding {
            limit: u32::try_from(limit).unwrap_or(self.limit),
            window_ms: self.window_ms,
        }
    }
}

/// One distinct millisecond of the log: its offset from the log's base and how many requests
/// (by cost) it admitted. Three `u16` so that an entry takes 6 bytes with no padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry([u16; 3]);

impl Entry {
    fn new(offset: u32, count: u16) -> Entry {
        Entry([(offset >> 16) as u16, offset as u16, count])
    }

    fn offset(&self) -> u64 {
        (u64::from(self.0[0]) << 16) | u64::from(self.0[1])
    }

    fn count(&self) -> u64 {
        u64::from(self.0[2])
    }
}

/// The admitted requests of one SLIDING limit: entries at strictly increasing instants, the
/// first at `base_ms` (offset 0). Every log has one representation (canonical), so master,
/// replica and RDB hold the same bytes for the same state.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Log {
    base_ms: u64,
    entries: Vec<Entry>,
}

impl Log {
    /// The log of a client that has made no request.
    pub const EMPTY: Log = Log {
        base_ms: 0,
        entries: Vec::new(),
    };

    /// A log from its stored parts `(offset_ms, count)`, or `None` if the commands could not
    /// have written it: the first offset is 0, offsets strictly increase and fit `u32`, every
    /// count is at least 1, the counts add up to at most [`MAX_SLIDING_LIMIT`], the last
    /// instant is at most [`MAX_TAT_MS`], and an empty log has base 0.
    pub fn from_parts(base_ms: u64, parts: &[(u64, u64)]) -> Option<Log> {
        if parts.is_empty() {
            return (base_ms == 0).then_some(Log::EMPTY);
        }
        if parts.len() as u64 > MAX_SLIDING_LIMIT || parts[0].0 != 0 {
            return None;
        }
        let mut entries = Vec::with_capacity(parts.len());
        let mut total = 0u64;
        let mut previous = None;
        for &(offset, count) in parts {
            if previous.is_some_and(|p| offset <= p) || count == 0 {
                return None;
            }
            total = total.checked_add(count)?;
            entries.push(Entry::new(
                u32::try_from(offset).ok()?,
                u16::try_from(count).ok()?,
            ));
            previous = Some(offset);
        }
        let last = base_ms.checked_add(previous?)?;
        if total > MAX_SLIDING_LIMIT || last > MAX_TAT_MS {
            return None;
        }
        Some(Log { base_ms, entries })
    }

    /// The instant of the oldest entry (0 for an empty log).
    pub fn base_ms(&self) -> u64 {
        self.base_ms
    }

    /// The stored parts, `(offset_ms, count)` from the oldest: what [`Log::from_parts`] reads.
    pub fn parts(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.entries.iter().map(|e| (e.offset(), e.count()))
    }

    /// How many distinct milliseconds the log holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes the log holds on the heap (for `MEMORY USAGE`).
    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
    }

    /// Entries as seen at `now_ms`, oldest first: `(instant, count)` with a future instant read
    /// as `now_ms`, and only those still inside the window `(now_ms - window_ms, now_ms]`.
    fn live(&self, policy: &Sliding, now_ms: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        let window = policy.window_ms();
        // base + offset <= MAX_TAT_MS by construction: no overflow.
        self.entries
            .iter()
            .map(move |e| ((self.base_ms + e.offset()).min(now_ms), e.count()))
            .filter(move |&(t, _)| t.saturating_add(window) > now_ms)
    }

    /// Requests (by cost) in the window at `now_ms`.
    pub fn used(&self, policy: &Sliding, now_ms: u64) -> u64 {
        self.live(policy, now_ms).map(|(_, c)| c).sum()
    }

    /// The first whole ms from which the log holds nothing in the window: when the newest
    /// live entry leaves it, or `now_ms` if none is live. A usage-only key may expire then.
    pub fn empty_at_ms(&self, policy: &Sliding, now_ms: u64) -> u64 {
        self.live(policy, now_ms)
            .last()
            .map_or(now_ms, |(t, _)| t + policy.window_ms())
    }

    /// Moves every entry later than `now_ms` to `now_ms` (the server clock stepped back: a
    /// legitimate entry is never in the future), so that the client is held to the limit for
    /// one window from now rather than from an instant that has not come. Returns whether
    /// anything moved: the caller then stores the log even if the request is denied (a
    /// repair, which consumes nothing). A no-op, and `false`, on a steady clock.
    pub fn clamp_future(&mut self, now_ms: u64) -> bool {
        let Some(last) = self.entries.last() else {
            return false;
        };
        if self.base_ms + last.offset() <= now_ms {
            return false;
        }
        let mut parts: Vec<(u64, u64)> = self
            .entries
            .iter()
            .map(|e| ((self.base_ms + e.offset()).min(now_ms), e.count()))
            .collect();
        merge_equal_instants(&mut parts);
        self.set(&parts);
        true
    }

    /// Replaces the entries with `parts` as `(instant, count)`: strictly increasing instants,
    /// each within `u32` ms of the first, counts within `u16`.
    fn set(&mut self, parts: &[(u64, u64)]) {
        let base = parts.first().map_or(0, |p| p.0);
        self.base_ms = base;
        self.entries.clear();
        self.entries.extend(parts.iter().map(|&(t, c)| {
            Entry::new(
                u32::try_from(t - base).unwrap_or(u32::MAX),
                u16::try_from(c).unwrap_or(u16::MAX),
            )
        }));
        self.entries.shrink_to_fit();
    }

    /// Records an admitted request of `cost` at `now_ms`: drops what has left the window,
    /// moves what is in the future to `now_ms`, and adds the request. Call it only after
    /// [`decide`] allowed the same request, so the log stays within its bounds.
    pub fn record(&mut self, policy: &Sliding, now_ms: u64, cost: u64) {
        let mut live: Vec<(u64, u64)> = self.live(policy, now_ms).collect();
        match live.last_mut() {
            Some((t, c)) if *t == now_ms => *c += cost,
            _ => live.push((now_ms, cost)),
        }
        merge_equal_instants(&mut live);
        // Every live instant is within window_ms <= u32::MAX of now_ms; the counts add up to
        // at most the limit <= MAX_SLIDING_LIMIT < u16::MAX.
        self.set(&live);
    }

    /// A log holding `count` requests at `at_ms`: how a GCRA backlog is carried over when a
    /// limit changes kind (see `limits.rs`). `None` for a count of 0.
    pub fn single(at_ms: u64, count: u64) -> Option<Log> {
        let count = count.min(MAX_SLIDING_LIMIT);
        if count == 0 {
            return None;
        }
        Log::from_parts(at_ms.min(MAX_TAT_MS), &[(0, count)])
    }

    /// Every entry as `(instant, count)`, oldest first, a future instant read as `now_ms`:
    /// for carrying a log over to a GCRA limit, which replays them all.
    pub fn entries_until(&self, now_ms: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.entries
            .iter()
            .map(move |e| ((self.base_ms + e.offset()).min(now_ms), e.count()))
    }
}

/// Entries read as `now_ms` after a clock step are adjacent at the end: merge equal instants.
fn merge_equal_instants(parts: &mut Vec<(u64, u64)>) {
    parts.dedup_by(|later, earlier| {
        if later.0 == earlier.0 {
            earlier.1 += later.1;
            true
        } else {
            false
        }
    });
}

/// Whether a request of `cost` at `now_ms` fits: the requests in the window plus this one
/// are at most `limit`. Does not change the log (see [`Log::record`]). Like GCRA, a request
/// after [`MAX_TAT_MS`] (36 million years) is denied rather than stored.
pub fn decide(policy: &Sliding, log: &Log, now_ms: u64, cost: u64) -> bool {
    cost <= policy.limit()
        && now_ms <= MAX_TAT_MS
        && log.used(policy, now_ms) + cost <= policy.limit()
}

/// The numbers behind a decision, as for GCRA (`verdict.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Numbers {
    pub allowed: bool,
    /// The limit: how many cost-1 requests pass at once from idle.
    pub limit: u64,
    /// Cost-1 requests that would pass right now, after this decision.
    pub remaining: u64,
    /// Ms until this same request would pass; `None` if it was allowed, or if its cost is
    /// above the limit so it never can.
    pub retry_after_ms: Option<u64>,
    /// Ms until the window holds nothing again (0 if it already does).
    pub reset_after_ms: u64,
}

/// The numbers for a request of `cost` at `now_ms`, with `allowed` the decision [`decide`]
/// took on the same inputs and `after` the log after it (the same log when denied).
///
/// A denied request passes once enough of the oldest live entries have left the window: at
/// the first entry `e_k` such that what is newer than it plus `cost` fits, it passes at
/// `e_k + window_ms` exactly (and not a millisecond earlier, while `e_k` still counts).
pub fn explain(
    policy: &Sliding,
    before: &Log,
    after: &Log,
    now_ms: u64,
    cost: u64,
    allowed: bool,
) -> Numbers {
    let limit = policy.limit();
    let retry_after_ms = if allowed || cost > limit {
        None
    } else {
        let mut rest = before.used(policy, now_ms);
        let mut at = None;
        for (t, c) in before.live(policy, now_ms) {
            rest -= c;
            if rest + cost <= limit {
                at = Some(t + policy.window_ms());
                break;
            }
        }
        // Denied with cost <= limit means some entry is live, so `at` is found; it is after
        // now_ms since every live entry is.
        at.map(|at| at.saturating_sub(now_ms).max(1))
    };
    Numbers {
        allowed,
        limit,
        remaining: limit.saturating_sub(after.used(policy, now_ms)),
        retry_after_ms,
        reset_after_ms: after.empty_at_ms(policy, now_ms) - now_ms,
    }
}

/// Repairs a clock step, decides, records when allowed, and explains: one request end to end.
pub fn evaluate(policy: &Sliding, log: &mut Log, now_ms: u64, cost: u64) -> Numbers {
    log.clamp_future(now_ms);
    let before = log.clone();
    let allowed = decide(policy, log, now_ms, cost);
    if allowed {
        log.record(policy, now_ms, cost);
    }
    explain(policy, &before, log, now_ms, cost, allowed)
}

#[cfg(test)]
#[path = "sliding_tests.rs"]
mod tests;
