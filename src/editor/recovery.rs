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
}

impl Copy {
    /// Whether the process that wrote the copy is another one that is still running: an
    /// editor open on the same file in another valyxo, whose copy is not ours to offer.
    pub fn writer_is_running(&self) -> bool {
        let pid = self.pid as libc::pid_t;
        // SAFETY: signal 0 only checks that the process exists; nothing is sent.
        self.pid != std::process::id() && pid > 0 && unsafe { libc::kill(pid, 0) } == 0
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
            "INSERT OR REPLACE INTO recovery (path, text, disk_hash, saved_at, pid) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(rusqlite::params![
            path,
            text,
            disk_hash.map(|h| h.as_bytes().to_vec()),
            now_ms(),
            std::process::id()
        ])?;
    Ok(())
}

const SELECT: &str = "SELECT path, text, disk_hash, saved_at, pid FROM recovery";

fn copy_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Copy> {
    Ok(Copy {
        path: r.get(0)?,
        text: r.get(1)?,
        disk_hash: hash_of(r.get(2)?),
        saved_at: r.get(3)?,
        pid: r.get(4)?,
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

/// Every copy, oldest first.
pub fn list(store: &Store) -> Result<Vec<Copy>> {
    let conn = store.conn();
    let mut st = conn.prepare_cached(&format!("{SELECT} ORDER BY saved_at"))?;
    let rows = st.query_map([], copy_of)?;
    Ok(rows.collect::<Result<_, _>>()?)
}
