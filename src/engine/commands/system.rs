//! The hub itself: help, history, clear, exec, settings, exit.

use super::{ex, registry, strings, varies, Ctx, Group, Paint, Spec};
use crate::history;
use crate::settings::{self, SETTINGS};
use crate::store::KvTable;
use crate::vfs::{checkout, transfer, VPath};
use anyhow::{bail, Result};
use clap::{Arg, ArgAction, ArgMatches, Command};
use std::io::{Read, Write};

pub fn specs() -> Vec<Spec> {
    vec![
        Spec {
            name: "help",
            aliases: &[],
            group: Group::System,
            summary: "List commands, or show one command's usage",
            args: || Command::new("help").arg(Arg::new("command").value_name("COMMAND")),
            examples: const { &[varies("help"), varies("help grep")] },
            run: help,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "history",
            aliases: &[],
            group: Group::Shell,
            summary: "List or search the command history",
            args: || {
                Command::new("history")
                    .arg(
                        Arg::new("action")
                            .value_parser(["list", "search"])
                            .value_name("list|search")
                            .help("list (the default) or search"),
                    )
                    .arg(
                        Arg::new("text")
                            .value_name("TEXT")
                            .help("With search: text the command contains (case-insensitive)"),
                    )
                    .arg(
                        Arg::new("count")
                            .short('n')
                            .long("count")
                            .value_name("N")
                            .value_parser(clap::value_parser!(usize))
                            .help("Only the last N entries"),
                    )
                    .arg(
                        Arg::new("here")
                            .long("here")
                            .action(ArgAction::SetTrue)
                            .help("Only commands run in the current directory"),
                    )
                    .arg(
                        Arg::new("verbose")
                            .short('v')
                            .long("verbose")
                            .action(ArgAction::SetTrue)
                            .help("Show time, status, duration and directory"),
                    )
            },
            examples: const {
                &[
                    ex("echo hello", "hello\n"),
                    ex("history", "     1  echo hello\n"),
                    ex("history -n 1", "     2  history\n"),
                    ex("history search hello", "     1  echo hello\n"),
                ]
            },
            run: history_cmd,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "clear",
            aliases: &[],
            group: Group::Shell,
            summary: "Clear the terminal screen",
            args: || Command::new("clear"),
            examples: const { &[ex("clear", "\u{1b}[H\u{1b}[2J\u{1b}[3J")] },
            run: clear,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "true",
            aliases: &[],
            group: Group::Shell,
            summary: "Do nothing, successfully (status 0)",
            args: || {
                Command::new("true").arg(
                    Arg::new("ignored")
                        .num_args(0..)
                        .allow_hyphen_values(true)
                        .hide(true),
                )
            },
            examples: const {
                &[
                    ex("true && echo yes", "yes\n"),
                    ex("true || echo never", ""),
                ]
            },
            run: |_, _| Ok(0),
            rewrite: None,
            needs_store: false,
        },
        Spec {
            name: "false",
            aliases: &[],
            group: Group::Shell,
            summary: "Do nothing, unsuccessfully (status 1)",
            args: || {
                Command::new("false").arg(
                    Arg::new("ignored")
                        .num_args(0..)
                        .allow_hyphen_values(true)
                        .hide(true),
                )
            },
            examples: const { &[ex("false || echo failed", "failed\n")] },
            run: |_, _| Ok(1),
            rewrite: None,
            needs_store: false,
        },
        Spec {
            name: "exec",
            aliases: &["!"],
            group: Group::System,
            summary: "Run a host program",
            args: || {
                Command::new("exec")
                    .override_usage(
                        "exec PROGRAM [ARGS…]\n       !PROGRAM [ARGS…]\n       \
                         exec --pending | --write-back [NAME] | --discard [NAME]",
                    )
                    .arg(
                        Arg::new("program")
                            .required_unless_present_any(["pending", "write_back", "discard"])
                            .value_name("PROGRAM"),
                    )
                    .arg(
                        Arg::new("args")
                            .num_args(0..)
                            .allow_hyphen_values(true)
                            .trailing_var_arg(true)
                            .value_name("ARGS"),
                    )
                    .arg(
                        Arg::new("pending")
                            .long("pending")
                            .action(ArgAction::SetTrue)
                            .help("List checkouts a valyxo that ended left behind"),
                    )
                    .arg(
                        Arg::new("write_back")
                            .long("write-back")
                            .value_name("NAME")
                            .num_args(0..=1)
                            .default_missing_value("")
                            .conflicts_with("discard")
                            .help("Bring a left-behind checkout's changes into the VFS"),
                    )
                    .arg(
                        Arg::new("discard")
                            .long("discard")
                            .value_name("NAME")
                            .num_args(0..=1)
                            .default_missing_value("")
                            .help("Delete a left-behind checkout"),
                    )
            },
            examples: const {
                &[
                    ex("exec echo from the host", "from the host\n"),
                    varies("!uname -s"),
                    ex("exec --pending", ""),
                ]
            },
            run: exec,
            rewrite: Some(exec_rewrite),
            needs_store: true,
        },
        Spec {
            name: "settings",
            aliases: &[],
            group: Group::System,
            summary: "List, read and change settings",
            args: || {
                Command::new("settings")
                    .subcommand(
                        Command::new("list").about("Every setting with its value (the default)"),
                    )
                    .subcommand(
                        Command::new("get")
                            .about("Print one setting's value")
                            .arg(Arg::new("key").required(true)),
                    )
                    .subcommand(
                        Command::new("set")
                            .about("Change a setting (kept across sessions)")
                            .arg(Arg::new("key").required(true))
                            .arg(Arg::new("value").required(true)),
                    )
                    .subcommand(
                        Command::new("reset")
                            .about("Return a setting to its default")
                            .arg(Arg::new("key").required(true)),
                    )
                    .subcommand(Command::new("path").about("Print where config.toml is"))
            },
            examples: const {
                &[
                    varies("settings"),
                    ex("settings set repl.hints false", ""),
                    ex("settings get repl.hints", "false\n"),
                    ex("settings reset repl.hints", ""),
                ]
            },
            run: settings_cmd,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "exit",
            aliases: &["quit"],
            group: Group::Shell,
            summary: "Leave the shell",
            args: || {
                Command::new("exit").arg(
                    Arg::new("status")
                        .value_name("STATUS")
                        .value_parser(clap::value_parser!(i32).range(0..=255))
                        .help("Exit status, 0 to 255 (default: the last command's)"),
                )
            },
            examples: const { &[ex("exit 0", "")] },
            run: exit,
            rewrite: None,
            needs_store: false,
        },
    ]
}

fn help(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let reg = registry();
    if let Some(name) = m.get_one::<String>("command") {
        let Some(spec) = reg.get(name) else {
            if let Some(c) = crate::plugins::command(ctx.hub(), name) {
                let usage = format!(
                    "{}\n\nUsage: {}\n\nSee 'man {}' for details.\n",
                    c.summary, c.usage, c.name
                );
                ctx.io.stdout.write_all(usage.as_bytes())?;
                return Ok(0);
            }
            let sugg = reg.suggest(name, &[]);
            if sugg.is_empty() {
                bail!("no command named '{name}'");
            }
            bail!(
                "no command named '{name}'. Did you mean {}?",
                crate::text::quote_list(&sugg)
            );
        };
        let text = spec.command().render_help().to_string();
        ctx.io.stdout.write_all(text.as_bytes())?;
        return Ok(0);
    }
    let paint = ctx.paint();
    let mut out = String::new();
    let width = reg.all().iter().map(|s| s.name.len()).max().unwrap_or(8) + 2;
    for g in Group::ALL {
        out.push_str(&paint.paint("help.heading", g.title()));
        out.push('\n');
        for s in reg.all().iter().filter(|s| s.group == g) {
            let aliases = if s.aliases.is_empty() {
                String::new()
            } else {
                format!(" (also {})", s.aliases.join(", "))
            };
            out.push_str(&format!("  {:width$}{}{aliases}\n", s.name, s.summary));
        }
        out.push('\n');
    }
    let plugins = crate::plugins::commands(ctx.hub());
    if !plugins.is_empty() {
        out.push_str(&paint.paint("help.heading", "Plugins"));
        out.push('\n');
        for c in plugins {
            out.push_str(&format!(
                "  {:width$}{} (plugin {})\n",
                c.name, c.summary, c.plugin
            ));
        }
        out.push('\n');
    }
    out.push_str(
        "Type 'CMD --help' or 'help CMD' for a command's usage, and 'man CMD' for its manual.\n",
    );
    out.push_str(
        "Lines: cmd args | cmd2 > file; a && b || c; 'quoted' \"$VAR\" *.txt; # comment\n",
    );
    ctx.io.stdout.write_all(out.as_bytes())?;
    Ok(0)
}

fn history_cmd(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let action = m
        .get_one::<String>("action")
        .map(String::as_str)
        .unwrap_or("list");
    let text = m.get_one::<String>("text");
    if action == "search" && text.is_none() {
        bail!("history search needs the TEXT to look for");
    }
    if let (Some(t), "list") = (text, action) {
        bail!("unexpected '{t}'; did you mean 'history search {t}'?");
    }
    let cwd = m.get_flag("here").then(|| ctx.sh.cwd().to_string());
    let entries = history::list(
        &ctx.hub().store,
        m.get_one::<usize>("count").copied(),
        text.map(String::as_str),
        cwd.as_deref(),
    )?;
    let verbose = m.get_flag("verbose");
    let paint = ctx.paint();
    let mut out = String::new();
    for e in entries {
        let cmd = match (paint.on(), text) {
            (true, Some(t)) => highlight_ci(&paint, &e.command, t),
            _ => e.command.clone(),
        };
        if verbose {
            let status = e
                .status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into());
            let dur = e
                .duration_ms
                .map(|d| format!("{d}ms"))
                .unwrap_or_else(|| "-".into());
            out.push_str(&format!(
                "{:>6}  {}  {:>3}  {:>7}  {}  {cmd}\n",
                e.id,
                super::files::fmt_time(e.started_at),
                status,
                dur,
                VPath::parse_absolute(&e.cwd)
                    .map(|p| p.display_tilde())
                    .unwrap_or(e.cwd.clone())
            ));
        } else {
            out.push_str(&format!("{:>6}  {cmd}\n", e.id));
        }
    }
    ctx.io.stdout.write_all(out.as_bytes())?;
    Ok(0)
}

fn highlight_ci(paint: &Paint, s: &str, needle: &str) -> String {
    let lower = s.to_lowercase();
    let n = needle.to_lowercase();
    if lower.len() != s.len() || n.is_empty() {
        return s.to_string();
    }
    let mut out = String::new();
    let mut last = 0;
    for (i, _) in lower.match_indices(&n) {
        if i < last {
            continue;
        }
        out.push_str(&s[last..i]);
        out.push_str(&paint.paint("grep.match", &s[i..i + n.len()]));
        last = i + n.len();
    }
    out.push_str(&s[last..]);
    out
}

fn clear(ctx: &mut Ctx, _: &ArgMatches) -> Result<i32> {
    ctx.io.stdout.write_all(b"\x1b[H\x1b[2J\x1b[3J")?;
    Ok(0)
}

/// `exec PROG -x` → `exec -- PROG -x`, so the program's options are never read as exec's.
fn exec_rewrite(mut argv: Vec<String>) -> Vec<String> {
    if argv.len() > 1 && !argv[1].starts_with('-') {
        argv.insert(1, "--".into());
    }
    argv
}

/// The project a stored directory belongs to: `/Projects/NAME` for paths below it, else the
/// directory itself.
fn project_root(cwd: &VPath) -> VPath {
    match cwd.names() {
        [p, name, ..] if p == "Projects" => VPath::root().join_names(&[p.clone(), name.clone()]),
        _ => cwd.clone(),
    }
}

/// A checkout larger than this is refused with advice: copying it out and back for one
/// program would cost more than the program.
const CHECKOUT_MAX_FILES: usize = 50_000;
const CHECKOUT_MAX_BYTES: u64 = 1 << 30;

/// Prints what writing a checkout back did that the user should know.
fn report_write_back(ctx: &mut Ctx, wb: &checkout::WriteBack) {
    for n in wb.notes() {
        ctx.warn(n);
    }
}

/// `exec --pending`, `--write-back [NAME]`, `--discard [NAME]`.
fn exec_pending(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let home = ctx.hub().home.clone();
    let named = |id: &str| {
        m.get_one::<String>(id)
            .map(|s| s.as_str())
            .map(|s| (!s.is_empty()).then_some(s))
    };
    if let Some(name) = named("write_back") {
        let c = checkout::find_pending(&home, name)?;
        let wb = c.write_back(ctx.vfs())?;
        report_write_back(ctx, &wb);
        writeln!(
            ctx.io.stdout,
            "{}: {} written back, {} deleted",
            c.name(),
            wb.written + wb.kept_both.len(),
            wb.deleted
        )?;
        c.discard()?;
        return Ok(0);
    }
    if let Some(name) = named("discard") {
        let c = checkout::find_pending(&home, name)?;
        let n = c.name();
        c.discard()?;
        writeln!(ctx.io.stdout, "{n}: deleted")?;
        return Ok(0);
    }
    for c in checkout::pending(&home) {
        writeln!(ctx.io.stdout, "{}", c.describe())?;
    }
    Ok(0)
}

fn exec(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    if m.get_flag("pending") || m.contains_id("write_back") || m.contains_id("discard") {
        return exec_pending(ctx, m);
    }
    let program = m.get_one::<String>("program").expect("required").clone();
    let args = strings(m, "args");
    let hub = ctx.sh.hub.clone();
    let vfs = &hub.vfs;
    let cwd = ctx.sh.cwd().clone();
    // In a mount the program runs in the host directory itself; in the stored tree it runs in
    // a private checkout of the project, whose changes are written back when it exits.
    let mut co = None;
    let dir = match vfs.host_path(&cwd) {
        // The host folder is looked at first, as any use of the mount does: one removed,
        // or replaced by a symlink to somewhere else, is not where the program runs.
        Some(h) => match vfs.stat(&cwd) {
            Ok(_) => h,
            Err(e) => bail!("{e}"),
        },
        None => {
            let root = project_root(&cwd);
            // At / or in ~/Projects the program gets the files right there, not every
            // project below.
            let shallow = root.is_root() || root.names() == ["Projects"];
            let (files, bytes) = if shallow {
                (0, 0)
            } else {
                checkout::measure(vfs, &root)?
            };
            if files > CHECKOUT_MAX_FILES || bytes > CHECKOUT_MAX_BYTES {
                bail!(
                    "'exec' here would copy {} ({files} files) of {} out for the program and \
                     back: run it in a smaller directory, or mount a host directory and work \
                     there ('man exec')",
                    transfer::human_bytes(bytes),
                    root.display_tilde()
                );
            }
            let c = checkout::Checkout::create(vfs, &hub.home, &root, &program, shallow)?;
            let rel: std::path::PathBuf = cwd.strip_prefix(&root).unwrap_or(&[]).iter().collect();
            let dir = c.work.join(rel);
            co = Some(c);
            dir
        }
    };
    // A termination signal (SIGTERM, or SIGHUP when the terminal goes) waits until the
    // program is stopped and its work written back.
    let hold = crate::signals::hold();
    let mut cmd = std::process::Command::new(&program);
    cmd.args(&args).current_dir(&dir);
    for (k, v) in ctx.hub().store.kv_list(KvTable::Env)? {
        cmd.env(k, v);
    }
    for (k, v) in &ctx.sh.vars {
        cmd.env(k, v);
    }
    // Should valyxo be killed outright, the program is told to stop too (Linux).
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl with PR_SET_PDEATHSIG is async-signal-safe and touches no memory.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
    }
    let stdin = std::mem::replace(&mut ctx.io.stdin, crate::shell::io::Input::Null);
    // A program on the interactive terminal gets Ctrl-C itself and decides what to do with it
    // (a REPL such as python3 keeps running); otherwise an interrupt stops it.
    let foreground = matches!(stdin, crate::shell::io::Input::Terminal);
    let (stdin, feed) = stdin.into_stdio();
    let (stdout, out_cap) = ctx.io.stdout.to_stdio()?;
    let (stderr, err_cap) = ctx.io.stderr.to_stdio()?;
    cmd.stdin(stdin).stdout(stdout).stderr(stderr);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            if let Some(c) = co {
                let _ = c.discard();
            }
            if e.kind() == std::io::ErrorKind::NotFound {
                ctx.warn(format!(
                    "'{}': program not found on the host PATH",
                    crate::text::escape(&program)
                ));
                return Ok(crate::shell::STATUS_NOT_FOUND);
            }
            bail!("cannot run '{}': {e}", crate::text::escape(&program));
        }
    };
    let status = std::thread::scope(|s| -> Result<std::process::ExitStatus> {
        if let (Some(mut src), Some(mut sink)) = (feed, child.stdin.take()) {
            let fed = std::thread::Builder::new()
                .name("exec-input".into())
                .spawn_scoped(s, move || {
                    let _ = std::io::copy(&mut src, &mut sink);
                });
            if let Err(e) = fed {
                eprintln!("valyxo: cannot feed the program its input: {e}");
            }
        }
        // What the program writes is copied a buffer at a time; when the target refuses
        // more (a file over its limit), the copy stops and the program's next write fails.
        let pump = |r: Option<Box<dyn Read + Send>>, sink: Option<Box<dyn Write + Send>>| {
            if let (Some(mut r), Some(mut sink)) = (r, sink) {
                let spawned = std::thread::Builder::new()
                    .name("exec-output".into())
                    .spawn_scoped(s, move || {
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(n) = r.read(&mut buf) {
                            if n == 0 || sink.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    });
                if let Err(e) = spawned {
                    eprintln!("valyxo: cannot copy the program's output: {e}");
                }
            }
        };
        pump(
            child
                .stdout
                .take()
                .map(|o| Box::new(o) as Box<dyn Read + Send>),
            out_cap,
        );
        pump(
            child
                .stderr
                .take()
                .map(|o| Box::new(o) as Box<dyn Read + Send>),
            err_cap,
        );
        let mut asked_to_stop: Option<std::time::Instant> = None;
        loop {
            if let Some(st) = child.try_wait()? {
                return Ok(st);
            }
            if crate::signals::interrupted() && !foreground {
                let _ = child.kill();
                return Ok(child.wait()?);
            }
            if crate::signals::terminating().is_some() {
                // valyxo is asked to end: the program is asked too, then made to.
                match asked_to_stop {
                    None => {
                        // SAFETY: signals our own child.
                        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
                        asked_to_stop = Some(std::time::Instant::now());
                    }
                    Some(t) if t.elapsed() > std::time::Duration::from_secs(3) => {
                        let _ = child.kill();
                        return Ok(child.wait()?);
                    }
                    Some(_) => {}
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    })?;
    if let Some(c) = co {
        if ctx.hub().settings().exec.writeback {
            match c.write_back(vfs) {
                Ok(wb) => {
                    report_write_back(ctx, &wb);
                    c.discard()?;
                }
                Err(e) => {
                    // The program's work stays on the host until it is written back.
                    bail!(
                        "cannot write the program's changes back to {}: {e:#}; they are kept \
                         ('exec --write-back {}' tries again)",
                        c.root.display_tilde(),
                        c.name()
                    );
                }
            }
        } else {
            c.discard()?;
        }
    }
    drop(hold);
    use std::os::unix::process::ExitStatusExt;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

fn settings_cmd(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    ctx.hub().reload_config();
    match m.subcommand() {
        None | Some(("list", _)) => {
            let mut out = String::new();
            let width = SETTINGS.iter().map(|s| s.key.len()).max().unwrap_or(10);
            for s in SETTINGS {
                let v = ctx.hub().setting_text(s.key);
                let mark = if v != s.default { " (changed)" } else { "" };
                out.push_str(&format!("{:width$}  {v}{mark}\n    {}\n", s.key, s.help));
            }
            for (chord, command) in ctx.hub().settings_under(settings::KEY_BINDINGS) {
                let key = format!("{}{chord}", settings::KEY_BINDINGS);
                out.push_str(&format!(
                    "{key:width$}  {command}\n    A key of the editor, bound in config.toml.\n"
                ));
            }
            ctx.io.stdout.write_all(out.as_bytes())?;
        }
        Some(("get", a)) => {
            let key = a.get_one::<String>("key").expect("required");
            if !settings::is_family(key) {
                settings::validate(key, settings::find(key).map(|d| d.default).unwrap_or(""))?;
            }
            writeln!(ctx.io.stdout, "{}", ctx.hub().setting_text(key))?;
        }
        Some(("set", a)) => {
            let key = a.get_one::<String>("key").expect("required");
            let value = a.get_one::<String>("value").expect("required");
            ctx.hub().set_setting(key, Some(value))?;
        }
        Some(("reset", a)) => {
            let key = a.get_one::<String>("key").expect("required");
            ctx.hub().set_setting(key, None)?;
        }
        Some(("path", _)) => {
            writeln!(ctx.io.stdout, "{}", ctx.hub().config_path().display())?;
        }
        Some((other, _)) => bail!("unknown action '{other}'"),
    }
    Ok(0)
}

fn exit(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let status = m
        .get_one::<i32>("status")
        .copied()
        .unwrap_or(ctx.sh.last_status);
    ctx.sh.exit = Some(status);
    Ok(status)
}
