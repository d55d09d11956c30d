//! Editor snippets: snippets (engine).

use super::{ex, Ctx, Group, Spec};
use crate::snippets::{Library, Origin, LANGUAGES};
use anyhow::Result;
use clap::{builder::PossibleValuesParser, Arg, ArgMatches, Command};
use std::io::Write;

pub fn specs() -> Vec<Spec> {
    vec![Spec {
        name: "snippets",
        aliases: &[],
        group: Group::Text,
        summary: "List the editor's snippets, built-in and yours, per language",
        args: || {
            Command::new("snippets").arg(
                Arg::new("lang")
                    .long("lang")
                    .value_name("LANG")
                    .value_parser(PossibleValuesParser::new(LANGUAGES))
                    .help("Only this language's snippets"),
            )
        },
        examples: const {
            &[
                ex(
                    "snippets --lang css",
                    "css:\n  flex   a flex container\n  media  a media query\n  rule   a rule\n  var    a custom property on :root\n",
                ),
                ex("snippets --lang rhai | head -n 2", "rhai:\n  fn   a function\n"),
            ]
        },
        run: snippets_cmd,
        rewrite: None,
        needs_store: true,
    }]
}

fn snippets_cmd(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let langs: Vec<&str> = match m.get_one::<String>("lang") {
        Some(l) => vec![l.as_str()],
        None => LANGUAGES.to_vec(),
    };
    let mut lib = Library::default();
    lib.refresh(ctx.vfs());
    let mut out = String::new();
    let mut problems = Vec::new();
    for lang in langs {
        if let Some(p) = lib.problem(lang) {
            problems.push(format!("{p} (its snippets are left out)"));
        }
        let all = lib.all(lang);
        let shown: Vec<String> = all
            .iter()
            .map(|s| crate::text::escape(&s.prefix).into_owned())
            .collect();
        let width = shown.iter().map(|p| p.chars().count()).max().unwrap_or(0);
        out.push_str(&format!("{lang}:\n"));
        for (s, prefix) in all.iter().zip(&shown) {
            let from = match &s.origin {
                Origin::Builtin => String::new(),
                Origin::User {
                    file,
                    overrides: true,
                } => format!("  (yours, {file}; over the built-in)"),
                Origin::User { file, .. } => format!("  (yours, {file})"),
            };
            // Without a description, the start of the body says what it is.
            let what = match s.description.trim() {
                "" => s.body.lines().next().unwrap_or_default(),
                d => d,
            };
            let what = crate::text::clean_message(what, 60).replace(['\n', '\t'], " ");
            out.push_str(&format!("  {prefix:<width$}  {what}{from}\n"));
        }
    }
    ctx.io.stdout.write_all(out.as_bytes())?;
    for p in &problems {
        ctx.warn(p);
    }
    Ok(i32::from(!problems.is_empty()))
}
