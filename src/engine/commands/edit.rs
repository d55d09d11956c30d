//! The editor: edit.

use super::{ex, needs, strings, Ctx, Group, Need, Spec};
use crate::recovery::{self, SCRATCH};
use anyhow::{bail, Result};
use clap::{value_parser, Arg, ArgAction, ArgMatches, Command};
use std::io::Write;

pub fn specs() -> Vec<Spec> {
    vec![Spec {
        name: "edit",
        aliases: &[],
        group: Group::Text,
        summary: "Edit files in the full-screen editor",
        args: || {
            Command::new("edit")
                .arg(
                    Arg::new("line")
                        .short('l')
                        .long("line")
                        .value_name("N")
                        .value_parser(value_parser!(u64).range(1..))
                        .help("Start on line N of the first file"),
                )
                .arg(
                    Arg::new("recovered")
                        .long("recovered")
                        .action(ArgAction::SetTrue)
                        .conflicts_with_all(["line", "discard"])
                        .help("List the unsaved changes the editor kept (or print those of FILE), and exit"),
                )
                .arg(
                    Arg::new("discard")
                        .long("discard")
                        .action(ArgAction::SetTrue)
                        .requires("files")
                        .conflicts_with("line")
                        .help("Drop the unsaved changes kept for each FILE, and exit"),
                )
                .arg(
                    Arg::new("files")
                        .value_name("FILE")
                        .num_args(0..)
                        .help("Files to open (a missing one is created when saved)"),
                )
        },
        examples: const {
            &[
                ex("edit --recovered", ""),
                needs("edit notes.md", Need::Terminal),
                needs("edit -l 40 main.rhai lib.rhai", Need::Terminal),
            ]
        },
        run: edit,
        rewrite: None,
        needs_store: true,
    }]
}

fn edit(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let files = strings(m, "files");
    let store = ctx.vfs().store().clone();
    if m.get_flag("recovered") || m.get_flag("discard") {
        // Copies are named by their file, or by a `new:…` key for a buffer without a name.
        let mut keys = Vec::new();
        for f in &files {
            keys.push(if f.starts_with(SCRATCH) || f.starts_with(recovery::KEPT) {
                f.clone()
            } else {
                ctx.path(f)?.to_string()
            });
        }
        return copies(ctx, m, &store, &keys);
    }
    let mut paths = Vec::new();
    for f in &files {
        paths.push(ctx.path(f)?);
    }
    if !ctx.on_terminal() {
        bail!(
            "the editor needs a terminal (standard input and output); \
             'edit --recovered' works anywhere"
        );
    }
    let line = m.get_one::<u64>("line").map(|&n| n as usize);
    let color = ctx.color();
    ctx.io.stdout.flush()?;
    let hub = ctx.sh.hub.clone();
    super::views()?.edit(hub, ctx.sh.cwd().clone(), &paths, line, color)?;
    Ok(0)
}

/// `edit --recovered [FILE…]` and `edit --discard FILE…`.
fn copies(
    ctx: &mut Ctx,
    m: &ArgMatches,
    store: &crate::store::Store,
    keys: &[String],
) -> Result<i32> {
    if m.get_flag("recovered") && keys.is_empty() {
        return list(ctx, store);
    }
    let mut status = 0;
    for k in keys {
        let found = if m.get_flag("discard") {
            recovery::remove(store, k)?
        } else {
            match recovery::get(store, k)? {
                Some(copy) => {
                    ctx.io.stdout.write_all(copy.text.as_bytes())?;
                    true
                }
                None => false,
            }
        };
        if !found {
            ctx.warn(format!("{k}: no unsaved changes were kept"));
            status = 1;
        }
    }
    Ok(status)
}

/// `edit --recovered`: one line per kept copy.
fn list(ctx: &mut Ctx, store: &crate::store::Store) -> Result<i32> {
    let mut out = String::new();
    for copy in recovery::list(store)? {
        let lines = copy.text.lines().count();
        let note = if copy.path.starts_with(SCRATCH) {
            "  (a buffer without a name: 'edit' offers it back)"
        } else {
            let file = recovery::kept_path(&copy.path).unwrap_or(&copy.path);
            let on_disk = ctx
                .path(file)
                .ok()
                .and_then(|p| ctx.vfs().content_hash(&p).ok());
            if on_disk != copy.disk_hash {
                "  (the file changed since)"
            } else {
                ""
            }
        };
        out.push_str(&format!(
            "{}  {}  {lines} lines{note}\n",
            super::fmt_time(copy.saved_at),
            crate::text::escape(&copy.path)
        ));
    }
    ctx.io.stdout.write_all(out.as_bytes())?;
    Ok(0)
}
