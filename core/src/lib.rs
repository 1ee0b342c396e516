//! The pure core of distributed-rate-limiter: everything that decides, parses, validates and
//! encodes, with no Redis types, no clock and no unsafe code (the build enforces both: this
//! crate does not depend on `redis-module` and forbids `unsafe`). Time is a parameter
//! (`now_ms`, Unix milliseconds) that the module reads once per command.
//!
//! One pipeline, every command: [`args`] parses (one parser for checks, one for
//! `RL.CONFIG`), [`resolve`] picks the policy (stored, inline, default; scaled; shadow),
//! [`state`] reads the key's usage under it (carrying it across a reconfiguration),
//! [`decide`] decides over every limit and computes the numbers, and the module stores the
//! result, sending [`apply`]'s text to replicas and writing [`rdb`]'s fields to disk. Each kind
//! of limit is one file in [`kinds`].

#![forbid(unsafe_code)]

pub mod apply;
pub mod args;
pub mod decide;
pub mod error;
pub mod kinds;
pub mod policy;
pub mod rdb;
pub mod resolve;
pub mod state;
pub mod text;
pub mod topk;
