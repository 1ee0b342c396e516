//! One file per command; `register` gives Redis their flags, key positions and docs.

pub mod allow;
pub mod apply;
pub mod check;
pub mod config;
pub mod info;
pub mod register;
pub mod reset;
pub mod throttle;
pub mod top;
