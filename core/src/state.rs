//! A key's state, and the rules by which a reconfiguration carries usage.
//!
//! A key holds one usage per limit (a CONCURRENCY limit's usage is its leases), the policy
//! `RL.CONFIG` stored (none for a usage-only key), after a reconfiguration that changed how
//! its usage reads the instant of that change (`pending_at_ms`), and its key-level parts
//! (`parts.rs`: the id sequence, open holds, the block), boxed and absent on most keys.
//!
//! **Reconfiguration.** `RL.CONFIG` never rewrites usage. Until the key's next write, the
//! usage stays exactly as the old limits recorded it, and every read carries it to the new
//! limits *as of the instant of the change* ([`view`]): position by position, a usage of the
//! same kind is kept by its kind's rule (GCRA: the same backlog, read as at most one full
//! bucket from the change; SLIDING: the requests the old window had not forgotten, under the
//! new window from then on), one of another kind is carried as what was still live under the
//! old limit then (a backlog owed, or requests inside the old window), and a limit added at
//! the end starts empty. The next write (an allowed request, a reset) stores the carried
//! usage. So:
//! - nothing that had expired under the old limit at the change ever counts again, whether or
//!   not something pruned it;
//! - any sequence of reconfigurations within one millisecond reads exactly as the last one
//!   alone would have from the usage before the first (a round trip changes nothing), so no
//!   such sequence gives more room than its start;
//! - reconfigurations at different instants each carry what was live at their own instant.
//!
//! A usage-only key's usage is read under each call's limits by the same rules at the
//! instant of the call, and a write stores it in those limits' form.
//!
//! PURE: no Redis types here.

use std::ops::{Deref, DerefMut};

use crate::decide::{numbers, Decision, Numbers};
use crate::kinds::{Limit, Usage};
use crate::parts::Parts;
use crate::policy::{Policy, Stored, MAX_LIMITS};

/// Most usages a key holds (one per limit).
pub const MAX_USAGES: usize = MAX_LIMITS;

/// A key's usages, held inline: 0 to [`MAX_USAGES`].
#[derive(Clone, Debug)]
pub struct Usages {
    items: [Usage; MAX_USAGES],
    len: u8,
}

impl PartialEq for Usages {
    fn eq(&self, other: &Usages) -> bool {
        self.deref() == other.deref()
    }
}

impl Eq for Usages {}

impl Default for Usages {
    fn default() -> Usages {
        Usages::new()
    }
}

impl Usages {
    const FILLER: Usage = Usage::Gcra(crate::kinds::gcra::Tat::EMPTY);

    #[inline]
    pub const fn new() -> Usages {
        Usages {
            items: [
                Usages::FILLER,
                Usages::FILLER,
                Usages::FILLER,
                Usages::FILLER,
            ],
            len: 0,
        }
    }

    /// One empty usage per limit of `policy`.
    #[inline]
    pub fn empty_for(policy: &Policy) -> Usages {
        let l = policy.limits();
        let slot = |i: usize| l.get(i).map_or(Usages::FILLER, Limit::empty);
        Usages {
            items: [slot(0), slot(1), slot(2), slot(3)],
            len: u8::try_from(l.len()).unwrap_or(0),
        }
    }

    /// Adds a usage; `false` (and nothing added) when it already holds [`MAX_USAGES`].
    #[inline]
    pub fn push(&mut self, u: Usage) -> bool {
        match self.items.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = u;
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// The usages from a slice of at most [`MAX_USAGES`] (cloned; `None` for more).
    pub fn from_slice(usages: &[Usage]) -> Option<Usages> {
        let mut out = Usages::new();
        for u in usages {
            if !out.push(u.clone()) {
                return None;
            }
        }
        Some(out)
    }

    /// Moves the usages out, leaving this empty (no allocation: a log's buffer moves with it).
    pub fn take(&mut self) -> Usages {
        std::mem::take(self)
    }

    /// The usages, by value, in order.
    pub fn into_iter_owned(self) -> impl Iterator<Item = Usage> {
        let len = usize::from(self.len);
        self.items.into_iter().take(len)
    }
}

impl Deref for Usages {
    type Target = [Usage];
    #[inline]
    fn deref(&self) -> &[Usage] {
        self.items.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

impl DerefMut for Usages {
    #[inline]
    fn deref_mut(&mut self) -> &mut [Usage] {
        self.items
            .get_mut(..usize::from(self.len))
            .unwrap_or(&mut [])
    }
}

/// A key's whole state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    /// As recorded: one per limit of the policy that last wrote them (more or fewer than the
    /// stored limits only while a reconfiguration is pending).
    pub usages: Usages,
    /// What `RL.CONFIG` stored; `None` for a usage-only key.
    pub stored: Option<Stored>,
    /// The instant of a reconfiguration the usages have not been written under yet.
    pub pending_at_ms: Option<u64>,
    /// The key-level parts; `None` when it has none (most keys).
    pub parts: Option<Box<Parts>>,
}

/// A state borrowed from wherever it is held (the module's value layouts keep it in pieces).
#[derive(Clone, Copy, Debug)]
pub struct StateRef<'a> {
    pub usages: &'a [Usage],
    pub stored: Option<&'a Stored>,
    pub pending_at_ms: Option<u64>,
    pub parts: Option<&'a Parts>,
}

impl StateRef<'_> {
    /// An owned copy.
    pub fn to_state(&self) -> State {
        State {
            usages: Usages::from_slice(self.usages).unwrap_or_default(),
            stored: self.stored.copied(),
            pending_at_ms: self.pending_at_ms,
            parts: self.parts.map(|p| Box::new(p.clone())),
        }
    }

    /// Unix ms from which the usage is empty as recorded (what a usage-only key's expiry is,
    /// and its `reset_after_ms`), at least `now_ms`; `fallback` for a usage that does not know
    /// (a SLIDING log written before logs kept their window).
    pub fn own_empty_at_ms(&self, now_ms: u64, fallback: u64) -> u64 {
        self.usages
            .iter()
            .map(|u| u.own_empty_at_ms(now_ms).unwrap_or(fallback))
            .fold(now_ms, u64::max)
    }
}

/// Drops a state the cheap way when it owns no heap memory (no parts, every usage a GCRA
/// TAT: a new or compact key's, the common case): it is forgotten, since there is nothing to
/// free, where its drop glue would test all four usage slots and the parts (about 50
/// instructions per RL.ALLOW, callgrind). Leak-free because the slots past `len` always hold
/// the GCRA filler ([`Usages`] writes no other there).
#[inline(always)]
pub fn discard(state: Option<State>) {
    if let Some(s) = &state {
        if s.parts.is_none() && s.usages.iter().all(|u| matches!(u, Usage::Gcra(_))) {
            std::mem::forget(state);
        }
    }
}

impl State {
    #[inline]
    pub fn as_ref(&self) -> StateRef<'_> {
        StateRef {
            usages: &self.usages,
            stored: self.stored.as_ref(),
            pending_at_ms: self.pending_at_ms,
            parts: self.parts.as_deref(),
        }
    }

    /// A state of usages alone (the common case), with nothing stored or pending.
    #[inline]
    pub fn usage_only(usages: Usages) -> State {
        State {
            usages,
            stored: None,
            pending_at_ms: None,
            parts: None,
        }
    }

    /// A state the commands can hold, or `None`: a usage-only key has 1 to [`MAX_USAGES`]
    /// usages (or none, when it holds key-level parts: a block on a key that had no usage)
    /// and nothing pending; a configured key without a pending change has one usage of the
    /// matching kind per stored limit; a pending change belongs to a configured key; parts
    /// are valid for the key ([`Parts::is_valid`]), and every lease was issued by its sequence.
    #[inline]
    pub fn new(
        usages: Usages,
        stored: Option<Stored>,
        pending_at_ms: Option<u64>,
        parts: Option<Box<Parts>>,
    ) -> Option<State> {
        // Every state the commands leave has a usage: one per limit, or (while a change is
        // pending) the ones recorded under the previous limits or by a usage-only key; or, on
        // a usage-only key, key-level parts alone.
        let valid = (!usages.is_empty() || (stored.is_none() && parts.is_some()))
            && match (&stored, pending_at_ms) {
                (None, None) => true,
                (None, Some(_)) => false,
                (Some(s), None) => is_native(&s.policy, &usages),
                (Some(_), Some(at)) => at <= crate::kinds::gcra::MAX_TAT_MS,
            }
            && parts
                .as_deref()
                .is_none_or(|p| p.is_valid(stored.is_some()))
            && leases_issued(&usages, parts.as_deref());
        valid.then_some(State {
            usages,
            stored,
            pending_at_ms,
            parts,
        })
    }

    /// The state `RL.CONFIG` leaves when it stores `new` at `now_ms` on a key holding
    /// `current` (see the module documentation).
    ///
    /// The key-level parts stay (the id sequence, open holds, the block and its level); the
    /// limits holds were reserved under go, since the key now stores its own.
    pub fn configure(current: Option<State>, new: Stored, now_ms: u64) -> State {
        let Some(current) = current else {
            return State {
                usages: Usages::empty_for(&new.policy),
                stored: Some(new),
                pending_at_ms: None,
                parts: None,
            };
        };
        let mut parts = current.parts;
        if let Some(p) = parts.as_deref_mut() {
            p.reserved_under = None;
        }
        let parts = parts.filter(|p| !p.is_empty());
        if current.usages.is_empty() {
            // A key of key-level parts alone (a block on a key that had no usage).
            return State {
                usages: Usages::empty_for(&new.policy),
                stored: Some(new),
                pending_at_ms: None,
                parts,
            };
        }
        let mut raw = current.usages;
        match (current.pending_at_ms, current.stored) {
            // Within one ms of the previous change: carry from the usage before it.
            (Some(at), _) if at == now_ms => {}
            (Some(at), Some(old)) => raw = carried(&old.policy, &raw, at),
            (_, Some(old)) => stamp_windows(&mut raw, &old.policy),
            (_, None) => {}
        }
        // A clock past the last storable instant (about 36 million years from 1970) records
        // that instant, so the state stays one that loads back.
        let pending = (!is_native(&new.policy, &raw) || carried(&new.policy, &raw, now_ms) != raw)
            .then_some(now_ms.min(crate::kinds::gcra::MAX_TAT_MS));
        State {
            usages: raw,
            stored: Some(new),
            pending_at_ms: pending,
            parts,
        }
    }

    /// The state `RL.RESET` leaves on a configured key: every limit empty, no hold, lease or
    /// block (nor penalty level); the policy and the id sequence kept.
    pub fn reset(stored: Stored, last_id: Option<u64>) -> State {
        State {
            usages: Usages::empty_for(&stored.policy),
            stored: Some(stored),
            pending_at_ms: None,
            parts: last_id.map(|id| {
                Box::new(Parts {
                    last_id: Some(id),
                    ..Parts::default()
                })
            }),
        }
    }

    /// The usages as `policy` reads them at `now_ms` (see [`view`]).
    #[inline]
    pub fn view(&self, policy: &Policy, now_ms: u64) -> View<'_> {
        view(policy, &self.usages, self.pending_at_ms, now_ms)
    }

    /// Unix ms from which the usage is empty as recorded (what a usage-only key's expiry is,
    /// and its `reset_after_ms`), at least `now_ms`; `fallback` for a usage that does not know
    /// (a SLIDING log written before logs kept their window).
    pub fn own_empty_at_ms(&self, now_ms: u64, fallback: u64) -> u64 {
        self.as_ref().own_empty_at_ms(now_ms, fallback)
    }
}

/// Whether every lease of `usages` has an id the key's sequence issued.
fn leases_issued(usages: &[Usage], parts: Option<&Parts>) -> bool {
    let last = parts.and_then(|p| p.last_id);
    usages.iter().all(|u| match u {
        Usage::Concurrency(leases) => leases
            .all()
            .last()
            .is_none_or(|l| last.is_some_and(|last| l.id <= last)),
        _ => true,
    })
}

/// Whether `usages` are one per limit of `policy`, each of its limit's kind: then the policy
/// reads them as they are.
#[inline]
pub fn is_native(policy: &Policy, usages: &[Usage]) -> bool {
    usages.len() == policy.len() && policy.limits().iter().zip(usages).all(|(l, u)| l.fits(u))
}

/// The usages `policy` reads: the recorded ones when they are native and nothing is pending,
/// else carried to it as of the pending change (a configured key) or `now_ms` (a usage-only
/// key under a call's other limits).
#[inline]
pub fn view<'a>(
    policy: &Policy,
    usages: &'a [Usage],
    pending_at_ms: Option<u64>,
    now_ms: u64,
) -> View<'a> {
    match pending_at_ms {
        None if is_native(policy, usages) => View::Recorded(usages),
        at => View::Carried(carried(policy, usages, at.unwrap_or(now_ms))),
    }
}

/// Usages as a policy reads them: borrowed as recorded, or carried (owned).
pub enum View<'a> {
    Recorded(&'a [Usage]),
    Carried(Usages),
}

impl View<'_> {
    pub fn as_slice(&self) -> &[Usage] {
        match self {
            View::Recorded(u) => u,
            View::Carried(u) => u,
        }
    }

    /// Whether the usages were carried to the policy (then a write stores them whole).
    pub fn is_carried(&self) -> bool {
        matches!(self, View::Carried(_))
    }

    /// The usages, owned.
    #[inline]
    pub fn into_usages(self) -> Usages {
        match self {
            View::Recorded(u) => Usages::from_slice(u).unwrap_or_default(),
            View::Carried(u) => u,
        }
    }
}

/// `usages` carried to `policy` at `at_ms`, position by position: kept or carried by the
/// limit's kind ([`Limit::carry`]), empty where there was none; usages past the last limit
/// are dropped.
pub fn carried(policy: &Policy, usages: &[Usage], at_ms: u64) -> Usages {
    let mut out = Usages::new();
    for (i, limit) in policy.limits().iter().enumerate() {
        out.push(match usages.get(i) {
            Some(u) => limit.carry(u, at_ms),
            None => limit.empty(),
        });
    }
    out
}

/// Gives SLIDING logs that do not know their window (written before logs kept it) the window
/// of the limit that recorded them.
pub fn stamp_windows(usages: &mut [Usage], policy: &Policy) {
    for (u, l) in usages.iter_mut().zip(policy.limits()) {
        if let (Usage::Sliding(log), Limit::Sliding(s)) = (u, l) {
            if log.window_ms() == 0 && !log.is_empty() {
                *log = std::mem::take(log).with_window(s.window_ms());
            }
        }
    }
}

/// One request of `cost` at `now_ms` under `policy` on a whole state, as a check takes it:
/// decided on the usages as the policy reads them, recorded if allowed (or repaired if a
/// clock step left state ahead of now), and then stored in the policy's form (a pending
/// change is written). Returns the decision and whether the state changed. (The module does
/// the same in place when the usages are read as recorded; `ops.rs` has the whole check,
/// with blocks, penalties, holds and leases.)
pub fn request(state: &mut State, policy: &Policy, now_ms: u64, cost: u64) -> (Decision, bool) {
    let seen = state.view(policy, now_ms);
    let e = crate::ops::evaluate(
        policy,
        seen.as_slice(),
        state.parts.as_deref(),
        now_ms,
        cost,
        false,
        || None,
    );
    if !e.decision.allowed && !crate::decide::needs_repair(policy, seen.as_slice(), now_ms) {
        return (e.decision, false);
    }
    let mut usages = seen.into_usages();
    let committed = crate::ops::commit(
        &crate::ops::Op::Check,
        policy,
        &mut usages,
        &mut state.parts,
        &e,
        now_ms,
        cost,
    );
    if e.blocked_until.is_some() {
        return (e.decision.denied(), false);
    }
    if !committed.is_ok_and(|c| c.changed) {
        return (e.decision, false);
    }
    state.usages = usages;
    state.pending_at_ms = None;
    (e.decision, true)
}

/// What `RL.INFO` shows of a key, and what `RL.RESET` replies (`reset_after_ms`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// The numbers under the policy that reads the key (stored or default, scaled), if any.
    pub numbers: Option<Numbers>,
    /// Ms until every limit is empty: under the stored limits for a configured key; as
    /// recorded for a usage-only key (its PTTL, also after `PERSIST`).
    pub reset_after_ms: u64,
}

/// A key's status at `now_ms` under `policy` (the stored one, or the default for a
/// usage-only key; already scaled). `expire_at_ms`: the key's expiry, for a usage that does
/// not know when it is empty.
pub fn status(
    state: StateRef<'_>,
    policy: Option<&Policy>,
    now_ms: u64,
    expire_at_ms: Option<u64>,
) -> Status {
    let numbers = policy.map(|p| {
        let v = view(p, state.usages, state.pending_at_ms, now_ms);
        numbers(p, v.as_slice(), None, now_ms, 0)
    });
    let reset_after_ms = match (state.stored, numbers) {
        (Some(_), Some(n)) => n.reset_after_ms,
        _ => state
            .own_empty_at_ms(now_ms, expire_at_ms.unwrap_or(now_ms))
            .saturating_sub(now_ms),
    };
    Status {
        numbers,
        reset_after_ms,
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
