//! Pseudo-terminal sessions (rexpect) that never signal a process that is not theirs.
//!
//! A rexpect session, when dropped, asks `waitpid` about its child's pid and sends SIGTERM
//! when that pid is alive. Once a test has reaped the child (its `status()` saw it exit), the
//! pid is free again, and in one test program that starts thousands of processes it can come
//! back as another test's child, which the drop would then kill. A [`Pty`] knows its child's
//! pid and start time, and lets rexpect clean up unless that pid now belongs to another child
//! of this program. (The session must be dropped whenever it can be: its reader thread only
//! ends when the session goes.)

use rexpect::session::PtySession;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Pty {
    session: ManuallyDrop<PtySession>,
    pid: u32,
    started: Option<String>,
}

/// Starts `cmd` on a new pseudo-terminal; reads time out after `timeout_ms`.
pub fn spawn(cmd: Command, timeout_ms: u64) -> Pty {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let pid_file = dir.path().join("pid");
    // The shell writes its pid and becomes the command (exec keeps the pid).
    let mut sh = Command::new("/bin/sh");
    sh.arg("-c")
        .arg("printf %s $$ > \"$VALYXO_TEST_PID_FILE\"; unset VALYXO_TEST_PID_FILE; exec \"$0\" \"$@\"")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    if let Some(d) = cmd.get_current_dir() {
        sh.current_dir(d);
    }
    sh.env("VALYXO_TEST_PID_FILE", &pid_file);
    let session =
        rexpect::session::spawn_command(sh, Some(timeout_ms)).expect("spawn in a pseudo-terminal");
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            break pid;
        }
        assert!(
            Instant::now() < deadline,
            "the pseudo-terminal's shell did not start"
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    Pty {
        session: ManuallyDrop::new(session),
        pid,
        started: start_time(pid),
    }
}

/// A process's parent and start time (fields 4 and 22 of /proc/PID/stat).
fn parent_and_start(pid: u32) -> Option<(u32, String)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold anything.
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some((rest.get(1)?.parse().ok()?, rest.get(19)?.to_string()))
}

fn start_time(pid: u32) -> Option<String> {
    parent_and_start(pid).map(|(_, start)| start)
}

impl Drop for Pty {
    fn drop(&mut self) {
        let safe = match parent_and_start(self.pid) {
            // Still our child: rexpect stops and reaps it.
            Some((_, start)) if Some(&start) == self.started.as_ref() => true,
            // Another child of ours got the pid: rexpect would signal it.
            Some((parent, _)) if parent == std::process::id() => false,
            // Gone, or not ours: rexpect's waitpid finds no such child and signals nothing.
            _ => true,
        };
        if safe {
            // SAFETY: the session is dropped once, here, and never used again.
            unsafe { ManuallyDrop::drop(&mut self.session) }
        }
    }
}

impl Deref for Pty {
    type Target = PtySession;
    fn deref(&self) -> &PtySession {
        &self.session
    }
}

impl DerefMut for Pty {
    fn deref_mut(&mut self) -> &mut PtySession {
        &mut self.session
    }
}
