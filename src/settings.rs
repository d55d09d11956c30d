//! Settings: a fixed set of documented keys with defaults and validation, persisted in the
//! store. `settings list|get|set|reset` reads and writes them.

use anyhow::{bail, Result};

pub struct SettingDef {
    pub key: &'static str,
    pub default: &'static str,
    pub help: &'static str,
    /// Allowed values, or empty for free-form validated by `check`.
    pub choices: &'static [&'static str],
    pub check: Option<fn(&str) -> Result<()>>,
}

fn check_vfs_path(v: &str) -> Result<()> {
    crate::vfs::VPath::parse_absolute(v)
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("not a VFS path: {e}"))
}

fn check_count(v: &str) -> Result<()> {
    match v.parse::<u32>() {
        Ok(n) if n <= 256 => Ok(()),
        _ => bail!("expected a whole number from 0 to 256"),
    }
}

const BOOL: &[&str] = &["true", "false"];

pub const SETTINGS: &[SettingDef] = &[
    SettingDef {
        key: "color",
        default: "auto",
        help: "Colour output: auto (on a terminal), always, or never. NO_COLOR and --no-color always turn it off.",
        choices: &["auto", "always", "never"],
        check: None,
    },
    SettingDef {
        key: "shell.start_dir",
        default: "~/Projects/Main",
        help: "The directory a new session starts in (created when missing).",
        choices: &[],
        check: Some(check_vfs_path),
    },
    SettingDef {
        key: "repl.hints",
        default: "true",
        help: "Show the most recent matching history entry as a greyed-out suggestion while typing.",
        choices: BOOL,
        check: None,
    },
    SettingDef {
        key: "repl.highlight",
        default: "true",
        help: "Highlight the line as it is typed (commands, strings, operators).",
        choices: BOOL,
        check: None,
    },
    SettingDef {
        key: "history.ignore_space",
        default: "true",
        help: "Do not record lines that start with a space.",
        choices: BOOL,
        check: None,
    },
    SettingDef {
        key: "grep.threads",
        default: "0",
        help: "Threads grep uses to search many files; 0 picks one per CPU core.",
        choices: &[],
        check: Some(check_count),
    },
    SettingDef {
        key: "exec.writeback",
        default: "true",
        help: "After 'exec' in a stored directory, write the program's changes back into the VFS.",
        choices: BOOL,
        check: None,
    },
];

pub fn find(key: &str) -> Option<&'static SettingDef> {
    SETTINGS.iter().find(|s| s.key == key)
}

/// Checks `value` for `key` and returns it normalised (booleans and choices lower-cased).
pub fn validate(key: &str, value: &str) -> Result<String> {
    let Some(def) = find(key) else {
        let keys: Vec<String> = SETTINGS.iter().map(|s| s.key.to_string()).collect();
        let close: Vec<String> = keys
            .iter()
            .filter(|k| strsim::jaro_winkler(k, key) > 0.8)
            .cloned()
            .collect();
        if close.is_empty() {
            bail!("unknown setting '{key}'; 'settings list' shows them all");
        }
        bail!(
            "unknown setting '{key}'. Did you mean {}?",
            crate::shell::quote_list(&close)
        );
    };
    let v = value.trim();
    if !def.choices.is_empty() {
        let lower = v.to_ascii_lowercase();
        if !def.choices.contains(&lower.as_str()) {
            bail!(
                "'{v}' is not a valid value for {key}: expected {}",
                def.choices.join(", ")
            );
        }
        return Ok(lower);
    }
    if let Some(check) = def.check {
        check(v).map_err(|e| anyhow::anyhow!("'{v}' is not a valid value for {key}: {e}"))?;
    }
    Ok(v.to_string())
}
