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

/// Errors of the storage layer that callers tell apart.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("a unique constraint failed")]
    Unique,
    #[error("{0}")]
    Other(String),
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> ApiError {
        match e {
            DbError::Unique => ApiError::conflict("Already exists"),
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

trait Backend: Send + Sync {
    /// Runs `f` in a transaction, committed when it returns Ok and rolled back otherwise.
    /// `write` says the transaction will write (SQLite then takes its write lock at once,
    /// so two writers wait for each other instead of failing).
    fn transaction(&self, write: bool, f: TxFn<'_>) -> Result<(), ApiError>;
    fn describe(&self) -> String;
}

/// The server's database.
pub struct Db {
    backend: Box<dyn Backend>,
}

impl Db {
    /// Opens `url`: `sqlite:PATH` (or a bare path) or `postgres://…`, and brings the schema
    /// up to date.
    pub fn open(url: &str, pool_size: u32) -> anyhow::Result<Db> {
        let backend: Box<dyn Backend> = match sqlite_path(url) {
            None => Box::new(Postgres::open(url, pool_size)?),
            Some(path) => Box::new(Sqlite::open(path, pool_size)?),
        };
        let db = Db { backend };
        db.migrate()
            .map_err(|e| anyhow::anyhow!("cannot set up the database: {}", e.message))?;
        Ok(db)
    }

    pub fn describe(&self) -> String {
        self.backend.describe()
    }

    fn run<T>(
        &self,
        write: bool,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut f = Some(f);
        let mut out = None;
        self.backend.transaction(write, &mut |c| {
            let f = f.take().expect("a transaction runs its body once");
            out = Some(f(c)?);
            Ok(())
        })?;
        Ok(out.expect("a committed transaction has a result"))
    }

    /// A read-only transaction.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        self.run(false, f)
    }

    /// A transaction that writes.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        self.run(true, f)
    }

    fn migrate(&self) -> Result<(), ApiError> {
        let postgres = self.backend.describe().starts_with("PostgreSQL");
        self.write(|c| {
            if postgres {
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

/// The file of a `sqlite:PATH` (or bare path) database URL; None for PostgreSQL.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return None;
    }
    let path = url.strip_prefix("sqlite:").unwrap_or(url);
    Some(PathBuf::from(path.strip_prefix("//").unwrap_or(path)))
}

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
/// Version 3: indexes in the order of each paginated list (`page.rs`), so that a page is
/// one index range read whatever the size of the list: an account's projects and a
/// project's scripts by (created_at, id), a script's executions by id. (A project's files
/// are paged on their primary key.) They replace the indexes on the owner alone.
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
    "
CREATE INDEX projects_page ON projects (user_id, created_at, id);
DROP INDEX projects_user;
CREATE INDEX scripts_page ON scripts (project_id, created_at, id);
DROP INDEX scripts_project;
CREATE INDEX executions_page ON executions (script_id, id);
DROP INDEX executions_script
",
];

// ---- SQLite ----

struct SqliteManager {
    path: PathBuf,
}

impl r2d2::ManageConnection for SqliteManager {
    type Connection = rusqlite::Connection;
    type Error = rusqlite::Error;

    fn connect(&self) -> Result<rusqlite::Connection, rusqlite::Error> {
        let c = rusqlite::Connection::open(&self.path)?;
        c.busy_timeout(Duration::from_secs(10))?;
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
    fn open(path: PathBuf, pool_size: u32) -> anyhow::Result<Sqlite> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        }
        let manager = SqliteManager { path: path.clone() };
        // One connection first, so a damaged file is reported at once rather than after
        // the pool's wait.
        r2d2::ManageConnection::connect(&manager)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
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
    fn transaction(&self, write: bool, f: TxFn<'_>) -> Result<(), ApiError> {
        let mut c = self
            .pool
            .get()
            .map_err(|e| ApiError::unavailable(format!("database busy: {e}")))?;
        let behaviour = if write {
            rusqlite::TransactionBehavior::Immediate
        } else {
            rusqlite::TransactionBehavior::Deferred
        };
        let mut tx = c.transaction_with_behavior(behaviour).map_err(sqlite_err)?;
        f(&mut tx)?;
        tx.commit().map_err(sqlite_err)?;
        Ok(())
    }
    fn describe(&self) -> String {
        format!("SQLite {}", self.path.display())
    }
}

// ---- PostgreSQL ----

struct Postgres {
    pool: r2d2::Pool<r2d2_postgres::PostgresConnectionManager<postgres::NoTls>>,
    target: String,
}

impl Postgres {
    fn open(url: &str, pool_size: u32) -> anyhow::Result<Postgres> {
        let config: postgres::Config = url
            .parse()
            .map_err(|e| anyhow::anyhow!("bad PostgreSQL URL: {e}"))?;
        let target = format!(
            "{}/{}",
            config
                .get_hosts()
                .first()
                .map(|h| match h {
                    postgres::config::Host::Tcp(h) => h.clone(),
                    postgres::config::Host::Unix(p) => p.display().to_string(),
                })
                .unwrap_or_default(),
            config.get_dbname().unwrap_or("")
        );
        let manager = r2d2_postgres::PostgresConnectionManager::new(config, postgres::NoTls);
        r2d2::ManageConnection::connect(&manager).map_err(|e| {
            anyhow::anyhow!(
                "cannot connect to PostgreSQL at {target}: {:#}",
                anyhow::Error::from(e)
            )
        })?;
        let pool = r2d2::Pool::builder()
            .max_size(pool_size.max(1))
            .connection_timeout(Duration::from_secs(10))
            .build(manager)
            .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL at {target}: {e}"))?;
        Ok(Postgres { pool, target })
    }
}

/// `?` placeholders as PostgreSQL's `$1, $2, …` (the queries hold no `?` in literals).
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for ch in sql.chars() {
        if ch == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(ch);
        }
    }
    out
}

fn pg_err(e: postgres::Error) -> DbError {
    if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) {
        DbError::Unique
    } else {
        DbError::Other(format!("PostgreSQL: {e}"))
    }
}

impl postgres::types::ToSql for Val {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::Type;
        match self {
            Val::Null => Ok(postgres::types::IsNull::Yes),
            Val::Int(v) if *ty == Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
            Val::Int(v) => v.to_sql(ty, out),
            Val::Text(v) => v.to_sql(ty, out),
            Val::Bytes(v) => v.to_sql(ty, out),
        }
    }
    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }
    postgres::types::to_sql_checked!();
}

fn pg_row(r: &postgres::Row) -> Result<Row, DbError> {
    use postgres::types::Type;
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

impl Conn for postgres::Transaction<'_> {
    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>, DbError> {
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|p| p as &(dyn postgres::types::ToSql + Sync))
            .collect();
        let st = self.prepare(&numbered(sql)).map_err(pg_err)?;
        postgres::Transaction::query(self, &st, &refs)
            .map_err(pg_err)?
            .iter()
            .map(pg_row)
            .collect()
    }
    fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64, DbError> {
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|p| p as &(dyn postgres::types::ToSql + Sync))
            .collect();
        postgres::Transaction::execute(self, numbered(sql).as_str(), &refs).map_err(pg_err)
    }
}

impl Backend for Postgres {
    fn transaction(&self, _write: bool, f: TxFn<'_>) -> Result<(), ApiError> {
        let mut c = self
            .pool
            .get()
            .map_err(|e| ApiError::unavailable(format!("database unavailable: {e}")))?;
        let mut tx = c.transaction().map_err(pg_err)?;
        f(&mut tx)?;
        tx.commit().map_err(pg_err)?;
        Ok(())
    }
    fn describe(&self) -> String {
        format!("PostgreSQL {}", self.target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres() {
        assert_eq!(
            numbered("SELECT a FROM t WHERE b = ? AND c IN (?, ?)"),
            "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)"
        );
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
}
