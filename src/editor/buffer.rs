//! One open file: its text in a rope, the cursor and selection, undo and redo, search, and
//! the highlighter's state at the start of each line (kept only as far as it was needed).

use super::recovery::Step;
use super::search::Query;
use crate::highlight::{Highlighter, LineState};
use crate::vfs::VPath;
use ropey::Rope;
use std::ops::Range;
use unicode_width::UnicodeWidthChar;

/// Texts up to this size (bytes) always get whole recovery copies; bigger ones get the edits
/// since their last copy added to it.
const WHOLE_COPY: usize = 1 << 20;
/// Edits kept for the next recovery copy beyond this size (bytes) make it a whole one.
const JOURNAL_MAX: usize = 8 << 20;

/// Lines longer than this (in bytes) are drawn without highlighting.
pub const LONG_LINE: usize = 20_000;
/// Recovery copies of buffers without a name have keys starting with this.
pub const SCRATCH: &str = "new:";
/// A view this many lines or more past the last line whose highlighter state is known is
/// highlighted from a fresh state a little above it (as vim's `syntax sync` does), while the
/// exact states are worked out when the editor is idle.
const SYNC_FAR: usize = 1500;
/// How far above such a view the fresh state starts.
const SYNC_BACK: usize = 150;

/// What kind of edit a change was, for merging typing into one undo step.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EditKind {
    /// A typed character (runs of them are undone together, word by word).
    Type,
    /// Backspace or Delete (runs are undone together).
    Erase,
    /// Anything else: paste, cut, indent, replace. Always its own step.
    Other,
}

/// One replacement in the text, with what it removed, so it can be undone.
#[derive(Clone, Debug)]
struct Change {
    /// Char index where it happened.
    at: usize,
    removed: String,
    inserted: String,
}

/// Changes undone and redone together.
#[derive(Clone, Debug)]
struct Group {
    /// Identifies the text state this group leads to.
    id: u64,
    kind: EditKind,
    changes: Vec<Change>,
    /// Cursor and selection anchor before and after.
    before: (usize, Option<usize>),
    after: (usize, Option<usize>),
}

pub struct Buffer {
    pub rope: Rope,
    /// Where it is saved; `None` for a new buffer without a name yet.
    pub path: Option<VPath>,
    /// The file had CRLF line breaks: the rope holds LF, saving writes CRLF again.
    pub crlf: bool,
    /// The content hash of the file as last read or written, to notice changes made by
    /// someone else before saving over them. `None` for a file that did not exist.
    pub disk_hash: Option<blake3::Hash>,
    /// Char index of the cursor.
    cursor: usize,
    /// The other end of the selection, if any.
    anchor: Option<usize>,
    /// The display column that up/down movement tries to keep.
    want_col: Option<usize>,
    undo: Vec<Group>,
    redo: Vec<Group>,
    next_id: u64,
    /// The id of the text state now (0: as loaded).
    state: u64,
    /// The id of the text state last saved (or loaded).
    saved: u64,
    /// The text state last written as a recovery copy (`saved` when none is needed).
    pub recovered: u64,
    /// The store holds a recovery copy for this file that is not this buffer's (one kept
    /// for later, or another running editor's): it is left alone, and none is written.
    pub copy_blocked: bool,
    /// The key of this buffer's recovery copy while it has no name (`new:…`).
    scratch_key: String,
    /// The edits since the last recovery copy, in order; `None` when the next copy must be
    /// written whole (none was written, or too much changed).
    journal: Option<Vec<Step>>,
    /// The size of `journal`'s steps.
    journal_bytes: usize,
    /// The size of the steps the stored copy holds on top of its text.
    copy_steps: usize,
    /// The first visible line and display column.
    pub top: usize,
    pub left: usize,
    pub highlighter: Highlighter,
    /// How the text is indented, and how wide its tabs are drawn.
    pub indent: super::indent::Style,
    /// The highlighter's state at the start of line i, for i < states.len().
    states: Vec<LineState>,
    /// The view is far below the known states and drawn from approximate ones meanwhile.
    syncing: bool,
    /// The last approximate state worked out, for the start of this line.
    approximate: Option<(usize, LineState)>,
}

/// Whether every char of `text` is printable ASCII: one column each, so display columns
/// and byte offsets are the same.
pub fn is_simple(text: &str) -> bool {
    text.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// Tab stops every `tab` columns; control characters show as `^X` (two columns).
pub fn char_width(c: char, col: usize, tab: usize) -> usize {
    match c {
        '\t' => tab - col % tab,
        c if (c as u32) < 0x20 || c == '\u{7f}' => 2,
        c => c.width().unwrap_or(0),
    }
}

impl Buffer {
    pub fn new(text: &str, path: Option<VPath>, highlighter: Highlighter) -> Buffer {
        // CRLF when every line break is one; a file that mixes them is kept as it is (its
        // carriage returns show as ^M).
        let breaks = memchr::memchr_iter(b'\n', text.as_bytes()).count();
        let crlf = breaks > 0 && text.matches("\r\n").count() == breaks;
        let rope = if crlf {
            Rope::from_str(&text.replace("\r\n", "\n"))
        } else {
            Rope::from_str(text)
        };
        let start = highlighter.start();
        Buffer {
            rope,
            path,
            crlf,
            disk_hash: None,
            cursor: 0,
            anchor: None,
            want_col: None,
            undo: Vec::new(),
            redo: Vec::new(),
            next_id: 1,
            state: 0,
            saved: 0,
            recovered: 0,
            copy_blocked: false,
            scratch_key: {
                static NEXT: std::sync::atomic::AtomicUsize =
                    std::sync::atomic::AtomicUsize::new(0);
                let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                format!(
                    "{SCRATCH}{}-{}-{n}",
                    crate::store::now_ms(),
                    std::process::id()
                )
            },
            journal: None,
            journal_bytes: 0,
            copy_steps: 0,
            top: 0,
            left: 0,
            highlighter,
            indent: super::indent::Style {
                tabs: false,
                size: 4,
                tab_width: 4,
            },
            states: vec![start],
            syncing: false,
            approximate: None,
        }
    }

    /// Gives the buffer another file to be saved as (Save as): its highlighting follows
    /// the new name, and nothing is known of what that file holds.
    pub fn rename(&mut self, path: VPath, highlighter: Highlighter) {
        self.path = Some(path);
        self.disk_hash = None;
        self.copy_blocked = false;
        // Its copy will be under the new name.
        self.journal = None;
        self.reset_highlighter(highlighter);
    }

    pub fn reset_highlighter(&mut self, highlighter: Highlighter) {
        self.states = vec![highlighter.start()];
        self.approximate = None;
        self.highlighter = highlighter;
    }

    /// The text as it is saved (with CRLF line breaks if the file had them).
    pub fn contents(&self) -> String {
        let text = self.rope.to_string();
        if self.crlf {
            text.replace('\n', "\r\n")
        } else {
            text
        }
    }

    pub fn modified(&self) -> bool {
        self.state != self.saved
    }

    /// Marks the text as saved.
    pub fn mark_saved(&mut self) {
        self.saved = self.state;
        self.mark_recovered();
    }

    /// Whether the text changed since the last recovery copy.
    pub fn needs_recovery_copy(&self) -> bool {
        self.recovered != self.state
    }

    /// Notes that a recovery copy of the text now exists (or is no longer needed), written
    /// in a way this buffer cannot add to: the next one is written whole.
    pub fn mark_recovered(&mut self) {
        self.recovered = self.state;
        self.journal = None;
        self.journal_bytes = 0;
    }

    /// The edits to add to the stored recovery copy, when adding them is the way to keep it:
    /// `None` when the next copy should be written whole (a small text, no copy to add to,
    /// or more edits on top of it than the text is worth).
    pub fn copy_steps(&self) -> Option<&[Step]> {
        let journal = self.journal.as_deref()?;
        let size = self.rope.len_bytes();
        let piled = self.copy_steps + self.journal_bytes;
        (size > WHOLE_COPY && piled < size / 2).then_some(journal)
    }

    /// Notes that a recovery copy was written: whole, or by adding [`Buffer::copy_steps`].
    pub fn copy_written(&mut self, whole: bool) {
        self.recovered = self.state;
        self.copy_steps = if whole {
            0
        } else {
            self.copy_steps + self.journal_bytes
        };
        self.journal = Some(Vec::new());
        self.journal_bytes = 0;
    }

    /// Notes that the buffer's recovery copy was dropped: the next one is written whole.
    pub fn copy_dropped(&mut self) {
        self.mark_recovered();
    }

    /// The one way the text changes: `n` chars at `at` replaced by `text`, noted for the
    /// next recovery copy and the highlighter.
    fn splice(&mut self, at: usize, n: usize, text: &str) {
        self.invalidate_from(at);
        if n > 0 {
            self.rope.remove(at..at + n);
        }
        if !text.is_empty() {
            self.rope.insert(at, text);
        }
        let Some(journal) = self.journal.as_mut() else {
            return;
        };
        self.journal_bytes += text.len() + 24;
        if self.journal_bytes > JOURNAL_MAX {
            self.journal = None;
            self.journal_bytes = 0;
            return;
        }
        // Typing runs on from where the last insertion ended: one step.
        if let Some(last) = journal.last_mut() {
            if n == 0 && last.at + last.inserted.chars().count() == at {
                last.inserted.push_str(text);
                self.journal_bytes -= 24;
                return;
            }
        }
        journal.push(Step {
            at,
            removed: n,
            inserted: text.to_string(),
        });
    }

    /// The key of this buffer's recovery copy: its path, or a `new:…` key while it has no
    /// name.
    pub fn copy_key(&self) -> String {
        self.path
            .as_ref()
            .map_or_else(|| self.scratch_key.clone(), ToString::to_string)
    }

    /// The key its copy had while it had no name.
    pub fn scratch_key(&self) -> &str {
        &self.scratch_key
    }

    pub fn name(&self) -> String {
        self.path
            .as_ref()
            .map_or_else(|| "[new]".to_string(), ToString::to_string)
    }

    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// The other end of the selection, if any.
    pub fn anchor(&self) -> Option<usize> {
        self.anchor
    }

    /// Puts the cursor and selection back where they were (within the text as it is).
    pub fn restore_position(&mut self, cursor: usize, anchor: Option<usize>) {
        let len = self.rope.len_chars();
        self.cursor = cursor.min(len);
        self.anchor = anchor.map(|a| a.min(len));
        self.want_col = None;
    }

    pub fn line_count(&self) -> usize {
        self.rope.len_lines()
    }

    /// Line and char column of the cursor (both from 0).
    pub fn cursor_line_col(&self) -> (usize, usize) {
        let line = self.rope.char_to_line(self.cursor);
        (line, self.cursor - self.rope.line_to_char(line))
    }

    /// The text of a line without its line break.
    pub fn line_text(&self, line: usize) -> String {
        let mut s = self.rope.line(line).to_string();
        if s.ends_with('\n') {
            s.pop();
        }
        s
    }

    /// Number of chars in a line, without its line break.
    pub fn line_len(&self, line: usize) -> usize {
        let l = self.rope.line(line);
        let n = l.len_chars();
        if n > 0 && l.char(n - 1) == '\n' {
            n - 1
        } else {
            n
        }
    }

    /// The display column of a char column in a line.
    pub fn display_col(&self, line: usize, col: usize, tab: usize) -> usize {
        let l = self.rope.line(line);
        let before = l.slice(..col.min(l.len_chars()));
        // Plain ASCII (most code, and long minified lines): one column per char.
        if before.chunks().all(is_simple) {
            return before.len_chars();
        }
        let mut w = 0;
        for c in before.chars() {
            w += char_width(c, w, tab);
        }
        w
    }

    /// The char column at or before display column `target` in a line.
    pub fn col_at_display(&self, line: usize, target: usize, tab: usize) -> usize {
        let mut w = 0;
        let len = self.line_len(line);
        for (i, c) in self.rope.line(line).chars().take(len).enumerate() {
            let cw = char_width(c, w, tab);
            if w + cw > target {
                return i;
            }
            w += cw;
        }
        len
    }

    // ----- selection -----

    /// The selected char range, if any and not empty.
    pub fn selection(&self) -> Option<Range<usize>> {
        let a = self.anchor?;
        (a != self.cursor).then(|| a.min(self.cursor)..a.max(self.cursor))
    }

    pub fn selected_text(&self) -> Option<String> {
        self.selection().map(|r| self.rope.slice(r).to_string())
    }

    pub fn clear_selection(&mut self) {
        self.anchor = None;
    }

    pub fn select_all(&mut self) {
        self.anchor = Some(0);
        self.cursor = self.rope.len_chars();
        self.want_col = None;
    }

    /// Moves the cursor to a char index; with `select`, extends the selection to it.
    pub fn move_to(&mut self, pos: usize, select: bool) {
        let pos = pos.min(self.rope.len_chars());
        if select {
            if self.anchor.is_none() {
                self.anchor = Some(self.cursor);
            }
        } else {
            self.anchor = None;
        }
        self.cursor = pos;
    }

    /// Moves to a line and char column (clamped), forgetting the preferred column.
    pub fn goto(&mut self, line: usize, col: usize, select: bool) {
        let line = line.min(self.line_count() - 1);
        let col = col.min(self.line_len(line));
        self.move_to(self.rope.line_to_char(line) + col, select);
        self.want_col = None;
    }

    // ----- movement -----

    /// Whether `c` continues the character before it on screen (a combining mark, a
    /// zero-width joiner or a variation selector), so the cursor never stops before it.
    fn continues(c: char) -> bool {
        c != '\n' && (c as u32) >= 0x20 && c.width() == Some(0)
    }

    pub fn left(&mut self, select: bool) {
        if !select {
            if let Some(r) = self.selection() {
                self.move_to(r.start, false);
                self.want_col = None;
                return;
            }
        }
        let mut p = self.cursor;
        while p > 0 {
            p -= 1;
            if !Self::continues(self.rope.char(p)) {
                break;
            }
        }
        self.move_to(p, select);
        self.want_col = None;
    }

    pub fn right(&mut self, select: bool) {
        if !select {
            if let Some(r) = self.selection() {
                self.move_to(r.end, false);
                self.want_col = None;
                return;
            }
        }
        let len = self.rope.len_chars();
        let mut p = self.cursor;
        if p < len {
            p += 1;
            while p < len && Self::continues(self.rope.char(p)) {
                p += 1;
            }
        }
        self.move_to(p, select);
        self.want_col = None;
    }

    /// Moves `delta` lines up (negative) or down, keeping the display column.
    pub fn vertical(&mut self, delta: isize, select: bool, tab: usize) {
        let (line, col) = self.cursor_line_col();
        let want = self
            .want_col
            .unwrap_or_else(|| self.display_col(line, col, tab));
        let last = self.line_count() - 1;
        let target = line.saturating_add_signed(delta).min(last);
        if target == line {
            // At the first or last line, go to its start or end, like most editors.
            let end = if delta < 0 {
                self.rope.line_to_char(line)
            } else {
                self.rope.line_to_char(line) + self.line_len(line)
            };
            self.move_to(end, select);
        } else {
            let c = self.col_at_display(target, want, tab);
            self.move_to(self.rope.line_to_char(target) + c, select);
        }
        self.want_col = Some(want);
    }

    /// Home: to the first non-blank character, or to column 0 if already there.
    pub fn home(&mut self, select: bool) {
        let (line, col) = self.cursor_line_col();
        let indent = self
            .rope
            .line(line)
            .chars()
            .take_while(|c| *c == ' ' || *c == '\t')
            .count()
            .min(self.line_len(line));
        let target = if col == indent { 0 } else { indent };
        self.move_to(self.rope.line_to_char(line) + target, select);
        self.want_col = None;
    }

    pub fn end(&mut self, select: bool) {
        let (line, _) = self.cursor_line_col();
        self.move_to(self.rope.line_to_char(line) + self.line_len(line), select);
        self.want_col = None;
    }

    fn is_word(c: char) -> bool {
        c.is_alphanumeric() || c == '_'
    }

    /// To the start of the previous word.
    pub fn word_left(&mut self, select: bool) {
        let mut p = self.cursor;
        while p > 0 && !Self::is_word(self.rope.char(p - 1)) {
            p -= 1;
        }
        while p > 0 && Self::is_word(self.rope.char(p - 1)) {
            p -= 1;
        }
        self.move_to(p, select);
        self.want_col = None;
    }

    /// To the end of the next word.
    pub fn word_right(&mut self, select: bool) {
        let len = self.rope.len_chars();
        let mut p = self.cursor;
        while p < len && !Self::is_word(self.rope.char(p)) {
            p += 1;
        }
        while p < len && Self::is_word(self.rope.char(p)) {
            p += 1;
        }
        self.move_to(p, select);
        self.want_col = None;
    }

    // ----- editing -----

    /// Replaces a char range with `text` as one change, merged into the previous undo step
    /// when both are typing (or both erasing) at the same place. Returns the char index
    /// after the inserted text.
    pub fn replace(&mut self, range: Range<usize>, text: &str, kind: EditKind) -> usize {
        let before = (self.cursor, self.anchor);
        let at = range.start;
        let removed = self.rope.slice(range.clone()).to_string();
        self.splice(at, range.len(), text);
        let end = at + text.chars().count();
        let change = Change {
            at,
            removed,
            inserted: text.to_string(),
        };
        self.redo.clear();
        let merge = match (self.undo.last(), kind) {
            (Some(g), EditKind::Type) if g.kind == EditKind::Type && g.id == self.state => {
                let last = g.changes.last().expect("a group has changes");
                let contiguous = last.at + last.inserted.chars().count() == at;
                // A new word (or line) starts a new undo step.
                let word_break = text.starts_with(char::is_whitespace)
                    && !last.inserted.ends_with(char::is_whitespace);
                contiguous && !word_break && !text.contains('\n')
            }
            (Some(g), EditKind::Erase) if g.kind == EditKind::Erase && g.id == self.state => {
                let last = g.changes.last().expect("a group has changes");
                // Backspace runs end where the last one started; Delete runs stay put.
                last.at == at + change.removed.chars().count() || last.at == at
            }
            _ => false,
        };
        self.cursor = end;
        self.anchor = None;
        self.want_col = None;
        if merge {
            // The text is in a new state: the step gets a new id, so a save or a recovery
            // copy of the state before it no longer counts as this one.
            let id = self.next_id;
            self.next_id += 1;
            let g = self.undo.last_mut().expect("checked above");
            g.changes.push(change);
            g.after = (self.cursor, None);
            g.id = id;
            self.state = id;
        } else {
            let id = self.next_id;
            self.next_id += 1;
            self.undo.push(Group {
                id,
                kind,
                changes: vec![change],
                before,
                after: (self.cursor, None),
            });
            self.state = id;
        }
        end
    }

    /// Types text at the cursor, replacing the selection.
    pub fn insert(&mut self, text: &str, kind: EditKind) {
        let range = self.selection().unwrap_or(self.cursor..self.cursor);
        self.replace(range, text, kind);
    }

    /// Backspace: deletes the selection or the character before the cursor (with the marks
    /// that combine with it).
    pub fn backspace(&mut self) {
        if let Some(r) = self.selection() {
            self.replace(r, "", EditKind::Other);
            return;
        }
        if self.cursor == 0 {
            return;
        }
        let end = self.cursor;
        self.left(false);
        let start = self.cursor;
        self.cursor = end;
        self.replace(start..end, "", EditKind::Erase);
        self.cursor = start;
        self.fix_last_after();
    }

    /// Delete: deletes the selection or the character under the cursor.
    pub fn delete(&mut self) {
        if let Some(r) = self.selection() {
            self.replace(r, "", EditKind::Other);
            return;
        }
        let start = self.cursor;
        self.right(false);
        let end = self.cursor;
        if end > start {
            self.replace(start..end, "", EditKind::Erase);
        }
    }

    fn fix_last_after(&mut self) {
        if let Some(g) = self.undo.last_mut() {
            g.after = (self.cursor, None);
        }
    }

    /// Enter: a line break, then the current line's indentation.
    pub fn newline(&mut self) {
        let (line, _) = self.cursor_line_col();
        let indent: String = self
            .rope
            .line(line)
            .chars()
            .take_while(|c| *c == ' ' || *c == '\t')
            .collect();
        let start = self.selection().map_or(self.cursor, |r| r.start);
        let line_start = self.rope.line_to_char(line);
        // Only as much indentation as stands before the cursor.
        let keep: String = indent
            .chars()
            .take(start.saturating_sub(line_start))
            .collect();
        self.insert(&format!("\n{keep}"), EditKind::Other);
    }

    /// Lines the selection (or the cursor) touches.
    fn touched_lines(&self) -> Range<usize> {
        match self.selection() {
            Some(r) => {
                let first = self.rope.char_to_line(r.start);
                let mut last = self.rope.char_to_line(r.end);
                // A selection ending at the start of a line does not touch it.
                if last > first && self.rope.line_to_char(last) == r.end {
                    last -= 1;
                }
                first..last + 1
            }
            None => {
                let l = self.rope.char_to_line(self.cursor);
                l..l + 1
            }
        }
    }

    /// Tab: with a selection over lines, indents them one level; otherwise inserts one
    /// level (a tab, or spaces up to the next stop) in the file's own indentation.
    pub fn indent(&mut self) {
        let style = self.indent;
        let lines = self.touched_lines();
        if self.selection().is_some() && lines.len() > 1 {
            let unit = style.unit(0);
            self.edit_lines(lines, |_| Some((0, 0, unit.clone())));
            return;
        }
        let (line, col) = self.cursor_line_col();
        let dc = self.display_col(line, col, style.tab_width);
        self.insert(&style.unit(dc), EditKind::Other);
    }

    /// Shift-Tab: removes one level of indentation (a tab, or up to one level of spaces)
    /// from the touched lines.
    pub fn dedent(&mut self) {
        let size = self.indent.size;
        let lines = self.touched_lines();
        let rope = self.rope.clone();
        self.edit_lines(lines, |l| {
            let line = rope.line(l);
            let n = if line.chars().next() == Some('\t') {
                1
            } else {
                line.chars().take(size).take_while(|c| *c == ' ').count()
            };
            (n > 0).then(|| (0, n, String::new()))
        });
    }

    /// Applies per-line edits (column from, chars to remove, text to insert) as one undo
    /// step, keeping the touched lines selected.
    fn edit_lines(
        &mut self,
        lines: Range<usize>,
        mut f: impl FnMut(usize) -> Option<(usize, usize, String)>,
    ) {
        let before = (self.cursor, self.anchor);
        let mut changes = Vec::new();
        for l in lines.clone() {
            if let Some((col, n, text)) = f(l) {
                let at = self.rope.line_to_char(l) + col;
                let removed = self.rope.slice(at..at + n).to_string();
                self.splice(at, n, &text);
                changes.push(Change {
                    at,
                    removed,
                    inserted: text,
                });
            }
        }
        if changes.is_empty() {
            return;
        }
        let start = self.rope.line_to_char(lines.start);
        let end_line = lines.end - 1;
        let end = self.rope.line_to_char(end_line) + self.line_len(end_line);
        self.anchor = Some(start);
        self.cursor = end;
        self.redo.clear();
        let id = self.next_id;
        self.next_id += 1;
        self.undo.push(Group {
            id,
            kind: EditKind::Other,
            changes,
            before,
            after: (self.cursor, self.anchor),
        });
        self.state = id;
    }

    /// Removes the touched lines whole, returning their text (for Ctrl-K).
    pub fn cut_lines(&mut self) -> String {
        let lines = self.touched_lines();
        let start = self.rope.line_to_char(lines.start);
        let end = if lines.end >= self.line_count() {
            self.rope.len_chars()
        } else {
            self.rope.line_to_char(lines.end)
        };
        let mut text = self.rope.slice(start..end).to_string();
        // The last line has no line break of its own: take the one before it.
        let (from, to) = if end == self.rope.len_chars() && start > 0 && !text.ends_with('\n') {
            (start - 1, end)
        } else {
            (start, end)
        };
        if from == to {
            return String::new();
        }
        if !text.ends_with('\n') {
            text.push('\n');
        }
        self.anchor = None;
        self.replace(from..to, "", EditKind::Other);
        self.cursor = from.min(self.rope.len_chars());
        if from < start {
            // Land at the start of the (new) last line.
            let l = self.rope.char_to_line(self.cursor);
            self.cursor = self.rope.line_to_char(l);
        }
        self.fix_last_after();
        text
    }

    fn apply_inverse(&mut self, g: &Group) {
        for c in g.changes.iter().rev() {
            self.splice(c.at, c.inserted.chars().count(), &c.removed);
        }
    }

    fn apply(&mut self, g: &Group) {
        for c in &g.changes {
            self.splice(c.at, c.removed.chars().count(), &c.inserted);
        }
    }

    /// Undoes the last step. Returns false when there is nothing to undo.
    pub fn undo(&mut self) -> bool {
        let Some(g) = self.undo.pop() else {
            return false;
        };
        self.apply_inverse(&g);
        (self.cursor, self.anchor) = g.before;
        self.state = self.undo.last().map_or(0, |g| g.id);
        self.want_col = None;
        self.redo.push(g);
        true
    }

    /// Redoes the last undone step. Returns false when there is nothing to redo.
    pub fn redo(&mut self) -> bool {
        let Some(g) = self.redo.pop() else {
            return false;
        };
        self.apply(&g);
        (self.cursor, self.anchor) = g.after;
        self.state = g.id;
        self.want_col = None;
        self.undo.push(g);
        true
    }

    /// Replaces the whole text as one undoable step (restoring a recovery copy).
    pub fn replace_all_text(&mut self, text: &str) {
        let len = self.rope.len_chars();
        let cursor = self.cursor;
        if self.crlf {
            self.replace(0..len, &text.replace("\r\n", "\n"), EditKind::Other);
        } else {
            self.replace(0..len, text, EditKind::Other);
        }
        self.cursor = cursor.min(self.rope.len_chars());
        self.fix_last_after();
    }

    // ----- search -----

    /// Matches of `query` in one line, as char columns. Smart case: a query with an
    /// upper-case letter matches case exactly, otherwise case is ignored.
    pub fn line_matches(&self, line: usize, query: &Query) -> Vec<Range<usize>> {
        if query.is_empty() {
            return Vec::new();
        }
        let slice = self.rope.line(line).slice(..self.line_len(line));
        match slice.as_str() {
            Some(text) => query.matches_in(text),
            None => query.matches_in(&slice.to_string()),
        }
    }

    /// The next match of `query` after (or, `back`wards, before) `from`, wrapping around.
    /// Returns the char range and whether the search wrapped.
    pub fn find(&self, query: &Query, from: usize, back: bool) -> Option<(Range<usize>, bool)> {
        let lines = self.line_count();
        let from_line = self.rope.char_to_line(from.min(self.rope.len_chars()));
        let in_line = |l: usize| {
            let base = self.rope.line_to_char(l);
            self.line_matches(l, query)
                .into_iter()
                .map(move |r| base + r.start..base + r.end)
        };
        if back {
            for step in 0..=lines {
                let l = (from_line + lines * 2 - step) % lines;
                let wrapped = step > from_line;
                let found = in_line(l).rfind(|r| wrapped || step > 0 || r.start < from);
                if let Some(r) = found {
                    return Some((r, wrapped));
                }
            }
        } else {
            for step in 0..=lines {
                let l = (from_line + step) % lines;
                let wrapped = from_line + step >= lines;
                let found = in_line(l).find(|r| wrapped || step > 0 || r.start >= from);
                if let Some(r) = found {
                    return Some((r, wrapped));
                }
            }
        }
        None
    }

    /// Selects a char range (a search match), cursor at its end.
    pub fn select(&mut self, r: Range<usize>) {
        self.anchor = Some(r.start);
        self.cursor = r.end;
        self.want_col = None;
    }

    // ----- highlighting -----

    /// Forgets the highlighter states after the line holding char `at`.
    fn invalidate_from(&mut self, at: usize) {
        let line = self.rope.char_to_line(at.min(self.rope.len_chars()));
        self.states.truncate(line + 1);
        if self.approximate.as_ref().is_some_and(|(l, _)| *l > line) {
            self.approximate = None;
        }
    }

    /// Number of lines whose start state is known.
    pub fn highlighted_lines(&self) -> usize {
        self.states.len()
    }

    /// The highlighter's state for drawing from `line`: the exact one when it is known or
    /// near, otherwise one worked out from a fresh start [`SYNC_BACK`] lines above (right for
    /// nearly all code; the exact one replaces it once [`Buffer::extend_states`] gets there).
    pub fn view_state(
        &mut self,
        line: usize,
        theme: &crate::theme::Theme,
        base: crate::theme::Style,
    ) -> LineState {
        if line < self.states.len() {
            return self.states[line].clone();
        }
        if !self.view_is_approximate(line) {
            return self.state_at(line, theme, base);
        }
        // Until the exact state gets here, the view is drawn from a nearby fresh one.
        self.syncing = true;
        if let Some((l, st)) = &self.approximate {
            if *l == line {
                return st.clone();
            }
        }
        let mut st = self.highlighter.start();
        for l in line - SYNC_BACK..line {
            let text = self.line_text(l);
            if text.len() <= LONG_LINE {
                self.highlighter.line(&mut st, &text, theme, base);
            }
        }
        self.approximate = Some((line, st.clone()));
        st
    }

    /// Whether drawing from `line` uses an approximate state.
    pub fn view_is_approximate(&self, line: usize) -> bool {
        // Within SYNC_BACK lines of the known states, working them out is as cheap as the
        // approximation.
        line >= self.states.len() + SYNC_BACK
            && (self.syncing || line >= self.states.len() + SYNC_FAR)
    }

    /// Works out the exact states of up to `lines` more lines, no further than `until`.
    pub fn extend_states(
        &mut self,
        lines: usize,
        until: usize,
        theme: &crate::theme::Theme,
        base: crate::theme::Style,
    ) {
        let target = (self.states.len() - 1 + lines).min(until);
        let _ = self.state_at(target, theme, base);
        if self.states.len() > until {
            self.syncing = false;
        }
    }

    /// The highlighter's state at the start of `line`, computing the states from the last
    /// known one on (only as far as asked).
    pub fn state_at(
        &mut self,
        line: usize,
        theme: &crate::theme::Theme,
        base: crate::theme::Style,
    ) -> LineState {
        while self.states.len() <= line {
            let l = self.states.len() - 1;
            let mut st = self.states[l].clone();
            let text = self.line_text(l);
            // Very long lines (minified code) are not highlighted, and leave the state as
            // it was.
            if text.len() <= LONG_LINE {
                self.highlighter.line(&mut st, &text, theme, base);
            }
            self.states.push(st);
        }
        self.states[line].clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::theme::{Style, Theme};

    fn theme() -> Theme {
        crate::theme::load_builtin("neon").expect("neon")
    }

    fn buf(text: &str) -> Buffer {
        Buffer::new(text, None, Highlighter::for_lang("text", &theme()))
    }

    #[test]
    fn typing_is_undone_word_by_word_and_redone() {
        let mut b = buf("");
        for c in "hello world".chars() {
            b.insert(&c.to_string(), EditKind::Type);
        }
        assert_eq!(b.rope.to_string(), "hello world");
        assert!(b.modified());
        assert!(b.undo());
        assert_eq!(b.rope.to_string(), "hello");
        assert!(b.undo());
        assert_eq!(b.rope.to_string(), "");
        assert!(!b.modified(), "back to the loaded text");
        assert!(!b.undo());
        assert!(b.redo());
        assert!(b.redo());
        assert_eq!(b.rope.to_string(), "hello world");
        assert_eq!(b.cursor(), 11);
        assert!(!b.redo());
    }

    #[test]
    fn modified_follows_undo_past_and_back_to_the_save() {
        let mut b = buf("a");
        b.move_to(1, false);
        b.insert("b", EditKind::Other);
        b.mark_saved();
        assert!(!b.modified());
        b.insert("c", EditKind::Other);
        assert!(b.modified());
        b.undo();
        assert!(!b.modified());
        b.undo();
        assert!(b.modified(), "before the save");
        b.redo();
        assert!(!b.modified());
    }

    #[test]
    fn backspace_and_delete_runs_are_one_step_and_respect_combining_marks() {
        let mut b = buf("cafe\u{301} ok");
        b.move_to(5, false); // after the combining acute
        b.backspace();
        assert_eq!(b.rope.to_string(), "caf ok", "e and its accent go together");
        b.backspace();
        b.backspace();
        assert_eq!(b.rope.to_string(), "c ok");
        b.undo();
        assert_eq!(b.rope.to_string(), "cafe\u{301} ok");
        b.move_to(0, false);
        b.delete();
        b.delete();
        assert_eq!(b.rope.to_string(), "fe\u{301} ok");
        b.undo();
        assert_eq!(b.rope.to_string(), "cafe\u{301} ok");
    }

    #[test]
    fn newline_keeps_indentation_and_tab_indents_selected_lines() {
        let mut b = buf("    let x = 1;");
        b.end(false);
        b.newline();
        b.insert("y", EditKind::Type);
        assert_eq!(b.rope.to_string(), "    let x = 1;\n    y");
        b.select_all();
        b.indent();
        assert_eq!(b.rope.to_string(), "        let x = 1;\n        y");
        b.dedent();
        b.dedent();
        assert_eq!(b.rope.to_string(), "let x = 1;\ny");
        b.undo();
        b.undo();
        b.undo();
        assert_eq!(b.rope.to_string(), "    let x = 1;\n    y");
    }

    #[test]
    fn tab_inserts_spaces_to_the_next_stop() {
        let mut b = buf("ab");
        b.move_to(2, false);
        b.indent();
        assert_eq!(b.rope.to_string(), "ab  ");
    }

    #[test]
    fn a_tab_indented_file_gets_tabs() {
        let mut b = buf("all:\n\tcc -o x x.c");
        b.indent = super::super::indent::Style {
            tabs: true,
            size: 8,
            tab_width: 8,
        };
        b.move_to(b.rope.len_chars(), false);
        b.newline();
        b.indent();
        b.insert("strip x", EditKind::Type);
        assert_eq!(b.rope.to_string(), "all:\n\tcc -o x x.c\n\t\tstrip x");
        b.dedent();
        assert_eq!(b.rope.to_string(), "all:\n\tcc -o x x.c\n\tstrip x");
    }

    #[test]
    fn vertical_movement_keeps_the_display_column_over_tabs_and_wide_chars() {
        let mut b = buf("\tx\n日本語です\nab\nlonger line");
        b.goto(0, 1, false); // display column 4 (after the tab)
        b.vertical(1, false, 4);
        assert_eq!(
            b.cursor_line_col(),
            (1, 2),
            "column 4 is the third wide char"
        );
        b.vertical(1, false, 4);
        assert_eq!(b.cursor_line_col(), (2, 2), "clamped to the short line");
        b.vertical(1, false, 4);
        assert_eq!(b.cursor_line_col(), (3, 4), "back to column 4");
        b.vertical(1, false, 4);
        assert_eq!(b.cursor_line_col(), (3, 11), "past the last line: its end");
    }

    #[test]
    fn crlf_files_keep_their_line_breaks() {
        let b = buf("a\r\nb\r\n");
        assert_eq!(b.line_count(), 3);
        assert_eq!(b.line_text(0), "a");
        assert_eq!(b.contents(), "a\r\nb\r\n");
        let mixed = buf("a\r\nb\nc\r\n");
        assert!(!mixed.crlf);
        assert_eq!(
            mixed.contents(),
            "a\r\nb\nc\r\n",
            "mixed line breaks stay as they are"
        );
    }

    #[test]
    fn typing_after_a_save_or_an_undo_is_a_change() {
        let mut b = buf("");
        b.insert("a", EditKind::Type);
        b.insert("b", EditKind::Type);
        b.mark_saved();
        b.insert("c", EditKind::Type);
        assert!(
            b.modified(),
            "joined the step that was saved, still a change"
        );
        assert!(b.needs_recovery_copy());
        b.mark_recovered();
        b.insert("d", EditKind::Type);
        assert!(
            b.needs_recovery_copy(),
            "a copy of 'abc' is not one of 'abcd'"
        );
        b.undo();
        assert_eq!(b.rope.to_string(), "");
        assert!(b.modified());
    }

    #[test]
    fn cutting_a_line_of_an_empty_buffer_changes_nothing() {
        let mut b = buf("");
        assert_eq!(b.cut_lines(), "");
        assert!(!b.modified());
        assert!(!b.undo());
    }

    #[test]
    fn search_is_smart_case_and_wraps() {
        let b = buf("Foo foo\nbar FOO\n");
        let q = |t: &str| Query::new(t, false).expect("query");
        assert_eq!(b.find(&q("foo"), 0, false), Some((0..3, false)));
        assert_eq!(b.find(&q("foo"), 1, false), Some((4..7, false)));
        assert_eq!(b.find(&q("foo"), 5, false), Some((12..15, false)));
        assert_eq!(b.find(&q("foo"), 13, false), Some((0..3, true)));
        assert_eq!(b.find(&q("FOO"), 0, false), Some((12..15, false)));
        assert_eq!(b.find(&q("foo"), 4, true), Some((0..3, false)));
        assert_eq!(b.find(&q("foo"), 0, true), Some((12..15, true)));
        assert_eq!(b.find(&q("zzz"), 0, false), None);
    }

    #[test]
    fn cut_lines_takes_whole_lines() {
        let mut b = buf("one\ntwo\nthree");
        b.goto(1, 1, false);
        assert_eq!(b.cut_lines(), "two\n");
        assert_eq!(b.rope.to_string(), "one\nthree");
        b.goto(1, 2, false);
        assert_eq!(b.cut_lines(), "three\n");
        assert_eq!(b.rope.to_string(), "one");
        b.undo();
        b.undo();
        assert_eq!(b.rope.to_string(), "one\ntwo\nthree");
    }

    #[test]
    fn highlight_states_are_kept_only_up_to_the_edit() {
        let t = theme();
        let src = (0..100)
            .map(|i| format!("let x{i} = {i};\n"))
            .collect::<String>();
        let mut b = Buffer::new(&src, None, Highlighter::for_lang("rust", &t));
        let _ = b.state_at(80, &t, Style::default());
        assert_eq!(b.highlighted_lines(), 81);
        b.goto(40, 0, false);
        b.insert("/* ", EditKind::Other);
        assert_eq!(
            b.highlighted_lines(),
            41,
            "lines after the edit are forgotten"
        );
        let _ = b.state_at(50, &t, Style::default());
        assert_eq!(
            b.highlighted_lines(),
            51,
            "and recomputed only as far as needed"
        );
    }

    proptest::proptest! {
        #[test]
        fn undo_all_restores_and_redo_all_replays(
            start in "[a-c\\n é]{0,20}",
            ops in proptest::collection::vec((0u8..8, 0usize..40, "[a-c\\n ]{0,3}"), 0..40),
        ) {
            let mut b = buf(&start);
            let mut depth = 0usize;
            for (op, pos, text) in &ops {
                let len = b.rope.len_chars();
                b.move_to(pos % (len + 1), false);
                match op {
                    0 => b.insert(text, EditKind::Type),
                    1 => b.backspace(),
                    2 => b.delete(),
                    3 => b.newline(),
                    4 => { b.move_to((pos / 2) % (len + 1), true); b.indent(); }
                    5 => { b.move_to((pos / 3) % (len + 1), true); b.dedent(); }
                    6 => { b.cut_lines(); }
                    _ => { b.undo(); }
                }
            }
            let end = b.rope.to_string();
            while b.undo() {
                depth += 1;
            }
            proptest::prop_assert_eq!(b.rope.to_string(), start.clone());
            proptest::prop_assert!(!b.modified());
            for _ in 0..depth {
                b.redo();
            }
            proptest::prop_assert_eq!(b.rope.to_string(), end);
        }
    }
}
