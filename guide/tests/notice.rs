//! 一次告知 on the stdlib's 开办企业一件事, for applicants in different situations.

use std::sync::Arc;

use calendar::{Calendar, Date};
use guide::notice::{notice, Notice, NoticeError};
use rules::Facts;
use serde_json::{json, Map, Value};

fn facts(company: Value) -> Map<String, Value> {
    let mut data = Map::new();
    data.insert(
        "applicant".into(),
        json!({"name": "陈思远", "id_number": "330106199003070022", "phone": "13812345678", "age": 36,
               "gender": "male", "region": "330106", "residence": "330106", "credit_ok": true, "is_agent": false}),
    );
    let mut new_company = json!({"name": "示例市云杉信息技术有限公司", "kind": "llc", "capital": 100.0,
        "address": "示例市西湖区文三路100号5层501室", "region": "330106", "premises": "leased", "industry": "6513",
        "employees": 3, "public_offering": false, "bank_reservation": true,
        "shareholders": [{"name": "陈思远", "id_number": "330106199003070022", "kind": "person", "subscribed": 100.0}],
        "officers": [{"name": "陈思远", "id_number": "330106199003070022", "role": "legal_rep", "credit_ok": true}]});
    for (key, value) in company.as_object().expect("an object") {
        new_company[key] = value.clone();
    }
    data.insert("new_company".into(), new_company);
    data
}

fn notice_for(data: &Map<String, Value>) -> Result<Notice, NoticeError> {
    let checked = stdlib_flows::load("start_business").expect("the stdlib process");
    let today = Date::from_ymd_opt(2026, 9, 21).expect("a date");
    let facts = Facts { data: data.clone(), today: Some(today), ..Facts::default() };
    notice(&checked.analysis.program, "start_business", &facts, Arc::new(Calendar::official()))
}

fn titles(notice: &Notice) -> Vec<&str> {
    notice.bring.iter().map(|m| m.title.as_str()).collect()
}

#[test]
fn applicants_taking_different_branches_get_different_lists() {
    let with_bank_and_staff = notice_for(&facts(json!({}))).expect("a notice");
    let alone = notice_for(&facts(json!({"employees": 0, "bank_reservation": false}))).expect("a notice");
    assert!(with_bank_and_staff.eligible && alone.eligible);
    let items = |n: &Notice| n.items.iter().map(|i| i.name.clone()).collect::<Vec<_>>();
    assert!(items(&with_bank_and_staff).contains(&"bank_account_reservation".to_string()));
    assert!(items(&with_bank_and_staff).contains(&"social_insurance_enrolment".to_string()));
    assert!(!items(&alone).contains(&"bank_account_reservation".to_string()), "no bank booking, no bank item");
    assert!(!items(&alone).contains(&"social_insurance_enrolment".to_string()), "no staff, no enrolment");
    // The bank's forms and the staff list are asked only of the first.
    assert!(titles(&with_bank_and_staff).contains(&"开立单位银行结算账户申请书"));
    assert!(titles(&with_bank_and_staff).contains(&"职工花名册"));
    assert!(!titles(&alone).contains(&"开立单位银行结算账户申请书"));
    assert!(!titles(&alone).contains(&"职工花名册"));
    assert!(alone.bring.len() < with_bank_and_staff.bring.len());
    // A company with an enterprise shareholder and owned premises is asked for other things.
    let other = notice_for(&facts(
        json!({"shareholders": [{"name": "某某公司", "id_number": "", "kind": "other", "subscribed": 100.0}]}),
    ))
    .expect("a notice");
    assert!(titles(&other).contains(&"其他组织股东主体资格文件"), "{:?}", titles(&other));
    assert!(!titles(&with_bank_and_staff).contains(&"其他组织股东主体资格文件"));
}

#[test]
fn shared_data_and_licences_are_never_asked_for_and_nothing_twice() {
    let checked = stdlib_flows::load("start_business").expect("the stdlib process");
    let program = &checked.analysis.program;
    let full = notice_for(&facts(json!({}))).expect("a notice");
    assert!(full.spared > 0, "some materials come from shared data or licences");
    for line in &full.bring {
        assert!(!line.exempt, "{} is supplied, not brought", line.title);
        assert_eq!(line.source, "申请人自备", "{}", line.title);
        assert!(line.when.is_none(), "conditions are decided for this applicant");
        let sources: Vec<_> = program
            .items
            .iter()
            .flat_map(|i| &i.materials)
            .filter(|m| m.name == line.name)
            .map(|m| &m.source)
            .collect();
        assert!(sources.iter().all(|s| matches!(s, dsl::model::MaterialSource::Applicant)), "{}", line.title);
    }
    let mut names: Vec<&str> = full.bring.iter().map(|m| m.name.as_str()).collect();
    let before = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), before, "each material once");
    // Nothing of the facts appears in the notice.
    let text = serde_json::to_string(&full).expect("json") + &guide::markdown::notice(&full);
    for personal in ["陈思远", "330106199003070022", "13812345678", "示例市云杉"] {
        assert!(!text.contains(personal), "{personal} copied into the notice");
    }
}

#[test]
fn a_refused_applicant_gets_the_rules_messages() {
    let refused = notice_for(&facts(json!({"kind": "partnership"}))).expect("a notice");
    assert!(!refused.eligible);
    assert_eq!(
        refused.refusals,
        vec!["本事项适用于已完成名称自主申报的有限责任公司和股份有限公司；其他市场主体请至登记窗口办理".to_string()]
    );
    let markdown = guide::markdown::notice(&refused);
    assert!(markdown.contains("暂不符合申办条件") && markdown.contains("其他市场主体请至登记窗口办理"));
}

#[test]
fn facts_that_do_not_match_the_schema_name_the_field_not_the_value() {
    let mut data = facts(json!({}));
    data["applicant"]["age"] = json!("三十六岁");
    let error = notice_for(&data).expect_err("refused").to_string();
    assert!(error.contains("applicant.age"), "{error}");
    assert!(!error.contains("三十六岁"), "{error}");
    let checked = stdlib_flows::load("start_business").expect("the stdlib process");
    let today = Date::from_ymd_opt(2026, 9, 21).expect("a date");
    let facts = Facts { data, today: Some(today), ..Facts::default() };
    let unknown = notice(&checked.analysis.program, "nope", &facts, Arc::new(Calendar::official()));
    assert_eq!(unknown, Err(NoticeError::Unknown("nope".into())));
}
