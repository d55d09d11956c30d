//! Snippets for the editor (engine): the built-in ones per language, the user's own (one TOML
//! file per language in the VFS folder `/Snippets`, read again when it changes), the body
//! syntax (`$1`, `${1:default}`, `$0`, mirrors, `\$`) and the expansion of a body into text
//! with its tab stops. Nothing here knows about the screen: the editor drives it, and the
//! `snippets` command lists what it holds.
//!
//! A user file is `/Snippets/LANG.toml` (LANG: `python`, `javascript`, `html`, `css`, `sh`
//! or `rhai`), one table per snippet, named by its prefix:
//!
//! ```toml
//! [main]
//! description = "if __name__ == '__main__'"
//! body = "if __name__ == \"__main__\":\n\t${1:main()}\n"
//! ```

use crate::vfs::{VPath, Vfs};
use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

/// The VFS folder of the user's snippets.
pub const DIR: &str = "/Snippets";

/// The languages snippets are kept for, by the name their file has.
pub const LANGUAGES: &[&str] = &["python", "javascript", "html", "css", "sh", "rhai"];

/// User files larger than this are refused (a snippet file is a few kilobytes).
const MAX_FILE: u64 = 1 << 20;

/// The snippet language of a buffer: by the file's extension, then by the language its
/// highlighter names (a new buffer, a script found by its first line).
pub fn language_of(name: &str, highlighted_as: &str) -> Option<&'static str> {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let by_ext = match ext.as_str() {
        "py" | "pyw" => Some("python"),
        "js" | "mjs" | "cjs" | "jsx" => Some("javascript"),
        "html" | "htm" => Some("html"),
        "css" => Some("css"),
        "sh" | "bash" => Some("sh"),
        "rhai" => Some("rhai"),
        // Legacy ValyxoScript is a language of its own (translated to Rhai): Rhai snippets
        // would be wrong there, and JavaScript ones more so.
        "vs" | "ns" => return None,
        _ => None,
    };
    by_ext.or(match highlighted_as {
        "Python" => Some("python"),
        "JavaScript/Rhai" | "JavaScript" | "JavaScript (Babel)" => Some("javascript"),
        "HTML" => Some("html"),
        "CSS" => Some("css"),
        "Bourne Again Shell (bash)" | "Shell-Unix-Generic" => Some("sh"),
        _ => None,
    })
}

/// Whether `c` can be part of a prefix: the word before the cursor is made of these.
pub fn is_prefix_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

// ----- the body syntax -----

/// A piece of a parsed body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    /// `$N`, `${N}` or `${N:default}`.
    Stop {
        number: u32,
        default: Option<String>,
    },
}

/// Reads a body: text with tab stops `$1`, `${1}`, placeholders `${1:default}` and the final
/// cursor `$0`. A number used again is a mirror of the first. `\$`, `\}` and `\\` stand for
/// `$`, `}` and `\`; any other backslash is itself. A `$` that starts none of these is an
/// error (write `\$`), so a body never means something its author did not write.
pub fn parse(body: &str) -> Result<Vec<Piece>> {
    let chars: Vec<char> = body.chars().collect();
    let mut out = Vec::new();
    let mut text = String::new();
    let mut i = 0;
    let number = |i: &mut usize| -> Option<u32> {
        let start = *i;
        while *i < chars.len() && chars[*i].is_ascii_digit() {
            *i += 1;
        }
        let digits: String = chars[start..*i].iter().collect();
        if digits.is_empty() {
            None
        } else {
            digits.parse().ok()
        }
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' if matches!(chars.get(i + 1), Some('$' | '}' | '\\')) => {
                text.push(chars[i + 1]);
                i += 2;
            }
            '$' => {
                let at = i;
                i += 1;
                let stop = if chars.get(i) == Some(&'{') {
                    i += 1;
                    let n = number(&mut i).ok_or_else(|| {
                        anyhow!("column {}: '${{' must be followed by a number (a literal $ is written \\$)", at + 1)
                    })?;
                    let default = match chars.get(i) {
                        Some('}') => {
                            i += 1;
                            None
                        }
                        Some(':') => {
                            i += 1;
                            let mut d = String::new();
                            loop {
                                match chars.get(i) {
                                    None => bail!("column {}: '${{{n}:' is not closed with '}}'", at + 1),
                                    Some('}') => {
                                        i += 1;
                                        break;
                                    }
                                    Some('\\') if matches!(chars.get(i + 1), Some('$' | '}' | '\\')) => {
                                        d.push(chars[i + 1]);
                                        i += 2;
                                    }
                                    Some('$') => bail!(
                                        "column {}: placeholders inside placeholders are not supported (a literal $ is written \\$)",
                                        i + 1
                                    ),
                                    Some(&c) => {
                                        d.push(c);
                                        i += 1;
                                    }
                                }
                            }
                            Some(d)
                        }
                        _ => bail!("column {}: '${{{n}' must go on with ':' or '}}'", at + 1),
                    };
                    Piece::Stop { number: n, default }
                } else {
                    let n = number(&mut i).ok_or_else(|| {
                        anyhow!("column {}: '$' must start a tab stop ($1, ${{1:default}}); a literal $ is written \\$", at + 1)
                    })?;
                    Piece::Stop {
                        number: n,
                        default: None,
                    }
                };
                if !text.is_empty() {
                    out.push(Piece::Text(std::mem::take(&mut text)));
                }
                out.push(stop);
            }
            c => {
                text.push(c);
                i += 1;
            }
        }
    }
    if !text.is_empty() {
        out.push(Piece::Text(text));
    }
    Ok(out)
}

/// `text` written as a body that expands to exactly it: `\` and `$` escaped.
pub fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('$', "\\$")
}

/// A body expanded: its text, and its tab stops in the order Tab visits them (`$1`, `$2`, …,
/// then `$0`, or the end of the text when the body has no `$0`). Each stop is the char
/// ranges in `text` where it stands, the first one where the cursor goes, the others its
/// mirrors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expansion {
    pub text: String,
    pub stops: Vec<Vec<Range<usize>>>,
}

/// Expands parsed pieces. Every line after the first gets `indent` (the indentation of the
/// line the snippet goes into), and each tab in the body becomes `unit` (one level of the
/// buffer's indentation). A number's default is the first one given for it; its mirrors
/// show the same.
pub fn expand(pieces: &[Piece], indent: &str, unit: &str) -> Expansion {
    let mut defaults: BTreeMap<u32, String> = BTreeMap::new();
    for p in pieces {
        if let Piece::Stop {
            number,
            default: Some(d),
        } = p
        {
            defaults.entry(*number).or_insert_with(|| d.clone());
        }
    }
    let mut text = String::new();
    let mut len = 0usize;
    let mut push = |text: &mut String, s: &str| {
        for c in s.chars() {
            match c {
                '\t' => {
                    text.push_str(unit);
                    len += unit.chars().count();
                }
                '\n' => {
                    text.push('\n');
                    text.push_str(indent);
                    len += 1 + indent.chars().count();
                }
                c => {
                    text.push(c);
                    len += 1;
                }
            }
        }
        len
    };
    let mut at: BTreeMap<u32, Vec<Range<usize>>> = BTreeMap::new();
    let mut end = 0;
    for p in pieces {
        match p {
            Piece::Text(t) => end = push(&mut text, t),
            Piece::Stop { number, .. } => {
                let start = end;
                end = push(&mut text, defaults.get(number).map_or("", String::as_str));
                at.entry(*number).or_default().push(start..end);
            }
        }
    }
    let last = at
        .remove(&0)
        .unwrap_or_else(|| std::iter::once(end..end).collect());
    let mut stops: Vec<Vec<Range<usize>>> = at.into_values().collect();
    stops.push(last);
    Expansion { text, stops }
}

// ----- snippets -----

/// Where a snippet comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Builtin,
    /// The user's file; `overrides` when a built-in of the same prefix is replaced.
    User {
        file: String,
        overrides: bool,
    },
}

#[derive(Clone, Debug)]
pub struct Snippet {
    pub lang: &'static str,
    pub prefix: String,
    pub description: String,
    pub body: String,
    pub origin: Origin,
}

/// A built-in snippet: (language, prefix, description, body).
type Builtin = (&'static str, &'static str, &'static str, &'static str);

/// The built-in snippets. Each one, expanded with its defaults, is valid in its language
/// (the tests check them with the language's own tools where the machine has them).
pub const BUILTINS: &[Builtin] = &[
    // Python
    ("python", "def", "a function", "def ${1:name}(${2:args}):\n\t${0:pass}\n"),
    ("python", "class", "a class with __init__", "class ${1:Name}:\n\tdef __init__(self${2:, value}):\n\t\t${0:pass}\n"),
    ("python", "ifmain", "run main() when run as a script", "if __name__ == \"__main__\":\n\t${1:main()}\n"),
    ("python", "for", "a for loop", "for ${1:item} in ${2:items}:\n\tprint($1)$0\n"),
    ("python", "with", "open a file", "with open(${1:\"file.txt\"}) as ${2:f}:\n\tdata = $2.read()$0\n"),
    ("python", "try", "try / except", "try:\n\t${1:pass}\nexcept ${2:Exception} as ${3:e}:\n\t${0:raise}\n"),
    // JavaScript (with React)
    ("javascript", "fn", "a function", "function ${1:name}(${2:args}) {\n\t${0:return null;}\n}\n"),
    ("javascript", "af", "an arrow function", "const ${1:name} = (${2:args}) => {\n\t${0:return null;}\n};\n"),
    ("javascript", "for", "a counting for loop", "for (let ${1:i} = 0; $1 < ${2:10}; $1++) {\n\t$0\n}\n"),
    ("javascript", "imp", "an import", "import ${2:name} from \"${1:module}\";\n$0"),
    ("javascript", "us", "a React state hook", "const [${1:value}, ${2:setValue}] = useState(${3:null});\n$0"),
    ("javascript", "ue", "a React effect hook", "useEffect(() => {\n\t${1:// effect}\n}, [${2}]);\n$0"),
    ("javascript", "rfc", "a React function component (JSX)", "export default function ${1:Component}(${2:props}) {\n\treturn (\n\t\t<div>$1$0</div>\n\t);\n}\n"),
    ("javascript", "rmap", "a React list from an array (JSX)", "<ul>\n\t{${1:items}.map((${2:item}) => (\n\t\t<li key={$2.id}>{$2.${3:name}}</li>\n\t))}\n</ul>\n"),
    // HTML
    ("html", "html5", "an HTML5 page", "<!DOCTYPE html>\n<html lang=\"${1:en}\">\n<head>\n\t<meta charset=\"utf-8\">\n\t<title>${2:Title}</title>\n</head>\n<body>\n\t$0\n</body>\n</html>\n"),
    ("html", "a", "a link", "<a href=\"${1:#}\">${0:link}</a>"),
    ("html", "img", "an image", "<img src=\"${1:image.png}\" alt=\"${2:description}\">"),
    ("html", "ul", "a list", "<ul>\n\t<li>${1:item}</li>\n\t<li>${0:item}</li>\n</ul>\n"),
    ("html", "div", "a div with a class", "<div class=\"${1:name}\">\n\t$0\n</div>\n"),
    // CSS
    ("css", "rule", "a rule", "${1:.selector} {\n\t${2:color}: ${3:inherit};\n}\n"),
    ("css", "flex", "a flex container", "${1:.container} {\n\tdisplay: flex;\n\tjustify-content: ${2:center};\n\talign-items: ${3:center};\n}\n"),
    ("css", "media", "a media query", "@media (max-width: ${1:600px}) {\n\t${2:body} {\n\t\t${0:font-size: 14px;}\n\t}\n}\n"),
    ("css", "var", "a custom property on :root", ":root {\n\t--${1:name}: ${2:value};\n}\n"),
    // Shell
    ("sh", "shebang", "a strict bash script", "#!/usr/bin/env bash\nset -euo pipefail\n$0\n"),
    ("sh", "if", "an if test", "if [ ${1:-f file} ]; then\n\t${0::}\nfi\n"),
    ("sh", "for", "a for loop", "for ${1:f} in ${2:*}; do\n\techo \"\\$$1\"$0\ndone\n"),
    ("sh", "func", "a function", "${1:name}() {\n\t${0::}\n}\n"),
    ("sh", "case", "a case", "case \"${1:\\$1}\" in\n\t${2:start})\n\t\t${0::}\n\t\t;;\n\t*)\n\t\techo \"usage\" >&2\n\t\t;;\nesac\n"),
    // Rhai (ValyxoScript)
    ("rhai", "fn", "a function", "fn ${1:name}(${2:x}) {\n\t$2$0\n}\n"),
    ("rhai", "for", "a for loop over a range", "for ${1:i} in 0..${2:10} {\n\tprint($1);$0\n}\n"),
    ("rhai", "if", "if / else", "if ${1:true} {\n\t${2:print(\"yes\");}\n} else {\n\t${0:print(\"no\");}\n}\n"),
    ("rhai", "let", "a variable", "let ${1:x} = ${2:0};\n$0"),
    ("rhai", "map", "an object map", "let ${1:m} = #{ ${2:key}: ${3:1} };\n$0"),
];

/// The built-ins of one language.
pub fn builtins(lang: &str) -> impl Iterator<Item = Snippet> + '_ {
    BUILTINS
        .iter()
        .filter(move |b| b.0 == lang)
        .map(|&(lang, prefix, description, body)| Snippet {
            lang,
            prefix: prefix.to_string(),
            description: description.to_string(),
            body: body.to_string(),
            origin: Origin::Builtin,
        })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    body: String,
    #[serde(default)]
    description: String,
}

/// Reads a user file's text: its snippets, or what is wrong with it (the first problem).
pub fn parse_file(lang: &'static str, file: &str, text: &str) -> Result<Vec<Snippet>> {
    let table: BTreeMap<String, UserEntry> = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(1, |r| {
            text[..r.start.min(text.len())].matches('\n').count() + 1
        });
        anyhow!("{file}: line {line}: {}", e.message().trim_end())
    })?;
    let mut out = Vec::new();
    for (prefix, entry) in table {
        if prefix.is_empty() || !prefix.chars().all(is_prefix_char) {
            bail!("{file}: [{prefix}]: a prefix is letters, digits and '_'");
        }
        parse(&entry.body).with_context(|| format!("{file}: [{prefix}] body"))?;
        let overrides = builtins(lang).any(|b| b.prefix == prefix);
        out.push(Snippet {
            lang,
            prefix,
            description: entry.description,
            body: entry.body,
            origin: Origin::User {
                file: file.to_string(),
                overrides,
            },
        });
    }
    Ok(out)
}

fn file_of(lang: &str) -> String {
    format!("{DIR}/{lang}.toml")
}

/// A file as last read: its (modification time, size), and what it held.
struct Read {
    stamp: (i64, u64),
    snippets: std::result::Result<Vec<Snippet>, String>,
}

/// The user's snippets, read again whenever a file's modification time or size changed
/// (looked at on every use: no restart is needed after an edit).
#[derive(Default)]
pub struct Library {
    files: HashMap<&'static str, Read>,
}

impl Library {
    /// Looks at the user's files and reads again those that changed.
    pub fn refresh(&mut self, vfs: &Vfs) {
        for &lang in LANGUAGES {
            let Ok(path) = VPath::parse_absolute(&file_of(lang)) else {
                continue;
            };
            let Ok(meta) = vfs.stat(&path) else {
                self.files.remove(lang);
                continue;
            };
            let stamp = (meta.mtime_ms, meta.size);
            if self.files.get(lang).is_some_and(|r| r.stamp == stamp) {
                continue;
            }
            let snippets = if meta.size > MAX_FILE {
                Err(format!("{}: larger than {MAX_FILE} bytes", file_of(lang)))
            } else {
                vfs.read(&path)
                    .map_err(|e| format!("{}: {e}", file_of(lang)))
                    .and_then(|bytes| {
                        String::from_utf8(bytes)
                            .map_err(|_| format!("{}: not UTF-8 text", file_of(lang)))
                    })
                    .and_then(|text| {
                        parse_file(lang, &file_of(lang), &text).map_err(|e| format!("{e:#}"))
                    })
            };
            self.files.insert(lang, Read { stamp, snippets });
        }
    }

    /// What is wrong with the user's file for `lang`, if anything.
    pub fn problem(&self, lang: &str) -> Option<&str> {
        self.files
            .get(lang)
            .and_then(|r| r.snippets.as_ref().err())
            .map(String::as_str)
    }

    /// Every snippet of `lang`, by prefix: the user's over the built-ins of the same prefix.
    /// A user file with an error adds nothing ([`Library::problem`] says why).
    pub fn all(&self, lang: &str) -> Vec<Snippet> {
        let mut by: BTreeMap<String, Snippet> =
            builtins(lang).map(|s| (s.prefix.clone(), s)).collect();
        if let Some(Ok(user)) = self.files.get(lang).map(|r| &r.snippets) {
            for s in user {
                by.insert(s.prefix.clone(), s.clone());
            }
        }
        by.into_values().collect()
    }

    /// The snippet of `lang` with exactly this prefix.
    pub fn find(&self, lang: &str, prefix: &str) -> Option<Snippet> {
        if let Some(Ok(user)) = self.files.get(lang).map(|r| &r.snippets) {
            if let Some(s) = user.iter().find(|s| s.prefix == prefix) {
                return Some(s.clone());
            }
        }
        builtins(lang).find(|s| s.prefix == prefix)
    }
}

/// Saves `code` as the user's snippet `prefix` of `lang` (its text taken literally: `$` and
/// `\` are escaped, and a final `$0` puts the cursor after it). The file keeps its other
/// snippets and comments; a file that does not parse is left alone. Returns the file's path.
pub fn save(vfs: &Vfs, lang: &str, prefix: &str, description: &str, code: &str) -> Result<String> {
    if !LANGUAGES.contains(&lang) {
        bail!("snippets are kept for {}, not {lang}", LANGUAGES.join(", "));
    }
    if prefix.is_empty() || !prefix.chars().all(is_prefix_char) {
        bail!("a prefix is letters, digits and '_'");
    }
    let file = file_of(lang);
    let path = VPath::parse_absolute(&file).map_err(|e| anyhow!("{e}"))?;
    let dir = VPath::parse_absolute(DIR).map_err(|e| anyhow!("{e}"))?;
    let old = match vfs.read(&path) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|_| anyhow!("{file}: not UTF-8 text"))?,
        Err(_) => String::new(),
    };
    let mut doc: toml_edit::DocumentMut = old
        .parse()
        .map_err(|e| anyhow!("{file} does not parse, so it is left alone: {e}"))?;
    let mut t = toml_edit::Table::new();
    t.insert("description", toml_edit::value(description));
    t.insert("body", toml_edit::value(format!("{}$0", escape(code))));
    doc.insert(prefix, toml_edit::Item::Table(t));
    vfs.mkdir(&dir, true).map_err(|e| anyhow!("{DIR}: {e}"))?;
    vfs.write(&path, doc.to_string().as_bytes())
        .map_err(|e| anyhow!("{file}: {e}"))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stop(number: u32, default: Option<&str>) -> Piece {
        Piece::Stop {
            number,
            default: default.map(str::to_string),
        }
    }

    #[test]
    fn bodies_parse_into_text_stops_and_placeholders() {
        assert_eq!(
            parse("a $1 ${2} ${3:x y} \\$4 \\} \\\\ \\n").unwrap(),
            vec![
                Piece::Text("a ".into()),
                stop(1, None),
                Piece::Text(" ".into()),
                stop(2, None),
                Piece::Text(" ".into()),
                stop(3, Some("x y")),
                Piece::Text(" $4 } \\ \\n".into()),
            ]
        );
        assert_eq!(parse("${1:a\\}b}").unwrap(), vec![stop(1, Some("a}b"))]);
        for bad in ["$", "$x", "${x}", "${1", "${1:abc", "${1:${2}}", "${1x}"] {
            assert!(parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn expansion_fills_defaults_mirrors_and_orders_stops() {
        let e = expand(&parse("${2:b} ${1:a}-$1-$2 $0!").unwrap(), "", "  ");
        assert_eq!(e.text, "b a-a-b !");
        assert_eq!(
            e.stops,
            vec![vec![2..3, 4..5], vec![0..1, 6..7], vec![8..8]]
        );
        // Without $0, the last stop is the end; lines get the indentation, tabs the unit.
        let e = expand(&parse("x {\n\t${1:y}\n}").unwrap(), "  ", "\t");
        assert_eq!(e.text, "x {\n  \ty\n  }");
        assert_eq!(e.stops, vec![vec![7..8], vec![12..12]]);
    }

    #[test]
    fn languages_come_from_the_name_then_the_highlighter() {
        assert_eq!(language_of("a.py", "Plain text"), Some("python"));
        assert_eq!(language_of("a.rhai", "JavaScript/Rhai"), Some("rhai"));
        assert_eq!(language_of("old.vs", "JavaScript/Rhai"), None);
        assert_eq!(language_of("a.js", "JavaScript/Rhai"), Some("javascript"));
        assert_eq!(language_of("script", "Python"), Some("python"));
        assert_eq!(language_of("notes.txt", "Plain text"), None);
    }

    #[test]
    fn built_ins_are_many_parse_and_no_prefix_is_used_twice_in_a_language() {
        assert!(BUILTINS.len() >= 24);
        let mut seen = std::collections::HashSet::new();
        for (lang, prefix, _, body) in BUILTINS {
            assert!(LANGUAGES.contains(lang));
            assert!(prefix.chars().all(is_prefix_char), "{prefix}");
            assert!(seen.insert((lang, prefix)), "{lang} {prefix} twice");
            parse(body).unwrap_or_else(|e| panic!("{lang} {prefix}: {e:#}"));
        }
        for lang in LANGUAGES {
            assert!(builtins(lang).count() >= 4, "{lang} has few built-ins");
        }
    }

    #[test]
    fn user_files_override_built_ins_and_bad_files_say_why() {
        let s = parse_file(
            "python",
            "f",
            "[def]\nbody = \"def $1(): pass\"\n[xx]\nbody = \"x\"\n",
        )
        .unwrap();
        assert_eq!(
            s[0].origin,
            Origin::User {
                file: "f".into(),
                overrides: true
            }
        );
        assert!(matches!(
            s[1].origin,
            Origin::User {
                overrides: false,
                ..
            }
        ));
        for bad in [
            "[a]\nbody = \"$x\"",
            "[a b]\nbody = \"x\"",
            "[a]\nbdy = \"x\"",
            "[a",
        ] {
            assert!(parse_file("python", "f", bad).is_err(), "{bad}");
        }
    }

    fn checked(dir: &std::path::Path, tool: &str, args: &[&str], name: &str, text: &str) {
        let file = dir.join(name);
        std::fs::write(&file, text).unwrap();
        let out = std::process::Command::new(tool)
            .args(args)
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{tool} refuses {name}:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn have(tool: &str) -> bool {
        std::process::Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Tags open and close in order (void elements and `<!DOCTYPE>` stand alone), and
    /// brackets and quotes balance: the structure of HTML and JSX, where no parser is here.
    fn balanced_markup(text: &str) -> std::result::Result<(), String> {
        const VOID: &[&str] = &["meta", "img", "br", "hr", "input", "link"];
        let mut tags: Vec<String> = Vec::new();
        let mut rest = text;
        while let Some(i) = rest.find('<') {
            rest = &rest[i + 1..];
            let end = rest.find('>').ok_or("a tag is not closed")?;
            let tag = &rest[..end];
            rest = &rest[end + 1..];
            if tag.starts_with('!') {
                continue;
            }
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_alphanumeric())
                .collect();
            if name.is_empty() {
                return Err(format!("'<{tag}>' is no tag"));
            }
            if let Some(closing) = tag.strip_prefix('/') {
                if tags.pop().as_deref() != Some(closing.trim()) {
                    return Err(format!("</{closing}> closes nothing open"));
                }
            } else if !VOID.contains(&name.as_str()) && !tag.ends_with('/') {
                tags.push(name);
            }
        }
        if !tags.is_empty() {
            return Err(format!("unclosed: {tags:?}"));
        }
        balanced(text)
    }

    /// Brackets nest and quotes close.
    fn balanced(text: &str) -> std::result::Result<(), String> {
        let mut open = Vec::new();
        let mut quote = None;
        for c in text.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(c),
                (None, '(' | '[' | '{') => open.push(c),
                (None, ')' | ']' | '}') => {
                    let want = match c {
                        ')' => '(',
                        ']' => '[',
                        _ => '{',
                    };
                    if open.pop() != Some(want) {
                        return Err(format!("'{c}' closes nothing"));
                    }
                }
                _ => {}
            }
        }
        if quote.is_some() || !open.is_empty() {
            return Err("unclosed bracket or quote".into());
        }
        Ok(())
    }

    /// CSS: balanced, and every declaration inside braces is `name: value;`.
    fn css_ok(text: &str) -> std::result::Result<(), String> {
        balanced(text)?;
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.ends_with('{') || line == "}" {
                continue;
            }
            let decl = line
                .strip_suffix(';')
                .ok_or(format!("'{line}' lacks ';'"))?;
            let (name, value) = decl.split_once(':').ok_or(format!("'{line}' lacks ':'"))?;
            let name_ok = !name.trim().is_empty()
                && name
                    .trim()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !name_ok || value.trim().is_empty() {
                return Err(format!("'{line}' is no declaration"));
            }
        }
        Ok(())
    }

    #[test]
    fn every_built_in_expands_to_valid_code_in_its_language() {
        let dir = tempfile::tempdir().unwrap();
        let mut skipped = Vec::new();
        let (py, node, bash) = (have("python3"), have("node"), have("bash"));
        let mut engine = rhai::Engine::new_raw();
        crate::script::register_std(&mut engine);
        for (n, (lang, prefix, what, body)) in BUILTINS.iter().enumerate() {
            let text = expand(&parse(body).unwrap(), "", "    ").text;
            let jsx = what.contains("JSX");
            match *lang {
                "python" if py => checked(
                    dir.path(),
                    "python3",
                    &["-m", "py_compile"],
                    &format!("s{n}.py"),
                    &text,
                ),
                "javascript" if jsx => {
                    if let Err(e) = balanced_markup(&text) {
                        panic!("{prefix}: {e}\n{text}");
                    }
                }
                "javascript" if node => checked(
                    dir.path(),
                    "node",
                    &["--check"],
                    &format!("s{n}.mjs"),
                    &text,
                ),
                "sh" if bash => checked(dir.path(), "bash", &["-n"], &format!("s{n}.sh"), &text),
                "html" => {
                    if let Err(e) = balanced_markup(&text) {
                        panic!("{prefix}: {e}\n{text}");
                    }
                }
                "css" => {
                    if let Err(e) = css_ok(&text) {
                        panic!("{prefix}: {e}\n{text}");
                    }
                }
                "rhai" => {
                    if let Err(e) = engine.compile(&text) {
                        panic!("rhai {prefix}: {e}\n{text}");
                    }
                }
                other => skipped.push(format!("{other} {prefix}")),
            }
        }
        if !skipped.is_empty() {
            eprintln!("not checked (no checker on this machine): {skipped:?}");
        }
    }

    #[test]
    fn saving_keeps_the_code_literally_and_a_library_sees_the_change() {
        let home = tempfile::tempdir().unwrap();
        let store =
            std::sync::Arc::new(crate::store::Store::open(&home.path().join("s.db")).unwrap());
        let vfs = Vfs::new(store).unwrap();
        let mut lib = Library::default();
        lib.refresh(&vfs);
        assert_eq!(lib.find("python", "def").unwrap().origin, Origin::Builtin);
        let code = "x = \"$HOME\\\\n\"\n";
        save(&vfs, "python", "home", "from an answer", code).unwrap();
        save(&vfs, "python", "def", "mine", "def f(): pass\n").unwrap();
        lib.refresh(&vfs);
        let s = lib.find("python", "home").unwrap();
        let e = expand(&parse(&s.body).unwrap(), "", "    ");
        assert_eq!(e.text, code);
        assert!(matches!(
            lib.find("python", "def").unwrap().origin,
            Origin::User {
                overrides: true,
                ..
            }
        ));
        let path = VPath::parse_absolute("/Snippets/python.toml").unwrap();
        vfs.write(&path, b"[broken\n").unwrap();
        lib.refresh(&vfs);
        assert!(lib.problem("python").is_some());
        assert_eq!(lib.find("python", "def").unwrap().origin, Origin::Builtin);
    }

    proptest! {
        #[test]
        fn escaped_text_expands_to_itself(text in "[ -~\\n]{0,40}") {
            let e = expand(&parse(&escape(&text)).unwrap(), "", "\t");
            prop_assert_eq!(e.text, text.clone());
            prop_assert_eq!(e.stops, vec![vec![text.chars().count()..text.chars().count()]]);
        }

        #[test]
        fn stops_point_at_their_defaults(
            parts in proptest::collection::vec(("[a-z {}]{0,5}", 0u32..4, "[a-z ]{0,4}"), 0..6)
        ) {
            let mut body = String::new();
            for (text, n, default) in &parts {
                body.push_str(&escape(text).replace('}', "\\}"));
                body.push_str(&format!("${{{n}:{default}}}"));
            }
            let pieces = parse(&body).unwrap();
            let e = expand(&pieces, "", "\t");
            let chars: Vec<char> = e.text.chars().collect();
            for ranges in &e.stops {
                let first: String = chars[ranges[0].clone()].iter().collect();
                for r in ranges {
                    let here: String = chars[r.clone()].iter().collect();
                    prop_assert_eq!(&here, &first);
                }
            }
            // Every stop but a missing $0 comes from the body.
            let numbers: std::collections::BTreeSet<u32> = parts.iter().map(|p| p.1).collect();
            let extra = usize::from(!numbers.contains(&0));
            prop_assert_eq!(e.stops.len(), numbers.len() + extra);
        }

        #[test]
        fn any_text_parses_or_is_refused_without_panicking(body in "\\PC{0,30}") {
            let _ = parse(&body);
        }
    }
}
