//! A small tmpfs mounted for a test, to run out of disk on purpose: mounted over a
//! temporary directory, filled up to its last page by a filler file that can be deleted
//! again, and unmounted when dropped. Mounting needs root; elsewhere the tests that need one
//! are skipped, saying so.

use std::ffi::CString;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A small tmpfs mounted for a test, unmounted when dropped.
pub struct SmallFs {
    target: CString,
    at: PathBuf,
}

impl SmallFs {
    /// Mounts a tmpfs of `bytes` at `at`; `None`, with the reason on standard error, where
    /// this process may not mount.
    pub fn mount(at: &Path, bytes: usize) -> Option<SmallFs> {
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: mounting a small file system needs root");
            return None;
        }
        let target = CString::new(at.as_os_str().as_bytes()).unwrap();
        let opts = CString::new(format!("size={bytes}")).unwrap();
        // SAFETY: valid NUL-terminated strings for the call's duration.
        let r = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                opts.as_ptr().cast(),
            )
        };
        if r != 0 {
            eprintln!("skipped: this process may not mount a tmpfs");
            return None;
        }
        Some(SmallFs {
            target,
            at: at.to_path_buf(),
        })
    }

    /// Fills the file system with a file named `filler` until no page is left but
    /// `spare` bytes (rounded down to whole pages); returns the filler's path.
    pub fn fill(&self, spare: usize) -> PathBuf {
        let path = self.at.join("filler");
        let mut f = std::fs::File::create(&path).expect("create the filler");
        let page = [b'f'; 4096];
        loop {
            match f.write(&page) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
        let len = f.metadata().expect("the filler's size").len();
        let keep = len.saturating_sub((spare / 4096 * 4096) as u64);
        f.set_len(keep).expect("make room in the filler");
        path
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        // SAFETY: a valid NUL-terminated path.
        unsafe { libc::umount2(self.target.as_ptr(), libc::MNT_DETACH) };
    }
}
