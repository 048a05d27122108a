//! Hover: what a name stands for, from the checked program, and what a diagnostic's code
//! means.

use crate::analysis;
use crate::cel::types::{CONTEXT, FUNCTIONS};
use crate::diagnostic::count;
use crate::ide::{type_text, workdays, Snapshot, Symbol};
use crate::model::{Handling, Item, MaterialSource, Program};
use crate::span::{FileId, Span};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Hover {
    /// Markdown.
    pub markdown: String,
    /// What the hover is about, in the file.
    pub span: Span,
}

/// The hover at a byte offset of a file.
pub fn hover(snapshot: &Snapshot, file: FileId, offset: u32) -> Option<Hover> {
    let program = &snapshot.analysis.program;
    let occurrence = snapshot.index.at(file, offset);
    let mut sections = Vec::new();
    let mut span = None;
    if let Some(o) = occurrence {
        if let Some(text) = describe(program, &o.symbol) {
            sections.push(text);
            span = Some(o.location.span);
        }
    }
    // The codes of the diagnostics under the cursor, explained as by `onetrip explain`.
    for d in &snapshot.analysis.diagnostics {
        let at = d.location;
        if at.file == file && at.span.start <= offset && offset <= at.span.end {
            sections.push(format!("**{}** — {}\n\n{}", d.code, d.code.explain(), d.message));
            span.get_or_insert(at.span);
        }
    }
    if sections.is_empty() {
        return None;
    }
    Some(Hover { markdown: sections.join("\n\n---\n\n"), span: span.unwrap_or_default() })
}

/// Markdown describing a symbol.
pub fn describe(program: &Program, symbol: &Symbol) -> Option<String> {
    Some(match symbol {
        Symbol::Department(name) => {
            let d = program.department(name)?;
            let mut out = format!("**{}** `{}` — department\n", d.title, d.name);
            let items: Vec<String> = program
                .items
                .iter()
                .filter(|i| i.department == d.name)
                .map(|i| format!("- {} `{}`", i.title, i.name))
                .collect();
            if !d.datasets.is_empty() {
                out.push_str("\nShares data:\n");
                for (n, t) in &d.datasets {
                    out.push_str(&format!("- {t} `{n}`\n"));
                }
            }
            if items.is_empty() {
                out.push_str("\nImplements no item here.");
            } else {
                out.push_str(&format!("\nImplements {}:\n{}", count(items.len(), "item", "items"), items.join("\n")));
            }
            out
        }
        Symbol::Dataset { department, name } => {
            let d = program.department(department)?;
            let (_, title) = d.datasets.iter().find(|(n, _)| n == name)?;
            format!("**{title}** `{department}.{name}` — shared data of {} (数据共享)", d.title)
        }
        Symbol::Schema(name) => {
            let schema = program.schema(name)?;
            let fields: Vec<String> = schema.fields.iter().map(field_line).collect();
            format!("**schema** `{name}`\n\n{}", fields.join("\n"))
        }
        Symbol::Field { schema, path } => {
            let field = super::schema_field(program, schema, path)?;
            let pii = match field.pii {
                Some(kind) => format!(
                    "\n\n**Personal data** (`pii({})`): masked in logs, traces and exports",
                    format!("{kind:?}").to_lowercase()
                ),
                None => String::new(),
            };
            format!("`{schema}.{}`: `{}`{pii}", path.join("."), type_text(&field.ty))
        }
        Symbol::Item(name) => item_text(program, program.item(name)?),
        Symbol::Process(name) => {
            let p = program.process(name)?;
            let report = analysis::report(program, p);
            let window = program.department(&p.window).map_or(p.window.clone(), |d| d.title.clone());
            let mut out = format!("**{}** `{}` — joint process (一件事)\n\nwindow: {window}\n", p.title, p.name);
            if let Some(sla) = p.sla {
                out.push_str(&format!("\nSLA: {}\n", workdays(sla)));
            }
            out.push_str(&format!("\n{}", figures(&report)));
            out
        }
        Symbol::Licence { item, name } => {
            let producer = program.item(item)?;
            let licence = producer.licence.as_ref().filter(|l| &l.name == name)?;
            format!("**{}** `{item}.{name}` — licence (证照) produced by {} `{item}`", licence.title, producer.title)
        }
        Symbol::Material(name) => {
            let users: Vec<(&Item, &crate::model::Material)> = program
                .items
                .iter()
                .flat_map(|i| i.materials.iter().filter(|m| &m.name == name).map(move |m| (i, m)))
                .collect();
            let (_, first) = users.first()?;
            let list: Vec<String> =
                users.iter().map(|(i, m)| format!("- {} `{}`: {}", i.title, i.name, source(&m.source))).collect();
            format!("**{}** `{name}` — material\n\nListed by:\n{}", first.title, list.join("\n"))
        }
        Symbol::Step { item, name } => {
            let owner = program.item(item)?;
            let step = owner.step(name)?;
            let mut out =
                format!("**{}** `{name}` — step of {} `{item}`", step.label.as_deref().unwrap_or(name), owner.title);
            if let Some(d) = program.department(&step.department) {
                out.push_str(&format!("\n\nby {}", d.title));
            }
            if let Some(limit) = step.limit {
                out.push_str(&format!("\n\nlimit: {}", workdays(limit)));
            }
            if !step.cosign.is_empty() {
                out.push_str(&format!("\n\nco-signed (加签) by {}", step.cosign.join(", ")));
            }
            out
        }
        Symbol::Function(name) => {
            let forms: Vec<String> = FUNCTIONS
                .iter()
                .filter(|f| f.name == name)
                .map(|f| {
                    let call = match f.receiver {
                        Some(r) => format!("{r}.{}({})", f.name, f.params.join(", ")),
                        None => format!("{}({})", f.name, f.params.join(", ")),
                    };
                    format!("```\n{call} -> {}\n```\n{}", f.result, f.doc)
                })
                .collect();
            if forms.is_empty() {
                return None;
            }
            forms.join("\n\n")
        }
        Symbol::Context(name) => {
            let (_, ty, doc) = CONTEXT.iter().find(|(n, ..)| n == name)?;
            format!("`{name}`: `{ty}` — {doc}")
        }
    })
}

fn field_line(field: &crate::model::SchemaField) -> String {
    let pii = field.pii.map_or(String::new(), |p| format!(" · pii({})", format!("{p:?}").to_lowercase()));
    format!("- `{}`: `{}`{pii}", field.name, type_text(&field.ty))
}

fn source(source: &MaterialSource) -> String {
    match source {
        MaterialSource::Applicant => "from the applicant".into(),
        MaterialSource::Shared { department, dataset } => format!("shared data `{department}.{dataset}` (免提交)"),
        MaterialSource::Licence { item, licence } => format!("licence `{item}.{licence}` (免提交)"),
    }
}

fn item_text(program: &Program, item: &Item) -> String {
    let department = program.department(&item.department).map_or(item.department.clone(), |d| d.title.clone());
    let handling = match item.handling {
        Handling::Immediate => "即办件 (immediate)",
        Handling::Promised => "承诺件 (promised)",
    };
    let mut out = format!(
        "**{}** `{}` — item (事项)\n\n| | |\n|---|---|\n| department | {department} |\n| type | {} {} |\n| handling | {handling} |\n",
        item.title,
        item.name,
        item.item_type.code(),
        item.item_type.title()
    );
    if let Some(code) = &item.code {
        out.push_str(&format!("| code | `{code}` |\n"));
    }
    if let Some(legal) = item.legal_limit {
        out.push_str(&format!("| legal limit | {} |\n", workdays(legal)));
    }
    if let Some(promised) = item.promised_limit {
        out.push_str(&format!("| promised limit | {} |\n", workdays(promised)));
    }
    out.push_str(&format!("| visits | {} |\n", item.visits));
    if let Some(base) = &item.extends {
        out.push_str(&format!("| variant of | `{base}` |\n"));
    }
    if !item.materials.is_empty() {
        out.push_str("\nMaterials:\n");
        for m in &item.materials {
            let mut notes = vec![source(&m.source)];
            if m.tolerated {
                notes.push("容缺".into());
            }
            if m.promise {
                notes.push("告知承诺".into());
            }
            if m.condition.is_some() {
                notes.push("conditional".into());
            }
            out.push_str(&format!("- {} `{}` — {}\n", m.title, m.name, notes.join(", ")));
        }
    }
    if let Some(licence) = &item.licence {
        out.push_str(&format!("\nProduces **{}** (`{}.{}`)", licence.title, item.name, licence.name));
    }
    out
}

/// The reform figures in one line.
pub fn figures(report: &analysis::Report) -> String {
    let sla = report.sla.map_or(String::new(), |s| format!(" of SLA {s}"));
    format!(
        "{} · {} · {} of {} materials asked · {} on the critical path{sla} · {}",
        count(report.items, "item", "items"),
        count(report.departments.len(), "department", "departments"),
        report.materials_asked,
        report.materials_total,
        workdays(report.days),
        count(report.trips as usize, "trip", "trips"),
    )
}
