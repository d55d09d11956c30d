//! Looking after the store (foundation): daily backups (SQLite's online backup, a few kept),
//! giving free space back, checking the file, and getting the data out of a damaged one —
//! for `valyxo doctor` and the hub's start-up.

use super::{suffixed, Store};
use anyhow::{bail, Context, Result};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The folder of backups beside the store.
pub fn backup_dir(store: &Path) -> PathBuf {
    store
        .parent()
        .map_or_else(|| PathBuf::from("backups"), |d| d.join("backups"))
}

/// The backups of a store, newest first.
pub fn backups(store: &Path) -> Vec<PathBuf> {
    let mut v: Vec<(SystemTime, PathBuf)> = std::fs::read_dir(backup_dir(store))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("valyxo-") && n.ends_with(".db"))
        })
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    v.sort_by_key(|e| std::cmp::Reverse(e.0));
    v.into_iter().map(|(_, p)| p).collect()
}

/// Whether the newest backup is older than `every`. A store seen for the first time gets a
/// mark instead, so its first backup comes `every` later (a home made a moment ago has
/// nothing worth keeping).
pub fn backup_due(store: &Path, every: Duration) -> bool {
    let age = |p: &Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
    };
    if let Some(newest) = backups(store).first() {
        return age(newest).is_none_or(|a| a >= every);
    }
    let mark = backup_dir(store).join(".first-seen");
    match age(&mark) {
        Some(a) => a >= every,
        None => {
            use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
            let _ = std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(backup_dir(store));
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&mark);
            false
        }
    }
}

/// Copies the store into a new backup, consistent while other processes write (the online
/// backup API), then keeps only the `keep` newest. The copy is made under a temporary name
/// and renamed when whole, so a process that stops halfway leaves no half backup.
pub fn backup(store: &Path, keep: usize) -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = backup_dir(store);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let stamp = chrono::Local::now().format("%Y-%m-%d-%H%M%S");
    let target = dir.join(format!("valyxo-{stamp}.db"));
    // `.valyxo-STAMP-RANDOM.tmp`: a name nobody can guess, made new and private from the
    // first byte (removed when dropped, unless it became the backup).
    let tmp = private_temporary(&dir, &format!(".valyxo-{stamp}-"))?.into_temp_path();
    let copied = (|| -> Result<()> {
        let src = Connection::open_with_flags(store, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        src.busy_timeout(Duration::from_secs(10))?;
        let mut dst = Connection::open(&tmp)?;
        {
            let b = rusqlite::backup::Backup::new(&src, &mut dst)?;
            b.run_to_completion(256, Duration::from_millis(5), None)?;
        }
        dst.pragma_update(None, "journal_mode", "DELETE")?;
        Ok(())
    })();
    if let Err(e) = copied {
        return Err(e.context(format!("cannot back up {}", store.display())));
    }
    let tmp_name = tmp.to_path_buf();
    tmp.persist(&target)
        .with_context(|| format!("cannot create {}", target.display()))?;
    for old in backups(store).into_iter().skip(keep.max(1)) {
        let _ = std::fs::remove_file(old);
    }
    // Temporary files of backups that were stopped halfway.
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let p = e.path();
        let stale = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(".valyxo-") && n.ends_with(".tmp"))
            && p != tmp_name
            && e.metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > Duration::from_secs(3600));
        if stale {
            let _ = std::fs::remove_file(p);
        }
    }
    Ok(target)
}

/// A new empty file in `dir` named `PREFIX` + random + `.tmp`: a name nobody can guess,
/// created new (`O_EXCL`: never a file or link already there) and private (0600) from the
/// first byte. It is removed when dropped, unless persisted.
fn private_temporary(dir: &Path, prefix: &str) -> Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    tempfile::Builder::new()
        .prefix(prefix)
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))
}

/// Pages and bytes of the store: (file bytes, free bytes).
pub fn space(conn: &Connection) -> Result<(u64, u64)> {
    let page: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
    let pages: i64 = conn.pragma_query_value(None, "page_count", |r| r.get(0))?;
    let free: i64 = conn.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
    Ok(((pages * page) as u64, (free * page) as u64))
}

/// Free space beyond which [`reclaim`] gives it back.
const RECLAIM_OVER: u64 = 8 << 20;

/// Gives the store's free pages back to the file system when there are many (stores made
/// with incremental vacuum; older ones need `valyxo doctor --compact` once). Returns the
/// bytes given back.
pub fn reclaim(store: &Store) -> Result<u64> {
    if !store.is_open() {
        return Ok(0); // a run that never opened the store freed nothing in it
    }
    let conn = store.conn();
    let mode: i64 = conn.pragma_query_value(None, "auto_vacuum", |r| r.get(0))?;
    let (_, free) = space(&conn)?;
    if mode != 2 || free < RECLAIM_OVER {
        return Ok(0);
    }
    // Each step of the pragma gives back one page.
    {
        let mut st = conn.prepare("PRAGMA incremental_vacuum")?;
        let mut rows = st.query([])?;
        while rows.next()?.is_some() {}
    }
    let (_, after) = space(&conn)?;
    Ok(free.saturating_sub(after))
}

/// What `valyxo doctor` found.
#[derive(Debug, Default)]
pub struct Checkup {
    pub bytes: u64,
    pub free: u64,
    /// The problems `PRAGMA integrity_check` lists (empty: the file is sound).
    pub problems: Vec<String>,
    /// Contents no file refers to.
    pub orphan_blobs: u64,
    /// Whether free pages go back to the file system as they appear.
    pub reclaims: bool,
}

/// Checks the store at `path` without changing it.
pub fn check(path: &Path) -> Result<Checkup> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("cannot open {}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let mut c = Checkup::default();
    let problems: Result<Vec<String>, rusqlite::Error> = (|| {
        let mut st = conn.prepare("PRAGMA integrity_check(100)")?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect()
    })();
    c.problems = match problems {
        Ok(v) if v.len() == 1 && v[0] == "ok" => Vec::new(),
        Ok(v) => v,
        Err(e) => vec![e.to_string()],
    };
    if let Ok((bytes, free)) = space(&conn) {
        c.bytes = bytes;
        c.free = free;
    }
    c.reclaims = conn
        .pragma_query_value(None, "auto_vacuum", |r| r.get::<_, i64>(0))
        .is_ok_and(|m| m == 2);
    c.orphan_blobs = conn
        .query_row(
            "SELECT count(*) FROM blobs b WHERE NOT EXISTS (SELECT 1 FROM nodes n WHERE n.hash = b.hash)",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap_or(0)
        .max(0) as u64;
    Ok(c)
}

/// Deletes contents no file refers to and rewrites the file without free space (switching
/// an older store to giving free pages back as it goes). Returns (bytes before, after).
pub fn compact(path: &Path) -> Result<(u64, u64)> {
    let conn = Connection::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(30))?;
    let before = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    conn.execute(
        "DELETE FROM blobs WHERE NOT EXISTS (SELECT 1 FROM nodes n WHERE n.hash = blobs.hash)",
        [],
    )?;
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    conn.execute_batch("VACUUM")
        .context("cannot compact the store (is another valyxo using it?)")?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    let after = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    Ok((before, after))
}

/// What a salvage copied.
#[derive(Debug, Default)]
pub struct Salvage {
    /// (table, rows copied, rows lost)
    pub tables: Vec<(String, u64, u64)>,
    /// Where the damaged file (and its WAL) went.
    pub kept: PathBuf,
}

/// Copies every row that can still be read from the damaged store at `path` into a new
/// store, which takes its place; the damaged file is kept beside it, renamed. A table that
/// cannot be read from one row on is read again from further on.
pub fn salvage(path: &Path) -> Result<Salvage> {
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
    // The new store is made in a private temporary file beside the old one, named
    // `.valyxo-salvage-STAMP-RANDOM.tmp` (removed if the salvage fails).
    let fresh = private_temporary(
        path.parent().unwrap_or(Path::new(".")),
        &format!(".valyxo-salvage-{stamp}-"),
    )?
    .into_temp_path();
    let new = Store::open(&fresh).context("cannot create the new store")?;
    let old = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let mut report = Salvage::default();
    // Tables in an order that keeps references whole: contents before the files naming
    // them, parents before children.
    const TABLES: &[&str] = &[
        "blobs",
        "nodes",
        "history",
        "settings",
        "aliases",
        "env",
        "mounts",
        "jobs",
        "job_output",
        "plugins",
        "plugin_commands",
        "script_history",
        "recovery",
        "recovery_steps",
        "conversations",
        "messages",
        "sync_account",
        "sync_projects",
        "sync_files",
    ];
    {
        let mut conn = new.conn();
        conn.execute_batch("PRAGMA foreign_keys = OFF")?;
        let tx = conn.transaction()?;
        // The new store's own root directory is replaced by the old one's.
        tx.execute("DELETE FROM nodes", [])?;
        for table in TABLES {
            let (copied, lost) = copy_table(&old, &tx, table);
            report.tables.push((table.to_string(), copied, lost));
        }
        // A file whose content or folder was lost cannot stay; a lost root comes back.
        tx.execute(
            "DELETE FROM nodes WHERE hash IS NOT NULL AND hash NOT IN (SELECT hash FROM blobs)",
            [],
        )?;
        tx.execute(
            "INSERT OR IGNORE INTO nodes (id, parent, name, kind, mtime) VALUES (1, NULL, '', 0, 0)",
            [],
        )?;
        loop {
            let n = tx.execute(
                "DELETE FROM nodes WHERE parent IS NOT NULL AND parent NOT IN (SELECT id FROM nodes)",
                [],
            )?;
            if n == 0 {
                break;
            }
        }
        tx.commit()?;
        conn.execute_batch("PRAGMA foreign_keys = ON")?;
    }
    drop(new);
    drop(old);
    let kept = suffixed(path, &format!(".damaged-{stamp}"));
    std::fs::rename(path, &kept)
        .with_context(|| format!("cannot move {} aside", path.display()))?;
    for s in ["-wal", "-shm"] {
        let _ = std::fs::rename(suffixed(path, s), suffixed(&kept, s));
    }
    let fresh_name = fresh.to_path_buf();
    if let Err(e) = fresh.persist(path) {
        // The old store is already aside: the new one stays where it is, to be put in place
        // by hand.
        let _ = e.path.keep();
        return Err(anyhow::Error::new(e.error).context(format!(
            "cannot put the new store at {} (it is kept as {})",
            path.display(),
            fresh_name.display()
        )));
    }
    for s in ["-wal", "-shm"] {
        let _ = std::fs::rename(suffixed(&fresh_name, s), suffixed(path, s));
    }
    report.kept = kept;
    Ok(report)
}

/// Copies the rows of `table` that can be read; returns (copied, lost). Rows are read in
/// rowid order; where reading fails, it starts again further on.
fn copy_table(old: &Connection, new: &rusqlite::Transaction, table: &str) -> (u64, u64) {
    let Ok(mut cols) = columns(new, table) else {
        return (0, 0);
    };
    // A store made by an older version lacks later columns: they take their defaults.
    if let Ok(had) = columns(old, table) {
        if had.is_empty() {
            return (0, 0);
        }
        cols.retain(|c| had.contains(c));
    }
    let list = cols.join(", ");
    let marks = vec!["?"; cols.len()].join(", ");
    let insert = format!("INSERT OR REPLACE INTO {table} (rowid, {list}) VALUES (?, {marks})");
    let max: i64 = old
        .query_row(&format!("SELECT max(rowid) FROM {table}"), [], |r| {
            r.get::<_, Option<i64>>(0)
        })
        .ok()
        .flatten()
        .unwrap_or(i64::MAX);
    let (mut copied, mut lost) = (0u64, 0u64);
    let mut next = i64::MIN;
    let mut step = 1i64;
    // Each failure skips twice as far as the last: at most 64 before the end of the range.
    let mut failures = 0;
    while next <= max && failures < 128 {
        let read = (|| -> rusqlite::Result<Option<i64>> {
            let mut st = old.prepare(&format!(
                "SELECT rowid, {list} FROM {table} WHERE rowid >= ? ORDER BY rowid"
            ))?;
            let mut rows = st.query([next])?;
            let mut last = None;
            while let Some(r) = rows.next()? {
                let rowid: i64 = r.get(0)?;
                let mut vals: Vec<rusqlite::types::Value> = vec![rowid.into()];
                for i in 0..cols.len() {
                    vals.push(r.get(i + 1)?);
                }
                if new
                    .execute(&insert, rusqlite::params_from_iter(vals))
                    .is_ok()
                {
                    copied += 1;
                } else {
                    lost += 1;
                }
                last = Some(rowid);
                next = rowid.saturating_add(1);
            }
            Ok(last)
        })();
        match read {
            Ok(_) => break,
            Err(_) => {
                // Skip ahead past the unreadable part, further each time it fails again.
                lost += 1;
                failures += 1;
                if next == i64::MAX {
                    break;
                }
                next = next.saturating_add(step);
                step = step.saturating_mul(2);
            }
        }
    }
    (copied, lost)
}

fn columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut st = conn.prepare(&format!("PRAGMA table_info({table})"))?;
    let rows = st.query_map([], |r| r.get::<_, String>(1))?;
    rows.collect()
}

/// Puts backup `from` in the store's place; the store that was there is kept, renamed.
pub fn restore(path: &Path, from: &Path) -> Result<PathBuf> {
    if !from.is_file() {
        bail!("{}: no such backup", from.display());
    }
    check(from)
        .ok()
        .filter(|c| c.problems.is_empty())
        .with_context(|| format!("{} is not a sound store", from.display()))?;
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
    let kept = suffixed(path, &format!(".replaced-{stamp}"));
    if path.exists() {
        std::fs::rename(path, &kept)
            .with_context(|| format!("cannot move {} aside", path.display()))?;
        for s in ["-wal", "-shm"] {
            let _ = std::fs::rename(suffixed(path, s), suffixed(&kept, s));
        }
    }
    // Copied into a private temporary file under a name nobody can guess (a file or link
    // put in its way is never written through), then renamed into place.
    let mut tmp = private_temporary(
        path.parent().unwrap_or(Path::new(".")),
        &format!(".valyxo-restore-{stamp}-"),
    )?;
    std::io::copy(&mut std::fs::File::open(from)?, tmp.as_file_mut())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("cannot put the backup at {}", path.display()))?;
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with_files(dir: &Path) -> PathBuf {
        let path = dir.join("valyxo.db");
        let s = Store::open(&path).unwrap();
        let vfs = crate::vfs::Vfs::new(std::sync::Arc::new(s)).unwrap();
        let p = |s: &str| crate::vfs::VPath::parse_absolute(s).unwrap();
        vfs.mkdir(&p("/Projects/A"), true).unwrap();
        for i in 0..50 {
            vfs.write(
                &p(&format!("/Projects/A/f{i}")),
                format!("file {i}").repeat(100).as_bytes(),
            )
            .unwrap();
        }
        path
    }

    #[test]
    fn backups_are_whole_private_and_few() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = store_with_files(dir.path());
        // Seen for the first time: due a day later, or at once with no delay.
        assert!(!backup_due(&path, Duration::from_secs(86400)));
        assert!(backup_due(&path, Duration::ZERO));
        for _ in 0..3 {
            backup(&path, 2).unwrap();
            std::thread::sleep(Duration::from_millis(1100));
        }
        let all = backups(&path);
        assert_eq!(all.len(), 2);
        assert!(!backup_due(&path, Duration::from_secs(86400)));
        let mode = std::fs::metadata(&all[0]).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(check(&all[0]).unwrap().problems.is_empty());
    }

    #[test]
    fn a_damaged_store_is_salvaged_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_with_files(dir.path());
        // Damage a page in the middle of the file.
        {
            use std::io::{Seek, Write};
            let len = std::fs::metadata(&path).unwrap().len();
            let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.seek(std::io::SeekFrom::Start(len / 2)).unwrap();
            f.write_all(&[0xff; 4096]).unwrap();
        }
        let r = salvage(&path).unwrap();
        assert!(r.kept.exists());
        let nodes = r.tables.iter().find(|t| t.0 == "nodes").unwrap();
        assert!(nodes.1 > 0, "{:?}", r.tables);
        // The new store opens, and what it holds is consistent.
        let s = Store::open(&path).unwrap();
        let problems = check(&path).unwrap().problems;
        assert!(problems.is_empty(), "{problems:?}");
        drop(s);
    }
}
