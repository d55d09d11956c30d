//! A real headless browser for page tests: Debian's chromedriver started on a free port of
//! 127.0.0.1, driving a headless Chromium through WebDriver (thirtyfour), with a synchronous
//! API for `#[test]` functions. Everything it starts (chromedriver and the browser under it)
//! ends when it is dropped, also when a test panics, and when the test program dies without
//! dropping it.
//!
//! The browser's console is read from chromedriver's `browser` log (the session asks for it
//! with `goog:loggingPrefs`): chromedriver records each console message and each uncaught
//! exception from the moment a page starts loading, so an error thrown by a page's own
//! scripts during load is caught too. Reading that log empties it; [`Browser`] keeps what it
//! has read, so [`Browser::console`] always returns everything since the browser started
//! (or since [`Browser::forget_console`]). A resource that fails to load is an error there
//! too, and Chromium asks every page for `/favicon.ico` unless the page links an icon: a
//! page without one on a server without one has a console error.
//!
//! Host names other than `localhost` do not resolve in this browser, and it reaches nothing
//! through a proxy: a page under test loads only what 127.0.0.1 serves it.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use thirtyfour::prelude::*;
use thirtyfour::{ChromiumLikeCapabilities, LoggingPrefsLogLevel};

pub use thirtyfour::{Cookie, Key, TypingData};

/// How long [`Browser::wait_for`] waits by default.
pub const WAIT: Duration = Duration::from_secs(10);

/// The size of the browser's window, and so of every screenshot.
pub const WINDOW: (u32, u32) = (1280, 900);

/// One message from the browser's console (or an uncaught exception).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleEntry {
    /// `SEVERE` (console.error, uncaught exceptions, failed loads), `WARNING`, `INFO`, ….
    pub level: String,
    /// `console-api`, `javascript` (an uncaught exception), `network`, ….
    pub source: String,
    /// The page's URL, line and column, then the message.
    pub message: String,
}

impl ConsoleEntry {
    /// An error: `console.error`, an uncaught exception, a resource that failed to load.
    pub fn is_error(&self) -> bool {
        self.level == "SEVERE"
    }
}

impl fmt::Display for ConsoleEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{} {}] {}", self.level, self.source, self.message)
    }
}

/// chromedriver in a process group of its own, which the browser it starts joins. The
/// group's leader is a small shell that watches a pipe from this process: when the test
/// process ends without dropping it (killed, or aborted mid-test), the pipe closes and the
/// shell kills the group; when chromedriver exits, the shell kills the group too. Dropping
/// it kills the group at once.
struct Driver {
    /// The watching shell, the group's leader.
    child: Child,
    port: u16,
}

/// The watching shell: `$0 "$@"` is chromedriver and its arguments; fd 3 is the pipe.
const WATCH: &str = r#"exec 3<&0
"$0" "$@" </dev/null 3<&- &
driver=$!
{ read -r _ <&3; kill -KILL 0; } </dev/null &
wait "$driver"
kill -KILL 0"#;

/// `program` as found on the PATH (or as given, when it names a path), if it is there.
fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

impl Driver {
    /// `program` (chromedriver) on a free port of 127.0.0.1, logging to `log`, once it
    /// accepts connections.
    fn start(program: &str, log: &Path) -> Driver {
        let Some(bin) = find_program(program) else {
            panic!(
                "`{program}` is not on the PATH: .ci/run installs Debian's chromium and \
                 chromium-driver (apt-get install chromium chromium-driver)"
            )
        };
        // A port found free may be taken before chromedriver binds it: then it exits at
        // once, and another port is tried.
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let child = Command::new("sh")
                .arg("-c")
                .arg(WATCH)
                .arg(&bin)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                // Chromium's own temporary folders (which a browser ended by its driver
                // leaves behind) go into the test's folder, removed with it.
                .env("TMPDIR", log.parent().unwrap_or(Path::new("/tmp")))
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start `{}`: {e}", bin.display()));
            let mut driver = Driver { child, port };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return driver;
                }
                if let Ok(Some(_)) = driver.child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if driver.child.try_wait().ok().flatten().is_none() {
                panic!(
                    "`{program}` did not listen on 127.0.0.1:{port} within 20 s; its log: {}",
                    log.display()
                );
            }
        }
        panic!(
            "`{program}` exited at start three times; its log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        )
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = self.child.id() as i32;
        // SAFETY: signals the process group that our own child leads.
        unsafe { libc::kill(-group, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// A headless Chromium driven through chromedriver; see the module's documentation.
/// Screenshots go to `screenshots/` under the directory it was started with.
pub struct Browser {
    // Dropped in this order: the session (quitting the browser) is ended in `drop`, then
    // the runtime, then chromedriver is killed, then the profile is removed.
    rt: tokio::runtime::Runtime,
    web: Option<WebDriver>,
    driver: Driver,
    _profile: tempfile::TempDir,
    shots: PathBuf,
    shot_count: Cell<u32>,
    console: RefCell<Vec<ConsoleEntry>>,
}

impl Browser {
    /// A new browser (and its own chromedriver), with `dir` (a test's temporary directory)
    /// for its screenshots and chromedriver's log. Panics, saying what to install, when
    /// `chromedriver` is not on the PATH.
    pub fn start(dir: &Path) -> Browser {
        Browser::start_with(dir, "chromedriver")
    }

    /// [`Browser::start`] with `program` as chromedriver.
    pub fn start_with(dir: &Path, program: &str) -> Browser {
        let driver = Driver::start(program, &dir.join("chromedriver.log"));
        let profile = tempfile::Builder::new()
            .prefix("chromium-profile")
            .tempdir_in(dir)
            .expect("a profile directory");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let web = rt
            .block_on(session(&driver.url(), profile.path()))
            .unwrap_or_else(|e| {
                panic!(
                    "chromedriver did not open a Chromium session: {}\nits log: {}",
                    brief(&e),
                    dir.join("chromedriver.log").display()
                )
            });
        Browser {
            rt,
            web: Some(web),
            driver,
            _profile: profile,
            shots: dir.join("screenshots"),
            shot_count: Cell::new(0),
            console: RefCell::new(Vec::new()),
        }
    }

    fn web(&self) -> &WebDriver {
        self.web.as_ref().expect("an open session")
    }

    /// Runs one WebDriver call to its end, panicking with `what` and the page's URL on error.
    fn run<T>(&self, what: &str, f: impl std::future::Future<Output = WebDriverResult<T>>) -> T {
        match self.rt.block_on(f) {
            Ok(v) => v,
            Err(e) => panic!("{what} on {}: {}", self.url(), brief(&e)),
        }
    }

    /// Loads `url` and waits for its `load` event.
    pub fn goto(&self, url: &str) {
        self.rt
            .block_on(self.web().goto(url))
            .unwrap_or_else(|e| panic!("cannot load {url}: {}", brief(&e)));
    }

    /// The current page's URL.
    pub fn url(&self) -> String {
        self.rt
            .block_on(self.web().current_url())
            .map(|u| u.to_string())
            .unwrap_or_else(|e| format!("(URL unknown: {})", brief(&e)))
    }

    /// The current page's title.
    pub fn title(&self) -> String {
        self.run("reading the title", self.web().title())
    }

    /// Goes back one page in the history, as the Back button does.
    pub fn back(&self) {
        self.run("going back", self.web().back())
    }

    /// Reloads the page and waits for its `load` event.
    pub fn reload(&self) {
        self.run("reloading", self.web().refresh())
    }

    /// How many elements match the CSS `selector` now.
    pub fn count(&self, selector: &str) -> usize {
        self.run(
            &format!("finding `{selector}`"),
            self.web().find_all(By::Css(selector)),
        )
        .len()
    }

    /// The first element matching the CSS `selector`; panics, naming the selector and the
    /// page, when none does.
    pub fn find(&self, selector: &str) -> WebElement {
        self.rt
            .block_on(self.web().find(By::Css(selector)))
            .unwrap_or_else(|e| {
                panic!(
                    "no element matches `{selector}` on {}: {}",
                    self.url(),
                    brief(&e)
                )
            })
    }

    /// Waits up to [`WAIT`] for an element matching `selector` to be in the page (shown or
    /// not), and returns it.
    pub fn wait_for(&self, selector: &str) -> WebElement {
        self.wait_for_within(selector, WAIT)
    }

    /// Waits up to `timeout` for an element matching `selector`; on time-out panics naming
    /// the selector, the page and the console's errors so far.
    pub fn wait_for_within(&self, selector: &str, timeout: Duration) -> WebElement {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self.run(
                &format!("finding `{selector}`"),
                self.web().find_all(By::Css(selector)),
            );
            if let Some(e) = found.into_iter().next() {
                return e;
            }
            if Instant::now() >= deadline {
                let errors: Vec<String> = self
                    .console_errors()
                    .iter()
                    .map(|e| format!("\n  {e}"))
                    .collect();
                panic!(
                    "timed out after {timeout:?} waiting for `{selector}` on {}; \
                     console errors: {}",
                    self.url(),
                    if errors.is_empty() {
                        "none".to_string()
                    } else {
                        errors.concat()
                    }
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits up to [`WAIT`] until the page's URL contains `part`, and returns the URL.
    pub fn wait_for_url(&self, part: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let url = self.url();
            if url.contains(part) {
                return url;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {WAIT:?} waiting for a URL with `{part}`; still on {url}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Clicks the element matching `selector`.
    pub fn click(&self, selector: &str) {
        let e = self.find(selector);
        self.run(&format!("clicking `{selector}`"), e.click())
    }

    /// Types into the element matching `selector`: text, or keys such as `Key::Enter` or
    /// `Key::Control + "s"` (a modifier stays down until the end of the call).
    pub fn type_into(&self, selector: &str, keys: impl Into<TypingData>) {
        let e = self.find(selector);
        self.run(&format!("typing into `{selector}`"), e.send_keys(keys))
    }

    /// Types into whatever element has the focus (the page's body when none has).
    pub fn press(&self, keys: impl Into<TypingData>) {
        let web = self.web();
        self.run("typing into the focused element", async {
            web.active_element().await?.send_keys(keys).await
        })
    }

    /// Empties the input or text area matching `selector`.
    pub fn clear(&self, selector: &str) {
        let e = self.find(selector);
        self.run(&format!("clearing `{selector}`"), e.clear())
    }

    /// The rendered text of the element matching `selector`.
    pub fn text(&self, selector: &str) -> String {
        let e = self.find(selector);
        self.run(&format!("reading the text of `{selector}`"), e.text())
    }

    /// The current value of the input, text area or select matching `selector`.
    pub fn value(&self, selector: &str) -> String {
        let e = self.find(selector);
        self.run(&format!("reading the value of `{selector}`"), e.value())
            .unwrap_or_default()
    }

    /// The attribute `name` of the element matching `selector`, if it has it.
    pub fn attr(&self, selector: &str, name: &str) -> Option<String> {
        let e = self.find(selector);
        self.run(&format!("reading `{name}` of `{selector}`"), e.attr(name))
    }

    /// Runs `script` (a function body: it gives its result with `return`) in the page and
    /// returns that result as JSON.
    pub fn eval(&self, script: &str) -> serde_json::Value {
        let ret = self.run(
            &format!("running `{script}`"),
            self.web().execute(script, Vec::new()),
        );
        ret.json().clone()
    }

    /// The cookies the page's origin has (HttpOnly ones too).
    pub fn cookies(&self) -> Vec<Cookie> {
        self.run("reading cookies", self.web().get_all_cookies())
    }

    /// The cookie `name`, if the page's origin has it.
    pub fn cookie(&self, name: &str) -> Option<Cookie> {
        self.cookies().into_iter().find(|c| c.name == name)
    }

    /// Saves a screenshot of the window as `screenshots/NN-step.png` (NN counting up from
    /// 01) and returns its path.
    pub fn screenshot(&self, step: &str) -> PathBuf {
        std::fs::create_dir_all(&self.shots).expect("create the screenshot directory");
        let n = self.shot_count.get() + 1;
        self.shot_count.set(n);
        let name: String = step
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = self.shots.join(format!("{n:02}-{name}.png"));
        let png = self.run("taking a screenshot", self.web().screenshot_as_png());
        std::fs::write(&path, png).expect("write the screenshot");
        path
    }

    /// Everything the console received since the browser started (or since
    /// [`Browser::forget_console`]).
    pub fn console(&self) -> Vec<ConsoleEntry> {
        let new = self.run("reading the browser's log", self.web().browser_log());
        let mut console = self.console.borrow_mut();
        console.extend(new.into_iter().map(|e| ConsoleEntry {
            level: e.level,
            source: e.source.unwrap_or_default(),
            message: e.message,
        }));
        console.clone()
    }

    /// The console's errors in [`Browser::console`]: `console.error` calls, uncaught
    /// exceptions (also those thrown while a page loads) and resources that failed to load.
    pub fn console_errors(&self) -> Vec<ConsoleEntry> {
        self.console()
            .into_iter()
            .filter(ConsoleEntry::is_error)
            .collect()
    }

    /// Forgets what the console received so far (the errors of a page a test went through
    /// on purpose, say).
    pub fn forget_console(&self) {
        self.console();
        self.console.borrow_mut().clear();
    }

    /// Panics, listing them, if [`Browser::console_errors`] has any.
    pub fn assert_no_console_errors(&self) {
        let errors = self.console_errors();
        assert!(
            errors.is_empty(),
            "console errors on {}:\n{}",
            self.url(),
            errors
                .iter()
                .map(|e| format!("  {e}\n"))
                .collect::<String>()
        );
    }

    /// Runs what `f` makes of the thirtyfour session, for what the helpers above lack.
    pub fn raw<'a, F: std::future::Future>(
        &'a self,
        f: impl FnOnce(&'a WebDriver) -> F,
    ) -> F::Output {
        self.rt.block_on(f(self.web()))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Quitting closes the browser; chromedriver (and anything left of the browser) is
        // killed when `driver` drops right after, whether this worked or not.
        if let Some(web) = self.web.take() {
            let _ = self
                .rt
                .block_on(async { tokio::time::timeout(WAIT, web.quit()).await });
        }
    }
}

/// `e` in a few lines: chromedriver's own stack trace (addresses only) left out.
fn brief(e: &WebDriverError) -> String {
    let text = e.to_string();
    let text = text.split("Stacktrace:").next().unwrap_or_default();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A headless Chromium session at chromedriver `url`, with its profile in `profile`.
async fn session(url: &str, profile: &Path) -> WebDriverResult<WebDriver> {
    let mut caps = DesiredCapabilities::chrome();
    let (w, h) = WINDOW;
    for arg in [
        "--headless=new",
        // Chromium's sandbox cannot start as root (CI runs as root).
        "--no-sandbox",
        "--disable-gpu",
        // /dev/shm is small in containers; shared memory goes to /tmp instead.
        "--disable-dev-shm-usage",
        &format!("--window-size={w},{h}"),
        &format!("--user-data-dir={}", profile.display()),
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        // Nothing but the pages under test: no updates, sync, metrics or lookups, no
        // proxy, and no host name but localhost resolves.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-domain-reliability",
        "--no-pings",
        "--proxy-server=direct://",
        "--proxy-bypass-list=*",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    ] {
        caps.add_arg(arg)?;
    }
    caps.set_browser_log_level(LoggingPrefsLogLevel::All)?;
    // Valyxo's own HTTP client set-up (reqwest needs its TLS configured even for plain
    // HTTP); the WebDriver requests go to 127.0.0.1 only, so no proxy from the environment.
    let client = valyxo::foundation::net::builder()
        .and_then(|b| Ok(b.no_proxy().build()?))
        .map_err(|e| WebDriverError::FatalError(format!("an HTTP client: {e}")))?;
    let web = WebDriver::builder(url, caps)
        .client(client)
        .connect()
        .await?;
    // The window's size counts the (invisible) tabs and toolbar of headless Chromium: grow it
    // by their height so that the page itself, and so every screenshot, is exactly WINDOW.
    let bars = web
        .execute("return window.outerHeight - window.innerHeight", Vec::new())
        .await?
        .convert::<u32>()?;
    web.set_window_rect(0, 0, w, h + bars).await?;
    Ok(web)
}
