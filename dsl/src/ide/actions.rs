//! Quick fixes: the fixes the checker attached to the diagnostics in a range.

use crate::diagnostic::{Diagnostic, Fix};
use crate::ide::Snapshot;
use crate::span::{FileId, Span};

/// A fix offered for a diagnostic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action<'s> {
    pub diagnostic: &'s Diagnostic,
    pub fix: &'s Fix,
}

/// The fixes of every diagnostic of the file that touches `range`.
pub fn actions(snapshot: &Snapshot, file: FileId, range: Span) -> Vec<Action<'_>> {
    snapshot
        .analysis
        .diagnostics
        .iter()
        .filter(|d| d.location.file == file && d.location.span.start <= range.end && range.start <= d.location.span.end)
        .flat_map(|d| d.fixes.iter().map(move |fix| Action { diagnostic: d, fix }))
        .collect()
}
