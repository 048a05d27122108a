//! A joint case scripted under a controlled clock, and the spans it must give.
//!
//! The 2026 calendar around National Day: Oct 1-7 off, Sat Oct 10 a make-up working day.

// Each test file uses a different part of this module.
#![allow(dead_code)]

use std::sync::Arc;

use calendar::Calendar;
use chrono::{DateTime, Utc};
use engine::{Actor, Command, Engine, ManualClock, SqliteStore, Submission, Submitted};
use serde_json::json;

pub const FLOW: &str = r#"
department samr "市场监督管理局"
department psb  "公安局"
department tax  "税务局"

schema applicant {
  name      string pii(name)
  id_number string pii(id)
  employees int
}

item registration "企业设立登记" {
  code           "000120101000"
  department     samr
  handling       promised
  promised_limit 1 workday
  steps {
    accept -> review -> decide -> deliver
    accept "受理"
    review "审查" back accept
  }
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

process p "开办企业一件事" {
  window samr
  sla    5 workdays
  flow   { registration -> parallel { seal, tax_setup } }
  warn   red at overdue
}
"#;

pub const NAME: &str = "张三丰";
pub const ID_NUMBER: &str = "11010519491231002X";

pub struct Setup {
    pub engine: Arc<Engine<SqliteStore>>,
    pub clock: Arc<ManualClock>,
    pub url: String,
}

pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).expect("time").with_timezone(&Utc)
}

/// An engine on a fresh SQLite file with the flow deployed, its clock on Wed 2026-09-30 09:00
/// Beijing.
pub async fn setup(name: &str) -> Setup {
    let path = std::env::temp_dir().join(format!("onetrip-telemetry-{}-{name}.db", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let url = format!("sqlite://{}", path.display());
    let clock = Arc::new(ManualClock::new(at("2026-09-30T01:00:00Z")));
    let store = SqliteStore::open(&url).await.expect("store opens");
    let engine = Arc::new(Engine::new(store, Arc::new(Calendar::official()), Arc::clone(&clock) as _));
    let mut loader = dsl::MemoryLoader::default();
    let workspace = dsl::Workspace::single("flow.flow", FLOW, &mut loader);
    let analysis = dsl::check(&workspace);
    assert!(analysis.diagnostics.is_empty(), "{:#?}", analysis.diagnostics);
    let flow = dsl::compile(&analysis.program, "p").expect("compiles");
    engine.deploy(&flow).await.expect("deploys");
    Setup { engine, clock, url }
}

pub async fn submit(setup: &Setup) -> String {
    let mut data = serde_json::Map::new();
    data.insert("applicant".into(), json!({"name": NAME, "id_number": ID_NUMBER, "employees": 0}));
    let submission = Submission { flow: "p".into(), data, ..Submission::default() };
    match setup.engine.submit(&submission, None).await.expect("submits") {
        Submitted::Accepted { case } => case.id,
        Submitted::Refused { reasons } => panic!("refused: {reasons:?}"),
    }
}

pub async fn act(setup: &Setup, case: &str, when: &str, command: Command, by: Actor) {
    setup.clock.set(at(when));
    setup.engine.act(case, &command, &by, None, None).await.unwrap_or_else(|e| panic!("{command:?}: {e}"));
}

pub fn complete(item: &str, step: &str) -> Command {
    Command::Complete { item: item.into(), step: step.into(), next: None }
}

/// The first part of the case, up to Thu 10-08: registration with a 转办 and a 退回, the seal
/// held by a 补正, the tax office's acceptance.
pub async fn first_part(setup: &Setup, case: &str) {
    let samr = Actor::department("samr");
    let transfer = Command::Transfer {
        item: "registration".into(),
        step: "accept".into(),
        to: "wang".into(),
        reason: "该类企业由王科长承办".into(),
    };
    act(setup, case, "2026-09-30T01:10:00Z", transfer, samr.clone()).await;
    act(setup, case, "2026-09-30T01:20:00Z", complete("registration", "accept"), Actor::officer("samr", "wang")).await;
    let back = Command::Return { item: "registration".into(), step: "review".into(), to: "accept".into() };
    act(setup, case, "2026-09-30T01:30:00Z", back, samr.clone()).await;
    for (when, step) in [
        ("2026-09-30T01:40:00Z", "accept"),
        ("2026-09-30T01:50:00Z", "review"),
        ("2026-09-30T01:55:00Z", "decide"),
        ("2026-09-30T02:00:00Z", "deliver"),
    ] {
        act(setup, case, when, complete("registration", step), samr.clone()).await;
    }
    // Thu 10-08: the police ask for the seal form again (补正): the seal's and the process's
    // clocks stop; the tax office accepts meanwhile.
    let supplement =
        Command::RequestSupplement { item: "seal".into(), step: "accept".into(), materials: vec!["seal_form".into()] };
    act(setup, case, "2026-10-08T02:00:00Z", supplement, Actor::department("psb")).await;
    act(setup, case, "2026-10-08T03:00:00Z", complete("tax_setup", "accept"), Actor::department("tax")).await;
}

/// The rest: the tax office's review runs four working days and goes overdue (red warning on
/// Mon 10-12), the form comes on 10-12, the seal is done that day, the tax office on Tue 10-13.
pub async fn second_part(setup: &Setup, case: &str) {
    setup.clock.set(at("2026-10-12T01:00:00Z"));
    setup.engine.tick().await.expect("ticks");
    act(setup, case, "2026-10-12T02:00:00Z", Command::SupplementReceived, Actor::Applicant).await;
    for step in ["accept", "review", "decide", "deliver"] {
        act(setup, case, "2026-10-12T03:00:00Z", complete("seal", step), Actor::department("psb")).await;
    }
    for step in ["review", "decide", "deliver"] {
        act(setup, case, "2026-10-13T02:00:00Z", complete("tax_setup", step), Actor::department("tax")).await;
    }
}
