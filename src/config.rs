//! `config.toml`: the user's settings, in a file they can read, edit, comment and keep with
//! their dotfiles. It lives in the platform config directory, or beside the state store when
//! the home is given with `--home` or `VALYXO_HOME`.
//!
//! Keys are the setting names from [`crate::settings`]; a dotted name is a key in a table, so
//! `repl.hints` is written `[repl]` / `hints = false` (or `repl.hints = false`). Reading never
//! fails: every problem (a syntax error, an unknown key, a bad value) is collected with its
//! line and column, and the key it concerns falls back to its default while the rest of the
//! file still applies. Writing edits the file in place (comments and layout are kept), under a
//! lock, through a temporary file renamed over the old one, and refuses to touch a file that
//! does not parse rather than lose what the user wrote.

use crate::settings;
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use toml_edit::{DocumentMut, Item, Table, Value};

pub const FILE: &str = "config.toml";

/// Larger files are not read: a config or theme is a few kilobytes, and a huge file there
/// is a mistake that should not stall start-up.
pub const MAX_SIZE: u64 = 1 << 20;

/// Reads a small text file: `Ok(None)` when it does not exist.
pub fn read_small(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
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
    (line, before[start..].chars().count() + 1)
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

/// Parses `text` as TOML. A syntax error is reported and its line blanked out, and parsing
/// tries again, so one typo does not throw away the rest of the file.
pub fn parse_lenient(file: &Path, text: &str) -> (toml_edit::Document<String>, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut current = text.to_string();
    for _ in 0..32 {
        match toml_edit::Document::parse(current.clone()) {
            Ok(doc) => return (doc, problems),
            Err(e) => {
                let offset = e.span().map_or(0, |s| s.start);
                let message = e.message().trim().to_string();
                problems.push(Problem::at(
                    file,
                    &current,
                    offset,
                    format!("{message} (this line is ignored)"),
                ));
                // Blank the offending line (keeping byte offsets and line numbers intact).
                let start = current[..offset.min(current.len())]
                    .rfind('\n')
                    .map_or(0, |i| i + 1);
                let end = current[start..]
                    .find('\n')
                    .map_or(current.len(), |i| start + i);
                if current[start..end].trim().is_empty() {
                    break;
                }
                let blank = " ".repeat(end - start);
                current.replace_range(start..end, &blank);
            }
        }
    }
    let doc = toml_edit::Document::parse(String::new()).expect("empty TOML parses");
    (doc, problems)
}

/// The entries of a parsed TOML table: (key, dotted name under `prefix`, byte offset of the
/// key in the source, item).
pub fn entries<'t>(table: &'t Table, prefix: &str) -> Vec<(&'t str, String, usize, &'t Item)> {
    table
        .iter()
        .filter_map(|(name, _)| {
            let (key, item) = table.get_key_value(name)?;
            let full = if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}.{name}")
            };
            let at = key.span().or_else(|| item.span()).map_or(0, |s| s.start);
            Some((key.get(), full, at, item))
        })
        .collect()
}

/// A value as a setting string, or why it cannot be one.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.value().clone()),
        Value::Boolean(b) => Some(b.value().to_string()),
        Value::Integer(i) => Some(i.value().to_string()),
        Value::Float(f) => Some(f.value().to_string()),
        _ => None,
    }
}

/// The settings in a config file, already checked.
#[derive(Clone, Debug, Default)]
pub struct Config {
    pub path: PathBuf,
    values: HashMap<String, String>,
    /// Everything wrong with the file; the keys concerned use their defaults.
    pub problems: Vec<Problem>,
    stamp: Option<(SystemTime, u64)>,
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
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
        let (doc, mut problems) = parse_lenient(path, text);
        let mut values = HashMap::new();
        let raw = doc.raw().to_string();
        walk(path, &raw, doc.as_table(), "", &mut values, &mut problems);
        problems.sort_by_key(|p| (p.line, p.col));
        Config {
            path: path.to_path_buf(),
            values,
            problems,
            stamp: None,
        }
    }

    /// The checked value of `key`, if the file sets it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// Every key the file sets validly.
    pub fn values(&self) -> &HashMap<String, String> {
        &self.values
    }

    /// Whether the file on disk differs (by time and size) from what was loaded.
    pub fn changed_on_disk(&self) -> bool {
        stamp(&self.path) != self.stamp
    }
}

fn walk(
    path: &Path,
    text: &str,
    table: &Table,
    prefix: &str,
    values: &mut HashMap<String, String>,
    problems: &mut Vec<Problem>,
) {
    for (name, full, at, item) in entries(table, prefix) {
        match item {
            Item::Table(t) => walk(path, text, t, &full, values, problems),
            Item::Value(Value::InlineTable(t)) if settings::find(&full).is_none() => {
                let t = t.clone().into_table();
                walk(path, text, &t, &full, values, problems)
            }
            Item::Value(v) => {
                let vat = v.span().map_or(at, |s| s.start);
                let Some(raw) = scalar(v) else {
                    problems.push(Problem::at(
                        path,
                        text,
                        vat,
                        format!("{full}: expected a string, number or boolean; using the default"),
                    ));
                    continue;
                };
                match settings::validate(&full, &raw) {
                    Ok(v) => {
                        values.insert(full, v);
                    }
                    Err(e) if settings::find(&full).is_none() => {
                        let m = if !prefix.is_empty() && settings::find(name).is_some() {
                            format!(
                                "'{name}' is read here as '{full}'; top-level settings go above the first [table]"
                            )
                        } else {
                            format!("{e:#}")
                        };
                        problems.push(Problem::at(path, text, at, m));
                    }
                    Err(e) => {
                        let default = settings::find(&full).map_or("", |d| d.default);
                        problems.push(Problem::at(
                            path,
                            text,
                            vat,
                            format!("{e:#}; using the default '{default}'"),
                        ));
                    }
                }
            }
            Item::ArrayOfTables(_) | Item::None => problems.push(Problem::at(
                path,
                text,
                at,
                format!("{full}: expected a setting or a table of settings"),
            )),
        }
    }
}

/// The TOML value to write for a setting: a boolean or integer when the setting is one.
fn typed(key: &str, value: &str) -> Value {
    let def = settings::find(key);
    if def.is_some_and(|d| d.choices == settings::BOOL) {
        if let Ok(b) = value.parse::<bool>() {
            return Value::from(b);
        }
    }
    if def.is_some_and(|d| d.default.parse::<i64>().is_ok()) {
        if let Ok(n) = value.parse::<i64>() {
            return Value::from(n);
        }
    }
    Value::from(value)
}

/// Sets (`Some`) or removes (`None`) settings in the config file at `path`, keeping the
/// rest of the file as written. Values must already be validated.
pub fn write(path: &Path, changes: &[(&str, Option<&str>)]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the config directory {}", dir.display()))?;
    // Writers in other sessions wait for each other: the lock is on the directory, which
    // (unlike the file) is not replaced by the rename below.
    let lock = std::fs::File::open(dir)
        .with_context(|| format!("cannot open the config directory {}", dir.display()))?;
    lock.lock()
        .with_context(|| format!("cannot lock the config directory {}", dir.display()))?;
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut doc: DocumentMut = match text.parse() {
        Ok(d) => d,
        Err(e) => {
            let p = Problem::at(
                path,
                &text,
                e.span().map_or(0, |s| s.start),
                e.message().trim(),
            );
            bail!("{p}\nthe config file does not parse, so it was left as it is; fix or remove that line first")
        }
    };
    for (key, value) in changes {
        let parts: Vec<&str> = key.split('.').collect();
        let (last, tables) = parts.split_last().expect("a key has a name");
        let mut table = doc.as_table_mut();
        let mut ok = true;
        for t in tables {
            if table.get(t).is_none() {
                if value.is_none() {
                    ok = false;
                    break;
                }
                let mut new = Table::new();
                new.set_implicit(false);
                table.insert(t, Item::Table(new));
            }
            if matches!(table.get(t), Some(Item::Value(Value::InlineTable(_)))) {
                let item = table.get_mut(t).expect("present");
                if let Item::Value(Value::InlineTable(inline)) = std::mem::take(item) {
                    *item = Item::Table(inline.into_table());
                }
            }
            match table.get_mut(t) {
                Some(Item::Table(next)) => table = next,
                _ => bail!(
                    "{}: '{t}' is not a table, so '{key}' cannot be set; fix the file first",
                    path.display()
                ),
            }
        }
        if !ok {
            continue;
        }
        match value {
            Some(v) => {
                let new = typed(key, v);
                match table.get_mut(last) {
                    // Keep the comment and spacing around an existing value.
                    Some(Item::Value(old)) => {
                        let decor = old.decor().clone();
                        *old = new;
                        *old.decor_mut() = decor;
                    }
                    _ => {
                        table.insert(last, Item::Value(new));
                    }
                }
            }
            None => {
                table.remove(last);
            }
        }
    }
    // Drop tables left empty by removals.
    let empty: Vec<String> = doc
        .as_table()
        .iter()
        .filter(|(_, i)| i.as_table().is_some_and(|t| t.is_empty()))
        .map(|(k, _)| k.to_string())
        .collect();
    for k in empty {
        doc.as_table_mut().remove(&k);
    }
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    use std::io::Write;
    let mut text = doc.to_string();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("cannot replace {}", path.display()))?;
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
    fn a_syntax_error_loses_only_its_line() {
        let c = parse("color = \"never\"\nrepl.hints = fals\n[script]\nmax_call_depth = 9\n");
        assert_eq!(c.get("color"), Some("never"));
        assert_eq!(c.get("script.max_call_depth"), Some("9"));
        assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
        assert_eq!(c.problems[0].line, 2);
        assert!(c.problems[0].message.contains("ignored"));
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
        assert!(!text.contains("[script]"), "{text}");
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
