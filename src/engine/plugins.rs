//! Plugins (engine): Rhai scripts that add shell commands (`man plugin`).
//!
//! A plugin script defines a function `plugin()` that returns its manifest:
//!
//! ```rhai
//! fn greet(args) { print(`hello ${args[0]}`); 0 }
//! fn plugin() {
//!     #{ name: "greetings", version: "1.0", description: "Friendly commands",
//!        commands: [#{ name: "greet", summary: "Greet someone", usage: "greet NAME",
//!                      help: "Prints a greeting.", run: "greet" }] }
//! }
//! ```
//!
//! `plugin install` runs `plugin()`, checks the manifest and stores the script with its
//! commands. A plugin command is called with its arguments as an array of strings; its handler
//! returns the exit status (an integer; `()` means 0, `false` means 1).

use crate::hub::Hub;
use crate::script::{self, Host, Limits, Origin, Source};
use anyhow::{bail, Context, Result};
use rhai::{Dynamic, Map, Scope};
use rusqlite::{params, OptionalExtension};
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct PluginCommand {
    pub name: String,
    pub plugin: String,
    pub summary: String,
    pub usage: String,
    pub help: String,
    pub handler: String,
}

#[derive(Clone, Debug)]
pub struct Plugin {
    pub name: String,
    pub version: String,
    pub description: String,
    pub commands: Vec<PluginCommand>,
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn text(m: &Map, key: &str, what: &str, required: bool) -> Result<String> {
    match m.get(key) {
        Some(v) if v.is_string() => Ok(v.clone().cast::<String>()),
        Some(v) if v.is_unit() && !required => Ok(String::new()),
        None if !required => Ok(String::new()),
        None => bail!("{what} has no '{key}'"),
        Some(v) => bail!("{what}: '{key}' must be a string, not {}", v.type_name()),
    }
}

/// Reads and checks the manifest returned by `plugin()`.
fn manifest(v: Dynamic, ast: &rhai::AST) -> Result<Plugin> {
    let m = v
        .try_cast::<Map>()
        .context("plugin() must return an object map: #{ name: ..., commands: [...] }")?;
    let name = text(&m, "name", "the manifest", true)?;
    if !is_name(&name) {
        bail!("'{name}' is not a valid plugin name (letters, digits, '-' and '_')");
    }
    let version = text(&m, "version", "the manifest", false)?;
    let description = text(&m, "description", "the manifest", false)?;
    let cmds = m
        .get("commands")
        .cloned()
        .and_then(|c| c.try_cast::<rhai::Array>())
        .context("the manifest needs 'commands', an array of command maps")?;
    if cmds.is_empty() {
        bail!("the plugin defines no commands");
    }
    let mut commands = Vec::new();
    for (i, c) in cmds.into_iter().enumerate() {
        let what = format!("command {}", i + 1);
        let c = c
            .try_cast::<Map>()
            .with_context(|| format!("{what} must be a map: #{{ name: ..., run: ... }}"))?;
        let cname = text(&c, "name", &what, true)?;
        if !is_name(&cname) {
            bail!("'{cname}' is not a valid command name (letters, digits, '-' and '_')");
        }
        if crate::commands::registry().get(&cname).is_some() {
            bail!("'{cname}' is a built-in command; a plugin cannot replace it");
        }
        let handler = text(&c, "run", &format!("command '{cname}'"), true)?;
        if !ast
            .iter_functions()
            .any(|f| f.name == handler && f.params.len() == 1)
        {
            bail!("command '{cname}': the script has no function {handler}(args) to run it");
        }
        let summary = text(&c, "summary", &format!("command '{cname}'"), false)?;
        let usage = text(&c, "usage", &format!("command '{cname}'"), false)?;
        commands.push(PluginCommand {
            usage: if usage.is_empty() {
                cname.clone()
            } else {
                usage
            },
            summary: if summary.is_empty() {
                format!("Command from the {name} plugin")
            } else {
                summary
            },
            help: text(&c, "help", &format!("command '{cname}'"), false)?,
            name: cname,
            plugin: name.clone(),
            handler,
        });
    }
    Ok(Plugin {
        name,
        version: if version.is_empty() {
            "0".into()
        } else {
            version
        },
        description,
        commands,
    })
}

/// Compiles a plugin script and calls its `plugin()` function.
fn load(host: &Arc<Host>, src: &Source) -> Result<Plugin> {
    let limits = Limits::from_settings(&host.hub());
    let r = script::on_script_thread(&limits.budget(), || -> Result<Plugin> {
        let engine = script::engine(host, &limits, &src.origin);
        let ast = script::compile(&engine, &src.rhai)
            .map_err(|e| anyhow::anyhow!("{}", script::report(src, &e).0.trim_end()))?;
        if !ast
            .iter_functions()
            .any(|f| f.name == "plugin" && f.params.is_empty())
        {
            bail!(
                "{}: a plugin script defines fn plugin() returning its manifest (see 'man plugin')",
                src.origin.name()
            );
        }
        let v: Dynamic =
            script::guard::finished(engine.call_fn(&mut Scope::new(), &ast, "plugin", ()))
                .map_err(|e| anyhow::anyhow!("{}", script::report(src, &e).0.trim_end()))?;
        manifest(v, &ast)
    });
    r.map_err(anyhow::Error::msg)?
}

/// Installs (or replaces) the plugin in a script file.
pub fn install(host: &Arc<Host>, origin: Origin, bytes: Vec<u8>) -> Result<Plugin> {
    let src = Source::from_file(origin, bytes).map_err(anyhow::Error::msg)?;
    if src.legacy.is_some() {
        bail!("plugins are written in Rhai (.rhai), not ValyxoScript");
    }
    let p = load(host, &src)?;
    let hub = host.hub();
    hub.store.tx(|tx| {
        for c in &p.commands {
            let owner: Option<String> = tx
                .query_row(
                    "SELECT plugin FROM plugin_commands WHERE name = ?1",
                    [&c.name],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(o) = owner.filter(|o| *o != p.name) {
                bail!(
                    "command '{}' is already provided by the plugin '{o}'",
                    c.name
                );
            }
        }
        tx.execute("DELETE FROM plugins WHERE name = ?1", [&p.name])?;
        tx.execute(
            "INSERT INTO plugins (name, version, description, source, installed_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                p.name,
                p.version,
                p.description,
                src.rhai,
                crate::store::now_ms()
            ],
        )?;
        for c in &p.commands {
            tx.execute(
                "INSERT INTO plugin_commands (name, plugin, summary, usage, help, handler)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![c.name, p.name, c.summary, c.usage, c.help, c.handler],
            )?;
        }
        Ok(())
    })?;
    Ok(p)
}

pub fn remove(hub: &Hub, name: &str) -> Result<()> {
    let n = hub
        .store
        .conn()
        .execute("DELETE FROM plugins WHERE name = ?1", [name])?;
    if n == 0 {
        bail!("no plugin named '{name}'; 'plugin list' shows them");
    }
    Ok(())
}

fn row_cmd(r: &rusqlite::Row) -> rusqlite::Result<PluginCommand> {
    Ok(PluginCommand {
        name: r.get(0)?,
        plugin: r.get(1)?,
        summary: r.get(2)?,
        usage: r.get(3)?,
        help: r.get(4)?,
        handler: r.get(5)?,
    })
}

/// Every plugin command, by name.
pub fn commands(hub: &Hub) -> Vec<PluginCommand> {
    let conn = hub.store.conn();
    let r = conn
        .prepare_cached(
            "SELECT name, plugin, summary, usage, help, handler FROM plugin_commands ORDER BY name",
        )
        .and_then(|mut st| st.query_map([], row_cmd)?.collect());
    r.unwrap_or_default()
}

pub fn command(hub: &Hub, name: &str) -> Option<PluginCommand> {
    let conn = hub.store.conn();
    conn.prepare_cached(
        "SELECT name, plugin, summary, usage, help, handler FROM plugin_commands WHERE name = ?1",
    )
    .and_then(|mut st| st.query_row([name], row_cmd).optional())
    .ok()
    .flatten()
}

pub fn list(hub: &Hub) -> Result<Vec<Plugin>> {
    let rows: Vec<(String, String, String)> = {
        let conn = hub.store.conn();
        let mut st =
            conn.prepare_cached("SELECT name, version, description FROM plugins ORDER BY name")?;
        let r = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        r.collect::<rusqlite::Result<_>>()?
    };
    let cmds = commands(hub);
    Ok(rows
        .into_iter()
        .map(|(name, version, description)| Plugin {
            commands: cmds.iter().filter(|c| c.plugin == name).cloned().collect(),
            name,
            version,
            description,
        })
        .collect())
}

/// The manual page of a plugin command, generated from its manifest.
pub fn page(c: &PluginCommand) -> String {
    let help = if c.help.is_empty() {
        c.summary.clone()
    } else {
        c.help.clone()
    };
    format!(
        "# {} — {}\n\n## Synopsis\n\n```text\n{}\n```\n\n## Description\n\n{help}\n\nThis command comes from the plugin `{}` ('plugin list'; 'man plugin').\n",
        c.name, c.summary, c.usage, c.plugin
    )
}

/// Runs a plugin command: `--help` prints its usage; otherwise its handler gets the arguments.
pub fn run(host: &Arc<Host>, c: &PluginCommand, args: &[String]) -> i32 {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        host.write_out(&format!(
            "{}\n\nUsage: {}\n\n{}See 'man {}' for details.\n",
            c.summary,
            c.usage,
            if c.help.is_empty() {
                String::new()
            } else {
                format!("{}\n\n", c.help)
            },
            c.name
        ));
        return 0;
    }
    let hub = host.hub();
    let source: Option<String> = hub
        .store
        .conn()
        .query_row(
            "SELECT source FROM plugins WHERE name = ?1",
            [&c.plugin],
            |r| r.get(0),
        )
        .optional()
        .ok()
        .flatten();
    let Some(source) = source else {
        host.write_err(&format!("{}: the plugin '{}' is gone\n", c.name, c.plugin));
        return 1;
    };
    let src = Source {
        origin: Origin::Inline(format!("plugin {}", c.plugin)),
        rhai: source,
        legacy: None,
    };
    let limits = Limits::from_settings(&hub);
    let argv: rhai::Array = args.iter().map(|a| Dynamic::from(a.clone())).collect();
    let r = script::on_script_thread(&limits.budget(), || {
        let engine = script::engine(host, &limits, &src.origin);
        let ast = script::compile(&engine, &src.rhai)?;
        script::guard::finished(engine.call_fn::<Dynamic>(
            &mut Scope::new(),
            &ast,
            &c.handler,
            (argv,),
        ))
    });
    match r {
        Ok(Ok(v)) => {
            if let Some(n) = v.clone().try_cast::<i64>() {
                n.clamp(0, 255) as i32
            } else if let Some(b) = v.clone().try_cast::<bool>() {
                i32::from(!b)
            } else {
                0
            }
        }
        Ok(Err(e)) => script::status_of(host, &src, &e),
        Err(msg) => {
            host.write_err(&format!("{}: {msg}\n", c.name));
            1
        }
    }
}
