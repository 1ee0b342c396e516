//! The one way into a command: Redis calls a generated `extern "C"` handler, which hands the
//! command's body a [`Call`] (safe, typed arguments: the key and the rest as byte slices)
//! and turns the body's `Result` into the reply.
//!
//! Redis enforces each command's registered arity before calling it, so bodies check no
//! argument count; a body that panics (a bug) gets an error reply instead of an aborted
//! server, and every internal error is logged with the command's name and key length (never
//! the key, which may be personal data).

#![allow(clippy::not_unsafe_ptr_arg_deref)] // Ctx and argv are valid for the callback.

use std::cell::RefCell;
use std::ffi::c_int;
use std::mem::MaybeUninit;
use std::panic::{catch_unwind, AssertUnwindSafe};

use redis_module::raw;

use crate::ffi::{log_warning, string_bytes, Ctx, Str};
use crate::reply;
use rl_core::error::Error;

/// Arguments after the key a command is given to parse. The longest valid call is
/// `RL.THROTTLE` with `COST`, `WITHPOLICY`, four inline limits of every option (`LIMIT l
/// WINDOW w BURST b GCRA`) joined by three `AND`s and `PENALTY ms MAX m`: 2 + 1 + 4 * 7 + 3 +
/// 4 = 38 (`RL.RESERVE` as long, with its estimate and `HOLD ms` for `COST` and `WITHPOLICY`;
/// `RL.CONFIG` with four limits and every option 30, `RL.APPLY` 7). A parser finds the first
/// wrong argument of any call within the first 39, so with 64 a call that is too long gets the
/// error that says why (`too many limits`, an option given twice), not a generic one.
pub const MAX_ARGS: usize = 64;

/// A command's arguments, as given by Redis, for the duration of the call.
pub struct Call<'a> {
    ctx: Ctx,
    key: Option<Str>,
    /// The first `len` are set; the rest are never read. Left uninitialised because
    /// zeroing 33 slices cost RL.ALLOW about 34 instructions per call (callgrind).
    args: [MaybeUninit<&'a [u8]>; MAX_ARGS],
    len: usize,
    too_many: bool,
}

impl<'a> Call<'a> {
    /// The context to reply and call the API with.
    pub fn ctx(&self) -> Ctx {
        self.ctx
    }

    /// The key at position 1 (keyed commands only; keyless ones are never given one).
    pub fn key(&self) -> Str {
        self.key.unwrap_or(std::ptr::null_mut())
    }

    /// The arguments after the key (keyless commands: after the name), or
    /// `TooManyArguments` past [`MAX_ARGS`].
    pub fn args(&self) -> Result<&[&'a [u8]], Error> {
        if self.too_many {
            return Err(Error::TooManyArguments);
        }
        Ok(self.first_args())
    }

    /// Runs `parse` on the arguments after the key: its error if it finds one in the first
    /// [`MAX_ARGS`], else `TooManyArguments` if there were more.
    pub fn parse<T>(
        &self,
        parse: impl FnOnce(&[&'a [u8]]) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let parsed = parse(self.first_args())?;
        if self.too_many {
            return Err(Error::TooManyArguments);
        }
        Ok(parsed)
    }

    /// No arguments after the key (keyless commands: after the name).
    pub fn is_bare(&self) -> bool {
        self.len == 0
    }

    fn first_args(&self) -> &[&'a [u8]] {
        let set = &self.args[..self.len];
        // SAFETY: dispatch set the first `len` entries (len <= MAX_ARGS), and MaybeUninit<T>
        // has the layout of T.
        unsafe { std::slice::from_raw_parts(set.as_ptr().cast::<&'a [u8]>(), set.len()) }
    }
}

/// Where a command's arguments start: after its key (`Keyed`) or after its name.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Keyed,
    Keyless,
}

/// A command's body: logic only; it replies on success, [`dispatch`] replies errors.
pub type Body = fn(&Call) -> Result<(), Error>;

/// An `extern "C"` handler for `RedisModule_CreateCommand` that runs `body` through
/// [`dispatch`].
macro_rules! handler {
    ($body:path, $shape:expr) => {{
        extern "C" fn handler(
            ctx: $crate::ffi::Ctx,
            argv: *mut $crate::ffi::Str,
            argc: std::ffi::c_int,
        ) -> std::ffi::c_int {
            $crate::entry::dispatch(ctx, argv, argc, $shape, $body)
        }
        handler
    }};
}
pub(crate) use handler;

/// Runs a command: builds its [`Call`], runs `body` under `catch_unwind`, replies the
/// error of a failed body, and logs internal errors.
pub fn dispatch(ctx: Ctx, argv: *mut Str, argc: c_int, shape: Shape, body: Body) -> c_int {
    let argc = usize::try_from(argc).unwrap_or(0);
    let from = match shape {
        Shape::Keyed => 2,
        Shape::Keyless => 1,
    };
    if argc < from || argv.is_null() {
        // Only if Redis's own arity check let it through.
        return reply::wrong_arity(ctx);
    }
    // SAFETY: Redis passes `argc` valid strings that live for the whole call.
    let argv = unsafe { std::slice::from_raw_parts(argv, argc) };
    let mut call = Call {
        ctx,
        key: (shape == Shape::Keyed).then(|| argv[1]),
        args: [MaybeUninit::uninit(); MAX_ARGS],
        len: argc - from,
        too_many: argc - from > MAX_ARGS,
    };
    for (slot, s) in call.args.iter_mut().zip(&argv[from..]) {
        // SAFETY: as above.
        *slot = MaybeUninit::new(unsafe { string_bytes(*s) });
    }
    call.len = call.len.min(MAX_ARGS);
    let result =
        catch_unwind(AssertUnwindSafe(|| body(&call))).unwrap_or(Err(Error::Internal("panic")));
    if let Err(e) = result {
        if let Error::Internal(what) = e {
            log_internal(ctx, argv, shape, what);
        }
        reply::error(ctx, e);
    }
    raw::REDISMODULE_OK as c_int
}

fn log_internal(ctx: Ctx, argv: &[Str], shape: Shape, what: &str) {
    // SAFETY: argv[0] is the command name, alive for the call.
    let name = String::from_utf8_lossy(unsafe { string_bytes(argv[0]) }).into_owned();
    let key_len = match shape {
        // SAFETY: keyed commands have argv[1].
        Shape::Keyed => unsafe { string_bytes(argv[1]) }.len(),
        Shape::Keyless => 0,
    };
    let panic = LAST_PANIC
        .with(|p| p.borrow_mut().take())
        .unwrap_or_default();
    log_warning(
        ctx,
        &format!("rl: internal error in {name} (key of {key_len} bytes): {what}{panic}"),
    );
}

thread_local! {
    /// The message and place of the last panic on this thread, for the log line.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs a panic hook that keeps the panic's message and location for the internal-error
/// log line (the default hook would print to stderr, which a daemonized Redis discards).
/// Type callbacks (RDB, free) have no reply to carry an error: the hook logs those itself.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let text = format!(": {msg}{place}");
        log_warning(std::ptr::null_mut(), &format!("rl: panic{text}"));
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(text));
    }));
}
