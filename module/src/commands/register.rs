//! Registers the commands with their flags, key positions, arity and `COMMAND DOCS`.
//!
//! Uses the raw `CreateCommand` + `SetCommandInfo` pair: the crate's `#[command]` macro also
//! calls `SetCommandACLCategories`, which Redis 7.0 lacks. Redis copies everything
//! `SetCommandInfo` is given, so the tables below only live during registration.

#![allow(clippy::not_unsafe_ptr_arg_deref)] // Ctx is Redis's, valid during loading.

use std::ffi::{c_char, c_int, CStr};
use std::ptr;

use redis_module::raw;

use super::{allow, apply, config, info, reset, throttle, top};
use crate::entry::{handler, Shape};
use crate::ffi::{api, has_acl_categories, log_warning, Ctx};
use rl_core::policy::FIELD_NAMES;

type Handler = extern "C" fn(Ctx, *mut *mut raw::RedisModuleString, c_int) -> c_int;

const INFO_VERSION: raw::RedisModuleCommandInfoVersion = raw::RedisModuleCommandInfoVersion {
    version: 1,
    sizeof_historyentry: std::mem::size_of::<raw::RedisModuleCommandHistoryEntry>(),
    sizeof_keyspec: std::mem::size_of::<raw::RedisModuleCommandKeySpec>(),
    sizeof_arg: std::mem::size_of::<raw::RedisModuleCommandArg>(),
};

const SINCE: &CStr = c"0.1.0";

struct Command {
    name: &'static CStr,
    handler: Handler,
    flags: &'static CStr,
    arity: c_int,
    summary: &'static CStr,
    complexity: &'static CStr,
    /// Flags of the key at position 1; `None` for a keyless command.
    key_flags: Option<u32>,
    /// Standard ACL categories, for servers that let modules set them (Redis 7.2+, Valkey);
    /// `@ratelimit` is added where the server lets a module create a category.
    acl: &'static CStr,
    args: Vec<raw::RedisModuleCommandArg>,
}

fn arg(name: &'static CStr, kind: raw::RedisModuleCommandArgType) -> raw::RedisModuleCommandArg {
    raw::RedisModuleCommandArg {
        name: name.as_ptr(),
        type_: kind,
        key_spec_index: -1,
        token: ptr::null(),
        summary: ptr::null(),
        since: ptr::null(),
        flags: 0,
        deprecated_since: ptr::null(),
        subargs: ptr::null_mut(),
        display_text: ptr::null(),
    }
}

fn key() -> raw::RedisModuleCommandArg {
    raw::RedisModuleCommandArg {
        key_spec_index: 0,
        ..arg(
            c"key",
            raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_KEY,
        )
    }
}

fn integer(name: &'static CStr) -> raw::RedisModuleCommandArg {
    arg(
        name,
        raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_INTEGER,
    )
}

/// `TOKEN name`, optional.
fn option(token: &'static CStr, name: &'static CStr) -> raw::RedisModuleCommandArg {
    raw::RedisModuleCommandArg {
        token: token.as_ptr(),
        flags: raw::REDISMODULE_CMD_ARG_OPTIONAL as c_int,
        ..integer(name)
    }
}

/// An optional block of arguments. Its `subargs` array (ending with a zeroed entry) is
/// handed over as a raw boxed slice and freed by [`free_blocks`] once Redis has copied it.
fn block(
    name: &'static CStr,
    token: Option<&'static CStr>,
    mut subargs: Vec<raw::RedisModuleCommandArg>,
) -> raw::RedisModuleCommandArg {
    subargs.push(end());
    let subargs: *mut [raw::RedisModuleCommandArg] = Box::into_raw(subargs.into_boxed_slice());
    raw::RedisModuleCommandArg {
        token: token.map_or(ptr::null(), CStr::as_ptr),
        flags: raw::REDISMODULE_CMD_ARG_OPTIONAL as c_int,
        subargs: subargs.cast(),
        ..arg(
            name,
            raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_BLOCK,
        )
    }
}

/// `[GCRA|SLIDING]`: a limit's kind (issue 11), a one-of of two pure tokens. Its `subargs`
/// array is made and freed as a [`block`]'s.
fn kind() -> raw::RedisModuleCommandArg {
    let token = |t: &'static CStr, name: &'static CStr| raw::RedisModuleCommandArg {
        token: t.as_ptr(),
        ..arg(
            name,
            raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_PURE_TOKEN,
        )
    };
    raw::RedisModuleCommandArg {
        type_: raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_ONEOF,
        ..block(
            c"kind",
            None,
            vec![token(c"GCRA", c"gcra"), token(c"SLIDING", c"sliding")],
        )
    }
}

/// `[AND ... [AND ...]]`: more limits, each introduced by `AND` (up to four in all).
fn more_limits(subargs: Vec<raw::RedisModuleCommandArg>) -> raw::RedisModuleCommandArg {
    let mut b = block(c"and-limit", Some(c"AND"), subargs);
    b.flags |=
        (raw::REDISMODULE_CMD_ARG_MULTIPLE | raw::REDISMODULE_CMD_ARG_MULTIPLE_TOKEN) as c_int;
    b
}

/// Frees the `subargs` arrays that [`block`] made (blocks are never nested here).
fn free_blocks(args: &[raw::RedisModuleCommandArg]) {
    for a in args.iter().filter(|a| !a.subargs.is_null()) {
        // The array ends at its zeroed entry (null name), inclusive.
        let mut len = 1;
        // SAFETY: `block` made this array, terminator included, and nothing else holds it.
        unsafe {
            while !(*a.subargs.add(len - 1)).name.is_null() {
                len += 1;
            }
            drop(Box::from_raw(ptr::slice_from_raw_parts_mut(a.subargs, len)));
        }
    }
}

fn end() -> raw::RedisModuleCommandArg {
    // SAFETY: an all-zero RedisModuleCommandArg (null pointers, zero ints) ends an array.
    unsafe { std::mem::zeroed() }
}

/// `[COST n] [LIMIT limit WINDOW window_ms [BURST burst]] [GCRA|SLIDING] [AND LIMIT ...]`,
/// after the key, and `[WITHPOLICY]` for `RL.THROTTLE` and `RL.PEEK` (`with_policy`). (A kind
/// may follow each limit; docs cannot nest a one-of in a block here.)
fn request_args(with_policy: bool) -> Vec<raw::RedisModuleCommandArg> {
    let required = |token: &'static CStr, name: &'static CStr| raw::RedisModuleCommandArg {
        token: token.as_ptr(),
        ..integer(name)
    };
    let limit = || {
        vec![
            required(c"LIMIT", c"limit"),
            required(c"WINDOW", c"window_ms"),
            option(c"BURST", c"burst"),
        ]
    };
    let mut args = vec![
        key(),
        option(c"COST", c"cost"),
        block(c"inline-policy", None, limit()),
        kind(),
        more_limits(limit()),
    ];
    if with_policy {
        args.push(raw::RedisModuleCommandArg {
            token: c"WITHPOLICY".as_ptr(),
            flags: raw::REDISMODULE_CMD_ARG_OPTIONAL as c_int,
            ..arg(
                c"withpolicy",
                raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_PURE_TOKEN,
            )
        });
    }
    args
}

const RW_ACCESS: u32 =
    raw::REDISMODULE_CMD_KEY_RW | raw::REDISMODULE_CMD_KEY_ACCESS | raw::REDISMODULE_CMD_KEY_UPDATE;
const RO_ACCESS: u32 = raw::REDISMODULE_CMD_KEY_RO | raw::REDISMODULE_CMD_KEY_ACCESS;

fn commands() -> Vec<Command> {
    vec![
        Command {
            name: c"rl.allow",
            handler: handler!(allow::allow, Shape::Keyed),
            flags: c"write deny-oom fast",
            acl: c"write fast",
            arity: -2,
            summary: c"Decides one request against the client's rate limit: 1 (allowed, and counted) or 0 (denied, and not counted).",
            complexity: c"O(1)",
            key_flags: Some(RW_ACCESS),
            args: request_args(false),
        },
        Command {
            name: c"rl.throttle",
            handler: handler!(throttle::throttle, Shape::Keyed),
            flags: c"write deny-oom fast",
            acl: c"write fast",
            arity: -2,
            summary: c"Decides and counts one request like RL.ALLOW, and replies [allowed, limit, remaining, retry_after_ms, reset_after_ms] (and binding under several limits; with WITHPOLICY also binding, source and the limits enforced; a map in RESP3).",
            complexity: c"O(1)",
            key_flags: Some(RW_ACCESS),
            args: request_args(true),
        },
        Command {
            name: c"rl.peek",
            handler: handler!(throttle::peek, Shape::Keyed),
            flags: c"readonly fast",
            acl: c"read fast",
            arity: -2,
            summary: c"Replies what RL.THROTTLE would reply at this instant, for a hypothetical request, without counting or writing anything.",
            complexity: c"O(1)",
            key_flags: Some(RO_ACCESS),
            args: request_args(true),
        },
        Command {
            name: c"rl.config",
            handler: handler!(config::config, Shape::Keyed),
            flags: c"write deny-oom",
            acl: c"write slow",
            arity: -4,
            summary: c"Stores the client's policy: at most limit requests per window_ms milliseconds (GCRA, with a bucket of burst requests; or SLIDING, in any window), up to 4 limits joined by AND. Keeps what the client has already used.",
            complexity: c"O(1)",
            key_flags: Some(raw::REDISMODULE_CMD_KEY_RW | raw::REDISMODULE_CMD_KEY_UPDATE),
            args: vec![
                key(),
                integer(c"limit"),
                integer(c"window_ms"),
                option(c"BURST", c"burst"),
                kind(),
                option(c"IDLE", c"idle_ms"),
                raw::RedisModuleCommandArg {
                    token: c"SHADOW".as_ptr(),
                    flags: raw::REDISMODULE_CMD_ARG_OPTIONAL as c_int,
                    ..arg(c"shadow", raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_PURE_TOKEN)
                },
                more_limits(vec![
                    integer(c"limit"),
                    integer(c"window_ms"),
                    option(c"BURST", c"burst"),
                ]),
            ],
        },
        Command {
            name: c"rl.info",
            handler: handler!(info::info, Shape::Keyed),
            flags: c"readonly fast",
            acl: c"read fast",
            arity: 2,
            summary: c"Shows a key's policy (limit, window_ms, burst, idle_ms, shadow, and where it comes from) and live state (remaining, reset_after_ms); nil for an absent key.",
            complexity: c"O(1)",
            key_flags: Some(RO_ACCESS),
            args: vec![key()],
        },
        Command {
            name: c"rl.reset",
            handler: handler!(reset::reset, Shape::Keyed),
            flags: c"write fast",
            acl: c"write fast",
            arity: 2,
            summary: c"Forgets a client's usage and keeps its stored policy; replies the backlog forgotten, in ms.",
            complexity: c"O(1)",
            // ACCESS: its reply (the backlog forgotten) reveals usage, so a write-only user may not.
            // (INSERT, DELETE and UPDATE are exclusive: DELETE says it may remove the key.)
            key_flags: Some(
                raw::REDISMODULE_CMD_KEY_RW
                    | raw::REDISMODULE_CMD_KEY_ACCESS
                    | raw::REDISMODULE_CMD_KEY_DELETE,
            ),
            args: vec![key()],
        },
        Command {
            name: c"rl.top",
            handler: handler!(top::top, Shape::Keyless),
            flags: c"readonly",
            acl: c"read slow",
            arity: -1,
            summary: c"Lists the clients with the most denied requests lately on this node: [key, denied, error] entries, from a fixed-memory Space-Saving sketch.",
            complexity: c"O(k log k) with k = 128 tracked clients",
            key_flags: None,
            args: vec![raw::RedisModuleCommandArg {
                flags: raw::REDISMODULE_CMD_ARG_OPTIONAL as c_int,
                ..integer(c"count")
            }],
        },
        Command {
            name: c"rl.apply",
            handler: handler!(apply::apply, Shape::Keyed),
            flags: c"write",
            acl: c"write slow",
            arity: -3,
            summary: c"Internal: sets a key's state as replicated by every write (RL.ALLOW, RL.THROTTLE, RL.CONFIG, RL.RESET): one GCRA limit with POLICY, anything else with LIMITS. Accepted only from the master link or while loading the AOF.",
            complexity: c"O(1)",
            // Without POLICY or LIMITS it keeps the stored policy: a read-modify-write.
            key_flags: Some(raw::REDISMODULE_CMD_KEY_RW | raw::REDISMODULE_CMD_KEY_UPDATE),
            args: vec![
                key(),
                arg(c"state", raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_STRING),
                block(
                    c"policy",
                    Some(c"POLICY"),
                    FIELD_NAMES.into_iter().map(integer).collect(),
                ),
                raw::RedisModuleCommandArg {
                    token: c"LIMITS".as_ptr(),
                    flags: raw::REDISMODULE_CMD_ARG_OPTIONAL as c_int,
                    ..arg(c"limits", raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_STRING)
                },
            ],
        },
    ]
}

/// The module's own ACL category: `ACL SETUSER app +@ratelimit` grants every RL.* command.
const CATEGORY: &CStr = c"ratelimit";

/// Creates every command; `false` (and a log line) if Redis refuses one. On servers with the
/// ACL-category API (Redis 7.2+, Valkey) each command gets its categories, with `@ratelimit`
/// where the server can add a module category (Redis 7.4+, Valkey 8+); Redis 7.0 has
/// neither, and its users grant the commands by name.
pub fn register_commands(ctx: Ctx) -> bool {
    let own_category = api!(RedisModule_AddACLCategory(ctx, CATEGORY.as_ptr()))
        == Some(raw::REDISMODULE_OK as c_int);
    commands().into_iter().all(|mut c| {
        let ok = register(ctx, &mut c) && set_categories(ctx, &c, own_category);
        if !ok {
            let msg = format!("rl: failed to register {}", c.name.to_string_lossy());
            log_warning(ctx, &msg);
        }
        ok
    })
}

/// Gives a created command its ACL categories, where the server has the API.
fn set_categories(ctx: Ctx, c: &Command, own_category: bool) -> bool {
    if !has_acl_categories() {
        return true;
    }
    let Some(cmd) = api!(RedisModule_GetCommand(ctx, c.name.as_ptr())).filter(|p| !p.is_null())
    else {
        return false;
    };
    let mut categories = c.acl.to_bytes().to_vec();
    if own_category {
        categories.push(b' ');
        categories.extend_from_slice(CATEGORY.to_bytes());
    }
    let Ok(categories) = std::ffi::CString::new(categories) else {
        return false;
    };
    api!(RedisModule_SetCommandACLCategories(
        cmd,
        categories.as_ptr()
    )) == Some(raw::REDISMODULE_OK as c_int)
}

fn register(ctx: Ctx, c: &mut Command) -> bool {
    let first_key = c_int::from(c.key_flags.is_some());
    let created = api!(RedisModule_CreateCommand(
        ctx,
        c.name.as_ptr(),
        Some(c.handler),
        c.flags.as_ptr(),
        first_key,
        first_key,
        first_key
    ));
    if created != Some(raw::REDISMODULE_OK as c_int) {
        return false;
    }
    let Some(cmd) = api!(RedisModule_GetCommand(ctx, c.name.as_ptr())).filter(|p| !p.is_null())
    else {
        return false;
    };
    // SAFETY: all-zero key specs are the array terminator Redis expects.
    let mut key_specs: [raw::RedisModuleCommandKeySpec; 2] = unsafe { std::mem::zeroed() };
    if let Some(flags) = c.key_flags {
        key_specs[0].flags = u64::from(flags);
        key_specs[0].begin_search_type =
            raw::RedisModuleKeySpecBeginSearchType_REDISMODULE_KSPEC_BS_INDEX;
        key_specs[0].bs.index.pos = 1;
        key_specs[0].find_keys_type =
            raw::RedisModuleKeySpecFindKeysType_REDISMODULE_KSPEC_FK_RANGE;
        key_specs[0].fk.range = raw::RedisModuleCommandKeySpec__bindgen_ty_2__bindgen_ty_1 {
            lastkey: 0,
            keystep: 1,
            limit: 0,
        };
    }
    c.args.push(end());
    let info = raw::RedisModuleCommandInfo {
        version: &INFO_VERSION,
        summary: c.summary.as_ptr(),
        complexity: c.complexity.as_ptr(),
        since: SINCE.as_ptr(),
        history: ptr::null_mut(),
        tips: ptr::null::<c_char>(),
        arity: c.arity,
        key_specs: if c.key_flags.is_some() {
            key_specs.as_mut_ptr()
        } else {
            ptr::null_mut()
        },
        args: c.args.as_mut_ptr(),
    };
    let ok = api!(RedisModule_SetCommandInfo(cmd, &info)) == Some(raw::REDISMODULE_OK as c_int);
    // Redis copied the tables.
    free_blocks(&c.args);
    ok
}
