//! CEL rules: parsed by [`syntax`] into a tree with a span on every node, and the names each
//! rule reads.
//!
//! The `cel` crate (pinned to an exact version: its API changes often) is the authority on
//! what CEL is and will evaluate rules; here it appears only in tests, which check that this
//! front end accepts and rejects exactly what the `cel` crate's parser does.

pub mod syntax;
pub mod types;

use syntax::{Expr, ExprKind};

/// Longest CEL rule accepted, in bytes.
pub const MAX_RULE_LEN: usize = 4096;

/// A syntax error in a rule, at a byte offset inside the rule's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CelError {
    pub offset: usize,
    pub message: String,
}

/// A name path a rule reads, such as `applicant.company.kind`: each segment with its byte
/// range inside the rule's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub segments: Vec<(String, std::ops::Range<usize>)>,
}

/// A rule that parsed: its tree and the names it reads (comprehension variables excluded).
#[derive(Debug, Clone)]
pub struct ParsedRule {
    pub expr: Expr,
    pub references: Vec<Reference>,
}

/// Parses a rule; the errors' offsets are relative to `source`.
pub fn parse_rule(source: &str) -> Result<ParsedRule, Vec<CelError>> {
    if source.len() > MAX_RULE_LEN {
        return Err(vec![CelError { offset: 0, message: format!("rule longer than {MAX_RULE_LEN} bytes") }]);
    }
    match syntax::parse(source) {
        Ok(expr) => {
            let mut references = Vec::new();
            collect_references(&expr, &mut Vec::new(), &mut references);
            Ok(ParsedRule { expr, references })
        }
        Err(e) => Err(vec![CelError { offset: e.offset, message: e.message }]),
    }
}

/// Macros whose first argument names a variable bound in the others (`xs.exists(x, x > 1)`).
const BINDING_MACROS: [&str; 6] = ["all", "exists", "exists_one", "map", "filter", "transformList"];

/// Identifiers and field selections on them, skipping variables bound by macros.
fn collect_references(expr: &Expr, bound: &mut Vec<String>, out: &mut Vec<Reference>) {
    // A chain of selections ending at an identifier is one reference.
    let mut segments = Vec::new();
    let mut at = expr;
    loop {
        match &at.kind {
            ExprKind::Select { operand, field, field_span, .. } => {
                segments.push((field.clone(), field_span.clone()));
                at = operand;
            }
            ExprKind::Ident(name) => {
                if !bound.contains(name) {
                    segments.push((name.clone(), at.span.clone()));
                    segments.reverse();
                    out.push(Reference { segments });
                }
                return;
            }
            _ => break,
        }
    }
    match &at.kind {
        ExprKind::Call { target, function, args, .. } => {
            if let Some(target) = target {
                collect_references(target, bound, out);
            }
            let binds = target.is_some() && BINDING_MACROS.contains(&function.as_str());
            match (binds, args.first().map(|a| &a.kind)) {
                (true, Some(ExprKind::Ident(variable))) => {
                    bound.push(variable.clone());
                    args.iter().skip(1).for_each(|a| collect_references(a, bound, out));
                    bound.pop();
                }
                _ => args.iter().for_each(|a| collect_references(a, bound, out)),
            }
        }
        ExprKind::Index { operand, index, .. } => {
            collect_references(operand, bound, out);
            collect_references(index, bound, out);
        }
        ExprKind::List(items) => items.iter().for_each(|e| collect_references(e, bound, out)),
        ExprKind::Map(entries) => entries.iter().for_each(|(k, v)| {
            collect_references(k, bound, out);
            collect_references(v, bound, out);
        }),
        ExprKind::Struct { fields, .. } => fields.iter().for_each(|(_, v)| collect_references(v, bound, out)),
        ExprKind::Unary { operand, .. } => collect_references(operand, bound, out),
        ExprKind::Binary { left, right, .. } => {
            collect_references(left, bound, out);
            collect_references(right, bound, out);
        }
        ExprKind::Ternary { condition, then, otherwise } => {
            collect_references(condition, bound, out);
            collect_references(then, bound, out);
            collect_references(otherwise, bound, out);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_rules_parse() {
        assert!(parse_rule("applicant.age >= 18 && applicant.credit_ok").is_ok());
        assert!(parse_rule("applicant.company.kind in ['a', 'b']").is_ok());
    }

    #[test]
    fn errors_point_into_the_rule() {
        let errors = parse_rule("applicant.age >= && true").unwrap_err();
        assert_eq!(errors[0].offset, 17, "{errors:?}");
        let errors = parse_rule("年龄 >= 18 &&").unwrap_err();
        assert_eq!(errors[0].offset, 0, "{errors:?}");
    }

    #[test]
    fn references_are_found_with_byte_ranges() {
        let rule = "'名字' != '' && applicant.company.kind in ['a'] && xs.exists(x, x > applicant.age)";
        let parsed = parse_rule(rule).unwrap();
        let paths: Vec<Vec<&str>> = parsed
            .references
            .iter()
            .map(|r| {
                r.segments
                    .iter()
                    .map(|(name, range)| {
                        assert_eq!(&rule[range.clone()], name, "{rule} {range:?}");
                        name.as_str()
                    })
                    .collect()
            })
            .collect();
        assert_eq!(paths, vec![vec!["applicant", "company", "kind"], vec!["xs"], vec!["applicant", "age"]]);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let rule = format!("{}1{}", "(".repeat(500), ")".repeat(500));
        assert!(parse_rule(&rule).is_err());
    }
}
