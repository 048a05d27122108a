//! Syntax trees to a checked [`Program`], with every diagnostic found on the way.
//!
//! Three passes: (1) declare every top-level name, so that order in and across files does not
//! matter; (2) lower each declaration, resolving names and validating values, and check the
//! structure of each item's steps and each process's flow; (3) cross-checks that need every
//! item: licences produced before they are used, the SLA's critical path, the trips bound.
//!
//! A declaration that did not parse still declares its name: references to it are not
//! reported again, so one typo gives one error.

use std::collections::{HashMap, HashSet};

use crate::analysis;
use crate::cel;
use crate::diagnostic::{count, Code, Diagnostic, Fix, Label};
use crate::model::*;
use crate::span::{FileId, Location, Span};
use crate::syntax::ast;
use crate::workspace::Workspace;

/// The checked program and every diagnostic of the workspace (syntax ones included), sorted
/// by file and position.
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    pub program: Program,
    pub diagnostics: Vec<Diagnostic>,
}

impl Analysis {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Checks a whole workspace.
pub fn check(workspace: &Workspace) -> Analysis {
    let mut checker = Checker {
        workspace,
        visible: workspace.visibility(),
        program: Program::default(),
        diagnostics: workspace.diagnostics.clone(),
        declared: Default::default(),
        broken: Default::default(),
        flow_refs: HashMap::new(),
        process_spans: Vec::new(),
    };
    checker.declare_all();
    checker.lower_all();
    checker.cross_check();
    let mut diagnostics = checker.diagnostics;
    diagnostics.sort_by_key(|d| (d.location.file, d.location.span.start));
    Analysis { program: checker.program, diagnostics }
}

/// The namespaces of top-level names. Items and processes share one: both can be run as a
/// flow and are named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Namespace {
    Department,
    Schema,
    Flow,
}

impl Namespace {
    fn of(kind: ast::DeclKind) -> Option<Namespace> {
        match kind {
            ast::DeclKind::Department => Some(Namespace::Department),
            ast::DeclKind::Schema => Some(Namespace::Schema),
            ast::DeclKind::Item | ast::DeclKind::Process => Some(Namespace::Flow),
            ast::DeclKind::Import => None,
        }
    }

    fn what(self) -> &'static str {
        match self {
            Namespace::Department => "department",
            Namespace::Schema => "schema",
            Namespace::Flow => "item or process",
        }
    }
}

/// Spans of a process that the cross-checks point at.
#[derive(Debug, Clone, Default)]
struct ProcessSpans {
    sla: Option<Location>,
    visits: Option<Location>,
}

struct Checker<'a> {
    workspace: &'a Workspace,
    visible: Vec<Vec<bool>>,
    program: Program,
    diagnostics: Vec<Diagnostic>,
    /// Where each top-level name is first declared, and its declaration keyword.
    /// Indexed by `Namespace as usize`, looked up by `&str` without allocating.
    declared: [HashMap<String, (Location, ast::DeclKind)>; 3],
    /// Names of declarations that did not parse.
    broken: [HashSet<String>; 3],
    /// Where each process names each item, by process index.
    flow_refs: HashMap<(usize, String), Location>,
    process_spans: Vec<ProcessSpans>,
}

impl<'a> Checker<'a> {
    fn error(&mut self, code: Code, at: Location, message: impl Into<String>) -> Pending<'_> {
        self.diagnostics.push(Diagnostic::new(code, at.file, at.span, message));
        Pending(self.diagnostics.last_mut().expect("just pushed"))
    }

    // ------------------------------------------------------------------ pass 1: declare

    fn declare_all(&mut self) {
        let workspace = self.workspace;
        for file in workspace.dependency_order().into_iter().filter_map(|id| workspace.file(id)) {
            for decl in &file.tree.decls {
                let (kind, name) = match decl {
                    ast::Decl::Import(_) => continue,
                    ast::Decl::Department(d) => (ast::DeclKind::Department, &d.name),
                    ast::Decl::Schema(d) => (ast::DeclKind::Schema, &d.name),
                    ast::Decl::Item(d) => (ast::DeclKind::Item, &d.name),
                    ast::Decl::Process(d) => (ast::DeclKind::Process, &d.name),
                };
                let Some(namespace) = Namespace::of(kind) else { continue };
                let at = Location { file: file.id, span: name.span };
                match self.declared[namespace as usize].get(name.name.as_str()) {
                    Some(&(first, first_kind)) => {
                        let first_path = self.path(first.file);
                        self.diagnostics.push(
                            Diagnostic::new(
                                Code::DuplicateName,
                                at.file,
                                at.span,
                                format!("the {} `{}` is declared twice", kind.keyword(), name.name),
                            )
                            .label("declared again here")
                            .secondary(
                                first.file,
                                first.span,
                                format!("first declared here as {}", first_kind.keyword()),
                            )
                            .help(format!("rename one of them (the first is in `{first_path}`)")),
                        );
                    }
                    None => {
                        self.declared[namespace as usize].insert(name.name.clone(), (at, kind));
                    }
                }
            }
            for broken in &file.tree.broken {
                if let (Some(namespace), Some(name)) = (Namespace::of(broken.keyword), &broken.name) {
                    self.broken[namespace as usize].insert(name.name.clone());
                }
            }
        }
    }

    fn path(&self, file: FileId) -> String {
        self.workspace.file(file).map_or_else(String::new, |f| f.path.clone())
    }

    /// Resolves a top-level name used in `from`; reports it when unknown or not imported.
    /// Returns whether the name may be used.
    fn resolve(&mut self, namespace: Namespace, name: &ast::Ident, from: FileId, expected: &str) -> bool {
        let at = Location { file: from, span: name.span };
        match self.declared[namespace as usize].get(name.name.as_str()).copied() {
            Some((declared_at, kind)) => {
                let kind_ok = match expected {
                    "item" => kind == ast::DeclKind::Item,
                    "process" => kind == ast::DeclKind::Process,
                    _ => true,
                };
                if !kind_ok {
                    self.error(
                        Code::UnknownName,
                        at,
                        format!("`{}` is a {}, not an {expected}", name.name, kind.keyword()),
                    )
                    .label(format!("expected an {expected}"))
                    .secondary(declared_at.file, declared_at.span, "declared here");
                    return false;
                }
                let visible = self
                    .visible
                    .get(from.0 as usize)
                    .and_then(|row| row.get(declared_at.file.0 as usize))
                    .copied()
                    .unwrap_or(true);
                if !visible {
                    let path = self.path(declared_at.file);
                    let self_import_fix = self.import_fix(from, &path);
                    self.error(
                        Code::NotImported,
                        at,
                        format!(
                            "the {} `{}` is declared in a file this file does not import",
                            kind.keyword(),
                            name.name
                        ),
                    )
                    .label("not imported")
                    .secondary(declared_at.file, declared_at.span, "declared here")
                    .help(format!("import the file that declares it: `{path}`"))
                    .fix(self_import_fix);
                }
                true
            }
            None if self.broken[namespace as usize].contains(name.name.as_str()) => false,
            None => {
                let suggestion = self.similar(namespace, &name.name);
                let help = match &suggestion {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("declare it, or import the file that declares the {expected}"),
                };
                let fix = match suggestion {
                    Some(s) => Some(Fix::replace(format!("replace with `{s}`"), from, name.span, s)),
                    None => self.declaration_stub(from, &name.name, expected),
                };
                let d = self
                    .error(Code::UnknownName, at, format!("unknown {expected} `{}`", name.name))
                    .label(format!("no {} of this name", namespace.what()))
                    .help(help);
                if let Some(fix) = fix {
                    d.fix(fix);
                }
                false
            }
        }
    }

    /// Quick fixes for a value outside a closed set: the closest value when one is close, else
    /// each value when there are few.
    fn choice_fixes(file: FileId, span: Span, found: &str, values: &[&str]) -> Vec<Fix> {
        let close = values
            .iter()
            .map(|v| (edit_distance(found, v), *v))
            .filter(|(d, v)| *d > 0 && *d <= 2.max(v.chars().count() / 3))
            .min()
            .map(|(_, v)| v);
        let chosen: Vec<&str> = match close {
            Some(v) => vec![v],
            None if values.len() <= 3 => values.to_vec(),
            None => Vec::new(),
        };
        chosen.into_iter().map(|v| Fix::replace(format!("replace with `{v}`"), file, span, v)).collect()
    }

    /// A quick fix removing a field given twice: its whole lines when it has them alone.
    fn removal_fix(&self, file: FileId, span: Span) -> Option<Fix> {
        let text = &self.workspace.file(file)?.text;
        let (mut start, mut end) = (span.start as usize, span.end as usize);
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[end..].find('\n').map_or(text.len(), |i| end + i + 1);
        if text[line_start..start].trim().is_empty() && text[end..line_end].trim().is_empty() {
            (start, end) = (line_start, line_end);
        }
        Some(Fix::replace("remove this one", file, Span::new(start, end), ""))
    }

    /// A quick fix adding `promised_limit` on the line after the item's `handling` (or
    /// `legal_limit`), as long as the legal limit, which it may not exceed.
    fn promised_limit_fix(&self, file: FileId, item: &ast::Item, legal: Option<u32>) -> Option<Fix> {
        let text = &self.workspace.file(file)?.text;
        let anchor = item
            .fields
            .iter()
            .rev()
            .find(|f| matches!(f.kind, ast::ItemFieldKind::LegalLimit(_) | ast::ItemFieldKind::Handling(_)))?;
        let line_start = text[..anchor.span.start as usize].rfind('\n').map_or(0, |i| i + 1);
        let indent: String = text[line_start..].chars().take_while(|c| *c == ' ' || *c == '\t').collect();
        let days = legal.unwrap_or(1);
        let end = anchor.span.end as usize;
        let limit = count(days, "workday", "workdays");
        Some(Fix::replace(
            format!("add `promised_limit {limit}`"),
            file,
            Span::new(end, end),
            format!("\n{indent}promised_limit {limit}"),
        ))
    }

    /// A quick fix importing `target` into `file`, after its last import (or at the top).
    fn import_fix(&self, file: FileId, target: &str) -> Fix {
        let importer = self.workspace.file(file);
        let at = importer
            .and_then(|f| {
                f.tree.decls.iter().rev().find_map(|d| match d {
                    ast::Decl::Import(import) => Some(import.span.end),
                    _ => None,
                })
            })
            .map_or(0, |end| end as usize);
        let path = crate::workspace::relative(importer.map_or("", |f| f.path.as_str()), target);
        let text = if at == 0 { format!("import \"{path}\"\n") } else { format!("\nimport \"{path}\"") };
        Fix::replace(format!("import `{path}`"), file, Span::new(at, at), text)
    }

    /// A quick fix declaring a missing department or item at the end of the file that names
    /// it: the least the checker accepts, for the author to fill in.
    fn declaration_stub(&self, file: FileId, name: &str, expected: &str) -> Option<Fix> {
        let text = &self.workspace.file(file)?.text;
        let stub = match expected {
            "department" => format!("department {name} \"{name}\"\n"),
            "item" => {
                // Some department the author has declared, to be corrected: the stub must check.
                let department = self.declared[Namespace::Department as usize].keys().min().map_or("todo", |d| d);
                format!(
                    "item {name} \"{name}\" {{\n  department     {department}\n  handling       promised\n  promised_limit 1 workday\n}}\n"
                )
            }
            _ => return None,
        };
        let separator = if text.is_empty() || text.ends_with("\n\n") {
            ""
        } else if text.ends_with('\n') {
            "\n"
        } else {
            "\n\n"
        };
        let end = Span::new(text.len(), text.len());
        Some(Fix::replace(format!("declare {expected} `{name}`"), file, end, format!("{separator}{stub}")))
    }

    /// A declared name close to `name`, for "did you mean".
    fn similar(&self, namespace: Namespace, name: &str) -> Option<String> {
        self.declared[namespace as usize]
            .keys()
            .map(|candidate| (edit_distance(name, candidate), candidate))
            .filter(|(d, candidate)| *d <= 2.max(candidate.chars().count() / 4) && *d > 0)
            .min()
            .map(|(_, c)| c.clone())
    }

    // ------------------------------------------------------------------ pass 2: lower

    fn lower_all(&mut self) {
        let workspace = self.workspace;
        let order: Vec<&crate::workspace::SourceFile> =
            workspace.dependency_order().into_iter().filter_map(|id| workspace.file(id)).collect();
        for &file in &order {
            for decl in &file.tree.decls {
                match decl {
                    ast::Decl::Import(_) => {}
                    ast::Decl::Department(d) => {
                        let department = self.lower_department(file.id, d);
                        if self.is_first_declaration(Namespace::Department, file.id, &d.name) {
                            let index = self.program.departments.len();
                            self.program.department_index.insert(department.name.clone(), index);
                            self.program.departments.push(department);
                        }
                    }
                    ast::Decl::Schema(d) => {
                        let schema = self.lower_schema(file.id, d);
                        if self.is_first_declaration(Namespace::Schema, file.id, &d.name) {
                            let index = self.program.schemas.len();
                            self.program.schema_index.insert(schema.name.clone(), index);
                            self.program.schemas.push(schema);
                        }
                    }
                    ast::Decl::Item(_) | ast::Decl::Process(_) => {}
                }
            }
        }
        // Items and processes read departments and schemas, so they come second; a variant
        // comes after its base, wherever that is declared.
        let mut pending: Vec<(FileId, &ast::Decl)> = order
            .iter()
            .flat_map(|file| file.tree.decls.iter().map(move |decl| (file.id, decl)))
            .filter(|(_, decl)| matches!(decl, ast::Decl::Item(_) | ast::Decl::Process(_)))
            .collect();
        while !pending.is_empty() {
            let before = pending.len();
            pending.retain(|&(file, decl)| {
                if self.waits_for_base(decl) {
                    return true;
                }
                self.lower_flow_decl(file, decl);
                false
            });
            if pending.len() == before {
                // Every variant left waits for another: they extend themselves in a circle.
                for &(file, decl) in &pending {
                    let (name, base) = match decl {
                        ast::Decl::Item(d) => (&d.name, &d.base),
                        ast::Decl::Process(d) => (&d.name, &d.base),
                        _ => continue,
                    };
                    if let Some(base) = base {
                        self.error(
                            Code::VariantCycle,
                            Location { file, span: base.span },
                            format!("`{}` extends `{}`, which extends it in turn", name.name, base.name),
                        )
                        .label("extends itself through this")
                        .help("a variant starts from a declaration that is not itself a variant of it");
                    }
                }
                for (file, decl) in std::mem::take(&mut pending) {
                    self.lower_flow_decl(file, decl);
                }
            }
        }
    }

    /// A variant whose base is declared but not lowered yet.
    fn waits_for_base(&self, decl: &ast::Decl) -> bool {
        let (base, lowered, kind) = match decl {
            ast::Decl::Item(d) => {
                (&d.base, d.base.as_ref().is_some_and(|b| self.program.item(&b.name).is_some()), ast::DeclKind::Item)
            }
            ast::Decl::Process(d) => (
                &d.base,
                d.base.as_ref().is_some_and(|b| self.program.process(&b.name).is_some()),
                ast::DeclKind::Process,
            ),
            _ => return false,
        };
        let Some(base) = base else { return false };
        !lowered
            && self.declared[Namespace::Flow as usize].get(base.name.as_str()).is_some_and(|(_, k)| *k == kind)
            && !self.broken[Namespace::Flow as usize].contains(base.name.as_str())
    }

    fn lower_flow_decl(&mut self, file: FileId, decl: &ast::Decl) {
        match decl {
            ast::Decl::Item(d) => {
                let keep = self.is_first_declaration(Namespace::Flow, file, &d.name);
                let item = self.lower_item(file, d);
                if keep {
                    let index = self.program.items.len();
                    self.program.item_index.insert(item.name.clone(), index);
                    self.program.items.push(item);
                }
            }
            ast::Decl::Process(d) => {
                // A second declaration of the name is still checked, then dropped.
                let keep = self.is_first_declaration(Namespace::Flow, file, &d.name);
                let index = if keep { self.program.processes.len() } else { usize::MAX };
                let (process, spans) = self.lower_process(file, d, index);
                if keep {
                    self.program.process_index.insert(process.name.clone(), index);
                    self.program.processes.push(process);
                    self.process_spans.push(spans);
                } else {
                    self.flow_refs.retain(|(p, _), _| *p != usize::MAX);
                }
            }
            _ => {}
        }
    }

    /// A field of the published guide, into `guide`. A variant's first `faq` replaces its
    /// base's questions; the others add to them.
    fn guide_field(&mut self, file: FileId, guide: &mut GuideInfo, field: &ast::GuideField, faqs_given: &mut bool) {
        match field {
            ast::GuideField::Serves(served) => {
                guide.serves.clear();
                for name in served {
                    match Served::ALL.iter().find(|(k, ..)| *k == name.name) {
                        Some((_, s, _)) if !guide.serves.contains(s) => guide.serves.push(*s),
                        Some(_) => {}
                        None => {
                            let all: Vec<&str> = Served::ALL.iter().map(|(k, ..)| *k).collect();
                            let fixes = Self::choice_fixes(file, name.span, &name.name, &all);
                            let mut d = self
                                .error(
                                    Code::InvalidValue,
                                    Location { file, span: name.span },
                                    format!("unknown kind of applicant `{}`", name.name),
                                )
                                .label("not a kind of applicant (服务对象)")
                                .help(format!("use {}", all.join(" or ")));
                            for fix in fixes {
                                d = d.fix(fix);
                            }
                        }
                    }
                }
            }
            ast::GuideField::Where(text) => guide.place = Some(text.value.clone()),
            ast::GuideField::Hours(text) => guide.hours = Some(text.value.clone()),
            ast::GuideField::Contact(text) => guide.contact = Some(text.value.clone()),
            ast::GuideField::Complaint(text) => guide.complaint = Some(text.value.clone()),
            ast::GuideField::Url(text) => guide.url = Some(text.value.clone()),
            ast::GuideField::Faq(question, answer) => {
                if !*faqs_given {
                    guide.faqs.clear();
                    *faqs_given = true;
                }
                guide.faqs.push((question.value.clone(), answer.value.clone()));
            }
        }
    }

    /// Records a field of a declaration; reports it and returns false when it was given before.
    fn first_field(
        &mut self,
        seen: &mut HashMap<&'static str, Span>,
        file: FileId,
        keyword: &'static str,
        (at, whole): (Span, Span),
        owner: &str,
        name: &str,
    ) -> bool {
        if let Some(&first) = seen.get(keyword) {
            let fix = self.removal_fix(file, whole);
            let d = self
                .error(
                    Code::DuplicateField,
                    Location { file, span: at },
                    format!("`{keyword}` is given twice in {owner} `{name}`"),
                )
                .label("given again here")
                .secondary(file, first, "first given here")
                .help("keep one of them");
            if let Some(fix) = fix {
                d.fix(fix);
            }
            return false;
        }
        seen.insert(keyword, at);
        true
    }

    /// Whether this is the declaration that owns the name (later ones are duplicates).
    fn is_first_declaration(&self, namespace: Namespace, file: FileId, name: &ast::Ident) -> bool {
        self.declared[namespace as usize]
            .get(name.name.as_str())
            .is_some_and(|(at, _)| at.file == file && at.span == name.span)
    }

    fn lower_department(&mut self, file: FileId, d: &ast::Department) -> Department {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        let mut datasets = Vec::new();
        for set in &d.datasets {
            if let Some(&first) = seen.get(set.name.name.as_str()) {
                self.error(
                    Code::DuplicateName,
                    Location { file, span: set.name.span },
                    format!("the data set `{}` is declared twice", set.name.name),
                )
                .label("declared again here")
                .secondary(file, first, "first declared here");
                continue;
            }
            seen.insert(&set.name.name, set.name.span);
            datasets.push((set.name.name.clone(), set.title.value.clone()));
        }
        Department {
            name: d.name.name.clone(),
            title: d.title.value.clone(),
            datasets,
            location: Location { file, span: d.name.span },
        }
    }

    fn lower_schema(&mut self, file: FileId, d: &ast::Schema) -> Schema {
        Schema {
            name: d.name.name.clone(),
            fields: self.lower_fields(file, &d.fields),
            location: Location { file, span: d.name.span },
        }
    }

    fn lower_fields(&mut self, file: FileId, fields: &[ast::Field]) -> Vec<SchemaField> {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        let mut out = Vec::new();
        for field in fields {
            if let Some(&first) = seen.get(field.name.name.as_str()) {
                self.error(
                    Code::DuplicateName,
                    Location { file, span: field.name.span },
                    format!("the field `{}` is declared twice", field.name.name),
                )
                .label("declared again here")
                .secondary(file, first, "first declared here");
                continue;
            }
            seen.insert(&field.name.name, field.name.span);
            let ty = self.lower_type(file, &field.ty);
            let pii = field.pii.as_ref().and_then(|p| match p.name.as_str() {
                "name" => Some(Pii::Name),
                "id" => Some(Pii::Id),
                "phone" => Some(Pii::Phone),
                other => {
                    let fixes = Self::choice_fixes(file, p.span, other, &["name", "id", "phone"]);
                    let mut d = self
                        .error(
                            Code::InvalidValue,
                            Location { file, span: p.span },
                            format!("unknown kind of personal data `{other}`"),
                        )
                        .label("expected `name`, `id` or `phone`")
                        .help("write `pii(name)`, `pii(id)` or `pii(phone)`: each is masked in its own way");
                    for fix in fixes {
                        d = d.fix(fix);
                    }
                    None
                }
            });
            out.push(SchemaField {
                name: field.name.name.clone(),
                ty,
                pii,
                location: Location { file, span: field.name.span },
            });
        }
        out
    }

    fn lower_type(&mut self, file: FileId, ty: &ast::TypeExpr) -> FieldType {
        match ty {
            ast::TypeExpr::Primitive { name, .. } => match name.as_str() {
                "string" => FieldType::String,
                "int" => FieldType::Int,
                "double" => FieldType::Double,
                "bool" => FieldType::Bool,
                _ => FieldType::Date,
            },
            ast::TypeExpr::List { element, .. } => FieldType::List(Box::new(self.lower_type(file, element))),
            ast::TypeExpr::Record { fields, .. } => FieldType::Record(self.lower_fields(file, fields)),
        }
    }

    /// Parses a rule and resolves the names it reads against the schemas and the case context.
    fn lower_rule(&mut self, file: FileId, text: &ast::CelText, message: Option<&ast::Text>) -> Rule {
        let location = Location { file, span: text.span };
        match cel::parse_rule(&text.source) {
            Ok(parsed) => {
                for reference in &parsed.references {
                    self.check_reference(file, text.span.start as usize, reference);
                }
                self.check_types(file, text.span.start as usize, &parsed.expr);
            }
            Err(errors) => {
                for e in errors {
                    let at = text.span.start as usize + e.offset.min(text.source.len());
                    let end = (at + 1).min(text.span.end as usize).max(at);
                    self.error(
                        Code::CelSyntax,
                        Location { file, span: Span::new(at, end) },
                        format!("invalid rule: {}", e.message),
                    )
                    .label(e.message.clone())
                    .help("rules are CEL expressions, e.g. `applicant.age >= 18 && applicant.credit_ok`");
                }
            }
        }
        Rule { source: text.source.trim().to_string(), message: message.map(|m| m.value.clone()), location }
    }

    fn check_reference(&mut self, file: FileId, rule_start: usize, reference: &cel::Reference) {
        let Some((root, root_range)) = reference.segments.first() else { return };
        let span_of = |range: &std::ops::Range<usize>| Span::new(rule_start + range.start, rule_start + range.end);
        if cel::types::CONTEXT.iter().any(|(name, ..)| name == root) {
            return;
        }
        if !self.program.schema_index.contains_key(root.as_str()) {
            if self.broken[Namespace::Schema as usize].contains(root.as_str()) {
                return;
            }
            let known: Vec<String> = self.program.schemas.iter().map(|s| format!("`{}`", s.name)).collect();
            let mut names = known.join(", ");
            if !names.is_empty() {
                names.push_str(", ");
            }
            let context: Vec<String> = cel::types::CONTEXT.iter().map(|(n, ..)| format!("`{n}`")).collect();
            names.push_str(&context.join(", "));
            self.error(
                Code::UnknownName,
                Location { file, span: span_of(root_range) },
                format!("unknown name `{root}` in rule"),
            )
            .label("not a schema or a case value")
            .help(format!("rules can read {names}"));
            return;
        }
        let declared = self.declared[Namespace::Schema as usize].get(root.as_str()).map(|(at, _)| at.file);
        if let Some(declared) = declared {
            let visible =
                self.visible.get(file.0 as usize).and_then(|r| r.get(declared.0 as usize)).copied().unwrap_or(true);
            if !visible {
                let path = self.path(declared);
                let import_fix = self.import_fix(file, &path);
                self.error(
                    Code::NotImported,
                    Location { file, span: span_of(root_range) },
                    format!("the schema `{root}` is declared in a file this file does not import"),
                )
                .label("not imported")
                .help(format!("import the file that declares it: `{path}`"))
                .fix(import_fix);
            }
        }
        // Its fields are checked with the types (`check_types`).
    }

    /// Type-checks a rule that must be a condition.
    fn check_types(&mut self, file: FileId, rule_start: usize, expr: &cel::syntax::Expr) {
        use cel::types::{check_rule, Scope, TypeErrorKind};
        let scope =
            Scope { schemas: self.program.schemas.iter().map(|s| (s.name.as_str(), s.fields.as_slice())).collect() };
        for error in check_rule(expr, &scope) {
            let code = match error.kind {
                TypeErrorKind::UnknownField => Code::UnknownName,
                TypeErrorKind::UnknownFunction => Code::UnknownFunction,
                TypeErrorKind::ArgumentCount => Code::ArgumentCount,
                TypeErrorKind::Mismatch => Code::TypeMismatch,
                TypeErrorKind::NotBoolean => Code::NotBoolean,
            };
            let span = Span::new(rule_start + error.span.start, rule_start + error.span.end);
            let mut d = self.error(code, Location { file, span }, error.message).label(error.label);
            if let Some((range, text)) = error.fix {
                let at = Span::new(rule_start + range.start, rule_start + range.end);
                d = d.fix(Fix::replace(format!("replace with `{text}`"), file, at, text));
            }
            if let Some(help) = error.help {
                d.help(help);
            }
        }
    }

    fn lower_item(&mut self, file: FileId, d: &ast::Item) -> Item {
        let at = |span: Span| Location { file, span };
        let base = match &d.base {
            Some(b) if self.resolve(Namespace::Flow, b, file, "item") => self.program.item(&b.name).cloned(),
            _ => None,
        };
        if let Some(base) = base {
            return self.lower_item_fields(file, d, base, true);
        }
        // A variant whose base is unknown or part of a cycle (both reported) is checked for
        // what it says, without reporting the fields it expected to inherit.
        let item = Item {
            guide: GuideInfo::default(),
            name: d.name.name.clone(),
            title: d.title.value.clone(),
            extends: None,
            code: None,
            department: String::new(),
            item_type: ItemType::Other,
            handling: Handling::Promised,
            legal_limit: None,
            promised_limit: None,
            visits: 0,
            fee: None,
            basis: None,
            online: false,
            supplement_pauses_clock: true,
            eligibility: None,
            materials: Vec::new(),
            steps: Vec::new(),
            licence: None,
            location: at(d.name.span),
        };
        self.lower_item_fields(file, d, item, d.base.is_some())
    }

    /// Lowers an item's fields over `item`: the defaults, or for a variant its base (whose
    /// required fields are then given, whose materials are kept unless named again, and
    /// whose steps are kept unless the variant gives its own).
    fn lower_item_fields(&mut self, file: FileId, d: &ast::Item, mut item: Item, variant: bool) -> Item {
        let at = |span: Span| Location { file, span };
        let mut seen: HashMap<&'static str, Span> = HashMap::new();
        let base_department = item.department.clone();
        if variant {
            item.extends = d.base.as_ref().map(|b| b.name.clone());
            item.name = d.name.name.clone();
            item.title = d.title.value.clone();
            item.location = at(d.name.span);
        }
        let mut department_seen = variant;
        let mut handling_seen = variant;
        let mut legal_span = None;
        let mut promised_span = None;
        let mut steps_field = None;
        let mut materials_field = None;
        let mut faqs_given = false;
        for field in &d.fields {
            let repeatable = matches!(field.kind, ast::ItemFieldKind::Guide(ast::GuideField::Faq(..)));
            if !repeatable
                && !self.first_field(
                    &mut seen,
                    file,
                    field.kind.keyword(),
                    (field.keyword, field.span),
                    "item",
                    &d.name.name,
                )
            {
                continue;
            }
            match &field.kind {
                ast::ItemFieldKind::Code(code) => {
                    if !is_item_code(&code.value) {
                        self.error(
                            Code::ItemCodeFormat,
                            at(code.span),
                            format!("`{}` is not a GB/T 39554.1 item code", code.value),
                        )
                        .label("expected 12 or 31 digits and capital letters")
                        .help("a basic code (基本编码) has 12 characters, an implementation code (实施编码) 31");
                    }
                    item.code = Some(code.value.clone());
                }
                ast::ItemFieldKind::Department(dept) => {
                    department_seen = true;
                    self.resolve(Namespace::Department, dept, file, "department");
                    item.department = dept.name.clone();
                }
                ast::ItemFieldKind::Type(t) => match ItemType::from_keyword(&t.name) {
                    Some(ty) => item.item_type = ty,
                    None => {
                        let all: Vec<&str> = ItemType::ALL.iter().map(|(k, ..)| *k).collect();
                        let fixes = Self::choice_fixes(file, t.span, &t.name, &all);
                        let mut d = self
                            .error(Code::InvalidValue, at(t.span), format!("unknown item type `{}`", t.name))
                            .label("not a GB/T 39046 item type")
                            .help(format!("use one of {}", all.join(", ")));
                        for fix in fixes {
                            d = d.fix(fix);
                        }
                    }
                },
                ast::ItemFieldKind::Handling(h) => {
                    handling_seen = true;
                    match h.name.as_str() {
                        "immediate" => item.handling = Handling::Immediate,
                        "promised" => item.handling = Handling::Promised,
                        other => {
                            let fixes = Self::choice_fixes(file, h.span, other, &["immediate", "promised"]);
                            let mut d = self
                                .error(Code::InvalidValue, at(h.span), format!("unknown handling kind `{other}`"))
                                .label("expected `immediate` or `promised`")
                                .help("`immediate` (即办件) is done at the window; `promised` (承诺件) within the promised limit");
                            for fix in fixes {
                                d = d.fix(fix);
                            }
                        }
                    }
                }
                ast::ItemFieldKind::LegalLimit(n) => {
                    item.legal_limit = Some(n.value);
                    legal_span = Some(n.span);
                }
                ast::ItemFieldKind::PromisedLimit(n) => {
                    item.promised_limit = Some(n.value);
                    promised_span = Some(n.span);
                }
                ast::ItemFieldKind::Visits(n) => item.visits = n.value,
                ast::ItemFieldKind::Fee(fee) => {
                    item.fee = match fee {
                        ast::Fee::Free => None,
                        ast::Fee::Yuan(amount) => Some(amount.clone()),
                    }
                }
                ast::ItemFieldKind::Basis(b) => item.basis = Some(b.value.clone()),
                ast::ItemFieldKind::Online(on) => item.online = *on,
                ast::ItemFieldKind::Supplement(s) => match s.name.as_str() {
                    "pauses_clock" => item.supplement_pauses_clock = true,
                    "keeps_clock" => item.supplement_pauses_clock = false,
                    other => {
                        let fixes = Self::choice_fixes(file, s.span, other, &["pauses_clock", "keeps_clock"]);
                        let mut d = self
                            .error(Code::InvalidValue, at(s.span), format!("unknown supplement setting `{other}`"))
                            .label("expected `pauses_clock` or `keeps_clock`")
                            .help("say whether a request for supplementary materials (补正) pauses the clock");
                        for fix in fixes {
                            d = d.fix(fix);
                        }
                    }
                },
                ast::ItemFieldKind::Eligible(rule) => {
                    item.eligibility = Some(self.lower_rule(file, &rule.expr, rule.message.as_ref()));
                }
                ast::ItemFieldKind::Materials(materials) => materials_field = Some(materials),
                ast::ItemFieldKind::Steps(steps) => steps_field = Some((steps, field.span)),
                ast::ItemFieldKind::Produces { name, title } => {
                    item.licence = Some(Licence { name: name.name.clone(), title: title.value.clone() })
                }
                ast::ItemFieldKind::Guide(g) => self.guide_field(file, &mut item.guide, g, &mut faqs_given),
            }
        }
        let name_at = at(d.name.span);
        if !department_seen {
            self.error(Code::MissingField, name_at, format!("item `{}` has no `department`", d.name.name))
                .label("no department")
                .help("say which department implements it (实施主体), e.g. `department samr`");
        }
        if !handling_seen {
            self.error(Code::MissingField, name_at, format!("item `{}` has no `handling`", d.name.name))
                .label("no handling kind")
                .help("write `handling immediate` (即办件) or `handling promised` (承诺件)");
        }
        // A variant inherits its base's limit: it gives one when it makes the item promised.
        let handling_written = d.fields.iter().any(|f| matches!(f.kind, ast::ItemFieldKind::Handling(_)));
        if item.handling == Handling::Promised && handling_written && item.promised_limit.is_none() {
            let fix = self.promised_limit_fix(file, d, item.legal_limit);
            let diagnostic = self
                .error(Code::MissingField, name_at, format!("promised item `{}` has no `promised_limit`", d.name.name))
                .label("no promised limit")
                .help("a promised item (承诺件) must say its promised limit, e.g. `promised_limit 5 workdays`");
            if let Some(fix) = fix {
                diagnostic.fix(fix);
            }
        }
        if let (Some(legal), Some(promised), Some(promised_at)) =
            (item.legal_limit, item.promised_limit, promised_span.or(legal_span))
        {
            if promised > legal {
                let diagnostic = self
                    .error(
                        Code::PromisedOverLegal,
                        at(promised_at),
                        format!(
                            "the promised limit ({}) is longer than the legal limit ({})",
                            count(promised, "workday", "workdays"),
                            count(legal, "workday", "workdays")
                        ),
                    )
                    .label("longer than the legal limit")
                    .help("a promised limit (承诺时限) can only shorten the legal one (法定时限)");
                if let Some(legal_at) = legal_span {
                    diagnostic.secondary(file, legal_at, "the legal limit");
                }
            }
        }
        if let Some(materials) = materials_field {
            let lowered = self.lower_materials(file, materials);
            if variant {
                // A variant adds materials, and replaces those it names again.
                for material in lowered {
                    match item.materials.iter_mut().find(|m| m.name == material.name) {
                        Some(existing) => *existing = material,
                        None => item.materials.push(material),
                    }
                }
            } else {
                item.materials = lowered;
            }
        }
        item.steps = match steps_field {
            Some((steps, _)) => self.lower_steps(file, &item, steps),
            None if variant => {
                // The base's steps, moved to the variant's department where they were the base's.
                let mut steps = std::mem::take(&mut item.steps);
                for step in &mut steps {
                    if step.department == base_department {
                        step.department = item.department.clone();
                    }
                }
                steps
            }
            None => default_steps(&item),
        };
        item
    }

    fn lower_materials(&mut self, file: FileId, materials: &[ast::Material]) -> Vec<Material> {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        let mut out = Vec::new();
        for m in materials {
            if let Some(&first) = seen.get(m.name.name.as_str()) {
                self.error(
                    Code::DuplicateName,
                    Location { file, span: m.name.span },
                    format!("the material `{}` is listed twice", m.name.name),
                )
                .label("listed again here")
                .secondary(file, first, "first listed here");
                continue;
            }
            seen.insert(&m.name.name, m.name.span);
            let source = match &m.source {
                None | Some(ast::MaterialSource::Applicant { .. }) => MaterialSource::Applicant,
                Some(ast::MaterialSource::Shared { department, dataset, .. }) => {
                    if self.resolve(Namespace::Department, department, file, "department") {
                        let has = self
                            .program
                            .department(&department.name)
                            .map(|d| d.datasets.iter().any(|(n, _)| *n == dataset.name));
                        if has == Some(false) {
                            self.error(
                                Code::UnknownName,
                                Location { file, span: dataset.span },
                                format!("department `{}` shares no data set `{}`", department.name, dataset.name),
                            )
                            .label("unknown data set")
                            .help(format!(
                                "declare it: `department {} \"…\" {{ data {} \"…\" }}`",
                                department.name, dataset.name
                            ));
                        }
                    }
                    MaterialSource::Shared { department: department.name.clone(), dataset: dataset.name.clone() }
                }
                // Checked once every item is known (pass 3).
                Some(ast::MaterialSource::Licence { item, licence, .. }) => {
                    MaterialSource::Licence { item: item.name.clone(), licence: licence.name.clone() }
                }
            };
            let condition = m.condition.as_ref().map(|c| self.lower_rule(file, c, None));
            out.push(Material {
                name: m.name.name.clone(),
                title: m.title.value.clone(),
                source,
                condition,
                tolerated: m.tolerated,
                promise: m.promise,
                optional: m.optional,
                copies: m.copies.map_or(1, |c| c.value),
                form: match m.form.as_ref().map(|f| f.name.as_str()) {
                    Some("paper") => Form::Paper,
                    Some("copy") => Form::Copy,
                    _ => Form::Electronic,
                },
                location: Location { file, span: m.span },
                source_location: Location { file, span: m.source.as_ref().map_or(m.span, source_span) },
            });
        }
        out
    }

    /// Builds an item's step graph from its chains and step attributes and checks it: every
    /// step reachable from the first, every step with a way to the end, returns only to
    /// earlier steps.
    fn lower_steps(&mut self, file: FileId, item: &Item, stmts: &[ast::StepStmt]) -> Vec<Step> {
        let at = |span: Span| Location { file, span };
        let mut steps: Vec<Step> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut ensure = |steps: &mut Vec<Step>, name: &ast::Ident| -> usize {
            *index.entry(name.name.clone()).or_insert_with(|| {
                steps.push(Step {
                    name: name.name.clone(),
                    label: None,
                    department: item.department.clone(),
                    cosign: Vec::new(),
                    next: Vec::new(),
                    back: Vec::new(),
                    limit: None,
                    location: Location { file, span: name.span },
                });
                steps.len() - 1
            })
        };
        let mut explicit_end = false;
        let mut first_chain: Option<Option<usize>> = None;
        let mut pending_back: Vec<(usize, ast::Ident)> = Vec::new();
        for stmt in stmts {
            match stmt {
                ast::StepStmt::Chain { steps: chain, .. } => {
                    let mut previous: Option<usize> = None;
                    for step in chain {
                        match step {
                            ast::StepRef::Step(name) => {
                                let i = ensure(&mut steps, name);
                                if let Some(p) = previous {
                                    let target = StepTarget::Step(name.name.clone());
                                    if !steps[p].next.contains(&target) {
                                        steps[p].next.push(target);
                                    }
                                }
                                previous = Some(i);
                            }
                            ast::StepRef::End(span) => {
                                explicit_end = true;
                                match previous {
                                    Some(p) if !steps[p].next.contains(&StepTarget::End) => {
                                        steps[p].next.push(StepTarget::End)
                                    }
                                    Some(_) => {}
                                    None => {
                                        self.error(
                                            Code::InvalidValue,
                                            at(*span),
                                            "a chain of steps cannot start with `end`",
                                        )
                                        .label("nothing comes before")
                                        .help("write `step -> end`");
                                    }
                                }
                                // Nothing leads from `end` to what follows it in the chain.
                                previous = None;
                            }
                        }
                    }
                    if first_chain.is_none() {
                        first_chain = Some(previous);
                    }
                }
                ast::StepStmt::Attrs { step, attrs, .. } => {
                    let i = ensure(&mut steps, step);
                    for attr in attrs {
                        match attr {
                            ast::StepAttr::Label(label) => steps[i].label = Some(label.value.clone()),
                            ast::StepAttr::Back(targets) => pending_back.extend(targets.iter().map(|t| (i, t.clone()))),
                            ast::StepAttr::Cosign(departments) => {
                                for dept in departments {
                                    self.resolve(Namespace::Department, dept, file, "department");
                                    if !steps[i].cosign.contains(&dept.name) {
                                        steps[i].cosign.push(dept.name.clone());
                                    }
                                }
                            }
                            ast::StepAttr::By(dept) => {
                                self.resolve(Namespace::Department, dept, file, "department");
                                steps[i].department = dept.name.clone();
                            }
                            ast::StepAttr::Limit(limit) => {
                                let item_days = item.promised_limit.or(item.legal_limit);
                                if let Some(days) = item_days.filter(|days| limit.value > *days) {
                                    self.error(
                                        Code::InvalidValue,
                                        Location { file, span: limit.span },
                                        format!(
                                            "step `{}` may take {}, longer than its item's limit of {}",
                                            step.name,
                                            count(limit.value, "workday", "workdays"),
                                            count(days, "workday", "workdays")
                                        ),
                                    )
                                    .label("longer than the item's limit")
                                    .help("a step's limit (环节时限) is a part of its item's limit");
                                }
                                steps[i].limit = Some(limit.value);
                            }
                        }
                    }
                }
            }
        }
        if steps.is_empty() {
            return default_steps(item);
        }
        // Without any `end`, the last step of the first chain (or a lone step) finishes the item.
        if !explicit_end {
            let last = match first_chain {
                Some(last) => last,
                None if steps.len() == 1 => Some(0),
                None => None,
            };
            if let Some(last) = last {
                steps[last].next.push(StepTarget::End);
            }
        }
        let graph = StepGraph::new(&steps);
        for (from, target) in pending_back {
            match graph.index.get(target.name.as_str()) {
                None => {
                    self.error(
                        Code::UnknownName,
                        at(target.span),
                        format!("item `{}` has no step `{}`", item.name, target.name),
                    )
                    .label("unknown step")
                    .help(format!(
                        "the steps are {}",
                        steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
                    ));
                }
                Some(&to) if to == from || !graph.reaches(to, from) => {
                    self.error(
                        Code::BackNotEarlier,
                        at(target.span),
                        format!(
                            "step `{}` can return only to an earlier step, and `{}` is not one",
                            steps[from].name, target.name
                        ),
                    )
                    .label("not before this step")
                    .help("a return (退回) sends the case back to a step it has passed");
                }
                Some(_) => steps[from].back.push(target.name.clone()),
            }
        }
        self.check_step_graph(item, &steps, &graph);
        steps
    }

    fn check_step_graph(&mut self, item: &Item, steps: &[Step], graph: &StepGraph) {
        let reachable = graph.reachable_from(0);
        for (i, step) in steps.iter().enumerate() {
            if !reachable[i] {
                self.error(
                    Code::UnreachableState,
                    step.location,
                    format!("step `{}` of item `{}` can never be reached", step.name, item.name),
                )
                .label("no chain leads here")
                .help(format!(
                    "steps start at `{}`; add it to a chain such as `{} -> {}`",
                    steps[0].name, steps[0].name, step.name
                ));
            }
        }
        let reaches_end = graph.reaches_end();
        // The usual case: every step reachable and on a way to the end; nothing more to find.
        if reachable.iter().zip(&reaches_end).all(|(r, e)| !r || *e) {
            return;
        }
        let mut reported_cycles: HashSet<usize> = HashSet::new();
        for component in graph.cycles() {
            if !reachable[component[0]] || reaches_end[component[0]] {
                continue;
            }
            let leaves = component.iter().any(|&s| graph.next[s].iter().any(|n| !component.contains(n)));
            if leaves {
                continue;
            }
            reported_cycles.extend(component.iter().copied());
            let names: Vec<&str> = component.iter().map(|&s| steps[s].name.as_str()).collect();
            let first = &steps[component[0]];
            self.error(
                Code::CycleWithoutExit,
                first.location,
                format!("the steps {} of item `{}` form a cycle with no way to the end", names.join(" → "), item.name),
            )
            .label("the cycle starts here")
            .help("add a chain from one of these steps to a later step or to `end`");
        }
        for (i, step) in steps.iter().enumerate() {
            if reachable[i] && step.next.is_empty() && !reported_cycles.contains(&i) {
                self.error(
                    Code::NoWayOut,
                    step.location,
                    format!("step `{}` of item `{}` has no way out", step.name, item.name),
                )
                .label("nothing follows this step")
                .help(format!("continue it (`{} -> …`) or finish the item (`{} -> end`)", step.name, step.name));
            }
        }
    }

    fn lower_process(&mut self, file: FileId, d: &ast::Process, index: usize) -> (Process, ProcessSpans) {
        let at = |span: Span| Location { file, span };
        let mut seen: HashMap<&'static str, Span> = HashMap::new();
        let mut spans = ProcessSpans::default();
        let base = match &d.base {
            Some(b) if self.resolve(Namespace::Flow, b, file, "process") => self.program.process(&b.name).cloned(),
            _ => None,
        };
        let variant = base.is_some();
        if let (Some(base), Some(base_name)) = (&base, &d.base) {
            // What the variant inherits is checked again here (its items may differ), and
            // reported at its `extends`.
            let inherited = Some(at(base_name.span));
            spans.sla = base.sla.and(inherited);
            spans.visits = base.visits_at_most.and(inherited);
        }
        let mut process = base.unwrap_or(Process {
            name: String::new(),
            title: String::new(),
            extends: None,
            code: None,
            window: String::new(),
            sla: None,
            visits_at_most: None,
            eligibility: None,
            flow: Flow::Sequence(Vec::new()),
            warnings: Vec::new(),
            guide: GuideInfo::default(),
            location: at(d.name.span),
        });
        process.name = d.name.name.clone();
        process.title = d.title.value.clone();
        process.extends = d.base.as_ref().filter(|_| variant).map(|b| b.name.clone());
        process.location = at(d.name.span);
        let mut window_seen = variant;
        let mut flow_seen = variant;
        let mut replacements = Vec::new();
        let mut faqs_given = false;
        for field in &d.fields {
            if let ast::ProcessFieldKind::Replace { item, with } = &field.kind {
                replacements.push((field, item, with));
                continue;
            }
            if let ast::ProcessFieldKind::Guide(g @ ast::GuideField::Faq(..)) = &field.kind {
                self.guide_field(file, &mut process.guide, g, &mut faqs_given);
                continue;
            }
            if !self.first_field(
                &mut seen,
                file,
                field.kind.keyword(),
                (field.keyword, field.span),
                "process",
                &d.name.name,
            ) {
                continue;
            }
            match &field.kind {
                ast::ProcessFieldKind::Code(code) => process.code = Some(code.value.clone()),
                ast::ProcessFieldKind::Guide(g) => self.guide_field(file, &mut process.guide, g, &mut faqs_given),
                ast::ProcessFieldKind::Window(w) => {
                    window_seen = true;
                    self.resolve(Namespace::Department, w, file, "department");
                    process.window = w.name.clone();
                }
                ast::ProcessFieldKind::Sla(n) => {
                    process.sla = Some(n.value);
                    spans.sla = Some(at(n.span));
                }
                ast::ProcessFieldKind::Visits(n) => {
                    process.visits_at_most = Some(n.value);
                    spans.visits = Some(at(n.span));
                }
                ast::ProcessFieldKind::Eligible(rule) => {
                    process.eligibility = Some(self.lower_rule(file, &rule.expr, rule.message.as_ref()))
                }
                ast::ProcessFieldKind::Flow(sequence) => {
                    flow_seen = true;
                    let mut used = HashMap::new();
                    let (flow, _) = self.lower_sequence(file, index, sequence, false, &mut used);
                    process.flow = flow;
                }
                ast::ProcessFieldKind::Warn(rules) => {
                    process.warnings = self.lower_warnings(file, rules, process.sla.is_some())
                }
                ast::ProcessFieldKind::Replace { .. } => {}
            }
        }
        for (field, item, with) in replacements {
            self.replace_item(file, d, variant, &mut process, field, item, with);
        }
        if !window_seen {
            self.error(Code::MissingField, at(d.name.span), format!("process `{}` has no `window`", d.name.name))
                .label("no window")
                .help("name the department whose window accepts the application (一窗受理), e.g. `window samr`");
        }
        if !flow_seen {
            self.error(Code::MissingField, at(d.name.span), format!("process `{}` has no `flow`", d.name.name))
                .label("no flow")
                .help("list its items, e.g. `flow { a -> parallel { b, c } }`");
        }
        (process, spans)
    }

    /// `replace item with other` in a variant: `other` runs where the flow ran `item`.
    #[allow(clippy::too_many_arguments)]
    fn replace_item(
        &mut self,
        file: FileId,
        d: &ast::Process,
        variant: bool,
        process: &mut Process,
        field: &ast::ProcessField,
        item: &ast::Ident,
        with: &ast::Ident,
    ) {
        let at = Location { file, span: field.span };
        if !variant {
            if d.base.is_none() {
                self.error(Code::InvalidValue, at, "`replace` is for variants: this process extends none")
                    .label("nothing to replace in")
                    .help("write the item in the `flow`, or declare the process `extends` another");
            }
            return;
        }
        if !self.resolve(Namespace::Flow, with, file, "item") {
            return;
        }
        let items: Vec<String> = process.flow.items().iter().map(|i| i.to_string()).collect();
        if !items.contains(&item.name) {
            self.error(
                Code::UnknownName,
                Location { file, span: item.span },
                format!("`{}` is not in the flow of process `{}`", item.name, process.name),
            )
            .label("not in this flow")
            .help(format!("the flow runs {}", items.join(", ")));
            return;
        }
        if items.contains(&with.name) {
            self.error(
                Code::DuplicateName,
                Location { file, span: with.span },
                format!("`{}` is in the flow already", with.name),
            )
            .label("would run twice")
            .help("an item runs once in a process");
            return;
        }
        fn substitute(flow: &mut Flow, from: &str, to: &str) {
            match flow {
                Flow::Item(name) if name == from => *name = to.to_string(),
                Flow::Item(_) | Flow::End => {}
                Flow::Sequence(nodes) | Flow::Parallel(nodes) => nodes.iter_mut().for_each(|n| substitute(n, from, to)),
                Flow::Choice { branches, otherwise } => {
                    branches.iter_mut().for_each(|(_, branch)| substitute(branch, from, to));
                    if let Some(branch) = otherwise {
                        substitute(branch, from, to);
                    }
                }
            }
        }
        substitute(&mut process.flow, &item.name, &with.name);
    }

    fn lower_warnings(&mut self, file: FileId, rules: &[ast::WarnRule], has_sla: bool) -> Vec<Warning> {
        let mut out = Vec::new();
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for rule in rules {
            let at = Location { file, span: rule.level.span };
            let level = match rule.level.name.as_str() {
                "yellow" => WarningLevel::Yellow,
                "red" => WarningLevel::Red,
                other => {
                    let fixes = Self::choice_fixes(file, rule.level.span, other, &["yellow", "red"]);
                    let mut d = self
                        .error(Code::InvalidValue, at, format!("unknown warning level `{other}`"))
                        .label("expected `yellow` or `red`")
                        .help("电子监察 warnings are yellow (deadline near) or red (overdue)");
                    for fix in fixes {
                        d = d.fix(fix);
                    }
                    continue;
                }
            };
            if let Some(&first) = seen.get(rule.level.name.as_str()) {
                self.error(Code::DuplicateField, at, format!("the {} warning is given twice", rule.level.name))
                    .label("given again here")
                    .secondary(file, first, "first given here");
                continue;
            }
            seen.insert(&rule.level.name, rule.level.span);
            let warn_at = match rule.at {
                ast::WarnAt::PercentOfSla(n) => {
                    if n.value == 0 || n.value > 100 {
                        self.error(
                            Code::InvalidValue,
                            Location { file, span: n.span },
                            format!("{}% is not a share of the SLA", n.value),
                        )
                        .label("expected 1% to 100%")
                        .help("use `overdue` for a warning once the SLA has passed");
                    } else if !has_sla {
                        self.error(
                            Code::MissingField,
                            Location { file, span: n.span },
                            "a warning at a share of the SLA needs an `sla`",
                        )
                        .label("no SLA to take a share of")
                        .help("declare `sla N workdays` before `warn`");
                    }
                    WarningAt::PercentOfSla(n.value)
                }
                ast::WarnAt::Overdue => WarningAt::Overdue,
            };
            out.push(Warning { level, at: warn_at });
        }
        out
    }

    /// Lowers a sequence; returns the flow and whether every path through it ends the process.
    fn lower_sequence(
        &mut self,
        file: FileId,
        process: usize,
        sequence: &ast::Sequence,
        in_parallel: bool,
        used: &mut HashMap<String, Span>,
    ) -> (Flow, bool) {
        let mut nodes = Vec::new();
        let mut ended = false;
        let mut reported = false;
        for node in &sequence.nodes {
            if ended {
                if !reported {
                    self.error(
                        Code::UnreachableState,
                        Location { file, span: node.span() },
                        "this part of the flow is never reached",
                    )
                    .label("every path before it ends the process")
                    .help("remove it, or remove the `end` before it");
                    reported = true;
                }
                continue;
            }
            let (flow, node_ends) = self.lower_flow_node(file, process, node, in_parallel, used);
            ended = node_ends;
            nodes.push(flow);
        }
        let flow = if nodes.len() == 1 { nodes.pop().unwrap_or(Flow::End) } else { Flow::Sequence(nodes) };
        (flow, ended)
    }

    fn lower_flow_node(
        &mut self,
        file: FileId,
        process: usize,
        node: &ast::FlowNode,
        in_parallel: bool,
        used: &mut HashMap<String, Span>,
    ) -> (Flow, bool) {
        match node {
            ast::FlowNode::Item(name) => {
                if let Some(&first) = used.get(&name.name) {
                    self.error(
                        Code::DuplicateName,
                        Location { file, span: name.span },
                        format!("item `{}` appears twice in this flow", name.name),
                    )
                    .label("again here")
                    .secondary(file, first, "first here")
                    .help("a process runs each item once");
                } else {
                    used.insert(name.name.clone(), name.span);
                    self.resolve(Namespace::Flow, name, file, "item");
                    self.flow_refs.insert((process, name.name.clone()), Location { file, span: name.span });
                }
                (Flow::Item(name.name.clone()), false)
            }
            ast::FlowNode::End(span) => {
                if in_parallel {
                    self.error(Code::UnjoinedBranch, Location { file, span: *span }, "a parallel branch that ends the process is never joined")
                        .label("this branch never reaches the join")
                        .help("every branch of `parallel { … }` must finish so that the flow can go on; move `end` after the parallel block");
                }
                (Flow::End, true)
            }
            ast::FlowNode::Parallel { branches, .. } => {
                let mut flows = Vec::new();
                for branch in branches {
                    let (flow, _) = self.lower_sequence(file, process, branch, true, used);
                    flows.push(flow);
                }
                (Flow::Parallel(flows), false)
            }
            ast::FlowNode::Conditional { branches, otherwise, .. } => {
                let mut lowered = Vec::new();
                let mut all_end = true;
                for (guard, body) in branches {
                    let rule = self.lower_rule(file, guard, None);
                    let (flow, ends) = self.lower_sequence(file, process, body, in_parallel, used);
                    all_end &= ends;
                    lowered.push((rule, flow));
                }
                let otherwise = otherwise.as_ref().map(|body| {
                    let (flow, ends) = self.lower_sequence(file, process, body, in_parallel, used);
                    all_end &= ends;
                    Box::new(flow)
                });
                let ends = all_end && otherwise.is_some();
                (Flow::Choice { branches: lowered, otherwise }, ends)
            }
        }
    }

    // ------------------------------------------------------------------ pass 3: cross-checks

    fn cross_check(&mut self) {
        self.check_licence_sources();
        for index in 0..self.program.processes.len() {
            self.check_process(index);
        }
        self.check_unused_items();
        self.check_material_titles();
    }

    /// Items name the same material the same way: the reform figures merge materials by name,
    /// so one name must mean one document.
    fn check_material_titles(&mut self) {
        let mut first: HashMap<&str, (&str, &str, Location)> = HashMap::new();
        let mut mismatches = Vec::new();
        for item in &self.program.items {
            for material in &item.materials {
                match first.get(material.name.as_str()) {
                    Some(&(title, other_item, at)) if title != material.title => mismatches.push((
                        material.location,
                        at,
                        format!(
                            "material `{}` is \"{}\" here but \"{title}\" in item `{other_item}`",
                            material.name, material.title
                        ),
                    )),
                    Some(_) => {}
                    None => {
                        first.insert(&material.name, (&material.title, &item.name, material.location));
                    }
                }
            }
        }
        for (at, first_at, message) in mismatches {
            self.error(Code::MaterialMismatch, at, message)
                .label("same name, other title")
                .secondary(first_at.file, first_at.span, "first named here")
                .help("give the same document the same name and title everywhere, and different documents different names");
        }
    }

    /// Every `from licence item.licence` names an item that produces that licence.
    fn check_licence_sources(&mut self) {
        let mut problems = Vec::new();
        for item in &self.program.items {
            for material in &item.materials {
                let MaterialSource::Licence { item: producer, licence } = &material.source else { continue };
                match self.program.item(producer) {
                    None => {
                        if !self.broken[Namespace::Flow as usize].contains(producer.as_str()) {
                            problems.push((
                                Code::UnknownName,
                                material.source_location,
                                format!("unknown item `{producer}`"),
                                None,
                            ));
                        }
                    }
                    Some(p) if p.licence.as_ref().map(|l| &l.name) != Some(licence) => {
                        let help = match &p.licence {
                            Some(l) => format!("`{producer}` produces `{}`", l.name),
                            None => format!(
                                "`{producer}` produces no licence; add `produces licence {licence} \"…\"` to it"
                            ),
                        };
                        problems.push((
                            Code::LicenceNotProduced,
                            material.source_location,
                            format!("no item produces the licence `{producer}.{licence}`"),
                            Some(help),
                        ));
                    }
                    Some(_) => {}
                }
            }
        }
        for (code, at, message, help) in problems {
            let d = self.error(code, at, message).label("taken from a licence");
            if let Some(help) = help {
                d.help(help);
            }
        }
    }

    fn check_process(&mut self, index: usize) {
        let process = self.program.processes[index].clone();
        let spans = self.process_spans.get(index).cloned().unwrap_or_default();
        // Licences used by an item must be produced by an item guaranteed to finish before it.
        let before = analysis::guaranteed_before(&process.flow);
        let mut problems = Vec::new();
        for item_name in process.flow.items() {
            let Some(item) = self.program.item(item_name) else { continue };
            for material in &item.materials {
                let MaterialSource::Licence { item: producer, licence } = &material.source else { continue };
                let Some(producer_item) = self.program.item(producer) else { continue };
                if producer_item.licence.as_ref().map(|l| &l.name) != Some(licence) {
                    continue;
                }
                if before
                    .get(item_name)
                    .is_some_and(|set| set.iter().any(|done| self.program.is_or_extends(done, producer)))
                {
                    continue;
                }
                let why = if !process.flow.items().iter().any(|i| self.program.is_or_extends(i, producer)) {
                    format!("`{producer}` is not part of process `{}`", process.name)
                } else {
                    format!(
                        "in process `{}`, `{producer}` is not guaranteed to finish before `{item_name}`",
                        process.name
                    )
                };
                problems.push((
                    item_name.to_string(),
                    material.source_location,
                    producer.clone(),
                    licence.clone(),
                    why,
                ));
            }
        }
        for (item_name, at, producer, licence, why) in problems {
            let reference = self.flow_refs.get(&(index, item_name.clone())).copied();
            let d = self
                .error(
                    Code::LicenceNotProduced,
                    at,
                    format!("the licence `{producer}.{licence}` may not exist yet when `{item_name}` runs"),
                )
                .label("taken from a licence")
                .help(format!("{why}; run `{producer}` before `{item_name}` (not in a parallel branch beside it)"));
            if let Some(reference) = reference {
                d.secondary(reference.file, reference.span, format!("`{item_name}` runs here"));
            }
        }

        if let (Some(sla), Some(sla_at)) = (process.sla, spans.sla) {
            let path = analysis::critical_path(&self.program, &process.flow);
            if path.days > sla {
                let steps: Vec<String> = path.items.iter().map(|(name, days)| format!("{name} ({days})")).collect();
                self.error(
                    Code::SlaInfeasible,
                    sla_at,
                    format!(
                        "the SLA of {} cannot be met: the critical path takes {}",
                        count(sla, "workday", "workdays"),
                        count(path.days, "workday", "workdays")
                    ),
                )
                .label(format!("critical path: {} = {}", steps.join(" → "), count(path.days, "workday", "workdays")))
                .help("shorten the promised limits on this path, run its items in parallel, or raise the SLA");
            }
        }
        if let (Some(bound), Some(visits_at)) = (process.visits_at_most, spans.visits) {
            let trips = analysis::trips(&self.program, &process.flow);
            if trips.trips > bound {
                let visits: Vec<String> = trips.items.iter().map(|(name, n)| format!("{name} ({n})")).collect();
                self.error(
                    Code::TripsExceeded,
                    visits_at,
                    format!(
                        "the applicant may have to make {}, more than the {bound} allowed",
                        count(trips.trips, "trip", "trips")
                    ),
                )
                .label(format!("on-site visits: {} = {}", visits.join(" + "), trips.trips))
                .help("make the items' visits online (`visits 0`), or raise the bound");
            }
        }
    }

    /// An item declared in a file that declares processes but used by none of them.
    fn check_unused_items(&mut self) {
        let used: HashSet<&str> = self.program.processes.iter().flat_map(|p| p.flow.items()).collect();
        let files_with_processes: HashSet<FileId> = self.program.processes.iter().map(|p| p.location.file).collect();
        let unused: Vec<(Location, String)> = self
            .program
            .items
            .iter()
            .filter(|i| files_with_processes.contains(&i.location.file) && !used.contains(i.name.as_str()))
            .map(|i| (i.location, i.name.clone()))
            .collect();
        for (at, name) in unused {
            self.error(Code::UnusedItem, at, format!("item `{name}` is used by no process in this file"))
                .label("never used")
                .help("add it to a process's flow, or move it to an item library");
        }
    }
}

/// A diagnostic just reported, still being completed.
struct Pending<'d>(&'d mut Diagnostic);

impl Pending<'_> {
    fn label(self, label: impl Into<String>) -> Self {
        self.0.label = label.into();
        self
    }

    fn help(self, help: impl Into<String>) -> Self {
        self.0.help = Some(help.into());
        self
    }

    fn secondary(self, file: FileId, span: Span, message: impl Into<String>) -> Self {
        self.0.secondary.push(Label { location: Location { file, span }, message: message.into() });
        self
    }

    fn fix(self, fix: Fix) -> Self {
        self.0.fixes.push(fix);
        self
    }
}

fn source_span(source: &ast::MaterialSource) -> Span {
    match source {
        ast::MaterialSource::Applicant { span }
        | ast::MaterialSource::Shared { span, .. }
        | ast::MaterialSource::Licence { span, .. } => *span,
    }
}

/// Steps of an item that declares none: the usual 受理 → 审查 → 决定 → 送达, or 受理 → 办结
/// for an immediate item.
fn default_steps(item: &Item) -> Vec<Step> {
    let names: &[(&str, &str)] = match item.handling {
        Handling::Immediate => &[("accept", "受理"), ("decide", "办结")],
        Handling::Promised => &[("accept", "受理"), ("review", "审查"), ("decide", "决定"), ("deliver", "送达")],
    };
    names
        .iter()
        .enumerate()
        .map(|(i, (name, label))| Step {
            name: name.to_string(),
            label: Some(label.to_string()),
            department: item.department.clone(),
            cosign: Vec::new(),
            next: vec![names.get(i + 1).map_or(StepTarget::End, |(n, _)| StepTarget::Step(n.to_string()))],
            back: Vec::new(),
            limit: None,
            location: item.location,
        })
        .collect()
}

/// The forward edges between an item's steps, by index; `usize::MAX` stands for the end.
struct StepGraph {
    next: Vec<Vec<usize>>,
    index: HashMap<String, usize>,
}

const END: usize = usize::MAX;

impl StepGraph {
    fn new(steps: &[Step]) -> Self {
        let index: HashMap<String, usize> = steps.iter().enumerate().map(|(i, s)| (s.name.clone(), i)).collect();
        let next = steps
            .iter()
            .map(|s| {
                s.next
                    .iter()
                    .map(|t| match t {
                        StepTarget::End => END,
                        StepTarget::Step(n) => index.get(n).copied().unwrap_or(END),
                    })
                    .collect()
            })
            .collect();
        StepGraph { next, index }
    }

    fn reachable_from(&self, start: usize) -> Vec<bool> {
        let mut seen = vec![false; self.next.len()];
        let mut stack = vec![start];
        while let Some(s) = stack.pop() {
            if s == END || s >= seen.len() || std::mem::replace(&mut seen[s], true) {
                continue;
            }
            stack.extend(self.next[s].iter().copied());
        }
        seen
    }

    fn reaches(&self, from: usize, to: usize) -> bool {
        self.reachable_from(from).get(to).copied().unwrap_or(false)
    }

    fn reaches_end(&self) -> Vec<bool> {
        let n = self.next.len();
        let mut reaches = vec![false; n];
        let mut changed = true;
        while changed {
            changed = false;
            for s in 0..n {
                if !reaches[s] && self.next[s].iter().any(|&t| t == END || reaches[t]) {
                    reaches[s] = true;
                    changed = true;
                }
            }
        }
        reaches
    }

    /// Strongly connected components that contain a cycle, each in step order.
    fn cycles(&self) -> Vec<Vec<usize>> {
        let mut graph = petgraph::graph::DiGraph::<(), ()>::new();
        let nodes: Vec<_> = (0..self.next.len()).map(|_| graph.add_node(())).collect();
        for (s, targets) in self.next.iter().enumerate() {
            for &t in targets {
                if t != END {
                    graph.add_edge(nodes[s], nodes[t], ());
                }
            }
        }
        petgraph::algo::tarjan_scc(&graph)
            .into_iter()
            .map(|c| {
                let mut c: Vec<usize> = c.into_iter().map(|n| n.index()).collect();
                c.sort_unstable();
                c
            })
            .filter(|c| c.len() > 1 || self.next[c[0]].contains(&c[0]))
            .collect()
    }
}

/// GB/T 39554.1: a basic code (基本编码) of 12 characters or an implementation code (实施编码)
/// of 31, digits and capital letters.
fn is_item_code(code: &str) -> bool {
    (code.len() == 12 || code.len() == 31) && code.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

/// Levenshtein distance over characters, for "did you mean".
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}
