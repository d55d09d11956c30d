//! Storage for the server: one SQL dialect over two backends. SQLite (rusqlite, one file,
//! nothing to install) is the default; PostgreSQL serves several stateless server processes
//! behind a load balancer. Queries are written once with `?` placeholders (rewritten to `$n`
//! for PostgreSQL) over a small value type, so the API's logic exists once.

use super::ApiError;
use std::path::PathBuf;
use std::time::Duration;

/// A value bound to or read from a query.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::Int(v)
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::Text(v.to_string())
    }
}
impl From<String> for Val {
    fn from(v: String) -> Val {
        Val::Text(v)
    }
}
impl From<&String> for Val {
    fn from(v: &String) -> Val {
        Val::Text(v.clone())
    }
}
impl From<Vec<u8>> for Val {
    fn from(v: Vec<u8>) -> Val {
        Val::Bytes(v)
    }
}
impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Val {
        v.map_or(Val::Null, Into::into)
    }
}

/// One result row.
#[derive(Debug)]
pub struct Row(pub Vec<Val>);

impl Row {
    pub fn int(&self, i: usize) -> i64 {
        match self.0.get(i) {
            Some(Val::Int(v)) => *v,
            _ => 0,
        }
    }
    pub fn text(&self, i: usize) -> String {
        self.opt_text(i).unwrap_or_default()
    }
    pub fn opt_text(&self, i: usize) -> Option<String> {
        match self.0.get(i) {
            Some(Val::Text(v)) => Some(v.clone()),
            _ => None,
        }
    }
    pub fn bytes(self, i: usize) -> Vec<u8> {
        match self.0.into_iter().nth(i) {
            Some(Val::Bytes(v)) => v,
            Some(Val::Text(v)) => v.into_bytes(),
            _ => Vec::new(),
        }
    }
}

/// Seconds since the Unix epoch, as the server's rows keep times.
pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Errors of the storage layer that callers tell apart.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("a unique constraint failed")]
    Unique,
    /// The disk that holds the database has no room left: the transaction wrote nothing.
    #[error("the database's disk is full")]
    Full,
    /// A statement ran past the statement timeout, or waited past the lock timeout
    /// (`--statement-timeout`); on SQLite, it waited past the busy timeout.
    #[error("the database took too long to answer")]
    Timeout,
    /// The connection ended under the statement (the database restarted, or an
    /// administrator ended the session). The transaction it was in did not commit.
    #[error("{0}")]
    Lost(String),
    #[error("{0}")]
    Other(String),
}

/// The answer to a statement that hit the statement timeout.
const TOO_LONG: &str = "The database took too long to answer; try again in a moment";

/// The answer when the connection ended as a transaction's COMMIT was sent.
const LOST_AT_COMMIT: &str = "The connection to the database was lost while saving, so the \
     change may or may not have been saved; check before trying again";

/// The answer when the connection to the database ended under a request, twice (the
/// request is tried once more on a fresh connection first, see `Postgres::transaction`).
const LOST: &str = "The connection to the database was lost; try again in a moment";

/// The answer when the pool has no connection to give within its wait (every one busy, or
/// the database cannot be reached): the client gets words and a retry; the log, once every
/// few seconds, gets the pool's and driver's reason.
fn no_connection(e: r2d2::Error) -> ApiError {
    static SAID: super::log::Every = super::log::Every::new(10);
    if let Some(times) = SAID.due(unix_now().max(0) as u64) {
        super::log::event(serde_json::json!({"level": "warn",
            "msg": "no database connection to give a request", "times": times,
            "error": e.to_string()}));
    }
    ApiError::unavailable("The database is busy or cannot be reached; try again in a moment")
        .retry(1)
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> ApiError {
        match e {
            DbError::Unique => ApiError::conflict("Already exists"),
            DbError::Full => {
                // The operator's to fix: said in the log, as a fault of the server is, once
                // every few seconds with the count of writes refused meanwhile (every write
                // meets it until space is freed).
                static SAID: super::log::Every = super::log::Every::new(10);
                if let Some(refused) = SAID.due(unix_now().max(0) as u64) {
                    super::log::event(serde_json::json!({"level": "error",
                        "msg": "the database's disk is full: writes are refused until space is freed",
                        "refused": refused}));
                }
                ApiError::new(
                    axum::http::StatusCode::INSUFFICIENT_STORAGE,
                    "The server's disk is full, so nothing was changed: try again later",
                )
                .with_code("disk_full")
            }
            DbError::Timeout => ApiError::unavailable(TOO_LONG).retry(1),
            DbError::Lost(_) => ApiError::unavailable(LOST).retry(1),
            DbError::Other(m) => ApiError::internal(m),
        }
    }
}

/// A connection inside a transaction.
pub trait Conn {
    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>, DbError>;
    fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64, DbError>;
}

impl dyn Conn + '_ {
    pub fn one(&mut self, sql: &str, params: &[Val]) -> Result<Option<Row>, DbError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }
}

type TxFn<'a> = &'a mut dyn FnMut(&mut dyn Conn) -> Result<(), ApiError>;

/// A query that must find a row for a request's work to count: the check that the
/// request's session is live. See [`Db::guarded`].
#[derive(Clone, Debug)]
pub struct Guard {
    pub sql: &'static str,
    pub params: Vec<Val>,
    /// Why the request is refused when the query finds no row (answered with 401).
    pub refusal: &'static str,
}

/// A guard as a transaction carries it, and what its query found.
pub struct Carried<'a> {
    guard: &'a Guard,
    found: Option<bool>,
}

/// Where the guard of the request this thread serves stands.
enum Gate {
    /// Not run yet: it goes with the next transaction.
    Pending(Guard),
    /// Carried by the transaction under way, which has not ended: a transaction opened
    /// inside it would run unguarded, so it is refused.
    InFlight,
    Passed,
    Refused(&'static str),
}

thread_local! {
    static GATE: std::cell::RefCell<Option<Gate>> = const { std::cell::RefCell::new(None) };
}

trait Backend: Send + Sync {
    /// Runs `f` in a transaction, committed when it returns Ok and rolled back otherwise.
    /// `write` says the transaction will write (SQLite then takes its write lock at once,
    /// so two writers wait for each other instead of failing). A `guard` runs before the
    /// body's first statement (PostgreSQL sends both in one round trip); the backend
    /// records whether it found its row, and when it found none, nothing of the
    /// transaction is committed and the body sees no rows of its statements.
    fn transaction(
        &self,
        write: bool,
        guard: Option<&mut Carried<'_>>,
        f: TxFn<'_>,
    ) -> Result<(), ApiError>;
    /// Builds the indexes of [`CONCURRENT_INDEXES`] that are missing, or left invalid by
    /// a build that failed, without blocking writes meanwhile; nothing on SQLite.
    fn build_indexes(&self) -> Result<(), DbError>;
    fn describe(&self) -> String;
    fn pool_use(&self) -> PoolUse;
}

/// How the connection pool is used at one moment (for `/metrics`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PoolUse {
    pub in_use: u32,
    pub idle: u32,
    pub max: u32,
}

fn pool_use<M: r2d2::ManageConnection>(pool: &r2d2::Pool<M>) -> PoolUse {
    let s = pool.state();
    PoolUse {
        in_use: s.connections.saturating_sub(s.idle_connections),
        idle: s.idle_connections,
        max: pool.max_size(),
    }
}

/// The server's database.
pub struct Db {
    backend: Box<dyn Backend>,
    postgres: bool,
}

impl Db {
    /// Opens `url`: `sqlite:PATH` (or a bare path) or `postgres://…`, and brings the schema
    /// up to date, with the default statement timeout.
    pub fn open(url: &str, pool_size: u32) -> anyhow::Result<Db> {
        Db::open_with(url, pool_size, STATEMENT_TIMEOUT)
    }

    /// [`Db::open`] with `statement_timeout`, the longest one statement may run or wait for
    /// a lock (`--statement-timeout`): on PostgreSQL its `statement_timeout` and
    /// `lock_timeout`, on SQLite its busy timeout (SQLite cannot stop a statement that
    /// runs, but all its waiting is for the lock of another writer). A statement past it
    /// fails, answered with 503.
    pub fn open_with(url: &str, pool_size: u32, statement_timeout: Duration) -> anyhow::Result<Db> {
        let path = sqlite_path(url);
        let postgres = path.is_none();
        let backend: Box<dyn Backend> = match path {
            None => Box::new(Postgres::open(url, pool_size, statement_timeout)?),
            Some(path) => Box::new(Sqlite::open(path, pool_size, statement_timeout)?),
        };
        let db = Db { backend, postgres };
        db.migrate()
            .map_err(|e| anyhow::anyhow!("cannot set up the database: {}", e.message))?;
        db.backend
            .build_indexes()
            .map_err(|e| anyhow::anyhow!("cannot build the database's indexes: {e}"))?;
        Ok(db)
    }

    pub fn describe(&self) -> String {
        self.backend.describe()
    }

    /// `column` compared byte by byte, as the `files_tree` index orders paths: then
    /// everything under a folder `d` lies between `d/` and `d0` (`'0'` follows `'/'`),
    /// whatever the database's collation. (SQLite compares text so by default.)
    pub fn bytewise(&self, column: &str) -> String {
        if self.postgres {
            format!("{column} COLLATE \"C\"")
        } else {
            column.to_string()
        }
    }

    /// Connections of the pool in use and idle, and its size.
    pub fn pool_use(&self) -> PoolUse {
        self.backend.pool_use()
    }

    /// Runs `f` in a transaction. `f` may be run twice: on PostgreSQL, a transaction whose
    /// connection ended before its COMMIT was sent is run again on a fresh connection
    /// (`Postgres::transaction`), so `f` does nothing outside the database that a second
    /// run would repeat.
    fn run<T>(
        &self,
        write: bool,
        mut f: impl FnMut(&mut dyn Conn) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let guard = match GATE.with(|g| g.borrow_mut().take()) {
            Some(Gate::Pending(guard)) => Some(guard),
            Some(Gate::Refused(why)) => {
                GATE.with(|g| *g.borrow_mut() = Some(Gate::Refused(why)));
                return Err(ApiError::unauthorized(why));
            }
            Some(Gate::InFlight) => {
                GATE.with(|g| *g.borrow_mut() = Some(Gate::InFlight));
                return Err(ApiError::internal(
                    "a transaction was opened inside one whose guard has not answered",
                ));
            }
            other => {
                GATE.with(|g| *g.borrow_mut() = other);
                None
            }
        };
        let mut carried = guard.as_ref().map(|guard| Carried { guard, found: None });
        if guard.is_some() {
            GATE.with(|g| *g.borrow_mut() = Some(Gate::InFlight));
        }
        let mut out = None;
        let done = self.backend.transaction(write, carried.as_mut(), &mut |c| {
            out = Some(f(c)?);
            Ok(())
        });
        if let (Some(c), Some(guard)) = (carried, guard.as_ref()) {
            let gate = match c.found {
                Some(true) => Gate::Passed,
                Some(false) => Gate::Refused(guard.refusal),
                None => Gate::Pending(guard.clone()),
            };
            let refused = matches!(gate, Gate::Refused(_));
            GATE.with(|g| *g.borrow_mut() = Some(gate));
            if refused {
                return Err(ApiError::unauthorized(guard.refusal));
            }
        }
        done?;
        Ok(out.expect("a committed transaction has a result"))
    }

    /// Runs `f`, a request's work, behind `guard`: the guard's query travels with the
    /// first statement of `f`'s first transaction, which fails (rolled back, its rows
    /// unseen) when the query finds no row, as does every transaction after it; `f`'s
    /// answer is then replaced by the guard's refusal. When `f` starts no transaction,
    /// the guard runs by itself afterwards. `f` must therefore not act outside the
    /// database before its first transaction: the request handlers read or write their
    /// rows first.
    pub fn guarded<T>(
        &self,
        guard: Guard,
        f: impl FnOnce() -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        /// Clears the thread's gate however `f` ends, a panic included.
        struct Reset;
        impl Drop for Reset {
            fn drop(&mut self) {
                GATE.with(|g| g.borrow_mut().take());
            }
        }
        let _reset = Reset;
        GATE.with(|g| *g.borrow_mut() = Some(Gate::Pending(guard)));
        let out = f();
        match GATE.with(|g| g.borrow_mut().take()) {
            None | Some(Gate::Passed) => out,
            // Not left behind by a transaction that ended (it sets the gate), but never
            // taken for a pass.
            Some(Gate::InFlight) => Err(ApiError::internal("a request's guard never answered")),
            Some(Gate::Refused(why)) => Err(ApiError::unauthorized(why)),
            Some(Gate::Pending(guard)) => {
                if self.read(|c| Ok(c.one(guard.sql, &guard.params)?.is_some()))? {
                    out
                } else {
                    Err(ApiError::unauthorized(guard.refusal))
                }
            }
        }
    }

    /// A read-only transaction. `f` may run twice (see [`Db::run`]).
    pub fn read<T>(
        &self,
        f: impl FnMut(&mut dyn Conn) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        self.run(false, f)
    }

    /// A transaction that writes. `f` may run twice (see [`Db::run`]).
    pub fn write<T>(
        &self,
        f: impl FnMut(&mut dyn Conn) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        self.run(true, f)
    }

    fn migrate(&self) -> Result<(), ApiError> {
        let postgres = self.postgres;
        self.write(|c| {
            if postgres {
                // A migration may take long on a large database, as may the wait for
                // another server's: no statement timeout in this transaction.
                c.query(
                    "SELECT set_config('statement_timeout', '0', true), \
                     set_config('lock_timeout', '0', true)",
                    &[],
                )?;
                // Several servers may start at once against one database.
                c.query("SELECT pg_advisory_xact_lock(7290561)", &[])?;
            }
            c.exec(
                "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
                &[],
            )?;
            let version = c
                .one("SELECT value FROM meta WHERE key = 'schema'", &[])?
                .map_or(0, |r| r.text(0).parse::<usize>().unwrap_or(0));
            for (i, step) in MIGRATIONS.iter().enumerate().skip(version) {
                let (id, blob) = if postgres {
                    (
                        "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
                        "BYTEA",
                    )
                } else {
                    // AUTOINCREMENT: an id is never handed out again after its row is
                    // deleted, so a client's remembered project id cannot name another.
                    ("INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB")
                };
                for stmt in step.split(';').filter(|s| !s.trim().is_empty()) {
                    let stmt = match stmt.trim_start().strip_prefix(POSTGRES_ONLY) {
                        Some(_) if !postgres => continue,
                        Some(rest) => rest,
                        None => stmt,
                    };
                    c.exec(&stmt.replace("{id}", id).replace("{blob}", blob), &[])?;
                }
                c.exec(
                    "INSERT INTO meta (key, value) VALUES ('schema', ?) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    &[(i + 1).to_string().into()],
                )?;
            }
            Ok(())
        })
    }
}

/// How long one statement may run or wait for a lock unless told (`--statement-timeout`).
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The file of a `sqlite:PATH` (or bare path) database URL; None for PostgreSQL.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return None;
    }
    let path = url.strip_prefix("sqlite:").unwrap_or(url);
    Some(PathBuf::from(path.strip_prefix("//").unwrap_or(path)))
}

/// Marks a statement of [`MIGRATIONS`] that only PostgreSQL runs.
const POSTGRES_ONLY: &str = "-- PostgreSQL only";

/// The schema version this server brings a database to.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// The schema, one entry per version. `{id}` is an auto-numbered 64-bit key and `{blob}`
/// a byte string in the backend's own spelling. Timestamps are RFC 3339 text in UTC with
/// milliseconds, which sorts in time order.
///
/// Version 2: when content was last touched (uploaded, asked about or committed, in Unix
/// seconds) for the collector of unnamed content; each account's stored bytes for its
/// quota; each script's run count and time, which outlive its bounded execution history.
///
/// Version 3: the login and register budget of each client address (`limit`).
///
/// Version 4: file content in chunks (`blobs.rs`): a `contents` row per upload (its bytes
/// so far, when it last wrote, -1 once the collector gave it up) with its `content_chunks`;
/// a blob names the content it publishes (none: stored whole in `data`, as before).
///
/// Version 5: indexes in the order of each paginated list (`page.rs`), so that a page is
/// one index range read whatever the size of the list: an account's projects and a
/// project's scripts by (created_at, id), a script's executions by id. (A project's files
/// are paged on their primary key.) They replace the indexes on the owner alone.
///
/// Version 6: on PostgreSQL, a project's paths in byte order (`Db::bytewise`), so that a
/// commit finds the files under a folder as one index range, whatever the database's
/// collation (SQLite's primary key is in that order already). It is built after the
/// migrations, outside their transaction ([`CONCURRENT_INDEXES`]); this step is empty.
///
/// Version 7: the theme the account chose for the web pages ("": none yet).
const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE users (
    id {id},
    username TEXT NOT NULL,
    username_key TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE sessions (
    jti TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL,
    revoked BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE TABLE projects (
    id {id},
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    revision BIGINT NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX projects_user ON projects (user_id);
CREATE TABLE scripts (
    id {id},
    project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    content TEXT NOT NULL,
    language TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX scripts_project ON scripts (project_id);
CREATE TABLE executions (
    id {id},
    script_id BIGINT NOT NULL REFERENCES scripts (id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    output TEXT NOT NULL,
    error TEXT,
    execution_time_ms BIGINT NOT NULL,
    executed_at TEXT NOT NULL
);
CREATE INDEX executions_script ON executions (script_id);
CREATE TABLE blobs (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash TEXT NOT NULL,
    size BIGINT NOT NULL,
    data {blob} NOT NULL,
    PRIMARY KEY (user_id, hash)
);
CREATE TABLE files (
    project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    hash TEXT,
    size BIGINT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (project_id, path)
)
",
    "
ALTER TABLE blobs ADD COLUMN touched_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX blobs_touched ON blobs (touched_at);
CREATE INDEX files_hash ON files (hash);
ALTER TABLE users ADD COLUMN storage_bytes BIGINT NOT NULL DEFAULT 0;
UPDATE users SET storage_bytes =
    (SELECT COALESCE(SUM(b.size), 0) FROM blobs b WHERE b.user_id = users.id);
ALTER TABLE scripts ADD COLUMN runs BIGINT NOT NULL DEFAULT 0;
ALTER TABLE scripts ADD COLUMN run_ms BIGINT NOT NULL DEFAULT 0;
UPDATE scripts SET
    runs = (SELECT count(*) FROM executions e WHERE e.script_id = scripts.id),
    run_ms = (SELECT COALESCE(SUM(e.execution_time_ms), 0) FROM executions e
        WHERE e.script_id = scripts.id)
",
    // Version 3: the login and register budget of each client address, shared by every
    // server on one database (`limit`): its theoretical arrival time in Unix milliseconds,
    // and whether its last attempt was let through.
    "
CREATE TABLE rate_limits (
    client TEXT PRIMARY KEY,
    tat BIGINT NOT NULL,
    ok BIGINT NOT NULL
);
CREATE INDEX rate_limits_tat ON rate_limits (tat)
",
    // Version 4: file content kept in 1 MiB chunks (`blobs`), so no request holds a whole
    // file; `blobs.content_id` names a file's chunked content (NULL: stored whole before).
    "
CREATE TABLE contents (
    id {id},
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    size BIGINT NOT NULL,
    written_at BIGINT NOT NULL
);
CREATE INDEX contents_written ON contents (written_at);
CREATE TABLE content_chunks (
    content_id BIGINT NOT NULL REFERENCES contents (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    data {blob} NOT NULL,
    PRIMARY KEY (content_id, seq)
);
ALTER TABLE blobs ADD COLUMN content_id BIGINT;
CREATE INDEX blobs_content ON blobs (content_id)
",
    // Version 5: the indexes of the paginated lists (see above).
    "
CREATE INDEX projects_page ON projects (user_id, created_at, id);
DROP INDEX projects_user;
CREATE INDEX scripts_page ON scripts (project_id, created_at, id);
DROP INDEX scripts_project;
CREATE INDEX executions_page ON executions (script_id, id);
DROP INDEX executions_script
",
    // Version 6: the files of a folder, on PostgreSQL: built by `CONCURRENT_INDEXES`.
    // (Built here, inside the migration's transaction, it held off every write to `files`
    // until it was done.) A database that took this step before has the index already.
    "",
    // Version 7: the theme of the account's web pages (see above).
    "
ALTER TABLE users ADD COLUMN theme TEXT NOT NULL DEFAULT ''
",
];

/// Indexes on PostgreSQL that the server builds after the migrations, each with
/// `CREATE INDEX CONCURRENTLY`, which lets the table be written while it builds (it cannot
/// run in a transaction, so not in a migration's): (name, statement). At every start, one
/// that is missing is built, and one left invalid by a build that did not finish (the
/// server or the database stopped, or the build was cancelled) is dropped and built again.
/// A server that starts while another builds goes on without it (queries are right
/// without it, only slower on large projects), and the builder finishes it.
const CONCURRENT_INDEXES: &[(&str, &str)] = &[(
    "files_tree",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS files_tree ON files (project_id, path COLLATE \"C\")",
)];

/// The advisory lock (a session's) held by the server that builds [`CONCURRENT_INDEXES`].
const INDEX_BUILDER_LOCK: i64 = 7290562;

// ---- SQLite ----

struct SqliteManager {
    path: PathBuf,
    /// How long a statement waits for another connection's lock (`--statement-timeout`).
    busy: Duration,
}

impl r2d2::ManageConnection for SqliteManager {
    type Connection = rusqlite::Connection;
    type Error = rusqlite::Error;

    fn connect(&self) -> Result<rusqlite::Connection, rusqlite::Error> {
        let c = rusqlite::Connection::open(&self.path)?;
        c.busy_timeout(self.busy)?;
        c.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
        )?;
        Ok(c)
    }
    fn is_valid(&self, c: &mut rusqlite::Connection) -> Result<(), rusqlite::Error> {
        c.execute_batch("")
    }
    fn has_broken(&self, _: &mut rusqlite::Connection) -> bool {
        false
    }
}

struct Sqlite {
    pool: r2d2::Pool<SqliteManager>,
    path: PathBuf,
}

impl Sqlite {
    fn open(path: PathBuf, pool_size: u32, busy: Duration) -> anyhow::Result<Sqlite> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        }
        let manager = SqliteManager {
            path: path.clone(),
            busy,
        };
        // One connection first, so a damaged file is reported at once rather than after
        // the pool's wait.
        r2d2::ManageConnection::connect(&manager).map_err(|e| {
            if crate::os::no_room_beside(&path) {
                anyhow::anyhow!(
                    "cannot open {}: the disk holding it is full (SQLite needs some room \
                     beside it to open it): free some space and try again",
                    path.display()
                )
            } else {
                anyhow::anyhow!("cannot open {}: {e}", path.display())
            }
        })?;
        let pool = r2d2::Pool::builder()
            .max_size(pool_size.max(1))
            .connection_timeout(Duration::from_secs(30))
            .build(manager)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
        Ok(Sqlite { pool, path })
    }
}

fn sqlite_err(e: rusqlite::Error) -> DbError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation
                && matches!(f.extended_code, 2067 | 1555) =>
        {
            DbError::Unique
        }
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DiskFull => {
            DbError::Full
        }
        // Another connection held the lock past the busy timeout.
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            DbError::Timeout
        }
        _ => DbError::Other(format!("SQLite: {e}")),
    }
}

impl rusqlite::ToSql for Val {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Val::Null => ValueRef::Null,
            Val::Int(v) => ValueRef::Integer(*v),
            Val::Text(v) => ValueRef::Text(v.as_bytes()),
            Val::Bytes(v) => ValueRef::Blob(v),
        }))
    }
}

impl Conn for rusqlite::Transaction<'_> {
    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>, DbError> {
        use rusqlite::types::ValueRef;
        let mut st = self.prepare_cached(sql).map_err(sqlite_err)?;
        let n = st.column_count();
        let mut rows = st
            .query(rusqlite::params_from_iter(params))
            .map_err(sqlite_err)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(sqlite_err)? {
            let mut row = Vec::with_capacity(n);
            for i in 0..n {
                row.push(match r.get_ref(i).map_err(sqlite_err)? {
                    ValueRef::Null => Val::Null,
                    ValueRef::Integer(v) => Val::Int(v),
                    ValueRef::Real(v) => Val::Int(v as i64),
                    ValueRef::Text(v) => Val::Text(String::from_utf8_lossy(v).into_owned()),
                    ValueRef::Blob(v) => Val::Bytes(v.to_vec()),
                });
            }
            out.push(Row(row));
        }
        Ok(out)
    }
    fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64, DbError> {
        let mut st = self.prepare_cached(sql).map_err(sqlite_err)?;
        st.execute(rusqlite::params_from_iter(params))
            .map(|n| n as u64)
            .map_err(sqlite_err)
    }
}

impl Backend for Sqlite {
    fn transaction(
        &self,
        write: bool,
        guard: Option<&mut Carried<'_>>,
        f: TxFn<'_>,
    ) -> Result<(), ApiError> {
        let mut c = self.pool.get().map_err(no_connection)?;
        let behaviour = if write {
            rusqlite::TransactionBehavior::Immediate
        } else {
            rusqlite::TransactionBehavior::Deferred
        };
        let mut tx = c.transaction_with_behavior(behaviour).map_err(sqlite_err)?;
        if let Some(c) = guard {
            let none = Conn::query(&mut tx, c.guard.sql, &c.guard.params)?.is_empty();
            c.found = Some(!none);
            if none {
                return Err(ApiError::unauthorized(c.guard.refusal));
            }
        }
        f(&mut tx)?;
        tx.commit().map_err(sqlite_err)?;
        Ok(())
    }
    fn build_indexes(&self) -> Result<(), DbError> {
        Ok(())
    }
    fn describe(&self) -> String {
        format!("SQLite {}", self.path.display())
    }
    fn pool_use(&self) -> PoolUse {
        pool_use(&self.pool)
    }
}

// ---- PostgreSQL ----
//
// tokio-postgres, each connection driven by the thread that uses it. Handlers are plain
// functions on tokio's blocking threads; a pooled connection carries a current-thread
// runtime of its own, and a statement is sent, its socket waited on and its answer read
// all on the handler's thread, as the synchronous `postgres` crate does. Handing each
// statement to a connection task on the async workers instead (deadpool-postgres, which
// this replaced) costs two wake-ups between threads per statement: in one run of
// benches/server_load.rs, 8,900 authenticated GETs/s against 10,900 driven here, before
// the guard below. Statements are prepared once per connection and cached. A
// transaction's BEGIN travels in the same round trip as its first statement (as
// PostgreSQL's JDBC driver does), and so does a request's guard (the live-session check,
// [`Db::guarded`]). A read transaction whose first statement is a plain SELECT runs that
// statement by itself, beginning the transaction only if a second statement follows:
// under READ COMMITTED, PostgreSQL's default, every statement of a transaction reads its
// own snapshot anyway, so it reads the same rows either way. An authenticated GET that
// reads one row thus costs one round trip.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use tokio_postgres as pg;

/// Prepared statements kept per connection; past this the cache starts again (a query text
/// built with a varying number of placeholders cannot grow it without end).
const MAX_CACHED_STATEMENTS: usize = 512;

type Driver = pg::Connection<pg::Socket, pg::tls::NoTlsStream>;

/// One connection to PostgreSQL with what drives it.
struct PgConn {
    client: pg::Client,
    statements: std::collections::HashMap<String, pg::Statement>,
    wire: Wire,
}

/// What moves a connection's messages: its socket's driver and the runtime it is
/// registered with.
struct Wire {
    /// Reads and writes the socket; polled only while a statement of this connection runs.
    driver: Pin<Box<Driver>>,
    /// The connection failed or ended; the pool drops it.
    broken: bool,
    /// Dropped last: the socket is registered with its I/O driver.
    rt: tokio::runtime::Runtime,
}

impl PgConn {
    /// Connects; with a `timeout`, sets the session's `statement_timeout` and
    /// `lock_timeout` to it (after connecting rather than as startup options, which a
    /// connection pooler such as PgBouncer may refuse).
    fn open(config: &pg::Config, timeout: Option<Duration>) -> Result<PgConn, DbError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| DbError::Other(format!("cannot start PostgreSQL's driver: {e}")))?;
        let (client, driver) = rt
            .block_on(config.connect(pg::NoTls))
            .map_err(|e| DbError::Other(format!("{:#}", anyhow::Error::from(e))))?;
        let mut conn = PgConn {
            client,
            statements: Default::default(),
            wire: Wire {
                driver: Box::pin(driver),
                broken: false,
                rt,
            },
        };
        if let Some(timeout) = timeout {
            // PostgreSQL takes at most i32::MAX milliseconds (24 days); 0 would mean none.
            let ms = timeout.as_millis().clamp(1, i32::MAX as u128);
            // The lock timeout is no longer than the statement's: a statement that waits
            // for a lock stops at the same moment, with an error that says so.
            let set = format!("SET statement_timeout = {ms}; SET lock_timeout = {ms}");
            let PgConn { client, wire, .. } = &mut conn;
            wire.drive(client.batch_execute(&set))?;
        }
        Ok(conn)
    }
}

impl Wire {
    /// Whether the connection is still open, learnt without a round trip: what came in on
    /// the socket while it sat in the pool is read (a server that restarted, or ended it,
    /// said so and closed it), without waiting for more.
    fn open(&mut self) -> bool {
        if self.broken {
            return false;
        }
        let Wire { driver, broken, rt } = self;
        let ended = rt.block_on(async {
            // One turn of the runtime's I/O driver, which does not wait, so that what
            // arrived meanwhile is seen.
            tokio::task::yield_now().await;
            std::future::poll_fn(|cx| Poll::Ready(driver.as_mut().poll(cx).is_ready())).await
        });
        *broken |= ended;
        !ended
    }

    /// Runs `work` (a statement of this connection's client) to its end on this thread,
    /// driving the socket meanwhile.
    fn drive<T>(&mut self, work: impl Future<Output = Result<T, pg::Error>>) -> Result<T, DbError> {
        if self.broken {
            return Err(DbError::Lost("PostgreSQL: the connection has ended".into()));
        }
        let Wire { driver, broken, rt } = self;
        let mut work = std::pin::pin!(work);
        let out = rt.block_on(std::future::poll_fn(|cx| {
            if let Poll::Ready(r) = work.as_mut().poll(cx) {
                return Poll::Ready(r.map_err(pg_err));
            }
            let ended = match driver.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) => {
                    DbError::Lost("PostgreSQL: the server closed the connection".into())
                }
                Poll::Ready(Err(e)) => match pg_err(e) {
                    DbError::Other(m) => DbError::Lost(m),
                    e => e,
                },
            };
            *broken = true;
            // The answer may have come in with the end of the connection.
            Poll::Ready(match work.as_mut().poll(cx) {
                Poll::Ready(r) => r.map_err(pg_err),
                Poll::Pending => Err(ended),
            })
        }));
        // The server ended the session as it answered (a terminated backend answers the
        // statement under way with its reason, then closes).
        if matches!(out, Err(DbError::Lost(_))) {
            *broken = true;
        }
        out
    }
}

struct PgManager {
    config: pg::Config,
    /// Every pooled connection's `statement_timeout` and `lock_timeout`.
    timeout: Duration,
}

impl r2d2::ManageConnection for PgManager {
    type Connection = PgConn;
    type Error = DbError;

    fn connect(&self) -> Result<PgConn, DbError> {
        PgConn::open(&self.config, Some(self.timeout))
    }
    fn is_valid(&self, c: &mut PgConn) -> Result<(), DbError> {
        if c.wire.open() && !c.client.is_closed() {
            Ok(())
        } else {
            Err(DbError::Other(
                "PostgreSQL: the connection has ended".into(),
            ))
        }
    }
    fn has_broken(&self, c: &mut PgConn) -> bool {
        c.wire.broken || c.client.is_closed()
    }
}

struct Postgres {
    pool: r2d2::Pool<PgManager>,
    target: String,
    /// Where the pool connects, for a connection of its own outside it.
    config: pg::Config,
    /// The statement timeout of every connection but the index builder's.
    timeout: Duration,
}

impl Postgres {
    fn open(url: &str, pool_size: u32, timeout: Duration) -> anyhow::Result<Postgres> {
        let mut config: pg::Config = url
            .parse()
            .map_err(|e| anyhow::anyhow!("bad PostgreSQL URL: {e}"))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let target = format!(
            "{}/{}",
            config
                .get_hosts()
                .first()
                .map(|h| match h {
                    pg::config::Host::Tcp(h) => h.clone(),
                    pg::config::Host::Unix(p) => p.display().to_string(),
                })
                .unwrap_or_default(),
            config.get_dbname().unwrap_or("")
        );
        // Without TLS, as before: `sslmode=require` in the URL is refused, the default
        // (`prefer`) connects in the clear.
        let manager = PgManager {
            config: config.clone(),
            timeout,
        };
        // One connection first, so a wrong address or password is reported at once.
        let first = r2d2::ManageConnection::connect(&manager)
            .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL at {target}: {e}"))?;
        let pool = r2d2::Pool::builder()
            .max_size(pool_size.max(1))
            // A connection is checked before use without a round trip (`Wire::open`): one
            // the server ended while it sat idle (a restart) is replaced, not given to a
            // request to fail.
            .test_on_check_out(true)
            .connection_timeout(Duration::from_secs(10))
            .build_unchecked(manager);
        drop(first);
        Ok(Postgres {
            pool,
            target,
            config,
            timeout,
        })
    }
}

/// `?` placeholders as PostgreSQL's `$1, $2, …` (the queries hold no `?` in literals).
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    for (n, part) in sql.split('?').enumerate() {
        if n > 0 {
            // Written into `out` itself: no string per placeholder.
            let _ = std::fmt::Write::write_fmt(&mut out, format_args!("${n}"));
        }
        out.push_str(part);
    }
    out
}

/// A SELECT that takes no row locks: outside a transaction it reads what it would inside.
fn plain_select(sql: &str) -> bool {
    let head = sql.trim_start().get(..6).unwrap_or("");
    if !head.eq_ignore_ascii_case("select") {
        return false;
    }
    let upper = sql.to_ascii_uppercase();
    !["FOR UPDATE", "FOR SHARE", "FOR NO KEY", "FOR KEY SHARE"]
        .iter()
        .any(|l| upper.contains(l))
}

fn pg_err(e: pg::Error) -> DbError {
    use pg::error::SqlState;
    // The server's own words: the error's Display alone says only "db error".
    let words = match e.as_db_error() {
        Some(db) => format!("PostgreSQL: {}: {}", db.severity(), db.message()),
        None => format!("PostgreSQL: {e}"),
    };
    match e.code() {
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => DbError::Unique,
        // The database's disk (its data or its WAL) has no room: the statement wrote nothing.
        Some(c) if *c == SqlState::DISK_FULL => DbError::Full,
        // `statement_timeout` and `lock_timeout` (an administrator's pg_cancel_backend
        // reads the same: the statement was stopped, and may be tried again).
        Some(c) if *c == SqlState::QUERY_CANCELED || *c == SqlState::LOCK_NOT_AVAILABLE => {
            DbError::Timeout
        }
        // The server ended the session: shut down, restarted, or pg_terminate_backend.
        Some(c)
            if [
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
                SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT,
                SqlState::IDLE_SESSION_TIMEOUT,
            ]
            .contains(c) =>
        {
            DbError::Lost(words)
        }
        Some(_) => DbError::Other(words),
        // The socket failed or closed under the statement.
        None if e.is_closed()
            || std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>()) =>
        {
            DbError::Lost(words)
        }
        None => DbError::Other(words),
    }
}

impl pg::types::ToSql for Val {
    fn to_sql(
        &self,
        ty: &pg::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<pg::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use pg::types::Type;
        match self {
            Val::Null => Ok(pg::types::IsNull::Yes),
            Val::Int(v) if *ty == Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
            Val::Int(v) => v.to_sql(ty, out),
            Val::Text(v) => v.to_sql(ty, out),
            Val::Bytes(v) => v.to_sql(ty, out),
        }
    }
    fn accepts(_: &pg::types::Type) -> bool {
        true
    }
    pg::types::to_sql_checked!();
}

fn pg_row(r: &pg::Row) -> Result<Row, DbError> {
    use pg::types::Type;
    let mut row = Vec::with_capacity(r.len());
    for (i, col) in r.columns().iter().enumerate() {
        let t = col.type_();
        let v = if *t == Type::INT8 {
            r.try_get::<_, Option<i64>>(i).map(|v| v.map(Val::Int))
        } else if *t == Type::INT4 {
            r.try_get::<_, Option<i32>>(i)
                .map(|v| v.map(|v| Val::Int(v.into())))
        } else if *t == Type::INT2 {
            r.try_get::<_, Option<i16>>(i)
                .map(|v| v.map(|v| Val::Int(v.into())))
        } else if *t == Type::BOOL {
            r.try_get::<_, Option<bool>>(i)
                .map(|v| v.map(|v| Val::Int(v.into())))
        } else if *t == Type::BYTEA {
            r.try_get::<_, Option<Vec<u8>>>(i)
                .map(|v| v.map(Val::Bytes))
        } else if *t == Type::VOID {
            Ok(None)
        } else {
            r.try_get::<_, Option<String>>(i).map(|v| v.map(Val::Text))
        };
        row.push(v.map_err(pg_err)?.unwrap_or(Val::Null));
    }
    Ok(Row(row))
}

/// The connection a transaction runs on.
enum Held {
    /// From the pool, and back to it after.
    Pooled(r2d2::PooledConnection<PgManager>),
    /// Opened for a transaction run again after its connection ended: the pool's other
    /// connections may be ending too (PostgreSQL restarted), before they can tell. Closed
    /// after.
    Fresh(PgConn),
}

impl std::ops::Deref for Held {
    type Target = PgConn;
    fn deref(&self) -> &PgConn {
        match self {
            Held::Pooled(c) => c,
            Held::Fresh(c) => c,
        }
    }
}

impl std::ops::DerefMut for Held {
    fn deref_mut(&mut self) -> &mut PgConn {
        match self {
            Held::Pooled(c) => c,
            Held::Fresh(c) => c,
        }
    }
}

/// One transaction on a pooled connection, held until it ends.
struct PgTx<'a, 'g> {
    conn: Option<Held>,
    /// The request's guard, sent with the first statement.
    guard: Option<&'a mut Carried<'g>>,
    write: bool,
    statements: usize,
    /// BEGIN has been sent.
    begun: bool,
    /// A statement failed after BEGIN, so PostgreSQL has aborted the transaction.
    failed: bool,
}

fn pg_params(params: &[Val]) -> Vec<&(dyn pg::types::ToSql + Sync)> {
    params
        .iter()
        .map(|p| p as &(dyn pg::types::ToSql + Sync))
        .collect()
}

/// What a statement gave back.
enum Out {
    Rows(Vec<pg::Row>),
    Count(u64),
}

impl PgTx<'_, '_> {
    fn run(&mut self, sql: &str, params: &[Val], rows: bool) -> Result<Out, DbError> {
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| DbError::Other("PostgreSQL: the transaction has ended".into()))?;
        // Once the guard has refused, nothing more of the transaction runs: a body that
        // swallowed the refusal must neither see rows nor leave writes behind (a refused
        // plain SELECT ran without BEGIN, so a later write would begin and commit).
        if self
            .guard
            .as_deref()
            .is_some_and(|c| c.found == Some(false))
        {
            return Err(DbError::Other("PostgreSQL: the request was refused".into()));
        }
        let sql = numbered(sql);
        let alone = !self.write && self.statements == 0 && rows && plain_select(&sql);
        let begin = !self.begun && !alone;
        self.statements += 1;
        if begin {
            self.begun = true;
        }
        let guard = self
            .guard
            .as_deref()
            .filter(|c| c.found.is_none())
            .map(|c| (numbered(c.guard.sql), &c.guard.params));
        let PgConn {
            client,
            statements,
            wire,
        } = &mut **conn;
        let client = &*client;
        let statement = |sql: &str| {
            let cached = statements.get(sql).cloned();
            let sql = sql.to_string();
            async move {
                match cached {
                    Some(st) => Ok(st),
                    None => client.prepare(&sql).await,
                }
            }
        };
        let (mine, theirs) = (pg_params(params), guard.as_ref().map(|g| pg_params(g.1)));
        let guard_statement = async {
            match &guard {
                Some((sql, _)) => statement(sql).await.map(Some),
                None => Ok::<_, pg::Error>(None),
            }
        };
        // Both statements are prepared (at once, when either is new) before either runs,
        // so that the guard's query is always sent before the statement's: run first, a
        // statement that ends the session (a logout) would have its own guard refuse it.
        let statements_then_queries = async {
            let (gst, st) = futures_util::future::join(guard_statement, statement(&sql)).await;
            let (gst, st) = (gst?, st?);
            let check = async {
                match (gst, &theirs) {
                    (Some(gst), Some(params)) => {
                        let found = !client.query(&gst, params).await?.is_empty();
                        Ok(Some((gst, found)))
                    }
                    _ => Ok::<_, pg::Error>(None),
                }
            };
            let work = async {
                let out = if rows {
                    client.query(&st, &mine).await.map(Out::Rows)
                } else {
                    client.execute(&st, &mine).await.map(Out::Count)
                };
                Ok::<_, pg::Error>((st.clone(), out?))
            };
            let (checked, out) = futures_util::future::join(check, work).await;
            Ok::<_, pg::Error>((checked, out))
        };
        // BEGIN, the guard and the statement are written to the connection in that order
        // on their first poll (after a preparation when one is new), so all travel in one
        // round trip.
        let (began, prepared) = wire.drive(async {
            let began = async {
                if begin {
                    client.batch_execute("BEGIN").await
                } else {
                    Ok(())
                }
            };
            Ok(futures_util::future::join(began, statements_then_queries).await)
        })?;
        // A statement that could not be prepared ran nothing, the guard included.
        let (checked, out) = match prepared {
            Ok((checked, out)) => (checked, out),
            Err(e) => (Ok(None), Err(e)),
        };
        let checked = match (checked, &guard) {
            (Ok(checked), _) => checked,
            // Prepared again next time, should it have gone stale (see below).
            (Err(_), Some((sql, _))) => {
                statements.remove(sql);
                None
            }
            (Err(_), None) => None,
        };
        let mut refused = false;
        if let (Some((st, found)), Some((sql, _))) = (checked, guard) {
            statements.entry(sql).or_insert(st);
            refused = !found;
            if let Some(c) = self.guard.as_deref_mut() {
                c.found = Some(found);
            }
        }
        let out = began.map_err(pg_err).and_then(|()| out.map_err(pg_err));
        match out {
            Ok(_) if refused => {
                self.failed = self.begun;
                Err(DbError::Other("PostgreSQL: the request was refused".into()))
            }
            Ok((st, out)) => {
                if statements.len() >= MAX_CACHED_STATEMENTS {
                    statements.clear();
                }
                statements.entry(sql).or_insert(st);
                Ok(out)
            }
            Err(e) => {
                if self.begun {
                    self.failed = true;
                }
                // The session ended under the statement (its answer was the reason): the
                // connection is done with, whether or not its driver has seen it close.
                if matches!(e, DbError::Lost(_)) {
                    wire.broken = true;
                }
                // A prepared statement can go stale for good (its table's columns changed
                // under it: "cached plan must not change result type"): after a failure
                // other than a unique violation it is prepared again next time.
                if !matches!(e, DbError::Unique) {
                    statements.remove(&sql);
                }
                Err(e)
            }
        }
    }

    /// Commits (or rolls back) and gives the connection back to the pool; one that cannot
    /// end its transaction is closed instead.
    fn finish(mut self, commit: bool) -> Result<(), DbError> {
        let Some(mut conn) = self.conn.take() else {
            return Ok(());
        };
        if !self.begun {
            return Ok(());
        }
        let end = if commit && !self.failed {
            "COMMIT"
        } else {
            "ROLLBACK"
        };
        let PgConn { client, wire, .. } = &mut *conn;
        if let Err(e) = wire.drive(client.batch_execute(end)) {
            wire.broken = true;
            return Err(e);
        }
        if commit && self.failed {
            return Err(DbError::Other(
                "PostgreSQL: a statement failed, so the transaction was rolled back".into(),
            ));
        }
        Ok(())
    }
}

impl PgTx<'_, '_> {
    /// Whether the connection ended before this transaction's COMMIT was sent. With
    /// `commit` (it is about to be sent), what came in on the socket is read first, without
    /// a round trip: a session ended while the body worked has said so by then.
    fn lost(&mut self, commit: bool) -> bool {
        let Some(conn) = self.conn.as_mut() else {
            return false;
        };
        let PgConn { client, wire, .. } = &mut **conn;
        wire.broken || client.is_closed() || (commit && !wire.open())
    }
}

impl Drop for PgTx<'_, '_> {
    fn drop(&mut self) {
        // Left inside a transaction (its body panicked): the connection is closed rather
        // than handed to the next request mid-transaction.
        if let Some(mut conn) = self.conn.take().filter(|_| self.begun) {
            conn.wire.broken = true;
        }
    }
}

impl Conn for PgTx<'_, '_> {
    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>, DbError> {
        match self.run(sql, params, true)? {
            Out::Rows(rows) => rows.iter().map(pg_row).collect(),
            Out::Count(_) => Ok(Vec::new()),
        }
    }
    fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64, DbError> {
        match self.run(sql, params, false)? {
            Out::Count(n) => Ok(n),
            Out::Rows(rows) => Ok(rows.len() as u64),
        }
    }
}

impl Backend for Postgres {
    /// A transaction whose connection ends before its COMMIT is sent (PostgreSQL
    /// restarted, or an administrator ended the session) is run once more on a fresh
    /// connection: PostgreSQL rolled it back, so nothing of it is done twice. One whose
    /// connection ends as its COMMIT is sent is answered 503 saying so: it may have been
    /// committed, and running it again could do it twice.
    fn transaction(
        &self,
        write: bool,
        mut guard: Option<&mut Carried<'_>>,
        f: TxFn<'_>,
    ) -> Result<(), ApiError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let conn = if tries == 1 {
                Held::Pooled(self.pool.get().map_err(no_connection)?)
            } else {
                let timeout = Some(self.timeout);
                Held::Fresh(PgConn::open(&self.config, timeout).map_err(|e| {
                    super::log_line(serde_json::json!({
                        "level": "warn",
                        "msg": "cannot connect to the database again",
                        "error": e.to_string(),
                    }));
                    ApiError::unavailable(LOST).retry(1)
                })?)
            };
            let mut tx = PgTx {
                conn: Some(conn),
                guard: guard.as_deref_mut(),
                write,
                statements: 0,
                begun: false,
                failed: false,
            };
            let out = f(&mut tx);
            let commit = out.is_ok() && tx.begun && !tx.failed;
            let refused = tx.guard.as_deref().is_some_and(|c| c.found == Some(false));
            if !refused && tx.lost(commit) {
                drop(tx);
                let again = tries < 2;
                super::log_line(serde_json::json!({
                    "level": "warn",
                    "msg": "the connection to the database was lost",
                    "again": again,
                }));
                if again {
                    continue;
                }
                return Err(ApiError::unavailable(LOST).retry(1));
            }
            return match out {
                Ok(()) => match tx.finish(true) {
                    Err(DbError::Lost(m)) if commit => {
                        super::log_line(serde_json::json!({
                            "level": "error",
                            "msg": "the connection to the database was lost at a commit",
                            "error": m,
                        }));
                        Err(ApiError::unavailable(LOST_AT_COMMIT))
                    }
                    done => Ok(done?),
                },
                Err(e) => {
                    let _ = tx.finish(false);
                    Err(e)
                }
            };
        }
    }
    fn build_indexes(&self) -> Result<(), DbError> {
        // On a connection of its own: without the pool's statement timeout (a build on a
        // large table takes long), and the builder's lock ends with it.
        let mut conn = PgConn::open(&self.config, None)?;
        let PgConn { client, wire, .. } = &mut conn;
        let mut locked = false;
        for (name, create) in CONCURRENT_INDEXES {
            // Some(valid) when the index exists (a build under way is not valid yet).
            let state = |wire: &mut Wire| -> Result<Option<bool>, DbError> {
                let sql = format!(
                    "SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass('{name}')"
                );
                Ok(wire
                    .drive(client.query_opt(&sql, &[]))?
                    .map(|r| r.get::<_, bool>(0)))
            };
            if state(wire)? == Some(true) {
                continue;
            }
            if !locked {
                let lock = format!("SELECT pg_try_advisory_lock({INDEX_BUILDER_LOCK})");
                locked = wire.drive(client.query_one(&lock, &[]))?.get::<_, bool>(0);
                if !locked {
                    // Another server builds them.
                    return Ok(());
                }
            }
            match state(wire)? {
                Some(true) => continue,
                Some(false) => {
                    let drop = format!("DROP INDEX CONCURRENTLY IF EXISTS {name}");
                    wire.drive(client.batch_execute(&drop))?;
                }
                None => {}
            }
            wire.drive(client.batch_execute(create))?;
        }
        Ok(())
    }
    fn describe(&self) -> String {
        format!("PostgreSQL {}", self.target)
    }
    fn pool_use(&self) -> PoolUse {
        pool_use(&self.pool)
    }
}

/// What the server's unit tests share: a database and an account in it.
#[cfg(test)]
pub(super) mod testing {
    use super::{Conn, Db, DbError};

    /// A fresh SQLite database in a temporary directory, which it lives as long as.
    pub fn sqlite(pool: u32) -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(
            &format!("sqlite:{}", dir.path().join("s.db").display()),
            pool,
        );
        (dir, db.unwrap())
    }

    /// Adds an account named `name` (its email `name@x.io`); the first one has id 1.
    pub fn add_user(c: &mut dyn Conn, name: &str) -> Result<u64, DbError> {
        c.exec(
            "INSERT INTO users (username, username_key, email, password_hash, created_at, \
             updated_at) VALUES (?, ?, ?, 'h', 't', 't')",
            &[name.into(), name.into(), format!("{name}@x.io").into()],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{add_user, sqlite};
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres() {
        assert_eq!(
            numbered("SELECT a FROM t WHERE b = ? AND c IN (?, ?)"),
            "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)"
        );
    }

    /// The PostgreSQL database `.ci/run` names in `var`.
    fn postgres(var: &str, pool: u32) -> Db {
        let url = std::env::var(var).unwrap_or_else(|_| panic!("{var} names no database"));
        Db::open(&url, pool).unwrap()
    }

    /// What [`Db::guarded`] must hold on either backend: behind a guard that finds its row,
    /// the work is done; behind one that finds none, nothing of it is committed or seen.
    fn guards_hold(db: &Db) {
        let key = format!("guard{}_{}", std::process::id(), fastrand::u32(..));
        let guard = |name: &str| Guard {
            sql: "SELECT id FROM users WHERE username_key = ?",
            params: vec![name.into()],
            refusal: "no such user",
        };
        let add = |c: &mut dyn Conn, name: &str| -> Result<(), ApiError> {
            add_user(c, name)?;
            Ok(())
        };
        let exists = |name: &str| {
            db.read(|c| {
                Ok(
                    c.one("SELECT 1 FROM users WHERE username_key = ?", &[name.into()])?
                        .is_some(),
                )
            })
            .unwrap()
        };
        let (me, a, b, c) = (
            format!("{key}me"),
            format!("{key}a"),
            format!("{key}b"),
            format!("{key}c"),
        );
        db.write(|c| add(c, &me)).unwrap();
        // Found: the work is done, across several transactions.
        let got = db.guarded(guard(&me), || {
            db.write(|c| add(c, &a))?;
            db.read(|c| Ok(c.one("SELECT 7", &[])?.unwrap().int(0)))
        });
        assert_eq!(got.unwrap(), 7);
        assert!(exists(&a));
        // Not found: the first transaction's write is rolled back, its reads are not seen,
        // later transactions are refused, and a body that swallows the refusal still gets
        // it as the answer.
        let mut seen = Vec::new();
        let got = db.guarded(guard(&format!("{key}nobody")), || {
            let first = db.write(|c| {
                add(c, &b)?;
                Ok(())
            });
            seen.push(first.map_err(|e| e.status));
            let second = db.read(|c| Ok(c.one("SELECT 7", &[])?.unwrap().int(0)));
            seen.push(second.map(|_| ()).map_err(|e| e.status));
            Ok("done anyway")
        });
        let e = got.unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::UNAUTHORIZED);
        assert_eq!(e.message, "no such user");
        assert_eq!(
            seen,
            [
                Err(axum::http::StatusCode::UNAUTHORIZED),
                Err(axum::http::StatusCode::UNAUTHORIZED)
            ]
        );
        assert!(!exists(&b));
        // A read that would run by itself: its rows never reach the body.
        let got = db.guarded(guard(&format!("{key}nobody")), || {
            db.read(|c| Ok(c.one("SELECT 7", &[])?.map(|r| r.int(0))))
        });
        assert_eq!(
            got.unwrap_err().status,
            axum::http::StatusCode::UNAUTHORIZED
        );
        // A body with no transaction: the guard runs by itself afterwards.
        assert!(db.guarded(guard(&me), || Ok(())).is_ok());
        let e = db
            .guarded(guard(&format!("{key}nobody")), || {
                Err::<(), _>(ApiError::bad("bad input"))
            })
            .unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::UNAUTHORIZED);
        // A body that swallows the refusal of its first statement (a plain SELECT, which
        // PostgreSQL runs without BEGIN) and goes on: nothing it does after is seen or
        // committed.
        let d = format!("{key}d");
        let mut after = Vec::new();
        let got = db.guarded(guard(&format!("{key}nobody")), || {
            db.read(|c| {
                let _ = c.query("SELECT 1", &[]);
                after.push(c.query("SELECT 7", &[]).map(|r| r.len()).ok());
                let _ = add(c, &d);
                Ok(())
            })
        });
        assert_eq!(
            got.unwrap_err().status,
            axum::http::StatusCode::UNAUTHORIZED
        );
        assert!(
            !exists(&d),
            "a write after a swallowed refusal was committed"
        );
        assert!(
            after.iter().all(|n| n.unwrap_or(0) == 0),
            "rows after a refusal reached the body: {after:?}"
        );
        // The same in a transaction that begins at once (its first statement writes).
        let mut after = Vec::new();
        let got = db.guarded(guard(&format!("{key}nobody")), || {
            db.write(|c| {
                let _ = add(c, &d);
                after.push(c.query("SELECT 7", &[]).map(|r| r.len()).ok());
                Ok(())
            })
        });
        assert_eq!(
            got.unwrap_err().status,
            axum::http::StatusCode::UNAUTHORIZED
        );
        assert!(!exists(&d));
        assert!(
            after.iter().all(|n| n.unwrap_or(0) == 0),
            "rows after a refusal reached the body: {after:?}"
        );
        // A transaction opened inside the first one, before the guard has answered, does
        // not escape it: it is refused, and nothing of it is committed.
        let e = db.guarded(guard(&format!("{key}nobody")), || {
            db.write(|_| {
                let _ = db.write(|c| add(c, &d));
                Ok(())
            })
        });
        assert_eq!(e.unwrap_err().status, axum::http::StatusCode::UNAUTHORIZED);
        assert!(!exists(&d), "a nested transaction escaped the guard");
        // A unique violation in the same round trip as a refusing guard: the answer is the
        // refusal, not the conflict (which would tell that the row exists).
        let e = db
            .guarded(guard(&format!("{key}nobody")), || db.write(|c| add(c, &me)))
            .unwrap_err();
        assert_eq!(
            e.status,
            axum::http::StatusCode::UNAUTHORIZED,
            "{}",
            e.message
        );
        // After a refused body, the thread carries no guard: outside one, work is done.
        db.write(|conn| add(conn, &c)).unwrap();
        assert!(exists(&c));
        db.write(|c| {
            Ok(c.exec(
                "DELETE FROM users WHERE username_key LIKE ?",
                &[format!("{key}%").into()],
            )?)
        })
        .unwrap();
    }

    #[test]
    #[ignore = "needs PostgreSQL: run by .ci/run with VALYXO_TEST_POSTGRES_SOCKET"]
    fn postgres_through_its_unix_socket() {
        let db = postgres("VALYXO_TEST_POSTGRES_SOCKET", 2);
        assert!(
            db.describe().starts_with("PostgreSQL /"),
            "{}",
            db.describe()
        );
        guards_hold(&db);
    }

    /// A guard runs before the statement it travels with, even when that statement is
    /// prepared already and the guard's is not: a logout (which revokes the very session
    /// its guard checks) must not be refused by its own write. `db` has one connection.
    fn guard_runs_before_its_statement(db: &Db) {
        let key = format!("order{}_{}", std::process::id(), fastrand::u32(..));
        let revoke = "UPDATE sessions SET revoked = 1 WHERE jti = ?";
        db.write(|c| {
            add_user(c, &key)?;
            c.exec(
                "INSERT INTO sessions (jti, user_id, expires_at) \
                 SELECT ?, id, 4000000000 FROM users WHERE username_key = ?",
                &[key.clone().into(), key.clone().into()],
            )?;
            // The revoking statement is now prepared on the connection, the guard's not.
            c.exec(revoke, &[format!("{key}-none").into()])?;
            Ok(())
        })
        .unwrap();
        let guard = Guard {
            sql: "SELECT jti FROM sessions WHERE jti = ? AND revoked = 0 AND 'order' = 'order'",
            params: vec![key.clone().into()],
            refusal: "ended",
        };
        let got = db.guarded(guard, || {
            db.write(|c| Ok(c.exec(revoke, &[key.clone().into()])?))
        });
        assert_eq!(got.map_err(|e| e.message).unwrap(), 1);
        let revoked = db
            .read(|c| {
                Ok(c.one(
                    "SELECT revoked FROM sessions WHERE jti = ?",
                    &[key.clone().into()],
                )?
                .unwrap()
                .int(0))
            })
            .unwrap();
        assert_eq!(revoked, 1);
        forget_user(db, &key);
    }

    /// Deletes the test's user `key` (and, by cascade, what it made).
    fn forget_user(db: &Db, key: &str) {
        db.write(|c| Ok(c.exec("DELETE FROM users WHERE username_key = ?", &[key.into()])?))
            .unwrap();
    }

    #[test]
    fn sqlite_guard_runs_before_its_statement() {
        guard_runs_before_its_statement(&sqlite(1).1);
    }

    #[test]
    #[ignore = "needs PostgreSQL: run by .ci/run with VALYXO_TEST_POSTGRES"]
    fn postgres_guard_runs_before_its_statement() {
        guard_runs_before_its_statement(&postgres("VALYXO_TEST_POSTGRES", 1));
    }

    #[test]
    #[ignore = "needs PostgreSQL: run by .ci/run with VALYXO_TEST_POSTGRES"]
    fn a_postgres_statement_whose_plan_went_stale_fails_once() {
        let db = postgres("VALYXO_TEST_POSTGRES", 1);
        let table = format!("plan{}_{}", std::process::id(), fastrand::u32(..));
        let select = format!("SELECT * FROM {table}");
        db.write(|c| Ok(c.exec(&format!("CREATE TABLE {table} (a BIGINT)"), &[])?))
            .unwrap();
        db.read(|c| Ok(c.query(&select, &[])?)).unwrap();
        // The schema changes under the prepared statement (another server's migration):
        // its result type is not the one it was prepared with.
        db.write(|c| Ok(c.exec(&format!("ALTER TABLE {table} ADD COLUMN b TEXT"), &[])?))
            .unwrap();
        let outcomes: Vec<_> = (0..3)
            .map(|_| {
                db.read(|c| Ok(c.query(&select, &[])?.len()))
                    .map_err(|e| e.message)
            })
            .collect();
        db.write(|c| Ok(c.exec(&format!("DROP TABLE {table}"), &[])?))
            .unwrap();
        assert!(outcomes[1..].iter().all(Result::is_ok), "{outcomes:?}");
    }

    #[test]
    fn sqlite_guards_hold() {
        guards_hold(&sqlite(2).1);
    }

    #[test]
    #[ignore = "needs PostgreSQL: run by .ci/run with VALYXO_TEST_POSTGRES"]
    fn postgres_guards_hold() {
        guards_hold(&postgres("VALYXO_TEST_POSTGRES", 2));
    }

    #[test]
    fn sqlite_schema_applies_once_and_reports_unique_violations() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("s.db").display());
        let db = Db::open(&url, 2).unwrap();
        drop(db);
        let db = Db::open(&url, 2).unwrap();
        let insert = |c: &mut dyn Conn| {
            c.exec(
                "INSERT INTO users (username, username_key, email, password_hash, created_at, \
                 updated_at) VALUES ('A', 'a', 'a@x.io', 'h', 't', 't')",
                &[],
            )
            .map_err(ApiError::from)
        };
        db.write(insert).unwrap();
        let e = db.write(insert).unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::CONFLICT);
        // A failed transaction leaves nothing behind.
        let n = db
            .read(|c| Ok(c.one("SELECT count(*) FROM users", &[])?.unwrap().int(0)))
            .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn a_sqlite_write_waiting_past_the_statement_timeout_is_answered_503() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let url = format!("sqlite:{}", path.display());
        let db = Db::open_with(&url, 1, Duration::from_millis(100)).unwrap();
        // Another process writes and does not let go.
        let other = rusqlite::Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let e = db.write(|c| Ok(add_user(c, "late")?)).unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.message, TOO_LONG);
        other.execute_batch("ROLLBACK").unwrap();
        assert_eq!(db.write(|c| Ok(add_user(c, "late")?)).unwrap(), 1);
    }

    #[test]
    fn only_plain_selects_run_without_a_transaction() {
        assert!(plain_select("  select a FROM t WHERE b = $1"));
        for sql in [
            "SELECT a FROM t FOR UPDATE",
            "select a from t for share",
            "INSERT INTO t (a) VALUES ($1) RETURNING a",
            "WITH x AS (DELETE FROM t RETURNING a) SELECT a FROM x",
            "SEL",
        ] {
            assert!(!plain_select(sql), "{sql}");
        }
    }

    #[test]
    #[ignore = "needs PostgreSQL: run by .ci/run with VALYXO_TEST_POSTGRES"]
    fn postgres_transactions_commit_roll_back_and_report_unique_violations() {
        // Opened outside a runtime (the backend runs one of its own), twice: the schema
        // is brought up to date once.
        drop(postgres("VALYXO_TEST_POSTGRES", 2));
        let db = postgres("VALYXO_TEST_POSTGRES", 2);
        assert!(
            db.describe().starts_with("PostgreSQL "),
            "{}",
            db.describe()
        );
        let key = format!("pgtest{}_{}", std::process::id(), fastrand::u32(..));
        let count = |db: &Db| {
            db.read(|c| {
                Ok(c.one(
                    "SELECT count(*) FROM users WHERE username_key LIKE ?",
                    &[format!("{key}%").into()],
                )?
                .unwrap()
                .int(0))
            })
            .unwrap()
        };
        let insert = |c: &mut dyn Conn, suffix: &str| {
            c.exec(
                "INSERT INTO users (username, username_key, email, password_hash, created_at, \
                 updated_at) VALUES (?, ?, ?, 'h', 't', 't')",
                &[
                    key.clone().into(),
                    format!("{key}{suffix}").into(),
                    format!("{key}{suffix}@x.io").into(),
                ],
            )
            .map_err(ApiError::from)
        };
        db.write(|c| insert(c, "")).unwrap();
        // A unique violation is a conflict, and takes its transaction's other rows along.
        let e = db
            .write(|c| {
                insert(c, "-other")?;
                insert(c, "")
            })
            .unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::CONFLICT);
        assert_eq!(count(&db), 1);
        // A body that fails after writing leaves nothing behind.
        let e = db
            .write(|c| {
                insert(c, "-2")?;
                Err::<(), _>(ApiError::bad("changed my mind"))
            })
            .unwrap_err();
        assert_eq!(e.message, "changed my mind");
        assert_eq!(count(&db), 1);
        // A failed statement whose error the body swallowed does not pass for a commit.
        let e = db
            .write(|c| {
                insert(c, "-3")?;
                let _ = insert(c, "");
                Ok(())
            })
            .unwrap_err();
        assert!(e.message.contains("rolled back"), "{}", e.message);
        assert_eq!(count(&db), 1);
        // A read that starts with a plain SELECT (run by itself) and then writes: the writes
        // are one transaction, rolled back when the body fails.
        let e = db
            .read(|c| {
                c.query("SELECT 1", &[])?;
                insert(c, "-4")?;
                Err::<(), _>(ApiError::bad("no"))
            })
            .unwrap_err();
        assert_eq!(e.message, "no");
        assert_eq!(count(&db), 1);
        db.read(|c| {
            c.query("SELECT 1", &[])?;
            insert(c, "-5")
        })
        .unwrap();
        assert_eq!(count(&db), 2);
        // Integers, text, bytes and NULL go in and come back.
        let row = db
            .read(|c| {
                Ok(c.one(
                    "SELECT CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS BYTEA), \
                     CAST(? AS TEXT), CAST(? AS INTEGER)",
                    &[
                        Val::Int(-7),
                        "é".into(),
                        Val::Bytes(vec![0, 255]),
                        Val::Null,
                        Val::Int(42),
                    ],
                )?
                .unwrap())
            })
            .unwrap();
        assert_eq!(
            row.0,
            [
                Val::Int(-7),
                Val::Text("é".into()),
                Val::Bytes(vec![0, 255]),
                Val::Null,
                Val::Int(42)
            ]
        );
        db.write(|c| {
            Ok(c.exec(
                "DELETE FROM users WHERE username_key LIKE ?",
                &[format!("{key}%").into()],
            )?)
        })
        .unwrap();
    }

    #[test]
    #[ignore = "needs PostgreSQL: run by .ci/run with VALYXO_TEST_POSTGRES"]
    fn a_postgres_connection_killed_in_the_pool_is_replaced_before_use() {
        let db = postgres("VALYXO_TEST_POSTGRES", 1);
        let pid = |db: &Db| db.read(|c| Ok(c.one("SELECT pg_backend_pid()", &[])?.unwrap().int(0)));
        let first = pid(&db).unwrap();
        assert_eq!(pid(&db).unwrap(), first, "one pooled connection, reused");
        // Killed from outside while idle in the pool, as a restart or an administrator
        // would; the kill is done once the server no longer lists the process.
        let other = postgres("VALYXO_TEST_POSTGRES", 1);
        let kill = |victim: i64| {
            other
                .read(|c| Ok(c.query("SELECT pg_terminate_backend(?)", &[Val::Int(victim)])?))
                .unwrap();
            let gone = std::time::Instant::now() + Duration::from_secs(10);
            while other
                .read(|c| {
                    Ok(c.one(
                        "SELECT 1 FROM pg_stat_activity WHERE pid = ?",
                        &[Val::Int(victim)],
                    )?
                    .is_some())
                })
                .unwrap()
            {
                assert!(std::time::Instant::now() < gone, "{victim} lingers");
                std::thread::sleep(Duration::from_millis(10));
            }
        };
        kill(first);
        // No call fails: the pool sees the connection ended and opens another.
        let now = pid(&db).unwrap();
        assert_ne!(now, first);
        // Killed in the middle of a transaction, before its COMMIT: PostgreSQL rolled it
        // back, so it is run once more, on a new connection, and its write is done once.
        let key = format!("killed{}_{}", std::process::id(), fastrand::u32(..));
        let mut pids = Vec::new();
        db.write(|c| {
            let pid = c.one("SELECT pg_backend_pid()", &[])?.unwrap().int(0);
            pids.push(pid);
            add_user(c, &key)?;
            if pids.len() == 1 {
                kill(pid);
            }
            Ok(c.query("SELECT 2", &[])?)
        })
        .unwrap();
        assert_eq!(pids.len(), 2, "{pids:?}");
        assert!(pids[0] == now && pids[1] != now, "{pids:?}");
        let users = |db: &Db| {
            db.read(|c| {
                Ok(c.one(
                    "SELECT count(*) FROM users WHERE username_key = ?",
                    &[key.clone().into()],
                )?
                .unwrap()
                .int(0))
            })
            .unwrap()
        };
        assert_eq!(users(&db), 1);
        // Killed again on the second run: the answer says so in a user's words (503), and
        // nothing of it is left.
        let e = db
            .write(|c| {
                let pid = c.one("SELECT pg_backend_pid()", &[])?.unwrap().int(0);
                c.exec(
                    "DELETE FROM users WHERE username_key = ?",
                    &[key.clone().into()],
                )?;
                kill(pid);
                Ok(c.query("SELECT 2", &[])?)
            })
            .unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.message, LOST);
        assert_eq!(users(&db), 1);
        // The next call is served by a new connection.
        let last = pid(&db).unwrap();
        assert!(!pids.contains(&last) && last != first);
        forget_user(&db, &key);
    }

    #[test]
    #[ignore = "needs PostgreSQL: run by .ci/run with VALYXO_TEST_POSTGRES"]
    fn a_postgres_statement_past_its_timeout_is_answered_503() {
        let url = std::env::var("VALYXO_TEST_POSTGRES").unwrap();
        let db = Db::open_with(&url, 1, Duration::from_millis(200)).unwrap();
        let e = db
            .read(|c| Ok(c.query("SELECT pg_sleep(5)", &[])?))
            .unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.message, TOO_LONG);
        // The connection goes on serving.
        let n = db.read(|c| Ok(c.one("SELECT 7", &[])?.unwrap().int(0)));
        assert_eq!(n.unwrap(), 7);
    }

    #[test]
    #[ignore = "needs PostgreSQL: run by .ci/run with VALYXO_TEST_POSTGRES"]
    fn a_postgres_index_left_invalid_is_built_again() {
        // A schema of its own, so that the index can be broken without touching others'.
        let url = std::env::var("VALYXO_TEST_POSTGRES").unwrap();
        let schema = format!("tree{}_{}", std::process::id(), fastrand::u32(..));
        let base = postgres("VALYXO_TEST_POSTGRES", 1);
        base.write(|c| Ok(c.exec(&format!("CREATE SCHEMA {schema}"), &[])?))
            .unwrap();
        let sep = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{sep}options=-c%20search_path%3D{schema}");
        let index = |db: &Db| {
            db.read(|c| {
                Ok(c.one(
                    "SELECT i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i \
                     WHERE i.indexrelid = to_regclass('files_tree')",
                    &[],
                )?
                .map(|r| (r.int(0), r.text(1))))
            })
            .unwrap()
        };
        // A valid files_tree of the right definition, or why not.
        let built_right = |db: &Db, when: &str| {
            let built = index(db).unwrap_or_else(|| panic!("files_tree is built {when}"));
            assert_eq!(built.0, 1);
            assert!(
                built.1.contains("(project_id, path COLLATE \"C\")"),
                "{}",
                built.1
            );
        };
        let db = Db::open(&url, 1).unwrap();
        built_right(&db, "at start");
        // A build that failed half-way (here: a unique index on values that repeat) leaves
        // an invalid index of that name behind.
        let mut raw = PgConn::open(&url.parse().unwrap(), None).unwrap();
        let PgConn { client, wire, .. } = &mut raw;
        wire.drive(client.batch_execute(
            "DROP INDEX files_tree; \
             INSERT INTO users (username, username_key, email, password_hash, created_at, \
             updated_at) VALUES ('a', 'a', 'a@x.io', 'h', 't', 't'); \
             INSERT INTO projects (user_id, name, description, created_at, updated_at) \
             SELECT id, 'p', '', 't', 't' FROM users; \
             INSERT INTO files (project_id, path, size, version) \
             SELECT id, n, 1, 1 FROM projects, (VALUES ('a'), ('b')) v (n)",
        ))
        .unwrap();
        assert!(wire
            .drive(
                client.batch_execute("CREATE UNIQUE INDEX CONCURRENTLY files_tree ON files (size)")
            )
            .is_err());
        assert_eq!(index(&db).map(|i| i.0), Some(0), "left invalid");
        drop(db);
        // The next start drops it and builds the right one, and the data is all there.
        let db = Db::open(&url, 1).unwrap();
        built_right(&db, "again");
        let files = db.read(|c| Ok(c.one("SELECT count(*) FROM files", &[])?.unwrap().int(0)));
        assert_eq!(files.unwrap(), 2);
        drop(db);
        wire.drive(client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")))
            .unwrap();
    }
}
