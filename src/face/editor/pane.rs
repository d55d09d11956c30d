//! The assistant pane beside the editor: questions about the buffer (or the selection), the
//! answer streamed in from a background thread, and the code blocks of the last answer ready
//! to go into the buffer.

use crate::assistant::{self, conversations, Message};
use crate::hub::Hub;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::widgets::Block;
use ratatui::Frame;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::Arc;

/// The buffer is sent whole up to this size; beyond it, its beginning, and the question
/// says that the text was cut.
const MAX_CONTEXT: usize = 200 * 1024;

/// What the answering thread sends.
enum Piece {
    Text(String),
    Done,
    Failed(String),
}

/// One entry of the pane's transcript.
struct Entry {
    question: String,
    answer: String,
    /// The answer's code blocks, found as it arrives.
    fences: Fences,
    error: Option<String>,
}

pub struct Pane {
    pub input: crate::view::line::LineInput,
    entries: Vec<Entry>,
    /// The conversation so far, as sent to the server.
    messages: Vec<Message>,
    /// The conversation in the store, once there is one.
    conversation: Option<i64>,
    persona: &'static assistant::Persona,
    receiving: Option<(Receiver<Piece>, Arc<AtomicBool>)>,
    /// The code blocks of the last answer, and which one Ctrl-Y inserts.
    pub blocks: Vec<String>,
    pub block: usize,
    /// Rows scrolled up from the end of the transcript.
    scroll: usize,
    /// Ctrl-C asked to stop the answer that is arriving.
    stopped: bool,
    /// The transcript's rows and colours, kept from frame to frame.
    view: RefCell<View>,
}

/// What a line of Markdown is, for code blocks.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Part {
    Text,
    /// The opening fence of block n.
    Open(u32),
    /// A line inside block n.
    Code(u32),
    /// The closing fence of block n.
    Close(u32),
}

/// A fenced code block of an answer: where its lines are.
struct Fenced {
    /// The start of the opening fence's line.
    open: usize,
    /// The start of the first line of code, just after the opening fence's line.
    code: usize,
    /// The start of the closing fence's line, once it came.
    close: Option<usize>,
    lang: String,
}

/// The fenced code blocks of a Markdown text that arrives in pieces, found a line at a time
/// as lines complete, so that a piece costs its own length and never the whole text again. A
/// block opens with three or more backticks and closes with a line of just as many, so a
/// longer fence can hold a shorter.
#[derive(Default)]
struct Fences {
    blocks: Vec<Fenced>,
    /// The fence of the block still open.
    open: Option<String>,
    /// Where the complete lines end: the start of the line still arriving.
    done: usize,
    /// How far line breaks were looked for.
    scanned: usize,
}

/// The line `start..end` of `text`, without a carriage return before its line break.
fn line_text(text: &str, start: usize, end: usize) -> &str {
    let l = &text[start..end];
    l.strip_suffix('\r').unwrap_or(l)
}

impl Fences {
    /// Takes the lines of `text` (which only grows) that completed since the last call.
    fn push(&mut self, text: &str) {
        let bytes = text.as_bytes();
        let mut from = self.scanned.max(self.done);
        while let Some(i) = memchr::memchr(b'\n', &bytes[from..]) {
            let start = self.done;
            let next = from + i + 1;
            self.line(line_text(text, start, next - 1), start, next);
            self.done = next;
            from = next;
        }
        self.scanned = text.len();
    }

    /// Takes the rest of a text that is complete: its last line too.
    fn finish(&mut self, text: &str) {
        self.push(text);
        if self.done < text.len() {
            let start = self.done;
            self.line(line_text(text, start, text.len()), start, text.len());
            self.done = text.len();
        }
    }

    fn line(&mut self, line: &str, start: usize, next: usize) {
        match &self.open {
            None => {
                if let Some((fence, lang)) = assistant::opening_fence(line) {
                    self.blocks.push(Fenced {
                        open: start,
                        code: next,
                        close: None,
                        lang: lang.to_string(),
                    });
                    self.open = Some(fence.to_string());
                }
            }
            Some(fence) if assistant::closes(line, fence) => {
                if let Some(b) = self.blocks.last_mut() {
                    b.close = Some(start);
                }
                self.open = None;
            }
            Some(_) => {}
        }
    }

    /// What the complete line starting at `at` is.
    fn part_at(&self, at: usize) -> Part {
        let i = self.blocks.partition_point(|b| b.open <= at);
        let Some(n) = i.checked_sub(1) else {
            return Part::Text;
        };
        let b = &self.blocks[n];
        let n = n as u32;
        if at == b.open {
            return Part::Open(n);
        }
        match b.close {
            Some(c) if at == c => Part::Close(n),
            Some(c) if at > c => Part::Text,
            _ => Part::Code(n),
        }
    }

    /// What the line still arriving is, as far as it came.
    fn tail_part(&self, tail: &str) -> Part {
        let n = self.blocks.len() as u32;
        match &self.open {
            Some(fence) if assistant::closes(tail, fence) => Part::Close(n - 1),
            Some(_) => Part::Code(n - 1),
            None if assistant::opening_fence(tail).is_some() => Part::Open(n),
            None => Part::Text,
        }
    }

    /// The code of each block (an unclosed last block too), every line ending in a line
    /// break.
    fn code(&self, text: &str) -> Vec<String> {
        self.blocks
            .iter()
            .map(|b| {
                let end = b.close.unwrap_or(text.len()).min(text.len());
                let mut out = String::new();
                for l in text[b.code.min(end)..end].lines() {
                    out.push_str(l);
                    out.push('\n');
                }
                out
            })
            .collect()
    }
}

/// The fenced code blocks of a Markdown text, in order (an unclosed last block too).
pub fn code_blocks(text: &str) -> Vec<String> {
    let mut f = Fences::default();
    f.finish(text);
    f.code(text)
}

/// Where the row of text that starts at `from` ends when rows are `width` columns wide:
/// after the last space that fits, or where the text stops fitting when a word is longer
/// than the row. Control characters take no room (the terminal is not sent them).
fn next_break(text: &str, from: usize, end: usize, width: usize) -> usize {
    let bytes = text.as_bytes();
    let mut col = 0;
    let mut i = from;
    let mut after_space = None;
    while i < end {
        let b = bytes[i];
        let (w, len) = if b < 0x80 {
            (usize::from(b >= 0x20 && b != 0x7f), 1)
        } else {
            let c = text[i..].chars().next().unwrap_or(' ');
            (
                unicode_width::UnicodeWidthChar::width(c).unwrap_or(0),
                c.len_utf8(),
            )
        };
        if col + w > width {
            if b == b' ' {
                // A space at the edge ends the row (unseen): the next starts with the word.
                return i + 1;
            }
            if let Some(a) = after_space {
                return a;
            }
            return if i == from { i + len } else { i };
        }
        col += w;
        i += len;
        if b == b' ' {
            after_space = Some(i);
        }
    }
    end
}

/// The rows of `text` wrapped to `width`, as ranges (an empty text is one empty row).
fn wrap(text: &str, width: usize) -> Vec<(usize, usize)> {
    let mut rows = Vec::new();
    for (start, l) in text.split('\n').scan(0, |at, l| {
        let s = *at;
        *at += l.len() + 1;
        Some((s, l))
    }) {
        let end = start + l.len();
        let mut s = start;
        loop {
            let e = next_break(text, s, end, width.max(1));
            rows.push((s, e));
            s = e;
            if s >= end {
                break;
            }
        }
    }
    rows
}

/// A row of an answer as drawn: a stretch of one of its lines.
#[derive(Clone, Copy, PartialEq, Debug)]
struct Row {
    start: usize,
    end: usize,
    part: Part,
}

/// Code lines longer than this are drawn without colour, and the highlighter's state goes
/// over them unchanged.
const MAX_HIGHLIGHT_LINE: usize = 2000;
/// While highlighting, the state is kept at a line start about this often (in bytes).
const MARK_EVERY: usize = 1024;
/// The state for a line is worked out from the nearest kept state up to this far before it;
/// beyond, it starts afresh [`FRESH_BEFORE`] bytes before the line (as if the block began
/// there), so that a frame never highlights more than a few kilobytes of code.
const REACH: usize = 4096;
const FRESH_BEFORE: usize = 1024;

/// The highlighting of one code block: the state at line starts met so far.
struct BlockColors {
    hl: crate::highlight::Highlighter,
    marks: std::collections::BTreeMap<usize, crate::highlight::LineState>,
    /// The start of the line after the one highlighted last, and the state there.
    last: Option<(usize, crate::highlight::LineState)>,
}

impl BlockColors {
    fn new(f: &Fenced, theme: &crate::theme::Theme) -> BlockColors {
        let hl = crate::highlight::Highlighter::for_lang(&f.lang, theme);
        let mut marks = std::collections::BTreeMap::new();
        marks.insert(f.code, hl.start());
        BlockColors {
            hl,
            marks,
            last: None,
        }
    }

    /// The highlighter's state at the start of the line at `at` of `text`.
    fn state_at(
        &mut self,
        text: &str,
        at: usize,
        theme: &crate::theme::Theme,
    ) -> crate::highlight::LineState {
        if let Some((next, st)) = self.last.take() {
            if next == at {
                return st;
            }
        }
        let bytes = text.as_bytes();
        let (mut pos, mut st) = match self.marks.range(..=at).next_back() {
            Some((&m, st)) if at - m <= REACH => (m, st.clone()),
            _ => {
                let from = at.saturating_sub(FRESH_BEFORE);
                let pos = memchr::memchr(b'\n', &bytes[from..at]).map_or(at, |i| from + i + 1);
                (pos, self.hl.start())
            }
        };
        let base = crate::theme::Style::default();
        let mut marked = pos;
        while pos < at {
            let Some(i) = memchr::memchr(b'\n', &bytes[pos..at]) else {
                break;
            };
            let next = pos + i + 1;
            let line = line_text(text, pos, next - 1);
            if line.len() <= MAX_HIGHLIGHT_LINE {
                self.hl.line(&mut st, line, theme, base);
            }
            pos = next;
            if pos - marked >= MARK_EVERY {
                self.marks.insert(pos, st.clone());
                marked = pos;
            }
        }
        st
    }
}

/// The coloured parts of a code line: (byte range in the line, style).
type Colors = Vec<(std::ops::Range<usize>, crate::theme::Style)>;

/// One entry of the transcript as rows at the pane's width, made as its answer arrives: the
/// text that came is wrapped once, and only the last row of the line still arriving again.
#[derive(Default)]
struct Rows {
    /// "you: QUESTION" and its rows.
    asked: String,
    asked_rows: Vec<(usize, usize)>,
    /// The answer's rows.
    rows: Vec<Row>,
    /// Rows before this one are of complete lines and final; those after, of the line still
    /// arriving.
    fixed: usize,
    /// The text that the final rows cover (the start of the line still arriving).
    covered: usize,
    /// The highlighting of the answer's code blocks, by block, once drawn with colour.
    colors: Vec<Option<BlockColors>>,
    /// Bytes wrapped so far, for the tests.
    #[cfg(test)]
    wrapped: usize,
}

impl Rows {
    /// Brings the rows up to date with the entry's answer.
    fn update(&mut self, e: &Entry, width: usize) {
        if self.asked.is_empty() {
            self.asked = format!("you: {}", e.question);
            self.asked_rows = wrap(&self.asked, width);
        }
        let text = e.answer.as_str();
        let done = e.fences.done.min(text.len());
        while self.covered < done {
            let start = self.covered;
            let nl =
                memchr::memchr(b'\n', &text.as_bytes()[start..done]).map_or(done, |i| start + i);
            let end = start + line_text(text, start, nl).len();
            self.wrap_line(text, start, end, e.fences.part_at(start), width);
            self.fixed = self.rows.len();
            self.covered = (nl + 1).min(done);
        }
        if done < text.len() {
            let part = e.fences.tail_part(&text[done..]);
            self.wrap_line(text, done, text.len(), part, width);
        } else {
            self.rows.truncate(self.fixed);
        }
    }

    /// Makes the rows of the line `start..end`, going on from the rows it already has when
    /// it is the line still arriving and still the same kind of line.
    fn wrap_line(&mut self, text: &str, start: usize, end: usize, part: Part, width: usize) {
        let same = self.rows.len() > self.fixed
            && self.rows[self.fixed].start == start
            && self.rows.last().is_some_and(|r| r.part == part);
        let from = match self.rows.last() {
            Some(r) if same => r.start,
            _ => start,
        };
        if same {
            self.rows.pop();
        } else {
            self.rows.truncate(self.fixed);
        }
        if let Part::Open(_) | Part::Close(_) = part {
            // A fence is drawn as one row of its own.
            self.rows.truncate(self.fixed);
            self.rows.push(Row { start, end, part });
            return;
        }
        let width = match part {
            Part::Code(_) => width.saturating_sub(2),
            _ => width,
        }
        .max(1);
        #[cfg(test)]
        {
            self.wrapped += end - from;
        }
        let mut s = from;
        loop {
            let e = next_break(text, s, end, width);
            self.rows.push(Row {
                start: s,
                end: e,
                part,
            });
            s = e;
            if s >= end {
                break;
            }
        }
    }
}

/// What the pane keeps between frames to draw only what shows.
#[derive(Default)]
struct View {
    /// The width the rows were made for.
    width: usize,
    /// The theme the colours were worked out with (its address; 0 for none).
    theme: usize,
    entries: Vec<Rows>,
    /// The code lines coloured for the last frame, by (entry, line start): the line's end
    /// and its colours.
    shown: std::collections::HashMap<(usize, usize), (usize, Colors)>,
    /// How many rows the transcript has above the view when the view is at its end: as far
    /// as it scrolls up.
    bottom: usize,
}

/// The rows of the transcript on screen: which of a section's rows show, and where.
struct Window {
    first: usize,
    height: usize,
    at: usize,
    y: usize,
}

impl Window {
    /// The visible rows of the next section of `n` rows, and the screen row of the first.
    fn take(&mut self, n: usize) -> (std::ops::Range<usize>, usize) {
        let from = self.first.saturating_sub(self.at).min(n);
        let to = (from + (self.height - self.y)).min(n);
        let y = self.y;
        self.y += to - from;
        self.at += n;
        (from..to, y)
    }
}

/// Writes `s` at column `*x` of row `y`, up to column `right`, moving `*x` on.
fn put(buf: &mut Buffer, x: &mut u16, y: u16, right: u16, s: &str, style: Style) {
    if *x < right && !s.is_empty() {
        *x = buf.set_stringn(*x, y, s, usize::from(right - *x), style).0;
    }
}

impl Pane {
    pub fn new(hub: &Hub) -> Pane {
        let persona = assistant::persona(hub.settings().assistant.persona.as_str())
            .unwrap_or(&assistant::PERSONAS[0]);
        Pane {
            input: Default::default(),
            entries: Vec::new(),
            messages: vec![Message::new("system", persona.prompt)],
            conversation: None,
            persona,
            receiving: None,
            blocks: Vec::new(),
            block: 0,
            scroll: 0,
            stopped: false,
            view: RefCell::default(),
        }
    }

    pub fn busy(&self) -> bool {
        self.receiving.is_some()
    }

    /// Asks `question` about `context` (named `what`), answering on a background thread.
    pub fn ask(&mut self, hub: &Arc<Hub>, question: String, what: &str, context: &str) {
        if self.busy() || question.trim().is_empty() {
            return;
        }
        let (context, what) = if context.len() > MAX_CONTEXT {
            let mut end = MAX_CONTEXT;
            while !context.is_char_boundary(end) {
                end -= 1;
            }
            let what = format!(
                "{what} (only its first {} KiB of {} KiB)",
                MAX_CONTEXT / 1024,
                context.len() / 1024
            );
            (&context[..end], what)
        } else {
            (context, what.to_string())
        };
        let content = format!("{question}\n\n{}", assistant::fence(&what, context));
        self.messages.push(Message::new("user", content));
        self.entries.push(Entry {
            question,
            answer: String::new(),
            fences: Fences::default(),
            error: None,
        });
        // The blocks of the answer before are not this one's.
        self.blocks.clear();
        self.block = 0;
        self.scroll = 0;
        let client = match assistant::client(hub) {
            Ok(c) => c,
            Err(e) => {
                self.messages.pop();
                if let Some(last) = self.entries.last_mut() {
                    last.error = Some(format!("{e:#}"));
                }
                return;
            }
        };
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let messages = self.messages.clone();
        let started = std::thread::Builder::new()
            .name("assistant".into())
            .spawn(move || {
                let result = client.chat(&messages, |piece| {
                    if stopped.load(Ordering::Relaxed) {
                        anyhow::bail!("stopped");
                    }
                    tx.send(Piece::Text(piece.to_string()))
                        .map_err(|_| anyhow::anyhow!("the editor is gone"))
                });
                let _ = tx.send(match result {
                    Ok(_) => Piece::Done,
                    Err(e) => Piece::Failed(format!("{e:#}")),
                });
            });
        if let Err(e) = started {
            self.messages.pop();
            if let Some(last) = self.entries.last_mut() {
                last.error = Some(format!("cannot start a thread for the answer: {e}"));
            }
            return;
        }
        self.receiving = Some((rx, stop));
    }

    /// Stops the answer that is arriving.
    /// Ends it at the next [`Pane::receive`], whether or not the server sends anything
    /// more; the answer is kept as far as it came.
    pub fn stop(&mut self) {
        if let Some((_, stop)) = &self.receiving {
            stop.store(true, Ordering::Relaxed);
            self.stopped = true;
        }
    }

    /// Takes what the answering thread sent. Returns whether anything changed.
    pub fn receive(&mut self, hub: &Hub, title: &str) -> bool {
        let Some((rx, _)) = &self.receiving else {
            return false;
        };
        let mut changed = false;
        let mut ended = None;
        loop {
            match rx.try_recv() {
                Ok(Piece::Text(t)) => {
                    if let Some(e) = self.entries.last_mut() {
                        e.answer.push_str(&t);
                    }
                    changed = true;
                }
                Ok(Piece::Done) => {
                    ended = Some(None);
                    break;
                }
                Ok(Piece::Failed(e)) => {
                    ended = Some(Some(e));
                    break;
                }
                Err(TryRecvError::Empty) if self.stopped => {
                    ended = Some(Some("stopped".to_string()));
                    break;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    ended = Some(Some("the answer stopped".to_string()));
                    break;
                }
            }
        }
        if changed {
            if let Some(e) = self.entries.last_mut() {
                e.fences.push(&e.answer);
            }
        }
        if let Some(error) = ended {
            self.receiving = None;
            self.stopped = false;
            changed = true;
            if self.end(error) {
                self.keep(hub, title);
            }
        }
        changed
    }

    /// Ends the answer that was arriving, with `error` if it ended badly. Returns whether
    /// there is an answer (and it is now part of the conversation).
    fn end(&mut self, error: Option<String>) -> bool {
        let Some(e) = self.entries.last_mut() else {
            return false;
        };
        e.error = error;
        e.fences.finish(&e.answer);
        if e.answer.is_empty() {
            // Nothing came: the question is not part of the conversation.
            self.messages.pop();
            return false;
        }
        self.blocks = e.fences.code(&e.answer);
        self.block = self.blocks.len().saturating_sub(1);
        self.messages
            .push(Message::new("assistant", e.answer.clone()));
        true
    }

    /// Keeps the last exchange in the store's conversations.
    fn keep(&mut self, hub: &Hub, title: &str) {
        let store = hub.vfs.store();
        let id = match self.conversation {
            Some(id) => id,
            None => match conversations::create(
                store,
                title,
                self.persona.name,
                &hub.settings().assistant.model,
            ) {
                Ok(id) => id,
                Err(_) => return,
            },
        };
        let new = self.conversation.is_none();
        let from = if new { 0 } else { self.messages.len() - 2 };
        if conversations::append(store, id, &self.messages[from..]).is_ok() {
            self.conversation = Some(id);
        }
    }

    /// Chooses the next code block for Ctrl-Y.
    pub fn next_block(&mut self) {
        if !self.blocks.is_empty() {
            self.block = (self.block + 1) % self.blocks.len();
        }
    }

    pub fn scroll(&mut self, up: bool, rows: u16) {
        let rows = usize::from(rows);
        self.scroll = if up {
            // No further than the top, as last drawn.
            (self.scroll + rows).min(self.view.get_mut().bottom)
        } else {
            self.scroll.saturating_sub(rows)
        };
    }

    pub fn draw(
        &self,
        frame: &mut Frame,
        area: Rect,
        focused: bool,
        theme: Option<&crate::theme::Theme>,
        accent: Style,
    ) {
        let title = format!(
            " Assistant ({}){} ",
            self.persona.name,
            if self.busy() { " …" } else { "" }
        );
        let border = if focused {
            accent
        } else {
            Style::default().add_modifier(Modifier::DIM)
        };
        let block = Block::bordered().title(title).border_style(border);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        if inner.height < 3 || inner.width < 4 {
            return;
        }
        let dim = Style::default().add_modifier(Modifier::DIM);
        let text_area = Rect::new(inner.x, inner.y, inner.width, inner.height - 2);
        self.draw_transcript(frame.buffer_mut(), text_area, theme, accent);
        let rule_y = inner.y + inner.height - 2;
        frame
            .buffer_mut()
            .set_string(inner.x, rule_y, "─".repeat(inner.width as usize), dim);
        let (shown, cw) = self
            .input
            .fit("> ", usize::from(inner.width), str::to_owned);
        frame
            .buffer_mut()
            .set_string(inner.x, rule_y + 1, &shown, Style::default());
        if focused {
            frame.set_cursor_position((inner.x + cw.min(inner.width - 1), rule_y + 1));
        }
    }

    /// Draws the rows of the transcript that show in `area`: the rows are kept from frame to
    /// frame (made again only when the width changes, and for an answer only as its text
    /// arrives), so a frame costs what shows, however long the answers.
    fn draw_transcript(
        &self,
        buf: &mut Buffer,
        area: Rect,
        theme: Option<&crate::theme::Theme>,
        accent: Style,
    ) {
        let bold = Style::default().add_modifier(Modifier::BOLD);
        let dim = Style::default().add_modifier(Modifier::DIM);
        let error_style = if theme.is_some() {
            Style::default().fg(ratatui::style::Color::Red)
        } else {
            bold
        };
        let mut view = self.view.borrow_mut();
        let view = &mut *view;
        let width = usize::from(area.width);
        if view.width != width {
            view.entries.clear();
            view.shown.clear();
            view.width = width;
        }
        let theme_id = theme.map_or(0, |t| std::ptr::from_ref(t) as usize);
        if view.theme != theme_id {
            for r in &mut view.entries {
                r.colors.clear();
            }
            view.shown.clear();
            view.theme = theme_id;
        }
        view.entries.truncate(self.entries.len());
        view.entries.resize_with(self.entries.len(), Rows::default);
        for (r, e) in view.entries.iter_mut().zip(&self.entries) {
            r.update(e, width);
        }
        const HELP: [&str; 5] = [
            "Ask about the file, or about the selection if there is one.",
            "",
            "Enter sends the question. Ctrl-Y puts the answer's code block into the",
            "file (Tab picks another block). Esc goes back to the text; Ctrl-E",
            "closes the pane; Ctrl-C stops an answer; Ctrl-S saves the block as a snippet.",
        ];
        let help: Vec<Vec<(usize, usize)>> = if self.entries.is_empty() {
            HELP.iter().map(|l| wrap(l, width)).collect()
        } else {
            Vec::new()
        };
        let errors: Vec<Vec<(usize, usize)>> = self
            .entries
            .iter()
            .map(|e| e.error.as_deref().map_or_else(Vec::new, |t| wrap(t, width)))
            .collect();
        let total = help.iter().map(Vec::len).sum::<usize>()
            + view
                .entries
                .iter()
                .zip(&errors)
                .map(|(r, err)| r.asked_rows.len() + r.rows.len() + err.len() + 1)
                .sum::<usize>();
        let height = usize::from(area.height);
        view.bottom = total.saturating_sub(height);
        let mut win = Window {
            first: view.bottom - self.scroll.min(view.bottom),
            height,
            at: 0,
            y: 0,
        };
        let right = area.x + area.width;
        let row_y = |y: usize| area.y + y as u16;
        for (text, rows) in HELP.iter().zip(&help) {
            let (shown, y) = win.take(rows.len());
            for (k, &(s, e)) in rows[shown].iter().enumerate() {
                let mut x = area.x;
                put(buf, &mut x, row_y(y + k), right, &text[s..e], dim);
            }
        }
        let mut shown = std::mem::take(&mut view.shown);
        let last = self.entries.len().saturating_sub(1);
        for (i, ((e, r), err)) in self
            .entries
            .iter()
            .zip(view.entries.iter_mut())
            .zip(&errors)
            .enumerate()
        {
            if win.y >= height {
                break;
            }
            let (rows, y) = win.take(r.asked_rows.len());
            for (k, &(s, end)) in r.asked_rows[rows].iter().enumerate() {
                let mut x = area.x;
                put(buf, &mut x, row_y(y + k), right, &r.asked[s..end], bold);
            }
            let (rows, y0) = win.take(r.rows.len());
            let last_answer = i == last && !self.blocks.is_empty();
            let chosen = |n: u32| last_answer && n as usize == self.block;
            for (k, index) in rows.enumerate() {
                let row = r.rows[index];
                let y = row_y(y0 + k);
                let mut x = area.x;
                let text = &e.answer[row.start..row.end];
                match row.part {
                    Part::Text => put(buf, &mut x, y, right, text, Style::default()),
                    Part::Open(n) if chosen(n) => {
                        let header =
                            format!("┌ block {}/{} · Ctrl-Y inserts", n + 1, self.blocks.len());
                        put(buf, &mut x, y, right, &header, accent);
                    }
                    Part::Open(_) => put(buf, &mut x, y, right, "┌", dim),
                    Part::Close(_) => put(buf, &mut x, y, right, "└", dim),
                    Part::Code(n) => {
                        put(
                            buf,
                            &mut x,
                            y,
                            right,
                            "│ ",
                            if chosen(n) { accent } else { dim },
                        );
                        let colors = theme.and_then(|t| {
                            code_colors(e, r, &mut view.shown, &mut shown, i, n, row, t)
                        });
                        match colors {
                            Some((line_start, colors)) => draw_colored(
                                buf, &mut x, y, right, &e.answer, row, line_start, &colors,
                            ),
                            None => put(buf, &mut x, y, right, text, Style::default()),
                        }
                    }
                }
            }
            let (rows, y) = win.take(err.len());
            let msg = e.error.as_deref().unwrap_or("");
            for (k, &(s, end)) in err[rows].iter().enumerate() {
                let mut x = area.x;
                put(buf, &mut x, row_y(y + k), right, &msg[s..end], error_style);
            }
            win.take(1);
        }
    }
}

/// The colours of the code line that `row` (of block `n` of entry `i`) is part of, and where
/// that line starts; `None` for a line too long to colour. The colours of the lines of the
/// last frame are in `before`; those of this frame go into `now`.
#[allow(clippy::too_many_arguments)]
fn code_colors(
    e: &Entry,
    r: &mut Rows,
    now: &mut std::collections::HashMap<(usize, usize), (usize, Colors)>,
    before: &mut std::collections::HashMap<(usize, usize), (usize, Colors)>,
    i: usize,
    n: u32,
    row: Row,
    theme: &crate::theme::Theme,
) -> Option<(usize, Colors)> {
    let text = e.answer.as_str();
    let bytes = text.as_bytes();
    // The line the row is part of, looked for no further than a line may be to be coloured.
    let lo = row.start.saturating_sub(MAX_HIGHLIGHT_LINE + 1);
    let line_start = match memchr::memrchr(b'\n', &bytes[lo..row.start]) {
        Some(p) => lo + p + 1,
        None if lo == 0 => 0,
        None => return None,
    };
    let hi = (line_start + MAX_HIGHLIGHT_LINE + 2).min(text.len());
    let (line_end, next) = match memchr::memchr(b'\n', &bytes[row.start.min(hi)..hi]) {
        Some(p) => {
            let nl = row.start.min(hi) + p;
            (
                line_start + line_text(text, line_start, nl).len(),
                Some(nl + 1),
            )
        }
        // The line still arriving.
        None if hi == text.len() => (text.len(), None),
        None => return None,
    };
    if line_end - line_start > MAX_HIGHLIGHT_LINE {
        return None;
    }
    let key = (i, line_start);
    if let Some(c) = now.get(&key).filter(|c| c.0 == line_end) {
        return Some((line_start, c.1.clone()));
    }
    if let Some(c) = before
        .remove(&key)
        .filter(|c| c.0 == line_end && next.is_some())
    {
        now.insert(key, c.clone());
        return Some((line_start, c.1));
    }
    let f = e.fences.blocks.get(n as usize)?;
    let n = n as usize;
    if r.colors.len() <= n {
        r.colors.resize_with(n + 1, || None);
    }
    let block = r.colors[n].get_or_insert_with(|| BlockColors::new(f, theme));
    let mut state = block.state_at(text, line_start, theme);
    let colors = block.hl.line(
        &mut state,
        &text[line_start..line_end],
        theme,
        crate::theme::Style::default(),
    );
    if let Some(next) = next {
        block.last = Some((next, state));
    }
    now.insert(key, (line_end, colors.clone()));
    Some((line_start, colors))
}

/// Draws the part of a coloured code line that `row` is.
#[allow(clippy::too_many_arguments)]
fn draw_colored(
    buf: &mut Buffer,
    x: &mut u16,
    y: u16,
    right: u16,
    text: &str,
    row: Row,
    line_start: usize,
    colors: &Colors,
) {
    let mut pos = row.start;
    for (range, st) in colors {
        let a = (line_start + range.start).max(row.start);
        let b = (line_start + range.end).min(row.end);
        if a >= b || a < pos {
            continue;
        }
        put(buf, x, y, right, &text[pos..a], Style::default());
        put(buf, x, y, right, &text[a..b], st.to_ratatui());
        pos = b;
    }
    put(buf, x, y, right, &text[pos..row.end], Style::default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;
    use unicode_width::UnicodeWidthStr;

    #[test]
    fn code_blocks_are_found_with_any_fence_length() {
        let text = "Try:\n```rust\nfn a() {}\n```\nor\n````\nx\n```\nstill x\n````\n";
        assert_eq!(code_blocks(text), ["fn a() {}\n", "x\n```\nstill x\n"]);
        assert_eq!(code_blocks("```\nunclosed\n"), ["unclosed\n"]);
        assert_eq!(code_blocks("a\r\n```\r\nx\r\n```\r\n"), ["x\n"]);
        assert!(code_blocks("no code").is_empty());
    }

    /// A pane with no hub, persona or server behind it.
    fn bare() -> Pane {
        Pane {
            input: Default::default(),
            entries: Vec::new(),
            messages: vec![Message::new("system", "")],
            conversation: None,
            persona: &assistant::PERSONAS[0],
            receiving: None,
            blocks: Vec::new(),
            block: 0,
            scroll: 0,
            stopped: false,
            view: RefCell::default(),
        }
    }

    impl Pane {
        /// What `ask` and `receive` do with the question and the pieces of its answer.
        fn asked(&mut self, question: &str) {
            self.messages.push(Message::new("user", question));
            self.entries.push(Entry {
                question: question.to_string(),
                answer: String::new(),
                fences: Fences::default(),
                error: None,
            });
        }

        fn piece(&mut self, text: &str) {
            let e = self.entries.last_mut().expect("a question");
            e.answer.push_str(text);
            e.fences.push(&e.answer);
        }

        /// Bytes wrapped into rows so far.
        fn wrapped(&self) -> usize {
            self.view.borrow().entries.iter().map(|r| r.wrapped).sum()
        }

        fn rows(&self) -> Vec<Row> {
            self.view
                .borrow()
                .entries
                .last()
                .expect("drawn")
                .rows
                .clone()
        }
    }

    fn draw(term: &mut Terminal<TestBackend>, p: &Pane, theme: Option<&crate::theme::Theme>) {
        term.draw(|f| p.draw(f, f.area(), true, theme, Style::default()))
            .expect("draw");
    }

    /// The screen's rows as text, without the border.
    fn screen(term: &Terminal<TestBackend>) -> Vec<String> {
        let buf = term.backend().buffer();
        let a = buf.area;
        (1..a.height - 1)
            .map(|y| {
                (1..a.width - 1)
                    .map(|x| buf[(x, y)].symbol())
                    .collect::<String>()
                    .trim_end()
                    .to_string()
            })
            .collect()
    }

    /// Pieces of `text` of uneven sizes (cut anywhere, inside fences and line breaks too).
    fn pieces(text: &str, seed: usize) -> Vec<&str> {
        let mut out = Vec::new();
        let (mut at, mut k) = (0, seed);
        while at < text.len() {
            k = (k * 7 + 3) % 23;
            let mut end = (at + k + 1).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            out.push(&text[at..end]);
            at = end;
        }
        out
    }

    #[test]
    fn blocks_and_rows_made_piece_by_piece_are_those_of_the_whole_text() {
        let text = "Try this:\n```rust\nfn a() { let long_name = another_long_name(with, many, arguments); }\n```\n\
                    some text with words that wrap over the edge of a narrow pane, and a\r\n\
                    verylongwordwithoutanyspacethatmustbecutsomewhere and ünïcödé 漢字漢字漢字漢字漢字 too\n\
                    ````\nx\n```\nstill x\n````\nthe end, unfinished";
        for width in [6, 13, 40] {
            let mut whole = bare();
            whole.asked("q");
            whole.piece(text);
            let mut term = Terminal::new(TestBackend::new(width + 2, 12)).expect("terminal");
            draw(&mut term, &whole, None);
            for seed in 0..4 {
                let mut p = bare();
                p.asked("q");
                for piece in pieces(text, seed) {
                    p.piece(piece);
                    draw(&mut term, &p, None);
                }
                assert_eq!(p.rows(), whole.rows(), "width {width}, seed {seed}");
                assert_eq!(
                    p.entries[0].fences.code(text),
                    code_blocks(text),
                    "seed {seed}"
                );
            }
            // Every row fits (a space at the edge aside), fences being drawn as one mark.
            for r in whole.rows() {
                let shown: String = text[r.start..r.end]
                    .trim_end_matches(' ')
                    .chars()
                    .filter(|c| !c.is_control())
                    .collect();
                let room = match r.part {
                    Part::Text => usize::from(width),
                    Part::Code(_) => usize::from(width) - 2,
                    Part::Open(_) | Part::Close(_) => continue,
                };
                assert!(shown.width() <= room, "{shown:?} in {width}");
            }
        }
    }

    /// A 20 MB answer streamed in pieces: each byte is wrapped into rows about once, frames
    /// after it wrap nothing, and they show the end of the answer and why it was cut.
    #[test]
    fn a_20_mb_answer_is_wrapped_once_and_frames_draw_what_shows() {
        let theme = crate::theme::load_builtin(crate::theme::DEFAULT).expect("theme");
        let mut chunk = String::new();
        for i in 0..40 {
            chunk.push_str(&format!(
                "Paragraph {i}: some words that wrap over the width of the pane, again and again.\n"
            ));
        }
        chunk.push_str("```rust\nfn main() {\n    let x = \"a string\"; // a comment\n}\n```\n");
        let mut answer = String::new();
        while answer.len() < 20 << 20 {
            answer.push_str(&chunk);
        }
        answer.push_str("```rust\nlet last = 1; // the end of the answer");
        let mut p = bare();
        p.asked("write a lot");
        let mut term = Terminal::new(TestBackend::new(80, 40)).expect("terminal");
        for (k, piece) in answer.as_bytes().chunks(4093).enumerate() {
            p.piece(std::str::from_utf8(piece).expect("ASCII"));
            if k % 100 == 0 {
                draw(&mut term, &p, Some(&theme));
            }
        }
        draw(&mut term, &p, Some(&theme));
        // The cut answer ends as the client ends it.
        assert!(p.end(Some(assistant::client::cut_message(20 << 20))));
        draw(&mut term, &p, Some(&theme));
        let wrapped = p.wrapped();
        assert!(
            wrapped < answer.len() + answer.len() / 10,
            "{wrapped} bytes wrapped for {}",
            answer.len()
        );
        for c in "more".chars() {
            p.input.insert(&c.to_string());
            for _ in 0..25 {
                draw(&mut term, &p, Some(&theme));
            }
        }
        assert_eq!(p.wrapped(), wrapped, "frames wrap nothing again");
        let rows = screen(&term);
        let n = rows.len();
        assert_eq!(rows[n - 1], "> more");
        assert_eq!(
            rows[n - 4],
            "the answer was cut at 20 MiB (assistant.max_answer)"
        );
        assert_eq!(rows[n - 5], "│ let last = 1; // the end of the answer");
        let blocks = answer.matches("```rust").count();
        assert_eq!(
            rows[n - 6],
            format!("┌ block {blocks}/{blocks} · Ctrl-Y inserts")
        );
        // The last code line is coloured.
        let buf = term.backend().buffer();
        let y = n as u16 - 4;
        assert!(
            (3..20).any(|x| buf[(x, y)].fg != buf[(3, y)].fg),
            "colours in the last code line"
        );
        assert_eq!(p.blocks.len(), blocks);
        assert_eq!(
            p.blocks[0],
            "fn main() {\n    let x = \"a string\"; // a comment\n}\n"
        );
        // Scrolling goes up to the question, and no further.
        for _ in 0..20 {
            p.scroll(true, u16::MAX);
            draw(&mut term, &p, Some(&theme));
        }
        let rows = screen(&term);
        assert_eq!(rows[0], "you: write a lot");
        assert!(rows[1].starts_with("Paragraph 0: some words"), "{rows:?}");
        p.scroll(false, 1);
        draw(&mut term, &p, Some(&theme));
        assert_eq!(screen(&term)[0], rows[1]);
        assert_eq!(p.wrapped(), wrapped, "scrolling wraps nothing again");
    }
}
