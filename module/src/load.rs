//! What happens when Redis loads the module: the API check, the `rl.*` configs (with
//! `loadmodule` arguments as their initial values), module options, the commands; and the
//! `INFO rl` section.

#![allow(clippy::not_unsafe_ptr_arg_deref)] // Ctx is Redis's, valid during loading.

use std::ffi::c_int;

use redis_module::{
    configuration::{get_i64_default_config_value, register_i64_configuration, ConfigurationFlags},
    decode_args, raw, Context, RedisString, Status, MODULE_CONTEXT,
};

use crate::datatype::RL_TYPE;
use crate::defaults::{
    self, DEFAULT_BURST, DEFAULT_LIMIT, DEFAULT_WINDOW_MS, DEFAULT_WINDOW_MS_INITIAL, SCALE_PERCENT,
};
use crate::{commands, entry, ffi, key, metrics};
use rl_core::kinds::gcra::{MAX_BURST, MAX_LIMIT, MAX_WINDOW_MS};
use rl_core::policy::{MAX_SCALE_PERCENT, MIN_SCALE_PERCENT};

/// The `rl.*` numeric configs: name, variable, initial value, min, max.
type NumericConfig = (
    &'static str,
    &'static std::sync::atomic::AtomicI64,
    i64,
    i64,
    i64,
);

const CONFIGS: [NumericConfig; 4] = [
    ("default-limit", &DEFAULT_LIMIT, 0, 0, MAX_LIMIT as i64),
    (
        "default-window-ms",
        &DEFAULT_WINDOW_MS,
        DEFAULT_WINDOW_MS_INITIAL,
        1,
        MAX_WINDOW_MS as i64,
    ),
    ("default-burst", &DEFAULT_BURST, 0, 0, MAX_BURST as i64),
    (
        "scale-percent",
        &SCALE_PERCENT,
        100,
        MIN_SCALE_PERCENT as i64,
        MAX_SCALE_PERCENT as i64,
    ),
];

/// Registers the configs, taking `loadmodule` arguments (`default-limit 10 ...`) as their
/// initial values; `rl.*` lines in redis.conf then override them, as for any module config.
/// Done by hand because the crate's macro only supports module arguments when configs of
/// every kind (string, bool, enum) are declared.
fn register_configs(ctx: &Context, args: &[RedisString]) -> Status {
    if !args.len().is_multiple_of(2) {
        ffi::log_warning(ctx.ctx, "rl: module arguments must be name value pairs, e.g. default-limit 10 default-window-ms 60000");
        return Status::Err;
    }
    for pair in args.chunks(2) {
        if !CONFIGS.iter().any(|c| pair[0].as_slice() == c.0.as_bytes()) {
            ffi::log_warning(ctx.ctx, "rl: unknown module argument: the arguments are default-limit, default-window-ms, default-burst and scale-percent");
            return Status::Err;
        }
    }
    for (name, var, initial, min, max) in CONFIGS {
        let initial = match get_i64_default_config_value(args, name, initial) {
            Ok(v) if (min..=max).contains(&v) => v,
            _ => {
                ffi::log_warning(
                    ctx.ctx,
                    &format!("rl: {name} must be an integer from {min} to {max}"),
                );
                return Status::Err;
            }
        };
        register_i64_configuration(
            ctx,
            name,
            var,
            initial,
            min,
            max,
            ConfigurationFlags::DEFAULT,
            None,
        );
    }
    match ffi::api!(RedisModule_LoadConfigs(ctx.ctx)) {
        Some(r) if r == raw::REDISMODULE_OK as std::ffi::c_int => Status::Ok,
        _ => Status::Err,
    }
}

/// Initialises the API table, then (in this order) checks the server's APIs, creates the
/// data type, the configs, module options and commands, and the `INFO rl` section.
pub fn on_load(ctx: ffi::Ctx, argv: *mut ffi::Str, argc: c_int) -> c_int {
    let err = raw::Status::Err as c_int;
    // SAFETY: Redis's context, as Redis passed it; the name is a static C string.
    let init = unsafe {
        raw::Export_RedisModule_Init(ctx, c"rl".as_ptr(), 1, raw::REDISMODULE_APIVER_1 as c_int)
    };
    if init == err || !ffi::check_api(ctx) {
        return err;
    }
    let context = Context::new(ctx);
    // The crate's configuration helpers and logging find the module's context here.
    // (Set once per process; a second load after MODULE UNLOAD keeps the first.)
    let _ = MODULE_CONTEXT.set_context(&context);
    let args = decode_args(ctx, argv, argc);
    if RL_TYPE.create_data_type(ctx).is_err() || register_configs(&context, &args) == Status::Err {
        return err;
    }
    key::set_type(*RL_TYPE.raw_type.borrow());
    entry::install_panic_hook();
    // Report RDB read errors to rdb_load instead of aborting the server on a bad payload;
    // signal key changes ourselves so that a denied RL.ALLOW does not touch WATCHed keys;
    // and let replicas load the RDB asynchronously (`repl-diskless-load swapdb`): the type
    // keeps no state outside its values, so two datasets side by side are no concern.
    let options = raw::REDISMODULE_OPTIONS_HANDLE_IO_ERRORS
        | raw::REDISMODULE_OPTION_NO_IMPLICIT_SIGNAL_MODIFIED
        | raw::REDISMODULE_OPTIONS_HANDLE_REPL_ASYNC_LOAD;
    ffi::api!(RedisModule_SetModuleOptions(ctx, options as c_int));
    if !commands::register::register_commands(ctx) {
        return err;
    }
    if ffi::api!(RedisModule_RegisterInfoFunc(ctx, Some(info)))
        != Some(raw::REDISMODULE_OK as c_int)
    {
        return err;
    }
    raw::Status::Ok as c_int
}

/// `INFO rl`: the module's counters, as `rl_<name>:<value>` lines.
extern "C" fn info(ctx: *mut raw::RedisModuleInfoCtx, _for_crash_report: c_int) {
    ffi::api!(RedisModule_InfoAddSection(ctx, std::ptr::null_mut()));
    for (name, value) in metrics::info_fields(defaults::scale_percent()) {
        if let Ok(name) = std::ffi::CString::new(name) {
            ffi::api!(RedisModule_InfoAddFieldLongLong(ctx, name.as_ptr(), value));
        }
    }
}
