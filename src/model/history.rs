//! Shell history in the store (model): every line typed at the prompt with its working directory,
//! exit status, duration, time and session. Shared by all sessions on one home.
//!
//! A line that holds a secret — a variable whose name says it is one (`…_KEY`, `…_TOKEN`,
//! `…_SECRET`, `…PASSWORD…`) given a value, or a value shaped like a known API key or token
//! ([`KEY_SHAPES`]) — is not kept: the prompt's history is loaded from the store, so it is
//! left out of both.

use crate::store::Store;
use anyhow::Result;
use rusqlite::params;

#[derive(Debug, Clone)]
pub struct Entry {
    pub id: i64,
    pub command: String,
    pub cwd: String,
    pub status: Option<i32>,
    pub duration_ms: Option<i64>,
    pub started_at: i64,
}

/// Keeps a line typed at the prompt; returns its id, or `None` when it holds a secret
/// ([`holds_secret`]) and is not kept.
pub fn record(
    store: &Store,
    command: &str,
    cwd: &str,
    status: i32,
    duration_ms: i64,
    started_at: i64,
    session: &str,
) -> Result<Option<i64>> {
    if holds_secret(command) {
        return Ok(None);
    }
    let conn = store.conn();
    conn.prepare_cached(
        "INSERT INTO history (command, cwd, status, duration_ms, started_at, session) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![command, cwd, status, duration_ms, started_at, session])?;
    Ok(Some(conn.last_insert_rowid()))
}

/// What a variable's name ends with when it holds a secret.
pub const SECRET_NAME_ENDS: &[&str] = &["_KEY", "_TOKEN", "_SECRET"];
/// What a variable's name contains when it holds a secret.
pub const SECRET_NAME_PARTS: &[&str] = &["PASSWORD", "PASSWD"];

/// A known shape of API key or token: `prefix`, then at least `min` (and at most `max`)
/// characters for which `tail` holds.
pub struct KeyShape {
    pub what: &'static str,
    pub prefix: &'static str,
    pub min: usize,
    pub max: usize,
    pub tail: fn(char) -> bool,
}

fn key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

fn upper_or_digit(c: char) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}

/// The shapes of keys and tokens recognised in lines and in exported values.
pub const KEY_SHAPES: &[KeyShape] = &[
    // OpenAI (`sk-…`, `sk-proj-…`) and the many APIs that copy its form: 20 characters or
    // more in all.
    KeyShape {
        what: "an OpenAI-style API key",
        prefix: "sk-",
        min: 17,
        max: usize::MAX,
        tail: key_char,
    },
    KeyShape {
        what: "a GitHub token",
        prefix: "ghp_",
        min: 20,
        max: usize::MAX,
        tail: key_char,
    },
    KeyShape {
        what: "a GitHub token",
        prefix: "github_pat_",
        min: 20,
        max: usize::MAX,
        tail: key_char,
    },
    KeyShape {
        what: "a Slack token",
        prefix: "xoxb-",
        min: 10,
        max: usize::MAX,
        tail: key_char,
    },
    KeyShape {
        what: "a Slack token",
        prefix: "xoxa-",
        min: 10,
        max: usize::MAX,
        tail: key_char,
    },
    KeyShape {
        what: "a Slack token",
        prefix: "xoxp-",
        min: 10,
        max: usize::MAX,
        tail: key_char,
    },
    KeyShape {
        what: "a Slack token",
        prefix: "xoxr-",
        min: 10,
        max: usize::MAX,
        tail: key_char,
    },
    KeyShape {
        what: "a Slack token",
        prefix: "xoxs-",
        min: 10,
        max: usize::MAX,
        tail: key_char,
    },
    KeyShape {
        what: "an AWS access key ID",
        prefix: "AKIA",
        min: 16,
        max: 16,
        tail: upper_or_digit,
    },
    KeyShape {
        what: "a GitLab token",
        prefix: "glpat-",
        min: 20,
        max: usize::MAX,
        tail: key_char,
    },
];

/// The shape of the first key or token in `text`, if one is there: a prefix of
/// [`KEY_SHAPES`] at the start of a word (not after a letter, digit, `-` or `_`), followed by
/// the right number of its characters.
pub fn find_key(text: &str) -> Option<&'static KeyShape> {
    KEY_SHAPES.iter().find(|shape| {
        text.match_indices(shape.prefix).any(|(at, _)| {
            let starts_word = !text[..at].chars().next_back().is_some_and(key_char);
            let n = text[at + shape.prefix.len()..]
                .chars()
                .take_while(|&c| (shape.tail)(c))
                .count();
            starts_word && n >= shape.min && n <= shape.max
        })
    })
}

/// Whether a variable named `name` holds a secret, by its name.
pub fn secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_NAME_ENDS.iter().any(|end| upper.ends_with(end))
        || SECRET_NAME_PARTS.iter().any(|part| upper.contains(part))
}

/// Whether setting `name` to `value` sets a secret: a secret's name with a value, or a value
/// shaped like a key.
pub fn secret_variable(name: &str, value: &str) -> bool {
    (secret_name(name) && !value.trim().is_empty()) || find_key(value).is_some()
}

/// Whether a line holds a secret: a word `NAME=VALUE` (after `export`, or anywhere) that sets
/// a secret, or anything shaped like a key. Quotes are looked through, so `export
/// 'API_TOKEN=x'` counts.
pub fn holds_secret(line: &str) -> bool {
    if find_key(line).is_some() {
        return true;
    }
    line.split(|c: char| c.is_whitespace() || ";|&()<>".contains(c))
        .filter_map(|word| {
            let word = word.trim_start_matches(['\'', '"', '\\']);
            word.split_once('=')
        })
        .any(|(name, value)| {
            let value = value.trim_matches(['\'', '"']);
            let mut cs = name.chars();
            let is_name = cs
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && cs.all(|c| c.is_ascii_alphanumeric() || c == '_');
            is_name && secret_variable(name, value)
        })
}

fn row(r: &rusqlite::Row) -> rusqlite::Result<Entry> {
    Ok(Entry {
        id: r.get(0)?,
        command: r.get(1)?,
        cwd: r.get(2)?,
        status: r.get(3)?,
        duration_ms: r.get(4)?,
        started_at: r.get(5)?,
    })
}

/// The last `limit` entries (all when `None`), oldest first; `contains` filters by a
/// case-insensitive substring, `cwd` by working directory.
pub fn list(
    store: &Store,
    limit: Option<usize>,
    contains: Option<&str>,
    cwd: Option<&str>,
) -> Result<Vec<Entry>> {
    let conn = store.conn();
    let mut st = conn.prepare_cached(
        "SELECT id, command, cwd, status, duration_ms, started_at FROM history
         WHERE (?1 IS NULL OR instr(lower(command), lower(?1)) > 0) AND (?2 IS NULL OR cwd = ?2)
         ORDER BY id DESC LIMIT ?3",
    )?;
    let lim = limit.map(|l| l as i64).unwrap_or(-1);
    let mut v: Vec<Entry> = st
        .query_map(params![contains, cwd, lim], row)?
        .collect::<rusqlite::Result<_>>()?;
    v.reverse();
    Ok(v)
}

/// Commands recorded after `after_id`, oldest first, with their ids (for the REPL to merge
/// lines from other sessions).
pub fn since(store: &Store, after_id: i64) -> Result<Vec<(i64, String)>> {
    let conn = store.conn();
    let mut st =
        conn.prepare_cached("SELECT id, command FROM history WHERE id > ?1 ORDER BY id")?;
    let v = st
        .query_map([after_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(v)
}

/// In-memory index for fish-style suggestions: the newest distinct commands, searched by
/// prefix from the newest. Kept in sync with the store by [`HintIndex::refresh`].
#[derive(Default)]
pub struct HintIndex {
    /// Distinct commands, oldest first (a repeated command moves to the end).
    entries: Vec<String>,
    positions: std::collections::HashMap<String, usize>,
    pub last_id: i64,
    /// Slots freed by moved entries; compacted when they pile up.
    holes: usize,
}

impl HintIndex {
    pub fn push(&mut self, cmd: &str) {
        if cmd.trim().is_empty() {
            return;
        }
        if let Some(&i) = self.positions.get(cmd) {
            self.entries[i].clear();
            self.holes += 1;
        }
        self.positions.insert(cmd.to_string(), self.entries.len());
        self.entries.push(cmd.to_string());
        if self.holes > 1024 && self.holes > self.entries.len() / 2 {
            self.compact();
        }
    }

    fn compact(&mut self) {
        self.entries.retain(|e| !e.is_empty());
        self.positions = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.clone(), i))
            .collect();
        self.holes = 0;
    }

    /// Loads entries newer than what the index has seen.
    pub fn refresh(&mut self, store: &Store) -> Result<Vec<String>> {
        let new = since(store, self.last_id)?;
        let mut added = Vec::with_capacity(new.len());
        for (id, cmd) in new {
            self.last_id = id;
            self.push(&cmd);
            added.push(cmd);
        }
        Ok(added)
    }

    /// The rest of the newest entry that starts with `prefix` (and is longer than it).
    pub fn hint(&self, prefix: &str) -> Option<&str> {
        if prefix.is_empty() {
            return None;
        }
        self.entries
            .iter()
            .rev()
            .find(|e| e.len() > prefix.len() && e.starts_with(prefix))
            .map(|e| &e[prefix.len()..])
    }

    pub fn len(&self) -> usize {
        self.entries.len() - self.holes
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_prefer_the_newest_match() {
        let mut h = HintIndex::default();
        h.push("ls -la");
        h.push("grep -rn foo");
        h.push("ls -l /tmp");
        assert_eq!(h.hint("ls"), Some(" -l /tmp"));
        assert_eq!(h.hint("gr"), Some("ep -rn foo"));
        assert_eq!(h.hint("ls -l /tmp"), None);
        assert_eq!(h.hint(""), None);
        h.push("ls -la");
        assert_eq!(h.hint("ls"), Some(" -la"));
        assert_eq!(h.len(), 3);
    }

    #[test]
    fn record_list_search_and_refresh() {
        let s = Store::in_memory().unwrap();
        record(&s, "echo one", "/", 0, 1, 1, "a").unwrap().unwrap();
        record(&s, "ls /x", "/x", 1, 2, 2, "b").unwrap();
        record(&s, "ECHO two", "/", 0, 3, 3, "a").unwrap();
        assert_eq!(list(&s, None, None, None).unwrap().len(), 3);
        let found = list(&s, None, Some("echo"), None).unwrap();
        assert_eq!(
            found.iter().map(|e| e.command.as_str()).collect::<Vec<_>>(),
            ["echo one", "ECHO two"]
        );
        assert_eq!(
            list(&s, Some(1), None, None).unwrap()[0].command,
            "ECHO two"
        );
        assert_eq!(list(&s, None, None, Some("/x")).unwrap()[0].status, Some(1));
        let mut h = HintIndex::default();
        assert_eq!(h.refresh(&s).unwrap().len(), 3);
        record(&s, "echo three", "/", 0, 1, 4, "b").unwrap();
        assert_eq!(h.refresh(&s).unwrap(), vec!["echo three".to_string()]);
        assert_eq!(h.hint("echo t"), Some("hree"));
    }

    #[test]
    fn compaction_keeps_order() {
        let mut h = HintIndex::default();
        for i in 0..5000 {
            h.push(&format!("cmd {}", i % 3));
        }
        assert_eq!(h.len(), 3);
        assert_eq!(h.hint("cmd"), Some(" 1")); // 4999 % 3
    }

    #[test]
    fn each_key_shape_is_found() {
        // One real-looking example per shape, in KEY_SHAPES order.
        let examples = [
            "sk-proj-abcdefghijklmnop",
            "ghp_0123456789abcdefghijKLMNOPQRSTUVWXYZ",
            "github_pat_11ABCDEFG0123456789_abcdefghij",
            "xoxb-1234567890-abcdefghij",
            "xoxa-2-1234567890abcdef",
            "xoxp-1234567890-1234567890",
            "xoxr-abcdefghij1234",
            "xoxs-abcdefghij1234",
            "AKIAIOSFODNN7EXAMPLE",
            "glpat-abcdefghij0123456789",
        ];
        assert_eq!(
            examples.len(),
            KEY_SHAPES.len(),
            "an example for every shape"
        );
        for (shape, example) in KEY_SHAPES.iter().zip(examples) {
            assert!(example.starts_with(shape.prefix), "{example}");
            let found = find_key(example).map(|s| s.prefix);
            assert_eq!(found, Some(shape.prefix), "{example}");
            assert_eq!(
                find_key(&format!("export X={example}")).map(|s| s.prefix),
                Some(shape.prefix)
            );
            // Cut short, it is not a key.
            let short = &example[..shape.prefix.len() + shape.min - 1];
            assert!(find_key(short).is_none(), "{short}");
        }
    }

    #[test]
    fn words_that_only_look_alike_are_not_keys() {
        for text in [
            "sk-short",
            "task-0123456789abcdefghij",
            "desk-0123456789abcdefghij",
            "AKIAIOSFODNN7EXAMPLE1",
            "akiaiosfodnn7example",
            "xoxq-1234567890-abc",
            "glpat-",
            "echo hello world",
        ] {
            assert!(find_key(text).is_none(), "{text}");
        }
        assert!(find_key("Bearer sk-0123456789abcdefghij").is_some());
        assert!(find_key("--token=ghp_0123456789abcdefghij").is_some());
    }

    #[test]
    fn secret_names_and_lines() {
        for name in [
            "OPENAI_API_KEY",
            "VALYXO_API_KEY",
            "GITHUB_TOKEN",
            "AWS_SECRET",
            "DB_PASSWORD",
            "PASSWORD",
            "MYSQL_PASSWD",
            "api_key",
        ] {
            assert!(secret_name(name), "{name}");
        }
        for name in ["KEYBOARD", "MONKEY", "TOKENS", "PATH", "EDITOR", "KEY"] {
            assert!(!secret_name(name), "{name}");
        }
        assert!(!secret_variable("GITHUB_TOKEN", ""), "nothing set");
        assert!(secret_variable("X", "sk-0123456789abcdefghij"));
        for line in [
            "export OPENAI_API_KEY=abc",
            "export GREETING=hi VALYXO_API_KEY=abc",
            "export 'DB_PASSWORD=two words'",
            "export \"GITHUB_TOKEN=x\"",
            "cd /; export AWS_SECRET=x && ls",
            "API_TOKEN=abc",
            "export X=sk-0123456789abcdefghij",
            "echo ghp_0123456789abcdefghijklmnop",
        ] {
            assert!(holds_secret(line), "{line}");
        }
        for line in [
            "export GREETING=hello",
            "export OPENAI_API_KEY=",
            "unset OPENAI_API_KEY",
            "ai key set",
            "echo $GITHUB_TOKEN",
            "ls -l",
        ] {
            assert!(!holds_secret(line), "{line}");
        }
    }

    #[test]
    fn lines_with_secrets_are_not_recorded() {
        let s = Store::in_memory().unwrap();
        assert!(record(&s, "ls", "/", 0, 1, 1, "a").unwrap().is_some());
        let line = "export OPENAI_API_KEY=sk-0123456789abcdefghij";
        assert_eq!(record(&s, line, "/", 0, 1, 2, "a").unwrap(), None);
        let all = list(&s, None, None, None).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].command, "ls");
        let mut h = HintIndex::default();
        h.refresh(&s).unwrap();
        assert_eq!(h.hint("export"), None);
    }
}
