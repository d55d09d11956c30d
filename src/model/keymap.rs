//! Key bindings as data (model): the editor's commands, the chords that run them, the two
//! keymaps a user can choose (`editor.keymap`: `default`, as in micro and VS Code, or
//! `nano`), and the user's own bindings from `config.toml`:
//!
//! ```toml
//! [editor.keys]
//! "ctrl-d" = "duplicate_line"
//! "alt-x" = "none"            # unbound
//! ```
//!
//! The editor looks a key up here and runs the command; F1 and the hint line are made from
//! the same table, so what they say is what the keys do.

use crossterm::event::{KeyCode, KeyModifiers};
use std::collections::HashMap;
use std::fmt;

macro_rules! commands {
    ($($variant:ident = $name:literal, $what:literal;)*) => {
        /// What a key can do in the editor's text.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Command {
            $($variant),*
        }

        impl Command {
            /// Every command, in the order F1 lists them.
            pub const ALL: &'static [Command] = &[$(Command::$variant),*];

            /// The name used in `config.toml`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Command::$variant => $name),*
                }
            }

            /// What it does, for F1 and the manual.
            pub fn what(self) -> &'static str {
                match self {
                    $(Command::$variant => $what),*
                }
            }
        }
    };
}

commands! {
    Save = "save", "save";
    SaveAs = "save_as", "save under another name";
    SaveAll = "save_all", "save every modified buffer";
    Reload = "reload", "read the file again from disk (asks if there are unsaved changes)";
    Quit = "quit", "quit (asks about unsaved changes)";
    Open = "open", "open a file";
    Close = "close", "close the buffer";
    PreviousBuffer = "previous_buffer", "previous buffer";
    NextBuffer = "next_buffer", "next buffer";
    Undo = "undo", "undo";
    Redo = "redo", "redo";
    Find = "find", "find as you type (Alt-R: regular expressions; Esc goes back)";
    FindNext = "find_next", "next match";
    FindPrevious = "find_previous", "previous match";
    Replace = "replace", "replace (asks at each match; a: all)";
    GoTo = "go_to", "go to line (LINE or LINE:COL)";
    SelectAll = "select_all", "select everything";
    SelectNext = "select_next", "select the word, then its next occurrence";
    Copy = "copy", "copy (the line without a selection)";
    Cut = "cut", "cut (the line without a selection)";
    Paste = "paste", "paste";
    CutLine = "cut_line", "cut the line(s)";
    DuplicateLine = "duplicate_line", "duplicate the line(s)";
    ToggleComment = "toggle_comment", "comment or uncomment the line(s)";
    DeleteWordBack = "delete_word_back", "delete the word before the cursor";
    DeleteWordForward = "delete_word_forward", "delete the word after the cursor";
    Assistant = "assistant", "the assistant pane: ask about the file or selection";
    Position = "position", "say where the cursor is";
    Help = "help", "this help";
    Indent = "indent", "expand the snippet named before the cursor, next snippet stop, or indent";
    Dedent = "dedent", "previous snippet stop, or dedent (the selected lines)";
    Newline = "newline", "a new line, indented like the one before";
    Backspace = "backspace", "delete before the cursor";
    Delete = "delete", "delete at the cursor";
    Left = "left", "left";
    Right = "right", "right";
    Up = "up", "up";
    Down = "down", "down";
    WordLeft = "word_left", "previous word";
    WordRight = "word_right", "next word";
    LineStart = "line_start", "start of the line";
    LineEnd = "line_end", "end of the line";
    PageUp = "page_up", "page up";
    PageDown = "page_down", "page down";
    FileStart = "file_start", "start of the file";
    FileEnd = "file_end", "end of the file";
    Cancel = "cancel", "clear the selection, close a question";
}

impl Command {
    pub fn from_name(name: &str) -> Option<Command> {
        Command::ALL.iter().copied().find(|c| c.name() == name)
    }

    /// A movement: with Shift added to its key, it selects as it moves.
    pub fn moves(self) -> bool {
        use Command::*;
        matches!(
            self,
            Left | Right
                | Up
                | Down
                | WordLeft
                | WordRight
                | LineStart
                | LineEnd
                | PageUp
                | PageDown
                | FileStart
                | FileEnd
        )
    }
}

/// A key with its modifiers, as `ctrl-s`, `alt-shift-down`, `f3` or `ctrl-/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Chord {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

const NAMED: &[(&str, KeyCode)] = &[
    ("left", KeyCode::Left),
    ("right", KeyCode::Right),
    ("up", KeyCode::Up),
    ("down", KeyCode::Down),
    ("home", KeyCode::Home),
    ("end", KeyCode::End),
    ("pageup", KeyCode::PageUp),
    ("pagedown", KeyCode::PageDown),
    ("tab", KeyCode::Tab),
    ("backtab", KeyCode::BackTab),
    ("enter", KeyCode::Enter),
    ("backspace", KeyCode::Backspace),
    ("delete", KeyCode::Delete),
    ("insert", KeyCode::Insert),
    ("esc", KeyCode::Esc),
    ("space", KeyCode::Char(' ')),
];

impl Chord {
    /// The chord of a key event. A character's Shift is in the character itself (`A`, not
    /// `shift-a`); Shift-Tab is `backtab`.
    pub fn of(code: KeyCode, mods: KeyModifiers) -> Chord {
        let mut mods = mods & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        let code = match code {
            KeyCode::Char(c) => {
                mods.remove(KeyModifiers::SHIFT);
                // Control with a letter arrives as the lower-case letter.
                if mods.contains(KeyModifiers::CONTROL) {
                    KeyCode::Char(c.to_ascii_lowercase())
                } else {
                    KeyCode::Char(c)
                }
            }
            KeyCode::BackTab => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            other => other,
        };
        Chord { code, mods }
    }

    /// Reads `ctrl-s`, `alt-shift-down`, `f3`, `ctrl-/`. Modifiers are `ctrl`, `alt` and
    /// `shift`; keys are a character, a function key `f1`–`f12`, or a name (`left`,
    /// `pageup`, `backspace`, `esc`, `space`…).
    pub fn parse(text: &str) -> Result<Chord, String> {
        let lower = text.trim().to_ascii_lowercase();
        let mut mods = KeyModifiers::NONE;
        let mut rest = lower.as_str();
        loop {
            let (m, after) = match rest.split_once('-') {
                Some((m, after)) if !after.is_empty() => (m, after),
                _ => break,
            };
            mods |= match m {
                "ctrl" | "control" | "c" => KeyModifiers::CONTROL,
                "alt" | "meta" | "m" => KeyModifiers::ALT,
                "shift" | "s" => KeyModifiers::SHIFT,
                _ => {
                    return Err(format!(
                        "'{text}': unknown modifier '{m}' (ctrl, alt, shift)"
                    ))
                }
            };
            rest = after;
        }
        let code = if let Some(&(_, code)) = NAMED.iter().find(|(n, _)| *n == rest) {
            code
        } else if let Some(n) = rest.strip_prefix('f').and_then(|n| n.parse::<u8>().ok()) {
            if !(1..=12).contains(&n) {
                return Err(format!("'{text}': function keys are f1 to f12"));
            }
            KeyCode::F(n)
        } else {
            let mut chars = rest.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if !c.is_control() => {
                    if mods.contains(KeyModifiers::SHIFT) && c.is_ascii_alphabetic() {
                        KeyCode::Char(c.to_ascii_uppercase())
                    } else {
                        KeyCode::Char(c)
                    }
                }
                _ => return Err(format!("'{text}': unknown key '{rest}'")),
            }
        };
        Ok(Chord::of(code, mods))
    }

    /// Other chords that terminals send for this one: Ctrl-/ and Ctrl-_ arrive as Ctrl-7,
    /// Ctrl-Backspace often as Ctrl-H, Ctrl-Space as Ctrl-@ (Ctrl-2).
    fn aliases(self) -> Vec<Chord> {
        let ctrl = |c: char| Chord {
            code: KeyCode::Char(c),
            mods: KeyModifiers::CONTROL,
        };
        if self.mods != KeyModifiers::CONTROL {
            return Vec::new();
        }
        match self.code {
            KeyCode::Char('/' | '_') => vec![ctrl('7')],
            KeyCode::Char('\\') => vec![ctrl('4')],
            KeyCode::Char(']') => vec![ctrl('5')],
            KeyCode::Char('^') => vec![ctrl('6')],
            KeyCode::Backspace => vec![ctrl('h')],
            KeyCode::Char(' ') => vec![ctrl('2')],
            _ => Vec::new(),
        }
    }
}

impl fmt::Display for Chord {
    /// As F1 shows it: `Ctrl-S`, `Alt-Shift-Down`, `F3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.contains(KeyModifiers::CONTROL) {
            f.write_str("Ctrl-")?;
        }
        if self.mods.contains(KeyModifiers::ALT) {
            f.write_str("Alt-")?;
        }
        if self.mods.contains(KeyModifiers::SHIFT) {
            f.write_str("Shift-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("Space"),
            KeyCode::Char(c) if c.is_ascii_uppercase() => write!(f, "Shift-{c}"),
            KeyCode::Char(c) => write!(f, "{}", c.to_ascii_uppercase()),
            KeyCode::F(n) => write!(f, "F{n}"),
            KeyCode::BackTab => f.write_str("Shift-Tab"),
            KeyCode::PageUp => f.write_str("PgUp"),
            KeyCode::PageDown => f.write_str("PgDn"),
            other => {
                let name = NAMED
                    .iter()
                    .find(|(_, c)| *c == other)
                    .map_or("?", |(n, _)| n);
                let mut cs = name.chars();
                let first = cs.next().map(|c| c.to_ascii_uppercase());
                write!(f, "{}{}", first.unwrap_or('?'), cs.as_str())
            }
        }
    }
}

use Command::*;

/// The default keymap, as in micro and VS Code.
const DEFAULT: &[(&str, Command)] = &[
    ("ctrl-s", Save),
    ("alt-s", SaveAs),
    ("alt-shift-s", SaveAll),
    ("f5", Reload),
    ("ctrl-q", Quit),
    ("ctrl-o", Open),
    ("ctrl-w", Close),
    ("alt-left", PreviousBuffer),
    ("ctrl-pageup", PreviousBuffer),
    ("alt-right", NextBuffer),
    ("ctrl-pagedown", NextBuffer),
    ("ctrl-z", Undo),
    ("ctrl-y", Redo),
    ("ctrl-f", Find),
    ("f3", FindNext),
    ("ctrl-n", FindNext),
    ("shift-f3", FindPrevious),
    ("ctrl-p", FindPrevious),
    ("ctrl-r", Replace),
    ("ctrl-g", GoTo),
    ("ctrl-a", SelectAll),
    ("ctrl-d", SelectNext),
    ("ctrl-c", Copy),
    ("ctrl-x", Cut),
    ("ctrl-v", Paste),
    ("ctrl-k", CutLine),
    ("alt-shift-down", DuplicateLine),
    ("ctrl-/", ToggleComment),
    ("ctrl-backspace", DeleteWordBack),
    ("alt-backspace", DeleteWordBack),
    ("ctrl-delete", DeleteWordForward),
    ("alt-delete", DeleteWordForward),
    ("ctrl-e", Assistant),
    ("f1", Help),
    ("tab", Indent),
    ("backtab", Dedent),
    ("enter", Newline),
    ("backspace", Backspace),
    ("delete", Delete),
    ("left", Left),
    ("right", Right),
    ("up", Up),
    ("down", Down),
    ("ctrl-left", WordLeft),
    ("ctrl-right", WordRight),
    ("home", LineStart),
    ("end", LineEnd),
    ("pageup", PageUp),
    ("pagedown", PageDown),
    ("ctrl-home", FileStart),
    ("ctrl-end", FileEnd),
    ("esc", Cancel),
];

/// nano's keys, over the default ones.
const NANO: &[(&str, Command)] = &[
    ("ctrl-o", Save),
    ("ctrl-x", Quit),
    ("ctrl-r", Open),
    ("ctrl-w", Find),
    ("alt-w", FindNext),
    ("alt-q", FindPrevious),
    ("ctrl-\\", Replace),
    ("ctrl-_", GoTo),
    ("ctrl-k", CutLine),
    ("ctrl-u", Paste),
    ("alt-6", Copy),
    ("alt-u", Undo),
    ("alt-e", Redo),
    ("ctrl-g", Help),
    ("ctrl-c", Position),
    ("ctrl-a", LineStart),
    ("ctrl-e", LineEnd),
    ("ctrl-y", PageUp),
    ("ctrl-v", PageDown),
    ("alt-\\", FileStart),
    ("alt-/", FileEnd),
    ("alt-a", SelectAll),
    ("ctrl-t", Assistant),
    ("alt-3", ToggleComment),
    ("ctrl-f", Right),
    ("ctrl-b", Left),
    ("ctrl-p", Up),
    ("ctrl-n", Down),
];

/// The keymaps one can choose with `editor.keymap`.
pub const KEYMAPS: &[&str] = crate::settings::KeymapName::NAMES;

/// Chords and their commands.
#[derive(Clone, Debug)]
pub struct Keymap {
    map: HashMap<Chord, Command>,
    /// Where each chord was bound: (layer, place in it), later layers first when keys are
    /// listed — a nano user sees nano's keys first, a user's own binding before either.
    rank: HashMap<Chord, (usize, usize)>,
}

impl Keymap {
    /// The keymap `name` with the user's `bindings` (chord, command or `none`) over it, and
    /// what was wrong with any of them (those are left out).
    pub fn new(name: &str, bindings: &[(String, String)]) -> (Keymap, Vec<String>) {
        let mut km = Keymap {
            map: HashMap::new(),
            rank: HashMap::new(),
        };
        let mut problems = Vec::new();
        let put =
            |km: &mut Keymap, chord: Chord, command: Option<Command>, rank: (usize, usize)| {
                for (n, c) in std::iter::once(chord).chain(chord.aliases()).enumerate() {
                    match command {
                        Some(cmd) => {
                            km.map.insert(c, cmd);
                            // An alias the terminal sends is listed after the key itself.
                            km.rank.insert(c, (rank.0, rank.1 + n * 1000));
                        }
                        None => {
                            km.map.remove(&c);
                        }
                    }
                }
            };
        let layers: &[&[(&str, Command)]] = match name {
            "nano" => &[DEFAULT, NANO],
            _ => &[DEFAULT],
        };
        for (l, layer) in layers.iter().enumerate() {
            for (i, (chord, cmd)) in layer.iter().enumerate() {
                let chord = Chord::parse(chord).expect("the built-in keymaps parse");
                put(&mut km, chord, Some(*cmd), (l, i));
            }
        }
        for (i, (chord, command)) in bindings.iter().enumerate() {
            match check_binding(chord, command) {
                Ok((chord, cmd)) => put(&mut km, chord, cmd, (layers.len(), i)),
                Err(e) => problems.push(format!("editor.keys: {e}")),
            }
        }
        (km, problems)
    }

    /// The command of a key, if it has one. A movement also answers for its key with Shift
    /// (selecting as it moves); the `bool` says so.
    pub fn get(&self, code: KeyCode, mods: KeyModifiers) -> Option<(Command, bool)> {
        let chord = Chord::of(code, mods);
        if let Some(&cmd) = self.map.get(&chord) {
            return Some((cmd, false));
        }
        if chord.mods.contains(KeyModifiers::SHIFT) {
            let plain = Chord {
                code: chord.code,
                mods: chord.mods - KeyModifiers::SHIFT,
            };
            if let Some(&cmd) = self.map.get(&plain).filter(|c| c.moves()) {
                return Some((cmd, true));
            }
        }
        None
    }

    /// The chords bound to `cmd`, the way F1 shows them, most usual first.
    pub fn chords(&self, cmd: Command) -> Vec<String> {
        let mut v: Vec<Chord> = self
            .map
            .iter()
            .filter(|(_, c)| **c == cmd)
            .map(|(k, _)| *k)
            .collect();
        v.sort_by_key(|c| {
            let (layer, place) = self.rank.get(c).copied().unwrap_or_default();
            (std::cmp::Reverse(layer), place)
        });
        v.iter().map(ToString::to_string).collect()
    }

    /// The first chord of `cmd`, if any: for the hint line.
    pub fn chord(&self, cmd: Command) -> Option<String> {
        self.chords(cmd).into_iter().next()
    }
}

/// Checks one binding from `[editor.keys]`: the chord, and the command (`none` unbinds).
pub fn check_binding(chord: &str, command: &str) -> Result<(Chord, Option<Command>), String> {
    let key = Chord::parse(chord)?;
    if matches!(key.code, KeyCode::Char(_)) && key.mods.is_empty() {
        return Err(format!(
            "'{chord}': a character without Ctrl or Alt types itself and cannot be bound"
        ));
    }
    let command = command.trim();
    if command == "none" {
        return Ok((key, None));
    }
    match Command::from_name(command) {
        Some(cmd) => Ok((key, Some(cmd))),
        None => {
            let close = crate::text::suggest(command, Command::ALL.iter().map(|c| c.name()));
            let hint = if close.is_empty() {
                String::new()
            } else {
                format!("did you mean {}? ", crate::text::quote_list(&close))
            };
            Err(format!(
                "'{chord}': unknown command '{command}' ({hint}'man editor' lists them)"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chords_read_and_show_as_users_write_them() {
        let c = Chord::parse("Ctrl-S").unwrap();
        assert_eq!(c, Chord::of(KeyCode::Char('s'), KeyModifiers::CONTROL));
        assert_eq!(c.to_string(), "Ctrl-S");
        let c = Chord::parse("alt-shift-down").unwrap();
        assert_eq!(c.to_string(), "Alt-Shift-Down");
        assert_eq!(Chord::parse("f3").unwrap().to_string(), "F3");
        assert_eq!(
            Chord::parse("shift-a").unwrap(),
            Chord::of(KeyCode::Char('A'), KeyModifiers::SHIFT)
        );
        assert!(Chord::parse("hyper-x").is_err());
        assert!(Chord::parse("ctrl-nothing").is_err());
        assert!(Chord::parse("f13").is_err());
    }

    #[test]
    fn every_built_in_binding_parses_and_every_command_has_a_key() {
        // Commands a keymap leaves without a key, as the editor it follows does.
        let keyless: &[(&str, &[Command])] = &[("default", &[Position]), ("nano", &[Close, Cut])];
        for (name, without) in keyless {
            let (km, problems) = Keymap::new(name, &[]);
            assert!(problems.is_empty());
            let missing: Vec<Command> = Command::ALL
                .iter()
                .copied()
                .filter(|c| km.chord(*c).is_none())
                .collect();
            assert_eq!(&missing, without, "{name}");
        }
        assert_eq!(keyless.len(), KEYMAPS.len());
    }

    #[test]
    fn user_bindings_go_over_the_keymap() {
        let user = vec![
            ("ctrl-d".to_string(), "duplicate_line".to_string()),
            ("ctrl-q".to_string(), "none".to_string()),
            ("ctrl-j".to_string(), "dupicate_line".to_string()),
        ];
        let mut user = user;
        user.push(("x".to_string(), "save".to_string()));
        let (km, problems) = Keymap::new("default", &user);
        let ctrl = KeyModifiers::CONTROL;
        assert_eq!(
            km.get(KeyCode::Char('d'), ctrl),
            Some((DuplicateLine, false))
        );
        assert_eq!(km.get(KeyCode::Char('q'), ctrl), None);
        assert_eq!(problems.len(), 2);
        assert!(
            problems[0].contains("did you mean 'duplicate_line'"),
            "{problems:?}"
        );
        assert!(problems[1].contains("types itself"), "{problems:?}");
        // Shift with a movement key selects.
        assert_eq!(
            km.get(KeyCode::Right, ctrl | KeyModifiers::SHIFT),
            Some((WordRight, true))
        );
        // What terminals send for Ctrl-/ and Ctrl-Backspace.
        assert_eq!(
            km.get(KeyCode::Char('7'), ctrl),
            Some((ToggleComment, false))
        );
        assert_eq!(
            km.get(KeyCode::Char('h'), ctrl),
            Some((DeleteWordBack, false))
        );
    }

    #[test]
    fn the_manual_names_every_command() {
        let page = include_str!("../../manuals/editor.md");
        for cmd in Command::ALL {
            assert!(
                page.contains(&format!("`{}`", cmd.name())),
                "{}",
                cmd.name()
            );
        }
    }

    #[test]
    fn nano_keys_are_nanos() {
        let (km, _) = Keymap::new("nano", &[]);
        let ctrl = KeyModifiers::CONTROL;
        assert_eq!(km.get(KeyCode::Char('x'), ctrl), Some((Quit, false)));
        assert_eq!(km.get(KeyCode::Char('o'), ctrl), Some((Save, false)));
        assert_eq!(km.get(KeyCode::Char('k'), ctrl), Some((CutLine, false)));
        assert_eq!(km.get(KeyCode::Char('u'), ctrl), Some((Paste, false)));
        assert_eq!(km.get(KeyCode::Char('w'), ctrl), Some((Find, false)));
    }
}
