//! The HTTP layer of onetrip: the JSON API over an [`engine::Engine`]. The only crate that
//! knows HTTP; an embedder of `engine` compiles no web framework.
//!
//! Every request carries `Authorization: Bearer <token>`. Tokens are stored as SHA-256 digests
//! with a role: `admin` deploys flows; `platform` submits cases and acts for applicants
//! (withdraw, rate, supplements received); `officer` acts on its own department's tasks;
//! `supervisor` reads everything. Errors are JSON `{"code": …, "message": …}` with a stable
//! code; a refused request writes nothing. `Idempotency-Key` makes submissions and commands
//! safe to retry; `If-Match: <version>` refuses a command on a case that has moved on.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::OpenApi;

use engine::case::{Actor, Command, CommandError, Deadline, Level, Task, TaskRecord};
use engine::stalls::{
    DepartmentFigures, LongWait, ProcessFigures, Spread, StallFilter, Stalls, StateFigures, WarningEntry, Warnings,
};
use engine::store::{QueuedTask, Store, TokenRecord};
use engine::{CaseState, Engine, EngineError, Event, EventKind, FeedItem, Status, Submission, Submitted};

pub mod dashboard;
mod guides;

/// Largest request body accepted.
pub const MAX_BODY: usize = 1 << 20;

/// What a token may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Admin,
    Platform,
    /// An officer of a department; `officer` names them when the token was made for one.
    Officer {
        department: String,
        officer: Option<String>,
    },
    Supervisor,
}

impl Role {
    fn name(&self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Platform => "platform",
            Role::Officer { .. } => "officer",
            Role::Supervisor => "supervisor",
        }
    }
}

pub fn digest(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A new secret token: `ot_` and 160 random bits from the operating system, in hex.
pub fn random_token() -> Result<String, EngineError> {
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes)
        .map_err(|e| EngineError::Store(engine::StoreError::Database(format!("no randomness for a token: {e}"))))?;
    Ok(format!("ot_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()))
}

/// Creates a token for a role and returns it: only its digest is stored.
pub async fn create_token<S: Store>(store: &S, role: &Role) -> Result<String, EngineError> {
    let token = random_token()?;
    let (department, officer) = match role {
        Role::Officer { department, officer } => (Some(department.clone()), officer.clone()),
        _ => (None, None),
    };
    store.add_token(&digest(&token), &TokenRecord { role: role.name().to_string(), department, officer }).await?;
    Ok(token)
}

/// An error answer: a stable code and a message that names no personal data.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiError {
    /// Stable: `malformed_json`, `invalid_request`, `unauthorized`, `forbidden`, `not_found`,
    /// `version_conflict`, `idempotency_key_reused`, `command_not_allowed`, `payload_too_large`,
    /// `invalid_data`, `internal`.
    pub code: String,
    pub message: String,
    /// For `command_not_allowed`: why, as a code (`no_such_task`, `not_your_task`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

struct Failure(StatusCode, ApiError);

impl Failure {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Failure {
        Failure(status, ApiError { code: code.into(), message: message.into(), reason: None })
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

impl From<EngineError> for Failure {
    fn from(error: EngineError) -> Failure {
        let message = error.to_string();
        match error {
            EngineError::UnknownFlow(_) | EngineError::UnknownCase(_) => {
                Failure::new(StatusCode::NOT_FOUND, "not_found", message)
            }
            EngineError::VersionMismatch { .. } | EngineError::Store(engine::StoreError::Conflict { .. }) => {
                Failure::new(StatusCode::CONFLICT, "version_conflict", message)
            }
            EngineError::KeyReused => Failure::new(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused", message),
            EngineError::Facts(_) => Failure::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_data", message),
            EngineError::Command(command) => {
                let reason = serde_json::to_value(&command)
                    .ok()
                    .and_then(|v| v.get("code").and_then(|c| c.as_str()).map(str::to_string));
                let status = match command {
                    CommandError::NotYourTask { .. } | CommandError::Forbidden(_) => StatusCode::FORBIDDEN,
                    _ => StatusCode::CONFLICT,
                };
                let code = if status == StatusCode::FORBIDDEN { "forbidden" } else { "command_not_allowed" };
                Failure(status, ApiError { code: code.into(), message, reason })
            }
            EngineError::Rules(_) => Failure::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message),
            EngineError::Store(_) => {
                Failure::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the store failed; nothing was written")
            }
        }
    }
}

/// Maps axum's body errors to stable codes.
fn body<T>(json: Result<Json<T>, JsonRejection>) -> Result<T, Failure> {
    match json {
        Ok(Json(value)) => Ok(value),
        Err(JsonRejection::JsonSyntaxError(e)) => {
            Err(Failure::new(StatusCode::BAD_REQUEST, "malformed_json", e.body_text()))
        }
        Err(JsonRejection::JsonDataError(e)) => {
            Err(Failure::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", e.body_text()))
        }
        Err(JsonRejection::MissingJsonContentType(_)) => Err(Failure::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request",
            "send `Content-Type: application/json`",
        )),
        Err(JsonRejection::BytesRejection(e)) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(Failure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is over {MAX_BODY} bytes"),
        )),
        Err(other) => Err(Failure::new(StatusCode::BAD_REQUEST, "invalid_request", other.body_text())),
    }
}

type Shared<S> = Arc<Engine<S>>;

async fn role<S: Store>(engine: &Engine<S>, headers: &HeaderMap) -> Result<Role, Failure> {
    let unauthorized =
        || Failure::new(StatusCode::UNAUTHORIZED, "unauthorized", "send `Authorization: Bearer <token>`");
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(unauthorized)?;
    token_role(engine, token.trim()).await?.ok_or_else(unauthorized)
}

/// Whom a token stands for; `None` for an unknown token (or a record no role fits).
pub(crate) async fn token_role<S: Store>(engine: &Engine<S>, token: &str) -> Result<Option<Role>, EngineError> {
    let Some(record) = engine.store().token(&digest(token)).await? else { return Ok(None) };
    Ok(match (record.role.as_str(), record.department) {
        ("admin", _) => Some(Role::Admin),
        ("platform", _) => Some(Role::Platform),
        ("supervisor", _) => Some(Role::Supervisor),
        ("officer", Some(department)) => Some(Role::Officer { department, officer: record.officer }),
        _ => None,
    })
}

fn forbidden(what: &str) -> Failure {
    Failure::new(StatusCode::FORBIDDEN, "forbidden", format!("this token may not {what}"))
}

fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// Builds the router over an engine.
pub fn router<S: Store + 'static>(engine: Arc<Engine<S>>) -> Router {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/flows", post(deploy::<S>))
        .route("/cases", post(submit::<S>))
        .route("/notice", post(notice::<S>))
        .route("/cases/{id}", get(case::<S>))
        .route("/cases/{id}/commands", post(command::<S>))
        .route("/cases/{id}/history", get(history::<S>))
        .route("/departments/{department}/tasks", get(tasks::<S>))
        .route("/events", get(events::<S>))
        .route("/events/stream", get(event_stream::<S>))
        .route("/stalls", get(stalls::<S>))
        .route("/stalls/states", get(stalled_states::<S>))
        .route("/cases/{id}/timeline", get(timeline::<S>))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(Arc::clone(&engine))
        .merge(guides::routes(Arc::clone(&engine)))
        .merge(dashboard::routes(engine, None))
}

/// The answer to `POST /flows`: the flow's version (its content hash) and whether this deploy
/// added it (`false`: it was there already, and nothing changed).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Deployed {
    pub version: String,
    pub new: bool,
}

/// A page of the event feed: the events after the position asked for, oldest first, and the
/// position to ask after next (the same position when there was nothing new).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FeedPage {
    pub events: Vec<FeedItem>,
    pub next: i64,
}

/// Every request sends `Authorization: Bearer <token>`: the token's role decides what it may do.
struct BearerToken;

impl utoipa::Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("token", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        openapi.security = Some(vec![SecurityRequirement::new("token", Vec::<String>::new())]);
    }
}

/// The OpenAPI 3.1 document of the API, as `GET /openapi.json` serves it: every request body
/// and every answer typed (the compiled flow that `POST /flows` takes excepted: the compiler's
/// output, described as an object).
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

#[derive(OpenApi)]
#[openapi(
    info(title = "onetrip", description = "Government service cases: submit, act on tasks, follow events"),
    modifiers(&BearerToken),
    paths(
        deploy_doc,
        submit_doc,
        notice_doc,
        case_doc,
        command_doc,
        history_doc,
        tasks_doc,
        events_doc,
        event_stream_doc,
        stalls_doc,
        stalled_states_doc,
        timeline_doc
    ),
    components(schemas(
        ApiError,
        NoticeRequest,
        guide::notice::Notice,
        guide::Named,
        guide::MaterialLine,
        Deployed,
        Submission,
        Submitted,
        Command,
        CaseState,
        Task,
        TaskRecord,
        Deadline,
        Status,
        Level,
        Event,
        EventKind,
        FeedItem,
        FeedPage,
        QueuedTask,
        Stalls,
        StateFigures,
        LongWait,
        DepartmentFigures,
        Warnings,
        WarningEntry,
        ProcessFigures,
        Spread,
        engine::timeline::CaseTimeline,
        engine::timeline::StepSpan,
        engine::timeline::Pause,
        engine::timeline::WarningMark,
        engine::timeline::Due
    ))
)]
struct ApiDoc;

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi_document())
}

/// Deploys a compiled flow (`onetrip compile` output). Admin only. Deploying a version that is
/// there already changes nothing (`new: false`).
#[utoipa::path(post, path = "/flows",
    request_body(content = Object, description = "A compiled flow as `onetrip compile` writes it. Left an untyped \
        object here on purpose: it is the compiler's output (the state graph, items, departments, schemas and rules), \
        large and internal, and a platform never writes one by hand."),
    responses(
        (status = 200, description = "The flow's version, and whether it is new", body = Deployed),
        (status = 400, description = "`malformed_json`, or `invalid_request`: a bad query or header", body = ApiError),
        (status = 401, description = "`unauthorized`: no bearer token, or one not known", body = ApiError),
        (status = 403, description = "`forbidden`: the token's role may not do this", body = ApiError),
        (status = 413, description = "`payload_too_large`: the body is over 1 MiB", body = ApiError),
        (status = 415, description = "`invalid_request`: the body is not sent as `application/json`", body = ApiError),
        (status = 422, description = "`invalid_request`, `invalid_data` or `idempotency_key_reused`", body = ApiError)))]
#[allow(dead_code)]
fn deploy_doc() {}

async fn deploy<S: Store>(
    State(app): State<Shared<S>>,
    headers: HeaderMap,
    json: Result<Json<dsl::CompiledFlow>, JsonRejection>,
) -> Result<Json<Deployed>, Failure> {
    if role(&app, &headers).await? != Role::Admin {
        return Err(forbidden("deploy flows"));
    }
    let flow = body(json)?;
    let new = app.deploy(&flow).await?;
    Ok(Json(Deployed { version: flow.version, new }))
}

/// Submits a case for an applicant. Platform only. Answers `accepted` with the case, or
/// `refused` with the failing clauses of each eligibility rule.
#[utoipa::path(post, path = "/cases",
    request_body(content = Submission, description = "The process, the applicant's data by schema, the materials \
        handed in and the licences held", example = json!({
            "flow": "start_business",
            "data": {
                "applicant": {"name": "陈*远", "id_number": "330106********0022", "phone": "138****5678", "age": 36,
                    "region": "330106", "credit_ok": true, "is_agent": false},
                "new_company": {"name": "示例市云杉信息技术有限公司", "kind": "llc", "capital": 100.0,
                    "address": "示例市西湖区文三路100号5层501室", "region": "330106", "employees": 3,
                    "bank_reservation": true}
            },
            "materials": ["application_form", "articles", "officer_appointment", "premises_proof", "employee_list"],
            "licences": []
        })),
    params(("Idempotency-Key" = Option<String>, Header, description = "makes a retry safe")),
    responses(
        (status = 200, description = "`accepted` with the case, or `refused` with the failing clauses of each \
            eligibility rule", body = Submitted),
        (status = 400, description = "`malformed_json`, or `invalid_request`: a bad query or header", body = ApiError),
        (status = 401, description = "`unauthorized`: no bearer token, or one not known", body = ApiError),
        (status = 403, description = "`forbidden`: the token's role may not do this", body = ApiError),
        (status = 404, description = "`not_found`: no such case or flow", body = ApiError),
        (status = 409, description = "`version_conflict`, or `command_not_allowed` with a `reason`", body = ApiError),
        (status = 413, description = "`payload_too_large`: the body is over 1 MiB", body = ApiError),
        (status = 415, description = "`invalid_request`: the body is not sent as `application/json`", body = ApiError),
        (status = 422, description = "`invalid_request`, `invalid_data` or `idempotency_key_reused`", body = ApiError)))]
#[allow(dead_code)]
fn submit_doc() {}

async fn submit<S: Store>(
    State(app): State<Shared<S>>,
    headers: HeaderMap,
    json: Result<Json<Submission>, JsonRejection>,
) -> Result<Json<engine::Submitted>, Failure> {
    if role(&app, &headers).await? != Role::Platform {
        return Err(forbidden("submit cases"));
    }
    let submission = body(json)?;
    Ok(Json(app.submit(&submission, idempotency_key(&headers).as_deref()).await?))
}

/// What `POST /notice` takes: a deployed process (or item), and an applicant's data as a
/// submission gives it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"flow": "start_business", "data": {"applicant": {"age": 36, "credit_ok": true}}}))]
pub struct NoticeRequest {
    pub flow: String,
    /// The value of each schema by name, e.g. `{"applicant": {…}}`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub data: serde_json::Map<String, serde_json::Value>,
    /// Materials the applicant holds, by name, as a submission lists them.
    #[serde(default)]
    pub materials: Vec<String>,
    /// Licences the applicant holds already (their materials are not asked for).
    #[serde(default)]
    pub licences: Vec<String>,
}

/// 一次告知: for one applicant, before they apply — whether they are eligible (the messages of
/// the rules they fail), the items their case will run, and the one list of what to bring
/// (conditions decided on their data, duplicates merged, what shared data or a licence
/// supplies left out). Nothing is stored, and nothing of the data is copied into the answer.
#[utoipa::path(post, path = "/notice", request_body = NoticeRequest,
    responses(
        (status = 200, description = "The notice", body = guide::notice::Notice),
        (status = 400, description = "`malformed_json`, or `invalid_request`: a bad query or header", body = ApiError),
        (status = 401, description = "`unauthorized`: no bearer token, or one not known", body = ApiError),
        (status = 403, description = "`forbidden`: the token's role may not do this", body = ApiError),
        (status = 404, description = "`not_found`: no such flow", body = ApiError),
        (status = 413, description = "`payload_too_large`: the body is over 1 MiB", body = ApiError),
        (status = 415, description = "`invalid_request`: the body is not sent as `application/json`", body = ApiError),
        (status = 422, description = "`invalid_request`, or `invalid_data`: the data does not match the flow's \
            schemas (the message names the field, never its value)", body = ApiError)))]
#[allow(dead_code)]
fn notice_doc() {}

async fn notice<S: Store>(
    State(app): State<Shared<S>>,
    headers: HeaderMap,
    json: Result<Json<NoticeRequest>, JsonRejection>,
) -> Result<Json<guide::notice::Notice>, Failure> {
    if role(&app, &headers).await? != Role::Platform {
        return Err(forbidden("ask for notices"));
    }
    let request = body(json)?;
    let flow = app.process(&request.flow).await?;
    let facts = rules::Facts {
        data: request.data,
        materials: request.materials,
        licences: request.licences,
        today: Some(app.date()),
    };
    let notice =
        guide::notice::notice(&flow.program(), &flow.name, &facts, Arc::clone(app.calendar())).map_err(|error| {
            let message = error.to_string();
            match error {
                guide::notice::NoticeError::Unknown(_) => Failure::new(StatusCode::NOT_FOUND, "not_found", message),
                guide::notice::NoticeError::Facts(_) => {
                    Failure::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_data", message)
                }
                guide::notice::NoticeError::Rule(_) => {
                    Failure::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
                }
            }
        })?;
    Ok(Json(notice))
}

/// Reads a case (its state, tasks and clocks; never the applicant's data).
#[utoipa::path(get, path = "/cases/{id}", params(("id" = String, Path, description = "the case's id")),
    responses(
        (status = 200, description = "The case", body = CaseState),
        (status = 401, description = "`unauthorized`: no bearer token, or one not known", body = ApiError),
        (status = 403, description = "`forbidden`: the token's role may not do this", body = ApiError),
        (status = 404, description = "`not_found`: no such case or flow", body = ApiError)))]
#[allow(dead_code)]
fn case_doc() {}

async fn case<S: Store>(
    State(app): State<Shared<S>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Failure> {
    let role = role(&app, &headers).await?;
    let case = app.case(&id).await?;
    if let Role::Officer { department, .. } = &role {
        let involved = app
            .history(&id)
            .await?
            .iter()
            .any(|e| matches!(&e.kind, engine::EventKind::TaskOpened { department: d, .. } if d == department));
        if !involved {
            return Err(forbidden("read cases its department has no part in"));
        }
    }
    Ok(Json(case).into_response())
}

/// A command's body: the command and, for officers, nothing else (the token says who acts).
/// Its schema is [`Command`]'s.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct CommandBody(pub Command);

/// Carries out a command: officers on their department's tasks, the platform for the applicant.
#[utoipa::path(post, path = "/cases/{id}/commands", params(("id" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "makes a retry safe"),
        ("If-Match" = Option<u64>, Header, description = "the case version the caller saw")),
    request_body(content = Command, description = "What to do; the token says who does it",
        examples(
            ("complete" = (summary = "受理: complete the step `accept`", value = json!(
                {"command": "complete", "item": "company_registration", "step": "accept"}))),
            ("request_supplement" = (summary = "补正: every missing material at once", value = json!(
                {"command": "request_supplement", "item": "company_registration", "step": "review",
                 "materials": ["articles", "premises_proof"]}))),
            ("transfer" = (summary = "转办: hand the task to a named officer", value = json!(
                {"command": "transfer", "item": "company_registration", "step": "review", "to": "li.wei",
                 "reason": "熟悉该类企业"}))),
            ("rate" = (summary = "好差评, for the applicant", value = json!({"command": "rate", "score": 5})))
        )),
    responses(
        (status = 200, description = "The case after the command", body = CaseState),
        (status = 400, description = "`malformed_json`, or `invalid_request`: a bad query or header", body = ApiError),
        (status = 401, description = "`unauthorized`: no bearer token, or one not known", body = ApiError),
        (status = 403, description = "`forbidden`: the token's role may not do this", body = ApiError),
        (status = 404, description = "`not_found`: no such case or flow", body = ApiError),
        (status = 409, description = "`version_conflict`, or `command_not_allowed` with a `reason`", body = ApiError),
        (status = 413, description = "`payload_too_large`: the body is over 1 MiB", body = ApiError),
        (status = 415, description = "`invalid_request`: the body is not sent as `application/json`", body = ApiError),
        (status = 422, description = "`invalid_request`, `invalid_data` or `idempotency_key_reused`", body = ApiError)))]
#[allow(dead_code)]
fn command_doc() {}

async fn command<S: Store>(
    State(app): State<Shared<S>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    json: Result<Json<CommandBody>, JsonRejection>,
) -> Result<Json<engine::CaseState>, Failure> {
    let role = role(&app, &headers).await?;
    let CommandBody(command) = body(json)?;
    let actor = match role {
        Role::Officer { department, officer } => Actor::Officer { department, officer },
        Role::Platform => Actor::Applicant,
        _ => return Err(forbidden("act on cases")),
    };
    let expected = match headers.get("if-match").map(|v| v.to_str().map(|s| s.trim_matches('"').parse::<u64>())) {
        None => None,
        Some(Ok(Ok(version))) => Some(version),
        Some(_) => {
            return Err(Failure::new(StatusCode::BAD_REQUEST, "invalid_request", "`If-Match` must be a case version"))
        }
    };
    Ok(Json(app.act(&id, &command, &actor, idempotency_key(&headers).as_deref(), expected).await?))
}

/// A case's events, numbered from 1.
#[utoipa::path(get, path = "/cases/{id}/history", params(("id" = String, Path, description = "the case's id")),
    responses(
        (status = 200, description = "The case's events, oldest first", body = Vec<Event>),
        (status = 401, description = "`unauthorized`: no bearer token, or one not known", body = ApiError),
        (status = 403, description = "`forbidden`: the token's role may not do this", body = ApiError),
        (status = 404, description = "`not_found`: no such case or flow", body = ApiError)))]
#[allow(dead_code)]
fn history_doc() {}

async fn history<S: Store>(
    State(app): State<Shared<S>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Failure> {
    match role(&app, &headers).await? {
        Role::Supervisor | Role::Platform | Role::Admin => {}
        Role::Officer { .. } => {
            // The same rule as reading the case.
            case(State(Arc::clone(&app)), headers.clone(), Path(id.clone())).await?;
        }
    }
    Ok(Json(app.history(&id).await?).into_response())
}

/// A department's open tasks, oldest first: its officers' and the supervisors' view.
#[utoipa::path(get, path = "/departments/{department}/tasks",
    params(("department" = String, Path, description = "the department's code, e.g. `samr`")),
    responses(
        (status = 200, description = "The department's open tasks, oldest first", body = Vec<QueuedTask>),
        (status = 401, description = "`unauthorized`: no bearer token, or one not known", body = ApiError),
        (status = 403, description = "`forbidden`: the token's role may not do this", body = ApiError)))]
#[allow(dead_code)]
fn tasks_doc() {}

async fn tasks<S: Store>(
    State(app): State<Shared<S>>,
    headers: HeaderMap,
    Path(department): Path<String>,
) -> Result<Response, Failure> {
    match role(&app, &headers).await? {
        Role::Supervisor => {}
        Role::Officer { department: d, .. } if d == department => {}
        _ => return Err(forbidden("read this department's tasks")),
    }
    Ok(Json(app.tasks(&department).await?).into_response())
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    #[serde(default)]
    after: i64,
    /// Seconds to wait for an event when there is none yet (long poll), at most 30.
    #[serde(default)]
    wait: u64,
    #[serde(default = "default_limit")]
    limit: u32,
}

fn default_limit() -> u32 {
    100
}

/// Every case's events after a position, oldest first: a subscriber keeps `next` and asks
/// again, so it misses nothing across restarts (its own or the server's).
#[utoipa::path(get, path = "/events",
    params(("after" = Option<i64>, Query, description = "the last position seen (0: from the beginning)"),
        ("wait" = Option<u64>, Query, description = "seconds to wait for an event when there is none yet, at most 30"),
        ("limit" = Option<u32>, Query, description = "at most this many events, 1 to 1000 (100 by default)")),
    responses(
        (status = 200, description = "The events after `after`, and the position to ask after next", body = FeedPage),
        (status = 400, description = "`malformed_json`, or `invalid_request`: a bad query or header", body = ApiError),
        (status = 401, description = "`unauthorized`: no bearer token, or one not known", body = ApiError),
        (status = 403, description = "`forbidden`: the token's role may not do this", body = ApiError)))]
#[allow(dead_code)]
fn events_doc() {}

async fn events<S: Store>(
    State(app): State<Shared<S>>,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<FeedPage>, Failure> {
    if !matches!(role(&app, &headers).await?, Role::Supervisor | Role::Platform) {
        return Err(forbidden("follow every case's events"));
    }
    let Query(query) = query.map_err(|e| Failure::new(StatusCode::BAD_REQUEST, "invalid_request", e.body_text()))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(query.wait.min(30));
    loop {
        let events =
            app.store().events_after(query.after, query.limit.clamp(1, 1000)).await.map_err(EngineError::from)?;
        if !events.is_empty() || tokio::time::Instant::now() >= deadline {
            let next = events.last().map_or(query.after, |(p, ..)| *p);
            let events =
                events.into_iter().map(|(position, case_id, event)| FeedItem { position, case_id, event }).collect();
            return Ok(Json(FeedPage { events, next }));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The query of the event stream: where to start when the client sends no `Last-Event-ID`.
#[derive(Debug, Deserialize)]
struct StreamQuery {
    #[serde(default)]
    after: i64,
}

/// Every case's events as Server-Sent Events, from a position on and then as they are
/// written: each event's `id` is its position, so a client that reconnects (browsers do it by
/// themselves) sends `Last-Event-ID` and resumes after the last event it saw.
#[utoipa::path(get, path = "/events/stream", params(("after" = Option<i64>, Query),
        ("Last-Event-ID" = Option<i64>, Header, description = "resume after this position (takes precedence over `after`)")),
    responses(
        (status = 200, content_type = "text/event-stream", body = String,
            description = "Server-Sent Events, one per event of the feed: `event: case_event`, `id:` its position, \
                `data:` a `FeedItem` as JSON (`#/components/schemas/FeedItem`)"),
        (status = 400, description = "`malformed_json`, or `invalid_request`: a bad query or header", body = ApiError),
        (status = 401, description = "`unauthorized`: no bearer token, or one not known", body = ApiError),
        (status = 403, description = "`forbidden`: the token's role may not do this", body = ApiError)))]
#[allow(dead_code)]
fn event_stream_doc() {}

async fn event_stream<S: Store + 'static>(
    State(app): State<Shared<S>>,
    headers: HeaderMap,
    query: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Failure> {
    use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
    use futures_util::StreamExt;
    if !matches!(role(&app, &headers).await?, Role::Supervisor | Role::Platform) {
        return Err(forbidden("follow every case's events"));
    }
    let Query(query) = query.map_err(|e| Failure::new(StatusCode::BAD_REQUEST, "invalid_request", e.body_text()))?;
    let after = match headers.get("last-event-id").map(|v| v.to_str().map(|s| s.trim().parse::<i64>())) {
        None => query.after,
        Some(Ok(Ok(position))) => position,
        Some(_) => {
            return Err(Failure::new(StatusCode::BAD_REQUEST, "invalid_request", "`Last-Event-ID` must be a position"))
        }
    };
    // A failing store ends the stream; the client reconnects with `Last-Event-ID`.
    let stream = engine::Subscription::new(app, after)
        .into_stream()
        .scan((), |_, item| std::future::ready(item.ok()))
        .map(|item| {
            let data = serde_json::to_string(&item).unwrap_or_default();
            Ok::<_, std::convert::Infallible>(
                SseEvent::default().id(item.position.to_string()).event("case_event").data(data),
            )
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response())
}

/// The stall-analysis filter from the query string: a bad one is a JSON error, never a panic.
async fn supervisor_filter<S: Store>(
    app: &Engine<S>,
    headers: &HeaderMap,
    query: Result<Query<StallFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<StallFilter, Failure> {
    if role(app, headers).await? != Role::Supervisor {
        return Err(forbidden("read the supervision figures"));
    }
    let Query(filter) = query.map_err(|e| Failure::new(StatusCode::BAD_REQUEST, "invalid_request", e.body_text()))?;
    Ok(filter)
}

/// Stall analysis (电子监察) as of today: per state the cases waiting and their waiting time in
/// working days, the longest waits, per department the handling times and open overdue tasks,
/// the yellow and red warnings, per process the cases by status, trips, 好差评 and SLA kept.
/// Supervisor only. Names cases by id, never by applicant.
#[utoipa::path(get, path = "/stalls", params(StallFilter),
    responses(
        (status = 200, description = "The figures", body = Stalls),
        (status = 400, description = "`malformed_json`, or `invalid_request`: a bad query or header", body = ApiError),
        (status = 401, description = "`unauthorized`: no bearer token, or one not known", body = ApiError),
        (status = 403, description = "`forbidden`: the token's role may not do this", body = ApiError)))]
#[allow(dead_code)]
fn stalls_doc() {}

async fn stalls<S: Store>(
    State(app): State<Shared<S>>,
    headers: HeaderMap,
    query: Result<Query<StallFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Stalls>, Failure> {
    let filter = supervisor_filter(&app, &headers, query).await?;
    Ok(Json(app.stalls(&filter).await?))
}

/// The per-state summary alone: where cases wait now, and for how many working days.
/// Supervisor only.
#[utoipa::path(get, path = "/stalls/states", params(StallFilter),
    responses(
        (status = 200, description = "Per state, the cases waiting", body = Vec<StateFigures>),
        (status = 400, description = "`malformed_json`, or `invalid_request`: a bad query or header", body = ApiError),
        (status = 401, description = "`unauthorized`: no bearer token, or one not known", body = ApiError),
        (status = 403, description = "`forbidden`: the token's role may not do this", body = ApiError)))]
#[allow(dead_code)]
fn stalled_states_doc() {}

async fn stalled_states<S: Store>(
    State(app): State<Shared<S>>,
    headers: HeaderMap,
    query: Result<Query<StallFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<StateFigures>>, Failure> {
    let filter = supervisor_filter(&app, &headers, query).await?;
    Ok(Json(app.stalled_states(&filter).await?))
}

/// One case on a working-day axis: each step's opening and end, the periods its clocks stood
/// still (补正, special procedures), the warnings and the promised limit. Supervisor only.
#[utoipa::path(get, path = "/cases/{id}/timeline", params(("id" = String, Path, description = "the case's id")),
    responses(
        (status = 200, description = "The case's timeline", body = engine::timeline::CaseTimeline),
        (status = 401, description = "`unauthorized`: no bearer token, or one not known", body = ApiError),
        (status = 403, description = "`forbidden`: the token's role may not do this", body = ApiError),
        (status = 404, description = "`not_found`: no such case or flow", body = ApiError)))]
#[allow(dead_code)]
fn timeline_doc() {}

async fn timeline<S: Store>(
    State(app): State<Shared<S>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<engine::timeline::CaseTimeline>, Failure> {
    if role(&app, &headers).await? != Role::Supervisor {
        return Err(forbidden("read the supervision figures"));
    }
    Ok(Json(app.timeline(&id).await?))
}

pub use axum::Router;

/// Serves a router (the API's, the dashboard's) on `listener` until the process ends.
pub async fn serve_router(listener: tokio::net::TcpListener, app: Router) -> Result<(), String> {
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}

/// Serves the dashboard alone (no API, no timer tick: it only reads) on `listener`, with a
/// supervisor token known to this process only; see [`dashboard::routes`].
pub async fn serve_dashboard<S: Store + 'static>(
    engine: Engine<S>,
    listener: tokio::net::TcpListener,
    local_token: String,
) -> Result<(), String> {
    serve_router(listener, dashboard::routes(Arc::new(engine), Some(local_token))).await
}

/// Serves the API on `listener` until the process ends, firing due timers every `tick`.
pub async fn serve<S: Store + 'static>(
    engine: Engine<S>,
    listener: tokio::net::TcpListener,
    tick: Duration,
) -> Result<(), String> {
    let engine = Arc::new(engine);
    let ticker = Arc::clone(&engine);
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(tick);
        loop {
            interval.tick().await;
            // A failed tick is retried at the next one; the timers stay in the store.
            let _ = ticker.tick().await;
        }
    });
    axum::serve(listener, router(engine)).await.map_err(|e| e.to_string())
}
