//! The stdlib as a tested library: every process checks clean, its reform figures are pinned,
//! and its scenarios (happy path, 补正 or 容缺, refusal, …) run through the real engine on a
//! real SQLite file. Adding a process or a scenario is adding files.

use std::sync::Arc;

use engine::scenario::{self, Scenario};
use engine::{Engine, SqliteStore, Status};

#[test]
fn the_library_has_the_national_processes() {
    let processes = stdlib_flows::processes();
    assert!(processes.len() >= 10, "only {} processes: {processes:?}", processes.len());
}

#[test]
fn every_process_checks_without_any_diagnostic() {
    for name in stdlib_flows::processes() {
        let checked = stdlib_flows::load(name).expect("listed processes load");
        let rendered: Vec<String> =
            checked.analysis.diagnostics.iter().map(|d| dsl::render::render(&checked.workspace, d, false)).collect();
        assert!(rendered.is_empty(), "{name}:\n{}", rendered.join("\n\n"));
        assert!(checked.analysis.program.process(name).is_some(), "`{name}.flow` declares no process `{name}`");
        stdlib_flows::compiled(name).expect("compiles");
    }
}

#[test]
fn every_file_is_formatted() {
    for (path, text) in stdlib_flows::files() {
        let formatted = dsl::fmt::format(text).unwrap_or_else(|_| panic!("{path} does not parse"));
        assert!(formatted == text, "{path} is not formatted: run `onetrip fmt stdlib-flows/flows`");
    }
}

#[test]
fn reform_figures_are_pinned() {
    for name in stdlib_flows::processes() {
        let checked = stdlib_flows::load(name).expect("loads");
        let program = &checked.analysis.program;
        let report = dsl::analysis::report(program, program.process(name).expect("declared"));
        insta::assert_json_snapshot!(format!("report_{name}"), report);
    }
}

/// The kinds of path every process must have a scenario for.
fn kinds(scenario: &Scenario) -> (bool, bool, bool) {
    let commands: Vec<String> = scenario
        .steps
        .iter()
        .filter_map(|s| s.command.as_ref())
        .filter_map(|c| serde_json::to_value(c).ok()?.get("command")?.as_str().map(str::to_string))
        .collect();
    let completed = scenario.expect.as_ref().is_some_and(|e| e.status == Status::Completed);
    let supplement_or_tolerance = commands.iter().any(|c| c == "request_supplement" || c == "tolerate");
    (completed, supplement_or_tolerance, scenario.refused.is_some())
}

#[tokio::test(flavor = "current_thread")]
async fn every_scenario_holds() {
    let dir = std::env::temp_dir().join(format!("onetrip-stdlib-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}", dir.join("scenarios.db").display());
    let store = SqliteStore::open(&url).await.expect("store");
    let clock = scenario::clock();
    let engine = Engine::new(store, Arc::new(calendar::Calendar::official()), clock.clone());
    let mut failures = Vec::new();
    let mut ran = 0;
    for name in stdlib_flows::processes() {
        let flow = stdlib_flows::compiled(name).expect("compiles");
        let scenarios = stdlib_flows::scenarios(name);
        let (mut happy, mut supplement, mut refusal) = (false, false, false);
        for (path, text) in &scenarios {
            let scenario: Scenario = match serde_json::from_str(text) {
                Ok(s) => s,
                Err(e) => {
                    failures.push(format!("{path}: not a scenario: {e}"));
                    continue;
                }
            };
            assert_eq!(scenario.process, name, "{path} belongs in scenarios/{}/", scenario.process);
            let (h, s, r) = kinds(&scenario);
            (happy, supplement, refusal) = (happy || h, supplement || s, refusal || r);
            let outcome = scenario::run(&engine, &clock, &flow, &scenario).await;
            ran += 1;
            if !outcome.passed() {
                failures.push(format!("{path}:\n  - {}", outcome.differences.join("\n  - ")));
            }
        }
        assert!(scenarios.len() >= 3, "{name} has {} scenarios, at least 3 are needed", scenarios.len());
        assert!(happy, "{name}: no scenario ends completed");
        assert!(supplement, "{name}: no scenario with 补正 (request_supplement) or 容缺 (tolerate)");
        assert!(refusal, "{name}: no scenario with a refused submission");
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{} of {ran} scenarios failed:\n{}", failures.len(), failures.join("\n"));
}
