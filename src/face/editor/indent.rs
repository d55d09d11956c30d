//! How a file is indented (engine, no UI types): tabs or N spaces, and how wide a tab is
//! drawn. Decided per file, first match wins: the EditorConfig files above it
//! (`.editorconfig`, read through the VFS, so mounts and the stored tree alike), then what
//! its own lines do, then its language's custom (Makefiles and Go indent with tabs), then
//! the user's settings.

use crate::vfs::{VPath, Vfs};

/// A file's indentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    /// Tab inserts a tab character (else spaces).
    pub tabs: bool,
    /// Columns of one level of indentation.
    pub size: usize,
    /// Columns a tab character is drawn as.
    pub tab_width: usize,
}

impl Style {
    /// What one level of indentation is, typed at display column `col`: a tab, or the
    /// spaces up to the next stop.
    pub fn unit(&self, col: usize) -> String {
        if self.tabs {
            "\t".into()
        } else {
            " ".repeat(self.size - col % self.size)
        }
    }

    /// A short description for the status line: `Tabs` or `Spaces: 4`.
    pub fn describe(&self) -> String {
        if self.tabs {
            "Tabs".into()
        } else {
            format!("Spaces: {}", self.size)
        }
    }
}

/// Lines looked at to tell how a file is indented.
const SAMPLE: usize = 10_000;
/// Largest `.editorconfig` read.
const MAX_CONFIG: u64 = 256 << 10;

/// Languages (by the highlighter's syntax name) whose files are indented with tabs.
const TAB_LANGUAGES: &[&str] = &["Makefile", "Go"];

/// What a file's lines say about its indentation: tabs, or the most common step between a
/// line's leading spaces and the next indented line's. `None` when there is too little to
/// tell (fewer than two indented lines), or as many lines start with tabs as with spaces.
pub fn detect<'a>(lines: impl Iterator<Item = &'a str>) -> Option<Style> {
    let (mut tabs, mut spaces) = (0usize, 0usize);
    // How often each step (1..=8 columns) appears between consecutive lines.
    let mut steps = [0usize; 9];
    let mut previous = 0usize;
    for line in lines.take(SAMPLE) {
        if line.trim().is_empty() {
            continue;
        }
        let lead = line.bytes().take_while(|b| *b == b' ').count();
        if line.starts_with('\t') {
            tabs += 1;
            continue;
        }
        if lead > 0 {
            spaces += 1;
        }
        if lead > previous && lead - previous <= 8 {
            steps[lead - previous] += 1;
        }
        previous = lead;
    }
    if tabs + spaces < 2 || tabs == spaces {
        return None;
    }
    if tabs > spaces {
        return Some(Style {
            tabs: true,
            size: 0,
            tab_width: 0,
        });
    }
    // The most frequent step; ties go to the smaller (a 2-space file has 4-column steps
    // too, a 4-space one seldom has 2).
    let (size, _) =
        steps.iter().enumerate().skip(1).fold(
            (0, 0),
            |best, (n, &c)| if c > best.1 { (n, c) } else { best },
        );
    (size > 0).then_some(Style {
        tabs: false,
        size,
        tab_width: 0,
    })
}

/// The EditorConfig properties that apply to `path`: the `.editorconfig` files of its
/// folders, nearest last, up to one that says `root = true`. Unreadable or oversized ones
/// are passed over.
pub fn editorconfig(vfs: &Vfs, path: &VPath) -> ec4rs::Properties {
    let mut files = Vec::new();
    let mut dir = path.parent();
    while let Some(d) = dir {
        if let Ok(cfg) = d.join(".editorconfig") {
            let fits = vfs.stat(&cfg).is_ok_and(|m| m.size <= MAX_CONFIG);
            if let Some(bytes) = fits.then(|| vfs.read(&cfg).ok()).flatten() {
                if let Ok(parser) = ec4rs::ConfigParser::new_buffered(std::io::Cursor::new(bytes)) {
                    let root = parser.is_root;
                    files.push((d.clone(), parser));
                    if root {
                        break;
                    }
                }
            }
        }
        dir = d.parent();
    }
    let mut props = ec4rs::Properties::new();
    for (d, mut parser) in files.into_iter().rev() {
        // Sections match the path from the folder the file is in.
        let full = path.to_string();
        let base = d.to_string();
        let rel = full
            .strip_prefix(base.as_str())
            .unwrap_or(&full)
            .trim_start_matches('/');
        let _ = ec4rs::PropertiesSource::apply_to(&mut parser, &mut props, rel);
    }
    props
}

/// Decides a file's indentation from its EditorConfig properties, what its text showed
/// ([`detect`]), its language (the highlighter's syntax name) and the user's settings;
/// see the module's description for the order.
pub fn decide(
    config: &ec4rs::Properties,
    detected: Option<Style>,
    language: &str,
    settings: Style,
) -> Style {
    use ec4rs::property::{IndentSize, IndentStyle, TabWidth};
    let mut style = settings;
    if TAB_LANGUAGES.contains(&language) {
        style.tabs = true;
    }
    if let Some(found) = detected {
        style.tabs = found.tabs;
        if !found.tabs {
            style.size = found.size;
        }
    }
    if let Ok(s) = config.get::<IndentStyle>() {
        style.tabs = s == IndentStyle::Tabs;
    }
    if let Ok(TabWidth::Value(n)) = config.get::<TabWidth>() {
        style.tab_width = n.clamp(1, 16);
    }
    match config.get::<IndentSize>() {
        Ok(IndentSize::Value(n)) => style.size = n.clamp(1, 16),
        Ok(IndentSize::UseTabWidth) => style.size = style.tab_width,
        Err(_) => {}
    }
    if style.size == 0 {
        style.size = style.tab_width;
    }
    style
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spaces(size: usize) -> Option<Style> {
        Some(Style {
            tabs: false,
            size,
            tab_width: 0,
        })
    }

    #[test]
    fn lines_tell_tabs_from_spaces_and_their_width() {
        let tabbed = "def f():\n\tif x:\n\t\treturn 1\n\treturn 2\n";
        assert!(detect(tabbed.lines()).is_some_and(|s| s.tabs));
        let two = "a:\n  b:\n    c: 1\n  d: 2\n";
        assert_eq!(detect(two.lines()), spaces(2));
        let four = "fn f() {\n    if x {\n        y();\n    }\n}\nfn g() {\n    z();\n}\n";
        assert_eq!(detect(four.lines()), spaces(4));
        assert_eq!(detect("one line\n".lines()), None, "too little to tell");
    }

    #[test]
    fn the_order_is_editorconfig_then_text_then_language_then_settings() {
        let settings = Style {
            tabs: false,
            size: 4,
            tab_width: 4,
        };
        let none = ec4rs::Properties::new();
        let make = decide(&none, None, "Makefile", settings);
        assert!(make.tabs, "Makefiles indent with tabs");
        let text = decide(&none, spaces(2), "Makefile", settings);
        assert!(!text.tabs && text.size == 2, "the text's own way wins");
        let mut cfg = ec4rs::Properties::new();
        cfg.insert_raw_for_key("indent_style", "tab");
        cfg.insert_raw_for_key("tab_width", "8");
        let ec = decide(&cfg, spaces(2), "Python", settings);
        assert!(ec.tabs && ec.tab_width == 8, "EditorConfig wins: {ec:?}");
        assert_eq!(decide(&none, None, "Python", settings), settings);
    }
}
