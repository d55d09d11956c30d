//! The look: theme list|set|preview|show|dir.

use super::{ex, varies, Ctx, Group, Spec};
use crate::theme::{self, Origin, PromptInfo, Style, Theme};
use anyhow::{bail, Result};
use clap::{Arg, ArgMatches, Command};
use ratatui::text::{Line, Span};
use std::io::Write;

pub fn specs() -> Vec<Spec> {
    vec![Spec {
        name: "theme",
        aliases: &[],
        group: Group::System,
        summary: "List, preview and choose colour themes",
        args: || {
            let name = || {
                Arg::new("name")
                    .value_name("NAME")
                    .help("A theme name ('theme list' shows them); the current theme if left out")
            };
            Command::new("theme")
                .subcommand(
                    Command::new("list").about("Every theme, built-in and yours (the default)"),
                )
                .subcommand(
                    Command::new("set")
                        .about("Use a theme from now on (kept in config.toml)")
                        .arg(Arg::new("name").value_name("NAME").required(true)),
                )
                .subcommand(
                    Command::new("preview")
                        .about("Show a theme's prompt, highlighting, pager and editor colours")
                        .arg(name()),
                )
                .subcommand(
                    Command::new("show")
                        .about("Print a theme's TOML (a starting point for your own)")
                        .arg(name()),
                )
                .subcommand(Command::new("dir").about("Print the directory for your own themes"))
        },
        examples: const {
            &[
                varies("theme list"),
                varies("theme preview dracula"),
                ex("theme show nord | head -n 1", "# built-in theme 'nord'\n"),
                ex("theme set gruvbox", ""),
                ex("theme set neon", ""),
            ]
        },
        run: theme_cmd,
        rewrite: None,
        needs_store: true,
    }]
}

fn theme_cmd(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    ctx.hub().reload_config();
    let dir = ctx.hub().themes_dir();
    let current = ctx.hub().settings().theme.clone();
    let chosen = |a: &ArgMatches| {
        a.get_one::<String>("name")
            .cloned()
            .unwrap_or_else(|| current.clone())
    };
    match m.subcommand() {
        None | Some(("list", _)) => {
            let themes = theme::available(&dir);
            let width = themes.iter().map(|(n, _)| n.len()).max().unwrap_or(8) + 2;
            let mut out = String::new();
            let mut broken = 0;
            for (name, origin) in themes {
                let mark = if name == current { "*" } else { " " };
                let (desc, from) = match theme::load(&name, &dir) {
                    Ok(t) => (t.description, String::new()),
                    Err(e) => {
                        broken += 1;
                        let first = e.0.first().map(|p| p.to_string()).unwrap_or_default();
                        (format!("(cannot be used: {first})"), String::new())
                    }
                };
                let from = match origin {
                    Origin::Builtin => from,
                    Origin::User(p) => format!("  [{}]", p.display()),
                };
                out.push_str(&format!("{mark} {name:width$}{desc}{from}\n"));
            }
            ctx.io.stdout.write_all(out.as_bytes())?;
            if broken > 0 {
                ctx.warn(format!(
                    "{broken} theme(s) have errors; 'theme preview NAME' shows them all"
                ));
            }
        }
        Some(("set", a)) => {
            let name = a.get_one::<String>("name").expect("required");
            ctx.hub().set_setting("theme", Some(name))?;
        }
        Some(("preview", a)) => {
            // Without a name: the theme in use (the default if the chosen one is broken).
            let t = match a.get_one::<String>("name") {
                Some(name) => std::sync::Arc::new(theme::load(name, &dir)?),
                None => ctx.hub().theme(),
            };
            let color = ctx.color();
            if !color {
                ctx.warn("colour is off here (not a terminal, NO_COLOR, --no-color or 'color = never'); showing the layout only");
            }
            let mut out = String::new();
            for line in preview(&t) {
                out.push_str(&crate::ansi::line_to_ansi(&line, color));
                out.push('\n');
            }
            ctx.io.stdout.write_all(out.as_bytes())?;
        }
        Some(("show", a)) => {
            let name = chosen(a);
            let (origin, text) = theme::source(&name, &dir)?;
            let header = match origin {
                Origin::Builtin => format!("# built-in theme '{name}'\n"),
                Origin::User(p) => format!("# {}\n", p.display()),
            };
            ctx.io.stdout.write_all(header.as_bytes())?;
            ctx.io.stdout.write_all(text.as_bytes())?;
        }
        Some(("dir", _)) => writeln!(ctx.io.stdout, "{}", dir.display())?,
        Some((other, _)) => bail!("unknown action '{other}'"),
    }
    Ok(0)
}

/// A sample of everything a theme colours.
fn preview(t: &Theme) -> Vec<Line<'static>> {
    let s = |key: &str| t.style(key).to_ratatui();
    let label = |text: &str| Span::raw(format!("{text:<10}"));
    let mut out = vec![
        Line::from(vec![
            Span::styled(
                t.name.clone(),
                Style::parse("bold").unwrap_or_default().to_ratatui(),
            ),
            Span::raw(format!(" — {}", t.description)),
        ]),
        Line::default(),
    ];
    // The prompt after a success, and after a failure with jobs running.
    for (status, jobs, typed) in [
        (0, 0, "ls -l | grep \"todo\" > $OUT # mine"),
        (1, 2, "nosuchcommand"),
    ] {
        let info = PromptInfo {
            cwd: "~/Projects/Main",
            status,
            jobs,
        };
        let mut spans = vec![label(if status == 0 { "prompt" } else { "failed" })];
        for (key, text) in t.prompt_parts(None, &info) {
            spans.push(Span::styled(text, s(key)));
        }
        let line = crate::highlight::code("sh", typed, t, Style::default());
        let mut typed_spans = line.into_iter().next().map(|l| l.spans).unwrap_or_default();
        if status != 0 {
            // An unknown command, as the REPL shows it.
            typed_spans = vec![Span::styled(typed.to_string(), s("highlight.unknown"))];
        }
        spans.extend(typed_spans);
        if status == 0 {
            spans.push(Span::styled("  (hint) -n 5", s("highlight.hint")));
        }
        out.push(Line::from(spans));
    }
    out.push(Line::default());
    let page = "# sample — a manual page\n\n## Description\n\nBody text with `inline code` and **strong** words.\n\n- a list item\n\n```rhai\n// count the lines\nfn count(path) {\n    let n = read(path).split(\"\\n\").len();\n    return n + 1;\n}\n```\n\n```toml\ntheme = \"neon\" # chosen\n```\n";
    for (i, line) in crate::manual::render_lines(page, Some(t))
        .into_iter()
        .enumerate()
    {
        if line.spans.is_empty() {
            out.push(line);
            continue;
        }
        let mut spans = vec![label(if i == 0 { "pager" } else { "" })];
        spans.extend(line.spans);
        out.push(Line::from(spans));
    }
    let status = vec![
        label(""),
        Span::styled(
            " man sample  match 1/3  lines 1-9/9 (END) ",
            s("pager.status"),
        ),
        Span::raw(" "),
        Span::styled("match", s("pager.match")),
        Span::raw(" "),
        Span::styled("current", s("pager.current")),
    ];
    out.push(Line::from(status));
    out.push(Line::default());
    // The editor: line numbers, the cursor's line, a selection, a match and the status bar.
    let text = t.style("editor.text");
    let code = crate::highlight::code(
        "rhai",
        "let name = \"valyxo\";\nprint(`hello, ${name}`);\nexit(0);\n",
        t,
        text,
    );
    for (i, line) in code.into_iter().enumerate() {
        let mut spans = vec![
            label(if i == 0 { "editor" } else { "" }),
            Span::styled(format!("{:>3} ", i + 1), s("editor.line_number")),
        ];
        let mut body = line.spans;
        if i == 1 {
            let cur = t.style("editor.current_line").to_ratatui();
            body = body.into_iter().map(|sp| sp.patch_style(cur)).collect();
        }
        if i == 2 {
            body = vec![
                Span::styled("exit", t.style("editor.selection").over(text).to_ratatui()),
                Span::styled("(", text.to_ratatui()),
                Span::styled("0", t.style("editor.match").to_ratatui()),
                Span::styled(");", text.to_ratatui()),
            ];
        }
        spans.extend(body);
        out.push(Line::from(spans));
    }
    out.push(Line::from(vec![
        label(""),
        Span::styled(" hello.rhai  3:5  rhai ", s("editor.status")),
    ]));
    out.push(Line::default());
    // Command output: ls, grep and help.
    out.push(Line::from(vec![
        label("ls"),
        Span::styled("docs", s("ls.dir")),
        Span::raw("  "),
        Span::styled("host", s("ls.mount")),
        Span::raw("  "),
        Span::styled("gone", s("ls.broken")),
        Span::raw("  "),
        Span::styled("fifo", s("ls.special")),
        Span::raw("  notes.txt"),
    ]));
    out.push(Line::from(vec![
        label("grep"),
        Span::styled("notes.txt", s("grep.file")),
        Span::raw(":"),
        Span::styled("12", s("grep.line")),
        Span::raw(":a "),
        Span::styled("todo", s("grep.match")),
        Span::raw(" for later"),
    ]));
    out.push(Line::from(vec![
        label("help"),
        Span::styled("Files and directories", s("help.heading")),
    ]));
    out
}
