//! Calls to the operating system (foundation), in one place: this machine's name, whether a
//! process exists, and the width of the terminal on standard output.

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
