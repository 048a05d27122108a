//! `/guide/`: the 办事指南 of every deployed process and its items, read-only and without a
//! token (what an applicant reads before coming), from the deployed flows themselves — so the
//! published guide is what this server runs.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use engine::{Engine, Store};

const TITLE: &str = "办事指南";

pub fn routes<S: Store + 'static>(engine: Arc<Engine<S>>) -> Router {
    Router::new()
        .route("/guide", get(|| async { Redirect::permanent("/guide/") }))
        .route("/guide/", get(index::<S>))
        .route("/guide/{*path}", get(page::<S>))
        .with_state(engine)
}

async fn index<S: Store>(State(engine): State<Arc<Engine<S>>>) -> Response {
    let flows = match engine.processes().await {
        Ok(flows) => flows,
        Err(error) => return failed(error),
    };
    let mut site = guide::html::Site::default();
    for flow in &flows {
        site.list_only(&flow.program(), &flow.name);
    }
    html(StatusCode::OK, site.index(TITLE).html)
}

async fn page<S: Store>(State(engine): State<Arc<Engine<S>>>, Path(path): Path<String>) -> Response {
    if path == "index.html" {
        return index(State(engine)).await;
    }
    let flows = match engine.processes().await {
        Ok(flows) => flows,
        Err(error) => return failed(error),
    };
    // A process's page from its flow; an item's from the first flow that runs it (its page
    // then links back to that process).
    let Some(name) = guide::html::page_name(&path) else { return not_found() };
    let found = flows
        .iter()
        .filter(|flow| flow.name == name || flow.items.iter().any(|i| i.name == name))
        .find_map(|flow| guide::html::page(&flow.program(), &path));
    match found {
        Some(page) => html(StatusCode::OK, page.html),
        None => not_found(),
    }
}

fn not_found() -> Response {
    html(
        StatusCode::NOT_FOUND,
        "<!DOCTYPE html><meta charset=\"utf-8\"><title>未找到</title><p>没有这份办事指南。<a href=\"/guide/\">返回目录</a></p>".into(),
    )
}

fn failed(error: engine::EngineError) -> Response {
    // Store errors name no personal data (the engine's invariant).
    eprintln!("guide: {error}");
    html(
        StatusCode::INTERNAL_SERVER_ERROR,
        "<!DOCTYPE html><meta charset=\"utf-8\"><p>暂时无法读取，请稍后重试。</p>".into(),
    )
}

/// Public pages: cacheable for a minute (a deploy shows within it), no script at all.
fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'",
        ),
    );
    response
}
