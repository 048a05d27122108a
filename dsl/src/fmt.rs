//! The canonical layout of a flow file: [`format`] parses the text and prints the tree back.
//!
//! Layout:
//! - two-space indentation; one blank line between declarations, except that imports, and
//!   departments without data sets, written on consecutive lines stay together (department
//!   titles aligned);
//! - one field per line, the values of a block aligned to one column; materials, data sets,
//!   schema fields and labelled steps aligned in columns (a cell wider than [`ALIGN_CAP`] does
//!   not widen its column);
//! - `materials`, `steps`, data sets and records always as blocks; a flow, and each `parallel`
//!   or `if` in it, on one line when it fits in [`MAX_WIDTH`] columns and holds no comment,
//!   otherwise one node per line;
//! - the `else` message of an `eligible` rule on its own line under the rule, and `when`
//!   last among the attributes of a material: the grammar ends a CEL rule at the end of its
//!   line, so nothing else is ever printed after one on the same line;
//! - strings, numbers and CEL rules exactly as the source wrote them (a rule is not even
//!   trimmed: the grammar lets it end in an ideographic space).
//!
//! Comments are placed by their spans. A comment on its own line stays before the next line of
//! code, at that code's indentation (or at the end of its block); a comment after code stays
//! at the end of that line. A comment inside something printed as one line moves to just
//! before that line (before a `} else {` line: to the end of the block that closes), except
//! that one after a CEL rule moves after the line; a comment inside a multi-line CEL rule stays
//! in the rule. At most one blank line is kept where the source had some, never at the start
//! or end of a block.
//!
//! Every choice depends only on the tree, on where comments and blank lines are, and on
//! widths, so formatting the output again gives the same text.

use crate::diagnostic::{Code, Diagnostic};
use crate::span::{FileId, Span};
use crate::syntax::ast::*;

/// Flows and step chains longer than this are broken over lines.
pub const MAX_WIDTH: usize = 100;

/// An aligned cell (material name or title, step name, …) wider than this keeps one space
/// after it instead of pushing its whole column to the right.
pub const ALIGN_CAP: usize = 24;

const INDENT_WIDTH: usize = 2;

/// Formats one file. A file with syntax errors is never formatted: its diagnostics come back.
pub fn format(text: &str) -> Result<String, Vec<Diagnostic>> {
    let parsed = crate::syntax::parse(FileId(0), text);
    let errors: Vec<Diagnostic> = parsed.diagnostics.into_iter().filter(|d| d.is_error()).collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    if let Some(broken) = parsed.file.broken.first() {
        return Err(vec![Diagnostic::new(Code::Syntax, FileId(0), broken.span, "this declaration does not parse")
            .label("cannot format this declaration")]);
    }
    let mut printer = Printer::new(text, &parsed.file);
    printer.file(&parsed.file);
    Ok(printer.out)
}

// ------------------------------------------------------------------ widths

/// Columns taken by `c` in a terminal: CJK and full-width characters take two.
fn char_width(c: char) -> usize {
    match c as u32 {
        0x1100..=0x115F
        | 0x2E80..=0x303E
        | 0x3041..=0x33FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x20000..=0x3FFFD => 2,
        _ => 1,
    }
}

fn display_width(text: &str) -> usize {
    text.chars().map(char_width).sum()
}

/// `text` followed by spaces up to `width` columns.
fn pad(text: &str, width: usize) -> String {
    let mut padded = text.to_string();
    padded.extend(std::iter::repeat_n(' ', width.saturating_sub(display_width(text))));
    padded
}

/// The width of an aligned column: its widest cell, not counting cells wider than [`ALIGN_CAP`].
fn column_width(cells: impl Iterator<Item = usize>) -> usize {
    cells.filter(|&width| width <= ALIGN_CAP).max().unwrap_or(0)
}

/// Whitespace between tokens (Unicode `White_Space`, as in the grammar), newlines aside.
fn is_space(c: char) -> bool {
    c != '\n' && (c.is_whitespace() || c == '\u{FEFF}')
}

/// A string literal for `value`; used only if the source text of a string cannot be read back.
fn quote(value: &str) -> String {
    let mut quoted = String::from('"');
    for c in value.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

// ------------------------------------------------------------------ the printer

fn start(span: Span) -> usize {
    span.start as usize
}

/// How a line moves the indentation.
#[derive(Clone, Copy)]
enum Shape {
    Plain,
    Opens,
    Closes,
    ClosesAndOpens,
}

/// Prints lines in source order and places the comments between them.
///
/// Every printed line covers a region of the source (`start..anchor`). Comments are taken in
/// source order: those that start inside or before a line's region are printed on lines of
/// their own before it (see [`Printer::line`] for the exceptions), and one that follows the
/// anchor on the same source line, with nothing but separators in between, stays at the end
/// of the line.
struct Printer<'a> {
    source: &'a str,
    /// The comments not inside a CEL rule, in source order.
    comments: Vec<&'a Comment>,
    next_comment: usize,
    out: String,
    depth: usize,
    /// The end of the last source region printed: blank lines are looked for after it.
    last_end: usize,
    /// Just after a `{` (or at the top of the file), where blank lines are dropped.
    at_block_start: bool,
}

impl<'a> Printer<'a> {
    fn new(source: &'a str, file: &'a File) -> Self {
        let mut cel_spans = file.rule_spans();
        cel_spans.sort();
        let inside_cel = |offset: u32| {
            let after = cel_spans.partition_point(|span| span.start <= offset);
            after > 0 && cel_spans[after - 1].contains(offset)
        };
        let comments = file.comments.iter().filter(|c| !inside_cel(c.span.start)).collect();
        Printer { source, comments, next_comment: 0, out: String::new(), depth: 0, last_end: 0, at_block_start: true }
    }

    // -------------------------------------------------------------- source text

    /// Where the code of a node ends. The parser's spans of nodes that end with an optional
    /// part (`material`, `field`, a department without data sets, a flow `sequence`, …) run on
    /// over the whitespace and comments after them.
    fn end(&self, span: Span) -> usize {
        let from = start(span);
        let Some(text) = self.source.get(from..span.end as usize) else { return span.end as usize };
        let mut code_end = 0;
        let mut chars = text.char_indices();
        while let Some((at, c)) = chars.next() {
            match c {
                '/' if text[at + 1..].starts_with('/') => {
                    for (_, c) in chars.by_ref() {
                        if c == '\n' {
                            break;
                        }
                    }
                }
                '"' | '\'' => {
                    let quote = c;
                    while let Some((at, c)) = chars.next() {
                        match c {
                            '\n' => break,
                            '\\' => {
                                chars.next();
                            }
                            c if c == quote => {
                                code_end = at + 1;
                                break;
                            }
                            _ => code_end = at + c.len_utf8(),
                        }
                    }
                }
                c if is_space(c) || c == '\n' => {}
                c => code_end = at + c.len_utf8(),
            }
        }
        from + code_end
    }

    /// The offset of the `}` that ends a construct spanning `span`.
    fn closing_brace(&self, span: Span) -> usize {
        self.end(span).saturating_sub(1)
    }

    fn slice(&self, span: Span) -> &'a str {
        self.source.get(span.range()).unwrap_or("")
    }

    /// A string literal exactly as written, escapes included.
    fn text(&self, text: &Text) -> String {
        let written = self.slice(text.span);
        if written.len() >= 2 && written.starts_with('"') && written.ends_with('"') {
            written.to_string()
        } else {
            quote(&text.value)
        }
    }

    /// A number as written (`007` stays `007`, `75%` keeps its sign).
    fn number(&self, number: &Number) -> String {
        let written = self.slice(number.span).trim();
        if !written.is_empty() && written.bytes().all(|b| b.is_ascii_digit() || b == b'%') {
            written.to_string()
        } else {
            number.value.to_string()
        }
    }

    /// `20 workdays` as written, with anything between the number and the unit dropped.
    fn duration(&self, number: &Number) -> String {
        let written = self.slice(number.span).trim_end();
        let digits_len = written.bytes().take_while(u8::is_ascii_digit).count();
        let digits = if digits_len == 0 { number.value.to_string() } else { written[..digits_len].to_string() };
        let unit = if written.ends_with("workdays") {
            "workdays"
        } else if written.ends_with("workday") || number.value == 1 {
            "workday"
        } else {
            "workdays"
        };
        format!("{digits} {unit}")
    }

    /// The offset of the next token at or after `from`, skipping whitespace and comments.
    fn skip_trivia(&self, mut at: usize) -> usize {
        loop {
            let Some(rest) = self.source.get(at..) else { return at };
            let trimmed = rest.trim_start_matches(|c: char| is_space(c) || c == '\n');
            at += rest.len() - trimmed.len();
            if !trimmed.starts_with("//") {
                return at;
            }
            at += trimmed.find('\n').unwrap_or(trimmed.len());
        }
    }

    /// Where `token` is, when it is the next token after `from` (it always is in a file that
    /// parsed; `from` otherwise, which only moves comments, never code).
    fn find_token(&self, from: usize, token: &str) -> usize {
        let at = self.skip_trivia(from);
        if self.source.get(at..).is_some_and(|rest| rest.starts_with(token)) {
            at
        } else {
            from
        }
    }

    /// Whether the source has an empty line between `from` and `to`.
    fn had_blank_line(&self, from: usize, to: usize) -> bool {
        if from >= to {
            return false;
        }
        let Some(gap) = self.source.get(from..to) else { return false };
        let lines: Vec<&str> = gap.split('\n').collect();
        // The first piece ends the line `from` is on, the last starts the line `to` is on.
        lines.len() > 2 && lines[1..lines.len() - 1].iter().any(|line| line.chars().all(is_space))
    }

    // -------------------------------------------------------------- comments

    fn peek_comment(&self) -> Option<&'a Comment> {
        self.comments.get(self.next_comment).copied()
    }

    /// Whether a comment starts in `from..to`.
    fn has_comment_in(&self, from: usize, to: usize) -> bool {
        let first = self.comments.partition_point(|c| start(c.span) < from);
        self.comments.get(first).is_some_and(|c| start(c.span) < to)
    }

    fn next_comment_before(&mut self, before: usize) -> Option<&'a Comment> {
        let comment = self.peek_comment().filter(|c| start(c.span) < before)?;
        self.next_comment += 1;
        Some(comment)
    }

    fn own_line_comment(&mut self, comment: &Comment) {
        self.blank_line_if_written(start(comment.span));
        self.push_line(&comment.text);
        self.last_end = self.last_end.max(comment.span.end as usize);
        self.at_block_start = false;
    }

    /// Prints every comment that starts before `before`, each on its own line.
    fn comments_before(&mut self, before: usize) {
        self.comments_before_line(before, usize::MAX);
    }

    /// Prints every comment that starts before `before`, each on its own line, ahead of a line
    /// that starts at `line_start`. Blank lines are kept only before that line's region: those
    /// inside it would otherwise appear between lines that had none.
    fn comments_before_line(&mut self, before: usize, line_start: usize) {
        while let Some(comment) = self.next_comment_before(before) {
            if start(comment.span) >= line_start {
                self.blank_line_if_written(line_start);
                self.last_end = self.last_end.max(start(comment.span));
            }
            self.own_line_comment(comment);
        }
    }

    /// The next comment, when it ends the source line of the code that ends at `anchor`.
    fn take_trailing_comment(&mut self, anchor: usize) -> Option<&'a Comment> {
        let comment = self.peek_comment()?;
        let gap = self.source.get(anchor..start(comment.span))?;
        // `,` and `->` are printed on this line or the next; either way the comment stays put.
        if !gap.chars().all(|c| is_space(c) || matches!(c, ',' | '-' | '>')) {
            return None;
        }
        self.next_comment += 1;
        Some(comment)
    }

    // -------------------------------------------------------------- lines

    fn push_line(&mut self, text: &str) {
        if !text.is_empty() {
            self.out.extend(std::iter::repeat_n(' ', self.depth * INDENT_WIDTH));
        }
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn blank_line(&mut self) {
        if !self.out.is_empty() && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
    }

    /// Keeps one blank line where the source had one or more before `to`.
    fn blank_line_if_written(&mut self, to: usize) {
        if !self.at_block_start && self.had_blank_line(self.last_end, to) {
            self.blank_line();
        }
    }

    /// The width of one aligned column for each entry of a block. Entries are aligned in runs:
    /// a blank line, or an entry printed as a block (`breaks`), ends a run. `cells[i]` is the
    /// width of entry `i`'s cell in the column, `None` when it has none.
    fn column_widths(&self, spans: &[Span], breaks: &[bool], cells: &[Option<usize>]) -> Vec<usize> {
        let count = spans.len().min(breaks.len()).min(cells.len());
        let mut widths = vec![0; spans.len()];
        let mut run_start = 0;
        for at in 1..=count {
            let ends_run = at == count
                || breaks[at]
                || breaks[at - 1]
                || self.had_blank_line(self.end(spans[at - 1]), start(spans[at]));
            if ends_run {
                let width = column_width(cells[run_start..at].iter().flatten().copied());
                widths[run_start..at].fill(width);
                run_start = at;
            }
        }
        widths
    }

    /// Whether `text`, printed at the current depth, fits in [`MAX_WIDTH`] on one line.
    fn fits(&self, text: &str) -> bool {
        !text.contains('\n') && self.depth * INDENT_WIDTH + display_width(text) <= MAX_WIDTH
    }

    /// Prints `text` (lines after its first carry their own indentation) with the trailing
    /// comment of the code that ends at `anchor`.
    fn emit(&mut self, text: &str, anchor: usize) {
        let mut line = text.to_string();
        if let Some(comment) = self.take_trailing_comment(anchor) {
            line.push(' ');
            line.push_str(&comment.text);
            self.last_end = self.last_end.max(comment.span.end as usize);
        }
        self.last_end = self.last_end.max(anchor);
        self.push_line(&line);
        self.at_block_start = false;
    }

    /// The core of every line: `text` covers the source `start..anchor`. Comments in that region
    /// that start before `split` are printed before the line (for a line that starts with `}`:
    /// at the end of the block it closes), the others after it (in the block it opens).
    ///
    /// `split` is the start of a CEL rule printed in the line when comments may follow it: those
    /// inside the rule are printed with it, so the ones after it must come after the line.
    fn line(&mut self, text: &str, start: usize, split: usize, anchor: usize, shape: Shape) {
        if matches!(shape, Shape::Closes | Shape::ClosesAndOpens) {
            self.comments_before(split);
            self.depth = self.depth.saturating_sub(1);
        } else {
            self.comments_before_line(split, start);
            self.blank_line_if_written(start);
        }
        let mut after = Vec::new();
        while let Some(comment) = self.next_comment_before(anchor) {
            after.push(comment);
        }
        if after.is_empty() {
            self.emit(text, anchor);
        } else {
            // A trailing comment would come before those in the output: it follows them instead.
            self.push_line(text);
            self.last_end = self.last_end.max(anchor);
            self.at_block_start = false;
        }
        if matches!(shape, Shape::Opens | Shape::ClosesAndOpens) {
            self.depth += 1;
            self.at_block_start = true;
        }
        for comment in after {
            self.own_line_comment(comment);
        }
    }

    /// A line for the source region `start..anchor`; comments inside the region go before it.
    fn unit(&mut self, text: &str, start: usize, anchor: usize) {
        self.line(text, start, anchor, anchor, Shape::Plain);
    }

    /// A line that ends with `{`.
    fn open(&mut self, text: &str, start: usize, anchor: usize) {
        self.line(text, start, anchor, anchor, Shape::Opens);
    }

    /// A line that starts with the `}` at `brace`: `}`, `},`, `}>`, `} else {`.
    fn close(&mut self, text: &str, brace: usize, anchor: usize) {
        let shape = if text.ends_with('{') { Shape::ClosesAndOpens } else { Shape::Closes };
        self.line(text, brace, anchor, anchor, shape);
    }

    /// `header { … }` printed by `body`, or `header {}` when there is nothing inside, not even a
    /// comment.
    fn block(
        &mut self,
        header: &str,
        start: usize,
        brace: usize,
        close: usize,
        empty: bool,
        body: impl FnOnce(&mut Self),
    ) {
        if empty && !self.has_comment_in(brace, close) {
            self.unit(&format!("{header} {{}}"), start, close + 1);
            return;
        }
        self.open(&format!("{header} {{"), start, brace + 1);
        body(self);
        self.close("}", close, close + 1);
    }

    // -------------------------------------------------------------- declarations

    fn file(&mut self, file: &File) {
        let decls = &file.decls;
        let mut department_name_widths = vec![0; decls.len()];
        let mut run_start = 0;
        for at in 1..=decls.len() {
            if at == decls.len() || !self.joins_previous(&decls[at - 1], &decls[at]) {
                let width = column_width(decls[run_start..at].iter().filter_map(|d| match d {
                    Decl::Department(d) => Some(display_width(&d.name.name)),
                    _ => None,
                }));
                department_name_widths[run_start..at].iter_mut().for_each(|w| *w = width);
                run_start = at;
            }
        }
        for (at, decl) in decls.iter().enumerate() {
            if at > 0 && !self.joins_previous(&decls[at - 1], decl) {
                self.blank_line();
            }
            match decl {
                Decl::Import(import) => {
                    let text = format!("import {}", self.text(&import.path));
                    self.unit(&text, start(import.span), self.end(import.span));
                }
                Decl::Department(department) => self.department(department, department_name_widths[at]),
                Decl::Schema(schema) => self.schema(schema),
                Decl::Item(item) => self.item(item),
                Decl::Process(process) => self.process(process),
            }
        }
        self.comments_before(usize::MAX);
    }

    /// Whether `next` stays on the line after `previous`: both one-line declarations of the
    /// same kind that the source wrote without a blank line between them.
    fn joins_previous(&self, previous: &Decl, next: &Decl) -> bool {
        fn one_line_kind(decl: &Decl) -> Option<DeclKind> {
            match decl {
                Decl::Import(_) => Some(DeclKind::Import),
                Decl::Department(d) if d.datasets.is_empty() => Some(DeclKind::Department),
                _ => None,
            }
        }
        one_line_kind(previous).is_some()
            && one_line_kind(previous) == one_line_kind(next)
            && !self.had_blank_line(self.end(previous.span()), start(next.span()))
    }

    fn department(&mut self, department: &Department, name_width: usize) {
        let header = format!("department {} {}", pad(&department.name.name, name_width), self.text(&department.title));
        if department.datasets.is_empty() {
            self.unit(&header, start(department.span), self.end(department.span));
            return;
        }
        let brace = self.find_token(self.end(department.title.span), "{");
        let close = self.closing_brace(department.span);
        let spans: Vec<Span> = department.datasets.iter().map(|d| d.span).collect();
        let names: Vec<Option<usize>> = department.datasets.iter().map(|d| Some(display_width(&d.name.name))).collect();
        let name_widths = self.column_widths(&spans, &vec![false; spans.len()], &names);
        self.block(&header, start(department.span), brace, close, false, |p| {
            for (dataset, name_width) in department.datasets.iter().zip(name_widths) {
                let text = format!("data {} {}", pad(&dataset.name.name, name_width), p.text(&dataset.title));
                p.unit(&text, start(dataset.span), p.end(dataset.span));
            }
        });
    }

    fn schema(&mut self, schema: &Schema) {
        let brace = self.find_token(self.end(schema.name.span), "{");
        let close = self.closing_brace(schema.span);
        let header = format!("schema {}", schema.name.name);
        self.block(&header, start(schema.span), brace, close, schema.fields.is_empty(), |p| {
            p.record_fields(&schema.fields)
        });
    }

    /// A type that prints on one line: anything but a record with fields (or comments) in it.
    fn inline_type(&self, ty: &TypeExpr) -> Option<String> {
        match ty {
            TypeExpr::Primitive { name, .. } => Some(name.clone()),
            TypeExpr::List { element, .. } => Some(format!("list<{}>", self.inline_type(element)?)),
            TypeExpr::Record { fields, span } => (fields.is_empty()
                && !self.has_comment_in(start(*span) + 1, self.closing_brace(*span)))
            .then(|| "{}".into()),
        }
    }

    /// A field on one aligned line: `name  type  pii(kind)`.
    fn aligned_field_type(&self, field: &Field) -> Option<String> {
        match field.ty {
            TypeExpr::Record { .. } => None,
            _ => self.inline_type(&field.ty),
        }
    }

    fn record_fields(&mut self, fields: &[Field]) {
        let aligned: Vec<Option<String>> = fields.iter().map(|f| self.aligned_field_type(f)).collect();
        let spans: Vec<Span> = fields.iter().map(|f| f.span).collect();
        let blocks: Vec<bool> = aligned.iter().map(Option::is_none).collect();
        let names: Vec<Option<usize>> =
            fields.iter().zip(&aligned).map(|(f, ty)| ty.as_ref().map(|_| display_width(&f.name.name))).collect();
        let types: Vec<Option<usize>> = fields
            .iter()
            .zip(&aligned)
            .map(|(f, ty)| ty.as_ref().filter(|_| f.pii.is_some()).map(|ty| display_width(ty)))
            .collect();
        let name_widths = self.column_widths(&spans, &blocks, &names);
        let type_widths = self.column_widths(&spans, &blocks, &types);
        for (at, (field, ty)) in fields.iter().zip(aligned).enumerate() {
            let (name_width, type_width) = (name_widths[at], type_widths[at]);
            match (ty, &field.ty) {
                (Some(ty), _) => {
                    let text = match &field.pii {
                        Some(pii) => {
                            format!("{} {} pii({})", pad(&field.name.name, name_width), pad(&ty, type_width), pii.name)
                        }
                        None => format!("{} {ty}", pad(&field.name.name, name_width)),
                    };
                    self.unit(&text, start(field.span), self.end(field.span));
                }
                (None, TypeExpr::Record { fields, span }) => {
                    let close = self.closing_brace(*span);
                    self.block(&field.name.name, start(field.span), start(*span), close, fields.is_empty(), |p| {
                        p.record_fields(fields)
                    });
                }
                (None, list) => self.list_of_records_field(field, list),
            }
        }
    }

    /// `name list<{` … `}> pii(kind)`: a list whose element is a record with fields.
    fn list_of_records_field(&mut self, field: &Field, ty: &TypeExpr) {
        let mut lists = 0;
        let mut element = ty;
        while let TypeExpr::List { element: inner, .. } = element {
            lists += 1;
            element = inner;
        }
        let TypeExpr::Record { fields, span } = element else {
            // Not reached: only a record makes a type multi-line. Print the source as written.
            let text = format!("{} {}", field.name.name, self.slice(ty.span()));
            self.unit(&text, start(field.span), self.end(field.span));
            return;
        };
        let close = self.closing_brace(*span);
        self.open(&format!("{} {}{{", field.name.name, "list<".repeat(lists)), start(field.span), start(*span) + 1);
        self.record_fields(fields);
        let pii = field.pii.as_ref().map(|pii| format!(" pii({})", pii.name)).unwrap_or_default();
        self.close(&format!("}}{}{pii}", ">".repeat(lists)), close, self.end(field.span));
    }

    fn item(&mut self, item: &Item) {
        let brace = self.find_token(self.end(item.title.span), "{");
        let close = self.closing_brace(item.span);
        let mut header = format!("item {} {}", item.name.name, self.text(&item.title));
        if let Some(base) = &item.base {
            header.push_str(&format!(" extends {}", base.name));
        }
        self.block(&header, start(item.span), brace, close, item.fields.is_empty(), |p| {
            let spans: Vec<Span> = item.fields.iter().map(|f| f.span).collect();
            let blocks: Vec<bool> = item
                .fields
                .iter()
                .map(|f| matches!(f.kind, ItemFieldKind::Materials(_) | ItemFieldKind::Steps(_)))
                .collect();
            let keywords: Vec<Option<usize>> = item.fields.iter().map(|f| Some(f.kind.keyword().len())).collect();
            let widths = p.column_widths(&spans, &blocks, &keywords);
            for (field, width) in item.fields.iter().zip(widths) {
                p.item_field(field, width);
            }
        });
    }

    fn item_field(&mut self, field: &ItemField, width: usize) {
        let keyword = field.kind.keyword();
        let value = match &field.kind {
            ItemFieldKind::Code(text) | ItemFieldKind::Basis(text) => self.text(text),
            ItemFieldKind::Department(name)
            | ItemFieldKind::Type(name)
            | ItemFieldKind::Handling(name)
            | ItemFieldKind::Supplement(name) => name.name.clone(),
            ItemFieldKind::LegalLimit(limit) | ItemFieldKind::PromisedLimit(limit) => self.duration(limit),
            ItemFieldKind::Visits(visits) => self.number(visits),
            ItemFieldKind::Fee(Fee::Free) => "free".into(),
            ItemFieldKind::Fee(Fee::Yuan(amount)) => format!("{amount} yuan"),
            ItemFieldKind::Online(online) => online.to_string(),
            ItemFieldKind::Produces { name, title } => format!("licence {} {}", name.name, self.text(title)),
            ItemFieldKind::Guide(guide) => self.guide_value(guide),
            ItemFieldKind::Eligible(rule) => return self.eligible(rule, width, field.span),
            ItemFieldKind::Materials(materials) => return self.materials(field, materials),
            ItemFieldKind::Steps(steps) => return self.steps(field, steps),
        };
        self.unit(&format!("{keyword:<width$} {value}"), start(field.span), self.end(field.span));
    }

    /// What follows the keyword of a guide field.
    fn guide_value(&self, field: &GuideField) -> String {
        match field {
            GuideField::Serves(served) => served.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", "),
            GuideField::Where(text)
            | GuideField::Hours(text)
            | GuideField::Contact(text)
            | GuideField::Complaint(text)
            | GuideField::Url(text) => self.text(text),
            GuideField::Faq(question, answer) => format!("{} {}", self.text(question), self.text(answer)),
        }
    }

    /// `eligible <rule>` and, on the next line under the rule, `else "<message>"`.
    fn eligible(&mut self, rule: &EligibilityRule, width: usize, span: Span) {
        let rule_span = rule.expr.span;
        let mut text = format!("{:<width$} {}", "eligible", rule.expr.source.as_str());
        let Some(message) = &rule.message else {
            self.line(&text, start(span), start(rule_span), self.end(span), Shape::Plain);
            return;
        };
        self.comments_before_line(start(rule_span), start(span));
        self.blank_line_if_written(start(span));
        // Comments between the rule and its message: one on the rule's line stays there, the
        // others get lines of their own above `else`.
        let column = " ".repeat(self.depth * INDENT_WIDTH + width.max("eligible".len()) + 1);
        if let Some(comment) = self.take_trailing_comment(self.end(rule_span)) {
            text.push(' ');
            text.push_str(&comment.text);
        }
        while let Some(comment) = self.next_comment_before(start(message.span)) {
            text.push_str(&format!("\n{column}{}", comment.text));
        }
        text.push_str(&format!("\n{column}else {}", self.text(message)));
        self.emit(&text, self.end(span));
    }

    fn materials(&mut self, field: &ItemField, materials: &[Material]) {
        let brace = self.find_token(self.end(field.keyword), "{");
        let close = self.closing_brace(field.span);
        let spans: Vec<Span> = materials.iter().map(|m| m.span).collect();
        let no_blocks = vec![false; spans.len()];
        let names: Vec<Option<usize>> = materials.iter().map(|m| Some(display_width(&m.name.name))).collect();
        let titles: Vec<Option<usize>> = materials
            .iter()
            .map(|m| {
                let has_attributes = m.condition.is_some() || !self.material_attributes(m).is_empty();
                has_attributes.then(|| display_width(&self.text(&m.title)))
            })
            .collect();
        let name_widths = self.column_widths(&spans, &no_blocks, &names);
        let title_widths = self.column_widths(&spans, &no_blocks, &titles);
        self.block("materials", start(field.span), brace, close, materials.is_empty(), |p| {
            for (at, material) in materials.iter().enumerate() {
                p.material(material, name_widths[at], title_widths[at]);
            }
        });
    }

    /// The attributes of a material but its `when` rule, in a fixed order.
    fn material_attributes(&self, material: &Material) -> Vec<String> {
        let mut attributes = Vec::new();
        match &material.source {
            Some(MaterialSource::Applicant { .. }) => attributes.push("from applicant".to_string()),
            Some(MaterialSource::Shared { department, dataset, .. }) => {
                attributes.push(format!("from shared {}.{}", department.name, dataset.name))
            }
            Some(MaterialSource::Licence { item, licence, .. }) => {
                attributes.push(format!("from licence {}.{}", item.name, licence.name))
            }
            None => {}
        }
        if let Some(form) = &material.form {
            attributes.push(form.name.clone());
        }
        if let Some(copies) = &material.copies {
            attributes.push(format!("copies {}", self.number(copies)));
        }
        for (set, word) in
            [(material.tolerated, "tolerated"), (material.promise, "promise"), (material.optional, "optional")]
        {
            if set {
                attributes.push(word.to_string());
            }
        }
        attributes
    }

    /// `name  "title"  attributes when <rule>`; the `when` rule goes on the next line, under the
    /// title, when the line is too long.
    fn material(&mut self, material: &Material, name_width: usize, title_width: usize) {
        let name = pad(&material.name.name, name_width);
        let title = self.text(&material.title);
        let attributes = self.material_attributes(material);
        let first_line = if attributes.is_empty() {
            format!("{name} {title}")
        } else {
            format!("{name} {} {}", pad(&title, title_width), attributes.join(" "))
        };
        let text = match &material.condition {
            None => first_line,
            Some(condition) => {
                let when = format!("when {}", condition.source.as_str());
                let one_line = if attributes.is_empty() {
                    format!("{name} {} {when}", pad(&title, title_width))
                } else {
                    format!("{first_line} {when}")
                };
                if self.fits(&one_line) {
                    one_line
                } else {
                    let column = self.depth * INDENT_WIDTH + display_width(&name) + 1;
                    format!("{first_line}\n{}{when}", " ".repeat(column))
                }
            }
        };
        // `when` is printed last: comments after its rule in the source follow the line.
        let split = material.condition.as_ref().map_or(self.end(material.span), |c| start(c.span));
        self.line(&text, start(material.span), split, self.end(material.span), Shape::Plain);
    }

    fn steps(&mut self, field: &ItemField, steps: &[StepStmt]) {
        let brace = self.find_token(self.end(field.keyword), "{");
        let close = self.closing_brace(field.span);
        let spans: Vec<Span> = steps.iter().map(StepStmt::span).collect();
        let names: Vec<Option<usize>> = steps
            .iter()
            .map(|s| match s {
                StepStmt::Attrs { step, .. } => Some(display_width(&step.name)),
                StepStmt::Chain { .. } => None,
            })
            .collect();
        let name_widths = self.column_widths(&spans, &vec![false; spans.len()], &names);
        self.block("steps", start(field.span), brace, close, steps.is_empty(), |p| {
            for (step, name_width) in steps.iter().zip(name_widths) {
                let text = match step {
                    StepStmt::Chain { steps, .. } => p.step_chain(steps),
                    StepStmt::Attrs { step, attrs, .. } => {
                        let mut text = pad(&step.name, name_width);
                        for attr in attrs {
                            let attr = match attr {
                                StepAttr::Label(label) => p.text(label),
                                StepAttr::Back(steps) => format!("back {}", join_names(steps)),
                                StepAttr::Cosign(departments) => format!("cosign {}", join_names(departments)),
                                StepAttr::By(department) => format!("by {}", department.name),
                                StepAttr::Limit(limit) => format!("limit {}", p.duration(limit)),
                            };
                            text.push(' ');
                            text.push_str(&attr);
                        }
                        text
                    }
                };
                p.unit(&text, start(step.span()), p.end(step.span()));
            }
        });
    }

    /// `a -> b -> c`, continued on further lines (`-> d`, indented) past [`MAX_WIDTH`].
    fn step_chain(&self, steps: &[StepRef]) -> String {
        let continuation = " ".repeat((self.depth + 1) * INDENT_WIDTH);
        let mut text = String::new();
        let mut line_width = self.depth * INDENT_WIDTH;
        for (at, step) in steps.iter().enumerate() {
            let name = match step {
                StepRef::Step(name) => name.name.as_str(),
                StepRef::End(_) => "end",
            };
            if at == 0 {
                text.push_str(name);
                line_width += display_width(name);
            } else if line_width + 4 + display_width(name) <= MAX_WIDTH {
                text.push_str(" -> ");
                text.push_str(name);
                line_width += 4 + display_width(name);
            } else {
                text.push('\n');
                text.push_str(&continuation);
                text.push_str("-> ");
                text.push_str(name);
                line_width = continuation.len() + 3 + display_width(name);
            }
        }
        text
    }

    fn process(&mut self, process: &Process) {
        let brace = self.find_token(self.end(process.title.span), "{");
        let close = self.closing_brace(process.span);
        let mut header = format!("process {} {}", process.name.name, self.text(&process.title));
        if let Some(base) = &process.base {
            header.push_str(&format!(" extends {}", base.name));
        }
        self.block(&header, start(process.span), brace, close, process.fields.is_empty(), |p| {
            let spans: Vec<Span> = process.fields.iter().map(|f| f.span).collect();
            let keywords: Vec<Option<usize>> = process.fields.iter().map(|f| Some(f.kind.keyword().len())).collect();
            let widths = p.column_widths(&spans, &vec![false; spans.len()], &keywords);
            for (field, width) in process.fields.iter().zip(widths) {
                p.process_field(field, width);
            }
        });
    }

    fn process_field(&mut self, field: &ProcessField, width: usize) {
        let keyword = field.kind.keyword();
        let value = match &field.kind {
            ProcessFieldKind::Code(code) => self.text(code),
            ProcessFieldKind::Window(department) => department.name.clone(),
            ProcessFieldKind::Sla(sla) => self.duration(sla),
            ProcessFieldKind::Visits(visits) => format!("at_most {}", self.number(visits)),
            ProcessFieldKind::Warn(rules) => rules
                .iter()
                .map(|rule| match &rule.at {
                    WarnAt::PercentOfSla(percent) => {
                        let percent = self.number(percent);
                        let percent = if percent.ends_with('%') { percent } else { format!("{percent}%") };
                        format!("{} at {percent} of sla", rule.level.name)
                    }
                    WarnAt::Overdue => format!("{} at overdue", rule.level.name),
                })
                .collect::<Vec<_>>()
                .join(", "),
            ProcessFieldKind::Replace { item, with } => format!("{} with {}", item.name, with.name),
            ProcessFieldKind::Guide(guide) => self.guide_value(guide),
            ProcessFieldKind::Eligible(rule) => return self.eligible(rule, width, field.span),
            ProcessFieldKind::Flow(sequence) => return self.flow(field, sequence, width),
        };
        self.unit(&format!("{keyword:<width$} {value}"), start(field.span), self.end(field.span));
    }

    // -------------------------------------------------------------- flows

    fn flow(&mut self, field: &ProcessField, sequence: &Sequence, width: usize) {
        let brace = self.find_token(self.end(field.keyword), "{");
        let close = self.closing_brace(field.span);
        if !self.has_comment_in(brace, close) {
            if let Some(flat) = self.flat_sequence(sequence) {
                let text = format!("{:<width$} {{ {flat} }}", "flow");
                if self.fits(&text) {
                    self.unit(&text, start(field.span), self.end(field.span));
                    return;
                }
            }
        }
        self.open("flow {", start(field.span), brace + 1);
        self.sequence(sequence, "");
        self.close("}", close, close + 1);
    }

    /// A sequence on one line, if nothing in it is multi-line.
    fn flat_sequence(&self, sequence: &Sequence) -> Option<String> {
        let nodes = sequence.nodes.iter().map(|node| self.flat_node(node)).collect::<Option<Vec<_>>>()?;
        Some(nodes.join(" -> "))
    }

    fn flat_node(&self, node: &FlowNode) -> Option<String> {
        match node {
            FlowNode::Item(item) => Some(item.name.clone()),
            FlowNode::End(_) => Some("end".into()),
            FlowNode::Parallel { branches, .. } => {
                let branches = branches.iter().map(|b| self.flat_sequence(b)).collect::<Option<Vec<_>>>()?;
                Some(format!("parallel {{ {} }}", branches.join(", ")))
            }
            FlowNode::Conditional { branches, otherwise, .. } => {
                let mut text = String::new();
                for (condition, body) in branches {
                    let condition = condition.source.as_str();
                    if condition.contains('\n') {
                        return None;
                    }
                    if !text.is_empty() {
                        text.push_str(" else ");
                    }
                    text.push_str(&format!("if {condition} {{ {} }}", self.flat_sequence(body)?));
                }
                if let Some(otherwise) = otherwise {
                    text.push_str(&format!(" else {{ {} }}", self.flat_sequence(otherwise)?));
                }
                Some(text)
            }
        }
    }

    /// Where the part of `node` that a comment can not be moved out of begins: comments before
    /// it are printed before the node's first line, whatever its layout.
    fn node_body_start(&self, node: &FlowNode) -> usize {
        match node {
            FlowNode::Item(_) | FlowNode::End(_) => self.end(node.span()),
            FlowNode::Parallel { span, .. } => self.find_token(start(*span) + "parallel".len(), "{"),
            FlowNode::Conditional { branches, span, .. } => match branches.first() {
                Some((condition, _)) => self.find_token(self.end(condition.span), "{"),
                None => start(*span),
            },
        }
    }

    /// A sequence at the current depth, followed by `suffix` (`,` in a `parallel`): on one line
    /// if it fits and holds no comment, otherwise one node per line, each after the first
    /// starting with `->`.
    fn sequence(&mut self, sequence: &Sequence, suffix: &str) {
        let clean = match sequence.nodes.first() {
            Some(first) => !self.has_comment_in(self.node_body_start(first), self.end(sequence.span)),
            None => true,
        };
        if clean {
            if let Some(flat) = self.flat_sequence(sequence) {
                let text = format!("{flat}{suffix}");
                if self.fits(&text) {
                    self.unit(&text, start(sequence.span), self.end(sequence.span));
                    return;
                }
            }
        }
        let last = sequence.nodes.len().saturating_sub(1);
        for (at, node) in sequence.nodes.iter().enumerate() {
            let prefix = if at == 0 { "" } else { "-> " };
            self.flow_node(node, prefix, if at == last { suffix } else { "" });
        }
    }

    /// One node of a sequence printed one node per line: `parallel` and `if` on one line when
    /// they fit and hold no comment, otherwise as blocks.
    fn flow_node(&mut self, node: &FlowNode, prefix: &str, suffix: &str) {
        let span = node.span();
        let body_start = self.node_body_start(node);
        let flat = match node {
            FlowNode::Item(item) => Some(item.name.clone()),
            FlowNode::End(_) => Some("end".into()),
            _ if self.has_comment_in(body_start, self.end(span)) => None,
            _ => self.flat_node(node).filter(|flat| self.fits(&format!("{prefix}{flat}{suffix}"))),
        };
        if let Some(flat) = flat {
            self.unit(&format!("{prefix}{flat}{suffix}"), start(span), self.end(span));
            return;
        }
        match node {
            FlowNode::Item(_) | FlowNode::End(_) => {}
            FlowNode::Parallel { branches, .. } => {
                self.open(&format!("{prefix}parallel {{"), start(span), body_start + 1);
                for branch in branches {
                    self.sequence(branch, ",");
                }
                let close = self.closing_brace(span);
                self.close(&format!("}}{suffix}"), close, close + 1);
            }
            FlowNode::Conditional { branches, otherwise, .. } => {
                let mut previous_close = None;
                for (condition, body) in branches {
                    // Comments after the condition go into the branch: those inside a
                    // multi-line condition are printed with it.
                    let (split, brace) = (start(condition.span), self.find_token(self.end(condition.span), "{"));
                    let condition = condition.source.as_str();
                    match previous_close {
                        None => {
                            let text = format!("{prefix}if {condition} {{");
                            self.line(&text, start(span), split, brace + 1, Shape::Opens)
                        }
                        Some(close) => {
                            let text = format!("}} else if {condition} {{");
                            self.line(&text, close, split, brace + 1, Shape::ClosesAndOpens)
                        }
                    }
                    self.sequence(body, "");
                    previous_close = Some(self.find_token(self.end(body.span), "}"));
                }
                if let Some(otherwise) = otherwise {
                    let close = previous_close.unwrap_or(start(span));
                    let else_keyword = self.find_token(close + 1, "else");
                    let brace = self.find_token(else_keyword + "else".len(), "{");
                    self.close("} else {", close, brace + 1);
                    self.sequence(otherwise, "");
                }
                let close = self.closing_brace(span);
                self.close(&format!("}}{suffix}"), close, close + 1);
            }
        }
    }
}

fn join_names(names: &[Ident]) -> String {
    names.iter().map(|n| n.name.as_str()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Formats `input`, expects `expected`, and expects formatting that again to change nothing.
    fn formats_to(input: &str, expected: &str) {
        let once = format(input).expect("input parses");
        assert_eq!(once, expected);
        assert_eq!(format(&once).expect("output parses"), once);
    }

    #[test]
    fn cjk_characters_take_two_columns() {
        assert_eq!(display_width("营业执照"), 8);
        assert_eq!(display_width("\"（备案）\""), 10);
        assert_eq!(pad("身份", 6), "身份  ");
        assert_eq!(pad("too wide", 3), "too wide");
    }

    #[test]
    fn nothing_follows_a_cel_rule_on_its_line() {
        // The grammar ends a rule at the end of its line, not at `else` or `tolerated`: printed
        // after the rule on the same line, they would become part of it.
        formats_to(
            "item a \"A\" {\n eligible x > 1\n else \"m\"\n materials { m \"M\" when x > 1\n tolerated }\n}\n",
            "item a \"A\" {\n  eligible x > 1\n           else \"m\"\n  materials {\n    m \"M\" tolerated when x > 1\n  }\n}\n",
        );
    }

    #[test]
    fn a_comment_inside_a_flow_breaks_it_over_lines() {
        formats_to(
            "process p \"P\" { flow { a -> parallel { b, c } } }\n",
            "process p \"P\" {\n  flow { a -> parallel { b, c } }\n}\n",
        );
        formats_to(
            "process p \"P\" { flow { a -> parallel { b, // why\n c } } }\n",
            "process p \"P\" {\n  flow {\n    a\n    -> parallel {\n      b, // why\n      c,\n    }\n  }\n}\n",
        );
    }

    #[test]
    fn comments_inside_a_line_move_before_it() {
        formats_to(
            "item a \"A\" {\n  legal_limit 20 // calendar days in the law\n    workdays\n}\n",
            "item a \"A\" {\n  // calendar days in the law\n  legal_limit 20 workdays\n}\n",
        );
    }

    #[test]
    fn one_line_declarations_written_together_stay_together() {
        formats_to(
            "department a \"A\"\ndepartment long_name \"L\"\n\ndepartment c \"C\"\nimport \"x.flow\"\n",
            "department a         \"A\"\ndepartment long_name \"L\"\n\ndepartment c \"C\"\n\nimport \"x.flow\"\n",
        );
    }

    #[test]
    fn a_cell_wider_than_the_cap_does_not_widen_its_column() {
        let long_name = "a".repeat(ALIGN_CAP + 1);
        formats_to(
            &format!("schema s {{ id string pii(id) {long_name} int name string }}"),
            &format!("schema s {{\n  id   string pii(id)\n  {long_name} int\n  name string\n}}\n"),
        );
    }
}
