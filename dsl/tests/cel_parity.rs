//! The flow language's CEL front end accepts and rejects exactly what the `cel` crate's
//! parser (the evaluator the engine uses) does: on hand-picked rules, on every rule of the
//! fixtures and examples, and on random token soup.

mod support;

use std::panic::{catch_unwind, AssertUnwindSafe};

use proptest::prelude::*;

fn cel_crate_accepts(rule: &str) -> Option<bool> {
    catch_unwind(AssertUnwindSafe(|| cel::parser::Parser::new().max_recursion_depth(48).parse(rule).is_ok())).ok()
}

fn ours_accepts(rule: &str) -> bool {
    dsl::cel::parse_rule(rule).is_ok()
}

fn assert_same(rule: &str) {
    if let Some(theirs) = cel_crate_accepts(rule) {
        assert_eq!(ours_accepts(rule), theirs, "disagreement on {rule:?}: ours {:?}", dsl::cel::parse_rule(rule).err());
    }
}

#[test]
fn hand_picked_rules_agree() {
    let rules = [
        "applicant.age >= 18 && applicant.credit_ok",
        "applicant.age >= && true",
        "a ? b : c",
        "a ? b",
        "[1, 2, 3].exists(x, x > 2)",
        "{'a': 1, 'b': 2}['a'] == 1",
        "has(applicant.company)",
        "size(applicant.name) > 0",
        "applicant.region.startsWith(\"3301\")",
        "!applicant.blacklisted",
        "!!a",
        "--1",
        "- ! a",
        "! - 's'",
        "! - 1.5",
        "!-1",
        "! - 2u",
        "f( x.exists( 1 , 2u ) + 2u )",
        "xs.map(x, x + 1)",
        "xs.map(1, 2, 3)",
        "xs.filter(x.y, true)",
        "-1 < 2u",
        "1.5e3 > .5",
        "'''multi\nline'''",
        "r'raw\\n'",
        "b'bytes'",
        "\"unterminated",
        "a.b.c.d",
        "a..b",
        "a.",
        ".a.b",
        "(a)",
        "()",
        "a(,)",
        "f(a,)",
        "[1,]",
        "[,]",
        "{}",
        "{1:2,}",
        "Msg{f: 1}",
        "a.b{f: 1}",
        "x in [1, 2]",
        "in",
        "a && || b",
        "1 2",
        "a == b == c",
        "a < b < c",
        "!!true",
        "--1",
        "0x1F + 0XaBu",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "18446744073709551615u",
        "18446744073709551616u",
        "'\\x41\\u00e9\\101'",
        "'\\z'",
        "timestamp('2026-01-01T00:00:00Z') < now",
        "a[0][1].b",
        "null == null",
        "true || false && true",
        "if",
        "package",
        "a.if",
        "a.in",
        "a.?b",
        "1 % 2 * 3 / 4",
        "'a' + 'b'",
        "x.all(y, y)",
        "x.map(y, y + 1).filter(z, z > 2)",
    ];
    let disagreements: Vec<(&str, bool)> = rules
        .iter()
        .filter_map(|rule| cel_crate_accepts(rule).filter(|theirs| *theirs != ours_accepts(rule)).map(|t| (*rule, t)))
        .collect();
    assert!(disagreements.is_empty(), "the cel crate accepts (true) or rejects (false), we do not: {disagreements:?}");
}

/// Every rule written in the fixtures and examples.
#[test]
fn rules_of_every_flow_file_agree() {
    let mut count = 0;
    for (_, text) in support::flow_files() {
        for line in text.lines() {
            for keyword in ["eligible ", "when ", "if "] {
                if let Some((_, rest)) = line.split_once(keyword) {
                    let rule = rest.split(" else ").next().unwrap_or(rest).trim().trim_end_matches('{').trim();
                    if !rule.is_empty() && !rule.contains("//") {
                        assert_same(rule);
                        count += 1;
                    }
                }
            }
        }
    }
    assert!(count > 20, "only {count} rules found");
}

const TOKENS: &[&str] = &[
    "a",
    "b.c",
    "1",
    "2u",
    "1.5",
    "'s'",
    "\"t\"",
    "true",
    "null",
    "&&",
    "||",
    "!",
    "-",
    "+",
    "*",
    "/",
    "%",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "in",
    "?",
    ":",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ".",
    "f(",
    "x.exists(",
    "size(",
    " ",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_token_sequences_agree(tokens in prop::collection::vec(prop::sample::select(TOKENS), 1..12)) {
        let rule = tokens.join(" ");
        assert_same(&rule);
    }
}
