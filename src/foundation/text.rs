//! Text for the terminal (foundation): names that came from outside — file names, project
//! names from a server, a model's words — shown so that they cannot drive the terminal.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` must not reach the terminal as it is: control characters (escape sequences
/// start with one), the characters that reorder text, and the stand-ins for bytes of a host
/// name that is not UTF-8 (see [`raw_byte`]).
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || is_bidi_control(c) || raw_byte(c).is_some()
}

/// Characters that reorder or hide text (bidirectional overrides and isolates, direction
/// marks): in a name they make one name look like another.
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Where the stand-ins for raw bytes start: byte `b` (0x80 and up) of a host name that is
/// not UTF-8 is held as the character `RAW_BASE + b`, in the last private-use plane, which
/// no real name uses. The name can then be listed, searched and given back to the host
/// byte for byte, and [`escape`] shows the byte as `\xHH`, as GNU `ls` does.
const RAW_BASE: u32 = 0x10_FF00;

/// The host byte that `c` stands in for, if it is such a stand-in.
pub fn raw_byte(c: char) -> Option<u8> {
    let v = c as u32;
    (RAW_BASE + 0x80..=RAW_BASE + 0xFF)
        .contains(&v)
        .then(|| (v - RAW_BASE) as u8)
}

/// The stand-in character for the byte `b` (0x80 and up).
pub fn raw_char(b: u8) -> char {
    debug_assert!(b >= 0x80);
    char::from_u32(RAW_BASE + u32::from(b)).expect("the last plane holds only valid characters")
}

/// `name` as it is when every character is safe to print, else quoted the way GNU `ls`
/// does: `$'…'` with `\e`, `\n`, `\t`, `\xHH` and `\u{…}` escapes, so the reader sees
/// what is there and can type it back.
pub fn escape(name: &str) -> Cow<'_, str> {
    if !name.chars().any(is_unsafe) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 8);
    out.push_str("$'");
    for c in name.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{1b}' => out.push_str("\\e"),
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            c => push_shown(&mut out, c),
        }
    }
    out.push('\'');
    Cow::Owned(out)
}

/// Pushes `c`, or for an unsafe one its escape: `\xHH` for a raw byte or an ASCII control,
/// `\u{…}` for any other.
fn push_shown(out: &mut String, c: char) {
    match c {
        c if raw_byte(c).is_some() => {
            let _ = write!(out, "\\x{:02x}", raw_byte(c).unwrap_or_default());
        }
        c if (c as u32) < 0x80 && is_unsafe(c) => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if is_unsafe(c) => {
            let _ = write!(out, "\\u{{{:04x}}}", c as u32);
        }
        c => out.push(c),
    }
}

/// Longest message printed whole; longer ones are cut in the middle.
pub const MESSAGE_MAX: usize = 1000;

/// A message for the terminal: every unsafe character but new lines and tabs shown as an
/// escape (so a file name in an error cannot drive the terminal), and a message longer than
/// `max` characters cut in the middle with a note (so a 200,000-character line is not echoed
/// whole).
pub fn clean_message(msg: &str, max: usize) -> String {
    let mut out = String::with_capacity(msg.len().min(max * 2) + 16);
    let total = msg.chars().count();
    let (head, tail) = if total > max {
        (max * 2 / 3, max / 3)
    } else {
        (total, 0)
    };
    let put = |c: char, out: &mut String| match c {
        '\n' | '\t' => out.push(c),
        c => push_shown(out, c),
    };
    for c in msg.chars().take(head) {
        put(c, &mut out);
    }
    if tail > 0 {
        let _ = write!(out, " […{} characters…] ", total - head - tail);
        for c in msg.chars().skip(total - tail) {
            put(c, &mut out);
        }
    }
    out
}

/// The one "did you mean" of the program: the candidates close to `word` (Jaro-Winkler
/// similarity of at least 0.82, or starting with a `word` of three or more characters), best
/// first, only those nearly as close as the best, at most three.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut scored: Vec<(f64, &str)> = candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(s, c)| *s >= 0.82 || (word.chars().count() > 2 && c.starts_with(word)))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    let best = scored.first().map_or(0.0, |s| s.0);
    scored
        .into_iter()
        .filter(|(s, c)| *s >= best - 0.05 || c.starts_with(word))
        .take(3)
        .map(|(_, c)| c.to_string())
        .collect()
}

/// The one shell quoting of the program: `word` as the shell reads it back unchanged, as it
/// is when it holds only letters, digits and `-_./:,+=@%`, else single-quoted (`'it'\''s'`),
/// or as [`escape`] quotes it (`$'…'`) when it holds a character that must not reach the
/// terminal.
pub fn shell_quote(word: &str) -> Cow<'_, str> {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:,+=@%".contains(c))
    {
        Cow::Borrowed(word)
    } else if word.chars().any(is_unsafe) {
        escape(word)
    } else {
        Cow::Owned(format!("'{}'", word.replace('\'', r"'\''")))
    }
}

/// A list for a message, each item quoted: `'a', 'b' or 'c'`.
pub fn quote_list(items: &[String]) -> String {
    let q: Vec<String> = items.iter().map(|s| format!("'{s}'")).collect();
    match q.len() {
        0 => String::new(),
        1 => q[0].clone(),
        n => format!("{} or {}", q[..n - 1].join(", "), q[n - 1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_quotes_only_what_needs_it() {
        assert_eq!(shell_quote("src/main.rs"), "src/main.rs");
        assert_eq!(shell_quote("a=b,c@d:1%"), "a=b,c@d:1%");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("two words"), "'two words'");
        assert_eq!(shell_quote("it's $HOME"), r"'it'\''s $HOME'");
        assert_eq!(shell_quote("*.rs"), "'*.rs'");
        assert_eq!(shell_quote("~"), "'~'");
        assert_eq!(shell_quote("a\nb'"), r"$'a\nb\''");
    }

    #[test]
    fn one_did_you_mean_for_every_list() {
        let names = ["grep", "group", "greet", "mkdir", "settings", "setting.x"];
        assert_eq!(suggest("grpe", names), ["grep"]);
        assert_eq!(suggest("mkdr", names), ["mkdir"]);
        assert!(suggest("zzz", names).is_empty());
        // A word typed in part finds what starts with it.
        assert_eq!(suggest("sett", names), ["settings", "setting.x"]);
        assert!(suggest("gr", names).len() <= 3);
    }

    #[test]
    fn safe_names_pass_and_others_are_quoted() {
        assert_eq!(escape("main.rs"), "main.rs");
        assert_eq!(escape("naïve ☕.txt"), "naïve ☕.txt");
        assert_eq!(escape("a\u{1b}]0;pwned\u{7}"), "$'a\\e]0;pwned\\x07'");
        assert_eq!(escape("two\nlines"), "$'two\\nlines'");
        assert_eq!(escape("rtl\u{202e}txt.exe"), "$'rtl\\u{202e}txt.exe'");
        assert_eq!(escape("it's\t"), "$'it\\'s\\t'");
        let latin1 = format!("caf{}.txt", raw_char(0xe9));
        assert_eq!(escape(&latin1), "$'caf\\xe9.txt'");
        assert_eq!(clean_message(&latin1, 100), "caf\\xe9.txt");
    }

    #[test]
    fn messages_keep_lines_and_lose_escapes_and_length() {
        assert_eq!(
            clean_message("cat: a\u{1b}[2Jb: no such file\nnext", 100),
            "cat: a\\x1b[2Jb: no such file\nnext"
        );
        let long = format!("x{}y", "-".repeat(200_000));
        let m = clean_message(&long, 100);
        assert!(m.len() < 200, "{m}");
        assert!(m.starts_with('x') && m.ends_with('y') && m.contains("characters…"));
    }
}
