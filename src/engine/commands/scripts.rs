//! Scripts and jobs: run, script/enter, plugin, jobs, kill, wait, fg, logs.

use super::{ex, strings, varies, Ctx, Group, Spec};
use crate::jobs::{self, State};
use crate::plugins;
use crate::script::{self, Host, Limits, Origin};
use anyhow::{bail, Context, Result};
use clap::{Arg, ArgAction, ArgMatches, Command};
use std::io::Write;
use std::time::Duration;

fn flag(id: &'static str, long: &'static str, help: &'static str) -> Arg {
    Arg::new(id)
        .long(long)
        .action(ArgAction::SetTrue)
        .help(help)
}

fn job_arg(required: bool) -> Arg {
    Arg::new("job")
        .value_name("%N")
        .required(required)
        .help("The job, as 'jobs' numbers it (%3 or 3)")
}

pub fn specs() -> Vec<Spec> {
    vec![
        Spec {
            name: "run",
            aliases: &[],
            group: Group::Scripts,
            summary: "Run a Rhai (.rhai) or ValyxoScript (.vs, .ns) script from the VFS",
            args: || {
                Command::new("run")
                    .arg(
                        Arg::new("timeout")
                            .long("timeout")
                            .value_name("DURATION")
                            .help("Stop the script after this long (500ms, 5s, 2m); overrides setting script.timeout"),
                    )
                    .arg(
                        Arg::new("max_ops")
                            .long("max-operations")
                            .value_name("N")
                            .value_parser(clap::value_parser!(u64))
                            .help("Stop the script after N operations; overrides setting script.max_operations"),
                    )
                    .arg(
                        Arg::new("file")
                            .required(true)
                            .value_name("FILE")
                            .help("The script, a VFS path"),
                    )
                    .arg(
                        Arg::new("args")
                            .num_args(0..)
                            .trailing_var_arg(true)
                            .allow_hyphen_values(true)
                            .value_name("ARG")
                            .help("Arguments, in the script's `args` array"),
                    )
            },
            examples: const {
                &[
                    ex("echo 'print(`hello ${args[0]}`);' > hello.rhai", ""),
                    ex("run hello.rhai world", "hello world\n"),
                    ex("run --timeout 2s hello.rhai again", "hello again\n"),
                ]
            },
            run: run_cmd,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "script",
            aliases: &[],
            group: Group::Scripts,
            summary: "Open the interactive Rhai prompt (the scope lasts until you leave)",
            args: || Command::new("script"),
            examples: const { &[ex("echo 'let x = 6; x * 7' | script", "=> 42\n")] },
            run: script_cmd,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "enter",
            aliases: &[],
            group: Group::Scripts,
            summary: "Enter a language prompt: script (Rhai); ValyxoScript and vs open it too",
            args: || {
                Command::new("enter").arg(
                    Arg::new("language")
                        .required(true)
                        .value_parser(["script", "ValyxoScript", "vs"])
                        .value_name("LANGUAGE")
                        .help("script, ValyxoScript or vs"),
                )
            },
            examples: const { &[ex("echo '40 + 2' | enter script", "=> 42\n")] },
            run: enter_cmd,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "plugin",
            aliases: &[],
            group: Group::Scripts,
            summary: "Install, list or remove plugins: scripts that add commands",
            args: || {
                Command::new("plugin")
                    .subcommand_required(false)
                    .subcommand(
                        Command::new("install")
                            .about("Install (or update) the plugin script FILE, a VFS path")
                            .arg(Arg::new("file").required(true).value_name("FILE")),
                    )
                    .subcommand(
                        Command::new("list").about("List installed plugins and their commands"),
                    )
                    .subcommand(
                        Command::new("remove")
                            .about("Remove the plugin NAME and its commands")
                            .arg(Arg::new("name").required(true).value_name("NAME")),
                    )
            },
            examples: const {
                &[
                    ex("echo 'fn hi(args) { print(`hi ${args.len()}`); 0 } fn plugin() { #{ name: \"demo\", commands: [#{ name: \"hi\", summary: \"Say hi\", run: \"hi\" }] } }' > demo.rhai", ""),
                    ex("plugin install demo.rhai", "installed plugin demo 0 with 1 command: hi\n"),
                    ex("hi a b", "hi 2\n"),
                    ex("plugin list", "demo 0\n    hi             Say hi\n"),
                    ex("plugin remove demo", "removed plugin demo\n"),
                ]
            },
            run: plugin_cmd,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "jobs",
            aliases: &[],
            group: Group::Scripts,
            summary: "List background jobs and their states",
            args: || {
                Command::new("jobs")
                    .arg(flag("all", "all", "All jobs kept, not only the last 20").short('a'))
                    .arg(flag("json", "json", "Print the jobs as JSON"))
                    .arg(flag(
                        "clear",
                        "clear",
                        "Forget finished jobs and their output",
                    ))
            },
            examples: const {
                &[
                    ex("echo started &", ""),
                    ex("wait", ""),
                    varies("jobs"),
                    varies("jobs --json"),
                    ex("jobs --clear", "forgot 1 finished job(s)\n"),
                ]
            },
            run: jobs_cmd,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "kill",
            aliases: &[],
            group: Group::Scripts,
            summary: "Stop background jobs",
            args: || {
                Command::new("kill")
                    .arg(
                        Arg::new("jobs")
                            .value_name("%N")
                            .num_args(1..)
                            .required_unless_present("all")
                            .help("The jobs, as 'jobs' numbers them (%3 or 3)"),
                    )
                    .arg(
                        flag(
                            "all",
                            "all",
                            "Every job of this session still queued or running",
                        )
                        .conflicts_with("jobs"),
                    )
            },
            examples: const {
                &[
                    ex("exec sleep 30 &", ""),
                    ex("exec sleep 30 &", ""),
                    ex("kill %1 %2", ""),
                    ex("exec sleep 30 &", ""),
                    ex("kill --all", "stopped 1 job\n"),
                ]
            },
            run: kill_cmd,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "wait",
            aliases: &[],
            group: Group::Scripts,
            summary: "Wait for a background job (or all of this session's) to end",
            args: || Command::new("wait").arg(job_arg(false)),
            examples: const { &[ex("echo one &", ""), ex("wait %1", ""), ex("wait", "")] },
            run: wait_cmd,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "fg",
            aliases: &[],
            group: Group::Scripts,
            summary: "Follow a job's output until it ends (Ctrl-C stops the job)",
            args: || Command::new("fg").arg(job_arg(false)),
            examples: const { &[ex("echo followed &", ""), ex("fg %1", "followed\n")] },
            run: fg_cmd,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "logs",
            aliases: &[],
            group: Group::Scripts,
            summary: "Print the output a job has written so far",
            args: || Command::new("logs").arg(job_arg(true)),
            examples: const {
                &[
                    ex("echo logged &", ""),
                    ex("wait %1", ""),
                    ex("logs %1", "logged\n"),
                ]
            },
            run: logs_cmd,
            rewrite: None,
            needs_store: true,
        },
    ]
}

/// The settings' limits with `run`'s overrides.
fn limits(ctx: &Ctx, m: &ArgMatches) -> Result<Limits> {
    Limits::from_settings(ctx.hub()).overridden(
        m.get_one::<String>("timeout").map(String::as_str),
        m.get_one::<u64>("max_ops").copied(),
    )
}

/// A host for a script run by a command: the session (a copy: `cd` inside a script does not
/// move the shell) and the command's output streams.
pub fn host(ctx: &mut Ctx) -> Result<std::sync::Arc<Host>> {
    Ok(Host::new(
        ctx.sh.clone(),
        ctx.io.stdout.try_clone()?,
        ctx.io.stderr.try_clone()?,
    ))
}

fn run_cmd(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let file = m.get_one::<String>("file").expect("required");
    let path = ctx.path(file)?;
    let bytes = ctx
        .vfs()
        .read(&path)
        .map_err(|e| anyhow::anyhow!("cannot read '{file}': {e}"))?;
    let limits = limits(ctx, m)?;
    let host = host(ctx)?;
    Ok(script::run_file(
        &host,
        Origin::Vfs(path),
        bytes,
        &strings(m, "args"),
        &limits,
    ))
}

fn script_cmd(ctx: &mut Ctx, _m: &ArgMatches) -> Result<i32> {
    script::repl::run(ctx, None)
}

fn enter_cmd(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let lang = m.get_one::<String>("language").expect("required");
    let note = (lang != "script").then_some(
        "ValyxoScript lines are written in Rhai at this prompt; .vs files still run with 'run FILE.vs' (see 'man valyxoscript').",
    );
    script::repl::run(ctx, note)
}

fn plugin_cmd(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let hub = ctx.sh.hub.clone();
    match m.subcommand() {
        Some(("install", a)) => {
            let file = a.get_one::<String>("file").expect("required");
            let path = ctx.path(file)?;
            let bytes = ctx
                .vfs()
                .read(&path)
                .map_err(|e| anyhow::anyhow!("cannot read '{file}': {e}"))?;
            let host = host(ctx)?;
            let p = plugins::install(&host, Origin::Vfs(path), bytes)?;
            writeln!(
                ctx.io.stdout,
                "installed plugin {} {} with {}: {}",
                p.name,
                p.version,
                if p.commands.len() == 1 {
                    "1 command"
                } else {
                    "commands"
                },
                p.commands
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )?;
        }
        Some(("remove", a)) => {
            let name = a.get_one::<String>("name").expect("required");
            plugins::remove(&hub, name)?;
            writeln!(ctx.io.stdout, "removed plugin {name}")?;
        }
        None | Some(("list", _)) => {
            let list = plugins::list(&hub)?;
            if list.is_empty() {
                writeln!(
                    ctx.io.stdout,
                    "no plugins installed; 'man plugin' shows how to write one"
                )?;
            }
            for p in list {
                let desc = if p.description.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", p.description)
                };
                writeln!(ctx.io.stdout, "{} {}{desc}", p.name, p.version)?;
                for c in p.commands {
                    writeln!(ctx.io.stdout, "    {:<14} {}", c.name, c.summary)?;
                }
            }
        }
        Some((other, _)) => bail!("unknown action '{other}'"),
    }
    Ok(0)
}

fn jobs_cmd(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let hub = ctx.sh.hub.clone();
    if m.get_flag("clear") {
        let n = jobs::clear_finished(&hub)?;
        writeln!(ctx.io.stdout, "forgot {n} finished job(s)")?;
        return Ok(0);
    }
    let limit = (!m.get_flag("all")).then_some(SHOWN);
    let list = jobs::list(&hub, limit)?;
    let kept = jobs::count(&hub)?;
    if kept > list.len() {
        // Said on stderr, so that what the jobs print stays the same for scripts.
        ctx.warn(format!(
            "showing the last {} of {kept} jobs kept: 'jobs --all' lists every one",
            list.len()
        ));
    }
    if m.get_flag("json") {
        writeln!(ctx.io.stdout, "{}", serde_json::to_string_pretty(&list)?)?;
        return Ok(0);
    }
    for j in &list {
        let status = j
            .status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into());
        let took = j
            .elapsed_ms()
            .map(|ms| format!("{:.1}s", ms as f64 / 1000.0))
            .unwrap_or_else(|| "-".into());
        let other = if j.owner_session != hub.session_id && !j.state.finished() {
            format!("  (pid {})", j.owner_pid)
        } else {
            String::new()
        };
        writeln!(
            ctx.io.stdout,
            "[{}]  {:<8} {:>6} {:>8}  {}{other}",
            j.id,
            j.state.as_str(),
            status,
            took,
            // A script may start a job with any text (`sh(...)`): shown escaped.
            crate::text::escape(&j.line)
        )?;
    }
    Ok(0)
}

/// The jobs `jobs` lists without `--all`: the latest.
const SHOWN: usize = 20;

fn job_id(m: &ArgMatches) -> Result<Option<i64>> {
    m.get_one::<String>("job")
        .map(|s| jobs::parse_spec(s))
        .transpose()
}

fn kill_cmd(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let all = m.get_flag("all");
    let ids = if all {
        ctx.hub().jobs.live_ids()
    } else {
        m.get_many::<String>("jobs")
            .into_iter()
            .flatten()
            .map(|s| jobs::parse_spec(s))
            .collect::<Result<Vec<_>>>()?
    };
    // A job named twice (`kill %1 1`) is stopped once: the second time it has ended, which
    // is no error.
    let mut seen = std::collections::HashSet::new();
    let ids: Vec<i64> = ids.into_iter().filter(|id| seen.insert(*id)).collect();
    let mut status = 0;
    let mut stopped = 0;
    let answers = jobs::kill_many(ctx.hub(), &ids, Duration::from_secs(2));
    for (id, answer) in ids.iter().zip(answers) {
        match answer {
            Ok(job) => {
                stopped += 1;
                if job.state != State::Killed && !job.state.finished() {
                    ctx.warn(format!("job %{id} was asked to stop and is still ending"));
                }
            }
            // With --all, a job that ended by itself meanwhile is simply not there to stop.
            Err(_) if all => {}
            Err(e) => {
                ctx.warn(format!("{e:#}"));
                status = 1;
            }
        }
    }
    if all {
        let n = stopped;
        writeln!(
            ctx.io.stdout,
            "stopped {n} job{}",
            if n == 1 { "" } else { "s" }
        )?;
    }
    Ok(status)
}

fn wait_cmd(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let hub = ctx.sh.hub.clone();
    let ids = match job_id(m)? {
        Some(id) => vec![id],
        None => hub.jobs.live_ids(),
    };
    let mut status = 0;
    for id in ids {
        match jobs::wait(&hub, id)? {
            Some(j) => status = exit_status(&j),
            None => return Ok(crate::shell::STATUS_INTERRUPTED),
        }
    }
    Ok(status)
}

/// The status a finished job reports to `wait` and `fg`.
fn exit_status(j: &jobs::Job) -> i32 {
    match j.state {
        State::Lost => 1,
        _ => j.status.unwrap_or(crate::shell::STATUS_INTERRUPTED),
    }
}

/// The job `fg` and `logs` mean without an argument: the newest of this session's.
fn latest(ctx: &Ctx) -> Result<i64> {
    let hub = ctx.hub();
    jobs::list(hub, None)?
        .iter()
        .rev()
        .find(|j| j.owner_session == hub.session_id)
        .map(|j| j.id)
        .context("no jobs in this session; name one as %N ('jobs' lists them)")
}

fn fg_cmd(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let id = match job_id(m)? {
        Some(id) => id,
        None => latest(ctx)?,
    };
    let hub = ctx.sh.hub.clone();
    jobs::get(&hub, id)?;
    let mut seen = 0;
    loop {
        let job = jobs::get(&hub, id)?;
        let (last, out) = jobs::output_since(&hub, id, seen)?;
        seen = last;
        ctx.io.stdout.write_all(&out)?;
        ctx.io.stdout.flush()?;
        if job.state.finished() {
            // Output flushed after the state changed is read once more.
            let (_, rest) = jobs::output_since(&hub, id, seen)?;
            ctx.io.stdout.write_all(&rest)?;
            return Ok(exit_status(&job));
        }
        if crate::signals::interrupted() {
            // The job is in the foreground now: Ctrl-C stops it.
            if hub.jobs.live_ids().contains(&id) {
                let j = jobs::kill(&hub, id, Duration::from_secs(2))?;
                return Ok(exit_status(&j));
            }
            return Ok(crate::shell::STATUS_INTERRUPTED);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn logs_cmd(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let id = job_id(m)?.expect("required");
    let hub = ctx.sh.hub.clone();
    jobs::get(&hub, id)?;
    let (_, out) = jobs::output_since(&hub, id, 0)?;
    ctx.io.stdout.write_all(&out)?;
    Ok(0)
}
