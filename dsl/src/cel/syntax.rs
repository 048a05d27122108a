//! A CEL front end: tokens and a precedence-climbing parser that keep a byte span on every
//! node, so that the checker can underline exactly the sub-expression at fault.
//!
//! It follows the CEL grammar (cel-spec `langdef.md`): `?:` < `||` < `&&` < relations
//! (`< <= >= > == != in`) < `+ -` < `* / %` < unary `! -` < member access, index, calls <
//! primaries. The `cel` crate stays the authority on what CEL is: a differential test checks
//! that both accept and reject the same rules. Nesting deeper than [`MAX_DEPTH`] is an error,
//! never a stack overflow.

use std::ops::Range;

/// Deepest nesting of sub-expressions accepted.
pub const MAX_DEPTH: usize = 48;
/// Longest chain of one binary operator (`a && b && …`) accepted.
pub const MAX_CHAIN: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    /// Byte range in the rule's text.
    pub span: Range<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Double(f64),
    String(String),
    Bytes(Vec<u8>),
    Ident(String),
    /// `operand.field` (`optional` is for CEL's optional syntax, which rules do not enable).
    Select {
        operand: Box<Expr>,
        field: String,
        field_span: Range<usize>,
        optional: bool,
    },
    Index {
        operand: Box<Expr>,
        index: Box<Expr>,
        optional: bool,
    },
    /// `function(args)` or `target.function(args)`.
    Call {
        target: Option<Box<Expr>>,
        function: String,
        function_span: Range<usize>,
        args: Vec<Expr>,
    },
    List(Vec<Expr>),
    Map(Vec<(Expr, Expr)>),
    Struct {
        type_name: String,
        fields: Vec<(String, Expr)>,
    },
    Unary {
        op: UnaryOp,
        operand: Box<Expr>,
    },
    Binary {
        op: BinaryOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    Ternary {
        condition: Box<Expr>,
        then: Box<Expr>,
        otherwise: Box<Expr>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Not,
    Negate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Equal,
    NotEqual,
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
    In,
    Add,
    Subtract,
    Multiply,
    Divide,
    Remainder,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "||",
            BinaryOp::And => "&&",
            BinaryOp::Equal => "==",
            BinaryOp::NotEqual => "!=",
            BinaryOp::Less => "<",
            BinaryOp::LessEqual => "<=",
            BinaryOp::Greater => ">",
            BinaryOp::GreaterEqual => ">=",
            BinaryOp::In => "in",
            BinaryOp::Add => "+",
            BinaryOp::Subtract => "-",
            BinaryOp::Multiply => "*",
            BinaryOp::Divide => "/",
            BinaryOp::Remainder => "%",
        }
    }
}

/// A syntax error at a byte offset of the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub offset: usize,
    pub message: String,
}

/// Words CEL reserves: they cannot name a variable or field.
const RESERVED: &[&str] = &[
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Int(i64),
    Uint(u64),
    Double(f64),
    String(String),
    Bytes(Vec<u8>),
    Symbol(&'static str),
    End,
}

const SYMBOLS: &[&str] = &[
    "&&", "||", "==", "!=", "<=", ">=", "<", ">", "!", "+", "-", "*", "/", "%", "?", ":", ".", ",", "(", ")", "[", "]",
    "{", "}",
];

#[derive(Clone)]
struct Lexer<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Lexer<'a> {
    fn error(&self, offset: usize, message: impl Into<String>) -> SyntaxError {
        SyntaxError { offset, message: message.into() }
    }

    /// The next token and its span.
    fn next(&mut self) -> Result<(Token, Range<usize>), SyntaxError> {
        let bytes = self.text.as_bytes();
        while self.at < bytes.len() {
            match bytes[self.at] {
                b' ' | b'\t' | b'\r' | b'\n' | b'\x0c' => self.at += 1,
                b'/' if bytes.get(self.at + 1) == Some(&b'/') => {
                    while self.at < bytes.len() && bytes[self.at] != b'\n' {
                        self.at += 1;
                    }
                }
                _ => break,
            }
        }
        let start = self.at;
        let Some(&first) = bytes.get(start) else { return Ok((Token::End, start..start)) };
        let rest = &self.text[start..];
        // String and bytes literals, with their r/b prefixes.
        let prefix_len = rest.bytes().take(2).take_while(|b| matches!(b, b'r' | b'R' | b'b' | b'B')).count();
        if rest[prefix_len..].starts_with(['"', '\'']) {
            let prefix = rest[..prefix_len].to_ascii_lowercase();
            if prefix.len() < 2 || prefix == "rb" || prefix == "br" {
                return self.string(start, prefix.contains('r'), prefix.contains('b'), prefix_len);
            }
        }
        if first.is_ascii_alphabetic() || first == b'_' {
            let len = rest.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_').count();
            self.at += len;
            return Ok((Token::Ident(rest[..len].to_string()), start..self.at));
        }
        if first.is_ascii_digit() || (first == b'.' && rest.as_bytes().get(1).is_some_and(u8::is_ascii_digit)) {
            return self.number(start);
        }
        for symbol in SYMBOLS {
            if rest.starts_with(symbol) {
                self.at += symbol.len();
                return Ok((Token::Symbol(symbol), start..self.at));
            }
        }
        let c = rest.chars().next().unwrap_or('?');
        Err(self.error(start, format!("`{c}` is not a CEL token (CEL names are ASCII)")))
    }

    fn number(&mut self, start: usize) -> Result<(Token, Range<usize>), SyntaxError> {
        let bytes = self.text.as_bytes();
        let digits = |from: usize| bytes[from..].iter().take_while(|b| b.is_ascii_digit()).count();
        if bytes[start..].starts_with(b"0x") {
            let len = bytes[start + 2..].iter().take_while(|b| b.is_ascii_hexdigit()).count();
            let text = &self.text[start + 2..start + 2 + len];
            self.at = start + 2 + len;
            return self.integer(start, text, 16);
        }
        let mut end = start + digits(start);
        let mut is_double = false;
        if bytes.get(end) == Some(&b'.') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit) {
            end += 1 + digits(end + 1);
            is_double = true;
        }
        if matches!(bytes.get(end), Some(b'e' | b'E')) {
            let sign = usize::from(matches!(bytes.get(end + 1), Some(b'+' | b'-')));
            let exponent = digits(end + 1 + sign);
            if exponent > 0 {
                end += 1 + sign + exponent;
                is_double = true;
            }
        }
        let text = &self.text[start..end];
        self.at = end;
        if is_double {
            return match text.parse::<f64>() {
                Ok(value) => Ok((Token::Double(value), start..end)),
                Err(_) => Err(self.error(start, format!("`{text}` is not a number"))),
            };
        }
        self.integer(start, text, 10)
    }

    fn integer(&mut self, start: usize, digits: &str, radix: u32) -> Result<(Token, Range<usize>), SyntaxError> {
        let unsigned = matches!(self.text.as_bytes().get(self.at), Some(b'u' | b'U'));
        if unsigned {
            self.at += 1;
        }
        let span = start..self.at;
        if unsigned {
            return u64::from_str_radix(digits, radix)
                .map(|v| (Token::Uint(v), span))
                .map_err(|_| self.error(start, "unsigned integer out of range"));
        }
        // `-9223372036854775808` is a negated literal: the magnitude may exceed i64::MAX by one.
        match u64::from_str_radix(digits, radix) {
            Ok(v) if v <= i64::MAX as u64 + 1 => Ok((Token::Int(v as i64), span)),
            _ => Err(self.error(start, "integer out of range")),
        }
    }

    fn string(
        &mut self,
        start: usize,
        raw: bool,
        bytes_literal: bool,
        prefix: usize,
    ) -> Result<(Token, Range<usize>), SyntaxError> {
        let body_start = start + prefix;
        let quote = self.text.as_bytes()[body_start];
        let triple = self.text.as_bytes()[body_start..].starts_with(&[quote, quote, quote]);
        let delimiter_len = if triple { 3 } else { 1 };
        let mut at = body_start + delimiter_len;
        let mut value: Vec<u8> = Vec::new();
        let bytes = self.text.as_bytes();
        loop {
            let Some(&b) = bytes.get(at) else { return Err(self.error(start, "this string is not closed")) };
            if b == quote && (!triple || bytes[at..].starts_with(&[quote, quote, quote])) {
                at += delimiter_len;
                break;
            }
            if b == b'\n' && !triple {
                return Err(self.error(start, "this string is not closed on its line"));
            }
            if b == b'\\' && !raw {
                let (decoded, len) = self.escape(at, bytes_literal)?;
                value.extend_from_slice(&decoded);
                at += len;
                continue;
            }
            value.push(b);
            at += 1;
        }
        self.at = at;
        if bytes_literal {
            return Ok((Token::Bytes(value), start..at));
        }
        match String::from_utf8(value) {
            Ok(s) => Ok((Token::String(s), start..at)),
            Err(_) => Err(self.error(start, "this string is not valid UTF-8")),
        }
    }

    /// Decodes the escape at `at` (a backslash); returns its bytes and its length.
    fn escape(&self, at: usize, bytes_literal: bool) -> Result<(Vec<u8>, usize), SyntaxError> {
        let bytes = self.text.as_bytes();
        let invalid = || self.error(at, "invalid escape sequence");
        let Some(&kind) = bytes.get(at + 1) else { return Err(invalid()) };
        let simple = |b: u8| Ok((vec![b], 2));
        match kind {
            b'a' => simple(7),
            b'b' => simple(8),
            b'f' => simple(12),
            b'n' => simple(b'\n'),
            b'r' => simple(b'\r'),
            b't' => simple(b'\t'),
            b'v' => simple(11),
            b'\\' | b'\'' | b'"' | b'`' | b'?' => simple(kind),
            b'x' | b'X' | b'u' | b'U' | b'0'..=b'3' => {
                let (len, radix) = match kind {
                    b'x' | b'X' => (2, 16),
                    b'u' => (4, 16),
                    b'U' => (8, 16),
                    _ => (3, 8),
                };
                let digits_start = if radix == 8 { at + 1 } else { at + 2 };
                let digits = self.text.get(digits_start..digits_start + len).ok_or_else(invalid)?;
                let value = u32::from_str_radix(digits, radix).map_err(|_| invalid())?;
                let total = digits_start + len - at;
                if matches!(kind, b'u' | b'U') {
                    if bytes_literal {
                        return Err(invalid());
                    }
                    let c = char::from_u32(value).ok_or_else(invalid)?;
                    return Ok((c.to_string().into_bytes(), total));
                }
                if bytes_literal {
                    return Ok((vec![value as u8], total));
                }
                // In a string, \xNN and octal escapes are code points below 256.
                let c = char::from_u32(value).ok_or_else(invalid)?;
                Ok((c.to_string().into_bytes(), total))
            }
            _ => Err(invalid()),
        }
    }
}

/// Parses one rule.
pub fn parse(text: &str) -> Result<Expr, SyntaxError> {
    let mut parser = Parser { lexer: Lexer { text, at: 0 }, token: Token::End, span: 0..0, depth: 0 };
    parser.advance()?;
    let expr = parser.expr()?;
    match parser.token {
        Token::End => Ok(expr),
        _ => Err(parser.unexpected()),
    }
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    token: Token,
    span: Range<usize>,
    depth: usize,
}

impl Parser<'_> {
    fn advance(&mut self) -> Result<(), SyntaxError> {
        let (token, span) = self.lexer.next()?;
        self.token = token;
        self.span = span;
        Ok(())
    }

    fn unexpected(&self) -> SyntaxError {
        match &self.token {
            Token::End => SyntaxError { offset: self.span.start, message: "the rule ends too early".into() },
            _ => SyntaxError {
                offset: self.span.start,
                message: format!("unexpected `{}`", &self.lexer.text[self.span.clone()]),
            },
        }
    }

    fn is(&self, symbol: &str) -> bool {
        matches!(self.token, Token::Symbol(s) if s == symbol)
    }

    fn expect(&mut self, symbol: &str) -> Result<usize, SyntaxError> {
        if !self.is(symbol) {
            return Err(match self.token {
                Token::End => {
                    SyntaxError { offset: self.span.start, message: format!("expected `{symbol}`, the rule ends") }
                }
                _ => SyntaxError {
                    offset: self.span.start,
                    message: format!("expected `{symbol}`, found `{}`", &self.lexer.text[self.span.clone()]),
                },
            });
        }
        let end = self.span.end;
        self.advance()?;
        Ok(end)
    }

    fn enter(&mut self) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(SyntaxError {
                offset: self.span.start,
                message: format!("rule nested more than {MAX_DEPTH} deep"),
            });
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Expr, SyntaxError> {
        self.enter()?;
        let condition = self.binary(0)?;
        let result = if self.is("?") {
            self.advance()?;
            let then = self.binary(0)?;
            self.expect(":")?;
            let otherwise = self.expr()?;
            let span = condition.span.start..otherwise.span.end;
            Expr {
                kind: ExprKind::Ternary {
                    condition: Box::new(condition),
                    then: Box::new(then),
                    otherwise: Box::new(otherwise),
                },
                span,
            }
        } else {
            condition
        };
        self.depth -= 1;
        Ok(result)
    }

    /// The binary operator at the current token and its precedence level (0 = `||`).
    fn binary_op(&self) -> Option<(BinaryOp, usize)> {
        let op = match &self.token {
            Token::Symbol(s) => match *s {
                "||" => (BinaryOp::Or, 0),
                "&&" => (BinaryOp::And, 1),
                "==" => (BinaryOp::Equal, 2),
                "!=" => (BinaryOp::NotEqual, 2),
                "<" => (BinaryOp::Less, 2),
                "<=" => (BinaryOp::LessEqual, 2),
                ">" => (BinaryOp::Greater, 2),
                ">=" => (BinaryOp::GreaterEqual, 2),
                "+" => (BinaryOp::Add, 3),
                "-" => (BinaryOp::Subtract, 3),
                "*" => (BinaryOp::Multiply, 4),
                "/" => (BinaryOp::Divide, 4),
                "%" => (BinaryOp::Remainder, 4),
                _ => return None,
            },
            Token::Ident(w) if w == "in" => (BinaryOp::In, 2),
            _ => return None,
        };
        Some(op)
    }

    /// Left-associative binary operators of level `min` and tighter.
    fn binary(&mut self, min: usize) -> Result<Expr, SyntaxError> {
        let mut left = if min > 4 { self.unary()? } else { self.binary(min + 1)? };
        // A chain `a && b && …` is a tree as deep as it is long: bound it like nesting.
        let mut chain = 0;
        while let Some((op, level)) = self.binary_op() {
            if level != min {
                break;
            }
            chain += 1;
            if chain > MAX_CHAIN {
                return Err(SyntaxError {
                    offset: self.span.start,
                    message: format!("more than {MAX_CHAIN} `{}` in a row: split the rule", op.symbol()),
                });
            }
            self.advance()?;
            self.enter()?;
            let right = if min >= 4 { self.unary()? } else { self.binary(min + 1)? };
            self.depth -= 1;
            let span = left.span.start..right.span.end;
            left = Expr { kind: ExprKind::Binary { op, left: Box::new(left), right: Box::new(right) }, span };
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, SyntaxError> {
        self.unary_run(None)
    }

    /// CEL's `unary: member | '!'+ member | '-'+ member`: a run of one operator only, so
    /// `!-a` and `-!a` are syntax errors, as in the `cel` crate.
    fn unary_run(&mut self, run: Option<UnaryOp>) -> Result<Expr, SyntaxError> {
        let op = if self.is("!") {
            UnaryOp::Not
        } else if self.is("-") {
            UnaryOp::Negate
        } else {
            return self.member();
        };
        // `-` before a number is the literal's sign (`!-1.5` is `!(-1.5)`), not an operator.
        let signed_number =
            op == UnaryOp::Negate && matches!(self.lexer.clone().next(), Ok((Token::Int(_) | Token::Double(_), _)));
        if run.is_some_and(|previous| previous != op) && !signed_number {
            return Err(self.unexpected());
        }
        let start = self.span.start;
        self.advance()?;
        self.enter()?;
        // `-` directly before a number literal is part of it, so `-9223372036854775808` fits.
        let operand = self.unary_run(Some(op))?;
        self.depth -= 1;
        let span = start..operand.span.end;
        match (op, &operand.kind) {
            (UnaryOp::Negate, ExprKind::Int(v)) if operand.span.start == start + 1 => {
                Ok(Expr { kind: ExprKind::Int(v.wrapping_neg()), span })
            }
            (UnaryOp::Negate, ExprKind::Double(v)) if operand.span.start == start + 1 => {
                Ok(Expr { kind: ExprKind::Double(-v), span })
            }
            _ => Ok(Expr { kind: ExprKind::Unary { op, operand: Box::new(operand) }, span }),
        }
    }

    fn member(&mut self) -> Result<Expr, SyntaxError> {
        let mut expr = self.primary()?;
        let mut chained = 0;
        loop {
            if self.is(".") {
                let optional = false;
                self.advance()?;
                let Token::Ident(field) = self.token.clone() else { return Err(self.unexpected()) };
                self.check_name(&field)?;
                let field_span = self.span.clone();
                self.advance()?;
                if self.is("(") && !optional {
                    let (args, end) = self.arguments()?;
                    // A comprehension macro binds a variable: its first argument is a name.
                    let binds = matches!(field.as_str(), "all" | "exists" | "exists_one" | "map" | "filter")
                        && (args.len() == 2 || (args.len() == 3 && field == "map"));
                    if binds && !matches!(args[0].kind, ExprKind::Ident(_)) {
                        return Err(SyntaxError {
                            offset: args[0].span.start,
                            message: format!("the first argument of `{field}` must be a variable name"),
                        });
                    }
                    let span = expr.span.start..end;
                    expr = Expr {
                        kind: ExprKind::Call {
                            target: Some(Box::new(expr)),
                            function: field,
                            function_span: field_span,
                            args,
                        },
                        span,
                    };
                } else {
                    let span = expr.span.start..field_span.end;
                    expr =
                        Expr { kind: ExprKind::Select { operand: Box::new(expr), field, field_span, optional }, span };
                }
            } else if self.is("[") {
                let optional = false;
                self.advance()?;
                let index = self.expr()?;
                let end = self.expect("]")?;
                let span = expr.span.start..end;
                expr =
                    Expr { kind: ExprKind::Index { operand: Box::new(expr), index: Box::new(index), optional }, span };
            } else if self.is("{") && is_type_name(&expr) {
                let type_name = qualified_name(&expr);
                let (fields, end) = self.struct_fields()?;
                let span = expr.span.start..end;
                expr = Expr { kind: ExprKind::Struct { type_name, fields }, span };
            } else {
                break;
            }
            chained += 1;
            if chained > 4 * MAX_DEPTH {
                return Err(SyntaxError {
                    offset: self.span.start,
                    message: format!("a chain of more than {} selections", 4 * MAX_DEPTH),
                });
            }
        }
        Ok(expr)
    }

    /// A name after `.`: any identifier but the literals and `in`.
    fn check_name(&self, name: &str) -> Result<(), SyntaxError> {
        if matches!(name, "true" | "false" | "null" | "in") {
            return Err(SyntaxError { offset: self.span.start, message: format!("`{name}` is a reserved word") });
        }
        Ok(())
    }

    fn primary(&mut self) -> Result<Expr, SyntaxError> {
        let start = self.span.start;
        let token = self.token.clone();
        let span = self.span.clone();
        let literal = |kind| Ok(Expr { kind, span: span.clone() });
        match token {
            Token::Int(v) => {
                // 9223372036854775808 exists only as the magnitude of a negated literal.
                if v == i64::MIN && !self.lexer.text[..start].ends_with('-') {
                    return Err(SyntaxError { offset: start, message: "integer out of range".into() });
                }
                self.advance()?;
                literal(ExprKind::Int(v))
            }
            Token::Uint(v) => {
                self.advance()?;
                literal(ExprKind::Uint(v))
            }
            Token::Double(v) => {
                self.advance()?;
                literal(ExprKind::Double(v))
            }
            Token::String(s) => {
                self.advance()?;
                literal(ExprKind::String(s))
            }
            Token::Bytes(b) => {
                self.advance()?;
                literal(ExprKind::Bytes(b))
            }
            Token::Ident(word) => {
                self.advance()?;
                match word.as_str() {
                    "true" => return literal(ExprKind::Bool(true)),
                    "false" => return literal(ExprKind::Bool(false)),
                    "null" => return literal(ExprKind::Null),
                    _ => {}
                }
                if RESERVED.contains(&word.as_str()) || word == "in" {
                    return Err(SyntaxError { offset: start, message: format!("`{word}` is a reserved word") });
                }
                if self.is("(") {
                    let (args, end) = self.arguments()?;
                    return Ok(Expr {
                        kind: ExprKind::Call { target: None, function: word, function_span: span, args },
                        span: start..end,
                    });
                }
                literal(ExprKind::Ident(word))
            }
            Token::Symbol(".") => {
                // A leading dot names the root scope: `.applicant.age`.
                self.advance()?;
                let Token::Ident(word) = self.token.clone() else { return Err(self.unexpected()) };
                self.check_name(&word)?;
                let end = self.span.end;
                self.advance()?;
                if self.is("(") {
                    let (args, end) = self.arguments()?;
                    return Ok(Expr {
                        kind: ExprKind::Call { target: None, function: word, function_span: start..end, args },
                        span: start..end,
                    });
                }
                Ok(Expr { kind: ExprKind::Ident(word), span: start..end })
            }
            Token::Symbol("(") => {
                self.advance()?;
                let inner = self.expr()?;
                let end = self.expect(")")?;
                Ok(Expr { kind: inner.kind, span: start..end })
            }
            Token::Symbol("[") => {
                self.advance()?;
                self.enter()?;
                let mut elements = Vec::new();
                while !self.is("]") {
                    // The grammar allows a lone comma: `[,]`.
                    if self.is(",") && elements.is_empty() {
                        self.advance()?;
                        break;
                    }
                    elements.push(self.expr()?);
                    if !self.is(",") {
                        break;
                    }
                    self.advance()?;
                }
                let end = self.expect("]")?;
                self.depth -= 1;
                Ok(Expr { kind: ExprKind::List(elements), span: start..end })
            }
            Token::Symbol("{") => {
                self.advance()?;
                self.enter()?;
                let mut entries = Vec::new();
                while !self.is("}") {
                    if self.is(",") && entries.is_empty() {
                        self.advance()?;
                        break;
                    }
                    let key = self.expr()?;
                    self.expect(":")?;
                    let value = self.expr()?;
                    entries.push((key, value));
                    if !self.is(",") {
                        break;
                    }
                    self.advance()?;
                }
                let end = self.expect("}")?;
                self.depth -= 1;
                Ok(Expr { kind: ExprKind::Map(entries), span: start..end })
            }
            _ => Err(self.unexpected()),
        }
    }

    /// `( args )`, the current token being `(`; returns the arguments and the end offset.
    fn arguments(&mut self) -> Result<(Vec<Expr>, usize), SyntaxError> {
        self.advance()?;
        self.enter()?;
        let mut args = Vec::new();
        while !self.is(")") {
            args.push(self.expr()?);
            if !self.is(",") {
                break;
            }
            self.advance()?;
            // Unlike lists and maps, arguments take no trailing comma.
            if self.is(")") {
                return Err(self.unexpected());
            }
        }
        let end = self.expect(")")?;
        self.depth -= 1;
        Ok((args, end))
    }

    fn struct_fields(&mut self) -> Result<(Vec<(String, Expr)>, usize), SyntaxError> {
        self.advance()?;
        self.enter()?;
        let mut fields = Vec::new();
        while !self.is("}") {
            let Token::Ident(name) = self.token.clone() else { return Err(self.unexpected()) };
            self.advance()?;
            self.expect(":")?;
            fields.push((name, self.expr()?));
            if !self.is(",") {
                break;
            }
            self.advance()?;
        }
        let end = self.expect("}")?;
        self.depth -= 1;
        Ok((fields, end))
    }
}

/// Whether `expr` can name a message type before `{`: an identifier or a dotted name.
fn is_type_name(expr: &Expr) -> bool {
    match &expr.kind {
        ExprKind::Ident(_) => true,
        ExprKind::Select { operand, optional: false, .. } => is_type_name(operand),
        _ => false,
    }
}

fn qualified_name(expr: &Expr) -> String {
    match &expr.kind {
        ExprKind::Ident(name) => name.clone(),
        ExprKind::Select { operand, field, .. } => format!("{}.{field}", qualified_name(operand)),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(e: &Expr) -> String {
        match &e.kind {
            ExprKind::Binary { op, left, right } => format!("({} {} {})", shape(left), op.symbol(), shape(right)),
            ExprKind::Unary { op, operand } => format!("({op:?} {})", shape(operand)),
            ExprKind::Ternary { condition, then, otherwise } => {
                format!("({} ? {} : {})", shape(condition), shape(then), shape(otherwise))
            }
            ExprKind::Select { operand, field, .. } => format!("{}.{field}", shape(operand)),
            ExprKind::Call { target, function, args, .. } => format!(
                "{}{function}({})",
                target.as_ref().map(|t| format!("{}.", shape(t))).unwrap_or_default(),
                args.iter().map(shape).collect::<Vec<_>>().join(", ")
            ),
            ExprKind::Ident(n) => n.clone(),
            ExprKind::Int(v) => v.to_string(),
            ExprKind::Double(v) => format!("{v:?}"),
            ExprKind::String(s) => format!("{s:?}"),
            ExprKind::List(items) => format!("[{}]", items.iter().map(shape).collect::<Vec<_>>().join(", ")),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn precedence_and_associativity() {
        let cases = [
            ("a || b && c", "(a || (b && c))"),
            ("a && b || c", "((a && b) || c)"),
            ("1 + 2 * 3 - 4", "((1 + (2 * 3)) - 4)"),
            ("a.b.c >= 18 && !d", "((a.b.c >= 18) && (Not d))"),
            ("x ? y : z ? 1 : 2", "(x ? y : (z ? 1 : 2))"),
            ("k in ['a', 'b']", "(k in [\"a\", \"b\"])"),
            ("xs.exists(x, x > 1)", "xs.exists(x, (x > 1))"),
            ("-5 - -2.5", "(-5 - -2.5)"),
            ("size(a) == 0u", "(size(a) == Uint(0))"),
        ];
        for (rule, expected) in cases {
            assert_eq!(shape(&parse(rule).unwrap()), expected, "{rule}");
        }
    }

    #[test]
    fn every_node_has_its_span() {
        let rule = "applicant.age >= \"18\" && applicant.credit_ok";
        let e = parse(rule).unwrap();
        let ExprKind::Binary { left, right, .. } = &e.kind else { panic!() };
        assert_eq!(&rule[left.span.clone()], "applicant.age >= \"18\"");
        assert_eq!(&rule[right.span.clone()], "applicant.credit_ok");
        let ExprKind::Binary { right: literal, .. } = &left.kind else { panic!() };
        assert_eq!(&rule[literal.span.clone()], "\"18\"");
    }

    #[test]
    fn errors_have_offsets() {
        assert_eq!(parse("a >= && b").unwrap_err().offset, 5);
        assert_eq!(parse("a >=").unwrap_err().message, "the rule ends too early");
        assert_eq!(parse("'abc").unwrap_err().message, "this string is not closed");
        assert!(parse("年龄 > 1").unwrap_err().message.contains("not a CEL token"));
        assert!(parse(&format!("{}1{}", "(".repeat(100), ")".repeat(100))).unwrap_err().message.contains("nested"));
        assert!(parse(&"!".repeat(10_000)).is_err());
    }

    #[test]
    fn literals() {
        assert_eq!(parse("'\\u00e9\\x41\\101'").unwrap().kind, ExprKind::String("éAA".into()));
        assert_eq!(parse("r'\\n'").unwrap().kind, ExprKind::String("\\n".into()));
        assert_eq!(parse("b'\\xff'").unwrap().kind, ExprKind::Bytes(vec![255]));
        assert_eq!(parse("'''a\nb'''").unwrap().kind, ExprKind::String("a\nb".into()));
        assert_eq!(parse("0x1F").unwrap().kind, ExprKind::Int(31));
        assert_eq!(parse("-9223372036854775808").unwrap().kind, ExprKind::Int(i64::MIN));
        assert_eq!(parse("1e3").unwrap().kind, ExprKind::Double(1000.0));
        assert!(parse("9223372036854775808").is_err());
    }
}
