//! Data-driven checker tests: each `fixtures/check/*.flow` and its expected output, as an
//! `insta` snapshot. A fixture named `eNNNN_…`/`wNNNN_…` must report that code; one named
//! `ok_…` must report nothing, and its snapshot pins the reform figures and the state machine
//! of each of its processes. Files under `fixtures/check/common/` are imported by fixtures.
//! A fixture with `guide` in its name is checked as `onetrip check --guide` checks it.

use std::collections::BTreeSet;
use std::path::Path;

use dsl::diagnostic::Code;
use dsl::{check, MemoryLoader, Workspace};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/check");

/// Every fixture file, keyed by its path relative to the fixtures folder (so rendered paths
/// are the same on every machine).
fn loader() -> MemoryLoader {
    let mut files = Vec::new();
    let mut folders = vec![Path::new(FIXTURES).to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("fixtures folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "flow") {
                let relative = path.strip_prefix(FIXTURES).expect("inside").to_string_lossy().replace('\\', "/");
                files.push((relative, std::fs::read_to_string(&path).expect("readable")));
            }
        }
    }
    MemoryLoader::new(files)
}

fn run(name: &str) -> (Workspace, dsl::Analysis) {
    let workspace = Workspace::load(&[name.to_string()], &mut loader());
    let mut analysis = check(&workspace);
    if name.contains("guide") {
        let lints = dsl::analysis::guide_lint(&analysis.program);
        analysis.diagnostics.extend(lints);
    }
    (workspace, analysis)
}

fn expected_code(name: &str) -> Option<Code> {
    let prefix = name.split('_').next()?.to_uppercase();
    Code::ALL.iter().copied().find(|c| c.as_str() == prefix)
}

#[test]
fn fixtures() {
    insta::glob!("fixtures/check/*.flow", |path| {
        let name = path.file_name().expect("file name").to_string_lossy().into_owned();
        let (workspace, analysis) = run(&name);
        let mut out = String::new();
        for diagnostic in &analysis.diagnostics {
            out.push_str(&dsl::render::render(&workspace, diagnostic, false));
            out.push_str("\n\n");
        }
        if name.starts_with("ok_") {
            assert!(analysis.diagnostics.is_empty(), "{name} should pass:\n{out}");
            for process in &analysis.program.processes {
                let report = dsl::analysis::report(&analysis.program, process);
                out.push_str(&serde_json::to_string_pretty(&report).expect("json"));
                out.push('\n');
                let flow = dsl::compile(&analysis.program, &process.name).expect("compiles");
                out.push_str(&format!("version {}\n", flow.version));
                out.push_str(&dsl::graph::to_mermaid(&flow));
            }
        } else {
            let code = expected_code(&name).unwrap_or_else(|| panic!("{name}: name it eNNNN_… or ok_…"));
            assert!(analysis.diagnostics.iter().any(|d| d.code == code), "{name} should report {code}:\n{out}");
        }
        insta::assert_snapshot!(out);
    });
}

#[test]
fn every_code_has_a_fixture() {
    let mut seen = BTreeSet::new();
    for entry in std::fs::read_dir(FIXTURES).expect("fixtures") {
        let name = entry.expect("entry").file_name().to_string_lossy().into_owned();
        if name.ends_with(".flow") {
            let (_, analysis) = run(&name);
            seen.extend(analysis.diagnostics.iter().map(|d| d.code));
        }
    }
    let missing: Vec<&str> = Code::ALL.iter().filter(|c| !seen.contains(c)).map(|c| c.as_str()).collect();
    assert!(missing.is_empty(), "no fixture triggers {missing:?}");
}

#[test]
fn three_errors_in_three_declarations_are_all_reported() {
    let (_, analysis) = run("e0001_three_errors.flow");
    let codes: Vec<&str> = analysis.diagnostics.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(codes, ["E0001", "E0001", "E0101"], "{:#?}", analysis.diagnostics);
    // The broken items are still declared: the process naming them gets no extra error.
    assert!(analysis.diagnostics.iter().all(|d| !d.message.contains("broken_one")));
}

#[test]
fn the_same_source_compiles_to_the_same_version_and_formatting_does_not_change_it() {
    let (_, first) = run("ok_joint_process.flow");
    let (_, second) = run("ok_joint_process.flow");
    let a = dsl::compile(&first.program, "start_business").expect("compiles");
    let b = dsl::compile(&second.program, "start_business").expect("compiles");
    assert_eq!(a.version, b.version);
    assert_eq!(a.version.len(), 64);

    let text = std::fs::read_to_string(format!("{FIXTURES}/ok_joint_process.flow")).expect("fixture");
    let mut loader = loader();
    let respaced = text.replace("  ", "      ").replace("// A sound", "// Another comment.\n// A sound");
    let workspace = Workspace::single("ok_joint_process.flow", &respaced, &mut loader);
    let analysis = check(&workspace);
    assert!(analysis.diagnostics.is_empty(), "{:#?}", analysis.diagnostics);
    let c = dsl::compile(&analysis.program, "start_business").expect("compiles");
    assert_eq!(a.version, c.version, "layout and comments are not part of the version");

    let changed =
        text.replace("promised_limit 1 workday\n  visits         0", "promised_limit 2 workday\n  visits         0");
    assert_ne!(changed, text);
    let workspace = Workspace::single("ok_joint_process.flow", &changed, &mut loader);
    let analysis = check(&workspace);
    let d = dsl::compile(&analysis.program, "start_business").expect("compiles");
    assert_ne!(a.version, d.version, "a changed limit is a new version");
}

#[test]
fn a_compiled_flow_round_trips_through_json() {
    let (_, analysis) = run("ok_joint_process.flow");
    let flow = dsl::compile(&analysis.program, "start_business").expect("compiles");
    let json = serde_json::to_string(&flow).expect("serialises");
    let back: dsl::CompiledFlow = serde_json::from_str(&json).expect("deserialises");
    assert_eq!(back.version, flow.version);
    assert_eq!(back.graph.node_count(), flow.graph.node_count());
    assert_eq!(serde_json::to_string(&back).expect("serialises"), json);
}
