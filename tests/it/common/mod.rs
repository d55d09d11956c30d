//! Helpers shared by the integration tests: a temporary home and the real binary.

use assert_cmd::Command;
use std::path::{Path, PathBuf};

pub mod balancer;
pub mod browser;
pub mod pty;
pub mod server;
pub mod small_fs;

pub const BIN: &str = env!("CARGO_BIN_EXE_valyxo");

/// The password of the accounts that homes sign in with ([`Home::signed_in`]).
pub const HOME_PASSWORD: &str = "Secr3t-pass";

/// A fresh Valyxo home in a temporary directory, removed when dropped.
pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Home {
        Home {
            dir: tempfile::tempdir().expect("temporary home"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `valyxo --home HOME ARGS`, with a clean environment for colour and home.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--home")
            .arg(self.path())
            .env_remove("VALYXO_HOME")
            .env_remove("NO_COLOR");
        c
    }

    /// The interactive shell of this home with `args`, for a pseudo-terminal
    /// (`pty::spawn`): `TERM` says xterm, and colour and home come from nowhere else.
    pub fn shell(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new(BIN);
        c.arg("--home")
            .arg(self.path())
            .args(args)
            .env("TERM", "xterm-256color")
            .env_remove("VALYXO_HOME")
            .env_remove("NO_COLOR");
        c
    }

    /// `valyxo --home HOME -c LINE`.
    pub fn c(&self, line: &str) -> assert_cmd::assert::Assert {
        self.cmd().arg("-c").arg(line).assert()
    }

    /// Standard output of a successful `-c LINE`.
    pub fn out(&self, line: &str) -> String {
        let a = self.c(line).success();
        String::from_utf8(a.get_output().stdout.clone()).expect("UTF-8 output")
    }

    pub fn db(&self) -> PathBuf {
        self.path().join("valyxo.db")
    }

    /// A fresh home signed in to the server at `url` (or a proxy in front of it) as `user`
    /// with [`HOME_PASSWORD`], registering the account first when `register`.
    pub fn signed_in(url: &str, user: &str, register: bool) -> Home {
        let h = Home::new();
        let line = if register {
            format!("register --server {url} --email {user}@example.com {user}")
        } else {
            format!("login --server {url} {user}")
        };
        h.cmd()
            .arg("-c")
            .arg(&line)
            .write_stdin(format!("{HOME_PASSWORD}\n"))
            .assert()
            .success()
            .stdout(predicates::str::contains(format!(
                "logged in as {user} on {url}"
            )));
        h
    }

    /// The files under `dir` (a VFS path), sorted.
    pub fn files(&self, dir: &str) -> Vec<String> {
        let mut f: Vec<String> = self
            .out(&format!("find {dir} -type f"))
            .lines()
            .map(str::to_string)
            .collect();
        f.sort();
        f
    }

    /// `valyxo --home HOME ARGS` running in the background, its output collected.
    pub fn spawn(&self, args: &[&str]) -> Running {
        let child = std::process::Command::new(BIN)
            .arg("--home")
            .arg(self.path())
            .args(args)
            .env_remove("VALYXO_HOME")
            .env_remove("NO_COLOR")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start valyxo");
        Running { child }
    }
}

/// A valyxo process started by [`Home::spawn`].
pub struct Running {
    child: std::process::Child,
}

impl Running {
    pub fn signal(&self, signal: i32) {
        // SAFETY: signals our own child process.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// Waits for it to end and returns what it printed and how it ended.
    pub fn wait_for_output(self) -> std::process::Output {
        self.child.wait_with_output().expect("wait for valyxo")
    }
}

/// A host directory for mounts and imports, removed when dropped.
/// `valyxo --home HOME -c LINE` for a home at a path of the test's choosing (not one
/// [`Home`] made), run to its end.
pub fn at_home(home: &Path, line: &str) -> assert_cmd::assert::Assert {
    assert_cmd::Command::new(BIN)
        .arg("--home")
        .arg(home)
        .args(["-c", line])
        .env_remove("VALYXO_HOME")
        .assert()
}

pub fn host_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary host directory")
}
pub mod openai;

/// A fresh home whose assistant is the test server at `url`, asking for `model`.
pub fn assistant_home(url: &str, model: &str) -> Home {
    let h = Home::new();
    h.c(&format!(
        "settings set assistant.url {url}; settings set assistant.model {model}"
    ))
    .success();
    h
}
