//! The HTTP API on a real socket, driven by a real HTTP client: the happy calls, and bad input
//! of every kind answered with a clear 4xx and a stable code, with nothing written.

// The engine's test support: an engine on a fresh database (SQLite, PostgreSQL) with a flow deployed.
#[path = "../../engine/tests/support/mod.rs"]
#[macro_use]
mod support;

use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use server::{create_token, Role};
use support::Backend;

const FLOW: &str = r#"
department samr "市场监督管理局"
department psb  "公安局"
schema applicant { name string pii(name)  age int }
item registration "企业设立登记" {
  department     samr
  handling       promised
  promised_limit 1 workday
  eligible       applicant.age >= 18 else "申请人须年满18周岁"
}
item seal "印章刻制备案" {
  department psb
  handling   immediate
}
process p "联办" {
  window samr
  sla    3 workdays
  flow   { registration -> seal }
}
"#;

struct Api {
    base: String,
    client: Client,
    admin: String,
    platform: String,
    samr: String,
    psb: String,
    supervisor: String,
    /// An officer of samr known by name: tasks handed to `li` (转办) are theirs alone.
    samr_li: String,
    /// The database, kept while the test runs.
    _db: std::sync::Arc<support::Database>,
}

impl Api {
    async fn post(&self, token: &str, path: &str, body: &Value) -> (StatusCode, Value) {
        self.post_with(token, path, None, body).await
    }

    async fn post_with(
        &self,
        token: &str,
        path: &str,
        header: Option<(&str, String)>,
        body: &Value,
    ) -> (StatusCode, Value) {
        let mut request = self.client.post(format!("{}{path}", self.base)).bearer_auth(token).json(body);
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        let response = request.send().await.expect("sends");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        let response = self.client.get(format!("{}{path}", self.base)).bearer_auth(token).send().await.expect("sends");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn submit(&self) -> String {
        let (status, body) = self
            .post(&self.platform, "/cases", &json!({"flow": "p", "data": {"applicant": {"name": "张三", "age": 30}}}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["case"]["id"].as_str().expect("case id").to_string()
    }

    async fn version(&self, case: &str) -> u64 {
        self.get(&self.supervisor, &format!("/cases/{case}")).await.1["version"].as_u64().expect("version")
    }
}

async fn start(backend: Backend, name: &str) -> Api {
    let setup = support::setup(backend, name, FLOW, "p", "2026-09-30T01:00:00Z").await;
    let store = setup.engine.store();
    let admin = create_token(store, &Role::Admin).await.expect("token");
    let platform = create_token(store, &Role::Platform).await.expect("token");
    let samr = create_token(store, &Role::Officer { department: "samr".into(), officer: None }).await.expect("token");
    let psb = create_token(store, &Role::Officer { department: "psb".into(), officer: None }).await.expect("token");
    let supervisor = create_token(store, &Role::Supervisor).await.expect("token");
    let samr_li = create_token(store, &Role::Officer { department: "samr".into(), officer: Some("li".into()) })
        .await
        .expect("token");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(server::serve(setup.engine, listener, Duration::from_secs(60)));
    Api { base, client: Client::new(), admin, platform, samr, psb, supervisor, samr_li, _db: setup.db }
}

async fn the_api_runs_a_case_and_serves_its_openapi_document(backend: Backend) {
    let api = start(backend, "http-happy").await;
    let (status, doc) = api.get(&api.supervisor, "/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["paths"]["/cases/{id}/commands"]["post"].is_object(), "{doc}");

    let case = api.submit().await;
    let (status, queue) = api.get(&api.samr, "/departments/samr/tasks").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(queue.as_array().map(Vec::len), Some(1));
    for step in ["accept", "review", "decide", "deliver"] {
        let (status, body) = api
            .post(
                &api.samr,
                &format!("/cases/{case}/commands"),
                &json!({"command": "complete", "item": "registration", "step": step}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{step}: {body}");
    }
    let (_, state) = api.get(&api.psb, &format!("/cases/{case}")).await;
    assert_eq!(state["tasks"][0]["department"], "psb");
    let (status, events) = api.get(&api.supervisor, "/events?after=0").await;
    assert_eq!(status, StatusCode::OK);
    let positions: Vec<i64> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["position"].as_i64().expect("position"))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "in order");
    let (_, more) = api.get(&api.supervisor, &format!("/events?after={}", events["next"])).await;
    assert_eq!(more["events"].as_array().map(Vec::len), Some(0), "nothing is repeated after the cursor");

    let (status, refused) = api
        .post(&api.platform, "/cases", &json!({"flow": "p", "data": {"applicant": {"name": "李四", "age": 16}}}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(refused["outcome"], "refused");
    assert_eq!(refused["reasons"][0]["failing"][0]["source"], "applicant.age >= 18");
}

async fn bad_requests_get_a_clear_4xx_with_a_code_and_write_nothing(backend: Backend) {
    let api = start(backend, "http-bad").await;
    let case = api.submit().await;
    let before = api.version(&case).await;
    let commands = format!("{}/cases/{case}/commands", api.base);

    // Malformed JSON.
    let response = api
        .client
        .post(&commands)
        .bearer_auth(&api.samr)
        .header("content-type", "application/json")
        .body("{\"command\": ")
        .send()
        .await
        .expect("sends");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.json::<Value>().await.expect("json")["code"], "malformed_json");

    // Wrong types.
    let (status, body) =
        api.post(&api.samr, &format!("/cases/{case}/commands"), &json!({"command": "complete", "item": 5})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_request")));
    let (status, body) = api
        .post(&api.platform, "/cases", &json!({"flow": "p", "data": {"applicant": {"name": "张三", "age": "thirty"}}}))
        .await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_data")));
    assert!(!body["message"].as_str().unwrap_or_default().contains("thirty"), "no submitted values in errors");

    // Unknown case.
    let (status, body) = api
        .post(
            &api.samr,
            "/cases/C-none/commands",
            &json!({"command": "complete", "item": "registration", "step": "accept"}),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));

    // Another department's token.
    let (status, body) = api
        .post(
            &api.psb,
            &format!("/cases/{case}/commands"),
            &json!({"command": "complete", "item": "registration", "step": "accept"}),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")));
    assert_eq!(body["reason"], "not_your_task");
    let (status, _) = api.get(&api.psb, "/departments/samr/tasks").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // No token, and a wrong one.
    let response = api.client.get(format!("{}/cases/{case}", api.base)).send().await.expect("sends");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = api.get("ot_not_a_token", &format!("/cases/{case}")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A command not allowed now.
    let (status, body) = api
        .post(
            &api.samr,
            &format!("/cases/{case}/commands"),
            &json!({"command": "complete", "item": "registration", "step": "decide"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str(), body["reason"].as_str()),
        (StatusCode::CONFLICT, Some("command_not_allowed"), Some("no_such_task"))
    );

    // An oversized body.
    let huge = json!({"command": "reject", "item": "registration", "step": "accept", "reason": "x".repeat(2 << 20)});
    let (status, body) = api.post(&api.samr, &format!("/cases/{case}/commands"), &huge).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")));

    // An idempotency key replayed with a different body.
    let path = format!("/cases/{case}/commands");
    let key = ("idempotency-key", "k1".to_string());
    let accept = json!({"command": "complete", "item": "registration", "step": "accept"});
    let (status, _) = api.post_with(&api.samr, &path, Some(key.clone()), &accept).await;
    assert_eq!(status, StatusCode::OK);
    let after_first = api.version(&case).await;
    let (status, _) = api.post_with(&api.samr, &path, Some(key.clone()), &accept).await;
    assert_eq!(status, StatusCode::OK, "the same request gets the first answer");
    let other = json!({"command": "complete", "item": "registration", "step": "review"});
    let (status, body) = api.post_with(&api.samr, &path, Some(key), &other).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("idempotency_key_reused")));

    // A stale If-Match, and one that is not a version.
    let (status, body) = api.post_with(&api.samr, &path, Some(("if-match", before.to_string())), &other).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("version_conflict")));
    let (status, body) = api.post_with(&api.samr, &path, Some(("if-match", "latest".to_string())), &other).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")));

    // Only the accepted command wrote anything.
    assert_eq!(api.version(&case).await, after_first);
    assert!(after_first > before);
    let (status, _) = api.post(&api.admin, "/cases", &json!({"flow": "p", "data": {}})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an admin token does not submit cases");
}

/// 转办 over HTTP: a task handed to officer `li` can then be moved by li's token only.
async fn a_transferred_task_is_the_named_officers_alone(backend: Backend) {
    let api = start(backend, "http-transfer").await;
    let case = api.submit().await;
    let path = format!("/cases/{case}/commands");
    let transfer =
        json!({"command": "transfer", "item": "registration", "step": "accept", "to": "li", "reason": "熟悉该类企业"});
    let (status, body) = api.post(&api.samr, &path, &transfer).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["tasks"][0]["assignee"], "li");
    let accept = json!({"command": "complete", "item": "registration", "step": "accept"});
    let (status, body) = api.post(&api.samr, &path, &accept).await;
    assert_eq!((status, body["reason"].as_str()), (StatusCode::CONFLICT, Some("assigned_to_other")), "{body}");
    let (status, body) = api.post(&api.samr_li, &path, &accept).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["tasks"][0]["step"], "review");
    assert!(body["tasks"][0].get("assignee").is_none(), "the next step is the department's again: {body}");
}

/// The event stream (SSE): every event with its position as `id`, and a reconnection with
/// `Last-Event-ID` resumes right after it.
async fn the_event_stream_resumes_after_the_last_event_seen(backend: Backend) {
    let api = start(backend, "http-sse").await;
    let case = api.submit().await;
    let stream = |last: Option<i64>| {
        let mut request = api.client.get(format!("{}/events/stream", api.base)).bearer_auth(&api.supervisor);
        if let Some(last) = last {
            request = request.header("Last-Event-ID", last.to_string());
        }
        request.send()
    };
    let (status, _) = api.get(&api.samr, "/events/stream").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "officers do not follow every case");

    /// Reads SSE frames until `count` events came: their ids and data.
    async fn read(mut response: reqwest::Response, count: usize) -> Vec<(i64, Value)> {
        let mut text = String::new();
        let mut events = Vec::new();
        while events.len() < count {
            let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
                .await
                .expect("an event within 10 s")
                .expect("reads")
                .expect("the stream stays open");
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find("\n\n") {
                let frame: String = text.drain(..end + 2).collect();
                let field = |name: &str| frame.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()));
                if let (Some(id), Some(data)) = (field("id:"), field("data:")) {
                    events.push((id.parse().expect("numeric id"), serde_json::from_str(&data).expect("json data")));
                }
            }
        }
        events
    }

    let first = stream(None).await.expect("connects");
    assert_eq!(first.headers()["content-type"], "text/event-stream");
    let submitted = read(first, 3).await;
    assert_eq!(submitted[0].1["event"]["type"], "submitted");
    assert!(submitted.iter().all(|(_, data)| data["case_id"] == case.as_str()));
    let last_seen = submitted[1].0;
    let (status, _) = api
        .post(
            &api.samr,
            &format!("/cases/{case}/commands"),
            &json!({"command": "complete", "item": "registration", "step": "accept"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let resumed = read(stream(Some(last_seen)).await.expect("reconnects"), 2).await;
    assert_eq!(resumed[0].0, last_seen + 1, "nothing missed, nothing repeated");
    assert_eq!(resumed[0].1, submitted[2].1);

    let (status, body) = api.get(&api.supervisor, "/events/stream?after=x").await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")));
}

/// The stall analysis is the supervisor's: other roles are refused, a bad query is a JSON
/// error with a stable code, and the figures name cases by id only.
async fn stall_analysis_for_the_supervisor_only(backend: Backend) {
    let api = start(backend, "http-stalls").await;
    let (first, _second) = (api.submit().await, api.submit().await);
    let (status, body) = api
        .post(
            &api.samr,
            &format!("/cases/{first}/commands"),
            &json!({"command": "complete", "item": "registration", "step": "accept"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The clock stands at Wed 09-30 09:00: both cases wait since today, 0 working days.
    let (status, stalls) = api.get(&api.supervisor, "/stalls").await;
    assert_eq!(status, StatusCode::OK, "{stalls}");
    assert_eq!(stalls["today"], "2026-09-30");
    let states: Vec<(String, u64, i64)> = stalls["states"]
        .as_array()
        .expect("states")
        .iter()
        .map(|s| {
            (
                s["step"].as_str().unwrap_or("").to_string(),
                s["waiting"].as_u64().unwrap_or(0),
                s["days"]["max"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(states, [("accept".to_string(), 1, 0), ("review".to_string(), 1, 0)]);
    assert_eq!(stalls["departments"][0]["department"], "samr");
    assert_eq!(stalls["departments"][0]["handled"], 1);
    assert_eq!(stalls["processes"][0]["cases"]["open"], 2);
    assert_eq!(stalls["longest"].as_array().map(Vec::len), Some(2));
    assert!(!stalls.to_string().contains("张三"), "no personal data: {stalls}");

    let (status, states) = api.get(&api.supervisor, "/stalls/states?process=p&department=samr").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(states.as_array().map(Vec::len), Some(2));
    let (_, none) = api.get(&api.supervisor, "/stalls/states?process=nope").await;
    assert_eq!(none, json!([]));

    for (token, path, status, code) in [
        (&api.samr, "/stalls", StatusCode::FORBIDDEN, "forbidden"),
        (&api.platform, "/stalls", StatusCode::FORBIDDEN, "forbidden"),
        (&api.admin, "/stalls/states", StatusCode::FORBIDDEN, "forbidden"),
        (&"ot_wrong".to_string(), "/stalls", StatusCode::UNAUTHORIZED, "unauthorized"),
        (&api.supervisor, "/stalls?limit=lots", StatusCode::BAD_REQUEST, "invalid_request"),
        (&api.supervisor, "/stalls/states?limit=-1", StatusCode::BAD_REQUEST, "invalid_request"),
    ] {
        let (got, body) = api.get(token, path).await;
        assert_eq!((got, body["code"].as_str()), (status, Some(code)), "{path}: {body}");
    }

    let (_, doc) = api.get(&api.supervisor, "/openapi.json").await;
    assert!(doc["paths"]["/stalls"]["get"].is_object(), "{doc}");
    assert!(doc["paths"]["/stalls/states"]["get"].is_object(), "{doc}");
    assert!(doc["components"]["schemas"]["Stalls"].is_object(), "{doc}");
    assert!(doc["components"]["schemas"]["StateFigures"].is_object(), "{doc}");
    let parameters = doc["paths"]["/stalls"]["get"]["parameters"].as_array().cloned().unwrap_or_default();
    let described: Vec<_> =
        parameters.iter().map(|p| (p["name"].as_str(), p["in"].as_str(), p["required"].as_bool())).collect();
    assert_eq!(
        described,
        [
            (Some("process"), Some("query"), Some(false)),
            (Some("department"), Some("query"), Some(false)),
            (Some("item"), Some("query"), Some(false)),
            (Some("step"), Some("query"), Some(false)),
            (Some("limit"), Some("query"), Some(false))
        ]
    );
}

conformance!(
    the_api_runs_a_case_and_serves_its_openapi_document,
    bad_requests_get_a_clear_4xx_with_a_code_and_write_nothing,
    a_transferred_task_is_the_named_officers_alone,
    the_event_stream_resumes_after_the_last_event_seen,
    stall_analysis_for_the_supervisor_only,
);
