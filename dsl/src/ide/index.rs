//! Every name in a workspace, where it is declared and where it is used.
//!
//! Built from the syntax trees (so a file with a syntax error still indexes its sound
//! declarations) and, for the fields a rule reads, from the checked schemas. One walk gives
//! go-to-definition, find-references, highlights, rename and semantic tokens.

use std::collections::HashMap;

use crate::cel;
use crate::check::Analysis;
use crate::model::FieldType;
use crate::span::{FileId, Location, Span};
use crate::syntax::ast;
use crate::workspace::Workspace;

/// What a name stands for. Names are global in a checked program (imports decide visibility,
/// not meaning), so a symbol is its kind and its names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Symbol {
    Department(String),
    /// A data set a department shares (`data population "…"`).
    Dataset {
        department: String,
        name: String,
    },
    Schema(String),
    /// A schema field: the schema and the path of field names inside it.
    Field {
        schema: String,
        path: Vec<String>,
    },
    Item(String),
    Process(String),
    /// A licence, keyed by the item that declares `produces licence`.
    Licence {
        item: String,
        name: String,
    },
    /// A material: one name is one document everywhere (the consolidated list merges by name).
    Material(String),
    Step {
        item: String,
        name: String,
    },
    /// A function a rule calls (standard or domain).
    Function(String),
    /// A case value every rule may read (`today`, `materials`, `licences`).
    Context(String),
}

impl Symbol {
    /// The name as written at each occurrence (the last part of a path).
    pub fn name(&self) -> &str {
        match self {
            Symbol::Department(n)
            | Symbol::Schema(n)
            | Symbol::Item(n)
            | Symbol::Process(n)
            | Symbol::Material(n)
            | Symbol::Function(n)
            | Symbol::Context(n) => n,
            Symbol::Dataset { name, .. } | Symbol::Licence { name, .. } | Symbol::Step { name, .. } => name,
            Symbol::Field { schema, path } => path.last().unwrap_or(schema),
        }
    }

    /// What kind of thing it is, in words.
    pub fn kind(&self) -> &'static str {
        match self {
            Symbol::Department(_) => "department",
            Symbol::Dataset { .. } => "data set",
            Symbol::Schema(_) => "schema",
            Symbol::Field { .. } => "schema field",
            Symbol::Item(_) => "item",
            Symbol::Process(_) => "process",
            Symbol::Licence { .. } => "licence",
            Symbol::Material(_) => "material",
            Symbol::Step { .. } => "step",
            Symbol::Function(_) => "function",
            Symbol::Context(_) => "case value",
        }
    }

    /// Whether the user may rename it (functions and case values are the language's).
    pub fn renamable(&self) -> bool {
        !matches!(self, Symbol::Function(_) | Symbol::Context(_))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Where the name is declared.
    Declaration,
    /// Where it is used.
    Reference,
    /// Inside a string: a material named in `has_material("…")`. Renamed with the others, but
    /// the span covers the text between the quotes.
    InString,
}

/// One appearance of a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    pub symbol: Symbol,
    pub location: Location,
    pub role: Role,
    /// Whether it is inside a CEL rule.
    pub in_rule: bool,
}

/// The occurrences of every file of a workspace, sorted by file and position.
#[derive(Debug, Clone, Default)]
pub struct SymbolIndex {
    pub occurrences: Vec<Occurrence>,
    declarations: HashMap<Symbol, Location>,
}

impl SymbolIndex {
    pub fn build(workspace: &Workspace, analysis: &Analysis) -> SymbolIndex {
        let mut builder = Builder { analysis, occurrences: Vec::new(), file: FileId(0), producers: HashMap::new() };
        builder.collect_producers(workspace);
        for file in &workspace.files {
            builder.file = file.id;
            for decl in &file.tree.decls {
                builder.decl(decl);
            }
            for broken in &file.tree.broken {
                if let Some(name) = &broken.name {
                    let symbol = match broken.keyword {
                        ast::DeclKind::Department => Symbol::Department(name.name.clone()),
                        ast::DeclKind::Schema => Symbol::Schema(name.name.clone()),
                        ast::DeclKind::Item => Symbol::Item(name.name.clone()),
                        ast::DeclKind::Process => Symbol::Process(name.name.clone()),
                        ast::DeclKind::Import => continue,
                    };
                    builder.push(symbol, name.span, Role::Declaration, false);
                }
            }
        }
        let mut occurrences = builder.occurrences;
        occurrences.sort_by_key(|o| (o.location.file, o.location.span.start, o.location.span.end));
        occurrences.dedup();
        let mut declarations = HashMap::new();
        for o in &occurrences {
            if o.role == Role::Declaration {
                declarations.entry(o.symbol.clone()).or_insert(o.location);
            }
        }
        SymbolIndex { occurrences, declarations }
    }

    /// The occurrence under a byte offset of a file (the end of a name counts, so that a
    /// cursor just after a word finds it).
    pub fn at(&self, file: FileId, offset: u32) -> Option<&Occurrence> {
        let start = self.occurrences.partition_point(|o| o.location.file < file);
        self.occurrences[start..]
            .iter()
            .take_while(|o| o.location.file == file && o.location.span.start <= offset)
            .filter(|o| o.location.span.start <= offset && offset <= o.location.span.end)
            .min_by_key(|o| o.location.span.end - o.location.span.start)
    }

    /// Where a symbol is declared.
    pub fn declaration(&self, symbol: &Symbol) -> Option<Location> {
        self.declarations.get(symbol).copied()
    }

    /// Every occurrence of a symbol, declaration included.
    pub fn occurrences_of<'a>(&'a self, symbol: &'a Symbol) -> impl Iterator<Item = &'a Occurrence> + 'a {
        self.occurrences.iter().filter(move |o| &o.symbol == symbol)
    }

    /// The occurrences in one file, in order.
    pub fn in_file(&self, file: FileId) -> &[Occurrence] {
        let start = self.occurrences.partition_point(|o| o.location.file < file);
        let end = self.occurrences.partition_point(|o| o.location.file <= file);
        &self.occurrences[start..end]
    }

    /// Every declared symbol, for workspace symbols.
    pub fn declarations(&self) -> impl Iterator<Item = (&Symbol, &Location)> {
        self.declarations.iter()
    }
}

struct Builder<'a> {
    analysis: &'a Analysis,
    occurrences: Vec<Occurrence>,
    file: FileId,
    /// For each item: the item it extends and the licence it produces, to find which item
    /// declares the licence `variant.licence` names.
    producers: HashMap<String, (Option<String>, Option<String>)>,
}

impl Builder<'_> {
    fn push(&mut self, symbol: Symbol, span: Span, role: Role, in_rule: bool) {
        self.occurrences.push(Occurrence { symbol, location: Location { file: self.file, span }, role, in_rule });
    }

    fn collect_producers(&mut self, workspace: &Workspace) {
        for file in &workspace.files {
            for decl in &file.tree.decls {
                if let ast::Decl::Item(item) = decl {
                    let licence = item.fields.iter().find_map(|f| match &f.kind {
                        ast::ItemFieldKind::Produces { name, .. } => Some(name.name.clone()),
                        _ => None,
                    });
                    self.producers
                        .insert(item.name.name.clone(), (item.base.as_ref().map(|b| b.name.clone()), licence));
                }
            }
        }
    }

    /// The item that declares licence `name` for `item` (itself or a base it extends).
    fn licence_owner(&self, item: &str, name: &str) -> String {
        let mut current = item.to_string();
        for _ in 0..=self.producers.len() {
            match self.producers.get(&current) {
                Some((_, Some(licence))) if licence == name => return current,
                Some((Some(base), _)) => current = base.clone(),
                _ => break,
            }
        }
        item.to_string()
    }

    fn decl(&mut self, decl: &ast::Decl) {
        match decl {
            ast::Decl::Import(_) => {}
            ast::Decl::Department(d) => {
                self.push(Symbol::Department(d.name.name.clone()), d.name.span, Role::Declaration, false);
                for set in &d.datasets {
                    let symbol = Symbol::Dataset { department: d.name.name.clone(), name: set.name.name.clone() };
                    self.push(symbol, set.name.span, Role::Declaration, false);
                }
            }
            ast::Decl::Schema(s) => {
                let mut path = Vec::new();
                self.fields(&s.name.name, &s.fields, &mut path);
                self.push(Symbol::Schema(s.name.name.clone()), s.name.span, Role::Declaration, false);
            }
            ast::Decl::Item(item) => self.item(item),
            ast::Decl::Process(process) => self.process(process),
        }
    }

    fn fields(&mut self, schema: &str, fields: &[ast::Field], path: &mut Vec<String>) {
        for field in fields {
            path.push(field.name.name.clone());
            let symbol = Symbol::Field { schema: schema.to_string(), path: path.clone() };
            self.push(symbol, field.name.span, Role::Declaration, false);
            let mut ty = &field.ty;
            while let ast::TypeExpr::List { element, .. } = ty {
                ty = element;
            }
            if let ast::TypeExpr::Record { fields, .. } = ty {
                self.fields(schema, fields, path);
            }
            path.pop();
        }
    }

    fn item(&mut self, item: &ast::Item) {
        let name = &item.name.name;
        self.push(Symbol::Item(name.clone()), item.name.span, Role::Declaration, false);
        if let Some(base) = &item.base {
            self.push(Symbol::Item(base.name.clone()), base.span, Role::Reference, false);
        }
        for field in &item.fields {
            match &field.kind {
                ast::ItemFieldKind::Department(d) => {
                    self.push(Symbol::Department(d.name.clone()), d.span, Role::Reference, false)
                }
                ast::ItemFieldKind::Eligible(rule) => self.rule(&rule.expr),
                ast::ItemFieldKind::Produces { name: licence, .. } => {
                    let symbol = Symbol::Licence { item: name.clone(), name: licence.name.clone() };
                    self.push(symbol, licence.span, Role::Declaration, false);
                }
                ast::ItemFieldKind::Materials(materials) => {
                    for material in materials {
                        self.push(
                            Symbol::Material(material.name.name.clone()),
                            material.name.span,
                            Role::Declaration,
                            false,
                        );
                        match &material.source {
                            Some(ast::MaterialSource::Shared { department, dataset, .. }) => {
                                self.push(
                                    Symbol::Department(department.name.clone()),
                                    department.span,
                                    Role::Reference,
                                    false,
                                );
                                let symbol =
                                    Symbol::Dataset { department: department.name.clone(), name: dataset.name.clone() };
                                self.push(symbol, dataset.span, Role::Reference, false);
                            }
                            Some(ast::MaterialSource::Licence { item: producer, licence, .. }) => {
                                self.push(Symbol::Item(producer.name.clone()), producer.span, Role::Reference, false);
                                let owner = self.licence_owner(&producer.name, &licence.name);
                                let symbol = Symbol::Licence { item: owner, name: licence.name.clone() };
                                self.push(symbol, licence.span, Role::Reference, false);
                            }
                            Some(ast::MaterialSource::Applicant { .. }) | None => {}
                        }
                        if let Some(condition) = &material.condition {
                            self.rule(condition);
                        }
                    }
                }
                ast::ItemFieldKind::Steps(steps) => self.steps(name, steps),
                _ => {}
            }
        }
    }

    fn steps(&mut self, item: &str, steps: &[ast::StepStmt]) {
        // A variant that gives its own steps declares them; a step is declared where it is
        // first written.
        let owner = item.to_string();
        let mut seen: Vec<String> = Vec::new();
        let mut step = |builder: &mut Self, ident: &ast::Ident| {
            let role = if seen.contains(&ident.name) {
                Role::Reference
            } else {
                seen.push(ident.name.clone());
                Role::Declaration
            };
            builder.push(Symbol::Step { item: owner.clone(), name: ident.name.clone() }, ident.span, role, false);
        };
        for stmt in steps {
            match stmt {
                ast::StepStmt::Chain { steps, .. } => {
                    for s in steps {
                        if let ast::StepRef::Step(ident) = s {
                            step(self, ident);
                        }
                    }
                }
                ast::StepStmt::Attrs { step: ident, attrs, .. } => {
                    step(self, ident);
                    for attr in attrs {
                        match attr {
                            ast::StepAttr::Back(targets) => targets.iter().for_each(|t| step(self, t)),
                            ast::StepAttr::Cosign(departments) => {
                                for d in departments {
                                    self.push(Symbol::Department(d.name.clone()), d.span, Role::Reference, false);
                                }
                            }
                            ast::StepAttr::By(d) => {
                                self.push(Symbol::Department(d.name.clone()), d.span, Role::Reference, false)
                            }
                            ast::StepAttr::Label(_) | ast::StepAttr::Limit(_) => {}
                        }
                    }
                }
            }
        }
    }

    fn process(&mut self, process: &ast::Process) {
        self.push(Symbol::Process(process.name.name.clone()), process.name.span, Role::Declaration, false);
        if let Some(base) = &process.base {
            self.push(Symbol::Process(base.name.clone()), base.span, Role::Reference, false);
        }
        for field in &process.fields {
            match &field.kind {
                ast::ProcessFieldKind::Window(d) => {
                    self.push(Symbol::Department(d.name.clone()), d.span, Role::Reference, false)
                }
                ast::ProcessFieldKind::Eligible(rule) => self.rule(&rule.expr),
                ast::ProcessFieldKind::Flow(sequence) => self.sequence(sequence),
                ast::ProcessFieldKind::Replace { item, with } => {
                    self.push(Symbol::Item(item.name.clone()), item.span, Role::Reference, false);
                    self.push(Symbol::Item(with.name.clone()), with.span, Role::Reference, false);
                }
                _ => {}
            }
        }
    }

    fn sequence(&mut self, sequence: &ast::Sequence) {
        for node in &sequence.nodes {
            match node {
                ast::FlowNode::Item(ident) => {
                    self.push(Symbol::Item(ident.name.clone()), ident.span, Role::Reference, false)
                }
                ast::FlowNode::End(_) => {}
                ast::FlowNode::Parallel { branches, .. } => branches.iter().for_each(|b| self.sequence(b)),
                ast::FlowNode::Conditional { branches, otherwise, .. } => {
                    for (condition, body) in branches {
                        self.rule(condition);
                        self.sequence(body);
                    }
                    if let Some(otherwise) = otherwise {
                        self.sequence(otherwise);
                    }
                }
            }
        }
    }

    /// The names a rule reads: schemas, their fields (as far as the schema knows them), case
    /// values, functions, and materials named in `has_material("…")`.
    fn rule(&mut self, text: &ast::CelText) {
        let Ok(parsed) = cel::parse_rule(&text.source) else { return };
        let base = text.span.start as usize;
        let span = |range: &std::ops::Range<usize>| Span::new(base + range.start, base + range.end);
        for reference in &parsed.references {
            let Some((root, root_range)) = reference.segments.first() else { continue };
            if cel::types::CONTEXT.iter().any(|(name, ..)| name == root) {
                self.push(Symbol::Context(root.clone()), span(root_range), Role::Reference, true);
                continue;
            }
            let Some(schema) = self.analysis.program.schema(root) else { continue };
            self.push(Symbol::Schema(root.clone()), span(root_range), Role::Reference, true);
            let mut fields = schema.fields.as_slice();
            let mut path = Vec::new();
            for (name, range) in &reference.segments[1..] {
                let Some(field) = fields.iter().find(|f| &f.name == name) else { break };
                path.push(name.clone());
                self.push(
                    Symbol::Field { schema: root.clone(), path: path.clone() },
                    span(range),
                    Role::Reference,
                    true,
                );
                fields = match &field.ty {
                    FieldType::Record(inner) => inner,
                    _ => break,
                };
            }
        }
        self.calls(&parsed.expr, &span);
    }

    fn calls(&mut self, expr: &cel::syntax::Expr, span: &dyn Fn(&std::ops::Range<usize>) -> Span) {
        use cel::syntax::ExprKind;
        match &expr.kind {
            ExprKind::Call { target, function, function_span, args } => {
                if cel::types::FUNCTIONS.iter().any(|f| f.name == function) {
                    self.push(Symbol::Function(function.clone()), span(function_span), Role::Reference, true);
                }
                if function == "has_material" {
                    if let Some(cel::syntax::Expr { kind: ExprKind::String(name), span: at }) = args.first() {
                        // The text between the quotes (rules name materials by their plain name).
                        let inner = at.start + 1..at.end.saturating_sub(1).max(at.start + 1);
                        self.push(Symbol::Material(name.clone()), span(&inner), Role::InString, true);
                    }
                }
                if let Some(target) = target {
                    self.calls(target, span);
                }
                args.iter().for_each(|a| self.calls(a, span));
            }
            ExprKind::Select { operand, .. } => self.calls(operand, span),
            ExprKind::Index { operand, index, .. } => {
                self.calls(operand, span);
                self.calls(index, span);
            }
            ExprKind::List(items) => items.iter().for_each(|e| self.calls(e, span)),
            ExprKind::Map(entries) => entries.iter().for_each(|(k, v)| {
                self.calls(k, span);
                self.calls(v, span);
            }),
            ExprKind::Struct { fields, .. } => fields.iter().for_each(|(_, v)| self.calls(v, span)),
            ExprKind::Unary { operand, .. } => self.calls(operand, span),
            ExprKind::Binary { left, right, .. } => {
                self.calls(left, span);
                self.calls(right, span);
            }
            ExprKind::Ternary { condition, then, otherwise } => {
                self.calls(condition, span);
                self.calls(then, span);
                self.calls(otherwise, span);
            }
            _ => {}
        }
    }
}
