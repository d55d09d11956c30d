//! The checkout `exec` runs a host program in (foundation, VFS): a stored project copied to a
//! folder of the Valyxo home that only the user can read (`checkouts/NAME`, 0700 folders and
//! 0600 files), with a manifest of what it started with.
//!
//! When the program ends, only what the *program* changed goes back: a three-way comparison
//! of the checkout's start (the manifest), the checkout now, and the VFS now
//! ([`crate::merge`]). Files created or edited in the VFS meanwhile — by another valyxo, the
//! editor, a job — stay; when both the program and something else changed a file, both are
//! kept: the VFS's version keeps the name and the program's is written beside it as
//! `NAME (conflict exec DATE).EXT`. The comparison and the writes happen in one transaction,
//! so nothing can slip in between.
//!
//! A checkout whose valyxo ended before writing it back (killed, or the machine went down)
//! stays in `checkouts/` with its manifest; [`pending`] finds such checkouts, and they can be
//! written back (by the same three-way rule) or discarded later.

use super::{path as vpath, Kind, VPath, Vfs, VfsError};
use crate::merge::{self, Act, Side};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// What a checkout started with, kept beside it.
#[derive(Serialize, Deserialize, Debug)]
struct Manifest {
    /// The stored directory checked out.
    root: String,
    /// The process that made it.
    pid: u32,
    /// When (milliseconds since the epoch).
    started: i64,
    /// The program run in it.
    program: String,
    /// Each file checked out, by path relative to the root, with its BLAKE3 hash (hex).
    files: BTreeMap<String, String>,
    /// Each folder checked out.
    dirs: BTreeSet<String>,
}

/// A stored directory checked out to the host for a program.
pub struct Checkout {
    /// `checkouts/NAME`: the manifest and `work/`.
    home: PathBuf,
    /// Where the files are (the program's working tree).
    pub work: PathBuf,
    pub root: VPath,
    manifest: Manifest,
}

/// What writing a checkout back did.
#[derive(Debug, Default)]
pub struct WriteBack {
    pub written: usize,
    pub deleted: usize,
    /// (path, where the program's version was kept) for files both sides changed.
    pub kept_both: Vec<(String, String)>,
    /// Deletions by the program of files changed meanwhile: the change stays.
    pub kept_changes: Vec<String>,
    /// Names the program made that cannot be stored (shown escaped).
    pub skipped: Vec<String>,
}

impl WriteBack {
    /// One line for the user, when anything deserves saying (nothing for a plain run).
    pub fn notes(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (path, copy) in &self.kept_both {
            out.push(format!(
                "{path} changed in the VFS while the program ran, and the program changed it \
                 too: the program's version is kept as '{copy}'"
            ));
        }
        for path in &self.kept_changes {
            out.push(format!(
                "{path} changed in the VFS while the program ran, so the program's deletion of \
                 it was not applied"
            ));
        }
        for s in &self.skipped {
            out.push(format!("{s}: not written back"));
        }
        out
    }
}

/// The folder of checkouts in a Valyxo home.
pub fn checkouts_dir(home: &Path) -> PathBuf {
    home.join("checkouts")
}

fn private_dir(p: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
}

fn private_file(p: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(p)?;
    f.write_all(data)
}

/// Files a checkout of `root` would hold, with their total size.
pub fn measure(vfs: &Vfs, root: &VPath) -> Result<(usize, u64)> {
    let (mut files, mut bytes) = (0, 0);
    vfs.walk_with(root, &mut |e| {
        if e.kind == Kind::File && vfs.mount_of(&e.path).is_none() {
            files += 1;
            bytes += e.size.unwrap_or(0);
        }
        true
    })?;
    Ok((files, bytes))
}

impl Checkout {
    /// Copies the stored directory `root` into a new private checkout under `home`; with
    /// `shallow`, only the files directly in it (for a folder that holds projects).
    pub fn create(
        vfs: &Vfs,
        home: &Path,
        root: &VPath,
        program: &str,
        shallow: bool,
    ) -> Result<Checkout> {
        let base = checkouts_dir(home);
        private_dir(&base).with_context(|| format!("cannot create {}", base.display()))?;
        let started = crate::store::now_ms();
        // Two execs of one process may start in the same millisecond (a job and the line
        // after it): the name is claimed by creating it, and a taken one moves to the next.
        let mut n = 0u32;
        let dir = loop {
            let dir = base.join(format!("exec-{}-{started}-{n}", std::process::id()));
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => break dir,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create {}", dir.display()))
                }
            }
        };
        let work = dir.join("work");
        let mut manifest = Manifest {
            root: root.to_string(),
            pid: std::process::id(),
            started,
            program: program.to_string(),
            files: BTreeMap::new(),
            dirs: BTreeSet::new(),
        };
        let made = (|| -> Result<()> {
            private_dir(&work)?;
            for ent in vfs.walk(root)? {
                if vfs.mount_of(&ent.path).is_some() {
                    continue; // the program reaches mounts on the host directly
                }
                let names = ent.path.strip_prefix(root).unwrap_or(&[]);
                if shallow && (names.len() > 1 || ent.kind != Kind::File) {
                    continue;
                }
                let rel = names.join("/");
                let target = work.join(names.iter().collect::<PathBuf>());
                match (ent.kind, &ent.file) {
                    (Kind::Dir, _) => {
                        private_dir(&target)?;
                        manifest.dirs.insert(rel);
                    }
                    (Kind::File, Some(r)) => {
                        let data = vfs.read_ref(&ent.path, r)?;
                        private_file(&target, &data)
                            .with_context(|| format!("cannot write {}", target.display()))?;
                        manifest
                            .files
                            .insert(rel, blake3::hash(&data).to_hex().to_string());
                    }
                    _ => {}
                }
            }
            Ok(())
        })();
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e.context(format!("cannot check out {root} for the program")));
        }
        let c = Checkout {
            home: dir,
            work,
            root: root.clone(),
            manifest,
        };
        c.save_manifest()?;
        Ok(c)
    }

    /// Writes the manifest whole: a temporary file under a name nobody can guess, made new
    /// and private (0600) from its first byte, renamed over the old one.
    fn save_manifest(&self) -> Result<()> {
        use std::io::Write;
        let data = serde_json::to_vec(&self.manifest)?;
        crate::os::replace_file(&self.home.join("manifest.json"), 0o600, |f| {
            f.write_all(&data)
        })?;
        Ok(())
    }

    /// Opens a checkout left in `dir`.
    fn open(dir: &Path) -> Result<Checkout> {
        let text = std::fs::read(dir.join("manifest.json"))
            .with_context(|| format!("{} has no manifest", dir.display()))?;
        let manifest: Manifest = serde_json::from_slice(&text)
            .with_context(|| format!("{}: the manifest cannot be read", dir.display()))?;
        let root = VPath::parse_absolute(&manifest.root)?;
        Ok(Checkout {
            home: dir.to_path_buf(),
            work: dir.join("work"),
            root,
            manifest,
        })
    }

    /// The checkout's name (the folder under `checkouts/`).
    pub fn name(&self) -> String {
        self.home
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Brings the program's changes into the VFS by the three-way rule; see the module.
    pub fn write_back(&self, vfs: &Vfs) -> Result<WriteBack> {
        let mut report = WriteBack::default();
        // The program's tree now, read before the transaction.
        let mut now_files: BTreeMap<String, (String, PathBuf)> = BTreeMap::new();
        let mut now_dirs: BTreeSet<String> = BTreeSet::new();
        scan(
            &self.work,
            &mut Vec::new(),
            &mut now_files,
            &mut now_dirs,
            &mut report,
        )?;
        let root = &self.root;
        let started = &self.manifest;
        vfs.batch(|b| {
            // The VFS now, inside the transaction that writes.
            let mut vfs_files: BTreeMap<String, String> = BTreeMap::new();
            if b.is_dir(root)? {
                for (names, kind, hash) in b.walk(root)? {
                    let p = root.join_names(&names);
                    if kind == Kind::File && vfs.mount_of(&p).is_none() {
                        vfs_files.insert(names.join("/"), hex(hash.as_deref()));
                    }
                }
            }
            // This side: the program's tree. The other side: the VFS, whose "version" is 1
            // while it holds what the checkout started with and 2 once it changed.
            let local: BTreeMap<String, String> = now_files
                .iter()
                .map(|(p, (h, _))| (p.clone(), h.clone()))
                .collect();
            let base: BTreeMap<String, Side> = started
                .files
                .iter()
                .map(|(p, h)| {
                    (
                        p.clone(),
                        Side {
                            hash: Some(h.clone()),
                            version: 1,
                            size: 0,
                        },
                    )
                })
                .collect();
            let mut remote: BTreeMap<String, Side> = BTreeMap::new();
            for p in vfs_files.keys().chain(started.files.keys()) {
                let now = vfs_files.get(p).cloned();
                let was = started.files.get(p).cloned();
                let version = if now == was { 1 } else { 2 };
                remote.insert(
                    p.clone(),
                    Side {
                        hash: now,
                        version,
                        size: 0,
                    },
                );
            }
            let stamp_taken = |c: &str, planned: &BTreeMap<String, ()>| {
                merge::occupies(&local, c)
                    || merge::occupies(&remote, c)
                    || merge::occupies(planned, c)
            };
            let mut planned: BTreeMap<String, ()> = BTreeMap::new();
            let acts = merge::plan(&local, &base, &remote, &mut |path| {
                let name = merge::conflict_name(path, "exec", &|c| stamp_taken(c, &planned));
                planned.insert(name.clone(), ());
                name
            });
            let target = |rel: &str| {
                root.join_names(&rel.split('/').map(str::to_string).collect::<Vec<_>>())
            };
            let content = |rel: &str| -> Result<Vec<u8>, VfsError> {
                let hp = &now_files[rel].1;
                std::fs::read(hp).map_err(|e| VfsError::Io(hp.display().to_string(), e))
            };
            // Nothing goes into a mount inside the project: the program reached those on the
            // host itself.
            let mounted = |rel: &str| vfs.mount_of(&target(rel)).is_some();
            // Deletions first: a file may take the place of a folder the program removed.
            for a in &acts {
                if let Act::Push {
                    path, hash: None, ..
                } = a
                {
                    let p = target(path);
                    if !mounted(path) && b.exists(&p)? {
                        b.remove(&p)?;
                        report.deleted += 1;
                    }
                }
            }
            for a in &acts {
                match a {
                    Act::Push { path, .. } | Act::Conflict { path, .. } if mounted(path) => {
                        report.skipped.push(format!("{path}: inside a mount"));
                    }
                    Act::Push {
                        path,
                        hash: Some(_),
                        ..
                    } => {
                        b.write(&target(path), &content(path)?)?;
                        report.written += 1;
                    }
                    Act::Conflict { path, copy, .. } => {
                        b.write(&target(copy), &content(path)?)?;
                        report.kept_both.push((path.clone(), copy.clone()));
                    }
                    Act::Move { from, to, .. } => {
                        b.write(&target(to), &content(from)?)?;
                        report.kept_both.push((from.clone(), to.clone()));
                    }
                    // Deleted by the program, changed meanwhile: the change stays.
                    Act::Pull {
                        path,
                        hash: Some(_),
                        local: None,
                        ..
                    } => report.kept_changes.push(path.clone()),
                    _ => {}
                }
            }
            // Folders the program made (empty ones too), and those it removed that nothing
            // else put a file in.
            for d in now_dirs.difference(&started.dirs) {
                let p = target(d);
                if !mounted(d) && !b.exists(&p)? {
                    b.mkdir_all(&p)?;
                }
            }
            for d in started
                .dirs
                .difference(&now_dirs)
                .collect::<Vec<_>>()
                .iter()
                .rev()
            {
                let p = target(d);
                if b.is_dir(&p)? && b.is_empty_dir(&p)? && vfs.mount_of(&p).is_none() {
                    b.remove(&p)?;
                }
            }
            Ok(())
        })?;
        Ok(report)
    }

    /// Deletes the checkout from the host.
    pub fn discard(self) -> Result<()> {
        std::fs::remove_dir_all(&self.home)
            .with_context(|| format!("cannot delete {}", self.home.display()))
    }

    /// When it was made, and the program.
    pub fn describe(&self) -> String {
        let when = chrono::DateTime::from_timestamp_millis(self.manifest.started)
            .map(|t| {
                t.with_timezone(&chrono::Local)
                    .format("%Y-%m-%d %H:%M")
                    .to_string()
            })
            .unwrap_or_default();
        format!(
            "{}: a checkout of {} for '{}', from {when}",
            self.name(),
            self.root.display_tilde(),
            crate::text::escape(&self.manifest.program)
        )
    }
}

/// The hex of a stored file's hash (an empty file stores none).
fn hex(hash: Option<&[u8]>) -> String {
    match hash.and_then(|h| <[u8; 32]>::try_from(h).ok()) {
        Some(h) => blake3::Hash::from_bytes(h).to_hex().to_string(),
        None => blake3::hash(b"").to_hex().to_string(),
    }
}

/// Lists the program's tree: files with their hashes, and folders. Symlinks and other
/// special files are not written back, and neither are names the VFS cannot hold; each is
/// reported.
fn scan(
    root: &Path,
    rel: &mut Vec<String>,
    files: &mut BTreeMap<String, (String, PathBuf)>,
    dirs: &mut BTreeSet<String>,
    report: &mut WriteBack,
) -> Result<()> {
    let dir = root.join(rel.iter().collect::<PathBuf>());
    let rd = std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for ent in rd {
        let ent = ent.with_context(|| format!("cannot read {}", dir.display()))?;
        let shown = {
            let mut whole = rel.clone();
            whole.push(vpath::host_name(&ent.file_name()).unwrap_or_default());
            crate::text::escape(&whole.join("/")).into_owned()
        };
        let name = match vpath::host_name(&ent.file_name()) {
            Ok(n) => n,
            Err(e) => {
                report.skipped.push(format!("{shown}: {e}"));
                continue;
            }
        };
        if let Some(why) = vpath::stored_problem(&name) {
            report.skipped.push(format!("{shown}: {why}"));
            continue;
        }
        let ft = ent.file_type()?;
        rel.push(name);
        let r = rel.join("/");
        if ft.is_dir() {
            dirs.insert(r);
            scan(root, rel, files, dirs, report)?;
        } else if ft.is_file() {
            let data = std::fs::read(ent.path())
                .with_context(|| format!("cannot read {}", ent.path().display()))?;
            files.insert(r, (blake3::hash(&data).to_hex().to_string(), ent.path()));
        } else {
            report.skipped.push(format!(
                "{shown}: a symlink or special file the VFS cannot hold"
            ));
        }
        rel.pop();
    }
    Ok(())
}

/// Whether the process `pid` is alive and is a valyxo.
fn valyxo_alive(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains("valyxo"))
        .unwrap_or(false)
}

/// Checkouts whose valyxo ended before writing them back, oldest first.
pub fn pending(home: &Path) -> Vec<Checkout> {
    let mut v: Vec<Checkout> = std::fs::read_dir(checkouts_dir(home))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| Checkout::open(&e.path()).ok())
        .filter(|c| c.manifest.pid != std::process::id() && !valyxo_alive(c.manifest.pid))
        .collect();
    v.sort_by_key(|c| c.manifest.started);
    v
}

/// The left-behind checkout called `name` (or the only one when `name` is None).
pub fn find_pending(home: &Path, name: Option<&str>) -> Result<Checkout> {
    let all = pending(home);
    match name {
        Some(n) => all.into_iter().find(|c| c.name() == n).ok_or_else(|| {
            anyhow::anyhow!("no checkout '{n}' is waiting ('exec --pending' lists them)")
        }),
        None => match all.len() {
            0 => bail!("no checkout is waiting to be written back"),
            1 => Ok(all.into_iter().next().expect("one")),
            n => bail!("{n} checkouts are waiting: name one ('exec --pending' lists them)"),
        },
    }
}
