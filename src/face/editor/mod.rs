//! The full-screen editor (face): several buffers over VFS files, syntax highlighting that works
//! only from the edited line on and only as far as the screen shows, undo and redo, search
//! and replace, go-to-line, the mouse, questions before anything unsaved is lost, atomic
//! saves into the VFS and recovery copies in the store.
//!
//! [`Editor`] is a plain state machine: it takes [`Event`]s and draws into a ratatui
//! [`Frame`], so everything but the terminal set-up is tested on ratatui's `TestBackend`.

pub mod buffer;
pub mod indent;
pub mod pane;
pub mod search;
pub mod snippet;

use crate::highlight::Highlighter;
use crate::hub::Hub;
use crate::keymap::{Command, Keymap};
use crate::recovery;
use crate::theme::{Style as ThemeStyle, Theme};
use crate::vfs::VPath;
use crate::view::line::{self, LineInput};
use crate::view::{Flow, View};
use anyhow::{bail, Context, Result};
use buffer::{cluster_width, Buffer, EditKind, LONG_LINE};
use ratatui::crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEventKind,
};
use ratatui::layout::{Position, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;
use search::Query;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Files larger than this are refused: the editor holds the whole text in memory.
pub const MAX_FILE: u64 = 64 << 20;
/// A recovery copy is written once the text has been left alone this long,
const RECOVERY_IDLE: Duration = Duration::from_millis(800);
/// and at least this often while typing goes on.
const RECOVERY_EVERY: Duration = Duration::from_secs(2);
/// Buffers up to this size (bytes) are searched as you type at once; bigger ones on a
/// thread of their own.
const SEARCH_AT_ONCE: usize = 1 << 20;
/// How often the current buffer's file is looked at for changes made by other programs.
const DISK_CHECK_EVERY: Duration = Duration::from_secs(2);
/// Rows the mouse wheel scrolls.
const WHEEL: usize = 3;
/// Text copied is also sent to the terminal's clipboard up to this size (terminals and
/// multiplexers limit what one escape sequence may carry).
const MAX_SYSTEM_COPY: usize = 100 * 1024;

/// Editor options, from the settings.
#[derive(Clone, Copy)]
pub struct Options {
    pub tab_width: usize,
    /// Tab inserts spaces.
    pub soft_tabs: bool,
    pub color: bool,
    /// Copies also go to the system clipboard through the terminal (OSC 52).
    pub system_clipboard: bool,
    /// Brackets and quotes are typed in pairs.
    pub auto_pairs: bool,
}

impl Options {
    /// The indentation the settings ask for, where a file says nothing of its own.
    pub fn indent(&self) -> indent::Style {
        indent::Style {
            tabs: !self.soft_tabs,
            size: self.tab_width,
            tab_width: self.tab_width,
        }
    }

    pub fn from_hub(hub: &Hub, color: bool) -> Options {
        let s = &hub.settings().editor;
        Options {
            tab_width: s.tab_width.clamp(1, 16),
            soft_tabs: s.soft_tabs,
            color,
            system_clipboard: s.system_clipboard,
            auto_pairs: s.auto_pairs,
        }
    }
}

/// The editor's styles: from the theme, or plain attributes without colour.
struct Styles {
    text: ThemeStyle,
    line_number: Style,
    current_line: Style,
    selection: Style,
    status: Style,
    search_match: Style,
}

impl Styles {
    fn new(theme: &Theme, color: bool) -> Styles {
        if !color {
            let reverse = Style::default().add_modifier(Modifier::REVERSED);
            return Styles {
                text: ThemeStyle::default(),
                line_number: Style::default(),
                current_line: Style::default(),
                selection: reverse,
                status: reverse,
                search_match: Style::default().add_modifier(Modifier::UNDERLINED),
            };
        }
        Styles {
            text: theme.style("editor.text"),
            line_number: theme.style("editor.line_number").to_ratatui(),
            current_line: theme.style("editor.current_line").to_ratatui(),
            selection: theme.style("editor.selection").to_ratatui(),
            status: theme.style("editor.status").to_ratatui(),
            search_match: theme.style("editor.match").to_ratatui(),
        }
    }
}

/// What a one-line prompt asks for.
#[derive(Clone, Debug, PartialEq)]
enum Ask {
    Find,
    Replace,
    ReplaceWith(Query),
    GoTo,
    Open,
    SaveAs,
    /// The prefix to save an answer's code block under, as a snippet of a language.
    SnippetPrefix {
        lang: &'static str,
        code: String,
    },
}

impl Ask {
    /// The prompt's label; `regex` says how find and replace read what is typed.
    fn label(&self, regex: bool) -> String {
        let how = if regex {
            "regex; Alt-R: text"
        } else {
            "Alt-R: regex"
        };
        match self {
            Ask::Find => format!("Find ({how})"),
            Ask::Replace => format!("Replace ({how})"),
            Ask::ReplaceWith(f) if f.is_regex() => format!(
                "Replace /{}/ with ($1: a group)",
                crate::text::escape(f.as_str())
            ),
            Ask::ReplaceWith(f) => format!("Replace '{}' with", crate::text::escape(f.as_str())),
            Ask::GoTo => "Go to line".into(),
            Ask::Open => "Open".into(),
            Ask::SaveAs => "Save as".into(),
            Ask::SnippetPrefix { lang, .. } => {
                format!("Save the code block as a {lang} snippet with the prefix")
            }
        }
    }
}

/// A question answered with one key.
enum Question {
    /// The current buffer has unsaved changes: save, discard or cancel.
    SaveChanges,
    /// The file changed on disk since it was read: overwrite or cancel.
    Overwrite,
    /// Reading the file again would drop unsaved changes: reload or cancel.
    Reload,
    /// The file is read-only: write it anyway, or cancel.
    ReadOnly,
    /// The file changed on disk while it has unsaved changes here: reload or keep.
    ChangedOnDisk,
    /// A recovery copy of the current buffer exists: restore, discard or keep.
    Recover(recovery::Copy),
    /// Replace this match? yes, no, all, quit.
    ReplaceEach {
        find: Query,
        with: String,
        done: usize,
    },
}

enum Mode {
    Normal,
    Help,
    Prompt { ask: Ask, input: LineInput },
    Question(Question),
}

/// A find-as-you-type search running on its own thread; dropping it stops the search.
struct Searching {
    rx: std::sync::mpsc::Receiver<Option<(std::ops::Range<usize>, bool)>>,
    cancel: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for Searching {
    fn drop(&mut self) {
        self.cancel
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// What to do once the current buffer is saved (or its changes discarded).
#[derive(Clone, Copy, PartialEq, Debug)]
enum After {
    Nothing,
    Close,
    Quit,
}

pub struct Editor {
    hub: Arc<Hub>,
    cwd: VPath,
    pub buffers: Vec<Buffer>,
    pub current: usize,
    theme: Arc<Theme>,
    styles: Styles,
    opts: Options,
    clipboard: String,
    mode: Mode,
    /// A message for the bottom line, and whether it is an error.
    message: Option<(String, bool)>,
    /// What each key does.
    keymap: Keymap,
    /// The last search.
    query: Query,
    /// Searches read the query as a regular expression (Alt-R in find and replace).
    regex: bool,
    /// The find-as-you-type search running in the background, if any.
    searching: Option<Searching>,
    /// Where the cursor, selection and view were when find started, for Esc.
    find_origin: Option<(usize, Option<usize>, usize, usize)>,
    after: After,
    pub quit: bool,
    /// Recovery copies waiting to be offered: (buffer path, copy).
    offers: Vec<recovery::Copy>,
    /// Where the text was drawn last, for the mouse and page sizes.
    text_area: Rect,
    gutter: u16,
    /// Scroll so the cursor is visible at the next draw.
    follow: bool,
    last_edit: Instant,
    /// When recovery copies were last written.
    last_copy: Instant,
    /// When the current buffer's file was last looked at on disk.
    last_disk_check: Instant,
    /// The user said to write a read-only file.
    readonly_ok: bool,
    /// The copies to write if the terminal goes away while this thread cannot act.
    pending: recovery::Pending,
    /// The assistant pane, once opened, and whether keys go to it.
    pane: Option<pane::Pane>,
    pane_focus: bool,
    /// A Save-as waiting on a question: the buffer's name and file hash before it.
    renamed: Option<(Option<VPath>, Option<blake3::Hash>)>,
    /// Text copied since the last draw, for the system clipboard.
    copied: Option<String>,
    /// The user's snippets, read again when their files change.
    snippets: crate::snippets::Library,
    /// The snippet being filled in, if any.
    snippet: Option<snippet::Session>,
}

/// Reads a VFS file into a buffer, refusing what the editor cannot hold: directories, fifos
/// (and sockets and devices) of a mount, files over [`MAX_FILE`], binary files and text that
/// is not UTF-8. A missing file is a new, empty buffer that saving creates.
pub fn load(hub: &Hub, path: &VPath, theme: &Theme) -> Result<Buffer> {
    let vfs = &hub.vfs;
    let meta = vfs.stat(path).ok();
    let bytes = match vfs.stat(path) {
        Ok(meta) if meta.kind == crate::vfs::Kind::Dir => bail!("{path} is a directory"),
        // Reading a fifo waits for a writer, for ever: it is refused like a directory.
        Ok(meta) if meta.kind == crate::vfs::Kind::Special => {
            bail!("{path} is a fifo, socket or device; the editor opens files only")
        }
        Ok(meta) if meta.size > MAX_FILE => bail!(
            "{path} is too large to edit ({} MiB; the limit is {} MiB)",
            meta.size >> 20,
            MAX_FILE >> 20
        ),
        Ok(_) => {
            let bytes = vfs
                .read(path)
                .with_context(|| format!("cannot read {path}"))?;
            // The store's pages read for it are not kept mapped beside the buffer's copy.
            crate::store::release_map(&vfs.store().conn());
            Some(bytes)
        }
        Err(crate::vfs::VfsError::NotFound(_)) => None,
        Err(e) => return Err(e).with_context(|| format!("cannot open {path}")),
    };
    let name = path.name().unwrap_or("");
    let settings = Options::from_hub(hub, false).indent();
    let Some(bytes) = bytes else {
        let mut b = Buffer::new(
            "",
            Some(path.clone()),
            Highlighter::for_file(name, "", theme),
        );
        let config = indent::editorconfig(vfs, path);
        b.indent = indent::decide(&config, None, b.highlighter.language(), settings);
        return Ok(b);
    };
    if bytes.len() > MAX_FILE as usize {
        bail!(
            "{path} is too large to edit (the limit is {} MiB)",
            MAX_FILE >> 20
        );
    }
    if memchr::memchr(0, &bytes[..bytes.len().min(8192)]).is_some() {
        bail!("{path} looks like a binary file (it holds NUL bytes); the editor opens text only");
    }
    let text = match std::str::from_utf8(&bytes) {
        Ok(t) => t,
        Err(e) => bail!(
            "{path} is not UTF-8 text (invalid byte at offset {}); the editor opens UTF-8 text only",
            e.valid_up_to()
        ),
    };
    // A byte order mark is no part of the first line or the indentation (the buffer keeps
    // it out of the text and writes it again when saving).
    let body = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let first = body.lines().next().unwrap_or("");
    let mut b = Buffer::new(
        text,
        Some(path.clone()),
        Highlighter::for_file(name, first, theme),
    );
    b.disk_hash = Some(blake3::hash(&bytes));
    b.disk_stamp = meta.as_ref().map(|m| (m.mtime_ms, m.size));
    b.readonly = meta.is_some_and(|m| m.readonly);
    let config = indent::editorconfig(vfs, path);
    b.indent = indent::decide(
        &config,
        indent::detect(body.lines()),
        b.highlighter.language(),
        settings,
    );
    Ok(b)
}

/// Whether a key event carries Control (and not Alt, so AltGr characters still type).
fn ctrl(k: &KeyEvent) -> bool {
    k.modifiers.contains(KeyModifiers::CONTROL) && !k.modifiers.contains(KeyModifiers::ALT)
}

fn shift(k: &KeyEvent) -> bool {
    k.modifiers.contains(KeyModifiers::SHIFT)
}

fn alt(k: &KeyEvent) -> bool {
    k.modifiers.contains(KeyModifiers::ALT) && !k.modifiers.contains(KeyModifiers::CONTROL)
}

impl Editor {
    /// An editor over `files` (each already loaded), or over one new buffer when empty.
    pub fn new(hub: Arc<Hub>, cwd: VPath, files: Vec<Buffer>, opts: Options) -> Editor {
        let theme = hub.theme();
        let styles = Styles::new(&theme, opts.color);
        let mut buffers = files;
        if buffers.is_empty() {
            let mut b = Buffer::new("", None, Highlighter::for_lang("text", &theme));
            b.indent = opts.indent();
            buffers.push(b);
        }
        let mut ed = Editor {
            hub,
            cwd,
            buffers,
            current: 0,
            theme,
            styles,
            opts,
            clipboard: String::new(),
            mode: Mode::Normal,
            message: None,
            keymap: Keymap::new("default", &[]).0,
            query: Query::Empty,
            regex: false,
            searching: None,
            find_origin: None,
            after: After::Nothing,
            quit: false,
            offers: Vec::new(),
            text_area: Rect::default(),
            gutter: 0,
            follow: true,
            last_edit: Instant::now(),
            last_copy: Instant::now(),
            last_disk_check: Instant::now(),
            readonly_ok: false,
            pending: recovery::Pending::default(),
            pane: None,
            pane_focus: false,
            renamed: None,
            copied: None,
            snippets: crate::snippets::Library::default(),
            snippet: None,
        };
        let mut buffers = std::mem::take(&mut ed.buffers);
        for b in &mut buffers {
            let offers = ed.recovery_for(b);
            ed.offers.extend(offers);
        }
        ed.buffers = buffers;
        // `edit` with no file: the text of a new buffer an editor left behind is offered.
        if ed.buffers.len() == 1 && ed.buffers[0].path.is_none() {
            if let Ok(copies) = recovery::scratch(ed.hub.vfs.store()) {
                if let Some(copy) = copies.into_iter().rfind(|c| !c.writer_is_running()) {
                    ed.offers.push(copy);
                }
            }
        }
        if let Some(b) = ed.buffers.iter().find(|b| b.copy_blocked) {
            ed.say(format!(
                "Another valyxo is editing {}: this one keeps no recovery copy of it",
                b.name()
            ));
        }
        let (keymap, problems) = Keymap::new(
            ed.hub.settings().editor.keymap.as_str(),
            &ed.hub.settings_under(crate::settings::KEY_BINDINGS),
        );
        ed.keymap = keymap;
        if let Some(p) = problems.first() {
            ed.error(format!("config.toml: {p} (left out)"));
        }
        ed.next_offer();
        ed
    }

    fn buf(&mut self) -> &mut Buffer {
        &mut self.buffers[self.current]
    }

    fn store(&self) -> &crate::store::Store {
        self.hub.vfs.store()
    }

    /// The recovery copy to offer for a buffer: one that exists and differs from the file.
    /// A copy that holds just what the file holds is dropped; one another running editor
    /// keeps is left alone, and this buffer writes none.
    /// Copies kept for later are offered too, after it.
    fn recovery_for(&self, b: &mut Buffer) -> Vec<recovery::Copy> {
        let Some(path) = b.path.as_ref().map(ToString::to_string) else {
            return Vec::new();
        };
        let mut offers = recovery::kept(self.store(), &path).unwrap_or_default();
        offers.reverse();
        if let Ok(Some(copy)) = recovery::get(self.store(), &path) {
            if copy.writer_is_running() {
                b.copy_blocked = true;
            } else if copy.text == b.copy_text() {
                let _ = recovery::remove(self.store(), &path);
            } else {
                offers.push(copy);
            }
        }
        offers
    }

    /// Asks about the next waiting recovery copy, switching to its buffer.
    fn next_offer(&mut self) {
        if !matches!(self.mode, Mode::Normal) {
            return;
        }
        if let Some(copy) = self.offers.pop() {
            let scratch = copy.path.starts_with(buffer::SCRATCH);
            let kept = recovery::kept_path(&copy.path);
            if let Some(i) = self.buffers.iter().position(|b| {
                b.copy_key() == copy.path
                    || (scratch && b.path.is_none())
                    || (kept.is_some()
                        && kept == b.path.as_ref().map(ToString::to_string).as_deref())
            }) {
                self.current = i;
                self.mode = Mode::Question(Question::Recover(copy));
            }
        }
    }

    pub fn message(&self) -> Option<&str> {
        self.message.as_ref().map(|(m, _)| m.as_str())
    }

    fn say(&mut self, msg: impl Into<String>) {
        self.message = Some((msg.into(), false));
    }

    fn error(&mut self, msg: impl Into<String>) {
        self.message = Some((msg.into(), true));
    }

    /// Opens a file (or switches to it if it is open).
    pub fn open(&mut self, arg: &str) {
        let path = match crate::vfs::path::normalize(&self.cwd, arg) {
            Ok(p) => p,
            Err(e) => return self.error(format!("'{arg}': {e}")),
        };
        if let Some(i) = self
            .buffers
            .iter()
            .position(|b| b.path.as_ref() == Some(&path))
        {
            self.current = i;
            self.follow = true;
            return;
        }
        match load(&self.hub, &path, &self.theme) {
            Ok(mut b) => {
                let new = b.disk_hash.is_none();
                let offer = self.recovery_for(&mut b);
                if b.copy_blocked {
                    self.say(format!(
                        "Another valyxo is editing {path}: this one keeps no recovery copy of it"
                    ));
                }
                self.buffers.push(b);
                self.current = self.buffers.len() - 1;
                self.follow = true;
                if new {
                    self.say(format!("{path}: new file"));
                }
                if !offer.is_empty() {
                    self.offers.extend(offer);
                    self.next_offer();
                }
            }
            Err(e) => self.error(format!("{e:#}")),
        }
    }

    // ----- saving -----

    /// Saves the current buffer, asking for a name or about changes on disk first if
    /// need be; then does what `self.after` says.
    /// Returns false when writing failed.
    fn save(&mut self, force: bool) -> bool {
        let Some(path) = self.buf().path.clone() else {
            self.ask(Ask::SaveAs, String::new());
            return true;
        };
        let vfs = &self.hub.vfs;
        if self.buffers[self.current].readonly && !self.readonly_ok {
            self.mode = Mode::Question(Question::ReadOnly);
            return true;
        }
        if !force {
            let on_disk = vfs.content_hash(&path).ok();
            if on_disk.is_some() && on_disk != self.buffers[self.current].disk_hash {
                self.mode = Mode::Question(Question::Overwrite);
                return true;
            }
        }
        let text = self.buffers[self.current].contents();
        match vfs.write(&path, text.as_bytes()) {
            Ok(()) => {
                let stamp = vfs.stat(&path).ok().map(|m| (m.mtime_ms, m.size));
                let b = &mut self.buffers[self.current];
                b.disk_hash = Some(blake3::hash(text.as_bytes()));
                b.disk_stamp = stamp;
                b.mark_saved();
                let blocked = b.copy_blocked;
                let scratch = b.scratch_key().to_string();
                if !blocked {
                    let _ = recovery::remove(self.store(), &path.to_string());
                }
                // The copy it had while it had no name.
                let _ = recovery::remove(self.store(), &scratch);
                // Saved under a new name: the copy kept under the old one is done with.
                if let Some((Some(old), _)) = self.renamed.take() {
                    if !blocked {
                        let _ = recovery::remove(self.store(), &old.to_string());
                    }
                }
                let lines = self.buffers[self.current].line_count();
                self.say(format!(
                    "Saved {path} ({lines} lines, {} bytes)",
                    text.len()
                ));
                self.after_done();
                true
            }
            Err(e) => {
                // The error names the path already, most of the time.
                let e = e.to_string();
                let shown = path.to_string();
                self.error(if e.contains(&shown) {
                    format!("cannot save: {e}")
                } else {
                    format!("cannot save {}: {e}", crate::text::escape(&shown))
                });
                self.after = After::Nothing;
                false
            }
        }
    }

    /// The current buffer is saved or its changes were discarded: close it or go on
    /// quitting, as asked.
    fn after_done(&mut self) {
        match std::mem::replace(&mut self.after, After::Nothing) {
            After::Nothing => {}
            After::Close => self.close_current(),
            After::Quit => self.continue_quit(),
        }
    }

    fn close_current(&mut self) {
        let b = self.buffers.remove(self.current);
        // A copy written before an undo back to the saved text is no longer needed.
        if !b.modified() && !b.copy_blocked && b.needs_recovery_copy() {
            let _ = recovery::remove(self.store(), &b.copy_key());
        }
        if self.buffers.is_empty() {
            self.quit = true;
            return;
        }
        self.current = self.current.min(self.buffers.len() - 1);
        self.follow = true;
    }

    /// Asks to close the current buffer.
    fn close(&mut self) {
        if self.buf().modified() {
            self.after = After::Close;
            self.mode = Mode::Question(Question::SaveChanges);
        } else {
            self.close_current();
        }
    }

    /// Quits once every modified buffer is saved or discarded, asking about each.
    fn continue_quit(&mut self) {
        match self.buffers.iter().position(Buffer::modified) {
            Some(i) => {
                self.current = i;
                self.follow = true;
                self.after = After::Quit;
                self.mode = Mode::Question(Question::SaveChanges);
            }
            None => self.quit = true,
        }
    }

    /// Drops the current buffer's changes (and its recovery copy) for a close or quit.
    fn discard_current(&mut self) {
        if !self.buf().copy_blocked {
            let key = self.buf().copy_key();
            let _ = recovery::remove(self.store(), &key);
        }
        match std::mem::replace(&mut self.after, After::Nothing) {
            After::Quit => {
                self.close_current();
                if !self.quit {
                    self.continue_quit();
                }
            }
            _ => self.close_current(),
        }
    }

    // ----- recovery copies -----

    /// Writes recovery copies of buffers changed since their last copy, once the text has
    /// been left alone a moment or at least every [`RECOVERY_EVERY`] while typing goes on
    /// (or at once with `now`), and drops copies of buffers that are back to their saved
    /// text. A big buffer's copy gets only the edits since the last one added to it.
    pub fn keep_recovery_copies(&mut self, now: bool) {
        let due = now
            || self.last_edit.elapsed() >= RECOVERY_IDLE
            || self.last_copy.elapsed() >= RECOVERY_EVERY;
        if due {
            self.write_recovery_copies();
        }
        self.share_pending();
    }

    fn write_recovery_copies(&mut self) {
        let store = Arc::clone(self.hub.vfs.store());
        let renaming = self.renamed.is_some().then_some(self.current);
        let mut wrote = false;
        for (i, b) in self.buffers.iter_mut().enumerate() {
            let path = b.copy_key();
            // Its name is not settled until the save-as question is answered.
            if renaming == Some(i) {
                continue;
            }
            if !b.needs_recovery_copy() || b.copy_blocked {
                continue;
            }
            wrote = true;
            if !b.modified() {
                if recovery::remove(&store, &path).is_ok() {
                    b.copy_dropped();
                }
                continue;
            }
            let added = b
                .copy_steps()
                .map(|steps| recovery::append(&store, &path, steps, b.disk_hash));
            if let Some(Ok(true)) = added {
                b.copy_written(false);
                continue;
            }
            let text = b.rope.to_string();
            if recovery::save(&store, &path, &text, b.crlf, b.disk_hash).is_ok() {
                b.copy_written(true);
            }
        }
        if wrote {
            self.last_copy = Instant::now();
        }
    }

    /// Hands the texts that still need a copy to the terminal's watcher.
    fn share_pending(&self) {
        let renaming = self.renamed.is_some().then_some(self.current);
        let snapshots = self
            .buffers
            .iter()
            .enumerate()
            .filter(|(i, b)| {
                renaming != Some(*i) && b.needs_recovery_copy() && !b.copy_blocked && b.modified()
            })
            .map(|(_, b)| recovery::Snapshot {
                key: b.copy_key(),
                text: b.rope.clone(),
                crlf: b.crlf,
                disk_hash: b.disk_hash,
            })
            .collect();
        self.pending.set(snapshots);
    }

    // ----- events -----

    /// Handles one event; returns whether the screen changed.
    pub fn handle(&mut self, ev: &Event) -> bool {
        match ev {
            Event::Key(k) if k.kind != KeyEventKind::Release => {
                self.key(k);
                true
            }
            Event::Paste(text) => {
                let text = text.replace("\r\n", "\n").replace('\r', "\n");
                match &mut self.mode {
                    Mode::Prompt { input, .. } => input.insert(&text),
                    Mode::Normal if self.pane_focus => {
                        if let Some(p) = self.pane.as_mut() {
                            p.input.insert(&text.replace('\n', " "));
                        }
                    }
                    Mode::Normal => {
                        self.buf().insert(&text, EditKind::Other);
                        self.edited();
                    }
                    _ => {}
                }
                true
            }
            Event::Mouse(m) => {
                let changed = self.mouse(m.kind, m.column, m.row, m.modifiers);
                // A click out of the snippet's stop ends it, as moving there by key does.
                self.snippet_check();
                changed
            }
            Event::Resize(..) => {
                self.follow = true;
                true
            }
            _ => false,
        }
    }

    fn edited(&mut self) {
        self.last_edit = Instant::now();
        self.follow = true;
        self.message = None;
    }

    fn key(&mut self, k: &KeyEvent) {
        // A message stays until the next key; what that key does may say something new.
        if matches!(self.mode, Mode::Normal) {
            self.message = None;
        }
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Normal if self.pane_focus && self.pane.is_some() => self.pane_key(k),
            Mode::Normal => self.normal_key(k),
            Mode::Help => {}
            Mode::Prompt { ask, input } => self.prompt_key(k, ask, input),
            Mode::Question(q) => self.question_key(k, q),
        }
        self.next_offer();
    }

    fn page_rows(&self) -> isize {
        self.text_area.height.max(2) as isize - 1
    }

    fn normal_key(&mut self, k: &KeyEvent) {
        self.follow = true;
        // A character without Ctrl or Alt types itself; so does one typed with AltGr
        // (Ctrl+Alt) unless that chord is bound.
        let typed = match k.code {
            KeyCode::Char(c) => {
                let plain = !k
                    .modifiers
                    .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
                let altgr = k
                    .modifiers
                    .contains(KeyModifiers::CONTROL | KeyModifiers::ALT);
                (plain || altgr).then_some(c)
            }
            _ => None,
        };
        // A plain character is never bound (the keymap refuses it), so it always types.
        match self.keymap.get(k.code, k.modifiers) {
            Some((cmd, select)) => self.run(cmd, select || (shift(k) && cmd.moves())),
            None => {
                if let Some(c) = typed {
                    self.type_char(c);
                }
            }
        }
        self.snippet_check();
    }

    /// Types one character, with its closing pair when auto-pairs are on.
    fn type_char(&mut self, c: char) {
        if self.snippet_type(c) {
            return;
        }
        let pairs = self.opts.auto_pairs;
        let b = self.buf();
        if !(pairs && b.auto_pair(c)) {
            b.insert(&c.to_string(), EditKind::Type);
        }
        self.edited();
    }

    /// Runs an editor command; `select` extends the selection as a movement moves.
    fn run(&mut self, cmd: Command, select: bool) {
        let tab = self.buffers[self.current].indent.tab_width;
        let sel = select;
        match cmd {
            Command::Save => {
                self.save(false);
            }
            Command::SaveAs => {
                let input = self
                    .buf()
                    .path
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                self.ask(Ask::SaveAs, input)
            }
            Command::SaveAll => self.save_all(),
            Command::Reload => self.reload(false),
            Command::Quit => self.continue_quit(),
            Command::Open => self.ask(Ask::Open, String::new()),
            Command::Close => self.close(),
            Command::PreviousBuffer => self.switch(-1),
            Command::NextBuffer => self.switch(1),
            Command::Undo => {
                if !self.buf().undo() {
                    self.say("Nothing to undo");
                }
                self.last_edit = Instant::now();
            }
            Command::Redo => {
                if !self.buf().redo() {
                    self.say("Nothing to redo");
                }
                self.last_edit = Instant::now();
            }
            Command::Find | Command::Replace => {
                // A selection on one line is what to look for.
                let input = self
                    .buf()
                    .selected_text()
                    .filter(|t| !t.contains('\n'))
                    .unwrap_or_default();
                let ask = if cmd == Command::Find {
                    Ask::Find
                } else {
                    Ask::Replace
                };
                self.ask(ask, input)
            }
            Command::FindNext => self.find_next(false),
            Command::FindPrevious => self.find_next(true),
            Command::GoTo => self.ask(Ask::GoTo, String::new()),
            Command::SelectAll => self.buf().select_all(),
            Command::SelectNext => self.select_next(),
            Command::Copy => self.copy(false),
            Command::Cut => self.copy(true),
            Command::Paste => {
                let text = self.clipboard.clone();
                if !text.is_empty() && !self.snippet_edit(&text, 0) {
                    self.buf().insert(&text, EditKind::Other);
                    self.edited();
                }
            }
            Command::CutLine => {
                let text = self.buf().cut_lines();
                self.edited();
                self.set_clipboard(text);
            }
            Command::DuplicateLine => {
                self.buf().duplicate_lines();
                self.edited();
            }
            Command::ToggleComment => {
                let lang = self.buf().highlighter.language().to_string();
                match comment_token(&lang) {
                    Some(token) => {
                        self.buf().toggle_comment(token);
                        self.edited();
                    }
                    None => self.say(format!("No line comments are known for {lang}")),
                }
            }
            Command::DeleteWordBack => {
                self.buf().delete_word(true);
                self.edited();
            }
            Command::DeleteWordForward => {
                self.buf().delete_word(false);
                self.edited();
            }
            Command::Assistant => {
                if self.pane.is_none() {
                    self.pane = Some(pane::Pane::new(&self.hub));
                }
                self.pane_focus = true;
            }
            Command::Position => {
                let b = &self.buffers[self.current];
                let (line, col) = b.cursor_line_col();
                let lines = b.line_count();
                self.say(format!(
                    "Line {}/{lines} ({}%), column {}",
                    line + 1,
                    (line + 1) * 100 / lines.max(1),
                    col + 1
                ));
            }
            Command::Help => self.mode = Mode::Help,
            Command::Indent => {
                if !self.snippet_tab(false) {
                    // A problem with the user's snippets stays on the status line.
                    let said = self.message.take();
                    self.buf().indent();
                    self.edited();
                    self.message = said;
                }
            }
            Command::Dedent => {
                if !self.snippet_tab(true) {
                    self.buf().dedent();
                    self.edited();
                }
            }
            Command::Newline => {
                self.buf().newline();
                self.edited();
            }
            // In a snippet's stop, a whole grapheme cluster, as outside one.
            Command::Backspace if self.snippet_erase(true) => {}
            Command::Delete if self.snippet_erase(false) => {}
            Command::Backspace => {
                let pairs = self.opts.auto_pairs;
                let b = self.buf();
                if !(pairs && b.erase_pair()) {
                    b.backspace();
                }
                self.edited();
            }
            Command::Delete => {
                self.buf().delete();
                self.edited();
            }
            Command::Left => self.buf().left(sel),
            Command::Right => self.buf().right(sel),
            Command::Up => self.buf().vertical(-1, sel, tab),
            Command::Down => self.buf().vertical(1, sel, tab),
            Command::WordLeft => self.buf().word_left(sel),
            Command::WordRight => self.buf().word_right(sel),
            Command::LineStart => self.buf().home(sel),
            Command::LineEnd => self.buf().end(sel),
            Command::PageUp => {
                let n = self.page_rows();
                let b = self.buf();
                b.top = b.top.saturating_sub(n as usize);
                b.vertical(-n, sel, tab);
            }
            Command::PageDown => {
                let n = self.page_rows();
                let b = self.buf();
                b.top = (b.top + n as usize).min(b.line_count().saturating_sub(1));
                b.vertical(n, sel, tab);
            }
            Command::FileStart => self.buf().goto(0, 0, sel),
            Command::FileEnd => {
                let b = self.buf();
                let last = b.line_count() - 1;
                b.goto(last, usize::MAX, sel);
            }
            Command::Cancel => {
                self.snippet = None;
                self.buf().clear_selection();
                self.message = None;
            }
        }
    }

    /// Saves every modified buffer that has a name, one after the other; one that needs a
    /// question (changed on disk) stops there and asks.
    fn save_all(&mut self) {
        let here = self.current;
        let mut saved = 0;
        let mut unnamed = 0;
        for i in 0..self.buffers.len() {
            if !self.buffers[i].modified() {
                continue;
            }
            if self.buffers[i].path.is_none() {
                unnamed += 1;
                continue;
            }
            self.current = i;
            if !self.save(false) || !matches!(self.mode, Mode::Normal) {
                // A failure or a question: it is on screen, for this buffer.
                return;
            }
            saved += 1;
        }
        self.current = here;
        self.say(match (saved, unnamed) {
            (0, 0) => "Nothing to save: every buffer is saved".to_string(),
            (n, 0) => format!("Saved {n} buffer(s)"),
            (n, u) => format!("Saved {n} buffer(s); {u} without a name (Alt-S names one)"),
        });
    }

    /// Looks at the current buffer's file on disk, at most every [`DISK_CHECK_EVERY`]:
    /// when another program changed it, an unmodified buffer reads it again and a modified
    /// one asks; when it was removed, the user is told (saving writes it again). Returns
    /// whether anything changed on screen.
    pub fn check_disk(&mut self) -> bool {
        if self.last_disk_check.elapsed() < DISK_CHECK_EVERY || !matches!(self.mode, Mode::Normal) {
            return false;
        }
        self.last_disk_check = Instant::now();
        let b = &self.buffers[self.current];
        let (Some(path), Some(known)) = (b.path.clone(), b.disk_stamp) else {
            return false;
        };
        let shown = crate::text::escape(&path.to_string()).into_owned();
        let now = match self.hub.vfs.stat(&path) {
            Ok(m) => (m.mtime_ms, m.size),
            Err(crate::vfs::VfsError::NotFound(_)) => {
                self.buf().disk_stamp = None;
                self.error(format!(
                    "{shown} was removed from disk; Ctrl-S writes it again"
                ));
                return true;
            }
            Err(_) => return false,
        };
        if now == known {
            return false;
        }
        self.buf().disk_stamp = Some(now);
        // Touched, or really changed? The content says.
        if self.hub.vfs.content_hash(&path).ok() == self.buffers[self.current].disk_hash {
            return false;
        }
        if self.buffers[self.current].modified() {
            self.mode = Mode::Question(Question::ChangedOnDisk);
        } else {
            self.reload(true);
            self.say(format!("{shown} changed on disk and was read again"));
        }
        true
    }

    /// Selects the word at the cursor; with a selection, moves it to the next place the
    /// same text occurs (exactly, wrapping around).
    fn select_next(&mut self) {
        let b = self.buf();
        let Some(text) = b.selected_text() else {
            if !b.select_word() {
                self.say("No word at the cursor");
            }
            return;
        };
        let exact = Query::exact(&text);
        let from = b.selection().map_or(b.cursor(), |r| r.end);
        match b.find(&exact, from, false) {
            Some((r, wrapped)) => {
                b.select(r);
                self.follow = true;
                if wrapped {
                    self.say("Search wrapped to the top");
                }
            }
            None => self.say("No other occurrence"),
        }
    }

    /// Reads the current buffer's file again. With unsaved changes it asks first, unless
    /// `confirmed`.
    fn reload(&mut self, confirmed: bool) {
        let Some(path) = self.buf().path.clone() else {
            return self.say("This buffer has no file to read again");
        };
        if self.buf().modified() && !confirmed {
            self.mode = Mode::Question(Question::Reload);
            return;
        }
        match load(&self.hub, &path, &self.theme) {
            Ok(fresh) => {
                let b = self.buf();
                let (line, col) = b.cursor_line_col();
                let (top, left) = (b.top, b.left);
                *b = fresh;
                b.goto(line, col, false);
                (b.top, b.left) = (top, left);
                let key = path.to_string();
                let _ = recovery::remove(self.store(), &key);
                self.say(format!(
                    "Read {} again from disk",
                    crate::text::escape(&key)
                ));
            }
            Err(e) => self.error(format!("{e:#}")),
        }
    }

    /// Keys while the assistant pane has the focus.
    fn pane_key(&mut self, k: &KeyEvent) {
        let Some(p) = self.pane.as_mut() else {
            return;
        };
        match k.code {
            KeyCode::Esc => self.pane_focus = false,
            KeyCode::Char('e') if ctrl(k) => {
                p.stop();
                self.pane = None;
                self.pane_focus = false;
            }
            KeyCode::Char('c') if ctrl(k) => p.stop(),
            KeyCode::Char('y') if ctrl(k) => {
                if let Some(mut code) = p.blocks.get(p.block).cloned() {
                    let n = p.block + 1;
                    // A block ends in a line break; keep it only where whole lines go.
                    let b = &self.buffers[self.current];
                    let whole_lines = match b.selected_text() {
                        Some(sel) => sel.ends_with('\n'),
                        None => b.cursor_line_col().1 == 0,
                    };
                    if !whole_lines && code.ends_with('\n') {
                        code.pop();
                    }
                    self.buf().insert(&code, EditKind::Other);
                    self.edited();
                    self.pane_focus = false;
                    self.say(format!("Inserted code block {n} (Ctrl-Z undoes it)"));
                } else {
                    self.say("The last answer has no code block");
                }
            }
            KeyCode::Char('s') if ctrl(k) => {
                let Some(code) = p.blocks.get(p.block).cloned() else {
                    return self.say("The last answer has no code block");
                };
                match self.snippet_language() {
                    Some(lang) => {
                        self.pane_focus = false;
                        self.ask(Ask::SnippetPrefix { lang, code }, String::new());
                    }
                    None => self.error(format!(
                        "Snippets are kept for {}; this buffer is none of them",
                        crate::snippets::LANGUAGES.join(", ")
                    )),
                }
            }
            KeyCode::Char('q') if ctrl(k) => {
                self.pane_focus = false;
                self.normal_key(k);
            }
            KeyCode::Tab => p.next_block(),
            KeyCode::PageUp => p.scroll(true, 5),
            KeyCode::PageDown => p.scroll(false, 5),
            KeyCode::Enter if !p.busy() => {
                let question = p.input.take();
                let b = &self.buffers[self.current];
                let name = b.name();
                let (what, context) = match b.selected_text() {
                    Some(sel) => (format!("The selected text of {name}"), sel),
                    None => (format!("The file {name}"), b.rope.to_string()),
                };
                let hub = Arc::clone(&self.hub);
                if let Some(p) = self.pane.as_mut() {
                    p.ask(&hub, question, &what, &context);
                }
            }
            // The question is typed and edited as a prompt's line is.
            _ => {
                p.input.key(k);
            }
        }
    }

    fn switch(&mut self, delta: isize) {
        let n = self.buffers.len() as isize;
        self.current = ((self.current as isize + delta).rem_euclid(n)) as usize;
        self.follow = true;
        // The buffer that comes into view is looked at on disk at the next pause.
        self.last_disk_check = Instant::now() - DISK_CHECK_EVERY;
    }

    /// Puts text on the editor's clipboard (and, at the next draw, the system's).
    fn set_clipboard(&mut self, text: String) {
        if self.opts.system_clipboard && !text.is_empty() {
            if text.len() <= MAX_SYSTEM_COPY {
                self.copied = Some(text.clone());
            } else {
                self.say("Copied (too large for the system clipboard: kept in the editor's)");
            }
        }
        self.clipboard = text;
    }

    /// Text to hand to the system clipboard, once.
    pub fn take_copied(&mut self) -> Option<String> {
        self.copied.take()
    }

    /// Ctrl-C / Ctrl-X: the selection, or the whole line without one.
    fn copy(&mut self, cut: bool) {
        let b = &mut self.buffers[self.current];
        match b.selected_text() {
            Some(text) => {
                if cut {
                    b.backspace();
                    self.edited();
                }
                self.set_clipboard(text);
            }
            None if cut => {
                let text = b.cut_lines();
                self.edited();
                self.set_clipboard(text);
            }
            None => {
                let (line, _) = b.cursor_line_col();
                let text = format!("{}\n", b.line_text(line));
                self.say("Copied the line");
                self.set_clipboard(text);
            }
        }
    }

    /// Opens a one-line prompt. A suggested `input` (the selection, the file's name) is
    /// replaced by the first character typed; find remembers where it started, for Esc.
    fn ask(&mut self, ask: Ask, input: String) {
        if ask == Ask::Find {
            let b = &self.buffers[self.current];
            self.find_origin = Some((b.cursor(), b.anchor(), b.top, b.left));
            if !input.is_empty() {
                self.query = Query::new(&input, self.regex).unwrap_or_default();
            }
        }
        self.mode = Mode::Prompt {
            ask,
            input: LineInput::suggest(&input),
        };
    }

    /// Moves to the next (or previous) match of the last search.
    fn find_next(&mut self, back: bool) {
        if self.query.is_empty() {
            self.ask(Ask::Find, String::new());
            return;
        }
        let q = self.query.clone();
        let b = &mut self.buffers[self.current];
        let from = match (b.selection(), back) {
            (Some(r), false) => r.end,
            (Some(r), true) => r.start,
            (None, _) => b.cursor(),
        };
        match b.find(&q, from, back) {
            Some((r, wrapped)) => {
                b.select(r);
                self.follow = true;
                if wrapped {
                    self.say(if back {
                        "Search wrapped to the end"
                    } else {
                        "Search wrapped to the top"
                    });
                } else {
                    self.message = None;
                }
            }
            None => self.error(format!("Not found: {}", crate::text::escape(q.as_str()))),
        }
    }

    /// Finds `q` from `from` as find-as-you-type does: at once in a small buffer; in a big
    /// one on a thread of its own, so typing never waits for it (the next key cancels it,
    /// and the match is selected when it arrives).
    fn search(&mut self, q: Query, from: usize) {
        // A search still running is for what was typed before: it stops.
        self.searching = None;
        let b = &mut self.buffers[self.current];
        if b.rope.len_bytes() <= SEARCH_AT_ONCE || q.is_empty() {
            if let Some((r, _)) = b.find(&q, from, false) {
                b.select(r);
                self.follow = true;
            }
            return;
        }
        let rope = b.rope.clone();
        let cancel = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let stop = Arc::clone(&cancel);
        let started = std::thread::Builder::new()
            .name("editor-find".into())
            .spawn(move || {
                let _ = tx.send(search::find(&rope, &q, from, false, &stop));
            });
        match started {
            Ok(_) => self.searching = Some(Searching { rx, cancel }),
            Err(e) => self.error(format!("cannot search: {e}")),
        }
    }

    /// Whether a search is running in the background.
    pub fn search_pending(&self) -> bool {
        self.searching.is_some()
    }

    /// Takes the background search's match, if it has come; returns whether the screen
    /// changed.
    pub fn receive_search(&mut self) -> bool {
        let Some(s) = &self.searching else {
            return false;
        };
        let found = match s.rx.try_recv() {
            Ok(found) => found,
            Err(std::sync::mpsc::TryRecvError::Empty) => return false,
            Err(std::sync::mpsc::TryRecvError::Disconnected) => None,
        };
        self.searching = None;
        if let Some((r, _)) = found {
            self.buf().select(r);
            self.follow = true;
        }
        true
    }

    /// Waits for the background search, if one runs, and takes its match.
    fn finish_search(&mut self) {
        if let Some(s) = self.searching.take() {
            if let Ok(Some((r, _))) = s.rx.recv() {
                self.buf().select(r);
                self.follow = true;
            }
        }
    }

    /// Edits the prompt's line as [`LineInput::key`] does; Esc cancels, Enter answers, and
    /// Alt-R switches find and replace between text and regular expressions.
    fn prompt_key(&mut self, k: &KeyEvent, ask: Ask, mut input: LineInput) {
        match k.code {
            KeyCode::Esc => {
                if ask == Ask::SaveAs {
                    self.after = After::Nothing;
                }
                self.searching = None;
                if ask == Ask::Find {
                    // Back to where the search started.
                    if let Some((cursor, anchor, top, left)) = self.find_origin.take() {
                        let b = self.buf();
                        b.restore_position(cursor, anchor);
                        (b.top, b.left) = (top, left);
                        self.follow = false;
                    }
                }
                self.message = None;
                return;
            }
            KeyCode::Enter => return self.prompt_done(ask, input.take()),
            KeyCode::Char('r') if alt(k) && matches!(ask, Ask::Find | Ask::Replace) => {
                self.regex = !self.regex;
            }
            _ => {
                if input.key(k) != line::Edit::Changed {
                    self.mode = Mode::Prompt { ask, input };
                    return;
                }
            }
        }
        if ask == Ask::Find {
            // Search as you type, from where the search started.
            match Query::new(input.text(), self.regex) {
                Ok(q) => {
                    self.message = None;
                    let from = self.find_origin.map_or_else(
                        || {
                            let b = &self.buffers[self.current];
                            b.selection().map_or(b.cursor(), |r| r.start)
                        },
                        |(cursor, anchor, ..)| anchor.map_or(cursor, |a| a.min(cursor)),
                    );
                    self.search(q.clone(), from);
                    self.query = q;
                }
                Err(e) => self.error(format!("Not a valid regular expression: {e}")),
            }
        }
        self.mode = Mode::Prompt { ask, input };
    }

    fn prompt_done(&mut self, ask: Ask, input: String) {
        match ask {
            Ask::Find => {
                // Enter takes the match the search as you type is finding.
                self.finish_search();
                self.find_origin = None;
                let query = match Query::new(&input, self.regex) {
                    Ok(q) => q,
                    Err(e) => return self.error(format!("Not a valid regular expression: {e}")),
                };
                // The search as you type is on a match already: Enter stays there.
                let b = &self.buffers[self.current];
                let on_match = b.selection().is_some_and(|r| {
                    let line = b.rope.char_to_line(r.start);
                    let base = b.rope.line_to_char(line);
                    b.line_matches(line, &query)
                        .iter()
                        .any(|m| base + m.start == r.start && base + m.end == r.end)
                });
                self.query = query;
                if !on_match {
                    self.find_next(false);
                }
            }
            Ask::Replace if !input.is_empty() => match Query::new(&input, self.regex) {
                Ok(q) => self.ask(Ask::ReplaceWith(q), String::new()),
                Err(e) => self.error(format!("Not a valid regular expression: {e}")),
            },
            Ask::Replace => {}
            Ask::ReplaceWith(find) => {
                self.query = find.clone();
                let b = &mut self.buffers[self.current];
                let from = b.selection().map_or(b.cursor(), |r| r.start);
                match b.find(&find, from, false) {
                    Some((r, _)) => {
                        b.select(r);
                        self.follow = true;
                        self.mode = Mode::Question(Question::ReplaceEach {
                            find,
                            with: input,
                            done: 0,
                        });
                    }
                    None => {
                        self.error(format!("Not found: {}", crate::text::escape(find.as_str())))
                    }
                }
            }
            Ask::GoTo => self.go_to(&input),
            Ask::SnippetPrefix { lang, code } => {
                let prefix = input.trim();
                if prefix.is_empty() {
                    return;
                }
                let what = "from the assistant";
                match crate::snippets::save(&self.hub.vfs, lang, prefix, what, &code) {
                    Ok(file) => self.say(format!(
                        "Saved the snippet {} in {file}: type it and Tab",
                        crate::text::escape(prefix)
                    )),
                    Err(e) => self.error(format!(
                        "Not saved: {}",
                        crate::text::clean_message(&format!("{e:#}"), 300)
                    )),
                }
            }
            Ask::Open if !input.trim().is_empty() => self.open(input.trim()),
            Ask::Open => {}
            Ask::SaveAs => {
                let arg = input.trim();
                if arg.is_empty() {
                    self.after = After::Nothing;
                    return;
                }
                match crate::vfs::path::normalize(&self.cwd, arg) {
                    Ok(p) => {
                        let b = &self.buffers[self.current];
                        if b.path.as_ref() == Some(&p) {
                            self.save(false);
                            return;
                        }
                        let before = (b.path.clone(), b.disk_hash);
                        let theme = Arc::clone(&self.theme);
                        let hl = |p: &VPath, b: &Buffer| {
                            Highlighter::for_file(p.name().unwrap_or(""), &b.line_text(0), &theme)
                        };
                        // A different file: whatever is there is overwritten only after
                        // asking.
                        let new = hl(&p, b);
                        self.buf().rename(p, new);
                        self.renamed = Some(before);
                        if !self.save(false) {
                            // Not saved: the buffer keeps its old name.
                            self.undo_rename();
                        }
                    }
                    Err(e) => {
                        self.error(format!("'{arg}': {e}"));
                        self.after = After::Nothing;
                    }
                }
            }
        }
    }

    /// Gives the buffer back the name it had before a Save-as that did not happen.
    fn undo_rename(&mut self) {
        let Some((old, hash)) = self.renamed.take() else {
            return;
        };
        let b = &self.buffers[self.current];
        let back = match &old {
            Some(o) => Highlighter::for_file(o.name().unwrap_or(""), &b.line_text(0), &self.theme),
            None => Highlighter::for_lang("text", &self.theme),
        };
        let b = self.buf();
        b.path = old;
        b.reset_highlighter(back);
        b.disk_hash = hash;
    }

    /// Go to `LINE` or `LINE:COL` (from 1).
    fn go_to(&mut self, input: &str) {
        let mut parts = input.trim().splitn(2, [':', ',']);
        let line = parts.next().and_then(|l| l.trim().parse::<usize>().ok());
        let col = parts.next().map(|c| c.trim().parse::<usize>().ok());
        match (line, col) {
            (Some(l), None | Some(Some(_))) if l >= 1 => {
                let c = col.flatten().unwrap_or(1).max(1);
                self.buf().goto(l - 1, c - 1, false);
                self.follow = true;
            }
            _ => self.error(format!(
                "Not a line number: '{input}' (use LINE or LINE:COL)"
            )),
        }
    }

    fn question_key(&mut self, k: &KeyEvent, q: Question) {
        let key = match k.code {
            KeyCode::Char(c) if !ctrl(k) => c.to_ascii_lowercase(),
            KeyCode::Esc => '\x1b',
            KeyCode::Enter => '\n',
            _ => {
                self.mode = Mode::Question(q);
                return;
            }
        };
        match q {
            Question::SaveChanges => match key {
                'y' | 's' => {
                    self.save(false);
                }
                'n' | 'd' => self.discard_current(),
                '\x1b' | 'c' => {
                    self.after = After::Nothing;
                }
                _ => self.mode = Mode::Question(Question::SaveChanges),
            },
            Question::Overwrite => match key {
                'y' | 'o' => {
                    self.save(true);
                }
                '\x1b' | 'n' | 'c' => {
                    self.after = After::Nothing;
                    self.undo_rename();
                    self.say("Not saved: the file on disk was left as it is");
                }
                _ => self.mode = Mode::Question(Question::Overwrite),
            },
            Question::ReadOnly => match key {
                'y' | 'w' => {
                    self.readonly_ok = true;
                    self.save(false);
                    self.readonly_ok = false;
                }
                '\x1b' | 'n' | 'c' => {
                    self.after = After::Nothing;
                    self.undo_rename();
                    self.say("Not saved: the file was left as it is");
                }
                _ => self.mode = Mode::Question(Question::ReadOnly),
            },
            Question::ChangedOnDisk => match key {
                'r' | 'y' => self.reload(true),
                '\x1b' | 'k' | 'n' | 'c' => {
                    self.say("Kept your changes; saving will ask before it replaces the file")
                }
                _ => self.mode = Mode::Question(Question::ChangedOnDisk),
            },
            Question::Reload => match key {
                'y' | 'r' => self.reload(true),
                '\x1b' | 'n' | 'c' => {
                    self.say("Kept the unsaved changes; the file was not read again")
                }
                _ => self.mode = Mode::Question(Question::Reload),
            },
            Question::Recover(copy) => match key {
                'r' => {
                    let own = !copy.path.starts_with(buffer::SCRATCH)
                        && !copy.path.starts_with(recovery::KEPT);
                    if !own {
                        // The text lives in this buffer now, which keeps its own copy.
                        let _ = recovery::remove(self.store(), &copy.path);
                        self.last_edit = Instant::now();
                    }
                    let b = self.buf();
                    b.replace_all_text(&copy.text);
                    if own {
                        b.mark_recovered();
                    }
                    if copy.disk_hash != b.disk_hash {
                        // The copy was made from an older file: saving asks before it
                        // replaces the newer one.
                        b.disk_hash = copy.disk_hash;
                        self.say("Restored the unsaved changes; the file has changed since they were made, so saving will ask first");
                    } else {
                        self.say("Restored the unsaved changes (Ctrl-Z undoes that; Ctrl-S saves)");
                    }
                    self.follow = true;
                }
                'd' => {
                    let _ = recovery::remove(self.store(), &copy.path);
                    self.say("Discarded the recovery copy");
                }
                '\x1b' | 'k' if copy.path.starts_with(buffer::SCRATCH) => {
                    self.say("Kept that text for later ('edit --recovered' lists it)");
                }
                '\x1b' | 'k' if copy.path.starts_with(recovery::KEPT) => {
                    self.say("Kept that copy for later ('edit --recovered' lists it)");
                }
                '\x1b' | 'k' => {
                    // Set aside under a key of its own, so this buffer goes on keeping a
                    // copy of what is typed now.
                    let kept = recovery::kept_key(&copy.path);
                    match recovery::rename(self.store(), &copy.path, &kept) {
                        Ok(_) => {
                            self.buf().copy_dropped();
                            self.say(format!(
                                "Kept the recovery copy for later as {} (offered again next time; 'edit --recovered' lists it)",
                                crate::text::escape(&kept)
                            ));
                        }
                        Err(e) => {
                            self.buf().copy_blocked = true;
                            self.error(format!(
                                "cannot set the recovery copy aside ({e:#}): it is kept, and changes made now are not copied, so save them"
                            ));
                        }
                    }
                }
                _ => self.mode = Mode::Question(Question::Recover(copy)),
            },
            Question::ReplaceEach { find, with, done } => {
                let b = &mut self.buffers[self.current];
                match key {
                    'y' | '\n' => {
                        if let Some(r) = b.selection() {
                            let line = b.rope.char_to_line(r.start);
                            let base = b.rope.line_to_char(line);
                            let text = find.replacement(
                                &b.line_text(line),
                                r.start - base..r.end - base,
                                &with,
                            );
                            let end = b.replace(r, &text, EditKind::Other);
                            self.last_edit = Instant::now();
                            self.replace_next(find, with, done + 1, end);
                        }
                    }
                    'n' => {
                        let from = b.selection().map_or(b.cursor(), |r| r.end);
                        self.replace_next(find, with, done, from);
                    }
                    'a' => {
                        let n = self.replace_all(&find, &with);
                        self.say(format!("Replaced {} occurrence(s)", done + n));
                    }
                    'q' | '\x1b' => self.say(format!("Replaced {done} occurrence(s)")),
                    _ => self.mode = Mode::Question(Question::ReplaceEach { find, with, done }),
                }
            }
        }
    }

    fn replace_next(&mut self, find: Query, with: String, done: usize, from: usize) {
        let b = &mut self.buffers[self.current];
        match b.find(&find, from, false) {
            // Stop at the wrap: matches before the start were offered already, or are
            // the replacement text itself.
            Some((r, false)) => {
                b.select(r);
                self.follow = true;
                self.mode = Mode::Question(Question::ReplaceEach { find, with, done });
            }
            _ => {
                b.clear_selection();
                self.say(format!("Replaced {done} occurrence(s)"));
            }
        }
    }

    /// Replaces every match from the current one to the end as one undo step.
    fn replace_all(&mut self, find: &Query, with: &str) -> usize {
        let b = &mut self.buffers[self.current];
        let start = b.selection().map_or(b.cursor(), |r| r.start);
        let mut matches = Vec::new();
        let mut from = start;
        while let Some((r, false)) = b.find(find, from, false) {
            from = r.end;
            matches.push(r);
        }
        if matches.is_empty() {
            return 0;
        }
        // One change over the span of all matches keeps it one undo step.
        let span = matches[0].start..matches[matches.len() - 1].end;
        let old = b.rope.slice(span.clone()).to_string();
        let mut new = String::with_capacity(old.len());
        let mut pos = span.start;
        let chars: Vec<char> = old.chars().collect();
        for r in &matches {
            new.extend(&chars[pos - span.start..r.start - span.start]);
            let line = b.rope.char_to_line(r.start);
            let base = b.rope.line_to_char(line);
            new.push_str(&find.replacement(&b.line_text(line), r.start - base..r.end - base, with));
            pos = r.end;
        }
        b.replace(span, &new, EditKind::Other);
        self.edited();
        matches.len()
    }

    fn mouse(&mut self, kind: MouseEventKind, x: u16, y: u16, mods: KeyModifiers) -> bool {
        let area = self.text_area;
        match kind {
            MouseEventKind::ScrollUp => {
                let b = self.buf();
                b.top = b.top.saturating_sub(WHEEL);
                self.follow = false;
                true
            }
            MouseEventKind::ScrollDown => {
                let b = self.buf();
                b.top = (b.top + WHEEL).min(b.line_count().saturating_sub(1));
                self.follow = false;
                true
            }
            MouseEventKind::Down(MouseButton::Left) | MouseEventKind::Drag(MouseButton::Left)
                if matches!(self.mode, Mode::Normal) =>
            {
                if y < area.y || y >= area.y + area.height {
                    return false;
                }
                let select =
                    matches!(kind, MouseEventKind::Drag(_)) || mods.contains(KeyModifiers::SHIFT);
                let tab = self.buffers[self.current].indent.tab_width;
                let gutter = self.gutter;
                let b = self.buf();
                let line = (b.top + (y - area.y) as usize).min(b.line_count() - 1);
                let dcol = b.left + x.saturating_sub(area.x + gutter) as usize;
                let col = b.col_at_display(line, dcol, tab);
                b.goto(line, col, select);
                self.follow = true;
                true
            }
            _ => false,
        }
    }

    // ----- drawing -----

    pub fn draw(&mut self, frame: &mut Frame) {
        if self.buffers.is_empty() {
            // The last buffer was closed: the editor is ending.
            return;
        }
        let area = frame.area();
        if area.height < 3 || area.width < 10 {
            frame.render_widget(Paragraph::new("window too small"), area);
            return;
        }
        let tabs = self.buffers.len() > 1;
        let top = area.y + u16::from(tabs);
        let body = Rect::new(area.x, top, area.width, area.height - 2 - u16::from(tabs));
        let (text_area, pane_area) = match &self.pane {
            Some(_) if body.width >= 50 => {
                let w = body.width * 3 / 5;
                (
                    Rect::new(body.x, body.y, w, body.height),
                    Some(Rect::new(body.x + w, body.y, body.width - w, body.height)),
                )
            }
            // Too narrow to share: the pane takes the whole width while it has the focus.
            Some(_) if self.pane_focus => (Rect::new(body.x, body.y, 0, 0), Some(body)),
            _ => (body, None),
        };
        self.text_area = text_area;
        if let (Some(p), Some(r)) = (&self.pane, pane_area) {
            let focused = self.pane_focus && matches!(self.mode, Mode::Normal);
            let theme = self.opts.color.then_some(&*self.theme);
            p.draw(frame, r, focused, theme, self.styles.status);
        }
        if tabs {
            self.draw_tabs(frame, Rect::new(area.x, area.y, area.width, 1));
        }
        if text_area.width > 0 && text_area.height > 0 {
            self.draw_text(frame, text_area);
        }
        let status = Rect::new(area.x, text_area.y + text_area.height, area.width, 1);
        self.draw_status(frame, status);
        let bottom = Rect::new(area.x, status.y + 1, area.width, 1);
        self.draw_bottom(frame, bottom);
        if matches!(self.mode, Mode::Help) {
            draw_help(frame, area, &self.keymap);
        }
    }

    fn draw_tabs(&self, frame: &mut Frame, row: Rect) {
        let buf = frame.buffer_mut();
        let mut x = row.x;
        for (i, b) in self.buffers.iter().enumerate() {
            let name = b
                .path
                .as_ref()
                .and_then(|p| p.name().map(str::to_string))
                .unwrap_or_else(|| "[new]".into());
            let label = format!(" {}{} ", name, if b.modified() { " +" } else { "" });
            let st = if i == self.current {
                self.styles.status
            } else {
                self.styles.line_number
            };
            let room = (row.x + row.width).saturating_sub(x);
            if room == 0 {
                break;
            }
            let (nx, _) = buf.set_stringn(x, row.y, &label, room as usize, st);
            x = nx;
        }
    }

    fn draw_text(&mut self, frame: &mut Frame, area: Rect) {
        let tab = self.buffers[self.current].indent.tab_width;
        let color = self.opts.color;
        let theme = Arc::clone(&self.theme);
        let styles = &self.styles;
        let query = match &self.mode {
            Mode::Prompt {
                ask: Ask::Find,
                input,
                ..
            } => Query::new(input.text(), self.regex).unwrap_or_default(),
            _ => self.query.clone(),
        };
        let b = &mut self.buffers[self.current];
        let lines = b.line_count();
        let digits = lines.to_string().len().max(3) as u16;
        let gutter = digits + 2;
        self.gutter = gutter;
        let width = area.width.saturating_sub(gutter) as usize;
        let height = area.height as usize;
        let (cline, ccol) = b.cursor_line_col();
        let cdisp = b.display_col(cline, ccol, tab);
        if self.follow {
            if cline < b.top {
                b.top = cline;
            } else if cline >= b.top + height {
                b.top = cline + 1 - height;
            }
            if cdisp < b.left {
                b.left = cdisp;
            } else if width > 0 && cdisp >= b.left + width {
                b.left = cdisp + 1 - width;
            }
            self.follow = false;
        }
        let base = styles.text;
        let base_rs = base.to_ratatui();
        let selection = b.selection();
        let highlight = color && !b.highlighter.is_plain();
        let last = (b.top + height).min(lines);
        let mut state = highlight.then(|| b.view_state(b.top));
        let out = frame.buffer_mut();
        for row in 0..height {
            let y = area.y + row as u16;
            let line = b.top + row;
            if line >= last {
                out.set_style(Rect::new(area.x, y, area.width, 1), base_rs);
                continue;
            }
            let current = line == cline;
            let line_style = if current {
                base_rs.patch(styles.current_line)
            } else {
                base_rs
            };
            out.set_style(Rect::new(area.x, y, area.width, 1), line_style);
            let number = format!("{:>w$} ", line + 1, w = digits as usize + 1);
            let num_style = if current {
                styles
                    .line_number
                    .patch(styles.current_line)
                    .add_modifier(Modifier::BOLD)
            } else {
                styles.line_number
            };
            out.set_string(area.x, y, &number, base_rs.patch(num_style));
            let text = b.line_text(line);
            let parts = match state.as_mut() {
                Some(st) if text.len() <= LONG_LINE => b.highlighter.line(st, &text, &theme, base),
                _ => Vec::new(),
            };
            let line_start = b.rope.line_to_char(line);
            let matches = b.line_matches(line, &query);
            let mut part = 0;
            let mut m = 0;
            // What is scrolled off to the left is skipped a run of plain ASCII at a time.
            let (skip, mut next_ci, mut col) = buffer::scrolled(&text, b.left, tab);
            let x0 = area.x + gutter;
            let mut last_cell: Option<(u16, u16)> = None;
            // Whole grapheme clusters: a letter with its accents, an emoji sequence or a flag
            // is one character, drawn in one run of cells as wide as the whole of it.
            for (bi, g) in buffer::clusters(&text[skip..]) {
                let (ci, bi) = (next_ci, bi + skip);
                next_ci += if g.len() == 1 { 1 } else { g.chars().count() };
                let w = cluster_width(g, col, tab);
                if w > 0 && col < b.left {
                    // Scrolled off to the left.
                    col += w;
                    continue;
                }
                if w == 0 {
                    // Nothing of its own to show (a zero-width space, a lone mark): it goes
                    // with the character before it.
                    if let Some(pos) = last_cell {
                        if let Some(cell) = out.cell_mut(pos) {
                            let sym = format!("{}{g}", cell.symbol());
                            cell.set_symbol(&sym);
                        }
                    }
                    continue;
                }
                if col >= b.left + width {
                    break;
                }
                while part < parts.len() && parts[part].0.end <= bi {
                    part += 1;
                }
                let mut st = line_style;
                if let Some((r, s)) = parts.get(part) {
                    if r.start <= bi {
                        st = st.patch(s.to_ratatui());
                    }
                }
                while m < matches.len() && matches[m].end <= ci {
                    m += 1;
                }
                if matches.get(m).is_some_and(|r| r.start <= ci) {
                    st = st.patch(styles.search_match);
                }
                let abs = line_start + ci;
                if selection.as_ref().is_some_and(|r| r.contains(&abs)) {
                    st = st.patch(styles.selection);
                }
                if col >= b.left && col + w <= b.left + width {
                    let x = x0 + (col - b.left) as u16;
                    let mut chars = g.chars();
                    let (c, single) = (chars.next().unwrap_or(' '), chars.next().is_none());
                    match c {
                        '\t' if single => {
                            for i in 0..w {
                                out.set_string(x + i as u16, y, " ", st);
                            }
                        }
                        c if single && w == 2 && ((c as u32) < 0x20 || c == '\u{7f}') => {
                            let shown = if c == '\u{7f}' {
                                '?'
                            } else {
                                char::from_u32(c as u32 + 0x40).unwrap_or('?')
                            };
                            out.set_string(
                                x,
                                y,
                                format!("^{shown}"),
                                st.add_modifier(Modifier::DIM),
                            );
                        }
                        _ => {
                            // One cell holding the whole cluster, the ones after it covered.
                            out.set_string(x, y, g, st);
                        }
                    }
                    last_cell = Some((x, y));
                }
                col += w;
            }
            // The line break of a selected line shows as one selected cell.
            let eol = line_start + b.line_len(line);
            if line + 1 < lines
                && selection.as_ref().is_some_and(|r| r.contains(&eol))
                && col >= b.left
                && col < b.left + width
            {
                let x = x0 + (col - b.left) as u16;
                out.set_style(Rect::new(x, y, 1, 1), styles.selection);
            }
        }
        if (matches!(self.mode, Mode::Question(_))
            || (matches!(self.mode, Mode::Normal) && !self.pane_focus))
            && cline >= b.top
            && cline < b.top + height
            && cdisp >= b.left
            && cdisp < b.left + width
        {
            frame.set_cursor_position(Position::new(
                area.x + gutter + (cdisp - b.left) as u16,
                area.y + (cline - b.top) as u16,
            ));
        }
    }

    fn draw_status(&self, frame: &mut Frame, row: Rect) {
        let b = &self.buffers[self.current];
        let (line, col) = b.cursor_line_col();
        let left = format!(
            " {}{}{}",
            crate::text::escape(&b.name()),
            if b.readonly { " [read-only]" } else { "" },
            if b.modified() { " [+]" } else { "" }
        );
        // Least needed last: dropped first when the row is narrow.
        let mut parts = vec![
            format!("Ln {}, Col {}", line + 1, b.cluster_col(line, col) + 1),
            b.highlighter.language().to_string(),
            (if b.crlf { "CRLF" } else { "LF" }).to_string(),
        ];
        if b.bom {
            parts.push("BOM".into());
        }
        if self.buffers.len() > 1 {
            parts.push(format!("{}/{}", self.current + 1, self.buffers.len()));
        }
        parts.push(b.indent.describe());
        parts.push("F1 help".into());
        let room_for_name = unicode_width::UnicodeWidthStr::width(left.as_str()).min(16);
        let mut right = String::new();
        while !parts.is_empty() {
            right = format!("{} ", parts.join("  "));
            let w = unicode_width::UnicodeWidthStr::width(right.as_str());
            if w + room_for_name < row.width as usize || parts.len() == 1 {
                break;
            }
            parts.pop();
        }
        let buf = frame.buffer_mut();
        buf.set_style(row, self.styles.status);
        let rw = unicode_width::UnicodeWidthStr::width(right.as_str()) as u16;
        let room = row.width.saturating_sub(rw + 1) as usize;
        buf.set_stringn(row.x, row.y, &left, room, self.styles.status);
        if rw < row.width {
            buf.set_string(row.x + row.width - rw, row.y, &right, self.styles.status);
        }
    }

    fn draw_bottom(&self, frame: &mut Frame, row: Rect) {
        let bold = Style::default().add_modifier(Modifier::BOLD);
        let (text, style, cursor) = match &self.mode {
            Mode::Prompt { ask, input } => {
                let label = format!("{}: ", ask.label(self.regex));
                let (t, w) = input.fit(&label, usize::from(row.width), |s| {
                    crate::text::escape(s).into_owned()
                });
                (t, bold, Some(w))
            }
            Mode::Question(q) => (
                match q {
                    Question::SaveChanges => format!(
                        "Save changes to {}? (y)es, (n)o, Esc to cancel",
                        self.buffers[self.current].name()
                    ),
                    Question::Overwrite => format!(
                        "{} changed since it was opened. Overwrite it? (y)es, Esc to cancel",
                        self.buffers[self.current].name()
                    ),
                    Question::ReadOnly => format!(
                        "{} is read-only (no one may write it). Write it anyway? (y)es, Esc to leave it as it is",
                        crate::text::escape(&self.buffers[self.current].name())
                    ),
                    Question::ChangedOnDisk => format!(
                        "{} changed on disk. (r)ead it again (dropping your changes), Esc to keep yours",
                        crate::text::escape(&self.buffers[self.current].name())
                    ),
                    Question::Reload => format!(
                        "Read {} again and drop the unsaved changes? (y)es, Esc to keep them",
                        self.buffers[self.current].name()
                    ),
                    Question::Recover(c) if c.path.starts_with(buffer::SCRATCH) => format!(
                        "The text of a new buffer from {} was kept. (r)estore, (d)iscard, Esc to keep for later",
                        crate::commands::fmt_time(c.saved_at)
                    ),
                    Question::Recover(c) if c.path.starts_with(recovery::KEPT) => format!(
                        "Changes to {} from {} were kept for later. (r)estore, (d)iscard, Esc to keep them",
                        crate::text::escape(recovery::kept_path(&c.path).unwrap_or(&c.path)),
                        crate::commands::fmt_time(c.saved_at)
                    ),
                    Question::Recover(c) => format!(
                        "Unsaved changes to {} from {} were kept. (r)estore, (d)iscard, Esc to keep for later",
                        crate::text::escape(&c.path),
                        crate::commands::fmt_time(c.saved_at)
                    ),
                    Question::ReplaceEach { .. } => {
                        "Replace this one? (y)es, (n)o, (a)ll, (q)uit".to_string()
                    }
                },
                bold,
                None,
            ),
            _ => match &self.message {
                Some((m, true)) => (
                    m.clone(),
                    if self.opts.color {
                        Style::default()
                            .fg(ratatui::style::Color::Red)
                            .add_modifier(Modifier::BOLD)
                    } else {
                        bold
                    },
                    None,
                ),
                Some((m, false)) => (m.clone(), Style::default(), None),
                None => (
                    hint(&self.keymap),
                    Style::default().add_modifier(Modifier::DIM),
                    None,
                ),
            },
        };
        frame
            .buffer_mut()
            .set_stringn(row.x, row.y, &text, row.width as usize, style);
        if let Some(w) = cursor {
            frame.set_cursor_position(Position::new((row.x + w).min(row.x + row.width - 1), row.y));
        }
    }

    /// Whether idle time has work: the view is highlighted from a guessed state, not yet
    /// settled. There is none once it is, however long the file.
    pub fn has_work(&self) -> bool {
        let b = &self.buffers[self.current];
        self.opts.color
            && b.highlighter.carries_state()
            && b.top < b.line_count()
            && b.view_is_approximate(b.top)
    }

    /// Does a slice of idle work (about 20 ms): settles the highlighter state the view is
    /// drawn from, near the view only. Returns whether the view should be drawn again (its
    /// state changed or was settled, or the assistant's answer grew).
    pub fn work(&mut self) -> bool {
        let mut changed = false;
        if let Some(p) = self.pane.as_mut() {
            let title = format!("edit {}", self.buffers[self.current].name());
            changed = p.receive(&self.hub, &title);
        }
        if !self.has_work() {
            return changed;
        }
        let b = &mut self.buffers[self.current];
        let top = b.top;
        b.extend_states(400, top) || changed
    }

    /// How long the event loop may sleep: not at all while highlighting has work, briefly
    /// while an answer streams in.
    pub fn idle_wait(&self) -> Duration {
        if self.has_work() {
            Duration::ZERO
        } else if self.pane.as_ref().is_some_and(pane::Pane::busy) {
            Duration::from_millis(30)
        } else {
            Duration::from_millis(250)
        }
    }

    /// Whether an answer is streaming into the assistant pane.
    pub fn pane_busy(&self) -> bool {
        self.pane.as_ref().is_some_and(pane::Pane::busy)
    }

    /// Moves the cursor to a line (from 1), for `edit --line`.
    pub fn goto_line(&mut self, line: usize) {
        self.buffers[0].goto(line.saturating_sub(1), 0, false);
        self.follow = true;
    }
}

/// F1: every command with its keys, from the keymap in use; in two columns when one does
/// not fit the screen's height.
fn draw_help(frame: &mut Frame, area: Rect, keymap: &Keymap) {
    let two = Command::ALL.len() + 3 > area.height as usize && area.width >= 60;
    let mut rows: Vec<(String, &str)> = Command::ALL
        .iter()
        .filter_map(|&cmd| {
            let mut keys = keymap.chords(cmd);
            // Side by side there is room for the first keys of each only.
            if two {
                keys.truncate(
                    if keys.iter().take(2).map(String::len).sum::<usize>() < 16 {
                        2
                    } else {
                        1
                    },
                );
            }
            (!keys.is_empty()).then(|| (keys.join(" "), cmd.what()))
        })
        .collect();
    rows.push(("Shift".into(), "with a movement key: select"));
    let key_w = rows
        .iter()
        .map(|(k, _)| k.len())
        .max()
        .unwrap_or(10)
        .min(if two { 16 } else { 30 });
    let cells: Vec<String> = rows
        .iter()
        .map(|(k, what)| {
            let k: String = k.chars().take(key_w).collect();
            format!(" {k:key_w$}  {what}")
        })
        .collect();
    let room = area.height.saturating_sub(2) as usize;
    let cols = if two && cells.len() > room { 2 } else { 1 };
    let per_col = cells.len().div_ceil(cols);
    let inner = area.width.saturating_sub(2) as usize;
    let col_w = (inner / cols).max(1);
    let widest = cells.iter().map(|c| c.chars().count()).max().unwrap_or(20) + 1;
    let col_w = col_w.min(widest);
    let lines: Vec<String> = (0..per_col)
        .map(|r| {
            (0..cols)
                .filter_map(|c| cells.get(c * per_col + r))
                .map(|cell| {
                    let cut: String = cell.chars().take(col_w).collect();
                    format!("{cut:col_w$}")
                })
                .collect::<String>()
        })
        .collect();
    let w = ((col_w * cols) as u16 + 2).min(area.width);
    let h = (lines.len() as u16 + 2).min(area.height);
    let r = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(lines.join("\n")).block(Block::bordered().title(" Keys (any key closes) ")),
        r,
    );
}

/// The hint on the bottom line: the keys of the most used commands, from the keymap.
fn hint(keymap: &Keymap) -> String {
    [
        (Command::Save, "save"),
        (Command::Quit, "quit"),
        (Command::Find, "find"),
        (Command::GoTo, "go to"),
        (Command::Assistant, "assistant"),
        (Command::Help, "help"),
    ]
    .iter()
    .filter_map(|(cmd, what)| keymap.chord(*cmd).map(|k| format!("{k} {what}")))
    .collect::<Vec<_>>()
    .join(" · ")
}

/// The line comment of a language (by the highlighter's name), if it has one.
fn comment_token(language: &str) -> Option<&'static str> {
    const SLASHES: &[&str] = &[
        "Rust",
        "C",
        "C++",
        "C#",
        "Go",
        "Java",
        "JavaScript",
        "JavaScript/Rhai",
        "TypeScript",
        "TypeScriptReact",
        "JavaScript (Babel)",
        "Rhai",
        "Swift",
        "Kotlin",
        "Scala",
        "PHP",
        "Objective-C",
        "Objective-C++",
        "D",
        "Dart",
        "Groovy",
        "JSON",
        "Protocol Buffer",
    ];
    const HASH: &[&str] = &[
        "Python",
        "Ruby",
        "Perl",
        "YAML",
        "TOML",
        "Makefile",
        "R",
        "Shell-Unix-Generic",
        "Bourne Again Shell (bash)",
        "Valyxo shell",
        "Dockerfile",
        "CMake",
        "Nim",
        "Elixir",
        "Crystal",
        "Julia",
        "PowerShell",
        "Git Config",
        "Git Ignore",
        "INI",
    ];
    const DASHES: &[&str] = &["SQL", "Haskell", "Lua", "Ada", "Elm"];
    if SLASHES.contains(&language) {
        Some("//")
    } else if HASH.contains(&language) {
        Some("#")
    } else if DASHES.contains(&language) {
        Some("--")
    } else {
        match language {
            "Lisp" | "Clojure" | "Scheme" => Some(";"),
            "LaTeX" | "TeX" | "Erlang" | "MATLAB" => Some("%"),
            "VimL" => Some("\""),
            "Batch File" => Some("REM "),
            _ => None,
        }
    }
}

/// Runs the editor on the terminal until the user quits. The files are loaded first, so a
/// file that cannot be edited is reported before the screen changes.
pub fn run(
    hub: Arc<Hub>,
    cwd: VPath,
    files: &[VPath],
    line: Option<usize>,
    color: bool,
) -> Result<()> {
    let theme = hub.theme();
    let mut buffers = Vec::new();
    for p in files {
        if buffers.iter().any(|b: &Buffer| b.path.as_ref() == Some(p)) {
            continue;
        }
        buffers.push(load(&hub, p, &theme)?);
    }
    match ratatui::crossterm::terminal::size() {
        Ok((w, h)) if w > 0 && h > 0 => {}
        _ => {
            bail!("the terminal reports no size (0 × 0): set one with 'exec stty rows 24 cols 80'")
        }
    }
    let opts = Options::from_hub(&hub, color);
    let mut ed = Editor::new(hub, cwd, buffers, opts);
    if let Some(l) = line {
        ed.goto_line(l);
    }
    let screen = match crate::term::enter(true) {
        Some(Ok(s)) => s,
        Some(Err(e)) => bail!("the editor needs a terminal: {e}"),
        None => bail!("another full-screen view has the terminal"),
    };
    // If the terminal goes away, this thread may never get control back: the watcher
    // writes the copies it was handed.
    let (pending, store) = (ed.pending.clone(), Arc::clone(ed.hub.vfs.store()));
    screen.on_hangup(Box::new(move || pending.write(&store)));
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| crate::view::run(&mut ed)));
    // Whatever way it ended (a panic too), unsaved text is kept.
    ed.keep_recovery_copies(true);
    let left = screen.leave();
    match result {
        Ok(r) => r?,
        Err(panic) => std::panic::resume_unwind(panic),
    }
    left?;
    Ok(())
}

impl View for Editor {
    fn handle(&mut self, event: &Event) -> Flow {
        let changed = Editor::handle(self, event);
        if self.quit {
            Flow::Quit
        } else if changed {
            Flow::Redraw
        } else {
            Flow::Idle
        }
    }

    fn draw(&mut self, frame: &mut Frame<'_>) {
        Editor::draw(self, frame);
    }

    fn drawn(&mut self) -> std::io::Result<()> {
        if let Some(text) = self.take_copied() {
            ratatui::crossterm::execute!(
                std::io::stdout(),
                crossterm::clipboard::CopyToClipboard::to_clipboard_from(text)
            )?;
        }
        Ok(())
    }

    /// While a search runs in the background, its match is looked for often; otherwise the
    /// editor wakes as its idle work asks.
    fn wait(&self) -> Duration {
        if self.search_pending() {
            self.idle_wait().min(Duration::from_millis(10))
        } else {
            self.idle_wait()
        }
    }

    /// Takes a background search's match, keeps recovery copies, looks at the file on disk
    /// and works out highlighting in slices between keys.
    fn idle(&mut self) -> bool {
        let found = self.receive_search();
        self.keep_recovery_copies(false);
        let noticed = self.check_disk();
        let worked = self.work();
        found || noticed || worked
    }

    /// Steady typing never leaves the text alone for long: copies are kept meanwhile.
    fn after_burst(&mut self) {
        self.keep_recovery_copies(false);
    }

    /// In the editor Esc cancels (a prompt, a question, the pane's focus) rather than
    /// closing it, and an Esc typed just before an arrow is common.
    fn mends_keys(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests;
