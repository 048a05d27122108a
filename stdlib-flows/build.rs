//! Embeds every `.flow` file under `flows/` and every scenario under `scenarios/`, so that the
//! binary carries the library and adding a process is adding files.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn walk(root: &Path, dir: &Path, extension: &str, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(root, &path, extension, out);
        } else if path.extension().is_some_and(|e| e == extension) {
            let relative = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            out.push((relative, path));
        }
    }
}

fn table(name: &str, root: &Path, extension: &str) -> String {
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    walk(root, root, extension, &mut files);
    files.sort();
    let mut code = format!("pub static {name}: &[(&str, &str)] = &[\n");
    for (relative, path) in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        let _ = writeln!(code, "    ({relative:?}, include_str!({:?})),", path.display().to_string());
    }
    code.push_str("];\n");
    code
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let mut code = table("FLOW_FILES", &manifest.join("flows"), "flow");
    code.push_str(&table("SCENARIO_FILES", &manifest.join("scenarios"), "json"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("embedded.rs");
    std::fs::write(out, code).expect("OUT_DIR is writable");
}
