//! `RL.ALLOW key [COST n] [LIMIT limit WINDOW window_ms [BURST burst] [KIND] [AND ...]]`: one
//! call per request.
//!
//! Replies 1 (allowed) or 0 (denied), a boolean in RESP3. The hot path: parse without
//! allocating, read the clock once, open the key once, decide, update the value in place,
//! and replicate the resulting state (never the command, whose answer depends on the clock).
//! A denied request writes, expires and replicates nothing. It computes no numbers: it
//! replies only the decision.

use super::check::check;
use crate::entry::Call;
use crate::reply;
use rl_core::args::Command;
use rl_core::error::Error;

pub fn allow(call: &Call) -> Result<(), Error> {
    let told = check(call, Command::Allow, true, &mut None)?;
    reply::boolean(call.ctx(), told.allowed);
    Ok(())
}
