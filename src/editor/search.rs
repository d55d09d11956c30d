//! What the editor searches for (engine, no UI types): plain text, or a regular expression
//! (the `regex` crate's syntax, one line at a time) whose replacements may name its groups
//! (`$1`, `${name}`). Both ignore case unless the query holds an upper-case letter.

use std::ops::Range;

#[derive(Clone, Debug, Default)]
pub enum Query {
    #[default]
    Empty,
    Text(String),
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
        if !regex {
            return Ok(Query::Text(text.to_string()));
        }
        let exact = text.chars().any(char::is_uppercase);
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

    pub fn as_str(&self) -> &str {
        match self {
            Query::Empty => "",
            Query::Text(t) => t,
            Query::Regex { source, .. } => source,
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
            Query::Text(q) => text_matches(line, q),
            Query::Regex { re, .. } => {
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

/// Plain text matches, folding case (the pager's folding, one char for one so columns
/// stay columns) unless the query holds an upper-case letter.
fn text_matches(line: &str, query: &str) -> Vec<Range<usize>> {
    let exact = query.chars().any(char::is_uppercase);
    let fold = |c: char| {
        if exact {
            c
        } else {
            crate::pager::fold_char(c).next().unwrap_or(c)
        }
    };
    let q: Vec<char> = query.chars().map(fold).collect();
    let text: Vec<char> = line.chars().map(fold).collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i + q.len() <= text.len() {
        if text[i..i + q.len()] == q[..] {
            out.push(i..i + q.len());
            i += q.len();
        } else {
            i += 1;
        }
    }
    out
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
