//! Semantic tokens: every name by what it stands for, declarations and personal-data fields
//! marked, and the operators of rules.

use crate::cel;
use crate::ide::{Role, Snapshot, Symbol};
use crate::span::{FileId, Span};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    Department,
    Dataset,
    Schema,
    Field,
    Item,
    Process,
    Licence,
    Material,
    Step,
    Function,
    Variable,
    Operator,
}

impl TokenKind {
    pub const ALL: [TokenKind; 12] = [
        TokenKind::Department,
        TokenKind::Dataset,
        TokenKind::Schema,
        TokenKind::Field,
        TokenKind::Item,
        TokenKind::Process,
        TokenKind::Licence,
        TokenKind::Material,
        TokenKind::Step,
        TokenKind::Function,
        TokenKind::Variable,
        TokenKind::Operator,
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Token {
    pub span: Span,
    pub kind: TokenKind,
    pub declaration: bool,
    /// A schema field marked `pii(…)`: personal data.
    pub personal: bool,
    /// Inside a rule.
    pub in_rule: bool,
}

/// The tokens of a file, in order, not overlapping.
pub fn tokens(snapshot: &Snapshot, file: FileId) -> Vec<Token> {
    let program = &snapshot.analysis.program;
    let mut out: Vec<Token> = snapshot
        .index
        .in_file(file)
        .iter()
        .filter(|o| o.role != Role::InString)
        .map(|o| {
            let kind = match &o.symbol {
                Symbol::Department(_) => TokenKind::Department,
                Symbol::Dataset { .. } => TokenKind::Dataset,
                Symbol::Schema(_) => TokenKind::Schema,
                Symbol::Field { .. } => TokenKind::Field,
                Symbol::Item(_) => TokenKind::Item,
                Symbol::Process(_) => TokenKind::Process,
                Symbol::Licence { .. } => TokenKind::Licence,
                Symbol::Material(_) => TokenKind::Material,
                Symbol::Step { .. } => TokenKind::Step,
                Symbol::Function(_) => TokenKind::Function,
                Symbol::Context(_) => TokenKind::Variable,
            };
            let personal = match &o.symbol {
                Symbol::Field { schema, path } => {
                    super::schema_field(program, schema, path).is_some_and(|f| f.pii.is_some())
                }
                _ => false,
            };
            Token {
                span: o.location.span,
                kind,
                declaration: o.role == Role::Declaration,
                personal,
                in_rule: o.in_rule,
            }
        })
        .collect();
    if let Some(source) = snapshot.workspace.file(file) {
        for rule in source.tree.rule_spans() {
            let text = &source.text[rule.range()];
            if let Ok(parsed) = cel::parse_rule(text) {
                operators(&parsed.expr, text, rule.start as usize, &mut out);
            }
        }
    }
    out.sort_by_key(|t| (t.span.start, t.span.end));
    out.dedup_by(|b, a| b.span.start < a.span.end);
    out
}

fn operators(expr: &cel::syntax::Expr, text: &str, base: usize, out: &mut Vec<Token>) {
    use cel::syntax::ExprKind;
    let mut operator = |start: usize, symbol: &str| {
        out.push(Token {
            span: Span::new(base + start, base + start + symbol.len()),
            kind: TokenKind::Operator,
            declaration: false,
            personal: false,
            in_rule: true,
        })
    };
    match &expr.kind {
        ExprKind::Binary { op, left, right } => {
            let symbol = op.symbol();
            let between = left.span.end..right.span.start;
            if let Some(at) = text.get(between.clone()).and_then(|gap| gap.find(symbol)) {
                operator(between.start + at, symbol);
            }
            operators(left, text, base, out);
            operators(right, text, base, out);
        }
        ExprKind::Unary { operand, .. } => {
            if let Some(symbol) = text.get(expr.span.start..operand.span.start).map(str::trim).filter(|s| !s.is_empty())
            {
                operator(expr.span.start, symbol);
            }
            operators(operand, text, base, out);
        }
        ExprKind::Ternary { condition, then, otherwise } => {
            for (gap, symbol) in
                [(condition.span.end..then.span.start, "?"), (then.span.end..otherwise.span.start, ":")]
            {
                if let Some(at) = text.get(gap.clone()).and_then(|g| g.find(symbol)) {
                    operator(gap.start + at, symbol);
                }
            }
            operators(condition, text, base, out);
            operators(then, text, base, out);
            operators(otherwise, text, base, out);
        }
        ExprKind::Select { operand, .. } => operators(operand, text, base, out),
        ExprKind::Index { operand, index, .. } => {
            operators(operand, text, base, out);
            operators(index, text, base, out);
        }
        ExprKind::Call { target, args, .. } => {
            if let Some(t) = target {
                operators(t, text, base, out);
            }
            args.iter().for_each(|a| operators(a, text, base, out));
        }
        ExprKind::List(items) => items.iter().for_each(|e| operators(e, text, base, out)),
        ExprKind::Map(entries) => entries.iter().for_each(|(k, v)| {
            operators(k, text, base, out);
            operators(v, text, base, out);
        }),
        _ => {}
    }
}
