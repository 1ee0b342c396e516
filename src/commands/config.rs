//! `RL.CONFIG key limit window_ms [BURST burst] [IDLE idle_ms] [SHADOW]`: stores a client's
//! policy. With SHADOW the policy only observes: see `StoredPolicy::shadow`.
//!
//! The key keeps whatever the client has used (its TAT): a new or changed policy never hands
//! out a fresh burst. A configured key does not expire unless `IDLE` is given; then it is
//! forgotten `idle_ms` after its last allowed request, and never before its bucket is empty.

use crate::args::parse_config;
use crate::entry::Call;
use crate::error::Error;
use crate::ffi::now_ms;
use crate::gcra::Tat;
use crate::key::{Expiry, Key, Write};
use crate::metrics::CONFIGS;
use crate::policy::own_expiry;
use crate::reply;

pub fn config(call: &Call) -> Result<(), Error> {
    let stored = parse_config(call.args()?)?;
    let now = now_ms();
    let key = Key::open_write(call.ctx(), call.key());
    let value = key.value()?;
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
    CONFIGS.incr();
    reply::ok(call.ctx());
    Ok(())
}
