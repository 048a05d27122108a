//! The checker is sound for the evaluator: for random applicants that conform to the schema,
//! a rule that passes `dsl`'s type checker never fails at run time with a type error (it may
//! still fail on values: a division by zero, an overflow). Rules are generated at random from
//! the schema's fields, literals, operators, functions and macros; the ill-typed ones are
//! dropped by the checker, the rest are evaluated.

use std::sync::Arc;

use calendar::Calendar;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rules::{EvalError, Facts, RuleKey, RuleSet};
use serde_json::{json, Value};

const SCHEMA: &str = r#"
schema applicant {
  name      string pii(name)
  age       int
  income    double
  credit_ok bool
  region    string
  birth     date
  tags      list<string>
  children  list<{ name string  age int }>
  company { kind string  capital double  employees int }
}
"#;

fn schemas() -> Vec<dsl::model::Schema> {
    let mut loader = dsl::MemoryLoader::default();
    let workspace = dsl::Workspace::single("schema.flow", SCHEMA, &mut loader);
    let analysis = dsl::check(&workspace);
    assert!(analysis.diagnostics.is_empty());
    analysis.program.schemas
}

fn applicant() -> impl Strategy<Value = Value> {
    let text = || prop::sample::select(vec!["", "王", "330106", "3301", "a", "x y", "llc"]).prop_map(str::to_string);
    let date = (2000i32..2030, 1u32..13, 1u32..29).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}"));
    let child = (text(), -1i64..30).prop_map(|(name, age)| json!({"name": name, "age": age}));
    (
        (text(), any::<i32>(), prop_oneof![Just(0.0), -1e6..1e6f64], any::<bool>(), text(), date),
        (prop::collection::vec(text(), 0..3), prop::collection::vec(child, 0..3)),
        (text(), prop_oneof![Just(0.0), 0.0..1e7f64], -5i64..500),
    )
        .prop_map(
            |((name, age, income, credit_ok, region, birth), (tags, children), (kind, capital, employees))| {
                json!({"name": name, "age": age, "income": income, "credit_ok": credit_ok, "region": region,
                   "birth": birth, "tags": tags, "children": children,
                   "company": {"kind": kind, "capital": capital, "employees": employees}})
            },
        )
}

/// A small deterministic generator (proptest supplies the seed).
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, options: &[&'a str]) -> &'a str {
        options[(self.next() % options.len() as u64) as usize]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    /// An expression meant to have type `ty`; now and then a deliberately wrong one, so that
    /// the checker's refusals are exercised too.
    fn expr(&mut self, ty: &str, depth: u32) -> String {
        let ty = if self.chance(4) { self.pick(&["int", "double", "string", "bool", "date"]) } else { ty };
        let leaf = depth == 0 || self.chance(30);
        match (ty, leaf) {
            ("int", true) => self.pick(&["applicant.age", "applicant.company.employees", "0", "18", "-3", "7"]).into(),
            ("int", false) => match self.next() % 7 {
                0 => format!(
                    "({} {} {})",
                    self.expr("int", depth - 1),
                    self.pick(&["+", "-", "*", "/", "%"]),
                    self.expr("int", depth - 1)
                ),
                1 => format!("-({})", self.expr("int", depth - 1)),
                2 => format!(
                    "size({})",
                    self.pick(&["applicant.name", "applicant.tags", "applicant.children", "materials"])
                ),
                3 => format!("int({})", self.expr("double", depth - 1)),
                4 => format!("age_on({}, {})", self.expr("date", depth - 1), self.expr("date", depth - 1)),
                5 => format!("age_from_id({}, {})", self.expr("string", depth - 1), self.expr("date", depth - 1)),
                _ => format!(
                    "({} ? {} : {})",
                    self.expr("bool", depth - 1),
                    self.expr("int", depth - 1),
                    self.expr("int", depth - 1)
                ),
            },
            ("double", true) => {
                self.pick(&["applicant.income", "applicant.company.capital", "1.5", "0.0", "-2.25"]).into()
            }
            ("double", false) => match self.next() % 3 {
                0 => format!(
                    "({} {} {})",
                    self.expr("double", depth - 1),
                    self.pick(&["+", "-", "*", "/"]),
                    self.expr("double", depth - 1)
                ),
                1 => format!("double({})", self.expr("int", depth - 1)),
                _ => format!("-({})", self.expr("double", depth - 1)),
            },
            ("string", true) => self
                .pick(&["applicant.name", "applicant.region", "applicant.company.kind", "'x'", "'3301'", "''"])
                .into(),
            ("string", false) => match self.next() % 3 {
                0 => format!("({} + {})", self.expr("string", depth - 1), self.expr("string", depth - 1)),
                1 => {
                    let t = self.pick(&["int", "double", "bool"]);
                    format!("string({})", self.expr(t, depth - 1))
                }
                _ => format!(
                    "({} ? {} : {})",
                    self.expr("bool", depth - 1),
                    self.expr("string", depth - 1),
                    self.expr("string", depth - 1)
                ),
            },
            ("date", _) => self.pick(&["applicant.birth", "today", "date('2020-02-29')", "date('2026-10-13')"]).into(),
            (_, true) => self.pick(&["applicant.credit_ok", "true", "false"]).into(),
            (_, false) => match self.next() % 14 {
                0 => format!(
                    "({} {} {})",
                    self.expr("bool", depth - 1),
                    self.pick(&["&&", "||"]),
                    self.expr("bool", depth - 1)
                ),
                1 => format!("!({})", self.expr("bool", depth - 1)),
                2 => {
                    let (a, b) = (self.pick(&["int", "double"]), self.pick(&["int", "double"]));
                    format!(
                        "({} {} {})",
                        self.expr(a, depth - 1),
                        self.pick(&["==", "!=", "<", "<=", ">", ">="]),
                        self.expr(b, depth - 1)
                    )
                }
                3 => {
                    let t = self.pick(&["string", "date", "bool"]);
                    format!(
                        "({} {} {})",
                        self.expr(t, depth - 1),
                        self.pick(&["==", "!=", "<", ">="]),
                        self.expr(t, depth - 1)
                    )
                }
                4 => format!(
                    "{}.{}({})",
                    self.expr("string", depth - 1),
                    self.pick(&["startsWith", "endsWith", "contains"]),
                    self.expr("string", depth - 1)
                ),
                5 => format!("in_region({}, {})", self.expr("string", depth - 1), self.expr("string", depth - 1)),
                6 => format!("id_valid({})", self.expr("string", depth - 1)),
                7 => format!("has_material({})", self.expr("string", depth - 1)),
                8 => format!("({} in [1, 2, 18])", self.expr("int", depth - 1)),
                9 => format!("({} in applicant.tags)", self.expr("string", depth - 1)),
                10 => format!("applicant.children.exists(c, c.age > {})", self.expr("int", depth - 1)),
                11 => format!("applicant.tags.all(t, t != {})", self.expr("string", depth - 1)),
                12 => format!(
                    "(size(applicant.children.filter(c, {} < c.age)) {} {})",
                    self.expr("int", depth - 1),
                    self.pick(&["==", ">"]),
                    self.expr("int", depth - 1)
                ),
                _ => format!(
                    "({} ? {} : {})",
                    self.expr("bool", depth - 1),
                    self.expr("bool", depth - 1),
                    self.expr("bool", depth - 1)
                ),
            },
        }
    }
}

fn rule() -> impl Strategy<Value = String> {
    (any::<u64>(), 1u32..5).prop_map(|(seed, depth)| Gen(seed | 1).expr("bool", depth))
}

fn well_typed(rule: &str, schemas: &[dsl::model::Schema]) -> bool {
    let Ok(parsed) = dsl::cel::parse_rule(rule) else { return false };
    let scope =
        dsl::cel::types::Scope { schemas: schemas.iter().map(|s| (s.name.as_str(), s.fields.as_slice())).collect() };
    dsl::cel::types::check_rule(&parsed.expr, &scope).is_empty()
}

#[test]
fn rules_that_pass_the_checker_never_fail_with_a_type_error() {
    let schemas = schemas();
    let calendar = Arc::new(Calendar::official());
    let mut runner = TestRunner::new(Config { cases: 3000, failure_persistence: None, ..Config::default() });
    let accepted = std::cell::Cell::new(0usize);
    let result = runner.run(&(rule(), prop::collection::vec(applicant(), 3)), |(rule, applicants)| {
        if !well_typed(&rule, &schemas) {
            return Ok(());
        }
        accepted.set(accepted.get() + 1);
        let mut set = RuleSet::empty(Arc::clone(&calendar), schemas.clone());
        let id = set.add(RuleKey::Guard(0), &rule, None).map_err(|e| TestCaseError::fail(format!("{rule}: {e}")))?;
        for applicant in applicants {
            let mut data = serde_json::Map::new();
            data.insert("applicant".into(), applicant);
            let facts = Facts {
                data,
                materials: vec!["id_proof".into()],
                licences: vec![],
                today: calendar::parse_date("2026-06-01").ok(),
            };
            let bound = set.bind(&facts).map_err(|e| TestCaseError::fail(e.to_string()))?;
            if let Err(
                e @ (EvalError::Type(_) | EvalError::NotBoolean(_) | EvalError::Panicked | EvalError::Missing(_)),
            ) = bound.evaluate(id)
            {
                return Err(TestCaseError::fail(format!("{rule}: {e}")));
            }
        }
        Ok(())
    });
    if let Err(error) = result {
        panic!("{error}");
    }
    // The generator must exercise the checker's accepting side, not only its refusals.
    assert!(accepted.get() >= 1500, "only {} of 3000 random rules were well typed", accepted.get());
}
