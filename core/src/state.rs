//! The persisted and replicated form of keys with several limits or a SLIDING one: RDB
//! encoding version 2 and the `RL.APPLY` text, with validated decoding.
//!
//! **RDB, version 2** is version 1 (`codec.rs`) plus one kind. A key of one GCRA limit is
//! written exactly as before (`tat_ms frac den kind [policy fields]`, kind 0 or 1), so its
//! `DUMP` payload and digest do not change; every other key is kind 2, after an empty TAT
//! (`0 0 1`) so that the first four fields keep their meaning:
//!
//! ```text
//! 0 0 1 2  n  usage*n  has_policy  [limit*n  idle_ms flags]
//! usage:  0 tat_ms frac den                  (GCRA, the TAT in lowest terms)
//!         1 base_ms m (offset count)*m       (SLIDING, see sliding::Log)
//! limit:  kind limit window_ms burst         (kind 0 GCRA, 1 SLIDING with burst = limit)
//! ```
//!
//! **`RL.APPLY key <state> [LIMITS <limits>]`**, two text arguments:
//! `<state>` is the usages joined by `,` and the key's expiry: `<usage>(,<usage>)*[@<ms>]`,
//! a GCRA usage as in `effect.rs` (`<ms>[+<frac>/<den>]`), a SLIDING one `S` (empty) or
//! `S<base>x<count>(:<offset>x<count>)*`; `<limits>` is `<spec>(,<spec>)*;<idle_ms>;<flags>`
//! with `g<limit>:<window_ms>:<burst>` or `s<limit>:<window_ms>`. For example
//! `RL.APPLY k S1764287000000x3:250x1,1764287000900@1764287060250 LIMITS s10:60000,g1000:86400000:1000;0;0`.
//!
//! An allowed request on a key whose replicas already hold its SLIDING logs sends, for each
//! log, only the request to record, `R<at_ms>x<cost>w<window_ms>` ([`Record`]), instead of
//! the whole log: a log holds up to 1000 entries and is otherwise sent whole on every
//! request. The replica runs the same `Log::record` on the log it holds (the replication
//! stream and the AOF apply effects in order, from a full state), so both end with the same
//! bytes. GCRA usages are always sent whole (one instant), and so is every other write.
//!
//! Decoding accepts exactly what the commands write: a state of one GCRA usage (and no
//! policy or one GCRA policy) must come in version 1's form, usages match their limits' kinds
//! one to one, logs are canonical ([`Log::from_parts`]), and every policy goes through the
//! constructors the commands use.
//!
//! PURE: no Redis types here.

use std::io::Write as _;

use crate::codec;
use crate::effect::{self, natural, split_expiry, StateText};
use crate::gcra::{Tat, MAX_TAT_MS};
use crate::limits::{Limit, Limits, StoredLimits, Usage, MAX_LIMITS};
use crate::policy::{Policy, StoredPolicy};
use crate::sliding::{Log, Sliding, MAX_SLIDING_LIMIT};

/// The RDB kind of a key in this general form.
pub const KIND_SET: u64 = 2;
const USAGE_GCRA: u64 = 0;
const USAGE_SLIDING: u64 = 1;

/// A key's whole state: one usage per limit, and the stored limits of a configured key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetState {
    pub usage: Vec<Usage>,
    pub stored: Option<StoredLimits>,
}

impl SetState {
    /// A state the commands can hold, or `None`: 1 to [`MAX_LIMITS`] usages and, when a
    /// policy is stored, one usage of the matching kind per limit.
    pub fn new(usage: Vec<Usage>, stored: Option<StoredLimits>) -> Option<SetState> {
        if usage.is_empty() || usage.len() > MAX_LIMITS {
            return None;
        }
        if let Some(s) = &stored {
            let kinds_match = s.limits.len() == usage.len()
                && s.limits.as_slice().iter().zip(&usage).all(|(l, u)| {
                    matches!(
                        (l, u),
                        (Limit::Gcra(_), Usage::Gcra(_)) | (Limit::Sliding(_), Usage::Sliding(_))
                    )
                });
            if !kinds_match {
                return None;
            }
        }
        Some(SetState { usage, stored })
    }

    /// The state of a key of one GCRA limit (version 1's form).
    pub fn from_legacy(tat: Tat, stored: Option<StoredPolicy>) -> SetState {
        SetState {
            usage: vec![Usage::Gcra(tat)],
            stored: stored.map(StoredLimits::from_single),
        }
    }

    /// Version 1's form, when the state has it: one GCRA usage, and no stored policy or a
    /// single GCRA one. Such a state is always kept, written and sent in that form.
    pub fn legacy(&self) -> Option<(Tat, Option<StoredPolicy>)> {
        let [Usage::Gcra(tat)] = self.usage.as_slice() else {
            return None;
        };
        match &self.stored {
            None => Some((*tat, None)),
            Some(s) => s.single_gcra().map(|p| (*tat, Some(p))),
        }
    }
}

/// The RDB fields of a state, in order (version 1's for a legacy state).
pub fn encode(state: &SetState) -> Vec<u64> {
    if let Some((tat, stored)) = state.legacy() {
        let (f, n) = codec::encode(tat, stored);
        return f[..n].to_vec();
    }
    let mut f = vec![0, 0, 1, KIND_SET, state.usage.len() as u64];
    for u in &state.usage {
        match u {
            Usage::Gcra(t) => f.extend([USAGE_GCRA, t.ms(), t.frac(), t.den()]),
            Usage::Sliding(log) => {
                f.extend([USAGE_SLIDING, log.base_ms(), log.len() as u64]);
                for (offset, count) in log.parts() {
                    f.extend([offset, count]);
                }
            }
        }
    }
    match &state.stored {
        None => f.push(0),
        Some(s) => {
            f.push(1);
            for l in s.limits.as_slice() {
                f.extend(limit_fields(l));
            }
            f.extend([s.idle_ms, s.flags()]);
        }
    }
    f
}

fn limit_fields(l: &Limit) -> [u64; 4] {
    match l {
        Limit::Gcra(p) => [USAGE_GCRA, p.limit(), p.window_ms(), p.burst()],
        Limit::Sliding(s) => [USAGE_SLIDING, s.limit(), s.window_ms(), s.limit()],
    }
}

/// A limit from its four fields, through the constructors the commands use.
fn limit_from_fields([kind, limit, window_ms, burst]: [u64; 4]) -> Option<Limit> {
    match kind {
        // A stored burst is never 0 (0 would mean "same as limit" to Policy::new).
        USAGE_GCRA if burst > 0 => Policy::new(limit, window_ms, burst).ok().map(Limit::Gcra),
        USAGE_SLIDING if burst == limit => Sliding::new(limit, window_ms).ok().map(Limit::Sliding),
        _ => None,
    }
}

/// Reads a state of encoding version 2 field by field (`None`: the input failed, ended, or
/// holds a state the commands cannot produce). Version 1's kinds read as they always have.
pub fn decode(mut read: impl FnMut() -> Option<u64>) -> Option<SetState> {
    let head = [read()?, read()?, read()?, read()?];
    if head[3] != KIND_SET {
        let mut replay = head.into_iter();
        let (tat, stored) = codec::decode(|| replay.next().or_else(&mut read))?;
        return Some(SetState::from_legacy(tat, stored));
    }
    if head[..3] != [0, 0, 1] {
        return None;
    }
    let n = read()?;
    if n == 0 || n > MAX_LIMITS as u64 {
        return None;
    }
    let mut usage = Vec::with_capacity(n as usize);
    for _ in 0..n {
        usage.push(match read()? {
            USAGE_GCRA => {
                let tat = Tat::new(read()?, read()?, read()?)?;
                if tat != tat.reduced() {
                    return None;
                }
                Usage::Gcra(tat)
            }
            USAGE_SLIDING => {
                let base = read()?;
                let m = read()?;
                if m > MAX_SLIDING_LIMIT {
                    return None;
                }
                let mut parts = Vec::with_capacity(m as usize);
                for _ in 0..m {
                    parts.push((read()?, read()?));
                }
                Usage::Sliding(Log::from_parts(base, &parts)?)
            }
            _ => return None,
        });
    }
    let stored = match read()? {
        0 => None,
        1 => {
            let mut limits = Vec::with_capacity(usage.len());
            for _ in 0..usage.len() {
                limits.push(limit_from_fields([read()?, read()?, read()?, read()?])?);
            }
            let (idle_ms, flags) = (read()?, read()?);
            Some(stored_limits(&limits, idle_ms, flags)?)
        }
        _ => return None,
    };
    let state = SetState::new(usage, stored)?;
    // One GCRA limit has version 1's form, and only that form.
    state.legacy().is_none().then_some(state)
}

/// Stored limits from their parts, validated like `StoredPolicy::from_fields`.
fn stored_limits(limits: &[Limit], idle_ms: u64, flags: u64) -> Option<StoredLimits> {
    let limits = Limits::new(limits).ok()?;
    // The idle bound and the known flags, checked by the single-policy constructor.
    let probe = StoredPolicy::from_fields([1, 1, 1, idle_ms, flags])?;
    Some(StoredLimits {
        limits,
        idle_ms: probe.idle_ms,
        shadow: probe.shadow,
    })
}

/// `RL.APPLY`'s two text arguments for a state that has no version-1 form: the state (with
/// the key's absolute expiry) and, when the write sets it, the stored limits.
/// `records[i]`, when given, is sent for usage `i` instead of its whole log.
pub fn apply_text(
    state: &SetState,
    expire_at_ms: Option<u64>,
    set_policy: bool,
    records: &[Option<Record>],
) -> (Vec<u8>, Option<Vec<u8>>) {
    let mut s = Vec::with_capacity(32);
    for (i, u) in state.usage.iter().enumerate() {
        if i > 0 {
            s.push(b',');
        }
        if let Some(Some(r)) = records.get(i) {
            let _ = write!(s, "R{}x{}w{}", r.at_ms, r.cost, r.window_ms);
            continue;
        }
        match u {
            Usage::Gcra(t) => s.extend_from_slice(StateText::new(*t, None).as_bytes()),
            Usage::Sliding(log) => {
                s.push(b'S');
                for (j, (offset, count)) in log.parts().enumerate() {
                    if j == 0 {
                        let _ = write!(s, "{}x{}", log.base_ms(), count);
                    } else {
                        let _ = write!(s, ":{offset}x{count}");
                    }
                }
            }
        }
    }
    if let Some(e) = expire_at_ms {
        append_expiry(&mut s, e);
    }
    let policy = state.stored.filter(|_| set_policy).map(|st| {
        let mut p = Vec::with_capacity(32);
        for (i, l) in st.limits.as_slice().iter().enumerate() {
            if i > 0 {
                p.push(b',');
            }
            let _ = match l {
                Limit::Gcra(g) => write!(p, "g{}:{}:{}", g.limit(), g.window_ms(), g.burst()),
                Limit::Sliding(sl) => write!(p, "s{}:{}", sl.limit(), sl.window_ms()),
            };
        }
        let _ = write!(p, ";{};{}", st.idle_ms, st.flags());
        p
    });
    (s, policy)
}

/// Adds the key's absolute expiry to a state's text (`@<ms>`).
pub fn append_expiry(text: &mut Vec<u8>, expire_at_ms: u64) {
    let _ = write!(text, "@{expire_at_ms}");
}

/// One allowed request to record in a SLIDING log the replica already holds: what
/// `Log::record` did on the master, with the window it pruned by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    pub at_ms: u64,
    pub cost: u64,
    pub window_ms: u64,
}

impl Record {
    /// Records the request in `log` as the master did; `false` (and the log is not to be
    /// stored) if the result is a log no command could hold: the replica's log was not the
    /// master's.
    pub fn apply(&self, log: &mut Log) -> bool {
        let Ok(window) = Sliding::new(MAX_SLIDING_LIMIT, self.window_ms) else {
            return false;
        };
        if self.cost == 0 || self.cost > MAX_SLIDING_LIMIT || self.at_ms > MAX_TAT_MS {
            return false;
        }
        log.record(&window, self.at_ms, self.cost);
        let parts: Vec<(u64, u64)> = log.parts().collect();
        Log::from_parts(log.base_ms(), &parts).is_some()
    }
}

/// What an `RL.APPLY` in the set form carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplySet {
    /// Each usage; where `records` has a request, an empty log to be replaced by the
    /// replica's own log with that request recorded.
    pub usage: Vec<Usage>,
    /// Per usage, the request to record in the replica's log instead of a whole state.
    pub records: Vec<Option<Record>>,
    pub expire_at_ms: Option<u64>,
    /// Present when the write set the policy.
    pub stored: Option<StoredLimits>,
}

/// Whether `RL.APPLY`'s arguments (after the key) are in the set form rather than version
/// 1's: a `LIMITS` keyword, or a state with a `,` or a SLIDING usage.
pub fn is_set_form(args: &[&[u8]]) -> bool {
    match args {
        [_, kw, _] if kw.eq_ignore_ascii_case(b"LIMITS") => true,
        [state] => state.contains(&b',') || matches!(state.first(), Some(b'S' | b'R')),
        _ => false,
    }
}

/// Parses `RL.APPLY`'s set form: `<state> [LIMITS <limits>]`. `None` for anything the
/// commands cannot have written.
pub fn parse_apply_set(args: &[&[u8]]) -> Option<ApplySet> {
    let (state, policy) = match args {
        [state] => (*state, None),
        [state, kw, limits] if kw.eq_ignore_ascii_case(b"LIMITS") => (*state, Some(*limits)),
        _ => return None,
    };
    let (body, expire_at_ms) = split_expiry(state)?;
    let mut usage = Vec::new();
    let mut records = Vec::new();
    for part in body.split(|&b| b == b',') {
        if usage.len() == MAX_LIMITS {
            return None;
        }
        match part.strip_prefix(b"R") {
            Some(r) => {
                records.push(Some(parse_record(r)?));
                usage.push(Usage::Sliding(Log::EMPTY));
            }
            None => {
                records.push(None);
                usage.push(parse_usage(part)?);
            }
        }
    }
    let stored = match policy {
        None => None,
        Some(text) => Some(parse_limits_text(text)?),
    };
    // A write that sets the limits sends whole usages.
    if stored.is_some() && records.iter().any(Option::is_some) {
        return None;
    }
    // Without LIMITS the key keeps its policy, which the write checks against the usages.
    let checked = SetState::new(usage, stored)?;
    if stored.is_some() && checked.legacy().is_some() {
        return None;
    }
    if stored.is_none() && matches!(checked.usage.as_slice(), [Usage::Gcra(_)]) {
        return None;
    }
    Some(ApplySet {
        usage: checked.usage,
        records,
        expire_at_ms,
        stored,
    })
}

/// `<at_ms>x<cost>w<window_ms>` (after the `R`).
fn parse_record(r: &[u8]) -> Option<Record> {
    let x = r.iter().position(|&b| b == b'x')?;
    let w = r.iter().position(|&b| b == b'w')?;
    if w < x {
        return None;
    }
    let record = Record {
        at_ms: natural(&r[..x])?,
        cost: natural(&r[x + 1..w])?,
        window_ms: natural(&r[w + 1..])?,
    };
    let valid = (1..=MAX_SLIDING_LIMIT).contains(&record.cost)
        && record.at_ms <= MAX_TAT_MS
        && Sliding::new(MAX_SLIDING_LIMIT, record.window_ms).is_ok();
    valid.then_some(record)
}

fn parse_usage(part: &[u8]) -> Option<Usage> {
    let Some(log) = part.strip_prefix(b"S") else {
        return parse_tat(part).map(Usage::Gcra);
    };
    if log.is_empty() {
        return Some(Usage::Sliding(Log::EMPTY));
    }
    let mut parts = Vec::new();
    let mut base = 0;
    for (i, entry) in log.split(|&b| b == b':').enumerate() {
        if parts.len() as u64 >= MAX_SLIDING_LIMIT {
            return None;
        }
        let x = entry.iter().position(|&b| b == b'x')?;
        let (at, count) = (natural(&entry[..x])?, natural(&entry[x + 1..])?);
        if i == 0 {
            base = at;
            parts.push((0, count));
        } else {
            parts.push((at, count));
        }
    }
    Log::from_parts(base, &parts).map(Usage::Sliding)
}

/// `<ms>[+<frac>/<den>]` in lowest terms, as the commands write it.
fn parse_tat(s: &[u8]) -> Option<Tat> {
    let tat = effect::parse_tat(s)?;
    (tat == tat.reduced()).then_some(tat)
}

fn parse_limits_text(text: &[u8]) -> Option<StoredLimits> {
    let mut fields = text.split(|&b| b == b';');
    let (specs, idle, flags) = (fields.next()?, fields.next()?, fields.next()?);
    if fields.next().is_some() {
        return None;
    }
    let mut limits = Vec::new();
    for spec in specs.split(|&b| b == b',') {
        if limits.len() == MAX_LIMITS {
            return None;
        }
        let (kind, rest) = spec.split_first()?;
        let mut nums = rest.split(|&b| b == b':');
        let limit = match kind {
            b'g' => {
                let f = [
                    natural(nums.next()?)?,
                    natural(nums.next()?)?,
                    natural(nums.next()?)?,
                ];
                limit_from_fields([USAGE_GCRA, f[0], f[1], f[2]])?
            }
            b's' => {
                let (l, w) = (natural(nums.next()?)?, natural(nums.next()?)?);
                limit_from_fields([USAGE_SLIDING, l, w, l])?
            }
            _ => return None,
        };
        if nums.next().is_some() {
            return None;
        }
        limits.push(limit);
    }
    stored_limits(&limits, natural(idle)?, natural(flags)?)
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
