//! The only module that knows the `cel` crate (pinned to an exact version: its API changes
//! often). Everything else sees [`CelError`] and [`parse_rule`].

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

/// Parses a rule; the errors' offsets are relative to `source`.
pub fn parse_rule(source: &str) -> Result<(), Vec<CelError>> {
    if source.len() > MAX_RULE_LEN {
        return Err(vec![CelError { offset: 0, message: format!("rule longer than {MAX_RULE_LEN} bytes") }]);
    }
    // The generated parser has panicked on odd input in past releases: contain it.
    let parsed =
        catch_unwind(AssertUnwindSafe(|| cel::parser::Parser::new().max_recursion_depth(MAX_RULE_DEPTH).parse(source)));
    match parsed {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(errors)) => Err(errors
            .errors
            .iter()
            .take(1)
            .map(|e| CelError { offset: offset_of(source, e.pos.0, e.pos.1), message: clean_message(&e.msg) })
            .collect()),
        Err(_) => Err(vec![CelError { offset: 0, message: "the CEL parser failed on this rule".into() }]),
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
    fn deep_nesting_is_an_error_not_a_crash() {
        let rule = format!("{}1{}", "(".repeat(500), ")".repeat(500));
        assert!(parse_rule(&rule).is_err());
    }
}
