//! Highlight sessions of the web editor (server): a text the account's page highlighted,
//! kept with the highlighter's state at checkpoint lines, so that an edit is highlighted
//! from the edited line only until the state at a line start is again what it was there.
//!
//! A session holds the text's lines and, every [`CHECKPOINT_EVERY`] lines or so, the
//! highlighter's state at the start of that line; the colours are not kept (the page has
//! them). After an edit (lines `from..from + removed` replaced by new ones), the state at
//! `from` is rebuilt from the checkpoint at or above it, the new lines are highlighted, and
//! highlighting goes on past them until it reaches a checkpoint whose kept state equals the
//! new one: every line below is then coloured as before. Opening a block comment above the
//! rest of the file re-colours all of it; typing inside a line costs that line and the lines
//! to the next checkpoint.
//!
//! The cache is only a help: a session the server does not know (evicted, another server
//! process, a restart, another account's) or at another revision is refused with
//! [`LOST`], and the page sends its whole text again. Memory is bounded: at most
//! [`PER_ACCOUNT`] sessions per account, [`MAX_SESSIONS`] in all, and [`BUDGET`] bytes of
//! them by [`Doc::cost`]; the least recently used go first.

use super::ApiError;
use crate::highlight::{Highlighter, LineState};
use crate::theme::Theme;
use axum::http::StatusCode;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The largest text highlighted (bytes, lines joined by `\n`): larger ones stay plain.
pub const TEXT_LIMIT: usize = 512 * 1024;
/// A checkpoint (the state at a line's start) is kept at most this many lines below the
/// last: an edit highlights at most this many lines more than it changed, and the state at
/// its first line is rebuilt by going over at most this many lines.
pub const CHECKPOINT_EVERY: usize = 32;
/// Sessions one account may have (a page each: a few tabs, a file opened after another).
pub const PER_ACCOUNT: usize = 4;
/// Sessions in all.
pub const MAX_SESSIONS: usize = 4096;
/// The bytes all sessions may take together, by [`Doc::cost`]: some 65 sessions of 10,000
/// lines (about 1 MB each).
pub const BUDGET: usize = 64 << 20;
/// The heap one kept state takes, about: measured at 520 bytes for Rust, JavaScript and
/// Python code (a syntect parse state and scope stack), twice that for deeper nesting.
const STATE_BYTES: usize = 1024;

/// The error code of a refused edit: the session is not known here, or is at another
/// revision; the page sends its whole text instead.
pub const LOST: &str = "highlight_session_lost";

/// One line's coloured parts: `(start, end, colour, style)`, start and end in UTF-16 units.
pub type Parts = Vec<(u32, u32, String, String)>;

/// A highlighted text, as a session keeps it.
pub struct Doc {
    /// The file's path, which chose the language.
    path: String,
    /// The theme's name.
    theme_name: String,
    theme: &'static Theme,
    hl: Highlighter,
    lines: Vec<String>,
    /// The state at the start of some lines, by line, in order; always one at line 0.
    checkpoints: Vec<(usize, LineState)>,
    /// The text's length in bytes, lines joined by `\n`.
    bytes: usize,
    revision: u64,
}

/// An edit: lines `from..from + removed` replaced by `lines`.
pub struct Edit {
    pub from: usize,
    pub removed: usize,
    pub lines: Vec<String>,
}

impl Doc {
    /// `text` (split at `\n`, a `\r` before it dropped) highlighted as `path` in `theme`:
    /// the session and every line's parts.
    pub fn new(path: &str, theme: &'static Theme, text: &str) -> (Doc, Vec<Parts>) {
        let first = text.lines().next().unwrap_or("");
        let hl = Highlighter::for_file(path, first, theme);
        let mut lines: Vec<String> = text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
            .collect();
        lines.shrink_to_fit();
        let mut state = hl.start();
        let mut checkpoints = Vec::new();
        let mut parts = Vec::with_capacity(lines.len());
        for (i, line) in lines.iter().enumerate() {
            if i % CHECKPOINT_EVERY == 0 && (i == 0 || hl.carries_state()) {
                checkpoints.push((i, state.clone()));
            }
            parts.push(line_parts(&hl, theme, &mut state, line));
        }
        let doc = Doc {
            path: path.to_string(),
            theme_name: theme.name.clone(),
            theme,
            hl,
            bytes: sum_len(&lines) + lines.len() - 1,
            lines,
            checkpoints,
            revision: 1,
        };
        (doc, parts)
    }

    /// Whether the session is of `path` in `theme`.
    pub fn is(&self, path: &str, theme: &Theme) -> bool {
        self.path == path && self.theme_name == theme.name
    }

    /// The language's name.
    pub fn language(&self) -> &str {
        self.hl.language()
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The text's lines.
    #[cfg(test)]
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// What the session takes in memory, about: its text, the lines' headers and the kept
    /// states.
    pub fn cost(&self) -> usize {
        self.bytes
            + self.lines.len() * std::mem::size_of::<String>()
            + self.checkpoints.len() * (STATE_BYTES + std::mem::size_of::<(usize, LineState)>())
            + self.path.len()
            + 256
    }

    /// Applies `edit` and highlights what it changed: the first line highlighted (the
    /// edit's `from`) and the parts of it and the lines after it that may have changed
    /// colour (at least the new lines). A range outside the text, or a text that would be
    /// over [`TEXT_LIMIT`], is refused and leaves the session as it was.
    pub fn edit(&mut self, edit: Edit) -> Result<(usize, Vec<Parts>), ApiError> {
        let Edit {
            from,
            removed,
            lines: new,
        } = edit;
        let len = self.lines.len();
        if from > len || removed > len - from {
            return Err(ApiError::invalid(vec![(
                "removed",
                format!(
                    "lines {from}..{} are not in the text's {len} lines",
                    from.saturating_add(removed)
                ),
            )]));
        }
        if len - removed + new.len() == 0 {
            return Err(ApiError::invalid(vec![(
                "lines",
                "a text has at least one line (an empty one)".to_string(),
            )]));
        }
        // Each line counts with one line break; the text has one fewer, before and after.
        let gone = sum_len(&self.lines[from..from + removed]) + removed;
        let bytes = self.bytes + sum_len(&new) + new.len() - gone;
        if bytes > TEXT_LIMIT {
            return Err(too_long());
        }
        let inserted = new.len();
        // The state at `from`: from the last checkpoint at or above it, over unchanged lines.
        let at = self.checkpoints.partition_point(|(l, _)| *l <= from) - 1;
        let (mut last, mut state) = self.checkpoints[at].clone();
        for line in &self.lines[last..from] {
            self.hl.advance(&mut state, line);
        }
        self.lines.splice(from..from + removed, new);
        self.bytes = bytes;
        self.revision += 1;
        // Checkpoints in the replaced lines go; those below move with the lines, their
        // states to be checked (and the first that still holds ends the work).
        let old = std::mem::take(&mut self.checkpoints);
        self.checkpoints = old
            .into_iter()
            .filter_map(|(l, s)| match l {
                l if l <= from => Some((l, s)),
                l if l < from + removed => None,
                l => Some((l + inserted - removed, s)),
            })
            .collect();
        let mut next = at + 1;
        let mut out = Vec::new();
        let mut i = from;
        loop {
            if i >= from + inserted {
                if !self.hl.carries_state() {
                    break;
                }
                if let Some((l, kept)) = self.checkpoints.get_mut(next) {
                    if *l == i {
                        if *kept == state {
                            break;
                        }
                        *kept = state.clone();
                        last = i;
                        next += 1;
                    }
                }
            }
            if i == self.lines.len() {
                break;
            }
            if i >= last + CHECKPOINT_EVERY && self.hl.carries_state() {
                self.checkpoints.insert(next, (i, state.clone()));
                last = i;
                next += 1;
            }
            out.push(line_parts(&self.hl, self.theme, &mut state, &self.lines[i]));
            i += 1;
        }
        Ok((from, out))
    }
}

/// The bytes of `lines`, without line breaks.
fn sum_len(lines: &[String]) -> usize {
    lines.iter().map(String::len).sum()
}

/// The refusal of a text over [`TEXT_LIMIT`].
pub fn too_long() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("Texts over {} KiB are not highlighted", TEXT_LIMIT / 1024),
    )
    .with_limit(TEXT_LIMIT as u64)
}

/// One line highlighted, moving `state` past it: its coloured parts in UTF-16 units.
fn line_parts(hl: &Highlighter, theme: &Theme, state: &mut LineState, line: &str) -> Parts {
    let parts = hl.line(state, line, theme, crate::theme::Style::default());
    // Byte offsets to UTF-16 units, walking the line once.
    let mut units = Vec::with_capacity(parts.len());
    let (mut byte, mut unit) = (0usize, 0u32);
    let mut at = |to: usize| {
        unit += line[byte..to].encode_utf16().count() as u32;
        byte = to;
        unit
    };
    for (range, style) in parts {
        let Some(fg) = style.fg else { continue };
        let (start, end) = (at(range.start), at(range.end));
        let (r, g, b) = fg.rgb();
        let mut flags = String::new();
        if style.bold {
            flags.push('b');
        }
        if style.italic {
            flags.push('i');
        }
        units.push((start, end, format!("#{r:02x}{g:02x}{b:02x}"), flags));
    }
    units
}

/// One kept session.
struct Entry {
    doc: Arc<Mutex<Doc>>,
    /// When it was last used (a count of uses across the cache).
    used: u64,
    cost: usize,
}

#[derive(Default)]
struct Inner {
    /// By account and session id: another account's id names nothing.
    map: HashMap<(i64, String), Entry>,
    clock: u64,
    bytes: usize,
}

/// The highlight sessions of every account.
#[derive(Default)]
pub struct Sessions {
    inner: Mutex<Inner>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `doc` for `account`: its new session id. Older sessions go when the account
    /// or the server holds too many.
    pub fn insert(&self, account: i64, doc: Doc) -> String {
        let id = super::auth::random_hex(16);
        let cost = doc.cost();
        let mut g = self.lock();
        g.clock += 1;
        let used = g.clock;
        g.bytes += cost;
        g.map.insert(
            (account, id.clone()),
            Entry {
                doc: Arc::new(Mutex::new(doc)),
                used,
                cost,
            },
        );
        loop {
            let mine = g.map.keys().filter(|(a, _)| *a == account).count();
            let over = g.bytes > BUDGET || g.map.len() > MAX_SESSIONS;
            if mine <= PER_ACCOUNT && !over {
                break;
            }
            // The least recently used: the account's own when it holds too many.
            let victim = g
                .map
                .iter()
                .filter(|((a, i), _)| (*a == account || over) && *i != id)
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone());
            let Some(k) = victim else { break };
            if let Some(e) = g.map.remove(&k) {
                g.bytes -= e.cost;
            }
        }
        id
    }

    /// The session `id` of `account`, marked as just used.
    pub fn get(&self, account: i64, id: &str) -> Option<Arc<Mutex<Doc>>> {
        let mut g = self.lock();
        g.clock += 1;
        let now = g.clock;
        let e = g.map.get_mut(&(account, id.to_string()))?;
        e.used = now;
        Some(e.doc.clone())
    }

    /// Counts the session's new size after an edit (if it is still kept).
    pub fn resized(&self, account: i64, id: &str, cost: usize) {
        let mut g = self.lock();
        let Some(e) = g.map.get_mut(&(account, id.to_string())) else {
            return;
        };
        let was = std::mem::replace(&mut e.cost, cost);
        g.bytes = g.bytes + cost - was;
    }

    /// Forgets the session (its edit failed half-way, or it is no longer wanted).
    pub fn remove(&self, account: i64, id: &str) {
        let mut g = self.lock();
        if let Some(e) = g.map.remove(&(account, id.to_string())) {
            g.bytes -= e.cost;
        }
    }

    /// How many sessions are kept, and their bytes.
    #[cfg(test)]
    pub fn size(&self) -> (usize, usize) {
        let g = self.lock();
        (g.map.len(), g.bytes)
    }
}

/// The refusal of an edit to a session that is not known here or has moved on.
pub fn lost(why: &str) -> ApiError {
    ApiError::conflict(format!("{why}: send the whole text again")).with_code(LOST)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::LazyLock;

    static NEON: LazyLock<Theme> =
        LazyLock::new(|| crate::theme::load_builtin("neon").expect("neon"));

    fn full(path: &str, text: &str) -> Vec<Parts> {
        Doc::new(path, &NEON, text).1
    }

    /// Applies `edit` to `doc` and to `shown` (the page's copy of every line's parts), and
    /// checks that the copy is what a full highlight of the new text gives.
    fn check(doc: &mut Doc, shown: &mut Vec<Parts>, edit: Edit, path: &str) -> usize {
        let (from, removed, inserted) = (edit.from, edit.removed, edit.lines.len());
        let (at, parts) = doc.edit(edit).unwrap();
        assert_eq!(at, from);
        assert!(parts.len() >= inserted);
        let blank: Vec<Parts> = vec![Vec::new(); inserted];
        shown.splice(from..from + removed, blank);
        let n = parts.len();
        for (k, p) in parts.into_iter().enumerate() {
            shown[from + k] = p;
        }
        let text = doc.lines().join("\n");
        assert_eq!(doc.bytes, text.len());
        assert_eq!(*shown, full(path, &text), "after an edit at {from}");
        n
    }

    #[test]
    fn edits_colour_as_a_full_highlight_does() {
        let text: String = (0..300)
            .map(|i| format!("    let s{i} = \"{i}\" + x; // {i}"))
            .collect::<Vec<_>>()
            .join("\n");
        let (mut doc, mut shown) = Doc::new("a.rs", &NEON, &text);
        let one = |from, removed, lines: &[&str]| Edit {
            from,
            removed,
            lines: lines.iter().map(|s| s.to_string()).collect(),
        };
        // A character typed: that line and at most a checkpoint's worth after it.
        let n = check(
            &mut doc,
            &mut shown,
            one(10, 1, &["    let s10 = \"10\" + xy; // 10"]),
            "a.rs",
        );
        assert!(n <= CHECKPOINT_EVERY + 1, "{n}");
        // A block comment opened above: every line below changes colour.
        let n = check(&mut doc, &mut shown, one(5, 0, &["/*"]), "a.rs");
        assert_eq!(n, 296);
        // Closed further down: the lines below it come back.
        check(&mut doc, &mut shown, one(100, 0, &["*/"]), "a.rs");
        // A string opened and left open on one line, then closed.
        check(
            &mut doc,
            &mut shown,
            one(200, 1, &["let t = \"open"]),
            "a.rs",
        );
        check(
            &mut doc,
            &mut shown,
            one(200, 1, &["let t = \"closed\";"]),
            "a.rs",
        );
        // Lines deleted across checkpoints, many pasted, the last lines dropped.
        check(&mut doc, &mut shown, one(20, 70, &[]), "a.rs");
        let paste: Vec<String> = (0..100)
            .map(|i| format!("fn f{i}() {{ /* {i} */ }}"))
            .collect();
        let paste: Vec<&str> = paste.iter().map(String::as_str).collect();
        check(&mut doc, &mut shown, one(3, 2, &paste), "a.rs");
        let len = doc.lines().len();
        check(&mut doc, &mut shown, one(len - 3, 3, &["}"]), "a.rs");
        check(
            &mut doc,
            &mut shown,
            one(0, 0, &["/* all", "*/ fn"]),
            "a.rs",
        );
        let len = doc.lines().len();
        check(&mut doc, &mut shown, one(len, 0, &["// end"]), "a.rs");
        assert_eq!(doc.revision(), 11);
        // Languages without state: only the new lines.
        let (mut doc, mut shown) = Doc::new("a.toml", &NEON, "a = 1\n[t]\nb = \"x\"");
        let n = check(&mut doc, &mut shown, one(1, 1, &["[u]", "c = 2"]), "a.toml");
        assert_eq!(n, 2);
    }

    #[test]
    fn edits_out_of_range_or_over_the_limit_change_nothing() {
        let (mut doc, _) = Doc::new("a.rs", &NEON, "fn a() {}\nfn b() {}");
        for (from, removed) in [(3, 0), (1, 2), (0, usize::MAX)] {
            let e = doc
                .edit(Edit {
                    from,
                    removed,
                    lines: vec![],
                })
                .unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
        }
        assert!(doc
            .edit(Edit {
                from: 0,
                removed: 2,
                lines: vec![]
            })
            .is_err());
        let big = "x".repeat(TEXT_LIMIT - 9);
        let e = doc
            .edit(Edit {
                from: 0,
                removed: 1,
                lines: vec![big.clone()],
            })
            .unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(doc.revision(), 1);
        assert_eq!(doc.lines(), ["fn a() {}", "fn b() {}"]);
        // Exactly at the limit is taken.
        let big = "x".repeat(TEXT_LIMIT - 10);
        doc.edit(Edit {
            from: 0,
            removed: 1,
            lines: vec![big],
        })
        .unwrap();
        assert_eq!(doc.bytes, TEXT_LIMIT);
    }

    #[test]
    fn sessions_are_per_account_and_bounded() {
        let s = Sessions::default();
        let doc = || Doc::new("a.rs", &NEON, "fn main() {}").0;
        let ids: Vec<String> = (0..PER_ACCOUNT + 1).map(|_| s.insert(1, doc())).collect();
        assert!(s.get(2, &ids[1]).is_none(), "another account's");
        assert!(s.get(1, &ids[0]).is_none(), "the least recently used went");
        for id in &ids[1..] {
            assert!(s.get(1, id).is_some());
        }
        let other = s.insert(2, doc());
        assert!(s.get(2, &other).is_some());
        assert_eq!(s.size().0, PER_ACCOUNT + 1);
        let cost = doc().cost();
        assert_eq!(s.size().1, cost * (PER_ACCOUNT + 1));
        s.remove(2, &other);
        assert_eq!(s.size(), (PER_ACCOUNT, cost * PER_ACCOUNT));
    }
}
