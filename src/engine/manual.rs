//! The built-in manual (engine): one Markdown page per command and per topic, embedded in
//! the binary at build time from `manuals/`. `man` reads pages through this module.
//!
//! Every page starts with a title line `# NAME — one-line summary`. Command pages then have
//! the sections Synopsis, Description, Options, Examples and See also; topic pages are free
//! in form. The tests in `tests/manuals.rs` check that every registered command has a page,
//! that each synopsis matches the command's real usage, and that every `sh` example runs.

use crate::theme::Theme;
use pulldown_cmark::{Event, HeadingLevel, Tag, TagEnd};
use ratatui::text::Line;

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
    ("new", include_str!("../../manuals/new.md")),
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
    ("snippets", include_str!("../../manuals/snippets.md")),
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

/// The pages a page names under its "See also" heading.
fn see_also(src: &str) -> impl Iterator<Item = &str> {
    let tail = src.find("\n## See also").map_or("", |at| &src[at + 12..]);
    let tail = tail.find("\n## ").map_or(tail, |end| &tail[..end]);
    tail.split('`').skip(1).step_by(2)
}

/// Pages matching every word of `query` (case-insensitive), best first, ranked by what they
/// are about: a match in the name counts most, then in the summary; then come the pages
/// those pages send the reader to ("See also": `man -k background` finds `fg` through
/// `jobs`), then pages that only mention the words in their body (by how often).
pub fn search(query: &str) -> Vec<(&'static str, &'static str)> {
    let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
    if words.is_empty() {
        return Vec::new();
    }
    let mut hits: Vec<(u64, &'static str, &'static str)> = Vec::new();
    let mut related: Vec<&'static str> = Vec::new();
    /// The score of a page a page about the query points to.
    const RELATED: u64 = 900;
    for (name, src) in pages() {
        let summary = summary(name).unwrap_or("");
        let (lname, lsum, lbody) = (
            name.to_lowercase(),
            summary.to_lowercase(),
            src.to_lowercase(),
        );
        let mut score = 0u64;
        let mut all = true;
        let mut about = true;
        for w in &words {
            about &= lname.contains(w.as_str()) || lsum.contains(w.as_str());
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
        if about {
            related.extend(see_also(src));
        }
    }
    // A page the pages about the query point to ranks above a mere mention, below them.
    for name in related {
        let Some(&(page, src)) = PAGES.iter().find(|(n, _)| *n == name) else {
            continue;
        };
        match hits.iter_mut().find(|h| h.1 == page) {
            Some(h) => h.0 = h.0.max(RELATED),
            None => hits.push((RELATED, page, title_summary(src))),
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
    let layout = crate::markdown::Layout {
        theme,
        indent: 4,
        manual: true,
    };
    crate::markdown::lines(src, &layout)
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
    let mut head = Roff::default();
    head.text(&page_title(name));
    head.text(" - ");
    head.text(summary);
    let mut out = format!(
        ".TH {upper} 1 {} \"valyxo {}\" \"Valyxo Manual\"\n.SH NAME\n{}\n",
        chrono::Local::now().format("%Y-%m-%d"),
        env!("CARGO_PKG_VERSION"),
        head.out,
    );
    let mut page = Roff {
        at_start: true,
        ..Roff::default()
    };
    for event in crate::markdown::parser(src) {
        page.event(event);
    }
    page.newline();
    out.push_str(&page.out);
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

/// The walk over a page that writes it as man(7) requests: sections (`.SH`, `.SS`),
/// paragraphs (`.PP`), list items (`.IP`, nested lists inside `.RS`), code blocks unfilled
/// (`.nf`) and indented, table rows as indented lines, and fonts for inline markup (`code`
/// and **strong** in bold, *emphasis* in italics).
#[derive(Default)]
struct Roff {
    out: String,
    /// Before the first event: a first-level heading there is the title, already in NAME.
    at_start: bool,
    /// Inside the title: its text is left out.
    skip: bool,
    /// A section is open: text before the first heading goes under DESCRIPTION.
    section: bool,
    /// Right after a heading, a paragraph needs no `.PP` of its own.
    after_heading: bool,
    /// Inside a list item, before its first block.
    item_start: bool,
    /// The open lists: the next item's number for a numbered one.
    lists: Vec<Option<u64>>,
    bold: usize,
    italic: usize,
    /// The open code block's text.
    code: Option<String>,
    /// The open heading's request and text.
    heading: Option<(&'static str, String)>,
    /// The open table: its rows of cells so far, and where the open cell starts in `out`.
    table: Option<(Vec<Vec<String>>, Vec<String>, usize)>,
    /// The open links: the address, and the text shown so far.
    links: Vec<(String, String)>,
}

impl Roff {
    fn newline(&mut self) {
        if !self.out.is_empty() && !self.out.ends_with('\n') {
            self.out.push('\n');
        }
    }

    fn request(&mut self, req: &str) {
        self.newline();
        self.out.push_str(req);
        self.out.push('\n');
    }

    /// Text, escaped: backslashes and hyphens, and a `.` or `'` that starts a line (it
    /// would be read as a request).
    fn text(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        for (_, shown) in &mut self.links {
            shown.push_str(s);
        }
        if let Some((_, h)) = &mut self.heading {
            h.push_str(s);
            return;
        }
        if self.skip {
            return;
        }
        if (self.out.is_empty() || self.out.ends_with('\n')) && s.starts_with(['.', '\'']) {
            self.out.push_str("\\&");
        }
        self.out
            .push_str(&s.replace('\\', "\\e").replace('-', "\\-"));
    }

    /// Switches to the font that the open inline markup asks for.
    fn font(&mut self) {
        if self.heading.is_some() || self.skip {
            return;
        }
        self.out.push_str(match (self.bold > 0, self.italic > 0) {
            (false, false) => "\\fR",
            (true, false) => "\\fB",
            (false, true) => "\\fI",
            (true, true) => "\\f(BI",
        });
    }

    /// A block starts: under DESCRIPTION when no section is open yet; with `.PP` between
    /// paragraphs, `.sp` between the blocks of one list item; none before a list or a table,
    /// whose `.IP` starts a paragraph itself (`para` false).
    fn block(&mut self, para: bool) {
        if !self.section {
            self.request(".SH DESCRIPTION");
            self.section = true;
            self.after_heading = true;
        }
        let first = std::mem::take(&mut self.item_start);
        if std::mem::take(&mut self.after_heading) || first || !para {
            return;
        }
        if self.lists.is_empty() {
            self.request(".PP");
        } else {
            self.request(".sp");
        }
    }

    fn event(&mut self, event: Event) {
        let at_start = std::mem::take(&mut self.at_start);
        if let Some(code) = &mut self.code {
            match event {
                Event::Text(t) => code.push_str(&t),
                Event::End(TagEnd::CodeBlock) => {
                    let code = self.code.take().unwrap_or_default();
                    self.request(".RS 4");
                    self.request(".nf");
                    for line in code.lines() {
                        self.text(line);
                        self.out.push('\n');
                    }
                    self.request(".fi");
                    self.request(".RE");
                }
                _ => {}
            }
            return;
        }
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                if at_start && level == HeadingLevel::H1 {
                    self.skip = true;
                    return;
                }
                self.section = true;
                let req = if level <= HeadingLevel::H2 {
                    ".SH"
                } else {
                    ".SS"
                };
                self.heading = Some((req, String::new()));
            }
            Event::End(TagEnd::Heading(_)) => {
                if std::mem::take(&mut self.skip) {
                    return;
                }
                if let Some((req, text)) = self.heading.take() {
                    self.request(req);
                    self.text(&text.to_uppercase());
                    self.newline();
                }
                self.after_heading = true;
                self.item_start = false;
            }
            Event::Start(Tag::Paragraph | Tag::HtmlBlock) => self.block(true),
            Event::Start(Tag::CodeBlock(_)) => {
                self.block(true);
                self.code = Some(String::new());
            }
            Event::Start(Tag::BlockQuote(_)) => {
                self.block(true);
                self.request(".RS 4");
            }
            Event::End(TagEnd::BlockQuote(_)) => self.request(".RE"),
            Event::Start(Tag::List(first)) => {
                if self.lists.is_empty() {
                    self.block(false);
                } else {
                    self.request(".RS");
                }
                self.lists.push(first);
            }
            Event::End(TagEnd::List(_)) => {
                self.lists.pop();
                if !self.lists.is_empty() {
                    self.request(".RE");
                }
                self.item_start = false;
            }
            Event::Start(Tag::Item) => {
                let tag = match self.lists.last_mut() {
                    Some(Some(n)) => {
                        *n += 1;
                        let tag = format!("{}.", *n - 1);
                        format!(".IP {tag} {}", tag.len() + 1)
                    }
                    _ => ".IP \\(bu 2".to_string(),
                };
                self.request(&tag);
                self.item_start = true;
            }
            Event::End(TagEnd::Item) => self.item_start = false,
            Event::Start(Tag::Table(_)) => {
                self.block(false);
                self.table = Some((Vec::new(), Vec::new(), 0));
            }
            Event::Start(Tag::TableCell) => {
                self.newline();
                let at = self.out.len();
                if let Some(t) = &mut self.table {
                    t.2 = at;
                }
            }
            Event::End(TagEnd::TableCell) => {
                if let Some((_, row, at)) = &mut self.table {
                    row.push(self.out.split_off(*at));
                }
            }
            Event::End(TagEnd::TableHead | TagEnd::TableRow) => {
                let head = event == Event::End(TagEnd::TableHead);
                if let Some((rows, row, _)) = &mut self.table {
                    let mut cells = std::mem::take(row);
                    if head {
                        for c in &mut cells {
                            *c = format!("\\fB{c}\\fR");
                        }
                    }
                    rows.push(cells);
                }
            }
            Event::End(TagEnd::Table) => {
                // Each row an indented line, its cells parted by dashes.
                let rows = self.table.take().map(|t| t.0).unwrap_or_default();
                for row in rows {
                    self.request(".IP \"\" 2");
                    self.out.push_str(&row.join(" \\(em "));
                    self.newline();
                }
            }
            Event::Start(Tag::Strong) => {
                self.bold += 1;
                self.font();
            }
            Event::End(TagEnd::Strong) => {
                self.bold = self.bold.saturating_sub(1);
                self.font();
            }
            Event::Start(Tag::Emphasis) => {
                self.italic += 1;
                self.font();
            }
            Event::End(TagEnd::Emphasis) => {
                self.italic = self.italic.saturating_sub(1);
                self.font();
            }
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                self.links.push((dest_url.to_string(), String::new()));
            }
            Event::End(TagEnd::Link | TagEnd::Image) => {
                if let Some((dest, shown)) = self.links.pop() {
                    let bare = dest.strip_prefix("mailto:").unwrap_or(&dest);
                    if !dest.is_empty() && bare != shown {
                        self.text(&format!(" <{dest}>"));
                    }
                }
            }
            Event::Text(t) | Event::InlineMath(t) | Event::DisplayMath(t) => self.text(&t),
            Event::Code(t) => {
                self.bold += 1;
                self.font();
                self.text(&t);
                self.bold -= 1;
                self.font();
            }
            Event::Html(t) | Event::InlineHtml(t) => {
                let mut lines = t.split('\n').peekable();
                while let Some(l) = lines.next() {
                    self.text(l);
                    if lines.peek().is_some() {
                        self.newline();
                    }
                }
            }
            Event::SoftBreak => {
                if self.heading.is_some() {
                    self.text(" ");
                } else if !self.skip {
                    self.newline();
                }
            }
            Event::HardBreak => self.request(".br"),
            Event::Rule => {
                self.block(true);
                self.text("\u{2014}\u{2014}\u{2014}");
            }
            Event::TaskListMarker(done) => self.text(if done { "[x] " } else { "[ ] " }),
            Event::FootnoteReference(t) => self.text(&format!("[^{t}]")),
            _ => {}
        }
    }
}

/// `valyxo-ls` for a command page, `valyxo-shell` for a topic.
fn page_title(name: &str) -> String {
    if name == "valyxo" {
        name.to_string()
    } else {
        format!("valyxo-{name}")
    }
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
        // A page about the words sends the reader on: fg never says "background", but the
        // jobs page points to it, and it ranks above pages that merely mention the word.
        let names: Vec<&str> = search("background").iter().map(|h| h.0).collect();
        let at = |n: &str| names.iter().position(|h| *h == n);
        assert!(at("jobs") < at("fg"), "{names:?}");
        assert!(
            at("fg").is_some_and(|fg| at("config").is_none_or(|c| fg < c)),
            "{names:?}"
        );
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

    /// The page's body after the NAME section.
    fn roff_body(src: &str) -> String {
        let page = roff("t", src);
        let at = page.find("\n.SH NAME\n").expect("NAME") + 10;
        let rest = &page[at..];
        rest[rest.find('\n').expect("NAME line") + 1..].to_string()
    }

    #[test]
    fn roff_escapes_requests_backslashes_and_hyphens() {
        let md = "# t \u{2014} T\n\n## Examples\n\n```text\n.TH not a request\n'also not\nback\\slash -n\n```\n\n\
                  .PP is text here, as is\n'this, \\e and `a-b`.\n";
        assert_eq!(
            roff_body(md),
            ".SH\nEXAMPLES\n.RS 4\n.nf\n\\&.TH not a request\n\\&'also not\nback\\eslash \\-n\n\
             .fi\n.RE\n.PP\n\\&.PP is text here, as is\n\\&'this, \\ee and \\fBa\\-b\\fR.\n"
        );
    }

    #[test]
    fn roff_nests_lists_and_opens_a_section_for_text_before_any() {
        let md = "# t \u{2014} T\n\nIntro *here*.\n\n- one\n  - inner **b**\n- two\n\n1. first\n2. second\n";
        assert_eq!(
            roff_body(md),
            ".SH DESCRIPTION\nIntro \\fIhere\\fR.\n.IP \\(bu 2\none\n.RS\n.IP \\(bu 2\n\
             inner \\fBb\\fR\n.RE\n.IP \\(bu 2\ntwo\n.IP 1. 3\nfirst\n.IP 2. 3\nsecond\n"
        );
    }

    #[test]
    fn the_pager_shows_nested_lists_tables_and_links() {
        let md = "# t \u{2014} T\n\n## See also\n\n- a [link](https://x.org)\n  - nested\n\n| A | B |\n|---|---|\n| `x` | y |\n";
        assert_eq!(
            render(md),
            "t \u{2014} T\n\nSEE ALSO\n\n    - a link (https://x.org)\n      - nested\n\n    A  B\n    \u{2500}  \u{2500}\n    x  y\n"
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
