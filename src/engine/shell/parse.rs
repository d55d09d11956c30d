//! Lexer and parser for the shell language (see `man shell`).
//!
//! ```text
//! script   := sep* [ and_or { sep+ and_or } ] sep*        sep: ';' '&' newline
//! and_or   := pipeline { ('&&' | '||') newline* pipeline }
//! pipeline := command { '|' newline* command }
//! command  := { word | redirect }+
//! redirect := [0-2]? ('>' | '>>' | '<') word  |  [12]? '>&' [12]
//! ```
//! Every node carries its byte span so errors can point at a column.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Text; `quoted` text is never a glob or an alias.
    Lit { text: String, quoted: bool },
    /// `$NAME` or `${NAME}`.
    Var { name: String },
    /// `$?`.
    Status,
    /// A leading unquoted `~`: the VFS root in path arguments, the host home in host paths.
    Tilde,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub parts: Vec<Part>,
    pub span: Span,
}

impl Word {
    /// The word's text when it is one plain unquoted literal (used for command names/aliases).
    pub fn plain(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Lit {
                text,
                quoted: false,
            }] => Some(text),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirOp {
    /// `>`: replace the file.
    Write,
    /// `>>`: append to the file.
    Append,
    /// `<`: read the file.
    Read,
    /// `N>&M`: send fd N where fd M goes.
    Dup(u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub fd: u8,
    pub op: RedirOp,
    pub target: Option<Word>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub words: Vec<Word>,
    pub redirects: Vec<Redirect>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    pub commands: Vec<Command>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connector {
    And,
    Or,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AndOr {
    pub first: Pipeline,
    pub rest: Vec<(Connector, Pipeline)>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub and_or: AndOr,
    /// Ends with `&`: run as a background job.
    pub background: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Script {
    pub items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    /// Byte offset into the source.
    pub pos: usize,
    /// The input ended too early (an open quote, a trailing `|`): more lines may complete it.
    pub incomplete: bool,
}

impl ParseError {
    /// 1-based line and column (in characters) of the error.
    pub fn line_col(&self, src: &str) -> (usize, usize) {
        let pos = self.pos.min(src.len());
        let before = &src[..pos];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        (line, col)
    }

    /// The message with the offending line and a caret under the column.
    pub fn render(&self, src: &str) -> String {
        let (line, col) = self.line_col(src);
        let text = src.lines().nth(line - 1).unwrap_or("");
        let loc = if src.contains('\n') {
            format!("line {line}, column {col}")
        } else {
            format!("column {col}")
        };
        format!(
            "parse error at {loc}: {}\n  {text}\n  {}^",
            self.message,
            " ".repeat(col - 1)
        )
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.message, self.pos)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Pipe,
    OrIf,
    Amp,
    AndIf,
    Semi,
    Newline,
    Redir(u8, RedirOp),
}

impl Op {
    fn text(&self) -> &'static str {
        match self {
            Op::Pipe => "|",
            Op::OrIf => "||",
            Op::Amp => "&",
            Op::AndIf => "&&",
            Op::Semi => ";",
            Op::Newline => "newline",
            Op::Redir(_, RedirOp::Write) => ">",
            Op::Redir(_, RedirOp::Append) => ">>",
            Op::Redir(_, RedirOp::Read) => "<",
            Op::Redir(_, RedirOp::Dup(_)) => ">&",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(Word),
    Op(Op, Span),
}

/// Kinds of lexical pieces, for syntax highlighting in the REPL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A word (the first word of a command is the command name).
    Word {
        command: bool,
    },
    /// A quoted string.
    Quoted,
    /// A variable reference.
    Variable,
    /// `|`, `&&`, `;`, redirections…
    Operator,
    Comment,
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    toks: Vec<Tok>,
    classes: Vec<(Span, Class)>,
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}
/// Whether `c` ends a bare word (a blank, a line break, or an operator's first character).
pub fn is_meta(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | ';' | '|' | '&' | '<' | '>')
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }
    fn peek_at(&self, n: usize) -> Option<char> {
        self.src[self.pos..].chars().nth(n)
    }
    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }
    fn op(&mut self, op: Op, len: usize) {
        let span = Span {
            start: self.pos,
            end: self.pos + len,
        };
        self.pos += len;
        self.classes.push((span, Class::Operator));
        self.toks.push(Tok::Op(op, span));
    }

    fn run(mut self) -> Result<Vec<Tok>, ParseError> {
        while self.pos < self.src.len() {
            self.step()?;
        }
        Ok(self.toks)
    }

    /// Lexes one token (or skips blanks or a comment).
    fn step(&mut self) -> Result<(), ParseError> {
        let Some(c) = self.peek() else { return Ok(()) };
        match c {
            ' ' | '\t' | '\r' => self.pos += 1,
            '\n' => self.op(Op::Newline, 1),
            '#' => {
                let start = self.pos;
                let len = self.src[start..]
                    .find('\n')
                    .unwrap_or(self.src.len() - start);
                self.pos += len;
                self.classes.push((
                    Span {
                        start,
                        end: self.pos,
                    },
                    Class::Comment,
                ));
            }
            ';' => self.op(Op::Semi, 1),
            '|' if self.peek_at(1) == Some('|') => self.op(Op::OrIf, 2),
            '|' => self.op(Op::Pipe, 1),
            '&' if self.peek_at(1) == Some('&') => self.op(Op::AndIf, 2),
            '&' => self.op(Op::Amp, 1),
            '<' => self.op(Op::Redir(0, RedirOp::Read), 1),
            '>' => self.redirect(1, 0),
            '0'..='2' if matches!(self.peek_at(1), Some('>') | Some('<')) => {
                let fd = c as u8 - b'0';
                if self.peek_at(1) == Some('<') {
                    if fd != 0 {
                        return Err(
                            self.err(self.pos, "only file descriptor 0 can be read with '<'")
                        );
                    }
                    self.op(Op::Redir(0, RedirOp::Read), 2);
                } else {
                    if fd == 0 {
                        return Err(
                            self.err(self.pos, "file descriptor 0 cannot be written with '>'")
                        );
                    }
                    self.redirect(fd, 1);
                }
            }
            _ => {
                let w = self.word()?;
                self.toks.push(Tok::Word(w));
            }
        }
        if let Some(Tok::Op(Op::Redir(_, RedirOp::Dup(0)), span)) = self.toks.last() {
            return Err(self.err(span.end, "expected 1 or 2 after '>&'"));
        }
        Ok(())
    }

    /// `>`, `>>` or `>&N`, starting `prefix` bytes before the `>`.
    fn redirect(&mut self, fd: u8, prefix: usize) {
        let rest = &self.src[self.pos + prefix..];
        if rest.starts_with(">>") {
            self.op(Op::Redir(fd, RedirOp::Append), prefix + 2);
        } else if let Some(after) = rest.strip_prefix(">&") {
            match after.chars().next() {
                Some(d @ ('1' | '2')) => {
                    self.op(Op::Redir(fd, RedirOp::Dup(d as u8 - b'0')), prefix + 3)
                }
                _ => self.op(Op::Redir(fd, RedirOp::Dup(0)), prefix + 2),
            }
        } else {
            self.op(Op::Redir(fd, RedirOp::Write), prefix + 1);
        }
    }

    fn err(&self, pos: usize, msg: &str) -> ParseError {
        ParseError {
            message: msg.to_string(),
            pos,
            incomplete: false,
        }
    }
    fn incomplete(&self, pos: usize, msg: &str) -> ParseError {
        ParseError {
            message: msg.to_string(),
            pos,
            incomplete: true,
        }
    }

    /// Reads `$'…'`, the quoting GNU `ls` and Valyxo print names in: `\n`, `\t`, `\r`, `\e`,
    /// `\\`, `\'`, `\xHH` and `\u{…}` (or `\uHHHH`). `\xHH` from 80 up is a raw byte of a host
    /// name that is not UTF-8 (see [`crate::text::raw_byte`]), so a name that `ls` shows can
    /// be typed back as shown.
    fn ansi_c_quoted(&mut self) -> Result<String, ParseError> {
        let at = self.pos;
        self.bump(); // $
        self.bump(); // '
        let mut out = String::new();
        loop {
            let esc = self.pos;
            match self.bump() {
                None => return Err(self.incomplete(at, "unclosed $' quote")),
                Some('\'') => return Ok(out),
                Some('\\') => {
                    let c = match self.bump() {
                        None => return Err(self.incomplete(at, "unclosed $' quote")),
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some('r') => '\r',
                        Some('e' | 'E') => '\u{1b}',
                        Some('a') => '\u{7}',
                        Some('x') => {
                            let hex = self.take_hex(2);
                            match u8::from_str_radix(&hex, 16) {
                                Ok(b) if b >= 0x80 => crate::text::raw_char(b),
                                Ok(b) => char::from(b),
                                Err(_) => {
                                    return Err(self.err(esc, "\\x needs one or two hex digits"))
                                }
                            }
                        }
                        Some('u') => {
                            let braced = self.peek() == Some('{');
                            let hex = if braced {
                                self.bump();
                                let h = self.take_hex(6);
                                if self.bump() != Some('}') {
                                    return Err(self.err(esc, "\\u{…} needs a closing '}'"));
                                }
                                h
                            } else {
                                self.take_hex(4)
                            };
                            match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                                Some(c) => c,
                                None => {
                                    return Err(self.err(esc, "\\u needs a character's hex code"))
                                }
                            }
                        }
                        Some(c @ ('\\' | '\'' | '"' | '?')) => c,
                        Some(c) => {
                            out.push('\\'); // as in bash, an unknown escape is kept
                            c
                        }
                    };
                    if c == '\0' {
                        return Err(self.err(esc, "a NUL cannot be part of a word"));
                    }
                    out.push(c);
                }
                Some(c) => out.push(c),
            }
        }
    }

    /// Up to `max` hex digits.
    fn take_hex(&mut self, max: usize) -> String {
        let mut h = String::new();
        while h.len() < max && self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
            h.extend(self.bump());
        }
        h
    }

    fn word(&mut self) -> Result<Word, ParseError> {
        let start = self.pos;
        let mut parts: Vec<Part> = Vec::new();
        fn push_lit(parts: &mut Vec<Part>, s: &str, q: bool) {
            if let Some(Part::Lit { text, quoted }) = parts.last_mut() {
                if *quoted == q {
                    text.push_str(s);
                    return;
                }
            }
            parts.push(Part::Lit {
                text: s.to_string(),
                quoted: q,
            });
        }
        if self.peek() == Some('~') && self.peek_at(1).is_none_or(|c| c == '/' || is_meta(c)) {
            self.bump();
            parts.push(Part::Tilde);
        }
        while let Some(c) = self.peek() {
            if is_meta(c) {
                break;
            }
            match c {
                '\\' => {
                    let at = self.pos;
                    self.bump();
                    match self.bump() {
                        Some('\n') => {} // line continuation
                        Some(c) => push_lit(&mut parts, c.encode_utf8(&mut [0; 4]), true),
                        None => return Err(self.incomplete(at, "the line ends with a backslash")),
                    }
                }
                '\'' => {
                    let at = self.pos;
                    self.bump();
                    let body_start = self.pos;
                    match self.src[self.pos..].find('\'') {
                        Some(i) => {
                            let text = &self.src[body_start..body_start + i];
                            push_lit(&mut parts, text, true);
                            self.pos = body_start + i + 1;
                            self.classes.push((
                                Span {
                                    start: at,
                                    end: self.pos,
                                },
                                Class::Quoted,
                            ));
                        }
                        None => return Err(self.incomplete(at, "unclosed single quote")),
                    }
                }
                '"' => {
                    let at = self.pos;
                    self.bump();
                    let mut any = false;
                    loop {
                        match self.peek() {
                            None => return Err(self.incomplete(at, "unclosed double quote")),
                            Some('"') => {
                                self.bump();
                                break;
                            }
                            Some('\\') => {
                                self.bump();
                                match self.peek() {
                                    Some(c @ ('$' | '"' | '\\' | '`')) => {
                                        self.bump();
                                        push_lit(&mut parts, c.encode_utf8(&mut [0; 4]), true);
                                    }
                                    Some('\n') => {
                                        self.bump();
                                    }
                                    _ => push_lit(&mut parts, "\\", true),
                                }
                            }
                            Some('$') => {
                                let vstart = self.pos;
                                if let Some(p) = self.dollar()? {
                                    self.classes.push((
                                        Span {
                                            start: vstart,
                                            end: self.pos,
                                        },
                                        Class::Variable,
                                    ));
                                    parts.push(p);
                                } else {
                                    push_lit(&mut parts, "$", true);
                                }
                            }
                            Some(c) => {
                                self.bump();
                                push_lit(&mut parts, c.encode_utf8(&mut [0; 4]), true);
                            }
                        }
                        any = true;
                    }
                    if !any {
                        push_lit(&mut parts, "", true);
                    }
                    self.classes.push((
                        Span {
                            start: at,
                            end: self.pos,
                        },
                        Class::Quoted,
                    ));
                }
                '$' if self.peek_at(1) == Some('\'') => {
                    let at = self.pos;
                    let text = self.ansi_c_quoted()?;
                    push_lit(&mut parts, &text, true);
                    self.classes.push((
                        Span {
                            start: at,
                            end: self.pos,
                        },
                        Class::Quoted,
                    ));
                }
                '$' => {
                    let vstart = self.pos;
                    if let Some(p) = self.dollar()? {
                        self.classes.push((
                            Span {
                                start: vstart,
                                end: self.pos,
                            },
                            Class::Variable,
                        ));
                        parts.push(p);
                    } else {
                        push_lit(&mut parts, "$", false);
                    }
                }
                c => {
                    self.bump();
                    push_lit(&mut parts, c.encode_utf8(&mut [0; 4]), false);
                }
            }
        }
        Ok(Word {
            parts,
            span: Span {
                start,
                end: self.pos,
            },
        })
    }

    /// Reads a `$…` reference at the cursor; `None` (cursor past the `$`) when it is a plain `$`.
    fn dollar(&mut self) -> Result<Option<Part>, ParseError> {
        let at = self.pos;
        self.bump(); // '$'
        match self.peek() {
            Some('?') => {
                self.bump();
                Ok(Some(Part::Status))
            }
            Some('{') => {
                self.bump();
                let ns = self.pos;
                match self.src[ns..].find('}') {
                    None => Err(self.incomplete(at, "unclosed '${'")),
                    Some(i) => {
                        let name = &self.src[ns..ns + i];
                        if name == "?" {
                            self.pos = ns + i + 1;
                            return Ok(Some(Part::Status));
                        }
                        let mut cs = name.chars();
                        if !cs.next().is_some_and(is_name_start) || !cs.all(is_name_char) {
                            return Err(self.err(ns, &format!("bad variable name '{name}'")));
                        }
                        self.pos = ns + i + 1;
                        Ok(Some(Part::Var {
                            name: name.to_string(),
                        }))
                    }
                }
            }
            Some(c) if is_name_start(c) => {
                let ns = self.pos;
                while self.peek().is_some_and(is_name_char) {
                    self.bump();
                }
                Ok(Some(Part::Var {
                    name: self.src[ns..self.pos].to_string(),
                }))
            }
            _ => Ok(None),
        }
    }
}

/// Splits `src` into classified spans, for highlighting. Never fails: from a lexical error
/// (an open quote, say) to the end, the text is marked as a string.
pub fn classify(src: &str) -> Vec<(Span, Class)> {
    let mut lx = Lexer {
        src,
        pos: 0,
        toks: Vec::new(),
        classes: Vec::new(),
    };
    while lx.pos < src.len() {
        let before = lx.pos;
        if lx.step().is_err() {
            lx.classes.push((
                Span {
                    start: before,
                    end: src.len(),
                },
                Class::Quoted,
            ));
            break;
        }
    }
    let mut out = lx.classes;
    let mut expect_cmd = true;
    let mut after_redir = false;
    for t in &lx.toks {
        match t {
            Tok::Word(w) => {
                if after_redir {
                    after_redir = false;
                    out.push((w.span, Class::Word { command: false }));
                } else {
                    let is_assign = w
                        .plain()
                        .is_some_and(|s| s.contains('=') && !s.starts_with('='));
                    out.push((
                        w.span,
                        Class::Word {
                            command: expect_cmd && !is_assign,
                        },
                    ));
                    expect_cmd = false;
                }
            }
            Tok::Op(Op::Redir(_, RedirOp::Dup(_)), _) => {}
            Tok::Op(Op::Redir(..), _) => after_redir = true,
            Tok::Op(_, _) => expect_cmd = true,
        }
    }
    // Words first at a position, so the finer spans inside them (quotes, variables) win.
    out.sort_by_key(|(s, c)| (s.start, !matches!(c, Class::Word { .. })));
    out
}

/// Parses a whole script (one or more lines).
pub fn parse(src: &str) -> Result<Script, ParseError> {
    let lx = Lexer {
        src,
        pos: 0,
        toks: Vec::new(),
        classes: Vec::new(),
    };
    let toks = lx.run()?;
    Parser {
        toks,
        i: 0,
        src_len: src.len(),
    }
    .script()
}

struct Parser {
    toks: Vec<Tok>,
    i: usize,
    src_len: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i)
    }
    fn peek_op(&self) -> Option<(&Op, Span)> {
        match self.peek() {
            Some(Tok::Op(op, span)) => Some((op, *span)),
            _ => None,
        }
    }
    fn skip_newlines(&mut self) {
        while let Some((Op::Newline, _)) = self.peek_op() {
            self.i += 1;
        }
    }

    fn script(mut self) -> Result<Script, ParseError> {
        let mut items = Vec::new();
        loop {
            while let Some((Op::Semi | Op::Newline, span)) = self.peek_op() {
                if matches!(self.peek_op(), Some((Op::Semi, _)))
                    && !items.is_empty()
                    && self.prev_is_semi()
                {
                    return Err(ParseError {
                        message: "expected a command before ';'".into(),
                        pos: span.start,
                        incomplete: false,
                    });
                }
                self.i += 1;
            }
            match self.peek() {
                None => break,
                Some(Tok::Op(op, span)) => {
                    return Err(ParseError {
                        message: format!("expected a command before '{}'", op.text()),
                        pos: span.start,
                        incomplete: false,
                    })
                }
                Some(Tok::Word(_)) => {}
            }
            let and_or = self.and_or()?;
            let mut background = false;
            match self.peek_op() {
                Some((Op::Amp, _)) => {
                    background = true;
                    self.i += 1;
                }
                Some((Op::Semi | Op::Newline, _)) => {
                    self.i += 1;
                }
                None => {}
                Some((op, span)) => {
                    return Err(ParseError {
                        message: format!("unexpected '{}'", op.text()),
                        pos: span.start,
                        incomplete: false,
                    })
                }
            }
            items.push(Item { and_or, background });
        }
        Ok(Script { items })
    }

    fn prev_is_semi(&self) -> bool {
        self.i > 0
            && matches!(
                self.toks.get(self.i - 1),
                Some(Tok::Op(Op::Semi | Op::Amp, _))
            )
    }

    fn and_or(&mut self) -> Result<AndOr, ParseError> {
        let first = self.pipeline()?;
        let start = first.commands[0].span.start;
        let mut end = first.commands.last().map(|c| c.span.end).unwrap_or(start);
        let mut rest = Vec::new();
        loop {
            let conn = match self.peek_op() {
                Some((Op::AndIf, _)) => Connector::And,
                Some((Op::OrIf, _)) => Connector::Or,
                _ => break,
            };
            let (op, span) = self.peek_op().map(|(o, s)| (o.text(), s)).unwrap();
            self.i += 1;
            self.skip_newlines();
            self.expect_command_after(op, span)?;
            let p = self.pipeline()?;
            end = p.commands.last().map(|c| c.span.end).unwrap_or(end);
            rest.push((conn, p));
        }
        Ok(AndOr {
            first,
            rest,
            span: Span { start, end },
        })
    }

    fn expect_command_after(&self, op: &str, span: Span) -> Result<(), ParseError> {
        match self.peek() {
            None => Err(ParseError {
                message: format!("expected a command after '{op}'"),
                pos: self.src_len,
                incomplete: true,
            }),
            Some(Tok::Op(Op::Redir(..), _)) | Some(Tok::Word(_)) => Ok(()),
            Some(Tok::Op(other, s)) => Err(ParseError {
                message: format!("expected a command after '{op}', found '{}'", other.text()),
                pos: if s.start > span.start {
                    s.start
                } else {
                    span.start
                },
                incomplete: false,
            }),
        }
    }

    fn pipeline(&mut self) -> Result<Pipeline, ParseError> {
        let mut commands = vec![self.command()?];
        while let Some((Op::Pipe, span)) = self.peek_op() {
            self.i += 1;
            self.skip_newlines();
            self.expect_command_after("|", span)?;
            commands.push(self.command()?);
        }
        Ok(Pipeline { commands })
    }

    fn command(&mut self) -> Result<Command, ParseError> {
        let mut words = Vec::new();
        let mut redirects = Vec::new();
        let mut span: Option<Span> = None;
        let extend = |s: Span, span: &mut Option<Span>| {
            *span = Some(match *span {
                None => s,
                Some(a) => Span {
                    start: a.start,
                    end: s.end,
                },
            })
        };
        loop {
            match self.peek().cloned() {
                Some(Tok::Word(w)) => {
                    extend(w.span, &mut span);
                    words.push(w);
                    self.i += 1;
                }
                Some(Tok::Op(Op::Redir(fd, op), s)) => {
                    self.i += 1;
                    if let RedirOp::Dup(_) = op {
                        extend(s, &mut span);
                        redirects.push(Redirect {
                            fd,
                            op,
                            target: None,
                            span: s,
                        });
                        continue;
                    }
                    match self.peek().cloned() {
                        Some(Tok::Word(w)) => {
                            self.i += 1;
                            let rs = Span {
                                start: s.start,
                                end: w.span.end,
                            };
                            extend(rs, &mut span);
                            redirects.push(Redirect {
                                fd,
                                op,
                                target: Some(w),
                                span: rs,
                            });
                        }
                        _ => {
                            return Err(ParseError {
                                message: format!(
                                    "expected a file name after '{}'",
                                    Op::Redir(fd, op).text()
                                ),
                                pos: s.end,
                                incomplete: false,
                            })
                        }
                    }
                }
                _ => break,
            }
        }
        if words.is_empty() {
            let pos = span.map(|s| s.start).unwrap_or(self.src_len);
            return Err(ParseError {
                message: "a redirection needs a command".into(),
                pos,
                incomplete: false,
            });
        }
        Ok(Command {
            words,
            redirects,
            span: span.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str, quoted: bool) -> Part {
        Part::Lit {
            text: s.into(),
            quoted,
        }
    }

    fn words(src: &str) -> Vec<Vec<Part>> {
        let s = parse(src).unwrap();
        s.items[0].and_or.first.commands[0]
            .words
            .iter()
            .map(|w| w.parts.clone())
            .collect()
    }

    #[test]
    fn quoting_and_escapes() {
        assert_eq!(
            words(r#"echo 'a b' "c $X d" e\ f ${Y}z $? '' """#),
            vec![
                vec![lit("echo", false)],
                vec![lit("a b", true)],
                vec![
                    lit("c ", true),
                    Part::Var { name: "X".into() },
                    lit(" d", true)
                ],
                vec![lit("e", false), lit(" ", true), lit("f", false)],
                vec![Part::Var { name: "Y".into() }, lit("z", false)],
                vec![Part::Status],
                vec![lit("", true)],
                vec![lit("", true)],
            ]
        );
        assert_eq!(
            words(r#"echo "a\"b\\c\n""#)[1],
            vec![lit("a\"b\\c\\n", true)]
        );
        assert_eq!(words("echo ~ ~/x a~")[1], vec![Part::Tilde]);
        assert_eq!(
            words("echo ~ ~/x a~")[2],
            vec![Part::Tilde, lit("/x", false)]
        );
        assert_eq!(words("echo ~ ~/x a~")[3], vec![lit("a~", false)]);
        assert_eq!(words("echo $ 5$")[1], vec![lit("$", false)]);
    }

    #[test]
    fn ansi_c_quoting_reads_back_what_names_are_shown_as() {
        assert_eq!(
            words(r"echo $'a\e[31mb' x$'\t'y $'it\'s' $'\u{202e}\u00e9' $'\z'")[1..],
            [
                vec![lit("a\u{1b}[31mb", true)],
                vec![lit("x", false), lit("\t", true), lit("y", false)],
                vec![lit("it's", true)],
                vec![lit("\u{202e}é", true)],
                vec![lit("\\z", true)],
            ]
        );
        // What `escape` prints comes back as the same name, raw bytes included.
        for name in [
            "a\u{1b}]0;title\u{7}".to_string(),
            format!("caf{}.txt", crate::text::raw_char(0xe9)),
            "two\nlines it's".to_string(),
        ] {
            let shown = crate::text::escape(&name).into_owned();
            assert_eq!(words(&format!("echo {shown}"))[1], vec![lit(&name, true)]);
        }
        assert!(parse("echo $'open").unwrap_err().incomplete);
        assert!(parse(r"echo $'\x'").is_err());
        assert!(parse(r"echo $'\x00'").is_err());
    }

    #[test]
    fn operators_and_structure() {
        let s = parse("a | b && c || d; e & f # comment\n g").unwrap();
        assert_eq!(s.items.len(), 4);
        assert_eq!(s.items[0].and_or.first.commands.len(), 2);
        assert_eq!(s.items[0].and_or.rest.len(), 2);
        assert_eq!(s.items[0].and_or.rest[0].0, Connector::And);
        assert!(s.items[1].background);
        assert!(!s.items[2].background);
        let f = &s.items[2].and_or.first.commands[0];
        assert_eq!(f.words.len(), 1);
    }

    #[test]
    fn redirections() {
        let s = parse("cmd >out 2>>err <in 2>&1 >&2 x").unwrap();
        let c = &s.items[0].and_or.first.commands[0];
        assert_eq!(c.words.len(), 2);
        let ops: Vec<(u8, RedirOp)> = c.redirects.iter().map(|r| (r.fd, r.op)).collect();
        assert_eq!(
            ops,
            vec![
                (1, RedirOp::Write),
                (2, RedirOp::Append),
                (0, RedirOp::Read),
                (2, RedirOp::Dup(1)),
                (1, RedirOp::Dup(2)),
            ]
        );
        // A digit inside a word is not a file descriptor.
        let s = parse("echo a2>f").unwrap();
        let c = &s.items[0].and_or.first.commands[0];
        assert_eq!(c.words[1].parts, vec![lit("a2", false)]);
    }

    #[test]
    fn errors_point_at_the_column() {
        let e = parse("ls | | wc").unwrap_err();
        assert_eq!(e.line_col("ls | | wc"), (1, 6));
        assert!(!e.incomplete);
        let e = parse("echo hi >").unwrap_err();
        assert!(e.message.contains("file name"), "{}", e.message);
        let e = parse("&& ls").unwrap_err();
        assert_eq!(e.pos, 0);
        let e = parse("ls;;pwd").unwrap_err();
        assert_eq!(e.pos, 3);
        assert!(parse("echo ${1x}").is_err());
        let r = e.render("ls;;pwd");
        assert!(r.contains("column 4") && r.ends_with("   ^"), "{r}");
    }

    /// (line, column) of the error `src` gives, and whether more input could complete it.
    fn error_at(src: &str) -> (usize, usize, bool) {
        let e = parse(src).unwrap_err();
        let (l, c) = e.line_col(src);
        (l, c, e.incomplete)
    }

    #[test]
    fn errors_point_at_the_offending_character() {
        // An unclosed quote points at the quote that opened it, wherever it is.
        assert_eq!(error_at("echo 'abc"), (1, 6, true));
        assert_eq!(error_at("echo ok \"abc"), (1, 9, true));
        assert_eq!(error_at("echo a\necho b 'c"), (2, 8, true));
        assert_eq!(error_at("echo é 'c"), (1, 8, true));
        assert_eq!(error_at("echo ${A"), (1, 6, true));
        // A redirection without a file name points just after its operator.
        assert_eq!(error_at("echo hi >| wc"), (1, 10, false));
        assert_eq!(error_at("cat <; ls"), (1, 6, false));
        assert_eq!(error_at("ls 2>> && x"), (1, 7, false));
        // An operator where a command should be points at the operator, on its own line.
        assert_eq!(error_at("ls\nls | | wc"), (2, 6, false));
        assert_eq!(error_at("echo a; ; b"), (1, 9, false));
        // Rendered, the caret sits under that column.
        let src = "echo hi >| wc";
        let r = parse(src).unwrap_err().render(src);
        assert!(
            r.ends_with(&format!("\n  echo hi >| wc\n  {}^", " ".repeat(9))),
            "{r}"
        );
        let src = "ls\nls | | wc";
        let r = parse(src).unwrap_err().render(src);
        assert!(r.starts_with("parse error at line 2, column 6: "), "{r}");
        assert!(r.ends_with("\n  ls | | wc\n       ^"), "{r}");
    }

    /// Lines made of the shell's own characters, with some others among them.
    fn shellish() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        proptest::collection::vec(
            prop_oneof![
                proptest::sample::select(
                    "'\"\\$`~*?{}()|&;<>#=12 \n\tabx"
                        .chars()
                        .collect::<Vec<_>>()
                ),
                any::<char>(),
            ],
            0..32,
        )
        .prop_map(|cs| cs.into_iter().collect())
    }

    proptest::proptest! {
        /// Whatever the line, parsing ends (no panic) with a tree or an error placed inside
        /// the line on a character, which renders with its caret; classifying it ends too.
        #[test]
        fn any_line_parses_or_points_inside_itself(src in shellish()) {
            let _ = classify(&src);
            if let Err(e) = parse(&src) {
                proptest::prop_assert!(e.pos <= src.len(), "{:?}: {:?}", src, e);
                proptest::prop_assert!(src.is_char_boundary(e.pos), "{:?}: {:?}", src, e);
                let (line, col) = e.line_col(&src);
                proptest::prop_assert!(line >= 1 && col >= 1);
                proptest::prop_assert!(e.render(&src).ends_with('^'));
            }
        }
    }

    #[test]
    fn incomplete_input_asks_for_more() {
        for src in [
            "echo 'abc",
            "echo \"abc",
            "ls |",
            "ls &&",
            "echo a\\",
            "echo ${A",
        ] {
            let e = parse(src).unwrap_err();
            assert!(e.incomplete, "{src}: {e}");
        }
        assert!(parse("echo 'a\nb'").is_ok());
        assert!(parse("ls |\n wc").is_ok());
    }

    #[test]
    fn classify_marks_commands_strings_and_operators() {
        let c = classify("ls -l | grep 'x' > out");
        let cmd: Vec<_> = c
            .iter()
            .filter(|(_, k)| *k == Class::Word { command: true })
            .map(|(s, _)| s.start)
            .collect();
        assert_eq!(cmd, vec![0, 8]);
        assert!(c.iter().any(|(_, k)| *k == Class::Quoted));
        assert!(c.iter().filter(|(_, k)| *k == Class::Operator).count() >= 2);
        // Unfinished input still classifies what it can.
        let c = classify("echo 'abc");
        assert!(c.iter().any(|(_, k)| *k == Class::Quoted));
    }
}
