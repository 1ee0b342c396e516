//! distributed-rate-limiter: a Redis module with native, atomic rate-limit commands.
//!
//! `RL.CONFIG key limit window_ms [BURST b] [IDLE ms]` stores a client's policy;
//! `RL.ALLOW key [COST n] [LIMIT l WINDOW w [BURST b]]` decides one request. State lives in a
//! custom `ratelimit` type (a GCRA bucket, see [`gcra`]) that persists in RDB/AOF, replicates
//! as effects and expires by itself when a client goes idle.
//!
//! Pure logic ([`gcra`], [`policy`], [`resolve`], [`verdict`], [`args`], [`codec`],
//! [`effect`], [`value`], [`error`]) knows nothing of the module API; the glue
//! ([`entry`], [`commands`], [`key`], [`propagate`], [`datatype`], [`load`], [`ffi`]) is all
//! that touches it. The README's "How a request flows" follows one `RL.ALLOW` through them.

// Pure: no Redis types; unit- and property-tested without a server.
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
pub mod value;
pub mod verdict;

// Glue: everything that touches the module API.
pub mod commands;
pub mod datatype;
pub mod defaults;
pub mod entry;
pub mod ffi;
pub mod key;
pub mod load;
pub mod metrics;
pub mod propagate;
pub mod reply;

use redis_module::{redis_module, InfoContext, RedisResult};

use datatype::RL_TYPE;
use load::{info, init};

// Redis's allocator inside the server (so INFO memory and MEMORY USAGE see our bytes); the
// system one for unit tests and tools that run outside Redis, where RedisAlloc would abort.
#[cfg(not(any(test, feature = "system-alloc")))]
type Allocator = redis_module::alloc::RedisAlloc;
#[cfg(not(any(test, feature = "system-alloc")))]
const ALLOCATOR: Allocator = redis_module::alloc::RedisAlloc;
#[cfg(any(test, feature = "system-alloc"))]
type Allocator = std::alloc::System;
#[cfg(any(test, feature = "system-alloc"))]
const ALLOCATOR: Allocator = std::alloc::System;

redis_module! {
    name: "rl",
    version: 1,
    allocator: (Allocator, ALLOCATOR),
    data_types: [RL_TYPE],
    init: init,
    info: info,
}
