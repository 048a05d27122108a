//! Scale-out: three `onetrip serve` processes on one PostgreSQL database, 10,000 cases driven
//! through all three, a node killed with SIGKILL and restarted in each phase:
//!
//! 1. cases are submitted and accepted, on the clock of 2026-09-30;
//! 2. the nodes come back a month later (a long holiday's outage): every case's limits have
//!    passed, and the three nodes' ticks fire the timers, competing for them;
//! 3. every case is carried to its end.
//!
//! Clients retry on another node, with the same idempotency key, when a node does not answer,
//! as a platform behind a load balancer would. A fourth client reads the event feed from
//! whichever node answers, across the whole run. At the end: every acknowledged command is
//! stored, once; every case is complete; every timer that was due fired exactly once (counted
//! from the event log); the feed read has every event once, in one order, with no gap.
//!
//! PostgreSQL only: the server named by `ONETRIP_TEST_POSTGRES_URL` (scripts/test sets it), in a
//! fresh database dropped afterwards. `ONETRIP_SKIP_POSTGRES=1` skips it, saying so;
//! `ONETRIP_NODES_CASES` changes the number of cases.

use std::collections::{BTreeMap, HashMap};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engine::case::{CaseState, EventKind, Level, Status};
use engine::{AnyStore, Store};
use serde_json::{json, Value};
use sqlx::ConnectOptions;

const FLOW: &str = r#"
department samr "市场监督管理局"
department psb  "公安局"
schema applicant { name string pii(name)  age int }
item a "事项甲" {
  department     samr
  handling       promised
  promised_limit 1 workday
  steps { accept -> decide }
}
item b "事项乙" {
  department psb
  handling   immediate
  steps      { handle "办理" }
}
process p "联办" {
  window samr
  sla    3 workdays
  flow   { a -> b }
  warn   yellow at 60% of sla, red at overdue
}
"#;

const BEFORE: &str = "2026-09-30T01:00:00Z";
/// A month later: every limit of a case submitted `BEFORE` has passed.
const AFTER: &str = "2026-10-30T01:00:00Z";
const CLIENTS: usize = 48;

fn cases() -> usize {
    std::env::var("ONETRIP_NODES_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(10_000)
}

/// The PostgreSQL server, or `None` when the test is to be skipped (it says so).
fn server() -> Option<String> {
    match std::env::var("ONETRIP_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("ONETRIP_SKIP_POSTGRES").is_ok_and(|v| v == "1") => {
            eprintln!("skipped: ONETRIP_SKIP_POSTGRES=1 (the three-node test needs PostgreSQL)");
            None
        }
        _ => panic!(
            "the three-node test needs a PostgreSQL server: set ONETRIP_TEST_POSTGRES_URL \
             (e.g. postgres://postgres@127.0.0.1:5432/postgres; scripts/test does), or ONETRIP_SKIP_POSTGRES=1"
        ),
    }
}

/// A database of its own on the server, dropped when this is.
struct Database {
    server: String,
    name: String,
    url: String,
}

impl Database {
    async fn create(server: &str) -> Database {
        let name = format!("onetrip_nodes_{}", std::process::id());
        let mut conn = connect(server).await;
        for sql in [format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"), format!("CREATE DATABASE {name}")] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.expect("creates the database");
        }
        let base = server.split('?').next().unwrap_or(server);
        let url = format!("{}/{name}", &base[..base.rfind('/').expect("a database URL")]);
        Database { server: server.to_string(), name, url }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async {
                let mut conn = connect(&server).await;
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await;
            })
        })
        .join();
    }
}

async fn connect(url: &str) -> sqlx::PgConnection {
    let options: sqlx::postgres::PgConnectOptions = url.parse().expect("a PostgreSQL URL");
    options.connect().await.unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"))
}

fn onetrip(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_onetrip")).args(args).output().expect("runs");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("binds").local_addr().expect("address").port()
}

/// Three `onetrip serve` processes, each on a port of its own kept across restarts.
struct Cluster {
    db: String,
    ports: Vec<u16>,
    children: Vec<Option<Child>>,
}

impl Cluster {
    fn bases(&self) -> Vec<String> {
        self.ports.iter().map(|p| format!("http://127.0.0.1:{p}")).collect()
    }

    fn start(&mut self, node: usize, clock: &str) {
        let child = Command::new(env!("CARGO_BIN_EXE_onetrip"))
            .args(["serve", "--db", &self.db, "--listen", &format!("127.0.0.1:{}", self.ports[node])])
            .env("ONETRIP_CLOCK", clock)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starts");
        self.children[node] = Some(child);
    }

    fn kill(&mut self, node: usize) {
        if let Some(mut child) = self.children[node].take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaped");
        }
    }

    async fn wait_ready(&self, node: usize) {
        let started = Instant::now();
        let url = format!("{}/openapi.json", self.bases()[node]);
        while reqwest::get(&url).await.is_err() {
            assert!(started.elapsed() < Duration::from_secs(60), "node {node} did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in 0..self.children.len() {
            self.kill(node);
        }
    }
}

/// What the nodes acknowledged: a case at a version.
type Acks = Arc<Mutex<Vec<(String, u64)>>>;

/// Sends a request to node `first`, then to the others in turn while none answers (or one
/// answers 409 or 5xx), with the same idempotency key: the answer of whichever took it.
async fn send(
    client: &reqwest::Client,
    bases: &[String],
    first: usize,
    path: &str,
    token: &str,
    key: &str,
    body: &Value,
) -> Value {
    let started = Instant::now();
    for attempt in 0.. {
        let base = &bases[(first + attempt) % bases.len()];
        let sent = client
            .post(format!("{base}{path}"))
            .bearer_auth(token)
            .header("idempotency-key", key)
            .json(body)
            .send()
            .await;
        if let Ok(response) = sent {
            let status = response.status();
            if status.is_success() {
                if let Ok(answer) = response.json::<Value>().await {
                    return answer;
                }
            } else if status.as_u16() != 409 && !status.is_server_error() {
                panic!("{path} {body}: {status} {}", response.text().await.unwrap_or_default());
            }
        }
        assert!(started.elapsed() < Duration::from_secs(120), "no node took {path} {body} in 2 minutes");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    unreachable!()
}

struct Tokens {
    platform: String,
    samr: String,
    psb: String,
}

/// Runs `step` for every case number, from `CLIENTS` concurrent clients spread over the nodes;
/// `halfway` is called once, when half of the cases are done.
async fn drive<F, Fut>(total: usize, step: F, halfway: impl FnOnce())
where
    F: Fn(reqwest::Client, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let step = Arc::new(step);
    let done = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (step, done) = (Arc::clone(&step), Arc::clone(&done));
            tokio::spawn(async move {
                let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
                for n in (client..total).step_by(CLIENTS) {
                    step(http.clone(), n).await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    while done.load(Ordering::Relaxed) < total / 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    halfway();
    for worker in workers {
        worker.await.expect("a client panicked");
    }
}

/// The due timer rows left, read without claiming them.
async fn due_timers(db: &str, now: &str) -> i64 {
    let mut conn = connect(db).await;
    sqlx::query_scalar("SELECT count(*) FROM timers WHERE due_at <= $1")
        .bind(now)
        .fetch_one(&mut conn)
        .await
        .expect("counts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_cases_timers_and_the_feed_through_a_sigkill() {
    let Some(server) = server() else { return };
    let total = cases();
    let database = Database::create(&server).await;
    let db = database.url.clone();
    let dir = std::env::temp_dir().join(format!("onetrip-nodes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let flow = dir.join("p.flow");
    std::fs::write(&flow, FLOW).expect("flow");
    onetrip(&["deploy", &flow.to_string_lossy(), "--db", &db]);
    let tokens = Arc::new(Tokens {
        platform: onetrip(&["token", "--role", "platform", "--db", &db]),
        samr: onetrip(&["token", "--role", "officer", "--department", "samr", "--db", &db]),
        psb: onetrip(&["token", "--role", "officer", "--department", "psb", "--db", &db]),
    });
    let supervisor = onetrip(&["token", "--role", "supervisor", "--db", &db]);

    // The three start together: their migrations meet under the migration lock.
    let mut cluster =
        Cluster { db: db.clone(), ports: (0..3).map(|_| free_port()).collect(), children: vec![None, None, None] };
    for node in 0..3 {
        cluster.start(node, BEFORE);
    }
    for node in 0..3 {
        cluster.wait_ready(node).await;
    }
    let bases = Arc::new(cluster.bases());
    let cluster = Arc::new(Mutex::new(cluster));

    // The fourth client: the feed, page by page, from whichever node answers.
    let feed: Arc<Mutex<Vec<Value>>> = Arc::default();
    let finished = Arc::new(AtomicBool::new(false));
    let reader = {
        let (bases, feed, finished) = (Arc::clone(&bases), Arc::clone(&feed), Arc::clone(&finished));
        tokio::spawn(async move {
            let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
            let (mut after, mut node) = (0_i64, 0);
            loop {
                let asked = http
                    .get(format!("{}/events?after={after}&limit=1000", bases[node % 3]))
                    .bearer_auth(&supervisor)
                    .send()
                    .await;
                let page = match asked {
                    Ok(response) if response.status().is_success() => response.json::<Value>().await.ok(),
                    _ => None,
                };
                let Some(page) = page else {
                    node += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let events = page["events"].as_array().cloned().unwrap_or_default();
                after = page["next"].as_i64().expect("next");
                if events.is_empty() {
                    if finished.load(Ordering::Relaxed) {
                        return after;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                feed.lock().expect("lock").extend(events);
                node += 1;
            }
        })
    };

    let acks: Acks = Arc::default();
    let ids: Arc<Mutex<HashMap<usize, String>>> = Arc::default();

    // 1. Submit and accept every case; node 1 dies halfway and comes back.
    let started = Instant::now();
    {
        let (bases, tokens, acks, ids) = (Arc::clone(&bases), Arc::clone(&tokens), Arc::clone(&acks), Arc::clone(&ids));
        let killer = Arc::clone(&cluster);
        drive(
            total,
            move |http, n| {
                let (bases, tokens, acks, ids) =
                    (Arc::clone(&bases), Arc::clone(&tokens), Arc::clone(&acks), Arc::clone(&ids));
                async move {
                    let submission =
                        json!({"flow": "p", "data": {"applicant": {"name": format!("申请人{n}"), "age": 30}}});
                    let answer =
                        send(&http, &bases, n, "/cases", &tokens.platform, &format!("submit-{n}"), &submission).await;
                    let case = answer["case"]["id"].as_str().expect("accepted").to_string();
                    acks.lock()
                        .expect("lock")
                        .push((case.clone(), answer["case"]["version"].as_u64().expect("version")));
                    ids.lock().expect("lock").insert(n, case.clone());
                    let accept = json!({"command": "complete", "item": "a", "step": "accept"});
                    let path = format!("/cases/{case}/commands");
                    let state = send(&http, &bases, n + 1, &path, &tokens.samr, &format!("accept-{n}"), &accept).await;
                    acks.lock().expect("lock").push((case, state["version"].as_u64().expect("version")));
                }
            },
            move || {
                let mut cluster = killer.lock().expect("lock");
                cluster.kill(1);
                cluster.start(1, BEFORE);
            },
        )
        .await;
    }
    eprintln!(
        "phase 1: {total} cases submitted and accepted through 3 nodes in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The timers each case holds, all due a month later.
    let store = AnyStore::open(&db).await.expect("opens");
    let ids = ids.lock().expect("lock").clone();
    assert_eq!(ids.len(), total);
    let mut expected_timers = BTreeMap::new();
    for case in ids.values() {
        let state = store.case(case).await.expect("reads").expect("stored").state;
        let timers: Vec<String> = state.timers().into_iter().map(|(name, _)| name).collect();
        assert!(!timers.is_empty(), "{case} holds timers");
        expected_timers.insert(case.clone(), timers);
    }
    let due_at_start = due_timers(&db, "2026-10-30T01:00:00+00:00").await;
    assert_eq!(due_at_start as usize, expected_timers.values().map(Vec::len).sum::<usize>());

    // 2. A month later: the three nodes fire the timers, node 2 dies while they do.
    let started = Instant::now();
    {
        let mut cluster = cluster.lock().expect("lock");
        for node in 0..3 {
            cluster.kill(node);
            cluster.start(node, AFTER);
        }
    }
    while due_timers(&db, "2026-10-30T01:00:00+00:00").await > due_at_start * 2 / 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let left_at_kill = due_timers(&db, "2026-10-30T01:00:00+00:00").await;
    {
        let mut cluster = cluster.lock().expect("lock");
        cluster.kill(2);
        cluster.start(2, AFTER);
    }
    while due_timers(&db, "2026-10-30T01:00:00+00:00").await > 0 {
        assert!(started.elapsed() < Duration::from_secs(180), "timers still due after 3 minutes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "phase 2: {due_at_start} due timers fired by 3 nodes in {:.1} s (one killed with {left_at_kill} left)",
        started.elapsed().as_secs_f64()
    );

    // 3. Every case to its end; node 0 dies halfway.
    let started = Instant::now();
    {
        let (bases, tokens, acks) = (Arc::clone(&bases), Arc::clone(&tokens), Arc::clone(&acks));
        let ids = Arc::new(ids.clone());
        let killer = Arc::clone(&cluster);
        drive(
            total,
            move |http, n| {
                let (bases, tokens, acks, ids) =
                    (Arc::clone(&bases), Arc::clone(&tokens), Arc::clone(&acks), Arc::clone(&ids));
                async move {
                    let case = &ids[&n];
                    let path = format!("/cases/{case}/commands");
                    for (node, item, step, token) in
                        [(n, "a", "decide", &tokens.samr), (n + 2, "b", "handle", &tokens.psb)]
                    {
                        let command = json!({"command": "complete", "item": item, "step": step});
                        let state = send(&http, &bases, node, &path, token, &format!("{step}-{n}"), &command).await;
                        acks.lock().expect("lock").push((case.clone(), state["version"].as_u64().expect("version")));
                    }
                }
            },
            move || {
                let mut cluster = killer.lock().expect("lock");
                cluster.kill(0);
                cluster.start(0, AFTER);
            },
        )
        .await;
    }
    eprintln!("phase 3: {total} cases completed through 3 nodes in {:.1} s", started.elapsed().as_secs_f64());

    finished.store(true, Ordering::Relaxed);
    let read_to = reader.await.expect("the feed reader");
    drop(cluster);

    // Every acknowledged write is stored.
    let acks = acks.lock().expect("lock").clone();
    assert_eq!(acks.len(), 4 * total);
    let mut states = HashMap::new();
    for case in ids.values() {
        states.insert(case.clone(), store.case(case).await.expect("reads").expect("stored").state);
    }
    for (case, version) in &acks {
        assert!(
            states[case].version >= *version,
            "{case}: acknowledged version {version}, stored {}",
            states[case].version
        );
    }

    // The whole event log, in feed order.
    let mut log: Vec<(i64, String, engine::case::Event)> = Vec::new();
    loop {
        let page = store.events_after(log.last().map_or(0, |(p, ..)| *p), 10_000).await.expect("reads");
        if page.is_empty() {
            break;
        }
        log.extend(page);
    }
    let positions: Vec<i64> = log.iter().map(|(p, ..)| *p).collect();
    assert_eq!(positions, (1..=log.len() as i64).collect::<Vec<_>>(), "feed positions run 1, 2, 3… with no gap");
    let submitted = log.iter().filter(|(_, _, e)| matches!(e.kind, EventKind::Submitted { .. })).count();
    assert_eq!(submitted, total, "each submission stored once, whichever node took its retries");

    // Each case: complete, its events once each, its projection the replay of its events, and
    // every timer it held fired exactly once.
    let flow = store.latest_flow("p").await.expect("reads").expect("deployed");
    let mut by_case: HashMap<&str, Vec<&engine::case::Event>> = HashMap::new();
    for (_, case, event) in &log {
        by_case.entry(case.as_str()).or_default().push(event);
    }
    for (case, timers) in &expected_timers {
        let state = &states[case];
        assert_eq!(state.status, Status::Completed, "{case} completed");
        let history = store.history(case).await.expect("history");
        assert_eq!(history.len() as u64, state.version, "{case}: one event per version, none twice");
        assert_eq!(by_case[case.as_str()].len(), history.len(), "{case}: the feed has its events");
        let replayed = CaseState::replay(case, &flow, &history);
        assert_eq!(
            (&replayed.tasks, replayed.status, &replayed.deadlines),
            (&state.tasks, state.status, &state.deadlines),
            "{case}"
        );
        let mut fired: BTreeMap<String, usize> = BTreeMap::new();
        for event in &history {
            if let EventKind::WarningRaised { scope, level } = &event.kind {
                let level = if *level == Level::Red { "red" } else { "yellow" };
                *fired.entry(format!("{level}:{scope}")).or_default() += 1;
            }
        }
        let expected: BTreeMap<String, usize> = timers.iter().map(|t| (t.clone(), 1)).collect();
        assert_eq!(fired, expected, "{case}: each timer it held fired exactly once");
    }

    // The fourth client's feed: every event once, in the log's order, nothing missing.
    let feed = feed.lock().expect("lock").clone();
    assert_eq!(read_to, log.len() as i64, "the reader followed the feed to its end");
    assert_eq!(feed.len(), log.len(), "the feed read has as many events as the log");
    for (read, (position, case, event)) in feed.iter().zip(&log) {
        assert_eq!(read["position"].as_i64(), Some(*position));
        assert_eq!(read["case_id"].as_str(), Some(case.as_str()));
        assert_eq!(read["event"], serde_json::to_value(event).expect("json"), "event at {position}");
    }
    eprintln!(
        "{} acknowledged writes over {total} cases stored once; {due_at_start} timers fired once each; \
         a feed of {} events read in order",
        acks.len(),
        log.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
