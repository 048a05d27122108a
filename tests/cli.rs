//! The `onetrip` binary end to end: exit codes, output formats, and the graph accepted by
//! Graphviz's `dot`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn onetrip(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_onetrip"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .output()
        .expect("onetrip runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const EXAMPLE: &str = "examples/start-business";
const PROCESS_FILE: &str = "examples/start-business/start_business.flow";

#[test]
fn check_passes_on_the_examples_and_fails_with_rustc_style_errors() {
    let ok = onetrip(&["check", EXAMPLE, "examples/newborn"]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));

    let bad = onetrip(&["check", "dsl/tests/fixtures/check/e0302_sla_infeasible.flow"]);
    assert_eq!(bad.status.code(), Some(1));
    let stderr = text(&bad.stderr);
    assert!(stderr.contains("error[E0302]"), "{stderr}");
    assert!(stderr.contains("--> dsl/tests/fixtures/check/e0302_sla_infeasible.flow:23:10"), "{stderr}");
    assert!(stderr.contains("^^^^^^^^^^ critical path: registration (2) → tax_setup (3) = 5 workdays"), "{stderr}");
    assert!(stderr.contains("= help:"), "{stderr}");
}

#[test]
fn check_json_gives_positions_for_tools() {
    let out = onetrip(&["check", "--format", "json", "dsl/tests/fixtures/check/e0001_three_errors.flow"]);
    assert_eq!(out.status.code(), Some(1));
    let diagnostics: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let codes: Vec<&str> =
        diagnostics.as_array().expect("array").iter().map(|d| d["code"].as_str().expect("code")).collect();
    assert_eq!(codes, ["E0001", "E0001", "E0101"]);
    assert_eq!(diagnostics[2]["line"], 16);
    assert_eq!(diagnostics[2]["column"], 18);
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let out = onetrip(&["check", "no/such.flow"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot read `no/such.flow`"), "{}", text(&out.stderr));
}

#[test]
fn graph_dot_is_accepted_by_graphviz() {
    let out = onetrip(&["graph", "start_business", PROCESS_FILE, "--format", "dot"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dot = Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut dot = match dot {
        Ok(child) => child,
        Err(e) => panic!("Graphviz `dot` is needed for this test (Debian package graphviz; .ci/run installs it): {e}"),
    };
    use std::io::Write;
    dot.stdin.take().expect("stdin").write_all(&out.stdout).expect("write");
    let result = dot.wait_with_output().expect("dot runs");
    assert!(result.status.success(), "dot rejected the graph: {}", text(&result.stderr));
    assert!(text(&result.stdout).contains("<svg"), "no SVG");

    let mermaid = onetrip(&["graph", "start_business", PROCESS_FILE, "--format", "mermaid"]);
    assert!(text(&mermaid.stdout).starts_with("flowchart LR"));
}

#[test]
fn report_prints_the_reform_figures() {
    let out = onetrip(&["report", "start_business", PROCESS_FILE, "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(report["items"].as_u64().expect("items") >= 5);
    assert!(report["materials_asked"].as_u64() < report["materials_total"].as_u64());
    let table = onetrip(&["report", "start_business", PROCESS_FILE]);
    assert!(text(&table.stdout).contains("critical path"), "{}", text(&table.stdout));

    let unknown = onetrip(&["report", "no_such_process", PROCESS_FILE]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("no process or item `no_such_process`"));
}

#[test]
fn compile_prints_a_versioned_state_machine() {
    let out = onetrip(&["compile", "start_business", PROCESS_FILE]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let flow: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(flow["version"].as_str().expect("version").len(), 64);
    assert!(flow["graph"]["nodes"].as_array().expect("nodes").len() > 10);
}

/// Copies a folder of flow files to a fresh temporary folder.
fn scratch_copy(from: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("onetrip-cli-{}-{}", std::process::id(), from.replace('/', "_")));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(from)).expect("folder") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "flow") {
            std::fs::copy(&path, dir.join(path.file_name().expect("name"))).expect("copy");
        }
    }
    dir
}

#[test]
fn fmt_check_reports_then_fmt_fixes_and_is_idempotent() {
    let dir = scratch_copy(EXAMPLE);
    let file = dir.join("start_business.flow");
    let original = std::fs::read_to_string(&file).expect("read");
    std::fs::write(&file, original.replace("\n  ", "\n        ")).expect("write");
    let path = file.to_string_lossy().into_owned();

    let check = onetrip(&["fmt", "--check", &path]);
    assert_eq!(check.status.code(), Some(1), "{}", text(&check.stdout));
    assert!(text(&check.stdout).contains("not formatted"));

    assert!(onetrip(&["fmt", &path]).status.success());
    let once = std::fs::read_to_string(&file).expect("read");
    assert!(onetrip(&["fmt", "--check", &path]).status.success(), "formatted file passes --check");
    assert!(onetrip(&["fmt", &path]).status.success());
    assert_eq!(std::fs::read_to_string(&file).expect("read"), once, "idempotent");

    // A file that does not parse is left alone, with its syntax error shown.
    let broken = dir.join("broken.flow");
    std::fs::write(&broken, "item x \"X\" {\n  handling\n}\n").expect("write");
    let out = onetrip(&["fmt", &broken.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("error[E0001]"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&broken).expect("read"), "item x \"X\" {\n  handling\n}\n");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_readme_flow_example_parses() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).expect("README");
    let section = readme.split("## The flow language in one page").nth(1).expect("section");
    let block = section.split("```").nth(1).expect("code block");
    let parsed = dsl::syntax::parse(dsl::FileId(0), block);
    assert!(parsed.diagnostics.is_empty(), "{:#?}", parsed.diagnostics);
    assert_eq!(parsed.file.decls.len(), 5);
}

#[test]
fn the_examples_are_formatted() {
    let out = onetrip(&["fmt", "--check", EXAMPLE, "examples/newborn"]);
    assert!(out.status.success(), "run `onetrip fmt` on the examples:\n{}", text(&out.stdout));
}

#[test]
fn the_demo_runs_cases_through_every_path_on_sqlite() {
    let db = std::env::temp_dir().join(format!("onetrip-cli-demo-{}.db", std::process::id()));
    let url = format!("sqlite://{}", db.display());
    let out = onetrip(&["demo", "--db", &url]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("Completed, rated 5"), "{stdout}");
    assert!(stdout.contains("refused, `applicant.age >= 18` does not hold"), "{stdout}");
    assert!(stdout.contains("AwaitingSupplement"), "{stdout}");
    assert!(stdout.contains("Withdrawn"), "{stdout}");
    // Personal data is masked in everything printed.
    assert!(!stdout.contains("张三") && !stdout.contains("11010519491231002X"), "{stdout}");
    assert!(stdout.contains("张*") && stdout.contains("110105********002X"), "{stdout}");
    // The supervisor's view of the same store: the demo's four accepted cases, names absent.
    let stalls = onetrip(&["stalls", "--db", &url, "--format", "json"]);
    assert!(stalls.status.success(), "{}", text(&stalls.stderr));
    let figures: serde_json::Value = serde_json::from_slice(&stalls.stdout).expect("json");
    assert_eq!(figures["processes"][0]["process"], "start_business");
    assert_eq!(figures["processes"][0]["cases"], serde_json::json!({"completed": 3, "withdrawn": 1}));
    assert_eq!(figures["processes"][0]["ratings"], serde_json::json!({"5": 1}));
    let table = text(&onetrip(&["stalls", "--db", &url, "--process", "start_business"]).stdout);
    assert!(table.contains("## where cases wait") && table.contains("| start_business |"), "{table}");
    assert!(!text(&stalls.stdout).contains("张") && !table.contains("张"), "{table}");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}

#[test]
fn calendar_due_and_between_use_the_official_schedule() {
    // Worked by hand: Oct 1-7 off, Sat Oct 10 worked, so five working days after Wed 2026-09-30
    // end on Tue 2026-10-13.
    let due = onetrip(&["calendar", "due", "2026-09-30", "5"]);
    assert_eq!(text(&due.stdout).trim(), "2026-10-13", "{}", text(&due.stderr));
    let json = onetrip(&["calendar", "between", "2026-09-30", "2026-10-13", "--format", "json"]);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(value["workdays"], 5);
    let missing = onetrip(&["calendar", "due", "2027-03-01", "3"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("no holiday schedule is loaded for 2027"), "{}", text(&missing.stderr));
    let bad = onetrip(&["calendar", "due", "2026-13-01", "3"]);
    assert!(text(&bad.stderr).contains("is not a date"), "{}", text(&bad.stderr));
}

#[test]
fn graph_svg_is_a_picture_of_every_step() {
    let out = onetrip(&["graph", "start_business", PROCESS_FILE, "--format", "svg"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let svg = text(&out.stdout);
    let doc = roxmltree::Document::parse(&svg).expect("the SVG parses");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let states = doc.descendants().filter(|n| n.attribute("class") == Some("state")).count();
    assert!(states > 10, "{states} states");
    assert!(!svg.contains("data-waiting"), "no heat without --heat");

    let missing = onetrip(&["graph", "start_business"]);
    assert_eq!(missing.status.code(), Some(2), "files are required without --heat");
}

#[test]
fn graph_heat_draws_the_waiting_cases_of_a_database() {
    let dir = std::env::temp_dir().join(format!("onetrip-cli-heat-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let db = format!("sqlite://{}", dir.join("cases.db").display());
    let absent = onetrip(&["graph", "start_business", "--heat", "--db", &db]);
    assert_eq!(absent.status.code(), Some(2));
    assert!(text(&absent.stderr).contains("no process `start_business` is deployed"), "{}", text(&absent.stderr));

    let deployed = onetrip(&["deploy", "dsl/tests/fixtures/check/ok_joint_process.flow", "--db", &db]);
    assert!(deployed.status.success(), "{}", text(&deployed.stderr));
    let data = dir.join("applicant.json");
    std::fs::write(
        &data,
        r#"{"applicant": {"name": "张三", "age": 30, "credit_ok": true, "company": {"kind": "llc", "capital": 0.0}}}"#,
    )
    .expect("write");
    for _ in 0..2 {
        let submitted =
            onetrip(&["case", "submit", "--flow", "start_business", "--data", &data.to_string_lossy(), "--db", &db]);
        assert!(submitted.status.success(), "{}", text(&submitted.stderr));
    }
    let file = dir.join("heat.svg");
    let drawn = onetrip(&["graph", "start_business", "--heat", "--db", &db, "--out", &file.to_string_lossy()]);
    assert!(drawn.status.success(), "{}", text(&drawn.stderr));
    let svg = std::fs::read_to_string(&file).expect("the SVG was written");
    let doc = roxmltree::Document::parse(&svg).expect("the SVG parses");
    let waiting: Vec<(String, u64)> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("state"))
        .map(|n| {
            let key = format!("{}/{}", n.attribute("data-item").unwrap(), n.attribute("data-step").unwrap());
            (key, n.attribute("data-waiting").expect("data-waiting").parse().unwrap())
        })
        .collect();
    assert!(waiting.contains(&("registration/accept".to_string(), 2)), "{waiting:?}");
    assert_eq!(waiting.iter().map(|(_, n)| n).sum::<u64>(), 2, "{waiting:?}");
    assert!(svg.contains("2 件等待"));

    let dot = onetrip(&["graph", "start_business", "--heat", "--db", &db, "--format", "dot"]);
    assert_eq!(dot.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cases_can_be_deployed_submitted_acted_on_and_read_from_the_command_line() {
    let dir = std::env::temp_dir().join(format!("onetrip-cli-cases-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let db = format!("sqlite://{}", dir.join("cases.db").display());
    let deployed = onetrip(&["deploy", "dsl/tests/fixtures/check/ok_joint_process.flow", "--db", &db]);
    assert!(text(&deployed.stdout).starts_with("deployed start_business"), "{}", text(&deployed.stderr));

    let data = dir.join("applicant.json");
    std::fs::write(
        &data,
        r#"{"applicant": {"name": "张三", "age": 30, "credit_ok": true, "company": {"kind": "llc", "capital": 0.0}}}"#,
    )
    .expect("write");
    let submitted =
        onetrip(&["case", "submit", "--flow", "start_business", "--data", &data.to_string_lossy(), "--db", &db]);
    assert!(submitted.status.success(), "{}{}", text(&submitted.stdout), text(&submitted.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&submitted.stdout).expect("json");
    let case = answer["case"]["id"].as_str().expect("case id").to_string();

    let command = r#"{"command":"complete","item":"registration","step":"accept"}"#;
    let wrong = onetrip(&["case", "act", &case, "--by", "psb", "--command", command, "--db", &db]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(text(&wrong.stderr).contains("belongs to samr"), "{}", text(&wrong.stderr));
    let acted = onetrip(&["case", "act", &case, "--by", "samr", "--command", command, "--db", &db]);
    assert!(acted.status.success(), "{}", text(&acted.stderr));
    let shown: serde_json::Value =
        serde_json::from_slice(&onetrip(&["case", "show", &case, "--db", &db]).stdout).expect("json");
    assert_eq!(shown["tasks"][0]["step"], "review");
    let history: serde_json::Value =
        serde_json::from_slice(&onetrip(&["case", "history", &case, "--db", &db]).stdout).expect("json");
    assert!(history.as_array().expect("events").len() >= 3);
    let malformed = onetrip(&["case", "act", &case, "--by", "samr", "--command", "{not json", "--db", &db]);
    assert!(text(&malformed.stderr).contains("not a command"), "{}", text(&malformed.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stdlib_lists_checks_reports_and_tests_its_processes() {
    let list = onetrip(&["stdlib", "list"]);
    assert!(list.status.success(), "{}", text(&list.stderr));
    let listed = text(&list.stdout);
    assert!(listed.lines().count() >= 10, "{listed}");
    assert!(listed.contains("newborn") && listed.contains("新生儿出生一件事"), "{listed}");

    let check = onetrip(&["stdlib", "check"]);
    assert!(check.status.success() && check.stderr.is_empty(), "{}", text(&check.stderr));

    let report = onetrip(&["stdlib", "report"]);
    assert!(report.status.success(), "{}", text(&report.stderr));
    insta::assert_snapshot!("stdlib_report", text(&report.stdout));

    let test = onetrip(&["stdlib", "test"]);
    let out = text(&test.stdout);
    assert!(test.status.success(), "{out}");
    assert!(!out.contains("FAILED") && out.contains(" passed, 0 failed"), "{out}");

    let show = onetrip(&["stdlib", "show", "newborn"]);
    assert!(text(&show.stdout).contains("process newborn"), "{}", text(&show.stderr));
    let unknown = onetrip(&["stdlib", "report", "no_such_process"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("no process `no_such_process`"), "{}", text(&unknown.stderr));
}

#[test]
fn a_province_variant_imports_the_stdlib_and_changes_what_differs() {
    let file = "examples/province-variant/start_business.flow";
    let check = onetrip(&["check", file]);
    assert!(check.status.success() && check.stderr.is_empty(), "{}", text(&check.stderr));
    let report = onetrip(&["report", "sl_start_business", file, "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).expect("json");
    let national = onetrip(&["stdlib", "report", "start_business", "--format", "json"]);
    let national: serde_json::Value = serde_json::from_slice(&national.stdout).expect("json");
    // 2 working days instead of 1, the SLA 3, one material and one department (供电) more.
    assert_eq!((report["days"].as_u64(), report["sla"].as_u64()), (Some(2), Some(3)), "{report}");
    assert_eq!(national["days"].as_u64(), Some(1));
    let count = |r: &serde_json::Value, key: &str| r[key].as_array().map_or(0, Vec::len);
    assert_eq!(count(&report, "departments"), count(&national, "departments") + 1);
    assert_eq!(report["materials_asked"].as_u64(), national["materials_asked"].as_u64().map(|n| n + 2));
    assert_eq!(report["critical_path"][0][0], "sl_company_registration");
}

#[test]
fn test_runs_scenario_files_and_says_what_did_not_happen() {
    let out = onetrip(&["test", "--flows", PROCESS_FILE, "tests/scenarios/start_business_wrong.json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("FAILED  tests/scenarios/start_business_wrong.json"), "{stdout}");
    assert!(stdout.contains("status: expected Completed, got Open"), "{stdout}");
    assert!(stdout.contains("deadline `company_registration`: expected 2026-10-09, got 2026-10-08"), "{stdout}");
    assert!(stdout.contains("0 passed, 1 failed"), "{stdout}");
    let broken = onetrip(&["test", "--flows", PROCESS_FILE, "Cargo.toml"]);
    assert_eq!(broken.status.code(), Some(1));
    assert!(text(&broken.stdout).contains("not a scenario"), "{}", text(&broken.stdout));
}
