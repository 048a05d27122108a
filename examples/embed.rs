//! Embedding onetrip as a library: compile a flow from source, deploy it to a SQLite file,
//! submit a case and act on its tasks, then read its history. No server involved.
//!
//! `cargo run --example embed`

use std::sync::Arc;

use calendar::Calendar;
use engine::{Actor, Command, Engine, SqliteStore, Submission, Submitted, SystemClock};

const FLOW: &str = r#"
department civil "民政局"
schema applicant { name string pii(name)  age int }

item marriage "结婚登记" {
  department civil
  handling   immediate
  eligible   applicant.age >= 22 else "男方年满22周岁方可登记"
}

process marriage_one_thing "婚姻登记一件事" {
  window civil
  flow   { marriage }
}
"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. Check and compile the flow: the pure `dsl` crate, no I/O.
    let mut loader = dsl::MemoryLoader::default();
    let workspace = dsl::Workspace::single("marriage.flow", FLOW, &mut loader);
    let analysis = dsl::check(&workspace);
    for diagnostic in &analysis.diagnostics {
        eprintln!("{}", dsl::render::render(&workspace, diagnostic, false));
    }
    let flow = dsl::compile(&analysis.program, "marriage_one_thing").ok_or("no such flow")?;

    // 2. An engine on a SQLite file, with the official holiday calendar.
    let path = std::env::temp_dir().join("onetrip-embed.db");
    let store = SqliteStore::open(&format!("sqlite://{}", path.display())).await?;
    let engine = Engine::new(store, Arc::new(Calendar::official()), Arc::new(SystemClock));
    engine.deploy(&flow).await?;

    // 3. Submit a case; eligibility is checked and explained.
    let mut data = serde_json::Map::new();
    data.insert("applicant".into(), serde_json::json!({"name": "张三", "age": 25}));
    let submission = Submission { flow: "marriage_one_thing".into(), data, ..Submission::default() };
    let Submitted::Accepted { case } = engine.submit(&submission, Some("embed-demo-1")).await? else {
        return Err("refused".into());
    };

    // 4. The department completes its tasks.
    let mut case = *case;
    while let Some(task) = case.tasks.values().next().cloned() {
        let command = Command::Complete { item: task.item.clone(), step: task.step.clone(), next: None };
        case = engine.act(&case.id, &command, &Actor::department(task.department.clone()), None, None).await?;
        println!("{} completed {}.{}", task.department, task.item, task.step);
    }
    println!("case {} is {:?} after {} events", case.id, case.status, engine.history(&case.id).await?.len());
    Ok(())
}
