//! File sync (the `/api/projects/{id}/files` and `/api/blobs` routes of the OpenAPI document
//! the server serves at `/api/openapi.json`; `man server`). A project's files are paths with
//! a content hash (BLAKE3, hex), a size and a version; a deleted file stays as a tombstone
//! with no hash so other machines learn of the deletion. Blobs belong to one user: no user
//! can learn whether another holds some content.
//!
//! A commit applies all of its changes or none. Each change names the version it was based
//! on; a file changed since is a conflict (409) listing the server's version, and the client
//! merges and retries. Every commit raises the project's revision by one. A change may be
//! a rename: it names the path its content comes `from`, which the same commit deletes, and
//! its content must be what that path held (so nothing is uploaded for it).
//!
//! The content itself goes up and down in `blobs.rs`.

use super::db::{unix_now, Conn, DbError, Row};
use super::projects::owned_project;
use super::{blocking, ok, ApiError, App, Pending, Reply, Req};
use crate::protocol::types::{
    ContentHash, Data, FileConflict, FileEntry, FileVersion, Files, Missing, Page, Revision,
};
use crate::protocol::{valid_hash, valid_path, MAX_BATCH};
use axum::http::StatusCode;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A stored hash (only checked ones are stored).
fn stored_hash(text: Option<String>) -> Option<ContentHash> {
    text.as_deref().and_then(ContentHash::parse)
}

fn file_entry(r: &Row) -> FileEntry {
    let hash = r.opt_text(1);
    FileEntry {
        path: r.text(0),
        deleted: hash.is_none(),
        hash: stored_hash(hash),
        size: r.int(2),
        version: FileVersion(r.int(3)),
    }
}

// ---- pagination (the listing sync reads) ----

/// The entries of `paths` in a project, by path: what a commit answers with (bounded by the
/// commit's own size, not by the project's).
fn files_at(c: &mut dyn Conn, project: i64, paths: &[&str]) -> Result<Vec<FileEntry>, ApiError> {
    let mut out = Vec::with_capacity(paths.len());
    for chunk in paths.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let mut params = vec![project.into()];
        params.extend(chunk.iter().map(|p| (*p).into()));
        out.extend(
            c.query(
                &format!(
                    "SELECT path, hash, size, version FROM files WHERE project_id = ? \
                     AND path IN ({marks})"
                ),
                &params,
            )?
            .iter()
            .map(file_entry),
        );
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// A page of a project's files as SQL: the first page, and the page after a path.
pub(super) const FILES_PAGE: [&str; 2] = [
    "SELECT path, hash, size, version FROM files WHERE project_id = ? ORDER BY path LIMIT ?",
    "SELECT path, hash, size, version FROM files WHERE project_id = ? AND path > ? \
     ORDER BY path LIMIT ?",
];

/// A page of a project's files by path (keyset on the primary key), with the project's
/// revision read in the same transaction: a client that sees the revision change between
/// pages starts its walk again.
pub fn list(app: &App, req: &Req) -> Result<Reply, ApiError> {
    use super::page::{self, Key, List};
    let id = req.id("Project")?;
    let want = app
        .cursors
        .want(req, List::Files, id, app.page_sizes(true))?;
    let limit = (want.limit + 1) as i64;
    let (revision, mut rows) = app.db.read(|c| {
        let p = owned_project(c, req.user().id, id)?;
        let rows = match &want.after {
            None => c.query(FILES_PAGE[0], &[id.into(), limit.into()])?,
            Some(k) => c.query(FILES_PAGE[1], &[id.into(), (&k.text).into(), limit.into()])?,
        };
        Ok((p.int(5), rows))
    })?;
    let more = page::cut(&mut rows, want.limit);
    let next = page::next(&app.cursors, List::Files, id, &rows, more, |r| Key {
        text: r.text(0),
        id: 0,
    });
    ok(Page {
        data: Files {
            revision: Revision(revision),
            files: rows.iter().map(file_entry).collect(),
        },
        next,
    })
}

/// The `hashes` of a body, each checked.
fn hashes(body: &serde_json::Map<String, Value>) -> Result<Vec<ContentHash>, ApiError> {
    let Some(Value::Array(items)) = body.get("hashes") else {
        return Err(ApiError::invalid(vec![(
            "hashes",
            "hashes must be an array of BLAKE3 hashes".into(),
        )]));
    };
    if items.len() > MAX_BATCH {
        return Err(ApiError::invalid(vec![(
            "hashes",
            format!("at most {MAX_BATCH} hashes at a time"),
        )]));
    }
    items
        .iter()
        .map(|v| match v.as_str().and_then(ContentHash::parse) {
            Some(h) => Ok(h),
            _ => Err(ApiError::invalid(vec![(
                "hashes",
                "each hash must be 64 lower-case hex digits".into(),
            )])),
        })
        .collect()
}

pub fn missing(app: &App, req: &Req) -> Result<Reply, ApiError> {
    let wanted = hashes(&req.json()?)?;
    let user = req.user().id;
    // Content the server has is touched, so the collector of unnamed content leaves it
    // for the commit that will name it.
    let now = unix_now();
    let have = app.db.write(|c| {
        let hashes: Vec<&str> = wanted.iter().map(|h| h.as_str()).collect();
        Ok(touch_content(c, user, now, hashes)?)
    })?;
    let mut seen = HashSet::new();
    let missing: Vec<ContentHash> = wanted
        .into_iter()
        .filter(|h| !have.contains_key(h.as_str()) && seen.insert(h.clone()))
        .collect();
    ok(Data {
        data: Missing { missing },
    })
}

struct Change {
    path: String,
    hash: Option<String>,
    base_version: i64,
    /// A rename's old path (deleted by another change of the same commit).
    from: Option<String>,
}

fn changes(body: &serde_json::Map<String, Value>) -> Result<(i64, Vec<Change>), ApiError> {
    let bad = |m: String| ApiError::invalid(vec![("changes", m)]);
    let base_revision = match body.get("base_revision") {
        None | Some(Value::Null) => 0,
        Some(v) => v.as_i64().filter(|n| *n >= 0).ok_or_else(|| {
            ApiError::invalid(vec![(
                "base_revision",
                "base_revision must be a whole number, 0 or more".into(),
            )])
        })?,
    };
    let Some(Value::Array(items)) = body.get("changes") else {
        return Err(bad("changes must be an array".into()));
    };
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(bad(format!("a commit holds 1 to {MAX_BATCH} changes")));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = item.get("path").and_then(Value::as_str).unwrap_or("");
        if !valid_path(path) {
            return Err(bad(format!(
                "change {i}: path must be a relative path of names separated by '/', \
                 without '.', '..' or empty names"
            )));
        }
        if !seen.insert(path) {
            return Err(bad(format!("change {i}: the path appears twice")));
        }
        let hash = match item.get("hash") {
            None | Some(Value::Null) => None,
            Some(Value::String(h)) if valid_hash(h) => Some(h.clone()),
            Some(_) => {
                return Err(bad(format!(
                    "change {i}: hash must be 64 lower-case hex digits, or null to delete"
                )))
            }
        };
        let base_version = match item.get("base_version") {
            None | Some(Value::Null) => 0,
            Some(v) => v.as_i64().filter(|n| *n >= 0).ok_or_else(|| {
                bad(format!(
                    "change {i}: base_version must be a whole number, 0 or more"
                ))
            })?,
        };
        let from = match item.get("from") {
            None | Some(Value::Null) => None,
            Some(Value::String(f)) if valid_path(f) && f != path && hash.is_some() => {
                Some(f.clone())
            }
            Some(_) => {
                return Err(bad(format!(
                    "change {i}: from must be the path the content moves from, another \
                     relative path, and a rename needs a hash"
                )))
            }
        };
        out.push(Change {
            path: path.to_string(),
            hash,
            base_version,
            from,
        });
    }
    // A rename deletes its old path in the same commit, once.
    let deleted: HashSet<&str> = out
        .iter()
        .filter(|c| c.hash.is_none())
        .map(|c| c.path.as_str())
        .collect();
    let mut sources = HashSet::new();
    for (i, c) in out.iter().enumerate() {
        if let Some(f) = &c.from {
            if !deleted.contains(f.as_str()) || !sources.insert(f.as_str()) {
                return Err(bad(format!(
                    "change {i}: a rename from {f} needs one change of the same commit that \
                     deletes {f} (hash null), and no other rename from it"
                )));
            }
        }
    }
    Ok((base_revision, out))
}

/// The names above `path` (`a`, `a/b` for `a/b/c`).
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

pub fn commit(app: &App, req: &Req) -> Result<Reply, ApiError> {
    let id = req.id("Project")?;
    let (_base_revision, changes) = changes(&req.json()?)?;
    ok(Data {
        data: apply(app, req.user().id, id, &changes)?,
    })
}

/// Applies `changes` to `user`'s project `id` as one commit (all or none; 409 with the
/// conflicts when a file changed since the version a change was based on).
fn apply(app: &App, user: i64, id: i64, changes: &[Change]) -> Result<Files, ApiError> {
    let now = unix_now();
    let (revision, files) = app.db.write(|c| {
        owned_project(c, user, id)?;
        // Taking the project's row first serialises commits to one project.
        let revision = c
            .one(
                "UPDATE projects SET revision = revision + 1, updated_at = ? WHERE id = ? \
                 RETURNING revision",
                &[super::now().into(), id.into()],
            )?
            .map_or(0, |r| r.int(0));
        // What the commit's paths hold now (a rename's source is one of them).
        let paths: Vec<&str> = changes.iter().map(|ch| ch.path.as_str()).collect();
        let held: HashMap<String, FileEntry> = files_at(c, id, &paths)?
            .into_iter()
            .map(|f| (f.path.clone(), f))
            .collect();
        let version_of = |path: &str| held.get(path).map_or(0, |f| f.version.0);
        let hash_of = |path: &str| {
            held.get(path)
                .and_then(|f| f.hash.as_ref())
                .map(|h| h.as_str())
        };
        let conflicts: Vec<FileConflict> = changes
            .iter()
            .filter(|ch| version_of(&ch.path) != ch.base_version)
            .map(|ch| FileConflict {
                path: ch.path.clone(),
                server_version: FileVersion(version_of(&ch.path)),
                server_hash: held.get(&ch.path).and_then(|f| f.hash.clone()),
            })
            .collect();
        if !conflicts.is_empty() {
            return Err(ApiError::conflict(
                "Some files changed on the server since your copy: merge and commit again",
            )
            .with_conflicts(conflicts));
        }
        // A rename keeps the content: the new path gets what the old one holds.
        for ch in changes {
            if let Some(from) = &ch.from {
                if hash_of(from) != ch.hash.as_deref() {
                    return Err(ApiError::invalid(vec![(
                        "changes",
                        format!(
                            "{}: a rename keeps the content, but {from} holds other content",
                            ch.path
                        ),
                    )]));
                }
            }
        }
        let sizes = touch(c, user, now, changes)?;
        for chunk in changes.chunks(ROWS_AT_ONCE) {
            let rows = vec!["(?, ?, ?, ?, ?)"; chunk.len()].join(", ");
            let mut params = Vec::with_capacity(chunk.len() * 5);
            for ch in chunk {
                let size = ch.hash.as_ref().and_then(|h| sizes.get(h)).copied();
                params.extend([
                    id.into(),
                    ch.path.as_str().into(),
                    ch.hash.clone().into(),
                    size.unwrap_or(0).into(),
                    (version_of(&ch.path) + 1).into(),
                ]);
            }
            c.exec(
                &format!(
                    "INSERT INTO files (project_id, path, hash, size, version) VALUES {rows} \
                     ON CONFLICT (project_id, path) DO UPDATE SET hash = excluded.hash, \
                     size = excluded.size, version = excluded.version"
                ),
                &params,
            )?;
        }
        // A file may not sit where another file's directory is, or the other way round.
        // The rule held before this commit, so only the paths it brings to life can break
        // it.
        let born: Vec<&str> = changes
            .iter()
            .filter(|ch| ch.hash.is_some() && hash_of(&ch.path).is_none())
            .map(|ch| ch.path.as_str())
            .collect();
        check_tree(c, id, &born, &app.db.bytewise("path"))?;
        let paths: Vec<&str> = changes.iter().map(|ch| ch.path.as_str()).collect();
        Ok((revision, files_at(c, id, &paths)?))
    })?;
    Ok(Files {
        revision: Revision(revision),
        files,
    })
}

/// The `path` (and `base_version`) of a request for one file's content.
fn content_query(req: &Req) -> Result<(String, Option<i64>), ApiError> {
    let (mut path, mut base) = (None, None);
    for (k, v) in req.query_text("path")? {
        match &*k {
            "path" => path = Some(v),
            "base_version" => {
                base = Some(v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                    ApiError::invalid(vec![(
                        "base_version",
                        "base_version must be a whole number, 0 or more".into(),
                    )])
                })?)
            }
            _ => {}
        }
    }
    match path {
        Some(p) if valid_path(&p) => Ok((p, base)),
        _ => Err(ApiError::invalid(vec![(
            "path",
            "path must be a relative path of names separated by '/', without '.', '..' or \
             empty names"
                .into(),
        )])),
    }
}

/// `GET /api/projects/{id}/files/content?path=P`: one file's content, a chunk at a time
/// (404 for a file that does not exist or was deleted).
pub fn read_content(app: Arc<App>, req: Req) -> Pending<Result<Reply, ApiError>> {
    Box::pin(async move {
        let id = req.id("Project")?;
        let (path, _) = content_query(&req)?;
        let user = req.user().id;
        let hash = blocking(&app, move |a| {
            a.db.read(|c| {
                owned_project(c, user, id)?;
                Ok(c.one(
                    "SELECT hash FROM files WHERE project_id = ? AND path = ?",
                    &[id.into(), path.clone().into()],
                )?
                .and_then(|r| stored_hash(r.opt_text(0))))
            })
        })
        .await?
        .ok_or_else(|| ApiError::not_found("File not found"))?;
        super::blobs::send(app, user, hash).await
    })
}

/// `PUT /api/projects/{id}/files/content?path=P&base_version=N`: stores the body as the
/// file's new content and commits it, if the file is still at version `N` (0: it does not
/// exist yet); otherwise 409 with the server's version, and nothing changes. For clients
/// that cannot hash content themselves (the web pages): the server hashes it on arrival.
pub fn write_content(
    app: Arc<App>,
    req: Req,
    incoming: super::blobs::Incoming,
) -> Pending<Result<Reply, ApiError>> {
    Box::pin(async move {
        let id = req.id("Project")?;
        let user = req.user().id;
        let (path, base) = match content_query(&req) {
            Ok((path, Some(base))) => (path, base),
            Ok(_) => {
                let e = ApiError::invalid(vec![(
                    "base_version",
                    "base_version is required: the version the new content is based on (0 \
                     for a new file)"
                        .into(),
                )]);
                return Err(super::blobs::refuse(incoming, e).await);
            }
            Err(e) => return Err(super::blobs::refuse(incoming, e).await),
        };
        // A save based on a version already gone is refused before its body is stored
        // (the commit checks again, for a change landing while the body arrives).
        let at = path.clone();
        let current = blocking(&app, move |a| {
            a.db.read(|c| {
                owned_project(c, user, id)?;
                Ok(c.one(
                    "SELECT hash, version FROM files WHERE project_id = ? AND path = ?",
                    &[id.into(), at.clone().into()],
                )?)
            })
        })
        .await;
        let stale = match current {
            Err(e) => Some(e),
            Ok(row) => {
                let (hash, version) = row.map_or((None, 0), |r| (r.opt_text(0), r.int(1)));
                (version != base).then(|| {
                    ApiError::conflict(
                        "The file changed on the server since the version this is based on",
                    )
                    .with_conflicts(vec![FileConflict {
                        path: path.clone(),
                        server_version: FileVersion(version),
                        server_hash: stored_hash(hash),
                    }])
                })
            }
        };
        if let Some(e) = stale {
            return Err(super::blobs::refuse(incoming, e).await);
        }
        let (_, hash) = super::blobs::store(&app, user, None, incoming).await?;
        let change = Change {
            path,
            hash: Some(hash.as_str().to_string()),
            base_version: base,
            from: None,
        };
        // The session was checked before the body was read, which may take long: the commit
        // is made only if it is still live (not logged out, nor signed out by a password
        // change meanwhile), in the same transaction.
        let guard = super::auth::live_session(req.user());
        let files = blocking(&app, move |a| {
            a.db.guarded(guard, || apply(a, user, id, &[change]))
        })
        .await?;
        ok(Data { data: files })
    })
}

/// Rows written by one statement of a commit.
const ROWS_AT_ONCE: usize = 200;

/// Touches the content the `changes` name (an update, which locks its row, keeps the
/// collector from deleting it under the commit): the size of each, by hash. Content never
/// uploaded, or collected since (`blobs.rs`), is refused, naming the first change that needs
/// it.
fn touch(
    c: &mut dyn Conn,
    user: i64,
    now: i64,
    changes: &[Change],
) -> Result<HashMap<String, i64>, ApiError> {
    let hashes = changes.iter().filter_map(|ch| ch.hash.as_deref()).collect();
    let sizes = touch_content(c, user, now, hashes)?;
    let missing = changes.iter().find_map(|ch| {
        let h = ch.hash.as_ref()?;
        (!sizes.contains_key(h)).then_some((&ch.path, h))
    });
    match missing {
        Some((path, h)) => Err(ApiError::invalid(vec![(
            "changes",
            format!("{path}: missing blob {h}: upload its content (PUT /api/blobs/{h}) first"),
        )])),
        None => Ok(sizes),
    }
}

/// Touches the content of `hashes` that `user` holds (an update, which locks its row, keeps
/// the collector from deleting it under a commit): the size of each found, by hash.
fn touch_content(
    c: &mut dyn Conn,
    user: i64,
    now: i64,
    mut hashes: Vec<&str>,
) -> Result<HashMap<String, i64>, DbError> {
    // In hash order, the order of the blobs' key, in which each statement locks its rows:
    // two requests sharing content (commits, or a commit and a `missing`) then lock it in
    // one order and wait for each other instead of deadlocking (PostgreSQL aborts one) as
    // the order they were given in let them.
    hashes.sort_unstable();
    hashes.dedup();
    let mut sizes = HashMap::with_capacity(hashes.len());
    for chunk in hashes.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let mut params = vec![now.into(), user.into()];
        params.extend(chunk.iter().map(|h| (*h).into()));
        for r in c.query(
            &format!(
                "UPDATE blobs SET touched_at = ? WHERE user_id = ? AND hash IN ({marks}) \
                 RETURNING hash, size"
            ),
            &params,
        )? {
            sizes.insert(r.text(0), r.int(1));
        }
    }
    Ok(sizes)
}

/// The folders the new files of one commit may lie in (each is looked up): far more than a
/// real tree's batch holds, and a bound on what paths built to be deep can cost.
const MAX_FOLDERS: usize = 50_000;

/// Ranges of paths asked for in one query by [`check_tree`].
const RANGES_AT_ONCE: usize = 64;

/// Checks that no live file of `project` is an ancestor or a descendant of the paths in
/// `born` (live now, not before), with `path` the path column compared byte by byte
/// (`Db::bytewise`). Ancestors are looked up by name and descendants as index ranges, so
/// the work is bounded by the commit, not by the project.
fn check_tree(c: &mut dyn Conn, project: i64, born: &[&str], path: &str) -> Result<(), ApiError> {
    // Above each: the first path born under it, for the message.
    let mut above: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for p in born {
        for a in ancestors(p) {
            above.entry(a).or_insert(p);
        }
    }
    if above.len() > MAX_FOLDERS {
        return Err(ApiError::invalid(vec![(
            "changes",
            format!(
                "the new files lie in more than {MAX_FOLDERS} folders: commit them in smaller \
                 batches"
            ),
        )]));
    }
    let names: Vec<&str> = above.keys().copied().collect();
    for chunk in names.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let mut params = vec![project.into()];
        params.extend(chunk.iter().map(|p| (*p).into()));
        let found = c.one(
            &format!(
                "SELECT path FROM files WHERE project_id = ? AND hash IS NOT NULL \
                 AND path IN ({marks})"
            ),
            &params,
        )?;
        if let Some(r) = found {
            let file = r.text(0);
            return Err(clash(
                above.get(file.as_str()).copied().unwrap_or(""),
                &file,
            ));
        }
    }
    let born_set: HashSet<&str> = born.iter().copied().collect();
    for chunk in born.chunks(RANGES_AT_ONCE) {
        let range = format!("(project_id = ? AND {path} > ? AND {path} < ?)");
        let ranges = vec![range.as_str(); chunk.len()].join(" OR ");
        let mut params = Vec::with_capacity(chunk.len() * 3);
        for p in chunk {
            params.push(project.into());
            params.push(format!("{p}/").into());
            params.push(format!("{p}0").into());
        }
        let found = c.one(
            &format!("SELECT path FROM files WHERE hash IS NOT NULL AND ({ranges}) LIMIT 1"),
            &params,
        )?;
        if let Some(r) = found {
            let below = r.text(0);
            let file = ancestors(&below)
                .find(|a| born_set.contains(a))
                .unwrap_or("");
            // The new file is the one refused: a folder of its name holds files.
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("{file} cannot be stored: it is a directory, holding {below}"),
            ));
        }
    }
    Ok(())
}

fn clash(path: &str, file: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        format!("{path} cannot be stored: {file} is a file, not a directory"),
    )
}

#[cfg(test)]
mod tests {
    use super::super::db::{DbError, Val};
    use super::*;

    #[test]
    fn ancestors_are_the_folders_above() {
        assert_eq!(ancestors("a/b/c").collect::<Vec<_>>(), vec!["a", "a/b"]);
    }

    /// Records the parameters of the statements it is sent, and finds every blob named.
    struct Recorder(Vec<Vec<Val>>);

    impl Conn for Recorder {
        fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>, DbError> {
            self.0.push(params.to_vec());
            if !sql.starts_with("UPDATE blobs") {
                // The tree's lookups find nothing in its way.
                return Ok(Vec::new());
            }
            Ok(params[2..]
                .iter()
                .map(|h| Row(vec![h.clone(), Val::Int(1)]))
                .collect())
        }
        fn exec(&mut self, _: &str, _: &[Val]) -> Result<u64, DbError> {
            unreachable!("a touch only queries")
        }
    }

    #[test]
    fn paths_built_to_be_deep_are_refused_before_any_lookup() {
        // 120 paths of 500 levels each: 59,880 folders of their own.
        let deep: Vec<String> = (0..120)
            .map(|i| format!("p{i}/{}", vec!["x"; 499].join("/")))
            .collect();
        let born: Vec<&str> = deep.iter().map(String::as_str).collect();
        let mut c = Recorder(Vec::new());
        let e = check_tree(&mut c, 1, &born, "path").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(c.0.is_empty(), "{} lookups", c.0.len());
        // A real tree's batch is far from the bound.
        let tree: Vec<String> = (0..10_000)
            .map(|i| format!("src/m{}/sub{}/f{i}.rs", i % 100, i % 7))
            .collect();
        let born: Vec<&str> = tree.iter().map(String::as_str).collect();
        let mut c = Recorder(Vec::new());
        assert!(check_tree(&mut c, 1, &born, "path").is_ok());
    }

    #[test]
    fn content_is_touched_in_hash_order_so_two_commits_cannot_deadlock() {
        // Two commits sharing content touch (lock) its rows; in one order they wait for
        // each other, in another each may hold what the other waits for (PostgreSQL
        // then aborts one: a 500). More content than one statement touches.
        let changes: Vec<Change> = (0..1200)
            .map(|i| Change {
                path: format!("f{i}"),
                hash: Some(ContentHash::of(&i.to_string().into_bytes()).as_str().into()),
                base_version: 0,
                from: None,
            })
            .collect();
        let mut c = Recorder(Vec::new());
        touch(&mut c, 1, 0, &changes).unwrap();
        assert!(c.0.len() > 1, "{} statements", c.0.len());
        let touched: Vec<&Val> = c.0.iter().flat_map(|p| &p[2..]).collect();
        assert_eq!(touched.len(), 1200);
        assert!(touched.windows(2).all(|w| match (w[0], w[1]) {
            (Val::Text(a), Val::Text(b)) => a < b,
            _ => false,
        }));
    }
}
