//! A static type checker for rules: the `cel` crate evaluates but does not check, so a mistake
//! such as `applicant.age >= "18"` would only show when a citizen is wrongly refused.
//!
//! Types come from the applicant schema and the case context ([`CONTEXT`]); functions are the
//! CEL standard ones rules need plus the domain functions of [`FUNCTIONS`]. The checker is
//! sound for the evaluator: a rule it accepts never fails at run time with a type error on
//! data that conforms to the schema (a property test in the `rules` crate holds it to that).
//! Where it cannot know a type (`dyn`), it stays silent rather than guess.

use std::fmt;
use std::ops::Range;

use super::syntax::{BinaryOp, Expr, ExprKind, UnaryOp};
use crate::diagnostic::count;
use crate::model::{FieldType, SchemaField};

#[derive(Debug, Clone, PartialEq)]
pub enum Type<'s> {
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Null,
    /// A calendar date, `YYYY-MM-DD` at run time.
    Date,
    List(Box<Type<'s>>),
    Map(Box<Type<'s>>, Box<Type<'s>>),
    Record(&'s [SchemaField]),
    /// Unknown: anything goes, nothing is reported.
    Dyn,
}

impl fmt::Display for Type<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Bool => f.write_str("bool"),
            Type::Int => f.write_str("int"),
            Type::Uint => f.write_str("uint"),
            Type::Double => f.write_str("double"),
            Type::String => f.write_str("string"),
            Type::Bytes => f.write_str("bytes"),
            Type::Null => f.write_str("null"),
            Type::Date => f.write_str("date"),
            Type::List(t) => write!(f, "list<{t}>"),
            Type::Map(k, v) => write!(f, "map<{k}, {v}>"),
            Type::Record(_) => f.write_str("record"),
            Type::Dyn => f.write_str("dyn"),
        }
    }
}

/// A type with its article, for messages: "an `int`", "a `string`".
struct A<'a, 's>(&'a Type<'s>);

impl fmt::Display for A<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.0.to_string();
        let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
        write!(f, "{article} `{name}`")
    }
}

impl<'s> Type<'s> {
    pub fn of_field(ty: &'s FieldType) -> Type<'s> {
        match ty {
            FieldType::String => Type::String,
            FieldType::Int => Type::Int,
            FieldType::Double => Type::Double,
            FieldType::Bool => Type::Bool,
            FieldType::Date => Type::Date,
            FieldType::List(element) => Type::List(Box::new(Type::of_field(element))),
            FieldType::Record(fields) => Type::Record(fields),
        }
    }

    fn is_numeric(&self) -> bool {
        matches!(self, Type::Int | Type::Uint | Type::Double)
    }

    /// Whether values of the two types can be compared for equality or order without a
    /// type error (numbers of any kind compare with each other).
    fn comparable(&self, other: &Type<'s>) -> bool {
        match (self, other) {
            (Type::Dyn, _) | (_, Type::Dyn) => true,
            (a, b) if a.is_numeric() && b.is_numeric() => true,
            (Type::List(a), Type::List(b)) => a.comparable(b),
            (Type::Map(ak, av), Type::Map(bk, bv)) => ak.comparable(bk) && av.comparable(bv),
            (Type::Record(a), Type::Record(b)) => std::ptr::eq(*a, *b),
            (a, b) => a == b,
        }
    }
}

/// The case values every rule may read besides the schemas.
pub const CONTEXT: &[(&str, &str, &str)] = &[
    ("today", "date", "the date the rule is evaluated on"),
    ("materials", "list<string>", "names of the materials the applicant has supplied"),
    ("licences", "list<string>", "names of the licences the applicant holds (`item.licence`)"),
];

fn context_type(name: &str) -> Option<Type<'static>> {
    match name {
        "today" => Some(Type::Date),
        "materials" | "licences" => Some(Type::List(Box::new(Type::String))),
        _ => None,
    }
}

/// A function rules may call: name, receiver (for `x.f(…)`), parameters, result, meaning.
pub struct Function {
    pub name: &'static str,
    pub receiver: Option<&'static str>,
    pub params: &'static [&'static str],
    pub result: &'static str,
    pub doc: &'static str,
}

const fn function(
    name: &'static str,
    params: &'static [&'static str],
    result: &'static str,
    doc: &'static str,
) -> Function {
    Function { name, receiver: None, params, result, doc }
}

const fn method(
    receiver: &'static str,
    name: &'static str,
    params: &'static [&'static str],
    result: &'static str,
    doc: &'static str,
) -> Function {
    Function { name, receiver: Some(receiver), params, result, doc }
}

/// Every function rules may call, standard and domain, with its signature.
pub const FUNCTIONS: &[Function] = &[
    function("size", &["string"], "int", "the number of characters of a string"),
    function("size", &["list"], "int", "the number of elements of a list"),
    function("size", &["map"], "int", "the number of entries of a map"),
    method("string", "size", &[], "int", "the number of characters of a string"),
    method("list", "size", &[], "int", "the number of elements of a list"),
    method("string", "contains", &["string"], "bool", "whether the string contains the other"),
    method("string", "startsWith", &["string"], "bool", "whether the string starts with the other"),
    method("string", "endsWith", &["string"], "bool", "whether the string ends with the other"),
    method("string", "matches", &["string"], "bool", "whether the string matches the regular expression"),
    function("int", &["double"], "int", "a double truncated to an int"),
    function("int", &["string"], "int", "an int parsed from a string (an error if it is not one)"),
    function("int", &["uint"], "int", "a uint as an int"),
    function("double", &["int"], "double", "an int as a double"),
    function("double", &["uint"], "double", "a uint as a double"),
    function("double", &["string"], "double", "a double parsed from a string"),
    function("string", &["int"], "string", "an int as text"),
    function("string", &["double"], "string", "a double as text"),
    function("string", &["bool"], "string", "a bool as text"),
    function("age_from_id", &["string", "date"], "int", "age in whole years on a date, from the birth date in an 18-digit Chinese ID number (GB 11643); -1 if the number has none"),
    function("age_on", &["date", "date"], "int", "age in whole years on a date (second) of someone born on a date (first)"),
    function("id_valid", &["string"], "bool", "whether an 18-digit ID number is well formed and its check digit right (GB 11643)"),
    function("in_region", &["string", "string"], "bool", "whether a region code (行政区划代码, or an ID number) lies in the region of a code prefix, e.g. `in_region(code, \"3301\")`"),
    function("workdays_between", &["date", "date"], "int", "working days after the first date up to and including the second, on the official calendar"),
    function("date", &["string"], "date", "a date from `YYYY-MM-DD` text"),
    function("has_licence", &["string"], "bool", "whether the applicant holds the licence `item.licence`"),
    function("has_material", &["string"], "bool", "whether the applicant has supplied the material"),
];

/// Macros: receiver, bound variable, body.
const MACROS: &[&str] = &["all", "exists", "exists_one", "map", "filter"];

fn parse_type(name: &str) -> Type<'static> {
    match name {
        "bool" => Type::Bool,
        "int" => Type::Int,
        "uint" => Type::Uint,
        "double" => Type::Double,
        "string" => Type::String,
        "date" => Type::Date,
        "list" => Type::List(Box::new(Type::Dyn)),
        "map" => Type::Map(Box::new(Type::Dyn), Box::new(Type::Dyn)),
        _ => Type::Dyn,
    }
}

/// Whether a value of type `actual` is accepted where `expected` is declared.
fn accepts(expected: &Type, actual: &Type) -> bool {
    match (expected, actual) {
        (Type::Dyn, _) | (_, Type::Dyn) => true,
        (Type::List(e), Type::List(a)) => accepts(e, a),
        (Type::Map(ek, ev), Type::Map(ak, av)) => accepts(ek, ak) && accepts(ev, av),
        (Type::Record(_), Type::Record(_)) => true,
        (e, a) => e == a,
    }
}

/// What is wrong with a rule, at a byte range of its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeError {
    pub kind: TypeErrorKind,
    pub span: Range<usize>,
    pub message: String,
    pub label: String,
    pub help: Option<String>,
    /// A replacement that resolves it: a byte range of the rule and the text to put there.
    pub fix: Option<(Range<usize>, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeErrorKind {
    UnknownField,
    UnknownFunction,
    ArgumentCount,
    Mismatch,
    NotBoolean,
}

/// Names a rule can read: the schemas by name.
pub struct Scope<'s> {
    pub schemas: Vec<(&'s str, &'s [SchemaField])>,
}

/// Checks a rule that must be boolean; returns every error found.
pub fn check_rule<'s>(expr: &Expr, scope: &Scope<'s>) -> Vec<TypeError> {
    let mut checker = Checker { scope, bound: Vec::new(), errors: Vec::new() };
    let ty = checker.expr(expr);
    if !accepts(&Type::Bool, &ty) {
        checker.errors.push(TypeError {
            kind: TypeErrorKind::NotBoolean,
            span: expr.span.clone(),
            message: format!("this rule is {}, not a `bool`", A(&ty)),
            label: format!("`{ty}`"),
            help: Some("a condition must be true or false, e.g. `applicant.age >= 18`".into()),
            fix: None,
        });
    }
    checker.errors
}

struct Checker<'a, 's> {
    scope: &'a Scope<'s>,
    /// Variables bound by macros, innermost last.
    bound: Vec<(String, Type<'s>)>,
    errors: Vec<TypeError>,
}

impl<'s> Checker<'_, 's> {
    fn error(&mut self, kind: TypeErrorKind, span: Range<usize>, message: String, label: String, help: Option<String>) {
        self.errors.push(TypeError { kind, span, message, label, help, fix: None });
    }

    /// Attaches a replacement to the error just reported.
    fn fix_last(&mut self, range: Range<usize>, text: impl Into<String>) {
        if let Some(last) = self.errors.last_mut() {
            last.fix = Some((range, text.into()));
        }
    }

    /// A number written as text beside a number (`applicant.age >= "18"`): the literal
    /// without its quotes is the fix.
    fn fix_quoted_number(&mut self, left: &Expr, lt: &Type, right: &Expr, rt: &Type) {
        for (side, other) in [(right, lt), (left, rt)] {
            if let (ExprKind::String(text), true) = (&side.kind, other.is_numeric()) {
                if !text.is_empty() && text.trim().parse::<f64>().is_ok() {
                    self.fix_last(side.span.clone(), text.trim());
                    return;
                }
            }
        }
    }

    fn mismatch(&mut self, span: Range<usize>, message: String, label: String, help: Option<&str>) -> Type<'s> {
        self.error(TypeErrorKind::Mismatch, span, message, label, help.map(str::to_string));
        Type::Dyn
    }

    fn expr(&mut self, expr: &Expr) -> Type<'s> {
        match &expr.kind {
            ExprKind::Null => Type::Null,
            ExprKind::Bool(_) => Type::Bool,
            ExprKind::Int(_) => Type::Int,
            ExprKind::Uint(_) => Type::Uint,
            ExprKind::Double(_) => Type::Double,
            ExprKind::String(_) => Type::String,
            ExprKind::Bytes(_) => Type::Bytes,
            ExprKind::Ident(name) => self.ident(name),
            ExprKind::Select { operand, field, field_span, .. } => {
                let operand_type = self.expr(operand);
                self.select(&operand_type, operand, field, field_span.clone())
            }
            ExprKind::Index { operand, index, .. } => {
                let container = self.expr(operand);
                let key = self.expr(index);
                match container {
                    Type::List(element) => {
                        if !accepts(&Type::Int, &key) && key != Type::Uint {
                            return self.mismatch(
                                index.span.clone(),
                                format!("a list is indexed by an `int`, not {}", A(&key)),
                                format!("`{key}`"),
                                None,
                            );
                        }
                        *element
                    }
                    Type::Map(k, v) => {
                        if !k.comparable(&key) {
                            return self.mismatch(
                                index.span.clone(),
                                format!("this map's keys are `{k}`, not `{key}`"),
                                format!("`{key}`"),
                                None,
                            );
                        }
                        *v
                    }
                    Type::Dyn => Type::Dyn,
                    other => self.mismatch(
                        operand.span.clone(),
                        format!("{} cannot be indexed", A(&other)),
                        format!("`{other}`"),
                        Some("only lists and maps take `[…]`"),
                    ),
                }
            }
            ExprKind::Call { target, function, function_span, args } => {
                self.call(expr, target.as_deref(), function, function_span.clone(), args)
            }
            ExprKind::List(items) => {
                let types: Vec<Type<'s>> = items.iter().map(|e| self.expr(e)).collect();
                let element = match types.split_first() {
                    Some((first, rest)) if rest.iter().all(|t| t == first) => first.clone(),
                    Some(_) => Type::Dyn,
                    None => Type::Dyn,
                };
                Type::List(Box::new(element))
            }
            ExprKind::Map(entries) => {
                let mut key = None;
                let mut value = None;
                for (k, v) in entries {
                    let (kt, vt) = (self.expr(k), self.expr(v));
                    key = Some(if key.as_ref().is_none_or(|seen| *seen == kt) { kt } else { Type::Dyn });
                    value = Some(if value.as_ref().is_none_or(|seen| *seen == vt) { vt } else { Type::Dyn });
                }
                Type::Map(Box::new(key.unwrap_or(Type::Dyn)), Box::new(value.unwrap_or(Type::Dyn)))
            }
            ExprKind::Struct { type_name, .. } => self.mismatch(
                expr.span.clone(),
                format!("rules have no message types such as `{type_name}`"),
                "not supported".into(),
                Some("use a map literal, `{\"key\": value}`"),
            ),
            ExprKind::Unary { op, operand } => {
                let t = self.expr(operand);
                match (op, &t) {
                    (_, Type::Dyn) => Type::Dyn,
                    (UnaryOp::Not, Type::Bool) => Type::Bool,
                    (UnaryOp::Negate, Type::Int | Type::Double) => t,
                    (UnaryOp::Not, _) => self.mismatch(
                        operand.span.clone(),
                        format!("`!` needs a `bool`, not {}", A(&t)),
                        format!("`{t}`"),
                        Some("negate a condition, e.g. `!applicant.blacklisted`"),
                    ),
                    (UnaryOp::Negate, _) => self.mismatch(
                        operand.span.clone(),
                        format!("`-` needs an `int` or a `double`, not {}", A(&t)),
                        format!("`{t}`"),
                        None,
                    ),
                }
            }
            ExprKind::Binary { op, left, right } => {
                let (lt, rt) = (self.expr(left), self.expr(right));
                self.binary(expr, *op, left, right, lt, rt)
            }
            ExprKind::Ternary { condition, then, otherwise } => {
                let c = self.expr(condition);
                if !accepts(&Type::Bool, &c) {
                    self.mismatch(
                        condition.span.clone(),
                        format!("the condition of `? :` must be a `bool`, not {}", A(&c)),
                        format!("`{c}`"),
                        None,
                    );
                }
                let (a, b) = (self.expr(then), self.expr(otherwise));
                if a.comparable(&b) && (a == b || a == Type::Dyn || b == Type::Dyn) {
                    if a == Type::Dyn {
                        b
                    } else {
                        a
                    }
                } else {
                    self.mismatch(
                        then.span.start..otherwise.span.end,
                        format!("the two branches of `? :` differ: `{a}` and `{b}`"),
                        format!("`{a}` and `{b}`"),
                        Some("give both branches the same type"),
                    )
                }
            }
        }
    }

    fn ident(&mut self, name: &str) -> Type<'s> {
        if let Some((_, t)) = self.bound.iter().rev().find(|(n, _)| n == name) {
            return t.clone();
        }
        if let Some(t) = context_type(name) {
            return t;
        }
        match self.scope.schemas.iter().find(|(n, _)| *n == name) {
            Some((_, fields)) => Type::Record(fields),
            // Unknown names are reported by name resolution, once.
            None => Type::Dyn,
        }
    }

    fn select(&mut self, operand_type: &Type<'s>, operand: &Expr, field: &str, span: Range<usize>) -> Type<'s> {
        match operand_type {
            Type::Record(fields) => match fields.iter().find(|f| f.name == field) {
                Some(f) => Type::of_field(&f.ty),
                None => {
                    let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
                    let path = describe(operand);
                    self.error(
                        TypeErrorKind::UnknownField,
                        span.clone(),
                        format!("`{path}` has no field `{field}`"),
                        "unknown field".into(),
                        Some(
                            suggest(field, &names)
                                .unwrap_or_else(|| format!("`{path}` has the fields {}", names.join(", "))),
                        ),
                    );
                    if let Some(name) = closest(field, &names) {
                        self.fix_last(span, name);
                    }
                    Type::Dyn
                }
            },
            Type::Map(key, value) if accepts(key, &Type::String) => (**value).clone(),
            Type::Dyn => Type::Dyn,
            other => self.mismatch(
                span,
                format!("{} has no field `{field}`", A(other)),
                format!("`{other}`"),
                Some("only records (and maps with string keys) have fields"),
            ),
        }
    }

    fn binary(&mut self, expr: &Expr, op: BinaryOp, left: &Expr, right: &Expr, lt: Type<'s>, rt: Type<'s>) -> Type<'s> {
        let symbol = op.symbol();
        match op {
            BinaryOp::And | BinaryOp::Or => {
                for (side, t) in [(left, &lt), (right, &rt)] {
                    if !accepts(&Type::Bool, t) {
                        self.mismatch(
                            side.span.clone(),
                            format!("`{symbol}` joins conditions, and this is {}", A(t)),
                            format!("`{t}`, not `bool`"),
                            Some("compare it to make a condition, e.g. `applicant.name != \"\"`"),
                        );
                    }
                }
                Type::Bool
            }
            BinaryOp::Equal | BinaryOp::NotEqual => {
                if !lt.comparable(&rt) && lt != Type::Null && rt != Type::Null {
                    self.mismatch(
                        expr.span.clone(),
                        format!("cannot compare {} with {}", A(&lt), A(&rt)),
                        format!("`{lt}` {symbol} `{rt}`"),
                        Some(comparison_help(&lt, &rt)),
                    );
                    self.fix_quoted_number(left, &lt, right, &rt);
                }
                Type::Bool
            }
            BinaryOp::Less | BinaryOp::LessEqual | BinaryOp::Greater | BinaryOp::GreaterEqual => {
                let ordered = |t: &Type| {
                    t.is_numeric() || matches!(t, Type::String | Type::Bytes | Type::Date | Type::Bool | Type::Dyn)
                };
                if !(lt.comparable(&rt) && ordered(&lt) && ordered(&rt)) {
                    self.mismatch(
                        expr.span.clone(),
                        format!("cannot order {} and {}", A(&lt), A(&rt)),
                        format!("`{lt}` {symbol} `{rt}`"),
                        Some(comparison_help(&lt, &rt)),
                    );
                    self.fix_quoted_number(left, &lt, right, &rt);
                }
                Type::Bool
            }
            BinaryOp::In => {
                match &rt {
                    Type::List(element) if !element.comparable(&lt) => {
                        self.mismatch(
                            expr.span.clone(),
                            format!("{} is never in {}", A(&lt), A(&rt)),
                            format!("`{lt}` in `{rt}`"),
                            Some("the value and the list's elements must have the same type"),
                        );
                    }
                    Type::Map(key, _) if !key.comparable(&lt) => {
                        self.mismatch(
                            expr.span.clone(),
                            format!("{} is never a key of {}", A(&lt), A(&rt)),
                            format!("`{lt}` in `{rt}`"),
                            None,
                        );
                    }
                    Type::List(_) | Type::Map(..) | Type::Dyn => {}
                    other => {
                        self.mismatch(
                            right.span.clone(),
                            format!("`in` needs a list or a map, not {}", A(other)),
                            format!("`{other}`"),
                            Some("write the choices as a list, e.g. `x in [\"a\", \"b\"]`"),
                        );
                    }
                }
                Type::Bool
            }
            BinaryOp::Add | BinaryOp::Subtract | BinaryOp::Multiply | BinaryOp::Divide | BinaryOp::Remainder => {
                if lt == Type::Dyn || rt == Type::Dyn {
                    return if lt == Type::Dyn { rt } else { lt };
                }
                let fits = match op {
                    BinaryOp::Add => {
                        lt == rt && (lt.is_numeric() || matches!(lt, Type::String | Type::Bytes | Type::List(_)))
                    }
                    BinaryOp::Remainder => lt == rt && matches!(lt, Type::Int | Type::Uint),
                    _ => lt == rt && lt.is_numeric(),
                };
                if fits {
                    return lt;
                }
                let help = if lt.is_numeric() && rt.is_numeric() {
                    "CEL does not mix kinds of numbers in arithmetic: convert one, e.g. `double(x)`"
                } else {
                    "both sides must be numbers of the same kind (or strings or lists for `+`)"
                };
                self.mismatch(
                    expr.span.clone(),
                    format!("cannot apply `{symbol}` to {} and {}", A(&lt), A(&rt)),
                    format!("`{lt}` {symbol} `{rt}`"),
                    Some(help),
                )
            }
        }
    }

    fn call(
        &mut self,
        expr: &Expr,
        target: Option<&Expr>,
        function: &str,
        span: Range<usize>,
        args: &[Expr],
    ) -> Type<'s> {
        if function == "has" && target.is_none() {
            return match args {
                [arg @ Expr { kind: ExprKind::Select { .. }, .. }] => {
                    self.expr(arg);
                    Type::Bool
                }
                _ => self.mismatch(
                    expr.span.clone(),
                    "`has` takes one field selection, e.g. `has(applicant.company)`".into(),
                    "not a field".into(),
                    None,
                ),
            };
        }
        if let (Some(target), true) = (target, MACROS.contains(&function)) {
            return self.macro_call(target, function, span, args);
        }
        let receiver = target.map(|t| self.expr(t));
        let arg_types: Vec<Type<'s>> = args.iter().map(|a| self.expr(a)).collect();
        let candidates: Vec<&Function> =
            FUNCTIONS.iter().filter(|f| f.name == function && f.receiver.is_some() == receiver.is_some()).collect();
        if candidates.is_empty() {
            let names: Vec<&str> = FUNCTIONS.iter().map(|f| f.name).collect();
            let how = if target.is_some() { "method" } else { "function" };
            let help = suggest(function, &names)
                .unwrap_or_else(|| "`onetrip explain E0401` lists the functions rules can call".into());
            self.error(
                TypeErrorKind::UnknownFunction,
                span.clone(),
                format!("unknown {how} `{function}`"),
                format!("no {how} of this name"),
                Some(help),
            );
            if let Some(name) = closest(function, &names) {
                self.fix_last(span, name);
            }
            return Type::Dyn;
        }
        if !candidates.iter().any(|f| f.params.len() == args.len()) {
            let counts: Vec<String> = candidates.iter().map(|f| f.params.len().to_string()).collect();
            let mut counts_unique = counts.clone();
            counts_unique.dedup();
            self.error(
                TypeErrorKind::ArgumentCount,
                expr.span.clone(),
                format!(
                    "`{function}` takes {}, not {}",
                    count(counts_unique.join(" or "), "argument", "arguments"),
                    args.len()
                ),
                count(args.len(), "argument", "arguments"),
                Some(signatures(&candidates)),
            );
            return Type::Dyn;
        }
        let matching = candidates.iter().find(|f| {
            f.params.len() == args.len()
                && f.receiver.is_none_or(|r| receiver.as_ref().is_some_and(|t| accepts(&parse_type(r), t)))
                && f.params.iter().zip(&arg_types).all(|(p, a)| accepts(&parse_type(p), a))
        });
        match matching {
            Some(f) => parse_type(f.result),
            None => {
                let given: Vec<String> = receiver.iter().chain(&arg_types).map(|t| format!("`{t}`")).collect();
                self.mismatch(
                    expr.span.clone(),
                    format!("`{function}` does not take {}", given.join(", ")),
                    "wrong types".into(),
                    Some(&signatures(&candidates)),
                )
            }
        }
    }

    fn macro_call(&mut self, target: &Expr, function: &str, span: Range<usize>, args: &[Expr]) -> Type<'s> {
        let range = self.expr(target);
        let element = match &range {
            Type::List(e) => (**e).clone(),
            Type::Map(k, _) => (**k).clone(),
            Type::Dyn => Type::Dyn,
            other => {
                return self.mismatch(
                    target.span.clone(),
                    format!("`{function}` runs over a list or a map, not {}", A(other)),
                    format!("`{other}`"),
                    None,
                )
            }
        };
        let [Expr { kind: ExprKind::Ident(variable), .. }, body] = args else {
            self.error(
                TypeErrorKind::ArgumentCount,
                span,
                format!("`{function}` takes a variable name and an expression, e.g. `xs.{function}(x, x > 0)`"),
                "wrong arguments".into(),
                None,
            );
            return Type::Dyn;
        };
        self.bound.push((variable.clone(), element.clone()));
        let body_type = self.expr(body);
        self.bound.pop();
        match function {
            "map" => Type::List(Box::new(body_type)),
            "filter" | "all" | "exists" | "exists_one" => {
                if !accepts(&Type::Bool, &body_type) {
                    self.mismatch(
                        body.span.clone(),
                        format!("the condition of `{function}` must be a `bool`, not {}", A(&body_type)),
                        format!("`{body_type}`"),
                        None,
                    );
                }
                if function == "filter" {
                    range
                } else {
                    Type::Bool
                }
            }
            _ => Type::Dyn,
        }
    }
}

fn signatures(candidates: &[&Function]) -> String {
    let forms: Vec<String> = candidates
        .iter()
        .map(|f| match f.receiver {
            Some(r) => format!("`{r}.{}({}) -> {}`", f.name, f.params.join(", "), f.result),
            None => format!("`{}({}) -> {}`", f.name, f.params.join(", "), f.result),
        })
        .collect();
    format!("it is {}", forms.join(" or "))
}

fn comparison_help(a: &Type, b: &Type) -> &'static str {
    match (a, b) {
        (Type::Int | Type::Double | Type::Uint, Type::String)
        | (Type::String, Type::Int | Type::Double | Type::Uint) => {
            "a number is compared with a number: write `18`, not `\"18\"`"
        }
        (Type::Date, Type::String) | (Type::String, Type::Date) => "make the text a date: `date(\"2026-01-01\")`",
        _ => "compare values of the same type",
    }
}

/// A short rendering of a field path for messages.
fn describe(expr: &Expr) -> String {
    match &expr.kind {
        ExprKind::Ident(n) => n.clone(),
        ExprKind::Select { operand, field, .. } => format!("{}.{field}", describe(operand)),
        _ => "this value".into(),
    }
}

fn suggest(name: &str, candidates: &[&str]) -> Option<String> {
    closest(name, candidates).map(|c| format!("did you mean `{c}`?"))
}

/// The candidate closest to a misspelt name, when one is close enough.
fn closest<'c>(name: &str, candidates: &[&'c str]) -> Option<&'c str> {
    candidates
        .iter()
        .map(|c| (crate::check::edit_distance(name, c), *c))
        .filter(|(d, _)| *d > 0 && *d <= 2.max(name.chars().count() / 3))
        .min()
        .map(|(_, c)| c)
}
