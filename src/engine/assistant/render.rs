//! Answers on a terminal: an answer's Markdown laid out by [`crate::markdown`] — headings,
//! lists, tables, links, `inline code`, **strong** and *emphasised* text in the theme's
//! `pager.*` styles, and fenced code blocks highlighted in the current theme between dimmed
//! fences that name their language — while it streams in. What a later line could still
//! change waits: a paragraph, a table or a quote is shown once a blank line or the next block
//! follows it, a heading as soon as its line is complete, a list an item at a time (each
//! when the next begins), and a code block a line at a time. Piped output is never rendered:
//! it stays the answer's exact text.
//!
//! A model's words are text from outside, like a file name: on a terminal only Valyxo's own
//! styling may drive it. Every control character of an answer but the line break and the tab
//! — the escape that starts a sequence to retitle the window, clear the screen or fill the
//! clipboard (OSC 52), a lone carriage return that would write over a line — and every
//! character that reorders text is shown as an escape (`\x1b`, `\x0d`, `\u{202e}`), as
//! [`crate::text::clean_message`] shows error messages; so is one written as a character
//! reference (`&#27;`). A carriage return before a line break (a CRLF answer) is only a line
//! break.

use crate::markdown::{self, CodeLines, Layout};
use crate::theme::Theme;
use pulldown_cmark::{CodeBlockKind, Event, Tag};
use ratatui::text::Line;
use std::sync::Arc;

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

pub struct Renderer {
    theme: Arc<Theme>,
    /// Whether to style; without it the answer is laid out in plain text.
    color: bool,
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
    /// A renderer for a terminal; `color` says whether to style the answer or only to lay
    /// it out.
    pub fn new(theme: Arc<Theme>, color: bool) -> Renderer {
        Renderer {
            theme,
            color,
            pending: String::new(),
            cr: false,
            code: None,
            list: None,
            shown: false,
            looked: 0,
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
        if piece.contains('\n')
            && (self.pending.len() <= EVERY_LINE || grown * 4 >= self.pending.len())
        {
            self.show(false)
        } else {
            String::new()
        }
    }

    /// What is left when the answer ends.
    pub fn finish(&mut self) -> String {
        if std::mem::take(&mut self.cr) {
            self.pending.push_str("\\x0d");
        }
        self.show(true)
    }

    /// Shows what is complete of the text so far, or all of it at the `end`.
    fn show(&mut self, end: bool) -> String {
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
        let mut out = String::new();
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
                self.code_lines(&mut out, code, whole > 0);
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
            self.blocks(&mut out, &text[tops[next].start..from]);
        }
        if !done && n > next {
            let last = &tops[n - 1];
            match &last.kind {
                Kind::Fenced(lang, code) => {
                    if self.code.is_none() {
                        self.separate(&mut out);
                        let theme = self.theme.clone();
                        let layout = self.layout_for(&theme);
                        self.code = Some(OpenCode {
                            lines: CodeLines::new(&layout, lang),
                            shown: 0,
                        });
                        out.push_str(&self.ansi(&markdown::fence_line(&layout, lang)));
                    }
                    self.code_lines(&mut out, code, false);
                    from = last.start;
                }
                Kind::List(items) if items.len() > 1 => {
                    let cut = items[items.len() - 1];
                    let number = self.blocks(&mut out, &text[last.start..cut]);
                    self.list = Some(number);
                    from = cut;
                }
                _ => {}
            }
        }
        if end {
            from = pending.len();
        }
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

    fn renderer(color: bool) -> Renderer {
        Renderer::new(
            Arc::new(crate::theme::load_builtin("neon").expect("neon")),
            color,
        )
    }

    /// What `answer` shows when it comes in pieces of these sizes (the rest in one).
    fn shown(answer: &str, sizes: &[usize], color: bool) -> String {
        let chars: Vec<char> = answer.chars().collect();
        let mut r = renderer(color);
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
                plain(&out),
                "Fix\n\nUse this:\n\n```rust\nfn main() {}\n```\n\n- one\n  - inner\n- two\n  Done.\n",
                "pieces of {size}"
            );
            assert!(out.contains("\x1b["), "coloured");
            let code = out.lines().find(|l| l.contains("main")).expect("code line");
            assert!(code.matches("\x1b[").count() > 2, "highlighted: {code:?}");
        }
        let out = shown(answer, &[], false);
        assert!(!out.contains('\x1b'), "no colour: {out:?}");
    }

    proptest::proptest! {
        #[test]
        fn any_split_shows_what_the_whole_answer_shows(
            answer in "[`a fnrust{}\n*#>|1.\\-_=~()<\\[\\] ]{0,120}",
            cuts in proptest::collection::vec(1usize..10, 0..20),
        ) {
            proptest::prop_assert_eq!(shown(&answer, &cuts, true), shown(&answer, &[], true));
        }
    }

    /// Whether every escape sequence in `s` is styling (SGR: `ESC [ digits/; m`), and no other
    /// control character but line breaks and tabs is there.
    fn only_styling(s: &str) -> bool {
        let mut rest = s;
        while let Some(i) = rest.find(|c: char| c.is_control() && c != '\n' && c != '\t') {
            let tail = &rest[i..];
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
                    plain(&out),
                    "Title\\x1b]0;pwned\\x07 clear\\x1b[2J clip\\x1b]52;c;ZWNobyBwd25lZA==\\x07 \
                     rtl\\u{202e}txt bell\\x07 over\\x0dwrite \\x1b[2J \\x1b[1m\n\n```sh\n\
                     echo \\x1b[31mred\n```\n\nend\n",
                    "colour {color}, pieces of {size}"
                );
                if !color {
                    assert!(!out.contains('\x1b'), "{out:?}");
                }
            }
        }
        // A carriage return ending the answer is shown too.
        let mut r = renderer(true);
        let mut out = r.push("a\r");
        out.push_str(&r.finish());
        assert_eq!(out, "a\\x0d\n");
    }

    proptest::proptest! {
        #[test]
        fn no_answer_reaches_the_terminal_raw(
            answer in "[`a \n\r\x1b\x07\x00\u{9b}\u{202e}\u{2066}\\]\\[;&#]{0,60}",
            cuts in proptest::collection::vec(1usize..10, 0..20),
            color in proptest::bool::ANY,
        ) {
            let out = shown(&answer, &cuts, color);
            proptest::prop_assert!(only_styling(&out), "{:?}", out);
        }
    }

    #[test]
    fn an_empty_block_adds_no_blank_line() {
        let a = "1n{1{\n>>>>\n1\n\n";
        for size in 1..a.len() {
            assert_eq!(shown(a, &vec![size; a.len()], false), "1n{1{\n\n1\n");
        }
    }

    #[test]
    fn long_answers_cost_their_length() {
        // A code block of 100,000 lines shows each line as it comes; a paragraph as long
        // shows when it ends. Parsing everything again at every line would take hours.
        let started = std::time::Instant::now();
        let mut r = renderer(false);
        assert_eq!(r.push("```text\n"), "```text\n");
        for i in 0..100_000 {
            assert_eq!(r.push(&format!("line {i}\n")), format!("line {i}\n"));
        }
        assert_eq!(r.push("```\n"), "```\n");
        for i in 0..100_000 {
            r.push(&format!("word {i}\n"));
        }
        let out = r.finish();
        assert!(out.starts_with("\nword 0\n") && out.ends_with("word 99999\n"));
        assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
    }

    #[test]
    fn blocks_show_as_soon_as_nothing_can_change_them() {
        let mut r = renderer(false);
        assert_eq!(r.push("Hel"), "");
        assert_eq!(r.push("lo\n"), "", "a paragraph may go on");
        assert_eq!(r.push("\n"), "Hello\n", "a blank line ends it");
        assert_eq!(r.push("## Head\n"), "\nHead\n", "a heading is one line");
        assert_eq!(r.push("1. a\n"), "");
        assert_eq!(
            r.push("1. b\n"),
            "\n1. a\n",
            "an item shows when the next begins"
        );
        assert_eq!(r.push("   - c\n"), "");
        assert_eq!(r.push("```py\n"), "2. b\n   - c\n\n```py\n");
        assert_eq!(r.push("x = 1\n"), "x = 1\n", "code shows a line at a time");
        assert_eq!(r.push("y"), "");
        assert_eq!(r.push(" = 2\n```\n"), "y = 2\n```\n");
        assert_eq!(r.push("| a | b |\n|---|---|\n| 1 | 2 |\n"), "");
        assert_eq!(r.finish(), "\na  b\n─  ─\n1  2\n");
    }
}
