//! The web pages of `valyxo server` in a real headless Chromium (common/browser.rs): a new
//! user registers, works on projects and logs out as a person would; hostile names show as
//! text; the console logs no error on any page. Each step saves a screenshot under the
//! test's temporary directory (kept when `VALYXO_KEEP_SCREENSHOTS` names a directory to
//! copy them to). Needs Debian's chromium and chromium-driver: ignored in a plain
//! `cargo test`, run by `.ci/run`.

use crate::common::browser::{Browser, ConsoleEntry, Key};
use crate::common::server::{call, new_project, put_file, session_token, user, Server, PASSWORD};
use serde_json::json;

/// A server, a browser, and the directory of the browser's screenshots.
struct Site {
    server: Server,
    b: Browser,
    dir: tempfile::TempDir,
}

impl Site {
    fn start() -> Site {
        Site::on(Server::start(None, &[]))
    }

    /// A browser on `server`.
    fn on(server: Server) -> Site {
        let dir = tempfile::tempdir().expect("temporary directory");
        let b = Browser::start(dir.path());
        Site { server, b, dir }
    }

    /// A site whose assistant is the local fake API `api` asking `model`.
    fn with_assistant(api: &crate::common::openai::Server, model: &str) -> Site {
        Site::on(Server::with_env(
            &["--assistant-url", &api.url, "--assistant-model", model],
            &[("VALYXO_ASSISTANT_KEY", "sk-test")],
        ))
    }

    fn goto(&self, path: &str) {
        self.b.goto(&format!("{}{path}", self.server.url));
    }

    /// The errors the console logged, but for the failed requests a step made on purpose
    /// (`expected`, e.g. a wrong password's 401): the browser logs those as errors too.
    fn errors_but(&self, expected: &[u16]) -> Vec<ConsoleEntry> {
        self.b
            .console_errors()
            .into_iter()
            .filter(|e| {
                !(e.source == "network"
                    && expected
                        .iter()
                        .any(|s| e.message.contains(&format!("status of {s}"))))
            })
            .collect()
    }

    fn assert_clean(&self, step: &str, expected: &[u16]) {
        let errors = self.errors_but(expected);
        assert!(errors.is_empty(), "{step}: console errors: {errors:#?}");
        self.b.forget_console();
    }

    /// A new project of the account `token` signs in: its id.
    fn project(&self, token: &str, name: &str) -> i64 {
        new_project(&self.server.url, token, name)
    }

    /// Logs in from the login page as a person would, and waits for the dashboard.
    fn log_in(&self, name: &str, password: &str) {
        self.goto("/login");
        self.b.type_into("#username", name);
        self.b.type_into("#password", password);
        self.b.type_into("#password", Key::Enter);
        self.dashboard_ready();
    }

    /// The dashboard, once it has loaded the account.
    fn dashboard_ready(&self) {
        self.b.wait_for_url("/dashboard");
        self.b.wait_for("#main:not([hidden]) #stats div");
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if let Some(keep) = std::env::var_os("VALYXO_KEEP_SCREENSHOTS") {
            let from = self.dir.path().join("screenshots");
            if let Ok(entries) = std::fs::read_dir(&from) {
                std::fs::create_dir_all(&keep).ok();
                for e in entries.flatten() {
                    std::fs::copy(e.path(), std::path::Path::new(&keep).join(e.file_name())).ok();
                }
            }
        }
    }
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn a_new_user_registers_works_on_projects_and_logs_out() {
    let s = Site::start();
    let b = &s.b;
    let name = crate::common::server::unique("browser");

    // Home: what Valyxo is, and the way in.
    s.goto("/");
    assert!(b.title().contains("Valyxo"), "{}", b.title());
    b.screenshot("home");
    s.assert_clean("home", &[]);
    b.click("a[href='/register']");
    b.wait_for_url("/register");
    b.wait_for("form#register");

    // The password rule is stated before anything is sent, and enforced as the API does.
    assert!(b.text("#password-rule").contains("upper-case"));
    b.type_into("#username", name.as_str());
    b.type_into("#email", format!("{name}@example.com").as_str());
    b.type_into("#password", "weakpass");
    b.click("button[type=submit]");
    b.wait_for("#register .error:not(:empty)");
    let error = b.text("#register .error");
    assert!(
        error.contains("Validation failed")
            && error.contains("lower-case letter, an upper-case letter and a digit"),
        "{error}"
    );
    b.screenshot("register-refused");
    s.assert_clean("a refused registration", &[400]);
    b.clear("#password");
    b.type_into("#password", PASSWORD);
    b.type_into("#password", Key::Enter);
    s.dashboard_ready();
    assert_eq!(b.text("#who"), name);
    // What a new account sees: its stats at zero, no projects and nothing more to show.
    let stats =
        b.eval("return [...document.querySelectorAll('#stats div')].map(d => d.textContent)");
    assert_eq!(
        stats,
        json!([
            "0projects",
            "0scripts",
            "0executions",
            "0 mstotal execution time"
        ])
    );
    let more = b.find("#more");
    let shown = b.raw(|_| more.is_displayed()).unwrap();
    assert!(!shown, "the More button shows with nothing more");
    b.screenshot("dashboard-new");
    s.assert_clean("the new dashboard", &[]);

    // The session is an HttpOnly cookie the page cannot read, and nothing is in storage.
    let session = b.cookie("valyxo_session").expect("the session cookie");
    assert_eq!(session.http_only, Some(true));
    let seen = b.eval("return [document.cookie, localStorage.length, sessionStorage.length]");
    assert!(
        !seen[0].as_str().unwrap().contains("valyxo_session"),
        "{seen}"
    );
    assert_eq!((seen[1].as_i64(), seen[2].as_i64()), (Some(0), Some(0)));

    // Create, rename and describe, delete (confirmed) a project; the stats follow.
    assert_eq!(b.count("#projects li"), 0);
    b.type_into("#new-name", "first project");
    b.type_into("#new-description", "made in the browser");
    b.click("#create button[type=submit]");
    b.wait_for("#projects li");
    assert_eq!(b.text("#projects li strong"), "first project");
    assert_eq!(b.text("#projects li .hint"), "made in the browser");
    b.wait_for("#stats div:first-child b");
    wait_text(b, "#stats div:first-child b", "1");
    b.click("#projects li button:not(.danger)");
    b.wait_for("#projects li form input[name=name]");
    b.clear("#projects li form input[name=name]");
    b.type_into("#projects li form input[name=name]", "renamed");
    b.clear("#projects li form input[name=description]");
    b.type_into(
        "#projects li form input[name=description]",
        "described again",
    );
    b.type_into("#projects li form input[name=description]", Key::Enter);
    b.wait_for("#projects li strong");
    assert_eq!(b.text("#projects li strong"), "renamed");
    assert_eq!(b.text("#projects li .hint"), "described again");
    b.screenshot("dashboard-project");
    // The CLI sees what the browser made.
    let token = session_token(&s.server.url, &name, PASSWORD);
    let listed = call(&s.server.url, "GET", "/api/projects", Some(&token), None);
    assert_eq!(listed.body["data"][0]["name"], "renamed");
    // Dismissing the confirmation deletes nothing; accepting it deletes.
    b.click("#projects li button.danger");
    b.raw(|d| d.dismiss_alert()).expect("a confirmation");
    assert_eq!(b.count("#projects li"), 1);
    b.click("#projects li button.danger");
    b.raw(|d| d.accept_alert()).expect("a confirmation");
    b.wait_for("#projects-notice:not(:empty)");
    assert_eq!(b.count("#projects li"), 0);
    wait_text(b, "#stats div:first-child b", "0");
    let listed = call(&s.server.url, "GET", "/api/projects", Some(&token), None);
    assert_eq!(listed.body["data"], json!([]));
    s.assert_clean("projects", &[]);

    // A password change keeps this session and ends the others (the CLI's token).
    b.type_into("#current", PASSWORD);
    b.type_into("#next", "Another-pass9");
    b.click("#password button[type=submit]");
    b.wait_for("#password .notice:not(:empty)");
    assert!(b
        .text("#password .notice")
        .contains("other sessions were signed out"));
    let me = call(&s.server.url, "GET", "/api/auth/me", Some(&token), None);
    assert_eq!(me.status, 401);
    s.assert_clean("a password change", &[]);

    // A theme, kept with the account: the page takes its colours at once and after a reload.
    let background = "return getComputedStyle(document.body).backgroundColor";
    let dark = b.eval(background);
    b.raw(|d| async move {
        use thirtyfour::prelude::*;
        let pick = d.find(By::Id("theme")).await?;
        pick.send_keys("light").await?;
        d.find(By::Id("theme-notice")).await
    })
    .expect("the theme picker");
    wait_text(b, "#theme-notice", "Theme light kept with your account.");
    assert_eq!(
        b.eval("return document.documentElement.dataset.theme"),
        "light"
    );
    let light = b.eval(background);
    assert_ne!(light, dark);
    b.screenshot("dashboard-light");
    b.reload();
    s.dashboard_ready();
    wait_until(b, "return document.documentElement.dataset.theme", "light");
    assert_eq!(b.eval(background), light);
    s.assert_clean("a theme", &[]);

    // Log out; going back shows nothing private: the dashboard asks again and leaves.
    b.click("#logout");
    b.wait_for_url("/login");
    b.wait_for("form#login");
    assert!(
        b.cookie("valyxo_session").is_none(),
        "the cookie is cleared"
    );
    b.back();
    b.wait_for_url("/login");
    let body = b.eval("return document.body.innerText");
    assert!(!body.as_str().unwrap().contains(&name), "{body}");
    b.screenshot("after-logout-back");
    s.assert_clean("logging out and going back", &[401]);

    // Log in: the same message for a wrong password and for an unknown user.
    for (who, password) in [(name.as_str(), PASSWORD), ("nobody-here", "Another-pass9")] {
        b.clear("#username");
        b.clear("#password");
        b.type_into("#username", who);
        b.type_into("#password", password);
        b.type_into("#password", Key::Enter);
        wait_text(b, "#login .error", "Invalid username or password");
    }
    b.screenshot("login-refused");
    s.assert_clean("refused logins", &[401]);
    b.clear("#username");
    b.clear("#password");
    b.type_into("#username", name.as_str());
    b.type_into("#password", "Another-pass9");
    b.type_into("#password", Key::Enter);
    s.dashboard_ready();
    assert_eq!(b.text("#who"), name);

    // Log out everywhere ends this browser's session and the CLI's.
    let cli = session_token(&s.server.url, &name, "Another-pass9");
    b.click("#logout-all");
    b.wait_for_url("/login");
    assert_eq!(
        call(&s.server.url, "GET", "/api/auth/me", Some(&cli), None).status,
        401
    );
    s.goto("/dashboard");
    b.wait_for_url("/login");
    s.assert_clean("logging out everywhere", &[401]);
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn hostile_names_show_as_text() {
    let s = Site::start();
    let b = &s.b;
    let (name, token, _) = user(&s.server.url);
    let hostile = [
        ("<img src=x onerror=alert(1)>", "<script>alert(2)</script>"),
        (
            "\"><svg onload=alert(3)>",
            "javascript:alert(4) ' onmouseover='alert(5)",
        ),
        (
            "&lt;b&gt;not bold &amp; <b>bold",
            "{{asset api.js}} ${alert(6)} </p><b>x</b>",
        ),
    ];
    for (n, d) in hostile {
        let r = call(
            &s.server.url,
            "POST",
            "/api/projects",
            Some(&token),
            Some(json!({"name": n, "description": d})),
        );
        assert_eq!(r.status, 201, "{}", r.body);
    }
    s.log_in(&name, PASSWORD);
    b.wait_for("#projects li");
    // Newest first; each shown exactly as typed, as text.
    let shown = b.eval(
        "return [...document.querySelectorAll('#projects li')].map(li => \
         [li.querySelector('strong').textContent, li.querySelector('.hint').textContent])",
    );
    let want: Vec<_> = hostile.iter().rev().map(|(n, d)| json!([n, d])).collect();
    assert_eq!(shown, json!(want));
    // Nothing of them became markup, and no script of theirs ran (an alert would be open).
    let markup = b.eval("return document.querySelectorAll('#projects img, #projects svg, #projects script, #projects b').length");
    assert_eq!(markup, json!(0));
    assert!(b.raw(|d| d.get_alert_text()).is_err(), "an alert opened");
    // Editing shows them as field values, not markup, too.
    b.click("#projects li button:not(.danger)");
    b.wait_for("#projects li form input[name=name]");
    assert_eq!(b.value("#projects li form input[name=name]"), hostile[2].0);
    b.screenshot("hostile-names");
    s.assert_clean("hostile names", &[]);
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn a_file_edited_in_the_browser_syncs_to_a_terminal_and_back() {
    use crate::common::{Home, HOME_PASSWORD};
    let s = Site::start();
    let b = &s.b;
    let name = crate::common::server::unique("files");
    let home = Home::signed_in(&s.server.url, &name, true);

    s.log_in(&name, HOME_PASSWORD);
    b.type_into("#new-name", "web");
    b.type_into("#new-name", Key::Enter);
    b.wait_for("#projects li a");
    b.click("#projects li a");
    b.wait_for_url("/project?id=");
    b.wait_for("#main:not([hidden])");
    assert_eq!(b.text("#title"), "web");

    // A new file, typed and saved with Ctrl-S.
    b.type_into("#new-path", "notes.md");
    b.type_into("#new-path", Key::Enter);
    b.wait_for("#editor:not([hidden])");
    assert_eq!(b.text("#editor-title"), "notes.md");
    b.type_into("#text", "hello from the browser\n");
    b.type_into("#text", Key::Control + "s");
    wait_text(b, "#editor-state", "version 2 · saved");
    assert_eq!(
        b.text("#files-notice"),
        "",
        "the empty list's notice is gone"
    );
    b.screenshot("project-saved");
    s.assert_clean("a saved file", &[]);

    // The terminal's sync receives it; an edit there goes back up.
    home.c("sync").success();
    assert_eq!(
        home.out("cat ~/Projects/web/notes.md"),
        "hello from the browser\n"
    );
    home.out("echo 'edited in the terminal' > ~/Projects/web/notes.md");
    home.c("sync").success();

    // The editor still holds the old version: saving over the terminal's edit is refused
    // and shown as a conflict; nothing is overwritten.
    b.type_into("#text", "and more from the browser\n");
    b.type_into("#text", Key::Control + "s");
    b.wait_for("#conflict:not([hidden])");
    assert!(
        b.text("#editor-error").contains("changed elsewhere"),
        "{}",
        b.text("#editor-error")
    );
    b.screenshot("project-conflict");
    s.assert_clean("a conflicting save", &[409]);
    let (status, body, _) = crate::common::server::raw(
        "GET",
        &format!(
            "{}/api/projects/{}/files/content?path=notes.md",
            s.server.url,
            b.url().rsplit('=').next().unwrap()
        ),
        Some(&session_token(&s.server.url, &name, HOME_PASSWORD)),
        None,
    );
    assert_eq!((status, body), (200, b"edited in the terminal\n".to_vec()));
    // Taking theirs shows the terminal's text.
    b.click("#take-theirs");
    wait_value(b, "#text", "edited in the terminal\n");
    // So does the page loaded anew.
    b.reload();
    b.wait_for("#files li");
    b.click("#files li button");
    b.wait_for("#editor:not([hidden])");
    wait_value(b, "#text", "edited in the terminal\n");
    s.assert_clean("the terminal's edit in the browser", &[]);
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn scripts_are_written_run_and_their_history_shown() {
    let s = Site::start();
    let b = &s.b;
    let (name, token, _) = user(&s.server.url);
    let p = s.project(&token, "scripted");
    s.log_in(&name, PASSWORD);
    s.goto(&format!("/project?id={p}"));
    b.wait_for("#main:not([hidden])");
    wait_text(b, "#scripts-notice", "No scripts yet.");

    // A new script opens in its editor; typed, saved with Ctrl-S, run.
    b.type_into("#script-name", "greet");
    b.type_into("#script-name", Key::Enter);
    b.wait_for("#script-editor:not([hidden])");
    assert_eq!(b.text("#script-title"), "greet (rhai)");
    b.type_into(
        "#script-text",
        "let who = \"<b>web</b>\";\nprint(`hello ${who}`);\n40 + 2",
    );
    b.type_into("#script-text", Key::Control + "s");
    wait_text(b, "#script-state", "saved");
    b.click("#scripts li button:nth-of-type(2)");
    b.wait_for("#run:not([hidden])");
    let deadline = std::time::Instant::now() + crate::common::browser::WAIT;
    while !b.text("#run-title").contains(" in ") {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            b.text("#run-title")
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        b.text("#run-title").starts_with("greet: success in "),
        "{}",
        b.text("#run-title")
    );
    // The output is text: the script's markup shows as typed.
    assert!(
        b.text("#run-output").contains("hello <b>web</b>"),
        "{}",
        b.text("#run-output")
    );
    assert_eq!(b.count("#run-output b"), 0);
    b.screenshot("script-run");

    // A failing script shows its error; the history lists both runs, newest first.
    b.clear("#script-text");
    b.type_into("#script-text", "throw \"broken\";");
    b.type_into("#script-text", Key::Control + "s");
    wait_text(b, "#script-state", "saved");
    b.click("#scripts li button:nth-of-type(2)");
    let deadline = std::time::Instant::now() + crate::common::browser::WAIT;
    while !b.text("#run-title").contains(" in ") {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            b.text("#run-title")
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(b.text("#run-title").starts_with("greet: error in "));
    assert!(
        b.text("#run-error").contains("broken"),
        "{}",
        b.text("#run-error")
    );
    b.click("#scripts li button:nth-of-type(3)");
    wait_text(b, "#run-title", "greet: the latest runs");
    let runs =
        b.eval("return [...document.querySelectorAll('#run-output div')].map(d => d.textContent)");
    let runs: Vec<String> = serde_json::from_value(runs).unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(
        runs[0].contains("error") && runs[1].contains("success"),
        "{runs:?}"
    );
    b.screenshot("script-history");
    s.assert_clean("scripts", &[]);
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn the_pages_work_from_the_keyboard_are_labelled_and_fit_a_phone() {
    let s = Site::start();
    let b = &s.b;
    let (name, token, _) = user(&s.server.url);
    let p = s.project(
        &token,
        "a project with a rather long name that must wrap on a phone",
    );

    // Keyboard alone: the user name has the focus, Tab goes on to the password, Enter
    // logs in.
    s.goto("/login");
    b.wait_for("#username");
    assert_eq!(b.eval("return document.activeElement.id"), "username");
    b.press(name.as_str());
    b.press(Key::Tab);
    assert_eq!(b.eval("return document.activeElement.id"), "password");
    b.press(PASSWORD);
    b.press(Key::Enter);
    s.dashboard_ready();

    // Every field of every page has a label, and at phone width nothing runs off the side.
    b.raw(|d| d.set_window_rect(0, 0, 390, 844))
        .expect("a phone-sized window");
    let unlabelled = "return [...document.querySelectorAll('input:not([type=hidden]):not([type=file]), textarea, select')]\
        .filter(e => e.labels.length === 0).map(e => e.id || e.name)";
    let overflow = "return document.scrollingElement.scrollWidth - window.innerWidth";
    for (page, ready) in [
        ("/".to_string(), "main"),
        ("/login".to_string(), "#login"),
        ("/register".to_string(), "#register"),
        ("/dashboard".to_string(), "#main:not([hidden]) #stats div"),
        (format!("/project?id={p}"), "#main:not([hidden])"),
    ] {
        s.goto(&page);
        b.wait_for(ready);
        assert_eq!(
            b.eval(unlabelled),
            json!([]),
            "{page}: fields without a label"
        );
        let over = b.eval(overflow).as_i64().unwrap();
        assert!(over <= 0, "{page} is {over} px wider than a phone");
        let step = format!("phone{}", page.replace(['/', '?', '='], "-"));
        b.screenshot(&step);
    }
    s.assert_clean("every page at phone width", &[]);
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn code_is_highlighted_as_it_is_typed_in_the_accounts_theme() {
    let s = Site::start();
    let b = &s.b;
    let (name, token, _) = user(&s.server.url);
    let t = Some(token.as_str());
    let p = s.project(&token, "code");
    let r = call(
        &s.server.url,
        "PUT",
        "/api/users/theme",
        t,
        Some(json!({"theme": "nord"})),
    );
    assert_eq!(r.status, 200);
    s.log_in(&name, PASSWORD);
    s.goto(&format!("/project?id={p}"));
    b.wait_for("#main:not([hidden])");
    b.type_into("#new-path", "src/main.rs");
    b.type_into("#new-path", Key::Enter);
    b.wait_for("#editor:not([hidden])");
    b.type_into("#text", "fn main() {\n");
    b.type_into("#text", Key::Tab);
    b.type_into(
        "#text",
        "let greeting = \"<b>héllo</b>\"; // a comment\n}\n",
    );
    // The highlighted copy holds exactly the text, coloured in nord's colours.
    shade_is_whole_highlight(&s, &token, "src/main.rs", "typed");
    wait_until(
        b,
        "return document.getElementById('shade').dataset.language || ''",
        "Rust",
    );
    let copy = b.eval("return document.getElementById('shade').textContent");
    let value = b.value("#text");
    assert_eq!(copy.as_str().unwrap(), format!("{value}\n"));
    assert!(
        value.contains("\n    let greeting"),
        "Tab indents: {value:?}"
    );
    let colours = b.eval(
        "return [...document.querySelectorAll('#shade .line span')].map(s => [s.textContent, getComputedStyle(s).color])",
    );
    let colours: Vec<(String, String)> = serde_json::from_value(colours).unwrap();
    let of = |word: &str| {
        colours
            .iter()
            .find(|(text, _)| text.contains(word))
            .map(|(_, c)| c.clone())
            .unwrap_or_else(|| panic!("{word} is not coloured: {colours:?}"))
    };
    // nord: keywords #81a1c1, strings #a3be8c, comments #616e88.
    assert_eq!(of("fn"), "rgb(129, 161, 193)");
    assert_eq!(of("héllo"), "rgb(163, 190, 140)");
    assert_eq!(of("a comment"), "rgb(97, 110, 136)");
    // The string's markup is text in the copy too.
    assert_eq!(b.count("#shade b"), 0);
    b.screenshot("highlighted");
    s.assert_clean("highlighting", &[]);
}

/// Each line of the editor's highlighted copy as the page draws it: the copy's text, and
/// per line its coloured parts `[start, end, colour, style]` in UTF-16 units.
const SHADE_PARTS: &str = "const pre = document.getElementById('shade'); \
    return [pre.textContent, [...pre.children].map(l => { let at = 0; const out = []; \
      for (const n of l.childNodes) { const len = n.textContent.length; \
        if (n.nodeType === 1) out.push([at, at + len, n.style.color, \
          (n.style.fontWeight === 'bold' ? 'b' : '') + (n.style.fontStyle === 'italic' ? 'i' : '')]); \
        at += len; } \
      return out; })]";

/// Each line's coloured parts: `(start, end, colour, style)`.
type Parts = Vec<Vec<(u64, u64, String, String)>>;

/// Waits until the editor's highlighted copy holds exactly the field's text coloured as a
/// whole highlight of it (asked by `other`, an account in the same theme) colours it.
fn shade_is_whole_highlight(s: &Site, other: &str, path: &str, step: &str) {
    let b = &s.b;
    let text = b.value("#text");
    let r = call(
        &s.server.url,
        "POST",
        "/api/highlight",
        Some(other),
        Some(json!({"path": path, "text": text})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let rgb = |hex: &str| {
        let c = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap();
        format!("rgb({}, {}, {})", c(1), c(3), c(5))
    };
    let want: Parts = r.body["data"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l.as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p[0].as_u64().unwrap(),
                        p[1].as_u64().unwrap(),
                        rgb(p[2].as_str().unwrap()),
                        p[3].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .collect();
    let want = (format!("{text}\n"), want);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let got: (String, Parts) = serde_json::from_value(b.eval(SHADE_PARTS)).unwrap();
        if got == want {
            return;
        }
        if std::time::Instant::now() > deadline {
            let first = (0..want.1.len().max(got.1.len()))
                .find(|&i| want.1.get(i) != got.1.get(i))
                .map(|i| (i, want.1.get(i).cloned(), got.1.get(i).cloned()));
            b.screenshot(step);
            panic!(
                "{step}: the copy is not the whole highlight (texts equal: {}); first line that differs (line, wanted, drawn): {first:?}",
                got.0 == want.0
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

/// Puts the field's selection at `start..end` (UTF-16 units), as a click or drag would.
fn select(b: &Browser, start: usize, end: usize) {
    b.eval(&format!(
        "const t = document.getElementById('text'); t.focus(); t.setSelectionRange({start}, {end}); return 0"
    ));
}

/// Inserts `text` at the field's selection in one input, as a paste does.
fn paste(b: &Browser, text: &str) {
    b.eval(&format!(
        "document.getElementById('text').focus(); document.execCommand('insertText', false, {}); return 0",
        serde_json::to_string(text).unwrap()
    ));
}

/// The editor highlights an edit from the server's session of the text: whatever is
/// typed, deleted or pasted, across lines or changing how the lines below read, the copy
/// ends up exactly as a whole highlight of the text colours it; and when the server lost
/// the session (a restart), typing goes on highlighted.
#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn edits_are_highlighted_as_the_whole_text_would_be() {
    let mut s = Site::start();
    let (name, token, _) = user(&s.server.url);
    let (_, other, _) = user(&s.server.url);
    let p = s.project(&token, "edits");
    // nord colours comments (#616e88), and both accounts highlight in it.
    for t in [&token, &other] {
        let r = call(
            &s.server.url,
            "PUT",
            "/api/users/theme",
            Some(t),
            Some(json!({"theme": "nord"})),
        );
        assert_eq!(r.status, 200);
    }
    s.log_in(&name, PASSWORD);
    s.goto(&format!("/project?id={p}"));
    let b = &s.b;
    b.wait_for("#main:not([hidden])");
    b.type_into("#new-path", "lib.rs");
    b.type_into("#new-path", Key::Enter);
    b.wait_for("#editor:not([hidden])");
    // Many lines at once, as a paste.
    let code: String = (0..150)
        .map(|i| {
            format!(
                "fn f{i}(x: u32) -> u32 {{\n    let s = \"é{i}😀\"; // note {i}\n    x + {i}\n}}\n"
            )
        })
        .collect();
    paste(b, &code);
    shade_is_whole_highlight(&s, &other, "lib.rs", "pasted");
    let lines = b.eval("return document.getElementById('shade').children.length");
    assert_eq!(lines, json!(601));
    // A line of the copy is as high as a line of the field: the copy is as tall.
    let heights = b.eval(
        "return [document.getElementById('shade').scrollHeight, document.getElementById('text').scrollHeight]",
    );
    assert_eq!(heights[0], heights[1], "{heights}");
    // Typed into a line, and across lines (a line break, then more).
    let at = code.find("x + 7\n").unwrap() + 5;
    select(b, at, at);
    b.type_into("#text", " * 2\n    + f1(x)");
    shade_is_whole_highlight(&s, &other, "lib.rs", "typed");
    // A block comment opened above the code: every line below it turns comment.
    select(b, 0, 0);
    b.type_into("#text", "/* opened\n");
    shade_is_whole_highlight(&s, &other, "lib.rs", "comment opened");
    let comment = b.eval(
        "return [...document.getElementById('shade').children[500].querySelectorAll('span')].map(s => s.style.color)",
    );
    assert_eq!(
        comment,
        json!(["rgb(97, 110, 136)"]),
        "line 500 is in the comment"
    );
    // ... and closed again: the code below comes back.
    select(b, 9, 9);
    b.type_into("#text", " */");
    shade_is_whole_highlight(&s, &other, "lib.rs", "comment closed");
    // Lines deleted: a selection across forty lines, then Backspace.
    let text = b.value("#text");
    let from: usize = text.match_indices('\n').nth(20).unwrap().0;
    let to: usize = text.match_indices('\n').nth(60).unwrap().0;
    let units = |i: usize| text[..i].encode_utf16().count();
    select(b, units(from), units(to));
    b.type_into("#text", Key::Backspace);
    shade_is_whole_highlight(&s, &other, "lib.rs", "deleted");
    let lines = b.eval("return document.getElementById('shade').children.length");
    assert_eq!(lines, json!(563));
    // A string left open turns what follows into string, until closed.
    let end = b.value("#text").encode_utf16().count();
    select(b, end, end);
    b.type_into("#text", "const S: &str = \"open\n");
    select(b, 40, 40);
    b.type_into("#text", "\"");
    shade_is_whole_highlight(&s, &other, "lib.rs", "string");
    s.assert_clean("edits", &[]);

    // The server restarted: it knows the session no more (409), and the page sends the
    // whole text again.
    s.server.restart();
    let b = &s.b;
    select(b, 0, 0);
    b.type_into("#text", "// after the restart\n");
    shade_is_whole_highlight(&s, &other, "lib.rs", "restarted");
    b.type_into("#text", "fn g() {}\n");
    shade_is_whole_highlight(&s, &other, "lib.rs", "restarted, then typed");
    b.screenshot("edits highlighted");
    let lost = b
        .console_errors()
        .into_iter()
        .filter(|e| e.message.contains("status of 409"))
        .count();
    assert_eq!(lost, 1, "the edit after the restart was refused once");
    s.assert_clean("after a restart", &[409]);
}

/// A signed-in browser on a project's page with `a.txt` ("first\n") open in the editor;
/// the account's name, a bearer token of it, and the URL of `a.txt`'s content.
fn editing(s: &Site) -> (String, String, String) {
    let b = &s.b;
    let url = &s.server.url;
    let (name, token, _) = user(url);
    let p = s.project(&token, "edits");
    let content = format!("{url}/api/projects/{p}/files/content?path=a.txt");
    assert_eq!(put_file(url, &token, p, "a.txt", b"first\n", 0), 200);
    s.log_in(&name, PASSWORD);
    s.goto(&format!("/project?id={p}"));
    b.wait_for("#files li[data-path='a.txt'] button");
    b.click("#files li[data-path='a.txt'] button");
    b.wait_for("#editor:not([hidden])");
    wait_value(b, "#text", "first\n");
    (name, token, content)
}

/// The content the server holds at `content` (a URL from `editing`), read with a new
/// session of `name`.
fn held(url: &str, name: &str, content: &str) -> String {
    let token = session_token(url, name, PASSWORD);
    let (status, body, _) = crate::common::server::raw("GET", content, Some(&token), None);
    assert_eq!(status, 200);
    String::from_utf8(body).unwrap()
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn a_session_ending_mid_edit_keeps_the_unsaved_text() {
    let s = Site::start();
    let b = &s.b;
    let (name, token, content) = editing(&s);
    b.type_into("#text", "typed while the session ends\n");
    // Another machine logs the account out everywhere: this page's session ends too.
    let r = call(
        &s.server.url,
        "POST",
        "/api/auth/logout-all",
        Some(&token),
        None,
    );
    assert_eq!(r.status, 200);
    b.type_into("#text", Key::Control + "s");
    b.wait_for("#editor-error:not(:empty)");
    b.screenshot("session-ended-mid-edit");
    assert!(
        b.url().contains("/project?id="),
        "the page was left, and the edit with it: {}",
        b.url()
    );
    assert!(
        b.text("#editor-error").contains("log in"),
        "{}",
        b.text("#editor-error")
    );
    assert_eq!(
        b.value("#text"),
        "first\ntyped while the session ends\n",
        "the unsaved text is kept"
    );
    // Logged in again (as in another tab), the same save goes through.
    let before = b.cookie("valyxo_csrf").map(|c| c.value);
    b.eval(&format!(
        "fetch('/api/web/login', {{method: 'POST', headers: {{'Content-Type': \
         'application/json'}}, body: JSON.stringify({{username: {}, password: {}}})}}); \
         return null",
        json!(name),
        json!(PASSWORD)
    ));
    let deadline = std::time::Instant::now() + crate::common::browser::WAIT;
    while b.cookie("valyxo_csrf").map(|c| c.value) == before {
        assert!(std::time::Instant::now() < deadline, "no new session");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    b.type_into("#text", Key::Control + "s");
    wait_text(b, "#editor-state", "version 2 · saved");
    assert_eq!(
        held(&s.server.url, &name, &content),
        "first\ntyped while the session ends\n"
    );
    s.assert_clean("a session ended mid-edit", &[401]);
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn unsaved_text_is_not_dropped_without_asking() {
    let s = Site::start();
    let b = &s.b;
    editing(&s);
    // Nothing typed: closing and leaving ask nothing.
    let leaving = "const e = new Event('beforeunload', {cancelable: true}); \
                   window.dispatchEvent(e); return e.defaultPrevented";
    assert_eq!(b.eval(leaving), json!(false));
    b.type_into("#text", "not saved yet\n");
    // Closing the editor, or opening the file anew, asks first; dismissed, the text stays.
    for button in ["#close", "#files li[data-path='a.txt'] button"] {
        b.click(button);
        let asked = b.raw(|d| d.get_alert_text());
        assert!(
            asked.as_deref().is_ok_and(|t| t.contains("unsaved")),
            "{button}: {asked:?}"
        );
        b.raw(|d| d.dismiss_alert()).expect("a confirmation");
        assert_eq!(b.value("#text"), "first\nnot saved yet\n", "{button}");
        assert_eq!(b.count("#editor:not([hidden])"), 1, "{button}");
    }
    // Leaving the page asks the browser to warn.
    assert_eq!(b.eval(leaving), json!(true));
    // Saved, it closes without a question.
    b.type_into("#text", Key::Control + "s");
    wait_text(b, "#editor-state", "version 2 · saved");
    assert_eq!(b.eval(leaving), json!(false));
    b.click("#close");
    assert!(b.raw(|d| d.get_alert_text()).is_err(), "asked for nothing");
    b.wait_for("#editor[hidden]");
    s.assert_clean("unsaved text", &[]);
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn a_save_made_while_another_is_under_way_waits_for_it() {
    let s = Site::start();
    let b = &s.b;
    let (name, _, content) = editing(&s);
    // Two saves at once (Ctrl-S pressed twice, text typed between): the second is based on
    // the first's version, not refused as a conflict with it.
    b.eval(
        "const t = document.getElementById('text'); t.value += 'one\\n'; \
         document.getElementById('save').click(); t.value += 'two\\n'; \
         document.getElementById('save').click(); return null",
    );
    wait_text(b, "#editor-state", "version 3 · saved");
    assert_eq!(
        b.count("#conflict[hidden]"),
        1,
        "{}",
        b.text("#editor-error")
    );
    assert_eq!(b.text("#editor-error"), "");
    assert_eq!(held(&s.server.url, &name, &content), "first\none\ntwo\n");
    s.assert_clean("two saves at once", &[]);
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn a_deleted_files_path_can_be_used_again_and_nothing_is_replaced_unasked() {
    let s = Site::start();
    let b = &s.b;
    let (name, token, content) = editing(&s);
    let url = &s.server.url;
    let project = content
        .split("/projects/")
        .nth(1)
        .unwrap()
        .split('/')
        .next();
    let base = format!("{url}/api/projects/{}", project.unwrap());
    // Files made and deleted elsewhere: what is left of them are deletions sync reads.
    for gone in ["old.txt", "moved.txt", "dropped.txt"] {
        let (status, _, _) = crate::common::server::raw(
            "PUT",
            &format!("{base}/files/content?path={gone}&base_version=0"),
            Some(&token),
            Some(("application/octet-stream", b"was here".to_vec())),
        );
        assert_eq!(status, 200);
        let r = call(
            url,
            "POST",
            &format!("/api/projects/{}/files/commit", project.unwrap()),
            Some(&token),
            Some(
                json!({"base_revision": 0, "changes": [{"path": gone, "hash": null, "base_version": 1}]}),
            ),
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
    b.reload();
    b.wait_for("#files li[data-path='a.txt']");
    // A new file, a rename and an upload to those paths.
    b.type_into("#new-path", "old.txt");
    b.type_into("#new-path", Key::Enter);
    wait_text(b, "#editor-title", "old.txt");
    b.click("#files li[data-path='a.txt'] button:nth-of-type(2)");
    b.raw(|d| d.send_alert_text("moved.txt")).expect("a prompt");
    b.raw(|d| d.accept_alert()).expect("a prompt");
    b.wait_for("#files li[data-path='moved.txt']");
    let drop = |file: &str, text: &str| {
        b.eval(&format!(
            "const dt = new DataTransfer(); dt.items.add(new File([{}], {})); \
             document.getElementById('main').dispatchEvent(new DragEvent('drop', \
             {{dataTransfer: dt, bubbles: true, cancelable: true}})); return null",
            json!(text),
            json!(file)
        ));
    };
    drop("dropped.txt", "dropped in");
    b.wait_for("#files li[data-path='dropped.txt']");
    wait_text(b, "#files-notice", "Uploaded dropped.txt.");
    s.assert_clean("paths used again", &[]);
    // Renaming onto a file, or uploading one of the same name, asks first: dismissed, the
    // file is left as it is.
    b.click("#files li[data-path='moved.txt'] button:nth-of-type(2)");
    b.raw(|d| d.send_alert_text("dropped.txt"))
        .expect("a prompt");
    b.raw(|d| d.accept_alert()).expect("a prompt");
    let asked = b.raw(|d| d.get_alert_text());
    assert!(
        asked.as_deref().is_ok_and(|t| t.contains("replace")),
        "renaming onto a file: {asked:?}"
    );
    b.raw(|d| d.dismiss_alert()).expect("a confirmation");
    drop("dropped.txt", "dropped again");
    let asked = b.raw(|d| d.get_alert_text());
    assert!(
        asked.as_deref().is_ok_and(|t| t.contains("replace")),
        "uploading over a file: {asked:?}"
    );
    b.raw(|d| d.dismiss_alert()).expect("a confirmation");
    let dropped = content.replace("path=a.txt", "path=dropped.txt");
    assert_eq!(held(url, &name, &dropped), "dropped in");
    assert_eq!(b.count("#files li[data-path='moved.txt']"), 1);
    s.assert_clean("nothing replaced unasked", &[]);
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn the_open_file_renamed_saves_to_its_new_path_and_a_vanished_file_is_said_so() {
    let s = Site::start();
    let b = &s.b;
    let (name, token, content) = editing(&s);
    let url = &s.server.url;
    b.type_into("#text", "edited, then renamed\n");
    b.click("#files li[data-path='a.txt'] button:nth-of-type(2)");
    b.raw(|d| d.send_alert_text("b.txt")).expect("a prompt");
    b.raw(|d| d.accept_alert()).expect("a prompt");
    b.wait_for("#files li[data-path='b.txt']");
    wait_text(b, "#editor-title", "b.txt");
    assert_eq!(b.value("#text"), "first\nedited, then renamed\n");
    // The save goes to the file's new path, not back to the old one.
    b.type_into("#text", Key::Control + "s");
    wait_text(b, "#editor-state", "version 2 · saved");
    let renamed = content.replace("path=a.txt", "path=b.txt");
    assert_eq!(held(url, &name, &renamed), "first\nedited, then renamed\n");
    assert_eq!(b.count("#files li[data-path='a.txt']"), 0);
    s.assert_clean("the open file renamed", &[]);
    // A file deleted elsewhere since the list was read: opening it says so, on this page.
    let r = call(
        url,
        "POST",
        &format!(
            "/api/projects/{}/files/commit",
            b.url().rsplit('=').next().unwrap()
        ),
        Some(&token),
        Some(
            json!({"base_revision": 0, "changes": [{"path": "b.txt", "hash": null, "base_version": 2}]}),
        ),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    b.click("#close");
    b.click("#files li[data-path='b.txt'] button");
    b.wait_for("#files-notice:not(:empty)");
    assert!(b.url().contains("/project?id="), "left for {}", b.url());
    assert!(
        b.text("#files-notice").contains("b.txt"),
        "{}",
        b.text("#files-notice")
    );
    b.wait_for("#files:not(:has(li[data-path='b.txt']))");
    s.assert_clean("a vanished file", &[404]);
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn a_session_ending_while_a_project_is_described_keeps_the_text() {
    let s = Site::start();
    let b = &s.b;
    let url = &s.server.url;
    let (name, token, _) = user(url);
    s.project(&token, "described");
    s.log_in(&name, PASSWORD);
    b.wait_for("#projects li");
    b.click("#projects li button:not(.danger)");
    b.wait_for("#projects li form input[name=description]");
    b.type_into(
        "#projects li form input[name=description]",
        "a long description",
    );
    let r = call(url, "POST", "/api/auth/logout-all", Some(&token), None);
    assert_eq!(r.status, 200);
    b.click("#projects li form button[type=submit]");
    b.wait_for("#projects li form .error:not(:empty)");
    assert!(b.url().contains("/dashboard"), "left for {}", b.url());
    assert!(
        b.text("#projects li form .error").contains("log in"),
        "{}",
        b.text("#projects li form .error")
    );
    assert_eq!(
        b.value("#projects li form input[name=description]"),
        "a long description"
    );
    // With nothing typed, a session found ended still leaves for the login page.
    b.reload();
    b.wait_for_url("/login");
    s.assert_clean("a session ended while describing", &[401]);
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn a_file_with_windows_line_endings_and_a_byte_order_mark_keeps_them_when_edited() {
    let s = Site::start();
    let b = &s.b;
    let (name, token, content) = editing(&s);
    let windows = content.replace("path=a.txt", "path=windows.txt");
    let (status, _, _) = crate::common::server::raw(
        "PUT",
        &format!("{windows}&base_version=0"),
        Some(&token),
        Some((
            "application/octet-stream",
            "\u{feff}one\r\ntwo\r\n".as_bytes().to_vec(),
        )),
    );
    assert_eq!(status, 200);
    b.reload();
    b.wait_for("#files li[data-path='windows.txt'] button");
    b.click("#files li[data-path='windows.txt'] button");
    wait_text(b, "#editor-title", "windows.txt");
    wait_value(b, "#text", "\u{feff}one\ntwo\n");
    // Opened and nothing typed: nothing is unsaved.
    b.click("#close");
    assert!(b.raw(|d| d.get_alert_text()).is_err(), "asked to discard");
    b.click("#files li[data-path='windows.txt'] button");
    wait_value(b, "#text", "\u{feff}one\ntwo\n");
    b.type_into("#text", "three\n");
    b.type_into("#text", Key::Control + "s");
    wait_text(b, "#editor-state", "version 2 · saved");
    assert_eq!(
        held(&s.server.url, &name, &windows),
        "\u{feff}one\r\ntwo\r\nthree\r\n"
    );
    s.assert_clean("windows line endings", &[]);
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn a_logout_that_fails_says_the_session_goes_on() {
    let s = Site::start();
    let b = &s.b;
    let (name, _, _) = user(&s.server.url);
    s.log_in(&name, PASSWORD);
    // The logout fails (here its CSRF token is gone; a lost connection or a busy server
    // fail alike): the session is still live, and the page must not pretend otherwise.
    b.eval("document.cookie = 'valyxo_csrf=; Max-Age=0; Path=/'; return null");
    b.click("#logout");
    let deadline = std::time::Instant::now() + crate::common::browser::WAIT;
    let told = loop {
        if let Ok(t) = b.raw(|d| d.get_alert_text()) {
            break t;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nothing said; the page is {}",
            b.url()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(told.contains("still logged in"), "{told}");
    b.raw(|d| d.accept_alert()).expect("the message");
    assert!(b.url().contains("/dashboard"), "{}", b.url());
    s.assert_clean("a failed logout", &[403]);
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn a_wrong_current_password_is_said_and_the_session_goes_on() {
    let s = Site::start();
    let b = &s.b;
    let (name, _, _) = user(&s.server.url);
    s.log_in(&name, PASSWORD);
    // The API answers a wrong current password with 401, as it does an ended session.
    b.type_into("#current", "Not-the-password1");
    b.type_into("#next", "Another-pass9");
    b.click("#password button[type=submit]");
    b.wait_for("#password .error:not(:empty)");
    assert!(b.url().contains("/dashboard"), "left for {}", b.url());
    assert_eq!(b.text("#password .error"), "Current password is incorrect");
    // The session is untouched: the page goes on working.
    b.reload();
    s.dashboard_ready();
    s.assert_clean("a wrong current password", &[401]);
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn a_file_grown_too_large_elsewhere_is_not_opened() {
    let s = Site::start();
    let b = &s.b;
    let (_, token, content) = editing(&s);
    b.click("#close");
    b.wait_for("#editor[hidden]");
    // Grown past what the page opens since the list was read.
    let (status, _, _) = crate::common::server::raw(
        "PUT",
        &format!("{content}&base_version=1"),
        Some(&token),
        Some(("application/octet-stream", vec![b'x'; 6 << 20])),
    );
    assert_eq!(status, 200);
    b.click("#files li[data-path='a.txt'] button");
    wait_text(
        b,
        "#files-notice",
        "a.txt is 6.0 MiB: too large to open here; download it instead.",
    );
    assert_eq!(b.count("#editor[hidden]"), 1);
    s.assert_clean("a file grown too large", &[]);
}

/// Asks the assistant `question` from the editor's panel and waits for the whole answer.
fn ask(b: &Browser, question: &str) {
    b.wait_for("#ask:not([hidden])");
    b.clear("#question");
    b.type_into("#question", question);
    b.type_into("#question", Key::Control + Key::Enter);
    wait_text(b, "#ask-state", "Done.");
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn the_assistant_answers_in_the_editor_and_a_suggestion_is_one_undoable_edit() {
    let api = crate::common::openai::Server::start(true);
    let s = Site::with_assistant(&api, "code");
    let b = &s.b;
    let (name, _, content) = editing(&s);
    b.wait_for("#ask:not([hidden])");
    assert_eq!(b.text("#assistant-model"), "Answers come from code.");
    assert_eq!(b.count("#assistant-off:not([hidden])"), 0);
    // The question and the open file go to the model; the answer streams in as text, its
    // code blocks each with an Apply button.
    ask(b, "Make it return 42");
    let sent = api.requests().pop().expect("a request to the API");
    let asked = sent.body["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        asked.starts_with("The file a.txt:\n```\nfirst\n```"),
        "{asked}"
    );
    assert!(asked.ends_with("Make it return 42"), "{asked}");
    assert_eq!(sent.authorization.as_deref(), Some("Bearer sk-test"));
    let code =
        b.eval("return [...document.querySelectorAll('#answer pre')].map(p => p.textContent)");
    assert_eq!(
        code,
        json!(["fn fixed() -> u32 {\n    42\n}", "fn other() {}"])
    );
    assert!(
        b.text("#answer").contains("Use this:"),
        "{}",
        b.text("#answer")
    );
    assert_eq!(b.count("#answer button.apply:not([disabled])"), 2);
    b.screenshot("assistant-answer");
    // Apply: the whole text replaced (its last line still ended), highlighting redrawn.
    b.click("#answer button.apply");
    let applied = "fn fixed() -> u32 {\n    42\n}\n";
    wait_value(b, "#text", applied);
    wait_until(
        b,
        "return document.getElementById('shade').textContent",
        &format!("{applied}\n"),
    );
    // One edit: Ctrl-Z brings the old text back. Applied to a text changed since, a
    // suggestion replaces nothing; applied again to the text it was about, it does.
    b.type_into("#text", Key::Control + "z");
    wait_value(b, "#text", "first\n");
    b.type_into("#text", Key::Control + Key::End);
    b.type_into("#text", "more\n");
    b.click("#answer button.apply");
    wait_text(
        b,
        "#ask-error",
        "The text changed since the question (undo with Ctrl-Z, or ask again): nothing was replaced.",
    );
    assert_eq!(b.value("#text"), "first\nmore\n");
    b.clear("#text");
    b.type_into("#text", "first\n");
    b.click("#answer button.apply");
    wait_value(b, "#text", applied);
    assert_eq!(b.text("#ask-error"), "");
    // And it saves as any edit does.
    b.type_into("#text", Key::Control + "s");
    wait_text(b, "#editor-state", "version 2 · saved");
    assert_eq!(held(&s.server.url, &name, &content), applied);
    // With text selected, the selection alone is sent, and Apply replaces it alone.
    b.eval("const t = document.getElementById('text'); t.focus(); t.setSelectionRange(24, 26); return null");
    ask(b, "Better?");
    let asked = api.requests().pop().unwrap().body["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        asked.starts_with("The part of a.txt selected:\n```\n42\n```"),
        "{asked}"
    );
    assert_eq!(b.text("#answer button.apply"), "Apply to the selection");
    b.click("#answer .suggestion:last-of-type button.apply");
    wait_value(b, "#text", "fn fixed() -> u32 {\n    fn other() {}\n}\n");
    b.type_into("#text", Key::Control + "z");
    wait_value(b, "#text", applied);
    s.assert_clean("the assistant", &[]);
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn the_assistant_panel_says_how_to_turn_it_on() {
    let s = Site::start();
    let b = &s.b;
    editing(&s);
    b.wait_for("#assistant-off:not([hidden])");
    let said = b.text("#assistant-off");
    assert!(
        said.contains("--assistant-url") && said.contains("VALYXO_ASSISTANT_KEY"),
        "{said}"
    );
    assert_eq!(b.count("#ask:not([hidden])"), 0);
    b.screenshot("assistant-off");
    s.assert_clean("no assistant", &[]);
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn the_models_markup_shows_as_text_and_an_answer_can_be_stopped() {
    let api = crate::common::openai::Server::start(true);
    let s = Site::with_assistant(&api, "hostile");
    let b = &s.b;
    editing(&s);
    ask(b, "Anything");
    let text = b.text("#answer");
    assert!(
        text.contains("<img src=x onerror=\"window.hacked=1\"> <b>bold</b>"),
        "{text}"
    );
    assert_eq!(
        b.eval("return document.querySelector('#answer pre').textContent"),
        json!("<script>window.hacked=2</script>\n<img src=y onerror=\"window.hacked=3\">")
    );
    assert_eq!(b.count("#answer img, #answer script, #answer b"), 0);
    assert_eq!(b.eval("return String(window.hacked)"), json!("undefined"));
    s.assert_clean("hostile answer", &[]);
    drop(s);
    // An answer that stalls midway is stopped with Stop, and the panel is ready again.
    let s = Site::with_assistant(&api, "stall");
    let b = &s.b;
    editing(&s);
    b.wait_for("#ask:not([hidden])");
    b.type_into("#question", "Hello");
    b.click("#ask-send");
    wait_until(
        b,
        "return document.getElementById('answer').textContent",
        "You said: ",
    );
    b.wait_for("#ask-stop:not([hidden])");
    b.click("#ask-stop");
    wait_text(b, "#ask-state", "Stopped.");
    assert_eq!(b.count("#ask-stop:not([hidden])"), 0);
    assert_eq!(b.attr("#ask-send", "disabled"), None);
    s.assert_clean("a stopped answer", &[]);
}

/// Waits until `probe` gives `want` (the page updates after its requests answer), saying
/// what `what` showed instead when it never does.
fn wait_for(what: &str, want: &str, mut probe: impl FnMut() -> String) {
    let deadline = std::time::Instant::now() + crate::common::browser::WAIT;
    loop {
        let got = probe();
        if got == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} shows {got:?}, not {want:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn folders_upload_download_rename_and_delete_as_a_whole() {
    let s = Site::start();
    let b = &s.b;
    let url = &s.server.url;
    let (name, token, _) = user(url);
    let p = s.project(&token, "folders");
    // A hostile folder name, made elsewhere: shown as text.
    let hostile = "<img src=x onerror=alert(1)>";
    let at = format!("{hostile}/a.txt");
    assert_eq!(put_file(url, &token, p, &at, b"a", 0), 200);
    // A folder on disk with a folder in it, chosen with "Upload a folder…".
    let disk = s.dir.path().join("site");
    std::fs::create_dir_all(disk.join("css")).unwrap();
    std::fs::write(disk.join("index.html"), "<h1>hi</h1>\n").unwrap();
    std::fs::write(disk.join("css/main.css"), "body {}\n").unwrap();
    s.log_in(&name, PASSWORD);
    s.goto(&format!("/project?id={p}"));
    b.wait_for("#main:not([hidden])");
    b.eval("document.getElementById('upload-folder').hidden = false; return null");
    b.type_into("#upload-folder", disk.to_str().unwrap());
    b.wait_for("#files li[data-path='site/index.html']");
    wait_text(b, "#files-notice", "Uploaded 2 files.");
    // The tree: each folder's row before its files, names as text.
    let rows = b.eval(
        "return [...document.querySelectorAll('#files li')].map(li => \
         li.dataset.folder !== undefined ? li.dataset.folder + '/' : li.dataset.path)",
    );
    assert_eq!(
        rows,
        json!([
            format!("{hostile}/"),
            format!("{hostile}/a.txt"),
            "site/",
            "site/css/",
            "site/css/main.css",
            "site/index.html"
        ])
    );
    assert_eq!(b.text("#files li.folder strong"), format!("{hostile}/"));
    assert_eq!(b.count("#files img"), 0);
    b.screenshot("folders");
    // The folder's .zip link gives its archive.
    b.eval(
        "window.got = null; \
         fetch(document.querySelector(\"#files li[data-folder='site'] a\").href).then(async r => { \
           const bytes = new Uint8Array(await r.arrayBuffer()); \
           window.got = [r.status, r.headers.get('content-type'), String.fromCharCode(bytes[0], bytes[1])].join(' '); \
         }); return null",
    );
    wait_until(b, "return window.got", "200 application/zip PK");
    // Renaming the folder moves every file under it.
    b.click("#files li[data-folder='site'] button");
    b.raw(|d| d.send_alert_text("web")).expect("a prompt");
    b.raw(|d| d.accept_alert()).expect("a prompt");
    b.wait_for("#files li[data-path='web/css/main.css']");
    wait_text(
        b,
        "#files-notice",
        "Renamed the folder site to web (2 files).",
    );
    assert_eq!(b.count("#files li[data-path^='site/']"), 0);
    // Deleting a folder asks once, then every file under it goes.
    b.click("#files li[data-folder='web/css'] button.danger");
    let asked = b.raw(|d| d.get_alert_text());
    assert!(
        asked
            .as_deref()
            .is_ok_and(|t| t.contains("web/css and its 1 file")),
        "{asked:?}"
    );
    b.raw(|d| d.accept_alert()).expect("a confirmation");
    wait_text(b, "#files-notice", "Deleted the folder web/css (1 file).");
    assert_eq!(b.count("#files li[data-folder='web/css']"), 0);
    // The server has what the page shows.
    let listed = call(
        url,
        "GET",
        &format!("/api/projects/{p}/files"),
        Some(&token),
        None,
    );
    let live: Vec<&str> = listed.body["data"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["deleted"] == false)
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        live,
        [format!("{hostile}/a.txt").as_str(), "web/index.html"]
    );
    s.assert_clean("folders", &[]);
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn a_script_saved_elsewhere_meanwhile_is_a_conflict_never_overwritten() {
    let s = Site::start();
    let b = &s.b;
    let url = &s.server.url;
    let (token, id) = editing_script(&s);
    let elsewhere = |content: &str| {
        let r = call(
            url,
            "PUT",
            &format!("/api/scripts/{id}"),
            Some(&token),
            Some(json!({"name": "job", "content": content})),
        );
        assert_eq!(r.status, 200, "{}", r.body);
    };
    let held = || {
        call(
            url,
            "GET",
            &format!("/api/scripts/{id}"),
            Some(&token),
            None,
        )
        .body["data"]["content"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // Another tab saves it meanwhile; this one's save is refused and shown.
    elsewhere("from elsewhere");
    b.type_into("#script-text", " + 1");
    wait_text(b, "#script-state", "unsaved changes");
    let mine = b.value("#script-text");
    b.type_into("#script-text", Key::Control + "s");
    b.wait_for("#script-conflict:not([hidden])");
    assert!(
        b.text("#script-state").contains("saved elsewhere"),
        "{}",
        b.text("#script-state")
    );
    assert_eq!(held(), "from elsewhere");
    // Closing with unsaved text asks first; dismissed, the text stays.
    b.click("#script-close");
    let asked = b.raw(|d| d.get_alert_text());
    assert!(
        asked.as_deref().is_ok_and(|t| t.contains("Discard")),
        "{asked:?}"
    );
    b.raw(|d| d.dismiss_alert()).expect("a confirmation");
    assert_eq!(b.value("#script-text"), mine);
    // A save made elsewhere after the conflict was shown is not overwritten unseen: saving
    // mine over theirs is a conflict again, and then replaces the version it shows.
    elsewhere("a third save");
    b.eval("document.getElementById('script-state').textContent = ''; return null");
    b.click("#script-keep-mine");
    wait_for("the conflict again", "true", || {
        b.text("#script-state")
            .contains("saved elsewhere")
            .to_string()
    });
    assert_eq!(held(), "a third save");
    b.click("#script-keep-mine");
    wait_text(b, "#script-state", "saved");
    assert_eq!(held(), mine);
    assert_eq!(b.count("#script-conflict[hidden]"), 1);
    // Saved elsewhere again: this time theirs is loaded.
    elsewhere("theirs");
    b.type_into("#script-text", " + 2");
    b.type_into("#script-text", Key::Control + "s");
    b.wait_for("#script-conflict:not([hidden])");
    b.click("#script-take-theirs");
    wait_value(b, "#script-text", "theirs");
    assert_eq!(b.count("#script-conflict[hidden]"), 1);
    s.assert_clean("a script's conflict", &[409]);
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn the_editor_indents_keeps_indentation_and_undoes_each_edit_at_once() {
    let s = Site::start();
    let b = &s.b;
    editing(&s);
    b.clear("#text");
    b.type_into("#text", "if x {");
    b.type_into("#text", Key::Enter);
    b.type_into("#text", Key::Tab);
    b.type_into("#text", "y");
    // Enter keeps the line's indentation; a closing bracket first on a line goes back.
    b.type_into("#text", Key::Enter);
    assert_eq!(b.value("#text"), "if x {\n    y\n    ");
    b.type_into("#text", "}");
    assert_eq!(b.value("#text"), "if x {\n    y\n}");
    b.type_into("#text", Key::Control + "z");
    // Each of those edits is one step of the browser's undo.
    b.type_into("#text", Key::Control + "z");
    assert_eq!(b.value("#text"), "if x {\n    y");
    // Tab over a selection of several lines indents each; Shift-Tab outdents; each at once
    // undone.
    b.type_into("#text", Key::Control + "a");
    b.type_into("#text", Key::Tab);
    assert_eq!(b.value("#text"), "    if x {\n        y");
    b.type_into("#text", Key::Control + "z");
    assert_eq!(b.value("#text"), "if x {\n    y");
    b.type_into("#text", Key::Control + "a");
    b.type_into("#text", Key::Shift + Key::Tab);
    assert_eq!(b.value("#text"), "if x {\ny");
    // The lines are numbered beside the text, and the numbers scroll with it.
    assert_eq!(
        b.eval("return document.getElementById('lines').textContent"),
        "1\n2\n\n"
    );
    b.eval(
        "const t = document.getElementById('text'); \
         t.value = Array.from({length: 300}, (_, i) => 'line ' + i).join('\\n'); \
         t.dispatchEvent(new Event('input')); t.scrollTop = 2000; \
         t.dispatchEvent(new Event('scroll')); return null",
    );
    wait_until(
        b,
        "const l = document.getElementById('lines'), t = document.getElementById('text'); \
         return l.textContent.split('\\n').length + ' ' + (l.scrollTop === t.scrollTop && t.scrollTop > 0)",
        "302 true",
    );
    b.type_into("#text", Key::Control + "z");
    // The edits count as typing: the page knows the text is unsaved, and Ctrl-S saves it.
    b.type_into("#text", Key::Control + "s");
    wait_text(b, "#editor-state", "version 2 · saved");
    s.assert_clean("editing keys", &[]);
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn the_editor_finds_text_from_the_keyboard() {
    let s = Site::start();
    let b = &s.b;
    editing(&s);
    b.clear("#text");
    b.type_into("#text", "alpha\nbeta Alpha\ngamma alpha");
    b.type_into("#text", Key::Control + Key::Home);
    // Ctrl-F opens the find bar; Enter selects the first match, case ignored, and goes
    // back to the text.
    b.type_into("#text", Key::Control + "f");
    assert_eq!(b.eval("return document.activeElement.id"), "find-text");
    b.press("alpha");
    b.press(Key::Enter);
    let selection = "const t = document.getElementById('text'); \
                     return document.activeElement.id + ' ' + t.selectionStart + '-' + t.selectionEnd";
    assert_eq!(b.eval(selection), "text 0-5");
    assert_eq!(
        b.text("#find-state"),
        "Match 1 of 3 (F3: next, Shift-F3: the one before)."
    );
    // F3 finds the next, Shift-F3 the one before; past the end it starts again.
    b.press(Key::F3);
    assert_eq!(b.eval(selection), "text 11-16");
    b.press(Key::F3);
    assert_eq!(b.eval(selection), "text 23-28");
    b.press(Key::F3);
    assert_eq!(b.eval(selection), "text 0-5");
    assert!(b.text("#find-state").contains("from the start again"));
    b.press(Key::Shift + Key::F3);
    assert_eq!(b.eval(selection), "text 23-28");
    // A capital letter makes case count; nothing found is said.
    b.type_into("#text", Key::Control + "f");
    b.press("Alpha");
    b.press(Key::Enter);
    assert_eq!(b.eval(selection), "text 11-16");
    b.type_into("#text", Key::Control + "f");
    b.press("delta");
    b.press(Key::Enter);
    assert_eq!(b.text("#find-state"), "“delta” is not in the text.");
    // Esc closes the bar and goes back to the text, which finding did not change.
    b.press(Key::Escape);
    assert_eq!(b.count("#find[hidden]"), 1);
    assert_eq!(b.eval("return document.activeElement.id"), "text");
    assert_eq!(b.value("#text"), "alpha\nbeta Alpha\ngamma alpha");
    s.assert_clean("finding", &[]);
}

/// A signed-in browser on a project's page with its script `job` ("1") open in the script
/// editor: a bearer token of the account, and the script's id.
fn editing_script(s: &Site) -> (String, i64) {
    let url = &s.server.url;
    let (name, token, _) = user(url);
    let p = s.project(&token, "scripts");
    let r = call(
        url,
        "POST",
        &format!("/api/scripts/project/{p}"),
        Some(&token),
        Some(json!({"name": "job", "content": "1", "language": "rhai"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    s.log_in(&name, PASSWORD);
    s.goto(&format!("/project?id={p}"));
    s.b.wait_for("#scripts li button");
    s.b.click("#scripts li button");
    wait_value(&s.b, "#script-text", "1");
    (token, r.body["data"]["id"].as_i64().unwrap())
}

/// Waits until `selector`'s text is `want`.
fn wait_text(b: &Browser, selector: &str, want: &str) {
    wait_for(selector, want, || {
        if b.count(selector) > 0 {
            b.text(selector)
        } else {
            String::new()
        }
    });
}

/// Waits until the field `selector` holds `want`.
fn wait_value(b: &Browser, selector: &str, want: &str) {
    wait_for(selector, want, || b.value(selector));
}

/// Waits until `script` returns `want`.
fn wait_until(b: &Browser, script: &str, want: &str) {
    wait_for(script, want, || match b.eval(script) {
        serde_json::Value::String(s) => s,
        v => v.to_string(),
    });
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn a_script_saved_twice_at_once_is_no_conflict_with_itself() {
    let s = Site::start();
    let b = &s.b;
    let url = &s.server.url;
    let (token, id) = editing_script(&s);
    // Two saves at once (Save clicked twice, text typed between): the second is based on
    // the first's version, not refused as a conflict with this tab's own save.
    b.eval(
        "const t = document.getElementById('script-text'); t.value += ' + 1'; \
         document.getElementById('script-save').click(); t.value += ' + 2'; \
         document.getElementById('script-save').click(); return null",
    );
    wait_text(b, "#script-state", "saved");
    let held = call(
        url,
        "GET",
        &format!("/api/scripts/{id}"),
        Some(&token),
        None,
    );
    assert_eq!(held.body["data"]["content"], "1 + 1 + 2");
    assert_eq!(b.count("#script-conflict[hidden]"), 1);
    s.assert_clean("two script saves at once", &[]);
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn an_upload_over_files_past_the_first_page_asks_and_replaces_them() {
    let s = Site::start();
    let b = &s.b;
    let url = &s.server.url;
    let (name, token, _) = user(url);
    let p = s.project(&token, "big");
    // More files than one page of the listing (500): site/index.html is past it.
    for i in 0..501 {
        let path = if i == 500 {
            "site/index.html".to_string()
        } else {
            format!("a/{i:03}.txt")
        };
        assert_eq!(put_file(url, &token, p, &path, b"old", 0), 200, "{path}");
    }
    let disk = s.dir.path().join("site");
    std::fs::create_dir_all(&disk).unwrap();
    std::fs::write(disk.join("index.html"), "new").unwrap();
    s.log_in(&name, PASSWORD);
    s.goto(&format!("/project?id={p}"));
    b.wait_for("#main:not([hidden])");
    b.eval("document.getElementById('upload-folder').hidden = false; return null");
    b.type_into("#upload-folder", disk.to_str().unwrap());
    // It exists: the page asks before replacing it, then replaces it.
    wait_for("a confirmation", "true", || {
        b.raw(|d| d.get_alert_text()).is_ok().to_string()
    });
    let asked = b.raw(|d| d.get_alert_text()).unwrap_or_default();
    assert!(asked.contains("site/index.html exists"), "{asked}");
    b.raw(|d| d.accept_alert()).expect("a confirmation");
    wait_text(b, "#files-notice", "Uploaded site/index.html.");
    assert_eq!(b.text("#upload-error"), "");
    let (status, body, _) = crate::common::server::raw(
        "GET",
        &format!("{url}/api/projects/{p}/files/content?path=site/index.html"),
        Some(&token),
        None,
    );
    assert_eq!((status, body), (200, b"new".to_vec()));
    s.assert_clean("an upload past the first page", &[]);
    // Renaming a file of the first page onto one past it asks too; dismissed, nothing moves.
    b.reload();
    b.wait_for("#files li[data-path='a/000.txt'] button");
    b.click("#files li[data-path='a/000.txt'] button:nth-of-type(2)");
    b.raw(|d| d.send_alert_text("site/index.html"))
        .expect("a prompt");
    b.raw(|d| d.accept_alert()).expect("a prompt");
    wait_for("a confirmation", "true", || {
        b.raw(|d| d.get_alert_text()).is_ok().to_string()
    });
    let asked = b.raw(|d| d.get_alert_text()).unwrap_or_default();
    assert!(asked.contains("site/index.html exists"), "{asked}");
    b.raw(|d| d.dismiss_alert()).expect("a confirmation");
    let (_, body, _) = crate::common::server::raw(
        "GET",
        &format!("{url}/api/projects/{p}/files/content?path=site/index.html"),
        Some(&token),
        None,
    );
    assert_eq!(body, b"new".to_vec());
    s.assert_clean("a rename onto a file past the first page", &[]);
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn their_version_of_a_file_past_the_first_page_saves_without_a_false_conflict() {
    let s = Site::start();
    let b = &s.b;
    let url = &s.server.url;
    let (name, token, _) = user(url);
    let p = s.project(&token, "big");
    // More files than one page of the listing (500): z.txt is past it.
    let put = |path: &str, data: &[u8], base: i64| {
        assert_eq!(put_file(url, &token, p, path, data, base), 200, "{path}");
    };
    for i in 0..500 {
        put(&format!("a/{i:03}.txt"), b"a", 0);
    }
    put("z.txt", b"one\n", 0);
    s.log_in(&name, PASSWORD);
    s.goto(&format!("/project?id={p}"));
    b.wait_for("#main:not([hidden])");
    b.click("#more");
    b.wait_for("#files li[data-path='z.txt'] button");
    b.click("#files li[data-path='z.txt'] button");
    wait_value(b, "#text", "one\n");
    // Saved elsewhere meanwhile: this save is a conflict, and their version is loaded.
    put("z.txt", b"two\n", 1);
    b.type_into("#text", "mine\n");
    b.type_into("#text", Key::Control + "s");
    b.wait_for("#conflict:not([hidden])");
    b.click("#take-theirs");
    wait_value(b, "#text", "two\n");
    // Edited and saved: based on their version, no conflict.
    b.type_into("#text", "three\n");
    b.type_into("#text", Key::Control + "s");
    wait_text(b, "#editor-state", "version 3 · saved");
    assert_eq!(b.count("#files li[data-path='z.txt']"), 1);
    s.assert_clean("their version past the first page", &[409]);
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn finding_past_a_letter_whose_lower_case_is_longer_selects_the_match() {
    let s = Site::start();
    let b = &s.b;
    editing(&s);
    // "İ" lower-cased is two characters ("i̇"): the matches after it stay where they are.
    b.eval(
        "const t = document.getElementById('text'); t.value = 'İstanbul alpha\\nİİ Alpha'; \
         t.setSelectionRange(0, 0); t.focus(); return null",
    );
    b.type_into("#text", Key::Control + "f");
    b.press("alpha");
    b.press(Key::Enter);
    let selected = "const t = document.getElementById('text'); \
                    return t.selectionStart + '-' + t.selectionEnd + ' ' + \
                    t.value.slice(t.selectionStart, t.selectionEnd)";
    assert_eq!(b.eval(selected), "9-14 alpha");
    b.press(Key::F3);
    assert_eq!(b.eval(selected), "18-23 Alpha");
    s.assert_clean("finding past İ", &[]);
}

#[test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
fn a_folder_rename_cut_short_still_has_the_open_file_follow_what_moved() {
    let s = Site::start();
    let b = &s.b;
    let url = &s.server.url;
    let (name, token, _) = user(url);
    let p = s.project(&token, "many");
    // More files than one commit of a folder's rename moves (2000).
    for i in 0..2001 {
        let path = format!("d/{i:04}.txt");
        assert_eq!(put_file(url, &token, p, &path, b"old\n", 0), 200);
    }
    s.log_in(&name, PASSWORD);
    s.goto(&format!("/project?id={p}"));
    b.wait_for("#files li[data-path='d/0000.txt'] button");
    b.click("#files li[data-path='d/0000.txt'] button");
    wait_value(b, "#text", "old\n");
    b.type_into("#text", "mine\n");
    // The second commit of the rename does not reach the server; the first moved the open
    // file.
    b.eval(
        "const real = window.fetch; let commits = 0; \
         window.fetch = (u, o) => (String(u).endsWith('/files/commit') && ++commits === 2) \
           ? Promise.reject(new TypeError('offline')) : real(u, o); return null",
    );
    b.click("#files li[data-folder='d'] button");
    b.raw(|d| d.send_alert_text("e")).expect("a prompt");
    b.raw(|d| d.accept_alert()).expect("a prompt");
    b.wait_for("#files li[data-folder='d'] .error:not(:empty)");
    wait_text(b, "#editor-title", "e/0000.txt");
    assert_eq!(b.value("#text"), "old\nmine\n");
    b.type_into("#text", Key::Control + "s");
    wait_text(b, "#editor-state", "version 2 · saved");
    let (status, body, _) = crate::common::server::raw(
        "GET",
        &format!("{url}/api/projects/{p}/files/content?path=e/0000.txt"),
        Some(&token),
        None,
    );
    assert_eq!((status, body), (200, b"old\nmine\n".to_vec()));
    s.assert_clean("a folder rename cut short", &[]);
}
