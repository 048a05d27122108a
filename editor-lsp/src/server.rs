//! The server: the main loop, the documents, and one handler per LSP method.
//!
//! One thread answers everything in order, so that an answer always reflects every edit
//! before it. Checking is debounced: an edit marks its file stale and the check runs once the
//! client has been quiet for [`Config::debounce`] — a newer edit in that window replaces the
//! older pending check, which never runs; a request arriving meanwhile runs it first. A check
//! of one unit takes milliseconds (see `benches/latency.rs`), so it is not interrupted once
//! started.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use dsl::ide::{self, Snapshot};
use dsl::span::{FileId, Span};
use lsp_server::{ErrorCode, Message, Notification, Request, Response};
use lsp_types::{Position, Uri};
use serde_json::{json, Value};

use crate::convert::{path_to_uri, uri_to_path, Lines};
use crate::project::Project;

pub struct Config {
    /// Quiet time after an edit before its file is checked.
    pub debounce: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config { debounce: Duration::from_millis(40) }
    }
}

/// Runs the server on a connection until `exit` (or the client goes away).
pub fn run(sender: Sender<Message>, receiver: Receiver<Message>, config: Config) {
    let mut server = Server {
        sender,
        project: Project::default(),
        config,
        stale: BTreeSet::new(),
        deadline: None,
        published: HashMap::new(),
        initialized: false,
        shutdown: false,
        stdlib_dir: std::env::temp_dir().join(format!("onetrip-lsp-stdlib-{}", env!("CARGO_PKG_VERSION"))),
    };
    loop {
        let message = match server.deadline {
            Some(deadline) => match receiver.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(message) => message,
                Err(RecvTimeoutError::Timeout) => {
                    server.flush();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            },
            None => match receiver.recv() {
                Ok(message) => message,
                Err(_) => return,
            },
        };
        match message {
            Message::Request(request) => server.request(request),
            Message::Notification(notification) => {
                if notification.method == "exit" {
                    return;
                }
                // Before `initialize`, notifications are dropped (LSP 3.17).
                if server.initialized {
                    server.notification(notification);
                }
            }
            Message::Response(_) => {}
        }
    }
}

struct Server {
    sender: Sender<Message>,
    project: Project,
    config: Config,
    /// Files edited since the last check.
    stale: BTreeSet<String>,
    /// When the pending check runs.
    deadline: Option<Instant>,
    /// What was last published per file, to send only changes.
    published: HashMap<String, Value>,
    initialized: bool,
    shutdown: bool,
    /// Where the embedded library's files are written for the editor to show (read-only).
    stdlib_dir: PathBuf,
}

/// A request's failure: the LSP error code and a message.
type Failure = (ErrorCode, String);

fn invalid(message: impl Into<String>) -> Failure {
    (ErrorCode::InvalidParams, message.into())
}

impl Server {
    fn send(&self, message: Message) {
        let _ = self.sender.send(message);
    }

    fn notify(&self, method: &str, params: Value) {
        self.send(Message::Notification(Notification::new(method.to_string(), params)));
    }

    fn request(&mut self, request: Request) {
        let id = request.id.clone();
        if request.method == "initialize" {
            let answer = self.initialize(request.params);
            self.send(Message::Response(Response::new_ok(id, answer)));
            return;
        }
        if !self.initialized {
            let message = "the server is not initialized yet".to_string();
            self.send(Message::Response(Response::new_err(id, ErrorCode::ServerNotInitialized as i32, message)));
            return;
        }
        if request.method == "shutdown" {
            self.shutdown = true;
            self.send(Message::Response(Response::new_ok(id, Value::Null)));
            return;
        }
        if self.shutdown {
            let message = "the server is shutting down".to_string();
            self.send(Message::Response(Response::new_err(id, ErrorCode::InvalidRequest as i32, message)));
            return;
        }
        // Answers reflect every edit received before the request.
        self.flush();
        // `dsl` is total by design; should a bug prove otherwise, the editor gets an error
        // answer for that one request and the server goes on.
        let method = request.method.clone();
        let answer =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.answer(&request.method, request.params)))
                .unwrap_or_else(|_| {
                    Err((ErrorCode::InternalError, format!("onetrip-lsp failed on `{method}`: this is a bug")))
                });
        self.send(Message::Response(match answer {
            Ok(value) => Response::new_ok(id, value),
            Err((code, message)) => Response::new_err(id, code as i32, message),
        }));
    }

    fn answer(&mut self, method: &str, params: Value) -> Result<Value, Failure> {
        match method {
            "textDocument/completion" => self.completion(params),
            "textDocument/hover" => self.hover(params),
            "textDocument/definition" => self.definition(params),
            "textDocument/references" => self.references(params),
            "textDocument/documentHighlight" => self.highlights(params),
            "textDocument/prepareRename" => self.prepare_rename(params),
            "textDocument/rename" => self.rename(params),
            "textDocument/documentSymbol" => self.document_symbols(params),
            "workspace/symbol" => self.workspace_symbols(params),
            "textDocument/formatting" => self.formatting(params, false),
            "textDocument/rangeFormatting" => self.formatting(params, true),
            "textDocument/semanticTokens/full" => self.semantic_tokens(params),
            "textDocument/codeAction" => self.code_actions(params),
            "textDocument/codeLens" => self.code_lenses(params),
            "textDocument/inlayHint" => self.inlay_hints(params),
            "textDocument/foldingRange" => self.folding_ranges(params),
            "textDocument/selectionRange" => self.selection_ranges(params),
            _ => Err((ErrorCode::MethodNotFound, format!("onetrip-lsp does not answer `{method}`"))),
        }
    }

    fn notification(&mut self, notification: Notification) {
        let params = notification.params;
        match notification.method.as_str() {
            "initialized" => {}
            "textDocument/didOpen" => {
                let Ok(p) = serde_json::from_value::<lsp_types::DidOpenTextDocumentParams>(params) else { return };
                let Some(path) = self.path_of(&p.text_document.uri) else { return };
                if path.starts_with('@') {
                    return;
                }
                let known = self.project.units.iter().any(|u| u.contains(&path));
                self.project.open.insert(path.clone(), (p.text_document.text, p.text_document.version));
                // A new file may take another's place as a root: the units are rebuilt.
                if known {
                    self.mark_stale(path);
                } else {
                    self.project.rebuild();
                    self.publish_all();
                }
            }
            "textDocument/didChange" => {
                let Ok(p) = serde_json::from_value::<lsp_types::DidChangeTextDocumentParams>(params) else { return };
                let Some(path) = self.path_of(&p.text_document.uri) else { return };
                let Some((text, version)) = self.project.open.get_mut(&path) else { return };
                for change in p.content_changes {
                    match change.range {
                        Some(range) => {
                            let lines = Lines::new(text);
                            let start = lines.offset_clamped(range.start);
                            let end = lines.offset_clamped(range.end).max(start);
                            text.replace_range(start..end, &change.text);
                        }
                        None => *text = change.text,
                    }
                }
                *version = p.text_document.version;
                self.mark_stale(path);
            }
            "textDocument/didClose" => {
                let Ok(p) = serde_json::from_value::<lsp_types::DidCloseTextDocumentParams>(params) else { return };
                let Some(path) = self.path_of(&p.text_document.uri) else { return };
                if self.project.open.remove(&path).is_some() {
                    // The disk's text is what counts again.
                    self.project.scan();
                    self.project.rebuild();
                    self.publish_all();
                }
            }
            "textDocument/didSave" => {}
            "workspace/didChangeWatchedFiles" | "workspace/didChangeWorkspaceFolders" => {
                if notification.method == "workspace/didChangeWorkspaceFolders" {
                    if let Ok(p) = serde_json::from_value::<lsp_types::DidChangeWorkspaceFoldersParams>(params) {
                        let removed: Vec<PathBuf> =
                            p.event.removed.iter().filter_map(|f| uri_to_path(&f.uri)).map(PathBuf::from).collect();
                        self.project.folders.retain(|f| !removed.contains(f));
                        self.project
                            .folders
                            .extend(p.event.added.iter().filter_map(|f| uri_to_path(&f.uri)).map(PathBuf::from));
                    }
                }
                self.project.scan();
                self.project.rebuild();
                self.publish_all();
            }
            _ => {}
        }
    }

    fn initialize(&mut self, params: Value) -> Value {
        let p: lsp_types::InitializeParams = serde_json::from_value(params).unwrap_or_default();
        let mut folders: Vec<PathBuf> = p
            .workspace_folders
            .unwrap_or_default()
            .iter()
            .filter_map(|f| uri_to_path(&f.uri))
            .map(PathBuf::from)
            .collect();
        #[allow(deprecated)]
        if folders.is_empty() {
            folders.extend(p.root_uri.as_ref().and_then(uri_to_path).map(PathBuf::from));
        }
        if let Some(ms) = p.initialization_options.as_ref().and_then(|o| o.get("debounce_ms")).and_then(Value::as_u64) {
            self.config.debounce = Duration::from_millis(ms.min(2_000));
        }
        self.project.folders = folders;
        self.project.scan();
        self.project.rebuild();
        self.initialized = true;
        let legend_types: Vec<&str> = TOKEN_TYPES.to_vec();
        json!({
            "serverInfo": {"name": "onetrip-lsp", "version": env!("CARGO_PKG_VERSION")},
            "capabilities": {
                "positionEncoding": "utf-16",
                "textDocumentSync": {"openClose": true, "change": 2, "save": {"includeText": false}},
                "completionProvider": {"triggerCharacters": [".", " ", "("], "resolveProvider": false},
                "hoverProvider": true,
                "definitionProvider": true,
                "referencesProvider": true,
                "documentHighlightProvider": true,
                "renameProvider": {"prepareProvider": true},
                "documentSymbolProvider": true,
                "workspaceSymbolProvider": true,
                "documentFormattingProvider": true,
                "documentRangeFormattingProvider": true,
                "semanticTokensProvider": {
                    "legend": {"tokenTypes": legend_types, "tokenModifiers": TOKEN_MODIFIERS},
                    "full": true,
                    "range": false
                },
                "codeActionProvider": {"codeActionKinds": ["quickfix"]},
                "codeLensProvider": {"resolveProvider": false},
                "inlayHintProvider": true,
                "foldingRangeProvider": true,
                "selectionRangeProvider": true,
                "workspace": {"workspaceFolders": {"supported": true, "changeNotifications": true}}
            }
        })
    }

    // ------------------------------------------------------------------ checking

    fn mark_stale(&mut self, path: String) {
        self.stale.insert(path);
        self.deadline = Some(Instant::now() + self.config.debounce);
    }

    /// Runs the pending check, if any, and publishes what changed.
    fn flush(&mut self) {
        self.deadline = None;
        if self.stale.is_empty() {
            return;
        }
        let stale = std::mem::take(&mut self.stale);
        let mut rebuild = false;
        for path in &stale {
            if !self.project.recheck(path) {
                rebuild = true;
                break;
            }
        }
        if rebuild {
            self.project.rebuild();
        }
        self.publish_all();
    }

    /// Publishes the diagnostics of every file whose diagnostics changed.
    fn publish_all(&mut self) {
        let all = self.project.diagnostics();
        let mut seen = BTreeSet::new();
        for (path, diagnostics) in &all {
            if path.starts_with('@') {
                continue;
            }
            seen.insert(path.clone());
            let list: Vec<Value> = diagnostics.iter().map(|(snapshot, d)| self.diagnostic_json(snapshot, d)).collect();
            let value = Value::Array(list);
            if self.published.get(path) == Some(&value) {
                continue;
            }
            let Some(uri) = path_to_uri(path) else { continue };
            let mut params = json!({"uri": uri, "diagnostics": value.clone()});
            if let Some((_, version)) = self.project.open.get(path) {
                params["version"] = json!(version);
            }
            self.published.insert(path.clone(), value);
            self.notify("textDocument/publishDiagnostics", params);
        }
        // Files no unit holds any more: clear what was published for them.
        let gone: Vec<String> = self.published.keys().filter(|p| !seen.contains(*p)).cloned().collect();
        for path in gone {
            self.published.remove(&path);
            if let Some(uri) = path_to_uri(&path) {
                self.notify("textDocument/publishDiagnostics", json!({"uri": uri, "diagnostics": []}));
            }
        }
    }

    fn diagnostic_json(&self, snapshot: &Snapshot, d: &dsl::Diagnostic) -> Value {
        let file = d.location.file;
        let lines = Lines::new(snapshot.text(file));
        let related: Vec<Value> = d
            .secondary
            .iter()
            .filter_map(|label| {
                let uri = self.uri_of(snapshot.path(label.location.file))?;
                let lines = Lines::new(snapshot.text(label.location.file));
                Some(json!({
                    "location": {"uri": uri, "range": lines.range(label.location.span)},
                    "message": label.message,
                }))
            })
            .collect();
        let mut message = d.message.clone();
        if !d.label.is_empty() && d.label != d.message {
            message.push_str(&format!("\n{}", d.label));
        }
        if let Some(help) = &d.help {
            message.push_str(&format!("\nhelp: {help}"));
        }
        let mut value = json!({
            "range": lines.range(d.location.span),
            "severity": if d.is_error() { 1 } else { 2 },
            "code": d.code.as_str(),
            "source": "onetrip",
            "message": message,
        });
        if !related.is_empty() {
            value["relatedInformation"] = Value::Array(related);
        }
        value
    }

    // ------------------------------------------------------------------ paths

    /// The workspace path of a URI: a file's path, or `@stdlib/…` for the library's copies.
    fn path_of(&self, uri: &Uri) -> Option<String> {
        let path = uri_to_path(uri)?;
        let dir = self.stdlib_dir.to_string_lossy();
        match path.strip_prefix(dir.as_ref()) {
            Some(rest) => Some(format!("@stdlib{rest}")),
            None => Some(path),
        }
    }

    /// The URI to show for a workspace path; the library's files are written to a read-only
    /// copy first.
    fn uri_of(&self, path: &str) -> Option<Uri> {
        match path.strip_prefix("@stdlib/") {
            Some(rest) => {
                let target = self.stdlib_dir.join(rest);
                if !target.exists() {
                    let text = stdlib_flows::source(path)?;
                    std::fs::create_dir_all(target.parent()?).ok()?;
                    std::fs::write(&target, text).ok()?;
                    if let Ok(metadata) = std::fs::metadata(&target) {
                        let mut permissions = metadata.permissions();
                        permissions.set_readonly(true);
                        let _ = std::fs::set_permissions(&target, permissions);
                    }
                }
                path_to_uri(&target.to_string_lossy())
            }
            None => path_to_uri(path),
        }
    }

    /// The snapshot answering for a document, the file in it, and the byte offset of a
    /// position.
    fn locate(&self, uri: &Uri, position: Position) -> Result<(&Snapshot, FileId, usize), Failure> {
        let (snapshot, file) = self.document(uri)?;
        let offset = Lines::new(snapshot.text(file))
            .offset(position)
            .ok_or_else(|| invalid(format!("line {} is past the end of the file", u64::from(position.line) + 1)))?;
        Ok((snapshot, file, offset))
    }

    fn document(&self, uri: &Uri) -> Result<(&Snapshot, FileId), Failure> {
        let path = self.path_of(uri).ok_or_else(|| invalid(format!("`{}` is not a file", uri.as_str())))?;
        let unit = self
            .project
            .unit_of(&path)
            .ok_or_else(|| invalid(format!("`{path}` is not a flow file of this workspace")))?;
        let file = unit.snapshot.file_id(&path).ok_or_else(|| invalid(format!("`{path}` is not open")))?;
        Ok((&unit.snapshot, file))
    }

    fn location_json(&self, snapshot: &Snapshot, location: dsl::Location) -> Option<Value> {
        let uri = self.uri_of(snapshot.path(location.file))?;
        let range = Lines::new(snapshot.text(location.file)).range(location.span);
        Some(json!({"uri": uri, "range": range}))
    }

    // ------------------------------------------------------------------ requests

    fn completion(&self, params: Value) -> Result<Value, Failure> {
        let p: lsp_types::CompletionParams = parse(params)?;
        let at = p.text_document_position;
        let (snapshot, file, offset) = self.locate(&at.text_document.uri, at.position)?;
        let items: Vec<Value> = ide::completion::complete(snapshot, file, offset)
            .into_iter()
            .map(|c| {
                let mut item = json!({
                    "label": c.label,
                    "kind": completion_kind(c.kind),
                    "detail": c.detail,
                });
                if !c.documentation.is_empty() {
                    item["documentation"] = json!({"kind": "markdown", "value": c.documentation});
                }
                if let Some(insert) = c.insert {
                    item["insertText"] = json!(insert);
                    item["insertTextFormat"] = json!(if c.snippet { 2 } else { 1 });
                }
                item
            })
            .collect();
        Ok(json!({"isIncomplete": false, "items": items}))
    }

    fn hover(&self, params: Value) -> Result<Value, Failure> {
        let p: lsp_types::HoverParams = parse(params)?;
        let at = p.text_document_position_params;
        let (snapshot, file, offset) = self.locate(&at.text_document.uri, at.position)?;
        Ok(match ide::hover::hover(snapshot, file, offset as u32) {
            Some(h) => json!({
                "contents": {"kind": "markdown", "value": h.markdown},
                "range": Lines::new(snapshot.text(file)).range(h.span),
            }),
            None => Value::Null,
        })
    }

    /// The snapshots of every unit holding the file, for answers that span units: the
    /// references to a name declared in a file imported by two roots.
    fn all_snapshots(&self, uri: &Uri) -> Result<Vec<(&Snapshot, FileId)>, Failure> {
        let path = self.path_of(uri).ok_or_else(|| invalid("not a file"))?;
        let found: Vec<(&Snapshot, FileId)> = self
            .project
            .units_of(&path)
            .into_iter()
            .filter_map(|u| u.snapshot.file_id(&path).map(|f| (&u.snapshot, f)))
            .collect();
        if found.is_empty() {
            return Err(invalid(format!("`{path}` is not a flow file of this workspace")));
        }
        Ok(found)
    }

    fn definition(&self, params: Value) -> Result<Value, Failure> {
        let p: lsp_types::GotoDefinitionParams = parse(params)?;
        let at = p.text_document_position_params;
        let (snapshot, file, offset) = self.locate(&at.text_document.uri, at.position)?;
        Ok(ide::navigation::definition(snapshot, file, offset as u32)
            .and_then(|location| self.location_json(snapshot, location))
            .unwrap_or(Value::Null))
    }

    fn references(&self, params: Value) -> Result<Value, Failure> {
        let p: lsp_types::ReferenceParams = parse(params)?;
        let at = p.text_document_position;
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for (snapshot, file) in self.all_snapshots(&at.text_document.uri)? {
            let Some(offset) = Lines::new(snapshot.text(file)).offset(at.position) else { continue };
            for location in ide::navigation::references(snapshot, file, offset as u32, p.context.include_declaration) {
                let key = (snapshot.path(location.file).to_string(), location.span);
                if seen.insert(key) {
                    out.extend(self.location_json(snapshot, location));
                }
            }
        }
        Ok(Value::Array(out))
    }

    fn highlights(&self, params: Value) -> Result<Value, Failure> {
        let p: lsp_types::DocumentHighlightParams = parse(params)?;
        let at = p.text_document_position_params;
        let (snapshot, file, offset) = self.locate(&at.text_document.uri, at.position)?;
        let lines = Lines::new(snapshot.text(file));
        let list: Vec<Value> = ide::navigation::highlights(snapshot, file, offset as u32)
            .into_iter()
            .map(|(span, declaration)| json!({"range": lines.range(span), "kind": if declaration { 3 } else { 2 }}))
            .collect();
        Ok(Value::Array(list))
    }

    fn prepare_rename(&self, params: Value) -> Result<Value, Failure> {
        let p: lsp_types::TextDocumentPositionParams = parse(params)?;
        let (snapshot, file, offset) = self.locate(&p.text_document.uri, p.position)?;
        match ide::navigation::prepare_rename(snapshot, file, offset as u32) {
            Ok((span, symbol)) => Ok(json!({
                "range": Lines::new(snapshot.text(file)).range(span),
                "placeholder": symbol.name(),
            })),
            Err(message) => Err((ErrorCode::InvalidRequest, message)),
        }
    }

    fn rename(&self, params: Value) -> Result<Value, Failure> {
        let p: lsp_types::RenameParams = parse(params)?;
        let at = p.text_document_position;
        let mut changes: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for (snapshot, file) in self.all_snapshots(&at.text_document.uri)? {
            let Some(offset) = Lines::new(snapshot.text(file)).offset(at.position) else { continue };
            let (_, symbol) = ide::navigation::prepare_rename(snapshot, file, offset as u32)
                .map_err(|m| (ErrorCode::InvalidRequest, m))?;
            let edits =
                ide::navigation::rename(snapshot, &symbol, &p.new_name).map_err(|m| (ErrorCode::InvalidRequest, m))?;
            for edit in edits {
                let path = snapshot.path(edit.location.file).to_string();
                if !seen.insert((path.clone(), edit.location.span)) {
                    continue;
                }
                let Some(uri) = self.uri_of(&path) else { continue };
                let range = Lines::new(snapshot.text(edit.location.file)).range(edit.location.span);
                changes
                    .entry(uri.as_str().to_string())
                    .or_default()
                    .push(json!({"range": range, "newText": edit.text}));
            }
        }
        Ok(json!({"changes": changes}))
    }

    fn document_symbols(&self, params: Value) -> Result<Value, Failure> {
        let p: lsp_types::DocumentSymbolParams = parse(params)?;
        let (snapshot, file) = self.document(&p.text_document.uri)?;
        let lines = Lines::new(snapshot.text(file));
        fn convert(lines: &Lines, node: &ide::outline::OutlineNode) -> Value {
            let children: Vec<Value> = node.children.iter().map(|c| convert(lines, c)).collect();
            let mut value = json!({
                "name": node.name,
                "kind": symbol_kind(node.kind),
                "range": lines.range(node.span),
                "selectionRange": lines.range(node.name_span),
            });
            if !node.detail.is_empty() {
                value["detail"] = json!(node.detail);
            }
            if !children.is_empty() {
                value["children"] = Value::Array(children);
            }
            value
        }
        Ok(Value::Array(ide::outline::outline(snapshot, file).iter().map(|n| convert(&lines, n)).collect()))
    }

    fn workspace_symbols(&self, params: Value) -> Result<Value, Failure> {
        let p: lsp_types::WorkspaceSymbolParams = parse(params)?;
        let query = p.query.to_lowercase();
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for unit in &self.project.units {
            let snapshot = &unit.snapshot;
            for (symbol, location) in snapshot.index.declarations() {
                let name = symbol.name();
                if !name.to_lowercase().contains(&query)
                    || !seen.insert((snapshot.path(location.file).to_string(), location.span))
                {
                    continue;
                }
                let Some(location) = self.location_json(snapshot, *location) else { continue };
                out.push(json!({"name": name, "kind": index_symbol_kind(symbol), "location": location, "containerName": symbol.kind()}));
                if out.len() >= 500 {
                    return Ok(Value::Array(out));
                }
            }
        }
        Ok(Value::Array(out))
    }

    fn formatting(&self, params: Value, range_only: bool) -> Result<Value, Failure> {
        let (uri, range) = if range_only {
            let p: lsp_types::DocumentRangeFormattingParams = parse(params)?;
            (p.text_document.uri, Some(p.range))
        } else {
            let p: lsp_types::DocumentFormattingParams = parse(params)?;
            (p.text_document.uri, None)
        };
        let (snapshot, file) = self.document(&uri)?;
        if snapshot.path(file).starts_with('@') {
            return Ok(Value::Array(Vec::new()));
        }
        let text = snapshot.text(file);
        // A file with syntax errors is left as it is: the formatter needs a tree.
        let Ok(formatted) = dsl::fmt::format(text) else { return Ok(Value::Null) };
        let lines = Lines::new(text);
        let wanted = range.map(|r| (r.start.line, r.end.line));
        Ok(Value::Array(line_edits(text, &formatted, &lines, wanted)))
    }

    fn semantic_tokens(&self, params: Value) -> Result<Value, Failure> {
        let p: lsp_types::SemanticTokensParams = parse(params)?;
        let (snapshot, file) = self.document(&p.text_document.uri)?;
        let lines = Lines::new(snapshot.text(file));
        let mut data = Vec::new();
        let (mut last_line, mut last_start) = (0u32, 0u32);
        for token in ide::tokens::tokens(snapshot, file) {
            let start = lines.position(token.span.start as usize);
            let end = lines.position(token.span.end as usize);
            // LSP tokens stay on one line.
            if end.line != start.line || end.character <= start.character {
                continue;
            }
            let kind = ide::tokens::TokenKind::ALL.iter().position(|k| *k == token.kind).unwrap_or(0) as u32;
            let mut modifiers = 0u32;
            if token.declaration {
                modifiers |= 1;
            }
            if token.personal {
                modifiers |= 2;
            }
            if snapshot.path(file).starts_with('@') {
                modifiers |= 4;
            }
            let delta_line = start.line - last_line;
            let delta_start = if delta_line == 0 { start.character - last_start } else { start.character };
            data.extend([delta_line, delta_start, end.character - start.character, kind, modifiers]);
            last_line = start.line;
            last_start = start.character;
        }
        Ok(json!({"data": data}))
    }

    fn code_actions(&self, params: Value) -> Result<Value, Failure> {
        let p: lsp_types::CodeActionParams = parse(params)?;
        let (snapshot, file) = self.document(&p.text_document.uri)?;
        let lines = Lines::new(snapshot.text(file));
        let start = lines.offset_clamped(p.range.start);
        let end = lines.offset_clamped(p.range.end).max(start);
        let mut out = Vec::new();
        for action in ide::actions::actions(snapshot, file, Span::new(start, end)) {
            let mut changes: BTreeMap<String, Vec<Value>> = BTreeMap::new();
            for edit in &action.fix.edits {
                let Some(uri) = self.uri_of(snapshot.path(edit.location.file)) else { continue };
                let range = Lines::new(snapshot.text(edit.location.file)).range(edit.location.span);
                changes
                    .entry(uri.as_str().to_string())
                    .or_default()
                    .push(json!({"range": range, "newText": edit.text}));
            }
            out.push(json!({
                "title": action.fix.title,
                "kind": "quickfix",
                "diagnostics": [self.diagnostic_json(snapshot, action.diagnostic)],
                "isPreferred": action.diagnostic.fixes.len() == 1,
                "edit": {"changes": changes},
            }));
        }
        Ok(Value::Array(out))
    }

    fn code_lenses(&self, params: Value) -> Result<Value, Failure> {
        let p: lsp_types::CodeLensParams = parse(params)?;
        let (snapshot, file) = self.document(&p.text_document.uri)?;
        let lines = Lines::new(snapshot.text(file));
        let lenses: Vec<Value> = ide::lens::lenses(snapshot, file)
            .into_iter()
            .map(|lens| json!({"range": lines.range(lens.span), "command": {"title": lens.text, "command": ""}}))
            .collect();
        Ok(Value::Array(lenses))
    }

    fn inlay_hints(&self, params: Value) -> Result<Value, Failure> {
        let p: lsp_types::InlayHintParams = parse(params)?;
        let (snapshot, file) = self.document(&p.text_document.uri)?;
        let lines = Lines::new(snapshot.text(file));
        let hints: Vec<Value> = ide::lens::lenses(snapshot, file)
            .into_iter()
            .filter_map(|lens| {
                let position = lines.position(lens.span.end as usize);
                (p.range.start.line <= position.line && position.line <= p.range.end.line)
                    .then(|| json!({"position": position, "label": format!("  {}", lens.text), "paddingLeft": true}))
            })
            .collect();
        Ok(Value::Array(hints))
    }

    fn folding_ranges(&self, params: Value) -> Result<Value, Failure> {
        let p: lsp_types::FoldingRangeParams = parse(params)?;
        let (snapshot, file) = self.document(&p.text_document.uri)?;
        let folds: Vec<Value> = ide::outline::folds(snapshot, file)
            .into_iter()
            .map(|f| {
                let mut value = json!({"startLine": f.start_line, "endLine": f.end_line});
                if f.comment {
                    value["kind"] = json!("comment");
                }
                value
            })
            .collect();
        Ok(Value::Array(folds))
    }

    fn selection_ranges(&self, params: Value) -> Result<Value, Failure> {
        let p: lsp_types::SelectionRangeParams = parse(params)?;
        let (snapshot, file) = self.document(&p.text_document.uri)?;
        let lines = Lines::new(snapshot.text(file));
        let mut out = Vec::new();
        for position in p.positions {
            let offset = lines.offset(position).ok_or_else(|| invalid("a position past the end of the file"))?;
            let chain = ide::outline::selection(snapshot, file, offset as u32);
            let mut value = Value::Null;
            for span in chain.iter().rev() {
                let mut node = json!({"range": lines.range(*span)});
                if !value.is_null() {
                    node["parent"] = value;
                }
                value = node;
            }
            if value.is_null() {
                value = json!({"range": {"start": position, "end": position}});
            }
            out.push(value);
        }
        Ok(Value::Array(out))
    }
}

fn parse<T: serde::de::DeserializeOwned>(params: Value) -> Result<T, Failure> {
    serde_json::from_value(params).map_err(|e| invalid(format!("invalid parameters: {e}")))
}

/// The edits turning `text` into `formatted`, one per changed run of lines; with `wanted`,
/// only the runs that touch those lines (0-based, inclusive).
fn line_edits(text: &str, formatted: &str, lines: &Lines, wanted: Option<(u32, u32)>) -> Vec<Value> {
    use similar::{DiffOp, TextDiff};
    let diff = TextDiff::from_lines(text, formatted);
    let old_lines: Vec<&str> = text.split_inclusive('\n').collect();
    let new_lines: Vec<&str> = formatted.split_inclusive('\n').collect();
    let line_offset = |index: usize| old_lines[..index.min(old_lines.len())].iter().map(|l| l.len()).sum::<usize>();
    let mut out = Vec::new();
    for op in diff.ops() {
        let (old, new) = match *op {
            DiffOp::Equal { .. } => continue,
            DiffOp::Delete { old_index, old_len, new_index } => (old_index..old_index + old_len, new_index..new_index),
            DiffOp::Insert { old_index, new_index, new_len } => (old_index..old_index, new_index..new_index + new_len),
            DiffOp::Replace { old_index, old_len, new_index, new_len } => {
                (old_index..old_index + old_len, new_index..new_index + new_len)
            }
        };
        if let Some((first, last)) = wanted {
            let (start, end) = (old.start as u32, old.end.max(old.start + 1) as u32 - 1);
            if end < first || start > last {
                continue;
            }
        }
        let range =
            json!({"start": lines.position(line_offset(old.start)), "end": lines.position(line_offset(old.end))});
        out.push(json!({"range": range, "newText": new_lines[new.start.min(new_lines.len())..new.end.min(new_lines.len())].concat()}));
    }
    out
}

/// Semantic token types, in the order of [`ide::tokens::TokenKind::ALL`]: standard LSP names
/// where one fits, so that themes colour them without configuration.
const TOKEN_TYPES: [&str; 12] = [
    "namespace", // department
    "property",  // data set
    "type",      // schema
    "property",  // field
    "function",  // item
    "class",     // process
    "enumMember",
    "string",   // material
    "event",    // step
    "method",   // function
    "variable", // case value
    "operator",
];
const TOKEN_MODIFIERS: [&str; 3] = ["declaration", "personal", "readonly"];

fn completion_kind(kind: ide::completion::CompletionKind) -> u32 {
    use ide::completion::CompletionKind as K;
    match kind {
        K::Keyword => 14,
        K::Value => 12,
        K::Department => 9,
        K::Dataset => 10,
        K::Schema => 22,
        K::Field => 5,
        K::Item => 3,
        K::Process => 7,
        K::Licence => 20,
        K::Material => 17,
        K::Step => 23,
        K::Function => 3,
        K::Method => 2,
        K::Variable => 6,
        K::Snippet => 15,
    }
}

fn symbol_kind(kind: ide::outline::OutlineKind) -> u32 {
    use ide::outline::OutlineKind as K;
    match kind {
        K::Import => 2,
        K::Department => 3,
        K::Dataset => 7,
        K::Schema => 23,
        K::Field => 8,
        K::Item => 12,
        K::Material => 15,
        K::Step => 24,
        K::Licence => 22,
        K::Process => 5,
    }
}

fn index_symbol_kind(symbol: &ide::Symbol) -> u32 {
    use ide::Symbol as S;
    match symbol {
        S::Department(_) => 3,
        S::Dataset { .. } => 7,
        S::Schema(_) => 23,
        S::Field { .. } => 8,
        S::Item(_) => 12,
        S::Process(_) => 5,
        S::Licence { .. } => 22,
        S::Material(_) => 15,
        S::Step { .. } => 24,
        S::Function(_) => 12,
        S::Context(_) => 13,
    }
}
