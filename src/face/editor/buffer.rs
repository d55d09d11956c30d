//! One open file: its text in a rope, the cursor and selection, undo and redo, search, and
//! the highlighter's state at checkpoints every few lines (a bounded number of them, near
//! where the view has been).

use super::recovery::Step;
use super::search::Query;
use crate::highlight::{Highlighter, LineState};
use crate::vfs::VPath;
use ratatui::buffer::CellWidth;
use ropey::{Rope, RopeSlice};
use std::borrow::Cow;
use std::ops::Range;
use unicode_segmentation::{GraphemeCursor, GraphemeIncomplete, UnicodeSegmentation};
use unicode_width::UnicodeWidthChar;

/// Texts up to this size (bytes) always get whole recovery copies; bigger ones get the edits
/// since their last copy added to it.
const WHOLE_COPY: usize = 1 << 20;
/// Edits kept for the next recovery copy beyond this size (bytes) make it a whole one.
const JOURNAL_MAX: usize = 8 << 20;

/// Lines longer than this (in bytes) are drawn without highlighting.
pub const LONG_LINE: usize = 20_000;
/// Recovery copies of buffers without a name have keys starting with this.
pub use crate::recovery::SCRATCH;
/// A view this many lines or more below the nearest highlighter state taken as right is
/// drawn from a fresh state a little above it (as vim's `syntax sync` does), which idle time
/// then settles; nearer, the right state is worked out at once.
const SYNC_FAR: usize = 1500;
/// How far above such a view the fresh state starts.
const SYNC_BACK: usize = 150;
/// A state worked out from a fresh one at least this many lines above it (or from the start
/// of the text) is taken as right.
const SYNC_DEEP: usize = 2400;
/// How far above a far view idle work starts from a fresh state: twice [`SYNC_DEEP`], so
/// that the lines up to [`SYNC_DEEP`] above the view are right too.
const SYNC_MAX: usize = 2 * SYNC_DEEP;
/// The highlighter's state is kept at the start of every line that is a multiple of this
/// (and of the line the view starts at), so drawing a line highlights at most this many
/// lines above it.
const CHECKPOINT_EVERY: usize = 64;
/// At most this many checkpoints are kept (a syntect state is around a kilobyte).
const MAX_STATES: usize = 1024;

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
    /// The file started with a byte order mark (U+FEFF): it is kept out of the text (no
    /// cursor stop, no column) and written again when saving.
    pub bom: bool,
    /// The content hash of the file as last read or written, to notice changes made by
    /// someone else before saving over them. `None` for a file that did not exist.
    pub disk_hash: Option<blake3::Hash>,
    /// The file's modification time and size when last read, written or looked at, to
    /// notice cheaply that it changed on disk.
    pub disk_stamp: Option<(i64, u64)>,
    /// The file may not be written (its permissions have no write bit): saving asks first.
    pub readonly: bool,
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
    /// The highlighter's state at the start of some lines: checkpoints every
    /// [`CHECKPOINT_EVERY`] lines where it was worked out, and the lines syncs settled.
    /// Empty when the highlighter carries no state from line to line.
    states: std::collections::BTreeMap<usize, Kept>,
    /// The state at the start of the line the view was last drawn from.
    view: Option<(usize, Kept)>,
    /// A sync settling the view's state, under way.
    refine: Option<Refine>,
    /// The line the view was last drawn from: the checkpoints farthest from it go first.
    focus: usize,
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

/// The width of one grapheme cluster (an accented letter, an emoji sequence, a flag: what
/// is seen as one character) at display column `col`: a tab reaches the next stop, a
/// control character shows as `^X`, and anything else takes the columns the terminal gives
/// the whole cluster, as ratatui draws it (two for a ZWJ family or a flag, not the sum of
/// its parts).
pub fn cluster_width(g: &str, col: usize, tab: usize) -> usize {
    let mut chars = g.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c == '\t' || c.is_control() => char_width(c, col, tab),
        _ => usize::from(g.cell_width()),
    }
}

/// The grapheme clusters of a line's text with their byte offsets, as `graphemes(true)`
/// finds them, but without segmenting ASCII: an ASCII char followed by another (or by
/// nothing) is a cluster of its own.
pub fn clusters(text: &str) -> impl Iterator<Item = (usize, &str)> + '_ {
    let bytes = text.as_bytes();
    let mut at = 0;
    std::iter::from_fn(move || {
        let start = at;
        let b = *bytes.get(start)?;
        let next = bytes.get(start + 1);
        at = if b.is_ascii() && next.is_none_or(|n| n.is_ascii() && (b, *n) != (b'\r', b'\n')) {
            start + 1
        } else {
            // Segmenting can start afresh at a boundary.
            start + text[start..].graphemes(true).next().map_or(1, str::len)
        };
        Some((start, &text[start..at]))
    })
}

/// A line's text in pieces, with their byte offsets: runs of printable ASCII, each char a
/// one-column cluster of its own (`true`), and single grapheme clusters (`false`). Only
/// what is not plain ASCII is segmented, so a long line costs little more than a scan.
fn pieces(text: &str) -> impl Iterator<Item = (usize, &str, bool)> + '_ {
    let bytes = text.as_bytes();
    let mut at = 0;
    std::iter::from_fn(move || {
        let start = at;
        let rest = bytes.get(start..).filter(|r| !r.is_empty())?;
        let run = rest
            .iter()
            .take_while(|b| (0x20..0x7f).contains(*b))
            .count();
        // The run's last char starts a longer cluster when a mark (not ASCII) follows it.
        let plain = match rest.get(run) {
            Some(b) if !b.is_ascii() => run.saturating_sub(1),
            _ => run,
        };
        let piece = if plain > 0 {
            &text[start..start + plain]
        } else {
            clusters(&text[start..]).next()?.1
        };
        at = start + piece.len();
        Some((start, piece, plain > 0))
    })
}

/// The display width and the number of grapheme clusters of the clusters of `text` (a
/// line's) that start before char column `col`.
fn measure(text: &str, col: usize, tab: usize) -> (usize, usize) {
    let (mut c, mut w, mut n) = (0, 0, 0);
    for (_, piece, plain) in pieces(text) {
        if c >= col {
            break;
        }
        if plain {
            let k = piece.len().min(col - c);
            w += k;
            n += k;
            c += piece.len();
        } else {
            w += cluster_width(piece, w, tab);
            n += 1;
            c += piece.chars().count();
        }
    }
    (w, n)
}

/// Where drawing a line scrolled `left` columns starts: the byte, char and display column
/// of its first grapheme cluster that starts at or after display column `left` (a wide one
/// cut by the edge is not drawn).
pub fn scrolled(text: &str, left: usize, tab: usize) -> (usize, usize, usize) {
    let (mut c, mut w) = (0, 0);
    for (at, piece, plain) in pieces(text) {
        if w >= left {
            return (at, c, w);
        }
        if plain {
            if w + piece.len() > left {
                let k = left - w;
                return (at + k, c + k, left);
            }
            w += piece.len();
            c += piece.len();
        } else {
            w += cluster_width(piece, w, tab);
            c += piece.chars().count();
        }
    }
    (text.len(), c, w)
}

/// The grapheme cluster boundary after char `col` of `line` (a line's text without its
/// break), worked out from the chunks around it: the cost does not grow with the line.
fn next_boundary(line: RopeSlice, col: usize) -> usize {
    let len = line.len_chars();
    if col >= len {
        return len;
    }
    let at = line.char_to_byte(col);
    let mut gc = GraphemeCursor::new(at, line.len_bytes(), true);
    let (mut chunk, mut start, _, _) = line.chunk_at_byte(at);
    loop {
        match gc.next_boundary(chunk, start) {
            Ok(Some(b)) => return line.byte_to_char(b),
            Ok(None) => return len,
            Err(GraphemeIncomplete::NextChunk) => {
                start += chunk.len();
                chunk = line.chunk_at_byte(start).0;
            }
            Err(GraphemeIncomplete::PreContext(n)) => {
                let before = line.chunk_at_byte(n - 1).0;
                gc.provide_context(before, n - before.len());
            }
            Err(_) => return col + 1,
        }
    }
}

/// The grapheme cluster boundary before char `col` of `line` (as [`next_boundary`]).
fn prev_boundary(line: RopeSlice, col: usize) -> usize {
    if col == 0 {
        return 0;
    }
    let at = line.char_to_byte(col.min(line.len_chars()));
    let mut gc = GraphemeCursor::new(at, line.len_bytes(), true);
    let (mut chunk, mut start, _, _) = line.chunk_at_byte(at);
    loop {
        match gc.prev_boundary(chunk, start) {
            Ok(Some(b)) => return line.byte_to_char(b),
            Ok(None) => return 0,
            Err(GraphemeIncomplete::PrevChunk) => {
                (chunk, start, _, _) = line.chunk_at_byte(start - 1);
            }
            Err(GraphemeIncomplete::PreContext(n)) => {
                let before = line.chunk_at_byte(n - 1).0;
                gc.provide_context(before, n - before.len());
            }
            Err(_) => return col - 1,
        }
    }
}

impl Buffer {
    pub fn new(text: &str, path: Option<VPath>, highlighter: Highlighter) -> Buffer {
        let (text, bom) = match text.strip_prefix('\u{FEFF}') {
            Some(rest) => (rest, true),
            None => (text, false),
        };
        // CRLF when every line break is one; a file that mixes them is kept as it is (its
        // carriage returns show as ^M).
        let breaks = memchr::memchr_iter(b'\n', text.as_bytes()).count();
        let crlf = breaks > 0 && text.matches("\r\n").count() == breaks;
        let rope = if crlf {
            Rope::from_str(&text.replace("\r\n", "\n"))
        } else {
            Rope::from_str(text)
        };
        Buffer {
            rope,
            path,
            crlf,
            bom,
            disk_hash: None,
            disk_stamp: None,
            readonly: false,
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
            states: std::collections::BTreeMap::new(),
            view: None,
            refine: None,
            focus: 0,
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
        self.states.clear();
        self.view = None;
        self.refine = None;
        self.highlighter = highlighter;
    }

    /// The text as it is saved (with CRLF line breaks and the byte order mark if the file
    /// had them).
    pub fn contents(&self) -> String {
        let text = self.copy_text();
        if self.bom {
            format!("\u{FEFF}{text}")
        } else {
            text
        }
    }

    /// The text as a recovery copy holds it: as saved, but without the byte order mark,
    /// which stays with the buffer (and the file).
    pub fn copy_text(&self) -> String {
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

    /// A line's text without its line break.
    fn line_slice(&self, line: usize) -> RopeSlice<'_> {
        self.rope.line(line).slice(..self.line_len(line))
    }

    /// A line's text as far as needed to measure up to char column `col`: to the end of the
    /// grapheme cluster `col` falls inside (a cluster is measured whole).
    fn text_to(&self, line: usize, col: usize) -> Cow<'_, str> {
        let l = self.line_slice(line);
        let end = if col == 0 || col >= l.len_chars() {
            col.min(l.len_chars())
        } else {
            let next = next_boundary(l, col);
            if prev_boundary(l, next) == col {
                col
            } else {
                next
            }
        };
        l.slice(..end).into()
    }

    /// The display column of a char column in a line: the width of the grapheme clusters
    /// before it.
    pub fn display_col(&self, line: usize, col: usize, tab: usize) -> usize {
        let l = self.line_slice(line);
        let col = col.min(l.len_chars());
        // Plain ASCII (most code, and long minified lines): one column per char.
        if l.slice(..col).chunks().all(is_simple) {
            return col;
        }
        measure(&self.text_to(line, col), col, tab).0
    }

    /// The column the status bar shows for a char column in a line, from 0: the number of
    /// grapheme clusters (characters as seen) before it.
    pub fn cluster_col(&self, line: usize, col: usize) -> usize {
        let l = self.line_slice(line);
        let col = col.min(l.len_chars());
        if l.slice(..col).chunks().all(is_simple) {
            return col;
        }
        measure(&self.text_to(line, col), col, 8).1
    }

    /// The char column (a cluster's start) at or before display column `target` in a line.
    pub fn col_at_display(&self, line: usize, target: usize, tab: usize) -> usize {
        let l = self.line_slice(line);
        let len = l.len_chars();
        if l.chunks().all(is_simple) {
            return target.min(len);
        }
        let text: Cow<str> = l.into();
        let (mut w, mut col) = (0, 0);
        for (_, piece, plain) in pieces(&text) {
            if plain {
                if w + piece.len() > target {
                    return col + (target - w);
                }
                w += piece.len();
                col += piece.len();
            } else {
                let cw = cluster_width(piece, w, tab);
                if w + cw > target {
                    return col;
                }
                w += cw;
                col += piece.chars().count();
            }
        }
        len
    }

    /// The start of the grapheme cluster that char column `col` of a line falls inside (or
    /// `col` itself between two clusters).
    fn cluster_start(&self, line: usize, col: usize) -> usize {
        let l = self.line_slice(line);
        if col == 0 || col >= l.len_chars() {
            return col;
        }
        prev_boundary(l, next_boundary(l, col))
    }

    /// The cursor stop after char index `p`: the end of the grapheme cluster there, or the
    /// start of the next line after a line break.
    pub fn next_stop(&self, p: usize) -> usize {
        let len = self.rope.len_chars();
        if p >= len {
            return len;
        }
        let c = self.rope.char(p);
        // A line break, or ASCII followed by ASCII, ends there; only the rest needs
        // segmenting (within the line, so a CR before the line break stays one).
        if c == '\n' || (c.is_ascii() && (p + 1 == len || self.rope.char(p + 1).is_ascii())) {
            return p + 1;
        }
        let line = self.rope.char_to_line(p);
        let start = self.rope.line_to_char(line);
        start + next_boundary(self.line_slice(line), p - start)
    }

    /// The cursor stop before char index `p` (as [`Buffer::next_stop`]).
    pub fn prev_stop(&self, p: usize) -> usize {
        let p = p.min(self.rope.len_chars());
        if p == 0 {
            return 0;
        }
        let c = self.rope.char(p - 1);
        if c == '\n' || (c.is_ascii() && (p == 1 || self.rope.char(p - 2).is_ascii())) {
            return p - 1;
        }
        let line = self.rope.char_to_line(p);
        let start = self.rope.line_to_char(line);
        start + prev_boundary(self.line_slice(line), p - start)
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

    pub fn left(&mut self, select: bool) {
        if !select {
            if let Some(r) = self.selection() {
                self.move_to(r.start, false);
                self.want_col = None;
                return;
            }
        }
        // By grapheme cluster: an accented letter, an emoji sequence or a flag is one step.
        let p = self.prev_stop(self.cursor);
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
        let p = self.next_stop(self.cursor);
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
        // Not inside a cluster (a space with an accent on it).
        let indent = self.cluster_start(line, indent);
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

    /// To the start of the previous word (stepping by grapheme cluster, each a word
    /// character or not as its first char is).
    pub fn word_left(&mut self, select: bool) {
        let mut p = self.cursor;
        for word in [false, true] {
            while p > 0 {
                let q = self.prev_stop(p);
                if Self::is_word(self.rope.char(q)) != word {
                    break;
                }
                p = q;
            }
        }
        self.move_to(p, select);
        self.want_col = None;
    }

    /// To the end of the next word.
    pub fn word_right(&mut self, select: bool) {
        let len = self.rope.len_chars();
        let mut p = self.cursor;
        for word in [false, true] {
            while p < len && Self::is_word(self.rope.char(p)) == word {
                p = self.next_stop(p);
            }
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

    /// The id of the text state now: it changes with every edit, undo and redo.
    pub fn state(&self) -> u64 {
        self.state
    }

    /// Replaces several char ranges of the text (in order, not overlapping; each as the
    /// text stands before any of them) as one undo step, then puts the cursor and anchor at
    /// `to` (char indices in the new text). With `join`, when nothing else happened since
    /// the last step, the changes become part of it: a snippet and what is typed into its
    /// placeholders are undone together.
    pub fn replace_ranges(
        &mut self,
        edits: &[(Range<usize>, String)],
        join: bool,
        to: (usize, Option<usize>),
    ) {
        let before = (self.cursor, self.anchor);
        let mut changes = Vec::with_capacity(edits.len());
        // From the last to the first: each range still means what it meant.
        for (r, text) in edits.iter().rev() {
            let removed = self.rope.slice(r.clone()).to_string();
            self.splice(r.start, r.len(), text);
            changes.push(Change {
                at: r.start,
                removed,
                inserted: text.clone(),
            });
        }
        (self.cursor, self.anchor) = to;
        self.want_col = None;
        self.redo.clear();
        let id = self.next_id;
        self.next_id += 1;
        match self.undo.last_mut() {
            Some(g) if join && g.id == self.state => {
                g.changes.extend(changes);
                g.after = to;
                g.id = id;
            }
            _ => self.undo.push(Group {
                id,
                kind: EditKind::Other,
                changes,
                before,
                after: to,
            }),
        }
        self.state = id;
    }

    /// Types text at the cursor, replacing the selection.
    pub fn insert(&mut self, text: &str, kind: EditKind) {
        let range = self.selection().unwrap_or(self.cursor..self.cursor);
        self.replace(range, text, kind);
    }

    /// Backspace: deletes the selection or the character before the cursor: its whole
    /// grapheme cluster (a letter with its accents, an emoji sequence, a flag).
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

    /// Delete: deletes the selection or the character (grapheme cluster) under the cursor.
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

    /// Replaces the whole text as one undoable step (restoring a recovery copy: text as
    /// [`Buffer::copy_text`] gives it, so the byte order mark, if any, stays as it is).
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
        let never = std::sync::atomic::AtomicBool::new(false);
        super::search::find(&self.rope, query, from, back, &never)
    }

    /// Selects a char range (a search match), cursor at its end.
    pub fn select(&mut self, r: Range<usize>) {
        self.anchor = Some(r.start);
        self.cursor = r.end;
        self.want_col = None;
    }

    // ----- highlighting -----
    //
    // The highlighter's state at the start of a line depends on every line above it, and a
    // syntect state is large (a parser stack and a scope stack: around a kilobyte), so it is
    // kept only at checkpoints, every CHECKPOINT_EVERY lines, and for the line the view
    // starts at; a line is drawn by highlighting on from the nearest kept state above it. At
    // most MAX_STATES checkpoints are kept: past that, the one farthest from the view goes
    // (far states are the least likely to be wanted again, and getting one back costs a
    // walk of at most SYNC_FAR lines or a sync, as for a first visit), so memory stays the
    // same whatever the length of the file.
    //
    // Each kept state notes its origin: the line of the fresh state it was worked out from
    // (0 for the start of the text, where a fresh state is the exact one). It is what a walk
    // from a fresh state at that line gives, so two kept states of the same origin are on
    // one walk. A state with SYNC_DEEP lines or more above it back to its origin is taken as
    // right (only a comment or string open across more lines than that could be missed, as
    // with vim's `syntax sync minlines`). A view within SYNC_FAR lines below such a state is
    // drawn from it at once. One further away is drawn at once from a fresh state SYNC_BACK
    // lines above it, and idle time then walks from a fresh state SYNC_MAX lines above it,
    // stopping early where that walk agrees with the one the view was drawn from. Idle work
    // is thus bounded by the view, never by the length of the file: jumping to the end of a
    // large file does not walk the file.

    /// Forgets the highlighter states after the line holding char `at`.
    fn invalidate_from(&mut self, at: usize) {
        if self.states.is_empty() && self.view.is_none() && self.refine.is_none() {
            return;
        }
        let line = self.rope.char_to_line(at.min(self.rope.len_chars()));
        // The state at the start of a line depends only on the lines above it.
        drop(self.states.split_off(&(line + 1)));
        if self.view.as_ref().is_some_and(|(l, _)| *l > line) {
            self.view = None;
        }
        if self.refine.as_ref().is_some_and(|r| r.line > line) {
            self.refine = None;
        }
    }

    /// Number of highlighter states kept (checkpoints, the view's, a sync's under way).
    pub fn kept_states(&self) -> usize {
        self.states.len()
            + usize::from(self.view.is_some())
            + 2 * usize::from(self.refine.is_some())
    }

    /// The highlighter's state for drawing from `line`: a right one when one is kept near
    /// enough above, otherwise a guess from a fresh start [`SYNC_BACK`] lines above (right for
    /// nearly all code; [`Buffer::extend_states`] settles it when the editor is idle).
    pub fn view_state(&mut self, line: usize) -> LineState {
        if !self.highlighter.carries_state() {
            return self.highlighter.start();
        }
        self.focus = line;
        if let Some((l, k)) = &self.view {
            if *l == line && (deep(k.origin, line) || self.settled_start(line).is_none()) {
                return k.state.clone();
            }
        }
        let (mut at, mut state, mut origin) = self.start_for(line);
        self.view = None;
        self.walk(&mut at, &mut state, &mut origin, line, None);
        self.view = Some((
            line,
            Kept {
                state: state.clone(),
                origin,
            },
        ));
        self.trim();
        state
    }

    /// Whether drawing from `line` uses a guessed state: the view there was drawn from one
    /// not settled yet, or would be (it is far from every state taken as right).
    pub fn view_is_approximate(&self, line: usize) -> bool {
        if !self.highlighter.carries_state() {
            return false;
        }
        match &self.view {
            Some((l, k)) if *l == line => !deep(k.origin, line),
            _ => self.settled_start(line).is_none(),
        }
    }

    /// Does a slice of idle work, highlighting at most `lines` lines, towards settling the
    /// state the view at `until` is drawn from. Returns whether it was settled (and may have
    /// changed), so the view should be drawn again. Nothing is done once it is settled (or a
    /// right state is near enough): the work is at most [`SYNC_MAX`] lines, whatever the
    /// length of the text.
    pub fn extend_states(&mut self, lines: usize, until: usize) -> bool {
        if until >= self.line_count() || !self.view_is_approximate(until) {
            self.refine = None;
            return false;
        }
        // A sync under way for a line a little above the view settles the view too.
        let keep = self
            .refine
            .as_ref()
            .is_some_and(|r| r.line <= until && until - r.line <= SYNC_FAR);
        if !keep {
            let _ = self.view_state(until);
            if !self.view_is_approximate(until) {
                // A right state was near enough after all (a sync above got there).
                return true;
            }
            let Some((_, guess)) = self.view.clone() else {
                return false;
            };
            self.refine = Some(self.refine_for(until, guess));
        }
        let Some(mut r) = self.refine.take() else {
            return false;
        };
        let end = r.line.min(r.at + lines.max(1));
        let stop = r.guess.origin;
        if let Some(from) = self.walk(&mut r.at, &mut r.state, &mut r.origin, end, Some(stop)) {
            // The walk agreed with the guess's own at line `from`: from there down, the guess's
            // walk is this one, and its states are as right.
            for (_, k) in self.states.range_mut(from..=r.line) {
                if k.origin == stop {
                    k.origin = r.origin;
                }
            }
            r.guess.origin = r.origin;
            self.settle(r.line, r.guess);
            return true;
        }
        if r.at < r.line {
            self.refine = Some(r);
            self.trim();
            return false;
        }
        meet(&mut r.guess, &mut r.state, &mut r.origin);
        self.settle(
            r.line,
            Kept {
                state: r.state,
                origin: r.origin,
            },
        );
        true
    }

    /// Keeps the state a sync settled for the start of `line`: as a checkpoint, so the lines
    /// about it are drawn right at once after the view moves, and as the view's.
    fn settle(&mut self, line: usize, kept: Kept) {
        if let Some((l, k)) = self.view.as_mut() {
            if *l == line {
                *k = kept.clone();
            }
        }
        self.states.insert(line, kept);
        self.trim();
    }

    /// The nearest line at or above `line`, no more than [`SYNC_FAR`] lines up, from whose
    /// kept state `line` gets a state taken as right (the start of the text counts).
    fn settled_start(&self, line: usize) -> Option<usize> {
        let lo = line.saturating_sub(SYNC_FAR);
        let checkpoint = self
            .states
            .range(lo..=line)
            .rev()
            .find(|(_, k)| deep(k.origin, line))
            .map(|(l, _)| *l);
        let view = self
            .view
            .as_ref()
            .filter(|(l, k)| (lo..=line).contains(l) && deep(k.origin, line))
            .map(|(l, _)| *l);
        let top = (lo == 0).then_some(0);
        checkpoint.max(view).max(top)
    }

    /// Where to start highlighting to get the state at the start of `line`, the state there
    /// and its origin: a state within [`SYNC_FAR`] lines above that makes a right one, else
    /// any state kept that near, else a fresh state [`SYNC_BACK`] lines above.
    fn start_for(&self, line: usize) -> (usize, LineState, usize) {
        let kept_at = |at: usize| {
            let view = self.view.as_ref().filter(|(l, _)| *l == at).map(|(_, k)| k);
            [view, self.states.get(&at)].into_iter().flatten()
        };
        if let Some(at) = self.settled_start(line) {
            return match kept_at(at).find(|k| deep(k.origin, line)) {
                Some(k) => (at, k.state.clone(), k.origin),
                // Only the start of the text is right without a state kept.
                None => (at, self.highlighter.start(), 0),
            };
        }
        let lo = line.saturating_sub(SYNC_FAR);
        let checkpoint = self.states.range(lo..=line).next_back().map(|(l, _)| *l);
        let view = self
            .view
            .as_ref()
            .filter(|(l, _)| (lo..=line).contains(l))
            .map(|(l, _)| *l);
        if let Some(at) = checkpoint.max(view) {
            if let Some(k) = kept_at(at).min_by_key(|k| k.origin) {
                return (at, k.state.clone(), k.origin);
            }
        }
        let from = line.saturating_sub(SYNC_BACK);
        (from, self.highlighter.start(), from)
    }

    /// A sync of the state at the start of `line`, now the guess `guess`: a walk from a fresh
    /// state [`SYNC_MAX`] lines above it, or from a state kept nearer that is as right.
    fn refine_for(&self, line: usize, guess: Kept) -> Refine {
        let from = line.saturating_sub(SYNC_MAX);
        let kept = self
            .states
            .range(from..line)
            .rev()
            .find(|(_, k)| k.origin <= from)
            .map(|(l, k)| (*l, k.state.clone(), k.origin));
        let (at, state, origin) = kept.unwrap_or_else(|| (from, self.highlighter.start(), from));
        Refine {
            line,
            at,
            state,
            origin,
            guess,
        }
    }

    /// Highlights on from the start of line `*at` (in `state`, of origin `origin`) to the
    /// start of line `to`, keeping the state at each checkpoint passed and meeting the states
    /// kept on the way. Stops early where it agrees with a state of origin `stop`, from
    /// further up: returns that line.
    fn walk(
        &mut self,
        at: &mut usize,
        state: &mut LineState,
        origin: &mut usize,
        to: usize,
        stop: Option<usize>,
    ) -> Option<usize> {
        while *at < to.min(self.rope.len_lines()) {
            let slice = self.rope.line(*at);
            let text: std::borrow::Cow<'_, str> = slice.into();
            let text = text.strip_suffix('\n').unwrap_or(&text);
            // Very long lines (minified code) are not highlighted, and leave the state as it
            // was.
            if text.len() <= LONG_LINE {
                self.highlighter.advance(state, text);
            }
            *at += 1;
            let l = *at;
            let mut agreed = None;
            match self.states.get_mut(&l) {
                Some(k) => agreed = agreed.or(meet(k, state, origin)),
                None if l.is_multiple_of(CHECKPOINT_EVERY) => {
                    self.states.insert(
                        l,
                        Kept {
                            state: state.clone(),
                            origin: *origin,
                        },
                    );
                }
                None => {}
            }
            if let Some((vl, k)) = self.view.as_mut() {
                if *vl == l {
                    agreed = agreed.or(meet(k, state, origin));
                }
            }
            if stop.is_some() && agreed == stop {
                return Some(l);
            }
        }
        None
    }

    /// Drops the checkpoints farthest from the view while there are more than
    /// [`MAX_STATES`].
    fn trim(&mut self) {
        while self.states.len() > MAX_STATES {
            let (Some((&first, _)), Some((&last, _))) =
                (self.states.first_key_value(), self.states.last_key_value())
            else {
                return;
            };
            if self.focus.abs_diff(first) >= self.focus.abs_diff(last) {
                self.states.pop_first();
            } else {
                self.states.pop_last();
            }
        }
    }
}

/// Whether a state at the start of `line` worked out from a fresh one at line `origin` is
/// taken as right.
fn deep(origin: usize, line: usize) -> bool {
    origin == 0 || line - origin >= SYNC_DEEP
}

/// A highlighter state kept for the start of a line.
#[derive(Clone)]
struct Kept {
    state: LineState,
    /// The line of the fresh state it was worked out from (0: the start of the text).
    origin: usize,
}

/// A sync under way: settling the state at the start of a line the view is drawn from.
struct Refine {
    /// The line whose start state is being settled.
    line: usize,
    /// The next line to highlight, the state at its start and its origin.
    at: usize,
    state: LineState,
    origin: usize,
    /// The state the view at `line` was drawn from.
    guess: Kept,
}

/// A walk (at `state`, of origin `origin`) meets the state kept for the same line. Walks of
/// the same origin are the same; otherwise the one from further up is the better, and both
/// go on with it; when they agree, the state is as right as the one from further up, and
/// the kept one's origin before is returned if that was the walk's.
fn meet(kept: &mut Kept, state: &mut LineState, origin: &mut usize) -> Option<usize> {
    if kept.origin == *origin {
        return None;
    }
    let agree = kept.state == *state;
    if *origin < kept.origin {
        let was = std::mem::replace(&mut kept.origin, *origin);
        if agree {
            return Some(was);
        }
        kept.state = state.clone();
    } else {
        *origin = kept.origin;
        if !agree {
            *state = kept.state.clone();
        }
    }
    None
}

/// Editing commands beyond typing: words, lines, comments and pairs.
impl Buffer {
    /// Deletes the word before (`back`) or after the cursor, or the selection; one undo
    /// step per word.
    pub fn delete_word(&mut self, back: bool) {
        if let Some(r) = self.selection() {
            self.replace(r, "", EditKind::Other);
            return;
        }
        let from = self.cursor;
        if back {
            self.word_left(false);
        } else {
            self.word_right(false);
        }
        let (start, end) = (self.cursor.min(from), self.cursor.max(from));
        self.cursor = from;
        if start < end {
            self.replace(start..end, "", EditKind::Other);
            self.cursor = start;
            self.fix_last_after();
        }
    }

    /// Puts a copy of the touched lines below them (one undo step); the cursor moves with
    /// the copy.
    pub fn duplicate_lines(&mut self) {
        let lines = self.touched_lines();
        let start = self.rope.line_to_char(lines.start);
        let end = if lines.end >= self.line_count() {
            self.rope.len_chars()
        } else {
            self.rope.line_to_char(lines.end)
        };
        let text = self.rope.slice(start..end).to_string();
        // The last line has no line break of its own: the copy comes after a new one.
        let piece = if text.ends_with('\n') {
            text
        } else {
            format!("\n{text}")
        };
        let moved = piece.chars().count();
        let (cursor, anchor) = (self.cursor, self.anchor);
        self.anchor = None;
        self.cursor = end;
        self.replace(end..end, &piece, EditKind::Other);
        self.cursor = cursor + moved;
        self.anchor = anchor.map(|a| a + moved);
        self.fix_last_after();
    }

    /// Comments out the touched lines with `token` (at the indentation of the least
    /// indented one), or, when every non-blank one is commented, uncomments them. One undo
    /// step.
    pub fn toggle_comment(&mut self, token: &str) {
        let lines = self.touched_lines();
        let texts: Vec<String> = lines.clone().map(|l| self.line_text(l)).collect();
        let blank = |t: &str| t.trim().is_empty();
        let indent = |t: &str| t.chars().take_while(|c| *c == ' ' || *c == '\t').count();
        let commented = texts
            .iter()
            .filter(|t| !blank(t))
            .all(|t| t.trim_start().starts_with(token.trim_end()));
        if texts.iter().all(|t| blank(t)) {
            return;
        }
        let col = texts
            .iter()
            .filter(|t| !blank(t))
            .map(|t| indent(t))
            .min()
            .unwrap_or(0);
        let first = lines.start;
        self.edit_lines(lines, |l| {
            let t = &texts[l - first];
            if blank(t) {
                return None;
            }
            if commented {
                let at = indent(t);
                let rest: String = t.chars().skip(at).collect();
                let bare = token.trim_end();
                // The token, and the one space put after it.
                let n = if rest.starts_with(&format!("{bare} ")) {
                    bare.chars().count() + 1
                } else {
                    bare.chars().count()
                };
                Some((at, n, String::new()))
            } else {
                Some((
                    col,
                    0,
                    token.to_string() + if token.ends_with(' ') { "" } else { " " },
                ))
            }
        });
    }

    /// Selects the word at (or just before) the cursor. Returns false when there is none.
    pub fn select_word(&mut self) -> bool {
        let len = self.rope.len_chars();
        let at = self.cursor;
        let word_at = |p: usize| p < len && Self::is_word(self.rope.char(p));
        let mut start = if word_at(at) {
            at
        } else if at > 0 && word_at(at - 1) {
            at - 1
        } else {
            return false;
        };
        while start > 0 && word_at(start - 1) {
            start -= 1;
        }
        let mut end = start;
        while word_at(end) {
            end += 1;
        }
        self.select(start..end);
        true
    }

    /// Auto-pairs for a typed character: an opening bracket or quote gets its closing one
    /// (around the selection, if any); a closing one steps over the same character after
    /// the cursor. Returns false when `c` should simply be typed.
    pub fn auto_pair(&mut self, c: char) -> bool {
        let close = match c {
            '(' => ')',
            '[' => ']',
            '{' => '}',
            '"' | '\'' | '`' => c,
            ')' | ']' | '}' => {
                return self.step_over(c);
            }
            _ => return false,
        };
        let len = self.rope.len_chars();
        let next = (self.cursor < len).then(|| self.rope.char(self.cursor));
        let prev = (self.cursor > 0).then(|| self.rope.char(self.cursor - 1));
        if close == c && next == Some(c) && self.selection().is_none() {
            return self.step_over(c);
        }
        if let Some(r) = self.selection() {
            let inner = self.rope.slice(r.clone()).to_string();
            let n = inner.chars().count();
            self.replace(r.clone(), &format!("{c}{inner}{close}"), EditKind::Other);
            self.select(r.start + 1..r.start + 1 + n);
            return true;
        }
        // Only where a pair makes sense: before a space, a closing bracket or the end; a
        // quote not straight after a word character (don't, it's).
        let fits = next.is_none_or(|n| n.is_whitespace() || ")]},;:".contains(n));
        let quote_in_word = close == c && prev.is_some_and(Self::is_word);
        if !fits || quote_in_word {
            return false;
        }
        let at = self.cursor;
        self.insert(&format!("{c}{close}"), EditKind::Type);
        self.cursor = at + 1;
        self.fix_last_after();
        true
    }

    fn step_over(&mut self, c: char) -> bool {
        let len = self.rope.len_chars();
        if self.selection().is_none() && self.cursor < len && self.rope.char(self.cursor) == c {
            self.cursor += 1;
            self.want_col = None;
            return true;
        }
        false
    }

    /// Backspace between an empty pair (`(|)`) removes both. Returns false otherwise.
    pub fn erase_pair(&mut self) -> bool {
        let len = self.rope.len_chars();
        if self.selection().is_some() || self.cursor == 0 || self.cursor >= len {
            return false;
        }
        let (a, b) = (self.rope.char(self.cursor - 1), self.rope.char(self.cursor));
        let pair = matches!(
            (a, b),
            ('(', ')') | ('[', ']') | ('{', '}') | ('"', '"') | ('\'', '\'') | ('`', '`')
        );
        if !pair {
            return false;
        }
        let at = self.cursor - 1;
        self.replace(at..at + 2, "", EditKind::Erase);
        self.cursor = at;
        self.fix_last_after();
        true
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

    type Parts = Vec<(Range<usize>, Style)>;

    /// The styled parts of `lines` as the editor draws them: from the buffer's view state.
    fn drawn(b: &mut Buffer, lines: Range<usize>, t: &Theme) -> Vec<Parts> {
        let mut st = b.view_state(lines.start);
        lines
            .map(|l| {
                b.highlighter
                    .line(&mut st, &b.line_text(l), t, Style::default())
            })
            .collect()
    }

    /// The styled parts of `lines` from a highlight of the whole text from its start (the
    /// lines above them without their styles, which `advance` leaves out as `line` would).
    fn full(b: &Buffer, lines: Range<usize>, t: &Theme) -> Vec<Parts> {
        let mut st = b.highlighter.start();
        for l in 0..lines.start {
            b.highlighter.advance(&mut st, &b.line_text(l));
        }
        lines
            .map(|l| {
                b.highlighter
                    .line(&mut st, &b.line_text(l), t, Style::default())
            })
            .collect()
    }

    /// A stretch of Rust, `reps` times.
    fn rust(reps: usize) -> String {
        "/// Doc.\n#[derive(Debug)]\nstruct S { a: u8, b: String }\n\n\
         impl S {\n    fn f(&self) -> u8 {\n        let s = \"a // b\"; // c\n        \
         self.a * 2\n    }\n}\n"
            .repeat(reps)
    }

    #[test]
    fn plain_text_keeps_no_highlighter_state() {
        let t = theme();
        let text = "just words, 1 2 3 /* not a comment\n".repeat(5_000);
        for name in ["notes.txt", "README", "x.toml", "s.valyxo"] {
            let mut b = Buffer::new(&text, None, Highlighter::for_file(name, "just", &t));
            assert!(!b.highlighter.carries_state(), "{name}");
            for top in [0, 2_500, 4_990, 10] {
                b.top = top;
                let _ = b.view_state(top);
                assert!(!b.view_is_approximate(top), "{name}");
                assert!(!b.extend_states(400, top), "no idle work: {name}");
            }
            b.goto(100, 0, false);
            b.insert("x", EditKind::Type);
            let _ = b.view_state(50);
            assert_eq!(b.kept_states(), 0, "{name}");
        }
    }

    #[test]
    fn a_far_view_is_settled_near_it_with_few_states_and_exactly() {
        let t = theme();
        // A block comment opens 1,000 lines above the view and runs through it: fresh states
        // 150 or 300 lines above the view get it wrong (and agree), one SYNC_MAX up right.
        let src = rust(800);
        let mut text: Vec<&str> = src.lines().collect();
        let top = text.len() - 30;
        text.insert(top - 1_000, "/* the rest is a comment");
        let mut b = Buffer::new(&text.join("\n"), None, Highlighter::for_lang("rust", &t));
        // The whole text highlighted from its start, for the lines about the view.
        let near = top - 100..top + 25;
        let want = full(&b, near.clone(), &t);
        let want =
            |lines: Range<usize>| want[lines.start - near.start..lines.end - near.start].to_vec();
        let comment = t.style("syntax.comment");
        let view = top..top + 25;
        assert!(want(view.clone())
            .iter()
            .flatten()
            .all(|(_, s)| *s == comment));
        let _ = drawn(&mut b, 0..25, &t);
        b.top = top;
        let guessed = drawn(&mut b, view.clone(), &t);
        assert!(b.view_is_approximate(top));
        assert_ne!(guessed, want(view.clone()), "the guess misses the comment");
        let mut slices = 0;
        while b.view_is_approximate(top) {
            b.extend_states(400, top);
            slices += 1;
            assert!(slices < 100, "idle work ends");
        }
        assert!(!b.extend_states(400, top), "nothing left to do");
        assert_eq!(drawn(&mut b, view.clone(), &t), want(view));
        // Only lines near the view were worked out, and few states are kept: none for the
        // lines above (one every CHECKPOINT_EVERY would be 125).
        assert!(
            slices * 400 <= SYNC_MAX + 400,
            "{slices} slices of idle work"
        );
        let kept = b.kept_states();
        assert!(
            kept <= SYNC_MAX / CHECKPOINT_EVERY + 5,
            "{kept} states kept"
        );
        assert!(b.states.keys().all(|l| *l >= top - SYNC_MAX));
        // Scrolling about the view is exact at once, with no more idle work.
        for top in [top - 100, top - 1, top + 1, top + 5] {
            b.top = top;
            assert!(!b.view_is_approximate(top), "{top}");
            assert_eq!(
                drawn(&mut b, top..top + 20, &t),
                want(top..top + 20),
                "{top}"
            );
        }
    }

    #[test]
    fn an_edit_forgets_the_states_below_it_only() {
        let t = theme();
        let src = (0..300)
            .map(|i| format!("let x{i} = {i};\n"))
            .collect::<String>();
        let mut b = Buffer::new(&src, None, Highlighter::for_lang("rust", &t));
        let before = drawn(&mut b, 150..170, &t);
        assert_eq!(before, full(&b, 150..170, &t));
        assert_eq!(b.kept_states(), 3, "lines 64 and 128, and the view's");
        b.goto(100, 0, false);
        b.insert("/* ", EditKind::Other);
        assert_eq!(b.kept_states(), 1, "what is above the edit stays");
        let after = drawn(&mut b, 150..170, &t);
        assert_ne!(after, before, "the comment runs on");
        assert_eq!(after, full(&b, 150..170, &t));
        let comment = t.style("syntax.comment");
        assert!(after.iter().all(|p| p.iter().all(|(_, s)| *s == comment)));
        // Typing in the view keeps the view's state: the comment closes below it.
        b.goto(160, 0, false);
        b.insert("*/ ", EditKind::Other);
        assert_eq!(drawn(&mut b, 150..170, &t), full(&b, 150..170, &t));
        b.undo();
        b.undo();
        assert_eq!(drawn(&mut b, 150..170, &t), before);
    }

    #[test]
    fn checkpoints_are_bounded_however_far_the_view_goes() {
        let t = theme();
        // (A grammar that is quick on these lines: the checkpoints do not depend on it.)
        let src = "x\n".repeat(MAX_STATES * CHECKPOINT_EVERY + 20_000);
        let mut b = Buffer::new(&src, None, Highlighter::for_lang("diff", &t));
        assert!(b.highlighter.carries_state());
        let end = b.line_count() - 1;
        // Paging down the whole file: every view is exact, near the one before.
        for top in (0..end).step_by(SYNC_FAR - 1) {
            let _ = b.view_state(top);
            assert!(!b.view_is_approximate(top));
        }
        let _ = b.view_state(end);
        assert!(b.kept_states() <= MAX_STATES + 1, "{}", b.kept_states());
        assert!(
            b.states.first_key_value().is_some_and(|(l, _)| *l > 20_000),
            "the farthest from the view went"
        );
        // Back at the top: the start of the text is always known.
        let _ = b.view_state(10);
        assert!(!b.view_is_approximate(10));
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

    /// e + combining acute, x, a ZWJ family, a flag, Hangul jamo (ᄀ ᅡ ᆨ), a tab, y.
    const CLUSTERS: &str = "e\u{301}x👨‍👩‍👧🇫🇷\u{1100}\u{1161}\u{11A8}\ty";
    /// The char columns between its clusters, and their display columns (tab width 4).
    const STOPS: [usize; 8] = [0, 2, 3, 8, 10, 13, 14, 15];
    const SHOWN: [usize; 8] = [0, 1, 2, 4, 6, 8, 12, 13];

    #[test]
    fn left_and_right_step_over_whole_grapheme_clusters() {
        let mut b = buf(&format!("{CLUSTERS}\nab"));
        let mut seen = vec![b.cursor_line_col().1];
        while b.cursor_line_col().0 == 0 {
            b.right(false);
            seen.push(b.cursor_line_col().1);
        }
        seen.pop();
        assert_eq!(seen, STOPS, "right stops only between clusters");
        b.left(false);
        let mut back = vec![b.cursor_line_col().1];
        while b.cursor() > 0 {
            b.left(false);
            back.push(b.cursor_line_col().1);
        }
        back.reverse();
        assert_eq!(back, STOPS, "and so does left");
        // Selecting takes whole clusters too.
        b.goto(0, 3, false);
        b.right(true);
        b.right(true);
        assert_eq!(b.selected_text().as_deref(), Some("👨‍👩‍👧🇫🇷"));
        // From inside a cluster (a search match can end there), to its ends.
        b.goto(0, 5, false);
        b.right(false);
        assert_eq!(b.cursor_line_col(), (0, 8));
        b.goto(0, 5, false);
        b.left(false);
        assert_eq!(b.cursor_line_col(), (0, 3));
    }

    #[test]
    fn columns_count_grapheme_clusters_and_their_whole_width() {
        let b = buf(CLUSTERS);
        for (i, (&col, &shown)) in STOPS.iter().zip(&SHOWN).enumerate() {
            assert_eq!(b.cluster_col(0, col), i, "clusters before char {col}");
            assert_eq!(b.display_col(0, col, 4), shown, "display column of {col}");
        }
        // Every display column maps to the cluster drawn there (its start).
        let at: Vec<usize> = (0..15).map(|d| b.col_at_display(0, d, 4)).collect();
        assert_eq!(at, [0, 2, 3, 3, 8, 8, 10, 10, 13, 13, 13, 13, 14, 15, 15]);
        // Plain lines are one cluster per char.
        let plain = buf("plain\ttext");
        assert_eq!(plain.cluster_col(0, 7), 7);
        assert_eq!(plain.display_col(0, 7, 4), 9);
        assert_eq!(plain.col_at_display(0, 9, 4), 7);
        assert_eq!(
            plain.col_at_display(0, 6, 4),
            5,
            "inside the tab: before it"
        );
        // Widths of whole clusters: an emoji sequence or a flag is one wide character.
        assert_eq!(cluster_width("👨‍👩‍👧", 0, 4), 2);
        assert_eq!(cluster_width("🇫🇷", 0, 4), 2);
        assert_eq!(cluster_width("e\u{301}", 0, 4), 1);
        assert_eq!(cluster_width("\t", 1, 4), 3);
        assert_eq!(cluster_width("\x01", 0, 4), 2);
        // Where a line scrolled sideways starts to be drawn.
        assert_eq!(
            scrolled(CLUSTERS, 3, 4),
            (22, 8, 4),
            "the flag: the family is cut"
        );
        assert_eq!(scrolled("日本abcdef", 5, 4), (7, 3, 5));
        assert_eq!(scrolled("abc\tdef", 5, 4), (5, 5, 5));
        // A long line with a cluster at its start: measured a run at a time.
        let long = buf(&format!("👨‍👩‍👧e\u{301}{}", "a".repeat(100_000)));
        assert_eq!(long.cluster_col(0, 100_007), 100_002);
        assert_eq!(long.display_col(0, 100_007, 4), 100_003);
        assert_eq!(long.col_at_display(0, 50_003, 4), 50_007);
        let found: Vec<&str> = clusters(CLUSTERS).map(|(_, g)| g).collect();
        assert_eq!(
            found,
            [
                "e\u{301}",
                "x",
                "👨‍👩‍👧",
                "🇫🇷",
                "\u{1100}\u{1161}\u{11A8}",
                "\t",
                "y"
            ]
        );
    }

    #[test]
    fn backspace_and_delete_take_whole_clusters() {
        let mut b = buf("a👨‍👩‍👧b🇫🇷c\u{1100}\u{1161}\u{11A8}d");
        b.goto(0, 6, false); // after the family
        b.backspace();
        assert_eq!(b.rope.to_string(), "ab🇫🇷c\u{1100}\u{1161}\u{11A8}d");
        b.goto(0, 2, false); // before the flag
        b.delete();
        assert_eq!(b.rope.to_string(), "abc\u{1100}\u{1161}\u{11A8}d");
        b.goto(0, 6, false); // after the syllable
        b.backspace();
        assert_eq!(b.rope.to_string(), "abcd");
        b.undo();
        b.undo();
        b.undo();
        assert_eq!(b.rope.to_string(), "a👨‍👩‍👧b🇫🇷c\u{1100}\u{1161}\u{11A8}d");
    }

    #[test]
    fn up_down_home_and_words_land_between_clusters() {
        let mut b = buf("ab👨‍👩‍👧cd\nabcdefgh\n  \u{301}x");
        b.goto(1, 4, false); // display column 4
        b.vertical(-1, false, 4);
        assert_eq!(
            b.cursor_line_col(),
            (0, 7),
            "c, after the two-column family"
        );
        b.vertical(1, false, 4);
        assert_eq!(b.cursor_line_col(), (1, 4), "the display column was kept");
        b.goto(1, 3, false);
        b.vertical(-1, false, 4);
        assert_eq!(
            b.cursor_line_col(),
            (0, 2),
            "column 3 is the family's second half"
        );
        // Home stops at the indentation only where a cluster starts.
        b.goto(2, 4, false);
        b.home(false);
        assert_eq!(
            b.cursor_line_col(),
            (2, 1),
            "the accent sits on the second space"
        );
        let mut w = buf("cafe\u{301} 👨‍👩‍👧 x");
        w.word_right(false);
        assert_eq!(w.cursor(), 5, "the accent belongs to the word");
        w.word_right(false);
        assert_eq!(w.cursor(), 13);
        w.word_left(false);
        assert_eq!(w.cursor(), 12);
        w.word_left(false);
        assert_eq!(w.cursor(), 0);
    }

    #[test]
    fn a_byte_order_mark_is_kept_out_of_the_text_and_saved_again() {
        let mut b = buf("\u{FEFF}hello\n");
        assert!(b.bom);
        assert_eq!(b.rope.to_string(), "hello\n");
        assert_eq!(b.cursor_line_col(), (0, 0));
        b.right(false);
        assert_eq!(b.rope.char(b.cursor()), 'e', "no stop before the h");
        b.insert("X", EditKind::Type);
        assert_eq!(b.contents(), "\u{FEFF}hXello\n");
        assert_eq!(b.copy_text(), "hXello\n", "a recovery copy leaves it out");
        b.replace_all_text("restored\n");
        assert_eq!(b.contents().as_bytes()[..3], [0xEF, 0xBB, 0xBF]);
        assert_eq!(b.contents(), "\u{FEFF}restored\n");
        let crlf = buf("\u{FEFF}a\r\nb\r\n");
        assert!(crlf.crlf && crlf.bom);
        assert_eq!(crlf.contents(), "\u{FEFF}a\r\nb\r\n");
        assert_eq!(crlf.copy_text(), "a\r\nb\r\n");
        let none = buf("a\u{FEFF}b");
        assert!(!none.bom, "only a leading one is a byte order mark");
        assert_eq!(none.contents(), "a\u{FEFF}b");
    }
}
