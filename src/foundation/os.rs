//! Calls to the operating system (foundation), in one place: this machine's name, whether a
//! process exists, the width of the terminal on standard output, replacing a file whole, and
//! the room left on a file system.

use std::io::IsTerminal;

/// This machine's name, as the system gives it ("" when it cannot).
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; the last byte stays zero, so the name is
    // NUL-terminated even when gethostname truncates it.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(0);
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Replaces (or creates) the host file `target` whole: `write` fills a temporary file beside
/// it whose name nobody can guess, created new (never a file or link someone put there) with
/// `mode` from its first byte (the umask applies), and once it is on disk it is renamed over
/// the target, so the target is whole or untouched and a link in its place is replaced, not
/// written through. Returns what `write` returned.
pub fn replace_file<T>(
    target: &std::path::Path,
    mode: u32,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<T>,
) -> std::io::Result<T> {
    use std::os::unix::fs::PermissionsExt;
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let name: String = target
        .file_name()
        .map(|n| n.to_string_lossy().chars().take(64).collect())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.valyxo-tmp."))
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    let out = write(tmp.as_file_mut())?;
    tmp.as_file().sync_all()?;
    tmp.persist(target).map_err(|e| e.error)?;
    Ok(out)
}

/// Whether process `pid` exists (one that exists but belongs to another user counts).
pub fn process_exists(pid: i64) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The width of the terminal standard output goes to, if it goes to one.
pub fn stdout_width() -> Option<usize> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    crossterm::terminal::size()
        .ok()
        .map(|(w, _)| usize::from(w))
        .filter(|w| *w > 0)
}

/// Bytes this user may still write on the file system that holds `path` (None when the
/// system cannot say).
pub fn free_space(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills the struct it is given; zeroes are a valid value of it.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a struct to fill.
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// Whether the file system that holds the file `path` has too little room left for SQLite
/// to open it (its journal and shared memory need some beside it).
pub fn no_room_beside(path: &std::path::Path) -> bool {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    free_space(dir).is_some_and(|n| n < 64 << 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_exists_and_a_finished_one_does_not() {
        assert!(process_exists(i64::from(std::process::id())));
        let mut child = std::process::Command::new("true").spawn().expect("true");
        let pid = i64::from(child.id());
        child.wait().expect("wait");
        assert!(!process_exists(pid));
        assert!(!process_exists(0));
        assert!(!process_exists(-1));
        assert!(!hostname().is_empty());
    }
}
