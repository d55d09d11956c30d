//! The stored tree: directories and files as rows of `nodes`, contents in `blobs` keyed by
//! their BLAKE3 hash so identical contents are kept once.

use super::{DirEntry, Kind, Meta, VPath, VResult, VfsError};
use crate::store::now_ms;
use rusqlite::{params, Connection, OptionalExtension};

const ROOT_ID: i64 = 1;
const KIND_DIR: i64 = 0;
const KIND_FILE: i64 = 1;

pub(super) struct Node {
    pub id: i64,
    pub kind: Kind,
    pub hash: Option<Vec<u8>>,
    pub size: u64,
    pub mtime: i64,
}

impl Node {
    pub fn meta(&self) -> Meta {
        Meta {
            kind: self.kind,
            size: self.size,
            mtime_ms: self.mtime,
            mounted: false,
            readonly: false,
        }
    }
}

fn kind_of(k: i64) -> Kind {
    if k == KIND_DIR {
        Kind::Dir
    } else {
        Kind::File
    }
}

fn root_node(conn: &Connection) -> VResult<Node> {
    Ok(conn
        .prepare_cached("SELECT mtime FROM nodes WHERE id = 1")?
        .query_row([], |r| {
            Ok(Node {
                id: ROOT_ID,
                kind: Kind::Dir,
                hash: None,
                size: 0,
                mtime: r.get(0)?,
            })
        })?)
}

fn child(conn: &Connection, parent: i64, name: &str) -> VResult<Option<Node>> {
    let mut st = conn.prepare_cached(
        "SELECT id, kind, hash, size, mtime FROM nodes WHERE parent = ?1 AND name = ?2",
    )?;
    Ok(st
        .query_row(params![parent, name], |r| {
            Ok(Node {
                id: r.get(0)?,
                kind: kind_of(r.get(1)?),
                hash: r.get(2)?,
                size: r.get::<_, i64>(3)? as u64,
                mtime: r.get(4)?,
            })
        })
        .optional()?)
}

/// Finds the node at `p`. A file in the middle of the path is reported as "not a directory".
pub(super) fn lookup(conn: &Connection, p: &VPath) -> VResult<Option<Node>> {
    let mut node = root_node(conn)?;
    for (i, name) in p.names().iter().enumerate() {
        if node.kind != Kind::Dir {
            let prefix = VPath::root().join_names(&p.names()[..i]);
            return Err(VfsError::NotDir(prefix.to_string()));
        }
        match child(conn, node.id, name)? {
            Some(n) => node = n,
            None => return Ok(None),
        }
    }
    Ok(Some(node))
}

fn require(conn: &Connection, p: &VPath) -> VResult<Node> {
    lookup(conn, p)?.ok_or_else(|| VfsError::NotFound(p.to_string()))
}

fn require_dir(conn: &Connection, p: &VPath) -> VResult<Node> {
    let n = require(conn, p)?;
    if n.kind != Kind::Dir {
        return Err(VfsError::NotDir(p.to_string()));
    }
    Ok(n)
}

pub(super) fn read_blob(conn: &Connection, hash: &[u8]) -> VResult<Option<Vec<u8>>> {
    Ok(conn
        .prepare_cached("SELECT data FROM blobs WHERE hash = ?1")?
        .query_row([hash], |r| r.get(0))
        .optional()?)
}

pub(super) fn read_file(conn: &Connection, p: &VPath) -> VResult<Vec<u8>> {
    let n = require(conn, p)?;
    match (n.kind, n.hash) {
        (Kind::Dir, _) => Err(VfsError::IsDir(p.to_string())),
        (_, None) => Ok(Vec::new()),
        (_, Some(h)) => read_blob(conn, &h)?
            .ok_or_else(|| VfsError::Invalid(format!("{p}: content is missing from the store"))),
    }
}

/// Stores `data` once under its hash and returns the hash.
fn put_blob(conn: &Connection, data: &[u8]) -> VResult<Vec<u8>> {
    let hash = blake3::hash(data).as_bytes().to_vec();
    conn.prepare_cached("INSERT OR IGNORE INTO blobs (hash, size, data) VALUES (?1, ?2, ?3)")?
        .execute(params![hash, data.len() as i64, data])?;
    Ok(hash)
}

/// Drops a blob that no file refers to any more.
fn release_blob(conn: &Connection, hash: &[u8]) -> VResult<()> {
    conn.prepare_cached(
        "DELETE FROM blobs WHERE hash = ?1 AND NOT EXISTS (SELECT 1 FROM nodes WHERE hash = ?1)",
    )?
    .execute([hash])?;
    Ok(())
}

pub(super) fn write_file(conn: &Connection, p: &VPath, data: &[u8], append: bool) -> VResult<()> {
    let parent_path = p.parent().ok_or_else(|| VfsError::IsDir("/".into()))?;
    let parent = require_dir(conn, &parent_path)?;
    write_in(conn, parent.id, p, data, append)
}

/// Refuses a name the stored tree does not take ([`super::path::stored_problem`]): control
/// characters could drive a terminal, and characters that reorder text disguise a name.
/// Such names can exist in a mount, where they are shown escaped.
pub(super) fn check_name(p: &VPath) -> VResult<()> {
    match super::path::stored_problem(p.name().unwrap_or_default()) {
        Some(why) => Err(VfsError::Invalid(format!(
            "{}: {why}",
            crate::text::escape(&p.to_string())
        ))),
        None => Ok(()),
    }
}

/// Writes the file `p` whose parent directory is the node `parent`.
pub(super) fn write_in(
    conn: &Connection,
    parent: i64,
    p: &VPath,
    data: &[u8],
    append: bool,
) -> VResult<()> {
    let name = p.name().unwrap_or_default();
    let now = now_ms();
    match child(conn, parent, name)? {
        Some(n) if n.kind == Kind::Dir => Err(VfsError::IsDir(p.to_string())),
        Some(n) => {
            let content;
            let data = if append {
                let mut old = match &n.hash {
                    Some(h) => read_blob(conn, h)?.unwrap_or_default(),
                    None => Vec::new(),
                };
                old.extend_from_slice(data);
                content = old;
                &content[..]
            } else {
                data
            };
            let hash = put_blob(conn, data)?;
            conn.prepare_cached("UPDATE nodes SET hash = ?1, size = ?2, mtime = ?3 WHERE id = ?4")?
                .execute(params![hash, data.len() as i64, now, n.id])?;
            if let Some(old) = n.hash {
                if old != hash {
                    release_blob(conn, &old)?;
                }
            }
            Ok(())
        }
        None => {
            check_name(p)?;
            let hash = put_blob(conn, data)?;
            conn.prepare_cached(
                "INSERT INTO nodes (parent, name, kind, hash, size, mtime) VALUES (?1, ?2, 1, ?3, ?4, ?5)",
            )?
            .execute(params![parent, name, hash, data.len() as i64, now])?;
            Ok(())
        }
    }
}

/// Points the file `p` (made when missing, in an existing folder) at the stored blob
/// `hash` of `size` bytes, letting go of the blob it held before.
pub(super) fn set_file(conn: &Connection, p: &VPath, hash: &[u8], size: u64) -> VResult<()> {
    let parent_path = p.parent().ok_or_else(|| VfsError::IsDir("/".into()))?;
    let parent = require_dir(conn, &parent_path)?;
    let name = p.name().unwrap_or_default();
    let now = now_ms();
    match child(conn, parent.id, name)? {
        Some(n) if n.kind == Kind::Dir => Err(VfsError::IsDir(p.to_string())),
        Some(n) => {
            conn.prepare_cached("UPDATE nodes SET hash = ?1, size = ?2, mtime = ?3 WHERE id = ?4")?
                .execute(params![hash, size as i64, now, n.id])?;
            if let Some(old) = n.hash {
                if old != hash {
                    release_blob(conn, &old)?;
                }
            }
            Ok(())
        }
        None => {
            check_name(p)?;
            conn.prepare_cached(
                "INSERT INTO nodes (parent, name, kind, hash, size, mtime) VALUES (?1, ?2, 1, ?3, ?4, ?5)",
            )?
            .execute(params![parent.id, name, hash, size as i64, now])?;
            Ok(())
        }
    }
}

pub(super) fn touch(conn: &Connection, p: &VPath) -> VResult<()> {
    match lookup(conn, p)? {
        Some(n) => {
            conn.prepare_cached("UPDATE nodes SET mtime = ?1 WHERE id = ?2")?
                .execute(params![now_ms(), n.id])?;
            Ok(())
        }
        None => write_file(conn, p, b"", false),
    }
}

/// Creates the directory `p` (and missing parents with `parents`); returns its node id.
pub(super) fn mkdir(conn: &Connection, p: &VPath, parents: bool) -> VResult<i64> {
    if p.is_root() {
        return if parents {
            Ok(ROOT_ID)
        } else {
            Err(VfsError::Exists("/".into()))
        };
    }
    let mut node = root_node(conn)?;
    let names = p.names();
    for (i, name) in names.iter().enumerate() {
        let here = VPath::root().join_names(&names[..=i]);
        let last = i + 1 == names.len();
        match child(conn, node.id, name)? {
            Some(n) if n.kind == Kind::Dir => {
                if last && !parents {
                    return Err(VfsError::Exists(here.to_string()));
                }
                node = n;
            }
            Some(_) => {
                return Err(if last {
                    VfsError::Exists(here.to_string())
                } else {
                    VfsError::NotDir(here.to_string())
                })
            }
            None => {
                if !last && !parents {
                    return Err(VfsError::NotFound(
                        VPath::root().join_names(&names[..i + 1]).to_string(),
                    ));
                }
                check_name(&here)?;
                let now = now_ms();
                conn.prepare_cached(
                    "INSERT INTO nodes (parent, name, kind, size, mtime) VALUES (?1, ?2, 0, 0, ?3)",
                )?
                .execute(params![node.id, name, now])?;
                node = Node {
                    id: conn.last_insert_rowid(),
                    kind: Kind::Dir,
                    hash: None,
                    size: 0,
                    mtime: now,
                };
            }
        }
    }
    Ok(node.id)
}

pub(super) fn list_dir(conn: &Connection, p: &VPath) -> VResult<Vec<DirEntry>> {
    let dir = require(conn, p)?;
    if dir.kind != Kind::Dir {
        return Err(VfsError::NotDir(p.to_string()));
    }
    let mut st = conn.prepare_cached(
        "SELECT name, kind, size, mtime FROM nodes WHERE parent = ?1 ORDER BY name",
    )?;
    let rows = st.query_map([dir.id], |r| {
        Ok(DirEntry {
            name: r.get(0)?,
            meta: Meta {
                kind: kind_of(r.get(1)?),
                size: r.get::<_, i64>(2)? as u64,
                mtime_ms: r.get(3)?,
                mounted: false,
                readonly: false,
            },
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Every hash used below (and at) node `id`.
fn subtree_hashes(conn: &Connection, id: i64) -> VResult<Vec<Vec<u8>>> {
    let mut st = conn.prepare_cached(
        "WITH RECURSIVE t(id) AS (SELECT ?1 UNION ALL SELECT n.id FROM nodes n JOIN t ON n.parent = t.id)
         SELECT DISTINCT nodes.hash FROM nodes JOIN t ON nodes.id = t.id WHERE nodes.hash IS NOT NULL",
    )?;
    let rows = st.query_map([id], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Levels of folders one delete takes with it (see [`remove`]).
const CASCADE_LEVELS: i64 = 256;

pub(super) fn remove(conn: &Connection, p: &VPath, recursive: bool) -> VResult<()> {
    let n = require(conn, p)?;
    if n.kind == Kind::Dir && !recursive {
        let has_child: bool = conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM nodes WHERE parent = ?1)")?
            .query_row([n.id], |r| r.get(0))?;
        if has_child {
            return Err(VfsError::NotEmpty(p.to_string()));
        }
    }
    let hashes = subtree_hashes(conn, n.id)?;
    // Children go with their parent through ON DELETE CASCADE, one level of SQLite's trigger
    // recursion per level of folders, which stops at 1000; in a deeper tree the folders
    // every CASCADE_LEVELS levels down go first, deepest first, so no delete goes deeper.
    let cuts: Vec<i64> = conn
        .prepare_cached(
            "WITH RECURSIVE t(id, depth) AS (
                 SELECT ?1, 0
                 UNION ALL SELECT n.id, t.depth + 1 FROM nodes n JOIN t ON n.parent = t.id
                 WHERE n.kind = 0)
             SELECT id FROM t WHERE depth > 0 AND depth % ?2 = 0 ORDER BY depth DESC",
        )?
        .query_map(params![n.id, CASCADE_LEVELS], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut delete = conn.prepare_cached("DELETE FROM nodes WHERE id = ?1")?;
    for id in cuts.into_iter().chain([n.id]) {
        delete.execute([id])?;
    }
    for h in hashes {
        release_blob(conn, &h)?;
    }
    Ok(())
}

pub(super) fn rename(conn: &Connection, from: &VPath, to: &VPath) -> VResult<()> {
    check_name(to)?;
    let n = require(conn, from)?;
    let to_parent = to.parent().ok_or_else(|| VfsError::Exists("/".into()))?;
    let parent = require_dir(conn, &to_parent)?;
    let name = to.name().unwrap_or_default();
    if let Some(existing) = child(conn, parent.id, name)? {
        if existing.id == n.id {
            return Ok(());
        }
        match (existing.kind, n.kind) {
            (Kind::Dir, _) => return Err(VfsError::Exists(to.to_string())),
            (_, Kind::Dir) => return Err(VfsError::NotDir(to.to_string())),
            _ => remove(conn, to, false)?,
        }
    }
    conn.prepare_cached("UPDATE nodes SET parent = ?1, name = ?2, mtime = ?3 WHERE id = ?4")?
        .execute(params![parent.id, name, now_ms(), n.id])?;
    Ok(())
}

pub(super) fn copy(conn: &Connection, from: &VPath, to: &VPath) -> VResult<()> {
    let src = require(conn, from)?;
    match src.kind {
        // The copy shares the blob: nothing is read or stored again.
        Kind::File => match &src.hash {
            Some(hash) => set_file(conn, to, hash, src.size),
            None => write_file(conn, to, b"", false),
        },
        _ => {
            match lookup(conn, to)? {
                Some(n) if n.kind == Kind::Dir => {}
                Some(_) => return Err(VfsError::NotDir(to.to_string())),
                None => {
                    mkdir(conn, to, false)?;
                }
            }
            let dst = require(conn, to)?;
            copy_children(conn, src.id, dst.id)
        }
    }
}

/// id, name, kind, hash, size of one child node.
type ChildRow = (i64, String, i64, Option<Vec<u8>>, i64);

/// Copies what the folder `src` holds into the folder `dst`. The folders left to copy are
/// kept on a list, not on the call stack, so a tree as deep as paths go is copied too.
fn copy_children(conn: &Connection, src: i64, dst: i64) -> VResult<()> {
    let mut left = vec![(src, dst)];
    while let Some((src, dst)) = left.pop() {
        copy_level(conn, src, dst, &mut left)?;
    }
    Ok(())
}

/// Copies the entries of the folder `src` into `dst`, adding each pair of folders whose
/// contents are still to copy to `left`.
fn copy_level(conn: &Connection, src: i64, dst: i64, left: &mut Vec<(i64, i64)>) -> VResult<()> {
    let kids: Vec<ChildRow> = {
        let mut st =
            conn.prepare_cached("SELECT id, name, kind, hash, size FROM nodes WHERE parent = ?1")?;
        let rows = st.query_map([src], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let now = now_ms();
    for (id, name, kind, hash, size) in kids {
        let existing = child(conn, dst, &name)?;
        let target = match existing {
            Some(e) if e.kind == Kind::Dir && kind == KIND_DIR => e.id,
            Some(e) if e.kind != Kind::Dir && kind == KIND_FILE => {
                conn.prepare_cached(
                    "UPDATE nodes SET hash = ?1, size = ?2, mtime = ?3 WHERE id = ?4",
                )?
                .execute(params![hash, size, now, e.id])?;
                if let Some(old) = e.hash {
                    release_blob(conn, &old)?;
                }
                continue;
            }
            Some(_) => return Err(VfsError::Exists(name)),
            None => {
                conn.prepare_cached(
                    "INSERT INTO nodes (parent, name, kind, hash, size, mtime) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![dst, name, kind, hash, size, now])?;
                conn.last_insert_rowid()
            }
        };
        if kind == KIND_DIR {
            left.push((id, target));
        }
    }
    Ok(())
}

pub(super) type WalkRow = (Vec<String>, Kind, Option<Vec<u8>>, u64);

/// What a walk hands each node: its names below the root, kind, blob hash and size.
pub(super) type Visit<'a> = dyn FnMut(&[String], Kind, Option<Vec<u8>>, u64) -> bool + 'a;

/// Every node below `root` with its names relative to `root`, parents before children.
pub(super) fn walk(conn: &Connection, root: &VPath) -> VResult<Vec<WalkRow>> {
    let mut rows = Vec::new();
    walk_each(conn, root, &mut |names, kind, hash, size| {
        rows.push((names.to_vec(), kind, hash, size));
        true
    })?;
    Ok(rows)
}

/// Hands every node below `root` to `f` (its names relative to `root`), depth first with
/// each folder's entries in name order, as the walk of a mount goes; stops early when `f`
/// returns false, and then returns false. One indexed query per folder: no sort, and the
/// first entries arrive before the last folder is read. The folders being walked are kept
/// on a list, not on the call stack, so a tree as deep as paths go is walked like any other.
pub(super) fn walk_each(conn: &Connection, root: &VPath, f: &mut Visit<'_>) -> VResult<bool> {
    let n = require(conn, root)?;
    if n.kind != Kind::Dir {
        return Err(VfsError::NotDir(root.to_string()));
    }
    let mut st = conn.prepare_cached(
        "SELECT id, name, kind, hash, size FROM nodes WHERE parent = ?1 ORDER BY name",
    )?;
    // Each folder being walked, with the entries of it not handed on yet; `names` holds the
    // names of the folders below the root on the way to the innermost one.
    let mut open = vec![children(&mut st, n.id)?.into_iter()];
    let mut names: Vec<String> = Vec::new();
    while let Some(level) = open.last_mut() {
        let Some((id, name, kind, hash, size)) = level.next() else {
            open.pop();
            names.pop();
            continue;
        };
        names.push(name);
        if !f(&names, kind, hash, size) {
            return Ok(false);
        }
        if kind == Kind::Dir {
            // Read the folder whole first: the statement is reused for the folders below.
            open.push(children(&mut st, id)?.into_iter());
        } else {
            names.pop();
        }
    }
    Ok(true)
}

/// id, name, kind, hash and size of each node in the folder `dir`, in name order.
type WalkChild = (i64, String, Kind, Option<Vec<u8>>, u64);

fn children(st: &mut rusqlite::CachedStatement<'_>, dir: i64) -> VResult<Vec<WalkChild>> {
    Ok(st
        .query_map([dir], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                kind_of(r.get(2)?),
                r.get::<_, Option<Vec<u8>>>(3)?,
                r.get::<_, i64>(4)? as u64,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}
