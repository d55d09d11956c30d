//! Placeholder filling for project templates (engine): `{{key}}` is replaced by the key's
//! value, `{{{{` stands for a literal `{{`, and anything else between `{{` and `}}` is an
//! error that names the line, so no placeholder is ever left in what is written.
//!
//! One pass from left to right: a value put in is never read again, so a value that holds
//! braces (or a placeholder) comes out as it is.

/// What is wrong with a template's text, and on which line (counted from 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderError {
    pub line: usize,
    pub problem: Problem,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// `{{key}}` with a key that has no value.
    Unknown(String),
    /// `{{` with no `}}` after it on the same line.
    Unclosed,
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.problem {
            Problem::Unknown(k) => write!(
                f,
                "line {}: unknown placeholder {{{{{}}}}} (the placeholders are {}; write {{{{{{{{ \
                 for a literal {{{{)",
                self.line,
                crate::text::escape(k),
                KEYS.join(", ")
            ),
            Problem::Unclosed => write!(
                f,
                "line {}: '{{{{' without '}}}}' on the same line (write {{{{{{{{ for a literal {{{{)",
                self.line
            ),
        }
    }
}

impl std::error::Error for RenderError {}

/// The placeholders a template may use.
pub const KEYS: &[&str] = &["name", "name_kebab", "name_snake", "year", "author"];

/// `src` with each `{{key}}` replaced by `value(key)` (spaces around the key are allowed) and
/// each `{{{{` by `{{`.
pub fn render<'v>(
    src: &str,
    value: impl Fn(&str) -> Option<&'v str>,
) -> Result<String, RenderError> {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    let mut line = 1;
    while let Some(i) = rest.find("{{") {
        let before = &rest[..i];
        line += before.matches('\n').count();
        out.push_str(before);
        let after = &rest[i + 2..];
        if let Some(next) = after.strip_prefix("{{") {
            out.push_str("{{");
            rest = next;
            continue;
        }
        let end = match after.find("}}") {
            Some(end) if !after[..end].contains('\n') => end,
            _ => {
                return Err(RenderError {
                    line,
                    problem: Problem::Unclosed,
                })
            }
        };
        let key = after[..end].trim();
        match value(key) {
            Some(v) => out.push_str(v),
            None => {
                return Err(RenderError {
                    line,
                    problem: Problem::Unknown(key.to_string()),
                })
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `text` written so that [`render`] gives it back unchanged: each `{{` doubled.
pub fn escape(text: &str) -> String {
    text.replace("{{", "{{{{")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vars(key: &str) -> Option<&'static str> {
        match key {
            "name" => Some("My App"),
            "name_kebab" => Some("my-app"),
            "name_snake" => Some("my_app"),
            "year" => Some("2026"),
            "author" => Some("Ada"),
            _ => None,
        }
    }

    #[test]
    fn placeholders_are_filled_and_escapes_kept() {
        assert_eq!(
            render("# {{name}} ({{ name_kebab }}), {{year}}", vars).unwrap(),
            "# My App (my-app), 2026"
        );
        assert_eq!(
            render("style={{{{ color: 1 }}", vars).unwrap(),
            "style={{ color: 1 }}"
        );
        assert_eq!(render("{{{{name}}", vars).unwrap(), "{{name}}");
        assert_eq!(render("a } b }} { c", vars).unwrap(), "a } b }} { c");
        assert_eq!(render("", vars).unwrap(), "");
    }

    #[test]
    fn unknown_and_unclosed_placeholders_name_their_line() {
        let e = render("one\ntwo {{nmae}}\n", vars).unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(e.problem, Problem::Unknown("nmae".into()));
        assert!(
            e.to_string().contains("unknown placeholder {{nmae}}"),
            "{e}"
        );
        let e = render("a\nb\n{{name\n}}", vars).unwrap_err();
        assert_eq!((e.line, e.problem), (3, Problem::Unclosed));
        // A third brace is not taken for an escape: the key is `{name`, which is unknown.
        assert!(render("{{{name}}", vars).is_err());
        assert!(render("{{}}", vars).is_err());
    }

    #[test]
    fn values_are_not_read_again() {
        let v = |k: &str| (k == "name").then_some("{{name}} {{{{");
        assert_eq!(render("<{{name}}>", v).unwrap(), "<{{name}} {{{{>");
    }

    /// A piece of a template: text without braces, a placeholder, or a literal `{{`.
    #[derive(Clone, Debug)]
    enum Piece {
        Text(String),
        Key(&'static str),
        Braces,
    }

    fn piece() -> impl Strategy<Value = Piece> {
        prop_oneof![
            "[^{]{0,12}".prop_map(Piece::Text),
            proptest::sample::select(KEYS).prop_map(Piece::Key),
            Just(Piece::Braces),
        ]
    }

    proptest! {
        #[test]
        fn escaped_text_comes_back(s in any::<String>()) {
            prop_assert_eq!(render(&escape(&s), vars).unwrap(), s);
        }

        #[test]
        fn escaped_braces_round_trip(s in "[{}a\n ]{0,40}") {
            prop_assert_eq!(render(&escape(&s), vars).unwrap(), s);
        }

        #[test]
        fn pieces_render_to_their_values(pieces in proptest::collection::vec(piece(), 0..12)) {
            let mut src = String::new();
            let mut want = String::new();
            for p in &pieces {
                match p {
                    Piece::Text(t) => { src.push_str(t); want.push_str(t); }
                    Piece::Key(k) => {
                        src.push_str(&format!("{{{{{k}}}}}"));
                        want.push_str(vars(k).unwrap());
                    }
                    Piece::Braces => { src.push_str("{{{{"); want.push_str("{{"); }
                }
            }
            // Text that ends in `}` right before a placeholder's `}}` is still text.
            prop_assert_eq!(render(&src, vars).unwrap(), want);
        }

        /// Whatever the input, a success leaves no placeholder behind: with no `{{{{`
        /// escape in it and values free of braces, the output holds no `{{` at all.
        #[test]
        fn no_placeholder_survives(s in "([{}]|\\{\\{name\\}\\}|[a-z_ \n]){0,40}") {
            if let Ok(out) = render(&s, vars) {
                if !s.contains("{{{{") {
                    prop_assert!(!out.contains("{{"), "{:?} gave {:?}", s, out);
                }
            }
        }
    }
}
