//! The state store (foundation): one SQLite file holding everything the hub keeps.
//!
//! Opened with WAL, foreign keys and a busy timeout so that several processes can share one
//! home, at once or (for a one-line run) on first use. Schema changes are versioned
//! migrations applied on open. The file (and SQLite's WAL
//! and shared-memory files beside it, which take its permissions) is private to the user.
//! A damaged file is reported with what to do; [`care`] checks, compacts, backs up and
//! salvages stores.

pub mod care;

use anyhow::{Context, Result};
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

/// File name of the state database inside the home directory.
pub const DB_FILE: &str = "valyxo.db";

/// The first 16 bytes of every SQLite database file.
const MAGIC: &[u8; 16] = b"SQLite format 3\0";

const MIGRATIONS: &[&str] = &[
    // 1: virtual filesystem, history, settings, aliases, environment, mounts.
    r#"
    CREATE TABLE blobs (
        hash BLOB PRIMARY KEY NOT NULL,
        size INTEGER NOT NULL,
        data BLOB NOT NULL
    );
    CREATE TABLE nodes (
        id INTEGER PRIMARY KEY,
        parent INTEGER REFERENCES nodes(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        kind INTEGER NOT NULL CHECK (kind IN (0, 1)),
        hash BLOB REFERENCES blobs(hash),
        size INTEGER NOT NULL DEFAULT 0,
        mtime INTEGER NOT NULL,
        UNIQUE (parent, name)
    );
    CREATE INDEX nodes_hash ON nodes(hash);
    INSERT INTO nodes (id, parent, name, kind, mtime)
        VALUES (1, NULL, '', 0, CAST(strftime('%s','now') AS INTEGER) * 1000);
    CREATE TABLE history (
        id INTEGER PRIMARY KEY,
        command TEXT NOT NULL,
        cwd TEXT NOT NULL,
        status INTEGER,
        duration_ms INTEGER,
        started_at INTEGER NOT NULL,
        session TEXT NOT NULL
    );
    CREATE TABLE settings (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
    CREATE TABLE aliases (name TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
    CREATE TABLE env (name TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
    CREATE TABLE mounts (
        vpath TEXT PRIMARY KEY NOT NULL,
        host TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    "#,
    // 2: background jobs and their output, plugins, the script REPL's history.
    r#"
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        line TEXT NOT NULL,
        cwd TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'killed', 'lost')),
        status INTEGER,
        owner_pid INTEGER NOT NULL,
        owner_session TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        ended_at INTEGER,
        announced INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX jobs_state ON jobs(state);
    CREATE TABLE job_output (
        id INTEGER PRIMARY KEY,
        job INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        data BLOB NOT NULL
    );
    CREATE INDEX job_output_job ON job_output(job, id);
    CREATE TABLE plugins (
        name TEXT PRIMARY KEY NOT NULL,
        version TEXT NOT NULL,
        description TEXT NOT NULL,
        source TEXT NOT NULL,
        installed_at INTEGER NOT NULL
    );
    CREATE TABLE plugin_commands (
        name TEXT PRIMARY KEY NOT NULL,
        plugin TEXT NOT NULL REFERENCES plugins(name) ON DELETE CASCADE,
        summary TEXT NOT NULL,
        usage TEXT NOT NULL,
        help TEXT NOT NULL,
        handler TEXT NOT NULL
    );
    CREATE TABLE script_history (
        id INTEGER PRIMARY KEY,
        line TEXT NOT NULL,
        at INTEGER NOT NULL
    );
    "#,
    // 3: the editor's recovery copies of unsaved buffers.
    r#"
    CREATE TABLE recovery (
        path TEXT PRIMARY KEY NOT NULL,
        text TEXT NOT NULL,
        disk_hash BLOB,
        saved_at INTEGER NOT NULL,
        pid INTEGER NOT NULL,
        owner TEXT
    );
    "#,
    // 4: conversations with the assistant.
    r#"
    CREATE TABLE conversations (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL,
        persona TEXT NOT NULL,
        model TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        conversation INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
        content TEXT NOT NULL,
        at INTEGER NOT NULL
    );
    CREATE INDEX messages_conversation ON messages(conversation, id);
    "#,
    // 5: the account this hub is logged in to (the token itself is in the keyring), and the
    // state of each synced project as of its last sync: the server's revision and, per file,
    // the hash and version both sides last agreed on (a NULL hash: deleted).
    r#"
    CREATE TABLE sync_account (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        server TEXT NOT NULL,
        username TEXT NOT NULL,
        user_id INTEGER NOT NULL,
        logged_in_at INTEGER NOT NULL
    );
    CREATE TABLE sync_projects (
        id INTEGER PRIMARY KEY,
        server TEXT NOT NULL,
        user_id INTEGER NOT NULL,
        name TEXT NOT NULL,
        remote_id INTEGER NOT NULL,
        revision INTEGER NOT NULL,
        synced_at INTEGER NOT NULL,
        UNIQUE (server, user_id, name)
    );
    CREATE TABLE sync_files (
        project INTEGER NOT NULL REFERENCES sync_projects(id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        hash TEXT,
        version INTEGER NOT NULL,
        PRIMARY KEY (project, path)
    );
    "#,
    // 6: recovery copies written a piece at a time: the text (with LF line breaks, `crlf`
    // saying how it is saved) plus the edits made since, in order.
    r#"
    ALTER TABLE recovery ADD COLUMN crlf INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE recovery_steps (
        path TEXT NOT NULL,
        seq INTEGER NOT NULL,
        at INTEGER NOT NULL,
        removed INTEGER NOT NULL,
        inserted TEXT NOT NULL,
        PRIMARY KEY (path, seq)
    );
    "#,
    // 7: aliases live in aliases.toml beside config.toml, where a run that needs nothing
    // stored reads them without opening the store. The hub moves those of older homes there
    // (and empties the table) when it opens a store at an older version.
    "",
];

/// The SQLite state store. Cheap to share between threads; each call holds the connection
/// only for the duration of one statement or transaction.
///
/// A store opened with [`Store::open_lazily`] opens its file on first use, so a run that
/// needs nothing stored (`valyxo -c true`) never pays for SQLite. Should that first opening
/// fail, the run ends there with the store's error and status 1, exactly as a store that
/// cannot be opened ends a run at start-up.
pub struct Store {
    opened: OnceLock<Opened>,
    path: PathBuf,
    /// What to do once the file is open (see [`Store::on_first_open`]).
    on_open: Mutex<Option<OnOpen>>,
}

/// Work for when a store is first opened.
pub type OnOpen = Box<dyn FnOnce() + Send>;

/// A store's connection, and what was read when it was opened.
struct Opened {
    conn: Mutex<Connection>,
    /// The mount table when the store was opened (see [`Store::mounts_at_open`]).
    mounts: Vec<(String, String)>,
}

impl Opened {
    fn new(conn: Connection) -> Result<Opened> {
        let mounts = {
            let mut st = conn.prepare_cached("SELECT vpath, host FROM mounts ORDER BY vpath")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        Ok(Opened {
            conn: Mutex::new(conn),
            mounts,
        })
    }
}

/// A store file that SQLite cannot use as it is, with what happened and what to do.
#[derive(Debug, thiserror::Error)]
#[error(
    "the state store {path} is damaged: {what}.\n\
     Nothing was changed. 'valyxo doctor' checks it and lists the backups; \
     'valyxo doctor --salvage' copies everything still readable into a new store (the damaged \
     file is kept beside it), and 'valyxo doctor --restore' puts the newest backup back."
)]
pub struct Damaged {
    pub path: String,
    pub what: String,
}

/// Whether `e` (anywhere in its chain) says the database file is damaged.
pub fn is_damage(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if let Some(rusqlite::Error::SqliteFailure(f, msg)) = e.downcast_ref::<rusqlite::Error>() {
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase
            ) {
                return true;
            }
            // A header whose schema format number no SQLite has written (every format since
            // 2006 is 4 or less): the header is damaged, though SQLite calls it a plain error.
            if msg.as_deref() == Some("unsupported file format") {
                return true;
            }
        }
        if e.is::<Damaged>() {
            return true;
        }
        cur = e.source();
    }
    false
}

/// What a write the store's disk had no room for is told as.
pub const DISK_FULL: &str =
    "the disk holding the state store is full: free some space and try again";

/// Whether `e` is SQLite finding no room left on the disk (SQLITE_FULL): the statement,
/// and the transaction it was part of, wrote nothing.
pub fn is_disk_full(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DiskFull)
}

/// Makes the file at `path` ready to open: created private to the user when new; an
/// existing one made private, and checked to look like a database (SQLite takes a file
/// shorter than a page for an empty database and would start afresh over it).
fn prepare_file(path: &Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot create the state store {}", path.display()))
        }
    }
    let md = std::fs::metadata(path)
        .with_context(|| format!("cannot read the state store {}", path.display()))?;
    let damaged = |what: &str| Damaged {
        path: path.display().to_string(),
        what: what.to_string(),
    };
    if md.len() > 0 {
        let mut head = [0u8; 16];
        use std::io::Read;
        let n = std::fs::File::open(path)
            .and_then(|mut f| f.read(&mut head))
            .unwrap_or(0);
        if n < 16 || &head != MAGIC {
            return Err(damaged("it does not start with a database header").into());
        }
        if md.len() < 512 {
            return Err(damaged(&format!(
                "it is cut short ({} bytes, less than one page)",
                md.len()
            ))
            .into());
        }
    }
    // Homes made before stores were private: history, variables and projects are nobody
    // else's business.
    for p in [
        path.to_path_buf(),
        suffixed(path, "-wal"),
        suffixed(path, "-shm"),
    ] {
        if let Ok(m) = std::fs::metadata(&p) {
            if m.permissions().mode() & 0o077 != 0 {
                let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600));
            }
        }
    }
    Ok(())
}

/// `path` with `suffix` added to its file name.
fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// Opens the file at `path` (created private when new): configured, and brought up to date.
fn connect(path: &Path) -> Result<Connection> {
    prepare_file(path)?;
    let damaged = |e: anyhow::Error| -> anyhow::Error {
        if !is_damage(e.as_ref()) && crate::os::no_room_beside(path) {
            // SQLite's own words ("disk I/O error") would not say what to do.
            return anyhow::anyhow!(
                "cannot open the state store {}: the disk holding it is full (SQLite \
                 needs some room beside it to open it): free some space and try again",
                path.display()
            );
        }
        if is_damage(e.as_ref()) {
            Damaged {
                path: path.display().to_string(),
                what: e.root_cause().to_string(),
            }
            .into()
        } else {
            e
        }
    };
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open the state store {}", path.display()))?;
    configure(&conn)
        .with_context(|| format!("cannot configure {}", path.display()))
        .map_err(damaged)?;
    migrate(&mut conn)
        .with_context(|| format!("cannot bring {} up to date", path.display()))
        .map_err(damaged)?;
    Ok(conn)
}

/// Ends the run over a store that could not be opened at first use (or whose mount table
/// cannot be read): the error on standard error, escaped, and status 1, as at start-up.
/// What the run wrote to standard output so far is flushed first.
pub fn fail(e: &anyhow::Error) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let mut text = crate::text::clean_message(&format!("{e:#}"), crate::text::MESSAGE_MAX);
    add_damage_hint(e, &mut text);
    eprintln!("valyxo: {text}");
    std::process::exit(1)
}

/// Adds to the text of `e` (already in `text`) what to do when `e` says the store is
/// damaged and the text does not say it already.
pub fn add_damage_hint(e: &anyhow::Error, text: &mut String) {
    if is_damage(e.as_ref()) && !text.contains("valyxo doctor") {
        text.push_str(
            "\nThe state store is damaged: run 'valyxo doctor' from the host shell (it checks \
             the store and says how to get your projects back).",
        );
    }
}

impl Store {
    /// Opens (creating if needed) the store at `path` and applies pending migrations.
    pub fn open(path: &Path) -> Result<Store> {
        let store = Store::open_lazily(path);
        store.connect()?;
        Ok(store)
    }

    /// The store at `path`, opened (and created, and brought up to date) on first use.
    pub fn open_lazily(path: &Path) -> Store {
        Store {
            opened: OnceLock::new(),
            path: path.to_path_buf(),
            on_open: Mutex::new(None),
        }
    }

    /// Whether the file has been opened yet.
    pub fn is_open(&self) -> bool {
        self.opened.get().is_some()
    }

    /// The connection, opening the file first if this is its first use.
    fn connect(&self) -> Result<&Opened> {
        if let Some(o) = self.opened.get() {
            return Ok(o);
        }
        let opened = Opened::new(connect(&self.path)?)
            .with_context(|| format!("cannot read the mount table of {}", self.path.display()))?;
        // Two threads may open it at once: one connection is kept, the other closed.
        let opened = self.opened.get_or_init(|| opened);
        self.run_on_open();
        Ok(opened)
    }

    /// Runs the work waiting for the file to be open, if any (taken first: it runs once).
    fn run_on_open(&self) {
        let work = self
            .on_open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(work) = work {
            work();
        }
    }

    /// Runs `work` once the file is open: now if it is, else right after its first opening
    /// (with no lock held, so `work` may use the store). Replaces work not yet run.
    pub fn on_first_open(&self, work: OnOpen) {
        if self.is_open() {
            return work();
        }
        *self.on_open.lock().unwrap_or_else(|e| e.into_inner()) = Some(work);
        // Opened meanwhile: the work may have been missed.
        if self.is_open() {
            self.run_on_open();
        }
    }

    /// The mount table (virtual path, host path) as it was when the store was opened,
    /// opening it if need be. It never waits for the connection, so the VFS may read it
    /// first from inside a transaction.
    pub fn mounts_at_open(&self) -> &[(String, String)] {
        match self.connect() {
            Ok(o) => &o.mounts,
            Err(e) => fail(&e),
        }
    }

    /// An in-memory store, for unit tests.
    pub fn in_memory() -> Result<Store> {
        let mut conn = Connection::open_in_memory()?;
        configure(&conn)?;
        migrate(&mut conn)?;
        Ok(Store {
            opened: OnceLock::from(Opened::new(conn)?),
            path: PathBuf::from(":memory:"),
            on_open: Mutex::new(None),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Locks the connection, opening the file on first use. Poisoning is ignored: SQLite
    /// keeps its own consistency. A lazily opened store that cannot be opened ends the run
    /// (see [`Store`]).
    pub fn conn(&self) -> MutexGuard<'_, Connection> {
        match self.connect() {
            Ok(o) => o.conn.lock().unwrap_or_else(|e| e.into_inner()),
            Err(e) => fail(&e),
        }
    }

    /// Whether the store at `path` is at this valyxo's schema version, read from the file's
    /// header without opening it (a missing or empty file is a new store, which is). The
    /// header may lag behind the file's log, so a store said not to be current may be.
    /// Anything but a regular file (a fifo, which a plain open would wait on) is not: it is
    /// left to the opening at start to refuse.
    pub fn is_current(path: &Path) -> bool {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let mut head = [0u8; 64];
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path);
        match opened {
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
            Ok(f) if !f.metadata().is_ok_and(|m| m.is_file()) => false,
            Ok(mut f) => match f.read_exact(&mut head) {
                Ok(()) => {
                    head[..16] == MAGIC[..]
                        && u32::from_be_bytes([head[60], head[61], head[62], head[63]]) as usize
                            == MIGRATIONS.len()
                }
                Err(_) => f.metadata().is_ok_and(|m| m.len() == 0),
            },
        }
    }

    /// A separate read-only connection for a worker thread that reads many rows (grep over a
    /// stored tree) without contending for the shared connection. `None` for in-memory stores.
    pub fn reader(&self) -> Option<Connection> {
        if self.path == Path::new(":memory:") {
            return None;
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .ok()?;
        conn.busy_timeout(Duration::from_secs(10)).ok()?;
        // Blob reads through the page cache of a memory map instead of one pread per page.
        conn.pragma_update(None, "mmap_size", MMAP_SIZE).ok()?;
        Some(conn)
    }

    /// Runs `f` inside an IMMEDIATE transaction and commits it when `f` succeeds.
    pub fn tx<R>(&self, f: impl FnOnce(&Transaction) -> Result<R>) -> Result<R> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let r = f(&tx)?;
        tx.commit()?;
        Ok(r)
    }

    /// Reads a key/value table row (`settings`, `aliases`, `env`).
    pub fn kv_get(&self, table: KvTable, key: &str) -> Result<Option<String>> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(table.get_sql())?;
        let mut rows = st.query([key])?;
        Ok(match rows.next()? {
            Some(r) => Some(r.get(0)?),
            None => None,
        })
    }

    pub fn kv_set(&self, table: KvTable, key: &str, value: &str) -> Result<()> {
        let conn = self.conn();
        conn.prepare_cached(table.set_sql())?
            .execute([key, value])?;
        Ok(())
    }

    /// Removes a row; returns whether it existed.
    pub fn kv_remove(&self, table: KvTable, key: &str) -> Result<bool> {
        let conn = self.conn();
        let n = conn.prepare_cached(table.del_sql())?.execute([key])?;
        Ok(n > 0)
    }

    pub fn kv_list(&self, table: KvTable) -> Result<Vec<(String, String)>> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(table.list_sql())?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// The simple key/value tables of the store.
#[derive(Clone, Copy, Debug)]
pub enum KvTable {
    Settings,
    Aliases,
    Env,
}

impl KvTable {
    fn get_sql(self) -> &'static str {
        match self {
            KvTable::Settings => "SELECT value FROM settings WHERE key = ?1",
            KvTable::Aliases => "SELECT value FROM aliases WHERE name = ?1",
            KvTable::Env => "SELECT value FROM env WHERE name = ?1",
        }
    }
    fn set_sql(self) -> &'static str {
        match self {
            KvTable::Settings => "INSERT OR REPLACE INTO settings (key, value) VALUES (?1, ?2)",
            KvTable::Aliases => "INSERT OR REPLACE INTO aliases (name, value) VALUES (?1, ?2)",
            KvTable::Env => "INSERT OR REPLACE INTO env (name, value) VALUES (?1, ?2)",
        }
    }
    fn del_sql(self) -> &'static str {
        match self {
            KvTable::Settings => "DELETE FROM settings WHERE key = ?1",
            KvTable::Aliases => "DELETE FROM aliases WHERE name = ?1",
            KvTable::Env => "DELETE FROM env WHERE name = ?1",
        }
    }
    fn list_sql(self) -> &'static str {
        match self {
            KvTable::Settings => "SELECT key, value FROM settings ORDER BY key",
            KvTable::Aliases => "SELECT name, value FROM aliases ORDER BY name",
            KvTable::Env => "SELECT name, value FROM env ORDER BY name",
        }
    }
}

/// Bytes of the database file SQLite may memory-map for reads.
const MMAP_SIZE: i64 = 256 << 20;

/// Lets go of the pages of `conn`'s memory map (they count as the process's memory while
/// mapped) and maps afresh at the next read: SQLite unmaps the file when the map's size
/// changes.
pub fn release_map(conn: &Connection) {
    let _ = conn.pragma_update(None, "mmap_size", 0);
    let _ = conn.pragma_update(None, "mmap_size", MMAP_SIZE);
}

impl Drop for Store {
    /// Checkpoints the WAL into the database and truncates it, so the next process to open
    /// the home finds an empty WAL instead of recovering and checkpointing it again (that
    /// costs an fsync on every start-up). Skipped, never waited for, while another process
    /// is using the database.
    fn drop(&mut self) {
        let Some(opened) = self.opened.get_mut() else {
            return; // never opened
        };
        let conn = opened.conn.get_mut().unwrap_or_else(|e| e.into_inner());
        let _ = conn.busy_timeout(Duration::ZERO);
        let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    // SQLite answers some lock conflicts while a database is being set up or its WAL
    // recovered (two processes opening a new home at once) with SQLITE_BUSY at once, without
    // waiting in the busy handler; such an answer is retried here for as long as the busy
    // timeout would have waited.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match configure_once(conn) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

fn configure_once(conn: &Connection) -> rusqlite::Result<()> {
    // A new store gives its free pages back to the file system as it goes (see
    // care::reclaim); this can only be chosen before the first table exists.
    let pages: i64 = conn.pragma_query_value(None, "page_count", |r| r.get(0))?;
    if pages == 0 {
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    }
    conn.pragma_update(None, "mmap_size", MMAP_SIZE)?;
    // WAL lets readers and one writer work at once across processes; NORMAL sync keeps every
    // committed transaction across a process crash (kill -9), and fsyncs at checkpoints.
    // The mode is kept in the file, so it is only switched (which needs a lock) once.
    let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        conn.pragma_update(None, "journal_mode", "WAL")?;
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    persist_wal(conn);
    Ok(())
}

/// Keeps the WAL and shared-memory files when the last connection closes, so each short-lived
/// `valyxo -c` does not create, size and delete them again (a large part of start-up time).
/// The WAL is still checkpointed and truncated; nothing is lost if this is not supported.
fn persist_wal(conn: &Connection) {
    let mut on: std::os::raw::c_int = 1;
    // SAFETY: the handle is valid for the connection's lifetime, "main" is a NUL-terminated
    // schema name, and SQLITE_FCNTL_PERSIST_WAL reads and writes one c_int through the pointer.
    unsafe {
        rusqlite::ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            rusqlite::ffi::SQLITE_FCNTL_PERSIST_WAL,
            (&mut on as *mut std::os::raw::c_int).cast(),
        );
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version as usize == MIGRATIONS.len() {
        return Ok(()); // the common case: nothing to do, no write lock taken
    }
    // Two processes may open a new home at once: the write lock is taken before the version
    // is read again, so exactly one of them applies each migration.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version as usize > MIGRATIONS.len() {
        anyhow::bail!(
            "the store has schema version {version}, newer than this valyxo understands ({}); \
             upgrade valyxo",
            MIGRATIONS.len()
        );
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql)
            .with_context(|| format!("migration {} failed", i + 1))?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
    }
    tx.commit()?;
    Ok(())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v as usize, MIGRATIONS.len());
        // Applying them again is a no-op.
        migrate(&mut conn).unwrap();
    }

    #[test]
    fn processes_opening_a_new_home_at_once_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        std::thread::scope(|s| {
            let hs: Vec<_> = (0..6)
                .map(|_| s.spawn(|| Store::open(&path).map(|_| ())))
                .collect();
            for h in hs {
                h.join().unwrap().unwrap();
            }
        });
    }

    #[test]
    fn reopen_keeps_data_and_schema_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        {
            let s = Store::open(&path).unwrap();
            s.kv_set(KvTable::Settings, "color", "never").unwrap();
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(
            s.kv_get(KvTable::Settings, "color").unwrap().as_deref(),
            Some("never")
        );
        let mode: String = s
            .conn()
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn newer_schema_is_refused_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        drop(Store::open(&path).unwrap());
        {
            let c = Connection::open(&path).unwrap();
            c.pragma_update(None, "user_version", 99).unwrap();
        }
        let err = format!("{:#}", Store::open(&path).err().unwrap());
        assert!(err.contains("newer than this valyxo"), "{err}");
    }

    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    /// The tables, indexes and triggers, as SQLite keeps them.
    fn schema(s: &Store) -> Vec<(String, Option<String>)> {
        let conn = s.conn();
        let mut st = conn
            .prepare("SELECT name, sql FROM sqlite_master ORDER BY name")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn a_new_store_and_its_journal_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        let s = Store::open(&path).unwrap();
        s.kv_set(KvTable::Env, "K", "v").unwrap();
        assert_eq!(mode(&path), 0o600);
        // SQLite gives its WAL and shared-memory files the database's permissions.
        for side in ["-wal", "-shm"] {
            let p = suffixed(&path, side);
            if p.exists() {
                assert_eq!(mode(&p), 0o600, "{side}");
            }
        }
    }

    #[test]
    fn an_existing_store_others_could_read_is_made_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        drop(Store::open(&path).unwrap());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(Store::open(&path).unwrap());
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn reopening_changes_nothing_in_the_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        let first = schema(&Store::open(&path).unwrap());
        assert!(first.iter().any(|(n, _)| n == "nodes"), "{first:?}");
        for _ in 0..3 {
            let s = Store::open(&path).unwrap();
            assert_eq!(schema(&s), first);
            let v: i64 = s
                .conn()
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .unwrap();
            assert_eq!(v as usize, MIGRATIONS.len());
        }
    }

    #[test]
    fn a_second_opener_sees_the_first_ones_writes_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        let a = Store::open(&path).unwrap();
        let b = Store::open(&path).unwrap();
        a.kv_set(KvTable::Aliases, "ll", "ls -l").unwrap();
        assert_eq!(
            b.kv_get(KvTable::Aliases, "ll").unwrap().as_deref(),
            Some("ls -l")
        );
        b.tx(|tx| {
            tx.execute("DELETE FROM aliases WHERE name = 'll'", [])?;
            Ok(())
        })
        .unwrap();
        assert_eq!(a.kv_get(KvTable::Aliases, "ll").unwrap(), None);
        // A reader connection sees committed writes too.
        a.kv_set(KvTable::Env, "X", "1").unwrap();
        let r = b.reader().unwrap();
        let x: String = r
            .query_row("SELECT value FROM env WHERE name = 'X'", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(x, "1");
    }

    #[test]
    fn a_damaged_file_is_reported_plainly_and_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&str, Vec<u8>, &str); 5] = [
            (
                "text",
                b"these are my notes, not a database\n".repeat(40),
                "it does not start with a database header",
            ),
            (
                "short",
                b"SQLite format 3\0 and then nothing".to_vec(),
                "it is cut short (33 bytes, less than one page)",
            ),
            (
                "header",
                {
                    // The magic string, then a header of noise.
                    let mut v = b"SQLite format 3\0".to_vec();
                    v.extend((0..16_384u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
                    v
                },
                "",
            ),
            (
                "format",
                {
                    // A header whose page size and payload fractions are right, with noise
                    // from the change counter on (the schema format among it).
                    let mut v = b"SQLite format 3\0".to_vec();
                    v.extend_from_slice(&[0x10, 0x00, 0x01, 0x01, 0x00, 0x40, 0x20, 0x20]);
                    v.extend((0..16_384u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
                    v
                },
                "",
            ),
            (
                "schema",
                {
                    // A real store whose first page (the schema) after the header is noise.
                    let real = dir.path().join("real.db");
                    drop(Store::open(&real).unwrap());
                    let mut v = std::fs::read(&real).unwrap();
                    for (i, b) in v[100..4096].iter_mut().enumerate() {
                        *b = (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[1];
                    }
                    v
                },
                "",
            ),
        ];
        for (name, bytes, what) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).unwrap();
            let err = Store::open(&path)
                .err()
                .unwrap_or_else(|| panic!("{name} opened"));
            assert!(is_damage(err.as_ref()), "{name}: {err:#}");
            let shown = format!("{err:#}");
            assert!(
                shown.contains(&format!(
                    "the state store {} is damaged: {what}",
                    path.display()
                )),
                "{name}: {shown}"
            );
            assert!(shown.contains("valyxo doctor"), "{name}: {shown}");
            assert_eq!(std::fs::read(&path).unwrap(), bytes, "{name} was changed");
        }
    }
}
