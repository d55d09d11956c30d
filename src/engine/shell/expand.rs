//! Word expansion: variables, `$?`, `~` and globs matched against the VFS.
//!
//! Expanded values are never split on spaces (a variable is always one argument, as in fish),
//! and only unquoted `*`, `?` and `[…]` written in the line are wildcards.

use super::parse::{Part, Word};
use super::Session;
use crate::vfs::{normalize, Kind, VPath};
use globset::GlobBuilder;

fn escape_glob(s: &str, out: &mut String) {
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
}

fn has_meta(component: &str) -> bool {
    let mut esc = false;
    for c in component.chars() {
        if esc {
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else if matches!(c, '*' | '?' | '[') {
            return true;
        }
    }
    false
}

fn unescape(component: &str) -> String {
    let mut out = String::new();
    let mut esc = false;
    for c in component.chars() {
        if !esc && c == '\\' {
            esc = true;
        } else {
            esc = false;
            out.push(c);
        }
    }
    out
}

/// Expands one word to its arguments (one, or several for a glob).
pub fn expand_word(sh: &Session, w: &Word) -> Result<Vec<String>, String> {
    let mut text = String::new();
    let mut pattern = String::new();
    let mut glob = false;
    for part in &w.parts {
        match part {
            Part::Lit { text: t, quoted } => {
                text.push_str(t);
                if *quoted {
                    escape_glob(t, &mut pattern);
                } else {
                    for c in t.chars() {
                        if matches!(c, '*' | '?' | '[') {
                            glob = true;
                            pattern.push(c);
                        } else if matches!(c, ']') {
                            pattern.push(c);
                        } else {
                            escape_glob(c.encode_utf8(&mut [0; 4]), &mut pattern);
                        }
                    }
                }
            }
            Part::Var { name } => {
                let v = sh.var(name).unwrap_or_default();
                text.push_str(&v);
                escape_glob(&v, &mut pattern);
            }
            Part::Status => {
                let v = sh.last_status.to_string();
                text.push_str(&v);
                pattern.push_str(&v);
            }
            Part::Tilde => {
                text.push('~');
                pattern.push('~');
            }
        }
    }
    if !glob {
        return Ok(vec![text]);
    }
    let matches = glob_vfs(sh, &pattern)?;
    if matches.is_empty() {
        return Err(format!(
            "no matches for wildcard '{text}' (quote it to pass it as it is)"
        ));
    }
    Ok(matches)
}

/// Expands all words of a command.
pub fn expand_words(sh: &Session, words: &[Word]) -> Result<Vec<String>, String> {
    let mut out = Vec::with_capacity(words.len());
    for w in words {
        out.extend(expand_word(sh, w)?);
    }
    Ok(out)
}

/// Matches a glob pattern (with `\` escapes) against the VFS. Results keep the form the user
/// wrote: relative patterns give relative paths. `*` and `?` do not match a leading `.`.
pub fn glob_vfs(sh: &Session, pattern: &str) -> Result<Vec<String>, String> {
    let (lead, rest) = if pattern == "~" || pattern.starts_with("~/") {
        ("~/", &pattern[1..])
    } else if pattern.starts_with('/') {
        ("/", pattern)
    } else {
        ("", pattern)
    };
    let comps: Vec<&str> = rest.split('/').filter(|c| !c.is_empty()).collect();
    // Asked even for a pattern from the root: the first ask makes the start folder, which
    // the pattern may name.
    let cwd = sh.cwd();
    let base = if lead.is_empty() {
        cwd.clone()
    } else {
        VPath::root()
    };
    let mut cands: Vec<(String, VPath)> = vec![(lead.to_string(), base)];
    let vfs = &sh.hub.vfs;
    for (i, comp) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        let mut next = Vec::new();
        if has_meta(comp) {
            let matcher = match GlobBuilder::new(comp)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
            {
                Ok(g) => g.compile_matcher(),
                Err(e) => return Err(format!("bad wildcard '{pattern}': {e}")),
            };
            let dot_ok = comp.starts_with('.');
            for (disp, vp) in &cands {
                let Ok(entries) = vfs.read_dir(vp) else {
                    continue;
                };
                for e in entries {
                    if e.name.starts_with('.') && !dot_ok {
                        continue;
                    }
                    if !last && e.meta.kind != Kind::Dir {
                        continue;
                    }
                    if matcher.is_match(&e.name) {
                        let Ok(child) = vp.join(&e.name) else {
                            continue;
                        };
                        next.push((join_disp(disp, &e.name), child));
                    }
                }
            }
        } else {
            let name = unescape(comp);
            for (disp, vp) in &cands {
                let Ok(child) = normalize(vp, &name) else {
                    continue;
                };
                next.push((join_disp(disp, &name), child));
            }
        }
        cands = next;
        if cands.is_empty() {
            break;
        }
    }
    let mut out: Vec<String> = cands
        .into_iter()
        .filter(|(_, vp)| vfs.exists(vp))
        .map(|(d, _)| d)
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

fn join_disp(disp: &str, name: &str) -> String {
    if disp.is_empty() {
        name.to_string()
    } else if disp.ends_with('/') {
        format!("{disp}{name}")
    } else {
        format!("{disp}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{Hub, HubOptions};
    use crate::shell::parse::parse;
    use proptest::prelude::*;

    /// A session in a fresh home, in `/w`, which holds the files named.
    fn session(files: &[&str]) -> (tempfile::TempDir, Session) {
        let home = tempfile::tempdir().unwrap();
        let hub = Hub::open(HubOptions {
            home: Some(home.path().to_path_buf()),
            no_color: true,
            ..Default::default()
        })
        .unwrap();
        let cwd = VPath::parse_absolute("/w").unwrap();
        hub.vfs.mkdir(&cwd, true).unwrap();
        for f in files {
            let p = normalize(&cwd, f).unwrap();
            hub.vfs.mkdir(&p.parent().unwrap(), true).unwrap();
            hub.vfs.write(&p, b"").unwrap();
        }
        (home, Session::at(hub, cwd, false).unwrap())
    }

    /// The arguments the words of `line` (after the command name) expand to.
    fn args(sh: &Session, line: &str) -> Result<Vec<String>, String> {
        let script = parse(line).unwrap();
        let words = &script.items[0].and_or.first.commands[0].words;
        expand_words(sh, &words[1..])
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn variables_are_one_argument_and_never_wildcards() {
        let (_home, mut sh) = session(&["a.txt", "b.txt"]);
        sh.vars.insert("X".into(), "two words *.txt".into());
        sh.vars.insert("E".into(), String::new());
        sh.last_status = 3;
        assert_eq!(
            args(&sh, "echo $X ${X}! \"$X\" $E $? ~ ~/a $NOSUCHVARIABLE_SET").unwrap(),
            strings(&[
                "two words *.txt",
                "two words *.txt!",
                "two words *.txt",
                "",
                "3",
                "~",
                "~/a",
                ""
            ])
        );
    }

    #[test]
    fn wildcards_match_sorted_skip_dot_files_and_must_match() {
        let (_home, sh) = session(&[
            "b.txt",
            "a.txt",
            ".hidden.txt",
            "a*b",
            "axb",
            "src/x.rs",
            "src/y.rs",
        ]);
        assert_eq!(args(&sh, "ls *.txt").unwrap(), strings(&["a.txt", "b.txt"]));
        assert_eq!(args(&sh, "ls .*.txt").unwrap(), strings(&[".hidden.txt"]));
        assert_eq!(
            args(&sh, "ls src/*.rs /w/src/?.rs").unwrap(),
            strings(&["src/x.rs", "src/y.rs", "/w/src/x.rs", "/w/src/y.rs"])
        );
        assert_eq!(
            args(&sh, "ls ~/w/a?b").unwrap(),
            strings(&["~/w/a*b", "~/w/axb"])
        );
        // Quoted, a wildcard character is itself: alone, and beside a real wildcard.
        assert_eq!(
            args(&sh, "ls 'a*b' a\\*b").unwrap(),
            strings(&["a*b", "a*b"])
        );
        assert_eq!(args(&sh, "ls \"a*\"?").unwrap(), strings(&["a*b"]));
        // A wildcard that matches nothing is an error, not passed on as it is.
        let e = args(&sh, "ls *.md").unwrap_err();
        assert!(e.contains("no matches for wildcard '*.md'"), "{e}");
    }

    proptest! {
        /// Escaping text for a pattern and reading the pattern's literal back gives the text.
        #[test]
        fn escaped_text_reads_back_and_is_never_a_wildcard(text in "[^/]{0,16}") {
            let mut pattern = String::new();
            escape_glob(&text, &mut pattern);
            prop_assert!(!has_meta(&pattern));
            prop_assert_eq!(unescape(&pattern), text);
        }
    }
}
