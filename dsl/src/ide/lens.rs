//! The figures shown above declarations: a process's reform figures, an item's promised
//! limit.

use crate::analysis;
use crate::ide::{hover::figures, workdays, Snapshot};
use crate::model::Handling;
use crate::span::{FileId, Span};
use crate::syntax::ast;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Lens {
    /// The declaration's name.
    pub span: Span,
    pub text: String,
}

/// One lens per process (its reform figures) and per item (its promised limit) declared in
/// the file and checked.
pub fn lenses(snapshot: &Snapshot, file: FileId) -> Vec<Lens> {
    let program = &snapshot.analysis.program;
    let Some(source) = snapshot.workspace.file(file) else { return Vec::new() };
    let mut out = Vec::new();
    for decl in &source.tree.decls {
        match decl {
            ast::Decl::Process(p) => {
                let Some(process) = program.process(&p.name.name).filter(|x| x.location.file == file) else { continue };
                let report = analysis::report(program, process);
                out.push(Lens { span: p.name.span, text: figures(&report) });
            }
            ast::Decl::Item(i) => {
                let Some(item) = program.item(&i.name.name).filter(|x| x.location.file == file) else { continue };
                let text = match item.handling {
                    Handling::Immediate => "即办件: done at the window".to_string(),
                    Handling::Promised => format!("承诺件: promised in {}", workdays(item.promised_days())),
                };
                out.push(Lens { span: i.name.span, text });
            }
            _ => {}
        }
    }
    out
}
