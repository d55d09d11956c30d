//! The embedded Rhai runtime (`man scripting`) (engine): one engine builder with the host API and
//! the limits, a cache of compiled scripts, and error messages that point at the source.
//!
//! Every script runs on a thread with a large stack under the limits from the settings
//! (operations, call depth, string/array/map sizes, wall-clock time). The engine's progress
//! callback checks the thread's cancellation token, so Ctrl-C (in the foreground) or `kill %N`
//! (for a job) stops even a tight loop at once. A script can end the run with `exit(n)`.

pub mod api;
pub mod guard;
pub mod repl;
pub mod vs;

use crate::budget::{self, Budget};
use crate::hub::Hub;
use crate::shell::io::Output;
use crate::shell::Session;
use crate::signals::{self, Token};
use crate::vfs::VPath;
use rhai::{Dynamic, Engine, EvalAltResult, Position, Scope, AST};
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Stack for threads that run scripts: deep (but limited) recursion must never overflow.
pub const STACK_SIZE: usize = 64 << 20;

/// Exit status of a script that failed with an error.
pub const STATUS_ERROR: i32 = 1;
/// Exit status of a script stopped by its wall-clock limit (as timeout(1) does).
pub const STATUS_TIMEOUT: i32 = 124;
/// Exit status of a script stopped because the reader of its output went away (as a
/// command ended by SIGPIPE has).
pub const STATUS_OUTPUT_CLOSED: i32 = 141;

/// The limits a script runs under.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_operations: u64,
    pub max_call_depth: usize,
    pub max_string_size: usize,
    pub max_array_size: usize,
    pub max_map_size: usize,
    pub timeout: Option<Duration>,
    /// Bytes a script (with the scripts it runs) may hold at once; 0 means no limit.
    pub max_memory: usize,
}

impl Limits {
    pub fn from_settings(hub: &Hub) -> Limits {
        let s = &hub.settings().script;
        Limits {
            max_operations: s.max_operations,
            max_call_depth: s.max_call_depth,
            max_string_size: s.max_string_size,
            max_array_size: s.max_array_size,
            max_map_size: s.max_map_size,
            timeout: Some(s.timeout).filter(|d| !d.is_zero()),
            max_memory: s.max_memory.as_usize(),
        }
    }

    /// These limits with a run's `--timeout` (`0`: none) and `--max-operations`, as
    /// `run` at the prompt and `valyxo run` on the host both take them.
    pub fn overridden(
        mut self,
        timeout: Option<&str>,
        max_operations: Option<u64>,
    ) -> anyhow::Result<Limits> {
        if let Some(t) = timeout {
            let d = crate::settings::parse_duration(t)
                .map_err(|e| anyhow::anyhow!("--timeout {t}: {e:#}"))?;
            self.timeout = (!d.is_zero()).then_some(d);
        }
        if let Some(n) = max_operations {
            self.max_operations = n;
        }
        Ok(self)
    }

    /// The budget a script starts under: the one this thread already works under (a script
    /// run by a script shares its caller's), else a new one of `max_memory`.
    pub fn budget(&self) -> Arc<Budget> {
        budget::current().unwrap_or_else(|| Budget::new(self.max_memory))
    }
}

/// Why a script stopped before its end (carried by `EvalAltResult::ErrorTerminated`).
#[derive(Clone, Debug)]
pub enum Stop {
    Exit(i32),
    Cancelled,
    TimedOut(Duration),
    /// The script held more memory than its budget allows (the limit, in bytes).
    OutOfMemory(usize),
    /// What the script prints goes nowhere any more: the reader of its pipe is gone.
    OutputClosed,
    /// A value's text was refused by a size limit where Rhai would not have passed the error
    /// on (see [`guard::stop_next`]): what was too large, as `ErrorDataTooLarge` says it.
    TooLarge(String),
}

/// Where a script came from: names it in messages and anchors its `import`s.
#[derive(Clone, Debug)]
pub enum Origin {
    /// A file in the VFS.
    Vfs(VPath),
    /// A file on the host.
    Host(PathBuf),
    /// Text typed at a prompt or passed with `-e`.
    Inline(String),
}

impl Origin {
    pub fn name(&self) -> String {
        match self {
            Origin::Vfs(p) => p.to_string(),
            Origin::Host(p) => p.display().to_string(),
            Origin::Inline(n) => n.clone(),
        }
    }
}

/// A script ready to compile: its Rhai text and, for ValyxoScript, the original text with the
/// map from Rhai lines back to original lines.
#[derive(Clone, Debug)]
pub struct Source {
    pub origin: Origin,
    pub rhai: String,
    pub legacy: Option<vs::Translation>,
}

impl Source {
    /// A script file's text: `.vs` and `.ns` files go through the ValyxoScript translator.
    pub fn from_file(origin: Origin, bytes: Vec<u8>) -> Result<Source, String> {
        let name = origin.name();
        let text =
            String::from_utf8(bytes).map_err(|_| format!("{name}: a script must be UTF-8 text"))?;
        if is_legacy(&name) {
            let t = vs::translate(&text).map_err(|e| format!("{name}:{e}\n{LEGACY_NOTE}\n"))?;
            return Ok(Source {
                origin,
                rhai: t.rhai.clone(),
                legacy: Some(t),
            });
        }
        // A `#!` line (a shebang script) becomes an empty line, so line numbers still match.
        let rhai = match text.strip_prefix("#!") {
            Some(rest) => match rest.find('\n') {
                Some(i) => rest[i..].to_string(),
                None => String::new(),
            },
            None => text,
        };
        Ok(Source {
            origin,
            rhai,
            legacy: None,
        })
    }

    pub fn inline(name: &str, text: &str) -> Source {
        Source {
            origin: Origin::Inline(name.into()),
            rhai: text.into(),
            legacy: None,
        }
    }

    /// The line (1-based) of the text the user wrote, and that text.
    fn user_line(&self, rhai_line: usize) -> (usize, Option<String>) {
        match &self.legacy {
            Some(t) => {
                let l = t.original_line(rhai_line);
                (
                    l,
                    t.original.lines().nth(l.wrapping_sub(1)).map(str::to_owned),
                )
            }
            None => (
                rhai_line,
                self.rhai
                    .split('\n')
                    .nth(rhai_line.wrapping_sub(1))
                    .map(str::to_owned),
            ),
        }
    }
}

/// What a script can reach: its shell session (working directory, variables, `sh`), its output
/// streams, its arguments and its cancellation token.
pub struct Host {
    pub sh: Mutex<Session>,
    pub out: Mutex<Output>,
    pub err: Mutex<Output>,
    pub token: Token,
    /// The script's output is a pipe whose reader is gone.
    out_closed: std::sync::atomic::AtomicBool,
    /// When the script's time limit ends, and the limit (set as its engine is built).
    deadline: Mutex<Option<(Instant, Duration)>>,
    /// A script from the host disk, run from this host directory: a file it does not find
    /// in the VFS is said with where it looked, and where it did not.
    from_host: std::sync::OnceLock<std::path::PathBuf>,
}

impl Host {
    pub fn new(sh: Session, out: Output, err: Output) -> Arc<Host> {
        Arc::new(Host {
            sh: Mutex::new(sh),
            out: Mutex::new(out),
            err: Mutex::new(err),
            token: signals::current(),
            out_closed: std::sync::atomic::AtomicBool::new(false),
            deadline: Mutex::new(None),
            from_host: std::sync::OnceLock::new(),
        })
    }

    /// Marks the script as one from the host disk, run in the host directory `dir` (see
    /// [`Host::not_found`]).
    pub fn files_hint(&self, dir: std::path::PathBuf) {
        let _ = self.from_host.set(dir);
    }

    /// What a script that did not find `asked` (at `path` in the VFS) is told: for a script
    /// from the host disk, that its paths are VFS paths, and how to read host files instead.
    pub fn not_found(&self, asked: &str, path: &crate::vfs::VPath) -> String {
        match self.from_host.get() {
            Some(dir) => format!(
                "'{asked}': no such file in the VFS ({path}). The script is a host file, but \
                 its paths are VFS paths: 'valyxo run --here' reads them from the host \
                 directory you ran it in ({})",
                crate::text::escape(&dir.display().to_string())
            ),
            None => format!("'{asked}': {path}: no such file or directory"),
        }
    }

    pub fn hub(&self) -> Arc<Hub> {
        self.session().hub.clone()
    }

    pub fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        self.sh.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn cancelled(&self) -> bool {
        self.token.load(Ordering::Relaxed)
    }

    /// Starts the time limit of what the script runs next (`None`: no limit).
    pub fn start_clock(&self, timeout: Option<Duration>) {
        *self.deadline.lock().unwrap_or_else(|e| e.into_inner()) =
            timeout.map(|t| (Instant::now() + t, t));
    }

    /// The time limit, once it has passed.
    pub fn timed_out(&self) -> Option<Duration> {
        let d = *self.deadline.lock().unwrap_or_else(|e| e.into_inner());
        d.filter(|(at, _)| Instant::now() >= *at).map(|(_, t)| t)
    }

    /// Runs `f`, which waits (a command through `sh`, a job), so that the time limit stops
    /// it as Ctrl-C or `kill` would: under a token of its own, raised when the script's is
    /// or when the limit passes. The engine checks the limit only between operations, and a
    /// script blocked in a call makes none. The limit that passed meanwhile is returned.
    pub fn within_limit<R>(&self, f: impl FnOnce() -> R) -> (R, Option<Duration>) {
        let Some((at, t)) = *self.deadline.lock().unwrap_or_else(|e| e.into_inner()) else {
            return (f(), None);
        };
        let parent = signals::current();
        let child: Token = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (done, ended) = std::sync::mpsc::channel::<()>();
        let r = std::thread::scope(|s| {
            let (p, c) = (parent.clone(), child.clone());
            // Without this thread (none could be made) only the script's own token stops f.
            let _watch = std::thread::Builder::new()
                .name("script-limit".into())
                .spawn_scoped(s, move || loop {
                    let now = Instant::now();
                    if p.load(Ordering::Relaxed) || now >= at {
                        c.store(true, Ordering::Relaxed);
                        return;
                    }
                    let wait = (at - now).min(Duration::from_millis(20));
                    if !matches!(
                        ended.recv_timeout(wait),
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout)
                    ) {
                        return;
                    }
                });
            signals::adopt(child.clone());
            let r = f();
            signals::adopt(parent.clone());
            drop(done);
            r
        });
        let over = (child.load(Ordering::Relaxed) && !parent.load(Ordering::Relaxed))
            .then_some(t)
            .filter(|_| Instant::now() >= at);
        (r, over)
    }

    /// Writes what the script prints; when the reader of a pipe has gone, the script stops
    /// at its next operation ([`Stop::OutputClosed`]).
    pub fn write_out(&self, text: &str) {
        let mut o = self.out.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = o.write_all(text.as_bytes()).and_then(|_| o.flush()) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                self.out_closed.store(true, Ordering::Relaxed);
            }
        }
    }

    pub fn write_err(&self, text: &str) {
        let mut o = self.err.lock().unwrap_or_else(|e| e.into_inner());
        let _ = o.write_all(text.as_bytes());
        let _ = o.flush();
    }
}

/// Registers Rhai's standard library, built once per process and shared by every engine,
/// with its size guards ([`guard`]) over it.
pub fn register_std(e: &mut Engine) {
    use rhai::packages::{Package, StandardPackage};
    static STD: OnceLock<StandardPackage> = OnceLock::new();
    STD.get_or_init(StandardPackage::new)
        .register_into_engine(e);
    guard::register(e);
}

/// How often (in operations) the clock is read; the guards keep every single operation short.
const CLOCK_EVERY: u64 = 128;

/// Why a script must stop now, if it must: the memory budget of the thread it runs on (read
/// when the engine is built), then its deadline. For an engine's progress callback.
pub fn progress_check(deadline: Option<(Instant, Duration)>) -> impl Fn(u64) -> Option<Stop> {
    let budget = budget::current();
    guard::take_stop();
    move |ops| {
        if let Some(stop) = guard::take_stop() {
            return Some(stop);
        }
        if let Some(b) = &budget {
            if b.exceeded() {
                return Some(Stop::OutOfMemory(b.limit()));
            }
        }
        match deadline {
            Some((d, t)) if ops % CLOCK_EVERY == 0 && Instant::now() >= d => {
                Some(Stop::TimedOut(t))
            }
            _ => None,
        }
    }
}

/// Builds the engine: limits, cancellation, output routing, the host API and VFS imports.
pub fn engine(host: &Arc<Host>, limits: &Limits, origin: &Origin) -> Engine {
    // The standard library is built once per process and shared by every engine.
    let mut e = Engine::new_raw();
    register_std(&mut e);
    e.set_max_operations(limits.max_operations);
    e.set_max_call_levels(limits.max_call_depth);
    // Rhai's own size checks walk a whole value after every change to it (filling an array
    // with push is quadratic); the sizes are checked step by step by the functions that
    // grow values instead (guard), and the memory budget bounds everything.
    e.set_default_tag(Dynamic::from(guard::SizeLimits {
        string: limits.max_string_size,
        array: limits.max_array_size,
        map: limits.max_map_size,
    }));
    // Nesting of expressions (string interpolation nests too); scripts run on a big stack.
    e.set_max_expr_depths(128, 64);
    let token = host.token.clone();
    // The clock starts now; the script prompt starts it again for each input.
    host.start_clock(limits.timeout);
    let check = progress_check(None);
    let h = host.clone();
    e.on_progress(move |ops| {
        if token.load(Ordering::Relaxed) {
            return Some(Dynamic::from(Stop::Cancelled));
        }
        if h.out_closed.load(Ordering::Relaxed) {
            return Some(Dynamic::from(Stop::OutputClosed));
        }
        if ops % CLOCK_EVERY == 0 {
            if let Some(t) = h.timed_out() {
                return Some(Dynamic::from(Stop::TimedOut(t)));
            }
        }
        check(ops).map(Dynamic::from)
    });
    let h = host.clone();
    e.on_print(move |s| h.write_out(&format!("{s}\n")));
    let h = host.clone();
    e.on_debug(move |s, src, pos| {
        let at = match (src, pos.line()) {
            (Some(src), Some(l)) => format!("{src}:{l}: "),
            (None, Some(l)) => format!("line {l}: "),
            _ => String::new(),
        };
        h.write_err(&format!("[debug] {at}{s}\n"));
    });
    api::register(&mut e, host);
    e.set_module_resolver(api::Resolver::new(host, origin));
    e
}

/// Compiled scripts by the hash of their text.
fn cache() -> &'static Mutex<HashMap<blake3::Hash, AST>> {
    static CACHE: OnceLock<Mutex<HashMap<blake3::Hash, AST>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Compiles `rhai` text, reusing an earlier compilation of the same text.
pub fn compile(engine: &Engine, rhai: &str) -> Result<AST, Box<EvalAltResult>> {
    let key = blake3::hash(rhai.as_bytes());
    if let Some(ast) = cache().lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(ast.clone());
    }
    let ast = engine.compile(rhai).map_err(Box::<EvalAltResult>::from)?;
    let mut c = cache().lock().unwrap_or_else(|e| e.into_inner());
    if c.len() >= 256 {
        c.clear();
    }
    c.insert(key, ast.clone());
    Ok(ast)
}

/// How deep scripts may run scripts (`sh("run other.rhai")`): each level has a thread with
/// a large stack, so a script that runs itself must stop with an error long before the
/// process runs out of threads.
pub const MAX_NESTING: usize = 64;

thread_local! {
    /// How many scripts this thread's script runs inside of.
    static NESTING: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Runs `f` on a thread with a large stack, its allocations charged to `budget`; a panic
/// becomes an error, never a crash, and so does a thread that cannot be made or scripts
/// nested too deeply.
pub fn on_script_thread<R: Send>(
    budget: &Arc<Budget>,
    f: impl FnOnce() -> R + Send,
) -> Result<R, String> {
    let token = signals::current();
    let budget = budget.clone();
    let depth = NESTING.with(|n| n.get()) + 1;
    if depth > MAX_NESTING {
        return Err(format!(
            "scripts run scripts {MAX_NESTING} deep, the limit (does a script run itself?)"
        ));
    }
    std::thread::scope(|s| {
        let h = std::thread::Builder::new()
            .name("script".into())
            .stack_size(STACK_SIZE)
            .spawn_scoped(s, move || {
                signals::adopt(token);
                NESTING.with(|n| n.set(depth));
                let _charged = budget.enter();
                f()
            })
            .map_err(|e| format!("cannot start the script thread: {e}"))?;
        h.join()
            .map_err(|_| "the script stopped on an internal error".to_string())
    })
}

/// Evaluates a whole script with `args`. On failure the error has been reported to the
/// host's error stream and the exit status is returned: the value of `exit(n)`, 1 on an
/// error, 130 when cancelled, 124 on timeout.
pub fn eval(
    host: &Arc<Host>,
    src: &Source,
    args: &[String],
    limits: &Limits,
) -> Result<Dynamic, i32> {
    let r = on_script_thread(&limits.budget(), || {
        let engine = engine(host, limits, &src.origin);
        let ast = compile(&engine, &src.rhai)?;
        let mut scope = Scope::new();
        let argv: rhai::Array = args.iter().map(|a| Dynamic::from(a.clone())).collect();
        scope.push_constant("args", argv);
        scope.push_constant("script_name", src.origin.name());
        guard::finished(engine.eval_ast_with_scope::<Dynamic>(&mut scope, &ast))
    });
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(status_of(host, src, &e)),
        Err(msg) => {
            host.write_err(&shown(&format!("{}: {msg}\n", src.origin.name())));
            Err(STATUS_ERROR)
        }
    }
}

/// Runs a whole script; returns its exit status (0 when it reaches its end).
pub fn run(host: &Arc<Host>, src: &Source, args: &[String], limits: &Limits) -> i32 {
    eval(host, src, args, limits).map_or_else(|status| status, |_| 0)
}

/// Runs a script file's contents (`run FILE`, `valyxo run FILE`, `valyxo FILE`).
pub fn run_file(
    host: &Arc<Host>,
    origin: Origin,
    bytes: Vec<u8>,
    args: &[String],
    limits: &Limits,
) -> i32 {
    match Source::from_file(origin, bytes) {
        Ok(src) => run(host, &src, args, limits),
        Err(msg) => {
            host.write_err(&shown(&format!("{msg}\n")));
            STATUS_ERROR
        }
    }
}

/// The text of the value a script ends with, as `valyxo -e` (`debug`: false) and the
/// `script` prompt (`debug`: true) show it, unless it would be larger than a string may be
/// or than the memory budget: counted before it is built, as a script's own `to_string` is
/// ([`guard::shown_len`]).
pub fn value_text(v: &Dynamic, debug: bool, limits: &Limits) -> Result<String, String> {
    let mut max = match limits.max_string_size {
        0 => usize::MAX / 2,
        m => m,
    };
    if limits.max_memory > 0 {
        max = max.min(limits.max_memory);
    }
    if guard::shown_len(v, guard::Style::Debug, max) > max {
        return Err("the value's text is larger than a string may be (setting \
                    script.max_string_size) or than script.max_memory"
            .to_string());
    }
    Ok(if debug {
        format!("{v:?}")
    } else {
        v.to_string()
    })
}

/// Reads a script (or module) from the host disk, at most `limit` bytes (0: no limit): a
/// larger file, or an endless one (`/dev/zero`), is refused when it passes the limit, not
/// read until memory runs out.
pub fn read_host(path: &std::path::Path, limit: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path)?;
    let mut data = Vec::new();
    if limit == 0 {
        (&f).read_to_end(&mut data)?;
        return Ok(data);
    }
    f.take(limit as u64 + 1).read_to_end(&mut data)?;
    if data.len() > limit {
        return Err(std::io::Error::other(format!(
            "it is larger than {}, the memory a script may hold (setting script.max_memory)",
            budget::human(limit)
        )));
    }
    Ok(data)
}

/// Turns a script's error into its exit status, reporting it unless it is `exit(n)`.
pub fn status_of(host: &Host, src: &Source, e: &EvalAltResult) -> i32 {
    exit_code(e).unwrap_or_else(|| {
        let (msg, status) = report(src, e);
        host.write_err(&msg);
        status
    })
}

/// The status given to `exit(n)` (also from inside functions and modules), if `e` is that,
/// or of a script whose reader went away: ends that say nothing.
pub fn exit_code(e: &EvalAltResult) -> Option<i32> {
    match e {
        EvalAltResult::ErrorTerminated(v, _) => match v.clone().try_cast::<Stop>() {
            Some(Stop::Exit(n)) => Some(n),
            Some(Stop::OutputClosed) => Some(STATUS_OUTPUT_CLOSED),
            _ => None,
        },
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
        | EvalAltResult::ErrorInModule(_, inner, _) => exit_code(inner),
        _ => None,
    }
}

/// Renders an error as `FILE:LINE:COL: error: MESSAGE`, the source line and a caret, plus the
/// calls it happened in; returns it with the exit status it maps to.
pub fn report(src: &Source, e: &EvalAltResult) -> (String, i32) {
    let mut calls = Vec::new();
    let mut inner = e;
    let mut in_module: Option<String> = None;
    loop {
        match inner {
            EvalAltResult::ErrorInFunctionCall(name, fsrc, next, pos) => {
                if !fsrc.is_empty() && in_module.is_none() {
                    in_module = Some(fsrc.clone());
                }
                calls.push((name.clone(), *pos));
                inner = next;
            }
            EvalAltResult::ErrorInModule(path, next, pos) => {
                calls.push((format!("import \"{path}\""), *pos));
                in_module = Some(path.clone());
                inner = next;
            }
            _ => break,
        }
    }
    let status = match inner {
        EvalAltResult::ErrorTerminated(v, _) => match v.clone().try_cast::<Stop>() {
            Some(Stop::Cancelled) => crate::shell::STATUS_INTERRUPTED,
            Some(Stop::TimedOut(_)) => STATUS_TIMEOUT,
            _ => STATUS_ERROR,
        },
        _ => STATUS_ERROR,
    };
    let message = match inner {
        EvalAltResult::ErrorTerminated(v, _) => match v.clone().try_cast::<Stop>() {
            Some(Stop::Cancelled) => "interrupted".to_string(),
            Some(Stop::TimedOut(t)) => format!(
                "stopped after {} (the time limit; 'run --timeout' or setting script.timeout)",
                humantime(t)
            ),
            Some(Stop::OutOfMemory(limit)) => format!(
                "out of memory: the script held more than {} (setting script.max_memory)",
                budget::human(limit)
            ),
            Some(Stop::TooLarge(what)) => too_large_message(&what),
            _ => "terminated".to_string(),
        },
        EvalAltResult::ErrorTooManyOperations(_) => {
            "too many operations (the limit is setting script.max_operations)".to_string()
        }
        EvalAltResult::ErrorStackOverflow(_) => {
            "function calls nest too deeply (the limit is setting script.max_call_depth)"
                .to_string()
        }
        EvalAltResult::ErrorDataTooLarge(what, _) => too_large_message(what),
        EvalAltResult::ErrorRuntime(v, _) if v.is_string() => v.clone().cast::<String>(),
        // A thrown array or map is written out in the message: not when its text is huge.
        EvalAltResult::ErrorRuntime(v, _)
            if guard::shown_len(v, guard::Style::Debug, SHOWN_MAX) > SHOWN_MAX =>
        {
            let what = if v.is_array() {
                "array"
            } else if v.is_map() {
                "map"
            } else {
                "value"
            };
            format!("the thrown {what} is too large to show")
        }
        other => without_position(&other.to_string()),
    };
    // A message can quote what the script made (`throw` of a long string): cut in the middle.
    let message = crate::text::clean_message(&message, crate::text::MESSAGE_MAX);
    let pos = inner.position();
    let name = in_module.clone().unwrap_or_else(|| src.origin.name());
    let mut out = String::new();
    match (pos.line(), in_module.is_none()) {
        (Some(l), true) => {
            let (line, text) = src.user_line(l);
            // Columns of a translated ValyxoScript line do not match the original.
            let col = if src.legacy.is_some() {
                None
            } else {
                pos.position()
            };
            match col {
                Some(c) => out.push_str(&format!("{name}:{line}:{c}: error: {message}\n")),
                None => out.push_str(&format!("{name}:{line}: error: {message}\n")),
            }
            if let Some(text) = text {
                let (text, before) = around(&text, col.unwrap_or(1));
                out.push_str(&format!("{line:>5} | {text}\n"));
                if col.is_some() {
                    // Under the character as it is shown, escapes and all (see below).
                    out.push_str(&format!(
                        "      | {}^\n",
                        " ".repeat(caret_offset(&shown(&before), usize::MAX))
                    ));
                }
            }
        }
        (Some(l), false) => {
            let c = pos.position().unwrap_or(1);
            out.push_str(&format!("{name}:{l}:{c}: error: {message}\n"));
        }
        (None, _) => out.push_str(&format!("{name}: error: {message}\n")),
    }
    for (call, at) in calls.iter().rev() {
        if let Some(l) = at.line() {
            let (line, _) = src.user_line(l);
            out.push_str(&format!("      = in {call}, called at line {line}\n"));
        }
    }
    if src.legacy.is_some() {
        out.push_str(LEGACY_NOTE);
        out.push('\n');
    } else if matches!(inner, EvalAltResult::ErrorParsing(..)) && looks_legacy(&src.rhai) {
        out.push_str(
            "      = read as Rhai, by its name; its lines look like ValyxoScript, the legacy \
             language: name it .vs (or .ns) to run it as such ('man valyxoscript')\n",
        );
    }
    // A file's name, a line of it, a message quoting what the script built: any of them
    // can hold an escape sequence, which must not reach the terminal raw.
    (shown(&out), status)
}

/// `text` with every character that must not reach the terminal escaped (new lines and
/// tabs kept), none of it cut.
fn shown(text: &str) -> String {
    crate::text::clean_message(text, usize::MAX / 2)
}

/// What a failing ValyxoScript file says about how it was read.
const LEGACY_NOTE: &str = "      = read as ValyxoScript, the legacy language of .vs and .ns \
                           files, translated to Rhai ('man valyxoscript')";

/// Whether `name` is a ValyxoScript file: `.vs`, or `.ns`, the older name of the same
/// language.
pub fn is_legacy(name: &str) -> bool {
    name.ends_with(".vs") || name.ends_with(".ns")
}

/// Whether a text that Rhai could not parse reads like ValyxoScript: its first statement
/// is a `set NAME =`, a `print` without parentheses or a `func NAME(`.
fn looks_legacy(text: &str) -> bool {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("//"));
    first.is_some_and(|l| {
        let word = l.split_whitespace().next().unwrap_or("");
        let rest = l[word.len()..].trim_start();
        (word == "set" && rest.contains('='))
            || (word == "print" && !rest.starts_with('('))
            || (word == "func" && rest.contains('('))
    })
}

/// The longest text of a thrown value written into an error message (it is cut for the
/// terminal after that, see [`crate::text::MESSAGE_MAX`]).
const SHOWN_MAX: usize = 1 << 20;

/// What a script is told when a value would pass a size limit.
fn too_large_message(what: &str) -> String {
    let setting = if what.contains("string") {
        "script.max_string_size"
    } else if what.contains("map") {
        "script.max_map_size"
    } else {
        "script.max_array_size"
    };
    format!("{what} exceeds the size limit (setting {setting})")
}

/// An error's text without the " (line L, position P)" Rhai appends.
fn without_position(s: &str) -> String {
    match s.rfind(" (line ") {
        Some(i) if s.ends_with(')') => s[..i].to_string(),
        _ => s.to_string(),
    }
}

/// Characters of a source line shown around the error: a longer line (a minified script)
/// is shown as this many around its column, with `…` where it was cut.
const LINE_SHOWN: usize = 160;

/// The part of `text` shown for an error at 1-based character column `col`, and the part
/// of that before the column (where the caret goes).
fn around(text: &str, col: usize) -> (String, String) {
    let chars: Vec<char> = text.chars().collect();
    let at = col.saturating_sub(1).min(chars.len());
    if chars.len() <= LINE_SHOWN {
        return (text.to_string(), chars[..at].iter().collect());
    }
    let start = at.saturating_sub(LINE_SHOWN / 2);
    let end = (start + LINE_SHOWN).min(chars.len());
    let lead = if start > 0 { "…" } else { "" };
    let tail = if end < chars.len() { "…" } else { "" };
    let part: String = chars[start..end].iter().collect();
    let before: String = chars[start..at].iter().collect();
    (format!("{lead}{part}{tail}"), format!("{lead}{before}"))
}

/// Display columns before 1-based character column `col` (tabs keep their width).
fn caret_offset(text: &str, col: usize) -> usize {
    text.chars()
        .take(col.saturating_sub(1))
        .map(|c| if c == '\t' { 4 } else { 1 })
        .sum()
}

fn humantime(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// A position-less error raised by the host API.
pub fn err(msg: impl Into<String>) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(msg.into()),
        Position::NONE,
    ))
}

#[cfg(test)]
mod tests;
