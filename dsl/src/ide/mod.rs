//! What an editor asks of the language: completion, hover, navigation, rename, outline,
//! folding, semantic tokens, quick fixes, the reform figures on each process.
//!
//! Every answer is in the language's own terms (byte offsets, [`Location`]s, plain data): the
//! language server turns them into LSP types, and it is the only crate that knows LSP. All of it
//! is pure and total, like the rest of `dsl`: no input, however broken, makes it panic.

pub mod actions;
pub mod completion;
pub mod hover;
pub mod index;
pub mod lens;
pub mod navigation;
pub mod outline;
pub mod tokens;

use crate::check::{check, Analysis};
use crate::model::FieldType;
use crate::span::FileId;
use crate::workspace::Workspace;

pub use index::{Occurrence, Role, Symbol, SymbolIndex};

/// A workspace checked and indexed: what every query reads.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub workspace: Workspace,
    pub analysis: Analysis,
    pub index: SymbolIndex,
}

impl Snapshot {
    pub fn new(workspace: Workspace) -> Snapshot {
        let analysis = check(&workspace);
        let index = SymbolIndex::build(&workspace, &analysis);
        Snapshot { workspace, analysis, index }
    }

    /// The file of a path, if it is part of this snapshot.
    pub fn file_id(&self, path: &str) -> Option<FileId> {
        self.workspace.file_by_path(path).map(|f| f.id)
    }

    pub fn text(&self, file: FileId) -> &str {
        self.workspace.file(file).map_or("", |f| f.text.as_str())
    }

    pub fn path(&self, file: FileId) -> &str {
        self.workspace.file(file).map_or("", |f| f.path.as_str())
    }
}

/// A schema field's type as written in a schema.
pub fn type_text(ty: &FieldType) -> String {
    match ty {
        FieldType::String => "string".into(),
        FieldType::Int => "int".into(),
        FieldType::Double => "double".into(),
        FieldType::Bool => "bool".into(),
        FieldType::Date => "date".into(),
        FieldType::List(element) => format!("list<{}>", type_text(element)),
        FieldType::Record(fields) => {
            let inner: Vec<String> = fields.iter().map(|f| format!("{} {}", f.name, type_text(&f.ty))).collect();
            format!("{{ {} }}", inner.join("  "))
        }
    }
}

/// "1 workday", "3 workdays".
pub fn workdays(n: u32) -> String {
    crate::diagnostic::count(n, "workday", "workdays")
}

/// The identifier-ish word that ends at `offset` (letters, digits, `_`, any script), as a
/// byte range.
pub(crate) fn word_before(text: &str, offset: usize) -> std::ops::Range<usize> {
    let offset = clamp(text, offset);
    let start = text[..offset]
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_alphanumeric() || *c == '_')
        .last()
        .map_or(offset, |(i, _)| i);
    start..offset
}

/// `offset` moved back to a character boundary inside `text`.
pub(crate) fn clamp(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// The field a [`Symbol::Field`] names, through nested records and lists of records.
pub fn schema_field<'p>(
    program: &'p crate::model::Program,
    schema: &str,
    path: &[String],
) -> Option<&'p crate::model::SchemaField> {
    let mut fields = program.schema(schema)?.fields.as_slice();
    let mut found = None;
    for name in path {
        let field = fields.iter().find(|f| &f.name == name)?;
        found = Some(field);
        let mut ty = &field.ty;
        while let FieldType::List(element) = ty {
            ty = element;
        }
        fields = match ty {
            FieldType::Record(inner) => inner,
            _ => &[],
        };
    }
    found
}
