//! The persisted form of a bucket: the fields RDB (and so `DUMP`/`RESTORE`/`MIGRATE`) stores
//! and `DEBUG DIGEST-VALUE` hashes, and their validation on the way back in.
//!
//! Encoding version 1, all fields unsigned: `tat_ms frac den kind [policy fields]`, the
//! policy's fields in the order of `policy::FIELD_NAMES` (`limit window_ms burst idle_ms flags`), kind 0 for a usage-only value, 1 for one with a stored policy. Decoding
//! accepts exactly the states the commands can produce, checked with the same constructors,
//! so a corrupt file or a forged payload is refused rather than trusted.
//!
//! PURE: no Redis types here.

use crate::gcra::Tat;
use crate::policy::StoredPolicy;

pub const KIND_USAGE: u64 = 0;
pub const KIND_CONFIGURED: u64 = 1;
/// Most fields a value has.
pub const MAX_FIELDS: usize = 9;

/// The fields of a state in their stored order, zero-padded to [`MAX_FIELDS`], and how many
/// of them are stored.
pub fn encode(tat: Tat, stored: Option<StoredPolicy>) -> ([u64; MAX_FIELDS], usize) {
    let mut f = [tat.ms(), tat.frac(), tat.den(), KIND_USAGE, 0, 0, 0, 0, 0];
    let Some(s) = stored else {
        return (f, 4);
    };
    f[3] = KIND_CONFIGURED;
    f[4..].copy_from_slice(&s.fields());
    (f, MAX_FIELDS)
}

/// Reads a state field by field from `read` (`None`: the input failed or ended), validating
/// every field.
pub fn decode(mut read: impl FnMut() -> Option<u64>) -> Option<(Tat, Option<StoredPolicy>)> {
    let tat = Tat::new(read()?, read()?, read()?)?;
    match read()? {
        KIND_USAGE => Some((tat, None)),
        KIND_CONFIGURED => {
            let stored = StoredPolicy::from_fields([read()?, read()?, read()?, read()?, read()?])?;
            Some((tat, Some(stored)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Policy, MAX_LIMIT};
    use proptest::prelude::*;

    fn decode_all(fields: &[u64]) -> Option<(Tat, Option<StoredPolicy>)> {
        let mut it = fields.iter().copied();
        decode(|| it.next())
    }

    #[test]
    fn round_trips_both_kinds() {
        let tat = Tat::new(1_700_000_000_000, 2, 3).unwrap();
        let mut s = StoredPolicy::new(Policy::new(10, 60_000, 20).unwrap(), 500).unwrap();
        s.shadow = true;
        for stored in [None, Some(s)] {
            let (f, n) = encode(tat, stored);
            assert_eq!(decode_all(&f[..n]), Some((tat, stored)));
        }
    }

    #[test]
    fn refuses_impossible_or_truncated_states() {
        let bad: [&[u64]; 8] = [
            &[1, 3, 3, 0],                     // frac >= den
            &[1, 0, 0, 0],                     // den 0
            &[1, 0, MAX_LIMIT + 1, 0],         // den too large
            &[1, 0, 1, 2],                     // unknown kind
            &[1, 0, 1, 1, 10, 1000, 0, 0, 0],  // burst 0
            &[1, 0, 1, 1, 10, 1000, 10, 0, 2], // unknown flag
            &[1, 0, 1, 1, 0, 1000, 10, 0, 0],  // limit 0
            &[1, 0, 1, 1, 10, 1000],           // cut short
        ];
        for f in bad {
            assert_eq!(decode_all(f), None, "{f:?}");
        }
    }

    proptest! {
        /// Total on any input, and whatever it accepts re-encodes to the same fields.
        #[test]
        fn decode_is_total_and_canonical(fields in prop::collection::vec(prop_oneof![any::<u64>(), 0u64..20], 0..12)) {
            if let Some((tat, stored)) = decode_all(&fields) {
                let (f, n) = encode(tat, stored);
                prop_assert_eq!(&f[..n], &fields[..n]);
            }
        }
    }
}
