//! One file per command; `register` gives Redis their flags, key positions and docs.

pub mod allow;
pub mod apply;
pub mod block;
pub mod check;
pub mod config;
pub mod info;
pub mod lease;
pub mod refund;
pub mod register;
pub mod reset;
pub mod settle;
pub mod throttle;
pub mod top;
