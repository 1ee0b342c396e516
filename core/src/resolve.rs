//! Which policy decides a request, and what the client is told: the module's business rules,
//! in one place, with no Redis types and no globals (the caller passes the default policy
//! and the scale it read).
//!
//! - **Precedence** ([`choose`]): the key's stored policy (`RL.CONFIG`), else the call's
//!   inline `LIMIT`/`WINDOW`, else the module default (`rl.default-*`), else `NoPolicy`. The
//!   operator's word wins: an `RL.CONFIG abuser 1 60000` holds even when the application
//!   passes `LIMIT`/`WINDOW` on every call, and a caller allowed only `RL.ALLOW` cannot lift
//!   its own stored limit with a looser inline one. Inline policies are for keys nobody
//!   configured.
//! - **Scale**: whichever applies is scaled by `rl.scale-percent` at decision time.
//! - **Shadow**: a denial by a stored `SHADOW` policy is told as allowed (and, as a denial,
//!   changes nothing); only the stored policy can be a shadow.
//!
//! PURE: no Redis types here.

use crate::error::Error;
use crate::gcra::Decision;
use crate::limits::{Limits, StoredLimits};
use crate::policy::{Policy, StoredPolicy};

/// Where the policy of a decision came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Inline = 0,
    Stored = 1,
    Default = 2,
}

impl Source {
    pub const ALL: [Source; 3] = [Source::Inline, Source::Stored, Source::Default];

    /// The name `INFO rl` fields and `RL.INFO`'s `source` use.
    pub fn name(self) -> &'static str {
        match self {
            Source::Inline => "inline",
            Source::Stored => "stored",
            Source::Default => "default",
        }
    }
}

/// The policy that applies to a call, already scaled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub policy: Policy,
    pub source: Source,
    /// The policy only observes: its denials are told as allowed.
    pub shadow: bool,
}

/// Picks the policy for a call: `inline` (this call's), `stored` (the key's), `default`
/// (the module's, or its error when the `rl.default-*` combination is invalid; read only
/// when needed, since validating it costs the hot path), scaled by `scale_percent`.
pub fn resolve(
    inline: Option<Policy>,
    stored: Option<StoredPolicy>,
    default: impl FnOnce() -> Result<Option<Policy>, Error>,
    scale_percent: u64,
) -> Result<Resolved, Error> {
    let (policy, source) = choose(stored.map(|s| s.policy), inline, default)?;
    let shadow = source == Source::Stored && stored.is_some_and(|s| s.shadow);
    Ok(Resolved {
        policy: policy.scaled(scale_percent),
        source,
        shadow,
    })
}

/// The precedence rule, for one policy or a set: `stored`, else `inline`, else `default`
/// (read only when needed, so an invalid default is an error only for calls that use it),
/// else `NoPolicy`.
pub fn choose<T>(
    stored: Option<T>,
    inline: Option<T>,
    default: impl FnOnce() -> Result<Option<T>, Error>,
) -> Result<(T, Source), Error> {
    match (stored, inline) {
        (Some(s), _) => Ok((s, Source::Stored)),
        (None, Some(i)) => Ok((i, Source::Inline)),
        (None, None) => Ok((default()?.ok_or(Error::NoPolicy)?, Source::Default)),
    }
}

/// The limits that apply to a call on a key with several limits or a SLIDING one, already
/// scaled: [`resolve`] for sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResolvedSet {
    pub limits: Limits,
    pub source: Source,
    pub shadow: bool,
}

/// Picks the limits for a call by [`choose`], scaled by `scale_percent`.
pub fn resolve_set(
    inline: Option<Limits>,
    stored: Option<StoredLimits>,
    default: impl FnOnce() -> Result<Option<Policy>, Error>,
    scale_percent: u64,
) -> Result<ResolvedSet, Error> {
    let default = || default().map(|d| d.map(Limits::single));
    let (limits, source) = choose(stored.map(|s| s.limits), inline, default)?;
    Ok(ResolvedSet {
        limits: limits.scaled(scale_percent),
        source,
        shadow: source == Source::Stored && stored.is_some_and(|s| s.shadow),
    })
}

/// What a set's decision is told to the client (see [`tell`]).
pub fn tell_set(resolved: &ResolvedSet, allowed: bool) -> Told {
    Told {
        allowed: allowed || resolved.shadow,
        shadow_denied: !allowed && resolved.shadow,
    }
}

/// What a decision is told to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Told {
    /// Allowed, unless denied by a policy that is not a shadow.
    pub allowed: bool,
    /// A shadow policy denied the request, which is told as allowed.
    pub shadow_denied: bool,
}

pub fn tell(resolved: &Resolved, decision: Decision) -> Told {
    let denied = decision == Decision::Denied;
    Told {
        allowed: !denied || resolved.shadow,
        shadow_denied: denied && resolved.shadow,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gcra::Tat;

    fn p(limit: u64) -> Policy {
        Policy::new(limit, 1000, 0).unwrap()
    }

    fn stored(limit: u64, shadow: bool) -> StoredPolicy {
        let mut s = StoredPolicy::new(p(limit), 0).unwrap();
        s.shadow = shadow;
        s
    }

    /// inline, stored, default -> the limit that applies and its source.
    type Case = (
        Option<Policy>,
        Option<StoredPolicy>,
        Option<Policy>,
        Result<(u64, Source), Error>,
    );

    #[test]
    fn precedence_is_stored_then_inline_then_default() {
        let cases: [Case; 8] = [
            (
                Some(p(1)),
                Some(stored(2, false)),
                Some(p(3)),
                Ok((2, Source::Stored)),
            ),
            (
                Some(p(1)),
                Some(stored(2, false)),
                None,
                Ok((2, Source::Stored)),
            ),
            (Some(p(1)), None, Some(p(3)), Ok((1, Source::Inline))),
            (Some(p(1)), None, None, Ok((1, Source::Inline))),
            (
                None,
                Some(stored(2, false)),
                Some(p(3)),
                Ok((2, Source::Stored)),
            ),
            (None, Some(stored(2, false)), None, Ok((2, Source::Stored))),
            (None, None, Some(p(3)), Ok((3, Source::Default))),
            (None, None, None, Err(Error::NoPolicy)),
        ];
        for (inline, st, default, want) in cases {
            let got =
                resolve(inline, st, || Ok(default), 100).map(|r| (r.policy.limit(), r.source));
            assert_eq!(got, want, "{inline:?} {st:?} {default:?}");
        }
    }

    #[test]
    fn an_invalid_default_is_an_error_only_when_it_is_needed() {
        let bad = Err(Error::DefaultInvalid);
        assert_eq!(resolve(None, None, || bad, 100), Err(Error::DefaultInvalid));
        assert!(resolve(Some(p(1)), None, || bad, 100).is_ok());
        assert!(resolve_set(None, None, || bad, 100) == Err(Error::DefaultInvalid));
        assert!(resolve(None, Some(stored(1, false)), || bad, 100).is_ok());
    }

    #[test]
    fn the_policy_that_applies_is_scaled() {
        let r = resolve(None, Some(stored(10, false)), || Ok(None), 50).unwrap();
        assert_eq!(r.policy, p(10).scaled(50));
        let r = resolve(Some(p(10)), None, || Ok(None), 200).unwrap();
        assert_eq!(r.policy, p(10).scaled(200));
    }

    #[test]
    fn only_a_stored_shadow_policy_turns_a_denial_into_an_allow() {
        let allowed = Decision::Allowed(Tat::EMPTY);
        let shadow = resolve(None, Some(stored(1, true)), || Ok(None), 100).unwrap();
        let inline_under_shadow =
            resolve(Some(p(1)), Some(stored(1, true)), || Ok(None), 100).unwrap();
        let inline_alone = resolve(Some(p(1)), None, || Ok(None), 100).unwrap();
        let enforcing = resolve(None, Some(stored(1, false)), || Ok(None), 100).unwrap();
        let told = |r: &Resolved, d| {
            let t = tell(r, d);
            (t.allowed, t.shadow_denied)
        };
        assert_eq!(told(&shadow, Decision::Denied), (true, true));
        assert_eq!(told(&shadow, allowed), (true, false));
        // The stored shadow policy applies even when the call passes an inline one.
        assert_eq!(told(&inline_under_shadow, Decision::Denied), (true, true));
        assert_eq!(told(&inline_alone, Decision::Denied), (false, false));
        assert_eq!(told(&enforcing, Decision::Denied), (false, false));
        assert_eq!(told(&enforcing, allowed), (true, false));
    }

    #[test]
    fn choose_is_stored_then_inline_then_default() {
        type Row = (
            Option<u8>,
            Option<u8>,
            Result<Option<u8>, Error>,
            Result<(u8, Source), Error>,
        );
        let rows: [Row; 9] = [
            (Some(1), Some(2), Ok(Some(3)), Ok((1, Source::Stored))),
            (Some(1), None, Ok(Some(3)), Ok((1, Source::Stored))),
            (
                Some(1),
                Some(2),
                Err(Error::DefaultInvalid),
                Ok((1, Source::Stored)),
            ),
            (None, Some(2), Ok(Some(3)), Ok((2, Source::Inline))),
            (
                None,
                Some(2),
                Err(Error::DefaultInvalid),
                Ok((2, Source::Inline)),
            ),
            (None, None, Ok(Some(3)), Ok((3, Source::Default))),
            (None, None, Ok(None), Err(Error::NoPolicy)),
            (
                None,
                None,
                Err(Error::DefaultInvalid),
                Err(Error::DefaultInvalid),
            ),
            (Some(1), None, Ok(None), Ok((1, Source::Stored))),
        ];
        for (stored, inline, default, want) in rows {
            assert_eq!(
                choose(stored, inline, || default),
                want,
                "{stored:?} {inline:?} {default:?}"
            );
        }
    }

    #[test]
    fn a_stored_set_beats_an_inline_set_and_carries_its_shadow() {
        use crate::limits::{Limit, StoredLimits};
        use crate::sliding::Sliding;
        let set = Limits::new(&[Limit::Sliding(Sliding::new(5, 1000).unwrap())]).unwrap();
        let stored = StoredLimits {
            limits: set,
            idle_ms: 0,
            shadow: true,
        };
        let inline = Limits::single(p(9));
        let r = resolve_set(Some(inline), Some(stored), || Ok(None), 100).unwrap();
        assert_eq!((r.limits, r.source, r.shadow), (set, Source::Stored, true));
        let r = resolve_set(Some(inline), None, || Ok(Some(p(3))), 100).unwrap();
        assert_eq!(
            (r.limits, r.source, r.shadow),
            (inline, Source::Inline, false)
        );
        let r = resolve_set(None, None, || Ok(Some(p(3))), 50).unwrap();
        assert_eq!(
            (r.limits, r.source),
            (Limits::single(p(3).scaled(50)), Source::Default)
        );
        assert_eq!(
            tell_set(&r, false),
            Told {
                allowed: false,
                shadow_denied: false
            }
        );
    }
}
