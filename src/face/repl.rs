//! The interactive shell (face): rustyline with completion (commands, flags, VFS paths), fish-style
//! suggestions from the shared history, highlighting as you type, and continuation lines.

use crate::commands::registry;
use crate::history::{self, HintIndex};
use crate::hub::Hub;
use crate::shell::io::Io;
use crate::shell::parse::{self, Class};
use crate::shell::Session;
use crate::signals;
use crate::store::now_ms;
use crate::vfs::{normalize, Kind, VPath};
use anyhow::Result;
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::history::{History, MemHistory};
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{CompletionType, Config, Context, Editor, Helper};
use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::Instant;

const MAX_HISTORY: usize = 100_000;

pub struct ShellHelper {
    hub: Arc<Hub>,
    cwd: Mutex<VPath>,
    pub hints: Mutex<HintIndex>,
    /// Colour is possible at all (a terminal, no NO_COLOR or --no-color); the `color`
    /// setting is read each time, so changing it takes effect at once.
    color: bool,
    /// The prompt being shown: (plain, coloured).
    prompt: Mutex<(String, String)>,
}

impl ShellHelper {
    pub fn new(hub: Arc<Hub>, cwd: VPath, color: bool) -> Self {
        ShellHelper {
            hub,
            cwd: Mutex::new(cwd),
            hints: Mutex::new(HintIndex::default()),
            color,
            prompt: Mutex::new((String::new(), String::new())),
        }
    }

    fn colored(&self) -> bool {
        self.color && self.hub.color_for(true)
    }

    fn cwd(&self) -> VPath {
        self.cwd.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn is_command(&self, word: &str) -> bool {
        registry().get(word).is_some()
            || (word.len() > 1 && word.starts_with('!'))
            || self.hub.alias(word).is_some()
            || crate::plugins::command(&self.hub, word).is_some()
    }

    /// The words that may follow `words` (a command and its arguments so far), when they are
    /// a known set rather than paths.
    fn values_for(&self, words: &[&str]) -> Option<Vec<String>> {
        let spec = registry().get(words.first()?)?;
        let themes = || {
            crate::theme::available(&self.hub.themes_dir())
                .into_iter()
                .map(|(n, _)| n)
                .collect()
        };
        let mut v: Vec<String> = match (spec.name, words.get(1).copied(), words.len()) {
            ("man", _, 1) => crate::manual::pages()
                .iter()
                .map(|(n, _)| n.to_string())
                .collect(),
            ("theme", Some("set" | "preview" | "show"), 2) => themes(),
            ("settings", Some("get" | "set" | "reset"), 2) => crate::settings::SETTINGS
                .iter()
                .map(|s| s.key.to_string())
                .collect(),
            ("settings", Some("set"), 3) if words[2] == "theme" => themes(),
            ("ask" | "chat", _, n) if matches!(words[n - 1], "-p" | "--persona") => {
                crate::assistant::PERSONAS
                    .iter()
                    .map(|p| p.name.to_string())
                    .collect()
            }
            ("ai", Some("key"), 2) => vec!["set".into(), "remove".into()],
            // The template, the first word that is not an option (with --from, that word is
            // the new project's name).
            ("new", _, n)
                if words[1..n].iter().all(|w| w.starts_with('-'))
                    && !words.iter().any(|w| w.starts_with("--from")) =>
            {
                crate::templates::all(&self.hub)
                    .ok()?
                    .iter()
                    .map(|t| t.name().to_string())
                    .collect()
            }
            // The projects here (the server is not asked while typing).
            ("sync", _, n) => {
                let root = crate::vfs::VPath::parse_absolute(crate::sync::PROJECTS).ok()?;
                let mut v: Vec<String> = self
                    .hub
                    .vfs
                    .read_dir(&root)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|e| e.meta.kind == crate::vfs::Kind::Dir)
                    .map(|e| e.name)
                    .collect();
                if n == 1 {
                    v.push("status".into());
                }
                v
            }
            ("settings", Some("set"), 3) => {
                let choices = crate::settings::find(words[2])?.choices;
                if choices.is_empty() {
                    // Free-form values (such as a start directory) complete as paths.
                    return None;
                }
                choices.iter().map(|c| c.to_string()).collect()
            }
            (_, _, 1) => {
                let subs: Vec<String> = spec
                    .command()
                    .get_subcommands()
                    .map(|c| c.get_name().to_string())
                    .collect();
                if subs.is_empty() {
                    return None;
                }
                subs
            }
            _ => return None,
        };
        v.sort();
        v.dedup();
        Some(v)
    }

    /// Candidates for the word that ends at `pos`: (start of the word, candidates).
    pub fn complete_at(&self, line: &str, pos: usize) -> (usize, Vec<Pair>) {
        let before = &line[..pos];
        let start = word_start(before);
        let word = &before[start..];
        // The command this word belongs to, and whether the word is in command position.
        let classes = parse::classify(before);
        let seg_start = classes
            .iter()
            .filter(|(s, c)| {
                *c == Class::Operator
                    && s.end <= start
                    && !before[s.start..s.end].contains('>')
                    && !before[s.start..s.end].contains('<')
            })
            .map(|(s, _)| s.end)
            .max()
            .unwrap_or(0);
        let seg = before[seg_start..start].trim();
        let mut out = Vec::new();
        if seg.is_empty() {
            let mut names: Vec<String> =
                registry().names().into_iter().map(str::to_string).collect();
            names.extend(self.hub.aliases().into_keys());
            names.extend(
                crate::plugins::commands(&self.hub)
                    .into_iter()
                    .map(|c| c.name),
            );
            names.sort();
            names.dedup();
            for n in names.into_iter().filter(|n| n.starts_with(word)) {
                out.push(Pair {
                    display: n.clone(),
                    replacement: format!("{n} "),
                });
            }
            return (start, out);
        }
        if word.starts_with('-') {
            let cmd_name = seg.split_whitespace().next().unwrap_or("");
            if let Some(spec) = registry().get(cmd_name) {
                let cmd = spec.command();
                let mut flags: Vec<String> = Vec::new();
                for a in cmd.get_arguments() {
                    if let Some(l) = a.get_long() {
                        flags.push(format!("--{l}"));
                    }
                    if let Some(s) = a.get_short() {
                        flags.push(format!("-{s}"));
                    }
                }
                flags.sort();
                flags.dedup();
                for f in flags.into_iter().filter(|f| f.starts_with(word)) {
                    out.push(Pair {
                        display: f.clone(),
                        replacement: format!("{f} "),
                    });
                }
            }
            return (start, out);
        }
        // Subcommands, theme names, setting keys and manual pages where they are expected.
        let words: Vec<&str> = seg.split_whitespace().collect();
        if let Some(values) = self.values_for(&words) {
            for v in values.into_iter().filter(|v| v.starts_with(word)) {
                out.push(Pair {
                    display: v.clone(),
                    replacement: format!("{v} "),
                });
            }
            return (start, out);
        }
        // A VFS path: list the directory part and match the last name.
        let unescaped = unescape(word);
        let (dir_part, prefix) = match unescaped.rfind('/') {
            Some(i) => (&unescaped[..=i], &unescaped[i + 1..]),
            None => ("", unescaped.as_str()),
        };
        let cwd = self.cwd();
        let dir = if dir_part.is_empty() {
            Ok(cwd)
        } else {
            normalize(&cwd, dir_part)
        };
        if let Ok(dir) = dir {
            if let Ok(entries) = self.hub.vfs.read_dir(&dir) {
                for e in entries {
                    if !e.name.starts_with(prefix)
                        || (e.name.starts_with('.') && !prefix.starts_with('.'))
                    {
                        continue;
                    }
                    let is_dir = e.meta.kind == Kind::Dir;
                    // A name with control characters goes in as `$'…'`, never raw.
                    let shown = crate::text::escape(&e.name);
                    let full = match shown {
                        std::borrow::Cow::Borrowed(n) => escape_word(&format!("{dir_part}{n}")),
                        std::borrow::Cow::Owned(ref q) => format!("{}{q}", escape_word(dir_part)),
                    };
                    out.push(Pair {
                        display: if is_dir {
                            format!("{shown}/")
                        } else {
                            shown.to_string()
                        },
                        replacement: if is_dir {
                            format!("{full}/")
                        } else {
                            format!("{full} ")
                        },
                    });
                }
            }
        }
        (start, out)
    }

    /// The line with ANSI colours from the theme's `highlight.*` styles: known and unknown
    /// commands, strings, variables, operators and comments.
    pub fn colorize(&self, line: &str) -> String {
        let theme = self.hub.theme();
        let mut out = String::with_capacity(line.len() * 2);
        let mut pos = 0;
        for (range, key) in crate::highlight::shell_parts(line, |w| self.is_command(w)) {
            let code = theme.style(key).ansi();
            if code.is_empty() {
                continue;
            }
            out.push_str(&line[pos..range.start]);
            out.push_str(&code);
            out.push_str(&line[range.clone()]);
            out.push_str("\x1b[0m");
            pos = range.end;
        }
        out.push_str(&line[pos..]);
        out
    }
}

/// Whether a file name cannot hold `c` bare in a shell word: what ends a word for the shell's
/// lexer, quotes, escapes, variables, wildcards and comments (a backslash takes each
/// literally). `~` is left alone: it only counts at the start, where the user typed it.
fn special(c: char) -> bool {
    parse::is_meta(c) || "'\"\\$*?[]#{}`!()".contains(c)
}

/// Where the word that ends `before` starts: after the last separator no backslash escapes.
fn word_start(before: &str) -> usize {
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in before.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if parse::is_meta(c) {
            start = i + c.len_utf8();
        }
    }
    start
}

/// A word as typed, its backslash escapes taken away.
fn unescape(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// A name made into a shell word that can still be extended (so no closing quote): each
/// special character behind a backslash.
fn escape_word(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if special(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Completer for ShellHelper {
    type Candidate = Pair;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        Ok(self.complete_at(line, pos))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
    fn hint(&self, line: &str, pos: usize, _: &Context<'_>) -> Option<String> {
        if pos < line.len() || !self.hub.settings().repl.hints {
            return None;
        }
        self.hints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .hint(line)
            .map(str::to_string)
    }
}

impl Highlighter for ShellHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        if !self.colored() || !self.hub.settings().repl.highlight {
            return Cow::Borrowed(line);
        }
        Cow::Owned(self.colorize(line))
    }
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        default: bool,
    ) -> Cow<'b, str> {
        if !self.colored() || !default {
            return Cow::Borrowed(prompt);
        }
        let shown = self.prompt.lock().unwrap_or_else(|e| e.into_inner());
        if shown.0 == prompt {
            Cow::Owned(shown.1.clone())
        } else {
            Cow::Borrowed(prompt)
        }
    }
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        if self.colored() {
            Cow::Owned(self.hub.theme().style("highlight.hint").paint(true, hint))
        } else {
            Cow::Borrowed(hint)
        }
    }
    fn highlight_char(&self, _line: &str, _pos: usize, _kind: CmdKind) -> bool {
        self.colored()
    }
}

impl Validator for ShellHelper {
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        match parse::parse(ctx.input()) {
            Err(e) if e.incomplete => Ok(ValidationResult::Incomplete),
            _ => Ok(ValidationResult::Valid(None)),
        }
    }
}

impl Helper for ShellHelper {}

/// Background jobs live in this process: leaving the shell stops them (and says so).
fn stop_jobs(hub: &Hub) {
    let n = hub.jobs.live_ids().len();
    if n > 0 {
        eprintln!("valyxo: stopping {n} background job(s)");
        crate::jobs::kill_all(hub);
    }
}

/// The prompt as (plain, coloured): the theme's format (or the `prompt.format` setting)
/// filled in for this session.
pub fn prompt(sh: &Session) -> (String, String) {
    let hub = &sh.hub;
    let format = hub.settings().prompt.format.clone();
    let cwd = sh.cwd().display_tilde();
    let info = crate::theme::PromptInfo {
        cwd: &cwd,
        status: sh.last_status,
        jobs: hub.jobs.live_ids().len(),
    };
    hub.theme()
        .prompt((!format.is_empty()).then_some(format.as_str()), &info)
}

/// Keeps output that did not end with a new line from being drawn over by the prompt, as zsh
/// and fish do: a mark and a terminal width of spaces are printed, then a carriage return
/// and a line clear. At the start of a line the spaces fill it and the clear removes the mark;
/// after unfinished output they wrap to a new line and the mark stays, showing where the
/// output ended.
fn keep_unfinished_line(color: bool) {
    use std::io::{IsTerminal, Write};
    let mut out = std::io::stdout();
    if !out.is_terminal() {
        return;
    }
    let cols = crossterm::terminal::size().map_or(80, |(c, _)| c.max(2)) as usize;
    let mark = if color { "\x1b[7m%\x1b[0m" } else { "%" };
    let _ = write!(out, "{mark}{}\r\x1b[K", " ".repeat(cols - 1));
    let _ = out.flush();
}

/// Runs the interactive shell until `exit` or end of input; returns the exit status.
pub fn run(hub: Arc<Hub>) -> Result<i32> {
    signals::install()?;
    let mut sh = Session::new(hub.clone(), true)?;
    let color = !hub.no_color;
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        .max_history_size(MAX_HISTORY)?
        .history_ignore_dups(true)?
        .build();
    let mut rl: Editor<ShellHelper, MemHistory> =
        Editor::with_history(config.clone(), MemHistory::with_config(&config))?;
    rl.set_helper(Some(ShellHelper::new(hub.clone(), sh.cwd().clone(), color)));
    let mut io = Io::terminal();
    // Programs' checkouts that a valyxo which ended left behind are offered at start.
    let mut warned_of_jobs = false;
    let left = crate::vfs::checkout::pending(&hub.home);
    if !left.is_empty() {
        eprintln!(
            "valyxo: {} checkout{} of 'exec' {} left behind when valyxo stopped before \
             writing {} back:",
            left.len(),
            if left.len() == 1 { "" } else { "s" },
            if left.len() == 1 { "was" } else { "were" },
            if left.len() == 1 { "it" } else { "them" }
        );
        for c in &left {
            eprintln!("  {}", c.describe());
        }
        eprintln!(
            "'exec --write-back [NAME]' brings the changes in; 'exec --discard [NAME]' deletes it."
        );
    }
    loop {
        // Merge lines recorded by this and other sessions since the last prompt.
        if let Some(h) = rl.helper() {
            let added = h
                .hints
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .refresh(&hub.store)
                .unwrap_or_default();
            for cmd in added {
                let _ = rl.history_mut().add(&cmd);
            }
        }
        if let Some(h) = rl.helper() {
            *h.cwd.lock().unwrap_or_else(|e| e.into_inner()) = sh.cwd().clone();
        }
        for job in crate::jobs::take_finished(&hub) {
            eprintln!("{}", crate::jobs::describe(&job));
        }
        signals::reset();
        // Another session (or an editor) may have changed config.toml or the theme.
        hub.reload_config();
        hub.reload_theme();
        let (plain, colored) = prompt(&sh);
        if let Some(h) = rl.helper() {
            *h.prompt.lock().unwrap_or_else(|e| e.into_inner()) = (plain.clone(), colored);
        }
        keep_unfinished_line(color);
        match rl.readline(&plain) {
            Ok(line) => {
                warned_of_jobs = false;
                if line.trim().is_empty() {
                    continue;
                }
                let started = now_ms();
                let t = Instant::now();
                let cwd = sh.cwd().to_string();
                let status = sh.run(&line, &mut io);
                if signals::interrupted() {
                    eprintln!();
                }
                let record = !(line.starts_with(' ') && hub.settings().history.ignore_space);
                if record {
                    if let Err(e) = history::record(
                        &hub.store,
                        &line,
                        &cwd,
                        status,
                        t.elapsed().as_millis() as i64,
                        started,
                        &hub.session_id,
                    ) {
                        eprintln!("valyxo: cannot save history: {e:#}");
                    }
                }
                // Space the line freed (a large `rm -r`) goes back to the file system.
                let _ = crate::store::care::reclaim(&hub.store);
                if let Some(code) = sh.exit {
                    stop_jobs(&hub);
                    return Ok(code);
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => {
                // Running jobs would be stopped: say so once, as bash does; a second Ctrl-D
                // in a row leaves.
                let live = hub.jobs.live_ids().len();
                if live > 0 && !warned_of_jobs {
                    warned_of_jobs = true;
                    eprintln!(
                        "valyxo: {live} job{} still running ('jobs' lists them); Ctrl-D again \
                         stops {} and leaves",
                        if live == 1 { " is" } else { "s are" },
                        if live == 1 { "it" } else { "them" }
                    );
                    continue;
                }
                stop_jobs(&hub);
                return Ok(sh.last_status);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::parse::{parse, Part};

    #[test]
    fn escaped_names_parse_back_and_words_start_after_the_last_bare_separator() {
        for name in [
            "my file",
            "it's",
            "a$b",
            "*x?",
            "semi;colon",
            "back\\slash",
            "#hash",
            "ok",
        ] {
            let word = escape_word(name);
            assert_eq!(word_start(&format!("cat {word}")), 4, "{word}");
            assert_eq!(unescape(&word), name);
            let script = parse(&format!("echo {word}")).expect("parses");
            let words = &script.items[0].and_or.first.commands[0].words;
            assert_eq!(words.len(), 2, "{word}");
            let text: String = words[1]
                .parts
                .iter()
                .map(|p| match p {
                    Part::Lit { text, .. } => text.as_str(),
                    other => panic!("{word}: {other:?}"),
                })
                .collect();
            assert_eq!(text, name, "{word}");
        }
        assert_eq!(word_start("ls a | cat my\\ fi"), 11);
    }
}
