//! The built-in manual (engine): one Markdown page per command and per topic, embedded in
//! the binary at build time from `manuals/`. `man` reads pages through this module.
//!
//! Every page starts with a title line `# NAME — one-line summary`. Command pages then have
//! the sections Synopsis, Description, Options, Examples and See also; topic pages are free
//! in form. The tests in `tests/manuals.rs` check that every registered command has a page,
//! that each synopsis matches the command's real usage, and that every `sh` example runs.

use crate::theme::Theme;
use ratatui::text::{Line, Span};

/// Every page: (name, Markdown source).
const PAGES: &[(&str, &str)] = &[
    ("ai", include_str!("../../manuals/ai.md")),
    ("alias", include_str!("../../manuals/alias.md")),
    ("ask", include_str!("../../manuals/ask.md")),
    ("assistant", include_str!("../../manuals/assistant.md")),
    ("cat", include_str!("../../manuals/cat.md")),
    ("cd", include_str!("../../manuals/cd.md")),
    ("chat", include_str!("../../manuals/chat.md")),
    ("clear", include_str!("../../manuals/clear.md")),
    ("config", include_str!("../../manuals/config.md")),
    ("cp", include_str!("../../manuals/cp.md")),
    ("doctor", include_str!("../../manuals/doctor.md")),
    ("echo", include_str!("../../manuals/echo.md")),
    ("edit", include_str!("../../manuals/edit.md")),
    ("editor", include_str!("../../manuals/editor.md")),
    ("enter", include_str!("../../manuals/enter.md")),
    ("env", include_str!("../../manuals/env.md")),
    ("exec", include_str!("../../manuals/exec.md")),
    ("exit", include_str!("../../manuals/exit.md")),
    ("export", include_str!("../../manuals/export.md")),
    ("false", include_str!("../../manuals/false.md")),
    ("fg", include_str!("../../manuals/fg.md")),
    ("find", include_str!("../../manuals/find.md")),
    ("grep", include_str!("../../manuals/grep.md")),
    ("head", include_str!("../../manuals/head.md")),
    ("help", include_str!("../../manuals/help.md")),
    ("history", include_str!("../../manuals/history.md")),
    ("import", include_str!("../../manuals/import.md")),
    ("jobs", include_str!("../../manuals/jobs.md")),
    ("kill", include_str!("../../manuals/kill.md")),
    ("login", include_str!("../../manuals/login.md")),
    ("logout", include_str!("../../manuals/logout.md")),
    ("logs", include_str!("../../manuals/logs.md")),
    ("ls", include_str!("../../manuals/ls.md")),
    ("man", include_str!("../../manuals/man.md")),
    ("mkdir", include_str!("../../manuals/mkdir.md")),
    ("mount", include_str!("../../manuals/mount.md")),
    ("mounts", include_str!("../../manuals/mounts.md")),
    ("mv", include_str!("../../manuals/mv.md")),
    ("plugin", include_str!("../../manuals/plugin.md")),
    ("pwd", include_str!("../../manuals/pwd.md")),
    ("register", include_str!("../../manuals/register.md")),
    ("rm", include_str!("../../manuals/rm.md")),
    ("run", include_str!("../../manuals/run.md")),
    ("script", include_str!("../../manuals/script.md")),
    ("scripting", include_str!("../../manuals/scripting.md")),
    ("server", include_str!("../../manuals/server.md")),
    ("settings", include_str!("../../manuals/settings.md")),
    ("shell", include_str!("../../manuals/shell.md")),
    ("sync", include_str!("../../manuals/sync.md")),
    ("tail", include_str!("../../manuals/tail.md")),
    ("theme", include_str!("../../manuals/theme.md")),
    ("themes", include_str!("../../manuals/themes.md")),
    ("touch", include_str!("../../manuals/touch.md")),
    ("tree", include_str!("../../manuals/tree.md")),
    ("true", include_str!("../../manuals/true.md")),
    ("umount", include_str!("../../manuals/umount.md")),
    ("unalias", include_str!("../../manuals/unalias.md")),
    ("unset", include_str!("../../manuals/unset.md")),
    (
        "valyxoscript",
        include_str!("../../manuals/valyxoscript.md"),
    ),
    ("vfs", include_str!("../../manuals/vfs.md")),
    ("wait", include_str!("../../manuals/wait.md")),
    ("wc", include_str!("../../manuals/wc.md")),
    ("whoami", include_str!("../../manuals/whoami.md")),
];

/// Every page as (name, Markdown source), sorted by name.
pub fn pages() -> &'static [(&'static str, &'static str)] {
    PAGES
}

/// The Markdown source of the page `name` (exact page names only; see [`resolve`]).
pub fn get(name: &str) -> Option<&'static str> {
    PAGES.iter().find(|(n, _)| *n == name).map(|(_, p)| *p)
}

/// The page for `name`, which may also be a command alias (`quit` gives the `exit` page):
/// (page name, Markdown source).
pub fn resolve(name: &str) -> Option<(&'static str, &'static str)> {
    if let Some(&(n, p)) = PAGES.iter().find(|(n, _)| *n == name) {
        return Some((n, p));
    }
    let spec = crate::commands::registry().get(name)?;
    PAGES.iter().find(|(n, _)| *n == spec.name).copied()
}

/// Whether `name` is a command's page (as opposed to a topic such as `shell`).
pub fn is_command(name: &str) -> bool {
    crate::commands::registry()
        .get(name)
        .is_some_and(|s| s.name == name)
}

/// The page's one-line summary: the title line's text after the dash.
pub fn summary(name: &str) -> Option<&'static str> {
    get(name).map(title_summary)
}

fn title_summary(src: &str) -> &str {
    let title = src.lines().next().unwrap_or("");
    let title = title.trim_start_matches('#').trim();
    match title.split_once(" — ") {
        Some((_, s)) => s.trim(),
        None => title,
    }
}

/// Page names close to `name` (for "did you mean"), best first.
pub fn suggest(name: &str) -> Vec<String> {
    let reg = crate::commands::registry();
    crate::text::suggest(
        name,
        PAGES
            .iter()
            .map(|(n, _)| *n)
            .chain(reg.names().into_iter().filter(|n| get(n).is_none())),
    )
}

/// Pages matching every word of `query` (case-insensitive), best first: a match in the name
/// counts most, then in the summary, then in the body (by how often it occurs there).
pub fn search(query: &str) -> Vec<(&'static str, &'static str)> {
    let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
    if words.is_empty() {
        return Vec::new();
    }
    let mut hits: Vec<(u64, &'static str, &'static str)> = Vec::new();
    for (name, src) in pages() {
        let summary = summary(name).unwrap_or("");
        let (lname, lsum, lbody) = (
            name.to_lowercase(),
            summary.to_lowercase(),
            src.to_lowercase(),
        );
        let mut score = 0u64;
        let mut all = true;
        for w in &words {
            let body = lbody.matches(w.as_str()).count() as u64;
            if body == 0 && !lname.contains(w.as_str()) {
                all = false;
                break;
            }
            score += if lname == *w {
                10_000
            } else if lname.contains(w.as_str()) {
                5_000
            } else {
                0
            };
            score += if lsum.contains(w.as_str()) { 1_000 } else { 0 };
            score += body.min(999);
        }
        if all {
            hits.push((score, name, summary));
        }
    }
    hits.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    hits.into_iter().map(|(_, n, s)| (n, s)).collect()
}

/// Renders a page's Markdown as plain text for a pipe: the title as written, section
/// headings in upper case, body text indented by four spaces, code blocks without their
/// fences indented by eight, and inline markup (`code`, **bold**) removed.
pub fn render(src: &str) -> String {
    let mut out = String::with_capacity(src.len() + src.len() / 4);
    for line in render_lines(src, None) {
        for span in &line.spans {
            out.push_str(&span.content);
        }
        out.push('\n');
    }
    out
}

/// The same layout as [`render`], as styled lines for the pager: with a theme, the title,
/// headings, `inline code`, **strong** text and list bullets take its `pager.*` styles and
/// code blocks are syntax-highlighted; without one, every span is plain.
pub fn render_lines(src: &str, theme: Option<&Theme>) -> Vec<Line<'static>> {
    let style = |key: &str| theme.map(|t| t.style(key)).unwrap_or_default();
    let text = style("pager.text");
    let mut out: Vec<Line<'static>> = Vec::new();
    let mut lines = src.lines();
    let mut first = true;
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if let Some(lang) = trimmed.strip_prefix("```") {
            let mut code = String::new();
            for l in lines.by_ref() {
                if l.trim_start().starts_with("```") {
                    break;
                }
                code.push_str(l);
                code.push('\n');
            }
            let base = style("pager.code");
            let block = match theme {
                Some(t) => crate::highlight::code(lang, &code, t, base),
                None => code.lines().map(|l| Line::raw(l.to_string())).collect(),
            };
            for l in block {
                if l.spans.iter().all(|s| s.content.trim().is_empty()) {
                    out.push(Line::default());
                } else {
                    let mut spans = vec![Span::raw("        ")];
                    spans.extend(l.spans);
                    out.push(Line::from(spans));
                }
            }
            first = false;
            continue;
        }
        if first && line.starts_with("# ") {
            out.push(Line::from(Span::styled(
                strip_inline(line[2..].trim()),
                style("pager.title").to_ratatui(),
            )));
            first = false;
            continue;
        }
        first = false;
        if let Some(h) = heading(line) {
            let key = if line.starts_with("###") {
                "pager.subheading"
            } else {
                "pager.heading"
            };
            out.push(Line::from(Span::styled(
                strip_inline(h).to_uppercase(),
                style(key).to_ratatui(),
            )));
        } else if line.trim().is_empty() {
            out.push(Line::default());
        } else {
            let mut spans = vec![Span::raw("    ")];
            let indent = &line[..line.len() - trimmed.len()];
            let mut body = line;
            if let Some(item) = trimmed.strip_prefix("- ") {
                spans.push(Span::raw(indent.to_string()));
                spans.push(Span::styled("-", style("pager.bullet").to_ratatui()));
                spans.push(Span::styled(" ", text.to_ratatui()));
                body = item;
            }
            inline_spans(body, theme, &mut spans);
            out.push(Line::from(spans));
        }
    }
    // No run of more than one blank line, no trailing spaces, no blank lines at the end.
    let mut tidy: Vec<Line<'static>> = Vec::with_capacity(out.len());
    for mut line in out {
        while let Some(last) = line.spans.last_mut() {
            let kept = last.content.trim_end().len();
            if kept == 0 {
                line.spans.pop();
            } else {
                if kept < last.content.len() {
                    last.content = last.content[..kept].to_string().into();
                }
                break;
            }
        }
        let blank = line.spans.is_empty();
        if blank && tidy.last().is_none_or(|l| l.spans.is_empty()) {
            continue;
        }
        tidy.push(line);
    }
    while tidy.last().is_some_and(|l| l.spans.is_empty()) {
        tidy.pop();
    }
    tidy
}

/// Inline Markdown as spans: `code`, **strong** and plain text; stray markers are dropped.
fn inline_spans(s: &str, theme: Option<&Theme>, out: &mut Vec<Span<'static>>) {
    let style = |key: &str| {
        theme
            .map(|t| t.style(key).over(t.style("pager.text")))
            .unwrap_or_default()
            .to_ratatui()
    };
    let text = style("pager.text");
    let mut rest = s;
    while let Some(i) = rest.find(['`', '*']) {
        let ticks = rest[i..].len() - rest[i..].trim_start_matches('`').len();
        let (mark, key) = if ticks > 0 {
            // A code span opens and closes with the same number of back-ticks, so
            // ``a `quoted` word`` can hold single ones; one space inside each end is padding.
            let mark = &rest[i..i + ticks];
            let after = &rest[i + ticks..];
            if let Some(j) = after.find(mark) {
                if i > 0 {
                    out.push(Span::styled(rest[..i].to_string(), text));
                }
                let inner = &after[..j];
                let inner = if ticks > 1 {
                    inner.strip_prefix(' ').unwrap_or(inner)
                } else {
                    inner
                };
                let inner = if ticks > 1 {
                    inner.strip_suffix(' ').unwrap_or(inner)
                } else {
                    inner
                };
                out.push(Span::styled(inner.to_string(), style("pager.inline")));
                rest = &after[j + ticks..];
                continue;
            }
            (mark, "pager.inline")
        } else if rest[i..].starts_with("**") {
            ("**", "pager.strong")
        } else {
            // A single `*` is text.
            out.push(Span::styled(rest[..i + 1].to_string(), text));
            rest = &rest[i + 1..];
            continue;
        };
        if i > 0 {
            out.push(Span::styled(rest[..i].to_string(), text));
        }
        let after = &rest[i + mark.len()..];
        match after.find(mark) {
            Some(j) => {
                out.push(Span::styled(after[..j].to_string(), style(key)));
                rest = &after[j + mark.len()..];
            }
            None => rest = after,
        }
    }
    if !rest.is_empty() {
        out.push(Span::styled(rest.to_string(), text));
    }
}

/// Escapes text for roff: backslashes, and a leading `.` or `'` that would start a request.
fn roff_escape(s: &str) -> String {
    roff_escape_start(roff_escape_mid(s))
}

/// Inline Markdown to roff: `code` and **strong** in bold, *emphasis* in italics.
fn roff_inline(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(['`', '*']) {
        out.push_str(&roff_escape_mid(&rest[..i]));
        let (mark, font) = if rest[i..].starts_with("**") {
            ("**", "B")
        } else if rest[i..].starts_with('`') {
            ("`", "B")
        } else {
            ("*", "I")
        };
        let after = &rest[i + mark.len()..];
        match after.find(mark) {
            Some(j) if j > 0 => {
                out.push_str(&format!("\\f{font}{}\\fR", roff_escape_mid(&after[..j])));
                rest = &after[j + mark.len()..];
            }
            _ => {
                out.push_str(&roff_escape_mid(mark));
                rest = after;
            }
        }
    }
    out.push_str(&roff_escape_mid(rest));
    roff_escape_start(out)
}

fn roff_escape_mid(s: &str) -> String {
    s.replace('\\', "\\e").replace('-', "\\-")
}

fn roff_escape_start(s: String) -> String {
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s
    }
}

/// A page as a man(7) document for the host's `man`: `valyxo man --roff PAGE` and
/// `valyxo manpages DIR`.
pub fn roff(name: &str, src: &str) -> String {
    let summary = title_summary(src);
    let upper = if name == "valyxo" {
        "VALYXO".to_string()
    } else {
        format!("VALYXO-{}", name.to_uppercase())
    };
    let mut out = format!(
        ".TH {upper} 1 {} \"valyxo {}\" \"Valyxo Manual\"\n.SH NAME\n{} \\- {}\n",
        chrono::Local::now().format("%Y-%m-%d"),
        env!("CARGO_PKG_VERSION"),
        roff_escape(&page_title(name)),
        roff_escape(summary)
    );
    let mut in_code = false;
    let mut para = false;
    // Right after a section heading a paragraph needs no .PP of its own.
    let mut after_heading = true;
    for (i, line) in src.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with("```") {
            if in_code {
                out.push_str(".fi\n.RE\n");
            } else {
                if !after_heading {
                    out.push_str(".PP\n");
                }
                out.push_str(".RS 4\n.nf\n");
            }
            after_heading = false;
            in_code = !in_code;
            para = false;
            continue;
        }
        if in_code {
            out.push_str(&roff_escape(line));
            out.push('\n');
            continue;
        }
        if i == 0 && line.starts_with("# ") {
            continue;
        }
        if let Some(h) = heading(line) {
            let level = line.len() - line.trim_start_matches('#').len();
            let req = if level <= 2 { ".SH" } else { ".SS" };
            out.push_str(&format!(
                "{req} {}\n",
                roff_escape(&strip_inline(h).to_uppercase())
            ));
            para = false;
            after_heading = true;
        } else if line.trim().is_empty() {
            para = false;
        } else if let Some(item) = t.strip_prefix("- ") {
            out.push_str(&format!(".IP \\(bu 2\n{}\n", roff_inline(item)));
            para = true;
            after_heading = false;
        } else if t.starts_with('|') {
            // Table rows become indented lines; the separator row is dropped.
            if t.chars().all(|c| matches!(c, '|' | '-' | ' ' | ':')) {
                continue;
            }
            let cells: Vec<String> = t
                .trim_matches('|')
                .split(" | ")
                .map(|c| roff_inline(c.trim()))
                .collect();
            out.push_str(&format!(".IP \"\" 2\n{}\n", cells.join(" \\(em ")));
            para = true;
            after_heading = false;
        } else {
            if !para && !after_heading {
                out.push_str(".PP\n");
            }
            para = true;
            after_heading = false;
            out.push_str(&roff_inline(t));
            out.push('\n');
        }
    }
    // Non-ASCII characters as groff/mandoc Unicode escapes, so the page is plain ASCII.
    out.chars()
        .map(|c| {
            if c.is_ascii() {
                c.to_string()
            } else {
                format!("\\[u{:04X}]", c as u32)
            }
        })
        .collect()
}

/// `valyxo-ls` for a command page, `valyxo-shell` for a topic.
fn page_title(name: &str) -> String {
    if name == "valyxo" {
        name.to_string()
    } else {
        format!("valyxo-{name}")
    }
}

/// The text of a Markdown heading line (`#`, `##`, `###`…), if it is one.
fn heading(line: &str) -> Option<&str> {
    let rest = line.trim_start_matches('#');
    let level = line.len() - rest.len();
    (level > 0 && rest.starts_with(' ')).then(|| rest.trim())
}

/// Removes inline code backticks and `**` emphasis markers.
fn strip_inline(s: &str) -> String {
    s.replace("**", "").replace('`', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_sorted_and_titled() {
        let names: Vec<&str> = PAGES.iter().map(|(n, _)| *n).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted, "keep PAGES sorted by name");
        for (n, src) in PAGES {
            let title = src.lines().next().unwrap_or("");
            assert!(
                title.starts_with(&format!("# {n} — ")),
                "{n}.md must start with '# {n} — summary', not {title:?}"
            );
            assert!(!summary(n).unwrap_or("").is_empty(), "{n} has no summary");
        }
    }

    #[test]
    fn search_ranks_names_then_summaries_then_bodies() {
        let hits = search("grep");
        assert_eq!(hits.first().map(|h| h.0), Some("grep"));
        assert!(hits.len() > 1, "other pages mention grep");
        let hits = search("background job");
        assert!(hits.iter().any(|h| h.0 == "jobs"));
        assert!(search("zzqqxx-nothing").is_empty());
        assert!(search("   ").is_empty());
    }

    #[test]
    fn rendering_strips_markup() {
        let md = "# ls — List things\n\n## Synopsis\n\n```text\nls [PATH]\n```\n\nUse `ls -l` for **more**.\n";
        let text = render(md);
        assert_eq!(
            text,
            "ls — List things\n\nSYNOPSIS\n\n        ls [PATH]\n\n    Use ls -l for more.\n"
        );
    }

    #[test]
    fn aliases_resolve_to_their_command_page() {
        assert_eq!(resolve("quit").map(|p| p.0), Some("exit"));
        assert_eq!(resolve("!").map(|p| p.0), Some("exec"));
        assert_eq!(resolve("shell").map(|p| p.0), Some("shell"));
        assert!(resolve("nosuchpage").is_none());
        assert!(is_command("ls") && !is_command("vfs") && !is_command("quit"));
    }

    #[test]
    fn suggestions_find_near_misses() {
        assert_eq!(suggest("lss").first().map(String::as_str), Some("ls"));
        assert!(suggest("shel").contains(&"shell".to_string()));
        assert!(suggest("zzzzzzzz").is_empty());
    }
}
