//! ValyxoScript (`.vs`), the line-based language of the first Valyxo platform, translated to
//! Rhai so old scripts keep running. `manuals/valyxoscript.md` lists what is supported and how
//! each construct maps to Rhai.
//!
//! The translation keeps lines: line N of the Rhai text comes from line N of the original, so
//! runtime errors point at the line the user wrote. Variables are function-scoped as in the
//! original language: every variable a scope assigns is declared once at the top of it.

use std::collections::BTreeSet;

/// A translated script.
#[derive(Clone, Debug)]
pub struct Translation {
    pub rhai: String,
    pub original: String,
}

impl Translation {
    /// The original line a Rhai line came from (the same line; helpers follow the last line).
    pub fn original_line(&self, rhai_line: usize) -> usize {
        rhai_line.clamp(1, self.original.lines().count().max(1))
    }
}

/// Helper functions appended after the translated lines.
const PRELUDE: &str = "
fn __vs_join(parts) { let s = \"\"; for (v, i) in parts { if i > 0 { s += \" \"; } s += v.to_string(); } s }";

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Num(String),
    /// A string literal, already written as a Rhai literal.
    Str(String),
    Op(String),
}

impl Tok {
    fn is(&self, s: &str) -> bool {
        match self {
            Tok::Ident(i) => i == s,
            Tok::Op(o) => o == s,
            _ => false,
        }
    }
}

fn tokenize(line: &str) -> Result<Vec<Tok>, String> {
    let cs: Vec<char> = line.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '#' {
            break;
        } else if c.is_ascii_digit() {
            let s = i;
            while i < cs.len() && (cs[i].is_ascii_alphanumeric() || cs[i] == '.' || cs[i] == '_') {
                i += 1;
            }
            out.push(Tok::Num(cs[s..i].iter().collect()));
        } else if c.is_alphabetic() || c == '_' {
            let s = i;
            while i < cs.len() && (cs[i].is_alphanumeric() || cs[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(cs[s..i].iter().collect()));
        } else if c == '"' || c == '\'' {
            let mut lit = String::from("\"");
            i += 1;
            let mut closed = false;
            while i < cs.len() {
                let d = cs[i];
                if d == '\\' && i + 1 < cs.len() {
                    lit.push('\\');
                    lit.push(cs[i + 1]);
                    i += 2;
                    continue;
                }
                if d == c {
                    closed = true;
                    i += 1;
                    break;
                }
                match d {
                    '"' => lit.push_str("\\\""),
                    // `${` would start interpolation only in back-tick strings; nothing to do.
                    _ => lit.push(d),
                }
                i += 1;
            }
            if !closed {
                return Err("the string is not closed".into());
            }
            lit.push('"');
            out.push(Tok::Str(lit));
        } else {
            let two: String = cs[i..(i + 2).min(cs.len())].iter().collect();
            let op = match two.as_str() {
                "==" | "!=" | "<=" | ">=" | "**" | "//" | "+=" | "-=" | "*=" | "/=" | "<>" => two,
                _ => c.to_string(),
            };
            if !"+-*/%<>=!(),[]{}.:^&|".contains(op.chars().next().unwrap_or(' ')) {
                return Err(format!("unexpected character '{c}'"));
            }
            i += op.chars().count();
            out.push(Tok::Op(op));
        }
    }
    Ok(out)
}

/// Translates an expression's tokens; collects the plain identifiers it reads.
fn expr(toks: &[Tok], reads: &mut BTreeSet<String>) -> Result<String, String> {
    if toks.is_empty() {
        return Err("an expression is missing".into());
    }
    let mut out = String::new();
    let mut prev: Option<&Tok> = None;
    for (k, t) in toks.iter().enumerate() {
        let next = toks.get(k + 1);
        let text = match t {
            Tok::Ident(w) => match w.as_str() {
                "and" => "&&".to_string(),
                "or" => "||".to_string(),
                "not" => "!".to_string(),
                "True" | "true" => "true".to_string(),
                "False" | "false" => "false".to_string(),
                "None" | "none" => "()".to_string(),
                "str" if next.is_some_and(|n| n.is("(")) => "to_string".to_string(),
                "int" if next.is_some_and(|n| n.is("(")) => "__vs_int".to_string(),
                _ => {
                    let is_call = next.is_some_and(|n| n.is("("));
                    let is_prop = prev.is_some_and(|p| p.is("."));
                    if !is_call && !is_prop {
                        reads.insert(w.clone());
                    }
                    w.clone()
                }
            },
            Tok::Num(n) => n.clone(),
            Tok::Str(s) => s.clone(),
            Tok::Op(o) => match o.as_str() {
                "//" => return Err("'//' (floor division) is not supported; with whole numbers '/' already divides to a whole number".into()),
                "=" => return Err("'=' inside an expression: compare with '==', assign with 'set NAME = VALUE'".into()),
                "<>" => "!=".to_string(),
                "{" | "}" | ":" | "+=" | "-=" | "*=" | "/=" | "&" | "|" => {
                    return Err(format!("'{o}' is not supported in an expression"))
                }
                _ => o.clone(),
            },
        };
        let tight = match prev {
            None => true,
            Some(p) => {
                (t.is("(") || t.is("[")) && (matches!(p, Tok::Ident(_)) || p.is(")") || p.is("]"))
                    || p.is("(")
                    || p.is("[")
                    || p.is(".")
                    || t.is(")")
                    || t.is("]")
                    || t.is(",")
                    || t.is(".")
            }
        };
        if !tight {
            out.push(' ');
        }
        out.push_str(&text);
        prev = Some(t);
    }
    Ok(out)
}

/// Splits tokens at `kw` (an identifier) outside brackets: the part before and after.
fn split_kw<'a>(toks: &'a [Tok], kw: &str) -> Option<(&'a [Tok], &'a [Tok])> {
    let mut depth = 0i32;
    for (i, t) in toks.iter().enumerate() {
        if t.is("(") || t.is("[") {
            depth += 1;
        } else if t.is(")") || t.is("]") {
            depth -= 1;
        } else if depth == 0 && t.is(kw) {
            return Some((&toks[..i], &toks[i + 1..]));
        }
    }
    None
}

/// A condition may be written `[cond]`, as the original documentation did.
fn unbracket(toks: &[Tok]) -> &[Tok] {
    if toks.len() >= 2 && toks[0].is("[") && toks[toks.len() - 1].is("]") {
        let mut depth = 0;
        for (i, t) in toks.iter().enumerate() {
            if t.is("[") || t.is("(") {
                depth += 1;
            } else if t.is("]") || t.is(")") {
                depth -= 1;
                if depth == 0 && i + 1 < toks.len() {
                    return toks;
                }
            }
        }
        return &toks[1..toks.len() - 1];
    }
    toks
}

#[derive(Debug, PartialEq)]
enum Block {
    If,
    Loop,
    Func,
}

/// One scope (the top level or a function): the variables it assigns and reads.
#[derive(Default)]
struct Scope {
    params: BTreeSet<String>,
    sets: BTreeSet<String>,
    reads: Vec<(String, usize)>,
    /// Index of the output line that receives the declarations.
    decl_line: usize,
    name: Option<String>,
}

struct Translator {
    lines: Vec<String>,
    blocks: Vec<(Block, usize)>,
    top: Scope,
    func: Option<Scope>,
    funcs: BTreeSet<String>,
    line_no: usize,
}

fn is_ident(t: Option<&Tok>) -> Option<&str> {
    match t {
        Some(Tok::Ident(i)) => Some(i),
        _ => None,
    }
}

impl Translator {
    fn scope(&mut self) -> &mut Scope {
        self.func.as_mut().unwrap_or(&mut self.top)
    }

    fn ex(&mut self, toks: &[Tok]) -> Result<String, String> {
        let mut reads = BTreeSet::new();
        let s = expr(toks, &mut reads)?;
        let line = self.line_no;
        self.scope()
            .reads
            .extend(reads.into_iter().map(|r| (r, line)));
        Ok(s)
    }

    /// A simple statement (one that can follow `then`/`else` on one line).
    fn simple(&mut self, toks: &[Tok]) -> Result<String, String> {
        let toks = unbracket(toks);
        let Some(first) = toks.first() else {
            return Err("a statement is missing".into());
        };
        match is_ident(Some(first)) {
            Some("set") => {
                let Some(name) = is_ident(toks.get(1)) else {
                    return Err("'set' needs a variable name: set NAME = VALUE".into());
                };
                let name = name.to_string();
                let op = toks.get(2).ok_or("'set' needs '= VALUE'")?;
                let rhs = self.ex(&toks[3..])?;
                self.scope().sets.insert(name.clone());
                match op {
                    Tok::Op(o) if o == "=" => Ok(format!("{name} = {rhs};")),
                    Tok::Op(o) if ["+=", "-=", "*=", "/="].contains(&o.as_str()) => {
                        let line = self.line_no;
                        self.scope().reads.push((name.clone(), line));
                        Ok(format!("{name} {o} {rhs};"))
                    }
                    _ => Err("'set' needs '=': set NAME = VALUE".into()),
                }
            }
            Some("print") => {
                let args = &toks[1..];
                if args.is_empty() {
                    return Ok("print(\"\");".into());
                }
                let parts = split_commas(args);
                let mut xs = Vec::new();
                for p in parts {
                    xs.push(self.ex(p)?);
                }
                if xs.len() == 1 {
                    Ok(format!("print({});", xs[0]))
                } else {
                    Ok(format!("print(__vs_join([{}]));", xs.join(", ")))
                }
            }
            Some("return") => {
                if toks.len() == 1 {
                    Ok("return;".into())
                } else {
                    Ok(format!("return {};", self.ex(&toks[1..])?))
                }
            }
            Some("break") | Some("continue") if toks.len() == 1 => {
                if !self.blocks.iter().any(|(b, _)| *b == Block::Loop) {
                    return Err(format!("'{}' outside a loop", first_word(first)));
                }
                Ok(format!("{};", first_word(first)))
            }
            Some(name) if toks.get(1).is_some_and(|t| t.is("(")) && toks.last().is_some_and(|t| t.is(")")) => {
                let _ = name;
                Ok(format!("{};", self.ex(toks)?))
            }
            Some(w @ ("if" | "for" | "while" | "func" | "else")) => {
                Err(format!("'{w}' cannot be used here"))
            }
            _ => Err(format!(
                "unsupported statement '{}': expected set, print, if, for, while, func, return, break, continue or a function call",
                render(toks)
            )),
        }
    }

    fn line(&mut self, text: &str) -> Result<String, String> {
        let toks = tokenize(text)?;
        if toks.is_empty() {
            return Ok(String::new());
        }
        let ends_block = toks.last().is_some_and(|t| t.is("{"));
        let head = is_ident(toks.first()).unwrap_or("");
        // `}`, `} else {`, `} else if COND then {`
        if toks[0].is("}") {
            let Some((kind, _)) = self.blocks.pop() else {
                return Err("'}' without an open block".into());
            };
            if toks.len() == 1 {
                if kind == Block::Func {
                    self.end_func()?;
                }
                return Ok("}".into());
            }
            if !toks[1].is("else") || kind != Block::If {
                return Err("after '}' only 'else' may follow, and only to close an if".into());
            }
            if !ends_block {
                return Err("'} else' must open a block: } else {".into());
            }
            self.blocks.push((Block::If, self.line_no));
            if toks.len() == 3 {
                return Ok("} else {".into());
            }
            if !toks[2].is("if") {
                return Err("expected '} else {' or '} else if CONDITION then {'".into());
            }
            let cond = self.cond(&toks[3..toks.len() - 1])?;
            return Ok(format!("}} else if {cond} {{"));
        }
        match head {
            "if" => {
                let rest = &toks[1..];
                if ends_block {
                    self.blocks.push((Block::If, self.line_no));
                    let cond = self.cond(&rest[..rest.len() - 1])?;
                    return Ok(format!("if {cond} {{"));
                }
                let (c, stmts) = split_kw(rest, "then")
                    .ok_or("'if' needs 'then': if CONDITION then STATEMENT [else STATEMENT]")?;
                let cond = self.ex(unbracket(c))?;
                let (yes, no) = match split_kw(stmts, "else") {
                    Some((y, n)) => (y, Some(n)),
                    None => (stmts, None),
                };
                let yes = self.simple(yes)?;
                match no {
                    Some(n) => {
                        let no = self.simple(n)?;
                        Ok(format!("if {cond} {{ {yes} }} else {{ {no} }}"))
                    }
                    None => Ok(format!("if {cond} {{ {yes} }}")),
                }
            }
            "while" => {
                if !ends_block {
                    return Err("'while' must open a block: while CONDITION {".into());
                }
                self.blocks.push((Block::Loop, self.line_no));
                let cond = self.ex(unbracket(&toks[1..toks.len() - 1]))?;
                Ok(format!("while {cond} {{"))
            }
            "for" => {
                if !ends_block {
                    return Err("'for' must open a block: for NAME in FROM to TO {".into());
                }
                let Some(var) = is_ident(toks.get(1)).map(str::to_string) else {
                    return Err("'for' needs a loop variable: for NAME in FROM to TO {".into());
                };
                if !toks.get(2).is_some_and(|t| t.is("in")) {
                    return Err("expected 'in': for NAME in FROM to TO {".into());
                }
                let range = &toks[3..toks.len() - 1];
                let (from, to) = split_kw(range, "to").ok_or(
                    "only counting loops are supported: for NAME in FROM to TO { (TO included)",
                )?;
                let (from, to) = (self.ex(from)?, self.ex(to)?);
                self.blocks.push((Block::Loop, self.line_no));
                self.scope().params.insert(var.clone());
                Ok(format!("for {var} in ({from})..=({to}) {{"))
            }
            "func" => {
                if !self.blocks.is_empty() {
                    return Err("'func' must be at the top level, not inside a block".into());
                }
                if !ends_block {
                    return Err("'func' must open a block: func NAME(A, B) {".into());
                }
                let Some(name) = is_ident(toks.get(1)).map(str::to_string) else {
                    return Err("'func' needs a name: func NAME(A, B) {".into());
                };
                let inner = &toks[2..toks.len() - 1];
                if inner.len() < 2 || !inner[0].is("(") || !inner[inner.len() - 1].is(")") {
                    return Err("expected parameters in parentheses: func NAME(A, B) {".into());
                }
                let mut params = Vec::new();
                for p in split_commas(&inner[1..inner.len() - 1]) {
                    match p {
                        [Tok::Ident(n)] => params.push(n.clone()),
                        [] if params.is_empty() => {}
                        _ => return Err(format!("'{}' is not a parameter name", render(p))),
                    }
                }
                self.funcs.insert(name.clone());
                self.blocks.push((Block::Func, self.line_no));
                self.func = Some(Scope {
                    params: params.iter().cloned().collect(),
                    decl_line: self.line_no - 1,
                    name: Some(name.clone()),
                    ..Scope::default()
                });
                Ok(format!("fn {name}({}) {{", params.join(", ")))
            }
            "else" => {
                Err("'else' must follow '}' of an if block, or an if on the same line".into())
            }
            _ => self.simple(&toks),
        }
    }

    fn cond(&mut self, toks: &[Tok]) -> Result<String, String> {
        let toks = match split_kw(toks, "then") {
            Some((c, [])) => c,
            Some(_) => return Err("nothing may follow 'then' before '{'".into()),
            None => toks,
        };
        self.ex(unbracket(toks))
    }

    /// Closes a function: declares its variables and checks it reads no outer variables.
    fn end_func(&mut self) -> Result<(), String> {
        let f = self.func.take().expect("inside a function");
        let name = f.name.clone().unwrap_or_default();
        for (r, line) in &f.reads {
            if !f.params.contains(r) && !f.sets.contains(r) {
                self.line_no = *line;
                return Err(format!(
                    "function '{name}' reads '{r}', which it neither receives nor sets; functions \
                     see only their parameters, so pass '{r}' as one"
                ));
            }
        }
        declare(&mut self.lines, &f);
        Ok(())
    }
}

fn first_word(t: &Tok) -> String {
    match t {
        Tok::Ident(i) => i.clone(),
        _ => String::new(),
    }
}

fn render(toks: &[Tok]) -> String {
    toks.iter()
        .map(|t| match t {
            Tok::Ident(s) | Tok::Num(s) | Tok::Str(s) | Tok::Op(s) => s.as_str(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn split_commas(toks: &[Tok]) -> Vec<&[Tok]> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, t) in toks.iter().enumerate() {
        if t.is("(") || t.is("[") {
            depth += 1;
        } else if t.is(")") || t.is("]") {
            depth -= 1;
        } else if depth == 0 && t.is(",") {
            parts.push(&toks[start..i]);
            start = i + 1;
        }
    }
    parts.push(&toks[start..]);
    parts
}

/// Adds `let NAME;` for every variable a scope assigns (and is not a parameter) to the line
/// that opens the scope.
fn declare(lines: &mut [String], s: &Scope) {
    let decls: String = s
        .sets
        .iter()
        .filter(|v| !s.params.contains(*v))
        .map(|v| format!(" let {v};"))
        .collect();
    if decls.is_empty() {
        return;
    }
    let l = &mut lines[s.decl_line];
    if s.name.is_some() {
        l.push_str(&decls);
    } else {
        *l = format!("{}{l}", decls.trim_start().to_string() + " ");
    }
}

/// Translates a ValyxoScript program to Rhai. Errors read `LINE: error: MESSAGE` followed by
/// the offending line.
pub fn translate(src: &str) -> Result<Translation, String> {
    let mut t = Translator {
        lines: Vec::new(),
        blocks: Vec::new(),
        top: Scope::default(),
        func: None,
        funcs: BTreeSet::new(),
        line_no: 0,
    };
    let src_lines: Vec<&str> = src.lines().collect();
    let fail = |n: usize, msg: String| -> String {
        let text = src_lines.get(n.wrapping_sub(1)).copied().unwrap_or("");
        format!("{n}: error: {msg}\n{n:>5} | {text}")
    };
    for (i, raw) in src_lines.iter().enumerate() {
        t.line_no = i + 1;
        // A shebang line stays a (Rhai-accepted) shebang.
        if i == 0 && raw.starts_with("#!") {
            t.lines.push(String::new());
            continue;
        }
        let out = t.line(raw).map_err(|m| fail(t.line_no, m))?;
        t.lines.push(out);
    }
    if let Some((kind, line)) = t.blocks.last() {
        let what = match kind {
            Block::If => "if",
            Block::Loop => "loop",
            Block::Func => "func",
        };
        return Err(fail(
            *line,
            format!("this {what} block is never closed with '}}'"),
        ));
    }
    if t.lines.is_empty() {
        t.lines.push(String::new());
    }
    let top = std::mem::take(&mut t.top);
    declare(&mut t.lines, &top);
    let mut rhai = t.lines.join("\n");
    rhai.push_str(PRELUDE);
    rhai.push_str("\nfn __vs_int(v) { if type_of(v) == \"string\" { parse_int(v.trim()) } else if type_of(v) == \"f64\" { v.to_int() } else { v } }\n");
    Ok(Translation {
        rhai,
        original: src.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(src: &str) -> String {
        let t = translate(src).unwrap_or_else(|e| panic!("{e}"));
        let out = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut e = rhai::Engine::new();
        let o = out.clone();
        e.on_print(move |s| {
            let mut g = o.lock().unwrap();
            g.push_str(s);
            g.push('\n');
        });
        e.run(&t.rhai)
            .unwrap_or_else(|err| panic!("{err}\n{}", t.rhai));
        let s = out.lock().unwrap().clone();
        s
    }

    #[test]
    fn variables_print_and_operators() {
        assert_eq!(
            run("set x = 5\nset y = x * 2 + 1  # comment\nprint x, y, 'a \"q\"'\nprint not (x > 3 and y < 3) or False"),
            "5 11 a \"q\"\ntrue\n"
        );
    }

    #[test]
    fn nested_blocks_with_else_and_variable_bounds() {
        let src = "\
set n = 4
set total = 0
for i in 1 to n {
    if i % 2 == 0 then {
        set total = total + i
        if i == 4 then print \"four\" else print \"not four\"
    } else if i == 3 then {
        print \"three\"
    } else {
        print \"odd\", i
    }
}
print total
set k = 0
while [k < 3] {
    set k = k + 1
}
print k
";
        assert_eq!(run(src), "odd 1\nnot four\nthree\nfour\n6\n3\n");
    }

    #[test]
    fn functions_and_calls() {
        let src = "func add(a, b) {\n  set s = a + b\n  return s\n}\nprint add(2, 3)\nfunc hi(name) {\n  print \"hi\", name\n}\nhi(\"vs\")\n";
        assert_eq!(run(src), "5\nhi vs\n");
    }

    #[test]
    fn variables_set_in_blocks_are_visible_after_them() {
        assert_eq!(run("if 1 < 2 then {\n set a = 1\n}\nprint a\n"), "1\n");
    }

    #[test]
    fn unsupported_constructs_name_the_line() {
        let e = translate("set x = 1\nrepeat 3 times\n").unwrap_err();
        assert!(e.starts_with("2: error: unsupported statement"), "{e}");
        let e = translate("set x = 1\nif x == 1 then {\nprint x\n").unwrap_err();
        assert!(
            e.starts_with("2: error: this if block is never closed"),
            "{e}"
        );
        let e = translate("set g = 1\nfunc f() {\n  return g\n}\n").unwrap_err();
        assert!(e.starts_with("3: error: function 'f' reads 'g'"), "{e}");
        let e = translate("print 7 // 2\n").unwrap_err();
        assert!(e.contains("floor division"), "{e}");
        let e = translate("}\n").unwrap_err();
        assert!(e.starts_with("1: error: '}' without"), "{e}");
    }

    #[test]
    fn lines_are_kept() {
        let t = translate("set a = 1\n\n# c\nprint a\n").unwrap();
        assert_eq!(t.rhai.lines().nth(3), Some("print(a);"));
    }
}
