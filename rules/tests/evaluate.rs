//! Rules compiled from a checked flow, evaluated and explained on case facts.

use std::sync::Arc;

use calendar::Calendar;
use rules::{EvalError, Facts, RuleKey, RuleSet};
use serde_json::json;

const FLOW: &str = r#"
department d "部门"

schema applicant {
  name      string pii(name)
  id_number string pii(id)
  age       int
  credit_ok bool
  income    double
  region    string
  birth     date
  children  list<{ age int }>
}

item permit "许可" {
  department d
  handling   immediate
  eligible   applicant.age >= 18 && applicant.credit_ok
             else "申请人须年满18周岁且无严重失信记录"
  materials {
    consent "监护人同意书" when applicant.children.exists(c, c.age < 18)
    licence "营业执照"     when has_licence("registration.business_licence") == false
    income  "收入证明"     when has(applicant.income)
  }
}

process p "联办" {
  window   d
  eligible in_region(applicant.region, "3301") || applicant.income > 100000.0
  flow     { permit -> if workdays_between(applicant.birth, today) > 5 { end } }
}
"#;

fn rule_set() -> RuleSet {
    let mut loader = dsl::MemoryLoader::default();
    let workspace = dsl::Workspace::single("flow.flow", FLOW, &mut loader);
    let analysis = dsl::check(&workspace);
    assert!(analysis.diagnostics.is_empty(), "{:#?}", analysis.diagnostics);
    let flow = dsl::compile(&analysis.program, "p").expect("compiles");
    RuleSet::new(&flow, Arc::new(Calendar::official())).expect("rules compile")
}

fn facts(applicant: serde_json::Value) -> Facts {
    let mut data = serde_json::Map::new();
    data.insert("applicant".into(), applicant);
    Facts { data, materials: vec!["id_proof".into()], licences: vec![], today: calendar::parse_date("2026-10-13").ok() }
}

fn adult() -> serde_json::Value {
    json!({"name": "张三", "id_number": "11010519491231002X", "age": 35, "credit_ok": true, "income": 85000,
           "region": "330106", "birth": "2026-09-30", "children": [{"age": 3}]})
}

#[test]
fn every_rule_of_the_flow_is_compiled() {
    let set = rule_set();
    let keys: Vec<&RuleKey> = set.keys().collect();
    assert_eq!(keys.len(), 6, "{keys:?}");
    assert!(set.id(&RuleKey::Guard(0)).is_some());
    assert!(set.id(&RuleKey::MaterialCondition { item: "permit".into(), material: "consent".into() }).is_some());
}

#[test]
fn a_refusal_names_the_failing_clause_and_only_it() {
    let set = rule_set();
    let mut applicant = adult();
    applicant["age"] = json!(17);
    let bound = set.bind(&facts(applicant)).expect("binds");
    let id = set.id(&RuleKey::ItemEligibility("permit".into())).expect("rule");
    assert_eq!(bound.evaluate(id), Ok(false));
    let explanation = bound.explain(id).expect("explains");
    assert!(!explanation.holds);
    let failing: Vec<&str> = explanation.failing.iter().map(|c| c.source.as_str()).collect();
    assert_eq!(failing, ["applicant.age >= 18"]);
    assert_eq!(explanation.failing[0].span, 0..19);
    assert_eq!(explanation.message.as_deref(), Some("申请人须年满18周岁且无严重失信记录"));

    let bound = set.bind(&facts(adult())).expect("binds");
    let explanation = bound.explain(id).expect("explains");
    assert!(explanation.holds && explanation.failing.is_empty());
}

#[test]
fn an_or_rule_that_fails_names_every_clause() {
    let set = rule_set();
    let mut applicant = adult();
    applicant["region"] = json!("320106");
    let bound = set.bind(&facts(applicant)).expect("binds");
    let explanation = bound.explain(set.id(&RuleKey::ProcessEligibility).expect("rule")).expect("explains");
    let failing: Vec<&str> = explanation.failing.iter().map(|c| c.source.as_str()).collect();
    assert_eq!(failing, ["in_region(applicant.region, \"3301\")", "applicant.income > 100000.0"]);
}

#[test]
fn data_is_converted_by_the_schema() {
    // `income` is a double in the schema although the JSON says 85000: arithmetic works.
    let mut set = RuleSet::empty(Arc::new(Calendar::official()), rule_set_schemas());
    let id = set.add(RuleKey::Guard(99), "applicant.income * 2.0 == 170000.0", None).expect("compiles");
    assert_eq!(set.bind(&facts(adult())).expect("binds").evaluate(id), Ok(true));
}

fn rule_set_schemas() -> Vec<dsl::model::Schema> {
    let mut loader = dsl::MemoryLoader::default();
    let workspace = dsl::Workspace::single("flow.flow", FLOW, &mut loader);
    dsl::check(&workspace).program.schemas
}

#[test]
fn domain_functions() {
    let mut set = RuleSet::empty(Arc::new(Calendar::official()), rule_set_schemas());
    let cases = [
        ("age_from_id(applicant.id_number, today) == 76", true),
        ("id_valid(applicant.id_number)", true),
        ("id_valid('11010519491231002Y')", false),
        ("age_on(date('2008-10-14'), today) == 17", true),
        ("age_on(date('2008-10-13'), today) == 18", true),
        ("in_region(applicant.region, '3301') && !in_region(applicant.region, '3302')", true),
        // Worked by hand on the 2026 calendar: a 5-working-day limit from 2026-09-30 ends on
        // 2026-10-13 (Oct 1-7 off, Sat Oct 10 worked).
        ("workdays_between(applicant.birth, today) == 5", true),
        ("has_material('id_proof') && !has_material('photo')", true),
        ("has_licence('registration.business_licence')", false),
        ("'id_proof' in materials && size(licences) == 0", true),
        ("applicant.children.exists(c, c.age < 18)", true),
        ("applicant.name.matches('^张')", true),
    ];
    let ids: Vec<_> = cases
        .iter()
        .enumerate()
        .map(|(i, (rule, _))| set.add(RuleKey::Guard(i), rule, None).unwrap_or_else(|e| panic!("{rule}: {e}")))
        .collect();
    let bound = set.bind(&facts(adult())).expect("binds");
    for ((rule, expected), id) in cases.iter().zip(ids) {
        assert_eq!(bound.evaluate(id), Ok(*expected), "{rule}");
    }
}

#[test]
fn errors_are_typed_and_carry_no_personal_data() {
    let mut set = RuleSet::empty(Arc::new(Calendar::official()), rule_set_schemas());
    let mut add = |i, rule: &str| set.add(RuleKey::Guard(i), rule, None).expect("compiles");
    let missing = add(0, "applicant.credit_ok");
    let division = add(1, "applicant.age / (applicant.age - 35) > 0");
    let year = add(2, "workdays_between(date('2027-03-01'), today) > 0");
    let unchecked = add(3, "applicant.name + 1 == 2");
    let not_bool = add(4, "applicant.age");
    let mut applicant = adult();
    applicant.as_object_mut().expect("object").remove("credit_ok");
    let bound = set.bind(&facts(applicant)).expect("binds");
    assert!(matches!(bound.evaluate(missing), Err(EvalError::Missing(m)) if m.contains("credit_ok")));
    assert_eq!(bound.evaluate(division), Err(EvalError::Value("division by zero".into())));
    assert!(
        matches!(bound.evaluate(year), Err(EvalError::Calendar(m)) if m.contains("2027")),
        "{:?}",
        bound.evaluate(year)
    );
    let type_error = bound.evaluate(unchecked).expect_err("type error");
    assert!(matches!(type_error, EvalError::Type(_)));
    assert!(!type_error.to_string().contains("张三"), "{type_error}");
    assert_eq!(bound.evaluate(not_bool), Err(EvalError::NotBoolean("int".into())));
}

#[test]
fn data_that_does_not_fit_the_schema_is_refused_without_its_value() {
    let set = rule_set();
    for (field, value, expected) in [
        ("age", json!("35"), "`applicant.age` must be a whole number"),
        ("birth", json!("30/09/2026"), "`applicant.birth` must be a date, YYYY-MM-DD"),
        ("nickname", json!("x"), "`applicant.nickname` is not declared in the schema"),
        ("children", json!([{"age": "三"}]), "`applicant.children[0].age` must be a whole number"),
    ] {
        let mut applicant = adult();
        applicant[field] = value;
        let error = set.bind(&facts(applicant)).err().expect("refused");
        assert_eq!(error.to_string(), expected);
    }
}

#[test]
fn one_rule_set_serves_many_threads() {
    let set = Arc::new(rule_set());
    let id = set.id(&RuleKey::ItemEligibility("permit".into())).expect("rule");
    let handles: Vec<_> = (0..4)
        .map(|age| {
            let set = Arc::clone(&set);
            std::thread::spawn(move || {
                let mut applicant = adult();
                applicant["age"] = json!(15 + age);
                set.bind(&facts(applicant)).expect("binds").evaluate(id)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().expect("thread")).collect();
    assert_eq!(results, [Ok(false), Ok(false), Ok(false), Ok(true)]);
}

#[test]
fn a_schema_given_nothing_is_an_empty_record() {
    let set = rule_set();
    let facts = Facts { data: serde_json::Map::new(), materials: vec![], licences: vec![], today: None };
    let bound = set.bind(&facts).expect("binds");
    let key = RuleKey::MaterialCondition { item: "permit".into(), material: "income".into() };
    let id = set.id(&key).expect("compiled");
    assert_eq!(bound.evaluate(id), Ok(false), "`has` answers, it does not fail on an unknown name");
    let with_income = set.bind(&facts_with_income()).expect("binds");
    assert_eq!(with_income.evaluate(id), Ok(true));
}

fn facts_with_income() -> Facts {
    facts(adult())
}
