//! The assistant through the real binary against a local OpenAI-compatible streaming server.

use crate::common;

use common::openai::Server;
use common::Home;
use predicates::str::contains;

/// A home pointed at `server` with `model`.
fn home(server: &Server, model: &str) -> Home {
    common::assistant_home(&server.url, model)
}

/// `valyxo --home H -c LINE` with the test key (or none) in the environment.
fn run(h: &Home, line: &str, key: Option<&str>, stdin: &str) -> assert_cmd::assert::Assert {
    let mut c = h.cmd();
    c.env_remove("VALYXO_API_KEY").env_remove("OPENAI_API_KEY");
    if let Some(k) = key {
        c.env("VALYXO_API_KEY", k);
    }
    c.arg("-c").arg(line).write_stdin(stdin).assert()
}

fn stdout(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stdout).into_owned()
}

#[test]
fn ask_streams_the_answer_with_piped_text_as_context_and_keeps_the_conversation() {
    let server = Server::start(true);
    let h = home(&server, "echo");
    let a = run(&h, "ask 'what is this?'", Some("sk-test"), "fn main() {}\n").success();
    assert_eq!(stdout(&a), "You said: what is this? (2 messages)\n");
    let req = &server.requests()[0];
    assert_eq!(req.path, "/v1/chat/completions");
    assert_eq!(req.authorization.as_deref(), Some("Bearer sk-test"));
    assert_eq!(req.body["model"], "echo");
    assert_eq!(req.body["stream"], true);
    let msgs = req.body["messages"].as_array().expect("messages");
    assert_eq!(msgs[0]["role"], "system");
    assert!(msgs[0]["content"].as_str().unwrap().contains("Valyxo"));
    assert_eq!(msgs[1]["role"], "user");
    assert_eq!(
        msgs[1]["content"],
        "what is this?\n\nInput:\n```\nfn main() {}\n```"
    );
    // Kept, and continued with everything said so far.
    let hist = stdout(&run(&h, "ai history", None, "").success());
    assert!(
        hist.contains("   1  ") && hist.contains("2 msg  what is this?"),
        "{hist}"
    );
    let a = run(&h, "ask -c 'and then?'", Some("sk-test"), "").success();
    assert_eq!(stdout(&a), "You said: and then? (4 messages)\n");
    let show = stdout(&run(&h, "ai show 1", None, "").success());
    assert!(
        show.starts_with("# what is this?  (default, echo, "),
        "{show}"
    );
    assert!(
        show.contains("you:\nand then?\n\nassistant:\nYou said: and then? (4 messages)"),
        "{show}"
    );
    // A persona given when continuing becomes the conversation's.
    run(&h, "ask -c -p review 'review it'", Some("sk-test"), "").success();
    let msgs = server.requests()[2].body["messages"].clone();
    assert!(msgs[0]["content"]
        .as_str()
        .unwrap()
        .contains("code reviewer"));
    assert_eq!(msgs.as_array().unwrap().len(), 6);
    let hist = stdout(&run(&h, "ai history", None, "").success());
    assert!(
        hist.contains("review        6 msg  what is this?"),
        "{hist}"
    );
}

#[test]
fn files_and_personas_shape_the_question() {
    let server = Server::start(false);
    let h = home(&server, "echo");
    h.c("echo 'let x = 1;' > /a.rhai").success();
    run(&h, "ask -p review -f /a.rhai 'is this fine?'", None, "").success();
    let req = &server.requests()[0];
    let msgs = req.body["messages"].as_array().expect("messages");
    assert!(msgs[0]["content"]
        .as_str()
        .unwrap()
        .contains("code reviewer"));
    assert_eq!(
        msgs[1]["content"],
        "is this fine?\n\nFile /a.rhai:\n```\nlet x = 1;\n```"
    );
    assert_eq!(req.authorization, None, "no key, none sent");
    run(&h, "ask -p poet hi", None, "").code(1).stderr(contains(
        "no persona 'poet': choose one of default, explain, review",
    ));
    let host = common::host_dir();
    std::fs::write(host.path().join("bin.dat"), b"x\xff\n").unwrap();
    h.c(&format!(
        "import {}/bin.dat /bin.dat",
        host.path().display()
    ))
    .success();
    run(&h, "ask -f /bin.dat hi", None, "")
        .code(1)
        .stderr(contains("/bin.dat is not UTF-8 text"));
}

#[test]
fn server_errors_are_explained_and_nothing_is_kept() {
    let server = Server::start(true);
    let h = home(&server, "echo");
    run(&h, "ask hello", Some("sk-wrong"), "")
        .code(1)
        .stderr(contains(
            "the assistant answered 401: Incorrect API key provided — check the API key",
        ));
    let h2 = home(&server, "no-such-model");
    run(&h2, "ask hello", Some("sk-test"), "")
        .code(1)
        .stderr(contains(
            "404: model 'no-such-model' not found — check assistant.url",
        ));
    assert_eq!(stdout(&run(&h, "ai history", None, "").success()), "");
    // Nothing listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    h.c(&format!(
        "settings set assistant.url http://127.0.0.1:{port}/v1"
    ))
    .success();
    run(&h, "ask hello", None, "")
        .code(1)
        .stderr(contains(format!(
            "cannot reach the assistant at http://127.0.0.1:{port}/v1"
        )));
}

#[test]
fn an_answer_cut_off_mid_stream_is_kept_as_far_as_it_came() {
    let server = Server::start(false);
    let h = home(&server, "drop");
    let a = run(&h, "ask tell me", None, "").code(1);
    assert_eq!(stdout(&a), "You said: \n");
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        err.contains("mid-answer") || err.contains("before it was complete"),
        "{err}"
    );
    assert!(
        err.contains("the part received is kept in conversation 1"),
        "{err}"
    );
    let show = stdout(&run(&h, "ai show 1", None, "").success());
    assert!(show.ends_with("assistant:\nYou said:\n"), "{show:?}");
}

#[test]
fn a_server_that_does_not_stream_still_works() {
    let server = Server::start(false);
    let h = home(&server, "plain");
    let a = run(&h, "ask hi", None, "").success();
    assert_eq!(stdout(&a), "You said: hi (2 messages)\n");
}

#[test]
fn chat_takes_one_question_per_piped_line() {
    let server = Server::start(false);
    let h = home(&server, "echo");
    let a = run(&h, "chat -p explain", None, "first\n\nsecond\n").success();
    assert_eq!(
        stdout(&a),
        "You said: first (2 messages)\nYou said: second (4 messages)\n"
    );
    let hist = stdout(&run(&h, "ai history", None, "").success());
    assert!(hist.contains("explain       4 msg  first"), "{hist}");
    run(&h, "ai rm 1", None, "").success();
    run(&h, "ai rm 1", None, "")
        .code(1)
        .stderr(contains("no conversation 1"));
}

#[test]
fn a_stored_key_is_used_and_never_shown() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start(true);
    let h = home(&server, "echo");
    // This machine has no keyring service, so the key goes to a private file.
    let a = run(&h, "ai key set", None, "sk-test\n").success();
    let said = stdout(&a);
    assert!(!said.contains("sk-test"));
    let file = h.path().join("credentials.json");
    if !said.contains("No OS keyring service is running here") {
        assert!(said.contains("in the OS keyring"), "{said}");
        assert!(!file.exists());
    } else {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let status = stdout(&run(&h, "ai", None, "").success());
    assert!(!status.contains("sk-test"), "{status}");
    assert!(status.contains("key      from "), "{status}");
    run(&h, "ask hi", None, "").success();
    assert_eq!(
        server.requests()[0].authorization.as_deref(),
        Some("Bearer sk-test")
    );
    run(&h, "ai key remove", None, "").success();
    run(&h, "ai key remove", None, "")
        .code(1)
        .stderr(contains("no key was stored"));
    run(&h, "ask hi", None, "").code(1).stderr(contains("401"));
    run(&h, "ai key set", None, "two words\n")
        .code(1)
        .stderr(contains("spaces or control characters"));
}

#[test]
fn scripts_ask_with_the_ask_function() {
    let server = Server::start(false);
    let h = home(&server, "echo");
    let mut c = h.cmd();
    c.env_remove("VALYXO_API_KEY").env_remove("OPENAI_API_KEY");
    let a = c.args(["-e", r#"ask("from a script")"#]).assert().success();
    assert_eq!(stdout(&a), "You said: from a script (2 messages)\n");
}

#[test]
fn the_editor_pane_asks_about_the_selection_and_inserts_a_code_block() {
    use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
    use valyxo::editor::{load, Editor, Options};
    use valyxo::vfs::VPath;
    let server = Server::start(false);
    let h = home(&server, "code");
    h.c("echo 'fn broken() {}' > /a.rs; echo 'fn keep() {}' >> /a.rs")
        .success();
    let hub = valyxo::hub::Hub::open(valyxo::hub::HubOptions {
        home: Some(h.path().to_path_buf()),
        no_color: true,
        ..Default::default()
    })
    .unwrap();
    let path = VPath::parse_absolute("/a.rs").unwrap();
    let b = load(&hub, &path, &hub.theme()).unwrap();
    let opts = Options {
        tab_width: 4,
        soft_tabs: true,
        color: true,
        system_clipboard: false,
        auto_pairs: false,
    };
    let mut ed = Editor::new(
        hub.clone(),
        VPath::parse_absolute("/").unwrap(),
        vec![b],
        opts,
    );
    let key = |ed: &mut Editor, code, mods| ed.handle(&Event::Key(KeyEvent::new(code, mods)));
    // Select the first line, open the pane and ask.
    key(&mut ed, KeyCode::End, KeyModifiers::SHIFT);
    key(&mut ed, KeyCode::Char('e'), KeyModifiers::CONTROL);
    for c in "fix it".chars() {
        key(&mut ed, KeyCode::Char(c), KeyModifiers::NONE);
    }
    key(&mut ed, KeyCode::Enter, KeyModifiers::NONE);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while ed.pane_busy() {
        ed.work();
        assert!(std::time::Instant::now() < deadline, "no answer");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    ed.work();
    let req = &server.requests()[0];
    let question = req.body["messages"][1]["content"].as_str().unwrap();
    assert_eq!(
        question,
        "fix it\n\nThe selected text of /a.rs:\n```\nfn broken() {}\n```"
    );
    let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 30)).unwrap();
    term.draw(|f| ed.draw(f)).unwrap();
    let screen: String = term
        .backend()
        .buffer()
        .content()
        .iter()
        .map(|c| c.symbol())
        .collect();
    assert!(screen.contains("Assistant (default)"), "{screen}");
    assert!(screen.contains("you: fix it"), "{screen}");
    assert!(screen.contains("block 2/2"), "the last block is chosen");
    // The code in the pane is highlighted in the theme.
    let buf = term.backend().buffer().clone();
    let keyword = hub.theme().style("syntax.keyword").to_ratatui();
    let at = (0..30u16)
        .flat_map(|y| (0..118u16).map(move |x| (x, y)))
        .find(|&(x, y)| {
            buf[(x, y)].symbol() == "│"
                && buf[(x + 2, y)].symbol() == "f"
                && buf[(x + 3, y)].symbol() == "n"
        })
        .expect("a code line in the pane");
    assert_eq!(
        buf[(at.0 + 2, at.1)].fg,
        keyword.fg.expect("a keyword colour")
    );
    // Tab picks the first block; Ctrl-Y puts it in place of the selection.
    key(&mut ed, KeyCode::Tab, KeyModifiers::NONE);
    key(&mut ed, KeyCode::Char('y'), KeyModifiers::CONTROL);
    assert_eq!(
        ed.buffers[0].rope.to_string(),
        "fn fixed() -> u32 {\n    42\n}\nfn keep() {}\n"
    );
    // Kept as a conversation.
    let hist = stdout(&run(&h, "ai history", None, "").success());
    assert!(hist.contains("2 msg  edit /a.rs"), "{hist}");
}

/// Needs a running Secret Service (`.ci/run` starts gnome-keyring in a D-Bus session).
#[test]
#[ignore = "needs a Secret Service keyring; run by .ci/run under dbus-run-session"]
fn keyring_holds_the_key_when_a_keyring_service_runs() {
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "no D-Bus session: run under dbus-run-session with gnome-keyring unlocked"
    );
    let server = Server::start(true);
    let h = home(&server, "echo");
    let a = run(&h, "ai key set", None, "sk-test\n").success();
    assert!(stdout(&a).contains("in the OS keyring"), "{}", stdout(&a));
    assert!(!h.path().join("credentials.json").exists());
    let status = stdout(&run(&h, "ai", None, "").success());
    assert!(status.contains("key      from the OS keyring"), "{status}");
    run(&h, "ask hi", None, "").success();
    assert_eq!(
        server.requests()[0].authorization.as_deref(),
        Some("Bearer sk-test")
    );
    run(&h, "ai key remove", None, "").success();
    let status = stdout(&run(&h, "ai", None, "").success());
    assert!(status.contains("key      none"), "{status}");
}

#[test]
fn ctrl_c_in_the_editor_pane_stops_an_answer_from_a_silent_server() {
    use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
    use valyxo::editor::{Editor, Options};
    use valyxo::vfs::VPath;
    let server = Server::start(false);
    let h = home(&server, "stall");
    let hub = valyxo::hub::Hub::open(valyxo::hub::HubOptions {
        home: Some(h.path().to_path_buf()),
        no_color: true,
        ..Default::default()
    })
    .unwrap();
    let opts = Options {
        tab_width: 4,
        soft_tabs: true,
        color: false,
        system_clipboard: false,
        auto_pairs: false,
    };
    let mut ed = Editor::new(hub, VPath::parse_absolute("/").unwrap(), Vec::new(), opts);
    let key = |ed: &mut Editor, code, mods| ed.handle(&Event::Key(KeyEvent::new(code, mods)));
    key(&mut ed, KeyCode::Char('e'), KeyModifiers::CONTROL);
    key(&mut ed, KeyCode::Char('?'), KeyModifiers::NONE);
    key(&mut ed, KeyCode::Enter, KeyModifiers::NONE);
    assert!(ed.pane_busy());
    // The first pieces arrive, then the server falls silent.
    std::thread::sleep(std::time::Duration::from_millis(300));
    ed.work();
    key(&mut ed, KeyCode::Char('c'), KeyModifiers::CONTROL);
    ed.work();
    assert!(
        !ed.pane_busy(),
        "stopped at once, though the server sends nothing"
    );
    let hist = stdout(&run(&h, "ai show 1", None, "").success());
    assert!(
        hist.contains("assistant:\nYou said:"),
        "kept as far as it came: {hist}"
    );
}

#[test]
fn a_server_silent_longer_than_the_timeout_is_given_up() {
    let server = Server::start(false);
    let h = home(&server, "stall");
    h.c("settings set assistant.timeout 500ms").success();
    let t = std::time::Instant::now();
    let a = run(&h, "ask hi", None, "").code(1);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(10),
        "not the server's 30 s"
    );
    assert_eq!(stdout(&a), "You said: \n");
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(err.contains("mid-answer"), "{err}");
    assert!(err.contains("kept in conversation 1"), "{err}");
}

#[test]
fn ai_models_lists_what_the_server_offers_and_marks_the_one_in_use() {
    let server = Server::start(true);
    let h = home(&server, "echo");
    let a = run(&h, "ai models", Some("sk-test"), "").success();
    assert_eq!(stdout(&a), "  code\n  drop\n* echo\n");
    run(&h, "ai models", Some("sk-nope"), "")
        .code(1)
        .stderr(contains("401: Incorrect API key provided"));
}

// ----- Answers cannot drive the terminal -----

/// What the hostile server answers: a retitled window, a cleared screen, the clipboard
/// written through OSC 52, a bidi override, a bell and a lone carriage return, in prose and
/// in a code block, sent in pieces that cut the sequences apart.
const HOSTILE: &str = "Title \x1b]0;pwned\x07 then \x1b[2J and \x1b]52;c;ZWNobyBwd25lZA==\x07 \
     rtl \u{202e}txt.exe bell\x07 over\rwrite\n```sh\necho \x1b[31mred\n```\nTHE END\n";

/// The escape sequences of [`HOSTILE`] that must never reach a terminal raw.
const RAW: [&[u8]; 5] = [
    b"\x1b]0;pwned",
    b"\x1b[2J",
    b"\x1b]52;",
    b"\x07",
    "\u{202e}".as_bytes(),
];

/// How [`HOSTILE`]'s prose shows on a terminal instead.
const SHOWN: [&str; 5] = [
    r"\x1b]0;pwned\x07",
    r"\x1b[2J",
    r"\x1b]52;c;ZWNobyBwd25lZA==\x07",
    r"\u{202e}txt.exe",
    r"over\x0dwrite",
];

/// A model name that would retitle the window.
const HOSTILE_MODEL: &str = "evil\x1b]0;pwned\x07";

/// A local OpenAI-compatible server that answers every question with [`HOSTILE`], streamed in
/// pieces of 3 characters; lists [`HOSTILE_MODEL`] among its models; and answers the model
/// `fail` with a 400 whose message holds an escape sequence. Returns its URL.
fn hostile_server() -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/v1", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || -> std::io::Result<()> {
                let mut reader = BufReader::new(conn.try_clone()?);
                let mut line = String::new();
                reader.read_line(&mut line)?;
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut length = 0;
                loop {
                    line.clear();
                    reader.read_line(&mut line)?;
                    if line.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        if k.eq_ignore_ascii_case("content-length") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body)?;
                let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let json = |conn: &mut std::net::TcpStream, status: &str, v: serde_json::Value| {
                    let text = v.to_string();
                    write!(
                        conn,
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                        text.len()
                    )
                };
                if path.ends_with("/models") {
                    return json(
                        &mut conn,
                        "200 OK",
                        serde_json::json!({"data": [{"id": "hostile"}, {"id": HOSTILE_MODEL}]}),
                    );
                }
                if body["model"] == "fail" {
                    return json(
                        &mut conn,
                        "400 Bad Request",
                        serde_json::json!({"error": {"message": "bad \x1b]0;pwned\x07 model"}}),
                    );
                }
                write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                )?;
                let chunk = |conn: &mut std::net::TcpStream, data: &str| -> std::io::Result<()> {
                    write!(conn, "{:x}\r\n{data}\r\n", data.len())?;
                    conn.flush()
                };
                let chars: Vec<char> = HOSTILE.chars().collect();
                for piece in chars.chunks(3) {
                    let piece: String = piece.iter().collect();
                    let ev = serde_json::json!({"choices": [{"delta": {"content": piece}}]});
                    chunk(&mut conn, &format!("data: {ev}\n\n"))?;
                }
                chunk(&mut conn, "data: [DONE]\n\n")?;
                write!(conn, "0\r\n\r\n")?;
                conn.flush()
            });
        }
    });
    url
}

/// `valyxo --home H ARGS` on a pseudo-terminal (with colour unless `--no-color` is among
/// `args`).
fn pty(h: &Home, args: &[&str]) -> common::pty::Pty {
    let mut c = std::process::Command::new(common::BIN);
    c.arg("--home")
        .arg(h.path())
        .args(args)
        .env("TERM", "xterm-256color")
        .env_remove("VALYXO_HOME")
        .env_remove("NO_COLOR")
        .env_remove("VALYXO_API_KEY")
        .env_remove("OPENAI_API_KEY");
    common::pty::spawn(c, 15_000)
}

/// The bytes a pty session sent (it hands each byte over as a char).
fn bytes(s: &str) -> Vec<u8> {
    s.chars().map(|c| c as u32 as u8).collect()
}

/// Everything `valyxo ARGS` writes to its terminal, to the end.
fn terminal_output(h: &Home, args: &[&str]) -> Vec<u8> {
    let mut s = pty(h, args);
    bytes(&s.exp_eof().expect("the end of the output"))
}

fn assert_shown_not_obeyed(out: &[u8], what: &str) {
    let text = String::from_utf8_lossy(out);
    for raw in RAW {
        assert!(
            !out.windows(raw.len()).any(|w| w == raw),
            "{what}: {:?} reached the terminal raw:\n{text:?}",
            String::from_utf8_lossy(raw)
        );
    }
    for shown in SHOWN {
        assert!(
            text.contains(shown),
            "{what}: {shown} is not shown:\n{text:?}"
        );
    }
    assert!(
        text.contains("THE END"),
        "{what}: the whole answer:\n{text:?}"
    );
}

#[test]
fn escape_sequences_in_answers_are_shown_on_a_terminal_not_obeyed() {
    let url = hostile_server();
    let h = common::assistant_home(&url, "hostile");
    // ask, coloured and not.
    let out = terminal_output(&h, &["-c", "ask hi"]);
    assert_shown_not_obeyed(&out, "ask");
    assert!(
        out.windows(2).any(|w| w == b"\x1b["),
        "the code is coloured"
    );
    let out = terminal_output(&h, &["--no-color", "-c", "ask hi"]);
    assert_shown_not_obeyed(&out, "ask --no-color");
    assert!(
        !out.contains(&0x1b),
        "no escape at all without colour: {:?}",
        String::from_utf8_lossy(&out)
    );
    // chat.
    let mut s = pty(&h, &["-c", "chat"]);
    let mut seen = bytes(&s.exp_string("you> ").expect("the chat prompt"));
    s.send_line("hello").unwrap();
    seen.extend(bytes(&s.exp_string("THE END").expect("the answer")));
    seen.extend_from_slice(b"THE END");
    s.send_control('d').unwrap();
    seen.extend(bytes(&s.exp_eof().expect("the chat ends")));
    assert_shown_not_obeyed(&seen, "chat");
    // ai show, of a stored conversation.
    let out = terminal_output(&h, &["-c", "ai show 1"]);
    assert_shown_not_obeyed(&out, "ai show");
    let out = terminal_output(&h, &["-c", "ai show 3"]);
    assert_shown_not_obeyed(&out, "ai show of the chat");
}

#[test]
fn piped_answers_and_conversations_stay_byte_exact() {
    let url = hostile_server();
    let h = common::assistant_home(&url, "hostile");
    let a = run(&h, "ask hi", None, "").success();
    assert_eq!(a.get_output().stdout, HOSTILE.as_bytes());
    let a = run(&h, "ai show 1", None, "").success();
    let shown = String::from_utf8(a.get_output().stdout.clone()).unwrap();
    assert!(
        shown.ends_with(&format!("assistant:\n{}\n", HOSTILE.trim_end())),
        "{shown:?}"
    );
}

#[test]
fn names_and_errors_from_the_server_are_escaped() {
    let url = hostile_server();
    let h = common::assistant_home(&url, "hostile");
    // Model names.
    let a = run(&h, "ai models", None, "").success();
    let out = stdout(&a);
    assert!(!out.contains('\x1b'), "{out:?}");
    assert!(out.contains(r"$'evil\e]0;pwned\x07'"), "{out:?}");
    // An error message with the server's words.
    h.c("settings set assistant.model fail").success();
    let a = run(&h, "ask hi", None, "").code(1);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(!err.contains('\x1b') && !err.contains('\x07'), "{err:?}");
    assert!(err.contains(r"bad \x1b]0;pwned\x07 model"), "{err:?}");
    // A title (the question) with an escape sequence, in the list and in `ai show`.
    h.c("settings set assistant.model hostile").success();
    run(&h, "ask 'x\x1b]0;t\x07'", None, "").success();
    let list = stdout(&run(&h, "ai history", None, "").success());
    assert!(list.contains(r"$'x\e]0;t\x07'"), "{list:?}");
    assert!(!list.contains('\x1b'), "{list:?}");
    let show = stdout(&run(&h, "ai show 1", None, "").success());
    assert!(
        show.starts_with(r"# $'x\e]0;t\x07'  (default, hostile, "),
        "{show:?}"
    );
}

// ----- Keys in the wrong place -----

const SECRET: &str = "sk-0123456789abcdefghijklmn";

#[test]
fn an_exported_secret_is_warned_of_and_kept_out_of_history_with_dash_c() {
    let h = Home::new();
    let a = h
        .c(&format!("export OPENAI_API_KEY={SECRET} GREETING=hi"))
        .success();
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        err.contains("export: OPENAI_API_KEY looks like a secret"),
        "{err}"
    );
    assert!(err.contains("not kept in history"), "{err}");
    assert!(err.contains("handed to every program 'exec' runs"), "{err}");
    assert!(err.contains("'ai key set'"), "{err}");
    assert!(!err.contains(SECRET), "{err}");
    assert!(
        !err.contains("GREETING"),
        "only the secret is warned of: {err}"
    );
    // It is still exported, as asked.
    assert_eq!(h.out("env OPENAI_API_KEY"), format!("{SECRET}\n"));
    // A token that is not the assistant's: no word of 'ai key set'.
    let a = h.c("export GITHUB_TOKEN=abc").success();
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(err.contains("GITHUB_TOKEN looks like a secret"), "{err}");
    assert!(!err.contains("ai key set"), "{err}");
    assert!(h
        .c("export EDITOR=hx")
        .success()
        .get_output()
        .stderr
        .is_empty());
    let hist = h.out("history");
    assert!(
        !hist.contains(SECRET) && !hist.contains("GITHUB_TOKEN"),
        "{hist}"
    );
    // The assistant does not read it, and `ai` says so.
    let status = stdout(&run(&h, "ai", None, ""));
    assert!(
        status.contains("OPENAI_API_KEY exported inside valyxo is not read by the assistant"),
        "{status}"
    );
    assert!(!status.contains(SECRET), "{status}");
}

#[test]
fn an_exported_secret_typed_at_the_prompt_is_not_in_history() {
    const PROMPT: &str = "valyxo:~/Projects/Main> ";
    let h = Home::new();
    let mut s = pty(&h, &["--no-color"]);
    s.exp_string(PROMPT).expect("the first prompt");
    s.send_line("echo before").unwrap();
    s.exp_string("before\r\n").expect("the echo");
    s.exp_string(PROMPT).expect("a prompt");
    s.send_line(&format!("export VALYXO_API_KEY={SECRET}"))
        .unwrap();
    s.exp_string("not kept in history").expect("the warning");
    s.exp_string(PROMPT).expect("a prompt");
    // Up brings back the line before, not the secret one.
    s.send("\x1b[A").unwrap();
    s.flush().unwrap();
    s.exp_string("echo before").expect("the line before");
    s.send_line("").unwrap();
    s.exp_string("before\r\n")
        .expect("the line before ran again");
    s.exp_string(PROMPT).expect("a prompt");
    s.send_line("history").unwrap();
    s.exp_string("     1  echo before").expect("the history");
    let listed = s.exp_string(PROMPT).expect("the rest of the history");
    assert!(listed.contains("     2  echo before"), "{listed}");
    assert!(
        !listed.contains(SECRET) && !listed.contains("export"),
        "{listed}"
    );
    s.send_line("exit").unwrap();
    s.exp_eof().expect("the end");
    let hist = h.out("history");
    assert!(hist.contains("echo before"), "{hist}");
    assert!(
        !hist.contains(SECRET) && !hist.contains("VALYXO_API_KEY"),
        "{hist}"
    );
}

#[test]
fn keys_are_stored_only_for_servers_they_can_reach_safely() {
    let server = Server::start(true);
    let h = home(&server, "echo");
    let a = run(&h, "ai key set http://example.com/v1", None, "sk-test\n").code(1);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        err.contains("http://example.com/v1 is plain HTTP to another machine"),
        "{err}"
    );
    assert!(err.contains("in the clear"), "{err}");
    assert!(!h.path().join("credentials.json").exists());
    // The same for assistant.url.
    let h2 = common::assistant_home("http://example.com/v1", "echo");
    run(&h2, "ai key set", None, "sk-test\n")
        .code(1)
        .stderr(contains("plain HTTP to another machine"));
    // Plain HTTP on this machine is fine.
    let a = run(&h, &format!("ai key set {}", server.url), None, "sk-test\n").success();
    let said = stdout(&a);
    assert!(
        said.contains(&format!("the key for {}", server.url)),
        "{said}"
    );
    run(&h, "ask hi", None, "").success();
    assert_eq!(
        server.requests()[0].authorization.as_deref(),
        Some("Bearer sk-test")
    );
    run(&h, &format!("ai key remove {}", server.url), None, "").success();
}

#[test]
fn ai_says_which_environment_keys_are_withheld() {
    let server = Server::start(false);
    // VALYXO_API_KEY to plain HTTP on another machine: withheld.
    let h = common::assistant_home("http://example.com/v1", "echo");
    let status = stdout(&run(&h, "ai", Some(SECRET), "").success());
    assert!(
        status
            .contains("VALYXO_API_KEY is set in the environment valyxo started with, but withheld"),
        "{status}"
    );
    assert!(status.contains("plain HTTP to another machine"), "{status}");
    assert!(status.contains("key      none"), "{status}");
    assert!(!status.contains(SECRET), "{status}");
    // On this machine it is used.
    let h = home(&server, "echo");
    let status = stdout(&run(&h, "ai", Some(SECRET), "").success());
    assert!(
        status.contains("key      from the environment variable VALYXO_API_KEY"),
        "{status}"
    );
    assert!(!status.contains("withheld"), "{status}");
    // OPENAI_API_KEY goes only to OpenAI: withheld from a local server, and not sent.
    let mut c = h.cmd();
    c.env_remove("VALYXO_API_KEY").env("OPENAI_API_KEY", SECRET);
    let a = c.args(["-c", "ai; ask hi"]).assert().success();
    let out = stdout(&a);
    assert!(
        out.contains("OPENAI_API_KEY is set in the environment valyxo started with, but withheld"),
        "{out}"
    );
    assert!(out.contains("sent only to https://api.openai.com"), "{out}");
    assert_eq!(server.requests()[0].authorization, None);
}

#[test]
fn an_answer_longer_than_assistant_max_answer_is_cut_there_and_kept() {
    let server = Server::start(false);
    let h = home(&server, "echo");
    h.c("settings set assistant.max_answer lots").failure();
    h.c("settings set assistant.max_answer 1K").success();
    let words = "word ".repeat(1000);
    let whole = format!("You said: {words} (2 messages)");
    let a = run(&h, &format!("ask '{words}'"), None, "").code(1);
    // What came up to the cap, and why it stopped.
    assert_eq!(stdout(&a), format!("{}\n", &whole[..1024]));
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        err.contains("the answer was cut at 1 KiB (assistant.max_answer) (the part received is kept in conversation 1)"),
        "{err}"
    );
    let show = stdout(&run(&h, "ai show 1", None, "").success());
    assert!(
        show.ends_with(&format!("assistant:\n{}\n", &whole[..1024])),
        "{show}"
    );
    // 0 takes any length.
    h.c("settings set assistant.max_answer 0").success();
    let a = run(&h, &format!("ask '{words}'"), None, "").success();
    assert_eq!(stdout(&a), format!("{whole}\n"));
}

#[test]
fn the_editor_pane_cuts_an_answer_at_assistant_max_answer_and_says_so() {
    use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
    use valyxo::editor::{load, Editor, Options};
    use valyxo::vfs::VPath;
    let server = Server::start(false);
    let h = home(&server, "echo");
    h.c("settings set assistant.max_answer 1K; echo 'fn main() {}' > /a.rs")
        .success();
    let hub = valyxo::hub::Hub::open(valyxo::hub::HubOptions {
        home: Some(h.path().to_path_buf()),
        no_color: true,
        ..Default::default()
    })
    .unwrap();
    let path = VPath::parse_absolute("/a.rs").unwrap();
    let b = load(&hub, &path, &hub.theme()).unwrap();
    let opts = Options {
        system_clipboard: false,
        auto_pairs: false,
        ..Options::from_hub(&hub, false)
    };
    let mut ed = Editor::new(hub, VPath::parse_absolute("/").unwrap(), vec![b], opts);
    let key = |ed: &mut Editor, code, mods| ed.handle(&Event::Key(KeyEvent::new(code, mods)));
    key(&mut ed, KeyCode::Char('e'), KeyModifiers::CONTROL);
    // The test server echoes the question: this one makes an answer of about 1.5 KiB.
    for c in "ab ".repeat(500).chars() {
        key(&mut ed, KeyCode::Char(c), KeyModifiers::NONE);
    }
    key(&mut ed, KeyCode::Enter, KeyModifiers::NONE);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while ed.pane_busy() {
        ed.work();
        assert!(std::time::Instant::now() < deadline, "no answer");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(200, 30)).unwrap();
    term.draw(|f| ed.draw(f)).unwrap();
    let buf = term.backend().buffer();
    let rows: Vec<String> = (0..30u16)
        .map(|y| (0..200u16).map(|x| buf[(x, y)].symbol()).collect())
        .collect();
    let screen = rows.join("\n");
    assert!(
        screen.contains("the answer was cut at 1 KiB (assistant.max_answer)"),
        "{screen}"
    );
    // The end of what came shows just above it.
    let at = rows
        .iter()
        .position(|r| r.contains("the answer was cut at"))
        .unwrap();
    assert!(rows[at - 1].contains("ab ab ab"), "{screen}");
    // Kept as far as it came.
    let show = stdout(&run(&h, "ai show 1", None, "").success());
    let kept = show.split("assistant:\n").nth(1).expect("an answer");
    let whole = format!("You said: {}", "ab ".repeat(500));
    assert_eq!(kept.trim_end(), whole[..1024].trim_end(), "{show}");
}
