//! `config.toml` (model): the user's settings, in a file they can read, edit, comment and
//! keep with their dotfiles. It lives in the platform config directory, or beside the state store when
//! the home is given with `--home` or `VALYXO_HOME`.
//!
//! Keys are the setting names from [`crate::settings`]; a dotted name is a key in a table, so
//! `repl.hints` is written `[repl]` / `hints = false` (or `repl.hints = false`). Reading (with
//! the `toml` crate: its tree of spanned values, each setting's value then read as its type
//! into [`Settings`]) never fails: every problem (a syntax error, an unknown key, a bad value)
//! is collected with its line and column, and the key it concerns falls back to its default
//! while the rest of the file still applies. Writing (with `toml_edit`) edits the file in
//! place (comments and layout are kept), under a lock, through a temporary file renamed over
//! the old one, and refuses to touch a file that does not parse rather than lose what the
//! user wrote.

use crate::settings::{self, Settings};
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;
use toml_edit::{Item, Table, Value};

pub const FILE: &str = "config.toml";

/// Larger files are not read: a config or theme is a few kilobytes, and a huge file there
/// is a mistake that should not stall start-up.
pub const MAX_SIZE: u64 = 1 << 20;

/// Reads a small text file: `Ok(None)` when it does not exist. Anything but a file (a fifo
/// put in its place, a device) is an error, found without waiting on it.
pub fn read_small(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("it is not a regular file"));
    }
    let mut bytes = Vec::new();
    f.take(MAX_SIZE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_SIZE {
        return Err(std::io::Error::other(format!(
            "the file is larger than {} KiB",
            MAX_SIZE / 1024
        )));
    }
    Ok(Some(bytes))
}

/// One thing wrong in a TOML file, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based; 0 when the problem is not about a place in the file.
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            // Not about a place in a file (a missing theme, say).
            return f.write_str(&self.message);
        }
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

/// 1-based line and column of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    // A byte-order mark is not a column.
    let bom = usize::from(start == 0 && before.starts_with('\u{feff}'));
    (line, before[start..].chars().count() + 1 - bom)
}

impl Problem {
    pub fn at(file: &Path, text: &str, offset: usize, message: impl Into<String>) -> Problem {
        let (line, col) = line_col(text, offset);
        Problem {
            file: file.to_path_buf(),
            line,
            col,
            message: message.into(),
        }
    }
}

/// The text of a TOML file with every line that stops it parsing blanked out, and a problem
/// for each such line: one typo does not throw away the rest of the file. Byte offsets and
/// line numbers are those of `text`.
pub fn parse_lenient(file: &Path, text: &str) -> (String, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut current = text.to_string();
    for _ in 0..32 {
        let Err(e) = DeTable::parse(&current) else {
            return (current, problems);
        };
        let offset = e.span().map_or(0, |s| s.start);
        let message = e.message().trim().to_string();
        problems.push(Problem::at(
            file,
            &current,
            offset,
            format!("{message} (this line is ignored)"),
        ));
        // Blank the offending line (keeping byte offsets and line numbers intact). An
        // error on a blank line (an unclosed string or array that ran to the end, say) is
        // blamed on the nearest line above with text on it.
        let mut at = offset.min(current.len());
        let (start, end) = loop {
            let start = current[..at].rfind('\n').map_or(0, |i| i + 1);
            let end = current[start..]
                .find('\n')
                .map_or(current.len(), |i| start + i);
            if !current[start..end].trim().is_empty() || start == 0 {
                break (start, end);
            }
            at = start - 1;
        };
        if current[start..end].trim().is_empty() {
            break;
        }
        if at != offset.min(current.len()) {
            // Report where the text is, not the blank line.
            let last = problems.last_mut().expect("just pushed");
            *last = Problem::at(
                file,
                &current,
                start,
                format!("{message} (this line is ignored)"),
            );
        }
        let blank = " ".repeat(end - start);
        current.replace_range(start..end, &blank);
    }
    (String::new(), problems)
}

/// The entries of a parsed TOML table, in the order they are in the file: (key, dotted name
/// under `prefix`, byte offset of the key, value).
pub fn entries<'t, 'i>(
    table: &'t DeTable<'i>,
    prefix: &str,
) -> Vec<(&'t str, String, usize, &'t Spanned<DeValue<'i>>)> {
    let mut out: Vec<_> = table
        .iter()
        .map(|(key, value)| {
            let name: &str = key.get_ref();
            let full = if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}.{name}")
            };
            (name, full, key.span().start, value)
        })
        .collect();
    out.sort_by_key(|e| e.2);
    out
}

/// A scalar TOML value as the text of a setting: what `settings set` would be given.
struct Scalar(String);

impl<'de> serde::Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            // Written as TOML has it (`4.0`, not `4`), so a whole-number setting refuses it
            // as `settings set` would.
            fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(format!("{v:?}")))
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(Visit)
    }
}

/// The settings in a config file, already checked.
#[derive(Clone, Debug, Default)]
pub struct Config {
    pub path: PathBuf,
    /// Each setting the file sets validly, as text (normalised as `settings set` would).
    values: HashMap<String, String>,
    /// The settings, typed: the file's values over the defaults.
    settings: Arc<Settings>,
    /// Everything wrong with the file; the keys concerned use their defaults.
    pub problems: Vec<Problem>,
    stamp: Option<(SystemTime, u64)>,
}

/// A file's modification time and size, to notice that it changed.
pub type Stamp = Option<(SystemTime, u64)>;

/// The [`Stamp`] of the file at `path` (`None` when it cannot be read).
pub fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

impl Config {
    /// Reads the config file at `path`. A missing file is an empty config; an unreadable or
    /// invalid one is reported in `problems`.
    pub fn load(path: &Path) -> Config {
        let stamp = stamp(path);
        let text = match read_small(path) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                return Config {
                    path: path.to_path_buf(),
                    ..Default::default()
                }
            }
            Err(e) => {
                return Config {
                    path: path.to_path_buf(),
                    problems: vec![Problem {
                        file: path.to_path_buf(),
                        line: 1,
                        col: 1,
                        message: format!("cannot read the file: {e}; using the defaults"),
                    }],
                    stamp,
                    ..Default::default()
                }
            }
        };
        let mut c = Config::parse(path, &String::from_utf8_lossy(&text));
        if std::str::from_utf8(&text).is_err() {
            c.problems.insert(
                0,
                Problem {
                    file: path.to_path_buf(),
                    line: 1,
                    col: 1,
                    message: "the file is not valid UTF-8".into(),
                },
            );
        }
        c.stamp = stamp;
        c
    }

    /// Checks the TOML `text` (read from `path`) against the known settings.
    pub fn parse(path: &Path, text: &str) -> Config {
        let (clean, mut problems) = parse_lenient(path, text);
        let table = DeTable::parse(&clean).map_or_else(|_| DeTable::default(), |t| t.into_inner());
        let mut read = Read {
            path,
            text: &clean,
            values: HashMap::new(),
            settings: Settings::default(),
            problems: Vec::new(),
        };
        read.walk(&table, "");
        problems.append(&mut read.problems);
        problems.sort_by_key(|p| (p.line, p.col));
        Config {
            path: path.to_path_buf(),
            values: read.values,
            settings: Arc::new(read.settings),
            problems,
            stamp: None,
        }
    }

    /// The checked value of `key` as text, if the file sets it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// Every key the file sets validly, as text.
    pub fn values(&self) -> &HashMap<String, String> {
        &self.values
    }

    /// The settings, typed: what the file sets validly, else the defaults.
    pub fn settings(&self) -> &Arc<Settings> {
        &self.settings
    }

    /// Whether the file on disk differs (by time and size) from what was loaded.
    pub fn changed_on_disk(&self) -> bool {
        stamp(&self.path) != self.stamp
    }
}

/// A config file being read: what it sets so far, and what is wrong with it.
struct Read<'a> {
    path: &'a Path,
    text: &'a str,
    values: HashMap<String, String>,
    settings: Settings,
    problems: Vec<Problem>,
}

impl Read<'_> {
    fn problem(&mut self, at: usize, message: String) {
        self.problems
            .push(Problem::at(self.path, self.text, at, message));
    }

    fn walk(&mut self, table: &DeTable<'_>, prefix: &str) {
        for (name, full, at, value) in entries(table, prefix) {
            let known = settings::find(&full);
            if let (DeValue::Table(t), None) = (value.get_ref(), known) {
                self.walk(t, &full);
                continue;
            }
            let vat = value.span().start;
            let raw = match Scalar::deserialize(ValueDeserializer::from(value.clone())) {
                Ok(Scalar(raw)) => raw,
                Err(_) if known.is_some() || settings::is_family(&full) => {
                    let m =
                        format!("{full}: expected a string, number or boolean; using the default");
                    self.problem(vat, m);
                    continue;
                }
                // Not a setting whatever its value: reported as unknown below.
                Err(_) => String::new(),
            };
            match settings::validate(&full, &raw) {
                Ok(v) => {
                    if known.is_some() {
                        if let Err(e) = self.settings.set(&full, &v) {
                            self.problem(vat, format!("{full}: {e:#}; using the default"));
                            continue;
                        }
                    }
                    self.values.insert(full, v);
                }
                Err(e) if known.is_none() => {
                    let under = settings::SETTINGS
                        .iter()
                        .find(|d| d.key.split_once('.').is_some_and(|(_, k)| k == name));
                    let m = if !prefix.is_empty() && settings::find(name).is_some() {
                        format!(
                            "'{name}' is read here as '{full}'; top-level settings go above the first [table]"
                        )
                    } else if let (true, Some(d)) = (prefix.is_empty(), under) {
                        let table = d.key.split_once('.').map_or("", |(t, _)| t);
                        format!(
                            "unknown setting '{name}'; did you mean '{}' (under [{table}])?",
                            d.key
                        )
                    } else {
                        format!("{e:#}")
                    };
                    self.problem(at, m);
                }
                Err(e) => {
                    let default = known.map_or("", |d| d.default);
                    self.problem(vat, format!("{e:#}; using the default '{default}'"));
                }
            }
        }
    }
}

/// The TOML value to write for a setting: a boolean or integer when the setting is one.
fn typed(key: &str, value: &str) -> Value {
    let written = settings::find(key).map(|d| d.written);
    if written == Some(settings::Written::Bool) {
        if let Ok(b) = value.parse::<bool>() {
            return Value::from(b);
        }
    }
    if written == Some(settings::Written::Integer) {
        if let Ok(n) = value.parse::<i64>() {
            return Value::from(n);
        }
    }
    Value::from(value)
}

/// Temporary files of a write in progress are named after the file: `.config.toml.XXXXXX.tmp`.
const TMP_PREFIX: &str = ".";

/// Removes temporary files left by writers that were killed (they are older than any write
/// still in progress could be). Called with the directory lock held.
fn sweep_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let stale = std::time::Duration::from_secs(60);
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let ours = [FILE, crate::aliases::FILE]
            .iter()
            .any(|f| name.starts_with(&format!("{TMP_PREFIX}{f}.")));
        if !(ours && name.ends_with(".tmp")) {
            continue;
        }
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > stale);
        if old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Where a setting is in a parsed file.
enum Place {
    /// A value: the byte offset where its key starts and the value's span.
    Value(usize, std::ops::Range<usize>),
    /// Not there; the tables on the way exist or not.
    Missing,
    /// Something in the way that is not a plain table (a value, an array of tables), or an
    /// inline table, which is left to the user to edit: (offset, what it is).
    Blocked(usize, &'static str),
}

fn locate(doc: &toml_edit::Document<String>, key: &str) -> Place {
    let parts: Vec<&str> = key.split('.').collect();
    let (last, tables) = parts.split_last().expect("a key has a name");
    let mut table = doc.as_table();
    for t in tables {
        let start = |i: &Item| i.span().map_or(0, |s| s.start);
        match table.get(t) {
            Some(Item::Table(next)) => table = next,
            Some(Item::Value(Value::InlineTable(it))) => {
                // Values inside an inline table can be replaced where they stand.
                return match it.clone().into_table().get_key_value(last) {
                    Some((k, Item::Value(v))) => match (k.span(), v.span()) {
                        (Some(ks), Some(vs)) => Place::Value(ks.start, vs),
                        _ => Place::Blocked(0, "an inline table"),
                    },
                    _ => Place::Blocked(
                        table.get(t).map_or(0, start),
                        "an inline table ({ … }), which 'settings' does not add to or remove from",
                    ),
                };
            }
            Some(other) => return Place::Blocked(start(other), "not a table"),
            None => return Place::Missing,
        }
    }
    match table.get_key_value(last) {
        Some((k, Item::Value(v))) => match (k.span(), v.span()) {
            (Some(ks), Some(vs)) => Place::Value(ks.start, vs),
            _ => Place::Missing,
        },
        Some((k, _)) => Place::Blocked(k.span().map_or(0, |s| s.start), "a table, not a value"),
        None => Place::Missing,
    }
}

/// The offset of the start of the line holding `offset`, and of the start of the next line.
fn line_bounds(text: &str, offset: usize) -> (usize, usize) {
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = text[offset..]
        .find('\n')
        .map_or(text.len(), |i| offset + i + 1);
    (start, end)
}

/// Where to insert a new line `name = value` for `key`, and the text to insert there.
fn insertion(doc: &toml_edit::Document<String>, key: &str, value: &Value) -> (usize, String) {
    let text = doc.raw();
    let root = doc.as_table();
    let end_of_items = |t: &Table| {
        t.iter()
            .filter_map(|(k, _)| t.get_key_value(k))
            .filter(|(_, i)| i.is_value())
            .filter_map(|(_, i)| i.span())
            .map(|s| line_bounds(text, s.end.saturating_sub(1).max(s.start)).1)
            .max()
    };
    let ensure_newline = |at: usize, line: String| {
        if at > 0 && !text[..at].ends_with('\n') {
            (at, format!("\n{line}"))
        } else {
            (at, line)
        }
    };
    match key.split_once('.') {
        None => {
            // Top-level keys go before the first [table] (and the comments just above it).
            let first_header = root
                .iter()
                .filter_map(|(_, i)| match i {
                    Item::Table(t) if !t.is_dotted() => t.span().map(|s| s.start),
                    Item::ArrayOfTables(a) => {
                        a.iter().filter_map(|t| t.span()).map(|s| s.start).min()
                    }
                    _ => None,
                })
                .min();
            let line = format!("{key} = {value}\n");
            if let Some(at) = end_of_items(root) {
                return ensure_newline(at, line);
            }
            match first_header {
                Some(h) => {
                    let mut at = line_bounds(text, h).0;
                    while at > 0 {
                        let (prev, _) = line_bounds(text, at - 1);
                        if text[prev..at].trim_start().starts_with('#') {
                            at = prev;
                        } else {
                            break;
                        }
                    }
                    (at, line)
                }
                None => ensure_newline(text.len(), line),
            }
        }
        Some((table, name)) => match root.get(table) {
            Some(Item::Table(t)) if t.is_dotted() => {
                let at = end_of_items(t).unwrap_or(text.len());
                ensure_newline(at, format!("{key} = {value}\n"))
            }
            Some(Item::Table(t)) => {
                let header_end = t
                    .span()
                    .map_or(text.len(), |s| line_bounds(text, s.start).1);
                let at = end_of_items(t).unwrap_or(header_end).max(header_end);
                ensure_newline(at, format!("{name} = {value}\n"))
            }
            _ => {
                let sep = if text.is_empty() || text.ends_with("\n\n") {
                    ""
                } else if text.ends_with('\n') {
                    "\n"
                } else {
                    "\n\n"
                };
                (text.len(), format!("{sep}[{table}]\n{name} = {value}\n"))
            }
        },
    }
}

/// Sets (`Some`) or removes (`None`) settings in the config file at `path`. Values must
/// already be validated. Only the lines concerned change: a new value replaces the old one
/// where it stands (its comment stays), a removed setting loses its own line, and a new one
/// goes at the end of its table (or before the first table for a top-level key, or in a
/// new table at the end). A symlinked file is followed, and the file keeps its permissions.
/// Returns the file as written, checked, so the caller need not read it again.
pub fn write(path: &Path, changes: &[(&str, Option<&str>)]) -> Result<Config> {
    let (text, stamp) = rewrite(path, |path, mut text| {
        edit_settings(path, &mut text, changes)?;
        Ok(text)
    })?;
    // Known by the name it was given (a symlink stays the symlink).
    let mut written = Config::parse(path, &text);
    written.stamp = stamp;
    Ok(written)
}

/// Rewrites the small text file at `path` (a config file beside the home): `edit` gets its
/// real path and its text ("" when it does not exist) and returns the new text, which
/// replaces the file whole. Writers in other sessions wait for each other; a symlinked file
/// is followed and keeps its permissions (a new one is private to the user); the new text
/// goes to a temporary file, synced, then renamed over the old one, so a crash leaves one or
/// the other. A file that is not UTF-8 is left as it is. Returns the text written and the
/// file's stamp, taken before the lock is let go (a later writer changes it).
pub fn rewrite(
    path: &Path,
    edit: impl FnOnce(&Path, String) -> Result<String>,
) -> Result<(String, Stamp)> {
    // Temporary files are named after the name given (not a symlink's target), so the sweep
    // of a killed writer's leftovers finds them.
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let path = path.as_path();
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the config directory {}", dir.display()))?;
    // The lock is on the directory, which (unlike the file) is not replaced by the rename
    // below.
    let lock = std::fs::File::open(dir)
        .with_context(|| format!("cannot open the config directory {}", dir.display()))?;
    lock.lock()
        .with_context(|| format!("cannot lock the config directory {}", dir.display()))?;
    let old = read_small(path).with_context(|| format!("cannot read {}", path.display()))?;
    let permissions = old
        .as_ref()
        .and_then(|_| std::fs::metadata(path).ok())
        .map(|m| m.permissions());
    let text = match old {
        Some(bytes) => String::from_utf8(bytes).map_err(|_| {
            anyhow::anyhow!(
                "{}: the file is not valid UTF-8, so it was left as it is; fix or remove it first",
                path.display()
            )
        })?,
        None => String::new(),
    };
    let text = edit(path, text)?;
    sweep_stale_temporaries(dir);
    let written = (|| -> std::io::Result<()> {
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!("{TMP_PREFIX}{}.", name.as_deref().unwrap_or(FILE)))
            .suffix(".tmp")
            .tempfile_in(dir)?;
        use std::io::Write;
        tmp.write_all(text.as_bytes())?;
        if let Some(p) = permissions {
            tmp.as_file().set_permissions(p)?;
        }
        tmp.as_file().sync_all()?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    })();
    match written {
        Ok(()) => Ok((text, stamp(path))),
        // The temporary file is gone with its error: the old file is as it was.
        Err(e) if e.kind() == std::io::ErrorKind::StorageFull => bail!(
            "the disk holding {} is full: free some space and try again",
            path.display()
        ),
        Err(e) => Err(e).with_context(|| format!("cannot write {}", path.display())),
    }
}

/// Applies setting changes to the text of the config file at `path` (see [`write`]).
fn edit_settings(path: &Path, text: &mut String, changes: &[(&str, Option<&str>)]) -> Result<()> {
    let parse = |text: &str| {
        toml_edit::Document::parse(text.to_string()).map_err(|e| {
            let p = Problem::at(path, text, e.span().map_or(0, |s| s.start), e.message().trim());
            anyhow::anyhow!("{p}\nthe config file does not parse, so it was left as it is; fix or remove that line first")
        })
    };
    for (key, value) in changes {
        let doc = parse(text)?;
        match (locate(&doc, key), value) {
            (Place::Value(_, span), Some(v)) => {
                text.replace_range(span, &typed(key, v).to_string());
            }
            (Place::Value(key_at, span), None) => {
                let (start, _) = line_bounds(text, key_at);
                let (_, end) = line_bounds(text, span.end.saturating_sub(1).max(span.start));
                // The line holds only this setting: nothing before its key but, for a dotted
                // key (`repl.hints = …`), the tables leading to it.
                let before = text[start..key_at].trim();
                if before.is_empty()
                    || (before.ends_with('.') && !before.contains(['=', '{', ',', '#']))
                {
                    text.replace_range(start..end, "");
                } else {
                    let m = format!("'{key}' shares its line with other text; remove it by hand");
                    bail!("{}", Problem::at(path, text, key_at, m));
                }
            }
            (Place::Blocked(at, what), _) => {
                let p = Problem::at(
                    path,
                    text,
                    at,
                    format!("'{key}' cannot be changed here: {what}"),
                );
                bail!("{p}; fix the file first");
            }
            (Place::Missing, None) => {}
            (Place::Missing, Some(v)) => {
                let (at, line) = insertion(&doc, key, &typed(key, v));
                text.insert_str(at, &line);
            }
        }
    }
    // What was written must still parse and mean what was asked.
    let check = Config::parse(path, text);
    for (key, value) in changes {
        if check.get(key) != *value {
            bail!(
                "{}: could not write '{key}' safely; the file was left as it is",
                path.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Config {
        Config::parse(Path::new("config.toml"), text)
    }

    #[test]
    fn tables_and_dotted_keys_map_to_setting_names() {
        let c = parse("color = \"never\"\nrepl.hints = false\n[script]\nmax_call_depth = 10\ntimeout = \"5s\"\n");
        assert_eq!(c.problems, vec![]);
        assert_eq!(c.get("color"), Some("never"));
        assert_eq!(c.get("repl.hints"), Some("false"));
        assert_eq!(c.get("script.max_call_depth"), Some("10"));
        assert_eq!(c.get("script.timeout"), Some("5s"));
        assert_eq!(c.get("repl.highlight"), None);
    }

    #[test]
    fn bad_keys_are_reported_with_line_and_the_rest_applies() {
        let c = parse(
            "color = \"sometimes\"\n[repl]\nhints = false\nhihglight = true\ngrep.threads = [1]\n",
        );
        assert_eq!(c.get("repl.hints"), Some("false"));
        assert_eq!(c.get("color"), None);
        let shown: Vec<String> = c.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(shown.len(), 3, "{shown:?}");
        assert!(shown[0].starts_with("config.toml:1:9: 'sometimes' is not a valid value for color"));
        assert!(
            shown[0].ends_with("using the default 'auto'"),
            "{}",
            shown[0]
        );
        assert!(shown[1].starts_with("config.toml:4:1: unknown setting 'repl.hihglight'"));
        assert!(shown[1].contains("repl.highlight"), "{}", shown[1]);
        assert!(shown[2].starts_with("config.toml:5:"), "{}", shown[2]);
    }

    #[test]
    fn values_are_read_as_their_types() {
        use settings::{Bytes, ColorMode, KeymapName, Persona};
        use std::time::Duration;
        let c = parse(
            "color = \"NEVER\"\n[editor]\nkeymap = \"nano\"\ntab_width = 8\n\
             [assistant]\npersona = \"test-writer\"\ntimeout = \"500ms\"\nmax_answer = \"512K\"\n\
             [script]\ntimeout = \"2s\"\n[jobs]\nmax_running = \"2\"\n",
        );
        assert_eq!(c.problems, vec![]);
        let s = c.settings();
        assert_eq!(s.color, ColorMode::Never);
        assert_eq!(c.get("color"), Some("never"));
        assert_eq!(s.editor.keymap, KeymapName::Nano);
        assert_eq!(s.editor.tab_width, 8);
        assert_eq!(s.assistant.persona, Persona::TestWriter);
        assert_eq!(s.assistant.timeout, Duration::from_millis(500));
        assert_eq!(s.assistant.max_answer, Bytes(512 << 10));
        assert_eq!(s.script.timeout, Duration::from_secs(2));
        assert_eq!(s.jobs.max_running, 2);
        // What the file leaves out has its default.
        assert_eq!(s.repl, Settings::default().repl);
        assert_eq!(s.sync.server.as_str(), "http://127.0.0.1:8080");
        // A bare number of seconds, as a float.
        let c = parse("[script]\ntimeout = 1.5\n");
        assert_eq!(c.settings().script.timeout, Duration::from_millis(1500));
    }

    #[test]
    fn a_bad_choice_is_reported_on_its_line_and_that_key_falls_back() {
        let c = parse("color = \"never\"\n\n[editor]\nsoft_tabs = false\nkeymap = \"emacs\"\n");
        assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
        let p = &c.problems[0];
        assert_eq!((p.line, p.col), (5, 10));
        assert!(
            p.message.starts_with(
                "'emacs' is not a valid value for editor.keymap: expected default, nano"
            ),
            "{p}"
        );
        assert!(p.message.ends_with("using the default 'default'"), "{p}");
        let s = c.settings();
        assert_eq!(s.editor.keymap, settings::KeymapName::Default);
        assert_eq!(c.get("editor.keymap"), None);
        // The rest of the file applies.
        assert!(!s.editor.soft_tabs);
        assert_eq!(s.color, settings::ColorMode::Never);
        // A bad duration and a bad URL fall back the same way.
        let c = parse("[script]\ntimeout = \"5 parsecs\"\n[assistant]\nurl = \"ftp://x\"\n");
        let lines: Vec<usize> = c.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [2, 4], "{:?}", c.problems);
        assert_eq!(c.settings().script, Settings::default().script);
        assert_eq!(c.settings().assistant, Settings::default().assistant);
    }

    #[test]
    fn an_unknown_key_is_reported_where_it_is() {
        let c = parse("theme = \"nord\"\n[editor]\ntab_widht = 2\n[nothing]\nhere = 1\n");
        let shown: Vec<String> = c.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(shown.len(), 2, "{shown:?}");
        assert!(
            shown[0].starts_with("config.toml:3:1: unknown setting 'editor.tab_widht'. Did you mean 'editor.tab_width'?"),
            "{shown:?}"
        );
        assert!(
            shown[1].starts_with("config.toml:5:1: unknown setting 'nothing.here'"),
            "{shown:?}"
        );
        assert_eq!(c.settings().theme, "nord");
        assert_eq!(c.settings().editor.tab_width, 4);
    }

    #[test]
    fn a_syntax_error_loses_only_its_line() {
        let c = parse("color = \"never\"\nrepl.hints = fals\n[script]\nmax_call_depth = 9\n");
        assert_eq!(c.get("color"), Some("never"));
        assert_eq!(c.get("script.max_call_depth"), Some("9"));
        assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
        assert_eq!(c.problems[0].line, 2);
        assert!(c.problems[0].message.contains("ignored"));
    }

    #[test]
    fn an_unclosed_string_loses_only_what_it_swallowed() {
        let c = parse("color = \"never\"\ntheme = \"\"\"nord\n[repl]\nhints = false\n");
        assert_eq!(c.get("color"), Some("never"));
        assert!(!c.problems.is_empty());
        assert!(
            c.problems.iter().all(|p| p.line > 1 && p.line < 5),
            "{:?}",
            c.problems
        );
        // A broken header: its keys are pointed back at their table.
        let c = parse("[repl\nhints = false\n");
        let all: Vec<String> = c.problems.iter().map(|p| p.to_string()).collect();
        assert!(
            all.iter()
                .any(|p| p.contains("did you mean 'repl.hints' (under [repl])?")),
            "{all:?}"
        );
        // Floats are not whole numbers; durations may be fractional.
        let c = parse("[grep]\nthreads = 4.0\n[script]\ntimeout = 1.5\n");
        assert_eq!(c.get("grep.threads"), None);
        assert_eq!(c.get("script.timeout"), Some("1.5"));
        // A byte-order mark does not shift columns.
        let c = parse("\u{feff}color = \"sometimes\"\n");
        assert_eq!((c.problems[0].line, c.problems[0].col), (1, 9));
    }

    proptest::proptest! {
        /// Whatever the file holds, reading it reports problems instead of failing, and
        /// every problem points inside the file.
        #[test]
        fn any_text_reads_without_panicking(text in "(\\PC|\n|\\[|\\]|=|\"|#| ){0,200}") {
            let c = parse(&text);
            let lines = text.split('\n').count();
            for p in &c.problems {
                proptest::prop_assert!(p.line >= 1 && p.line <= lines.max(1), "{p} in {text:?}");
            }
        }

        /// Setting any valid value in any parsable file gives a file that reads back the
        /// value and keeps every other setting it had.
        #[test]
        fn writes_read_back(
            before in proptest::sample::select(vec![
                "",
                "# comment only\n",
                "color = \"never\"\n",
                "[repl]\nhints = false # no\n",
                "repl.hints = false\n[script]\ntimeout = \"5s\"\n",
                "theme = \"nord\"\n\n# jobs\n[jobs]\n# max_running = 2\n",
            ]),
            key in proptest::sample::select(vec![
                "color", "theme", "repl.hints", "script.timeout", "jobs.max_running", "prompt.format",
            ]),
            value in proptest::sample::select(vec!["always", "dracula", "true", "9s", "3", "λ {cwd}❯ "]),
        ) {
            let Ok(value) = settings::validate(key, value) else { return Ok(()) };
            let old = parse(before);
            let after = edit(before, &[(key, Some(&value))]).unwrap();
            let new = parse(&after);
            proptest::prop_assert_eq!(new.get(key), Some(value.as_str()));
            for (k, v) in old.values() {
                if k != key {
                    proptest::prop_assert_eq!(new.get(k), Some(v.as_str()), "{} lost in {:?}", k, after);
                }
            }
            let reset = edit(&after, &[(key, None)]).unwrap();
            let reset = parse(&reset);
            proptest::prop_assert_eq!(reset.get(key), None);
        }
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncé d", 7), (2, 4));
        assert_eq!(line_col("", 5), (1, 1));
    }

    #[test]
    fn writing_keeps_comments_and_types() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        std::fs::write(
            &path,
            "# my settings\ncolor = \"never\" # no colour please\n\n[repl]\nhints = true\n",
        )
        .unwrap();
        write(
            &path,
            &[
                ("repl.hints", Some("false")),
                ("color", Some("always")),
                ("script.max_call_depth", Some("12")),
                ("theme", Some("nord")),
            ],
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# my settings\n"), "{text}");
        assert!(
            text.contains("color = \"always\" # no colour please"),
            "{text}"
        );
        assert!(text.contains("hints = false"), "{text}");
        assert!(text.contains("[script]\nmax_call_depth = 12"), "{text}");
        let c = Config::load(&path);
        assert_eq!(c.problems, vec![]);
        assert_eq!(c.get("theme"), Some("nord"));
        write(
            &path,
            &[("script.max_call_depth", None), ("nothing.here", None)],
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("max_call_depth"), "{text}");
    }

    /// Applies `changes` to a file holding `before` and returns the file afterwards.
    fn edit(before: &str, changes: &[(&str, Option<&str>)]) -> Result<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        std::fs::write(&path, before).unwrap();
        write(&path, changes)?;
        Ok(std::fs::read_to_string(&path).unwrap())
    }

    #[test]
    fn only_the_lines_concerned_change() {
        // A table of comments keeps its header; a top-level key goes above the first table.
        assert_eq!(
            edit("[jobs]\n# max_running = 2\n", &[("color", Some("always"))]).unwrap(),
            "color = \"always\"\n[jobs]\n# max_running = 2\n"
        );
        // ... after the other top-level keys, or above the comments introducing a table.
        assert_eq!(
            edit(
                "theme = \"nord\"\n\n# shell\n[repl]\nhints = true\n",
                &[("color", Some("never"))]
            )
            .unwrap(),
            "theme = \"nord\"\ncolor = \"never\"\n\n# shell\n[repl]\nhints = true\n"
        );
        assert_eq!(
            edit(
                "# shell\n[repl]\nhints = true\n",
                &[("color", Some("never"))]
            )
            .unwrap(),
            "color = \"never\"\n# shell\n[repl]\nhints = true\n"
        );
        // A reset removes its own line and nothing else, not the comment above it.
        assert_eq!(
            edit(
                "[script]\n# keep recursion shallow\nmax_call_depth = 10 # for now\ntimeout = \"5s\"\n",
                &[("script.max_call_depth", None)]
            )
            .unwrap(),
            "[script]\n# keep recursion shallow\ntimeout = \"5s\"\n"
        );
        // A new key joins the end of its table; a new table goes at the end of the file.
        assert_eq!(
            edit("[repl]\nhints = true\n\n[grep]\nthreads = 2\n", &[("repl.highlight", Some("false")), ("jobs.max_running", Some("3"))]).unwrap(),
            "[repl]\nhints = true\nhighlight = false\n\n[grep]\nthreads = 2\n\n[jobs]\nmax_running = 3\n"
        );
        // Dotted keys at the top stay dotted; a template of comments stays where it is.
        assert_eq!(
            edit(
                "repl.hints = true\n[script]\ntimeout = 0\n",
                &[("repl.highlight", Some("false"))]
            )
            .unwrap(),
            "repl.hints = true\nrepl.highlight = false\n[script]\ntimeout = 0\n"
        );
        assert_eq!(
            edit("# theme = \"nord\"\n# [repl]", &[("theme", Some("nord"))]).unwrap(),
            "# theme = \"nord\"\n# [repl]\ntheme = \"nord\"\n"
        );
        // Values inside an inline table are replaced in place; adding to one is refused.
        assert_eq!(
            edit(
                "repl = { hints = true }\n",
                &[("repl.hints", Some("false"))]
            )
            .unwrap(),
            "repl = { hints = false }\n"
        );
        let e = edit(
            "repl = { hints = true }\n",
            &[("repl.highlight", Some("false"))],
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("inline table"), "{e:#}");
        // A table where a value belongs is not overwritten.
        let e = edit("[color]\nx = 1\n", &[("color", Some("never"))]).unwrap_err();
        assert!(
            format!("{e:#}").contains("config.toml:1:2: 'color' cannot be changed here: a table"),
            "{e:#}"
        );
    }

    #[test]
    fn a_symlinked_config_is_followed_and_keeps_its_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("dotfiles-config.toml");
        std::fs::write(&real, "color = \"never\"\n").unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join(FILE);
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write(&link, &[("color", Some("always"))]).unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(
            std::fs::read_to_string(&real).unwrap(),
            "color = \"always\"\n"
        );
        let mode = std::fs::metadata(&real).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }

    #[test]
    fn a_file_that_does_not_parse_is_never_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let broken = "color = \"never\"\n[repl\nhints = true\n";
        std::fs::write(&path, broken).unwrap();
        let e = write(&path, &[("color", Some("always"))]).unwrap_err();
        assert!(format!("{e:#}").contains("config.toml:2:"), "{e:#}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), broken);
    }

    #[test]
    fn a_fifo_in_place_of_the_file_is_refused_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_small(&path).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let c = Config::load(&path);
        assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
        assert!(write(&path, &[("color", Some("never"))]).is_err());
    }

    #[test]
    fn changes_on_disk_are_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let c = Config::load(&path);
        assert!(!c.changed_on_disk());
        std::fs::write(&path, "color = \"never\"\n").unwrap();
        assert!(c.changed_on_disk());
        assert!(!Config::load(&path).changed_on_disk());
    }
}
