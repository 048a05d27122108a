//! Evaluating a compiled 4-clause eligibility rule over a 20-field applicant (the peers'
//! workload, `../shared/peers/`): through this crate, and through the bare `cel` API on the
//! same compiled program in the same run. The wrapper should add nothing.
//!
//! `cargo bench -p onetrip-rules --bench evaluate`

use std::sync::Arc;

// The allocator the `onetrip` binary ships with: evaluation allocates (CEL values, argument
// lists), so the allocator is part of what a rule costs in the product.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use calendar::Calendar;
use criterion::{criterion_group, criterion_main, Criterion};
use rules::{Facts, RuleKey, RuleSet};

const RULE: &str = r#"applicant.age >= 18 && applicant.region.startsWith("3301") && applicant.income < 100000.0 && !applicant.blacklisted"#;

const SCHEMA: &str = r#"
schema applicant {
  age int  region string  income double  blacklisted bool  name string pii(name)
  id_number string pii(id)  phone string pii(phone)  gender string  married bool  children int
  employer string  employed_years int  address string  email string  education string
  hukou_local bool  disabled bool  retired bool  insured_years int  credit_ok bool
}
"#;

fn applicant() -> serde_json::Value {
    serde_json::json!({"age": 35, "region": "330106", "income": 85000.0, "blacklisted": false,
      "name": "masked", "id_number": "masked", "phone": "masked", "gender": "F", "married": true,
      "children": 1, "employer": "some company", "employed_years": 9, "address": "somewhere",
      "email": "a@example.org", "education": "bachelor", "hukou_local": true, "disabled": false,
      "retired": false, "insured_years": 12, "credit_ok": true})
}

fn evaluate(c: &mut Criterion) {
    let mut loader = dsl::MemoryLoader::default();
    let workspace = dsl::Workspace::single("schema.flow", SCHEMA, &mut loader);
    let schemas = dsl::check(&workspace).program.schemas;

    let mut set = RuleSet::empty(Arc::new(Calendar::official()), schemas);
    let id = set.add(RuleKey::Guard(0), RULE, None).expect("compiles");
    let mut data = serde_json::Map::new();
    data.insert("applicant".into(), applicant());
    let bound = set.bind(&Facts { data, ..Facts::default() }).expect("binds");
    assert_eq!(bound.evaluate(id), Ok(true));

    let program = cel::Program::compile(RULE).expect("compiles");
    let mut context = cel::Context::default();
    context.add_variable_from_value("applicant", cel::to_value(applicant()).expect("value"));
    assert_eq!(program.execute(&context), Ok(cel::Value::Bool(true)));

    let mut group = c.benchmark_group("rule");
    group.bench_function("onetrip rules", |b| b.iter(|| bound.evaluate(std::hint::black_box(id))));
    group.bench_function("bare cel 0.15", |b| b.iter(|| program.execute(std::hint::black_box(&context))));
    group.bench_function("onetrip explain (false rule)", |b| {
        let mut facts = applicant();
        facts["age"] = serde_json::json!(17);
        let mut data = serde_json::Map::new();
        data.insert("applicant".into(), facts);
        let bound = set.bind(&Facts { data, ..Facts::default() }).expect("binds");
        b.iter(|| bound.explain(id))
    });
    group.finish();
}

criterion_group!(benches, evaluate);
criterion_main!(benches);
