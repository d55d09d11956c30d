//! The virtual filesystem (foundation): a stored tree in SQLite with content-addressed
//! blobs, plus host directories mounted into it as jails.

pub mod carry;
pub mod checkout;
pub mod path;
mod stored;
pub mod stream;
pub mod transfer;

pub use path::{normalize, PathError, VPath};

use crate::store::{now_ms, Store};
use cap_std::fs::Dir;
use rusqlite::OptionalExtension;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Largest file the stored tree accepts by default (setting vfs.max_file_size; SQLite's
/// blob limit is 1 GB).
pub const MAX_STORED_FILE: u64 = 1 << 29;

static MAX_FILE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(MAX_STORED_FILE);

/// Sets the largest file the stored tree accepts (at most 1 GB, SQLite's limit).
pub fn set_max_stored_file(bytes: u64) {
    MAX_FILE.store(
        bytes.clamp(1, 1_000_000_000),
        std::sync::atomic::Ordering::Relaxed,
    );
}

/// The largest file the stored tree accepts now.
pub fn max_stored_file() -> u64 {
    MAX_FILE.load(std::sync::atomic::Ordering::Relaxed)
}

#[derive(Debug, thiserror::Error)]
pub enum VfsError {
    #[error("{0}: no such file or directory")]
    NotFound(String),
    #[error("{0}: not a directory")]
    NotDir(String),
    #[error("{0}: is a directory")]
    IsDir(String),
    #[error("{0}: already exists")]
    Exists(String),
    #[error("{0}: directory not empty")]
    NotEmpty(String),
    #[error("{0}: leads outside its mount (a symlink or path may not leave a mounted directory)")]
    Escape(String),
    #[error("{0}: {1}")]
    BadPath(String, PathError),
    #[error("{0}: {1}")]
    Io(String, io::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("state store: {0}")]
    Store(rusqlite::Error),
    /// A write to the stored tree that the disk had no room for; its transaction was rolled
    /// back, so nothing of it was kept.
    #[error("{}", crate::store::DISK_FULL)]
    Full,
}

impl From<rusqlite::Error> for VfsError {
    fn from(e: rusqlite::Error) -> VfsError {
        if crate::store::is_disk_full(&e) {
            VfsError::Full
        } else {
            VfsError::Store(e)
        }
    }
}

pub type VResult<T> = Result<T, VfsError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    /// A symlink inside a mount whose target cannot be reached from inside the jail.
    Broken,
    /// A fifo, socket or device inside a mount: listed, never read as a file.
    Special,
}

#[derive(Debug, Clone)]
pub struct Meta {
    pub kind: Kind,
    pub size: u64,
    pub mtime_ms: i64,
    /// Where this path lives: `None` in the stored tree, the mount's VFS path otherwise.
    pub mounted: bool,
    /// Nobody may write it (a host file whose permissions have no write bit, such as
    /// 0444). Stored files are never read-only.
    pub readonly: bool,
}

#[derive(Debug, Clone)]
pub struct DirEntry {
    pub name: String,
    pub meta: Meta,
}

/// A host directory attached at a VFS path.
pub struct Mount {
    pub vpath: VPath,
    pub host: PathBuf,
    /// The handle the jail is reached through, and the (device, inode) of the directory it
    /// was opened on. `None` while the host directory cannot be opened.
    handle: RwLock<Option<Handle>>,
}

#[derive(Clone)]
struct Handle {
    dir: Arc<Dir>,
    id: (u64, u64),
}

/// Opens the jail on the host directory `host` (as mounting does) and tells which directory
/// it is by (device, inode).
fn open_host(host: &Path) -> io::Result<Handle> {
    use cap_std::fs::MetadataExt;
    let dir = Dir::open_ambient_dir(host, cap_std::ambient_authority())?;
    let md = dir.dir_metadata()?;
    Ok(Handle {
        dir: Arc::new(dir),
        id: (md.dev(), md.ino()),
    })
}

/// Whether the handle `h`, just opened on the mount's host directory `host`, is the folder
/// that path names without following a symlink. The path was resolved when it was mounted,
/// so a link on it now (the folder's place taken by a link to somewhere else) was put there
/// since, and following it would move the jail.
fn unlinked(host: &Path, h: &Handle) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::canonicalize(host).is_ok_and(|real| real == host)
        && std::fs::symlink_metadata(host)
            .is_ok_and(|md| md.is_dir() && (md.dev(), md.ino()) == h.id)
}

impl Mount {
    fn new(vpath: VPath, host: PathBuf, handle: Option<Handle>) -> Mount {
        Mount {
            vpath,
            host,
            handle: RwLock::new(handle),
        }
    }

    /// The handle on the host directory as it is now. The host path is looked at on every
    /// use (one `stat`): when it names another directory than the handle's (the folder was
    /// removed and made again, or another put in its place) it is opened again, as at mount
    /// time; when nothing is there (removed, or moved away), this is an error, so nothing is
    /// written into a folder that was moved elsewhere on the host.
    fn dir(&self) -> VResult<Arc<Dir>> {
        use std::os::unix::fs::MetadataExt;
        let current = self
            .handle
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match (std::fs::metadata(&self.host), current) {
            (Ok(md), Some(h)) if md.is_dir() && (md.dev(), md.ino()) == h.id => Ok(h.dir),
            (Ok(md), _) if md.is_dir() => {
                let h = open_host(&self.host)
                    .map_err(|e| VfsError::Io(self.host.display().to_string(), e))?;
                if !unlinked(&self.host, &h) {
                    return Err(VfsError::Invalid(format!(
                        "{}: the mounted host directory {} was replaced by a symlink, which is \
                         not followed; put the folder back, or 'umount {}' and mount it again",
                        self.vpath,
                        path::shown_host(&self.host),
                        self.vpath
                    )));
                }
                let dir = h.dir.clone();
                *self.handle.write().unwrap_or_else(|e| e.into_inner()) = Some(h);
                Ok(dir)
            }
            // The path cannot be looked at (a folder on the way is not searchable): the
            // handle is all there is to go by.
            (Err(e), Some(h))
                if !matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                Ok(h.dir)
            }
            (_, Some(_)) => Err(VfsError::Invalid(format!(
                "{}: the mounted host directory {} was removed or moved; put it back, or \
                 'umount {}' and mount it again",
                self.vpath,
                self.host.display(),
                self.vpath
            ))),
            (_, None) => Err(VfsError::Invalid(format!(
                "{}: the mounted host directory {} is not available",
                self.vpath,
                self.host.display()
            ))),
        }
    }

    /// Whether the host directory is there to be used now.
    pub fn available(&self) -> bool {
        self.dir().is_ok()
    }
}

/// How to reach a file found by [`Vfs::walk`] without resolving its path again.
#[derive(Clone)]
pub enum FileRef {
    Stored { hash: Vec<u8> },
    Mounted { mount: Arc<Mount>, rel: PathBuf },
}

#[derive(Clone)]
pub struct WalkEntry {
    pub path: VPath,
    pub kind: Kind,
    /// Known for stored entries; `None` where finding it would cost a host `stat`.
    pub size: Option<u64>,
    pub file: Option<FileRef>,
    /// A symlink inside a mount (its kind is what it leads to). The walk never goes into a
    /// linked folder, and a copy does not carry links. An entry of kind `Broken` that is not
    /// a link is a folder of a mount that could not be opened, so was not walked.
    pub link: bool,
}

enum Loc {
    Stored,
    Mounted(Arc<Mount>, PathBuf),
}

pub struct Vfs {
    store: Arc<Store>,
    /// The mounts, read from the store on first use (a run that touches no path opens no
    /// store).
    mounts: std::sync::OnceLock<RwLock<Vec<Arc<Mount>>>>,
}

fn rel_path(names: &[String]) -> PathBuf {
    if names.is_empty() {
        PathBuf::from(".")
    } else {
        names.iter().map(|n| path::host_os(n)).collect()
    }
}

/// Refuses to change anything inside the Valyxo home through a mount (a mount of the whole
/// host holds it): a redirection must never write over the store, and a folder that holds
/// the home is never removed or moved away with it.
fn guard_home(vfs: &Vfs, p: &VPath, m: &Mount, rel: &Path) -> VResult<()> {
    let Some(home) = vfs.store.path().parent() else {
        return Ok(());
    };
    let Ok(home) = std::fs::canonicalize(home) else {
        return Ok(());
    };
    let target = m.host.join(rel);
    // The folder the change happens in, resolved on the host (the name itself may not exist
    // yet, or be a link).
    let parent = target.parent().unwrap_or(&target);
    let resolved = std::fs::canonicalize(parent).unwrap_or_else(|_| parent.to_path_buf());
    if resolved.starts_with(&home) || target.starts_with(&home) {
        return Err(VfsError::Invalid(format!(
            "{p}: is inside the Valyxo home, which is changed only by valyxo itself"
        )));
    }
    // The name itself, not followed: removing a link to a folder above the home is fine.
    let real = match target.file_name() {
        Some(name) if rel != Path::new(".") => resolved.join(name),
        _ => resolved,
    };
    if home.starts_with(&real) || home.starts_with(&target) {
        return Err(VfsError::Invalid(format!(
            "{}: holds the Valyxo home ({}), which is changed only by valyxo itself",
            crate::text::escape(&p.to_string()),
            path::shown_host(&home)
        )));
    }
    Ok(())
}

/// [`guard_home`] for a write to the file `rel`, which goes through a symlink there: the
/// file it leads to must not be in the Valyxo home either (a link to the store, reached
/// through a mount of the whole host, would otherwise be written over).
fn guard_home_written(vfs: &Vfs, p: &VPath, m: &Mount, rel: &Path) -> VResult<()> {
    guard_home(vfs, p, m, rel)?;
    let (Some(home), Ok(real)) = (
        vfs.store
            .path()
            .parent()
            .and_then(|h| std::fs::canonicalize(h).ok()),
        std::fs::canonicalize(m.host.join(rel)),
    ) else {
        return Ok(());
    };
    if real.starts_with(&home) {
        return Err(VfsError::Invalid(format!(
            "{}: leads inside the Valyxo home, which is changed only by valyxo itself",
            crate::text::escape(&p.to_string())
        )));
    }
    Ok(())
}

/// Maps a host I/O error on `p` to a VFS error that says what happened.
fn host_err(p: &VPath, e: io::Error) -> VfsError {
    let s = p.to_string();
    let msg = e.to_string();
    if msg.contains("outside of the filesystem") || msg.contains("escape") {
        return VfsError::Escape(s);
    }
    match e.kind() {
        io::ErrorKind::NotFound => VfsError::NotFound(s),
        io::ErrorKind::AlreadyExists => VfsError::Exists(s),
        io::ErrorKind::NotADirectory => VfsError::NotDir(s),
        io::ErrorKind::IsADirectory => VfsError::IsDir(s),
        io::ErrorKind::DirectoryNotEmpty => VfsError::NotEmpty(s),
        _ => VfsError::Io(s, e),
    }
}

/// Refuses a fifo, socket or device of a mount as a file to read or write: opening one
/// waits for the other end (a fifo without a writer, for ever) and could not be
/// interrupted, and writing a file over it would put a file in its place.
pub(crate) fn not_special(p: &VPath, md: &cap_std::fs::Metadata) -> VResult<()> {
    if md.is_file() || md.is_dir() {
        return Ok(());
    }
    Err(VfsError::Invalid(format!(
        "{}: is a fifo, socket or device, which is not read or written as a file",
        crate::text::escape(&p.to_string())
    )))
}

/// Opens the file `rel` of the jail `dir` for reading. The open does not wait (a fifo put
/// where a file was, after the file was looked at, would wait for a writer for ever), and
/// what was opened is what is checked: a folder is "is a directory", a fifo, socket or
/// device is refused. A regular file reads as usual (it takes no notice of the flag).
pub(crate) fn open_host_file(dir: &Dir, rel: &Path, p: &VPath) -> VResult<std::fs::File> {
    use cap_std::fs::OpenOptionsExt;
    let mut opts = cap_std::fs::OpenOptions::new();
    opts.read(true).custom_flags(libc::O_NONBLOCK);
    let f = dir.open_with(rel, &opts).map_err(|e| host_err(p, e))?;
    let md = f.metadata().map_err(|e| host_err(p, e))?;
    if md.is_dir() {
        return Err(VfsError::IsDir(p.to_string()));
    }
    not_special(p, &md)?;
    Ok(f.into_std())
}

fn host_meta(m: &cap_std::fs::Metadata) -> Meta {
    let mtime_ms = m
        .modified()
        .ok()
        .and_then(|t| t.into_std().duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    Meta {
        kind: if m.is_dir() {
            Kind::Dir
        } else if m.is_file() {
            Kind::File
        } else {
            Kind::Special
        },
        size: if m.is_file() { m.len() } else { 0 },
        mtime_ms,
        mounted: true,
        readonly: m.is_file() && m.permissions().readonly(),
    }
}

/// The mounts recorded as (virtual path, host path) rows, each with a handle on its host
/// folder when it is still there.
fn attach(rows: &[(String, String)]) -> RwLock<Vec<Arc<Mount>>> {
    let mut mounts = Vec::new();
    for (vp, host) in rows {
        let Ok(vpath) = VPath::parse_absolute(vp) else {
            continue;
        };
        let host = PathBuf::from(host);
        let handle = open_host(&host).ok().filter(|h| unlinked(&host, h));
        mounts.push(Arc::new(Mount::new(vpath, host, handle)));
    }
    RwLock::new(mounts)
}

impl Vfs {
    /// The VFS over `store`, attaching the mounts recorded there when a path is first used
    /// (the table as the store read it on opening: a store has one VFS, which keeps the table
    /// from then on).
    pub fn new(store: Arc<Store>) -> VResult<Vfs> {
        Ok(Vfs {
            store,
            mounts: std::sync::OnceLock::new(),
        })
    }

    /// The mount table; a lazily opened store is opened for it on first use.
    pub(super) fn mount_table(&self) -> &RwLock<Vec<Arc<Mount>>> {
        self.mounts
            .get_or_init(|| attach(self.store.mounts_at_open()))
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    fn locate(&self, p: &VPath) -> Loc {
        let mounts = self.mount_table().read().unwrap_or_else(|e| e.into_inner());
        let best = mounts
            .iter()
            .filter(|m| p.starts_with(&m.vpath))
            .max_by_key(|m| m.vpath.names().len());
        match best {
            Some(m) => {
                let rel = rel_path(p.strip_prefix(&m.vpath).unwrap_or(&[]));
                Loc::Mounted(m.clone(), rel)
            }
            None => Loc::Stored,
        }
    }

    /// The mount that `p` is inside of (or is the root of), if any.
    pub fn mount_of(&self, p: &VPath) -> Option<Arc<Mount>> {
        match self.locate(p) {
            Loc::Mounted(m, _) => Some(m),
            Loc::Stored => None,
        }
    }

    /// The host directory backing `p`, if `p` is inside a mount.
    pub fn host_path(&self, p: &VPath) -> Option<PathBuf> {
        match self.locate(p) {
            Loc::Mounted(m, rel) => Some(m.host.join(rel)),
            Loc::Stored => None,
        }
    }

    pub fn stat(&self, p: &VPath) -> VResult<Meta> {
        match self.locate(p) {
            Loc::Stored => {
                let conn = self.store.conn();
                match stored::lookup(&conn, p)? {
                    Some(n) => Ok(n.meta()),
                    None => Err(VfsError::NotFound(p.to_string())),
                }
            }
            Loc::Mounted(m, rel) => m
                .dir()?
                .metadata(&rel)
                .map(|m| host_meta(&m))
                .map_err(|e| host_err(p, e)),
        }
    }

    pub fn exists(&self, p: &VPath) -> bool {
        self.stat(p).is_ok()
    }

    pub fn is_dir(&self, p: &VPath) -> bool {
        matches!(self.stat(p), Ok(m) if m.kind == Kind::Dir)
    }

    /// Reads a whole file.
    pub fn read(&self, p: &VPath) -> VResult<Vec<u8>> {
        match self.locate(p) {
            Loc::Stored => {
                let conn = self.store.conn();
                stored::read_file(&conn, p)
            }
            Loc::Mounted(m, rel) => {
                let mut data = Vec::new();
                open_host_file(&*m.dir()?, &rel, p)?
                    .read_to_end(&mut data)
                    .map_err(|e| host_err(p, e))?;
                Ok(data)
            }
        }
    }

    /// Opens a file for streaming reads: neither a mounted file nor a large stored one is
    /// loaded whole.
    pub fn open_read(&self, p: &VPath) -> VResult<Box<dyn Read + Send>> {
        match self.locate(p) {
            Loc::Stored => {
                let node = {
                    let conn = self.store.conn();
                    stored::lookup(&conn, p)?.ok_or_else(|| VfsError::NotFound(p.to_string()))?
                };
                match (node.kind, node.hash) {
                    (Kind::Dir, _) => Err(VfsError::IsDir(p.to_string())),
                    (_, None) => Ok(Box::new(io::empty())),
                    (_, Some(h)) => self.blob_reader(p, &h, node.size),
                }
            }
            Loc::Mounted(m, rel) => Ok(Box::new(open_host_file(&*m.dir()?, &rel, p)?)),
        }
    }

    /// A handle to the file at `p`, as [`walk`](Self::walk) gives for the files it finds.
    pub fn file_ref(&self, p: &VPath) -> VResult<FileRef> {
        match self.locate(p) {
            Loc::Stored => {
                let conn = self.store.conn();
                match stored::lookup(&conn, p)? {
                    Some(n) if n.kind == Kind::Dir => Err(VfsError::IsDir(p.to_string())),
                    Some(n) => Ok(FileRef::Stored {
                        hash: n
                            .hash
                            .unwrap_or_else(|| blake3::hash(b"").as_bytes().to_vec()),
                    }),
                    None => Err(VfsError::NotFound(p.to_string())),
                }
            }
            Loc::Mounted(m, rel) => {
                let md = m.dir()?.metadata(&rel).map_err(|e| host_err(p, e))?;
                if md.is_dir() {
                    return Err(VfsError::IsDir(p.to_string()));
                }
                not_special(p, &md)?;
                Ok(FileRef::Mounted { mount: m, rel })
            }
        }
    }

    /// The content hash (BLAKE3) of a file found by [`walk`](Self::walk). A stored file's
    /// hash is the one its blob is kept under, so nothing is read; a file in a mount is read.
    pub fn ref_hash(&self, path: &VPath, r: &FileRef) -> VResult<blake3::Hash> {
        if let FileRef::Stored { hash } = r {
            if let Ok(h) = <[u8; 32]>::try_from(hash.as_slice()) {
                return Ok(blake3::Hash::from_bytes(h));
            }
        }
        self.read_ref(path, r).map(|b| blake3::hash(&b))
    }

    /// The content hash (BLAKE3) of the file at `p` as it is now.
    pub fn content_hash(&self, p: &VPath) -> VResult<blake3::Hash> {
        self.ref_hash(p, &self.file_ref(p)?)
    }

    /// Reads a file found by [`walk`](Self::walk).
    pub fn read_ref(&self, path: &VPath, r: &FileRef) -> VResult<Vec<u8>> {
        match r {
            FileRef::Stored { hash } => {
                let conn = self.store.conn();
                stored::read_blob(&conn, hash)?.ok_or_else(|| VfsError::NotFound(path.to_string()))
            }
            FileRef::Mounted { mount, rel } => {
                let mut data = Vec::new();
                open_host_file(&*mount.dir()?, rel, path)?
                    .read_to_end(&mut data)
                    .map_err(|e| host_err(path, e))?;
                Ok(data)
            }
        }
    }

    /// A reader of walked files for one worker thread (see [`RefReader`]).
    pub fn ref_reader(&self) -> RefReader<'_> {
        let conn = self.store.reader();
        if let Some(c) = &conn {
            // One read transaction: every blob comes from the same snapshot.
            let _ = c.execute_batch("BEGIN");
        }
        RefReader {
            vfs: self,
            conn,
            buf: Vec::new(),
            mapped: 0,
        }
    }

    /// Opens a walked file for streaming reads: mounted files as host files, large stored
    /// ones a piece at a time.
    pub fn open_ref(&self, path: &VPath, r: &FileRef) -> VResult<Box<dyn Read + Send>> {
        match r {
            FileRef::Stored { hash } => self.blob_reader(path, hash, stream::WHOLE_BELOW),
            FileRef::Mounted { mount, rel } => {
                Ok(Box::new(open_host_file(&*mount.dir()?, rel, path)?))
            }
        }
    }

    /// Creates or replaces a file with `data`. The parent directory must exist.
    /// In the stored tree the write is one committed transaction. In a mount the new content
    /// is first written whole (and synced) to a private temporary file beside the target, so
    /// a full disk fails before anything changes; the temporary then gets the old file's
    /// owner, group and mode and is renamed over it, so readers never see half a file. A file
    /// with other hard links, or whose owner or group this process cannot give to the
    /// replacement (it is not root), keeps its inode instead: it is written over in place
    /// (see `write_in_place`).
    pub fn write(&self, p: &VPath, data: &[u8]) -> VResult<()> {
        match self.locate(p) {
            Loc::Stored => {
                if p.parent().is_none() {
                    return Err(VfsError::IsDir("/".into()));
                }
                check_stored_size(p, data.len() as u64)?;
                self.stored_tx(|tx| stored::write_file(tx, p, data, false))
            }
            Loc::Mounted(m, rel) => self.write_mounted(p, m, rel, Source::Bytes(data)),
        }
    }

    /// As [`write`](Self::write), with the content read from `src` a piece at a time (a
    /// large file is never whole in memory): a stored file is stored in one transaction once
    /// all of it is read, a mounted one goes through a temporary file renamed over it. A
    /// failure of `src` leaves the file as it was.
    pub fn write_from(&self, p: &VPath, src: &mut dyn Read) -> VResult<()> {
        match self.locate(p) {
            Loc::Stored => {
                let mut w = self.writer(p, false)?;
                io::copy(src, &mut w).map_err(|e| match e.kind() {
                    // The message names the file and the limit.
                    io::ErrorKind::FileTooLarge => VfsError::Invalid(e.to_string()),
                    _ => VfsError::Io(p.to_string(), e),
                })?;
                w.commit(self)
            }
            Loc::Mounted(m, rel) => self.write_mounted(p, m, rel, Source::Reader(src)),
        }
    }

    /// The mounted side of [`write`](Self::write) and [`write_from`](Self::write_from).
    fn write_mounted(
        &self,
        p: &VPath,
        m: Arc<Mount>,
        rel: PathBuf,
        src: Source<'_>,
    ) -> VResult<()> {
        self.stage_mounted(p, m, rel, src)?.finish()
    }

    /// Writes several files as one, each as [`write`](Self::write) writes it, their
    /// folders made: every new content of a mount is first written whole beside its file,
    /// then the stored files are written in one transaction, and only then do the mounted
    /// ones take their places. A failure before that (a full disk, a folder in the way)
    /// changes none of the files and removes the folders it made. A failure as they take
    /// their places (which needs no room) stops there; the error names the files that had
    /// taken theirs.
    pub fn write_all(&self, files: &[(VPath, &[u8])]) -> Result<(), WriteAllError> {
        let mut made: Vec<VPath> = Vec::new();
        let mut staged: Vec<Staged<'_>> = Vec::new();
        let mut stored: Vec<(&VPath, &[u8])> = Vec::new();
        let mut stage = || -> VResult<()> {
            for (p, data) in files {
                match self.locate(p) {
                    Loc::Stored => {
                        if p.parent().is_none() {
                            return Err(VfsError::IsDir("/".into()));
                        }
                        check_stored_size(p, data.len() as u64)?;
                        stored.push((p, data));
                    }
                    Loc::Mounted(m, rel) => {
                        // Its folders, from the top: those made here are noted, to be
                        // removed again if the write fails.
                        let mut missing = Vec::new();
                        let mut up = p.parent();
                        while let Some(d) = up {
                            if self.exists(&d) {
                                break;
                            }
                            up = d.parent();
                            missing.push(d);
                        }
                        for d in missing.into_iter().rev() {
                            self.mkdir(&d, false)?;
                            made.push(d);
                        }
                        staged.push(self.stage_mounted(p, m, rel, Source::Bytes(data))?);
                    }
                }
            }
            if !stored.is_empty() {
                self.batch(|b| {
                    for (p, data) in &stored {
                        if let Some(parent) = p.parent() {
                            b.mkdir_all(&parent)?;
                        }
                        b.write(p, data)?;
                    }
                    Ok(())
                })?;
            }
            Ok(())
        };
        if let Err(error) = stage() {
            for s in staged {
                s.discard();
            }
            for d in made.iter().rev() {
                let _ = self.remove(d, false);
            }
            return Err(WriteAllError {
                error,
                written: Vec::new(),
            });
        }
        let mut written: Vec<VPath> = stored.iter().map(|(p, _)| (*p).clone()).collect();
        let mut rest = staged.into_iter();
        for s in rest.by_ref() {
            let p = s.p.clone();
            if let Err(error) = s.finish() {
                rest.for_each(Staged::discard);
                return Err(WriteAllError { error, written });
            }
            written.push(p);
        }
        Ok(())
    }

    /// Writes the new content of a file of a mount whole beside it ([`Staged`]); the file
    /// itself is not changed yet.
    fn stage_mounted<'a>(
        &self,
        p: &VPath,
        m: Arc<Mount>,
        rel: PathBuf,
        mut src: Source<'a>,
    ) -> VResult<Staged<'a>> {
        let Some(parent) = p.parent() else {
            return Err(VfsError::IsDir("/".into()));
        };
        if rel == Path::new(".") {
            return Err(VfsError::IsDir(p.to_string()));
        }
        guard_home_written(self, p, &m, &rel)?;
        let dir = m.dir()?;
        // A symlink is written through to its target, which must be inside the jail;
        // the link stays a link.
        let rel = match dir.symlink_metadata(&rel) {
            Ok(md) if md.file_type().is_symlink() => {
                dir.canonicalize(&rel).map_err(|e| host_err(p, e))?
            }
            _ => rel,
        };
        let existing = dir.metadata(&rel).ok();
        if existing.as_ref().is_some_and(|md| md.is_dir()) {
            return Err(VfsError::IsDir(p.to_string()));
        }
        if let Some(md) = &existing {
            not_special(p, md)?;
        }
        let parent_rel = rel.parent().map(Path::to_path_buf).unwrap_or_default();
        let parent_rel = if parent_rel.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            parent_rel
        };
        match dir.metadata(&parent_rel) {
            Ok(md) if md.is_dir() => {}
            Ok(_) => return Err(VfsError::NotDir(parent.to_string())),
            Err(e) => return Err(host_err(&parent, e)),
        }
        let name = rel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (tmp, mut f) = match new_temporary(&dir, &parent_rel, &name, existing.is_some()) {
            Ok(t) => t,
            // A folder that takes no new file (not writable by this process) may
            // hold a file that is: it is written in place, without the check
            // for room that the temporary gives.
            Err(e) if existing.is_some() && e.kind() == io::ErrorKind::PermissionDenied => {
                let how = match src {
                    Source::Bytes(data) => Finish::Direct(data),
                    Source::Reader(r) => {
                        write_in_place(&dir, &rel, r, None).map_err(|e| host_err(p, e))?;
                        Finish::Done
                    }
                };
                return Ok(Staged {
                    p: p.clone(),
                    dir,
                    rel,
                    how,
                });
            }
            Err(e) => return Err(host_err(p, e)),
        };
        // A file with other hard links is written in place, so every name keeps
        // seeing the same file. So is one whose owner or group the replacement cannot
        // be given (only root may give a file away): a rename would take the file
        // from its owner.
        let in_place = match &existing {
            None => false,
            Some(md) => {
                use cap_std::fs::MetadataExt;
                md.nlink() > 1 || keep_owner(&f, md).is_err()
            }
        };
        // The replacement keeps the old file's permissions (an executable script stays
        // executable), set after its owner (a change of owner clears set-user-ID)
        // and before its first byte, and is on disk before it replaces the old one.
        let written = (|| {
            use std::io::Write;
            if let (Some(md), false) = (&existing, in_place) {
                f.set_permissions(md.permissions())?;
            }
            match &mut src {
                Source::Bytes(data) => f.write_all(data)?,
                Source::Reader(r) => {
                    io::copy(r, &mut f)?;
                }
            }
            f.sync_all()
        })();
        drop(f);
        if let Err(e) = written {
            let _ = dir.remove_file(&tmp);
            return Err(host_err(p, e));
        }
        Ok(Staged {
            p: p.clone(),
            dir,
            rel,
            how: if in_place {
                Finish::InPlace(tmp)
            } else {
                Finish::Rename(tmp)
            },
        })
    }

    /// Appends `data` to a file, creating it if needed.
    pub fn append(&self, p: &VPath, data: &[u8]) -> VResult<()> {
        match self.locate(p) {
            Loc::Stored => self.stored_tx(|tx| {
                check_stored_size(p, data.len() as u64)?;
                stored::write_file(tx, p, data, true)
            }),
            Loc::Mounted(m, rel) => {
                use std::io::Write;
                guard_home_written(self, p, &m, &rel)?;
                let dir = m.dir()?;
                if let Ok(md) = dir.metadata(&rel) {
                    not_special(p, &md)?;
                }
                let mut opts = cap_std::fs::OpenOptions::new();
                opts.append(true).create(true);
                let mut f = dir.open_with(&rel, &opts).map_err(|e| host_err(p, e))?;
                f.write_all(data).map_err(|e| host_err(p, e))
            }
        }
    }

    pub fn read_dir(&self, p: &VPath) -> VResult<Vec<DirEntry>> {
        match self.locate(p) {
            Loc::Stored => {
                let conn = self.store.conn();
                let mut entries = stored::list_dir(&conn, p)?;
                drop(conn);
                // A mount point shows as a directory with the host directory's time.
                for e in entries.iter_mut() {
                    if e.meta.kind == Kind::Dir {
                        if let Ok(child) = p.join(&e.name) {
                            if let Some(m) = self.mount_at(&child) {
                                e.meta.mounted = true;
                                if let Ok(md) = m
                                    .dir()
                                    .and_then(|d| d.dir_metadata().map_err(|e| host_err(&child, e)))
                                {
                                    e.meta.mtime_ms = host_meta(&md).mtime_ms;
                                }
                            }
                        }
                    }
                }
                Ok(entries)
            }
            Loc::Mounted(m, rel) => {
                let dir = m.dir()?;
                let rd = dir.read_dir(&rel).map_err(|e| host_err(p, e))?;
                let mut out = Vec::new();
                for ent in rd {
                    let ent = ent.map_err(|e| host_err(p, e))?;
                    // Every name can be held (one that is not UTF-8 through stand-ins), so
                    // nothing in the folder is hidden.
                    let Ok(name) = path::host_name(&ent.file_name()) else {
                        continue;
                    };
                    let child_rel = rel.join(ent.file_name());
                    let meta = match dir.metadata(&child_rel) {
                        Ok(md) => host_meta(&md),
                        Err(_) => Meta {
                            kind: Kind::Broken,
                            size: 0,
                            mtime_ms: 0,
                            mounted: true,
                            readonly: false,
                        },
                    };
                    out.push(DirEntry { name, meta });
                }
                out.sort_by(|a, b| a.name.cmp(&b.name));
                Ok(out)
            }
        }
    }

    fn mount_at(&self, p: &VPath) -> Option<Arc<Mount>> {
        let mounts = self.mount_table().read().unwrap_or_else(|e| e.into_inner());
        mounts.iter().find(|m| &m.vpath == p).cloned()
    }

    pub fn mkdir(&self, p: &VPath, parents: bool) -> VResult<()> {
        match self.locate(p) {
            Loc::Stored => self.stored_tx(|tx| stored::mkdir(tx, p, parents).map(|_| ())),
            Loc::Mounted(m, rel) => {
                let dir = m.dir()?;
                if rel == Path::new(".") {
                    return if parents {
                        Ok(())
                    } else {
                        Err(VfsError::Exists(p.to_string()))
                    };
                }
                let r = if parents {
                    dir.create_dir_all(&rel)
                } else {
                    dir.create_dir(&rel)
                };
                r.map_err(|e| host_err(p, e))
            }
        }
    }

    /// Creates an empty file, or updates the modification time of an existing one.
    pub fn touch(&self, p: &VPath) -> VResult<()> {
        match self.locate(p) {
            Loc::Stored => self.stored_tx(|tx| stored::touch(tx, p)),
            Loc::Mounted(m, rel) => {
                let dir = m.dir()?;
                if let Ok(md) = dir.metadata(&rel) {
                    not_special(p, &md)?;
                }
                let mut opts = cap_std::fs::OpenOptions::new();
                opts.write(true).create(true);
                let f = dir.open_with(&rel, &opts).map_err(|e| host_err(p, e))?;
                f.into_std()
                    .set_modified(std::time::SystemTime::now())
                    .map_err(|e| host_err(p, e))
            }
        }
    }

    /// Removes a file, or a directory (its contents too when `recursive`).
    pub fn remove(&self, p: &VPath, recursive: bool) -> VResult<()> {
        if p.is_root() {
            return Err(VfsError::Invalid("refusing to remove '/'".into()));
        }
        if self.mount_at(p).is_some() {
            return Err(VfsError::Invalid(format!(
                "{p}: is a mount point; use 'umount {p}' to detach it"
            )));
        }
        {
            let mounts = self.mount_table().read().unwrap_or_else(|e| e.into_inner());
            if let Some(m) = mounts.iter().find(|m| m.vpath.starts_with(p)) {
                return Err(VfsError::Invalid(format!(
                    "{p}: holds the mount point {}; use 'umount {}' first",
                    m.vpath, m.vpath
                )));
            }
        }
        match self.locate(p) {
            Loc::Stored => self.stored_tx(|tx| stored::remove(tx, p, recursive)),
            Loc::Mounted(m, rel) => {
                guard_home(self, p, &m, &rel)?;
                let dir = m.dir()?;
                let md = dir.symlink_metadata(&rel).map_err(|e| host_err(p, e))?;
                let r = if md.is_dir() {
                    if recursive {
                        dir.remove_dir_all(&rel)
                    } else {
                        dir.remove_dir(&rel)
                    }
                } else {
                    dir.remove_file(&rel)
                };
                r.map_err(|e| match e.kind() {
                    io::ErrorKind::DirectoryNotEmpty => VfsError::NotEmpty(p.to_string()),
                    _ => host_err(p, e),
                })
            }
        }
    }

    /// Lists everything below `root` (not `root` itself), parents before children, crossing
    /// into mounts. Symlinks inside mounts are followed only to files inside the jail.
    pub fn walk(&self, root: &VPath) -> VResult<Vec<WalkEntry>> {
        let mut out = Vec::new();
        self.walk_with(root, &mut |e| {
            out.push(e);
            true
        })?;
        Ok(out)
    }

    /// Like [`walk`](Self::walk), handing each entry to `f` as it is found; the walk stops
    /// early when `f` returns false. Returns false when it was stopped.
    pub fn walk_with(&self, root: &VPath, f: &mut dyn FnMut(WalkEntry) -> bool) -> VResult<bool> {
        match self.locate(root) {
            Loc::Stored => {
                let mounts: Vec<Arc<Mount>> = {
                    let mounts = self.mount_table().read().unwrap_or_else(|e| e.into_inner());
                    mounts
                        .iter()
                        .filter(|m| m.vpath.starts_with(root) && &m.vpath != root)
                        .cloned()
                        .collect()
                };
                let mut failed = None;
                let mut visit = |names: &[String], kind, hash: Option<Vec<u8>>, size| -> bool {
                    let path = root.join_names(names);
                    let is_mount = kind == Kind::Dir && mounts.iter().any(|m| m.vpath == path);
                    let go_on = f(WalkEntry {
                        path: path.clone(),
                        kind,
                        size: Some(size),
                        file: hash.map(|hash| FileRef::Stored { hash }),
                        link: false,
                    });
                    if !go_on || !is_mount {
                        return go_on;
                    }
                    self.walk_with(&path, &mut *f).unwrap_or_else(|e| {
                        failed = Some(e);
                        false
                    })
                };
                let done = match self.store.reader() {
                    // A connection of its own: entries reach `f` as they are found, and `f`
                    // may use the VFS meanwhile. Read page by page, not through a memory
                    // map, whose pages would count as memory: a tree's rows lie all over
                    // the file.
                    Some(conn) => {
                        conn.pragma_update(None, "mmap_size", 0)?;
                        stored::walk_each(&conn, root, &mut visit)?
                    }
                    None => {
                        let rows = stored::walk(&self.store.conn(), root)?;
                        rows.into_iter()
                            .all(|(names, kind, hash, size)| visit(&names, kind, hash, size))
                    }
                };
                match failed {
                    Some(e) => Err(e),
                    None => Ok(done),
                }
            }
            Loc::Mounted(m, rel) => {
                let dir = m.dir()?;
                // Each directory is listed through its own handle, opened from its parent's:
                // one open per directory instead of re-resolving the whole path from the
                // mount's root every time.
                let start = if rel == Path::new(".") {
                    dir.try_clone().ok()
                } else {
                    dir.open_dir(&rel).ok()
                };
                Ok(match start {
                    Some(cur) => walk_host(&m, &dir, &cur, root, &rel, f),
                    None => true,
                })
            }
        }
    }

    /// Attaches the host directory `host` at `at` for this process only: nothing is stored,
    /// so no other process sees it and nothing is left behind when this one ends, however it
    /// ends. `at` must not exist in the store (it is not listed in its parent).
    pub fn mount_here(&self, host: &Path, at: &VPath) -> VResult<()> {
        let host =
            std::fs::canonicalize(host).map_err(|e| VfsError::Io(host.display().to_string(), e))?;
        if !host.is_dir() {
            return Err(VfsError::NotDir(host.display().to_string()));
        }
        if at.is_root() || self.mount_of(at).is_some() || self.exists(at) {
            return Err(VfsError::Exists(format!(
                "{at} (a mount for this run needs a path nothing uses)"
            )));
        }
        let handle = open_host(&host).map_err(|e| VfsError::Io(host.display().to_string(), e))?;
        let mut mounts = self
            .mount_table()
            .write()
            .unwrap_or_else(|e| e.into_inner());
        mounts.push(Arc::new(Mount::new(at.clone(), host, Some(handle))));
        Ok(())
    }

    /// Attaches the host directory `host` at `at`. The VFS path must be an empty stored
    /// directory or not exist yet.
    pub fn mount(&self, host: &Path, at: &VPath) -> VResult<()> {
        let host =
            std::fs::canonicalize(host).map_err(|e| VfsError::Io(host.display().to_string(), e))?;
        if !host.is_dir() {
            return Err(VfsError::NotDir(host.display().to_string()));
        }
        if at.is_root() {
            return Err(VfsError::Invalid("cannot mount over '/'".into()));
        }
        if let Some(m) = self.mount_of(at) {
            return Err(VfsError::Invalid(format!(
                "{at}: is inside the mount at {}; mounts cannot be nested",
                m.vpath
            )));
        }
        {
            let mounts = self.mount_table().read().unwrap_or_else(|e| e.into_inner());
            if let Some(m) = mounts.iter().find(|m| m.vpath.starts_with(at)) {
                return Err(VfsError::Invalid(format!(
                    "{at}: holds the mount point {}",
                    m.vpath
                )));
            }
        }
        match self.stat(at) {
            Ok(m) if m.kind != Kind::Dir => return Err(VfsError::NotDir(at.to_string())),
            Ok(_) => {
                if !self.read_dir(at)?.is_empty() {
                    return Err(VfsError::NotEmpty(format!(
                        "{at} (mount points must be empty directories)"
                    )));
                }
            }
            Err(VfsError::NotFound(_)) => self.mkdir(at, true)?,
            Err(e) => return Err(e),
        }
        let handle = open_host(&host).map_err(|e| VfsError::Io(host.display().to_string(), e))?;
        let host_s = host.to_str().ok_or_else(|| {
            VfsError::BadPath(
                host.display().to_string(),
                PathError::InvalidUtf8(host.display().to_string()),
            )
        })?;
        self.store.conn().execute(
            "INSERT INTO mounts (vpath, host, created_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![at.to_string(), host_s, now_ms()],
        )?;
        let mut mounts = self
            .mount_table()
            .write()
            .unwrap_or_else(|e| e.into_inner());
        mounts.push(Arc::new(Mount::new(at.clone(), host, Some(handle))));
        Ok(())
    }

    /// Detaches the mount at `at`. Nothing on the host is touched.
    pub fn umount(&self, at: &VPath) -> VResult<PathBuf> {
        let mut mounts = self
            .mount_table()
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let Some(i) = mounts.iter().position(|m| &m.vpath == at) else {
            return Err(VfsError::Invalid(format!(
                "{at}: is not a mount point (see 'mounts')"
            )));
        };
        self.store
            .conn()
            .execute("DELETE FROM mounts WHERE vpath = ?1", [at.to_string()])?;
        let m = mounts.remove(i);
        Ok(m.host.clone())
    }

    pub fn mounts(&self) -> Vec<Arc<Mount>> {
        self.mount_table()
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn stored_tx<R>(&self, f: impl FnOnce(&rusqlite::Transaction) -> VResult<R>) -> VResult<R> {
        let mut conn = self.store.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let r = f(&tx)?;
        tx.commit()?;
        Ok(r)
    }

    /// Runs many stored-tree writes in one transaction (used by import).
    pub fn batch<R>(&self, f: impl FnOnce(&mut Batch) -> VResult<R>) -> VResult<R> {
        self.stored_tx(|tx| {
            f(&mut Batch {
                tx,
                dirs: Default::default(),
            })
        })
    }
}

/// A stored entry found by [`Batch::walk`]: names relative to the root, kind, a file's hash.
pub type StoredEntry = (Vec<String>, Kind, Option<Vec<u8>>);

/// Writes into the stored tree inside one transaction. Directory ids are remembered, so a
/// tree of many files resolves each parent directory once.
pub struct Batch<'a> {
    tx: &'a rusqlite::Transaction<'a>,
    dirs: std::collections::HashMap<VPath, i64>,
}

impl Batch<'_> {
    pub fn mkdir_all(&mut self, p: &VPath) -> VResult<()> {
        self.dir_id(p).map(|_| ())
    }

    fn dir_id(&mut self, p: &VPath) -> VResult<i64> {
        if let Some(&id) = self.dirs.get(p) {
            return Ok(id);
        }
        let id = stored::mkdir(self.tx, p, true)?;
        self.dirs.insert(p.clone(), id);
        Ok(id)
    }

    /// Writes a file, creating missing parent directories.
    pub fn write(&mut self, p: &VPath, data: &[u8]) -> VResult<()> {
        check_stored_size(p, data.len() as u64)?;
        let parent = p.parent().ok_or_else(|| VfsError::IsDir("/".into()))?;
        let id = self.dir_id(&parent)?;
        stored::write_in(self.tx, id, p, data, false)
    }

    /// Whether a stored file or folder is at `p`.
    pub fn exists(&self, p: &VPath) -> VResult<bool> {
        Ok(stored::lookup(self.tx, p).ok().flatten().is_some())
    }

    /// Whether a stored folder is at `p`.
    pub fn is_dir(&self, p: &VPath) -> VResult<bool> {
        Ok(matches!(stored::lookup(self.tx, p), Ok(Some(n)) if n.kind == Kind::Dir))
    }

    /// Whether the stored folder `p` holds nothing.
    pub fn is_empty_dir(&self, p: &VPath) -> VResult<bool> {
        Ok(stored::list_dir(self.tx, p)?.is_empty())
    }

    /// Removes a stored file or folder (with what it holds).
    pub fn remove(&mut self, p: &VPath) -> VResult<()> {
        self.dirs.clear();
        stored::remove(self.tx, p, true)
    }

    /// Everything stored below `root`: names relative to it, kind, and a file's hash.
    pub fn walk(&self, root: &VPath) -> VResult<Vec<StoredEntry>> {
        Ok(stored::walk(self.tx, root)?
            .into_iter()
            .map(|(names, kind, hash, _)| (names, kind, hash))
            .collect())
    }
}

/// Creates a temporary file beside the file `name` in the folder `parent` of a mount: a name
/// nobody can guess (`.NAME.valyxo-` and 16 random hex digits), made new (`O_EXCL`, so no
/// file or link already there is used), private (0600) when it is to replace a file, else
/// with the usual mode (the umask applies).
fn new_temporary(
    dir: &Dir,
    parent: &Path,
    name: &str,
    replacing: bool,
) -> io::Result<(PathBuf, cap_std::fs::File)> {
    // Room for the rest of the name within the usual limit of 255 bytes.
    let mut end = name.len().min(200);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let stem = &name[..end];
    let mut taken = None;
    for _ in 0..16 {
        let tmp = parent.join(format!(".{stem}.valyxo-{:016x}", fastrand::u64(..)));
        let mut opts = cap_std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        {
            use cap_std::fs::OpenOptionsExt;
            opts.mode(if replacing { 0o600 } else { 0o666 });
        }
        match dir.open_with(&tmp, &opts) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => taken = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(taken.unwrap_or_else(|| io::Error::other("cannot create a temporary file")))
}

/// Gives the new file `f` the owner and group of the file `old` it is to replace, where they
/// differ (root saving someone else's file). Fails when this process may not (it is not
/// root, or not in the group).
fn keep_owner(f: &cap_std::fs::File, old: &cap_std::fs::Metadata) -> io::Result<()> {
    use cap_std::fs::MetadataExt;
    let new = f.metadata()?;
    let uid = (new.uid() != old.uid()).then_some(old.uid());
    let gid = (new.gid() != old.gid()).then_some(old.gid());
    if uid.is_none() && gid.is_none() {
        return Ok(());
    }
    std::os::unix::fs::fchown(f, uid, gid)
}

/// Writes `data` over the file `rel` in place: its inode, other names, owner, group and mode
/// stay. A failure halfway (a full disk) would leave the file cut short, and putting the old
/// content back would need a copy of it, which needs as much room again; so room is made
/// sure of first instead. `written` is a temporary file that already holds `data` whole and
/// synced: that it could be written shows the bytes fit, and it is removed just before the
/// file is written over, which gives that room back for the write (which needs no more),
/// short of another program filling the disk in between. The file is opened first, so a
/// file that cannot be written is left as it was.
fn write_in_place(
    dir: &Dir,
    rel: &Path,
    data: &mut dyn Read,
    written: Option<&Path>,
) -> io::Result<()> {
    let mut opts = cap_std::fs::OpenOptions::new();
    opts.write(true);
    let opened = dir.open_with(rel, &opts);
    if let Some(tmp) = written {
        let _ = dir.remove_file(tmp);
    }
    let mut f = opened?;
    f.set_len(0)?;
    io::copy(data, &mut f)?;
    f.sync_all()
}

/// Why [`Vfs::write_all`] failed, and the files it had written by then: none, unless the
/// failure came as they took their places.
#[derive(Debug)]
pub struct WriteAllError {
    pub error: VfsError,
    pub written: Vec<VPath>,
}

/// The new content of a file of a mount, written whole (and synced) but not yet in the
/// file's place: [`finish`](Staged::finish) puts it there, [`discard`](Staged::discard)
/// leaves the file as it was.
struct Staged<'a> {
    p: VPath,
    dir: Arc<Dir>,
    rel: PathBuf,
    how: Finish<'a>,
}

/// How a [`Staged`] write takes its file's place.
enum Finish<'a> {
    /// The temporary is renamed over the file.
    Rename(PathBuf),
    /// The file is written over in place from the temporary, which then goes (a file with
    /// other hard links, or one whose owner the temporary could not be given).
    InPlace(PathBuf),
    /// The file is written over in place from these bytes (it is in a folder that takes no
    /// new file from this process).
    Direct(&'a [u8]),
    /// Already written (in place, from a stream that could only be read once).
    Done,
}

impl Staged<'_> {
    fn finish(self) -> VResult<()> {
        let Staged { p, dir, rel, how } = self;
        match how {
            Finish::Rename(tmp) => dir.rename(&tmp, &dir, &rel).map_err(|e| {
                let _ = dir.remove_file(&tmp);
                host_err(&p, e)
            }),
            // The content is read back from the temporary (its room comes back once
            // written).
            Finish::InPlace(tmp) => dir
                .open(&tmp)
                .and_then(|t| write_in_place(&dir, &rel, &mut t.into_std(), Some(&tmp)))
                .map_err(|e| {
                    let _ = dir.remove_file(&tmp);
                    host_err(&p, e)
                }),
            Finish::Direct(data) => {
                write_in_place(&dir, &rel, &mut &data[..], None).map_err(|e| host_err(&p, e))
            }
            Finish::Done => Ok(()),
        }
    }

    fn discard(self) {
        if let Finish::Rename(tmp) | Finish::InPlace(tmp) = &self.how {
            let _ = self.dir.remove_file(tmp);
        }
    }
}

/// The content of a write: in memory, or read as it is written.
enum Source<'a> {
    Bytes(&'a [u8]),
    Reader(&'a mut dyn Read),
}

pub(crate) fn check_stored_size(p: &VPath, len: u64) -> VResult<()> {
    let max = max_stored_file();
    if len > max {
        return Err(VfsError::Invalid(format!(
            "{p}: {len} bytes is more than the stored tree takes ({}; setting \
             vfs.max_file_size); keep files this large in a mounted host directory",
            crate::budget::human(max as usize)
        )));
    }
    Ok(())
}

/// The entries of a host folder, in name order.
type HostEntries = std::vec::IntoIter<(std::ffi::OsString, cap_std::fs::DirEntry)>;

/// The entries of the host folder `d`, in name order; `None` when it cannot be read.
fn host_entries(d: &Dir) -> Option<HostEntries> {
    let rd = d.entries().ok()?;
    let mut ents: Vec<_> = rd
        .filter_map(Result::ok)
        .map(|e| (e.file_name(), e))
        .collect();
    ents.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Some(ents.into_iter())
}

/// Walks the host folder `cur` (at `vbase` in the VFS, `rel` in the mount `m`, whose root
/// is `dir`). The folders being walked are kept on a list, each with its own handle, not on
/// the call stack, so a host tree of any depth is walked without running out of stack.
/// Returns whether the walk should go on.
fn walk_host(
    m: &Arc<Mount>,
    dir: &Dir,
    cur: &Dir,
    vbase: &VPath,
    rel: &Path,
    f: &mut dyn FnMut(WalkEntry) -> bool,
) -> bool {
    // Each folder being walked: its handle (kept open while its entries are), its entries
    // not handed on yet, its VFS path and its path in the mount.
    let Some(first) = host_entries(cur) else {
        return true;
    };
    let mut open: Vec<(Option<Dir>, HostEntries, VPath, PathBuf)> =
        vec![(None, first, vbase.clone(), rel.to_path_buf())];
    while let Some((_, ents, vbase, rel)) = open.last_mut() {
        let Some((raw, ent)) = ents.next() else {
            open.pop();
            continue;
        };
        let Ok(name) = path::host_name(&raw) else {
            continue;
        };
        let Ok(vpath) = vbase.join(&name) else {
            continue;
        };
        let child_rel = if rel.as_path() == Path::new(".") {
            PathBuf::from(&raw)
        } else {
            rel.join(&raw)
        };
        let Ok(ft) = ent.file_type() else { continue };
        let mounted = |rel: PathBuf| {
            Some(FileRef::Mounted {
                mount: m.clone(),
                rel,
            })
        };
        let entry = if ft.is_dir() {
            // Listed before it is handed on: a folder that cannot be listed (no permission)
            // is handed on as `Broken`, not a link, so that a copy or a move names it
            // instead of passing over what it holds without a word.
            let listed = ent
                .open_dir()
                .ok()
                .and_then(|child| host_entries(&child).map(|ents| (child, ents)));
            match listed {
                Some((child, ents)) => {
                    let go_on = f(WalkEntry {
                        path: vpath.clone(),
                        kind: Kind::Dir,
                        size: None,
                        file: None,
                        link: false,
                    });
                    if !go_on {
                        return false;
                    }
                    open.push((Some(child), ents, vpath, child_rel));
                    continue;
                }
                None => WalkEntry {
                    path: vpath,
                    kind: Kind::Broken,
                    size: None,
                    file: None,
                    link: false,
                },
            }
        } else if ft.is_file() {
            // No stat per file: the size is learnt when the file is read.
            WalkEntry {
                path: vpath,
                kind: Kind::File,
                size: None,
                file: mounted(child_rel),
                link: false,
            }
        } else if ft.is_symlink() {
            // Followed only to a file inside the jail; never into a folder.
            match dir.metadata(&child_rel) {
                Ok(md) if md.is_file() => WalkEntry {
                    path: vpath,
                    kind: Kind::File,
                    size: Some(md.len()),
                    file: mounted(child_rel),
                    link: true,
                },
                Ok(md) => WalkEntry {
                    path: vpath,
                    kind: host_meta(&md).kind,
                    size: None,
                    file: None,
                    link: true,
                },
                Err(_) => WalkEntry {
                    path: vpath,
                    kind: Kind::Broken,
                    size: None,
                    file: None,
                    link: true,
                },
            }
        } else {
            WalkEntry {
                path: vpath,
                kind: Kind::Special,
                size: None,
                file: None,
                link: false,
            }
        };
        if !f(entry) {
            return false;
        }
    }
    true
}

/// What [`RefReader::read`] gives.
pub enum Content<'a> {
    Whole(&'a [u8]),
    Stream(Box<dyn Read + Send>),
}

/// Reads walked files into one reused buffer: stored blobs through a private read-only
/// connection (no contention for the shared one), mounted files with one open and one read.
pub struct RefReader<'a> {
    vfs: &'a Vfs,
    conn: Option<rusqlite::Connection>,
    buf: Vec<u8>,
    /// Bytes read through the connection's memory map since it was last let go.
    mapped: u64,
}

/// After this many bytes a reader lets go of its connection's memory map: the pages it
/// touched count as the process's memory until then, and a search of a large tree would
/// otherwise hold the whole store file that way.
const MAP_RELEASE_EVERY: u64 = 2 << 20;

/// Blobs from this size on are read through a blob handle, straight into the reader's
/// buffer; a query would first gather the blob in a buffer of SQLite's own.
const BLOB_HANDLE_FROM: u64 = 16 << 10;

impl RefReader<'_> {
    /// The content of `r`: whole, or for a file longer than `whole_up_to` bytes, a reader
    /// over all of it (for a host file, the part read so far and then the rest).
    pub fn read(&mut self, path: &VPath, r: &FileRef, whole_up_to: u64) -> VResult<Content<'_>> {
        self.buf.clear();
        match (r, &self.conn) {
            (FileRef::Stored { hash }, Some(conn)) => {
                let (rowid, size): (i64, i64) = conn
                    .prepare_cached("SELECT rowid, size FROM blobs WHERE hash = ?1")?
                    .query_row([hash], |row| Ok((row.get(0)?, row.get(1)?)))
                    .optional()?
                    .ok_or_else(|| VfsError::NotFound(path.to_string()))?;
                let size = size as u64;
                if size > whole_up_to {
                    return self.vfs.blob_reader(path, hash, size).map(Content::Stream);
                }
                if size < BLOB_HANDLE_FROM {
                    let buf = &mut self.buf;
                    conn.prepare_cached("SELECT data FROM blobs WHERE rowid = ?1")?
                        .query_row([rowid], |row| {
                            buf.extend_from_slice(row.get_ref(0)?.as_blob()?);
                            Ok(())
                        })?;
                } else {
                    let mut blob =
                        conn.blob_open(rusqlite::MAIN_DB, "blobs", "data", rowid, true)?;
                    blob.read_to_end(&mut self.buf)
                        .map_err(|e| VfsError::Io(path.to_string(), e))?;
                }
                self.mapped += size;
                if self.mapped > MAP_RELEASE_EVERY {
                    self.mapped = 0;
                    crate::store::release_map(conn);
                }
            }
            (FileRef::Stored { .. }, None) => self.buf = self.vfs.read_ref(path, r)?,
            (FileRef::Mounted { mount, rel }, _) => {
                let mut f = open_host_file(&*mount.dir()?, rel, path)?;
                // Through `take`, read_to_end skips File's own size probe (fstat + lseek).
                (&mut f)
                    .take(whole_up_to + 1)
                    .read_to_end(&mut self.buf)
                    .map_err(|e| host_err(path, e))?;
                if self.buf.len() as u64 > whole_up_to {
                    let head = io::Cursor::new(std::mem::take(&mut self.buf));
                    return Ok(Content::Stream(Box::new(head.chain(f))));
                }
            }
        }
        Ok(Content::Whole(&self.buf))
    }
}

#[cfg(test)]
mod tests;
