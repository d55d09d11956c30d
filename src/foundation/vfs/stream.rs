//! Files as streams (foundation, VFS): reading a stored file a piece at a time, and writing
//! a file — stored or in a mount — as output arrives, so that `head -1` of a 100 MB file or
//! `exec yes > f` use memory bounded by their buffers, not by the data.
//!
//! - [`StoredReader`] reads a blob through SQLite's incremental blob I/O on a connection of
//!   its own (the read sees one snapshot, whatever other processes write meanwhile).
//! - [`FileWriter`] writes a mounted file in place, as it comes. For the stored tree it
//!   writes into a private temporary file beside the store, hashing as it goes, and only
//!   [`FileWriter::commit`] stores the whole in one transaction: a stored file is never seen
//!   half-written, and output beyond the stored tree's limit is refused with an error that
//!   leaves the file as it was.

use super::{check_stored_size, host_err, max_stored_file, Loc, VPath, VResult, Vfs, VfsError};
use rusqlite::{Connection, OptionalExtension};
use std::io::{self, Read, Seek, Write};

/// Blobs smaller than this are read whole: one query beats opening a blob handle.
pub const WHOLE_BELOW: u64 = 1 << 20;

/// A stored blob read a piece at a time.
pub struct StoredReader {
    // Field order matters: the blob borrows the connection and is dropped first.
    blob: rusqlite::blob::Blob<'static>,
    _conn: Box<Connection>,
}

impl StoredReader {
    /// Opens the blob with content hash `hash` on its own read-only connection `conn`.
    pub fn open(conn: Connection, hash: &[u8]) -> VResult<Option<StoredReader>> {
        // Page by page through SQLite's small cache, not a memory map: a map's pages would
        // count as the process's memory, up to the whole file for a long read.
        conn.pragma_update(None, "mmap_size", 0)?;
        let conn = Box::new(conn);
        let rowid: Option<i64> = conn
            .prepare_cached("SELECT rowid FROM blobs WHERE hash = ?1")?
            .query_row([hash], |r| r.get(0))
            .optional()?;
        let Some(rowid) = rowid else {
            return Ok(None);
        };
        let blob = conn.blob_open(rusqlite::MAIN_DB, "blobs", "data", rowid, true)?;
        // SAFETY: the blob borrows the connection, which lives in its own heap allocation
        // that moves with the box, not with this struct; the blob is declared first, so it
        // is dropped before the connection.
        let blob: rusqlite::blob::Blob<'static> = unsafe { std::mem::transmute(blob) };
        Ok(Some(StoredReader { blob, _conn: conn }))
    }
}

// SAFETY: the connection and its blob handle move together and are only ever used by the
// thread that owns the reader; SQLite allows a connection (and its blobs) to change threads
// when nothing else uses it at the same time.
unsafe impl Send for StoredReader {}

impl Read for StoredReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.blob.read(buf)
    }
}

impl Vfs {
    /// A reader of the stored blob `hash`: whole when small (or for an in-memory store),
    /// else a piece at a time.
    pub(super) fn blob_reader(
        &self,
        path: &VPath,
        hash: &[u8],
        size: u64,
    ) -> VResult<Box<dyn Read + Send>> {
        if size >= WHOLE_BELOW {
            if let Some(conn) = self.store.reader() {
                if let Some(r) = StoredReader::open(conn, hash)? {
                    return Ok(Box::new(r));
                }
                return Err(VfsError::NotFound(path.to_string()));
            }
        }
        let conn = self.store.conn();
        let data = super::stored::read_blob(&conn, hash)?
            .ok_or_else(|| VfsError::NotFound(path.to_string()))?;
        Ok(Box::new(io::Cursor::new(data)))
    }

    /// Starts writing the file `p` (appending with `append`); see [`FileWriter`].
    pub fn writer(&self, p: &VPath, append: bool) -> VResult<FileWriter> {
        let Some(parent) = p.parent() else {
            return Err(VfsError::IsDir("/".into()));
        };
        match self.locate(p) {
            Loc::Mounted(m, rel) => {
                super::guard_home_written(self, p, &m, &rel)?;
                let dir = m.dir()?;
                if let Ok(md) = dir.metadata(&rel) {
                    if md.is_dir() {
                        return Err(VfsError::IsDir(p.to_string()));
                    }
                    super::not_special(p, &md)?;
                }
                let mut opts = cap_std::fs::OpenOptions::new();
                opts.write(true).create(true);
                if append {
                    opts.append(true);
                } else {
                    opts.truncate(true);
                }
                // In place: a symlink inside the jail is written through, and a hard link
                // keeps its inode (cap-std refuses a link that leads out of the jail).
                let f = dir.open_with(&rel, &opts).map_err(|e| host_err(p, e))?;
                Ok(FileWriter {
                    path: p.clone(),
                    target: Target::Host(f.into_std()),
                    written: 0,
                })
            }
            Loc::Stored => {
                if !self.is_dir(&parent) {
                    return Err(match self.stat(&parent) {
                        Ok(_) => VfsError::NotDir(parent.to_string()),
                        Err(e) => e,
                    });
                }
                let mut hasher = Box::new(blake3::Hasher::new());
                let mut old = None;
                let mut written = 0;
                if append {
                    match self.stat(p) {
                        Ok(m) if m.kind == super::Kind::Dir => {
                            return Err(VfsError::IsDir(p.to_string()))
                        }
                        Ok(m) => {
                            if let super::FileRef::Stored { hash } = self.file_ref(p)? {
                                // The new content is the old one and what follows.
                                let mut r = self.blob_reader(p, &hash, m.size)?;
                                io::copy(&mut r, &mut *hasher)
                                    .map_err(|e| VfsError::Io(p.to_string(), e))?;
                                written = m.size;
                                old = Some((hash, m.size));
                            }
                        }
                        Err(VfsError::NotFound(_)) => {}
                        Err(e) => return Err(e),
                    }
                } else if self.is_dir(p) {
                    return Err(VfsError::IsDir(p.to_string()));
                }
                let dir = self
                    .store
                    .path()
                    .parent()
                    .map(std::path::Path::to_path_buf)
                    .unwrap_or_else(std::env::temp_dir);
                // Unnamed and private: gone with the process, whatever happens.
                let spill = tempfile::tempfile_in(&dir)
                    .or_else(|_| tempfile::tempfile())
                    .map_err(|e| VfsError::Io(p.to_string(), e))?;
                Ok(FileWriter {
                    path: p.clone(),
                    target: Target::Stored { spill, hasher, old },
                    written,
                })
            }
        }
    }
}

enum Target {
    Host(std::fs::File),
    Stored {
        spill: std::fs::File,
        /// Boxed: a BLAKE3 state is large, and the file side needs none.
        hasher: Box<blake3::Hasher>,
        /// For an append: the old content's hash and size.
        old: Option<(Vec<u8>, u64)>,
    },
}

/// A file being written as output arrives; see the module.
pub struct FileWriter {
    path: VPath,
    target: Target,
    /// Bytes of the file so far (with the old content, for an append).
    written: u64,
}

impl Write for FileWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.target {
            Target::Host(f) => {
                let n = f.write(buf)?;
                self.written += n as u64;
                Ok(n)
            }
            Target::Stored { spill, hasher, .. } => {
                let max = max_stored_file();
                if self.written + buf.len() as u64 > max {
                    return Err(io::Error::new(
                        io::ErrorKind::FileTooLarge,
                        format!(
                            "{}: more than the stored tree takes ({}; setting \
                             vfs.max_file_size), so nothing was written to it; keep files \
                             this large in a mounted host directory",
                            self.path,
                            crate::budget::human(max as usize)
                        ),
                    ));
                }
                let n = spill.write(buf)?;
                hasher.update(&buf[..n]);
                self.written += n as u64;
                Ok(n)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.target {
            Target::Host(f) => f.flush(),
            Target::Stored { .. } => Ok(()),
        }
    }
}

impl FileWriter {
    /// Finishes the file: a mounted file is synced; a stored one is stored whole, in one
    /// transaction.
    pub fn commit(self, vfs: &Vfs) -> VResult<()> {
        match self.target {
            Target::Host(f) => f
                .sync_data()
                .map_err(|e| VfsError::Io(self.path.to_string(), e)),
            Target::Stored {
                mut spill,
                hasher,
                old,
            } => {
                check_stored_size(&self.path, self.written)?;
                let hash = hasher.finalize().as_bytes().to_vec();
                spill
                    .rewind()
                    .map_err(|e| VfsError::Io(self.path.to_string(), e))?;
                vfs.stored_tx(|tx| {
                    put_blob_from(tx, &hash, self.written, old.as_ref(), &mut spill)?;
                    super::stored::set_file(tx, &self.path, &hash, self.written)
                })
            }
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.written
    }

    pub fn is_empty(&self) -> bool {
        self.written == 0
    }
}

/// Stores the blob `hash` of `size` bytes — the blob `old` (for an append) followed by
/// what `rest` holds — unless it is stored already, copying a piece at a time.
fn put_blob_from(
    tx: &Connection,
    hash: &[u8],
    size: u64,
    old: Option<&(Vec<u8>, u64)>,
    rest: &mut dyn Read,
) -> VResult<()> {
    let added = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO blobs (hash, size, data) VALUES (?1, ?2, zeroblob(?2))",
        )?
        .execute(rusqlite::params![hash, size as i64])?;
    if added == 0 || size == 0 {
        return Ok(());
    }
    let rowid = tx.last_insert_rowid();
    let mut out = tx.blob_open(rusqlite::MAIN_DB, "blobs", "data", rowid, false)?;
    let err = |e: io::Error| VfsError::Io("the stored file".into(), e);
    if let Some((old_hash, _)) = old {
        let old_row: i64 = tx
            .prepare_cached("SELECT rowid FROM blobs WHERE hash = ?1")?
            .query_row([old_hash], |r| r.get(0))?;
        let mut src = tx.blob_open(rusqlite::MAIN_DB, "blobs", "data", old_row, true)?;
        io::copy(&mut src, &mut out).map_err(err)?;
    }
    io::copy(rest, &mut out).map_err(err)?;
    Ok(())
}
