//! Syntax highlighting of code for the pager (and the editor): Valyxo shell lines through
//! the shell's own lexer, TOML through a small line scanner, everything else through syntect.
//! Colours come from the theme's `syntax.*` styles (named terminal colours work), or from a
//! syntect theme when the theme names one with `syntax.builtin`.

use crate::theme::{Style, Theme};
use ratatui::text::{Line, Span};
use std::sync::OnceLock;
use syntect::highlighting::{HighlightIterator, HighlightState, Highlighter, ScopeSelectors};
use syntect::parsing::{ParseState, ScopeStack, SyntaxSet};

fn syntaxes() -> &'static SyntaxSet {
    static SET: OnceLock<SyntaxSet> = OnceLock::new();
    SET.get_or_init(SyntaxSet::load_defaults_newlines)
}

fn themes() -> &'static syntect::highlighting::ThemeSet {
    static SET: OnceLock<syntect::highlighting::ThemeSet> = OnceLock::new();
    SET.get_or_init(syntect::highlighting::ThemeSet::load_defaults)
}

/// The syntect themes a Valyxo theme may name in `syntax.builtin`.
pub fn builtin_theme_names() -> Vec<&'static str> {
    themes().themes.keys().map(String::as_str).collect()
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
fn syntax_for(lang: &str) -> Option<&'static syntect::parsing::SyntaxReference> {
    let token = match lang {
        // Rhai reads like JavaScript with Rust's keywords; JavaScript's grammar fits it best.
        "rhai" | "vs" | "valyxoscript" => "js",
        "" | "text" | "txt" | "plain" => return None,
        other => other,
    };
    syntaxes().find_syntax_by_token(token)
}

/// Whether `lang` names the Valyxo shell.
fn is_shell(lang: &str) -> bool {
    matches!(lang, "sh" | "shell" | "valyxo" | "console")
}

/// `code` (a code block tagged `lang`) as styled lines, one per source line, on top of
/// `base` (the style of unhighlighted code).
pub fn code(lang: &str, code: &str, theme: &Theme, base: Style) -> Vec<Line<'static>> {
    let lang = lang.trim().to_ascii_lowercase();
    let base_rs = base.to_ratatui();
    if is_shell(&lang) {
        return code.lines().map(|l| shell_line(l, theme, base)).collect();
    }
    if lang == "toml" {
        return code.lines().map(|l| toml_line(l, theme, base)).collect();
    }
    let Some(syntax) = syntax_for(&lang) else {
        return code
            .lines()
            .map(|l| Line::from(Span::styled(l.to_string(), base_rs)))
            .collect();
    };
    let mut out = Vec::new();
    let mut state = ParseState::new(syntax);
    if let Some(st) = theme
        .syntax_builtin
        .as_deref()
        .and_then(|n| themes().themes.get(n))
    {
        let hl = Highlighter::new(st);
        let mut hstate = HighlightState::new(&hl, ScopeStack::new());
        for line in code.split_inclusive('\n') {
            let ops = state.parse_line(line, syntaxes()).unwrap_or_default();
            let spans: Vec<Span<'static>> = HighlightIterator::new(&mut hstate, &ops, line, &hl)
                .map(|(s, text)| {
                    let c = s.foreground;
                    let mut st = crate::theme::Style {
                        fg: Some(crate::theme::Color::Rgb(c.r, c.g, c.b)),
                        ..base
                    };
                    use syntect::highlighting::FontStyle;
                    st.bold |= s.font_style.contains(FontStyle::BOLD);
                    st.italic |= s.font_style.contains(FontStyle::ITALIC);
                    Span::styled(
                        text.trim_end_matches(['\r', '\n']).to_string(),
                        st.to_ratatui(),
                    )
                })
                .filter(|s| !s.content.is_empty())
                .collect();
            out.push(Line::from(spans));
        }
        return out;
    }
    let mut stack = ScopeStack::new();
    for line in code.split_inclusive('\n') {
        let ops = state.parse_line(line, syntaxes()).unwrap_or_default();
        let text = line.trim_end_matches(['\r', '\n']);
        let mut spans = Vec::new();
        let mut pos = 0;
        let mut emit = |from: usize, to: usize, stack: &ScopeStack| {
            let to = to.min(text.len());
            if from < to {
                let st = category(stack).map_or(base, |k| theme.style(k).over(base));
                spans.push(Span::styled(text[from..to].to_string(), st.to_ratatui()));
            }
        };
        for (i, op) in ops {
            emit(pos, i, &stack);
            pos = pos.max(i);
            let _ = stack.apply(&op);
        }
        emit(pos, text.len(), &stack);
        out.push(Line::from(spans));
    }
    out
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

/// One line of Valyxo shell, coloured by the shell's own lexer with the `highlight.*` styles
/// (every command in an example counts as known).
fn shell_line(line: &str, theme: &Theme, base: Style) -> Line<'static> {
    let mut spans = Vec::new();
    let mut pos = 0;
    let mut push = |text: &str, st: Style| {
        if !text.is_empty() {
            spans.push(Span::styled(text.to_string(), st.to_ratatui()));
        }
    };
    for (range, key) in shell_parts(line, |_| true) {
        push(&line[pos..range.start], base);
        push(&line[range.clone()], theme.style(key).over(base));
        pos = range.end;
    }
    push(&line[pos..], base);
    Line::from(spans)
}

/// One line of TOML: comments, [tables], keys, strings, numbers and booleans.
fn toml_line(line: &str, theme: &Theme, base: Style) -> Line<'static> {
    let st = |k: &str| theme.style(k).over(base).to_ratatui();
    let mut spans: Vec<Span<'static>> = Vec::new();
    let trimmed = line.trim_start();
    let indent = &line[..line.len() - trimmed.len()];
    if !indent.is_empty() {
        spans.push(Span::styled(indent.to_string(), base.to_ratatui()));
    }
    if trimmed.starts_with('#') {
        spans.push(Span::styled(trimmed.to_string(), st("syntax.comment")));
        return Line::from(spans);
    }
    let mut rest = trimmed;
    if trimmed.starts_with('[') {
        let end = trimmed.find(']').map_or(trimmed.len(), |i| {
            i + 1 + usize::from(trimmed[i + 1..].starts_with(']'))
        });
        spans.push(Span::styled(trimmed[..end].to_string(), st("syntax.type")));
        rest = &trimmed[end..];
    } else if let Some(eq) = trimmed.find('=') {
        let key = &trimmed[..eq];
        if !key.contains(['"', '\'']) || key.trim_start().starts_with(['"', '\'']) {
            spans.push(Span::styled(key.to_string(), st("syntax.key")));
            spans.push(Span::styled("=".to_string(), st("syntax.operator")));
            rest = &trimmed[eq + 1..];
        }
    }
    // Values: strings, numbers, booleans, and a trailing comment.
    let mut i = 0;
    let bytes = rest.as_bytes();
    let mut plain_from = 0;
    let flush = |spans: &mut Vec<Span<'static>>, from: usize, to: usize| {
        if from < to {
            spans.push(Span::styled(rest[from..to].to_string(), base.to_ratatui()));
        }
    };
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'"' || c == b'\'' {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != c {
                j += if bytes[j] == b'\\' && c == b'"' { 2 } else { 1 };
            }
            let end = (j + 1).min(bytes.len());
            flush(&mut spans, plain_from, i);
            spans.push(Span::styled(rest[i..end].to_string(), st("syntax.string")));
            i = end;
            plain_from = i;
        } else if c == b'#' {
            flush(&mut spans, plain_from, i);
            spans.push(Span::styled(rest[i..].to_string(), st("syntax.comment")));
            return Line::from(spans);
        } else if c.is_ascii_alphanumeric() || c == b'-' || c == b'+' {
            let start = i;
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || b"-+._:".contains(&bytes[i]))
            {
                i += 1;
            }
            let word = &rest[start..i];
            let key = if word == "true" || word == "false" {
                Some("syntax.constant")
            } else if word.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+') {
                Some("syntax.number")
            } else {
                None
            };
            if let Some(k) = key {
                flush(&mut spans, plain_from, start);
                spans.push(Span::styled(word.to_string(), st(k)));
                plain_from = i;
            }
        } else {
            i += 1;
        }
    }
    flush(&mut spans, plain_from, bytes.len());
    Line::from(spans)
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
    fn unknown_languages_are_plain() {
        let t = neon();
        let base = Style::parse("green").unwrap();
        let lines = code("klingon", "qapla'\n", &t, base);
        assert_eq!(lines[0].spans[0].style, base.to_ratatui());
    }
}
