//! The account and sync: register, login, logout, whoami, sync.

use super::assistant::read_secret;
use super::{ex, needs, strings, Ctx, Group, Need, Spec};
use crate::sync::{self, Options, Report};
use anyhow::{bail, Result};
use clap::{Arg, ArgAction, ArgMatches, Command};
use std::io::{IsTerminal, Write};

fn server_arg() -> Arg {
    Arg::new("server")
        .long("server")
        .value_name("URL")
        .help("The account server (default: the sync.server setting)")
}

fn user_arg() -> Arg {
    Arg::new("user")
        .value_name("USER")
        .required(true)
        .help("The user name (login also takes the email address)")
}

pub fn specs() -> Vec<Spec> {
    vec![
        Spec {
            name: "register",
            aliases: &[],
            group: Group::Account,
            summary: "Create an account on the server and log in to it",
            args: || {
                Command::new("register")
                    .arg(server_arg())
                    .arg(
                        Arg::new("email")
                            .long("email")
                            .value_name("EMAIL")
                            .required(true)
                            .help("Your email address (you may log in with it too)"),
                    )
                    .arg(user_arg())
            },
            examples: const {
                &[
                    needs("register --email ada@example.com ada", Need::AccountServer),
                    needs(
                        "register --server https://sync.example.com --email ada@example.com ada",
                        Need::NamedServer,
                    ),
                ]
            },
            run: register,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "login",
            aliases: &[],
            group: Group::Account,
            summary: "Log in to an account on the server",
            args: || Command::new("login").arg(server_arg()).arg(user_arg()),
            examples: const {
                &[
                    needs("login ada", Need::AccountServer),
                    needs(
                        "login --server https://sync.example.com ada@example.com",
                        Need::NamedServer,
                    ),
                ]
            },
            run: login,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "logout",
            aliases: &[],
            group: Group::Account,
            summary: "Log out: the server revokes the token and it is forgotten here",
            args: || Command::new("logout"),
            examples: const { &[ex("logout", "not logged in\n")] },
            run: logout,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "whoami",
            aliases: &[],
            group: Group::Account,
            summary: "Show the account logged in to, as the server knows it",
            args: || Command::new("whoami"),
            examples: const { &[needs("whoami", Need::AccountServer)] },
            run: whoami,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "sync",
            aliases: &[],
            group: Group::Account,
            summary: "Sync the projects in ~/Projects with the server, both ways",
            args: || {
                let projects = || {
                    Arg::new("project")
                        .value_name("PROJECT")
                        .num_args(0..)
                        .help("Projects to sync (default: every project here and on the server)")
                };
                Command::new("sync")
                    .args_conflicts_with_subcommands(true)
                    .disable_help_subcommand(true)
                    .arg(
                        Arg::new("verbose")
                            .short('v')
                            .long("verbose")
                            .action(ArgAction::SetTrue)
                            .help("List every file that moves"),
                    )
                    .arg(projects())
                    .subcommand(
                        Command::new("status")
                            .about("What a sync would move, without moving anything")
                            .arg(projects()),
                    )
            },
            examples: const {
                &[
                    needs("sync", Need::AccountServer),
                    needs("sync status", Need::AccountServer),
                    needs("sync -v Main", Need::AccountServer),
                ]
            },
            run: sync_cmd,
            rewrite: None,
            needs_store: true,
        },
    ]
}

/// The server: --server, else the sync.server setting.
fn server(ctx: &Ctx, m: &ArgMatches) -> Result<String> {
    let url = match m.get_one::<String>("server") {
        Some(s) => s.clone(),
        None => ctx.hub().settings().sync.server.to_string(),
    };
    sync::server_url(&url)
}

fn password(ctx: &mut Ctx, prompt: &str) -> Result<String> {
    let p = read_secret(
        ctx,
        prompt,
        "no password given: type it on a terminal, or pipe it in (echo \"$PASSWORD\" | login USER)",
    )?;
    if p.is_empty() {
        bail!("the password is empty");
    }
    Ok(p)
}

fn logged_in(ctx: &mut Ctx, acct: &sync::Account, source: &sync::Source) -> Result<()> {
    writeln!(
        ctx.io.stdout,
        "logged in as {} on {}",
        acct.username, acct.server
    )?;
    if let sync::Source::File(p) = source {
        writeln!(
            ctx.io.stderr,
            "note: no OS keyring is running, so the login token is kept in {} (readable only by you)",
            p.display()
        )?;
    }
    Ok(())
}

fn register(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    use crate::protocol::{check_email, check_password, check_username, PASSWORD_RULE};
    let server = server(ctx, m)?;
    let user = m.get_one::<String>("user").expect("required");
    let email = m.get_one::<String>("email").expect("required");
    // What can be known before a password is typed is said first: the server's rules for
    // the name and address, and whether the server answers at all.
    let wrong: Vec<String> = [check_username(user), check_email(email)]
        .into_iter()
        .flatten()
        .collect();
    if !wrong.is_empty() {
        bail!("{}; nothing was created", wrong.join("; "));
    }
    sync::reachable(&server)?;
    let interactive = std::io::stdin().is_terminal() && ctx.on_terminal();
    if interactive {
        writeln!(ctx.io.stderr, "On {server}, {PASSWORD_RULE}.")?;
    }
    let pw = loop {
        let pw = password(ctx, "Password (not shown): ")?;
        match check_password(&pw) {
            None => break pw,
            Some(why) if interactive => writeln!(ctx.io.stderr, "{why}: try another.")?,
            Some(why) => bail!("{why}; nothing was created"),
        }
    };
    if interactive {
        let again = password(ctx, "Password again: ")?;
        if again != pw {
            bail!("the passwords differ; nothing was created");
        }
    }
    let (acct, source) = sync::register(ctx.hub(), &server, user, email, &pw)?;
    logged_in(ctx, &acct, &source)?;
    Ok(0)
}

fn login(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let server = server(ctx, m)?;
    let user = m.get_one::<String>("user").expect("required");
    let pw = password(ctx, &format!("Password for {user} (not shown): "))?;
    let (acct, source) = sync::login(ctx.hub(), &server, user, &pw)?;
    logged_in(ctx, &acct, &source)?;
    Ok(0)
}

fn logout(ctx: &mut Ctx, _: &ArgMatches) -> Result<i32> {
    match sync::logout(ctx.hub())? {
        None => writeln!(ctx.io.stdout, "not logged in")?,
        Some((acct, warning)) => {
            if let Some(w) = warning {
                ctx.warn(w);
            }
            writeln!(
                ctx.io.stdout,
                "logged out of {} on {}",
                acct.username, acct.server
            )?;
        }
    }
    Ok(0)
}

fn whoami(ctx: &mut Ctx, _: &ArgMatches) -> Result<i32> {
    let (acct, api) = sync::session(ctx.hub())?;
    let me: crate::protocol::types::MeAnswer = api.get("/api/auth/me")?;
    let u = &me.user;
    writeln!(
        ctx.io.stdout,
        "{} <{}> on {} (user {}, since {})",
        crate::text::escape(&u.username),
        crate::text::escape(&u.email),
        acct.server,
        u.id,
        crate::text::escape(&u.created_at)
    )?;
    Ok(0)
}

fn size(n: u64) -> String {
    if n < 1024 {
        format!("{n} B")
    } else if n < 1 << 20 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", n as f64 / (1 << 20) as f64)
    }
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn summary(r: &Report, dry: bool) -> String {
    if r.is_empty() {
        return "up to date".into();
    }
    let mut parts = Vec::new();
    let verb = |done: &str, todo: &str| {
        if dry {
            todo.to_string()
        } else {
            done.to_string()
        }
    };
    if !r.pushed.is_empty() {
        parts.push(format!("{} {}", r.pushed.len(), verb("pushed", "to push")));
    }
    if !r.pulled.is_empty() {
        parts.push(format!("{} {}", r.pulled.len(), verb("pulled", "to pull")));
    }
    let renamed = r.renamed_here.len() + r.renamed_there.len();
    if renamed > 0 {
        parts.push(format!("{renamed} {}", verb("renamed", "to rename")));
    }
    let deleted = r.deleted_here.len() + r.deleted_there.len();
    if deleted > 0 {
        parts.push(format!("{deleted} {}", verb("deleted", "to delete")));
    }
    if !r.conflicts.is_empty() {
        parts.push(format!(
            "{} (both versions {})",
            count(r.conflicts.len(), "conflict", "conflicts"),
            verb("kept", "will be kept")
        ));
    }
    let mut s = parts.join(", ");
    if !dry && r.bytes_up + r.bytes_down > 0 {
        s.push_str(&format!(
            " — {} up, {} down",
            size(r.bytes_up),
            size(r.bytes_down)
        ));
    }
    s
}

fn print_report(ctx: &mut Ctx, r: &Report, dry: bool, verbose: bool) -> Result<()> {
    writeln!(ctx.io.stdout, "{}: {}", r.project, summary(r, dry))?;
    if verbose || dry {
        for p in &r.pushed {
            writeln!(ctx.io.stdout, "  up      {p}")?;
        }
        for p in &r.pulled {
            writeln!(ctx.io.stdout, "  down    {p}")?;
        }
        for p in &r.deleted_there {
            writeln!(ctx.io.stdout, "  delete  {p} (on the server)")?;
        }
        for p in &r.deleted_here {
            writeln!(ctx.io.stdout, "  delete  {p} (here)")?;
        }
        for (from, to) in &r.renamed_there {
            writeln!(ctx.io.stdout, "  rename  {from} -> {to} (on the server)")?;
        }
        for (from, to) in &r.renamed_here {
            writeln!(ctx.io.stdout, "  rename  {from} -> {to} (here)")?;
        }
    }
    for (p, copy) in &r.conflicts {
        writeln!(
            ctx.io.stdout,
            "  both    {p}: changed here and on the server; this machine's version {} '{copy}'",
            if dry {
                "would be kept as"
            } else {
                "is kept as"
            }
        )?;
    }
    for n in r.notes.iter().chain(&r.skipped) {
        writeln!(ctx.io.stderr, "sync: {}: {n}", r.project)?;
    }
    Ok(())
}

fn sync_cmd(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let (dry, names, verbose) = match m.subcommand() {
        Some(("status", sm)) => (true, strings(sm, "project"), false),
        _ => (false, strings(m, "project"), m.get_flag("verbose")),
    };
    let (acct, api) = sync::session(ctx.hub())?;
    let _lock = if dry {
        None
    } else {
        Some(sync::lock(ctx.hub())?)
    };
    // Asked first, so that a file too large is left out instead of failing the sync (and
    // lists come in the server's largest pages).
    let limits = api.limits()?;
    let (mut projects, mut remote, notes) = sync::projects(ctx.hub(), &api, &names)?;
    for n in &notes {
        writeln!(ctx.io.stderr, "sync: {n}")?;
    }
    // Projects deleted or renamed as a whole, here or on the server.
    let events = sync::settle(
        ctx.hub(),
        &acct,
        &api,
        &names,
        &mut projects,
        &mut remote,
        dry,
    )?;
    for e in &events {
        if e.warning {
            writeln!(ctx.io.stderr, "sync: {}: {}", e.project, e.what)?;
        } else {
            writeln!(ctx.io.stdout, "{}: {}", e.project, e.what)?;
        }
    }
    if projects.is_empty() && !events.is_empty() {
        return Ok(0);
    }
    if projects.is_empty() {
        writeln!(
            ctx.io.stdout,
            "nothing to sync: no projects in ~/Projects or on {}",
            acct.server
        )?;
        return Ok(0);
    }
    let opts = Options {
        dry_run: dry,
        progress: ctx.on_terminal(),
        blob_limit: limits.as_ref().map(|l| l.blob_limit),
    };
    let mut failed = 0;
    // Files left out (too large, the storage full, names that cannot be synced): the rest
    // is synced, and the status says that not everything is.
    let mut partial = !notes.is_empty();
    for name in &projects {
        ctx.check_cancel()?;
        let run = sync::Run {
            hub: ctx.hub(),
            account: &acct,
            api: &api,
            remote_projects: &remote,
            opts: &opts,
        };
        match sync::sync_project(&run, name) {
            Ok(r) => {
                partial |= !r.skipped.is_empty();
                print_report(ctx, &r, dry, verbose)?
            }
            Err(e) => {
                failed += 1;
                writeln!(ctx.io.stderr, "sync: {name}: {e:#}")?;
                // A server that cannot be reached fails every project the same way.
                if e.downcast_ref::<sync::HttpError>().is_none()
                    && format!("{e}").starts_with("cannot reach")
                {
                    break;
                }
            }
        }
    }
    if failed > 0 && !dry {
        writeln!(
            ctx.io.stderr,
            "sync: nothing is lost; run sync again to finish"
        )?;
    }
    Ok(i32::from(failed > 0 || (partial && !dry)))
}
