//! ANSI escape sequences for styled text (foundation): ratatui styles and lines turned into
//! SGR sequences, for output that goes to a terminal without a full-screen view (the prompt,
//! `theme show`, answers, the pager's printed pages).

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;

/// Converts one styled line to a string with ANSI SGR escape sequences.
///
/// Each span is styled with the line's style patched by the span's own
/// style. Foreground and background colours (named, [`Color::Indexed`] and
/// [`Color::Rgb`]) and the modifiers bold, dim, italic, underlined, blinking,
/// reversed, hidden and crossed-out are translated. A span whose style
/// differs from the previous one starts with a reset, and a line that emitted
/// any style ends with `ESC[0m`, so styles never leak into the next line. A
/// line without styles comes out as plain text.
///
/// The text itself is copied verbatim (no newline is added). With
/// `color == false` the result is the plain text of the line.
pub fn line_to_ansi(line: &Line<'_>, color: bool) -> String {
    let mut out = String::new();
    let spans = line
        .spans
        .iter()
        .map(|span| (span.content.as_ref(), line.style.patch(span.style)));
    if color {
        push_ansi(&mut out, spans);
    } else {
        spans.for_each(|(text, _)| out.push_str(text));
    }
    out
}

/// Appends styled segments to `out`, switching SGR attributes between
/// segments as needed and resetting at the end.
pub fn push_ansi<'a>(out: &mut String, segments: impl Iterator<Item = (&'a str, Style)>) {
    let mut active = String::new();
    let mut params = String::new();
    for (text, style) in segments {
        if text.is_empty() {
            continue;
        }
        params.clear();
        sgr_params(&mut params, style);
        if params != active {
            if params.is_empty() {
                out.push_str("\x1b[0m");
            } else if active.is_empty() {
                out.push_str("\x1b[");
                out.push_str(&params);
                out.push('m');
            } else {
                out.push_str("\x1b[0;");
                out.push_str(&params);
                out.push('m');
            }
            std::mem::swap(&mut active, &mut params);
        }
        out.push_str(text);
    }
    if !active.is_empty() {
        out.push_str("\x1b[0m");
    }
}

/// Writes the `;`-separated SGR parameters for `style` (nothing for the
/// default style).
fn sgr_params(out: &mut String, style: Style) {
    const MODIFIERS: [(Modifier, &str); 9] = [
        (Modifier::BOLD, "1"),
        (Modifier::DIM, "2"),
        (Modifier::ITALIC, "3"),
        (Modifier::UNDERLINED, "4"),
        (Modifier::SLOW_BLINK, "5"),
        (Modifier::RAPID_BLINK, "6"),
        (Modifier::REVERSED, "7"),
        (Modifier::HIDDEN, "8"),
        (Modifier::CROSSED_OUT, "9"),
    ];
    let modifiers = style.add_modifier - style.sub_modifier;
    let mut push = |param: &str| {
        if !out.is_empty() {
            out.push(';');
        }
        out.push_str(param);
    };
    for (modifier, code) in MODIFIERS {
        if modifiers.contains(modifier) {
            push(code);
        }
    }
    if let Some(fg) = style.fg {
        push(&color_param(fg, 30));
    }
    if let Some(bg) = style.bg {
        push(&color_param(bg, 40));
    }
}

/// The escape sequence that starts `style` ("" for no style at all).
pub fn sgr(style: Style) -> String {
    let mut params = String::new();
    sgr_params(&mut params, style);
    if params.is_empty() {
        params
    } else {
        format!("\x1b[{params}m")
    }
}

/// The SGR parameter for `color`, with `base` 30 for foreground and 40 for
/// background.
fn color_param(color: Color, base: u16) -> String {
    let code = match color {
        Color::Reset => base + 9,
        Color::Black => base,
        Color::Red => base + 1,
        Color::Green => base + 2,
        Color::Yellow => base + 3,
        Color::Blue => base + 4,
        Color::Magenta => base + 5,
        Color::Cyan => base + 6,
        Color::Gray => base + 7,
        Color::DarkGray => base + 60,
        Color::LightRed => base + 61,
        Color::LightGreen => base + 62,
        Color::LightYellow => base + 63,
        Color::LightBlue => base + 64,
        Color::LightMagenta => base + 65,
        Color::LightCyan => base + 66,
        Color::White => base + 67,
        Color::Indexed(index) => return format!("{};5;{index}", base + 8),
        Color::Rgb(r, g, b) => return format!("{};2;{r};{g};{b}", base + 8),
    };
    code.to_string()
}
