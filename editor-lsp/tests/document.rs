//! Whole-document answers on the examples (outline, folding, semantic tokens, lenses and
//! inlay hints, formatting), and diagnostics as files change: published on open and on
//! change, for the files importing the changed one, with related information, and for files
//! created and deleted on disk.

mod support;

use std::path::Path;

use serde_json::{json, Value};
use support::{temp_dir, uri, Client};

/// A copy of an example in a folder of the test's own (tests run in parallel).
fn copy_example(name: &str, test: &str) -> std::path::PathBuf {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(name);
    let to = temp_dir(&format!("lsp-document-{test}"));
    for entry in std::fs::read_dir(&from).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "flow") {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
    to
}

fn doc(path: &Path) -> Value {
    json!({"textDocument": {"uri": uri(path)}})
}

#[test]
fn outline_folding_tokens_lenses_and_formatting_of_an_example() {
    let root = copy_example("start-business", "whole-document");
    let mut client = Client::start(&root);
    let main = root.join("start_business.flow");
    let samr = root.join("samr.flow");
    let samr_text = std::fs::read_to_string(&samr).unwrap();
    client.open(&main, &std::fs::read_to_string(&main).unwrap());
    client.open(&samr, &samr_text);
    assert!(client.diagnostics(&main).is_empty(), "the example is clean: {:?}", client.diagnostics(&main));

    let outline = client.request("textDocument/documentSymbol", doc(&samr));
    let names: Vec<String> =
        outline.as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_string()).collect();
    insta::assert_json_snapshot!("outline_samr", names);
    let item = outline.as_array().unwrap().iter().find(|s| s["kind"] == 12).expect("an item in the outline");
    assert!(item["children"].as_array().is_some_and(|c| !c.is_empty()), "items list their materials and steps");

    let folds = client.request("textDocument/foldingRange", doc(&samr));
    assert!(folds.as_array().unwrap().len() >= 3, "blocks fold: {folds}");
    assert!(folds.as_array().unwrap().iter().any(|f| f["kind"] == "comment"), "comment runs fold");

    let tokens = client.request("textDocument/semanticTokens/full", doc(&samr));
    let data = tokens["data"].as_array().unwrap();
    assert_eq!(data.len() % 5, 0);
    assert!(data.len() / 5 > 20, "names are coloured");
    // Decode the tokens: every one lies inside the text, on one line.
    let lines: Vec<&str> = samr_text.lines().collect();
    let (mut line, mut start) = (0u64, 0u64);
    for token in data.chunks(5) {
        let (dl, ds, length) = (token[0].as_u64().unwrap(), token[1].as_u64().unwrap(), token[2].as_u64().unwrap());
        line += dl;
        start = if dl == 0 { start + ds } else { ds };
        let text = lines[line as usize];
        assert!(start + length <= text.encode_utf16().count() as u64, "token inside line {line}");
    }

    let lenses = client.request("textDocument/codeLens", doc(&main));
    let titles: Vec<&str> =
        lenses.as_array().unwrap().iter().map(|l| l["command"]["title"].as_str().unwrap()).collect();
    insta::assert_json_snapshot!("lenses_start_business", titles);
    let hints = client.request(
        "textDocument/inlayHint",
        json!({"textDocument": {"uri": uri(&samr)}, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 999, "character": 0}}}),
    );
    assert!(hints.as_array().unwrap().iter().any(|h| h["label"].as_str().unwrap().contains("workday")));

    // Formatting: the example is formatted; a mangled copy comes back to it.
    assert_eq!(
        client.request(
            "textDocument/formatting",
            json!({"textDocument": {"uri": uri(&samr)}, "options": {"tabSize": 2, "insertSpaces": true}})
        ),
        json!([])
    );
    let mangled = samr_text.replacen("\n  handling", "\n      handling", 1);
    assert_ne!(mangled, samr_text);
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri(&samr), "version": 2}, "contentChanges": [{"text": mangled}]}),
    );
    let edits = client.request(
        "textDocument/formatting",
        json!({"textDocument": {"uri": uri(&samr)}, "options": {"tabSize": 2, "insertSpaces": true}}),
    );
    assert_eq!(edits.as_array().unwrap().len(), 1, "one line differs: {edits}");
    let range_edits = client.request(
        "textDocument/rangeFormatting",
        json!({"textDocument": {"uri": uri(&samr)}, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}, "options": {"tabSize": 2, "insertSpaces": true}}),
    );
    assert_eq!(range_edits, json!([]), "a range away from the change is left alone");

    // Workspace symbols find declarations in every file, by part of the name.
    let symbols = client.request("workspace/symbol", json!({"query": "registration"}));
    let found: Vec<&str> = symbols.as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert!(found.contains(&"company_registration"), "{found:?}");

    // Selection grows from a name in the flow to its process, each range inside the next.
    let main_text = std::fs::read_to_string(&main).unwrap();
    let line = main_text.lines().position(|l| l.trim() == "company_registration").expect("the flow names it");
    let character = main_text.lines().nth(line).unwrap().find("company").unwrap() + 3;
    let selection = client.request(
        "textDocument/selectionRange",
        json!({"textDocument": {"uri": uri(&main)}, "positions": [{"line": line, "character": character}]}),
    );
    let key = |p: &Value| (p["line"].as_u64().unwrap(), p["character"].as_u64().unwrap());
    let mut node = &selection[0];
    let mut levels = vec![(key(&node["range"]["start"]), key(&node["range"]["end"]))];
    while node["parent"].is_object() {
        node = &node["parent"];
        let (start, end) = (key(&node["range"]["start"]), key(&node["range"]["end"]));
        let inner = *levels.last().unwrap();
        assert!(start <= inner.0 && inner.1 <= end, "each range holds the one before it");
        levels.push((start, end));
    }
    assert_eq!(
        levels[0],
        ((line as u64, character as u64 - 3), (line as u64, character as u64 - 3 + 20)),
        "the word first"
    );
    assert!(levels.len() >= 4, "the name, the flow, the process, the file: {levels:?}");
    client.shutdown();
}

#[test]
fn diagnostics_follow_edits_imports_and_the_disk() {
    let root = copy_example("start-business", "diagnostics");
    let mut client = Client::start(&root);
    let departments = root.join("departments.flow");
    let samr = root.join("samr.flow");
    let text = std::fs::read_to_string(&departments).unwrap();
    client.open(&departments, &text);
    assert!(client.diagnostics(&samr).is_empty());

    // Renaming a department in the buffer (unsaved) breaks the files that import it.
    let broken = text.replace("department samr ", "department samr2 ");
    assert_ne!(broken, text);
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri(&departments), "version": 2}, "contentChanges": [{"text": broken}]}),
    );
    let in_samr = client.diagnostics(&samr);
    assert!(in_samr.iter().any(|d| d["code"] == "E0101"), "the importing file is told: {in_samr:?}");
    // And fixed again.
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri(&departments), "version": 3}, "contentChanges": [{"text": text}]}),
    );
    assert!(client.diagnostics(&samr).is_empty());

    // A file created on disk that breaks a rule is noticed when the editor says so.
    let extra = root.join("extra.flow");
    std::fs::write(
        &extra,
        "import \"departments.flow\"\nitem extra \"额外\" {\n  department samr\n  handling promised\n}\n",
    )
    .unwrap();
    client.notify("workspace/didChangeWatchedFiles", json!({"changes": [{"uri": uri(&extra), "type": 1}]}));
    let in_extra = client.diagnostics(&extra);
    assert!(in_extra.iter().any(|d| d["code"] == "E0104"), "{in_extra:?}");
    std::fs::remove_file(&extra).unwrap();
    client.notify("workspace/didChangeWatchedFiles", json!({"changes": [{"uri": uri(&extra), "type": 3}]}));
    assert!(client.diagnostics(&extra).is_empty(), "a deleted file's diagnostics are cleared");
    client.shutdown();
}

#[test]
fn related_information_names_the_other_places() {
    let root = temp_dir("lsp-related");
    let main = root.join("main.flow");
    let text = "department samr \"市场监督管理局\"\ndepartment samr \"重复\"\n";
    std::fs::write(&main, text).unwrap();
    let mut client = Client::start(&root);
    client.open(&main, text);
    let diagnostics = client.diagnostics(&main);
    let duplicate = diagnostics.iter().find(|d| d["code"] == "E0102").expect("a duplicate");
    let related = duplicate["relatedInformation"].as_array().expect("related information");
    assert_eq!(related[0]["location"]["range"]["start"]["line"], 0);
    assert!(duplicate["message"].as_str().unwrap().contains("help:"), "the help line is kept");
    client.shutdown();
}
