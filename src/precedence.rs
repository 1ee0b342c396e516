//! Which policy decides a call: the key's stored policy, else the call's inline policy, else
//! the module default.
//!
//! The operator's word wins. An `RL.CONFIG abuser 1 60000` must hold even when the
//! application passes `LIMIT`/`WINDOW` on every call, and a caller allowed only `RL.ALLOW`
//! must not lift its own stored limit by passing a looser inline one. Inline policies are for
//! keys nobody configured (a per-route limit chosen by the application); the default is for
//! keys nobody configured and no call described.
//!
//! PURE: no Redis types here.

/// Where the policy of a decision came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Stored,
    Inline,
    Default,
}

/// The policy that applies, and where it came from; `None` when there is none at all (the
/// caller answers `NoPolicy`). Generic so that the rule is the same for one policy or a set.
pub fn choose<T>(stored: Option<T>, inline: Option<T>, default: Option<T>) -> Option<(T, Source)> {
    match (stored, inline, default) {
        (Some(s), _, _) => Some((s, Source::Stored)),
        (None, Some(i), _) => Some((i, Source::Inline)),
        (None, None, Some(d)) => Some((d, Source::Default)),
        (None, None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_beats_inline_beats_default() {
        use Source::*;
        let cases = [
            // (stored, inline, default) -> chosen
            ((Some("s"), Some("i"), Some("d")), Some(("s", Stored))),
            ((Some("s"), Some("i"), None), Some(("s", Stored))),
            ((Some("s"), None, Some("d")), Some(("s", Stored))),
            ((Some("s"), None, None), Some(("s", Stored))),
            ((None, Some("i"), Some("d")), Some(("i", Inline))),
            ((None, Some("i"), None), Some(("i", Inline))),
            ((None, None, Some("d")), Some(("d", Default))),
            ((None, None, None), None),
        ];
        for ((s, i, d), want) in cases {
            assert_eq!(choose(s, i, d), want, "{s:?} {i:?} {d:?}");
        }
    }
}
