//! Recovery copies: the editor keeps the text of each modified buffer in the store a moment
//! after it changes, and drops it when the buffer is saved or its changes are discarded. A
//! copy left behind (the terminal closed, the process was killed) is offered back the next
//! time the file is opened, and `edit --recovered` lists them.

use crate::store::{now_ms, Store};
use anyhow::Result;
use rusqlite::OptionalExtension;

/// A recovery copy of one file's unsaved text.
pub struct Copy {
    pub path: String,
    pub text: String,
    /// The content hash of the file when the editor last read or wrote it.
    pub disk_hash: Option<blake3::Hash>,
    /// Milliseconds since the epoch.
    pub saved_at: i64,
    /// The process that wrote it.
    pub pid: u32,
    /// That process's identity beyond its pid (boot and start time), where known.
    pub owner: Option<String>,
}

/// Who a process is, beyond its pid, which a later process may reuse: the boot it runs in
/// and when it started (Linux; `None` elsewhere).
fn identity(pid: u32) -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which may hold spaces and parentheses; the start
    // time is the 22nd field of the line, the 20th after the name.
    let start = stat.rsplit_once(')')?.1.split_whitespace().nth(19)?;
    Some(format!("{}:{start}", boot.trim()))
}

impl Copy {
    /// Whether the process that wrote the copy is another one that is still running: an
    /// editor open on the same file in another valyxo, whose copy is not ours to offer.
    pub fn writer_is_running(&self) -> bool {
        if self.pid == std::process::id() || self.pid == 0 {
            return false;
        }
        if let Some(owner) = &self.owner {
            // A process with that pid now may be another one that reused it.
            return identity(self.pid).as_ref() == Some(owner);
        }
        // SAFETY: signal 0 only checks that the process exists; nothing is sent.
        unsafe { libc::kill(self.pid as libc::pid_t, 0) == 0 }
    }
}

fn hash_of(bytes: Option<Vec<u8>>) -> Option<blake3::Hash> {
    bytes
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .map(blake3::Hash::from_bytes)
}

/// Writes (or replaces) the recovery copy of `path`. One committed statement.
pub fn save(store: &Store, path: &str, text: &str, disk_hash: Option<blake3::Hash>) -> Result<()> {
    store
        .conn()
        .prepare_cached(
            "INSERT OR REPLACE INTO recovery (path, text, disk_hash, saved_at, pid, owner) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(rusqlite::params![
            path,
            text,
            disk_hash.map(|h| h.as_bytes().to_vec()),
            now_ms(),
            std::process::id(),
            identity(std::process::id())
        ])?;
    Ok(())
}

const SELECT: &str = "SELECT path, text, disk_hash, saved_at, pid, owner FROM recovery";

fn copy_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Copy> {
    Ok(Copy {
        path: r.get(0)?,
        text: r.get(1)?,
        disk_hash: hash_of(r.get(2)?),
        saved_at: r.get(3)?,
        pid: r.get(4)?,
        owner: r.get(5)?,
    })
}

pub fn get(store: &Store, path: &str) -> Result<Option<Copy>> {
    Ok(store
        .conn()
        .prepare_cached(&format!("{SELECT} WHERE path = ?1"))?
        .query_row([path], copy_of)
        .optional()?)
}

/// Drops the copy of `path`; returns whether there was one.
pub fn remove(store: &Store, path: &str) -> Result<bool> {
    Ok(store
        .conn()
        .prepare_cached("DELETE FROM recovery WHERE path = ?1")?
        .execute([path])?
        > 0)
}

/// The copies of buffers without a name (`new:…` keys), oldest first.
pub fn scratch(store: &Store) -> Result<Vec<Copy>> {
    use super::buffer::SCRATCH;
    // Keys from the prefix up to the prefix with its last character moved one on (`new;`):
    // a range search of the primary key.
    let mut end = SCRATCH.to_string();
    let last = end.pop().map_or(0, u32::from);
    end.extend(char::from_u32(last + 1));
    let conn = store.conn();
    let mut st = conn.prepare_cached(&format!(
        "{SELECT} WHERE path >= ?1 AND path < ?2 ORDER BY saved_at"
    ))?;
    let rows = st.query_map([SCRATCH, end.as_str()], copy_of)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every copy, oldest first.
pub fn list(store: &Store) -> Result<Vec<Copy>> {
    let conn = store.conn();
    let mut st = conn.prepare_cached(&format!("{SELECT} ORDER BY saved_at"))?;
    let rows = st.query_map([], copy_of)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_pid_is_not_the_writer() {
        let me = identity(std::process::id());
        assert!(me.is_some(), "this test runs on Linux");
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep");
        let pid = child.id();
        let copy = |owner: Option<String>| Copy {
            path: "/a".into(),
            text: String::new(),
            disk_hash: None,
            saved_at: 0,
            pid,
            owner,
        };
        let alive = identity(pid);
        assert!(copy(alive.clone()).writer_is_running());
        assert!(
            !copy(Some("another boot:1".into())).writer_is_running(),
            "same pid, another process"
        );
        let _ = child.kill();
        let _ = child.wait();
        assert!(!copy(alive).writer_is_running(), "the writer has ended");
    }
}
