//! Clocks in working days on the real 2026 calendar: deadlines, pauses for 补正 and special
//! procedures, extensions, 容缺 deadlines, yellow and red warnings, and timers that fire once,
//! also after a restart. Every expected date is worked out by hand in the comments.
//!
//! The 2026 schedule around National Day: Oct 1-7 off, Sat Oct 10 a make-up working day.

#[macro_use]
mod support;

use engine::case::Level;
use engine::{Actor, CaseState, Command, CommandError, EngineError, EventKind, Status, Submission, Submitted};
use serde_json::json;
use support::{at, setup, Backend, Setup};

const FLOW: &str = r#"
department samr "市场监督管理局"
department psb  "公安局"

schema applicant { name string pii(name)  age int }

item registration "企业设立登记" {
  department     samr
  handling       promised
  promised_limit 1 workday
  supplement     pauses_clock
  materials {
    住所使用证明 "住所使用证明" tolerated
    章程         "公司章程"
  }
}

item seal "印章刻制备案" {
  department psb
  handling   immediate
}

process p "联办" {
  window samr
  sla    5 workdays
  flow   { registration -> seal }
  warn   yellow at 60% of sla, red at overdue
}
"#;

/// Wed 2026-09-30, 09:00 in Beijing.
const EVE_OF_NATIONAL_DAY: &str = "2026-09-30T01:00:00Z";

async fn submit(setup: &Setup) -> CaseState {
    let mut data = serde_json::Map::new();
    data.insert("applicant".into(), json!({"name": "张三", "age": 30}));
    let submission = Submission { flow: "p".into(), data, ..Submission::default() };
    match setup.engine.submit(&submission, None).await.expect("submits") {
        Submitted::Accepted { case } => *case,
        Submitted::Refused { reasons } => panic!("refused: {reasons:?}"),
    }
}

fn due(case: &CaseState, scope: &str) -> (String, Option<String>) {
    let d = &case.deadlines[scope];
    (d.due.clone(), d.yellow.clone())
}

fn samr() -> Actor {
    Actor::department("samr")
}

async fn warnings(setup: &Setup, id: &str) -> Vec<(String, Level)> {
    setup
        .engine
        .history(id)
        .await
        .expect("history")
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::WarningRaised { scope, level } => Some((scope, level)),
            _ => None,
        })
        .collect()
}

/// Five working days after Wed 09-30: Thu 10-08 (1), Fri 10-09 (2), Sat 10-10 (3, made up),
/// Mon 10-12 (4), Tue 10-13 (5). Yellow at 60% = 3 working days: Sat 10-10. The item's one
/// promised working day ends Thu 10-08.
async fn deadlines_count_working_days_on_the_official_calendar(backend: Backend) {
    let setup = setup(backend, "deadlines", FLOW, "p", EVE_OF_NATIONAL_DAY).await;
    let case = submit(&setup).await;
    assert_eq!(due(&case, "process"), ("2026-10-13".into(), Some("2026-10-10".into())));
    assert_eq!(due(&case, "registration"), ("2026-10-08".into(), None));
}

async fn yellow_then_red_fire_once_each_at_the_close_of_their_day(backend: Backend) {
    let setup = setup(backend, "warnings", FLOW, "p", EVE_OF_NATIONAL_DAY).await;
    let case = submit(&setup).await;

    // Thu 10-08 23:59 Beijing: the item's day is not over yet.
    setup.clock.set(at("2026-10-08T15:59:00Z"));
    assert_eq!(setup.engine.tick().await.expect("ticks"), 0);
    // Fri 10-09 00:00:01 Beijing: the item is overdue.
    setup.clock.set(at("2026-10-08T16:00:01Z"));
    assert_eq!(setup.engine.tick().await.expect("ticks"), 1);
    assert_eq!(warnings(&setup, &case.id).await, [("registration".to_string(), Level::Red)]);

    // Sun 10-11 00:00:01: the yellow day (Sat 10-10) has closed.
    setup.clock.set(at("2026-10-10T16:00:01Z"));
    assert_eq!(setup.engine.tick().await.expect("ticks"), 1);
    // Wed 10-14 00:00:01: the process is overdue.
    setup.clock.set(at("2026-10-13T16:00:01Z"));
    assert_eq!(setup.engine.tick().await.expect("ticks"), 1);
    assert_eq!(setup.engine.tick().await.expect("ticks"), 0, "a timer fires once");
    assert_eq!(
        warnings(&setup, &case.id).await,
        [("registration".to_string(), Level::Red), ("process".into(), Level::Yellow), ("process".into(), Level::Red)]
    );
}

/// 补正 asked on Thu 10-08 and answered on Mon 10-12: the working days Fri 10-09, Sat 10-10
/// and Mon 10-12 (3) do not count, so the process is due 3 working days after Tue 10-13:
/// Wed 10-14, Thu 10-15, Fri 10-16. Yellow moves 3 working days from Sat 10-10: Mon 10-12,
/// Tue 10-13, Wed 10-14.
async fn a_supplement_pauses_the_clock_for_exactly_its_working_days(backend: Backend) {
    let setup = setup(backend, "supplement", FLOW, "p", EVE_OF_NATIONAL_DAY).await;
    let case = submit(&setup).await;
    setup.clock.set(at("2026-10-08T02:00:00Z"));
    let request = Command::RequestSupplement {
        item: "registration".into(),
        step: "accept".into(),
        materials: vec!["章程".into()],
    };
    let paused = setup.engine.act(&case.id, &request, &samr(), None, None).await.expect("requests");
    assert!(paused.paused.is_some());
    // While paused no timer runs, even long past the old deadline.
    setup.clock.set(at("2026-10-11T02:00:00Z"));
    assert_eq!(setup.engine.tick().await.expect("ticks"), 0);

    setup.clock.set(at("2026-10-12T02:00:00Z"));
    let resumed =
        setup.engine.act(&case.id, &Command::SupplementReceived, &samr(), None, None).await.expect("receives");
    assert_eq!(due(&resumed, "process"), ("2026-10-16".into(), Some("2026-10-14".into())));
    // The item's Thu 10-08 moves by the same 3 days: Fri 10-09, Sat 10-10, Mon 10-12.
    assert_eq!(due(&resumed, "registration").0, "2026-10-12");
    let history = setup.engine.history(&case.id).await.expect("history");
    assert!(history.iter().any(|e| matches!(e.kind, EventKind::ClockResumed { paused_days: 3, .. })));
}

/// A special procedure from Thu 10-08 to Mon 10-12 is excluded like a supplement (3 days);
/// an extension of 2 working days with approval then moves Fri 10-16 to Tue 10-20.
async fn special_procedures_are_excluded_and_extensions_add_working_days(backend: Backend) {
    let setup = setup(backend, "special", FLOW, "p", EVE_OF_NATIONAL_DAY).await;
    let case = submit(&setup).await;
    setup.clock.set(at("2026-10-08T02:00:00Z"));
    let start = Command::StartSpecialProcedure { kind: "专家评审".into(), reason: "技术审查".into() };
    setup.engine.act(&case.id, &start, &samr(), None, None).await.expect("starts");
    let twice = setup.engine.act(&case.id, &start, &samr(), None, None).await;
    assert!(twice.is_err(), "one special procedure at a time");
    setup.clock.set(at("2026-10-12T02:00:00Z"));
    let ended = setup.engine.act(&case.id, &Command::EndSpecialProcedure, &samr(), None, None).await.expect("ends");
    assert_eq!(due(&ended, "process").0, "2026-10-16");
    let extend = Command::Extend { days: 2, approval: "局长审批 2026-101".into() };
    let extended = setup.engine.act(&case.id, &extend, &samr(), None, None).await.expect("extends");
    assert_eq!(due(&extended, "process").0, "2026-10-20");
    let stranger = setup.engine.act(&case.id, &extend, &Actor::department("psb"), None, None).await;
    assert!(stranger.is_err(), "only a department handling the case may extend it");
}

/// 容缺 on Wed 09-30 with 2 working days: due Fri 10-09 (Thu 10-08 is 1, Fri 10-09 is 2).
async fn tolerated_materials_missed_end_the_case_and_met_ones_do_not(backend: Backend) {
    let setup = setup(backend, "tolerance", FLOW, "p", EVE_OF_NATIONAL_DAY).await;
    let tolerate = Command::Tolerate {
        item: "registration".into(),
        step: "accept".into(),
        materials: vec!["住所使用证明".into()],
        days: 2,
    };

    let missed = submit(&setup).await;
    let not_tolerable = Command::Tolerate {
        item: "registration".into(),
        step: "accept".into(),
        materials: vec!["章程".into()],
        days: 2,
    };
    let refused = setup.engine.act(&missed.id, &not_tolerable, &samr(), None, None).await;
    assert!(
        matches!(refused, Err(EngineError::Command(CommandError::NotTolerable { .. }))),
        "only materials marked `tolerated` may be missing: {refused:?}"
    );
    let accepted = setup.engine.act(&missed.id, &tolerate, &samr(), None, None).await.expect("tolerates");
    assert_eq!(accepted.tolerated, Some((vec!["住所使用证明".to_string()], "2026-10-09".to_string())));
    assert_eq!(accepted.tasks.values().next().map(|t| t.step.as_str()), Some("review"), "the case goes on");

    let met = submit(&setup).await;
    setup.engine.act(&met.id, &tolerate, &samr(), None, None).await.expect("tolerates");
    setup.clock.set(at("2026-10-09T03:00:00Z"));
    setup.engine.act(&met.id, &Command::ToleratedReceived, &samr(), None, None).await.expect("received");

    // Sat 10-10 00:00:01 Beijing: Fri 10-09 has closed.
    setup.clock.set(at("2026-10-09T16:00:01Z"));
    setup.engine.tick().await.expect("ticks");
    assert_eq!(setup.engine.case(&missed.id).await.expect("case").status, Status::Terminated);
    assert_ne!(setup.engine.case(&met.id).await.expect("case").status, Status::Terminated);
}

/// Timers that fall due while no engine runs fire when one starts, once, whichever engine
/// ticks first.
async fn timers_due_while_down_fire_once_after_a_restart(backend: Backend) {
    let first = setup(backend, "restart", FLOW, "p", EVE_OF_NATIONAL_DAY).await;
    let case = submit(&first).await;
    let url = first.url.clone();
    let _db = std::sync::Arc::clone(&first.db);
    drop(first);

    let clock = std::sync::Arc::new(engine::ManualClock::new(at("2026-10-20T02:00:00Z")));
    let a = support::engine_at(&url, std::sync::Arc::clone(&clock)).await;
    let b = support::engine_at(&url, clock).await;
    let fired = a.tick().await.expect("ticks") + b.tick().await.expect("ticks");
    // The item's red, the process's yellow and red.
    assert_eq!(fired, 3);
    assert_eq!(a.tick().await.expect("ticks") + b.tick().await.expect("ticks"), 0);
    let history = a.history(&case.id).await.expect("history");
    assert_eq!(history.iter().filter(|e| matches!(e.kind, EventKind::WarningRaised { .. })).count(), 3);
}

const STEP_LIMITS: &str = r#"
department samr "市场监督管理局"
schema applicant { name string pii(name)  age int }
item licence "食品经营许可" {
  department     samr
  handling       promised
  promised_limit 5 workdays
  steps {
    accept -> review -> decide
    review limit 2 workdays back accept
  }
}
process p "联办" {
  window samr
  flow   { licence }
}
"#;

/// A step's own limit (环节时限) runs from each time the step opens: 2 working days from Wed
/// 09-30 end on Fri 10-09 (Oct 1-7 off); reopened on Thu 10-08 after a 退回, on Sat 10-10
/// (a make-up working day). A step done in time raises nothing; one left open turns red.
async fn a_step_limit_runs_from_each_opening_of_the_step(backend: Backend) {
    let setup = setup(backend, "step-limits", STEP_LIMITS, "p", EVE_OF_NATIONAL_DAY).await;
    let act = |case: &str, command: Command| {
        let engine = &setup.engine;
        let case = case.to_string();
        async move { engine.act(&case, &command, &samr(), None, None).await.expect("acts") }
    };
    let step = |name: &str| Command::Complete { item: "licence".into(), step: name.into(), next: None };

    let late = submit(&setup).await;
    let opened = act(&late.id, step("accept")).await;
    assert_eq!(due(&opened, "licence/review").0, "2026-10-09");

    let on_time = submit(&setup).await;
    act(&on_time.id, step("accept")).await;
    setup.clock.set(at("2026-10-08T02:00:00Z"));
    let back = Command::Return { item: "licence".into(), step: "review".into(), to: "accept".into() };
    let returned = act(&on_time.id, back).await;
    assert_eq!(returned.deadlines["licence/review"].finished.as_deref(), Some("2026-10-08"));
    let reopened = act(&on_time.id, step("accept")).await;
    assert_eq!(due(&reopened, "licence/review").0, "2026-10-10", "counted again from the reopening");
    assert_eq!(reopened.deadlines["licence/review"].finished, None);
    let done = act(&on_time.id, step("review")).await;
    assert_eq!(done.deadlines["licence/review"].finished.as_deref(), Some("2026-10-08"));

    // Mon 10-12: the first case's review is overdue; the second's was done in time.
    setup.clock.set(at("2026-10-12T02:00:00Z"));
    setup.engine.tick().await.expect("ticks");
    let red = |case: &str| {
        let engine = &setup.engine;
        let case = case.to_string();
        async move {
            engine.history(&case).await.expect("history").iter().any(|e| {
                matches!(&e.kind, EventKind::WarningRaised { scope, level: Level::Red } if scope == "licence/review")
            })
        }
    };
    assert!(red(&late.id).await, "the open review is late");
    assert!(!red(&on_time.id).await, "the review done in time raises nothing");
}

/// A backlog: 700 cases whose three warnings all fell due while no engine ran (more than one
/// batch of a tick) are all fired by one tick, each warning once.
async fn one_tick_fires_a_whole_backlog(backend: Backend) {
    let setup = setup(backend, "backlog", FLOW, "p", EVE_OF_NATIONAL_DAY).await;
    let mut ids = Vec::new();
    for _ in 0..700 {
        ids.push(submit(&setup).await.id);
    }
    // Wed 10-14 00:00:01 Beijing: the item's red, the process's yellow and red are all due.
    setup.clock.set(at("2026-10-13T16:00:01Z"));
    assert_eq!(setup.engine.tick().await.expect("ticks"), 3 * 700);
    assert_eq!(setup.engine.tick().await.expect("ticks"), 0, "each fires once");
    for id in [&ids[0], &ids[350], &ids[699]] {
        assert_eq!(warnings(&setup, id).await.len(), 3, "{id}");
    }
}

conformance!(
    deadlines_count_working_days_on_the_official_calendar,
    yellow_then_red_fire_once_each_at_the_close_of_their_day,
    a_supplement_pauses_the_clock_for_exactly_its_working_days,
    special_procedures_are_excluded_and_extensions_add_working_days,
    tolerated_materials_missed_end_the_case_and_met_ones_do_not,
    timers_due_while_down_fire_once_after_a_restart,
    a_step_limit_runs_from_each_opening_of_the_step,
    one_tick_fires_a_whole_backlog,
);
