//! The manual: man.

use super::{ex, varies, Ctx, Group, Spec};
use crate::manual;
use anyhow::{bail, Result};
use clap::{Arg, ArgMatches, Command};
use std::io::Write;

pub fn specs() -> Vec<Spec> {
    vec![Spec {
        name: "man",
        aliases: &[],
        group: Group::System,
        summary: "Show a manual page, or list them all",
        args: || {
            Command::new("man")
                .arg(
                    Arg::new("search")
                        .short('k')
                        .long("search")
                        .value_name("WORD")
                        .conflicts_with("page")
                        .help("Search names, summaries and text of all pages for WORD, best first"),
                )
                .arg(
                    Arg::new("page")
                        .value_name("PAGE")
                        .help("A command (or alias) or a topic such as shell, vfs or scripting"),
                )
        },
        examples: const {
            &[
                varies("man"),
                varies("man ls"),
                ex(
                    "man shell | head -n 1",
                    "shell — The Valyxo shell language\n",
                ),
                varies("man -k background"),
            ]
        },
        run: man,
        rewrite: None,
        needs_store: true,
    }]
}

fn man(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    if let Some(q) = m.get_one::<String>("search") {
        let hits = manual::search(q);
        if hits.is_empty() {
            ctx.warn(format!("nothing appropriate for '{q}'"));
            return Ok(1);
        }
        let width = hits.iter().map(|h| h.0.len()).max().unwrap_or(8) + 2;
        let mut out = String::new();
        for (name, summary) in hits {
            out.push_str(&format!("{name:width$}{summary}\n"));
        }
        ctx.io.stdout.write_all(out.as_bytes())?;
        return Ok(0);
    }
    let Some(name) = m.get_one::<String>("page") else {
        return index(ctx);
    };
    let Some((_, src)) = manual::resolve(name) else {
        if let Some(c) = crate::plugins::command(ctx.hub(), name) {
            let page = crate::plugins::page(&c);
            return show(ctx, name, &page);
        }
        let sugg = manual::suggest(name);
        if sugg.is_empty() {
            bail!("no manual page for '{name}'; 'man' lists them all");
        }
        bail!(
            "no manual page for '{name}'. Did you mean {}?",
            crate::text::quote_list(&sugg)
        );
    };
    show(ctx, name, src)
}

/// Shows a page: in the pager, styled by the theme, when standard output is a terminal
/// (and `man.pager` is on); as plain text otherwise.
fn show(ctx: &mut Ctx, name: &str, src: &str) -> Result<i32> {
    if !(ctx.io.stdout.is_tty() && ctx.hub().settings().man.pager) {
        ctx.io.stdout.write_all(manual::render(src).as_bytes())?;
        return Ok(0);
    }
    let color = ctx.color();
    let theme = ctx.hub().theme();
    let lines = manual::render_lines(src, color.then_some(&*theme));
    ctx.io.stdout.flush()?;
    super::views()?.page(&format!("man {name}"), lines, &theme, color)?;
    Ok(0)
}

/// Lists every page by section: commands in the groups `help` uses, then topics, each
/// with its summary.
fn index(ctx: &mut Ctx) -> Result<i32> {
    let paint = ctx.paint();
    let pages = manual::pages();
    let width = pages.iter().map(|(n, _)| n.len()).max().unwrap_or(8) + 2;
    let reg = super::registry();
    let mut out = String::new();
    let section = |title: &str, names: Vec<&str>, out: &mut String| {
        if names.is_empty() {
            return;
        }
        out.push_str(&paint.paint("help.heading", title));
        out.push('\n');
        for n in names {
            let summary = manual::summary(n).unwrap_or("");
            out.push_str(&format!("  {n:width$}{summary}\n"));
        }
        out.push('\n');
    };
    for group in super::Group::ALL {
        let names: Vec<&str> = pages
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| manual::is_command(n) && reg.get(n).is_some_and(|s| s.group == group))
            .collect();
        section(&format!("Commands: {}", group.title()), names, &mut out);
    }
    let topics: Vec<&str> = pages
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !manual::is_command(n) || *n == "jobs")
        .collect();
    section("Topics", topics, &mut out);
    let plugins = crate::plugins::commands(ctx.hub());
    if !plugins.is_empty() {
        out.push_str(&paint.paint("help.heading", "Plugin commands"));
        out.push('\n');
        for c in plugins {
            out.push_str(&format!("  {:width$}{}\n", c.name, c.summary));
        }
        out.push('\n');
    }
    out.push_str("Type 'man PAGE' to read a page.\n");
    ctx.io.stdout.write_all(out.as_bytes())?;
    Ok(0)
}
