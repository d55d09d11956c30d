//! Markdown on a terminal (engine): the manuals' pages and the assistant's answers are
//! CommonMark with tables, parsed by `pulldown-cmark` and laid out here as styled lines —
//! headings, paragraphs (their line breaks kept), lists (nested, bulleted or numbered), block
//! quotes, tables with aligned columns, rules, and code blocks highlighted by
//! [`crate::highlight`]. Inline code, **strong** and *emphasised* text take the theme's
//! `pager.*` styles; a link shows its text, then its address in brackets.
//!
//! Every piece of text is made safe first ([`visible`]): a model's words or a page's reach
//! the terminal as text only, whatever control characters or character references
//! (`&#27;`) they hold. Without a theme every span is plain.

use crate::highlight::{Highlighter, LineState};
use crate::theme::{Style, Theme};
use pulldown_cmark::{Alignment, CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use ratatui::text::{Line, Span};
use std::borrow::Cow;
use unicode_width::UnicodeWidthStr;

/// The Markdown that Valyxo reads: CommonMark and tables.
pub fn parser(src: &str) -> Parser<'_> {
    Parser::new_ext(src, Options::ENABLE_TABLES)
}

/// `text` as a terminal is to show it: every unsafe character but line breaks and tabs shown
/// as an escape ([`crate::text::clean_message`]), and nothing cut, however long.
pub fn visible(text: &str) -> Cow<'_, str> {
    if !text.chars().any(crate::text::is_unsafe) {
        return Cow::Borrowed(text);
    }
    // No text comes near this length, and half of usize::MAX leaves the helper room to
    // compute with it.
    Cow::Owned(crate::text::clean_message(text, usize::MAX / 2))
}

/// How a text is laid out.
#[derive(Clone, Copy)]
pub struct Layout<'a> {
    /// The styles; without a theme every span is plain.
    pub theme: Option<&'a Theme>,
    /// Columns before body text, lists, tables and code.
    pub indent: usize,
    /// A manual page: the first-level heading that opens it is its title (in
    /// `pager.title`), section headings are in upper case at the margin, and code blocks
    /// are indented four more columns without their fences. Otherwise (an answer) headings
    /// are as written and code blocks keep their fences, dimmed, with the language.
    pub manual: bool,
}

impl Layout<'_> {
    fn style(&self, key: &str) -> Style {
        self.theme.map(|t| t.style(key)).unwrap_or_default()
    }

    fn span(&self, text: impl Into<Cow<'static, str>>, style: Style) -> Span<'static> {
        match self.theme {
            Some(_) => Span::styled(text.into(), style.to_ratatui()),
            None => Span::raw(text.into()),
        }
    }
}

/// The fence line of an answer's code block: three backticks and the language (none on a
/// closing fence), dimmed.
pub fn fence_line(layout: &Layout, lang: &str) -> Line<'static> {
    let dim = Style {
        dim: true,
        ..Style::default()
    };
    Line::from(layout.span(format!("```{}", visible(lang.trim())), dim))
}

/// The lines of one code block, highlighted one at a time as they come: by the walk over a
/// whole text, and by an answer shown while it streams in.
pub struct CodeLines {
    highlight: Option<(Highlighter, LineState)>,
    base: Style,
}

impl CodeLines {
    /// For a block tagged `lang` (only the first word counts: `rust,ignore` is Rust).
    pub fn new(layout: &Layout, lang: &str) -> CodeLines {
        let lang = lang.split([' ', ',', '{']).next().unwrap_or("");
        CodeLines {
            highlight: layout.theme.map(|t| {
                let hl = Highlighter::for_lang(lang, t);
                let state = hl.start();
                (hl, state)
            }),
            base: layout.style("pager.code"),
        }
    }

    /// One line of code (without its line break) as spans: made safe, trailing spaces
    /// dropped, highlighted.
    pub fn line(&mut self, theme: Option<&Theme>, line: &str) -> Vec<Span<'static>> {
        let line = visible(line.trim_end());
        match (&mut self.highlight, theme) {
            (Some((hl, state)), Some(t)) => {
                let parts = hl.line(state, &line, t, self.base);
                crate::highlight::styled_line(&line, &parts, self.base).spans
            }
            _ if line.is_empty() => Vec::new(),
            _ => vec![Span::raw(line.into_owned())],
        }
    }
}

/// `src` laid out as lines: no trailing spaces, and no blank line first or last.
pub fn lines(src: &str, layout: &Layout) -> Vec<Line<'static>> {
    walk(src, layout, None).0
}

/// Like [`lines`], for the rest of a text whose first lines were shown already: when the
/// first block is an ordered list, `number` (if any) is its first item's number, as it
/// continues a list shown in part. Also returns the number that an item after the last
/// top-level ordered list would have.
pub fn lines_continuing(
    src: &str,
    layout: &Layout,
    number: Option<u64>,
) -> (Vec<Line<'static>>, Option<u64>) {
    walk(src, layout, number)
}

/// Text before each line inside a container: a list item's marker on its first line and
/// spaces below it, or a block quote's bar.
struct Prefix {
    first: Vec<Span<'static>>,
    rest: Span<'static>,
    started: bool,
}

/// A table being read: its rows of cells (the first is the head), each cell as spans.
struct Table {
    aligns: Vec<Alignment>,
    rows: Vec<Vec<Vec<Span<'static>>>>,
    row: Vec<Vec<Span<'static>>>,
    cell: Vec<Span<'static>>,
}

struct Walk<'l, 'a> {
    layout: &'l Layout<'a>,
    out: Vec<Line<'static>>,
    line: Vec<Span<'static>>,
    prefixes: Vec<Prefix>,
    /// The style of inline text: the body's, then one more for each open span of emphasis,
    /// strong text, a link or a heading.
    styles: Vec<Style>,
    /// The open lists: the next item's number for a numbered one.
    lists: Vec<Option<u64>>,
    /// The first top-level ordered list's first number, when it continues one.
    number: Option<u64>,
    /// The number after the last top-level ordered list.
    next_number: Option<u64>,
    /// A block ended: the next one comes after a blank line.
    gap: bool,
    /// A blank line is due before the next line.
    blank: bool,
    /// Nothing came yet (a manual's first heading is its title).
    at_start: bool,
    /// Inside a heading: the manual's are in upper case, at the margin.
    heading: bool,
    /// Inside a manual's title, which keeps its case.
    title: bool,
    /// The open code block: its language and text.
    code: Option<(String, String)>,
    /// The open links: the address, and the text shown so far.
    links: Vec<(String, String)>,
    table: Option<Table>,
}

fn walk(src: &str, layout: &Layout, number: Option<u64>) -> (Vec<Line<'static>>, Option<u64>) {
    let mut w = Walk {
        layout,
        out: Vec::new(),
        line: Vec::new(),
        prefixes: Vec::new(),
        styles: vec![layout.style("pager.text")],
        lists: Vec::new(),
        number,
        next_number: None,
        gap: false,
        blank: false,
        at_start: true,
        heading: false,
        title: false,
        code: None,
        links: Vec::new(),
        table: None,
    };
    for (event, range) in parser(src).into_offset_iter() {
        match event {
            // A code span across a line break keeps the break, as other text does.
            Event::Code(t) if src[range.clone()].contains('\n') && w.code.is_none() => {
                w.code_span(&t, &src[range]);
            }
            e => w.event(e),
        }
    }
    w.end_line();
    (tidy(w.out), w.next_number)
}

impl Walk<'_, '_> {
    fn style(&self) -> Style {
        self.styles.last().copied().unwrap_or_default()
    }

    /// Starts the line being built, if it is empty: the indentation and the containers'
    /// prefixes.
    fn begin_line(&mut self) {
        if !self.line.is_empty() {
            return;
        }
        if std::mem::take(&mut self.blank) && !self.out.is_empty() {
            self.out.push(Line::default());
        }
        let margin = self.heading && self.layout.manual && self.prefixes.is_empty();
        if !margin && self.layout.indent > 0 {
            self.line.push(Span::raw(" ".repeat(self.layout.indent)));
        }
        for p in &mut self.prefixes {
            if p.started {
                self.line.push(p.rest.clone());
            } else {
                p.started = true;
                self.line.extend(p.first.iter().cloned());
            }
        }
    }

    fn end_line(&mut self) {
        if !self.line.is_empty() {
            self.out.push(Line::from(std::mem::take(&mut self.line)));
        }
    }

    /// Inline text in `style`, made safe (and in upper case in a manual's heading).
    fn push(&mut self, text: &str, style: Style) {
        if text.is_empty() {
            return;
        }
        let text = visible(text);
        let text = if self.heading && self.layout.manual && !self.title {
            Cow::Owned(text.to_uppercase())
        } else {
            text
        };
        for (_, shown) in &mut self.links {
            shown.push_str(&text);
        }
        let span = self.layout.span(text.into_owned(), style);
        if let Some(t) = &mut self.table {
            t.cell.push(span);
            return;
        }
        self.begin_line();
        self.line.push(span);
    }

    /// A block starts: after a blank line when one ended before it (put in by
    /// [`Walk::begin_line`] once the block shows anything).
    fn block(&mut self) {
        self.end_line();
        if std::mem::take(&mut self.gap) {
            self.blank = true;
        }
    }

    fn event(&mut self, event: Event) {
        if let Some((_, code)) = &mut self.code {
            match event {
                Event::Text(t) => code.push_str(&t),
                Event::End(TagEnd::CodeBlock) => self.code_block(),
                _ => {}
            }
            return;
        }
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(t) => self.push(&t, self.style()),
            Event::Code(t) => self.push(&t, self.code_style()),
            Event::Html(t) | Event::InlineHtml(t) => {
                let mut lines = t.split('\n').peekable();
                while let Some(l) = lines.next() {
                    self.push(l, self.style());
                    if lines.peek().is_some_and(|n| !n.is_empty()) {
                        self.end_line();
                    }
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if self.table.is_none() {
                    self.end_line();
                }
            }
            Event::Rule => {
                self.block();
                let width = 40usize.saturating_sub(self.layout.indent).max(8);
                self.push(&"─".repeat(width), self.layout.style("pager.bullet"));
                self.end_line();
                self.gap = true;
            }
            Event::TaskListMarker(done) => {
                self.push(if done { "[x] " } else { "[ ] " }, self.style());
            }
            Event::FootnoteReference(t) => self.push(&format!("[^{t}]"), self.style()),
            Event::InlineMath(t) | Event::DisplayMath(t) => self.push(&t, self.style()),
        }
        self.at_start = false;
    }

    fn start(&mut self, tag: Tag) {
        match tag {
            Tag::Paragraph | Tag::HtmlBlock => self.block(),
            Tag::Heading { level, .. } => {
                self.block();
                self.heading = true;
                self.title = self.layout.manual && self.at_start && level == HeadingLevel::H1;
                let key = if self.title {
                    "pager.title"
                } else if level <= HeadingLevel::H2 {
                    "pager.heading"
                } else {
                    "pager.subheading"
                };
                self.styles.push(self.layout.style(key));
            }
            Tag::BlockQuote(_) => {
                self.block();
                let bar = self.layout.span("│ ", self.layout.style("pager.bullet"));
                self.prefixes.push(Prefix {
                    first: vec![bar.clone()],
                    rest: bar,
                    started: false,
                });
            }
            Tag::CodeBlock(kind) => {
                self.block();
                let lang = match kind {
                    CodeBlockKind::Fenced(l) => l.to_string(),
                    CodeBlockKind::Indented => String::new(),
                };
                self.code = Some((lang, String::new()));
            }
            Tag::List(first) => {
                // A list inside an item follows the item's text directly.
                if self.lists.is_empty() {
                    self.block();
                } else {
                    self.end_line();
                    self.gap = false;
                }
                let first = match (self.lists.is_empty(), self.number.take(), first) {
                    (true, Some(n), Some(_)) => Some(n),
                    (_, _, f) => f,
                };
                self.lists.push(first);
            }
            Tag::Item => {
                self.end_line();
                self.gap = false;
                let marker = match self.lists.last_mut() {
                    Some(Some(n)) => {
                        *n += 1;
                        format!("{}.", *n - 1)
                    }
                    _ => "-".to_string(),
                };
                let width = marker.chars().count() + 1;
                let bullet = self.layout.style("pager.bullet");
                self.prefixes.push(Prefix {
                    first: vec![
                        self.layout.span(marker, bullet),
                        self.layout.span(" ", self.style()),
                    ],
                    rest: Span::raw(" ".repeat(width)),
                    started: false,
                });
            }
            Tag::Table(aligns) => {
                self.block();
                self.table = Some(Table {
                    aligns,
                    rows: Vec::new(),
                    row: Vec::new(),
                    cell: Vec::new(),
                });
            }
            Tag::TableHead => {
                let strong = self.layout.style("pager.strong").over(self.style());
                self.styles.push(strong);
            }
            Tag::Emphasis => {
                let mut s = self.style();
                s.italic = true;
                self.styles.push(s);
            }
            Tag::Strong => {
                let s = self.layout.style("pager.strong").over(self.style());
                self.styles.push(s);
            }
            Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. } => {
                let mut s = self.style();
                s.underline = true;
                self.styles.push(s);
                self.links.push((dest_url.to_string(), String::new()));
            }
            _ => {}
        }
        self.at_start = false;
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph | TagEnd::HtmlBlock => {
                self.end_line();
                self.gap = true;
            }
            TagEnd::Heading(_) => {
                self.end_line();
                self.heading = false;
                self.title = false;
                self.styles.pop();
                self.gap = true;
            }
            TagEnd::BlockQuote(_) => {
                self.end_line();
                self.prefixes.pop();
                self.gap = true;
            }
            TagEnd::List(_) => {
                self.end_line();
                let next = self.lists.pop().flatten();
                if self.lists.is_empty() {
                    self.next_number = next;
                }
                self.gap = true;
            }
            TagEnd::Item => {
                self.end_line();
                self.prefixes.pop();
                self.gap = false;
            }
            TagEnd::TableCell => {
                if let Some(t) = &mut self.table {
                    let cell = std::mem::take(&mut t.cell);
                    t.row.push(cell);
                }
            }
            TagEnd::TableHead | TagEnd::TableRow => {
                if tag == TagEnd::TableHead {
                    self.styles.pop();
                }
                if let Some(t) = &mut self.table {
                    let row = std::mem::take(&mut t.row);
                    t.rows.push(row);
                }
            }
            TagEnd::Table => self.table_block(),
            TagEnd::Emphasis | TagEnd::Strong => {
                self.styles.pop();
            }
            TagEnd::Link | TagEnd::Image => {
                self.styles.pop();
                if let Some((dest, shown)) = self.links.pop() {
                    let bare = dest.strip_prefix("mailto:").unwrap_or(&dest);
                    if !dest.is_empty() && bare != shown {
                        let dim = Style {
                            dim: true,
                            ..Style::default()
                        }
                        .over(self.style());
                        self.push(&format!(" ({dest})"), dim);
                    }
                }
            }
            _ => {}
        }
    }

    /// Inline code written over several lines (`source` with its back-ticks), a line each.
    fn code_span(&mut self, code: &str, source: &str) {
        let style = self.code_style();
        let inner = source.trim_matches('`');
        let parts: Vec<&str> = inner
            .split('\n')
            .map(|p| p.trim_end_matches('\r'))
            .collect();
        let last = parts.len() - 1;
        for (i, part) in parts.into_iter().enumerate() {
            let mut part = if i > 0 { part.trim_start() } else { part };
            if i == 0 && !code.starts_with(' ') {
                part = part.trim_start();
            }
            if i < last || !code.ends_with(' ') {
                part = part.trim_end();
            }
            self.push(part, style);
            if i < last && self.table.is_none() {
                self.end_line();
            }
        }
        self.at_start = false;
    }

    fn code_style(&self) -> Style {
        if self.heading {
            self.style()
        } else {
            self.layout.style("pager.inline").over(self.style())
        }
    }

    /// The code block just read: fenced and highlighted in an answer, indented in a manual.
    fn code_block(&mut self) {
        let Some((lang, code)) = self.code.take() else {
            return;
        };
        let layout = self.layout;
        if !layout.manual {
            self.begin_line();
            self.line.extend(fence_line(layout, &lang).spans);
            self.end_line();
        }
        let mut lines = CodeLines::new(layout, &lang);
        for l in code.lines() {
            let spans = lines.line(layout.theme, l);
            if spans.is_empty() {
                self.begin_line();
                self.line.clear();
                self.out.push(Line::default());
                continue;
            }
            self.begin_line();
            if layout.manual {
                self.line.push(Span::raw("    "));
            }
            self.line.extend(spans);
            self.end_line();
        }
        if !layout.manual {
            self.begin_line();
            self.line.extend(fence_line(layout, "").spans);
            self.end_line();
        }
        self.gap = true;
    }

    /// The table just read, its columns aligned, a rule under its head.
    fn table_block(&mut self) {
        let Some(t) = self.table.take() else {
            return;
        };
        let width = |cell: &[Span]| cell.iter().map(|s| s.content.width()).sum::<usize>();
        let mut widths: Vec<usize> = Vec::new();
        for row in &t.rows {
            for (i, cell) in row.iter().enumerate() {
                if widths.len() <= i {
                    widths.push(0);
                }
                widths[i] = widths[i].max(width(cell));
            }
        }
        let rule = self.layout.style("pager.bullet");
        let head: Vec<usize> = t
            .rows
            .first()
            .map(|r| r.iter().map(|c| width(c).max(1)).collect())
            .unwrap_or_default();
        for (r, row) in t.rows.into_iter().enumerate() {
            self.begin_line();
            let n = row.len();
            for (i, cell) in row.into_iter().enumerate() {
                let pad = widths[i].saturating_sub(width(&cell));
                let (before, after) = match t.aligns.get(i) {
                    Some(Alignment::Right) => (pad, 0),
                    Some(Alignment::Center) => (pad / 2, pad - pad / 2),
                    _ => (0, pad),
                };
                if i > 0 {
                    self.line.push(Span::raw("  "));
                }
                if before > 0 {
                    self.line.push(Span::raw(" ".repeat(before)));
                }
                self.line.extend(cell);
                if after > 0 && i + 1 < n {
                    self.line.push(Span::raw(" ".repeat(after)));
                }
            }
            self.end_line();
            if r == 0 {
                // Each head cell underlined, so that a long last column does not make the
                // rule wrap.
                self.begin_line();
                let mut line = String::new();
                for (i, w) in head.iter().enumerate() {
                    if i > 0 {
                        line.push_str(&" ".repeat(widths[i - 1].saturating_sub(head[i - 1]) + 2));
                    }
                    line.push_str(&"─".repeat(*w));
                }
                self.line.push(self.layout.span(line, rule));
                self.end_line();
            }
        }
        self.gap = true;
    }
}

/// No trailing spaces, and no blank lines at the end.
fn tidy(mut lines: Vec<Line<'static>>) -> Vec<Line<'static>> {
    for line in &mut lines {
        while let Some(last) = line.spans.last_mut() {
            let kept = last.content.trim_end().len();
            if kept == 0 {
                line.spans.pop();
            } else {
                if kept < last.content.len() {
                    last.content = last.content[..kept].to_string().into();
                }
                break;
            }
        }
    }
    while lines.last().is_some_and(|l| l.spans.is_empty()) {
        lines.pop();
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(src: &str, manual: bool) -> String {
        let layout = Layout {
            theme: None,
            indent: if manual { 4 } else { 0 },
            manual,
        };
        let mut out = String::new();
        for l in lines(src, &layout) {
            for s in &l.spans {
                out.push_str(&s.content);
            }
            out.push('\n');
        }
        out
    }

    #[test]
    fn nested_lists_indent_under_their_item() {
        let md = "- one\n  - inner\n    more of it\n  - two\n- three\n\n3. c\n4. d\n   1. x\n";
        assert_eq!(
            text(md, false),
            "- one\n  - inner\n    more of it\n  - two\n- three\n\n3. c\n4. d\n   1. x\n"
        );
        assert_eq!(
            text("Intro:\n\n- a\n  - b\n", true),
            "    Intro:\n\n    - a\n      - b\n"
        );
    }

    #[test]
    fn fenced_code_keeps_its_language_and_is_highlighted() {
        let md = "Run:\n\n```rust\nfn main() {}\n```\n";
        assert_eq!(text(md, false), "Run:\n\n```rust\nfn main() {}\n```\n");
        assert_eq!(text(md, true), "    Run:\n\n        fn main() {}\n");
        let theme = crate::theme::load_builtin("neon").expect("neon");
        let layout = Layout {
            theme: Some(&theme),
            indent: 0,
            manual: false,
        };
        let out = lines(md, &layout);
        let code = &out[3];
        assert!(code.spans.len() > 1, "highlighted: {code:?}");
        assert!(out[2].spans[0]
            .style
            .add_modifier
            .contains(ratatui::style::Modifier::DIM));
    }

    #[test]
    fn inline_markup_links_and_tables() {
        let md = "Use `ls -l` for **more**, *see* [Rhai](https://rhai.rs) or <https://x.org>.\n\n\
                  | a | long b |\n|---|--:|\n| `x` | 1 |\n";
        assert_eq!(
            text(md, false),
            "Use ls -l for more, see Rhai (https://rhai.rs) or https://x.org.\n\n\
             a  long b\n─  ──────\nx       1\n"
        );
    }

    #[test]
    fn inline_code_over_two_lines_keeps_the_line_break() {
        assert_eq!(
            text("described in `man\nassistant`. When `` a\n  b `` c\n", true),
            "    described in man\n    assistant. When a\n    b c\n"
        );
    }

    #[test]
    fn tables_underline_their_head_and_take_empty_cells() {
        let md = "| | long head |\n|:-:|---|\n| wide cell | x |\n| y | |\n";
        assert_eq!(
            text(md, false),
            "           long head\n\u{2500}          \u{2500}\u{2500}\u{2500}\u{2500}\u{2500}\u{2500}\u{2500}\u{2500}\u{2500}\nwide cell  x\n    y\n"
        );
    }

    #[test]
    fn a_list_in_a_quote_comes_after_a_blank_line() {
        assert_eq!(
            text("> a\n>\n> - b\n", false),
            "\u{2502} a\n\n\u{2502} - b\n"
        );
    }

    #[test]
    fn no_text_reaches_the_terminal_raw() {
        let md =
            "# T\x1b]0;x\x07\n\nA &#27;[2J and \u{202e} `\x1b[31m`\n\n```sh\necho \x1b[2J\n```\n";
        let out = text(md, false);
        assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
        assert!(
            out.contains("A \\x1b[2J and \\u{202e} \\x1b[31m"),
            "{out:?}"
        );
        assert!(out.contains("echo \\x1b[2J"), "{out:?}");
    }
}
