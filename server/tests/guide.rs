//! `/guide/`: the guides of the deployed flows, public and read-only, on a real socket.

#[path = "../../engine/tests/support/mod.rs"]
mod support;

use std::sync::Arc;

use engine::ManualClock;
use reqwest::StatusCode;

#[tokio::test]
async fn the_guides_of_what_the_server_runs_are_public() {
    let url = support::fresh_db("guide");
    let clock = Arc::new(ManualClock::new(support::at("2026-09-21T09:00:00+08:00")));
    let engine = support::engine_at(&url, clock).await;
    engine.deploy(&stdlib_flows::compiled("start_business").expect("compiles")).await.expect("deploys");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(server::serve_router(listener, server::router(Arc::new(engine))));
    let client = reqwest::Client::new();
    let get = |path: &str| {
        let request = client.get(format!("{base}{path}"));
        async move {
            let response = request.send().await.expect("answers");
            let status = response.status();
            let csp = response.headers().get("content-security-policy").map(|v| v.to_str().unwrap_or("").to_string());
            (status, csp, response.text().await.expect("text"))
        }
    };

    // No token: the index lists the process and its items, linked.
    let (status, csp, index) = get("/guide/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(csp.is_some_and(|p| p.contains("default-src 'none'")), "no script may run");
    assert!(index.contains(r#"href="processes/start_business.html""#) && index.contains("开办企业一件事"));
    assert!(index.contains(r#"href="items/company_registration.html""#) && index.contains("企业设立登记"));

    // The process's guide: what it runs, its materials, its flow chart.
    let (status, _, process) = get("/guide/processes/start_business.html").await;
    assert_eq!(status, StatusCode::OK);
    for expected in ["一、基本信息", "最多跑1次", "联办事项", "申请材料", "免提交", "<svg", "一次办成"]
    {
        assert!(process.contains(expected), "the process guide shows {expected}");
    }
    assert!(!process.contains("<script"), "no script");

    // An item's guide links back to its process.
    let (status, _, item) = get("/guide/items/seal_filing.html").await;
    assert_eq!(status, StatusCode::OK);
    assert!(item.contains("印章刻制备案") && item.contains(r#"href="../processes/start_business.html""#));

    for missing in [
        "/guide/items/nope.html",
        "/guide/processes/seal_filing.html",
        "/guide/processes/..%2Fitems%2Fseal_filing.html",
        "/guide/x",
    ] {
        assert_eq!(get(missing).await.0, StatusCode::NOT_FOUND, "{missing}");
    }
}
