//! The supervisor's dashboard, in a real browser (Debian's `chromium`, headless, driven over
//! the DevTools protocol) and through a plain HTTP client.
//!
//! The store is seeded through the engine's public API with the stdlib's 开办企业一件事 under a
//! controlled clock: cases left at known states, one in 补正, one finished and rated, one
//! withdrawn, then the clock moved past the National Day holiday so that deadlines pass and the
//! tick raises warnings. The browser signs in with the form, reads the figures the pages show
//! (the numbers on the heat map's states, the warning list, the overview's tiles) and checks
//! them against the seeding and against the JSON API; it saves a screenshot of each page
//! (`target/tmp/dashboard/*.png`, and into `$ONETRIP_SCREENSHOTS` when set: README's pictures
//! come from there).

#[path = "../../engine/tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use engine::case::{Actor, Command};
use engine::stalls::StallFilter;
use engine::{AnyStore, Engine, ManualClock, Submission, Submitted};
use server::{create_token, Role};

const APPLICANT_NAME: &str = "陈思远";
const APPLICANT_ID: &str = "330106199003070022";

/// The stdlib scenario's applicant, as a submission.
fn submission() -> Submission {
    let (_, text) = stdlib_flows::scenarios("start_business")
        .into_iter()
        .find(|(name, _)| name.contains("supplement_articles"))
        .expect("the 补正 scenario of start_business");
    let scenario: Value = serde_json::from_str(text).expect("scenario JSON");
    let submit = &scenario["submit"];
    Submission {
        flow: "start_business".into(),
        data: submit["data"].as_object().expect("data").clone(),
        materials: serde_json::from_value(submit["materials"].clone()).expect("materials"),
        licences: Vec::new(),
    }
}

struct Seeded {
    engine: Arc<Engine<AnyStore>>,
    supplement_case: String,
}

/// Completes the case's open task of `item` (or its first open task).
async fn complete(engine: &Engine<AnyStore>, id: &str, item: Option<&str>) -> engine::CaseState {
    let case = engine.case(id).await.expect("case");
    let task = case.tasks.values().find(|t| item.is_none_or(|i| t.item == i)).cloned().expect("an open task");
    let command = Command::Complete { item: task.item.clone(), step: task.step.clone(), next: None };
    engine.act(id, &command, &Actor::department(task.department), None, None).await.expect("completes")
}

async fn submit(engine: &Engine<AnyStore>, clock: &ManualClock, at: &str) -> String {
    clock.set(support::at(at));
    match engine.submit(&submission(), None).await.expect("submits") {
        Submitted::Accepted { case } => case.id,
        Submitted::Refused { reasons } => panic!("refused: {reasons:?}"),
    }
}

/// 13 cases of 开办企业 from 21 to 30 September 2026, then the clock on 20 October (after the
/// National Day holiday) and a tick.
async fn seed(name: &str) -> Seeded {
    let url = support::fresh_db(name);
    let clock = Arc::new(ManualClock::new(support::at("2026-09-21T09:00:00+08:00")));
    let engine = support::engine_at(&url, Arc::clone(&clock)).await;
    for process in ["start_business", "newborn"] {
        let flow = stdlib_flows::compiled(process).expect("a stdlib process compiles");
        engine.deploy(&flow).await.expect("deploys");
    }
    // Six wait at the registration's acceptance.
    for day in 21..27 {
        submit(&engine, &clock, &format!("2026-09-{day}T10:00:00+08:00")).await;
    }
    // Three at its review; the last of them waited for the applicant's 补正.
    let mut review = Vec::new();
    for day in [22, 23, 24] {
        let id = submit(&engine, &clock, &format!("2026-09-{day}T11:00:00+08:00")).await;
        clock.set(support::at(&format!("2026-09-{day}T14:00:00+08:00")));
        complete(&engine, &id, Some("company_registration")).await;
        review.push(id);
    }
    let supplement_case = review[2].clone();
    clock.set(support::at("2026-09-25T09:30:00+08:00"));
    let supplement = Command::RequestSupplement {
        item: "company_registration".into(),
        step: "review".into(),
        materials: vec!["articles".into()],
    };
    engine.act(&supplement_case, &supplement, &Actor::department("samr"), None, None).await.expect("补正");
    // Two past the registration: the departments' items open in parallel.
    for day in [28, 29] {
        let id = submit(&engine, &clock, &format!("2026-09-{day}T09:00:00+08:00")).await;
        clock.set(support::at(&format!("2026-09-{day}T15:00:00+08:00")));
        for _ in 0..4 {
            complete(&engine, &id, Some("company_registration")).await;
        }
    }
    // One done and rated 5, one withdrawn.
    let done = submit(&engine, &clock, "2026-09-30T09:00:00+08:00").await;
    clock.set(support::at("2026-09-30T16:00:00+08:00"));
    while !engine.case(&done).await.expect("case").tasks.is_empty() {
        complete(&engine, &done, None).await;
    }
    engine.act(&done, &Command::Rate { score: 5 }, &Actor::Applicant, None, None).await.expect("rates");
    let withdrawn = submit(&engine, &clock, "2026-09-30T10:00:00+08:00").await;
    engine.act(&withdrawn, &Command::Withdraw, &Actor::Applicant, None, None).await.expect("withdraws");
    // The 补正's materials arrive after the holiday: the clocks go on from there.
    clock.set(support::at("2026-10-09T09:00:00+08:00"));
    engine.act(&supplement_case, &Command::SupplementReceived, &Actor::Applicant, None, None).await.expect("补正 in");
    // Later still the limits have passed: the tick raises the warnings.
    clock.set(support::at("2026-10-20T10:00:00+08:00"));
    while engine.tick().await.expect("ticks") > 0 {}
    Seeded { engine: Arc::new(engine), supplement_case }
}

async fn serve(engine: Arc<Engine<AnyStore>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let address = listener.local_addr().expect("address");
    tokio::spawn(server::serve_router(listener, server::router(engine)));
    format!("http://{address}")
}

/// Headless Chromium with a fresh profile, driven over the DevTools protocol.
struct Browser {
    child: Child,
    profile: PathBuf,
    socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    next_id: u64,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Browser {
    async fn launch() -> Browser {
        let binary = ["chromium", "chromium-browser", "google-chrome"]
            .into_iter()
            .find(|b| Process::new(b).arg("--version").output().is_ok_and(|o| o.status.success()))
            .expect("no chromium: `scripts/install-test-deps` installs Debian's chromium and fonts-noto-cjk");
        let profile = std::env::temp_dir().join(format!("onetrip-chromium-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        let child = Process::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                "--window-size=1400,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium starts");
        // Chromium writes its DevTools port into the profile once it listens.
        let port_file = profile.join("DevToolsActivePort");
        let mut port = None;
        for _ in 0..300 {
            if let Some(line) =
                std::fs::read_to_string(&port_file).ok().and_then(|t| t.lines().next().map(String::from))
            {
                port = line.trim().parse::<u16>().ok();
                if port.is_some() {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let port = port.expect("chromium's DevTools port within 30 s");
        let targets: Value = reqwest::get(format!("http://127.0.0.1:{port}/json/list"))
            .await
            .expect("DevTools answers")
            .json()
            .await
            .expect("targets");
        let page = targets
            .as_array()
            .and_then(|t| t.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("a page target")
            .to_string();
        let (socket, _) = tokio_tungstenite::connect_async(page).await.expect("DevTools socket");
        let mut browser = Browser { child, profile, socket, next_id: 0 };
        browser.call("Page.enable", json!({})).await;
        browser
    }

    /// Sends a DevTools command and waits for its answer (events in between are skipped).
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({"id": id, "method": method, "params": params}).to_string();
        self.socket.send(Message::text(message)).await.expect("sends");
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(30), self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("{method}: no answer in 30 s"))
                .expect("socket open")
                .expect("frame");
            let Message::Text(text) = frame else { continue };
            let answer: Value = serde_json::from_str(&text).expect("JSON");
            if answer["id"] == id {
                assert!(answer.get("error").is_none(), "{method}: {answer}");
                return answer["result"].clone();
            }
        }
    }

    async fn eval(&mut self, script: &str) -> Value {
        let result = self
            .call("Runtime.evaluate", json!({"expression": script, "returnByValue": true, "awaitPromise": true}))
            .await;
        assert!(result.get("exceptionDetails").is_none(), "{script}: {result}");
        result["result"]["value"].clone()
    }

    /// Waits until the page at `path` has loaded.
    async fn arrived(&mut self, path: &str) {
        for _ in 0..200 {
            let at = self.eval("document.readyState === 'complete' ? location.pathname : ''").await;
            if at == path {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let at = self.eval("location.href").await;
        panic!("expected to arrive at {path}, the browser is at {at}");
    }

    async fn goto(&mut self, url: &str, path: &str) {
        self.call("Page.navigate", json!({"url": url})).await;
        self.arrived(path).await;
    }

    /// A PNG of the whole page (up to 2,400 pixels down).
    async fn screenshot(&mut self, name: &str) {
        self.call("Emulation.clearDeviceMetricsOverride", json!({})).await;
        let height = self.eval("document.documentElement.scrollHeight").await.as_u64().unwrap_or(1000);
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1400, "height": height.clamp(400, 2400), "deviceScaleFactor": 1, "mobile": false}),
        )
        .await;
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"})).await;
        let png =
            base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().expect("data")).expect("base64");
        let mut folders = vec![Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard")];
        folders.extend(std::env::var_os("ONETRIP_SCREENSHOTS").map(PathBuf::from));
        for folder in folders {
            std::fs::create_dir_all(&folder).expect("screenshot folder");
            std::fs::write(folder.join(format!("{name}.png")), &png).expect("screenshot written");
        }
    }
}

fn sum(map: &BTreeMap<String, u64>, key: &str) -> u64 {
    map.get(key).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_reads_the_dashboard_in_a_browser() {
    let seeded = seed("dashboard-browser").await;
    let engine = Arc::clone(&seeded.engine);
    let token = create_token(engine.store(), &Role::Supervisor).await.expect("token");
    let base = serve(Arc::clone(&engine)).await;
    let stalls = engine.stalls(&StallFilter { limit: Some(500), ..StallFilter::default() }).await.expect("stalls");
    let mut browser = Browser::launch().await;

    // Not signed in: the sign-in form, which keeps the token in a cookie and goes back.
    browser.goto(&format!("{base}/"), "/signin").await;
    browser.screenshot("signin").await;
    let fill = format!(
        "document.querySelector('input[name=token]').value = {}; document.querySelector('form.signin').submit(); true",
        json!(token)
    );
    browser.eval(&fill).await;
    browser.arrived("/").await;

    // The overview's tiles.
    let tiles = browser
        .eval(
            "JSON.stringify(['open-cases', 'overdue-tasks', 'open-red', 'open-yellow']
                .map(id => Number(document.getElementById(id).textContent)))",
        )
        .await;
    let tiles: Vec<u64> = serde_json::from_str(tiles.as_str().expect("text")).expect("numbers");
    let open: u64 = stalls.processes.iter().map(|p| sum(&p.cases, "open")).sum();
    let overdue: u64 = stalls.states.iter().map(|s| s.overdue).sum();
    assert_eq!(open, 11, "6 at the acceptance, 3 at the review, 2 in the departments' items");
    assert_eq!(
        tiles,
        vec![open, overdue, sum(&stalls.warnings.open, "red"), sum(&stalls.warnings.open, "yellow")],
        "the overview's tiles against the API"
    );
    assert!(tiles[2] > 0, "the seeding's deadlines passed: red warnings are open");
    browser.screenshot("overview").await;

    // The process: the heat map's numbers, state by state.
    browser.goto(&format!("{base}/processes/start_business"), "/processes/start_business").await;
    let states = browser
        .eval(
            "JSON.stringify([...document.querySelectorAll('#heatmap g.state')].map(g => [
                g.dataset.item, g.dataset.step, Number(g.dataset.waiting), Number(g.dataset.overdue), g.textContent]))",
        )
        .await;
    let states: Vec<(String, String, u64, u64, String)> =
        serde_json::from_str(states.as_str().expect("text")).expect("states");
    let flow = stdlib_flows::compiled("start_business").expect("compiles");
    let steps = flow.graph.node_weights().filter(|s| matches!(s, dsl::compile::State::Step { .. })).count();
    assert_eq!(states.len(), steps, "one state on the picture per step of the flow");
    let shown = |item: &str, step: &str| {
        states.iter().find(|s| s.0 == item && s.1 == step).map(|s| s.2).unwrap_or_else(|| panic!("{item}/{step} drawn"))
    };
    // As seeded: six wait at the acceptance, three at the review (one of them after a 补正).
    assert_eq!(shown("company_registration", "accept"), 6);
    assert_eq!(shown("company_registration", "review"), 3);
    for (item, step, waiting, overdue, text) in &states {
        let expected: u64 =
            stalls.states.iter().filter(|s| &s.item == item && &s.step == step).map(|s| s.waiting).sum();
        let late: u64 = stalls.states.iter().filter(|s| &s.item == item && &s.step == step).map(|s| s.overdue).sum();
        assert_eq!((*waiting, *overdue), (expected, late), "{item}/{step} against the API");
        if *waiting > 0 {
            assert!(text.contains(&waiting.to_string()), "{item}/{step} shows its count: {text}");
        }
    }
    browser.screenshot("process").await;

    // The warning list: every warning, by level, as the API counts them.
    browser.goto(&format!("{base}/warnings"), "/warnings").await;
    let rows = browser
        .eval(
            "JSON.stringify(['red', 'yellow'].map(l => document.querySelectorAll('table.warnings tr[data-level=' + l + ']').length)
                .concat([Number(document.getElementById('warnings-open-red').textContent)]))",
        )
        .await;
    let rows: Vec<u64> = serde_json::from_str(rows.as_str().expect("text")).expect("counts");
    let count = |level: &str| sum(&stalls.warnings.open, level) + sum(&stalls.warnings.past, level);
    assert_eq!(rows, vec![count("red"), count("yellow"), sum(&stalls.warnings.open, "red")]);
    assert!(rows[0] > 0);
    browser.screenshot("warnings").await;

    browser.goto(&format!("{base}/departments"), "/departments").await;
    let departments = browser.eval("document.querySelectorAll('table.departments tbody tr').length").await;
    assert_eq!(departments, json!(stalls.departments.len()));

    // The 补正 case's timeline: its steps as bars, the pause, the warnings, the applicant masked.
    let path = format!("/timeline/{}", seeded.supplement_case);
    browser.goto(&format!("{base}{path}"), &path).await;
    let timeline = engine.timeline(&seeded.supplement_case).await.expect("timeline");
    let drawn = browser
        .eval(
            "JSON.stringify([document.querySelectorAll('#timeline .bar').length,
                document.querySelectorAll('#timeline .mark').length,
                document.querySelectorAll('#timeline .shaded').length])",
        )
        .await;
    let drawn: Vec<usize> = serde_json::from_str(drawn.as_str().expect("text")).expect("counts");
    assert_eq!(drawn, vec![timeline.steps.len(), timeline.warnings.len(), timeline.pauses.len()]);
    assert_eq!(timeline.pauses.len(), 1, "the 补正, 25 September to 9 October");
    assert!(!timeline.warnings.is_empty());
    let html = browser.eval("document.documentElement.outerHTML").await;
    let html = html.as_str().expect("html");
    assert!(html.contains("陈**"), "the applicant, masked");
    browser.screenshot("timeline").await;

    // No page shows the applicant's name or ID number.
    for path in ["/", "/processes/start_business", "/warnings", "/departments", &path] {
        browser.goto(&format!("{base}{path}"), path).await;
        let html = browser.eval("document.documentElement.outerHTML").await;
        let html = html.as_str().expect("html");
        assert!(!html.contains(APPLICANT_NAME) && !html.contains(APPLICANT_ID), "personal data on {path}");
    }

    // Signing out forgets the cookie.
    browser.eval("document.querySelector('header form').submit(); true").await;
    browser.arrived("/signin").await;
    browser.goto(&format!("{base}/warnings"), "/signin").await;
}

#[tokio::test]
async fn pages_answer_a_bearer_header_and_refuse_everyone_else() {
    let seeded = seed("dashboard-http").await;
    let engine = seeded.engine;
    let supervisor = create_token(engine.store(), &Role::Supervisor).await.expect("token");
    let platform = create_token(engine.store(), &Role::Platform).await.expect("token");
    let base = serve(Arc::clone(&engine)).await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");

    for path in ["/", "/processes/start_business", "/processes/newborn", "/warnings?level=red", "/departments"] {
        let answer = client.get(format!("{base}{path}")).bearer_auth(&supervisor).send().await.expect("answers");
        assert_eq!(answer.status(), 200, "{path}");
        let headers = answer.headers().clone();
        assert_eq!(headers["cache-control"], "no-store");
        assert!(headers["content-security-policy"].to_str().unwrap_or("").contains("script-src 'self'"));
        let html = answer.text().await.expect("html");
        assert!(html.contains("电子监察") && !html.contains(APPLICANT_NAME), "{path}");
        // Usable without JavaScript: no inline script, the one script file only reloads.
        assert_eq!(html.matches("<script").count(), 1, "{path}");
    }

    // Without a token: to the form, remembering where. A platform token: refused.
    let answer = client.get(format!("{base}/warnings")).send().await.expect("answers");
    assert_eq!(answer.status(), 303);
    assert_eq!(answer.headers()["location"], "/signin?next=%2Fwarnings");
    let answer = client.get(format!("{base}/")).bearer_auth(&platform).send().await.expect("answers");
    assert_eq!(answer.status(), 403);
    let answer = client.get(format!("{base}/")).bearer_auth("ot_wrong").send().await.expect("answers");
    assert_eq!(answer.status(), 403);

    // The form: a wrong token, a platform token, then the supervisor's, kept in a cookie.
    for (token, status) in [("ot_wrong", 401), (platform.as_str(), 403)] {
        let answer = client
            .post(format!("{base}/signin"))
            .form(&[("token", token), ("next", "/")])
            .send()
            .await
            .expect("answers");
        assert_eq!(answer.status(), status);
        assert!(answer.headers().get("set-cookie").is_none());
    }
    let answer = client
        .post(format!("{base}/signin"))
        .form(&[("token", supervisor.as_str()), ("next", "//elsewhere.example/")])
        .send()
        .await
        .expect("answers");
    assert_eq!(answer.status(), 303);
    assert_eq!(answer.headers()["location"], "/", "never sent to another site");
    let cookie = answer.headers()["set-cookie"].to_str().expect("cookie").to_string();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let pair = cookie.split(';').next().expect("pair").to_string();
    let answer = client.get(format!("{base}/departments")).header("cookie", &pair).send().await.expect("answers");
    assert_eq!(answer.status(), 200);
    // The JSON API never takes the cookie: only the header.
    let answer = client.get(format!("{base}/stalls")).header("cookie", &pair).send().await.expect("answers");
    assert_eq!(answer.status(), 401);
    // A malformed form, an unknown process or case: clear answers, no panic.
    let answer = client.post(format!("{base}/signin")).body("%%%").send().await.expect("answers");
    assert_eq!(answer.status(), 400);
    for path in ["/processes/nothing", "/timeline/C0"] {
        let answer = client.get(format!("{base}{path}")).bearer_auth(&supervisor).send().await.expect("answers");
        assert_eq!(answer.status(), 404, "{path}");
    }
    // Without `onetrip dashboard`'s own token, its sign-in link opens nothing.
    let answer = client.get(format!("{base}/signin/local?token={supervisor}")).send().await.expect("answers");
    assert_eq!(answer.status(), 401);

    // The timeline as JSON, for platforms: the supervisor's alone.
    let answer = client
        .get(format!("{base}/cases/{}/timeline", seeded.supplement_case))
        .bearer_auth(&supervisor)
        .send()
        .await
        .expect("answers");
    assert_eq!(answer.status(), 200);
    let timeline: Value = answer.json().await.expect("json");
    assert_eq!(timeline["pauses"][0]["kind"], "supplement");
    let answer = client
        .get(format!("{base}/cases/{}/timeline", seeded.supplement_case))
        .bearer_auth(&platform)
        .send()
        .await
        .expect("answers");
    assert_eq!(answer.status(), 403);
}
