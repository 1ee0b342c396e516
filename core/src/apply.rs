//! `RL.APPLY`, the effect every write sends to replicas and the AOF, as text: how it is
//! written, how it is read, and how it combines with the key a replica holds.
//!
//! A check's answer depends on the clock, so replaying the command on a replica or from an
//! AOF at another instant would compute another state; the master sends the resulting state
//! instead, with the key's absolute expiry. Two forms, both still written and read:
//!
//! - **Version 1** (one GCRA limit): `RL.APPLY key <state> [POLICY limit window_ms burst
//!   idle_ms flags]`, `<state>` = `<tat_ms>[+<frac>/<den>][@<expire_at_ms>]`, e.g.
//!   `rl.apply user123 1764287000123+1/3@1764287000124`. One argument, because every argument
//!   of a replicated command costs Redis an object per request.
//! - **The set form** (anything else): `RL.APPLY key <usages>[~<pending_at_ms>][@<expire_at_ms>]
//!   [LIMITS <limits>]`. `<usages>` are joined by `,`: a GCRA usage as above, a SLIDING log
//!   `S` (empty) or `S<base>x<count>(:<offset>x<count>)*[w<window_ms>]` (its window written
//!   only when it is not implied, as in `rdb.rs`), or `R<at_ms>x<cost>w<window_ms>`: the one
//!   request an allowed check recorded in a log the replica already holds, which it records
//!   the same way (about 80 bytes of AOF where a whole log is up to 16 KB). `<limits>` is
//!   `<spec>(,<spec>)*;<idle_ms>;<flags>`, a spec `g<limit>:<window_ms>:<burst>` or
//!   `s<limit>:<window_ms>`. `~` marks a reconfiguration pending since that instant (see
//!   `state.rs`). Without `LIMITS` the key keeps its stored policy.
//! - **Issues 19 and 20** add, to the set form only: a CONCURRENCY usage, `C` then its leases
//!   `<id>x<cost>e<expires_at_ms>` joined by `:`; a CONCURRENCY limit `c<limit>:<window_ms>`;
//!   a stored `PENALTY` as `;<ms>;<max_ms>` after the flags (flag 2 says it follows); and the
//!   key-level parts, as a last argument `PARTS <parts>`: items joined by `;`, in this order,
//!   each when there is one: `n<last_id>`, `b<until_ms>:<level>`, a hold
//!   `h<id>:<estimate>:<at_ms>:<expires_at_ms>(:<end>)*` per open hold (its GCRA limits' ends,
//!   each `<ms>[+<frac>/<den>]`, `0` where it keeps none, up to the last it keeps), and
//!   `q<spec>(,<spec>)*` (the limits a key with no policy reserved under). A line without
//!   `PARTS` leaves the key none (every write of a key with parts sends them whole).
//!
//! Reading is as strict as an RDB load: whatever arrives must describe a state the commands
//! could have produced, in the form they write it.
//!
//! PURE: no Redis types here.

use crate::args::natural;
use crate::error::Error;
use crate::kinds::concurrency::{Concurrency, Leases, MAX_CONCURRENCY_LIMIT};
use crate::kinds::gcra::{Gcra, Tat, MAX_TAT_MS};
use crate::kinds::sliding::{Log, Sliding, MAX_SLIDING_LIMIT};
use crate::kinds::{Limit, Usage};
use crate::parts::{Block, Hold, Parts, MAX_HOLDS};
use crate::policy::{Policy, Stored, FLAG_PENALTY, MAX_LIMITS};
use crate::rdb::{compact, Compact};
use crate::state::{State, StateRef, Usages};
use crate::text::Text;

/// Latest expiry `RL.APPLY` accepts, in Unix ms: any that Redis can hold (a configured key
/// keeps a user's TTL, and whatever the master stores, its replicas and AOF must accept).
pub const MAX_EXPIRE_AT_MS: u64 = i64::MAX as u64;

/// The request an allowed check recorded in a SLIDING log, sent instead of the whole log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    pub at_ms: u64,
    pub cost: u64,
    pub window_ms: u64,
}

/// A usage as `RL.APPLY` carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sent {
    /// The whole usage; a log's own window when it was written (else it is implied).
    Whole(Usage, Option<u64>),
    /// A request to record in the log the replica holds at this position.
    Record(Record),
}

/// What an `RL.APPLY` line carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Apply {
    pub usages: Vec<Sent>,
    /// The stored policy, when this write sets it (`POLICY` or `LIMITS`).
    pub stored: Option<Stored>,
    pub pending_at_ms: Option<u64>,
    /// The key's absolute expiry in Unix ms; `None`: it has none.
    pub expire_at_ms: Option<u64>,
    /// The key-level parts (`PARTS`); `None`: the key has none.
    pub parts: Option<Box<Parts>>,
}

/// The text arguments of an `RL.APPLY` line (after the key), built on the stack: the state,
/// and what follows it.
#[derive(Clone, Debug, Default)]
pub struct Line {
    pub state: Text<128>,
    pub extra: Extra,
    /// `PARTS <parts>`, for a key that has key-level parts (on the heap: most keys have none).
    pub parts: Option<Text<0>>,
}

/// What follows the state on a line.
#[derive(Clone, Debug, Default)]
pub enum Extra {
    #[default]
    Nothing,
    /// Version 1's `POLICY limit window_ms burst idle_ms flags`.
    Policy([u64; 5]),
    /// The set form's `LIMITS <limits>`.
    Limits(Text<128>),
}

impl Line {
    pub fn new() -> Line {
        Line::default()
    }
}

/// Writes into `line` the line for a write that leaves `state` with the key's expiry
/// `expire_at_ms`. `set_policy`: the write sets the stored policy (it is sent with it).
/// `records[i]`: the request recorded in log `i` of a key the replicas hold as a set, sent
/// instead of the log.
pub fn write_line(
    state: StateRef<'_>,
    expire_at_ms: Option<u64>,
    set_policy: bool,
    records: &[Option<Record>],
    line: &mut Line,
) {
    write_line_of(
        state,
        compact(state),
        expire_at_ms,
        set_policy,
        records,
        line,
    );
}

/// [`write_line`] for a caller that has computed the state's [`compact`] form (`Key::write`
/// also stores the value from it: computed once, not twice).
#[inline]
pub fn write_line_of(
    state: StateRef<'_>,
    compact: Option<Compact>,
    expire_at_ms: Option<u64>,
    set_policy: bool,
    records: &[Option<Record>],
    line: &mut Line,
) {
    let text = &mut line.state;
    if let Some(Compact { tat, stored }) = compact {
        text.number(tat.ms());
        let digits = text.len();
        if tat.frac() > 0 {
            text.push(b'+');
            text.number(tat.frac());
            text.push(b'/');
            text.number(tat.den());
        }
        if let Some(at) = expire_at_ms {
            text.push(b'@');
            if at == tat.ms() {
                // The common usage-only key: its expiry is its TAT's ms; the same digits.
                text.repeat(0..digits);
            } else {
                text.number(at);
            }
        }
        if let Some(c) = stored.filter(|_| set_policy) {
            line.extra = Extra::Policy([
                c.gcra.limit(),
                c.gcra.window_ms(),
                c.gcra.burst(),
                c.idle_ms,
                c.flags,
            ]);
        }
        return;
    }
    let stored = state.stored;
    for (i, u) in state.usages.iter().enumerate() {
        if i > 0 {
            text.push(b',');
        }
        if let Some(Some(r)) = records.get(i).filter(|_| !set_policy) {
            text.push(b'R');
            text.number(r.at_ms);
            text.push(b'x');
            text.number(r.cost);
            text.push(b'w');
            text.number(r.window_ms);
            continue;
        }
        match u {
            Usage::Gcra(t) => write_tat(text, *t),
            Usage::Concurrency(leases) => {
                text.push(b'C');
                for (j, (id, cost, expires_at_ms)) in leases.parts().enumerate() {
                    if j > 0 {
                        text.push(b':');
                    }
                    text.number(id);
                    text.push(b'x');
                    text.number(cost);
                    text.push(b'e');
                    text.number(expires_at_ms);
                }
            }
            Usage::Sliding(log) => {
                text.push(b'S');
                for (j, (offset, count)) in log.parts().enumerate() {
                    if j == 0 {
                        text.number(log.base_ms());
                    } else {
                        text.push(b':');
                        text.number(offset);
                    }
                    text.push(b'x');
                    text.number(count);
                }
                if !log.is_empty() && log.window_ms() != implied_window(stored, i) {
                    text.push(b'w');
                    text.number(log.window_ms());
                }
            }
        }
    }
    if let Some(at) = state.pending_at_ms {
        text.push(b'~');
        text.number(at);
    }
    if let Some(at) = expire_at_ms {
        text.push(b'@');
        text.number(at);
    }
    if let Some(s) = stored.filter(|_| set_policy) {
        let mut p = Text::new();
        write_specs(&mut p, &s.policy);
        p.push(b';');
        p.number(s.idle_ms);
        p.push(b';');
        p.number(s.flags());
        if let Some(pen) = s.penalty() {
            p.push(b';');
            p.number(pen.ms);
            p.push(b';');
            p.number(pen.max_ms);
        }
        line.extra = Extra::Limits(p);
    }
    if let Some(parts) = state.parts {
        line.parts = Some(parts_text(parts));
    }
}

/// `<spec>(,<spec>)*`: `g<limit>:<window_ms>:<burst>`, `s<limit>:<window_ms>` or
/// `c<limit>:<window_ms>`.
fn write_specs<const N: usize>(p: &mut Text<N>, policy: &Policy) {
    for (i, l) in policy.limits().iter().enumerate() {
        if i > 0 {
            p.push(b',');
        }
        match l {
            Limit::Gcra(g) => {
                p.push(b'g');
                p.number(g.limit());
                p.push(b':');
                p.number(g.window_ms());
                p.push(b':');
                p.number(g.burst());
            }
            Limit::Sliding(sl) => {
                p.push(b's');
                p.number(sl.limit());
                p.push(b':');
                p.number(sl.window_ms());
            }
            Limit::Concurrency(c) => {
                p.push(b'c');
                p.number(c.limit());
                p.push(b':');
                p.number(c.window_ms());
            }
        }
    }
}

/// The `PARTS` argument (see the module documentation).
fn parts_text(parts: &Parts) -> Text<0> {
    let mut t = Text::new();
    let item = |t: &mut Text<0>, tag: u8| {
        if !t.is_empty() {
            t.push(b';');
        }
        t.push(tag);
    };
    if let Some(id) = parts.last_id {
        item(&mut t, b'n');
        t.number(id);
    }
    if let Some(b) = parts.block {
        item(&mut t, b'b');
        t.number(b.until_ms);
        t.push(b':');
        t.number(u64::from(b.level));
    }
    for h in &parts.holds {
        item(&mut t, b'h');
        for (i, v) in [h.id, h.estimate, h.at_ms, h.expires_at_ms]
            .into_iter()
            .enumerate()
        {
            if i > 0 {
                t.push(b':');
            }
            t.number(v);
        }
        for e in h.written_ends() {
            t.push(b':');
            write_tat(&mut t, *e);
        }
    }
    if let Some(policy) = parts.reserved_under {
        item(&mut t, b'q');
        write_specs(&mut t, &policy);
    }
    t
}

/// `<ms>[+<frac>/<den>]`.
fn write_tat<const N: usize>(text: &mut Text<N>, tat: Tat) {
    text.number(tat.ms());
    if tat.frac() > 0 {
        text.push(b'+');
        text.number(tat.frac());
        text.push(b'/');
        text.number(tat.den());
    }
}

/// The window a log at `position` is read with when its own is not written (as in `rdb.rs`).
fn implied_window(stored: Option<&Stored>, position: usize) -> u64 {
    match stored.and_then(|s| s.policy.limits().get(position)) {
        Some(Limit::Sliding(l)) => l.window_ms(),
        _ => 0,
    }
}

/// Parses `RL.APPLY`'s arguments after the key, either form.
pub fn parse_apply(args: &[&[u8]]) -> Result<Apply, Error> {
    match args {
        // Redis checks the registered arity for clients, but Redis 7.0's AOF loader does not:
        // a line with no state gets the arity error Redis itself would give.
        [] => Err(Error::WrongArity),
        [_, kw, _] | [_, kw, _, _, _]
            if kw.eq_ignore_ascii_case(b"LIMITS") || kw.eq_ignore_ascii_case(b"PARTS") =>
        {
            parse_set(args).ok_or(Error::ApplyInvalid)
        }
        [state]
            if state.iter().any(|b| matches!(b, b',' | b'~'))
                || matches!(state.first(), Some(b'S' | b'R' | b'C')) =>
        {
            parse_set(args).ok_or(Error::ApplyInvalid)
        }
        _ => parse_single(args).ok_or(Error::ApplyInvalid),
    }
}

/// Version 1: `<state> [POLICY limit window_ms burst idle_ms flags]`.
fn parse_single(args: &[&[u8]]) -> Option<Apply> {
    let (state, policy) = match args {
        [state] => (*state, None),
        [state, kw, rest @ ..] if kw.eq_ignore_ascii_case(b"POLICY") && rest.len() == 5 => {
            (*state, Some(rest))
        }
        _ => return None,
    };
    let (body, expire_at_ms) = split_expiry(state)?;
    // Version 1's writers did not always reduce the fraction (`+500/1000`): any exact one.
    let tat = parse_fraction(body)?.reduced();
    let stored = match policy {
        None => None,
        Some(fields) => {
            let mut v = [0u64; 5];
            for (slot, f) in v.iter_mut().zip(fields) {
                *slot = natural(f)?;
            }
            let [limit, window, burst, idle, flags] = v;
            if burst == 0 {
                return None;
            }
            let g = Gcra::new(limit, window, burst).ok()?;
            Some(Stored::from_parts(
                Policy::single(Limit::Gcra(g)),
                idle,
                flags,
                None,
            )?)
        }
    };
    Some(Apply {
        usages: vec![Sent::Whole(Usage::Gcra(tat), None)],
        stored,
        pending_at_ms: None,
        expire_at_ms,
        parts: None,
    })
}

/// The set form: `<usages>[~<at>][@<expiry>] [LIMITS <limits>] [PARTS <parts>]`.
fn parse_set(args: &[&[u8]]) -> Option<Apply> {
    let is = |kw: &[u8], name: &[u8]| kw.eq_ignore_ascii_case(name);
    let (state, limits, parts) = match args {
        [state] => (*state, None, None),
        [state, kw, limits] if is(kw, b"LIMITS") => (*state, Some(*limits), None),
        [state, kw, parts] if is(kw, b"PARTS") => (*state, None, Some(*parts)),
        [state, kw, limits, kw2, parts] if is(kw, b"LIMITS") && is(kw2, b"PARTS") => {
            (*state, Some(*limits), Some(*parts))
        }
        _ => return None,
    };
    let (body, expire_at_ms) = split_expiry(state)?;
    let (body, pending_at_ms) = match body.iter().position(|&b| b == b'~') {
        None => (body, None),
        Some(i) => {
            let at = natural(body.get(i + 1..)?)?;
            (at <= MAX_TAT_MS).then_some(())?;
            (body.get(..i)?, Some(at))
        }
    };
    let mut usages = Vec::new();
    // A key of parts alone (`RL.BLOCK` of an absent key) has no usages: an empty body, which
    // `State::new` accepts only beside parts.
    let body_parts = body.split(|&b| b == b',').filter(|_| !body.is_empty());
    for part in body_parts {
        if usages.len() == MAX_LIMITS {
            return None;
        }
        usages.push(match part.split_first()? {
            (b'R', r) => Sent::Record(parse_record(r)?),
            (b'S', log) => {
                let (log, window) = parse_log(log)?;
                Sent::Whole(Usage::Sliding(log), window)
            }
            (b'C', leases) => Sent::Whole(Usage::Concurrency(parse_leases(leases)?), None),
            _ => Sent::Whole(Usage::Gcra(parse_tat(part)?), None),
        });
    }
    let stored = match limits {
        None => None,
        Some(text) => Some(parse_limits(text)?),
    };
    let parts = match parts {
        None => None,
        Some(text) => Some(Box::new(parse_parts(text)?)),
    };
    // No usage at all only beside parts (a key of parts alone).
    if usages.is_empty() && parts.is_none() {
        return None;
    }
    let records = usages.iter().any(|u| matches!(u, Sent::Record(_)));
    // A write that sets the limits, or marks a pending change, sends whole usages.
    if records && (stored.is_some() || pending_at_ms.is_some()) {
        return None;
    }
    // One GCRA limit with nothing pending has version 1's form, and only that form.
    let single_gcra = matches!(usages.as_slice(), [Sent::Whole(Usage::Gcra(_), _)]);
    let single_policy = stored
        .as_ref()
        .is_none_or(|s| s.policy.single_gcra().is_some());
    let single_policy = single_policy && stored.as_ref().is_none_or(|s| s.penalty().is_none());
    if single_gcra && single_policy && pending_at_ms.is_none() && parts.is_none() {
        return None;
    }
    Some(Apply {
        usages,
        stored,
        pending_at_ms,
        expire_at_ms,
        parts,
    })
}

impl Apply {
    /// The state the key holds after this line, given what it holds now (`current`): the
    /// stored policy it keeps when the line does not set one, the logs the records go into.
    /// `None` if the result is a state no command could leave (the replica's key was not the
    /// master's, or the line was forged).
    pub fn state(&self, current: Option<StateRef<'_>>) -> Option<State> {
        let stored = match (&self.stored, current) {
            (Some(s), _) => Some(*s),
            (None, Some(c)) => c.stored.copied(),
            (None, None) => None,
        };
        let mut usages = Usages::new();
        for (i, sent) in self.usages.iter().enumerate() {
            let implied = implied_window(stored.as_ref(), i);
            let u = match sent {
                Sent::Whole(Usage::Sliding(log), None) => {
                    Usage::Sliding(log.clone().with_window(implied))
                }
                // Written only when it differs from the implied one.
                Sent::Whole(Usage::Sliding(log), Some(w)) if *w != implied && !log.is_empty() => {
                    Usage::Sliding(log.clone())
                }
                Sent::Whole(Usage::Gcra(t), _) => Usage::Gcra(*t),
                Sent::Whole(Usage::Concurrency(l), _) => Usage::Concurrency(l.clone()),
                Sent::Record(r) => {
                    let Some(Usage::Sliding(log)) = current.and_then(|c| c.usages.get(i)) else {
                        return None;
                    };
                    let mut log = log.clone();
                    log.record_sent(r.at_ms, r.cost, r.window_ms)
                        .then_some(())?;
                    Usage::Sliding(log)
                }
                _ => return None,
            };
            usages.push(u);
        }
        State::new(usages, stored, self.pending_at_ms, self.parts.clone())
    }
}

/// A state's text and its `@<expire_at_ms>`, if any: any expiry Redis can hold.
fn split_expiry(s: &[u8]) -> Option<(&[u8], Option<u64>)> {
    match s.iter().position(|&b| b == b'@') {
        None => Some((s, None)),
        Some(i) => {
            let e = natural(s.get(i + 1..)?)?;
            (1..=MAX_EXPIRE_AT_MS)
                .contains(&e)
                .then_some((s.get(..i)?, Some(e)))
        }
    }
}

/// `<tat_ms>[+<frac>/<den>]` in lowest terms, as the set form writes it.
fn parse_tat(s: &[u8]) -> Option<Tat> {
    let tat = parse_fraction(s)?;
    (tat == tat.reduced()).then_some(tat)
}

/// `<tat_ms>[+<frac>/<den>]` (a zero fraction is written without `+`).
fn parse_fraction(s: &[u8]) -> Option<Tat> {
    let tat = match s.iter().position(|&b| b == b'+') {
        None => Tat::new(natural(s)?, 0, 1)?,
        Some(i) => {
            let fraction = s.get(i + 1..)?;
            let slash = fraction.iter().position(|&b| b == b'/')?;
            let frac = natural(fraction.get(..slash)?)?;
            if frac == 0 {
                return None;
            }
            Tat::new(
                natural(s.get(..i)?)?,
                frac,
                natural(fraction.get(slash + 1..)?)?,
            )?
        }
    };
    Some(tat)
}

/// A log after its `S`: `` or `<base>x<c>(:<offset>x<c>)*[w<window>]`.
fn parse_log(text: &[u8]) -> Option<(Log, Option<u64>)> {
    if text.is_empty() {
        return Some((Log::EMPTY, None));
    }
    let (entries, window) = match text.iter().position(|&b| b == b'w') {
        None => (text, None),
        Some(i) => (text.get(..i)?, Some(natural(text.get(i + 1..)?)?)),
    };
    let mut parts = Vec::new();
    let mut base = 0;
    for (i, entry) in entries.split(|&b| b == b':').enumerate() {
        if parts.len() as u64 >= MAX_SLIDING_LIMIT {
            return None;
        }
        let x = entry.iter().position(|&b| b == b'x')?;
        let (at, count) = (natural(entry.get(..x)?)?, natural(entry.get(x + 1..)?)?);
        if i == 0 {
            base = at;
            parts.push((0, count));
        } else {
            parts.push((at, count));
        }
    }
    Some((Log::from_parts(base, window.unwrap_or(0), &parts)?, window))
}

/// `<at_ms>x<cost>w<window_ms>` (after the `R`).
fn parse_record(r: &[u8]) -> Option<Record> {
    let x = r.iter().position(|&b| b == b'x')?;
    let w = r.iter().position(|&b| b == b'w')?;
    if w < x {
        return None;
    }
    let record = Record {
        at_ms: natural(r.get(..x)?)?,
        cost: natural(r.get(x + 1..w)?)?,
        window_ms: natural(r.get(w + 1..)?)?,
    };
    let valid = (1..=MAX_SLIDING_LIMIT).contains(&record.cost)
        && record.at_ms <= MAX_TAT_MS
        && Sliding::new(MAX_SLIDING_LIMIT, record.window_ms).is_ok();
    valid.then_some(record)
}

/// `<spec>(,<spec>)*;<idle_ms>;<flags>[;<penalty_ms>;<max_ms>]`.
fn parse_limits(text: &[u8]) -> Option<Stored> {
    let mut fields = text.split(|&b| b == b';');
    let (specs, idle, flags) = (fields.next()?, fields.next()?, fields.next()?);
    let flags = natural(flags)?;
    let penalty = if flags & FLAG_PENALTY != 0 {
        Some((natural(fields.next()?)?, natural(fields.next()?)?))
    } else {
        None
    };
    if fields.next().is_some() {
        return None;
    }
    Stored::from_parts(parse_specs(specs)?, natural(idle)?, flags, penalty)
}

/// `<spec>(,<spec>)*`: a policy.
fn parse_specs(specs: &[u8]) -> Option<Policy> {
    let mut limits = Vec::new();
    for spec in specs.split(|&b| b == b',') {
        if limits.len() == MAX_LIMITS {
            return None;
        }
        let (kind, rest) = spec.split_first()?;
        let mut nums = rest.split(|&b| b == b':');
        let limit = match kind {
            b'g' => {
                let (l, w, b) = (
                    natural(nums.next()?)?,
                    natural(nums.next()?)?,
                    natural(nums.next()?)?,
                );
                if b == 0 {
                    return None;
                }
                Limit::Gcra(Gcra::new(l, w, b).ok()?)
            }
            b's' => {
                Limit::Sliding(Sliding::new(natural(nums.next()?)?, natural(nums.next()?)?).ok()?)
            }
            b'c' => Limit::Concurrency(
                Concurrency::new(natural(nums.next()?)?, natural(nums.next()?)?).ok()?,
            ),
            _ => return None,
        };
        if nums.next().is_some() {
            return None;
        }
        limits.push(limit);
    }
    Policy::new(&limits).ok()
}

/// Leases after their `C`: `` or `<id>x<cost>e<expires_at_ms>(:...)*`.
fn parse_leases(text: &[u8]) -> Option<Leases> {
    if text.is_empty() {
        return Some(Leases::EMPTY);
    }
    let mut parts = Vec::new();
    for lease in text.split(|&b| b == b':') {
        if parts.len() as u64 >= MAX_CONCURRENCY_LIMIT {
            return None;
        }
        let x = lease.iter().position(|&b| b == b'x')?;
        let e = lease.iter().position(|&b| b == b'e')?;
        if e < x {
            return None;
        }
        parts.push((
            natural(lease.get(..x)?)?,
            natural(lease.get(x + 1..e)?)?,
            natural(lease.get(e + 1..)?)?,
        ));
    }
    Leases::from_parts(&parts)
}

/// `PARTS`: `n<last_id>`, `b<until>:<level>`, `h...` per hold, `q<specs>`, joined by `;`, in
/// this order, each when there is one.
fn parse_parts(text: &[u8]) -> Option<Parts> {
    let mut parts = Parts::default();
    // Items in order: the rank of the last one read (holds may repeat).
    let mut rank = 0;
    for item in text.split(|&b| b == b';') {
        let (tag, body) = item.split_first()?;
        let this = match tag {
            b'n' => 1,
            b'b' => 2,
            b'h' => 3,
            b'q' => 4,
            _ => return None,
        };
        if this < rank || (this == rank && this != 3) {
            return None;
        }
        rank = this;
        let mut nums = body.split(|&b| b == b':');
        match tag {
            b'n' => parts.last_id = Some(natural(body)?),
            b'b' => {
                parts.block = Some(Block::new(natural(nums.next()?)?, natural(nums.next()?)?)?);
                if nums.next().is_some() {
                    return None;
                }
            }
            b'h' => {
                if parts.holds.len() >= MAX_HOLDS {
                    return None;
                }
                let mut head = [0u64; 4];
                for slot in &mut head {
                    *slot = natural(nums.next()?)?;
                }
                let mut ends = Vec::new();
                for e in nums {
                    if ends.len() >= MAX_LIMITS {
                        return None;
                    }
                    ends.push(parse_tat(e)?);
                }
                let [id, estimate, at_ms, expires_at_ms] = head;
                parts
                    .holds
                    .push(Hold::from_parts(id, estimate, at_ms, expires_at_ms, &ends)?);
            }
            _ => parts.reserved_under = Some(parse_specs(body)?),
        }
    }
    Some(parts)
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
