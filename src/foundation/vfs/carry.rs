//! Copies and moves that cross between the stored tree and a mount, or between two mounts
//! (`cp`, `mv` and the script API's `cp`, `mv`). Within the stored tree a copy only adds
//! rows that share the blobs, and within one mount a move is the host's rename; everything
//! else is carried file by file, streamed, so a large file is never held in memory.
//!
//! Nothing is lost on the way. What cannot be carried — a symlink, a fifo, socket or device,
//! a name the stored tree does not take — is left where it is and reported, one line per
//! entry. A move removes from the source only the files that arrived whole and did not
//! change while they were carried, then the folders that are left empty; a folder that
//! still holds something stays, with it.

use super::{path, FileRef, Kind, Loc, VPath, VResult, Vfs, VfsError};
use std::time::SystemTime;

/// What a copy or move did not carry: each entry, shown escaped, with the reason.
#[derive(Debug, Default)]
pub struct Leftovers(pub Vec<String>);

impl Leftovers {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// One line per entry, then [`summary`](Self::summary).
    pub fn describe(&self, moving: bool) -> String {
        let mut s = self.0.join("\n");
        s.push('\n');
        s.push_str(&self.summary(moving));
        s
    }

    /// How many entries were left, and for a move that they are still at the source.
    pub fn summary(&self, moving: bool) -> String {
        let n = self.0.len();
        format!(
            "{n} entr{} not {}",
            if n == 1 { "y was" } else { "ies were" },
            if moving {
                "moved; they are still where they were"
            } else {
                "copied"
            }
        )
    }
}

/// What a file was when it was read, so a move removes it only if it is still that.
enum Stamp {
    Stored(Option<Vec<u8>>),
    Host {
        len: u64,
        modified: Option<SystemTime>,
    },
}

impl Vfs {
    /// Copies `from` to `to` (the full destination path). Folders need `recursive`. A link
    /// named as `from` is followed; links inside a folder are not carried (see the module).
    pub fn copy(&self, from: &VPath, to: &VPath, recursive: bool) -> VResult<Leftovers> {
        let meta = self.stat(from)?;
        if meta.kind == Kind::Dir && !recursive {
            return Err(VfsError::IsDir(format!(
                "{from} (use -r to copy directories)"
            )));
        }
        if meta.kind == Kind::Dir && to.starts_with(from) {
            return Err(VfsError::Invalid(format!(
                "cannot copy '{from}' into itself ('{to}')"
            )));
        }
        if let (Loc::Stored, Loc::Stored) = (self.locate(from), self.locate(to)) {
            if !self.holds_mount(from) {
                // Content-addressed: a stored copy only adds tree rows that share the blobs.
                self.stored_tx(|tx| super::stored::copy(tx, from, to))?;
                return Ok(Leftovers::default());
            }
        }
        self.carry(from, to, false)
    }

    /// Moves `from` to `to` (the full destination path); see the module for what a move
    /// across the stored tree and a mount leaves behind.
    pub fn rename(&self, from: &VPath, to: &VPath) -> VResult<Leftovers> {
        if from.is_root() || self.mount_at(from).is_some() {
            return Err(VfsError::Invalid(format!(
                "{from}: cannot move the root or a mount point"
            )));
        }
        if to.starts_with(from) && to != from {
            return Err(VfsError::Invalid(format!(
                "cannot move '{from}' into itself ('{to}')"
            )));
        }
        match (self.locate(from), self.locate(to)) {
            (Loc::Stored, Loc::Stored) if !self.holds_mount(from) => {
                self.stored_tx(|tx| super::stored::rename(tx, from, to))?;
                Ok(Leftovers::default())
            }
            (Loc::Mounted(a, ra), Loc::Mounted(b, rb)) if std::sync::Arc::ptr_eq(&a, &b) => {
                super::guard_home(self, from, &a, &ra)?;
                super::guard_home(self, to, &b, &rb)?;
                let dir = a.dir()?;
                dir.rename(&ra, &dir, &rb)
                    .map_err(|e| super::host_err(from, e))?;
                Ok(Leftovers::default())
            }
            (Loc::Stored, _) if self.holds_mount(from) => Err(VfsError::Invalid(format!(
                "{from}: holds a mount point; use 'umount' first"
            ))),
            _ => {
                if let Loc::Mounted(m, rel) = self.locate(from) {
                    super::guard_home(self, from, &m, &rel)?;
                }
                if let Some(what) = self.odd_kind(from)? {
                    return Err(VfsError::Invalid(format!(
                        "{from}: is {what}, which cannot be moved out of its mount"
                    )));
                }
                self.carry(from, to, true)
            }
        }
    }

    /// Whether a mount point lies below `p`.
    fn holds_mount(&self, p: &VPath) -> bool {
        let mounts = self.mount_table().read().unwrap_or_else(|e| e.into_inner());
        mounts
            .iter()
            .any(|m| m.vpath.starts_with(p) && &m.vpath != p)
    }

    /// What a path in a mount is when it is a link or a special file, which a move cannot
    /// carry.
    fn odd_kind(&self, p: &VPath) -> VResult<Option<&'static str>> {
        let Loc::Mounted(m, rel) = self.locate(p) else {
            return Ok(None);
        };
        let md = m
            .dir()?
            .symlink_metadata(&rel)
            .map_err(|e| super::host_err(p, e))?;
        Ok(if md.is_symlink() {
            Some("a symlink")
        } else if !md.is_dir() && !md.is_file() {
            Some("a fifo, socket or device")
        } else {
            None
        })
    }

    /// Copies `from` to `to` file by file, and with `moving` removes what arrived.
    fn carry(&self, from: &VPath, to: &VPath, moving: bool) -> VResult<Leftovers> {
        let to_stored = matches!(self.locate(to), Loc::Stored);
        if to_stored {
            if let Some(why) = path::stored_problem(to.name().unwrap_or_default()) {
                return Err(VfsError::Invalid(format!(
                    "{}: {why}",
                    crate::text::escape(&to.to_string())
                )));
            }
        }
        let meta = self.stat(from)?;
        let mut left = Leftovers::default();
        match meta.kind {
            Kind::File => {
                let stamp = self.stamp(from, None)?;
                let r = self.file_ref(from)?;
                self.copy_file(from, &r, to)?;
                if moving && !self.remove_if_same(from, &stamp)? {
                    left.0.push(changed(from));
                }
                return Ok(left);
            }
            Kind::Special | Kind::Broken => {
                return Err(VfsError::Invalid(format!(
                    "{from}: is a fifo, socket or device, which cannot be copied"
                )))
            }
            Kind::Dir => {}
        }
        // A folder moves onto nothing or an empty folder, as a rename does: one that holds
        // anything is not merged into, which would write over its files.
        if moving {
            match self.stat(to) {
                Err(VfsError::NotFound(_)) => {}
                Ok(m) if m.kind == Kind::Dir && self.read_dir(to)?.is_empty() => {}
                Ok(_) => return Err(VfsError::Exists(to.to_string())),
                Err(e) => return Err(e),
            }
        }
        self.mkdir(to, false).or_else(|e| match e {
            VfsError::Exists(_) if self.is_dir(to) => Ok(()),
            e => Err(e),
        })?;
        let mut dirs = vec![from.clone()];
        let mut carried = Vec::new();
        // Folders left out, with all they hold.
        let mut passed: Vec<VPath> = Vec::new();
        for ent in self.walk(from)? {
            if passed.iter().any(|d| ent.path.starts_with(d)) {
                continue;
            }
            let rel = ent.path.strip_prefix(from).unwrap_or(&[]).to_vec();
            let dst = to.join_names(&rel);
            let why = if ent.link {
                Some("a symlink, which is not carried")
            } else {
                match ent.kind {
                    Kind::Special => Some("a fifo, socket or device, which is not carried"),
                    Kind::Broken => Some("a folder that cannot be read, which is not carried"),
                    _ if to_stored => path::stored_problem(ent.path.name().unwrap_or_default()),
                    _ => None,
                }
            };
            if let Some(why) = why {
                let shown = crate::text::escape(&ent.path.to_string()).into_owned();
                if ent.kind == Kind::Dir && !ent.link {
                    passed.push(ent.path.clone());
                    left.0
                        .push(format!("{shown}: {why} (nor is anything in it)"));
                } else {
                    left.0.push(format!("{shown}: {why}"));
                }
                continue;
            }
            match (ent.kind, &ent.file) {
                (Kind::Dir, _) => {
                    self.mkdir(&dst, true)?;
                    dirs.push(ent.path);
                }
                (Kind::File, Some(r)) => {
                    let stamp = self.stamp(&ent.path, Some(r))?;
                    self.copy_file(&ent.path, r, &dst)?;
                    carried.push((ent.path, stamp));
                }
                _ => {}
            }
        }
        if moving {
            for (p, stamp) in &carried {
                if !self.remove_if_same(p, stamp)? {
                    left.0.push(changed(p));
                }
            }
            // Children before parents; a folder that still holds something stays.
            for d in dirs.iter().rev() {
                match self.remove(d, false) {
                    Ok(()) | Err(VfsError::NotEmpty(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(left)
    }

    /// Copies one file, streamed. A destination that is the source itself under another
    /// name (a hard link, a symlink to it, the same host folder through a second mount) is
    /// refused: writing it would first cut short the file being read.
    fn copy_file(&self, from: &VPath, r: &FileRef, to: &VPath) -> VResult<()> {
        if self.same_host_file(r, to)? {
            return Err(VfsError::Invalid(format!(
                "{} and {} are the same file",
                crate::text::escape(&from.to_string()),
                crate::text::escape(&to.to_string())
            )));
        }
        let mut src = self.open_ref(from, r)?;
        // Through a temporary file renamed over the destination ([`Vfs::write_from`]), not
        // written in place: a copy that fails halfway (a full disk, a killed process) leaves
        // the file it was to replace as it was.
        self.write_from(to, &mut src)
    }

    /// Whether the mounted file `r` and the path `to` are one file on the host (same device
    /// and inode, links followed inside their jails).
    fn same_host_file(&self, r: &FileRef, to: &VPath) -> VResult<bool> {
        use cap_std::fs::MetadataExt;
        let (FileRef::Mounted { mount, rel }, Loc::Mounted(m, to_rel)) = (r, self.locate(to))
        else {
            return Ok(false);
        };
        let Ok(src) = mount.dir()?.metadata(rel) else {
            return Ok(false);
        };
        Ok(m.dir()?
            .metadata(&to_rel)
            .is_ok_and(|dst| (dst.dev(), dst.ino()) == (src.dev(), src.ino())))
    }

    /// What the file `p` is now.
    fn stamp(&self, p: &VPath, r: Option<&FileRef>) -> VResult<Stamp> {
        let r = match r {
            Some(r) => r.clone(),
            None => self.file_ref(p)?,
        };
        Ok(match r {
            FileRef::Stored { hash } => Stamp::Stored(Some(hash)),
            FileRef::Mounted { mount, rel } => {
                let md = mount
                    .dir()?
                    .symlink_metadata(&rel)
                    .map_err(|e| super::host_err(p, e))?;
                Stamp::Host {
                    len: md.len(),
                    modified: md.modified().ok().map(|t| t.into_std()),
                }
            }
        })
    }

    /// Removes the file `p` if it is still what `stamp` says; returns whether it did.
    fn remove_if_same(&self, p: &VPath, stamp: &Stamp) -> VResult<bool> {
        match (self.locate(p), stamp) {
            (Loc::Stored, Stamp::Stored(hash)) => {
                self.stored_tx(|tx| match super::stored::lookup(tx, p)? {
                    Some(n) if n.kind == Kind::File && &n.hash == hash => {
                        super::stored::remove(tx, p, false)?;
                        Ok(true)
                    }
                    _ => Ok(false),
                })
            }
            (Loc::Mounted(m, rel), Stamp::Host { len, modified }) => {
                super::guard_home(self, p, &m, &rel)?;
                let dir = m.dir()?;
                let same = dir.symlink_metadata(&rel).is_ok_and(|md| {
                    md.is_file()
                        && md.len() == *len
                        && md.modified().ok().map(|t| t.into_std()) == *modified
                });
                if same {
                    dir.remove_file(&rel).map_err(|e| super::host_err(p, e))?;
                }
                Ok(same)
            }
            _ => Ok(false),
        }
    }
}

fn changed(p: &VPath) -> String {
    format!(
        "{}: changed while it was moved, so it was copied but not removed",
        crate::text::escape(&p.to_string())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn vfs() -> (tempfile::TempDir, Vfs) {
        let home = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&home.path().join("valyxo.db")).unwrap();
        (home, Vfs::new(Arc::new(store)).unwrap())
    }

    fn p(s: &str) -> VPath {
        VPath::parse_absolute(s).unwrap()
    }

    #[test]
    fn a_file_changed_after_it_was_read_is_not_removed() {
        let (_home, vfs) = vfs();
        let host = tempfile::tempdir().unwrap();
        std::fs::write(host.path().join("f"), "one").unwrap();
        vfs.mount(host.path(), &p("/m")).unwrap();
        vfs.write(&p("/s"), b"stored").unwrap();
        for (path, changed) in [("/m/f", &b"two, longer"[..]), ("/s", b"changed")] {
            let stamp = vfs.stamp(&p(path), None).unwrap();
            vfs.write(&p(path), changed).unwrap();
            assert!(!vfs.remove_if_same(&p(path), &stamp).unwrap());
            assert!(vfs.exists(&p(path)));
            let stamp = vfs.stamp(&p(path), None).unwrap();
            assert!(vfs.remove_if_same(&p(path), &stamp).unwrap());
            assert!(!vfs.exists(&p(path)));
        }
    }
}
