//! `aliases.toml` (model): the user's command aliases, one `name = "value"` per line, in a
//! file beside `config.toml` that they can read, edit and keep with their dotfiles (as
//! shells keep aliases in their rc files). A run reads it instead of the state store, so a
//! line that needs nothing stored (`valyxo -c true`) never opens the store.
//!
//! Reading never fails: a line that does not parse, a value that is not a string and a name
//! no alias may have are reported with their line and left out, and the rest applies.
//! Writing (`alias`, `unalias`) edits the file in place with `toml_edit`, so comments and
//! layout stay, through [`config::rewrite`] (locked, a temporary file renamed over the old
//! one), and refuses a file that does not parse rather than lose what the user wrote.
//! Homes older than the file kept their aliases in the store; the hub moves them here.

use crate::config::{self, Problem, Stamp};
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const FILE: &str = "aliases.toml";

/// The aliases a file holds, with what is wrong in it.
#[derive(Debug, Default, Clone)]
pub struct Aliases {
    pub path: PathBuf,
    map: BTreeMap<String, String>,
    pub problems: Vec<Problem>,
    stamp: Stamp,
}

/// Whether `name` may name an alias: a word the shell reads as one plain command name.
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "'\"$;|&<>=\\/".contains(c))
    {
        bail!("'{}' is not a valid alias name", crate::text::escape(name));
    }
    Ok(())
}

impl Aliases {
    /// Reads the aliases file at `path`; a missing file holds none.
    pub fn load(path: &Path) -> Aliases {
        let stamp = config::stamp(path);
        let mut a = match config::read_small(path) {
            Ok(Some(bytes)) => {
                let mut a = Aliases::parse(path, &String::from_utf8_lossy(&bytes));
                if std::str::from_utf8(&bytes).is_err() {
                    a.problems.insert(
                        0,
                        Problem::at(path, "", 0, "the file is not valid UTF-8".to_string()),
                    );
                }
                a
            }
            Ok(None) => Aliases {
                path: path.to_path_buf(),
                ..Default::default()
            },
            Err(e) => Aliases {
                path: path.to_path_buf(),
                problems: vec![Problem::at(
                    path,
                    "",
                    0,
                    format!("cannot read the file: {e}; no aliases are in use"),
                )],
                ..Default::default()
            },
        };
        a.stamp = stamp;
        a
    }

    /// Reads aliases from the TOML `text` (of the file at `path`).
    pub fn parse(path: &Path, text: &str) -> Aliases {
        let (clean, mut problems) = config::parse_lenient(path, text);
        let table = toml::de::DeTable::parse(&clean)
            .map_or_else(|_| toml::de::DeTable::default(), |t| t.into_inner());
        let mut map = BTreeMap::new();
        for (name, value) in table.iter() {
            let at = name.span().start;
            let name = name.get_ref().to_string();
            if let Err(e) = check_name(&name) {
                problems.push(Problem::at(path, &clean, at, format!("{e}; left out")));
                continue;
            }
            match value.get_ref() {
                toml::de::DeValue::String(v) => {
                    map.insert(name, v.to_string());
                }
                _ => problems.push(Problem::at(
                    path,
                    &clean,
                    value.span().start,
                    format!(
                        "alias '{}': expected its command line in quotes; left out",
                        crate::text::escape(&name)
                    ),
                )),
            }
        }
        problems.sort_by_key(|p| (p.line, p.col));
        Aliases {
            path: path.to_path_buf(),
            map,
            problems,
            stamp: None,
        }
    }

    /// The value of the alias `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    /// Every alias, by name.
    pub fn all(&self) -> &BTreeMap<String, String> {
        &self.map
    }

    /// Whether the file on disk differs (by time and size) from what was loaded.
    pub fn changed_on_disk(&self) -> bool {
        config::stamp(&self.path) != self.stamp
    }
}

/// Sets (`Some`) or removes (`None`) aliases in the file at `path`; names must be valid
/// ([`check_name`]). Only the lines concerned change; a new alias goes at the end. Returns
/// the file as written.
pub fn write(path: &Path, changes: &[(&str, Option<&str>)]) -> Result<Aliases> {
    let (text, stamp) = config::rewrite(path, |real, text| {
        let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
            let p = Problem::at(real, &text, e.span().map_or(0, |s| s.start), e.message().trim());
            anyhow::anyhow!(
                "{p}\nthe aliases file does not parse, so it was left as it is; fix or remove that line first"
            )
        })?;
        for (name, value) in changes {
            check_name(name)?;
            match value {
                Some(v) => match doc.get_mut(name) {
                    Some(toml_edit::Item::Value(old)) => {
                        let decor = old.decor().clone();
                        *old = toml_edit::Value::from(*v);
                        *old.decor_mut() = decor;
                    }
                    _ => {
                        doc.insert(name, toml_edit::value(*v));
                    }
                },
                None => {
                    doc.remove(name);
                }
            }
        }
        let written = doc.to_string();
        // What was written must read back as what was asked.
        let check = Aliases::parse(real, &written);
        for (name, value) in changes {
            if check.get(name) != *value {
                bail!(
                    "{}: could not write alias '{}' safely; the file was left as it is",
                    real.display(),
                    crate::text::escape(name)
                );
            }
        }
        Ok(written)
    })?;
    let mut written = Aliases::parse(path, &text);
    written.stamp = stamp;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_values_and_comments_read_and_write_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        std::fs::write(&path, "# mine\nll = \"ls -l\" # long\n").unwrap();
        let names = ["g.s", "é", "[x]", "a-b", "1"];
        let changes: Vec<(&str, Option<&str>)> = names
            .iter()
            .map(|n| (*n, Some("echo 'it''s' \"q\" \\")))
            .collect();
        let a = write(&path, &changes).unwrap();
        for n in names {
            assert_eq!(a.get(n), Some("echo 'it''s' \"q\" \\"), "{n}");
        }
        let a = write(&path, &[("ll", Some("ls -la")), ("g.s", None)]).unwrap();
        assert_eq!(a.get("ll"), Some("ls -la"));
        assert_eq!(a.get("g.s"), None);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# mine\nll = \"ls -la\" # long\n"),
            "{text}"
        );
        let read = Aliases::load(&path);
        assert_eq!(read.all(), a.all());
        assert!(read.problems.is_empty());
        assert!(!read.changed_on_disk());
        assert!(write(&path, &[("a b", Some("x"))]).is_err());
    }

    #[test]
    fn a_bad_line_loses_only_itself_and_a_file_that_does_not_parse_is_never_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let text = "ll = \"ls -l\"\nbad = 3\n\"a b\" = \"x\"\nbroken = \"\nok = \"true\"\n";
        std::fs::write(&path, text).unwrap();
        let a = Aliases::load(&path);
        assert_eq!(a.get("ll"), Some("ls -l"));
        assert_eq!(a.get("ok"), Some("true"));
        assert_eq!(a.all().len(), 2);
        let lines: Vec<usize> = a.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [2, 3, 4], "{:?}", a.problems);
        assert!(write(&path, &[("x", Some("y"))]).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }

    #[test]
    fn a_new_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join(FILE);
        write(&path, &[("x", Some("echo"))]).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
