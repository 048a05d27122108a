//! The CLI's traces: `onetrip demo` with an OTLP endpoint set sends its spans before it exits,
//! to a minimal HTTP receiver on loopback; without one it sends nothing and says nothing.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};

/// What the receiver saw: (request line, content type, body).
type Requests = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;

/// Answers 200 to every request on a loopback port, on a thread of its own (it ends with the
/// test process).
fn receiver() -> (String, Requests) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
    let address = listener.local_addr().expect("address");
    let requests = Requests::default();
    let seen = Arc::clone(&requests);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let seen = Arc::clone(&seen);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut stream = stream;
                // Keep-alive: several requests on one connection, until it closes.
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let (mut length, mut kind) = (0usize, String::new());
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':') {
                            match name.trim().to_ascii_lowercase().as_str() {
                                "content-length" => length = value.trim().parse().unwrap_or(0),
                                "content-type" => kind = value.trim().to_string(),
                                _ => {}
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    seen.lock().expect("lock").push((line.trim().to_string(), kind, body));
                    let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
                    if stream.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (format!("http://{address}"), requests)
}

fn demo(name: &str, endpoint: Option<&str>) -> (String, std::process::ExitStatus) {
    let db = std::env::temp_dir().join(format!("onetrip-cli-traces-{}-{name}.db", std::process::id()));
    let mut command = Command::new(env!("CARGO_BIN_EXE_onetrip"));
    command.args(["demo", "--db", &format!("sqlite://{}", db.display())]);
    for (variable, _) in std::env::vars().filter(|(v, _)| v.starts_with("OTEL_")) {
        command.env_remove(variable);
    }
    if let Some(endpoint) = endpoint {
        command.env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint);
    }
    let out = command.output().expect("runs");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    (String::from_utf8_lossy(&out.stderr).into_owned(), out.status)
}

#[test]
fn the_demo_sends_its_spans_before_it_exits() {
    let (endpoint, requests) = receiver();
    let (stderr, status) = demo("on", Some(&endpoint));
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("spans sent"), "{stderr}");
    let requests = requests.lock().expect("lock");
    assert!(!requests.is_empty(), "{stderr}");
    for (line, kind, body) in requests.iter() {
        assert!(line.starts_with("POST /v1/traces "), "{line}");
        assert_eq!(kind, "application/x-protobuf");
        // The demo's applicants never travel in a span.
        for personal in ["张三", "11010519491231002X", "王五"] {
            assert!(!body.windows(personal.len()).any(|w| w == personal.as_bytes()), "{personal} sent");
        }
    }
}

#[test]
fn without_otel_variables_the_demo_exports_nothing() {
    let (stderr, status) = demo("off", None);
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains("OpenTelemetry"), "{stderr}");
}
