//! The assistant through the real binary against a local OpenAI-compatible streaming server.

mod common;

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
    })
    .unwrap();
    let path = VPath::parse_absolute("/a.rs").unwrap();
    let b = load(&hub, &path, &hub.theme()).unwrap();
    let opts = Options {
        tab_width: 4,
        soft_tabs: true,
        color: true,
        system_clipboard: false,
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
    })
    .unwrap();
    let opts = Options {
        tab_width: 4,
        soft_tabs: true,
        color: false,
        system_clipboard: false,
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
