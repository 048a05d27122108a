//! An LSP client for tests: the server runs in a thread of the test, over channels, and the
//! client speaks JSON-RPC to it as an editor would.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, Sender};
use lsp_server::{Message, Notification, Request, RequestId};
use serde_json::{json, Value};

pub struct Client {
    to_server: Sender<Message>,
    from_server: Receiver<Message>,
    next_id: i32,
    /// Notifications received while waiting for answers.
    pub notifications: Vec<Notification>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub root: PathBuf,
}

impl Client {
    /// Starts a server on the folder and initializes it (no debounce: checks run at once).
    pub fn start(root: &Path) -> Client {
        let (to_server, server_in) = unbounded();
        let (server_out, from_server) = unbounded();
        let thread = std::thread::spawn(move || {
            editor_lsp::run(server_out, server_in, editor_lsp::Config { debounce: Duration::ZERO })
        });
        let mut client = Client {
            to_server,
            from_server,
            next_id: 0,
            notifications: Vec::new(),
            thread: Some(thread),
            root: root.to_path_buf(),
        };
        let uri = uri(root);
        client.request(
            "initialize",
            json!({"processId": null, "rootUri": uri, "capabilities": {}, "workspaceFolders": [{"uri": uri, "name": "test"}]}),
        );
        client.notify("initialized", json!({}));
        client
    }

    pub fn notify(&self, method: &str, params: Value) {
        self.to_server.send(Message::Notification(Notification::new(method.into(), params))).unwrap();
    }

    /// Sends a request and waits for its answer: the result, or the error as `{"error": …}`.
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = RequestId::from(self.next_id);
        self.to_server.send(Message::Request(Request::new(id.clone(), method.into(), params))).unwrap();
        loop {
            match self.from_server.recv_timeout(Duration::from_secs(30)).expect("the server answers") {
                Message::Response(r) if r.id == id => {
                    return match r.error {
                        Some(e) => json!({"error": {"code": e.code, "message": e.message}}),
                        None => r.result.unwrap_or(Value::Null),
                    };
                }
                Message::Notification(n) => self.notifications.push(n),
                _ => {}
            }
        }
    }

    pub fn open(&self, path: &Path, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri(path), "languageId": "onetrip-flow", "version": 1, "text": text}}),
        );
    }

    /// The diagnostics last published for a file, after every message sent so far was handled.
    pub fn diagnostics(&mut self, path: &Path) -> Vec<Value> {
        // A request is answered after everything before it, pending checks included.
        self.request("workspace/symbol", json!({"query": "\u{0}"}));
        let uri = uri(path);
        self.notifications
            .iter()
            .rev()
            .find(|n| n.method == "textDocument/publishDiagnostics" && n.params["uri"] == json!(uri))
            .map(|n| n.params["diagnostics"].as_array().cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    pub fn shutdown(mut self) {
        self.request("shutdown", Value::Null);
        self.notify("exit", Value::Null);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the server thread ends cleanly");
        }
    }
}

pub fn uri(path: &Path) -> String {
    editor_lsp::convert::path_to_uri(&path.to_string_lossy()).expect("absolute path").as_str().to_string()
}

/// A fresh folder under the target directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
