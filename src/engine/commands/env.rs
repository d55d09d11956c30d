//! Shell state: env, export, unset, alias, unalias.

use super::{ex, strings, Ctx, Group, Spec};
use crate::store::KvTable;
use anyhow::{bail, Result};
use clap::{Arg, ArgAction, ArgMatches, Command};
use std::io::Write;

pub fn specs() -> Vec<Spec> {
    vec![
        Spec {
            name: "env",
            aliases: &[],
            group: Group::Shell,
            summary: "Show Valyxo's variables",
            args: || {
                Command::new("env").arg(
                    Arg::new("name")
                        .value_name("NAME")
                        .help("Print only this variable's value"),
                )
            },
            examples: const {
                &[
                    ex("export EDITOR=hx", ""),
                    ex("env", "EDITOR=hx\nPWD=/Projects/Main\n"),
                    ex("env EDITOR", "hx\n"),
                ]
            },
            run: env,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "export",
            aliases: &[],
            group: Group::Shell,
            summary: "Set persistent variables, or copy a VFS tree out to the host",
            args: || {
                Command::new("export")
                    .override_usage("export [NAME=VALUE]…\n       export [-f] VFSPATH HOSTPATH")
                    .arg(
                        Arg::new("force")
                            .short('f')
                            .long("force")
                            .action(ArgAction::SetTrue)
                            .help("With two paths: overwrite host files that already exist"),
                    )
                    .arg(Arg::new("items").num_args(0..).value_name("NAME=VALUE | VFSPATH HOSTPATH").help(
                        "NAME=VALUE sets a variable kept across sessions; two paths (no '=') copy the VFS file or directory VFSPATH to HOSTPATH on the host",
                    ))
            },
            examples: const {
                &[
                    ex("export GREETING=hello", ""),
                    ex("echo $GREETING", "hello\n"),
                    ex("export", "export GREETING=hello\n"),
                ]
            },
            run: export,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "unset",
            aliases: &[],
            group: Group::Shell,
            summary: "Remove variables",
            args: || {
                Command::new("unset").arg(
                    Arg::new("names")
                        .num_args(1..)
                        .required(true)
                        .value_name("NAME"),
                )
            },
            examples: const { &[ex("export TMPVAR=1", ""), ex("unset TMPVAR", "")] },
            run: unset,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "alias",
            aliases: &[],
            group: Group::Shell,
            summary: "Define or list aliases",
            args: || {
                Command::new("alias").arg(
                    Arg::new("defs")
                        .num_args(0..)
                        .value_name("NAME[=VALUE]")
                        .help("NAME=VALUE defines an alias; NAME alone shows it"),
                )
            },
            examples: const {
                &[
                    ex("alias ll='ls -l'", ""),
                    ex("ll", ""),
                    ex("alias", "alias ll='ls -l'\n"),
                ]
            },
            run: alias,
            rewrite: None,
            needs_store: false,
        },
        Spec {
            name: "unalias",
            aliases: &[],
            group: Group::Shell,
            summary: "Remove aliases",
            args: || {
                Command::new("unalias")
                    .arg(
                        Arg::new("all")
                            .short('a')
                            .long("all")
                            .action(ArgAction::SetTrue)
                            .help("Remove every alias"),
                    )
                    .arg(
                        Arg::new("names")
                            .num_args(0..)
                            .value_name("NAME")
                            .required_unless_present("all"),
                    )
            },
            examples: const { &[ex("alias gs='grep -rn'", ""), ex("unalias gs", "")] },
            run: unalias,
            rewrite: None,
            needs_store: false,
        },
    ]
}

pub(crate) fn valid_var_name(n: &str) -> bool {
    let mut cs = n.chars();
    cs.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn env(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    if let Some(name) = m.get_one::<String>("name") {
        return match ctx.sh.var(name) {
            Some(v) => {
                writeln!(ctx.io.stdout, "{v}")?;
                Ok(0)
            }
            None => Ok(1),
        };
    }
    let mut vars: std::collections::BTreeMap<String, String> =
        ctx.hub().store.kv_list(KvTable::Env)?.into_iter().collect();
    vars.extend(ctx.sh.vars.clone());
    vars.insert("PWD".into(), ctx.sh.cwd().to_string());
    if let Some(o) = &ctx.sh.oldpwd {
        vars.insert("OLDPWD".into(), o.to_string());
    }
    let mut out = String::new();
    for (k, v) in vars {
        out.push_str(&format!("{k}={v}\n"));
    }
    ctx.io.stdout.write_all(out.as_bytes())?;
    Ok(0)
}

fn export(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let items = strings(m, "items");
    if items.is_empty() {
        let mut out = String::new();
        for (k, v) in ctx.hub().store.kv_list(KvTable::Env)? {
            out.push_str(&format!("export {k}={}\n", crate::text::shell_quote(&v)));
        }
        ctx.io.stdout.write_all(out.as_bytes())?;
        return Ok(0);
    }
    if items.len() == 2 && !items.iter().any(|i| i.contains('=')) {
        return super::transfer::export_tree(ctx, &items[0], &items[1], m.get_flag("force"));
    }
    let mut status = 0;
    for item in &items {
        let (name, value) = match item.split_once('=') {
            Some((n, v)) => (n.to_string(), v.to_string()),
            None => match ctx.sh.vars.get(item.as_str()) {
                Some(v) => (item.clone(), v.clone()),
                None => {
                    ctx.warn(format!(
                        "'{item}' has no value: use 'export {item}=VALUE' (to copy files out to the host: 'export VFSPATH HOSTPATH')"
                    ));
                    status = 1;
                    continue;
                }
            },
        };
        if !valid_var_name(&name) {
            ctx.warn(format!("'{name}' is not a valid variable name (letters, digits and _, not starting with a digit)"));
            status = 1;
            continue;
        }
        if crate::history::secret_variable(&name, &value) {
            warn_of_secret(ctx, &name);
        }
        // Still set: it was asked for, and the warning says what that means.
        ctx.hub().store.kv_set(KvTable::Env, &name, &value)?;
        ctx.sh.vars.remove(&name);
    }
    Ok(status)
}

/// Says, for a variable that holds a secret, that the line is kept out of history and where
/// the value does go; for the assistant's key, where it belongs instead.
fn warn_of_secret(ctx: &mut Ctx, name: &str) {
    let mut msg = format!(
        "{name} looks like a secret, so its value is not kept in history; but exported \
         variables are kept in the store in plain text and handed to every program 'exec' runs"
    );
    if crate::assistant::key::env_vars().contains(&name) {
        msg.push_str(&format!(
            ". The assistant does not read {name} exported here: 'ai key set' stores its key \
             in the OS keyring (then 'unset {name}')"
        ));
    } else {
        msg.push_str(&format!(" ('unset {name}' removes it)"));
    }
    ctx.warn(msg);
}

fn unset(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    for n in strings(m, "names") {
        ctx.sh.vars.remove(&n);
        ctx.hub().store.kv_remove(KvTable::Env, &n)?;
    }
    Ok(0)
}

fn alias(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let defs = strings(m, "defs");
    let hub = ctx.sh.hub.clone();
    if defs.is_empty() {
        let mut out = String::new();
        for (k, v) in hub.aliases() {
            let k = crate::text::escape(&k);
            out.push_str(&format!("alias {k}={}\n", crate::text::shell_quote(&v)));
        }
        ctx.io.stdout.write_all(out.as_bytes())?;
        return Ok(0);
    }
    let mut status = 0;
    for d in defs {
        match d.split_once('=') {
            Some((name, value)) => {
                if let Err(e) = crate::aliases::check_name(name) {
                    ctx.warn(e.to_string());
                    status = 1;
                    continue;
                }
                if value.trim().is_empty() {
                    bail!("alias '{name}' needs a value (to remove it: unalias {name})");
                }
                if let Err(e) = crate::shell::parse::parse(value) {
                    if !e.incomplete {
                        bail!("alias '{name}' does not parse: {}", e.render(value));
                    }
                }
                hub.set_aliases(&[(name, Some(value))])?;
            }
            None => match hub.alias(&d) {
                Some(v) => writeln!(ctx.io.stdout, "alias {d}={}", crate::text::shell_quote(&v))?,
                None => {
                    ctx.warn(format!("{}: no such alias", crate::text::escape(&d)));
                    status = 1;
                }
            },
        }
    }
    Ok(status)
}

fn unalias(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let hub = ctx.sh.hub.clone();
    if m.get_flag("all") {
        let all = hub.aliases();
        let changes: Vec<(&str, Option<&str>)> = all.keys().map(|k| (k.as_str(), None)).collect();
        hub.set_aliases(&changes)?;
        return Ok(0);
    }
    let mut status = 0;
    for n in strings(m, "names") {
        if hub.alias(&n).is_none() {
            ctx.warn(format!("{}: no such alias", crate::text::escape(&n)));
            status = 1;
            continue;
        }
        hub.set_aliases(&[(&n, None)])?;
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::parse::{parse, Part};
    use crate::text::shell_quote;
    use proptest::prelude::*;

    /// Text full of what the shell treats specially.
    fn tricky() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                any::<char>().prop_filter("no NUL", |c| *c != '\0'),
                proptest::sample::select("'\"\\$`~*?[]{} \n\t;|&<>#=%".chars().collect::<Vec<_>>()),
            ],
            0..24,
        )
        .prop_map(|cs| cs.into_iter().collect())
    }

    proptest! {
        /// Whatever the text, its quoted form parses back as exactly one word that is exactly
        /// that text: no variable, no `~`, and no wildcard unless quoted.
        #[test]
        fn quoted_text_parses_back_as_one_word(text in tricky()) {
            let line = format!("echo {} done", shell_quote(&text));
            let script = parse(&line).unwrap();
            prop_assert_eq!(script.items.len(), 1);
            let cmd = &script.items[0].and_or.first.commands[0];
            prop_assert_eq!(cmd.words.len(), 3);
            prop_assert!(cmd.redirects.is_empty());
            let mut got = String::new();
            for part in &cmd.words[1].parts {
                match part {
                    Part::Lit { text: t, quoted } => {
                        prop_assert!(*quoted || !t.contains(['*', '?', '[']));
                        got.push_str(t);
                    }
                    other => prop_assert!(false, "{:?} in {:?}", other, line),
                }
            }
            prop_assert_eq!(got, text);
        }
    }

    /// What `export` and `alias` print runs back to the same values (an alias is never
    /// empty: `alias a=''` is refused).
    #[test]
    fn listed_variables_and_aliases_read_back() {
        let home = tempfile::tempdir().unwrap();
        let hub = crate::hub::Hub::open(crate::hub::HubOptions {
            home: Some(home.path().to_path_buf()),
            no_color: true,
            ..Default::default()
        })
        .unwrap();
        let mut sh = crate::shell::Session::new(hub.clone(), false).unwrap();
        let values = [
            "it's $HOME and `x`",
            "a\nb\tc",
            "*.txt ~ [x]",
            "\\",
            "ls -l | wc",
        ];
        for v in values {
            hub.store.kv_set(KvTable::Env, "V", v).unwrap();
            hub.set_aliases(&[("a", Some(v))]).unwrap();
            let (mut io, out, _) = crate::shell::io::Io::capture();
            assert_eq!(sh.run("export; alias", &mut io), 0);
            let listed = String::from_utf8(out.lock().unwrap().clone()).unwrap();
            hub.store.kv_remove(KvTable::Env, "V").unwrap();
            hub.set_aliases(&[("a", None)]).unwrap();
            let (mut io, _, err) = crate::shell::io::Io::capture();
            let status = sh.run(&listed, &mut io);
            let err = String::from_utf8_lossy(&err.lock().unwrap()).into_owned();
            assert_eq!(status, 0, "{listed:?}: {err}");
            assert_eq!(
                hub.store.kv_get(KvTable::Env, "V").unwrap().as_deref(),
                Some(v)
            );
            assert_eq!(hub.alias("a").as_deref(), Some(v));
        }
    }
}
