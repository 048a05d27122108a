//! What a reform-office author feels: the time from a keystroke to the diagnostics it
//! changes, and a completion, on a generated workspace of about 5,000 lines (10 joint
//! processes, 100 items, 12 files); and the memory of the real server on the 50,000-line
//! library (100 processes, 1,000 items).
//!
//! `cargo bench -p onetrip-editor-lsp --bench latency`

// The allocator the `onetrip-lsp` binary ships with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../../dsl/benches/support/library.rs"]
mod library;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use crossbeam_channel::{unbounded, Receiver, Sender};
use lsp_server::{Message, Notification, Request, RequestId};
use serde_json::{json, Value};

fn write_library(dir: &Path, processes: usize) -> usize {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let mut lines = 0;
    for (path, text) in library::library(processes, 10) {
        lines += text.lines().count();
        std::fs::write(dir.join(path), text).unwrap();
    }
    lines
}

fn uri(path: &Path) -> String {
    editor_lsp::convert::path_to_uri(&path.to_string_lossy()).unwrap().as_str().to_string()
}

struct InProcess {
    to_server: Sender<Message>,
    from_server: Receiver<Message>,
    id: i32,
}

impl InProcess {
    fn start(root: &Path) -> InProcess {
        let (to_server, server_in) = unbounded();
        let (server_out, from_server) = unbounded();
        std::thread::spawn(move || {
            editor_lsp::run(server_out, server_in, editor_lsp::Config { debounce: Duration::ZERO })
        });
        let mut client = InProcess { to_server, from_server, id: 0 };
        let root_uri = uri(root);
        client.request(
            "initialize",
            json!({"capabilities": {}, "workspaceFolders": [{"uri": root_uri, "name": "bench"}]}),
        );
        client.notify("initialized", json!({}));
        client
    }

    fn notify(&self, method: &str, params: Value) {
        self.to_server.send(Message::Notification(Notification::new(method.into(), params))).unwrap();
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        self.id += 1;
        let id = RequestId::from(self.id);
        self.to_server.send(Message::Request(Request::new(id.clone(), method.into(), params))).unwrap();
        loop {
            if let Message::Response(r) = self.from_server.recv().unwrap() {
                if r.id == id {
                    return r.result.unwrap_or(Value::Null);
                }
            }
        }
    }

    /// Waits for diagnostics of `uri` that are empty or not, as expected.
    fn diagnostics(&self, uri: &str, expect_some: bool) {
        loop {
            if let Message::Notification(n) = self.from_server.recv().unwrap() {
                let count = n.params["diagnostics"].as_array().map_or(0, Vec::len);
                if n.method == "textDocument/publishDiagnostics" && n.params["uri"] == uri && (count > 0) == expect_some
                {
                    return;
                }
            }
        }
    }
}

fn latency(c: &mut Criterion) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("lsp-bench-5k");
    let lines = write_library(&dir, 10);
    eprintln!("workspace: {lines} lines");
    let mut client = InProcess::start(&dir);
    let file = dir.join("items3.flow");
    let file_uri = uri(&file);
    let text = std::fs::read_to_string(&file).unwrap();
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": file_uri, "languageId": "onetrip-flow", "version": 1, "text": text}}),
    );
    // `department dept…` of the first item: one character after it makes it unknown.
    let line = text.lines().position(|l| l.trim_start().starts_with("department")).unwrap() as u32;
    let end = text.lines().nth(line as usize).unwrap().len() as u32;
    // Everything published on opening is read (a request is answered after it).
    client.request("workspace/symbol", json!({"query": "nothing matches this"}));
    let mut version = 1;
    let mut group = c.benchmark_group("lsp");
    group.sample_size(30);
    group.bench_function("keystroke to diagnostics (5k lines)", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                // Each change waits for its own diagnostics before the next is sent, so the
                // server's debounce never merges the two.
                for (range, insert, errors) in [((end, end), "x", true), ((end, end + 1), "", false)] {
                    version += 1;
                    let started = Instant::now();
                    client.notify(
                        "textDocument/didChange",
                        json!({
                            "textDocument": {"uri": file_uri, "version": version},
                            "contentChanges": [{"range": {"start": {"line": line, "character": range.0}, "end": {"line": line, "character": range.1}}, "text": insert}],
                        }),
                    );
                    client.diagnostics(&file_uri, errors);
                    total += started.elapsed() / 2;
                }
            }
            total
        })
    });
    group.bench_function("completion (5k lines)", |b| {
        let at = json!({"textDocument": {"uri": file_uri}, "position": {"line": line, "character": 17}});
        b.iter(|| {
            let answer = client.request("textDocument/completion", at.clone());
            assert!(answer["items"].as_array().is_some_and(|i| !i.is_empty()));
        })
    });
    group.finish();
    memory_of_the_server();
}

/// The resident memory of the real `onetrip-lsp` after it opened a file of the 50,000-line
/// library, from `/proc` (printed, not timed).
fn memory_of_the_server() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("lsp-bench-50k");
    let lines = write_library(&dir, 100);
    let mut child = Command::new(env!("CARGO_BIN_EXE_onetrip-lsp"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let mut input = child.stdin.take().unwrap();
    let mut output = BufReader::new(child.stdout.take().unwrap());
    let mut send = |body: Value| {
        let body = body.to_string();
        write!(input, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        input.flush().unwrap();
    };
    let started = Instant::now();
    send(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}, "workspaceFolders": [{"uri": uri(&dir), "name": "lib"}]}}),
    );
    read_answer(&mut output, 1);
    let file = dir.join("processes.flow");
    let text = std::fs::read_to_string(&file).unwrap();
    send(
        json!({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {"uri": uri(&file), "languageId": "onetrip-flow", "version": 1, "text": text}}}),
    );
    send(
        json!({"jsonrpc": "2.0", "id": 2, "method": "textDocument/documentSymbol", "params": {"textDocument": {"uri": uri(&file)}}}),
    );
    read_answer(&mut output, 2);
    let ready = started.elapsed();
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let field = |name: &str| status.lines().find(|l| l.starts_with(name)).unwrap_or("").to_string();
    eprintln!("server on the {lines}-line library: ready in {ready:?}; {} ; {}", field("VmRSS"), field("VmHWM"));
    send(json!({"jsonrpc": "2.0", "id": 3, "method": "shutdown"}));
    read_answer(&mut output, 3);
    send(json!({"jsonrpc": "2.0", "method": "exit"}));
    let _ = child.wait();
}

fn read_answer(output: &mut impl BufRead, id: i64) {
    loop {
        let mut length = 0;
        loop {
            let mut header = String::new();
            output.read_line(&mut header).unwrap();
            let header = header.trim();
            if header.is_empty() {
                break;
            }
            if let Some(n) = header.strip_prefix("Content-Length:") {
                length = n.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        output.read_exact(&mut body).unwrap();
        let value: Value = serde_json::from_slice(&body).unwrap();
        if value["id"] == id {
            return;
        }
    }
}

criterion_group!(benches, latency);
criterion_main!(benches);
