//! Full-screen views (face): the one event loop the editor and the pager run in
//! ([`run`], over a [`View`] each implements), the mending of keys the terminal library
//! splits ([`keys`]) and the one-line text input both edit prompts with ([`line`]).
//!
//! The terminal itself (raw mode, the alternate screen, its restoration on every way out,
//! the watcher that notices a hang-up) is the foundation's `term`; this module draws and
//! reads events on it.

pub mod keys;
pub mod line;

use std::io;
use std::time::Duration;

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::Event;
use ratatui::crossterm::{event, execute, terminal};
use ratatui::layout::Rect;
use ratatui::{Frame, Terminal};

/// At most this many events that arrive together are handled before the screen is drawn
/// again.
pub const EVENTS_PER_DRAW: usize = 64;

/// How long a view waits for an event, unless it asks for less, before its idle work.
pub const IDLE_WAIT: Duration = Duration::from_millis(100);

/// What the loop does after an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Leave the view.
    Quit,
    /// The view may have changed: draw it again.
    Redraw,
    /// Nothing changed.
    Idle,
    /// Clear the screen and draw everything again (Ctrl-L), for a screen that something
    /// else wrote on.
    Repaint,
}

/// A full-screen view, as the loop drives it.
pub trait View {
    /// Handles one event.
    fn handle(&mut self, event: &Event) -> Flow;

    /// Draws the whole view.
    fn draw(&mut self, frame: &mut Frame<'_>);

    /// Runs after each draw, with the terminal's output (the editor sends copied text to
    /// the system clipboard from here).
    fn drawn(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// How long to wait for an event before [`View::idle`] runs.
    fn wait(&self) -> Duration {
        IDLE_WAIT
    }

    /// Work done while no event comes (and at least every [`View::wait`]); returns whether
    /// the screen changed.
    fn idle(&mut self) -> bool {
        false
    }

    /// Runs after each burst of events, before the screen is drawn.
    fn after_burst(&mut self) {}

    /// Whether an Esc reads the plain characters that came with it to put back a key the
    /// terminal library split ([`keys`]). The keys read with it are this view's even when
    /// the Esc closes it, so a view whose Esc closes it says no: what is typed after is
    /// left for the shell.
    fn mends_keys(&self) -> bool {
        false
    }
}

/// Draws `view` and handles its events until it quits or a termination signal asks it to
/// end. Events that arrive together (a burst of wheel notches, a paste, a window being
/// dragged) are handled before the next draw, and a burst that changed nothing draws
/// nothing.
///
/// # Errors
///
/// Returns any error from drawing or from reading terminal events.
pub fn run(view: &mut impl View) -> io::Result<()> {
    let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    // Clear directly: `Terminal::clear` asks the terminal where the cursor is and waits for
    // the answer, which some terminals (and pipes posing as terminals) never give.
    execute!(io::stdout(), terminal::Clear(terminal::ClearType::All))?;
    let mut redraw = true;
    loop {
        if redraw {
            terminal.draw(|frame| view.draw(frame))?;
            view.drawn()?;
        }
        // Wake now and then to notice a termination signal and do the view's idle work.
        while !event::poll(view.wait())? {
            if crate::term::signal_pending() {
                return Ok(());
            }
            if view.idle() {
                terminal.draw(|frame| view.draw(frame))?;
                view.drawn()?;
            }
        }
        redraw = false;
        let mut handled = 0;
        while handled == 0 || (handled < EVENTS_PER_DRAW && event::poll(Duration::ZERO)?) {
            if crate::term::signal_pending() {
                return Ok(());
            }
            for ev in read_keys(view.mends_keys())? {
                match view.handle(&ev) {
                    Flow::Quit => return Ok(()),
                    Flow::Redraw => redraw = true,
                    Flow::Repaint => {
                        // Resizing to the same size clears the screen and forgets what
                        // was drawn, so the next draw paints every cell.
                        let size = terminal.size()?;
                        terminal.resize(Rect::new(0, 0, size.width, size.height))?;
                        redraw = true;
                    }
                    Flow::Idle => {}
                }
                handled += 1;
            }
        }
        view.after_burst();
    }
}

/// Reads the next event; with `mend`, after an Esc also the plain characters that came
/// with it in the same read, with an Esc-split key put back together.
fn read_keys(mend: bool) -> io::Result<Vec<Event>> {
    let mut evs = vec![event::read()?];
    if mend && keys::may_be_split(&evs[0]) {
        while evs.len() < keys::LONGEST && event::poll(Duration::ZERO)? {
            evs.push(event::read()?);
            if !keys::may_continue(&evs[evs.len() - 1]) {
                break;
            }
        }
        evs = keys::mend(evs);
    }
    Ok(evs)
}
