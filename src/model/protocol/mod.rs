//! The account and sync protocol (model): the wire types both ends use ([`types`]),
//! and the rules both the server and the sync client apply — what a content hash, a file
//! path and a project name may be, and the batch limits. A rule kept here is the same rule
//! on both ends.

pub mod types;

/// Most hashes in one `blobs/missing` question, and most changes in one commit.
pub const MAX_BATCH: usize = 10_000;
/// Longest file path, in bytes.
pub const MAX_PATH: usize = 1024;
/// Longest name inside a path, in bytes.
pub const MAX_NAME: usize = 255;
/// Longest project name, in characters.
pub const MAX_PROJECT_NAME: usize = 100;

/// The query parameters of a paginated list (`GET /api/projects?limit=N&after=CURSOR`): the
/// most items in the page, and the `next` cursor of the page before.
pub const PAGE_LIMIT: &str = "limit";
pub const PAGE_AFTER: &str = "after";

/// Whether `h` is a BLAKE3 hash as the protocol writes it: 64 lower-case hex digits.
pub fn valid_hash(h: &str) -> bool {
    h.len() == 64
        && h.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// What is wrong with `name` as one file or folder name, if anything.
pub fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("a name cannot be empty")
    } else if name == "." || name == ".." {
        Some("'.' and '..' are not names")
    } else if name.len() > MAX_NAME {
        Some("a name is at most 255 bytes")
    } else if name.chars().any(char::is_control) {
        Some("a name cannot hold control characters (tabs, new lines, escapes)")
    } else if name.contains('\\') || name.contains('/') {
        Some("a name cannot hold '/' or '\\'")
    } else if name.chars().any(crate::text::is_bidi_control) {
        Some("a name cannot hold characters that reorder text (bidirectional controls)")
    } else if name.chars().any(|c| crate::text::raw_byte(c).is_some()) {
        Some("a name must be UTF-8")
    } else {
        None
    }
}

/// Whether `p` is a clean relative path: `/`-separated names, each acceptable to
/// [`name_problem`], at most [`MAX_PATH`] bytes.
pub fn valid_path(p: &str) -> bool {
    !p.is_empty() && p.len() <= MAX_PATH && p.split('/').all(|n| name_problem(n).is_none())
}

/// What is wrong with `name` as a project name (a folder of `~/Projects` on every machine),
/// if anything. Leading and trailing spaces are not part of a name.
pub fn project_name_problem(name: &str) -> Option<String> {
    if name.trim() != name {
        return Some("a project name cannot start or end with spaces".into());
    }
    if name.chars().count() > MAX_PROJECT_NAME {
        return Some(format!(
            "a project name is at most {MAX_PROJECT_NAME} characters"
        ));
    }
    name_problem(name).map(|p| p.replacen("a name", "a project name", 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_names_and_hashes_are_checked() {
        assert!(valid_path("src/main.rs"));
        assert!(valid_path("a b/ü.txt"));
        for bad in [
            "",
            "/abs",
            "a//b",
            "a/./b",
            "../x",
            "a/..",
            "a\\b",
            "x\u{0}y",
            "a/",
            "a\tb",
            "a\u{202E}txt.exe",
            "x\u{1b}]0;title\u{7}",
        ] {
            assert!(!valid_path(bad), "{bad:?}");
        }
        assert!(!valid_path(&"x".repeat(MAX_PATH + 1)));
        assert!(valid_hash(blake3::hash(b"x").to_hex().as_str()));
        assert!(!valid_hash(&"A".repeat(64)));
        assert!(project_name_problem("My Project-2").is_none());
        assert!(project_name_problem("Café ☕").is_none());
        for bad in [
            "",
            " pad",
            "a/b",
            "a\\b",
            "line\nbreak",
            "tab\there",
            "..",
            "\u{2067}x",
        ] {
            assert!(project_name_problem(bad).is_some(), "{bad:?}");
        }
        assert!(project_name_problem(&"x".repeat(101)).is_some());
        assert_eq!(
            project_name_problem("a\u{1b}[31m").as_deref(),
            Some("a project name cannot hold control characters (tabs, new lines, escapes)")
        );
    }
}

#[cfg(test)]
mod patterns {
    use super::types::{HASH_PATTERN, PATH_PATTERN, PROJECT_NAME_PATTERN};
    use super::*;
    use proptest::prelude::*;

    fn re(p: &str) -> fancy_regex::Regex {
        fancy_regex::Regex::new(p).expect("a valid pattern")
    }

    /// Characters that matter to the rules, and a few that do not.
    fn text() -> impl Strategy<Value = String> {
        let chars = prop::sample::select(vec![
            'a', 'Z', '0', '.', '/', '\\', ' ', '\t', '\n', '\u{1b}', '\u{7f}', '\u{85}', 'é',
            '☕', '\u{202e}', '\u{2066}', '\u{200f}', '\u{061c}', '-', '_',
        ]);
        prop::collection::vec(chars, 0..12).prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        /// The OpenAPI document's patterns say what the server's checks say.
        #[test]
        fn the_documented_patterns_match_the_rules(s in text()) {
            prop_assert_eq!(re(PATH_PATTERN).is_match(&s).unwrap(), valid_path(&s), "{:?}", s);
            let name_ok = !s.is_empty()
                && project_name_problem(s.trim()).is_none()
                && s.trim() == s;
            let pattern_ok = re(PROJECT_NAME_PATTERN).is_match(&s).unwrap()
                && s.trim() != "."
                && s.trim() != ".."
                && s.trim() == s;
            prop_assert_eq!(pattern_ok, name_ok, "{:?}", s);
        }
    }

    #[test]
    fn hashes_match_their_pattern() {
        let h = blake3::hash(b"x").to_hex().to_string();
        assert!(re(HASH_PATTERN).is_match(&h).unwrap());
        assert!(!re(HASH_PATTERN).is_match(&h.to_uppercase()).unwrap());
        assert!(!re(HASH_PATTERN).is_match(&h[1..]).unwrap());
    }
}

// ---- accounts: the rules the server applies and `register` checks first ----

/// What is wrong with a username, if anything (the server's rule, which `register`
/// checks before it asks for a password).
pub fn check_username(u: &str) -> Option<String> {
    let n = u.chars().count();
    if !(3..=32).contains(&n) {
        return Some("Username must be 3 to 32 characters long".into());
    }
    if !u
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Some("Username may hold only letters, digits, '_' and '-'".into());
    }
    None
}

/// What is wrong with an email address, if anything.
pub fn check_email(e: &str) -> Option<String> {
    let bad = || Some("Email must be a valid address".to_string());
    if e.len() > 254 || e.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad();
    }
    let Some((local, domain)) = e.rsplit_once('@') else {
        return bad();
    };
    let labels: Vec<&str> = domain.split('.').collect();
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.contains('@')
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if local_ok && domain_ok {
        None
    } else {
        bad()
    }
}

/// The rule for a password, as said before one is asked for.
pub const PASSWORD_RULE: &str =
    "a password needs 8 or more characters, with a lower-case letter, an upper-case letter and \
     a digit";

/// What is wrong with a password, if anything.
pub fn check_password(p: &str) -> Option<String> {
    let n = p.chars().count();
    if !(8..=1024).contains(&n) {
        return Some("Password must be 8 to 1024 characters long".into());
    }
    if !(p.chars().any(|c| c.is_lowercase())
        && p.chars().any(|c| c.is_uppercase())
        && p.chars().any(|c| c.is_ascii_digit()))
    {
        return Some(
            "Password must hold a lower-case letter, an upper-case letter and a digit".into(),
        );
    }
    None
}
