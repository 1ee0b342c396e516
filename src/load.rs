//! What happens when Redis loads the module: the API check, the `rl.*` configs (with
//! `loadmodule` arguments as their initial values), module options, the commands; and the
//! `INFO rl` section.

use redis_module::{
    configuration::{get_i64_default_config_value, register_i64_configuration, ConfigurationFlags},
    raw, Context, InfoContext, RedisString, Status,
};

use crate::datatype::RL_TYPE;
use crate::defaults::{
    self, DEFAULT_BURST, DEFAULT_LIMIT, DEFAULT_WINDOW_MS, DEFAULT_WINDOW_MS_INITIAL, SCALE_PERCENT,
};
use crate::policy::{MAX_BURST, MAX_LIMIT, MAX_SCALE_PERCENT, MAX_WINDOW_MS, MIN_SCALE_PERCENT};
use crate::{commands, entry, ffi, key, metrics};

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

pub fn init(ctx: &Context, args: &[RedisString]) -> Status {
    if !ffi::check_api(ctx.ctx) || register_configs(ctx, args) == Status::Err {
        return Status::Err;
    }
    key::set_type(*RL_TYPE.raw_type.borrow());
    entry::install_panic_hook();
    // Report RDB read errors to rdb_load instead of aborting the server on a bad payload, and
    // signal key changes ourselves so that a denied RL.ALLOW does not touch WATCHed keys.
    let options = raw::REDISMODULE_OPTIONS_HANDLE_IO_ERRORS
        | raw::REDISMODULE_OPTION_NO_IMPLICIT_SIGNAL_MODIFIED;
    ffi::api!(RedisModule_SetModuleOptions(
        ctx.ctx,
        options as std::ffi::c_int
    ));
    if commands::register::register_commands(ctx.ctx) {
        Status::Ok
    } else {
        Status::Err
    }
}

/// `INFO rl`: the module's counters, as `rl_<name>:<value>` lines.
pub fn info(ctx: &InfoContext, _for_crash_report: bool) {
    ffi::api!(RedisModule_InfoAddSection(ctx.ctx, std::ptr::null_mut()));
    for (name, value) in metrics::info_fields(defaults::scale_percent()) {
        if let Ok(name) = std::ffi::CString::new(name) {
            ffi::api!(RedisModule_InfoAddFieldLongLong(
                ctx.ctx,
                name.as_ptr(),
                value
            ));
        }
    }
}
