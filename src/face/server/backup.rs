//! `valyxo server backup FILE` and `valyxo server restore FILE` (server): copies of a
//! server's SQLite database (`man server`, "Backups"). PostgreSQL has its own tools
//! (pg_dump, pg_restore), which these point to.
//!
//! A backup uses SQLite's online backup API in one step: the copy is one read transaction
//! of the source, a consistent snapshot, while the server goes on writing (in WAL mode a
//! reader does not block writers). A restore first checks the backup (a Valyxo server
//! database of a schema this server knows, passing SQLite's integrity check), refuses a
//! database that a server has open, and keeps the database it replaces. Both write the new
//! file under a temporary name beside its place, sync it, and rename it into place, so a
//! stop at any moment leaves either the old file or the whole new one.

use super::db::{sqlite_path, SCHEMA_VERSION};
use anyhow::{anyhow, bail, Context, Result};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a copy waits for a database that stays locked.
const LOCKED_FOR: Duration = Duration::from_secs(60);

/// The tables every Valyxo server database has.
const TABLES: &[&str] = &[
    "meta",
    "users",
    "sessions",
    "projects",
    "scripts",
    "executions",
    "blobs",
    "files",
];

fn postgres_advice(verb: &str) -> anyhow::Error {
    let how = if verb == "backup" {
        "use pg_dump, which copies a live database consistently:\n  \
         pg_dump --format=custom --file=valyxo.dump postgres://USER@HOST/DB"
    } else {
        "use pg_restore into an empty database, with the servers stopped:\n  \
         createdb -O valyxo valyxo_restored\n  \
         pg_restore --no-owner --dbname=postgres://USER@HOST/valyxo_restored valyxo.dump"
    };
    anyhow!(
        "'valyxo server {verb}' works on SQLite databases; for PostgreSQL {how}\n\
         ('man server', Backups)"
    )
}

/// The SQLite file of `database`, or the advice for PostgreSQL.
fn sqlite_file(database: &str, verb: &str) -> Result<PathBuf> {
    sqlite_path(database).ok_or_else(|| postgres_advice(verb))
}

/// Opens an existing SQLite file (never creating one).
fn open(path: &Path, flags: OpenFlags) -> Result<Connection> {
    let c = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .with_context(|| format!("cannot open {}", path.display()))?;
    c.busy_timeout(Duration::from_secs(10))?;
    Ok(c)
}

/// The schema version of a Valyxo server database, or why `path` is not one.
fn schema_of(c: &Connection, path: &Path) -> Result<usize> {
    let not_ours =
        |why: &str| anyhow!("{} is not a Valyxo server database ({why})", path.display());
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .and_then(|mut st| {
            st.query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase) => {
                anyhow!("{} is not a SQLite database", path.display())
            }
            _ => anyhow!("cannot read {}: {e}", path.display()),
        })?;
    if let Some(t) = TABLES.iter().find(|t| !tables.iter().any(|n| n == *t)) {
        return Err(not_ours(&format!("it has no table '{t}'")));
    }
    let version: Option<String> = c
        .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
            r.get(0)
        })
        .ok();
    version
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|v| *v >= 1)
        .ok_or_else(|| not_ours("it records no schema version"))
}

/// SQLite's integrity check of the whole file.
fn integrity(c: &Connection, path: &Path) -> Result<()> {
    let problems: Vec<String> = c
        .prepare("PRAGMA integrity_check")?
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<_>>()
        .with_context(|| format!("cannot check {}", path.display()))?;
    if problems != ["ok"] {
        let first: Vec<&str> = problems.iter().take(3).map(String::as_str).collect();
        bail!(
            "{} is damaged; SQLite's integrity check says: {}",
            path.display(),
            first.join("; ")
        );
    }
    Ok(())
}

/// Copies every page of `from` into `to` in one step: one read transaction of `from`.
fn copy(from: &Connection, to: &mut Connection, what: &Path) -> Result<()> {
    use rusqlite::backup::{Backup, StepResult};
    let b = Backup::new(from, to)?;
    let start = Instant::now();
    loop {
        match b
            .step(-1)
            .with_context(|| format!("cannot copy {}", what.display()))?
        {
            StepResult::Done => return Ok(()),
            StepResult::More => {}
            _ => {
                // Busy or locked: another connection is writing at this very moment.
                if start.elapsed() > LOCKED_FOR {
                    bail!("{} stayed locked for a minute: try again", what.display());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// "N accounts, M projects, SIZE" of a database.
fn summary(c: &Connection, path: &Path) -> String {
    let count = |table: &str| -> i64 {
        c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap_or(0)
    };
    let size = std::fs::metadata(path).map_or(0, |m| m.len());
    format!(
        "{} accounts, {} projects, {}",
        count("users"),
        count("projects"),
        crate::budget::human(size as usize)
    )
}

/// The folder `path` goes in ("." for a bare name).
fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A file in `dir` to write under until it is complete (readable by its owner alone: a
/// server database holds password hashes and the token secret).
fn partial_file(dir: &Path, name: &Path) -> Result<tempfile::NamedTempFile> {
    let base = name
        .file_name()
        .map_or_else(|| "valyxo".into(), |n| n.to_string_lossy().into_owned());
    tempfile::Builder::new()
        .prefix(&format!(".{base}."))
        .suffix(".partial")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))
}

fn sync_folder(dir: &Path) {
    // Makes the rename durable; a file system that cannot sync a folder still renamed it.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// `valyxo server backup FILE`: a consistent copy of the server's SQLite database, made
/// while a server may be using it. Returns the line to print.
pub fn backup(database: &str, file: &Path) -> Result<String> {
    let source = sqlite_file(database, "backup")?;
    if !source.is_file() {
        bail!(
            "there is no database at {} (give the server's --database)",
            source.display()
        );
    }
    if file.symlink_metadata().is_ok() {
        bail!(
            "{} exists: a backup never writes over a file; give a new name",
            file.display()
        );
    }
    let dir = folder_of(file);
    if !dir.is_dir() {
        bail!("the folder {} does not exist", dir.display());
    }
    let from = open(&source, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    let schema = schema_of(&from, &source)?;
    let partial = partial_file(&dir, file)?;
    let line = {
        let mut to = Connection::open(partial.path())
            .with_context(|| format!("cannot write {}", partial.path().display()))?;
        copy(&from, &mut to, &source)?;
        drop(from);
        // One self-contained file (the copy carries the source's WAL mode otherwise).
        let _: String = to.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))?;
        integrity(&to, file)?;
        summary(&to, partial.path())
    };
    partial
        .as_file()
        .sync_all()
        .with_context(|| format!("cannot write {}", file.display()))?;
    partial
        .persist_noclobber(file)
        .map_err(|e| anyhow!("cannot write {}: {}", file.display(), e.error))?;
    sync_folder(&dir);
    Ok(format!(
        "backed up {} to {} (schema {schema}: {line})",
        source.display(),
        file.display()
    ))
}

/// `valyxo server restore FILE`: puts a backup in the place of the server's SQLite
/// database, which no server may have open; the database replaced is kept beside it.
/// Returns the lines to print.
pub fn restore(database: &str, file: &Path) -> Result<String> {
    let target = sqlite_file(database, "restore")?;
    if !file.is_file() {
        bail!("there is no backup at {}", file.display());
    }
    if target.is_file() && std::fs::canonicalize(&target).ok() == std::fs::canonicalize(file).ok() {
        bail!("{} is the database itself", file.display());
    }
    let from = open(file, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let schema = schema_of(&from, file)?;
    if schema > SCHEMA_VERSION {
        bail!(
            "{} has schema version {schema}, newer than this valyxo's ({SCHEMA_VERSION}): \
             restore it with the valyxo that made it",
            file.display()
        );
    }
    integrity(&from, file)?;
    let dir = folder_of(&target);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let partial = partial_file(&dir, &target)?;
    let line = {
        let mut to = Connection::open(partial.path())
            .with_context(|| format!("cannot write {}", partial.path().display()))?;
        copy(&from, &mut to, file)?;
        let _: String = to.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))?;
        summary(&to, partial.path())
    };
    drop(from);
    partial
        .as_file()
        .sync_all()
        .with_context(|| format!("cannot write {}", partial.path().display()))?;
    // The database in place: nobody may have it open (a server keeps its connections
    // open, in WAL mode, which then cannot be left), its log is folded into it, and it is
    // held locked until the new file has taken its name.
    let mut kept = None;
    let _held = if target.exists() {
        let old = Connection::open_with_flags(
            &target,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("cannot open {}", target.display()))?;
        old.busy_timeout(Duration::ZERO)?;
        let in_use = || {
            anyhow!(
                "{} is in use (a server has it open): stop the server, then restore",
                target.display()
            )
        };
        let mode = old
            .query_row("PRAGMA journal_mode = DELETE", [], |r| {
                r.get::<_, String>(0)
            })
            .map_err(|e| match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                    in_use()
                }
                Some(rusqlite::ErrorCode::NotADatabase) => anyhow!(
                    "{} is not a SQLite database: move it away, then restore",
                    target.display()
                ),
                _ => anyhow!("cannot open {}: {e}", target.display()),
            })?;
        if !mode.eq_ignore_ascii_case("delete") {
            return Err(in_use());
        }
        old.execute_batch("BEGIN EXCLUSIVE").map_err(|_| in_use())?;
        let name = target
            .file_name()
            .map_or_else(|| "server.db".into(), |n| n.to_string_lossy().into_owned());
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        let aside = target.with_file_name(format!("{name}.replaced-{stamp}"));
        std::fs::hard_link(&target, &aside)
            .with_context(|| format!("cannot keep the database as {}", aside.display()))?;
        kept = Some(aside);
        Some(old)
    } else {
        None
    };
    partial
        .persist(&target)
        .map_err(|e| anyhow!("cannot write {}: {}", target.display(), e.error))?;
    sync_folder(&dir);
    let mut out = format!(
        "restored {} to {} (schema {schema}: {line})",
        file.display(),
        target.display()
    );
    if schema < SCHEMA_VERSION {
        out.push_str("; the server brings its schema up to date when it starts");
    }
    if let Some(k) = kept {
        out.push_str(&format!(
            "\nthe database it replaced is kept as {}",
            k.display()
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_db(dir: &Path) -> PathBuf {
        let path = dir.join("server.db");
        let db = super::super::Db::open(&format!("sqlite:{}", path.display()), 2).unwrap();
        db.write(|c| Ok(super::super::db::testing::add_user(c, "a")?))
            .unwrap();
        path
    }

    #[test]
    fn postgres_is_pointed_to_its_own_tools() {
        let e = backup("postgres://v@db/valyxo", Path::new("x.db")).unwrap_err();
        assert!(e.to_string().contains("pg_dump --format=custom"), "{e}");
        let e = restore("postgresql://v@db/valyxo", Path::new("x.db")).unwrap_err();
        assert!(e.to_string().contains("pg_restore"), "{e}");
    }

    #[test]
    fn a_backup_restores_and_neither_overwrites_nor_takes_a_stranger() {
        let dir = tempfile::tempdir().unwrap();
        let src = server_db(dir.path());
        let url = format!("sqlite:{}", src.display());
        let copy = dir.path().join("copy.db");
        let line = backup(&url, &copy).unwrap();
        assert!(line.contains("1 accounts"), "{line}");
        // Never over an existing file.
        let e = backup(&url, &copy).unwrap_err();
        assert!(e.to_string().contains("exists"), "{e}");
        // No partial file is left behind.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.ends_with(".partial")), "{names:?}");

        // Restored over a database nobody has open: the old one is kept.
        let target = dir.path().join("other/server.db");
        let turl = format!("sqlite:{}", target.display());
        restore(&turl, &copy).unwrap();
        let line = restore(&turl, &copy).unwrap();
        assert!(line.contains("kept as"), "{line}");
        let db = super::super::Db::open(&turl, 1).unwrap();
        let n = db
            .read(|c| Ok(c.one("SELECT count(*) FROM users", &[])?.unwrap().int(0)))
            .unwrap();
        assert_eq!(n, 1);
        // … and refused while it is open.
        let e = restore(&turl, &copy).unwrap_err();
        assert!(e.to_string().contains("in use"), "{e}");
        drop(db);

        // Files that are not Valyxo server databases are refused, and nothing is replaced.
        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, vec![7u8; 8192]).unwrap();
        let e = restore(&turl, &junk).unwrap_err();
        assert!(e.to_string().contains("not a SQLite database"), "{e}");
        let other = dir.path().join("other.sqlite");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        let e = restore(&turl, &other).unwrap_err();
        assert!(
            e.to_string().contains("not a Valyxo server database"),
            "{e}"
        );
        let e = backup(
            &format!("sqlite:{}", other.display()),
            &dir.path().join("o.db"),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("not a Valyxo server database"),
            "{e}"
        );
        // A damaged backup is refused.
        let mut bytes = std::fs::read(&copy).unwrap();
        let n = bytes.len();
        for b in &mut bytes[n / 2..] {
            *b = 0x55;
        }
        let damaged = dir.path().join("damaged.db");
        std::fs::write(&damaged, bytes).unwrap();
        assert!(restore(&turl, &damaged).is_err());
        let db = super::super::Db::open(&turl, 1).unwrap();
        let n = db
            .read(|c| Ok(c.one("SELECT count(*) FROM users", &[])?.unwrap().int(0)))
            .unwrap();
        assert_eq!(n, 1);
    }
}
