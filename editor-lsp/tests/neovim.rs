//! onetrip-lsp in a real editor: Neovim (headless) runs `neovim/check.lua`, which configures
//! the client with `neovim/onetrip.lua` (the configuration the README shows), opens a copy of
//! `examples/start-business`, edits it through the buffer, asks for completion and a
//! definition, and writes what it saw as JSON; this test checks it.
//!
//! Needs `nvim` (0.7 or later) on PATH: `scripts/install-test-deps` installs it. `ONETRIP_NVIM`
//! names another binary (e.g. a newer Neovim) to run instead.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(60);

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A fresh copy of the example, so that nothing the editor does touches the repository.
fn example_copy() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = manifest.join("../examples/start-business");
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("neovim-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    copy_dir(&example, &root.join("start-business"));
    root
}

#[test]
fn neovim_drives_the_server() {
    let started = Instant::now();
    let root = example_copy();
    let folder = root.join("start-business");
    let out = root.join("findings.json");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/neovim/check.lua");

    let nvim = std::env::var("ONETRIP_NVIM").unwrap_or_else(|_| "nvim".to_string());
    let spawned = Command::new(&nvim)
        .args(["--headless", "--clean", "-u", "NONE", "-i", "NONE", "-n", "-c"])
        .arg(format!("luafile {}", script.display()))
        .env("ONETRIP_NVIM_OUT", &out)
        .env("ONETRIP_LSP", env!("CARGO_BIN_EXE_onetrip-lsp"))
        .env("ONETRIP_ROOT", &folder)
        // Neovim's own files (log, state) stay in the copy.
        .env("XDG_STATE_HOME", root.join("state"))
        .env("XDG_CACHE_HOME", root.join("cache"))
        .env("XDG_DATA_HOME", root.join("data"))
        .current_dir(&folder)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("`{nvim}` is not installed (needed by this test): run scripts/install-test-deps")
        }
        Err(e) => panic!("cannot run `{nvim}`: {e}"),
    };
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "nvim did not finish within {TIMEOUT:?}; killed.\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = child.wait_with_output().unwrap();
    let logs = format!(
        "nvim exited with {status}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&out)
        .unwrap_or_else(|e| panic!("the script wrote no findings to {} ({e})\n{logs}", out.display()));
    let findings: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("findings are not JSON: {e}\n{text}"));
    eprintln!("Neovim {} drove onetrip-lsp in {:?}", findings["nvim"], started.elapsed());

    assert!(findings.get("error").is_none(), "the Lua script failed: {}\n{logs}", findings["error"]);
    assert_eq!(findings["filetype"], "flow", "*.flow files get the `flow` filetype: {findings:#}");
    assert_eq!(findings["attached"], true, "the client attached to the buffer: {findings:#}");

    // The example is clean: the first diagnostics for the opened file are empty.
    assert_eq!(findings["first_diagnostics_received"], true, "publishDiagnostics for the file: {findings:#}");
    assert_eq!(findings["first_diagnostics"], serde_json::json!([]), "no diagnostics on the example: {findings:#}");

    // The edit through the buffer (an incremental didChange) gives E0101 on the new name.
    assert_eq!(findings["e0101_received"], true, "E0101 after renaming the window's department: {findings:#}");
    assert_eq!(findings["after_edit"], serde_json::json!(["E0101"]), "only E0101 after the edit: {findings:#}");
    let e0101 = &findings["e0101"];
    assert_eq!(e0101["line"], findings["edit_line"], "E0101 is on the edited line: {findings:#}");
    assert!(
        e0101["message"].as_str().unwrap_or("").contains("nosuch_department"),
        "E0101 names the unknown department: {findings:#}"
    );

    // Completion in the `window` field offers the departments.
    let labels: Vec<&str> =
        findings["completion"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    for department in ["samr", "psb", "tax", "hrss", "bank"] {
        assert!(labels.contains(&department), "completion offers `{department}`; got {labels:?}");
    }

    // `company_registration` in the flow is declared in samr.flow.
    let definitions = findings["definition"].as_array().cloned().unwrap_or_default();
    assert_eq!(definitions.len(), 1, "one definition of company_registration: {findings:#}");
    let uri = definitions[0]["uri"].as_str().unwrap_or("");
    assert!(uri.starts_with("file://"), "a file URI: {uri}");
    assert!(uri.ends_with("/start-business/samr.flow"), "company_registration is declared in samr.flow, got {uri}");
    let line = definitions[0]["line"].as_u64().unwrap() as usize;
    let samr = std::fs::read_to_string(folder.join("samr.flow")).unwrap();
    assert!(
        samr.lines().nth(line).unwrap_or("").contains("item company_registration"),
        "the definition points at the item's declaration, line {}: {:?}",
        line + 1,
        samr.lines().nth(line)
    );

    // Undoing the edit clears the error.
    assert_eq!(findings["e0101_cleared"], true, "E0101 goes away after undoing the edit: {findings:#}");
    assert_eq!(findings["after_undo"], serde_json::json!([]), "no diagnostics after the undo: {findings:#}");

    assert!(status.success(), "{logs}");
    // The copy is only removed when everything passed, to look at it otherwise.
    let _ = std::fs::remove_dir_all(&root);
}
