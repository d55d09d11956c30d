//! The shell (engine): a session's state and the executor that runs parsed lines. Every face (REPL,
//! `-c`, stdin, scripts) runs lines through [`Session::run`].

pub mod expand;
pub mod io;
pub mod ops;
pub mod parse;

use crate::commands::{self, Ctx};
use crate::hub::Hub;
use crate::signals;
use crate::store::KvTable;
use crate::vfs::{normalize, VPath};
use io::{FileOut, Input, Io, Output};
use parse::{Command, Connector, Pipeline, RedirOp, Script};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

/// Nesting limit for aliases that expand to other aliases.
const MAX_ALIAS_DEPTH: usize = 16;

/// Exit status used when a line could not be parsed or a command was used wrongly.
pub const STATUS_USAGE: i32 = 2;
/// Exit status for an unknown command.
pub const STATUS_NOT_FOUND: i32 = 127;
/// Exit status for a command stopped by Ctrl-C.
pub const STATUS_INTERRUPTED: i32 = 130;

/// One shell session: working directory, session variables, last status.
#[derive(Clone)]
pub struct Session {
    pub hub: Arc<Hub>,
    /// The working directory ([`Session::cwd`]). A session that starts before the store is
    /// open takes its start directory as it is, and checks (and makes) it when the working
    /// directory is first asked for, so a line that uses no path opens no store.
    cwd: std::sync::OnceLock<VPath>,
    start: VPath,
    pub oldpwd: Option<VPath>,
    /// Variables set with `NAME=value` for this session only.
    pub vars: BTreeMap<String, String>,
    pub last_status: i32,
    /// Set by `exit`: the status to leave with.
    pub exit: Option<i32>,
    pub interactive: bool,
    /// Background jobs also show their output on the process's own streams as it comes (a
    /// one-line run or piped input, as bash shows its jobs' output), besides keeping it.
    pub echo_jobs: bool,
    aliases_in_use: Vec<String>,
}

impl Session {
    /// A session starting in the configured start directory (created when missing).
    /// (When the store is not open yet, the directory is checked on first use instead.)
    pub fn new(hub: Arc<Hub>, interactive: bool) -> anyhow::Result<Session> {
        let start = hub.settings().shell.start_dir.clone();
        let start = normalize(&VPath::root(), &start).unwrap_or_else(|_| VPath::root());
        let sh = Session {
            cwd: std::sync::OnceLock::new(),
            start,
            ..Self::at(hub, VPath::root(), interactive)?
        };
        if sh.hub.store.is_open() {
            sh.cwd();
        }
        Ok(sh)
    }

    pub fn at(hub: Arc<Hub>, cwd: VPath, interactive: bool) -> anyhow::Result<Session> {
        Ok(Session {
            hub,
            cwd: std::sync::OnceLock::from(cwd),
            start: VPath::root(),
            oldpwd: None,
            vars: BTreeMap::new(),
            last_status: 0,
            exit: None,
            interactive,
            echo_jobs: false,
            aliases_in_use: Vec::new(),
        })
    }

    /// The working directory. The first time, the start directory is made if missing; one
    /// that cannot be made leaves the session at the root.
    pub fn cwd(&self) -> &VPath {
        self.cwd.get_or_init(|| {
            let vfs = &self.hub.vfs;
            // Another session (a pipeline's other stage, another process) may make it at the
            // same moment: only a folder that is still not there is given up on.
            if !vfs.is_dir(&self.start)
                && vfs.mkdir(&self.start, true).is_err()
                && !vfs.is_dir(&self.start)
            {
                VPath::root()
            } else {
                self.start.clone()
            }
        })
    }

    /// Changes the working directory; returns the one it was.
    pub fn set_cwd(&mut self, to: VPath) -> VPath {
        let old = self.cwd().clone();
        self.cwd = std::sync::OnceLock::from(to);
        old
    }

    /// Looks a variable up: session variables, then `PWD`/`OLDPWD`, then the persisted
    /// environment (`export`), then the host process environment.
    pub fn var(&self, name: &str) -> Option<String> {
        if let Some(v) = self.vars.get(name) {
            return Some(v.clone());
        }
        match name {
            "PWD" => return Some(self.cwd().to_string()),
            "OLDPWD" => return self.oldpwd.as_ref().map(|p| p.to_string()),
            _ => {}
        }
        if let Ok(Some(v)) = self.hub.store.kv_get(KvTable::Env, name) {
            return Some(v);
        }
        std::env::var(name).ok()
    }

    /// Resolves a path argument against the working directory.
    pub fn resolve(&self, arg: &str) -> anyhow::Result<VPath> {
        normalize(self.cwd(), arg).map_err(|e| anyhow::anyhow!("'{arg}': {e}"))
    }

    /// Parses and runs `src` (one or more lines), returning its exit status.
    pub fn run(&mut self, src: &str, io: &mut Io) -> i32 {
        let status = match parse::parse(src) {
            Ok(script) => self.exec_script(&script, src, io),
            Err(e) => {
                let _ = writeln!(io.stderr, "valyxo: {}", e.render(src));
                STATUS_USAGE
            }
        };
        self.last_status = status;
        let _ = io.stdout.flush();
        status
    }

    fn exec_script(&mut self, script: &Script, src: &str, io: &mut Io) -> i32 {
        let mut status = self.last_status;
        for item in &script.items {
            if self.exit.is_some() || signals::interrupted() {
                break;
            }
            if item.background {
                let text = src[item.and_or.span.start..item.and_or.span.end].trim();
                status = match crate::jobs::start(self, text) {
                    Ok(id) => {
                        if self.interactive {
                            let _ = writeln!(io.stderr, "[{id}] {text}");
                        }
                        0
                    }
                    Err(e) => {
                        let _ = writeln!(io.stderr, "valyxo: {}", error_text(&e));
                        1
                    }
                };
                self.last_status = status;
                continue;
            }
            let ao = &item.and_or;
            status = self.exec_pipeline(&ao.first, src, io);
            self.last_status = status;
            for (conn, p) in &ao.rest {
                if self.exit.is_some() || signals::interrupted() {
                    break;
                }
                let run = match conn {
                    Connector::And => status == 0,
                    Connector::Or => status != 0,
                };
                if run {
                    status = self.exec_pipeline(p, src, io);
                    self.last_status = status;
                }
            }
        }
        if signals::interrupted() && status == 0 {
            status = STATUS_INTERRUPTED;
        }
        status
    }

    fn exec_pipeline(&mut self, p: &Pipeline, src: &str, io: &mut Io) -> i32 {
        if p.commands.len() == 1 {
            return self.exec_command(&p.commands[0], src, io);
        }
        // Each stage runs in its own thread on a copy of the session (like a subshell), joined
        // by OS pipes, so data streams through and a stage ending early stops the others.
        let n = p.commands.len();
        let mut stages = Vec::with_capacity(n);
        let mut prev: Option<std::io::PipeReader> = None;
        for i in 0..n {
            let stdin = match prev.take() {
                Some(r) => Input::Pipe(r),
                None => take_stdin(io),
            };
            let stdout = if i + 1 == n {
                io.stdout.try_clone()
            } else {
                std::io::pipe().map(|(r, w)| {
                    prev = Some(r);
                    Output::Pipe(w)
                })
            };
            let (stdout, stderr) = match (stdout, io.stderr.try_clone()) {
                (Ok(o), Ok(e)) => (o, e),
                (Err(e), _) | (_, Err(e)) => {
                    let _ = writeln!(io.stderr, "valyxo: cannot create a pipe: {e}");
                    return 1;
                }
            };
            stages.push(Io {
                stdin,
                stdout,
                stderr,
            });
        }
        let token = signals::current();
        let statuses: Vec<i32> = std::thread::scope(|s| {
            let handles: Vec<_> = p
                .commands
                .iter()
                .zip(stages)
                .map(|(cmd, mut sio)| {
                    let mut sub = self.clone();
                    let token = token.clone();
                    // A thread that cannot be made fails its stage, not the process.
                    std::thread::Builder::new()
                        .name("pipeline".into())
                        .spawn_scoped(s, move || {
                            signals::adopt(token);
                            let st = sub.exec_command(cmd, src, &mut sio);
                            drop(sio); // closes this stage's pipe ends so the next one sees EOF
                            (st, sub.exit)
                        })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| match h {
                    Ok(h) => h.join().map(|(st, _)| st).unwrap_or(1),
                    Err(e) => {
                        eprintln!("valyxo: cannot start a pipeline stage: {e}");
                        1
                    }
                })
                .collect()
        });
        *statuses.last().unwrap_or(&0)
    }

    fn exec_command(&mut self, cmd: &Command, src: &str, io: &mut Io) -> i32 {
        // Aliases expand textually: the alias's value replaces the command name, and the rest
        // of the command (arguments, redirections) follows it.
        if let Some(name) = cmd.words[0].plain() {
            if !self.aliases_in_use.iter().any(|a| a == name) {
                if let Some(value) = self.hub.alias(name) {
                    if self.aliases_in_use.len() >= MAX_ALIAS_DEPTH {
                        let _ = writeln!(io.stderr, "valyxo: aliases nest too deeply at '{name}'");
                        return 1;
                    }
                    let text = format!("{value}{}", &src[cmd.words[0].span.end..cmd.span.end]);
                    return match parse::parse(&text) {
                        Ok(script) => {
                            self.aliases_in_use.push(name.to_string());
                            let st = self.exec_script(&script, &text, io);
                            self.aliases_in_use.pop();
                            st
                        }
                        Err(e) => {
                            let _ = writeln!(
                                io.stderr,
                                "valyxo: in alias '{name}': {}",
                                e.render(&text)
                            );
                            STATUS_USAGE
                        }
                    };
                }
            }
        }
        let mut argv = match expand::expand_words(self, &cmd.words) {
            Ok(a) => a,
            Err(e) => {
                // The message quotes the word, which may hold anything (a script's `sh`).
                let e = crate::text::clean_message(&e, crate::text::MESSAGE_MAX);
                let _ = writeln!(io.stderr, "valyxo: {e}");
                return 1;
            }
        };
        // NAME=value alone sets a session variable.
        if let Some((name, value)) = assignment(cmd, &argv) {
            if argv.len() == 1 && cmd.redirects.is_empty() {
                self.vars.insert(name, value);
                return 0;
            }
            let _ = writeln!(
                io.stderr,
                "valyxo: '{}': setting a variable for one command is not supported; use 'export NAME=value' or 'NAME=value' on its own",
                argv[0]
            );
            return STATUS_USAGE;
        }
        if argv[0].len() > 1 && argv[0].starts_with('!') {
            let prog = argv[0][1..].to_string();
            argv[0] = "exec".into();
            argv.insert(1, prog);
        }
        let mut cio = match self.redirect(cmd, io) {
            Ok(c) => c,
            Err(e) => {
                let _ = writeln!(io.stderr, "valyxo: {e}");
                return 1;
            }
        };
        let mut status = self.dispatch(&argv, &mut cio.io);
        drop(cio.io);
        // Files written as the output came: kept whole, or (after a failed write) as they
        // were before.
        for (out, word) in cio.files {
            let r = out
                .finish()
                .and_then(|w| w.commit(&self.hub.vfs).map_err(|e| e.to_string()));
            if let Err(e) = r {
                let _ = writeln!(
                    io.stderr,
                    "valyxo: cannot write '{}': {}",
                    crate::text::escape(&word),
                    crate::text::clean_message(&e, crate::text::MESSAGE_MAX)
                );
                status = 1;
            }
        }
        if cio.stdin_taken {
            io.stdin = Input::Null;
        }
        status
    }

    /// Runs one command by name with its arguments.
    pub fn dispatch(&mut self, argv: &[String], io: &mut Io) -> i32 {
        let name = argv[0].as_str();
        let spec = commands::registry().get(name);
        if spec.is_none_or(|s| s.needs_store) {
            // Every session makes its start folder before the first command that may look.
            self.cwd();
        }
        let Some(spec) = spec else {
            if let Some(pc) = crate::plugins::command(&self.hub, name) {
                let (Ok(out), Ok(err)) = (io.stdout.try_clone(), io.stderr.try_clone()) else {
                    let _ = writeln!(io.stderr, "valyxo: cannot set up the streams for '{name}'");
                    return 1;
                };
                let host = crate::script::Host::new(self.clone(), out, err);
                let status = crate::plugins::run(&host, &pc, &argv[1..]);
                let _ = io.stdout.flush();
                return status;
            }
            // An alias that leads back to itself ends here, not at a real command.
            if let Some(at) = self.aliases_in_use.iter().position(|a| a == name) {
                let mut chain: Vec<&str> = self.aliases_in_use[at..]
                    .iter()
                    .map(String::as_str)
                    .collect();
                chain.push(name);
                let _ = writeln!(
                    io.stderr,
                    "valyxo: alias '{name}' leads back to itself ({}): change one of them ('alias' lists them)",
                    chain.join(" → ")
                );
                return STATUS_NOT_FOUND;
            }
            let mut msg = format!("valyxo: unknown command '{}'", crate::text::escape(name));
            let user_aliases: Vec<String> = self
                .hub
                .aliases()
                .into_keys()
                .chain(
                    crate::plugins::commands(&self.hub)
                        .into_iter()
                        .map(|c| c.name),
                )
                .collect();
            let mut sugg = commands::registry().suggest(name, &user_aliases);
            sugg.retain(|s| s != name);
            if !sugg.is_empty() {
                msg.push_str(&format!(
                    ". Did you mean {}?",
                    crate::text::quote_list(&sugg)
                ));
            } else {
                msg.push_str(". Type 'help' for the list of commands, or 'exec PROGRAM' to run a host program");
            }
            let _ = writeln!(io.stderr, "{msg}");
            return STATUS_NOT_FOUND;
        };
        let argv = match spec.rewrite {
            Some(f) => f(argv.to_vec()),
            None => argv.to_vec(),
        };
        let matches = match spec.command().try_get_matches_from(&argv) {
            Ok(m) => m,
            Err(e) => {
                use clap::error::ErrorKind;
                return match e.kind() {
                    ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                        let _ = write!(io.stdout, "{e}");
                        0
                    }
                    _ => {
                        let _ = write!(io.stderr, "{e}");
                        STATUS_USAGE
                    }
                };
            }
        };
        let mut ctx = Ctx {
            sh: self,
            io,
            name: spec.name,
        };
        let status = match (spec.run)(&mut ctx, &matches) {
            Ok(st) => st,
            Err(e) => {
                if signals::is_interrupt(&e) {
                    STATUS_INTERRUPTED
                } else if is_broken_pipe(&e) {
                    141
                } else {
                    let _ = writeln!(io.stderr, "{}: {}", spec.name, error_text(&e));
                    1
                }
            }
        };
        let _ = io.stdout.flush();
        status
    }

    fn redirect(&self, cmd: &Command, io: &mut Io) -> anyhow::Result<CommandIo> {
        let mut stdin: Option<Input> = None;
        let mut stdout = io.stdout.try_clone()?;
        let mut stderr = io.stderr.try_clone()?;
        let mut files = Vec::new();
        for r in &cmd.redirects {
            match r.op {
                RedirOp::Dup(to) => {
                    let target = if to == 1 {
                        stdout.try_clone()?
                    } else {
                        stderr.try_clone()?
                    };
                    if r.fd == 1 {
                        stdout = target;
                    } else {
                        stderr = target;
                    }
                }
                op => {
                    let word = r
                        .target
                        .as_ref()
                        .expect("parser gives file redirections a target");
                    let mut names = expand::expand_word(self, word).map_err(anyhow::Error::msg)?;
                    if names.len() != 1 {
                        anyhow::bail!(
                            "ambiguous redirection: the wildcard matches {} files",
                            names.len()
                        );
                    }
                    let name = names.remove(0);
                    let path = self.resolve(&name)?;
                    if op == RedirOp::Read {
                        let reader = self
                            .hub
                            .vfs
                            .open_read(&path)
                            .map_err(|e| anyhow::anyhow!("{e}"))?;
                        stdin = Some(Input::Stream(reader));
                    } else {
                        let writer =
                            self.hub
                                .vfs
                                .writer(&path, op == RedirOp::Append)
                                .map_err(|e| {
                                    anyhow::anyhow!(
                                        "cannot write '{}': {e}",
                                        crate::text::escape(&name)
                                    )
                                })?;
                        let f = FileOut::new(writer);
                        let out = Output::File(f.clone());
                        if r.fd == 1 {
                            stdout = out;
                        } else {
                            stderr = out;
                        }
                        files.push((f, name));
                    }
                }
            }
        }
        let stdin_taken =
            stdin.is_none() && !matches!(io.stdin, Input::Stdin | Input::Terminal | Input::Null);
        let stdin = match stdin {
            Some(s) => s,
            None => take_stdin(io),
        };
        Ok(CommandIo {
            io: Io {
                stdin,
                stdout,
                stderr,
            },
            files,
            stdin_taken,
        })
    }
}

struct CommandIo {
    io: Io,
    /// Files the command's output goes to, with the word that named each.
    files: Vec<(FileOut, String)>,
    stdin_taken: bool,
}

/// Takes the input stream for a command; the process's own stdin stays available.
fn take_stdin(io: &mut Io) -> Input {
    match io.stdin {
        Input::Stdin => Input::Stdin,
        Input::Terminal => Input::Terminal,
        _ => std::mem::replace(&mut io.stdin, Input::Null),
    }
}

fn assignment(cmd: &Command, argv: &[String]) -> Option<(String, String)> {
    // Only an unquoted NAME= written in the line counts, not one produced by expansion.
    let first = cmd.words[0].parts.first()?;
    let parse::Part::Lit {
        text,
        quoted: false,
    } = first
    else {
        return None;
    };
    let (name, _) = text.split_once('=')?;
    let mut cs = name.chars();
    if !cs
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        || !cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return None;
    }
    let value = argv[0][name.len() + 1..].to_string();
    Some((name.to_string(), value))
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// An error caused by SQLite finding the store's disk full, in words: what was being done,
/// then that the disk is full, without SQLite's own text and error code.
fn full_disk_text(e: &anyhow::Error) -> Option<String> {
    let mut parts = Vec::new();
    for c in e.chain() {
        if c.downcast_ref::<rusqlite::Error>()
            .is_some_and(crate::store::is_disk_full)
        {
            parts.push(crate::store::DISK_FULL.to_string());
            return Some(parts.join(": "));
        }
        parts.push(c.to_string());
    }
    None
}

/// An error as the terminal shows it: its causes, cleaned of escapes and cut when very long,
/// with what to do when the store turns out to be damaged.
pub fn error_text(e: &anyhow::Error) -> String {
    let text = full_disk_text(e).unwrap_or_else(|| format!("{e:#}"));
    let mut text = crate::text::clean_message(&text, crate::text::MESSAGE_MAX);
    crate::store::add_damage_hint(e, &mut text);
    text
}
