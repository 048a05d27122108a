//! The supervisor's dashboard (电子监察): HTML pages rendered here, with the pictures drawn as
//! inline SVG by `diagram`. Every page works without JavaScript; `/dashboard.js` only reloads
//! a visible page every minute.
//!
//! Pages take the same `Authorization: Bearer` header as the API (for a reverse proxy or a
//! script), or the `onetrip_token` cookie that the sign-in form sets: `Secure`, `HttpOnly`,
//! `SameSite=Strict`, for eight hours. Only supervisor tokens open them. The cookie is read by
//! these pages alone, never by the JSON API, so a page another site opens can change nothing.
//!
//! Everything is read from the figures the engine keeps as it writes (`Engine::stalls`), never
//! from a scan of the events; cases are named by id, and a case's page shows its applicant
//! only masked.

mod view;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Form, Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use engine::stalls::StallFilter;
use engine::store::Store;
use engine::{Engine, EngineError};

use crate::Role;

/// The cookie holding a signed-in supervisor's token.
const COOKIE: &str = "onetrip_token";
/// How long a sign-in lasts, in seconds.
const SESSION_SECONDS: u32 = 8 * 3600;

/// The dashboard's state: the engine, and for `onetrip dashboard` a token of this process alone.
struct Board<S: Store> {
    engine: Arc<Engine<S>>,
    local_token: Option<String>,
}

impl<S: Store> std::ops::Deref for Board<S> {
    type Target = Engine<S>;

    fn deref(&self) -> &Engine<S> {
        &self.engine
    }
}

type Shared<S> = Arc<Board<S>>;

/// The dashboard's routes, to merge with the API's. `local_token`, when given, is a supervisor
/// token that only this process knows (never stored): `onetrip dashboard` opens the browser at
/// `/signin/local?token=…` with it, as Jupyter does, so a person on this machine needs no
/// token from the database.
pub fn routes<S: Store + 'static>(engine: Arc<Engine<S>>, local_token: Option<String>) -> Router {
    Router::new()
        .route("/", get(overview::<S>))
        .route("/processes/{name}", get(process::<S>))
        .route("/warnings", get(warnings::<S>))
        .route("/departments", get(departments::<S>))
        .route("/timeline/{id}", get(case::<S>))
        .route("/signin", get(signin_form).post(signin::<S>))
        .route("/signout", axum::routing::post(signout))
        .route("/signin/local", get(signin_local::<S>))
        .route("/dashboard.js", get(script))
        .with_state(Arc::new(Board { engine, local_token }))
}

/// Why a page was not shown.
enum Refused {
    /// No token: a person at a browser is sent to the sign-in form.
    SignIn {
        next: String,
    },
    /// A token that is not a supervisor's, or unknown.
    Forbidden(&'static str),
    NotFound(String),
    Failed(EngineError),
}

impl From<EngineError> for Refused {
    fn from(error: EngineError) -> Refused {
        match error {
            EngineError::UnknownCase(id) => Refused::NotFound(format!("没有案件 {id}")),
            EngineError::UnknownFlow(name) => Refused::NotFound(format!("没有已部署的流程 {name}")),
            other => Refused::Failed(other),
        }
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::SignIn { next } => {
                let mut response = StatusCode::SEE_OTHER.into_response();
                let target = format!("/signin?next={}", view::url_component(&next));
                if let Ok(value) = HeaderValue::from_str(&target) {
                    response.headers_mut().insert(LOCATION, value);
                }
                response
            }
            Refused::Forbidden(why) => page(StatusCode::FORBIDDEN, view::message("无权访问", why)),
            Refused::NotFound(what) => page(StatusCode::NOT_FOUND, view::message("未找到", &what)),
            Refused::Failed(error) => {
                // Store errors name no personal data (the engine's invariant).
                eprintln!("dashboard: {error}");
                page(StatusCode::INTERNAL_SERVER_ERROR, view::message("暂时无法读取", "数据库读取失败，请稍后重试。"))
            }
        }
    }
}

/// An HTML answer with the headers every page carries: no caching (supervision data), a
/// strict content security policy (our script file only, no inline scripts, no framing).
fn page(status: StatusCode, html: String) -> Response {
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    response
}

/// The token of a request: the `Authorization` header first, then the sign-in cookie.
fn token(headers: &HeaderMap) -> Option<(String, bool)> {
    if let Some(bearer) =
        headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some((bearer.trim().to_string(), true));
    }
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| (value.trim().to_string(), false))
}

/// Whom a token stands for: the process's own token is a supervisor's.
async fn supervisor_role<S: Store>(board: &Board<S>, token: &str) -> Result<Option<Role>, EngineError> {
    if board.local_token.as_deref().is_some_and(|local| local == token) {
        return Ok(Some(Role::Supervisor));
    }
    crate::token_role(board, token).await
}

/// Lets a supervisor through; sends anyone else to sign in, or refuses them.
async fn signed_in<S: Store>(board: &Board<S>, headers: &HeaderMap, path: &str) -> Result<(), Refused> {
    let Some((token, from_header)) = token(headers) else {
        return Err(Refused::SignIn { next: path.to_string() });
    };
    match supervisor_role(board, &token).await? {
        Some(Role::Supervisor) => Ok(()),
        Some(_) => Err(Refused::Forbidden("此页面只对监察令牌（supervisor）开放。")),
        // A stale cookie: sign in again. A wrong header: say so (a script sent it).
        None if !from_header => Err(Refused::SignIn { next: path.to_string() }),
        None => Err(Refused::Forbidden("令牌无效。")),
    }
}

/// Names and titles of everything deployed, for Chinese labels.
pub(crate) struct Titles {
    pub flows: Vec<Arc<dsl::CompiledFlow>>,
    pub processes: HashMap<String, String>,
    pub items: HashMap<String, String>,
    pub steps: HashMap<(String, String), String>,
    pub departments: HashMap<String, String>,
}

impl Titles {
    async fn load<S: Store>(engine: &Engine<S>) -> Result<Titles, EngineError> {
        let flows = engine.processes().await?;
        let mut titles = Titles {
            processes: HashMap::new(),
            items: HashMap::new(),
            steps: HashMap::new(),
            departments: HashMap::new(),
            flows: Vec::new(),
        };
        for flow in &flows {
            titles.processes.insert(flow.name.clone(), flow.title.clone());
            for item in &flow.items {
                titles.items.insert(item.name.clone(), item.title.clone());
            }
            for department in &flow.departments {
                titles.departments.insert(department.name.clone(), department.title.clone());
            }
            for state in flow.graph.node_weights() {
                if let dsl::compile::State::Step { item, step, label: Some(label), .. } = state {
                    titles.steps.insert((item.clone(), step.clone()), label.clone());
                }
            }
        }
        titles.flows = flows;
        Ok(titles)
    }

    pub fn process(&self, name: &str) -> String {
        self.processes.get(name).cloned().unwrap_or_else(|| name.to_string())
    }

    pub fn item(&self, name: &str) -> String {
        self.items.get(name).cloned().unwrap_or_else(|| name.to_string())
    }

    pub fn step(&self, item: &str, step: &str) -> String {
        self.steps.get(&(item.to_string(), step.to_string())).cloned().unwrap_or_else(|| step.to_string())
    }

    pub fn department(&self, name: &str) -> String {
        self.departments.get(name).cloned().unwrap_or_else(|| name.to_string())
    }

    /// A clock's name: the whole process, an item, or a step of one.
    pub fn scope(&self, scope: &str) -> String {
        match scope.split_once('/') {
            _ if scope == "process" => "全流程时限".to_string(),
            Some((item, step)) => format!("{} · {}", self.item(item), self.step(item, step)),
            None => self.item(scope),
        }
    }
}

async fn overview<S: Store>(State(app): State<Shared<S>>, headers: HeaderMap) -> Result<Response, Refused> {
    signed_in(&app, &headers, "/").await?;
    let stalls = app.stalls(&StallFilter { limit: Some(10), ..StallFilter::default() }).await?;
    let titles = Titles::load(&app).await?;
    Ok(page(StatusCode::OK, view::overview(&stalls, &titles)))
}

#[derive(Debug, Deserialize)]
struct ProcessQuery {
    item: Option<String>,
    step: Option<String>,
}

async fn process<S: Store>(
    State(app): State<Shared<S>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    query: Result<Query<ProcessQuery>, QueryRejection>,
) -> Result<Response, Refused> {
    signed_in(&app, &headers, &format!("/processes/{}", view::url_component(&name))).await?;
    let flow = app.process(&name).await?;
    let filter = StallFilter { process: Some(name.clone()), limit: Some(20), ..StallFilter::default() };
    let stalls = app.stalls(&filter).await?;
    // The cases waiting at one state, when the heat map's state was followed.
    let state = query.ok().and_then(|Query(q)| q.item.zip(q.step));
    let at_state = match &state {
        Some((item, step)) => Some(
            app.stalls(&StallFilter {
                item: Some(item.clone()),
                step: Some(step.clone()),
                limit: Some(50),
                ..filter.clone()
            })
            .await?
            .longest,
        ),
        None => None,
    };
    let titles = Titles::load(&app).await?;
    Ok(page(StatusCode::OK, view::process(&flow, &stalls, state.as_ref().zip(at_state.as_ref()), &titles)))
}

#[derive(Debug, Deserialize)]
struct WarningQuery {
    level: Option<String>,
    process: Option<String>,
    department: Option<String>,
}

async fn warnings<S: Store>(
    State(app): State<Shared<S>>,
    headers: HeaderMap,
    query: Result<Query<WarningQuery>, QueryRejection>,
) -> Result<Response, Refused> {
    signed_in(&app, &headers, "/warnings").await?;
    let query = query.map(|Query(q)| q).unwrap_or(WarningQuery { level: None, process: None, department: None });
    let filter = StallFilter {
        process: query.process.clone().filter(|p| !p.is_empty()),
        department: query.department.clone().filter(|d| !d.is_empty()),
        limit: Some(500),
        ..StallFilter::default()
    };
    let warnings = app.warnings(&filter).await?;
    let titles = Titles::load(&app).await?;
    let level = query.level.filter(|l| l == "yellow" || l == "red");
    Ok(page(StatusCode::OK, view::warnings(&warnings, &app.today(), level.as_deref(), &filter, &titles)))
}

async fn departments<S: Store>(State(app): State<Shared<S>>, headers: HeaderMap) -> Result<Response, Refused> {
    signed_in(&app, &headers, "/departments").await?;
    let departments = app.departments(&StallFilter::default()).await?;
    let titles = Titles::load(&app).await?;
    Ok(page(StatusCode::OK, view::departments(&departments, &app.today(), &titles)))
}

async fn case<S: Store>(
    State(app): State<Shared<S>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Refused> {
    signed_in(&app, &headers, &format!("/timeline/{}", view::url_component(&id))).await?;
    let timeline = app.timeline(&id).await?;
    let applicant = app.masked_applicant(&id).await?;
    let state = app.case(&id).await?;
    let titles = Titles::load(&app).await?;
    Ok(page(StatusCode::OK, view::case(&timeline, &state, &applicant, &titles)))
}

#[derive(Debug, Deserialize)]
struct SignInQuery {
    next: Option<String>,
}

async fn signin_form(query: Result<Query<SignInQuery>, QueryRejection>) -> Response {
    let next = query.ok().and_then(|Query(q)| q.next).unwrap_or_default();
    page(StatusCode::OK, view::signin(&safe_next(&next), None))
}

#[derive(Debug, Deserialize)]
struct SignIn {
    token: String,
    #[serde(default)]
    next: String,
}

async fn signin<S: Store>(
    State(app): State<Shared<S>>,
    form: Result<Form<SignIn>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return page(StatusCode::BAD_REQUEST, view::signin("/", Some("请填写令牌。")));
    };
    let next = safe_next(&form.next);
    match supervisor_role(&app, form.token.trim()).await {
        Ok(Some(Role::Supervisor)) => signed_in_as(form.token.trim(), &next),
        Ok(Some(_)) => page(StatusCode::FORBIDDEN, view::signin(&next, Some("这不是监察令牌（supervisor）。"))),
        Ok(None) => page(StatusCode::UNAUTHORIZED, view::signin(&next, Some("令牌无效。"))),
        Err(_) => page(StatusCode::INTERNAL_SERVER_ERROR, view::signin(&next, Some("数据库读取失败，请稍后重试。"))),
    }
}

/// Keeps the token in the cookie and goes on to `next`.
fn signed_in_as(token: &str, next: &str) -> Response {
    let cookie = format!("{COOKIE}={token}; Path=/; Max-Age={SESSION_SECONDS}; HttpOnly; Secure; SameSite=Strict");
    // A token is `ot_` and hex digits; anything else cannot be a header and is no token.
    match (HeaderValue::from_str(&cookie), HeaderValue::from_str(next)) {
        (Ok(cookie), Ok(location)) => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            response.headers_mut().insert(SET_COOKIE, cookie);
            response.headers_mut().insert(LOCATION, location);
            response
        }
        _ => page(StatusCode::UNAUTHORIZED, view::signin(next, Some("令牌无效。"))),
    }
}

#[derive(Debug, Deserialize)]
struct LocalQuery {
    token: String,
}

/// The sign-in link `onetrip dashboard` opens: only this process's own token passes.
async fn signin_local<S: Store>(
    State(app): State<Shared<S>>,
    query: Result<Query<LocalQuery>, QueryRejection>,
) -> Response {
    match (query, app.local_token.as_deref()) {
        (Ok(Query(q)), Some(local)) if q.token == local => signed_in_as(local, "/"),
        _ => page(StatusCode::UNAUTHORIZED, view::signin("/", Some("这个登录链接已失效，请输入令牌。"))),
    }
}

async fn signout() -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(
        SET_COOKIE,
        HeaderValue::from_static("onetrip_token=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict"),
    );
    headers.insert(LOCATION, HeaderValue::from_static("/signin"));
    response
}

/// Where to go after signing in: a path of this site only (no `//host`, no scheme).
fn safe_next(next: &str) -> String {
    let local = next.starts_with('/') && !next.starts_with("//") && !next.contains('\\');
    if local && next.chars().all(|c| c.is_ascii_graphic()) {
        next.to_string()
    } else {
        "/".to_string()
    }
}

/// The one script: reloads a visible page every minute. Pages work without it.
async fn script() -> Response {
    let mut response = view::SCRIPT.into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        for (next, expected) in [
            ("/processes/a", "/processes/a"),
            ("/warnings?level=red", "/warnings?level=red"),
            ("//evil.example", "/"),
            ("https://evil.example", "/"),
            ("/\\evil", "/"),
            ("/a b", "/"),
            ("", "/"),
        ] {
            assert_eq!(safe_next(next), expected, "{next}");
        }
    }

    #[test]
    fn the_header_comes_before_the_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert("cookie", HeaderValue::from_static("a=1; onetrip_token=ot_cookie; b=2"));
        assert_eq!(token(&headers), Some(("ot_cookie".to_string(), false)));
        headers.insert("authorization", HeaderValue::from_static("Bearer ot_header"));
        assert_eq!(token(&headers), Some(("ot_header".to_string(), true)));
    }
}
