//! Completion: what may be written at a cursor.
//!
//! The context is read from the text itself (which blocks enclose the cursor, which words
//! start the statement it is in), not from the syntax tree, so that a half-written line — the
//! usual state of a file being typed — still gets answers. The candidates come from the
//! checked program: the names visible from the file, the schema fields a rule can read, the
//! functions rules can call.

use crate::cel::types::{CONTEXT, FUNCTIONS};
use crate::ide::{type_text, Snapshot};
use crate::model::{FieldType, ItemType, SchemaField};
use crate::span::FileId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CompletionKind {
    Keyword,
    Value,
    Department,
    Dataset,
    Schema,
    Field,
    Item,
    Process,
    Licence,
    Material,
    Step,
    Function,
    Method,
    Variable,
    Snippet,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Completion {
    pub label: String,
    pub kind: CompletionKind,
    /// A short note beside the label: a title, a type, a signature.
    pub detail: String,
    /// Longer documentation, markdown.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub documentation: String,
    /// Text to insert when it differs from the label (LSP snippet syntax when `snippet`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insert: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub snippet: bool,
}

impl Completion {
    fn new(label: impl Into<String>, kind: CompletionKind, detail: impl Into<String>) -> Completion {
        Completion {
            label: label.into(),
            kind,
            detail: detail.into(),
            documentation: String::new(),
            insert: None,
            snippet: false,
        }
    }

    fn doc(mut self, documentation: impl Into<String>) -> Completion {
        self.documentation = documentation.into();
        self
    }

    fn snippet(mut self, body: impl Into<String>) -> Completion {
        self.insert = Some(body.into());
        self.snippet = true;
        self
    }
}

const DECLARATIONS: &[(&str, &str, &str)] = &[
    ("import", "import a file", "import \"${1:file.flow}\""),
    ("department", "a department (实施主体)", "department ${1:name} \"${2:title}\""),
    ("schema", "the facts an applicant gives", "schema ${1:applicant} {\n  ${2:name} ${3:string}\n}"),
    (
        "item",
        "a service item (事项)",
        "item ${1:name} \"${2:title}\" {\n  department     ${3:department}\n  handling       promised\n  legal_limit    ${4:20} workdays\n  promised_limit ${5:5} workdays\n  materials {\n    ${6:application_form} \"${7:申请书}\"\n  }\n}",
    ),
    (
        "process",
        "a joint process (一件事)",
        "process ${1:name} \"${2:title}\" {\n  window ${3:department}\n  sla    ${4:5} workdays\n  visits at_most 1\n  flow   { ${5:item} }\n}",
    ),
];

const ITEM_FIELDS: &[(&str, &str)] = &[
    ("code", "基本编码 or 实施编码 (GB/T 39554.1)"),
    ("department", "the implementing department (实施主体)"),
    ("type", "GB/T 39046 item type"),
    ("handling", "immediate (即办件) or promised (承诺件)"),
    ("legal_limit", "法定办结时限, in working days"),
    ("promised_limit", "承诺办结时限, in working days"),
    ("visits", "on-site visits (到办事现场次数)"),
    ("fee", "free, or an amount in yuan"),
    ("basis", "legal basis (设定依据)"),
    ("online", "handled online (是否网办)"),
    ("supplement", "whether 补正 pauses the clock"),
    ("eligible", "an eligibility rule (CEL) and its message"),
    ("materials", "the application materials"),
    ("steps", "the steps (环节)"),
    ("produces", "the licence it produces (证照)"),
    ("serves", "for the guide: natural_persons, legal_persons (服务对象)"),
];

const PROCESS_FIELDS: &[(&str, &str)] = &[
    ("code", "the process code"),
    ("window", "the department whose window accepts (一窗受理)"),
    ("sla", "the promised limit of the whole, in working days"),
    ("visits", "`at_most N` trips"),
    ("eligible", "an eligibility rule (CEL) and its message"),
    ("flow", "the items, in sequence, parallel or by condition"),
    ("warn", "yellow and red warnings (电子监察)"),
    ("replace", "in a variant: run another item in a base item's place"),
];

/// Fields of the published guide, in items and processes alike (`serves` is an item's).
const GUIDE_FIELDS: &[(&str, &str)] = &[
    ("where", "for the guide: 办理地点"),
    ("hours", "for the guide: 办理时间"),
    ("contact", "for the guide: 咨询方式"),
    ("complaint", "for the guide: 监督投诉方式"),
    ("url", "for the guide: 网上办理地址"),
    ("faq", "for the guide: a question and its answer (常见问题)"),
];

const MATERIAL_ATTRIBUTES: &[(&str, &str)] = &[
    ("from", "where it comes from: applicant, shared data, a licence"),
    ("when", "required only when a rule holds"),
    ("tolerated", "may be missing at acceptance (容缺)"),
    ("promise", "a written promise may replace it (告知承诺)"),
    ("optional", "not required"),
    ("copies", "number of copies"),
    ("paper", "a paper document (原件)"),
    ("copy", "a photocopy (复印件)"),
    ("electronic", "an electronic document"),
];

const STEP_ATTRIBUTES: &[(&str, &str)] = &[
    ("back", "steps the case may be returned to (退回)"),
    ("cosign", "departments that co-sign (加签)"),
    ("by", "the department acting on this step"),
    ("limit", "the step's own limit (环节时限)"),
];

/// Methods and macros on a value of a kind, for completion after `value.`.
const LIST_METHODS: &[(&str, &str, &str)] = &[
    ("exists", "exists(${1:x}, ${2:condition})", "whether some element satisfies the condition"),
    ("all", "all(${1:x}, ${2:condition})", "whether every element satisfies the condition"),
    ("exists_one", "exists_one(${1:x}, ${2:condition})", "whether exactly one element satisfies it"),
    ("filter", "filter(${1:x}, ${2:condition})", "the elements that satisfy the condition"),
    ("map", "map(${1:x}, ${2:expression})", "each element transformed"),
    ("size", "size()", "the number of elements"),
];

/// The completions at a byte offset of a file.
pub fn complete(snapshot: &Snapshot, file: FileId, offset: usize) -> Vec<Completion> {
    let text = snapshot.text(file);
    let offset = super::clamp(text, offset);
    let context = Context::read(text, offset);
    let names = Names { snapshot, file, visibility: snapshot.workspace.visibility() };
    let mut out = Vec::new();
    if let Some(rule_start) = context.rule_start {
        complete_rule(snapshot, &text[rule_start..offset], &mut out);
        return out;
    }
    let words: Vec<&str> = context.words.iter().map(String::as_str).collect();
    let last = words.last().copied();
    match context.block.as_deref() {
        None => match words.as_slice() {
            [] => {
                for (keyword, detail, body) in DECLARATIONS {
                    out.push(Completion::new(*keyword, CompletionKind::Snippet, *detail).snippet(*body));
                }
            }
            ["item" | "process", _, _] => {
                out.push(Completion::new("extends", CompletionKind::Keyword, "a variant of another declaration"));
            }
            ["item", _, _, "extends"] => names.items(&mut out),
            ["process", _, _, "extends"] => names.processes(&mut out),
            _ => {}
        },
        Some("item") => match words.as_slice() {
            [] => {
                keywords(ITEM_FIELDS, &mut out);
                keywords(GUIDE_FIELDS, &mut out);
            }
            ["department"] => names.departments(&mut out),
            ["type"] => {
                for (keyword, _, code, title) in ItemType::ALL {
                    out.push(Completion::new(keyword, CompletionKind::Value, format!("{code} {title}")));
                }
            }
            ["handling"] => {
                out.push(Completion::new("promised", CompletionKind::Value, "承诺件: within the promised limit"));
                out.push(Completion::new("immediate", CompletionKind::Value, "即办件: done at the window"));
            }
            ["supplement"] => {
                out.push(Completion::new("pauses_clock", CompletionKind::Value, "补正 pauses the clock"));
                out.push(Completion::new("keeps_clock", CompletionKind::Value, "the clock runs during 补正"));
            }
            ["legal_limit" | "promised_limit", _] => unit(&mut out),
            ["online"] => booleans(&mut out),
            ["fee"] => out.push(Completion::new("free", CompletionKind::Value, "no fee")),
            ["produces"] => out.push(Completion::new("licence", CompletionKind::Keyword, "a licence (证照)")),
            _ => {}
        },
        Some("materials") => match words.as_slice() {
            [] => names.materials(&mut out),
            [.., "from"] => {
                out.push(Completion::new("applicant", CompletionKind::Keyword, "the applicant brings it"));
                out.push(Completion::new("shared", CompletionKind::Keyword, "shared data (数据共享)"));
                out.push(Completion::new("licence", CompletionKind::Keyword, "an e-licence (电子证照)"));
            }
            [.., "from", "shared"] => names.datasets(context.qualifier.as_deref(), &mut out),
            [.., "from", "licence"] => names.licences(context.qualifier.as_deref(), &mut out),
            [_, _, ..] => keywords(MATERIAL_ATTRIBUTES, &mut out),
            _ => {}
        },
        Some("steps") => match (words.as_slice(), last) {
            ([], _) => names.steps(&context, &mut out),
            (_, Some("->")) => {
                names.steps(&context, &mut out);
                out.push(Completion::new("end", CompletionKind::Keyword, "the item is done"));
            }
            (_, Some("by" | "cosign")) => names.departments(&mut out),
            (_, Some("back")) => names.steps(&context, &mut out),
            ([.., "limit", _], _) => unit(&mut out),
            ([_, ..], _) => keywords(STEP_ATTRIBUTES, &mut out),
        },
        Some("process") => match words.as_slice() {
            [] => {
                keywords(PROCESS_FIELDS, &mut out);
                keywords(GUIDE_FIELDS, &mut out);
            }
            ["window"] => names.departments(&mut out),
            ["sla", _] => unit(&mut out),
            ["visits"] => out.push(Completion::new("at_most", CompletionKind::Keyword, "the trips bound")),
            ["warn", ..] if matches!(last, Some("warn" | ",")) => {
                out.push(Completion::new("yellow", CompletionKind::Value, "deadline near (黄牌)"));
                out.push(Completion::new("red", CompletionKind::Value, "overdue (红牌)"));
            }
            ["warn", .., "yellow" | "red"] => out.push(Completion::new("at", CompletionKind::Keyword, "")),
            ["warn", .., "at"] => {
                out.push(Completion::new("overdue", CompletionKind::Value, "once the SLA has passed"));
            }
            ["replace"] | ["replace", _, "with"] => names.items(&mut out),
            ["replace", _] => out.push(Completion::new("with", CompletionKind::Keyword, "")),
            _ => {}
        },
        Some("flow" | "parallel" | "if" | "else") => {
            if matches!(last, None | Some("->" | ",")) {
                names.items(&mut out);
                out.push(Completion::new("parallel", CompletionKind::Keyword, "branches that all run (并联)"));
                out.push(Completion::new("if", CompletionKind::Keyword, "a branch taken when a rule holds"));
                out.push(Completion::new("end", CompletionKind::Keyword, "the process ends here"));
            }
        }
        Some("department") => {
            if words.is_empty() {
                out.push(
                    Completion::new("data", CompletionKind::Snippet, "a data set it shares (数据共享)")
                        .snippet("data ${1:name} \"${2:title}\""),
                );
            }
        }
        Some("record") => match words.as_slice() {
            [_] => {
                for ty in ["string", "int", "double", "bool", "date"] {
                    out.push(Completion::new(ty, CompletionKind::Keyword, "type"));
                }
                out.push(Completion::new("list", CompletionKind::Snippet, "a list").snippet("list<${1:string}>"));
            }
            [_, _] => out.push(
                Completion::new("pii", CompletionKind::Snippet, "personal data, masked")
                    .snippet("pii(${1|name,id,phone|})"),
            ),
            [.., "pii", "("] => {
                for (kind, what) in [("name", "a person's name"), ("id", "an ID number"), ("phone", "a phone number")] {
                    out.push(Completion::new(kind, CompletionKind::Value, what));
                }
            }
            _ => {}
        },
        Some(_) => {}
    }
    out
}

fn keywords(list: &[(&str, &str)], out: &mut Vec<Completion>) {
    out.extend(list.iter().map(|(k, d)| Completion::new(*k, CompletionKind::Keyword, *d)));
}

fn unit(out: &mut Vec<Completion>) {
    out.push(Completion::new("workdays", CompletionKind::Keyword, "working days (工作日)"));
    out.push(Completion::new("workday", CompletionKind::Keyword, "one working day"));
}

fn booleans(out: &mut Vec<Completion>) {
    out.push(Completion::new("true", CompletionKind::Value, ""));
    out.push(Completion::new("false", CompletionKind::Value, ""));
}

/// Names declared in the snapshot and visible from one file.
struct Names<'a> {
    snapshot: &'a Snapshot,
    file: FileId,
    /// Which files see which (`Workspace::visibility`), computed once per request.
    visibility: Vec<Vec<bool>>,
}

impl Names<'_> {
    fn visible(&self, location: crate::span::Location) -> bool {
        self.visibility
            .get(self.file.0 as usize)
            .and_then(|row| row.get(location.file.0 as usize))
            .copied()
            .unwrap_or(true)
    }

    fn departments(&self, out: &mut Vec<Completion>) {
        for d in &self.snapshot.analysis.program.departments {
            if self.visible(d.location) {
                out.push(Completion::new(&d.name, CompletionKind::Department, &d.title));
            }
        }
    }

    fn items(&self, out: &mut Vec<Completion>) {
        let program = &self.snapshot.analysis.program;
        for item in &program.items {
            if self.visible(item.location) {
                let department = program.department(&item.department).map_or("", |d| d.title.as_str());
                out.push(Completion::new(&item.name, CompletionKind::Item, format!("{} · {department}", item.title)));
            }
        }
    }

    fn processes(&self, out: &mut Vec<Completion>) {
        for process in &self.snapshot.analysis.program.processes {
            if self.visible(process.location) {
                out.push(Completion::new(&process.name, CompletionKind::Process, &process.title));
            }
        }
    }

    /// `department.dataset`, or only the data sets of `qualifier` by their own name.
    fn datasets(&self, qualifier: Option<&str>, out: &mut Vec<Completion>) {
        for d in &self.snapshot.analysis.program.departments {
            if self.visible(d.location) && qualifier.is_none_or(|q| q == d.name) {
                for (name, title) in &d.datasets {
                    let label = if qualifier.is_some() { name.clone() } else { format!("{}.{name}", d.name) };
                    out.push(Completion::new(label, CompletionKind::Dataset, format!("{title} · {}", d.title)));
                }
            }
        }
    }

    /// `item.licence`, or only the licence of `qualifier` by its own name.
    fn licences(&self, qualifier: Option<&str>, out: &mut Vec<Completion>) {
        let program = &self.snapshot.analysis.program;
        for item in &program.items {
            if qualifier.is_some_and(|q| !program.is_or_extends(q, &item.name)) {
                continue;
            }
            if let (Some(licence), true) = (&item.licence, self.visible(item.location)) {
                let label =
                    if qualifier.is_some() { licence.name.clone() } else { format!("{}.{}", item.name, licence.name) };
                out.push(Completion::new(
                    label,
                    CompletionKind::Licence,
                    format!("{} · {}", licence.title, item.title),
                ));
            }
        }
    }

    /// Materials declared elsewhere: reusing one keeps one name and title per document.
    fn materials(&self, out: &mut Vec<Completion>) {
        let mut seen = std::collections::HashSet::new();
        for item in &self.snapshot.analysis.program.items {
            for m in &item.materials {
                if seen.insert(m.name.as_str()) {
                    out.push(
                        Completion::new(&m.name, CompletionKind::Material, &m.title)
                            .snippet(format!("{} \"{}\"", m.name, m.title)),
                    );
                }
            }
        }
    }

    /// The steps already written in the item around the cursor.
    fn steps(&self, context: &Context, out: &mut Vec<Completion>) {
        let Some(item) = context.item.as_deref().and_then(|i| self.snapshot.analysis.program.item(i)) else {
            return;
        };
        for step in &item.steps {
            out.push(Completion::new(&step.name, CompletionKind::Step, step.label.clone().unwrap_or_default()));
        }
    }
}

/// Completion inside a rule: `before` is the rule's text up to the cursor.
fn complete_rule(snapshot: &Snapshot, before: &str, out: &mut Vec<Completion>) {
    let program = &snapshot.analysis.program;
    // The dotted path being written: `applicant.company.` → ["applicant", "company"], "".
    let path_start = before
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_alphanumeric() || *c == '_' || *c == '.')
        .last()
        .map_or(before.len(), |(i, _)| i);
    let path = &before[path_start..];
    let mut segments: Vec<&str> = path.split('.').collect();
    segments.pop(); // the partial word being typed
    if segments.is_empty() {
        for schema in &program.schemas {
            out.push(Completion::new(&schema.name, CompletionKind::Schema, "schema"));
        }
        for (name, ty, doc) in CONTEXT {
            out.push(Completion::new(*name, CompletionKind::Variable, *ty).doc(*doc));
        }
        for (variable, ty) in bound_variables(snapshot, before) {
            out.push(Completion::new(variable, CompletionKind::Variable, type_text(&ty)));
        }
        let mut seen = std::collections::HashSet::new();
        for f in FUNCTIONS.iter().filter(|f| f.receiver.is_none()) {
            let signature = format!("{}({}) -> {}", f.name, f.params.join(", "), f.result);
            if seen.insert(f.name) {
                out.push(
                    Completion::new(f.name, CompletionKind::Function, signature)
                        .doc(f.doc)
                        .snippet(format!("{}($1)", f.name)),
                );
            }
        }
        for word in ["true", "false", "null"] {
            out.push(Completion::new(word, CompletionKind::Keyword, ""));
        }
        return;
    }
    let bound = bound_variables(snapshot, before);
    let root = segments[0];
    let mut ty = if let Some(schema) = program.schema(root) {
        Some(FieldType::Record(schema.fields.clone()))
    } else if let Some((_, ty)) = bound.iter().find(|(v, _)| v == root) {
        Some(ty.clone())
    } else if matches!(root, "materials" | "licences") {
        Some(FieldType::List(Box::new(FieldType::String)))
    } else {
        None
    };
    for segment in &segments[1..] {
        ty = ty.and_then(|t| t.field(segment).map(|f| f.ty.clone()));
    }
    match ty {
        Some(FieldType::Record(fields)) => fields_of(&fields, out),
        Some(FieldType::List(_)) => {
            for (name, body, doc) in LIST_METHODS {
                out.push(Completion::new(*name, CompletionKind::Method, *body).doc(*doc).snippet(*body));
            }
        }
        Some(FieldType::String) => {
            for f in FUNCTIONS.iter().filter(|f| f.receiver == Some("string")) {
                let signature = format!("{}({}) -> {}", f.name, f.params.join(", "), f.result);
                out.push(
                    Completion::new(f.name, CompletionKind::Method, signature)
                        .doc(f.doc)
                        .snippet(format!("{}($1)", f.name)),
                );
            }
        }
        _ => {}
    }
}

fn fields_of(fields: &[SchemaField], out: &mut Vec<Completion>) {
    for field in fields {
        let mut detail = type_text(&field.ty);
        if let Some(pii) = field.pii {
            detail.push_str(&format!(" · personal data ({pii:?}), masked").to_lowercase());
        }
        out.push(Completion::new(&field.name, CompletionKind::Field, detail));
    }
}

/// Variables bound by comprehension macros that are open at the end of `before`:
/// `applicant.children.exists(c, c.` binds `c` to an element of `children`.
fn bound_variables(snapshot: &Snapshot, before: &str) -> Vec<(String, FieldType)> {
    let program = &snapshot.analysis.program;
    let mut out = Vec::new();
    for macro_name in ["exists_one", "exists", "all", "filter", "map"] {
        let needle = format!(".{macro_name}(");
        let mut from = 0;
        while let Some(found) = before[from..].find(&needle) {
            let at = from + found;
            from = at + needle.len();
            // Closed before the cursor: more `)` than `(` after it.
            let rest = &before[from..];
            if rest.matches(')').count() > rest.matches('(').count() {
                continue;
            }
            let Some(variable) = rest.split(',').next().map(str::trim).filter(|v| !v.is_empty()) else { continue };
            let path_start = before[..at]
                .char_indices()
                .rev()
                .take_while(|(_, c)| c.is_alphanumeric() || *c == '_' || *c == '.')
                .last()
                .map_or(at, |(i, _)| i);
            let segments: Vec<&str> = before[path_start..at].split('.').collect();
            let Some(schema) = segments.first().and_then(|root| program.schema(root)) else { continue };
            let mut ty = Some(FieldType::Record(schema.fields.clone()));
            for segment in &segments[1..] {
                ty = ty.and_then(|t| t.field(segment).map(|f| f.ty.clone()));
            }
            if let Some(FieldType::List(element)) = ty {
                out.push((variable.to_string(), *element));
            }
        }
    }
    out
}

/// Where the cursor is: the enclosing blocks, the words of the statement so far, and
/// whether it is inside a rule.
#[derive(Debug, Default)]
struct Context {
    /// The innermost block: `item`, `process`, `materials`, `steps`, `flow`, `parallel`, `if`,
    /// `else`, `department`, `record`; `None` at the top level.
    block: Option<String>,
    /// The item whose block encloses the cursor.
    item: Option<String>,
    /// The statement's words before the cursor (strings as `"`, numbers as written), the
    /// partial word at the cursor left out.
    words: Vec<String>,
    /// Where the rule around the cursor starts, when the cursor is in one.
    rule_start: Option<usize>,
    /// `dept` in `from shared dept.|`: only its data sets are offered, by their own name.
    qualifier: Option<String>,
}

impl Context {
    fn read(text: &str, offset: usize) -> Context {
        let partial = super::word_before(text, offset);
        let before = &text[..partial.start];
        // Blocks: (kind, item name for `item` blocks).
        let mut blocks: Vec<(String, Option<String>)> = Vec::new();
        let mut statement: Vec<(String, usize)> = Vec::new();
        let mut chars = before.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '/' if before[i..].starts_with("//") => {
                    while chars.peek().is_some_and(|(_, c)| *c != '\n') {
                        chars.next();
                    }
                }
                '"' => {
                    let mut closed = false;
                    while let Some((_, c)) = chars.next() {
                        match c {
                            '\\' => {
                                chars.next();
                            }
                            '"' => {
                                closed = true;
                                break;
                            }
                            '\n' => break,
                            _ => {}
                        }
                    }
                    if closed {
                        statement.push(("\"".into(), i));
                    }
                }
                '{' => {
                    let parent = blocks.last().map(|(k, _)| k.as_str());
                    let first = statement.first().map(|(w, _)| w.as_str());
                    let kind = match (first, parent) {
                        (Some(_), Some("record")) | (Some("schema"), None) => "record",
                        (Some("else"), _) if statement.get(1).is_some_and(|(w, _)| w == "if") => "if",
                        (Some(word), _) => word,
                        (None, Some("record")) => "record",
                        (None, _) => "block",
                    };
                    let item = match kind {
                        "item" => statement.get(1).map(|(w, _)| w.clone()),
                        _ => blocks.last().and_then(|(_, item)| item.clone()),
                    };
                    blocks.push((kind.to_string(), item));
                    statement.clear();
                }
                '}' => {
                    blocks.pop();
                    statement.clear();
                }
                '\n' => {
                    // A rule continues on a line starting with `&&` or `||`.
                    let rest = before[i + 1..].trim_start_matches([' ', '\t', '\u{3000}']);
                    if !(rest.starts_with("&&") || rest.starts_with("||")) {
                        statement.clear();
                    }
                }
                ',' | ';' => statement.push((",".into(), i)),
                '-' if before[i..].starts_with("->") => {
                    chars.next();
                    if matches!(blocks.last().map(|(k, _)| k.as_str()), Some("flow" | "parallel" | "if" | "else")) {
                        statement.clear();
                    }
                    statement.push(("->".into(), i));
                }
                '(' => statement.push(("(".into(), i)),
                c if c.is_alphanumeric() || c == '_' => {
                    let mut end = i + c.len_utf8();
                    while let Some(&(j, d)) = chars.peek() {
                        if d.is_alphanumeric() || d == '_' || (d == '.' && !statement.is_empty()) {
                            end = j + d.len_utf8();
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    statement.push((before[i..end].to_string(), i));
                }
                _ => {}
            }
        }
        let block = blocks.last().map(|(k, _)| k.clone());
        let item = blocks.last().and_then(|(_, item)| item.clone());
        // In a rule: after `eligible`, `when` or `if` in this statement, before any `else`
        // that ends it.
        let rule_keyword = statement.iter().rposition(|(w, _)| {
            w == "eligible"
                || w == "when"
                || (w == "if" && matches!(block.as_deref(), Some("flow" | "parallel" | "if" | "else")))
        });
        let rule_start = rule_keyword.and_then(|k| {
            let ended = statement[k + 1..].iter().any(|(w, _)| {
                matches!(
                    w.as_str(),
                    "else" | "tolerated" | "promise" | "optional" | "copies" | "paper" | "copy" | "electronic" | "from"
                )
            });
            (!ended).then(|| statement[k].1 + statement[k].0.len())
        });
        let mut words: Vec<String> = statement.into_iter().map(|(w, _)| w).collect();
        // `from shared psb.|`: the qualifier before the dot narrows the names offered.
        let qualifier = match words.last() {
            Some(w) if w.ends_with('.') && w.len() > 1 => Some(w.trim_end_matches('.').to_string()),
            _ => None,
        };
        if qualifier.is_some() {
            words.pop();
        }
        Context { block, item, words, rule_start, qualifier }
    }
}
