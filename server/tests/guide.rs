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

#[tokio::test]
async fn a_platform_asks_for_an_applicants_notice() {
    let url = support::fresh_db("notice");
    let clock = Arc::new(ManualClock::new(support::at("2026-09-21T09:00:00+08:00")));
    let engine = support::engine_at(&url, clock).await;
    engine.deploy(&stdlib_flows::compiled("start_business").expect("compiles")).await.expect("deploys");
    let platform = server::create_token(engine.store(), &server::Role::Platform).await.expect("a token");
    let supervisor = server::create_token(engine.store(), &server::Role::Supervisor).await.expect("a token");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(server::serve_router(listener, server::router(Arc::new(engine))));
    let client = reqwest::Client::new();
    let scenario: serde_json::Value = serde_json::from_str(
        stdlib_flows::scenarios("start_business")
            .iter()
            .find(|(path, _)| path.ends_with("happy_path_bank_account.json"))
            .expect("a scenario")
            .1,
    )
    .expect("JSON");
    let data = scenario["submit"]["data"].clone();
    let ask = |token: &str, body: serde_json::Value| {
        client.post(format!("{base}/notice")).bearer_auth(token).json(&body).send()
    };

    let answer = ask(&platform, serde_json::json!({"flow": "start_business", "data": data})).await.expect("answers");
    assert_eq!(answer.status(), StatusCode::OK);
    let text = answer.text().await.expect("text");
    let notice: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(notice["eligible"], true);
    assert!(notice["bring"].as_array().is_some_and(|b| !b.is_empty()));
    assert!(!text.contains("陈思远") && !text.contains("330106199003070022"), "nothing of the data is copied");

    let forbidden =
        ask(&supervisor, serde_json::json!({"flow": "start_business", "data": data})).await.expect("answers");
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    let unknown = ask(&platform, serde_json::json!({"flow": "nope", "data": {}})).await.expect("answers");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let mut wrong = data.clone();
    wrong["applicant"]["age"] = serde_json::json!("三十六岁");
    let invalid = ask(&platform, serde_json::json!({"flow": "start_business", "data": wrong})).await.expect("answers");
    assert_eq!(invalid.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let error = invalid.text().await.expect("text");
    assert!(
        error.contains("invalid_data") && error.contains("applicant.age") && !error.contains("三十六岁"),
        "{error}"
    );
}
