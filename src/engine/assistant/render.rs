//! Answers on a terminal (engine): an answer's Markdown laid out by [`crate::markdown`] —
//! headings, lists, tables, links, `inline code`, **strong** and *emphasised* text in the
//! theme's `pager.*` styles, and fenced code blocks highlighted in the current theme between
//! dimmed fences that name their language — while it streams in. Each block is laid out once
//! nothing later can change it: a paragraph, a table or a quote once a blank line or the next
//! block follows it, a heading as soon as its line is complete, a list an item at a time (each
//! when the next begins), and a code block a line at a time. Until then the unfinished block
//! shows as it comes, word by word, as its plain text (a preview), which the laid-out block
//! replaces: the cursor goes back up over the rows the preview took (counted from its display
//! width and the terminal's), clears them and the block is printed there. A preview that could
//! not be erased exactly — taller than the screen (or [`PREVIEW_ROWS`]), or on a terminal whose
//! width is unknown — stays: that block goes on as plain text to its end and is not printed
//! again. Piped output is never rendered: it stays the answer's exact text.
//!
//! A model's words are text from outside, like a file name: on a terminal only Valyxo's own
//! styling and cursor movements may drive it. Every control character of an answer but the
//! line break and the tab — the escape that starts a sequence to retitle the window, clear the
//! screen or fill the clipboard (OSC 52), a lone carriage return that would write over a line —
//! and every character that reorders text is shown as an escape (`\x1b`, `\x0d`, `\u{202e}`),
//! as [`crate::text::clean_message`] shows error messages, in a preview as in the laid-out
//! block; so is one written as a character reference (`&#27;`). A carriage return before a
//! line break (a CRLF answer) is only a line break.

use crate::markdown::{self, CodeLines, Layout};
use crate::theme::Theme;
use pulldown_cmark::{CodeBlockKind, Event, Tag};
use ratatui::text::Line;
use std::fmt::Write as _;
use std::sync::Arc;
use unicode_width::UnicodeWidthChar;

/// `text` as a terminal is to show it, unrendered: every unsafe character but line breaks
/// and tabs shown as an escape ([`crate::text::clean_message`]), and nothing cut, however
/// long.
pub fn visible(text: &str) -> String {
    markdown::visible(text).into_owned()
}

/// A code block of the answer being shown a line at a time.
struct OpenCode {
    lines: CodeLines,
    /// How many of its lines were shown.
    shown: usize,
}

/// An answer laid out for a terminal as it streams in (see the module's documentation).
pub struct Renderer {
    theme: Arc<Theme>,
    /// Whether to style; without it the answer is laid out in plain text.
    color: bool,
    /// The terminal's width in columns, if known: without it a preview cannot be erased.
    width: Option<usize>,
    /// The most rows a preview may take and still be erased.
    rows: usize,
    /// The answer from the first block not shown whole yet, line breaks made `\n`.
    pending: String,
    /// The last piece ended in a carriage return: dropped if a line break follows (CRLF),
    /// shown as `\x0d` otherwise.
    cr: bool,
    /// The code block at the start of `pending`, shown in part.
    code: Option<OpenCode>,
    /// The list at the start of `pending`, whose first items were shown: the number of its
    /// next item, if numbered.
    list: Option<Option<u64>>,
    /// Something was shown: the next block comes after a blank line.
    shown: bool,
    /// How long `pending` was when it was last looked at.
    looked: usize,
    /// What of `pending` is on the screen as a preview.
    preview: Preview,
}

/// The text of the unfinished blocks, as it is on the screen below what was laid out.
#[derive(Default)]
struct Preview {
    /// Where in `pending` the text shown starts (its first line that is not blank) while
    /// nothing is shown.
    start: usize,
    /// How far into `pending` the text shown (or skipped as blank) goes.
    printed: usize,
    /// The rows it takes, the blank line before it included; 0 when nothing is shown.
    rows: usize,
    /// The cursor's column on its last row (the width once a line filled it).
    col: usize,
    /// Too tall to erase, or the width is unknown: its blocks go on as plain text to their
    /// end and are not laid out.
    plain: bool,
}

/// The most rows a preview takes before its block goes on as plain text.
pub const PREVIEW_ROWS: usize = 20;

/// Columns between tab stops.
const TAB: usize = 8;

/// `text` as it goes on the screen after a preview at `col` on its `rows`-th row, a terminal
/// `width` wide (tabs made spaces so that every column is counted); moves them on past it.
fn lay(text: &str, width: Option<usize>, rows: &mut usize, col: &mut usize) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => {
                *rows += 1;
                *col = 0;
                out.push(c);
            }
            '\t' => {
                for _ in 0..TAB - *col % TAB {
                    advance(width, 1, rows, col);
                    out.push(' ');
                }
            }
            c => {
                advance(width, c.width().unwrap_or(0), rows, col);
                out.push(c);
            }
        }
    }
    out
}

/// Moves the cursor on past a character `w` columns wide. One that does not fit on the row
/// starts the next (a line filled to its last column leaves the cursor there until more
/// comes).
fn advance(width: Option<usize>, w: usize, rows: &mut usize, col: &mut usize) {
    if let Some(width) = width {
        if w > 0 && *col > 0 && *col + w > width {
            *rows += 1;
            *col = 0;
        }
    }
    *col += w;
}

/// Text not shown yet up to this long is looked at again at every line break.
const EVERY_LINE: usize = 16 * 1024;

/// What a top-level block of the answer is, for knowing when it is complete.
enum Kind {
    /// Complete with its line: a heading or a rule.
    Line,
    /// Complete at a blank line: a paragraph, a table, a block quote, HTML.
    Blank,
    /// A list: where each item starts.
    List(Vec<usize>),
    /// A fenced code block: its language and its text so far.
    Fenced(String, String),
    /// Complete only when another block follows (an indented code block).
    Other,
}

struct Top {
    start: usize,
    end: usize,
    kind: Kind,
}

/// The top-level blocks of `text`.
fn tops(text: &str) -> Vec<Top> {
    let mut out: Vec<Top> = Vec::new();
    let mut depth = 0usize;
    for (event, range) in markdown::parser(text).into_offset_iter() {
        match event {
            Event::Start(tag) => {
                if depth == 0 {
                    let kind = match tag {
                        Tag::Heading { .. } => Kind::Line,
                        Tag::Paragraph | Tag::Table(_) | Tag::BlockQuote(_) | Tag::HtmlBlock => {
                            Kind::Blank
                        }
                        Tag::List(_) => Kind::List(Vec::new()),
                        Tag::CodeBlock(CodeBlockKind::Fenced(lang)) => {
                            Kind::Fenced(lang.to_string(), String::new())
                        }
                        _ => Kind::Other,
                    };
                    out.push(Top {
                        start: range.start,
                        end: range.end,
                        kind,
                    });
                } else if depth == 1 && matches!(tag, Tag::Item) {
                    if let Some(Top {
                        kind: Kind::List(items),
                        ..
                    }) = out.last_mut()
                    {
                        items.push(range.start);
                    }
                }
                depth += 1;
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Text(t) if depth == 1 => {
                if let Some(Top {
                    kind: Kind::Fenced(_, code),
                    ..
                }) = out.last_mut()
                {
                    code.push_str(&t);
                }
            }
            Event::Rule if depth == 0 => out.push(Top {
                start: range.start,
                end: range.end,
                kind: Kind::Line,
            }),
            _ => {}
        }
    }
    out
}

/// Whether the last block of `text` (which ends at a line break) is complete, as far as
/// what may follow it goes.
fn complete(top: &Top, text: &str) -> bool {
    match top.kind {
        Kind::Line => true,
        // Closed: its lines are the opening fence, the code and a closing fence.
        Kind::Fenced(_, ref code) => {
            text[top.start..top.end.min(text.len())].lines().count() >= code.lines().count() + 2
        }
        Kind::Blank => {
            // A blank line after the block's last line.
            let last = top.end.saturating_sub(1).min(text.len());
            let line_end = text[last..].find('\n').map_or(text.len(), |i| last + i + 1);
            text[line_end..].contains('\n')
        }
        _ => false,
    }
}

impl Renderer {
    /// A renderer for the terminal standard output goes to; `color` says whether to style
    /// the answer or only to lay it out.
    pub fn new(theme: Arc<Theme>, color: bool) -> Renderer {
        let width = crate::os::stdout_width();
        // The screen's height, where the width is known (they come together).
        let height = width
            .and_then(|_| crossterm::terminal::size().ok())
            .map_or(PREVIEW_ROWS, |(_, h)| usize::from(h));
        Renderer::for_screen(theme, color, width, height.clamp(1, PREVIEW_ROWS))
    }

    /// A renderer for a terminal `width` columns wide (`None`: unknown), on which a preview
    /// may take at most `rows` rows.
    pub fn for_screen(
        theme: Arc<Theme>,
        color: bool,
        width: Option<usize>,
        rows: usize,
    ) -> Renderer {
        Renderer {
            theme,
            color,
            width: width.filter(|w| *w > 0),
            rows,
            pending: String::new(),
            cr: false,
            code: None,
            list: None,
            shown: false,
            looked: 0,
            preview: Preview::default(),
        }
    }

    /// Takes a piece of the answer; returns what to print now.
    pub fn push(&mut self, piece: &str) -> String {
        if piece.is_empty() {
            return String::new();
        }
        let mut text = String::with_capacity(piece.len() + 1);
        if std::mem::take(&mut self.cr) && !piece.starts_with('\n') {
            text.push('\r');
        }
        text.push_str(piece);
        if text.ends_with('\r') {
            text.pop();
            self.cr = true;
        }
        // A lone carriage return would end a line for the parser: it is shown as the
        // escape it is.
        self.pending
            .push_str(&text.replace("\r\n", "\n").replace('\r', "\\x0d"));
        // Each look parses the text not shown yet; while that is long (a paragraph or a
        // table of thousands of lines), it is looked at again only once it grew by a quarter,
        // so that an answer costs a few times its length and never its length squared.
        let grown = self.pending.len().saturating_sub(self.looked);
        let mut out = if piece.contains('\n')
            && (self.pending.len() <= EVERY_LINE || grown * 4 >= self.pending.len())
        {
            self.show(false)
        } else {
            String::new()
        };
        self.preview_more(&mut out);
        out
    }

    /// What is left when the answer ends (or is cut short): the preview, if any, laid out,
    /// or ended with a line break if it stays.
    pub fn finish(&mut self) -> String {
        if std::mem::take(&mut self.cr) {
            self.pending.push_str("\\x0d");
        }
        self.show(true)
    }

    /// Shows what is complete of the text so far, or all of it at the `end`, in place of
    /// the preview of it.
    fn show(&mut self, end: bool) -> String {
        let mut out = String::new();
        if self.preview.plain && !self.plain_done(&mut out, end) {
            self.looked = self.pending.len();
            return out;
        }
        let pending = std::mem::take(&mut self.pending);
        let cut = match end {
            true => pending.len(),
            false => pending.rfind('\n').map_or(0, |i| i + 1),
        };
        let text = &pending[..cut];
        let tops = tops(text);
        let n = tops.len();
        let done = n > 0 && (end || complete(&tops[n - 1], text));
        // The blocks that nothing after them can change.
        let whole = if done { n } else { n.saturating_sub(1) };
        let mut body = String::new();
        let mut from = 0;
        let mut next = 0;
        if self.code.is_some() {
            next = 1;
            if let Some(Top {
                kind: Kind::Fenced(_, code),
                end: block_end,
                ..
            }) = tops.first()
            {
                self.code_lines(&mut body, code, whole > 0);
                if whole > 0 {
                    from = *block_end;
                }
            } else {
                self.code = None;
                next = 0;
            }
        }
        if whole > next {
            from = tops[whole - 1].end;
            self.blocks(&mut body, &text[tops[next].start..from]);
        }
        if !done && n > next {
            let last = &tops[n - 1];
            match &last.kind {
                Kind::Fenced(lang, code) => {
                    if self.code.is_none() {
                        self.separate(&mut body);
                        let theme = self.theme.clone();
                        let layout = self.layout_for(&theme);
                        self.code = Some(OpenCode {
                            lines: CodeLines::new(&layout, lang),
                            shown: 0,
                        });
                        body.push_str(&self.ansi(&markdown::fence_line(&layout, lang)));
                    }
                    self.code_lines(&mut body, code, false);
                    from = last.start;
                }
                Kind::List(items) if items.len() > 1 => {
                    let cut = items[items.len() - 1];
                    let number = self.blocks(&mut body, &text[last.start..cut]);
                    self.list = Some(number);
                    from = cut;
                }
                _ => {}
            }
        }
        if end {
            from = pending.len();
        }
        // What was shown of the text as a preview changes: it goes, and the blocks laid out
        // take its place (the next preview shows what is left).
        if from > 0 || !body.is_empty() || self.code.is_some() {
            self.erase(&mut out);
        }
        out.push_str(&body);
        self.pending = pending;
        self.pending.drain(..from);
        if let Some(open) = &mut self.code {
            // The open code block keeps its opening fence and the lines not shown yet: the
            // next look parses those alone, however long the block grows.
            let mut lines = self.pending.split_inclusive('\n');
            let fence = lines.next().map_or(0, str::len);
            let shown: usize = lines.take(open.shown).map(str::len).sum();
            self.pending.drain(fence..fence + shown);
            open.shown = 0;
        }
        self.looked = self.pending.len();
        out
    }

    /// Ends the preview's blocks gone on as plain text, once they are complete (or at the
    /// `end`): the rest of them as plain text too, then a line break if the last did not
    /// end in one. Returns whether they ended, the text after them being left to lay out.
    fn plain_done(&mut self, out: &mut String, end: bool) -> bool {
        let cut = match end {
            true => self.pending.len(),
            false => self.pending.rfind('\n').map_or(0, |i| i + 1),
        };
        let text = &self.pending[..cut];
        let printed = self.preview.printed.min(cut);
        // The blocks that began on a line shown (in part) are plain.
        let line_end = if printed == 0 || text[..printed].ends_with('\n') {
            printed
        } else {
            text[printed..].find('\n').map_or(cut, |i| printed + i + 1)
        };
        let tops = tops(text);
        let n = tops.len();
        let plain = tops.iter().take_while(|t| t.start < line_end).count();
        let done = n > 0 && (end || complete(&tops[n - 1], text));
        let continuing = if plain == 1 {
            self.list.flatten()
        } else {
            None
        };
        let upto = if plain == 0 {
            line_end
        } else if plain < n || done {
            self.list = None;
            tops[plain - 1].end.max(line_end)
        } else if let Top {
            start,
            kind: Kind::List(items),
            ..
        } = &tops[plain - 1]
        {
            // A list: its items shown (in part) are done once the next one begins.
            let Some(&item) = items.iter().find(|&&i| i >= line_end) else {
                return false;
            };
            let theme = self.theme.clone();
            let layout = self.layout_for(&theme);
            self.list =
                Some(markdown::lines_continuing(&text[*start..item], &layout, continuing).1);
            item
        } else {
            return false;
        };
        let upto = upto.min(self.pending.len());
        if upto > printed {
            let p = &mut self.preview;
            let rest = markdown::visible(&self.pending[printed..upto]);
            out.push_str(&lay(&rest, self.width, &mut p.rows, &mut p.col));
        }
        if self.preview.col > 0 {
            out.push('\n');
        }
        self.shown |= plain > 0 || printed > 0;
        self.pending.drain(..upto);
        self.preview = Preview::default();
        true
    }

    /// Shows the text that came since the last look, as a preview of the blocks not laid
    /// out yet (but for an open code block, which shows a line at a time).
    fn preview_more(&mut self, out: &mut String) {
        let p = &mut self.preview;
        if self.code.is_some() || p.printed >= self.pending.len() {
            return;
        }
        let fresh = p.rows == 0;
        if fresh {
            // Nothing shown yet: the preview starts on the first line that is not blank.
            let rest = &self.pending[p.printed..];
            let Some(first) = rest.find(|c| !matches!(c, ' ' | '\t' | '\n')) else {
                if let Some(i) = rest.rfind('\n') {
                    p.start = p.printed + i + 1;
                }
                p.printed = self.pending.len();
                return;
            };
            if let Some(i) = rest[..first].rfind('\n') {
                p.start = p.printed + i + 1;
            }
            p.printed = p.start;
            p.rows = 1;
            p.col = 0;
            if self.shown && self.list.is_none() {
                out.push('\n');
                p.rows += 1;
            }
            p.plain = self.width.is_none();
        }
        let mut upto = self.pending.len();
        if p.plain {
            // Plain text goes on to the end of its blocks, but a line that begins after it
            // may begin the next block (an item, a heading): it waits to be complete, for
            // the next look to tell. The preview's first line does not wait.
            let new = &self.pending[p.printed..];
            upto = match new.rfind('\n') {
                Some(i) => p.printed + i + 1,
                None if p.col > 0 || fresh => upto,
                None => p.printed,
            };
        }
        let text = markdown::visible(&self.pending[p.printed..upto]);
        out.push_str(&lay(&text, self.width, &mut p.rows, &mut p.col));
        p.printed = upto;
        if p.rows > self.rows {
            p.plain = true;
        }
    }

    /// Erases the preview (unless it stays as plain text): back to its first row, cleared
    /// to the end of the screen.
    fn erase(&mut self, out: &mut String) {
        let p = std::mem::take(&mut self.preview);
        if p.rows == 0 || p.plain {
            return;
        }
        out.push('\r');
        if p.rows > 1 {
            let _ = write!(out, "\x1b[{}A", p.rows - 1);
        }
        out.push_str("\x1b[J");
    }

    fn layout_for<'a>(&self, theme: &'a Theme) -> Layout<'a> {
        Layout {
            theme: self.color.then_some(theme),
            indent: 0,
            manual: false,
        }
    }

    fn ansi(&self, line: &Line) -> String {
        let mut s = crate::ansi::line_to_ansi(line, self.color);
        s.push('\n');
        s
    }

    /// A blank line before a block, unless it is the first or continues a list.
    fn separate(&mut self, out: &mut String) {
        if self.shown && self.list.is_none() {
            out.push('\n');
        }
        self.shown = true;
    }

    /// Shows complete blocks; returns the number after the last top-level numbered list.
    fn blocks(&mut self, out: &mut String, src: &str) -> Option<u64> {
        let theme = self.theme.clone();
        let layout = self.layout_for(&theme);
        let continuing = self.list.take();
        let (lines, number) = markdown::lines_continuing(src, &layout, continuing.flatten());
        if lines.is_empty() {
            return number;
        }
        if continuing.is_none() {
            self.separate(out);
        }
        for l in &lines {
            out.push_str(&self.ansi(l));
        }
        number
    }

    /// Shows the complete lines of the open code block not shown yet; when it is `closed`,
    /// its last line too and the closing fence.
    fn code_lines(&mut self, out: &mut String, code: &str, closed: bool) {
        let theme = self.theme.clone();
        let layout = self.layout_for(&theme);
        let Some(open) = self.code.as_mut() else {
            return;
        };
        for l in code.split_inclusive('\n').skip(open.shown) {
            if !closed && !l.ends_with('\n') {
                break;
            }
            open.shown += 1;
            let line = Line::from(open.lines.line(layout.theme, l.trim_end_matches('\n')));
            let mut s = crate::ansi::line_to_ansi(&line, self.color);
            s.push('\n');
            out.push_str(&s);
        }
        if closed {
            self.code = None;
            out.push_str(&self.ansi(&markdown::fence_line(&layout, "")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn renderer_for(color: bool, width: Option<usize>, rows: usize) -> Renderer {
        Renderer::for_screen(
            Arc::new(crate::theme::load_builtin("neon").expect("neon")),
            color,
            width,
            rows,
        )
    }

    fn renderer(color: bool) -> Renderer {
        renderer_for(color, Some(WIDE), PREVIEW_ROWS)
    }

    /// A screen wide enough that no line of the tests wraps.
    const WIDE: usize = 400;

    /// What `answer` prints when it comes in pieces of these sizes (the rest in one).
    fn printed(r: &mut Renderer, answer: &str, sizes: &[usize]) -> String {
        let chars: Vec<char> = answer.chars().collect();
        let mut out = String::new();
        let mut pos = 0;
        for c in sizes {
            let end = (pos + c).min(chars.len());
            out.push_str(&r.push(&chars[pos..end].iter().collect::<String>()));
            pos = end;
        }
        out.push_str(&r.push(&chars[pos..].iter().collect::<String>()));
        out.push_str(&r.finish());
        out
    }

    fn shown(answer: &str, sizes: &[usize], color: bool) -> String {
        printed(&mut renderer(color), answer, sizes)
    }

    /// The screen a terminal `width` columns wide shows after `out` (a terminal's line
    /// discipline makes each line break a carriage return and a line feed): its text, its
    /// text with styles, and where the cursor is.
    fn screen(out: &str, width: usize) -> (String, String, (u16, u16)) {
        let mut parser = vt100::Parser::new(
            std::num::NonZeroU16::new(500).expect("rows"),
            std::num::NonZeroU16::new(width as u16).expect("columns"),
            0,
        );
        parser.process(out.replace('\n', "\r\n").as_bytes());
        let s = parser.screen();
        (s.contents(), s.contents_formatted(), s.cursor_position())
    }

    /// The text a wide terminal shows after `out`.
    fn seen(out: &str) -> String {
        screen(out, WIDE).0
    }

    /// `out` without the sequences that erase a preview.
    fn unerased(out: &str) -> String {
        let mut rest = out;
        let mut kept = String::new();
        while let Some(i) = rest.find('\r') {
            kept.push_str(&rest[..i]);
            rest = erase_len(&rest[i..]).map_or(&rest[i + 1..], |n| &rest[i + n..]);
        }
        kept.push_str(rest);
        kept
    }

    /// How long the erasing of a preview that `s` starts with is: `\r`, `ESC [ n A` if the
    /// preview took more than a row, `ESC [ J`.
    fn erase_len(s: &str) -> Option<usize> {
        let mut n = 1;
        let rest = s.strip_prefix('\r')?;
        let rest = match rest.strip_prefix("\x1b[") {
            Some(up) => {
                let digits = up.find(|c: char| !c.is_ascii_digit()).unwrap_or(up.len());
                if digits > 0 && up[digits..].starts_with('A') {
                    n += 3 + digits;
                    &up[digits + 1..]
                } else {
                    rest
                }
            }
            None => rest,
        };
        rest.starts_with("\x1b[J").then_some(n + 3)
    }

    /// The text without escape sequences.
    fn plain(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn markdown_is_laid_out_and_code_fenced_with_its_language_and_coloured() {
        let answer =
            "# Fix\nUse **this**:\n```rust\nfn main() {}\n```\n- one\n  - `inner`\n- two\nDone.";
        for size in [1, 2, 3, 7, 100] {
            let out = shown(answer, &vec![size; 100], true);
            assert_eq!(
                seen(&out),
                "Fix\n\nUse this:\n\n```rust\nfn main() {}\n```\n\n- one\n  - inner\n- two\n  Done.",
                "pieces of {size}"
            );
            assert!(out.contains("\x1b["), "coloured");
            let code = out.lines().find(|l| l.contains("main")).expect("code line");
            assert!(code.matches("\x1b[").count() > 2, "highlighted: {code:?}");
        }
        let out = shown(answer, &[], false);
        assert!(!unerased(&out).contains('\x1b'), "no colour: {out:?}");
    }

    proptest::proptest! {
        #[test]
        fn any_split_shows_what_the_whole_answer_shows(
            answer in "[`a fnrust{}\n*#>|1.\\-_=~()<\\[\\] 漢é]{0,120}",
            cuts in proptest::collection::vec(1usize..10, 0..20),
            width in 2usize..30,
            color in proptest::bool::ANY,
        ) {
            // However the answer comes, once it is all there the screen is the same: each
            // preview was erased exactly, whatever it wrapped over.
            let streamed = printed(&mut renderer_for(color, Some(width), 400), &answer, &cuts);
            let whole = printed(&mut renderer_for(color, Some(width), 400), &answer, &[]);
            proptest::prop_assert_eq!(screen(&streamed, width), screen(&whole, width));
        }
    }

    proptest::proptest! {
        #[test]
        fn every_word_shows_once_however_it_comes(
            seps in proptest::collection::vec(
                proptest::sample::select(vec![
                    " ", " ", " ", " ", "\n", "\n\n", "\n- ", "\n1. ", "\n  - ", "\n# ", "\n> ",
                    " **", "** ", " `", "` ", "\n```\n", "\n    ", "\n| ", " | ", "\n---\n",
                    " 漢字 ",
                ]),
                1..80,
            ),
            cuts in proptest::collection::vec(1usize..12, 0..40),
            width in proptest::option::of(4usize..40),
            rows in 1usize..8,
            color in proptest::bool::ANY,
        ) {
            // Laid out, or left as plain text when its preview cannot be erased, each word
            // of the answer is on the screen once in the end: none printed twice, none
            // erased with a preview.
            let mut answer = String::new();
            for (i, sep) in seps.iter().enumerate() {
                answer.push_str(&format!("w{i}x{sep}"));
            }
            let out = printed(&mut renderer_for(color, width, rows), &answer, &cuts);
            let text = screen(&out, width.unwrap_or(WIDE)).0;
            for i in 0..seps.len() {
                let word = format!("w{i}x");
                proptest::prop_assert_eq!(
                    text.matches(&word).count(),
                    1,
                    "{} in {:?}: {:?}\n{}",
                    word,
                    answer,
                    out,
                    text
                );
            }
        }
    }

    /// Whether every escape sequence in `s` is styling (SGR: `ESC [ digits/; m`) or erases a
    /// preview, and no other control character but line breaks and tabs is there.
    fn only_styling(s: &str) -> bool {
        let mut rest = s;
        while let Some(i) = rest.find(|c: char| c.is_control() && c != '\n' && c != '\t') {
            let tail = &rest[i..];
            if let Some(n) = erase_len(tail) {
                rest = &tail[n..];
                continue;
            }
            let Some(params) = tail.strip_prefix("\x1b[") else {
                return false;
            };
            let end = params
                .find(|c: char| !(c.is_ascii_digit() || c == ';'))
                .unwrap_or(params.len());
            if !params[end..].starts_with('m') {
                return false;
            }
            rest = &params[end + 1..];
        }
        !s.chars().any(crate::text::is_bidi_control)
    }

    const HOSTILE: &str = "Title\x1b]0;pwned\x07 clear\x1b[2J clip\x1b]52;c;ZWNobyBwd25lZA==\x07 \
         rtl\u{202e}txt bell\x07 over\rwrite &#27;[2J `\x1b[1m`\n```sh\necho \x1b[31mred\n```\nend\r\n";

    #[test]
    fn an_answer_cannot_drive_the_terminal() {
        for color in [true, false] {
            for size in [1, 2, 5, 1000] {
                let out = shown(HOSTILE, &vec![size; 200], color);
                assert!(
                    only_styling(&out),
                    "colour {color}, pieces of {size}: {out:?}"
                );
                assert_eq!(
                    seen(&out),
                    "Title\\x1b]0;pwned\\x07 clear\\x1b[2J clip\\x1b]52;c;ZWNobyBwd25lZA==\\x07 \
                     rtl\\u{202e}txt bell\\x07 over\\x0dwrite \\x1b[2J \\x1b[1m\n\n```sh\n\
                     echo \\x1b[31mred\n```\n\nend",
                    "colour {color}, pieces of {size}"
                );
                if !color {
                    assert!(!unerased(&out).contains('\x1b'), "{out:?}");
                }
            }
        }
        // A carriage return ending the answer is shown too.
        let mut r = renderer(true);
        let mut out = r.push("a\r");
        out.push_str(&r.finish());
        assert_eq!(out, "a\r\x1b[Ja\\x0d\n");
    }

    proptest::proptest! {
        #[test]
        fn no_answer_reaches_the_terminal_raw(
            answer in "[`a \n\r\x1b\x07\x00\u{9b}\u{202e}\u{2066}\\]\\[;&#]{0,60}",
            cuts in proptest::collection::vec(1usize..10, 0..20),
            color in proptest::bool::ANY,
            width in proptest::option::of(1usize..20),
            rows in 1usize..5,
        ) {
            let out = printed(&mut renderer_for(color, width, rows), &answer, &cuts);
            proptest::prop_assert!(only_styling(&out), "{:?}", out);
        }
    }

    #[test]
    fn an_empty_block_adds_no_blank_line() {
        let a = "1n{1{\n>>>>\n1\n\n";
        for size in 1..a.len() {
            assert_eq!(seen(&shown(a, &vec![size; a.len()], false)), "1n{1{\n\n1");
        }
    }

    #[test]
    fn long_answers_cost_their_length() {
        // A code block of 100,000 lines shows each line as it comes; a paragraph as long
        // goes on as plain text once it is too tall to erase, shown once. Parsing everything
        // again at every line would take hours.
        let started = std::time::Instant::now();
        let mut r = renderer_for(false, Some(80), PREVIEW_ROWS);
        assert_eq!(r.push("```text\n"), "```text\n");
        for i in 0..100_000 {
            assert_eq!(r.push(&format!("line {i}\n")), format!("line {i}\n"));
        }
        assert_eq!(r.push("```\n"), "```\n");
        let mut out = String::new();
        let mut words = String::from("\n");
        for i in 0..100_000 {
            let word = format!("word {i}\n");
            out.push_str(&r.push(&word));
            words.push_str(&word);
        }
        out.push_str(&r.finish());
        assert!(out == words, "{:?}", &out[..200.min(out.len())]);
        assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
    }

    #[test]
    fn blocks_show_as_soon_as_nothing_can_change_them() {
        // Until then, their text shows as it comes, and goes when they are laid out.
        let mut r = renderer(false);
        assert_eq!(r.push("Hel"), "Hel");
        assert_eq!(r.push("lo\n"), "lo\n", "a paragraph may go on");
        assert_eq!(
            r.push("\n"),
            "\r\x1b[1A\x1b[JHello\n",
            "a blank line ends it"
        );
        assert_eq!(r.push("## Head\n"), "\nHead\n", "a heading is one line");
        assert_eq!(r.push("1. a\n"), "\n1. a\n");
        assert_eq!(
            r.push("1. b\n"),
            "\r\x1b[2A\x1b[J\n1. a\n1. b\n",
            "an item shows when the next begins"
        );
        assert_eq!(r.push("   - c\n"), "   - c\n");
        assert_eq!(r.push("```py\n"), "\r\x1b[2A\x1b[J2. b\n   - c\n\n```py\n");
        assert_eq!(r.push("x = 1\n"), "x = 1\n", "code shows a line at a time");
        assert_eq!(r.push("y"), "");
        assert_eq!(r.push(" = 2\n```\n"), "y = 2\n```\n");
        assert_eq!(
            r.push("| a | b |\n|---|---|\n| 1 | 2 |\n"),
            "\n| a | b |\n|---|---|\n| 1 | 2 |\n"
        );
        assert_eq!(r.finish(), "\r\x1b[4A\x1b[J\na  b\n─  ─\n1  2\n");
    }

    #[test]
    fn a_paragraph_shows_word_by_word_then_laid_out_in_its_place() {
        let mut r = renderer(true);
        assert_eq!(r.push("Use **th"), "Use **th");
        assert_eq!(r.push("is** \x1b[2J now"), "is** \\x1b[2J now");
        let rest = r.finish();
        assert!(rest.starts_with("\r\x1b[J"), "{rest:?}");
        assert_eq!(plain(&rest[1..]), "Use this \\x1b[2J now\n");
        assert!(rest.matches("\x1b[").count() > 2, "styled: {rest:?}");
        // Cut short (Ctrl-C), what came stays, laid out, and ends its line.
        let mut r = renderer(false);
        assert_eq!(r.push("You said: "), "You said: ");
        assert_eq!(r.finish(), "\r\x1b[JYou said:\n");
    }

    #[test]
    fn a_preview_is_erased_over_the_rows_it_wrapped_to() {
        for (text, width, up) in [
            ("0123456789", 10, ""), // fills its row: the cursor stays on it
            ("0123456789a", 10, "\x1b[1A"),
            ("漢字漢字漢字", 5, "\x1b[2A"), // a wide character that does not fit wraps
            ("a\tb", 5, "\x1b[1A"),         // a tab is spaces to the next stop
            ("ab\n\ncd", 10, "\x1b[1A"),    // a paragraph, then another after a blank line
        ] {
            let mut r = renderer_for(false, Some(width), PREVIEW_ROWS);
            let mut out = r.push(text);
            let rest = r.finish();
            assert!(
                rest.starts_with(&format!("\r{up}\x1b[J")),
                "{text:?} on {width}: {rest:?}"
            );
            out.push_str(&rest);
            let mut whole = renderer_for(false, Some(width), PREVIEW_ROWS);
            let mut laid = whole.push(&format!("{text}\n\n"));
            laid.push_str(&whole.finish());
            assert_eq!(screen(&out, width), screen(&laid, width), "{text:?}");
        }
    }

    #[test]
    fn a_block_too_tall_to_erase_goes_on_as_plain_text_shown_once() {
        let mut r = renderer_for(true, Some(20), 3);
        let words: Vec<String> = (0..30).map(|i| format!("w{i}x ")).collect();
        let mut out = r.push("# Title\n");
        for w in &words {
            out.push_str(&r.push(w));
        }
        out.push_str(&r.push("**end**\n"));
        out.push_str(&r.push("\nNext **one**"));
        out.push_str(&r.finish());
        assert!(only_styling(&out), "{out:?}");
        for w in &words {
            assert_eq!(out.matches(w.as_str()).count(), 1, "{w}: {out:?}");
        }
        assert_eq!(out.matches("**end**").count(), 1);
        // The paragraph stays as it came; the next is laid out in place of its preview.
        let text = screen(&out, 20).0;
        assert!(text.starts_with("Title\n\nw0x w1x w2x w3x"), "{text}");
        assert!(text.ends_with("w29x **end**\n\nNext one"), "{text}");
        // A list item too: the items after it are laid out, numbered on.
        let mut r = renderer_for(false, Some(10), 3);
        let out = printed(
            &mut r,
            "1. one two three four five six\n1. seven\n\nafter",
            &[1; 60],
        );
        assert_eq!(
            screen(&out, 10).0,
            "1. one two three four five six\n2. seven\n\nafter",
            "{out:?}"
        );
    }

    #[test]
    fn without_the_width_a_preview_cannot_be_erased_and_stays() {
        let mut r = renderer_for(true, None, PREVIEW_ROWS);
        let mut out = String::new();
        for piece in ["Hel", "lo **x**", "\n", "\n## H", "ead\n", "You said: "] {
            out.push_str(&r.push(piece));
        }
        out.push_str(&r.finish());
        assert!(!out.contains('\r'), "{out:?}");
        assert_eq!(plain(&out), "Hello **x**\n\n## Head\n\nYou said: \n");
        // What comes whole is laid out still.
        let mut r = renderer_for(false, None, PREVIEW_ROWS);
        let mut out = r.push("Hello **x**\n\n## Head\n");
        out.push_str(&r.finish());
        assert_eq!(out, "Hello x\n\nHead\n");
    }
}
