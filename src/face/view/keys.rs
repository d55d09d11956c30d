//! Keys as they arrive (face): mends what the terminal library splits wrongly. Esc pressed
//! just before an arrow (both bytes in one read, as over a slow SSH link or from a key
//! macro) reaches the library as `ESC ESC [ A`, which it reads as Esc followed by the
//! characters `[` and `A`. Here such a run, within one burst of input, is read back as Esc
//! and then the key the sequence names.

use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// The most events a split sequence takes: Esc, `[`, up to 8 parameters and the final.
pub const LONGEST: usize = 11;

/// Whether a split sequence may start with this event (a plain Esc).
pub fn may_be_split(ev: &Event) -> bool {
    is_key(ev, KeyCode::Esc)
}

/// Whether this event may be part of a split sequence (a plain character).
pub fn may_continue(ev: &Event) -> bool {
    char_of(ev).is_some()
}

/// The keys of one burst of input, with Esc-split sequences put back together.
pub fn mend(events: Vec<Event>) -> Vec<Event> {
    let mut out = Vec::with_capacity(events.len());
    let mut i = 0;
    while i < events.len() {
        out.push(events[i].clone());
        if is_key(&events[i], KeyCode::Esc) {
            if let Some((key, used)) = sequence(&events[i + 1..]) {
                out.push(Event::Key(key));
                i += 1 + used;
                continue;
            }
        }
        i += 1;
    }
    out
}

fn is_key(ev: &Event, code: KeyCode) -> bool {
    matches!(ev, Event::Key(k) if k.code == code && k.kind != KeyEventKind::Release
        && (k.modifiers - KeyModifiers::SHIFT).is_empty())
}

/// The plain character of a key event, if it is one.
fn char_of(ev: &Event) -> Option<char> {
    match ev {
        Event::Key(k)
            if k.kind != KeyEventKind::Release
                && (k.modifiers - KeyModifiers::SHIFT).is_empty() =>
        {
            match k.code {
                KeyCode::Char(c) => Some(c),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Reads `[ PARAMS FINAL` or `O FINAL` from the characters at the start of `evs`: the key
/// it names and how many events it took.
fn sequence(evs: &[Event]) -> Option<(KeyEvent, usize)> {
    let intro = char_of(evs.first()?)?;
    if intro != '[' && intro != 'O' {
        return None;
    }
    let mut params = String::new();
    for (n, ev) in evs.iter().enumerate().skip(1).take(8) {
        let c = char_of(ev)?;
        if intro == '[' && (c.is_ascii_digit() || c == ';') {
            params.push(c);
            continue;
        }
        let mut fields = params.split(';');
        let first: u8 = fields.next().and_then(|f| f.parse().ok()).unwrap_or(1);
        let mods = fields
            .next()
            .and_then(|f| f.parse::<u8>().ok())
            .map_or(KeyModifiers::NONE, modifiers);
        let code = match c {
            'A' => KeyCode::Up,
            'B' => KeyCode::Down,
            'C' => KeyCode::Right,
            'D' => KeyCode::Left,
            'H' => KeyCode::Home,
            'F' => KeyCode::End,
            'P'..='S' if intro == 'O' => KeyCode::F(1 + c as u8 - b'P'),
            '~' if intro == '[' => match first {
                1 | 7 => KeyCode::Home,
                2 => KeyCode::Insert,
                3 => KeyCode::Delete,
                4 | 8 => KeyCode::End,
                5 => KeyCode::PageUp,
                6 => KeyCode::PageDown,
                _ => return None,
            },
            _ => return None,
        };
        return Some((KeyEvent::new(code, mods), n + 1));
    }
    None
}

/// xterm's modifier parameter: 1 + a bit each for Shift, Alt, Ctrl.
fn modifiers(p: u8) -> KeyModifiers {
    let bits = p.saturating_sub(1);
    let mut m = KeyModifiers::NONE;
    if bits & 1 != 0 {
        m |= KeyModifiers::SHIFT;
    }
    if bits & 2 != 0 {
        m |= KeyModifiers::ALT;
    }
    if bits & 4 != 0 {
        m |= KeyModifiers::CONTROL;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> Vec<Event> {
        text.chars()
            .map(|c| {
                let code = if c == '\x1b' {
                    KeyCode::Esc
                } else {
                    KeyCode::Char(c)
                };
                let mods = if c.is_ascii_uppercase() {
                    KeyModifiers::SHIFT
                } else {
                    KeyModifiers::NONE
                };
                Event::Key(KeyEvent::new(code, mods))
            })
            .collect()
    }

    fn codes(evs: &[Event]) -> Vec<(KeyCode, KeyModifiers)> {
        evs.iter()
            .filter_map(|e| match e {
                Event::Key(k) => Some((k.code, k.modifiers - KeyModifiers::SHIFT)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn esc_then_an_arrow_in_one_read_is_esc_and_the_arrow() {
        let none = KeyModifiers::NONE;
        assert_eq!(
            codes(&mend(keys("\x1b[A"))),
            [(KeyCode::Esc, none), (KeyCode::Up, none)]
        );
        assert_eq!(
            codes(&mend(keys("\x1bOBx"))),
            [
                (KeyCode::Esc, none),
                (KeyCode::Down, none),
                (KeyCode::Char('x'), none)
            ]
        );
        assert_eq!(
            codes(&mend(keys("\x1b[1;5C\x1b[3~"))),
            [
                (KeyCode::Esc, none),
                (KeyCode::Right, KeyModifiers::CONTROL),
                (KeyCode::Esc, none),
                (KeyCode::Delete, none)
            ]
        );
        // Text that only looks like the start of one stays text.
        assert_eq!(
            codes(&mend(keys("\x1b[x"))),
            [
                (KeyCode::Esc, none),
                (KeyCode::Char('['), none),
                (KeyCode::Char('x'), none)
            ]
        );
        assert_eq!(codes(&mend(keys("[A"))).len(), 2, "no Esc, no change");
    }
}
