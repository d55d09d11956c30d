//! Copying whole trees between the host and the VFS (`import`, `export`); `exec`'s
//! checkouts are in [`super::checkout`].

use super::{path, Kind, VPath, Vfs, VfsError};
use anyhow::{bail, Context, Result};
use indicatif::ProgressBar;
use std::path::{Path, PathBuf};

/// Stored-tree writes are committed in chunks of this many bytes or files, so a large import
/// neither holds the write lock for long nor keeps everything in one uncommitted transaction.
const CHUNK_BYTES: usize = 32 << 20;
const CHUNK_FILES: usize = 2000;

#[derive(Default, Debug)]
pub struct Report {
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
    /// Paths that were passed over, each with the reason.
    pub skipped: Vec<String>,
}

impl Report {
    pub fn summary(&self, verb: &str) -> String {
        let mut s = format!(
            "{verb} {} file{}, {} director{}, {}",
            self.files,
            if self.files == 1 { "" } else { "s" },
            self.dirs,
            if self.dirs == 1 { "y" } else { "ies" },
            human_bytes(self.bytes)
        );
        if !self.skipped.is_empty() {
            s.push_str(&format!(" ({} skipped)", self.skipped.len()));
        }
        s
    }
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

enum HostItem {
    Dir(Vec<String>),
    File(Vec<String>, PathBuf),
}

/// Lists a host tree without following symlinks. Each entry that is not carried is reported:
/// symlinks, special files, and, when the destination is the stored tree (`stored`), names
/// it does not take.
fn scan_host(
    root: &Path,
    rel: &mut Vec<String>,
    out: &mut Vec<HostItem>,
    report: &mut Report,
    stored: bool,
) -> Result<()> {
    let dir = root.join(rel.iter().collect::<PathBuf>());
    let mut ents: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot read {}", dir.display()))?;
    ents.sort_by_key(|e| e.file_name());
    for ent in ents {
        let hp = ent.path();
        let shown = || path::shown_host(&hp);
        let name = match path::host_name(&ent.file_name()) {
            Ok(n) => n,
            Err(e) => {
                report.skipped.push(format!("{}: {e}", shown()));
                continue;
            }
        };
        if let Some(why) = stored.then(|| path::stored_problem(&name)).flatten() {
            report.skipped.push(format!("{}: {why}", shown()));
            continue;
        }
        let ft = ent
            .file_type()
            .with_context(|| format!("cannot stat {}", hp.display()))?;
        rel.push(name);
        if ft.is_symlink() {
            report
                .skipped
                .push(format!("{}: symlinks are not imported", shown()));
        } else if ft.is_dir() {
            out.push(HostItem::Dir(rel.clone()));
            scan_host(root, rel, out, report, stored)?;
        } else if ft.is_file() {
            out.push(HostItem::File(rel.clone(), hp));
        } else {
            report.skipped.push(format!(
                "{}: a fifo, socket or device, which is not imported",
                shown()
            ));
        }
        rel.pop();
    }
    Ok(())
}

/// Copies the host file or directory `src` to the VFS path `dst` (the full target path).
pub fn import(
    vfs: &Vfs,
    src: &Path,
    dst: &VPath,
    progress: &ProgressBar,
    cancelled: &dyn Fn() -> bool,
) -> Result<Report> {
    let md = std::fs::metadata(src).with_context(|| format!("cannot read {}", src.display()))?;
    let mut report = Report::default();
    if md.is_file() {
        if let Some(parent) = dst.parent() {
            vfs.mkdir(&parent, true)?;
        }
        report.bytes = stream_in(vfs, src, dst)?;
        report.files = 1;
        return Ok(report);
    }
    if !md.is_dir() {
        bail!("{}: not a regular file or directory", src.display());
    }
    let stored = vfs.mount_of(dst).is_none();
    let mut items = Vec::new();
    scan_host(src, &mut Vec::new(), &mut items, &mut report, stored)?;
    progress.set_length(items.len() as u64 + 1);
    match vfs.stat(dst) {
        Ok(m) if m.kind != Kind::Dir => return Err(VfsError::NotDir(dst.to_string()).into()),
        Ok(_) => {}
        Err(VfsError::NotFound(_)) => vfs.mkdir(dst, true)?,
        Err(e) => return Err(e.into()),
    }
    report.dirs += 1;
    progress.inc(1);
    let mut i = 0;
    while i < items.len() {
        if cancelled() {
            bail!(
                "interrupted after {} files; what was copied so far is kept",
                report.files
            );
        }
        if let HostItem::File(rel, hp) = &items[i] {
            let large = std::fs::metadata(hp).is_ok_and(|m| m.len() >= STREAM_FROM);
            if large || !stored {
                stream_in(vfs, hp, &dst.join_names(rel))?;
                count(&mut report, &items[i]);
                progress.inc(1);
                i += 1;
                continue;
            }
        }
        if stored {
            // One transaction per chunk: fast, and every finished chunk is committed.
            let mut bytes = 0usize;
            let start = i;
            vfs.batch(|b| {
                while i < items.len() && bytes < CHUNK_BYTES && i - start < CHUNK_FILES {
                    match &items[i] {
                        HostItem::Dir(rel) => b.mkdir_all(&dst.join_names(rel))?,
                        HostItem::File(rel, hp) => {
                            if std::fs::metadata(hp).is_ok_and(|m| m.len() >= STREAM_FROM) {
                                break; // streamed on its own, next round
                            }
                            let data = std::fs::read(hp)
                                .map_err(|e| VfsError::Io(hp.display().to_string(), e))?;
                            bytes += data.len();
                            b.write(&dst.join_names(rel), &data)?;
                        }
                    }
                    i += 1;
                }
                Ok(())
            })?;
            for it in &items[start..i] {
                count(&mut report, it);
            }
            progress.inc((i - start) as u64);
        } else {
            let it = &items[i];
            if let HostItem::Dir(rel) = it {
                vfs.mkdir(&dst.join_names(rel), true)?;
            }
            count(&mut report, it);
            progress.inc(1);
            i += 1;
        }
    }
    Ok(report)
}

/// Files at least this large are streamed into the VFS on their own rather than read whole
/// into a chunk.
const STREAM_FROM: u64 = 8 << 20;

/// Copies the host file `hp` to the VFS file `to` a piece at a time; returns its size. A
/// file in a mount is replaced through a temporary file ([`Vfs::write_from`]), so an import
/// that fails halfway leaves the file it was to replace as it was.
fn stream_in(vfs: &Vfs, hp: &Path, to: &VPath) -> Result<u64> {
    let mut f = std::fs::File::open(hp).with_context(|| format!("cannot read {}", hp.display()))?;
    let mut counted = Counted {
        inner: &mut f,
        n: 0,
    };
    vfs.write_from(to, &mut counted)
        .with_context(|| format!("cannot copy {} to {to}", path::shown_host(hp)))?;
    Ok(counted.n)
}

/// A reader that counts the bytes it gives.
struct Counted<'a> {
    inner: &'a mut dyn std::io::Read,
    n: u64,
}

impl std::io::Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n += k as u64;
        Ok(k)
    }
}

fn count(report: &mut Report, it: &HostItem) {
    match it {
        HostItem::Dir(_) => report.dirs += 1,
        HostItem::File(_, hp) => {
            report.files += 1;
            report.bytes += std::fs::metadata(hp).map(|m| m.len()).unwrap_or(0);
        }
    }
}

/// Copies the VFS file or directory `src` to the host path `dst` (the full target path).
/// Unless `overwrite`, nothing is written when any host file is in the way.
pub fn export(
    vfs: &Vfs,
    src: &VPath,
    dst: &Path,
    overwrite: bool,
    progress: &ProgressBar,
    cancelled: &dyn Fn() -> bool,
) -> Result<Report> {
    let mode = if overwrite {
        Existing::Overwrite
    } else {
        Existing::Refuse
    };
    export_filtered(vfs, src, dst, progress, cancelled, mode)
}

/// Writes a host file from `from`, a piece at a time, through [`crate::os::replace_file`]
/// (whole or untouched; a link in the way is replaced), with the usual mode for a new file.
/// Returns the bytes written.
fn write_host_file(target: &Path, mut from: impl std::io::Read) -> Result<u64> {
    crate::os::replace_file(target, 0o666, |f| std::io::copy(&mut from, f))
        .with_context(|| format!("cannot write {}", target.display()))
}

/// What an export does about host files that already exist.
#[derive(Clone, Copy, PartialEq)]
enum Existing {
    Refuse,
    Overwrite,
}

fn export_filtered(
    vfs: &Vfs,
    src: &VPath,
    dst: &Path,
    progress: &ProgressBar,
    cancelled: &dyn Fn() -> bool,
    existing: Existing,
) -> Result<Report> {
    let meta = vfs.stat(src)?;
    let mut report = Report::default();
    let in_the_way = |target: &Path| -> Result<()> {
        if existing == Existing::Refuse && target.symlink_metadata().is_ok() {
            bail!(
                "'{}' exists; nothing was exported (use 'export -f' to overwrite)",
                target.display()
            );
        }
        Ok(())
    };
    if meta.kind == Kind::File {
        in_the_way(dst)?;
        report.bytes = write_host_file(dst, vfs.open_read(src)?)?;
        report.files = 1;
        return Ok(report);
    }
    let entries = vfs.walk(src)?;
    // Check every file before writing any, so a refused export changes nothing.
    // Where an entry of `src` goes under `dst`.
    let target_of = |p: &VPath| -> PathBuf {
        dst.join(
            p.strip_prefix(src)
                .unwrap_or(&[])
                .iter()
                .map(|n| path::host_os(n))
                .collect::<PathBuf>(),
        )
    };
    for ent in &entries {
        if ent.kind == Kind::File {
            in_the_way(&target_of(&ent.path))?;
        }
    }
    progress.set_length(entries.len() as u64 + 1);
    std::fs::create_dir_all(dst).with_context(|| format!("cannot create {}", dst.display()))?;
    report.dirs += 1;
    progress.inc(1);
    for ent in entries {
        if cancelled() {
            bail!(
                "interrupted after {} files; what was copied so far is kept",
                report.files
            );
        }
        let target = target_of(&ent.path);
        match (ent.kind, &ent.file) {
            _ if ent.link => report.skipped.push(format!(
                "{}: a symlink, which is not exported",
                crate::text::escape(&ent.path.to_string())
            )),
            (Kind::Dir, _) => {
                std::fs::create_dir_all(&target)
                    .with_context(|| format!("cannot create {}", target.display()))?;
                report.dirs += 1;
            }
            (Kind::File, Some(r)) => {
                report.bytes += write_host_file(&target, vfs.open_ref(&ent.path, r)?)?;
                report.files += 1;
            }
            _ => report.skipped.push(format!(
                "{}: not a regular file",
                crate::text::escape(&ent.path.to_string())
            )),
        }
        progress.inc(1);
    }
    Ok(report)
}
