//! Cases run through the engine's public API on a real SQLite file, one scenario per path.

#[macro_use]
mod support;

use engine::{
    Actor, AnyStore, CaseState, Command, CommandError, Engine, EngineError, Event, EventKind, Status, Submission,
    Submitted,
};
use serde_json::json;
use support::Backend;

const FLOW: &str = r#"
department samr "市场监督管理局"
department psb  "公安局"
department tax  "税务局"
department hrss "人力资源和社会保障局"

schema applicant {
  name      string pii(name)
  age       int
  credit_ok bool
  employees int
}

item registration "企业设立登记" {
  department     samr
  handling       promised
  promised_limit 1 workday
  eligible       applicant.age >= 18 && applicant.credit_ok
                 else "申请人须年满18周岁且无严重失信记录"
  steps {
    accept -> review -> decide -> deliver
    review back accept
  }
  produces licence business_licence "营业执照"
}

item seal "印章刻制备案" {
  department psb
  handling   immediate
  materials { licence "营业执照" from licence registration.business_licence }
}

item tax_setup "新办纳税人套餐" {
  department tax
  handling   immediate
}

item insurance "社会保险登记" {
  department hrss
  handling   immediate
}

process start_business "开办企业一件事" {
  window samr
  sla    3 workdays
  flow   { registration -> parallel { seal, tax_setup } -> if applicant.employees > 0 { insurance } }
}
"#;

/// An engine on a fresh database, and the database (kept while the test runs).
async fn engine(backend: Backend, name: &str) -> (Engine<AnyStore>, std::sync::Arc<support::Database>) {
    let setup = support::setup(backend, name, FLOW, "start_business", "2026-09-30T01:00:00Z").await;
    (setup.engine, setup.db)
}

fn submission(age: i64, employees: i64) -> Submission {
    let mut data = serde_json::Map::new();
    data.insert("applicant".into(), json!({"name": "张三", "age": age, "credit_ok": true, "employees": employees}));
    Submission { flow: "start_business".into(), data, ..Submission::default() }
}

async fn submit(engine: &Engine<AnyStore>, age: i64, employees: i64) -> CaseState {
    match engine.submit(&submission(age, employees), None).await.expect("submits") {
        Submitted::Accepted { case } => *case,
        Submitted::Refused { reasons } => panic!("refused: {reasons:?}"),
    }
}

fn officer(department: &str) -> Actor {
    Actor::department(department)
}

fn complete(item: &str, step: &str) -> Command {
    Command::Complete { item: item.into(), step: step.into(), next: None }
}

fn open_tasks(case: &CaseState) -> Vec<String> {
    case.tasks.values().map(|t| format!("{}.{}@{}", t.item, t.step, t.department)).collect()
}

async fn act(engine: &Engine<AnyStore>, case: &CaseState, department: &str, item: &str, step: &str) -> CaseState {
    engine
        .act(&case.id, &complete(item, step), &officer(department), None, None)
        .await
        .unwrap_or_else(|e| panic!("{item}.{step}: {e}"))
}

/// The stored projection equals the replay of the stored events.
async fn assert_replays(engine: &Engine<AnyStore>, case: &CaseState) {
    let history = engine.history(&case.id).await.expect("history");
    let flow = engine.store_flow(&case.version_id).await;
    let replayed = CaseState::replay(&case.id, &flow, &history);
    let stored = engine.case(&case.id).await.expect("case");
    assert_eq!(replayed.tasks, stored.tasks);
    assert_eq!(replayed.status, stored.status);
    assert_eq!(replayed.version, stored.version);
    assert_eq!(replayed.version, history.len() as u64);
}

trait FlowOf {
    async fn store_flow(&self, version: &str) -> dsl::CompiledFlow;
}

impl FlowOf for Engine<AnyStore> {
    async fn store_flow(&self, version: &str) -> dsl::CompiledFlow {
        use engine::Store;
        self.store().flow(version).await.expect("reads").expect("deployed")
    }
}

async fn the_happy_path_runs_items_in_sequence_and_in_parallel_to_the_end(backend: Backend) {
    let (engine, _db) = engine(backend, "happy").await;
    let case = submit(&engine, 35, 3).await;
    assert_eq!(open_tasks(&case), ["registration.accept@samr"]);
    assert_eq!(engine.tasks("samr").await.expect("queue").len(), 1);

    let mut case = case;
    for step in ["accept", "review", "decide", "deliver"] {
        case = act(&engine, &case, "samr", "registration", step).await;
    }
    assert_eq!(open_tasks(&case), ["seal.accept@psb", "tax_setup.accept@tax"]);

    // The join waits for every branch: finishing the seal alone opens nothing new.
    case = act(&engine, &case, "psb", "seal", "accept").await;
    case = act(&engine, &case, "psb", "seal", "decide").await;
    assert_eq!(open_tasks(&case), ["tax_setup.accept@tax"]);
    case = act(&engine, &case, "tax", "tax_setup", "accept").await;
    case = act(&engine, &case, "tax", "tax_setup", "decide").await;
    // The company has employees: the conditional branch runs the social insurance item.
    assert_eq!(open_tasks(&case), ["insurance.accept@hrss"]);
    case = act(&engine, &case, "hrss", "insurance", "accept").await;
    case = act(&engine, &case, "hrss", "insurance", "decide").await;
    assert_eq!(case.status, Status::Completed);
    assert!(case.tasks.is_empty());

    let rated = engine.act(&case.id, &Command::Rate { score: 5 }, &Actor::Applicant, None, None).await.expect("rates");
    assert_eq!(rated.rating, Some(5));

    let history = engine.history(&case.id).await.expect("history");
    assert!(matches!(history.first().map(|e| &e.kind), Some(EventKind::Submitted { .. })));
    assert!(history
        .iter()
        .any(|e| matches!(&e.kind, EventKind::BranchTaken { guard: Some(g), .. } if g == "applicant.employees > 0")));
    assert!(history.iter().any(|e| matches!(e.kind, EventKind::Joined { .. })));
    assert!(matches!(history.last().map(|e| &e.kind), Some(EventKind::Rated { score: 5 })));
    assert_replays(&engine, &rated).await;
}

async fn without_employees_the_conditional_item_is_skipped(backend: Backend) {
    let (engine, _db) = engine(backend, "skip").await;
    let mut case = submit(&engine, 35, 0).await;
    for step in ["accept", "review", "decide", "deliver"] {
        case = act(&engine, &case, "samr", "registration", step).await;
    }
    for (department, item) in [("psb", "seal"), ("tax", "tax_setup")] {
        case = act(&engine, &case, department, item, "accept").await;
        case = act(&engine, &case, department, item, "decide").await;
    }
    assert_eq!(case.status, Status::Completed);
    let history = engine.history(&case.id).await.expect("history");
    assert!(history.iter().any(|e| matches!(e.kind, EventKind::BranchTaken { guard: None, .. })));
}

async fn an_ineligible_applicant_is_refused_with_the_failing_clause_and_nothing_is_stored(backend: Backend) {
    let (engine, _db) = engine(backend, "refused").await;
    let answer = engine.submit(&submission(17, 0), None).await.expect("answers");
    let Submitted::Refused { reasons } = answer else { panic!("should be refused") };
    assert_eq!(reasons.len(), 1);
    let failing: Vec<&str> = reasons[0].failing.iter().map(|c| c.source.as_str()).collect();
    assert_eq!(failing, ["applicant.age >= 18"]);
    assert_eq!(reasons[0].message.as_deref(), Some("申请人须年满18周岁且无严重失信记录"));
    assert!(engine.tasks("samr").await.expect("queue").is_empty());
}

async fn a_command_not_allowed_is_a_typed_error_that_changes_nothing(backend: Backend) {
    let (engine, _db) = engine(backend, "refusals").await;
    let case = submit(&engine, 35, 0).await;
    let before = engine.history(&case.id).await.expect("history").len();

    let wrong_step = engine.act(&case.id, &complete("registration", "decide"), &officer("samr"), None, None).await;
    assert!(matches!(wrong_step, Err(EngineError::Command(CommandError::NoSuchTask { .. }))));
    let wrong_department = engine.act(&case.id, &complete("registration", "accept"), &officer("psb"), None, None).await;
    assert!(matches!(wrong_department, Err(EngineError::Command(CommandError::NotYourTask { .. }))));
    let early_rating = engine.act(&case.id, &Command::Rate { score: 4 }, &Actor::Applicant, None, None).await;
    assert!(matches!(early_rating, Err(EngineError::Command(CommandError::NotCompleted))));
    let applicant_acts = engine.act(&case.id, &complete("registration", "accept"), &Actor::Applicant, None, None).await;
    assert!(matches!(applicant_acts, Err(EngineError::Command(CommandError::Forbidden(_)))));
    let unknown = engine.act("C-no-such-case", &Command::Withdraw, &Actor::Applicant, None, None).await;
    assert!(matches!(unknown, Err(EngineError::UnknownCase(_))));

    assert_eq!(engine.history(&case.id).await.expect("history").len(), before);
    assert_eq!(engine.case(&case.id).await.expect("case").version, case.version);
}

async fn a_retried_command_returns_the_first_answer_and_appends_nothing(backend: Backend) {
    let (engine, _db) = engine(backend, "idempotency").await;
    let case = submit(&engine, 35, 0).await;
    let command = complete("registration", "accept");
    let first = engine.act(&case.id, &command, &officer("samr"), Some("key-1"), None).await.expect("acts");
    let events = engine.history(&case.id).await.expect("history").len();
    let retry = engine.act(&case.id, &command, &officer("samr"), Some("key-1"), None).await.expect("retry answers");
    assert_eq!(retry, first);
    assert_eq!(engine.history(&case.id).await.expect("history").len(), events);

    let other = engine.act(&case.id, &complete("registration", "review"), &officer("samr"), Some("key-1"), None).await;
    assert!(matches!(other, Err(EngineError::KeyReused)));

    // Submissions too.
    let a = engine.submit(&submission(40, 0), Some("submit-1")).await.expect("submits");
    let b = engine.submit(&submission(40, 0), Some("submit-1")).await.expect("submits again");
    let (Submitted::Accepted { case: a }, Submitted::Accepted { case: b }) = (a, b) else { panic!("accepted") };
    assert_eq!(a.id, b.id, "the same case, not a second one");
}

async fn a_stale_expected_version_is_refused(backend: Backend) {
    let (engine, _db) = engine(backend, "versions").await;
    let case = submit(&engine, 35, 0).await;
    let moved = act(&engine, &case, "samr", "registration", "accept").await;
    let stale =
        engine.act(&case.id, &complete("registration", "review"), &officer("samr"), None, Some(case.version)).await;
    assert!(matches!(stale, Err(EngineError::VersionMismatch { .. })));
    let fresh =
        engine.act(&case.id, &complete("registration", "review"), &officer("samr"), None, Some(moved.version)).await;
    assert!(fresh.is_ok());
}

async fn a_supplement_round_trip_holds_the_case_until_the_materials_come(backend: Backend) {
    let (engine, _db) = engine(backend, "supplement").await;
    let case = submit(&engine, 35, 0).await;
    let request = Command::RequestSupplement {
        item: "registration".into(),
        step: "accept".into(),
        materials: vec!["章程".into(), "住所使用证明".into()],
    };
    let waiting = engine.act(&case.id, &request, &officer("samr"), None, None).await.expect("requests");
    assert_eq!(waiting.status, Status::AwaitingSupplement);
    assert_eq!(waiting.supplement.as_ref().map(|(_, m)| m.len()), Some(2), "every missing material in one notice");
    let blocked = engine.act(&case.id, &complete("registration", "accept"), &officer("samr"), None, None).await;
    assert!(matches!(blocked, Err(EngineError::Command(CommandError::AwaitingSupplement))));
    let resumed =
        engine.act(&case.id, &Command::SupplementReceived, &officer("samr"), None, None).await.expect("receives");
    assert_eq!(resumed.status, Status::Open);
    act(&engine, &resumed, "samr", "registration", "accept").await;
}

async fn a_return_sends_the_case_back_to_an_earlier_step(backend: Backend) {
    let (engine, _db) = engine(backend, "return").await;
    let case = submit(&engine, 35, 0).await;
    let case = act(&engine, &case, "samr", "registration", "accept").await;
    let back = Command::Return { item: "registration".into(), step: "review".into(), to: "accept".into() };
    let returned = engine.act(&case.id, &back, &officer("samr"), None, None).await.expect("returns");
    assert_eq!(open_tasks(&returned), ["registration.accept@samr"]);
    let not_earlier = Command::Return { item: "registration".into(), step: "accept".into(), to: "review".into() };
    let refused = engine.act(&case.id, &not_earlier, &officer("samr"), None, None).await;
    assert!(matches!(refused, Err(EngineError::Command(CommandError::NoSuchReturn { .. }))));
    assert_replays(&engine, &returned).await;
}

async fn a_withdrawn_case_takes_no_more_commands(backend: Backend) {
    let (engine, _db) = engine(backend, "withdraw").await;
    let case = submit(&engine, 35, 0).await;
    let withdrawn = engine.act(&case.id, &Command::Withdraw, &Actor::Applicant, None, None).await.expect("withdraws");
    assert_eq!(withdrawn.status, Status::Withdrawn);
    assert!(engine.tasks("samr").await.expect("queue").is_empty());
    let after = engine.act(&case.id, &complete("registration", "accept"), &officer("samr"), None, None).await;
    assert!(matches!(after, Err(EngineError::Command(CommandError::Closed(Status::Withdrawn)))));
}

async fn a_rejection_ends_the_case_with_its_reason(backend: Backend) {
    let (engine, _db) = engine(backend, "reject").await;
    let case = submit(&engine, 35, 0).await;
    let reject =
        Command::Reject {
            item: "registration".into(), step: "accept".into(), reason: "名称与已登记企业相同".into()
        };
    let rejected = engine.act(&case.id, &reject, &officer("samr"), None, None).await.expect("rejects");
    assert_eq!(rejected.status, Status::Rejected);
    let history = engine.history(&case.id).await.expect("history");
    assert!(
        matches!(&history.last().map(|e| &e.kind), Some(EventKind::Rejected { reason, .. }) if reason == "名称与已登记企业相同")
    );
}

const COSIGN_FLOW: &str = r#"
department samr "市场监督管理局"
department psb  "公安局"
department tax  "税务局"
schema applicant { name string pii(name)  age int }
item permit "许可" {
  department samr
  handling   immediate
  steps {
    accept -> review -> decide
    review "审查" cosign psb, tax
  }
}
process p "加签" {
  window samr
  flow   { permit }
}
"#;

async fn a_step_with_co_signers_waits_for_every_one_of_them(backend: Backend) {
    let setup = support::setup(backend, "cosign", COSIGN_FLOW, "p", "2026-09-30T01:00:00Z").await;
    let (engine, _db) = (setup.engine, setup.db);
    let mut data = serde_json::Map::new();
    data.insert("applicant".into(), json!({"name": "张三", "age": 30}));
    let Submitted::Accepted { case } =
        engine.submit(&Submission { flow: "p".into(), data, ..Submission::default() }, None).await.expect("submits")
    else {
        panic!("accepted")
    };
    let case = act(&engine, &case, "samr", "permit", "accept").await;
    let review = complete("permit", "review");
    let early = engine.act(&case.id, &review, &officer("samr"), None, None).await;
    assert!(matches!(early, Err(EngineError::Command(CommandError::CosignPending(who))) if who == "psb, tax"));
    let cosign = Command::CoSign { item: "permit".into(), step: "review".into() };
    let stranger = engine.act(&case.id, &cosign, &officer("hrss"), None, None).await;
    assert!(matches!(stranger, Err(EngineError::Command(CommandError::NotACosigner(_)))));
    engine.act(&case.id, &cosign, &officer("psb"), None, None).await.expect("psb co-signs");
    let still = engine.act(&case.id, &review, &officer("samr"), None, None).await;
    assert!(matches!(still, Err(EngineError::Command(CommandError::CosignPending(who))) if who == "tax"));
    engine.act(&case.id, &cosign, &officer("tax"), None, None).await.expect("tax co-signs");
    let done = engine.act(&case.id, &review, &officer("samr"), None, None).await.expect("review completes");
    assert_eq!(open_tasks(&done), ["permit.decide@samr"]);
    assert_replays(&engine, &done).await;
}

async fn a_subscriber_sees_every_event_in_order_and_resumes_from_its_position(backend: Backend) {
    let (engine, _db) = engine(backend, "subscribe").await;
    let case = submit(&engine, 35, 0).await;
    let history = engine.history(&case.id).await.expect("history");
    let mut feed = engine.subscribe(0);
    let mut seen = Vec::new();
    for _ in 0..history.len() {
        seen.push(feed.next().await.expect("event").event);
    }
    assert_eq!(seen, history);
    let resume_at = feed.position();

    act(&engine, &case, "samr", "registration", "accept").await;
    let mut resumed = engine.subscribe(resume_at);
    let next =
        tokio::time::timeout(std::time::Duration::from_secs(5), resumed.next()).await.expect("in time").expect("event");
    assert!(matches!(next.event.kind, EventKind::TaskCompleted { .. }), "{next:?}");
    assert!(next.position > resume_at);

    // The same feed as a Stream.
    use futures_util::StreamExt;
    let streamed: Vec<Event> =
        engine.subscribe(0).into_stream().take(history.len()).map(|item| item.expect("event").event).collect().await;
    assert_eq!(streamed, history);
}

conformance!(
    the_happy_path_runs_items_in_sequence_and_in_parallel_to_the_end,
    without_employees_the_conditional_item_is_skipped,
    an_ineligible_applicant_is_refused_with_the_failing_clause_and_nothing_is_stored,
    a_command_not_allowed_is_a_typed_error_that_changes_nothing,
    a_retried_command_returns_the_first_answer_and_appends_nothing,
    a_stale_expected_version_is_refused,
    a_supplement_round_trip_holds_the_case_until_the_materials_come,
    a_return_sends_the_case_back_to_an_earlier_step,
    a_withdrawn_case_takes_no_more_commands,
    a_rejection_ends_the_case_with_its_reason,
    a_step_with_co_signers_waits_for_every_one_of_them,
    a_subscriber_sees_every_event_in_order_and_resumes_from_its_position,
);
