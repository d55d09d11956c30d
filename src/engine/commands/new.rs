//! New projects from templates (engine): `new TEMPLATE NAME` (alias `create`), `new --list`,
//! `new --from FOLDER NAME`, and a picker when `new` is typed alone at the prompt.

use super::{ex, needs, Ctx, Group, Need, Spec};
use crate::templates::{self, Template};
use anyhow::{bail, Result};
use clap::{Arg, ArgAction, ArgMatches, Command};
use std::io::{BufRead, Write};

pub fn specs() -> Vec<Spec> {
    vec![Spec {
        name: "new",
        aliases: &["create"],
        group: Group::Files,
        summary: "Make a project in ~/Projects from a template",
        args: || {
            Command::new("new")
                .arg(
                    Arg::new("list")
                        .long("list")
                        .short('l')
                        .action(ArgAction::SetTrue)
                        .conflicts_with_all(["from", "force", "template"])
                        .help("List the templates, one a line"),
                )
                .arg(
                    Arg::new("from")
                        .long("from")
                        .value_name("FOLDER")
                        .help("Use FOLDER of the VFS as the template (then only NAME is given)"),
                )
                .arg(
                    Arg::new("force")
                        .long("force")
                        .short('f')
                        .action(ArgAction::SetTrue)
                        .help("Write into ~/Projects/NAME even if it exists (files of the same names are replaced)"),
                )
                .arg(Arg::new("template").value_name("TEMPLATE").help(
                    "The template ('new --list'); with --from, the project's name instead",
                ))
                .arg(
                    Arg::new("name")
                        .value_name("NAME")
                        .help("The project's name: ~/Projects/NAME (asked for at the prompt if left out)"),
                )
        },
        examples: const {
            &[
                ex(
                    "new rust hello",
                    "created ~/Projects/hello from the rust template (4 files)\nnext:\n  cd ~/Projects/hello\n  exec cargo run\n",
                ),
                ex(
                    "new python 'My Tool'",
                    "created ~/Projects/'My Tool' from the python template (5 files)\nnext:\n  cd ~/Projects/'My Tool'\n  exec python3 main.py\n",
                ),
                ex("new --from ~/Projects/hello hello2", "created ~/Projects/hello2 from ~/Projects/hello (4 files)\nnext:\n  cd ~/Projects/hello2\n  exec cargo run\n"),
                ex(
                    "new --list",
                    "cli      A Python command-line tool (argparse, pyproject.toml)\n\
                     express  A Node.js web server on Express\n\
                     flask    A Python web app on Flask\n\
                     html     A static web page: HTML, CSS and a script\n\
                     node     A Node.js program with a test\n\
                     python   A Python program with a test\n\
                     react    A React app on Vite\n\
                     rhai     A Valyxo script (Rhai) run in the hub\n\
                     rust     A Rust program built with Cargo, with a test\n",
                ),
                needs("new", Need::Terminal),
            ]
        },
        run: new,
        rewrite: None,
        needs_store: true,
    }]
}

fn new(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    if m.get_flag("list") {
        return list(ctx);
    }
    let words: Vec<String> = ["template", "name"]
        .iter()
        .filter_map(|id| m.get_one::<String>(id).cloned())
        .collect();
    let from = m.get_one::<String>("from");
    let (template, name) = match (from, words.as_slice()) {
        (Some(f), [name]) => (folder(ctx, f)?, name.clone()),
        (Some(f), []) => {
            let t = folder(ctx, f)?;
            (t, ask_name(ctx)?)
        }
        (Some(_), _) => bail!("with --from FOLDER, give only the project's NAME"),
        (None, [t, name]) => (templates::find(ctx.hub(), t)?, name.clone()),
        (None, [t]) => (templates::find(ctx.hub(), t)?, ask_name(ctx)?),
        (None, _) => {
            let t = pick(ctx)?;
            (t, ask_name(ctx)?)
        }
    };
    let author = templates::author(ctx.hub());
    let made = templates::create(ctx.hub(), &template, &name, &author, m.get_flag("force"))?;
    let from = match &template {
        Template::Builtin(b) => format!("the {} template", b.name),
        Template::Folder { dir, .. } => crate::text::escape(&dir.display_tilde()).into_owned(),
    };
    let mut out = format!(
        "created ~/Projects/{} from {from} ({} file{})\nnext:\n",
        crate::text::shell_quote(&name),
        made.files,
        if made.files == 1 { "" } else { "s" }
    );
    for l in &made.next {
        out.push_str("  ");
        out.push_str(l);
        out.push('\n');
    }
    ctx.io.stdout.write_all(out.as_bytes())?;
    Ok(0)
}

/// The folder given with `--from`, as a template.
fn folder(ctx: &Ctx, arg: &str) -> Result<Template> {
    let dir = ctx.path(arg)?;
    if !ctx.vfs().is_dir(&dir) {
        bail!("'{}' is not a folder", crate::text::escape(arg));
    }
    Ok(Template::Folder {
        name: dir.name().unwrap_or("/").to_string(),
        dir,
    })
}

fn list(ctx: &mut Ctx) -> Result<i32> {
    let all = templates::all(ctx.hub())?;
    let width = all
        .iter()
        .map(|t| crate::text::escape(t.name()).chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for t in &all {
        out.push_str(&format!(
            "{:<width$}  {}\n",
            crate::text::escape(t.name()),
            t.summary()
        ));
    }
    ctx.io.stdout.write_all(out.as_bytes())?;
    Ok(0)
}

/// A line typed at the terminal after `prompt`, or an error off a terminal (`missing` says
/// what to give instead). An empty line or end of input gives up.
fn ask(ctx: &mut Ctx, prompt: &str, missing: &str) -> Result<String> {
    if !ctx.on_terminal() {
        bail!("{missing}");
    }
    write!(ctx.io.stdout, "{prompt}")?;
    ctx.io.stdout.flush()?;
    // Ctrl-C gives up at once.
    super::wait_for_line()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    crate::signals::check()?;
    let line = line.trim().to_string();
    if line.is_empty() {
        bail!("nothing chosen; nothing was made");
    }
    Ok(line)
}

fn ask_name(ctx: &mut Ctx) -> Result<String> {
    ask(
        ctx,
        "Project name: ",
        "give the project's NAME: new TEMPLATE NAME",
    )
}

/// The picker: the templates numbered, and one chosen by number or name.
fn pick(ctx: &mut Ctx) -> Result<Template> {
    const MISSING: &str =
        "give a template and a name: new TEMPLATE NAME ('new --list' shows the templates)";
    if !ctx.on_terminal() {
        bail!("{MISSING}");
    }
    let all = templates::all(ctx.hub())?;
    let mut out = String::new();
    for (i, t) in all.iter().enumerate() {
        out.push_str(&format!(
            "{:>2}) {:<9} {}\n",
            i + 1,
            crate::text::escape(t.name()),
            t.summary()
        ));
    }
    ctx.io.stdout.write_all(out.as_bytes())?;
    let answer = ask(ctx, "Template (number or name): ", MISSING)?;
    if let Ok(n) = answer.parse::<usize>() {
        return match n.checked_sub(1).and_then(|i| all.get(i)) {
            Some(t) => Ok(t.clone()),
            None => bail!("no template number {n}: choose 1 to {}", all.len()),
        };
    }
    templates::find(ctx.hub(), &answer)
}
