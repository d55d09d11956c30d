//! Shell history in the store: every line typed at the prompt with its working directory,
//! exit status, duration, time and session. Shared by all sessions on one home.

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

pub fn record(
    store: &Store,
    command: &str,
    cwd: &str,
    status: i32,
    duration_ms: i64,
    started_at: i64,
    session: &str,
) -> Result<i64> {
    let conn = store.conn();
    conn.prepare_cached(
        "INSERT INTO history (command, cwd, status, duration_ms, started_at, session) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![command, cwd, status, duration_ms, started_at, session])?;
    Ok(conn.last_insert_rowid())
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
        record(&s, "echo one", "/", 0, 1, 1, "a").unwrap();
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
}
