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
    let base = if lead.is_empty() {
        sh.cwd.clone()
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
