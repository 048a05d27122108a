//! Data-driven tests of the language server: each file in `fixtures/<request>/` is a small
//! workspace with a cursor, and the server's answer to that request is an `insta` snapshot.
//! Adding a case is adding a file.
//!
//! Format: files are separated by `//- path` lines (the first file needs none: it is
//! `main.flow`); `$0` marks the cursor in one of them; a line `// new_name: x` in a rename
//! fixture gives the new name. The cursor's file is opened in the editor, the others are on
//! disk only.

mod support;

use std::path::Path;

use serde_json::{json, Value};
use support::{temp_dir, uri, Client};

struct Fixture {
    files: Vec<(String, String)>,
    cursor_file: String,
    cursor: (u32, u32),
    new_name: Option<String>,
}

fn parse_fixture(text: &str) -> Fixture {
    let mut files: Vec<(String, String)> = vec![("main.flow".into(), String::new())];
    for line in text.split_inclusive('\n') {
        if let Some(path) = line.strip_prefix("//- ") {
            files.push((path.trim().to_string(), String::new()));
        } else {
            files.last_mut().unwrap().1.push_str(line);
        }
    }
    files.retain(|(path, text)| path != "main.flow" || !text.trim().is_empty());
    let mut cursor = None;
    let mut new_name = None;
    for (path, text) in &mut files {
        if let Some(at) = text.find("$0") {
            let before = &text[..at];
            let line = before.matches('\n').count() as u32;
            let column = before.rsplit('\n').next().unwrap().encode_utf16().count() as u32;
            cursor = Some((path.clone(), (line, column)));
            *text = text.replacen("$0", "", 1);
        }
        if let Some(line) = text.lines().find(|l| l.starts_with("// new_name:")) {
            new_name = Some(line["// new_name:".len()..].trim().to_string());
        }
    }
    let (cursor_file, cursor) = cursor.expect("a fixture marks the cursor with $0");
    Fixture { files, cursor_file, cursor, new_name }
}

/// Makes an answer readable and independent of the temporary folder.
fn readable(value: &Value, root: &Path) -> Value {
    let text = serde_json::to_string(value).unwrap();
    let stdlib = std::env::temp_dir().join(format!("onetrip-lsp-stdlib-{}", env!("CARGO_PKG_VERSION")));
    let text = text
        .replace(&uri(root), "file://$ROOT")
        .replace(&uri(&stdlib), "file://$STDLIB")
        .replace(&root.to_string_lossy().to_string(), "$ROOT");
    serde_json::from_str(&text).unwrap()
}

fn run(kind: &str, path: &Path) -> Value {
    let fixture = parse_fixture(&std::fs::read_to_string(path).unwrap());
    let name = path.file_stem().unwrap().to_string_lossy().to_string();
    let root = temp_dir(&format!("lsp-{kind}-{name}"));
    for (file, text) in &fixture.files {
        let target = root.join(file);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, text).unwrap();
    }
    let mut client = Client::start(&root);
    let main = root.join(&fixture.cursor_file);
    let text = &fixture.files.iter().find(|(p, _)| *p == fixture.cursor_file).unwrap().1;
    client.open(&main, text);
    let (line, character) = fixture.cursor;
    let at = json!({"textDocument": {"uri": uri(&main)}, "position": {"line": line, "character": character}});
    let answer = match kind {
        "completion" => {
            let answer = client.request("textDocument/completion", at);
            let items = answer["items"].as_array().cloned().unwrap_or_default();
            Value::Array(
                items
                    .iter()
                    .map(|i| {
                        json!(format!("{} — {}", i["label"].as_str().unwrap(), i["detail"].as_str().unwrap_or("")))
                    })
                    .collect(),
            )
        }
        "hover" => client.request("textDocument/hover", at)["contents"]["value"].clone(),
        "definition" => client.request("textDocument/definition", at),
        "references" => {
            let mut params = at;
            params["context"] = json!({"includeDeclaration": true});
            client.request("textDocument/references", params)
        }
        "rename" => {
            let mut params = at;
            params["newName"] = json!(fixture.new_name.clone().expect("a rename fixture gives `// new_name: x`"));
            client.request("textDocument/rename", params)
        }
        "code_action" => {
            let position = json!({"line": line, "character": character});
            let params = json!({
                "textDocument": {"uri": uri(&main)},
                "range": {"start": position, "end": position},
                "context": {"diagnostics": []},
            });
            let actions = client.request("textDocument/codeAction", params);
            Value::Array(
                actions
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|a| json!({"title": a["title"], "edit": a["edit"]}))
                    .collect(),
            )
        }
        other => panic!("unknown fixture kind {other}"),
    };
    client.shutdown();
    readable(&answer, &root)
}

#[test]
fn fixtures() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut count = 0;
    for kind in ["completion", "hover", "definition", "references", "rename", "code_action"] {
        let mut paths: Vec<_> = std::fs::read_dir(base.join(kind))
            .unwrap_or_else(|_| panic!("tests/fixtures/{kind} exists"))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "flow"))
            .collect();
        paths.sort();
        for path in paths {
            let answer = run(kind, &path);
            let name = format!("{kind}__{}", path.file_stem().unwrap().to_string_lossy());
            insta::with_settings!({snapshot_path => "snapshots", prepend_module_to_snapshot => false, input_file => &path}, {
                insta::assert_json_snapshot!(name, answer);
            });
            count += 1;
        }
    }
    assert!(count >= 6, "every kind has fixtures");
}
