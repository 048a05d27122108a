//! Bad input to the real `onetrip-lsp` over its pipes: what a confused or buggy client may
//! send. Every request gets an answer (a result or an error with the JSON-RPC code the spec
//! asks for), nothing kills the server, and afterwards a valid request still answers and
//! `shutdown` + `exit` end the process with status 0.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(20);

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;
const SERVER_NOT_INITIALIZED: i64 = -32002;

/// The server process, a thread reading its framed answers, and what it sent so far.
struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    from_server: Receiver<Value>,
    /// Messages received but not yet claimed: notifications, stray answers.
    pending: Vec<Value>,
    next_id: i64,
    root: PathBuf,
}

fn copy_example(name: &str) -> PathBuf {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/start-business");
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("protocol-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        // The flows only: the example's folder also holds its guide site and applicants.
        if path.extension().is_some_and(|e| e == "flow") {
            std::fs::copy(&path, root.join(path.file_name().unwrap())).unwrap();
        }
    }
    root
}

fn uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// Reads `Content-Length` frames until the output ends.
fn read_frames(out: impl Read, to_test: std::sync::mpsc::Sender<Value>) {
    let mut out = BufReader::new(out);
    loop {
        let mut length = None;
        loop {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(value) = line.strip_prefix("Content-Length:") {
                length = Some(value.trim().parse::<usize>().expect("a numeric Content-Length"));
            }
        }
        let mut body = vec![0; length.expect("the server sends Content-Length")];
        if out.read_exact(&mut body).is_err() {
            return;
        }
        let value = serde_json::from_slice(&body).expect("the server sends JSON");
        if to_test.send(value).is_err() {
            return;
        }
    }
}

impl Server {
    /// Starts the server on a copy of the example, not initialized.
    fn spawn(name: &str) -> Server {
        let root = copy_example(name);
        let mut child = Command::new(env!("CARGO_BIN_EXE_onetrip-lsp"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("onetrip-lsp starts");
        let stdout = child.stdout.take().unwrap();
        let (to_test, from_server) = channel();
        std::thread::spawn(move || read_frames(stdout, to_test));
        let stdin = child.stdin.take();
        Server { child, stdin, from_server, pending: Vec::new(), next_id: 0, root }
    }

    /// Starts and initializes the server on a copy of the example (no debounce).
    fn start(name: &str) -> Server {
        let mut server = Server::spawn(name);
        let root = uri(&server.root);
        let answer = server.request(
            "initialize",
            json!({
                "processId": null,
                "rootUri": root,
                "capabilities": {},
                "workspaceFolders": [{"uri": root, "name": "example"}],
                "initializationOptions": {"debounce_ms": 0},
            }),
        );
        assert!(answer["result"]["capabilities"].is_object(), "initialize answers capabilities: {answer}");
        server.notify("initialized", json!({}));
        server
    }

    fn file(&self, name: &str) -> String {
        uri(&self.root.join(name))
    }

    fn text(&self, name: &str) -> String {
        std::fs::read_to_string(self.root.join(name)).unwrap()
    }

    fn raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    }

    /// Sends a body with a correct header.
    fn frame(&mut self, body: &[u8]) {
        let mut bytes = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        bytes.extend_from_slice(body);
        self.raw(&bytes);
    }

    fn send(&mut self, message: &Value) {
        self.frame(message.to_string().as_bytes());
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Sends a request and waits for its answer (the whole response).
    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = json!(self.next_id);
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        self.answer_to(&id, method)
    }

    /// Waits for the answer with this id.
    fn answer_to(&mut self, id: &Value, what: &str) -> Value {
        let is_answer = |m: &Value| m.get("method").is_none() && m.get("id") == Some(id);
        self.wait_for(what, is_answer)
    }

    /// Waits for a message (or takes one already received) that matches.
    fn wait_for(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.pending.iter().position(&wanted) {
            return self.pending.remove(i);
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match self.from_server.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(message) if wanted(&message) => return message,
                Ok(message) => self.pending.push(message),
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no answer for {what} within {TIMEOUT:?}; received meanwhile: {:#?}", self.pending)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().unwrap();
                    panic!("the server closed its output ({status}) while waiting for {what}")
                }
            }
        }
    }

    /// Waits for diagnostics of a file satisfying a condition; returns their codes.
    fn diagnostics(&mut self, uri: &str, what: &str, wanted: impl Fn(&[String]) -> bool) -> Vec<String> {
        let codes = |m: &Value| -> Vec<String> {
            m["params"]["diagnostics"]
                .as_array()
                .map(|a| a.iter().map(|d| d["code"].as_str().unwrap_or("").to_string()).collect())
                .unwrap_or_default()
        };
        let message = self.wait_for(what, |m| {
            m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri && wanted(&codes(m))
        });
        codes(&message)
    }

    /// Everything received so far without waiting for more than `quiet`.
    fn drain(&mut self, quiet: Duration) -> Vec<Value> {
        while let Ok(message) = self.from_server.recv_timeout(quiet) {
            self.pending.push(message);
        }
        std::mem::take(&mut self.pending)
    }

    fn hover(&mut self, uri: &str, line: i64, character: i64) -> Value {
        self.request(
            "textDocument/hover",
            json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}),
        )
    }

    /// The server is alive and sane: a hover on `company_registration` in the flow answers
    /// with its documentation.
    fn assert_hover_works(&mut self) {
        let text = self.text("start_business.flow");
        self.assert_hover_works_on(&text);
    }

    /// The same, when the file is open with this text.
    fn assert_hover_works_on(&mut self, text: &str) {
        let file = self.file("start_business.flow");
        let (line, column) = position_of(text, "    company_registration\n", 4);
        let answer = self.hover(&file, line, column + 2);
        let markdown = answer["result"]["contents"]["value"].as_str().unwrap_or("");
        assert!(markdown.contains("企业设立登记"), "a valid hover answers with the item's title: {answer}");
    }

    /// `shutdown` answers null, `exit` ends the process with status 0.
    fn shutdown(mut self) {
        let answer = self.request("shutdown", Value::Null);
        assert_eq!(answer["result"], Value::Null, "shutdown answers null: {answer}");
        assert!(answer.get("error").is_none(), "shutdown succeeds: {answer}");
        // Requests after shutdown are refused, not answered.
        let file = self.file("start_business.flow");
        let refused = self.hover(&file, 0, 0);
        assert_eq!(refused["error"]["code"], INVALID_REQUEST, "a request after shutdown: {refused}");
        self.notify("exit", Value::Null);
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the server did not exit within {TIMEOUT:?} after `exit`");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(status.success(), "shutdown + exit end the server with status 0, not {status}");
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A failed test leaves no server behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The 0-based line and UTF-16 column of `needle` in `text`, plus `skip` bytes (ASCII).
fn position_of(text: &str, needle: &str, skip: usize) -> (i64, i64) {
    let offset = text.find(needle).unwrap_or_else(|| panic!("`{needle}` is in the text")) + skip;
    let line = text[..offset].matches('\n').count();
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    (line as i64, text[line_start..offset].encode_utf16().count() as i64)
}

fn error_code(answer: &Value) -> i64 {
    answer["error"]["code"].as_i64().unwrap_or_else(|| panic!("an error answer, got {answer}"))
}

#[test]
fn requests_before_initialize_are_refused() {
    let mut server = Server::spawn("uninitialized");
    let file = server.file("start_business.flow");
    let answer = server.hover(&file, 0, 0);
    assert_eq!(error_code(&answer), SERVER_NOT_INITIALIZED, "{answer}");
    let answer = server.request("shutdown", Value::Null);
    assert_eq!(error_code(&answer), SERVER_NOT_INITIALIZED, "{answer}");
    // Notifications before initialize are dropped quietly.
    server.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": file, "languageId": "flow", "version": 1, "text": ""}}),
    );
    // Then initialize works as usual.
    let root = uri(&server.root);
    let answer = server.request("initialize", json!({"processId": null, "rootUri": root, "capabilities": {}}));
    assert!(answer["result"]["capabilities"].is_object(), "{answer}");
    server.notify("initialized", json!({}));
    server.assert_hover_works();
    server.shutdown();
}

#[test]
fn malformed_messages_are_answered_and_skipped() {
    let mut server = Server::start("malformed");

    // Not JSON: a parse error with a null id.
    for body in [&b"{not json"[..], b"", b"{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ", b"\xff\xfe{}"] {
        server.frame(body);
        let answer = server.wait_for("a parse error", |m| m.get("error").is_some());
        assert_eq!(error_code(&answer), PARSE_ERROR, "{:?}: {answer}", String::from_utf8_lossy(body));
        assert_eq!(answer["id"], Value::Null, "a parse error has a null id: {answer}");
    }

    // JSON, but not a message: an invalid request, with the id when there is one.
    for (body, id) in [
        (json!([1, 2, 3]), Value::Null),
        (json!(42), Value::Null),
        (json!("textDocument/hover"), Value::Null),
        (json!({"jsonrpc": "2.0"}), Value::Null),
        (json!({"jsonrpc": "2.0", "id": 7, "method": 5}), json!(7)),
        (json!({"jsonrpc": "2.0", "id": "seven", "method": ["hover"]}), json!("seven")),
    ] {
        server.send(&body);
        let answer = server.wait_for("an invalid-request error", |m| m.get("error").is_some());
        assert_eq!(error_code(&answer), INVALID_REQUEST, "{body}: {answer}");
        assert_eq!(answer["id"], id, "{body}: {answer}");
    }

    // Headers without a usable length are skipped, the next frame is read.
    server.raw(b"X-Nonsense: yes\r\n\r\n");
    server.raw(b"Content-Length: 99999999999999999999\r\n\r\n");
    server.raw(b"\xff\xfe\r\n\r\n");
    server.raw(b"\r\n\r\n");
    server.assert_hover_works();

    // String ids are echoed.
    server.send(&json!({"jsonrpc": "2.0", "id": "abc", "method": "textDocument/hover", "params": {}}));
    let answer = server.answer_to(&json!("abc"), "a request with a string id");
    assert_eq!(error_code(&answer), INVALID_PARAMS, "{answer}");

    // Nothing unexpected was sent meanwhile (no answers to what were not requests).
    let extra: Vec<Value> =
        server.drain(Duration::from_millis(200)).into_iter().filter(|m| m.get("method").is_none()).collect();
    assert!(extra.is_empty(), "answers nobody asked for: {extra:#?}");
    server.shutdown();
}

#[test]
fn unknown_methods_and_bad_params() {
    let mut server = Server::start("methods");
    let file = server.file("start_business.flow");

    let answer = server.request("textDocument/teleport", json!({"textDocument": {"uri": file}}));
    assert_eq!(error_code(&answer), METHOD_NOT_FOUND, "{answer}");
    let answer = server.request("$/somethingPrivate", Value::Null);
    assert_eq!(error_code(&answer), METHOD_NOT_FOUND, "{answer}");

    // Unknown notifications and garbage params on known ones are ignored.
    server.notify("$/cancelRequest", json!("not an object"));
    server.notify("$/setTrace", json!({"value": 5}));
    server.notify("initialized", json!([1, 2]));
    server.notify("textDocument/didOpen", json!("hello"));
    server.notify("textDocument/didOpen", Value::Null);
    server.notify("textDocument/didOpen", json!({"textDocument": {"uri": 5, "text": []}}));
    server.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": "untitled:1", "languageId": "flow", "version": 1, "text": "x"}}),
    );
    server.notify("textDocument/didChange", json!({"textDocument": {"uri": file}, "contentChanges": "all of them"}));
    server.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": "file:///nowhere/x.flow", "version": 2}, "contentChanges": [{"text": "x"}]}),
    );
    server.notify("textDocument/didClose", json!({"textDocument": {"uri": "file:///nowhere/x.flow"}}));
    server.notify("textDocument/didClose", json!(null));
    server.notify("textDocument/didSave", json!(17));
    server.notify("workspace/didChangeWatchedFiles", json!({"changes": "many"}));
    server.notify("workspace/didChangeWorkspaceFolders", json!({"event": null}));
    server.notify("workspace/didChangeConfiguration", json!({"settings": {"x": [null]}}));

    // Requests with garbage params: invalid params.
    for params in [
        Value::Null,
        json!([1, 2]),
        json!("x"),
        json!({"textDocument": {"uri": file}}),
        json!({"textDocument": {"uri": "not a uri"}, "position": {"line": 0, "character": 0}}),
    ] {
        for method in
            ["textDocument/hover", "textDocument/completion", "textDocument/definition", "textDocument/rename"]
        {
            let answer = server.request(method, params.clone());
            assert_eq!(error_code(&answer), INVALID_PARAMS, "{method} {params}: {answer}");
        }
    }
    // A request without params at all.
    server.send(&json!({"jsonrpc": "2.0", "id": 1000, "method": "textDocument/documentSymbol"}));
    let answer = server.answer_to(&json!(1000), "documentSymbol without params");
    assert_eq!(error_code(&answer), INVALID_PARAMS, "{answer}");
    // A negative line is no position.
    let answer = server.hover(&file, -1, 0);
    assert_eq!(error_code(&answer), INVALID_PARAMS, "{answer}");

    server.assert_hover_works();
    server.shutdown();
}

#[test]
fn positions_and_files_out_of_reach() {
    let mut server = Server::start("positions");
    let file = server.file("start_business.flow");
    let lines = server.text("start_business.flow").lines().count() as i64;

    // Past the last line: invalid params, on every method that takes a position.
    for method in [
        "textDocument/hover",
        "textDocument/completion",
        "textDocument/definition",
        "textDocument/documentHighlight",
        "textDocument/prepareRename",
    ] {
        for line in [lines + 1, 100_000, u32::MAX as i64] {
            let answer = server
                .request(method, json!({"textDocument": {"uri": file}, "position": {"line": line, "character": 0}}));
            assert_eq!(error_code(&answer), INVALID_PARAMS, "{method} at line {line}: {answer}");
        }
    }
    // References look in every unit holding the file: none has that line, none is found.
    let answer = server.request(
        "textDocument/references",
        json!({"textDocument": {"uri": file}, "position": {"line": u32::MAX, "character": 0}, "context": {"includeDeclaration": true}}),
    );
    assert_eq!(answer["result"], json!([]), "references past the end: {answer}");
    let answer = server.request(
        "textDocument/selectionRange",
        json!({"textDocument": {"uri": file}, "positions": [{"line": 100_000, "character": 0}]}),
    );
    assert_eq!(error_code(&answer), INVALID_PARAMS, "{answer}");

    // Past the end of a line: the end of the line (as LSP says); an answer, not an error.
    for character in [500, u32::MAX as i64] {
        let answer = server.hover(&file, 0, character);
        assert!(answer.get("error").is_none(), "hover past the end of a line answers: {answer}");
        let answer = server.request(
            "textDocument/completion",
            json!({"textDocument": {"uri": file}, "position": {"line": lines - 1, "character": character}}),
        );
        assert!(answer["result"]["items"].is_array(), "completion past the end of a line: {answer}");
    }
    // Ranges out of reach on range requests: clamped or ignored, answered.
    let far = json!({"start": {"line": 100_000, "character": 7}, "end": {"line": 3, "character": 100_000}});
    for (method, params) in [
        (
            "textDocument/codeAction",
            json!({"textDocument": {"uri": file}, "range": far, "context": {"diagnostics": []}}),
        ),
        ("textDocument/inlayHint", json!({"textDocument": {"uri": file}, "range": far})),
        (
            "textDocument/rangeFormatting",
            json!({"textDocument": {"uri": file}, "range": far, "options": {"tabSize": 2, "insertSpaces": true}}),
        ),
    ] {
        let answer = server.request(method, params);
        assert!(answer.get("error").is_none(), "{method} with a range out of reach: {answer}");
    }

    // A file of the workspace that was never opened: answered from the disk.
    let samr = server.file("samr.flow");
    let text = server.text("samr.flow");
    let (line, column) = position_of(&text, "item company_registration", 5);
    let answer = server.hover(&samr, line, column);
    assert!(answer["result"]["contents"]["value"].is_string(), "hover in a file never opened: {answer}");

    // Files that are not of the workspace, or no files at all: invalid params.
    for uri in [
        "file:///nowhere/never.flow".to_string(),
        server.file("missing.flow"),
        server.file("README.md"),
        "untitled:Untitled-1".to_string(),
        "https://example.com/a.flow".to_string(),
        "file://".to_string(),
    ] {
        for method in ["textDocument/hover", "textDocument/definition"] {
            let answer =
                server.request(method, json!({"textDocument": {"uri": uri}, "position": {"line": 0, "character": 0}}));
            assert_eq!(error_code(&answer), INVALID_PARAMS, "{method} on {uri}: {answer}");
        }
        for method in [
            "textDocument/documentSymbol",
            "textDocument/semanticTokens/full",
            "textDocument/formatting",
            "textDocument/foldingRange",
            "textDocument/codeLens",
        ] {
            let answer = server.request(
                method,
                json!({"textDocument": {"uri": uri}, "options": {"tabSize": 2, "insertSpaces": true}}),
            );
            assert_eq!(error_code(&answer), INVALID_PARAMS, "{method} on {uri}: {answer}");
        }
    }

    server.assert_hover_works();
    server.shutdown();
}

#[test]
fn utf16_positions_inside_surrogate_pairs() {
    let mut server = Server::start("utf16");
    let file = server.file("start_business.flow");
    // A title with characters outside the BMP (two UTF-16 units each) before the name.
    let text = server.text("start_business.flow").replace(
        "process start_business \"开办企业一件事\"",
        "// 𠀀𠀁 (two characters, four UTF-16 units)\nprocess start_business \"𝄞𝄞开办企业一件事\"",
    );
    assert!(text.contains('𝄞'));
    server.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": file, "languageId": "flow", "version": 1, "text": text}}),
    );
    let codes = server.diagnostics(&file, "diagnostics of the opened file", |_| true);
    assert!(codes.is_empty(), "the edited title is fine: {codes:?}");

    let (line, start) = position_of(&text, "𝄞𝄞", 0);
    // Every UTF-16 unit of the line, including the middle of each surrogate pair, and past
    // the end of the line.
    let units = text.lines().nth(line as usize).unwrap().encode_utf16().count() as i64;
    for character in (0..=units + 3).chain([start + 1, start + 3]) {
        for method in [
            "textDocument/hover",
            "textDocument/definition",
            "textDocument/completion",
            "textDocument/documentHighlight",
            "textDocument/references",
            "textDocument/prepareRename",
        ] {
            let mut params = json!({"textDocument": {"uri": file}, "position": {"line": line, "character": character}});
            if method == "textDocument/references" {
                params["context"] = json!({"includeDeclaration": true});
            }
            let answer = server.request(method, params);
            if method == "textDocument/prepareRename" {
                // Nothing to rename on most of the line: a refusal, with a reason.
                assert!(answer.get("result").is_some() || error_code(&answer) == INVALID_REQUEST, "{method}: {answer}");
                continue;
            }
            assert!(answer.get("error").is_none(), "{method} at {line}:{character}: {answer}");
        }
    }
    // Ranges the server sends back are in UTF-16 units: the process name's range on the line.
    let (name_line, name_start) = position_of(&text, "start_business \"𝄞", 0);
    let answer = server.request(
        "textDocument/documentHighlight",
        json!({"textDocument": {"uri": file}, "position": {"line": name_line, "character": name_start + 1}}),
    );
    let ranges = answer["result"].as_array().cloned().unwrap_or_default();
    assert!(
        ranges.iter().any(|r| r["range"]["start"] == json!({"line": name_line, "character": name_start})),
        "the process name is highlighted at its UTF-16 position: {answer}"
    );
    // Semantic tokens over the line with surrogate pairs stay well-formed.
    let answer = server.request("textDocument/semanticTokens/full", json!({"textDocument": {"uri": file}}));
    let data = answer["result"]["data"].as_array().expect("semantic tokens");
    assert_eq!(data.len() % 5, 0, "tokens come in fives: {answer}");

    server.assert_hover_works_on(&text);
    server.shutdown();
}

#[test]
fn incremental_changes_out_of_range() {
    let mut server = Server::start("changes");
    let file = server.file("start_business.flow");
    let text = server.text("start_business.flow");
    server.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": file, "languageId": "flow", "version": 1, "text": text}}),
    );
    let codes = server.diagnostics(&file, "diagnostics of the opened file", |_| true);
    assert!(codes.is_empty(), "the example is clean: {codes:?}");

    let change = |server: &mut Server, version: i64, changes: Value| {
        server.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": file, "version": version}, "contentChanges": changes}),
        );
    };
    // A range past the end of the file (and a reversed one): applied at the end of the text,
    // where it makes a syntax error.
    change(
        &mut server,
        2,
        json!([{"range": {"start": {"line": 100_000, "character": 3}, "end": {"line": 2, "character": 0}}, "text": "\nthis is not a declaration {"}]),
    );
    let codes = server.diagnostics(&file, "a syntax error at the end", |codes| !codes.is_empty());
    assert!(!codes.is_empty(), "the text appended at the end is an error: {codes:?}");
    let hover = server.hover(&file, 0, 0);
    assert!(hover.get("error").is_none(), "a hover after the change: {hover}");

    // Characters past the end of a line, or inside a surrogate pair: clamped, not a panic.
    change(
        &mut server,
        3,
        json!([
            {"range": {"start": {"line": 0, "character": 10_000}, "end": {"line": 0, "character": 99_999}}, "text": "𝄞"},
            {"range": {"start": {"line": 0, "character": 1}, "end": {"line": 0, "character": 1}}, "text": ""},
            {"range": {"start": {"line": 1, "character": u32::MAX}, "end": {"line": 0, "character": 0}}, "text": ""},
        ]),
    );
    // The line now ends with a clef: a position in the middle of it.
    let first = format!("{}𝄞", text.lines().next().unwrap());
    let middle = first.encode_utf16().count() as i64 - 1;
    change(
        &mut server,
        4,
        json!([{"range": {"start": {"line": 0, "character": middle}, "end": {"line": 0, "character": middle + 1}}, "text": "x"}]),
    );
    // Garbage changes are dropped.
    change(&mut server, 5, json!([{"range": "everything", "text": 5}]));
    change(&mut server, 6, json!(null));
    let hover = server.hover(&file, 0, middle);
    assert!(hover.get("error").is_none(), "a hover at the clamped edit: {hover}");

    // A full replacement brings the file back: the diagnostics clear.
    change(&mut server, 7, json!([{"text": text}]));
    let codes = server.diagnostics(&file, "the diagnostics to clear", |codes| codes.is_empty());
    assert!(codes.is_empty());

    server.assert_hover_works();
    server.shutdown();
}

#[test]
fn request_ids_the_server_cannot_keep_are_answered() {
    let mut server = Server::start("ids");
    let file = server.file("start_business.flow");
    // JSON-RPC allows any number as an id; one that does not fit the server's ids must not
    // leave the client waiting forever.
    for id in [json!(5_000_000_000_i64), json!(1.5), json!(-7_000_000_000_i64)] {
        server.send(&json!({"jsonrpc": "2.0", "id": id, "method": "textDocument/hover", "params": {"textDocument": {"uri": file}, "position": {"line": 0, "character": 0}}}));
        let answer = server.wait_for("an answer to an odd id", |m| m.get("method").is_none());
        assert!(answer.get("error").is_some() || answer.get("result").is_some(), "{id}: {answer}");
        assert_eq!(answer["id"], id, "the odd id is echoed: {answer}");
    }
    server.assert_hover_works();
    server.shutdown();
}

#[test]
fn end_of_input_ends_the_server() {
    let mut server = Server::start("eof");
    server.assert_hover_works();
    // The client goes away without shutdown: the server notices and exits.
    server.stdin = None;
    let deadline = Instant::now() + TIMEOUT;
    while server.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the server still runs {TIMEOUT:?} after its input closed");
        std::thread::sleep(Duration::from_millis(10));
    }
}
