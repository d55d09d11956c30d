//! Text for the terminal (foundation): names that came from outside — file names, project
//! names from a server, a model's words — shown so that they cannot drive the terminal.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` must not reach the terminal as it is: control characters (escape sequences
/// start with one) and the characters that reorder text.
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || crate::protocol::is_bidi_control(c)
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
            c if (c as u32) < 0x80 && is_unsafe(c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names_pass_and_others_are_quoted() {
        assert_eq!(escape("main.rs"), "main.rs");
        assert_eq!(escape("naïve ☕.txt"), "naïve ☕.txt");
        assert_eq!(escape("a\u{1b}]0;pwned\u{7}"), "$'a\\e]0;pwned\\x07'");
        assert_eq!(escape("two\nlines"), "$'two\\nlines'");
        assert_eq!(escape("rtl\u{202e}txt.exe"), "$'rtl\\u{202e}txt.exe'");
        assert_eq!(escape("it's\t"), "$'it\\'s\\t'");
    }
}
