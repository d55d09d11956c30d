//! Commands are data (engine): each is one [`Spec`] in the registry — name, aliases, group,
//! summary, clap argument definition, examples and handler. `help`, completion, manual synopses and
//! tests all read this registry.

mod account;
mod assistant;
pub mod doctor;
mod edit;
mod env;
mod files;
mod grep;
mod manual;
mod new;
mod scripts;
mod snippets;
mod system;
mod text;
mod theme;
mod transfer;

use crate::hub::Hub;
use crate::shell::io::Io;
use crate::shell::Session;
use crate::vfs::{VPath, Vfs};
use clap::ArgMatches;
use std::collections::HashMap;
use std::sync::OnceLock;

pub(crate) use files::fmt_time;
pub use scripts::host as scripts_host;

pub type Handler = fn(&mut Ctx, &ArgMatches) -> anyhow::Result<i32>;

pub struct Spec {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub group: Group,
    pub summary: &'static str,
    /// The argument definition (name, about and footer are filled in by [`Spec::command`]).
    pub args: fn() -> clap::Command,
    /// Examples, run in order in one fresh home by the tests, each line's standard output
    /// compared with what it declares; `help NAME` and `NAME --help` show them.
    pub examples: &'static [Example],
    pub run: Handler,
    /// Rewrites arguments before clap sees them (for `find -name` style options).
    pub rewrite: Option<fn(Vec<String>) -> Vec<String>>,
    /// Whether the command may read or write the state store or the working directory. A
    /// line of commands that do not (`true`, `echo`, `alias`…) runs without opening the
    /// store (`valyxo -c true`).
    pub needs_store: bool,
}

/// One example of a command: a line as typed at the prompt, and what it shows.
#[derive(Clone, Copy, Debug)]
pub struct Example {
    pub line: &'static str,
    pub shows: Shows,
}

/// What an example line writes on standard output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shows {
    /// Exactly this text; the line succeeds.
    Text(&'static str),
    /// Something that depends on the time, the host or the process; the line succeeds.
    Varies,
    /// Not run in a fresh home alone: the line needs more. The tests that provide it (an
    /// account server, an assistant) run the line and check that it succeeds.
    Needs(Need),
}

/// What an example line needs besides a fresh home.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// A terminal (the editor, the chat prompt).
    Terminal,
    /// The account server of setting sync.server, with the account `ada` (password typed).
    AccountServer,
    /// The server the line itself names (an example host).
    NamedServer,
    /// An assistant at setting assistant.url.
    Assistant,
    /// A terminal and an assistant.
    TerminalAndAssistant,
}

impl Need {
    pub fn what(self) -> &'static str {
        match self {
            Need::Terminal => "a terminal",
            Need::AccountServer => "an account server",
            Need::NamedServer => "the server it names",
            Need::Assistant => "an assistant (an API key, or a local server such as Ollama)",
            Need::TerminalAndAssistant => "a terminal and an assistant",
        }
    }
}

/// An example line that prints exactly `out` (`""`: nothing).
pub const fn ex(line: &'static str, out: &'static str) -> Example {
    Example {
        line,
        shows: Shows::Text(out),
    }
}

/// An example line whose output depends on the time or the host; only its success is checked.
pub const fn varies(line: &'static str) -> Example {
    Example {
        line,
        shows: Shows::Varies,
    }
}

/// An example line that needs more than a fresh home (a terminal, a server).
pub const fn needs(line: &'static str, what: Need) -> Example {
    Example {
        line,
        shows: Shows::Needs(what),
    }
}

/// The examples as help shows them: each line, and below it (indented) what it prints when
/// that is short and fixed.
pub fn examples_text(examples: &[Example]) -> String {
    /// Longer output is cut to this many lines.
    const SHOWN_LINES: usize = 4;
    let mut out = String::from("Examples:\n");
    for e in examples {
        out.push_str("  ");
        out.push_str(e.line);
        out.push('\n');
        if let Shows::Text(text) = e.shows {
            let lines: Vec<&str> = text.lines().collect();
            for l in lines.iter().take(SHOWN_LINES) {
                out.push_str("      ");
                // Output holding escapes (`clear`) is shown quoted, never sent raw.
                if l.chars().any(|c| c != '\t' && crate::text::is_unsafe(c)) {
                    out.push_str(&crate::text::escape(l));
                } else {
                    out.push_str(l);
                }
                out.push('\n');
            }
            if lines.len() > SHOWN_LINES {
                out.push_str("      …\n");
            }
        }
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    Files,
    Text,
    Shell,
    Mounts,
    Scripts,
    Account,
    System,
}

impl Group {
    pub fn title(self) -> &'static str {
        match self {
            Group::Files => "Files and directories",
            Group::Text => "Text",
            Group::Shell => "Shell and environment",
            Group::Mounts => "Mounts and host transfer",
            Group::Scripts => "Scripts, plugins and jobs",
            Group::Account => "Account and sync",
            Group::System => "Hub",
        }
    }
    pub const ALL: [Group; 7] = [
        Group::Files,
        Group::Text,
        Group::Shell,
        Group::Mounts,
        Group::Scripts,
        Group::Account,
        Group::System,
    ];
}

impl Spec {
    /// The full clap command: `--help` prints the synopsis and the examples, and points at
    /// the manual.
    pub fn command(&self) -> clap::Command {
        let mut c = (self.args)()
            .name(self.name)
            .about(self.summary)
            .disable_version_flag(true)
            .after_help(format!(
                "{}\nSee 'man {}' for details and more examples.",
                examples_text(self.examples),
                self.name
            ));
        if !self.aliases.is_empty() {
            c = c.visible_aliases(self.aliases.iter().copied());
        }
        c
    }
}

pub struct Registry {
    specs: Vec<Spec>,
    index: HashMap<&'static str, usize>,
}

impl Registry {
    fn new() -> Registry {
        let mut specs = Vec::new();
        specs.extend(files::specs());
        specs.extend(text::specs());
        specs.extend(grep::specs());
        specs.extend(manual::specs());
        specs.extend(env::specs());
        specs.extend(transfer::specs());
        specs.extend(system::specs());
        specs.extend(doctor::specs());
        specs.extend(scripts::specs());
        specs.extend(theme::specs());
        specs.extend(edit::specs());
        specs.extend(assistant::specs());
        specs.extend(account::specs());
        specs.extend(new::specs());
        specs.extend(snippets::specs());
        specs.sort_by_key(|s| s.name);
        let mut index = HashMap::new();
        for (i, s) in specs.iter().enumerate() {
            assert!(
                index.insert(s.name, i).is_none(),
                "duplicate command {}",
                s.name
            );
            for a in s.aliases {
                assert!(index.insert(*a, i).is_none(), "duplicate command alias {a}");
            }
        }
        Registry { specs, index }
    }

    pub fn get(&self, name: &str) -> Option<&Spec> {
        self.index.get(name).map(|&i| &self.specs[i])
    }

    pub fn all(&self) -> &[Spec] {
        &self.specs
    }

    /// Every name a command can be called by (names and aliases), sorted.
    pub fn names(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = self.index.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// Close matches for an unknown command name, best first.
    pub fn suggest(&self, name: &str, extra: &[String]) -> Vec<String> {
        crate::text::suggest(
            name,
            self.names()
                .into_iter()
                .chain(extra.iter().map(String::as_str)),
        )
    }
}

/// The full-screen views that commands open. The editor and the pager sit above the
/// commands (they are faces, which use the commands), so the face that runs commands on a
/// terminal hands them in at start ([`set_views`]) instead of the commands importing them.
pub trait Views: Send + Sync {
    /// Runs the editor on `files` until the user quits.
    fn edit(
        &self,
        hub: std::sync::Arc<Hub>,
        cwd: VPath,
        files: &[VPath],
        line: Option<usize>,
        color: bool,
    ) -> anyhow::Result<()>;
    /// Shows `lines` in the pager, styled by `theme` (or in plain attributes without colour).
    fn page(
        &self,
        title: &str,
        lines: Vec<ratatui::text::Line<'static>>,
        theme: &crate::theme::Theme,
        color: bool,
    ) -> anyhow::Result<()>;
}

static VIEWS: OnceLock<Box<dyn Views>> = OnceLock::new();

/// Hands the commands their full-screen views (once per process; later calls are ignored).
pub fn set_views(views: Box<dyn Views>) {
    let _ = VIEWS.set(views);
}

/// The full-screen views, or an error in a program that has none.
pub fn views() -> anyhow::Result<&'static dyn Views> {
    VIEWS
        .get()
        .map(Box::as_ref)
        .ok_or_else(|| anyhow::anyhow!("this program has no full-screen views"))
}

pub fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(Registry::new)
}

/// What a command handler works with: the session and its streams.
pub struct Ctx<'a> {
    pub sh: &'a mut Session,
    pub io: &'a mut Io,
    pub name: &'static str,
}

impl Ctx<'_> {
    pub fn hub(&self) -> &Hub {
        &self.sh.hub
    }
    pub fn vfs(&self) -> &Vfs {
        &self.sh.hub.vfs
    }
    /// Resolves a path argument against the working directory.
    pub fn path(&self, arg: &str) -> anyhow::Result<VPath> {
        self.sh.resolve(arg)
    }
    /// Whether the command talks with a person at the terminal: both standard input and
    /// standard output are the terminal (not a pipe, a file or a background job).
    pub fn on_terminal(&self) -> bool {
        use std::io::IsTerminal;
        matches!(
            self.io.stdin,
            crate::shell::io::Input::Terminal | crate::shell::io::Input::Stdin
        ) && std::io::stdin().is_terminal()
            && self.io.stdout.is_tty()
    }

    /// Whether to colour standard output.
    pub fn color(&self) -> bool {
        self.sh.hub.color_for(self.io.stdout.is_tty())
    }
    /// How to colour standard output: the theme's styles when [`Ctx::color`] says so.
    pub fn paint(&self) -> Paint {
        Paint::new(self.color(), || self.sh.hub.theme())
    }
    /// Writes `NAME: msg` to standard error (for per-item errors that do not stop the
    /// command), escaped and cut as [`crate::text::clean_message`] does: a message may carry
    /// a name from outside.
    pub fn warn(&mut self, msg: impl std::fmt::Display) {
        use std::io::Write;
        let msg = crate::text::clean_message(&msg.to_string(), crate::text::MESSAGE_MAX);
        let _ = writeln!(self.io.stderr, "{}: {msg}", self.name);
    }
    /// Stops with `Interrupted` once Ctrl-C was pressed.
    pub fn check_cancel(&self) -> anyhow::Result<()> {
        crate::signals::check().map_err(Into::into)
    }
}

/// Waits until a line typed at the terminal can be read from standard input, or stops with
/// `Interrupted` once Ctrl-C is pressed. A read that waited for the line itself would go on
/// after Ctrl-C, and the answer typed next would still be taken.
pub fn wait_for_line() -> anyhow::Result<()> {
    loop {
        crate::signals::check()?;
        let mut fd = libc::pollfd {
            fd: libc::STDIN_FILENO,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for standard input, waited on for at most 100 ms.
        let ready = unsafe { libc::poll(&mut fd, 1, 100) };
        let again = ready == 0
            || (ready < 0
                && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted);
        if !again {
            return Ok(());
        }
    }
}

/// Strings of a multi-valued positional argument.
pub fn strings(m: &ArgMatches, id: &str) -> Vec<String> {
    m.get_many::<String>(id)
        .map(|v| v.cloned().collect())
        .unwrap_or_default()
}

/// How a command colours what it writes: with the theme's styles (`ls.dir`, `grep.match`, …)
/// when colour is on for the stream, as plain text when it is off (`--no-color`, `NO_COLOR`,
/// the `color` setting, a stream that is not a terminal).
#[derive(Clone)]
pub struct Paint {
    theme: Option<std::sync::Arc<crate::theme::Theme>>,
}

impl Paint {
    /// Paints with `theme`'s styles when `on`.
    pub fn new(on: bool, theme: impl FnOnce() -> std::sync::Arc<crate::theme::Theme>) -> Paint {
        Paint {
            theme: on.then(theme),
        }
    }

    /// Whether colour is on.
    pub fn on(&self) -> bool {
        self.theme.is_some()
    }

    /// The theme's style `key` (one of `theme::STYLES`) when colour is on; plain when off.
    pub fn style(&self, key: &str) -> crate::theme::Style {
        debug_assert!(
            crate::theme::STYLES.iter().any(|(k, _)| *k == key),
            "no style named {key}"
        );
        self.theme
            .as_ref()
            .map_or_else(Default::default, |t| t.style(key))
    }

    /// `text` in the style `key`, as it is when colour is off or the style is plain.
    pub fn paint(&self, key: &str, text: &str) -> String {
        self.style(key).paint(self.on(), text)
    }
}

#[cfg(test)]
mod tests;
