//! The editor on ratatui's `TestBackend`: keys in, screen and files out.

use super::*;
use crate::hub::HubOptions;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyEventState, MouseEvent};
use ratatui::Terminal;

struct Fixture {
    _home: tempfile::TempDir,
    hub: Arc<Hub>,
}

fn fixture() -> Fixture {
    let home = tempfile::tempdir().expect("temp home");
    let hub = Hub::open(HubOptions {
        home: Some(home.path().to_path_buf()),
        no_color: false,
        ..Default::default()
    })
    .expect("hub");
    Fixture { _home: home, hub }
}

fn path(p: &str) -> VPath {
    VPath::parse_absolute(p).expect("path")
}

impl Fixture {
    fn write(&self, p: &str, text: &str) {
        self.hub
            .vfs
            .write(&path(p), text.as_bytes())
            .expect("write");
    }
    fn read(&self, p: &str) -> String {
        String::from_utf8(self.hub.vfs.read(&path(p)).expect("read")).expect("utf-8")
    }
    fn editor(&self, files: &[&str], color: bool) -> Editor {
        let theme = self.hub.theme();
        let buffers = files
            .iter()
            .map(|f| load(&self.hub, &path(f), &theme).expect("load"))
            .collect();
        let opts = Options {
            tab_width: 4,
            soft_tabs: true,
            color,
            system_clipboard: true,
            auto_pairs: false,
        };
        Editor::new(Arc::clone(&self.hub), path("/"), buffers, opts)
    }
}

fn press(ed: &mut Editor, code: KeyCode, mods: KeyModifiers) {
    ed.handle(&Event::Key(KeyEvent {
        code,
        modifiers: mods,
        kind: KeyEventKind::Press,
        state: KeyEventState::NONE,
    }));
}

fn key(ed: &mut Editor, code: KeyCode) {
    press(ed, code, KeyModifiers::NONE);
}

fn ctrl_key(ed: &mut Editor, c: char) {
    press(ed, KeyCode::Char(c), KeyModifiers::CONTROL);
}

fn typ(ed: &mut Editor, text: &str) {
    for c in text.chars() {
        if c == '\n' {
            key(ed, KeyCode::Enter);
        } else {
            key(ed, KeyCode::Char(c));
        }
    }
}

fn text(ed: &Editor) -> String {
    ed.buffers[ed.current].rope.to_string()
}

/// Draws on a test terminal and returns its rows as text.
fn screen(ed: &mut Editor, w: u16, h: u16) -> (Vec<String>, ratatui::buffer::Buffer) {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    t.draw(|f| ed.draw(f)).expect("draw");
    let buf = t.backend().buffer().clone();
    let rows = (0..h)
        .map(|y| {
            let mut row = String::new();
            let mut skip = 0;
            for x in 0..w {
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                let sym = buf[(x, y)].symbol();
                skip = unicode_width::UnicodeWidthStr::width(sym).saturating_sub(1);
                row.push_str(sym);
            }
            row.trim_end().to_string()
        })
        .collect();
    (rows, buf)
}

#[test]
fn type_save_and_the_file_holds_it() {
    let f = fixture();
    let mut ed = f.editor(&["/notes.md"], false);
    assert_eq!(ed.message(), None, "a missing file opens empty");
    typ(&mut ed, "hello\n  world\nagain");
    assert_eq!(
        text(&ed),
        "hello\n  world\n  again",
        "Enter keeps the indentation"
    );
    assert!(ed.buffers[0].modified());
    ctrl_key(&mut ed, 's');
    assert_eq!(f.read("/notes.md"), "hello\n  world\n  again");
    assert!(!ed.buffers[0].modified());
    assert!(ed
        .message()
        .unwrap_or("")
        .starts_with("Saved /notes.md (3 lines"));
    ctrl_key(&mut ed, 'q');
    assert!(ed.quit, "nothing unsaved: quits at once");
}

#[test]
fn the_screen_shows_numbers_text_status_and_keys() {
    let f = fixture();
    f.write("/a.rs", "fn main() {\n\tprintln!(\"hi\");\n}\n");
    let mut ed = f.editor(&["/a.rs"], false);
    press(&mut ed, KeyCode::Down, KeyModifiers::NONE);
    let (rows, _) = screen(&mut ed, 50, 7);
    assert_eq!(
        rows,
        [
            "   1 fn main() {",
            "   2     println!(\"hi\");",
            "   3 }",
            "   4",
            "",
            " /a.rs  Ln 2, Col 1  Rust  LF  Spaces: 4  F1 help",
            "Ctrl-S save · Ctrl-Q quit · Ctrl-F find · Ctrl-G g",
        ]
    );
    typ(&mut ed, "x");
    let (rows, _) = screen(&mut ed, 50, 7);
    assert!(rows[5].starts_with(" /a.rs [+]"), "{rows:?}");
}

#[test]
fn syntax_and_editor_colours_come_from_the_theme() {
    let f = fixture();
    f.write("/a.rs", "fn main() {}\n// note\n");
    let mut ed = f.editor(&["/a.rs"], true);
    let (_, buf) = screen(&mut ed, 40, 6);
    let theme = f.hub.theme();
    let keyword = theme.style("syntax.keyword").to_ratatui();
    let cell = &buf[(5, 0)]; // "f" of fn, after the gutter
    assert_eq!(cell.symbol(), "f");
    assert_eq!(cell.fg, keyword.fg.expect("keyword colour"));
    let comment = theme.style("syntax.comment").to_ratatui();
    assert_eq!(buf[(5, 1)].symbol(), "/");
    assert!(buf[(5, 1)].modifier.contains(comment.add_modifier));
    let status = theme.style("editor.status").to_ratatui();
    assert_eq!(buf[(0, 4)].bg, status.bg.expect("status background"));
}

#[test]
fn quitting_asks_about_each_unsaved_buffer() {
    let f = fixture();
    f.write("/a.txt", "a\n");
    f.write("/b.txt", "b\n");
    let mut ed = f.editor(&["/a.txt", "/b.txt"], false);
    typ(&mut ed, "1");
    press(&mut ed, KeyCode::Right, KeyModifiers::ALT);
    typ(&mut ed, "2");
    ctrl_key(&mut ed, 'q');
    assert!(!ed.quit);
    let (rows, _) = screen(&mut ed, 60, 6);
    assert!(rows[5].starts_with("Save changes to /a.txt?"), "{rows:?}");
    key(&mut ed, KeyCode::Esc);
    assert!(!ed.quit, "Esc cancels quitting");
    ctrl_key(&mut ed, 'q');
    key(&mut ed, KeyCode::Char('y'));
    assert_eq!(f.read("/a.txt"), "1a\n");
    assert!(!ed.quit, "still asks about b");
    let (rows, _) = screen(&mut ed, 60, 6);
    assert!(rows[5].starts_with("Save changes to /b.txt?"), "{rows:?}");
    key(&mut ed, KeyCode::Char('n'));
    assert!(ed.quit);
    assert_eq!(f.read("/b.txt"), "b\n", "discarded");
}

#[test]
fn a_file_changed_elsewhere_is_not_overwritten_without_asking() {
    let f = fixture();
    f.write("/a.txt", "one\n");
    let mut ed = f.editor(&["/a.txt"], false);
    typ(&mut ed, "mine ");
    f.write("/a.txt", "theirs\n");
    ctrl_key(&mut ed, 's');
    let (rows, _) = screen(&mut ed, 70, 5);
    assert!(rows[4].contains("changed since it was opened"), "{rows:?}");
    key(&mut ed, KeyCode::Esc);
    assert_eq!(f.read("/a.txt"), "theirs\n");
    ctrl_key(&mut ed, 's');
    key(&mut ed, KeyCode::Char('y'));
    assert_eq!(f.read("/a.txt"), "mine one\n");
}

#[test]
fn unsaved_text_survives_in_a_recovery_copy_and_is_offered_back() {
    let f = fixture();
    f.write("/a.txt", "saved\n");
    {
        let mut ed = f.editor(&["/a.txt"], false);
        typ(&mut ed, "unsaved ");
        ed.keep_recovery_copies(true);
        // The editor is gone without saving (a killed process, a closed terminal).
    }
    let out = recovery::list(f.hub.vfs.store()).expect("list");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].text, "unsaved saved\n");
    let mut ed = f.editor(&["/a.txt"], false);
    let (rows, _) = screen(&mut ed, 100, 5);
    assert!(
        rows[4].starts_with("Unsaved changes to /a.txt from "),
        "{rows:?}"
    );
    key(&mut ed, KeyCode::Char('r'));
    assert_eq!(text(&ed), "unsaved saved\n");
    assert!(ed.buffers[0].modified());
    ctrl_key(&mut ed, 'z');
    assert_eq!(text(&ed), "saved\n", "restoring is one undo step");
    ctrl_key(&mut ed, 'y');
    ctrl_key(&mut ed, 's');
    assert_eq!(f.read("/a.txt"), "unsaved saved\n");
    assert!(
        recovery::list(f.hub.vfs.store()).expect("list").is_empty(),
        "saving drops the copy"
    );
}

#[test]
fn a_recovery_copy_can_be_kept_or_discarded() {
    let f = fixture();
    f.write("/a.txt", "x\n");
    recovery::save(f.hub.vfs.store(), "/a.txt", "y\n", false, None).expect("save copy");
    let mut ed = f.editor(&["/a.txt"], false);
    key(&mut ed, KeyCode::Esc);
    assert_eq!(text(&ed), "x\n");
    let kept = recovery::kept(f.hub.vfs.store(), "/a.txt").expect("kept");
    assert_eq!(kept.len(), 1, "set aside under a key of its own");
    assert_eq!(kept[0].text, "y\n");
    // What is typed after keeping it for later is copied too, beside the kept one.
    typ(&mut ed, "typed ");
    ed.keep_recovery_copies(true);
    let live = recovery::get(f.hub.vfs.store(), "/a.txt").expect("get");
    assert_eq!(live.map(|c| c.text).as_deref(), Some("typed x\n"));
    drop(ed);
    recovery::remove(f.hub.vfs.store(), "/a.txt").expect("remove");
    // The kept copy is offered again next time, and can be discarded.
    let mut ed = f.editor(&["/a.txt"], false);
    assert!(ed.message().is_none());
    key(&mut ed, KeyCode::Char('d'));
    assert!(recovery::list(f.hub.vfs.store()).expect("list").is_empty());
    // A copy that matches the file is dropped without asking.
    recovery::save(f.hub.vfs.store(), "/a.txt", "x\n", false, None).expect("save copy");
    let _ = f.editor(&["/a.txt"], false);
    assert!(recovery::get(f.hub.vfs.store(), "/a.txt")
        .expect("get")
        .is_none());
}

#[test]
fn undoing_back_to_the_saved_text_drops_the_copy() {
    let f = fixture();
    f.write("/a.txt", "x\n");
    let mut ed = f.editor(&["/a.txt"], false);
    typ(&mut ed, "y");
    ed.keep_recovery_copies(true);
    assert!(recovery::get(f.hub.vfs.store(), "/a.txt")
        .expect("get")
        .is_some());
    ctrl_key(&mut ed, 'z');
    ed.keep_recovery_copies(true);
    assert!(recovery::get(f.hub.vfs.store(), "/a.txt")
        .expect("get")
        .is_none());
}

#[test]
fn find_replace_and_go_to() {
    let f = fixture();
    f.write("/a.txt", "foo bar\nbar foo\nFoo\n");
    let mut ed = f.editor(&["/a.txt"], false);
    ctrl_key(&mut ed, 'f');
    typ(&mut ed, "bar");
    key(&mut ed, KeyCode::Enter);
    assert_eq!(
        ed.buffers[0].selection(),
        Some(4..7),
        "Enter stays on the match"
    );
    key(&mut ed, KeyCode::F(3));
    assert_eq!(ed.buffers[0].selection(), Some(8..11), "F3 goes on");
    key(&mut ed, KeyCode::F(3));
    assert_eq!(ed.buffers[0].selection(), Some(4..7), "wrapped");
    assert_eq!(ed.message(), Some("Search wrapped to the top"));
    ctrl_key(&mut ed, 'g');
    typ(&mut ed, "1");
    key(&mut ed, KeyCode::Enter);
    ctrl_key(&mut ed, 'r');
    typ(&mut ed, "foo");
    key(&mut ed, KeyCode::Enter);
    typ(&mut ed, "baz");
    key(&mut ed, KeyCode::Enter);
    key(&mut ed, KeyCode::Char('n'));
    key(&mut ed, KeyCode::Char('y'));
    assert_eq!(text(&ed), "foo bar\nbar baz\nFoo\n");
    key(&mut ed, KeyCode::Char('y'));
    assert_eq!(
        text(&ed),
        "foo bar\nbar baz\nbaz\n",
        "lower-case matches any case"
    );
    assert_eq!(ed.message(), Some("Replaced 2 occurrence(s)"));
    ctrl_key(&mut ed, 'r');
    typ(&mut ed, "ba");
    key(&mut ed, KeyCode::Enter);
    typ(&mut ed, "BA");
    key(&mut ed, KeyCode::Enter);
    key(&mut ed, KeyCode::Char('a'));
    assert_eq!(text(&ed), "foo BAr\nBAr BAz\nBAz\n");
    ctrl_key(&mut ed, 'z');
    assert_eq!(
        text(&ed),
        "foo bar\nbar baz\nbaz\n",
        "replace all is one step"
    );
    // A selection fills in the search.
    ctrl_key(&mut ed, 'g');
    typ(&mut ed, "2");
    key(&mut ed, KeyCode::Enter);
    press(
        &mut ed,
        KeyCode::Right,
        KeyModifiers::CONTROL | KeyModifiers::SHIFT,
    );
    ctrl_key(&mut ed, 'f');
    let (rows, _) = screen(&mut ed, 40, 5);
    assert_eq!(rows[4], "Find (Alt-R: regex): bar");
    key(&mut ed, KeyCode::Esc);
    ctrl_key(&mut ed, 'g');
    typ(&mut ed, "3:2");
    key(&mut ed, KeyCode::Enter);
    assert_eq!(ed.buffers[0].cursor_line_col(), (2, 1));
    ctrl_key(&mut ed, 'g');
    typ(&mut ed, "x");
    key(&mut ed, KeyCode::Enter);
    assert!(ed.message().unwrap_or("").starts_with("Not a line number"));
}

#[test]
fn files_the_editor_cannot_hold_are_refused_clearly() {
    let f = fixture();
    f.hub
        .vfs
        .write(&path("/bin.dat"), b"\x7fELF\x00\x01")
        .expect("write");
    f.hub
        .vfs
        .write(&path("/latin1.txt"), b"caf\xe9\n")
        .expect("write");
    let theme = f.hub.theme();
    let err = |p: &str| {
        format!(
            "{:#}",
            load(&f.hub, &path(p), &theme).err().expect("refused")
        )
    };
    assert!(err("/bin.dat").contains("binary"), "{}", err("/bin.dat"));
    assert!(
        err("/latin1.txt").contains("not UTF-8 text (invalid byte at offset 3)"),
        "{}",
        err("/latin1.txt")
    );
    f.hub.vfs.mkdir(&path("/d"), false).expect("mkdir");
    assert!(err("/d").contains("is a directory"));
}

#[test]
fn mouse_clicks_move_the_cursor_and_the_wheel_scrolls() {
    let f = fixture();
    let text: String = (1..=100).map(|i| format!("line {i}\n")).collect();
    f.write("/a.txt", &text);
    let mut ed = f.editor(&["/a.txt"], false);
    screen(&mut ed, 40, 10);
    let mouse = |kind, column, row| {
        Event::Mouse(MouseEvent {
            kind,
            column,
            row,
            modifiers: KeyModifiers::NONE,
        })
    };
    ed.handle(&mouse(MouseEventKind::Down(MouseButton::Left), 7, 2));
    assert_eq!(ed.buffers[0].cursor_line_col(), (2, 2));
    ed.handle(&mouse(MouseEventKind::Drag(MouseButton::Left), 9, 3));
    assert_eq!(ed.buffers[0].selected_text().as_deref(), Some("ne 3\nline"));
    ed.handle(&mouse(MouseEventKind::ScrollDown, 5, 5));
    ed.handle(&mouse(MouseEventKind::ScrollDown, 5, 5));
    let (rows, _) = screen(&mut ed, 40, 10);
    assert_eq!(rows[0], "   7 line 7", "the view scrolled, not the cursor");
}

#[test]
fn paste_is_one_step_with_line_breaks_normalised() {
    let f = fixture();
    let mut ed = f.editor(&["/p.txt"], false);
    ed.handle(&Event::Paste("a\r\nb\rc".into()));
    assert_eq!(text(&ed), "a\nb\nc");
    ctrl_key(&mut ed, 'z');
    assert_eq!(text(&ed), "");
}

#[test]
fn copy_cut_and_paste_lines_and_selections() {
    let f = fixture();
    f.write("/a.txt", "one\ntwo\n");
    let mut ed = f.editor(&["/a.txt"], false);
    ctrl_key(&mut ed, 'x'); // no selection: the line
    assert_eq!(text(&ed), "two\n");
    press(&mut ed, KeyCode::Down, KeyModifiers::NONE);
    ctrl_key(&mut ed, 'v');
    assert_eq!(text(&ed), "two\none\n");
    ctrl_key(&mut ed, 'a');
    ctrl_key(&mut ed, 'c');
    press(&mut ed, KeyCode::End, KeyModifiers::CONTROL);
    ctrl_key(&mut ed, 'v');
    assert_eq!(text(&ed), "two\none\ntwo\none\n");
}

#[test]
fn buffers_open_switch_and_close() {
    let f = fixture();
    f.write("/a.txt", "a\n");
    f.write("/b.txt", "b\n");
    let mut ed = f.editor(&["/a.txt"], false);
    ctrl_key(&mut ed, 'o');
    typ(&mut ed, "b.txt");
    key(&mut ed, KeyCode::Enter);
    assert_eq!(ed.buffers.len(), 2);
    assert_eq!(text(&ed), "b\n");
    let (rows, _) = screen(&mut ed, 50, 6);
    assert_eq!(rows[0], " a.txt  b.txt", "a row of tabs");
    press(&mut ed, KeyCode::Left, KeyModifiers::ALT);
    assert_eq!(text(&ed), "a\n");
    ctrl_key(&mut ed, 'o');
    typ(&mut ed, "/b.txt");
    key(&mut ed, KeyCode::Enter);
    assert_eq!(
        ed.buffers.len(),
        2,
        "an open file is switched to, not opened twice"
    );
    ctrl_key(&mut ed, 'o');
    typ(&mut ed, "../../etc/passwd");
    key(&mut ed, KeyCode::Enter);
    assert_eq!(
        ed.buffers.len(),
        3,
        "'..' stops at the root: a new /etc/passwd"
    );
    assert_eq!(ed.buffers[2].name(), "/etc/passwd");
    ctrl_key(&mut ed, 'w');
    ctrl_key(&mut ed, 'w');
    assert!(!ed.quit);
    ctrl_key(&mut ed, 'w');
    assert!(ed.quit, "closing the last buffer ends the editor");
    screen(&mut ed, 50, 6); // and drawing then is harmless
}

#[test]
fn a_new_buffer_asks_for_a_name_when_saved() {
    let f = fixture();
    let mut ed = f.editor(&[], false);
    typ(&mut ed, "draft");
    ctrl_key(&mut ed, 'q');
    key(&mut ed, KeyCode::Char('y'));
    let (rows, _) = screen(&mut ed, 40, 5);
    assert_eq!(rows[4], "Save as:");
    typ(&mut ed, "nodir/x.txt");
    key(&mut ed, KeyCode::Enter);
    assert!(!ed.quit);
    assert!(
        ed.message()
            .unwrap_or("")
            .starts_with("cannot save /nodir/x.txt"),
        "{:?}",
        ed.message()
    );
    assert_eq!(ed.buffers[0].path, None, "a failed save-as keeps no name");
    press(&mut ed, KeyCode::Char('s'), KeyModifiers::ALT);
    press(&mut ed, KeyCode::Char('u'), KeyModifiers::CONTROL);
    typ(&mut ed, "draft.txt");
    key(&mut ed, KeyCode::Enter);
    assert_eq!(f.read("/draft.txt"), "draft");
    ctrl_key(&mut ed, 'q');
    assert!(ed.quit);
}

#[test]
fn crlf_files_are_saved_with_crlf() {
    let f = fixture();
    f.write("/w.txt", "a\r\nb\r\n");
    let mut ed = f.editor(&["/w.txt"], false);
    press(&mut ed, KeyCode::End, KeyModifiers::NONE);
    typ(&mut ed, "\nc");
    ctrl_key(&mut ed, 's');
    assert_eq!(f.read("/w.txt"), "a\r\nc\r\nb\r\n");
    let (rows, _) = screen(&mut ed, 50, 5);
    assert!(rows[3].contains("CRLF"), "{rows:?}");
}

#[test]
fn only_what_is_shown_is_highlighted() {
    let f = fixture();
    let text: String = (0..50_000).map(|i| format!("let x{i} = {i};\n")).collect();
    f.write("/big.rs", &text);
    let mut ed = f.editor(&["/big.rs"], true);
    screen(&mut ed, 60, 20);
    assert!(
        ed.buffers[0].kept_states() <= 1,
        "only the first screen, from the start of the text"
    );
    ctrl_key(&mut ed, 'g');
    typ(&mut ed, "25000");
    key(&mut ed, KeyCode::Enter);
    screen(&mut ed, 60, 20);
    let known = ed.buffers[0].kept_states();
    assert!(
        known <= 5,
        "far away: drawn from a nearby fresh state ({known})"
    );
    let (approximate, _) = screen(&mut ed, 60, 20);
    assert!(ed.has_work());
    let mut slices = 0;
    while ed.has_work() {
        ed.work();
        slices += 1;
        assert!(slices < 100, "idle work ends");
    }
    // At most 4,800 lines above the view, 400 a slice; a state every 64 lines of them.
    let known = ed.buffers[0].kept_states();
    assert!(
        slices <= 13 && known <= 80,
        "idle work stayed near the view: {slices} slices, {known} states"
    );
    let (exact, _) = screen(&mut ed, 60, 20);
    assert_eq!(approximate, exact);
    press(&mut ed, KeyCode::Home, KeyModifiers::CONTROL);
    typ(&mut ed, "x");
    assert_eq!(ed.buffers[0].kept_states(), 0, "from the edited line on");
}

#[test]
fn control_characters_and_wide_text_are_drawn_in_their_columns() {
    let f = fixture();
    f.write("/c.txt", "a\x01b\n日本x\n");
    let mut ed = f.editor(&["/c.txt"], false);
    let (rows, _) = screen(&mut ed, 30, 5);
    assert_eq!(rows[0], "   1 a^Ab");
    assert_eq!(rows[1], "   2 日本x");
}

#[test]
fn help_opens_on_f1_and_any_key_closes_it() {
    let f = fixture();
    let mut ed = f.editor(&[], false);
    key(&mut ed, KeyCode::F(1));
    let (rows, _) = screen(&mut ed, 80, 30);
    let undo = |rows: &[String]| {
        rows.iter()
            .any(|r| r.contains("Ctrl-Z") && r.contains("undo"))
    };
    assert!(undo(&rows), "{rows:?}");
    assert!(
        rows.iter()
            .any(|r| r.contains("Ctrl-End") && r.contains("end of the file")),
        "every command fits: {rows:?}"
    );
    key(&mut ed, KeyCode::Char('q'));
    assert_eq!(text(&ed), "", "the key only closed the help");
    let (rows, _) = screen(&mut ed, 80, 30);
    assert!(!undo(&rows));
}

#[test]
fn a_file_in_a_host_mount_is_saved_in_place_keeping_its_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let f = fixture();
    let host = tempfile::tempdir().expect("host dir");
    let script = host.path().join("run.sh");
    std::fs::write(&script, "echo one\n").expect("write");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    f.hub.vfs.mount(host.path(), &path("/m")).expect("mount");
    let mut ed = f.editor(&["/m/run.sh"], false);
    press(&mut ed, KeyCode::End, KeyModifiers::NONE);
    typ(&mut ed, " two");
    ctrl_key(&mut ed, 's');
    assert_eq!(
        std::fs::read_to_string(&script).expect("read"),
        "echo one two\n"
    );
    let mode = std::fs::metadata(&script)
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    let leftovers: Vec<_> = std::fs::read_dir(host.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(leftovers, ["run.sh"], "no temporary file left beside it");
}

#[test]
fn a_copy_kept_for_later_is_left_alone() {
    let f = fixture();
    f.write("/a.txt", "x\n");
    recovery::save(f.hub.vfs.store(), "/a.txt", "older\n", false, None).expect("save copy");
    let mut ed = f.editor(&["/a.txt"], false);
    key(&mut ed, KeyCode::Esc);
    typ(&mut ed, "new ");
    ed.keep_recovery_copies(true);
    ctrl_key(&mut ed, 's');
    let kept = recovery::kept(f.hub.vfs.store(), "/a.txt").expect("kept");
    assert_eq!(
        kept.iter().map(|c| c.text.as_str()).collect::<Vec<_>>(),
        ["older\n"],
        "neither overwritten nor dropped by the save"
    );
    assert!(
        recovery::get(f.hub.vfs.store(), "/a.txt")
            .expect("get")
            .is_none(),
        "the buffer's own copy went with the save"
    );
}

#[test]
fn a_restored_copy_of_an_older_file_asks_before_saving_over_the_newer_one() {
    let f = fixture();
    f.write("/a.txt", "newer\n");
    let old = blake3::hash(b"old\n");
    recovery::save(
        f.hub.vfs.store(),
        "/a.txt",
        "old, edited\n",
        false,
        Some(old),
    )
    .expect("copy");
    let mut ed = f.editor(&["/a.txt"], false);
    key(&mut ed, KeyCode::Char('r'));
    assert!(ed.message().unwrap_or("").contains("saving will ask first"));
    ctrl_key(&mut ed, 's');
    let (rows, _) = screen(&mut ed, 80, 5);
    assert!(rows[4].contains("changed since it was opened"), "{rows:?}");
    key(&mut ed, KeyCode::Esc);
    assert_eq!(f.read("/a.txt"), "newer\n");
}

#[test]
fn a_save_as_onto_another_file_that_is_cancelled_keeps_the_old_name() {
    let f = fixture();
    f.write("/a.txt", "a\n");
    f.write("/b.txt", "b\n");
    let mut ed = f.editor(&["/a.txt"], false);
    typ(&mut ed, "1");
    press(&mut ed, KeyCode::Char('s'), KeyModifiers::ALT);
    press(&mut ed, KeyCode::Char('u'), KeyModifiers::CONTROL);
    typ(&mut ed, "/b.txt");
    key(&mut ed, KeyCode::Enter);
    let (rows, _) = screen(&mut ed, 80, 5);
    assert!(rows[4].starts_with("/b.txt changed since"), "{rows:?}");
    key(&mut ed, KeyCode::Esc);
    assert_eq!(ed.buffers[0].name(), "/a.txt");
    assert_eq!(f.read("/b.txt"), "b\n");
    ctrl_key(&mut ed, 's');
    assert_eq!(f.read("/a.txt"), "1a\n");
}

#[test]
fn the_line_option_moves_in_the_first_file_and_paste_in_the_pane_stays_there() {
    let f = fixture();
    f.write("/a.txt", "1\n2\n3\n");
    f.write("/b.txt", "x\n");
    recovery::save(f.hub.vfs.store(), "/b.txt", "y\n", false, None).expect("copy");
    let mut ed = f.editor(&["/a.txt", "/b.txt"], false);
    ed.goto_line(3);
    assert_eq!(ed.buffers[0].cursor_line_col(), (2, 0));
    key(&mut ed, KeyCode::Esc); // keep b's copy for later
    ctrl_key(&mut ed, 'e');
    ed.handle(&Event::Paste("what is\nthis".into()));
    assert_eq!(text(&ed), "x\n", "the file is untouched");
    assert_eq!(
        ed.pane.as_ref().map(|p| p.input.text()),
        Some("what is this")
    );
}

#[test]
fn views_far_then_near_the_known_highlighting_never_underflow() {
    let f = fixture();
    let text: String = (0..2_000).map(|i| format!("let x{i} = {i};\n")).collect();
    f.write("/m.rs", &text);
    let mut ed = f.editor(&["/m.rs"], true);
    screen(&mut ed, 60, 20);
    press(&mut ed, KeyCode::End, KeyModifiers::CONTROL);
    screen(&mut ed, 60, 20);
    press(&mut ed, KeyCode::Home, KeyModifiers::CONTROL);
    screen(&mut ed, 60, 20);
    typ(&mut ed, "x");
    for _ in 0..3 {
        key(&mut ed, KeyCode::PageDown);
        screen(&mut ed, 60, 20);
    }
    assert_eq!(
        ed.buffers[0].cursor_line_col().0,
        51,
        "three pages of 17 rows"
    );
}

#[test]
fn copies_go_to_the_system_clipboard_once_and_not_when_too_large() {
    let f = fixture();
    f.write("/a.txt", "one\ntwo\n");
    let mut ed = f.editor(&["/a.txt"], false);
    press(&mut ed, KeyCode::End, KeyModifiers::SHIFT);
    ctrl_key(&mut ed, 'c');
    assert_eq!(ed.take_copied().as_deref(), Some("one"));
    assert_eq!(ed.take_copied(), None, "handed over once");
    ed.handle(&Event::Paste("x".repeat(MAX_SYSTEM_COPY + 1)));
    ctrl_key(&mut ed, 'a');
    ctrl_key(&mut ed, 'c');
    assert_eq!(ed.take_copied(), None);
    assert!(ed
        .message()
        .unwrap_or("")
        .contains("too large for the system clipboard"));
    ed.opts.system_clipboard = false;
    ctrl_key(&mut ed, 'k');
    assert_eq!(ed.take_copied(), None, "switched off");
}

#[test]
fn long_lines_scroll_sideways_to_the_cursor() {
    let f = fixture();
    let digits: String = "0123456789".repeat(10);
    f.write("/l.txt", &format!("{digits}\n\t{digits}\n"));
    let mut ed = f.editor(&["/l.txt"], false);
    // 40 columns less a gutter of 5 leave 35 for text; the cursor after the last char.
    press(&mut ed, KeyCode::End, KeyModifiers::NONE);
    let (rows, _) = screen(&mut ed, 40, 5);
    assert_eq!(rows[0], format!("   1 {}", &digits[66..]));
    assert_eq!(ed.buffers[0].display_col(0, 100, 4), 100);
    // The line with a tab: 104 columns, so the view starts at column 70 (char 67).
    key(&mut ed, KeyCode::Down);
    press(&mut ed, KeyCode::End, KeyModifiers::NONE);
    let (rows, _) = screen(&mut ed, 40, 5);
    assert_eq!(rows[1], format!("   2 {}", &digits[66..]));
    assert_eq!(ed.buffers[0].display_col(1, 101, 4), 104);
}

#[test]
fn a_new_buffer_keeps_a_copy_too_and_edit_without_a_file_offers_it() {
    let f = fixture();
    {
        let mut ed = f.editor(&[], false);
        typ(&mut ed, "notes never saved");
        ed.keep_recovery_copies(true);
    }
    let copies = recovery::list(f.hub.vfs.store()).expect("list");
    assert_eq!(copies.len(), 1);
    assert!(copies[0].path.starts_with("new:"), "{}", copies[0].path);
    let mut ed = f.editor(&[], false);
    let (rows, _) = screen(&mut ed, 100, 5);
    assert!(
        rows[4].starts_with("The text of a new buffer from "),
        "{rows:?}"
    );
    key(&mut ed, KeyCode::Char('r'));
    assert_eq!(text(&ed), "notes never saved");
    assert!(ed.buffers[0].modified());
    ed.keep_recovery_copies(true);
    let copies = recovery::list(f.hub.vfs.store()).expect("list");
    assert_eq!(copies.len(), 1, "the old copy gave way to this buffer's");
    assert_eq!(copies[0].path, ed.buffers[0].copy_key());
    // Saved under a name, the copy goes.
    ctrl_key(&mut ed, 's');
    typ(&mut ed, "notes.txt");
    key(&mut ed, KeyCode::Enter);
    assert_eq!(f.read("/notes.txt"), "notes never saved");
    assert!(recovery::list(f.hub.vfs.store()).expect("list").is_empty());
    // Opening a named file does not offer text of new buffers.
    {
        let mut ed = f.editor(&[], false);
        typ(&mut ed, "more");
        ed.keep_recovery_copies(true);
    }
    let ed = f.editor(&["/notes.txt"], false);
    assert!(matches!(ed.mode, Mode::Normal));
}

#[test]
fn typing_without_a_pause_still_gets_copies() {
    let f = fixture();
    f.write("/a.txt", "x\n");
    let mut ed = f.editor(&["/a.txt"], false);
    typ(&mut ed, "a");
    // Keys keep coming: no pause of RECOVERY_IDLE, but RECOVERY_EVERY has passed.
    ed.last_edit = Instant::now();
    ed.keep_recovery_copies(false);
    assert!(recovery::get(f.hub.vfs.store(), "/a.txt")
        .expect("get")
        .is_none());
    ed.last_copy = Instant::now() - RECOVERY_EVERY;
    typ(&mut ed, "b");
    ed.keep_recovery_copies(false);
    let copy = recovery::get(f.hub.vfs.store(), "/a.txt").expect("get");
    assert_eq!(copy.map(|c| c.text).as_deref(), Some("abx\n"));
}

#[test]
fn a_big_buffer_copy_grows_by_the_edits_only() {
    let f = fixture();
    let line = "fn main() { println!(\"hello\"); }\r\n";
    let big = line.repeat(3 << 20 >> 5);
    f.write("/big.rs", &big);
    let mut ed = f.editor(&["/big.rs"], false);
    let store = Arc::clone(f.hub.vfs.store());
    let stored_text = || -> usize {
        store
            .conn()
            .query_row("SELECT length(CAST(text AS BLOB)) FROM recovery", [], |r| {
                r.get::<_, i64>(0)
            })
            .expect("row") as usize
    };
    let steps = || -> i64 {
        store
            .conn()
            .query_row("SELECT count(*) FROM recovery_steps", [], |r| r.get(0))
            .expect("count")
    };
    typ(&mut ed, "// one");
    ed.keep_recovery_copies(true);
    let first = stored_text();
    assert_eq!(steps(), 0, "the first copy is whole");
    // Typing, deleting, undo and redo: each later copy adds only what changed.
    key(&mut ed, KeyCode::Enter);
    typ(&mut ed, "two");
    ed.keep_recovery_copies(true);
    key(&mut ed, KeyCode::Backspace);
    key(&mut ed, KeyCode::End);
    typ(&mut ed, " three");
    ed.keep_recovery_copies(true);
    ctrl_key(&mut ed, 'z');
    ed.keep_recovery_copies(true);
    ctrl_key(&mut ed, 'y');
    key(&mut ed, KeyCode::Down);
    typ(&mut ed, "four");
    ed.keep_recovery_copies(true);
    assert_eq!(
        stored_text(),
        first,
        "the copy's text was not written again"
    );
    assert!(steps() >= 4, "{}", steps());
    let copy = recovery::get(&store, "/big.rs")
        .expect("get")
        .expect("copy");
    assert_eq!(
        copy.text,
        ed.buffers[0].contents(),
        "the edits replay to the text"
    );
    assert!(copy.text.contains("\r\n"), "saved as it was, with CRLF");
    // Saving drops the copy and its edits.
    ctrl_key(&mut ed, 's');
    assert!(recovery::list(&store).expect("list").is_empty());
    assert_eq!(steps(), 0);
}

#[test]
fn the_watcher_writes_what_the_editor_had_not_copied_yet() {
    let f = fixture();
    f.write("/a.txt", "x\n");
    let mut ed = f.editor(&["/a.txt"], false);
    typ(&mut ed, "unsaved ");
    // Shared after each batch of keys, before any copy was due.
    ed.keep_recovery_copies(false);
    assert!(recovery::get(f.hub.vfs.store(), "/a.txt")
        .expect("get")
        .is_none());
    ed.pending.clone().write(f.hub.vfs.store());
    let copy = recovery::get(f.hub.vfs.store(), "/a.txt").expect("get");
    assert_eq!(copy.map(|c| c.text).as_deref(), Some("unsaved x\n"));
}

#[test]
fn each_file_is_indented_its_own_way() {
    let f = fixture();
    for d in ["/p", "/p/sub"] {
        f.hub.vfs.mkdir(&path(d), true).expect("mkdir");
    }
    // A tab-indented Python file gets tabs, whatever the settings say.
    f.write("/p/tabbed.py", "def f():\n\tif x:\n\t\treturn 1\n");
    let mut ed = f.editor(&["/p/tabbed.py"], false);
    press(&mut ed, KeyCode::End, KeyModifiers::CONTROL);
    key(&mut ed, KeyCode::Tab);
    typ(&mut ed, "pass");
    assert!(text(&ed).ends_with("\n\tpass"), "{:?}", text(&ed));
    // A Makefile (new or not) is one, and its recipes get tabs.
    let mut ed = f.editor(&["/p/Makefile"], false);
    assert_eq!(ed.buffers[0].highlighter.language(), "Makefile");
    typ(&mut ed, "all:\n");
    key(&mut ed, KeyCode::Tab);
    typ(&mut ed, "cc x.c");
    assert_eq!(text(&ed), "all:\n\tcc x.c");
    // EditorConfig comes first: the nearest file last, sections matched from its folder.
    f.write("/.editorconfig", "root = true\n[*]\nindent_style = tab\n");
    f.write(
        "/p/.editorconfig",
        "[*.py]\nindent_style = space\nindent_size = 2\n[sub/*.js]\nindent_size = 3\nindent_style = space\n",
    );
    let ed = f.editor(&["/p/tabbed.py"], false);
    assert_eq!(ed.buffers[0].indent.describe(), "Spaces: 2");
    let ed = f.editor(&["/p/sub/x.js", "/p/y.js", "/z.rs"], false);
    let styles: Vec<String> = ed.buffers.iter().map(|b| b.indent.describe()).collect();
    assert_eq!(styles, ["Spaces: 3", "Tabs", "Tabs"]);
}

#[test]
fn regex_find_and_replace_with_groups() {
    let f = fixture();
    f.write("/a.txt", "let a = f(1);\nlet bb = g(22);\nother\n");
    let mut ed = f.editor(&["/a.txt"], false);
    ctrl_key(&mut ed, 'r');
    press(&mut ed, KeyCode::Char('r'), KeyModifiers::ALT);
    let (rows, _) = screen(&mut ed, 60, 5);
    assert!(
        rows[4].starts_with("Replace (regex; Alt-R: text)"),
        "{rows:?}"
    );
    typ(&mut ed, r"let (\w+) = (\w)\((\d+)\)");
    key(&mut ed, KeyCode::Enter);
    typ(&mut ed, "const ${1}_$3 = $2()");
    key(&mut ed, KeyCode::Enter);
    key(&mut ed, KeyCode::Char('a'));
    assert_eq!(text(&ed), "const a_1 = f();\nconst bb_22 = g();\nother\n");
    // An invalid expression says so and changes nothing.
    ctrl_key(&mut ed, 'f');
    typ(&mut ed, "(oth");
    assert!(
        ed.message().unwrap_or("").contains("regular expression"),
        "{:?}",
        ed.message()
    );
    typ(&mut ed, ")er$");
    key(&mut ed, KeyCode::Enter);
    assert_eq!(ed.buffers[0].selected_text().as_deref(), Some("other"));
}

#[test]
fn esc_from_find_goes_back_and_a_suggestion_is_replaced_by_typing() {
    let f = fixture();
    let text_: String = (0..200).map(|i| format!("line {i}\n")).collect();
    f.write("/a.txt", &text_);
    let mut ed = f.editor(&["/a.txt"], false);
    let _ = screen(&mut ed, 40, 10);
    ctrl_key(&mut ed, 'f');
    typ(&mut ed, "line 150");
    let _ = screen(&mut ed, 40, 10);
    assert!(ed.buffers[0].top > 100, "the view followed the match");
    key(&mut ed, KeyCode::Esc);
    assert_eq!(
        ed.buffers[0].cursor(),
        0,
        "Esc goes back to where find started"
    );
    assert_eq!(ed.buffers[0].top, 0);
    assert_eq!(ed.buffers[0].selection(), None);
    // The selection suggested as the search is replaced by what is typed.
    press(
        &mut ed,
        KeyCode::Right,
        KeyModifiers::CONTROL | KeyModifiers::SHIFT,
    );
    ctrl_key(&mut ed, 'f');
    typ(&mut ed, "12");
    let (rows, _) = screen(&mut ed, 40, 10);
    assert_eq!(rows[9], "Find (Alt-R: regex): 12");
    key(&mut ed, KeyCode::Esc);
    // Save as: End keeps the suggested name to add to.
    press(&mut ed, KeyCode::Char('s'), KeyModifiers::ALT);
    key(&mut ed, KeyCode::End);
    typ(&mut ed, ".bak");
    key(&mut ed, KeyCode::Enter);
    assert_eq!(f.read("/a.txt.bak"), text_);
}

#[test]
fn the_prompt_edits_where_its_cursor_is_and_keeps_it_in_view() {
    let f = fixture();
    let text_: String = (0..200).map(|i| format!("line {i}\n")).collect();
    f.write("/a.txt", &text_);
    let mut ed = f.editor(&["/a.txt"], false);
    ctrl_key(&mut ed, 'f');
    typ(&mut ed, "line 15");
    key(&mut ed, KeyCode::Left);
    key(&mut ed, KeyCode::Left);
    typ(&mut ed, "1");
    let mut t = Terminal::new(TestBackend::new(40, 10)).expect("terminal");
    t.draw(|f| ed.draw(f)).expect("draw");
    t.backend_mut().assert_cursor_position((27, 9));
    key(&mut ed, KeyCode::Delete);
    key(&mut ed, KeyCode::Backspace);
    typ(&mut ed, "9");
    let (rows, _) = screen(&mut ed, 40, 10);
    assert_eq!(rows[9], "Find (Alt-R: regex): line 95");
    key(&mut ed, KeyCode::Enter);
    assert_eq!(ed.buffers[0].selected_text().as_deref(), Some("line 95"));
    // A line longer than the screen shows the part around the cursor.
    ctrl_key(&mut ed, 'f');
    typ(&mut ed, &"x".repeat(30));
    key(&mut ed, KeyCode::Home);
    let (rows, _) = screen(&mut ed, 40, 10);
    assert_eq!(rows[9], format!("Find (Alt-R: regex): {}", "x".repeat(19)));
    key(&mut ed, KeyCode::End);
    t.draw(|f| ed.draw(f)).expect("draw");
    t.backend_mut().assert_cursor_position((39, 9));
    let (rows, _) = screen(&mut ed, 40, 10);
    assert!(rows[9].ends_with(&"x".repeat(30)), "{:?}", rows[9]);
}

fn with_pairs(ed: &mut Editor) {
    ed.opts.auto_pairs = true;
}

#[test]
fn words_lines_comments_and_pairs() {
    let f = fixture();
    f.write("/a.rs", "let value = other_name;\nfn f() {}\n");
    let mut ed = f.editor(&["/a.rs"], false);
    // Ctrl-Backspace (as terminals send it: Ctrl-H) and Alt-Backspace delete words.
    press(&mut ed, KeyCode::End, KeyModifiers::NONE);
    key(&mut ed, KeyCode::Left);
    ctrl_key(&mut ed, 'h');
    assert_eq!(text(&ed), "let value = ;\nfn f() {}\n");
    press(&mut ed, KeyCode::Backspace, KeyModifiers::ALT);
    assert_eq!(text(&ed), "let ;\nfn f() {}\n", "as far as Ctrl-Left goes");
    ctrl_key(&mut ed, 'z');
    ctrl_key(&mut ed, 'z');
    assert_eq!(text(&ed), "let value = other_name;\nfn f() {}\n");
    // Duplicate the line (Alt-Shift-Down); the cursor goes with the copy.
    press(
        &mut ed,
        KeyCode::Down,
        KeyModifiers::ALT | KeyModifiers::SHIFT,
    );
    assert_eq!(
        text(&ed),
        "let value = other_name;\nlet value = other_name;\nfn f() {}\n"
    );
    assert_eq!(ed.buffers[0].cursor_line_col().0, 1);
    // Ctrl-/ (sent as Ctrl-7) comments the selected lines, and again uncomments them.
    ctrl_key(&mut ed, 'a');
    ctrl_key(&mut ed, '7');
    assert_eq!(
        text(&ed),
        "// let value = other_name;\n// let value = other_name;\n// fn f() {}\n"
    );
    ctrl_key(&mut ed, '/');
    assert_eq!(
        text(&ed),
        "let value = other_name;\nlet value = other_name;\nfn f() {}\n"
    );
    // Ctrl-D selects the word, then its next occurrence.
    press(&mut ed, KeyCode::Home, KeyModifiers::CONTROL);
    key(&mut ed, KeyCode::Right);
    ctrl_key(&mut ed, 'd');
    assert_eq!(ed.buffers[0].selected_text().as_deref(), Some("let"));
    ctrl_key(&mut ed, 'd');
    assert_eq!(ed.buffers[0].selection(), Some(24..27));
    // Auto-pairs: brackets and quotes close themselves, and are stepped over.
    with_pairs(&mut ed);
    press(&mut ed, KeyCode::End, KeyModifiers::CONTROL);
    typ(&mut ed, "call(\"x");
    assert!(text(&ed).ends_with("call(\"x\")"), "{:?}", text(&ed));
    typ(&mut ed, "\")");
    assert!(
        text(&ed).ends_with("call(\"x\")"),
        "stepped over: {:?}",
        text(&ed)
    );
    typ(&mut ed, "[");
    key(&mut ed, KeyCode::Backspace);
    assert!(
        text(&ed).ends_with("call(\"x\")"),
        "an empty pair goes whole"
    );
    typ(&mut ed, " don't");
    assert!(
        text(&ed).ends_with(" don't"),
        "no pair inside a word: {:?}",
        text(&ed)
    );
}

#[test]
fn keys_come_from_the_keymap_setting_and_config() {
    let f = fixture();
    f.write("/a.txt", "one\ntwo\n");
    f.hub
        .set_setting("editor.keymap", Some("nano"))
        .expect("nano");
    let mut ed = f.editor(&["/a.txt"], false);
    let (rows, _) = screen(&mut ed, 100, 5);
    assert!(
        rows[4].starts_with("Ctrl-O save · Ctrl-X quit · Ctrl-W find"),
        "{rows:?}"
    );
    // nano's Ctrl-K and Ctrl-U cut and paste lines; Ctrl-O writes the file.
    ctrl_key(&mut ed, 'k');
    ctrl_key(&mut ed, 'n');
    ctrl_key(&mut ed, 'u');
    ctrl_key(&mut ed, 'o');
    assert_eq!(f.read("/a.txt"), "two\none\n");
    ctrl_key(&mut ed, 'x');
    assert!(ed.quit);
    // A binding in config.toml goes over the keymap; a wrong one is reported.
    f.hub.set_setting("editor.keymap", None).expect("reset");
    f.hub
        .set_setting("editor.keys.ctrl-j", Some("duplicate_line"))
        .expect("bind");
    assert!(f
        .hub
        .set_setting("editor.keys.ctrl-l", Some("dupe"))
        .is_err());
    let mut ed = f.editor(&["/a.txt"], false);
    ctrl_key(&mut ed, 'j');
    assert_eq!(text(&ed), "two\ntwo\none\n");
    // F1 lists the binding.
    key(&mut ed, KeyCode::F(1));
    let (rows, _) = screen(&mut ed, 100, 60);
    assert!(
        rows.iter()
            .any(|r| r.contains("Alt-Shift-Down Ctrl-J") || r.contains("Ctrl-J Alt-Shift-Down")),
        "{rows:?}"
    );
}

#[test]
fn reload_and_save_all() {
    let f = fixture();
    f.write("/a.txt", "a\n");
    f.write("/b.txt", "b\n");
    let mut ed = f.editor(&["/a.txt", "/b.txt"], false);
    typ(&mut ed, "1");
    press(&mut ed, KeyCode::Right, KeyModifiers::ALT);
    typ(&mut ed, "2");
    press(
        &mut ed,
        KeyCode::Char('S'),
        KeyModifiers::ALT | KeyModifiers::SHIFT,
    );
    assert_eq!(f.read("/a.txt"), "1a\n");
    assert_eq!(f.read("/b.txt"), "2b\n");
    assert_eq!(ed.message(), Some("Saved 2 buffer(s)"));
    // F5 reads the file again; with unsaved changes it asks first.
    f.write("/b.txt", "from elsewhere\n");
    typ(&mut ed, "x");
    key(&mut ed, KeyCode::F(5));
    key(&mut ed, KeyCode::Esc);
    assert_eq!(text(&ed), "2xb\n");
    key(&mut ed, KeyCode::F(5));
    key(&mut ed, KeyCode::Char('y'));
    assert_eq!(text(&ed), "from elsewhere\n");
    assert!(!ed.buffers[1].modified());
}

#[test]
fn grapheme_clusters_are_drawn_whole_and_are_one_column_each() {
    let f = fixture();
    f.write("/u.txt", "a👨‍👩‍👧b🇫🇷c e\u{301}!\n");
    let mut ed = f.editor(&["/u.txt"], false);
    let (rows, buf) = screen(&mut ed, 40, 5);
    assert_eq!(rows[0], "   1 a👨‍👩‍👧b🇫🇷c e\u{301}!");
    // The family and the flag: one cell each holding the whole cluster, two columns wide,
    // and the text after them right behind.
    let cells: Vec<&str> = (5..15).map(|x| buf[(x, 0)].symbol()).collect();
    assert_eq!(
        cells,
        ["a", "👨‍👩‍👧", " ", "b", "🇫🇷", " ", "c", " ", "e\u{301}", "!"]
    );
    key(&mut ed, KeyCode::End);
    let mut t = Terminal::new(TestBackend::new(40, 5)).expect("terminal");
    t.draw(|fr| ed.draw(fr)).expect("draw");
    let status = t.backend().buffer().content()[3 * 40..4 * 40]
        .iter()
        .map(|c| c.symbol())
        .collect::<String>();
    assert!(status.contains("Ln 1, Col 9 "), "{status}");
    let cursor = t.get_cursor_position().expect("cursor");
    assert_eq!(
        (cursor.x, cursor.y),
        (15, 0),
        "after the 10 columns of text"
    );
    key(&mut ed, KeyCode::Left);
    key(&mut ed, KeyCode::Left);
    let (rows, _) = screen(&mut ed, 40, 5);
    assert!(rows[3].contains("Ln 1, Col 7 "), "{rows:?}");
    assert_eq!(ed.buffers[0].rope.char(ed.buffers[0].cursor()), 'e');
    // A click on either half of the flag puts the cursor before it.
    for x in [9, 10] {
        ed.handle(&Event::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: x,
            row: 0,
            modifiers: KeyModifiers::NONE,
        }));
        assert_eq!(ed.buffers[0].cursor_line_col(), (0, 7));
    }
    let (rows, _) = screen(&mut ed, 40, 5);
    assert!(rows[3].contains("Ln 1, Col 4 "), "{rows:?}");
    // Backspace takes the whole family.
    key(&mut ed, KeyCode::Left);
    key(&mut ed, KeyCode::Backspace);
    assert_eq!(text(&ed), "ab🇫🇷c e\u{301}!\n");
}

#[test]
fn a_byte_order_mark_is_no_cursor_stop_and_is_saved_again() {
    let f = fixture();
    f.write("/b.txt", "\u{FEFF}hello\n");
    let mut ed = f.editor(&["/b.txt"], false);
    let (rows, _) = screen(&mut ed, 60, 5);
    assert_eq!(rows[0], "   1 hello");
    assert!(
        rows[3].contains("Ln 1, Col 1 ") && rows[3].contains("  LF  BOM  "),
        "{rows:?}"
    );
    key(&mut ed, KeyCode::Right);
    let (rows, _) = screen(&mut ed, 60, 5);
    assert!(rows[3].contains("Ln 1, Col 2 "), "{rows:?}");
    assert_eq!(ed.buffers[0].rope.char(ed.buffers[0].cursor()), 'e');
    typ(&mut ed, "X");
    ctrl_key(&mut ed, 's');
    let bytes = f.hub.vfs.read(&path("/b.txt")).expect("read");
    assert_eq!(bytes, b"\xEF\xBB\xBFhXello\n");
    // With CRLF line breaks too, byte for byte; and through a recovery copy.
    f.write("/w.txt", "\u{FEFF}one\r\ntwo\r\n");
    {
        let mut ed = f.editor(&["/w.txt"], false);
        key(&mut ed, KeyCode::End);
        typ(&mut ed, "!");
        ed.keep_recovery_copies(true);
    }
    let mut ed = f.editor(&["/w.txt"], false);
    key(&mut ed, KeyCode::Char('r'));
    assert_eq!(text(&ed), "one!\ntwo\n");
    ctrl_key(&mut ed, 's');
    let bytes = f.hub.vfs.read(&path("/w.txt")).expect("read");
    assert_eq!(bytes, b"\xEF\xBB\xBFone!\r\ntwo\r\n");
    // A copy holding just what the file holds is dropped without asking.
    recovery::save(f.hub.vfs.store(), "/w.txt", "one!\ntwo\n", true, None).expect("copy");
    let ed = f.editor(&["/w.txt"], false);
    assert!(matches!(ed.mode, Mode::Normal));
    assert!(recovery::get(f.hub.vfs.store(), "/w.txt")
        .expect("get")
        .is_none());
}

#[test]
fn a_read_only_file_is_shown_as_such_and_saving_asks() {
    use std::os::unix::fs::PermissionsExt;
    let f = fixture();
    let host = tempfile::tempdir().expect("host dir");
    let file = host.path().join("ro.txt");
    std::fs::write(&file, "keep\n").expect("write");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444)).expect("chmod");
    f.hub.vfs.mount(host.path(), &path("/m")).expect("mount");
    let mut ed = f.editor(&["/m/ro.txt"], false);
    typ(&mut ed, "x");
    let (rows, _) = screen(&mut ed, 80, 5);
    assert!(rows[3].contains("/m/ro.txt [read-only] [+]"), "{rows:?}");
    ctrl_key(&mut ed, 's');
    let (rows, _) = screen(&mut ed, 120, 5);
    assert!(rows[4].contains("is read-only"), "{rows:?}");
    key(&mut ed, KeyCode::Esc);
    assert_eq!(ed.message(), Some("Not saved: the file was left as it is"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep\n");
    ctrl_key(&mut ed, 's');
    key(&mut ed, KeyCode::Char('y'));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "xkeep\n");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o444, "still read-only");
}

#[test]
fn changes_on_disk_are_noticed_while_editing() {
    let f = fixture();
    f.write("/a.txt", "one\n");
    f.write("/b.txt", "two\n");
    let mut ed = f.editor(&["/a.txt", "/b.txt"], false);
    let due = |ed: &mut Editor| ed.last_disk_check = Instant::now() - DISK_CHECK_EVERY;
    // Unmodified: read again at once, and said so.
    f.write("/a.txt", "one, from elsewhere\n");
    due(&mut ed);
    assert!(ed.check_disk());
    assert_eq!(text(&ed), "one, from elsewhere\n");
    assert!(ed
        .message()
        .unwrap_or("")
        .contains("changed on disk and was read again"));
    // Modified: asks, and Esc keeps the buffer's text.
    typ(&mut ed, "mine ");
    f.write("/a.txt", "theirs\n");
    due(&mut ed);
    assert!(ed.check_disk());
    let (rows, _) = screen(&mut ed, 100, 5);
    assert!(rows[4].contains("changed on disk"), "{rows:?}");
    key(&mut ed, KeyCode::Esc);
    assert_eq!(text(&ed), "mine one, from elsewhere\n");
    // Nothing new: nothing said.
    due(&mut ed);
    assert!(!ed.check_disk());
    // Removed: told, and the next key clears the message.
    f.hub.vfs.remove(&path("/a.txt"), false).expect("rm");
    due(&mut ed);
    assert!(ed.check_disk());
    assert!(ed.message().unwrap_or("").contains("was removed from disk"));
    key(&mut ed, KeyCode::Right);
    assert_eq!(ed.message(), None);
    ctrl_key(&mut ed, 's');
    assert_eq!(f.read("/a.txt"), "mine one, from elsewhere\n");
}

#[test]
fn find_in_a_big_buffer_runs_beside_the_typing() {
    let f = fixture();
    let mut big: String = (0..60_000)
        .map(|i| format!("line number {i} of many\n"))
        .collect();
    big.push_str("the needle is here\n");
    f.write("/big.txt", &big);
    let mut ed = f.editor(&["/big.txt"], false);
    ctrl_key(&mut ed, 'f');
    typ(&mut ed, "needle");
    // Each key started a search of its own; the typing did not wait for any of them.
    let deadline = Instant::now() + Duration::from_secs(20);
    while ed.search_pending() {
        ed.receive_search();
        assert!(Instant::now() < deadline, "the search never ended");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(ed.buffers[0].selected_text().as_deref(), Some("needle"));
    let (rows, _) = screen(&mut ed, 60, 6);
    assert!(
        rows.iter().any(|r| r.contains("the needle is here")),
        "{rows:?}"
    );
    // Enter waits for a search still running, and stays on its match.
    key(&mut ed, KeyCode::Esc);
    ctrl_key(&mut ed, 'f');
    typ(&mut ed, "of many");
    key(&mut ed, KeyCode::Enter);
    assert!(!ed.search_pending());
    assert_eq!(ed.buffers[0].selected_text().as_deref(), Some("of many"));
}

fn shift_tab(ed: &mut Editor) {
    press(ed, KeyCode::BackTab, KeyModifiers::SHIFT);
}

#[test]
fn tab_after_a_prefix_expands_the_snippet_and_stops_fill_mirrors() {
    let f = fixture();
    let mut ed = f.editor(&["/a.js"], false);
    typ(&mut ed, "for");
    key(&mut ed, KeyCode::Tab);
    assert_eq!(text(&ed), "for (let i = 0; i < 10; i++) {\n    \n}\n");
    assert!(ed.in_snippet());
    // The default of the first stop is selected: typing replaces it and its mirrors.
    typ(&mut ed, "jk");
    assert_eq!(text(&ed), "for (let jk = 0; jk < 10; jk++) {\n    \n}\n");
    key(&mut ed, KeyCode::Backspace);
    assert_eq!(text(&ed), "for (let j = 0; j < 10; j++) {\n    \n}\n");
    // Tab: the next stop, its default selected; Shift-Tab goes back.
    key(&mut ed, KeyCode::Tab);
    typ(&mut ed, "n");
    assert_eq!(text(&ed), "for (let j = 0; j < n; j++) {\n    \n}\n");
    shift_tab(&mut ed);
    typ(&mut ed, "k");
    assert_eq!(text(&ed), "for (let k = 0; k < n; k++) {\n    \n}\n");
    // Tab twice: past the second stop to the final one, where the snippet ends.
    key(&mut ed, KeyCode::Tab);
    key(&mut ed, KeyCode::Tab);
    assert!(!ed.in_snippet());
    typ(&mut ed, "go();");
    assert_eq!(text(&ed), "for (let k = 0; k < n; k++) {\n    go();\n}\n");
    // The expansion and what was typed into its stops are one undo step; typing after
    // it is one more.
    ctrl_key(&mut ed, 'z');
    assert_eq!(text(&ed), "for (let k = 0; k < n; k++) {\n    \n}\n");
    ctrl_key(&mut ed, 'z');
    assert_eq!(text(&ed), "for");
    ctrl_key(&mut ed, 'y');
    assert_eq!(text(&ed), "for (let k = 0; k < n; k++) {\n    \n}\n");
}

#[test]
fn backspace_and_delete_in_a_stop_take_a_whole_grapheme_cluster_in_every_mirror() {
    let f = fixture();
    let mut ed = f.editor(&["/a.js"], false);
    typ(&mut ed, "for");
    key(&mut ed, KeyCode::Tab);
    // An accented letter written as a letter and a combining accent, and a family emoji
    // (three people joined by zero-width joiners): one cluster each.
    typ(
        &mut ed,
        "xe\u{301}\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}",
    );
    let typed = "xe\u{301}\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}";
    assert_eq!(
        text(&ed),
        format!("for (let {typed} = 0; {typed} < 10; {typed}++) {{\n    \n}}\n")
    );
    key(&mut ed, KeyCode::Backspace);
    assert_eq!(
        text(&ed),
        "for (let xe\u{301} = 0; xe\u{301} < 10; xe\u{301}++) {\n    \n}\n"
    );
    assert!(ed.in_snippet());
    key(&mut ed, KeyCode::Left);
    key(&mut ed, KeyCode::Delete);
    assert_eq!(text(&ed), "for (let x = 0; x < 10; x++) {\n    \n}\n");
    assert!(ed.in_snippet());
    key(&mut ed, KeyCode::Backspace);
    assert_eq!(text(&ed), "for (let  = 0;  < 10; ++) {\n    \n}\n");
    // Nothing left in the stop: Backspace there is an ordinary one, and ends the snippet.
    key(&mut ed, KeyCode::Backspace);
    assert_eq!(text(&ed), "for (let = 0;  < 10; ++) {\n    \n}\n");
    assert!(!ed.in_snippet());
}

#[test]
fn tab_indents_where_no_snippet_is_named_and_esc_or_moving_away_ends_one() {
    let f = fixture();
    let mut ed = f.editor(&["/a.py"], false);
    // Not a prefix (nor part of one): Tab indents as before.
    typ(&mut ed, "fo");
    key(&mut ed, KeyCode::Tab);
    assert_eq!(text(&ed), "fo  ");
    ctrl_key(&mut ed, 'a');
    key(&mut ed, KeyCode::Delete);
    // In a text file, no snippets.
    let mut txt = f.editor(&["/notes.txt"], false);
    typ(&mut txt, "def");
    key(&mut txt, KeyCode::Tab);
    assert_eq!(text(&txt), "def ");
    // Indented: the snippet's lines keep the indentation; Esc ends the snippet.
    typ(&mut ed, "    def");
    key(&mut ed, KeyCode::Tab);
    assert_eq!(text(&ed), "    def name(args):\n        pass\n    ");
    ctrl_key(&mut ed, 'a');
    key(&mut ed, KeyCode::Delete);
    typ(&mut ed, "for");
    key(&mut ed, KeyCode::Tab);
    key(&mut ed, KeyCode::Esc);
    assert!(!ed.in_snippet());
    // After Esc, typing is ordinary: the mirror stays as it was.
    typ(&mut ed, "s");
    assert_eq!(text(&ed), "for items in items:\n    print(item)\n");
    // Moving out of the stop ends it too: typing is then ordinary.
    ctrl_key(&mut ed, 'a');
    key(&mut ed, KeyCode::Delete);
    typ(&mut ed, "for");
    key(&mut ed, KeyCode::Tab);
    assert!(ed.in_snippet());
    key(&mut ed, KeyCode::Down);
    assert!(!ed.in_snippet());
}

#[test]
fn user_snippets_are_read_when_changed_override_built_ins_and_bad_files_are_shown() {
    let f = fixture();
    f.hub.vfs.mkdir(&path("/Snippets"), true).expect("mkdir");
    f.write(
        "/Snippets/python.toml",
        "[def]\nbody = \"def ${1:f}():\\n\\treturn $1\\n\"\n",
    );
    let mut ed = f.editor(&["/a.py"], false);
    typ(&mut ed, "def");
    key(&mut ed, KeyCode::Tab);
    typ(&mut ed, "g");
    assert_eq!(text(&ed), "def g():\n    return g\n");
    // Changed while the editor runs: the next Tab reads it again.
    f.write("/Snippets/python.toml", "[pp]\nbody = \"print(${1:x})\"\n");
    ctrl_key(&mut ed, 'a');
    key(&mut ed, KeyCode::Delete);
    typ(&mut ed, "pp");
    key(&mut ed, KeyCode::Tab);
    assert_eq!(text(&ed), "print(x)");
    // A broken file: an error on the status line; the built-ins still work.
    f.write("/Snippets/python.toml", "[pp\nbody = \"\\u{1b}[31m\"\n");
    ctrl_key(&mut ed, 'a');
    key(&mut ed, KeyCode::Delete);
    typ(&mut ed, "def");
    key(&mut ed, KeyCode::Tab);
    assert_eq!(text(&ed), "def name(args):\n    pass\n");
    let msg = ed.message().expect("an error").to_string();
    assert!(msg.contains("/Snippets/python.toml"), "{msg}");
    assert!(!msg.contains('\u{1b}'), "{msg}");
}

#[test]
fn an_answers_code_block_is_saved_as_a_snippet() {
    let f = fixture();
    let mut ed = f.editor(&["/a.sh"], false);
    let mut pane = pane::Pane::new(&f.hub);
    pane.blocks = vec!["echo \"$HOME\"\n".into()];
    ed.pane = Some(pane);
    ed.pane_focus = true;
    ctrl_key(&mut ed, 's');
    typ(&mut ed, "home");
    key(&mut ed, KeyCode::Enter);
    assert!(ed.message().unwrap_or("").contains("/Snippets/sh.toml"));
    typ(&mut ed, "home");
    key(&mut ed, KeyCode::Tab);
    assert_eq!(text(&ed), "echo \"$HOME\"\n");
}

#[test]
fn adjacent_stops_and_their_mirrors_keep_their_places() {
    let f = fixture();
    f.hub.vfs.mkdir(&path("/Snippets"), true).expect("mkdir");
    f.write(
        "/Snippets/python.toml",
        "[adj]\nbody = \"${1:a}${2:b}-$1$2-$0\"\n",
    );
    let mut ed = f.editor(&["/a.py"], false);
    typ(&mut ed, "adj");
    key(&mut ed, KeyCode::Tab);
    assert_eq!(text(&ed), "ab-ab-");
    typ(&mut ed, "xy");
    assert_eq!(text(&ed), "xyb-xyb-");
    key(&mut ed, KeyCode::Tab);
    typ(&mut ed, "z");
    assert_eq!(text(&ed), "xyz-xyz-");
    // Back to the first stop: its whole text is selected, and typing at its end does not
    // run into the second stop.
    shift_tab(&mut ed);
    key(&mut ed, KeyCode::End);
    assert!(!ed.in_snippet(), "End left the stop");
    ctrl_key(&mut ed, 'z');
    assert_eq!(text(&ed), "adj");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
    #[test]
    fn whatever_is_typed_at_a_stop_its_mirrors_show_the_same(
        keys in proptest::collection::vec(0u8..5, 0..24),
        letters in "[a-z]{24}",
    ) {
        let f = fixture();
        let mut ed = f.editor(&["/a.js"], false);
        typ(&mut ed, "for");
        key(&mut ed, KeyCode::Tab);
        let letters: Vec<char> = letters.chars().collect();
        for (i, k) in keys.iter().enumerate() {
            match k {
                0 | 1 => key(&mut ed, KeyCode::Char(letters[i])),
                2 => key(&mut ed, KeyCode::Backspace),
                3 => key(&mut ed, KeyCode::Left),
                _ => key(&mut ed, KeyCode::Right),
            }
            if !ed.in_snippet() {
                break;
            }
            let t = text(&ed);
            let var = t
                .strip_prefix("for (let ")
                .and_then(|r| r.split_once(" = 0; "))
                .map(|(v, _)| v.to_string())
                .unwrap_or_else(|| panic!("{t:?}"));
            proptest::prop_assert_eq!(
                t,
                format!("for (let {var} = 0; {var} < 10; {var}++) {{\n    \n}}\n")
            );
        }
        // One Ctrl-Z takes the snippet and all typed into it back (one more first when a
        // Backspace out of the stop ended it: that is an edit of its own).
        ctrl_key(&mut ed, 'z');
        if text(&ed) != "for" {
            ctrl_key(&mut ed, 'z');
        }
        proptest::prop_assert_eq!(text(&ed), "for");
    }
}
