//! The interactive Rhai prompt (`script`, `enter script`): a scope and functions that last
//! until you leave, multi-line input while brackets or strings are open, history kept in the
//! store, and completion of the host API, keywords and your variables.
//!
//! With standard input from a pipe or file, it reads the lines from there and prints each
//! result, so `echo '40 + 2' | valyxo -c script` works.

use super::{api, compile, engine, exit_code, on_script_thread, report, Host, Limits, Source};
use crate::commands::Ctx;
use crate::shell::io::Input;
use crate::signals;
use crate::store::now_ms;
use anyhow::Result;
use rhai::{Dynamic, Engine, ParseErrorType, Scope, AST};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::{History, MemHistory};
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Config, Context, Editor, Helper};
use std::io::{BufRead, Write};
use std::sync::{Arc, Mutex};

const PROMPT: &str = "rhai> ";

const KEYWORDS: &[&str] = &[
    "let",
    "const",
    "fn",
    "if",
    "else",
    "while",
    "loop",
    "for",
    "in",
    "do",
    "until",
    "break",
    "continue",
    "return",
    "throw",
    "try",
    "catch",
    "import",
    "export",
    "as",
    "switch",
    "true",
    "false",
    "print",
    "debug",
    "type_of",
    "is_def_var",
    "is_def_fn",
];

/// Whether `text` is an unfinished script (an open block, bracket or string at its end).
fn incomplete(text: &str) -> bool {
    let Err(e) = Engine::new_raw().compile(text) else {
        return false;
    };
    let at_end = e
        .position()
        .line()
        .is_none_or(|l| l >= text.trim_end().lines().count());
    match e.err_type() {
        ParseErrorType::UnexpectedEOF => true,
        ParseErrorType::MissingToken(..) => at_end,
        ParseErrorType::BadInput(rhai::LexError::UnterminatedString) => at_end,
        _ => false,
    }
}

/// One prompt's state: the engine, the scope and the functions defined so far.
struct State {
    host: Arc<Host>,
    engine: Engine,
    scope: Scope<'static>,
    lib: AST,
    budget: Arc<crate::budget::Budget>,
    limits: Limits,
}

enum Step {
    Ok,
    Failed,
    Exit(i32),
}

impl State {
    fn new(ctx: &mut Ctx) -> Result<State> {
        let host = crate::commands::scripts_host(ctx)?;
        let limits = Limits::from_settings(ctx.hub());
        let origin = super::Origin::Inline("<script>".into());
        // One budget for the session: the variables of earlier inputs stay held.
        let budget = limits.budget();
        let engine = {
            let _charged = budget.enter();
            engine(&host, &limits, &origin)
        };
        let mut scope = Scope::new();
        scope.push_constant("args", rhai::Array::new());
        scope.push_constant("script_name", "<script>".to_string());
        Ok(State {
            host,
            budget,
            limits,
            engine,
            scope,
            lib: AST::empty(),
        })
    }

    /// Evaluates one complete input and prints its value.
    fn eval(&mut self, input: &str) -> Step {
        let src = Source::inline("<script>", input);
        let ast = match compile(&self.engine, input) {
            Ok(a) => a,
            Err(e) => {
                self.host.write_err(&report(&src, &e).0);
                return Step::Failed;
            }
        };
        // The time limit is each input's own.
        self.host.start_clock(self.limits.timeout);
        let (engine, scope, lib) = (&self.engine, &mut self.scope, &mut self.lib);
        let r = on_script_thread(&self.budget, move || {
            *lib += ast;
            let r = super::guard::finished(engine.eval_ast_with_scope::<Dynamic>(scope, lib));
            lib.clear_statements();
            r
        });
        match r {
            Ok(Ok(v)) => {
                if v.is_unit() {
                    return Step::Ok;
                }
                match super::value_text(&v, true, &self.limits) {
                    Ok(text) => {
                        self.host.write_out(&format!("=> {text}\n"));
                        Step::Ok
                    }
                    Err(msg) => {
                        self.host.write_err(&format!("<script>: {msg}\n"));
                        Step::Failed
                    }
                }
            }
            Ok(Err(e)) => match exit_code(&e) {
                Some(n) => Step::Exit(n),
                None => {
                    self.host.write_err(&report(&src, &e).0);
                    Step::Failed
                }
            },
            Err(msg) => {
                self.host.write_err(&format!("{msg}\n"));
                Step::Failed
            }
        }
    }

    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = api::FUNCTIONS
            .iter()
            .chain(api::VARIABLES)
            .chain(KEYWORDS)
            .map(|s| s.to_string())
            .collect();
        v.extend(self.scope.iter().map(|(n, _, _)| n.to_string()));
        v.extend(self.lib.iter_functions().map(|f| f.name.to_string()));
        v.sort();
        v.dedup();
        v
    }
}

/// Runs the prompt; returns the status to leave with (the value of `exit(n)`, else 0, or 1
/// when the last input read from a pipe failed).
pub fn run(ctx: &mut Ctx, note: Option<&str>) -> Result<i32> {
    let mut st = State::new(ctx)?;
    if !matches!(ctx.io.stdin, Input::Terminal) {
        return Ok(piped(ctx, &mut st));
    }
    interactive(ctx, &mut st, note)
}

fn piped(ctx: &mut Ctx, st: &mut State) -> i32 {
    let stdin = std::mem::replace(&mut ctx.io.stdin, Input::Null);
    let mut buf = String::new();
    let mut status = 0;
    for line in std::io::BufReader::new(stdin).lines() {
        let Ok(line) = line else { break };
        buf.push_str(&line);
        buf.push('\n');
        if incomplete(&buf) {
            continue;
        }
        match st.eval(&buf) {
            Step::Ok => status = 0,
            Step::Failed => status = 1,
            Step::Exit(n) => return n,
        }
        buf.clear();
        if signals::interrupted() {
            return crate::shell::STATUS_INTERRUPTED;
        }
    }
    if !buf.trim().is_empty() {
        status = match st.eval(&buf) {
            Step::Ok => 0,
            Step::Failed => 1,
            Step::Exit(n) => n,
        };
    }
    status
}

struct ScriptHelper {
    names: Mutex<Vec<String>>,
}

impl Completer for ScriptHelper {
    type Candidate = Pair;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = line[..pos]
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map(|i| i + 1)
            .unwrap_or(0);
        let word = &line[start..pos];
        if word.is_empty() {
            return Ok((pos, Vec::new()));
        }
        let names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        let c = names
            .iter()
            .filter(|n| n.starts_with(word))
            .map(|n| Pair {
                display: n.clone(),
                replacement: n.clone(),
            })
            .collect();
        Ok((start, c))
    }
}

impl Validator for ScriptHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(if incomplete(ctx.input()) {
            ValidationResult::Incomplete
        } else {
            ValidationResult::Valid(None)
        })
    }
}

impl Hinter for ScriptHelper {
    type Hint = String;
}
impl Highlighter for ScriptHelper {}
impl Helper for ScriptHelper {}

fn interactive(ctx: &mut Ctx, st: &mut State, note: Option<&str>) -> Result<i32> {
    let hub = ctx.sh.hub.clone();
    let config = Config::builder()
        .auto_add_history(false)
        .max_history_size(10_000)?
        .history_ignore_dups(true)?
        .build();
    let mut rl: Editor<ScriptHelper, MemHistory> =
        Editor::with_history(config.clone(), MemHistory::with_config(&config))?;
    rl.set_helper(Some(ScriptHelper {
        names: Mutex::new(st.names()),
    }));
    {
        let conn = hub.store.conn();
        let mut q = conn.prepare_cached(
            "SELECT line FROM (SELECT id, line FROM script_history ORDER BY id DESC LIMIT 10000) ORDER BY id",
        )?;
        let lines = q.query_map([], |r| r.get::<_, String>(0))?;
        for l in lines.flatten() {
            let _ = rl.history_mut().add(&l);
        }
    }
    writeln!(
        ctx.io.stderr,
        "Rhai prompt: the scope lasts until you leave (Ctrl-D, or 'exit'). 'man scripting' lists the host API."
    )?;
    if let Some(n) = note {
        writeln!(ctx.io.stderr, "{n}")?;
    }
    loop {
        signals::reset();
        match rl.readline(PROMPT) {
            Ok(line) => {
                let t = line.trim();
                if t.is_empty() {
                    continue;
                }
                let _ = rl.history_mut().add(&line);
                let _ = hub.store.conn().execute(
                    "INSERT INTO script_history (line, at) VALUES (?1, ?2)",
                    rusqlite::params![line, now_ms()],
                );
                if matches!(t, "exit" | "quit" | "exit()") {
                    return Ok(0);
                }
                match st.eval(&line) {
                    Step::Exit(n) => return Ok(n),
                    Step::Ok | Step::Failed => {}
                }
                if let Some(h) = rl.helper() {
                    *h.names.lock().unwrap_or_else(|e| e.into_inner()) = st.names();
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => return Ok(0),
            Err(e) => return Err(e.into()),
        }
    }
}
