//! A full-screen terminal pager for styled text such as manual pages (face).
//!
//! [`page`] behaves much like `less -R -F`: text that fits on one screen is
//! printed straight to standard output, anything longer is shown in a
//! full-screen view on the alternate screen with `less`-style keys, mouse-wheel
//! scrolling and search.
//!
//! Long lines are soft-wrapped at the terminal width. Continuation rows are
//! indented like the line's own leading whitespace, which keeps the hanging
//! indentation of manual pages readable on narrow terminals.
//!
//! The state of the view lives in a plain struct that handles
//! [`crossterm` events](ratatui::crossterm::event::Event) and draws into a
//! [`ratatui::Frame`], so everything except the terminal set-up itself can be
//! exercised without a terminal.

use std::io::{self, BufWriter, Write};
use std::time::Duration;

use ratatui::backend::CrosstermBackend;
use ratatui::buffer::Buffer;
use ratatui::buffer::CellWidth;
use ratatui::crossterm::event::{
    self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEventKind,
};
use ratatui::crossterm::{execute, terminal};
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::{Frame, Terminal};
use unicode_segmentation::{GraphemeCursor, UnicodeSegmentation};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// A character folded for case-insensitive search. Like `char::to_lowercase`,
/// except that `İ` folds to a plain `i` (not `i` and a combining dot) and a
/// final sigma to `σ`, so that "is" finds "İstanbul" and "σας" finds "ΣΑΣ".
pub(crate) fn fold_char(c: char) -> impl Iterator<Item = char> {
    let single = match c {
        'İ' => Some('i'),
        'ς' => Some('σ'),
        _ => None,
    };
    single
        .into_iter()
        .chain(c.to_lowercase().filter(move |_| single.is_none()))
}

/// Colours the pager itself uses (the page's own lines carry their own styles).
#[derive(Clone, Debug, Default)]
pub struct PagerStyle {
    /// The bottom status bar, the search prompt and the key help box.
    pub status: Style,
    /// Every match of the current search that is on screen, patched over the
    /// style of the text it covers.
    pub search_match: Style,
    /// The match that `n`/`N` (or the search itself) last moved to, patched
    /// over the text's style and [`PagerStyle::search_match`].
    pub current_match: Style,
}

impl PagerStyle {
    /// The theme's pager styles; without colour, plain attributes, so the status bar and
    /// search matches still stand out.
    pub fn of(theme: &crate::theme::Theme, color: bool) -> PagerStyle {
        if color {
            return PagerStyle {
                status: theme.style("pager.status").to_ratatui(),
                search_match: theme.style("pager.match").to_ratatui(),
                current_match: theme.style("pager.current").to_ratatui(),
            };
        }
        let reverse = Style::default().add_modifier(ratatui::style::Modifier::REVERSED);
        PagerStyle {
            status: reverse,
            search_match: reverse,
            current_match: reverse.add_modifier(
                ratatui::style::Modifier::BOLD | ratatui::style::Modifier::UNDERLINED,
            ),
        }
    }
}

/// Shows `lines` in a full-screen pager on the terminal (stdout must be a terminal; the caller checks).
///
/// `title` appears in the status bar (e.g. "man ls").
///
/// If the wrapped text fits on one screen (height - 1 rows), it is printed
/// directly to stdout with ANSI styles and the function returns without
/// entering the full-screen mode (like `less -F -X`); `color == false` means
/// print/draw with no styles at all. If the terminal size cannot be
/// determined the text is printed directly as well.
///
/// Otherwise the terminal is switched to raw mode and the alternate screen,
/// with mouse capture, until the user quits. The terminal is restored on
/// every way out: a normal quit, an I/O error, and a panic (a panic hook
/// restores the terminal before the panic message is printed, and the
/// previously installed hook is put back afterwards).
///
/// Tabs are expanded to 8-column stops and other control characters are
/// removed before anything is printed or drawn, so the text cannot emit
/// escape sequences of its own.
///
/// # Errors
///
/// Returns any error from writing to or configuring the terminal, or from
/// reading terminal events.
pub fn page(
    title: &str,
    lines: Vec<Line<'static>>,
    style: &PagerStyle,
    color: bool,
) -> io::Result<()> {
    let doc = normalize(lines, color);
    // A terminal that reports no size (0 × 0 on some serial consoles) is treated as unknown.
    let size = terminal::size().ok().filter(|&(w, h)| w > 0 && h > 0);
    let Some((width, height)) = size else {
        return print_document(&mut io::stdout().lock(), &doc);
    };
    if fits_on_one_screen(&doc, width, height) {
        return print_document(&mut io::stdout().lock(), &doc);
    }
    // One full-screen view owns the terminal at a time; another one (from another thread)
    // prints.
    let mut pager = Pager::with_document(title, doc, style, color, width, height);
    let screen = match crate::term::enter(false) {
        Some(Ok(screen)) => screen,
        // Without a terminal to read keys from (no controlling terminal), print instead.
        None | Some(Err(_)) => return print_document(&mut io::stdout().lock(), &pager.doc),
    };
    let result = run(&mut pager);
    result.and(screen.leave())
}

// ---------------------------------------------------------------------------
// Document and layout
// ---------------------------------------------------------------------------

/// Tab stops are every this many columns.
const TAB_WIDTH: usize = 8;
/// Rows scrolled per mouse-wheel notch.
const WHEEL_STEP: usize = 3;
/// Key hint shown in the status bar when there is room for it.
const HINT: &str = "q quit \u{b7} / search \u{b7} n next";

/// One logical line, reduced to its plain text plus style runs.
#[derive(Clone, Debug, PartialEq)]
struct DocLine {
    /// The text with tabs expanded and control characters removed.
    text: String,
    /// `(start byte, style)` of each style run, ascending; a run lasts until
    /// the next run's start or the end of the text. Never empty for a
    /// non-empty text, and runs are never empty.
    runs: Vec<(usize, Style)>,
    /// The line's own style, which covers the whole width of its rows.
    style: Style,
    /// Display width of the leading whitespace.
    indent: usize,
}

impl DocLine {
    /// The line's text split into its style runs.
    fn segments(&self) -> impl Iterator<Item = (&str, Style)> + '_ {
        self.runs
            .iter()
            .enumerate()
            .map(move |(i, &(start, style))| {
                let end = self.runs.get(i + 1).map_or(self.text.len(), |run| run.0);
                (&self.text[start..end], style)
            })
    }
}

/// Converts ratatui lines to [`DocLine`]s: span styles are patched over the
/// line style (or dropped when `color` is false), tabs are expanded and
/// other control characters removed.
fn normalize(lines: Vec<Line<'_>>, color: bool) -> Vec<DocLine> {
    lines
        .into_iter()
        .map(|line| {
            let line_style = if color { line.style } else { Style::default() };
            let mut text = String::new();
            let mut runs: Vec<(usize, Style)> = Vec::new();
            let mut column = 0;
            for span in &line.spans {
                let style = if color {
                    line.style.patch(span.style)
                } else {
                    Style::default()
                };
                let start = text.len();
                let content = span.content.as_ref();
                if content.contains(|c: char| c.is_control()) {
                    for c in content.chars() {
                        if c == '\t' {
                            let spaces = TAB_WIDTH - column % TAB_WIDTH;
                            text.extend(std::iter::repeat_n(' ', spaces));
                            column += spaces;
                        } else if !c.is_control() {
                            text.push(c);
                            column += c.width().unwrap_or(0);
                        }
                    }
                } else {
                    text.push_str(content);
                    column += content.width();
                }
                if text.len() > start && runs.last().is_none_or(|run| run.1 != style) {
                    runs.push((start, style));
                }
            }
            let indent = text
                .chars()
                .take_while(|c| c.is_whitespace())
                .map(|c| c.width().unwrap_or(0))
                .sum();
            DocLine {
                text,
                runs,
                style: line_style,
                indent,
            }
        })
        .collect()
}

/// One screen row: a slice of a logical line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Row {
    /// Index of the logical line.
    line: usize,
    /// Byte range of the line's text shown on this row.
    start: usize,
    end: usize,
    /// Blank columns before the text (continuation rows only).
    indent: u16,
}

/// Splits `text` into grapheme clusters `(start, end, display width)`, the
/// same clusters and widths ratatui draws cells with. Wrapping never breaks a
/// cluster.
fn clusters(text: &str) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
    text.grapheme_indices(true)
        .map(|(start, g)| (start, start + g.len(), usize::from(g.cell_width())))
}

/// The start of the grapheme cluster holding byte `at` of `text`.
fn cluster_start(text: &str, at: usize) -> usize {
    let mut cursor = GraphemeCursor::new(at, text.len(), true);
    match cursor.is_boundary(text, 0) {
        Ok(false) => cursor.prev_boundary(text, 0).ok().flatten().unwrap_or(at),
        _ => at,
    }
}

/// The end of the grapheme cluster that byte `at` of `text` falls inside (or
/// `at` itself on a boundary).
fn cluster_end(text: &str, at: usize) -> usize {
    let mut cursor = GraphemeCursor::new(at, text.len(), true);
    match cursor.is_boundary(text, 0) {
        Ok(false) => cursor.next_boundary(text, 0).ok().flatten().unwrap_or(at),
        _ => at,
    }
}

/// Soft-wraps one line to `width` columns, calling `emit(start, end, indent)`
/// for each row. Every line yields at least one row, and every row holds at
/// least one cluster (a cluster wider than the screen gets a row to itself).
/// Continuation rows are indented like the line, but by at most half the
/// width, and not at all where the indentation would leave no room for the
/// next cluster.
fn wrap_line(line: &DocLine, width: u16, mut emit: impl FnMut(usize, usize, u16)) {
    let width = usize::from(width.max(1));
    let text = line.text.as_str();
    // A string is never narrower on screen than its length in bytes.
    if text.len() <= width {
        emit(0, text.len(), 0);
        return;
    }
    let continuation_indent = line.indent.min(width / 2);
    let mut start = 0;
    let mut column = 0;
    let mut indent = 0;
    let mut row_has_text = false;
    for (cluster_start, _, cluster_width) in clusters(text) {
        if row_has_text && column + cluster_width > width {
            emit(start, cluster_start, indent as u16);
            start = cluster_start;
            indent = if continuation_indent + cluster_width <= width {
                continuation_indent
            } else {
                0
            };
            column = indent;
        }
        column += cluster_width;
        row_has_text = true;
    }
    emit(start, text.len(), indent as u16);
}

/// Lays out the whole document at `width` columns.
fn layout(doc: &[DocLine], width: u16) -> Vec<Row> {
    let mut rows = Vec::with_capacity(doc.len());
    for (index, line) in doc.iter().enumerate() {
        wrap_line(line, width, |start, end, indent| {
            rows.push(Row {
                line: index,
                start,
                end,
                indent,
            });
        });
    }
    rows
}

/// Whether the document, wrapped at `width`, fits in the `height - 1` rows
/// above the status bar.
fn fits_on_one_screen(doc: &[DocLine], width: u16, height: u16) -> bool {
    let limit = usize::from(height.saturating_sub(1));
    let mut count = 0;
    for line in doc {
        wrap_line(line, width, |_, _, _| count += 1);
        if count > limit {
            return false;
        }
    }
    true
}

/// Prints the document as ANSI-styled text, one line per logical line.
fn print_document(out: &mut impl Write, doc: &[DocLine]) -> io::Result<()> {
    let mut out = BufWriter::new(out);
    let mut text = String::new();
    for line in doc {
        text.clear();
        crate::ansi::push_ansi(&mut text, line.segments());
        text.push('\n');
        out.write_all(text.as_bytes())?;
    }
    out.flush()
}

// ---------------------------------------------------------------------------
// Search
// ---------------------------------------------------------------------------

/// One occurrence of the search text: a byte range of a logical line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Match {
    line: usize,
    start: usize,
    end: usize,
}

/// Finds a query in lines of text, case-insensitively unless the query has
/// an uppercase letter (smart case).
struct Finder {
    needle: String,
    fold: bool,
    folded: String,
    /// For each byte of `folded`, the start of the original character it came
    /// from, plus one entry for the end of the text.
    origin: Vec<usize>,
}

impl Finder {
    fn new(query: &str) -> Self {
        let fold = !query.chars().any(char::is_uppercase);
        let needle = if fold {
            query.chars().flat_map(fold_char).collect()
        } else {
            query.to_owned()
        };
        Finder {
            needle,
            fold,
            folded: String::new(),
            origin: Vec::new(),
        }
    }

    /// Calls `emit(start, end)` with the byte range of every non-overlapping
    /// occurrence in `text`, in order. Ranges are widened to whole grapheme
    /// clusters, so a match is never drawn as half a glyph (searching for an
    /// accent marks the accented letter).
    fn find(&mut self, text: &str, mut emit: impl FnMut(usize, usize)) {
        let mut last_end = 0;
        let mut emit = |start: usize, end: usize| {
            let start = cluster_start(text, start);
            if start >= last_end {
                last_end = cluster_end(text, end);
                emit(start, last_end);
            }
        };
        if self.needle.is_empty() {
            return;
        }
        if !self.fold {
            for (start, found) in text.match_indices(self.needle.as_str()) {
                emit(start, start + found.len());
            }
            return;
        }
        self.folded.clear();
        if text.is_ascii() {
            self.folded.push_str(text);
            self.folded.make_ascii_lowercase();
            for (start, found) in self.folded.match_indices(self.needle.as_str()) {
                emit(start, start + found.len());
            }
            return;
        }
        self.origin.clear();
        for (index, c) in text.char_indices() {
            for lower in fold_char(c) {
                self.folded.push(lower);
                self.origin.resize(self.folded.len(), index);
            }
        }
        self.origin.push(text.len());
        for (start, found) in self.folded.match_indices(self.needle.as_str()) {
            let end = start + found.len();
            let original_end = if self.origin[end] != self.origin[end - 1] {
                self.origin[end]
            } else {
                // The match ends inside the lowercase expansion of a single
                // character: take in the whole character.
                let char_start = self.origin[end - 1];
                char_start + text[char_start..].chars().next().map_or(0, char::len_utf8)
            };
            emit(self.origin[start], original_end);
        }
    }
}

/// All matches of `query` in the document, in document order.
fn find_matches(doc: &[DocLine], query: &str) -> Vec<Match> {
    let mut finder = Finder::new(query);
    let mut matches = Vec::new();
    for (line, doc_line) in doc.iter().enumerate() {
        finder.find(&doc_line.text, |start, end| {
            matches.push(Match { line, start, end });
        });
    }
    matches
}

/// The last search entered.
#[derive(Debug)]
struct Search {
    query: String,
    /// Whether the search was entered with `?`, which makes `n` go backward.
    backward: bool,
    matches: Vec<Match>,
    /// Index into `matches` of the match last moved to.
    current: Option<usize>,
}

/// The search prompt being edited in the status bar.
#[derive(Debug)]
struct Prompt {
    backward: bool,
    text: String,
}

// ---------------------------------------------------------------------------
// Pager state
// ---------------------------------------------------------------------------

/// What the event loop should do after an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    /// Leave the pager.
    Quit,
    /// The view may have changed: draw it again.
    Redraw,
    /// Nothing changed.
    Idle,
    /// Clear the screen and draw everything again (Ctrl-L, `r`), for a screen
    /// that something else wrote on.
    Repaint,
}

/// Key help shown by `h`: keys, description.
const HELP: [(&str, &str); 14] = [
    ("q Q Esc ^C", "quit"),
    ("j \u{2193} Enter e ^N", "down one row"),
    ("k \u{2191} y ^P", "up one row"),
    ("Space f PgDn ^F", "page down"),
    ("b PgUp ^B", "page up"),
    ("d ^D", "half page down"),
    ("u ^U", "half page up"),
    ("g Home <", "top"),
    ("G End >", "bottom"),
    ("/ ?", "search forward, backward"),
    ("n N", "next, previous match"),
    ("wheel", "scroll 3 rows"),
    ("r ^L", "repaint the screen"),
    ("h", "this help"),
];
/// Width of the key column in the help box.
const HELP_KEY_WIDTH: usize = 17;
/// Key help for terminals too small for the help box.
const HELP_SHORT: &str = "q quit  j/k row  Space/b page  d/u half  g/G ends  / ? search  n/N match";

/// Width and height of the help box, borders included.
fn help_box_size() -> (usize, usize) {
    let width = HELP
        .iter()
        .map(|(_, text)| HELP_KEY_WIDTH + text.width())
        .max()
        .unwrap_or(0)
        + 4;
    (width, HELP.len() + 2)
}

/// The state of the full-screen view: the laid-out document, the scroll
/// position, the search and the status bar.
struct Pager {
    title: String,
    doc: Vec<DocLine>,
    style: PagerStyle,
    /// Terminal size the layout was made for.
    width: u16,
    height: u16,
    rows: Vec<Row>,
    /// Index of the row at the top of the screen.
    top: usize,
    search: Option<Search>,
    prompt: Option<Prompt>,
    /// Shown in the status bar by the next draw only.
    message: Option<String>,
    help: bool,
    /// A terminal size reported since the last draw, not yet laid out.
    pending_size: Option<(u16, u16)>,
}

impl Pager {
    /// A pager for `lines` on a terminal of `width` × `height` cells.
    #[cfg(test)]
    fn new(
        title: &str,
        lines: Vec<Line<'_>>,
        style: &PagerStyle,
        color: bool,
        width: u16,
        height: u16,
    ) -> Self {
        Self::with_document(title, normalize(lines, color), style, color, width, height)
    }

    /// A pager for a document made by [`normalize`] with the same `color`;
    /// without colour the pager's own styles are dropped too.
    fn with_document(
        title: &str,
        doc: Vec<DocLine>,
        style: &PagerStyle,
        color: bool,
        width: u16,
        height: u16,
    ) -> Self {
        let rows = layout(&doc, width);
        Pager {
            title: title.to_owned(),
            doc,
            style: if color {
                style.clone()
            } else {
                PagerStyle::default()
            },
            width,
            height,
            rows,
            top: 0,
            search: None,
            prompt: None,
            message: None,
            help: false,
            pending_size: None,
        }
    }

    /// Rows available for text (all but the status bar).
    fn view_height(&self) -> usize {
        usize::from(self.height.saturating_sub(1))
    }

    /// The largest top row: the last row sits at the bottom of the screen
    /// (or, with no room for text, is the top row).
    fn max_top(&self) -> usize {
        self.rows.len().saturating_sub(self.view_height().max(1))
    }

    fn scroll_to(&mut self, row: usize) {
        self.top = row.min(self.max_top());
    }

    fn scroll_down(&mut self, rows: usize) {
        self.scroll_to(self.top.saturating_add(rows));
    }

    fn scroll_up(&mut self, rows: usize) {
        self.top = self.top.saturating_sub(rows);
    }

    fn page_rows(&self) -> usize {
        self.view_height().max(1)
    }

    fn half_page_rows(&self) -> usize {
        (self.view_height() / 2).max(1)
    }

    /// `(line, byte)` of the start of the top row.
    fn top_position(&self) -> Option<(usize, usize)> {
        self.rows.get(self.top).map(|row| (row.line, row.start))
    }

    /// Index of the row showing byte `byte` of logical line `line`.
    fn row_of(&self, line: usize, byte: usize) -> usize {
        self.rows
            .partition_point(|row| (row.line, row.start) <= (line, byte))
            .saturating_sub(1)
    }

    /// Adapts to a new terminal size: a new width re-wraps the document and
    /// keeps the text that was at the top of the screen there.
    fn resize(&mut self, width: u16, height: u16) {
        if width != self.width {
            let anchor = self.top_position();
            self.width = width;
            self.rows = layout(&self.doc, width);
            self.top = anchor.map_or(0, |(line, byte)| self.row_of(line, byte));
        }
        self.height = height;
        self.scroll_to(self.top);
    }

    /// Handles one terminal event.
    fn handle_event(&mut self, event: &Event) -> Flow {
        match event {
            Event::Key(key) if key.kind != KeyEventKind::Release => self.handle_key(*key),
            Event::Mouse(mouse) if !self.help => match mouse.kind {
                MouseEventKind::ScrollDown => {
                    self.scroll_down(WHEEL_STEP);
                    Flow::Redraw
                }
                MouseEventKind::ScrollUp => {
                    self.scroll_up(WHEEL_STEP);
                    Flow::Redraw
                }
                _ => Flow::Idle,
            },
            Event::Resize(width, height) => {
                // Re-wrapping a long page is the costly part: a burst of resizes
                // (a window being dragged) is settled once, before the next draw.
                self.pending_size = Some((*width, *height));
                Flow::Redraw
            }
            _ => Flow::Idle,
        }
    }

    /// Handles a key press: the help box and the search prompt take keys
    /// first; Ctrl-C always quits.
    fn handle_key(&mut self, key: KeyEvent) -> Flow {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && key.code == KeyCode::Char('c') {
            return Flow::Quit;
        }
        if self.help {
            self.help = false;
            return Flow::Redraw;
        }
        if self.prompt.is_some() {
            return self.handle_prompt_key(key, ctrl);
        }
        if key.modifiers.contains(KeyModifiers::ALT) {
            return Flow::Idle;
        }
        match key.code {
            KeyCode::Char(c) if ctrl => match c {
                'n' | 'e' | 'j' => self.scroll_down(1),
                'p' | 'y' | 'k' => self.scroll_up(1),
                'f' | 'v' => self.scroll_down(self.page_rows()),
                'b' => self.scroll_up(self.page_rows()),
                'd' => self.scroll_down(self.half_page_rows()),
                'u' => self.scroll_up(self.half_page_rows()),
                'l' | 'r' => return Flow::Repaint,
                _ => return Flow::Idle,
            },
            KeyCode::Char(c) => match c {
                'q' | 'Q' => return Flow::Quit,
                'j' | 'e' => self.scroll_down(1),
                'k' | 'y' => self.scroll_up(1),
                ' ' | 'f' => self.scroll_down(self.page_rows()),
                'b' => self.scroll_up(self.page_rows()),
                'd' => self.scroll_down(self.half_page_rows()),
                'u' => self.scroll_up(self.half_page_rows()),
                'g' | '<' => self.top = 0,
                'G' | '>' => self.top = self.max_top(),
                '/' | '?' => {
                    self.prompt = Some(Prompt {
                        backward: c == '?',
                        text: String::new(),
                    });
                }
                'n' => self.search_again(true),
                'N' => self.search_again(false),
                'h' | 'H' => self.show_help(),
                'r' | 'R' => return Flow::Repaint,
                _ => return Flow::Idle,
            },
            KeyCode::Esc => return Flow::Quit,
            KeyCode::Down | KeyCode::Enter => self.scroll_down(1),
            KeyCode::Up => self.scroll_up(1),
            KeyCode::PageDown => self.scroll_down(self.page_rows()),
            KeyCode::PageUp => self.scroll_up(self.page_rows()),
            KeyCode::Home => self.top = 0,
            KeyCode::End => self.top = self.max_top(),
            _ => return Flow::Idle,
        }
        Flow::Redraw
    }

    /// Edits the search prompt: text, Backspace (Ctrl-H), Ctrl-U to clear,
    /// Esc to cancel and Enter to search. Backspace on an empty prompt
    /// cancels it, as in `less`.
    fn handle_prompt_key(&mut self, key: KeyEvent, ctrl: bool) -> Flow {
        let Some(prompt) = self.prompt.as_mut() else {
            return Flow::Idle;
        };
        match key.code {
            KeyCode::Esc => self.prompt = None,
            KeyCode::Enter => {
                if let Some(prompt) = self.prompt.take() {
                    self.submit_search(prompt.text, prompt.backward);
                }
            }
            KeyCode::Backspace | KeyCode::Char('h') if key.code == KeyCode::Backspace || ctrl => {
                if prompt.text.pop().is_none() {
                    self.prompt = None;
                }
            }
            KeyCode::Char('u') if ctrl => prompt.text.clear(),
            KeyCode::Char(c)
                if !key
                    .modifiers
                    .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) =>
            {
                prompt.text.push(c);
            }
            _ => return Flow::Idle,
        }
        Flow::Redraw
    }

    /// Opens the key help box, or lists the keys in the status bar when the
    /// terminal is too small for the box.
    fn show_help(&mut self) {
        let (box_width, box_height) = help_box_size();
        if usize::from(self.width) >= box_width && self.view_height() >= box_height {
            self.help = true;
        } else {
            self.message = Some(HELP_SHORT.to_owned());
        }
    }

    /// Runs a search entered at the prompt. An empty query repeats the last
    /// search in the prompt's direction.
    fn submit_search(&mut self, query: String, backward: bool) {
        if query.is_empty() {
            if let Some(search) = self.search.as_mut() {
                search.backward = backward;
                self.search_again(true);
            } else {
                self.message = Some("No previous search".to_owned());
            }
            return;
        }
        let matches = find_matches(&self.doc, &query);
        if matches.is_empty() {
            self.message = Some(format!("Pattern not found: {query}"));
        }
        self.search = Some(Search {
            query,
            backward,
            matches,
            current: None,
        });
        if let Some((index, wrapped)) = self.match_from_screen(!backward) {
            self.go_to_match(index, wrapped);
        }
    }

    /// `n` (`same_direction`) or `N`: moves to the next match in the
    /// search's direction or the opposite one. From a match that is on
    /// screen this is the neighbouring match; otherwise the search starts
    /// at the top of the screen.
    fn search_again(&mut self, same_direction: bool) {
        let Some(search) = &self.search else {
            self.message = Some("No previous search".to_owned());
            return;
        };
        if search.matches.is_empty() {
            self.message = Some(format!("Pattern not found: {}", search.query));
            return;
        }
        let forward = search.backward != same_direction;
        let count = search.matches.len();
        let visible = self.top..self.top + self.view_height().max(1);
        let on_screen = search.current.filter(|&index| {
            let found = search.matches[index];
            visible.contains(&self.row_of(found.line, found.start))
        });
        let target = match on_screen {
            Some(index) if forward && index + 1 < count => Some((index + 1, false)),
            Some(_) if forward => Some((0, true)),
            Some(index) if index > 0 => Some((index - 1, false)),
            Some(_) => Some((count - 1, true)),
            None => self.match_from_screen(forward),
        };
        if let Some((index, wrapped)) = target {
            self.go_to_match(index, wrapped);
        }
    }

    /// The first match at or after the top of the screen (`forward`), or the
    /// last one before it, wrapping around the document; `None` without
    /// matches. The flag tells whether the search wrapped.
    fn match_from_screen(&self, forward: bool) -> Option<(usize, bool)> {
        let matches = &self.search.as_ref()?.matches;
        if matches.is_empty() {
            return None;
        }
        let top = self.top_position().unwrap_or((0, 0));
        let after = matches.partition_point(|found| (found.line, found.start) < top);
        Some(if forward {
            if after < matches.len() {
                (after, false)
            } else {
                (0, true)
            }
        } else if after > 0 {
            (after - 1, false)
        } else {
            (matches.len() - 1, true)
        })
    }

    /// Makes match `index` current and scrolls its first row to the top of
    /// the screen (as far as the end of the document allows).
    fn go_to_match(&mut self, index: usize, wrapped: bool) {
        let Some(search) = self.search.as_mut() else {
            return;
        };
        let Some(&found) = search.matches.get(index) else {
            return;
        };
        search.current = Some(index);
        self.scroll_to(self.row_of(found.line, found.start));
        if wrapped {
            self.message = Some("search wrapped".to_owned());
        }
    }

    /// The matches on logical line `line` and the index of the first of them
    /// in the list of all matches.
    fn matches_on_line(&self, line: usize) -> (&[Match], usize) {
        let Some(search) = &self.search else {
            return (&[], 0);
        };
        let first = search.matches.partition_point(|found| found.line < line);
        let count = search.matches[first..].partition_point(|found| found.line == line);
        (&search.matches[first..first + count], first)
    }

    /// "lines A-B/TOTAL" and the position: "(TOP)", "(END)" or a percentage.
    fn position_text(&self) -> String {
        let total = self.doc.len();
        let Some(top_row) = self.rows.get(self.top) else {
            return format!("lines 0-0/{total} (END)");
        };
        let view = self.view_height().max(1);
        let bottom = (self.top + view).min(self.rows.len()) - 1;
        let position = if self.top >= self.max_top() {
            "(END)".to_owned()
        } else if self.top == 0 {
            "(TOP)".to_owned()
        } else {
            format!("{}%", (self.top + view) * 100 / self.rows.len())
        };
        format!(
            "lines {}-{}/{total} {position}",
            top_row.line + 1,
            self.rows[bottom].line + 1
        )
    }

    /// The status bar's text, exactly `width` columns wide: the title,
    /// the match counter and any message on the left, the position on the
    /// right and the key hint before it when there is room. The title is
    /// shortened to make room; when even that is not enough the position is
    /// left out, and then the title too if there is a message.
    fn status_text(&self, width: usize) -> String {
        let right = format!("{} ", self.position_text());
        let mut extras = String::new();
        if let Some(search) = &self.search {
            if let Some(current) = search.current {
                extras.push_str(&format!("  match {}/{}", current + 1, search.matches.len()));
            }
        }
        if let Some(message) = &self.message {
            extras.push_str("  ");
            extras.push_str(message);
        }
        let right_width = right.width();
        let fixed = 1 + extras.width() + 2 + right_width;
        let text = if fixed <= width {
            let title = truncate_to_width(&self.title, width - fixed, true);
            let left = format!(" {title}{extras}");
            let left_width = left.width();
            let hint_width = HINT.width() + 3;
            if left_width + 2 + hint_width + right_width <= width {
                let gap = width.saturating_sub(left_width + hint_width + right_width);
                format!("{left}{:gap$}{HINT}   {right}", "")
            } else {
                let gap = width.saturating_sub(left_width + right_width);
                format!("{left}{:gap$}{right}", "")
            }
        } else if extras.is_empty() {
            format!(" {}", self.title)
        } else {
            format!(" {}", extras.trim_start())
        };
        let mut text = truncate_to_width(&text, width, false);
        let pad = width.saturating_sub(text.width());
        text.extend(std::iter::repeat_n(' ', pad));
        text
    }

    /// Draws the visible rows, the status bar and, if open, the key help.
    /// Adapts the layout first if the frame's size differs from the last one.
    fn draw(&mut self, frame: &mut Frame<'_>) {
        let area = frame.area();
        self.pending_size = None;
        self.resize(area.width, area.height);
        let end = (self.top + self.view_height()).min(self.rows.len());
        let buf = frame.buffer_mut();
        for (offset, row) in self.rows[self.top.min(end)..end].iter().enumerate() {
            let row_area = Rect::new(area.x, area.y + offset as u16, area.width, 1);
            self.draw_row(buf, row_area, row);
        }
        if area.height > 0 {
            let status_area = Rect::new(area.x, area.bottom() - 1, area.width, 1);
            self.draw_status(frame, status_area);
        }
        if self.help {
            self.draw_help(frame);
        }
        self.message = None;
    }

    /// Draws one row, splitting it at style-run and match boundaries.
    fn draw_row(&self, buf: &mut Buffer, area: Rect, row: &Row) {
        let line = &self.doc[row.line];
        buf.set_style(area, line.style);
        let text = line.text.as_str();
        let right = area.right();
        let mut x = area.x.saturating_add(row.indent).min(right);
        let (matches, first_match) = self.matches_on_line(row.line);
        let current = self.search.as_ref().and_then(|search| search.current);
        let mut run = line
            .runs
            .partition_point(|&(start, _)| start <= row.start)
            .saturating_sub(1);
        let mut next_match = matches.partition_point(|found| found.end <= row.start);
        let mut pos = row.start;
        while pos < row.end && x < right {
            let run_end = line.runs.get(run + 1).map_or(text.len(), |r| r.0);
            let mut style = line.runs.get(run).map_or(line.style, |r| r.1);
            let mut end = run_end.min(row.end);
            if let Some(found) = matches.get(next_match) {
                if found.start <= pos {
                    end = end.min(found.end);
                    style = style.patch(self.style.search_match);
                    if current == Some(first_match + next_match) {
                        style = style.patch(self.style.current_match);
                    }
                } else {
                    end = end.min(found.start);
                }
            }
            let max_width = usize::from(right - x);
            x = buf
                .set_stringn(x, area.y, &text[pos..end], max_width, style)
                .0;
            pos = end;
            if pos >= run_end {
                run += 1;
            }
            if matches
                .get(next_match)
                .is_some_and(|found| pos >= found.end)
            {
                next_match += 1;
            }
        }
    }

    fn draw_status(&self, frame: &mut Frame<'_>, area: Rect) {
        let style = self.style.status;
        let width = usize::from(area.width);
        let buf = frame.buffer_mut();
        buf.set_style(area, style);
        if let Some(prompt) = &self.prompt {
            if width == 0 {
                return;
            }
            let mut shown = format!("{}{}", if prompt.backward { '?' } else { '/' }, prompt.text);
            // Keep the end of a long query in view, and a cell for the cursor.
            while shown.width() >= width {
                shown.remove(0);
            }
            let (x, y) = buf.set_stringn(area.x, area.y, &shown, width, style);
            frame.set_cursor_position((x.min(area.right() - 1), y));
        } else {
            let text = self.status_text(width);
            buf.set_stringn(area.x, area.y, &text, width, style);
        }
    }

    fn draw_help(&self, frame: &mut Frame<'_>) {
        let area = frame.area();
        let body = Rect::new(area.x, area.y, area.width, area.height.saturating_sub(1));
        let (box_width, box_height) = help_box_size();
        let width = (box_width as u16).min(body.width);
        let height = (box_height as u16).min(body.height);
        if width == 0 || height == 0 {
            return;
        }
        let help_area = Rect::new(
            body.x + (body.width - width) / 2,
            body.y + (body.height - height) / 2,
            width,
            height,
        );
        let lines: Vec<Line<'_>> = HELP
            .iter()
            .map(|(keys, text)| Line::from(format!(" {keys:<HELP_KEY_WIDTH$}{text}")))
            .collect();
        let block = Block::bordered()
            .title(" Keys ")
            .title_bottom(" any key closes ");
        frame.render_widget(Clear, help_area);
        frame.render_widget(
            Paragraph::new(lines).style(self.style.status).block(block),
            help_area,
        );
    }
}

/// Cuts `text` to at most `max` columns without splitting a character,
/// ending it with `…` if `ellipsis` is set and something was cut.
fn truncate_to_width(text: &str, max: usize, ellipsis: bool) -> String {
    if text.width() <= max {
        return text.to_owned();
    }
    let budget = if ellipsis { max.saturating_sub(1) } else { max };
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let width = c.width().unwrap_or(0);
        if used + width > budget {
            break;
        }
        out.push(c);
        used += width;
    }
    if ellipsis && max > 0 {
        out.push('\u{2026}');
    }
    out
}

// ---------------------------------------------------------------------------
// Terminal
// ---------------------------------------------------------------------------

/// At most this many events that arrive together are handled before the
/// screen is drawn again.
const EVENTS_PER_DRAW: usize = 64;

/// Draws and handles events until the user quits. Events that arrive
/// together (a burst of wheel notches or resizes) are handled before the
/// next draw.
fn run(pager: &mut Pager) -> io::Result<()> {
    let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    // Clear directly: `Terminal::clear` asks the terminal where the cursor is and waits for
    // the answer, which some terminals (and pipes posing as terminals) never give.
    execute!(io::stdout(), terminal::Clear(terminal::ClearType::All))?;
    loop {
        terminal.draw(|frame| pager.draw(frame))?;
        let mut redraw = false;
        let mut handled = 0;
        // Wake up now and then to notice a termination signal.
        while !event::poll(Duration::from_millis(100))? {
            if crate::term::signal_pending() {
                return Ok(());
            }
        }
        while !redraw || (handled < EVENTS_PER_DRAW && event::poll(Duration::ZERO)?) {
            if crate::term::signal_pending() {
                return Ok(());
            }
            match pager.handle_event(&event::read()?) {
                Flow::Quit => return Ok(()),
                Flow::Redraw => redraw = true,
                Flow::Repaint => {
                    // Resizing to the same size clears the screen and forgets what
                    // was drawn, so the next draw paints every cell.
                    let size = terminal.size()?;
                    terminal.resize(Rect::new(0, 0, size.width, size.height))?;
                    redraw = true;
                }
                Flow::Idle => {}
            }
            handled += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ansi::line_to_ansi;
    use ratatui::backend::TestBackend;
    use ratatui::crossterm::event::{MouseEvent, MouseEventKind};
    use ratatui::style::{Color, Modifier};
    use ratatui::text::Span;

    fn test_style() -> PagerStyle {
        PagerStyle {
            status: Style::default().bg(Color::Blue),
            search_match: Style::default().bg(Color::Yellow),
            current_match: Style::default().bg(Color::LightRed),
        }
    }

    fn pager(lines: Vec<Line<'static>>, width: u16, height: u16) -> Pager {
        Pager::new("man test", lines, &test_style(), true, width, height)
    }

    fn numbered(count: usize) -> Vec<Line<'static>> {
        (1..=count)
            .map(|i| Line::from(format!("line {i}")))
            .collect()
    }

    fn doc_line(text: &str) -> DocLine {
        normalize(vec![Line::from(text.to_owned())], true).remove(0)
    }

    /// The rows of one line as text, continuation indentation included.
    fn wrapped(text: &str, width: u16) -> Vec<String> {
        let line = doc_line(text);
        let mut rows = Vec::new();
        wrap_line(&line, width, |start, end, indent| {
            rows.push(format!(
                "{}{}",
                " ".repeat(usize::from(indent)),
                &line.text[start..end]
            ));
        });
        rows
    }

    fn key(code: KeyCode) -> Event {
        Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn ch(c: char) -> Event {
        key(KeyCode::Char(c))
    }

    fn ctrl(c: char) -> Event {
        Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
    }

    fn wheel(kind: MouseEventKind) -> Event {
        Event::Mouse(MouseEvent {
            kind,
            column: 0,
            row: 0,
            modifiers: KeyModifiers::NONE,
        })
    }

    #[test]
    fn folding_keeps_one_character_for_dotted_i_and_final_sigma() {
        let p = Pager::new(
            "t",
            vec![Line::raw("İstanbul ΣΑΣ"), Line::raw("x")],
            &PagerStyle::default(),
            true,
            40,
            10,
        );
        let mut p = p;
        search(&mut p, '/', "is");
        assert!(
            p.message
                .as_deref()
                .is_none_or(|m| !m.contains("not found")),
            "{:?}",
            p.message
        );
        search(&mut p, '/', "σας");
        assert!(
            p.message
                .as_deref()
                .is_none_or(|m| !m.contains("not found")),
            "{:?}",
            p.message
        );
    }

    #[test]
    fn halfwidth_sound_marks_wrap_as_ratatui_draws_them() {
        // Each "ｶﾞ" is one cluster, as wide as ratatui will draw it.
        let per_row = 20 / usize::from("ｶﾞ".cell_width());
        let text = "ｶﾞ".repeat(30);
        let mut p = Pager::new(
            "t",
            vec![Line::raw(text)],
            &PagerStyle::default(),
            true,
            20,
            12,
        );
        let rows = 30usize.div_ceil(per_row);
        assert_eq!(p.rows.len(), rows);
        let buf = render(&mut p);
        let shown: String = (0..rows as u16)
            .map(|y| screen_row(&buf, y))
            .collect::<String>();
        assert_eq!(shown.matches("ｶﾞ").count(), 30, "{shown:?}");
    }

    #[test]
    fn searching_for_an_accent_marks_the_whole_letter() {
        let mut p = Pager::new(
            "t",
            vec![Line::raw("cafe\u{301} e\u{301}"), Line::raw("x")],
            &PagerStyle {
                search_match: Style::default().add_modifier(Modifier::REVERSED),
                ..PagerStyle::default()
            },
            true,
            20,
            5,
        );
        search(&mut p, '/', "\u{301}");
        let buf = render(&mut p);
        assert_eq!(screen_row(&buf, 0).trim_end(), "cafe\u{301} e\u{301}");
        assert!(
            buf[(3, 0)].modifier.contains(Modifier::REVERSED),
            "the accented e is marked"
        );
        assert!(!buf[(2, 0)].modifier.contains(Modifier::REVERSED));
    }

    #[test]
    fn repaint_keys_and_a_burst_of_resizes() {
        let mut p = Pager::new(
            "t",
            vec![Line::raw("x"); 50],
            &PagerStyle::default(),
            true,
            40,
            10,
        );
        assert_eq!(p.handle_event(&ch('r')), Flow::Repaint);
        let ctrl_l = Event::Key(KeyEvent::new(KeyCode::Char('l'), KeyModifiers::CONTROL));
        assert_eq!(p.handle_event(&ctrl_l), Flow::Repaint);
        // Resizes are only noted; the last one is laid out once.
        for w in 1..200 {
            assert_eq!(p.handle_event(&Event::Resize(w, 10)), Flow::Redraw);
        }
        assert_eq!(p.width, 40);
        assert_eq!(p.pending_size, Some((199, 10)));
    }

    fn press(pager: &mut Pager, events: &[Event]) {
        for event in events {
            assert_ne!(pager.handle_event(event), Flow::Quit, "{event:?} quit");
        }
        // As the next draw would: lay out for the last size reported.
        if let Some((width, height)) = pager.pending_size.take() {
            pager.resize(width, height);
        }
    }

    fn search(pager: &mut Pager, prompt: char, query: &str) {
        press(pager, &[ch(prompt)]);
        for c in query.chars() {
            press(pager, &[ch(c)]);
        }
        press(pager, &[key(KeyCode::Enter)]);
    }

    fn render(pager: &mut Pager) -> Buffer {
        let mut terminal =
            Terminal::new(TestBackend::new(pager.width, pager.height)).expect("test terminal");
        terminal.draw(|frame| pager.draw(frame)).expect("draw");
        terminal.backend().buffer().clone()
    }

    /// The text of screen row `y`, reading each wide character once.
    fn screen_row(buf: &Buffer, y: u16) -> String {
        let mut out = String::new();
        let mut x = 0;
        while x < buf.area.width {
            let symbol = buf[(x, y)].symbol();
            out.push_str(symbol);
            x += symbol.width().max(1) as u16;
        }
        out
    }

    fn top_line(pager: &Pager) -> usize {
        pager.rows[pager.top].line
    }

    #[test]
    fn wrap_exact_fit_stays_on_one_row() {
        assert_eq!(wrapped("abcdefghij", 10), ["abcdefghij"]);
        assert_eq!(wrapped("abcdefghij", 9), ["abcdefghi", "j"]);
        assert_eq!(wrapped("", 9), [""]);
        // Exactly full rows do not produce an empty trailing row.
        assert_eq!(wrapped("漢字漢字", 4), ["漢字", "漢字"]);
    }

    #[test]
    fn wrap_never_splits_wide_characters() {
        let rows = wrapped("漢字漢字漢", 5);
        assert_eq!(rows, ["漢字", "漢字", "漢"]);
        let rows = wrapped("a漢字", 4);
        assert_eq!(rows, ["a漢", "字"]);
        let rows = wrapped("👍👍👍", 5);
        assert_eq!(rows, ["👍👍", "👍"]);
    }

    #[test]
    fn wrap_keeps_clusters_together() {
        // A combining accent stays with its letter.
        assert_eq!(wrapped("abcde\u{301}f", 5), ["abcde\u{301}", "f"]);
        // A family emoji joined by ZWJ is one two-column glyph.
        let family = "\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}";
        let clustered: Vec<_> = clusters(family).collect();
        assert_eq!(clustered, [(0, family.len(), family.width())]);
        assert_eq!(wrapped(&format!("abc{family}"), 4), ["abc", family]);
        // Skin-tone modifiers belong to the emoji before them.
        let thumb = "\u{1f44d}\u{1f3fd}";
        assert_eq!(clusters(thumb).count(), 1);
        // A variation selector can make a narrow character wide.
        assert_eq!(
            clusters("a\u{2764}\u{fe0f}").collect::<Vec<_>>(),
            [(0, 1, 1), (1, 7, 2)]
        );
    }

    #[test]
    fn wrap_indents_continuation_rows() {
        assert_eq!(
            wrapped("    abcdefghijkl", 10),
            ["    abcdef", "    ghijkl"]
        );
        // Indentation is capped at half the width so text always fits.
        let rows = wrapped(&format!("{}abcdefghijklmnop", " ".repeat(30)), 20);
        let indent = " ".repeat(10);
        assert_eq!(
            rows,
            [
                " ".repeat(20),
                " ".repeat(20),
                format!("{indent}abcdefghij"),
                format!("{indent}klmnop"),
            ]
        );
        // A wide character that would not fit after the indentation starts
        // its row unindented.
        assert_eq!(wrapped(" ab漢", 2), [" a", " b", "漢"]);
    }

    #[test]
    fn wrap_handles_tiny_widths() {
        assert_eq!(wrapped("abc", 1), ["a", "b", "c"]);
        assert_eq!(wrapped("abc", 0), ["a", "b", "c"]);
        // A character wider than the screen gets a row to itself.
        assert_eq!(wrapped("a漢b", 1), ["a", "漢", "b"]);
        assert_eq!(wrapped("  ab", 1), [" ", " ", "a", "b"]);
    }

    #[test]
    fn tabs_are_expanded_and_control_characters_removed() {
        let doc = normalize(
            vec![Line::from(vec![
                Span::raw("a\tb"),
                Span::styled("\tc\x1b[31m", Style::default().fg(Color::Red)),
            ])],
            true,
        );
        assert_eq!(doc[0].text, "a       b       c[31m");
        assert_eq!(
            doc[0].runs,
            [(0, Style::default()), (9, Style::default().fg(Color::Red))]
        );
        assert_eq!(doc_line("\t  x").indent, 10);
    }

    #[test]
    fn scrolling_is_clamped_at_top_and_bottom() {
        let mut p = pager(numbered(100), 20, 11);
        press(&mut p, &[ch('k'), key(KeyCode::Up), ctrl('p'), ch('y')]);
        assert_eq!(p.top, 0);
        press(
            &mut p,
            &[
                ch('j'),
                key(KeyCode::Down),
                key(KeyCode::Enter),
                ctrl('n'),
                ch('e'),
            ],
        );
        assert_eq!(p.top, 5);
        press(&mut p, &[ch('G')]);
        assert_eq!(p.top, 90, "last row at the bottom of the screen");
        press(&mut p, &[ch('j'), key(KeyCode::PageDown), ch(' '), ch('d')]);
        assert_eq!(p.top, 90);
        press(&mut p, &[ch('k')]);
        assert_eq!(p.top, 89);
        press(&mut p, &[ch('g')]);
        assert_eq!(p.top, 0);
        press(&mut p, &[key(KeyCode::End)]);
        assert_eq!(p.top, 90);
        press(&mut p, &[key(KeyCode::Home)]);
        assert_eq!(p.top, 0);
        press(&mut p, &[ch('>')]);
        assert_eq!(p.top, 90);
        press(&mut p, &[ch('<')]);
        assert_eq!(p.top, 0);
    }

    #[test]
    fn page_and_half_page_moves() {
        let mut p = pager(numbered(100), 20, 11);
        press(&mut p, &[ch(' ')]);
        assert_eq!(p.top, 10);
        press(&mut p, &[key(KeyCode::PageDown), ch('f'), ctrl('f')]);
        assert_eq!(p.top, 40);
        press(&mut p, &[ch('b')]);
        assert_eq!(p.top, 30);
        press(&mut p, &[key(KeyCode::PageUp), ctrl('b')]);
        assert_eq!(p.top, 10);
        press(&mut p, &[ch('d')]);
        assert_eq!(p.top, 15);
        press(&mut p, &[ctrl('d')]);
        assert_eq!(p.top, 20);
        press(&mut p, &[ch('u'), ctrl('u')]);
        assert_eq!(p.top, 10);
        press(&mut p, &[ch('b'), ch('b')]);
        assert_eq!(p.top, 0);
        press(&mut p, &[ch('G'), ch('b'), ch(' '), ch(' ')]);
        assert_eq!(p.top, 90);
    }

    #[test]
    fn short_document_never_scrolls() {
        let mut p = pager(numbered(3), 20, 11);
        press(&mut p, &[ch('G'), ch(' '), ch('j')]);
        assert_eq!(p.top, 0);
        assert!(
            p.position_text().ends_with("(END)"),
            "{}",
            p.position_text()
        );
    }

    #[test]
    fn mouse_wheel_scrolls_three_rows() {
        let mut p = pager(numbered(20), 20, 11);
        press(&mut p, &[wheel(MouseEventKind::ScrollDown)]);
        assert_eq!(p.top, 3);
        press(&mut p, &[wheel(MouseEventKind::ScrollDown)]);
        assert_eq!(p.top, 6);
        press(&mut p, &[wheel(MouseEventKind::ScrollUp)]);
        assert_eq!(p.top, 3);
        press(&mut p, &vec![wheel(MouseEventKind::ScrollDown); 5]);
        assert_eq!(p.top, 10, "clamped at the bottom");
        press(&mut p, &vec![wheel(MouseEventKind::ScrollUp); 5]);
        assert_eq!(p.top, 0, "clamped at the top");
        assert_eq!(
            p.handle_event(&wheel(MouseEventKind::Moved)),
            Flow::Idle,
            "mouse motion does not redraw"
        );
    }

    #[test]
    fn resize_rewraps_and_keeps_the_top_line() {
        let lines: Vec<Line<'static>> = (0..60)
            .map(|i| Line::from(format!("{i:02} {}", "word ".repeat(8))))
            .collect();
        let mut p = pager(lines, 60, 11);
        assert_eq!(p.rows.len(), 60);
        press(&mut p, &[ch(' '), ch(' '), ch(' ')]);
        assert_eq!(top_line(&p), 30);
        press(&mut p, &[Event::Resize(20, 11)]);
        assert_eq!(p.rows.len(), 60 * 3);
        assert_eq!(top_line(&p), 30);
        assert_eq!(p.rows[p.top].start, 0);
        // Scroll into a continuation row, then widen: the text at the top
        // stays in view.
        press(&mut p, &[ch('j')]);
        assert_eq!((top_line(&p), p.rows[p.top].start), (30, 20));
        press(&mut p, &[Event::Resize(60, 11)]);
        assert_eq!((top_line(&p), p.top), (30, 30));
        // A taller terminal near the end clamps the top.
        press(&mut p, &[ch('G'), Event::Resize(60, 31)]);
        assert_eq!(p.top, 30);
        // draw() picks up a size change it was not told about.
        let mut terminal = Terminal::new(TestBackend::new(20, 11)).unwrap();
        terminal.draw(|frame| p.draw(frame)).unwrap();
        assert_eq!((p.width, p.rows.len()), (20, 180));
    }

    fn search_doc() -> Vec<Line<'static>> {
        (0..100)
            .map(|i| {
                Line::from(match i {
                    10 => "a foo here".to_owned(),
                    40 => "FOO loud".to_owned(),
                    70 => "Foo title".to_owned(),
                    _ => format!("filler {i}"),
                })
            })
            .collect()
    }

    #[test]
    fn search_forward_from_the_top_of_the_screen() {
        let mut p = pager(search_doc(), 40, 11);
        search(&mut p, '/', "foo");
        assert_eq!(p.top, 10);
        assert_eq!(p.search.as_ref().unwrap().current, Some(0));
        assert!(
            p.status_text(40).contains("match 1/3"),
            "{}",
            p.status_text(40)
        );
        // A new search starts at the current top, not at the start.
        press(&mut p, &[ch('g'), ch(' '), ch(' '), ch(' ')]);
        assert_eq!(p.top, 30);
        search(&mut p, '/', "foo");
        assert_eq!(p.top, 40);
        assert_eq!(p.search.as_ref().unwrap().current, Some(1));
        // Matches on the top row itself count.
        search(&mut p, '/', "foo");
        assert_eq!(p.top, 40);
        assert_eq!(p.message, None);
        // Below the last match the search wraps to the first.
        press(&mut p, &[ch('G')]);
        search(&mut p, '/', "foo");
        assert_eq!(p.top, 10);
        assert_eq!(p.message.as_deref(), Some("search wrapped"));
    }

    #[test]
    fn n_and_shift_n_wrap_around() {
        let mut p = pager(search_doc(), 40, 11);
        search(&mut p, '/', "foo");
        press(&mut p, &[ch('n')]);
        assert_eq!(p.top, 40);
        press(&mut p, &[ch('n')]);
        assert_eq!(p.top, 70);
        assert_eq!(p.message, None);
        press(&mut p, &[ch('n')]);
        assert_eq!(p.top, 10);
        assert_eq!(p.message.as_deref(), Some("search wrapped"));
        assert!(p.status_text(80).contains("search wrapped"));
        render(&mut p);
        assert_eq!(p.message, None, "messages last one redraw");
        press(&mut p, &[ch('N')]);
        assert_eq!(p.top, 70);
        assert_eq!(p.message.as_deref(), Some("search wrapped"));
        press(&mut p, &[ch('N')]);
        assert_eq!(p.top, 40);
        assert!(p.status_text(80).contains("match 2/3"));
    }

    #[test]
    fn n_continues_from_the_screen_after_scrolling_away() {
        let mut p = pager(search_doc(), 40, 11);
        search(&mut p, '/', "foo");
        press(&mut p, &[ch('G')]);
        assert_eq!(p.top, 90);
        press(&mut p, &[ch('N')]);
        assert_eq!(p.top, 70);
        assert_eq!(p.search.as_ref().unwrap().current, Some(2));
    }

    #[test]
    fn backward_search_reverses_n() {
        let mut p = pager(search_doc(), 40, 11);
        press(&mut p, &[ch('G')]);
        search(&mut p, '?', "foo");
        assert_eq!(p.top, 70);
        press(&mut p, &[ch('n')]);
        assert_eq!(p.top, 40);
        press(&mut p, &[ch('N')]);
        assert_eq!(p.top, 70);
        press(&mut p, &[ch('n'), ch('n')]);
        assert_eq!(p.top, 10);
        press(&mut p, &[ch('n')]);
        assert_eq!(p.top, 70);
        assert_eq!(p.message.as_deref(), Some("search wrapped"));
        // From the top, the match before the screen is the last one.
        press(&mut p, &[ch('g')]);
        search(&mut p, '?', "foo");
        assert_eq!(p.top, 70);
        assert_eq!(p.message.as_deref(), Some("search wrapped"));
    }

    #[test]
    fn search_not_found_keeps_the_view() {
        let mut p = pager(search_doc(), 40, 11);
        press(&mut p, &[ch(' ')]);
        search(&mut p, '/', "zzz");
        assert_eq!(p.top, 10);
        assert_eq!(p.message.as_deref(), Some("Pattern not found: zzz"));
        let buf = render(&mut p);
        assert!(screen_row(&buf, 10).contains("Pattern not found: zzz"));
        let buf = render(&mut p);
        assert!(!screen_row(&buf, 10).contains("Pattern not found"));
        press(&mut p, &[ch('n')]);
        assert_eq!(p.top, 10);
        assert_eq!(p.message.as_deref(), Some("Pattern not found: zzz"));
    }

    #[test]
    fn smart_case() {
        let doc = normalize(search_doc(), true);
        assert_eq!(find_matches(&doc, "foo").len(), 3);
        let exact = find_matches(&doc, "Foo");
        assert_eq!(
            exact,
            [Match {
                line: 70,
                start: 0,
                end: 3
            }]
        );
        assert_eq!(find_matches(&doc, "FOO")[0].line, 40);
        assert_eq!(find_matches(&doc, "FOO").len(), 1);
    }

    #[test]
    fn case_folding_maps_back_to_original_bytes() {
        let doc = normalize(
            vec![
                Line::from("xÄBÇ äbç"),
                Line::from("\u{130}x"),
                Line::from("cafe\u{301} cafe"),
            ],
            true,
        );
        let found = find_matches(&doc, "äbç");
        assert_eq!(found.len(), 2);
        assert_eq!(&doc[0].text[found[0].start..found[0].end], "ÄBÇ");
        assert_eq!(&doc[0].text[found[1].start..found[1].end], "äbç");
        // U+0130 lowercases to two characters; a match of the first one
        // covers the whole original character.
        let found = find_matches(&doc, "i");
        assert_eq!((found[0].line, found[0].start, found[0].end), (1, 0, 2));
        // A match takes in the combining accent after it.
        let found = find_matches(&doc, "cafe");
        assert_eq!(&doc[2].text[found[0].start..found[0].end], "cafe\u{301}");
        assert_eq!(&doc[2].text[found[1].start..found[1].end], "cafe");
        // Non-overlapping, left to right.
        let doc = normalize(vec![Line::from("aaaa")], true);
        assert_eq!(find_matches(&doc, "aa").len(), 2);
    }

    #[test]
    fn prompt_editing_and_repeat() {
        let mut p = pager(search_doc(), 40, 11);
        press(&mut p, &[ch('/'), ch('x'), key(KeyCode::Esc)]);
        assert!(p.prompt.is_none() && p.search.is_none(), "Esc cancels");
        press(&mut p, &[ch('/'), ch('x'), key(KeyCode::Backspace)]);
        assert_eq!(p.prompt.as_ref().unwrap().text, "");
        press(&mut p, &[key(KeyCode::Backspace)]);
        assert!(p.prompt.is_none(), "Backspace on an empty prompt cancels");
        press(&mut p, &[ch('/'), key(KeyCode::Enter)]);
        assert_eq!(p.message.as_deref(), Some("No previous search"));
        // q typed into the prompt is text, not quit.
        press(&mut p, &[ch('/'), ch('q'), ch('u'), ctrl('u'), ch('f')]);
        assert_eq!(p.prompt.as_ref().unwrap().text, "f");
        press(
            &mut p,
            &[
                ch('x'),
                key(KeyCode::Backspace),
                ch('y'),
                ctrl('h'),
                ch('o'),
                ch('o'),
            ],
        );
        press(&mut p, &[key(KeyCode::Enter)]);
        assert_eq!(p.top, 10);
        // An empty search repeats the last one.
        search(&mut p, '/', "");
        assert_eq!(p.top, 40);
        search(&mut p, '?', "");
        assert_eq!(p.top, 10);
        assert!(p.search.as_ref().unwrap().backward);
    }

    #[test]
    fn prompt_is_drawn_with_cursor() {
        let mut p = pager(numbered(50), 20, 5);
        press(&mut p, &[ch('?'), ch('a'), ch('b')]);
        let mut terminal = Terminal::new(TestBackend::new(20, 5)).unwrap();
        terminal.draw(|frame| p.draw(frame)).unwrap();
        assert_eq!(screen_row(terminal.backend().buffer(), 4).trim_end(), "?ab");
        terminal.backend_mut().assert_cursor_position((3, 4));
        // A long query shows its end.
        for _ in 0..30 {
            press(&mut p, &[ch('z')]);
        }
        press(&mut p, &[ch('!')]);
        terminal.draw(|frame| p.draw(frame)).unwrap();
        assert_eq!(
            screen_row(terminal.backend().buffer(), 4),
            format!("{}! ", "z".repeat(18))
        );
        terminal.backend_mut().assert_cursor_position((19, 4));
    }

    /// A long line with `foo` on a continuation row and straddling a wrap.
    fn wrapped_search_doc() -> Vec<Line<'static>> {
        let mut long = "x".repeat(50);
        long.replace_range(12..15, "foo");
        long.replace_range(38..41, "foo");
        let mut lines = vec![Line::from("-"); 30];
        lines.push(Line::from(long));
        lines.extend(vec![Line::from("-"); 30]);
        lines
    }

    #[test]
    fn n_moves_across_wrapped_rows() {
        let mut p = pager(wrapped_search_doc(), 10, 6);
        search(&mut p, '/', "foo");
        assert_eq!((top_line(&p), p.rows[p.top].start), (30, 10));
        press(&mut p, &[ch('n')]);
        assert_eq!((top_line(&p), p.rows[p.top].start), (30, 30));
        press(&mut p, &[ch('N')]);
        assert_eq!((top_line(&p), p.rows[p.top].start), (30, 10));
        // Scrolled into the middle of the long line, a backward search finds
        // the match in the row above.
        press(&mut p, &[ch('j'), ch('j'), ch('j')]);
        search(&mut p, '?', "foo");
        assert_eq!((top_line(&p), p.rows[p.top].start), (30, 30));
    }

    #[test]
    fn highlight_straddles_wrap_point() {
        let mut p = pager(wrapped_search_doc(), 10, 6);
        search(&mut p, '/', "foo");
        press(&mut p, &[ch('n')]);
        let buf = render(&mut p);
        assert_eq!(screen_row(&buf, 0), "xxxxxxxxfo");
        assert_eq!(screen_row(&buf, 1), "oxxxxxxxxx");
        let current = Style::default().bg(Color::LightRed);
        for (x, y) in [(8, 0), (9, 0), (0, 1)] {
            assert_eq!(buf[(x, y)].bg, Color::LightRed, "cell {x},{y}");
            assert_eq!(buf[(x, y)].style(), buf[(x, y)].style().patch(current));
        }
        assert_eq!(buf[(7, 0)].bg, Color::Reset);
        assert_eq!(buf[(1, 1)].bg, Color::Reset);
        // The other match, above, is highlighted as a plain match.
        press(&mut p, &[ch('k'), ch('k')]);
        let buf = render(&mut p);
        assert_eq!(screen_row(&buf, 0), "xxfooxxxxx");
        assert_eq!(buf[(2, 0)].bg, Color::Yellow);
        assert_eq!(buf[(4, 0)].bg, Color::Yellow);
        assert_eq!(buf[(5, 0)].bg, Color::Reset);
        assert_eq!(buf[(8, 2)].bg, Color::LightRed);
    }

    #[test]
    fn highlight_spans_style_boundaries() {
        let red = Style::default().fg(Color::Red);
        let green = Style::default()
            .fg(Color::Green)
            .add_modifier(Modifier::BOLD);
        let lines = vec![
            Line::from(vec![Span::styled("xxab", red), Span::styled("cdyy", green)]),
            Line::from(vec![Span::raw("abcd")]),
        ];
        let mut p = pager(lines, 20, 4);
        search(&mut p, '/', "bc");
        let buf = render(&mut p);
        assert_eq!(screen_row(&buf, 0).trim_end(), "xxabcdyy");
        // The current match keeps each span's foreground.
        assert_eq!(
            (buf[(3, 0)].fg, buf[(3, 0)].bg),
            (Color::Red, Color::LightRed)
        );
        assert_eq!(
            (buf[(4, 0)].fg, buf[(4, 0)].bg),
            (Color::Green, Color::LightRed)
        );
        assert!(buf[(4, 0)].modifier.contains(Modifier::BOLD));
        assert_eq!((buf[(2, 0)].fg, buf[(2, 0)].bg), (Color::Red, Color::Reset));
        assert_eq!(
            (buf[(5, 0)].fg, buf[(5, 0)].bg),
            (Color::Green, Color::Reset)
        );
        // The other match on screen uses the plain match style.
        assert_eq!(buf[(0, 1)].bg, Color::Reset);
        assert_eq!(buf[(1, 1)].bg, Color::Yellow);
        assert_eq!(buf[(2, 1)].bg, Color::Yellow);
        assert_eq!(buf[(3, 1)].bg, Color::Reset);
        // The status bar has the status style across the whole row.
        assert!((0..20).all(|x| buf[(x, 3)].bg == Color::Blue));
    }

    #[test]
    fn highlight_across_wide_characters_and_indentation() {
        let lines = vec![Line::from("  漢字漢字漢字")];
        let mut p = pager(lines, 8, 4);
        assert_eq!(p.rows.len(), 2);
        search(&mut p, '/', "字漢字");
        let buf = render(&mut p);
        assert_eq!(screen_row(&buf, 0), "  漢字漢");
        assert_eq!(screen_row(&buf, 1), "  字漢字");
        assert_eq!(buf[(4, 0)].symbol(), "字");
        assert_eq!(buf[(4, 0)].bg, Color::LightRed);
        assert_eq!(buf[(6, 0)].bg, Color::LightRed);
        assert_eq!(buf[(2, 1)].symbol(), "字");
        assert_eq!(buf[(2, 1)].bg, Color::LightRed);
        assert_eq!(buf[(4, 1)].bg, Color::Reset);
        assert_eq!(buf[(2, 0)].bg, Color::Reset);
    }

    #[test]
    fn no_color_draws_without_styles() {
        let lines = vec![Line::styled("abc", Style::default().fg(Color::Red)); 20];
        let mut p = Pager::new("t", lines, &test_style(), false, 10, 5);
        search(&mut p, '/', "b");
        let buf = render(&mut p);
        assert_eq!(screen_row(&buf, 0), "abc       ");
        for y in 0..5 {
            for x in 0..10 {
                let cell = &buf[(x, y)];
                assert_eq!(
                    (cell.fg, cell.bg, cell.modifier),
                    (Color::Reset, Color::Reset, Modifier::empty()),
                    "cell {x},{y}"
                );
            }
        }
    }

    #[test]
    fn line_style_covers_the_row() {
        let lines = vec![Line::from("ab").style(Style::default().bg(Color::Green)); 10];
        let mut p = pager(lines, 6, 4);
        let buf = render(&mut p);
        assert!((0..6).all(|x| buf[(x, 0)].bg == Color::Green));
    }

    #[test]
    fn status_bar_text() {
        let mut p = pager(numbered(100), 80, 11);
        let status = p.status_text(80);
        assert_eq!(status.width(), 80);
        assert!(status.starts_with(" man test "), "{status}");
        assert!(status.ends_with("q quit \u{b7} / search \u{b7} n next   lines 1-10/100 (TOP) "));
        press(&mut p, &[ch(' ')]);
        assert!(p.status_text(80).ends_with("lines 11-20/100 20% "));
        press(&mut p, &[ch('G')]);
        assert!(p.status_text(80).ends_with("lines 91-100/100 (END) "));
        // The hint is left out when it does not fit, the title is shortened.
        let status = p.status_text(40);
        assert_eq!(status.width(), 40);
        assert!(!status.contains("quit"), "{status}");
        assert!(status.ends_with("lines 91-100/100 (END) "));
        p.title = "a very long title for a narrow screen".to_owned();
        let status = p.status_text(40);
        assert!(status.starts_with(" a very long"), "{status}");
        assert!(status.contains('\u{2026}'), "{status}");
        assert!(status.ends_with("  lines 91-100/100 (END) "), "{status}");
        // Too narrow for the position: the title, or a message, wins.
        assert_eq!(p.status_text(12), " a very long");
        p.message = Some("search wrapped".to_owned());
        assert_eq!(p.status_text(12), " search wrap");
        assert_eq!(p.status_text(0), "");
        // Logical lines, not rows, are counted.
        let mut p = pager(vec![Line::from("x".repeat(30)); 10], 10, 6);
        press(&mut p, &[ch('j')]);
        assert!(
            p.status_text(60).ends_with("lines 1-2/10 20% "),
            "{}",
            p.status_text(60)
        );
        // The rendered status row shows the same text.
        let mut p = pager(numbered(100), 80, 11);
        let buf = render(&mut p);
        assert_eq!(screen_row(&buf, 10), p.status_text(80));
    }

    #[test]
    fn tiny_terminals_do_not_panic() {
        for (width, height) in [
            (5, 1),
            (1, 1),
            (0, 0),
            (5, 0),
            (0, 5),
            (5, 3),
            (1, 2),
            (3, 30),
        ] {
            let mut lines = numbered(50);
            lines.push(Line::from(
                "  漢字 wide and a long line that wraps several times",
            ));
            let mut p = pager(lines, width, height);
            let buf = render(&mut p);
            assert_eq!(buf.area, Rect::new(0, 0, width, height));
            for event in [
                ch('G'),
                ch('j'),
                ch('b'),
                ch('d'),
                ch('h'),
                ch('x'),
                ch('/'),
                ch('w'),
                key(KeyCode::Enter),
                ch('n'),
                ch('N'),
                ch('?'),
                ch('1'),
                key(KeyCode::Enter),
                wheel(MouseEventKind::ScrollDown),
                Event::Resize(width, height),
            ] {
                p.handle_event(&event);
                assert!(p.top <= p.max_top());
                render(&mut p);
            }
        }
    }

    #[test]
    fn one_row_terminal_shows_only_the_status_bar() {
        let mut p = pager(numbered(10), 30, 1);
        let buf = render(&mut p);
        assert!(
            screen_row(&buf, 0).starts_with(" man test"),
            "{}",
            screen_row(&buf, 0)
        );
        press(&mut p, &[ch('j'), ch('j')]);
        assert_eq!(p.top, 2);
        press(&mut p, &[ch('G')]);
        assert_eq!(p.top, 9);
        search(&mut p, '/', "line 4");
        assert_eq!(p.top, 3);
        press(&mut p, &[ch('n')]);
        assert_eq!(p.top, 3);
        assert_eq!(p.message.as_deref(), Some("search wrapped"));
        // Five columns: the status bar is cut, not wrapped.
        let mut p = pager(numbered(10), 5, 3);
        let buf = render(&mut p);
        assert_eq!(screen_row(&buf, 0), "line ");
        assert_eq!(screen_row(&buf, 1), "1    ");
        assert_eq!(screen_row(&buf, 2), " man ");
    }

    #[test]
    fn empty_document() {
        let mut p = pager(Vec::new(), 40, 5);
        press(&mut p, &[ch('G'), ch('j'), ch('k')]);
        assert_eq!(p.top, 0);
        search(&mut p, '/', "x");
        assert_eq!(p.message.as_deref(), Some("Pattern not found: x"));
        let buf = render(&mut p);
        assert!(
            screen_row(&buf, 4).contains("Pattern not found: x"),
            "{}",
            screen_row(&buf, 4)
        );
        let buf = render(&mut p);
        assert!(
            screen_row(&buf, 4).ends_with(" lines 0-0/0 (END) "),
            "{}",
            screen_row(&buf, 4)
        );
        assert!(fits_on_one_screen(&[], 20, 0));
    }

    #[test]
    fn fits_on_one_screen_decision() {
        let doc = normalize(numbered(10), true);
        assert!(fits_on_one_screen(&doc, 80, 11));
        assert!(!fits_on_one_screen(&doc, 80, 10));
        assert!(!fits_on_one_screen(&doc, 80, 1));
        // Wrapped rows count, not lines.
        let mut lines = numbered(9);
        lines.push(Line::from("y".repeat(100)));
        let doc = normalize(lines, true);
        assert!(fits_on_one_screen(&doc, 100, 11));
        assert!(!fits_on_one_screen(&doc, 99, 11));
        assert!(fits_on_one_screen(&doc, 99, 12));
    }

    #[test]
    fn help_overlay_and_any_key_closes_it() {
        let mut p = pager(numbered(100), 60, 20);
        press(&mut p, &[ch('h')]);
        assert!(p.help);
        let buf = render(&mut p);
        let screen: Vec<String> = (0..20).map(|y| screen_row(&buf, y)).collect();
        assert!(
            screen.iter().any(|row| row.contains("half page down")),
            "{screen:#?}"
        );
        assert!(screen.iter().any(|row| row.contains("Keys")));
        // The key that closes the help does nothing else.
        press(&mut p, &[ch('j')]);
        assert!(!p.help);
        assert_eq!(p.top, 0);
        let buf = render(&mut p);
        assert!(!(0..20).any(|y| screen_row(&buf, y).contains("half page down")));
        // On a small terminal the keys are listed in the status bar instead.
        let mut p = pager(numbered(100), 30, 6);
        press(&mut p, &[ch('h')]);
        assert!(!p.help);
        assert_eq!(p.message.as_deref(), Some(HELP_SHORT));
    }

    #[test]
    fn quit_keys() {
        for event in [ch('q'), ch('Q'), key(KeyCode::Esc), ctrl('c')] {
            let mut p = pager(numbered(100), 20, 5);
            assert_eq!(p.handle_event(&event), Flow::Quit, "{event:?}");
        }
        let mut p = pager(numbered(100), 60, 20);
        press(
            &mut p,
            &[ch('/'), key(KeyCode::Esc), ch('h'), key(KeyCode::Esc)],
        );
        assert!(!p.help && p.prompt.is_none());
        assert_eq!(p.handle_event(&ctrl('c')), Flow::Quit);
        let mut p = pager(numbered(100), 20, 5);
        press(&mut p, &[ch('/')]);
        assert_eq!(
            p.handle_event(&ctrl('c')),
            Flow::Quit,
            "Ctrl-C quits from the prompt"
        );
    }

    #[test]
    fn key_releases_are_ignored() {
        let mut p = pager(numbered(100), 20, 5);
        let mut release = KeyEvent::new(KeyCode::Char('j'), KeyModifiers::NONE);
        release.kind = KeyEventKind::Release;
        assert_eq!(p.handle_event(&Event::Key(release)), Flow::Idle);
        assert_eq!(p.top, 0);
        let shifted = KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT);
        press(&mut p, &[Event::Key(shifted)]);
        assert_eq!(p.top, 96);
    }

    #[test]
    fn large_document_scrolls_by_visible_rows() {
        let lines: Vec<Line<'static>> = (0..100_000)
            .map(|i| {
                Line::from(vec![
                    Span::raw(format!("{i:06} ")),
                    Span::raw("text ".repeat(i % 30)),
                ])
            })
            .collect();
        let mut p = pager(lines, 80, 25);
        search(&mut p, '/', "099999");
        assert_eq!(p.top, p.max_top(), "near the end, clamped");
        let buf = render(&mut p);
        let y = (0..24)
            .find(|&y| screen_row(&buf, y).starts_with("099999"))
            .expect("match on screen");
        assert!((0..6).all(|x| buf[(x, y)].bg == Color::LightRed));
        assert_eq!(buf[(6, y)].bg, Color::Reset);
        assert!(
            screen_row(&buf, 24).contains("lines 99984-100000/100000 (END)"),
            "{}",
            screen_row(&buf, 24)
        );
        press(&mut p, &[ch('g')]);
        let buf = render(&mut p);
        assert!(screen_row(&buf, 0).starts_with("000000"));
    }

    #[test]
    fn line_to_ansi_converts_styles() {
        let plain = Line::from("plain");
        assert_eq!(line_to_ansi(&plain, true), "plain");
        let line = Line::from(vec![
            Span::raw("a "),
            Span::styled(
                "bold",
                Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
            ),
            Span::styled(
                "same",
                Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
            ),
            Span::styled(
                "rgb",
                Style::default()
                    .fg(Color::Rgb(1, 2, 3))
                    .bg(Color::Indexed(200)),
            ),
            Span::raw(" end"),
        ]);
        assert_eq!(
            line_to_ansi(&line, true),
            "a \x1b[1;31mboldsame\x1b[0;38;2;1;2;3;48;5;200mrgb\x1b[0m end"
        );
        assert_eq!(line_to_ansi(&line, false), "a boldsamergb end");
        let modifiers =
            Modifier::DIM | Modifier::ITALIC | Modifier::UNDERLINED | Modifier::REVERSED;
        let line = Line::from(Span::styled(
            "m",
            Style::default()
                .add_modifier(modifiers)
                .bg(Color::LightCyan)
                .fg(Color::Gray),
        ));
        assert_eq!(line_to_ansi(&line, true), "\x1b[2;3;4;7;37;106mm\x1b[0m");
    }

    #[test]
    fn line_to_ansi_patches_the_line_style() {
        let line = Line::from(vec![
            Span::raw("a"),
            Span::styled("b", Style::default().fg(Color::White)),
        ])
        .style(Style::default().fg(Color::DarkGray).bg(Color::Black));
        assert_eq!(
            line_to_ansi(&line, true),
            "\x1b[90;40ma\x1b[0;97;40mb\x1b[0m"
        );
        // A modifier removed by the span is not emitted.
        let line = Line::from(Span::styled(
            "x",
            Style::default().remove_modifier(Modifier::BOLD),
        ))
        .style(Style::default().add_modifier(Modifier::BOLD | Modifier::ITALIC));
        assert_eq!(line_to_ansi(&line, true), "\x1b[3mx\x1b[0m");
        // Reset colours are explicit defaults.
        let line = Line::from(Span::styled(
            "r",
            Style::default().fg(Color::Reset).bg(Color::Reset),
        ));
        assert_eq!(line_to_ansi(&line, true), "\x1b[39;49mr\x1b[0m");
    }

    #[test]
    fn direct_print_writes_styled_lines() {
        let lines = vec![
            Line::from(vec![
                Span::raw("a\tb "),
                Span::styled("x", Style::default().fg(Color::Red)),
            ]),
            Line::from(""),
        ];
        let mut out = Vec::new();
        print_document(&mut out, &normalize(lines.clone(), true)).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a       b \x1b[31mx\x1b[0m\n\n"
        );
        let mut out = Vec::new();
        print_document(&mut out, &normalize(lines, false)).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "a       b x\n\n");
    }
}
