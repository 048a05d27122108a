//! Stall analysis on scripted cases, on the real 2026 calendar, every figure worked out by hand.
//!
//! The 2026 schedule around National Day: Fri Sep 25 - Sun Sep 27 off (中秋), Oct 1-7 off,
//! Sat Oct 10 a make-up working day. Working days from Thu Sep 24 on: Sep 28, 29, 30, Oct 8,
//! 9, 10, 12, 13 …
//!
//! The script (09:00 Beijing each time):
//! - A submitted Thu Sep 24; process due Wed Sep 30 (3 working days: Sep 28, 29, 30), yellow
//!   (60% of 3 = 1 day) Mon Sep 28, item due Tue Sep 29 (2 days).
//! - B submitted Mon Sep 28 (due Oct 8, yellow Sep 29, item Sep 30); samr accepts on Tue Sep 29.
//! - C submitted Wed Sep 30 (due Sat Oct 10, yellow Thu Oct 8, item Fri Oct 9); samr accepts and
//!   reviews the same day; psb handles the seal on Fri Oct 9 (after a tick there); rated 5.
//! - D submitted Wed Sep 30 (same clocks as C); samr asks for a 补正 at once, never answered
//!   (registration keeps its clock during a 补正).
//! - Fri Oct 9: a tick raises A's three warnings (yellow process, red item, red process), B's
//!   three (its process's red: Oct 8 closed at midnight), C's yellow and D's yellow.
//! - Mon Oct 12: a tick raises D's red item (Oct 9) and red process (Oct 10); then samr accepts A.

mod support;

use engine::stalls::{Spread, StallFilter, Stalls};
use engine::{Actor, CaseState, Command, Submission, Submitted};
use serde_json::json;
use support::{at, setup, Setup};

const FLOW: &str = r#"
department samr "市场监督管理局"
department psb  "公安局"

schema applicant { name string pii(name)  age int }

item registration "企业设立登记" {
  department     samr
  handling       promised
  promised_limit 2 workdays
  visits         1
  supplement     keeps_clock
  steps          { accept -> review }
}

item seal "印章刻制备案" {
  department psb
  handling   immediate
  steps      { handle "办理" }
}

process p "开办企业" {
  window samr
  sla    3 workdays
  flow   { registration -> seal }
  warn   yellow at 60% of sla, red at overdue
}
"#;

async fn submit(setup: &Setup, when: &str) -> CaseState {
    setup.clock.set(at(when));
    let mut data = serde_json::Map::new();
    data.insert("applicant".into(), json!({"name": "张三", "age": 30}));
    let submission = Submission { flow: "p".into(), data, ..Submission::default() };
    match setup.engine.submit(&submission, None).await.expect("submits") {
        Submitted::Accepted { case } => *case,
        Submitted::Refused { reasons } => panic!("refused: {reasons:?}"),
    }
}

async fn complete(setup: &Setup, when: &str, case: &str, department: &str, item: &str, step: &str) {
    setup.clock.set(at(when));
    let command = Command::Complete { item: item.into(), step: step.into(), next: None };
    setup.engine.act(case, &command, &Actor::department(department), None, None).await.expect("completes");
}

/// Runs the script above; returns the engine set at Mon Oct 12 and the case ids A, B, C, D.
async fn scripted(name: &str) -> (Setup, [String; 4]) {
    let setup = setup(name, FLOW, "p", "2026-09-24T01:00:00Z").await;
    let a = submit(&setup, "2026-09-24T01:00:00Z").await.id;
    let b = submit(&setup, "2026-09-28T01:00:00Z").await.id;
    complete(&setup, "2026-09-29T01:00:00Z", &b, "samr", "registration", "accept").await;
    let c = submit(&setup, "2026-09-30T01:00:00Z").await.id;
    complete(&setup, "2026-09-30T01:00:00Z", &c, "samr", "registration", "accept").await;
    complete(&setup, "2026-09-30T01:00:00Z", &c, "samr", "registration", "review").await;
    let d = submit(&setup, "2026-09-30T01:00:00Z").await.id;
    let supplement = Command::RequestSupplement {
        item: "registration".into(),
        step: "accept".into(),
        materials: vec!["章程".into()],
    };
    setup.engine.act(&d, &supplement, &Actor::department("samr"), None, None).await.expect("asks");

    setup.clock.set(at("2026-10-09T01:00:00Z"));
    assert_eq!(setup.engine.tick().await.expect("ticks"), 8, "A 3, B 3, C 1, D 1");
    complete(&setup, "2026-10-09T01:00:00Z", &c, "psb", "seal", "handle").await;
    setup.engine.act(&c, &Command::Rate { score: 5 }, &Actor::Applicant, None, None).await.expect("rates");

    setup.clock.set(at("2026-10-12T01:00:00Z"));
    assert_eq!(setup.engine.tick().await.expect("ticks"), 2, "D's two reds");
    complete(&setup, "2026-10-12T01:00:00Z", &a, "samr", "registration", "accept").await;
    (setup, [a, b, c, d])
}

fn spread(p50: i64, p90: i64, max: i64) -> Spread {
    Spread { p50, p90, max }
}

#[tokio::test]
async fn figures_of_a_scripted_day_worked_out_by_hand() {
    let (setup, [a, b, c, d]) = scripted("stalls-all").await;
    let stalls = setup.engine.stalls(&StallFilter::default()).await.expect("stalls");
    assert_eq!(stalls.today, "2026-10-12");

    // Per state. accept: D since Sep 30 (Oct 8, 9, 10, 12: 4 working days), past its item's
    // Oct 9. review: B since Sep 29 (5: Sep 30 and D's four), A since today (0); both past.
    let states: Vec<_> = stalls
        .states
        .iter()
        .map(|s| {
            (
                s.process.as_str(),
                s.item.as_str(),
                s.step.as_str(),
                s.department.as_str(),
                s.waiting,
                s.days.clone(),
                s.overdue,
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("p", "registration", "accept", "samr", 1, spread(4, 4, 4), 1),
            ("p", "registration", "review", "samr", 2, spread(0, 5, 5), 2),
        ]
    );

    // The longest waits, oldest first. B: item due Sep 30 → 4 working days past (Oct 8, 9, 10,
    // 12), process due Oct 8 → 3. D: item due Oct 9 → 2, process due Oct 10 → 1, held by its
    // 补正. A: waiting since today; item due Sep 29 → 5 past, process due Sep 30 → 4.
    let longest: Vec<_> = stalls
        .longest
        .iter()
        .map(|l| {
            (
                l.case_id.as_str(),
                l.step.as_str(),
                l.days,
                l.days_past_task_limit,
                l.days_past_sla,
                l.awaiting_supplement,
            )
        })
        .collect();
    assert_eq!(
        longest,
        [
            (b.as_str(), "review", 5, 4, 3, false),
            (d.as_str(), "accept", 4, 2, 1, true),
            (a.as_str(), "review", 0, 5, 4, false)
        ]
    );
    assert_eq!(stalls.longest[0].since, "2026-09-29T01:00:00+00:00");

    // Departments. samr handled B's accept (Sep 28 → 29: 1 day), C's accept and review (0, 0),
    // A's accept (Sep 24 → Oct 12: 7, past its item's Sep 29): {0, 0, 1, 7}, median 0, p90 7,
    // 3 of 4 within. psb handled C's seal Sep 30 → Oct 9: 2 working days (Oct 8, 9).
    let departments: Vec<_> = stalls
        .departments
        .iter()
        .map(|d| (d.department.as_str(), d.handled, d.days.clone(), d.within_limit, d.open, d.open_overdue))
        .collect();
    assert_eq!(departments, [("psb", 1, spread(2, 2, 2), 1.0, 0, 0), ("samr", 4, spread(0, 7, 7), 0.75, 3, 3)]);

    // Warnings: C's yellow is past (C is completed); the nine others are open.
    assert_eq!(stalls.warnings.open, [("red".to_string(), 6), ("yellow".to_string(), 3)].into_iter().collect());
    assert_eq!(stalls.warnings.past, [("yellow".to_string(), 1)].into_iter().collect());
    assert_eq!(stalls.warnings.latest.len(), 10);
    let newest: Vec<_> =
        stalls.warnings.latest[..2].iter().map(|w| (w.case_id.as_str(), w.rule.as_str(), w.level.as_str())).collect();
    assert_eq!(newest, [(d.as_str(), "process", "red"), (d.as_str(), "registration", "red")]);
    assert!(stalls.warnings.latest.iter().all(|w| w.department == "samr" && w.process == "p"));
    let past: Vec<_> = stalls.warnings.latest.iter().filter(|w| !w.open).map(|w| w.case_id.as_str()).collect();
    assert_eq!(past, [c.as_str()]);

    // The process: C completed in 1 trip (registration's one visit), within its SLA (Oct 9 ≤
    // Oct 10), rated 5; D's 补正 would be its second trip, but D is not completed.
    let process = &stalls.processes[0];
    assert_eq!(process.process, "p");
    let cases: Vec<_> = process.cases.iter().map(|(k, n)| (k.as_str(), *n)).collect();
    assert_eq!(cases, [("awaiting_supplement", 1), ("completed", 1), ("open", 2)]);
    assert_eq!(process.trips, [("1".to_string(), 1)].into_iter().collect());
    assert_eq!((process.trips_per_case, process.at_most_one_trip, process.within_sla), (1.0, 1.0, 1.0));
    assert_eq!(process.ratings, [("5".to_string(), 1)].into_iter().collect());

    // No personal data anywhere.
    let text = serde_json::to_string(&stalls).expect("serialises");
    assert!(!text.contains("张三"), "{text}");
}

/// Filters narrow every section but the processes' own figures to a department or a process.
#[tokio::test]
async fn filters_by_department_and_process() {
    let (setup, _) = scripted("stalls-filters").await;
    let cases = [
        (StallFilter { department: Some("psb".into()), ..StallFilter::default() }, 0, 0, 1, 0),
        (StallFilter { department: Some("samr".into()), ..StallFilter::default() }, 2, 3, 1, 10),
        (StallFilter { process: Some("p".into()), limit: Some(1), ..StallFilter::default() }, 2, 1, 2, 1),
        (StallFilter { process: Some("other".into()), ..StallFilter::default() }, 0, 0, 0, 0),
    ];
    for (filter, states, longest, departments, warnings) in cases {
        let stalls: Stalls = setup.engine.stalls(&filter).await.expect("stalls");
        assert_eq!(
            (stalls.states.len(), stalls.longest.len(), stalls.departments.len(), stalls.warnings.latest.len()),
            (states, longest, departments, warnings),
            "{filter:?}"
        );
    }
}

/// The per-state summary alone gives the same figures as the full analysis.
#[tokio::test]
async fn the_state_summary_alone() {
    let (setup, _) = scripted("stalls-states").await;
    let full = setup.engine.stalls(&StallFilter::default()).await.expect("stalls").states;
    assert_eq!(setup.engine.stalled_states(&StallFilter::default()).await.expect("states"), full);
}

/// Case timelines on the working-day axis. Day 0 is the submission day (Wed Sep 30); then Oct 8
/// (1), Oct 9 (2), Oct 10 (3, the make-up Saturday), Oct 12 (4). 09:00 is 0.375 of a day.
#[tokio::test]
async fn timelines_on_the_working_day_axis() {
    let (setup, [_, _, c, d]) = scripted("stalls-timeline").await;
    let day = |n: f64| n + 0.375;

    // D: its acceptance open since Sep 30, held by a 补正 from the same instant, which stops no
    // clock (`supplement keeps_clock`): no pause. The item was due Oct 9 (late now), the
    // process Oct 10 (its end: 4). Yellow on Oct 9, both reds today.
    let timeline = setup.engine.timeline(&d).await.expect("timeline");
    assert_eq!(timeline.days, ["2026-09-30", "2026-10-08", "2026-10-09", "2026-10-10", "2026-10-12"]);
    assert_eq!(timeline.now, day(4.0));
    let steps: Vec<_> = timeline
        .steps
        .iter()
        .map(|s| (s.step.as_str(), s.from, s.to, s.outcome.as_str(), s.due.as_deref(), s.late, s.supplement))
        .collect();
    assert_eq!(steps, [("accept", day(0.0), day(4.0), "open", Some("2026-10-09"), true, true)]);
    assert!(timeline.pauses.is_empty());
    let warnings: Vec<_> = timeline
        .warnings
        .iter()
        .map(|w| (w.scope.as_str(), serde_json::to_value(w.level).expect("level"), w.position))
        .collect();
    assert_eq!(
        warnings,
        [
            ("process", json!("yellow"), day(2.0)),
            ("registration", json!("red"), day(4.0)),
            ("process", json!("red"), day(4.0))
        ]
    );
    let due = timeline.due.as_ref().expect("an SLA");
    assert_eq!((due.day.as_str(), due.position), ("2026-10-10", 4.0));

    // C: completed on Oct 9 (its end is "now"); the registration's steps took no time, the seal
    // two working days (Oct 8, 9); no pause, one yellow.
    let timeline = setup.engine.timeline(&c).await.expect("timeline");
    assert_eq!(timeline.days, ["2026-09-30", "2026-10-08", "2026-10-09", "2026-10-10"]);
    assert_eq!(timeline.now, day(2.0));
    let steps: Vec<_> =
        timeline.steps.iter().map(|s| (s.step.as_str(), s.from, s.to, s.outcome.as_str(), s.late)).collect();
    assert_eq!(
        steps,
        [
            ("accept", day(0.0), day(0.0), "completed", false),
            ("review", day(0.0), day(0.0), "completed", false),
            ("handle", day(0.0), day(2.0), "completed", false)
        ]
    );
    assert!(timeline.pauses.is_empty());

    // The applicant, masked; nothing of them in the timeline.
    let masked = setup.engine.masked_applicant(&d).await.expect("masked");
    assert_eq!(masked, [("applicant.name".to_string(), dsl::model::Pii::Name, "张*".to_string())]);
    assert!(!serde_json::to_string(&timeline).expect("json").contains("张三"));
}

/// A 补正 that stops the clocks (the default) is a pause on the timeline, from the request to
/// the materials' arrival.
#[tokio::test]
async fn a_supplement_that_stops_the_clocks_is_a_pause() {
    let flow = FLOW.replace("  supplement     keeps_clock\n", "");
    let setup = setup("stalls-pause", &flow, "p", "2026-09-30T01:00:00Z").await;
    let case = submit(&setup, "2026-09-30T01:00:00Z").await.id;
    setup.clock.set(at("2026-09-30T02:00:00Z"));
    let supplement = Command::RequestSupplement {
        item: "registration".into(),
        step: "accept".into(),
        materials: vec!["章程".into()],
    };
    setup.engine.act(&case, &supplement, &Actor::department("samr"), None, None).await.expect("asks");
    setup.clock.set(at("2026-10-09T01:00:00Z"));
    setup.engine.act(&case, &Command::SupplementReceived, &Actor::Applicant, None, None).await.expect("receives");
    setup.clock.set(at("2026-10-12T01:00:00Z"));
    let timeline = setup.engine.timeline(&case).await.expect("timeline");
    // 10:00 on day 0 is 10/24 of it; 09:00 on Oct 9 (day 2) is 2.375.
    let pauses: Vec<_> = timeline.pauses.iter().map(|p| (p.kind.as_str(), p.from, p.to, p.to_at.is_some())).collect();
    assert_eq!(pauses, [("supplement", 10.0 / 24.0, 2.375, true)]);
    assert_eq!(timeline.now, 4.375);
    // The open step is measured against its item's limit as the pause moved it (Oct 9 before).
    let state = setup.engine.case(&case).await.expect("case");
    let moved = state.deadlines["registration"].due.clone();
    assert!(moved.as_str() > "2026-10-09", "{moved}");
    assert_eq!(timeline.steps[0].due.as_deref(), Some(moved.as_str()));
}

/// The waiting counters always equal the open tasks, whatever a command leaves: parallel
/// tasks completed one by one, a task sent back (退回) and opened again, a 补正, cases ending.
#[tokio::test]
async fn the_waiting_counters_follow_every_kind_of_write() {
    const PARALLEL: &str = r#"
department samr "市场监督管理局"
department psb  "公安局"
department tax  "税务局"
schema applicant { name string pii(name)  age int }
item registration "企业设立登记" {
  department     samr
  handling       promised
  promised_limit 2 workdays
  steps          { accept -> review }
}
item seal "印章刻制备案" {
  department psb
  handling   immediate
  steps      { handle "办理" }
}
item tax_setup "税务登记" {
  department tax
  handling   immediate
  steps {
    check -> handle
    handle back check
  }
}
process p "联办" {
  window samr
  sla    5 workdays
  flow   { registration -> parallel { seal, tax_setup } }
}
"#;
    let setup = setup("stalls-counters", PARALLEL, "p", "2026-09-28T01:00:00Z").await;
    let check = |ids: Vec<String>| {
        let engine = &setup.engine;
        async move {
            let mut expected: std::collections::BTreeMap<(String, String), u64> = Default::default();
            for id in &ids {
                for task in engine.case(id).await.expect("case").tasks.values() {
                    *expected.entry((task.item.clone(), task.step.clone())).or_default() += 1;
                }
            }
            let counted: std::collections::BTreeMap<(String, String), u64> = engine
                .stalled_states(&StallFilter::default())
                .await
                .expect("states")
                .into_iter()
                .map(|s| ((s.item, s.step), s.waiting))
                .collect();
            assert_eq!(counted, expected);
        }
    };
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push(submit(&setup, &format!("2026-09-28T0{}:00:00Z", n + 1)).await.id);
    }
    check(ids.clone()).await;
    for id in &ids {
        complete(&setup, "2026-09-29T01:00:00Z", id, "samr", "registration", "accept").await;
        complete(&setup, "2026-09-29T01:00:00Z", id, "samr", "registration", "review").await;
        check(ids.clone()).await;
    }
    // Parallel tasks one by one; a 退回 on one case; a 补正 on another; one withdrawn.
    complete(&setup, "2026-09-30T01:00:00Z", &ids[0], "psb", "seal", "handle").await;
    check(ids.clone()).await;
    complete(&setup, "2026-09-30T01:00:00Z", &ids[0], "tax", "tax_setup", "check").await;
    check(ids.clone()).await;
    let back = Command::Return { item: "tax_setup".into(), step: "handle".into(), to: "check".into() };
    setup.engine.act(&ids[0], &back, &Actor::department("tax"), None, None).await.expect("退回");
    check(ids.clone()).await;
    let supplement =
        Command::RequestSupplement { item: "seal".into(), step: "handle".into(), materials: vec!["印模".into()] };
    setup.engine.act(&ids[1], &supplement, &Actor::department("psb"), None, None).await.expect("补正");
    check(ids.clone()).await;
    setup.engine.act(&ids[1], &Command::SupplementReceived, &Actor::Applicant, None, None).await.expect("补正 in");
    check(ids.clone()).await;
    setup.engine.act(&ids[2], &Command::Withdraw, &Actor::Applicant, None, None).await.expect("withdraws");
    check(ids.clone()).await;
    for (department, item, step) in
        [("psb", "seal", "handle"), ("tax", "tax_setup", "check"), ("tax", "tax_setup", "handle")]
    {
        complete(&setup, "2026-10-08T01:00:00Z", &ids[3], department, item, step).await;
        check(ids.clone()).await;
    }
    assert!(setup.engine.case(&ids[3]).await.expect("case").tasks.is_empty(), "done");
}
