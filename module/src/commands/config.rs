//! `RL.CONFIG key limit window_ms [BURST burst] [GCRA|SLIDING] [IDLE idle_ms] [SHADOW]
//! [AND limit window_ms [BURST burst] [GCRA|SLIDING] ...]`: stores a client's limits (up to
//! four, all-or-nothing). With SHADOW they only observe: see `StoredPolicy::shadow`.
//!
//! The key keeps whatever the client has used: a new or changed policy never hands out a
//! fresh burst (a limit that changes kind carries its usage over, `Usage::carried_to`; a
//! limit added at the end starts empty). A configured key does not expire unless `IDLE` is
//! given; then it is forgotten `idle_ms` after its last allowed request, and never before
//! every limit is empty.

use crate::entry::Call;
use crate::ffi::now_ms;
use crate::key::{Expiry, Key, Write};
use crate::metrics::CONFIGS;
use crate::reply;
use rl_core::args::{parse_config, parse_config_set};
use rl_core::error::Error;
use rl_core::gcra::Tat;
use rl_core::limits::{self, StoredLimits};
use rl_core::policy::{own_expiry, own_expiry_idle};
use rl_core::state::SetState;

pub fn config(call: &Call) -> Result<(), Error> {
    let args = call.args()?;
    let single = parse_config(args);
    // Only a call today's parser refuses is read with the set syntax (errors come first).
    let set = match single {
        Ok(_) => None,
        Err(_) => Some(parse_config_set(args)?),
    };
    let now = now_ms();
    let key = Key::open_write(call.ctx(), call.key());
    let value = key.value()?;
    let stored = match (single, set) {
        (Ok(stored), _) if !value.as_ref().is_some_and(|v| v.is_set()) => {
            let tat = value.as_ref().map_or(Tat::EMPTY, |v| v.tat());
            // Configuration is not usage: without IDLE the key has no expiry, whatever it had.
            let expiry = Expiry::Exactly(own_expiry(Some(stored), tat.empty_at_ms(), now));
            key.write(
                value,
                Write {
                    tat,
                    set_policy: Some(stored),
                    expiry,
                },
            )?;
            return done(call);
        }
        (Ok(stored), _) => StoredLimits::from_single(stored),
        (Err(_), Some(set)) => set,
        (Err(e), None) => return Err(e),
    };
    let mut usage = value.as_ref().map(|v| v.state().usage).unwrap_or_default();
    limits::align(&stored.limits, &mut usage, now);
    let empty_at = limits::empty_at_ms(&stored.limits, &usage, now);
    let expiry = Expiry::Exactly(own_expiry_idle(Some(stored.idle_ms), empty_at, now));
    let state = SetState::new(usage, Some(stored))
        .ok_or(Error::Internal("aligned usages do not match their limits"))?;
    key.write_state(value, state, true, expiry, &[])?;
    done(call)
}

fn done(call: &Call) -> Result<(), Error> {
    CONFIGS.incr();
    reply::ok(call.ctx());
    Ok(())
}
