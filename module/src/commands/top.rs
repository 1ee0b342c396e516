//! `RL.TOP [count]`: the clients with the most denied requests lately on this node.
//!
//! Reply: an array of `[key, denied, error]`, most denied first, at most `count` (default 10,
//! at most the sketch's 128). `denied` may overcount by up to `error` (see `topk.rs` for the
//! Space-Saving bounds); counts halve every minute. Keyless: in a cluster, ask each master.
//! Lists only keys the caller's ACL user may read, since ACL key patterns cannot guard a
//! keyless command.

use crate::entry::Call;
use crate::ffi::{now_ms, CallerAcl};
use crate::metrics::TOP_DENIED;
use crate::reply;
use rl_core::args::{parse_integer, Integer};
use rl_core::error::Error;
use rl_core::topk::CAPACITY;

pub fn top(call: &Call) -> Result<(), Error> {
    let count = match call.args()? {
        [] => 10,
        [n] => match parse_integer(n) {
            Some(Integer::Positive(n)) if n >= 1 => usize::try_from(n).unwrap_or(CAPACITY),
            _ => return Err(Error::TopCountRange),
        },
        // Redis's arity (-1) lets more through; the registered syntax is `[count]`.
        _ => return Err(Error::WrongArity),
    };
    let all = {
        let mut sketch = TOP_DENIED.lock().unwrap_or_else(|e| e.into_inner());
        sketch.top(CAPACITY, now_ms())
    };
    // Only clients whose keys the caller may read: key names are data too.
    let ctx = call.ctx();
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
}
