//! Syntax highlighting of code for the pager (and the editor) (engine): Valyxo shell lines through
//! the shell's own lexer, TOML through a small line scanner, everything else through syntect.
//! Colours come from the theme's `syntax.*` styles (named terminal colours work), or from a
//! syntect theme when the theme names one with `syntax.builtin`.

use crate::theme::{Style, Theme};
use ratatui::text::{Line, Span};
use std::ops::Range;
use std::sync::OnceLock;
use syntect::highlighting::{HighlightIterator, HighlightState, ScopeSelectors};
use syntect::parsing::{ParseState, ScopeStack, SyntaxReference, SyntaxSet};

fn syntaxes() -> &'static SyntaxSet {
    static SET: OnceLock<SyntaxSet> = OnceLock::new();
    SET.get_or_init(SyntaxSet::load_defaults_newlines)
}

fn themes() -> &'static syntect::highlighting::ThemeSet {
    static SET: OnceLock<syntect::highlighting::ThemeSet> = OnceLock::new();
    SET.get_or_init(syntect::highlighting::ThemeSet::load_defaults)
}

/// Scope selectors for each `syntax.*` style; the best-matching selector wins.
fn categories() -> &'static [(ScopeSelectors, &'static str)] {
    static CATS: OnceLock<Vec<(ScopeSelectors, &'static str)>> = OnceLock::new();
    CATS.get_or_init(|| {
        [
            ("comment, punctuation.definition.comment", "syntax.comment"),
            ("string, constant.character, punctuation.definition.string", "syntax.string"),
            ("keyword, storage.type, storage.modifier", "syntax.keyword"),
            ("keyword.operator", "syntax.operator"),
            ("constant.numeric", "syntax.number"),
            ("constant.language, constant.other, support.constant", "syntax.constant"),
            (
                "entity.name.function, support.function, variable.function, meta.function-call.identifier",
                "syntax.function",
            ),
            (
                "entity.name.type, entity.name.class, support.type, support.class, storage.type.rust",
                "syntax.type",
            ),
            ("variable, variable.parameter, variable.other", "syntax.variable"),
            (
                "meta.mapping.key string, meta.structure.dictionary.key string, \
                 support.type.property-name, entity.name.tag",
                "syntax.key",
            ),
            ("markup.heading, entity.name.section", "syntax.heading"),
            ("markup.bold", "syntax.strong"),
            ("markup.italic", "syntax.emphasis"),
            ("markup.raw", "syntax.code"),
            ("markup.underline.link, meta.link, string.other.link", "syntax.link"),
        ]
        .into_iter()
        .map(|(sel, key)| (sel.parse().expect("valid scope selector"), key))
        .collect()
    })
}

fn category(stack: &ScopeStack) -> Option<&'static str> {
    let mut best: Option<(f64, &'static str)> = None;
    for (sel, key) in categories() {
        if let Some(p) = sel.does_match(stack.as_slice()) {
            if best.is_none_or(|(b, _)| p.0 >= b) {
                best = Some((p.0, key));
            }
        }
    }
    best.map(|(_, k)| k)
}

/// The syntect syntax for a code block's language tag.
fn syntax_for(lang: &str) -> Option<&'static SyntaxReference> {
    let token = match lang {
        // Rhai reads like JavaScript with Rust's keywords; JavaScript's grammar fits it best.
        "rhai" | "vs" | "ns" | "valyxoscript" => "js",
        "" | "text" | "txt" | "plain" => return None,
        other => other,
    };
    syntaxes().find_syntax_by_token(token)
}

/// Whether `lang` names the Valyxo shell.
fn is_shell(lang: &str) -> bool {
    matches!(lang, "sh" | "shell" | "valyxo" | "console")
}

/// What a [`Highlighter`] knows about a language.
#[derive(Clone, Copy)]
enum Kind {
    /// The Valyxo shell, through its own lexer.
    Shell,
    /// TOML, through a line scanner.
    Toml,
    /// No highlighting.
    Plain,
    Syntect(&'static SyntaxReference),
}

/// Highlights text of one language line by line, carrying the state from one line to the
/// next in a [`LineState`] so that a caller (the editor) can keep the state at the start of
/// each line and restart from any of them.
pub struct Highlighter {
    kind: Kind,
    /// The syntect theme that `syntax.builtin` names, if any.
    builtin: Option<syntect::highlighting::Highlighter<'static>>,
}

/// The highlighter's state at the start of a line.
#[derive(Clone, PartialEq)]
pub struct LineState {
    parse: Option<ParseState>,
    stack: ScopeStack,
    styles: Option<HighlightState>,
}

impl Highlighter {
    /// For a code block tagged `lang` (`rhai`, `sh`, `toml`, `rust`, …).
    pub fn for_lang(lang: &str, theme: &Theme) -> Highlighter {
        let lang = lang.trim().to_ascii_lowercase();
        let kind = if is_shell(&lang) {
            Kind::Shell
        } else if lang == "toml" {
            Kind::Toml
        } else {
            syntax_for(&lang).map_or(Kind::Plain, Kind::Syntect)
        };
        Highlighter::with_kind(kind, theme)
    }

    /// For a file named `name` that starts with `first_line`: by extension, then by the
    /// first line (`#!/usr/bin/env python3`, `<?xml`).
    pub fn for_file(name: &str, first_line: &str, theme: &Theme) -> Highlighter {
        let ext = name
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        let kind = match ext.as_str() {
            "rhai" | "vs" | "ns" => syntax_for("rhai").map_or(Kind::Plain, Kind::Syntect),
            "toml" => Kind::Toml,
            "valyxo" | "vsh" => Kind::Shell,
            // Files known by their whole name (Makefile, GNUmakefile, …).
            "" => syntaxes()
                .find_syntax_by_extension(name)
                .map_or(Kind::Plain, Kind::Syntect),
            e => syntaxes()
                .find_syntax_by_extension(e)
                .map_or(Kind::Plain, Kind::Syntect),
        };
        let kind = match kind {
            Kind::Plain if first_line.starts_with("#!") && first_line.contains("valyxo") => {
                syntax_for("rhai").map_or(Kind::Plain, Kind::Syntect)
            }
            Kind::Plain => syntaxes()
                .find_syntax_by_first_line(first_line)
                .filter(|s| s.name != "Plain Text")
                .map_or(Kind::Plain, Kind::Syntect),
            k => k,
        };
        Highlighter::with_kind(kind, theme)
    }

    fn with_kind(kind: Kind, theme: &Theme) -> Highlighter {
        // syntect's "Plain Text" grammar (`.txt`) colours nothing but would still carry a
        // parser state from line to line: it is no highlighting at all.
        let kind = match kind {
            Kind::Syntect(s) if s.name == "Plain Text" => Kind::Plain,
            k => k,
        };
        let builtin = match kind {
            Kind::Syntect(_) => theme
                .syntax_builtin
                .as_deref()
                .and_then(|n| themes().themes.get(n))
                .map(syntect::highlighting::Highlighter::new),
            _ => None,
        };
        Highlighter { kind, builtin }
    }

    /// The language's name, for a status bar.
    pub fn language(&self) -> &str {
        match self.kind {
            Kind::Shell => "Valyxo shell",
            Kind::Toml => "TOML",
            Kind::Plain => "Plain text",
            Kind::Syntect(s) if s.name == "JavaScript" => "JavaScript/Rhai",
            Kind::Syntect(s) => &s.name,
        }
    }

    /// Whether the highlighter does anything.
    pub fn is_plain(&self) -> bool {
        matches!(self.kind, Kind::Plain)
    }

    /// Whether the state at the start of a line depends on the lines above it (a syntect
    /// grammar): only then is it worth keeping. Shell, TOML and plain text are highlighted
    /// line by line from [`Highlighter::start`].
    pub fn carries_state(&self) -> bool {
        matches!(self.kind, Kind::Syntect(_))
    }

    /// The state at the start of the text.
    pub fn start(&self) -> LineState {
        let parse = match self.kind {
            Kind::Syntect(s) => Some(ParseState::new(s)),
            _ => None,
        };
        let styles = self
            .builtin
            .as_ref()
            .map(|h| HighlightState::new(h, ScopeStack::new()));
        LineState {
            parse,
            stack: ScopeStack::new(),
            styles,
        }
    }

    /// Highlights one line (without its line break), moving `state` to the start of the
    /// next line. Returns the styled parts in order, without overlaps, each on top of
    /// `base`; text between parts has the style `base`.
    pub fn line(
        &self,
        state: &mut LineState,
        line: &str,
        theme: &Theme,
        base: Style,
    ) -> Vec<(Range<usize>, Style)> {
        match self.kind {
            Kind::Plain => Vec::new(),
            Kind::Shell => shell_parts(line, |_| true)
                .into_iter()
                .map(|(r, key)| (r, theme.style(key).over(base)))
                .collect(),
            Kind::Toml => toml_parts(line)
                .into_iter()
                .map(|(r, key)| (r, theme.style(key).over(base)))
                .collect(),
            Kind::Syntect(_) => self.syntect_line(state, line, theme, base),
        }
    }

    /// Moves `state` past one line (without its line break) as [`Highlighter::line`] does,
    /// without working out the styles: for getting to a line far below a known state.
    pub fn advance(&self, state: &mut LineState, line: &str) {
        let Kind::Syntect(_) = self.kind else {
            return;
        };
        let Some(parse) = state.parse.as_mut() else {
            return;
        };
        let mut text = String::with_capacity(line.len() + 1);
        text.push_str(line);
        text.push('\n');
        let ops = parse.parse_line(&text, syntaxes()).unwrap_or_default();
        if let (Some(hl), Some(styles)) = (self.builtin.as_ref(), state.styles.as_mut()) {
            // The style stack follows the scopes only as the iterator goes.
            for _ in HighlightIterator::new(styles, &ops, &text, hl) {}
            return;
        }
        for (_, op) in ops {
            let _ = state.stack.apply(&op);
        }
    }

    fn syntect_line(
        &self,
        state: &mut LineState,
        line: &str,
        theme: &Theme,
        base: Style,
    ) -> Vec<(Range<usize>, Style)> {
        let Some(parse) = state.parse.as_mut() else {
            return Vec::new();
        };
        // The grammars expect each line to end in a newline.
        let mut text = String::with_capacity(line.len() + 1);
        text.push_str(line);
        text.push('\n');
        let ops = parse.parse_line(&text, syntaxes()).unwrap_or_default();
        let mut out = Vec::new();
        if let (Some(hl), Some(styles)) = (self.builtin.as_ref(), state.styles.as_mut()) {
            use syntect::highlighting::FontStyle;
            let mut pos = 0;
            for (s, part) in HighlightIterator::new(styles, &ops, &text, hl) {
                let end = (pos + part.len()).min(line.len());
                if pos < end {
                    let c = s.foreground;
                    let mut st = Style {
                        fg: Some(crate::theme::Color::Rgb(c.r, c.g, c.b)),
                        ..base
                    };
                    st.bold |= s.font_style.contains(FontStyle::BOLD);
                    st.italic |= s.font_style.contains(FontStyle::ITALIC);
                    out.push((pos..end, st));
                }
                pos += part.len();
            }
            return out;
        }
        let stack = &mut state.stack;
        let mut pos = 0;
        let mut emit = |from: usize, to: usize, stack: &ScopeStack| {
            let to = to.min(line.len());
            if from < to {
                if let Some(k) = category(stack) {
                    out.push((from..to, theme.style(k).over(base)));
                }
            }
        };
        for (i, op) in ops {
            emit(pos, i, stack);
            pos = pos.max(i);
            let _ = stack.apply(&op);
        }
        emit(pos, line.len(), stack);
        out
    }
}

/// `line` as a ratatui line: the parts in their styles, the rest in `base`.
pub fn styled_line(line: &str, parts: &[(Range<usize>, Style)], base: Style) -> Line<'static> {
    let mut spans = Vec::new();
    let mut pos = 0;
    let mut push = |text: &str, st: Style| {
        if !text.is_empty() {
            spans.push(Span::styled(text.to_string(), st.to_ratatui()));
        }
    };
    for (range, st) in parts {
        if range.start < pos || range.end > line.len() {
            continue;
        }
        push(&line[pos..range.start], base);
        push(&line[range.clone()], *st);
        pos = range.end;
    }
    push(&line[pos..], base);
    Line::from(spans)
}

/// `code` (a code block tagged `lang`) as styled lines, one per source line, on top of
/// `base` (the style of unhighlighted code).
pub fn code(lang: &str, code: &str, theme: &Theme, base: Style) -> Vec<Line<'static>> {
    let hl = Highlighter::for_lang(lang, theme);
    let mut state = hl.start();
    code.lines()
        .map(|l| styled_line(l, &hl.line(&mut state, l, theme, base), base))
        .collect()
}

/// The parts of a shell line that the `highlight.*` styles colour, in order and without
/// overlaps: (byte range, style key). `known` tells a command name that exists from one
/// that does not.
pub fn shell_parts(
    line: &str,
    known: impl Fn(&str) -> bool,
) -> Vec<(std::ops::Range<usize>, &'static str)> {
    use crate::shell::parse::{classify, Class};
    let mut out = Vec::new();
    let mut pos = 0;
    for (span, class) in classify(line) {
        if span.start < pos || span.end > line.len() {
            continue;
        }
        let key = match class {
            Class::Word { command: true } if known(&line[span.start..span.end]) => {
                "highlight.command"
            }
            Class::Word { command: true } => "highlight.unknown",
            Class::Word { command: false } => continue,
            Class::Quoted => "highlight.string",
            Class::Variable => "highlight.variable",
            Class::Operator => "highlight.operator",
            Class::Comment => "highlight.comment",
        };
        out.push((span.start..span.end, key));
        pos = span.end;
    }
    out
}

/// The parts of a line of TOML that the `syntax.*` styles colour: comments, [tables],
/// keys, strings, numbers and booleans.
fn toml_parts(line: &str) -> Vec<(Range<usize>, &'static str)> {
    let mut out = Vec::new();
    let trimmed = line.trim_start();
    let indent = line.len() - trimmed.len();
    if trimmed.starts_with('#') {
        out.push((indent..line.len(), "syntax.comment"));
        return out;
    }
    // Where the values start.
    let mut from = indent;
    if trimmed.starts_with('[') {
        let end = trimmed.find(']').map_or(trimmed.len(), |i| {
            i + 1 + usize::from(trimmed[i + 1..].starts_with(']'))
        });
        out.push((indent..indent + end, "syntax.type"));
        from = indent + end;
    } else if let Some(eq) = trimmed.find('=') {
        let key = &trimmed[..eq];
        if !key.contains(['"', '\'']) || key.trim_start().starts_with(['"', '\'']) {
            out.push((indent..indent + eq, "syntax.key"));
            out.push((indent + eq..indent + eq + 1, "syntax.operator"));
            from = indent + eq + 1;
        }
    }
    let bytes = line.as_bytes();
    let mut i = from;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'"' || c == b'\'' {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != c {
                j += if bytes[j] == b'\\' && c == b'"' { 2 } else { 1 };
            }
            let end = (j + 1).min(bytes.len());
            out.push((i..end, "syntax.string"));
            i = end;
        } else if c == b'#' {
            out.push((i..bytes.len(), "syntax.comment"));
            break;
        } else if c.is_ascii_alphanumeric() || c == b'-' || c == b'+' {
            let start = i;
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || b"-+._:".contains(&bytes[i]))
            {
                i += 1;
            }
            let word = &line[start..i];
            if word == "true" || word == "false" {
                out.push((start..i, "syntax.constant"));
            } else if word.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+') {
                out.push((start..i, "syntax.number"));
            }
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::theme;

    fn neon() -> Theme {
        theme::load("neon", std::path::Path::new("/nonexistent")).unwrap()
    }

    fn styled(line: &Line<'_>, text: &str) -> Option<ratatui::style::Style> {
        line.spans
            .iter()
            .find(|s| s.content.contains(text))
            .map(|s| s.style)
    }

    fn text(line: &Line<'_>) -> String {
        line.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn rhai_keywords_strings_and_comments_get_their_styles() {
        let t = neon();
        let src = "let x = \"hi\"; // note\nfn f(a) { return 42; }\n";
        let lines = code("rhai", src, &t, Style::default());
        assert_eq!(lines.len(), 2);
        assert_eq!(text(&lines[0]), "let x = \"hi\"; // note");
        assert_eq!(text(&lines[1]), "fn f(a) { return 42; }");
        let kw = t.style("syntax.keyword").to_ratatui();
        assert_eq!(styled(&lines[0], "let"), Some(kw));
        assert_eq!(
            styled(&lines[0], "hi"),
            Some(t.style("syntax.string").to_ratatui())
        );
        assert_eq!(
            styled(&lines[0], "note"),
            Some(t.style("syntax.comment").to_ratatui())
        );
        assert_eq!(
            styled(&lines[1], "42"),
            Some(t.style("syntax.number").to_ratatui())
        );
        assert_ne!(kw, ratatui::style::Style::default());
    }

    #[test]
    fn the_syntax_themes_a_theme_may_name_are_syntects() {
        let mut ours: Vec<&str> = crate::theme::SYNTAX_THEMES.to_vec();
        let mut theirs: Vec<&str> = themes().themes.keys().map(String::as_str).collect();
        ours.sort_unstable();
        theirs.sort_unstable();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn markdown_headings_emphasis_code_and_links_get_their_styles() {
        let t = neon();
        let src = "# Title\nSome **strong** and *soft* words, `code` and [a link](http://x).\n";
        let lines = code("md", src, &t, Style::default());
        let style = |k: &str| Some(t.style(k).to_ratatui());
        assert_eq!(styled(&lines[0], "Title"), style("syntax.heading"));
        assert_eq!(styled(&lines[1], "strong"), style("syntax.strong"));
        assert_eq!(styled(&lines[1], "soft"), style("syntax.emphasis"));
        assert_eq!(styled(&lines[1], "code"), style("syntax.code"));
        assert_eq!(styled(&lines[1], "a link"), style("syntax.link"));
        assert_ne!(
            style("syntax.heading"),
            Some(ratatui::style::Style::default())
        );
    }

    #[test]
    fn shell_and_toml_blocks() {
        let t = neon();
        let sh = code("sh", "ls -l | grep x # all", &t, Style::default());
        assert_eq!(text(&sh[0]), "ls -l | grep x # all");
        assert_eq!(
            styled(&sh[0], "ls"),
            Some(t.style("highlight.command").to_ratatui())
        );
        assert_eq!(
            styled(&sh[0], "|"),
            Some(t.style("highlight.operator").to_ratatui())
        );
        let toml = code(
            "toml",
            "# c\n[repl]\nhints = false # off\nname = \"a # b\"\nn = 12\n",
            &t,
            Style::default(),
        );
        assert_eq!(toml.len(), 5);
        assert_eq!(text(&toml[2]), "hints = false # off");
        assert_eq!(
            styled(&toml[0], "# c"),
            Some(t.style("syntax.comment").to_ratatui())
        );
        assert_eq!(
            styled(&toml[1], "[repl]"),
            Some(t.style("syntax.type").to_ratatui())
        );
        assert_eq!(
            styled(&toml[2], "hints"),
            Some(t.style("syntax.key").to_ratatui())
        );
        assert_eq!(
            styled(&toml[2], "false"),
            Some(t.style("syntax.constant").to_ratatui())
        );
        assert_eq!(
            styled(&toml[3], "a # b"),
            Some(t.style("syntax.string").to_ratatui())
        );
        assert_eq!(
            styled(&toml[4], "12"),
            Some(t.style("syntax.number").to_ratatui())
        );
    }

    #[test]
    fn a_builtin_syntect_theme_colours_in_rgb() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("gh.toml"),
            "description = \"x\"\n[syntax]\nbuiltin = \"InspiredGitHub\"\n",
        )
        .unwrap();
        let t = theme::load("gh", dir.path()).unwrap();
        let lines = code("rust", "fn main() {}\n", &t, Style::default());
        assert_eq!(text(&lines[0]), "fn main() {}");
        assert!(lines[0].spans.iter().all(|s| s.style.fg.is_some()));
        let e = std::fs::write(
            dir.path().join("bad.toml"),
            "[syntax]\nbuiltin = \"Nope\"\n",
        );
        e.unwrap();
        let err = theme::load("bad", dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("bad.toml:2:11: syntax.builtin: no built-in syntax theme 'Nope'"),
            "{err}"
        );
    }

    #[test]
    fn json_keys_and_crlf() {
        let t = neon();
        let lines = code("json", "{\"name\": \"x\"}\r\n", &t, Style::default());
        assert_eq!(text(&lines[0]), "{\"name\": \"x\"}");
        assert_eq!(
            styled(&lines[0], "name"),
            Some(t.style("syntax.key").to_ratatui())
        );
        assert_eq!(
            styled(&lines[0], "x"),
            Some(t.style("syntax.string").to_ratatui())
        );
    }

    #[test]
    fn advancing_keeps_the_state_as_highlighting_does_and_txt_is_plain() {
        let t = neon();
        let src = "/* a\nb */ fn f() {\n    let s = \"x\n y\";\n}\n";
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("gh.toml"),
            "[syntax]\nbuiltin = \"InspiredGitHub\"\n",
        )
        .unwrap();
        let gh = theme::load("gh", dir.path()).unwrap();
        for hl in [
            Highlighter::for_lang("rust", &t),
            Highlighter::for_file("a.py", "", &t),
            Highlighter::for_lang("rust", &gh),
        ] {
            let (mut a, mut b) = (hl.start(), hl.start());
            for line in src.lines() {
                hl.line(&mut a, line, &t, Style::default());
                hl.advance(&mut b, line);
                assert!(a == b, "{line}");
            }
            assert!(hl.carries_state());
        }
        for name in ["notes.txt", "x.toml", "a.valyxo", "README"] {
            assert!(
                !Highlighter::for_file(name, "", &t).carries_state(),
                "{name}"
            );
        }
        assert_eq!(
            Highlighter::for_file("notes.txt", "", &t).language(),
            "Plain text"
        );
    }

    #[test]
    fn unknown_languages_are_plain() {
        let t = neon();
        let base = Style::parse("green").unwrap();
        let lines = code("klingon", "qapla'\n", &t, base);
        assert_eq!(lines[0].spans[0].style, base.to_ratatui());
    }
}
