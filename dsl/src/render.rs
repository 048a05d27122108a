//! Diagnostics rendered for people (rustc's layout: code, message, the source line with the
//! span underlined, a help line) and for tools (JSON with lines and columns).

use annotate_snippets::{renderer::DecorStyle, AnnotationKind, Group, Level, Renderer, Snippet};
use serde::Serialize;

use crate::diagnostic::{Diagnostic, Severity};
use crate::span::{LineIndex, Location, Span};
use crate::workspace::Workspace;

/// Renders one diagnostic as rustc does; `color` adds ANSI styles.
pub fn render(workspace: &Workspace, diagnostic: &Diagnostic, color: bool) -> String {
    let level = match diagnostic.severity {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
    };
    let title = level.primary_title(diagnostic.message.as_str()).id(diagnostic.code.as_str());
    let mut group = Group::with_title(title);
    if let Some(file) = workspace.file(diagnostic.location.file) {
        let mut snippet = Snippet::source(file.text.as_str()).path(file.path.as_str()).fold(true).annotation(
            AnnotationKind::Primary.span(clamp(&file.text, diagnostic.location.span)).label(diagnostic.label.as_str()),
        );
        for label in diagnostic.secondary.iter().filter(|l| l.location.file == diagnostic.location.file) {
            snippet = snippet.annotation(
                AnnotationKind::Context.span(clamp(&file.text, label.location.span)).label(label.message.as_str()),
            );
        }
        group = group.element(snippet);
    }
    for label in diagnostic.secondary.iter().filter(|l| l.location.file != diagnostic.location.file) {
        if let Some(file) = workspace.file(label.location.file) {
            group = group.element(Snippet::source(file.text.as_str()).path(file.path.as_str()).fold(true).annotation(
                AnnotationKind::Context.span(clamp(&file.text, label.location.span)).label(label.message.as_str()),
            ));
        }
    }
    if let Some(help) = &diagnostic.help {
        group = group.element(Level::HELP.message(help.as_str()));
    }
    let renderer = if color { Renderer::styled() } else { Renderer::plain() }.decor_style(DecorStyle::Ascii);
    renderer.render(&[group])
}

/// A span made safe to slice `text` with.
fn clamp(text: &str, span: Span) -> std::ops::Range<usize> {
    let mut start = (span.start as usize).min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (span.end as usize).clamp(start, text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    start..end
}

/// A diagnostic for tools: positions as 1-based lines and character columns.
#[derive(Debug, Clone, Serialize)]
pub struct JsonDiagnostic {
    pub code: String,
    pub severity: Severity,
    pub message: String,
    pub path: String,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    pub label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    pub related: Vec<JsonLabel>,
}

#[derive(Debug, Clone, Serialize)]
pub struct JsonLabel {
    pub path: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

pub fn to_json(workspace: &Workspace, diagnostic: &Diagnostic) -> JsonDiagnostic {
    let (path, (line, column), (end_line, end_column)) = position(workspace, diagnostic.location);
    JsonDiagnostic {
        code: diagnostic.code.as_str().to_string(),
        severity: diagnostic.severity,
        message: diagnostic.message.clone(),
        path,
        line,
        column,
        end_line,
        end_column,
        label: diagnostic.label.clone(),
        help: diagnostic.help.clone(),
        related: diagnostic
            .secondary
            .iter()
            .map(|l| {
                let (path, (line, column), _) = position(workspace, l.location);
                JsonLabel { path, line, column, message: l.message.clone() }
            })
            .collect(),
    }
}

fn position(workspace: &Workspace, location: Location) -> (String, (usize, usize), (usize, usize)) {
    match workspace.file(location.file) {
        Some(file) => {
            let index = LineIndex::new(&file.text);
            (
                file.path.clone(),
                index.line_col(&file.text, location.span.start),
                index.line_col(&file.text, location.span.end),
            )
        }
        None => (String::new(), (0, 0), (0, 0)),
    }
}
