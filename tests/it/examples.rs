//! The command examples that need a server run against test servers: an account server (a
//! real `valyxo server`) and an OpenAI-compatible assistant. Each line that a fresh home can
//! run alone prints what it declares (as the library's own test checks); each line that needs
//! one of these servers succeeds. Lines that need a terminal, or a server they name, are not
//! run.

use crate::common;

use std::io::Cursor;
use valyxo::commands::{registry, Need, Shows};
use valyxo::hub::{Hub, HubOptions};
use valyxo::shell::io::{Input, Io, Output};
use valyxo::shell::Session;

const PASSWORD: &str = "Passw0rd!";

/// Runs `line` with the password on standard input; returns (status, stdout, stderr).
fn run(sh: &mut Session, line: &str) -> (i32, String, String) {
    let out = std::sync::Arc::default();
    let err = std::sync::Arc::default();
    let mut io = Io {
        stdin: Input::Bytes(Cursor::new(format!("{PASSWORD}\n").into_bytes())),
        stdout: Output::Capture(std::sync::Arc::clone(&out)),
        stderr: Output::Capture(std::sync::Arc::clone(&err)),
    };
    let status = sh.run(line, &mut io);
    drop(io);
    let text = |c: &std::sync::Arc<std::sync::Mutex<Vec<u8>>>| {
        String::from_utf8_lossy(&c.lock().unwrap()).into_owned()
    };
    (status, text(&out), text(&err))
}

#[test]
fn examples_that_need_a_server_run_against_one() {
    let account = common::server::Server::start(None, &[]);
    let assistant = common::openai::Server::start(false);
    let mut problems = Vec::new();
    let mut ran = 0;
    // Registering comes first: the other account commands log in to the account it makes.
    let order = ["register", "login", "whoami", "sync", "logout", "ask", "ai"];
    for name in order {
        let spec = registry().get(name).expect("command");
        let home = tempfile::tempdir().expect("temp home");
        std::fs::write(
            home.path().join("config.toml"),
            format!(
                "[sync]\nserver = \"{}\"\n\n[assistant]\nurl = \"{}\"\nmodel = \"echo\"\n",
                account.url, assistant.url
            ),
        )
        .expect("write config.toml");
        let hub = Hub::open(HubOptions {
            home: Some(home.path().to_path_buf()),
            no_color: true,
            ..Default::default()
        })
        .expect("hub");
        let mut sh = Session::new(hub, false).expect("session");
        if matches!(name, "whoami" | "sync") {
            let (status, _, err) = run(&mut sh, "login ada");
            assert_eq!(status, 0, "login ada: {err}");
        }
        for e in spec.examples {
            let provided = matches!(e.shows, Shows::Needs(Need::AccountServer | Need::Assistant));
            if matches!(e.shows, Shows::Needs(_)) && !provided {
                continue;
            }
            let (status, out, err) = run(&mut sh, e.line);
            ran += provided as usize;
            let wrong = match e.shows {
                Shows::Text(want) => out != want || !err.is_empty(),
                _ => false,
            };
            if status != 0 || wrong {
                problems.push(format!(
                    "{name}: `{}` (status {status})\n  stdout: {out:?}\n  stderr: {err:?}",
                    e.line
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(ran >= 10, "only {ran} lines needed a server");
}
