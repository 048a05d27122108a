//! Diagnostics: a stable code, a severity, a message, labelled spans and a help line.
//!
//! The codes are part of the public interface (tools and tests match on them); a code is never
//! reused for another meaning. `Code::ALL` lists them with a one-line explanation each.

use serde::Serialize;

use crate::span::{FileId, Location, Span};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

macro_rules! codes {
    ($($variant:ident = $code:literal, $severity:ident, $what:literal;)*) => {
        /// Every diagnostic the flow language can report.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code { $($variant),* }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The stable code, e.g. `E0101`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code),* }
            }

            pub fn severity(self) -> Severity {
                match self { $(Code::$variant => Severity::$severity),* }
            }

            /// What the code means, in one line.
            pub fn explain(self) -> &'static str {
                match self { $(Code::$variant => $what),* }
            }
        }
    };
}

codes! {
    Syntax              = "E0001", Error, "the text does not follow the grammar";
    TooDeep             = "E0002", Error, "brackets nested deeper than the parser accepts";
    CelSyntax           = "E0003", Error, "a CEL rule that does not parse";
    ImportNotFound      = "E0004", Error, "an imported file that cannot be read";
    NotImported         = "E0106", Error, "a name declared in a file that this file does not import";
    VariantCycle        = "E0107", Error, "a variant (`extends`) that extends itself, directly or through other variants";
    UnknownName         = "E0101", Error, "a name that is not declared (department, item, step, licence, data set, schema field)";
    DuplicateName       = "E0102", Error, "a name declared twice";
    DuplicateField      = "E0103", Error, "a field given twice in one declaration";
    MissingField        = "E0104", Error, "a field that must be given";
    InvalidValue        = "E0105", Error, "a value outside what the field accepts";
    UnreachableState    = "E0201", Error, "a step or item that can never be reached";
    NoWayOut            = "E0202", Error, "a state that is not final and has no way out";
    UnjoinedBranch      = "E0203", Error, "a parallel branch that never reaches the join";
    CycleWithoutExit    = "E0204", Error, "a cycle of steps from which the end cannot be reached";
    BackNotEarlier      = "E0205", Error, "a return (退回) to a step that does not come earlier";
    PromisedOverLegal   = "E0301", Error, "a promised time limit longer than the legal one";
    SlaInfeasible       = "E0302", Error, "the critical path of promised limits exceeds the process SLA";
    TripsExceeded       = "E0303", Error, "the applicant must make more trips than the process allows";
    LicenceNotProduced  = "E0304", Error, "a material taken from a licence that no earlier item is guaranteed to produce";
    UnknownFunction     = "E0401", Error, "a rule calls a function that does not exist";
    ArgumentCount       = "E0402", Error, "a rule calls a function with the wrong number of arguments";
    TypeMismatch        = "E0403", Error, "a rule combines values of types that do not go together";
    NotBoolean          = "E0404", Error, "a rule that must be true or false has another type";
    ItemCodeFormat      = "W0001", Warning, "an item code that is not a GB/T 39554.1 code";
    UnusedItem          = "W0002", Warning, "an item declared in the file but used by no process in it";
    MaterialMismatch    = "W0003", Warning, "one material name with different titles: the consolidated list would merge different documents";
    GuideIncomplete     = "W0004", Warning, "a published guide would lack where to go, whom to ask or where to complain (`onetrip check --guide`)";
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A secondary span with a note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Label {
    pub location: Location,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    /// Where the problem is; the label text is printed under the span.
    pub location: Location,
    pub label: String,
    pub secondary: Vec<Label>,
    pub help: Option<String>,
    /// Changes that resolve it, for an editor's quick fixes (the help line says the same in
    /// words).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fixes: Vec<Fix>,
}

/// A machine-applicable change that resolves a diagnostic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fix {
    /// What it does, e.g. "replace with `samr`".
    pub title: String,
    pub edits: Vec<Edit>,
}

/// Replace the text at `location` (an empty span inserts) with `text`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Edit {
    pub location: Location,
    pub text: String,
}

impl Fix {
    /// One edit in one file.
    pub fn replace(title: impl Into<String>, file: FileId, span: Span, text: impl Into<String>) -> Fix {
        Fix { title: title.into(), edits: vec![Edit { location: Location { file, span }, text: text.into() }] }
    }
}

impl Diagnostic {
    pub fn new(code: Code, file: FileId, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: code.severity(),
            message: message.into(),
            location: Location { file, span },
            label: String::new(),
            secondary: Vec::new(),
            help: None,
            fixes: Vec::new(),
        }
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn secondary(mut self, file: FileId, span: Span, message: impl Into<String>) -> Self {
        self.secondary.push(Label { location: Location { file, span }, message: message.into() });
        self
    }

    pub fn fix(mut self, fix: Fix) -> Self {
        self.fixes.push(fix);
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// A number and its noun, agreeing: `count(1, "workday", "workdays")` is `1 workday`, and any
/// other number takes the plural (`0 workdays`, `5 workdays`). For every counted noun in a
/// message, here and in the tools built on this crate.
pub fn count(n: impl std::fmt::Display, one: &str, many: &str) -> String {
    let n = n.to_string();
    let noun = if n == "1" { one } else { many };
    format!("{n} {noun}")
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn a_count_agrees_with_its_noun() {
        assert_eq!(count(1u32, "workday", "workdays"), "1 workday");
        assert_eq!(count(0usize, "trip", "trips"), "0 trips");
        assert_eq!(count(2, "copy", "copies"), "2 copies");
        assert_eq!(count(11, "item", "items"), "11 items");
    }
}
