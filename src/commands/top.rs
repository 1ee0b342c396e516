//! `RL.TOP [count]`: the clients with the most denied requests lately on this node.
//!
//! Reply: an array of `[key, denied, error]`, most denied first, at most `count` (default 10,
//! at most the sketch's 128). `denied` may overcount by up to `error` (see `topk.rs` for the
//! Space-Saving bounds); counts halve every minute. Keyless: in a cluster, ask each master.
//! Lists only keys the caller's ACL user may read, since ACL key patterns cannot guard a
//! keyless command.

use std::ffi::c_int;

use crate::args::{parse_integer, Integer};
use crate::error::Error;
use crate::ffi::{now_ms, run_command, string_bytes, CallerAcl, Ctx, Str};
use crate::metrics::TOP_DENIED;
use crate::reply;
use crate::topk::CAPACITY;

pub extern "C" fn rl_top(ctx: Ctx, argv: *mut Str, argc: c_int) -> c_int {
    if !(1..=2).contains(&argc) {
        return reply::wrong_arity(ctx);
    }
    run_command(ctx, || {
        let count = if argc == 2 {
            // SAFETY: argc == 2.
            match parse_integer(unsafe { string_bytes(*argv.add(1)) }) {
                Some(Integer::Positive(n)) if n >= 1 => usize::try_from(n).unwrap_or(CAPACITY),
                _ => return Err(Error::TopCountRange),
            }
        } else {
            10
        };
        let all = {
            let mut sketch = TOP_DENIED.lock().unwrap_or_else(|e| e.into_inner());
            sketch.top(CAPACITY, now_ms())
        };
        // Only clients whose keys the caller may read: key names are data too.
        let acl = CallerAcl::new(ctx);
        let top: Vec<_> = all
            .into_iter()
            .filter(|e| acl.as_ref().is_some_and(|a| a.may_read(&e.key)))
            .take(count)
            .collect();
        reply::array(ctx, top.len());
        for e in top {
            reply::array(ctx, 3);
            reply::bulk(ctx, &e.key);
            reply::count(ctx, e.count);
            reply::count(ctx, e.error);
        }
        Ok(())
    })
}
