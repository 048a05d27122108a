//! The only module that knows the `cel` crate (pinned to an exact version: its API changes
//! often). Everything else sees [`CelError`], [`ParsedRule`] and [`parse_rule`].

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Longest CEL rule accepted, in bytes.
pub const MAX_RULE_LEN: usize = 4096;
/// Deepest nesting the CEL parser is asked to handle.
pub const MAX_RULE_DEPTH: u16 = 48;

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

/// A rule that parsed, with the names it reads (comprehension variables excluded).
#[derive(Debug, Clone)]
pub struct ParsedRule {
    pub references: Vec<Reference>,
}

/// Parses a rule; the errors' offsets are relative to `source`.
pub fn parse_rule(source: &str) -> Result<ParsedRule, Vec<CelError>> {
    if source.len() > MAX_RULE_LEN {
        return Err(vec![CelError { offset: 0, message: format!("rule longer than {MAX_RULE_LEN} bytes") }]);
    }
    // The generated parser has panicked on odd input in past releases: contain it.
    let parsed = catch_unwind(AssertUnwindSafe(|| {
        cel::parser::Parser::new().max_recursion_depth(MAX_RULE_DEPTH).parse_with_source_info(source)
    }));
    match parsed {
        Ok(Ok((expr, info))) => {
            let mut references = Vec::new();
            let offsets = CharOffsets::new(source);
            collect_references(&expr, &info, &offsets, &mut Vec::new(), &mut references);
            Ok(ParsedRule { references })
        }
        Ok(Err(errors)) => Err(errors
            .errors
            .iter()
            .take(1)
            .map(|e| CelError { offset: offset_of(source, e.pos.0, e.pos.1), message: clean_message(&e.msg) })
            .collect()),
        Err(_) => Err(vec![CelError { offset: 0, message: "the CEL parser failed on this rule".into() }]),
    }
}

/// Byte offsets from the parser, clamped to the text and to character boundaries.
struct CharOffsets<'a> {
    source: &'a str,
}

impl<'a> CharOffsets<'a> {
    fn new(source: &'a str) -> Self {
        CharOffsets { source }
    }

    fn byte(&self, offset: u32) -> usize {
        let mut at = (offset as usize).min(self.source.len());
        while !self.source.is_char_boundary(at) {
            at += 1;
        }
        at
    }
}

/// Walks the tree for identifiers and field selections on them, skipping variables bound by
/// comprehensions (`exists(x, …)`).
fn collect_references(
    expr: &cel::common::ast::IdedExpr,
    info: &cel::common::ast::SourceInfo,
    offsets: &CharOffsets,
    bound: &mut Vec<String>,
    out: &mut Vec<Reference>,
) {
    use cel::common::ast::{EntryExpr, Expr};
    let range_of = |id: u64| {
        info.offset_for(id).map_or(0..0, |(start, stop)| offsets.byte(start)..offsets.byte(stop.max(start) + 1))
    };
    // A chain of selections ending at an identifier is one reference.
    let mut segments = Vec::new();
    let mut at = expr;
    loop {
        match &at.expr {
            Expr::Select(select) if !select.test => {
                // The parser records the `.`; point at the field name after it.
                let dot = range_of(at.id);
                let after = offsets.source.get(dot.end..).unwrap_or("");
                let start = dot.end + (after.len() - after.trim_start().len());
                let range = if offsets.source.get(start..).is_some_and(|rest| rest.starts_with(select.field.as_str())) {
                    start..start + select.field.len()
                } else {
                    dot
                };
                segments.push((select.field.clone(), range));
                at = &select.operand;
            }
            Expr::Ident(name) => {
                if !bound.contains(name) {
                    segments.push((name.clone(), range_of(at.id)));
                    segments.reverse();
                    out.push(Reference { segments });
                }
                return;
            }
            _ => break,
        }
    }
    let mut walk =
        |e: &cel::common::ast::IdedExpr, bound: &mut Vec<String>| collect_references(e, info, offsets, bound, out);
    match &at.expr {
        Expr::Call(call) => {
            if let Some(target) = &call.target {
                walk(target, bound);
            }
            call.args.iter().for_each(|a| walk(a, bound));
        }
        Expr::Comprehension(c) => {
            walk(&c.iter_range, bound);
            let depth = bound.len();
            bound.push(c.iter_var.clone());
            bound.extend(c.iter_var2.clone());
            bound.push(c.accu_var.clone());
            walk(&c.accu_init, bound);
            walk(&c.loop_cond, bound);
            walk(&c.loop_step, bound);
            walk(&c.result, bound);
            bound.truncate(depth);
        }
        Expr::List(list) => list.elements.iter().for_each(|e| walk(e, bound)),
        Expr::Map(map) => map.entries.iter().for_each(|entry| {
            if let EntryExpr::MapEntry(m) = &entry.expr {
                walk(&m.key, bound);
                walk(&m.value, bound);
            }
        }),
        Expr::Struct(s) => s.entries.iter().for_each(|entry| {
            if let EntryExpr::StructField(f) = &entry.expr {
                walk(&f.value, bound);
            }
        }),
        Expr::Select(select) => walk(&select.operand, bound),
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
}

/// `cel` reports 1-based lines and 1-based character columns.
fn offset_of(source: &str, line: isize, column: isize) -> usize {
    let Some(line_text_start) =
        source.split_inclusive('\n').take((line.max(1) - 1) as usize).map(str::len).reduce(|a, b| a + b).or(Some(0))
    else {
        return 0;
    };
    let line_text = source[line_text_start.min(source.len())..].split('\n').next().unwrap_or("");
    let in_line: usize = line_text.chars().take((column - 1).max(0) as usize).map(char::len_utf8).sum();
    (line_text_start + in_line).min(source.len())
}

/// ANTLR's messages list every token it expected; say what was found instead.
fn clean_message(message: &str) -> String {
    let message = message.trim_start_matches("Syntax error: ");
    let quoted = |prefix: &str| {
        let rest = message.strip_prefix(prefix)?.strip_prefix('\'')?;
        let end = rest.rfind("' expecting").or_else(|| rest.rfind('\''))?;
        Some(rest[..end].to_string())
    };
    let found = quoted("extraneous input ")
        .or_else(|| quoted("mismatched input "))
        .or_else(|| quoted("no viable alternative at input "));
    if let Some(found) = found {
        return if found == "<EOF>" { "the rule ends too early".into() } else { format!("unexpected `{found}`") };
    }
    if let Some(found) = quoted("token recognition error at: ") {
        return format!("`{found}` is not a CEL token (CEL names are ASCII)");
    }
    message.to_string()
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
        assert!(errors[0].offset <= "年龄 >= 18 &&".len(), "{errors:?}");
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
