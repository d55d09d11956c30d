//! The headless-browser harness itself (common/browser.rs), against small pages served from
//! 127.0.0.1: typing, clicking, waiting, keys, scripts, navigation, cookies, screenshots;
//! that the console's errors (also those thrown while a page loads) are reported while a
//! clean page reports none; and that nothing it started outlives it. Needs Debian's
//! chromium and chromium-driver, so these are ignored in a plain `cargo test`; `.ci/run`
//! installs both and runs them.

use crate::common::browser::{Browser, Key, WINDOW};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The test pages, by path: (status, extra headers, body).
fn page(path: &str) -> (&'static str, String, String) {
    let html = |title: &str, head: &str, body: &str| {
        format!(
            "<!doctype html><html><head><meta charset=utf-8><title>{title}</title>\
             <link rel=icon href=\"data:,\">{head}</head><body>{body}</body></html>"
        )
    };
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    match path {
        "/form" => (
            "200 OK",
            "Set-Cookie: session=s3cr3t; Path=/; HttpOnly; SameSite=Lax\r\n".into(),
            html("Form", "", FORM),
        ),
        "/hello" => {
            let name: String = query
                .strip_prefix("name=")
                .unwrap_or("")
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect();
            let body = format!("<h1 id=hello>Hello, {name}</h1>");
            ("200 OK", String::new(), html("Hello", "", &body))
        }
        "/clean" => (
            "200 OK",
            String::new(),
            html("Clean", "", "<p id=ok>Nothing wrong here.</p>"),
        ),
        "/throws" => (
            "200 OK",
            String::new(),
            html(
                "Throws",
                "<script>throw new Error('boom during load')</script>",
                "<p id=after>the page still renders</p>",
            ),
        ),
        "/console-error" => (
            "200 OK",
            String::new(),
            html(
                "Console error",
                "",
                "<script>console.error('something broke', 42)</script>",
            ),
        ),
        "/missing-image" => (
            "200 OK",
            String::new(),
            html("Missing image", "", "<img src=/no-such-image.png alt=x>"),
        ),
        _ => ("404 Not Found", String::new(), "not found".into()),
    }
}

/// A form, a button whose greeting appears a moment later, Ctrl-S caught by the page, and a
/// cookie set by script (the server sets an HttpOnly one).
const FORM: &str = r#"
<form id=f action=/hello method=get>
  <input id=name name=name autocomplete=off>
  <button id=greet type=button>Greet</button>
</form>
<p id=saved>not saved</p>
<script>
  document.cookie = "seen=yes; path=/";
  const name = document.getElementById("name");
  document.getElementById("greet").addEventListener("click", () => {
    setTimeout(() => {
      const p = document.createElement("p");
      p.id = "late";
      p.textContent = "Hello, " + name.value;
      document.body.append(p);
    }, 1000);
  });
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey && e.key === "s") {
      e.preventDefault();
      document.getElementById("saved").textContent = "saved " + name.value;
    }
  });
</script>
"#;

/// The test pages served over HTTP/1.1 on a free port of 127.0.0.1, one thread a
/// connection; stopped when dropped.
struct Pages {
    url: String,
    stop: Arc<AtomicBool>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl Pages {
    fn start() -> Pages {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    std::thread::spawn(move || serve(conn));
                }
            }
        });
        Pages {
            url,
            stop,
            accept: Some(accept),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread so that it sees `stop`.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Answers one request on `conn`, then closes it.
fn serve(mut conn: TcpStream) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split(' ').nth(1).unwrap_or("/");
    let (status, headers, body) = page(path);
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n{headers}\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// A test's directory, its pages and a browser.
fn setup() -> (tempfile::TempDir, Pages, Browser) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let pages = Pages::start();
    let browser = Browser::start(dir.path());
    (dir, pages, browser)
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn typing_clicking_waiting_keys_and_navigation() {
    let (_dir, pages, b) = setup();
    b.goto(&pages.url("/form"));
    assert_eq!(b.title(), "Form");
    assert_eq!(b.count("input#name"), 1);

    b.type_into("#name", "alice");
    assert_eq!(b.value("#name"), "alice");
    assert_eq!(b.attr("#name", "autocomplete").as_deref(), Some("off"));
    assert_eq!(b.attr("#name", "placeholder"), None);

    // The greeting appears a second after the click: not at once, but when waited for.
    b.click("#greet");
    assert_eq!(b.count("#late"), 0, "the greeting came before its time");
    let late = b.wait_for("#late");
    assert_eq!(b.text("#late"), "Hello, alice");
    assert!(b.raw(|_| late.is_displayed()).unwrap());

    // Ctrl-S reaches the page's own handler (the focus is on the button just clicked).
    b.press(Key::Control + "s");
    assert_eq!(b.text("#saved"), "saved alice");
    b.type_into("#name", Key::Control + "s");
    assert_eq!(b.text("#saved"), "saved alice");

    // Enter in the field submits the form.
    b.type_into("#name", Key::Enter);
    let url = b.wait_for_url("/hello?");
    assert!(url.ends_with("/hello?name=alice"), "{url}");
    assert_eq!(b.text("#hello"), "Hello, alice");

    b.back();
    assert_eq!(b.url(), pages.url("/form"));
    assert_eq!(b.title(), "Form");
    // Going back restores what the form held, as a person would see it.
    assert_eq!(b.value("#name"), "alice");
    b.clear("#name");
    assert_eq!(b.value("#name"), "");
    b.type_into("#name", "bob");
    assert_eq!(b.value("#name"), "bob");
    b.reload();
    assert_eq!(b.count("#late"), 0);
    b.wait_for("#name");
    b.assert_no_console_errors();
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn scripts_cookies_and_screenshots() {
    let (dir, pages, b) = setup();
    b.goto(&pages.url("/form"));

    assert_eq!(b.eval("return document.title"), serde_json::json!("Form"));
    assert_eq!(
        b.eval("return {n: 1 + 1, list: [true, null, 'x'], url: location.pathname}"),
        serde_json::json!({"n": 2, "list": [true, null, "x"], "url": "/form"})
    );
    assert_eq!(
        b.eval("document.title = 'changed'"),
        serde_json::Value::Null
    );
    assert_eq!(b.title(), "changed");

    let session = b.cookie("session").expect("the server's cookie");
    assert_eq!(session.value, "s3cr3t");
    assert_eq!(session.http_only, Some(true));
    let seen = b.cookie("seen").expect("the page script's cookie");
    assert_eq!(seen.value, "yes");
    assert_eq!(seen.http_only, Some(false));
    assert_eq!(b.cookies().len(), 2);
    assert!(b.cookie("none").is_none());

    let first = b.screenshot("form");
    b.type_into("#name", "a name");
    let second = b.screenshot("after typing: a name");
    let shots = dir.path().join("screenshots");
    assert_eq!(first, shots.join("01-form.png"));
    assert_eq!(second, shots.join("02-after_typing__a_name.png"));
    for shot in [&first, &second] {
        assert_eq!(png_size(shot), WINDOW, "{}", shot.display());
    }
    assert_ne!(
        std::fs::read(&first).unwrap(),
        std::fs::read(&second).unwrap(),
        "typing changed nothing on screen"
    );
}

/// The width and height of the PNG image at `path`, which must be one.
fn png_size(path: &Path) -> (u32, u32) {
    let png = std::fs::read(path).expect("read the screenshot");
    assert!(
        png.len() > 1000,
        "{} is only {} bytes",
        path.display(),
        png.len()
    );
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&png[12..16], b"IHDR");
    let be = |i: usize| u32::from_be_bytes(png[i..i + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn an_error_thrown_while_the_page_loads_is_reported() {
    let (_dir, pages, b) = setup();
    b.goto(&pages.url("/throws"));
    assert_eq!(b.text("#after"), "the page still renders");
    let errors = b.console_errors();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].source, "javascript");
    assert!(
        errors[0]
            .message
            .contains("Uncaught Error: boom during load"),
        "{errors:#?}"
    );
    // What was read stays: asking again gives the same.
    assert_eq!(b.console_errors(), errors);
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn console_error_is_reported() {
    let (_dir, pages, b) = setup();
    b.goto(&pages.url("/console-error"));
    let errors = b.console_errors();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].source, "console-api");
    assert!(
        errors[0].message.contains("\"something broke\" 42"),
        "{errors:#?}"
    );
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn a_resource_that_fails_to_load_is_reported() {
    let (_dir, pages, b) = setup();
    b.goto(&pages.url("/missing-image"));
    let errors = b.console_errors();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].source, "network");
    assert!(
        errors[0].message.contains("/no-such-image.png"),
        "{errors:#?}"
    );
    assert!(errors[0].message.contains("404"), "{errors:#?}");
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn clean_pages_report_no_console_errors() {
    let (_dir, pages, b) = setup();
    b.goto(&pages.url("/console-error"));
    assert_eq!(b.console_errors().len(), 1);
    b.forget_console();
    assert_eq!(b.console_errors(), []);
    b.goto(&pages.url("/clean"));
    b.wait_for("#ok");
    b.goto(&pages.url("/form"));
    b.type_into("#name", "x");
    b.click("#greet");
    b.wait_for("#late");
    b.assert_no_console_errors();
    assert_eq!(b.console_errors(), []);
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
#[should_panic(expected = "Uncaught Error: boom during load")]
fn asserting_no_console_errors_fails_on_a_page_that_throws() {
    let (_dir, pages, b) = setup();
    b.goto(&pages.url("/clean"));
    b.assert_no_console_errors();
    b.goto(&pages.url("/throws"));
    b.assert_no_console_errors();
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
#[should_panic(expected = "waiting for `#never` on http://127.0.0.1:")]
fn waiting_for_what_never_comes_names_the_selector_and_the_page() {
    let (_dir, pages, b) = setup();
    b.goto(&pages.url("/clean"));
    b.wait_for_within("#never", Duration::from_millis(300));
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
#[should_panic(expected = "no element matches `#absent` on http://127.0.0.1:")]
fn clicking_what_is_not_there_names_the_selector_and_the_page() {
    let (_dir, pages, b) = setup();
    b.goto(&pages.url("/clean"));
    b.click("#absent");
}

/// The processes whose command line mentions `dir` (chromedriver's log and the browser's
/// profile are in it).
fn processes_using(dir: &Path) -> Vec<String> {
    let dir = dir.to_str().unwrap();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(dir) {
            let short: String = cmdline.chars().take(120).collect();
            found.push(format!("{}: {short}", entry.file_name().to_string_lossy()));
        }
    }
    found
}

/// [`processes_using`] `dir` a moment after they were killed (a killed process may take
/// that long to go).
fn processes_left(dir: &Path) -> Vec<String> {
    for _ in 0..40 {
        if processes_using(dir).is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    processes_using(dir)
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn chromedriver_and_chromium_end_when_the_browser_drops_also_on_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let pages = Pages::start();
    let b = Browser::start(dir.path());
    b.goto(&pages.url("/clean"));
    let running = processes_using(dir.path());
    assert!(
        running.len() >= 2,
        "chromedriver and chromium: {running:#?}"
    );
    drop(b);
    assert_eq!(processes_left(dir.path()), Vec::<String>::new());

    let dir = tempfile::tempdir().unwrap();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let b = Browser::start(dir.path());
        b.goto(&pages.url("/clean"));
        assert!(!processes_using(dir.path()).is_empty());
        b.click("#absent");
    }));
    assert!(panicked.is_err());
    assert_eq!(processes_left(dir.path()), Vec::<String>::new());
}

#[test]
#[should_panic(expected = ".ci/run installs Debian's chromium and chromium-driver")]
fn a_missing_chromedriver_says_what_installs_it() {
    let dir = tempfile::tempdir().unwrap();
    Browser::start_with(dir.path(), "chromedriver-not-installed-here");
}

/// Set by [`chromedriver_and_chromium_end_when_the_test_process_dies_without_dropping_them`]
/// for the test program it starts: the directory for [`a_browser_left_by_a_process_that_dies`].
const DYING_DIR: &str = "VALYXO_TEST_DYING_BROWSER_DIR";

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn chromedriver_and_chromium_end_when_the_test_process_dies_without_dropping_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "--nocapture"])
        .arg("web::a_browser_left_by_a_process_that_dies")
        .env(DYING_DIR, dir.path())
        .output()
        .expect("run the test program");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("browser open"), "{stdout}");
    assert!(!out.status.success(), "it should have aborted: {stdout}");
    assert_eq!(processes_left(dir.path()), Vec::<String>::new());
}

/// Opens a browser in the directory [`DYING_DIR`] names and aborts, so that nothing is
/// dropped (does nothing when it is not set).
#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn a_browser_left_by_a_process_that_dies() {
    let Some(dir) = std::env::var_os(DYING_DIR) else {
        return;
    };
    let b = Browser::start(Path::new(&dir));
    b.goto("data:text/html,<p id=ok>open</p>");
    b.wait_for("#ok");
    assert!(processes_using(Path::new(&dir)).len() >= 3);
    println!("browser open");
    std::process::abort();
}
