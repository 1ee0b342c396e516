//! Every error the module can reply with, and its one conversion to a Redis error line.
//!
//! Messages are static C strings: an error reply allocates nothing and never echoes client
//! bytes (which could hold CR/LF or invalid UTF-8) back into the protocol.
//!
//! PURE: no Redis types here.

use std::ffi::CStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    LimitRange,
    WindowRange,
    BurstRange,
    CostRange,
    IdleRange,
    DrainTooLong,
    UnknownAllowOption,
    /// An unknown option of RL.THROTTLE or RL.PEEK (which also take WITHPOLICY).
    UnknownCheckOption,
    UnknownConfigOption,
    RepeatedOption,
    TooManyArguments,
    MissingValue,
    LimitWithoutWindow,
    BurstWithoutLimit,
    NoPolicy,
    DefaultInvalid,
    WrongType,
    ApplyNotAllowed,
    ApplyInvalid,
    TopCountRange,
    /// Redis's own arity error, for a count Redis's arity check cannot express.
    WrongArity,
    /// A bug or an API failure: what happened, for the server log (the client is told to
    /// look there).
    Internal(&'static str),
    UnknownKind,
    TooManyLimits,
    SlidingLimitRange,
    SlidingWindowRange,
    SlidingBurst,
    AndWithoutPolicy,
    KindTwice,
}

impl Error {
    /// The error line as Redis sends it, prefix (`ERR`, `WRONGTYPE`) included.
    pub fn message(self) -> &'static CStr {
        match self {
            Error::LimitRange => c"ERR limit must be an integer from 1 to 1000000000",
            Error::WindowRange => c"ERR window_ms must be an integer from 1 to 1000000000000",
            Error::BurstRange => c"ERR burst must be an integer from 1 to 1000000000",
            Error::CostRange => c"ERR cost must be an integer from 1 to 1000000000",
            Error::IdleRange => c"ERR idle_ms must be an integer from 1 to 1000000000000",
            Error::DrainTooLong => {
                c"ERR burst * window_ms / limit is too large: a full bucket must drain within 10000000000000 ms"
            }
            Error::UnknownAllowOption => {
                c"ERR syntax error: RL.ALLOW takes the options COST, LIMIT, WINDOW and BURST"
            }
            Error::UnknownCheckOption => {
                c"ERR syntax error: RL.THROTTLE and RL.PEEK take the options COST, LIMIT, WINDOW, BURST and WITHPOLICY"
            }
            Error::UnknownConfigOption => {
                c"ERR syntax error: RL.CONFIG takes the options BURST, IDLE and SHADOW"
            }
            Error::RepeatedOption => c"ERR syntax error: an option was given more than once",
            Error::TooManyArguments => {
                c"ERR syntax error: too many arguments (is an option given more than once?)"
            }
            Error::MissingValue => c"ERR syntax error: an option is missing its value",
            Error::LimitWithoutWindow => c"ERR LIMIT and WINDOW must be given together",
            Error::BurstWithoutLimit => c"ERR BURST needs LIMIT and WINDOW",
            Error::NoPolicy => {
                c"ERR no rate limit for key: RL.CONFIG it, pass LIMIT and WINDOW, or set rl.default-limit"
            }
            Error::DefaultInvalid => {
                c"ERR the default policy is invalid: rl.default-burst * rl.default-window-ms / rl.default-limit must be at most 10000000000000 ms"
            }
            Error::WrongType => c"WRONGTYPE Operation against a key holding the wrong kind of value",
            Error::ApplyNotAllowed => {
                c"ERR RL.APPLY is internal: it is accepted only from the master link or while loading the AOF"
            }
            Error::ApplyInvalid => c"ERR RL.APPLY got an impossible bucket state",
            Error::TopCountRange => c"ERR count must be a positive integer",
            Error::WrongArity => c"ERR wrong number of arguments",
            Error::Internal(_) => c"ERR internal error in the rl module (see the server log)",
            Error::UnknownKind => {
                c"ERR unknown limit kind: a limit is GCRA (the default) or SLIDING"
            }
            Error::TooManyLimits => c"ERR too many limits: a key holds at most 4 (joined by AND)",
            Error::SlidingLimitRange => {
                c"ERR a SLIDING limit must be an integer from 1 to 1000 (use GCRA for more requests per window)"
            }
            Error::SlidingWindowRange => {
                c"ERR a SLIDING window_ms must be an integer from 1 to 4294967295 (about 49 days)"
            }
            Error::SlidingBurst => {
                c"ERR BURST applies to GCRA limits only: a SLIDING limit's burst is its limit"
            }
            Error::AndWithoutPolicy => {
                c"ERR syntax error: AND joins two limits, each with its limit and window_ms (RL.ALLOW: LIMIT l WINDOW w)"
            }
            Error::KindTwice => c"ERR syntax error: a limit takes one kind, GCRA or SLIDING",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_is_a_single_redis_error_line() {
        let all = [
            Error::LimitRange,
            Error::WindowRange,
            Error::BurstRange,
            Error::CostRange,
            Error::IdleRange,
            Error::DrainTooLong,
            Error::UnknownAllowOption,
            Error::UnknownCheckOption,
            Error::UnknownConfigOption,
            Error::RepeatedOption,
            Error::TooManyArguments,
            Error::MissingValue,
            Error::LimitWithoutWindow,
            Error::BurstWithoutLimit,
            Error::NoPolicy,
            Error::DefaultInvalid,
            Error::WrongType,
            Error::ApplyNotAllowed,
            Error::ApplyInvalid,
            Error::TopCountRange,
            Error::WrongArity,
            Error::Internal("test"),
            Error::UnknownKind,
            Error::TooManyLimits,
            Error::SlidingLimitRange,
            Error::SlidingWindowRange,
            Error::SlidingBurst,
            Error::AndWithoutPolicy,
            Error::KindTwice,
        ];
        for e in all {
            let m = e.message().to_str().unwrap();
            assert!(m.starts_with("ERR ") || m.starts_with("WRONGTYPE "), "{m}");
            assert!(!m.contains('\r') && !m.contains('\n'), "{m}");
        }
    }
}
