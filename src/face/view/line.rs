//! One line of text typed into a full-screen view (face): the editor's prompts (find,
//! replace, go to line, open, save as), its assistant pane's question and the pager's
//! search. The cursor moves by grapheme cluster (an accented letter or an emoji made of
//! several characters is one step), and [`LineInput::fit`] shows the part of a long line
//! around the cursor.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use unicode_segmentation::GraphemeCursor;
use unicode_width::UnicodeWidthStr;

/// What a key did to the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edit {
    /// The text changed.
    Changed,
    /// Only the cursor moved (or the key changed nothing it could have: Backspace at the
    /// start).
    Moved,
    /// The key is not one the line takes: the view may give it a meaning of its own.
    Ignored,
}

/// The text and where the cursor is in it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LineInput {
    text: String,
    /// A byte offset in `text`, on a grapheme cluster boundary.
    cursor: usize,
    /// The text is a suggestion (the selection, the file's name): the first character typed
    /// replaces it, Backspace or Delete clears it, and moving keeps it, to be added to.
    suggested: bool,
}

impl LineInput {
    /// An empty line.
    pub fn new() -> LineInput {
        LineInput::default()
    }

    /// `text` offered as a suggestion, the cursor at its end; see [`LineInput::suggested`].
    pub fn suggest(text: &str) -> LineInput {
        let text = one_line(text);
        LineInput {
            cursor: text.len(),
            suggested: !text.is_empty(),
            text,
        }
    }

    /// The text typed.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text, taken out; the line is left empty.
    pub fn take(&mut self) -> String {
        self.cursor = 0;
        self.suggested = false;
        std::mem::take(&mut self.text)
    }

    /// Whether nothing is typed.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Whether the text is still the suggestion it was opened with, untouched.
    pub fn is_suggestion(&self) -> bool {
        self.suggested
    }

    /// The text before the cursor and from the cursor on.
    pub fn split(&self) -> (&str, &str) {
        self.text.split_at(self.cursor)
    }

    /// Types `text` at the cursor (a paste: its first line only, as the line has one).
    pub fn insert(&mut self, text: &str) {
        if self.suggested {
            self.clear();
        }
        let text = one_line(text);
        self.text.insert_str(self.cursor, &text);
        self.cursor += text.len();
    }

    /// Empties the line.
    pub fn clear(&mut self) {
        self.text.clear();
        self.cursor = 0;
        self.suggested = false;
    }

    /// Handles an editing key: a character without Ctrl or Alt types itself; Left, Right,
    /// Home and End (and Ctrl-A, Ctrl-E) move; Backspace (Ctrl-H) and Delete remove a
    /// cluster; Ctrl-U removes what is before the cursor, Ctrl-K what is after.
    pub fn key(&mut self, key: &KeyEvent) -> Edit {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        if alt {
            return Edit::Ignored;
        }
        let suggested = std::mem::replace(&mut self.suggested, false);
        let backspace = key.code == KeyCode::Backspace || (ctrl && key.code == KeyCode::Char('h'));
        match key.code {
            KeyCode::Char(c) if !ctrl => {
                if suggested {
                    self.clear();
                }
                self.text.insert(self.cursor, c);
                self.cursor += c.len_utf8();
                Edit::Changed
            }
            _ if suggested && (backspace || key.code == KeyCode::Delete) => {
                self.clear();
                Edit::Changed
            }
            _ if backspace => self.remove(self.before(), self.cursor),
            KeyCode::Delete => self.remove(self.cursor, self.after()),
            KeyCode::Char('u') if ctrl => self.remove(0, self.cursor),
            KeyCode::Char('k') if ctrl => self.remove(self.cursor, self.text.len()),
            KeyCode::Left => self.move_to(self.before()),
            KeyCode::Right => self.move_to(self.after()),
            KeyCode::Home => self.move_to(0),
            KeyCode::Char('a') if ctrl => self.move_to(0),
            KeyCode::End => self.move_to(self.text.len()),
            KeyCode::Char('e') if ctrl => self.move_to(self.text.len()),
            _ => {
                // A key the line does not take leaves a suggestion as it was.
                self.suggested = suggested;
                Edit::Ignored
            }
        }
    }

    /// What to show of `prefix` (a label, typed before the text) and the text in `width`
    /// columns, and the column of the cursor in it: a long line is cut at the front until
    /// the cursor fits, then at the end. `show` turns text into what the screen shows (the
    /// editor escapes control characters); it must keep the text's clusters whole.
    pub fn fit(&self, prefix: &str, width: usize, show: impl Fn(&str) -> String) -> (String, u16) {
        let (before, after) = self.split();
        let mut head = format!("{prefix}{}", show(before));
        let tail = show(after);
        // Keep a cell for the cursor.
        while !head.is_empty() && head.width() >= width {
            let first = head.chars().next().map_or(1, char::len_utf8);
            head.drain(..first);
        }
        let col = head.width();
        let mut shown = head;
        let mut used = col;
        for c in tail.chars() {
            let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
            if used + w > width {
                break;
            }
            shown.push(c);
            used += w;
        }
        (shown, u16::try_from(col).unwrap_or(u16::MAX))
    }

    fn move_to(&mut self, at: usize) -> Edit {
        self.cursor = at;
        Edit::Moved
    }

    fn remove(&mut self, from: usize, to: usize) -> Edit {
        if from == to {
            return Edit::Moved;
        }
        self.text.drain(from..to);
        self.cursor = from;
        Edit::Changed
    }

    /// The cluster boundary before the cursor (the start at the start).
    fn before(&self) -> usize {
        let mut gc = GraphemeCursor::new(self.cursor, self.text.len(), true);
        match gc.prev_boundary(&self.text, 0) {
            Ok(Some(at)) => at,
            _ => 0,
        }
    }

    /// The cluster boundary after the cursor (the end at the end).
    fn after(&self) -> usize {
        let mut gc = GraphemeCursor::new(self.cursor, self.text.len(), true);
        match gc.next_boundary(&self.text, 0) {
            Ok(Some(at)) => at,
            _ => self.text.len(),
        }
    }
}

/// The first line of `text`, as a one-line input takes it.
fn one_line(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    text.lines().next().unwrap_or("").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    fn typed(text: &str) -> LineInput {
        let mut line = LineInput::new();
        for c in text.chars() {
            assert_eq!(line.key(&key(KeyCode::Char(c))), Edit::Changed);
        }
        line
    }

    #[test]
    fn the_cursor_moves_by_cluster_and_edits_where_it_is() {
        // "é" as e and a combining accent, and a family emoji of several characters.
        let mut line = typed("ae\u{301}👨‍👩‍👧b");
        assert_eq!(line.split().1, "");
        line.key(&key(KeyCode::Left));
        assert_eq!(line.split().1, "b");
        line.key(&key(KeyCode::Left));
        assert_eq!(line.split().1, "👨‍👩‍👧b", "the emoji is one step");
        line.key(&key(KeyCode::Backspace));
        assert_eq!(line.text(), "a👨‍👩‍👧b", "e and its accent go together");
        line.key(&key(KeyCode::Delete));
        assert_eq!(line.text(), "ab");
        line.key(&key(KeyCode::Char('x')));
        assert_eq!(line.split(), ("ax", "b"));
        line.key(&key(KeyCode::Home));
        assert_eq!(line.key(&key(KeyCode::Backspace)), Edit::Moved);
        line.key(&key(KeyCode::Char('>')));
        assert_eq!(line.split(), (">", "axb"));
        line.key(&key(KeyCode::End));
        assert_eq!(line.key(&key(KeyCode::Delete)), Edit::Moved);
        assert_eq!(line.split(), (">axb", ""));
        line.key(&ctrl('a'));
        line.key(&key(KeyCode::Right));
        line.key(&ctrl('k'));
        assert_eq!(line.text(), ">");
        line.insert("yz\nnot this");
        line.key(&key(KeyCode::Left));
        line.key(&ctrl('u'));
        assert_eq!(line.split(), ("", "z"));
        line.key(&ctrl('e'));
        line.key(&ctrl('h'));
        assert!(line.is_empty());
        assert_eq!(
            line.key(&KeyEvent::new(KeyCode::Char('r'), KeyModifiers::ALT)),
            Edit::Ignored
        );
        assert_eq!(line.key(&key(KeyCode::Enter)), Edit::Ignored);
    }

    #[test]
    fn a_suggestion_is_replaced_by_typing_and_kept_by_moving() {
        let mut line = LineInput::suggest("name.txt");
        assert!(line.is_suggestion());
        assert_eq!(line.key(&key(KeyCode::Enter)), Edit::Ignored);
        assert!(
            line.is_suggestion(),
            "a key the line does not take keeps it"
        );
        line.key(&key(KeyCode::Char('x')));
        assert_eq!(line.text(), "x");
        let mut line = LineInput::suggest("name.txt");
        line.key(&key(KeyCode::Backspace));
        assert!(line.is_empty(), "Backspace clears a suggestion");
        let mut line = LineInput::suggest("name.txt");
        line.key(&key(KeyCode::End));
        line.key(&key(KeyCode::Char('x')));
        assert_eq!(line.text(), "name.txtx", "after moving, typing adds");
        assert!(!LineInput::suggest("").is_suggestion());
    }

    #[test]
    fn a_long_line_shows_the_cursor() {
        let line = typed("abcdefghij");
        assert_eq!(line.fit("/", 20, str::to_owned), ("/abcdefghij".into(), 11));
        // The end of the text, and a cell for the cursor after it.
        assert_eq!(line.fit("/", 6, str::to_owned), ("fghij".into(), 5));
        let mut line = line;
        line.key(&key(KeyCode::Home));
        line.key(&key(KeyCode::Right));
        assert_eq!(line.fit("/", 6, str::to_owned), ("/abcde".into(), 2));
        // What is shown may differ from the text: the cursor follows what is shown.
        let tab = typed("\tx");
        assert_eq!(
            tab.fit("", 10, |s| s.replace('\t', "\\t")),
            ("\\tx".into(), 3)
        );
        let wide = typed("日本語");
        assert_eq!(wide.fit("", 5, str::to_owned), ("本語".into(), 4));
    }
}
