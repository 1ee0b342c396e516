//! The kinds of limit, and the one place they are registered.
//!
//! Each kind is one file here: its parameters (validated once), its usage (what a client has
//! used under it), the decision and recording of a request, the numbers a client is told,
//! how usage is carried to and from the other kinds when a limit changes, and its scaling.
//! The RDB and `RL.APPLY` codecs (`rdb.rs`, `apply.rs`) write each kind's usage through the
//! accessors of its file. [`kinds!`] below turns the list of kinds into the enums the rest of
//! the core uses ([`Limit`], [`Usage`], [`Admit`], [`Kind`]) and their dispatch.
//!
//! **Adding a kind**: write `kinds/<name>.rs` with a parameters type implementing
//! [`KindRules`], add one line to the `kinds!` invocation, and give it its codes in `rdb.rs`
//! and `apply.rs` (a new RDB usage code and a text prefix). Everything else (parsing `LIMIT
//! ... <KEYWORD>`, resolution, the decision over a set, the numbers, replies, persistence and
//! replication) goes through the enums.
//!
//! PURE: no Redis types here.

pub mod concurrency;
pub mod gcra;
pub mod sliding;

use std::fmt::Debug;

use crate::error::Error;
use crate::parts::Hold;
use gcra::Tat;

/// Usage carried from one kind of limit to another when a limit changes kind: what is still
/// live under the old limit at the instant of the change, in the terms the old kind counts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carried {
    /// Nothing is live.
    Nothing,
    /// A backlog owed until this instant (GCRA's usage is time).
    Until(gcra::Tat),
    /// This many requests (by cost) still count (SLIDING's usage is requests).
    Requests(u64),
}

/// What every kind of limit provides (see the module documentation).
pub trait KindRules: Copy + Debug + PartialEq + Eq + Sized {
    /// What a client has used under a limit of this kind.
    type Usage: Clone + Debug + PartialEq + Eq;
    /// What an admitted request records (computed by the decision, so it is not computed twice).
    type Admit: Copy + Debug;
    const KIND: Kind;

    /// A limit from the parsed `limit`, `window_ms` and `BURST` (if given), validated.
    fn from_options(limit: u64, window_ms: u64, burst: Option<u64>) -> Result<Self, Error>;
    /// The count per window.
    fn limit(&self) -> u64;
    fn window_ms(&self) -> u64;
    /// How many cost-1 requests pass at once from idle (`limit` in replies).
    fn capacity(&self) -> u64;
    /// This limit under `rl.scale-percent`.
    fn scaled(&self, percent: u64) -> Self;

    /// The usage of a client that has made no request.
    fn empty() -> Self::Usage;
    /// Whether a request of `cost` at `now_ms` fits; what to record if it does.
    fn admit(&self, u: &Self::Usage, now_ms: u64, cost: u64) -> Option<Self::Admit>;
    /// Records a request [`KindRules::admit`] admitted on the same usage, in place.
    fn record(&self, u: &mut Self::Usage, a: Self::Admit, now_ms: u64, cost: u64);
    /// Stores what a decision reads after the server clock stepped back (state ahead of now);
    /// `true` if anything changed. A no-op on a steady clock.
    fn repair(&self, u: &mut Self::Usage, now_ms: u64) -> bool;
    /// Whether [`KindRules::repair`] would change anything (without changing it).
    fn needs_repair(&self, u: &Self::Usage, now_ms: u64) -> bool;

    /// After a request (recorded if `admitted`): cost-1 requests that would still pass at
    /// `now_ms`, and the Unix ms from which the limit holds nothing (at least `now_ms`).
    fn after(
        &self,
        u: &Self::Usage,
        admitted: Option<&Self::Admit>,
        now_ms: u64,
        cost: u64,
    ) -> (u64, u64);
    /// Ms until a request of `cost` fits (0: now), or `None` if it never can.
    fn wait_ms(&self, u: &Self::Usage, now_ms: u64, cost: u64) -> Option<u64>;
    /// Unix ms from which the usage is empty as recorded, without a limit to read it (what a
    /// usage-only key's expiry is); `None` if the usage does not know.
    fn own_empty_at_ms(u: &Self::Usage, now_ms: u64) -> Option<u64>;

    /// The usage of a limit of this kind, carried to this (changed) limit of the same kind
    /// at `at_ms`.
    fn carry(&self, u: &Self::Usage, at_ms: u64) -> Self::Usage;
    /// What of this usage is still live at `at_ms`, for a limit of another kind.
    fn export(u: &Self::Usage, at_ms: u64) -> Carried;
    /// A usage of this limit holding what another kind carried at `at_ms`.
    fn import(&self, c: Carried, at_ms: u64) -> Self::Usage;

    /// The window the usage was recorded under, if it keeps one (for `RL.INFO`).
    fn usage_window_ms(u: &Self::Usage) -> Option<u64>;
    /// Bytes the usage holds on the heap (`MEMORY USAGE`).
    fn heap_bytes(u: &Self::Usage) -> usize;

    /// Whether a request under this kind takes a lease (`RL.ACQUIRE`) that it gives back
    /// (`RL.RELEASE`), rather than counting as used.
    const LEASES: bool = false;
    /// An admission that records the lease `id` (kinds without leases ignore it).
    fn admit_with_id(a: Self::Admit, _id: u64) -> Self::Admit {
        a
    }

    /// `RL.REFUND`: gives back up to `n` units of what the usage holds at `now_ms`, never
    /// room beyond an empty limit. Returns the units given back.
    fn refund(&self, u: &mut Self::Usage, now_ms: u64, n: u64) -> u64;
    /// A settle above its estimate: counts `n` more units at `now_ms` whatever that does to
    /// admission (settling is not a request that can be denied), at most one full limit
    /// beyond now.
    fn charge(&self, u: &mut Self::Usage, now_ms: u64, n: u64);
    /// The instant a hold reserved on this usage ends at, for kinds whose usage is time (the
    /// usage's own instant right after the reserve); `None` for the others.
    fn hold_end(u: &Self::Usage) -> Option<Tat>;
    /// A settle below its estimate: gives back up to `n` of the units `holds[this]` counted
    /// at limit `position`, never what has drained, never more than the hold; moves the
    /// other holds' ends at `position` where giving back shifts them. Returns the units
    /// given back.
    fn refund_hold(
        &self,
        u: &mut Self::Usage,
        now_ms: u64,
        n: u64,
        holds: &mut [Hold],
        this: usize,
        position: usize,
    ) -> u64;
}

/// Generates [`Kind`], [`Limit`], [`Usage`] and [`Admit`] from the list of kinds, and their
/// dispatch to each kind's [`KindRules`].
macro_rules! kinds {
    ($($name:ident: $params:ty => $keyword:literal $label:literal;)*) => {
        /// A kind of limit.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Kind { $($name),* }

        impl Kind {
            /// Every kind, in registration order.
            pub const ALL: &'static [Kind] = &[$(Kind::$name),*];

            /// The keyword that selects it (`LIMIT l WINDOW w <KEYWORD>`, `RL.CONFIG k l w <KEYWORD>`).
            pub fn keyword(self) -> &'static [u8] {
                match self { $(Kind::$name => $keyword),* }
            }

            /// The kind whose keyword is `folded` (`args::folded` of a word), if any.
            pub(crate) fn from_folded(folded: u128) -> Option<Kind> {
                $(if folded == const { crate::args::folded_const($keyword) } {
                    return Some(Kind::$name);
                })*
                None
            }

            /// Its name in replies (`RL.INFO`, `WITHPOLICY`).
            pub fn label(self) -> &'static str {
                match self { $(Kind::$name => $label),* }
            }
        }

        /// One limit of a policy, of any kind.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Limit { $($name($params)),* }

        /// What a client has used under one limit.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum Usage { $($name(<$params as KindRules>::Usage)),* }

        /// What an admitted request records under one limit.
        #[derive(Clone, Copy, Debug)]
        pub enum Admit { $($name(<$params as KindRules>::Admit)),* }

        impl Limit {
            /// A limit of `kind` from parsed options.
            pub fn from_options(kind: Kind, limit: u64, window_ms: u64, burst: Option<u64>) -> Result<Limit, Error> {
                match kind { $(Kind::$name => <$params as KindRules>::from_options(limit, window_ms, burst).map(Limit::$name)),* }
            }

            #[inline]
            pub fn kind(&self) -> Kind {
                match self { $(Limit::$name(_) => Kind::$name),* }
            }

            #[inline]
            pub fn limit(&self) -> u64 {
                match self { $(Limit::$name(l) => KindRules::limit(l)),* }
            }

            #[inline]
            pub fn window_ms(&self) -> u64 {
                match self { $(Limit::$name(l) => KindRules::window_ms(l)),* }
            }

            #[inline]
            pub fn capacity(&self) -> u64 {
                match self { $(Limit::$name(l) => KindRules::capacity(l)),* }
            }

            /// Whether requests under this limit take leases (see [`KindRules::LEASES`]).
            #[inline]
            pub fn takes_leases(&self) -> bool {
                match self { $(Limit::$name(_) => <$params as KindRules>::LEASES),* }
            }

            /// `RL.REFUND` on this limit's usage: the units given back (0 for a mismatched usage).
            pub fn refund(&self, u: &mut Usage, now_ms: u64, n: u64) -> u64 {
                match (self, u) {
                    $((Limit::$name(l), Usage::$name(u)) => KindRules::refund(l, u, now_ms, n),)*
                    #[allow(unreachable_patterns)]
                    _ => 0,
                }
            }

            /// A settle's excess, counted whatever it does to admission.
            pub fn charge(&self, u: &mut Usage, now_ms: u64, n: u64) {
                match (self, u) {
                    $((Limit::$name(l), Usage::$name(u)) => KindRules::charge(l, u, now_ms, n),)*
                    #[allow(unreachable_patterns)]
                    _ => {}
                }
            }

            /// A settle's refund of `holds[this]` at `position` (see [`KindRules::refund_hold`]).
            pub fn refund_hold(
                &self,
                u: &mut Usage,
                now_ms: u64,
                n: u64,
                holds: &mut [Hold],
                this: usize,
                position: usize,
            ) -> u64 {
                match (self, u) {
                    $((Limit::$name(l), Usage::$name(u)) => {
                        KindRules::refund_hold(l, u, now_ms, n, holds, this, position)
                    })*
                    #[allow(unreachable_patterns)]
                    _ => 0,
                }
            }

            #[inline]
            pub fn scaled(&self, percent: u64) -> Limit {
                match self { $(Limit::$name(l) => Limit::$name(KindRules::scaled(l, percent))),* }
            }

            /// The usage of a client that has made no request under this limit.
            #[inline]
            pub fn empty(&self) -> Usage {
                match self { $(Limit::$name(_) => Usage::$name(<$params as KindRules>::empty())),* }
            }

            /// Whether `u` is this limit's kind of usage.
            #[inline]
            pub fn fits(&self, u: &Usage) -> bool {
                self.kind() == u.kind()
            }

            /// Whether a request fits (`None` also for a usage of another kind).
            #[inline]
            pub fn admit(&self, u: &Usage, now_ms: u64, cost: u64) -> Option<Admit> {
                match (self, u) {
                    $((Limit::$name(l), Usage::$name(u)) => KindRules::admit(l, u, now_ms, cost).map(Admit::$name),)*
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }

            /// Records an admitted request (nothing for a mismatched usage or admission).
            #[inline(always)]
            pub fn record(&self, u: &mut Usage, a: Admit, now_ms: u64, cost: u64) {
                match (self, u, a) {
                    $((Limit::$name(l), Usage::$name(u), Admit::$name(a)) => KindRules::record(l, u, a, now_ms, cost),)*
                    #[allow(unreachable_patterns)]
                    _ => {}
                }
            }

            #[inline]
            pub fn repair(&self, u: &mut Usage, now_ms: u64) -> bool {
                match (self, u) {
                    $((Limit::$name(l), Usage::$name(u)) => KindRules::repair(l, u, now_ms),)*
                    #[allow(unreachable_patterns)]
                    _ => false,
                }
            }

            #[inline]
            pub fn needs_repair(&self, u: &Usage, now_ms: u64) -> bool {
                match (self, u) {
                    $((Limit::$name(l), Usage::$name(u)) => KindRules::needs_repair(l, u, now_ms),)*
                    #[allow(unreachable_patterns)]
                    _ => false,
                }
            }

            /// Remaining cost-1 requests and the instant the limit is empty, after a request
            /// (recorded if `admitted`).
            pub fn after(&self, u: &Usage, admitted: Option<&Admit>, now_ms: u64, cost: u64) -> (u64, u64) {
                match (self, u) {
                    $((Limit::$name(l), Usage::$name(u)) => {
                        let a = match admitted {
                            Some(Admit::$name(a)) => Some(a),
                            _ => None,
                        };
                        KindRules::after(l, u, a, now_ms, cost)
                    })*
                    #[allow(unreachable_patterns)]
                    _ => (0, now_ms),
                }
            }

            pub fn wait_ms(&self, u: &Usage, now_ms: u64, cost: u64) -> Option<u64> {
                match (self, u) {
                    $((Limit::$name(l), Usage::$name(u)) => KindRules::wait_ms(l, u, now_ms, cost),)*
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }

            /// `u` (of any kind) as this limit reads it after a change at `at_ms`: kept by the
            /// kind's own rule when it is of this kind, else carried from the other kind.
            pub fn carry(&self, u: &Usage, at_ms: u64) -> Usage {
                match (self, u) {
                    $((Limit::$name(l), Usage::$name(u)) => Usage::$name(KindRules::carry(l, u, at_ms)),)*
                    #[allow(unreachable_patterns)]
                    _ => self.import(u.export(at_ms), at_ms),
                }
            }

            fn import(&self, c: Carried, at_ms: u64) -> Usage {
                match self { $(Limit::$name(l) => Usage::$name(KindRules::import(l, c, at_ms))),* }
            }
        }

        impl Usage {
            #[inline]
            pub fn kind(&self) -> Kind {
                match self { $(Usage::$name(_) => Kind::$name),* }
            }

            #[inline]
            pub fn own_empty_at_ms(&self, now_ms: u64) -> Option<u64> {
                match self { $(Usage::$name(u) => <$params as KindRules>::own_empty_at_ms(u, now_ms)),* }
            }

            pub fn export(&self, at_ms: u64) -> Carried {
                match self { $(Usage::$name(u) => <$params as KindRules>::export(u, at_ms)),* }
            }

            #[inline]
            pub fn window_ms(&self) -> Option<u64> {
                match self { $(Usage::$name(u) => <$params as KindRules>::usage_window_ms(u)),* }
            }

            pub fn heap_bytes(&self) -> usize {
                match self { $(Usage::$name(u) => <$params as KindRules>::heap_bytes(u)),* }
            }

            /// The instant a hold reserved on this usage ends at (see [`KindRules::hold_end`]).
            pub fn hold_end(&self) -> Option<Tat> {
                match self { $(Usage::$name(u) => <$params as KindRules>::hold_end(u)),* }
            }
        }

        impl Admit {
            /// The same admission, recording the lease `id` where the kind takes leases.
            #[inline]
            pub fn with_id(self, id: u64) -> Admit {
                match self { $(Admit::$name(a) => Admit::$name(<$params as KindRules>::admit_with_id(a, id))),* }
            }
        }
    };
}

kinds! {
    Gcra: gcra::Gcra => b"GCRA" "gcra";
    Sliding: sliding::Sliding => b"SLIDING" "sliding";
    Concurrency: concurrency::Concurrency => b"CONCURRENCY" "concurrency";
}

impl Kind {
    /// The kind a keyword names (case-insensitive).
    pub fn from_keyword(word: &[u8]) -> Option<Kind> {
        Kind::ALL
            .iter()
            .copied()
            .find(|k| word.eq_ignore_ascii_case(k.keyword()))
    }
}
