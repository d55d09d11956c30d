//! File operations with the shell's rules (engine layer), shared by the commands (`rm`,
//! `mv`) and the script API (`rm`, `rm_r`, `mv`), so a script can do nothing to the tree
//! that the commands refuse: removing `/` or the folder the session works in, or a folder
//! without asking for recursion.

use super::Session;
use crate::vfs::carry::Leftovers;
use crate::vfs::{Kind, VPath, VfsError};
use anyhow::{bail, Result};

/// Removes `p` (shown to the user as `shown`): a folder only with `recursive`; with `force`
/// a missing path is not an error.
pub fn remove(sh: &Session, p: &VPath, shown: &str, recursive: bool, force: bool) -> Result<()> {
    let shown = crate::text::escape(shown);
    if p.is_root() {
        bail!("refusing to remove '/' (the whole virtual filesystem)");
    }
    if sh.cwd().starts_with(p) {
        bail!("refusing to remove '{shown}': it holds the working directory");
    }
    let vfs = &sh.hub.vfs;
    match vfs.stat(p) {
        Err(VfsError::NotFound(_)) if force => return Ok(()),
        Ok(meta) if meta.kind == Kind::Dir && !recursive => {
            bail!("cannot remove '{shown}': is a directory (use -r)")
        }
        _ => {}
    }
    vfs.remove(p, recursive)
        .map_err(|e| anyhow::anyhow!("cannot remove '{shown}': {}", strip_path(&e)))
}

/// Moves `from` to `to` (the full destination path); the working directory follows a
/// folder it is in when the folder moved whole. Returns what could not be carried (see
/// [`crate::vfs::carry`]).
pub fn rename(sh: &mut Session, from: &VPath, to: &VPath, shown: &str) -> Result<Leftovers> {
    let left = sh
        .hub
        .vfs
        .rename(from, to)
        .map_err(|e| anyhow::anyhow!("cannot move '{}': {e}", crate::text::escape(shown)))?;
    if sh.cwd().starts_with(from) && !sh.hub.vfs.exists(from) {
        let rest = sh.cwd().strip_prefix(from).unwrap_or(&[]).to_vec();
        sh.set_cwd(to.join_names(&rest));
    }
    Ok(left)
}

/// A VFS error's message without the path it starts with (the caller names the path).
pub fn strip_path(e: &VfsError) -> String {
    let s = e.to_string();
    match s.split_once(": ") {
        Some((_, rest))
            if !matches!(
                e,
                VfsError::Invalid(_) | VfsError::Store(_) | VfsError::Full
            ) =>
        {
            rest.to_string()
        }
        _ => s,
    }
}
