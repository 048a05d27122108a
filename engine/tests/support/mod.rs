//! Shared by the engine's scenario tests: an engine on a fresh SQLite file with a flow
//! deployed, and a clock the test moves.

// Each test file uses a different part of this module.
#![allow(dead_code)]

use std::sync::Arc;

use calendar::Calendar;
use chrono::{DateTime, Utc};
use engine::{Engine, ManualClock, SqliteStore};

pub struct Setup {
    pub engine: Engine<SqliteStore>,
    pub clock: Arc<ManualClock>,
    pub url: String,
}

pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).expect("time").with_timezone(&Utc)
}

pub fn fresh_db(name: &str) -> String {
    let path = std::env::temp_dir().join(format!("onetrip-test-{}-{name}.db", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    format!("sqlite://{}", path.display())
}

pub async fn engine_at(url: &str, clock: Arc<ManualClock>) -> Engine<SqliteStore> {
    let store = SqliteStore::open(url).await.expect("store opens");
    Engine::new(store, Arc::new(Calendar::official()), clock)
}

/// An engine on a fresh database with `process` of `source` deployed, its clock at `now`.
pub async fn setup(name: &str, source: &str, process: &str, now: &str) -> Setup {
    let url = fresh_db(name);
    let clock = Arc::new(ManualClock::new(at(now)));
    let engine = engine_at(&url, Arc::clone(&clock)).await;
    let mut loader = dsl::MemoryLoader::default();
    let workspace = dsl::Workspace::single("flow.flow", source, &mut loader);
    let analysis = dsl::check(&workspace);
    assert!(analysis.diagnostics.is_empty(), "{:#?}", analysis.diagnostics);
    let flow = dsl::compile(&analysis.program, process).expect("compiles");
    assert!(engine.deploy(&flow).await.expect("deploys"));
    assert!(!engine.deploy(&flow).await.expect("deploys again"), "deploying the same flow twice is a no-op");
    Setup { engine, clock, url }
}
