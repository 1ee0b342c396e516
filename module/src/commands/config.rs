//! `RL.CONFIG key limit window_ms [BURST burst] [KIND] [IDLE idle_ms] [SHADOW] [AND limit
//! window_ms [BURST burst] [KIND] ...]`: stores a client's limits (up to four,
//! all-or-nothing). With SHADOW they only observe (see `Stored::shadow`).
//!
//! The key keeps whatever the client has used: the usage is carried to the new limits by the
//! rules of `rl_core::state` (never a fresh burst, nothing expired revived, and any sequence
//! of reconfigurations within one millisecond reads as the last one alone). A configured key
//! does not expire unless `IDLE` is given; then it is forgotten `idle_ms` after its last
//! allowed request, and never before every limit is empty.

use crate::entry::Call;
use crate::ffi::now_ms;
use crate::key::{Effect, Expiry, Key, New};
use crate::metrics::CONFIGS;
use crate::reply;
use rl_core::args::parse_config;
use rl_core::decide::numbers;
use rl_core::error::Error;
use rl_core::policy::own_expiry;
use rl_core::state::State;

pub fn config(call: &Call) -> Result<(), Error> {
    let stored = call.parse(parse_config)?;
    let now = now_ms();
    let key = Key::open_write(call.ctx(), call.key());
    let value = key.value()?;
    let mut state = State::configure(value.as_ref().map(|v| v.state()), stored, now);
    // Configuration is not usage: without IDLE the key has no expiry, whatever it had.
    let seen = state.view(&stored.policy, now);
    let empty_at = now + numbers(&stored.policy, seen.as_slice(), None, now, 0).reset_after_ms;
    let expiry = Expiry::Exactly(own_expiry(Some(stored.idle_ms), empty_at, now));
    let effect = Effect {
        set_policy: true,
        ..Effect::default()
    };
    key.write(value, New::State(&mut state), expiry, &effect)?;
    CONFIGS.incr();
    reply::ok(call.ctx());
    Ok(())
}
