//! Recovery copies (engine): the editor (`crate::editor`) keeps the text of each modified
//! buffer in the store a moment after it changes, and every few seconds while typing goes on, and drops it when
//! the buffer is saved or its changes are discarded. A copy left behind (the terminal
//! closed, the process was killed) is offered back the next time the file is opened, and
//! `edit --recovered` lists them.
//!
//! A copy is its text as of one moment (with LF line breaks; `crlf` says how it is saved)
//! plus the edits made since, in order, so a big buffer's copy grows by what was typed, not
//! by the whole text each time. A copy kept for later under a `kept:` key is left as it is
//! while the buffer goes on keeping a copy of its own.

use crate::store::{now_ms, Store};
use anyhow::Result;
use ropey::Rope;
use rusqlite::OptionalExtension;
use std::sync::{Arc, Mutex};

/// Keys of the copies of buffers without a name start with this (`new:…`).
pub const SCRATCH: &str = "new:";

/// Keys of copies kept for later: `kept:MILLISECONDS:PATH`.
pub const KEPT: &str = "kept:";

/// The key a copy of `path` is kept under when the user keeps it for later.
pub fn kept_key(path: &str) -> String {
    format!("{KEPT}{}:{path}", now_ms())
}

/// The file a kept copy belongs to.
pub fn kept_path(key: &str) -> Option<&str> {
    key.strip_prefix(KEPT)?.split_once(':').map(|(_, p)| p)
}

/// One edit since a copy's text was written: `removed` chars at char `at` replaced by
/// `inserted`.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub at: usize,
    pub removed: usize,
    pub inserted: String,
}

impl Step {
    /// What the step costs in the store, roughly.
    pub fn size(&self) -> usize {
        self.inserted.len() + 24
    }
}

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
        if lost_its_terminal(self.pid) {
            // An editor left running on a terminal that has gone: it can never save.
            return false;
        }
        if let Some(owner) = &self.owner {
            // A process with that pid now may be another one that reused it.
            return identity(self.pid).as_ref() == Some(owner);
        }
        crate::os::process_exists(i64::from(self.pid))
    }
}

/// Whether process `pid` reads from a terminal that no longer exists (its window closed or
/// its connection dropped while it ran). Linux; false where it cannot be told.
fn lost_its_terminal(pid: u32) -> bool {
    std::fs::read_link(format!("/proc/{pid}/fd/0")).is_ok_and(|p| {
        let p = p.to_string_lossy();
        (p.starts_with("/dev/pts/") || p.starts_with("/dev/tty")) && p.ends_with(" (deleted)")
    })
}

fn hash_of(bytes: Option<Vec<u8>>) -> Option<blake3::Hash> {
    bytes
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .map(blake3::Hash::from_bytes)
}

/// Writes (or replaces) the recovery copy of `path` whole: `text` with LF line breaks, saved
/// with CRLF when `crlf`. One transaction.
pub fn save(
    store: &Store,
    path: &str,
    text: &str,
    crlf: bool,
    disk_hash: Option<blake3::Hash>,
) -> Result<()> {
    let mut conn = store.conn();
    let tx = conn.transaction()?;
    tx.prepare_cached("DELETE FROM recovery_steps WHERE path = ?1")?
        .execute([path])?;
    tx.prepare_cached(
        "INSERT OR REPLACE INTO recovery (path, text, crlf, disk_hash, saved_at, pid, owner) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(rusqlite::params![
        path,
        text,
        crlf,
        disk_hash.map(|h| h.as_bytes().to_vec()),
        now_ms(),
        std::process::id(),
        identity(std::process::id())
    ])?;
    tx.commit()?;
    Ok(())
}

/// Adds the edits made since the copy of `path` was last written. Returns false (and
/// writes nothing) when there is no copy to add to: the caller writes one whole.
pub fn append(
    store: &Store,
    path: &str,
    steps: &[Step],
    disk_hash: Option<blake3::Hash>,
) -> Result<bool> {
    let mut conn = store.conn();
    let tx = conn.transaction()?;
    let updated = tx
        .prepare_cached(
            "UPDATE recovery SET disk_hash = ?2, saved_at = ?3, pid = ?4, owner = ?5 \
             WHERE path = ?1",
        )?
        .execute(rusqlite::params![
            path,
            disk_hash.map(|h| h.as_bytes().to_vec()),
            now_ms(),
            std::process::id(),
            identity(std::process::id())
        ])?;
    if updated == 0 {
        return Ok(false);
    }
    let mut seq: i64 = tx
        .prepare_cached("SELECT coalesce(max(seq), 0) FROM recovery_steps WHERE path = ?1")?
        .query_row([path], |r| r.get(0))?;
    {
        let mut st = tx.prepare_cached(
            "INSERT INTO recovery_steps (path, seq, at, removed, inserted) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for step in steps {
            seq += 1;
            st.execute(rusqlite::params![
                path,
                seq,
                step.at as i64,
                step.removed as i64,
                step.inserted
            ])?;
        }
    }
    tx.commit()?;
    Ok(true)
}

/// Gives a copy another key (keeping one for later). One transaction.
pub fn rename(store: &Store, from: &str, to: &str) -> Result<bool> {
    let mut conn = store.conn();
    let tx = conn.transaction()?;
    let n = tx
        .prepare_cached("UPDATE recovery SET path = ?2 WHERE path = ?1")?
        .execute([from, to])?;
    tx.prepare_cached("UPDATE recovery_steps SET path = ?2 WHERE path = ?1")?
        .execute([from, to])?;
    tx.commit()?;
    Ok(n > 0)
}

/// The text of a recovery copy as of its last write: its text with the edits since applied.
/// Edits that do not fit the text (a damaged copy) stop the replay; what came before stays.
fn replay(text: String, steps: Vec<Step>) -> String {
    if steps.is_empty() {
        return text;
    }
    let mut rope = Rope::from_str(&text);
    for s in steps {
        let len = rope.len_chars();
        if s.at > len || s.removed > len - s.at {
            break;
        }
        rope.remove(s.at..s.at + s.removed);
        rope.insert(s.at, &s.inserted);
    }
    rope.to_string()
}

/// What the editor would write as recovery copies right now, shared with the thread that
/// watches the terminal: when the terminal goes away while the editor's thread is stuck
/// reading it, that thread writes these before the process ends. Ropes share their text,
/// so keeping this up to date costs no copying.
#[derive(Clone, Default)]
pub struct Pending(Arc<Mutex<Vec<Snapshot>>>);

/// One buffer's text to keep.
pub struct Snapshot {
    pub key: String,
    pub text: Rope,
    pub crlf: bool,
    pub disk_hash: Option<blake3::Hash>,
}

impl Pending {
    pub fn set(&self, snapshots: Vec<Snapshot>) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = snapshots;
    }

    /// Writes every pending copy whole.
    pub fn write(&self, store: &Store) {
        let snapshots = std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for s in snapshots {
            let _ = save(store, &s.key, &s.text.to_string(), s.crlf, s.disk_hash);
        }
    }
}

const SELECT: &str = "SELECT path, text, disk_hash, saved_at, pid, owner, crlf FROM recovery";

/// A row as stored, with whether its text is saved with CRLF.
fn copy_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Copy, bool)> {
    Ok((
        Copy {
            path: r.get(0)?,
            text: r.get(1)?,
            disk_hash: hash_of(r.get(2)?),
            saved_at: r.get(3)?,
            pid: r.get(4)?,
            owner: r.get(5)?,
        },
        r.get(6)?,
    ))
}

/// Completes stored rows: their edits replayed, CRLF put back.
fn complete(conn: &rusqlite::Connection, rows: Vec<(Copy, bool)>) -> Result<Vec<Copy>> {
    let mut st = conn.prepare_cached(
        "SELECT at, removed, inserted FROM recovery_steps WHERE path = ?1 ORDER BY seq",
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for (mut copy, crlf) in rows {
        let steps = st
            .query_map([&copy.path], |r| {
                Ok(Step {
                    at: r.get::<_, i64>(0)?.max(0) as usize,
                    removed: r.get::<_, i64>(1)?.max(0) as usize,
                    inserted: r.get(2)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        copy.text = replay(std::mem::take(&mut copy.text), steps);
        if crlf {
            copy.text = copy.text.replace('\n', "\r\n");
        }
        out.push(copy);
    }
    Ok(out)
}

pub fn get(store: &Store, path: &str) -> Result<Option<Copy>> {
    let conn = store.conn();
    let row = conn
        .prepare_cached(&format!("{SELECT} WHERE path = ?1"))?
        .query_row([path], copy_of)
        .optional()?;
    Ok(complete(&conn, row.into_iter().collect())?.pop())
}

/// The copies of `path` kept for later, oldest first.
pub fn kept(store: &Store, path: &str) -> Result<Vec<Copy>> {
    Ok(range(store, KEPT)?
        .into_iter()
        .filter(|c| kept_path(&c.path) == Some(path))
        .collect())
}

/// Drops the copy of `path`; returns whether there was one.
pub fn remove(store: &Store, path: &str) -> Result<bool> {
    let mut conn = store.conn();
    let tx = conn.transaction()?;
    tx.prepare_cached("DELETE FROM recovery_steps WHERE path = ?1")?
        .execute([path])?;
    let n = tx
        .prepare_cached("DELETE FROM recovery WHERE path = ?1")?
        .execute([path])?;
    tx.commit()?;
    Ok(n > 0)
}

/// The copies of buffers without a name (`new:…` keys), oldest first.
pub fn scratch(store: &Store) -> Result<Vec<Copy>> {
    range(store, SCRATCH)
}

/// The copies whose keys start with `prefix`, oldest first.
fn range(store: &Store, prefix: &str) -> Result<Vec<Copy>> {
    // Keys from the prefix up to the prefix with its last character moved one on (`new;`):
    // a range search of the primary key.
    let mut end = prefix.to_string();
    let last = end.pop().map_or(0, u32::from);
    end.extend(char::from_u32(last + 1));
    let conn = store.conn();
    let rows = conn
        .prepare_cached(&format!(
            "{SELECT} WHERE path >= ?1 AND path < ?2 ORDER BY saved_at"
        ))?
        .query_map([prefix, end.as_str()], copy_of)?
        .collect::<Result<Vec<_>, _>>()?;
    complete(&conn, rows)
}

/// Every copy, oldest first.
pub fn list(store: &Store) -> Result<Vec<Copy>> {
    let conn = store.conn();
    let rows = conn
        .prepare_cached(&format!("{SELECT} ORDER BY saved_at"))?
        .query_map([], copy_of)?
        .collect::<Result<Vec<_>, _>>()?;
    complete(&conn, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_added_to_a_copy_replay_to_the_text() {
        let home = tempfile::tempdir().expect("home");
        let store = Store::open(&home.path().join("s.db")).expect("store");
        save(&store, "/a", "one\ntwo\n", true, None).expect("save");
        let steps = [
            Step {
                at: 3,
                removed: 0,
                inserted: " and a half".into(),
            },
            Step {
                at: 0,
                removed: 3,
                inserted: "ONE".into(),
            },
        ];
        assert!(append(&store, "/a", &steps, None).expect("append"));
        let text = get(&store, "/a").expect("get").expect("copy").text;
        assert_eq!(text, "ONE and a half\r\ntwo\r\n");
        // Nothing to add to: the caller writes it whole.
        assert!(!append(&store, "/b", &steps, None).expect("append"));
        // Set aside for later, with its edits.
        let key = kept_key("/a");
        assert!(rename(&store, "/a", &key).expect("rename"));
        assert_eq!(kept_path(&key), Some("/a"));
        assert!(get(&store, "/a").expect("get").is_none());
        let kept = kept(&store, "/a").expect("kept");
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].text, "ONE and a half\r\ntwo\r\n");
        assert!(remove(&store, &key).expect("remove"));
        let left: i64 = store
            .conn()
            .query_row("SELECT count(*) FROM recovery_steps", [], |r| r.get(0))
            .expect("count");
        assert_eq!(left, 0, "its edits went with it");
    }

    #[test]
    fn a_writer_whose_terminal_has_gone_is_not_taken_for_a_running_editor() {
        use std::os::fd::{FromRawFd, OwnedFd};
        let (mut master, mut slave) = (0, 0);
        // SAFETY: openpty fills in two descriptors, owned from here on.
        let r = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(r, 0, "openpty");
        // Not handed to any process started meanwhile, which would keep the terminal open.
        for fd in [master, slave] {
            // SAFETY: fcntl on descriptors just made.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let mut child = std::process::Command::new("sleep")
            .arg("10")
            .stdin(slave)
            .spawn()
            .expect("sleep");
        let copy = Copy {
            path: "/a".into(),
            text: String::new(),
            disk_hash: None,
            saved_at: 0,
            pid: child.id(),
            owner: identity(child.id()),
        };
        assert!(copy.writer_is_running(), "its terminal is there");
        drop(master);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while copy.writer_is_running() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let running = copy.writer_is_running();
        let _ = child.kill();
        let _ = child.wait();
        assert!(!running, "an editor on a closed terminal can never save");
    }

    #[test]
    fn a_damaged_edit_stops_the_replay_without_a_panic() {
        let steps = vec![
            Step {
                at: 1,
                removed: 1,
                inserted: "X".into(),
            },
            Step {
                at: 99,
                removed: 5,
                inserted: "lost".into(),
            },
        ];
        assert_eq!(replay("abc".into(), steps), "aXc");
    }

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
