//! A reader of the protobuf text format (what `.prototxt` files are written
//! in) into a generic tree of named fields, each with its line and column.
//!
//! Written by hand: the protobuf crates for Rust read the binary format; the
//! text format needs the message descriptors (`caffe.proto`), which this
//! project does not copy. A generic tree plus a typed conversion
//! (`prototxt.rs`) needs no descriptor.

use std::fmt;

/// A position in the source text, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Message(Message),
    /// A number as written (parsed when its type is known).
    Number(String),
    Str(String),
    /// An enum value or `true` / `false`.
    Ident(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub value: Value,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Message {
    pub fields: Vec<Field>,
    /// Where the message starts (its field name, or 1:1 for the file).
    pub pos: Option<Pos>,
}

impl Message {
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Field> + 'a {
        self.fields.iter().filter(move |f| f.name == name)
    }

    /// The last occurrence of a non-repeated field (protobuf's rule).
    pub fn get(&self, name: &str) -> Option<&Field> {
        self.fields.iter().rev().find(|f| f.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pos}: {message}")]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Number(String),
    Str(String),
    Punct(char),
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    pos: Pos,
}

impl<'a> Lexer<'a> {
    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.pos.line += 1;
            self.pos.col = 1;
        } else {
            self.pos.col += 1;
        }
        Some(c)
    }

    fn tokens(mut self) -> Result<Vec<(Tok, Pos)>, SyntaxError> {
        let mut out = Vec::new();
        while let Some(&c) = self.chars.peek() {
            let start = self.pos;
            if c.is_whitespace() {
                self.bump();
            } else if c == '#' {
                while self.chars.peek().is_some_and(|&c| c != '\n') {
                    self.bump();
                }
            } else if c.is_ascii_alphabetic() || c == '_' {
                let mut s = String::new();
                while let Some(&c) = self.chars.peek().filter(|c| c.is_ascii_alphanumeric() || **c == '_' || **c == '.') {
                    s.push(c);
                    self.bump();
                }
                out.push((Tok::Ident(s), start));
            } else if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' {
                let mut s = String::new();
                while let Some(&c) = self.chars.peek().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+')) {
                    s.push(c);
                    self.bump();
                }
                out.push((Tok::Number(s), start));
            } else if c == '"' || c == '\'' {
                self.bump();
                let mut s = String::new();
                loop {
                    match self.bump() {
                        None | Some('\n') => {
                            return Err(SyntaxError { pos: start, message: "string is not closed".into() })
                        }
                        Some('\\') => match self.bump() {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some(e) => s.push(e),
                            None => return Err(SyntaxError { pos: start, message: "string is not closed".into() }),
                        },
                        Some(q) if q == c => break,
                        Some(ch) => s.push(ch),
                    }
                }
                out.push((Tok::Str(s), start));
            } else if "{}:[],;<>".contains(c) {
                self.bump();
                out.push((Tok::Punct(c), start));
            } else {
                return Err(SyntaxError { pos: start, message: format!("unexpected character {c:?}") });
            }
        }
        Ok(out)
    }
}

/// Parses text-format source into a message tree.
pub fn parse(src: &str) -> Result<Message, SyntaxError> {
    let lexer = Lexer { chars: src.chars().peekable(), pos: Pos { line: 1, col: 1 } };
    let tokens = lexer.tokens()?;
    let mut p = Parser { tokens, i: 0, end: Pos { line: src.lines().count().max(1), col: 1 }, depth: 0 };
    let msg = p.message(None, Pos { line: 1, col: 1 })?;
    Ok(msg)
}

/// Deepest nesting of messages accepted. Caffe's own files nest four deep;
/// the parser recurses once per level, and 20,000 levels overflow the stack.
const MAX_NESTING: usize = 100;

struct Parser {
    tokens: Vec<(Tok, Pos)>,
    i: usize,
    end: Pos,
    /// Messages open at this point (the file itself not counted).
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&(Tok, Pos)> {
        self.tokens.get(self.i)
    }

    fn here(&self) -> Pos {
        self.peek().map(|t| t.1).unwrap_or(self.end)
    }

    fn err<T>(&self, pos: Pos, message: impl Into<String>) -> Result<T, SyntaxError> {
        Err(SyntaxError { pos, message: message.into() })
    }

    fn eat(&mut self, c: char) -> bool {
        if matches!(self.peek(), Some((Tok::Punct(p), _)) if *p == c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// Fields until `close` (or the end of input at the top level).
    fn message(&mut self, close: Option<char>, pos: Pos) -> Result<Message, SyntaxError> {
        if close.is_none() {
            return self.fields(close, pos);
        }
        if self.depth == MAX_NESTING {
            return self.err(pos, format!("messages nested more than {MAX_NESTING} deep"));
        }
        self.depth += 1;
        let msg = self.fields(close, pos);
        self.depth -= 1;
        msg
    }

    fn fields(&mut self, close: Option<char>, pos: Pos) -> Result<Message, SyntaxError> {
        let mut msg = Message { fields: Vec::new(), pos: Some(pos) };
        loop {
            match self.peek().cloned() {
                None => {
                    return match close {
                        None => Ok(msg),
                        Some(c) => self.err(self.end, format!("missing {c:?} to close the message opened at {pos}")),
                    }
                }
                Some((Tok::Punct(c), _)) if Some(c) == close => {
                    self.i += 1;
                    return Ok(msg);
                }
                Some((Tok::Ident(name), fpos)) => {
                    self.i += 1;
                    self.field_value(&name, fpos, &mut msg)?;
                    // Optional separators between fields.
                    let _ = self.eat(',') || self.eat(';');
                }
                Some((tok, tpos)) => return self.err(tpos, format!("expected a field name, found {}", describe(&tok))),
            }
        }
    }

    fn field_value(&mut self, name: &str, pos: Pos, msg: &mut Message) -> Result<(), SyntaxError> {
        let colon = self.eat(':');
        if self.eat('{') {
            let m = self.message(Some('}'), pos)?;
            msg.fields.push(Field { name: name.to_string(), value: Value::Message(m), pos });
            return Ok(());
        }
        if self.eat('<') {
            let m = self.message(Some('>'), pos)?;
            msg.fields.push(Field { name: name.to_string(), value: Value::Message(m), pos });
            return Ok(());
        }
        if !colon {
            return self.err(self.here(), format!("expected ':' or '{{' after field name {name:?}"));
        }
        if self.eat('[') {
            // List syntax: name: [v1, v2, …] is the same as repeating the field.
            if self.eat(']') {
                return Ok(());
            }
            loop {
                let (value, vpos) = self.scalar_or_message(name)?;
                msg.fields.push(Field { name: name.to_string(), value, pos: vpos });
                if self.eat(']') {
                    return Ok(());
                }
                if !self.eat(',') {
                    return self.err(self.here(), "expected ',' or ']' in a list");
                }
            }
        }
        let (value, _) = self.scalar_or_message(name)?;
        msg.fields.push(Field { name: name.to_string(), value, pos });
        Ok(())
    }

    fn scalar_or_message(&mut self, name: &str) -> Result<(Value, Pos), SyntaxError> {
        let pos = self.here();
        if self.eat('{') {
            return Ok((Value::Message(self.message(Some('}'), pos)?), pos));
        }
        match self.peek().cloned() {
            Some((Tok::Number(n), p)) => {
                self.i += 1;
                Ok((Value::Number(n), p))
            }
            Some((Tok::Ident(s), p)) => {
                self.i += 1;
                Ok((Value::Ident(s), p))
            }
            Some((Tok::Str(s), p)) => {
                self.i += 1;
                let mut s = s;
                // Adjacent strings concatenate.
                while let Some((Tok::Str(more), _)) = self.peek().cloned() {
                    self.i += 1;
                    s.push_str(&more);
                }
                Ok((Value::Str(s), p))
            }
            Some((tok, p)) => self.err(p, format!("expected a value for {name:?}, found {}", describe(&tok))),
            None => self.err(self.end, format!("expected a value for {name:?}, found the end of the file")),
        }
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("{s:?}"),
        Tok::Number(s) => format!("number {s}"),
        Tok::Str(s) => format!("string {s:?}"),
        Tok::Punct(c) => format!("{c:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_repeated_lists_comments_and_positions() {
        let src = "name: \"net\"  # comment\nlayer {\n  type: \"Convolution\"\n  param { lr_mult: 1 } param { lr_mult: 2 }\n  shape: { dim: [1, 3, 227] }\n  pool: MAX\n  scale: -1.5e-2\n}\n";
        let m = parse(src).unwrap();
        assert_eq!(m.get("name").unwrap().value, Value::Str("net".into()));
        let layer = match &m.get("layer").unwrap().value {
            Value::Message(l) => l,
            _ => panic!(),
        };
        assert_eq!(m.get("layer").unwrap().pos, Pos { line: 2, col: 1 });
        assert_eq!(layer.all("param").count(), 2);
        let Value::Message(shape) = &layer.get("shape").unwrap().value else { panic!() };
        let dims: Vec<_> = shape.all("dim").map(|f| f.value.clone()).collect();
        assert_eq!(dims, [Value::Number("1".into()), Value::Number("3".into()), Value::Number("227".into())]);
        assert_eq!(layer.get("pool").unwrap().value, Value::Ident("MAX".into()));
        assert_eq!(layer.get("scale").unwrap().value, Value::Number("-1.5e-2".into()));
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = parse("layer {\n  name: \"a\"\n  type \"x\"\n}").unwrap_err();
        assert_eq!(e.pos, Pos { line: 3, col: 8 });
        assert!(e.message.contains("expected ':'"), "{e}");
        let e = parse("layer {\n  name: \"a\"\n").unwrap_err();
        assert!(e.to_string().contains("missing '}' to close the message opened at 1:1"), "{e}");
        let e = parse("name: \"unterminated\n").unwrap_err();
        assert_eq!(e.to_string(), "1:7: string is not closed");
        let e = parse("a: 1\nb: @").unwrap_err();
        assert_eq!(e.to_string(), "2:4: unexpected character '@'");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let nested = |depth: usize| format!("{}{}", "a { ".repeat(depth), "} ".repeat(depth));
        assert!(parse(&nested(MAX_NESTING)).is_ok());
        let e = parse(&nested(20_000)).unwrap_err();
        assert_eq!(e.to_string(), format!("1:{}: messages nested more than {MAX_NESTING} deep", 4 * MAX_NESTING + 1));
        // Lists of messages nest too.
        let e = parse(&"a: [{ ".repeat(20_000)).unwrap_err();
        assert!(e.message.contains("nested more than"), "{e}");
    }
}
