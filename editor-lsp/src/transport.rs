//! JSON-RPC over stdio, framed by `Content-Length` headers.
//!
//! `lsp-server` brings its own stdio transport, but its reader thread stops at the first
//! malformed message, and the server with it. Ours answers a payload that is not JSON with a
//! parse error, one that is JSON but no message with an invalid-request error, skips a
//! malformed header, and goes on.

use std::io::{self, BufRead, Write};
use std::thread;

use crossbeam_channel::{bounded, Receiver, Sender};
use lsp_server::{ErrorCode, Message, RequestId};

/// The server's ends of the connection and its two threads.
pub struct Stdio {
    pub sender: Sender<Message>,
    pub receiver: Receiver<Message>,
    pub reader: thread::JoinHandle<()>,
    pub writer: thread::JoinHandle<()>,
}

/// Starts the reader and writer threads on stdin and stdout.
pub fn stdio() -> Stdio {
    let (to_writer, writer_queue) = bounded::<Message>(64);
    let (errors, error_queue) = bounded::<String>(64);
    let (to_server, from_reader) = bounded::<Message>(64);
    let writer = thread::spawn(move || {
        let mut error_queue = error_queue;
        let stdout = io::stdout();
        let mut out = stdout.lock();
        loop {
            let written = crossbeam_channel::select! {
                recv(writer_queue) -> message => match message {
                    Ok(message) => message.write(&mut out),
                    Err(_) => break,
                },
                recv(error_queue) -> body => match body {
                    Ok(body) => write_frame(&mut out, &body),
                    // The reader has ended: stop listening to it (a closed channel is
                    // always ready, which would spin).
                    Err(_) => {
                        error_queue = crossbeam_channel::never();
                        continue;
                    }
                },
            };
            if written.is_err() {
                break;
            }
        }
    });
    let reader = thread::spawn(move || {
        let stdin = io::stdin();
        let mut input = stdin.lock();
        read_messages(&mut input, &to_server, &errors);
    });
    Stdio { sender: to_writer, receiver: from_reader, reader, writer }
}

/// Reads messages until the input ends or an `exit` notification; a message that cannot be
/// read is answered on `errors` (as the JSON of the answer) and skipped.
pub fn read_messages(input: &mut dyn BufRead, to_server: &Sender<Message>, errors: &Sender<String>) {
    loop {
        let body = match read_frame(input) {
            Ok(Some(body)) => body,
            Ok(None) => return,
            Err(Frame::Skip) => continue,
            Err(Frame::Io) => return,
        };
        match parse(&body) {
            Ok(message) => {
                let exit = matches!(&message, Message::Notification(n) if n.method == "exit");
                if to_server.send(message).is_err() || exit {
                    return;
                }
            }
            Err(answer) => {
                if errors.send(answer.to_string()).is_err() {
                    return;
                }
            }
        }
    }
}

enum Frame {
    /// A malformed header or body: skipped.
    Skip,
    /// The input failed or ended inside a message.
    Io,
}

fn read_frame(input: &mut dyn BufRead) -> Result<Option<Vec<u8>>, Frame> {
    let mut length: Option<usize> = None;
    let mut line = String::new();
    let mut saw_header = false;
    loop {
        line.clear();
        match input.read_line(&mut line) {
            Ok(0) => return if saw_header { Err(Frame::Io) } else { Ok(None) },
            Ok(_) => {}
            // Not UTF-8: not a header.
            Err(e) if e.kind() == io::ErrorKind::InvalidData => return Err(Frame::Skip),
            Err(_) => return Err(Frame::Io),
        }
        let header = line.trim_end_matches(['\r', '\n']);
        if header.is_empty() {
            if !saw_header {
                continue;
            }
            break;
        }
        saw_header = true;
        if let Some((name, value)) = header.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok();
            }
        }
    }
    // A frame without a usable length cannot be read: skip to the next header.
    let Some(length) = length.filter(|&n| n <= 64 << 20) else { return Err(Frame::Skip) };
    let mut body = vec![0; length];
    input.read_exact(&mut body).map_err(|_| Frame::Io)?;
    Ok(Some(body))
}

/// A message, or the error answer to send instead.
fn parse(body: &[u8]) -> Result<Message, serde_json::Value> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| error_response(None, ErrorCode::ParseError, format!("the message is not JSON: {e}")))?;
    let id = value.get("id").cloned();
    // With a method it is a request or a notification. `lsp_server` would read one whose
    // method is no string as a response (and drop it), and a request whose id it cannot keep
    // (a number beyond 32 bits, a fraction) as a notification (and never answer it).
    if let Some(method) = value.get("method") {
        let id_ok =
            id.as_ref().is_none_or(|id| id.is_null() || serde_json::from_value::<RequestId>(id.clone()).is_ok());
        if !method.is_string() || !id_ok {
            let message = "not a JSON-RPC request or notification: the method must be a string, the id an integer of 32 bits or a string";
            return Err(error_response(id, ErrorCode::InvalidRequest, message.to_string()));
        }
    }
    serde_json::from_value::<Message>(value).map_err(|e| {
        error_response(id, ErrorCode::InvalidRequest, format!("not a JSON-RPC request or notification: {e}"))
    })
}

/// An error answer, with the id as the client sent it (a number or a string); without one the
/// id is JSON `null`, as JSON-RPC asks (which `lsp_server::Response` cannot say, hence plain
/// JSON).
fn error_response(id: Option<serde_json::Value>, code: ErrorCode, message: String) -> serde_json::Value {
    let id = id.filter(|id| id.is_number() || id.is_string()).unwrap_or(serde_json::Value::Null);
    serde_json::json!({"jsonrpc": "2.0", "id": id, "error": {"code": code as i32, "message": message}})
}

/// Writes one message with its header (used by tests and the benchmark).
pub fn write_frame(out: &mut dyn Write, body: &str) -> io::Result<()> {
    write!(out, "Content-Length: {}\r\n\r\n{body}", body.len())?;
    out.flush()
}
