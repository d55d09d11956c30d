//! Snippets in the editor (face): Tab after a prefix expands the snippet for the buffer's
//! language ([`crate::snippets`] holds them and does the expanding), then Tab and Shift-Tab
//! go from tab stop to tab stop; what is typed at a stop replaces its default and fills its
//! mirrors as it is typed. Esc, moving out of the stop, or any other edit ends the snippet.
//! The expansion and everything typed into its stops are one undo step.

use super::Editor;
use crate::snippets;
use std::ops::Range;

/// A snippet being filled in.
pub struct Session {
    /// The buffer it is in.
    buffer: usize,
    /// Each stop's char ranges in the buffer, the first where the cursor goes; in Tab order.
    stops: Vec<Vec<Range<usize>>>,
    current: usize,
    /// The buffer's text state after the snippet's last edit: any other edit ends it.
    state: u64,
}

/// Where the cursor and anchor go for a stop: its default selected, or the cursor in it.
fn select(r: &Range<usize>) -> (usize, Option<usize>) {
    if r.is_empty() {
        (r.start, None)
    } else {
        (r.end, Some(r.start))
    }
}

impl Editor {
    /// The snippet language of the current buffer.
    pub(super) fn snippet_language(&self) -> Option<&'static str> {
        let b = &self.buffers[self.current];
        snippets::language_of(&b.name(), b.highlighter.language())
    }

    /// Tab: the next stop of the snippet being filled in, else the expansion of the snippet
    /// named by the word before the cursor. False when neither applies (Tab indents).
    pub(super) fn snippet_tab(&mut self, back: bool) -> bool {
        if let Some(s) = self.snippet.as_mut() {
            let next = if back {
                s.current.checked_sub(1)
            } else {
                Some(s.current + 1).filter(|&n| n < s.stops.len())
            };
            match next {
                Some(n) => {
                    s.current = n;
                    let (cursor, anchor) = select(&s.stops[n][0]);
                    let last = n + 1 == s.stops.len();
                    self.buf().restore_position(cursor, anchor);
                    if last {
                        // The final stop: the snippet is done.
                        self.snippet = None;
                    }
                    return true;
                }
                // Shift-Tab at the first stop stays there.
                None if back => return true,
                None => {
                    self.snippet = None;
                    return false;
                }
            }
        }
        !back && self.expand_snippet()
    }

    /// Expands the snippet whose prefix is the word before the cursor, if there is one for
    /// the buffer's language.
    fn expand_snippet(&mut self) -> bool {
        let Some(lang) = self.snippet_language() else {
            return false;
        };
        let b = &self.buffers[self.current];
        if b.selection().is_some() {
            return false;
        }
        let cursor = b.cursor();
        let (line, _) = b.cursor_line_col();
        let line_start = b.rope.line_to_char(line);
        let before: Vec<char> = b.rope.slice(line_start..cursor).chars().collect();
        let word_len = before
            .iter()
            .rev()
            .take_while(|&&c| snippets::is_prefix_char(c))
            .count();
        if word_len == 0 {
            return false;
        }
        let word: String = before[before.len() - word_len..].iter().collect();
        let indent: String = before
            .iter()
            .take_while(|&&c| c == ' ' || c == '\t')
            .collect();
        let style = b.indent;
        let unit = if style.tabs {
            "\t".to_string()
        } else {
            " ".repeat(style.size.max(1))
        };
        self.snippets.refresh(&self.hub.vfs);
        let problem = self.snippets.problem(lang).map(|p| {
            let p = crate::text::clean_message(p, 300);
            format!("Snippets: {p} (your {lang} snippets are left out)")
        });
        let Some(snippet) = self.snippets.find(lang, &word) else {
            if let Some(p) = problem {
                self.error(p);
            }
            return false;
        };
        let pieces = match snippets::parse(&snippet.body) {
            Ok(p) => p,
            Err(e) => {
                self.error(format!("Snippet '{word}': {e:#}"));
                return true;
            }
        };
        let e = snippets::expand(&pieces, &indent, &unit);
        let start = cursor - word_len;
        let stops: Vec<Vec<Range<usize>>> = e
            .stops
            .iter()
            .map(|rs| rs.iter().map(|r| r.start + start..r.end + start).collect())
            .collect();
        let to = select(&stops[0][0]);
        let b = self.buf();
        b.replace_ranges(&[(start..cursor, e.text)], false, to);
        let state = b.state();
        self.snippet = (stops.len() > 1).then_some(Session {
            buffer: self.current,
            stops,
            current: 0,
            state,
        });
        self.edited();
        if self.snippet.is_some() {
            self.say(format!(
                "Snippet {word}: Tab goes to the next stop, Shift-Tab back, Esc ends (Ctrl-Z undoes it)"
            ));
        }
        if let Some(p) = problem {
            self.error(p);
        }
        true
    }

    /// The snippet session, if it still holds: in this buffer, nothing else edited since.
    fn live_session(&mut self) -> Option<&mut Session> {
        let current = self.current;
        let Some(state) = self.buffers.get(current).map(|b| b.state()) else {
            self.snippet = None;
            return None;
        };
        if self
            .snippet
            .as_ref()
            .is_some_and(|s| s.buffer != current || s.state != state)
        {
            self.snippet = None;
        }
        self.snippet.as_mut()
    }

    /// An edit at the current stop: `text` in place of the selection (or, with none, of
    /// `erase` chars before the cursor, or after it when negative), made in the stop and its
    /// mirrors alike. False when the cursor is not in the stop (the edit is an ordinary one).
    pub(super) fn snippet_edit(&mut self, text: &str, erase: isize) -> bool {
        let b = &self.buffers[self.current];
        let (cursor, sel) = (b.cursor(), b.selection());
        let Some(s) = self.live_session() else {
            return false;
        };
        let primary = s.stops[s.current][0].clone();
        let range = match sel.clone() {
            Some(r) => r,
            None if erase > 0 => cursor.saturating_sub(erase as usize)..cursor,
            None if erase < 0 => cursor..cursor + erase.unsigned_abs(),
            None => cursor..cursor,
        };
        if range.start < primary.start || range.end > primary.end {
            return false;
        }
        if erase != 0 && sel.is_none() && range.is_empty() {
            return false;
        }
        let rel = range.start - primary.start..range.end - primary.start;
        let len = text.chars().count();
        let delta = len as isize - rel.len() as isize;
        let shift = |p: usize, by: isize| (p as isize + by) as usize;
        let old = s.stops[s.current].clone();
        let edits: Vec<(Range<usize>, String)> = old
            .iter()
            .map(|m| (m.start + rel.start..m.start + rel.end, text.to_string()))
            .collect();
        for (i, stop) in s.stops.iter_mut().enumerate() {
            for r in stop.iter_mut() {
                if i == s.current {
                    // Each mirror moves by the growth of the mirrors before it.
                    let k = old.iter().filter(|m| m.start < r.start).count() as isize;
                    *r = shift(r.start, k * delta)..shift(r.end, (k + 1) * delta);
                } else {
                    let k = old.iter().filter(|m| m.end <= r.start).count() as isize;
                    *r = shift(r.start, k * delta)..shift(r.end, k * delta);
                }
            }
        }
        let at = s.stops[s.current][0].start + rel.start + len;
        let b = &mut self.buffers[self.current];
        b.replace_ranges(&edits, true, (at, None));
        let state = b.state();
        if let Some(s) = self.snippet.as_mut() {
            s.state = state;
        }
        self.edited();
        true
    }

    /// After a key: the snippet ends once the cursor left its stop or something else was
    /// edited.
    pub(super) fn snippet_check(&mut self) {
        let Some(b) = self.buffers.get(self.current) else {
            self.snippet = None;
            return;
        };
        let (cursor, sel) = (b.cursor(), b.selection());
        if let Some(s) = self.live_session() {
            let p = &s.stops[s.current][0];
            let inside = |x: usize| p.start <= x && x <= p.end;
            if !inside(cursor) || sel.is_some_and(|r| !inside(r.start) || !inside(r.end)) {
                self.snippet = None;
            }
        }
    }

    /// Whether a snippet is being filled in (for the tests and the status line).
    pub fn in_snippet(&self) -> bool {
        self.snippet.is_some()
    }

    /// Backspace (`back`) or Delete at the snippet's stop: the grapheme cluster before or
    /// after the cursor (an accented letter, an emoji sequence), in the stop and its mirrors.
    /// False when the cursor is not in the stop.
    pub(super) fn snippet_erase(&mut self, back: bool) -> bool {
        let b = &self.buffers[self.current];
        let cursor = b.cursor();
        if b.selection().is_some() {
            return self.snippet_edit("", if back { 1 } else { -1 });
        }
        let erase = if back {
            (cursor - b.prev_stop(cursor)) as isize
        } else {
            -((b.next_stop(cursor) - cursor) as isize)
        };
        // Nothing to erase (the start or end of the text) erases nothing, in the stop too.
        erase != 0 && self.snippet_edit("", erase)
    }

    /// Types into the snippet's stop when the cursor is in one; false otherwise.
    pub(super) fn snippet_type(&mut self, c: char) -> bool {
        self.snippet_edit(&c.to_string(), 0)
    }
}
