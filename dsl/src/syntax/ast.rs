//! The syntax tree of one flow file: every node keeps its byte span in that file.
//!
//! The tree is what the user wrote, in source order, before any name is resolved: a
//! declaration that repeats a field keeps both copies, so that the checker can point at the
//! second and the formatter can print what is there.

use crate::span::Span;

/// A name as written, with its span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// A string literal: `value` has its escapes resolved, `span` covers the quotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub value: String,
    pub span: Span,
}

/// A number with its span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Number {
    pub value: u32,
    pub span: Span,
}

/// A CEL rule, kept as the source text (`dsl::cel` parses it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CelText {
    pub source: String,
    pub span: Span,
}

/// A comment (`// …`), collected by the splitter so that the formatter can keep it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub text: String,
    pub span: Span,
}

/// One parsed file.
#[derive(Debug, Clone, Default)]
pub struct File {
    pub decls: Vec<Decl>,
    /// Declarations that did not parse; their names (when readable) are still declared so that
    /// references to them do not cascade into "unknown name" errors.
    pub broken: Vec<BrokenDecl>,
    pub comments: Vec<Comment>,
}

impl File {
    /// The spans of every CEL rule in the file, in source order.
    pub fn rule_spans(&self) -> Vec<Span> {
        let mut spans = Vec::new();
        for decl in &self.decls {
            match decl {
                Decl::Item(item) => {
                    for field in &item.fields {
                        match &field.kind {
                            ItemFieldKind::Eligible(rule) => spans.push(rule.expr.span),
                            ItemFieldKind::Materials(materials) => {
                                spans.extend(materials.iter().filter_map(|m| m.condition.as_ref().map(|c| c.span)))
                            }
                            _ => {}
                        }
                    }
                }
                Decl::Process(process) => {
                    for field in &process.fields {
                        match &field.kind {
                            ProcessFieldKind::Eligible(rule) => spans.push(rule.expr.span),
                            ProcessFieldKind::Flow(sequence) => flow_rule_spans(sequence, &mut spans),
                            _ => {}
                        }
                    }
                }
                Decl::Import(_) | Decl::Department(_) | Decl::Schema(_) => {}
            }
        }
        spans
    }
}

fn flow_rule_spans(sequence: &Sequence, spans: &mut Vec<Span>) {
    for node in &sequence.nodes {
        match node {
            FlowNode::Parallel { branches, .. } => branches.iter().for_each(|b| flow_rule_spans(b, spans)),
            FlowNode::Conditional { branches, otherwise, .. } => {
                for (condition, body) in branches {
                    spans.push(condition.span);
                    flow_rule_spans(body, spans);
                }
                if let Some(otherwise) = otherwise {
                    flow_rule_spans(otherwise, spans);
                }
            }
            FlowNode::Item(_) | FlowNode::End(_) => {}
        }
    }
}

#[derive(Debug, Clone)]
pub struct BrokenDecl {
    pub keyword: DeclKind,
    pub name: Option<Ident>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeclKind {
    Import,
    Department,
    Schema,
    Item,
    Process,
}

impl DeclKind {
    pub fn keyword(self) -> &'static str {
        match self {
            DeclKind::Import => "import",
            DeclKind::Department => "department",
            DeclKind::Schema => "schema",
            DeclKind::Item => "item",
            DeclKind::Process => "process",
        }
    }

    pub fn from_keyword(word: &str) -> Option<Self> {
        Some(match word {
            "import" => DeclKind::Import,
            "department" => DeclKind::Department,
            "schema" => DeclKind::Schema,
            "item" => DeclKind::Item,
            "process" => DeclKind::Process,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub enum Decl {
    Import(Import),
    Department(Department),
    Schema(Schema),
    Item(Item),
    Process(Process),
}

impl Decl {
    pub fn span(&self) -> Span {
        match self {
            Decl::Import(d) => d.span,
            Decl::Department(d) => d.span,
            Decl::Schema(d) => d.span,
            Decl::Item(d) => d.span,
            Decl::Process(d) => d.span,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Import {
    pub path: Text,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Department {
    pub name: Ident,
    pub title: Text,
    pub datasets: Vec<Dataset>,
    pub span: Span,
}

/// A data set a department shares with others (数据共享), e.g. the population register.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: Ident,
    pub title: Text,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Schema {
    pub name: Ident,
    pub fields: Vec<Field>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Field {
    pub name: Ident,
    pub ty: TypeExpr,
    pub pii: Option<Ident>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum TypeExpr {
    Primitive { name: String, span: Span },
    List { element: Box<TypeExpr>, span: Span },
    Record { fields: Vec<Field>, span: Span },
}

impl TypeExpr {
    pub fn span(&self) -> Span {
        match self {
            TypeExpr::Primitive { span, .. } | TypeExpr::List { span, .. } | TypeExpr::Record { span, .. } => *span,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Item {
    pub name: Ident,
    pub title: Text,
    /// `extends base`: a variant that starts from `base` and gives only what differs.
    pub base: Option<Ident>,
    pub fields: Vec<ItemField>,
    pub span: Span,
}

/// One line (or block) inside an `item { … }`, in source order.
#[derive(Debug, Clone)]
pub struct ItemField {
    pub kind: ItemFieldKind,
    /// The span of the whole field, keyword included.
    pub span: Span,
    /// The span of the keyword alone.
    pub keyword: Span,
}

#[derive(Debug, Clone)]
pub enum ItemFieldKind {
    Code(Text),
    Department(Ident),
    Type(Ident),
    Handling(Ident),
    LegalLimit(Number),
    PromisedLimit(Number),
    Visits(Number),
    Fee(Fee),
    Basis(Text),
    Online(bool),
    Supplement(Ident),
    Eligible(EligibilityRule),
    Materials(Vec<Material>),
    Steps(Vec<StepStmt>),
    Produces { name: Ident, title: Text },
    Guide(GuideField),
}

/// A field only the published guide (办事指南) reads, in an item or a process.
#[derive(Debug, Clone)]
pub enum GuideField {
    /// 服务对象: `natural_persons`, `legal_persons`.
    Serves(Vec<Ident>),
    /// 办理地点.
    Where(Text),
    /// 办理时间.
    Hours(Text),
    /// 咨询方式.
    Contact(Text),
    /// 监督投诉方式.
    Complaint(Text),
    /// 网上办理地址.
    Url(Text),
    /// A frequent question and its answer (常见问题); may be given many times.
    Faq(Text, Text),
}

impl GuideField {
    pub fn keyword(&self) -> &'static str {
        match self {
            GuideField::Serves(_) => "serves",
            GuideField::Where(_) => "where",
            GuideField::Hours(_) => "hours",
            GuideField::Contact(_) => "contact",
            GuideField::Complaint(_) => "complaint",
            GuideField::Url(_) => "url",
            GuideField::Faq(..) => "faq",
        }
    }
}

impl ItemFieldKind {
    pub fn keyword(&self) -> &'static str {
        match self {
            ItemFieldKind::Code(_) => "code",
            ItemFieldKind::Department(_) => "department",
            ItemFieldKind::Type(_) => "type",
            ItemFieldKind::Handling(_) => "handling",
            ItemFieldKind::LegalLimit(_) => "legal_limit",
            ItemFieldKind::PromisedLimit(_) => "promised_limit",
            ItemFieldKind::Visits(_) => "visits",
            ItemFieldKind::Fee(_) => "fee",
            ItemFieldKind::Basis(_) => "basis",
            ItemFieldKind::Online(_) => "online",
            ItemFieldKind::Supplement(_) => "supplement",
            ItemFieldKind::Eligible(_) => "eligible",
            ItemFieldKind::Materials(_) => "materials",
            ItemFieldKind::Steps(_) => "steps",
            ItemFieldKind::Produces { .. } => "produces",
            ItemFieldKind::Guide(field) => field.keyword(),
        }
    }
}

/// A fee: free, or an amount in yuan as written (kept as text to avoid float rounding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fee {
    Free,
    Yuan(String),
}

/// A CEL rule with the message shown when it is false.
#[derive(Debug, Clone)]
pub struct EligibilityRule {
    pub expr: CelText,
    pub message: Option<Text>,
}

#[derive(Debug, Clone)]
pub struct Material {
    pub name: Ident,
    pub title: Text,
    pub source: Option<MaterialSource>,
    pub condition: Option<CelText>,
    pub tolerated: bool,
    pub promise: bool,
    pub optional: bool,
    pub copies: Option<Number>,
    pub form: Option<Ident>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum MaterialSource {
    Applicant { span: Span },
    Shared { department: Ident, dataset: Ident, span: Span },
    Licence { item: Ident, licence: Ident, span: Span },
}

#[derive(Debug, Clone)]
pub enum StepStmt {
    /// `accept -> review -> end`
    Chain { steps: Vec<StepRef>, span: Span },
    /// `review "审查" back accept cosign tax by psb`
    Attrs { step: Ident, attrs: Vec<StepAttr>, span: Span },
}

impl StepStmt {
    pub fn span(&self) -> Span {
        match self {
            StepStmt::Chain { span, .. } | StepStmt::Attrs { span, .. } => *span,
        }
    }
}

#[derive(Debug, Clone)]
pub enum StepRef {
    Step(Ident),
    End(Span),
}

#[derive(Debug, Clone)]
pub enum StepAttr {
    Label(Text),
    Back(Vec<Ident>),
    Cosign(Vec<Ident>),
    By(Ident),
    /// `limit N workdays`: the step's own time limit.
    Limit(Number),
}

#[derive(Debug, Clone)]
pub struct Process {
    pub name: Ident,
    pub title: Text,
    /// `extends base`: a variant of another process.
    pub base: Option<Ident>,
    pub fields: Vec<ProcessField>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct ProcessField {
    pub kind: ProcessFieldKind,
    pub span: Span,
    pub keyword: Span,
}

#[derive(Debug, Clone)]
pub enum ProcessFieldKind {
    Code(Text),
    Window(Ident),
    Sla(Number),
    Visits(Number),
    Eligible(EligibilityRule),
    Flow(Sequence),
    Warn(Vec<WarnRule>),
    /// `replace a with b` (variants only): `b` runs where the base runs `a`.
    Replace {
        item: Ident,
        with: Ident,
    },
    Guide(GuideField),
}

impl ProcessFieldKind {
    pub fn keyword(&self) -> &'static str {
        match self {
            ProcessFieldKind::Code(_) => "code",
            ProcessFieldKind::Window(_) => "window",
            ProcessFieldKind::Sla(_) => "sla",
            ProcessFieldKind::Visits(_) => "visits",
            ProcessFieldKind::Eligible(_) => "eligible",
            ProcessFieldKind::Flow(_) => "flow",
            ProcessFieldKind::Warn(_) => "warn",
            ProcessFieldKind::Replace { .. } => "replace",
            ProcessFieldKind::Guide(field) => field.keyword(),
        }
    }
}

/// `a -> b -> parallel { … } -> end`
#[derive(Debug, Clone)]
pub struct Sequence {
    pub nodes: Vec<FlowNode>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum FlowNode {
    Item(Ident),
    End(Span),
    Parallel { branches: Vec<Sequence>, span: Span },
    Conditional { branches: Vec<(CelText, Sequence)>, otherwise: Option<Sequence>, span: Span },
}

impl FlowNode {
    pub fn span(&self) -> Span {
        match self {
            FlowNode::Item(i) => i.span,
            FlowNode::End(span) | FlowNode::Parallel { span, .. } | FlowNode::Conditional { span, .. } => *span,
        }
    }
}

#[derive(Debug, Clone)]
pub struct WarnRule {
    pub level: Ident,
    pub at: WarnAt,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarnAt {
    PercentOfSla(Number),
    Overdue,
}
