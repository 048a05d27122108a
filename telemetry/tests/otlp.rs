//! Export over the wire, to a receiver on loopback built here from the protocol's own types
//! (`opentelemetry-proto`): OTLP/HTTP with protobuf bodies (axum) and OTLP/gRPC (tonic). The
//! exporter is set up from `OTEL_*` variables and follows the feed as `onetrip serve` does.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use support::{at, first_part, second_part, setup, submit, ID_NUMBER, NAME};
use telemetry::spans::{case_span_id, item_span_id, step_span_id, trace_id};
use telemetry::{Config, Exporter};

type Received = Arc<Mutex<Vec<ExportTraceServiceRequest>>>;

/// An OTLP/HTTP receiver: decodes each body as an `ExportTraceServiceRequest`. It answers
/// 500 to the first `refuse` requests, as a collector that is broken for a while (500, unlike
/// 503, is not retried inside the OTLP client: the follower's own retry is what is tested).
async fn http_receiver(refuse: usize) -> (String, Received, Arc<Mutex<Vec<String>>>) {
    let received = Received::default();
    let content_types = Arc::new(Mutex::new(Vec::new()));
    let (sink, types) = (Arc::clone(&received), Arc::clone(&content_types));
    let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let (sink, types, refused) = (Arc::clone(&sink), Arc::clone(&types), Arc::clone(&refused));
            async move {
                if refused.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < refuse {
                    return (
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        [("content-type", "text/plain")],
                        Vec::new(),
                    );
                }
                let kind = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                types.lock().expect("lock").push(kind);
                match ExportTraceServiceRequest::decode(body) {
                    Ok(request) => {
                        sink.lock().expect("lock").push(request);
                        let answer = ExportTraceServiceResponse::default().encode_to_vec();
                        (axum::http::StatusCode::OK, [("content-type", "application/x-protobuf")], answer)
                    }
                    Err(_) => (axum::http::StatusCode::BAD_REQUEST, [("content-type", "text/plain")], Vec::new()),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), received, content_types)
}

struct Collector(Received);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.lock().expect("lock").push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// An OTLP/gRPC receiver: the collector's trace service.
async fn grpc_receiver() -> (String, Received) {
    let received = Received::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let address = listener.local_addr().expect("address");
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let service = TraceServiceServer::new(Collector(Arc::clone(&received)));
    tokio::spawn(tonic::transport::Server::builder().add_service(service).serve_with_incoming(incoming));
    (format!("http://{address}"), received)
}

fn spans(received: &Received) -> Vec<(Vec<KeyValue>, String, Span)> {
    let requests = received.lock().expect("lock");
    let mut out = Vec::new();
    for request in requests.iter() {
        for resource in &request.resource_spans {
            let attributes = resource.resource.as_ref().map(|r| r.attributes.clone()).unwrap_or_default();
            for scope in &resource.scope_spans {
                let name = scope.scope.as_ref().map(|s| s.name.clone()).unwrap_or_default();
                out.extend(scope.spans.iter().map(|s| (attributes.clone(), name.clone(), s.clone())));
            }
        }
    }
    out
}

fn string(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
        Value::StringValue(s) => Some(s.clone()),
        _ => None,
    })
}

fn int(attributes: &[KeyValue], key: &str) -> Option<i64> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
        Value::IntValue(i) => Some(*i),
        _ => None,
    })
}

fn nanos(rfc3339: &str) -> u64 {
    u64::try_from(at(rfc3339).timestamp_nanos_opt().expect("in range")).expect("after 1970")
}

/// Runs the joint case with the exporter following the feed, and checks what arrived.
async fn exports_over(protocol: &str, endpoint: String, received: Received, name: &str) {
    let setup = setup(name).await;
    let variables = BTreeMap::from([
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_string()),
        ("OTEL_SERVICE_NAME", "onetrip-otlp-test".to_string()),
        ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test".to_string()),
    ]);
    let config = Config::from_lookup(|v| variables.get(v).cloned()).expect("valid").expect("traces on");
    let exporter = Exporter::from_config(config).expect("builds");
    let follower = tokio::spawn(exporter.run(Arc::clone(&setup.engine)));
    let case = submit(&setup).await;
    first_part(&setup, &case).await;
    second_part(&setup, &case).await;
    // Bounded: the follower sends within a fraction of a second; a minute means it never will.
    let mut waited = Duration::ZERO;
    while spans(&received).len() < 18 && waited < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
    assert!(!follower.is_finished(), "the follower stopped: {:?}", follower.await);
    follower.abort();
    let spans = spans(&received);
    assert_eq!(spans.len(), 18, "every span once");

    let trace = trace_id(&case).to_bytes().to_vec();
    assert!(spans.iter().all(|(_, _, s)| s.trace_id == trace));
    let (resource, scope, _) = &spans[0];
    assert_eq!(string(resource, "service.name").as_deref(), Some("onetrip-otlp-test"));
    assert_eq!(string(resource, "deployment.environment").as_deref(), Some("test"));
    assert_eq!(scope, "onetrip");
    let by_id: BTreeMap<Vec<u8>, &Span> = spans.iter().map(|(_, _, s)| (s.span_id.clone(), s)).collect();
    assert_eq!(by_id.len(), 18);

    let root = by_id[&case_span_id(&case).to_bytes().to_vec()];
    assert!(root.parent_span_id.is_empty());
    assert_eq!(root.name, "开办企业一件事");
    assert_eq!(
        (root.start_time_unix_nano, root.end_time_unix_nano),
        (nanos("2026-09-30T01:00:00Z"), nanos("2026-10-13T02:00:00Z"))
    );
    assert_eq!(string(&root.attributes, "onetrip.outcome").as_deref(), Some("completed"));
    assert_eq!(int(&root.attributes, "onetrip.workdays.used"), Some(2));

    let seal = by_id[&item_span_id(&case, "seal").to_bytes().to_vec()];
    assert_eq!(seal.parent_span_id, case_span_id(&case).to_bytes().to_vec());
    assert_eq!(int(&seal.attributes, "onetrip.workdays.paused"), Some(3));

    let accept = by_id[&step_span_id(&case, "seal", "accept", 1).to_bytes().to_vec()];
    assert_eq!(accept.parent_span_id, item_span_id(&case, "seal").to_bytes().to_vec());
    assert_eq!(
        (accept.start_time_unix_nano, accept.end_time_unix_nano),
        (nanos("2026-09-30T02:00:00Z"), nanos("2026-10-12T03:00:00Z"))
    );
    let events: Vec<(&str, u64)> = accept.events.iter().map(|e| (e.name.as_str(), e.time_unix_nano)).collect();
    assert_eq!(
        events,
        [("request_supplement", nanos("2026-10-08T02:00:00Z")), ("supplement_received", nanos("2026-10-12T02:00:00Z"))]
    );
    let everything = format!("{spans:?}");
    assert!(!everything.contains(NAME) && !everything.contains(ID_NUMBER));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_a_collector_over_http_protobuf() {
    let (endpoint, received, content_types) = http_receiver(0).await;
    exports_over("http/protobuf", endpoint, received, "otlp-http").await;
    let types = content_types.lock().expect("lock");
    assert!(!types.is_empty() && types.iter().all(|t| t == "application/x-protobuf"), "{types:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_a_collector_over_grpc() {
    let (endpoint, received) = grpc_receiver().await;
    exports_over("grpc", endpoint, received, "otlp-grpc").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_is_down_for_a_while_gets_every_span_once_when_it_is_back() {
    // The first two tries fail: the follower keeps the batch and tries again, later.
    let (endpoint, received, _) = http_receiver(2).await;
    exports_over("http/protobuf", endpoint, received, "otlp-down").await;
}
