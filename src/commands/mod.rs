//! One file per command; `register` gives Redis their flags, key positions and docs.

// Handlers receive a context and argv from Redis, valid for the call by the module API's
// contract; marking every handler `unsafe` would add nothing.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

pub mod allow;
pub mod apply;
pub mod check;
pub mod config;
pub mod info;
pub mod register;
pub mod reset;
pub mod throttle;
pub mod top;
