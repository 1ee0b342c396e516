//! Which policy decides a request, and what the client is told: the module's business rules,
//! in one place, with no Redis types and no globals (the caller passes the default policy
//! and the scale it read).
//!
//! - **Precedence** ([`resolve`]): the key's stored policy (`RL.CONFIG`), else the call's
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
use crate::policy::{Policy, Stored};

/// Where the policy of a decision came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Inline = 0,
    Stored = 1,
    Default = 2,
}

impl Source {
    pub const ALL: [Source; 3] = [Source::Inline, Source::Stored, Source::Default];

    /// The name `INFO rl` fields, `RL.INFO`'s and `WITHPOLICY`'s `source` use.
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

/// Picks the policy for a call: the key's `stored` one, this call's `inline` one, or the
/// module's `default` (or its error when the `rl.default-*` combination is invalid; read
/// only when needed), scaled by `scale_percent`.
#[inline(always)]
pub fn resolve(
    stored: Option<&Stored>,
    inline: Option<&Policy>,
    default: impl FnOnce() -> Result<Option<Policy>, Error>,
    scale_percent: u64,
) -> Result<Resolved, Error> {
    // The precedence rule: `stored`, else `inline`, else `default` (read only when needed,
    // so an invalid default is an error only for calls that use it), else `NoPolicy`. Each
    // arm builds its `Resolved` in place: through a `Result<(Policy, Source)>` a call copied
    // the policy (field by field) three more times, and the default one is moved into it and
    // scaled there (scaled into it, it was built, then copied: about 20 instructions).
    match (stored, inline) {
        (Some(s), _) => Ok(Resolved {
            policy: s.policy.scaled(scale_percent),
            source: Source::Stored,
            shadow: s.shadow,
        }),
        (None, Some(i)) => Ok(Resolved {
            policy: i.scaled(scale_percent),
            source: Source::Inline,
            shadow: false,
        }),
        (None, None) => match default()? {
            Some(d) => {
                let mut r = Resolved {
                    policy: d,
                    source: Source::Default,
                    shadow: false,
                };
                if scale_percent != 100 {
                    r.policy = r.policy.scaled(scale_percent);
                }
                Ok(r)
            }
            None => Err(Error::NoPolicy),
        },
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

#[inline]
pub fn tell(resolved: &Resolved, allowed: bool) -> Told {
    Told {
        allowed: allowed || resolved.shadow,
        shadow_denied: !allowed && resolved.shadow,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::gcra::Gcra;
    use crate::kinds::sliding::Sliding;
    use crate::kinds::Limit;

    fn p(limit: u64) -> Policy {
        Policy::single(Limit::Gcra(Gcra::new(limit, 1000, 0).unwrap()))
    }

    fn stored(limit: u64, shadow: bool) -> Stored {
        Stored::new(p(limit), 0, shadow).unwrap()
    }

    /// inline, stored, default -> the limit that applies and its source.
    type Case = (
        Option<Policy>,
        Option<Stored>,
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
            let got = resolve(st.as_ref(), inline.as_ref(), || Ok(default), 100)
                .map(|r| (r.policy.limits()[0].limit(), r.source));
            assert_eq!(got, want, "{inline:?} {st:?} {default:?}");
        }
    }

    #[test]
    fn an_invalid_default_is_an_error_only_when_it_is_needed() {
        let bad = || Err(Error::DefaultInvalid);
        assert_eq!(resolve(None, None, bad, 100), Err(Error::DefaultInvalid));
        assert!(resolve(None, Some(&p(1)), bad, 100).is_ok());
        assert!(resolve(Some(&stored(1, false)), None, bad, 100).is_ok());
    }

    #[test]
    fn the_policy_that_applies_is_scaled() {
        let r = resolve(Some(&stored(10, false)), None, || Ok(None), 50).unwrap();
        assert_eq!(r.policy, p(10).scaled(50));
        let r = resolve(None, Some(&p(10)), || Ok(None), 200).unwrap();
        assert_eq!(r.policy, p(10).scaled(200));
    }

    #[test]
    fn only_a_stored_shadow_policy_turns_a_denial_into_an_allow() {
        let shadow = resolve(Some(&stored(1, true)), None, || Ok(None), 100).unwrap();
        let inline_under_shadow =
            resolve(Some(&stored(1, true)), Some(&p(1)), || Ok(None), 100).unwrap();
        let inline_alone = resolve(None, Some(&p(1)), || Ok(None), 100).unwrap();
        let enforcing = resolve(Some(&stored(1, false)), None, || Ok(None), 100).unwrap();
        let told = |r: &Resolved, allowed| {
            let t = tell(r, allowed);
            (t.allowed, t.shadow_denied)
        };
        assert_eq!(told(&shadow, false), (true, true));
        assert_eq!(told(&shadow, true), (true, false));
        // The stored shadow policy applies even when the call passes an inline one.
        assert_eq!(told(&inline_under_shadow, false), (true, true));
        assert_eq!(told(&inline_alone, false), (false, false));
        assert_eq!(told(&enforcing, false), (false, false));
        assert_eq!(told(&enforcing, true), (true, false));
    }

    #[test]
    fn a_stored_set_beats_an_inline_set_and_carries_its_shadow() {
        let set = Policy::single(Limit::Sliding(Sliding::new(5, 1000).unwrap()));
        let stored = Stored::new(set, 0, true).unwrap();
        let inline = p(9);
        let r = resolve(Some(&stored), Some(&inline), || Ok(None), 100).unwrap();
        assert_eq!((r.policy, r.source, r.shadow), (set, Source::Stored, true));
        let r = resolve(None, Some(&inline), || Ok(Some(p(3))), 100).unwrap();
        assert_eq!(
            (r.policy, r.source, r.shadow),
            (inline, Source::Inline, false)
        );
        let r = resolve(None, None, || Ok(Some(p(3))), 50).unwrap();
        assert_eq!((r.policy, r.source), (p(3).scaled(50), Source::Default));
    }
}
