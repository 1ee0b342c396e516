//! What a command does to a key's state beyond the bare decision: a check on a blocked key, the
//! penalty a denial starts, the hold a reserve keeps, the lease an acquire takes, and the
//! commands that change a key without a request (`RL.REFUND`, `RL.SETTLE`, `RL.BLOCK`,
//! `RL.UNBLOCK`, `RL.RELEASE`, `RL.RENEW`). Pure functions of the state, the policy and `now`,
//! so the property tests replay them without a server; the module calls the same ones.
//!
//! A check is [`admissible`] (the errors that come before a decision), then [`evaluate`]d
//! (read-only: the decision, the block the key is under or the one this denial starts; what
//! `RL.PEEK` stops at), told ([`tell_numbers`]) and [`commit`]ted (in place, on usages and
//! parts borrowed from wherever the key keeps them). The rules:
//!
//! - **Blocked**: every check (`RL.ALLOW`, `RL.THROTTLE`, `RL.RESERVE`, `RL.ACQUIRE`; `RL.PEEK`
//!   tells) is denied, counts nothing and extends nothing; its numbers are
//!   `decide::blocked_numbers`. A shadow policy is told allowed (a shadow denial).
//! - **Penalty**: a denial (not a shadow's) of a key that is not blocked blocks it
//!   (`parts::penalize`), also when the cost can never fit; that denial is told the block.
//! - **Reserve**: allowed, it records a hold with a fresh id and, per GCRA limit, the TAT
//!   right after (its `end`); a key with no stored policy remembers the limits. At most 64
//!   open holds: the 65th is an error before anything else is looked at but the kind.
//! - **Acquire**: allowed, every CONCURRENCY limit records one lease of the same fresh id and
//!   every rate limit counts the request; a policy without CONCURRENCY issues no id.
//! - Every write prunes expired holds and keeps every hold's end at or before its TAT.
//!
//! PURE: no Redis types here.

use crate::decide::{self, blocked_numbers, decide, numbers, Decision, Numbers};
use crate::error::Error;
use crate::kinds::gcra::Tat;
use crate::kinds::Usage;
use crate::parts::{block_end, penalize, Block, Hold, Parts, MAX_HOLDS};
use crate::policy::{Penalty, Policy, MAX_LIMITS};
use crate::state::State;

/// Which check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `RL.ALLOW`, `RL.THROTTLE`.
    Check,
    /// `RL.PEEK`: what the check would be told (on a key with a CONCURRENCY limit, an
    /// acquire); never committed.
    Peek,
    /// `RL.RESERVE`: a check of cost `estimate` that keeps a hold for `hold_ms`. `under`: on a
    /// key with no stored policy, the limits it is reserved under (unscaled), which a settle
    /// will read.
    Reserve { hold_ms: u64, under: Option<Policy> },
    /// `RL.ACQUIRE`.
    Acquire,
}

/// The penalty of a check's policy, if any, with the window it escalates within (the longest
/// window of the policy as given).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PenaltyRule {
    pub penalty: Penalty,
    pub escalation_ms: u64,
}

/// The errors a check gets before any decision: a key whose policy has a CONCURRENCY limit is
/// acquired, not checked or reserved; a reserve beyond the open holds a key keeps.
#[inline]
pub fn admissible(
    op: &Op,
    policy: &Policy,
    parts: Option<&Parts>,
    now_ms: u64,
) -> Result<(), Error> {
    match op {
        Op::Check | Op::Reserve { .. } if policy.takes_leases() => Err(Error::Leased),
        Op::Reserve { .. } if parts.is_some_and(|p| p.open_holds(now_ms).count() >= MAX_HOLDS) => {
            Err(Error::TooManyHolds)
        }
        _ => Ok(()),
    }
}

/// A check, decided and not yet committed.
#[derive(Clone, Copy, Debug)]
pub struct Evaluation {
    /// What the limits decide.
    pub decision: Decision,
    /// The end of the block the key is under, if it is.
    pub blocked_until: Option<u64>,
    /// The block this denial starts (a penalty), if it does.
    pub starts: Option<Block>,
}

impl Evaluation {
    /// Allowed by every limit, on a key that is not blocked.
    #[inline]
    pub fn allowed(&self) -> bool {
        self.decision.allowed && self.blocked_until.is_none()
    }

    /// The end of the block the client is told about: the one it is under or starts.
    #[inline]
    pub fn block_end(&self) -> Option<u64> {
        self.blocked_until.or(self.starts.map(|b| b.until_ms))
    }
}

/// Decides a check of `cost` at `now_ms` on `usages` (as `policy` reads them) and the key's
/// `parts`. `shadow`: the policy only observes (it never penalizes); `penalty`: the policy's
/// penalty rule, asked for only when a denial could start one. Changes nothing.
#[inline]
pub fn evaluate(
    policy: &Policy,
    usages: &[Usage],
    parts: Option<&Parts>,
    now_ms: u64,
    cost: u64,
    shadow: bool,
    penalty: impl FnOnce() -> Option<PenaltyRule>,
) -> Evaluation {
    let decision = decide(policy, usages, now_ms, cost);
    let blocked_until = parts.and_then(|p| p.blocked_until(now_ms));
    let starts = if !decision.allowed && blocked_until.is_none() && !shadow {
        penalty().map(|r| {
            penalize(
                r.penalty,
                parts.and_then(|x| x.block),
                r.escalation_ms,
                now_ms,
            )
        })
    } else {
        None
    };
    Evaluation {
        decision,
        blocked_until,
        starts,
    }
}

/// The numbers a check is told: its decision's, or a blocked check's.
pub fn tell_numbers(
    policy: &Policy,
    usages: &[Usage],
    e: &Evaluation,
    now_ms: u64,
    cost: u64,
) -> Numbers {
    match e.block_end() {
        Some(until) => blocked_numbers(policy, usages, &e.decision, now_ms, cost, until),
        None => numbers(policy, usages, Some(&e.decision), now_ms, cost),
    }
}

/// What committing a check did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Committed {
    /// The key changed (it is to be written and replicated).
    pub changed: bool,
    /// The id of the hold or lease it took.
    pub id: Option<u64>,
}

/// Applies an evaluated check to the key, in place: an allowed one is recorded (with its hold
/// or lease), a denial stores the penalty it starts and the repair a clock step calls for, a
/// blocked check changes nothing. Fails (changing nothing) only when the key has issued its
/// last id.
///
/// Inlined into the caller for the common case, as `RL.ALLOW` took it before issue 19: an
/// allowed check of a key with no parts only records the request (what [`commit_parts`] does
/// for it); a call out of line cost that path about 50 instructions (callgrind).
#[inline(always)]
pub fn commit(
    op: &Op,
    policy: &Policy,
    usages: &mut [Usage],
    parts: &mut Option<Box<Parts>>,
    e: &Evaluation,
    now_ms: u64,
    cost: u64,
) -> Result<Committed, Error> {
    if matches!(op, Op::Check) && e.allowed() && parts.is_none() {
        decide::record(policy, usages, &e.decision, now_ms, cost);
        return Ok(Committed {
            changed: true,
            id: None,
        });
    }
    commit_parts(op, policy, usages, parts, e, now_ms, cost)
}

/// [`commit`] of everything but an allowed check of a key with no parts.
fn commit_parts(
    op: &Op,
    policy: &Policy,
    usages: &mut [Usage],
    parts: &mut Option<Box<Parts>>,
    e: &Evaluation,
    now_ms: u64,
    cost: u64,
) -> Result<Committed, Error> {
    if e.blocked_until.is_some() || *op == Op::Peek {
        return Ok(Committed::default());
    }
    if !e.decision.allowed {
        let mut changed = decide::repair(policy, usages, now_ms);
        if let Some(b) = e.starts {
            parts_mut(parts).block = Some(b);
            changed = true;
        }
        if changed {
            tidy(usages, parts, now_ms);
        }
        return Ok(Committed { changed, id: None });
    }
    let id = match op {
        Op::Reserve { .. } => Some(next_id(parts.as_deref(), now_ms)?),
        Op::Acquire if policy.takes_leases() => Some(next_id(parts.as_deref(), now_ms)?),
        _ => None,
    };
    if let Some(p) = parts.as_deref_mut() {
        p.prune(now_ms);
        cap_ends(usages, p);
    }
    let decision = match (op, id) {
        (Op::Acquire, Some(id)) => e.decision.with_lease(id),
        _ => e.decision,
    };
    decide::record(policy, usages, &decision, now_ms, cost);
    if let Some(id) = id {
        let p = parts_mut(parts);
        p.last_id = Some(id);
        if let Op::Reserve { hold_ms, under } = op {
            let mut ends = [Tat::EMPTY; MAX_LIMITS];
            for (end, u) in ends.iter_mut().zip(usages.iter()) {
                *end = u.hold_end().map_or(Tat::EMPTY, |t| t.reduced());
            }
            // Exactly one more: a doubling Vec would keep room for 4 holds (384 bytes) on a
            // key with one, the common case (bench/bytes_ops.py).
            p.holds.reserve_exact(1);
            p.holds.push(Hold {
                id,
                estimate: cost,
                at_ms: now_ms,
                expires_at_ms: now_ms.saturating_add(*hold_ms),
                ends,
            });
            if under.is_some() {
                p.reserved_under = *under;
            }
        }
    }
    if parts.is_some() {
        tidy(usages, parts, now_ms);
    }
    Ok(Committed { changed: true, id })
}

/// The next id of a key with these parts.
fn next_id(parts: Option<&Parts>, now_ms: u64) -> Result<u64, Error> {
    let fresh = Parts::default();
    parts
        .unwrap_or(&fresh)
        .next_id(now_ms)
        .ok_or(Error::IdsExhausted)
}

fn parts_mut(parts: &mut Option<Box<Parts>>) -> &mut Parts {
    parts.get_or_insert_with(Box::default)
}

/// What every write does to the parts: prunes expired holds, keeps every hold's end at or
/// before its limit's TAT, and drops parts that hold nothing.
fn tidy(usages: &[Usage], parts: &mut Option<Box<Parts>>, now_ms: u64) {
    if let Some(p) = parts.as_deref_mut() {
        p.prune(now_ms);
        cap_ends(usages, p);
    }
    if parts.as_deref().is_some_and(Parts::is_empty) {
        *parts = None;
    }
}

/// Keeps every hold's end at or before its limit's TAT (`usages` as the policy reads them,
/// position by position); a position whose usage keeps no such instant keeps no end.
fn cap_ends(usages: &[Usage], parts: &mut Parts) {
    if parts.holds.is_empty() {
        return;
    }
    for i in 0..MAX_LIMITS {
        let cap = usages.get(i).and_then(Usage::hold_end);
        for h in &mut parts.holds {
            let Some(end) = h.ends.get_mut(i) else {
                continue;
            };
            *end = match cap {
                Some(t) => end.earlier(t).reduced(),
                None => Tat::EMPTY,
            };
        }
    }
}

/// The usages as `policy` reads them at `now_ms`, repaired as a write stores them, with the
/// holds' ends kept within them: where every command that writes under a policy starts.
fn written_view(state: &mut State, policy: &Policy, now_ms: u64) -> crate::state::Usages {
    let mut usages = state.view(policy, now_ms).into_usages();
    decide::repair(policy, &mut usages, now_ms);
    if let Some(p) = state.parts.as_deref_mut() {
        p.prune(now_ms);
        cap_ends(&usages, p);
    }
    usages
}

/// Stores usages written under a policy (a pending reconfiguration is then written), and
/// tidies the parts.
fn store(state: &mut State, usages: crate::state::Usages, now_ms: u64) {
    state.usages = usages;
    state.pending_at_ms = None;
    tidy(&state.usages, &mut state.parts, now_ms);
}

/// `RL.REFUND`: every limit of `policy` gives back up to `n` units of its live usage
/// (`KindRules::refund`; none for CONCURRENCY). Returns the most any limit gave back; 0
/// leaves the state as it was (nothing is written).
pub fn refund(state: &mut State, policy: &Policy, now_ms: u64, n: u64) -> u64 {
    let mut probe = state.clone();
    let mut usages = written_view(&mut probe, policy, now_ms);
    let most = policy
        .limits()
        .iter()
        .zip(usages.iter_mut())
        .map(|(l, u)| l.refund(u, now_ms, n))
        .max()
        .unwrap_or(0);
    if most > 0 {
        store(&mut probe, usages, now_ms);
        *state = probe;
    }
    most
}

/// `RL.SETTLE`: closes the open hold `id` with the `actual` units it used, under `policy`
/// (the stored one, else the limits it was reserved under; needed only when `actual`
/// differs). Below the estimate, each limit gives back from the hold's own units only
/// (`KindRules::refund_hold`), and the reply is minus the most any gave back; above it, the
/// excess is charged on every rate limit whatever it does to admission (`KindRules::charge`),
/// and the reply is the excess. An unknown, expired or settled id is an error.
pub fn settle(
    state: &mut State,
    policy: Option<&Policy>,
    now_ms: u64,
    id: u64,
    actual: u64,
) -> Result<i64, Error> {
    let Some(index) = state
        .parts
        .as_deref()
        .and_then(|p| p.holds.iter().position(|h| h.id == id && h.is_open(now_ms)))
    else {
        return Err(Error::UnknownReservation);
    };
    let estimate = state
        .parts
        .as_deref()
        .and_then(|p| p.holds.get(index))
        .map_or(0, |h| h.estimate);
    let policy = match (actual == estimate, policy) {
        (true, _) => None,
        (false, Some(p)) => Some(p),
        (false, None) => return Err(Error::NoPolicy),
    };
    let Some(policy) = policy else {
        if let Some(p) = state.parts.as_deref_mut() {
            p.holds.remove(index);
        }
        let usages = state.usages.clone();
        tidy(&usages, &mut state.parts, now_ms);
        return Ok(0);
    };
    let mut usages = written_view(state, policy, now_ms);
    // The hold's index again: expired holds were pruned.
    let parts = parts_mut(&mut state.parts);
    let Some(index) = parts.holds.iter().position(|h| h.id == id) else {
        return Err(Error::UnknownReservation);
    };
    let reply = if actual < estimate {
        let r = estimate - actual;
        let mut most = 0;
        for (i, (l, u)) in policy.limits().iter().zip(usages.iter_mut()).enumerate() {
            most = most.max(l.refund_hold(u, now_ms, r, &mut parts.holds, index, i));
        }
        -i64::try_from(most).unwrap_or(i64::MAX)
    } else {
        let d = actual - estimate;
        for (l, u) in policy.limits().iter().zip(usages.iter_mut()) {
            l.charge(u, now_ms, d);
        }
        i64::try_from(d).unwrap_or(i64::MAX)
    };
    parts.holds.remove(index);
    store(state, usages, now_ms);
    Ok(reply)
}

/// `RL.BLOCK`: blocked until `now_ms + ms`, replacing any block, keeping the penalty level.
pub fn block(state: &mut State, now_ms: u64, ms: u64) {
    let p = parts_mut(&mut state.parts);
    let level = p.block.map_or(0, |b| b.level);
    p.block = Some(Block {
        until_ms: block_end(now_ms, ms),
        level,
    });
    let usages = state.usages.clone();
    tidy(&usages, &mut state.parts, now_ms);
}

/// `RL.UNBLOCK`: ends the block and forgets its level, if the key is blocked; whether it was
/// (if not, the state is left as it was).
pub fn unblock(state: &mut State, now_ms: u64) -> bool {
    let blocked = state
        .parts
        .as_deref()
        .is_some_and(|p| p.blocked_until(now_ms).is_some());
    if blocked {
        if let Some(p) = state.parts.as_deref_mut() {
            p.block = None;
        }
        let usages = state.usages.clone();
        tidy(&usages, &mut state.parts, now_ms);
    }
    blocked
}

/// `RL.RELEASE` (`renew_ms` None) or `RL.RENEW`: changes the live lease `id` in every
/// CONCURRENCY limit, as the stored `policy` reads the key (a key with none: as recorded);
/// whether it was live (if not, the state is left as it was). Rate limits are untouched.
pub fn lease(
    state: &mut State,
    policy: Option<&Policy>,
    now_ms: u64,
    id: u64,
    renew_ms: Option<u64>,
) -> bool {
    let mut probe = state.clone();
    let mut usages = match policy {
        Some(p) => written_view(&mut probe, p, now_ms),
        None => probe.usages.clone(),
    };
    let mut held = false;
    for u in usages.iter_mut() {
        if let Usage::Concurrency(leases) = u {
            held |= match renew_ms {
                None => leases.release(id, now_ms),
                Some(ms) => leases.renew(id, now_ms, ms),
            };
        }
    }
    if !held {
        return false;
    }
    match policy {
        Some(_) => store(&mut probe, usages, now_ms),
        None => {
            probe.usages = usages;
            let usages = probe.usages.clone();
            tidy(&usages, &mut probe.parts, now_ms);
        }
    }
    *state = probe;
    true
}

/// A whole check on a whole state, as the module takes it (which does the same in place when
/// it can): the usages as `policy` reads them, [`admissible`], [`evaluate`], the numbers told
/// ([`tell_numbers`]) and, unless peeking, [`commit`], after which the state holds the usages
/// in the policy's form. For the tests and the fuzz targets.
pub fn check(
    state: &mut State,
    policy: &Policy,
    op: &Op,
    now_ms: u64,
    cost: u64,
    shadow: bool,
    penalty: Option<PenaltyRule>,
) -> Result<(Evaluation, Numbers, Committed), Error> {
    admissible(op, policy, state.parts.as_deref(), now_ms)?;
    let mut usages = state.view(policy, now_ms).into_usages();
    let e = evaluate(
        policy,
        &usages,
        state.parts.as_deref(),
        now_ms,
        cost,
        shadow,
        || penalty,
    );
    let n = tell_numbers(policy, &usages, &e, now_ms, cost);
    let mut parts = state.parts.clone();
    let c = commit(op, policy, &mut usages, &mut parts, &e, now_ms, cost)?;
    if c.changed {
        state.usages = usages;
        state.pending_at_ms = None;
        state.parts = parts;
    }
    Ok((e, n, c))
}

/// Until when the key-level parts keep a key that has no policy of its own alive: its open
/// holds' expiry and its block's end (`now_ms` if neither).
pub fn parts_live_until(parts: Option<&Parts>, now_ms: u64) -> u64 {
    let Some(p) = parts else {
        return now_ms;
    };
    p.open_holds(now_ms)
        .map(|h| h.expires_at_ms)
        .chain(p.blocked_until(now_ms))
        .fold(now_ms, u64::max)
}

#[cfg(test)]
#[path = "ops_tests.rs"]
mod tests;
