//! Settings (model): a fixed set of documented keys with defaults and validation, kept in
//! `config.toml` (see [`crate::config`]). `settings list|get|set|reset` reads and writes them.
//!
//! One declaration (the `settings!` macro below) holds each setting's key, type, default and
//! help: it makes the typed [`Settings`] that code reads (`settings.editor.tab_width`, so a
//! misspelt name does not compile), and the [`SETTINGS`] table that `settings list`,
//! completion and `man config` are fed from.

use anyhow::{bail, Result};
use serde::Deserialize;
use std::time::Duration;

/// How a setting's value is written in `config.toml`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// `true` or `false`.
    Bool,
    /// A number when the value is a whole number (`4`, `0`), else a string (`"5s"`).
    Integer,
    /// A string.
    Text,
}

pub struct SettingDef {
    pub key: &'static str,
    pub default: &'static str,
    pub help: &'static str,
    /// Allowed values, or empty for free-form validated by `check`.
    pub choices: &'static [&'static str],
    pub check: Option<fn(&str) -> Result<()>>,
    pub written: Written,
    /// Reads a value (checked and normalised by [`validate`]) as the setting's type.
    parses: fn(&str) -> Result<()>,
    /// Sets the field of [`Settings`] this setting is, from a checked value.
    apply: fn(&mut Settings, &str) -> Result<()>,
}

fn check_vfs_path(v: &str) -> Result<()> {
    crate::vfs::VPath::parse_absolute(v)
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("not a VFS path: {e}"))
}

fn check_author(v: &str) -> Result<()> {
    if v.chars().any(crate::text::is_unsafe) {
        bail!("an author holds no control characters (new lines, escapes)");
    }
    if v.chars().count() > 100 {
        bail!("an author is at most 100 characters");
    }
    Ok(())
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

/// A type a setting can have, read from the text users write (in `config.toml` or with
/// `settings set`), after [`validate`] has trimmed it and lower-cased a choice.
pub trait SettingValue: Sized {
    /// The values allowed, when they are a fixed few.
    const CHOICES: &'static [&'static str] = &[];
    const WRITTEN: Written = Written::Text;
    fn parse(text: &str) -> Result<Self>;
}

impl SettingValue for bool {
    const CHOICES: &'static [&'static str] = BOOL;
    const WRITTEN: Written = Written::Bool;
    fn parse(text: &str) -> Result<bool> {
        text.parse()
            .map_err(|_| anyhow::anyhow!("expected true or false"))
    }
}

macro_rules! whole_numbers {
    ($($t:ty),*) => {$(
        impl SettingValue for $t {
            const WRITTEN: Written = Written::Integer;
            fn parse(text: &str) -> Result<$t> {
                text.parse()
                    .map_err(|_| anyhow::anyhow!("expected a whole number"))
            }
        }
    )*};
}
whole_numbers!(u32, u64, usize);

impl SettingValue for String {
    fn parse(text: &str) -> Result<String> {
        Ok(text.to_string())
    }
}

/// `0`, `250ms`, `5s`, `2m`, `1h` or a bare number of seconds (see [`parse_duration`]).
impl SettingValue for Duration {
    // A bare number of seconds is written as a number.
    const WRITTEN: Written = Written::Integer;
    fn parse(text: &str) -> Result<Duration> {
        parse_duration(text)
    }
}

/// A size in bytes, written `65536`, `512K`, `4M` or `1G` (see [`parse_size`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bytes(pub u64);

impl Bytes {
    /// The size as a `usize`, saturating on a 32-bit host.
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl SettingValue for Bytes {
    fn parse(text: &str) -> Result<Bytes> {
        parse_size(text).map(Bytes)
    }
}

/// An `http://` or `https://` URL with a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url(String);

impl Url {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl SettingValue for Url {
    fn parse(text: &str) -> Result<Url> {
        check_url(text)?;
        Ok(Url(text.trim().to_string()))
    }
}

/// A setting with a fixed few values: an enum whose variants are read, through serde, from
/// exactly the words users write.
macro_rules! choice {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every value, as users write it.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl SettingValue for $name {
            const CHOICES: &'static [&'static str] = Self::NAMES;
            fn parse(text: &str) -> Result<$name> {
                use serde::de::{value::{Error, StrDeserializer}, IntoDeserializer};
                let words: StrDeserializer<'_, Error> = text.into_deserializer();
                $name::deserialize(words)
                    .map_err(|_| anyhow::anyhow!("expected {}", Self::NAMES.join(", ")))
            }
        }
    };
}

choice! {
    /// When output is coloured (`color`).
    ColorMode {
        /// On a terminal.
        Auto = "auto",
        Always = "always",
        Never = "never",
    }
}

choice! {
    /// The editor's keys (`editor.keymap`).
    KeymapName {
        /// As in micro and VS Code.
        Default = "default",
        Nano = "nano",
    }
}

choice! {
    /// The assistant's persona for new conversations (`assistant.persona`); each is one of
    /// the assistant's personas.
    Persona {
        Default = "default",
        Explain = "explain",
        Review = "review",
        TestWriter = "test-writer",
        Architect = "architect",
    }
}

/// Declares the settings: for each, its key (the group and the field's name), its type,
/// its default as written, an extra check of the text if any, and its help (the doc
/// comment). Makes the [`Settings`] struct, one struct per group, and [`SETTINGS`].
macro_rules! settings {
    (@check) => { None };
    (@check $check:path) => { Some($check) };
    (@def $key:expr, $ty:ty, $default:literal, $help:literal, [$($check:path)?], |$s:ident| $field:expr) => {
        SettingDef {
            key: $key,
            default: $default,
            help: $help.trim_ascii(),
            choices: <$ty as SettingValue>::CHOICES,
            check: settings!(@check $($check)?),
            written: <$ty as SettingValue>::WRITTEN,
            parses: |text| <$ty as SettingValue>::parse(text).map(drop),
            apply: |$s, text| {
                $field = <$ty as SettingValue>::parse(text)?;
                Ok(())
            },
        }
    };
    (
        top_level {
            $(#[doc = $thelp:literal] $tfield:ident: $tty:ty = $tdefault:literal $(, check $tcheck:path)?;)*
        }
        $(
            #[doc = $ghelp:literal]
            $group:ident: $gty:ident {
                $(#[doc = $help:literal] $field:ident: $ty:ty = $default:literal $(, check $check:path)?;)*
            }
        )*
    ) => {
        /// Every setting, typed: what `config.toml` sets, else the default.
        #[derive(Clone, Debug, PartialEq)]
        pub struct Settings {
            $(#[doc = $thelp] pub $tfield: $tty,)*
            $(#[doc = $ghelp] pub $group: $gty,)*
        }

        $(
            #[doc = $ghelp]
            #[derive(Clone, Debug, PartialEq)]
            pub struct $gty {
                $(#[doc = $help] pub $field: $ty,)*
            }

            impl Default for $gty {
                fn default() -> $gty {
                    $gty {
                        $($field: <$ty as SettingValue>::parse($default)
                            .expect(concat!("the default of ", stringify!($group), ".", stringify!($field))),)*
                    }
                }
            }
        )*

        impl Default for Settings {
            fn default() -> Settings {
                Settings {
                    $($tfield: <$tty as SettingValue>::parse($tdefault)
                        .expect(concat!("the default of ", stringify!($tfield))),)*
                    $($group: $gty::default(),)*
                }
            }
        }

        pub const SETTINGS: &[SettingDef] = &[
            $(settings!(@def stringify!($tfield), $tty, $tdefault, $thelp, [$($tcheck)?], |s| s.$tfield),)*
            $($(settings!(
                @def concat!(stringify!($group), ".", stringify!($field)),
                $ty, $default, $help, [$($check)?], |s| s.$group.$field
            ),)*)*
        ];
    };
}

settings! {
    // Keys outside any table.
    top_level {
        /// Colour output: auto (on a terminal), always, or never. NO_COLOR and --no-color always turn it off.
        color: ColorMode = "auto";
        /// The theme: colours of the prompt, highlighting, pager and editor ('theme list' shows them).
        theme: String = "neon", check check_theme;
    }

    /// The prompt.
    prompt: PromptSettings {
        /// The prompt, overriding the theme's: text with {app} {cwd} {status} {jobs} {time} {user} {host}; empty uses the theme's.
        format: String = "", check check_prompt;
    }
    /// Manual pages.
    man: ManSettings {
        /// Show manual pages in the built-in pager on a terminal (false prints them).
        pager: bool = "true";
    }
    /// The editor.
    editor: EditorSettings {
        /// Columns between tab stops in the editor: how a tab is shown, and how many spaces Tab inserts.
        tab_width: usize = "4", check check_tab_width;
        /// Tab in the editor inserts spaces (false inserts a tab character).
        soft_tabs: bool = "true";
        /// The editor's keys: default (as in micro and VS Code) or nano. Any key can be bound as well under [editor.keys] in config.toml ('man editor').
        keymap: KeymapName = "default";
        /// Typing an opening bracket or quote in the editor adds its closing one, and typing the closing one steps over it.
        auto_pairs: bool = "true";
        /// Copy and cut in the editor also put the text on the system clipboard, through the terminal (OSC 52).
        system_clipboard: bool = "true";
    }
    /// The account server.
    sync: SyncSettings {
        /// The account server that login and register use when --server is not given: https://HOST, or http:// to this machine only.
        server: Url = "http://127.0.0.1:8080";
    }
    /// The assistant.
    assistant: AssistantSettings {
        /// The base URL of an OpenAI-compatible API: OpenAI, or a local server such as Ollama (http://localhost:11434/v1) or llama.cpp (http://localhost:8080/v1).
        url: Url = "https://api.openai.com/v1";
        /// The model the assistant asks for (for Ollama, a pulled model such as llama3.2).
        model: String = "gpt-4o-mini", check check_model;
        /// The persona for new conversations: default, explain, review, test-writer or architect.
        persona: Persona = "default";
        /// How long to wait for the assistant to start answering, and the longest it may fall silent mid-answer (0 waits for ever).
        timeout: Duration = "60s";
        /// The longest answer the assistant may give (512K, 4M, 1G); a longer one is cut there, the part received kept, and 'ask' fails saying so; 0 means no limit.
        max_answer: Bytes = "4M";
    }
    /// The shell.
    shell: ShellSettings {
        /// The directory a new session starts in (created when missing).
        start_dir: String = "~/Projects/Main", check check_vfs_path;
    }
    /// New projects ('new').
    new: NewSettings {
        /// The author that new projects name ({{author}} in a template); empty uses the login name on this machine.
        author: String = "", check check_author;
        /// The folder whose folders are your own templates; under ~/Projects it syncs with your account like a project.
        templates: String = "~/Projects/Templates", check check_vfs_path;
    }
    /// The line editor at the prompt.
    repl: ReplSettings {
        /// Show the most recent matching history entry as a greyed-out suggestion while typing.
        hints: bool = "true";
        /// Highlight the line as it is typed (commands, strings, operators).
        highlight: bool = "true";
    }
    /// The command history.
    history: HistorySettings {
        /// Do not record lines that start with a space.
        ignore_space: bool = "true";
    }
    /// grep.
    grep: GrepSettings {
        /// Threads grep uses to search many files; 0 picks one per CPU core plus one, so the search goes on while a thread waits on the disk.
        threads: usize = "0", check check_count;
    }
    /// exec.
    exec: ExecSettings {
        /// After 'exec' in a stored directory, write the program's changes back into the VFS.
        writeback: bool = "true";
    }
    /// Scripts' limits.
    script: ScriptSettings {
        /// Operations a script may perform before it is stopped; 0 means no limit.
        max_operations: u64 = "0", check check_number;
        /// Deepest nesting of function calls in a script (recursion depth).
        max_call_depth: usize = "64", check check_count;
        /// Longest string a script may build, in bytes; 0 means no limit.
        max_string_size: usize = "16777216", check check_number;
        /// Most elements an array or BLOB in a script may hold; 0 means no limit.
        max_array_size: usize = "1000000", check check_number;
        /// Most properties an object map in a script may hold; 0 means no limit.
        max_map_size: usize = "1000000", check check_number;
        /// Memory a script may hold at once (its strings, arrays, maps and what the scripts it runs hold), such as 512M or 2G; 0 means no limit. Beyond it the script stops with an error; the hub goes on.
        max_memory: Bytes = "1G";
        /// Wall-clock time a script may run (500ms, 5s, 2m, 1h); 0 means no limit. 'run --timeout' overrides it.
        timeout: Duration = "0";
    }
    /// The stored tree.
    vfs: VfsSettings {
        /// Largest file the stored tree takes, such as 64M or 1G (at most 1G); writing more fails and leaves the file as it was. Mounted files have no such limit.
        max_file_size: Bytes = "512M", check check_file_size;
    }
    /// The state store.
    store: StoreSettings {
        /// Daily backups of the state store kept in the home's backups folder ('doctor' lists them); 0 makes none.
        backups: usize = "3", check check_count;
    }
    /// Background jobs.
    jobs: JobsSettings {
        /// Background jobs that run at once; more wait in the queue.
        max_running: usize = "4", check check_positive;
        /// Bytes of output kept per background job; beyond that output is dropped and marked.
        max_output: u64 = "16777216", check check_number;
    }
}

impl Settings {
    /// Sets setting `key` from `value`, which [`validate`] has checked and normalised.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match find(key) {
            Some(def) => (def.apply)(self, value),
            None => bail!("unknown setting '{key}'"),
        }
    }
}

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
        (def.parses)(&lower)?;
        return Ok(lower);
    }
    let bad = |e: anyhow::Error| anyhow::anyhow!("'{v}' is not a valid value for {key}: {e}");
    if let Some(check) = def.check {
        check(v).map_err(bad)?;
    }
    (def.parses)(v).map_err(bad)?;
    Ok(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_is_valid_and_every_key_is_named_once() {
        for def in SETTINGS {
            assert_eq!(
                validate(def.key, def.default).unwrap(),
                def.default,
                "{}",
                def.key
            );
            assert_eq!(SETTINGS.iter().filter(|d| d.key == def.key).count(), 1);
            assert!(
                !def.help.is_empty() && !def.help.starts_with(' '),
                "{}",
                def.key
            );
        }
        let s = Settings::default();
        assert_eq!(s.editor.tab_width, 4);
        assert_eq!(s.assistant.timeout, Duration::from_secs(60));
        assert_eq!(s.script.timeout, Duration::ZERO);
        assert_eq!(s.script.max_memory, Bytes(1 << 30));
        assert_eq!(s.color, ColorMode::Auto);
    }

    #[test]
    fn values_are_checked_and_set_as_their_types() {
        let mut s = Settings::default();
        let v = validate("editor.keymap", " Nano ").unwrap();
        assert_eq!(v, "nano");
        s.set("editor.keymap", &v).unwrap();
        assert_eq!(s.editor.keymap, KeymapName::Nano);
        assert_eq!(
            KeymapName::parse("emacs").unwrap_err().to_string(),
            "expected default, nano"
        );
        s.set("script.timeout", "2m").unwrap();
        assert_eq!(s.script.timeout, Duration::from_secs(120));
        s.set("repl.hints", "false").unwrap();
        assert!(!s.repl.hints);
        let e = validate("assistant.timeout", "soon")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("'soon' is not a valid value for assistant.timeout: expected a duration"),
            "{e}"
        );
        let e = validate("editor.tab_width", "0").unwrap_err().to_string();
        assert!(e.contains("from 1 to 16"), "{e}");
        assert!(validate("assistant.url", "localhost:11434").is_err());
        assert!(s.set("editor.tab_widht", "4").is_err());
        // How each kind is written back to the file.
        assert_eq!(find("repl.hints").unwrap().written, Written::Bool);
        assert_eq!(find("script.timeout").unwrap().written, Written::Integer);
        assert_eq!(find("color").unwrap().written, Written::Text);
        assert_eq!(find("color").unwrap().choices, ["auto", "always", "never"]);
    }
}
