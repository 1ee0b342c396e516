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
//! **The window a log was recorded under.** A log remembers the window of the limit that
//! recorded it (its `window_ms`, 0 when unknown: a log written before it was kept). An entry
//! counts while it is inside both that window and the window of the limit reading it, so a
//! request the old window had already forgotten is never revived by a longer one, and a key
//! knows when it is empty without its policy (`reset_after_ms` of a usage-only key is its
//! PTTL, also after `PERSIST`). Recording a request drops what no longer counts and takes the
//! reading limit's window.
//!
//! Clock steps: a legitimate entry is never later than `now`, so an entry in the future (the
//! server clock stepped back) is read as if it were at `now`. The client is then held to the
//! limit for at most one window from the step, never locked out longer, and nothing panics.
//!
//! Usage carried from another kind is requests (a backlog of time is counted as the requests
//! this limit admits in it, rounded up), all at the instant of the change.
//!
//! PURE: no Redis types here.

use super::gcra::{Tat, MAX_TAT_MS};
use super::{Carried, Kind, KindRules};
use crate::error::Error;

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

    /// The window `log`'s entries count in under this limit: this limit's, or the one they
    /// were recorded under when that is shorter.
    fn counting_window(&self, log: &Log) -> u64 {
        match log.window_ms {
            0 => self.window_ms(),
            w => self.window_ms().min(u64::from(w)),
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

    fn add(&mut self, cost: u64) {
        self.0[2] = u16::try_from(self.count() + cost).unwrap_or(u16::MAX);
    }
}

/// The admitted requests of one SLIDING limit: entries at strictly increasing instants, the
/// first at `base_ms` (offset 0), and the window they were recorded under. Every log has one
/// representation (canonical), so master, replica and RDB hold the same bytes for one state.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Log {
    base_ms: u64,
    /// The window of the limit that recorded the entries, in ms; 0: unknown.
    window_ms: u32,
    entries: Vec<Entry>,
}

impl Log {
    /// The log of a client that has made no request.
    pub const EMPTY: Log = Log {
        base_ms: 0,
        window_ms: 0,
        entries: Vec::new(),
    };

    /// A log from its stored parts `(offset_ms, count)` and the window they were recorded
    /// under (0: unknown), or `None` if the commands could not have written it: the first
    /// offset is 0, offsets strictly increase and fit `u32`, every count is at least 1, the
    /// counts add up to at most [`MAX_SLIDING_LIMIT`], the last instant is at most
    /// [`MAX_TAT_MS`], and an empty log has base 0 and no window.
    pub fn from_parts(base_ms: u64, window_ms: u64, parts: &[(u64, u64)]) -> Option<Log> {
        let window_ms = u32::try_from(window_ms).ok()?;
        if parts.is_empty() {
            return (base_ms == 0 && window_ms == 0).then_some(Log::EMPTY);
        }
        if parts.len() as u64 > MAX_SLIDING_LIMIT || parts.first()?.0 != 0 {
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
        Some(Log {
            base_ms,
            window_ms,
            entries,
        })
    }

    /// The instant of the oldest entry (0 for an empty log).
    pub fn base_ms(&self) -> u64 {
        self.base_ms
    }

    /// The window the entries were recorded under, in ms (0: unknown).
    pub fn window_ms(&self) -> u64 {
        u64::from(self.window_ms)
    }

    /// The same log, recorded under `window_ms` (0: unknown); an empty log has none.
    pub fn with_window(mut self, window_ms: u64) -> Log {
        self.window_ms = if self.entries.is_empty() {
            0
        } else {
            u32::try_from(window_ms).unwrap_or(u32::MAX)
        };
        self
    }

    /// The stored parts, `(offset_ms, count)` from the oldest: what [`Log::from_parts`] reads.
    pub fn parts(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.entries.iter().map(|e| (e.offset(), e.count()))
    }

    /// The instant of the newest entry, if any.
    pub fn newest_ms(&self) -> Option<u64> {
        self.entries.last().map(|e| self.base_ms + e.offset())
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

    /// Every entry as `(instant, count)`, oldest first, a future instant read as `now_ms`.
    fn at(&self, now_ms: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        // base + offset <= MAX_TAT_MS by construction: no overflow.
        self.entries
            .iter()
            .map(move |e| ((self.base_ms + e.offset()).min(now_ms), e.count()))
    }

    /// Entries as seen at `now_ms` in a window of `window` ms: those still inside it.
    fn live(&self, window: u64, now_ms: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.at(now_ms)
            .filter(move |&(t, _)| t.saturating_add(window) > now_ms)
    }

    /// Requests (by cost) in a window of `window` ms at `now_ms`.
    fn used(&self, window: u64, now_ms: u64) -> u64 {
        self.live(window, now_ms).map(|(_, c)| c).sum()
    }

    /// The first whole ms from which nothing is left in a window of `window` ms: when the
    /// newest live entry leaves it, or `now_ms` if none is live.
    fn empty_at(&self, window: u64, now_ms: u64) -> u64 {
        self.live(window, now_ms)
            .last()
            .map_or(now_ms, |(t, _)| t + window)
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
        if self.entries.is_empty() {
            self.window_ms = 0;
        }
    }

    /// Drops, in place, every entry that has left a window of `window` ms at `now_ms`.
    fn drop_outside(&mut self, window: u64, now_ms: u64) {
        if let Some(cutoff) = now_ms.checked_sub(window) {
            self.drop_through(cutoff);
        }
    }

    /// Drops, in place, every entry at or before `cutoff_ms`.
    fn drop_through(&mut self, cutoff_ms: u64) {
        let base = self.base_ms;
        let gone = self
            .entries
            .iter()
            .take_while(|e| base + e.offset() <= cutoff_ms)
            .count();
        if gone == 0 {
            return;
        }
        self.entries.drain(..gone);
        let Some(first) = self.entries.first().map(Entry::offset) else {
            self.base_ms = 0;
            self.window_ms = 0;
            return;
        };
        // The new first entry becomes the base: every offset moves down by its own.
        self.base_ms = base + first;
        let shift = u32::try_from(first).unwrap_or(0);
        for e in &mut self.entries {
            let offset = u32::try_from(e.offset()).unwrap_or(u32::MAX);
            *e = Entry::new(offset - shift, u16::try_from(e.count()).unwrap_or(u16::MAX));
        }
        // Keep the memory of a log that emptied out bounded (no shrinking on every request).
        if self.entries.capacity() > 8 && self.entries.capacity() > 2 * self.entries.len() {
            self.entries.shrink_to(2 * self.entries.len());
        }
    }

    /// Moves every entry later than `now_ms` to `now_ms` (the server clock stepped back: a
    /// legitimate entry is never in the future). Returns whether anything moved. A no-op, and
    /// `false`, on a steady clock.
    fn clamp_future(&mut self, now_ms: u64) -> bool {
        let Some(last) = self.entries.last() else {
            return false;
        };
        if self.base_ms + last.offset() <= now_ms {
            return false;
        }
        let mut parts: Vec<(u64, u64)> = self.at(now_ms).collect();
        merge_equal_instants(&mut parts);
        self.set(&parts);
        true
    }

    /// Records a request of `cost` at `now_ms` under `limit`, in place: drops what no longer
    /// counts, and adds the request. Call it only after [`Sliding::admit`] allowed the same
    /// request, so the log stays within its bounds.
    #[inline]
    fn record(&mut self, limit: &Sliding, now_ms: u64, cost: u64) {
        let window = limit.counting_window(self);
        self.clamp_future(now_ms);
        self.drop_outside(window, now_ms);
        let count = u16::try_from(cost).unwrap_or(u16::MAX);
        let entry = match self.entries.last_mut() {
            Some(last) if self.base_ms + last.offset() == now_ms => {
                last.add(cost);
                None
            }
            // Every live entry is within window_ms <= u32::MAX of now_ms.
            Some(_) => Some(Entry::new(
                u32::try_from(now_ms - self.base_ms).unwrap_or(u32::MAX),
                count,
            )),
            None => {
                self.base_ms = now_ms;
                Some(Entry::new(0, count))
            }
        };
        if let Some(e) = entry {
            // Room for exactly one more: a log costs what it holds (6 bytes a distinct ms,
            // as before logs were updated in place), not a doubling's slack; the allocator
            // grows it in place within its size class.
            self.entries.reserve_exact(1);
            self.entries.push(e);
        }
        self.window_ms = limit.window_ms;
    }

    /// Records, as a replica, the request an allowed check recorded on the master
    /// (`RL.APPLY`'s `R<at>x<cost>w<window>`): the same [`Log::record`] under a limit of
    /// `window_ms`. A log that did not know its window (written by an older master, which
    /// sends these too) still does not. `false`, and the log is not to be stored, if the
    /// record or its result is something no command could write (the replica's log was not
    /// the master's).
    pub fn record_sent(&mut self, at_ms: u64, cost: u64, window_ms: u64) -> bool {
        let Ok(window) = Sliding::new(MAX_SLIDING_LIMIT, window_ms) else {
            return false;
        };
        if cost == 0 || cost > MAX_SLIDING_LIMIT || at_ms > MAX_TAT_MS {
            return false;
        }
        let known = self.window_ms != 0 || self.entries.is_empty();
        self.record(&window, at_ms, cost);
        if !known {
            self.window_ms = 0;
        }
        let total: u64 = self.entries.iter().map(Entry::count).sum();
        total <= MAX_SLIDING_LIMIT
    }

    /// A log holding `count` requests at `at_ms`, recorded under `window_ms`; empty for 0.
    fn single(at_ms: u64, count: u64, window_ms: u64) -> Log {
        let count = count.min(MAX_SLIDING_LIMIT);
        Log::from_parts(at_ms.min(MAX_TAT_MS), window_ms, &[(0, count)]).unwrap_or(Log::EMPTY)
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

impl KindRules for Sliding {
    type Usage = Log;
    type Admit = ();
    const KIND: Kind = Kind::Sliding;

    fn from_options(limit: u64, window_ms: u64, burst: Option<u64>) -> Result<Sliding, Error> {
        if burst.is_some() {
            return Err(Error::SlidingBurst);
        }
        Sliding::new(limit, window_ms)
    }

    fn limit(&self) -> u64 {
        self.limit()
    }

    fn window_ms(&self) -> u64 {
        self.window_ms()
    }

    fn capacity(&self) -> u64 {
        self.limit()
    }

    fn scaled(&self, percent: u64) -> Sliding {
        Sliding::scaled(self, percent)
    }

    #[inline]
    fn empty() -> Log {
        Log::EMPTY
    }

    /// Whether a request of `cost` at `now_ms` fits: the requests in the window plus this one
    /// are at most `limit`. Like GCRA, a request after [`MAX_TAT_MS`] is denied.
    #[inline]
    fn admit(&self, log: &Log, now_ms: u64, cost: u64) -> Option<()> {
        let fits = cost <= self.limit()
            && now_ms <= MAX_TAT_MS
            && log.used(self.counting_window(log), now_ms) + cost <= self.limit();
        fits.then_some(())
    }

    #[inline]
    fn record(&self, log: &mut Log, _: (), now_ms: u64, cost: u64) {
        log.record(self, now_ms, cost);
    }

    #[inline]
    fn repair(&self, log: &mut Log, now_ms: u64) -> bool {
        log.clamp_future(now_ms)
    }

    #[inline]
    fn needs_repair(&self, log: &Log, now_ms: u64) -> bool {
        log.newest_ms().is_some_and(|t| t > now_ms)
    }

    fn after(&self, log: &Log, admitted: Option<&()>, now_ms: u64, cost: u64) -> (u64, u64) {
        let window = self.counting_window(log);
        let used = log.used(window, now_ms);
        match admitted {
            // Recorded at now, under this limit's window: what counted before still does.
            Some(()) => (
                self.limit().saturating_sub(used + cost),
                now_ms + self.window_ms(),
            ),
            None => (
                self.limit().saturating_sub(used),
                log.empty_at(window, now_ms),
            ),
        }
    }

    /// A request that does not fit passes once enough of the oldest live entries have left
    /// the window: at the first entry `e_k` such that what is newer than it plus `cost` fits,
    /// it passes at `e_k + window` exactly (and not a millisecond earlier).
    fn wait_ms(&self, log: &Log, now_ms: u64, cost: u64) -> Option<u64> {
        let limit = self.limit();
        if cost > limit {
            return None;
        }
        let window = self.counting_window(log);
        let mut rest = log.used(window, now_ms);
        if rest + cost <= limit {
            return Some(0);
        }
        for (t, c) in log.live(window, now_ms) {
            rest -= c;
            if rest + cost <= limit {
                return Some((t + window).saturating_sub(now_ms).max(1));
            }
        }
        // Unreachable: with cost <= limit, dropping every live entry makes room.
        Some(window)
    }

    #[inline]
    fn own_empty_at_ms(log: &Log, now_ms: u64) -> Option<u64> {
        match log.window_ms() {
            0 if !log.is_empty() => None,
            w => Some(log.empty_at(w, now_ms)),
        }
    }

    /// Reconfigured within the kind at `at_ms`: what the log's own window had not forgotten
    /// then and the new window still holds, recorded under the new window from then on.
    fn carry(&self, log: &Log, at_ms: u64) -> Log {
        let mut out = log.clone();
        out.drop_outside(self.counting_window(log), at_ms);
        out.with_window(self.window_ms())
    }

    fn export(log: &Log, at_ms: u64) -> Carried {
        let n: u64 = match log.window_ms() {
            // Unknown window (a log kept before windows were): everything it holds.
            0 => log.at(at_ms).map(|(_, c)| c).sum(),
            w => log.used(w, at_ms),
        };
        if n == 0 {
            Carried::Nothing
        } else {
            Carried::Requests(n)
        }
    }

    fn import(&self, carried: Carried, at_ms: u64) -> Log {
        let count = match carried {
            Carried::Nothing => 0,
            Carried::Requests(n) => n,
            Carried::Until(tat) => requests_in(tat, at_ms, self),
        };
        Log::single(at_ms, count.min(self.limit()), self.window_ms())
    }

    fn usage_window_ms(log: &Log) -> Option<u64> {
        (log.window_ms() > 0).then_some(log.window_ms())
    }

    fn heap_bytes(log: &Log) -> usize {
        log.heap_bytes()
    }
}

/// The requests `limit` admits in the time from `at_ms` until `tat`, rounded up: a GCRA
/// backlog counted as this limit's requests.
fn requests_in(tat: Tat, at_ms: u64, limit: &Sliding) -> u64 {
    let (ms, frac, den) = tat.parts();
    if ms < at_ms || (ms == at_ms && frac == 0) {
        return 0;
    }
    // backlog = (ms - at) + frac/den; count = ceil(backlog * limit / window).
    let backlog = u128::from(ms - at_ms) * u128::from(den) + u128::from(frac);
    let count = (backlog * u128::from(limit.limit()))
        .div_ceil(u128::from(den) * u128::from(limit.window_ms()));
    u64::try_from(count).unwrap_or(u64::MAX)
}

#[cfg(test)]
#[path = "sliding_tests.rs"]
mod tests;
