//! The shape of a file: its outline (document symbols), foldable blocks, and the nested
//! ranges a selection grows through.

use crate::ide::Snapshot;
use crate::span::{FileId, Span};
use crate::syntax::ast;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutlineKind {
    Import,
    Department,
    Dataset,
    Schema,
    Field,
    Item,
    Material,
    Step,
    Licence,
    Process,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutlineNode {
    pub name: String,
    /// The title or type, shown beside the name.
    pub detail: String,
    pub kind: OutlineKind,
    /// The whole declaration.
    pub span: Span,
    /// The name.
    pub name_span: Span,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<OutlineNode>,
}

fn node(name: &ast::Ident, detail: impl Into<String>, kind: OutlineKind, span: Span) -> OutlineNode {
    OutlineNode {
        name: name.name.clone(),
        detail: detail.into(),
        kind,
        span,
        name_span: name.span,
        children: Vec::new(),
    }
}

/// The outline of a file: departments, schemas, items with their materials and steps,
/// processes.
pub fn outline(snapshot: &Snapshot, file: FileId) -> Vec<OutlineNode> {
    let Some(source) = snapshot.workspace.file(file) else { return Vec::new() };
    let mut out = Vec::new();
    for decl in &source.tree.decls {
        match decl {
            ast::Decl::Import(import) => out.push(OutlineNode {
                name: import.path.value.clone(),
                detail: "import".into(),
                kind: OutlineKind::Import,
                span: import.span,
                name_span: import.path.span,
                children: Vec::new(),
            }),
            ast::Decl::Department(d) => {
                let mut n = node(&d.name, &d.title.value, OutlineKind::Department, d.span);
                n.children =
                    d.datasets.iter().map(|s| node(&s.name, &s.title.value, OutlineKind::Dataset, s.span)).collect();
                out.push(n);
            }
            ast::Decl::Schema(s) => {
                let mut n = node(&s.name, "schema", OutlineKind::Schema, s.span);
                n.children = field_nodes(&s.fields);
                out.push(n);
            }
            ast::Decl::Item(item) => {
                let mut n = node(&item.name, &item.title.value, OutlineKind::Item, item.span);
                for field in &item.fields {
                    match &field.kind {
                        ast::ItemFieldKind::Materials(materials) => n.children.extend(
                            materials.iter().map(|m| node(&m.name, &m.title.value, OutlineKind::Material, m.span)),
                        ),
                        ast::ItemFieldKind::Steps(steps) => {
                            let mut seen: Vec<&str> = Vec::new();
                            for stmt in steps {
                                let idents: Vec<&ast::Ident> = match stmt {
                                    ast::StepStmt::Chain { steps, .. } => steps
                                        .iter()
                                        .filter_map(|s| match s {
                                            ast::StepRef::Step(i) => Some(i),
                                            ast::StepRef::End(_) => None,
                                        })
                                        .collect(),
                                    ast::StepStmt::Attrs { step, .. } => vec![step],
                                };
                                for ident in idents {
                                    if !seen.contains(&ident.name.as_str()) {
                                        seen.push(&ident.name);
                                        n.children.push(node(ident, "step", OutlineKind::Step, stmt.span()));
                                    }
                                }
                            }
                        }
                        ast::ItemFieldKind::Produces { name, title } => {
                            n.children.push(node(name, &title.value, OutlineKind::Licence, field.span))
                        }
                        _ => {}
                    }
                }
                out.push(n);
            }
            ast::Decl::Process(p) => out.push(node(&p.name, &p.title.value, OutlineKind::Process, p.span)),
        }
    }
    out
}

fn field_nodes(fields: &[ast::Field]) -> Vec<OutlineNode> {
    fields
        .iter()
        .map(|f| {
            let mut n = node(&f.name, "", OutlineKind::Field, f.span);
            let mut ty = &f.ty;
            while let ast::TypeExpr::List { element, .. } = ty {
                ty = element;
            }
            match ty {
                ast::TypeExpr::Record { fields: inner, .. } => n.children = field_nodes(inner),
                ast::TypeExpr::Primitive { name, .. } => n.detail = name.clone(),
                ast::TypeExpr::List { .. } => {}
            }
            if let Some(pii) = &f.pii {
                n.detail = format!("{} pii({})", n.detail, pii.name).trim().to_string();
            }
            n
        })
        .collect()
}

/// A foldable range of lines (0-based, inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Fold {
    pub start_line: u32,
    pub end_line: u32,
    pub comment: bool,
}

/// Blocks that span several lines, and runs of two or more comment lines.
pub fn folds(snapshot: &Snapshot, file: FileId) -> Vec<Fold> {
    let Some(source) = snapshot.workspace.file(file) else { return Vec::new() };
    let text = source.text.as_str();
    let line_of = |offset: u32| text[..(offset as usize).min(text.len())].matches('\n').count() as u32;
    let mut out = Vec::new();
    let mut push = |span: Span, comment: bool| {
        let (start_line, end_line) = (line_of(span.start), line_of(span.end));
        if end_line > start_line {
            out.push(Fold { start_line, end_line, comment });
        }
    };
    for span in block_spans(&source.tree) {
        push(span, false);
    }
    // Comment runs: consecutive comments on consecutive lines.
    let mut run: Option<(Span, u32)> = None;
    for comment in &source.tree.comments {
        let line = line_of(comment.span.start);
        run = match run {
            Some((span, last)) if line == last + 1 => Some((span.to(comment.span), line)),
            Some((span, _)) => {
                push(span, true);
                Some((comment.span, line))
            }
            None => Some((comment.span, line)),
        };
    }
    if let Some((span, _)) = run {
        push(span, true);
    }
    out.sort_by_key(|f| (f.start_line, std::cmp::Reverse(f.end_line)));
    out.dedup();
    out
}

/// Declarations and the blocks inside them.
fn block_spans(tree: &ast::File) -> Vec<Span> {
    let mut out = Vec::new();
    for decl in &tree.decls {
        out.push(decl.span());
        match decl {
            ast::Decl::Schema(s) => field_spans(&s.fields, &mut out),
            ast::Decl::Item(item) => {
                for field in &item.fields {
                    out.push(field.span);
                    if let ast::ItemFieldKind::Materials(materials) = &field.kind {
                        out.extend(materials.iter().map(|m| m.span));
                    }
                }
            }
            ast::Decl::Process(p) => {
                for field in &p.fields {
                    out.push(field.span);
                    if let ast::ProcessFieldKind::Flow(sequence) = &field.kind {
                        sequence_spans(sequence, &mut out);
                    }
                }
            }
            ast::Decl::Import(_) | ast::Decl::Department(_) => {}
        }
    }
    out.extend(tree.broken.iter().map(|b| b.span));
    out
}

fn field_spans(fields: &[ast::Field], out: &mut Vec<Span>) {
    for f in fields {
        out.push(f.span);
        if let ast::TypeExpr::Record { fields, .. } = &f.ty {
            field_spans(fields, out);
        }
    }
}

fn sequence_spans(sequence: &ast::Sequence, out: &mut Vec<Span>) {
    out.push(sequence.span);
    for node in &sequence.nodes {
        out.push(node.span());
        match node {
            ast::FlowNode::Parallel { branches, .. } => branches.iter().for_each(|b| sequence_spans(b, out)),
            ast::FlowNode::Conditional { branches, otherwise, .. } => {
                for (condition, body) in branches {
                    out.push(condition.span);
                    sequence_spans(body, out);
                }
                if let Some(otherwise) = otherwise {
                    sequence_spans(otherwise, out);
                }
            }
            ast::FlowNode::Item(_) | ast::FlowNode::End(_) => {}
        }
    }
}

/// The ranges around an offset, innermost first: the word, the rule's sub-expressions, the
/// field or material, the block, the declaration, the file.
pub fn selection(snapshot: &Snapshot, file: FileId, offset: u32) -> Vec<Span> {
    let Some(source) = snapshot.workspace.file(file) else { return Vec::new() };
    let mut spans: Vec<Span> = block_spans(&source.tree);
    spans.extend(source.tree.comments.iter().map(|c| c.span));
    spans.extend(snapshot.index.in_file(file).iter().map(|o| o.location.span));
    for rule in source.tree.rule_spans() {
        spans.push(rule);
        let text = &source.text[rule.range()];
        if let Ok(parsed) = crate::cel::parse_rule(text) {
            expr_spans(&parsed.expr, rule.start as usize, &mut spans);
        }
    }
    let word = super::word_before(&source.text, offset as usize);
    let mut end = word.end;
    while let Some(c) = source.text[end..].chars().next().filter(|c| c.is_alphanumeric() || *c == '_') {
        end += c.len_utf8();
    }
    spans.push(Span::new(word.start, end));
    spans.push(Span::new(0, source.text.len()));
    let mut around: Vec<Span> =
        spans.into_iter().filter(|s| s.start <= offset && offset <= s.end && s.end > s.start).collect();
    around.sort_by_key(|s| (s.end - s.start, std::cmp::Reverse(s.start)));
    around.dedup();
    // Each range must contain the one before it.
    let mut chain: Vec<Span> = Vec::new();
    for span in around {
        if chain.last().is_none_or(|inner| span.start <= inner.start && inner.end <= span.end) {
            chain.push(span);
        }
    }
    chain
}

fn expr_spans(expr: &crate::cel::syntax::Expr, base: usize, out: &mut Vec<Span>) {
    use crate::cel::syntax::ExprKind;
    out.push(Span::new(base + expr.span.start, base + expr.span.end));
    match &expr.kind {
        ExprKind::Select { operand, .. } | ExprKind::Unary { operand, .. } => expr_spans(operand, base, out),
        ExprKind::Index { operand, index, .. } => {
            expr_spans(operand, base, out);
            expr_spans(index, base, out);
        }
        ExprKind::Call { target, args, .. } => {
            if let Some(t) = target {
                expr_spans(t, base, out);
            }
            args.iter().for_each(|a| expr_spans(a, base, out));
        }
        ExprKind::List(items) => items.iter().for_each(|e| expr_spans(e, base, out)),
        ExprKind::Map(entries) => entries.iter().for_each(|(k, v)| {
            expr_spans(k, base, out);
            expr_spans(v, base, out);
        }),
        ExprKind::Struct { fields, .. } => fields.iter().for_each(|(_, v)| expr_spans(v, base, out)),
        ExprKind::Binary { left, right, .. } => {
            expr_spans(left, base, out);
            expr_spans(right, base, out);
        }
        ExprKind::Ternary { condition, then, otherwise } => {
            expr_spans(condition, base, out);
            expr_spans(then, base, out);
            expr_spans(otherwise, base, out);
        }
        _ => {}
    }
}
