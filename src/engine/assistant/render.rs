//! Answers on a terminal: prose is printed as it streams in, and fenced code blocks are
//! highlighted line by line in the current theme (each code line is printed when it is
//! complete). Piped output is never rendered: it stays the answer's exact text.
//!
//! A model's words are text from outside, like a file name: on a terminal only Valyxo's own
//! styling may drive it. Every control character of an answer but the line break and the tab
//! — the escape that starts a sequence to retitle the window, clear the screen or fill the
//! clipboard (OSC 52), a lone carriage return that would write over a line — and every
//! character that reorders text is shown as an escape (`\x1b`, `\x0d`, `\u{202e}`), as
//! [`crate::text::clean_message`] shows error messages. A carriage return before a line break
//! (a CRLF answer) is only a line break.

use crate::highlight::{Highlighter, LineState};
use crate::theme::{Style, Theme};
use std::sync::Arc;

/// An open code block: its fence, and the highlighter for its language.
struct Block {
    fence: String,
    highlighter: Highlighter,
    state: LineState,
}

/// `text` as a terminal is to show it: every unsafe character but line breaks and tabs shown
/// as an escape ([`crate::text::clean_message`]), and nothing cut, however long.
pub fn visible(text: &str) -> String {
    if !text.chars().any(crate::text::is_unsafe) {
        return text.to_string();
    }
    // No answer comes near this length, and half of usize::MAX leaves the helper room to
    // compute with it.
    crate::text::clean_message(text, usize::MAX / 2)
}

pub struct Renderer {
    theme: Arc<Theme>,
    /// Whether to style: colour code blocks and dim fences. Without it the text is only made
    /// safe ([`visible`]).
    color: bool,
    /// The current line, when it must be seen whole before it is printed (it may be a fence,
    /// or it is code).
    held: String,
    /// Whether the text so far ends at the start of a line.
    line_start: bool,
    /// Whether the current line is being printed as it comes (prose).
    streaming_line: bool,
    block: Option<Block>,
    /// The last piece ended in a carriage return: dropped if a line break follows (CRLF),
    /// shown as `\x0d` otherwise.
    cr: bool,
}

impl Renderer {
    /// A renderer for a terminal; `color` says whether to style the answer or only to make
    /// it safe.
    pub fn new(theme: Arc<Theme>, color: bool) -> Renderer {
        Renderer {
            theme,
            color,
            held: String::new(),
            line_start: true,
            streaming_line: false,
            block: None,
            cr: false,
        }
    }

    /// Takes a piece of the answer; returns what to print now.
    pub fn push(&mut self, piece: &str) -> String {
        let mut text = String::with_capacity(piece.len() + 1);
        if std::mem::take(&mut self.cr) && !piece.starts_with('\n') {
            text.push('\r');
        }
        text.push_str(piece);
        if text.ends_with('\r') {
            text.pop();
            self.cr = true;
        }
        let text = text.replace("\r\n", "\n");
        let mut out = String::new();
        for part in text.split_inclusive('\n') {
            let (text, newline) = match part.strip_suffix('\n') {
                Some(t) => (t, true),
                None => (part, false),
            };
            if self.line_start {
                self.line_start = false;
                // A line is held until it is whole when it may open or close a fence, and
                // always inside a block.
                self.streaming_line =
                    self.block.is_none() && !text.is_empty() && !text.starts_with(['`', ' ']);
            }
            if self.streaming_line {
                out.push_str(&visible(text));
            } else {
                self.held.push_str(text);
                // Still unsure whether this is a fence: it stays held until the line ends,
                // unless it clearly is prose after all.
                if self.block.is_none()
                    && !newline
                    && !self.held.trim_start().is_empty()
                    && !self.held.trim_start().starts_with('`')
                {
                    out.push_str(&visible(&std::mem::take(&mut self.held)));
                    self.streaming_line = true;
                }
            }
            if newline {
                if !self.streaming_line {
                    let line = std::mem::take(&mut self.held);
                    out.push_str(&self.line(&line));
                }
                out.push('\n');
                self.line_start = true;
                self.streaming_line = false;
            }
        }
        out
    }

    /// What is left when the answer ends (a last line without a line break).
    pub fn finish(&mut self) -> String {
        let cr = if std::mem::take(&mut self.cr) {
            "\r"
        } else {
            ""
        };
        if self.streaming_line {
            return visible(cr);
        }
        let mut line = std::mem::take(&mut self.held);
        line.push_str(cr);
        if line.is_empty() {
            return String::new();
        }
        self.line(&line)
    }

    /// A whole held line: a fence, a line of code, or prose that began like a fence. It is
    /// made safe first, so that only the styling added here is anything but text.
    fn line(&mut self, line: &str) -> String {
        let line = &visible(line);
        let dim = Style {
            dim: true,
            ..Style::default()
        };
        match &mut self.block {
            Some(b) if super::closes(line, &b.fence) => {
                self.block = None;
                dim.paint(self.color, line)
            }
            Some(_) if !self.color => line.to_string(),
            Some(b) => {
                let base = Style::default();
                let parts = b.highlighter.line(&mut b.state, line, &self.theme, base);
                crate::ansi::line_to_ansi(&crate::highlight::styled_line(line, &parts, base), true)
            }
            None => match super::opening_fence(line) {
                Some((fence, lang)) => {
                    let highlighter = Highlighter::for_lang(lang, &self.theme);
                    let state = highlighter.start();
                    self.block = Some(Block {
                        fence: fence.to_string(),
                        highlighter,
                        state,
                    });
                    dim.paint(self.color, line)
                }
                None => line.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn renderer() -> Renderer {
        Renderer::new(
            Arc::new(crate::theme::load_builtin("neon").expect("neon")),
            true,
        )
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
    fn the_text_is_kept_exactly_and_code_is_coloured() {
        let answer = "Use this:\n```rust\nfn main() {}\n```\nDone `x`.";
        // Any split into pieces gives the same text.
        for size in [1, 2, 3, 7, 100] {
            let mut r = renderer();
            let chars: Vec<char> = answer.chars().collect();
            let mut out = String::new();
            for piece in chars.chunks(size) {
                out.push_str(&r.push(&piece.iter().collect::<String>()));
            }
            out.push_str(&r.finish());
            assert_eq!(plain(&out), answer, "pieces of {size}");
            assert!(out.contains("\x1b["), "coloured");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_answer_split_anyhow_comes_out_as_its_text(
            answer in "[`a fnrust{}\n]{0,80}",
            cuts in proptest::collection::vec(1usize..10, 0..20),
        ) {
            let chars: Vec<char> = answer.chars().collect();
            let mut r = renderer();
            let mut out = String::new();
            let mut pos = 0;
            for c in cuts {
                let end = (pos + c).min(chars.len());
                out.push_str(&r.push(&chars[pos..end].iter().collect::<String>()));
                pos = end;
            }
            out.push_str(&r.push(&chars[pos..].iter().collect::<String>()));
            out.push_str(&r.finish());
            proptest::prop_assert_eq!(plain(&out), answer);
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
         rtl\u{202e}txt bell\x07 over\rwrite\n```sh\necho \x1b[31mred\n```\nend\r\n";

    #[test]
    fn an_answer_cannot_drive_the_terminal() {
        for color in [true, false] {
            for size in [1, 2, 5, 1000] {
                let mut r = Renderer::new(
                    Arc::new(crate::theme::load_builtin("neon").expect("neon")),
                    color,
                );
                let chars: Vec<char> = HOSTILE.chars().collect();
                let mut out = String::new();
                for piece in chars.chunks(size) {
                    out.push_str(&r.push(&piece.iter().collect::<String>()));
                }
                out.push_str(&r.finish());
                assert!(
                    only_styling(&out),
                    "colour {color}, pieces of {size}: {out:?}"
                );
                assert_eq!(
                    plain(&out),
                    "Title\\x1b]0;pwned\\x07 clear\\x1b[2J clip\\x1b]52;c;ZWNobyBwd25lZA==\\x07 \
                     rtl\\u{202e}txt bell\\x07 over\\x0dwrite\n```sh\necho \\x1b[31mred\n```\nend\n",
                    "colour {color}, pieces of {size}"
                );
                if !color {
                    assert!(!out.contains('\x1b'), "{out:?}");
                }
            }
        }
        // A carriage return ending the answer is shown too.
        let mut r = renderer();
        let mut out = r.push("a\r");
        out.push_str(&r.finish());
        assert_eq!(out, "a\\x0d");
    }

    proptest::proptest! {
        #[test]
        fn no_answer_reaches_the_terminal_raw(
            answer in "[`a \n\r\x1b\x07\x00\u{9b}\u{202e}\u{2066}\\]\\[;]{0,60}",
            cuts in proptest::collection::vec(1usize..10, 0..20),
            color in proptest::bool::ANY,
        ) {
            let chars: Vec<char> = answer.chars().collect();
            let mut r = Renderer::new(
                Arc::new(crate::theme::load_builtin("neon").expect("neon")),
                color,
            );
            let mut out = String::new();
            let mut pos = 0;
            for c in cuts {
                let end = (pos + c).min(chars.len());
                out.push_str(&r.push(&chars[pos..end].iter().collect::<String>()));
                pos = end;
            }
            out.push_str(&r.push(&chars[pos..].iter().collect::<String>()));
            out.push_str(&r.finish());
            proptest::prop_assert!(only_styling(&out), "{:?}", out);
        }
    }

    #[test]
    fn prose_streams_before_its_line_ends() {
        let mut r = renderer();
        assert_eq!(r.push("Hel"), "Hel");
        assert_eq!(r.push("lo wor"), "lo wor");
        assert_eq!(r.push("`"), "`", "backticks inside a line are prose");
        let mut r = renderer();
        assert_eq!(r.push("``"), "", "a line starting with backticks waits");
        let out = r.push("`py\nx = 1\n");
        assert!(plain(&out).starts_with("```py\nx = 1\n"), "{out:?}");
    }
}
