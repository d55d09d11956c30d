//! The editor's memory and time on big files: a 50 MiB Rust file and a 1,000,000-line plain
//! text file, each loaded, jumped to the end (Ctrl-End), drawn, given idle work until none is
//! left (at most 30 s) and drawn again.
//!
//! ```text
//! cargo bench --bench editor               # every case
//! cargo bench --bench editor -- rust       # only some (rust plain find pane snippets)
//! ```
//!
//! Each case runs in a child process (this program again, with `child CASE HOME`), so its
//! peak memory (`VmHWM`) is its own: the file is written into the stored tree of a fresh home
//! by the parent, and the child opens that home, loads the file with `editor::load` and drives
//! an `Editor` on ratatui's `TestBackend` as the terminal would.

use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use valyxo::editor::{load, Editor, Options};
use valyxo::hub::{Hub, HubOptions};
use valyxo::vfs::VPath;

/// How long idle work may go on before the case gives up on it.
const WORK_LIMIT: Duration = Duration::from_secs(30);

/// A realistic stretch of Rust: doc and block comments, strings, attributes, generics,
/// closures, matches. Repeated to make the big file; it leaves no comment or string open.
const RUST: &str = r#"/// A cache of parsed entries, keyed by name.
#[derive(Debug, Clone, Default)]
pub struct Cache<K: Eq + std::hash::Hash, V> {
    entries: std::collections::HashMap<K, V>,
    /* hits and misses, for the status line */
    hits: u64,
    misses: u64,
}

impl<K: Eq + std::hash::Hash + Clone, V: Clone> Cache<K, V> {
    pub fn new() -> Self {
        Cache { entries: Default::default(), hits: 0, misses: 0 }
    }

    /// Looks `key` up, computing and keeping the value on a miss.
    pub fn get_or(&mut self, key: &K, make: impl FnOnce() -> V) -> V {
        match self.entries.get(key) {
            Some(v) => {
                self.hits += 1;
                v.clone()
            }
            None => {
                self.misses += 1;
                let v = make();
                self.entries.insert(key.clone(), v.clone());
                v
            }
        }
    }
}

fn parse_line(line: &str) -> Result<(String, i64), String> {
    let (name, value) = line.split_once('=').ok_or_else(|| format!("no '=' in {line:?}"))?;
    let value: i64 = value.trim().parse().map_err(|e| format!("bad number: {e}"))?;
    // Names are case-insensitive.
    Ok((name.trim().to_lowercase(), value * 0x10 + 'a' as i64))
}
"#;

/// Memory and time of one case, as the child reports them.
#[derive(Default)]
struct Figures {
    file_mib: f64,
    lines: usize,
    load_ms: f64,
    draw_ms: f64,
    work_ms: f64,
    work_done: bool,
    peak_mib: f64,
    rss_mib: f64,
    coloured: usize,
    /// Resident memory before the file was loaded, and the peak once it was.
    base_mib: f64,
    load_peak_mib: f64,
}

fn proc_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn file_for(case: &str) -> &'static str {
    match case {
        "rust" => "/big.rs",
        _ => "/big.txt",
    }
}

/// Writes the case's file into the stored tree of a new home.
fn prepare(case: &str, home: &Path) -> (f64, usize) {
    let text = match case {
        "rust" => {
            let reps = (50usize << 20) / RUST.len();
            RUST.repeat(reps)
        }
        _ => {
            let mut s = String::with_capacity(48_000_000);
            for i in 0..1_000_000 {
                use std::fmt::Write;
                let _ = writeln!(s, "{i} lorem ipsum dolor sit amet, consectetur");
            }
            s
        }
    };
    let hub = Hub::open(HubOptions {
        home: Some(home.to_path_buf()),
        no_color: false,
        ..Default::default()
    })
    .expect("hub");
    let path = VPath::parse_absolute(file_for(case)).expect("path");
    hub.vfs.write(&path, text.as_bytes()).expect("write");
    let lines = text.lines().count();
    (text.len() as f64 / (1 << 20) as f64, lines)
}

/// The measured part, in the child: load, Ctrl-End, draw, idle work, draw.
fn child(case: &str, home: &Path) {
    let hub = Hub::open(HubOptions {
        home: Some(home.to_path_buf()),
        no_color: false,
        ..Default::default()
    })
    .expect("hub");
    let theme = hub.theme();
    let path = VPath::parse_absolute(file_for(case)).expect("path");
    let base_kib = proc_status_kib("VmRSS:");
    let start = Instant::now();
    let buffer = load(&hub, &path, &theme).expect("load");
    let load_ms = start.elapsed().as_secs_f64() * 1e3;
    let load_peak_kib = proc_status_kib("VmHWM:");
    let opts = Options::from_hub(&hub, true);
    let mut ed = Editor::new(Arc::clone(&hub), VPath::root(), vec![buffer], opts);
    let mut term = Terminal::new(TestBackend::new(120, 40)).expect("terminal");
    term.draw(|f| ed.draw(f)).expect("draw");
    ed.handle(&Event::Key(KeyEvent::new(
        KeyCode::End,
        KeyModifiers::CONTROL,
    )));
    let start = Instant::now();
    term.draw(|f| ed.draw(f)).expect("draw");
    let draw_ms = start.elapsed().as_secs_f64() * 1e3;
    let start = Instant::now();
    let mut work_done = true;
    while ed.has_work() {
        if start.elapsed() > WORK_LIMIT {
            work_done = false;
            break;
        }
        ed.work();
    }
    let work_ms = start.elapsed().as_secs_f64() * 1e3;
    term.draw(|f| ed.draw(f)).expect("draw");
    // Cells drawn in a colour of their own: the highlighting showed.
    let buf = term.backend().buffer();
    let base =
        buf.content()
            .iter()
            .map(|c| c.fg)
            .fold(std::collections::HashMap::new(), |mut m, fg| {
                *m.entry(fg).or_insert(0usize) += 1;
                m
            });
    let coloured = base.len();
    println!(
        "figures {load_ms} {draw_ms} {work_ms} {} {} {} {coloured} {base_kib} {load_peak_kib}",
        u8::from(work_done),
        proc_status_kib("VmHWM:"),
        proc_status_kib("VmRSS:"),
    );
}

fn run(case: &str) -> Figures {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("home");
    let (file_mib, lines) = prepare(case, &home);
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new(exe)
        .arg("child")
        .arg(case)
        .arg(&home)
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "the {case} case failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("figures "))
        .expect("figures from the child");
    let v: Vec<f64> = line
        .split_whitespace()
        .map(|x| x.parse().expect("number"))
        .collect();
    Figures {
        file_mib,
        lines,
        load_ms: v[0],
        draw_ms: v[1],
        work_ms: v[2],
        work_done: v[3] == 1.0,
        peak_mib: v[4] / 1024.0,
        rss_mib: v[5] / 1024.0,
        coloured: v[6] as usize,
        base_mib: v[7] / 1024.0,
        load_peak_mib: v[8] / 1024.0,
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if args.first().map(String::as_str) == Some("child") {
        child(&args[1], Path::new(&args[2]));
        return;
    }
    let want = |name: &str| args.is_empty() || args.iter().any(|a| a == name);
    println!();
    for (case, what) in [("rust", "Rust file"), ("plain", "plain text file")] {
        if !want(case) {
            continue;
        }
        let f = run(case);
        let goal = 3.0 * f.file_mib + 50.0;
        println!(
            "{what}, {:.1} MiB, {} lines: load, Ctrl-End, draw, idle work, draw",
            f.file_mib, f.lines
        );
        println!(
            "    valyxo peak {:.1} MiB ({:.1} before the file, {:.1} once loaded, {:.1} at the end; {:.2}x the file); load {:.0} ms, draw at the end {:.0} ms, idle work {:.0} ms{}; {} colours on screen",
            f.peak_mib,
            f.base_mib,
            f.load_peak_mib,
            f.rss_mib,
            f.peak_mib / f.file_mib,
            f.load_ms,
            f.draw_ms,
            f.work_ms,
            if f.work_done { "" } else { " (still working: stopped)" },
            f.coloured,
        );
        let met = f.peak_mib < goal && f.work_done;
        println!(
            "    peer -   goal < {goal:.0} MiB (3x file + 50 MiB), idle work done within {} s {}",
            WORK_LIMIT.as_secs(),
            if met { "met" } else { "MISSED" }
        );
    }
    if want("find") {
        find_keystrokes();
    }
    if want("pane") {
        pane_keystrokes();
    }
    if want("snippets") {
        snippet_keystrokes();
    }
}

/// Snippet expansion, keystroke to frame (issue 19): in a 20,000-line Python file, with a
/// user snippet file in `/Snippets` (so each Tab also looks at whether it changed), `for` is
/// typed at the end and each measured keystroke is a key handled and a whole 120x40 frame
/// drawn: the Tab that expands the snippet, then a letter typed into its first stop (which
/// fills its mirror). Then Esc and Ctrl-Z take the snippet back, and again. Runs in this
/// process.
fn snippet_keystrokes() {
    const ROUNDS: usize = 200;
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("home");
    let hub = Hub::open(HubOptions {
        home: Some(home.clone()),
        no_color: false,
        ..Default::default()
    })
    .expect("hub");
    let mut text = String::new();
    for i in 0..20_000 {
        text.push_str(&format!(
            "value_{i} = compute({i}, \"text {i}\")  # note {i}\n"
        ));
    }
    let path = VPath::parse_absolute("/big.py").expect("path");
    hub.vfs.write(&path, text.as_bytes()).expect("write");
    let snippets = VPath::parse_absolute("/Snippets").expect("path");
    hub.vfs.mkdir(&snippets, true).expect("mkdir");
    let user = VPath::parse_absolute("/Snippets/python.toml").expect("path");
    hub.vfs
        .write(&user, b"[pr]\nbody = \"print(${1:x})\"\n")
        .expect("write");
    let theme = hub.theme();
    let buffer = load(&hub, &path, &theme).expect("load");
    let opts = Options::from_hub(&hub, true);
    let mut ed = Editor::new(Arc::clone(&hub), VPath::root(), vec![buffer], opts);
    let mut term = Terminal::new(TestBackend::new(120, 40)).expect("terminal");
    let key = |ed: &mut Editor, code: KeyCode, mods: KeyModifiers| {
        ed.handle(&Event::Key(KeyEvent::new(code, mods)));
    };
    key(&mut ed, KeyCode::End, KeyModifiers::CONTROL);
    term.draw(|f| ed.draw(f)).expect("draw");
    let timed = |ed: &mut Editor, term: &mut Terminal<TestBackend>, code: KeyCode| {
        let t = Instant::now();
        key(ed, code, KeyModifiers::NONE);
        term.draw(|f| ed.draw(f)).expect("draw");
        t.elapsed().as_secs_f64() * 1e3
    };
    let mut expand = Vec::new();
    let mut fill = Vec::new();
    for _ in 0..ROUNDS {
        for c in "for".chars() {
            key(&mut ed, KeyCode::Char(c), KeyModifiers::NONE);
        }
        term.draw(|f| ed.draw(f)).expect("draw");
        expand.push(timed(&mut ed, &mut term, KeyCode::Tab));
        assert!(ed.in_snippet(), "Tab after 'for' expands the snippet");
        fill.push(timed(&mut ed, &mut term, KeyCode::Char('n')));
        key(&mut ed, KeyCode::Esc, KeyModifiers::NONE);
        // One Ctrl-Z takes the snippet back to its prefix; the prefix is typing of its own.
        key(&mut ed, KeyCode::Char('z'), KeyModifiers::CONTROL);
        key(&mut ed, KeyCode::Char('z'), KeyModifiers::CONTROL);
    }
    assert_eq!(
        ed.buffers[ed.current].rope.len_chars(),
        text.chars().count(),
        "every snippet was undone"
    );
    let stats = |ms: &mut Vec<f64>| {
        ms.sort_by(f64::total_cmp);
        let mean = ms.iter().sum::<f64>() / ms.len() as f64;
        (mean, ms[(ms.len() * 99).div_ceil(100) - 1])
    };
    println!(
        "Snippets in a 20,000-line Python file (a user snippet file present): {ROUNDS} rounds, each keystroke a key and a 120x40 frame"
    );
    for (what, (mean, p99)) in [
        ("'for' + Tab, the snippet expanded", stats(&mut expand)),
        ("a letter typed into its stop and mirror", stats(&mut fill)),
    ] {
        println!(
            "    {what}: mean {mean:.2} ms, p99 {p99:.2} ms   goal < 16 ms {}",
            if p99 < 16.0 { "met" } else { "MISSED" }
        );
    }
}

/// Keystrokes while finding as you type in the 50 MiB Rust file (issue 15: an 11-character
/// query took 9 s to echo). Each keystroke is a key handled and a whole 120×40 frame drawn;
/// the query matches nowhere, so every key starts a search of the whole file (on its own
/// thread: the next key cancels it). Then the time until the last search has gone through
/// the file. Runs in this process.
fn find_keystrokes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("home");
    let (file_mib, _) = prepare("rust", &home);
    let hub = Hub::open(HubOptions {
        home: Some(home.clone()),
        no_color: false,
        ..Default::default()
    })
    .expect("hub");
    let theme = hub.theme();
    let path = VPath::parse_absolute(file_for("rust")).expect("path");
    let buffer = load(&hub, &path, &theme).expect("load");
    let opts = Options::from_hub(&hub, true);
    let mut ed = Editor::new(Arc::clone(&hub), VPath::root(), vec![buffer], opts);
    let mut term = Terminal::new(TestBackend::new(120, 40)).expect("terminal");
    term.draw(|f| ed.draw(f)).expect("draw");
    let key = |ed: &mut Editor, code: KeyCode, mods: KeyModifiers| {
        ed.handle(&Event::Key(KeyEvent::new(code, mods)));
    };
    key(&mut ed, KeyCode::Char('f'), KeyModifiers::CONTROL);
    let query = "zzz_missing";
    let mut times = Vec::new();
    for c in query.chars() {
        let start = Instant::now();
        key(&mut ed, KeyCode::Char(c), KeyModifiers::NONE);
        ed.receive_search();
        term.draw(|f| ed.draw(f)).expect("draw");
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let start = Instant::now();
    while ed.search_pending() {
        ed.receive_search();
        std::thread::sleep(Duration::from_millis(1));
    }
    let whole = start.elapsed().as_secs_f64() * 1e3;
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    let worst = times[times.len() - 1];
    println!(
        "find as you type, {} keys of '{query}' in the {file_mib:.1} MiB Rust file (no match)",
        query.len()
    );
    println!(
        "    valyxo {mean:.2} ms mean, {worst:.2} ms worst per keystroke (key + frame); the last search went through the file in {whole:.0} ms"
    );
    println!(
        "    peer -   goal < 16 ms per keystroke {}",
        if worst < 16.0 { "met" } else { "MISSED" }
    );
}

/// Keystrokes with a 20 MiB answer in the assistant pane (issue 15: one of 21.6 MB made every
/// keystroke take 1.5 s). A local server streams the answer (prose and Rust code blocks,
/// ending inside one) as server-sent events into an editor's pane, drawn as it arrives; then
/// each keystroke is a key handled and a whole 120×40 frame drawn, typed into the pane and
/// then into the text beside it. Runs in this process.
fn pane_keystrokes() {
    use std::io::{BufRead, BufReader, Read, Write};
    const KEYS: usize = 300;
    let mut chunk = String::new();
    for i in 0..40 {
        chunk.push_str(&format!(
            "Paragraph {i}: some words that wrap over the width of the pane, again and again.\n"
        ));
    }
    chunk.push_str("```rust\n");
    chunk.push_str(RUST);
    chunk.push_str("```\n");
    let mut answer = String::with_capacity(21 << 20);
    while answer.len() < 20 << 20 {
        answer.push_str(&chunk);
    }
    answer.push_str("```rust\n");
    answer.push_str(RUST);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/v1", listener.local_addr().expect("address"));
    let bytes = answer.len();
    let server = std::thread::spawn(move || {
        let (conn, _) = listener.accept().expect("accept");
        let mut reader = BufReader::new(conn.try_clone().expect("clone"));
        let mut length = 0;
        let mut line = String::new();
        loop {
            line.clear();
            reader.read_line(&mut line).expect("request");
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("body");
        let mut out = std::io::BufWriter::new(conn);
        out.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .expect("send");
        // One event for every 4 KiB of the answer, each in a chunk of its own.
        let mut at = 0;
        while at < answer.len() {
            let end = (at + 4096).min(answer.len());
            let ev = serde_json::json!({"choices": [{"index": 0, "delta": {"content": &answer[at..end]}}]});
            let data = format!("data: {ev}\n\n");
            write!(out, "{:x}\r\n{data}\r\n", data.len()).expect("send");
            at = end;
        }
        let data = "data: [DONE]\n\n";
        write!(out, "{:x}\r\n{data}\r\n0\r\n\r\n", data.len()).expect("send");
        out.flush().expect("send");
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let hub = Hub::open(HubOptions {
        home: Some(dir.path().join("home")),
        no_color: false,
        ..Default::default()
    })
    .expect("hub");
    for (key, value) in [
        ("assistant.url", url.as_str()),
        ("assistant.model", "bench"),
        ("assistant.max_answer", "0"),
    ] {
        hub.set_setting(key, Some(value)).expect("setting");
    }
    let path = VPath::parse_absolute("/notes.rs").expect("path");
    hub.vfs.write(&path, RUST.as_bytes()).expect("write");
    let theme = hub.theme();
    let buffer = load(&hub, &path, &theme).expect("load");
    let opts = Options {
        system_clipboard: false,
        ..Options::from_hub(&hub, true)
    };
    let mut ed = Editor::new(Arc::clone(&hub), VPath::root(), vec![buffer], opts);
    let mut term = Terminal::new(TestBackend::new(120, 40)).expect("terminal");
    let key = |ed: &mut Editor, code: KeyCode, mods: KeyModifiers| {
        ed.handle(&Event::Key(KeyEvent::new(code, mods)));
    };
    key(&mut ed, KeyCode::Char('e'), KeyModifiers::CONTROL);
    key(&mut ed, KeyCode::Char('?'), KeyModifiers::NONE);
    key(&mut ed, KeyCode::Enter, KeyModifiers::NONE);
    // Streamed in, drawn as the event loop draws it.
    let start = Instant::now();
    let mut frames = 0;
    while ed.pane_busy() {
        if ed.work() {
            term.draw(|f| ed.draw(f)).expect("draw");
            frames += 1;
        } else {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "the answer never ended"
        );
    }
    let stream_s = start.elapsed().as_secs_f64();
    server.join().expect("server");
    term.draw(|f| ed.draw(f)).expect("draw");
    let keystrokes = |ed: &mut Editor, term: &mut Terminal<TestBackend>| {
        let mut ms: Vec<f64> = (0..KEYS)
            .map(|i| {
                let t = Instant::now();
                let c = if i % 20 == 19 {
                    KeyCode::Backspace
                } else {
                    KeyCode::Char('x')
                };
                key(ed, c, KeyModifiers::NONE);
                term.draw(|f| ed.draw(f)).expect("draw");
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        let mean = ms.iter().sum::<f64>() / ms.len() as f64;
        (mean, ms[(ms.len() * 99).div_ceil(100) - 1])
    };
    let in_pane = keystrokes(&mut ed, &mut term);
    key(&mut ed, KeyCode::Esc, KeyModifiers::NONE);
    let in_text = keystrokes(&mut ed, &mut term);
    let screen: String = term
        .backend()
        .buffer()
        .content()
        .iter()
        .map(|c| c.symbol())
        .collect();
    assert!(
        screen.contains("fn parse_line"),
        "the answer's end shows in the pane"
    );
    println!(
        "Assistant pane with a {:.1} MiB answer (streamed in {stream_s:.1} s, {frames} frames drawn meanwhile): {KEYS} keystrokes, each a key and a 120x40 frame",
        bytes as f64 / (1 << 20) as f64
    );
    for (what, (mean, p99)) in [
        ("typed into the pane", in_pane),
        ("typed into the text", in_text),
    ] {
        println!(
            "    {what}: mean {mean:.2} ms, p99 {p99:.2} ms   goal < 16 ms {}",
            if p99 < 16.0 { "met" } else { "MISSED" }
        );
    }
}
