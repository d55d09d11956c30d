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

use ratatui::buffer::Buffer;
use ratatui::buffer::CellWidth;
use ratatui::crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEventKind,
};
use ratatui::crossterm::terminal;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;
use unicode_segmentation::{GraphemeCursor, UnicodeSegmentation};

use crate::view::line::{Edit, LineInput};
use crate::view::{Flow, View};
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
    let result = crate::view::run(&mut pager);
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
    text: LineInput,
}

// ---------------------------------------------------------------------------
// Pager state
// ---------------------------------------------------------------------------

/// What a key does in the pager.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Action {
    Quit,
    Down,
    Up,
    PageDown,
    PageUp,
    HalfDown,
    HalfUp,
    Top,
    Bottom,
    Search,
    SearchBack,
    Next,
    Previous,
    Repaint,
    Help,
}

/// A key as the pager reads it: a character, a Control chord, or a named key.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Key {
    C(char),
    Ctrl(char),
    Code(KeyCode),
}

impl Key {
    /// How the help box shows it.
    fn shown(self) -> String {
        match self {
            Key::C(' ') => "Space".into(),
            Key::C(c) => c.to_string(),
            Key::Ctrl(c) => format!("^{}", c.to_ascii_uppercase()),
            Key::Code(KeyCode::Down) => "\u{2193}".into(),
            Key::Code(KeyCode::Up) => "\u{2191}".into(),
            Key::Code(KeyCode::PageDown) => "PgDn".into(),
            Key::Code(KeyCode::PageUp) => "PgUp".into(),
            Key::Code(code) => format!("{code:?}"),
        }
    }
}

/// The pager's keys as data: what each does, and what `h` says of it. Key handling and the
/// help box both read this table, so they cannot differ.
const KEYS: &[(&[Key], Action, &str)] = {
    use Key::{Code, Ctrl, C};
    &[
        (
            &[C('q'), C('Q'), Code(KeyCode::Esc), Ctrl('c')],
            Action::Quit,
            "quit",
        ),
        (
            &[
                C('j'),
                Code(KeyCode::Down),
                Code(KeyCode::Enter),
                C('e'),
                Ctrl('n'),
                Ctrl('e'),
                Ctrl('j'),
            ],
            Action::Down,
            "down one row",
        ),
        (
            &[
                C('k'),
                Code(KeyCode::Up),
                C('y'),
                Ctrl('p'),
                Ctrl('y'),
                Ctrl('k'),
            ],
            Action::Up,
            "up one row",
        ),
        (
            &[
                C(' '),
                C('f'),
                Code(KeyCode::PageDown),
                Ctrl('f'),
                Ctrl('v'),
            ],
            Action::PageDown,
            "page down",
        ),
        (
            &[C('b'), Code(KeyCode::PageUp), Ctrl('b')],
            Action::PageUp,
            "page up",
        ),
        (&[C('d'), Ctrl('d')], Action::HalfDown, "half page down"),
        (&[C('u'), Ctrl('u')], Action::HalfUp, "half page up"),
        (&[C('g'), Code(KeyCode::Home), C('<')], Action::Top, "top"),
        (
            &[C('G'), Code(KeyCode::End), C('>')],
            Action::Bottom,
            "bottom",
        ),
        (&[C('/')], Action::Search, "search forward"),
        (&[C('?')], Action::SearchBack, "search backward"),
        (&[C('n')], Action::Next, "next match"),
        (&[C('N')], Action::Previous, "previous match"),
        (
            &[C('r'), C('R'), Ctrl('l'), Ctrl('r')],
            Action::Repaint,
            "repaint the screen",
        ),
        (&[C('h'), C('H')], Action::Help, "this help"),
    ]
};

/// The action of a key press, if it has one.
fn action(code: KeyCode, ctrl: bool) -> Option<Action> {
    let key = match code {
        KeyCode::Char(c) if ctrl => Key::Ctrl(c.to_ascii_lowercase()),
        KeyCode::Char(c) => Key::C(c),
        other => Key::Code(other),
    };
    KEYS.iter()
        .find(|(keys, _, _)| keys.contains(&key))
        .map(|(_, a, _)| *a)
}

/// The help box's rows: keys, description (the mouse wheel too, which is no key).
fn help_rows() -> Vec<(String, &'static str)> {
    KEYS.iter()
        .map(|(keys, _, what)| {
            let shown: Vec<String> = keys.iter().map(|k| k.shown()).collect();
            (shown.join(" "), *what)
        })
        .chain(std::iter::once(("wheel".to_string(), "scroll 3 rows")))
        .collect()
}

/// Width of the key column in the help box.
fn help_key_width() -> usize {
    help_rows()
        .iter()
        .map(|(k, _)| k.width())
        .max()
        .unwrap_or(10)
        + 2
}
/// Key help for terminals too small for the help box.
const HELP_SHORT: &str = "q quit  j/k row  Space/b page  d/u half  g/G ends  / ? search  n/N match";

/// Width and height of the help box, borders included.
fn help_box_size() -> (usize, usize) {
    let key_width = help_key_width();
    let rows = help_rows();
    let width = rows
        .iter()
        .map(|(_, text)| key_width + text.width())
        .max()
        .unwrap_or(0)
        + 4;
    (width, rows.len() + 2)
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
        let Some(act) = action(key.code, ctrl) else {
            return Flow::Idle;
        };
        match act {
            Action::Quit => return Flow::Quit,
            Action::Down => self.scroll_down(1),
            Action::Up => self.scroll_up(1),
            Action::PageDown => self.scroll_down(self.page_rows()),
            Action::PageUp => self.scroll_up(self.page_rows()),
            Action::HalfDown => self.scroll_down(self.half_page_rows()),
            Action::HalfUp => self.scroll_up(self.half_page_rows()),
            Action::Top => self.top = 0,
            Action::Bottom => self.top = self.max_top(),
            Action::Search | Action::SearchBack => {
                self.prompt = Some(Prompt {
                    backward: act == Action::SearchBack,
                    text: LineInput::new(),
                });
            }
            Action::Next => self.search_again(true),
            Action::Previous => self.search_again(false),
            Action::Help => self.show_help(),
            Action::Repaint => return Flow::Repaint,
        }
        Flow::Redraw
    }

    /// Edits the search prompt as [`LineInput::key`] does, with Esc to cancel and Enter to
    /// search. Backspace on an empty prompt cancels it, as in `less`.
    fn handle_prompt_key(&mut self, key: KeyEvent, ctrl: bool) -> Flow {
        let Some(prompt) = self.prompt.as_mut() else {
            return Flow::Idle;
        };
        let backspace = key.code == KeyCode::Backspace || (ctrl && key.code == KeyCode::Char('h'));
        match key.code {
            KeyCode::Esc => self.prompt = None,
            KeyCode::Enter => {
                if let Some(mut prompt) = self.prompt.take() {
                    self.submit_search(prompt.text.take(), prompt.backward);
                }
            }
            _ if backspace && prompt.text.is_empty() => self.prompt = None,
            _ => {
                if prompt.text.key(&key) == Edit::Ignored {
                    return Flow::Idle;
                }
            }
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
            let mark = if prompt.backward { "?" } else { "/" };
            // Keep the cursor in view, and a cell for it.
            let (shown, col) = prompt.text.fit(mark, width, str::to_owned);
            buf.set_stringn(area.x, area.y, &shown, width, style);
            frame.set_cursor_position(((area.x + col).min(area.right() - 1), area.y));
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
        let key_width = help_key_width();
        let lines: Vec<Line<'_>> = help_rows()
            .into_iter()
            .map(|(keys, text)| Line::from(format!(" {keys:<key_width$}{text}")))
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

impl View for Pager {
    fn handle(&mut self, event: &Event) -> Flow {
        self.handle_event(event)
    }

    fn draw(&mut self, frame: &mut Frame<'_>) {
        Pager::draw(self, frame);
    }
}

#[cfg(test)]
mod tests;
