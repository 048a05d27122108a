//! The guides of the stdlib's processes: snapshots of the Markdown and JSON forms, and for
//! every process, that the guide states what the engine enforces — the compiled flow's
//! materials, limits and steps, item by item.

use dsl::compile;

fn program(process: &str) -> dsl::model::Program {
    let checked = stdlib_flows::load(process).expect("a stdlib process");
    assert!(!checked.analysis.has_errors(), "{process} checks");
    checked.analysis.program
}

#[test]
fn markdown_guides_of_stdlib_processes() {
    for process in ["start_business", "newborn", "open_restaurant", "retirement"] {
        let guide = guide::guide(&program(process), process).expect("a guide");
        insta::assert_snapshot!(format!("{process}.md"), guide::markdown::render(&guide));
    }
}

#[test]
fn json_guides_of_stdlib_processes() {
    for process in ["start_business", "second_hand_housing"] {
        let guide = guide::guide(&program(process), process).expect("a guide");
        insta::assert_snapshot!(format!("{process}.json"), serde_json::to_string_pretty(&guide).expect("json"));
    }
}

#[test]
fn a_lone_item_has_a_guide_of_its_own() {
    let program = program("start_business");
    let guide = guide::guide(&program, "company_registration").expect("an item's guide");
    assert!(guide.process.is_none());
    assert_eq!(guide.items.len(), 1);
    assert_eq!(guide.items[0].title, "企业设立登记");
    assert!(guide::guide(&program, "no_such_thing").is_none());
}

/// The guide is derived, never re-typed: for every stdlib process, each item's materials,
/// limits, visits and steps in the guide are those of the compiled flow the engine runs, and
/// the process's limit and trips are the flow's.
#[test]
fn every_guide_states_what_the_engine_enforces() {
    for process in stdlib_flows::processes() {
        let program = program(process);
        let flow = compile(&program, process).expect("compiles");
        let guide = guide::guide(&program, process).expect("a guide");
        let process_guide = guide.process.as_ref().expect("a process guide");
        assert_eq!(process_guide.sla, flow.process.sla, "{process}: the limit");
        assert_eq!(process_guide.visits_at_most, flow.process.visits_at_most, "{process}: the trips");
        let names: Vec<&str> = guide.items.iter().map(|i| i.name.as_str()).collect();
        let compiled: Vec<&str> = flow.items.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, compiled, "{process}: the items");
        for (item, compiled) in guide.items.iter().zip(&flow.items) {
            let what = format!("{process}/{}", item.name);
            assert_eq!(item.promised_limit, compiled.promised_days(), "{what}: the promised limit");
            assert_eq!(item.legal_limit, compiled.legal_limit, "{what}: the legal limit");
            assert_eq!(item.visits, compiled.visits, "{what}: the visits");
            let materials: Vec<(&str, &str, u32, bool, bool)> = item
                .materials
                .iter()
                .map(|m| (m.name.as_str(), m.title.as_str(), m.copies, m.tolerated, m.promise))
                .collect();
            let enforced: Vec<(&str, &str, u32, bool, bool)> = compiled
                .materials
                .iter()
                .map(|m| (m.name.as_str(), m.title.as_str(), m.copies, m.tolerated, m.promise))
                .collect();
            assert_eq!(materials, enforced, "{what}: the materials");
            for (line, material) in item.materials.iter().zip(&compiled.materials) {
                let applicant = matches!(material.source, dsl::model::MaterialSource::Applicant);
                assert_eq!(line.exempt, !applicant, "{what}/{}: brought by the applicant or not", line.name);
                assert_eq!(line.when, material.condition.as_ref().map(|c| c.source.clone()), "{what}/{}", line.name);
            }
            let steps: Vec<(&str, Option<u32>)> = item.steps.iter().map(|s| (s.name.as_str(), s.limit)).collect();
            let enforced: Vec<(&str, Option<u32>)> =
                compiled.steps.iter().map(|s| (s.name.as_str(), s.limit)).collect();
            assert_eq!(steps, enforced, "{what}: the steps");
        }
        // Every material the process asks for is one of its items', and none is asked twice.
        let mut seen = std::collections::HashSet::new();
        for line in &process_guide.materials {
            assert!(seen.insert(&line.name), "{process}: {} listed once", line.name);
            assert!(flow.items.iter().any(|i| i.materials.iter().any(|m| m.name == line.name)));
        }
        let asked = process_guide.materials.iter().filter(|m| !m.exempt).count();
        assert_eq!(
            asked, process_guide.savings.materials_asked,
            "{process}: the materials asked, as the report counts them"
        );
    }
}

/// A deployed flow gives the same guide as the files it was compiled from: `onetrip serve`
/// publishes the guides of what it runs.
#[test]
fn the_compiled_flow_gives_the_same_guide_as_its_files() {
    for process in stdlib_flows::processes() {
        let program = program(process);
        let flow = compile(&program, process).expect("compiles");
        assert_eq!(guide::guide(&flow.program(), process), guide::guide(&program, process), "{process}");
        for item in &flow.items {
            let alone = compile(&program, &item.name).expect("an item compiles alone");
            assert_eq!(guide::guide(&alone.program(), &item.name), guide::guide(&program, &item.name), "{}", item.name);
        }
    }
}
