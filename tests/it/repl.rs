//! The interactive shell through a real pseudo-terminal: the prompt, commands, Tab completion,
//! hints from history, continuation lines, Ctrl-C, Ctrl-D and history in the store.

use crate::common;

use common::pty::{spawn, Pty};
use common::small_fs::SmallFs;
use common::Home;
use predicates::prelude::PredicateBooleanExt;
use rexpect::process::WaitStatus;
use rexpect::session::PtySession;
use std::process::Command;
use std::time::{Duration, Instant};

const PROMPT: &str = "valyxo:~/Projects/Main> ";
/// The end of the prompt when it is coloured.
const PROMPT_COLOURED_END: &str = "~/Projects/Main\x1b[0m> ";

fn repl(h: &Home, extra: &[&str]) -> Pty {
    let mut s = spawn(h.shell(extra), 10_000);
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
    // The prompt shows a failing status until a command succeeds.
    s.exp_string("valyxo:~/Projects/Main [127]> ").unwrap();
    s.send_line("echo ok").unwrap();
    s.exp_string(PROMPT).unwrap();
    s.send_line("exit 4").unwrap();
    assert_eq!(exit_code(&mut s), 4);
}

#[test]
fn tab_completes_commands_flags_and_paths() {
    let h = Home::new();
    h.c("mkdir -p /Projects/Main/some-directory").success();
    h.c("mkdir -p \"/Projects/Main/it's a dir\"; echo found > \"/Projects/Main/it's a dir/\\$1 note\"")
        .success();
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
    // Names with quotes, spaces and `$` go in escaped, and a completed folder completes on.
    typ(&mut s, "cat it\t");
    s.exp_string("it\\'s\\ a\\ dir/").unwrap();
    typ(&mut s, "\\$\t");
    s.exp_string("\\$1\\ note").unwrap();
    s.send_line("").unwrap();
    s.exp_string("found").unwrap();
    s.exp_string(PROMPT).unwrap();
    // A flag from the registry.
    typ(&mut s, "grep --ignore-c\t");
    s.exp_string("--ignore-case").unwrap();
    s.send_control('c').unwrap();
    s.exp_string(PROMPT).unwrap();
    // Subcommands, theme names, setting keys and their choices, manual pages.
    for (typed, completed) in [
        ("theme pre\t", "theme preview "),
        ("theme set drac\t", "theme set dracula "),
        ("settings get repl.hig\t", "settings get repl.highlight "),
        ("settings set color alw\t", "settings set color always "),
        ("settings set theme nor\t", "settings set theme nord "),
        ("man valyxos\t", "man valyxoscript "),
        ("ask -c -p rev\t", "ask -c -p review "),
        ("ai key rem\t", "ai key remove "),
        ("ai hist\t", "ai history "),
        ("sync sta\t", "sync status "),
        ("sync status Ma\t", "sync status Main "),
        ("sync -v Ma\t", "sync -v Main "),
        ("new rea\t", "new react "),
        ("create --force pyt\t", "create --force python "),
    ] {
        typ(&mut s, typed);
        s.exp_string(completed).unwrap();
        s.send_control('c').unwrap();
        s.exp_string(PROMPT).unwrap();
    }
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
    s.exp_string("valyxo:~/Projects [127]> ").unwrap();
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
        out + more.as_str()
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

/// `valyxo ARGS` in a pseudo-terminal of `rows` × 80.
fn in_terminal(h: &Home, rows: u16, args: &str) -> Pty {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!(
            "stty rows {rows} cols 80 && exec \"$0\" --home \"$1\" {args}"
        ))
        .arg(common::BIN)
        .arg(h.path())
        .env("TERM", "xterm-256color")
        .env_remove("VALYXO_HOME")
        .env_remove("NO_COLOR");
    spawn(c, 10_000)
}

/// What a terminal would show: the pty's output run through a terminal emulator.
struct Screen {
    parser: vt100::Parser,
    raw: Vec<u8>,
}

impl Screen {
    fn new(rows: u16) -> Screen {
        Screen {
            parser: vt100::Parser::new(
                std::num::NonZeroU16::new(rows).expect("rows"),
                std::num::NonZeroU16::new(80).expect("columns"),
                0,
            ),
            raw: Vec::new(),
        }
    }

    /// Reads output until the screen satisfies `want` (at most 10 s); returns its text.
    fn wait(&mut self, s: &mut PtySession, what: &str, want: impl Fn(&str) -> bool) -> String {
        self.wait_for(s, what, |p, _| want(&p.screen().contents()))
    }

    /// Reads until the terminal's state is as `want` says (at most 10 s).
    fn wait_for(
        &mut self,
        s: &mut PtySession,
        what: &str,
        want: impl Fn(&vt100::Parser, &[u8]) -> bool,
    ) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            while let Some(c) = s.try_read() {
                // The session hands over each byte as a char.
                let b = c as u32 as u8;
                self.raw.push(b);
                self.parser.process(&[b]);
            }
            let text = self.parser.screen().contents();
            if want(&self.parser, &self.raw) {
                return text;
            }
            if Instant::now() > deadline {
                panic!("the screen never showed {what}; it shows:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The last row: the pager's status bar.
    fn status(&self) -> String {
        let rows = self.parser.screen().size().0;
        self.parser
            .screen()
            .rows(0, 80)
            .nth(usize::from(rows.get()) - 1)
            .unwrap_or_default()
    }
}

#[test]
fn man_pages_open_in_a_pager_that_scrolls_and_searches() {
    let h = Home::new();
    let mut s = in_terminal(&h, 24, "man scripting");
    let mut sc = Screen::new(24);
    let first = sc.wait(&mut s, "the page", |t| t.contains("(TOP)"));
    assert!(
        sc.parser.screen().alternate_screen(),
        "the pager uses the alternate screen"
    );
    assert!(first.starts_with("scripting — Rhai scripts"), "{first}");
    assert!(sc.status().contains("man scripting"), "{}", sc.status());
    // Search: the view jumps to the first match and the status bar counts them.
    typ(&mut s, "/sleep\r");
    let t = sc.wait(&mut s, "the first match", |t| t.contains("match 1/"));
    assert!(
        t.lines()
            .next()
            .unwrap_or("")
            .to_lowercase()
            .contains("sleep"),
        "{t}"
    );
    let row = sc.parser.screen().rows(0, 80).next().unwrap_or_default();
    let col = row.to_lowercase().find("sleep").unwrap() as u16;
    let cell = sc.parser.screen().cell(0, col).unwrap().clone();
    assert!(
        cell.inverse() || cell.bgcolor() != vt100::Color::Default,
        "the match is marked"
    );
    typ(&mut s, "n");
    sc.wait(&mut s, "match 2/", |t| t.contains("match 2/"));
    typ(&mut s, "/no such words anywhere\r");
    sc.wait(&mut s, "not found", |t| t.contains("Pattern not found"));
    // The end, the top, and three lines down with the mouse wheel.
    typ(&mut s, "G");
    sc.wait(&mut s, "(END)", |t| t.contains("(END)"));
    typ(&mut s, "g");
    sc.wait(&mut s, "(TOP)", |t| t.contains("(TOP)"));
    typ(&mut s, "\x1b[<65;10;10M");
    let t = sc.wait(&mut s, "a scrolled page", |t| !t.contains("(TOP)"));
    assert!(!t.starts_with("scripting — "), "{t}");
    typ(&mut s, "q");
    sc.wait(&mut s, "the normal screen", |_| true);
    assert_eq!(exit_code(&mut s), 0);
    sc.wait_for(&mut s, "the normal screen", given_back);
    let raw = String::from_utf8_lossy(&sc.raw);
    assert!(
        raw.contains("\x1b[?1000l") && raw.contains("\x1b[?1049l"),
        "mouse and screen restored"
    );
}

#[test]
fn a_page_that_fits_is_printed_without_the_pager() {
    let h = Home::new();
    let mut s = in_terminal(&h, 100, "man pwd");
    let out = s.exp_eof().unwrap();
    assert!(out.contains("Print the working directory"), "{out:?}");
    assert!(out.contains("SYNOPSIS"), "{out:?}");
    assert!(!out.contains("\x1b[?1049h"), "no alternate screen: {out:?}");
}

#[test]
fn the_prompt_follows_the_theme_and_config_changes() {
    let h = Home::new();
    let mut s = repl(&h, &["--no-color"]);
    s.send_line("settings set prompt.format '{cwd}{jobs} % '")
        .unwrap();
    s.exp_string("~/Projects/Main % ").unwrap();
    // A background job shows in the prompt while it runs.
    s.send_line("exec sleep 5 &").unwrap();
    s.exp_string("~/Projects/Main [1&] % ").unwrap();
    s.send_line("kill %1").unwrap();
    s.exp_string("~/Projects/Main % ").unwrap();
    // Another process edits config.toml: the next prompt uses it.
    std::fs::write(
        h.path().join("config.toml"),
        "prompt.format = \"edited {cwd}> \"\n",
    )
    .unwrap();
    s.send_line("").unwrap();
    s.exp_string("edited ~/Projects/Main> ").unwrap();
    s.send_control('d').unwrap();
    assert_eq!(exit_code(&mut s), 0);
}

#[test]
fn an_edited_theme_applies_at_the_next_prompt_and_a_broken_edit_keeps_the_old_one() {
    let h = Home::new();
    let dir = h.path().join("themes");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("mine.toml");
    std::fs::write(&file, "[prompt]\nformat = \"A {cwd}> \"\n").unwrap();
    h.c("theme set mine").success();
    let mut s = spawn(h.shell(&["--no-color"]), 10_000);
    s.exp_string("A ~/Projects/Main> ").unwrap();
    std::fs::write(&file, "[prompt]\nformat = \"Bee {cwd}> \"\n").unwrap();
    s.send_line("").unwrap();
    s.exp_string("Bee ~/Projects/Main> ").unwrap();
    // A mistake while editing: reported with file, line and field; the theme stays.
    std::fs::write(&file, "[prompt]\nformat = \"{oops}> \"\n").unwrap();
    s.send_line("").unwrap();
    s.exp_string("mine.toml:2:10: prompt.format: unknown placeholder {oops}")
        .unwrap();
    s.exp_string("Bee ~/Projects/Main> ").unwrap();
    std::fs::write(&file, "[prompt]\nformat = \"Cee {cwd}> \"\n").unwrap();
    s.send_line("").unwrap();
    s.exp_string("Cee ~/Projects/Main> ").unwrap();
    s.send_control('d').unwrap();
    assert_eq!(exit_code(&mut s), 0);
}

#[test]
fn a_terminated_pager_gives_the_terminal_back() {
    let h = Home::new();
    let mut s = in_terminal(&h, 24, "man scripting");
    let mut sc = Screen::new(24);
    sc.wait(&mut s, "the page", |t| t.contains("(TOP)"));
    assert!(sc.parser.screen().alternate_screen());
    s.process_mut()
        .signal(rexpect::process::Signal::SIGTERM)
        .unwrap();
    assert_ended_by_sigterm(&mut s);
    // What the pager wrote on its way out may still be on its way through the pty.
    sc.wait_for(&mut s, "the normal screen", given_back);
    let raw = String::from_utf8_lossy(&sc.raw);
    assert!(raw.contains("\x1b[?1000l"), "mouse reporting off");
}

/// `edit --recovered` once it lists a copy whose line holds `needle` (copies are written a
/// moment after typing stops).
fn recovered_listing(h: &Home, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = h.out("edit --recovered");
        if out.contains(needle) {
            return out;
        }
        assert!(Instant::now() < deadline, "no recovery copy was written");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits for the process to end and checks that SIGTERM ended it.
/// Whether a full-screen view has given the terminal back: the normal screen, and mouse
/// reporting switched off (the last of what it resets).
fn given_back(p: &vt100::Parser, raw: &[u8]) -> bool {
    !p.screen().alternate_screen() && String::from_utf8_lossy(raw).contains("\x1b[?1000l")
}

fn assert_ended_by_sigterm(s: &mut PtySession) {
    let status = wait_end(s);
    assert!(
        matches!(
            status,
            Some(WaitStatus::Signaled(
                _,
                rexpect::process::Signal::SIGTERM,
                _
            ))
        ),
        "{status:?}"
    );
}

/// Waits for the process in the session to end; returns how.
fn wait_end(s: &mut PtySession) -> Option<WaitStatus> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match s.process().status() {
            Some(WaitStatus::StillAlive) | None if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            other => return other,
        }
    }
}

#[test]
fn the_editor_edits_saves_and_gives_the_terminal_back() {
    let h = Home::new();
    h.c("echo 'fn main() {}' > /main.rs").success();
    let mut s = in_terminal(&h, 24, "edit --vfs /main.rs");
    let mut sc = Screen::new(24);
    let t = sc.wait(&mut s, "the file", |t| t.contains("fn main() {}"));
    assert!(sc.parser.screen().alternate_screen());
    assert!(t.contains("Ln 1, Col 1  Rust  LF"), "{t}");
    // Type on the second line, undo a word, save, quit.
    typ(&mut s, "\x1b[B// hello world");
    sc.wait(&mut s, "the typing", |t| t.contains("// hello world"));
    typ(&mut s, "\x1a"); // Ctrl-Z
    sc.wait(&mut s, "the undo", |t| {
        t.contains("// hello") && !t.contains("world")
    });
    typ(&mut s, "\x03"); // Ctrl-C: the line, also to the system clipboard
    sc.wait(&mut s, "the copy", |t| t.contains("Copied the line"));
    typ(&mut s, "\x13"); // Ctrl-S
    sc.wait(&mut s, "the save", |t| t.contains("Saved /main.rs"));
    typ(&mut s, "\x11"); // Ctrl-Q
    assert_eq!(exit_code(&mut s), 0);
    sc.wait_for(&mut s, "the normal screen", given_back);
    let raw = String::from_utf8_lossy(&sc.raw);
    assert!(
        raw.contains("\x1b[?2004l") && raw.contains("\x1b[?1000l"),
        "bracketed paste and mouse reporting are switched off"
    );
    assert!(
        raw.contains("\x1b]52;c;Ly8gaGVsbG8K"),
        "the copied line went to the terminal's clipboard (OSC 52)"
    );
    let out = h.c("cat /main.rs").success();
    assert_eq!(
        String::from_utf8_lossy(&out.get_output().stdout),
        "fn main() {}\n// hello"
    );
}

#[test]
fn unsaved_changes_outlive_a_killed_editor_and_are_offered_back() {
    let h = Home::new();
    h.c("echo saved > /notes.txt").success();
    let mut s = in_terminal(&h, 24, "edit --vfs /notes.txt");
    let mut sc = Screen::new(24);
    sc.wait(&mut s, "the file", |t| t.contains("saved"));
    typ(&mut s, "unsaved ");
    sc.wait(&mut s, "the typing", |t| t.contains("/notes.txt [+]"));
    // The copy is written a moment after the typing stops.
    recovered_listing(&h, "/notes.txt");
    s.process_mut()
        .signal(rexpect::process::Signal::SIGKILL)
        .unwrap();
    wait_end(&mut s);
    let out = h.c("cat /notes.txt").success();
    assert_eq!(String::from_utf8_lossy(&out.get_output().stdout), "saved\n");
    let out = h.c("edit --recovered /notes.txt").success();
    assert_eq!(
        String::from_utf8_lossy(&out.get_output().stdout),
        "unsaved saved\n"
    );
    // The next edit offers the text back.
    let mut s = in_terminal(&h, 24, "edit --vfs /notes.txt");
    let mut sc = Screen::new(24);
    sc.wait(&mut s, "the offer", |t| {
        t.contains("Unsaved changes to /notes.txt")
    });
    typ(&mut s, "r");
    sc.wait(&mut s, "the restored text", |t| t.contains("unsaved saved"));
    typ(&mut s, "\x13\x11");
    assert_eq!(exit_code(&mut s), 0);
    let out = h.c("cat /notes.txt").success();
    assert_eq!(
        String::from_utf8_lossy(&out.get_output().stdout),
        "unsaved saved\n"
    );
    let out = h.c("edit --recovered").success();
    assert!(out.get_output().stdout.is_empty(), "the copy is gone");
}

#[test]
fn a_terminated_editor_keeps_its_text_and_gives_the_terminal_back() {
    let h = Home::new();
    let mut s = in_terminal(&h, 24, "edit --vfs /draft.md");
    let mut sc = Screen::new(24);
    sc.wait(&mut s, "the editor", |t| t.contains("/draft.md"));
    typ(&mut s, "# Draft");
    sc.wait(&mut s, "the typing", |t| t.contains("/draft.md [+]"));
    s.process_mut()
        .signal(rexpect::process::Signal::SIGTERM)
        .unwrap();
    assert_ended_by_sigterm(&mut s);
    sc.wait_for(&mut s, "the normal screen", given_back);
    let out = h.c("edit --recovered /draft.md").success();
    assert_eq!(String::from_utf8_lossy(&out.get_output().stdout), "# Draft");
}

/// From the host shell a path means the host file, as in any editor: its directory is
/// mounted for the run (a jail, stored nowhere), the file opens with its text and saves in
/// place; a new file in a host directory is created there.
#[test]
fn valyxo_edit_opens_and_saves_host_files() {
    let h = Home::new();
    let dir = common::host_dir();
    std::fs::write(dir.path().join("x.txt"), "on the host\n").unwrap();
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("stty rows 24 cols 80 && exec \"$0\" --home \"$1\" edit x.txt sub/new.md")
        .arg(common::BIN)
        .arg(h.path())
        .current_dir(dir.path())
        .env("TERM", "xterm-256color")
        .env_remove("VALYXO_HOME");
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let mut s = spawn(c, 10_000);
    let mut sc = Screen::new(24);
    sc.wait(&mut s, "the host file", |t| t.contains("on the host"));
    typ(&mut s, "edited ");
    sc.wait(&mut s, "the typing", |t| t.contains("edited on the host"));
    typ(&mut s, "\x13"); // Ctrl-S
    sc.wait(&mut s, "the save", |t| t.contains("Saved /host"));
    typ(&mut s, "\x11"); // Ctrl-Q: the new file's buffer is empty and unchanged
    assert_eq!(exit_code(&mut s), 0);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("x.txt")).unwrap(),
        "edited on the host\n"
    );
    // The mount was for that run only.
    h.c("mounts")
        .success()
        .stdout(predicates::str::contains("/host").not());
    h.c("ls /")
        .success()
        .stdout(predicates::str::contains("host").not());
    // A path that is no file is said before the screen is taken.
    let out = h
        .cmd()
        .current_dir(dir.path())
        .args(["edit", "sub"])
        .assert()
        .code(1);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("'sub' is a directory"), "{err}");
}

/// A host file that is a symlink to a file in another directory (a dotfile kept elsewhere)
/// is edited as any editor does it: the file it leads to is opened and saved, and the link
/// stays a link.
#[test]
fn valyxo_edit_follows_a_host_symlink_to_its_file() {
    let h = Home::new();
    let dir = common::host_dir();
    let (home, dots) = (dir.path().join("home"), dir.path().join("dots"));
    std::fs::create_dir(&home).unwrap();
    std::fs::create_dir(&dots).unwrap();
    std::fs::write(dots.join("rc"), "kept elsewhere\n").unwrap();
    std::os::unix::fs::symlink(dots.join("rc"), home.join(".rc")).unwrap();
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("stty rows 24 cols 80 && exec \"$0\" --home \"$1\" edit .rc")
        .arg(common::BIN)
        .arg(h.path())
        .current_dir(&home)
        .env("TERM", "xterm-256color")
        .env_remove("VALYXO_HOME");
    let mut s = spawn(c, 10_000);
    let mut sc = Screen::new(24);
    sc.wait(&mut s, "the linked file", |t| t.contains("kept elsewhere"));
    typ(&mut s, "edited ");
    sc.wait(&mut s, "the typing", |t| {
        t.contains("edited kept elsewhere")
    });
    typ(&mut s, "\x13"); // Ctrl-S
    sc.wait(&mut s, "the save", |t| t.contains("Saved /host"));
    typ(&mut s, "\x11");
    assert_eq!(exit_code(&mut s), 0);
    assert_eq!(
        std::fs::read_to_string(dots.join("rc")).unwrap(),
        "edited kept elsewhere\n"
    );
    assert!(std::fs::symlink_metadata(home.join(".rc"))
        .unwrap()
        .file_type()
        .is_symlink());
}

/// A host name holding a terminal escape (as a glob of the host shell may give) is shown
/// escaped in `valyxo edit`'s error, never sent raw.
#[test]
fn valyxo_edit_shows_a_host_name_escaped_in_its_error() {
    let h = Home::new();
    let dir = common::host_dir();
    let out = h
        .cmd()
        .current_dir(dir.path())
        .args(["edit", "a\u{1b}]0;title\u{7}b/x.txt"])
        .assert()
        .code(1);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("its directory"), "{err:?}");
    assert!(!err.contains('\u{1b}') && !err.contains('\u{7}'), "{err:?}");
}

#[test]
fn the_editor_refuses_what_it_cannot_edit_before_taking_the_screen() {
    let h = Home::new();
    h.c("mkdir /d").success();
    let mut s = in_terminal(&h, 24, "edit --vfs /d");
    let out = s.exp_eof().unwrap();
    assert!(out.contains("edit: /d is a directory"), "{out:?}");
    assert!(!out.contains("\x1b[?1049h"), "no alternate screen: {out:?}");
}

#[test]
fn the_editor_refuses_a_fifo_instead_of_waiting_for_a_writer() {
    use std::os::unix::ffi::OsStrExt;
    let h = Home::new();
    let dir = common::host_dir();
    let fifo = std::ffi::CString::new(dir.path().join("pipe").as_os_str().as_bytes()).unwrap();
    // SAFETY: makes a fifo in a temporary directory of this test.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    h.c(&format!("mount {} /m", dir.path().display())).success();
    let mut s = in_terminal(&h, 24, "edit --vfs /m/pipe");
    let out = s.exp_eof().unwrap();
    assert!(
        out.contains("edit: /m/pipe is a fifo, socket or device"),
        "{out:?}"
    );
    assert!(!out.contains("\x1b[?1049h"), "no alternate screen: {out:?}");
}

#[test]
fn chat_on_a_terminal_streams_answers_and_ends_on_exit() {
    let server = common::openai::Server::start(false);
    let h = common::assistant_home(&server.url, "echo");
    let mut s = in_terminal(&h, 24, "-c chat");
    s.exp_string("Chatting with echo as 'default'").unwrap();
    s.exp_string("you> ").unwrap();
    typ(&mut s, "hello there\r");
    s.exp_string("You said: hello there (2 messages)").unwrap();
    s.exp_string("you> ").unwrap();
    typ(&mut s, "/persona nobody\r");
    s.exp_string("no persona 'nobody'").unwrap();
    typ(&mut s, "and more\r");
    s.exp_string("You said: and more (4 messages)").unwrap();
    typ(&mut s, "/exit\r");
    assert_eq!(exit_code(&mut s), 0);
    let out = h.out("ai history");
    assert!(out.contains("4 msg  hello there"), "{out}");
}

#[test]
fn ctrl_c_stops_an_answer_from_a_silent_server_and_keeps_what_came() {
    let server = common::openai::Server::start(false);
    let h = common::assistant_home(&server.url, "stall");
    let mut s = repl(&h, &["--no-color"]);
    s.send_line("ask hello").unwrap();
    s.exp_string("You said: ").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    s.send_control('c').unwrap();
    let before = s.exp_string("valyxo:~/Projects/Main [130]> ").unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "the server is still silent"
    );
    // What came stays on the screen (laid out in place of its preview, where that can be
    // erased), and the prompt starts a line of its own.
    assert!(
        before.starts_with("\r\n") || before.contains("You said:\r\n"),
        "{before:?}"
    );
    s.send_line("ai show 1").unwrap();
    s.exp_string("assistant:\r\nYou said:").unwrap();
    s.exp_string(PROMPT).unwrap();
    s.send_control('d').unwrap();
    assert_eq!(exit_code(&mut s), 0);
}

#[test]
fn quitting_the_editor_without_saving_returns_to_the_prompt() {
    let h = Home::new();
    let mut s = in_terminal(&h, 24, "--no-color");
    let mut sc = Screen::new(24);
    sc.wait(&mut s, "the prompt", |t| t.contains(PROMPT.trim_end()));
    typ(&mut s, "edit /x.txt\r");
    sc.wait(&mut s, "the editor", |t| {
        t.contains("/x.txt") && t.contains("F1 help")
    });
    typ(&mut s, "abc");
    sc.wait(&mut s, "the typing", |t| t.contains("/x.txt [+]"));
    typ(&mut s, "\x11"); // Ctrl-Q
    sc.wait(&mut s, "the question", |t| {
        t.contains("Save changes to /x.txt?")
    });
    typ(&mut s, "n");
    sc.wait(&mut s, "the shell's screen again", |t| {
        t.contains("> edit /x.txt")
    });
    assert!(!sc.parser.screen().alternate_screen());
    typ(&mut s, "echo alive; ls /\r");
    let t = sc.wait(&mut s, "the output", |t| t.contains("alive\nProjects\n"));
    assert!(
        t.contains("alive\nProjects\nvalyxo:"),
        "the shell lives, and nothing was saved: {t}"
    );
    typ(&mut s, "exit\r");
    assert_eq!(exit_code(&mut s), 0);
}

#[test]
fn answers_on_a_terminal_have_their_code_highlighted_and_piped_ones_stay_plain() {
    let server = common::openai::Server::start(false);
    let h = common::assistant_home(&server.url, "code");
    let mut s = in_terminal(&h, 24, "-c 'ask fix it'");
    let mut sc = Screen::new(24);
    let t = sc.wait(&mut s, "the answer", |t| t.contains("fn other() {}"));
    assert!(
        t.contains("Use this:\n\n```rust\nfn fixed() -> u32 {"),
        "{t}"
    );
    assert_eq!(exit_code(&mut s), 0);
    // The "fn" of the code block is coloured; the prose is not.
    let screen = sc.parser.screen();
    let row = screen
        .rows(0, 80)
        .position(|r| r.starts_with("fn fixed"))
        .expect("the code line") as u16;
    let keyword = screen.cell(row, 0).expect("cell");
    assert!(
        keyword.fgcolor() != vt100::Color::Default || keyword.bold(),
        "highlighted"
    );
    let prose_row = screen
        .rows(0, 80)
        .position(|r| r.starts_with("Use this:"))
        .expect("prose") as u16;
    assert_eq!(
        screen.cell(prose_row, 0).expect("cell").fgcolor(),
        vt100::Color::Default
    );
    // Piped, the answer is its exact text.
    let out = h.out("ask fix it | cat");
    assert!(
        out.starts_with("Use this:\n```rust\nfn fixed() -> u32 {\n"),
        "{out:?}"
    );
    assert!(!out.contains('\x1b'));
}

#[test]
fn the_text_of_a_new_buffer_outlives_a_killed_editor() {
    let h = Home::new();
    let mut s = in_terminal(&h, 24, "-c edit");
    let mut sc = Screen::new(24);
    sc.wait(&mut s, "the editor", |t| t.contains("[new]"));
    typ(&mut s, "draft words");
    sc.wait(&mut s, "the typing", |t| t.contains("[new] [+]"));
    let listed = recovered_listing(&h, "new:");
    s.process_mut()
        .signal(rexpect::process::Signal::SIGKILL)
        .unwrap();
    wait_end(&mut s);
    assert!(listed.contains("a buffer without a name"), "{listed}");
    let key = listed
        .split_whitespace()
        .find(|w| w.starts_with("new:"))
        .expect("the key");
    assert_eq!(h.out(&format!("edit --recovered {key}")), "draft words");
    let mut s = in_terminal(&h, 24, "-c edit");
    let mut sc = Screen::new(24);
    sc.wait(&mut s, "the offer", |t| {
        t.contains("The text of a new buffer")
    });
    typ(&mut s, "r");
    sc.wait(&mut s, "the text", |t| t.contains("draft words"));
    typ(&mut s, "\x13"); // Ctrl-S asks for a name
    sc.wait(&mut s, "the name prompt", |t| t.contains("Save as:"));
    typ(&mut s, "/draft.txt\r\x11");
    assert_eq!(exit_code(&mut s), 0);
    assert_eq!(h.out("cat /draft.txt"), "draft words");
    assert_eq!(h.out("edit --recovered"), "");
}

#[test]
fn register_and_login_read_the_password_without_echo() {
    let server = common::server::Server::sqlite();
    let h = Home::new();
    let mut s = repl(&h, &["--no-color"]);
    typ(
        &mut s,
        &format!(
            "register --server {} --email pty@example.com ptyuser\r",
            server.url
        ),
    );
    // The rule comes before the password is asked for; one that breaks it is asked again.
    s.exp_string("a password needs 8 or more characters, with a lower-case letter, an upper-case letter and a digit.")
        .unwrap();
    s.exp_string("Password (not shown): ").unwrap();
    typ(&mut s, "weakpass\r");
    s.exp_string(
        "Password must hold a lower-case letter, an upper-case letter and a digit: try another.",
    )
    .unwrap();
    s.exp_string("Password (not shown): ").unwrap();
    typ(&mut s, "Hidden-Pass1\r");
    s.exp_string("Password again: ").unwrap();
    typ(&mut s, "Hidden-Pass1\r");
    let before = s.exp_string("logged in as ptyuser").unwrap();
    assert!(
        !before.contains("Hidden-Pass1"),
        "the password was echoed: {before}"
    );
    s.exp_string(PROMPT).unwrap();
    // A typo in the second entry creates nothing.
    typ(&mut s, "logout\r");
    s.exp_string("logged out of ptyuser").unwrap();
    typ(
        &mut s,
        &format!(
            "register --server {} --email b@example.com other\r",
            server.url
        ),
    );
    s.exp_string("Password (not shown): ").unwrap();
    typ(&mut s, "Hidden-Pass1\r");
    s.exp_string("Password again: ").unwrap();
    typ(&mut s, "Hidden-Pass2\r");
    s.exp_string("the passwords differ; nothing was created")
        .unwrap();
    // A server that does not answer, or a name the server would refuse, is said before any
    // password is asked for.
    typ(
        &mut s,
        "register --server http://127.0.0.1:9 --email c@example.com third\r",
    );
    let said = s
        .exp_string("register: cannot reach the server at http://127.0.0.1:9")
        .unwrap();
    assert!(!said.contains("Password"), "{said}");
    typ(
        &mut s,
        &format!(
            "register --server {} --email not-an-address 'a b'\r",
            server.url
        ),
    );
    let said = s
        .exp_string("register: Username may hold only letters, digits, '_' and '-'; Email must be a valid address; nothing was created")
        .unwrap();
    assert!(!said.contains("Password"), "{said}");
    typ(&mut s, &format!("login --server {} ptyuser\r", server.url));
    s.exp_string("Password for ptyuser (not shown): ").unwrap();
    typ(&mut s, "Hidden-Pass1\r");
    let before = s.exp_string("logged in as ptyuser").unwrap();
    assert!(!before.contains("Hidden-Pass1"), "{before}");
    typ(&mut s, "exit\r");
    assert_eq!(exit_code(&mut s), 0);
    // Neither the password nor the typo reached the history.
    let history = h.out("history");
    assert!(!history.contains("Hidden-Pass"), "{history}");
}

/// Ctrl-C at a password prompt gives up at once: nothing is created, and what is typed next
/// is a command again, never taken for the password.
#[test]
fn ctrl_c_at_a_password_prompt_gives_up() {
    let server = common::server::Server::sqlite();
    let h = Home::new();
    let mut s = repl(&h, &["--no-color"]);
    typ(
        &mut s,
        &format!(
            "register --server {} --email cc@example.com ccuser\r",
            server.url
        ),
    );
    s.exp_string("Password (not shown): ").unwrap();
    s.send_control('c').unwrap();
    s.exp_string("valyxo:~/Projects/Main [130]> ").unwrap();
    typ(&mut s, "echo after\r");
    s.exp_string("after\r\n").unwrap();
    s.exp_string(PROMPT).unwrap();
    typ(&mut s, "exit\r");
    assert_eq!(exit_code(&mut s), 0);
    // The name is still free: no account was made.
    h.cmd()
        .args([
            "-c",
            &format!(
                "register --server {} --email cc@example.com ccuser",
                server.url
            ),
        ])
        .write_stdin("Hidden-Pass1\n")
        .assert()
        .success();
}

/// Lines written to the terminal faster than the shell reads them all run, in order, and are
/// all kept in history: a paste of 100 lines in one write, typing ahead while a command runs,
/// and both while a job runs.
#[test]
fn pasted_and_typed_ahead_lines_all_run() {
    let h = Home::new();
    let mut s = repl(&h, &["--no-color"]);
    let lines: String = (0..100).map(|i| format!("echo p{i} >> /log\n")).collect();
    typ(&mut s, &lines);
    s.send_line("echo pasted-done").unwrap();
    s.exp_string("pasted-done\r\n").unwrap();
    // Typed ahead, one line at a time without waiting, while a command runs.
    s.send_line("exec sleep 0.5").unwrap();
    for i in 0..40 {
        typ(&mut s, &format!("echo t{i} >> /log\n"));
    }
    s.send_line("echo typed-done").unwrap();
    s.exp_string("typed-done\r\n").unwrap();
    // And with a background job running.
    s.send_line("exec sleep 3 &").unwrap();
    let lines: String = (0..100).map(|i| format!("echo j{i} >> /log\n")).collect();
    typ(&mut s, &lines);
    s.send_line("echo job-done").unwrap();
    s.exp_string("job-done\r\n").unwrap();
    s.send_line("kill %1").unwrap();
    // Ctrl-D once the kill is done (typed while a command runs, the terminal is not the
    // shell's to read yet).
    s.exp_string("[1] killed").unwrap();
    s.send_control('d').unwrap();
    s.send_control('d').unwrap();
    let _ = exit_code(&mut s);
    let log = h.out("cat /log");
    let want: Vec<String> = (0..100)
        .map(|i| format!("p{i}"))
        .chain((0..40).map(|i| format!("t{i}")))
        .chain((0..100).map(|i| format!("j{i}")))
        .collect();
    assert_eq!(log.lines().collect::<Vec<_>>(), want);
    let history = h.out("history search '>> /log'");
    assert_eq!(history.lines().count(), 240, "{history}");
}

/// A bracketed paste (what terminals send for Ctrl-Shift-V) of several lines waits at the
/// prompt for review, and runs all of it on Enter.
#[test]
fn a_bracketed_paste_waits_for_enter() {
    let h = Home::new();
    let mut s = repl(&h, &["--no-color"]);
    typ(&mut s, "\x1b[200~echo one > /a\necho two >> /a\x1b[201~");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        h.c("cat /a").get_output().status.code() != Some(0),
        "nothing ran yet"
    );
    typ(&mut s, "\r");
    s.send_line("echo reviewed").unwrap();
    s.exp_string("reviewed\r\n").unwrap();
    s.send_control('d').unwrap();
    assert_eq!(exit_code(&mut s), 0);
    assert_eq!(h.out("cat /a"), "one\ntwo\n");
}

/// Ctrl-D with a job running warns once and leaves on the second; a command in between
/// makes the next Ctrl-D warn again.
#[test]
fn ctrl_d_with_running_jobs_warns_first() {
    let h = Home::new();
    let mut s = repl(&h, &["--no-color"]);
    s.send_line("exec sleep 30 &").unwrap();
    s.exp_string("~/Projects/Main [1&]> ").unwrap();
    s.send_control('d').unwrap();
    s.exp_string("1 job is still running ('jobs' lists them); Ctrl-D again stops it and leaves")
        .unwrap();
    s.send_line("echo still here").unwrap();
    s.exp_string("still here\r\n").unwrap();
    s.send_control('d').unwrap();
    s.exp_string("still running").unwrap();
    s.send_control('d').unwrap();
    s.exp_string("stopping 1 background job").unwrap();
    assert_eq!(exit_code(&mut s), 0);
}

/// Output without a final new line stays on the screen, marked, instead of being drawn over
/// by the next prompt; a finished line gets no mark.
#[test]
fn unfinished_output_is_kept_and_marked() {
    let h = Home::new();
    h.c("echo -n 'no newline' > /partial.txt").success();
    let mut s = in_terminal(&h, 24, "--no-color");
    let mut sc = Screen::new(24);
    sc.wait(&mut s, "the prompt", |t| {
        t.contains("valyxo:~/Projects/Main> ")
    });
    typ(&mut s, "cat /partial.txt\r");
    let t = sc.wait(&mut s, "the second prompt", |t| {
        t.matches("valyxo:~/Projects/Main> ").count() >= 2
    });
    // Row by row (the marked line wrapped on purpose).
    let rows = |sc: &Screen| -> Vec<String> {
        sc.parser
            .screen()
            .rows(0, 80)
            .map(|r| r.trim_end().to_string())
            .collect()
    };
    assert!(rows(&sc).contains(&"no newline%".to_string()), "{t}");
    typ(&mut s, "echo done\r");
    let t = sc.wait(&mut s, "the third prompt", |t| {
        t.matches("valyxo:~/Projects/Main> ").count() >= 3
    });
    let r = rows(&sc);
    assert!(r.contains(&"done".to_string()), "{t}");
    assert_eq!(t.matches('%').count(), 1, "{t}");
    typ(&mut s, "\x04");
    assert_eq!(exit_code(&mut s), 0);
}

/// A pseudo-terminal of 24 × 80 whose far end runs `valyxo ARGS` as the controlling
/// process of a session of its own, as a terminal window runs its shell. Returns the
/// terminal's own end and the process.
fn in_window(h: &Home, args: &[&str]) -> (std::fs::File, std::process::Child) {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    let (mut master, mut slave) = (0, 0);
    let size = libc::winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty fills in two descriptors, which are owned from here on.
    let r = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(r, 0, "openpty");
    // Not handed to any process started meanwhile, which would keep the terminal open.
    for fd in [master, slave] {
        // SAFETY: fcntl on descriptors just made.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let mut c = Command::new(common::BIN);
    c.arg("--home")
        .arg(h.path())
        .args(args)
        .env("TERM", "xterm-256color")
        .env_remove("VALYXO_HOME")
        .stdin(slave.try_clone().expect("dup"))
        .stdout(slave.try_clone().expect("dup"))
        .stderr(slave);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        c.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = c.spawn().expect("spawn valyxo");
    (std::fs::File::from(master), child)
}

/// Reads the terminal's output until it holds `needle` (at most 10 s).
fn read_until(master: &mut std::fs::File, seen: &mut Vec<u8>, needle: &str) {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(seen).contains(needle) {
        assert!(
            Instant::now() < deadline,
            "the terminal never showed {needle:?}"
        );
        let mut p = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut p, 1, 100) } > 0 {
            let mut buf = [0u8; 4096];
            match master.read(&mut buf) {
                Ok(n) if n > 0 => seen.extend_from_slice(&buf[..n]),
                _ => panic!("the terminal closed"),
            }
        }
    }
}

#[test]
fn closing_the_terminal_under_the_editor_keeps_the_text_and_ends_it() {
    use std::io::Write;
    let h = Home::new();
    h.c("echo saved > /notes.txt").success();
    let (mut master, mut child) = in_window(&h, &["edit", "--vfs", "/notes.txt"]);
    let mut seen = Vec::new();
    read_until(&mut master, &mut seen, "saved");
    // Typed and closed at once: no pause for a copy to be written.
    master
        .write_all(b"typed before the window closed ")
        .unwrap();
    read_until(&mut master, &mut seen, "[+]");
    drop(master);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the editor did not end when its terminal went away");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success(), "ended as the hangup ends it: {status:?}");
    let out = h.c("edit --recovered /notes.txt").success();
    assert_eq!(
        String::from_utf8_lossy(&out.get_output().stdout),
        "typed before the window closed saved\n"
    );
    // The next editor offers it back instead of taking it for another one's.
    let mut s = in_terminal(&h, 24, "edit --vfs /notes.txt");
    let mut sc = Screen::new(24);
    sc.wait(&mut s, "the offer", |t| {
        t.contains("Unsaved changes to /notes.txt")
    });
    typ(&mut s, "r\x13\x11");
    assert_eq!(exit_code(&mut s), 0);
    assert_eq!(
        h.out("cat /notes.txt"),
        "typed before the window closed saved\n"
    );
}

#[test]
fn steady_typing_is_copied_before_a_kill() {
    let h = Home::new();
    h.c("echo saved > /notes.txt").success();
    let mut s = in_terminal(&h, 24, "edit --vfs /notes.txt");
    let mut sc = Screen::new(24);
    sc.wait(&mut s, "the file", |t| t.contains("saved"));
    // A key every 100 ms for 4 s: never a pause long enough for the idle copy.
    for i in 0..40 {
        typ(&mut s, &char::from(b'a' + (i % 26) as u8).to_string());
        std::thread::sleep(Duration::from_millis(100));
        while s.try_read().is_some() {}
    }
    s.process_mut()
        .signal(rexpect::process::Signal::SIGKILL)
        .unwrap();
    wait_end(&mut s);
    let out = h.c("edit --recovered /notes.txt").success();
    let copy = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        copy.len() > "saved\n".len() + 10 && copy.ends_with("saved\n"),
        "most of the typing was kept: {copy:?}"
    );
}

#[test]
fn esc_and_an_arrow_in_one_read_are_esc_then_the_arrow() {
    let h = Home::new();
    h.c("echo 'one\ntwo' > /keys.txt").success();
    let mut s = in_terminal(&h, 24, "edit --vfs /keys.txt");
    let mut sc = Screen::new(24);
    sc.wait(&mut s, "the file", |t| t.contains("two"));
    // Down, then Esc and Up sent together (as a slow link or a key macro delivers them).
    typ(&mut s, "\x1b[B");
    sc.wait(&mut s, "line 2", |t| t.contains("Ln 2, Col 1"));
    typ(&mut s, "\x1b\x1b[AX");
    sc.wait(&mut s, "the typing on line 1", |t| t.contains("Xone"));
    typ(&mut s, "\x13\x11");
    assert_eq!(exit_code(&mut s), 0);
    assert_eq!(h.out("cat /keys.txt"), "Xone\ntwo\n");
}

#[test]
fn the_editor_counts_columns_by_character_as_seen() {
    let h = Home::new();
    h.c("echo 'cafe\u{301} 👨‍👩‍👧 x' > /u.txt").success();
    let mut s = in_terminal(&h, 24, "edit --vfs /u.txt");
    let mut sc = Screen::new(24);
    sc.wait(&mut s, "the file", |t| t.contains("Ln 1, Col 1 "));
    // End: after c a f é, a space, the family, a space and x.
    typ(&mut s, "\x1b[F");
    sc.wait(&mut s, "the column at the end", |t| {
        t.contains("Ln 1, Col 9 ")
    });
    // Left steps over x and the space, then the whole family.
    typ(&mut s, "\x1b[D\x1b[D\x1b[D");
    sc.wait(&mut s, "the column before the family", |t| {
        t.contains("Ln 1, Col 6 ")
    });
    typ(&mut s, "\x11"); // Ctrl-Q: nothing changed
    assert_eq!(exit_code(&mut s), 0);
    assert_eq!(h.out("cat /u.txt"), "cafe\u{301} 👨‍👩‍👧 x\n");
}

#[test]
fn a_nano_user_s_keys_do_what_nano_does() {
    let h = Home::new();
    h.c("echo 'one\ntwo' > /nano.txt").success();
    h.c("settings set editor.keymap nano").success();
    let mut s = in_terminal(&h, 24, "edit --vfs /nano.txt");
    let mut sc = Screen::new(24);
    sc.wait(&mut s, "nano's hints", |t| {
        t.contains("Ctrl-O save · Ctrl-X quit")
    });
    // Ctrl-K cuts the line and Ctrl-U puts it back below; Ctrl-O writes; Ctrl-X leaves.
    typ(&mut s, "\x0b");
    sc.wait(&mut s, "the cut", |t| t.contains("/nano.txt [+]"));
    typ(&mut s, "\x0e\x15\x0f");
    sc.wait(&mut s, "the save", |t| t.contains("Saved /nano.txt"));
    typ(&mut s, "\x18");
    assert_eq!(exit_code(&mut s), 0);
    assert_eq!(h.out("cat /nano.txt"), "two\none\n");
}

/// The README's tour, typed into the real shell line by line: every prompt it shows is the
/// prompt the shell prints before that line. Host paths become temporary directories; the
/// lines that need a full screen, a server or an assistant are typed as `true` (their
/// prompts are still checked).
#[test]
fn the_readme_tour_shows_the_prompts_the_shell_prints() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("the README");
    let said = readme
        .split_once("The prompt is `")
        .and_then(|(_, rest)| rest.split_once('`'))
        .expect("the README names the prompt")
        .0;
    assert_eq!(said, PROMPT, "the prompt the README names");
    let tour = readme
        .split_once("## A short tour")
        .and_then(|(_, rest)| rest.split_once("```text\n"))
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("the README's tour")
        .0;
    let h = Home::new();
    h.c("settings set man.pager false").success();
    let app = common::host_dir();
    // The tour's `exec git status` runs in a repository (or, without git here, a command
    // that succeeds as it would).
    let git = std::process::Command::new("git")
        .args(["init", "-q"])
        .arg(app.path())
        .status()
        .is_ok_and(|s| s.success());
    let notes = common::host_dir();
    std::fs::write(notes.path().join("todo.md"), "- tour\n").unwrap();
    let out = tempfile::tempdir().unwrap();
    let host = |line: &str| {
        line.replace("/home/me/app", &app.path().display().to_string())
            .replace("/home/me/notes", &notes.path().display().to_string())
            .replace(
                "/tmp/notes",
                &out.path().join("notes").display().to_string(),
            )
            .replace(
                "exec git status",
                if git { "exec git status" } else { "exec true" },
            )
    };
    let mut c = h.shell(&["--no-color"]);
    c.env_remove("VALYXO_API_KEY");
    let mut s = spawn(c, 15_000);
    let mut lines = 0;
    for line in tour.lines() {
        let at = line.find("> ").expect("a prompt on every line of the tour") + 2;
        let (prompt, typed) = line.split_at(at);
        // A comment after the command, set off by a space and '#'.
        let typed = typed.split(" # ").next().unwrap().trim_end();
        s.exp_string(prompt)
            .unwrap_or_else(|e| panic!("the prompt before '{typed}' is not '{prompt}': {e}"));
        let first = typed.split_whitespace().next().unwrap_or("");
        let needs_more = ["edit", "register", "sync"].contains(&first) || typed.contains("| ask");
        let send = if needs_more {
            "true".into()
        } else {
            host(typed)
        };
        s.send_line(&send).unwrap();
        if send.ends_with('&') {
            // While the job runs the prompt counts it ([1&]); the tour's next prompt is the
            // one after it ends.
            s.send_line("wait").unwrap();
        }
        lines += 1;
    }
    assert!(lines > 10, "the tour has {lines} lines");
    s.exp_string(PROMPT).expect("the prompt after the tour");
    s.send_line("exit").unwrap();
    assert_eq!(exit_code(&mut s), 0);
}

#[test]
fn a_save_on_a_full_disk_says_so_and_keeps_the_text_to_save_once_there_is_room() {
    let h = Home::new();
    let Some(small) = SmallFs::mount(h.path(), 2 << 20) else {
        return;
    };
    h.c("echo old > /note.txt").success();
    let mut s = in_terminal(&h, 24, "edit --vfs /note.txt");
    let mut sc = Screen::new(24);
    sc.wait(&mut s, "the editor", |t| t.contains("note.txt"));
    let filler = small.fill(0);
    typ(&mut s, "new ");
    typ(&mut s, "\x13"); // Ctrl-S
    sc.wait(&mut s, "the refusal", |t| {
        t.contains("cannot save /note.txt: the disk holding the state store is full")
    });
    assert_eq!(h.out("cat /note.txt"), "old\n");
    // The text is still there to save once there is room.
    std::fs::remove_file(filler).unwrap();
    typ(&mut s, "\x13");
    sc.wait(&mut s, "the save", |t| t.contains("Saved /note.txt"));
    typ(&mut s, "\x11"); // Ctrl-Q
    assert_eq!(exit_code(&mut s), 0);
    assert_eq!(h.out("cat /note.txt"), "new old\n");
}

#[test]
fn a_snippet_expands_on_tab_fills_its_mirrors_and_one_ctrl_z_takes_it_back() {
    let h = Home::new();
    h.c("echo '' > /loop.js").success();
    let mut s = in_terminal(&h, 24, "edit --vfs /loop.js");
    let mut sc = Screen::new(24);
    sc.wait(&mut s, "the editor", |t| t.contains("loop.js"));
    typ(&mut s, "for\t");
    sc.wait(&mut s, "the snippet", |t| {
        t.contains("for (let i = 0; i < 10; i++) {")
    });
    // The first stop's default is selected: typing replaces it and fills its mirrors.
    typ(&mut s, "row");
    sc.wait(&mut s, "the mirrors", |t| {
        t.contains("for (let row = 0; row < 10; row++) {")
    });
    // Tab to the next stop, then one Ctrl-Z takes everything back to the prefix.
    typ(&mut s, "\tn");
    sc.wait(&mut s, "the second stop", |t| {
        t.contains("for (let row = 0; row < n; row++) {")
    });
    typ(&mut s, "\x1a"); // Ctrl-Z
    sc.wait(&mut s, "the undo", |t| {
        !t.contains("let row") && t.contains("for")
    });
    typ(&mut s, "\x13"); // Ctrl-S
    sc.wait(&mut s, "the save", |t| t.contains("Saved /loop.js"));
    typ(&mut s, "\x11"); // Ctrl-Q
    assert_eq!(exit_code(&mut s), 0);
    let out = h.c("cat /loop.js").success();
    assert_eq!(String::from_utf8_lossy(&out.get_output().stdout), "for\n");
}
