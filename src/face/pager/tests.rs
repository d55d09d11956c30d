//! The pager's tests: documents, layout, keys, search and drawing on ratatui's `TestBackend`.

use super::*;
use crate::ansi::line_to_ansi;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{MouseEvent, MouseEventKind};
use ratatui::style::{Color, Modifier};
use ratatui::text::Span;
use ratatui::Terminal;

fn test_style() -> PagerStyle {
    PagerStyle {
        status: Style::default().bg(Color::Blue),
        search_match: Style::default().bg(Color::Yellow),
        current_match: Style::default().bg(Color::LightRed),
    }
}

fn pager(lines: Vec<Line<'static>>, width: u16, height: u16) -> Pager {
    Pager::new("man test", lines, &test_style(), true, width, height)
}

fn numbered(count: usize) -> Vec<Line<'static>> {
    (1..=count)
        .map(|i| Line::from(format!("line {i}")))
        .collect()
}

fn doc_line(text: &str) -> DocLine {
    normalize(vec![Line::from(text.to_owned())], true).remove(0)
}

/// The rows of one line as text, continuation indentation included.
fn wrapped(text: &str, width: u16) -> Vec<String> {
    let line = doc_line(text);
    let mut rows = Vec::new();
    wrap_line(&line, width, |start, end, indent| {
        rows.push(format!(
            "{}{}",
            " ".repeat(usize::from(indent)),
            &line.text[start..end]
        ));
    });
    rows
}

fn key(code: KeyCode) -> Event {
    Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn ch(c: char) -> Event {
    key(KeyCode::Char(c))
}

fn ctrl(c: char) -> Event {
    Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

fn wheel(kind: MouseEventKind) -> Event {
    Event::Mouse(MouseEvent {
        kind,
        column: 0,
        row: 0,
        modifiers: KeyModifiers::NONE,
    })
}

#[test]
fn folding_keeps_one_character_for_dotted_i_and_final_sigma() {
    let p = Pager::new(
        "t",
        vec![Line::raw("İstanbul ΣΑΣ"), Line::raw("x")],
        &PagerStyle::default(),
        true,
        40,
        10,
    );
    let mut p = p;
    search(&mut p, '/', "is");
    assert!(
        p.message
            .as_deref()
            .is_none_or(|m| !m.contains("not found")),
        "{:?}",
        p.message
    );
    search(&mut p, '/', "σας");
    assert!(
        p.message
            .as_deref()
            .is_none_or(|m| !m.contains("not found")),
        "{:?}",
        p.message
    );
}

#[test]
fn halfwidth_sound_marks_wrap_as_ratatui_draws_them() {
    // Each "ｶﾞ" is one cluster, as wide as ratatui will draw it.
    let per_row = 20 / usize::from("ｶﾞ".cell_width());
    let text = "ｶﾞ".repeat(30);
    let mut p = Pager::new(
        "t",
        vec![Line::raw(text)],
        &PagerStyle::default(),
        true,
        20,
        12,
    );
    let rows = 30usize.div_ceil(per_row);
    assert_eq!(p.rows.len(), rows);
    let buf = render(&mut p);
    let shown: String = (0..rows as u16)
        .map(|y| screen_row(&buf, y))
        .collect::<String>();
    assert_eq!(shown.matches("ｶﾞ").count(), 30, "{shown:?}");
}

#[test]
fn searching_for_an_accent_marks_the_whole_letter() {
    let mut p = Pager::new(
        "t",
        vec![Line::raw("cafe\u{301} e\u{301}"), Line::raw("x")],
        &PagerStyle {
            search_match: Style::default().add_modifier(Modifier::REVERSED),
            ..PagerStyle::default()
        },
        true,
        20,
        5,
    );
    search(&mut p, '/', "\u{301}");
    let buf = render(&mut p);
    assert_eq!(screen_row(&buf, 0).trim_end(), "cafe\u{301} e\u{301}");
    assert!(
        buf[(3, 0)].modifier.contains(Modifier::REVERSED),
        "the accented e is marked"
    );
    assert!(!buf[(2, 0)].modifier.contains(Modifier::REVERSED));
}

#[test]
fn repaint_keys_and_a_burst_of_resizes() {
    let mut p = Pager::new(
        "t",
        vec![Line::raw("x"); 50],
        &PagerStyle::default(),
        true,
        40,
        10,
    );
    assert_eq!(p.handle_event(&ch('r')), Flow::Repaint);
    let ctrl_l = Event::Key(KeyEvent::new(KeyCode::Char('l'), KeyModifiers::CONTROL));
    assert_eq!(p.handle_event(&ctrl_l), Flow::Repaint);
    // Resizes are only noted; the last one is laid out once.
    for w in 1..200 {
        assert_eq!(p.handle_event(&Event::Resize(w, 10)), Flow::Redraw);
    }
    assert_eq!(p.width, 40);
    assert_eq!(p.pending_size, Some((199, 10)));
}

fn press(pager: &mut Pager, events: &[Event]) {
    for event in events {
        assert_ne!(pager.handle_event(event), Flow::Quit, "{event:?} quit");
    }
    // As the next draw would: lay out for the last size reported.
    if let Some((width, height)) = pager.pending_size.take() {
        pager.resize(width, height);
    }
}

fn search(pager: &mut Pager, prompt: char, query: &str) {
    press(pager, &[ch(prompt)]);
    for c in query.chars() {
        press(pager, &[ch(c)]);
    }
    press(pager, &[key(KeyCode::Enter)]);
}

fn render(pager: &mut Pager) -> Buffer {
    let mut terminal =
        Terminal::new(TestBackend::new(pager.width, pager.height)).expect("test terminal");
    terminal.draw(|frame| pager.draw(frame)).expect("draw");
    terminal.backend().buffer().clone()
}

/// The text of screen row `y`, reading each wide character once.
fn screen_row(buf: &Buffer, y: u16) -> String {
    let mut out = String::new();
    let mut x = 0;
    while x < buf.area.width {
        let symbol = buf[(x, y)].symbol();
        out.push_str(symbol);
        x += symbol.width().max(1) as u16;
    }
    out
}

fn top_line(pager: &Pager) -> usize {
    pager.rows[pager.top].line
}

#[test]
fn wrap_exact_fit_stays_on_one_row() {
    assert_eq!(wrapped("abcdefghij", 10), ["abcdefghij"]);
    assert_eq!(wrapped("abcdefghij", 9), ["abcdefghi", "j"]);
    assert_eq!(wrapped("", 9), [""]);
    // Exactly full rows do not produce an empty trailing row.
    assert_eq!(wrapped("漢字漢字", 4), ["漢字", "漢字"]);
}

#[test]
fn wrap_never_splits_wide_characters() {
    let rows = wrapped("漢字漢字漢", 5);
    assert_eq!(rows, ["漢字", "漢字", "漢"]);
    let rows = wrapped("a漢字", 4);
    assert_eq!(rows, ["a漢", "字"]);
    let rows = wrapped("👍👍👍", 5);
    assert_eq!(rows, ["👍👍", "👍"]);
}

#[test]
fn wrap_keeps_clusters_together() {
    // A combining accent stays with its letter.
    assert_eq!(wrapped("abcde\u{301}f", 5), ["abcde\u{301}", "f"]);
    // A family emoji joined by ZWJ is one two-column glyph.
    let family = "\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}";
    let clustered: Vec<_> = clusters(family).collect();
    assert_eq!(clustered, [(0, family.len(), family.width())]);
    assert_eq!(wrapped(&format!("abc{family}"), 4), ["abc", family]);
    // Skin-tone modifiers belong to the emoji before them.
    let thumb = "\u{1f44d}\u{1f3fd}";
    assert_eq!(clusters(thumb).count(), 1);
    // A variation selector can make a narrow character wide.
    assert_eq!(
        clusters("a\u{2764}\u{fe0f}").collect::<Vec<_>>(),
        [(0, 1, 1), (1, 7, 2)]
    );
}

#[test]
fn wrap_indents_continuation_rows() {
    assert_eq!(
        wrapped("    abcdefghijkl", 10),
        ["    abcdef", "    ghijkl"]
    );
    // Indentation is capped at half the width so text always fits.
    let rows = wrapped(&format!("{}abcdefghijklmnop", " ".repeat(30)), 20);
    let indent = " ".repeat(10);
    assert_eq!(
        rows,
        [
            " ".repeat(20),
            " ".repeat(20),
            format!("{indent}abcdefghij"),
            format!("{indent}klmnop"),
        ]
    );
    // A wide character that would not fit after the indentation starts
    // its row unindented.
    assert_eq!(wrapped(" ab漢", 2), [" a", " b", "漢"]);
}

#[test]
fn wrap_handles_tiny_widths() {
    assert_eq!(wrapped("abc", 1), ["a", "b", "c"]);
    assert_eq!(wrapped("abc", 0), ["a", "b", "c"]);
    // A character wider than the screen gets a row to itself.
    assert_eq!(wrapped("a漢b", 1), ["a", "漢", "b"]);
    assert_eq!(wrapped("  ab", 1), [" ", " ", "a", "b"]);
}

#[test]
fn tabs_are_expanded_and_control_characters_removed() {
    let doc = normalize(
        vec![Line::from(vec![
            Span::raw("a\tb"),
            Span::styled("\tc\x1b[31m", Style::default().fg(Color::Red)),
        ])],
        true,
    );
    assert_eq!(doc[0].text, "a       b       c[31m");
    assert_eq!(
        doc[0].runs,
        [(0, Style::default()), (9, Style::default().fg(Color::Red))]
    );
    assert_eq!(doc_line("\t  x").indent, 10);
}

#[test]
fn scrolling_is_clamped_at_top_and_bottom() {
    let mut p = pager(numbered(100), 20, 11);
    press(&mut p, &[ch('k'), key(KeyCode::Up), ctrl('p'), ch('y')]);
    assert_eq!(p.top, 0);
    press(
        &mut p,
        &[
            ch('j'),
            key(KeyCode::Down),
            key(KeyCode::Enter),
            ctrl('n'),
            ch('e'),
        ],
    );
    assert_eq!(p.top, 5);
    press(&mut p, &[ch('G')]);
    assert_eq!(p.top, 90, "last row at the bottom of the screen");
    press(&mut p, &[ch('j'), key(KeyCode::PageDown), ch(' '), ch('d')]);
    assert_eq!(p.top, 90);
    press(&mut p, &[ch('k')]);
    assert_eq!(p.top, 89);
    press(&mut p, &[ch('g')]);
    assert_eq!(p.top, 0);
    press(&mut p, &[key(KeyCode::End)]);
    assert_eq!(p.top, 90);
    press(&mut p, &[key(KeyCode::Home)]);
    assert_eq!(p.top, 0);
    press(&mut p, &[ch('>')]);
    assert_eq!(p.top, 90);
    press(&mut p, &[ch('<')]);
    assert_eq!(p.top, 0);
}

#[test]
fn page_and_half_page_moves() {
    let mut p = pager(numbered(100), 20, 11);
    press(&mut p, &[ch(' ')]);
    assert_eq!(p.top, 10);
    press(&mut p, &[key(KeyCode::PageDown), ch('f'), ctrl('f')]);
    assert_eq!(p.top, 40);
    press(&mut p, &[ch('b')]);
    assert_eq!(p.top, 30);
    press(&mut p, &[key(KeyCode::PageUp), ctrl('b')]);
    assert_eq!(p.top, 10);
    press(&mut p, &[ch('d')]);
    assert_eq!(p.top, 15);
    press(&mut p, &[ctrl('d')]);
    assert_eq!(p.top, 20);
    press(&mut p, &[ch('u'), ctrl('u')]);
    assert_eq!(p.top, 10);
    press(&mut p, &[ch('b'), ch('b')]);
    assert_eq!(p.top, 0);
    press(&mut p, &[ch('G'), ch('b'), ch(' '), ch(' ')]);
    assert_eq!(p.top, 90);
}

#[test]
fn short_document_never_scrolls() {
    let mut p = pager(numbered(3), 20, 11);
    press(&mut p, &[ch('G'), ch(' '), ch('j')]);
    assert_eq!(p.top, 0);
    assert!(
        p.position_text().ends_with("(END)"),
        "{}",
        p.position_text()
    );
}

#[test]
fn mouse_wheel_scrolls_three_rows() {
    let mut p = pager(numbered(20), 20, 11);
    press(&mut p, &[wheel(MouseEventKind::ScrollDown)]);
    assert_eq!(p.top, 3);
    press(&mut p, &[wheel(MouseEventKind::ScrollDown)]);
    assert_eq!(p.top, 6);
    press(&mut p, &[wheel(MouseEventKind::ScrollUp)]);
    assert_eq!(p.top, 3);
    press(&mut p, &vec![wheel(MouseEventKind::ScrollDown); 5]);
    assert_eq!(p.top, 10, "clamped at the bottom");
    press(&mut p, &vec![wheel(MouseEventKind::ScrollUp); 5]);
    assert_eq!(p.top, 0, "clamped at the top");
    assert_eq!(
        p.handle_event(&wheel(MouseEventKind::Moved)),
        Flow::Idle,
        "mouse motion does not redraw"
    );
}

#[test]
fn resize_rewraps_and_keeps_the_top_line() {
    let lines: Vec<Line<'static>> = (0..60)
        .map(|i| Line::from(format!("{i:02} {}", "word ".repeat(8))))
        .collect();
    let mut p = pager(lines, 60, 11);
    assert_eq!(p.rows.len(), 60);
    press(&mut p, &[ch(' '), ch(' '), ch(' ')]);
    assert_eq!(top_line(&p), 30);
    press(&mut p, &[Event::Resize(20, 11)]);
    assert_eq!(p.rows.len(), 60 * 3);
    assert_eq!(top_line(&p), 30);
    assert_eq!(p.rows[p.top].start, 0);
    // Scroll into a continuation row, then widen: the text at the top
    // stays in view.
    press(&mut p, &[ch('j')]);
    assert_eq!((top_line(&p), p.rows[p.top].start), (30, 20));
    press(&mut p, &[Event::Resize(60, 11)]);
    assert_eq!((top_line(&p), p.top), (30, 30));
    // A taller terminal near the end clamps the top.
    press(&mut p, &[ch('G'), Event::Resize(60, 31)]);
    assert_eq!(p.top, 30);
    // draw() picks up a size change it was not told about.
    let mut terminal = Terminal::new(TestBackend::new(20, 11)).unwrap();
    terminal.draw(|frame| p.draw(frame)).unwrap();
    assert_eq!((p.width, p.rows.len()), (20, 180));
}

fn search_doc() -> Vec<Line<'static>> {
    (0..100)
        .map(|i| {
            Line::from(match i {
                10 => "a foo here".to_owned(),
                40 => "FOO loud".to_owned(),
                70 => "Foo title".to_owned(),
                _ => format!("filler {i}"),
            })
        })
        .collect()
}

#[test]
fn search_forward_from_the_top_of_the_screen() {
    let mut p = pager(search_doc(), 40, 11);
    search(&mut p, '/', "foo");
    assert_eq!(p.top, 10);
    assert_eq!(p.search.as_ref().unwrap().current, Some(0));
    assert!(
        p.status_text(40).contains("match 1/3"),
        "{}",
        p.status_text(40)
    );
    // A new search starts at the current top, not at the start.
    press(&mut p, &[ch('g'), ch(' '), ch(' '), ch(' ')]);
    assert_eq!(p.top, 30);
    search(&mut p, '/', "foo");
    assert_eq!(p.top, 40);
    assert_eq!(p.search.as_ref().unwrap().current, Some(1));
    // Matches on the top row itself count.
    search(&mut p, '/', "foo");
    assert_eq!(p.top, 40);
    assert_eq!(p.message, None);
    // Below the last match the search wraps to the first.
    press(&mut p, &[ch('G')]);
    search(&mut p, '/', "foo");
    assert_eq!(p.top, 10);
    assert_eq!(p.message.as_deref(), Some("search wrapped"));
}

#[test]
fn n_and_shift_n_wrap_around() {
    let mut p = pager(search_doc(), 40, 11);
    search(&mut p, '/', "foo");
    press(&mut p, &[ch('n')]);
    assert_eq!(p.top, 40);
    press(&mut p, &[ch('n')]);
    assert_eq!(p.top, 70);
    assert_eq!(p.message, None);
    press(&mut p, &[ch('n')]);
    assert_eq!(p.top, 10);
    assert_eq!(p.message.as_deref(), Some("search wrapped"));
    assert!(p.status_text(80).contains("search wrapped"));
    render(&mut p);
    assert_eq!(p.message, None, "messages last one redraw");
    press(&mut p, &[ch('N')]);
    assert_eq!(p.top, 70);
    assert_eq!(p.message.as_deref(), Some("search wrapped"));
    press(&mut p, &[ch('N')]);
    assert_eq!(p.top, 40);
    assert!(p.status_text(80).contains("match 2/3"));
}

#[test]
fn n_continues_from_the_screen_after_scrolling_away() {
    let mut p = pager(search_doc(), 40, 11);
    search(&mut p, '/', "foo");
    press(&mut p, &[ch('G')]);
    assert_eq!(p.top, 90);
    press(&mut p, &[ch('N')]);
    assert_eq!(p.top, 70);
    assert_eq!(p.search.as_ref().unwrap().current, Some(2));
}

#[test]
fn backward_search_reverses_n() {
    let mut p = pager(search_doc(), 40, 11);
    press(&mut p, &[ch('G')]);
    search(&mut p, '?', "foo");
    assert_eq!(p.top, 70);
    press(&mut p, &[ch('n')]);
    assert_eq!(p.top, 40);
    press(&mut p, &[ch('N')]);
    assert_eq!(p.top, 70);
    press(&mut p, &[ch('n'), ch('n')]);
    assert_eq!(p.top, 10);
    press(&mut p, &[ch('n')]);
    assert_eq!(p.top, 70);
    assert_eq!(p.message.as_deref(), Some("search wrapped"));
    // From the top, the match before the screen is the last one.
    press(&mut p, &[ch('g')]);
    search(&mut p, '?', "foo");
    assert_eq!(p.top, 70);
    assert_eq!(p.message.as_deref(), Some("search wrapped"));
}

#[test]
fn search_not_found_keeps_the_view() {
    let mut p = pager(search_doc(), 40, 11);
    press(&mut p, &[ch(' ')]);
    search(&mut p, '/', "zzz");
    assert_eq!(p.top, 10);
    assert_eq!(p.message.as_deref(), Some("Pattern not found: zzz"));
    let buf = render(&mut p);
    assert!(screen_row(&buf, 10).contains("Pattern not found: zzz"));
    let buf = render(&mut p);
    assert!(!screen_row(&buf, 10).contains("Pattern not found"));
    press(&mut p, &[ch('n')]);
    assert_eq!(p.top, 10);
    assert_eq!(p.message.as_deref(), Some("Pattern not found: zzz"));
}

#[test]
fn smart_case() {
    let doc = normalize(search_doc(), true);
    assert_eq!(find_matches(&doc, "foo").len(), 3);
    let exact = find_matches(&doc, "Foo");
    assert_eq!(
        exact,
        [Match {
            line: 70,
            start: 0,
            end: 3
        }]
    );
    assert_eq!(find_matches(&doc, "FOO")[0].line, 40);
    assert_eq!(find_matches(&doc, "FOO").len(), 1);
}

#[test]
fn case_folding_maps_back_to_original_bytes() {
    let doc = normalize(
        vec![
            Line::from("xÄBÇ äbç"),
            Line::from("\u{130}x"),
            Line::from("cafe\u{301} cafe"),
        ],
        true,
    );
    let found = find_matches(&doc, "äbç");
    assert_eq!(found.len(), 2);
    assert_eq!(&doc[0].text[found[0].start..found[0].end], "ÄBÇ");
    assert_eq!(&doc[0].text[found[1].start..found[1].end], "äbç");
    // U+0130 lowercases to two characters; a match of the first one
    // covers the whole original character.
    let found = find_matches(&doc, "i");
    assert_eq!((found[0].line, found[0].start, found[0].end), (1, 0, 2));
    // A match takes in the combining accent after it.
    let found = find_matches(&doc, "cafe");
    assert_eq!(&doc[2].text[found[0].start..found[0].end], "cafe\u{301}");
    assert_eq!(&doc[2].text[found[1].start..found[1].end], "cafe");
    // Non-overlapping, left to right.
    let doc = normalize(vec![Line::from("aaaa")], true);
    assert_eq!(find_matches(&doc, "aa").len(), 2);
}

#[test]
fn prompt_editing_and_repeat() {
    let mut p = pager(search_doc(), 40, 11);
    press(&mut p, &[ch('/'), ch('x'), key(KeyCode::Esc)]);
    assert!(p.prompt.is_none() && p.search.is_none(), "Esc cancels");
    press(&mut p, &[ch('/'), ch('x'), key(KeyCode::Backspace)]);
    assert_eq!(p.prompt.as_ref().unwrap().text.text(), "");
    press(&mut p, &[key(KeyCode::Backspace)]);
    assert!(p.prompt.is_none(), "Backspace on an empty prompt cancels");
    press(&mut p, &[ch('/'), key(KeyCode::Enter)]);
    assert_eq!(p.message.as_deref(), Some("No previous search"));
    // q typed into the prompt is text, not quit.
    press(&mut p, &[ch('/'), ch('q'), ch('u'), ctrl('u'), ch('f')]);
    assert_eq!(p.prompt.as_ref().unwrap().text.text(), "f");
    press(
        &mut p,
        &[
            ch('x'),
            key(KeyCode::Backspace),
            ch('y'),
            ctrl('h'),
            ch('o'),
            ch('o'),
        ],
    );
    press(&mut p, &[key(KeyCode::Enter)]);
    assert_eq!(p.top, 10);
    // An empty search repeats the last one.
    search(&mut p, '/', "");
    assert_eq!(p.top, 40);
    search(&mut p, '?', "");
    assert_eq!(p.top, 10);
    assert!(p.search.as_ref().unwrap().backward);
}

#[test]
fn prompt_is_drawn_with_cursor() {
    let mut p = pager(numbered(50), 20, 5);
    press(&mut p, &[ch('?'), ch('a'), ch('b')]);
    let mut terminal = Terminal::new(TestBackend::new(20, 5)).unwrap();
    terminal.draw(|frame| p.draw(frame)).unwrap();
    assert_eq!(screen_row(terminal.backend().buffer(), 4).trim_end(), "?ab");
    terminal.backend_mut().assert_cursor_position((3, 4));
    // A long query shows its end.
    for _ in 0..30 {
        press(&mut p, &[ch('z')]);
    }
    press(&mut p, &[ch('!')]);
    terminal.draw(|frame| p.draw(frame)).unwrap();
    assert_eq!(
        screen_row(terminal.backend().buffer(), 4),
        format!("{}! ", "z".repeat(18))
    );
    terminal.backend_mut().assert_cursor_position((19, 4));
    // Home shows the start, the cursor on the first character of the query.
    press(&mut p, &[key(KeyCode::Home)]);
    terminal.draw(|frame| p.draw(frame)).unwrap();
    assert_eq!(
        screen_row(terminal.backend().buffer(), 4),
        format!("?ab{}", "z".repeat(17))
    );
    terminal.backend_mut().assert_cursor_position((1, 4));
}

#[test]
fn the_prompt_is_edited_where_the_cursor_is() {
    let mut p = pager(search_doc(), 40, 11);
    press(
        &mut p,
        &[
            ch('/'),
            ch('f'),
            ch('o'),
            key(KeyCode::Left),
            ch('o'),
            key(KeyCode::Home),
            key(KeyCode::Delete),
            ch('f'),
            key(KeyCode::End),
            ch('x'),
            key(KeyCode::Backspace),
        ],
    );
    assert_eq!(p.prompt.as_ref().unwrap().text.text(), "foo");
    // Backspace at the start of a query that is not empty leaves the prompt open.
    press(&mut p, &[key(KeyCode::Home), key(KeyCode::Backspace)]);
    assert_eq!(p.prompt.as_ref().unwrap().text.text(), "foo");
    press(&mut p, &[key(KeyCode::Enter)]);
    assert_eq!(p.top, 10);
}

/// A long line with `foo` on a continuation row and straddling a wrap.
fn wrapped_search_doc() -> Vec<Line<'static>> {
    let mut long = "x".repeat(50);
    long.replace_range(12..15, "foo");
    long.replace_range(38..41, "foo");
    let mut lines = vec![Line::from("-"); 30];
    lines.push(Line::from(long));
    lines.extend(vec![Line::from("-"); 30]);
    lines
}

#[test]
fn n_moves_across_wrapped_rows() {
    let mut p = pager(wrapped_search_doc(), 10, 6);
    search(&mut p, '/', "foo");
    assert_eq!((top_line(&p), p.rows[p.top].start), (30, 10));
    press(&mut p, &[ch('n')]);
    assert_eq!((top_line(&p), p.rows[p.top].start), (30, 30));
    press(&mut p, &[ch('N')]);
    assert_eq!((top_line(&p), p.rows[p.top].start), (30, 10));
    // Scrolled into the middle of the long line, a backward search finds
    // the match in the row above.
    press(&mut p, &[ch('j'), ch('j'), ch('j')]);
    search(&mut p, '?', "foo");
    assert_eq!((top_line(&p), p.rows[p.top].start), (30, 30));
}

#[test]
fn highlight_straddles_wrap_point() {
    let mut p = pager(wrapped_search_doc(), 10, 6);
    search(&mut p, '/', "foo");
    press(&mut p, &[ch('n')]);
    let buf = render(&mut p);
    assert_eq!(screen_row(&buf, 0), "xxxxxxxxfo");
    assert_eq!(screen_row(&buf, 1), "oxxxxxxxxx");
    let current = Style::default().bg(Color::LightRed);
    for (x, y) in [(8, 0), (9, 0), (0, 1)] {
        assert_eq!(buf[(x, y)].bg, Color::LightRed, "cell {x},{y}");
        assert_eq!(buf[(x, y)].style(), buf[(x, y)].style().patch(current));
    }
    assert_eq!(buf[(7, 0)].bg, Color::Reset);
    assert_eq!(buf[(1, 1)].bg, Color::Reset);
    // The other match, above, is highlighted as a plain match.
    press(&mut p, &[ch('k'), ch('k')]);
    let buf = render(&mut p);
    assert_eq!(screen_row(&buf, 0), "xxfooxxxxx");
    assert_eq!(buf[(2, 0)].bg, Color::Yellow);
    assert_eq!(buf[(4, 0)].bg, Color::Yellow);
    assert_eq!(buf[(5, 0)].bg, Color::Reset);
    assert_eq!(buf[(8, 2)].bg, Color::LightRed);
}

#[test]
fn highlight_spans_style_boundaries() {
    let red = Style::default().fg(Color::Red);
    let green = Style::default()
        .fg(Color::Green)
        .add_modifier(Modifier::BOLD);
    let lines = vec![
        Line::from(vec![Span::styled("xxab", red), Span::styled("cdyy", green)]),
        Line::from(vec![Span::raw("abcd")]),
    ];
    let mut p = pager(lines, 20, 4);
    search(&mut p, '/', "bc");
    let buf = render(&mut p);
    assert_eq!(screen_row(&buf, 0).trim_end(), "xxabcdyy");
    // The current match keeps each span's foreground.
    assert_eq!(
        (buf[(3, 0)].fg, buf[(3, 0)].bg),
        (Color::Red, Color::LightRed)
    );
    assert_eq!(
        (buf[(4, 0)].fg, buf[(4, 0)].bg),
        (Color::Green, Color::LightRed)
    );
    assert!(buf[(4, 0)].modifier.contains(Modifier::BOLD));
    assert_eq!((buf[(2, 0)].fg, buf[(2, 0)].bg), (Color::Red, Color::Reset));
    assert_eq!(
        (buf[(5, 0)].fg, buf[(5, 0)].bg),
        (Color::Green, Color::Reset)
    );
    // The other match on screen uses the plain match style.
    assert_eq!(buf[(0, 1)].bg, Color::Reset);
    assert_eq!(buf[(1, 1)].bg, Color::Yellow);
    assert_eq!(buf[(2, 1)].bg, Color::Yellow);
    assert_eq!(buf[(3, 1)].bg, Color::Reset);
    // The status bar has the status style across the whole row.
    assert!((0..20).all(|x| buf[(x, 3)].bg == Color::Blue));
}

#[test]
fn highlight_across_wide_characters_and_indentation() {
    let lines = vec![Line::from("  漢字漢字漢字")];
    let mut p = pager(lines, 8, 4);
    assert_eq!(p.rows.len(), 2);
    search(&mut p, '/', "字漢字");
    let buf = render(&mut p);
    assert_eq!(screen_row(&buf, 0), "  漢字漢");
    assert_eq!(screen_row(&buf, 1), "  字漢字");
    assert_eq!(buf[(4, 0)].symbol(), "字");
    assert_eq!(buf[(4, 0)].bg, Color::LightRed);
    assert_eq!(buf[(6, 0)].bg, Color::LightRed);
    assert_eq!(buf[(2, 1)].symbol(), "字");
    assert_eq!(buf[(2, 1)].bg, Color::LightRed);
    assert_eq!(buf[(4, 1)].bg, Color::Reset);
    assert_eq!(buf[(2, 0)].bg, Color::Reset);
}

#[test]
fn no_color_draws_without_styles() {
    let lines = vec![Line::styled("abc", Style::default().fg(Color::Red)); 20];
    let mut p = Pager::new("t", lines, &test_style(), false, 10, 5);
    search(&mut p, '/', "b");
    let buf = render(&mut p);
    assert_eq!(screen_row(&buf, 0), "abc       ");
    for y in 0..5 {
        for x in 0..10 {
            let cell = &buf[(x, y)];
            assert_eq!(
                (cell.fg, cell.bg, cell.modifier),
                (Color::Reset, Color::Reset, Modifier::empty()),
                "cell {x},{y}"
            );
        }
    }
}

#[test]
fn line_style_covers_the_row() {
    let lines = vec![Line::from("ab").style(Style::default().bg(Color::Green)); 10];
    let mut p = pager(lines, 6, 4);
    let buf = render(&mut p);
    assert!((0..6).all(|x| buf[(x, 0)].bg == Color::Green));
}

#[test]
fn status_bar_text() {
    let mut p = pager(numbered(100), 80, 11);
    let status = p.status_text(80);
    assert_eq!(status.width(), 80);
    assert!(status.starts_with(" man test "), "{status}");
    assert!(status.ends_with("q quit \u{b7} / search \u{b7} n next   lines 1-10/100 (TOP) "));
    press(&mut p, &[ch(' ')]);
    assert!(p.status_text(80).ends_with("lines 11-20/100 20% "));
    press(&mut p, &[ch('G')]);
    assert!(p.status_text(80).ends_with("lines 91-100/100 (END) "));
    // The hint is left out when it does not fit, the title is shortened.
    let status = p.status_text(40);
    assert_eq!(status.width(), 40);
    assert!(!status.contains("quit"), "{status}");
    assert!(status.ends_with("lines 91-100/100 (END) "));
    p.title = "a very long title for a narrow screen".to_owned();
    let status = p.status_text(40);
    assert!(status.starts_with(" a very long"), "{status}");
    assert!(status.contains('\u{2026}'), "{status}");
    assert!(status.ends_with("  lines 91-100/100 (END) "), "{status}");
    // Too narrow for the position: the title, or a message, wins.
    assert_eq!(p.status_text(12), " a very long");
    p.message = Some("search wrapped".to_owned());
    assert_eq!(p.status_text(12), " search wrap");
    assert_eq!(p.status_text(0), "");
    // Logical lines, not rows, are counted.
    let mut p = pager(vec![Line::from("x".repeat(30)); 10], 10, 6);
    press(&mut p, &[ch('j')]);
    assert!(
        p.status_text(60).ends_with("lines 1-2/10 20% "),
        "{}",
        p.status_text(60)
    );
    // The rendered status row shows the same text.
    let mut p = pager(numbered(100), 80, 11);
    let buf = render(&mut p);
    assert_eq!(screen_row(&buf, 10), p.status_text(80));
}

#[test]
fn tiny_terminals_do_not_panic() {
    for (width, height) in [
        (5, 1),
        (1, 1),
        (0, 0),
        (5, 0),
        (0, 5),
        (5, 3),
        (1, 2),
        (3, 30),
    ] {
        let mut lines = numbered(50);
        lines.push(Line::from(
            "  漢字 wide and a long line that wraps several times",
        ));
        let mut p = pager(lines, width, height);
        let buf = render(&mut p);
        assert_eq!(buf.area, Rect::new(0, 0, width, height));
        for event in [
            ch('G'),
            ch('j'),
            ch('b'),
            ch('d'),
            ch('h'),
            ch('x'),
            ch('/'),
            ch('w'),
            key(KeyCode::Enter),
            ch('n'),
            ch('N'),
            ch('?'),
            ch('1'),
            key(KeyCode::Enter),
            wheel(MouseEventKind::ScrollDown),
            Event::Resize(width, height),
        ] {
            p.handle_event(&event);
            assert!(p.top <= p.max_top());
            render(&mut p);
        }
    }
}

#[test]
fn one_row_terminal_shows_only_the_status_bar() {
    let mut p = pager(numbered(10), 30, 1);
    let buf = render(&mut p);
    assert!(
        screen_row(&buf, 0).starts_with(" man test"),
        "{}",
        screen_row(&buf, 0)
    );
    press(&mut p, &[ch('j'), ch('j')]);
    assert_eq!(p.top, 2);
    press(&mut p, &[ch('G')]);
    assert_eq!(p.top, 9);
    search(&mut p, '/', "line 4");
    assert_eq!(p.top, 3);
    press(&mut p, &[ch('n')]);
    assert_eq!(p.top, 3);
    assert_eq!(p.message.as_deref(), Some("search wrapped"));
    // Five columns: the status bar is cut, not wrapped.
    let mut p = pager(numbered(10), 5, 3);
    let buf = render(&mut p);
    assert_eq!(screen_row(&buf, 0), "line ");
    assert_eq!(screen_row(&buf, 1), "1    ");
    assert_eq!(screen_row(&buf, 2), " man ");
}

#[test]
fn empty_document() {
    let mut p = pager(Vec::new(), 40, 5);
    press(&mut p, &[ch('G'), ch('j'), ch('k')]);
    assert_eq!(p.top, 0);
    search(&mut p, '/', "x");
    assert_eq!(p.message.as_deref(), Some("Pattern not found: x"));
    let buf = render(&mut p);
    assert!(
        screen_row(&buf, 4).contains("Pattern not found: x"),
        "{}",
        screen_row(&buf, 4)
    );
    let buf = render(&mut p);
    assert!(
        screen_row(&buf, 4).ends_with(" lines 0-0/0 (END) "),
        "{}",
        screen_row(&buf, 4)
    );
    assert!(fits_on_one_screen(&[], 20, 0));
}

#[test]
fn fits_on_one_screen_decision() {
    let doc = normalize(numbered(10), true);
    assert!(fits_on_one_screen(&doc, 80, 11));
    assert!(!fits_on_one_screen(&doc, 80, 10));
    assert!(!fits_on_one_screen(&doc, 80, 1));
    // Wrapped rows count, not lines.
    let mut lines = numbered(9);
    lines.push(Line::from("y".repeat(100)));
    let doc = normalize(lines, true);
    assert!(fits_on_one_screen(&doc, 100, 11));
    assert!(!fits_on_one_screen(&doc, 99, 11));
    assert!(fits_on_one_screen(&doc, 99, 12));
}

#[test]
fn help_overlay_and_any_key_closes_it() {
    let mut p = pager(numbered(100), 60, 20);
    press(&mut p, &[ch('h')]);
    assert!(p.help);
    let buf = render(&mut p);
    let screen: Vec<String> = (0..20).map(|y| screen_row(&buf, y)).collect();
    assert!(
        screen.iter().any(|row| row.contains("half page down")),
        "{screen:#?}"
    );
    assert!(screen.iter().any(|row| row.contains("Keys")));
    // The key that closes the help does nothing else.
    press(&mut p, &[ch('j')]);
    assert!(!p.help);
    assert_eq!(p.top, 0);
    let buf = render(&mut p);
    assert!(!(0..20).any(|y| screen_row(&buf, y).contains("half page down")));
    // On a small terminal the keys are listed in the status bar instead.
    let mut p = pager(numbered(100), 30, 6);
    press(&mut p, &[ch('h')]);
    assert!(!p.help);
    assert_eq!(p.message.as_deref(), Some(HELP_SHORT));
}

#[test]
fn quit_keys() {
    for event in [ch('q'), ch('Q'), key(KeyCode::Esc), ctrl('c')] {
        let mut p = pager(numbered(100), 20, 5);
        assert_eq!(p.handle_event(&event), Flow::Quit, "{event:?}");
    }
    let mut p = pager(numbered(100), 60, 20);
    press(
        &mut p,
        &[ch('/'), key(KeyCode::Esc), ch('h'), key(KeyCode::Esc)],
    );
    assert!(!p.help && p.prompt.is_none());
    assert_eq!(p.handle_event(&ctrl('c')), Flow::Quit);
    let mut p = pager(numbered(100), 20, 5);
    press(&mut p, &[ch('/')]);
    assert_eq!(
        p.handle_event(&ctrl('c')),
        Flow::Quit,
        "Ctrl-C quits from the prompt"
    );
}

#[test]
fn key_releases_are_ignored() {
    let mut p = pager(numbered(100), 20, 5);
    let mut release = KeyEvent::new(KeyCode::Char('j'), KeyModifiers::NONE);
    release.kind = KeyEventKind::Release;
    assert_eq!(p.handle_event(&Event::Key(release)), Flow::Idle);
    assert_eq!(p.top, 0);
    let shifted = KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT);
    press(&mut p, &[Event::Key(shifted)]);
    assert_eq!(p.top, 96);
}

#[test]
fn large_document_scrolls_by_visible_rows() {
    let lines: Vec<Line<'static>> = (0..100_000)
        .map(|i| {
            Line::from(vec![
                Span::raw(format!("{i:06} ")),
                Span::raw("text ".repeat(i % 30)),
            ])
        })
        .collect();
    let mut p = pager(lines, 80, 25);
    search(&mut p, '/', "099999");
    assert_eq!(p.top, p.max_top(), "near the end, clamped");
    let buf = render(&mut p);
    let y = (0..24)
        .find(|&y| screen_row(&buf, y).starts_with("099999"))
        .expect("match on screen");
    assert!((0..6).all(|x| buf[(x, y)].bg == Color::LightRed));
    assert_eq!(buf[(6, y)].bg, Color::Reset);
    assert!(
        screen_row(&buf, 24).contains("lines 99984-100000/100000 (END)"),
        "{}",
        screen_row(&buf, 24)
    );
    press(&mut p, &[ch('g')]);
    let buf = render(&mut p);
    assert!(screen_row(&buf, 0).starts_with("000000"));
}

#[test]
fn line_to_ansi_converts_styles() {
    let plain = Line::from("plain");
    assert_eq!(line_to_ansi(&plain, true), "plain");
    let line = Line::from(vec![
        Span::raw("a "),
        Span::styled(
            "bold",
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
        Span::styled(
            "same",
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
        Span::styled(
            "rgb",
            Style::default()
                .fg(Color::Rgb(1, 2, 3))
                .bg(Color::Indexed(200)),
        ),
        Span::raw(" end"),
    ]);
    assert_eq!(
        line_to_ansi(&line, true),
        "a \x1b[1;31mboldsame\x1b[0;38;2;1;2;3;48;5;200mrgb\x1b[0m end"
    );
    assert_eq!(line_to_ansi(&line, false), "a boldsamergb end");
    let modifiers = Modifier::DIM | Modifier::ITALIC | Modifier::UNDERLINED | Modifier::REVERSED;
    let line = Line::from(Span::styled(
        "m",
        Style::default()
            .add_modifier(modifiers)
            .bg(Color::LightCyan)
            .fg(Color::Gray),
    ));
    assert_eq!(line_to_ansi(&line, true), "\x1b[2;3;4;7;37;106mm\x1b[0m");
}

#[test]
fn line_to_ansi_patches_the_line_style() {
    let line = Line::from(vec![
        Span::raw("a"),
        Span::styled("b", Style::default().fg(Color::White)),
    ])
    .style(Style::default().fg(Color::DarkGray).bg(Color::Black));
    assert_eq!(
        line_to_ansi(&line, true),
        "\x1b[90;40ma\x1b[0;97;40mb\x1b[0m"
    );
    // A modifier removed by the span is not emitted.
    let line = Line::from(Span::styled(
        "x",
        Style::default().remove_modifier(Modifier::BOLD),
    ))
    .style(Style::default().add_modifier(Modifier::BOLD | Modifier::ITALIC));
    assert_eq!(line_to_ansi(&line, true), "\x1b[3mx\x1b[0m");
    // Reset colours are explicit defaults.
    let line = Line::from(Span::styled(
        "r",
        Style::default().fg(Color::Reset).bg(Color::Reset),
    ));
    assert_eq!(line_to_ansi(&line, true), "\x1b[39;49mr\x1b[0m");
}

#[test]
fn direct_print_writes_styled_lines() {
    let lines = vec![
        Line::from(vec![
            Span::raw("a\tb "),
            Span::styled("x", Style::default().fg(Color::Red)),
        ]),
        Line::from(""),
    ];
    let mut out = Vec::new();
    print_document(&mut out, &normalize(lines.clone(), true)).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "a       b \x1b[31mx\x1b[0m\n\n"
    );
    let mut out = Vec::new();
    print_document(&mut out, &normalize(lines, false)).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), "a       b x\n\n");
}

#[test]
fn keys_are_data_that_the_help_shows() {
    assert_eq!(action(KeyCode::Char('j'), false), Some(Action::Down));
    assert_eq!(action(KeyCode::Char('f'), true), Some(Action::PageDown));
    assert_eq!(action(KeyCode::Char('F'), true), Some(Action::PageDown));
    assert_eq!(action(KeyCode::Esc, false), Some(Action::Quit));
    assert_eq!(action(KeyCode::Char('x'), false), None);
    let rows = help_rows();
    for (keys, action, what) in KEYS {
        assert!(!keys.is_empty(), "{action:?} has no key");
        assert!(rows.iter().any(|(_, w)| w == what));
    }
    assert!(
        rows.iter().any(|(k, _)| k.starts_with("q Q Esc ^C")),
        "{rows:?}"
    );
}
