//! What the editor searches for (engine, no UI types): plain text, or a regular expression
//! (the `regex` crate's syntax, one line at a time) whose replacements may name its groups
//! (`$1`, `${name}`). Both ignore case unless the query holds an upper-case letter.

use ropey::{Rope, RopeSlice};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Clone, Debug, Default)]
pub enum Query {
    #[default]
    Empty,
    /// Plain text (found by an escaped regular expression: the same fast search).
    Text {
        source: String,
        re: regex::Regex,
    },
    Regex {
        source: String,
        re: regex::Regex,
    },
}

impl Query {
    /// A query for `text`, read as a regular expression when `regex`; an invalid one is
    /// an error that says where it is wrong.
    pub fn new(text: &str, regex: bool) -> Result<Query, String> {
        if text.is_empty() {
            return Ok(Query::Empty);
        }
        let exact = text.chars().any(char::is_uppercase);
        if !regex {
            return literal(text, !exact).ok_or_else(|| "the text is too long to find".into());
        }
        regex::RegexBuilder::new(text)
            .case_insensitive(!exact)
            // A pattern is a line's worth: a bounded program, whatever is typed.
            .size_limit(1 << 20)
            .build()
            .map(|re| Query::Regex {
                source: text.to_string(),
                re,
            })
            .map_err(|e| match e {
                regex::Error::Syntax(s) => s.lines().last().unwrap_or("").trim().to_string(),
                other => other.to_string(),
            })
    }

    /// A query for exactly `text`, case and all (select the next occurrence).
    pub fn exact(text: &str) -> Query {
        literal(text, false).unwrap_or_default()
    }

    pub fn as_str(&self) -> &str {
        match self {
            Query::Empty => "",
            Query::Text { source, .. } | Query::Regex { source, .. } => source,
        }
    }

    pub fn is_empty(&self) -> bool {
        matches!(self, Query::Empty)
    }

    pub fn is_regex(&self) -> bool {
        matches!(self, Query::Regex { .. })
    }

    /// The matches in one line (without its line break), as char ranges.
    pub fn matches_in(&self, line: &str) -> Vec<Range<usize>> {
        match self {
            Query::Empty => Vec::new(),
            Query::Text { re, .. } | Query::Regex { re, .. } => {
                let ascii = line.is_ascii();
                let to_char = |b: usize| {
                    if ascii {
                        b
                    } else {
                        line[..b].chars().count()
                    }
                };
                re.find_iter(line)
                    // An empty match selects nothing and would stop a search on the spot.
                    .filter(|m| !m.is_empty())
                    .map(|m| to_char(m.start())..to_char(m.end()))
                    .collect()
            }
        }
    }

    /// What replaces the match at char range `at` of `line`: `with` itself, or for a
    /// regular expression `with` with `$1`, `${name}` (and `$$` for a dollar) filled in
    /// from that match, read in its line so anchors and word boundaries hold.
    pub fn replacement(&self, line: &str, at: Range<usize>, with: &str) -> String {
        let Query::Regex { re, .. } = self else {
            return with.to_string();
        };
        let byte = |c: usize| line.char_indices().nth(c).map_or(line.len(), |(b, _)| b);
        let (start, end) = (byte(at.start), byte(at.end));
        match re.captures_at(line, start) {
            Some(caps)
                if caps
                    .get(0)
                    .is_some_and(|m| m.start() == start && m.end() == end) =>
            {
                let mut out = String::new();
                caps.expand(with, &mut out);
                out
            }
            _ => with.to_string(),
        }
    }
}

/// Plain `text` as a query (an escaped regular expression: the same fast search); `None`
/// when it is too long to compile.
fn literal(text: &str, ignore_case: bool) -> Option<Query> {
    let re = regex::RegexBuilder::new(&regex::escape(text))
        .case_insensitive(ignore_case)
        .size_limit(1 << 22)
        .build()
        .ok()?;
    Some(Query::Text {
        source: text.to_string(),
        re,
    })
}

/// The next match of `query` in `rope` after (or, `back`wards, before) char `from`,
/// wrapping around: its char range, and whether the search wrapped. Lines are read in order
/// (without allocating where a line lies in one piece of the rope); `cancel` stops a search
/// that is no longer wanted, as `None`.
pub fn find(
    rope: &Rope,
    query: &Query,
    from: usize,
    back: bool,
    cancel: &AtomicBool,
) -> Option<(Range<usize>, bool)> {
    if query.is_empty() {
        return None;
    }
    let lines = rope.len_lines();
    let from = from.min(rope.len_chars());
    let from_line = rope.char_to_line(from);
    let in_line = |l: usize, line: RopeSlice<'_>| -> Vec<Range<usize>> {
        let n = line.len_chars();
        let body = if n > 0 && line.char(n - 1) == '\n' {
            line.slice(..n - 1)
        } else {
            line
        };
        let found = match body.as_str() {
            Some(text) => query.matches_in(text),
            None => query.matches_in(&body.to_string()),
        };
        let base = rope.line_to_char(l);
        found
            .into_iter()
            .map(|r| base + r.start..base + r.end)
            .collect()
    };
    let stopped = || cancel.load(Ordering::Relaxed);
    if back {
        // Backwards: the lines before, nearest first, then from the end round to here.
        for step in 0..=lines {
            if step % 1024 == 0 && stopped() {
                return None;
            }
            let l = (from_line + lines * 2 - step) % lines;
            let wrapped = step > from_line;
            let found = in_line(l, rope.line(l))
                .into_iter()
                .rfind(|r| wrapped || step > 0 || r.start < from);
            if let Some(r) = found {
                return Some((r, wrapped));
            }
        }
        return None;
    }
    // Forwards: the lines read in one pass from here to the end, then from the top.
    for (pass, start) in [(0, from_line), (1, 0)] {
        let end = if pass == 0 { lines } else { from_line + 1 };
        for (i, line) in rope.lines_at(start).take(end - start).enumerate() {
            if i % 1024 == 0 && stopped() {
                return None;
            }
            let l = start + i;
            let wrapped = pass == 1;
            let found = in_line(l, line)
                .into_iter()
                .find(|r| wrapped || l > from_line || r.start >= from);
            if let Some(r) = found {
                return Some((r, wrapped));
            }
        }
    }
    None
}

impl PartialEq for Query {
    fn eq(&self, other: &Query) -> bool {
        self.is_regex() == other.is_regex() && self.as_str() == other.as_str()
    }
}

impl std::fmt::Display for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // One match is one range: what the clippy lint takes for a mistake is meant.
    #[allow(clippy::single_range_in_vec_init)]
    fn regular_expressions_match_by_chars_and_fill_in_groups() {
        let q = Query::new(r"(\w+)@(?P<host>\w+)", true).expect("valid");
        assert_eq!(q.matches_in("é ann@home, bo@work"), [2..10, 12..19]);
        assert_eq!(
            q.replacement("é ann@home, bo@work", 12..19, "${host}:$1 $$"),
            "work:bo $"
        );
        let anchored = Query::new(r"^(\w)", true).expect("valid");
        assert_eq!(anchored.replacement("ab ab", 0..1, "<$1>"), "<a>");
        let smart = Query::new("abc", true).expect("valid");
        assert_eq!(smart.matches_in("ABC abc"), [0..3, 4..7]);
        let exact = Query::new("Abc", true).expect("valid");
        assert_eq!(exact.matches_in("ABC Abc"), [4..7]);
        let err = Query::new("(unclosed", true).expect_err("invalid");
        assert!(err.contains("unclosed"), "{err}");
        // Plain text is plain, even with regex characters.
        assert_eq!(
            Query::new("a.c", false).unwrap().matches_in("abc a.c"),
            [4..7]
        );
        assert!(Query::new("x*", true).unwrap().matches_in("abc").is_empty());
    }
}
