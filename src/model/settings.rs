//! Settings (model): a fixed set of documented keys with defaults and validation, kept in
//! `config.toml` (see [`crate::config`]). `settings list|get|set|reset` reads and writes them.

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

fn check_url(v: &str) -> Result<()> {
    let v = v.trim();
    let rest = v
        .strip_prefix("http://")
        .or_else(|| v.strip_prefix("https://"))
        .ok_or_else(|| anyhow::anyhow!("expected a URL starting with http:// or https://"))?;
    if rest.is_empty()
        || rest.starts_with('/')
        || v.chars().any(char::is_whitespace)
        || v.parse::<http::Uri>().map_or(true, |u| u.host().is_none())
    {
        bail!("expected a URL such as http://localhost:11434/v1");
    }
    Ok(())
}

fn check_model(v: &str) -> Result<()> {
    if v.trim().is_empty() {
        bail!("expected a model name");
    }
    Ok(())
}

fn check_tab_width(v: &str) -> Result<()> {
    match v.parse::<u32>() {
        Ok(n) if (1..=16).contains(&n) => Ok(()),
        _ => bail!("expected a whole number from 1 to 16"),
    }
}

fn check_number(v: &str) -> Result<()> {
    match v.parse::<u64>() {
        Ok(_) => Ok(()),
        _ => bail!("expected a whole number (0 means no limit)"),
    }
}

fn check_duration(v: &str) -> Result<()> {
    parse_duration(v).map(|_| ())
}

fn check_size(v: &str) -> Result<()> {
    parse_size(v).map(|_| ())
}

fn check_file_size(v: &str) -> Result<()> {
    match parse_size(v)? {
        0 => bail!("expected a size of at least 1 byte"),
        n if n > 1 << 30 => bail!("at most 1G (the stored tree's own limit)"),
        _ => Ok(()),
    }
}

/// `0`, `250ms`, `5s`, `2m`, `1h` or a bare number of seconds (`1.5`). Zero means no limit.
pub fn parse_duration(v: &str) -> Result<std::time::Duration> {
    let v = v.trim();
    let (num, unit) = match v.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&v[..i], v[i..].trim()),
        None => (v, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("expected a duration such as 500ms, 5s, 2m or 1h"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "sec" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => bail!("unknown unit '{unit}' in '{v}': use ms, s, m, h or d"),
    };
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        bail!("duration '{v}' is out of range");
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// Parses a size: `1048576`, `512K`, `1MiB`, `32M`, `1G` (units of 1024).
pub fn parse_size(v: &str) -> Result<u64> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let n: u64 = v[..split]
        .parse()
        .map_err(|_| anyhow::anyhow!("expected a size such as 65536, 512K, 1M or 1G"))?;
    let shift = match v[split..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        u => bail!("unknown unit '{u}' in '{v}': use K, M or G"),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| anyhow::anyhow!("size '{v}' is out of range"))
}

pub const BOOL: &[&str] = &["true", "false"];

pub const SETTINGS: &[SettingDef] = &[
    SettingDef {
        key: "color",
        default: "auto",
        help: "Colour output: auto (on a terminal), always, or never. NO_COLOR and --no-color always turn it off.",
        choices: &["auto", "always", "never"],
        check: None,
    },
    SettingDef {
        key: "theme",
        default: "neon",
        help: "The theme: colours of the prompt, highlighting, pager and editor ('theme list' shows them).",
        choices: &[],
        check: Some(check_theme),
    },
    SettingDef {
        key: "prompt.format",
        default: "",
        help: "The prompt, overriding the theme's: text with {app} {cwd} {status} {jobs} {time} {user} {host}; empty uses the theme's.",
        choices: &[],
        check: Some(check_prompt),
    },
    SettingDef {
        key: "man.pager",
        default: "true",
        help: "Show manual pages in the built-in pager on a terminal (false prints them).",
        choices: BOOL,
        check: None,
    },
    SettingDef {
        key: "editor.tab_width",
        default: "4",
        help: "Columns between tab stops in the editor: how a tab is shown, and how many spaces Tab inserts.",
        choices: &[],
        check: Some(check_tab_width),
    },
    SettingDef {
        key: "editor.soft_tabs",
        default: "true",
        help: "Tab in the editor inserts spaces (false inserts a tab character).",
        choices: BOOL,
        check: None,
    },
    SettingDef {
        key: "editor.keymap",
        default: "default",
        help: "The editor's keys: default (as in micro and VS Code) or nano. Any key can be bound as well under [editor.keys] in config.toml ('man editor').",
        choices: crate::keymap::KEYMAPS,
        check: None,
    },
    SettingDef {
        key: "editor.auto_pairs",
        default: "true",
        help: "Typing an opening bracket or quote in the editor adds its closing one, and typing the closing one steps over it.",
        choices: BOOL,
        check: None,
    },
    SettingDef {
        key: "editor.system_clipboard",
        default: "true",
        help: "Copy and cut in the editor also put the text on the system clipboard, through the terminal (OSC 52).",
        choices: BOOL,
        check: None,
    },
    SettingDef {
        key: "sync.server",
        default: "http://127.0.0.1:8080",
        help: "The account server that login and register use when --server is not given: https://HOST, or http:// to this machine only.",
        choices: &[],
        check: Some(check_url),
    },
    SettingDef {
        key: "assistant.url",
        default: "https://api.openai.com/v1",
        help: "The base URL of an OpenAI-compatible API: OpenAI, or a local server such as Ollama (http://localhost:11434/v1) or llama.cpp (http://localhost:8080/v1).",
        choices: &[],
        check: Some(check_url),
    },
    SettingDef {
        key: "assistant.model",
        default: "gpt-4o-mini",
        help: "The model the assistant asks for (for Ollama, a pulled model such as llama3.2).",
        choices: &[],
        check: Some(check_model),
    },
    SettingDef {
        key: "assistant.persona",
        default: "default",
        help: "The persona for new conversations: default, explain, review, test-writer or architect.",
        choices: &["default", "explain", "review", "test-writer", "architect"],
        check: None,
    },
    SettingDef {
        key: "assistant.timeout",
        default: "60s",
        help: "How long to wait for the assistant to start answering, and the longest it may fall silent mid-answer (0 waits for ever).",
        choices: &[],
        check: Some(check_duration),
    },
    SettingDef {
        key: "assistant.max_answer",
        default: "4M",
        help: "The longest answer the assistant may give (512K, 4M, 1G); a longer one is cut there, the part received kept, and 'ask' fails saying so; 0 means no limit.",
        choices: &[],
        check: Some(check_size),
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
        help: "Threads grep uses to search many files; 0 picks one per CPU core plus one, so the search goes on while a thread waits on the disk.",
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
    SettingDef {
        key: "script.max_operations",
        default: "0",
        help: "Operations a script may perform before it is stopped; 0 means no limit.",
        choices: &[],
        check: Some(check_number),
    },
    SettingDef {
        key: "script.max_call_depth",
        default: "64",
        help: "Deepest nesting of function calls in a script (recursion depth).",
        choices: &[],
        check: Some(check_count),
    },
    SettingDef {
        key: "script.max_string_size",
        default: "16777216",
        help: "Longest string a script may build, in bytes; 0 means no limit.",
        choices: &[],
        check: Some(check_number),
    },
    SettingDef {
        key: "script.max_array_size",
        default: "1000000",
        help: "Most elements an array or BLOB in a script may hold; 0 means no limit.",
        choices: &[],
        check: Some(check_number),
    },
    SettingDef {
        key: "script.max_map_size",
        default: "1000000",
        help: "Most properties an object map in a script may hold; 0 means no limit.",
        choices: &[],
        check: Some(check_number),
    },
    SettingDef {
        key: "script.max_memory",
        default: "1G",
        help: "Memory a script may hold at once (its strings, arrays, maps and what the scripts it runs hold), such as 512M or 2G; 0 means no limit. Beyond it the script stops with an error; the hub goes on.",
        choices: &[],
        check: Some(check_size),
    },
    SettingDef {
        key: "script.timeout",
        default: "0",
        help: "Wall-clock time a script may run (500ms, 5s, 2m, 1h); 0 means no limit. 'run --timeout' overrides it.",
        choices: &[],
        check: Some(check_duration),
    },
    SettingDef {
        key: "vfs.max_file_size",
        default: "512M",
        help: "Largest file the stored tree takes, such as 64M or 1G (at most 1G); writing more fails and leaves the file as it was. Mounted files have no such limit.",
        choices: &[],
        check: Some(check_file_size),
    },
    SettingDef {
        key: "store.backups",
        default: "3",
        help: "Daily backups of the state store kept in the home's backups folder ('doctor' lists them); 0 makes none.",
        choices: &[],
        check: Some(check_count),
    },
    SettingDef {
        key: "jobs.max_running",
        default: "4",
        help: "Background jobs that run at once; more wait in the queue.",
        choices: &[],
        check: Some(check_positive),
    },
    SettingDef {
        key: "jobs.max_output",
        default: "16777216",
        help: "Bytes of output kept per background job; beyond that output is dropped and marked.",
        choices: &[],
        check: Some(check_number),
    },
];

fn check_theme(v: &str) -> Result<()> {
    if crate::theme::valid_name(v) {
        Ok(())
    } else {
        bail!("a theme name has only letters, digits, - and _")
    }
}

fn check_prompt(v: &str) -> Result<()> {
    crate::theme::check_format(v, crate::theme::PROMPT_FIELDS).map_err(|e| anyhow::anyhow!(e))
}

fn check_positive(v: &str) -> Result<()> {
    match v.parse::<u32>() {
        Ok(n) if (1..=256).contains(&n) => Ok(()),
        _ => bail!("expected a whole number from 1 to 256"),
    }
}

pub fn find(key: &str) -> Option<&'static SettingDef> {
    SETTINGS.iter().find(|s| s.key == key)
}

/// Settings whose names are open-ended: one per key bound in the editor
/// (`editor.keys.CHORD = COMMAND`).
pub const KEY_BINDINGS: &str = "editor.keys.";

/// Whether `key` is one of an open-ended family of settings ([`KEY_BINDINGS`]).
pub fn is_family(key: &str) -> bool {
    key.strip_prefix(KEY_BINDINGS)
        .is_some_and(|chord| !chord.is_empty())
}

/// Checks `value` for `key` and returns it normalised (booleans and choices lower-cased).
pub fn validate(key: &str, value: &str) -> Result<String> {
    if let Some(chord) = key.strip_prefix(KEY_BINDINGS).filter(|c| !c.is_empty()) {
        crate::keymap::check_binding(chord, value).map_err(|e| anyhow::anyhow!("{e}"))?;
        return Ok(value.trim().to_string());
    }
    let Some(def) = find(key) else {
        let close = crate::text::suggest(key, SETTINGS.iter().map(|s| s.key));
        if close.is_empty() {
            bail!("unknown setting '{key}'; 'settings list' shows them all");
        }
        bail!(
            "unknown setting '{key}'. Did you mean {}?",
            crate::text::quote_list(&close)
        );
    };
    // A prompt format keeps its spaces (the one after `>` matters); other values are trimmed.
    let v = if key == "prompt.format" {
        value
    } else {
        value.trim()
    };
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
