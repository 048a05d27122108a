//! The OpenAPI document a platform generates its client from: valid OpenAPI 3.1 whose every
//! reference resolves, every path parameter is declared and every operation answers a typed
//! body; and the real API, driven on a real socket through a joint case (deploy, submissions
//! accepted and refused, 补正, 转办, parallel branches, a rating, warnings, the queue, the feed
//! and its SSE twin, the stall figures, a timeline) and through refusals, answers exactly what
//! the document declares: every body validates against the schema declared for its operation
//! and status, with objects closed (a field the schema does not name fails), and every status
//! is declared. Schemathesis-style positive tests, in Rust.

// The engine's test support: an engine on a fresh SQLite file with a flow deployed.
#[path = "../../engine/tests/support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use server::{create_token, Role};

const FLOW: &str = r#"
department samr "市场监督管理局"
department psb  "公安局"
department tax  "税务局"
department hrss "人力资源和社会保障局"

schema applicant {
  name      string pii(name)
  id_number string pii(id)
  age       int
  employees int
}

item registration "企业设立登记" {
  department     samr
  handling       promised
  promised_limit 1 workday
}

item seal "印章刻制备案" {
  department     psb
  handling       promised
  promised_limit 2 workdays
  supplement     pauses_clock
  materials {
    seal_form "印章刻制申请表"
  }
}

item tax_setup "新办纳税人套餐" {
  department     tax
  handling       promised
  promised_limit 2 workdays
}

item insurance "社会保险登记" {
  department hrss
  handling   immediate
  eligible   applicant.age >= 18 else "参保登记须由成年人办理"
}

process p "开办企业一件事" {
  window samr
  sla    5 workdays
  flow   { registration -> parallel { seal, tax_setup } -> if applicant.employees > 0 { insurance } }
  warn   red at overdue
}

process q "企业设立登记" {
  window samr
  sla    1 workday
  flow   { registration }
}
"#;

/// The document, and what the test has seen of it: `(method, path template, status)`.
struct Contract {
    doc: Value,
    seen: Mutex<BTreeSet<(String, String, u16)>>,
}

impl Contract {
    fn new(doc: Value) -> Contract {
        Contract { doc, seen: Mutex::new(BTreeSet::new()) }
    }

    /// The path template of the document that a concrete path (without its query) matches.
    fn template(&self, path: &str) -> String {
        let path = path.split('?').next().unwrap_or(path);
        let wanted: Vec<&str> = path.split('/').collect();
        let paths = self.doc["paths"].as_object().expect("paths");
        paths
            .keys()
            .find(|template| {
                let parts: Vec<&str> = template.split('/').collect();
                parts.len() == wanted.len()
                    && parts.iter().zip(&wanted).all(|(t, w)| (t.starts_with('{') && t.ends_with('}')) || t == w)
            })
            .unwrap_or_else(|| panic!("{path} is not in the document"))
            .clone()
    }

    fn operation(&self, method: &Method, template: &str) -> &Value {
        let operation = &self.doc["paths"][template][method.as_str().to_lowercase()];
        assert!(operation.is_object(), "{method} {template} is not in the document");
        operation
    }

    /// A validator for `schema` (a piece of the document) with the document's components
    /// beside it, so that its `#/components/schemas/…` references resolve, and every object
    /// closed (see [`close`]).
    fn validator(&self, schema: &Value) -> jsonschema::Validator {
        let mut components = self.doc["components"].clone();
        let mut open = serde_json::Map::new();
        if let Some(schemas) = components["schemas"].as_object_mut() {
            for (name, schema) in schemas.iter_mut() {
                let mut part = schema.clone();
                close(&mut part, false);
                open.insert(name.clone(), part);
                close(schema, true);
            }
        }
        components["open"] = Value::Object(open);
        let mut schema = schema.clone();
        close(&mut schema, true);
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "allOf": [schema],
            "components": components,
        });
        jsonschema::draft202012::new(&root).unwrap_or_else(|e| panic!("not a JSON Schema: {e}\n{root:#}"))
    }

    /// Checks a request body against the operation's declared request schema.
    fn check_request(&self, method: &Method, path: &str, body: &Value) {
        let template = self.template(path);
        let schema = &self.operation(method, &template)["requestBody"]["content"]["application/json"]["schema"];
        assert!(schema.is_object(), "{method} {template} declares no JSON body");
        let validator = self.validator(schema);
        let errors = violations(&validator, body);
        assert!(errors.is_empty(), "request of {method} {template} does not conform: {errors:#?}\n{body:#}");
    }

    /// Checks an answer: its status is declared for the operation, its content type is the
    /// declared one, and its body validates against the declared schema.
    fn check_answer(&self, method: &Method, path: &str, status: StatusCode, content_type: &str, body: &Value) {
        let template = self.template(path);
        let response = &self.operation(method, &template)["responses"][status.as_str()];
        assert!(response.is_object(), "{method} {path} answered {status}, which the document does not declare: {body}");
        let content = response["content"].as_object().expect("the answer has declared content");
        let declared = content_type.split(';').next().unwrap_or("").trim();
        let schema = &content.get(declared).unwrap_or_else(|| {
            panic!("{method} {path} answered {status} as {declared}, declared: {:?}", content.keys())
        })["schema"];
        let validator = self.validator(schema);
        let errors = violations(&validator, body);
        assert!(errors.is_empty(), "{method} {path} {status} does not conform: {errors:#?}\n{body:#}");
        self.seen.lock().expect("lock").insert((method.to_string(), template, status.as_u16()));
    }

    /// Checks one SSE frame's data against `FeedItem`, the schema the stream's description names.
    fn check_stream_item(&self, data: &Value) {
        let validator = self.validator(&json!({"$ref": "#/components/schemas/FeedItem"}));
        let errors = violations(&validator, data);
        assert!(errors.is_empty(), "an SSE item does not conform: {errors:#?}\n{data:#}");
    }
}

/// Forbids properties a schema does not name: `unevaluatedProperties: false` on every object
/// with `properties` and on every `allOf` (which sees the properties of all its parts, through
/// `$ref` and `oneOf`). The parts of an `allOf` (`#[serde(flatten)]`) stay open, or they would
/// refuse the properties beside them: a reference from one goes to the component's open copy,
/// `#/components/open/…`, whose nested objects are closed all the same.
fn close(schema: &mut Value, closable: bool) {
    let Value::Object(map) = schema else { return };
    if !closable {
        if let Some(Value::String(reference)) = map.get_mut("$ref") {
            if let Some(name) = reference.strip_prefix("#/components/schemas/") {
                *reference = format!("#/components/open/{name}");
            }
        }
    }
    if closable
        && (map.contains_key("properties") || map.contains_key("allOf"))
        && !map.contains_key("additionalProperties")
    {
        map.insert("unevaluatedProperties".into(), Value::Bool(false));
    }
    for (key, child) in map.iter_mut() {
        match key.as_str() {
            "allOf" => child.as_array_mut().into_iter().flatten().for_each(|c| close(c, false)),
            // The variants of an enum are open where the enum is a part of an `allOf`.
            "oneOf" | "anyOf" => child.as_array_mut().into_iter().flatten().for_each(|c| close(c, closable)),
            "properties" => child.as_object_mut().into_iter().flat_map(|m| m.values_mut()).for_each(|c| close(c, true)),
            "items" | "additionalProperties" => close(child, true),
            "prefixItems" => child.as_array_mut().into_iter().flatten().for_each(|c| close(c, true)),
            _ => {}
        }
    }
}

struct Api {
    base: String,
    client: Client,
    contract: Arc<Contract>,
    tokens: BTreeMap<&'static str, String>,
}

impl Api {
    /// Calls the API as `who`, checking the request body and the answer against the document.
    async fn call(&self, who: &str, method: Method, path: &str, body: Option<&Value>) -> (StatusCode, Value) {
        let mut request =
            self.client.request(method.clone(), format!("{}{path}", self.base)).bearer_auth(&self.tokens[who]);
        if let Some(body) = body {
            self.contract.check_request(&method, path, body);
            request = request.json(body);
        }
        let response = request.send().await.expect("sends");
        let status = response.status();
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let body: Value = response.json().await.expect("a JSON answer");
        self.contract.check_answer(&method, path, status, &content_type, &body);
        (status, body)
    }

    async fn get(&self, who: &str, path: &str) -> Value {
        let (status, body) = self.call(who, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    async fn act(&self, who: &str, case: &str, command: Value) -> Value {
        let (status, body) = self.call(who, Method::POST, &format!("/cases/{case}/commands"), Some(&command)).await;
        assert_eq!(status, StatusCode::OK, "{command}: {body}");
        body
    }

    async fn complete(&self, who: &str, case: &str, item: &str, steps: &[&str]) -> Value {
        let mut state = Value::Null;
        for step in steps {
            state = self.act(who, case, json!({"command": "complete", "item": item, "step": step})).await;
        }
        state
    }
}

fn compiled(process: &str) -> Value {
    let mut loader = dsl::MemoryLoader::default();
    let workspace = dsl::Workspace::single("flow.flow", FLOW, &mut loader);
    let analysis = dsl::check(&workspace);
    assert!(analysis.diagnostics.is_empty(), "{:#?}", analysis.diagnostics);
    serde_json::to_value(dsl::compile(&analysis.program, process).expect("compiles")).expect("json")
}

/// The API on a real socket, over an engine the test keeps (to tick) and its clock.
struct Running {
    engine: Arc<engine::Engine<engine::AnyStore>>,
    clock: Arc<engine::ManualClock>,
    /// The database lives as long as the test (the schema is the same on both backends: SQLite
    /// is enough here).
    _db: Arc<support::Database>,
}

async fn start(name: &str) -> (Api, Running) {
    // Wed 2026-09-30, 09:00 Beijing, the eve of National Day.
    let support::Setup { engine, clock, db, .. } =
        support::setup(support::Backend::Sqlite, name, FLOW, "p", "2026-09-30T01:00:00Z").await;
    let engine = Arc::new(engine);
    let store = engine.store();
    let mut tokens = BTreeMap::new();
    for (who, role) in [
        ("admin", Role::Admin),
        ("platform", Role::Platform),
        ("supervisor", Role::Supervisor),
        ("samr", Role::Officer { department: "samr".into(), officer: None }),
        ("psb", Role::Officer { department: "psb".into(), officer: None }),
        ("psb_wang", Role::Officer { department: "psb".into(), officer: Some("wang".into()) }),
        ("tax", Role::Officer { department: "tax".into(), officer: None }),
        ("hrss", Role::Officer { department: "hrss".into(), officer: None }),
    ] {
        tokens.insert(who, create_token(store, &role).await.expect("token"));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(server::serve_router(listener, server::router(Arc::clone(&engine))));
    let client = Client::new();
    let doc: Value = client
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .expect("sends")
        .json()
        .await
        .expect("the document is JSON");
    (Api { base, client, contract: Arc::new(Contract::new(doc)), tokens }, Running { engine, clock, _db: db })
}

/// Every `$ref` in a value.
fn references(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                found.push(reference.clone());
            }
            map.values().for_each(|v| references(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, found)),
        _ => {}
    }
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

#[tokio::test]
async fn the_document_is_valid_openapi_with_every_body_typed() {
    let (api, _setup) = start("openapi-document").await;
    let doc = &api.contract.doc;
    assert_eq!(doc["openapi"], "3.1.0");
    // `ONETRIP_OPENAPI_OUT=FILE` keeps a copy, for an outside validator or a client generator.
    if let Ok(out) = std::env::var("ONETRIP_OPENAPI_OUT") {
        std::fs::write(out, serde_json::to_string_pretty(doc).expect("json")).expect("writes the document");
    }

    // It reads back as an OpenAPI document, and writes back the same.
    let parsed: utoipa::openapi::OpenApi = serde_json::from_value(doc.clone()).expect("an OpenAPI document");
    assert_eq!(serde_json::to_value(&parsed).expect("writes"), *doc, "nothing lost reading it back");
    assert_eq!(*doc, serde_json::to_value(server::openapi_document()).expect("json"), "served as built");

    // Every reference resolves to a component.
    let mut found = Vec::new();
    references(doc, &mut found);
    assert!(found.len() > 50, "references: {found:?}");
    for reference in &found {
        let pointer = reference.strip_prefix('#').unwrap_or_else(|| panic!("{reference} points outside the document"));
        assert!(reference.starts_with("#/components/schemas/"), "{reference}");
        assert!(doc.pointer(pointer).is_some_and(Value::is_object), "{reference} resolves to nothing");
    }

    // Every component is a JSON Schema (2020-12, OpenAPI 3.1's dialect).
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for name in [
        "ApiError",
        "Deployed",
        "Submission",
        "Submitted",
        "Command",
        "CaseState",
        "TaskRecord",
        "Event",
        "EventKind",
        "FeedItem",
        "FeedPage",
        "QueuedTask",
        "Explanation",
        "Stalls",
    ] {
        assert!(schemas.contains_key(name), "{name} is not a component");
    }
    for (name, schema) in schemas {
        jsonschema::meta::validate(schema).unwrap_or_else(|e| panic!("{name} is not a JSON Schema: {e}"));
        api.contract.validator(&json!({"$ref": format!("#/components/schemas/{name}")}));
    }

    let mut operation_ids = BTreeSet::new();
    let paths = doc["paths"].as_object().expect("paths");
    assert_eq!(paths.len(), 12, "{:?}", paths.keys());
    for (template, item) in paths {
        let in_template: BTreeSet<String> = template
            .split('/')
            .filter_map(|part| part.strip_prefix('{').and_then(|p| p.strip_suffix('}')))
            .map(str::to_string)
            .collect();
        for (method, operation) in item.as_object().expect("a path item") {
            assert!(METHODS.contains(&method.as_str()), "{method} {template}");
            let what = format!("{} {template}", method.to_uppercase());
            assert!(
                operation_ids.insert(operation["operationId"].as_str().expect("an operation id").to_string()),
                "{what}: operation ids are unique"
            );
            // Path parameters: every one in the template declared, required, typed; no other.
            let parameters = operation["parameters"].as_array().cloned().unwrap_or_default();
            let declared: BTreeSet<String> = parameters
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| {
                    assert_eq!(p["required"], true, "{what}: path parameter {p}");
                    assert!(p["schema"]["type"].is_string(), "{what}: path parameter {p}");
                    p["name"].as_str().expect("a name").to_string()
                })
                .collect();
            assert_eq!(declared, in_template, "{what}: path parameters");
            for parameter in &parameters {
                assert!(["path", "query", "header"].contains(&parameter["in"].as_str().unwrap_or("")), "{parameter}");
                assert!(parameter["schema"].is_object(), "{what}: {parameter} is untyped");
            }
            // Answers: at least one success, every answer with a description and a typed body.
            let responses = operation["responses"].as_object().expect("responses");
            assert!(responses.keys().any(|s| s.starts_with('2')), "{what} has no success answer");
            for (status, response) in responses {
                assert!(response["description"].as_str().is_some_and(|d| !d.is_empty()), "{what} {status}");
                let content = response["content"].as_object().unwrap_or_else(|| panic!("{what} {status} has no body"));
                for (media, body) in content {
                    assert!(typed(&body["schema"]), "{what} {status} {media}: untyped {}", body["schema"]);
                    if status.starts_with('4') || status.starts_with('5') {
                        assert_eq!(body["schema"]["$ref"], "#/components/schemas/ApiError", "{what} {status}");
                    }
                }
            }
            // Request bodies typed, but for the compiled flow, which is described as such.
            if let Some(request) = operation.get("requestBody") {
                let schema = &request["content"]["application/json"]["schema"];
                if what == "POST /flows" {
                    assert_eq!(schema["type"], "object");
                    assert!(request["description"].as_str().unwrap_or("").contains("compiler's output"), "{request}");
                } else {
                    assert!(typed(schema), "{what}: untyped request {schema}");
                }
            }
            // Every example validates against its schema.
            let mut examples = Vec::new();
            if let Some(content) = operation["requestBody"]["content"].as_object() {
                for body in content.values() {
                    let validator = api.contract.validator(&body["schema"]);
                    examples.extend(body.get("example").map(|e| (violations(&validator, e), e.clone())));
                    for example in body["examples"].as_object().into_iter().flat_map(|e| e.values()) {
                        examples.push((violations(&validator, &example["value"]), example["value"].clone()));
                    }
                }
            }
            for (errors, example) in examples {
                assert!(errors.is_empty(), "{what}: an example does not conform: {errors:?}\n{example:#}");
            }
        }
    }
    for (what, count) in [("POST /cases", 1), ("POST /cases/{id}/commands", 4)] {
        let (method, template) = what.split_once(' ').expect("method and path");
        let body = &doc["paths"][template][method.to_lowercase()]["requestBody"]["content"]["application/json"];
        let examples = body.get("example").map_or(0, |_| 1) + body["examples"].as_object().map_or(0, |e| e.len());
        assert_eq!(examples, count, "{what}: {body}");
    }
    // The bearer token, for clients that generate their authentication.
    assert_eq!(doc["components"]["securitySchemes"]["token"]["scheme"], "bearer");
}

/// Why a value fails a validator: the innermost errors, each with where it is in the value and
/// in the schema.
fn violations(validator: &jsonschema::Validator, value: &Value) -> Vec<String> {
    let evaluation = validator.evaluate(value);
    evaluation.iter_errors().map(|e| format!("{e} (schema {})", e.schema_location)).collect()
}

/// A schema that says more than "an object" or "anything".
fn typed(schema: &Value) -> bool {
    match schema {
        Value::Object(map) if map.contains_key("$ref") => true,
        Value::Object(map) if map.get("type") == Some(&json!("array")) => typed(&map["items"]),
        Value::Object(map) if map.get("type") == Some(&json!("string")) => true,
        Value::Object(map) => map.contains_key("properties") || map.contains_key("oneOf") || map.contains_key("allOf"),
        _ => false,
    }
}

#[tokio::test]
async fn every_answer_conforms_to_the_schema_the_document_declares() {
    let (api, setup) = start("openapi-answers").await;

    // Deploy: the flow the setup deployed is there; another process is new.
    let (status, deployed) = api.call("admin", Method::POST, "/flows", Some(&compiled("p"))).await;
    assert_eq!((status, deployed["new"].as_bool()), (StatusCode::OK, Some(false)), "{deployed}");
    let (status, deployed) = api.call("admin", Method::POST, "/flows", Some(&compiled("q"))).await;
    assert_eq!((status, deployed["new"].as_bool()), (StatusCode::OK, Some(true)), "{deployed}");

    // Submissions: accepted (with staff, so the insurance branch runs), and refused.
    let applicant = |age: i64, employees: i64| {
        json!({"flow": "p", "data": {"applicant": {"name": "陈思远", "id_number": "330106199003070022",
            "age": age, "employees": employees}}, "materials": ["seal_form"], "licences": []})
    };
    let (status, accepted) = api.call("platform", Method::POST, "/cases", Some(&applicant(36, 3))).await;
    assert_eq!((status, accepted["outcome"].as_str()), (StatusCode::OK, Some("accepted")), "{accepted}");
    let case = accepted["case"]["id"].as_str().expect("an id").to_string();
    assert!(accepted["case"]["tasks"][0]["node"].as_u64().is_some(), "tasks are records: {accepted}");
    assert_eq!(accepted["case"]["tasks"][0]["item"], "registration");
    let (status, refused) = api.call("platform", Method::POST, "/cases", Some(&applicant(17, 3))).await;
    assert_eq!((status, refused["outcome"].as_str()), (StatusCode::OK, Some("refused")), "{refused}");
    assert_eq!(refused["reasons"][0]["message"], "参保登记须由成年人办理");
    // The 一次告知 of the same applicants: eligible, and refused with the rule's message.
    let (status, notice) = api.call("platform", Method::POST, "/notice", Some(&applicant(36, 3))).await;
    assert_eq!((status, notice["eligible"].as_bool()), (StatusCode::OK, Some(true)), "{notice}");
    let (status, notice) = api.call("platform", Method::POST, "/notice", Some(&applicant(17, 3))).await;
    assert_eq!((status, notice["refusals"][0].as_str()), (StatusCode::OK, Some("参保登记须由成年人办理")), "{notice}");
    let (status, other) = api.call("platform", Method::POST, "/cases", Some(&applicant(40, 0))).await;
    assert_eq!(status, StatusCode::OK, "{other}");
    let late = other["case"]["id"].as_str().expect("an id").to_string();

    // The joint case: registration, then seal and tax in parallel.
    let state = api.complete("samr", &case, "registration", &["accept", "review", "decide", "deliver"]).await;
    let open: Vec<&str> = state["tasks"].as_array().expect("tasks").iter().filter_map(|t| t["item"].as_str()).collect();
    assert_eq!(open, ["seal", "tax_setup"]);
    let queue = api.get("psb", "/departments/psb/tasks").await;
    assert_eq!(queue[0]["case_id"], case.as_str());
    // 补正 on the seal: the case waits, its clocks stand still.
    setup.clock.set(support::at("2026-10-08T02:00:00Z"));
    let held = api
        .act(
            "psb",
            &case,
            json!({"command": "request_supplement", "item": "seal", "step": "accept", "materials": ["seal_form"]}),
        )
        .await;
    assert_eq!(held["status"], "awaiting_supplement");
    assert!(held["supplement"].is_array() && held["paused"].is_array(), "{held}");
    let state = api.complete("tax", &case, "tax_setup", &["accept", "review", "decide", "deliver"]).await;
    assert_eq!(state["joins"].as_array().map(Vec::len), Some(1), "the tax branch waits at the join: {state}");
    setup.clock.set(support::at("2026-10-12T02:00:00Z"));
    api.act("platform", &case, json!({"command": "supplement_received"})).await;
    // 转办 to officer wang, who alone completes the seal.
    let handed = api
        .act(
            "psb",
            &case,
            json!({"command": "transfer", "item": "seal", "step": "accept", "to": "wang", "reason": "熟悉该类企业"}),
        )
        .await;
    assert_eq!(handed["tasks"][0]["assignee"], "wang");
    let (status, refusal) = api
        .call(
            "psb",
            Method::POST,
            &format!("/cases/{case}/commands"),
            Some(&json!({"command": "complete", "item": "seal", "step": "accept"})),
        )
        .await;
    assert_eq!((status, refusal["reason"].as_str()), (StatusCode::CONFLICT, Some("assigned_to_other")));
    api.complete("psb_wang", &case, "seal", &["accept"]).await;
    api.complete("psb", &case, "seal", &["review", "decide", "deliver"]).await;
    let done = api.complete("hrss", &case, "insurance", &["accept", "decide"]).await;
    assert_eq!(done["status"], "completed", "{done}");
    let rated = api.act("platform", &case, json!({"command": "rate", "score": 5})).await;
    assert_eq!(rated["rating"], 5);

    // A month on, the other case is late: the tick raises its warnings.
    setup.clock.set(support::at("2026-11-02T02:00:00Z"));
    setup.engine.tick().await.expect("ticks");
    let warned = api.get("supervisor", &format!("/cases/{late}")).await;
    assert_eq!(warned["deadlines"]["registration"]["raised"], json!(["red"]), "{warned}");

    for id in [&case, &late] {
        let history = api.get("supervisor", &format!("/cases/{id}/history")).await;
        assert!(history.as_array().is_some_and(|h| h.len() > 3), "{history}");
        api.get("samr", &format!("/cases/{id}")).await;
        api.get("supervisor", &format!("/cases/{id}/timeline")).await;
    }
    let history = api.get("platform", &format!("/cases/{case}/history")).await;
    let kinds: BTreeSet<&str> = history.as_array().expect("events").iter().filter_map(|e| e["type"].as_str()).collect();
    for kind in ["submitted", "task_opened", "transferred", "supplement_requested", "clock_paused", "clock_resumed"] {
        assert!(kinds.contains(kind), "{kind} in {kinds:?}");
    }
    for kind in ["join_arrived", "joined", "branch_taken", "deadline_set", "completed", "rated", "task_completed"] {
        assert!(kinds.contains(kind), "{kind} in {kinds:?}");
    }

    // The feed, in pages and as Server-Sent Events.
    let page = api.get("supervisor", "/events?after=0&limit=1000").await;
    let count = page["events"].as_array().map_or(0, Vec::len);
    assert!(count > 30, "{page}");
    let more = api.get("platform", &format!("/events?after={}&wait=0", page["next"])).await;
    assert_eq!(more["events"], json!([]));
    let mut stream = api
        .client
        .get(format!("{}/events/stream?after=0", api.base))
        .bearer_auth(&api.tokens["supervisor"])
        .send()
        .await
        .expect("connects");
    assert_eq!(stream.status(), StatusCode::OK);
    let declared = &api.contract.doc["paths"]["/events/stream"]["get"]["responses"]["200"]["content"];
    assert!(declared["text/event-stream"].is_object(), "{declared}");
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let (mut text, mut items) = (String::new(), 0);
    while items < count {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .expect("an event within 10 s")
            .expect("reads")
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let frame: String = text.drain(..end + 2).collect();
            if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data:")) {
                api.contract.check_stream_item(&serde_json::from_str(data.trim()).expect("json data"));
                items += 1;
            }
        }
    }
    api.contract.seen.lock().expect("lock").insert(("GET".into(), "/events/stream".into(), 200));

    // The supervisor's figures.
    let stalls = api.get("supervisor", "/stalls").await;
    assert!(stalls["warnings"].is_object(), "{stalls}");
    api.get("supervisor", "/stalls?process=p&limit=5").await;
    api.get("supervisor", "/stalls/states?department=psb").await;

    // Refusals answer the declared errors.
    for (who, method, path, body, status) in [
        ("samr", Method::POST, "/flows".to_string(), Some(compiled("q")), StatusCode::FORBIDDEN),
        ("platform", Method::GET, "/cases/C-none".to_string(), None, StatusCode::NOT_FOUND),
        ("supervisor", Method::GET, "/stalls?limit=lots".to_string(), None, StatusCode::BAD_REQUEST),
        ("samr", Method::GET, "/events".to_string(), None, StatusCode::FORBIDDEN),
        ("psb", Method::GET, "/departments/samr/tasks".to_string(), None, StatusCode::FORBIDDEN),
        ("samr", Method::GET, format!("/cases/{case}/timeline"), None, StatusCode::FORBIDDEN),
        ("tax", Method::GET, format!("/cases/{late}/history"), None, StatusCode::FORBIDDEN),
        (
            "samr",
            Method::POST,
            format!("/cases/{case}/commands"),
            Some(json!({"command": "complete", "item": "registration", "step": "accept"})),
            StatusCode::CONFLICT,
        ),
        (
            "platform",
            Method::POST,
            "/cases".to_string(),
            Some(json!({"flow": "p", "data": {"applicant": {"name": "张三", "age": "thirty"}}})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "platform",
            Method::POST,
            "/cases".to_string(),
            Some(json!({"flow": "nope", "data": {}})),
            StatusCode::NOT_FOUND,
        ),
        ("platform", Method::POST, "/notice".to_string(), Some(json!({"flow": "nope"})), StatusCode::NOT_FOUND),
        (
            "platform",
            Method::POST,
            "/notice".to_string(),
            Some(json!({"flow": "p", "data": {"applicant": {"age": "thirty"}}})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("samr", Method::POST, "/notice".to_string(), Some(json!({"flow": "p"})), StatusCode::FORBIDDEN),
    ] {
        let (got, answer) = api.call(who, method.clone(), &path, body.as_ref()).await;
        assert_eq!(got, status, "{method} {path}: {answer}");
    }
    let response = api.client.get(format!("{}/cases/{case}", api.base)).send().await.expect("sends");
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    api.contract.check_answer(&Method::GET, &format!("/cases/{case}"), status, "application/json", &body);
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Every operation of the document was answered with success at least once.
    let seen = api.contract.seen.lock().expect("lock").clone();
    for (template, item) in api.contract.doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            let success = seen.iter().any(|(m, t, s)| m.eq_ignore_ascii_case(method) && t == template && *s < 300);
            assert!(success, "{method} {template} was never answered with success");
        }
    }
}
