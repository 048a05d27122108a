//! Rules: the eligibility rules (受理条件), material conditions and routing guards of a compiled
//! flow, compiled once per flow version and evaluated many times, with explanations.
//!
//! This is the only crate that knows the `cel` crate's evaluator (pinned to an exact version:
//! its API changes often); callers see [`RuleSet`], [`Facts`], [`Bound`] and the errors here.
//!
//! ```text
//! let rules = RuleSet::new(&flow, calendar)?;          // once per deployed flow version
//! let bound = rules.bind(&facts)?;                     // once per case state
//! let ok = bound.evaluate(rules.id(&RuleKey::ItemEligibility("x".into())).unwrap())?;
//! ```
//!
//! Type errors are found by `dsl`'s checker before a flow is deployed; at run time a rule can
//! still fail on data (a missing field, a division by zero) and that is an [`EvalError`], never
//! a panic: evaluation runs under `catch_unwind`, as the `cel` crate has panicked on odd input.

pub mod domain;
pub mod facts;

use std::collections::HashMap;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use calendar::{Calendar, Date};
use cel::objects::Value;
use cel::{Context, ExecutionError, Program};
use dsl::cel::syntax::{BinaryOp, Expr, ExprKind};
use dsl::compile::CompiledFlow;
use dsl::model::{Flow, Rule};
use serde::{Deserialize, Serialize};

pub use facts::FactError;

/// Which rule of a flow.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum RuleKey {
    /// The process's own eligibility rule.
    ProcessEligibility,
    /// An item's eligibility rule (受理条件).
    ItemEligibility(String),
    /// When a material is required.
    MaterialCondition { item: String, material: String },
    /// The guard of a conditional branch, numbered in source order.
    Guard(usize),
}

/// A handle to a compiled rule, for the hot path (no hashing of names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RuleId(usize);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("rule `{source_text}` cannot be compiled: {message}")]
    Compile { source_text: String, message: String },
}

/// Why a rule could not be evaluated. Messages name fields and types, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "kind", content = "message")]
pub enum EvalError {
    /// Values of the wrong types met: the checker should have caught this.
    #[error("type error: {0}")]
    Type(String),
    /// The case lacks data the rule reads.
    #[error("missing data: {0}")]
    Missing(String),
    /// A value the operation cannot take: division by zero, an index out of range, …
    #[error("cannot evaluate: {0}")]
    Value(String),
    /// A working day in a year whose calendar is not loaded, or a bad date.
    #[error("{0}")]
    Calendar(String),
    #[error("the rule gave a {0}, not true or false")]
    NotBoolean(String),
    #[error("the evaluator failed on this rule")]
    Panicked,
}

/// What a case offers to rules.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The value of each schema by name, e.g. `{"applicant": {...}}`.
    pub data: serde_json::Map<String, serde_json::Value>,
    pub materials: Vec<String>,
    pub licences: Vec<String>,
    pub today: Option<Date>,
}

/// Top-level connective of a rule, for explanations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Connective {
    And,
    Or,
}

/// One clause of a rule's top-level `&&`/`||` chain.
#[derive(Debug)]
struct Clause {
    source: String,
    span: Range<usize>,
    program: Program,
}

#[derive(Debug)]
struct Compiled {
    key: RuleKey,
    source: String,
    message: Option<String>,
    program: Program,
    connective: Option<Connective>,
    clauses: Vec<Clause>,
}

/// Every rule of one compiled flow, ready to evaluate. Build it once per flow version.
pub struct RuleSet {
    rules: Vec<Compiled>,
    index: HashMap<RuleKey, RuleId>,
    /// Guards by their source text, as a compiled flow's transitions name them.
    guards: HashMap<String, RuleId>,
    /// Functions (standard and domain) are registered once here; evaluations run in child
    /// scopes of it, which cost nothing to create.
    root: Context<'static, 'static>,
    schemas: Vec<dsl::model::Schema>,
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet").field("rules", &self.rules.len()).finish()
    }
}

impl RuleSet {
    /// Compiles every rule of `flow`.
    pub fn new(flow: &CompiledFlow, calendar: Arc<Calendar>) -> Result<RuleSet, RuleError> {
        let mut rules: Vec<(RuleKey, &Rule)> = Vec::new();
        if let Some(rule) = &flow.process.eligibility {
            rules.push((RuleKey::ProcessEligibility, rule));
        }
        for item in &flow.items {
            if let Some(rule) = &item.eligibility {
                rules.push((RuleKey::ItemEligibility(item.name.clone()), rule));
            }
            for material in &item.materials {
                if let Some(rule) = &material.condition {
                    rules.push((
                        RuleKey::MaterialCondition { item: item.name.clone(), material: material.name.clone() },
                        rule,
                    ));
                }
            }
        }
        let mut guards = Vec::new();
        collect_guards(&flow.process.flow, &mut guards);
        rules.extend(guards.into_iter().enumerate().map(|(i, rule)| (RuleKey::Guard(i), rule)));
        let mut set = RuleSet::empty(calendar, flow.schemas.clone());
        for (key, rule) in rules {
            set.add(key, &rule.source, rule.message.clone())?;
        }
        Ok(set)
    }

    /// A set with no rules yet, for rules added one by one.
    pub fn empty(calendar: Arc<Calendar>, schemas: Vec<dsl::model::Schema>) -> RuleSet {
        RuleSet {
            rules: Vec::new(),
            index: HashMap::new(),
            guards: HashMap::new(),
            root: root_context(calendar),
            schemas,
        }
    }

    /// Compiles one rule under `key`.
    pub fn add(&mut self, key: RuleKey, source: &str, message: Option<String>) -> Result<RuleId, RuleError> {
        let compile_error = |message: String| RuleError::Compile { source_text: source.to_string(), message };
        let parsed = dsl::cel::parse_rule(source).map_err(|e| compile_error(e[0].message.clone()))?;
        let program = compile(&desugar(source, &parsed.expr)).map_err(compile_error)?;
        let (connective, parts) = split_clauses(&parsed.expr);
        let clauses = if parts.len() > 1 {
            parts
                .into_iter()
                .map(|part| {
                    let text = &source[part.span.clone()];
                    let clause_expr = dsl::cel::parse_rule(text).map_err(|e| compile_error(e[0].message.clone()))?;
                    let program = compile(&desugar(text, &clause_expr.expr)).map_err(compile_error)?;
                    Ok(Clause { source: text.to_string(), span: part.span.clone(), program })
                })
                .collect::<Result<Vec<_>, RuleError>>()?
        } else {
            Vec::new()
        };
        let id = RuleId(self.rules.len());
        self.rules.push(Compiled {
            key: key.clone(),
            source: source.to_string(),
            message,
            program,
            connective,
            clauses,
        });
        if let RuleKey::Guard(_) = key {
            self.guards.insert(source.to_string(), id);
        }
        self.index.insert(key, id);
        Ok(id)
    }

    pub fn id(&self, key: &RuleKey) -> Option<RuleId> {
        self.index.get(key).copied()
    }

    /// The guard a transition names by its source text.
    pub fn guard(&self, source: &str) -> Option<RuleId> {
        self.guards.get(source).copied()
    }

    pub fn keys(&self) -> impl Iterator<Item = &RuleKey> {
        self.rules.iter().map(|r| &r.key)
    }

    pub fn source(&self, id: RuleId) -> &str {
        &self.rules[id.0].source
    }

    /// Binds a case's facts: the data is converted by the schemas once, for every rule
    /// evaluated on it.
    pub fn bind(&self, facts: &Facts) -> Result<Bound<'_>, FactError> {
        let mut context = self.root.new_inner_scope();
        for (name, value) in &facts.data {
            let schema =
                self.schemas.iter().find(|s| &s.name == name).ok_or(FactError::Unknown { path: name.clone() })?;
            context.add_variable_from_value(name.clone(), facts::record(name, value, &schema.fields)?);
        }
        // A schema the applicant gave nothing for is an empty record, so that `has(x.field)`
        // answers false instead of failing on an unknown name.
        for schema in &self.schemas {
            if !facts.data.contains_key(&schema.name) {
                context.add_variable_from_value(
                    schema.name.clone(),
                    facts::record(&schema.name, &serde_json::json!({}), &[])?,
                );
            }
        }
        context.add_variable_from_value("materials", facts::strings(&facts.materials));
        context.add_variable_from_value("licences", facts::strings(&facts.licences));
        if let Some(today) = facts.today {
            context.add_variable_from_value("today", Value::String(Arc::new(today.to_string())));
        }
        Ok(Bound { set: self, context })
    }
}

/// A rule set with one case's facts bound.
pub struct Bound<'r> {
    set: &'r RuleSet,
    context: Context<'r, 'static>,
}

/// Why a rule is false: the clauses of its top-level `&&`/`||` that failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Explanation {
    pub holds: bool,
    pub source: String,
    /// The item's message for a refusal (`eligible … else "…"`).
    pub message: Option<String>,
    pub connective: Option<Connective>,
    pub failing: Vec<FailingClause>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FailingClause {
    pub source: String,
    /// Byte range of the clause in the rule's text.
    #[cfg_attr(feature = "openapi", schema(value_type = ByteRange))]
    pub span: Range<usize>,
    /// Why it failed when it did not simply evaluate to false.
    pub error: Option<EvalError>,
}

/// How a byte range (`Range<usize>`) is written: `{start, end}`, end exclusive. Only the
/// OpenAPI document names it.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ByteRange {
    pub start: usize,
    pub end: usize,
}

impl Bound<'_> {
    /// Evaluates a rule to true or false.
    pub fn evaluate(&self, id: RuleId) -> Result<bool, EvalError> {
        run(&self.set.rules[id.0].program, &self.context)
    }

    /// Evaluates a rule and, when it does not hold, names the clauses that failed.
    pub fn explain(&self, id: RuleId) -> Result<Explanation, EvalError> {
        let rule = &self.set.rules[id.0];
        let outcome = self.evaluate(id);
        let holds = matches!(outcome, Ok(true));
        let mut failing = Vec::new();
        if !holds {
            for clause in &rule.clauses {
                match run(&clause.program, &self.context) {
                    Ok(true) => {}
                    Ok(false) => failing.push(FailingClause {
                        source: clause.source.clone(),
                        span: clause.span.clone(),
                        error: None,
                    }),
                    Err(e) => failing.push(FailingClause {
                        source: clause.source.clone(),
                        span: clause.span.clone(),
                        error: Some(e),
                    }),
                }
            }
            if rule.clauses.is_empty() {
                failing.push(FailingClause {
                    source: rule.source.clone(),
                    span: 0..rule.source.len(),
                    error: outcome.as_ref().err().cloned(),
                });
            }
        }
        Ok(Explanation {
            holds,
            source: rule.source.clone(),
            message: rule.message.clone(),
            connective: rule.connective,
            failing,
        })
    }
}

fn run(program: &Program, context: &Context) -> Result<bool, EvalError> {
    match catch_unwind(AssertUnwindSafe(|| program.execute(context))) {
        Ok(Ok(Value::Bool(b))) => Ok(b),
        Ok(Ok(other)) => Err(EvalError::NotBoolean(type_name(&other).to_string())),
        Ok(Err(error)) => Err(classify(&error)),
        Err(_) => Err(EvalError::Panicked),
    }
}

fn compile(source: &str) -> Result<Program, String> {
    match catch_unwind(AssertUnwindSafe(|| Program::compile(source))) {
        Ok(Ok(program)) => Ok(program),
        Ok(Err(errors)) => Err(errors.to_string()),
        Err(_) => Err("the CEL compiler failed on this rule".into()),
    }
}

/// The `&&` or `||` chain at the top of a rule, flattened.
fn split_clauses(expr: &Expr) -> (Option<Connective>, Vec<&Expr>) {
    let op = match &expr.kind {
        ExprKind::Binary { op: BinaryOp::And, .. } => BinaryOp::And,
        ExprKind::Binary { op: BinaryOp::Or, .. } => BinaryOp::Or,
        _ => return (None, vec![expr]),
    };
    fn flatten<'e>(expr: &'e Expr, op: BinaryOp, out: &mut Vec<&'e Expr>) {
        match &expr.kind {
            ExprKind::Binary { op: o, left, right } if *o == op => {
                flatten(left, op, out);
                flatten(right, op, out);
            }
            _ => out.push(expr),
        }
    }
    let mut parts = Vec::new();
    flatten(expr, op, &mut parts);
    (Some(if op == BinaryOp::And { Connective::And } else { Connective::Or }), parts)
}

/// Rewrites the calls that read the case context into plain CEL: `has_material(x)` becomes
/// `(x in materials)`, `has_licence(x)` becomes `(x in licences)`.
fn desugar(source: &str, expr: &Expr) -> String {
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    collect_edits(source, expr, &mut edits);
    if edits.is_empty() {
        return source.to_string();
    }
    edits.sort_by_key(|(range, _)| range.start);
    let mut out = String::with_capacity(source.len() + 16);
    let mut at = 0;
    for (range, replacement) in edits {
        if range.start < at {
            continue;
        }
        out.push_str(&source[at..range.start]);
        out.push_str(&replacement);
        at = range.end;
    }
    out.push_str(&source[at..]);
    out
}

fn collect_edits(source: &str, expr: &Expr, edits: &mut Vec<(Range<usize>, String)>) {
    if let ExprKind::Call { target: None, function, args, .. } = &expr.kind {
        let list = match function.as_str() {
            "has_material" => Some("materials"),
            "has_licence" => Some("licences"),
            _ => None,
        };
        if let (Some(list), [arg]) = (list, args.as_slice()) {
            let inner = desugar(&source[arg.span.clone()], &shifted(arg, arg.span.start));
            edits.push((expr.span.clone(), format!("(({inner}) in {list})")));
            return;
        }
    }
    for child in children(expr) {
        collect_edits(source, child, edits);
    }
}

/// A copy of `expr` with spans relative to `base`.
fn shifted(expr: &Expr, base: usize) -> Expr {
    let mut copy = expr.clone();
    shift(&mut copy, base);
    copy
}

fn shift(expr: &mut Expr, base: usize) {
    expr.span = expr.span.start - base..expr.span.end - base;
    match &mut expr.kind {
        ExprKind::Select { operand, field_span, .. } => {
            *field_span = field_span.start - base..field_span.end - base;
            shift(operand, base);
        }
        ExprKind::Call { target, function_span, args, .. } => {
            *function_span = function_span.start.saturating_sub(base)..function_span.end.saturating_sub(base);
            if let Some(t) = target {
                shift(t, base);
            }
            args.iter_mut().for_each(|a| shift(a, base));
        }
        ExprKind::Index { operand, index, .. } => {
            shift(operand, base);
            shift(index, base);
        }
        ExprKind::List(items) => items.iter_mut().for_each(|e| shift(e, base)),
        ExprKind::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            shift(k, base);
            shift(v, base);
        }),
        ExprKind::Struct { fields, .. } => fields.iter_mut().for_each(|(_, v)| shift(v, base)),
        ExprKind::Unary { operand, .. } => shift(operand, base),
        ExprKind::Binary { left, right, .. } => {
            shift(left, base);
            shift(right, base);
        }
        ExprKind::Ternary { condition, then, otherwise } => {
            shift(condition, base);
            shift(then, base);
            shift(otherwise, base);
        }
        _ => {}
    }
}

fn children(expr: &Expr) -> Vec<&Expr> {
    match &expr.kind {
        ExprKind::Select { operand, .. } => vec![operand],
        ExprKind::Call { target, args, .. } => target.iter().map(|t| &**t).chain(args.iter()).collect(),
        ExprKind::Index { operand, index, .. } => vec![operand, index],
        ExprKind::List(items) => items.iter().collect(),
        ExprKind::Map(entries) => entries.iter().flat_map(|(k, v)| [k, v]).collect(),
        ExprKind::Struct { fields, .. } => fields.iter().map(|(_, v)| v).collect(),
        ExprKind::Unary { operand, .. } => vec![operand],
        ExprKind::Binary { left, right, .. } => vec![left, right],
        ExprKind::Ternary { condition, then, otherwise } => vec![condition, then, otherwise],
        _ => Vec::new(),
    }
}

fn collect_guards<'f>(flow: &'f Flow, out: &mut Vec<&'f Rule>) {
    match flow {
        Flow::Item(_) | Flow::End => {}
        Flow::Sequence(nodes) | Flow::Parallel(nodes) => nodes.iter().for_each(|n| collect_guards(n, out)),
        Flow::Choice { branches, otherwise } => {
            for (rule, branch) in branches {
                out.push(rule);
                collect_guards(branch, out);
            }
            if let Some(branch) = otherwise {
                collect_guards(branch, out);
            }
        }
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::List(_) => "list",
        Value::Map(_) => "map",
        Value::Function(..) => "function",
        Value::Int(_) => "int",
        Value::UInt(_) => "uint",
        Value::Float(_) => "double",
        Value::String(_) => "string",
        Value::Bytes(_) => "bytes",
        Value::Bool(_) => "bool",
        Value::Opaque(_) | Value::Struct(_) => "object",
        Value::Null => "null",
    }
}

const ORDERINGS: [&str; 4] = ["_<_", "_<=_", "_>_", "_>=_"];

/// Sorts the evaluator's errors, keeping values (possibly personal data) out of the message.
fn classify(error: &ExecutionError) -> EvalError {
    #[allow(deprecated)]
    match error {
        ExecutionError::NoSuchKey(key) => EvalError::Missing(format!("no field `{key}`")),
        ExecutionError::UndeclaredReference(name) => EvalError::Missing(format!("no value for `{name}`")),
        ExecutionError::DivisionByZero(_) => EvalError::Value("division by zero".into()),
        ExecutionError::RemainderByZero(_) => EvalError::Value("remainder by zero".into()),
        ExecutionError::Overflow(op, ..) => EvalError::Value(format!("overflow in `{op}`")),
        ExecutionError::IndexOutOfBounds(_) => EvalError::Value("index out of range".into()),
        ExecutionError::DuplicateKey(_) => EvalError::Value("a map literal repeats a key".into()),
        ExecutionError::FunctionError { function, message } => {
            if message.contains("calendar") || message.contains("schedule") || message.contains("date") {
                EvalError::Calendar(message.clone())
            } else {
                EvalError::Value(format!("`{function}`: {message}"))
            }
        }
        // Numbers of any kind are ordered, but NaN (from `0.0 / 0.0`) is not: the evaluator then
        // finds "no overload" although the types are right.
        ExecutionError::NoSuchOverload(overload)
            if ORDERINGS.contains(&overload.function())
                && overload.argument_types().iter().all(|t| matches!(t.as_str(), "int" | "uint" | "double")) =>
        {
            EvalError::Value("a comparison with NaN (not a number)".into())
        }
        ExecutionError::NoSuchOverload(overload) => EvalError::Type(overload.to_string()),
        ExecutionError::UnsupportedBinaryOperator(op, a, b) => {
            EvalError::Type(format!("`{op}` on a {} and a {}", type_name(a), type_name(b)))
        }
        ExecutionError::UnexpectedType { got, want } => EvalError::Type(format!("a {got} where a {want} is needed")),
        ExecutionError::ValuesNotComparable(a, b) => {
            EvalError::Type(format!("a {} cannot be compared with a {}", type_name(a), type_name(b)))
        }
        ExecutionError::UnsupportedIndex(a, b) => {
            EvalError::Type(format!("a {} cannot index a {}", type_name(a), type_name(b)))
        }
        ExecutionError::InvalidArgumentCount { expected, actual } => {
            EvalError::Type(format!("{actual} arguments where {expected} are needed"))
        }
        ExecutionError::UnsupportedTargetType { target } => {
            EvalError::Type(format!("a {} cannot do this", type_name(target)))
        }
        ExecutionError::NotSupportedAsMethod { method, target } => {
            EvalError::Type(format!("`{method}` is not a method of a {}", type_name(target)))
        }
        ExecutionError::UnsupportedKeyType(v) => EvalError::Type(format!("a {} cannot be a map key", type_name(v))),
        ExecutionError::UnsupportedUnaryOperator(op, v) => EvalError::Type(format!("`{op}` on a {}", type_name(v))),
        _ => EvalError::Type("an operation the evaluator does not support here".into()),
    }
}

/// The root context: the standard library and the domain functions.
fn root_context(calendar: Arc<Calendar>) -> Context<'static, 'static> {
    let mut context = Context::default();
    let date = |text: &str| -> Result<Date, ExecutionError> {
        calendar::parse_date(text).map_err(|_| ExecutionError::FunctionError {
            function: "date".into(),
            message: "not a date (YYYY-MM-DD)".into(),
        })
    };
    // Registering a fresh name cannot fail; a failure would leave the function unknown, which
    // evaluation reports.
    let _ =
        context.add_function("age_from_id", move |id: Arc<String>, on: Arc<String>| -> Result<Value, ExecutionError> {
            Ok(Value::Int(domain::age_from_id(&id, date(&on)?)))
        });
    let _ =
        context.add_function("age_on", move |birth: Arc<String>, on: Arc<String>| -> Result<Value, ExecutionError> {
            Ok(Value::Int(domain::age_on(date(&birth)?, date(&on)?)))
        });
    let _ = context.add_function("id_valid", |id: Arc<String>| Value::Bool(domain::id_valid(&id)));
    let _ = context.add_function("in_region", |code: Arc<String>, prefix: Arc<String>| {
        Value::Bool(domain::in_region(&code, &prefix))
    });
    let _ = context.add_function("date", move |text: Arc<String>| -> Result<Value, ExecutionError> {
        Ok(Value::String(Arc::new(date(&text)?.to_string())))
    });
    let _ = context.add_function(
        "workdays_between",
        move |from: Arc<String>, to: Arc<String>| -> Result<Value, ExecutionError> {
            domain::workdays_between(&calendar, date(&from)?, date(&to)?).map(Value::Int).map_err(|e| {
                ExecutionError::FunctionError { function: "workdays_between".into(), message: format!("calendar: {e}") }
            })
        },
    );
    context
}
