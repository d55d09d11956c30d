//! The assistant pane beside the editor: questions about the buffer (or the selection), the
//! answer streamed in from a background thread, and the code blocks of the last answer ready
//! to go into the buffer.

use crate::assistant::{self, conversations, Message};
use crate::hub::Hub;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::Arc;

/// The buffer is sent whole up to this size; beyond it, its beginning, and the question
/// says that the text was cut.
const MAX_CONTEXT: usize = 200 * 1024;

/// What the answering thread sends.
enum Piece {
    Text(String),
    Done,
    Failed(String),
}

/// One entry of the pane's transcript.
struct Entry {
    question: String,
    answer: String,
    error: Option<String>,
}

pub struct Pane {
    pub input: String,
    entries: Vec<Entry>,
    /// The conversation so far, as sent to the server.
    messages: Vec<Message>,
    /// The conversation in the store, once there is one.
    conversation: Option<i64>,
    persona: &'static assistant::Persona,
    receiving: Option<(Receiver<Piece>, Arc<AtomicBool>)>,
    /// The code blocks of the last answer, and which one Ctrl-Y inserts.
    pub blocks: Vec<String>,
    pub block: usize,
    /// Rows scrolled up from the end of the transcript.
    scroll: u16,
    /// Ctrl-C asked to stop the answer that is arriving.
    stopped: bool,
}

/// What a line of Markdown is, for code blocks.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Part {
    Text,
    /// The opening fence of block n.
    Open(usize),
    /// A line inside block n.
    Code(usize),
    /// The closing fence of block n.
    Close(usize),
}

/// Each line of a Markdown text with what it is. A block opens with three or more
/// backticks and closes with a line of just as many, so a longer fence can hold a shorter.
fn parts(text: &str) -> Vec<(&str, Part)> {
    let mut out = Vec::new();
    let mut open: Option<&str> = None;
    let mut n = 0;
    for line in text.lines() {
        match open {
            None => match assistant::opening_fence(line) {
                Some((fence, _)) => {
                    open = Some(fence);
                    out.push((line, Part::Open(n)));
                }
                None => out.push((line, Part::Text)),
            },
            Some(fence) if assistant::closes(line, fence) => {
                open = None;
                out.push((line, Part::Close(n)));
                n += 1;
            }
            Some(_) => out.push((line, Part::Code(n))),
        }
    }
    out
}

/// The fenced code blocks of a Markdown text, in order (an unclosed last block too).
pub fn code_blocks(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (line, part) in parts(text) {
        match part {
            Part::Open(_) => out.push(String::new()),
            Part::Code(i) => {
                if let Some(b) = out.get_mut(i) {
                    b.push_str(line);
                    b.push('\n');
                }
            }
            Part::Text | Part::Close(_) => {}
        }
    }
    out
}

impl Pane {
    pub fn new(hub: &Hub) -> Pane {
        let persona = assistant::persona(&hub.setting("assistant.persona"))
            .unwrap_or(&assistant::PERSONAS[0]);
        Pane {
            input: String::new(),
            entries: Vec::new(),
            messages: vec![Message::new("system", persona.prompt)],
            conversation: None,
            persona,
            receiving: None,
            blocks: Vec::new(),
            block: 0,
            scroll: 0,
            stopped: false,
        }
    }

    pub fn busy(&self) -> bool {
        self.receiving.is_some()
    }

    /// Asks `question` about `context` (named `what`), answering on a background thread.
    pub fn ask(&mut self, hub: &Arc<Hub>, question: String, what: &str, context: &str) {
        if self.busy() || question.trim().is_empty() {
            return;
        }
        let (context, what) = if context.len() > MAX_CONTEXT {
            let mut end = MAX_CONTEXT;
            while !context.is_char_boundary(end) {
                end -= 1;
            }
            let what = format!(
                "{what} (only its first {} KiB of {} KiB)",
                MAX_CONTEXT / 1024,
                context.len() / 1024
            );
            (&context[..end], what)
        } else {
            (context, what.to_string())
        };
        let content = format!("{question}\n\n{}", assistant::fence(&what, context));
        self.messages.push(Message::new("user", content));
        self.entries.push(Entry {
            question,
            answer: String::new(),
            error: None,
        });
        // The blocks of the answer before are not this one's.
        self.blocks.clear();
        self.block = 0;
        self.scroll = 0;
        let client = match assistant::client(hub) {
            Ok(c) => c,
            Err(e) => {
                self.messages.pop();
                if let Some(last) = self.entries.last_mut() {
                    last.error = Some(format!("{e:#}"));
                }
                return;
            }
        };
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let messages = self.messages.clone();
        let started = std::thread::Builder::new()
            .name("assistant".into())
            .spawn(move || {
                let result = client.chat(&messages, |piece| {
                    if stopped.load(Ordering::Relaxed) {
                        anyhow::bail!("stopped");
                    }
                    tx.send(Piece::Text(piece.to_string()))
                        .map_err(|_| anyhow::anyhow!("the editor is gone"))
                });
                let _ = tx.send(match result {
                    Ok(_) => Piece::Done,
                    Err(e) => Piece::Failed(format!("{e:#}")),
                });
            });
        if let Err(e) = started {
            self.messages.pop();
            if let Some(last) = self.entries.last_mut() {
                last.error = Some(format!("cannot start a thread for the answer: {e}"));
            }
            return;
        }
        self.receiving = Some((rx, stop));
    }

    /// Stops the answer that is arriving.
    /// Ends it at the next [`Pane::receive`], whether or not the server sends anything
    /// more; the answer is kept as far as it came.
    pub fn stop(&mut self) {
        if let Some((_, stop)) = &self.receiving {
            stop.store(true, Ordering::Relaxed);
            self.stopped = true;
        }
    }

    /// Takes what the answering thread sent. Returns whether anything changed.
    pub fn receive(&mut self, hub: &Hub, title: &str) -> bool {
        let Some((rx, _)) = &self.receiving else {
            return false;
        };
        let mut changed = false;
        let mut ended = None;
        loop {
            match rx.try_recv() {
                Ok(Piece::Text(t)) => {
                    if let Some(e) = self.entries.last_mut() {
                        e.answer.push_str(&t);
                    }
                    changed = true;
                }
                Ok(Piece::Done) => {
                    ended = Some(None);
                    break;
                }
                Ok(Piece::Failed(e)) => {
                    ended = Some(Some(e));
                    break;
                }
                Err(TryRecvError::Empty) if self.stopped => {
                    ended = Some(Some("stopped".to_string()));
                    break;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    ended = Some(Some("the answer stopped".to_string()));
                    break;
                }
            }
        }
        if let Some(error) = ended {
            self.receiving = None;
            self.stopped = false;
            changed = true;
            let answer = self
                .entries
                .last()
                .map(|e| e.answer.clone())
                .unwrap_or_default();
            if let Some(e) = self.entries.last_mut() {
                e.error = error;
            }
            if answer.is_empty() {
                // Nothing came: the question is not part of the conversation.
                self.messages.pop();
            } else {
                self.messages
                    .push(Message::new("assistant", answer.clone()));
                self.keep(hub, title);
                self.blocks = code_blocks(&answer);
                self.block = self.blocks.len().saturating_sub(1);
            }
        }
        changed
    }

    /// Keeps the last exchange in the store's conversations.
    fn keep(&mut self, hub: &Hub, title: &str) {
        let store = hub.vfs.store();
        let id = match self.conversation {
            Some(id) => id,
            None => match conversations::create(
                store,
                title,
                self.persona.name,
                &hub.setting("assistant.model"),
            ) {
                Ok(id) => id,
                Err(_) => return,
            },
        };
        let new = self.conversation.is_none();
        let from = if new { 0 } else { self.messages.len() - 2 };
        if conversations::append(store, id, &self.messages[from..]).is_ok() {
            self.conversation = Some(id);
        }
    }

    /// Chooses the next code block for Ctrl-Y.
    pub fn next_block(&mut self) {
        if !self.blocks.is_empty() {
            self.block = (self.block + 1) % self.blocks.len();
        }
    }

    pub fn scroll(&mut self, up: bool, rows: u16) {
        self.scroll = if up {
            self.scroll.saturating_add(rows)
        } else {
            self.scroll.saturating_sub(rows)
        };
    }

    pub fn draw(
        &self,
        frame: &mut Frame,
        area: Rect,
        focused: bool,
        theme: Option<&crate::theme::Theme>,
        accent: Style,
    ) {
        let color = theme.is_some();
        let title = format!(
            " Assistant ({}){} ",
            self.persona.name,
            if self.busy() { " …" } else { "" }
        );
        let border = if focused {
            accent
        } else {
            Style::default().add_modifier(Modifier::DIM)
        };
        let block = Block::bordered().title(title).border_style(border);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        if inner.height < 3 || inner.width < 4 {
            return;
        }
        let bold = Style::default().add_modifier(Modifier::BOLD);
        let dim = Style::default().add_modifier(Modifier::DIM);
        let mut lines: Vec<Line> = Vec::new();
        if self.entries.is_empty() {
            for l in [
                "Ask about the file, or about the selection if there is one.",
                "",
                "Enter sends the question. Ctrl-Y puts the answer's code block into the",
                "file (Tab picks another block). Esc goes back to the text; Ctrl-E",
                "closes the pane; Ctrl-C stops an answer.",
            ] {
                lines.push(Line::styled(l, dim));
            }
        }
        let last = self.entries.len().saturating_sub(1);
        for (i, e) in self.entries.iter().enumerate() {
            lines.push(Line::styled(format!("you: {}", e.question), bold));
            let last_answer = i == last && !self.blocks.is_empty();
            // The highlighter of the block being drawn, with colour.
            let mut code: Option<(crate::highlight::Highlighter, crate::highlight::LineState)> =
                None;
            for (l, part) in parts(&e.answer) {
                let chosen = |n: usize| last_answer && n == self.block;
                if let (Part::Open(_), Some(t)) = (part, theme) {
                    let lang = assistant::opening_fence(l).map_or("", |(_, lang)| lang);
                    let h = crate::highlight::Highlighter::for_lang(lang, t);
                    let st = h.start();
                    code = Some((h, st));
                }
                match part {
                    Part::Text => lines.push(Line::raw(l.to_string())),
                    Part::Open(n) if chosen(n) => lines.push(Line::styled(
                        format!("┌ block {}/{} · Ctrl-Y inserts", n + 1, self.blocks.len()),
                        accent,
                    )),
                    Part::Open(_) => lines.push(Line::styled("┌", dim)),
                    Part::Close(_) => {
                        code = None;
                        lines.push(Line::styled("└", dim));
                    }
                    Part::Code(n) => {
                        let bar = Span::styled("│ ", if chosen(n) { accent } else { dim });
                        let mut spans = vec![bar];
                        match (&mut code, theme) {
                            (Some((h, st)), Some(t)) => {
                                let base = crate::theme::Style::default();
                                let parts = h.line(st, l, t, base);
                                spans.extend(crate::highlight::styled_line(l, &parts, base).spans);
                            }
                            _ => spans.push(Span::raw(l.to_string())),
                        }
                        lines.push(Line::from(spans));
                    }
                }
            }
            if let Some(err) = &e.error {
                let st = if color {
                    Style::default().fg(ratatui::style::Color::Red)
                } else {
                    bold
                };
                lines.push(Line::styled(err.clone(), st));
            }
            lines.push(Line::raw(""));
        }
        let text_area = Rect::new(inner.x, inner.y, inner.width, inner.height - 2);
        let para = Paragraph::new(lines).wrap(Wrap { trim: false });
        let total = para.line_count(text_area.width) as u16;
        let bottom = total.saturating_sub(text_area.height);
        let offset = bottom.saturating_sub(self.scroll);
        frame.render_widget(para.scroll((offset, 0)), text_area);
        let rule_y = inner.y + inner.height - 2;
        frame
            .buffer_mut()
            .set_string(inner.x, rule_y, "─".repeat(inner.width as usize), dim);
        let prompt = format!("> {}", self.input);
        let w = unicode_width::UnicodeWidthStr::width(prompt.as_str());
        let shown: String = if w >= inner.width as usize {
            prompt.chars().skip(w + 1 - inner.width as usize).collect()
        } else {
            prompt
        };
        frame
            .buffer_mut()
            .set_string(inner.x, rule_y + 1, &shown, Style::default());
        if focused {
            let cw = unicode_width::UnicodeWidthStr::width(shown.as_str()) as u16;
            frame.set_cursor_position((inner.x + cw.min(inner.width - 1), rule_y + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_blocks_are_found_with_any_fence_length() {
        let text = "Try:\n```rust\nfn a() {}\n```\nor\n````\nx\n```\nstill x\n````\n";
        assert_eq!(code_blocks(text), ["fn a() {}\n", "x\n```\nstill x\n"]);
        assert_eq!(code_blocks("```\nunclosed\n"), ["unclosed\n"]);
        assert!(code_blocks("no code").is_empty());
    }
}
