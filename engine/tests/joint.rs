//! Joint cases, where several departments work at once: a 补正 holds only its own task and
//! stops only its own clocks, a finished item's clock stands still, items behind a branch are
//! checked at submission, parallel branches open in source order, 转办 hands a task to one
//! officer, and two engines sharing a store never act on a stale case.
//!
//! The 2026 calendar around National Day: Oct 1-7 off, Sat Oct 10 a make-up working day.

#[macro_use]
mod support;

use engine::case::Level;
use engine::{Actor, CaseState, Command, CommandError, EngineError, EventKind, Status, Submission, Submitted};
use serde_json::json;
use support::{at, engine_at, setup, Backend, Setup};

const FLOW: &str = r#"
department samr "市场监督管理局"
department psb  "公安局"
department tax  "税务局"
department hrss "人力资源和社会保障局"

schema applicant {
  name      string pii(name)
  age       int
  employees int
}

item registration "企业设立登记" {
  department     samr
  handling       promised
  promised_limit 1 workday
}

item seal "印章刻制备案" {
  department     psb
  handling       promised
  promised_limit 2 workdays
  supplement     pauses_clock
  materials {
    seal_form "印章刻制申请表"
  }
}

item tax_setup "新办纳税人套餐" {
  department     tax
  handling       promised
  promised_limit 2 workdays
  supplement     keeps_clock
}

item insurance "社会保险登记" {
  department hrss
  handling   immediate
  eligible   applicant.age >= 18 else "参保登记须由成年人办理"
}

process p "开办企业一件事" {
  window samr
  sla    5 workdays
  flow   { registration -> parallel { seal, tax_setup } -> if applicant.employees > 0 { insurance } }
  warn   red at overdue
}
"#;

/// Wed 2026-09-30, 09:00 Beijing.
const EVE: &str = "2026-09-30T01:00:00Z";

fn submission(age: i64, employees: i64) -> Submission {
    let mut data = serde_json::Map::new();
    data.insert("applicant".into(), json!({"name": "张三", "age": age, "employees": employees}));
    Submission { flow: "p".into(), data, ..Submission::default() }
}

async fn submit(setup: &Setup, age: i64, employees: i64) -> CaseState {
    match setup.engine.submit(&submission(age, employees), None).await.expect("submits") {
        Submitted::Accepted { case } => *case,
        Submitted::Refused { reasons } => panic!("refused: {reasons:?}"),
    }
}

fn complete(item: &str, step: &str) -> Command {
    Command::Complete { item: item.into(), step: step.into(), next: None }
}

/// Runs the registration through its four default steps.
async fn register(setup: &Setup, case: &str) -> CaseState {
    let mut state = None;
    for step in ["accept", "review", "decide", "deliver"] {
        state = Some(
            setup
                .engine
                .act(case, &complete("registration", step), &Actor::department("samr"), None, None)
                .await
                .expect(step),
        );
    }
    state.expect("four steps")
}

fn due(case: &CaseState, scope: &str) -> String {
    case.deadlines[scope].due.clone()
}

async fn a_supplement_holds_its_own_task_and_stops_only_its_own_clocks(backend: Backend) {
    let setup = setup(backend, "joint-supplement", FLOW, "p", EVE).await;
    let case = submit(&setup, 30, 0).await;
    // Registration on Wed 09-30: seal and tax open the same day, 2 working days each: Oct 1-7
    // are off, so Thu 10-08 is 1 and Fri 10-09 is 2. The process: 5 from 09-30 are 10-08,
    // 10-09, Sat 10-10 (make-up), 10-12 and Tue 10-13.
    let state = register(&setup, &case.id).await;
    assert_eq!(
        (due(&state, "seal"), due(&state, "tax_setup"), due(&state, "process")),
        ("2026-10-09".to_string(), "2026-10-09".to_string(), "2026-10-13".to_string())
    );
    // Thu 10-08: the police ask for the seal form again (补正).
    setup.clock.set(at("2026-10-08T02:00:00Z"));
    let supplement =
        Command::RequestSupplement { item: "seal".into(), step: "accept".into(), materials: vec!["seal_form".into()] };
    let held = setup.engine.act(&case.id, &supplement, &Actor::department("psb"), None, None).await.expect("asks");
    assert_eq!(held.status, Status::AwaitingSupplement);
    let refused = setup.engine.act(&case.id, &complete("seal", "accept"), &Actor::department("psb"), None, None).await;
    assert!(matches!(refused, Err(EngineError::Command(CommandError::AwaitingSupplement))), "{refused:?}");
    // The tax office goes on meanwhile.
    for step in ["accept", "review", "decide", "deliver"] {
        setup
            .engine
            .act(&case.id, &complete("tax_setup", step), &Actor::department("tax"), None, None)
            .await
            .expect(step);
    }
    // Mon 10-12 the form comes: the clock stood still on 10-08, 10-09 and Sat 10-10 (3 working
    // days, as in clocks.rs), so the seal's clock and the process's move by 3: Fri 10-09 →
    // Tue 10-13, Tue 10-13 → Fri 10-16. The tax office's clock never stopped, and it finished
    // on 10-08: still 10-09.
    setup.clock.set(at("2026-10-12T02:00:00Z"));
    let resumed = setup
        .engine
        .act(&case.id, &Command::SupplementReceived, &Actor::Applicant, None, None)
        .await
        .expect("received");
    assert_eq!(resumed.status, Status::Open);
    assert_eq!(due(&resumed, "seal"), "2026-10-13");
    assert_eq!(due(&resumed, "process"), "2026-10-16");
    assert_eq!(due(&resumed, "tax_setup"), "2026-10-09");
    assert_eq!(resumed.deadlines["tax_setup"].finished.as_deref(), Some("2026-10-08"));
}

async fn a_finished_item_raises_no_warning_however_late_the_case_is(backend: Backend) {
    let setup = setup(backend, "joint-finished", FLOW, "p", EVE).await;
    let case = submit(&setup, 30, 0).await;
    register(&setup, &case.id).await;
    // A month later the registration (due 10-08) is long done; the process (due 10-13) is late.
    setup.clock.set(at("2026-11-02T02:00:00Z"));
    setup.engine.tick().await.expect("ticks");
    let history = setup.engine.history(&case.id).await.expect("history");
    let warnings: Vec<(String, Level)> = history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::WarningRaised { scope, level } => Some((scope.clone(), *level)),
            _ => None,
        })
        .collect();
    assert!(warnings.contains(&("process".to_string(), Level::Red)), "{warnings:?}");
    assert!(warnings.contains(&("seal".to_string(), Level::Red)), "the seal is late too: {warnings:?}");
    assert!(!warnings.iter().any(|(scope, _)| scope == "registration"), "registration finished in time: {warnings:?}");
}

async fn items_behind_a_branch_are_checked_when_the_case_will_run_them(backend: Backend) {
    let setup = setup(backend, "joint-branch-eligibility", FLOW, "p", EVE).await;
    // A 17-year-old with staff would reach the insurance item, whose rule refuses them.
    let refused = setup.engine.submit(&submission(17, 3), None).await.expect("answers");
    let Submitted::Refused { reasons } = refused else { panic!("accepted: {refused:?}") };
    let clauses: Vec<&str> = reasons.iter().flat_map(|r| r.failing.iter().map(|c| c.source.as_str())).collect();
    assert_eq!(clauses, ["applicant.age >= 18"]);
    assert_eq!(reasons[0].message.as_deref(), Some("参保登记须由成年人办理"));
    // Without staff the branch is not taken: nothing to refuse.
    submit(&setup, 17, 0).await;
}

async fn parallel_branches_open_in_the_order_they_are_written(backend: Backend) {
    let setup = setup(backend, "joint-order", FLOW, "p", EVE).await;
    let case = submit(&setup, 30, 0).await;
    register(&setup, &case.id).await;
    let opened: Vec<String> = setup
        .engine
        .history(&case.id)
        .await
        .expect("history")
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::TaskOpened { item, .. } if item != "registration" => Some(item.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(opened, ["seal", "tax_setup"]);
}

async fn a_transferred_task_is_acted_on_by_its_officer_only(backend: Backend) {
    let setup = setup(backend, "joint-transfer", FLOW, "p", EVE).await;
    let case = submit(&setup, 30, 0).await;
    let transfer = |to: &str| Command::Transfer {
        item: "registration".into(),
        step: "accept".into(),
        to: to.into(),
        reason: "该类企业由王科长承办".into(),
    };
    let stranger = setup.engine.act(&case.id, &transfer("wang"), &Actor::department("psb"), None, None).await;
    assert!(matches!(stranger, Err(EngineError::Command(CommandError::NotYourTask { .. }))), "{stranger:?}");
    let nobody = setup.engine.act(&case.id, &transfer(" "), &Actor::department("samr"), None, None).await;
    assert!(matches!(nobody, Err(EngineError::Command(CommandError::NoTransferTarget))), "{nobody:?}");
    let handed =
        setup.engine.act(&case.id, &transfer("wang"), &Actor::department("samr"), None, None).await.expect("hands");
    assert_eq!(handed.tasks.values().next().and_then(|t| t.assignee.as_deref()), Some("wang"));
    for other in [Actor::department("samr"), Actor::officer("samr", "li")] {
        let refused = setup.engine.act(&case.id, &complete("registration", "accept"), &other, None, None).await;
        assert!(
            matches!(&refused, Err(EngineError::Command(CommandError::AssignedToOther { assignee })) if assignee == "wang"),
            "{refused:?}"
        );
    }
    // The officer may hand it on again; then it is the new officer's.
    let wang = Actor::officer("samr", "wang");
    setup.engine.act(&case.id, &transfer("zhao"), &wang, None, None).await.expect("hands on");
    let zhao = Actor::officer("samr", "zhao");
    let done =
        setup.engine.act(&case.id, &complete("registration", "accept"), &zhao, None, None).await.expect("zhao acts");
    assert_eq!(done.tasks.values().next().map(|t| (t.step.as_str(), t.assignee.is_none())), Some(("review", true)));
}

async fn two_engines_on_one_store_never_act_on_a_stale_case(backend: Backend) {
    let setup = setup(backend, "joint-two-engines", FLOW, "p", EVE).await;
    let other = engine_at(&setup.url, std::sync::Arc::clone(&setup.clock)).await;
    let case = submit(&setup, 30, 0).await;
    // The first engine knows the case at version N; the second moves it on behind its back.
    setup
        .engine
        .act(&case.id, &complete("registration", "accept"), &Actor::department("samr"), None, None)
        .await
        .expect("a");
    other.act(&case.id, &complete("registration", "review"), &Actor::department("samr"), None, None).await.expect("b");
    // The first engine's cached state says `review` is open; the store says `decide`.
    let decided = setup
        .engine
        .act(&case.id, &complete("registration", "decide"), &Actor::department("samr"), None, None)
        .await
        .expect("decides on the stored state");
    assert_eq!(decided.tasks.values().next().map(|t| t.step.as_str()), Some("deliver"));
    let replayed =
        CaseState::replay(&case.id, &dsl_flow(&setup).await, &setup.engine.history(&case.id).await.expect("history"));
    assert_eq!(replayed, setup.engine.case(&case.id).await.expect("reads"), "the projection equals the replay");
}

async fn dsl_flow(setup: &Setup) -> dsl::CompiledFlow {
    use engine::Store;
    let version = setup.engine.store().latest_version("p").await.expect("reads").expect("deployed");
    setup.engine.store().flow(&version).await.expect("reads").expect("deployed")
}

async fn two_racing_commands_on_one_case_apply_once(backend: Backend) {
    let setup = setup(backend, "joint-race", FLOW, "p", EVE).await;
    for _ in 0..20 {
        let case = submit(&setup, 30, 0).await;
        let accept = complete("registration", "accept");
        let samr = Actor::department("samr");
        let (a, b) = tokio::join!(
            setup.engine.act(&case.id, &accept, &samr, None, None),
            setup.engine.act(&case.id, &accept, &samr, None, None)
        );
        assert!(a.is_ok() != b.is_ok(), "exactly one of them: {a:?} {b:?}");
        let refused = if a.is_ok() { b } else { a };
        // The loser's write found the case moved; decided again on the stored case, the task
        // it asked for is done: it is refused for that, not for the race.
        assert!(matches!(refused, Err(EngineError::Command(CommandError::NoSuchTask { .. }))), "{refused:?}");
        let history = setup.engine.history(&case.id).await.expect("history");
        let completed = history.iter().filter(|e| matches!(e.kind, EventKind::TaskCompleted { .. })).count();
        assert_eq!(completed, 1);
    }
}

conformance!(
    a_supplement_holds_its_own_task_and_stops_only_its_own_clocks,
    a_finished_item_raises_no_warning_however_late_the_case_is,
    items_behind_a_branch_are_checked_when_the_case_will_run_them,
    parallel_branches_open_in_the_order_they_are_written,
    a_transferred_task_is_acted_on_by_its_officer_only,
    two_engines_on_one_store_never_act_on_a_stale_case,
    two_racing_commands_on_one_case_apply_once,
);
