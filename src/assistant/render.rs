//! Answers on a terminal: prose is printed as it streams in, and fenced code blocks are
//! highlighted line by line in the current theme (each code line is printed when it is
//! complete). Piped output is never rendered: it stays the answer's exact text.

use crate::highlight::{Highlighter, LineState};
use crate::theme::{Style, Theme};
use std::sync::Arc;

/// An open code block: its fence, and the highlighter for its language.
struct Block {
    fence: String,
    highlighter: Highlighter,
    state: LineState,
}

pub struct Renderer {
    theme: Arc<Theme>,
    /// The current line, when it must be seen whole before it is printed (it may be a fence,
    /// or it is code).
    held: String,
    /// Whether the text so far ends at the start of a line.
    line_start: bool,
    /// Whether the current line is being printed as it comes (prose).
    streaming_line: bool,
    block: Option<Block>,
}

impl Renderer {
    pub fn new(theme: Arc<Theme>) -> Renderer {
        Renderer {
            theme,
            held: String::new(),
            line_start: true,
            streaming_line: false,
            block: None,
        }
    }

    /// Takes a piece of the answer; returns what to print now.
    pub fn push(&mut self, piece: &str) -> String {
        let mut out = String::new();
        for part in piece.split_inclusive('\n') {
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
                out.push_str(text);
            } else {
                self.held.push_str(text);
                // Still unsure whether this is a fence: it stays held until the line ends,
                // unless it clearly is prose after all.
                if self.block.is_none()
                    && !newline
                    && !self.held.trim_start().is_empty()
                    && !self.held.trim_start().starts_with('`')
                {
                    out.push_str(&std::mem::take(&mut self.held));
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
        let line = std::mem::take(&mut self.held);
        if line.is_empty() {
            return String::new();
        }
        self.line(&line)
    }

    /// A whole held line: a fence, a line of code, or prose that began like a fence.
    fn line(&mut self, line: &str) -> String {
        let dim = Style {
            dim: true,
            ..Style::default()
        };
        match &mut self.block {
            Some(b) if super::closes(line, &b.fence) => {
                self.block = None;
                dim.paint(true, line)
            }
            Some(b) => {
                let base = Style::default();
                let parts = b.highlighter.line(&mut b.state, line, &self.theme, base);
                crate::pager::line_to_ansi(&crate::highlight::styled_line(line, &parts, base), true)
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
                    dim.paint(true, line)
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
        Renderer::new(Arc::new(crate::theme::load_builtin("neon").expect("neon")))
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
