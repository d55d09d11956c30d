//! Running a stored script on the server (`POST /api/scripts/:id/execute`): Rhai, or
//! ValyxoScript translated to Rhai, in an engine with the standard library only — no host
//! API, no files, no processes, no network, no `import`, no `eval` — under tight operation,
//! time, size and output limits.

use rhai::{Dynamic, Engine, EvalAltResult};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Wall-clock limit of one execution.
pub const TIME_LIMIT: Duration = Duration::from_secs(2);
/// Output kept from one execution; more is cut with a note.
pub const OUTPUT_LIMIT: usize = 64 * 1024;
const MAX_OPERATIONS: u64 = 20_000_000;

pub struct Run {
    pub status: &'static str,
    pub output: String,
    pub error: Option<String>,
    pub ms: i64,
}

struct Out {
    text: String,
    cut: bool,
}

impl Out {
    fn push(&mut self, s: &str) {
        if self.cut {
            return;
        }
        if self.text.len() + s.len() + 1 > OUTPUT_LIMIT {
            let mut end = OUTPUT_LIMIT.saturating_sub(self.text.len());
            while !s.is_char_boundary(end.min(s.len())) {
                end -= 1;
            }
            self.text.push_str(&s[..end.min(s.len())]);
            self.text.push_str("\n[output cut at 64 KiB]\n");
            self.cut = true;
        } else {
            self.text.push_str(s);
            self.text.push('\n');
        }
    }
}

#[derive(Clone)]
struct TimedOut;

fn engine(out: Arc<Mutex<Out>>) -> Engine {
    let mut e = Engine::new_raw();
    crate::script::register_std(&mut e);
    e.set_max_operations(MAX_OPERATIONS);
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
    let deadline = Instant::now() + TIME_LIMIT;
    e.on_progress(move |ops| {
        (ops % 1024 == 0 && Instant::now() >= deadline).then(|| Dynamic::from(TimedOut))
    });
    let o = out.clone();
    e.on_print(move |s| o.lock().unwrap_or_else(|p| p.into_inner()).push(s));
    e.on_debug(move |s, _, _| out.lock().unwrap_or_else(|p| p.into_inner()).push(s));
    e
}

/// Runs `content` written in `language`.
pub fn run(language: &str, content: &str) -> Run {
    let start = Instant::now();
    let rhai = match language {
        "rhai" => Ok(content.to_string()),
        "valyxoscript" => crate::script::vs::translate(content).map(|t| t.rhai),
        _ => {
            return Run {
                status: "unsupported",
                output: String::new(),
                error: Some(format!(
                    "{language} scripts do not run on the server: only rhai and valyxoscript do"
                )),
                ms: 0,
            }
        }
    };
    let out = Arc::new(Mutex::new(Out {
        text: String::new(),
        cut: false,
    }));
    let result: Result<(), (&'static str, String)> = match rhai {
        Err(e) => Err(("error", e)),
        Ok(src) => {
            let o = out.clone();
            let (tx, rx) = std::sync::mpsc::channel();
            // A thread of its own with a large stack: deep recursion within the call limit
            // must not overflow a server thread. The wait is bounded too, so a script stuck
            // where no limit reaches it cannot hold the request.
            match std::thread::Builder::new()
                .name("sandbox".into())
                .stack_size(64 << 20)
                .spawn(move || {
                    let e = engine(o);
                    let _ = tx.send(e.run(&src).map_err(|err| classify(&err)));
                }) {
                Err(e) => Err(("error", format!("cannot start the script: {e}"))),
                Ok(_) => match rx.recv_timeout(TIME_LIMIT + Duration::from_secs(1)) {
                    Ok(r) => r,
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err((
                        "timeout",
                        format!("stopped after the time limit of {} s", TIME_LIMIT.as_secs()),
                    )),
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                        Err(("error", "the script crashed".into()))
                    }
                },
            }
        }
    };
    let output = std::mem::take(&mut out.lock().unwrap_or_else(|p| p.into_inner()).text);
    let ms = start.elapsed().as_millis() as i64;
    match result {
        Ok(()) => Run {
            status: "success",
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

fn classify(e: &EvalAltResult) -> (&'static str, String) {
    match e {
        EvalAltResult::ErrorTerminated(v, _) if v.is::<TimedOut>() => (
            "timeout",
            format!("stopped after the time limit of {} s", TIME_LIMIT.as_secs()),
        ),
        EvalAltResult::ErrorTooManyOperations(_) => (
            "timeout",
            format!("stopped after {MAX_OPERATIONS} operations"),
        ),
        _ => ("error", e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_run_with_their_output_and_limits() {
        let r = run("rhai", "print(\"hi\"); let x = 6 * 7; print(x);");
        assert_eq!((r.status, r.output.as_str()), ("success", "hi\n42\n"));
        let r = run("rhai", "print(\"before\"); throw \"boom\";");
        assert_eq!(r.status, "error");
        assert_eq!(r.output, "before\n");
        assert!(r.error.unwrap().contains("boom"));
        let r = run("rhai", "loop { }");
        assert_eq!(r.status, "timeout");
        let r = run("rhai", "import \"x\" as y;");
        assert_eq!(r.status, "error");
        let r = run("rhai", "eval(\"1\")");
        assert_eq!(r.status, "error");
        let r = run(
            "rhai",
            "let s = \"\"; for i in 0..1000 { s += \"y\"; } loop { print(s); }",
        );
        assert!(r.output.len() <= OUTPUT_LIMIT + 64, "{}", r.output.len());
        assert!(r.output.ends_with("[output cut at 64 KiB]\n"));
        let r = run("valyxoscript", "set x = 2\nprint x * 21\n");
        assert_eq!((r.status, r.output.as_str()), ("success", "42\n"));
        let r = run("rhai", "sleep(9223372036854775807)");
        assert_eq!(r.status, "error");
        assert!(r.error.unwrap().contains("sleep is not available"));
        let r = run("python", "print(1)");
        assert_eq!(r.status, "unsupported");
    }
}
