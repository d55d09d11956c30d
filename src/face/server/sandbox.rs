//! Running a stored script on the server (`POST /api/scripts/{id}/execute`): Rhai, or
//! ValyxoScript translated to Rhai, in an engine with the standard library only — no host
//! API, no files, no processes, no network, no `import`, no `eval`, no `sleep` — under limits
//! of operations, time, memory and output that stop the work itself, not only the wait.
//!
//! Scripts run on a pool of their own ([`Pool`]): a few worker threads at a lower CPU
//! priority, so that executions never take the threads or the cores that answer every other
//! route. Executions are admitted up to a total and a per-account count (running or waiting);
//! beyond that the request is refused with 429 at once. An admission is released when its
//! script has really ended, so a client that gives up cannot make room for more work than
//! the workers can do.
//!
//! Memory: each execution runs under a budget ([`crate::budget`]) that counts everything its
//! thread holds; the engine stops the script at the first operation over it, and the
//! functions that could build a huge value in one call check the budget first
//! (`script::guard`).

use super::slots::{Busy, Slot, Slots};
use crate::budget::{self, Budget};
use crate::protocol::types::RunStatus;
use crate::script::Stop;
use rhai::{Dynamic, Engine, EvalAltResult};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// The limits of one execution.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Wall-clock time of the script itself (waiting for a worker is not counted).
    pub time: Duration,
    /// Bytes the script may hold at once.
    pub memory: usize,
    pub operations: u64,
    /// Output kept; more is cut with a note.
    pub output: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            time: Duration::from_secs(2),
            memory: 64 << 20,
            operations: 20_000_000,
            output: 64 * 1024,
        }
    }
}

/// What became of an execution.
#[derive(Debug)]
pub struct Run {
    pub status: RunStatus,
    pub output: String,
    pub error: Option<String>,
    pub ms: i64,
}

struct Out {
    text: String,
    limit: usize,
    cut: bool,
}

impl Out {
    fn push(&mut self, s: &str) {
        if self.cut {
            return;
        }
        if self.text.len() + s.len() + 1 > self.limit {
            let mut end = self.limit.saturating_sub(self.text.len()).min(s.len());
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            self.text.push_str(&s[..end]);
            self.text.push_str(&format!(
                "\n[output cut at {}]\n",
                budget::human(self.limit)
            ));
            self.cut = true;
        } else {
            self.text.push_str(s);
            self.text.push('\n');
        }
    }
}

/// Set when nobody waits for the result any more: the script stops at its next operation.
#[derive(Clone)]
struct Abandoned;

fn engine(out: Arc<Mutex<Out>>, limits: &Limits, cancel: Arc<AtomicBool>) -> Engine {
    let mut e = Engine::new_raw();
    crate::script::register_std(&mut e);
    e.set_max_operations(limits.operations);
    e.set_max_call_levels(48);
    e.set_max_string_size(1 << 20);
    e.set_max_array_size(100_000);
    e.set_max_map_size(10_000);
    e.set_max_expr_depths(64, 32);
    e.set_max_modules(0);
    e.disable_symbol("eval");
    e.set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new());
    // `sleep` would block outside the operation count and the clock checks.
    e.register_fn("sleep", |_: i64| -> Result<(), Box<EvalAltResult>> {
        Err("sleep is not available on the server".into())
    });
    e.register_fn("sleep", |_: f64| -> Result<(), Box<EvalAltResult>> {
        Err("sleep is not available on the server".into())
    });
    let check = crate::script::progress_check(Some((Instant::now() + limits.time, limits.time)));
    e.on_progress(move |ops| {
        if cancel.load(Ordering::Relaxed) {
            return Some(Dynamic::from(Abandoned));
        }
        check(ops).map(Dynamic::from)
    });
    let o = out.clone();
    e.on_print(move |s| o.lock().unwrap_or_else(|p| p.into_inner()).push(s));
    e.on_debug(move |s, _, _| out.lock().unwrap_or_else(|p| p.into_inner()).push(s));
    e
}

/// The Rhai text of a stored script, or why it cannot run here.
fn source(language: &str, content: &str) -> Result<String, (RunStatus, String)> {
    match language {
        "rhai" => Ok(content.to_string()),
        "valyxoscript" => crate::script::vs::translate(content)
            .map(|t| t.rhai)
            .map_err(|e| (RunStatus::Error, e)),
        _ => Err((
            RunStatus::Unsupported,
            format!("{language} scripts do not run on the server: only rhai and valyxoscript do"),
        )),
    }
}

/// Runs `content` written in `language` on this thread, under `limits` and a memory budget
/// of its own.
fn execute(language: &str, content: &str, limits: &Limits, cancel: Arc<AtomicBool>) -> Run {
    let start = Instant::now();
    let out = Arc::new(Mutex::new(Out {
        text: String::new(),
        limit: limits.output,
        cut: false,
    }));
    let budget = Budget::new(limits.memory);
    let result = {
        let _charged = budget.enter();
        source(language, content).and_then(|src| {
            let e = engine(out.clone(), limits, cancel);
            crate::script::guard::finished(e.run(&src)).map_err(|err| classify(&err, limits))
        })
    };
    let output = std::mem::take(&mut out.lock().unwrap_or_else(|p| p.into_inner()).text);
    let ms = start.elapsed().as_millis() as i64;
    match result {
        Ok(()) => Run {
            status: RunStatus::Success,
            output,
            error: None,
            ms,
        },
        Err((status, error)) => Run {
            status,
            output,
            error: Some(error),
            ms,
        },
    }
}

fn classify(e: &EvalAltResult, limits: &Limits) -> (RunStatus, String) {
    match e {
        EvalAltResult::ErrorTerminated(v, _) => match v.clone().try_cast::<Stop>() {
            Some(Stop::TimedOut(t)) => (
                RunStatus::Timeout,
                format!("stopped after the time limit of {}", seconds(t)),
            ),
            Some(Stop::OutOfMemory(limit)) => (
                RunStatus::Error,
                format!(
                    "stopped: the script held more than its memory limit of {}",
                    budget::human(limit)
                ),
            ),
            Some(Stop::TooLarge(what)) => (
                RunStatus::Error,
                format!("{what} is over the server's size limit for scripts"),
            ),
            _ if v.is::<Abandoned>() => (
                RunStatus::Timeout,
                "stopped: the request was abandoned".into(),
            ),
            _ => (RunStatus::Error, "terminated".into()),
        },
        EvalAltResult::ErrorTooManyOperations(_) => (
            RunStatus::Timeout,
            format!("stopped after {} operations", limits.operations),
        ),
        EvalAltResult::ErrorDataTooLarge(what, _) => (
            RunStatus::Error,
            format!("{what} is over the server's size limit for scripts"),
        ),
        _ => (RunStatus::Error, e.to_string()),
    }
}

fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Runs one script in this thread, as the pool's workers do; for tests and callers that
/// manage their own threads.
pub fn run(language: &str, content: &str, limits: &Limits) -> Run {
    execute(language, content, limits, Arc::new(AtomicBool::new(false)))
}

type Job = Box<dyn FnOnce() + Send>;

/// How many executions may be admitted.
#[derive(Clone, Copy, Debug)]
pub struct Admission {
    /// Worker threads (scripts running at once).
    pub workers: usize,
    /// Executions admitted at once, running or waiting for a worker.
    pub total: usize,
    /// Executions admitted at once for one account.
    pub per_account: usize,
}

impl Default for Admission {
    fn default() -> Admission {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        // Half the cores at most: the other half keeps answering every other route.
        let workers = (cores / 2).max(1);
        Admission {
            workers,
            total: workers * 8,
            per_account: 2,
        }
    }
}

/// The script workers and their admission slots.
pub struct Pool {
    jobs: Mutex<mpsc::Sender<Job>>,
    slots: Slots,
    pub limits: Limits,
}

/// Lowers the calling thread's CPU priority (Linux threads have their own nice value).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority on this thread's own id; failure only leaves the priority as it is.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
    }
}

impl Pool {
    /// Starts the workers.
    pub fn new(admission: Admission, limits: Limits) -> std::io::Result<Pool> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..admission.workers.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("script-{i}"))
                // Deep recursion within the call limit must never overflow a worker.
                .stack_size(crate::script::STACK_SIZE)
                .spawn(move || {
                    lower_priority();
                    loop {
                        let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })?;
        }
        Ok(Pool {
            jobs: Mutex::new(tx),
            slots: Slots::new(admission.total, admission.per_account),
            limits,
        })
    }

    /// Admits one execution for `account`, or says why not (at once, never waiting).
    pub fn admit(&self, account: i64) -> Result<Slot, Busy> {
        self.slots.take(account)
    }

    /// Runs a script on a worker. The slot is held until the script ends; dropping the
    /// returned future (a client that went away) stops the script at its next operation.
    pub async fn run(&self, slot: Slot, language: String, content: String) -> Run {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let limits = self.limits.clone();
        let flag = cancel.clone();
        let job: Job = Box::new(move || {
            let run = if flag.load(Ordering::Relaxed) {
                Run {
                    status: RunStatus::Timeout,
                    output: String::new(),
                    error: Some("stopped: the request was abandoned".into()),
                    ms: 0,
                }
            } else {
                execute(&language, &content, &limits, flag)
            };
            drop(slot);
            let _ = tx.send(run);
        });
        let sent = self
            .jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job);
        let _stop = StopOnDrop(cancel);
        if sent.is_err() {
            return failed("the script workers have stopped");
        }
        rx.await
            .unwrap_or_else(|_| failed("the script stopped on an internal error"))
    }
}

fn failed(why: &str) -> Run {
    Run {
        status: RunStatus::Error,
        output: String::new(),
        error: Some(why.into()),
        ms: 0,
    }
}

/// Raises the cancel flag when the waiting side goes away.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(language: &str, content: &str) -> Run {
        super::run(language, content, &Limits::default())
    }

    #[test]
    fn scripts_run_with_their_output_and_limits() {
        let r = run("rhai", "print(\"hi\"); let x = 6 * 7; print(x);");
        assert_eq!(
            (r.status.as_str(), r.output.as_str()),
            ("success", "hi\n42\n")
        );
        let r = run("rhai", "print(\"before\"); throw \"boom\";");
        assert_eq!(r.status.as_str(), "error");
        assert_eq!(r.output, "before\n");
        assert!(r.error.unwrap().contains("boom"));
        let r = run("rhai", "loop { }");
        assert_eq!(r.status.as_str(), "timeout");
        let r = run("rhai", "import \"x\" as y;");
        assert_eq!(r.status.as_str(), "error");
        let r = run("rhai", "eval(\"1\")");
        assert_eq!(r.status.as_str(), "error");
        let r = run(
            "rhai",
            "let s = \"\"; for i in 0..1000 { s += \"y\"; } loop { print(s); }",
        );
        assert!(r.output.len() <= 64 * 1024 + 64, "{}", r.output.len());
        assert!(
            r.output.ends_with("[output cut at 64 KiB]\n"),
            "{}",
            r.output
        );
        let r = run("valyxoscript", "set x = 2\nprint x * 21\n");
        assert_eq!((r.status.as_str(), r.output.as_str()), ("success", "42\n"));
        let r = run("rhai", "sleep(9223372036854775807)");
        assert_eq!(r.status.as_str(), "error");
        assert!(r.error.unwrap().contains("sleep is not available"));
        let r = run("python", "print(1)");
        assert_eq!(r.status.as_str(), "unsupported");
    }

    #[test]
    fn memory_is_bounded_per_execution() {
        // A thousand variables, each within the size limits: the budget stops the script.
        let mut src = String::from(r#"let s = ""; s.pad(1000000, "x");"#);
        for i in 0..1000 {
            src.push_str(&format!("let v{i} = s + \"{i}\";\n"));
        }
        // Time enough that the memory limit, not the clock, stops it on a busy machine.
        let patient = Limits {
            time: Duration::from_secs(60),
            ..Limits::default()
        };
        let r = super::run("rhai", &src, &patient);
        assert_eq!(r.status.as_str(), "error", "{r:?}");
        assert!(
            r.error
                .as_deref()
                .unwrap()
                .contains("memory limit of 64 MiB"),
            "{r:?}"
        );
        // The amplifying replace is refused before it allocates.
        let r = run(
            "rhai",
            r#"let s = ""; s.pad(1000000, "x"); s.replace("x", s); print("unreachable");"#,
        );
        assert_eq!(r.status.as_str(), "error", "{r:?}");
        assert!(r.output.is_empty());
        assert!(r.error.unwrap().contains("size limit"));
    }

    #[tokio::test]
    async fn the_pool_runs_scripts_and_gives_slots_back() {
        let pool = Pool::new(
            Admission {
                workers: 1,
                total: 2,
                per_account: 1,
            },
            Limits::default(),
        )
        .unwrap();
        let slot = pool.admit(7).unwrap();
        assert_eq!(pool.admit(7).err(), Some(Busy::Account(1)));
        let r = pool.run(slot, "rhai".into(), "print(1 + 1)".into()).await;
        assert_eq!(r.output, "2\n");
        assert!(pool.admit(7).is_ok());
    }
}
