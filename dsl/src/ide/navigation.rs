//! Go to definition, find references, highlights and rename, over the symbol index.

use crate::diagnostic::Edit;
use crate::ide::{Role, Snapshot, Symbol};
use crate::span::{FileId, Location, Span};

/// Where the name under the cursor is declared.
pub fn definition(snapshot: &Snapshot, file: FileId, offset: u32) -> Option<Location> {
    let occurrence = snapshot.index.at(file, offset)?;
    snapshot.index.declaration(&occurrence.symbol)
}

/// Every place the name under the cursor appears (its declaration too when asked).
pub fn references(snapshot: &Snapshot, file: FileId, offset: u32, include_declaration: bool) -> Vec<Location> {
    let Some(occurrence) = snapshot.index.at(file, offset) else { return Vec::new() };
    snapshot
        .index
        .occurrences_of(&occurrence.symbol)
        .filter(|o| include_declaration || o.role != Role::Declaration)
        .map(|o| o.location)
        .collect()
}

/// The occurrences in this file of the name under the cursor, and whether each declares it.
pub fn highlights(snapshot: &Snapshot, file: FileId, offset: u32) -> Vec<(Span, bool)> {
    let Some(occurrence) = snapshot.index.at(file, offset) else { return Vec::new() };
    let symbol = occurrence.symbol.clone();
    snapshot
        .index
        .in_file(file)
        .iter()
        .filter(|o| o.symbol == symbol)
        .map(|o| (o.location.span, o.role == Role::Declaration))
        .collect()
}

/// The name under the cursor, when it can be renamed: its span and symbol.
pub fn prepare_rename(snapshot: &Snapshot, file: FileId, offset: u32) -> Result<(Span, Symbol), String> {
    let occurrence = snapshot.index.at(file, offset).ok_or("there is no name here to rename")?;
    if !occurrence.symbol.renamable() {
        return Err(format!(
            "`{}` is a {} of the language, not a name of this workspace",
            occurrence.symbol.name(),
            occurrence.symbol.kind()
        ));
    }
    if snapshot.path(occurrence.location.file).starts_with('@') {
        return Err("this name is declared in a library, which is read-only".into());
    }
    if let Some(declared) = snapshot.index.declaration(&occurrence.symbol) {
        if snapshot.path(declared.file).starts_with('@') {
            return Err(format!(
                "`{}` is declared in `{}`, a library, which is read-only",
                occurrence.symbol.name(),
                snapshot.path(declared.file)
            ));
        }
    }
    Ok((occurrence.location.span, occurrence.symbol.clone()))
}

/// The edits renaming a symbol everywhere in the snapshot, or why it cannot be renamed.
pub fn rename(snapshot: &Snapshot, symbol: &Symbol, new_name: &str) -> Result<Vec<Edit>, String> {
    check_name(new_name)?;
    if new_name == symbol.name() {
        return Ok(Vec::new());
    }
    let renamed = with_name(symbol, new_name);
    let clashes: Vec<Symbol> = match &renamed {
        // Items and processes share one namespace.
        Symbol::Item(n) | Symbol::Process(n) => vec![Symbol::Item(n.clone()), Symbol::Process(n.clone())],
        other => vec![other.clone()],
    };
    for clash in &clashes {
        if let Some(at) = snapshot.index.declaration(clash) {
            let (line, _) =
                crate::span::LineIndex::new(snapshot.text(at.file)).line_col(snapshot.text(at.file), at.span.start);
            return Err(format!(
                "a {} named `{new_name}` already exists ({}:{line}); renaming would merge the two",
                clash.kind(),
                snapshot.path(at.file)
            ));
        }
    }
    let mut edits = Vec::new();
    for o in snapshot.index.occurrences_of(symbol) {
        if snapshot.path(o.location.file).starts_with('@') {
            return Err(format!(
                "`{}` is used in `{}`, a library, which is read-only",
                symbol.name(),
                snapshot.path(o.location.file)
            ));
        }
        edits.push(Edit { location: o.location, text: new_name.to_string() });
    }
    // Fields nested under a renamed field or schema, and datasets, steps and licences keyed by
    // a renamed parent, keep their spans: only the renamed name's own spans change.
    Ok(edits)
}

/// A new name must be a name of the language: letters, digits and `_`, not starting with a
/// digit, and not a reserved word.
fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_');
    if !first_ok || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return Err(format!("`{name}` is not a name: use letters, digits and `_`, starting with a letter"));
    }
    if matches!(name, "end" | "if" | "else" | "parallel" | "true" | "false" | "null" | "in") {
        return Err(format!("`{name}` is a reserved word"));
    }
    Ok(())
}

/// The same symbol under another name (its parents unchanged).
fn with_name(symbol: &Symbol, name: &str) -> Symbol {
    let name = name.to_string();
    match symbol {
        Symbol::Department(_) => Symbol::Department(name),
        Symbol::Dataset { department, .. } => Symbol::Dataset { department: department.clone(), name },
        Symbol::Schema(_) => Symbol::Schema(name),
        Symbol::Field { schema, path } => {
            let mut path = path.clone();
            if let Some(last) = path.last_mut() {
                *last = name;
            }
            Symbol::Field { schema: schema.clone(), path }
        }
        Symbol::Item(_) => Symbol::Item(name),
        Symbol::Process(_) => Symbol::Process(name),
        Symbol::Licence { item, .. } => Symbol::Licence { item: item.clone(), name },
        Symbol::Material(_) => Symbol::Material(name),
        Symbol::Step { item, .. } => Symbol::Step { item: item.clone(), name },
        Symbol::Function(_) => Symbol::Function(name),
        Symbol::Context(_) => Symbol::Context(name),
    }
}
