//! The interactive shell through a real pseudo-terminal: the prompt, commands, Tab completion,
//! hints from history, continuation lines, Ctrl-C, Ctrl-D and history in the store.

mod common;

use common::Home;
use rexpect::process::WaitStatus;
use rexpect::session::{spawn_command, PtySession};
use std::process::Command;
use std::time::{Duration, Instant};

const PROMPT: &str = "valyxo:~/Projects/Main> ";
/// The end of the prompt when it is coloured.
const PROMPT_COLOURED_END: &str = "~/Projects/Main\x1b[0m> ";

fn repl(h: &Home, extra: &[&str]) -> PtySession {
    let mut c = Command::new(common::BIN);
    c.arg("--home")
        .arg(h.path())
        .args(extra)
        .env("TERM", "xterm-256color")
        .env_remove("VALYXO_HOME")
        .env_remove("NO_COLOR");
    let mut s = spawn_command(c, Some(10_000)).expect("spawn valyxo in a pty");
    let first = if extra.contains(&"--no-color") {
        PROMPT
    } else {
        PROMPT_COLOURED_END
    };
    s.exp_string(first).expect("the first prompt");
    s
}

/// Types `text` without pressing Enter.
fn typ(s: &mut PtySession, text: &str) {
    s.send(text).unwrap();
    s.flush().unwrap();
}

/// Waits (at most 10 s, then kills it) for the process to end and returns its exit code.
fn exit_code(s: &mut PtySession) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match s.process().status() {
            Some(WaitStatus::Exited(_, code)) => return code,
            Some(WaitStatus::StillAlive) | None if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Some(WaitStatus::StillAlive) | None => {
                let _ = s.process_mut().kill(rexpect::process::Signal::SIGKILL);
                panic!("valyxo did not exit within 10 s");
            }
            Some(other) => panic!("valyxo did not exit normally: {other:?}"),
        }
    }
}

#[test]
fn runs_a_command_and_exits_on_ctrl_d() {
    let h = Home::new();
    let mut s = repl(&h, &["--no-color"]);
    s.send_line("echo hello from the pty").unwrap();
    s.exp_string("hello from the pty\r\n").unwrap();
    s.exp_string(PROMPT).unwrap();
    s.send_line("cd /; pwd").unwrap();
    s.exp_string("valyxo:~> ").unwrap();
    s.send_control('d').unwrap();
    assert_eq!(exit_code(&mut s), 0);
}

#[test]
fn exit_status_and_unknown_commands() {
    let h = Home::new();
    let mut s = repl(&h, &["--no-color"]);
    s.send_line("lss").unwrap();
    s.exp_string("Did you mean 'ls'?").unwrap();
    s.exp_string(PROMPT).unwrap();
    s.send_line("exit 4").unwrap();
    assert_eq!(exit_code(&mut s), 4);
}

#[test]
fn tab_completes_commands_flags_and_paths() {
    let h = Home::new();
    h.c("mkdir -p /Projects/Main/some-directory").success();
    let mut s = repl(&h, &["--no-color"]);
    // A command name.
    typ(&mut s, "histo\t");
    s.exp_string("history ").unwrap();
    s.send_control('u').unwrap();
    // A VFS path.
    typ(&mut s, "ls some-d\t");
    s.exp_string("some-directory/").unwrap();
    s.send_line("").unwrap();
    s.exp_string(PROMPT).unwrap();
    // A flag from the registry.
    typ(&mut s, "grep --ignore-c\t");
    s.exp_string("--ignore-case").unwrap();
    s.send_control('c').unwrap();
    s.exp_string(PROMPT).unwrap();
    s.send_control('d').unwrap();
    assert_eq!(exit_code(&mut s), 0);
}

#[test]
fn hints_come_from_history_and_right_arrow_accepts() {
    let h = Home::new();
    let mut s = repl(&h, &["--no-color"]);
    s.send_line("echo a-very-unusual-word").unwrap();
    s.exp_string(PROMPT).unwrap();
    typ(&mut s, "echo a-very");
    // The rest of the earlier line is shown after the cursor...
    s.exp_string("-unusual-word").unwrap();
    // ... and Right arrow takes it.
    typ(&mut s, "\x1b[C");
    s.send_line("").unwrap();
    s.exp_string("a-very-unusual-word\r\n").unwrap();
    s.exp_string(PROMPT).unwrap();
    s.send_control('d').unwrap();
    assert_eq!(exit_code(&mut s), 0);
}

#[test]
fn open_quote_continues_on_the_next_line() {
    let h = Home::new();
    let mut s = repl(&h, &["--no-color"]);
    s.send_line("echo \"first").unwrap();
    s.send_line("second\"").unwrap();
    s.exp_string("first\r\nsecond\r\n").unwrap();
    s.exp_string(PROMPT).unwrap();
    s.send_control('d').unwrap();
    assert_eq!(exit_code(&mut s), 0);
}

#[test]
fn ctrl_c_cancels_the_line_and_a_running_command() {
    let h = Home::new();
    let mut s = repl(&h, &["--no-color"]);
    // At the prompt: the line is dropped.
    typ(&mut s, "echo should-not-run");
    s.send_control('c').unwrap();
    s.exp_string(PROMPT).unwrap();
    s.send_line("echo after-cancel").unwrap();
    let seen = s.exp_string("after-cancel\r\n").unwrap();
    assert!(!seen.contains("should-not-run\r\n"), "{seen}");
    s.exp_string(PROMPT).unwrap();
    // A running host program.
    s.send_line("exec sleep 30").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    s.send_control('c').unwrap();
    s.exp_string(PROMPT).unwrap();
    assert!(t.elapsed() < Duration::from_secs(10), "back at the prompt");
    // A long built-in command.
    s.send_line("echo still-alive").unwrap();
    s.exp_string("still-alive\r\n").unwrap();
    s.exp_string(PROMPT).unwrap();
    s.send_control('d').unwrap();
    assert_eq!(exit_code(&mut s), 0);
}

#[test]
fn history_is_kept_in_the_store_with_cwd_status_and_duration() {
    let h = Home::new();
    let mut s = repl(&h, &["--no-color"]);
    s.send_line("cd /Projects").unwrap();
    s.exp_string("valyxo:~/Projects> ").unwrap();
    s.send_line("nosuchcommand").unwrap();
    s.exp_string("valyxo:~/Projects> ").unwrap();
    s.send_control('d').unwrap();
    // End of input exits with the last command's status, as in other shells.
    assert_eq!(exit_code(&mut s), 127);

    let c = rusqlite::Connection::open(h.db()).unwrap();
    let rows: Vec<(String, String, i64, i64)> = c
        .prepare("SELECT command, cwd, status, duration_ms FROM history ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1.as_str(), rows[0].2),
        ("cd /Projects", "/Projects/Main", 0)
    );
    assert_eq!(
        (rows[1].0.as_str(), rows[1].1.as_str(), rows[1].2),
        ("nosuchcommand", "/Projects", 127)
    );
    assert!(rows.iter().all(|r| r.3 >= 0));
    // `history` lists and searches it.
    let list = h.out("history");
    assert!(
        list.contains("cd /Projects") && list.contains("nosuchcommand"),
        "{list}"
    );
    let found = h.out("history search nosuch");
    assert!(
        found.contains("nosuchcommand") && !found.contains("cd /Projects"),
        "{found}"
    );
}

#[test]
fn concurrent_sessions_share_history() {
    let h = Home::new();
    let mut a = repl(&h, &["--no-color"]);
    let mut b = repl(&h, &["--no-color"]);
    a.send_line("echo typed-in-session-a").unwrap();
    a.exp_string("typed-in-session-a\r\n").unwrap();
    a.exp_string(PROMPT).unwrap();
    // B picks the line up at its next prompt: Up recalls it.
    b.send_line("").unwrap();
    b.exp_string(PROMPT).unwrap();
    typ(&mut b, "\x1b[A");
    b.exp_string("echo typed-in-session-a").unwrap();
    b.send_line("").unwrap();
    b.exp_string("typed-in-session-a\r\n").unwrap();
    for s in [&mut a, &mut b] {
        s.send_control('d').unwrap();
        assert_eq!(exit_code(s), 0);
    }
}

#[test]
fn colour_highlights_the_line_as_typed() {
    let h = Home::new();
    let mut s = repl(&h, &[]);
    // The escape sequence written just before `word` appeared on screen.
    let style_before = |s: &mut PtySession, word: &str| -> String {
        let before = s.exp_string(word).unwrap();
        let at = before.rfind("\x1b[").expect("a colour before the word");
        before[at..].to_string()
    };
    typ(&mut s, "nosuchcmd");
    let unknown = style_before(&mut s, "nosuchcmd");
    s.send_control('u').unwrap();
    s.exp_string(PROMPT_COLOURED_END).unwrap();
    typ(&mut s, "echo");
    let known = style_before(&mut s, "echo");
    typ(&mut s, " 'str' && pwd");
    let string = style_before(&mut s, "'str'");
    let operator = style_before(&mut s, "&&");
    assert_ne!(unknown, known, "unknown and known commands look the same");
    assert_ne!(string, known, "strings look like commands");
    assert_ne!(operator, string, "operators look like strings");
    s.send_control('c').unwrap();
    // Ctrl-C ends the line with a newline; wait for the fresh prompt after it.
    s.exp_string("\r\n").unwrap();
    s.exp_string(PROMPT_COLOURED_END).unwrap();
    s.send_control('d').unwrap();
    assert_eq!(exit_code(&mut s), 0);
}

#[test]
fn the_script_prompt_keeps_its_scope_completes_and_stops_loops_on_ctrl_c() {
    let h = Home::new();
    let mut s = repl(&h, &["--no-color"]);
    // Sends a line and waits until it was accepted and the next input is being read
    // (rustyline turns bracketed paste off on Enter and on again for the next line).
    let line = |s: &mut PtySession, text: &str| -> String {
        s.send_line(text).unwrap();
        let out = s.exp_string("\x1b[?2004l").unwrap();
        let more = s.exp_string("\x1b[?2004h").unwrap();
        out + &more
    };
    line(&mut s, "script");
    line(&mut s, "let answer = 40;");
    // Tab completes names defined earlier (and the host API).
    typ(&mut s, "answ");
    s.send("\t").unwrap();
    s.flush().unwrap();
    s.exp_string("answer").unwrap();
    assert!(line(&mut s, " + 2").contains("=> 42"));
    // An open block continues on the next line.
    s.send_line("fn twice(x) {").unwrap();
    assert!(line(&mut s, "  x * 2 }").contains("x * 2 }"));
    assert!(line(&mut s, "twice(answer)").contains("=> 80"));
    // Ctrl-C stops a tight loop and the scope is still there.
    s.send_line("loop { }").unwrap();
    s.exp_string("\x1b[?2004l").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.send_control('c').unwrap();
    s.exp_string("interrupted").unwrap();
    s.exp_string("\x1b[?2004h").unwrap();
    assert!(line(&mut s, "answer").contains("=> 40"));
    // Ctrl-D leaves the prompt for the shell.
    s.send_control('d').unwrap();
    s.exp_string(PROMPT).unwrap();
    s.send_line("exit 0").unwrap();
    assert_eq!(exit_code(&mut s), 0);
}

#[test]
fn finished_jobs_are_announced_at_the_next_prompt() {
    let h = Home::new();
    let mut s = repl(&h, &["--no-color"]);
    s.send_line("echo in the background &").unwrap();
    s.exp_string("[1] echo in the background").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.send_line("").unwrap();
    s.exp_string("[1] done (status 0)  echo in the background")
        .unwrap();
    s.send_line("exit").unwrap();
    assert_eq!(exit_code(&mut s), 0);
}
