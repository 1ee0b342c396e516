//! The pure core of distributed-rate-limiter: everything that decides, parses, validates and
//! encodes, with no Redis types, no clock and no unsafe code (the build enforces both: this
//! crate does not depend on `redis-module` and forbids `unsafe`). Time is a parameter
//! (`now_ms`, Unix milliseconds) read once per command by the module.

#![forbid(unsafe_code)]

pub mod args;
pub mod codec;
pub mod effect;
pub mod error;
pub mod gcra;
pub mod limits;
pub mod policy;
pub mod resolve;
pub mod sliding;
pub mod state;
pub mod topk;
pub mod verdict;
