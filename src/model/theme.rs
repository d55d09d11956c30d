//! Themes (model): TOML files that colour the prompt, the line being typed, the pager, the
//! editor and highlighted code. The built-in set is embedded from `themes/`; users add their own in the
//! `themes` directory beside `config.toml`, and a user theme may shadow a built-in one.
//!
//! A theme is a table of styles such as `highlight.command = "bold green"` plus the prompt
//! format. A file is read with the `toml` crate, each field through serde as its type (a
//! [`Style`] of [`Color`]s, a checked format) into [`Styles`] and the theme's other fields.
//! Every theme but the built-in `neon` inherits the fields it leaves out (from `neon` unless
//! it names another with `inherits`), so a user theme can be three lines long. A theme with
//! anything wrong in it is rejected as a whole, with the file, line and field, and the caller
//! keeps the theme it had.

use crate::config::Problem;
use serde::{Deserialize, Deserializer};
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue, ValueDeserializer};

/// The built-in themes: (name, TOML source).
const BUILTIN: &[(&str, &str)] = &[
    ("cyberpunk", include_str!("../../themes/cyberpunk.toml")),
    ("dark", include_str!("../../themes/dark.toml")),
    ("dracula", include_str!("../../themes/dracula.toml")),
    ("gruvbox", include_str!("../../themes/gruvbox.toml")),
    ("light", include_str!("../../themes/light.toml")),
    ("matrix", include_str!("../../themes/matrix.toml")),
    ("monokai", include_str!("../../themes/monokai.toml")),
    ("neon", include_str!("../../themes/neon.toml")),
    ("nord", include_str!("../../themes/nord.toml")),
    ("solarized", include_str!("../../themes/solarized.toml")),
];

pub const DEFAULT: &str = "neon";

/// The syntect themes a theme may name in `syntax.builtin` (syntect's own; a test in
/// `highlight` checks the list against them).
pub const SYNTAX_THEMES: &[&str] = &[
    "base16-ocean.dark",
    "base16-eighties.dark",
    "base16-mocha.dark",
    "base16-ocean.light",
    "InspiredGitHub",
    "Solarized (dark)",
    "Solarized (light)",
];

/// Declares the styles a theme sets, section by section, each with what it colours. Makes
/// [`Styles`] (one struct per section, a field per style, `None` where a theme leaves it
/// out) and [`STYLES`], the list `man themes` and the checks go by.
macro_rules! styles {
    (@key $section:ident $field:ident) => { concat!(stringify!($section), ".", stringify!($field)) };
    (@key $section:ident $field:ident $name:literal) => { concat!(stringify!($section), ".", $name) };
    ($($section:ident: $ty:ident { $($field:ident $(= $name:literal)?: $what:literal,)* })*) => {
        /// Every style a theme sets, by section: `theme.styles.pager.heading`.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct Styles {
            $(pub $section: $ty,)*
        }

        $(
            #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
            pub struct $ty {
                $(#[doc = $what] pub $field: Option<Style>,)*
            }
        )*

        /// Every style a theme sets: (key, what it colours).
        pub const STYLES: &[(&str, &str)] = &[
            $($((styles!(@key $section $field $($name)?), $what),)*)*
        ];

        impl Styles {
            /// The style `key` (one of [`STYLES`]), if set.
            pub fn get(&self, key: &str) -> Option<Style> {
                match key {
                    $($(styles!(@key $section $field $($name)?) => self.$section.$field,)*)*
                    _ => None,
                }
            }

            /// Where style `key` (one of [`STYLES`]) is kept.
            fn slot(&mut self, key: &str) -> Option<&mut Option<Style>> {
                match key {
                    $($(styles!(@key $section $field $($name)?) => Some(&mut self.$section.$field),)*)*
                    _ => None,
                }
            }

            /// These styles over `base`: what these set wins, the rest comes from `base`.
            fn over(self, base: Styles) -> Styles {
                Styles {
                    $($section: $ty {
                        $($field: self.$section.$field.or(base.$section.$field),)*
                    },)*
                }
            }
        }
    };
}

styles! {
    prompt: PromptStyles {
        app: "the program name, {app}",
        cwd: "the working directory, {cwd}",
        status: "the last command's failing status, {status}",
        jobs: "the count of background jobs, {jobs}",
        time: "the clock, {time}",
        user: "the user name, {user}",
        host: "the host name, {host}",
        text: "the literal text of the format",
    }
    highlight: HighlightStyles {
        command: "a known command as it is typed",
        unknown: "an unknown command as it is typed",
        string: "quoted strings",
        variable: "$variables",
        operator: "|, &&, ;, redirections and &",
        comment: "# comments",
        hint: "the suggestion from history after the cursor",
    }
    pager: PagerStyles {
        text: "body text of manual pages",
        title: "a page's title line",
        heading: "section headings",
        subheading: "sub-section headings",
        code: "code blocks that are not highlighted",
        inline: "`inline code`",
        strong: "**bold text**",
        bullet: "list bullets",
        status: "the pager's status bar",
        search_match = "match": "search matches",
        current: "the search match the pager moved to",
    }
    editor: EditorStyles {
        text: "text in the editor (its background is the editor's)",
        line_number: "line numbers",
        current_line: "the line the cursor is on",
        selection: "selected text",
        status: "the editor's status bar",
        search_match = "match": "search matches in the editor",
    }
    ls: LsStyles {
        dir: "directories in ls and tree",
        mount: "directories inside a host mount in ls and tree",
        broken: "broken symlinks in a mount in ls and tree",
        special: "fifos, sockets and devices in a mount in ls and tree",
    }
    grep: GrepStyles {
        file: "file names in grep's output",
        line: "line numbers in grep's output",
        search_match = "match": "matches in grep's output and history search",
    }
    help: HelpStyles {
        heading: "group titles in help and man's list",
    }
    syntax: SyntaxStyles {
        comment: "comments in code",
        string: "string literals",
        keyword: "keywords (let, fn, if, return…)",
        number: "numbers",
        constant: "true, false, null and other constants",
        function: "function names",
        type_name = "type": "type names",
        variable: "variables and parameters",
        operator: "operators",
        key: "keys in TOML, JSON and YAML",
        heading: "headings in Markdown",
        strong: "strong (bold) text in Markdown",
        emphasis: "emphasised (italic) text in Markdown",
        code: "inline code and code blocks in Markdown",
        link: "links in Markdown",
    }
}

/// The other fields: (key, what it is).
pub const TEXTS: &[(&str, &str)] = &[
    (
        "name",
        "the theme's name (informational; the file name is what `theme set` takes)",
    ),
    ("description", "one line shown by `theme list`"),
    (
        "inherits",
        "the theme whose fields this one starts from (default neon)",
    ),
    (
        "prompt.format",
        "the prompt: text with {app} {cwd} {status} {jobs} {time} {user} {host}",
    ),
    (
        "prompt.status_format",
        "what {status} becomes after a failure; {code} is the status",
    ),
    (
        "prompt.jobs_format",
        "what {jobs} becomes while jobs run; {count} is how many",
    ),
    (
        "syntax.builtin",
        "a syntect theme to highlight code with instead of the syntax.* styles",
    ),
];

pub const PROMPT_FIELDS: &[&str] = &["app", "cwd", "status", "jobs", "time", "user", "host"];

/// A terminal colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Color {
    /// One of the 16 colours the terminal's own palette defines (0–7 normal, 8–15 bright).
    Named(u8),
    /// One of the 256 indexed colours.
    Indexed(u8),
    Rgb(u8, u8, u8),
}

const NAMES: &[&str] = &[
    "black", "red", "green", "yellow", "blue", "magenta", "cyan", "white",
];

impl Color {
    fn parse(word: &str) -> Option<Color> {
        let w = word.to_ascii_lowercase();
        if let Some(hex) = w.strip_prefix('#') {
            let digits: Vec<u8> = hex
                .chars()
                .map(|c| c.to_digit(16).map(|d| d as u8))
                .collect::<Option<_>>()?;
            return match digits.as_slice() {
                [r, g, b] => Some(Color::Rgb(r * 17, g * 17, b * 17)),
                [r1, r2, g1, g2, b1, b2] => {
                    Some(Color::Rgb(r1 * 16 + r2, g1 * 16 + g2, b1 * 16 + b2))
                }
                _ => None,
            };
        }
        if let Ok(n) = w.parse::<u8>() {
            return Some(Color::Indexed(n));
        }
        if matches!(w.as_str(), "gray" | "grey" | "bright-black") {
            return Some(Color::Named(8));
        }
        let (bright, base) = match w.strip_prefix("bright-") {
            Some(b) => (true, b),
            None => (false, w.as_str()),
        };
        let i = NAMES.iter().position(|n| *n == base)? as u8;
        Some(Color::Named(if bright { i + 8 } else { i }))
    }

    /// The colour in red, green and blue: the 16 named colours as xterm's default palette
    /// shows them, the 256 by xterm's cube and grey ramp (for faces that are not a
    /// terminal: the web pages).
    pub fn rgb(self) -> (u8, u8, u8) {
        const PALETTE: [(u8, u8, u8); 16] = [
            (0, 0, 0),
            (205, 0, 0),
            (0, 205, 0),
            (205, 205, 0),
            (0, 0, 238),
            (205, 0, 205),
            (0, 205, 205),
            (229, 229, 229),
            (127, 127, 127),
            (255, 0, 0),
            (0, 255, 0),
            (255, 255, 0),
            (92, 92, 255),
            (255, 0, 255),
            (0, 255, 255),
            (255, 255, 255),
        ];
        const STEPS: [u8; 6] = [0, 95, 135, 175, 215, 255];
        match self {
            Color::Rgb(r, g, b) => (r, g, b),
            Color::Named(i) | Color::Indexed(i) if i < 16 => PALETTE[i as usize],
            Color::Indexed(i) if i >= 232 => {
                let v = 8 + (i - 232) * 10;
                (v, v, v)
            }
            Color::Named(_) => PALETTE[15],
            Color::Indexed(i) => {
                let n = i - 16;
                (
                    STEPS[(n / 36) as usize],
                    STEPS[(n / 6 % 6) as usize],
                    STEPS[(n % 6) as usize],
                )
            }
        }
    }

    /// The colour as the terminal will get it: RGB is kept only where the terminal says it
    /// shows 24-bit colour (`COLORTERM`), else it becomes the nearest of the 256 colours.
    fn for_terminal(self) -> Color {
        match self {
            Color::Rgb(r, g, b) if !truecolor() => Color::Indexed(nearest_256(r, g, b)),
            c => c,
        }
    }

    pub fn to_ratatui(self) -> ratatui::style::Color {
        use ratatui::style::Color as C;
        match self.for_terminal() {
            Color::Named(n) => [
                C::Black,
                C::Red,
                C::Green,
                C::Yellow,
                C::Blue,
                C::Magenta,
                C::Cyan,
                C::Gray,
                C::DarkGray,
                C::LightRed,
                C::LightGreen,
                C::LightYellow,
                C::LightBlue,
                C::LightMagenta,
                C::LightCyan,
                C::White,
            ][n as usize & 15],
            Color::Indexed(n) => C::Indexed(n),
            Color::Rgb(r, g, b) => C::Rgb(r, g, b),
        }
    }
}

fn truecolor() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| {
        std::env::var("COLORTERM")
            .map(|v| matches!(v.to_ascii_lowercase().as_str(), "truecolor" | "24bit"))
            .unwrap_or(false)
    })
}

/// The nearest colour of xterm's 6×6×6 cube or grey ramp.
fn nearest_256(r: u8, g: u8, b: u8) -> u8 {
    const STEPS: [u8; 6] = [0, 95, 135, 175, 215, 255];
    let idx = |v: u8| {
        (0..6)
            .min_by_key(|&i| (STEPS[i] as i32 - v as i32).abs())
            .unwrap_or(0)
    };
    let (ri, gi, bi) = (idx(r), idx(g), idx(b));
    let cube = (STEPS[ri], STEPS[gi], STEPS[bi]);
    let dist = |(a, b2, c): (u8, u8, u8)| {
        let d = |x: u8, y: u8| (x as i32 - y as i32).pow(2);
        d(a, r) + d(b2, g) + d(c, b)
    };
    let avg = (r as u32 + g as u32 + b as u32) / 3;
    let gi2 = ((avg.saturating_sub(8)) / 10).min(23) as u8;
    let grey = 8 + gi2 * 10;
    if dist((grey, grey, grey)) < dist(cube) {
        232 + gi2
    } else {
        16 + 36 * ri as u8 + 6 * gi as u8 + bi as u8
    }
}

/// A text style: colours and attributes, written as words: `bold magenta`,
/// `italic #6272a4`, `black on bright-cyan`, `reverse`, `208`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Style {
    pub fg: Option<Color>,
    pub bg: Option<Color>,
    pub bold: bool,
    pub dim: bool,
    pub italic: bool,
    pub underline: bool,
    pub reverse: bool,
}

impl Style {
    pub fn parse(text: &str) -> Result<Style, String> {
        let mut s = Style::default();
        let mut words = text.split_whitespace().peekable();
        while let Some(w) = words.next() {
            match w.to_ascii_lowercase().as_str() {
                "bold" => s.bold = true,
                "dim" => s.dim = true,
                "italic" => s.italic = true,
                "underline" => s.underline = true,
                "reverse" => s.reverse = true,
                "plain" | "none" | "default" => {}
                "on" => {
                    let c = words
                        .next()
                        .ok_or("'on' must be followed by a background colour")?;
                    s.bg = Some(Color::parse(c).ok_or_else(|| bad_word(c))?);
                }
                _ => {
                    if s.fg.is_some() {
                        return Err(format!(
                            "two foreground colours in '{text}' (write 'on COLOUR' for a background)"
                        ));
                    }
                    s.fg = Some(Color::parse(w).ok_or_else(|| bad_word(w))?);
                }
            }
        }
        Ok(s)
    }

    /// This style laid over `base`: what this one sets wins, the rest comes from `base`.
    pub fn over(self, base: Style) -> Style {
        Style {
            fg: self.fg.or(base.fg),
            bg: self.bg.or(base.bg),
            bold: self.bold || base.bold,
            dim: self.dim || base.dim,
            italic: self.italic || base.italic,
            underline: self.underline || base.underline,
            reverse: self.reverse || base.reverse,
        }
    }

    /// The ANSI escape that starts this style ("" for plain text).
    pub fn ansi(&self) -> String {
        crate::ansi::sgr(self.to_ratatui())
    }

    /// `text` in this style when `on`, else as it is.
    pub fn paint(&self, on: bool, text: &str) -> String {
        let code = self.ansi();
        if !on || code.is_empty() || text.is_empty() {
            return text.to_string();
        }
        format!("{code}{text}\x1b[0m")
    }

    pub fn to_ratatui(&self) -> ratatui::style::Style {
        use ratatui::style::Modifier;
        let mut s = ratatui::style::Style::default();
        if let Some(c) = self.fg {
            s = s.fg(c.to_ratatui());
        }
        if let Some(c) = self.bg {
            s = s.bg(c.to_ratatui());
        }
        for (on, m) in [
            (self.bold, Modifier::BOLD),
            (self.dim, Modifier::DIM),
            (self.italic, Modifier::ITALIC),
            (self.underline, Modifier::UNDERLINED),
            (self.reverse, Modifier::REVERSED),
        ] {
            if on {
                s = s.add_modifier(m);
            }
        }
        s
    }
}

fn bad_word(w: &str) -> String {
    format!(
        "unknown colour or attribute '{w}': use a colour name (red, bright-cyan, gray…), \
         #rrggbb, a number from 0 to 255, 'on COLOUR', or bold, dim, italic, underline, reverse"
    )
}

/// A style is written as its words: `style = "bold magenta"`.
impl<'de> Deserialize<'de> for Style {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Style, D::Error> {
        let words = std::borrow::Cow::<str>::deserialize(d)?;
        Style::parse(&words).map_err(serde::de::Error::custom)
    }
}

/// A colour is written as a name, `#rrggbb` or a number from 0 to 255.
impl<'de> Deserialize<'de> for Color {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Color, D::Error> {
        let word = std::borrow::Cow::<str>::deserialize(d)?;
        Color::parse(&word).ok_or_else(|| serde::de::Error::custom(bad_word(&word)))
    }
}

/// Where a theme comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Builtin,
    User(PathBuf),
}

impl Origin {
    /// The file name to show in messages.
    pub fn file(&self, name: &str) -> PathBuf {
        match self {
            Origin::Builtin => PathBuf::from(format!("themes/{name}.toml (built in)")),
            Origin::User(p) => p.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Theme {
    pub name: String,
    pub description: String,
    pub origin: Origin,
    pub prompt_format: String,
    pub status_format: String,
    pub jobs_format: String,
    /// A syntect theme that highlights code instead of the `syntax.*` styles.
    pub syntax_builtin: Option<String>,
    /// The user's files this theme was read from (itself and what it inherits), so a
    /// change to them can be noticed.
    pub files: Vec<PathBuf>,
    /// Its styles, this theme's own over those it inherits.
    pub styles: Styles,
}

/// What a theme could not load for: every problem, each with file, line and field.
#[derive(Debug)]
pub struct ThemeError(pub Vec<Problem>);

impl std::fmt::Display for ThemeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<String> = self.0.iter().map(|p| p.to_string()).collect();
        write!(f, "{}", lines.join("\n"))
    }
}

impl std::error::Error for ThemeError {}

/// The directory user themes live in, beside `config.toml`.
pub fn user_dir(config_file: &Path) -> PathBuf {
    config_file
        .parent()
        .unwrap_or(Path::new("."))
        .join("themes")
}

/// Whether `name` can name a theme file (letters, digits, `-` and `_`).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    BUILTIN.iter().map(|(n, _)| *n)
}

pub fn builtin_source(name: &str) -> Option<&'static str> {
    BUILTIN.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// Every theme name, built-in and user, sorted, with its origin.
pub fn available(user_dir: &Path) -> Vec<(String, Origin)> {
    let mut out: Vec<(String, Origin)> = builtin_names()
        .map(|n| (n.to_string(), Origin::Builtin))
        .collect();
    if let Ok(entries) = std::fs::read_dir(user_dir) {
        for e in entries.flatten() {
            let path = e.path();
            let Some(stem) = path
                .extension()
                .filter(|x| *x == "toml")
                .and(path.file_stem())
                .and_then(|s| s.to_str())
            else {
                continue;
            };
            if !valid_name(stem) {
                continue;
            }
            out.retain(|(n, _)| n != stem);
            out.push((stem.to_string(), Origin::User(path.clone())));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The TOML source of theme `name`: the user's file if there is one, else the built-in.
pub fn source(name: &str, user_dir: &Path) -> Result<(Origin, String), ThemeError> {
    let one = |message: String| {
        ThemeError(vec![Problem {
            file: PathBuf::from(name),
            line: 0,
            col: 0,
            message,
        }])
    };
    if !valid_name(name) {
        return Err(one(format!(
            "'{name}' is not a theme name (letters, digits, - and _ only)"
        )));
    }
    let path = user_dir.join(format!("{name}.toml"));
    match crate::config::read_small(&path) {
        Ok(Some(bytes)) => {
            return match String::from_utf8(bytes) {
                Ok(text) => Ok((Origin::User(path), text)),
                Err(_) => Err(ThemeError(vec![Problem {
                    file: path,
                    line: 1,
                    col: 1,
                    message: "the theme file is not valid UTF-8".into(),
                }])),
            }
        }
        Err(e) => {
            return Err(ThemeError(vec![Problem {
                file: path,
                line: 1,
                col: 1,
                message: format!("cannot read the theme: {e}"),
            }]))
        }
        Ok(None) => {}
    }
    match builtin_source(name) {
        Some(src) => Ok((Origin::Builtin, src.to_string())),
        None => {
            let names: Vec<String> = available(user_dir).into_iter().map(|(n, _)| n).collect();
            let close = crate::text::suggest(name, names.iter().map(String::as_str));
            let hint = if close.is_empty() {
                format!("themes: {}", names.join(", "))
            } else {
                format!("did you mean {}?", crate::text::quote_list(&close))
            };
            Err(one(format!("no theme named '{name}'; {hint}")))
        }
    }
}

/// Loads theme `name` (a user theme from `user_dir` or a built-in one), with everything it
/// inherits, checking every field.
pub fn load(name: &str, user_dir: &Path) -> Result<Theme, ThemeError> {
    load_chain(name, Some(user_dir), &mut Vec::new())
}

/// Loads a built-in theme, whatever the user's themes directory holds.
pub fn load_builtin(name: &str) -> Result<Theme, ThemeError> {
    load_chain(name, None, &mut Vec::new())
}

/// Loads `name` after loading what it inherits; `seen` holds the themes inheriting from it.
/// With no `user_dir` only built-in themes are looked at. A built-in theme inherits only
/// from built-in themes, and a user theme that inherits its own name starts from the
/// built-in theme of that name.
fn load_chain(
    name: &str,
    user_dir: Option<&Path>,
    seen: &mut Vec<String>,
) -> Result<Theme, ThemeError> {
    let (origin, text) = match user_dir {
        Some(dir) => source(name, dir)?,
        None => match builtin_source(name) {
            Some(src) => (Origin::Builtin, src.to_string()),
            None => {
                return Err(ThemeError(vec![Problem {
                    file: PathBuf::from(name),
                    line: 0,
                    col: 0,
                    message: format!("no built-in theme named '{name}'"),
                }]))
            }
        },
    };
    let file = origin.file(name);
    let (read, mut problems) = read_file(&file, &text)?;
    let parent = match &read.inherits {
        Some((p, _)) => Some(p.clone()),
        None if origin == Origin::Builtin && name == DEFAULT => None,
        None => Some(DEFAULT.to_string()),
    };
    let mut theme = match parent {
        Some(p) => {
            let at = read.inherits.as_ref().map_or(0, |(_, at)| *at);
            let fail = |m: String| Err(ThemeError(vec![Problem::at(&file, &text, at, m)]));
            // Where the parent is looked for: built-ins only for a built-in theme, and for a
            // user theme inheriting its own name.
            let parent_dir = match origin {
                Origin::Builtin => None,
                Origin::User(_) if p == name => None,
                Origin::User(_) => user_dir,
            };
            if parent_dir.is_none() && builtin_source(&p).is_none() {
                return fail(if p == name {
                    format!("theme '{name}' inherits from itself")
                } else {
                    format!("inherits: no built-in theme named '{p}'")
                });
            }
            let me = format!(
                "{name}{}",
                if origin == Origin::Builtin {
                    " (built in)"
                } else {
                    ""
                }
            );
            let parent_key = format!(
                "{p}{}",
                if parent_dir.is_none() {
                    " (built in)"
                } else {
                    ""
                }
            );
            if seen.contains(&parent_key) || parent_key == me {
                return fail(format!(
                    "themes inherit in a circle: {} → {me} → {parent_key}",
                    seen.join(" → ")
                ));
            }
            if seen.len() >= 8 {
                return fail("themes inherit more than 8 levels deep".to_string());
            }
            seen.push(me);
            let t = load_chain(&p, parent_dir, seen);
            seen.pop();
            t.map_err(|mut e| {
                e.0.insert(
                    0,
                    Problem::at(
                        &file,
                        &text,
                        at,
                        format!("inherits: cannot load theme '{p}'"),
                    ),
                );
                e
            })?
        }
        None => Theme {
            name: String::new(),
            description: String::new(),
            origin: Origin::Builtin,
            prompt_format: "{app}:{cwd}{status}{jobs}> ".into(),
            status_format: " [{code}]".into(),
            jobs_format: " [{count}&]".into(),
            syntax_builtin: None,
            files: Vec::new(),
            styles: Styles::default(),
        },
    };
    theme.name = name.to_string();
    if let Origin::User(p) = &origin {
        theme.files.push(p.clone());
    }
    theme.origin = origin;
    theme.description = read.description.unwrap_or_default();
    if let Some(f) = read.prompt_format {
        theme.prompt_format = f;
    }
    if let Some(f) = read.status_format {
        theme.status_format = f;
    }
    if let Some(f) = read.jobs_format {
        theme.jobs_format = f;
    }
    if let Some(b) = read.syntax_builtin {
        theme.syntax_builtin = b;
    }
    theme.styles = read.styles.over(theme.styles);
    if problems.is_empty() {
        Ok(theme)
    } else {
        problems.sort_by_key(|p| (p.line, p.col));
        Err(ThemeError(problems))
    }
}

/// What one theme file sets, each field read as its type and checked; `None` where the
/// file leaves a field out.
#[derive(Debug, Default)]
struct ThemeFile {
    description: Option<String>,
    /// The theme named by `inherits`, and the byte offset of the name in the file.
    inherits: Option<(String, usize)>,
    prompt_format: Option<String>,
    status_format: Option<String>,
    jobs_format: Option<String>,
    /// `Some(None)` when the file sets `syntax.builtin = ""`.
    syntax_builtin: Option<Option<String>>,
    styles: Styles,
}

/// Reads theme file `file` holding `text`: the fields it sets, and every problem with them
/// (with line and field). A file that is not TOML is one problem, its first.
fn read_file(file: &Path, text: &str) -> Result<(ThemeFile, Vec<Problem>), ThemeError> {
    let table = DeTable::parse(text).map_err(|e| {
        ThemeError(vec![Problem::at(
            file,
            text,
            e.span().map_or(0, |s| s.start),
            e.message().trim(),
        )])
    })?;
    let mut read = ThemeFile::default();
    let mut problems = Vec::new();
    read_table(table.get_ref(), "", &mut read, &mut problems, file, text);
    Ok((read, problems))
}

/// Reads the fields of `table` (named under `prefix`) into `out`.
fn read_table(
    table: &DeTable<'_>,
    prefix: &str,
    out: &mut ThemeFile,
    problems: &mut Vec<Problem>,
    file: &Path,
    text: &str,
) {
    for (_, full, key_at, value) in crate::config::entries(table, prefix) {
        let at = value.span().start;
        let problem = |m: &str| Problem::at(file, text, at, format!("{full}: {m}"));
        match value.get_ref() {
            DeValue::Table(t) => {
                read_table(t, &full, out, problems, file, text);
                continue;
            }
            DeValue::String(_) => {}
            _ => {
                problems.push(problem("expected a string"));
                continue;
            }
        }
        let de = || ValueDeserializer::from(value.clone());
        let string = || String::deserialize(de()).map_err(|e| e.message().to_string());
        let format =
            |allowed: &[&str]| string().and_then(|f| check_format(&f, allowed).map(|()| f));
        let done = match full.as_str() {
            "name" => Ok(()),
            "inherits" => string().map(|p| out.inherits = Some((p, at))),
            // Shown on the terminal by `theme list` and `preview`: no control characters.
            "description" => string()
                .map(|d| out.description = Some(d.chars().filter(|c| !c.is_control()).collect())),
            "prompt.format" => format(PROMPT_FIELDS).map(|f| out.prompt_format = Some(f)),
            "prompt.status_format" => format(&["code"]).map(|f| out.status_format = Some(f)),
            "prompt.jobs_format" => format(&["count"]).map(|f| out.jobs_format = Some(f)),
            "syntax.builtin" => string()
                .and_then(|b| match b.as_str() {
                    "" => Ok(None),
                    b if SYNTAX_THEMES.contains(&b) => Ok(Some(b.to_string())),
                    b => Err(format!(
                        "no built-in syntax theme '{b}'; there are: {}",
                        SYNTAX_THEMES.join(", ")
                    )),
                })
                .map(|b| out.syntax_builtin = Some(b)),
            key => match out.styles.slot(key) {
                Some(slot) => Style::deserialize(de())
                    .map(|s| *slot = Some(s))
                    .map_err(|e| e.message().to_string()),
                None => {
                    let close = crate::text::suggest(
                        key,
                        STYLES
                            .iter()
                            .map(|(s, _)| *s)
                            .chain(TEXTS.iter().map(|(s, _)| *s)),
                    );
                    let m = if close.is_empty() {
                        "unknown field; 'man themes' lists them all".to_string()
                    } else {
                        format!(
                            "unknown field; did you mean {}?",
                            crate::text::quote_list(&close)
                        )
                    };
                    problems.push(Problem::at(file, text, key_at, format!("{full}: {m}")));
                    continue;
                }
            },
        };
        if let Err(m) = done {
            problems.push(problem(&m));
        }
    }
}

/// Checks that `format` uses only the placeholders `allowed` (`{{` and `}}` are literal
/// braces; a lone brace is an error).
pub fn check_format(format: &str, allowed: &[&str]) -> Result<(), String> {
    for piece in split_format(format)? {
        if let Piece::Field(f) = piece {
            if !allowed.contains(&f) {
                return Err(format!(
                    "unknown placeholder {{{f}}}; use {}",
                    allowed
                        .iter()
                        .map(|a| format!("{{{a}}}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                ));
            }
        }
    }
    Ok(())
}

enum Piece<'a> {
    Text(&'a str),
    Field(&'a str),
}

/// Splits a format into literal text and `{placeholder}`s.
fn split_format(format: &str) -> Result<Vec<Piece<'_>>, String> {
    const LONE: &str = "a lone { or } (write {{ or }} for a literal brace)";
    let mut out = Vec::new();
    let mut rest = format;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("{{") {
            out.push(Piece::Text("{"));
            rest = r;
        } else if let Some(r) = rest.strip_prefix("}}") {
            out.push(Piece::Text("}"));
            rest = r;
        } else if let Some(r) = rest.strip_prefix('{') {
            let end = r.find(['}', '{']).filter(|&i| r[i..].starts_with('}'));
            let end = end.ok_or_else(|| LONE.to_string())?;
            out.push(Piece::Field(&r[..end]));
            rest = &r[end + 1..];
        } else if rest.starts_with('}') {
            return Err(LONE.to_string());
        } else {
            let end = rest.find(['{', '}']).unwrap_or(rest.len());
            out.push(Piece::Text(&rest[..end]));
            rest = &rest[end..];
        }
    }
    Ok(out)
}

/// Fills in a format's placeholders with `value`, leaving unknown ones out.
fn fill(format: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    for piece in split_format(format).unwrap_or_default() {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Field(f) => out.extend(value(f)),
        }
    }
    out
}

/// What the prompt shows.
pub struct PromptInfo<'a> {
    pub cwd: &'a str,
    pub status: i32,
    pub jobs: usize,
}

fn host_name() -> String {
    crate::os::hostname()
}

impl Theme {
    /// The style for `key` (one of [`STYLES`]); plain when the theme leaves it out, but for
    /// the Markdown styles added later, which a theme made before them takes from their
    /// nearest older kin.
    pub fn style(&self, key: &str) -> Style {
        if let Some(s) = self.styles.get(key) {
            return s;
        }
        let kin = match key {
            "syntax.heading" => "syntax.keyword",
            "syntax.code" => "syntax.string",
            "syntax.link" => "syntax.function",
            _ => return Style::default(),
        };
        self.styles.get(kin).unwrap_or_default()
    }

    /// The prompt as (plain text, coloured text). `format` overrides the theme's format.
    pub fn prompt(&self, format: Option<&str>, info: &PromptInfo) -> (String, String) {
        let mut plain = String::new();
        let mut colored = String::new();
        for (key, text) in self.prompt_parts(format, info) {
            plain.push_str(&text);
            colored.push_str(&self.style(key).paint(true, &text));
        }
        (plain, colored)
    }

    /// The prompt as pieces of text, each with the style key that colours it.
    pub fn prompt_parts(
        &self,
        format: Option<&str>,
        info: &PromptInfo,
    ) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        // Formats are checked when they are loaded or set, so an error here cannot happen;
        // an unchecked one shows nothing rather than garbage.
        for piece in split_format(format.unwrap_or(&self.prompt_format)).unwrap_or_default() {
            let part = match piece {
                Piece::Text(t) => ("prompt.text", t.to_string()),
                Piece::Field("app") => ("prompt.app", "valyxo".to_string()),
                Piece::Field("cwd") => ("prompt.cwd", crate::text::escape(info.cwd).into_owned()),
                Piece::Field("status") if info.status != 0 => (
                    "prompt.status",
                    fill(&self.status_format, |_| Some(info.status.to_string())),
                ),
                Piece::Field("jobs") if info.jobs > 0 => (
                    "prompt.jobs",
                    fill(&self.jobs_format, |_| Some(info.jobs.to_string())),
                ),
                Piece::Field("time") => (
                    "prompt.time",
                    chrono::Local::now().format("%H:%M:%S").to_string(),
                ),
                Piece::Field("user") => ("prompt.user", std::env::var("USER").unwrap_or_default()),
                Piece::Field("host") => ("prompt.host", host_name()),
                Piece::Field(_) => continue,
            };
            if !part.1.is_empty() {
                out.push(part);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_colour_has_its_rgb() {
        use super::Color;
        assert_eq!(Color::Rgb(1, 2, 3).rgb(), (1, 2, 3));
        assert_eq!(Color::Named(1).rgb(), (205, 0, 0));
        assert_eq!(Color::Indexed(9).rgb(), (255, 0, 0));
        assert_eq!(Color::Indexed(16).rgb(), (0, 0, 0));
        assert_eq!(Color::Indexed(196).rgb(), (255, 0, 0));
        assert_eq!(Color::Indexed(231).rgb(), (255, 255, 255));
        assert_eq!(Color::Indexed(232).rgb(), (8, 8, 8));
        assert_eq!(Color::Indexed(255).rgb(), (238, 238, 238));
        // The cube's colours come back as the nearest of the 256 to themselves.
        for i in 16..=255u8 {
            let (r, g, b) = Color::Indexed(i).rgb();
            assert_eq!(super::nearest_256(r, g, b), i, "{i}");
        }
    }

    use super::*;

    fn none() -> PathBuf {
        PathBuf::from("/nonexistent/valyxo-themes")
    }

    #[test]
    fn every_builtin_theme_loads_and_sets_every_style() {
        let names: Vec<&str> = builtin_names().collect();
        for want in [
            "neon",
            "dark",
            "light",
            "monokai",
            "dracula",
            "nord",
            "solarized",
            "gruvbox",
            "cyberpunk",
            "matrix",
        ] {
            assert!(names.contains(&want), "{want} is missing");
        }
        for name in names {
            let t = load(name, &none()).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!t.description.is_empty(), "{name} has no description");
            // Each built-in theme is complete on its own, not only through inheritance.
            let src = builtin_source(name).unwrap();
            let (own, problems) = read_file(Path::new(name), src).unwrap();
            assert_eq!(problems, vec![], "{name}");
            for (key, _) in STYLES {
                assert!(own.styles.get(key).is_some(), "{name} does not set {key}");
                assert_eq!(t.styles.get(key), own.styles.get(key), "{name}: {key}");
            }
        }
    }

    #[test]
    fn styles_parse_and_render() {
        let s = Style::parse("bold magenta on #102030").unwrap();
        assert!(s.bold);
        assert_eq!(s.fg, Some(Color::Named(5)));
        assert_eq!(s.bg, Some(Color::Rgb(0x10, 0x20, 0x30)));
        assert_eq!(Style::parse("bright-cyan").unwrap().ansi(), "\x1b[96m");
        assert_eq!(
            Style::parse("208 italic").unwrap().ansi(),
            "\x1b[3;38;5;208m"
        );
        assert_eq!(Style::parse("").unwrap().ansi(), "");
        assert!(Style::parse("pnk").unwrap_err().contains("'pnk'"));
        assert!(Style::parse("red blue").is_err());
        assert!(Style::parse("red on").is_err());
        assert_eq!(Color::parse("#abc"), Some(Color::Rgb(0xaa, 0xbb, 0xcc)));
    }

    proptest::proptest! {
        /// Any text as a prompt format or a style is accepted or refused, never a crash,
        /// and an accepted format renders.
        #[test]
        fn formats_and_styles_never_panic(format in "(\\PC|\\{|\\}|\\{cwd\\}|\\{status\\}){0,40}") {
            let t = load_builtin("neon").unwrap();
            if check_format(&format, PROMPT_FIELDS).is_ok() {
                let info = PromptInfo { cwd: "~", status: 1, jobs: 2 };
                let (plain, _) = t.prompt(Some(&format), &info);
                // Placeholders become short values; nothing grows without bound.
                proptest::prop_assert!(plain.len() <= format.len() * 8 + 16);
            }
            let _ = Style::parse(&format);
        }
    }

    #[test]
    fn rgb_falls_back_to_the_nearest_of_256() {
        assert_eq!(nearest_256(0, 0, 0), 16);
        assert_eq!(nearest_256(255, 255, 255), 231);
        assert_eq!(nearest_256(255, 0, 0), 196);
        assert_eq!(nearest_256(128, 128, 128), 244);
    }

    #[test]
    fn prompt_placeholders() {
        let t = load("neon", &none()).unwrap();
        let info = PromptInfo {
            cwd: "~/Projects/Main",
            status: 0,
            jobs: 0,
        };
        assert_eq!(t.prompt(None, &info).0, "valyxo:~/Projects/Main> ");
        let info = PromptInfo {
            cwd: "~",
            status: 2,
            jobs: 3,
        };
        assert_eq!(t.prompt(None, &info).0, "valyxo:~ [2] [3&]> ");
        let (plain, colored) = t.prompt(Some("{{{cwd}}} $ "), &info);
        assert_eq!(plain, "{~} $ ");
        assert!(colored.contains('\x1b'));
        assert!(check_format("{cwd} {nope}", PROMPT_FIELDS)
            .unwrap_err()
            .contains("{nope}"));
        assert!(check_format("{cwd", PROMPT_FIELDS).is_err());
        // Braces: doubled ones are literal, lone ones are errors, in any order.
        for ok in ["{{", "}}", "{cwd}}} ", "λ {cwd}❯ ", "»{app}«", ""] {
            assert_eq!(check_format(ok, PROMPT_FIELDS), Ok(()), "{ok:?}");
        }
        for bad in ["}{", "{", "}", "{cwd}}", "{{cwd}", "{c{wd}"] {
            assert!(check_format(bad, PROMPT_FIELDS).is_err(), "{bad:?}");
        }
        let (plain, _) = t.prompt(Some("λ {cwd}❯ "), &info);
        assert_eq!(plain, "λ ~❯ ");
        let mut t2 = t.clone();
        t2.status_format = " {{{code}}}".into();
        t2.jobs_format = "·{count}·".into();
        assert_eq!(t2.prompt(None, &info).0, "valyxo:~ {2}·3·> ");
    }

    #[test]
    fn user_themes_inherit_and_errors_name_file_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("mine.toml"),
            "description = \"mine\"\ninherits = \"nord\"\n[highlight]\ncommand = \"bold #ff0000\"\n",
        )
        .unwrap();
        let t = load("mine", dir.path()).unwrap();
        let nord = load("nord", dir.path()).unwrap();
        assert_eq!(t.style("highlight.command").fg, Some(Color::Rgb(255, 0, 0)));
        assert_eq!(
            t.styles.highlight.command,
            Some(t.style("highlight.command"))
        );
        assert_eq!(t.style("pager.heading"), nord.style("pager.heading"));
        assert_eq!(t.styles.pager, nord.styles.pager);
        assert!(matches!(t.origin, Origin::User(_)));

        std::fs::write(
            dir.path().join("bad.toml"),
            "description = \"bad\"\n[highlight]\ncommand = \"gren\"\ncomand = \"red\"\n[prompt]\nformat = \"{cwd}{oops}> \"\n",
        )
        .unwrap();
        let e = load("bad", dir.path()).unwrap_err().to_string();
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(lines.len(), 3, "{e}");
        assert!(
            lines[0].contains("bad.toml:3:11: highlight.command: unknown colour"),
            "{e}"
        );
        assert!(
            lines[1].contains("bad.toml:4:1: highlight.comand: unknown field; did you mean"),
            "{e}"
        );
        assert!(
            lines[2].contains("bad.toml:6:10: prompt.format: unknown placeholder {oops}"),
            "{e}"
        );

        // A value that is not text, and a colour alone where a style goes.
        std::fs::write(
            dir.path().join("typed.toml"),
            "[pager]\nheading = 3\n[syntax]\nbuiltin = \"nope\"\n[editor]\nselection = \"on #12\"\n",
        )
        .unwrap();
        let e = load("typed", dir.path()).unwrap_err().to_string();
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(lines.len(), 3, "{e}");
        assert!(
            lines[0].contains("typed.toml:2:11: pager.heading: expected a string"),
            "{e}"
        );
        assert!(
            lines[1].contains("typed.toml:4:11: syntax.builtin: no built-in syntax theme 'nope'"),
            "{e}"
        );
        assert!(
            lines[2]
                .contains("typed.toml:6:13: editor.selection: unknown colour or attribute '#12'"),
            "{e}"
        );

        std::fs::write(dir.path().join("syntax.toml"), "[highlight\n").unwrap();
        let e = load("syntax", dir.path()).unwrap_err().to_string();
        assert!(e.contains("syntax.toml:1:"), "{e}");

        std::fs::write(dir.path().join("a.toml"), "inherits = \"b\"\n").unwrap();
        std::fs::write(dir.path().join("b.toml"), "inherits = \"a\"\n").unwrap();
        let e = load("a", dir.path()).unwrap_err().to_string();
        assert!(e.contains("circle"), "{e}");

        // A user theme may shadow a built-in one and inherit from it.
        std::fs::write(
            dir.path().join("neon.toml"),
            "description = \"my neon\"\ninherits = \"neon\"\n[prompt]\nformat = \"{cwd} % \"\n",
        )
        .unwrap();
        let t = load("neon", dir.path()).unwrap();
        assert_eq!(t.description, "my neon");
        assert_eq!(
            t.prompt(
                None,
                &PromptInfo {
                    cwd: "~",
                    status: 0,
                    jobs: 0
                }
            )
            .0,
            "~ % "
        );

        // Built-in themes start from the built-in neon, whatever the user's neon says.
        std::fs::write(dir.path().join("neon.toml"), "inherits = \"dracula\"\n").unwrap();
        let nord = load("nord", dir.path()).unwrap();
        assert_eq!(
            nord.style("pager.heading"),
            load_builtin("nord").unwrap().style("pager.heading")
        );
        std::fs::write(dir.path().join("neon.toml"), "[highlight\n").unwrap();
        assert!(load("dracula", dir.path()).is_ok());
        std::fs::write(dir.path().join("loop.toml"), "inherits = \"loop\"\n").unwrap();
        let e = load("loop", dir.path()).unwrap_err().to_string();
        assert!(e.contains("theme 'loop' inherits from itself"), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");

        let e = load("nrod", dir.path()).unwrap_err().to_string();
        assert!(e.contains("did you mean 'nord'"), "{e}");
        assert!(load("../etc/passwd", dir.path()).is_err());
    }
}
