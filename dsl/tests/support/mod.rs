//! Shared by the dsl test files.

// Not every test file uses every helper.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Every `.flow` file of the fixtures and the examples, with its text, in path order.
pub fn flow_files() -> Vec<(PathBuf, String)> {
    flow_files_under(&["dsl/tests/fixtures", "examples"])
}

/// Every `.flow` file under folders of the repository, with its text, in path order.
pub fn flow_files_under(folders: &[&str]) -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut out = Vec::new();
    let mut folders: Vec<PathBuf> = folders.iter().map(|f| root.join(f)).collect();
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "flow") {
                if let Ok(text) = std::fs::read_to_string(&path) {
                    out.push((path, text));
                }
            }
        }
    }
    out.sort();
    out
}
